/*-------------------------------------------------------------------------
 *
 * table_keys.c
 *	  Column roles from the catalog: primary and unique keys, identity and
 *	  serial columns, generated columns, foreign keys.
 *
 * What the roles mean for a run:
 * - identity and serial columns (DEFAULT nextval(...)) are "assigned": no
 *   provider writes them, candidates leave them NULL, and a returned row
 *   gets the next value of the column's sequence (sl_keys_assign), as an
 *   INSERT would; generate_into leaves them to the target when the target
 *   has a default of its own;
 * - the other unique keys ("natural" keys such as sku or email) must get
 *   values absent from the table (an index probe, stage1_validate.c) and
 *   unique among the returned rows (stage1_pool.c);
 * - foreign keys reference visible rows of their parents (table_refs.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_index.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/rewriteHandler.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "table.h"

static int
column_of(const SlTable *t, AttrNumber attnum)
{
	int			c;

	for (c = 0; c < t->ncols; c++)
		if (t->cols[c].attnum == attnum)
			return c;
	return -1;
}

/* The sequence of a DEFAULT nextval('seq'::regclass), under its casts. */
static Oid
nextval_sequence(Node *expr)
{
	while (expr)
	{
		if (IsA(expr, FuncExpr))
		{
			FuncExpr   *f = (FuncExpr *) expr;

			if (f->funcid == F_NEXTVAL && list_length(f->args) == 1 &&
				IsA(linitial(f->args), Const))
			{
				Const	   *c = linitial_node(Const, f->args);

				return c->constisnull ? InvalidOid : DatumGetObjectId(c->constvalue);
			}
			if (f->funcformat == COERCE_IMPLICIT_CAST && list_length(f->args) == 1)
			{
				expr = linitial(f->args);
				continue;
			}
			return InvalidOid;
		}
		if (IsA(expr, RelabelType))
		{
			expr = (Node *) ((RelabelType *) expr)->arg;
			continue;
		}
		return InvalidOid;
	}
	return InvalidOid;
}

/* conkey-style int2 array of a catalog tuple, as column indexes of t */
static int *
key_columns(const SlTable *t, HeapTuple tup, AttrNumber anum, TupleDesc desc,
			int *n, bool *complete)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, anum, desc, &isnull);
	ArrayType  *arr;
	int16	   *att;
	int		   *cols;
	int			i;

	*n = 0;
	*complete = false;
	if (isnull)
		return NULL;
	arr = DatumGetArrayTypeP(d);
	*n = ARR_DIMS(arr)[0];
	att = (int16 *) ARR_DATA_PTR(arr);
	cols = palloc(sizeof(int) * Max(*n, 1));
	*complete = true;
	for (i = 0; i < *n; i++)
	{
		cols[i] = column_of(t, att[i]);
		if (cols[i] < 0)
			*complete = false;
	}
	return cols;
}

static AttrNumber *
attnum_array(HeapTuple tup, AttrNumber anum, TupleDesc desc, int n)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, anum, desc, &isnull);
	AttrNumber *out = palloc(sizeof(AttrNumber) * Max(n, 1));
	ArrayType  *arr;
	int			i;

	if (isnull)
		elog(ERROR, "samplellm: a foreign key without referenced columns");
	arr = DatumGetArrayTypeP(d);
	for (i = 0; i < n; i++)
		out[i] = ((int16 *) ARR_DATA_PTR(arr))[i];
	return out;
}

static Oid *
oid_array(HeapTuple tup, AttrNumber anum, TupleDesc desc, int n)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, anum, desc, &isnull);
	Oid		   *out = palloc(sizeof(Oid) * Max(n, 1));
	ArrayType  *arr;
	int			i;

	if (isnull)
		elog(ERROR, "samplellm: a foreign key without equality operators");
	arr = DatumGetArrayTypeP(d);
	for (i = 0; i < n; i++)
		out[i] = ((Oid *) ARR_DATA_PTR(arr))[i];
	return out;
}

/* Keys and foreign keys from pg_constraint (no SQL). */
static void
load_constraints(SlTable *t, Oid relid)
{
	Relation	rel = table_open(ConstraintRelationId, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	int			capk = 4;
	int			capf = 4;

	t->keys = palloc0(sizeof(SlKey) * capk);
	t->fkeys = palloc0(sizeof(SlForeignKey) * capf);
	ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, ConstraintRelidTypidNameIndexId, true, NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
		int			n;
		bool		complete;
		int		   *cols;

		if (con->contype != CONSTRAINT_PRIMARY && con->contype != CONSTRAINT_UNIQUE &&
			con->contype != CONSTRAINT_FOREIGN)
			continue;
		cols = key_columns(t, tup, Anum_pg_constraint_conkey, desc, &n, &complete);
		if (!complete || n == 0)
			continue;
		if (con->contype == CONSTRAINT_FOREIGN)
		{
			SlForeignKey *fk;
			int			i;

			if (t->nfkeys == capf)
			{
				capf *= 2;
				t->fkeys = repalloc(t->fkeys, sizeof(SlForeignKey) * capf);
			}
			fk = &t->fkeys[t->nfkeys++];
			memset(fk, 0, sizeof(SlForeignKey));
			fk->name = pstrdup(NameStr(con->conname));
			fk->ncols = n;
			fk->cols = cols;
			fk->parent = con->confrelid;
			fk->self = (con->confrelid == relid);
			fk->parent_attnums = attnum_array(tup, Anum_pg_constraint_confkey, desc, n);
			fk->eqops = oid_array(tup, Anum_pg_constraint_conpfeqop, desc, n);
			for (i = 0; i < n; i++)
			{
				fk->nullable |= !t->cols[cols[i]].notnull;
				t->cols[cols[i]].roles |= SL_ROLE_FOREIGN;
			}
		}
		else
		{
			SlKey	   *k;
			HeapTuple	itup;
			int			i;

			if (t->nkeys == capk)
			{
				capk *= 2;
				t->keys = repalloc(t->keys, sizeof(SlKey) * capk);
			}
			k = &t->keys[t->nkeys++];
			memset(k, 0, sizeof(SlKey));
			k->name = pstrdup(NameStr(con->conname));
			k->ncols = n;
			k->cols = cols;
			k->indexid = con->conindid;
			k->primary = (con->contype == CONSTRAINT_PRIMARY);
			itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(con->conindid));
			if (HeapTupleIsValid(itup))
			{
				k->nulls_not_distinct = ((Form_pg_index) GETSTRUCT(itup))->indnullsnotdistinct;
				ReleaseSysCache(itup);
			}
			for (i = 0; i < n; i++)
				t->cols[cols[i]].roles |= k->primary ? SL_ROLE_PRIMARY : SL_ROLE_UNIQUE;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* Unique indexes that back no constraint (CREATE UNIQUE INDEX). */
static void
load_unique_indexes(SlTable *t, Relation rel)
{
	List	   *indexes = RelationGetIndexList(rel);
	ListCell   *lc;
	int			cap = t->nkeys + list_length(indexes) + 1;

	t->keys = repalloc(t->keys, sizeof(SlKey) * cap);
	foreach(lc, indexes)
	{
		Oid			indexid = lfirst_oid(lc);
		HeapTuple	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(indexid));
		Form_pg_index idx;
		bool		known = false;
		bool		isnull;
		SlKey	   *k;
		int			i;

		if (!HeapTupleIsValid(itup))
			continue;
		idx = (Form_pg_index) GETSTRUCT(itup);
		for (i = 0; i < t->nkeys; i++)
			known |= (t->keys[i].indexid == indexid);
		/*
		 * Expression and partial indexes say nothing about a column alone
		 * (and their predicate would have to be evaluated): left out.
		 */
		if (known || !idx->indisunique || !idx->indisvalid ||
			!heap_attisnull(itup, Anum_pg_index_indexprs, NULL) ||
			!heap_attisnull(itup, Anum_pg_index_indpred, NULL))
		{
			ReleaseSysCache(itup);
			continue;
		}
		k = &t->keys[t->nkeys];
		memset(k, 0, sizeof(SlKey));
		k->name = get_rel_name(indexid);
		k->indexid = indexid;
		k->nulls_not_distinct = idx->indnullsnotdistinct;
		k->ncols = idx->indnkeyatts;
		k->cols = palloc(sizeof(int) * Max(k->ncols, 1));
		for (i = 0; i < k->ncols; i++)
		{
			k->cols[i] = column_of(t, idx->indkey.values[i]);
			if (k->cols[i] < 0)
				break;
		}
		(void) isnull;
		if (i == k->ncols && k->ncols > 0)
		{
			for (i = 0; i < k->ncols; i++)
				t->cols[k->cols[i]].roles |= SL_ROLE_UNIQUE;
			t->nkeys++;
		}
		ReleaseSysCache(itup);
	}
	list_free(indexes);
}

/* The sequence that assigns a column (identity or DEFAULT nextval), or InvalidOid. */
Oid
sl_column_sequence(Oid relid, AttrNumber attnum)
{
	Relation	rel = relation_open(relid, AccessShareLock);
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);
	Oid			seq = InvalidOid;

	if (rel->rd_rel->relkind == RELKIND_RELATION ||
		rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		if (att->attidentity)
			seq = getIdentitySequence(relid, attnum, false);
		else if (att->atthasdef && !att->attgenerated)
		{
			Node	   *def = build_column_default(rel, attnum);

			seq = def ? nextval_sequence(def) : InvalidOid;
		}
	}
	relation_close(rel, NoLock);
	return seq;
}

/*
 * Reads the roles of a table's columns (tables and partitioned tables; a
 * view or a foreign table has none).  Called by sl_table_open.
 */
void
sl_table_load_keys(SlTable *t)
{
	char		relkind = get_rel_relkind(t->relid);
	Relation	rel;
	int			c;

	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE)
		return;
	rel = relation_open(t->relid, AccessShareLock);
	for (c = 0; c < t->ncols; c++)
	{
		SlColumn   *col = &t->cols[c];
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), col->attnum - 1);

		if (col->generated)
			col->roles |= SL_ROLE_GENERATED;
		if (att->attidentity)
		{
			col->roles |= SL_ROLE_IDENTITY;
			col->seqid = getIdentitySequence(t->relid, col->attnum, false);
			col->identity_always = (att->attidentity == ATTRIBUTE_IDENTITY_ALWAYS);
		}
		else if (att->atthasdef && !att->attgenerated)
		{
			Node	   *def = build_column_default(rel, col->attnum);
			Oid			seq = def ? nextval_sequence(def) : InvalidOid;

			if (OidIsValid(seq))
			{
				col->roles |= SL_ROLE_SERIAL;
				col->seqid = seq;
			}
		}
		col->assigned = OidIsValid(col->seqid);
		if (col->assigned)
			t->nwritten -= !col->generated;
	}
	load_constraints(t, t->relid);
	load_unique_indexes(t, rel);
	relation_close(rel, NoLock);
	for (c = 0; c < t->nkeys; c++)
	{
		SlKey	   *k = &t->keys[c];
		int			i;

		k->checked = true;
		for (i = 0; i < k->ncols; i++)
			if (t->cols[k->cols[i]].assigned || t->cols[k->cols[i]].generated)
				k->checked = false;
		/* a single-column natural key tells stage 2 nothing: every value is new */
		if (k->checked && k->ncols == 1)
			t->cols[k->cols[0]].unique_alone = true;
	}
}

/* A column's roles in words, for the run record. */
static const char *
role_text(const SlTable *t, int c)
{
	const SlColumn *col = &t->cols[c];
	StringInfoData buf;
	int			f;

	initStringInfo(&buf);
#define ADD(s) appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", (s))
	if (col->roles & SL_ROLE_PRIMARY)
		ADD("primary key");
	if (col->roles & SL_ROLE_UNIQUE)
		ADD("unique key");
	if (col->roles & SL_ROLE_IDENTITY)
		ADD(col->identity_always ? "identity (always)" : "identity");
	if (col->roles & SL_ROLE_SERIAL)
		ADD("serial");
	if (col->roles & SL_ROLE_GENERATED)
		ADD("generated");
	for (f = 0; f < t->nfkeys; f++)
	{
		int			i;

		for (i = 0; i < t->fkeys[f].ncols; i++)
			if (t->fkeys[f].cols[i] == c)
				ADD(psprintf("references %s", get_rel_name(t->fkeys[f].parent)));
	}
	if (col->excluded)
		ADD("excluded");
#undef ADD
	return buf.len ? buf.data : "ordinary";
}

/* The roles as JSON for the run record: {"col": "primary key, serial", ...}. */
void
sl_table_append_roles(StringInfo buf, const SlTable *t)
{
	int			c;

	appendStringInfoChar(buf, '{');
	for (c = 0; c < t->ncols; c++)
	{
		if (c)
			appendStringInfoString(buf, ", ");
		escape_json(buf, t->cols[c].name);
		appendStringInfoString(buf, ": ");
		escape_json(buf, role_text(t, c));
	}
	appendStringInfoChar(buf, '}');
}

/*
 * Refuses, before anything is paid for, what the keys make impossible: a
 * sequence the caller may not use, and a natural key whose values cannot
 * hold n more rows (a smallint, a boolean, an enum, or a product of them).
 */
void
sl_table_check_keys(const SlTable *t, int n, double existing_rows)
{
	int			c;
	int			k;

	for (c = 0; c < t->ncols; c++)
	{
		const SlColumn *col = &t->cols[c];

		if (col->assigned &&
			pg_class_aclcheck(col->seqid, GetUserId(), ACL_USAGE | ACL_UPDATE) != ACLCHECK_OK)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for sequence %s", get_rel_name(col->seqid)),
					 errdetail("Returned rows of \"%s\" get their column \"%s\" from it, as an insert would.",
							   t->relname, col->name),
					 errhint("Grant USAGE on the sequence, or generate into a table that assigns the column itself with samplellm_generate_into.")));
	}
	for (k = 0; k < t->nkeys; k++)
	{
		const SlKey *key = &t->keys[k];
		double		space = 1;
		int			i;

		if (!key->checked)
			continue;
		for (i = 0; i < key->ncols && isfinite(space); i++)
		{
			const SlColumn *col = &t->cols[key->cols[i]];

			switch (col->basetypid)
			{
				case BOOLOID:
					space *= 2;
					break;
				case INT2OID:
					space *= 65536.0;
					break;
				case INT4OID:
					space *= 4294967296.0;
					break;
				case CHAROID:
					space *= 256;
					break;
				default:
					if (col->nlabels > 0)
						space *= col->nlabels;
					else
						space = INFINITY;
					break;
			}
		}
		if (isfinite(space) && space - Max(existing_rows, 0) < n)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("unique key %s of \"%s\" has room for %.0f more rows, fewer than n = %d",
							key->name, t->relname, Max(space - Max(existing_rows, 0), 0), n),
					 errdetail("Its columns can hold %.0f distinct values, and the table has %.0f rows you can see.",
							   space, Max(existing_rows, 0)),
					 errhint("Ask for fewer rows.")));
	}
}

/*
 * Fills the assigned columns of a returned row: the next value of each
 * one's sequence, as the caller (the privilege was checked up front).
 * skip[c] (may be NULL) leaves a column alone (the target assigns it).
 */
void
sl_table_assign_keys(const SlTable *t, Datum *values, bool *isnull, const bool *skip)
{
	int			c;

	for (c = 0; c < t->ncols; c++)
	{
		const SlColumn *col = &t->cols[c];
		int64		v;

		if (!col->assigned || (skip && skip[c]))
			continue;
		v = nextval_internal(col->seqid, true);
		isnull[c] = false;
		switch (col->basetypid)
		{
			case INT2OID:
				values[c] = Int16GetDatum((int16) v);
				break;
			case INT4OID:
				values[c] = Int32GetDatum((int32) v);
				break;
			case INT8OID:
				values[c] = Int64GetDatum(v);
				break;
			default:
				/* numeric and others: through the type's input function */
				values[c] = InputFunctionCall((FmgrInfo *) &col->infunc,
											  psprintf(INT64_FORMAT, v),
											  col->typioparam, col->typmod);
				break;
		}
	}
}

/* OPERATOR(schema.name) of an operator, for SQL text that no search_path redirects. */
char *
sl_qualified_operator(Oid opno)
{
	HeapTuple	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	Form_pg_operator op;
	char	   *out;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	op = (Form_pg_operator) GETSTRUCT(tup);
	out = psprintf("OPERATOR(%s.%s)", quote_identifier(get_namespace_name(op->oprnamespace)),
				   NameStr(op->oprname));
	ReleaseSysCache(tup);
	return out;
}
