/*-------------------------------------------------------------------------
 *
 * test_builtin.c
 *	  Unit tests of the built-in Gaussian-copula generator (make check).
 *
 *	  ./test_builtin           run every test and the timing
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <regex.h>
#include <time.h>

#include "catalog/pg_type.h"

#include "pg_shim.h"
#include "builtin.h"
#include "test_data.h"


/* ---- helpers ---- */

static void
set_type(SlTable *t, int c, Oid typid, int32 typmod)
{
	t->cols[c].typid = t->cols[c].basetypid = typid;
	t->cols[c].typmod = typmod;
}

static bool
matches(const char *re, const char *s)
{
	regex_t		rx;
	bool		ok;

	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
		abort();
	ok = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return ok;
}

typedef struct Stats
{
	int			n;				/* non-NULL numeric cells */
	int			nulls;
	double		mean;
	double		sd;
} Stats;

/* Mean and sd of the finite numbers in column c of rows texts[nrows x ncols]. */
static Stats
text_stats(char **texts, int nrows, int ncols, int c)
{
	Stats		s = {0, 0, 0, 0};
	double		sum = 0,
				sum2 = 0;

	for (int r = 0; r < nrows; r++)
	{
		const char *x = texts[(size_t) r * ncols + c];
		double		v;

		if (x == NULL)
		{
			s.nulls++;
			continue;
		}
		v = strtod(x, NULL);
		if (!isfinite(v))
			continue;
		s.n++;
		sum += v;
		sum2 += v * v;
	}
	s.mean = s.n ? sum / s.n : NAN;
	s.sd = s.n > 1 ? sqrt(Max(sum2 / s.n - s.mean * s.mean, 0)) : NAN;
	return s;
}

/* The seeds' texts as an array shaped like a proposal. */
static char **
seed_texts(const SlRowSet *rs)
{
	return rs->text;
}

static double
text_rate(char **texts, int nrows, int ncols, int c, const char *what)
{
	int			k = 0;

	for (int r = 0; r < nrows; r++)
	{
		const char *x = texts[(size_t) r * ncols + c];

		if (what == NULL ? x == NULL : (x != NULL && strcmp(x, what) == 0))
			k++;
	}
	return (double) k / nrows;
}

typedef struct RankItem
{
	double		v;
	int			i;
} RankItem;

static int
rank_cmp(const void *pa, const void *pb)
{
	const RankItem *a = pa;
	const RankItem *b = pb;

	return a->v < b->v ? -1 : a->v > b->v ? 1 : a->i - b->i;
}

/* Van der Waerden normal scores (average ranks for ties). */
static void
normal_scores(const double *x, int n, double *z)
{
	RankItem   *it = palloc(sizeof(RankItem) * n);

	for (int i = 0; i < n; i++)
	{
		it[i].v = x[i];
		it[i].i = i;
	}
	qsort(it, n, sizeof(RankItem), rank_cmp);
	for (int i = 0; i < n;)
	{
		int			j = i;

		while (j < n && it[j].v == it[i].v)
			j++;
		for (int k = i; k < j; k++)
			z[it[k].i] = sl_builtin_norm_quantile(((i + j - 1) / 2.0 + 0.5) / n);
		i = j;
	}
	pfree(it);
}

static double
pearson(const double *a, const double *b, int n)
{
	double		ma = 0,
				mb = 0,
				sab = 0,
				saa = 0,
				sbb = 0;

	for (int i = 0; i < n; i++)
	{
		ma += a[i];
		mb += b[i];
	}
	ma /= n;
	mb /= n;
	for (int i = 0; i < n; i++)
	{
		sab += (a[i] - ma) * (b[i] - mb);
		saa += (a[i] - ma) * (a[i] - ma);
		sbb += (b[i] - mb) * (b[i] - mb);
	}
	return sab / sqrt(saa * sbb);
}

/* Pearson correlation of normal scores of columns c1, c2 (both non-NULL). */
static double
ns_corr(char **texts, int nrows, int ncols, int c1, int c2)
{
	double	   *a = palloc(sizeof(double) * nrows);
	double	   *b = palloc(sizeof(double) * nrows);
	double	   *za = palloc(sizeof(double) * nrows);
	double	   *zb = palloc(sizeof(double) * nrows);
	double		rho;

	for (int r = 0; r < nrows; r++)
	{
		a[r] = strtod(texts[(size_t) r * ncols + c1], NULL);
		b[r] = strtod(texts[(size_t) r * ncols + c2], NULL);
	}
	normal_scores(a, nrows, za);
	normal_scores(b, nrows, zb);
	rho = pearson(za, zb, nrows);
	pfree(a);
	pfree(b);
	pfree(za);
	pfree(zb);
	return rho;
}

/* Mean of numeric column cx over rows whose column cc equals what. */
static double
cond_mean(char **texts, int nrows, int ncols, int cx, int cc, const char *what,
		  bool equal)
{
	double		sum = 0;
	int			k = 0;

	for (int r = 0; r < nrows; r++)
	{
		const char *x = texts[(size_t) r * ncols + cc];
		bool		is = x != NULL && strcmp(x, what) == 0;

		if (is != equal)
			continue;
		sum += strtod(texts[(size_t) r * ncols + cx], NULL);
		k++;
	}
	return k ? sum / k : NAN;
}

static double
now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- 1. Phi and Phi^-1 ---- */

static void
test_normal(void)
{
	double		worst = 0;

	printf("normal cdf / quantile\n");
	CHECK(fabs(sl_builtin_norm_quantile(0.975) - 1.959963984540054) < 1e-14,
		  "Phi^-1(0.975) = %.17g", sl_builtin_norm_quantile(0.975));
	CHECK(sl_builtin_norm_quantile(0.5) == 0, "Phi^-1(0.5) = %g",
		  sl_builtin_norm_quantile(0.5));
	CHECK(fabs(sl_builtin_norm_quantile(1e-10) + 6.361340902404056) < 1e-12,
		  "Phi^-1(1e-10) = %.17g", sl_builtin_norm_quantile(1e-10));
	/* reference values from Python's statistics.NormalDist().inv_cdf */
	CHECK(fabs(sl_builtin_norm_quantile(0.02425) + 1.9729610513118845) < 1e-14,
		  "Phi^-1(0.02425) = %.17g", sl_builtin_norm_quantile(0.02425));
	CHECK(fabs(sl_builtin_norm_quantile(0.3) + 0.5244005127080407) < 1e-15,
		  "Phi^-1(0.3) = %.17g", sl_builtin_norm_quantile(0.3));
	CHECK(fabs(sl_builtin_norm_quantile(1e-300) + 37.0470962993612) < 1e-12,
		  "Phi^-1(1e-300) = %.17g", sl_builtin_norm_quantile(1e-300));
	CHECK(fabs(sl_builtin_norm_cdf(1.0) - 0.8413447460685429) < 1e-15,
		  "Phi(1) = %.17g", sl_builtin_norm_cdf(1.0));
	CHECK(isinf(sl_builtin_norm_quantile(0)) && isinf(sl_builtin_norm_quantile(1)),
		  "Phi^-1 at 0 and 1 must be infinite");
	/* round trip on a log grid down to 1e-300 */
	for (double lp = -300; lp <= log10(0.5); lp += 0.01)
	{
		double		p = pow(10, lp);
		double		q = sl_builtin_norm_quantile(p);
		double		err = fabs(sl_builtin_norm_cdf(q) - p) / p;

		worst = Max(worst, err);
	}
	/* ... and a linear one, with symmetry */
	for (int i = 0; i < 1000; i++)
	{
		double		p = (i + 0.5) / 1000;
		double		q = sl_builtin_norm_quantile(p);
		double		err = fabs(sl_builtin_norm_cdf(q) - p) / Min(p, 1 - p);

		worst = Max(worst, err);
		CHECK(fabs(sl_builtin_norm_quantile((999 - i + 0.5) / 1000) + q) < 1e-12,
			  "asymmetric at p = %g", p);
	}
	printf("  max relative round-trip error %.3g\n", worst);

	/*
	 * Far in the tail dp/p = |q| dq, so the double rounding of q alone gives
	 * ~37 * 37 * 1e-16 at p = 1e-300.
	 */
	CHECK(worst < 1e-11, "Phi(Phi^-1(p)) off by %.3g relative", worst);
}

/* ---- 2. a mixed table ---- */

enum
{
	M_X, M_Y, M_CAT, M_INT, M_NUM, M_BOOL, M_FLT, M_NCOLS
};

static SlTable *
mixed_table(void)
{
	SlTable    *t = td_table("nncnncn", -1);

	set_type(t, M_X, FLOAT8OID, -1);
	set_type(t, M_Y, FLOAT8OID, -1);
	set_type(t, M_CAT, TEXTOID, -1);
	set_type(t, M_INT, INT4OID, -1);
	set_type(t, M_NUM, NUMERICOID, ((8 << 16) | 2) + VARHDRSZ);
	set_type(t, M_BOOL, BOOLOID, -1);
	set_type(t, M_FLT, FLOAT8OID, -1);
	return t;
}

/*
 * x ~ N(10, 3); y = 50 + 5 (0.8 z0 + 0.6 z1) (correlation 0.8);
 * cat = "hi" mostly when x is high, else a/b/c; int4 uniform 1..100 with 10%
 * NULL; numeric(8,2) lognormal amounts; bool "true" when x > 10 (20% NULL);
 * a float with 5% NaN and 3% Infinity.
 */
static SlRowSet *
mixed_seeds(int n, uint64 seed)
{
	SlRowSet   *rs = td_rows(n, M_NCOLS);
	pg_prng_state rng;

	pg_prng_seed(&rng, seed);
	for (int r = 0; r < n; r++)
	{
		double		z0 = td_normal(&rng);
		double		z1 = td_normal(&rng);
		double		u = pg_prng_double(&rng);
		char		buf[64];

		td_num(rs, r, M_X, 10 + 3 * z0);
		td_num(rs, r, M_Y, 50 + 5 * (0.8 * z0 + 0.6 * z1));
		if (z0 + 0.5 * td_normal(&rng) > 0.8)
			td_text(rs, r, M_CAT, "hi");
		else
			td_text(rs, r, M_CAT, u < 0.5 ? "a" : u < 0.8 ? "b" : "c");
		if (pg_prng_double(&rng) < 0.1)
			td_null(rs, r, M_INT);
		else
			td_int(rs, r, M_INT, (int) pg_prng_uint64_range(&rng, 1, 100));
		snprintf(buf, sizeof(buf), "%.2f", exp(3 + td_normal(&rng)));
		td_num(rs, r, M_NUM, strtod(buf, NULL));
		td_text(rs, r, M_NUM, buf);
		if (pg_prng_double(&rng) < 0.2)
			td_null(rs, r, M_BOOL);
		else
			td_text(rs, r, M_BOOL, z0 > 0 ? "true" : "false");
		u = pg_prng_double(&rng);
		if (u < 0.05)
		{
			td_num(rs, r, M_FLT, NAN);
			td_text(rs, r, M_FLT, "NaN");
		}
		else if (u < 0.08)
		{
			td_num(rs, r, M_FLT, INFINITY);
			td_text(rs, r, M_FLT, "Infinity");
		}
		else
			td_num(rs, r, M_FLT, pg_prng_double(&rng));
	}
	return rs;
}

static void
test_mixed(void)
{
	SlTable    *t = mixed_table();
	int			ns = 2000,
				np = 20000,
				nc = M_NCOLS;
	SlRowSet   *S = mixed_seeds(ns, 7);
	char	  **st = seed_texts(S);
	char	  **P = sl_builtin_propose(t, S, np, 42);
	char	  **P2 = sl_builtin_propose(t, S, np, 42);
	char	  **P3 = sl_builtin_propose(t, S, np, 43);
	int			same = 1,
				differ = 0;
	int			nonint = 0,
				outside = 0,
				badnum = 0,
				badflt = 0;
	double		imin = 1e300,
				imax = -1e300;

	printf("mixed table: %d seeds -> %d proposals\n", ns, np);

	/* determinism */
	for (size_t i = 0; i < (size_t) np * nc; i++)
	{
		bool		eq2 = (P[i] == NULL) == (P2[i] == NULL) &&
		(P[i] == NULL || strcmp(P[i], P2[i]) == 0);
		bool		eq3 = (P[i] == NULL) == (P3[i] == NULL) &&
		(P[i] == NULL || strcmp(P[i], P3[i]) == 0);

		same &= eq2;
		differ += !eq3;
	}
	CHECK(same, "same seed gave different proposals");
	CHECK(differ > np, "another seed changed only %d cells", differ);

	/* continuous marginals */
	for (int c = M_X; c <= M_Y; c++)
	{
		Stats		a = text_stats(st, ns, nc, c);
		Stats		b = text_stats(P, np, nc, c);

		printf("  col%d: seeds mean %.3f sd %.3f, proposals mean %.3f sd %.3f\n",
			   c, a.mean, a.sd, b.mean, b.sd);
		CHECK(fabs(a.mean - b.mean) < 0.05 * a.sd, "col%d mean %g vs %g", c, b.mean, a.mean);
		CHECK(fabs(b.sd / a.sd - 1) < 0.05, "col%d sd %g vs %g", c, b.sd, a.sd);
		CHECK(b.nulls == 0, "col%d has %d NULLs", c, b.nulls);
	}

	/* correlation 0.8 kept */
	{
		double		rs = ns_corr(st, ns, nc, M_X, M_Y);
		double		rp = ns_corr(P, np, nc, M_X, M_Y);

		printf("  normal-score correlation x~y: seeds %.3f, proposals %.3f\n", rs, rp);
		CHECK(fabs(rs - rp) < 0.05, "correlation %g vs seeds %g", rp, rs);
	}

	/* category frequencies and the categorical-continuous dependency */
	{
		const char *cats[] = {"hi", "a", "b", "c"};
		double		ds,
					dp;

		for (int k = 0; k < 4; k++)
		{
			double		fs = text_rate(st, ns, nc, M_CAT, cats[k]);
			double		fp = text_rate(P, np, nc, M_CAT, cats[k]);

			printf("  cat %-2s: seeds %.3f proposals %.3f\n", cats[k], fs, fp);
			CHECK(fabs(fs - fp) < 0.02, "cat %s frequency %g vs %g", cats[k], fp, fs);
		}
		ds = cond_mean(st, ns, nc, M_X, M_CAT, "hi", true) -
			cond_mean(st, ns, nc, M_X, M_CAT, "hi", false);
		dp = cond_mean(P, np, nc, M_X, M_CAT, "hi", true) -
			cond_mean(P, np, nc, M_X, M_CAT, "hi", false);
		printf("  mean x | cat=hi minus mean x | cat!=hi: seeds %.3f proposals %.3f\n",
			   ds, dp);
		CHECK(dp > 0.4 * ds, "dependency lost: %g vs seeds %g", dp, ds);
	}

	/* integers: integral, inside the seeds' range, NULL rate kept */
	for (int r = 0; r < ns; r++)
		if (st[(size_t) r * nc + M_INT])
		{
			imin = Min(imin, S->num[SL_CELL(S, r, M_INT)]);
			imax = Max(imax, S->num[SL_CELL(S, r, M_INT)]);
		}
	for (int r = 0; r < np; r++)
	{
		const char *x = P[(size_t) r * nc + M_INT];

		if (x == NULL)
			continue;
		if (!matches("^-?[0-9]+$", x))
			nonint++;
		else if (strtod(x, NULL) < imin || strtod(x, NULL) > imax)
			outside++;
	}
	CHECK(nonint == 0 && outside == 0, "int column: %d not integers, %d outside [%g, %g]",
		  nonint, outside, imin, imax);
	{
		double		fs = text_rate(st, ns, nc, M_INT, NULL);
		double		fp = text_rate(P, np, nc, M_INT, NULL);
		Stats		a = text_stats(st, ns, nc, M_INT);
		Stats		b = text_stats(P, np, nc, M_INT);

		printf("  int NULL rate: seeds %.3f proposals %.3f; mean %.2f vs %.2f\n",
			   fs, fp, a.mean, b.mean);
		CHECK(fabs(fs - fp) < 0.02, "int NULL rate %g vs %g", fp, fs);
		CHECK(fabs(a.mean - b.mean) < 0.05 * a.sd, "int mean %g vs %g", b.mean, a.mean);
	}

	/* numeric(8,2): exactly two decimals */
	for (int r = 0; r < np; r++)
	{
		const char *x = P[(size_t) r * nc + M_NUM];

		if (x == NULL || !matches("^-?[0-9]{1,6}\\.[0-9]{2}$", x))
			badnum++;
	}
	CHECK(badnum == 0, "%d numeric(8,2) texts malformed (e.g. %s)", badnum,
		  P[M_NUM] ? P[M_NUM] : "NULL");
	{
		Stats		a = text_stats(st, ns, nc, M_NUM);
		Stats		b = text_stats(P, np, nc, M_NUM);

		printf("  numeric: seeds mean %.3f proposals %.3f (first %s)\n",
			   a.mean, b.mean, P[M_NUM]);
		CHECK(fabs(a.mean - b.mean) < 0.05 * a.sd, "numeric mean %g vs %g", b.mean, a.mean);
	}

	/* bool with NULLs: NULL rate, true rate, dependency on x */
	{
		double		ns_ = text_rate(st, ns, nc, M_BOOL, NULL);
		double		np_ = text_rate(P, np, nc, M_BOOL, NULL);
		double		ts = text_rate(st, ns, nc, M_BOOL, "true");
		double		tp = text_rate(P, np, nc, M_BOOL, "true");
		double		ds = cond_mean(st, ns, nc, M_X, M_BOOL, "true", true) -
			cond_mean(st, ns, nc, M_X, M_BOOL, "false", true);
		double		dp = cond_mean(P, np, nc, M_X, M_BOOL, "true", true) -
			cond_mean(P, np, nc, M_X, M_BOOL, "false", true);

		printf("  bool: NULL %.3f vs %.3f, true %.3f vs %.3f, x gap %.2f vs %.2f\n",
			   ns_, np_, ts, tp, ds, dp);
		CHECK(fabs(ns_ - np_) < 0.02, "bool NULL rate %g vs %g", np_, ns_);
		CHECK(fabs(ts - tp) < 0.02, "bool true rate %g vs %g", tp, ts);
		CHECK(dp > 0.4 * ds, "bool dependency lost: %g vs %g", dp, ds);
	}

	/* float with NaN and Infinity kept at their rates */
	{
		double		a1 = text_rate(st, ns, nc, M_FLT, "NaN");
		double		b1 = text_rate(P, np, nc, M_FLT, "NaN");
		double		a2 = text_rate(st, ns, nc, M_FLT, "Infinity");
		double		b2 = text_rate(P, np, nc, M_FLT, "Infinity");

		printf("  float: NaN %.3f vs %.3f, Infinity %.3f vs %.3f\n", a1, b1, a2, b2);
		CHECK(fabs(a1 - b1) < 0.02 && fabs(a2 - b2) < 0.02, "non-finite rates off");
		for (int r = 0; r < np; r++)
		{
			const char *x = P[(size_t) r * nc + M_FLT];
			char	   *end;
			double		v;

			if (x == NULL)
			{
				badflt++;
				continue;
			}
			if (strcmp(x, "NaN") == 0 || strcmp(x, "Infinity") == 0)
				continue;
			v = strtod(x, &end);
			if (*end != '\0' || v < 0 || v >= 1)
				badflt++;
		}
		CHECK(badflt == 0, "%d bad float texts", badflt);
	}
}

/* ---- 3. degenerate inputs ---- */

static bool
all_cells(char **P, int np, int nc, int c, const char *what)
{
	for (int r = 0; r < np; r++)
	{
		const char *x = P[(size_t) r * nc + c];

		if (what == NULL ? x != NULL : (x == NULL || strcmp(x, what) != 0))
			return false;
	}
	return true;
}

static void
test_degenerate(void)
{
	SlTable    *t = mixed_table();
	SlRowSet   *S1 = mixed_seeds(1, 3);
	char	  **P;

	printf("degenerate inputs\n");

	/* one seed row: every proposal is that row */
	P = sl_builtin_propose(t, S1, 50, 1);
	for (int c = 0; c < M_NCOLS; c++)
	{
		const char *want = S1->text[c];

		/* floats come back in their shortest form */
		if (want && c != M_CAT && c != M_BOOL && c != M_NUM && c != M_INT &&
			isfinite(S1->num[c]))
		{
			for (int r = 0; r < 50; r++)
				CHECK(P[(size_t) r * M_NCOLS + c] &&
					  strtod(P[(size_t) r * M_NCOLS + c], NULL) == S1->num[c],
					  "one seed: col%d %s vs %s", c, P[(size_t) r * M_NCOLS + c], want);
		}
		else
			CHECK(all_cells(P, 50, M_NCOLS, c, want), "one seed: col%d differs", c);
	}

	/* two seed rows */
	{
		SlRowSet   *S2 = mixed_seeds(2, 4);

		P = sl_builtin_propose(t, S2, 100, 1);
		CHECK(P != NULL, "two seeds");
	}

	/* nrows = 0 */
	P = sl_builtin_propose(t, mixed_seeds(100, 5), 0, 1);
	CHECK(P != NULL, "nrows 0 must return an array");

	/* constant, all-NULL continuous and all-NULL categorical columns */
	{
		SlTable    *tc = td_table("nnccn", -1);
		SlRowSet   *S = td_rows(300, 5);
		pg_prng_state rng;

		set_type(tc, 0, FLOAT8OID, -1);
		set_type(tc, 1, INT4OID, -1);
		set_type(tc, 2, TEXTOID, -1);
		set_type(tc, 3, TEXTOID, -1);
		set_type(tc, 4, FLOAT8OID, -1);
		pg_prng_seed(&rng, 9);
		for (int r = 0; r < 300; r++)
		{
			td_num(S, r, 0, 7.0);
			td_null(S, r, 1);
			td_null(S, r, 2);
			td_text(S, r, 3, "only");
			td_num(S, r, 4, td_normal(&rng));
		}
		P = sl_builtin_propose(tc, S, 1000, 2);
		CHECK(all_cells(P, 1000, 5, 0, "7"), "constant float column");
		CHECK(all_cells(P, 1000, 5, 1, NULL), "all-NULL int column");
		CHECK(all_cells(P, 1000, 5, 2, NULL), "all-NULL text column");
		CHECK(all_cells(P, 1000, 5, 3, "only"), "constant text column");
		{
			Stats		b = text_stats(P, 1000, 5, 4);

			CHECK(b.n == 1000 && fabs(b.mean) < 0.15 && fabs(b.sd - 1) < 0.1,
				  "free column mean %g sd %g", b.mean, b.sd);
		}
	}

	/* one column */
	{
		SlTable    *t1 = td_table("n", -1);
		SlRowSet   *S = td_rows(500, 1);
		pg_prng_state rng;
		Stats		a,
					b;

		set_type(t1, 0, INT8OID, -1);
		pg_prng_seed(&rng, 10);
		for (int r = 0; r < 500; r++)
			td_int(S, r, 0, (int) (1000 * pg_prng_double(&rng)));
		P = sl_builtin_propose(t1, S, 5000, 3);
		a = text_stats(S->text, 500, 1, 0);
		b = text_stats(P, 5000, 1, 0);
		CHECK(fabs(a.mean - b.mean) < 0.05 * a.sd, "one column mean %g vs %g",
			  b.mean, a.mean);
	}

	/* 60 columns, from 200 seeds and from 5 (a singular correlation) */
	for (int pass = 0; pass < 2; pass++)
	{
		int			nc = 60,
					ns = pass == 0 ? 200 : 5;
		char		cls[61];
		SlTable    *tw;
		SlRowSet   *S;
		pg_prng_state rng;
		int			nulls = 0;

		for (int c = 0; c < nc; c++)
			cls[c] = c % 3 == 2 ? 'c' : 'n';
		cls[nc] = '\0';
		tw = td_table(cls, -1);
		S = td_rows(ns, nc);
		pg_prng_seed(&rng, 11);
		for (int c = 0; c < nc; c++)
			set_type(tw, c, c % 3 == 2 ? TEXTOID : c % 3 == 1 ? INT4OID : FLOAT8OID, -1);
		for (int r = 0; r < ns; r++)
		{
			double		common = td_normal(&rng);

			for (int c = 0; c < nc; c++)
			{
				double		v = common + td_normal(&rng);

				if (c % 7 == 0 && pg_prng_double(&rng) < 0.3)
					td_null(S, r, c);
				else if (c % 3 == 2)
					td_cat(S, r, c, v > 0);
				else if (c % 3 == 1)
					td_int(S, r, c, (int) (10 * v));
				else
					td_num(S, r, c, v);
			}
		}
		P = sl_builtin_propose(tw, S, 3000, 4);
		for (size_t i = 0; i < (size_t) 3000 * nc; i++)
			nulls += P[i] == NULL;
		printf("  60 columns from %d seeds: %.3f NULL cells\n", ns,
			   (double) nulls / (3000.0 * nc));
		CHECK(nulls < 3000 * nc / 10, "too many NULLs in the wide table");
	}

	/*
	 * An indefinite pairwise correlation: each pair of a, b, c is seen on
	 * its own third of the rows, a = b, b = c but a = -c.
	 */
	{
		SlTable    *ti = td_table("nnn", -1);
		SlRowSet   *S = td_rows(300, 3);
		pg_prng_state rng;
		double		nullrate;

		for (int c = 0; c < 3; c++)
			set_type(ti, c, FLOAT8OID, -1);
		pg_prng_seed(&rng, 14);
		for (int r = 0; r < 300; r++)
		{
			double		v = td_normal(&rng);

			td_num(S, r, 0, r < 100 || r >= 200 ? v : 0);
			td_num(S, r, 1, r < 200 ? v : 0);
			td_num(S, r, 2, r < 100 ? 0 : r < 200 ? v : -v);
			td_null(S, r, r < 100 ? 2 : r < 200 ? 0 : 1);
		}
		P = sl_builtin_propose(ti, S, 3000, 6);
		nullrate = text_rate(P, 3000, 3, 0, NULL);
		printf("  indefinite pairwise correlation: a NULL rate %.3f\n", nullrate);
		CHECK(fabs(nullrate - 1.0 / 3) < 0.05, "a NULL rate %g", nullrate);
	}

	/* a unique text column (uuids) next to a numeric one */
	{
		SlTable    *tu = td_table("cn", -1);
		SlRowSet   *S = td_rows(1000, 2);
		pg_prng_state rng;
		int			distinct = 0;
		Stats		a,
					b;

		set_type(tu, 0, UUIDOID, -1);
		set_type(tu, 1, FLOAT8OID, -1);
		pg_prng_seed(&rng, 15);
		for (int r = 0; r < 1000; r++)
		{
			char		buf[40];

			snprintf(buf, sizeof(buf), "00000000-0000-0000-0000-%012d", r);
			td_text(S, r, 0, buf);
			td_num(S, r, 1, td_normal(&rng));
		}
		P = sl_builtin_propose(tu, S, 5000, 7);
		a = text_stats(S->text, 1000, 2, 1);
		b = text_stats(P, 5000, 2, 1);
		for (int r = 1; r < 5000; r++)
			distinct += strcmp(P[(size_t) r * 2], P[(size_t) (r - 1) * 2]) != 0;
		/* the unique column must not pull the numeric one toward its seed */
		{
			int			copies = 0;

			for (int r = 0; r < 5000; r++)
			{
				int			s = atoi(P[(size_t) r * 2] + 24);

				copies += strcmp(P[(size_t) r * 2 + 1], S->text[SL_CELL(S, s, 1)]) == 0 ||
					fabs(strtod(P[(size_t) r * 2 + 1], NULL) - S->num[SL_CELL(S, s, 1)]) < 0.01;
			}
			printf("  unique column: %d of 5000 rows near their uuid's seed value\n", copies);
			CHECK(copies < 250, "%d near-copies", copies);
		}
		CHECK(distinct > 4900 && fabs(a.mean - b.mean) < 0.1 && fabs(b.sd / a.sd - 1) < 0.05,
			  "unique column: %d distinct, mean %g sd %g", distinct, b.mean, b.sd);
	}

	/* no seeds: a clean error */
	{
		sigjmp_buf	jb;
		int			before = shim_error_count;

		if (sigsetjmp(jb, 0) == 0)
		{
			shim_error_jmp = &jb;
			(void) sl_builtin_propose(t, td_rows(0, M_NCOLS), 10, 1);
		}
		shim_error_jmp = NULL;
		CHECK(shim_error_count == before + 1, "no seeds must raise an error");
	}
}

/* ---- 4. types formatted from the nearest seed ---- */

static void
test_nearest(void)
{
	SlTable    *t = td_table("nnn", -1);
	int			ns = 200,
				np = 5000;
	SlRowSet   *S = td_rows(ns, 3);
	char	  **P;
	int			bad = 0;
	int64		big = INT64CONST(4611686018427387904);	/* 2^62 */

	printf("dates, big int8 and money\n");
	set_type(t, 0, DATEOID, -1);
	set_type(t, 1, INT8OID, -1);
	set_type(t, 2, MONEYOID, -1);
	for (int r = 0; r < ns; r++)
	{
		char		buf[64];
		int			day = 1 + r % 28;

		snprintf(buf, sizeof(buf), "2024-02-%02d", day);
		td_num(S, r, 0, 8800 + day);
		td_text(S, r, 0, buf);
		snprintf(buf, sizeof(buf), INT64_FORMAT, big + r * 1000);
		td_num(S, r, 1, (double) (big + r * 1000));
		td_text(S, r, 1, buf);
		td_num(S, r, 2, r * 1.25);
		snprintf(buf, sizeof(buf), "$%.2f", r * 1.25);
		td_text(S, r, 2, buf);
	}
	P = sl_builtin_propose(t, S, np, 5);
	for (int r = 0; r < np; r++)
	{
		bool		seen0 = false,
					seen1 = false;

		for (int s = 0; s < ns; s++)
		{
			seen0 |= strcmp(P[(size_t) r * 3], S->text[SL_CELL(S, s, 0)]) == 0;
			seen1 |= strcmp(P[(size_t) r * 3 + 1], S->text[SL_CELL(S, s, 1)]) == 0;
		}
		bad += !seen0 || !seen1 ||
			!matches("^[0-9]+\\.[0-9]{2}$", P[(size_t) r * 3 + 2]);
	}
	printf("  e.g. %s | %s | %s\n", P[0], P[1], P[2]);
	CHECK(bad == 0, "%d rows with a date or int8 not from a seed or bad money", bad);
}

/* ---- 5. timing ---- */

static void
bench(void)
{
	int			ns = 10000,
				np = 100000,
				nc = 10;
	SlTable    *t = td_table("nnnnnnnccc", -1);
	SlRowSet   *S = td_rows(ns, nc);
	pg_prng_state rng;
	double		t0,
				t1;
	char	  **P;

	for (int c = 0; c < 5; c++)
		set_type(t, c, FLOAT8OID, -1);
	set_type(t, 5, INT4OID, -1);
	set_type(t, 6, NUMERICOID, ((10 << 16) | 2) + VARHDRSZ);
	for (int c = 7; c < 10; c++)
		set_type(t, c, TEXTOID, -1);
	pg_prng_seed(&rng, 12);
	for (int r = 0; r < ns; r++)
	{
		double		common = td_normal(&rng);
		char		buf[32];

		for (int c = 0; c < 5; c++)
			td_num(S, r, c, common + td_normal(&rng));
		td_int(S, r, 5, (int) (100 * pg_prng_double(&rng)));
		snprintf(buf, sizeof(buf), "%.2f", 1000 * pg_prng_double(&rng));
		td_num(S, r, 6, strtod(buf, NULL));
		td_text(S, r, 6, buf);
		for (int c = 7; c < 10; c++)
			td_cat(S, r, c, (int) pg_prng_uint64_range(&rng, 0, 3 * c));
	}
	t0 = now_sec();
	(void) sl_builtin_propose(t, S, 1, 13);
	t1 = now_sec();
	printf("timing: fitting a %d-column table to %d seeds: %.3f s\n",
		   nc, ns, t1 - t0);
	t0 = now_sec();
	P = sl_builtin_propose(t, S, np, 13);
	t1 = now_sec();
	printf("timing: %d proposals of a %d-column table from %d seeds: %.3f s\n",
		   np, nc, ns, t1 - t0);
	CHECK(P[(size_t) np * nc - 1] != NULL, "last cell missing");
}

int
main(int argc, char **argv)
{
	test_normal();
	test_mixed();
	test_degenerate();
	test_nearest();
	bench();
	printf("gemm calls: %ld\n", (long) shim_gemm_calls);
	if (failures)
	{
		printf("test_builtin: %d FAILED\n", failures);
		return 1;
	}
	printf("test_builtin: all passed\n");
	return 0;
}
