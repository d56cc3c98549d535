/*-------------------------------------------------------------------------
 *
 * parse.h
 *	  Stage 1, step 5a: chat-completion responses to candidate row objects.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_PARSE_H
#define SAMPLELLM_PARSE_H

#include "cjson_prelude.h"

/* Why a whole response gave no rows (or only some). */
typedef enum SlResponseStatus
{
	SL_RESP_OK = 0,
	SL_RESP_TRUNCATED,			/* finish_reason "length": complete rows kept */
	SL_RESP_MALFORMED,			/* not a chat completion, or no JSON rows */
	SL_RESP_REFUSAL,			/* content null, or a refusal */
	SL_RESP_ENCODING			/* invalid UTF-8 or a NUL character */
} SlResponseStatus;

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

#endif							/* SAMPLELLM_PARSE_H */
