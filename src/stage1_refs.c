/*-------------------------------------------------------------------------
 *
 * stage1_refs.c
 *	  Foreign keys: the rows a new row may reference, drawn from the real
 *	  distribution, with what they refer to as context for the LLM.
 *
 * For each foreign key of the source, the seeds give the distribution of
 * its values (popular items stay popular; the NULL rate of a nullable
 * reference is kept).  The parents those values point to are read as the
 * caller (privileges and row-level security apply), only those, so a
 * ten-million-row parent costs what the seeds reference; a value whose
 * parent row the caller cannot see is dropped from the distribution.
 *
 * Every LLM request gets its references drawn in advance, one per row it
 * asks for, each shown with the parent's attributes (a click with its
 * user's age and its item's category); the LLM copies the references into
 * its rows and writes the rest to fit them.  A row whose reference is not
 * one the request handed out is refused ("unknown_reference"), so every
 * returned reference points to a visible parent row, and the references
 * follow the real distribution.  The built-in generator draws references
 * the same way, independently of its copula.  A reference whose columns
 * are excluded is drawn locally and never shown.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "mb/pg_wchar.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "stage1.h"

/* Attributes of a parent shown as context, and their length. */
#define REF_MAX_ATTRS		8
#define REF_VALUE_CHARS		40
/* Separates the columns of a composite reference in its key text. */
#define REF_SEP				"\x1f"

typedef struct RefKey
{
	const SlForeignKey *fk;
	char	   *parent_name;	/* relation name, for the prompt */
	bool		shown;			/* no column excluded: the LLM sees it */
	int			ntuples;		/* distinct visible references */
	char	  **key;			/* per tuple: its columns' texts joined */
	char	 ***values;			/* per tuple, per column: canonical text */
	char	  **context;		/* per tuple: the parent's attributes */
	double	   *cum;			/* cumulative weights, NULL last */
	double		total;
	int64		null_count;		/* seeds whose reference is NULL */
	int		   *sorted;			/* tuple numbers by key, for lookups */
	int		   *cycle;			/* related tables: the list requests walk */
	int			ncycle;
} RefKey;

struct SlRefs
{
	const SlTable *t;
	int			nkeys;
	RefKey	   *keys;
};

/* The key text of row r's reference, or NULL if some column is NULL. */
static char *
row_key(const SlForeignKey *fk, const SlRowSet *rs, int r)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < fk->ncols; i++)
	{
		const char *v = rs->text[SL_CELL(rs, r, fk->cols[i])];

		if (v == NULL)
		{
			pfree(buf.data);
			return NULL;
		}
		if (i)
			appendStringInfoString(&buf, REF_SEP);
		appendStringInfoString(&buf, v);
	}
	return buf.data;
}

static const RefKey *sort_keys_ctx;

static int
cmp_tuple_key(const void *a, const void *b)
{
	return strcmp(sort_keys_ctx->key[*(const int *) a], sort_keys_ctx->key[*(const int *) b]);
}

static int
find_tuple(const RefKey *rk, const char *key)
{
	int			lo = 0;
	int			hi = rk->ntuples;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;
		int			c = strcmp(rk->key[rk->sorted[mid]], key);

		if (c == 0)
			return rk->sorted[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* SELECT on the table, or on the column (column privileges alone are not enough to test). */
static bool
can_read(Oid relid, AttrNumber a)
{
	return pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) == ACLCHECK_OK ||
		pg_attribute_aclcheck(relid, a, GetUserId(), ACL_SELECT) == ACLCHECK_OK;
}

/* Is parent column a a key of the reference (shown as the reference itself)? */
static bool
is_ref_column(const SlForeignKey *fk, AttrNumber a)
{
	int			i;

	for (i = 0; i < fk->ncols; i++)
		if (fk->parent_attnums[i] == a)
			return true;
	return false;
}

/* A distinct reference of the seeds, while the parents are read. */
typedef struct SeedRef
{
	char	   *key;
	Datum	   *values;			/* per column, the seed's datum */
	int64		count;
	char	   *context;		/* set when the parent row is visible */
} SeedRef;

static int
cmp_seedref(const void *a, const void *b)
{
	return strcmp(((const SeedRef *) a)->key, ((const SeedRef *) b)->key);
}

static SeedRef *
find_seedref(SeedRef *refs, int n, const char *key)
{
	SeedRef		probe;

	probe.key = (char *) key;
	return bsearch(&probe, refs, n, sizeof(SeedRef), cmp_seedref);
}

/*
 * Reads the parents of the distinct references, as the caller, with the
 * attributes shown as context: one query per foreign key, its values
 * passed as arrays of the child's column types.  Sets refs[i].context of
 * the visible ones (allocated in the caller's context).
 */
static void
read_parents(const SlTable *t, RefKey *rk, SeedRef *refs, int nrefs,
			 const char *const *exclude, int nexclude)
{
	const SlForeignKey *fk = rk->fk;
	MemoryContext cxt = CurrentMemoryContext;
	Relation	prel = relation_open(fk->parent, AccessShareLock);
	TupleDesc	pdesc = RelationGetDescr(prel);
	char	   *pname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(prel)),
												   RelationGetRelationName(prel));
	StringInfoData sql;
	AttrNumber	attrs[REF_MAX_ATTRS];
	int			nattrs = 0;
	Oid		   *argtypes = palloc(sizeof(Oid) * fk->ncols);
	Datum	   *args = palloc(sizeof(Datum) * fk->ncols);
	int			save_nestlevel;
	int			i;
	int			a;
	uint64		r;

	rk->parent_name = pstrdup(RelationGetRelationName(prel));
	for (i = 0; i < fk->ncols; i++)
		if (!can_read(fk->parent, fk->parent_attnums[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied for table %s", RelationGetRelationName(prel)),
					 errdetail("\"%s\" references it through %s, and samplellm reads the rows referenced, as you.",
							   t->relname, fk->name),
					 errhint("Grant SELECT on \"%s\" (its referenced columns at least): new rows reference its rows.",
							 RelationGetRelationName(prel))));

	/* context: a few readable, scalar attributes that are not excluded */
	for (a = 1; a <= pdesc->natts && nattrs < REF_MAX_ATTRS; a++)
	{
		Form_pg_attribute att = TupleDescAttr(pdesc, a - 1);
		char	   *qname;
		bool		excluded = false;
		int			k;

		if (att->attisdropped || is_ref_column(fk, a) || att->attidentity ||
			att->attgenerated ||
			sl_column_check_unsupported(getBaseType(att->atttypid)) != NULL ||
			!can_read(fk->parent, a))
			continue;
		qname = psprintf("%s.%s", RelationGetRelationName(prel), NameStr(att->attname));
		for (k = 0; k < nexclude; k++)
			if (strcmp(exclude[k], qname) == 0)
				excluded = true;
		if (!excluded)
			attrs[nattrs++] = a;
	}

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (i = 0; i < fk->ncols; i++)
		appendStringInfo(&sql, "%sv.c%d", i ? ", " : "", i);
	for (a = 0; a < nattrs; a++)
		appendStringInfo(&sql, ", p.%s", quote_identifier(NameStr(TupleDescAttr(pdesc, attrs[a] - 1)->attname)));
	appendStringInfo(&sql, " FROM %s AS p JOIN ROWS FROM (", pname);
	for (i = 0; i < fk->ncols; i++)
	{
		const SlColumn *col = &t->cols[fk->cols[i]];
		Oid			elemtype = getBaseType(col->typid);
		int16		typlen;
		bool		typbyval;
		char		typalign;
		Datum	   *elems = palloc(sizeof(Datum) * Max(nrefs, 1));
		int			j;

		argtypes[i] = get_array_type(elemtype);
		if (!OidIsValid(argtypes[i]))
			elog(ERROR, "samplellm: type %s has no array type", format_type_be(elemtype));
		for (j = 0; j < nrefs; j++)
			elems[j] = refs[j].values[i];
		get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
		args[i] = PointerGetDatum(construct_array(elems, nrefs, elemtype, typlen, typbyval, typalign));
		appendStringInfo(&sql, "%spg_catalog.unnest($%d)", i ? ", " : "", i + 1);
	}
	appendStringInfoString(&sql, ") AS v(");
	for (i = 0; i < fk->ncols; i++)
		appendStringInfo(&sql, "%sc%d", i ? ", " : "", i);
	appendStringInfoString(&sql, ") ON ");
	for (i = 0; i < fk->ncols; i++)
		appendStringInfo(&sql, "%sp.%s %s v.c%d", i ? " AND " : "",
						 quote_identifier(NameStr(TupleDescAttr(pdesc, fk->parent_attnums[i] - 1)->attname)),
						 sl_qualified_operator(fk->eqops[i]), i);

	/* as the caller, under a pinned search_path: every name above is qualified */
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	SPI_connect();
	if (SPI_execute_with_args(sql.data, fk->ncols, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "samplellm: could not read the rows %s references", fk->name);
	for (r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		StringInfoData key;
		StringInfoData ctx;
		SeedRef    *hit;

		initStringInfo(&key);
		for (i = 0; i < fk->ncols; i++)
		{
			char	   *v = SPI_getvalue(tup, SPI_tuptable->tupdesc, i + 1);

			if (i)
				appendStringInfoString(&key, REF_SEP);
			appendStringInfoString(&key, v ? v : "");
		}
		hit = find_seedref(refs, nrefs, key.data);
		if (hit == NULL)
			continue;
		initStringInfo(&ctx);
		appendStringInfoChar(&ctx, '{');
		for (a = 0; a < nattrs; a++)
		{
			char	   *v = SPI_getvalue(tup, SPI_tuptable->tupdesc, fk->ncols + a + 1);

			if (a)
				appendStringInfoString(&ctx, ", ");
			sl_append_data_text(&ctx, NameStr(TupleDescAttr(pdesc, attrs[a] - 1)->attname));
			appendStringInfoString(&ctx, ": ");
			if (v == NULL)
				appendStringInfoString(&ctx, "null");
			else
			{
				int			len = strlen(v);
				int			cut = pg_mbcharcliplen(v, len, REF_VALUE_CHARS);

				sl_append_data_text(&ctx, cut < len ? psprintf("%.*s...", cut, v) : v);
			}
		}
		appendStringInfoChar(&ctx, '}');
		hit->context = MemoryContextStrdup(cxt, ctx.data);
	}
	SPI_finish();
	AtEOXact_GUC(true, save_nestlevel);
	relation_close(prel, NoLock);
}

SlRefs *
sl_refs_create(const SlTable *t, const SlRowSet *seeds, const char *const *exclude,
			   int nexclude)
{
	SlRefs	   *refs;
	int			f;

	if (t->nfkeys == 0)
		return NULL;
	refs = palloc0(sizeof(SlRefs));
	refs->t = t;
	refs->nkeys = t->nfkeys;
	refs->keys = palloc0(sizeof(RefKey) * t->nfkeys);
	for (f = 0; f < t->nfkeys; f++)
	{
		RefKey	   *rk = &refs->keys[f];
		const SlForeignKey *fk = &t->fkeys[f];
		SeedRef    *sr = palloc(sizeof(SeedRef) * Max(seeds->nrows, 1));
		int			nsr = 0;
		int			m = 0;
		int			r;
		int			i;

		rk->fk = fk;
		rk->shown = true;
		for (i = 0; i < fk->ncols; i++)
			if (t->cols[fk->cols[i]].excluded)
				rk->shown = false;

		/* the seeds' references, distinct, with their counts */
		for (r = 0; r < seeds->nrows; r++)
		{
			char	   *key = row_key(fk, seeds, r);

			if (key == NULL)
			{
				rk->null_count++;
				continue;
			}
			sr[nsr].key = key;
			sr[nsr].values = palloc(sizeof(Datum) * fk->ncols);
			for (i = 0; i < fk->ncols; i++)
				sr[nsr].values[i] = seeds->values[SL_CELL(seeds, r, fk->cols[i])];
			sr[nsr].count = 1;
			sr[nsr].context = NULL;
			nsr++;
			CHECK_FOR_INTERRUPTS();
		}
		qsort(sr, nsr, sizeof(SeedRef), cmp_seedref);
		for (r = 0; r < nsr; r++)
		{
			if (m > 0 && strcmp(sr[m - 1].key, sr[r].key) == 0)
				sr[m - 1].count++;
			else
				sr[m++] = sr[r];
		}
		nsr = m;
		if (nsr > 0)
			read_parents(t, rk, sr, nsr, exclude, nexclude);
		else
			rk->parent_name = get_rel_name(fk->parent);

		/* the visible ones are the distribution (with NULL last) */
		rk->key = palloc(sizeof(char *) * Max(nsr, 1));
		rk->values = palloc(sizeof(char **) * Max(nsr, 1));
		rk->context = palloc(sizeof(char *) * Max(nsr, 1));
		rk->cum = palloc(sizeof(double) * (nsr + 1));
		for (r = 0; r < nsr; r++)
		{
			char	   *p;
			char	   *save;
			int			k = rk->ntuples;

			if (sr[r].context == NULL)
				continue;		/* its parent row is not visible to the caller */
			rk->key[k] = sr[r].key;
			rk->context[k] = sr[r].context;
			rk->values[k] = palloc(sizeof(char *) * fk->ncols);
			p = pstrdup(sr[r].key);
			for (i = 0; i < fk->ncols; i++)
			{
				rk->values[k][i] = strtok_r(i == 0 ? p : NULL, REF_SEP, &save);
				if (rk->values[k][i] == NULL)
					rk->values[k][i] = "";
			}
			rk->total += sr[r].count;
			rk->cum[k] = rk->total;
			rk->ntuples++;
		}
		rk->total += rk->null_count;
		rk->cum[rk->ntuples] = rk->total;
		if (rk->ntuples == 0 && rk->null_count == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no row of \"%s\" that \"%s\" references is visible to you",
							rk->parent_name, t->relname),
					 errdetail("Every value of %s in the seed rows points to a row you cannot see.", fk->name),
					 errhint("New rows reference real rows you can see: ask for access to some of them.")));
		rk->sorted = sl_identity(rk->ntuples);
		sort_keys_ctx = rk;
		if (rk->ntuples > 1)
			qsort(rk->sorted, rk->ntuples, sizeof(int), cmp_tuple_key);
		sort_keys_ctx = NULL;
	}
	return refs;
}

/* One draw of foreign key f's distribution: a tuple number, -1 for NULL. */
static int
draw_tuple(const RefKey *rk, pg_prng_state *rng)
{
	double		u = pg_prng_double(rng) * rk->total;
	int			lo = 0;
	int			hi = rk->ntuples;

	if (rk->ntuples == 0 || u >= rk->cum[rk->ntuples - 1])
		return -1;
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (rk->cum[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* References of nrows rows of one request (shown foreign keys only). */
SlRefSlots *
sl_refs_draw(const SlRefs *refs, int nrows, uint64 request, pg_prng_state *rng)
{
	SlRefSlots *s = palloc0(sizeof(SlRefSlots));
	int			i;
	int			f;

	s->nrows = nrows;
	s->nkeys = refs->nkeys;
	s->tuple = palloc(sizeof(int) * Max(nrows * refs->nkeys, 1));
	s->used = palloc0(sizeof(bool) * Max(nrows, 1));
	for (i = 0; i < nrows; i++)
		for (f = 0; f < refs->nkeys; f++)
		{
			const RefKey *rk = &refs->keys[f];

			if (!rk->shown)
				s->tuple[i * refs->nkeys + f] = -1;
			else if (rk->ncycle > 0)
				s->tuple[i * refs->nkeys + f] =
					rk->cycle[(request * nrows + i) % (uint64) rk->ncycle];
			else
				s->tuple[i * refs->nkeys + f] = draw_tuple(rk, rng);
		}
	return s;
}

/*
 * Related tables: foreign key f references the rows just generated for its
 * parent, not the real ones.  values[i][c] are their key columns' texts,
 * contexts their attributes, weights how often each is drawn; with
 * cycle_counts, requests walk a list in which row i stands cycle_counts[i]
 * times, interleaved, so that every parent row gets its children in turn
 * (a function of the request number: the same whatever the concurrency).
 */
void
sl_refs_replace(SlRefs *refs, int f, int ntuples, char ***values, char **contexts,
				const double *weights, const int *cycle_counts)
{
	RefKey	   *rk = &refs->keys[f];
	StringInfoData key;
	int			i;
	int			c;

	rk->ntuples = ntuples;
	rk->values = values;
	rk->context = contexts;
	rk->key = palloc(sizeof(char *) * Max(ntuples, 1));
	rk->cum = palloc(sizeof(double) * (ntuples + 1));
	rk->total = 0;
	rk->null_count = 0;
	for (i = 0; i < ntuples; i++)
	{
		initStringInfo(&key);
		for (c = 0; c < rk->fk->ncols; c++)
		{
			if (c)
				appendStringInfoString(&key, REF_SEP);
			appendStringInfoString(&key, values[i][c]);
		}
		rk->key[i] = key.data;
		rk->total += weights[i];
		rk->cum[i] = rk->total;
	}
	rk->cum[ntuples] = rk->total;
	pfree(rk->sorted);
	rk->sorted = sl_identity(ntuples);
	sort_keys_ctx = rk;
	if (ntuples > 1)
		qsort(rk->sorted, ntuples, sizeof(int), cmp_tuple_key);
	sort_keys_ctx = NULL;
	rk->ncycle = 0;
	rk->cycle = NULL;
	if (cycle_counts)
	{
		int			total = 0;
		int			round;
		bool		more = true;

		for (i = 0; i < ntuples; i++)
			total += cycle_counts[i];
		rk->cycle = palloc(sizeof(int) * Max(total, 1));
		/* round robin: parent 0's first child, parent 1's first, ... */
		for (round = 0; more; round++)
		{
			more = false;
			for (i = 0; i < ntuples; i++)
				if (round < cycle_counts[i])
				{
					rk->cycle[rk->ncycle++] = i;
					more = true;
				}
		}
	}
}

/* Which of foreign key f's references row r has (-1: NULL or unknown). */
int
sl_refs_tuple_of_row(const SlRefs *refs, int f, const SlRowSet *rs, int r)
{
	char	   *key = row_key(refs->keys[f].fk, rs, r);

	return key ? find_tuple(&refs->keys[f], key) : -1;
}

bool
sl_refs_any_shown(const SlRefs *refs)
{
	int			f;

	if (refs == NULL)
		return false;
	for (f = 0; f < refs->nkeys; f++)
		if (refs->keys[f].shown)
			return true;
	return false;
}

/*
 * The <references> block of a request: one line per row asked for, the
 * reference as a JSON object (what the row must copy) and what it refers
 * to.
 */
void
sl_refs_append_prompt(StringInfo buf, const SlRefs *refs, const SlRefSlots *s)
{
	const SlTable *t = refs->t;
	int			i;
	int			f;

	appendStringInfoString(buf, "\n\nEach new row continues one of these references, in order, and copies its columns exactly; after each, the row it refers to:\n<references>\n");
	for (i = 0; i < s->nrows; i++)
	{
		int			n = 0;

		appendStringInfoChar(buf, '{');
		for (f = 0; f < refs->nkeys; f++)
		{
			const RefKey *rk = &refs->keys[f];
			int			tu = s->tuple[i * refs->nkeys + f];
			int			k;

			if (!rk->shown)
				continue;
			for (k = 0; k < rk->fk->ncols; k++)
			{
				const SlColumn *col = &t->cols[rk->fk->cols[k]];

				if (n++)
					appendStringInfoChar(buf, ',');
				sl_append_data_text(buf, col->name);
				appendStringInfoChar(buf, ':');
				sl_append_json_value(buf, col, tu >= 0 ? rk->values[tu][k] : NULL);
			}
		}
		appendStringInfoChar(buf, '}');
		for (f = 0; f < refs->nkeys; f++)
		{
			const RefKey *rk = &refs->keys[f];
			int			tu = s->tuple[i * refs->nkeys + f];

			if (!rk->shown || tu < 0)
				continue;
			appendStringInfoChar(buf, ' ');
			sl_append_data_text(buf, rk->parent_name);
			appendStringInfoString(buf, ": ");
			appendStringInfoString(buf, rk->context[tu]);
			appendStringInfoChar(buf, ';');
		}
		appendStringInfoChar(buf, '\n');
	}
	appendStringInfoString(buf, "</references>");
}

/*
 * Does row r of rs reference what it may?  Every foreign key's value must
 * be one of a visible parent's (or NULL where the real rows have NULLs);
 * with slots (an LLM request), it must be one the request handed out,
 * which it then uses up.
 */
bool
sl_refs_accept(const SlRefs *refs, SlRefSlots *s, const SlRowSet *rs, int r)
{
	int		   *tu = palloc(sizeof(int) * refs->nkeys);
	bool		ok = true;
	int			f;
	int			i;

	for (f = 0; f < refs->nkeys && ok; f++)
	{
		const RefKey *rk = &refs->keys[f];
		char	   *key = row_key(rk->fk, rs, r);

		tu[f] = key ? find_tuple(rk, key) : -1;
		if (key != NULL && tu[f] < 0)
			ok = false;			/* a value no visible parent has */
		else if (key == NULL && rk->null_count == 0)
			ok = false;			/* NULL where the real rows never are */
	}
	if (ok && s != NULL && sl_refs_any_shown(refs))
	{
		/* the first unused slot with these references */
		for (i = 0; i < s->nrows; i++)
		{
			bool		match = !s->used[i];

			for (f = 0; f < refs->nkeys && match; f++)
				if (refs->keys[f].shown && s->tuple[i * refs->nkeys + f] != tu[f])
					match = false;
			if (match)
			{
				s->used[i] = true;
				break;
			}
		}
		ok = (i < s->nrows);
	}
	pfree(tu);
	return ok;
}

/*
 * Sets the references a provider does not write: every foreign key for the
 * built-in generator (all), the hidden ones (excluded columns) otherwise.
 * texts are the row's column texts, to be overwritten.
 */
void
sl_refs_fill_texts(const SlRefs *refs, pg_prng_state *rng, bool all, const char **texts)
{
	int			f;
	int			i;

	for (f = 0; f < refs->nkeys; f++)
	{
		const RefKey *rk = &refs->keys[f];
		int			tu;

		if (!all && rk->shown)
			continue;
		tu = draw_tuple(rk, rng);
		for (i = 0; i < rk->fk->ncols; i++)
			texts[rk->fk->cols[i]] = tu >= 0 ? rk->values[tu][i] : NULL;
	}
}

/* The references' sizes, for the run record. */
void
sl_refs_append_json(StringInfo buf, const SlRefs *refs)
{
	int			f;

	appendStringInfoChar(buf, '{');
	for (f = 0; refs && f < refs->nkeys; f++)
	{
		const RefKey *rk = &refs->keys[f];

		if (f)
			appendStringInfoString(buf, ", ");
		escape_json(buf, rk->fk->name);
		appendStringInfo(buf, ": {\"parent\": ");
		escape_json(buf, rk->parent_name);
		appendStringInfo(buf, ", \"visible_parents\": %d, \"null_share\": %.3f, \"shown\": %s}",
						 rk->ntuples, rk->total > 0 ? rk->null_count / rk->total : 0,
						 rk->shown ? "true" : "false");
	}
	appendStringInfoChar(buf, '}');
}
