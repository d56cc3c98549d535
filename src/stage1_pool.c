/*-------------------------------------------------------------------------
 *
 * stage1_pool.c
 *	  The candidate pool: the valid rows of every answered request, by group
 *	  and request number, and the counts that say when stage 1 is done.
 *
 * Both providers append here (the LLM per answer, the built-in generator
 * per batch); nothing else holds candidates.  A row counts for the group
 * its label puts it in (sl_groups_of_row); a group's requests are numbered
 * 0, 1, 2, ..., and its answered prefix grows as answers arrive, in any
 * order, and stops at the first request that brings the group's own rows to
 * its target.  The pool handed to stage 2 is the prefixes of the groups, in
 * group order: a function of the answers alone, whatever the concurrency.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "utils/hsearch.h"

#include "stage1.h"

typedef struct PoolGroup
{
	int			issued;			/* requests 0..issued-1 exist */
	int			answers;		/* of those, answered */
	int			cap;
	SlRowSet  **results;		/* by request number; NULL: not answered */
	int		   *own;			/* own-label rows of each answer, in arrival */
	bool	  **dropped;		/* per answer, per row: repeats a natural key
								 * of an earlier row of the prefixes */
	int			prefix;			/* requests 0..prefix-1 answered, counted */
	int64		have;			/* own rows in the prefix */
	int64		have_all;		/* own rows in every answer */
	bool		full;			/* the prefix reached the target: it stops */
} PoolGroup;

struct SlPool
{
	const SlTable *t;
	const SlGroups *gs;
	SlValidator *validator;		/* counts the repeated keys */
	PoolGroup  *g;
	int64		valid;
	int			nkeys;			/* natural keys of the table */
	HTAB	   *seen_arrival;	/* their values in every answer, as they came */
	HTAB	   *seen_prefix;	/* their values in the prefixes, in order */
	const SlStrata *strata;		/* related tables, or NULL */
	int64	   *strata_have;	/* per stratum, in group 0's prefix */
	int64	   *strata_all;		/* per stratum, in every answer */
};

void
sl_pool_set_strata(SlPool *p, const SlStrata *strata)
{
	p->strata = strata;
	p->strata_have = palloc0(sizeof(int64) * Max(strata->nstrata, 1));
	p->strata_all = palloc0(sizeof(int64) * Max(strata->nstrata, 1));
}

/* Have all strata their targets (of the prefix, or of every answer)? */
static bool
strata_full(const SlPool *p, const int64 *have)
{
	int			s;

	for (s = 0; s < p->strata->nstrata; s++)
		if (have[s] < p->strata->target[s])
			return false;
	return true;
}

/* A row's stratum (-1: none); counted into have[] when counted. */
static void
count_stratum(const SlPool *p, const SlRowSet *rs, int r, int64 *have)
{
	int			s = sl_refs_tuple_of_row(p->strata->refs, p->strata->fk, rs, r);

	if (s >= 0)
		have[s]++;
}

/*
 * The 64-bit hash of row r's value of natural key k (0 when a NULL makes
 * it distinct), the key's number mixed in.
 */
static uint64
key_hash(const SlTable *t, const SlKey *key, int k, const SlRowSet *rs, int r)
{
	uint64		h = 0x7b2a1c39d4e5f607ULL ^ (uint64) k;
	int			i;

	for (i = 0; i < key->ncols; i++)
	{
		const char *v = rs->text[SL_CELL(rs, r, key->cols[i])];

		if (v == NULL && !key->nulls_not_distinct)
			return 0;
		h = hash_combine64(h, v ? hash_bytes_extended((const unsigned char *) v, strlen(v), i) : 0x51);
	}
	return h ? h : 1;
}

/* Is row r new in set (every natural key)?  If so, its keys are added. */
static bool
keys_new(SlPool *p, HTAB *set, const SlRowSet *rs, int r)
{
	uint64		hs[INDEX_MAX_KEYS * 4];
	int			n = 0;
	int			k;
	bool		found;

	for (k = 0; k < p->t->nkeys && n < lengthof(hs); k++)
	{
		uint64		h;

		if (!p->t->keys[k].checked)
			continue;
		h = key_hash(p->t, &p->t->keys[k], k, rs, r);
		if (h == 0)
			continue;
		(void) hash_search(set, &h, HASH_FIND, &found);
		if (found)
			return false;
		hs[n++] = h;
	}
	for (k = 0; k < n; k++)
		(void) hash_search(set, &hs[k], HASH_ENTER, &found);
	return true;
}

static HTAB *
key_set(const char *name)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(uint64);
	ctl.entrysize = sizeof(uint64);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

SlPool *
sl_pool_create(const SlTable *t, const SlGroups *gs, SlValidator *validator)
{
	SlPool	   *p = palloc0(sizeof(SlPool));
	int			k;

	p->t = t;
	p->gs = gs;
	p->validator = validator;
	p->g = palloc0(sizeof(PoolGroup) * gs->ngroups);
	for (k = 0; k < t->nkeys; k++)
		p->nkeys += t->keys[k].checked;
	if (p->nkeys > 0)
	{
		p->seen_arrival = key_set("samplellm keys seen");
		p->seen_prefix = key_set("samplellm keys kept");
	}
	return p;
}

int
sl_pool_issue(SlPool *p, int g)
{
	PoolGroup  *pg = &p->g[g];

	if (pg->issued == pg->cap)
	{
		int			cap = Max(16, pg->cap * 2);

		pg->results = pg->results ? repalloc(pg->results, sizeof(SlRowSet *) * cap) :
			palloc(sizeof(SlRowSet *) * cap);
		pg->own = pg->own ? repalloc(pg->own, sizeof(int) * cap) : palloc(sizeof(int) * cap);
		pg->dropped = pg->dropped ? repalloc(pg->dropped, sizeof(bool *) * cap) :
			palloc(sizeof(bool *) * cap);
		memset(pg->results + pg->cap, 0, sizeof(SlRowSet *) * (cap - pg->cap));
		pg->cap = cap;
	}
	return pg->issued++;
}

void
sl_pool_put(SlPool *p, int g, int k, SlRowSet *rows)
{
	PoolGroup  *pg = &p->g[g];
	int			own = 0;
	int			r;

	if (k < 0 || k >= pg->issued || pg->results[k] != NULL)
		elog(ERROR, "samplellm: request %d of group %d answered twice or never issued", k, g);
	for (r = 0; r < rows->nrows; r++)
		if (sl_groups_of_row(p->gs, rows, r) == g &&
			(p->nkeys == 0 || keys_new(p, p->seen_arrival, rows, r)))
		{
			own++;
			if (p->strata)
				count_stratum(p, rows, r, p->strata_all);
		}
	pg->results[k] = rows;
	pg->own[k] = own;
	pg->dropped[k] = NULL;
	pg->answers++;
	pg->have_all += own;
	p->valid += rows->nrows;
	while (!pg->full && pg->prefix < pg->issued && pg->results[pg->prefix] != NULL)
	{
		int			j = pg->prefix++;
		const SlRowSet *rs = pg->results[j];

		if (p->nkeys == 0 && p->strata == NULL)
			pg->have += pg->own[j];
		else
		{
			/* in prefix order, so the row kept of two that share a key is fixed */
			pg->dropped[j] = palloc0(sizeof(bool) * Max(rs->nrows, 1));
			for (r = 0; r < rs->nrows; r++)
			{
				if (p->nkeys > 0 && !keys_new(p, p->seen_prefix, rs, r))
				{
					pg->dropped[j][r] = true;
					sl_validator_count(p->validator, SL_REJ_KEY_REPEATED);
				}
				else if (sl_groups_of_row(p->gs, rs, r) == g)
				{
					pg->have++;
					if (p->strata)
						count_stratum(p, rs, r, p->strata_have);
				}
			}
		}
		if (p->strata ? strata_full(p, p->strata_have) : pg->have >= p->gs->groups[g].target)
			pg->full = true;
	}
}

int
sl_pool_issued(const SlPool *p, int g)
{
	return p->g[g].issued;
}

int
sl_pool_answers(const SlPool *p, int g)
{
	return p->g[g].answers;
}

int64
sl_pool_have(const SlPool *p, int g)
{
	return p->g[g].have;
}

/*
 * Rows group g still lacks in its prefix.  With strata (related tables) a
 * group may hold its target in rows yet lack some strata: what counts is
 * what each stratum lacks, or a generator asking for target - have would
 * ask for nothing forever.
 */
int64
sl_pool_lacking(const SlPool *p, int g)
{
	int64		lack = 0;
	int			s;

	if (p->g[g].full)
		return 0;
	if (p->strata == NULL)
		return Max(0, p->gs->groups[g].target - p->g[g].have);
	for (s = 0; s < p->strata->nstrata; s++)
		lack += Max(0, p->strata->target[s] - p->strata_have[s]);
	return Max(lack, 1);
}

int64
sl_pool_have_all(const SlPool *p, int g)
{
	return p->g[g].have_all;
}

int64
sl_pool_valid(const SlPool *p)
{
	return p->valid;
}

bool
sl_pool_full(const SlPool *p)
{
	int			g;

	for (g = 0; g < p->gs->ngroups; g++)
		if (!p->g[g].full)
			return false;
	return true;
}

/*
 * The group to ask next: not full, and not expected to be filled by the
 * answers received and the requests in flight; the one whose expected rows
 * fall furthest short of its target, relative to it.  -1 when none: then
 * either stage 1 is done or it waits for answers in flight.
 */
int
sl_pool_next_group(const SlPool *p, double per_answer)
{
	int			best = -1;
	double		best_gap = 0;
	int			g;

	for (g = 0; g < p->gs->ngroups; g++)
	{
		const PoolGroup *pg = &p->g[g];
		double		target = p->gs->groups[g].target;
		double		per = pg->answers > 0 ? (double) pg->have_all / pg->answers : per_answer;
		double		have_all = pg->have_all;
		double		expected;
		double		gap;

		/* strata: what counts is what each still lacks */
		if (p->strata)
		{
			int			s;

			have_all = 0;
			for (s = 0; s < p->strata->nstrata; s++)
				have_all += Min(p->strata_all[s], p->strata->target[s]);
		}
		expected = have_all + (pg->issued - pg->answers) * per;

		if (pg->full || expected >= target)
			continue;
		gap = (target - expected) / target;
		if (best < 0 || gap > best_gap)
		{
			best = g;
			best_gap = gap;
		}
	}
	return best;
}

int
sl_pool_collapsed_group(const SlPool *p, int min_answers)
{
	int			g;

	for (g = 0; g < p->gs->ngroups; g++)
		if (!p->g[g].full && p->g[g].answers >= min_answers && p->g[g].have_all == 0)
			return g;
	return -1;
}

SlRowSet *
sl_pool_rows(const SlPool *p, int **group_of)
{
	SlRowSet   *rows;
	int64		total = 0;
	int			g;
	int			k;
	int			r;

	for (g = 0; g < p->gs->ngroups; g++)
		for (k = 0; k < p->g[g].prefix; k++)
			total += p->g[g].results[k]->nrows;
	rows = sl_rowset_create(p->t->ncols, (int) Min(total, PG_INT32_MAX / 2));
	for (g = 0; g < p->gs->ngroups; g++)
		for (k = 0; k < p->g[g].prefix; k++)
		{
			if (p->g[g].dropped[k] == NULL)
				sl_rowset_append_shallow(rows, p->g[g].results[k]);
			else
				for (r = 0; r < p->g[g].results[k]->nrows; r++)
					if (!p->g[g].dropped[k][r])
						sl_rowset_append_row(rows, p->g[g].results[k], r);
		}
	*group_of = palloc(sizeof(int) * Max(rows->nrows, 1));
	for (r = 0; r < rows->nrows; r++)
		(*group_of)[r] = sl_groups_of_row(p->gs, rows, r);
	return rows;
}

bool
sl_pool_quotas_met(const SlPool *p, StringInfo detail)
{
	const SlGroups *gs = p->gs;
	int64	   *count = palloc0(sizeof(int64) * gs->ngroups);
	bool		met = true;
	int			g;
	int			k;
	int			r;

	/* what the prefixes hold, whichever group's requests brought it */
	for (g = 0; g < gs->ngroups; g++)
		for (k = 0; k < p->g[g].prefix; k++)
		{
			const SlRowSet *rs = p->g[g].results[k];

			for (r = 0; r < rs->nrows; r++)
			{
				int			h;

				if (p->g[g].dropped[k] && p->g[g].dropped[k][r])
					continue;
				h = sl_groups_of_row(gs, rs, r);

				if (h >= 0)
					count[h]++;
			}
		}
	for (g = 0; g < gs->ngroups; g++)
		if (count[g] < gs->groups[g].quota)
			met = false;
	if (p->strata)
	{
		int			s;
		int			short_strata = 0;

		for (s = 0; s < p->strata->nstrata; s++)
			if (p->strata_have[s] < p->strata->quota[s])
				short_strata++;
		if (short_strata > 0)
		{
			met = false;
			if (detail)
				appendStringInfo(detail, " %d of %d new parent rows have fewer candidates than children to draw.",
								 short_strata, p->strata->nstrata);
		}
	}
	if (detail && gs->label_col >= 0)
	{
		appendStringInfoString(detail, " Valid rows per group:");
		for (g = 0; g < gs->ngroups; g++)
			appendStringInfo(detail, "%s %s = %s: " INT64_FORMAT " of %d",
							 g ? "," : "", p->t->cols[gs->label_col].name,
							 gs->groups[g].rest ? "(other values)" : gs->groups[g].label,
							 count[g], gs->groups[g].quota);
		appendStringInfoChar(detail, '.');
	}
	pfree(count);
	return met;
}
