/*-------------------------------------------------------------------------
 *
 * llm.h
 *	  Talking to an OpenAI-compatible server (llm_*.c): concurrent requests
 *	  with retries and cancel (llm_http.c), answers to candidate row objects
 *	  (llm_parse.c), and the cache of paid answers (llm_cache.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_LLM_H
#define SAMPLELLM_LLM_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#include "cjson_prelude.h"

/* ---- llm_http.c ---- */

/*
 * What a request body asks of the server.  The HTTP layer owns these for the
 * call: a 400 that names stream_options clears SL_BODY_STREAM_USAGE, one that
 * names stream clears both stream bits, any other 400 clears SL_BODY_SCHEMA,
 * each at most once per call, and later bodies are built without them.
 */
#define SL_BODY_SCHEMA			0x01	/* response_format json_schema */
#define SL_BODY_STREAM			0x02	/* "stream": true (server-sent events) */
#define SL_BODY_STREAM_USAGE	0x04	/* stream_options.include_usage */
#define SL_BODY_SCHEMA_BOUNDS	0x08	/* the schema's grammar bounds (maxLength,
										 * minimum/maximum, format, oneOf for
										 * NULL): dropped before the schema */

typedef struct SlHttpConfig
{
	const char *url;			/* full URL of chat/completions */
	const char *api_key;		/* Bearer token, or NULL */
	int			max_concurrency;
	int			connect_timeout_ms;
	int			request_timeout_ms; /* whole attempt, non-streamed bodies only */
	int			idle_timeout_ms;	/* streamed: no byte for this long ends it */
	int			max_retries;	/* per request, after the first attempt */
	size_t		max_response_bytes; /* 0 = no limit */
	TimestampTz deadline;		/* 0 = none; never sleep or wait past it
								 * (also caps each attempt's timeout) */
	uint64		seed;			/* jitter */
	int			flags;			/* SL_BODY_* the first bodies ask for */
	int			server_slots;	/* discovered capacity, 0 = unknown: the
								 * window's ceiling with max_concurrency */
} SlHttpConfig;

typedef struct SlHttpStats
{
	int			attempts;		/* HTTP requests sent, retries included */
	int			retries;
	int			completed;		/* requests answered 2xx */
	int			rate_limited;	/* 429 answers */
	int			min_concurrency;	/* lowest AIMD window reached */
	int			ceiling;		/* the window's ceiling (max_concurrency, or
								 * fewer discovered slots) */
	int			max_in_flight;	/* most requests in flight at once */
	int			congestion;		/* window halvings for latency, timeouts, 503 */
	int			idle_timeouts;	/* streamed requests cut for silence */
	int			streamed;		/* answers that came as server-sent events */
	int			cut_kept;		/* cut streams whose complete rows were kept */
	int			flags;			/* SL_BODY_* in force at the end */
	double		wait_ms;		/* time spent waiting on the network/backoff */
} SlHttpStats;

typedef struct SlHttpCallbacks
{
	/*
	 * Body of request number index (0, 1, 2, ... in order), or NULL when no
	 * further request should start for now.  Called when a slot is free;
	 * after a NULL it is asked again only once some request has succeeded.
	 * The body is copied: the caller may free it after returning.
	 */
	char	   *(*next_body) (void *arg, int index, int flags);

	/*
	 * A 2xx answer for request index, as a chat completion (a streamed answer
	 * is assembled into one).  body is NUL-terminated and valid only during
	 * the call.  cut: the stream ended early (silence, a dropped connection);
	 * the callback sets *used when it kept rows from it, else the request is
	 * retried.  Returns false to end the run (enough results); in-flight
	 * requests are then abandoned.  May raise ERROR: the run's curl handles
	 * are freed on that path too.
	 */
	bool		(*on_success) (void *arg, int index, const char *body, size_t len,
							   bool cut, bool *used);

	/*
	 * Request index again, built with flags (fewer than before, after a 400):
	 * the body to send instead, or NULL for no retry.  May be NULL (a 400 is
	 * then final).  The callbacks run in the caller's memory context.
	 */
	char	   *(*rebuild_body) (void *arg, int index, int flags);

	void	   *arg;
} SlHttpCallbacks;

/*
 * Runs until on_success returns false, or next_body gives NULL and nothing is
 * in flight or waiting for a retry.  Raises ERROR for a non-retryable answer
 * (401, 403, 404, a 400 without fallback, insufficient_quota), for retries
 * exhausted, for a backoff or Retry-After wait past the deadline, and on
 * cancel.  Never leaks curl handles.  *stats is zeroed, then filled.
 */
extern void sl_http_run(const SlHttpConfig *cfg, const SlHttpCallbacks *cb,
						SlHttpStats *stats);

/* curl_global_init() once per backend (never in the postmaster). */
extern void sl_http_global_init(void);

/* ---- llm_capacity.c ---- */

typedef struct SlCapacity
{
	int			slots;			/* llama.cpp's total_slots (or /slots), 0 */
	const char *source;			/* "props", "slots", "metrics" or NULL */
	int			running;		/* vLLM gauges at discovery, -1 = unknown */
	int			waiting;
} SlCapacity;

/*
 * Asks the server behind chat_url what it can take (GET /props, /slots,
 * /metrics under the endpoint's base path, each bounded to about a second
 * and cancellable); remembered for the session per server for a few minutes.  Never raises an
 * error for what the server answers: unknown is all zeros, source NULL.
 */
extern void sl_capacity_discover(const char *chat_url, const char *api_key,
								 SlCapacity *out);

/* ---- llm_stream.c ---- */

/* An answer arriving as server-sent events, parsed as the bytes come. */
typedef struct SlSse
{
	StringInfoData event;		/* data lines of the event being read */
	StringInfoData content;		/* choices[0].delta.content so far */
	char	   *finish;			/* finish_reason, or NULL */
	int64		prompt_tokens;
	int64		completion_tokens;
	bool		have_usage;
	bool		have_content;	/* some delta.content was a string */
	bool		have_choice;	/* some chunk had a choice */
	bool		nul;			/* a piece carried \u0000 */
	bool		bad;			/* an event that is not a chunk */
	bool		error;			/* an error event */
	bool		done;			/* data: [DONE] */
	int			events;
	int			pieces;			/* content pieces (about one per token) */
	size_t		scanned;		/* leading bytes of the rest with no newline */
} SlSse;

extern void sl_sse_init(SlSse *s);

/*
 * Consumes the complete lines of [buf, buf + len) and returns how many bytes
 * that was; the caller keeps the rest and passes it again, with the bytes
 * that arrived since after it, on the next call.  With at_end the last line
 * needs no newline and a pending event is dispatched.
 */
extern size_t sl_sse_feed(SlSse *s, const char *buf, size_t len, bool at_end);

/* The answer so far as one chat completion body (palloc'd). */
extern char *sl_sse_body(const SlSse *s);

/* ---- llm_parse.c ---- */

/* Why a whole response gave no rows (or only some). */
typedef enum SlResponseStatus
{
	SL_RESP_OK = 0,
	SL_RESP_TRUNCATED,			/* finish_reason "length": complete rows kept */
	SL_RESP_MALFORMED,			/* not a chat completion, or no JSON rows */
	SL_RESP_REFUSAL,			/* content null, or a refusal */
	SL_RESP_ENCODING			/* invalid UTF-8 or a NUL character */
} SlResponseStatus;

#define SL_RESP_COUNT (SL_RESP_ENCODING + 1)

typedef struct SlResponse
{
	SlResponseStatus status;
	int64		prompt_tokens;
	int64		completion_tokens;
	cJSON	   *rows;			/* array of candidate rows (any JSON values) */
} SlResponse;

/* Installs palloc-based allocation hooks for cJSON (from _PG_init). */
extern void sl_json_init(void);

/*
 * Parses one response body.  Everything is allocated in CurrentMemoryContext;
 * reset it to free the trees.  Never raises an error for bad input.
 */
extern void sl_parse_response(const char *body, size_t len, SlResponse *out);

/* Parses a JSON document of bounded nesting; NULL if bad or too deep. */
extern cJSON *sl_json_parse_bounded(const char *text, size_t len);

/*
 * Text of a JSON scalar as the column's input function should see it: the
 * string itself, a number exactly as written (no float round trip, so
 * bigints beyond 2^53 and long numerics survive), true/false.  NULL for JSON
 * null; *bad set for objects and arrays.
 */
extern const char *sl_json_scalar_text(const cJSON *item, bool *bad);

/* ---- llm_cache.c ---- */

/* settings (defined by sl_cache_define_gucs) */
extern bool sl_cache_enabled;
extern int	sl_cache_max_age_s;
extern int	sl_cache_max_size_mb;

/* Defines samplellm.cache, samplellm.cache_max_age, samplellm.cache_max_size. */
extern void sl_cache_define_gucs(void);

/*
 * A cached 2xx body for this request of the current role, or NULL (miss,
 * cache disabled, expired or unreadable entry).  The result is NUL-terminated
 * (*len excludes the NUL) and palloc'd in CurrentMemoryContext.  I/O trouble
 * is a miss, with one WARNING per statement at most.
 */
extern char *sl_cache_get(const char *url, const char *model, const char *body,
						  size_t *len);

/*
 * Stores a 2xx body for this request of the current role (no-op when the
 * cache is disabled).  Never raises an error for I/O trouble: one WARNING
 * per statement at most.  May delete the oldest entries of every role to
 * stay under samplellm.cache_max_size.
 */
extern void sl_cache_put(const char *url, const char *model, const char *body,
						 const char *response, size_t len);

#endif							/* SAMPLELLM_LLM_H */
