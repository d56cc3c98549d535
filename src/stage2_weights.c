/*-------------------------------------------------------------------------
 *
 * stage2_weights.c
 *	  Stage 2, steps 5-7: importance log-weights of the candidates.
 *
 * log w_i = sum over clusters C of [log p_T(x_C) - log p_S(x_C)]
 *		   + log P_T(y_i | x_i) - log P_S(y_i | x_i),
 * then normalized in log space.  Tuple frequencies are exact counts: each
 * cluster's codes are packed into one 64-bit key, keys are sorted, and
 * counts come from binary search.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "stage2.h"

/* rows of sorted keys equal to key */
int
sl_count_key(const uint64 *sorted, int n, uint64 key)
{
	int			lo = 0,
				hi = n,
				first;

	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (sorted[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	first = lo;
	hi = n;
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (sorted[mid] <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - first;
}

static int
cmp_double_desc(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x < y) - (x > y);
}

static uint64
mix64(uint64 z)
{
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

/*
 * Key of one row's tuple over the cluster's fields: exact mixed-radix when
 * the product of the fields' code counts fits in 64 bits (always, with the
 * default cap of 4 fields and at most ~1,000 codes each), else a 64-bit hash
 * whose collisions are negligible at these row counts.
 */
int
sl_cluster_fields(const SlFieldSet *fs, const int *cluster, int c, int *fl, double *ntuples)
{
	int			nf = 0;

	*ntuples = 1;
	for (int f = 0; f < fs->nfields; f++)
		if (cluster[f] == c)
		{
			fl[nf++] = f;
			*ntuples *= fs->fields[f].ncodes;
		}
	return nf;
}

void
sl_tuple_keys(const SlFieldSet *fs, const int32 *codes, int n, const int *fl,
		   int nf, bool exact, uint64 *keys)
{
	int			F = fs->nfields;

	for (int r = 0; r < n; r++)
	{
		const int32 *cr = codes + (size_t) r * F;
		uint64		k = exact ? 0 : 0x9E3779B97F4A7C15ULL;

		for (int i = 0; i < nf; i++)
		{
			if (exact)
				k = k * (uint64) fs->fields[fl[i]].ncodes + (uint64) cr[fl[i]];
			else
				k = mix64(k ^ ((uint64) cr[fl[i]] + 0x9E3779B97F4A7C15ULL * (i + 1)));
		}
		keys[r] = k;
	}
}

void
sl_weights_feature_part(const SlFieldSet *fs, const int32 *codesT, int nT,
						const int32 *codesS, int nS, const int *cluster,
						int nclusters, double *logw)
{
	int			F = fs->nfields;
	int		   *fl;
	uint64	   *kT,
			   *kS,
			   *kSs;
	double		log_none = log(SL_NONE_PROB);

	if (nT <= 0 || nS <= 0 || F <= 0)
		return;
	fl = palloc(sizeof(int) * F);
	kT = palloc(sizeof(uint64) * nT);
	kS = palloc(sizeof(uint64) * nS);
	kSs = palloc(sizeof(uint64) * nS);
	for (int c = 0; c < nclusters; c++)
	{
		bool		exact = true;
		double		prod;
		int			nf;

		CHECK_FOR_INTERRUPTS();
		nf = sl_cluster_fields(fs, cluster, c, fl, &prod);
		if (nf == 0)
			continue;
		if (prod >= 1.8e19)
			exact = false;
		sl_tuple_keys(fs, codesT, nT, fl, nf, exact, kT);
		sl_tuple_keys(fs, codesS, nS, fl, nf, exact, kS);
		memcpy(kSs, kS, sizeof(uint64) * nS);
		qsort(kT, nT, sizeof(uint64), sl_cmp_uint64);
		qsort(kSs, nS, sizeof(uint64), sl_cmp_uint64);
		for (int i = 0; i < nS; i++)
		{
			int			cT = sl_count_key(kT, nT, kS[i]);
			int			cS = sl_count_key(kSs, nS, kS[i]);	/* >= 1: row i */
			double		lpT = cT > 0 ? log((double) cT / nT) : log_none;

			logw[i] += lpT - log((double) cS / nS);
		}
	}
	pfree(fl);
	pfree(kT);
	pfree(kS);
	pfree(kSs);
}

/*
 * The label part, with the reference code's bugs fixed: the probability of
 * each row's own label under f_T and f_S (the reference used P(y=1|x) for
 * every row, and normalized multi-class outputs over the batch).  A
 * candidate whose label is NULL or never seen in T gets log(1e-20), like a
 * feature tuple never seen in T.
 *
 * Deviation from the paper: the reference code's label part is
 * log P_T(y=1|x) - log P_S(y=1|x) for every row; we use each row's own label
 * (method.md, step 6), and the 1e-20 rule for unknown labels is ours.
 */
void
sl_weights_label_part(const double *logpT, const double *logpS, const int *y,
					  int nS, double *logw)
{
	double		log_none = log(SL_NONE_PROB);

	for (int i = 0; i < nS; i++)
	{
		if (y[i] < 0 || !isfinite(logpT[i]) || !isfinite(logpS[i]))
			logw[i] += log_none;
		else
			logw[i] += logpT[i] - logpS[i];
	}
}

/*
 * Normalize log-weights so that sum exp(logw) = 1, via log-sum-exp (raw
 * products of 1e-20 factors underflow).  Returns the effective sample size
 * (sum w)^2 / sum w^2 and sets *n_carry to the fewest candidates holding 99%
 * of the weight.
 */
double
sl_weights_normalize(double *logw, int n, int *n_carry)
{
	double		mx = -INFINITY;
	double		s = 0;
	double		lse;
	double		s2 = 0;
	double	   *w;
	double		cum = 0;
	int			k = 0;

	*n_carry = 0;
	if (n <= 0)
		return 0;
	for (int i = 0; i < n; i++)
	{
		if (isnan(logw[i]))
			logw[i] = -INFINITY;
		if (logw[i] > mx)
			mx = logw[i];
	}
	if (!isfinite(mx))
	{
		/* every weight zero or infinite: fall back to uniform */
		for (int i = 0; i < n; i++)
			logw[i] = -log((double) n);
		*n_carry = n;
		return n;
	}
	for (int i = 0; i < n; i++)
		s += exp(logw[i] - mx);
	lse = mx + log(s);
	w = palloc(sizeof(double) * n);
	for (int i = 0; i < n; i++)
	{
		logw[i] -= lse;
		w[i] = exp(logw[i]);
		s2 += w[i] * w[i];
	}
	qsort(w, n, sizeof(double), cmp_double_desc);
	for (k = 0; k < n && cum < 0.99; k++)
		cum += w[k];
	*n_carry = Max(k, 1);
	pfree(w);
	return s2 > 0 ? 1.0 / s2 : 0;
}
