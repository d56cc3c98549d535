/*-------------------------------------------------------------------------
 *
 * generate.c
 *	  The SQL functions that run the pipeline: samplellm_generate() and
 *	  samplellm_last_run().
 *
 * The result is materialized: a failing call returns no rows, so an
 * INSERT ... SELECT leaves its target unchanged.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "run.h"

/*
 * The options every generating function shares, from its arguments
 * starting at argument `first` (n, label, seed, max_seed_rows, resample,
 * oversample), checked before anything else happens.
 */
static void
parse_run_options(FunctionCallInfo fcinfo, int first, SlRunOptions *opt)
{
	int			i;

	memset(opt, 0, sizeof(SlRunOptions));
	if (PG_ARGISNULL(first))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("n must not be null"),
				 errhint("Pass the number of rows to generate.")));
	opt->n = PG_GETARG_INT32(first);
	if (opt->n <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be positive, not %d", opt->n)));
	if (opt->n > sl_max_rows)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("n = %d exceeds samplellm.max_rows (%d)", opt->n, sl_max_rows),
				 errhint("Generate in several calls, or ask a superuser to raise samplellm.max_rows.")));

	opt->label = PG_ARGISNULL(first + 1) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(first + 1));
	opt->seed_given = !PG_ARGISNULL(first + 2);
	opt->seed = opt->seed_given ? (uint64) PG_GETARG_INT64(first + 2) : 0;

	opt->max_seed_rows = PG_ARGISNULL(first + 3) ? sl_max_seed_rows :
		PG_GETARG_INT32(first + 3);
	if (opt->max_seed_rows <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_seed_rows must be positive, not %d", opt->max_seed_rows)));

	opt->resample = SL_RESAMPLE_ATTRIBUTION;
	if (!PG_ARGISNULL(first + 4))
	{
		char	   *r = text_to_cstring(PG_GETARG_TEXT_PP(first + 4));

		for (i = 0; i < lengthof(sl_resample_names); i++)
			if (strcmp(r, sl_resample_names[i]) == 0)
				break;
		if (i == lengthof(sl_resample_names))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown resample method \"%s\"", r),
					 errhint("Use 'attribution' (the paper's stage 2), 'uniform' (the same candidates drawn uniformly) or 'none' (the first n valid candidates).")));
		opt->resample = (SlResample) i;
	}
	opt->oversample = PG_ARGISNULL(first + 5) ? sl_oversample : PG_GETARG_FLOAT8(first + 5);
	if (!(opt->oversample >= 1.0 && opt->oversample <= 100.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("oversample must be between 1 and 100, not %g", opt->oversample)));
}

PG_FUNCTION_INFO_V1(samplellm_generate);

Datum
samplellm_generate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			rowtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	SlRunOptions opt;
	SlRun	   *run;
	MemoryContext old;
	const SlRowSet *pool;
	Datum	   *values;
	bool	   *nulls;
	int			natts;
	int			i;

	parse_run_options(fcinfo, 1, &opt);
	(void) sl_source_relid(rowtype);
	InitMaterializedSRF(fcinfo, 0);

	run = sl_run_create(rsinfo->econtext->ecxt_per_query_memory, &opt);
	old = MemoryContextSwitchTo(run->cxt);
	sl_run_prepare(run, rowtype, &opt);
	sl_run_execute(run);

	pool = run->pool_rows;
	natts = rsinfo->setDesc->natts;
	values = palloc(sizeof(Datum) * natts);
	nulls = palloc(sizeof(bool) * natts);
	for (i = 0; i < run->s2.nchosen; i++)
	{
		int			r = run->s2.chosen[i];
		int			c;

		/* Dropped columns stay NULL. */
		memset(nulls, true, sizeof(bool) * natts);
		for (c = 0; c < run->t->ncols; c++)
		{
			int			a = run->t->cols[c].attnum - 1;

			values[a] = pool->values[SL_CELL(pool, r, c)];
			nulls[a] = pool->isnull[SL_CELL(pool, r, c)];
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	MemoryContextSwitchTo(old);
	sl_run_finish(run);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(samplellm_last_run);

/* The figures of this session's last call, as jsonb. */
Datum
samplellm_last_run(PG_FUNCTION_ARGS)
{
	const char *json = sl_last_run_json();

	if (json == NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
}
