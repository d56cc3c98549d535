/*-------------------------------------------------------------------------
 *
 * sql_related.c
 *	  samplellm_generate_related(): a set of related tables generated
 *	  together, parents before children, in the caller's transaction.
 *
 * The tables of the set and the foreign keys between them form a graph; a
 * table no key of the set touches is refused, as is a cycle no nullable
 * key can break (a broken key, like a self-reference, references existing
 * rows).  The tables no key of the set points from ("roots") get n rows
 * each; a child table gets, for each new row of its first parent in the
 * set, a number of rows drawn from the real distribution of children per
 * parent (how many clicks real users have), and those rows reference that
 * new parent row, shown to the LLM with its attributes; each further
 * parent in the set is referenced in proportion to child counts drawn the
 * same way.  References to tables outside the set point to their real rows
 * (stage1_refs.c).  Every table is inserted into as generate_into would,
 * with its own run and ledger record; the rows of parents come back with
 * their assigned keys (INSERT ... RETURNING) for the children.  All of it
 * is one statement: an error anywhere inserts nothing anywhere.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "ledger.h"
#include "samplellm.h"
#include "sql.h"

/* Attributes of a new parent row shown as context. */
#define CONTEXT_ATTRS 8

/* A distribution of children per parent: value -> how many parents. */
typedef struct ChildCounts
{
	int			nvalues;
	int64	   *value;
	double	   *cum;			/* cumulative parents */
	double		total;
} ChildCounts;

typedef struct RelTable
{
	Oid			relid;
	char	   *name;			/* quoted, qualified */
	SlTable    *t;				/* its columns and keys */
	bool	   *broken;			/* per foreign key: references existing rows */
	int		   *parent;			/* per foreign key: index in the set, or -1 */
	bool		done;
	/* results, for its children */
	int			nrows;
	char	 ***rows;			/* per new row, per attribute: text */
	TupleDesc	desc;
	int64		inserted;
	int64		run_id;
} RelTable;

/* What the prepared hook needs to point a child's references at new rows. */
typedef struct RelateArg
{
	SlInsert   *ins;
	SlEmitter	inner;
	RelTable   *tabs;
	int			me;
	int		   *counts;			/* children per row of the first parent */
	double	  **weights;		/* per foreign key in the set, per parent row */
	double		oversample;
	const char *const *exclude;
	int			nexclude;
} RelateArg;

static int
set_index(const RelTable *tabs, int ntabs, Oid relid)
{
	int			i;

	for (i = 0; i < ntabs; i++)
		if (tabs[i].relid == relid)
			return i;
	return -1;
}

/* Foreign key f of table i points into the set, and is kept? */
static bool
edge(const RelTable *tabs, int i, int f)
{
	return tabs[i].parent[f] >= 0 && !tabs[i].broken[f];
}

/*
 * Orders the set, parents first.  A cycle is broken at a nullable key
 * (which then references existing rows, or NULL), or refused.
 */
static int *
order_tables(RelTable *tabs, int ntabs)
{
	int		   *order = palloc(sizeof(int) * ntabs);
	int			norder = 0;

	while (norder < ntabs)
	{
		bool		progress = false;
		int			i;
		int			f;

		for (i = 0; i < ntabs; i++)
		{
			bool		ready = !tabs[i].done;

			for (f = 0; f < tabs[i].t->nfkeys && ready; f++)
				if (edge(tabs, i, f) && !tabs[tabs[i].parent[f]].done)
					ready = false;
			if (ready)
			{
				tabs[i].done = true;
				order[norder++] = i;
				progress = true;
			}
		}
		if (progress)
			continue;
		/* a cycle among the rest: break one nullable key of it */
		for (i = 0; i < ntabs && !progress; i++)
			for (f = 0; f < tabs[i].t->nfkeys && !progress; f++)
				if (!tabs[i].done && edge(tabs, i, f) && !tabs[tabs[i].parent[f]].done &&
					tabs[i].t->fkeys[f].nullable)
				{
					tabs[i].broken[f] = true;
					progress = true;
				}
		if (!progress)
		{
			StringInfoData names;

			initStringInfo(&names);
			for (i = 0; i < ntabs; i++)
				if (!tabs[i].done)
					appendStringInfo(&names, "%s%s", names.len ? ", " : "", tabs[i].name);
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the tables %s reference each other through foreign keys none of which is nullable",
							names.data),
					 errdetail("Parents are generated before their children; a cycle needs a key that can be NULL to start from."),
					 errhint("Make one of the references nullable, or generate the tables in separate calls.")));
		}
	}
	for (norder = 0; norder < ntabs; norder++)
		tabs[norder].done = false;
	return order;
}

/*
 * The real distribution of children per parent for child table c's
 * foreign key f: parents with no child count too.  Read as the caller.
 */
static ChildCounts *
child_counts(const RelTable *child, int f)
{
	const SlForeignKey *fk = &child->t->fkeys[f];
	ChildCounts *cc = palloc0(sizeof(ChildCounts));
	StringInfoData sql;
	MemoryContext cxt = CurrentMemoryContext;
	int64		parents;
	int64		with_children = 0;
	int			save_nestlevel;
	uint64		r;
	int			i;

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT s.c, pg_catalog.count(*) FROM (SELECT pg_catalog.count(*) AS c FROM ");
	appendStringInfo(&sql, "%s WHERE ", child->name);
	for (i = 0; i < fk->ncols; i++)
		appendStringInfo(&sql, "%s%s IS NOT NULL", i ? " AND " : "",
						 quote_identifier(child->t->cols[fk->cols[i]].name));
	appendStringInfoString(&sql, " GROUP BY ");
	for (i = 0; i < fk->ncols; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(child->t->cols[fk->cols[i]].name));
	appendStringInfoString(&sql, ") AS s GROUP BY s.c ORDER BY s.c");

	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	SPI_connect();
	if (SPI_execute(sql.data, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "samplellm: could not count the children of %s", fk->name);
	cc->value = MemoryContextAlloc(cxt, sizeof(int64) * (SPI_processed + 1));
	cc->cum = MemoryContextAlloc(cxt, sizeof(double) * (SPI_processed + 1));
	/* value 0 first: parents no child references */
	cc->value[0] = 0;
	cc->nvalues = 1;
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		c = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		int64		k = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));

		cc->value[cc->nvalues] = c;
		cc->cum[cc->nvalues] = (double) k;
		cc->nvalues++;
		with_children += k;
	}
	if (SPI_execute(psprintf("SELECT pg_catalog.count(*) FROM %s",
							 quote_qualified_identifier(get_namespace_name(get_rel_namespace(fk->parent)),
														get_rel_name(fk->parent))),
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "samplellm: could not count the rows of the parent of %s", fk->name);
	{
		bool		isnull;

		parents = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	AtEOXact_GUC(true, save_nestlevel);

	cc->cum[0] = (double) Max(parents - with_children, 0);
	for (i = 1; i < cc->nvalues; i++)
		cc->cum[i] += cc->cum[i - 1];
	cc->total = cc->cum[cc->nvalues - 1];
	return cc;
}

/* One draw: how many children a parent has. */
static int
draw_count(const ChildCounts *cc, pg_prng_state *rng)
{
	double		u;
	int			i;

	if (cc->total <= 0)
		return 1;
	u = pg_prng_double(rng) * cc->total;
	for (i = 0; i < cc->nvalues; i++)
		if (u < cc->cum[i])
			return (int) Min(cc->value[i], 1000000);
	return (int) Min(cc->value[cc->nvalues - 1], 1000000);
}

/* A new parent row's attributes, as the prompt shows them. */
static char *
row_context(const RelTable *p, char **row, const SlForeignKey *fk,
			const char *const *exclude, int nexclude)
{
	StringInfoData buf;
	int			shown = 0;
	int			a;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (a = 0; a < p->desc->natts && shown < CONTEXT_ATTRS; a++)
	{
		Form_pg_attribute att = TupleDescAttr(p->desc, a);
		char	   *qname;
		bool		skip = att->attisdropped || att->attidentity;
		int			k;

		for (k = 0; k < fk->ncols && !skip; k++)
			skip = (fk->parent_attnums[k] == a + 1);
		if (skip)
			continue;
		qname = psprintf("%s.%s", get_rel_name(p->relid), NameStr(att->attname));
		for (k = 0; k < nexclude && !skip; k++)
			skip = (strcmp(exclude[k], qname) == 0 || strcmp(exclude[k], NameStr(att->attname)) == 0);
		if (skip)
			continue;
		if (shown++)
			appendStringInfoString(&buf, ", ");
		sl_append_data_text(&buf, NameStr(att->attname));
		appendStringInfoString(&buf, ": ");
		if (row[a])
			sl_append_data_text(&buf, row[a]);
		else
			appendStringInfoString(&buf, "null");
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * After the child's run is prepared: its references into the set point to
 * the new parent rows (the first parent's drawn children each, the others
 * in proportion to their drawn weights), and its draw takes each new
 * parent row's children from that row's candidates.
 */
static void
relate_prepared(void *arg, SlRun *run)
{
	RelateArg  *ra = arg;
	RelTable   *me = &ra->tabs[ra->me];
	bool		first = true;
	int			f;

	for (f = 0; f < me->t->nfkeys; f++)
	{
		const SlForeignKey *fk = &run->t->fkeys[f];
		RelTable   *p;
		char	 ***values;
		char	  **contexts;
		int		   *cycle = NULL;
		int			i;
		int			c;

		if (!edge(ra->tabs, ra->me, f))
			continue;
		p = &ra->tabs[me->parent[f]];
		values = palloc(sizeof(char **) * Max(p->nrows, 1));
		contexts = palloc(sizeof(char *) * Max(p->nrows, 1));
		for (i = 0; i < p->nrows; i++)
		{
			values[i] = palloc(sizeof(char *) * fk->ncols);
			for (c = 0; c < fk->ncols; c++)
				values[i][c] = p->rows[i][fk->parent_attnums[c] - 1];
			contexts[i] = row_context(p, p->rows[i], fk, ra->exclude, ra->nexclude);
		}
		if (first)
		{
			SlStrata   *st = palloc0(sizeof(SlStrata));

			cycle = palloc(sizeof(int) * Max(p->nrows, 1));
			st->refs = run->refs;
			st->fk = f;
			st->nstrata = p->nrows;
			st->quota = ra->counts;
			st->target = palloc(sizeof(int) * Max(p->nrows, 1));
			for (i = 0; i < p->nrows; i++)
				cycle[i] = st->target[i] = (int) ceil(ra->counts[i] * ra->oversample);
			run->strata = st;
		}
		sl_refs_replace(run->refs, f, p->nrows, values, contexts, ra->weights[f], cycle);
		first = false;
	}
}

static void
relate_begin(void *arg)
{
	RelateArg  *ra = arg;

	ra->inner.begin(ra->inner.arg);
}

static void
relate_row(void *arg, const SlRun *run, Datum *values, bool *isnull)
{
	RelateArg  *ra = arg;

	ra->inner.row(ra->inner.arg, run, values, isnull);
}

static void
relate_end(void *arg)
{
	RelateArg  *ra = arg;

	ra->inner.end(ra->inner.arg);
}

/* 'table.column' entries of a text[] that name table (or every one, NULL). */
static char **
entries_for(ArrayType *arr, const RelTable *tabs, int ntabs, int me, int *n, const char *what)
{
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	char	  **out;
	int			k;

	*n = 0;
	if (arr == NULL)
		return NULL;
	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	out = palloc(sizeof(char *) * Max(nelems, 1));
	for (k = 0; k < nelems; k++)
	{
		char	   *s;
		char	   *dot;
		int			i;
		bool		known = false;

		if (nulls[k])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL", what)));
		s = TextDatumGetCString(elems[k]);
		dot = strchr(s, '.');
		if (dot == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s entry \"%s\" names no table", what, s),
					 errhint("Write \"table.column\": a set has several tables.")));
		for (i = 0; i < ntabs; i++)
		{
			const char *rel = get_rel_name(tabs[i].relid);

			if (strncmp(s, rel, dot - s) == 0 && rel[dot - s] == '\0')
			{
				known = true;
				/* a table's own columns, and, for exclude, its parents' */
				if (me < 0 || i == me)
					out[(*n)++] = s;
			}
		}
		if (!known && strcmp(what, "exclude") == 0)
		{
			if (me >= 0)
				out[(*n)++] = s;	/* a parent outside the set: the run checks it */
		}
		else if (!known)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s entry \"%s\" names no table of the set", what, s)));
	}
	return out;
}

PG_FUNCTION_INFO_V1(samplellm_generate_related);

/*
 * samplellm_generate_related(tables regclass[], n integer, labels text[],
 *							  seed bigint, max_seed_rows integer,
 *							  resample text, oversample float8,
 *							  exclude text[])
 *	RETURNS TABLE (source regclass, rows_inserted bigint, run_id bigint)
 */
Datum
samplellm_generate_related(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ArrayType  *tables;
	ArrayType  *labels = PG_ARGISNULL(2) ? NULL : PG_GETARG_ARRAYTYPE_P(2);
	ArrayType  *exclude = PG_ARGISNULL(7) ? NULL : PG_GETARG_ARRAYTYPE_P(7);
	SlRunOptions base;
	Datum	   *elems;
	bool	   *nulls;
	int			ntabs;
	RelTable   *tabs;
	int		   *order;
	SlInsert  **ins;
	MemoryContext cxt;
	int			i;
	int			j;
	int			f;
	int			k;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tables must not be null")));
	tables = PG_GETARG_ARRAYTYPE_P(0);
	/* the options shared by every table (n is each root's) */
	sl_run_options_init(&base);
	sl_run_options_set_n(&base, PG_ARGISNULL(1), PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1));
	sl_run_options_set_seed(&base, PG_ARGISNULL(3), PG_ARGISNULL(3) ? 0 : PG_GETARG_INT64(3));
	sl_run_options_set_max_seed_rows(&base, PG_ARGISNULL(4), PG_ARGISNULL(4) ? 0 : PG_GETARG_INT32(4));
	sl_run_options_set_resample(&base, PG_ARGISNULL(5), PG_ARGISNULL(5) ? NULL : PG_GETARG_TEXT_PP(5));
	sl_run_options_set_oversample(&base, PG_ARGISNULL(6), PG_ARGISNULL(6) ? 0 : PG_GETARG_FLOAT8(6));
	if (PG_NARGS() > 8)
		sl_run_options_set_instructions(&base, PG_ARGISNULL(8), PG_ARGISNULL(8) ? NULL : PG_GETARG_TEXT_PP(8));

	deconstruct_array(tables, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &ntabs);
	if (ntabs == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tables must name at least one table")));
	tabs = palloc0(sizeof(RelTable) * ntabs);
	ins = palloc(sizeof(SlInsert *) * ntabs);
	for (i = 0; i < ntabs; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("tables must not contain NULL")));
		tabs[i].relid = DatumGetObjectId(elems[i]);
		for (j = 0; j < i; j++)
			if (tabs[j].relid == tabs[i].relid)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("table \"%s\" is listed twice", get_rel_name(tabs[i].relid))));
		if (get_rel_relkind(tabs[i].relid) != RELKIND_RELATION &&
			get_rel_relkind(tabs[i].relid) != RELKIND_PARTITIONED_TABLE)
			ereport(ERROR,
					(errcode(ERRCODE_WRONG_OBJECT_TYPE),
					 errmsg("\"%s\" is not a table", get_rel_name(tabs[i].relid)),
					 errdetail("Related tables are generated into themselves.")));
		tabs[i].name = quote_qualified_identifier(get_namespace_name(get_rel_namespace(tabs[i].relid)),
												  get_rel_name(tabs[i].relid));
		/* the caller's privileges first: SELECT (the table), INSERT (the insert) */
		tabs[i].t = sl_table_open(get_rel_type_id(tabs[i].relid), NULL);
		ins[i] = sl_insert_plan(tabs[i].relid, tabs[i].relid, true);
	}
	sl_ledger_check_ready("samplellm_generate_related");
	(void) entries_for(labels, tabs, ntabs, -1, &k, "labels");
	(void) entries_for(exclude, tabs, ntabs, -1, &k, "exclude");

	/* the graph: each foreign key into the set is an edge, self-references aside */
	for (i = 0; i < ntabs; i++)
	{
		tabs[i].broken = palloc0(sizeof(bool) * Max(tabs[i].t->nfkeys, 1));
		tabs[i].parent = palloc(sizeof(int) * Max(tabs[i].t->nfkeys, 1));
		for (f = 0; f < tabs[i].t->nfkeys; f++)
		{
			tabs[i].parent[f] = tabs[i].t->fkeys[f].self ? -1 :
				set_index(tabs, ntabs, tabs[i].t->fkeys[f].parent);
		}
	}
	for (i = 0; i < ntabs && ntabs > 1; i++)
	{
		bool		linked = false;

		for (f = 0; f < tabs[i].t->nfkeys; f++)
			linked |= tabs[i].parent[f] >= 0;
		for (j = 0; j < ntabs && !linked; j++)
			for (f = 0; f < tabs[j].t->nfkeys; f++)
				linked |= (tabs[j].parent[f] == i);
		if (!linked)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("table %s is not in the reference graph of the other tables", tabs[i].name),
					 errdetail("No foreign key links it to another table of the set."),
					 errhint("Generate it in a call of its own, with samplellm_generate_into.")));
	}
	order = order_tables(tabs, ntabs);

	InitMaterializedSRF(fcinfo, 0);
	cxt = AllocSetContextCreate(rsinfo->econtext->ecxt_per_query_memory,
								"samplellm related", ALLOCSET_DEFAULT_SIZES);
	for (k = 0; k < ntabs; k++)
	{
		RelTable   *me = &tabs[order[k]];
		SlRunOptions opt = base;
		RelateArg	ra;
		SlEmitter	em;
		pg_prng_state rng;
		char	  **lab;
		int			nlab;
		int			n = base.n;
		int			primary = -1;
		Datum		values[3];
		bool		vnulls[3] = {false, false, false};

		memset(&ra, 0, sizeof(ra));
		ra.tabs = tabs;
		ra.me = order[k];
		ra.oversample = base.oversample;
		ra.exclude = (const char *const *) entries_for(exclude, tabs, ntabs, order[k], &ra.nexclude, "exclude");
		ra.weights = palloc0(sizeof(double *) * Max(me->t->nfkeys, 1));
		sl_stream_init(&rng, base.seed, SL_STREAM_RELATED, (uint64) order[k]);

		/* how many rows: n for a root, the drawn children of each new parent row */
		for (f = 0; f < me->t->nfkeys; f++)
		{
			RelTable   *p;
			ChildCounts *cc;
			int			r;

			if (!edge(tabs, order[k], f))
				continue;
			p = &tabs[me->parent[f]];
			cc = child_counts(me, f);
			ra.weights[f] = palloc(sizeof(double) * Max(p->nrows, 1));
			if (primary < 0)
			{
				primary = f;
				ra.counts = palloc(sizeof(int) * Max(p->nrows, 1));
				n = 0;
				for (r = 0; r < p->nrows; r++)
				{
					ra.counts[r] = draw_count(cc, &rng);
					ra.weights[f][r] = ra.counts[r];
					n += ra.counts[r];
				}
			}
			else
				for (r = 0; r < p->nrows; r++)
					ra.weights[f][r] = draw_count(cc, &rng) + 1e-9;
		}
		values[0] = ObjectIdGetDatum(me->relid);
		if (n == 0)
		{
			/* no new parent row has a child: nothing to generate here */
			values[1] = Int64GetDatum(0);
			vnulls[2] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, vnulls);
			continue;
		}
		if (n > sl_max_rows)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("the new rows of %s would have %d rows of %s, more than samplellm.max_rows (%d)",
							primary >= 0 ? tabs[me->parent[primary]].name : me->name, n, me->name, sl_max_rows),
					 errhint("Ask for fewer rows.")));
		opt.n = n;
		opt.seed = sl_stream_seed(base.seed, SL_STREAM_RELATED, (uint64) order[k] + 1000);
		opt.seed_given = true;
		lab = entries_for(labels, tabs, ntabs, order[k], &nlab, "labels");
		opt.label = nlab > 0 ? strchr(lab[0], '.') + 1 : NULL;
		opt.exclude = (char **) ra.exclude;
		opt.nexclude = ra.nexclude;

		ra.ins = ins[order[k]];
		sl_insert_emitter(ra.ins, &ra.inner);
		memset(&em, 0, sizeof(em));
		em.begin = relate_begin;
		em.row = relate_row;
		em.end = relate_end;
		em.prepared = primary >= 0 ? relate_prepared : NULL;
		em.arg = &ra;
		em.assign_skip = ra.inner.assign_skip;
		me->run_id = sl_sql_run_recorded(cxt, get_rel_type_id(me->relid), &opt, me->name, NULL, &em);
		me->rows = sl_insert_returned(ra.ins, &me->nrows, &me->desc);
		values[1] = Int64GetDatum(me->nrows);
		values[2] = Int64GetDatum(me->run_id);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, vnulls);
	}
	return (Datum) 0;
}
