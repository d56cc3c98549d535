/*-------------------------------------------------------------------------
 *
 * pg_shim.c
 *	  Just enough of the backend to run stage 2 outside a server.
 *
 * palloc and friends are malloc (memory contexts are never reset, which is
 * fine for a short test process); ereport(ERROR) prints and either jumps to
 * the test's shim_error_jmp, when set, or aborts.  pg_prng comes from
 * libpgcommon.a.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <setjmp.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/datum.h"
#include "utils/memutils.h"

#include "pg_shim.h"
#include "table.h"

volatile sig_atomic_t InterruptPending = false;
MemoryContext CurrentMemoryContext = NULL;
sigjmp_buf *shim_error_jmp = NULL;
int			shim_error_count = 0;

static int	shim_elevel;
static char shim_msg[1024];

void
ProcessInterrupts(void)
{
	InterruptPending = false;
}

static void *
shim_alloc(Size size, bool zero)
{
	void	   *p = zero ? calloc(1, size ? size : 1) : malloc(size ? size : 1);

	if (p == NULL)
	{
		fprintf(stderr, "shim: out of memory (%zu bytes)\n", (size_t) size);
		abort();
	}
	return p;
}

void *
palloc(Size size)
{
	return shim_alloc(size, false);
}

void *
palloc0(Size size)
{
	return shim_alloc(size, true);
}

void *
palloc_extended(Size size, int flags)
{
	return shim_alloc(size, (flags & MCXT_ALLOC_ZERO) != 0);
}

void *
MemoryContextAlloc(MemoryContext context, Size size)
{
	return shim_alloc(size, false);
}

void *
MemoryContextAllocZero(MemoryContext context, Size size)
{
	return shim_alloc(size, true);
}

void *
repalloc_huge(void *pointer, Size size)
{
	return repalloc(pointer, size);
}

/*
 * table_rowset.c (linked for sl_rowset_create) reads rows through the
 * server's type I/O; the unit tests build their rows themselves.
 */
Datum
datumCopy(Datum value, bool typByVal, int typLen)
{
	abort();
}

char *
OutputFunctionCall(FmgrInfo *flinfo, Datum val)
{
	abort();
}

double
sl_datum_to_double(const SlColumn *col, Datum d)
{
	abort();
}

/* table_encode.c's matrices and simplehash's tables */
void *
MemoryContextAllocExtended(MemoryContext context, Size size, int flags)
{
	return shim_alloc(size, (flags & MCXT_ALLOC_ZERO) != 0);
}

void *
repalloc(void *pointer, Size size)
{
	void	   *p = realloc(pointer, size ? size : 1);

	if (p == NULL)
		abort();
	return p;
}

void
pfree(void *pointer)
{
	free(pointer);
}

char *
pstrdup(const char *in)
{
	return strcpy(shim_alloc(strlen(in) + 1, false), in);
}

char *
psprintf(const char *fmt,...)
{
	va_list		ap;
	char		buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return pstrdup(buf);
}

MemoryContext
AllocSetContextCreateInternal(MemoryContext parent, const char *name,
							  Size minContextSize, Size initBlockSize,
							  Size maxBlockSize)
{
	return (MemoryContext) shim_alloc(sizeof(MemoryContextData), true);
}

void
MemoryContextDelete(MemoryContext context)
{
	free(context);
}

bool
errstart(int elevel, const char *domain)
{
	shim_elevel = elevel;
	shim_msg[0] = '\0';
	return elevel >= WARNING;
}

bool
errstart_cold(int elevel, const char *domain)
{
	return errstart(elevel, domain);
}

int
errcode(int sqlerrcode)
{
	return 0;
}

static int
append_msg(const char *what, const char *fmt, va_list ap)
{
	size_t		len = strlen(shim_msg);

	snprintf(shim_msg + len, sizeof(shim_msg) - len, "%s", what);
	len = strlen(shim_msg);
	vsnprintf(shim_msg + len, sizeof(shim_msg) - len, fmt, ap);
	return 0;
}

int
errmsg(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	append_msg("", fmt, ap);
	va_end(ap);
	return 0;
}

int
errmsg_internal(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	append_msg("", fmt, ap);
	va_end(ap);
	return 0;
}

int
errdetail(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	append_msg(" | DETAIL: ", fmt, ap);
	va_end(ap);
	return 0;
}

int
errhint(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	append_msg(" | HINT: ", fmt, ap);
	va_end(ap);
	return 0;
}

void
errfinish(const char *filename, int lineno, const char *funcname)
{
	fprintf(stderr, "shim %s: %s (%s:%d)\n",
			shim_elevel >= ERROR ? "ERROR" : "WARNING", shim_msg, filename, lineno);
	if (shim_elevel < ERROR)
		return;
	shim_error_count++;
	if (shim_error_jmp)
		siglongjmp(*shim_error_jmp, 1);
	abort();
}

void
ExceptionalCondition(const char *conditionName, const char *errorType,
					 const char *fileName, int lineNumber)
{
	fprintf(stderr, "shim: assertion %s failed at %s:%d\n",
			conditionName, fileName, lineNumber);
	abort();
}

/*
 * Our code must never hand BLAS a zero dimension (reliability.md): the test
 * binary links with --wrap so that every gemm passes through these checks.
 */
extern void __real_cblas_sgemm(int, int, int, int, int, int, float,
							   const float *, int, const float *, int, float,
							   float *, int);
extern void __real_cblas_dgemm(int, int, int, int, int, int, double,
							   const double *, int, const double *, int,
							   double, double *, int);
extern void __wrap_cblas_sgemm(int, int, int, int, int, int, float,
							   const float *, int, const float *, int, float,
							   float *, int);
extern void __wrap_cblas_dgemm(int, int, int, int, int, int, double,
							   const double *, int, const double *, int,
							   double, double *, int);
int64		shim_gemm_calls = 0;

static void
check_dims(const char *fn, int M, int N, int K)
{
	if (M <= 0 || N <= 0 || K <= 0)
	{
		fprintf(stderr, "shim: %s called with M=%d N=%d K=%d\n", fn, M, N, K);
		abort();
	}
	shim_gemm_calls++;
}

void
__wrap_cblas_sgemm(int order, int ta, int tb, int M, int N, int K,
				   float alpha, const float *A, int lda, const float *B,
				   int ldb, float beta, float *C, int ldc)
{
	check_dims("cblas_sgemm", M, N, K);
	__real_cblas_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void
__wrap_cblas_dgemm(int order, int ta, int tb, int M, int N, int K,
				   double alpha, const double *A, int lda, const double *B,
				   int ldb, double beta, double *C, int ldc)
{
	check_dims("cblas_dgemm", M, N, K);
	__real_cblas_dgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
