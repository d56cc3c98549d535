/*-------------------------------------------------------------------------
 *
 * evaluate_metrics.c
 *	  Column shapes, column pair trends and privacy metrics of
 *	  samplellm_evaluate().
 *
 * The definitions follow SDMetrics (KSComplement, TVComplement,
 * CorrelationSimilarity, ContingencySimilarity, the quality report's
 * averages); the README lists every formula and the deviations.  Each
 * column is first turned into codes shared by the real and synthetic rows:
 * categorical columns index the sorted union of both sides' texts, with
 * NULL as one more code; continuous columns (for contingency tables only)
 * get SDMetrics' ten equal-width bins over the real finite values, with
 * open outer bins and one code for NULL or NaN.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"

#include "table.h"
#include "evaluate.h"

#define EVAL_NBINS			10	/* SDMetrics' num_discrete_bins */
#define EVAL_CHECK_EVERY	4096

/* ---- helpers ---- */

static double
mean_defined(const double *v, const bool *isnull, int n, bool *none)
{
	double		s = 0;
	int			k = 0;

	for (int i = 0; i < n; i++)
		if (!isnull[i])
		{
			s += v[i];
			k++;
		}
	*none = (k == 0);
	return k ? s / k : 0.0;
}

/* ---- column codes ---- */

typedef struct ColCodes
{
	int			ncodes;
	int32	   *real;
	int32	   *syn;
} ColCodes;

static void
categorical_codes(const SlRowSet *real, const SlRowSet *syn, int c,
				  ColCodes *cc)
{
	char	  **dict = palloc(sizeof(char *) * Max(real->nrows + syn->nrows, 1));
	int			nd = 0;
	int			k = 0;

	for (int side = 0; side < 2; side++)
	{
		const SlRowSet *rs = side ? syn : real;

		for (int r = 0; r < rs->nrows; r++)
		{
			size_t		cell = SL_CELL(rs, r, c);

			if (!rs->isnull[cell] && rs->text[cell] != NULL)
				dict[nd++] = rs->text[cell];
		}
	}
	if (nd > 1)
		qsort(dict, nd, sizeof(char *), sl_cmp_str);
	for (int i = 0; i < nd; i++)
		if (k == 0 || strcmp(dict[k - 1], dict[i]) != 0)
			dict[k++] = dict[i];
	nd = k;
	cc->ncodes = nd + 1;		/* the last code is NULL */

	for (int side = 0; side < 2; side++)
	{
		const SlRowSet *rs = side ? syn : real;
		int32	   *codes = palloc(sizeof(int32) * Max(rs->nrows, 1));

		for (int r = 0; r < rs->nrows; r++)
		{
			size_t		cell = SL_CELL(rs, r, c);
			char	   *key = rs->text[cell];
			char	  **hit;

			if ((r % EVAL_CHECK_EVERY) == 0)
				CHECK_FOR_INTERRUPTS();
			if (rs->isnull[cell] || key == NULL)
			{
				codes[r] = nd;
				continue;
			}
			hit = bsearch(&key, dict, nd, sizeof(char *), sl_cmp_str);
			Assert(hit != NULL);
			codes[r] = (int32) (hit - dict);
		}
		if (side)
			cc->syn = codes;
		else
			cc->real = codes;
	}
	pfree(dict);
}

/*
 * numpy.histogram_bin_edges(real, 10) with the outer edges opened to
 * -inf/+inf (SDMetrics' discretize_column): bin = number of inner edges <= x.
 */
static void
continuous_codes(const SlRowSet *real, const SlRowSet *syn, int c,
				 ColCodes *cc)
{
	double		lo = INFINITY;
	double		hi = -INFINITY;
	double		edges[EVAL_NBINS - 1];

	for (int r = 0; r < real->nrows; r++)
	{
		size_t		cell = SL_CELL(real, r, c);

		if (!real->isnull[cell] && isfinite(real->num[cell]))
		{
			lo = Min(lo, real->num[cell]);
			hi = Max(hi, real->num[cell]);
		}
	}
	if (lo > hi)
	{
		lo = 0;
		hi = 1;
	}
	else if (lo == hi)
	{
		/* numpy widens an empty range by 0.5 on each side */
		lo -= 0.5;
		hi += 0.5;
	}
	for (int k = 1; k < EVAL_NBINS; k++)
		edges[k - 1] = lo + (hi - lo) * k / EVAL_NBINS;
	cc->ncodes = EVAL_NBINS + 1;	/* the last code is NULL or NaN */

	for (int side = 0; side < 2; side++)
	{
		const SlRowSet *rs = side ? syn : real;
		int32	   *codes = palloc(sizeof(int32) * Max(rs->nrows, 1));

		for (int r = 0; r < rs->nrows; r++)
		{
			size_t		cell = SL_CELL(rs, r, c);
			double		x = rs->num[cell];
			int			b = 0;

			if (rs->isnull[cell] || isnan(x))
			{
				codes[r] = EVAL_NBINS;
				continue;
			}
			while (b < EVAL_NBINS - 1 && edges[b] <= x)
				b++;
			codes[r] = b;
		}
		if (side)
			cc->syn = codes;
		else
			cc->real = codes;
	}
}

/* ---- column shapes ---- */

/* 1 - KS statistic of the finite non-NULL values; NaN if a side has none */
static double
ks_complement(const SlRowSet *real, const SlRowSet *syn, int c)
{
	double	   *a = palloc(sizeof(double) * Max(real->nrows, 1));
	double	   *b = palloc(sizeof(double) * Max(syn->nrows, 1));
	int			na = 0;
	int			nb = 0;
	int			i = 0;
	int			j = 0;
	double		dmax = 0;

	for (int r = 0; r < real->nrows; r++)
	{
		size_t		cell = SL_CELL(real, r, c);

		if (!real->isnull[cell] && isfinite(real->num[cell]))
			a[na++] = real->num[cell];
	}
	for (int r = 0; r < syn->nrows; r++)
	{
		size_t		cell = SL_CELL(syn, r, c);

		if (!syn->isnull[cell] && isfinite(syn->num[cell]))
			b[nb++] = syn->num[cell];
	}
	if (na == 0 || nb == 0)
		return NAN;
	qsort(a, na, sizeof(double), sl_cmp_double);
	qsort(b, nb, sizeof(double), sl_cmp_double);

	/* walk both ECDFs; tied values move both sides before comparing */
	while (i < na && j < nb)
	{
		double		x = Min(a[i], b[j]);

		while (i < na && a[i] == x)
			i++;
		while (j < nb && b[j] == x)
			j++;
		dmax = Max(dmax, fabs((double) i / na - (double) j / nb));
	}
	pfree(a);
	pfree(b);
	return 1.0 - dmax;
}

/* 1 - total variation distance of the code frequencies */
static double
tv_complement(const ColCodes *cc, int nreal, int nsyn)
{
	double	   *p = palloc0(sizeof(double) * cc->ncodes);
	double		tv = 0;

	for (int r = 0; r < nreal; r++)
		p[cc->real[r]] += 1.0 / nreal;
	for (int r = 0; r < nsyn; r++)
		p[cc->syn[r]] -= 1.0 / nsyn;
	for (int k = 0; k < cc->ncodes; k++)
		tv += fabs(p[k]);
	pfree(p);
	return 1.0 - 0.5 * tv;
}

/* ---- column pair trends ---- */

/* Pearson correlation of rows where both values are finite; NaN if undefined */
static double
pearson(const SlRowSet *rs, int a, int b)
{
	double		ma = 0,
				mb = 0,
				saa = 0,
				sbb = 0,
				sab = 0;
	int			n = 0;

	for (int pass = 0; pass < 2; pass++)
	{
		for (int r = 0; r < rs->nrows; r++)
		{
			size_t		ca = SL_CELL(rs, r, a);
			size_t		cb = SL_CELL(rs, r, b);
			double		x,
						y;

			if (rs->isnull[ca] || rs->isnull[cb] ||
				!isfinite(rs->num[ca]) || !isfinite(rs->num[cb]))
				continue;
			x = rs->num[ca];
			y = rs->num[cb];
			if (pass == 0)
			{
				ma += x;
				mb += y;
				n++;
			}
			else
			{
				saa += (x - ma) * (x - ma);
				sbb += (y - mb) * (y - mb);
				sab += (x - ma) * (y - mb);
			}
		}
		if (pass == 0)
		{
			if (n < 2)
				return NAN;
			ma /= n;
			mb /= n;
		}
	}
	if (saa <= 0 || sbb <= 0)
		return NAN;
	return Max(-1.0, Min(1.0, sab / sqrt(saa * sbb)));
}

static int64 *
pair_keys(const int32 *ca, const int32 *cb, int n, int ncodes_b)
{
	int64	   *keys = palloc(sizeof(int64) * Max(n, 1));

	for (int r = 0; r < n; r++)
		keys[r] = (int64) ca[r] * ncodes_b + cb[r];
	if (n > 1)
		qsort(keys, n, sizeof(int64), sl_cmp_int64);
	return keys;
}

/* 1 - total variation distance of the joint code frequencies */
static double
contingency_similarity(const ColCodes *a, const ColCodes *b, int nreal,
					   int nsyn)
{
	int64	   *kr = pair_keys(a->real, b->real, nreal, b->ncodes);
	int64	   *ks = pair_keys(a->syn, b->syn, nsyn, b->ncodes);
	int			i = 0;
	int			j = 0;
	double		tv = 0;

	while (i < nreal || j < nsyn)
	{
		int64		key;
		int			ci = 0;
		int			cj = 0;

		if (j >= nsyn || (i < nreal && kr[i] <= ks[j]))
			key = kr[i];
		else
			key = ks[j];
		while (i < nreal && kr[i] == key)
		{
			i++;
			ci++;
		}
		while (j < nsyn && ks[j] == key)
		{
			j++;
			cj++;
		}
		tv += fabs((double) ci / nreal - (double) cj / nsyn);
	}
	pfree(kr);
	pfree(ks);
	return 1.0 - 0.5 * tv;
}

void
sl_eval_quality(const SlEvalData *d, SlEvalOut *out)
{
	const SlTable *t = d->t;
	int			nc = t->ncols;
	int			nr = d->real->nrows;
	int			ns = d->syn->nrows;
	ColCodes   *cc = palloc0(sizeof(ColCodes) * nc);
	double	   *shape = palloc(sizeof(double) * nc);
	bool	   *shape_null = palloc(sizeof(bool) * nc);
	int			npairs = nc * (nc - 1) / 2;
	double	   *pair = palloc(sizeof(double) * Max(npairs, 1));
	bool	   *pair_null = palloc(sizeof(bool) * Max(npairs, 1));
	int			p = 0;
	double		props[2];
	bool		props_null[2];
	double		quality;
	bool		none;
	StringInfoData names;

	for (int c = 0; c < nc; c++)
	{
		CHECK_FOR_INTERRUPTS();
		if (t->cols[c].cls == SL_CONTINUOUS)
		{
			continuous_codes(d->real, d->syn, c, &cc[c]);
			shape[c] = ks_complement(d->real, d->syn, c);
		}
		else
		{
			categorical_codes(d->real, d->syn, c, &cc[c]);
			shape[c] = tv_complement(&cc[c], nr, ns);
		}
		shape_null[c] = isnan(shape[c]);
		sl_eval_emit(out, t->cols[c].cls == SL_CONTINUOUS ? "KSComplement" : "TVComplement",
					 t->cols[c].name, shape[c], shape_null[c]);
	}
	props[0] = mean_defined(shape, shape_null, nc, &props_null[0]);
	sl_eval_emit(out, "column_shapes", NULL, props[0], props_null[0]);

	initStringInfo(&names);
	for (int a = 0; a < nc; a++)
	{
		for (int b = a + 1; b < nc; b++)
		{
			const char *metric;

			CHECK_FOR_INTERRUPTS();
			if (t->cols[a].cls == SL_CONTINUOUS && t->cols[b].cls == SL_CONTINUOUS)
			{
				double		rr = pearson(d->real, a, b);
				double		rs = pearson(d->syn, a, b);

				metric = "CorrelationSimilarity";
				pair[p] = 1.0 - fabs(rr - rs) / 2.0;	/* NaN if either is */
			}
			else
			{
				metric = "ContingencySimilarity";
				pair[p] = contingency_similarity(&cc[a], &cc[b], nr, ns);
			}
			pair_null[p] = isnan(pair[p]);
			resetStringInfo(&names);
			appendStringInfo(&names, "%s, %s", t->cols[a].name, t->cols[b].name);
			sl_eval_emit(out, metric, names.data, pair[p], pair_null[p]);
			p++;
		}
	}
	props[1] = mean_defined(pair, pair_null, npairs, &props_null[1]);
	sl_eval_emit(out, "column_pair_trends", NULL, props[1], props_null[1]);

	/* the report score: mean of the defined property scores */
	quality = mean_defined(props, props_null, 2, &none);
	sl_eval_emit(out, "quality_score", NULL, quality, none);
}

/* ---- privacy ---- */

/*
 * Exact copies compare continuous columns as numbers (so 1 and 1.0 of
 * different types match) and the others by output text; NULL equals NULL.
 */
static uint64
row_key_hash(const SlTable *t, const SlRowSet *rs, int r)
{
	uint64		h = 0x3c6ef372fe94f82bULL;

	for (int c = 0; c < rs->ncols; c++)
	{
		size_t		cell = SL_CELL(rs, r, c);
		uint64		v;

		if (rs->isnull[cell])
			v = 0x9e3779b97f4a7c15ULL;
		else if (t->cols[c].cls == SL_CONTINUOUS)
		{
			double		x = rs->num[cell];

			if (isnan(x))
				v = 0x7ff8dead;
			else
			{
				if (x == 0)
					x = 0;		/* -0 == 0 */
				v = hash_bytes_extended((const unsigned char *) &x, sizeof(double), 0);
			}
		}
		else
			v = hash_bytes_extended((const unsigned char *) rs->text[cell],
									strlen(rs->text[cell]), 0);
		h = hash_combine64(h, v);
	}
	return h;
}

static bool
row_key_equal(const SlTable *t, const SlRowSet *a, int ra, const SlRowSet *b,
			  int rb)
{
	for (int c = 0; c < a->ncols; c++)
	{
		size_t		ca = SL_CELL(a, ra, c);
		size_t		cb = SL_CELL(b, rb, c);

		if (a->isnull[ca] || b->isnull[cb])
		{
			if (a->isnull[ca] != b->isnull[cb])
				return false;
			continue;
		}
		if (t->cols[c].cls == SL_CONTINUOUS)
		{
			double		x = a->num[ca];
			double		y = b->num[cb];

			if (isnan(x) || isnan(y) ? !(isnan(x) && isnan(y)) : x != y)
				return false;
		}
		else if (strcmp(a->text[ca], b->text[cb]) != 0)
			return false;
	}
	return true;
}

typedef struct HashRow
{
	uint64		h;
	int			r;
} HashRow;

static int
cmp_hash_row(const void *a, const void *b)
{
	const HashRow *x = a;
	const HashRow *y = b;

	if (x->h != y->h)
		return (x->h > y->h) ? 1 : -1;
	return (x->r > y->r) - (x->r < y->r);
}

static double
exact_copy_rate(const SlTable *t, const SlRowSet *real, const SlRowSet *syn)
{
	HashRow    *hr = palloc(sizeof(HashRow) * Max(real->nrows, 1));
	int			copies = 0;

	for (int r = 0; r < real->nrows; r++)
	{
		if ((r % EVAL_CHECK_EVERY) == 0)
			CHECK_FOR_INTERRUPTS();
		hr[r].h = row_key_hash(t, real, r);
		hr[r].r = r;
	}
	qsort(hr, real->nrows, sizeof(HashRow), cmp_hash_row);
	for (int s = 0; s < syn->nrows; s++)
	{
		uint64		h = row_key_hash(t, syn, s);
		int			lo = 0,
					hi = real->nrows;

		if ((s % EVAL_CHECK_EVERY) == 0)
			CHECK_FOR_INTERRUPTS();
		/* first entry with hash >= h */
		while (lo < hi)
		{
			int			mid = lo + (hi - lo) / 2;

			if (hr[mid].h < h)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < real->nrows && hr[lo].h == h; lo++)
			if (row_key_equal(t, syn, s, real, hr[lo].r))
			{
				copies++;
				break;
			}
	}
	pfree(hr);
	return (double) copies / syn->nrows;
}

/* encode at most max rows of rs, a seeded uniform subset */
static double *
encode_sample(const SlEncoder *enc, const SlRowSet *rs, int max, uint64 seed,
			  int *n)
{
	int		   *idx;
	SlRowSet   *sub;
	double	   *x;

	if (rs->nrows <= max)
	{
		*n = rs->nrows;
		return sl_encoder_apply(enc, rs);
	}
	idx = sl_eval_sample_indices(rs->nrows, max, seed);
	sub = sl_eval_subset(rs, idx, max);
	x = sl_encoder_apply(enc, sub);
	*n = max;
	pfree(idx);
	return x;
}

void
sl_eval_privacy(const SlEvalData *d, SlEvalOut *out)
{
	SlEncoder  *enc;
	int			dim;
	double	   *R;
	double	   *S;
	double	   *dS;
	int			nR,
				nS;
	double		medS;

	sl_eval_emit(out, "exact_copy_rate", NULL,
				 exact_copy_rate(d->t, d->real, d->syn), false);

	/* DCR in the encoding learned on the real rows */
	enc = sl_encoder_fit(d->t, d->real, SL_EVAL_MAX_CATEGORIES);
	dim = sl_encoder_dim(enc);
	R = encode_sample(enc, d->real, SL_EVAL_DCR_MAX_REAL,
					  sl_stream_seed(d->seed, SL_STREAM_EVAL_DCR, 0), &nR);
	S = encode_sample(enc, d->syn, SL_EVAL_DCR_MAX_QUERY,
					  sl_stream_seed(d->seed, SL_STREAM_EVAL_DCR, 1), &nS);
	dS = palloc(sizeof(double) * nS);
	sl_eval_dcr_min(S, nS, R, nR, dim, false, dS);
	medS = sl_eval_median(dS, nS);
	sl_eval_emit(out, "dcr_synthetic_median", NULL, medS, false);

	if (d->hold != NULL)
	{
		int			nH;
		double	   *H = encode_sample(enc, d->hold, SL_EVAL_DCR_MAX_QUERY,
									  sl_stream_seed(d->seed, SL_STREAM_EVAL_DCR, 2), &nH);
		double	   *dH = palloc(sizeof(double) * nH);
		double		medH;
		int			m;
		double	   *Rm;
		double	   *Hm;
		double	   *toR;
		double	   *toH;
		double		closer = 0;

		sl_eval_dcr_min(H, nH, R, nR, dim, false, dH);
		medH = sl_eval_median(dH, nH);
		sl_eval_emit(out, "dcr_holdout_median", NULL, medH, false);
		/* 0/0: the holdout copies real rows, so there is no baseline */
		if (medH > 0)
			sl_eval_emit(out, "dcr_baseline_protection", NULL, Min(1.0, medS / medH), false);
		else
			sl_eval_emit(out, "dcr_baseline_protection", NULL, 1.0, medS == 0);

		/*
		 * SDMetrics' DCROverfittingProtection: the share of synthetic rows
		 * closer to the real (training) rows than to the holdout.  Both
		 * reference sets get the same size, or the larger one would be
		 * closer by chance alone.
		 */
		m = Min(nR, nH);
		Rm = encode_sample(enc, d->real, m, sl_stream_seed(d->seed, SL_STREAM_EVAL_DCR, 3), &m);
		Hm = encode_sample(enc, d->hold, m, sl_stream_seed(d->seed, SL_STREAM_EVAL_DCR, 4), &m);
		toR = palloc(sizeof(double) * nS);
		toH = palloc(sizeof(double) * nS);
		sl_eval_dcr_min(S, nS, Rm, m, dim, false, toR);
		sl_eval_dcr_min(S, nS, Hm, m, dim, false, toH);
		for (int i = 0; i < nS; i++)
			closer += (toR[i] < toH[i]) ? 1.0 : (toR[i] == toH[i]) ? 0.5 : 0.0;
		closer /= nS;
		sl_eval_emit(out, "dcr_overfitting_protection", NULL,
					 Min(1.0, 2.0 * (1.0 - closer)), false);
	}
}
