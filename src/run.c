/*-------------------------------------------------------------------------
 *
 * run.c
 *	  One call of the pipeline: checks, seeds, stage 1, stage 2, figures.
 *
 * Everything that can be refused is refused in sl_run_prepare, before a
 * request is sent.  The seeds are read first, through SPI as the caller,
 * and copied out before stage 1 starts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "catalog/pg_authid.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "condition.h"
#include "access/sysattr.h"
#include "optimizer/optimizer.h"
#include "run.h"

const char *const sl_resample_names[3] = {"attribution", "uniform", "none"};

static char *last_run_json = NULL;

static const char *const response_names[] = {
	"ok", "truncated", "malformed", "refusal", "bad_encoding"
};

/* ---- summary ---- */

void
sl_run_append_reasons(StringInfo buf, const SlRun *run)
{
	const int64 *rej = sl_validator_rejected(run->validator);
	int			i;
	bool		any = false;

	for (i = 0; i < SL_REJ_COUNT; i++)
	{
		if (rej[i] == 0)
			continue;
		appendStringInfo(buf, "%s%s " INT64_FORMAT, any ? ", " : "", sl_reject_names[i], rej[i]);
		any = true;
	}
	if (!any)
		appendStringInfoString(buf, "none");
}

int64
sl_run_rejected_total(const SlRun *run)
{
	const int64 *rej = sl_validator_rejected(run->validator);
	int64		sum = 0;
	int			i;

	for (i = 0; i < SL_REJ_COUNT; i++)
		sum += rej[i];
	return sum;
}

static void
append_responses(StringInfo buf, const SlRun *run)
{
	int			i;
	bool		any = false;

	for (i = 1; i <= SL_RESP_ENCODING; i++)
	{
		if (run->responses[i] == 0)
			continue;
		appendStringInfo(buf, "%s%s " INT64_FORMAT, any ? ", " : "; answers ",
						 response_names[i], run->responses[i]);
		any = true;
	}
}

/* The run's figures as JSON (no data values, no secrets). */
char *
sl_run_json(const SlRun *run, const char *status, int returned)
{
	StringInfoData buf;
	const int64 *rej = sl_validator_rejected(run->validator);
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"status\": \"%s\", \"source\": ", status);
	if (run->t)
		escape_json(&buf, quote_qualified_identifier(run->t->nspname, run->t->relname));
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"provider\": \"%s\", \"model\": ", run->builtin ? "builtin" : "openai");
	/* samplellm.model is superuser-only: recorded for those who may read it. */
	if (run->builtin ||
		!has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_SETTINGS))
		appendStringInfoString(&buf, "null");
	else
		escape_json(&buf, sl_model ? sl_model : "");
	if (run->prompt)
		appendStringInfo(&buf, ", \"prompt_hash\": \"%08x\"",
						 (uint32) hash_bytes((const unsigned char *) run->prompt->system,
											 strlen(run->prompt->system)));
	else
		appendStringInfoString(&buf, ", \"prompt_hash\": null");
	/* The built-in generator uses no prompt and no response format. */
	if (run->builtin)
		appendStringInfoString(&buf, ", \"prompt_version\": null");
	else
		appendStringInfo(&buf, ", \"prompt_version\": \"%s\"", SL_PROMPT_VERSION);
	appendStringInfo(&buf, ", \"seed\": " INT64_FORMAT ", \"n\": %d, \"returned\": %d"
					 ", \"seed_rows\": %d, \"seed_rows_seen\": " INT64_FORMAT
					 ", \"clusters\": %d, \"rows_per_call\": %d"
					 ", \"requests\": %d, \"cached\": %d, \"calls\": %d, \"retries\": %d, \"rate_limited\": %d"
					 ", \"response_format\": %s"
					 ", \"prompt_tokens\": " INT64_FORMAT ", \"completion_tokens\": " INT64_FORMAT
					 ", \"candidates\": " INT64_FORMAT ", \"valid\": " INT64_FORMAT
					 ", \"rejected\": {",
					 (int64) run->seed, run->n, returned,
					 run->seeds ? run->seeds->nrows : 0, run->seen_rows,
					 run->plan ? run->plan->k : 0,
					 run->prompt ? run->prompt->rows_per_call : 0,
					 run->issued, run->cached, run->http.attempts, run->http.retries, run->http.rate_limited,
					 run->builtin ? "null" : run->no_schema ? "false" : "true",
					 run->prompt_tokens, run->completion_tokens,
					 run->received, run->valid);
	for (i = 0; i < SL_REJ_COUNT; i++)
		appendStringInfo(&buf, "%s\"%s\": " INT64_FORMAT, i ? ", " : "", sl_reject_names[i], rej[i]);
	appendStringInfoString(&buf, "}, \"answers\": {");
	for (i = 0; i <= SL_RESP_ENCODING; i++)
		appendStringInfo(&buf, "%s\"%s\": " INT64_FORMAT, i ? ", " : "", response_names[i], run->responses[i]);
	appendStringInfo(&buf, "}, \"resample\": \"%s\", \"oversample\": %g, \"pool\": %d",
					 sl_resample_names[run->resample], run->oversample, run->pool);
	if (run->prompt)
		appendStringInfo(&buf, ", \"prompt_budget\": {\"exemplars\": %d, \"max_tokens\": %d"
						 ", \"statistics\": %s, \"estimated_prompt_tokens\": %d}",
						 run->prompt->max_exemplars, run->prompt->max_tokens,
						 run->prompt->stats_dropped ? "false" : "true",
						 run->prompt->est_prompt_tokens);
	if (run->s2_ran)
	{
		appendStringInfoString(&buf, ", \"stage2\": {\"variant\": ");
		escape_json(&buf, run->s2.variant);
		appendStringInfo(&buf, ", \"fields\": %d, \"clusters\": %d, \"ess\": %.1f"
						 ", \"n_carry\": %d, \"epochs_T\": %d, \"epochs_S\": %d"
						 ", \"seconds\": %.3f}",
						 run->s2.nfields, run->s2.nclusters, run->s2.ess,
						 run->s2.n_carry, run->s2.epochs_T, run->s2.epochs_S,
						 run->s2.secs_total);
	}
	appendStringInfo(&buf, ", \"elapsed_ms\": %.0f}",
					 (double) (GetCurrentTimestamp() - run->start) / 1000.0);

	return buf.data;
}

/* Kept for samplellm_last_run(). */
static void
remember_run(const SlRun *run, const char *status, int returned)
{
	char	   *json = sl_run_json(run, status, returned);

	if (last_run_json)
		pfree(last_run_json);
	last_run_json = MemoryContextStrdup(TopMemoryContext, json);
	pfree(json);
}

const char *
sl_last_run_json(void)
{
	return last_run_json;
}

static void
shortfall_error(SlRun *run)
{
	StringInfoData detail;
	const char *hint;

	remember_run(run, "failed", 0);
	initStringInfo(&detail);
	if (run->builtin)
		appendStringInfo(&detail, "%d batches of the built-in generator gave " INT64_FORMAT
						 " candidate rows; " INT64_FORMAT " rejected: ",
						 run->issued, run->received, sl_run_rejected_total(run));
	else
		appendStringInfo(&detail, "%d LLM calls (%d retries) gave " INT64_FORMAT " candidate rows; "
						 INT64_FORMAT " rejected: ",
						 run->http.attempts, run->http.retries, run->received, sl_run_rejected_total(run));
	sl_run_append_reasons(&detail, run);
	append_responses(&detail, run);
	appendStringInfoChar(&detail, '.');
	if (run->ngroups > 0)
	{
		int			g;

		appendStringInfoString(&detail, " Valid rows per group:");
		for (g = 0; g < run->ngroups; g++)
			appendStringInfo(&detail, "%s %s = %s: " INT64_FORMAT " of %d",
							 g ? "," : "", run->t->cols[run->t->label_col].name,
							 run->groups[g].label ? run->groups[g].label : "(other values)",
							 run->groups[g].have, run->groups[g].quota);
		appendStringInfoChar(&detail, '.');
	}

	if (run->condition &&
		sl_validator_rejected(run->validator)[SL_REJ_CONDITION] * 2 >= sl_run_rejected_total(run) &&
		sl_run_rejected_total(run) > 0)
		hint = "Most candidates failed the condition: relax it, or raise samplellm.max_calls_per_statement.";
	else if (run->stop && strcmp(run->stop, "calls") == 0)
		hint = "Raise samplellm.max_calls_per_statement, or ask for fewer rows.";
	else if (run->stop && strcmp(run->stop, "tokens") == 0)
		hint = "Raise samplellm.max_tokens_per_statement, or ask for fewer rows.";
	else if (sl_validator_rejected(run->validator)[SL_REJ_SEED_COPY] * 2 >= sl_run_rejected_total(run) &&
			 sl_run_rejected_total(run) > 0)
		hint = "Most candidates were exact copies of real rows (the memorization guard refuses them): the table has few distinct rows; ask for fewer rows, or SET samplellm.memorization_guard = off.";
	else if (run->builtin)
		hint = "Most proposals of the built-in generator broke the table's rules; see the rejection reasons.";
	else
		hint = "Most answers were unusable: check samplellm.model and the rejection reasons.";

	ereport(ERROR,
			(errcode(run->stop && strcmp(run->stop, "collapse") != 0 ?
					 ERRCODE_PROGRAM_LIMIT_EXCEEDED : ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 run->ngroups > 0 ?
			 errmsg("samplellm could not meet the per_group quotas") :
			 errmsg("samplellm obtained only " INT64_FORMAT " of %d valid rows",
					run->prefix_valid, run->n),
			 errdetail_internal("%s", detail.data),
			 errhint("%s", hint)));
}

static void
report_summary(SlRun *run, int returned)
{
	StringInfoData msg;

	remember_run(run, "ok", returned);
	if (sl_summary_level < client_min_messages && sl_summary_level < log_min_messages)
		return;
	initStringInfo(&msg);
	if (run->builtin)
		appendStringInfo(&msg, "samplellm: %d rows from the built-in generator (Gaussian copula, %d batch%s); "
						 INT64_FORMAT " candidates, " INT64_FORMAT " rejected (",
						 returned, run->issued, run->issued == 1 ? "" : "es",
						 run->received, sl_run_rejected_total(run));
	else
		appendStringInfo(&msg, "samplellm: %d rows from %d LLM calls (%d retries%s); " INT64_FORMAT
						 " candidates, " INT64_FORMAT " rejected (",
						 returned, run->http.attempts, run->http.retries,
						 run->cached > 0 ? psprintf(", %d answers from the cache", run->cached) : "",
						 run->received, sl_run_rejected_total(run));
	sl_run_append_reasons(&msg, run);
	appendStringInfoChar(&msg, ')');
	append_responses(&msg, run);
	if (!run->builtin)
		appendStringInfo(&msg, "; tokens " INT64_FORMAT " prompt, " INT64_FORMAT " completion",
						 run->prompt_tokens, run->completion_tokens);
	if (run->s2_ran && run->resample == SL_RESAMPLE_ATTRIBUTION)
	{
		appendStringInfo(&msg, "; stage 2 (%s): %d of %d candidates drawn, %d field clusters, effective sample size %.0f, %d candidates carry 99%% of the weight",
						 run->s2.variant, returned, run->pool, run->s2.nclusters,
						 run->s2.ess, run->s2.n_carry);
		/* Fewer effective candidates than rows: the draw had to take weak ones. */
		if (run->s2.ess < returned)
			appendStringInfoString(&msg, " (fewer effective candidates than rows: a larger oversample gives stage 2 more to choose from)");
	}
	else
		appendStringInfo(&msg, "; resample %s: %d of %d candidates",
						 sl_resample_names[run->resample], returned, run->pool);
	ereport(sl_summary_level,
			(errmsg_internal("%s", msg.data),
			 errdetail_internal("provider %s, seed " INT64_FORMAT ", %d seed rows of " INT64_FORMAT
								"%s, %.3f s",
								run->builtin ? "builtin" : "openai",
								(int64) run->seed, run->seeds->nrows, run->seen_rows,
								run->plan ? psprintf(", %d exemplar clusters", run->plan->k) : "",
								(double) (GetCurrentTimestamp() - run->start) / 1e6)));
}

/* ---- stage 2 ---- */

static void
stage2_options(SlStage2Options *opt, uint64 seed)
{
	sl_stage2_default_options(opt);
	opt->threshold = sl_threshold;
	opt->max_cluster_size = sl_max_cluster_size;
	opt->max_epochs = sl_epochs;
	opt->seed = seed;
}

/* Picks the n returned rows of the pool into run->s2.chosen. */
static void
choose_rows(SlRun *run, const SlRowSet *pool)
{
	SlStage2Options opt;
	int			i;

	memset(&run->s2, 0, sizeof(SlStage2Result));
	if (run->ngroups > 0)
	{
		/* Stage 2 weighs the whole pool; each group draws its quota. */
		if (run->resample == SL_RESAMPLE_ATTRIBUTION)
		{
			stage2_options(&opt, sl_mix_seed(run->seed, 200));
			sl_stage2_select(run->t, run->target_rows, pool, run->n, &opt, &run->s2);
			run->s2_ran = true;
		}
		sl_quota_draw(run, pool, run->s2_ran ? run->s2.log_weights : NULL);
		if (run->s2.nchosen != run->n)
			elog(ERROR, "samplellm: the groups drew %d of %d rows", run->s2.nchosen, run->n);
		return;
	}
	switch (run->resample)
	{
		case SL_RESAMPLE_NONE:
			run->s2.nchosen = run->n;
			run->s2.chosen = palloc(sizeof(int) * run->n);
			for (i = 0; i < run->n; i++)
				run->s2.chosen[i] = i;
			break;
		case SL_RESAMPLE_UNIFORM:
			sl_stage2_uniform(pool->nrows, run->n, sl_mix_seed(run->seed, 206), &run->s2);
			break;
		case SL_RESAMPLE_ATTRIBUTION:
			stage2_options(&opt, sl_mix_seed(run->seed, 200));
			sl_stage2_select(run->t, run->target_rows, pool, run->n, &opt, &run->s2);
			run->s2_ran = true;
			break;
	}
	if (run->s2.nchosen != run->n)
		elog(ERROR, "samplellm: stage 2 drew %d of %d rows", run->s2.nchosen, run->n);
}

/* ---- the run ---- */

/*
 * exclude: columns whose names and values never appear in a request (PII);
 * they get values locally (validate.c).
 */
static void
mark_excluded(SlTable *t, const SlRunOptions *opt)
{
	int			k;
	int			c;

	for (k = 0; k < opt->nexclude; k++)
	{
		for (c = 0; c < t->ncols; c++)
			if (strcmp(t->cols[c].name, opt->exclude[k]) == 0)
				break;
		if (c == t->ncols)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("excluded column \"%s\" does not exist in \"%s\"",
							opt->exclude[k], t->relname)));
		if (c == t->label_col)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the label column \"%s\" cannot be excluded", opt->exclude[k]),
					 errhint("The LLM must write the label; exclude other columns.")));
		if (!t->cols[c].excluded)
		{
			t->nexcluded++;
			if (!t->cols[c].generated)
				t->nwritten--;
		}
		t->cols[c].excluded = true;
	}
	if (t->nwritten == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("every column of \"%s\" is excluded", t->relname),
				 errhint("Leave at least one column for the LLM, or use samplellm.provider = 'builtin'.")));
}

/*
 * Prices the rest of the call before stage 1 starts: the candidate pool
 * (with stage 2's per-candidate arrays), the built-in generator's proposals
 * or the LLM responses in flight, on top of what the seeds already hold.
 */
static void
check_memory(SlRun *run)
{
	const SlTable *t = run->t;
	double		row = sl_row_bytes_measured(t, run->seeds);
	double		per_cand = row + t->ncols * 12.0 + 64.0;
	double		held = (double) MemoryContextMemAllocated(run->cxt, true);
	double		extra;
	double		cands = run->target;

	if (run->builtin)
		extra = cands * row * 1.2;	/* one batch of proposals, as texts */
	else
	{
		double		body = run->prompt ? run->prompt->est_prompt_tokens * sl_chars_per_token : 0;

		cands += (double) sl_max_concurrency * (run->prompt ? run->prompt->rows_per_call : 0);
		extra = (double) sl_max_concurrency * (3.0 * sl_max_response_kb * 1024.0 + 2.0 * body);
	}
	sl_limit_check(held + cands * per_cand + extra,
				   psprintf("%.0f candidate rows (n = %d times oversample %g) of about %.0f bytes each, "
							"%.0f MB for the seed rows, %.0f MB for %s.",
							cands, run->n, run->oversample, per_cand,
							held / (1024.0 * 1024.0), extra / (1024.0 * 1024.0),
							run->builtin ? "the generator's proposals" : "responses in flight"));
}

SlRun *
sl_run_create(MemoryContext parent, const SlRunOptions *opt)
{
	SlRun	   *run = MemoryContextAllocZero(parent, sizeof(SlRun));

	run->cxt = AllocSetContextCreate(parent, "samplellm run", ALLOCSET_DEFAULT_SIZES);
	run->respcxt = AllocSetContextCreate(run->cxt, "samplellm response",
										 ALLOCSET_DEFAULT_SIZES);
	run->start = run->last_progress = GetCurrentTimestamp();
	run->n = opt->n;
	run->resample = opt->resample;
	run->oversample = opt->resample == SL_RESAMPLE_NONE ? 1.0 : opt->oversample;
	run->target = (int) Min(ceil(opt->n * run->oversample), (double) PG_INT32_MAX / 2);
	run->seed = opt->seed_given ? opt->seed : (pg_prng_uint64(&pg_global_prng_state) >> 1);
	run->builtin = (sl_provider == SL_PROVIDER_BUILTIN);
	return run;
}

/*
 * Checks, settings, seeds, exemplar clusters, prompt and validator.  Runs in
 * run->cxt, which the caller makes current.
 */
void
sl_run_prepare(SlRun *run, Oid rowtype, const SlRunOptions *opt)
{
	/*
	 * Values travel as text both ways: ISO dates and the default interval
	 * style are unambiguous for the LLM and for reading its answers back,
	 * whatever the session's DateStyle (postgres_fdw does the same).
	 */
	run->guc_level = NewGUCNestLevel();
	if (DateStyle != USE_ISO_DATES || DateOrder != DATEORDER_YMD)
		(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (IntervalStyle != INTSTYLE_POSTGRES)
		(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);

	run->t = sl_table_open(rowtype, opt->label);
	mark_excluded(run->t, opt);
	if (!run->builtin && !run->estimate_only)
		sl_stage1_check_settings(run);
	run->seeds = sl_seeds_read(run->t, opt->max_seed_rows, run->seed, &run->seen_rows);
	if (run->seeds->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("source table \"%s\" has no rows visible to you", run->t->relname),
				 errdetail("samplellm imitates real rows and needs at least one as a seed.")));

	/* Stage 2's label check (at most 64 classes) costs nothing now. */
	if (run->t->label_col >= 0 && run->resample == SL_RESAMPLE_ATTRIBUTION)
		(void) sl_label_fit(run->t, run->seeds);

	run->validator = sl_validator_create(run->t, run->seeds);
	run->target_rows = run->seeds;
	if (opt->condition)
	{
		int			r;

		Expr	   *cond = sl_condition_parse(run->t, opt->condition);
		Bitmapset  *attrs = NULL;
		int			c;

		/* The condition's text goes into the prompt: it may not name an excluded column. */
		pull_varattnos((Node *) cond, 1, &attrs);
		for (c = 0; c < run->t->ncols; c++)
			if (run->t->cols[c].excluded && !run->builtin &&
				bms_is_member(run->t->cols[c].attnum - FirstLowInvalidHeapAttributeNumber, attrs))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the condition uses excluded column \"%s\"", run->t->cols[c].name),
						 errdetail("The condition is stated in the prompt, and an excluded column's name never is.")));
		run->condition = opt->condition;
		sl_validator_set_condition(run->validator, cond);

		/*
		 * Seeds satisfying the condition are the exemplars and stage 2's
		 * target rows; with none, the condition only filters the output.
		 */
		run->target_rows = sl_rowset_create(run->t->ncols, 16);
		for (r = 0; r < run->seeds->nrows; r++)
			if (sl_validator_matches(run->validator, run->seeds, r))
				sl_rowset_append_row(run->target_rows, run->seeds, r);
		if (run->target_rows->nrows == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("no real row satisfies the condition \"%s\"", opt->condition),
					 errdetail("None of the %d seed rows read from \"%s\" satisfies it.",
							   run->seeds->nrows, run->t->relname),
					 errhint("samplellm imitates real rows: use a condition some of them satisfy, or raise max_seed_rows if they are rare.")));
	}

	if (opt->per_group)
		sl_quota_parse(run, opt->per_group);

	if (!run->builtin)
	{
		int			g;

		for (g = 0; g < run->ngroups; g++)
			if (run->groups[g].seeds)
				run->groups[g].plan = sl_exemplars_plan(run->t, run->groups[g].seeds, sl_clusters,
														sl_mix_seed(run->seed, 7 + 1000 * (g + 1)));
		run->plan = sl_exemplars_plan(run->t, run->target_rows, sl_clusters,
									  sl_mix_seed(run->seed, 7));
		run->prompt = sl_prompt_create(run->t, run->target_rows, sl_rows_per_call,
									   sl_max_tokens,
									   run->plan->k * sl_exemplars_per_cluster,
									   sl_context_tokens, opt->condition);
	}
	run->cap = 64;
	run->results = palloc0(sizeof(SlRowSet *) * run->cap);
	check_memory(run);
}

/* Stage 1, then the pool, then stage 2's choice of the n rows. */
void
sl_run_execute(SlRun *run)
{
	int			i;

	if (run->builtin)
		sl_stage1_builtin(run);
	else
		sl_stage1_llm(run);
	if (run->ngroups > 0 ? !sl_quota_satisfied(run, true) : run->prefix_valid < run->n)
		shortfall_error(run);

	/*
	 * The pool: valid candidates of the shortest run of answered requests
	 * that reaches the target (the whole prefix when none does).  Answers
	 * beyond it, which depend on timing, are left out, so the same answers
	 * give the same pool whatever the concurrency.
	 */
	if (run->ngroups > 0)
		for (i = 0; i < run->ngroups; i++)
			run->groups[i].have = 0;
	run->pool_rows = sl_rowset_create(run->t->ncols, (int) run->prefix_valid);
	for (i = 0; i < run->prefix; i++)
	{
		sl_rowset_append_shallow(run->pool_rows, run->results[i]);
		if (run->ngroups > 0)
		{
			sl_quota_count(run, run->results[i]);
			if (sl_quota_satisfied(run, false))
				break;
		}
		else if (run->pool_rows->nrows >= run->target)
			break;
	}
	run->pool = run->pool_rows->nrows;
	choose_rows(run, run->pool_rows);
	run->returned = run->s2.nchosen;
}

/* Restores DateStyle, reports the figures, frees the run. */
void
sl_run_finish(SlRun *run)
{
	AtEOXact_GUC(true, run->guc_level);
	report_summary(run, run->returned);
	sl_validator_free(run->validator);
	MemoryContextDelete(run->cxt);
}
