/*-------------------------------------------------------------------------
 *
 * util_compare.c
 *	  qsort/bsearch comparators shared by the pipeline's steps.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "util.h"

int
sl_cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/* descending: the heaviest weights first */
int
sl_cmp_double_desc(const void *a, const void *b)
{
	return sl_cmp_double(b, a);
}

int
sl_cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

int
sl_cmp_uint64(const void *a, const void *b)
{
	uint64		x = *(const uint64 *) a;
	uint64		y = *(const uint64 *) b;

	return (x > y) - (x < y);
}

/* For arrays of char *. */
int
sl_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}
