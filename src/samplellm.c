/*-------------------------------------------------------------------------
 *
 * samplellm.c
 *	  Module entry point: settings (GUCs) and library initialization.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <stdlib.h>

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/elog.h"
#include "utils/guc.h"

#include "llm.h"
#include "ledger.h"
#include "run.h"
#include "llm.h"
#include "samplellm.h"

PG_MODULE_MAGIC;

char	   *sl_endpoint = NULL;
char	   *sl_model = NULL;
char	   *sl_api_key = NULL;
char	   *sl_api_key_file = NULL;
int			sl_provider = SL_PROVIDER_OPENAI;
int			sl_request_timeout_ms = 120000;
int			sl_idle_timeout_ms = 60000;
bool		sl_stream = true;
bool		sl_discover_capacity = true;
int			sl_reasoning_chars = 1000;
int			sl_connect_timeout_ms = 10000;
int			sl_max_concurrency = 4;
int			sl_max_retries = 5;
int			sl_max_rows = 100000;
int			sl_max_calls = 1000;
int			sl_max_tokens_total = 0;
int			sl_max_seed_rows = 10000;
int			sl_rows_per_call = 0;
int			sl_max_tokens = 3500;
int			sl_max_response_kb = 1024;
double		sl_temperature = 0.1;
double		sl_top_p = 0.9;
int			sl_clusters = 5;
int			sl_exemplars_per_cluster = 2;
int			sl_summary_level = DEBUG1;
double		sl_oversample = 3.0;
double		sl_ess_target = 2.0;
double		sl_novelty = SL_NOVELTY_RATIO;
double		sl_threshold = 0.5;
int			sl_max_cluster_size = 4;
int			sl_epochs = 100;
int			sl_context_tokens = 8192;
bool		sl_memorization_guard = true;
double		sl_chars_per_token = 2.7;
bool		sl_max_completion_tokens = false;
int			sl_excluded_values = SL_EXCLUDED_SYNTHETIC;

static const struct config_enum_entry excluded_values_options[] = {
	{"synthetic", SL_EXCLUDED_SYNTHETIC, false},
	{"copy_real_values", SL_EXCLUDED_COPY_REAL, false},
	{NULL, 0, false}
};

static const struct config_enum_entry provider_options[] = {
	{"openai", SL_PROVIDER_OPENAI, false},
	{"builtin", SL_PROVIDER_BUILTIN, false},
	{NULL, 0, false}
};

static const struct config_enum_entry summary_level_options[] = {
	{"debug1", DEBUG1, false},
	{"log", LOG, false},
	{"info", INFO, false},
	{"notice", NOTICE, false},
	{"warning", WARNING, false},
	{NULL, 0, false}
};

/*
 * The endpoint decides where the backend sends rows: only http(s), and no
 * user:password part, which would end up in places the key never should.
 */
static bool
check_endpoint(char **newval, void **extra, GucSource source)
{
	const char *v = *newval;
	const char *authority;
	const char *p;

	if (v == NULL || v[0] == '\0')
		return true;
	if (strncmp(v, "http://", 7) == 0)
		authority = v + 7;
	else if (strncmp(v, "https://", 8) == 0)
		authority = v + 8;
	else
	{
		GUC_check_errdetail("The endpoint must start with http:// or https://.");
		return false;
	}
	for (p = v; *p; p++)
	{
		if ((unsigned char) *p <= ' ' || *p == '"' || *p == '\\')
		{
			GUC_check_errdetail("The endpoint must not contain spaces, quotes or control characters.");
			return false;
		}
	}
	for (p = authority; *p && *p != '/'; p++)
	{
		if (*p == '@')
		{
			GUC_check_errdetail("Credentials in the endpoint URL are not allowed; use samplellm.api_key_file.");
			return false;
		}
	}
	if (p == authority)
	{
		GUC_check_errdetail("The endpoint has no host.");
		return false;
	}
	return true;
}

/*
 * Values stored by ALTER ROLE/DATABASE SET are readable in
 * pg_db_role_setting, so the key is refused there (PGC_S_TEST is how those
 * commands validate a value).  Returning false would make PostgreSQL print
 * the rejected value, the key itself: report here, without it.
 */
static bool
check_api_key(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (source == PGC_S_TEST)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("samplellm.api_key cannot be stored per role or database"),
				 errdetail("Values stored that way are readable in pg_db_role_setting."),
				 errhint("Use samplellm.api_key_file.")));
	if (source == PGC_S_DATABASE || source == PGC_S_USER ||
		source == PGC_S_DATABASE_USER || strpbrk(*newval, "\r\n") != NULL)
	{
		char	   *empty;

		/* GUC strings are malloc'd before 16 and guc_malloc'd after. */
#if PG_VERSION_NUM >= 160000
		empty = guc_malloc(LOG, 1);
#else
		empty = malloc(1);
#endif
		if (empty == NULL)
			return false;
		empty[0] = '\0';
		ereport(WARNING,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ignoring a samplellm.api_key stored per role or database, or holding a line break"),
				 errhint("Use samplellm.api_key_file.")));
#if PG_VERSION_NUM >= 160000
		guc_free(*newval);
#else
		free(*newval);
#endif
		*newval = empty;
	}
	return true;
}

/* SHOW never prints the key, not even to a superuser. */
static const char *
show_api_key(void)
{
	return (sl_api_key && sl_api_key[0]) ? "(set)" : "";
}

void		_PG_init(void);

void
_PG_init(void)
{
	DefineCustomStringVariable("samplellm.endpoint",
							   "Sets the base URL of the OpenAI-compatible API.",
							   "Requests go to {endpoint}/chat/completions, e.g. https://api.openai.com/v1 "
							   "or http://127.0.0.1:8000/v1 for vLLM.",
							   &sl_endpoint, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY,
							   check_endpoint, NULL, NULL);
	DefineCustomStringVariable("samplellm.model",
							   "Sets the model name sent with every request.",
							   NULL,
							   &sl_model, "",
							   PGC_SUSET, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("samplellm.api_key",
							   "Sets the API key sent as a Bearer token.",
							   "Prefer samplellm.api_key_file: a SET statement can be logged.",
							   &sl_api_key, "",
							   PGC_SUSET,
							   GUC_SUPERUSER_ONLY | GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE,
							   check_api_key, NULL, show_api_key);
	DefineCustomStringVariable("samplellm.api_key_file",
							   "Sets the path of a server-side file holding the API key.",
							   "Read by the server process at each call; used when samplellm.api_key is empty.",
							   &sl_api_key_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	DefineCustomEnumVariable("samplellm.provider",
							 "Selects the generator of candidate rows.",
							 NULL,
							 &sl_provider, SL_PROVIDER_OPENAI, provider_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.request_timeout",
							"Sets the maximum time one HTTP request may take.",
							NULL,
							&sl_request_timeout_ms, 120000, 100, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.idle_timeout",
							"Sets how long a streamed LLM answer may send nothing before it is given up.",
							"A request still waiting in the server's queue is not cut while another request of the call receives bytes.",
							&sl_idle_timeout_ms, 60000, 1000, 3600 * 1000,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("samplellm.stream",
							 "Asks the LLM server to stream its answers (server-sent events).",
							 "A server that refuses is asked without streaming for the rest of the call.",
							 &sl_stream, true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("samplellm.discover_capacity",
							 "Asks the LLM server how many requests it serves at once (llama.cpp's /props or /slots, vLLM's /metrics).",
							 NULL,
							 &sl_discover_capacity, true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.reasoning_chars",
							"Sets the longest \"reasoning\" text the LLM may write before the rows, in characters.",
							"Zero leaves the reasoning field out of the prompt and the schema.",
							&sl_reasoning_chars, 1000, 0, 10000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.connect_timeout",
							"Sets the maximum time to establish a connection to the endpoint.",
							NULL,
							&sl_connect_timeout_ms, 10000, 100, INT_MAX,
							PGC_USERSET, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.max_concurrency",
							"Sets the maximum number of LLM requests in flight at once.",
							NULL,
							&sl_max_concurrency, 4, 1, 256,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.max_retries",
							"Sets how many times one failed LLM request is retried.",
							NULL,
							&sl_max_retries, 5, 0, 100,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.max_rows",
							"Sets the largest number of rows one call may ask for.",
							NULL,
							&sl_max_rows, 100000, 1, INT_MAX / 16,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.max_calls_per_statement",
							"Sets the largest number of LLM requests one statement may send.",
							"Retries count too. The call stops with an error when it is reached.",
							&sl_max_calls, 1000, 1, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.max_tokens_per_statement",
							"Sets the largest number of prompt plus completion tokens one statement may spend.",
							"Zero means no limit.",
							&sl_max_tokens_total, 0, 0, INT_MAX,
							PGC_SUSET, 0,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("samplellm.excluded_values",
							 "Selects how excluded columns get their values.",
							 "synthetic: values of the column's shape that no real row has; "
							 "copy_real_values: a real row's value, which can identify a person.",
							 &sl_excluded_values, SL_EXCLUDED_SYNTHETIC, excluded_values_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.max_memory",
							"Sets the most memory one samplellm call may use.",
							"Candidates, seed rows, responses in flight and evaluated rows are priced before the work starts.",
							&sl_max_memory_kb, 1024 * 1024, 1024, INT_MAX,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.max_seed_rows",
							"Sets the largest number of real rows read as seeds (a uniform sample).",
							NULL,
							&sl_max_seed_rows, 10000, 1, 10000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.rows_per_call",
							"Sets how many rows each LLM request asks for.",
							"Zero derives it from the table's width and samplellm.max_tokens.",
							&sl_rows_per_call, 0, 0, 1000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.max_tokens",
							"Sets the maximum number of completion tokens of one request.",
							NULL,
							&sl_max_tokens, 3500, 16, 1000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.max_response_kb",
							"Sets the largest HTTP response accepted from the endpoint.",
							NULL,
							&sl_max_response_kb, 1024, 1, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.context_tokens",
							"Sets the context size of the model, which prompt plus answer must fit.",
							"Wide tables get fewer statistics, then fewer exemplars, then fewer rows per request.",
							&sl_context_tokens, 8192, 1024, 10000000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomRealVariable("samplellm.chars_per_token",
							 "Sets the characters per token that prompt budgets and cost estimates assume.",
							 "JSON with numbers runs at about 2.4 to 3 characters a token with common tokenizers.",
							 &sl_chars_per_token, 2.7, 1.0, 10.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("samplellm.max_completion_tokens",
							 "Sends the completion limit as max_completion_tokens instead of max_tokens.",
							 "OpenAI's newer models require it; vLLM, Ollama and llama.cpp take max_tokens.",
							 &sl_max_completion_tokens, false,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomBoolVariable("samplellm.memorization_guard",
							 "Rejects generated rows equal to a seed row that occurs once in the seeds.",
							 NULL,
							 &sl_memorization_guard, true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomRealVariable("samplellm.temperature",
							 "Sets the sampling temperature of LLM requests.",
							 NULL,
							 &sl_temperature, 0.1, 0.0, 2.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomRealVariable("samplellm.top_p",
							 "Sets the nucleus sampling top_p of LLM requests.",
							 NULL,
							 &sl_top_p, 0.9, 0.0, 1.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.clusters",
							"Sets the number of k-means clusters exemplars are drawn from.",
							NULL,
							&sl_clusters, 5, 1, 100,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.exemplars_per_cluster",
							"Sets how many exemplar rows each cluster gives to every request.",
							NULL,
							&sl_exemplars_per_cluster, 2, 1, 100,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("samplellm.summary_level",
							 "Sets the message level of the summary printed after each call.",
							 NULL,
							 &sl_summary_level, DEBUG1, summary_level_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);

	DefineCustomRealVariable("samplellm.oversample",
							 "Sets how many candidates per returned row stage 2 draws from.",
							 "Stage 1 asks for n times this many valid candidates; 1 disables the choice.",
							 &sl_oversample, 3.0, 1.0, 100.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomRealVariable("samplellm.ess_target",
							 "Sets the effective sample size stage 2's weights keep, as a multiple of the rows returned.",
							 "The default estimator tempers its weights until their effective sample size reaches this; "
							 "0 leaves them untempered. resample => 'paper' ignores it.",
							 &sl_ess_target, 2.0, 0.0, 100.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomRealVariable("samplellm.novelty",
							 "Sets how far from the seeds stage 2's drawn rows must stay, relative to unseen real rows.",
							 "The default estimator down-weights candidates closer to a seed than this times the seeds' "
							 "median distance to each other where they would be more than half the rows drawn; "
							 "0 disables the guard. resample => 'paper' ignores it.",
							 &sl_novelty, SL_NOVELTY_RATIO, 0.0, 10.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomRealVariable("samplellm.threshold",
							 "Sets the interaction threshold that links two fields into a cluster.",
							 "Applied to the interaction matrix divided by its largest off-diagonal entry.",
							 &sl_threshold, 0.5, 0.0, 1.0,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.max_cluster_size",
							"Sets the largest number of fields in one feature cluster.",
							NULL,
							&sl_max_cluster_size, 4, 1, 64,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.epochs",
							"Sets the maximum number of training epochs of stage 2's models.",
							NULL,
							&sl_epochs, 100, 1, 10000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);

	/* the progress view's slots: only a preloaded library can reserve them */
	if (process_shared_preload_libraries_in_progress)
		sl_progress_install();
	sl_cache_define_gucs();
	sl_journal_define_gucs();
	MarkGUCPrefixReserved("samplellm");
	sl_json_init();
}
