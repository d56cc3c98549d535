/*-------------------------------------------------------------------------
 *
 * sql_estimate.c
 *	  samplellm_estimate(): the calls and tokens a run would spend, from the
 *	  prompts it would actually send, without sending any.
 *
 * The prompt side is exact up to the tokenizer: every request body is built
 * as the run would build it, and its messages' characters are counted.  The
 * completion side is a forecast: rows per call times the seeds' average row
 * as JSON, plus the reasoning.  Characters become tokens at
 * samplellm.chars_per_token.  It assumes 95% of candidate rows are valid;
 * the run record (samplellm_runs) shows what a real run spent.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/guc.h"
#include "utils/tuplestore.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"

#include "cjson_prelude.h"
#include "run.h"
#include "samplellm.h"

/*
 * Share of candidate rows expected to be valid: a few are copies of seeds
 * or break a rule even with a good model.
 */
#define EXPECTED_ACCEPTANCE 0.95
/* Characters of the reasoning field an answer starts with (~150 words). */
#define REASONING_CHARS 400
/* {"reasoning": "...", "rows": [ ... ]} around the rows */
#define ANSWER_FRAMING_CHARS 40

/* Characters of the messages' contents of one request body. */
static double
message_chars(const char *body)
{
	cJSON	   *doc = cJSON_Parse(body);
	cJSON	   *messages = doc ? cJSON_GetObjectItemCaseSensitive(doc, "messages") : NULL;
	cJSON	   *m;
	double		chars = 0;

	cJSON_ArrayForEach(m, messages)
	{
		cJSON	   *content = cJSON_GetObjectItemCaseSensitive(m, "content");

		if (cJSON_IsString(content))
			chars += pg_mbstrlen(content->valuestring);
	}
	cJSON_Delete(doc);
	return chars;
}

PG_FUNCTION_INFO_V1(samplellm_estimate);

/* samplellm_estimate(source, n, ...): what a run would send, unsent. */
Datum
samplellm_estimate(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SlRunOptions opt;
	SlRun	   *run;
	MemoryContext old;
	Datum		values[7];
	bool		nulls[7] = {false};
	int			calls = 0;
	int			candidates = 0;
	double		prompt_chars = 0;
	double		schema_chars = 0;
	double		completion_chars = 0;
	int			g;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source must not be null")));
	sl_run_options_parse(fcinfo, 1, &opt);
	if (PG_NARGS() > 10)
		sl_run_options_set_instructions(&opt, PG_ARGISNULL(10),
										PG_ARGISNULL(10) ? NULL : PG_GETARG_TEXT_PP(10));
	InitMaterializedSRF(fcinfo, 0);
	run = sl_run_create(rsinfo->econtext->ecxt_per_query_memory, &opt);
	run->estimate_only = true;
	old = MemoryContextSwitchTo(run->cxt);
	sl_run_prepare(run, get_rel_type_id(PG_GETARG_OID(0)));

	for (g = 0; g < run->groups->ngroups; g++)
		candidates += run->groups->groups[g].target;
	if (!run->builtin)
	{
		int			rows = run->prompt->rows_per_call;

		/* each group's requests, as the run would number them */
		for (g = 0; g < run->groups->ngroups; g++)
		{
			int			need = (int) ceil(run->groups->groups[g].target / (rows * EXPECTED_ACCEPTANCE));
			int			k;

			for (k = 0; k < need; k++)
			{
				char	   *body = sl_llm_request_body(&run->stage1, g, k, SL_BODY_SCHEMA | SL_BODY_SCHEMA_BOUNDS);

				prompt_chars += message_chars(body);
				pfree(body);
				CHECK_FOR_INTERRUPTS();
			}
			calls += need;
		}
		schema_chars = (double) calls * strlen(run->prompt->schema);
		completion_chars = (double) calls *
			(REASONING_CHARS + ANSWER_FRAMING_CHARS + rows * run->prompt->out_row_chars);
	}

	values[0] = CStringGetTextDatum(run->builtin ? "builtin" : "openai");
	values[1] = Int32GetDatum(calls);
	values[2] = Int32GetDatum(run->prompt ? run->prompt->rows_per_call : 0);
	values[3] = Int64GetDatum((int64) ceil(prompt_chars / sl_chars_per_token));
	values[4] = Int64GetDatum((int64) ceil(schema_chars / sl_chars_per_token));
	values[5] = Int64GetDatum((int64) ceil(completion_chars / sl_chars_per_token));
	values[6] = Int32GetDatum(candidates);
	MemoryContextSwitchTo(old);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	sl_run_free(run);
	return (Datum) 0;
}
