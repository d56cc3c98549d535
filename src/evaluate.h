/*-------------------------------------------------------------------------
 *
 * evaluate.h
 *	  samplellm_evaluate(): quality, detection, utility and privacy metrics
 *	  of synthetic rows against real rows.
 *
 * evaluate.c reads the tables and returns the rows; evaluate_metrics.c
 * computes column shapes, column pair trends and the privacy metrics;
 * evaluate_utility.c trains the detection classifier and the utility
 * models.  Every row set is in the column order of the real table.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_EVALUATE_H
#define SAMPLELLM_EVALUATE_H

#include "table.h"
#include "util.h"

/* at most this many rows are read from each table (seeded uniform sample) */
#define SL_EVAL_MAX_ROWS		100000
/* detection: at most this many rows per side after balancing */
#define SL_EVAL_DET_MAX_ROWS	10000
#define SL_EVAL_DET_FOLDS		5
/* one-hot width per categorical column in the detection/DCR encodings */
#define SL_EVAL_MAX_CATEGORIES	30
/* DCR: at most this many synthetic (and holdout) rows, and real rows */
#define SL_EVAL_DCR_MAX_QUERY	10000
#define SL_EVAL_DCR_MAX_REAL	50000
/* utility: runs averaged, and the log-loss floor (sklearn's eps) */
#define SL_EVAL_UTILITY_RUNS	5
#define SL_EVAL_LOGLOSS_FLOOR	1e-15

typedef struct SlEvalData
{
	const SlTable *t;			/* the real table; label_col set if a label */
	const SlRowSet *real;
	const SlRowSet *syn;
	const SlRowSet *hold;		/* NULL without a holdout */
	uint64		seed;
	int			max_epochs;		/* utility models */
	Oid			real_relid;
	Oid			syn_relid;
} SlEvalData;

/* The result rows, in output order. */
typedef struct SlEvalOut
{
	int			n;
	int			cap;
	char	  **metric;
	char	  **columns;		/* NULL for aggregates */
	double	   *score;
	bool	   *isnull;			/* score undefined (e.g. a constant column) */
} SlEvalOut;

/* evaluate_common.c */
extern void sl_eval_emit(SlEvalOut *out, const char *metric,
						 const char *columns, double score, bool isnull);
extern SlRowSet *sl_eval_subset(const SlRowSet *rs, const int *idx, int n);
extern int *sl_eval_sample_indices(int n, int take, uint64 seed);
/* the median of v[0..n) (numpy's: the middle two averaged); NaN if n = 0 */
extern double sl_eval_median(const double *v, int n);
extern double sl_eval_auc(const double *score, const bool *positive, int n);

/*
 * evaluate_dcr.c: out[i] = distance from row i of Q (nq x dim) to the
 * nearest row of R (nr x dim); loo: Q is R and row i skips itself
 */
extern void sl_eval_dcr_min(const double *Q, int nq, const double *R, int nr,
							int dim, bool loo, double *out);

/* evaluate_metrics.c */
extern void sl_eval_quality(const SlEvalData *d, SlEvalOut *out);
extern void sl_eval_privacy(const SlEvalData *d, SlEvalOut *out);

/* evaluate_keys.c: referential integrity, key uniqueness, child counts */
extern void sl_eval_keys(const SlEvalData *d, SlEvalOut *out);

/* evaluate_utility.c */
extern void sl_eval_detection(const SlEvalData *d, SlEvalOut *out);
extern void sl_eval_utility_check(const SlEvalData *d);
extern void sl_eval_utility(const SlEvalData *d, SlEvalOut *out);

#endif							/* SAMPLELLM_EVALUATE_H */
