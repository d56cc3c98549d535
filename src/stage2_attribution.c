/*-------------------------------------------------------------------------
 *
 * stage2_attribution.c
 *	  Stage 2, step 3: pairwise field interactions by Integrated Hessians.
 *
 * Integrated Hessians (Janizek et al.) of the per-row loss L with respect to
 * the concatenated field embeddings x, zero baseline, expectation form as in
 * path_explain: for i != j
 *
 *	 Gamma_ij(x) = x_i x_j E_{a,b ~ U(0,1)} [ a b H_ij(a b x) ]
 *
 * with H the Hessian of L.  The reference code sums Gamma over the embedding
 * dimensions of each field pair, averages over rows, takes |.| and zeroes the
 * diagonal.
 *
 * For a ReLU MLP the logits f are piecewise linear in x, so the Hessian of f
 * is zero almost everywhere and the loss Hessian is J^T L''(f) J, J = df/dx:
 * L'' = p(1-p) for sigmoid + BCE, diag(p) - p p^T for softmax + CE (neither
 * depends on the label).  With u_{k,F} = sum_{i in field F} x_i J_{k,i}, the
 * field-pair term of one (a, b) sample is
 *
 *	 a b [ sum_k p_k u_kF u_kG - (sum_k p_k u_kF)(sum_k p_k u_kG) ]
 *
 * (binary: a b p(1-p) u_F u_G), so one backward pass per logit suffices and
 * no second-order autodiff is needed.  The F x F accumulation is a gemm of
 * the stacked, sqrt-weighted u vectors with themselves.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <cblas.h>

#include "miscadmin.h"
#include "stage2.h"

/*
 * Deviation from the paper: path_explain draws the 6 + 6 interpolation
 * constants uniformly at random per row; we use the midpoints (i + 0.5) / 6
 * of 6 equal strata for both, a deterministic quadrature of the same
 * expectation with lower variance (and the same 36 model evaluations).
 */
void
sl_ih_alphas(int steps, double *alpha)
{
	for (int i = 0; i < steps; i++)
		alpha[i] = (i + 0.5) / steps;
}

void
sl_attribution_ih(const SlModel *m, const int32 *codes, int n, int steps,
				  double *M)
{
	int			F = m->nfields;
	int			D = m->din;
	int			E = m->embed_dim;
	int			K = m->nout;
	int			S2;
	int			R;
	double	   *alpha;
	double	   *xr,
			   *X,
			   *logits,
			   *jac,
			   *A,
			   *V;
	void	   *work;

	memset(M, 0, sizeof(double) * F * F);
	if (n <= 0 || F <= 0)
		return;
	/* more than 20 x 20 samples buys nothing and only costs memory */
	steps = Min(Max(steps, 1), 20);
	S2 = steps * steps;
	/* about 4,000 model rows per gemm, like a training batch */
	R = Max(1, 4000 / S2);
	R = Min(R, n);

	alpha = palloc(sizeof(double) * steps);
	sl_ih_alphas(steps, alpha);
	xr = palloc(sizeof(double) * (size_t) R * D);
	X = palloc(sizeof(double) * (size_t) R * S2 * D);
	logits = palloc(sizeof(double) * (size_t) R * S2 * K);
	jac = palloc(sizeof(double) * (size_t) K * R * S2 * D);
	A = palloc(sizeof(double) * (size_t) R * S2 * K * F);
	V = palloc(sizeof(double) * (size_t) R * S2 * F);
	work = sl_model_work_create(m, R * S2);

	for (int s0 = 0; s0 < n; s0 += R)
	{
		int			nr = Min(R, n - s0);
		int			B = nr * S2;

		CHECK_FOR_INTERRUPTS();
		for (int r = 0; r < nr; r++)
			sl_model_embed(m, codes + (size_t) (s0 + r) * F, xr + (size_t) r * D);

		/* model row r * S2 + i * steps + j is alpha_i * alpha_j * x_r */
		for (int r = 0; r < nr; r++)
			for (int i = 0; i < steps; i++)
				for (int j = 0; j < steps; j++)
				{
					double		ab = alpha[i] * alpha[j];
					double	   *dst = X + (size_t) (r * S2 + i * steps + j) * D;
					const double *src = xr + (size_t) r * D;

					for (int d = 0; d < D; d++)
						dst[d] = ab * src[d];
				}
		sl_model_logit_jacobian(m, work, B, X, logits, jac);

		for (int r = 0; r < nr; r++)
		{
			const double *x = xr + (size_t) r * D;

			for (int i = 0; i < steps; i++)
				for (int j = 0; j < steps; j++)
				{
					int			s = r * S2 + i * steps + j;
					double		wgt = alpha[i] * alpha[j] / S2 / n;
					double		p[SL_MAX_LABEL_CLASSES];
					double	   *vrow = V + (size_t) s * F;

					if (K == 1)
					{
						p[0] = 1.0 / (1.0 + exp(-logits[s]));
						p[0] = p[0] * (1.0 - p[0]); /* p(1-p) */
					}
					else
					{
						double		mx = logits[(size_t) s * K];
						double		sum = 0;

						for (int k = 1; k < K; k++)
							mx = Max(mx, logits[(size_t) s * K + k]);
						for (int k = 0; k < K; k++)
							sum += (p[k] = exp(logits[(size_t) s * K + k] - mx));
						for (int k = 0; k < K; k++)
							p[k] /= sum;
					}
					memset(vrow, 0, sizeof(double) * F);
					for (int k = 0; k < K; k++)
					{
						const double *g = jac + (size_t) k * B * D + (size_t) s * D;
						double	   *arow = A + ((size_t) s * K + k) * F;
						double		sw = sqrt(wgt * p[k]);

						for (int f = 0; f < F; f++)
						{
							double		u = 0;

							for (int e = 0; e < E; e++)
								u += x[f * E + e] * g[f * E + e];
							arow[f] = sw * u;
							vrow[f] += p[k] * u;
						}
					}
					for (int f = 0; f < F; f++)
						vrow[f] *= sqrt(wgt);
				}
		}
		/* M += A^T A (- V^T V for softmax) */
		cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, F, B * K,
					1, A, F, A, F, 1, M, F);
		if (K > 1)
			cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, F, B,
						-1, V, F, V, F, 1, M, F);
	}
	for (int a = 0; a < F; a++)
		for (int b = 0; b < F; b++)
			M[a * F + b] = (a == b) ? 0 : fabs(M[a * F + b]);

	sl_model_work_free(m, work);
	pfree(alpha);
	pfree(xr);
	pfree(X);
	pfree(logits);
	pfree(jac);
	pfree(A);
	pfree(V);
}

/* number of distinct values and sum c log c over the runs of sorted keys */
static double
runs_clogc(const int64 *keys, int n, int *ndistinct)
{
	double		s = 0;
	int			nd = 0;

	for (int i = 0; i < n;)
	{
		int			j = i;

		while (j < n && keys[j] == keys[i])
			j++;
		s += (double) (j - i) * log((double) (j - i));
		nd++;
		i = j;
	}
	*ndistinct = nd;
	return s;
}

/*
 * Deviation from the paper: the paper always has a label.  The label-free
 * variant's interaction matrix: without a label (or with one class only in
 * T) there is no loss to attribute, so fields are linked by their plug-in mutual
 * information on T, minus the Miller-Madow bias (k_ab - k_a - k_b + 1)/(2n)
 * that independent fields would show, floored at 0.
 */
void
sl_attribution_mi(const SlFieldSet *fs, const int32 *codes, int n, double *M)
{
	int			F = fs->nfields;
	int64	   *keys;
	double	   *hx;
	int		   *kx;

	memset(M, 0, sizeof(double) * F * F);
	if (n <= 1 || F <= 1)
		return;
	keys = palloc(sizeof(int64) * n);
	hx = palloc(sizeof(double) * F);
	kx = palloc(sizeof(int) * F);
	/* sum c log c of each marginal */
	for (int a = 0; a < F; a++)
	{
		for (int r = 0; r < n; r++)
			keys[r] = codes[(size_t) r * F + a];
		qsort(keys, n, sizeof(int64), sl_cmp_int64);
		hx[a] = runs_clogc(keys, n, &kx[a]);
	}
	for (int a = 0; a < F; a++)
		for (int b = a + 1; b < F; b++)
		{
			int			kab;
			double		hab;
			double		mi;

			CHECK_FOR_INTERRUPTS();
			for (int r = 0; r < n; r++)
				keys[r] = (int64) codes[(size_t) r * F + a] * fs->fields[b].ncodes +
					codes[(size_t) r * F + b];
			qsort(keys, n, sizeof(int64), sl_cmp_int64);
			hab = runs_clogc(keys, n, &kab);
			/* MI = (1/n)[sum c_ab log c_ab - sum c_a log c_a - sum c_b log c_b] + log n */
			mi = (hab - hx[a] - hx[b]) / n + log((double) n);
			mi -= (double) (kab - kx[a] - kx[b] + 1) / (2.0 * n);
			M[a * F + b] = M[b * F + a] = Max(mi, 0.0);
		}
	pfree(keys);
	pfree(hx);
	pfree(kx);
}
