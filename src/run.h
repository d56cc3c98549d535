/*-------------------------------------------------------------------------
 *
 * run.h
 *	  One call of the pipeline: options, state and figures of a run.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_RUN_H
#define SAMPLELLM_RUN_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#include "exemplars.h"
#include "http.h"
#include "parse.h"
#include "prompt.h"
#include "samplellm.h"
#include "stage2.h"
#include "validate.h"

typedef enum SlResample
{
	SL_RESAMPLE_ATTRIBUTION,	/* the paper's stage 2 */
	SL_RESAMPLE_UNIFORM,		/* the paper's ablation: same pool, uniform */
	SL_RESAMPLE_NONE			/* the first n valid candidates */
} SlResample;

extern const char *const sl_resample_names[3];

/* What the caller asked for, checked by the SQL layer. */
typedef struct SlRunOptions
{
	int			n;
	const char *label;
	bool		seed_given;
	uint64		seed;
	int			max_seed_rows;
	SlResample	resample;
	double		oversample;
	const char *condition;		/* SQL boolean expression, or NULL */
	const char *per_group;		/* JSON quotas by label value, or NULL */
	int			nexclude;		/* columns never sent to the LLM */
	char	  **exclude;
} SlRunOptions;

/* per_group: one quota per listed label value, and one for the rest. */
typedef struct SlGroup
{
	char	   *label;			/* canonical label text; NULL: all others */
	int			quota;			/* rows returned */
	int			target;			/* valid candidates wanted */
	int64		have;			/* valid candidates in the answered prefix */
	int64		have_all;		/* valid candidates in every answer so far */
	SlRowSet   *seeds;			/* target rows with this label, or NULL */
	SlExemplarPlan *plan;		/* exemplar clusters of those, or NULL */
	char	   *instruction;	/* what its requests ask for, or NULL */
} SlGroup;

typedef struct SlRun
{
	MemoryContext cxt;			/* the whole run */
	MemoryContext respcxt;		/* one response's parse trees */
	SlTable    *t;
	SlRowSet   *seeds;
	int64		seen_rows;
	SlExemplarPlan *plan;
	SlPrompt   *prompt;
	SlValidator *validator;
	uint64		seed;
	int			n;
	int			target;			/* valid candidates wanted: n x oversample */
	SlResample	resample;
	double		oversample;
	int			pool;			/* candidates stage 2 drew from */
	SlStage2Result s2;
	bool		s2_ran;

	/* per request, by our index (cached answers take indices too) */
	int			cap;
	SlRowSet  **results;
	char	  **bodies;			/* as first sent: the cache key */
	int		   *req_of;			/* HTTP driver's index -> ours */
	int			req_of_cap;
	int			cached;			/* answers replayed from the cache */
	int			issued;
	int			answered;
	int			prefix;			/* requests 0..prefix-1 all answered */
	int64		prefix_valid;
	int64		valid;
	int64		received;		/* row objects received */
	bool		no_schema;		/* the server refused response_format */
	int64		prompt_tokens;
	int64		completion_tokens;
	int64		responses[SL_RESP_ENCODING + 1];
	const char *stop;			/* why no further request was issued */
	SlHttpStats http;
	TimestampTz start;
	TimestampTz last_progress;

	int			ngroups;		/* per_group quotas, or 0 */
	SlGroup    *groups;
	int		   *schedule;		/* request index -> group, grown on demand */
	int			schedule_len;
	bool		builtin;		/* samplellm.provider = 'builtin' */
	bool		estimate_only;	/* samplellm_estimate: no request is sent */
	const char *condition;
	SlRowSet   *target_rows;	/* seeds satisfying the condition (or all) */
	char	   *url;			/* chat/completions URL */
	char	   *api_key;
	SlRowSet   *pool_rows;		/* valid candidates in request order */
	int			returned;
	int			guc_level;		/* DateStyle nesting, undone by finish */
} SlRun;


extern SlRun *sl_run_create(MemoryContext parent, const SlRunOptions *opt);
extern void sl_run_prepare(SlRun *run, Oid rowtype, const SlRunOptions *opt);
extern void sl_run_execute(SlRun *run);
extern void sl_run_finish(SlRun *run);
extern char *sl_run_json(const SlRun *run, const char *status, int returned);
extern const char *sl_last_run_json(void);
extern int64 sl_run_rejected_total(const SlRun *run);
extern void sl_run_append_reasons(StringInfo buf, const SlRun *run);

/* stage1.c */
extern void sl_stage1_llm(SlRun *run);
extern void sl_stage1_check_settings(SlRun *run);
extern char *sl_stage1_request_body(SlRun *run, int index, bool with_schema);

/* estimate.c: the calls and tokens of a run, without sending a request */
extern Datum sl_estimate(FunctionCallInfo fcinfo, const SlRunOptions *opt, Oid rowtype);

/* quota.c: per_group */
extern void sl_quota_parse(SlRun *run, const char *per_group);
extern int	sl_quota_group_of(const SlRun *run, const SlRowSet *rs, int r);
extern int	sl_quota_request_group(SlRun *run, int index);
extern void sl_quota_count(SlRun *run, const SlRowSet *rows);
extern bool sl_quota_satisfied(const SlRun *run, bool quotas_only);
extern void sl_quota_count_answer(SlRun *run, const SlRowSet *rows);
extern bool sl_quota_answered_enough(const SlRun *run);
extern void sl_quota_draw(SlRun *run, const SlRowSet *pool, const double *logw);

/* stage1_builtin.c */
extern void sl_stage1_builtin(SlRun *run);

#endif							/* SAMPLELLM_RUN_H */
