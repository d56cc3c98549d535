/*-------------------------------------------------------------------------
 *
 * builtin_copula.c
 *	  Stage 1 without an LLM: Gaussian-copula proposals from the seed rows.
 *
 * The model is SDV's GaussianCopulaSynthesizer in its default shape:
 *
 * - Every column becomes one or two latent "dimensions", each with a
 *   marginal that maps seed values to standard normal scores and back.
 *   A categorical column (bool, text, enum, uuid, ...) is one category
 *   dimension: its categories, SQL NULL among them, in an order (see the
 *   deviation below), each own an interval of [0, 1] as wide as its
 *   frequency; a seed's score is Phi^-1 of a uniform point
 *   inside its category's interval (SDV's UniformEncoder), and a proposal
 *   takes the category whose interval holds Phi(z).
 *   A continuous column (ints, floats, numeric, money, dates, times) is a
 *   value dimension over its finite values: normal scores by rank,
 *   u = (rank - 0.5) / m, z = Phi^-1(u); a proposal maps Phi(z) back through
 *   the empirical quantile function, interpolating linearly between
 *   adjacent order statistics.  If the column has NULLs or non-finite
 *   values (NaN, +-Infinity) it gets a second, category dimension over
 *   {finite, NULL, NaN, Infinity, -Infinity} in front of the value one (as
 *   RDT's missing_value_generation = 'from_column' adds a "<col>.is_null"
 *   column), so that NULL rates are kept and NULLs correlate with the other
 *   columns; the value dimension ignores those rows.
 * - The copula's correlation is the Pearson correlation of the normal
 *   scores, computed with BLAS on the centered score matrix, regularized
 *   and factored with LAPACK's dpotrf.  A proposal is z = L eps with
 *   eps ~ N(0, I), in chunks of rows with one dgemm each.
 *
 * Output texts: integers are rounded and clamped to the seeds' range;
 * numeric is printed with the column's scale (typmod, else the largest
 * scale among the seed texts); floats as float8out prints them (shortest
 * exact form); money with two decimals.  Dates, timestamps, times and intervals
 * are not formatted here: a proposal takes the text of the seed whose value
 * is nearest to the sampled one, so DateStyle, IntervalStyle and time zones
 * stay valid.
 *
 * Deviation: RDT fills the missing values of a continuous column with the
 * mean before the copula sees them; we leave those cells out of
 * the value dimension's correlations instead (pairwise-complete Pearson
 * correlation of the centered scores), which does not shrink the
 * correlations of columns with many NULLs.  The pairwise matrix may be
 * indefinite; the regularization below repairs that.
 * Deviation: SDV lays the categories out by frequency; a dependency on a
 * numeric column then survives only as far as that arbitrary order happens
 * to be monotone in it.  We order the categories by their mean score along
 * the value dimension they explain best (largest eta^2, adjusted for the
 * number of categories), and fall back to SDV's order (frequency
 * descending, ties by text, NULL first) when none explains any.  Widths,
 * hence frequencies, are unchanged.  On the unit test's table this keeps
 * 55-75% of a category's shift in a numeric column instead of 12-30%.
 * Deviation: tied continuous values (integer columns, repeated amounts)
 * get a uniform point inside their block of ranks, as categories do,
 * rather than the midrank, so every score column stays N(0, 1).
 * Deviation: a column with one distinct value (or one category) takes no
 * part in the correlation; its jittered scores would only add noise.
 * Deviation: SDV fits a parametric marginal per numeric column (beta by
 * default); we use the empirical distribution, which follows any shape and
 * never proposes values outside the seeds' range.
 * Deviation: money texts use '.' as the decimal point, which cash_in reads
 * under lc_monetary C and the English locales.
 *
 * Exact copies of seed rows are possible for low-cardinality tables; the
 * validator rejects and counts them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>
#include <cblas.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "common/shortest_dec.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "builtin.h"
#include "util.h"

/* LAPACK, in the serial libopenblas.so.0 the module links (no header). */
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda,
					int *info);

/* Rows per dgemm of the sampler. */
#define BI_CHUNK_ROWS		4096

/* Below this many common seed rows a pairwise correlation counts as 0. */
#define BI_MIN_PAIR_ROWS	3

/* The "finite value" category of a continuous column's category dimension */
static const char bi_finite_key[] = "\001finite";

typedef enum BiDimKind
{
	BI_CATEGORY,
	BI_VALUE
} BiDimKind;

typedef struct BiDim
{
	BiDimKind	kind;
	bool		constant;		/* one category or one distinct value */
	/* BI_CATEGORY */
	int			ncat;
	const char **cat_text;		/* NULL = SQL NULL */
	double	   *cat_hi;			/* upper CDF bound; the last is 1 */
	int			finite_cat;		/* index of bi_finite_key, or -1 */
	/* BI_VALUE: the finite seed values, sorted, with their texts */
	int			m;
	double	   *sorted;
	const char **sorted_text;
} BiDim;

typedef enum BiFormat
{
	BI_FMT_INT,
	BI_FMT_NUMERIC,
	BI_FMT_FLOAT4,
	BI_FMT_FLOAT8,
	BI_FMT_MONEY,
	BI_FMT_NEAREST				/* the nearest seed's text */
} BiFormat;

typedef struct BiColumn
{
	int			catdim;			/* category dimension, or -1 */
	int			valdim;			/* value dimension, or -1 */
	BiFormat	fmt;
	int			scale;			/* BI_FMT_NUMERIC */
	double		typmin;			/* BI_FMT_INT */
	double		typmax;
} BiColumn;

/* One seed cell while a dimension is being fitted */
typedef struct BiKeyed
{
	const char *key;
	double		value;
	int			row;
} BiKeyed;

typedef struct BiGroup
{
	const char *key;
	int			count;
	int			index;			/* in key order */
	double		order;			/* mean score of the partner dimension */
} BiGroup;

/* ---- the standard normal distribution ---- */

double
sl_builtin_norm_cdf(double z)
{
	return 0.5 * erfc(-z * M_SQRT1_2);
}

/*
 * Phi^-1 by Wichura's algorithm AS 241 (PPND16, Applied Statistics 37,
 * 1988): rational approximations in three ranges of p, relative error about
 * 1e-16.  p outside (0, 1) gives -+Infinity.
 */
double
sl_builtin_norm_quantile(double p)
{
	double		q,
				r,
				x;

	if (!(p > 0.0))
		return -INFINITY;
	if (!(p < 1.0))
		return INFINITY;

	q = p - 0.5;
	if (fabs(q) <= 0.425)
	{
		r = 0.180625 - q * q;
		return q * (((((((2.5090809287301226727e+3 * r +
						  3.3430575583588128105e+4) * r +
						 6.7265770927008700853e+4) * r +
						4.5921953931549871457e+4) * r +
					   1.3731693765509461125e+4) * r +
					  1.9715909503065514427e+3) * r +
					 1.3314166789178437745e+2) * r +
					3.3871328727963666080e+0) /
			(((((((5.2264952788528545610e+3 * r +
				   2.8729085735721942674e+4) * r +
				  3.9307895800092710610e+4) * r +
				 2.1213794301586595867e+4) * r +
				5.3941960214247511077e+3) * r +
			   6.8718700749205790830e+2) * r +
			  4.2313330701600911252e+1) * r +
			 1.0);
	}

	r = q < 0 ? p : 1.0 - p;
	r = sqrt(-log(r));
	if (r <= 5.0)
	{
		r -= 1.6;
		x = (((((((7.74545014278341407640e-4 * r +
				   2.27238449892691845833e-2) * r +
				  2.41780725177450611770e-1) * r +
				 1.27045825245236838258e+0) * r +
				3.64784832476320460504e+0) * r +
			   5.76949722146069140550e+0) * r +
			  4.63033784615654529590e+0) * r +
			 1.42343711074968357734e+0) /
			(((((((1.05075007164441684324e-9 * r +
				   5.47593808499534494600e-4) * r +
				  1.51986665636164571966e-2) * r +
				 1.48103976427480074590e-1) * r +
				6.89767334985100004550e-1) * r +
			   1.67638483018380384940e+0) * r +
			  2.05319162663775882187e+0) * r +
			 1.0);
	}
	else
	{
		r -= 5.0;
		x = (((((((2.01033439929228813265e-7 * r +
				   2.71155556874348757815e-5) * r +
				  1.24266094738807843860e-3) * r +
				 2.65321895265761230930e-2) * r +
				2.96560571828504891230e-1) * r +
			   1.78482653991729133580e+0) * r +
			  5.46378491116411436990e+0) * r +
			 6.65790464350110377720e+0) /
			(((((((2.04426310338993978564e-15 * r +
				   1.42151175831644588870e-7) * r +
				  1.84631831751005468180e-5) * r +
				 7.86869131145613259100e-4) * r +
				1.48753612908506148525e-2) * r +
			   1.36929880922735805310e-1) * r +
			  5.99832206555887937690e-1) * r +
			 1.0);
	}
	return q < 0 ? -x : x;
}

/* A uniform draw strictly inside (0, 1), so Phi^-1 stays finite. */
static inline double
bi_open_uniform(pg_prng_state *rng)
{
	return ((double) (pg_prng_uint64(rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

/* Standard normal draws by Box-Muller (PG 15's pg_prng has none). */
static void
bi_fill_normals(pg_prng_state *rng, double *e, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i += 2)
	{
		double		r = sqrt(-2.0 * log(bi_open_uniform(rng)));
		double		a = 2.0 * M_PI * pg_prng_double(rng);

		e[i] = r * cos(a);
		if (i + 1 < n)
			e[i + 1] = r * sin(a);
	}
}

/* ---- fitting the marginals ---- */

static int
bi_keycmp(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int
bi_keyed_by_key(const void *pa, const void *pb)
{
	const BiKeyed *a = pa;
	const BiKeyed *b = pb;
	int			c = bi_keycmp(a->key, b->key);

	return c != 0 ? c : (a->row > b->row) - (a->row < b->row);
}

static int
bi_keyed_by_value(const void *pa, const void *pb)
{
	const BiKeyed *a = pa;
	const BiKeyed *b = pb;

	if (a->value != b->value)
		return a->value < b->value ? -1 : 1;
	return (a->row > b->row) - (a->row < b->row);
}

static int
bi_group_by_order(const void *pa, const void *pb)
{
	const BiGroup *a = pa;
	const BiGroup *b = pb;

	if (a->order != b->order)
		return a->order < b->order ? -1 : 1;
	if (a->count != b->count)
		return a->count > b->count ? -1 : 1;
	return bi_keycmp(a->key, b->key);
}

/*
 * Orders the groups of a category dimension by their mean score along the
 * candidate dimension (cand[], already fitted) whose scores the categories
 * explain best (largest correlation ratio eta^2); with no candidate, or none
 * related at all, every order stays 0 and frequency decides.
 */
static void
bi_order_groups(BiGroup *groups, int ngroups, const int *group_of_row, int n,
				const double *z, const double *mask, int stride,
				const int *cand, int ncand)
{
	double	   *gsum = palloc(sizeof(double) * ngroups);
	double	   *gcnt = palloc(sizeof(double) * ngroups);
	double		best_eta2 = 1e-3;
	int			best = -1;

	for (int pass = 0; pass < 2; pass++)
	{
		for (int j = 0; j < ncand; j++)
		{
			int			d = cand[j];
			double		sum = 0,
						sumsq = 0,
						cnt = 0,
						between = 0,
						total,
						eta2;
			int			present = 0;

			if (pass == 1 && d != best)
				continue;
			CHECK_FOR_INTERRUPTS();
			memset(gsum, 0, sizeof(double) * ngroups);
			memset(gcnt, 0, sizeof(double) * ngroups);
			for (int r = 0; r < n; r++)
			{
				size_t		at = (size_t) r * stride + d;

				if (mask[at] == 0)
					continue;
				gsum[group_of_row[r]] += z[at];
				gcnt[group_of_row[r]] += 1;
				sum += z[at];
				sumsq += z[at] * z[at];
				cnt += 1;
			}
			if (cnt < 2)
				continue;
			if (pass == 1)
			{
				for (int g = 0; g < ngroups; g++)
					groups[g].order = gcnt[g] > 0 ? gsum[g] / gcnt[g] : sum / cnt;
				break;
			}
			for (int g = 0; g < ngroups; g++)
				if (gcnt[g] > 0)
				{
					between += gsum[g] * gsum[g] / gcnt[g];
					present++;
				}
			between -= sum * sum / cnt;
			total = sumsq - sum * sum / cnt;
			if (total <= 0 || cnt <= present)
				continue;

			/*
			 * Adjusted for the number of groups: with one seed per category
			 * (uuids, names) the plain ratio is 1 for any partner.
			 */
			eta2 = 1.0 - (1.0 - between / total) * (cnt - 1) / (cnt - present);
			if (eta2 > best_eta2)
			{
				best_eta2 = eta2;
				best = d;
			}
		}
		if (best < 0)
			break;
	}
	pfree(gsum);
	pfree(gcnt);
}

/*
 * A category dimension over keys[0..n-1] (NULL = SQL NULL), whose scores
 * go to column self of the n x stride matrix z (and its mask).  cand[] are
 * the fitted value dimensions of the other columns (see bi_order_groups).
 */
static void
bi_fit_category(BiDim *dim, const char **keys, int n, pg_prng_state *rng,
				double *z, double *mask, int stride, int self,
				const int *cand, int ncand)
{
	BiKeyed    *cells = palloc(sizeof(BiKeyed) * n);
	BiGroup    *groups;
	int		   *rank_of_group;
	int			ngroups = 0;
	int		   *group_of_row = palloc(sizeof(int) * n);
	double		cum = 0;

	for (int r = 0; r < n; r++)
	{
		cells[r].key = keys[r];
		cells[r].value = 0;
		cells[r].row = r;
	}
	qsort(cells, n, sizeof(BiKeyed), bi_keyed_by_key);

	groups = palloc(sizeof(BiGroup) * n);
	for (int i = 0; i < n; i++)
	{
		if (i == 0 || bi_keycmp(cells[i].key, cells[i - 1].key) != 0)
		{
			groups[ngroups].key = cells[i].key;
			groups[ngroups].count = 0;
			groups[ngroups].index = ngroups;
			groups[ngroups].order = 0;
			ngroups++;
		}
		groups[ngroups - 1].count++;
		group_of_row[cells[i].row] = ngroups - 1;
	}
	if (ngroups > 1)
		bi_order_groups(groups, ngroups, group_of_row, n, z, mask, stride,
						cand, ncand);
	qsort(groups, ngroups, sizeof(BiGroup), bi_group_by_order);
	rank_of_group = palloc(sizeof(int) * ngroups);
	for (int k = 0; k < ngroups; k++)
		rank_of_group[groups[k].index] = k;

	dim->kind = BI_CATEGORY;
	dim->ncat = ngroups;
	dim->constant = ngroups <= 1;
	dim->cat_text = palloc(sizeof(char *) * ngroups);
	dim->cat_hi = palloc(sizeof(double) * ngroups);
	dim->finite_cat = -1;
	for (int k = 0; k < ngroups; k++)
	{
		dim->cat_text[k] = groups[k].key;
		if (groups[k].key == bi_finite_key)
			dim->finite_cat = k;
		cum += groups[k].count;
		dim->cat_hi[k] = k == ngroups - 1 ? 1.0 : cum / n;
	}

	/* seeds: a uniform point inside their category's interval */
	for (int r = 0; r < n; r++)
	{
		int			k = rank_of_group[group_of_row[r]];
		double		lo = k == 0 ? 0.0 : dim->cat_hi[k - 1];
		double		u = lo + bi_open_uniform(rng) * (dim->cat_hi[k] - lo);
		size_t		at = (size_t) r * stride + self;

		z[at] = sl_builtin_norm_quantile(u);
		mask[at] = dim->constant ? 0.0 : 1.0;
	}
	pfree(cells);
	pfree(groups);
	pfree(group_of_row);
	pfree(rank_of_group);
}

/*
 * A value dimension over the finite values among vals[0..n-1] (fin[r]
 * says which).  Scores as bi_fit_category; non-finite rows get mask 0.
 */
static void
bi_fit_value(BiDim *dim, const double *vals, const char *const *texts,
			 const bool *fin, int n, pg_prng_state *rng,
			 double *z, double *mask, int zstride)
{
	BiKeyed    *cells = palloc(sizeof(BiKeyed) * n);
	int			m = 0;

	for (int r = 0; r < n; r++)
	{
		size_t		at = (size_t) r * zstride;

		z[at] = 0.0;
		mask[at] = 0.0;
		if (!fin[r])
			continue;
		cells[m].key = texts[r];
		cells[m].value = vals[r];
		cells[m].row = r;
		m++;
	}
	qsort(cells, m, sizeof(BiKeyed), bi_keyed_by_value);

	dim->kind = BI_VALUE;
	dim->m = m;
	dim->sorted = palloc(sizeof(double) * Max(m, 1));
	dim->sorted_text = palloc(sizeof(char *) * Max(m, 1));
	for (int i = 0; i < m; i++)
	{
		dim->sorted[i] = cells[i].value;
		dim->sorted_text[i] = cells[i].key;
	}
	dim->constant = m == 0 || dim->sorted[0] == dim->sorted[m - 1];

	for (int i = 0; i < m;)
	{
		int			j = i + 1;

		while (j < m && dim->sorted[j] == dim->sorted[i])
			j++;
		for (int k = i; k < j; k++)
		{
			double		u;
			size_t		at = (size_t) cells[k].row * zstride;

			if (j - i == 1)
				u = (i + 0.5) / m;
			else
				u = (i + bi_open_uniform(rng) * (j - i)) / m;
			z[at] = sl_builtin_norm_quantile(u);
			mask[at] = dim->constant ? 0.0 : 1.0;
		}
		i = j;
	}
}

/* Decimal places of a numeric seed text ("12.340" -> 3). */
static int
bi_text_scale(const char *s)
{
	const char *dot = strchr(s, '.');

	if (dot == NULL)
		return 0;
	dot++;
	return (int) strspn(dot, "0123456789");
}

static void
bi_choose_format(BiColumn *bc, const SlColumn *col, const SlRowSet *seeds,
				 int c)
{
	bc->scale = 0;
	bc->typmin = -INFINITY;
	bc->typmax = INFINITY;
	switch (col->basetypid)
	{
		case INT2OID:
			bc->fmt = BI_FMT_INT;
			bc->typmin = PG_INT16_MIN;
			bc->typmax = PG_INT16_MAX;
			break;
		case INT4OID:
			bc->fmt = BI_FMT_INT;
			bc->typmin = PG_INT32_MIN;
			bc->typmax = PG_INT32_MAX;
			break;
		case INT8OID:
			bc->fmt = BI_FMT_INT;
			break;
		case FLOAT4OID:
			bc->fmt = BI_FMT_FLOAT4;
			break;
		case FLOAT8OID:
			bc->fmt = BI_FMT_FLOAT8;
			break;
		case MONEYOID:
			bc->fmt = BI_FMT_MONEY;
			break;
		case NUMERICOID:
			bc->fmt = BI_FMT_NUMERIC;
			if (col->typmod >= (int32) VARHDRSZ)
			{
				/* PG 15 typmods carry an 11-bit signed scale */
				int			scale = (((col->typmod - VARHDRSZ) & 0x7ff) ^ 1024) - 1024;

				bc->scale = Max(scale, 0);
			}
			else
			{
				for (int r = 0; r < seeds->nrows; r++)
				{
					const char *s = seeds->text[SL_CELL(seeds, r, c)];

					if (s != NULL)
						bc->scale = Max(bc->scale, bi_text_scale(s));
				}
			}
			bc->scale = Min(bc->scale, 1000);
			break;
		default:
			bc->fmt = BI_FMT_NEAREST;
			break;
	}
}

/*
 * The seed cells of column c as dimension inputs: keys for the category
 * dimension (the text of a categorical column; for a continuous one NULL,
 * the NaN / infinity text, or bi_finite_key), values, texts and finiteness
 * for the value dimension.  *special says whether a continuous column needs
 * a category dimension; categorical columns always do.
 */
static void
bi_column_cells(const SlTable *t, const SlRowSet *seeds, int c,
				const char **keys, double *vals, const char **texts,
				bool *fin, bool *special, int *nfinite)
{
	bool		categorical = t->cols[c].cls == SL_CATEGORICAL;

	*special = categorical;
	*nfinite = 0;
	for (int r = 0; r < seeds->nrows; r++)
	{
		size_t		cell = SL_CELL(seeds, r, c);
		bool		isnull = seeds->isnull[cell] || seeds->text[cell] == NULL;

		texts[r] = seeds->text[cell];
		vals[r] = seeds->num[cell];
		if (categorical)
		{
			keys[r] = isnull ? NULL : seeds->text[cell];
			fin[r] = false;
			continue;
		}
		fin[r] = !isnull && isfinite(vals[r]);
		if (fin[r])
			keys[r] = bi_finite_key;
		else
			keys[r] = isnull ? NULL : seeds->text[cell];	/* NaN, Infinity */
		*special |= !fin[r];
		*nfinite += fin[r];
	}
}

/* ---- correlation and its Cholesky factor ---- */

/*
 * Pairwise-complete Pearson correlation of the score columns (n x D,
 * row-major, with 0/1 mask), returned as a D x D matrix.
 */
static double *
bi_correlation(int n, int D, double *z, const double *mask)
{
	double	   *R = palloc0(sizeof(double) * D * D);
	double	   *S,
			   *Q,
			   *N,
			   *z2;

	for (int i = 0; i < D; i++)
		R[i * D + i] = 1.0;
	if (n < BI_MIN_PAIR_ROWS)
		return R;

	/* center each column over its own rows, zero elsewhere */
	for (int d = 0; d < D; d++)
	{
		double		sum = 0,
					cnt = 0;

		for (int r = 0; r < n; r++)
		{
			sum += mask[(size_t) r * D + d] * z[(size_t) r * D + d];
			cnt += mask[(size_t) r * D + d];
		}
		sum = cnt > 0 ? sum / cnt : 0;
		for (int r = 0; r < n; r++)
		{
			size_t		at = (size_t) r * D + d;

			z[at] = mask[at] * (z[at] - sum);
		}
	}
	CHECK_FOR_INTERRUPTS();

	z2 = palloc(sizeof(double) * n * D);
	for (size_t i = 0; i < (size_t) n * D; i++)
		z2[i] = z[i] * z[i];
	S = palloc0(sizeof(double) * D * D);
	Q = palloc0(sizeof(double) * D * D);
	N = palloc0(sizeof(double) * D * D);
	/* S = Zc' Zc; Q_ij = sum over rows with both of zc_i^2; N = counts */
	cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, n,
				1.0, z, D, 0.0, S, D);
	cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, n,
				1.0, z2, D, mask, D, 0.0, Q, D);
	cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, D, n,
				1.0, mask, D, 0.0, N, D);

	for (int i = 0; i < D; i++)
	{
		for (int j = i + 1; j < D; j++)
		{
			double		qi = Q[i * D + j];
			double		qj = Q[j * D + i];
			double		c = 0;

			if (N[i * D + j] >= BI_MIN_PAIR_ROWS && qi > 0 && qj > 0)
				c = S[i * D + j] / sqrt(qi * qj);
			if (isnan(c))
				c = 0;
			c = Max(-1.0, Min(1.0, c));
			R[i * D + j] = R[j * D + i] = c;
		}
	}
	pfree(z2);
	pfree(S);
	pfree(Q);
	pfree(N);
	return R;
}

/* dpotrf of (1 - lambda) R + lambda I into A; false if not positive definite */
static bool
bi_try_cholesky(const double *R, int D, double lambda, double *A)
{
	int			info = 0;

	for (int i = 0; i < D * D; i++)
		A[i] = (1.0 - lambda) * R[i] + (i % (D + 1) == 0 ? lambda : 0.0);
	dpotrf_("L", &D, A, &D, &info);
	if (info < 0)
		elog(ERROR, "dpotrf: invalid argument %d", -info);
	return info == 0;
}

/*
 * Cholesky factor of the regularized correlation R (D x D, overwritten):
 * add 1e-6 I and rescale to a unit diagonal; if dpotrf still fails, shrink
 * toward I with lambda doubling from 1e-4, then bisected down between the
 * last failure and the first success.  Returns L^T in row-major order
 * (that is, L in LAPACK's column-major lower triangle, upper part zeroed).
 */
static double *
bi_cholesky(double *R, int D)
{
	double	   *A = palloc(sizeof(double) * D * D);
	double		lambda = 0;
	double		failed = -1;	/* largest lambda known to fail */
	const double scale = 1.0 / (1.0 + 1e-6);

	for (int i = 0; i < D; i++)
		for (int j = 0; j < D; j++)
			R[i * D + j] = i == j ? 1.0 : R[i * D + j] * scale;

	for (;;)
	{
		if (bi_try_cholesky(R, D, lambda, A))
			break;
		if (lambda >= 1.0)
			elog(ERROR, "dpotrf failed on the identity matrix");
		failed = lambda;
		lambda = lambda == 0 ? 1e-4 : Min(2 * lambda, 1.0);
		CHECK_FOR_INTERRUPTS();
	}

	/*
	 * Doubling may overshoot by up to 2x; a few bisection steps between the
	 * last failure and lambda keep more of the seeds' correlation.
	 */
	if (lambda > 1e-4)
	{
		for (int step = 0; step < 6; step++)
		{
			double		mid = 0.5 * (failed + lambda);

			if (bi_try_cholesky(R, D, mid, A))
				lambda = mid;
			else
				failed = mid;
		}
		if (!bi_try_cholesky(R, D, lambda, A))
			elog(ERROR, "dpotrf failed on a matrix it factored before");
	}
	if (lambda > 0)
		elog(DEBUG1, "samplellm builtin: correlation shrunk toward I by %g",
			 lambda);

	/* column-major lower: element (i, j), i >= j, at i + j * D */
	for (int j = 0; j < D; j++)
		for (int i = 0; i < j; i++)
			A[i + j * D] = 0.0;
	return A;
}

/* ---- sampling ---- */

static int
bi_pick_category(const BiDim *dim, double u)
{
	int			lo = 0,
				hi = dim->ncat - 1;

	/* the first category whose upper bound exceeds u */
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (dim->cat_hi[mid] > u)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* Empirical quantile, linear between order statistics at (i + 0.5) / m. */
static double
bi_quantile(const BiDim *dim, double u)
{
	double		p = u * dim->m - 0.5;
	int			i;

	if (!(p > 0))
		return dim->sorted[0];
	if (p >= dim->m - 1)
		return dim->sorted[dim->m - 1];
	i = (int) p;
	return dim->sorted[i] + (p - i) * (dim->sorted[i + 1] - dim->sorted[i]);
}

static const char *
bi_nearest_text(const BiDim *dim, double v)
{
	int			lo = 0,
				hi = dim->m;

	/* first sorted value >= v */
	while (lo < hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (dim->sorted[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == dim->m)
		return dim->sorted_text[dim->m - 1];
	if (lo > 0 && v - dim->sorted[lo - 1] < dim->sorted[lo] - v)
		lo--;
	return dim->sorted_text[lo];
}

/* The text of a sampled value v of a continuous column. */
static char *
bi_value_text(const BiColumn *bc, const BiDim *dim, double v)
{
	char		buf[2048];
	double		lo = dim->sorted[0];
	double		hi = dim->sorted[dim->m - 1];

	v = Max(lo, Min(hi, v));
	switch (bc->fmt)
	{
		case BI_FMT_INT:
			v = rint(v);
			v = Max(bc->typmin, Min(bc->typmax, v));
			/* beyond 2^53 a double is not every integer */
			if (fabs(v) >= 9007199254740992.0)
				break;
			snprintf(buf, sizeof(buf), "%.0f", v + 0.0);
			return pstrdup(buf);
		case BI_FMT_NUMERIC:
			if (fabs(v) >= 1e300)
				break;
			snprintf(buf, sizeof(buf), "%.*f", bc->scale, v);
			return pstrdup(buf);
		case BI_FMT_FLOAT4:
			/* float4out's and float8out's shortest exact form */
			float_to_shortest_decimal_buf((float) v, buf);
			return pstrdup(buf);
		case BI_FMT_FLOAT8:
			double_to_shortest_decimal_buf(v, buf);
			return pstrdup(buf);
		case BI_FMT_MONEY:
			/* cents beyond 2^53 are not exact either */
			if (fabs(v) >= 9e13)
				break;
			snprintf(buf, sizeof(buf), "%.2f", v);
			return pstrdup(buf);
		case BI_FMT_NEAREST:
			break;
	}
	return pstrdup(bi_nearest_text(dim, v));
}

/* ---- the entry point ---- */

char **
sl_builtin_propose(const SlTable *t, const SlRowSet *seeds, int nrows,
				   uint64 seed)
{
	int			ncols = t->ncols;
	int			n = seeds->nrows;
	char	  **out;
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext workcxt;
	BiColumn   *bcols;
	BiDim	   *dims;
	int			D = 0;
	double	   *z,
			   *mask,
			   *R,
			   *Lt,
			   *eps,
			   *zs;
	const char **keys;
	const char **texts;
	double	   *vals;
	bool	   *fin;
	int		   *cand;
	int		   *others;
	int			ncand = 0;
	int			stride = 2 * ncols;
	pg_prng_state rng;

	Assert(seeds->ncols == ncols);
	out = palloc0(sizeof(char *) * Max((size_t) nrows * ncols, 1));
	if (nrows <= 0 || ncols == 0)
		return out;
	if (n <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the built-in generator needs at least one seed row"),
				 errdetail("Table \"%s\" returned no seed rows.", t->relname)));

	workcxt = AllocSetContextCreate(callcxt, "samplellm builtin",
									ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(workcxt);

	/* at most two dimensions per column */
	bcols = palloc(sizeof(BiColumn) * ncols);
	dims = palloc0(sizeof(BiDim) * 2 * ncols);
	z = palloc(sizeof(double) * n * 2 * ncols);
	mask = palloc(sizeof(double) * n * 2 * ncols);
	keys = palloc(sizeof(char *) * n);
	texts = palloc(sizeof(char *) * n);
	vals = palloc(sizeof(double) * n);
	fin = palloc(sizeof(bool) * n);
	cand = palloc(sizeof(int) * ncols);
	others = palloc(sizeof(int) * ncols);
	pg_prng_seed(&rng, sl_stream_seed(seed, SL_STREAM_BUILTIN_FIT, 0));

	/*
	 * Lay out the dimensions and fit the value ones first, writing scores
	 * with stride 2 * ncols (compacted to stride D afterwards); category
	 * dimensions then order their categories along those scores.
	 */
	for (int c = 0; c < ncols; c++)
	{
		BiColumn   *bc = &bcols[c];
		bool		special;
		int			nfinite;

		CHECK_FOR_INTERRUPTS();
		bc->catdim = bc->valdim = -1;
		bi_choose_format(bc, &t->cols[c], seeds, c);
		bi_column_cells(t, seeds, c, keys, vals, texts, fin, &special, &nfinite);
		if (special)
			bc->catdim = D++;
		if (nfinite > 0)
		{
			bc->valdim = D;
			bi_fit_value(&dims[D], vals, texts, fin, n, &rng,
						 z + D, mask + D, stride);
			if (!dims[D].constant)
				cand[ncand++] = D;
			D++;
		}
	}
	for (int c = 0; c < ncols; c++)
	{
		BiColumn   *bc = &bcols[c];
		bool		special;
		int			nfinite;
		int			nown = 0;

		if (bc->catdim < 0)
			continue;
		CHECK_FOR_INTERRUPTS();
		bi_column_cells(t, seeds, c, keys, vals, texts, fin, &special, &nfinite);
		/* the column's own value dimension is no partner */
		for (int j = 0; j < ncand; j++)
			if (cand[j] != bc->valdim)
				others[nown++] = cand[j];
		bi_fit_category(&dims[bc->catdim], keys, n, &rng, z, mask, stride,
						bc->catdim, others, nown);
	}

	/* compact the score matrix to n x D */
	if (D < 2 * ncols)
	{
		for (int r = 0; r < n; r++)
			for (int d = 0; d < D; d++)
			{
				z[(size_t) r * D + d] = z[(size_t) r * 2 * ncols + d];
				mask[(size_t) r * D + d] = mask[(size_t) r * 2 * ncols + d];
			}
	}

	R = bi_correlation(n, D, z, mask);
	Lt = bi_cholesky(R, D);

	/* sample in chunks: Z = E L' */
	pg_prng_seed(&rng, sl_stream_seed(seed, SL_STREAM_BUILTIN_SAMPLE, 0));
	eps = palloc(sizeof(double) * BI_CHUNK_ROWS * D);
	zs = palloc(sizeof(double) * BI_CHUNK_ROWS * D);
	for (int done = 0; done < nrows;)
	{
		int			k = Min(BI_CHUNK_ROWS, nrows - done);

		CHECK_FOR_INTERRUPTS();
		bi_fill_normals(&rng, eps, (size_t) k * D);
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, D, D,
					1.0, eps, D, Lt, D, 0.0, zs, D);

		MemoryContextSwitchTo(callcxt);
		for (int i = 0; i < k; i++)
		{
			const double *zr = zs + (size_t) i * D;
			char	  **row = out + (size_t) (done + i) * ncols;

			for (int c = 0; c < ncols; c++)
			{
				const BiColumn *bc = &bcols[c];

				if (bc->catdim >= 0)
				{
					const BiDim *dim = &dims[bc->catdim];
					int			cat = bi_pick_category(dim, sl_builtin_norm_cdf(zr[bc->catdim]));

					if (cat != dim->finite_cat)
					{
						row[c] = dim->cat_text[cat] ? pstrdup(dim->cat_text[cat]) : NULL;
						continue;
					}
				}
				if (bc->valdim >= 0)
				{
					const BiDim *dim = &dims[bc->valdim];

					row[c] = bi_value_text(bc, dim,
										   bi_quantile(dim, sl_builtin_norm_cdf(zr[bc->valdim])));
				}
				else
					row[c] = NULL;	/* can't happen: no finite seeds */
			}
		}
		MemoryContextSwitchTo(workcxt);
		done += k;
	}

	MemoryContextSwitchTo(callcxt);
	MemoryContextDelete(workcxt);
	return out;
}
