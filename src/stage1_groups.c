/*-------------------------------------------------------------------------
 *
 * stage1_groups.c
 *	  Groups of candidates and their quotas (the per_group option).
 *
 * per_group is a JSON object from label values to shares of n ({"true":
 * 0.5}) or to row counts ({"true": 300}); the rows left over go to the
 * label values not listed.  The typical use is generating minority-class
 * rows for an imbalanced click table.  Without per_group there is one
 * group holding all n rows: the same path, not a second one.  Each group
 * has its own real rows (the exemplars its requests show, and what the
 * built-in generator fits), its own requests (asking for its label), its
 * own answered prefix in the pool (stage1_pool.c), and its own draw in
 * stage 2 (stage2_draw.c) on the weights stage 2 computes for the whole
 * pool.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"

#include "cjson_prelude.h"
#include "stage1.h"

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

/* The whole of n in one group: no per_group. */
static SlGroups *
one_group(const SlRowSet *target_rows, int n, double oversample)
{
	SlGroups   *gs = palloc0(sizeof(SlGroups));

	gs->ngroups = 1;
	gs->label_col = -1;
	gs->groups = palloc0(sizeof(SlGroup));
	gs->groups[0].quota = n;
	gs->groups[0].target = (int) Min(ceil(n * oversample), (double) PG_INT32_MAX / 2);
	gs->groups[0].seeds = (SlRowSet *) target_rows;
	return gs;
}

SlGroups *
sl_groups_create(const SlTable *t, const SlRowSet *target_rows, int n,
				 double oversample, const char *per_group, bool conditioned)
{
	const SlColumn *lab;
	SlGroups   *gs;
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

	if (per_group == NULL)
		return one_group(target_rows, n, oversample);
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
	gs = palloc0(sizeof(SlGroups));
	gs->label_col = t->label_col;
	gs->groups = palloc0(sizeof(SlGroup) * (nkeys + 1));

	for (item = doc->child; item; item = item->next)
	{
		double		v;
		SlGroup    *grp = &gs->groups[gs->ngroups];

		if (!cJSON_IsNumber(item) || !(item->valuedouble > 0) || !isfinite(item->valuedouble))
			bad_per_group(per_group, "Every value must be a positive number.");
		v = item->valuedouble;
		if (v > n)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("per_group asks for %g rows of one label value, more than n = %d", v, n)));
		if (v < 1)
			shares = true;
		else if (v == floor(v))
			counts = true;
		else
			bad_per_group(per_group, "A value must be a share below 1 or a whole number of rows.");
		grp->label = canonical_label(lab, per_group, item->string);
		for (g = 0; g < gs->ngroups; g++)
			if (strcmp(gs->groups[g].label, grp->label) == 0)
				bad_per_group(per_group, "A label value is listed twice.");
		grp->quota = shares ? (int) floor(v * n + 0.5) : (int) v;
		sum += v;
		gs->ngroups++;
	}
	if (shares && counts)
		bad_per_group(per_group, "Use either shares or row counts, not both.");
	if (shares && sum > 1.0 + 1e-9)
		bad_per_group(per_group, "The shares add up to more than 1.");
	for (g = 0; g < gs->ngroups; g++)
		assigned += gs->groups[g].quota;
	if (assigned > n)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("per_group asks for %d rows, more than n = %d", assigned, n)));

	/* The rest of n goes to the label values not listed, if the seeds have any. */
	for (r = 0; r < target_rows->nrows && !others_exist; r++)
	{
		const char *v = target_rows->text[SL_CELL(target_rows, r, t->label_col)];

		others_exist = true;
		for (g = 0; g < gs->ngroups; g++)
			if (v && strcmp(v, gs->groups[g].label) == 0)
				others_exist = false;
	}
	if (assigned < n)
	{
		if (!others_exist)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("per_group gives %d of n = %d rows, and the real rows have no other label value for the rest",
							assigned, n),
					 errhint("Make the shares add up to 1, or the counts to n.")));
		gs->groups[gs->ngroups].rest = true;
		gs->groups[gs->ngroups].quota = n - assigned;
		gs->ngroups++;
	}

	for (g = 0; g < gs->ngroups; g++)
	{
		SlGroup    *grp = &gs->groups[g];
		StringInfoData buf;

		grp->target = (int) Min(ceil(grp->quota * oversample), (double) PG_INT32_MAX / 4);
		grp->seeds = sl_rowset_create(t->ncols, 16);
		for (r = 0; r < target_rows->nrows; r++)
			if (sl_groups_of_row(gs, target_rows, r) == g)
				sl_rowset_append_row(grp->seeds, target_rows, r);
		if (grp->rest)
			continue;			/* asks for no particular label */

		/* a quota the seeds contradict would spend the whole budget */
		if (grp->seeds->nrows == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("per_group asks for %s = %s, which no real row has",
							lab->name, grp->label),
					 errdetail("None of the %d seed rows%s has that label value.",
							   target_rows->nrows,
							   conditioned ? " that satisfy the condition" : ""),
					 errhint("samplellm imitates real rows: ask for label values the source has, or raise max_seed_rows if the value is rare.")));
		initStringInfo(&buf);
		appendStringInfoString(&buf, "Every one of them must have ");
		sl_append_data_text(&buf, lab->name);
		appendStringInfoString(&buf, " = ");
		sl_append_json_value(&buf, lab, grp->label);
		appendStringInfoChar(&buf, '.');
		grp->instruction = buf.data;
	}
	return gs;
}

int
sl_groups_of_row(const SlGroups *gs, const SlRowSet *rs, int r)
{
	const char *v;
	int			rest = -1;
	int			g;

	if (gs->label_col < 0)
		return 0;
	v = rs->text[SL_CELL(rs, r, gs->label_col)];
	for (g = 0; g < gs->ngroups; g++)
	{
		if (gs->groups[g].rest)
			rest = g;
		else if (v && strcmp(v, gs->groups[g].label) == 0)
			return g;
	}
	return rest;
}

/* Each group's exemplar clusters (the LLM's requests show them). */
void
sl_groups_plan_exemplars(SlGroups *gs, const SlTable *t, int k, uint64 seed)
{
	int			g;

	for (g = 0; g < gs->ngroups; g++)
	{
		SlGroup    *grp = &gs->groups[g];

		/* a rest group with no rows of its own draws from nowhere: none */
		if (grp->seeds->nrows > 0)
			grp->plan = sl_exemplars_plan(t, grp->seeds, k,
										  sl_stream_seed(seed, SL_STREAM_EXEMPLAR_PLAN, g));
	}
}
