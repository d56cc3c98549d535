/*-------------------------------------------------------------------------
 *
 * stage2_fields.c
 *	  Stage 2, step 1: discretize columns into field codes; encode the label.
 *
 * The DNN's embeddings and the cluster frequency tables must see the same
 * discrete values, so both read the codes made here.  Everything is learned
 * on the real rows T and then applied unchanged to the candidates S.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "stage2.h"

/* a distinct value of T with its count, for choosing the vocabulary */
typedef struct ValCount
{
	char	   *val;
	int			count;
} ValCount;

static int
cmp_valcount_desc(const void *a, const void *b)
{
	const ValCount *x = a;
	const ValCount *y = b;

	if (x->count != y->count)
		return (x->count < y->count) ? 1 : -1;
	return strcmp(x->val, y->val);
}

/*
 * Distinct non-NULL texts of column c of rs, with counts, most frequent
 * first (ties by text, so the result does not depend on row order).
 */
static ValCount *
distinct_texts(const SlRowSet *rs, int c, int *ndistinct)
{
	char	  **vals = palloc(sizeof(char *) * Max(rs->nrows, 1));
	ValCount   *vc;
	int			nv = 0;
	int			nd = 0;

	for (int r = 0; r < rs->nrows; r++)
	{
		size_t		cell = SL_CELL(rs, r, c);

		if (!rs->isnull[cell] && rs->text[cell] != NULL)
			vals[nv++] = rs->text[cell];
	}
	if (nv > 1)
		qsort(vals, nv, sizeof(char *), sl_cmp_str);
	vc = palloc(sizeof(ValCount) * Max(nv, 1));
	for (int i = 0; i < nv; i++)
	{
		if (nd > 0 && strcmp(vc[nd - 1].val, vals[i]) == 0)
			vc[nd - 1].count++;
		else
		{
			vc[nd].val = vals[i];
			vc[nd].count = 1;
			nd++;
		}
	}
	if (nd > 1)
		qsort(vc, nd, sizeof(ValCount), cmp_valcount_desc);
	pfree(vals);
	*ndistinct = nd;
	return vc;
}

/* Quantile cut points of the finite values of continuous column c. */
static void
fit_continuous(SlField *f, const SlRowSet *ref, int nbins)
{
	double	   *v = palloc(sizeof(double) * Max(ref->nrows, 1));
	int			nv = 0;
	int			ne = 0;

	for (int r = 0; r < ref->nrows; r++)
	{
		size_t		cell = SL_CELL(ref, r, f->col);

		if (!ref->isnull[cell] && isfinite(ref->num[cell]))
			v[nv++] = ref->num[cell];
	}
	if (nv > 1)
		qsort(v, nv, sizeof(double), sl_cmp_double);

	/*
	 * Cut k sits at the k/nbins quantile; a value equal to a cut goes to the
	 * bin above it.  Duplicate cuts (heavy ties, e.g. a 0/1 column) merge, so
	 * every bin of T is non-empty.  With no finite value in T there is one
	 * bin, which then only candidates can fill.
	 */
	f->edges = palloc(sizeof(double) * Max(nbins, 1));
	if (nv > 0)
	{
		for (int k = 1; k < nbins; k++)
		{
			double		cut = v[(int) (((int64) k * nv) / nbins)];

			if (cut <= v[0])
				continue;		/* the lowest bin would be empty */
			if (ne > 0 && cut <= f->edges[ne - 1])
				continue;
			f->edges[ne++] = cut;
		}
	}
	f->nedges = ne;
	f->ncore = ne + 1;
	f->ncodes = f->ncore + 5;
	pfree(v);
}

/*
 * T's max_categories most frequent values of categorical column c.
 *
 * Deviation from the paper: the reference code label-encodes every distinct
 * value; we keep at most max_categories (default 1,000) values of T and send
 * the rest, and values never seen in T, to one "other" code.
 */
static void
fit_categorical(SlField *f, const SlRowSet *ref, int max_categories)
{
	int			nd;
	ValCount   *vc = distinct_texts(ref, f->col, &nd);
	int			keep = Min(nd, Max(max_categories, 1));

	f->cats = palloc(sizeof(char *) * Max(keep, 1));
	for (int i = 0; i < keep; i++)
		f->cats[i] = pstrdup(vc[i].val);
	if (keep > 1)
		qsort(f->cats, keep, sizeof(char *), sl_cmp_str);
	f->ncore = keep;
	f->ncodes = f->ncore + 2;
	pfree(vc);
}

/*
 * Learn the fields of every non-label column from the real rows.
 */
SlFieldSet *
sl_fields_fit(const SlTable *t, const SlRowSet *ref, int nbins,
			  int max_categories)
{
	SlFieldSet *fs = palloc0(sizeof(SlFieldSet));
	int			nf = 0;

	if (nbins < 1)
		nbins = 1;
	fs->fields = palloc0(sizeof(SlField) * Max(t->ncols, 1));
	fs->code_off = palloc0(sizeof(int) * (t->ncols + 1));
	for (int c = 0; c < t->ncols; c++)
	{
		SlField    *f;

		/* excluded, assigned and natural-key columns carry no shape */
		if (c == t->label_col || !sl_col_informative(&t->cols[c]))
			continue;
		f = &fs->fields[nf];
		f->col = c;
		f->continuous = (t->cols[c].cls == SL_CONTINUOUS);
		if (f->continuous)
			fit_continuous(f, ref, nbins);
		else
			fit_categorical(f, ref, max_categories);
		fs->code_off[nf + 1] = fs->code_off[nf] + f->ncodes;
		nf++;
	}
	fs->nfields = nf;
	fs->ncodes = fs->code_off[nf];
	return fs;
}

static int32
encode_cell(const SlField *f, const SlRowSet *rs, int r)
{
	size_t		cell = SL_CELL(rs, r, f->col);

	if (rs->isnull[cell])
		return SL_CODE_NULL(f);
	if (f->continuous)
	{
		double		x = rs->num[cell];
		int			lo = 0,
					hi = f->nedges;

		if (isnan(x))
			return SL_CODE_NAN(f);
		if (isinf(x))
			return x < 0 ? SL_CODE_NEGINF(f) : SL_CODE_POSINF(f);
		/* bin = number of cuts <= x; values beyond T's range clamp */
		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;

			if (f->edges[mid] <= x)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo;
	}
	else
	{
		char	   *key = rs->text[cell];
		char	  **hit;

		if (key == NULL || f->ncore == 0)
			return SL_CODE_OTHER(f);
		hit = bsearch(&key, f->cats, f->ncore, sizeof(char *), sl_cmp_str);
		return hit ? (int32) (hit - f->cats) : SL_CODE_OTHER(f);
	}
}

int32 *
sl_fields_encode(const SlFieldSet *fs, const SlRowSet *rs)
{
	int32	   *codes = palloc(sizeof(int32) * Max((size_t) rs->nrows * fs->nfields, 1));

	for (int r = 0; r < rs->nrows; r++)
	{
		if ((r & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int k = 0; k < fs->nfields; k++)
			codes[(size_t) r * fs->nfields + k] = encode_cell(&fs->fields[k], rs, r);
	}
	return codes;
}

/*
 * The label's classes are its distinct non-NULL output texts in T.  That
 * covers bool ("f" < "t"), integer 0/1 ("0" < "1") and text or enum labels
 * alike; for two classes the second is the sigmoid's positive class.
 */
SlLabelEncoder *
sl_label_fit(const SlTable *t, const SlRowSet *ref)
{
	SlLabelEncoder *le = palloc0(sizeof(SlLabelEncoder));
	ValCount   *vc;
	int			nd;

	le->col = t->label_col;
	if (le->col < 0)
		return le;
	vc = distinct_texts(ref, le->col, &nd);
	if (nd > SL_MAX_LABEL_CLASSES)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("label column \"%s\" has %d distinct values",
						t->cols[le->col].name, nd),
				 errdetail("Stage 2 supports at most %d label classes.",
						   SL_MAX_LABEL_CLASSES),
				 errhint("Use a bool, an integer 0/1 or a low-cardinality text column as the label, or run without a label.")));
	le->classes = palloc(sizeof(char *) * Max(nd, 1));
	for (int i = 0; i < nd; i++)
		le->classes[i] = pstrdup(vc[i].val);
	if (nd > 1)
		qsort(le->classes, nd, sizeof(char *), sl_cmp_str);
	le->nclasses = nd;
	pfree(vc);
	return le;
}

int *
sl_label_encode(const SlLabelEncoder *le, const SlRowSet *rs)
{
	int		   *y = palloc(sizeof(int) * Max(rs->nrows, 1));

	for (int r = 0; r < rs->nrows; r++)
	{
		size_t		cell;
		char	   *key;
		char	  **hit;

		y[r] = -1;
		if (le->col < 0 || le->nclasses == 0)
			continue;
		cell = SL_CELL(rs, r, le->col);
		if (rs->isnull[cell] || rs->text[cell] == NULL)
			continue;
		key = rs->text[cell];
		hit = bsearch(&key, le->classes, le->nclasses, sizeof(char *), sl_cmp_str);
		if (hit)
			y[r] = (int) (hit - le->classes);
	}
	return y;
}
