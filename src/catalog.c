/*-------------------------------------------------------------------------
 *
 * catalog.c
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
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "samplellm.h"

/*
 * Types the LLM can be asked to write as one JSON scalar, and that every
 * encoding and stage 2 understand.  Anything else is refused up front,
 * before a request is paid for.
 */
const char *
sl_column_check_unsupported(Oid basetypid)
{
	switch (basetypid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case BOOLOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case CHAROID:
		case DATEOID:
		case TIMEOID:
		case TIMETZOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case INTERVALOID:
		case UUIDOID:
		case JSONOID:
		case JSONBOID:
		case INETOID:
		case CIDROID:
		case MACADDROID:
		case MONEYOID:
			return NULL;
		default:
			break;
	}
	if (type_is_enum(basetypid))
		return NULL;
	if (type_is_array(basetypid))
		return "arrays";
	if (type_is_rowtype(basetypid))
		return "composite types";
	return "this type";
}

static SlJsonType
json_type_of(Oid basetypid)
{
	switch (basetypid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return SL_JSON_INTEGER;
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			return SL_JSON_NUMBER;
		case BOOLOID:
			return SL_JSON_BOOLEAN;
		default:
			return SL_JSON_STRING;
	}
}

static SlColClass
class_of(Oid basetypid)
{
	switch (basetypid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
		case DATEOID:
		case TIMEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
		case INTERVALOID:
		case MONEYOID:
			return SL_CONTINUOUS;
		default:
			return SL_CATEGORICAL;
	}
}

/*
 * A continuous value as a double, for encodings and quantile bins.  Dates
 * count days, timestamps and times seconds; infinities stay infinite.
 */
double
sl_datum_to_double(const SlColumn *col, Datum d)
{
	switch (col->basetypid)
	{
		case INT2OID:
			return (double) DatumGetInt16(d);
		case INT4OID:
			return (double) DatumGetInt32(d);
		case INT8OID:
			return (double) DatumGetInt64(d);
		case FLOAT4OID:
			return (double) DatumGetFloat4(d);
		case FLOAT8OID:
			return DatumGetFloat8(d);
		case MONEYOID:
			return (double) DatumGetInt64(d) / 100.0;
		case NUMERICOID:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
		case DATEOID:
			{
				DateADT		v = DatumGetDateADT(d);

				if (DATE_IS_NOBEGIN(v))
					return -INFINITY;
				if (DATE_IS_NOEND(v))
					return INFINITY;
				return (double) v;
			}
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			{
				Timestamp	v = DatumGetTimestamp(d);

				if (TIMESTAMP_IS_NOBEGIN(v))
					return -INFINITY;
				if (TIMESTAMP_IS_NOEND(v))
					return INFINITY;
				return (double) v / USECS_PER_SEC;
			}
		case TIMEOID:
			return (double) DatumGetTimeADT(d) / USECS_PER_SEC;
		case INTERVALOID:
			{
				Interval   *iv = DatumGetIntervalP(d);

				return (double) iv->time / USECS_PER_SEC +
					(double) iv->day * SECS_PER_DAY +
					(double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;
			}
		default:
			return NAN;
	}
}

/* Runs a catalog query with one oid parameter; results stay in SPI memory. */
static int
spi_oid_query(const char *sql, Oid arg)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	int			rc;

	args[0] = ObjectIdGetDatum(arg);
	rc = SPI_execute_with_args(sql, 1, argtypes, args, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "catalog query failed: %s", SPI_result_code_string(rc));
	return (int) SPI_processed;
}

static char *
spi_text(int row, int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
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
		col->comment = GetComment(relid, RelationRelationId, att->attnum);
		why = sl_column_check_unsupported(col->basetypid);
		if (why)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" of \"%s\" has type %s, which samplellm cannot generate",
							col->name, t->relname, col->typname),
					 errdetail("samplellm generates scalar columns: numbers, booleans, text, dates, times, enums, uuid and json; not %s.", why),
					 errhint("Generate from a view that leaves the column out or casts it to text.")));
		col->jtype = json_type_of(col->basetypid);
		col->cls = class_of(col->basetypid);
		getTypeInputInfo(col->typid, &infunc, &col->typioparam);
		fmgr_info_cxt(infunc, &col->infunc, cxt);
		getTypeOutputInfo(col->typid, &outfunc, &varlena);
		fmgr_info_cxt(outfunc, &col->outfunc, cxt);
		if (label && strcmp(label, col->name) == 0)
			t->label_col = t->ncols - 1;
	}

	if (t->ncols == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				 errmsg("table \"%s\" has no columns", t->relname)));
	if (label && t->label_col < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("label column \"%s\" does not exist in \"%s\"", label, t->relname),
				 errhint("Pass the name of the target column, as in label => 'clicked'.")));

	/* The rest comes from catalog queries, through SPI. */
	SPI_connect();
	for (i = 0; i < t->ncols; i++)
	{
		SlColumn   *col = &t->cols[i];
		int			n;
		int			j;

		if (type_is_enum(col->basetypid))
		{
			n = spi_oid_query("SELECT enumlabel::pg_catalog.text FROM pg_catalog.pg_enum "
							  "WHERE enumtypid = $1 ORDER BY enumsortorder", col->basetypid);
			col->nlabels = n;
			col->labels = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));
			for (j = 0; j < n; j++)
				col->labels[j] = spi_text(j, 1, cxt);
		}
		if (col->typid != col->basetypid)
		{
			/* A domain: its CHECKs (all levels of domain-over-domain) and NOT NULL. */
			n = spi_oid_query("WITH RECURSIVE d(oid, base, nn) AS ("
							  " SELECT t.oid, t.typbasetype, t.typnotnull FROM pg_catalog.pg_type t WHERE t.oid = $1"
							  " UNION ALL SELECT t.oid, t.typbasetype, t.typnotnull FROM pg_catalog.pg_type t"
							  " JOIN d ON t.oid = d.base WHERE t.typtype = 'd')"
							  " SELECT bool_or(d.nn)::pg_catalog.text,"
							  " pg_catalog.string_agg(pg_catalog.pg_get_constraintdef(c.oid), ' AND ' ORDER BY c.conname)"
							  " FROM d LEFT JOIN pg_catalog.pg_constraint c ON c.contypid = d.oid AND c.contype = 'c'",
							  col->typid);
			if (n == 1)
			{
				char	   *nn = spi_text(0, 1, cxt);

				if (nn && strcmp(nn, "true") == 0)
					col->notnull = true;
				col->domain_checks = spi_text(0, 2, cxt);
			}
		}
	}
	{
		int			n = spi_oid_query("SELECT conname::pg_catalog.text, pg_catalog.pg_get_constraintdef(oid)"
									  " FROM pg_catalog.pg_constraint WHERE conrelid = $1 AND contype = 'c'"
									  " ORDER BY conname", relid);

		t->nchecks = n;
		t->check_names = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));
		t->check_src = MemoryContextAlloc(cxt, sizeof(char *) * Max(n, 1));
		for (i = 0; i < n; i++)
		{
			t->check_names[i] = spi_text(i, 1, cxt);
			t->check_src[i] = spi_text(i, 2, cxt);
		}
	}
	SPI_finish();

	return t;
}
