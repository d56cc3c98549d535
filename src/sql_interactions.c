/*-------------------------------------------------------------------------
 *
 * sql_interactions.c
 *	  samplellm_interactions(): the field-pair structure stage 2 finds in
 *	  the real rows, for users to inspect.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "run.h"

PG_FUNCTION_INFO_V1(samplellm_interactions);

/*
 * One row per pair of fields (a before b in column order): the Integrated
 * Hessians score divided by the largest off-diagonal entry (what the
 * threshold is compared with), the raw score, and both fields' clusters.
 */
Datum
samplellm_interactions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	SlRunOptions ropt;
	MemoryContext cxt;
	MemoryContext old;
	SlTable    *t;
	SlRowSet   *seeds;
	int64		seen;
	SlStage2Options opt;
	SlStage2Result res;
	double		maxoff = 0;
	int			F;
	int			a;
	int			b;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source must not be null")));
	relid = PG_GETARG_OID(0);
	sl_run_options_init(&ropt);
	sl_run_options_set_label(&ropt, PG_ARGISNULL(1), PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1));
	sl_run_options_set_seed(&ropt, PG_ARGISNULL(2), PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2));
	sl_run_options_set_max_seed_rows(&ropt, PG_ARGISNULL(3), PG_ARGISNULL(3) ? 0 : PG_GETARG_INT32(3));
	InitMaterializedSRF(fcinfo, 0);

	cxt = AllocSetContextCreate(rsinfo->econtext->ecxt_per_query_memory,
								"samplellm interactions", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);
	t = sl_table_open(get_rel_type_id(relid), ropt.label);
	seeds = sl_seeds_read(t, ropt.max_seed_rows, ropt.seed, &seen);
	sl_seeds_require_rows(t, seeds);
	sl_run_stage2_options(ropt.seed, &opt);
	sl_stage2_interactions(t, seeds, &opt, &res);

	F = res.nfields;
	for (a = 0; a < F; a++)
		for (b = 0; b < F; b++)
			if (a != b)
				maxoff = Max(maxoff, res.interactions[a * F + b]);

	for (a = 0; a < F; a++)
	{
		for (b = a + 1; b < F; b++)
		{
			Datum		values[7];
			bool		nulls[7] = {false};
			double		m = res.interactions[a * F + b];

			values[0] = CStringGetTextDatum(t->cols[res.field_col[a]].name);
			values[1] = CStringGetTextDatum(t->cols[res.field_col[b]].name);
			values[2] = Float8GetDatum(maxoff > 0 ? m / maxoff : 0.0);
			values[3] = Float8GetDatum(m);
			values[4] = BoolGetDatum(res.field_cluster[a] == res.field_cluster[b]);
			values[5] = Int32GetDatum(res.field_cluster[a]);
			values[6] = Int32GetDatum(res.field_cluster[b]);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	ereport(DEBUG1,
			(errmsg_internal("samplellm_interactions: %s, %d fields, %d clusters",
							 res.variant, F, res.nclusters)));
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return (Datum) 0;
}
