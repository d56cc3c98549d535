/*-------------------------------------------------------------------------
 *
 * stage1_llm.c
 *	  Stage 1's LLM provider: candidate rows from an OpenAI-compatible
 *	  server.
 *
 * Request k of group g shows exemplars drawn for (g, k) and sends a seed
 * derived from (g, k) alone; its valid rows go to the pool under (g, k),
 * which builds the same pool from the same answers whatever the
 * concurrency.  Requests stop as soon as every group's answered prefix is
 * full, and early when answers are mostly unusable, when one group's own
 * answers bring none of its rows, or when a budget runs out.  The request
 * bookkeeping (bodies, the HTTP layer's numbering, the endpoint and key,
 * the response_format fallback, HTTP figures) is this file's alone.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "storage/proc.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "samplellm.h"
#include "run.h"
#include "stage1.h"

#define PROGRESS_INTERVAL_MS 5000
/* Stop early after this many answers with no valid row at all. */
#define COLLAPSE_MIN_ANSWERS 3

/* One request in flight: which group's which request, and its body. */
typedef struct LlmRequest
{
	int			group;
	int			k;
	char	   *body;			/* as first sent: the cache key */
} LlmRequest;

typedef struct Llm
{
	const SlStage1 *in;
	SlPool	   *pool;
	SlStage1Stats *st;
	MemoryContext respcxt;		/* one response's parse trees */
	char	   *url;
	char	   *api_key;
	LlmRequest *req;			/* by the HTTP layer's request number */
	int			nreq;
	int			cap;
	int			answered;
	char	   *sent;			/* the last body handed out (the HTTP layer
								 * copies it): freed at the next one */
	TimestampTz last_progress;
} Llm;

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
				 errdetail("The file is empty or holds more than one line."),
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

void
sl_llm_check_settings(void)
{
	(void) chat_url();
	(void) read_api_key();
}

/* ---- request bodies ---- */

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

/* The references request k of group g hands out: a function of (g, k). */
static SlRefSlots *
request_slots(const SlStage1 *in, int g, int k)
{
	pg_prng_state rng;

	sl_stream_init(&rng, in->seed, SL_STREAM_REQUEST_REFS, SL_REQUEST_INDEX(g, k));
	return sl_refs_draw(in->refs, in->prompt->rows_per_call, SL_REQUEST_INDEX(g, k), &rng);
}

char *
sl_llm_request_body(const SlStage1 *in, int g, int k, int flags)
{
	const SlGroup *grp = &in->groups->groups[g];
	const SlPrompt *prompt = in->prompt;
	const SlExemplarPlan *plan = grp->plan;
	int		   *ex;
	int			nex;
	pg_prng_state rng;
	uint64		index = SL_REQUEST_INDEX(g, k);

	char	   *refs = NULL;

	sl_stream_init(&rng, in->seed, SL_STREAM_REQUEST_EXEMPLARS, index);
	ex = palloc(sizeof(int) * Max(plan->k * sl_exemplars_per_cluster, 1));
	nex = sl_exemplars_draw(plan, sl_exemplars_per_cluster, &rng, ex);
	if (nex > prompt->max_exemplars)
		nex = interleave_clusters(plan, sl_exemplars_per_cluster, ex, nex,
								  prompt->max_exemplars);
	if (sl_refs_any_shown(in->refs))
	{
		StringInfoData buf;

		initStringInfo(&buf);
		sl_refs_append_prompt(&buf, in->refs, request_slots(in, g, k));
		refs = buf.data;
	}
	return sl_prompt_body(prompt, grp->seeds, ex, nex, prompt->rows_per_call,
						  grp->instruction, refs,
						  (int64) (sl_stream_seed(in->seed, SL_STREAM_REQUEST_SEED, index) & 0x7fffffff),
						  flags);
}

/*
 * The body to send: the request's body (its cache key, the same however it
 * is delivered) with the streaming members the call uses.  They go last, so
 * the cache key is the sent body without them.
 */
static char *
delivery_body(Llm *llm, const char *body, int flags)
{
	size_t		len = strlen(body);
	MemoryContext old;

	if (llm->sent)
		pfree(llm->sent);
	if (!(flags & SL_BODY_STREAM) || len == 0 || body[len - 1] != '}')
		return llm->sent = MemoryContextStrdup(llm->in->cxt, body);
	/* never stream_options without stream */
	old = MemoryContextSwitchTo(llm->in->cxt);
	llm->sent = psprintf("%.*s,\"stream\":true%s}", (int) (len - 1), body,
						 (flags & SL_BODY_STREAM_USAGE) ?
						 ",\"stream_options\":{\"include_usage\":true}" : "");
	MemoryContextSwitchTo(old);
	return llm->sent;
}

/* What the samplellm_progress view shows of stage 1. */
static void
progress(const Llm *llm)
{
	int64		needed = 0;
	int			g;

	for (g = 0; g < llm->in->groups->ngroups; g++)
		needed += llm->in->groups->groups[g].target;
	sl_progress_stage1(sl_pool_valid(llm->pool), needed, llm->answered,
					   llm->st->requests - llm->answered, llm->st->http.retries,
					   llm->st->prompt_tokens + llm->st->completion_tokens);
}

/* ---- answers ---- */

/*
 * Takes one answer (from the endpoint or the cache) of a request: parse,
 * validate, put into the pool.  *usable says whether it parsed into rows
 * (only those are cached).
 */
static void
take_answer(Llm *llm, const LlmRequest *rq, const char *body, size_t len, bool *usable)
{
	const SlStage1 *in = llm->in;
	SlStage1Stats *st = llm->st;
	MemoryContext old;
	SlResponse	resp;
	SlRowSet   *rows;
	cJSON	   *item;
	TimestampTz now;

	old = MemoryContextSwitchTo(llm->respcxt);
	sl_parse_response(body, len, &resp);
	MemoryContextSwitchTo(in->cxt);

	llm->answered++;
	st->responses[resp.status]++;
	st->prompt_tokens += resp.prompt_tokens;
	st->completion_tokens += resp.completion_tokens;
	*usable = (resp.status == SL_RESP_OK || resp.status == SL_RESP_TRUNCATED) &&
		resp.rows != NULL && cJSON_GetArraySize(resp.rows) > 0;
	rows = sl_rowset_create(in->t->ncols, in->prompt->rows_per_call);
	/* the references this request handed out, which its rows must use */
	if (sl_refs_any_shown(in->refs))
		sl_validator_set_slots(in->validator, request_slots(in, rq->group, rq->k));
	/* (cJSON_GetArrayItem walks the list: iterate, or it is quadratic) */
	if (resp.rows)
		cJSON_ArrayForEach(item, resp.rows)
		{
			st->received++;
			(void) sl_validate_row(in->validator, item, rows);
			CHECK_FOR_INTERRUPTS();
		}
	sl_validator_set_slots(in->validator, NULL);
	sl_pool_put(llm->pool, rq->group, rq->k, rows);
	MemoryContextSwitchTo(old);
	MemoryContextReset(llm->respcxt);
	sl_limit_check_context(in->cxt, "collecting candidates");
	progress(llm);

	now = GetCurrentTimestamp();
	if (TimestampDifferenceExceeds(llm->last_progress, now, PROGRESS_INTERVAL_MS))
	{
		llm->last_progress = now;
		ereport(DEBUG1,
				(errmsg_internal("samplellm: " INT64_FORMAT " valid rows after %d answers",
								 sl_pool_valid(llm->pool), llm->answered)));
	}
}

/* Valid rows an answer brings, on average so far. */
static double
valid_per_answer(const Llm *llm)
{
	if (llm->answered == 0)
		return llm->in->prompt->rows_per_call;
	return (double) sl_pool_valid(llm->pool) / llm->answered;
}

/*
 * The group the next request should serve, or -1: none is owed more now,
 * or a budget or a collapse ended stage 1 (st->stop says which).
 */
static int
want_request(Llm *llm)
{
	SlStage1Stats *st = llm->st;
	double		per = valid_per_answer(llm);
	int			g;

	if (st->stop || sl_pool_full(llm->pool))
		return -1;
	g = sl_pool_next_group(llm->pool, per);
	if (g < 0)
		return -1;				/* the answers in flight should do */
	if (st->http.attempts >= sl_max_calls)
	{
		st->stop = "calls";
		return -1;
	}
	if (sl_max_tokens_total > 0 &&
		st->prompt_tokens + st->completion_tokens >= sl_max_tokens_total)
	{
		st->stop = "tokens";
		return -1;
	}
	/* A group whose own answers bring none of its rows will not fill. */
	st->stop_group = sl_pool_collapsed_group(llm->pool, COLLAPSE_MIN_ANSWERS);
	if (st->stop_group >= 0)
	{
		st->stop = "collapse";
		return -1;
	}
	/* The acceptance rate collapsed: do not spend the budget on it. */
	if (llm->answered - st->cached >= COLLAPSE_MIN_ANSWERS)
	{
		double		wanted = 0;
		int			h;

		for (h = 0; h < llm->in->groups->ngroups; h++)
			wanted += Max(0, llm->in->groups->groups[h].target - sl_pool_have_all(llm->pool, h));
		if (sl_pool_valid(llm->pool) == 0 ||
			st->http.attempts + wanted / Max(per, 1e-9) > sl_max_calls)
		{
			st->stop = "collapse";
			return -1;
		}
	}
	return g;
}

/*
 * The next request to send.  Requests whose exact body was answered before
 * (by this role, same endpoint and model) are replayed from the cache here,
 * without an HTTP request.
 */
static char *
next_body(void *arg, int http_index, int flags)
{
	Llm		   *llm = arg;
	int			g;

	llm->st->no_schema = !(flags & SL_BODY_SCHEMA);

	while ((g = want_request(llm)) >= 0)
	{
		LlmRequest rq;
		char	   *cached;
		size_t		len;
		MemoryContext old = MemoryContextSwitchTo(llm->in->cxt);

		rq.group = g;
		rq.k = sl_pool_issue(llm->pool, g);
		rq.body = sl_llm_request_body(llm->in, g, rq.k, flags);
		MemoryContextSwitchTo(old);
		llm->st->requests++;
		cached = sl_cache_get(llm->url, sl_model, rq.body, &len);
		if (cached)
		{
			bool		usable;

			llm->st->cached++;
			take_answer(llm, &rq, cached, len, &usable);
			pfree(cached);
			pfree(rq.body);
			continue;
		}
		if (http_index >= llm->cap)
		{
			llm->cap = Max(llm->cap * 2, http_index + 1);
			llm->req = repalloc(llm->req, sizeof(LlmRequest) * llm->cap);
		}
		llm->req[http_index] = rq;
		llm->nreq = Max(llm->nreq, http_index + 1);
		return delivery_body(llm, rq.body, flags);
	}
	return NULL;
}

/*
 * After a 400, the request again with fewer features (llm_http.c decides
 * which: stream_options, stream, or response_format).  Requests already sent
 * with a dropped feature get theirs too, and later ones are built without
 * it.  The cache key stays the body as first built.
 */
static char *
rebuild_body(void *arg, int http_index, int flags)
{
	Llm		   *llm = arg;
	const LlmRequest *rq = &llm->req[http_index];
	MemoryContext old = MemoryContextSwitchTo(llm->in->cxt);
	char	   *base;
	char	   *fb;

	llm->st->no_schema = !(flags & SL_BODY_SCHEMA);
	base = sl_llm_request_body(llm->in, rq->group, rq->k, flags);
	fb = delivery_body(llm, base, flags);
	pfree(base);
	MemoryContextSwitchTo(old);
	return fb;
}

/* Does a cut answer hold at least one complete row? */
static bool
cut_has_rows(Llm *llm, const char *body, size_t len)
{
	MemoryContext old = MemoryContextSwitchTo(llm->respcxt);
	SlResponse	resp;
	bool		any;

	sl_parse_response(body, len, &resp);
	any = resp.rows != NULL && cJSON_GetArraySize(resp.rows) > 0;
	MemoryContextSwitchTo(old);
	MemoryContextReset(llm->respcxt);
	return any;
}

static bool
on_success(void *arg, int http_index, const char *body, size_t len,
		   bool cut, bool *used)
{
	Llm		   *llm = arg;
	LlmRequest *rq = &llm->req[http_index];
	bool		usable;

	/* a stream cut before its first complete row is asked again */
	if (cut && !cut_has_rows(llm, body, len))
	{
		*used = false;
		return true;
	}
	*used = true;
	take_answer(llm, rq, body, len, &usable);

	/*
	 * Paid for: kept, so that a rerun (or a failure in stage 2) is free; but
	 * not a transient broken answer (a proxy's page, a refusal, truncated
	 * JSON without a row, a stream cut short), which a rerun must ask again.
	 */
	if (usable && !cut)
		sl_cache_put(llm->url, sl_model, rq->body, body, len);
	pfree(rq->body);
	rq->body = NULL;
	return !sl_pool_full(llm->pool);
}

/* ---- the loop ---- */

void
sl_stage1_llm(const SlStage1 *in, SlPool *pool, SlStage1Stats *st)
{
	SlHttpConfig cfg;
	SlHttpCallbacks cb;
	Llm			llm;

	memset(&llm, 0, sizeof(llm));
	llm.in = in;
	llm.pool = pool;
	llm.st = st;
	llm.url = chat_url();
	llm.api_key = read_api_key();
	llm.respcxt = AllocSetContextCreate(in->cxt, "samplellm response", ALLOCSET_DEFAULT_SIZES);
	llm.cap = 64;
	llm.req = MemoryContextAllocZero(in->cxt, sizeof(LlmRequest) * llm.cap);
	llm.last_progress = GetCurrentTimestamp();
	st->stop_group = -1;

	memset(&cfg, 0, sizeof(cfg));
	cfg.url = llm.url;
	cfg.api_key = llm.api_key;
	cfg.max_concurrency = sl_max_concurrency;
	cfg.connect_timeout_ms = sl_connect_timeout_ms;
	cfg.request_timeout_ms = sl_request_timeout_ms;
	cfg.idle_timeout_ms = sl_idle_timeout_ms;
	cfg.flags = SL_BODY_SCHEMA | SL_BODY_SCHEMA_BOUNDS | (sl_stream ? SL_BODY_STREAM | SL_BODY_STREAM_USAGE : 0);
	st->capacity.running = st->capacity.waiting = -1;
	if (sl_discover_capacity)
		sl_capacity_discover(llm.url, llm.api_key, &st->capacity);
	cfg.server_slots = st->capacity.slots;
	cfg.max_retries = sl_max_retries;
	cfg.max_response_bytes = (size_t) sl_max_response_kb * 1024;
	cfg.deadline = StatementTimeout > 0 ?
		TimestampTzPlusMilliseconds(GetCurrentStatementStartTimestamp(), StatementTimeout) : 0;
	cfg.seed = sl_stream_seed(in->seed, SL_STREAM_HTTP_JITTER, 0);
	cb.next_body = next_body;
	cb.on_success = on_success;
	cb.rebuild_body = rebuild_body;
	cb.arg = &llm;
	sl_http_run(&cfg, &cb, &st->http);
	MemoryContextDelete(llm.respcxt);
}
