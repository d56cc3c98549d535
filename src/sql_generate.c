/*-------------------------------------------------------------------------
 *
 * sql_generate.c
 *	  The SQL functions that run the pipeline: samplellm_generate() and
 *	  samplellm_last_run().
 *
 * The result is materialized: a failing call returns no rows, so an
 * INSERT ... SELECT leaves its target unchanged.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/namespace.h"
#include "nodes/makefuncs.h"
#include "utils/fmgroids.h"
#include "utils/regproc.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "ledger.h"
#include "run.h"
#include "sql.h"

/*
 * Runs the pipeline under the ledger: every run started gets a record, in
 * the caller's transaction when it succeeds (with the rows it produced),
 * in the failure journal when it does not.  Returns the run id.
 */
int64
sl_sql_run_recorded(MemoryContext parent, Oid rowtype, const SlRunOptions *opt,
					const char *target, const char *idem_key, const SlEmitter *emit)
{
	SlLedgerRecord rec;
	SlRun	   *volatile run = NULL;
	MemoryContext old = CurrentMemoryContext;

	memset(&rec, 0, sizeof(rec));
	rec.started_at = GetCurrentTimestamp();
	rec.source = format_type_be_qualified(rowtype);
	rec.target = target;
	rec.n_requested = opt->n;
	rec.idempotency_key = idem_key;

	/*
	 * Checks, seeds, exemplars and prompt: a call refused here has cost
	 * nothing and is not a run, so it leaves no record.
	 */
	sl_progress_begin(rec.source, opt->n);
	PG_TRY();
	{
		run = sl_run_create(parent, opt);
		MemoryContextSwitchTo(run->cxt);
		sl_run_prepare(run, rowtype);
		if (emit->prepared)
			emit->prepared(emit->arg, run);
		MemoryContextSwitchTo(old);
	}
	PG_CATCH();
	{
		sl_progress_end();
		PG_RE_THROW();
	}
	PG_END_TRY();
	rec.run_id = sl_ledger_next_id();
	sl_progress_run_id(rec.run_id);

	PG_TRY();
	{
		const SlRowSet *pool;
		Datum	   *values;
		bool	   *isnull;
		int			i;

		MemoryContextSwitchTo(run->cxt);
		sl_run_execute(run);

		pool = run->pool_rows;
		sl_progress_phase(SL_PHASE_RESULT);
		values = palloc(sizeof(Datum) * run->t->ncols);
		isnull = palloc(sizeof(bool) * run->t->ncols);
		if (emit->begin)
			emit->begin(emit->arg);
		for (i = 0; i < run->nchosen; i++)
		{
			int			r = run->chosen[i];

			memcpy(values, pool->values + SL_CELL(pool, r, 0), sizeof(Datum) * run->t->ncols);
			memcpy(isnull, pool->isnull + SL_CELL(pool, r, 0), sizeof(bool) * run->t->ncols);
			/* identity and serial columns: the next value, as an insert would */
			sl_table_assign_keys(run->t, values, isnull, emit->assign_skip);
			emit->row(emit->arg, run, values, isnull);
		}
		if (emit->end)
			emit->end(emit->arg);
		MemoryContextSwitchTo(old);

		rec.status = "ok";
		rec.n_returned = run->nchosen;
		rec.details = sl_run_json(run, "ok", run->nchosen);
		sl_ledger_record_success(&rec);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		/* Record the failure, then re-raise the error as it was. */
		MemoryContextSwitchTo(old);
		sl_progress_end();
		edata = CopyErrorData();
		FlushErrorState();
		PG_TRY();
		{
			rec.status = "failed";
			rec.error = edata->message;
			rec.details = sl_run_json(run, "failed", 0);
			sl_journal_append(&rec);
		}
		PG_CATCH();
		{
			FlushErrorState();
		}
		PG_END_TRY();
		ReThrowError(edata);
	}
	PG_END_TRY();

	sl_progress_end();
	sl_run_report(run);
	sl_run_free(run);
	return rec.run_id;
}

typedef struct TupleEmit
{
	ReturnSetInfo *rsinfo;
	Datum	   *values;
	bool	   *nulls;
} TupleEmit;

static void
emit_tuple(void *arg, const SlRun *run, Datum *values, bool *isnull)
{
	TupleEmit  *te = arg;
	int			natts = te->rsinfo->setDesc->natts;
	int			c;

	/* Dropped columns stay NULL. */
	memset(te->nulls, true, sizeof(bool) * natts);
	for (c = 0; c < run->t->ncols; c++)
	{
		int			a = run->t->cols[c].attnum - 1;

		te->values[a] = values[c];
		te->nulls[a] = isnull[c];
	}
	tuplestore_putvalues(te->rsinfo->setResult, te->rsinfo->setDesc, te->values, te->nulls);
}

PG_FUNCTION_INFO_V1(samplellm_generate);

Datum
samplellm_generate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			rowtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	SlRunOptions opt;
	TupleEmit	te;
	SlEmitter	em;

	sl_run_options_parse(fcinfo, 1, &opt);
	if (PG_NARGS() > 10)
		sl_run_options_set_instructions(&opt, PG_ARGISNULL(10),
										PG_ARGISNULL(10) ? NULL : PG_GETARG_TEXT_PP(10));
	(void) sl_source_relid(rowtype);
	sl_ledger_check_ready("samplellm_generate");
	InitMaterializedSRF(fcinfo, 0);

	te.rsinfo = rsinfo;
	te.values = palloc(sizeof(Datum) * rsinfo->setDesc->natts);
	te.nulls = palloc(sizeof(bool) * rsinfo->setDesc->natts);
	memset(&em, 0, sizeof(em));
	em.row = emit_tuple;
	em.arg = &te;
	(void) sl_sql_run_recorded(rsinfo->econtext->ecxt_per_query_memory, rowtype, &opt,
						NULL, NULL, &em);
	return (Datum) 0;
}

/* ---- samplellm_generate(text, ...) RETURNS SETOF jsonb ---- */

typedef struct JsonEmit
{
	ReturnSetInfo *rsinfo;
	TupleDesc	rowdesc;		/* the source's row type */
	FmgrInfo	to_jsonb;		/* to_jsonb(anyelement) of that row type */
	Datum	   *values;
	bool	   *nulls;
} JsonEmit;

static void
emit_jsonb(void *arg, const SlRun *run, Datum *values, bool *isnull)
{
	JsonEmit   *je = arg;
	int			natts = je->rowdesc->natts;
	HeapTuple	tup;
	Datum		row;
	Datum		out;
	bool		outnull = false;
	int			c;

	memset(je->nulls, true, sizeof(bool) * natts);
	for (c = 0; c < run->t->ncols; c++)
	{
		int			a = run->t->cols[c].attnum - 1;

		je->values[a] = values[c];
		je->nulls[a] = isnull[c];
	}
	tup = heap_form_tuple(je->rowdesc, je->values, je->nulls);
	row = HeapTupleGetDatum(tup);
	/* exactly what to_jsonb() of the typed row gives: keys, formats, NULLs */
	out = FunctionCall1(&je->to_jsonb, row);
	tuplestore_putvalues(je->rsinfo->setResult, je->rsinfo->setDesc, &out, &outnull);
	heap_freetuple(tup);
}

PG_FUNCTION_INFO_V1(samplellm_generate_jsonb);

/*
 * samplellm_generate('clicks', n, ...): the literal form.  PostgreSQL cannot
 * type a result by a table's name, so each row comes as one jsonb object;
 * same options, checks and run record as the typed form.
 */
Datum
samplellm_generate_jsonb(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlRunOptions opt;
	JsonEmit	je;
	SlEmitter	em;
	char	   *name;
	Oid			relid;
	Oid			rowtype;
	FuncExpr   *call;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
#if PG_VERSION_NUM >= 160000
	relid = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(name, NULL)),
							 AccessShareLock, true);
#else
	relid = RangeVarGetRelid(makeRangeVarFromNameList(stringToQualifiedNameList(name)),
							 AccessShareLock, true);
#endif
	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"%s\" does not exist", name),
				 errhint("Name a table, view, materialized view or foreign table, as in samplellm_generate('clicks', 100).")));
	sl_sql_check_source(relid);
	rowtype = get_rel_type_id(relid);
	sl_run_options_parse(fcinfo, 1, &opt);
	sl_run_options_set_instructions(&opt, PG_ARGISNULL(10),
									PG_ARGISNULL(10) ? NULL : PG_GETARG_TEXT_PP(10));
	sl_ledger_check_ready("samplellm_generate");
	/* SETOF jsonb: a one-column result of our own (there is no row type to read) */
	{
		MemoryContext old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
		TupleDesc	desc = CreateTemplateTupleDesc(1);

		if (!(rsinfo->allowedModes & SFRM_Materialize))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("materialize mode required, but it is not allowed in this context")));
		TupleDescInitEntry(desc, (AttrNumber) 1, "samplellm_generate", JSONBOID, -1, 0);
		rsinfo->returnMode = SFRM_Materialize;
		rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
		rsinfo->setDesc = desc;
		MemoryContextSwitchTo(old);
	}

	memset(&je, 0, sizeof(je));
	je.rsinfo = rsinfo;
	je.rowdesc = lookup_rowtype_tupdesc_copy(rowtype, -1);
	je.values = palloc(sizeof(Datum) * Max(je.rowdesc->natts, 1));
	je.nulls = palloc(sizeof(bool) * Max(je.rowdesc->natts, 1));
	/* to_jsonb is polymorphic: it reads its argument's type from the call */
	call = makeFuncExpr(F_TO_JSONB, JSONBOID,
						list_make1(makeNullConst(rowtype, -1, InvalidOid)),
						InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	fmgr_info(F_TO_JSONB, &je.to_jsonb);
	je.to_jsonb.fn_expr = (Node *) call;

	memset(&em, 0, sizeof(em));
	em.row = emit_jsonb;
	em.arg = &je;
	(void) sl_sql_run_recorded(rsinfo->econtext->ecxt_per_query_memory, rowtype, &opt,
							   NULL, NULL, &em);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(samplellm_generate_into);

/*
 * samplellm_generate_into(source, target, n, ...): inserts n generated rows
 * of source into target, all or nothing, and returns the run id.
 */
Datum
samplellm_generate_into(PG_FUNCTION_ARGS)
{
	Oid			source;
	Oid			target;
	SlRunOptions opt;
	SlInsert   *ins;
	char	   *target_name;
	char	   *key;
	int64		run_id;
	MemoryContext cxt;
	SlEmitter	em;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source and target must not be null")));
	source = PG_GETARG_OID(0);
	target = PG_GETARG_OID(1);
	sl_run_options_parse(fcinfo, 2, &opt);
	key = PG_ARGISNULL(11) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(11));
	if (PG_NARGS() > 12)
		sl_run_options_set_instructions(&opt, PG_ARGISNULL(12),
										PG_ARGISNULL(12) ? NULL : PG_GETARG_TEXT_PP(12));
	sl_sql_check_source(source);
	target_name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(target)),
											 get_rel_name(target));

	/* The caller's privileges first: nothing below may be probed without them. */
	ins = sl_insert_plan(source, target, false);
	sl_ledger_check_ready("samplellm_generate_into");

	/*
	 * A job rerun after its success is a no-op (see README, pg_cron).  Calls
	 * with the same key wait for each other here: the loser finds the
	 * winner's record once it commits, without paying for anything.
	 */
	if (key)
	{
		int64		done;

		sl_ledger_lock_key(target, key);
		done = sl_ledger_find_success(target_name, key);
		if (done > 0)
		{
			ereport(NOTICE,
					(errmsg("samplellm: run " INT64_FORMAT " already inserted rows into %s with idempotency key \"%s\"; nothing done",
							done, target_name, key)));
			PG_RETURN_INT64(done);
		}
	}

	cxt = AllocSetContextCreate(CurrentMemoryContext, "samplellm generate_into",
								ALLOCSET_DEFAULT_SIZES);
	sl_insert_emitter(ins, &em);
	run_id = sl_sql_run_recorded(cxt, get_rel_type_id(source), &opt, target_name, key, &em);
	MemoryContextDelete(cxt);
	PG_RETURN_INT64(run_id);
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
