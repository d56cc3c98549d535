/*-------------------------------------------------------------------------
 *
 * test_stage2.c
 *	  Unit tests of stage 2 without a server (make check).
 *
 *	  ./test_stage2              run every test
 *	  ./test_stage2 --dump DIR   also write models, inputs and IH matrices
 *	                             for bench/check_attribution_torch.py
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <sys/stat.h>

#include "pg_shim.h"
#include "stage2.h"
#include "test_data.h"


/* ---- data sets ---- */

/*
 * Planted interaction: a, b in 4 levels, label = parity(a) XOR parity(b)
 * (5% flipped); c ~ N(0,1), d in 5 levels, e ~ U(0,1) are noise.
 * Columns: a b c d e y; y is an integer 0/1 column.
 */
static SlRowSet *
planted_xor(int n, uint64 seed, int nclasses)
{
	SlRowSet   *rs = td_rows(n, 6);
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
	{
		int			a = (int) pg_prng_uint64_range(&rng, 0, 3);
		int			b = (int) pg_prng_uint64_range(&rng, 0, 3);
		int			y = (a % 2) ^ (b % 2);

		if (nclasses > 2)
			y = (a + b) % nclasses;
		if (pg_prng_double(&rng) < 0.05)
			y = (int) pg_prng_uint64_range(&rng, 0, nclasses - 1);
		td_cat(rs, r, 0, a);
		td_cat(rs, r, 1, b);
		td_num(rs, r, 2, td_normal(&rng));
		td_cat(rs, r, 3, (int) pg_prng_uint64_range(&rng, 0, 4));
		td_num(rs, r, 4, pg_prng_double(&rng));
		td_int(rs, r, 5, y);
	}
	return rs;
}

/*
 * Label driven by a: P(y=1|a) = 0.1 + 0.25 a (target), or a constant
 * label rate independent of a (the skewed pool).  Columns: a c d y.
 */
static SlRowSet *
label_by_a(int n, uint64 seed, double pool_rate)
{
	SlRowSet   *rs = td_rows(n, 4);
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
	{
		int			a = (int) pg_prng_uint64_range(&rng, 0, 3);
		double		p = pool_rate >= 0 ? pool_rate : 0.1 + 0.25 * a;

		td_cat(rs, r, 0, a);
		td_num(rs, r, 1, td_normal(&rng));
		td_cat(rs, r, 2, (int) pg_prng_uint64_range(&rng, 0, 2));
		td_text(rs, r, 3, pg_prng_double(&rng) < p ? "yes" : "no");
	}
	return rs;
}

/* ---- 1. gradient check ---- */

static void
test_gradcheck(int nclasses)
{
	SlTable    *t = td_table("ccnccn", 5);
	SlRowSet   *T = planted_xor(200, 11, nclasses);
	SlFieldSet *fs = sl_fields_fit(t, T, 4, 1000);
	int32	   *codes = sl_fields_encode(fs, T);
	int			n = 32;
	int		   *y = palloc(sizeof(int) * n);
	SlModel    *m = sl_model_create(fs, nclasses, 4, NULL, true, 5);
	double	   *g = palloc(sizeof(double) * m->nparams);
	pg_prng_state rng;
	double		h = 1e-6;
	double		maxrel = 0;
	int			nchecked = 0,
				nbad = 0;

	printf("gradcheck (%d classes, %ld params)\n", nclasses, (long) m->nparams);
	pg_prng_seed(&rng, 99);
	for (int i = 0; i < n; i++)
		y[i] = (int) pg_prng_uint64_range(&rng, 0, nclasses - 1);
	/* train mode with a fixed dropout seed: the masks do not move under FD */
	sl_model_loss_grad(m, codes, y, n, true, 1234, g);
	for (int64 i = 0; i < m->nparams; i++)
	{
		double		p0,
					lp,
					lm,
					fd,
					err;

		/* every embedding, every bias, and a sample of each weight matrix */
		if (i >= m->off_w[0])
		{
			bool		is_bias = false;

			for (int l = 0; l < SL_MODEL_NLAYERS; l++)
				if (i >= m->off_b[l] && i < m->off_b[l] + m->width[l + 1])
					is_bias = true;
			if (!is_bias && pg_prng_double(&rng) > 0.02)
				continue;
		}
		p0 = sl_model_get_param(m, i);
		sl_model_set_param(m, i, p0 + h);
		lp = sl_model_loss_grad(m, codes, y, n, true, 1234, NULL);
		sl_model_set_param(m, i, p0 - h);
		lm = sl_model_loss_grad(m, codes, y, n, true, 1234, NULL);
		sl_model_set_param(m, i, p0);
		fd = (lp - lm) / (2 * h);
		err = fabs(fd - g[i]) / Max(fabs(fd) + fabs(g[i]), 1e-7);
		nchecked++;

		/*
		 * Central differences in double: truncation ~h^2, rounding ~1e-16/h
		 * = 1e-10 absolute; a relative 1e-5 leaves room for both.
		 */
		if (err > 1e-5 && fabs(fd - g[i]) > 1e-9)
		{
			nbad++;
			if (nbad <= 5)
				printf("  param %ld: analytic %.10g fd %.10g\n", (long) i, g[i], fd);
		}
		if (fabs(fd) + fabs(g[i]) > 1e-5)
			maxrel = Max(maxrel, err);
	}
	printf("  checked %d parameters, max relative error %.3g (|grad| > 1e-5), %d off\n",
		   nchecked, maxrel, nbad);
	/* a ReLU kink inside +-h can spoil a rare FD estimate; allow 0.5% */
	CHECK(nbad * 200 <= nchecked, "gradient check: %d of %d off", nbad, nchecked);
}

/* ---- 2. Integrated Hessians vs finite differences of the loss Hessian ---- */

/* analytic loss gradient at dense inputs X (B rows) for label y */
static void
loss_input_grad(const SlModel *m, int B, const double *X, int y, double *grad)
{
	int			K = m->nout;
	int			D = m->din;
	double	   *logits = palloc(sizeof(double) * B * K);
	double	   *jac = palloc(sizeof(double) * (size_t) K * B * D);

	sl_model_logit_jacobian(m, NULL, B, X, logits, jac);
	for (int r = 0; r < B; r++)
	{
		double		dz[SL_MAX_LABEL_CLASSES];
		const double *z = logits + (size_t) r * K;

		if (K == 1)
			dz[0] = 1.0 / (1.0 + exp(-z[0])) - y;
		else
		{
			double		mx = z[0],
						s = 0;

			for (int k = 1; k < K; k++)
				mx = Max(mx, z[k]);
			for (int k = 0; k < K; k++)
				s += exp(z[k] - mx);
			for (int k = 0; k < K; k++)
				dz[k] = exp(z[k] - mx) / s - (k == y);
		}
		for (int d = 0; d < D; d++)
		{
			double		v = 0;

			for (int k = 0; k < K; k++)
				v += dz[k] * jac[(size_t) k * B * D + (size_t) r * D + d];
			grad[(size_t) r * D + d] = v;
		}
	}
	pfree(logits);
	pfree(jac);
}

static void
test_ih_fd(int nclasses)
{
	SlTable    *t = td_table("ccnccn", 5);
	SlRowSet   *T = planted_xor(300, 21, nclasses);
	SlFieldSet *fs = sl_fields_fit(t, T, 4, 1000);
	int32	   *codes = sl_fields_encode(fs, T);
	int		   *yT = palloc(sizeof(int) * T->nrows);
	int			F = fs->nfields;
	int			E = 4;
	int			n = 3;
	int			steps = 6;
	SlModel    *m = sl_model_create(fs, nclasses, E, NULL, true, 8);
	int			D = m->din;
	double	   *Ma = palloc(sizeof(double) * F * F);
	double	   *Mf = palloc0(sizeof(double) * F * F);
	double		alpha[6];
	double	   *x = palloc(sizeof(double) * D);
	double	   *Xp = palloc(sizeof(double) * 2 * D * D);
	double	   *Gp = palloc(sizeof(double) * 2 * D * D);
	double	   *H = palloc(sizeof(double) * D * D);
	double		h = 1e-6;
	double		mx = 0,
				maxdiff = 0,
				hsym = 0;
	SlStage2Options opt;

	sl_stage2_default_options(&opt);
	opt.max_epochs = 3;
	opt.use_double = true;
	{
		SlLabelEncoder *le = sl_label_fit(t, T);
		SlTrainInfo info;

		yT = sl_label_encode(le, T);
		/* a briefly trained model, so the logits are not all near 0 */
		sl_model_train(m, codes, yT, T->nrows, &opt, 3, &info);
	}
	printf("IH vs FD Hessian (%d classes, %d fields x %d dims)\n", nclasses, F, E);
	sl_attribution_ih(m, codes, n, steps, Ma);
	sl_ih_alphas(steps, alpha);
	for (int r = 0; r < n; r++)
	{
		double	   *G = palloc0(sizeof(double) * D * D);

		sl_model_embed(m, codes + (size_t) r * F, x);
		for (int i = 0; i < steps; i++)
			for (int j = 0; j < steps; j++)
			{
				double		ab = alpha[i] * alpha[j];

				/* rows 2d and 2d+1: ab x +- h e_d */
				for (int d = 0; d < D; d++)
					for (int s = 0; s < 2; s++)
					{
						double	   *row = Xp + (size_t) (2 * d + s) * D;

						for (int q = 0; q < D; q++)
							row[q] = ab * x[q];
						row[d] += s == 0 ? h : -h;
					}
				loss_input_grad(m, 2 * D, Xp, yT[r], Gp);
				for (int d = 0; d < D; d++)
					for (int q = 0; q < D; q++)
						H[q * D + d] = (Gp[(size_t) (2 * d) * D + q] -
										Gp[(size_t) (2 * d + 1) * D + q]) / (2 * h);
				for (int a = 0; a < D; a++)
					for (int b = 0; b < D; b++)
					{
						hsym = Max(hsym, fabs(H[a * D + b] - H[b * D + a]));
						G[a * D + b] += ab * x[a] * x[b] * 0.5 *
							(H[a * D + b] + H[b * D + a]) / (steps * steps);
					}
			}
		for (int a = 0; a < D; a++)
			for (int b = 0; b < D; b++)
				Mf[(a / E) * F + (b / E)] += G[a * D + b] / n;
		pfree(G);
	}
	for (int a = 0; a < F; a++)
		for (int b = 0; b < F; b++)
		{
			Mf[a * F + b] = (a == b) ? 0 : fabs(Mf[a * F + b]);
			mx = Max(mx, Mf[a * F + b]);
		}
	for (int i = 0; i < F * F; i++)
		maxdiff = Max(maxdiff, fabs(Ma[i] - Mf[i]));
	printf("  max |M_ih - M_fd| = %.3g, max entry %.3g, FD Hessian asymmetry %.3g\n",
		   maxdiff, mx, hsym);
	CHECK(mx > 0, "IH matrix is zero");
	/* FD of an analytic gradient in double: error ~1e-16/h relative */
	CHECK(maxdiff <= 1e-6 * mx, "IH differs from FD Hessian: %.3g vs max %.3g",
		  maxdiff, mx);
}

/* ---- 3. determinism ---- */

static void
test_determinism(void)
{
	SlTable    *t = td_table("ccnccn", 5);
	SlRowSet   *T = planted_xor(3000, 31, 2);
	SlFieldSet *fs = sl_fields_fit(t, T, 10, 1000);
	int32	   *codes = sl_fields_encode(fs, T);
	SlLabelEncoder *le = sl_label_fit(t, T);
	int		   *y = sl_label_encode(le, T);
	SlStage2Options opt;
	SlModel    *m1,
			   *m2,
			   *m3;
	SlTrainInfo info;

	printf("determinism\n");
	sl_stage2_default_options(&opt);
	opt.max_epochs = 5;
	m1 = sl_model_create(fs, 2, 16, NULL, false, 42);
	m2 = sl_model_create(fs, 2, 16, NULL, false, 42);
	m3 = sl_model_create(fs, 2, 16, NULL, false, 42);
	sl_model_train(m1, codes, y, T->nrows, &opt, 7, &info);
	sl_model_train(m2, codes, y, T->nrows, &opt, 7, &info);
	sl_model_train(m3, codes, y, T->nrows, &opt, 8, &info);
	CHECK(memcmp(m1->params, m2->params, sizeof(float) * m1->nparams) == 0,
		  "same seed, different weights");
	CHECK(memcmp(m1->params, m3->params, sizeof(float) * m1->nparams) != 0,
		  "different seed, same weights");
	printf("  float model bitwise equal for one seed (%d epochs, loss %.4f)\n",
		   info.epochs, info.best_loss);
}

/* ---- 4. planted interaction: a-b linked, noise fields singletons ---- */

static void
test_planted(void)
{
	SlTable    *t = td_table("ccnccn", 5);
	SlRowSet   *T = planted_xor(4000, 41, 2);
	SlStage2Options opt;
	SlStage2Result res;
	int			F;
	double		mx = 0;

	printf("planted XOR interaction\n");
	sl_stage2_default_options(&opt);
	opt.seed = 1;
	sl_stage2_interactions(t, T, &opt, &res);
	F = res.nfields;
	for (int i = 0; i < F * F; i++)
		mx = Max(mx, res.interactions[i]);
	for (int a = 0; a < F; a++)
	{
		printf("  %s:", t->cols[res.field_col[a]].name);
		for (int b = 0; b < F; b++)
			printf(" %6.3f", res.interactions[a * F + b] / mx);
		printf("   cluster %d\n", res.field_cluster[a]);
	}
	printf("  variant %s, %d clusters, f_T %d epochs, held-out loss %.4f, "
		   "train %.2fs, IH %.2fs\n", res.variant, res.nclusters, res.epochs_T,
		   res.train_loss, res.secs_train_T, res.secs_ih);
	CHECK(F == 5, "nfields %d", F);
	CHECK(res.field_cluster[0] == res.field_cluster[1], "a and b not linked");
	for (int f = 2; f < F; f++)
		for (int g = 0; g < F; g++)
			if (g != f)
				CHECK(res.field_cluster[f] != res.field_cluster[g],
					  "noise field %d shares cluster with %d", f, g);
	CHECK(res.nclusters == 4, "nclusters %d", res.nclusters);
	CHECK(res.train_loss < 0.35, "f_T did not learn XOR: %.3f", res.train_loss);
	CHECK(strcmp(res.variant, "label") == 0, "variant %s", res.variant);
}

/* ---- 5. weights pull a skewed pool toward T ---- */

typedef struct DrawStats
{
	double		rate;			/* label rate */
	double		tv;				/* TV distance of the (a, y) joint to T */
} DrawStats;

static void
joint_a_y(const SlRowSet *rs, const int *rows, int n, double *p)
{
	memset(p, 0, sizeof(double) * 8);
	for (int i = 0; i < n; i++)
	{
		int			r = rows ? rows[i] : i;
		int			a = rs->text[SL_CELL(rs, r, 0)][1] - '0';
		int			y = strcmp(rs->text[SL_CELL(rs, r, 3)], "yes") == 0;

		p[a * 2 + y] += 1.0 / n;
	}
}

static DrawStats
draw_stats(const SlRowSet *S, const int *rows, int n, const double *pT)
{
	double		p[8];
	DrawStats	st = {0, 0};

	joint_a_y(S, rows, n, p);
	for (int k = 0; k < 8; k++)
	{
		st.tv += 0.5 * fabs(p[k] - pT[k]);
		if (k % 2 == 1)
			st.rate += p[k];
	}
	return st;
}

static void
test_skewed_pool(void)
{
	SlTable    *t = td_table("cncc", 3);
	SlRowSet   *T = label_by_a(3000, 51, -1);
	SlRowSet   *S = label_by_a(9000, 52, 0.8);
	int			n = 2000;
	double		pT[8];
	double		rateT = 0;
	SlStage2Options opt;
	SlStage2Result ra,
				ru,
				ra2;
	DrawStats	sa,
				su;

	printf("skewed pool: attribution vs uniform draw\n");
	joint_a_y(T, NULL, T->nrows, pT);
	for (int a = 0; a < 4; a++)
		rateT += pT[a * 2 + 1];
	sl_stage2_default_options(&opt);
	opt.seed = 5;
	sl_stage2_select(t, T, S, n, &opt, &ra);
	sl_stage2_uniform(S->nrows, n, opt.seed, &ru);
	sa = draw_stats(S, ra.chosen, ra.nchosen, pT);
	su = draw_stats(S, ru.chosen, ru.nchosen, pT);
	printf("  T label rate %.3f; attribution %.3f (TV of (a,y) %.3f); "
		   "uniform %.3f (TV %.3f)\n", rateT, sa.rate, sa.tv, su.rate, su.tv);
	printf("  variant %s, ESS %.0f of %d, n_carry %d, clusters %d, "
		   "epochs T %d S %d, total %.2fs\n", ra.variant, ra.ess, S->nrows,
		   ra.n_carry, ra.nclusters, ra.epochs_T, ra.epochs_S, ra.secs_total);
	CHECK(ra.nchosen == n && ru.nchosen == n, "nchosen %d/%d", ra.nchosen, ru.nchosen);
	CHECK(fabs(sa.rate - rateT) + 0.15 < fabs(su.rate - rateT),
		  "label rate not pulled toward T");
	CHECK(sa.tv + 0.15 < su.tv, "a/label contingency not pulled toward T");
	/* no duplicates */
	{
		bool	   *seen = palloc0(sizeof(bool) * S->nrows);
		int			dup = 0;

		for (int i = 0; i < ra.nchosen; i++)
		{
			dup += seen[ra.chosen[i]];
			seen[ra.chosen[i]] = true;
		}
		CHECK(dup == 0, "%d duplicates in the draw", dup);
	}
	/* the whole stage is deterministic for a seed */
	sl_stage2_select(t, T, S, n, &opt, &ra2);
	CHECK(memcmp(ra.chosen, ra2.chosen, sizeof(int) * n) == 0,
		  "select not deterministic");
}

/* ---- 6. degenerate inputs ---- */

static SlStage2Result
run_select(SlTable *t, SlRowSet *T, SlRowSet *S, int n, const char *what)
{
	SlStage2Options opt;
	SlStage2Result res;

	sl_stage2_default_options(&opt);
	opt.max_epochs = 3;
	opt.seed = 9;
	sl_stage2_select(t, T, S, n, &opt, &res);
	printf("  %-28s -> chosen %d, variant \"%s\", fields %d, clusters %d, ESS %.1f\n",
		   what, res.nchosen, res.variant, res.nfields, res.nclusters, res.ess);
	for (int i = 0; i < res.nchosen; i++)
		if (res.chosen[i] < 0 || res.chosen[i] >= S->nrows)
		{
			CHECK(false, "%s: chosen index out of range", what);
			break;
		}
	for (int i = 0; i < res.nfields * res.nfields; i++)
		if (!isfinite(res.interactions[i]))
		{
			CHECK(false, "%s: non-finite interaction", what);
			break;
		}
	for (int i = 0; i < res.ncands; i++)
		if (isnan(res.log_weights[i]))
		{
			CHECK(false, "%s: NaN weight", what);
			break;
		}
	return res;
}

static void
test_degenerate(void)
{
	SlTable    *t = td_table("ccnccn", 5);
	SlStage2Result res;

	printf("degenerate inputs\n");
	{
		SlRowSet   *T = planted_xor(500, 61, 2);
		SlRowSet   *S = planted_xor(300, 62, 2);

		for (int r = 0; r < T->nrows; r++)
			td_int(T, r, 5, 1);
		res = run_select(t, T, S, 100, "one class in T");
		CHECK(strncmp(res.variant, "smoothed: one-class", 19) == 0, "variant %s", res.variant);
		CHECK(res.nchosen == 100, "nchosen %d", res.nchosen);
	}
	{
		SlTable    *t1 = td_table("cn", 1);
		SlRowSet   *T = td_rows(400, 2);
		SlRowSet   *S = td_rows(300, 2);
		pg_prng_state rng;

		pg_prng_seed(&rng, 3);
		for (int r = 0; r < 400; r++)
		{
			int			a = (int) pg_prng_uint64_range(&rng, 0, 3);

			td_cat(T, r, 0, a);
			td_int(T, r, 1, a >= 2);
			if (r < 300)
			{
				td_cat(S, r, 0, (int) pg_prng_uint64_range(&rng, 0, 4));
				td_int(S, r, 1, (int) pg_prng_uint64_range(&rng, 0, 1));
			}
		}
		res = run_select(t1, T, S, 50, "one field");
		CHECK(res.nfields == 1 && res.nclusters == 1 && res.nchosen == 50,
			  "one field");
	}
	{
		SlRowSet   *T = planted_xor(500, 63, 2);
		SlRowSet   *S = planted_xor(300, 64, 2);

		for (int r = 0; r < T->nrows; r++)
		{
			td_null(T, r, 2);
			td_null(T, r, 3);
		}
		for (int r = 0; r < S->nrows; r++)
			td_null(S, r, 3);
		res = run_select(t, T, S, 100, "all-NULL columns");
		CHECK(res.nchosen == 100, "nchosen %d", res.nchosen);
	}
	{
		SlRowSet   *T = planted_xor(500, 65, 2);
		SlRowSet   *S = planted_xor(50, 66, 2);

		res = run_select(t, T, S, 100, "pool smaller than n");
		CHECK(res.nchosen == 50, "nchosen %d", res.nchosen);
	}
	{
		SlRowSet   *T = planted_xor(500, 67, 2);
		SlRowSet   *S = planted_xor(300, 68, 2);

		for (int r = 0; r < T->nrows; r += 7)
			td_num(T, r, 2, r % 3 == 0 ? NAN : (r % 3 == 1 ? INFINITY : -INFINITY));
		for (int r = 0; r < S->nrows; r += 5)
			td_num(S, r, 4, r % 3 == 0 ? NAN : (r % 3 == 1 ? INFINITY : -INFINITY));
		res = run_select(t, T, S, 100, "NaN and +-Inf in floats");
		CHECK(res.nchosen == 100, "nchosen %d", res.nchosen);
	}
	{
		SlTable    *t0 = td_table("ccnccn", -1);
		SlRowSet   *T = planted_xor(500, 69, 2);
		SlRowSet   *S = planted_xor(300, 70, 2);

		res = run_select(t0, T, S, 100, "no label column");
		CHECK(strncmp(res.variant, "smoothed: label-free", 20) == 0, "variant %s", res.variant);
		CHECK(res.nchosen == 100, "nchosen %d", res.nchosen);
	}
	{
		SlTable    *tl = td_table("c", 0);
		SlRowSet   *T = td_rows(20, 1);
		SlRowSet   *S = td_rows(30, 1);

		for (int r = 0; r < 20; r++)
			td_int(T, r, 0, r % 2);
		for (int r = 0; r < 30; r++)
			td_int(S, r, 0, r % 3 == 0);
		res = run_select(tl, T, S, 10, "label is the only column");
		CHECK(res.nfields == 0 && res.nchosen == 10, "no fields");
	}
	{
		SlRowSet   *T = planted_xor(500, 71, 2);
		SlRowSet   *S = planted_xor(0, 72, 2);

		res = run_select(t, T, S, 100, "empty pool");
		CHECK(res.nchosen == 0, "nchosen %d", res.nchosen);
	}
	{
		SlRowSet   *T = planted_xor(2, 73, 2);
		SlRowSet   *S = planted_xor(30, 74, 2);

		td_int(T, 0, 5, 0);
		td_int(T, 1, 5, 1);
		res = run_select(t, T, S, 10, "two seed rows");
		CHECK(res.nchosen == 10, "nchosen %d", res.nchosen);
	}
	{
		SlRowSet   *T = planted_xor(1, 75, 2);
		SlRowSet   *S = planted_xor(30, 76, 2);

		res = run_select(t, T, S, 10, "one seed row");
		CHECK(res.nchosen == 10, "nchosen %d", res.nchosen);
	}
	{
		SlRowSet   *T = planted_xor(500, 77, 2);
		SlRowSet   *S = planted_xor(300, 78, 2);

		for (int r = 0; r < S->nrows; r += 3)
			td_null(S, r, 5);
		for (int r = 1; r < S->nrows; r += 3)
			td_int(S, r, 5, 7);
		res = run_select(t, T, S, 100, "NULL and unseen labels in S");
		CHECK(res.nchosen == 100, "nchosen %d", res.nchosen);
		for (int r = 0; r < S->nrows; r++)
			td_null(S, r, 5);
		res = run_select(t, T, S, 100, "no labeled candidate");
		CHECK(strstr(res.variant, "no candidate") != NULL, "variant %s", res.variant);
	}
	{
		SlRowSet   *T = planted_xor(200, 79, 2);
		SlRowSet   *S = planted_xor(30, 80, 2);
		sigjmp_buf	jb;
		volatile bool errored = false;

		for (int r = 0; r < T->nrows; r++)
			td_int(T, r, 5, r);
		if (sigsetjmp(jb, 0) == 0)
		{
			shim_error_jmp = &jb;
			res = run_select(t, T, S, 10, "200 label classes");
		}
		else
			errored = true;
		shim_error_jmp = NULL;
		CHECK(errored, "too many classes did not raise an error");
	}
	{
		/* multi-class end to end */
		SlRowSet   *T = planted_xor(1000, 81, 3);
		SlRowSet   *S = planted_xor(600, 82, 3);

		res = run_select(t, T, S, 200, "three classes");
		CHECK(res.nchosen == 200 && strcmp(res.variant, "smoothed: label") == 0, "3 classes");
	}
}

/* ---- dump for bench/check_attribution_torch.py ---- */


static void
dump_case(const char *dir, int nclasses)
{
	SlTable    *t = td_table("ccnccn", 5);
	SlRowSet   *T = planted_xor(2000, 91, nclasses);
	SlFieldSet *fs = sl_fields_fit(t, T, 10, 1000);
	int32	   *codes = sl_fields_encode(fs, T);
	SlLabelEncoder *le = sl_label_fit(t, T);
	int		   *y = sl_label_encode(le, T);
	SlStage2Options opt;
	SlModel    *m,
			   *mf;
	SlTrainInfo info;
	int			n = 64;
	int			steps = 6;
	int			F = fs->nfields;
	double	   *Md = palloc(sizeof(double) * F * F);
	double	   *Mf = palloc(sizeof(double) * F * F);
	double	   *params;
	FILE	   *meta;
	char		path[1024];

	sl_stage2_default_options(&opt);
	opt.max_epochs = 5;
	m = sl_model_create(fs, nclasses, 16, NULL, true, 17);
	sl_model_train(m, codes, y, T->nrows, &opt, 18, &info);
	mf = sl_model_copy(m, false);
	sl_attribution_ih(m, codes, n, steps, Md);
	sl_attribution_ih(mf, codes, n, steps, Mf);
	params = palloc(sizeof(double) * m->nparams);
	for (int64 i = 0; i < m->nparams; i++)
		params[i] = sl_model_get_param(m, i);
	mkdir(dir, 0755);
	write_file(dir, "params.f64", params, sizeof(double) * m->nparams);
	write_file(dir, "codes.i32", codes, sizeof(int32) * n * F);
	write_file(dir, "y.i32", y, sizeof(int32) * n);
	write_file(dir, "code_off.i32", m->code_off, sizeof(int) * (F + 1));
	write_file(dir, "M_double.f64", Md, sizeof(double) * F * F);
	write_file(dir, "M_float.f64", Mf, sizeof(double) * F * F);
	snprintf(path, sizeof(path), "%s/meta.txt", dir);
	meta = fopen(path, "w");
	fprintf(meta, "nfields %d\nembed_dim %d\nnclasses %d\nnout %d\nncodes %d\n"
			"nparams %ld\nh1 %d\nh2 %d\nh3 %d\nsteps %d\nnrows %d\n",
			F, m->embed_dim, m->nclasses, m->nout, m->ncodes, (long) m->nparams,
			m->width[1], m->width[2], m->width[3], steps, n);
	fclose(meta);
	printf("dumped %d-class model and IH matrices to %s\n", nclasses, dir);
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "--dump") == 0)
	{
		char		sub[1024];

		mkdir(argv[2], 0755);
		snprintf(sub, sizeof(sub), "%s/binary", argv[2]);
		dump_case(sub, 2);
		snprintf(sub, sizeof(sub), "%s/multi", argv[2]);
		dump_case(sub, 3);
		return 0;
	}
	test_gradcheck(2);
	test_gradcheck(3);
	test_ih_fd(2);
	test_ih_fd(3);
	test_determinism();
	test_planted();
	test_skewed_pool();
	test_degenerate();
	printf("%ld gemm calls, none with a zero dimension\n", (long) shim_gemm_calls);
	if (failures)
	{
		printf("%d FAILED\n", failures);
		return 1;
	}
	printf("all stage 2 unit tests passed\n");
	return 0;
}
