/*-------------------------------------------------------------------------
 *
 * evaluate_keys.c
 *	  samplellm_evaluate's key metrics: referential integrity and key
 *	  uniqueness of the synthetic rows, and the distribution of children per
 *	  parent, for the keys the real table declares.
 *
 * Computed in SQL over the whole tables (not the samples the other metrics
 * use), as the caller, under a pinned search_path: the comparisons use the
 * foreign keys' own equality operators, qualified, and keys compare as
 * text.
 *
 *	  referential_integrity	 share of synthetic rows whose (non-NULL)
 *							 reference has a parent row
 *	  key_uniqueness		 share of synthetic rows whose key value is
 *							 unique among them and absent from the real rows
 *	  child_count_similarity 1 - KS distance between children per
 *							 referenced parent, real and synthetic, each
 *							 divided by its mean (the shape: are popular
 *							 parents as popular)
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "evaluate.h"

static char *
rel_name(Oid relid)
{
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  get_rel_name(relid));
}

/* "a" or "a, b": the columns of a key, as the metric's columns. */
static char *
columns_text(const SlTable *t, const int *cols, int n)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%s", i ? ", " : "", t->cols[cols[i]].name);
	return buf.data;
}

/* One number from a query of one row and one column (NULL: NaN). */
static double
query_double(const char *sql)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "samplellm: a key metric query failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? NAN : DatumGetFloat8(d);
}

/* Children per parent: the sorted counts of a GROUP BY over a's columns. */
static double *
counts(const char *rel, const SlTable *t, const SlForeignKey *fk, int *n)
{
	StringInfoData sql;
	double	   *out;
	uint64		r;
	int			i;

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT pg_catalog.count(*)::float8 AS c FROM %s WHERE ", rel);
	for (i = 0; i < fk->ncols; i++)
		appendStringInfo(&sql, "%s%s IS NOT NULL", i ? " AND " : "", quote_identifier(t->cols[fk->cols[i]].name));
	appendStringInfoString(&sql, " GROUP BY ");
	for (i = 0; i < fk->ncols; i++)
		appendStringInfo(&sql, "%s%s", i ? ", " : "", quote_identifier(t->cols[fk->cols[i]].name));
	appendStringInfoString(&sql, " ORDER BY 1");
	if (SPI_execute(sql.data, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "samplellm: could not count children per parent");
	*n = (int) SPI_processed;
	out = SPI_palloc(sizeof(double) * Max(*n, 1));
	for (r = 0; r < SPI_processed; r++)
	{
		bool		isnull;

		out[r] = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
	}
	return out;
}

/*
 * Counts divided by their mean: the shape of the distribution (how
 * concentrated the children are), comparable between a synthetic table of
 * any size and the real one.
 */
static void
relative(double *v, int n)
{
	double		mean = 0;
	int			i;

	for (i = 0; i < n; i++)
		mean += v[i] / n;
	for (i = 0; i < n && mean > 0; i++)
		v[i] /= mean;
}

/* 1 - sup |F_a - F_b| of two sorted samples. */
static double
ks_complement(const double *a, int na, const double *b, int nb)
{
	int			i = 0;
	int			j = 0;
	double		d = 0;

	if (na == 0 || nb == 0)
		return NAN;
	while (i < na || j < nb)
	{
		double		x = (j >= nb || (i < na && a[i] <= b[j])) ? a[i] : b[j];

		while (i < na && a[i] <= x)
			i++;
		while (j < nb && b[j] <= x)
			j++;
		d = Max(d, fabs((double) i / na - (double) j / nb));
	}
	return 1.0 - d;
}

/*
 * Results outlive SPI: the strings and the arrays of out are allocated in
 * the caller's context, not in SPI's procedure context, which SPI_finish
 * frees before the caller reads them.
 */
static void
emit_outer(MemoryContext outer, SlEvalOut *out, const char *metric,
		   const char *cols, double v)
{
	MemoryContext old = MemoryContextSwitchTo(outer);

	sl_eval_emit(out, metric, cols, v, isnan(v));
	MemoryContextSwitchTo(old);
}

void
sl_eval_keys(const SlEvalData *d, SlEvalOut *out)
{
	const SlTable *t = d->t;
	char	   *real = rel_name(d->real_relid);
	char	   *syn = rel_name(d->syn_relid);
	int			save_nestlevel;
	int			f;
	int			k;
	MemoryContext outer;

	if (t->nfkeys == 0 && t->nkeys == 0)
		return;
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	outer = CurrentMemoryContext;
	SPI_connect();
	for (f = 0; f < t->nfkeys; f++)
	{
		const SlForeignKey *fk = &t->fkeys[f];
		char	   *cols = columns_text(t, fk->cols, fk->ncols);
		StringInfoData sql;
		double	   *rc;
		double	   *sc;
		int			nr;
		int			ns;
		int			i;
		double		v;

		initStringInfo(&sql);
		appendStringInfo(&sql, "SELECT avg((EXISTS (SELECT 1 FROM %s AS p WHERE ", rel_name(fk->parent));
		for (i = 0; i < fk->ncols; i++)
			appendStringInfo(&sql, "%sp.%s %s s.%s", i ? " AND " : "",
							 quote_identifier(get_attname(fk->parent, fk->parent_attnums[i], false)),
							 sl_qualified_operator(fk->eqops[i]),
							 quote_identifier(t->cols[fk->cols[i]].name));
		appendStringInfo(&sql, "))::int)::float8 FROM %s AS s WHERE ", syn);
		for (i = 0; i < fk->ncols; i++)
			appendStringInfo(&sql, "%ss.%s IS NOT NULL", i ? " AND " : "", quote_identifier(t->cols[fk->cols[i]].name));
		v = query_double(sql.data);
		emit_outer(outer, out, "referential_integrity", cols, v);

		rc = counts(real, t, fk, &nr);
		sc = counts(syn, t, fk, &ns);
		relative(rc, nr);
		relative(sc, ns);
		v = ks_complement(rc, nr, sc, ns);
		emit_outer(outer, out, "child_count_similarity", cols, v);
		CHECK_FOR_INTERRUPTS();
	}
	for (k = 0; k < t->nkeys; k++)
	{
		const SlKey *key = &t->keys[k];
		char	   *cols = columns_text(t, key->cols, key->ncols);
		StringInfoData tuple;
		StringInfoData sql;
		int			i;
		double		v;

		/* the key as one text: a row constructor's output */
		initStringInfo(&tuple);
		appendStringInfoString(&tuple, "ROW(");
		for (i = 0; i < key->ncols; i++)
			appendStringInfo(&tuple, "%s%s", i ? ", " : "", quote_identifier(t->cols[key->cols[i]].name));
		appendStringInfoString(&tuple, ")::text");
		initStringInfo(&sql);
		appendStringInfo(&sql,
						 "WITH s AS (SELECT %s AS k FROM %s), r AS (SELECT %s AS k FROM %s) "
						 "SELECT avg((n OPERATOR(pg_catalog.=) 1 AND NOT EXISTS "
						 "(SELECT 1 FROM r WHERE r.k OPERATOR(pg_catalog.=) g.k))::int)::float8 "
						 "FROM (SELECT k, pg_catalog.count(*) OVER (PARTITION BY k) AS n FROM s) AS g",
						 tuple.data, syn, tuple.data, real);
		v = query_double(sql.data);
		emit_outer(outer, out, "key_uniqueness", cols, v);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	AtEOXact_GUC(true, save_nestlevel);
}
