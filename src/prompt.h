/*-------------------------------------------------------------------------
 *
 * prompt.h
 *	  Stage 1, step 3: Chain-of-Thought prompts and the request body.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_PROMPT_H
#define SAMPLELLM_PROMPT_H

#include "lib/stringinfo.h"

#include "samplellm.h"

/* Bump when the prompt text changes: it is part of every run's provenance. */
#define SL_PROMPT_VERSION "cot-1"

typedef struct SlPrompt
{
	const SlTable *table;
	const SlRowSet *seeds;
	char	   *system;			/* fixed instructions, first for prefix caches */
	char	   *description;	/* the table, from the catalog and the seeds */
	char	   *schema;			/* JSON Schema of the answer */
	char	   *exemplar_header;	/* JSON array of column names */
	int			rows_per_call;
	int			max_tokens;
	int			max_exemplars;	/* per request, after the context budget */
	bool		stats_dropped;	/* the budget left no room for seed statistics */
	int			est_prompt_tokens;	/* estimate with max_exemplars exemplars */
	double		out_row_chars;	/* one answer row as JSON, on average */
} SlPrompt;

/*
 * Builds the parts of every request.  The prompt (with nexemplars exemplars)
 * plus max_tokens must fit context_tokens: if not, the seed statistics are
 * left out of the description, then fewer exemplars are sent, then
 * max_tokens shrinks; a table too wide even for that is an error.
 */
extern SlPrompt *sl_prompt_create(const SlTable *t, const SlRowSet *seeds,
								  int rows_per_call, int max_tokens,
								  int nexemplars, int context_tokens,
								  const char *condition);

/*
 * The JSON body of one chat-completion request asking for nrows rows, with
 * the given seed rows as exemplars.  Without the schema, the answer format
 * is only described in the prompt (for servers that reject response_format).
 */
extern char *sl_prompt_body(const SlPrompt *p, const SlRowSet *ex_rows,
							const int *exemplars, int nex, int nrows,
							const char *instruction, int64 request_seed,
							bool with_schema);

/* Appends data or catalog text as a JSON string that cannot break out. */
extern void sl_append_data_text(StringInfo buf, const char *s);

/* Appends a cell as a JSON value of the column's JSON type. */
extern void sl_append_json_value(StringInfo buf, const SlColumn *col,
								 const char *text);

#endif							/* SAMPLELLM_PROMPT_H */
