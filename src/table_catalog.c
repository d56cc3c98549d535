/*-------------------------------------------------------------------------
 *
 * table_catalog.c
 *	  The source table as the pipeline sees it: columns, types, comments,
 *	  enum labels, domain and CHECK constraints, privileges.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/comment.h"
#include "access/genam.h"
#include "access/table.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_enum.h"
#include "catalog/pg_opfamily.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/catcache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "samplellm.h"
#include "table.h"
#include "util.h"

/* ---- the supported types: one table ---- */

static double
int2_double(Datum d)
{
	return (double) DatumGetInt16(d);
}

static double
int4_double(Datum d)
{
	return (double) DatumGetInt32(d);
}

static double
int8_double(Datum d)
{
	return (double) DatumGetInt64(d);
}

static double
float4_double(Datum d)
{
	return (double) DatumGetFloat4(d);
}

static double
float8_double(Datum d)
{
	return DatumGetFloat8(d);
}

static double
money_double(Datum d)
{
	return (double) DatumGetInt64(d) / 100.0;
}

static double
numeric_double(Datum d)
{
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
}

/* Dates count days, timestamps and times seconds; infinities stay infinite. */
static double
date_double(Datum d)
{
	DateADT		v = DatumGetDateADT(d);

	if (DATE_IS_NOBEGIN(v))
		return -INFINITY;
	if (DATE_IS_NOEND(v))
		return INFINITY;
	return (double) v;
}

static double
timestamp_double(Datum d)
{
	Timestamp	v = DatumGetTimestamp(d);

	if (TIMESTAMP_IS_NOBEGIN(v))
		return -INFINITY;
	if (TIMESTAMP_IS_NOEND(v))
		return INFINITY;
	return (double) v / USECS_PER_SEC;
}

static double
time_double(Datum d)
{
	return (double) DatumGetTimeADT(d) / USECS_PER_SEC;
}

static double
interval_double(Datum d)
{
	Interval   *iv = DatumGetIntervalP(d);

	return (double) iv->time / USECS_PER_SEC +
		(double) iv->day * SECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;
}

/*
 * Types the LLM can be asked to write as one JSON scalar, and that every
 * encoding and stage 2 understand: the JSON type asked for, the class
 * (continuous columns have a numeric value for quantiles and distances).
 * Enums are categorical strings; anything else is refused up front,
 * before a request is paid for.
 */
typedef struct SlTypeInfo
{
	Oid			type;
	SlJsonType	jtype;
	double		(*to_double) (Datum d);	/* continuous; NULL: categorical */
} SlTypeInfo;

static const SlTypeInfo type_table[] = {
	{INT2OID, SL_JSON_INTEGER, int2_double},
	{INT4OID, SL_JSON_INTEGER, int4_double},
	{INT8OID, SL_JSON_INTEGER, int8_double},
	{FLOAT4OID, SL_JSON_NUMBER, float4_double},
	{FLOAT8OID, SL_JSON_NUMBER, float8_double},
	{NUMERICOID, SL_JSON_NUMBER, numeric_double},
	{MONEYOID, SL_JSON_STRING, money_double},
	{DATEOID, SL_JSON_STRING, date_double},
	{TIMEOID, SL_JSON_STRING, time_double},
	{TIMESTAMPOID, SL_JSON_STRING, timestamp_double},
	{TIMESTAMPTZOID, SL_JSON_STRING, timestamp_double},
	{INTERVALOID, SL_JSON_STRING, interval_double},
	{BOOLOID, SL_JSON_BOOLEAN, NULL},
	{TEXTOID, SL_JSON_STRING, NULL},
	{VARCHAROID, SL_JSON_STRING, NULL},
	{BPCHAROID, SL_JSON_STRING, NULL},
	{NAMEOID, SL_JSON_STRING, NULL},
	{CHAROID, SL_JSON_STRING, NULL},
	{TIMETZOID, SL_JSON_STRING, NULL},
	{UUIDOID, SL_JSON_STRING, NULL},
	{JSONOID, SL_JSON_STRING, NULL},
	{JSONBOID, SL_JSON_STRING, NULL},
	{INETOID, SL_JSON_STRING, NULL},
	{CIDROID, SL_JSON_STRING, NULL},
	{MACADDROID, SL_JSON_STRING, NULL},
};

static const SlTypeInfo enum_type = {InvalidOid, SL_JSON_STRING, NULL};

static const SlTypeInfo *
type_info(Oid basetypid)
{
	int			i;

	for (i = 0; i < lengthof(type_table); i++)
		if (type_table[i].type == basetypid)
			return &type_table[i];
	if (type_is_enum(basetypid))
		return &enum_type;
	return NULL;
}

const char *
sl_column_check_unsupported(Oid basetypid)
{
	if (type_info(basetypid) != NULL)
		return NULL;
	if (type_is_array(basetypid))
		return "arrays";
	if (type_is_rowtype(basetypid))
		return "composite types";
	return "this type";
}

/* A continuous value as a double, for encodings and quantile bins. */
double
sl_datum_to_double(const SlColumn *col, Datum d)
{
	const SlTypeInfo *ti;

	if (col->to_double)
		return col->to_double(d);
	ti = type_info(col->basetypid);
	return ti && ti->to_double ? ti->to_double(d) : NAN;
}

/*
 * Catalog lookups in C, not SQL: a query's operators would be resolved
 * under the caller's search_path (docs/security.md).
 */

/* An enum's labels in sort order. */
static char **
enum_labels(Oid typid, int *n)
{
	CatCList   *list = SearchSysCacheList1(ENUMTYPOIDNAME, ObjectIdGetDatum(typid));
	float4	   *order = palloc(sizeof(float4) * Max(list->n_members, 1));
	char	  **labels = palloc(sizeof(char *) * Max(list->n_members, 1));
	int			i;

	for (i = 0; i < list->n_members; i++)
	{
		Form_pg_enum e = (Form_pg_enum) GETSTRUCT(&list->members[i]->tuple);
		int			j = i;

		/* insertion by enumsortorder: enums are short */
		while (j > 0 && order[j - 1] > e->enumsortorder)
		{
			order[j] = order[j - 1];
			labels[j] = labels[j - 1];
			j--;
		}
		order[j] = e->enumsortorder;
		labels[j] = pstrdup(NameStr(e->enumlabel));
	}
	*n = list->n_members;
	ReleaseSysCacheList(list);
	pfree(order);
	return labels;
}

typedef struct NamedCheck
{
	char	   *name;
	char	   *def;
	Node	   *expr;
} NamedCheck;

static int
cmp_named_check(const void *a, const void *b)
{
	return strcmp(((const NamedCheck *) a)->name, ((const NamedCheck *) b)->name);
}

/* CHECK constraints by conrelid (relations) or contypid (domains). */
static NamedCheck *
check_constraints(Oid relid, Oid typid, int *n)
{
	Relation	rel = table_open(ConstraintRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	NamedCheck *out = NULL;
	int			cap = 0;

	*n = 0;
	if (OidIsValid(relid))
	{
		ScanKeyInit(&key, Anum_pg_constraint_conrelid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(relid));
		scan = systable_beginscan(rel, ConstraintRelidTypidNameIndexId, true, NULL, 1, &key);
	}
	else
	{
		ScanKeyInit(&key, Anum_pg_constraint_contypid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(typid));
		scan = systable_beginscan(rel, ConstraintTypidIndexId, true, NULL, 1, &key);
	}
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);
		bool		isnull;
		Datum		bin;

		if (con->contype != CONSTRAINT_CHECK)
			continue;
		if (*n == cap)
		{
			cap = Max(8, cap * 2);
			out = out ? repalloc(out, sizeof(NamedCheck) * cap) : palloc(sizeof(NamedCheck) * cap);
		}
		out[*n].name = pstrdup(NameStr(con->conname));
		out[*n].def = TextDatumGetCString(DirectFunctionCall1(pg_get_constraintdef,
															  ObjectIdGetDatum(con->oid)));
		bin = heap_getattr(tup, Anum_pg_constraint_conbin, RelationGetDescr(rel), &isnull);
		out[*n].expr = isnull ? NULL : stringToNode(TextDatumGetCString(bin));
		(*n)++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (*n > 1)
		qsort(out, *n, sizeof(NamedCheck), cmp_named_check);
	return out;
}

/* The integer value of a non-NULL int2/int4/int8 constant. */
static bool
int_const(Node *n, int64 *v)
{
	Const	   *c;

	if (!IsA(n, Const))
		return false;
	c = (Const *) n;
	if (c->constisnull)
		return false;
	switch (c->consttype)
	{
		case INT2OID:
			*v = DatumGetInt16(c->constvalue);
			return true;
		case INT4OID:
			*v = DatumGetInt32(c->constvalue);
			return true;
		case INT8OID:
			*v = DatumGetInt64(c->constvalue);
			return true;
	}
	return false;
}

/*
 * Integer bounds a table CHECK implies: conjunctions of "column op
 * constant" where op is a btree comparison of the built-in integer family
 * (so `hour BETWEEN 0 AND 23`, which is stored as two comparisons, gives
 * [0, 23]); anything else implies nothing.  They become grammar bounds of
 * the answer's schema (stage1_prompt.c): a small range as an enum, which
 * every grammar-based decoder honours and which keeps exponents out.
 */
static void
check_bounds(SlTable *t, Node *expr)
{
	OpExpr	   *op;
	Node	   *l,
			   *r;
	Var		   *var;
	int64		v;
	int			strategy;
	int			c;

	if (expr == NULL)
		return;
	if (IsA(expr, BoolExpr) && ((BoolExpr *) expr)->boolop == AND_EXPR)
	{
		ListCell   *lc;

		foreach(lc, ((BoolExpr *) expr)->args)
			check_bounds(t, (Node *) lfirst(lc));
		return;
	}
	if (!IsA(expr, OpExpr) || list_length(((OpExpr *) expr)->args) != 2)
		return;
	op = (OpExpr *) expr;
	l = strip_implicit_coercions((Node *) linitial(op->args));
	r = strip_implicit_coercions((Node *) lsecond(op->args));
	strategy = get_op_opfamily_strategy(op->opno, INTEGER_BTREE_FAM_OID);
	if (strategy == 0)
		return;
	if (IsA(l, Var) && int_const(r, &v))
		var = (Var *) l;
	else if (IsA(r, Var) && int_const(l, &v))
	{
		var = (Var *) r;
		/* constant op column: the mirrored comparison */
		strategy = BTMaxStrategyNumber + 1 - strategy;
	}
	else
		return;
	if (var->varlevelsup != 0)
		return;
	for (c = 0; c < t->ncols; c++)
		if (t->cols[c].attnum == var->varattno)
			break;
	if (c == t->ncols)
		return;
	switch (strategy)
	{
		case BTLessStrategyNumber:
			if (v == PG_INT64_MIN)
				return;
			v--;
			/* FALLTHROUGH */
		case BTLessEqualStrategyNumber:
			t->cols[c].hi = t->cols[c].has_hi ? Min(t->cols[c].hi, v) : v;
			t->cols[c].has_hi = true;
			break;
		case BTEqualStrategyNumber:
			t->cols[c].hi = t->cols[c].has_hi ? Min(t->cols[c].hi, v) : v;
			t->cols[c].lo = t->cols[c].has_lo ? Max(t->cols[c].lo, v) : v;
			t->cols[c].has_hi = t->cols[c].has_lo = true;
			break;
		case BTGreaterStrategyNumber:
			if (v == PG_INT64_MAX)
				return;
			v++;
			/* FALLTHROUGH */
		case BTGreaterEqualStrategyNumber:
			t->cols[c].lo = t->cols[c].has_lo ? Max(t->cols[c].lo, v) : v;
			t->cols[c].has_lo = true;
			break;
	}
}

/*
 * A domain's CHECKs (all levels of a domain over a domain, by constraint
 * name, joined with AND) and whether any level is NOT NULL.
 */
static char *
domain_checks(Oid typid, bool *notnull)
{
	StringInfoData buf;
	NamedCheck *all = NULL;
	int			nall = 0;
	int			i;

	*notnull = false;
	for (;;)
	{
		HeapTuple	tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
		Form_pg_type typ;
		NamedCheck *these;
		int			n;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for type %u", typid);
		typ = (Form_pg_type) GETSTRUCT(tup);
		if (typ->typtype != TYPTYPE_DOMAIN)
		{
			ReleaseSysCache(tup);
			break;
		}
		*notnull |= typ->typnotnull;
		these = check_constraints(InvalidOid, typid, &n);
		typid = typ->typbasetype;
		ReleaseSysCache(tup);
		if (n > 0)
		{
			all = all ? repalloc(all, sizeof(NamedCheck) * (nall + n)) :
				palloc(sizeof(NamedCheck) * n);
			memcpy(all + nall, these, sizeof(NamedCheck) * n);
			nall += n;
		}
	}
	if (nall == 0)
		return NULL;
	qsort(all, nall, sizeof(NamedCheck), cmp_named_check);
	initStringInfo(&buf);
	for (i = 0; i < nall; i++)
		appendStringInfo(&buf, "%s%s", i ? " AND " : "", all[i].def);
	return buf.data;
}

/* The relation behind a row type, or an error saying what to pass instead. */
Oid
sl_source_relid(Oid rowtype)
{
	Oid			relid = OidIsValid(rowtype) ? get_typ_typrelid(rowtype) : InvalidOid;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("source must be the row type of a table, not type %s",
						format_type_be(rowtype)),
				 errhint("Pass a typed NULL of the table, as in samplellm_generate(NULL::my_table, 100).")));
	return relid;
}

/*
 * Describes the relation behind a row type.  Errors name the first problem:
 * not a table, no SELECT privilege, an unknown label column, a column type
 * that cannot be generated.  Everything is allocated in CurrentMemoryContext.
 */
SlTable *
sl_table_open(Oid rowtype, const char *label)
{
	MemoryContext cxt = CurrentMemoryContext;
	SlTable    *t;
	Oid			relid;
	char		relkind;
	AclResult	aclresult;
	int			i;

	relid = sl_source_relid(rowtype);
	relkind = get_rel_relkind(relid);
	if (relkind != RELKIND_RELATION && relkind != RELKIND_PARTITIONED_TABLE &&
		relkind != RELKIND_VIEW && relkind != RELKIND_MATVIEW &&
		relkind != RELKIND_FOREIGN_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("source type %s is not the row type of a table",
						format_type_be(rowtype)),
				 errdetail("A stand-alone composite type has no rows to learn from."),
				 errhint("Pass a typed NULL of a table, view or materialized view.")));

	/*
	 * The seeds are read as the caller, every column of them: refuse now,
	 * naming the first column the caller cannot read.
	 */
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);
	if (aclresult != ACLCHECK_OK)
	{
		TupleDesc	rd = lookup_rowtype_tupdesc(rowtype, -1);
		AttrNumber	denied = InvalidAttrNumber;

		for (i = 0; i < rd->natts && denied == InvalidAttrNumber; i++)
		{
			Form_pg_attribute att = TupleDescAttr(rd, i);

			if (!att->attisdropped &&
				pg_attribute_aclcheck(relid, att->attnum, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
				denied = att->attnum;
		}
		ReleaseTupleDesc(rd);
		if (denied != InvalidAttrNumber)
		{
			bool		any = pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT,
														ACLMASK_ANY) == ACLCHECK_OK;

			if (!any)
				aclcheck_error(aclresult, get_relkind_objtype(relkind), get_rel_name(relid));
			aclcheck_error_col(aclresult, get_relkind_objtype(relkind), get_rel_name(relid),
							   get_attname(relid, denied, false));
		}
	}

	t = palloc0(sizeof(SlTable));
	t->relid = relid;
	t->rowtype = rowtype;
	t->relname = get_rel_name(relid);
	t->nspname = get_namespace_name(get_rel_namespace(relid));
	t->comment = GetComment(relid, RelationRelationId, 0);
	t->tupdesc = lookup_rowtype_tupdesc_copy(rowtype, -1);
	t->cols = palloc0(sizeof(SlColumn) * Max(t->tupdesc->natts, 1));
	t->label_col = -1;

	for (i = 0; i < t->tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(t->tupdesc, i);
		SlColumn   *col;
		int32		basetypmod = att->atttypmod;
		const char *why;
		Oid			infunc;
		Oid			outfunc;
		bool		varlena;

		if (att->attisdropped)
			continue;
		col = &t->cols[t->ncols++];
		col->name = pstrdup(NameStr(att->attname));
		col->attnum = att->attnum;
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		col->basetypid = getBaseTypeAndTypmod(att->atttypid, &basetypmod);
		col->typname = format_type_with_typemod(att->atttypid, att->atttypmod);
		col->typlen = att->attlen;
		col->typbyval = att->attbyval;
		col->notnull = att->attnotnull;
		/* the table computes it: never asked of the LLM, computed as the executor does */
		col->generated = (att->attgenerated == ATTRIBUTE_GENERATED_STORED);
		col->comment = GetComment(relid, RelationRelationId, att->attnum);
		why = sl_column_check_unsupported(col->basetypid);
		if (why)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" of \"%s\" has type %s, which samplellm cannot generate",
							col->name, t->relname, col->typname),
					 errdetail("samplellm generates scalar columns: numbers, booleans, text, dates, times, enums, uuid and json; not %s.", why),
					 errhint("Generate from a view that leaves the column out or casts it to text.")));
		col->jtype = type_info(col->basetypid)->jtype;
		col->to_double = type_info(col->basetypid)->to_double;
		col->cls = col->to_double ? SL_CONTINUOUS : SL_CATEGORICAL;
		getTypeInputInfo(col->typid, &infunc, &col->typioparam);
		fmgr_info_cxt(infunc, &col->infunc, cxt);
		getTypeOutputInfo(col->typid, &outfunc, &varlena);
		fmgr_info_cxt(outfunc, &col->outfunc, cxt);
		if (label && strcmp(label, col->name) == 0)
			t->label_col = t->ncols - 1;
	}

	for (i = 0; i < t->ncols; i++)
		t->nwritten += !t->cols[i].generated;
	if (t->ncols == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" has no columns", t->relname)));
	if (label && t->label_col < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("label column \"%s\" does not exist in \"%s\"", label, t->relname),
				 errhint("Pass the name of the target column, as in label => 'clicked'.")));

	for (i = 0; i < t->ncols; i++)
	{
		SlColumn   *col = &t->cols[i];

		if (type_is_enum(col->basetypid))
			col->labels = enum_labels(col->basetypid, &col->nlabels);
		if (col->typid != col->basetypid)
		{
			bool		nn;

			col->domain_checks = domain_checks(col->typid, &nn);
			col->notnull |= nn;
		}
	}
	{
		NamedCheck *checks = check_constraints(relid, InvalidOid, &t->nchecks);

		t->check_names = palloc(sizeof(char *) * Max(t->nchecks, 1));
		t->check_src = palloc(sizeof(char *) * Max(t->nchecks, 1));
		t->check_attrs = palloc0(sizeof(Bitmapset *) * Max(t->nchecks, 1));
		for (i = 0; i < t->nchecks; i++)
		{
			t->check_names[i] = checks[i].name;
			t->check_src[i] = checks[i].def;
			/* which columns it mentions: the prompt leaves out those on excluded ones */
			if (checks[i].expr)
			{
				pull_varattnos(checks[i].expr, 1, &t->check_attrs[i]);
				check_bounds(t, checks[i].expr);
			}
		}
	}

	sl_table_load_keys(t);
	return t;
}
