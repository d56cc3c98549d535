/*-------------------------------------------------------------------------
 *
 * stage2.c
 *	  Stage 2 orchestration: fields, f_T, interactions, clusters, weights,
 *	  draw.
 *
 * Every random choice uses its own stream of the user's seed, so changing
 * e.g. the number of epochs does not change the Gumbel noise of the draw.
 * Intermediate arrays live in a scratch context that is deleted on return;
 * the result arrays are allocated in the caller's context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "stage2.h"
#include "utils/memutils.h"


#define VARIANT_LABEL		"label"
#define VARIANT_NO_LABEL	"label-free: mutual-information clusters, feature ratio only"
#define VARIANT_ONE_CLASS	"one-class label: mutual-information clusters, feature ratio only"
#define VARIANT_NO_LABELED_S "label: feature ratio only (no candidate has a known label)"
#define VARIANT_NO_FIELDS	"no fields: uniform weights"

void
sl_stage2_default_options(SlStage2Options *opt)
{
	memset(opt, 0, sizeof(SlStage2Options));
	opt->threshold = 0.5;
	opt->max_cluster_size = 4;
	opt->max_epochs = 100;
	opt->ih_max_rows = 10000;
	opt->ih_steps = 6;
	opt->embed_dim = 16;
	opt->nbins = 10;
	opt->seed = 0;
	opt->patience = 5;
	opt->batch_size = 4000;
	opt->max_categories = 1000;
	opt->use_double = false;
	opt->estimator = SL_ESTIMATOR_BACKOFF;
	opt->ess_target = 0;
	opt->fs_max_rows = 10000;
	opt->label_shrink = 0.1;
	opt->novelty = SL_NOVELTY_RATIO;
}

/* What steps 1-4 learn from T; shared by select and interactions. */
typedef struct Stage2Fit
{
	SlFieldSet *fs;
	int32	   *codesT;
	SlLabelEncoder *le;
	int		   *yT;
	SlModel    *mT;				/* NULL: no label model */
	double	   *M;
	int		   *cluster;
	int			nclusters;
	const char *variant;
	bool		labeled;		/* the paper's variant: f_T and IH */
} Stage2Fit;

static double
secs_since(instr_time start)
{
	instr_time	now;

	INSTR_TIME_SET_CURRENT(now);
	INSTR_TIME_SUBTRACT(now, start);
	return INSTR_TIME_GET_DOUBLE(now);
}

/* codes of at most max_rows rows of T, a seeded uniform subset */
static int32 *
ih_rows(const int32 *codes, int n, int F, int max_rows, uint64 seed, int *nout)
{
	int32	   *out;
	int		   *perm;
	pg_prng_state rng;
	int			take = Min(n, Max(max_rows, 1));

	*nout = take;
	if (take == n)
		return (int32 *) codes;
	perm = sl_identity(n);
	sl_stream_init(&rng, seed, SL_STREAM_STAGE2_IH_ROWS, 0);
	sl_shuffle_prefix(perm, n, take, &rng);
	out = palloc(sizeof(int32) * (size_t) take * F);
	for (int i = 0; i < take; i++)
		memcpy(out + (size_t) i * F, codes + (size_t) perm[i] * F, sizeof(int32) * F);
	pfree(perm);
	return out;
}

/*
 * A seeded uniform subset of at most max_rows labelled rows of S, for f_S.
 *
 * Deviation from the paper (the default estimator only): the reference code
 * trains f_S on every candidate, which made stage 2 on 300,000 candidates
 * take 17.5 s, nearly all of it f_S; P_S(y|x) needs a sample of S no larger
 * than T's, and the scores are then streamed over every candidate
 * (bench/bench_stage2.sh: 10.2 s for the paper's variant, 2.8 s for the
 * default; docs/stage2.md).
 */
static int
fs_sample(const int32 *codes, const int *y, int n, int F, int max_rows,
		  uint64 seed, int32 **codes_out, int **y_out)
{
	int		   *idx = palloc(sizeof(int) * Max(n, 1));
	int			m = 0;
	int			take;
	pg_prng_state rng;

	for (int i = 0; i < n; i++)
		if (y[i] >= 0)
			idx[m++] = i;
	take = Min(m, Max(max_rows, 1));
	sl_stream_init(&rng, seed, SL_STREAM_STAGE2_S_SAMPLE, 0);
	sl_shuffle_prefix(idx, m, take, &rng);
	*codes_out = palloc(sizeof(int32) * (size_t) Max(take, 1) * F);
	*y_out = palloc(sizeof(int) * Max(take, 1));
	for (int i = 0; i < take; i++)
	{
		memcpy(*codes_out + (size_t) i * F, codes + (size_t) idx[i] * F, sizeof(int32) * F);
		(*y_out)[i] = y[idx[i]];
	}
	pfree(idx);
	return take;
}

/* Steps 1-4 on T. */
static void
stage2_fit(const SlTable *t, const SlRowSet *seeds, const SlStage2Options *opt,
		   Stage2Fit *fit, SlStage2Result *res)
{
	int			nT = seeds->nrows;
	int			F;
	instr_time	start;

	/* step 1: fields and label */
	fit->fs = sl_fields_fit(t, seeds, opt->nbins, opt->max_categories);
	F = fit->fs->nfields;
	fit->codesT = sl_fields_encode(fit->fs, seeds);
	fit->le = sl_label_fit(t, seeds);
	fit->yT = sl_label_encode(fit->le, seeds);
	fit->mT = NULL;
	fit->labeled = false;
	fit->M = palloc0(sizeof(double) * Max(F * F, 1));
	fit->cluster = palloc0(sizeof(int) * Max(F, 1));

	/*
	 * Deviation from the paper: the paper has no degenerate cases.  With no
	 * field (the label is the only column) all weights are equal; with no
	 * label, or one class in T, no model is trained and the feature part
	 * alone weights the candidates (the variant says which ran).
	 */
	if (F == 0)
	{
		fit->variant = VARIANT_NO_FIELDS;
		fit->nclusters = 0;
		return;
	}
	fit->labeled = false;
	if (t->label_col < 0)
		fit->variant = VARIANT_NO_LABEL;
	else if (fit->le->nclasses < 2)
		fit->variant = VARIANT_ONE_CLASS;
	else
	{
		fit->variant = VARIANT_LABEL;
		fit->labeled = true;
	}

	if (fit->labeled)
	{
		SlTrainInfo info;
		int32	   *rows;
		int			nrows;

		/* step 2: f_T */
		fit->mT = sl_model_create(fit->fs, fit->le->nclasses, Max(opt->embed_dim, 1),
								  NULL, opt->use_double,
								  sl_stream_seed(opt->seed, SL_STREAM_STAGE2_INIT_T, 0));
		sl_model_train(fit->mT, fit->codesT, fit->yT, nT, opt,
					   sl_stream_seed(opt->seed, SL_STREAM_STAGE2_TRAIN_T, 0), &info);
		res->epochs_T = info.epochs;
		res->train_loss = info.best_loss;
		res->secs_train_T = info.secs;

		/*
		 * step 3: Integrated Hessians over at most ih_max_rows rows of T.
		 * Deviation from the paper: the default estimator caps them at
		 * SL_BACKOFF_IH_ROWS; M is a mean over rows and only its order
		 * matters for the clusters, which a 2,000-row mean already fixes
		 * (bench/bench_stage2.sh prints both), at a fifth of the time.
		 */
		INSTR_TIME_SET_CURRENT(start);
		rows = ih_rows(fit->codesT, nT, F,
					   opt->estimator == SL_ESTIMATOR_PAPER ? opt->ih_max_rows :
					   Min(opt->ih_max_rows, SL_BACKOFF_IH_ROWS),
					   opt->seed, &nrows);
		sl_attribution_ih(fit->mT, rows, nrows, opt->ih_steps, fit->M);
		res->secs_ih = secs_since(start);
	}
	else
	{
		/*
		 * Without two label classes there is no loss to attribute; the
		 * label-free variant links fields by mutual information on T.
		 */
		INSTR_TIME_SET_CURRENT(start);
		sl_attribution_mi(fit->fs, fit->codesT, nT, fit->M);
		res->secs_ih = secs_since(start);
	}

	/* step 4: clusters */
	fit->nclusters = sl_clusters_find(fit->M, F, opt->threshold,
									  opt->max_cluster_size, fit->cluster);
}

/* Copy the structure part of fit into res, in context cxt. */
static void
stage2_fill_structure(const Stage2Fit *fit, SlStage2Result *res,
					  MemoryContext cxt)
{
	int			F = fit->fs->nfields;

	res->variant = fit->variant;
	res->nfields = F;
	res->nclusters = fit->nclusters;
	res->interactions = MemoryContextAlloc(cxt, sizeof(double) * Max(F * F, 1));
	memcpy(res->interactions, fit->M, sizeof(double) * F * F);
	res->field_cluster = MemoryContextAlloc(cxt, sizeof(int) * Max(F, 1));
	memcpy(res->field_cluster, fit->cluster, sizeof(int) * F);
	res->field_col = MemoryContextAlloc(cxt, sizeof(int) * Max(F, 1));
	for (int f = 0; f < F; f++)
		res->field_col[f] = fit->fs->fields[f].col;
}

/*
 * Steps 1-4 in a scratch context (made current; the caller deletes it),
 * with res zeroed first.
 */
static MemoryContext
stage2_begin(const SlTable *t, const SlRowSet *seeds, const SlStage2Options *opt,
			 Stage2Fit *fit, SlStage2Result *res)
{
	MemoryContext scratch = AllocSetContextCreate(CurrentMemoryContext, "samplellm stage 2",
												  ALLOCSET_DEFAULT_SIZES);

	memset(res, 0, sizeof(SlStage2Result));
	MemoryContextSwitchTo(scratch);
	stage2_fit(t, seeds, opt, fit, res);
	return scratch;
}

void
sl_stage2_interactions(const SlTable *t, const SlRowSet *seeds,
					   const SlStage2Options *opt, SlStage2Result *res)
{
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext scratch;
	Stage2Fit	fit;
	instr_time	start;

	INSTR_TIME_SET_CURRENT(start);
	scratch = stage2_begin(t, seeds, opt, &fit, res);
	stage2_fill_structure(&fit, res, outer);
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(scratch);
	res->secs_total = secs_since(start);
}

void
sl_stage2_weights(const SlTable *t, const SlRowSet *seeds,
				  const SlRowSet *cands, const SlStage2Options *opt,
				  SlStage2Result *res)
{
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext scratch;
	Stage2Fit	fit;
	int			nS = cands->nrows;
	int32	   *codesS;
	double	   *logw;
	instr_time	start;
	bool		paper = opt->estimator == SL_ESTIMATOR_PAPER;
	double	   *base = NULL;	/* the default's class shares, untempered */
	int		   *yS = NULL;		/* the candidates' classes, if a label model */
	double	   *rT = NULL;		/* the default's class shares from T's counts */

	INSTR_TIME_SET_CURRENT(start);
	scratch = stage2_begin(t, seeds, opt, &fit, res);

	/* step 5: feature part */
	codesS = sl_fields_encode(fit.fs, cands);
	logw = palloc0(sizeof(double) * Max(nS, 1));
	if (paper)
		sl_weights_feature_part(fit.fs, fit.codesT, seeds->nrows, codesS, nS,
								fit.cluster, fit.nclusters, logw);
	else
		sl_backoff_feature_part(fit.fs, fit.M, fit.codesT, seeds->nrows, codesS, nS,
								fit.cluster, fit.nclusters, logw);

	/* step 6: label part, f_S trained on the candidates */
	if (fit.mT != NULL && nS > 0)
	{
		int			nlabeled = 0;

		yS = sl_label_encode(fit.le, cands);

		for (int i = 0; i < nS; i++)
			if (yS[i] >= 0)
				nlabeled++;
		if (nlabeled == 0)
			fit.variant = VARIANT_NO_LABELED_S;
		else
		{
			SlModel    *mS;
			SlTrainInfo info;
			double	   *lpT = palloc(sizeof(double) * nS);
			double	   *lpS = palloc(sizeof(double) * nS);

			mS = sl_model_create(fit.fs, fit.le->nclasses, fit.mT->embed_dim,
								 NULL, opt->use_double,
								 sl_stream_seed(opt->seed, SL_STREAM_STAGE2_INIT_S, 0));
			if (paper)
				sl_model_train(mS, codesS, yS, nS, opt,
							   sl_stream_seed(opt->seed, SL_STREAM_STAGE2_TRAIN_S, 0), &info);
			else
			{
				int32	   *cs;
				int		   *ys;
				int			m = fs_sample(codesS, yS, nS, fit.fs->nfields,
										  opt->fs_max_rows, opt->seed, &cs, &ys);

				sl_model_train(mS, cs, ys, m, opt,
							   sl_stream_seed(opt->seed, SL_STREAM_STAGE2_TRAIN_S, 0), &info);
				pfree(cs);
				pfree(ys);
			}
			res->epochs_S = info.epochs;
			res->secs_train_S = info.secs;
			sl_model_log_prob(fit.mT, codesS, yS, nS, lpT);
			sl_model_log_prob(mS, codesS, yS, nS, lpS);
			if (paper)
				sl_weights_label_part(lpT, lpS, yS, nS, logw);
			else
			{
				int			K = fit.le->nclasses;
				double	   *rS = palloc(sizeof(double) * K);

				rT = palloc(sizeof(double) * K);

				sl_backoff_label_rates(fit.yT, seeds->nrows, K, rT);
				sl_backoff_label_rates(yS, nS, K, rS);
				base = palloc0(sizeof(double) * nS);
				sl_backoff_label_part(lpT, lpS, yS, nS, rT, rS, K, opt->label_shrink,
									  0.5 / (seeds->nrows + 0.5 * K), base, logw);
			}
		}
	}

	/* step 7: temper (the default estimator) and normalize */
	res->temper = paper ? 1.0 :
		sl_backoff_temper(base, logw, nS, opt->ess_target, rT ? yS : NULL,
						  rT ? fit.le->nclasses : 0, rT);

	/*
	 * step 7b (the default estimator): the novelty guard, on the final
	 * weights, within the label classes the label part set
	 */
	if (!paper)
	{
		instr_time	nstart;

		INSTR_TIME_SET_CURRENT(nstart);
		sl_novelty_guard(t, seeds, cands, yS, opt->draw_n, opt->novelty, SL_NOVELTY_CAP,
						 opt->seed, logw, &res->novelty);
		res->secs_novelty = secs_since(nstart);
	}
	res->ess = sl_weights_normalize(logw, nS, &res->n_carry);

	stage2_fill_structure(&fit, res, outer);
	{
		/* the run record names the estimator that ran */
		char	   *v = psprintf("%s: %s", paper ? "paper" : "smoothed", fit.variant);
		char	   *copy = MemoryContextAlloc(outer, strlen(v) + 1);

		strcpy(copy, v);
		res->variant = copy;
	}
	res->ncands = nS;
	res->log_weights = MemoryContextAlloc(outer, sizeof(double) * Max(nS, 1));
	memcpy(res->log_weights, logw, sizeof(double) * nS);
	/* the default's draw takes each class's share exactly: its key */
	res->label_class = NULL;
	if (!paper && rT != NULL)
	{
		res->label_class = MemoryContextAlloc(outer, sizeof(int) * Max(nS, 1));
		memcpy(res->label_class, yS, sizeof(int) * nS);
	}
	MemoryContextSwitchTo(outer);
	MemoryContextDelete(scratch);
	res->secs_total = secs_since(start);
}

void
sl_stage2_select(const SlTable *t, const SlRowSet *seeds,
				 const SlRowSet *cands, int n, const SlStage2Options *opt,
				 SlStage2Result *res)
{
	int			quota = n;
	SlStage2Options o = *opt;

	o.draw_n = n;
	sl_stage2_weights(t, seeds, cands, &o, res);
	/* step 8: draw */
	res->chosen = palloc(sizeof(int) * Max(Min(n, cands->nrows), 1));
	res->nchosen = sl_draw_groups(opt->estimator == SL_ESTIMATOR_PAPER ? SL_DRAW_WEIGHTED : SL_DRAW_PPS,
								  res->log_weights, NULL, cands->nrows,
								  &quota, 1, opt->seed, res->chosen, res->label_class);
}

void
sl_stage2_uniform(int ncands, int n, uint64 seed, SlStage2Result *res)
{
	int			quota = n;

	memset(res, 0, sizeof(SlStage2Result));
	res->variant = "uniform";
	res->ncands = ncands;
	res->chosen = palloc(sizeof(int) * Max(Min(n, ncands), 1));
	res->nchosen = sl_draw_groups(SL_DRAW_UNIFORM, NULL, NULL, ncands, &quota, 1, seed,
								  res->chosen, NULL);
	res->ess = ncands;
	res->n_carry = ncands;
}
