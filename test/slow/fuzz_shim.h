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

/* fuzz_check.c: abort with a message; the response -> rows promises */
extern void fuzz_fail(const char *what) pg_attribute_noreturn();
extern void fuzz_check_response(char *body, size_t len);

#endif							/* FUZZ_SHIM_H */
