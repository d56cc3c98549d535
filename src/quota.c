/*-------------------------------------------------------------------------
 *
 * quota.c
 *	  The per_group option: how many returned rows each label value gets.
 *
 * per_group is a JSON object from label values to shares of n ({"true":
 * 0.5}) or to row counts ({"true": 300}); the rows left over go to the
 * label values not listed.  The typical use is generating minority-class
 * rows for an imbalanced click table.  Each group gets its own requests
 * (exemplars with that label, and an instruction to write that label),
 * its own share of the candidate pool, and its own draw in stage 2, on the
 * weights stage 2 computes for the whole pool.  Requests are assigned to
 * groups by a fixed schedule proportional to their targets, so the rows
 * stay a function of the seed and the answers, whatever the concurrency.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include "cjson_prelude.h"
#include "run.h"

static void
bad_per_group(const char *text, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid per_group \"%s\"", text),
			 errdetail("%s", why),
			 errhint("Pass a JSON object from label values to shares of n or to row counts, e.g. '{\"true\": 0.5}' or '{\"true\": 300}'.")));
}

/*
 * The label value as the column's output function writes it.  A key the
 * label's type refuses is a per_group error that says so, not a bare
 * input-syntax error.
 */
static char *
canonical_label(const SlColumn *col, const char *per_group, const char *text)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *volatile out = NULL;

	PG_TRY();
	{
		Datum		d = InputFunctionCall((FmgrInfo *) &col->infunc, (char *) text,
										  col->typioparam, col->typmod);

		out = OutputFunctionCall((FmgrInfo *) &col->outfunc, d);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (ERRCODE_TO_CATEGORY(edata->sqlerrcode) != ERRCODE_DATA_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid per_group \"%s\"", per_group),
				 errdetail("The key \"%s\" is not a value of the label column \"%s\" (type %s): %s",
						   text, col->name, col->typname, edata->message),
				 errhint("The keys are label values, written as the column's type reads them.")));
	}
	PG_END_TRY();
	return out;
}

void
sl_quota_parse(SlRun *run, const char *per_group)
{
	const SlTable *t = run->t;
	const SlColumn *lab;
	cJSON	   *doc;
	cJSON	   *item;
	int			nkeys;
	double		sum = 0;
	bool		shares = false;
	bool		counts = false;
	int			assigned = 0;
	int			g;
	bool		others_exist = false;
	int			r;

	if (t->label_col < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("per_group needs a label column"),
				 errhint("Pass label => 'column' too.")));
	lab = &t->cols[t->label_col];
	/* the whole text is the object: nothing may follow it */
	doc = cJSON_ParseWithOpts(per_group, NULL, true);
	if (doc == NULL || !cJSON_IsObject(doc) || doc->child == NULL)
		bad_per_group(per_group, "It is not a non-empty JSON object.");
	nkeys = cJSON_GetArraySize(doc);
	run->groups = palloc0(sizeof(SlGroup) * (nkeys + 1));

	for (item = doc->child; item; item = item->next)
	{
		double		v;
		SlGroup    *grp = &run->groups[run->ngroups];

		if (!cJSON_IsNumber(item) || !(item->valuedouble > 0) || !isfinite(item->valuedouble))
			bad_per_group(per_group, "Every value must be a positive number.");
		v = item->valuedouble;
		if (v > run->n)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("per_group asks for %g rows of one label value, more than n = %d", v, run->n)));
		if (v < 1)
			shares = true;
		else if (v == floor(v))
			counts = true;
		else
			bad_per_group(per_group, "A value must be a share below 1 or a whole number of rows.");
		grp->label = canonical_label(lab, per_group, item->string);
		for (g = 0; g < run->ngroups; g++)
			if (strcmp(run->groups[g].label, grp->label) == 0)
				bad_per_group(per_group, "A label value is listed twice.");
		grp->quota = shares ? (int) floor(v * run->n + 0.5) : (int) v;
		sum += v;
		run->ngroups++;
	}
	if (shares && counts)
		bad_per_group(per_group, "Use either shares or row counts, not both.");
	if (shares && sum > 1.0 + 1e-9)
		bad_per_group(per_group, "The shares add up to more than 1.");
	for (g = 0; g < run->ngroups; g++)
		assigned += run->groups[g].quota;
	if (assigned > run->n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("per_group asks for %d rows, more than n = %d", assigned, run->n)));

	/* The rest of n goes to the label values not listed, if the seeds have any. */
	for (r = 0; r < run->target_rows->nrows && !others_exist; r++)
	{
		const char *v = run->target_rows->text[SL_CELL(run->target_rows, r, t->label_col)];

		others_exist = true;
		for (g = 0; g < run->ngroups; g++)
			if (v && strcmp(v, run->groups[g].label) == 0)
				others_exist = false;
	}
	if (assigned < run->n)
	{
		if (!others_exist)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("per_group gives %d of n = %d rows, and the real rows have no other label value for the rest",
							assigned, run->n),
					 errhint("Make the shares add up to 1, or the counts to n.")));
		run->groups[run->ngroups].label = NULL;
		run->groups[run->ngroups].quota = run->n - assigned;
		run->ngroups++;
	}

	run->target = 0;
	for (g = 0; g < run->ngroups; g++)
	{
		SlGroup    *grp = &run->groups[g];
		StringInfoData buf;

		grp->target = (int) Min(ceil(grp->quota * run->oversample), (double) PG_INT32_MAX / 4);
		run->target += grp->target;
		if (grp->label == NULL)
			continue;
		grp->seeds = sl_rowset_create(t->ncols, 16);
		for (r = 0; r < run->target_rows->nrows; r++)
		{
			const char *v = run->target_rows->text[SL_CELL(run->target_rows, r, t->label_col)];

			if (v && strcmp(v, grp->label) == 0)
				sl_rowset_append_row(grp->seeds, run->target_rows, r);
		}
		if (grp->seeds->nrows == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("per_group asks for %s = %s, which no real row has",
							lab->name, grp->label),
					 errdetail("None of the %d seed rows%s has that label value.",
							   run->target_rows->nrows,
							   run->condition ? " that satisfy the condition" : ""),
					 errhint("samplellm imitates real rows: ask for label values the source has, or raise max_seed_rows if the value is rare.")));
		initStringInfo(&buf);
		appendStringInfoString(&buf, "Every one of them must have ");
		sl_append_data_text(&buf, lab->name);
		appendStringInfoString(&buf, " = ");
		sl_append_json_value(&buf, lab, grp->label);
		appendStringInfoChar(&buf, '.');
		grp->instruction = buf.data;
	}
}

/* The group a candidate counts for, or -1 (a label value nobody asked for). */
int
sl_quota_group_of(const SlRun *run, const SlRowSet *rs, int r)
{
	const char *v = rs->text[SL_CELL(rs, r, run->t->label_col)];
	int			rest = -1;
	int			g;

	for (g = 0; g < run->ngroups; g++)
	{
		if (run->groups[g].label == NULL)
			rest = g;
		else if (v && strcmp(v, run->groups[g].label) == 0)
			return g;
	}
	return rest;
}

/*
 * The group request `index` asks for: smooth weighted round robin over the
 * groups' targets, a function of the index alone.
 */
int
sl_quota_request_group(SlRun *run, int index)
{
	while (run->schedule_len <= index)
	{
		int			i = run->schedule_len;
		int		   *given = palloc0(sizeof(int) * run->ngroups);
		double		best = -1e300;
		int			pick = 0;
		int			g;
		int			k;

		if (run->schedule == NULL)
			run->schedule = palloc(sizeof(int) * 64);
		else if ((i & (i - 1)) == 0 && i >= 64)
			run->schedule = repalloc(run->schedule, sizeof(int) * i * 2);
		for (k = 0; k < i; k++)
			given[run->schedule[k]]++;
		for (g = 0; g < run->ngroups; g++)
		{
			double		lag = (double) run->groups[g].target * (i + 1) / run->target - given[g];

			if (lag > best)
			{
				best = lag;
				pick = g;
			}
		}
		run->schedule[i] = pick;
		run->schedule_len++;
		pfree(given);
	}
	return run->schedule[index];
}

/* Counts an answered request's valid rows into their groups. */
void
sl_quota_count(SlRun *run, const SlRowSet *rows)
{
	int			r;

	for (r = 0; r < rows->nrows; r++)
	{
		int			g = sl_quota_group_of(run, rows, r);

		if (g >= 0)
			run->groups[g].have++;
	}
}

/*
 * The same count over every answer, prefix or not: when these fill every
 * group, stage 1 waits for the prefix instead of buying more requests.
 */
void
sl_quota_count_answer(SlRun *run, const SlRowSet *rows)
{
	int			r;

	for (r = 0; r < rows->nrows; r++)
	{
		int			g = sl_quota_group_of(run, rows, r);

		if (g >= 0)
			run->groups[g].have_all++;
	}
}

bool
sl_quota_answered_enough(const SlRun *run)
{
	int			g;

	for (g = 0; g < run->ngroups; g++)
		if (run->groups[g].have_all < run->groups[g].target)
			return false;
	return true;
}

/* Every group has its target (or, quotas_only, at least its quota). */
bool
sl_quota_satisfied(const SlRun *run, bool quotas_only)
{
	int			g;

	for (g = 0; g < run->ngroups; g++)
		if (run->groups[g].have < (quotas_only ? run->groups[g].quota : run->groups[g].target))
			return false;
	return true;
}

/*
 * Each group's rows: its best candidates by Gumbel-top-k on logw (the whole
 * pool's stage 2 weights), uniformly when logw is NULL and resample is
 * 'uniform', or its first ones for 'none'.  Fills run->s2.chosen.
 */
void
sl_quota_draw(SlRun *run, const SlRowSet *pool, const double *logw)
{
	int		   *members = palloc(sizeof(int) * Max(pool->nrows, 1));
	double	   *sub = palloc(sizeof(double) * Max(pool->nrows, 1));
	int		   *pick = palloc(sizeof(int) * Max(pool->nrows, 1));
	int			g;
	int			r;

	run->s2.chosen = palloc(sizeof(int) * run->n);
	run->s2.nchosen = 0;
	for (g = 0; g < run->ngroups; g++)
	{
		int			m = 0;
		int			got;
		int			k;

		for (r = 0; r < pool->nrows; r++)
			if (sl_quota_group_of(run, pool, r) == g)
			{
				sub[m] = logw ? logw[r] : 0.0;
				members[m++] = r;
			}
		if (run->resample == SL_RESAMPLE_NONE)
		{
			got = Min(m, run->groups[g].quota);
			for (k = 0; k < got; k++)
				pick[k] = k;
		}
		else if (logw)
			got = sl_draw_gumbel_topk(sub, m, run->groups[g].quota,
									  sl_mix_seed(run->seed, 300 + g), pick);
		else
			got = sl_draw_uniform(m, run->groups[g].quota,
								  sl_mix_seed(run->seed, 300 + g), pick);
		for (k = 0; k < got; k++)
			run->s2.chosen[run->s2.nchosen++] = members[pick[k]];
	}
	pfree(members);
	pfree(sub);
	pfree(pick);
}
