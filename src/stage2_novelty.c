/*-------------------------------------------------------------------------
 *
 * stage2_novelty.c
 *	  The default estimator's novelty guard: the drawn rows may not sit
 *	  closer to the seeds than unseen real rows do.
 *
 * Deviation from the paper (the default estimator only).  An LLM that
 * perturbs its exemplars writes candidates that are near-copies of seeds,
 * and a density ratio fitted on the seeds favours exactly those; issue 14's
 * novelty target is distance to the seeds >= 0.95x the distance of unseen
 * real rows (samplellm_evaluate's dcr_synthetic_median /
 * dcr_holdout_median).  The guard enforces it as a constraint on the final
 * weights:
 *
 *	d(x)	 = a candidate's distance to its nearest seed;
 *	d_LOO(s) = a seed's distance to its nearest OTHER seed, which stands in
 *			   for an unseen real row's distance to the seeds (a holdout row
 *			   is one more draw from the seeds' distribution, so its distance
 *			   to N seeds is distributed nearly as a seed's to the N - 1
 *			   others);
 *	tau		 = ratio * median(d_LOO); "close" = d(x) < tau.
 *
 * The drawn rows' median distance is >= tau iff at most half of them are
 * close, so when the weight share of close candidates exceeds one half
 * (SL_NOVELTY_ENGAGE: the target is missed; below it the guard changes
 * nothing), it is brought down to cap (SL_NOVELTY_CAP, 0.45: a margin for
 * the draw and for d_LOO standing in for unseen rows; bench/stage2_quality.sh
 * on German credit, the one data set where it engages, with the class
 * shares set and the draw keyed by label: cap 0.48 gave DCR ratio 0.94,
 * 0.45 0.97, 0.42 0.99, at LR AUC 0.803 / 0.801 / 0.802 and ESS 913 / 884
 * / 857):
 * the close candidates' weights are scaled by
 * the beta that brings the share to cap, within each label class, and the
 * class is rescaled to its old total, so the label correction survives.
 * The draw includes candidate i with probability min(1, c w_i)
 * (stage2_draw.c): when far candidates are few, the heavy ones saturate at
 * 1 and the drawn close share exceeds the weight share, so when the draw's
 * size n is known the close weights of every class get one more common
 * factor gamma, the largest (bisection, NOV_BISECT steps) whose expected
 * drawn close share is <= cap; if even gamma -> 0 cannot get there (fewer
 * than (1 - cap) n far candidates), every far candidate is drawn and the
 * rest of the draw keeps the close candidates' relative weights.
 *
 * Distances are samplellm_evaluate's own: the encoding of table_encode.c
 * learned on the seeds (one-hot over SL_EVAL_MAX_CATEGORIES, standardized
 * numerics, the label included) and sl_eval_dcr_min.
 *
 * Cost bound: d and d_LOO use the same seeded sample of m seeds,
 * m = min(nT, max(NOV_MIN_SEEDS, min(NOV_MAX_SEEDS, NOV_PAIRS / nS))), so
 * at most max(NOV_PAIRS, nS * NOV_MIN_SEEDS) distance pairs (1,500
 * candidates: every seed up to 2,000; 300,000: 333 seeds); every
 * candidate's d is computed only when a weight-proportional probe of
 * NOV_PROBE candidates says the guard may engage (its share within
 * NOV_PROBE_MARGIN of one half; the probe's standard error is below
 * 0.012); the bisection merges two presorted lists per class, O(nS) a
 * step.  Candidates are encoded NOV_CHUNK rows at a time, so memory stays
 * O(NOV_CHUNK x width + nS).  test/unit/bench_stage2, 10,000 seeds x
 * 300,000 candidates: 0.02 s when the probe rules it out, 0.86 s engaged
 * (S2B_NOVELTY=1.3, its worst case: every candidate close).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"

#include "evaluate.h"
#include "stage2.h"
#include "util.h"

#define NOV_MIN_SEEDS		300
#define NOV_MAX_SEEDS		2000
#define NOV_PAIRS			1e8
#define NOV_PROBE			2000
#define NOV_PROBE_MARGIN	0.1
#define NOV_CHUNK			4096
#define NOV_BISECT			20
#define NOV_GAMMA_MIN		1e-9

/* one class's weights, far and close, each in descending order */
typedef struct ClassW
{
	double	   *fw;
	int			nf;
	double	   *cw;
	int			nc;
	double		sumf;
	double		sumc;
} ClassW;

static void
class_weights(const double *w, const bool *cl, const int *mem, int m,
			  ClassW *k)
{
	k->fw = palloc(sizeof(double) * Max(m, 1));
	k->cw = palloc(sizeof(double) * Max(m, 1));
	k->nf = k->nc = 0;
	k->sumf = k->sumc = 0;
	for (int j = 0; j < m; j++)
	{
		if (cl[mem[j]])
			k->cw[k->nc++] = w[mem[j]];
		else
			k->fw[k->nf++] = w[mem[j]];
	}
	qsort(k->fw, k->nf, sizeof(double), sl_cmp_double_desc);
	qsort(k->cw, k->nc, sizeof(double), sl_cmp_double_desc);
	for (int j = 0; j < k->nf; j++)
		k->sumf += k->fw[j];
	for (int j = 0; j < k->nc; j++)
		k->sumc += k->cw[j];
}

/*
 * The class's quota drawn with inclusion probability min(1, c v), v = its
 * weights with the close ones times b: *c (as sl_draw_pps_scale, but by
 * merging the two sorted lists, O(m) per call: the bisection calls it
 * often), and the expected close share
 */
static double
class_draw(const ClassW *k, double quota, double b, double *c)
{
	double		rest = k->sumf + b * k->sumc;
	double		e = 0;
	int			i = 0,
				j = 0;

	*c = rest > 0 ? quota / rest : 0;
	while (i + j + 1 <= quota)
	{
		bool		far = i < k->nf && (j >= k->nc || k->fw[i] >= b * k->cw[j]);
		double		next;

		if (!far && j >= k->nc)
			break;
		next = far ? k->fw[i] : b * k->cw[j];
		if (next * *c < 1)
			break;
		rest -= next;
		if (far)
			i++;
		else
			j++;
		*c = rest > 0 ? (quota - i - j) / rest : INFINITY;
	}
	for (int q = 0; q < k->nc; q++)
		e += Min(1.0, *c * b * k->cw[q]);
	return e / quota;
}

/* d of rows idx[0..k) of cands (idx NULL: rows 0..k-1), chunk by chunk */
static void
cand_distances(const SlEncoder *enc, const SlRowSet *cands, const int *idx,
			   int k, const double *R, int m, int dim, double *d)
{
	for (int c0 = 0; c0 < k; c0 += NOV_CHUNK)
	{
		int			b = Min(NOV_CHUNK, k - c0);
		SlRowSet   *sub;
		SlRowSet	view;
		double	   *X;

		CHECK_FOR_INTERRUPTS();
		if (idx != NULL)
			sub = sl_eval_subset(cands, idx + c0, b);
		else
		{
			/* rows c0..c0+b-1 in place: the row set is row-major */
			size_t		off = (size_t) c0 * cands->ncols;

			view = *cands;
			view.nrows = b;
			view.cap = b;
			view.values = cands->values + off;
			view.isnull = cands->isnull + off;
			view.text = cands->text + off;
			view.num = cands->num + off;
			sub = &view;
		}
		X = sl_encoder_apply(enc, sub);
		sl_eval_dcr_min(X, b, R, m, dim, false, d + c0);
		pfree(X);
		if (sub != &view)
			pfree(sub);
	}
}

void
sl_novelty_guard(const SlTable *t, const SlRowSet *seeds,
				 const SlRowSet *cands, const int *y, int n, double ratio,
				 double cap, uint64 seed, double *logw, SlNoveltyInfo *info)
{
	int			nT = seeds->nrows;
	int			nS = cands->nrows;
	int			m;
	int		   *sidx;
	SlRowSet   *ssub;
	SlEncoder  *enc;
	int			dim;
	double	   *R;
	double	   *dloo;
	double		wmax = -INFINITY;
	double	   *w;
	double	   *d;
	bool	   *close;
	int			ngroups = 1;
	double	   *W;
	double	   *C;
	double		sumW = 0,
				sumC = 0;

	memset(info, 0, sizeof(SlNoveltyInfo));
	info->ratio = ratio;
	info->beta = 1.0;
	info->drawn_close = -1;
	if (ratio <= 0 || nS == 0 || nT < 2)
		return;

	/* the seeds both d and d_LOO are measured against */
	m = (int) Min((double) NOV_MAX_SEEDS, NOV_PAIRS / nS);
	m = Min(nT, Max(m, NOV_MIN_SEEDS));
	sidx = sl_eval_sample_indices(nT, m, sl_stream_seed(seed, SL_STREAM_STAGE2_NOVELTY, 0));
	ssub = sl_eval_subset(seeds, sidx, m);
	enc = sl_encoder_fit(t, seeds, SL_EVAL_MAX_CATEGORIES);
	dim = sl_encoder_dim(enc);
	R = sl_encoder_apply(enc, ssub);
	dloo = palloc(sizeof(double) * m);
	sl_eval_dcr_min(R, m, R, m, dim, true, dloo);
	info->nseeds = m;
	info->tau = ratio * sl_eval_median(dloo, m);
	/* most seeds have a twin: no candidate can be closer than 0 */
	if (!(info->tau > 0) || !isfinite(info->tau))
		return;

	for (int i = 0; i < nS; i++)
		wmax = Max(wmax, logw[i]);
	w = palloc(sizeof(double) * nS);
	for (int i = 0; i < nS; i++)
		w[i] = exp(logw[i] - wmax);

	if (nS > NOV_PROBE)
	{
		/*
		 * The probe: NOV_PROBE candidates by systematic sampling
		 * proportional to w (with replacement), so the share of close ones
		 * estimates the weight share directly.
		 */
		int		   *pidx = palloc(sizeof(int) * NOV_PROBE);
		double	   *pd = palloc(sizeof(double) * NOV_PROBE);
		double		total = 0,
					acc = 0,
					step,
					next;
		int			k = 0,
					nclose = 0;
		pg_prng_state rng;

		for (int i = 0; i < nS; i++)
			total += w[i];
		step = total / NOV_PROBE;
		sl_stream_init(&rng, seed, SL_STREAM_STAGE2_NOVELTY, 1);
		next = pg_prng_double(&rng) * step;
		for (int i = 0; i < nS && k < NOV_PROBE; i++)
		{
			acc += w[i];
			while (k < NOV_PROBE && next < acc)
			{
				pidx[k++] = i;
				next += step;
			}
		}
		while (k < NOV_PROBE)	/* rounding at the end */
			pidx[k++] = nS - 1;
		cand_distances(enc, cands, pidx, NOV_PROBE, R, m, dim, pd);
		for (int i = 0; i < NOV_PROBE; i++)
			nclose += pd[i] < info->tau;
		info->close_before = (double) nclose / NOV_PROBE;
		info->close_after = info->close_before;
		pfree(pidx);
		pfree(pd);
		if (info->close_before < SL_NOVELTY_ENGAGE - NOV_PROBE_MARGIN)
		{
			pfree(w);
			return;
		}
	}

	/* every candidate's d, and the weight shares per label class */
	d = palloc(sizeof(double) * nS);
	cand_distances(enc, cands, NULL, nS, R, m, dim, d);
	info->full = true;
	close = palloc(sizeof(bool) * nS);
	for (int i = 0; i < nS; i++)
		close[i] = d[i] < info->tau;
	if (y != NULL)
		for (int i = 0; i < nS; i++)
			ngroups = Max(ngroups, y[i] + 2);
	W = palloc0(sizeof(double) * ngroups);
	C = palloc0(sizeof(double) * ngroups);
	for (int i = 0; i < nS; i++)
	{
		int			g = y != NULL ? y[i] + 1 : 0;

		W[g] += w[i];
		if (close[i])
			C[g] += w[i];
	}
	for (int g = 0; g < ngroups; g++)
	{
		sumW += W[g];
		sumC += C[g];
	}
	info->close_before = sumC / sumW;
	info->close_after = info->close_before;
	if (n > 0 && n < nS)
	{
		/* what the draw would take: min(1, c w) over the whole pool */
		double		c = sl_draw_pps_scale(w, nS, n);
		double		e = 0;

		for (int i = 0; i < nS; i++)
			if (close[i])
				e += Min(1.0, c * w[i]);
		info->drawn_close = e / n;
	}

	/*
	 * Engaged only where the target is missed (more than half the weight,
	 * or of the draw, close); then brought down to cap, below it.
	 */
	if (info->close_before > SL_NOVELTY_ENGAGE ||
		info->drawn_close > SL_NOVELTY_ENGAGE)
	{
		int		   *mem = palloc(sizeof(int) * nS);
		double		drawn = 0;

		sumC = 0;
		for (int g = 0; g < ngroups; g++)
		{
			double		far = W[g] - C[g];
			double		beta;
			double		scale;
			int			m = 0;

			if (W[g] <= 0)
				continue;
			/* the weight share of close candidates to cap */
			beta = (C[g] > cap * W[g] && far > 0) ?
				cap * far / ((1.0 - cap) * C[g]) : 1.0;
			scale = W[g] / (far + beta * C[g]);	/* the class keeps its total */
			for (int i = 0; i < nS; i++)
				if ((y != NULL ? y[i] + 1 : 0) == g)
					mem[m++] = i;

			if (n > 0 && n < nS)
			{
				/*
				 * The draw's saturation: the class's quota of the draw
				 * (its weight share of n) by min(1, c v), its close weights
				 * down by the largest further factor that brings its
				 * expected close share to cap, and the class scaled by its
				 * own c, so that the whole pool's c is 1 and each class
				 * gets its quota even where far candidates saturate.
				 */
				double		quota = n * W[g] / sumW;
				double		c;
				ClassW		cw;

				class_weights(w, close, mem, m, &cw);
				if (quota < m && far > 0 && C[g] > 0 &&
					class_draw(&cw, quota, beta, &c) > cap)
				{
					double		lo = log(beta * NOV_GAMMA_MIN),
								hi = log(beta);

					for (int it = 0; it < NOV_BISECT; it++)
					{
						double		mid = 0.5 * (lo + hi);

						CHECK_FOR_INTERRUPTS();
						if (class_draw(&cw, quota, exp(mid), &c) > cap)
							hi = mid;
						else
							lo = mid;
					}
					beta = exp(lo);
				}
				if (quota < m)
				{
					drawn += class_draw(&cw, quota, beta, &c) * quota;
					scale = c;
				}
				else
				{
					/* the class is drawn whole: every weight to c w >= 1 */
					double		vmin = INFINITY;

					for (int j = 0; j < m; j++)
					{
						drawn += close[mem[j]];
						vmin = Min(vmin, w[mem[j]] * (close[mem[j]] ? beta : 1.0));
					}
					scale = vmin > 0 ? 1.0 / vmin : 1.0;
				}
				pfree(cw.fw);
				pfree(cw.cw);
			}
			if (C[g] > 0)
				info->beta = Min(info->beta, beta);
			for (int j = 0; j < m; j++)
			{
				int			i = mem[j];

				logw[i] += log(scale) + (close[i] ? log(beta) : 0.0);

				/*
				 * With n known the weights are now the inclusion
				 * probabilities exp(logw - wmax); one above 1 is drawn
				 * surely all the same, and clipped it does not inflate
				 * the spread the run reports as ESS
				 */
				if (n > 0 && n < nS)
					logw[i] = Min(logw[i], wmax);
			}
		}
		/* the weight share after (logw - wmax stays finite: scales are mild) */
		sumW = 0;
		sumC = 0;
		for (int i = 0; i < nS; i++)
		{
			double		wi = exp(logw[i] - wmax);

			sumW += wi;
			if (close[i])
				sumC += wi;
		}
		info->close_after = sumC / sumW;
		if (n > 0 && n < nS)
			info->drawn_close = drawn / n;
		pfree(mem);
	}
	pfree(W);
	pfree(C);
	pfree(d);
	pfree(close);
	pfree(w);
}
