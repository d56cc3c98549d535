/*-------------------------------------------------------------------------
 *
 * llm_http.c
 *	  Stage 1, step 4: concurrent chat-completion requests with libcurl's
 *	  multi interface, streaming, retries with backoff, AIMD concurrency,
 *	  and cancel.
 *
 * A blocking curl_easy_perform() cannot be interrupted by query cancel or
 * statement_timeout, so every wait here is bounded (at most SL_POLL_MS) and
 * followed by CHECK_FOR_INTERRUPTS().  Retry backoff is not a separate
 * sleep: a request waiting for a retry has a due time, and the same loop
 * waits on curl (or on the latch when nothing is in flight) until then.
 *
 * curl callbacks never palloc or ereport: a longjmp through libcurl frames
 * corrupts it.  They use malloc and set flags; errors are raised after curl
 * returns.  Every foreign resource (multi and easy handles, the header list,
 * malloc'd response buffers) is released by sl_cleanup(), which runs on
 * normal return, in PG_CATCH, and as a reset callback of the run's memory
 * context, so nothing leaks whichever way the run ends.
 *
 * Local servers (llama.cpp, Ollama) take one request at a time by default
 * and queue the rest, connection open.  So a streamed request is alive while
 * bytes arrive, and one that has had none yet is queued, not failed, as long
 * as some request of the run still receives bytes: the timeout that counts is
 * samplellm.idle_timeout of silence (plus the statement's deadline), not the
 * length of the answer.  The window follows the server: it starts at the
 * ceiling (max_concurrency, or fewer slots the server reported) and halves on
 * congestion, which is a 429, a 503, a timeout, or a first byte that comes
 * much later than the fastest one seen (the request waited in the server's
 * queue); every answer widens it again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <math.h>
#include <time.h>

#include "common/pg_prng.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "curl_prelude.h"
#include <cjson/cJSON.h>

#include "llm.h"
#include "samplellm.h"

#define SL_BACKOFF_BASE_MS	500.0
#define SL_BACKOFF_CAP_MS	30000.0
#define SL_RETRY_AFTER_MAX_MS 86400000.0	/* clamp absurd Retry-After */
#define SL_POLL_MS			100 /* longest wait before checking interrupts */
#define SL_AIMD_COOLDOWN_MS 1000	/* at most one halving per second */
#define SL_BODY_EXCERPT		200 /* bytes of a non-JSON error body shown */
#define SL_MESSAGE_MAX		500 /* bytes of a JSON error message shown */
#define SL_HEADER_MAX		64
/* A first byte this much later than 3x the fastest one: the request queued. */
#define SL_QUEUE_SLACK_MS	1000.0
#define SL_QUEUE_FACTOR		3.0
#define SL_SSE_FRAMING		64	/* raw stream bytes per byte of content */

/* One logical request, across its attempts. */
typedef struct SlReq
{
	int			index;
	char	   *body;			/* in the run context */
	int			attempts;		/* attempts started */
	int			retries;		/* retries counted against max_retries */
	bool		used_fallback;
	int			flags;			/* SL_BODY_* the body was built with */
	TimestampTz due;			/* when a waiting retry may start */
	struct SlReq *next;			/* waiting list, sorted by due */

	/* the current attempt; only malloc'd memory below */
	CURL	   *easy;
	bool		added;			/* easy is in the multi handle */
	char	   *resp;
	size_t		resp_len;
	size_t		resp_cap;
	size_t		resp_limit;
	bool		too_large;
	bool		oom;
	char		retry_after[SL_HEADER_MAX];
	char		retry_after_ms[SL_HEADER_MAX];
	char		content_type[SL_HEADER_MAX];
	size_t		received;		/* body bytes of this attempt, for the limit */
	TimestampTz started;
	TimestampTz first_byte;		/* set by the write callback; 0 = none yet */
	TimestampTz last_byte;
	bool		latency_seen;	/* first_byte went to the AIMD */
	SlSse   *stream;			/* server-sent events: parsed as they come */
} SlReq;

typedef struct SlRun
{
	MemoryContext cxt;
	MemoryContextCallback cleanup_cb;
	const SlHttpConfig *cfg;
	const SlHttpCallbacks *cb;
	SlHttpStats *stats;

	CURLM	   *multi;
	struct curl_slist *headers;

	int			nslots;			/* max_concurrency */
	SlReq	  **slots;			/* requests with a live attempt */
	int			ninflight;
	SlReq	   *waiting;		/* requests due for a retry */

	int			next_index;
	bool		exhausted;		/* next_body said NULL since last success */

	double		window;			/* AIMD concurrency window */
	int			ceiling;		/* the window's upper bound */
	int			flags;			/* SL_BODY_* for bodies built from now on */
	double		base_ms;		/* fastest first byte seen, -1 = none yet */
	TimestampTz last_byte;		/* latest body byte of any request */
	TimestampTz last_decrease;
	pg_prng_state prng;
} SlRun;

static bool sl_curl_ready = false;

static void sl_cleanup(void *arg);
static void sl_start_attempt(SlRun *run, SlReq *req);
static bool sl_complete(SlRun *run, CURL *easy, CURLcode res);
static bool sl_take_cut(SlRun *run, SlReq *req, bool *keep);


/* ---- curl callbacks: malloc only, no ereport ---- */

/* A content type of server-sent events. */
static bool
sl_is_sse(const SlReq *req)
{
	return pg_strncasecmp(req->content_type, "text/event-stream", 17) == 0;
}

static size_t
sl_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	SlReq	   *req = (SlReq *) userdata;
	size_t		n = size * nmemb;

	/*
	 * A stream's parsed bytes leave the buffer, and its framing is some 50
	 * bytes per token: its raw bytes get SL_SSE_FRAMING times the limit,
	 * the content it carries the limit itself (checked as it is parsed).
	 */
	if (n > (sl_is_sse(req) ? req->resp_limit * SL_SSE_FRAMING : req->resp_limit) - req->received)
	{
		req->too_large = true;
		return 0;				/* makes curl abort with CURLE_WRITE_ERROR */
	}
	req->received += n;
	/* GetCurrentTimestamp() neither allocates nor raises */
	req->last_byte = GetCurrentTimestamp();
	if (req->first_byte == 0)
		req->first_byte = req->last_byte;
	if (req->resp_len + n + 1 > req->resp_cap)
	{
		size_t		cap = Max(req->resp_cap * 2, 4096);
		char	   *p;

		if (cap < req->resp_len + n + 1)
			cap = req->resp_len + n + 1;
		p = realloc(req->resp, cap);
		if (p == NULL)
		{
			req->oom = true;
			return 0;
		}
		req->resp = p;
		req->resp_cap = cap;
	}
	memcpy(req->resp + req->resp_len, ptr, n);
	req->resp_len += n;
	req->resp[req->resp_len] = '\0';
	return n;
}

/* Copies the value of header "name:" (case-insensitive) into dst. */
static bool
sl_capture_header(const char *buf, size_t n, const char *name, char *dst)
{
	size_t		namelen = strlen(name);
	size_t		start;
	size_t		end;
	size_t		len;

	if (n <= namelen || pg_strncasecmp(buf, name, namelen) != 0)
		return false;
	start = namelen;
	while (start < n && (buf[start] == ' ' || buf[start] == '\t'))
		start++;
	end = n;
	while (end > start && isspace((unsigned char) buf[end - 1]))
		end--;
	len = Min(end - start, SL_HEADER_MAX - 1);
	memcpy(dst, buf + start, len);
	dst[len] = '\0';
	return true;
}

static size_t
sl_header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	SlReq	   *req = (SlReq *) userdata;
	size_t		n = size * nitems;

	/* a new status line starts a new response: forget earlier headers */
	if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0)
	{
		req->retry_after[0] = '\0';
		req->retry_after_ms[0] = '\0';
		req->content_type[0] = '\0';
		return n;
	}
	if (!sl_capture_header(buf, n, "retry-after-ms:", req->retry_after_ms) &&
		!sl_capture_header(buf, n, "retry-after:", req->retry_after))
		(void) sl_capture_header(buf, n, "content-type:", req->content_type);
	return n;
}


/* ---- cleanup ---- */

/* Frees the foreign resources of one request's current attempt. */
static void
sl_release_attempt(SlRun *run, SlReq *req)
{
	if (req->easy != NULL)
	{
		if (req->added && run->multi != NULL)
			curl_multi_remove_handle(run->multi, req->easy);
		curl_easy_cleanup(req->easy);
		req->easy = NULL;
		req->added = false;
	}
	free(req->resp);
	req->resp = NULL;
	req->resp_len = 0;
	req->resp_cap = 0;
	if (req->stream != NULL)
	{
		/* palloc'd in the run context: a long call must not keep them all */
		pfree(req->stream->event.data);
		pfree(req->stream->content.data);
		if (req->stream->finish)
			pfree(req->stream->finish);
		pfree(req->stream);
		req->stream = NULL;
	}
}

/*
 * Releases every foreign resource of the run.  Idempotent and safe after a
 * partial setup: it is called on normal return, in PG_CATCH, and again by
 * the memory context reset callback.
 */
static void
sl_cleanup(void *arg)
{
	SlRun	   *run = (SlRun *) arg;
	int			i;

	if (run->slots != NULL)
	{
		for (i = 0; i < run->nslots; i++)
		{
			if (run->slots[i] != NULL)
			{
				sl_release_attempt(run, run->slots[i]);
				run->slots[i] = NULL;
			}
		}
	}
	run->ninflight = 0;
	if (run->multi != NULL)
	{
		curl_multi_cleanup(run->multi);
		run->multi = NULL;
	}
	if (run->headers != NULL)
	{
		curl_slist_free_all(run->headers);
		run->headers = NULL;
	}
}

/* Takes a finished request out of its slot and frees its attempt. */
static void
sl_retire(SlRun *run, SlReq *req)
{
	int			i;

	sl_release_attempt(run, req);
	for (i = 0; i < run->nslots; i++)
	{
		if (run->slots[i] == req)
		{
			run->slots[i] = NULL;
			run->ninflight--;
			return;
		}
	}
	elog(ERROR, "samplellm: request %d is not in flight", req->index);
}


/* ---- error text ---- */

/*
 * Copies s, replacing control characters by spaces and bytes that are not
 * valid in the database encoding by '?', so that server text can go into an
 * error message.
 */
static char *
sl_printable(const char *s, size_t len)
{
	StringInfoData out;
	bool		utf8 = (GetDatabaseEncoding() == PG_UTF8);
	size_t		i = 0;

	initStringInfo(&out);
	while (i < len && s[i] != '\0')
	{
		unsigned char c = (unsigned char) s[i];

		if (c < 0x80)
		{
			appendStringInfoChar(&out, (c < 0x20 || c == 0x7f) ? ' ' : (char) c);
			i++;
			continue;
		}
		if (utf8)
		{
			int			l = pg_utf_mblen((const unsigned char *) s + i);

			if (l > 1 && i + l <= len &&
				pg_utf8_islegal((const unsigned char *) s + i, l))
			{
				appendBinaryStringInfo(&out, s + i, l);
				i += l;
				continue;
			}
		}
		appendStringInfoChar(&out, '?');
		i++;
	}
	return out.data;
}

static bool
sl_token_char(char c)
{
	/* strchr() would match the terminator */
	return c != '\0' &&
		(isalnum((unsigned char) c) || strchr("-._~+/=*", c) != NULL);
}

/*
 * Replaces the API key, "Bearer <token>" and "sk-..." tokens by
 * "[redacted]": servers sometimes echo the Authorization header.
 */
static char *
sl_redact(const char *s, const char *api_key)
{
	StringInfoData out;
	size_t		keylen = api_key ? strlen(api_key) : 0;
	size_t		i = 0;

	initStringInfo(&out);
	while (s[i] != '\0')
	{
		if (keylen > 0 && strncmp(s + i, api_key, keylen) == 0)
		{
			appendStringInfoString(&out, "[redacted]");
			i += keylen;
			continue;
		}
		if (pg_strncasecmp(s + i, "bearer", 6) == 0 &&
			(i == 0 || !isalnum((unsigned char) s[i - 1])))
		{
			size_t		j = i + 6;

			while (s[j] == ' ' || s[j] == '\t')
				j++;
			/* the key itself first: it may hold characters a token cannot */
			if (j > i + 6 && keylen > 0 && strncmp(s + j, api_key, keylen) == 0)
			{
				appendStringInfoString(&out, "Bearer [redacted]");
				i = j + keylen;
				continue;
			}
			if (j > i + 6 && sl_token_char(s[j]))
			{
				while (sl_token_char(s[j]))
					j++;
				appendStringInfoString(&out, "Bearer [redacted]");
				i = j;
				continue;
			}
		}
		if (strncmp(s + i, "sk-", 3) == 0 &&
			(i == 0 || !sl_token_char(s[i - 1])))
		{
			size_t		j = i + 3;

			while (sl_token_char(s[j]))
				j++;
			if (j - i - 3 >= 4)
			{
				appendStringInfoString(&out, "[redacted]");
				i = j;
				continue;
			}
		}
		appendStringInfoChar(&out, s[i]);
		i++;
	}
	return out.data;
}

/* Cuts s to at most maxbytes without splitting a character. */
static char *
sl_clip(char *s, int maxbytes)
{
	int			len = strlen(s);

	if (len > maxbytes)
	{
		len = pg_mbcliplen(s, len, maxbytes);
		s[len] = '\0';
		s = psprintf("%s...", s);
	}
	return s;
}

/*
 * The server's explanation of an error answer: error.message of an
 * OpenAI-style body (or a bare "error"/"message"/"detail" string), else the
 * start of the body.  Printable, redacted, clipped; NULL for an empty body.
 * *quota is set for OpenAI's insufficient_quota.
 */
static char *
sl_error_message(const SlRun *run, const char *body, size_t len, bool *quota)
{
	char	   *text = NULL;
	size_t		textlen = 0;
	int			maxbytes = SL_MESSAGE_MAX;
	cJSON	   *root;
	char	   *clean;

	*quota = false;
	if (body == NULL || len == 0)
		return NULL;

	root = cJSON_ParseWithLength(body, len);
	if (root != NULL)
	{
		cJSON	   *err = cJSON_GetObjectItemCaseSensitive(root, "error");
		cJSON	   *msg = NULL;

		if (cJSON_IsObject(err))
		{
			cJSON	   *code = cJSON_GetObjectItemCaseSensitive(err, "code");
			cJSON	   *type = cJSON_GetObjectItemCaseSensitive(err, "type");

			if ((cJSON_IsString(code) &&
				 strcmp(code->valuestring, "insufficient_quota") == 0) ||
				(cJSON_IsString(type) &&
				 strcmp(type->valuestring, "insufficient_quota") == 0))
				*quota = true;
			msg = cJSON_GetObjectItemCaseSensitive(err, "message");
		}
		else if (cJSON_IsString(err))
			msg = err;
		if (!cJSON_IsString(msg))
			msg = cJSON_GetObjectItemCaseSensitive(root, "message");
		if (!cJSON_IsString(msg))
			msg = cJSON_GetObjectItemCaseSensitive(root, "detail");
		if (cJSON_IsString(msg) && msg->valuestring[0] != '\0')
		{
			/* bounded copy: the message may be as long as the body */
			textlen = Min(strlen(msg->valuestring), 4 * SL_MESSAGE_MAX);
			text = pnstrdup(msg->valuestring, textlen);
		}
		cJSON_Delete(root);
	}
	else if (memmem(body, len, "insufficient_quota", 18) != NULL)
		*quota = true;

	if (text == NULL)
	{
		/* redact before clipping, so a key across the cut cannot leak */
		textlen = Min(len, 4 * SL_BODY_EXCERPT);
		text = pnstrdup(body, textlen);
		maxbytes = SL_BODY_EXCERPT;
	}
	clean = sl_printable(text, textlen);
	return sl_clip(sl_redact(clean, run->cfg->api_key), maxbytes);
}

static const char *
sl_http_hint(long status, bool quota, bool exhausted)
{
	if (status == 401 || status == 403)
		return "Check samplellm.api_key or samplellm.api_key_file.";
	if (status == 404)
		return "Check samplellm.endpoint and samplellm.model.";
	if (status == 429 && quota)
		return "The account behind the API key has no quota left; check its plan and billing.";
	if (status >= 300 && status < 400)
		return "samplellm does not follow redirects; set samplellm.endpoint to the final URL.";
	if (status == 400)
		return "The endpoint rejected the request; a smaller samplellm.rows_per_call or samplellm.max_tokens may fit the model's context.";
	if (exhausted)
		return "The server kept failing; try again later or raise samplellm.max_retries.";
	return NULL;
}

/* Raises the ERROR for an HTTP answer we do not retry. */
static void
sl_http_error(const SlRun *run, const SlReq *req, long status,
			  bool exhausted, const char *extra)
{
	bool		quota;
	char	   *msg = sl_error_message(run, req->resp, req->resp_len, &quota);
	const char *hint = sl_http_hint(status, quota, exhausted);
	StringInfoData detail;

	initStringInfo(&detail);
	if (req->attempts > 1)
		appendStringInfo(&detail, "After %d attempts, the server ",
						 req->attempts);
	else
		appendStringInfoString(&detail, "The server ");
	if (msg != NULL)
	{
		size_t		len = strlen(msg);

		appendStringInfo(&detail, "said: %s", msg);
		if (len > 0 && strchr(".!?", msg[len - 1]) == NULL)
			appendStringInfoChar(&detail, '.');
	}
	else
		appendStringInfoString(&detail, "sent an empty body.");
	if (extra != NULL)
		appendStringInfo(&detail, " %s", extra);

	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("LLM endpoint answered HTTP %ld", status),
			 errdetail_internal("%s", detail.data),
			 hint ? errhint("%s", hint) : 0));
}

/*
 * Raises the ERROR for a transport failure.  curl's generic text and the OS
 * error only: curl's error buffer names the host, and the endpoint is
 * superuser-only information.
 */
static void
sl_conn_error(const SlReq *req, CURLcode res, long oserr, bool exhausted,
			  const char *extra)
{
	StringInfoData detail;

	initStringInfo(&detail);
	appendStringInfo(&detail, "curl: %s", curl_easy_strerror(res));
	if (oserr != 0)
		appendStringInfo(&detail, " (%s)", strerror((int) oserr));
	appendStringInfo(&detail, "; %d %s.", req->attempts,
					 req->attempts == 1 ? "attempt" : "attempts");
	if (extra != NULL)
		appendStringInfo(&detail, " %s", extra);

	/*
	 * A refused or unresolvable address is a wrong endpoint or a server that
	 * is down: more retries would not help.
	 */
	if (res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST ||
		res == CURLE_COULDNT_RESOLVE_PROXY || !exhausted)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not reach the LLM endpoint"),
				 errdetail_internal("%s", detail.data),
				 errhint("Check samplellm.endpoint and that the server is running.")));
	ereport(ERROR,
			(errcode(ERRCODE_CONNECTION_FAILURE),
			 errmsg("could not reach the LLM endpoint"),
			 errdetail_internal("%s", detail.data),
			 errhint("The server kept failing; try again later or raise samplellm.max_retries.")));
}


/* ---- retry policy ---- */

static bool
sl_retryable_curl(CURLcode res)
{
	switch (res)
	{
		case CURLE_COULDNT_CONNECT:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_PARTIAL_FILE:
		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			return true;
		default:
			return false;
	}
}

static bool
sl_retryable_status(long status)
{
	return status == 408 || status == 409 || status == 429 ||
		(status >= 500 && status <= 599);
}

/* The server's minimum wait in ms (retry-after-ms, Retry-After), or -1. */
static double
sl_retry_after(const SlReq *req)
{
	char	   *end;
	double		v;

	if (req->retry_after_ms[0] != '\0')
	{
		v = strtod(req->retry_after_ms, &end);
		if (end != req->retry_after_ms && *end == '\0' && isfinite(v) && v >= 0)
			return Min(v, SL_RETRY_AFTER_MAX_MS);
	}
	if (req->retry_after[0] != '\0')
	{
		time_t		t;

		v = strtod(req->retry_after, &end);
		if (end != req->retry_after && *end == '\0' && isfinite(v) && v >= 0)
			return Min(v * 1000.0, SL_RETRY_AFTER_MAX_MS);
		t = curl_getdate(req->retry_after, NULL);
		if (t != (time_t) -1)
		{
			v = difftime(t, time(NULL)) * 1000.0;
			return Max(0.0, Min(v, SL_RETRY_AFTER_MAX_MS));
		}
	}
	return -1;
}

static void
sl_enqueue(SlRun *run, SlReq *req, TimestampTz due)
{
	SlReq	  **p = &run->waiting;

	req->due = due;
	while (*p != NULL && (*p)->due <= due)
		p = &(*p)->next;
	req->next = *p;
	*p = req;
}

/*
 * Schedules another attempt after exponential backoff with full jitter, no
 * sooner than the server asked.  Raises the request's error instead when its
 * retries are used up or the wait would pass the deadline.
 */
static void
sl_schedule_retry(SlRun *run, SlReq *req, long status, CURLcode res,
				  long oserr)
{
	const SlHttpConfig *cfg = run->cfg;
	TimestampTz now = GetCurrentTimestamp();
	double		ceiling;
	double		wait_ms;
	double		server_ms = sl_retry_after(req);

	if (req->retries >= cfg->max_retries)
	{
		if (status != 0)
			sl_http_error(run, req, status, true, NULL);
		sl_conn_error(req, res, oserr, true, NULL);
	}

	ceiling = Min(SL_BACKOFF_CAP_MS,
				  SL_BACKOFF_BASE_MS * pow(2.0, Min(req->retries, 30)));
	/*
	 * Full jitter; a server's wait is a minimum, with jitter on top, or every
	 * request refused at once would come back at once (a thundering herd).
	 */
	wait_ms = ceiling * pg_prng_double(&run->prng);
	if (server_ms >= 0)
		wait_ms = server_ms + 0.5 * wait_ms;

	/*
	 * Without statement_timeout, a server asking to wait longer than one
	 * request may take is treated as a refusal, not waited out.
	 */
	if (cfg->deadline == 0 && server_ms > cfg->request_timeout_ms)
	{
		char	   *extra = psprintf("The server asked to wait %.0f s, more than samplellm.request_timeout (%.0f s).",
									 ceil(server_ms / 1000.0), cfg->request_timeout_ms / 1000.0);

		if (status != 0)
			sl_http_error(run, req, status, false, extra);
		sl_conn_error(req, res, oserr, false, extra);
	}

	/* The jitter never turns a wait that fits the deadline into one that does not. */
	if (cfg->deadline != 0 && server_ms >= 0 &&
		now + (TimestampTz) (server_ms * 1000.0) < cfg->deadline &&
		now + (TimestampTz) (wait_ms * 1000.0) >= cfg->deadline)
		wait_ms = server_ms;

	if (cfg->deadline != 0 &&
		now + (TimestampTz) (wait_ms * 1000.0) >= cfg->deadline)
	{
		double		left_s = Max(0.0, (cfg->deadline - now) / 1000000.0);
		char	   *extra;

		if (server_ms >= 0 && now + (TimestampTz) (server_ms * 1000.0) >= cfg->deadline)
			extra = psprintf("The server asked to wait %.0f s, more than the %.0f s left.",
							 ceil(server_ms / 1000.0), floor(left_s));
		else
			extra = psprintf("No time is left for another attempt (%.0f s left).",
							 floor(left_s));
		if (status != 0)
			sl_http_error(run, req, status, false, extra);
		sl_conn_error(req, res, oserr, false, extra);
	}

	req->retries++;
	run->stats->retries++;
	sl_retire(run, req);
	sl_enqueue(run, req, now + (TimestampTz) (wait_ms * 1000.0));
}

/*
 * AIMD: halve the window on a 429 or on congestion (a 503, a timeout, a
 * request that queued), at most once per cooldown.
 */
static void
sl_window_decrease(SlRun *run, bool congestion)
{
	TimestampTz now = GetCurrentTimestamp();

	if (run->last_decrease != 0 &&
		!TimestampDifferenceExceeds(run->last_decrease, now, SL_AIMD_COOLDOWN_MS))
		return;
	run->last_decrease = now;
	if (congestion && run->window > 1.0)
		run->stats->congestion++;
	run->window = Max(1.0, floor(run->window / 2.0));
	run->stats->min_concurrency = Min(run->stats->min_concurrency,
									  (int) run->window);
}

static void
sl_window_increase(SlRun *run)
{
	run->window = Min((double) run->ceiling, run->window + 1.0 / run->window);
}

/*
 * Time to the first byte: a request that waited in the server's queue gets
 * its first byte a whole answer (or more) after the fastest one.
 */
static void
sl_observe_latency(SlRun *run, double ms)
{
	if (run->base_ms < 0 || ms < run->base_ms)
	{
		run->base_ms = ms;
		return;
	}
	if (ms > SL_QUEUE_FACTOR * run->base_ms + SL_QUEUE_SLACK_MS)
		sl_window_decrease(run, true);
}


/* ---- transfers ---- */

#define SL_SETOPT(easy, opt, val) \
	do { \
		CURLcode	setopt_rc = curl_easy_setopt((easy), (opt), (val)); \
		if (setopt_rc != CURLE_OK) \
			elog(ERROR, "samplellm: curl_easy_setopt(%s) failed: %s", \
				 #opt, curl_easy_strerror(setopt_rc)); \
	} while (0)

static void
sl_start_attempt(SlRun *run, SlReq *req)
{
	const SlHttpConfig *cfg = run->cfg;
	/* a streamed answer may take as long as it keeps sending */
	long		timeout_ms = (req->flags & SL_BODY_STREAM) ? 0 : cfg->request_timeout_ms;
	CURL	   *easy;
	CURLMcode	mc;
	int			slot;

	if (cfg->deadline != 0)
	{
		long		left_ms = (long) ((cfg->deadline - GetCurrentTimestamp()) / 1000);

		if (left_ms < 1)
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("LLM requests ran past their deadline"),
					 errdetail("%d of the requests completed.",
							   run->stats->completed)));
		/*
		 * The deadline is statement_timeout's: let PostgreSQL's timer end the
		 * statement with its usual message, curl's timeout only a moment
		 * later as a backstop.
		 */
		left_ms += 1000;
		if (timeout_ms <= 0 || left_ms < timeout_ms)
			timeout_ms = left_ms;
	}

	for (slot = 0; slot < run->nslots; slot++)
		if (run->slots[slot] == NULL)
			break;
	if (slot == run->nslots)
		elog(ERROR, "samplellm: no free HTTP slot");

	easy = curl_easy_init();
	if (easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not create a curl handle.")));
	/* owned by the slot from now on, so sl_cleanup() finds it */
	run->slots[slot] = req;
	run->ninflight++;
	req->easy = easy;
	req->added = false;
	req->resp = NULL;
	req->resp_len = 0;
	req->resp_cap = 0;
	req->resp_limit = cfg->max_response_bytes > 0 ?
		cfg->max_response_bytes : (size_t) MaxAllocHugeSize;
	req->too_large = false;
	req->oom = false;
	req->retry_after[0] = '\0';
	req->retry_after_ms[0] = '\0';
	req->content_type[0] = '\0';
	req->received = 0;
	req->started = GetCurrentTimestamp();
	req->first_byte = 0;
	req->last_byte = 0;
	req->latency_seen = false;
	req->stream = NULL;
	run->stats->max_in_flight = Max(run->stats->max_in_flight, run->ninflight);

	SL_SETOPT(easy, CURLOPT_URL, cfg->url);
	SL_SETOPT(easy, CURLOPT_PRIVATE, (void *) req);
	/* PostgreSQL multiplexes SIGALRM for its own timeouts */
	SL_SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
	/* the endpoint is a superuser decision: no redirects, http(s) only */
	SL_SETOPT(easy, CURLOPT_FOLLOWLOCATION, 0L);
	SL_SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	SL_SETOPT(easy, CURLOPT_HTTPHEADER, run->headers);
	SL_SETOPT(easy, CURLOPT_POSTFIELDS, req->body);
	SL_SETOPT(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(req->body));
	if (cfg->connect_timeout_ms > 0)
		SL_SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) cfg->connect_timeout_ms);
	if (timeout_ms > 0)
		SL_SETOPT(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	SL_SETOPT(easy, CURLOPT_WRITEFUNCTION, sl_write_cb);
	SL_SETOPT(easy, CURLOPT_WRITEDATA, (void *) req);
	SL_SETOPT(easy, CURLOPT_HEADERFUNCTION, sl_header_cb);
	SL_SETOPT(easy, CURLOPT_HEADERDATA, (void *) req);
	/* CURLOPT_ACCEPT_ENCODING stays unset: no decompression bombs */

	mc = curl_multi_add_handle(run->multi, easy);
	if (mc != CURLM_OK)
		elog(ERROR, "samplellm: curl_multi_add_handle failed: %s",
			 curl_multi_strerror(mc));
	req->added = true;
	req->attempts++;
	run->stats->attempts++;
}

/* Starts due retries, then new requests, while the window has room. */
static void
sl_fill(SlRun *run)
{
	TimestampTz now = GetCurrentTimestamp();
	int			cap = Max(1, (int) run->window);

	/* retries first: they are older work */
	while (run->ninflight < cap && run->waiting != NULL &&
		   run->waiting->due <= now)
	{
		SlReq	   *req = run->waiting;

		run->waiting = req->next;
		req->next = NULL;
		sl_start_attempt(run, req);
	}

	while (run->ninflight < cap && !run->exhausted)
	{
		char	   *body = run->cb->next_body(run->cb->arg, run->next_index, run->flags);
		SlReq	   *req;

		if (body == NULL)
		{
			run->exhausted = true;
			break;
		}
		req = MemoryContextAllocZero(run->cxt, sizeof(SlReq));
		req->index = run->next_index++;
		req->flags = run->flags;
		req->body = MemoryContextStrdup(run->cxt, body);
		sl_start_attempt(run, req);
	}
}

/*
 * Parses what a streamed request has received so far and drops the parsed
 * bytes from its buffer; notes its first byte for the AIMD.  at_end: the
 * transfer is over.
 */
static void
sl_advance(SlRun *run, SlReq *req, bool at_end)
{
	size_t		used;
	MemoryContext old;

	if (req->first_byte != 0)
	{
		if (req->last_byte > run->last_byte)
			run->last_byte = req->last_byte;
		if (!req->latency_seen)
		{
			req->latency_seen = true;
			sl_observe_latency(run, (req->first_byte - req->started) / 1000.0);
		}
	}
	if (req->resp_len == 0 && !at_end)
		return;
	if (req->stream == NULL)
	{
		if (!sl_is_sse(req))
			return;				/* a whole body (or an error): kept as is */
		req->stream = MemoryContextAlloc(run->cxt, sizeof(SlSse));
		old = MemoryContextSwitchTo(run->cxt);
		sl_sse_init(req->stream);
		MemoryContextSwitchTo(old);
		run->stats->streamed++;
	}
	old = MemoryContextSwitchTo(run->cxt);
	used = sl_sse_feed(req->stream, req->resp ? req->resp : "", req->resp_len, at_end);
	MemoryContextSwitchTo(old);
	if (req->stream->content.len > req->resp_limit)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("LLM response exceeds samplellm.max_response_kb"),
				 errdetail("The limit is %zu bytes.", req->resp_limit)));
	if (used > 0)
	{
		memmove(req->resp, req->resp + used, req->resp_len - used);
		req->resp_len -= used;
		req->resp[req->resp_len] = '\0';
	}
}

/* The assembled answer of a stream, or the body as received. */
static char *
sl_answer(SlReq *req, size_t *len)
{
	char	   *b;

	if (req->stream == NULL)
	{
		*len = req->resp_len;
		return req->resp ? req->resp : "";
	}
	b = sl_sse_body(req->stream);
	*len = strlen(b);
	return b;
}

/* Bookkeeping of a request that delivered: the window widens. */
static bool
sl_delivered(SlRun *run, SlReq *req, bool keep)
{
	run->stats->completed++;
	sl_window_increase(run);
	sl_retire(run, req);
	pfree(req->body);
	pfree(req);
	/* the caller may want more requests after seeing this result */
	run->exhausted = false;
	return keep;
}

/*
 * A stream that ended early: its complete rows are kept if the caller finds
 * any (returns true, *keep says whether to go on); false: retry it.
 */
static bool
sl_take_cut(SlRun *run, SlReq *req, bool *keep)
{
	const SlHttpCallbacks *cb = run->cb;
	char	   *answer;
	size_t		len;
	bool		used = false;

	sl_advance(run, req, true);
	if (req->stream == NULL || !req->stream->have_content)
		return false;
	answer = sl_answer(req, &len);
	*keep = cb->on_success(cb->arg, req->index, answer, len, true, &used);
	pfree(answer);				/* assembled: never the raw buffer here */
	if (!used)
		return false;
	run->stats->cut_kept++;
	*keep = sl_delivered(run, req, *keep);
	return true;
}

/* Case-insensitive: does s mention word? */
static bool
sl_mentions(const char *s, const char *word)
{
	size_t		wl = strlen(word);

	for (; s && *s; s++)
		if (pg_strncasecmp(s, word, wl) == 0)
			return true;
	return false;
}

/*
 * Does a 400's message refuse one of the schema's grammar bounds?  (OpenAI's
 * strict mode: "Invalid schema ...: 'maxLength' is not permitted".)
 */
static bool
sl_bounds_refused(const char *msg)
{
	static const char *const words[] = {
		"maxlength", "'minimum'", "'maximum'", "\"minimum\"", "\"maximum\"",
		"'format'", "\"format\"", "oneof", "anyof", "not permitted", "invalid schema"
	};
	int			i;

	for (i = 0; i < lengthof(words); i++)
		if (sl_mentions(msg, words[i]))
			return true;
	return false;
}

/*
 * A 400: what the server refused, dropped for the rest of the call, and the
 * request built again without it.  Returns false when nothing is left to
 * drop (the 400 is final).
 */
static bool
sl_renegotiate(SlRun *run, SlReq *req)
{
	const SlHttpCallbacks *cb = run->cb;
	char	   *msg;
	bool		quota;
	char	   *fb;
	bool		negotiated = false;

	if (cb->rebuild_body == NULL)
		return false;
	msg = sl_error_message(run, req->resp, req->resp_len, &quota);
	/* another request already learnt what to drop: just follow it */
	if ((req->flags & ~run->flags) != 0)
		negotiated = (req->flags & ~run->flags & SL_BODY_SCHEMA) == 0;
	else if ((run->flags & SL_BODY_STREAM_USAGE) && sl_mentions(msg, "stream_options"))
	{
		run->flags &= ~SL_BODY_STREAM_USAGE;
		negotiated = true;
	}
	else if ((run->flags & SL_BODY_STREAM) && sl_mentions(msg, "stream"))
	{
		run->flags &= ~(SL_BODY_STREAM | SL_BODY_STREAM_USAGE);
		negotiated = true;
	}
	else if ((run->flags & SL_BODY_SCHEMA_BOUNDS) && sl_bounds_refused(msg))
	{
		/* a strict schema validator refusing a keyword: keep the schema */
		run->flags &= ~SL_BODY_SCHEMA_BOUNDS;
		negotiated = true;
	}
	else if ((run->flags & SL_BODY_SCHEMA) && !req->used_fallback)
		run->flags &= ~(SL_BODY_SCHEMA | SL_BODY_SCHEMA_BOUNDS);
	else
		return false;

	fb = cb->rebuild_body(cb->arg, req->index, run->flags);
	if (fb == NULL)
		return false;
	pfree(req->body);
	req->body = MemoryContextStrdup(run->cxt, fb);
	req->flags = run->flags;
	/*
	 * Dropping response_format is a retry (one per request, as before);
	 * learning that the server does not stream is not a failure.
	 */
	if (!negotiated)
	{
		req->used_fallback = true;
		run->stats->retries++;
	}
	sl_retire(run, req);
	sl_enqueue(run, req, GetCurrentTimestamp());
	return true;
}

/*
 * Handles a finished transfer.  Returns false when on_success asks to end
 * the run.
 */
static bool
sl_complete(SlRun *run, CURL *easy, CURLcode res)
{
	const SlHttpCallbacks *cb = run->cb;
	char	   *priv = NULL;
	SlReq	   *req;
	long		status = 0;
	long		oserr = 0;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
	req = (SlReq *) priv;
	if (req == NULL || req->easy != easy)
		elog(ERROR, "samplellm: unknown curl handle completed");
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &oserr);

	/* the handle is done; the response buffer stays until handled */
	curl_multi_remove_handle(run->multi, easy);
	req->added = false;
	curl_easy_cleanup(easy);
	req->easy = NULL;

	if (res != CURLE_OK)
	{
		bool		keep;

		if (req->too_large)
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("LLM response exceeds samplellm.max_response_kb"),
					 errdetail("The limit is %zu bytes.", req->resp_limit)));
		if (req->oom)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Could not buffer an LLM response.")));
		if (sl_retryable_curl(res))
		{
			/* a stream cut short: its complete rows are not paid twice */
			if (status >= 200 && status <= 299 && sl_take_cut(run, req, &keep))
				return keep;
			if (res == CURLE_OPERATION_TIMEDOUT)
				sl_window_decrease(run, true);
			sl_schedule_retry(run, req, 0, res, oserr);
		}
		else
			sl_conn_error(req, res, oserr, false, NULL);
		return true;
	}

	if (status >= 200 && status <= 299)
	{
		bool		keep;
		bool		used = true;
		char	   *answer;
		size_t		len;

		sl_advance(run, req, true);
		/* a stream that closed without its end: a cut */
		if (req->stream != NULL && !req->stream->done && req->stream->finish == NULL)
		{
			if (sl_take_cut(run, req, &keep))
				return keep;
			sl_schedule_retry(run, req, 0, CURLE_PARTIAL_FILE, 0);
			return true;
		}
		answer = sl_answer(req, &len);
		keep = cb->on_success(cb->arg, req->index, answer, len, false, &used);
		if (req->stream != NULL)
			pfree(answer);		/* assembled from the events */
		return sl_delivered(run, req, keep);
	}

	if (status == 400 && sl_renegotiate(run, req))
		return true;

	if (sl_retryable_status(status))
	{
		if (status == 429)
		{
			bool		quota;

			run->stats->rate_limited++;
			(void) sl_error_message(run, req->resp, req->resp_len, &quota);
			if (quota)
				sl_http_error(run, req, status, false, NULL);
			sl_window_decrease(run, false);
		}
		else if (status == 503)
			sl_window_decrease(run, true);	/* Ollama: its queue is full */
		sl_schedule_retry(run, req, status, CURLE_OK, 0);
		return true;
	}

	sl_http_error(run, req, status, false, NULL);
	return false;				/* not reached */
}

/*
 * Streamed requests that went silent for samplellm.idle_timeout are cut:
 * one that has sent bytes and stopped, or one that never sent any while no
 * request of the run received anything either (a request waiting in the
 * server's queue behind one that streams is alive).  Returns false when a
 * cut stream's rows were the last ones needed.
 */
static bool
sl_check_idle(SlRun *run)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	for (i = 0; i < run->nslots; i++)
	{
		SlReq	   *req = run->slots[i];
		TimestampTz since;
		bool		keep = true;
		int			limit_ms;

		if (req == NULL || !(req->flags & SL_BODY_STREAM))
			continue;
		/*
		 * Before its first byte, a request may also wait no longer than
		 * samplellm.request_timeout while the server is silent.
		 */
		if (req->last_byte != 0)
		{
			since = req->last_byte;
			limit_ms = run->cfg->idle_timeout_ms;
		}
		else
		{
			since = Max(req->started, run->last_byte);
			limit_ms = Min(run->cfg->idle_timeout_ms, run->cfg->request_timeout_ms);
		}
		if (limit_ms <= 0 || !TimestampDifferenceExceeds(since, now, limit_ms))
			continue;
		run->stats->idle_timeouts++;
		/* the connection closes: the server stops generating */
		if (req->added)
			curl_multi_remove_handle(run->multi, req->easy);
		req->added = false;
		curl_easy_cleanup(req->easy);
		req->easy = NULL;
		if (sl_take_cut(run, req, &keep))
		{
			if (!keep)
				return false;
			continue;
		}
		sl_window_decrease(run, true);
		sl_schedule_retry(run, req, 0, CURLE_OPERATION_TIMEDOUT, 0);
	}
	return true;
}

static void
sl_add_header(SlRun *run, const char *line)
{
	struct curl_slist *l = curl_slist_append(run->headers, line);

	if (l == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	run->headers = l;
}

static long
sl_ms_until(TimestampTz t)
{
	TimestampTz now = GetCurrentTimestamp();

	return t <= now ? 0 : (long) ((t - now + 999) / 1000);
}

/* The main loop; see the file header. */
static void
sl_loop(SlRun *run)
{
	instr_time	start;
	instr_time	end;

	for (;;)
	{
		CURLMcode	mc;
		CURLMsg    *msg;
		int			running;
		int			left;
		bool		completed = false;
		long		timeout;

		CHECK_FOR_INTERRUPTS();

		sl_fill(run);

		if (run->ninflight == 0)
		{
			if (run->waiting == NULL)
				return;			/* next_body said NULL and nothing pending */

			/* only retries due later: wait on the latch, not on curl */
			timeout = Min(sl_ms_until(run->waiting->due), SL_POLL_MS);
			INSTR_TIME_SET_CURRENT(start);
			(void) WaitLatch(MyLatch,
							 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 timeout, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			INSTR_TIME_SET_CURRENT(end);
			INSTR_TIME_SUBTRACT(end, start);
			run->stats->wait_ms += INSTR_TIME_GET_MILLISEC(end);
			continue;
		}

		mc = curl_multi_perform(run->multi, &running);
		if (mc != CURLM_OK)
			elog(ERROR, "samplellm: curl_multi_perform failed: %s",
				 curl_multi_strerror(mc));

		/* streams are parsed as they come, and silent ones cut */
		{
			int			i;

			for (i = 0; i < run->nslots; i++)
				if (run->slots[i] != NULL && run->slots[i]->easy != NULL)
					sl_advance(run, run->slots[i], false);
		}
		if (!sl_check_idle(run))
			return;

		while ((msg = curl_multi_info_read(run->multi, &left)) != NULL)
		{
			if (msg->msg != CURLMSG_DONE)
				continue;
			completed = true;
			if (!sl_complete(run, msg->easy_handle, msg->data.result))
				return;			/* enough results: sl_cleanup() abandons
								 * the rest */
		}
		if (completed)
			continue;			/* slots may be free: fill them first */

		timeout = SL_POLL_MS;
		if (run->waiting != NULL)
			timeout = Min(timeout, sl_ms_until(run->waiting->due));

		INSTR_TIME_SET_CURRENT(start);
		pgstat_report_wait_start(PG_WAIT_EXTENSION);
		mc = curl_multi_poll(run->multi, NULL, 0, (int) timeout, NULL);
		pgstat_report_wait_end();
		INSTR_TIME_SET_CURRENT(end);
		INSTR_TIME_SUBTRACT(end, start);
		run->stats->wait_ms += INSTR_TIME_GET_MILLISEC(end);
		if (mc != CURLM_OK)
			elog(ERROR, "samplellm: curl_multi_poll failed: %s",
				 curl_multi_strerror(mc));
	}
}

void
sl_http_global_init(void)
{
	/* lazily, so that it never runs in the postmaster */
	if (!sl_curl_ready)
	{
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			elog(ERROR, "samplellm: curl_global_init failed");
		sl_curl_ready = true;
	}
}

void
sl_http_run(const SlHttpConfig *cfg, const SlHttpCallbacks *cb,
			SlHttpStats *stats)
{
	MemoryContext cxt;
	SlRun	   *run;

	Assert(cfg->url != NULL && cb->next_body != NULL && cb->on_success != NULL);

	sl_http_global_init();

	memset(stats, 0, sizeof(SlHttpStats));

	cxt = AllocSetContextCreate(CurrentMemoryContext, "samplellm http",
								ALLOCSET_DEFAULT_SIZES);
	run = MemoryContextAllocZero(cxt, sizeof(SlRun));
	run->cxt = cxt;
	run->cfg = cfg;
	run->cb = cb;
	run->stats = stats;
	run->nslots = Max(1, cfg->max_concurrency);
	run->slots = MemoryContextAllocZero(cxt, run->nslots * sizeof(SlReq *));
	/* a server that said how many slots it has queues the rest */
	run->ceiling = run->nslots;
	if (cfg->server_slots > 0 && cfg->server_slots < run->ceiling)
		run->ceiling = cfg->server_slots;
	run->window = run->ceiling;
	stats->ceiling = run->ceiling;
	stats->min_concurrency = run->ceiling;
	run->flags = cfg->flags;
	/* never stream_options without stream */
	if (!(run->flags & SL_BODY_STREAM))
		run->flags &= ~SL_BODY_STREAM_USAGE;
	run->base_ms = -1;
	run->last_byte = GetCurrentTimestamp();
	pg_prng_seed(&run->prng, cfg->seed);
	run->cleanup_cb.func = sl_cleanup;
	run->cleanup_cb.arg = run;
	MemoryContextRegisterResetCallback(cxt, &run->cleanup_cb);

	PG_TRY();
	{
		run->multi = curl_multi_init();
		if (run->multi == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Could not create a curl multi handle.")));

		sl_add_header(run, "Content-Type: application/json");
		sl_add_header(run, "User-Agent: samplellm/" SAMPLELLM_VERSION);
		/* no 100-continue round trip before each body */
		sl_add_header(run, "Expect:");
		if (cfg->api_key != NULL && cfg->api_key[0] != '\0')
		{
			char	   *line;

			if (strpbrk(cfg->api_key, "\r\n") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("the LLM API key contains a line break")));
			line = psprintf("Authorization: Bearer %s", cfg->api_key);
			sl_add_header(run, line);
			explicit_bzero(line, strlen(line));
			pfree(line);
		}

		sl_loop(run);
	}
	PG_CATCH();
	{
		sl_cleanup(run);
		PG_RE_THROW();
	}
	PG_END_TRY();

	stats->flags = run->flags;
	sl_cleanup(run);
	MemoryContextDelete(cxt);
}
