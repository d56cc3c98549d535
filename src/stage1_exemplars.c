/*-------------------------------------------------------------------------
 *
 * stage1_exemplars.c
 *	  Stage 1, step 2: diverse exemplars by k-means++ over encoded seed rows.
 *
 * The seed rows are encoded (encode.c), seeded with k-means++ and refined by
 * Lloyd iterations; every LLM request then draws a few rows from each
 * cluster, so the exemplars of one prompt cover the whole table rather than
 * its densest region.  The assignment step computes all row-to-centre
 * distances as ||x||^2 + ||c||^2 - 2 x.c^T with one dgemm per chunk of rows.
 * Everything is deterministic for a given seed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "table.h"
#include "stage1.h"

/* cblas.h is clean with our flags today; keep it quiet if that changes */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstrict-prototypes"
#pragma GCC diagnostic ignored "-Wmissing-prototypes"
#include <cblas.h>
#pragma GCC diagnostic pop

/* One-hot over this many top categories per categorical column */
#define SL_KMEANS_MAX_CATEGORIES	8

/* Lloyd iterations stop here even if assignments still change */
#define SL_KMEANS_MAX_ITERATIONS	100

/* Rows per dgemm in the assignment step */
#define SL_KMEANS_CHUNK_ROWS		4096

/* Rows between interrupt checks in plain loops */
#define SL_KMEANS_CHECK_EVERY		4096

typedef struct KMeansState
{
	int			n;				/* rows */
	int			dim;
	int			k;
	const double *x;			/* n x dim, encoded rows */
	double	   *xnorm;			/* n: ||x||^2 */
	double	   *centers;		/* k x dim */
	double	   *cnorm;			/* k: ||c||^2 */
	int		   *assign;			/* n: cluster of each row */
	double	   *dist;			/* n: squared distance to its centre */
	int		   *counts;			/* k */
	double	   *gram;			/* chunk x k scratch for dgemm */
} KMeansState;

/* Squared Euclidean distance, computed directly (exact zero for equal rows) */
static inline double
sqdist(const double *a, const double *b, int dim)
{
	double		s = 0.0;

	for (int d = 0; d < dim; d++)
	{
		double		diff = a[d] - b[d];

		s += diff * diff;
	}
	return s;
}

/*
 * Draws a row with probability proportional to mind[] (whose sum is total).
 * The running sum only grows on rows with a positive distance, so the pick is
 * never a duplicate of a centre; summing in the same order as total keeps the
 * last positive row reachable despite rounding.
 */
static int
sample_d2(const double *mind, int n, double total, pg_prng_state *rng)
{
	double		target = pg_prng_double(rng) * total;
	double		acc = 0.0;
	int			pick = -1;

	for (int i = 0; i < n; i++)
	{
		acc += mind[i];
		if (mind[i] > 0.0)
		{
			pick = i;
			if (acc > target)
				break;
		}
	}
	Assert(pick >= 0);
	return pick;
}

/*
 * Greedy k-means++ seeding: the first centre uniformly, then at each step a
 * few candidates drawn with probability proportional to the squared distance
 * to the nearest centre so far, keeping the one that lowers the total most.
 * Plain k-means++ puts two centres in one blob noticeably often; the greedy
 * variant (2 + ln k candidates, as Arthur and Vassilvitskii suggest) rarely
 * does, at a few more passes over the rows.
 *
 * The distances are computed directly rather than by dgemm, so that rows
 * equal to a centre are at exactly zero: when every row is at zero there are
 * no more distinct rows, and k is clamped to the centres found.  This is how
 * "k is clamped to the number of distinct encoded rows" is implemented, at no
 * cost beyond the seeding itself.
 *
 * Returns the number of centres chosen.
 */
static int
kmeanspp_seed(KMeansState *s, pg_prng_state *rng)
{
	int			n = s->n;
	int			dim = s->dim;
	int			ntrials = 2 + (int) log((double) s->k);
	double	   *mind = s->dist;
	double	   *trial = MemoryContextAllocHuge(CurrentMemoryContext,
											   sizeof(double) * n);
	double	   *best = MemoryContextAllocHuge(CurrentMemoryContext,
											  sizeof(double) * n);
	int			chosen;
	uint64		first;

	first = pg_prng_uint64_range(rng, 0, (uint64) n - 1);
	memcpy(s->centers, s->x + first * dim, sizeof(double) * dim);
	for (int i = 0; i < n; i++)
	{
		if ((i % SL_KMEANS_CHECK_EVERY) == 0)
			CHECK_FOR_INTERRUPTS();
		mind[i] = sqdist(s->x + (size_t) i * dim, s->centers, dim);
	}

	for (chosen = 1; chosen < s->k; chosen++)
	{
		double		total = 0.0;
		double		bestpot = 0.0;
		int			bestpick = -1;

		CHECK_FOR_INTERRUPTS();

		for (int i = 0; i < n; i++)
			total += mind[i];
		if (!(total > 0.0))
			break;				/* every row equals some centre already */

		for (int tr = 0; tr < ntrials; tr++)
		{
			int			pick = sample_d2(mind, n, total, rng);
			const double *c = s->x + (size_t) pick * dim;
			double		pot = 0.0;
			double	   *swap;

			for (int i = 0; i < n; i++)
			{
				double		d;

				if ((i % SL_KMEANS_CHECK_EVERY) == 0)
					CHECK_FOR_INTERRUPTS();
				d = sqdist(s->x + (size_t) i * dim, c, dim);
				trial[i] = Min(d, mind[i]);
				pot += trial[i];
			}
			if (bestpick < 0 || pot < bestpot)
			{
				bestpot = pot;
				bestpick = pick;
				swap = best;
				best = trial;
				trial = swap;
			}
		}

		memcpy(s->centers + (size_t) chosen * dim,
			   s->x + (size_t) bestpick * dim, sizeof(double) * dim);
		memcpy(mind, best, sizeof(double) * n);
	}

	pfree(trial);
	pfree(best);
	return chosen;
}

/*
 * Assigns every row to its nearest centre (lowest index on ties) and records
 * the squared distance.  Returns how many rows changed cluster.
 */
static int64
kmeans_assign(KMeansState *s)
{
	int			n = s->n;
	int			dim = s->dim;
	int			k = s->k;
	int64		changed = 0;

	/* dim >= 1 and k >= 1 here: BLAS never sees a zero dimension */
	Assert(dim > 0 && k > 0 && n > 0);

	for (int j = 0; j < k; j++)
	{
		const double *c = s->centers + (size_t) j * dim;
		double		norm = 0.0;

		for (int d = 0; d < dim; d++)
			norm += c[d] * c[d];
		s->cnorm[j] = norm;
	}

	for (int r0 = 0; r0 < n; r0 += SL_KMEANS_CHUNK_ROWS)
	{
		int			m = Min(SL_KMEANS_CHUNK_ROWS, n - r0);

		CHECK_FOR_INTERRUPTS();

		/* gram (m x k) = X[r0 .. r0+m) (m x dim) * C^T (dim x k) */
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
					m, k, dim,
					1.0, s->x + (size_t) r0 * dim, dim,
					s->centers, dim,
					0.0, s->gram, k);

		for (int i = 0; i < m; i++)
		{
			int			row = r0 + i;
			const double *g = s->gram + (size_t) i * k;
			int			best = 0;
			double		bestd = DBL_MAX;

			for (int j = 0; j < k; j++)
			{
				double		d = s->xnorm[row] + s->cnorm[j] - 2.0 * g[j];

				if (d < bestd)
				{
					bestd = d;
					best = j;
				}
			}
			/* cancellation may leave a tiny negative value */
			s->dist[row] = Max(bestd, 0.0);
			if (s->assign[row] != best)
			{
				s->assign[row] = best;
				changed++;
			}
		}
	}

	return changed;
}

/*
 * Moves every centre to the mean of its rows.  An empty cluster is re-seeded
 * with the row farthest from its centre (lowest index on ties) among the rows
 * of clusters that keep at least one other row; that row moves to the empty
 * cluster.  Returns true if any cluster was re-seeded.
 */
static bool
kmeans_update(KMeansState *s)
{
	int			n = s->n;
	int			dim = s->dim;
	int			k = s->k;
	bool		reseeded = false;

	memset(s->centers, 0, sizeof(double) * k * dim);
	memset(s->counts, 0, sizeof(int) * k);
	for (int i = 0; i < n; i++)
	{
		const double *xi = s->x + (size_t) i * dim;
		double	   *c = s->centers + (size_t) s->assign[i] * dim;

		if ((i % SL_KMEANS_CHECK_EVERY) == 0)
			CHECK_FOR_INTERRUPTS();
		for (int d = 0; d < dim; d++)
			c[d] += xi[d];
		s->counts[s->assign[i]]++;
	}

	for (int j = 0; j < k; j++)
	{
		int			far = -1;
		double		fard = -1.0;
		const double *xf;
		double	   *cold;

		if (s->counts[j] > 0)
			continue;

		for (int i = 0; i < n; i++)
		{
			if (s->counts[s->assign[i]] > 1 && s->dist[i] > fard)
			{
				fard = s->dist[i];
				far = i;
			}
		}
		if (far < 0)
			continue;			/* cannot happen while k <= distinct rows */

		xf = s->x + (size_t) far * dim;
		cold = s->centers + (size_t) s->assign[far] * dim;
		for (int d = 0; d < dim; d++)
			cold[d] -= xf[d];
		s->counts[s->assign[far]]--;
		memcpy(s->centers + (size_t) j * dim, xf, sizeof(double) * dim);
		s->counts[j] = 1;
		s->assign[far] = j;
		s->dist[far] = 0.0;
		reseeded = true;
	}

	for (int j = 0; j < k; j++)
	{
		double	   *c = s->centers + (size_t) j * dim;

		if (s->counts[j] == 0)
			continue;			/* stays where it was: zero, and unused */
		for (int d = 0; d < dim; d++)
			c[d] /= (double) s->counts[j];
	}

	return reseeded;
}

/* Builds the plan from a per-row assignment, dropping empty clusters. */
static SlExemplarPlan *
build_plan(MemoryContext mcxt, int n, int k, const int *assign)
{
	MemoryContext old = MemoryContextSwitchTo(mcxt);
	SlExemplarPlan *plan = palloc0(sizeof(SlExemplarPlan));
	int		   *counts = palloc0(sizeof(int) * Max(k, 1));
	int		   *renum = palloc(sizeof(int) * Max(k, 1));
	int			kept = 0;

	for (int i = 0; i < n; i++)
		counts[assign[i]]++;
	for (int j = 0; j < k; j++)
		renum[j] = (counts[j] > 0) ? kept++ : -1;

	plan->k = kept;
	plan->nmembers = palloc0(sizeof(int) * Max(kept, 1));
	plan->members = palloc0(sizeof(int *) * Max(kept, 1));
	plan->cluster_of = palloc(sizeof(int) * Max(n, 1));
	for (int j = 0; j < k; j++)
	{
		if (renum[j] >= 0)
			plan->members[renum[j]] = palloc(sizeof(int) * counts[j]);
	}
	for (int i = 0; i < n; i++)
	{
		int			c = renum[assign[i]];

		plan->cluster_of[i] = c;
		plan->members[c][plan->nmembers[c]++] = i;
	}

	pfree(counts);
	pfree(renum);
	MemoryContextSwitchTo(old);
	return plan;
}

SlExemplarPlan *
sl_exemplars_plan(const SlTable *t, const SlRowSet *seeds, int k, uint64 seed)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext work;
	MemoryContext old;
	SlExemplarPlan *plan;
	KMeansState s;
	SlEncoder  *enc;
	pg_prng_state rng;
	int			n = seeds->nrows;
	int			iter = 0;

	if (n <= 0)
		return build_plan(caller, 0, 0, NULL);
	k = Max(k, 1);
	k = Min(k, n);

	/* encodings and scratch can be large: free them all at once */
	work = AllocSetContextCreate(CurrentMemoryContext, "samplellm k-means",
								 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);

	enc = sl_encoder_fit(t, seeds, SL_KMEANS_MAX_CATEGORIES);
	memset(&s, 0, sizeof(s));
	s.n = n;
	s.dim = sl_encoder_dim(enc);
	s.k = k;
	s.x = sl_encoder_apply(enc, seeds);
	s.assign = palloc0(sizeof(int) * n);
	s.dist = MemoryContextAllocHuge(work, sizeof(double) * n);

	/* no dimension at all means every row encodes the same: one cluster */
	if (s.dim == 0)
		s.k = 1;
	else
	{
		s.centers = palloc0(sizeof(double) * k * s.dim);
		pg_prng_seed(&rng, seed);
		s.k = kmeanspp_seed(&s, &rng);
	}

	/* with one distinct row (or k = 1) every row is in cluster 0 already */
	if (s.k > 1)
	{
		s.xnorm = MemoryContextAllocHuge(work, sizeof(double) * n);
		s.cnorm = palloc(sizeof(double) * s.k);
		s.counts = palloc(sizeof(int) * s.k);
		s.gram = palloc(sizeof(double) * SL_KMEANS_CHUNK_ROWS * s.k);
		for (int i = 0; i < n; i++)
		{
			const double *xi = s.x + (size_t) i * s.dim;
			double		norm = 0.0;

			if ((i % SL_KMEANS_CHECK_EVERY) == 0)
				CHECK_FOR_INTERRUPTS();
			for (int d = 0; d < s.dim; d++)
				norm += xi[d] * xi[d];
			s.xnorm[i] = norm;
		}

		/* -1 so that the first assignment counts every row as changed */
		for (int i = 0; i < n; i++)
			s.assign[i] = -1;
		kmeans_assign(&s);

		for (iter = 0; iter < SL_KMEANS_MAX_ITERATIONS; iter++)
		{
			bool		reseeded;
			int64		changed;

			CHECK_FOR_INTERRUPTS();
			reseeded = kmeans_update(&s);
			changed = kmeans_assign(&s);
			if (changed == 0 && !reseeded)
				break;
		}
	}

	elog(DEBUG1, "k-means: %d rows, %d dimensions, k = %d, %d Lloyd iterations",
		 n, s.dim, s.k, iter);

	MemoryContextSwitchTo(old);
	plan = build_plan(caller, n, s.k, s.assign);
	MemoryContextDelete(work);

	return plan;
}

int
sl_exemplars_draw(const SlExemplarPlan *plan, int per_cluster,
				  pg_prng_state *rng, int *out)
{
	int			nout = 0;
	int		   *scratch = NULL;

	if (per_cluster <= 0)
		return 0;

	for (int j = 0; j < plan->k; j++)
	{
		int			nm = plan->nmembers[j];
		int			m = Min(per_cluster, nm);
		int		   *chosen = out + nout;

		if (m == 0)
			continue;

		if (m <= 32)
		{
			/*
			 * Floyd's algorithm: m uniform distinct picks in O(m^2), with no
			 * copy of the member list (the usual case: 2 of many rows).
			 */
			int			got = 0;

			for (int top = nm - m; top < nm; top++)
			{
				int			pick = (int) pg_prng_uint64_range(rng, 0, (uint64) top);
				bool		seen = false;

				for (int q = 0; q < got; q++)
				{
					if (chosen[q] == plan->members[j][pick])
					{
						seen = true;
						break;
					}
				}
				chosen[got++] = plan->members[j][seen ? top : pick];
			}
		}
		else
		{
			/* partial Fisher-Yates on a scratch copy */
			if (scratch == NULL)
			{
				int			maxm = 0;

				for (int q = 0; q < plan->k; q++)
					maxm = Max(maxm, plan->nmembers[q]);
				scratch = palloc(sizeof(int) * maxm);
			}
			memcpy(scratch, plan->members[j], sizeof(int) * nm);
			for (int q = 0; q < m; q++)
			{
				int			pick = (int) pg_prng_uint64_range(rng, q, (uint64) nm - 1);
				int			tmp = scratch[q];

				scratch[q] = scratch[pick];
				scratch[pick] = tmp;
				chosen[q] = scratch[q];
			}
		}
		nout += m;
	}

	if (scratch)
		pfree(scratch);
	return nout;
}
