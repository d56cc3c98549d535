/*-------------------------------------------------------------------------
 *
 * pg_shim.h
 *	  Hooks of the test shim (pg_shim.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef PG_SHIM_H
#define PG_SHIM_H

#include <setjmp.h>

extern sigjmp_buf *shim_error_jmp;
extern int	shim_error_count;
extern int64 shim_gemm_calls;

#endif							/* PG_SHIM_H */
