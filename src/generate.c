/*-------------------------------------------------------------------------
 *
 * generate.c
 *	  samplellm_generate(): the pipeline from seed rows to typed tuples.
 *
 * Seeds are read first, through SPI as the caller, and copied out before
 * any request is sent.  Requests are numbered; request i's exemplars and
 * seed derive from the user's seed and i alone, and candidates are taken
 * in request order from the longest run of answered requests, so the
 * output does not depend on which answer arrived first.  The result is
 * materialized: a failing call returns no rows.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/datetime.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "exemplars.h"
#include "http.h"
#include "parse.h"
#include "prompt.h"
#include "samplellm.h"
#include "stage2.h"
#include "validate.h"

#define PROGRESS_INTERVAL_MS 5000
/* Stop early when this many answers in a row gave no valid row at all. */
#define COLLAPSE_MIN_ANSWERS 3

typedef enum SlResample
{
	SL_RESAMPLE_ATTRIBUTION,	/* the paper's stage 2 */
	SL_RESAMPLE_UNIFORM,		/* the paper's ablation: same pool, uniform */
	SL_RESAMPLE_NONE			/* the first n valid candidates */
} SlResample;

static const char *const resample_names[] = {"attribution", "uniform", "none"};

typedef struct SlRun
{
	MemoryContext cxt;			/* the whole run */
	MemoryContext respcxt;		/* one response's parse trees */
	SlTable    *t;
	SlRowSet   *seeds;
	int64		seen_rows;
	SlExemplarPlan *plan;
	SlPrompt   *prompt;
	SlValidator *validator;
	uint64		seed;
	int			n;
	int			target;			/* valid candidates wanted: n x oversample */
	SlResample	resample;
	double		oversample;
	int			pool;			/* candidates stage 2 drew from */
	SlStage2Result s2;
	bool		s2_ran;

	/* per request, by index */
	int			cap;
	SlRowSet  **results;
	int			issued;
	int			answered;
	int			prefix;			/* requests 0..prefix-1 all answered */
	int64		prefix_valid;
	int64		valid;
	int64		received;		/* row objects received */
	bool		no_schema;		/* the server refused response_format */
	int64		prompt_tokens;
	int64		completion_tokens;
	int64		responses[SL_RESP_ENCODING + 1];
	const char *stop;			/* why no further request was issued */
	SlHttpStats http;
	TimestampTz start;
	TimestampTz last_progress;
} SlRun;

static char *last_run_json = NULL;

static const char *const response_names[] = {
	"ok", "truncated", "malformed", "refusal", "bad_encoding"
};

/* ---- settings checked before anything is paid for ---- */

static char *
read_api_key(void)
{
	FILE	   *f;
	char		buf[4096];
	size_t		len;

	if (sl_api_key && sl_api_key[0])
		return sl_api_key;
	if (sl_api_key_file == NULL || sl_api_key_file[0] == '\0')
		return NULL;
	f = AllocateFile(sl_api_key_file, "r");
	if (f == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open the file named by samplellm.api_key_file: %m"),
				 errhint("The file must be readable by the PostgreSQL server's operating system user.")));
	len = fread(buf, 1, sizeof(buf) - 1, f);
	FreeFile(f);
	buf[len] = '\0';
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
					   buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		buf[--len] = '\0';
	if (len == 0 || strpbrk(buf, "\r\n") != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the file named by samplellm.api_key_file does not hold one API key"),
				 errhint("Write the key alone on the file's first line.")));
	return pstrdup(buf);
}

static char *
chat_url(void)
{
	StringInfoData url;
	int			len;

	if (sl_endpoint == NULL || sl_endpoint[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("samplellm.endpoint is not set"),
				 errhint("A superuser sets it to an OpenAI-compatible API, e.g. ALTER SYSTEM SET samplellm.endpoint = 'https://api.openai.com/v1'.")));
	if (sl_model == NULL || sl_model[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("samplellm.model is not set"),
				 errhint("A superuser sets it to the model name the endpoint serves.")));
	initStringInfo(&url);
	len = strlen(sl_endpoint);
	while (len > 0 && sl_endpoint[len - 1] == '/')
		len--;
	appendBinaryStringInfo(&url, sl_endpoint, len);
	appendStringInfoString(&url, "/chat/completions");
	return url.data;
}

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

static int64
total_rejected(const SlRun *run)
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

/* The run's figures as JSON, kept for samplellm_last_run(). */
static void
remember_run(const SlRun *run, const char *status, int returned)
{
	StringInfoData buf;
	const int64 *rej = sl_validator_rejected(run->validator);
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"status\": \"%s\", \"source\": ", status);
	escape_json(&buf, quote_qualified_identifier(run->t->nspname, run->t->relname));
	appendStringInfo(&buf, ", \"provider\": \"openai\", \"prompt_version\": \"%s\""
					 ", \"seed\": " INT64_FORMAT ", \"n\": %d, \"returned\": %d"
					 ", \"seed_rows\": %d, \"seed_rows_seen\": " INT64_FORMAT
					 ", \"clusters\": %d, \"rows_per_call\": %d"
					 ", \"requests\": %d, \"calls\": %d, \"retries\": %d, \"rate_limited\": %d"
					 ", \"response_format\": %s"
					 ", \"prompt_tokens\": " INT64_FORMAT ", \"completion_tokens\": " INT64_FORMAT
					 ", \"candidates\": " INT64_FORMAT ", \"valid\": " INT64_FORMAT
					 ", \"rejected\": {",
					 SL_PROMPT_VERSION, (int64) run->seed, run->n, returned,
					 run->seeds ? run->seeds->nrows : 0, run->seen_rows,
					 run->plan ? run->plan->k : 0,
					 run->prompt ? run->prompt->rows_per_call : 0,
					 run->issued, run->http.attempts, run->http.retries, run->http.rate_limited,
					 run->no_schema ? "false" : "true",
					 run->prompt_tokens, run->completion_tokens,
					 run->received, run->valid);
	for (i = 0; i < SL_REJ_COUNT; i++)
		appendStringInfo(&buf, "%s\"%s\": " INT64_FORMAT, i ? ", " : "", sl_reject_names[i], rej[i]);
	appendStringInfoString(&buf, "}, \"answers\": {");
	for (i = 0; i <= SL_RESP_ENCODING; i++)
		appendStringInfo(&buf, "%s\"%s\": " INT64_FORMAT, i ? ", " : "", response_names[i], run->responses[i]);
	appendStringInfo(&buf, "}, \"resample\": \"%s\", \"oversample\": %g, \"pool\": %d",
					 resample_names[run->resample], run->oversample, run->pool);
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

	if (last_run_json)
		pfree(last_run_json);
	last_run_json = MemoryContextStrdup(TopMemoryContext, buf.data);
	pfree(buf.data);
}

static void
shortfall_error(SlRun *run)
{
	StringInfoData detail;
	const char *hint;

	remember_run(run, "failed", 0);
	initStringInfo(&detail);
	appendStringInfo(&detail, "%d LLM calls (%d retries) gave " INT64_FORMAT " candidate rows; "
					 INT64_FORMAT " rejected: ",
					 run->http.attempts, run->http.retries, run->received, total_rejected(run));
	append_reasons(&detail, run);
	append_responses(&detail, run);
	appendStringInfoChar(&detail, '.');

	if (run->stop && strcmp(run->stop, "calls") == 0)
		hint = "Raise samplellm.max_calls_per_statement, or ask for fewer rows.";
	else if (run->stop && strcmp(run->stop, "tokens") == 0)
		hint = "Raise samplellm.max_tokens_per_statement, or ask for fewer rows.";
	else
		hint = "Most answers were unusable: check samplellm.model and the rejection reasons.";

	ereport(ERROR,
			(errcode(run->stop && strcmp(run->stop, "collapse") != 0 ?
					 ERRCODE_PROGRAM_LIMIT_EXCEEDED : ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
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
	appendStringInfo(&msg, "samplellm: %d rows from %d LLM calls (%d retries); " INT64_FORMAT
					 " candidates, " INT64_FORMAT " rejected (",
					 returned, run->http.attempts, run->http.retries,
					 run->received, total_rejected(run));
	append_reasons(&msg, run);
	appendStringInfoChar(&msg, ')');
	append_responses(&msg, run);
	appendStringInfo(&msg, "; tokens " INT64_FORMAT " prompt, " INT64_FORMAT " completion",
					 run->prompt_tokens, run->completion_tokens);
	if (run->s2_ran && run->resample == SL_RESAMPLE_ATTRIBUTION)
		appendStringInfo(&msg, "; stage 2 (%s): %d of %d candidates drawn, %d field clusters, effective sample size %.0f, %d candidates carry 99%% of the weight",
						 run->s2.variant, returned, run->pool, run->s2.nclusters,
						 run->s2.ess, run->s2.n_carry);
	else
		appendStringInfo(&msg, "; resample %s: %d of %d candidates",
						 resample_names[run->resample], returned, run->pool);
	ereport(sl_summary_level,
			(errmsg_internal("%s", msg.data),
			 errdetail_internal("provider openai, seed " INT64_FORMAT ", %d seed rows of " INT64_FORMAT
								", %d exemplar clusters, %.3f s",
								(int64) run->seed, run->seeds->nrows, run->seen_rows,
								run->plan->k,
								(double) (GetCurrentTimestamp() - run->start) / 1e6)));
}

/* ---- the request loop's callbacks ---- */

static double
valid_per_answer(const SlRun *run)
{
	if (run->answered == 0)
		return run->prompt->rows_per_call;
	return (double) run->valid / run->answered;
}

/*
 * When the context budget allows fewer exemplars than drawn, keep them
 * spread over the clusters: the draw lists them cluster by cluster, so take
 * the first of every cluster, then the second, and so on.
 */
static int
interleave_clusters(const SlExemplarPlan *plan, int per, int *ex, int nex, int keep)
{
	int		   *start = palloc(sizeof(int) * plan->k);
	int		   *count = palloc(sizeof(int) * plan->k);
	int		   *out = palloc(sizeof(int) * nex);
	int			j;
	int			round;
	int			m = 0;
	int			pos = 0;

	for (j = 0; j < plan->k; j++)
	{
		start[j] = pos;
		count[j] = Min(per, plan->nmembers[j]);
		pos += count[j];
	}
	for (round = 0; round < per && m < keep; round++)
		for (j = 0; j < plan->k && m < keep; j++)
			if (round < count[j])
				out[m++] = ex[start[j] + round];
	memcpy(ex, out, sizeof(int) * m);
	pfree(start);
	pfree(count);
	pfree(out);
	return m;
}

static char *
request_body(SlRun *run, int index, bool with_schema)
{
	int		   *ex;
	int			nex;
	pg_prng_state rng;
	MemoryContext old = MemoryContextSwitchTo(run->cxt);
	char	   *body;

	pg_prng_seed(&rng, sl_mix_seed(run->seed, 1000 + (uint64) index));
	ex = palloc(sizeof(int) * run->plan->k * sl_exemplars_per_cluster);
	nex = sl_exemplars_draw(run->plan, sl_exemplars_per_cluster, &rng, ex);
	if (nex > run->prompt->max_exemplars)
		nex = interleave_clusters(run->plan, sl_exemplars_per_cluster, ex, nex,
								  run->prompt->max_exemplars);
	body = sl_prompt_body(run->prompt, ex, nex, run->prompt->rows_per_call,
						  (int64) (sl_mix_seed(run->seed, (uint64) index) & 0x7fffffff),
						  with_schema);
	pfree(ex);
	MemoryContextSwitchTo(old);
	return body;
}

static char *
next_body(void *arg, int index)
{
	SlRun	   *run = arg;
	double		per = valid_per_answer(run);
	int			inflight = run->issued - run->answered;

	if (run->stop)
		return NULL;
	if (run->prefix_valid + (run->valid - run->prefix_valid) + inflight * per >= run->target)
		return NULL;
	if (run->http.attempts >= sl_max_calls)
	{
		run->stop = "calls";
		return NULL;
	}
	if (sl_max_tokens_total > 0 &&
		run->prompt_tokens + run->completion_tokens >= sl_max_tokens_total)
	{
		run->stop = "tokens";
		return NULL;
	}
	/* The acceptance rate collapsed: do not spend the budget on it. */
	if (run->answered >= COLLAPSE_MIN_ANSWERS)
	{
		double		needed = (run->target - run->valid) / Max(per, 1e-9);

		if (run->valid == 0 || run->http.attempts + needed > sl_max_calls)
		{
			run->stop = "collapse";
			return NULL;
		}
	}

	if (index >= run->cap)
	{
		int			newcap = run->cap * 2;

		run->results = repalloc(run->results, sizeof(SlRowSet *) * newcap);
		memset(run->results + run->cap, 0, sizeof(SlRowSet *) * (newcap - run->cap));
		run->cap = newcap;
	}
	run->issued = index + 1;
	return request_body(run, index, !run->no_schema);
}

static char *
fallback_body(void *arg, int index, const char *body, size_t len)
{
	SlRun	   *run = arg;

	/* Only a refusal of response_format earns the retry without it. */
	if (run->no_schema)
		return NULL;
	run->no_schema = true;
	return request_body(run, index, false);
}

static bool
on_success(void *arg, int index, const char *body, size_t len)
{
	SlRun	   *run = arg;
	MemoryContext old;
	SlResponse	resp;
	SlRowSet   *rows;
	int			i;
	int			nitems;
	TimestampTz now;

	old = MemoryContextSwitchTo(run->respcxt);
	sl_parse_response(body, len, &resp);
	MemoryContextSwitchTo(run->cxt);

	run->answered++;
	run->responses[resp.status]++;
	run->prompt_tokens += resp.prompt_tokens;
	run->completion_tokens += resp.completion_tokens;
	rows = sl_rowset_create(run->t->ncols, run->prompt->rows_per_call);
	nitems = resp.rows ? cJSON_GetArraySize(resp.rows) : 0;
	for (i = 0; i < nitems; i++)
	{
		run->received++;
		if (sl_validate_row(run->validator, cJSON_GetArrayItem(resp.rows, i), rows))
			run->valid++;
		CHECK_FOR_INTERRUPTS();
	}
	run->results[index] = rows;
	MemoryContextSwitchTo(old);
	MemoryContextReset(run->respcxt);

	while (run->prefix < run->issued && run->results[run->prefix] != NULL)
		run->prefix_valid += run->results[run->prefix++]->nrows;

	now = GetCurrentTimestamp();
	if (TimestampDifferenceExceeds(run->last_progress, now, PROGRESS_INTERVAL_MS))
	{
		run->last_progress = now;
		ereport(DEBUG1,
				(errmsg_internal("samplellm: " INT64_FORMAT " of %d valid rows after %d answers",
								 run->prefix_valid, run->target, run->answered)));
	}
	return run->prefix_valid < run->target;
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
			sl_stage2_select(run->t, run->seeds, pool, run->n, &opt, &run->s2);
			run->s2_ran = true;
			break;
	}
	if (run->s2.nchosen != run->n)
		elog(ERROR, "samplellm: stage 2 drew %d of %d rows", run->s2.nchosen, run->n);
}

/* ---- the SQL functions ---- */

static void
check_arguments(FunctionCallInfo fcinfo, int *n, SlResample *resample,
				double *oversample)
{
	int			i;
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("n must not be null"),
				 errhint("Pass the number of rows to generate.")));
	*n = PG_GETARG_INT32(1);
	if (*n <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be positive, not %d", *n)));
	if (*n > sl_max_rows)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("n = %d exceeds samplellm.max_rows (%d)", *n, sl_max_rows),
				 errhint("Generate in several calls, or ask a superuser to raise samplellm.max_rows.")));
	if (!PG_ARGISNULL(4) && PG_GETARG_INT32(4) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_seed_rows must be positive, not %d", PG_GETARG_INT32(4))));

	*resample = SL_RESAMPLE_ATTRIBUTION;
	if (!PG_ARGISNULL(5))
	{
		char	   *r = text_to_cstring(PG_GETARG_TEXT_PP(5));

		for (i = 0; i < lengthof(resample_names); i++)
			if (strcmp(r, resample_names[i]) == 0)
				break;
		if (i == lengthof(resample_names))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown resample method \"%s\"", r),
					 errhint("Use 'attribution' (the paper's stage 2), 'uniform' (the same candidates drawn uniformly) or 'none' (the first n valid candidates).")));
		*resample = (SlResample) i;
	}
	*oversample = PG_ARGISNULL(6) ? sl_oversample : PG_GETARG_FLOAT8(6);
	if (!(*oversample >= 1.0 && *oversample <= 100.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("oversample must be between 1 and 100, not %g", *oversample)));
	if (*resample == SL_RESAMPLE_NONE)
		*oversample = 1.0;
}

PG_FUNCTION_INFO_V1(samplellm_generate);

Datum
samplellm_generate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			rowtype = get_fn_expr_argtype(fcinfo->flinfo, 0);
	char	   *label = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	int			n;
	SlRun	   *run;
	MemoryContext old;
	SlHttpConfig cfg;
	SlHttpCallbacks cb;
	int			max_seed_rows;
	int			i;
	int			emitted;
	SlRowSet   *pool;
	Datum	   *values;
	bool	   *nulls;
	int			guc_level;
	SlResample	resample;
	double		oversample;

	check_arguments(fcinfo, &n, &resample, &oversample);
	(void) sl_source_relid(rowtype);
	max_seed_rows = PG_ARGISNULL(4) ? sl_max_seed_rows : PG_GETARG_INT32(4);
	InitMaterializedSRF(fcinfo, 0);

	run = MemoryContextAllocZero(rsinfo->econtext->ecxt_per_query_memory, sizeof(SlRun));
	run->cxt = AllocSetContextCreate(rsinfo->econtext->ecxt_per_query_memory,
									 "samplellm run", ALLOCSET_DEFAULT_SIZES);
	run->respcxt = AllocSetContextCreate(run->cxt, "samplellm response",
										 ALLOCSET_DEFAULT_SIZES);
	run->start = run->last_progress = GetCurrentTimestamp();
	run->n = n;
	run->resample = resample;
	run->oversample = oversample;
	run->target = (int) Min(ceil(n * oversample), (double) PG_INT32_MAX / 2);
	run->seed = PG_ARGISNULL(3) ? (pg_prng_uint64(&pg_global_prng_state) >> 1)
		: (uint64) PG_GETARG_INT64(3);
	old = MemoryContextSwitchTo(run->cxt);

	/*
	 * Values travel as text both ways: ISO dates and the default interval
	 * style are unambiguous for the LLM and for reading its answers back,
	 * whatever the session's DateStyle (postgres_fdw does the same).
	 */
	guc_level = NewGUCNestLevel();
	if (DateStyle != USE_ISO_DATES || DateOrder != DATEORDER_YMD)
		(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (IntervalStyle != INTSTYLE_POSTGRES)
		(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);

	/* Everything that can be refused is refused before a request is sent. */
	run->t = sl_table_open(rowtype, label);
	memset(&cfg, 0, sizeof(cfg));
	cfg.url = chat_url();
	cfg.api_key = read_api_key();
	run->seeds = sl_seeds_read(run->t, max_seed_rows, run->seed, &run->seen_rows);
	if (run->seeds->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("source table \"%s\" has no rows visible to you", run->t->relname),
				 errdetail("samplellm imitates real rows and needs at least one as a seed.")));

	/* Stage 2's label check (at most 64 classes) costs nothing now. */
	if (run->t->label_col >= 0 && run->resample == SL_RESAMPLE_ATTRIBUTION)
		(void) sl_label_fit(run->t, run->seeds);

	run->plan = sl_exemplars_plan(run->t, run->seeds, sl_clusters, sl_mix_seed(run->seed, 7));
	run->prompt = sl_prompt_create(run->t, run->seeds, sl_rows_per_call, sl_max_tokens,
								   run->plan->k * sl_exemplars_per_cluster,
								   sl_context_tokens);
	run->validator = sl_validator_create(run->t, run->seeds);
	run->cap = 64;
	run->results = palloc0(sizeof(SlRowSet *) * run->cap);

	cfg.max_concurrency = sl_max_concurrency;
	cfg.connect_timeout_ms = sl_connect_timeout_ms;
	cfg.request_timeout_ms = sl_request_timeout_ms;
	cfg.max_retries = sl_max_retries;
	cfg.max_response_bytes = (size_t) sl_max_response_kb * 1024;
	cfg.deadline = StatementTimeout > 0 ?
		TimestampTzPlusMilliseconds(GetCurrentStatementStartTimestamp(), StatementTimeout) : 0;
	cfg.seed = sl_mix_seed(run->seed, 99);
	cb.next_body = next_body;
	cb.on_success = on_success;
	cb.fallback_body = fallback_body;
	cb.arg = run;
	sl_http_run(&cfg, &cb, &run->http);

	if (run->prefix_valid < run->n)
		shortfall_error(run);

	/* The pool: valid candidates in request order. */
	pool = sl_rowset_create(run->t->ncols, (int) run->prefix_valid);
	for (i = 0; i < run->prefix; i++)
		sl_rowset_append_shallow(pool, run->results[i]);
	run->pool = pool->nrows;
	choose_rows(run, pool);

	values = palloc(sizeof(Datum) * rsinfo->setDesc->natts);
	nulls = palloc(sizeof(bool) * rsinfo->setDesc->natts);
	for (i = 0; i < run->s2.nchosen; i++)
	{
		int			r = run->s2.chosen[i];
		int			c;

		memset(nulls, true, sizeof(bool) * rsinfo->setDesc->natts);
		for (c = 0; c < run->t->ncols; c++)
		{
			int			a = run->t->cols[c].attnum - 1;

			values[a] = pool->values[SL_CELL(pool, r, c)];
			nulls[a] = pool->isnull[SL_CELL(pool, r, c)];
		}
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	emitted = run->s2.nchosen;

	AtEOXact_GUC(true, guc_level);
	report_summary(run, emitted);
	sl_validator_free(run->validator);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(run->cxt);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(samplellm_last_run);

/* The figures of this session's last call, as jsonb. */
Datum
samplellm_last_run(PG_FUNCTION_ARGS)
{
	if (last_run_json == NULL)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(last_run_json)));
}
