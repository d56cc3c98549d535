/*-------------------------------------------------------------------------
 *
 * fuzz_shim.h
 *	  Hooks of the fuzzing shim (fuzz_shim.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FUZZ_SHIM_H
#define FUZZ_SHIM_H

/* Frees everything allocated since the last reset (MemoryContextReset). */
extern void fuzz_reset(void);
extern size_t fuzz_live_bytes(void);
extern size_t fuzz_max_live_bytes;

#endif							/* FUZZ_SHIM_H */
