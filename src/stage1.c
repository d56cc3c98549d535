/*-------------------------------------------------------------------------
 *
 * stage1.c
 *	  Stage 1: candidate rows from an OpenAI-compatible LLM.
 *
 * Requests are numbered; request i's exemplars and seed derive from the
 * user's seed and i alone, and candidates are taken in request order from
 * the longest run of answered requests, so the result does not depend on
 * which answer arrived first.  Requests stop as soon as enough valid
 * candidates exist, and early when the answers are mostly unusable.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/proc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "cache.h"
#include "run.h"

#define PROGRESS_INTERVAL_MS 5000
/* Stop early when this many answers in a row gave no valid row at all. */
#define COLLAPSE_MIN_ANSWERS 3

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
				 errhint("A superuser sets it to an OpenAI-compatible API, e.g. ALTER SYSTEM SET samplellm.endpoint = 'https://api.openai.com/v1'; "
						 "without an LLM, SET samplellm.provider = 'builtin' uses the built-in generator.")));
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

/*
 * The endpoint, model and key, checked before anything is paid for.
 */
void
sl_stage1_check_settings(SlRun *run)
{
	run->url = chat_url();
	run->api_key = read_api_key();
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

char *
sl_stage1_request_body(SlRun *run, int index, bool with_schema)
{
	int		   *ex;
	int			nex;
	pg_prng_state rng;
	MemoryContext old = MemoryContextSwitchTo(run->cxt);
	char	   *body;

	const SlExemplarPlan *plan = run->plan;
	const SlRowSet *ex_rows = run->prompt->seeds;
	const char *instruction = NULL;

	/* A per_group request shows that group's rows and asks for its label. */
	if (run->ngroups > 0)
	{
		const SlGroup *grp = &run->groups[sl_quota_request_group(run, index)];

		if (grp->plan)
		{
			plan = grp->plan;
			ex_rows = grp->seeds;
		}
		instruction = grp->instruction;
	}
	pg_prng_seed(&rng, sl_mix_seed(run->seed, 1000 + (uint64) index));
	ex = palloc(sizeof(int) * plan->k * sl_exemplars_per_cluster);
	nex = sl_exemplars_draw(plan, sl_exemplars_per_cluster, &rng, ex);
	if (nex > run->prompt->max_exemplars)
		nex = interleave_clusters(plan, sl_exemplars_per_cluster, ex, nex,
								  run->prompt->max_exemplars);
	body = sl_prompt_body(run->prompt, ex_rows, ex, nex, run->prompt->rows_per_call,
						  instruction,
						  (int64) (sl_mix_seed(run->seed, (uint64) index) & 0x7fffffff),
						  with_schema);
	pfree(ex);
	MemoryContextSwitchTo(old);
	return body;
}

/*
 * Takes one answer (from the endpoint or the cache) for request idx: parse,
 * validate, and extend the prefix of answered requests.  Returns true while
 * more valid candidates are needed.
 */
static bool
take_answer(SlRun *run, int idx, const char *body, size_t len, bool *usable)
{
	MemoryContext old;
	SlResponse	resp;
	SlRowSet   *rows;
	cJSON	   *item;
	TimestampTz now;

	old = MemoryContextSwitchTo(run->respcxt);
	sl_parse_response(body, len, &resp);
	MemoryContextSwitchTo(run->cxt);

	run->answered++;
	run->responses[resp.status]++;
	run->prompt_tokens += resp.prompt_tokens;
	run->completion_tokens += resp.completion_tokens;
	/* Only an answer that parsed into rows is worth replaying (cache). */
	*usable = (resp.status == SL_RESP_OK || resp.status == SL_RESP_TRUNCATED) &&
		resp.rows != NULL && cJSON_GetArraySize(resp.rows) > 0;
	rows = sl_rowset_create(run->t->ncols, run->prompt->rows_per_call);
	/* (cJSON_GetArrayItem walks the list: iterate, or it is quadratic) */
	if (resp.rows)
		cJSON_ArrayForEach(item, resp.rows)
		{
			run->received++;
			if (sl_validate_row(run->validator, item, rows))
				run->valid++;
			CHECK_FOR_INTERRUPTS();
		}
	run->results[idx] = rows;
	sl_limit_check_context(run->cxt, "collecting candidates");
	if (run->ngroups > 0)
		sl_quota_count_answer(run, rows);
	MemoryContextSwitchTo(old);
	MemoryContextReset(run->respcxt);

	while (run->prefix < run->issued && run->results[run->prefix] != NULL)
	{
		if (run->ngroups > 0)
			sl_quota_count(run, run->results[run->prefix]);
		run->prefix_valid += run->results[run->prefix++]->nrows;
	}

	now = GetCurrentTimestamp();
	if (TimestampDifferenceExceeds(run->last_progress, now, PROGRESS_INTERVAL_MS))
	{
		run->last_progress = now;
		ereport(DEBUG1,
				(errmsg_internal("samplellm: " INT64_FORMAT " of %d valid rows after %d answers",
								 run->prefix_valid, run->target, run->answered)));
	}
	if (run->ngroups > 0)
		return !sl_quota_satisfied(run, false);
	return run->prefix_valid < run->target;
}

/* Should another request start?  Sets run->stop when a budget ends it. */
static bool
want_request(SlRun *run)
{
	double		per = valid_per_answer(run);
	int			inflight = run->issued - run->answered;

	if (run->stop)
		return false;
	if (run->ngroups > 0)
	{
		/*
		 * Groups fill at their own pace: ask until every one is full, but
		 * not while the answers already in fill them (the prefix waits for
		 * a slow request).
		 */
		if (sl_quota_satisfied(run, false) || sl_quota_answered_enough(run))
			return false;
	}
	else if (run->prefix_valid >= run->target ||
			 run->valid + inflight * per >= run->target)
		return false;
	if (run->http.attempts >= sl_max_calls)
	{
		run->stop = "calls";
		return false;
	}
	if (sl_max_tokens_total > 0 &&
		run->prompt_tokens + run->completion_tokens >= sl_max_tokens_total)
	{
		run->stop = "tokens";
		return false;
	}
	/* The acceptance rate collapsed: do not spend the budget on it. */
	if (run->answered - run->cached >= COLLAPSE_MIN_ANSWERS)
	{
		double		needed = (run->target - run->valid) / Max(per, 1e-9);

		if (run->valid == 0 || run->http.attempts + needed > sl_max_calls)
		{
			run->stop = "collapse";
			return false;
		}
	}
	return true;
}

static void
ensure_capacity(SlRun *run, int idx, int http_index)
{
	if (idx >= run->cap)
	{
		int			newcap = Max(run->cap * 2, idx + 1);

		run->results = repalloc(run->results, sizeof(SlRowSet *) * newcap);
		memset(run->results + run->cap, 0, sizeof(SlRowSet *) * (newcap - run->cap));
		run->bodies = repalloc(run->bodies, sizeof(char *) * newcap);
		memset(run->bodies + run->cap, 0, sizeof(char *) * (newcap - run->cap));
		run->cap = newcap;
	}
	if (http_index >= run->req_of_cap)
	{
		run->req_of_cap = Max(run->req_of_cap * 2, http_index + 1);
		run->req_of = repalloc(run->req_of, sizeof(int) * run->req_of_cap);
	}
}

/*
 * The next request to send.  Requests whose exact body was answered before
 * (by this role, same endpoint and model) are replayed from the cache here,
 * without an HTTP request, and take their place in the request order.
 */
static char *
next_body(void *arg, int http_index)
{
	SlRun	   *run = arg;

	while (want_request(run))
	{
		int			idx = run->issued;
		char	   *body;
		char	   *cached;
		size_t		len;

		ensure_capacity(run, idx, http_index);
		body = sl_stage1_request_body(run, idx, !run->no_schema);
		run->issued = idx + 1;
		cached = sl_cache_get(run->url, sl_model, body, &len);
		if (cached)
		{
			bool		usable;

			run->cached++;
			(void) take_answer(run, idx, cached, len, &usable);
			pfree(cached);
			pfree(body);
			continue;
		}
		run->bodies[idx] = body;
		run->req_of[http_index] = idx;
		return body;
	}
	return NULL;
}

static char *
fallback_body(void *arg, int http_index, const char *body, size_t len)
{
	SlRun	   *run = arg;

	/*
	 * A 400 earns one retry without response_format (http.c allows one per
	 * request); requests already sent with it get theirs too, and later
	 * ones are built without it.
	 */
	run->no_schema = true;
	return sl_stage1_request_body(run, run->req_of[http_index], false);
}

static bool
on_success(void *arg, int http_index, const char *body, size_t len)
{
	SlRun	   *run = arg;
	int			idx = run->req_of[http_index];

	bool		more;
	bool		usable;

	more = take_answer(run, idx, body, len, &usable);

	/*
	 * Paid for: kept, so that a rerun (or a failure in stage 2) is free; but
	 * not a transient broken answer (a proxy's page, a refusal, truncated
	 * JSON without a row), which a rerun must ask again.
	 */
	if (usable)
		sl_cache_put(run->url, sl_model, run->bodies[idx], body, len);
	pfree(run->bodies[idx]);
	run->bodies[idx] = NULL;
	return more;
}

/* ---- the loop ---- */

void
sl_stage1_llm(SlRun *run)
{
	SlHttpConfig cfg;
	SlHttpCallbacks cb;

	memset(&cfg, 0, sizeof(cfg));
	cfg.url = run->url;
	cfg.api_key = run->api_key;
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
	run->bodies = palloc0(sizeof(char *) * run->cap);
	run->req_of_cap = 64;
	run->req_of = palloc(sizeof(int) * run->req_of_cap);
	sl_http_run(&cfg, &cb, &run->http);
}
