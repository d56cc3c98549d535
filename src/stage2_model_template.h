/*-------------------------------------------------------------------------
 *
 * stage2_model_template.h
 *	  The DNN's forward and backward passes, for one precision.
 *
 * Included by stage2_model.c once per precision, with these defined:
 *	  real		float or double
 *	  SL_SFX	the suffix of the instantiated names (f, d)
 *	  SL_GEMM	the matching cblas routine
 *	  FN(x)		x with the suffix appended
 * as core instantiates lib/sort_template.h.  No include guard: it is meant
 * to be included more than once.
 *
 *-------------------------------------------------------------------------
 */


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

