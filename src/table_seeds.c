/*-------------------------------------------------------------------------
 *
 * table_seeds.c
 *	  Stage 1, step 1: read the real rows once, as the caller, into a
 *	  uniform reservoir sample of bounded size.
 *
 * One scan through an SPI cursor, fetched in batches, so a table of ten
 * million rows costs one pass and max_rows rows of memory.  Table, column
 * and row-level security apply because the query runs as the caller.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "samplellm.h"
#include "table.h"
#include "util.h"

#define SEED_FETCH_BATCH 1000

/* Frees the by-reference parts of a reservoir slot before it is reused. */
static void
rowset_forget_row(SlRowSet *rs, const SlTable *t, int r)
{
	int			c;

	for (c = 0; c < rs->ncols; c++)
	{
		size_t		cell = SL_CELL(rs, r, c);

		if (rs->isnull[cell])
			continue;
		if (!t->cols[c].typbyval)
			pfree(DatumGetPointer(rs->values[cell]));
		pfree(rs->text[cell]);
	}
}

/*
 * Returns up to max_rows rows chosen uniformly (Algorithm R, seeded), in
 * column order of t, allocated in CurrentMemoryContext.  *total_rows gets the
 * number of rows the caller can see.
 */
SlRowSet *
sl_seeds_read(SlTable *t, int max_rows, uint64 seed, int64 *total_rows)
{
	MemoryContext cxt = CurrentMemoryContext;
	SlRowSet   *rs;
	StringInfoData sql;
	SPIPlanPtr	plan;
	Portal		portal;
	pg_prng_state rng;
	int64		seen = 0;
	Datum	   *values;
	bool	   *isnull;
	int			c;

	/* Priced before the scan: the rows the planner expects, at most max_rows. */
	{
		double		est = sl_relation_rows_estimate(t->relid);
		double		rows = est >= 0 ? Min((double) max_rows, est * 1.1 + 1000) : max_rows;
		double		row_bytes = sl_row_bytes_typical(t);

		sl_limit_check(rows * row_bytes,
					   psprintf("Up to %.0f seed rows (max_seed_rows = %d) of about %.0f bytes each.",
								rows, max_rows, row_bytes));
	}
	sl_stream_init(&rng, seed, SL_STREAM_SEED_SAMPLE, 0);
	rs = sl_rowset_create(t->ncols, Min(max_rows, 1024));
	values = palloc(sizeof(Datum) * t->ncols);
	isnull = palloc(sizeof(bool) * t->ncols);

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (c = 0; c < t->ncols; c++)
		appendStringInfo(&sql, "%s%s", c ? ", " : "", quote_identifier(t->cols[c].name));
	appendStringInfo(&sql, " FROM %s",
					 quote_qualified_identifier(t->nspname, t->relname));

	SPI_connect();
	plan = SPI_prepare(sql.data, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare seed query: %s", SPI_result_code_string(SPI_result));
	portal = SPI_cursor_open(NULL, plan, NULL, NULL, true);

	for (;;)
	{
		uint64		i;

		SPI_cursor_fetch(portal, true, SEED_FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			int			slot;
			MemoryContext old;

			seen++;
			if (rs->nrows < max_rows)
				slot = -1;		/* append */
			else
			{
				uint64		j = pg_prng_uint64_range(&rng, 0, (uint64) seen - 1);

				if (j >= (uint64) max_rows)
					continue;
				slot = (int) j;
			}
			for (c = 0; c < t->ncols; c++)
				values[c] = SPI_getbinval(tup, SPI_tuptable->tupdesc, c + 1, &isnull[c]);

			old = MemoryContextSwitchTo(cxt);
			if (slot < 0)
				sl_rowset_add(rs, t, values, isnull);
			else
			{
				/* Overwrite slot: append at the end, then move it there. */
				int			last;

				rowset_forget_row(rs, t, slot);
				sl_rowset_add(rs, t, values, isnull);
				last = rs->nrows - 1;
				for (c = 0; c < rs->ncols; c++)
				{
					size_t		to = SL_CELL(rs, slot, c);
					size_t		from = SL_CELL(rs, last, c);

					rs->values[to] = rs->values[from];
					rs->isnull[to] = rs->isnull[from];
					rs->text[to] = rs->text[from];
					rs->num[to] = rs->num[from];
				}
				rs->nrows--;
			}
			MemoryContextSwitchTo(old);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
		/* the estimate can be wrong (a view, stale statistics) */
		sl_limit_check_context(cxt, "reading the seed rows");
	}
	SPI_cursor_close(portal);
	SPI_finish();

	pfree(values);
	pfree(isnull);
	pfree(sql.data);
	*total_rows = seen;
	return rs;
}

/* A call with no seed row has nothing to imitate: the one error for it. */
void
sl_seeds_require_rows(const SlTable *t, const SlRowSet *seeds)
{
	if (seeds->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("source table \"%s\" has no rows visible to you", t->relname),
				 errdetail("samplellm imitates real rows and needs at least one as a seed.")));
}
