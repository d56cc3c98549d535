/*-------------------------------------------------------------------------
 *
 * test_novelty.c
 *	  Unit tests of the default estimator's novelty guard
 *	  (stage2_novelty.c), without a server (make check).
 *
 * Seeds: four standard normal columns and a label that follows the first.
 * The near-copy pool is mostly seeds with a small perturbation (what the
 * test simulator and a perturbing LLM write); the far pool is fresh rows
 * from a wider distribution.  The guard must bring the drawn rows' share of
 * near-copies to at most half while keeping the label shares, and leave the
 * far pool's weights untouched.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "evaluate.h"
#include "pg_shim.h"
#include "stage2.h"
#include "test_data.h"

/* a failed condition prints itself */
#define EXPECT(cond) CHECK(cond, "%s", #cond)
#define EXPECT_CLOSE(a, b, tol) \
	CHECK(fabs((a) - (b)) <= (tol), "%s = %.12g, expected %.12g", #a, (double) (a), (double) (b))

#define NCOLS 5					/* x0..x3, y */

static double
gauss(pg_prng_state *rng)
{
	double		u = pg_prng_double(rng);
	double		v = pg_prng_double(rng);

	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static void
fresh_row(SlRowSet *rs, int r, pg_prng_state *rng, double scale)
{
	double		x0 = scale * gauss(rng);

	td_num(rs, r, 0, x0);
	for (int c = 1; c < 4; c++)
		td_num(rs, r, c, scale * gauss(rng));
	td_text(rs, r, 4, pg_prng_double(rng) < 1.0 / (1.0 + exp(-2.0 * x0)) ? "yes" : "no");
}

static SlRowSet *
seed_rows(int n, uint64 seed)
{
	SlRowSet   *rs = td_rows(n, NCOLS);
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
		fresh_row(rs, r, &rng, 1.0);
	return rs;
}

/*
 * n candidates: a share copy_share of them a random seed plus N(0, 0.02)
 * noise (the seed's label), the rest fresh rows of spread scale
 */
static SlRowSet *
pool_rows(const SlRowSet *T, int n, double copy_share, double scale, uint64 seed)
{
	SlRowSet   *rs = td_rows(n, NCOLS);
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
	{
		if (pg_prng_double(&rng) < copy_share)
		{
			int			s = (int) pg_prng_uint64_range(&rng, 0, T->nrows - 1);

			for (int c = 0; c < 4; c++)
				td_num(rs, r, c, T->num[SL_CELL(T, s, c)] + 0.02 * gauss(&rng));
			td_text(rs, r, 4, T->text[SL_CELL(T, s, 4)]);
		}
		else
			fresh_row(rs, r, &rng, scale);
	}
	return rs;
}

/* per candidate: closer than tau to a seed (all seeds: nT < the guard's sample) */
static bool *
close_of(const SlTable *t, const SlRowSet *T, const SlRowSet *S, double tau)
{
	SlEncoder  *enc = sl_encoder_fit(t, T, SL_EVAL_MAX_CATEGORIES);
	int			dim = sl_encoder_dim(enc);
	double	   *R = sl_encoder_apply(enc, T);
	double	   *X = sl_encoder_apply(enc, S);
	double	   *d = palloc(sizeof(double) * S->nrows);
	bool	   *close = palloc(sizeof(bool) * S->nrows);

	sl_eval_dcr_min(X, S->nrows, R, T->nrows, dim, false, d);
	for (int i = 0; i < S->nrows; i++)
		close[i] = d[i] < tau;
	return close;
}

static int *
labels_of(const SlRowSet *S)
{
	int		   *y = palloc(sizeof(int) * S->nrows);

	for (int i = 0; i < S->nrows; i++)
		y[i] = strcmp(S->text[SL_CELL(S, i, 4)], "yes") == 0;
	return y;
}

/* weights favouring "yes" 2:1 and varying within the class, as stage 2's */
static double *
some_logw(const SlRowSet *S, const int *y)
{
	double	   *logw = palloc(sizeof(double) * S->nrows);

	for (int i = 0; i < S->nrows; i++)
		logw[i] = (y[i] ? log(2.0) : 0.0) + 0.3 * S->num[SL_CELL(S, i, 1)];
	return logw;
}

static double
share(const double *logw, int n, const bool *sel, const int *y, int cls)
{
	double		num = 0,
				den = 0;

	for (int i = 0; i < n; i++)
	{
		if (cls >= 0 && y[i] != cls)
			continue;
		den += exp(logw[i]);
		if (sel == NULL ? y[i] == 1 : sel[i])
			num += exp(logw[i]);
	}
	return num / den;
}

/*
 * 1. near-copies: engaged; n = 0 (weights alone): the close share of the
 * weight to cap, the class shares of the weight kept exactly; n > 0: the
 * drawn rows' close share to at most 1/2 where the pool has enough far
 * candidates of each class, and as low as it can where it has not, with the
 * drawn label shares kept either way
 */
static void
test_near_copies(int ncands, double copy_share, bool feasible)
{
	SlTable    *t = td_table("nnnnc", 4);
	SlRowSet   *T = seed_rows(300, 1);
	SlRowSet   *S = pool_rows(T, ncands, copy_share, 1.5, 2);
	int		   *y = labels_of(S);
	double	   *before = some_logw(S, y);
	double	   *logw = some_logw(S, y);
	double	   *plain = some_logw(S, y);
	SlNoveltyInfo info;
	bool	   *close;
	int			n = ncands / 3;
	int		   *chosen = palloc(sizeof(int) * n);
	int			got;
	double		ess;
	double		drawn_close = 0,
				drawn_yes = 0,
				plain_close = 0,
				plain_yes = 0;

	/* n = 0 */
	sl_novelty_guard(t, T, S, y, 0, SL_NOVELTY_RATIO, SL_NOVELTY_CAP, 7, logw, &info);
	close = close_of(t, T, S, info.tau);
	EXPECT(info.tau > 0);
	EXPECT(info.full);
	EXPECT_CLOSE(share(before, ncands, close, y, -1), info.close_before, 1e-9);
	EXPECT(info.close_before > 0.6);
	EXPECT(info.beta < 1.0);
	EXPECT_CLOSE(share(logw, ncands, close, y, -1), info.close_after, 1e-9);
	for (int k = 0; k < 2; k++)
		EXPECT(share(logw, ncands, close, y, k) <= SL_NOVELTY_CAP + 1e-9);
	EXPECT_CLOSE(share(logw, ncands, NULL, y, -1), share(before, ncands, NULL, y, -1), 1e-9);

	/* n > 0: the drawn rows, as stage 2 draws them, with and without */
	memcpy(logw, before, sizeof(double) * ncands);
	sl_novelty_guard(t, T, S, y, n, SL_NOVELTY_RATIO, SL_NOVELTY_CAP, 7, logw, &info);
	ess = sl_weights_normalize(logw, ncands, &got);
	got = sl_draw_pps(logw, ncands, n, 11, chosen, NULL);
	EXPECT(got == n);
	for (int i = 0; i < got; i++)
	{
		drawn_close += close[chosen[i]];
		drawn_yes += y[chosen[i]];
	}
	drawn_close /= got;
	drawn_yes /= got;
	sl_weights_normalize(plain, ncands, &got);
	got = sl_draw_pps(plain, ncands, n, 11, chosen, NULL);
	for (int i = 0; i < got; i++)
	{
		plain_close += close[chosen[i]];
		plain_yes += y[chosen[i]];
	}
	plain_close /= got;
	plain_yes /= got;
	printf("  %d candidates, %.0f%% near-copies, n %d: tau %.3f, close share %.3f (beta %.3g), "
		   "drawn close %.3f -> %.3f (expected %.3f), yes %.3f -> %.3f (weights %.3f), ESS %.0f\n",
		   ncands, 100 * copy_share, n, info.tau, info.close_before, info.beta,
		   plain_close, drawn_close, info.drawn_close, plain_yes, drawn_yes,
		   share(before, ncands, NULL, y, -1), ess);
	/* the weights are the inclusion probabilities: ESS at least the far rows drawn */
	EXPECT(ess >= n * (1 - info.drawn_close));
	if (feasible)
	{
		EXPECT(info.drawn_close <= SL_NOVELTY_CAP + 1e-6);
		EXPECT(drawn_close <= 0.5);
	}
	else
		EXPECT(drawn_close < plain_close - 0.1);
	/* the label part's class shares, which each class's quota follows */
	EXPECT_CLOSE(drawn_yes, share(before, ncands, NULL, y, -1), 0.03);
}

/* 2. far candidates: the guard measures and leaves every weight as it was */
static void
test_far(int ncands)
{
	SlTable    *t = td_table("nnnnc", 4);
	SlRowSet   *T = seed_rows(300, 1);
	SlRowSet   *S = pool_rows(T, ncands, 0.0, 2.0, 3);
	int		   *y = labels_of(S);
	double	   *logw = some_logw(S, y);
	double	   *before = palloc(sizeof(double) * ncands);
	SlNoveltyInfo info;
	bool		same = true;

	memcpy(before, logw, sizeof(double) * ncands);
	sl_novelty_guard(t, T, S, y, ncands / 3, SL_NOVELTY_RATIO, SL_NOVELTY_CAP, 7, logw, &info);
	for (int i = 0; i < ncands; i++)
		same &= logw[i] == before[i];
	printf("  %d far candidates: tau %.3f, close share %.3f (%s), beta %.3f\n",
		   ncands, info.tau, info.close_before, info.full ? "all measured" : "probe",
		   info.beta);
	EXPECT(info.tau > 0);
	EXPECT(info.close_before < SL_NOVELTY_CAP);
	EXPECT(info.beta == 1.0);
	EXPECT(same);
	/* more than the probe: the probe alone decides */
	if (ncands > 2000)
		EXPECT(!info.full);
}

/* 3. ratio 0 disables it; the same call twice gives the same weights */
static void
test_off_and_deterministic(void)
{
	SlTable    *t = td_table("nnnnc", 4);
	SlRowSet   *T = seed_rows(300, 1);
	SlRowSet   *S = pool_rows(T, 3000, 0.8, 1.0, 2);
	int		   *y = labels_of(S);
	double	   *a = some_logw(S, y);
	double	   *b = some_logw(S, y);
	double	   *c = some_logw(S, y);
	SlNoveltyInfo info;
	bool		same = true,
				off = true;

	sl_novelty_guard(t, T, S, y, 1000, 0.0, SL_NOVELTY_CAP, 7, a, &info);
	EXPECT(info.tau == 0 && info.beta == 1.0);
	sl_novelty_guard(t, T, S, y, 1000, SL_NOVELTY_RATIO, SL_NOVELTY_CAP, 7, b, &info);
	sl_novelty_guard(t, T, S, y, 1000, SL_NOVELTY_RATIO, SL_NOVELTY_CAP, 7, c, &info);
	for (int i = 0; i < S->nrows; i++)
	{
		same &= b[i] == c[i];
		off &= a[i] == some_logw(S, y)[i];
	}
	EXPECT(same);
	EXPECT(off);
}

int
main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_near_copies(1500, 0.6, true);
	test_near_copies(6000, 0.6, true);
	test_near_copies(1500, 0.9, false);
	test_far(1500);
	test_far(6000);
	test_off_and_deterministic();
	if (failures)
	{
		printf("%d FAILED\n", failures);
		return 1;
	}
	printf("all novelty guard unit tests passed\n");
	return 0;
}
