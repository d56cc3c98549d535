/*-------------------------------------------------------------------------
 *
 * sql_insert.c
 *	  The INSERT that receives a run's rows (generate_into, related tables).
 *
 * Prepared as the caller before anything is paid for, so that a missing
 * privilege, a missing column or an incompatible type is an error up
 * front; the rows then go in one at a time through SPI, all in the
 * caller's statement, so a failure inserts nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/typcache.h"

#include "run.h"
#include "sql.h"

/* ---- samplellm_generate_into ---- */

struct SlInsert
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
	MemoryContext cxt;			/* where the returned rows live */
	bool		returning;		/* collect the inserted rows (RETURNING *) */
	TupleDesc	tdesc;			/* the target's, for the returned rows */
	int			nreturned;
	int			returned_cap;
	char	 ***returned;		/* per row, per target attribute: its text */
};

/*
 * generate_into's source must be something with rows and a row type: an
 * index or a sequence would otherwise fail with "type with OID 0 does not
 * exist".
 */
void
sl_sql_check_source(Oid source)
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
SlInsert *
sl_insert_plan(Oid source, Oid target, bool returning)
{
	SlInsert   *ie = palloc0(sizeof(SlInsert));
	TupleDesc	sdesc = lookup_rowtype_tupdesc_copy(get_rel_type_id(source), -1);
	Relation	trel = relation_open(target, AccessShareLock);
	TupleDesc	tdesc = RelationGetDescr(trel);
	StringInfoData cols;
	StringInfoData vals;
	bool	   *covered = palloc0(sizeof(bool) * tdesc->natts);
	int			i;
	int			c = 0;
	SPIPlanPtr	plan;

	ie->cxt = CurrentMemoryContext;
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
	ie->returning = returning;
	ie->tdesc = CreateTupleDescCopy(tdesc);
	ie->sql = psprintf("INSERT INTO %s (%s) VALUES (%s)%s",
					   quote_qualified_identifier(get_namespace_name(RelationGetNamespace(trel)),
												  RelationGetRelationName(trel)),
					   cols.data, vals.data, returning ? " RETURNING *" : "");
	relation_close(trel, NoLock);

	SPI_connect();
	plan = SPI_prepare(ie->sql, ie->nparams, ie->paramtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare the insert: %s", SPI_result_code_string(SPI_result));
	SPI_freeplan(plan);
	SPI_finish();
	return ie;
}

static void
insert_begin(void *arg)
{
	SlInsert *ie = arg;

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
	SlInsert *ie = arg;
	int			k;
	int			rc;

	for (k = 0; k < ie->nparams; k++)
	{
		ie->pvalues[k] = values[ie->param_col[k]];
		ie->pnulls[k] = isnull[ie->param_col[k]] ? 'n' : ' ';
	}
	rc = SPI_execute_plan(ie->plan, ie->pvalues, ie->pnulls, false, 0);
	if (rc != (ie->returning ? SPI_OK_INSERT_RETURNING : SPI_OK_INSERT))
		elog(ERROR, "samplellm: insert into the target failed: %s", SPI_result_code_string(rc));
	ie->inserted += SPI_processed;
	if (ie->returning && SPI_processed == 1)
	{
		/* the row as the target stored it (its defaults, its keys), as text */
		MemoryContext old = MemoryContextSwitchTo(ie->cxt);
		char	  **row = palloc0(sizeof(char *) * ie->tdesc->natts);
		int			a;

		for (a = 0; a < ie->tdesc->natts; a++)
			if (!TupleDescAttr(ie->tdesc, a)->attisdropped)
				row[a] = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, a + 1);
		if (ie->nreturned == ie->returned_cap)
		{
			ie->returned_cap = Max(64, ie->returned_cap * 2);
			ie->returned = ie->returned ? repalloc(ie->returned, sizeof(char **) * ie->returned_cap) :
				palloc(sizeof(char **) * ie->returned_cap);
		}
		ie->returned[ie->nreturned++] = row;
		MemoryContextSwitchTo(old);
	}
	CHECK_FOR_INTERRUPTS();
}

void
sl_insert_emitter(SlInsert *ins, SlEmitter *em)
{
	memset(em, 0, sizeof(SlEmitter));
	em->begin = insert_begin;
	em->row = emit_insert;
	em->end = insert_end;
	em->arg = ins;
	em->assign_skip = ins->assign_skip;
}

char	 ***
sl_insert_returned(const SlInsert *ins, int *nrows, TupleDesc *desc)
{
	*nrows = ins->nreturned;
	*desc = ins->tdesc;
	return ins->returned;
}
