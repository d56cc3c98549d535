/*-------------------------------------------------------------------------
 *
 * stage2.h
 *	  Stage 2: feature-attribution-based importance sampling.
 *
 * T = real seed rows, S = stage-1 candidates.  Fields are discretized
 * (stage2_fields.c), a DNN f_T is trained on T (stage2_model.c), pairwise
 * interactions come from Integrated Hessians (stage2_attribution.c), fields
 * are grouped by thresholding them (stage2_clusters.c), candidates get
 * log-weights from cluster tuple frequencies and the label model
 * (stage2_weights.c), and n rows are drawn by Gumbel-top-k (stage2_draw.c).
 * stage2.c runs the steps in order.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_STAGE2_H
#define SAMPLELLM_STAGE2_H

#include "table.h"
#include "util.h"

/*
 * How p_T / p_S is estimated.  PAPER is the reference code exactly (exact
 * tuple frequencies, 1e-20 for a tuple T lacks, f_S on every candidate);
 * BACKOFF is the default (stage2_backoff.c): smoothed frequencies that back
 * off to single fields, label probabilities shrunk toward the label rates,
 * f_S on a sample of S, weights tempered to an effective-sample-size target.
 */
typedef enum SlStage2Estimator
{
	SL_ESTIMATOR_BACKOFF,
	SL_ESTIMATOR_PAPER
} SlStage2Estimator;

/* the default estimator's cap on the rows Integrated Hessians average over */
#define SL_BACKOFF_IH_ROWS 2000

/* the novelty guard's default ratio and its cap on the close share */
#define SL_NOVELTY_RATIO 0.95
#define SL_NOVELTY_CAP 0.45
#define SL_NOVELTY_ENGAGE 0.5		/* engaged above this close share */

/* What the novelty guard measured and did (the run record's stage2). */
typedef struct SlNoveltyInfo
{
	double		ratio;			/* the setting; 0: off */
	double		tau;			/* ratio x median leave-one-out seed
								 * distance; 0: not measured */
	double		close_before;	/* weight share of candidates closer than
								 * tau (the probe's estimate if !full) */
	double		close_after;
	double		beta;			/* smallest factor a class's close weights
								 * got (1: none) */
	double		drawn_close;	/* the draw's n known and every d measured:
								 * the expected close share of the drawn rows
								 * (after the guard if engaged); else -1 */
	int			nseeds;			/* seeds d and d_LOO were measured against */
	bool		full;			/* every candidate's distance computed */
} SlNoveltyInfo;

/* the run's ESS target, as a multiple of the rows drawn */
#define SL_ESS_TARGET_FRACTION 2.0

typedef struct SlStage2Options
{
	double		threshold;		/* tau on M / max off-diagonal, default 0.5 */
	int			max_cluster_size;	/* default 4 */
	int			max_epochs;		/* default 100 */
	int			ih_max_rows;	/* default 10000 */
	int			ih_steps;		/* default 6 (6 x 6 = 36 samples) */
	int			embed_dim;		/* default 16 */
	int			nbins;			/* quantile bins for continuous, default 10 */
	uint64		seed;
	/* additions beyond the list */
	int			patience;		/* early-stopping patience in epochs, default 5 */
	int			batch_size;		/* default 4000 */
	int			max_categories; /* per categorical field, default 1000 */
	bool		use_double;		/* train in float64 (tests); default false */
	int			validation_rows;	/* >0: hold out only rows below this
									 * index (samplellm_evaluate's real
									 * rows, not their synthetic copies) */
	SlStage2Estimator estimator;	/* default BACKOFF */
	double		ess_target;		/* BACKOFF: temper to ESS >= this; 0: none */
	int			fs_max_rows;	/* BACKOFF: f_S trains on at most this many
								 * candidates (default 10000) */
	double		label_shrink;	/* BACKOFF: weight of the label rate in
								 * P(y|x), default 0.1 */
	double		novelty;		/* BACKOFF: the novelty guard's ratio
								 * (stage2_novelty.c), default
								 * SL_NOVELTY_RATIO; 0: off */
	int			draw_n;			/* BACKOFF: the rows the draw will take (0:
								 * unknown), for the novelty guard */
} SlStage2Options;

typedef struct SlStage2Result
{
	int			nchosen;
	int		   *chosen;			/* candidate row numbers, in draw order */
	const char *variant;		/* "label" or the label-free variant's name */
	int			nfields;
	double	   *interactions;	/* nfields x nfields, row-major, zero diagonal */
	int		   *field_cluster;	/* per field; field f is column
								 * field_col[f] */
	int			nclusters;
	double		ess;			/* (sum w)^2 / sum w^2 */
	int			n_carry;		/* candidates carrying 99% of the weight */
	double		train_loss;		/* f_T held-out loss, for the summary */
	/* additions beyond the list */
	int		   *field_col;		/* per field: index into t->cols (label
								 * column excluded) */
	int			epochs_T;		/* epochs f_T ran (0 = no model) */
	int			epochs_S;		/* epochs f_S ran (0 = no model) */
	double		secs_train_T;	/* wall-clock seconds, for the summary */
	double		secs_ih;
	double		secs_train_S;
	double		secs_novelty;	/* the novelty guard (BACKOFF) */
	double		secs_total;
	double		temper;			/* BACKOFF: the exponent the weights got (1:
								 * untempered) */
	SlNoveltyInfo novelty;		/* BACKOFF: the novelty guard */
	double	   *log_weights;	/* per candidate, normalized (sum exp = 1);
								 * NULL for sl_stage2_interactions */
	int		   *label_class;	/* per candidate, the default's label class
								 * (-1 unknown), or NULL: the draw's key */
	int			ncands;
} SlStage2Result;

extern void sl_stage2_default_options(SlStage2Options *opt);

/*
 * Importance log-weights of cands (res->log_weights, normalized) learned
 * from seeds, with the run's figures; no draw.
 */
extern void sl_stage2_weights(const SlTable *t, const SlRowSet *seeds,
							  const SlRowSet *cands, const SlStage2Options *opt,
							  SlStage2Result *res);

/* The weights, then n rows drawn by them (one group): tests, benchmarks. */
extern void sl_stage2_select(const SlTable *t, const SlRowSet *seeds,
							 const SlRowSet *cands, int n,
							 const SlStage2Options *opt, SlStage2Result *res);

/* Only the interaction matrix and field clusters of seeds (no candidates). */
extern void sl_stage2_interactions(const SlTable *t, const SlRowSet *seeds,
								   const SlStage2Options *opt,
								   SlStage2Result *res);

/* The 'uniform' ablation: n distinct candidates in a seeded random order. */
extern void sl_stage2_uniform(int ncands, int n, uint64 seed,
							  SlStage2Result *res);

/* ---- step 1: fields (stage2_fields.c) ---- */

/*
 * A field is one non-label column, discretized into codes 0..ncodes-1:
 * continuous columns get ncore quantile bins learned on T, categorical
 * columns get T's ncore most frequent values; then the special codes below.
 */
typedef struct SlField
{
	int			col;			/* index into t->cols */
	bool		continuous;
	int			ncore;			/* bins or categories */
	int			ncodes;			/* ncore + specials */
	int			nedges;			/* continuous: ncore - 1 ascending cuts */
	double	   *edges;
	char	  **cats;			/* categorical: ncore values, strcmp order */
} SlField;

#define SL_CODE_NULL(f)		((f)->ncore)
#define SL_CODE_OTHER(f)	((f)->ncore + 1)
#define SL_CODE_NAN(f)		((f)->ncore + 2)	/* continuous only */
#define SL_CODE_NEGINF(f)	((f)->ncore + 3)
#define SL_CODE_POSINF(f)	((f)->ncore + 4)

typedef struct SlFieldSet
{
	int			nfields;
	SlField    *fields;
	int		   *code_off;		/* nfields + 1: offsets into one table */
	int			ncodes;			/* total over fields */
} SlFieldSet;

extern SlFieldSet *sl_fields_fit(const SlTable *t, const SlRowSet *ref,
								 int nbins, int max_categories);
/* nrows x nfields field-local codes, row-major */
extern int32 *sl_fields_encode(const SlFieldSet *fs, const SlRowSet *rs);

/* Label encoder: bool, integer 0/1, or a small-cardinality text/enum. */
#define SL_MAX_LABEL_CLASSES 64

typedef struct SlLabelEncoder
{
	int			col;			/* index into t->cols */
	int			nclasses;		/* distinct non-NULL labels seen in T */
	char	  **classes;		/* strcmp order */
} SlLabelEncoder;

extern SlLabelEncoder *sl_label_fit(const SlTable *t, const SlRowSet *ref);
/* per row class index, -1 for NULL or a label never seen in T */
extern int *sl_label_encode(const SlLabelEncoder *le, const SlRowSet *rs);

/* ---- step 2: the DNN (stage2_model.c) ---- */

#define SL_MODEL_NLAYERS 4		/* three hidden layers + output */

typedef struct SlModel
{
	int			nfields;
	int			embed_dim;
	int			din;			/* nfields * embed_dim */
	int			nclasses;		/* >= 2 */
	int			nout;			/* 1 for two classes (sigmoid), else nclasses */
	int			ncodes;
	int		   *code_off;		/* nfields + 1 */
	int			width[SL_MODEL_NLAYERS + 1];	/* din, h1, h2, h3, nout */
	double		dropout;
	bool		dbl;			/* parameters are double, else float */
	int64		nparams;
	void	   *params;			/* embeddings, then W1 b1 ... W4 b4 */
	int64		off_w[SL_MODEL_NLAYERS];	/* W: in x out, row-major */
	int64		off_b[SL_MODEL_NLAYERS];
} SlModel;

typedef struct SlTrainInfo
{
	int			epochs;			/* epochs run */
	int			best_epoch;		/* 1-based epoch whose weights were kept */
	double		best_loss;		/* held-out loss (train loss if no holdout) */
	double		secs;			/* wall-clock seconds */
} SlTrainInfo;

/* hidden == NULL: 128, 64, 32 */
extern SlModel *sl_model_create(const SlFieldSet *fs, int nclasses,
								int embed_dim, const int *hidden, bool dbl,
								uint64 seed);
extern SlModel *sl_model_copy(const SlModel *m, bool dbl);
extern int	sl_model_scaled_batch(int nrows);
extern void sl_model_train(SlModel *m, const int32 *codes, const int *y,
						   int n, const SlStage2Options *opt, uint64 seed,
						   SlTrainInfo *info);
/* out[i] = log P(y_i | x_i) (eval mode) */
extern void sl_model_log_prob(const SlModel *m, const int32 *codes,
							  const int *y, int n, double *out);
/* Mean loss of rows; train mode (dropout from dropout_seed) if train. */
extern double sl_model_loss_grad(const SlModel *m, const int32 *codes,
								 const int *y, int n, bool train,
								 uint64 dropout_seed, double *grad);
/* Parameter access as double, for tests and dumps. */
extern double sl_model_get_param(const SlModel *m, int64 i);
extern void sl_model_set_param(SlModel *m, int64 i, double v);
/* x (din) = concatenated field embeddings of one row of codes */
extern void sl_model_embed(const SlModel *m, const int32 *codes, double *x);
/*
 * Eval-mode pass over B dense inputs X (B x din): logits (B x nout) and, if
 * jac != NULL, d logit_k / d X into jac + k * B * din for each output k.
 * work: from sl_model_work_create with cap >= B, or NULL (allocated per call).
 */
extern void sl_model_logit_jacobian(const SlModel *m, void *work, int B,
									const double *X, double *logits,
									double *jac);
extern void *sl_model_work_create(const SlModel *m, int cap);
extern void sl_model_work_free(const SlModel *m, void *work);

/* ---- step 3: Integrated Hessians (stage2_attribution.c) ---- */

/* the interpolation constants of the steps x steps expectation */
extern void sl_ih_alphas(int steps, double *alpha);
/* F x F interaction matrix of the loss over n rows of codes */
extern void sl_attribution_ih(const SlModel *m, const int32 *codes, int n,
							  int steps, double *M);
/* label-free: bias-corrected pairwise mutual information of the codes */
extern void sl_attribution_mi(const SlFieldSet *fs, const int32 *codes,
							  int n, double *M);

/* ---- step 4: clusters (stage2_clusters.c) ---- */

/* cluster[f] in 0..nclusters-1, numbered by their smallest field */
extern int	sl_clusters_find(const double *M, int F, double threshold,
							 int max_size, int *cluster);

/* ---- steps 5-7: weights (stage2_weights.c) ---- */

/* logw[i] += sum over clusters of log p_T(x_C) - log p_S(x_C) */
extern void sl_weights_feature_part(const SlFieldSet *fs,
									const int32 *codesT, int nT,
									const int32 *codesS, int nS,
									const int *cluster, int nclusters,
									double *logw);
/* logw[i] += log P_T(y_i|x_i) - log P_S(y_i|x_i); log SL_NONE_PROB if y < 0 */
extern void sl_weights_label_part(const double *logpT, const double *logpS,
								  const int *y, int nS, double *logw);
/* log-sum-exp normalize in place; returns ESS, sets *n_carry */
extern double sl_weights_normalize(double *logw, int n, int *n_carry);

#define SL_NONE_PROB 1e-20		/* p_T of a tuple never seen in T (code) */

/* shared by the estimators: cluster tuple keys and counts */
extern void sl_tuple_keys(const SlFieldSet *fs, const int32 *codes, int n,
						  const int *fl, int nf, bool exact, uint64 *keys);
extern int	sl_count_key(const uint64 *sorted, int n, uint64 key);
/* the fields of cluster c into fl; returns how many; *ntuples their codes' product */
extern int	sl_cluster_fields(const SlFieldSet *fs, const int *cluster, int c,
							  int *fl, double *ntuples);

/* ---- the default estimator (stage2_backoff.c) ---- */

/*
 * logw[i] += sum over clusters of log p^_T(x_C) - log p^_S(x_C), each a
 * Witten-Bell smoothed tuple frequency backing off to a tree of smoothed
 * pair frequencies (the cluster's maximum spanning tree of M; M NULL: the
 * fields' order), then to single fields.
 */
extern void sl_backoff_feature_part(const SlFieldSet *fs, const double *M,
									const int32 *codesT, int nT,
									const int32 *codesS, int nS,
									const int *cluster, int nclusters,
									double *logw);
/* smoothed class rates (nclasses) of labels y (-1 ignored) */
extern void sl_backoff_label_rates(const int *y, int n, int nclasses,
								   double *rate);
/*
 * base[i] += log rateT(y_i) - log rateS(y_i) and logw[i] += d_i - mean of d
 * over the candidates of class y_i, where d_i = log P~_T(y_i|x_i) - log
 * P~_S(y_i|x_i) and P~ = (1 - shrink) P + shrink * rate(y): the label rates
 * set each class's share (counts, robust on few seeds), the models only move
 * weight within a class.  A label T lacks gets base log floorT.
 */
extern void sl_backoff_label_part(const double *logpT, const double *logpS,
								  const int *y, int nS, const double *rateT,
								  const double *rateS, int nclasses,
								  double shrink, double floorT, double *base,
								  double *logw);
/*
 * logw[i] = base[i] + lambda logw[i] with the largest lambda in [0, 1]
 * whose normalized weights have an effective sample size >= target (base
 * NULL: 0; the class shares in base are never tempered); with y (else
 * NULL), each class's total weight is then set to rateT's share of the
 * labelled total, and the ESS is that of the weights after it.  Returns
 * lambda.
 */
extern double sl_backoff_temper(const double *base, double *logw, int n,
								double target, const int *y, int nclasses,
								const double *rateT);

/*
 * The novelty guard (stage2_novelty.c), on the final unnormalized logw of
 * cands: with tau = ratio x the seeds' median distance to their nearest
 * other seed, if candidates closer than tau to a seed carry more than
 * SL_NOVELTY_ENGAGE of the weight (or, n > 0, of n rows drawn by
 * sl_draw_pps), their weights are scaled down within each label class y
 * (-1: unknown; y NULL: one class): n = 0, to a weight share of cap, each
 * class keeping its total; n > 0, to an expected share of cap among each
 * class's quota of the draw (its weight share of n), each class scaled so
 * that the draw gives it its quota.
 */
extern void sl_novelty_guard(const SlTable *t, const SlRowSet *seeds,
							 const SlRowSet *cands, const int *y, int n,
							 double ratio, double cap, uint64 seed,
							 double *logw, SlNoveltyInfo *info);

/* ---- step 8: draw (stage2_draw.c) ---- */

/* up to n distinct indices by Gumbel-top-k on logw; returns the count */
extern int	sl_draw_gumbel_topk(const double *logw, int ncands, int n,
								uint64 seed, int *chosen);
/*
 * n distinct indices, candidate i included with probability min(1, c w_i)
 * (c such that they sum to n), by systematic sampling in a seeded random
 * order, grouped by key (the label class, -1 unknown) when key is not NULL,
 * so each key's count is its inclusion probabilities' sum to within one;
 * returns the count
 */
extern int	sl_draw_pps(const double *logw, int ncands, int n, uint64 seed,
						int *chosen, const int *key);
/* the c of sl_draw_pps: sum over w[0..n) of min(1, c w_i) = take */
extern double sl_draw_pps_scale(const double *w, int n, double take);
/* up to n distinct indices uniformly, in a seeded order */
extern int	sl_draw_uniform(int ncands, int n, uint64 seed, int *chosen);

typedef enum SlDrawMethod
{
	SL_DRAW_WEIGHTED,			/* Gumbel-top-k on the log-weights (paper) */
	SL_DRAW_PPS,				/* inclusion probability proportional to w */
	SL_DRAW_UNIFORM,			/* the paper's ablation */
	SL_DRAW_FIRST				/* the first candidates, in pool order */
} SlDrawMethod;

/*
 * Each group draws quota[g] of the candidates whose group_of is g (all of
 * them when group_of is NULL and ngroups is 1), group after group, into
 * chosen; group g's draw uses stream SL_STREAM_DRAW of index g.  Returns
 * how many were drawn.  The plain draw is one group.  key: as sl_draw_pps
 * (SL_DRAW_PPS only; NULL: none).
 */
extern int	sl_draw_groups(SlDrawMethod method, const double *logw,
						   const int *group_of, int ncands, const int *quota,
						   int ngroups, uint64 seed, int *chosen,
						   const int *key);

#endif							/* SAMPLELLM_STAGE2_H */
