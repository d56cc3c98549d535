/*-------------------------------------------------------------------------
 *
 * test_data.h
 *	  Hand-built SlTable / SlRowSet values for the stage-2 unit tests and
 *	  benchmark (static helpers; include from one .c file).
 *
 *-------------------------------------------------------------------------
 */
#ifndef TEST_DATA_H
#define TEST_DATA_H

#include <math.h>

#include <stdio.h>
#include <stdlib.h>

#include "stage2.h"

/* Test assertions: count a failure and say where, without stopping. */
static pg_attribute_unused() int failures = 0;

#define CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			failures++; \
			printf("  FAIL %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__); \
			printf("\n"); \
		} \
	} while (0)

/* Writes n bytes to dir/name, for the PyTorch cross-check; exits on error. */
static pg_attribute_unused() void
write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char		path[1024];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n)
	{
		perror(path);
		exit(2);
	}
	fclose(f);
}

/* cls[c]: 'n' continuous, 'c' categorical */
static pg_attribute_unused() SlTable *
td_table(const char *cls, int label_col)
{
	SlTable    *t = palloc0(sizeof(SlTable));
	int			nc = (int) strlen(cls);

	t->ncols = nc;
	t->cols = palloc0(sizeof(SlColumn) * (nc ? nc : 1));
	for (int c = 0; c < nc; c++)
	{
		t->cols[c].name = psprintf("col%d", c);
		t->cols[c].cls = cls[c] == 'n' ? SL_CONTINUOUS : SL_CATEGORICAL;
	}
	t->label_col = label_col;
	t->relname = "test";
	return t;
}

static pg_attribute_unused() SlRowSet *
td_rows(int nrows, int ncols)
{
	SlRowSet   *rs = palloc0(sizeof(SlRowSet));
	size_t		n = (size_t) (nrows ? nrows : 1) * (ncols ? ncols : 1);

	rs->nrows = nrows;
	rs->ncols = ncols;
	rs->cap = nrows;
	rs->values = palloc0(sizeof(Datum) * n);
	rs->isnull = palloc0(sizeof(bool) * n);
	rs->text = palloc0(sizeof(char *) * n);
	rs->num = palloc(sizeof(double) * n);
	for (size_t i = 0; i < n; i++)
		rs->num[i] = NAN;
	return rs;
}

static pg_attribute_unused() void
td_num(SlRowSet *rs, int r, int c, double v)
{
	size_t		cell = SL_CELL(rs, r, c);
	char		buf[64];

	snprintf(buf, sizeof(buf), "%.17g", v);
	rs->num[cell] = v;
	rs->text[cell] = pstrdup(buf);
	rs->isnull[cell] = false;
}

static pg_attribute_unused() void
td_int(SlRowSet *rs, int r, int c, int v)
{
	size_t		cell = SL_CELL(rs, r, c);
	char		buf[32];

	snprintf(buf, sizeof(buf), "%d", v);
	rs->num[cell] = v;
	rs->text[cell] = pstrdup(buf);
	rs->isnull[cell] = false;
}

static pg_attribute_unused() void
td_text(SlRowSet *rs, int r, int c, const char *s)
{
	size_t		cell = SL_CELL(rs, r, c);

	rs->text[cell] = pstrdup(s);
	rs->isnull[cell] = false;
}

static pg_attribute_unused() void
td_cat(SlRowSet *rs, int r, int c, int v)
{
	char		buf[32];

	snprintf(buf, sizeof(buf), "v%d", v);
	td_text(rs, r, c, buf);
}

static pg_attribute_unused() void
td_null(SlRowSet *rs, int r, int c)
{
	size_t		cell = SL_CELL(rs, r, c);

	rs->isnull[cell] = true;
	rs->text[cell] = NULL;
	rs->num[cell] = NAN;
}

static pg_attribute_unused() double
td_normal(pg_prng_state *rng)
{
	double		u1 = 1.0 - pg_prng_double(rng);
	double		u2 = pg_prng_double(rng);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

#endif							/* TEST_DATA_H */
