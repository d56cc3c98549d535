/*-------------------------------------------------------------------------
 *
 * stage2_backoff.c
 *	  Stage 2's default estimator of p_T / p_S: smoothed, backed-off and
 *	  tempered, so that a few hundred seeds give usable weights.
 *
 * Deviation from the paper (measured in docs/stage2.md): the reference code
 * uses exact cluster tuple frequencies with p_T = 1e-20 for any tuple the
 * seeds lack.  With 500 seeds most tuples of a 3-4-field cluster are unseen,
 * so the weight collapses onto the few hundred candidates that resemble the
 * seeds: label rates get fixed, but column shapes, pair trends, novelty and
 * augmentation utility get worse than no stage 2.  Here:
 *	 - each cluster's tuple frequency is Witten-Bell smoothed, backing off to
 *	   the product of the cluster's smoothed single-field frequencies: an
 *	   unseen tuple of seen values gets a small, finite probability, and the
 *	   back-off weight grows with how many distinct tuples the sample shows
 *	   (a sparse sample trusts its tuples less);
 *	 - S gets the same smoothing, so a rare candidate tuple is not rewarded
 *	   just for being rare in S;
 *	 - the label models' probabilities are shrunk toward the label rates, so
 *	   an overconfident f_T on a few hundred rows cannot dominate;
 *	 - the weights are tempered (w^lambda, the largest lambda <= 1) to an
 *	   effective-sample-size target, so that the draw of n rows has at least
 *	   about n candidates' worth of weight to draw from.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "stage2.h"

/* additive smoothing of single-field frequencies (Jeffreys' prior) */
#define FIELD_PRIOR 0.5

/*
 * log p^(x_f) for every code of every field: (count + 1/2) / (n + K/2),
 * K the field's number of codes.  Returned in one table by fs->code_off.
 */
static double *
field_log_freq(const SlFieldSet *fs, const int32 *codes, int n)
{
	int			F = fs->nfields;
	double	   *lp = palloc0(sizeof(double) * Max(fs->ncodes, 1));

	for (int r = 0; r < n; r++)
		for (int f = 0; f < F; f++)
			lp[fs->code_off[f] + codes[(size_t) r * F + f]] += 1;
	for (int f = 0; f < F; f++)
	{
		int			K = fs->fields[f].ncodes;

		for (int k = 0; k < K; k++)
		{
			double	   *v = &lp[fs->code_off[f] + k];

			*v = log((*v + FIELD_PRIOR) / ((double) n + FIELD_PRIOR * K));
		}
	}
	return lp;
}

static int
count_distinct(const uint64 *sorted, int n)
{
	int			d = n > 0 ? 1 : 0;

	for (int i = 1; i < n; i++)
		if (sorted[i] != sorted[i - 1])
			d++;
	return d;
}

/*
 * log of the Witten-Bell estimate (c + D q) / (n + D) of each query tuple:
 * c its count in the sample (sorted keys), D the sample's distinct tuples,
 * q the back-off probability (exp of logq).
 */
static double
witten_bell(int c, int n, int D, double logq)
{
	return log((double) c + (double) D * exp(logq)) - log((double) n + D);
}

void
sl_backoff_feature_part(const SlFieldSet *fs, const int32 *codesT, int nT,
						const int32 *codesS, int nS, const int *cluster,
						int nclusters, double *logw)
{
	int			F = fs->nfields;
	int		   *fl;
	uint64	   *kT,
			   *kS,
			   *kSs;
	double	   *lfT,
			   *lfS;

	if (nT <= 0 || nS <= 0 || F <= 0)
		return;
	lfT = field_log_freq(fs, codesT, nT);
	lfS = field_log_freq(fs, codesS, nS);
	fl = palloc(sizeof(int) * F);
	kT = palloc(sizeof(uint64) * nT);
	kS = palloc(sizeof(uint64) * nS);
	kSs = palloc(sizeof(uint64) * nS);
	for (int c = 0; c < nclusters; c++)
	{
		int			nf = 0;
		double		prod = 1;
		int			DT,
					DS;

		CHECK_FOR_INTERRUPTS();
		for (int f = 0; f < F; f++)
			if (cluster[f] == c)
			{
				fl[nf++] = f;
				prod *= fs->fields[f].ncodes;
			}
		if (nf == 0)
			continue;
		if (nf == 1)
		{
			/* a single field: its smoothed frequency is the estimate */
			int			f = fl[0];

			for (int i = 0; i < nS; i++)
			{
				int			k = fs->code_off[f] + codesS[(size_t) i * F + f];

				logw[i] += lfT[k] - lfS[k];
			}
			continue;
		}
		sl_tuple_keys(fs, codesT, nT, fl, nf, prod < 1.8e19, kT);
		sl_tuple_keys(fs, codesS, nS, fl, nf, prod < 1.8e19, kS);
		memcpy(kSs, kS, sizeof(uint64) * nS);
		qsort(kT, nT, sizeof(uint64), sl_cmp_uint64);
		qsort(kSs, nS, sizeof(uint64), sl_cmp_uint64);
		DT = count_distinct(kT, nT);
		DS = count_distinct(kSs, nS);
		for (int i = 0; i < nS; i++)
		{
			const int32 *cr = codesS + (size_t) i * F;
			double		qT = 0,
						qS = 0;

			for (int j = 0; j < nf; j++)
			{
				qT += lfT[fs->code_off[fl[j]] + cr[fl[j]]];
				qS += lfS[fs->code_off[fl[j]] + cr[fl[j]]];
			}
			logw[i] += witten_bell(sl_count_key(kT, nT, kS[i]), nT, DT, qT)
				- witten_bell(sl_count_key(kSs, nS, kS[i]), nS, DS, qS);
			if ((i & 65535) == 0)
				CHECK_FOR_INTERRUPTS();
		}
	}
	pfree(lfT);
	pfree(lfS);
	pfree(fl);
	pfree(kT);
	pfree(kS);
	pfree(kSs);
}

void
sl_backoff_label_rates(const int *y, int n, int nclasses, double *rate)
{
	int			m = 0;

	for (int k = 0; k < nclasses; k++)
		rate[k] = FIELD_PRIOR;
	for (int i = 0; i < n; i++)
		if (y[i] >= 0 && y[i] < nclasses)
		{
			rate[y[i]] += 1;
			m++;
		}
	for (int k = 0; k < nclasses; k++)
		rate[k] /= (double) m + FIELD_PRIOR * nclasses;
}

void
sl_backoff_label_part(const double *logpT, const double *logpS, const int *y,
					  int nS, const double *rateT, const double *rateS,
					  int nclasses, double shrink, double floorT, double *logw)
{
	double		lfloor = log(floorT);

	for (int i = 0; i < nS; i++)
	{
		int			k = y[i];
		double		pT,
					pS;

		if (k < 0 || k >= nclasses || !isfinite(logpT[i]) || !isfinite(logpS[i]))
		{
			/* a label T lacks: as rare as a class seen half a time */
			logw[i] += lfloor;
			continue;
		}
		pT = (1 - shrink) * exp(logpT[i]) + shrink * rateT[k];
		pS = (1 - shrink) * exp(logpS[i]) + shrink * rateS[k];
		logw[i] += log(pT) - log(pS);
	}
}

/* ESS of exp(lambda * logw), normalized */
static double
ess_at(const double *logw, int n, double lambda, double mx)
{
	double		s = 0,
				s2 = 0;

	for (int i = 0; i < n; i++)
	{
		double		w;

		if (!isfinite(logw[i]))
			continue;
		w = exp(lambda * (logw[i] - mx));
		s += w;
		s2 += w * w;
	}
	return s2 > 0 ? s * s / s2 : 0;
}

double
sl_backoff_temper(double *logw, int n, double target)
{
	double		mx = -INFINITY;
	double		lo = 0,
				hi = 1;

	for (int i = 0; i < n; i++)
		if (isfinite(logw[i]) && logw[i] > mx)
			mx = logw[i];
	if (target <= 0 || n <= 0 || !isfinite(mx) || ess_at(logw, n, 1, mx) >= target)
		return 1;

	/*
	 * ESS falls as lambda grows (at lambda = 0 it is the count of finite
	 * weights); 30 halvings pin lambda to 1e-9.
	 */
	for (int it = 0; it < 30; it++)
	{
		double		mid = 0.5 * (lo + hi);

		CHECK_FOR_INTERRUPTS();
		if (ess_at(logw, n, mid, mx) >= target)
			lo = mid;
		else
			hi = mid;
	}
	for (int i = 0; i < n; i++)
		if (isfinite(logw[i]))
			logw[i] *= lo;
	return lo;
}
