/*-------------------------------------------------------------------------
 *
 * stage2_model.c
 *	  Stage 2, step 2: the DNN (field embeddings + ReLU MLP), trained by Adam.
 *
 * Architecture (reference code): one embedding of embed_dim per field,
 * concatenated, then Linear-ReLU-Dropout(0.2) x 3 (128, 64, 32) and a final
 * Linear to one logit (sigmoid + BCE, two classes) or K logits (softmax +
 * cross-entropy).  Adam with lr 1e-3 and weight decay 1e-6 added to the
 * gradient (PyTorch Adam's L2 form), batches of 4,000 rows.
 *
 * Every layer is one gemm per batch.  Production runs in float32, like
 * PyTorch: half the memory traffic and twice the gemm throughput of double,
 * and the weights only rank tuples, they need no more digits.  The same code
 * is compiled a second time in float64 (tests: gradient checks by finite
 * differences need double): stage2_model_template.h holds that code and is
 * included once per precision, as core instantiates lib/sort_template.h.
 *
 *-------------------------------------------------------------------------
 */

#include "postgres.h"

#include <math.h>
#include <cblas.h>

#include "miscadmin.h"
#include "portability/instr_time.h"
#include "stage2.h"

#define SL_LR		1e-3
#define SL_BETA1	0.9
#define SL_BETA2	0.999
#define SL_ADAM_EPS 1e-8
#define SL_WEIGHT_DECAY 1e-6
#define SL_DROPOUT	0.2

static const int sl_default_hidden[3] = {128, 64, 32};

#define SL_CAT2(a, b) a##_##b
#define SL_CAT(a, b) SL_CAT2(a, b)
#define FN(name) SL_CAT(name, SL_SFX)

/*
 * The forward and backward passes' per-row loops also get an AVX2 clone,
 * chosen at load time on CPUs that have it (gcc's ifunc dispatch; x86-64
 * Linux only, the baseline SSE2 code elsewhere).  Element-wise loops only,
 * no FMA: both clones give the same bits.  10,000 seeds x 300,000
 * candidates: stage 2 2.3-3.2 s -> 2.1-2.5 s (test/unit/bench_stage2, four
 * runs each).
 */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define SL_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SL_SIMD_CLONES
#endif

/* numerically stable log(1 + exp(z)) */
static inline double
softplus(double z)
{
	return (z > 0 ? z : 0) + log1p(exp(-fabs(z)));
}

static double
normal_draw(pg_prng_state *rng)
{
	/* Box-Muller; 1 - u keeps the log argument in (0, 1] */
	double		u1 = 1.0 - pg_prng_double(rng);
	double		u2 = pg_prng_double(rng);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/*
 * Loss of one row from its logits z (nout of them) and class y; with dz !=
 * NULL also dL/dz scaled by `scale` (1/B for a batch mean).
 */
static double
row_loss(const double *z, int nout, int y, double scale, double *dz)
{
	if (nout == 1)
	{
		double		p = 1.0 / (1.0 + exp(-z[0]));

		if (dz)
			dz[0] = (p - (double) y) * scale;
		return softplus(z[0]) - (double) y * z[0];
	}
	else
	{
		double		mx = z[0];
		double		s = 0;
		double		lse;

		for (int k = 1; k < nout; k++)
			mx = Max(mx, z[k]);
		for (int k = 0; k < nout; k++)
			s += exp(z[k] - mx);
		lse = mx + log(s);
		if (dz)
			for (int k = 0; k < nout; k++)
				dz[k] = (exp(z[k] - lse) - (k == y ? 1.0 : 0.0)) * scale;
		return lse - z[y];
	}
}

/* ---- float32 instance ---- */
#define real float
#define SL_SFX f
#define SL_GEMM cblas_sgemm
#include "stage2_model_template.h"
#undef real
#undef SL_SFX
#undef SL_GEMM

/* ---- float64 instance ---- */
#define real double
#define SL_SFX d
#define SL_GEMM cblas_dgemm
#include "stage2_model_template.h"
#undef real
#undef SL_SFX
#undef SL_GEMM

/* ---- precision-independent entry points ---- */

SlModel *
sl_model_create(const SlFieldSet *fs, int nclasses, int embed_dim,
				const int *hidden, bool dbl, uint64 seed)
{
	SlModel    *m = palloc0(sizeof(SlModel));
	pg_prng_state rng;
	int64		off;
	int64		i;

	Assert(fs->nfields >= 1 && nclasses >= 2 && embed_dim >= 1);
	if (hidden == NULL)
		hidden = sl_default_hidden;
	m->nfields = fs->nfields;
	m->embed_dim = embed_dim;
	m->din = fs->nfields * embed_dim;
	m->nclasses = nclasses;
	m->nout = (nclasses == 2) ? 1 : nclasses;
	m->ncodes = fs->ncodes;
	m->code_off = palloc(sizeof(int) * (fs->nfields + 1));
	memcpy(m->code_off, fs->code_off, sizeof(int) * (fs->nfields + 1));
	m->width[0] = m->din;
	for (int l = 0; l < 3; l++)
		m->width[l + 1] = Max(hidden[l], 1);
	m->width[4] = m->nout;
	m->dropout = SL_DROPOUT;
	m->dbl = dbl;

	off = (int64) m->ncodes * embed_dim;
	for (int l = 0; l < SL_MODEL_NLAYERS; l++)
	{
		m->off_w[l] = off;
		off += (int64) m->width[l] * m->width[l + 1];
		m->off_b[l] = off;
		off += m->width[l + 1];
	}
	m->nparams = off;
	m->params = palloc_extended((dbl ? sizeof(double) : sizeof(float)) * m->nparams,
								MCXT_ALLOC_HUGE);

	/*
	 * PyTorch's defaults: embeddings N(0, 1); Linear weights and biases
	 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)).  Drawn in double so that the float
	 * and double instances of one seed hold the same (rounded) weights.
	 */
	pg_prng_seed(&rng, seed);
	for (i = 0; i < m->off_w[0]; i++)
		sl_model_set_param(m, i, normal_draw(&rng));
	for (int l = 0; l < SL_MODEL_NLAYERS; l++)
	{
		double		bound = 1.0 / sqrt((double) m->width[l]);
		int64		end = m->off_b[l] + m->width[l + 1];

		for (i = m->off_w[l]; i < end; i++)
			sl_model_set_param(m, i, (2.0 * pg_prng_double(&rng) - 1.0) * bound);
	}
	return m;
}

SlModel *
sl_model_copy(const SlModel *m, bool dbl)
{
	SlModel    *c = palloc(sizeof(SlModel));

	*c = *m;
	c->dbl = dbl;
	c->code_off = palloc(sizeof(int) * (m->nfields + 1));
	memcpy(c->code_off, m->code_off, sizeof(int) * (m->nfields + 1));
	c->params = palloc_extended((dbl ? sizeof(double) : sizeof(float)) * m->nparams,
								MCXT_ALLOC_HUGE);
	for (int64 i = 0; i < m->nparams; i++)
		sl_model_set_param(c, i, sl_model_get_param(m, i));
	return c;
}

double
sl_model_get_param(const SlModel *m, int64 i)
{
	return m->dbl ? ((double *) m->params)[i] : (double) ((float *) m->params)[i];
}

void
sl_model_set_param(SlModel *m, int64 i, double v)
{
	if (m->dbl)
		((double *) m->params)[i] = v;
	else
		((float *) m->params)[i] = (float) v;
}

void
sl_model_embed(const SlModel *m, const int32 *codes, double *x)
{
	int			E = m->embed_dim;

	for (int f = 0; f < m->nfields; f++)
	{
		int64		base = (int64) (m->code_off[f] + codes[f]) * E;

		for (int e = 0; e < E; e++)
			x[f * E + e] = sl_model_get_param(m, base + e);
	}
}

/*
 * A batch size that gives about twenty Adam steps per epoch (32..4,000
 * rows).  The paper's fixed 4,000 gives one step per epoch below 4,000
 * rows, and early stopping then ends training before the model has learnt.
 */
int
sl_model_scaled_batch(int nrows)
{
	return Min(4000, Max(32, (nrows + 19) / 20));
}

/*
 * Train on the rows whose label is known (y >= 0).
 *
 * Deviation from the paper: the reference code trains a fixed number of
 * epochs; we stop early when the loss on a held-out tenth has not improved
 * for `patience` epochs and keep the weights of the best held-out epoch (no
 * held-out part below 10 rows: then all max_epochs run on every row).
 */
void
sl_model_train(SlModel *m, const int32 *codes, const int *y, int n,
			   const SlStage2Options *opt, uint64 seed, SlTrainInfo *info)
{
	int		   *idx = palloc(sizeof(int) * Max(n, 1));
	int			nl = 0;
	instr_time	start,
				end;

	for (int i = 0; i < n; i++)
		if (y[i] >= 0 && y[i] < m->nclasses)
			idx[nl++] = i;
	memset(info, 0, sizeof(SlTrainInfo));
	INSTR_TIME_SET_CURRENT(start);
	if (nl > 0)
	{
		if (m->dbl)
			train_d(m, codes, y, idx, nl, opt, seed, info);
		else
			train_f(m, codes, y, idx, nl, opt, seed, info);
	}
	INSTR_TIME_SET_CURRENT(end);
	INSTR_TIME_SUBTRACT(end, start);
	info->secs = INSTR_TIME_GET_DOUBLE(end);
	pfree(idx);
}

void
sl_model_log_prob(const SlModel *m, const int32 *codes, const int *y, int n,
				  double *out)
{
	if (n <= 0)
		return;
	if (m->dbl)
		log_prob_d(m, codes, y, n, out);
	else
		log_prob_f(m, codes, y, n, out);
}

double
sl_model_loss_grad(const SlModel *m, const int32 *codes, const int *y, int n,
				   bool train, uint64 dropout_seed, double *grad)
{
	if (n <= 0)
		return 0.0;
	if (m->dbl)
		return loss_grad_d(m, codes, y, n, train, dropout_seed, grad);
	return loss_grad_f(m, codes, y, n, train, dropout_seed, grad);
}

void
sl_model_logit_jacobian(const SlModel *m, void *work, int B, const double *X,
						double *logits, double *jac)
{
	if (B <= 0)
		return;
	if (m->dbl)
		logit_jacobian_d(m, work, B, X, logits, jac);
	else
		logit_jacobian_f(m, work, B, X, logits, jac);
}

void *
sl_model_work_create(const SlModel *m, int cap)
{
	if (m->dbl)
		return work_create_d(m, Max(cap, 1), false, true);
	return work_create_f(m, Max(cap, 1), false, true);
}

void
sl_model_work_free(const SlModel *m, void *work)
{
	if (m->dbl)
		work_free_d(work);
	else
		work_free_f(work);
}

