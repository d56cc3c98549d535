/*-------------------------------------------------------------------------
 *
 * stage2_draw.c
 *	  Stage 2, step 8: draw candidates without replacement.
 *
 * Gumbel-top-k: with key_i = log w_i + G_i, G_i standard Gumbel, the indices
 * of the k largest keys in descending order are distributed exactly like k
 * successive draws without replacement with probability proportional to w.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "stage2.h"

typedef struct Keyed
{
	double		key;
	int			idx;
} Keyed;

static int
cmp_keyed_desc(const void *a, const void *b)
{
	const Keyed *x = a;
	const Keyed *y = b;

	if (x->key != y->key)
		return (x->key < y->key) ? 1 : -1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* uniform in the open interval (0, 1) */
static double
open_unit(pg_prng_state *rng)
{
	return ((double) (pg_prng_uint64(rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/*
 * Up to n indices of logw's candidates, drawn without replacement with
 * probability proportional to exp(logw), in draw order.  A pool no larger
 * than n is returned whole (in key order); the caller reports the
 * shortfall.  NaN weights count as zero weight.
 */
int
sl_draw_gumbel_topk(const double *logw, int ncands, int n, uint64 seed,
					int *chosen)
{
	Keyed	   *k;
	pg_prng_state rng;
	int			take = Min(Max(n, 0), ncands);

	if (take <= 0)
		return 0;
	k = palloc(sizeof(Keyed) * ncands);
	pg_prng_seed(&rng, seed);
	for (int i = 0; i < ncands; i++)
	{
		double		g = -log(-log(open_unit(&rng)));

		k[i].key = isnan(logw[i]) ? -INFINITY : logw[i] + g;
		k[i].idx = i;
		if ((i & 65535) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	/* a full sort is O(N log N); simpler than a heap and fast at these sizes */
	qsort(k, ncands, sizeof(Keyed), cmp_keyed_desc);
	for (int i = 0; i < take; i++)
		chosen[i] = k[i].idx;
	pfree(k);
	return take;
}

/*
 * The largest c with sum over w[0..n) of min(1, c w_i) = take (0 < take <=
 * the count of positive weights): the proportional-to-size draw's scale,
 * also what the novelty guard predicts the draw to take.
 */
double
sl_draw_pps_scale(const double *w, int n, double take)
{
	double	   *sorted = palloc(sizeof(double) * Max(n, 1));
	double		rest = 0,
				c;
	int			capped = 0;

	memcpy(sorted, w, sizeof(double) * n);
	qsort(sorted, n, sizeof(double), sl_cmp_double_desc);
	for (int i = 0; i < n; i++)
		rest += sorted[i];
	c = rest > 0 ? take / rest : 0;
	while (capped < n && capped + 1 <= take && sorted[capped] * c >= 1)
	{
		rest -= sorted[capped];
		capped++;
		c = rest > 0 ? (take - capped) / rest : INFINITY;
		CHECK_FOR_INTERRUPTS();
	}
	pfree(sorted);
	return c;
}

/*
 * Deviation from the paper (measured in docs/stage2.md): successive sampling
 * (the paper's draw, Gumbel-top-k above) flattens the weights once n is a
 * sizeable share of the pool: the heaviest candidates are taken early and
 * the rest of the draw falls back on the light ones, so with n a third of
 * the pool a label the weights cut to a fifth still comes out at twice its
 * target rate.  Proportional-to-size sampling gives each candidate the
 * inclusion probability pi_i = min(1, c w_i), sum pi_i = n, which is as
 * close to the weighted distribution as n distinct rows can get;
 * systematic sampling over a random order draws exactly n of them.
 */
/* perm stably ordered by key[perm[i]] (keys >= -1) */
static void
order_by_key(int *perm, int n, const int *key)
{
	int			kmax = -1;
	int		   *start;
	int		   *out;

	for (int i = 0; i < n; i++)
		kmax = Max(kmax, key[i]);
	start = palloc0(sizeof(int) * (kmax + 3));
	for (int i = 0; i < n; i++)
		start[Max(key[perm[i]], -1) + 2]++;
	for (int k = 1; k < kmax + 3; k++)
		start[k] += start[k - 1];
	out = palloc(sizeof(int) * Max(n, 1));
	for (int i = 0; i < n; i++)
		out[start[Max(key[perm[i]], -1) + 1]++] = perm[i];
	memcpy(perm, out, sizeof(int) * n);
	pfree(out);
	pfree(start);
}

int
sl_draw_pps(const double *logw, int ncands, int n, uint64 seed, int *chosen,
			const int *key)
{
	double	   *w;
	double		mx = -INFINITY;
	double		c;
	int			take = Min(Max(n, 0), ncands);
	int		   *perm;
	pg_prng_state rng;
	double		cum,
				u;
	int			got = 0;
	int			positive = 0;

	if (take <= 0)
		return 0;
	for (int i = 0; i < ncands; i++)
		if (!isnan(logw[i]) && logw[i] > mx)
			mx = logw[i];
	w = palloc(sizeof(double) * ncands);
	for (int i = 0; i < ncands; i++)
	{
		w[i] = (isnan(logw[i]) || !isfinite(mx)) ? 0 : exp(logw[i] - mx);
		positive += w[i] > 0;
	}
	if (positive <= take)
	{
		/* every candidate with weight, then the others in seeded order */
		for (int i = 0; i < ncands; i++)
			w[i] = w[i] > 0 ? 1 : 0;
		positive = take;
	}

	c = sl_draw_pps_scale(w, ncands, take);

	/* systematic sampling over a random order */
	perm = sl_identity(ncands);
	pg_prng_seed(&rng, seed);
	sl_shuffle_prefix(perm, ncands, ncands, &rng);

	/*
	 * Grouped by key, random within a key (a stable counting sort of the
	 * shuffled order): systematic sampling then takes each key's share to
	 * within one row, where a random order leaves the drawn label share a
	 * binomial's noise away from the weights' (about 0.02 at n = 500).
	 */
	if (key != NULL)
		order_by_key(perm, ncands, key);
	u = pg_prng_double(&rng);
	cum = 0;
	for (int k = 0; k < ncands && got < take; k++)
	{
		int			i = perm[k];
		double		pi = Min(1.0, w[i] * c);

		if (isnan(pi))
			pi = w[i] > 0 ? 1 : 0;
		cum += pi;
		if (cum >= u + got)
		{
			chosen[got++] = i;
			w[i] = -1;			/* taken */
		}
		if ((k & 65535) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	/* rounding can leave the last one out: the heaviest not taken */
	while (got < take)
	{
		int			best = -1;

		for (int i = 0; i < ncands; i++)
			if (w[i] >= 0 && (best < 0 || w[i] > w[best]))
				best = i;
		chosen[got++] = best;
		w[best] = -1;
	}
	pfree(perm);
	pfree(w);
	return take;
}

/* The 'uniform' ablation: a seeded partial Fisher-Yates shuffle. */
int
sl_draw_uniform(int ncands, int n, uint64 seed, int *chosen)
{
	int		   *perm;
	pg_prng_state rng;
	int			take = Min(Max(n, 0), ncands);

	if (take <= 0)
		return 0;
	perm = sl_identity(ncands);
	pg_prng_seed(&rng, seed);
	sl_shuffle_prefix(perm, ncands, take, &rng);
	memcpy(chosen, perm, sizeof(int) * take);
	pfree(perm);
	return take;
}

/*
 * The grouped draw (per_group), of which the plain one is the case of one
 * group: each group takes its quota from its own candidates, by the whole
 * pool's weights.
 */
int
sl_draw_groups(SlDrawMethod method, const double *logw, const int *group_of,
			   int ncands, const int *quota, int ngroups, uint64 seed, int *chosen,
			   const int *key)
{
	int		   *members = palloc(sizeof(int) * Max(ncands, 1));
	double	   *sub = palloc(sizeof(double) * Max(ncands, 1));
	int		   *subkey = key ? palloc(sizeof(int) * Max(ncands, 1)) : NULL;
	int		   *pick = palloc(sizeof(int) * Max(ncands, 1));
	int			nchosen = 0;
	int			g;

	for (g = 0; g < ngroups; g++)
	{
		uint64		gseed = sl_stream_seed(seed, SL_STREAM_DRAW, (uint64) g);
		int			m = 0;
		int			got;
		int			k;
		int			r;

		for (r = 0; r < ncands; r++)
			if (group_of == NULL || group_of[r] == g)
			{
				sub[m] = logw ? logw[r] : 0.0;
				if (subkey)
					subkey[m] = key[r];
				members[m++] = r;
			}
		switch (method)
		{
			case SL_DRAW_FIRST:
				got = Min(m, quota[g]);
				for (k = 0; k < got; k++)
					pick[k] = k;
				break;
			case SL_DRAW_UNIFORM:
				got = sl_draw_uniform(m, quota[g], gseed, pick);
				break;
			case SL_DRAW_PPS:
				got = sl_draw_pps(sub, m, quota[g], gseed, pick, subkey);
				break;
			case SL_DRAW_WEIGHTED:
			default:
				got = sl_draw_gumbel_topk(sub, m, quota[g], gseed, pick);
				break;
		}
		for (k = 0; k < got; k++)
			chosen[nchosen++] = members[pick[k]];
	}
	pfree(members);
	pfree(sub);
	pfree(pick);
	if (subkey)
		pfree(subkey);
	return nchosen;
}
