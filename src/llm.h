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

#include "cjson_prelude.h"

/* ---- llm_http.c ---- */

typedef struct SlHttpConfig
{
	const char *url;			/* full URL of chat/completions */
	const char *api_key;		/* Bearer token, or NULL */
	int			max_concurrency;
	int			connect_timeout_ms;
	int			request_timeout_ms;
	int			max_retries;	/* per request, after the first attempt */
	size_t		max_response_bytes; /* 0 = no limit */
	TimestampTz deadline;		/* 0 = none; never sleep or wait past it
								 * (also caps each attempt's timeout) */
	uint64		seed;			/* jitter */
} SlHttpConfig;

typedef struct SlHttpStats
{
	int			attempts;		/* HTTP requests sent, retries included */
	int			retries;
	int			completed;		/* requests answered 2xx */
	int			rate_limited;	/* 429 answers */
	int			min_concurrency;	/* lowest AIMD window reached */
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
	char	   *(*next_body) (void *arg, int index);

	/*
	 * A 2xx answer for request index.  body is NUL-terminated and valid only
	 * during the call.  Returns false to end the run (enough results);
	 * in-flight requests are then abandoned.  May raise ERROR: the run's curl
	 * handles are freed on that path too.
	 */
	bool		(*on_success) (void *arg, int index, const char *body, size_t len);

	/*
	 * Asked once per request when the server answers 400: returns a new body
	 * to send instead (e.g. without response_format), or NULL for no retry.
	 * May be NULL.  The callbacks run in the caller's memory context.
	 */
	char	   *(*fallback_body) (void *arg, int index, const char *body, size_t len);

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
