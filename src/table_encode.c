/*-------------------------------------------------------------------------
 *
 * table_encode.c
 *	  Numeric encoding of rows for distance computations (k-means).
 *
 * Every column of the table becomes a block of dimensions:
 *
 *	- SL_CONTINUOUS: one dimension (value - mean) / std, with mean and
 *	  population std taken over the finite non-null values of the reference
 *	  set, plus a 0/1 "missing or non-finite" indicator when the reference
 *	  holds a NULL, NaN or +-Inf.  A column that is constant (or has no finite
 *	  value) on the reference keeps only its indicator, if any.
 *
 *	- SL_CATEGORICAL: one-hot over the max_categories most frequent texts of
 *	  the reference, plus "other" and "NULL", always present so that every row
 *	  set encoded later has the same layout.
 *
 * The encoder is learned once (sl_encoder_fit) and can encode any row set of
 * the same table (sl_encoder_apply).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "table.h"

/*
 * A differing category sets two one-hot dimensions apart (one 1 -> 0, one
 * 0 -> 1), a squared distance of 2 at unit scale.  Scaling the block by
 * 1/sqrt(2) makes that squared distance 1, the same as one standard deviation
 * of a standardized continuous column, so neither kind of column dominates.
 */
#define SL_CATEGORY_SCALE	0.70710678118654752440

/*
 * Standardized values are clamped: a row set encoded after the fit may hold
 * values far outside the reference range, and an overflow to Inf would turn
 * every distance into NaN.  On the reference itself |z| <= sqrt(n) anyway.
 */
#define SL_Z_CLAMP			1e6

/* How often the per-row loops check for interrupts. */
#define SL_ENCODE_CHECK_EVERY	4096

/* A category text and what the encoder does with it. */
typedef struct SlCatEntry
{
	const char *key;
	uint32		hash;
	char		status;			/* simplehash bookkeeping */
	int			count;			/* occurrences in the reference (fit only) */
	int			slot;			/* one-hot position in the block */
} SlCatEntry;

#define SH_PREFIX			slcat
#define SH_ELEMENT_TYPE		SlCatEntry
#define SH_KEY_TYPE			const char *
#define SH_KEY				key
#define SH_HASH_KEY(tb, k)	hash_bytes((const unsigned char *) (k), (int) strlen(k))
#define SH_EQUAL(tb, a, b)	(strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE			static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

typedef struct SlEncColumn
{
	SlColClass	cls;
	int			offset;			/* first dimension of the block */

	/* SL_CONTINUOUS */
	bool		has_value;		/* std > 0: a standardized dimension */
	bool		has_indicator;	/* reference had NULL/NaN/Inf */
	double		mean;
	double		std;

	/*
	 * SL_CATEGORICAL: ncats top categories at slots 0..ncats-1 of the block,
	 * then "other" at ncats and "NULL" at ncats + 1.
	 */
	int			ncats;
	slcat_hash *cats;
} SlEncColumn;

struct SlEncoder
{
	int			ncols;
	int			dim;
	SlEncColumn *cols;
};

/* qsort order for top categories: most frequent first, then by text. */
static int
cat_entry_cmp(const void *a, const void *b)
{
	const SlCatEntry *ea = *(const SlCatEntry *const *) a;
	const SlCatEntry *eb = *(const SlCatEntry *const *) b;

	if (ea->count != eb->count)
		return (ea->count > eb->count) ? -1 : 1;
	return strcmp(ea->key, eb->key);
}

/* Mean and population std of the finite non-null values of column c. */
static void
fit_continuous(SlEncColumn *ec, const SlRowSet *ref, int c)
{
	double		mean = 0.0;
	double		m2 = 0.0;
	int64		n = 0;
	bool		missing = false;

	for (int r = 0; r < ref->nrows; r++)
	{
		size_t		cell = SL_CELL(ref, r, c);
		double		v;
		double		delta;

		if ((r % SL_ENCODE_CHECK_EVERY) == 0)
			CHECK_FOR_INTERRUPTS();

		if (ref->isnull[cell] || !isfinite(ref->num[cell]))
		{
			missing = true;
			continue;
		}
		v = ref->num[cell];

		/* Welford's update: no catastrophic cancellation, no big sums */
		n++;
		delta = v - mean;
		mean += delta / (double) n;
		m2 += delta * (v - mean);
	}

	ec->has_indicator = missing;
	ec->mean = mean;
	ec->std = (n > 0) ? sqrt(m2 / (double) n) : 0.0;

	/* Extreme magnitudes may overflow; such a column is treated as constant */
	ec->has_value = (n > 0 && isfinite(ec->mean) && isfinite(ec->std) &&
					 ec->std > 0.0);
}

/* The max_categories most frequent texts of column c. */
static void
fit_categorical(SlEncColumn *ec, const SlRowSet *ref, int c,
				int max_categories)
{
	slcat_hash *counts;
	slcat_iterator it;
	SlCatEntry *entry;
	SlCatEntry **distinct;
	int			ndistinct = 0;

	counts = slcat_create(CurrentMemoryContext, 64, NULL);
	for (int r = 0; r < ref->nrows; r++)
	{
		size_t		cell = SL_CELL(ref, r, c);
		bool		found;

		if ((r % SL_ENCODE_CHECK_EVERY) == 0)
			CHECK_FOR_INTERRUPTS();

		if (ref->isnull[cell] || ref->text[cell] == NULL)
			continue;
		entry = slcat_insert(counts, ref->text[cell], &found);
		if (!found)
		{
			entry->count = 0;
			ndistinct++;
		}
		entry->count++;
	}

	/* Rank the distinct texts; the order does not depend on the hash layout */
	distinct = palloc(sizeof(SlCatEntry *) * Max(ndistinct, 1));
	ndistinct = 0;
	slcat_start_iterate(counts, &it);
	while ((entry = slcat_iterate(counts, &it)) != NULL)
		distinct[ndistinct++] = entry;
	if (ndistinct > 1)
		qsort(distinct, ndistinct, sizeof(SlCatEntry *), cat_entry_cmp);

	ec->ncats = Min(ndistinct, max_categories);
	ec->cats = slcat_create(CurrentMemoryContext, Max(ec->ncats, 1), NULL);
	for (int i = 0; i < ec->ncats; i++)
	{
		bool		found;

		/* copy the text: the encoder may outlive the reference set */
		entry = slcat_insert(ec->cats, pstrdup(distinct[i]->key), &found);
		Assert(!found);
		entry->count = distinct[i]->count;
		entry->slot = i;
	}

	pfree(distinct);
	slcat_destroy(counts);
}

SlEncoder *
sl_encoder_fit(const SlTable *t, const SlRowSet *ref, int max_categories)
{
	SlEncoder  *enc;
	int			dim = 0;

	if (ref->ncols != t->ncols)
		elog(ERROR, "row set has %d columns, table has %d",
			 ref->ncols, t->ncols);
	max_categories = Max(max_categories, 0);

	enc = palloc0(sizeof(SlEncoder));
	enc->ncols = t->ncols;
	enc->cols = palloc0(sizeof(SlEncColumn) * Max(t->ncols, 1));

	for (int c = 0; c < t->ncols; c++)
	{
		SlEncColumn *ec = &enc->cols[c];

		ec->cls = t->cols[c].cls;
		ec->offset = dim;
		if (ec->cls == SL_CONTINUOUS)
		{
			fit_continuous(ec, ref, c);
			dim += (ec->has_value ? 1 : 0) + (ec->has_indicator ? 1 : 0);
		}
		else
		{
			fit_categorical(ec, ref, c, max_categories);
			dim += ec->ncats + 2;
		}
	}
	enc->dim = dim;

	return enc;
}

int
sl_encoder_dim(const SlEncoder *enc)
{
	return enc->dim;
}

/*
 * Encodes rs into a palloc'd rs->nrows x dim row-major matrix.  The result
 * may exceed 1 GB for large row sets, hence the huge allocation.
 */
double *
sl_encoder_apply(const SlEncoder *enc, const SlRowSet *rs)
{
	size_t		dim = (size_t) enc->dim;
	double	   *x;

	if (rs->ncols != enc->ncols)
		elog(ERROR, "row set has %d columns, encoder expects %d",
			 rs->ncols, enc->ncols);

	x = MemoryContextAllocExtended(CurrentMemoryContext,
								   Max((size_t) rs->nrows * dim, 1) * sizeof(double),
								   MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);

	for (int r = 0; r < rs->nrows; r++)
	{
		double	   *row = x + (size_t) r * dim;

		if ((r % SL_ENCODE_CHECK_EVERY) == 0)
			CHECK_FOR_INTERRUPTS();

		for (int c = 0; c < enc->ncols; c++)
		{
			const SlEncColumn *ec = &enc->cols[c];
			size_t		cell = SL_CELL(rs, r, c);
			double	   *block = row + ec->offset;

			if (ec->cls == SL_CONTINUOUS)
			{
				bool		missing = rs->isnull[cell] || !isfinite(rs->num[cell]);

				/* a missing value sits at the mean: 0 after standardizing */
				if (ec->has_value && !missing)
				{
					double		z = (rs->num[cell] - ec->mean) / ec->std;

					/* finite operands, but the difference may overflow */
					if (!isfinite(z))
						z = (z < 0.0) ? -SL_Z_CLAMP : SL_Z_CLAMP;
					block[0] = Max(Min(z, SL_Z_CLAMP), -SL_Z_CLAMP);
				}
				if (ec->has_indicator && missing)
					block[ec->has_value ? 1 : 0] = 1.0;
			}
			else
			{
				int			slot;

				if (rs->isnull[cell] || rs->text[cell] == NULL)
					slot = ec->ncats + 1;
				else
				{
					SlCatEntry *entry = NULL;

					if (ec->ncats > 0)
						entry = slcat_lookup(ec->cats, rs->text[cell]);
					slot = entry ? entry->slot : ec->ncats;
				}
				block[slot] = SL_CATEGORY_SCALE;
			}
		}
	}

	return x;
}
