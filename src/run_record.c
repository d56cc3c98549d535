/*-------------------------------------------------------------------------
 *
 * run_record.c
 *	  What a run says about itself: the figures (the run record of
 *	  samplellm_runs and samplellm_last_run), the summary message, and the
 *	  shortfall error.  No data values and no secrets.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_authid.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "run.h"
#include "samplellm.h"

static char *last_run_json = NULL;

static const char *const response_names[] = {
	"ok", "truncated", "malformed", "refusal", "bad_encoding"
};

/* ---- summary ---- */

static void
append_reasons(StringInfo buf, const SlRun *run)
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

/*
 * The reason that refused the most candidates (-1 when none was refused):
 * the HINT of a shortfall speaks of that one, not of one picked in a fixed
 * order.
 */
static int
largest_reason(const SlRun *run)
{
	const int64 *rej = sl_validator_rejected(run->validator);
	int			best = -1;
	int			i;

	for (i = 0; i < SL_REJ_COUNT; i++)
		if (rej[i] > 0 && (best < 0 || rej[i] > rej[best]))
			best = i;
	return best;
}

static int64
rejected_total(const SlRun *run)
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

	for (i = 1; i < SL_RESP_COUNT; i++)
	{
		if (run->s1.responses[i] == 0)
			continue;
		appendStringInfo(buf, "%s%s " INT64_FORMAT, any ? ", " : "; answers ",
						 response_names[i], run->s1.responses[i]);
		any = true;
	}
}

static int
exemplar_clusters(const SlRun *run)
{
	return run->groups && run->groups->groups[0].plan ? run->groups->groups[0].plan->k : 0;
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
	/* the caller's instructions, as a hash: they can carry what no log should */
	if (run->opt.instructions)
		appendStringInfo(&buf, ", \"instructions_hash\": \"%08x\"",
						 (uint32) hash_bytes((const unsigned char *) run->opt.instructions,
											 strlen(run->opt.instructions)));
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
					 (int64) run->seed, run->opt.n, returned,
					 run->seeds ? run->seeds->nrows : 0, run->seen_rows,
					 exemplar_clusters(run),
					 run->prompt ? run->prompt->rows_per_call : 0,
					 run->s1.requests, run->s1.cached, run->s1.http.attempts, run->s1.http.retries, run->s1.http.rate_limited,
					 run->builtin ? "null" : run->s1.no_schema ? "false" : "true",
					 run->s1.prompt_tokens, run->s1.completion_tokens,
					 run->s1.received, run->pool ? sl_pool_valid(run->pool) : 0);
	for (i = 0; i < SL_REJ_COUNT; i++)
		appendStringInfo(&buf, "%s\"%s\": " INT64_FORMAT, i ? ", " : "", sl_reject_names[i], rej[i]);
	appendStringInfoString(&buf, "}, \"answers\": {");
	for (i = 0; i < SL_RESP_COUNT; i++)
		appendStringInfo(&buf, "%s\"%s\": " INT64_FORMAT, i ? ", " : "", response_names[i], run->s1.responses[i]);
	appendStringInfo(&buf, "}, \"resample\": \"%s\", \"oversample\": %g, \"pool\": %d",
					 sl_resample_names[run->opt.resample], run->opt.oversample,
					 run->pool_rows ? run->pool_rows->nrows : 0);
	if (!run->builtin)
	{
		const SlHttpStats *h = &run->s1.http;
		const SlCapacity *cap = &run->s1.capacity;

		/* how the call followed the server: streaming, capacity, AIMD */
		appendStringInfo(&buf, ", \"min_concurrency\": %d, \"server\": {\"streaming\": %s"
						 ", \"stream_usage\": %s, \"schema_bounds\": %s, \"streamed\": %d"
						 ", \"capacity_source\": ",
						 h->min_concurrency,
						 (h->flags & SL_BODY_STREAM) ? "true" : "false",
						 (h->flags & SL_BODY_STREAM_USAGE) ? "true" : "false",
						 (h->flags & SL_BODY_SCHEMA_BOUNDS) ? "true" : "false",
						 h->streamed);
		if (cap->source)
			appendStringInfo(&buf, "\"%s\"", cap->source);
		else
			appendStringInfoString(&buf, "null");
		if (cap->slots > 0)
			appendStringInfo(&buf, ", \"slots\": %d", cap->slots);
		else
			appendStringInfoString(&buf, ", \"slots\": null");
		if (cap->running >= 0)
			appendStringInfo(&buf, ", \"running\": %d", cap->running);
		if (cap->waiting >= 0)
			appendStringInfo(&buf, ", \"waiting\": %d", cap->waiting);
		appendStringInfo(&buf, ", \"ceiling\": %d, \"min_concurrency\": %d, \"max_in_flight\": %d"
						 ", \"congestion\": %d, \"idle_timeouts\": %d, \"cut_kept\": %d}",
						 h->ceiling, h->min_concurrency, h->max_in_flight,
						 h->congestion, h->idle_timeouts, h->cut_kept);
	}
	if (run->t)
	{
		/* the columns' roles (keys, references, assigned, excluded) */
		appendStringInfoString(&buf, ", \"columns\": ");
		sl_table_append_roles(&buf, run->t);
	}
	if (run->refs)
	{
		appendStringInfoString(&buf, ", \"references\": ");
		sl_refs_append_json(&buf, run->refs);
	}
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
						 ", \"temper\": %.3f",
						 run->s2.nfields, run->s2.nclusters, run->s2.ess,
						 run->s2.n_carry, run->s2.epochs_T, run->s2.epochs_S,
						 run->s2.temper);
		/* the default estimator's novelty guard (the paper's has none) */
		if (run->opt.resample != SL_RESAMPLE_PAPER)
			appendStringInfo(&buf, ", \"novelty\": {\"ratio\": %.3f, \"tau\": %.4g"
							 ", \"close_before\": %.3f, \"close_after\": %.3f"
							 ", \"beta\": %.3g}",
							 run->s2.novelty.ratio, run->s2.novelty.tau,
							 run->s2.novelty.close_before, run->s2.novelty.close_after,
							 run->s2.novelty.beta);
		appendStringInfo(&buf, ", \"seconds\": %.3f}", run->s2.secs_total);
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

/* Raises the error of a run that ended with too few valid rows. */
void
sl_run_shortfall_error(const SlRun *run)
{
	StringInfoData detail;
	const char *hint;
	const char *stop = run->s1.stop;
	const int64 *rej = sl_validator_rejected(run->validator);
	int64		total = rejected_total(run);
	bool		grouped = run->groups->label_col >= 0;
	int			g = run->s1.stop_group;
	int			largest = largest_reason(run);

	remember_run(run, "failed", 0);
	initStringInfo(&detail);
	if (run->builtin)
		appendStringInfo(&detail, "%d batches of the built-in generator gave " INT64_FORMAT
						 " candidate rows; " INT64_FORMAT " rejected: ",
						 run->s1.requests, run->s1.received, total);
	else
		appendStringInfo(&detail, "%d LLM calls (%d retries) gave " INT64_FORMAT " candidate rows; "
						 INT64_FORMAT " rejected: ",
						 run->s1.http.attempts, run->s1.http.retries, run->s1.received, total);
	append_reasons(&detail, run);
	append_responses(&detail, run);
	appendStringInfoChar(&detail, '.');
	(void) sl_pool_quotas_met(run->pool, &detail);

	if (grouped && g >= 0 && stop && strcmp(stop, "collapse") == 0)
	{
		const SlGroup *grp = &run->groups->groups[g];

		appendStringInfo(&detail, " %d answers of the group's own requests brought no row with %s = %s.",
						 sl_pool_answers(run->pool, g),
						 run->t->cols[run->groups->label_col].name,
						 grp->rest ? "(other values)" : grp->label);
		hint = "The model does not write that label value: ask for another quota, or check samplellm.model.";
	}
	else if (run->opt.condition && largest == SL_REJ_CONDITION && rej[largest] * 2 >= total)
		hint = "Most candidates failed the condition: relax it, or raise samplellm.max_calls_per_statement.";
	else if (stop && strcmp(stop, "calls") == 0)
		hint = "Raise samplellm.max_calls_per_statement, or ask for fewer rows.";
	else if (stop && strcmp(stop, "tokens") == 0)
		hint = "Raise samplellm.max_tokens_per_statement, or ask for fewer rows.";
	else if (largest == SL_REJ_SEED_COPY && rej[largest] * 2 >= total)
		hint = "Most candidates were exact copies of real rows (the memorization guard refuses them): the table has few distinct rows; ask for fewer rows, or SET samplellm.memorization_guard = off.";
	else if (run->builtin && largest >= 0)
		hint = psprintf("Most proposals of the built-in generator were refused as %s: its values, drawn between the seeds' values, do not meet every rule of the table; generate from a view without that rule, or ask for fewer rows.",
						sl_reject_names[largest]);
	else if (run->builtin)
		hint = "The built-in generator proposed too few rows; ask for fewer rows.";
	else
		hint = "Most answers were unusable: check samplellm.model and the rejection reasons.";

	ereport(ERROR,
			(errcode(stop && strcmp(stop, "collapse") != 0 && strcmp(stop, "batches") != 0 ?
					 ERRCODE_PROGRAM_LIMIT_EXCEEDED : ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 grouped ?
			 errmsg("samplellm could not meet the per_group quotas") :
			 errmsg("samplellm obtained only " INT64_FORMAT " of %d valid rows",
					sl_pool_have(run->pool, 0), run->opt.n),
			 errdetail_internal("%s", detail.data),
			 errhint("%s", hint)));
	pg_unreachable();
}

/*
 * Quiet by default (the summary goes at samplellm.summary_level, debug1),
 * but a WARNING when a successful run shows something really wrong: most
 * candidates refused, the call budget nearly spent, or stage 2's weights
 * on a handful of candidates.
 */
static void
warn_if_wrong(const SlRun *run)
{
	StringInfoData why;
	int64		rejected = rejected_total(run);

	initStringInfo(&why);
	if (run->s1.received > 0 && rejected * 2 > run->s1.received)
		appendStringInfo(&why, "%s" INT64_FORMAT " of " INT64_FORMAT " candidate rows were refused",
						 why.len ? "; " : "", rejected, run->s1.received);
	if (!run->builtin && run->s1.http.attempts * 5 >= (int64) sl_max_calls * 4)
		appendStringInfo(&why, "%s%d of samplellm.max_calls_per_statement (%d) calls were spent",
						 why.len ? "; " : "", run->s1.http.attempts, sl_max_calls);
	if (!run->builtin && sl_max_tokens_total > 0 &&
		(run->s1.prompt_tokens + run->s1.completion_tokens) * 5 >= (int64) sl_max_tokens_total * 4)
		appendStringInfo(&why, "%s" INT64_FORMAT " of samplellm.max_tokens_per_statement (%d) tokens were spent",
						 why.len ? "; " : "", run->s1.prompt_tokens + run->s1.completion_tokens,
						 sl_max_tokens_total);
	if (run->s2_ran && run->nchosen >= 20 && run->s2.ess * 10 < run->nchosen)
		appendStringInfo(&why, "%sstage 2's weights sit on %.0f effective candidates for %d rows",
						 why.len ? "; " : "", run->s2.ess, run->nchosen);
	if (why.len)
		ereport(WARNING,
				(errmsg("samplellm: the run succeeded, but %s", why.data),
				 errhint("samplellm_last_run() and samplellm_runs have the figures.")));
}

/* Records the run for samplellm_last_run() and prints its summary. */
void
sl_run_report(const SlRun *run)
{
	StringInfoData msg;
	int			returned = run->nchosen;
	int			pool = run->pool_rows ? run->pool_rows->nrows : 0;

	remember_run(run, "ok", returned);
	warn_if_wrong(run);
	if (sl_summary_level < client_min_messages && sl_summary_level < log_min_messages)
		return;
	initStringInfo(&msg);
	if (run->builtin)
		appendStringInfo(&msg, "samplellm: %d rows from the built-in generator (Gaussian copula, %d batch%s); "
						 INT64_FORMAT " candidates, " INT64_FORMAT " rejected (",
						 returned, run->s1.requests, run->s1.requests == 1 ? "" : "es",
						 run->s1.received, rejected_total(run));
	else
		appendStringInfo(&msg, "samplellm: %d rows from %d LLM call%s (%d retr%s%s); " INT64_FORMAT
						 " candidates, " INT64_FORMAT " rejected (",
						 returned, run->s1.http.attempts, run->s1.http.attempts == 1 ? "" : "s",
						 run->s1.http.retries, run->s1.http.retries == 1 ? "y" : "ies",
						 run->s1.cached > 0 ? psprintf(", %d answers from the cache", run->s1.cached) : "",
						 run->s1.received, rejected_total(run));
	append_reasons(&msg, run);
	appendStringInfoChar(&msg, ')');
	append_responses(&msg, run);
	if (!run->builtin)
		appendStringInfo(&msg, "; tokens " INT64_FORMAT " prompt, " INT64_FORMAT " completion",
						 run->s1.prompt_tokens, run->s1.completion_tokens);
	if (run->s2_ran)
	{
		appendStringInfo(&msg, "; stage 2 (%s): %d of %d candidates drawn, %d field clusters, effective sample size %.0f, %d candidates carry 99%% of the weight",
						 run->s2.variant, returned, pool, run->s2.nclusters,
						 run->s2.ess, run->s2.n_carry);
		/* Fewer effective candidates than rows: the draw had to take weak ones. */
		if (run->s2.ess < returned)
			appendStringInfoString(&msg, " (fewer effective candidates than rows: a larger oversample gives stage 2 more to choose from)");
	}
	else
		appendStringInfo(&msg, "; resample %s: %d of %d candidates",
						 sl_resample_names[run->opt.resample], returned, pool);
	ereport(sl_summary_level,
			(errmsg_internal("%s", msg.data),
			 errdetail_internal("provider %s, seed " INT64_FORMAT ", %d seed rows of " INT64_FORMAT
								"%s, %.3f s",
								run->builtin ? "builtin" : "openai",
								(int64) run->seed, run->seeds->nrows, run->seen_rows,
								exemplar_clusters(run) > 0 ?
								psprintf(", %d exemplar clusters", exemplar_clusters(run)) : "",
								(double) (GetCurrentTimestamp() - run->start) / 1e6)));
}
