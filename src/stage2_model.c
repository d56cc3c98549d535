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
 * differences need double).  This file includes itself to do that, the way
 * core's lib/sort_template.h is instantiated; SL_MODEL_TEMPLATE marks the
 * inner pass.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SL_MODEL_TEMPLATE

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
#define SL_MODEL_TEMPLATE
#define real float
#define SL_SFX f
#define SL_GEMM cblas_sgemm
#include "stage2_model.c"
#undef real
#undef SL_SFX
#undef SL_GEMM

/* ---- float64 instance ---- */
#define real double
#define SL_SFX d
#define SL_GEMM cblas_dgemm
#include "stage2_model.c"
#undef real
#undef SL_SFX
#undef SL_GEMM
#undef SL_MODEL_TEMPLATE

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
		return work_create_d(m, Max(cap, 1), false);
	return work_create_f(m, Max(cap, 1), false);
}

void
sl_model_work_free(const SlModel *m, void *work)
{
	if (m->dbl)
		work_free_d(work);
	else
		work_free_f(work);
}

#else							/* SL_MODEL_TEMPLATE */

/*
 * Template body, instantiated once per precision: real is float or double,
 * SL_GEMM the matching cblas routine, FN(x) appends the suffix.
 */

/* Activations and gradients of one batch of at most cap rows. */
typedef struct FN(SlWork)
{
	int			cap;
	real	   *X0;				/* cap x din: gathered embeddings */
	real	   *H[3];			/* post-ReLU */
	real	   *Msk[3];			/* dropout scale: 0 or 1/(1-p); 1 in eval */
	real	   *A[3];			/* H * Msk, the next layer's input */
	real	   *Z;				/* cap x nout logits */
	real	   *D[4];			/* dL/d(pre-activation) of layer l */
	real	   *dX0;			/* cap x din */
	real	   *grad;			/* nparams, or NULL */
	bool		masked;			/* last forward used dropout (A, Msk valid) */
}			FN(SlWork);

static FN(SlWork) *
FN(work_create) (const SlModel *m, int cap, bool with_grad)
{
	FN(SlWork) *w = palloc0(sizeof(FN(SlWork)));
	size_t		c = (size_t) Max(cap, 1);

	w->cap = cap;
	w->X0 = palloc(sizeof(real) * c * m->din);
	w->dX0 = palloc(sizeof(real) * c * m->din);
	for (int l = 0; l < 3; l++)
	{
		w->H[l] = palloc(sizeof(real) * c * m->width[l + 1]);
		w->Msk[l] = palloc(sizeof(real) * c * m->width[l + 1]);
		w->A[l] = palloc(sizeof(real) * c * m->width[l + 1]);
	}
	w->Z = palloc(sizeof(real) * c * m->nout);
	for (int l = 0; l < 4; l++)
		w->D[l] = palloc(sizeof(real) * c * m->width[l + 1]);
	w->grad = with_grad ? palloc_extended(sizeof(real) * m->nparams, MCXT_ALLOC_HUGE) : NULL;
	return w;
}

static void
FN(work_free) (FN(SlWork) *w)
{
	pfree(w->X0);
	pfree(w->dX0);
	for (int l = 0; l < 3; l++)
	{
		pfree(w->H[l]);
		pfree(w->Msk[l]);
		pfree(w->A[l]);
	}
	pfree(w->Z);
	for (int l = 0; l < 4; l++)
		pfree(w->D[l]);
	if (w->grad)
		pfree(w->grad);
	pfree(w);
}

/* X0 rows = embeddings of codes rows rows[0..B-1] (or 0..B-1 if NULL) */
static void
FN(gather) (const SlModel *m, FN(SlWork) *w, const int32 *codes,
			const int *rows, int B)
{
	const real *emb = (const real *) m->params;
	int			E = m->embed_dim;
	int			F = m->nfields;

	for (int r = 0; r < B; r++)
	{
		const int32 *cr = codes + (size_t) (rows ? rows[r] : r) * F;
		real	   *xr = w->X0 + (size_t) r * m->din;

		for (int f = 0; f < F; f++)
			memcpy(xr + f * E, emb + (size_t) (m->code_off[f] + cr[f]) * E,
				   sizeof(real) * E);
	}
}

/*
 * Forward pass of B rows in w->X0; dropout only if rng != NULL.  In eval
 * mode the next layer reads H directly and Msk/A are not touched.
 */
static void
FN(forward) (const SlModel *m, FN(SlWork) *w, int B, pg_prng_state *rng)
{
	const real *P = (const real *) m->params;
	const real *in = w->X0;
	double		keep = 1.0 - m->dropout;
	real		scale = (real) (1.0 / keep);
	bool		masked = (rng != NULL && m->dropout > 0);
	uint32		drop_below = (uint32) (m->dropout * 4294967296.0);

	w->masked = masked;
	for (int l = 0; l < SL_MODEL_NLAYERS; l++)
	{
		int			ni = m->width[l];
		int			no = m->width[l + 1];
		real	   *out = (l < 3) ? w->H[l] : w->Z;
		const real *b = P + m->off_b[l];
		size_t		nel = (size_t) B * no;

		for (int r = 0; r < B; r++)
			memcpy(out + (size_t) r * no, b, sizeof(real) * no);
		SL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, no, ni,
				1, in, ni, P + m->off_w[l], no, 1, out, no);
		if (l == 3)
			break;
		for (size_t i = 0; i < nel; i++)
			out[i] = out[i] > 0 ? out[i] : 0;
		if (!masked)
		{
			in = out;
			continue;
		}
		/* one 64-bit draw gives two 32-bit uniforms */
		for (size_t i = 0; i < nel; i += 2)
		{
			uint64		u = pg_prng_uint64(rng);
			real		s0 = ((uint32) u < drop_below) ? 0 : scale;

			w->Msk[l][i] = s0;
			w->A[l][i] = out[i] * s0;
			if (i + 1 < nel)
			{
				real		s1 = ((uint32) (u >> 32) < drop_below) ? 0 : scale;

				w->Msk[l][i + 1] = s1;
				w->A[l][i + 1] = out[i + 1] * s1;
			}
		}
		in = w->A[l];
	}
}

/*
 * Backward pass from D[3] = dL/dZ.  With grad, writes every parameter's
 * gradient (embeddings via codes/rows); always leaves dL/dX0 in w->dX0.
 */
static void
FN(backward) (const SlModel *m, FN(SlWork) *w, int B, const int32 *codes,
			  const int *rows, bool with_grad)
{
	const real *P = (const real *) m->params;

	for (int l = SL_MODEL_NLAYERS - 1; l >= 0; l--)
	{
		int			ni = m->width[l];
		int			no = m->width[l + 1];
		const real *in = (l == 0) ? w->X0 : (w->masked ? w->A[l - 1] : w->H[l - 1]);
		real	   *dout = w->D[l];
		real	   *din = (l == 0) ? w->dX0 : w->D[l - 1];

		if (with_grad)
		{
			real	   *gb = w->grad + m->off_b[l];

			SL_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, ni, no, B,
					1, in, ni, dout, no, 0, w->grad + m->off_w[l], no);
			memset(gb, 0, sizeof(real) * no);
			for (int r = 0; r < B; r++)
				for (int j = 0; j < no; j++)
					gb[j] += dout[(size_t) r * no + j];
		}
		SL_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, B, ni, no,
				1, dout, no, P + m->off_w[l], no, 0, din, ni);
		if (l > 0)
		{
			size_t		nel = (size_t) B * ni;
			const real *h = w->H[l - 1];
			const real *s = w->Msk[l - 1];

			if (w->masked)
				for (size_t i = 0; i < nel; i++)
					din[i] = (h[i] > 0) ? din[i] * s[i] : 0;
			else
				for (size_t i = 0; i < nel; i++)
					din[i] = (h[i] > 0) ? din[i] : 0;
		}
	}
	if (with_grad)
	{
		real	   *ge = w->grad;
		int			E = m->embed_dim;
		int			F = m->nfields;

		memset(ge, 0, sizeof(real) * (size_t) m->ncodes * E);
		for (int r = 0; r < B; r++)
		{
			const int32 *cr = codes + (size_t) (rows ? rows[r] : r) * F;
			const real *dx = w->dX0 + (size_t) r * m->din;

			for (int f = 0; f < F; f++)
			{
				real	   *g = ge + (size_t) (m->code_off[f] + cr[f]) * E;

				for (int e = 0; e < E; e++)
					g[e] += dx[f * E + e];
			}
		}
	}
}

/*
 * Mean loss of the B rows just forwarded; sets D[3] = dL/dZ if want_grad.
 */
static double
FN(batch_loss) (const SlModel *m, FN(SlWork) *w, int B, const int *y,
				const int *rows, bool want_grad)
{
	double		z[SL_MAX_LABEL_CLASSES];
	double		dz[SL_MAX_LABEL_CLASSES];
	double		total = 0;
	int			K = m->nout;

	for (int r = 0; r < B; r++)
	{
		int			yr = y[rows ? rows[r] : r];

		for (int k = 0; k < K; k++)
			z[k] = w->Z[(size_t) r * K + k];
		total += row_loss(z, K, yr, 1.0 / B, want_grad ? dz : NULL);
		if (want_grad)
			for (int k = 0; k < K; k++)
				w->D[3][(size_t) r * K + k] = (real) dz[k];
	}
	return total / B;
}

static double
FN(loss_grad) (const SlModel *m, const int32 *codes, const int *y, int n,
			   bool train, uint64 dropout_seed, double *grad)
{
	FN(SlWork) *w = FN(work_create) (m, n, grad != NULL);
	pg_prng_state rng;
	double		loss;

	pg_prng_seed(&rng, dropout_seed);
	FN(gather) (m, w, codes, NULL, n);
	FN(forward) (m, w, n, train ? &rng : NULL);
	loss = FN(batch_loss) (m, w, n, y, NULL, grad != NULL);
	if (grad)
	{
		FN(backward) (m, w, n, codes, NULL, true);
		for (int64 i = 0; i < m->nparams; i++)
			grad[i] = w->grad[i];
	}
	FN(work_free) (w);
	return loss;
}

/* Eval-mode mean loss over rows[0..n-1], in batches. */
static double
FN(eval_loss) (const SlModel *m, FN(SlWork) *w, const int32 *codes,
			   const int *y, const int *rows, int n)
{
	double		total = 0;

	for (int s = 0; s < n; s += w->cap)
	{
		int			B = Min(w->cap, n - s);

		CHECK_FOR_INTERRUPTS();
		FN(gather) (m, w, codes, rows + s, B);
		FN(forward) (m, w, B, NULL);
		total += FN(batch_loss) (m, w, B, y, rows + s, false) * B;
	}
	return total / n;
}

static void
FN(train) (SlModel *m, const int32 *codes, const int *y, const int *idx,
		   int n, const SlStage2Options *opt, uint64 seed, SlTrainInfo *info)
{
	int			bs = Max(opt->batch_size, 1);
	int			patience = Max(opt->patience, 1);
	int			neligible = n;
	int			nval;
	int			ntrain;
	int		   *perm = palloc(sizeof(int) * n);
	int		   *trows;
	FN(SlWork) *w = FN(work_create) (m, Min(bs, n), true);
	real	   *P = (real *) m->params;
	real	   *m1 = palloc_extended(sizeof(real) * m->nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	real	   *m2 = palloc_extended(sizeof(real) * m->nparams, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	real	   *best = NULL;
	double		best_loss = INFINITY;
	int64		step = 0;
	int			bad = 0;
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	memcpy(perm, idx, sizeof(int) * n);
	for (int i = n - 1; i > 0; i--)
	{
		int			j = (int) pg_prng_uint64_range(&rng, 0, i);
		int			tmp = perm[i];

		perm[i] = perm[j];
		perm[j] = tmp;
	}
	/*
	 * perm[0..nval) is the held-out tenth, the rest trains.  With
	 * validation_rows, only rows below it may be held out: move them, in
	 * their shuffled order, to the front.
	 */
	if (opt->validation_rows > 0)
	{
		int			k = 0;

		for (int i = 0; i < n; i++)
			if (perm[i] < opt->validation_rows)
			{
				int			tmp = perm[k];

				perm[k++] = perm[i];
				perm[i] = tmp;
			}
		neligible = k;
	}
	nval = (neligible >= 10) ? neligible / 10 : 0;
	ntrain = n - nval;
	trows = perm + nval;
	if (nval > 0)
		best = palloc_extended(sizeof(real) * m->nparams, MCXT_ALLOC_HUGE);

	for (int epoch = 1; epoch <= Max(opt->max_epochs, 1); epoch++)
	{
		double		train_loss = 0;

		for (int i = ntrain - 1; i > 0; i--)
		{
			int			j = (int) pg_prng_uint64_range(&rng, 0, i);
			int			tmp = trows[i];

			trows[i] = trows[j];
			trows[j] = tmp;
		}
		for (int s = 0; s < ntrain; s += bs)
		{
			int			B = Min(bs, ntrain - s);
			double		bc1,
						bc2;

			CHECK_FOR_INTERRUPTS();
			FN(gather) (m, w, codes, trows + s, B);
			FN(forward) (m, w, B, &rng);
			train_loss += FN(batch_loss) (m, w, B, y, trows + s, true) * B;
			FN(backward) (m, w, B, codes, trows + s, true);

			/* Adam, weight decay as L2 on the gradient (torch.optim.Adam) */
			step++;
			bc1 = 1.0 - pow(SL_BETA1, (double) step);
			bc2 = 1.0 - pow(SL_BETA2, (double) step);
			{
				real		b1 = (real) SL_BETA1;
				real		b2 = (real) SL_BETA2;
				real		lr_t = (real) (SL_LR / bc1);
				real		sbc2 = (real) sqrt(bc2);
				real		eps = (real) SL_ADAM_EPS;
				real		wd = (real) SL_WEIGHT_DECAY;

				for (int64 i = 0; i < m->nparams; i++)
				{
					real		g = w->grad[i] + wd * P[i];

					m1[i] = b1 * m1[i] + (1 - b1) * g;
					m2[i] = b2 * m2[i] + (1 - b2) * g * g;
					P[i] -= lr_t * m1[i] / (sqrt(m2[i]) / sbc2 + eps);
				}
			}
		}
		info->epochs = epoch;
		if (nval == 0)
		{
			info->best_loss = train_loss / ntrain;
			info->best_epoch = epoch;
			continue;
		}
		{
			double		vl = FN(eval_loss) (m, w, codes, y, perm, nval);

			if (vl < best_loss)
			{
				best_loss = vl;
				info->best_epoch = epoch;
				memcpy(best, P, sizeof(real) * m->nparams);
				bad = 0;
			}
			else if (++bad >= patience)
				break;
		}
	}
	if (best != NULL)
	{
		memcpy(P, best, sizeof(real) * m->nparams);
		info->best_loss = best_loss;
		pfree(best);
	}
	pfree(m1);
	pfree(m2);
	pfree(perm);
	FN(work_free) (w);
}

static void
FN(log_prob) (const SlModel *m, const int32 *codes, const int *y, int n,
			  double *out)
{
	int			cap = Min(n, 4000);
	FN(SlWork) *w = FN(work_create) (m, cap, false);
	double		z[SL_MAX_LABEL_CLASSES];
	int			K = m->nout;

	for (int s = 0; s < n; s += cap)
	{
		int			B = Min(cap, n - s);

		CHECK_FOR_INTERRUPTS();
		FN(gather) (m, w, codes + (size_t) s * m->nfields, NULL, B);
		FN(forward) (m, w, B, NULL);
		for (int r = 0; r < B; r++)
		{
			int			yr = y[s + r];

			for (int k = 0; k < K; k++)
				z[k] = w->Z[(size_t) r * K + k];
			out[s + r] = (yr < 0 || yr >= m->nclasses) ? NAN :
				-row_loss(z, K, yr, 0, NULL);
		}
	}
	FN(work_free) (w);
}

static void
FN(logit_jacobian) (const SlModel *m, void *work, int B, const double *X,
					double *logits, double *jac)
{
	FN(SlWork) *w = work ? (FN(SlWork) *) work : FN(work_create) (m, B, false);
	size_t		nx = (size_t) B * m->din;
	int			K = m->nout;

	Assert(B <= w->cap);
	for (size_t i = 0; i < nx; i++)
		w->X0[i] = (real) X[i];
	FN(forward) (m, w, B, NULL);
	for (size_t i = 0; i < (size_t) B * K; i++)
		logits[i] = w->Z[i];
	if (jac != NULL)
	{
		for (int k = 0; k < K; k++)
		{
			double	   *jk = jac + (size_t) k * nx;

			for (int r = 0; r < B; r++)
				for (int q = 0; q < K; q++)
					w->D[3][(size_t) r * K + q] = (q == k) ? 1 : 0;
			FN(backward) (m, w, B, NULL, NULL, false);
			for (size_t i = 0; i < nx; i++)
				jk[i] = w->dX0[i];
		}
	}
	if (work == NULL)
		FN(work_free) (w);
}

#endif							/* SL_MODEL_TEMPLATE */
