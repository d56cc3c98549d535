/*-------------------------------------------------------------------------
 *
 * test_stage2_terms.c
 *	  Unit tests of each term of stage 2's importance weight, through the
 *	  public interface (sl_stage2_select, sl_weights_*): make check.
 *
 * Each test is built so that exactly one term can correct the pool:
 *	- joint:   the pool skews the JOINT of two linked fields while every
 *			   marginal and the label rate equal T's; only the cluster
 *			   density ratio log p_T(x_C) - log p_S(x_C) can pull it back
 *	- 3-class: the pool skews a three-class label against a field; only a
 *			   label term that uses each row's own class can pull it back
 *	- 1e-20:   a candidate whose label is NULL or never seen in T, or whose
 *			   cluster tuple T never had, gets the factor 1e-20 (the paper's
 *			   rule), exactly
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "pg_shim.h"
#include "stage2.h"
#include "test_data.h"

/*
 * Two linked fields a, b in 4 levels and y = parity(a) XOR parity(b) (5%
 * flipped), so that f_T needs both fields together and Integrated Hessians
 * link them; c ~ N(0,1) is noise.  T: a, b independent and uniform.  The
 * pool (skew > 0): with probability skew b is a or a + 1 (mod 4), else
 * uniform; a and b stay uniform, and half of the linked pairs have equal
 * parities, so the label rate stays 1/2: only the joint moved.
 * Columns: a b c y.
 */
/* the label variant of either estimator ("smoothed: label", "paper: label") */
static bool
variant_is_label(const char *v)
{
	size_t		len = strlen(v);

	return strcmp(v, "label") == 0 || (len > 7 && strcmp(v + len - 7, ": label") == 0);
}

static SlRowSet *
linked_pair(int n, uint64 seed, double skew)
{
	SlRowSet   *rs = td_rows(n, 4);
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
	{
		int			a = (int) pg_prng_uint64_range(&rng, 0, 3);
		int			b;
		int			y;

		if (pg_prng_double(&rng) < skew)
			b = (a + (int) pg_prng_uint64_range(&rng, 0, 1)) % 4;
		else
			b = (int) pg_prng_uint64_range(&rng, 0, 3);
		y = (a % 2) ^ (b % 2);
		if (pg_prng_double(&rng) < 0.05)
			y = 1 - y;
		td_cat(rs, r, 0, a);
		td_cat(rs, r, 1, b);
		td_num(rs, r, 2, td_normal(&rng));
		td_int(rs, r, 3, y);
	}
	return rs;
}

static int
cell_code(const SlRowSet *rs, int r, int c)
{
	return rs->text[SL_CELL(rs, r, c)][1] - '0';
}

/* total variation between the (c0, c1) joint of rows and of all of ref */
static double
joint_tv(const SlRowSet *rs, const int *rows, int n, const SlRowSet *ref,
		 int c0, int c1, bool c1_is_int)
{
	double		p[16] = {0},
				q[16] = {0},
				tv = 0;

	for (int i = 0; i < n; i++)
	{
		int			r = rows[i];
		int			v1 = c1_is_int ? (int) rs->num[SL_CELL(rs, r, c1)] : cell_code(rs, r, c1);

		p[cell_code(rs, r, c0) * 4 + v1] += 1.0 / n;
	}
	for (int r = 0; r < ref->nrows; r++)
	{
		int			v1 = c1_is_int ? (int) ref->num[SL_CELL(ref, r, c1)] : cell_code(ref, r, c1);

		q[cell_code(ref, r, c0) * 4 + v1] += 1.0 / ref->nrows;
	}
	for (int k = 0; k < 16; k++)
		tv += 0.5 * fabs(p[k] - q[k]);
	return tv;
}

/* share of rows whose integer column c equals v */
static double
int_rate(const SlRowSet *rs, const int *rows, int n, int c, int v)
{
	int			k = 0;

	for (int i = 0; i < n; i++)
		k += (int) rs->num[SL_CELL(rs, rows ? rows[i] : i, c)] == v;
	return (double) k / n;
}

static void
test_joint_skew(void)
{
	SlTable    *t = td_table("ccnc", 3);
	SlRowSet   *T = linked_pair(3000, 101, 0);
	SlRowSet   *S = linked_pair(9000, 102, 0.7);
	int			n = 2000;
	int		   *all = palloc(sizeof(int) * S->nrows);
	SlStage2Options opt;
	SlStage2Result ra,
				ru;
	double		tv_pool,
				tv_a,
				tv_u,
				rate_a,
				rate_u;

	printf("joint skew of a linked pair at equal label rate\n");
	for (int i = 0; i < S->nrows; i++)
		all[i] = i;
	sl_stage2_default_options(&opt);
	opt.seed = 7;
	sl_stage2_select(t, T, S, n, &opt, &ra);
	sl_stage2_uniform(S->nrows, n, opt.seed, &ru);
	tv_pool = joint_tv(S, all, S->nrows, T, 0, 1, false);
	tv_a = joint_tv(S, ra.chosen, ra.nchosen, T, 0, 1, false);
	tv_u = joint_tv(S, ru.chosen, ru.nchosen, T, 0, 1, false);
	rate_a = int_rate(S, ra.chosen, ra.nchosen, 3, 1);
	rate_u = int_rate(S, ru.chosen, ru.nchosen, 3, 1);
	printf("  label rate: T %.3f, pool %.3f, attribution %.3f, uniform %.3f\n",
		   int_rate(T, NULL, T->nrows, 3, 1), int_rate(S, NULL, S->nrows, 3, 1),
		   rate_a, rate_u);
	printf("  TV of the (a,b) joint to T: pool %.3f, attribution %.3f, uniform %.3f\n",
		   tv_pool, tv_a, tv_u);
	printf("  variant %s, clusters %d (a in %d, b in %d, c in %d), ESS %.0f\n",
		   ra.variant, ra.nclusters, ra.field_cluster[0], ra.field_cluster[1],
		   ra.field_cluster[2], ra.ess);
	CHECK(ra.nchosen == n && variant_is_label(ra.variant),
		  "nchosen %d variant %s", ra.nchosen, ra.variant);
	/* the premise: the pool moved only the joint */
	CHECK(fabs(int_rate(S, NULL, S->nrows, 3, 1) - 0.5) < 0.03,
		  "the pool's label rate is not 1/2");
	CHECK(tv_pool > 0.25, "the pool's joint is not skewed (TV %.3f)", tv_pool);
	/* the linked pair is one cluster: only its tuple carries the joint */
	CHECK(ra.field_cluster[0] == ra.field_cluster[1],
		  "a and b are not in one cluster");
	/* the density ratio pulls the joint back (a pool of 9000 for 2000) */
	CHECK(tv_a < 0.14 && tv_a + 0.15 < tv_u,
		  "the (a,b) joint was not corrected: TV %.3f vs uniform %.3f", tv_a, tv_u);
	CHECK(fabs(rate_a - 0.5) < 0.05, "the label rate moved: %.3f", rate_a);
}

/*
 * Three classes: in T, P(y | a) favours class a % 3 (0.6, the others 0.2);
 * in the pool y is 0, 1, 2 with probabilities 0.15, 0.15, 0.7 whatever a.
 * Columns: a c y.
 */
static SlRowSet *
three_class(int n, uint64 seed, bool pool)
{
	SlRowSet   *rs = td_rows(n, 3);
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
	{
		int			a = (int) pg_prng_uint64_range(&rng, 0, 3);
		double		u = pg_prng_double(&rng);
		int			y;

		if (pool)
			y = u < 0.15 ? 0 : (u < 0.30 ? 1 : 2);
		else
			y = u < 0.6 ? a % 3 : (a % 3 + (u < 0.8 ? 1 : 2)) % 3;
		td_cat(rs, r, 0, a);
		td_num(rs, r, 1, td_normal(&rng));
		td_int(rs, r, 2, y);
	}
	return rs;
}

static void
test_three_class(void)
{
	SlTable    *t = td_table("cnc", 2);
	SlRowSet   *T = three_class(3000, 111, false);
	SlRowSet   *S = three_class(9000, 112, true);
	int			n = 2000;
	SlStage2Options opt;
	SlStage2Result ra,
				ru;
	double		tv_a,
				tv_u,
				mx_a = 0,
				mx_u = 0;

	printf("three-class label skew\n");
	sl_stage2_default_options(&opt);
	opt.seed = 8;
	sl_stage2_select(t, T, S, n, &opt, &ra);
	sl_stage2_uniform(S->nrows, n, opt.seed, &ru);
	tv_a = joint_tv(S, ra.chosen, ra.nchosen, T, 0, 2, true);
	tv_u = joint_tv(S, ru.chosen, ru.nchosen, T, 0, 2, true);
	printf("  class shares T / attribution / uniform:");
	for (int k = 0; k < 3; k++)
	{
		double		pt = int_rate(T, NULL, T->nrows, 2, k);
		double		pa = int_rate(S, ra.chosen, ra.nchosen, 2, k);
		double		pu = int_rate(S, ru.chosen, ru.nchosen, 2, k);

		printf(" %d: %.3f/%.3f/%.3f", k, pt, pa, pu);
		mx_a = Max(mx_a, fabs(pa - pt));
		mx_u = Max(mx_u, fabs(pu - pt));
	}
	printf("\n  TV of the (a,y) joint to T: attribution %.3f, uniform %.3f; ESS %.0f\n",
		   tv_a, tv_u, ra.ess);
	CHECK(ra.nchosen == n && variant_is_label(ra.variant),
		  "nchosen %d variant %s", ra.nchosen, ra.variant);
	CHECK(mx_a < 0.12 && mx_a + 0.2 < mx_u,
		  "class shares not corrected: max error %.3f vs uniform %.3f", mx_a, mx_u);
	CHECK(tv_a < 0.18 && tv_a + 0.2 < tv_u,
		  "the (a,y) joint was not corrected: TV %.3f vs uniform %.3f", tv_a, tv_u);
}

/*
 * The 1e-20 rule: exact values of both terms on hand-made inputs, then end
 * to end: candidates whose label is NULL or unseen in T are 1e-20 times as
 * likely as their labelled twins, so none is drawn while enough others are.
 */
static void
test_none_rule(void)
{
	double		log_none = log(SL_NONE_PROB);

	printf("the 1e-20 rule for NULL or unseen labels and unseen tuples\n");
	CHECK(SL_NONE_PROB == 1e-20, "SL_NONE_PROB is %g", SL_NONE_PROB);
	{
		double		lpT[4] = {log(0.5), log(0.2), log(0.9), -INFINITY};
		double		lpS[4] = {log(0.25), log(0.4), log(0.3), log(0.5)};
		int			y[4] = {1, 0, -1, 2};
		double		w[4] = {0.5, 0, 0, 0};

		sl_weights_label_part(lpT, lpS, y, 4, w);
		CHECK(fabs(w[0] - (0.5 + log(2.0))) < 1e-12, "own label: %g", w[0]);
		CHECK(fabs(w[1] - log(0.5)) < 1e-12, "own label: %g", w[1]);
		CHECK(w[2] == log_none, "NULL/unseen label: %g, want %g", w[2], log_none);
		CHECK(w[3] == log_none, "impossible under f_T: %g, want %g", w[3], log_none);
	}
	{
		/* one field, codes 0..2 in T (2:1:1), pool has code 3 T never had */
		SlTable    *t = td_table("c", -1);
		SlRowSet   *T = td_rows(4, 1);
		SlRowSet   *S = td_rows(4, 1);
		SlFieldSet *fs;
		int32	   *cT,
				   *cS;
		int			cluster[1] = {0};
		double		w[4] = {0, 0, 0, 0};

		td_cat(T, 0, 0, 0);
		td_cat(T, 1, 0, 0);
		td_cat(T, 2, 0, 1);
		td_cat(T, 3, 0, 2);
		td_cat(S, 0, 0, 0);
		td_cat(S, 1, 0, 1);
		td_cat(S, 2, 0, 1);
		td_cat(S, 3, 0, 3);
		fs = sl_fields_fit(t, T, 10, 1000);
		cT = sl_fields_encode(fs, T);
		cS = sl_fields_encode(fs, S);
		sl_weights_feature_part(fs, cT, 4, cS, 4, cluster, 1, w);
		CHECK(fabs(w[0] - log((2.0 / 4) / (1.0 / 4))) < 1e-12, "tuple ratio %g", w[0]);
		CHECK(fabs(w[1] - log((1.0 / 4) / (2.0 / 4))) < 1e-12, "tuple ratio %g", w[1]);
		CHECK(fabs(w[3] - (log_none - log(1.0 / 4))) < 1e-12,
			  "unseen tuple: %g, want %g", w[3], log_none - log(0.25));
	}
	{
		/*
		 * End to end: the pool is T's distribution; every third candidate
		 * has a NULL label, every third + 1 the label 7 (T has 0 and 1).
		 */
		SlTable    *t = td_table("ccnc", 3);
		SlRowSet   *T = linked_pair(1500, 121, 0);
		SlRowSet   *S = linked_pair(1500, 122, 0);
		SlStage2Options opt;
		SlStage2Result res;
		int			bad = 0;
		double		gap = INFINITY;
		double		good_min = INFINITY,
					bad_max = -INFINITY;

		for (int r = 0; r < S->nrows; r += 3)
			td_null(S, r, 3);
		for (int r = 1; r < S->nrows; r += 3)
			td_int(S, r, 3, 7);
		sl_stage2_default_options(&opt);
		opt.seed = 9;
		opt.max_epochs = 10;
		/* the rule is the paper's (the default smooths instead of 1e-20) */
		opt.estimator = SL_ESTIMATOR_PAPER;
		sl_stage2_select(t, T, S, 400, &opt, &res);
		for (int i = 0; i < res.nchosen; i++)
			bad += res.chosen[i] % 3 != 2;
		for (int r = 0; r < S->nrows; r++)
		{
			if (r % 3 == 2)
				good_min = Min(good_min, res.log_weights[r]);
			else
				bad_max = Max(bad_max, res.log_weights[r]);
		}
		gap = good_min - bad_max;
		printf("  end to end: variant %s, %d of %d drawn rows have a NULL or unseen "
			   "label; log-weight gap %.1f (log 1e20 = %.1f)\n",
			   res.variant, bad, res.nchosen, gap, -log_none);
		CHECK(res.nchosen == 400 && variant_is_label(res.variant),
			  "nchosen %d variant %s", res.nchosen, res.variant);
		CHECK(bad == 0, "%d rows with a NULL or unseen label drawn", bad);
		/* their factor is 1e-20 against a label term of a few nats at most */
		CHECK(gap > -log_none - 15, "the unknown labels' weights are not ~1e-20 lower: gap %.1f", gap);
	}
}

int
main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_none_rule();
	test_joint_skew();
	test_three_class();
	if (failures)
	{
		printf("%d FAILED\n", failures);
		return 1;
	}
	printf("all stage 2 term tests passed\n");
	return 0;
}
