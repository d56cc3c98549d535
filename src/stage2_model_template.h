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

/*
 * Activations and gradients of one batch of at most cap rows.
 *
 * Rows given as codes take layer 0 from a table (T, one row per code): the
 * first layer of an embedding MLP is linear in the embeddings, so
 * x W0 = sum over fields of emb[code] W0[field block], and T holds each
 * code's product once per parameter update.  That replaces the widest gemm
 * (B x din x h1) by F adds of h1 per row, and its two backward gemms by a
 * scatter into dT and per-field gemms of ncodes rows: the same arithmetic
 * reordered (the double instance's finite-difference checks cover it), and
 * on 10,000 seeds x 300,000 candidates the models' time fell by more than
 * half (bench/bench_stage2.sh).  Dense inputs (Integrated Hessians
 * interpolate between embeddings) keep X0 and the gemm.
 */
typedef struct FN(SlWork)
{
	int			cap;
	real	   *X0;				/* cap x din: dense inputs, or NULL */
	real	   *dX0;			/* cap x din: dL/dX0 of dense inputs, or NULL */
	real	   *T;				/* ncodes x h1: emb[c] W0[block of c's field] */
	real	   *dT;				/* ncodes x h1: dL/dT, training only */
	real	   *H[3];			/* post-ReLU, after dropout when masked */
	real	   *Z;				/* cap x nout logits */
	real	   *D[4];			/* dL/d(pre-activation) of layer l */
	real	   *grad;			/* nparams, or NULL */
	real	   *mask;			/* one row's dropout factors (widest layer + 3) */
	bool		masked;			/* last forward used dropout */
}			FN(SlWork);

static FN(SlWork) *
FN(work_create) (const SlModel *m, int cap, bool with_grad, bool dense)
{
	FN(SlWork) *w = palloc0(sizeof(FN(SlWork)));
	size_t		c = (size_t) Max(cap, 1);

	w->cap = cap;
	if (dense)
	{
		w->X0 = palloc(sizeof(real) * c * m->din);
		w->dX0 = palloc(sizeof(real) * c * m->din);
	}
	else
	{
		w->T = palloc_extended(sizeof(real) * (size_t) Max(m->ncodes, 1) * m->width[1],
							   MCXT_ALLOC_HUGE);
		if (with_grad)
			w->dT = palloc_extended(sizeof(real) * (size_t) Max(m->ncodes, 1) * m->width[1],
									MCXT_ALLOC_HUGE);
	}
	for (int l = 0; l < 3; l++)
		w->H[l] = palloc(sizeof(real) * c * m->width[l + 1]);
	w->Z = palloc(sizeof(real) * c * m->nout);
	for (int l = 0; l < 4; l++)
		w->D[l] = palloc(sizeof(real) * c * m->width[l + 1]);
	w->mask = palloc(sizeof(real) * (Max(Max(m->width[1], m->width[2]), m->width[3]) + 3));
	w->grad = with_grad ? palloc_extended(sizeof(real) * m->nparams, MCXT_ALLOC_HUGE) : NULL;
	return w;
}

static void
FN(work_free) (FN(SlWork) *w)
{
	if (w->X0)
		pfree(w->X0);
	if (w->dX0)
		pfree(w->dX0);
	if (w->T)
		pfree(w->T);
	if (w->dT)
		pfree(w->dT);
	for (int l = 0; l < 3; l++)
		pfree(w->H[l]);
	pfree(w->Z);
	pfree(w->mask);
	for (int l = 0; l < 4; l++)
		pfree(w->D[l]);
	if (w->grad)
		pfree(w->grad);
	pfree(w);
}

/* T = each code's embedding times its field's block of W0 (current params) */
static void
FN(table_build) (const SlModel *m, FN(SlWork) *w)
{
	const real *P = (const real *) m->params;
	int			E = m->embed_dim;
	int			no = m->width[1];

	for (int f = 0; f < m->nfields; f++)
	{
		int			nc = m->code_off[f + 1] - m->code_off[f];

		if (nc > 0)
			SL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, nc, no, E,
					1, P + (size_t) m->code_off[f] * E, E,
					P + m->off_w[0] + (size_t) f * E * no, no,
					0, w->T + (size_t) m->code_off[f] * no, no);
	}
}

/* the row of T (or dT) of field f's code in the row of codes cr */
static inline real *
FN(trow) (const SlModel *m, real *T, const int32 *cr, int f, int no)
{
	return T + (size_t) (m->code_off[f] + cr[f]) * no;
}

/* a small inline generator for dropout masks, seeded from the caller's stream */
static inline uint64
FN(mask_next) (uint64 *s)
{
	uint64		z = (*s += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

/*
 * Forward pass of B rows: given as codes (rows[] into codes, or 0..B-1 when
 * rows is NULL; T must be current), or dense in w->X0 when codes is NULL.
 * Dropout only if rng != NULL.  Bias, ReLU and dropout are one pass over
 * each row while it is in cache (separate passes over a 4,000 x 128 batch
 * ran at memory speed: bench/bench_stage2.sh).
 */
SL_SIMD_CLONES static void
FN(forward) (const SlModel *m, FN(SlWork) *w, int B, const int32 *codes,
			 const int *rows, pg_prng_state *rng)
{
	const real *P = (const real *) m->params;
	const real *in = w->X0;
	real		scale = (real) (1.0 / (1.0 - m->dropout));
	bool		masked = (rng != NULL && m->dropout > 0);
	int			F = m->nfields;

	/* 16-bit uniforms, four per draw: P(drop) within 2^-16 of m->dropout */
	uint32		drop_below = (uint32) (m->dropout * 65536.0);
	uint64		ms = masked ? pg_prng_uint64(rng) : 0;

	w->masked = masked;
	for (int l = 0; l < SL_MODEL_NLAYERS; l++)
	{
		int			ni = m->width[l];
		int			no = m->width[l + 1];
		real	   *out = (l < 3) ? w->H[l] : w->Z;
		const real *b = P + m->off_b[l];
		bool		table = (l == 0 && codes != NULL);

		if (!table)
			SL_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, no, ni,
					1, in, ni, P + m->off_w[l], no, 0, out, no);
		for (int r = 0; r < B; r++)
		{
			real	   *o = out + (size_t) r * no;

			if (table)
			{
				const int32 *cr = codes + (size_t) (rows ? rows[r] : r) * F;

				int			f = 0;

				/* four table rows per pass: a quarter of the loads and stores of o */
				memcpy(o, b, sizeof(real) * no);
				for (; f + 4 <= F; f += 4)
				{
					const real *t0 = FN(trow) (m, w->T, cr, f, no);
					const real *t1 = FN(trow) (m, w->T, cr, f + 1, no);
					const real *t2 = FN(trow) (m, w->T, cr, f + 2, no);
					const real *t3 = FN(trow) (m, w->T, cr, f + 3, no);

					for (int j = 0; j < no; j++)
						o[j] += (t0[j] + t1[j]) + (t2[j] + t3[j]);
				}
				for (; f < F; f++)
				{
					const real *t = FN(trow) (m, w->T, cr, f, no);

					for (int j = 0; j < no; j++)
						o[j] += t[j];
				}
			}
			else
				for (int j = 0; j < no; j++)
					o[j] += b[j];
			if (l == 3)
				continue;
			for (int j = 0; j < no; j++)
				o[j] = o[j] > 0 ? o[j] : 0;
			if (masked)
			{
				real	   *mk = w->mask;

				/* the row's keep factors four at a time, then one vector product */
				for (int j = 0; j < no; j += 4)
				{
					uint64		u = FN(mask_next) (&ms);

					mk[j] = ((u & 0xFFFF) < drop_below) ? 0 : scale;
					mk[j + 1] = (((u >> 16) & 0xFFFF) < drop_below) ? 0 : scale;
					mk[j + 2] = (((u >> 32) & 0xFFFF) < drop_below) ? 0 : scale;
					mk[j + 3] = ((u >> 48) < drop_below) ? 0 : scale;
				}
				for (int j = 0; j < no; j++)
					o[j] *= mk[j];
			}
		}
		in = out;
	}
}

/*
 * Backward pass from D[3] = dL/dZ.  Rows given as codes (with_grad): every
 * parameter's gradient, layer 0 through dT.  Dense rows (codes NULL): no
 * parameter gradient, dL/dX0 in w->dX0.
 */
SL_SIMD_CLONES static void
FN(backward) (const SlModel *m, FN(SlWork) *w, int B, const int32 *codes,
			  const int *rows, bool with_grad)
{
	const real *P = (const real *) m->params;
	real		scale = w->masked ? (real) (1.0 / (1.0 - m->dropout)) : 1;

	Assert((codes != NULL) == with_grad);
	for (int l = SL_MODEL_NLAYERS - 1; l >= 0; l--)
	{
		int			ni = m->width[l];
		int			no = m->width[l + 1];
		const real *in = (l == 0) ? w->X0 : w->H[l - 1];
		real	   *dout = w->D[l];

		if (with_grad)
		{
			real	   *gb = w->grad + m->off_b[l];

			if (l > 0)
				SL_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, ni, no, B,
						1, in, ni, dout, no, 0, w->grad + m->off_w[l], no);
			memset(gb, 0, sizeof(real) * no);
			for (int r = 0; r < B; r++)
			{
				const real *d = dout + (size_t) r * no;

				for (int j = 0; j < no; j++)
					gb[j] += d[j];
			}
		}
		if (l == 0 && with_grad)
			break;
		{
			real	   *din = (l == 0) ? w->dX0 : w->D[l - 1];

			SL_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, B, ni, no,
					1, dout, no, P + m->off_w[l], no, 0, din, ni);
			if (l > 0)
			{
				size_t		nel = (size_t) B * ni;
				const real *h = w->H[l - 1];

				/*
				 * h > 0: the unit was active and kept (dropped ones are 0).
				 * An unconditional product vectorizes; a conditional one
				 * does not under -ftrapping-math.
				 */
				for (size_t i = 0; i < nel; i++)
					din[i] *= (h[i] > 0) ? scale : 0;
			}
		}
	}
	if (with_grad)
	{
		int			E = m->embed_dim;
		int			F = m->nfields;
		int			no = m->width[1];
		const real *d0 = w->D[0];

		/* dT[c] = the sum of dL/d(pre-activation 0) over the rows with code c */
		memset(w->dT, 0, sizeof(real) * (size_t) m->ncodes * no);
		for (int r = 0; r < B; r++)
		{
			const int32 *cr = codes + (size_t) (rows ? rows[r] : r) * F;
			const real *d = d0 + (size_t) r * no;

			for (int f = 0; f < F; f++)
			{
				real	   *g = w->dT + (size_t) (m->code_off[f] + cr[f]) * no;

				for (int j = 0; j < no; j++)
					g[j] += d[j];
			}
		}
		/* W0's block of field f gets emb_f' dT_f; emb_f gets dT_f W0_f' */
		for (int f = 0; f < F; f++)
		{
			int			nc = m->code_off[f + 1] - m->code_off[f];
			size_t		c0 = (size_t) m->code_off[f];
			const real *W0f = P + m->off_w[0] + (size_t) f * E * no;

			if (nc == 0)
			{
				memset(w->grad + m->off_w[0] + (size_t) f * E * no, 0, sizeof(real) * E * no);
				continue;
			}
			SL_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, E, no, nc,
					1, P + c0 * E, E, w->dT + c0 * no, no,
					0, w->grad + m->off_w[0] + (size_t) f * E * no, no);
			SL_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, nc, E, no,
					1, w->dT + c0 * no, no, W0f, no, 0, w->grad + c0 * E, E);
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
	FN(SlWork) *w = FN(work_create) (m, n, grad != NULL, false);
	pg_prng_state rng;
	double		loss;

	pg_prng_seed(&rng, dropout_seed);
	FN(table_build) (m, w);
	FN(forward) (m, w, n, codes, NULL, train ? &rng : NULL);
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

	FN(table_build) (m, w);
	for (int s = 0; s < n; s += w->cap)
	{
		int			B = Min(w->cap, n - s);

		CHECK_FOR_INTERRUPTS();
		FN(forward) (m, w, B, codes, rows + s, NULL);
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
	FN(SlWork) *w = FN(work_create) (m, Min(bs, n), true, false);
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
			FN(table_build) (m, w);
			FN(forward) (m, w, B, codes, trows + s, &rng);
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
	FN(SlWork) *w = FN(work_create) (m, cap, false, false);
	double		z[SL_MAX_LABEL_CLASSES];
	int			K = m->nout;

	FN(table_build) (m, w);
	for (int s = 0; s < n; s += cap)
	{
		int			B = Min(cap, n - s);

		CHECK_FOR_INTERRUPTS();
		FN(forward) (m, w, B, codes + (size_t) s * m->nfields, NULL, NULL);
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
	FN(SlWork) *w = work ? (FN(SlWork) *) work : FN(work_create) (m, B, false, true);
	size_t		nx = (size_t) B * m->din;
	int			K = m->nout;

	Assert(B <= w->cap);
	for (size_t i = 0; i < nx; i++)
		w->X0[i] = (real) X[i];
	FN(forward) (m, w, B, NULL, NULL, NULL);
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

