/*-------------------------------------------------------------------------
 *
 * samplellm.h
 *	  The module's settings (GUCs, defined in samplellm.c).
 *
 * The pipeline, one prefix per step (each with its header): table_* (the
 * source table and its seed rows), stage1_* (exemplars, prompt, requests,
 * validation, the candidate pool), llm_* (HTTP, responses, the response
 * cache), builtin_* (the Gaussian copula), stage2_* (importance
 * resampling), run_* (one call), ledger_* (the run record), sql_* (the SQL
 * functions), evaluate_* (samplellm_evaluate), util_* (random streams,
 * comparators, the memory bound).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_H
#define SAMPLELLM_H

#define SAMPLELLM_VERSION "0.2.0"

typedef enum SlProvider
{
	SL_PROVIDER_OPENAI = 0,
	SL_PROVIDER_BUILTIN
} SlProvider;

extern char *sl_endpoint;
extern char *sl_model;
extern char *sl_api_key;
extern char *sl_api_key_file;
extern int	sl_provider;
extern int	sl_request_timeout_ms;
extern int	sl_idle_timeout_ms;
extern bool sl_stream;
extern bool sl_discover_capacity;
extern int	sl_reasoning_chars;
extern int	sl_connect_timeout_ms;
extern int	sl_max_concurrency;
extern int	sl_max_retries;
extern int	sl_max_rows;
extern int	sl_max_calls;
extern int	sl_max_tokens_total;
extern int	sl_max_seed_rows;
extern int	sl_rows_per_call;
extern int	sl_max_tokens;
extern int	sl_max_response_kb;
extern double sl_temperature;
extern double sl_top_p;
extern int	sl_clusters;
extern int	sl_exemplars_per_cluster;
extern int	sl_summary_level;
extern double sl_oversample;
extern double sl_threshold;
extern double sl_ess_target;
extern double sl_novelty;
extern int	sl_max_cluster_size;
extern int	sl_epochs;
extern int	sl_context_tokens;
extern bool sl_memorization_guard;
extern double sl_chars_per_token;
extern bool sl_max_completion_tokens;

extern int	sl_max_memory_kb;

typedef enum SlExcludedValues
{
	SL_EXCLUDED_SYNTHETIC = 0,	/* values of the shape, none real */
	SL_EXCLUDED_COPY_REAL		/* a seed row's value (opt-in) */
} SlExcludedValues;

extern int	sl_excluded_values;

#endif							/* SAMPLELLM_H */
