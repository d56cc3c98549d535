/*-------------------------------------------------------------------------
 *
 * util_limits.c
 *	  The memory bound of one call (samplellm.max_memory): estimates checked
 *	  before work starts, and a running check while rows are read.
 *
 * Every quantity a caller can scale (n x oversample candidates, the seed
 * sample, responses in flight, samplellm_evaluate's inputs) is priced
 * before the work it needs starts, against a bound only a superuser can
 * raise; reading rows of a relation whose size was unknown up front (a
 * view, a foreign table) is checked as it goes.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "optimizer/plancat.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "util.h"

/* palloc's chunk header and rounding, per allocation, roughly */
#define CHUNK_OVERHEAD 24

int			sl_max_memory_kb = 1024 * 1024;

int64
sl_limit_bytes(void)
{
	return (int64) sl_max_memory_kb * 1024;
}

/* Refuses a call whose estimated need is over the bound. */
void
sl_limit_check(double bytes, const char *detail)
{
	if (bytes <= (double) sl_limit_bytes())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("this call would need about %.0f MB of memory, more than samplellm.max_memory (%d MB)",
					ceil(bytes / (1024.0 * 1024.0)), sl_max_memory_kb / 1024),
			 errdetail("%s", detail),
			 errhint("Ask for fewer rows, a smaller oversample or fewer seed rows, or ask a superuser to raise samplellm.max_memory.")));
}

/* The running check, on what a context holds now. */
void
sl_limit_check_context(MemoryContext cxt, const char *what)
{
	Size		used = MemoryContextMemAllocated(cxt, true);

	if ((int64) used <= sl_limit_bytes())
		return;
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("samplellm used more than samplellm.max_memory (%d MB) %s",
					sl_max_memory_kb / 1024, what),
			 errhint("Ask for fewer rows or fewer seed rows, or ask a superuser to raise samplellm.max_memory.")));
}

/*
 * Bytes one row takes in a row set: the four cell arrays, and per non-NULL
 * cell its output text and (by reference) its datum, with their headers.
 */
double
sl_row_bytes_typical(const SlTable *t)
{
	double		bytes = 0;
	int			c;

	for (c = 0; c < t->ncols; c++)
	{
		const SlColumn *col = &t->cols[c];
		int32		w = get_attavgwidth(t->relid, col->attnum);

		if (w <= 0)
			w = get_typavgwidth(col->typid, col->typmod);
		bytes += sizeof(Datum) + sizeof(bool) + sizeof(char *) + sizeof(double);
		bytes += w + 1 + CHUNK_OVERHEAD;	/* text */
		if (!col->typbyval)
			bytes += w + CHUNK_OVERHEAD;	/* datum copy */
	}
	return bytes;
}

/* The same, measured on up to 1,000 rows of a row set (0 when empty). */
double
sl_row_bytes_measured(const SlTable *t, const SlRowSet *rs)
{
	double		bytes = 0;
	int			m = Min(rs->nrows, 1000);
	int			r;
	int			c;

	if (m == 0)
		return 0;
	for (r = 0; r < m; r++)
		for (c = 0; c < rs->ncols; c++)
		{
			size_t		cell = SL_CELL(rs, r, c);

			bytes += sizeof(Datum) + sizeof(bool) + sizeof(char *) + sizeof(double);
			if (rs->isnull[cell])
				continue;
			bytes += strlen(rs->text[cell]) + 1 + CHUNK_OVERHEAD;
			if (!t->cols[c].typbyval)
				bytes += (t->cols[c].typlen > 0 ? t->cols[c].typlen :
						  VARSIZE_ANY(DatumGetPointer(rs->values[cell]))) + CHUNK_OVERHEAD;
		}
	return bytes / m;
}

/*
 * Rows a scan of the relation will see, as the planner estimates them, or
 * -1 when there is no estimate (views, foreign tables never analyzed).
 */
double
sl_relation_rows_estimate(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	double		tuples = -1;

	if (rel->rd_rel->relkind == RELKIND_RELATION ||
		rel->rd_rel->relkind == RELKIND_MATVIEW)
	{
		BlockNumber pages;
		double		allvis;

		estimate_rel_size(rel, NULL, &pages, &tuples, &allvis);
	}
	else if (rel->rd_rel->relkind == RELKIND_FOREIGN_TABLE && rel->rd_rel->reltuples >= 0)
		tuples = rel->rd_rel->reltuples;
	relation_close(rel, NoLock);
	return tuples;
}
