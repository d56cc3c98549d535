/*-------------------------------------------------------------------------
 *
 * http.h
 *	  Stage 1, step 4: concurrent chat-completion requests with libcurl's
 *	  multi interface, retries with backoff, and cancel.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_HTTP_H
#define SAMPLELLM_HTTP_H

#include "postgres.h"

#include "datatype/timestamp.h"

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

#endif							/* SAMPLELLM_HTTP_H */
