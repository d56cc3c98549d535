/*-------------------------------------------------------------------------
 *
 * evaluate.c
 *	  samplellm_evaluate(): read real, synthetic and holdout rows and
 *	  return the quality, detection, utility and privacy metrics.
 *
 * Every check (arguments, relation kinds, privileges, matching columns,
 * the label) runs before any row is read.  The tables are read through SPI
 * as the caller, each into a seeded uniform sample of at most
 * SL_EVAL_MAX_ROWS rows, in the column order of the real table.  All
 * working memory lives in one context deleted before returning.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "evaluate.h"
#include "samplellm.h"

PG_FUNCTION_INFO_V1(samplellm_evaluate);

/* Tables, views, materialized views and foreign tables have rows to read. */
static SlTable *
eval_open(Oid relid, const char *argname, const char *label)
{
	char		relkind = get_rel_relkind(relid);

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table, view, materialized view or foreign table",
						relkind ? get_rel_name(relid) : "?"),
				 errdetail("The %s argument must name a relation that holds rows.", argname)));
	return sl_table_open(get_rel_type_id(relid), label);
}

static bool
is_string_type(Oid typid)
{
	return typid == TEXTOID || typid == VARCHAROID || typid == BPCHAROID ||
		typid == NAMEOID;
}

/*
 * Continuous columns compare as numbers, so any two continuous types match;
 * categorical columns compare by output text, so they must share a base
 * type (any two string types and any two enums also match).
 */
static bool
types_compatible(const SlColumn *a, const SlColumn *b)
{
	if (a->cls != b->cls)
		return false;
	if (a->cls == SL_CONTINUOUS || a->basetypid == b->basetypid)
		return true;
	if (is_string_type(a->basetypid) && is_string_type(b->basetypid))
		return true;
	return type_is_enum(a->basetypid) && type_is_enum(b->basetypid);
}

/*
 * Reorders other's columns into ref's order, or raises an error naming the
 * first column that differs.  Rows read through other then come out in
 * ref's column order.
 */
static void
align_columns(const SlTable *ref, SlTable *other, const char *argname)
{
	SlColumn   *cols = palloc(sizeof(SlColumn) * Max(ref->ncols, 1));

	for (int c = 0; c < ref->ncols; c++)
	{
		int			k;

		for (k = 0; k < other->ncols; k++)
			if (strcmp(ref->cols[c].name, other->cols[k].name) == 0)
				break;
		if (k == other->ncols)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of real table \"%s\" is missing from %s table \"%s\"",
							ref->cols[c].name, ref->relname, argname, other->relname),
					 errdetail("The tables compared must have the same column names."),
					 errhint("Compare views that select the same columns from both tables.")));
		if (!types_compatible(&ref->cols[c], &other->cols[k]))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" has type %s in real table \"%s\" but %s in %s table \"%s\"",
							ref->cols[c].name, ref->cols[c].typname, ref->relname,
							other->cols[k].typname, argname, other->relname),
					 errdetail("Numeric, date and time columns match one another; other columns must have the same type."),
					 errhint("Cast the column in a view over one of the tables.")));
		cols[c] = other->cols[k];
	}
	if (other->ncols != ref->ncols)
	{
		for (int k = 0; k < other->ncols; k++)
		{
			int			c;

			for (c = 0; c < ref->ncols; c++)
				if (strcmp(ref->cols[c].name, other->cols[k].name) == 0)
					break;
			if (c == ref->ncols)
				ereport(ERROR,
						(errcode(ERRCODE_DATATYPE_MISMATCH),
						 errmsg("column \"%s\" of %s table \"%s\" is not in real table \"%s\"",
								other->cols[k].name, argname, other->relname, ref->relname),
						 errdetail("The tables compared must have the same column names."),
						 errhint("Compare views that select the same columns from both tables.")));
		}
	}
	other->cols = cols;
	other->label_col = ref->label_col;
}

static SlRowSet *
eval_read(SlTable *t, const char *argname, uint64 seed)
{
	int64		seen;
	SlRowSet   *rs = sl_seeds_read(t, SL_EVAL_MAX_ROWS, seed, &seen);

	if (rs->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s table \"%s\" has no rows visible to you", argname, t->relname),
				 errhint("Metrics compare distributions: every table needs at least one row.")));
	if (seen > rs->nrows)
		ereport(NOTICE,
				(errmsg("%s table \"%s\" has " INT64_FORMAT " rows; a uniform sample of %d is evaluated",
						argname, t->relname, seen, rs->nrows)));
	return rs;
}

/*
 * samplellm_evaluate(real regclass, synthetic regclass, label text,
 *					  holdout regclass, seed bigint)
 *	RETURNS TABLE (metric text, columns text, score float8)
 */
Datum
samplellm_evaluate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			real_relid;
	Oid			syn_relid;
	Oid			hold_relid = InvalidOid;
	char	   *label = NULL;
	uint64		seed;
	MemoryContext cxt;
	MemoryContext old;
	SlTable    *treal;
	SlTable    *tsyn;
	SlTable    *thold = NULL;
	SlEvalData	d;
	SlEvalOut	out;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", PG_ARGISNULL(0) ? "real" : "synthetic"),
				 errhint("Pass tables as regclass values, as in samplellm_evaluate('clicks', 'clicks_synthetic').")));
	if (PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("seed must not be null"),
				 errhint("Omit seed to use 0.")));
	real_relid = PG_GETARG_OID(0);
	syn_relid = PG_GETARG_OID(1);
	if (!PG_ARGISNULL(2))
		label = text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (!PG_ARGISNULL(3))
		hold_relid = PG_GETARG_OID(3);
	seed = (uint64) PG_GETARG_INT64(4);

	InitMaterializedSRF(fcinfo, 0);
	cxt = AllocSetContextCreate(rsinfo->econtext->ecxt_per_query_memory,
								"samplellm evaluate", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(cxt);

	/* every check first: kinds, privileges, columns, label */
	treal = eval_open(real_relid, "real", label);
	tsyn = eval_open(syn_relid, "synthetic", NULL);
	align_columns(treal, tsyn, "synthetic");
	if (OidIsValid(hold_relid))
	{
		thold = eval_open(hold_relid, "holdout", NULL);
		align_columns(treal, thold, "holdout");
	}

	memset(&d, 0, sizeof(d));
	d.t = treal;
	d.seed = seed;
	d.real_relid = real_relid;
	d.syn_relid = syn_relid;
	d.max_epochs = sl_epochs;
	d.real = eval_read(treal, "real", sl_stream_seed(seed, SL_STREAM_EVAL_REAL, 0));
	d.syn = eval_read(tsyn, "synthetic", sl_stream_seed(seed, SL_STREAM_EVAL_SYN, 0));
	if (thold)
		d.hold = eval_read(thold, "holdout", sl_stream_seed(seed, SL_STREAM_EVAL_HOLD, 0));

	if (label != NULL && d.hold != NULL)
		sl_eval_utility_check(&d);

	memset(&out, 0, sizeof(out));
	sl_eval_quality(&d, &out);
	sl_eval_detection(&d, &out);
	/* utility needs both a label and rows to test on; otherwise skipped */
	if (label != NULL && d.hold != NULL)
		sl_eval_utility(&d, &out);
	sl_eval_privacy(&d, &out);
	sl_eval_keys(&d, &out);

	for (int i = 0; i < out.n; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};

		values[0] = CStringGetTextDatum(out.metric[i]);
		if (out.columns[i])
			values[1] = CStringGetTextDatum(out.columns[i]);
		else
			nulls[1] = true;
		values[2] = Float8GetDatum(out.score[i]);
		nulls[2] = out.isnull[i];
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return (Datum) 0;
}
