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

#include "access/relation.h"
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

/* Receives the chosen rows of a finished run, in order. */
typedef struct Emitter
{
	void		(*begin) (void *arg);
	void		(*row) (void *arg, const SlRun *run, Datum *values, bool *isnull);
	void		(*end) (void *arg);
	void	   *arg;
	const bool *assign_skip;	/* per column: the target assigns it, or NULL */
} Emitter;

/*
 * Runs the pipeline under the ledger: every run started gets a record, in
 * the caller's transaction when it succeeds (with the rows it produced),
 * in the failure journal when it does not.  Returns the run id.
 */
static int64
run_recorded(FunctionCallInfo fcinfo, MemoryContext parent, Oid rowtype,
			 const SlRunOptions *opt, const char *target, const char *idem_key,
			 const Emitter *emit)
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
	run = sl_run_create(parent, opt);
	MemoryContextSwitchTo(run->cxt);
	sl_run_prepare(run, rowtype);
	MemoryContextSwitchTo(old);
	rec.run_id = sl_ledger_next_id();

	PG_TRY();
	{
		const SlRowSet *pool;
		Datum	   *values;
		bool	   *isnull;
		int			i;

		MemoryContextSwitchTo(run->cxt);
		sl_run_execute(run);

		pool = run->pool_rows;
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
	Emitter		em;

	sl_run_options_parse(fcinfo, 1, &opt);
	(void) sl_source_relid(rowtype);
	sl_ledger_check_ready("samplellm_generate");
	InitMaterializedSRF(fcinfo, 0);

	te.rsinfo = rsinfo;
	te.values = palloc(sizeof(Datum) * rsinfo->setDesc->natts);
	te.nulls = palloc(sizeof(bool) * rsinfo->setDesc->natts);
	em.begin = NULL;
	em.row = emit_tuple;
	em.end = NULL;
	em.arg = &te;
	em.assign_skip = NULL;
	(void) run_recorded(fcinfo, rsinfo->econtext->ecxt_per_query_memory, rowtype, &opt,
						NULL, NULL, &em);
	return (Datum) 0;
}

/* ---- samplellm_generate_into ---- */

typedef struct InsertEmit
{
	char	   *sql;			/* INSERT INTO target (...) VALUES ($1, ...) */
	int			nparams;
	Oid		   *paramtypes;
	int		   *param_col;		/* source column of each parameter */
	AttrNumber *target_att;		/* target column of each parameter */
	SPIPlanPtr	plan;
	Datum	   *pvalues;
	char	   *pnulls;
	int64		inserted;
	bool	   *assign_skip;	/* source columns the target assigns */
} InsertEmit;

/*
 * generate_into's source must be something with rows and a row type: an
 * index or a sequence would otherwise fail with "type with OID 0 does not
 * exist".
 */
static void
check_source_relation(Oid source)
{
	char		relkind = get_rel_relkind(source);

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("source \"%s\" is not a table, view, materialized view or foreign table",
						get_rel_name(source)),
				 errdetail("samplellm learns from the rows of a relation that has them."),
				 errhint("Pass the table the index or sequence belongs to.")));
}

/*
 * The INSERT that receives the rows: every source column the target has,
 * except the target's generated and identity columns, which the target
 * computes.  Prepared (and dropped) now as the caller, so that a missing
 * privilege, a missing column or an incompatible type is an error before
 * anything is paid for; PostgreSQL's own message names the column.
 */
static void
plan_insert(Oid source, Oid target, InsertEmit *ie)
{
	TupleDesc	sdesc = lookup_rowtype_tupdesc_copy(get_rel_type_id(source), -1);
	Relation	trel = relation_open(target, AccessShareLock);
	TupleDesc	tdesc = RelationGetDescr(trel);
	StringInfoData cols;
	StringInfoData vals;
	bool	   *covered = palloc0(sizeof(bool) * tdesc->natts);
	int			i;
	int			c = 0;
	SPIPlanPtr	plan;

	if (trel->rd_rel->relkind != RELKIND_RELATION &&
		trel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE &&
		trel->rd_rel->relkind != RELKIND_FOREIGN_TABLE &&
		trel->rd_rel->relkind != RELKIND_VIEW)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("target \"%s\" is not a table", RelationGetRelationName(trel))));

	initStringInfo(&cols);
	initStringInfo(&vals);
	ie->assign_skip = palloc0(sizeof(bool) * sdesc->natts);
	ie->paramtypes = palloc(sizeof(Oid) * sdesc->natts);
	ie->param_col = palloc(sizeof(int) * sdesc->natts);
	ie->target_att = palloc(sizeof(AttrNumber) * sdesc->natts);
	for (i = 0; i < sdesc->natts; i++)
	{
		Form_pg_attribute sa = TupleDescAttr(sdesc, i);
		AttrNumber	ta;
		Form_pg_attribute tatt;

		if (sa->attisdropped)
			continue;
		c++;					/* run columns are the live source columns */
		ta = get_attnum(target, NameStr(sa->attname));
		if (ta == InvalidAttrNumber)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("target \"%s\" has no column \"%s\", which source \"%s\" has",
							RelationGetRelationName(trel), NameStr(sa->attname),
							get_rel_name(source)),
					 errhint("Add the column to the target, or generate from a view of the source without it.")));
		tatt = TupleDescAttr(tdesc, ta - 1);
		covered[ta - 1] = true;
		/*
		 * The target computes its generated and identity columns; and a
		 * column the source's sequence assigns is left to the target's own
		 * default when it has one (a sequence of its own, typically).
		 */
		if (tatt->attgenerated || tatt->attidentity ||
			(OidIsValid(sl_column_sequence(source, sa->attnum)) && tatt->atthasdef))
		{
			ie->assign_skip[c - 1] = true;
			continue;
		}
		appendStringInfo(&cols, "%s%s", ie->nparams ? ", " : "", quote_identifier(NameStr(sa->attname)));
		appendStringInfo(&vals, "%s$%d", ie->nparams ? ", " : "", ie->nparams + 1);
		ie->paramtypes[ie->nparams] = sa->atttypid;
		ie->param_col[ie->nparams] = c - 1;
		ie->target_att[ie->nparams] = ta;
		ie->nparams++;
	}

	for (i = 0; i < tdesc->natts; i++)
	{
		Form_pg_attribute ta = TupleDescAttr(tdesc, i);

		if (ta->attisdropped || covered[i] || !ta->attnotnull || ta->atthasdef ||
			ta->attidentity || ta->attgenerated)
			continue;
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("target column \"%s\" is NOT NULL without a default, and source \"%s\" has no such column",
						NameStr(ta->attname), get_rel_name(source)),
				 errhint("Give the column a default, or generate from a source that has it.")));
	}
	/*
	 * Privileges are checked when an INSERT runs, not when it is prepared:
	 * check them now, before anything is paid for.
	 */
	if (pg_class_aclcheck(target, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
	{
		for (i = 0; i < ie->nparams; i++)
		{
			AttrNumber	ta = ie->target_att[i];

			if (pg_attribute_aclcheck(target, ta, GetUserId(), ACL_INSERT) != ACLCHECK_OK)
				aclcheck_error_col(ACLCHECK_NO_PRIV, get_relkind_objtype(trel->rd_rel->relkind),
								   RelationGetRelationName(trel),
								   NameStr(TupleDescAttr(tdesc, ta - 1)->attname));
		}
		if (ie->nparams == 0)
			aclcheck_error(ACLCHECK_NO_PRIV, get_relkind_objtype(trel->rd_rel->relkind),
						   RelationGetRelationName(trel));
	}
	ie->sql = psprintf("INSERT INTO %s (%s) VALUES (%s)",
					   quote_qualified_identifier(get_namespace_name(RelationGetNamespace(trel)),
												  RelationGetRelationName(trel)),
					   cols.data, vals.data);
	relation_close(trel, NoLock);

	SPI_connect();
	plan = SPI_prepare(ie->sql, ie->nparams, ie->paramtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare the insert: %s", SPI_result_code_string(SPI_result));
	SPI_freeplan(plan);
	SPI_finish();
}

static void
insert_begin(void *arg)
{
	InsertEmit *ie = arg;

	SPI_connect();
	ie->plan = SPI_prepare(ie->sql, ie->nparams, ie->paramtypes);
	if (ie->plan == NULL)
		elog(ERROR, "could not prepare the insert: %s", SPI_result_code_string(SPI_result));
	ie->pvalues = palloc(sizeof(Datum) * Max(ie->nparams, 1));
	ie->pnulls = palloc(sizeof(char) * Max(ie->nparams, 1));
}

static void
insert_end(void *arg)
{
	SPI_finish();
}

static void
emit_insert(void *arg, const SlRun *run, Datum *values, bool *isnull)
{
	InsertEmit *ie = arg;
	int			k;
	int			rc;

	for (k = 0; k < ie->nparams; k++)
	{
		ie->pvalues[k] = values[ie->param_col[k]];
		ie->pnulls[k] = isnull[ie->param_col[k]] ? 'n' : ' ';
	}
	rc = SPI_execute_plan(ie->plan, ie->pvalues, ie->pnulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "samplellm: insert into the target failed: %s", SPI_result_code_string(rc));
	ie->inserted += SPI_processed;
	CHECK_FOR_INTERRUPTS();
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
	InsertEmit	ie;
	char	   *target_name;
	char	   *key;
	int64		run_id;
	MemoryContext cxt;
	Emitter		em;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source and target must not be null")));
	source = PG_GETARG_OID(0);
	target = PG_GETARG_OID(1);
	sl_run_options_parse(fcinfo, 2, &opt);
	key = PG_ARGISNULL(11) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(11));
	check_source_relation(source);
	target_name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(target)),
											 get_rel_name(target));

	/* The caller's privileges first: nothing below may be probed without them. */
	memset(&ie, 0, sizeof(ie));
	plan_insert(source, target, &ie);
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
	em.begin = insert_begin;
	em.row = emit_insert;
	em.end = insert_end;
	em.arg = &ie;
	em.assign_skip = ie.assign_skip;
	run_id = run_recorded(fcinfo, cxt, get_rel_type_id(source), &opt, target_name, key, &em);
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
