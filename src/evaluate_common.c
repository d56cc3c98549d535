/*-------------------------------------------------------------------------
 *
 * evaluate_common.c
 *	  What samplellm_evaluate's metric files share: the output rows, row
 *	  subsets and samples, and the ROC AUC.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"

#include "evaluate.h"
#include "util.h"

void
sl_eval_emit(SlEvalOut *out, const char *metric, const char *columns,
			 double score, bool isnull)
{
	if (out->n >= out->cap)
	{
		out->cap = Max(out->cap * 2, 64);
		if (out->metric == NULL)
		{
			out->metric = palloc(sizeof(char *) * out->cap);
			out->columns = palloc(sizeof(char *) * out->cap);
			out->score = palloc(sizeof(double) * out->cap);
			out->isnull = palloc(sizeof(bool) * out->cap);
		}
		else
		{
			out->metric = repalloc(out->metric, sizeof(char *) * out->cap);
			out->columns = repalloc(out->columns, sizeof(char *) * out->cap);
			out->score = repalloc(out->score, sizeof(double) * out->cap);
			out->isnull = repalloc(out->isnull, sizeof(bool) * out->cap);
		}
	}
	out->metric[out->n] = pstrdup(metric);
	out->columns[out->n] = columns ? pstrdup(columns) : NULL;
	/* a NaN score is an undefined one: report NULL, never NaN */
	out->isnull[out->n] = isnull || isnan(score);
	out->score[out->n] = out->isnull[out->n] ? 0.0 : score;
	out->n++;
}

/*
 * A row set holding rows idx[0..n) of rs, sharing rs's cells (rs must
 * outlive it).
 */
SlRowSet *
sl_eval_subset(const SlRowSet *rs, const int *idx, int n)
{
	SlRowSet   *sub = sl_rowset_create(rs->ncols, Max(n, 1));
	int			nc = rs->ncols;

	for (int i = 0; i < n; i++)
	{
		size_t		from = (size_t) idx[i] * nc;
		size_t		to = (size_t) i * nc;

		memcpy(sub->values + to, rs->values + from, sizeof(Datum) * nc);
		memcpy(sub->isnull + to, rs->isnull + from, sizeof(bool) * nc);
		memcpy(sub->text + to, rs->text + from, sizeof(char *) * nc);
		memcpy(sub->num + to, rs->num + from, sizeof(double) * nc);
	}
	sub->nrows = n;
	return sub;
}

/*
 * take distinct indices of 0..n-1 in a seeded random order (a partial
 * Fisher-Yates shuffle); take >= n gives a permutation of all of them.
 */
int *
sl_eval_sample_indices(int n, int take, uint64 seed)
{
	int		   *perm = sl_identity(n);
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	sl_shuffle_prefix(perm, n, Min(take, n), &rng);
	return perm;
}

typedef struct ScoreIdx
{
	double		score;
	int			i;
} ScoreIdx;

static int
cmp_score_idx(const void *a, const void *b)
{
	const ScoreIdx *x = a;
	const ScoreIdx *y = b;

	if (x->score != y->score)
		return (x->score > y->score) - (x->score < y->score);
	return (x->i > y->i) - (x->i < y->i);
}

/*
 * ROC AUC by the rank-sum (Mann-Whitney) form, ties counted one half;
 * NaN when one class is absent.
 */
double
sl_eval_auc(const double *score, const bool *positive, int n)
{
	ScoreIdx   *s = palloc(sizeof(ScoreIdx) * Max(n, 1));
	double		npos = 0;
	double		nneg = 0;
	double		ranksum = 0;
	int			i = 0;

	for (int k = 0; k < n; k++)
	{
		s[k].score = score[k];
		s[k].i = k;
		if (positive[k])
			npos++;
		else
			nneg++;
	}
	if (npos == 0 || nneg == 0)
	{
		pfree(s);
		return NAN;
	}
	qsort(s, n, sizeof(ScoreIdx), cmp_score_idx);
	while (i < n)
	{
		int			j = i;
		double		avg;

		while (j < n && s[j].score == s[i].score)
			j++;
		avg = 0.5 * ((double) (i + 1) + (double) j);	/* ranks i+1..j */
		for (int k = i; k < j; k++)
			if (positive[s[k].i])
				ranksum += avg;
		i = j;
	}
	pfree(s);
	return (ranksum - npos * (npos + 1) / 2.0) / (npos * nneg);
}

/* numpy.median: the mean of the two middle values for an even count; NaN if n = 0 */
double
sl_eval_median(const double *v, int n)
{
	double	   *s;
	double		m;

	if (n <= 0)
		return NAN;
	s = palloc(sizeof(double) * n);
	memcpy(s, v, sizeof(double) * n);
	qsort(s, n, sizeof(double), sl_cmp_double);
	m = (n % 2) ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
	pfree(s);
	return m;
}
