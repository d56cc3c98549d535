/*-------------------------------------------------------------------------
 *
 * test_backoff.c
 *	  Unit tests of stage 2's default estimator (stage2_backoff.c) against
 *	  the paper's, without a server (make check).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "pg_shim.h"
#include "stage2.h"
#include "test_data.h"

/*
 * Four categorical fields a b c d in 10 levels each, all tied together
 * (b = a + noise, c = b + noise, d = c + noise, noise 0..2, mod 10: 270
 * tuples), and a label that follows a: P(yes | a) = 0.1 + 0.06 a.
 * pool_rate >= 0: the LLM-like pool, with the label at that rate whatever a
 * is and, for a fifth of the rows, d drawn on its own (a broken relation).
 * Columns a b c d y.
 */
static SlRowSet *
chain(int n, uint64 seed, double pool_rate)
{
	SlRowSet   *rs = td_rows(n, 5);
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
	{
		int			a = (int) pg_prng_uint64_range(&rng, 0, 9);
		int			b = (a + (int) pg_prng_uint64_range(&rng, 0, 2)) % 10;
		int			c = (b + (int) pg_prng_uint64_range(&rng, 0, 2)) % 10;
		int			d = (c + (int) pg_prng_uint64_range(&rng, 0, 2)) % 10;
		double		p = pool_rate >= 0 ? pool_rate : 0.1 + 0.06 * a;

		if (pool_rate >= 0 && pg_prng_double(&rng) < 0.2)
			d = (int) pg_prng_uint64_range(&rng, 0, 9);

		td_cat(rs, r, 0, a);
		td_cat(rs, r, 1, b);
		td_cat(rs, r, 2, c);
		td_cat(rs, r, 3, d);
		td_text(rs, r, 4, pg_prng_double(&rng) < p ? "yes" : "no");
	}
	return rs;
}

static double
ess_of(const double *logw, int n)
{
	double		s = 0,
				s2 = 0;

	for (int i = 0; i < n; i++)
	{
		s += exp(logw[i]);
		s2 += exp(2 * logw[i]);
	}
	return s * s / s2;
}

/* 1. the feature part: graceful on unseen tuples, exact when T = S */
static void
test_feature_part(void)
{
	SlTable    *t = td_table("ccccc", 4);
	SlRowSet   *T = chain(300, 1, -1);
	SlRowSet   *S = chain(3000, 2, 0.5);
	SlFieldSet *fs = sl_fields_fit(t, T, 10, 1000);
	int32	   *cT = sl_fields_encode(fs, T);
	int32	   *cS = sl_fields_encode(fs, S);
	int			cluster[4] = {0, 0, 0, 0};
	double	   *wb = palloc0(sizeof(double) * S->nrows);
	double	   *wp = palloc0(sizeof(double) * S->nrows);
	double	   *wself = palloc0(sizeof(double) * T->nrows);
	int			unseen = 0;
	int			nonfinite = 0;
	double		minb = INFINITY,
				minp = INFINITY,
				maxself = 0;

	printf("back-off feature part: one 4-field cluster, 300 seeds, 3,000 candidates\n");
	sl_backoff_feature_part(fs, NULL, cT, T->nrows, cS, S->nrows, cluster, 1, wb);
	sl_weights_feature_part(fs, cT, T->nrows, cS, S->nrows, cluster, 1, wp);
	for (int i = 0; i < S->nrows; i++)
	{
		if (wp[i] < -30)
			unseen++;
		minb = Min(minb, wb[i]);
		minp = Min(minp, wp[i]);
		nonfinite += !isfinite(wb[i]);
	}
	CHECK(nonfinite == 0, "%d back-off weights not finite", nonfinite);
	printf("  candidates with a tuple the seeds lack: %d; lowest log-weight paper %.1f, back-off %.1f\n",
		   unseen, minp, minb);
	CHECK(unseen > 100, "the fixture should have unseen tuples (%d)", unseen);
	/* the paper's rule: 1e-20; the back-off: a probability near the rare tuples' */
	CHECK(minp < -40, "paper's unseen tuple not at ~log(1e-20): %.1f", minp);
	CHECK(minb > -8, "back-off gives an unseen tuple %.1f", minb);

	/*
	 * A tuple the seeds lack but made of common values weighs more than one
	 * made of values the seeds show rarely (the back-off's product).
	 */
	{
		double		common = 0,
					rare = 0;
		int			nc = 0,
					nr = 0;

		for (int i = 0; i < S->nrows; i++)
		{
			const int32 *r = cS + (size_t) i * 4;

			if (wp[i] >= -30)
				continue;
			/* d - c beyond 2 is a broken chain: never in T */
			if (((r[3] - r[2] + 10) % 10) <= 2)
				common += wb[i], nc++;
			else
				rare += wb[i], nr++;
		}
		if (nc > 0 && nr > 0)
			CHECK(common / nc > rare / nr, "unseen tuples all alike (%.2f vs %.2f)",
				  common / nc, rare / nr);
	}

	/* T against itself: every ratio is exactly 1 */
	sl_backoff_feature_part(fs, NULL, cT, T->nrows, cT, T->nrows, cluster, 1, wself);
	for (int i = 0; i < T->nrows; i++)
		maxself = Max(maxself, fabs(wself[i]));
	CHECK(maxself < 1e-12, "T against itself: |log w| up to %g", maxself);
}

/* 2. the label part: bounded by the shrinkage */
static void
test_label_part(void)
{
	double		lpT[3] = {log(1e-12), log(0.999), log(0.5)};
	double		lpS[3] = {log(0.999), log(1e-12), log(0.5)};
	int			y[3] = {1, 1, -1};
	double		rT[2] = {0.7, 0.3};
	double		rS[2] = {0.5, 0.5};
	double		w[3] = {0, 0, 0};
	double		b[3] = {0, 0, 0};
	double		bound = log((0.9 + 0.1 * 0.5) / (0.1 * 0.5));

	printf("back-off label part\n");
	sl_backoff_label_part(lpT, lpS, y, 3, rT, rS, 2, 0.1, 0.01, b, w);
	for (int i = 0; i < 3; i++)
		w[i] += b[i];
	printf("  log-weights %.2f %.2f %.2f (paper's unclipped: %.1f)\n", w[0], w[1], w[2],
		   log(1e-12) - log(0.999));
	CHECK(w[0] < 0 && w[1] > 0, "signs");
	CHECK(fabs(w[0]) < bound + 1 && fabs(w[1]) < bound + 1, "not bounded by the shrinkage");
	CHECK(fabs(w[2] - log(0.01)) < 1e-12, "unknown label: the floor");

	/*
	 * Models that learned nothing (the same probability everywhere): the
	 * label rates alone set the weights, T's over S's.
	 */
	{
		double		flatT[4],
					flatS[4],
					w4[4] = {0, 0, 0, 0},
					b4[4] = {0, 0, 0, 0};
		int			y4[4] = {0, 1, 1, 0};

		for (int i = 0; i < 4; i++)
			flatT[i] = flatS[i] = log(0.5);
		sl_backoff_label_part(flatT, flatS, y4, 4, rT, rS, 2, 0.1, 0.01, b4, w4);
		for (int i = 0; i < 4; i++)
			w4[i] += b4[i];
		CHECK(fabs(w4[0] - log(0.7 / 0.5)) < 1e-12 && fabs(w4[1] - log(0.3 / 0.5)) < 1e-12,
			  "flat models: %.4f %.4f, not the rate ratios", w4[0], w4[1]);
	}
}

/* 3. tempering hits the ESS target and no more */
static void
test_temper(void)
{
	int			n = 5000;
	double	   *w = palloc(sizeof(double) * n);
	double	   *w2 = palloc(sizeof(double) * n);
	pg_prng_state rng;
	double		lam,
				before,
				after;

	printf("tempering to an ESS target\n");
	pg_prng_seed(&rng, 3);
	for (int i = 0; i < n; i++)
		w[i] = 4 * td_normal(&rng);
	memcpy(w2, w, sizeof(double) * n);
	before = ess_of(w, n);
	lam = sl_backoff_temper(NULL, w, n, 1000, NULL, 0, NULL);
	after = ess_of(w, n);
	printf("  ESS %.0f -> %.0f at exponent %.3f (target 1000)\n", before, after, lam);
	CHECK(before < 1000, "fixture");
	CHECK(lam > 0 && lam < 1, "exponent %.3f", lam);
	CHECK(after >= 1000 && after < 1010, "ESS %.1f not at the target", after);
	/* already above the target: untouched */
	lam = sl_backoff_temper(NULL, w2, n, 5, NULL, 0, NULL);
	CHECK(lam == 1, "exponent %.3f for a target already met", lam);
	/* target 0: untouched */
	CHECK(sl_backoff_temper(NULL, w2, n, 0, NULL, 0, NULL) == 1, "target 0");

	/* a base (the class shares) is kept whole; only the rest is tempered */
	{
		double	   *base = palloc(sizeof(double) * n);
		double	   *w3 = palloc(sizeof(double) * n);
		double	   *orig = palloc(sizeof(double) * n);
		double		worst = 0;

		pg_prng_seed(&rng, 8);
		for (int i = 0; i < n; i++)
		{
			base[i] = (i % 2) ? log(0.25) : log(1.75);
			orig[i] = w3[i] = 4 * td_normal(&rng);
		}
		lam = sl_backoff_temper(base, w3, n, 1000, NULL, 0, NULL);
		for (int i = 0; i < n; i++)
			worst = Max(worst, fabs(w3[i] - (base[i] + lam * orig[i])));
		printf("  with class shares: exponent %.3f, ESS %.0f\n", lam, ess_of(w3, n));
		CHECK(lam > 0 && lam < 1, "exponent %.3f with a base", lam);
		CHECK(ess_of(w3, n) >= 1000, "ESS with a base below the target");
		CHECK(worst < 1e-9, "not base + lambda w (off by %g)", worst);
	}
}

/*
 * 4. end to end on scarce seeds: 300 seeds, a pool with the label at 0.7
 * regardless of a.  The default pulls the label rate to T's as the paper
 * does, while keeping the weight spread (ESS >= the target).
 */
static void
test_scarce_seeds(void)
{
	SlTable    *t = td_table("ccccc", 4);
	SlRowSet   *T = chain(300, 11, -1);
	SlRowSet   *S = chain(3000, 12, 0.7);
	int			n = 1000;
	SlStage2Options opt;
	SlStage2Result rb,
				rp;
	double		rateT = 0,
				rateB = 0,
				rateP = 0,
				rateU = 0;

	printf("scarce seeds: default vs paper\n");
	for (int i = 0; i < T->nrows; i++)
		rateT += strcmp(T->text[SL_CELL(T, i, 4)], "yes") == 0;
	rateT /= T->nrows;
	for (int i = 0; i < S->nrows; i++)
		rateU += strcmp(S->text[SL_CELL(S, i, 4)], "yes") == 0;
	rateU /= S->nrows;
	sl_stage2_default_options(&opt);
	opt.seed = 4;
	opt.max_epochs = 30;
	opt.ess_target = n;

	/*
	 * The tempering is what is measured here: the novelty guard acts after
	 * it and may lower the ESS (here 419 with it, 1000 without: the weights
	 * favour the candidates on the seeds' own tuples); test_novelty.c tests
	 * the guard
	 */
	opt.novelty = 0;
	sl_stage2_select(t, T, S, n, &opt, &rb);
	opt.estimator = SL_ESTIMATOR_PAPER;
	sl_stage2_select(t, T, S, n, &opt, &rp);
	for (int i = 0; i < n; i++)
	{
		rateB += strcmp(S->text[SL_CELL(S, rb.chosen[i], 4)], "yes") == 0;
		rateP += strcmp(S->text[SL_CELL(S, rp.chosen[i], 4)], "yes") == 0;
	}
	rateB /= n;
	rateP /= n;
	printf("  label rate T %.3f, pool %.3f, paper %.3f (ESS %.0f), default %.3f (ESS %.0f, exponent %.2f)\n",
		   rateT, rateU, rateP, rp.ess, rateB, rb.ess, rb.temper);
	printf("  variants \"%s\", \"%s\"\n", rb.variant, rp.variant);
	CHECK(strncmp(rb.variant, "smoothed: ", 10) == 0, "default variant %s", rb.variant);
	CHECK(strncmp(rp.variant, "paper: ", 7) == 0, "paper variant %s", rp.variant);
	CHECK(fabs(rateB - rateT) < 0.5 * fabs(rateU - rateT),
		  "default did not halve the label-rate error");
	CHECK(rb.ess >= n - 1, "default ESS %.0f below the target %d", rb.ess, n);
	CHECK(rb.ess > rp.ess, "default ESS %.0f not above the paper's %.0f", rb.ess, rp.ess);
}

/*
 * 5. the proportional-to-size draw: inclusion probabilities min(1, c w),
 * exactly n distinct rows.  20 heavy candidates (w = 10) and 180 light ones
 * (w = 1), n = 40: c w of a heavy one is above 1, so each is always taken,
 * and the 20 other rows spread over the light ones (1/9 each).  Successive
 * sampling (the paper's draw) misses heavy ones now and then.
 */
static void
test_pps(void)
{
	int			N = 200,
				n = 40,
				reps = 400;
	double	   *lw = palloc(sizeof(double) * N);
	int		   *chosen = palloc(sizeof(int) * n);
	bool	   *seen = palloc(sizeof(bool) * N);
	double		heavy = 0,
				heavy_gumbel = 0;
	int			bad = 0;

	printf("proportional-to-size draw\n");
	for (int i = 0; i < N; i++)
		lw[i] = i < 20 ? log(10.0) : 0;
	for (int r = 0; r < reps; r++)
	{
		int			got = sl_draw_pps(lw, N, n, 1000 + r, chosen, NULL);

		memset(seen, 0, sizeof(bool) * N);
		for (int k = 0; k < got; k++)
		{
			bad += seen[chosen[k]] || chosen[k] < 0 || chosen[k] >= N;
			seen[chosen[k]] = true;
			heavy += chosen[k] < 20;
		}
		bad += got != n;
		got = sl_draw_gumbel_topk(lw, N, n, 1000 + r, chosen);
		for (int k = 0; k < got; k++)
			heavy_gumbel += chosen[k] < 20;
	}
	heavy /= reps;
	heavy_gumbel /= reps;
	printf("  heavy rows per draw: %.2f of 20 (successive sampling: %.2f)\n", heavy,
		   heavy_gumbel);
	CHECK(bad == 0, "%d draws with a duplicate, a bad index or the wrong count", bad);
	CHECK(heavy == 20, "heavy rows %.2f, not always all 20", heavy);
	CHECK(heavy_gumbel < 19.9, "fixture: successive sampling should miss some (%.2f)",
		  heavy_gumbel);
	/* zero weights: never drawn while others remain */
	for (int i = 0; i < N; i++)
		lw[i] = i < 100 ? 0 : -INFINITY;
	sl_draw_pps(lw, N, n, 7, chosen, NULL);
	for (int k = 0; k < n; k++)
		CHECK(chosen[k] < 100, "a zero-weight row drawn");
}

/*
 * Tempering with the class totals set: after sl_backoff_temper with y, each
 * class's share of the labelled weight is rateT's, unlabelled candidates
 * keep their weight relative to the labelled total, and the ESS of the
 * final weights (not of the weights before the shares were set) meets the
 * target.
 */
static void
test_class_shares(void)
{
	int			N = 3000;
	double	   *lw = palloc(sizeof(double) * N);
	double	   *base = palloc(sizeof(double) * N);
	int		   *y = palloc(sizeof(int) * N);
	double		rateT[3] = {0.1, 0.2, 0.7};
	double		tot[3] = {0, 0, 0};
	double		lab = 0,
				s = 0,
				s2 = 0,
				worst = 0,
				lam;
	pg_prng_state rng;

	printf("class shares after tempering\n");
	pg_prng_seed(&rng, 9);
	for (int i = 0; i < N; i++)
	{
		y[i] = (i % 20 == 0) ? -1 : (int) (pg_prng_uint64(&rng) % 3);
		/* the feature part favours class 2's rows: shares drift without the fix */
		lw[i] = 3.0 * pg_prng_double(&rng) + (y[i] == 2 ? 1.5 : 0);
		base[i] = y[i] == 0 ? log(2.0) : 0;
	}
	lam = sl_backoff_temper(base, lw, N, 1500, y, 3, rateT);
	for (int i = 0; i < N; i++)
	{
		double		w = exp(lw[i]);

		s += w;
		s2 += w * w;
		if (y[i] >= 0)
		{
			tot[y[i]] += w;
			lab += w;
		}
	}
	for (int k = 0; k < 3; k++)
		worst = Max(worst, fabs(tot[k] / lab - rateT[k]));
	printf("  exponent %.3f, ESS %.0f (target 1500), largest class share error %.2g\n",
		   lam, s * s / s2, worst);
	CHECK(worst < 1e-9, "class shares off by %.3g", worst);
	CHECK(s * s / s2 >= 1500 - 1e-6, "ESS %.1f below the target after the shares", s * s / s2);
	CHECK(lam > 0 && lam < 1, "fixture: the target should bind (exponent %.3f)", lam);
}

/*
 * The default's draw keyed by label: each class's count is the sum of its
 * inclusion probabilities to within one, where the random order alone
 * leaves a binomial spread.  1,500 candidates, 3 classes of unequal random
 * weights, n = 500, 200 seeds of the draw.
 */
static void
test_pps_key(void)
{
	int			N = 1500,
				n = 500,
				reps = 200;
	double	   *lw = palloc(sizeof(double) * N);
	int		   *key = palloc(sizeof(int) * N);
	int		   *chosen = palloc(sizeof(int) * n);
	double		expect[3] = {0, 0, 0};
	double		worst_key = 0,
				worst_plain = 0;
	pg_prng_state rng;
	double		sum = 0;

	printf("proportional-to-size draw keyed by label\n");
	pg_prng_seed(&rng, 42);
	for (int i = 0; i < N; i++)
	{
		key[i] = (i % 10 == 0) ? -1 : (int) (pg_prng_uint64(&rng) % 3);
		lw[i] = (key[i] == 2 ? 1.0 : 0.0) + 0.5 * pg_prng_double(&rng);
		sum += exp(lw[i]);
	}
	/* no weight above 1 / n of the total here: pi_i = n w_i / sum w */
	for (int i = 0; i < N; i++)
		if (key[i] >= 0)
			expect[key[i]] += n * exp(lw[i]) / sum;
	for (int r = 0; r < reps; r++)
	{
		for (int pass = 0; pass < 2; pass++)
		{
			int			cnt[3] = {0, 0, 0};
			int			got = sl_draw_pps(lw, N, n, 500 + r, chosen, pass ? key : NULL);

			for (int k = 0; k < got; k++)
				if (key[chosen[k]] >= 0)
					cnt[key[chosen[k]]]++;
			for (int c = 0; c < 3; c++)
			{
				double		dev = fabs(cnt[c] - expect[c]);

				if (pass)
					worst_key = Max(worst_key, dev);
				else
					worst_plain = Max(worst_plain, dev);
			}
		}
	}
	printf("  largest |class count - expected| over %d draws: keyed %.2f, random order %.2f\n",
		   reps, worst_key, worst_plain);
	CHECK(worst_key <= 1.0, "keyed draw: a class count %.2f from its expectation", worst_key);
	CHECK(worst_plain > 3.0, "fixture: the random order should spread the counts (%.2f)",
		  worst_plain);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_feature_part();
	test_label_part();
	test_temper();
	test_scarce_seeds();
	test_pps();
	test_class_shares();
	test_pps_key();
	if (failures)
	{
		printf("%d FAILED\n", failures);
		return 1;
	}
	printf("all back-off estimator unit tests passed\n");
	return 0;
}
