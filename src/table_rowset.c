/*-------------------------------------------------------------------------
 *
 * table_rowset.c
 *	  Row sets: seeds and candidates as typed values, text and numbers.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "utils/datum.h"

#include "samplellm.h"
#include "table.h"
#include "util.h"

SlRowSet *
sl_rowset_create(int ncols, int cap)
{
	SlRowSet   *rs = palloc0(sizeof(SlRowSet));
	size_t		cells;

	rs->ncols = ncols;
	rs->cap = Max(cap, 16);
	cells = (size_t) rs->cap * ncols;
	rs->values = palloc_extended(sizeof(Datum) * cells, MCXT_ALLOC_HUGE);
	rs->isnull = palloc_extended(sizeof(bool) * cells, MCXT_ALLOC_HUGE);
	rs->text = palloc_extended(sizeof(char *) * cells, MCXT_ALLOC_HUGE);
	rs->num = palloc_extended(sizeof(double) * cells, MCXT_ALLOC_HUGE);
	return rs;
}

static void
rowset_grow(SlRowSet *rs)
{
	size_t		cells;

	rs->cap *= 2;
	cells = (size_t) rs->cap * rs->ncols;
	rs->values = repalloc_huge(rs->values, sizeof(Datum) * cells);
	rs->isnull = repalloc_huge(rs->isnull, sizeof(bool) * cells);
	rs->text = repalloc_huge(rs->text, sizeof(char *) * cells);
	rs->num = repalloc_huge(rs->num, sizeof(double) * cells);
}

/*
 * Appends a row given in column order (t->cols), copying the values into the
 * set's memory context, which must be current.
 */
void
sl_rowset_add(SlRowSet *rs, const SlTable *t, Datum *values, bool *isnull)
{
	int			c;

	if (rs->nrows >= rs->cap)
		rowset_grow(rs);
	for (c = 0; c < rs->ncols; c++)
	{
		const SlColumn *col = &t->cols[c];
		size_t		cell = SL_CELL(rs, rs->nrows, c);

		rs->isnull[cell] = isnull[c];
		rs->num[cell] = NAN;
		if (isnull[c])
		{
			rs->values[cell] = (Datum) 0;
			rs->text[cell] = NULL;
			continue;
		}
		rs->values[cell] = datumCopy(values[c], col->typbyval, col->typlen);
		rs->text[cell] = OutputFunctionCall((FmgrInfo *) &col->outfunc, rs->values[cell]);
		if (col->cls == SL_CONTINUOUS)
			rs->num[cell] = sl_datum_to_double(col, rs->values[cell]);
	}
	rs->nrows++;
}

/* Hash of a row's canonical text, for the memorization guard. */
uint64
sl_row_hash(const SlRowSet *rs, int r, const bool *mask)
{
	uint64		h = 0x51ed2701;
	int			c;

	for (c = 0; c < rs->ncols; c++)
	{
		const char *v = rs->text[SL_CELL(rs, r, c)];

		if (mask && !mask[c])
			continue;
		h = hash_combine64(h, v ? hash_bytes_extended((const unsigned char *) v,
													  strlen(v), 0) : 0x9e37);
	}
	return h;
}

bool
sl_rows_equal(const SlRowSet *a, int ra, const SlRowSet *b, int rb, const bool *mask)
{
	int			c;

	for (c = 0; c < a->ncols; c++)
	{
		const char *x = a->text[SL_CELL(a, ra, c)];
		const char *y = b->text[SL_CELL(b, rb, c)];

		if (mask && !mask[c])
			continue;
		if ((x == NULL) != (y == NULL))
			return false;
		if (x && strcmp(x, y) != 0)
			return false;
	}
	return true;
}

/*
 * Appends src's rows to dst without copying values: dst borrows src's
 * cells, which must live as long as dst.
 */
void
sl_rowset_append_shallow(SlRowSet *dst, const SlRowSet *src)
{
	size_t		from;
	size_t		cells = (size_t) src->nrows * src->ncols;

	while (dst->nrows + src->nrows > dst->cap)
		rowset_grow(dst);
	from = (size_t) dst->nrows * dst->ncols;
	memcpy(dst->values + from, src->values, sizeof(Datum) * cells);
	memcpy(dst->isnull + from, src->isnull, sizeof(bool) * cells);
	memcpy(dst->text + from, src->text, sizeof(char *) * cells);
	memcpy(dst->num + from, src->num, sizeof(double) * cells);
	dst->nrows += src->nrows;
}

/* Appends row r of src to dst, sharing its cells (as above). */
void
sl_rowset_append_row(SlRowSet *dst, const SlRowSet *src, int r)
{
	SlRowSet	one = *src;
	size_t		first = SL_CELL(src, r, 0);

	one.values += first;
	one.isnull += first;
	one.text += first;
	one.num += first;
	one.nrows = 1;
	sl_rowset_append_shallow(dst, &one);
}
