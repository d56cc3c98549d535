/*-------------------------------------------------------------------------
 *
 * run.h
 *	  One call of the pipeline (run_*.c): its options (run_options.c), its
 *	  steps (run.c), its record and messages (run_record.c).
 *
 * A run is its inputs (the options and what sl_run_prepare derives from
 * them: the table, seeds, groups, prompt, validator) plus its results (the
 * pool, stage 1's figures, stage 2's choice).  Each step's state belongs to
 * that step; the run only holds what they hand over.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_RUN_H
#define SAMPLELLM_RUN_H

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"

#include "stage1.h"
#include "stage2.h"

typedef enum SlResample
{
	SL_RESAMPLE_ATTRIBUTION,	/* stage 2, the default estimator */
	SL_RESAMPLE_UNIFORM,		/* the paper's ablation: same pool, uniform */
	SL_RESAMPLE_NONE,			/* the first n valid candidates */
	SL_RESAMPLE_PAPER			/* stage 2 exactly as the paper's code */
} SlResample;

#define SL_RESAMPLE_STAGE2(r) ((r) == SL_RESAMPLE_ATTRIBUTION || (r) == SL_RESAMPLE_PAPER)

extern const char *const sl_resample_names[4];

/* What the caller asked for, checked by run_options.c. */
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
	const char *instructions;	/* the caller's steering text, or NULL */
} SlRunOptions;

typedef struct SlRun
{
	MemoryContext cxt;			/* the whole run */
	SlRunOptions opt;
	uint64		seed;			/* the user's, or one picked */
	bool		builtin;		/* samplellm.provider = 'builtin' */
	bool		estimate_only;	/* samplellm_estimate: no request is sent */
	TimestampTz start;
	int			guc_level;		/* DateStyle nesting, undone by sl_run_free */

	/* prepared: refused here is refused before anything is paid for */
	SlTable    *t;
	SlRowSet   *seeds;
	int64		seen_rows;
	SlRowSet   *target_rows;	/* seeds satisfying the condition (or all) */
	SlGroups   *groups;
	SlPrompt   *prompt;			/* LLM only */
	SlValidator *validator;
	SlSynth    *synth;			/* excluded columns' values, or NULL */
	SlRefs	   *refs;			/* foreign keys, or NULL */
	SlStrata   *strata;			/* related tables: children per new parent */
	SlStage1	stage1;			/* what stage 1 works from */

	/* results */
	SlPool	   *pool;
	SlStage1Stats s1;
	SlRowSet   *pool_rows;		/* the candidates stage 2 drew from */
	int		   *pool_group;		/* group of each */
	SlStage2Result s2;
	bool		s2_ran;
	int			nchosen;
	int		   *chosen;			/* rows of pool_rows, in output order */
} SlRun;

/* run_options.c: the one parser of the options every function shares */
extern void sl_run_options_init(SlRunOptions *opt);
extern void sl_run_options_set_n(SlRunOptions *opt, bool isnull, int32 n);
extern void sl_run_options_set_label(SlRunOptions *opt, bool isnull, text *label);
extern void sl_run_options_set_seed(SlRunOptions *opt, bool isnull, int64 seed);
extern void sl_run_options_set_max_seed_rows(SlRunOptions *opt, bool isnull, int32 v);
extern void sl_run_options_set_resample(SlRunOptions *opt, bool isnull, text *v);
extern void sl_run_options_set_oversample(SlRunOptions *opt, bool isnull, float8 v);
extern void sl_run_options_set_exclude(SlRunOptions *opt, bool isnull, Datum array);
extern void sl_run_options_set_instructions(SlRunOptions *opt, bool isnull, text *v);
/* From the SQL signature (n, label, seed, max_seed_rows, resample,
 * oversample, condition, per_group, exclude) starting at argument first. */
extern void sl_run_options_parse(FunctionCallInfo fcinfo, int first, SlRunOptions *opt);
extern void sl_run_stage2_options(uint64 seed, SlStage2Options *s2);

/* run.c */
extern SlRun *sl_run_create(MemoryContext parent, const SlRunOptions *opt);
extern void sl_run_prepare(SlRun *run, Oid rowtype);
extern void sl_run_execute(SlRun *run);
extern void sl_run_free(SlRun *run);

/* run_progress.c: the samplellm_progress view (shared memory, no locks) */
typedef enum SlPhase
{
	SL_PHASE_SEEDS = 0,
	SL_PHASE_EXEMPLARS,
	SL_PHASE_REQUESTS,
	SL_PHASE_VALIDATION,
	SL_PHASE_STAGE2,
	SL_PHASE_RESULT
} SlPhase;

extern void sl_progress_install(void);
extern void sl_progress_begin(const char *source, int64 needed);
extern void sl_progress_run_id(int64 run_id);
extern void sl_progress_phase(SlPhase phase);
extern void sl_progress_stage1(int64 valid, int64 needed, int done, int in_flight,
							   int retried, int64 tokens);
extern void sl_progress_end(void);

/* run_record.c */
extern char *sl_run_json(const SlRun *run, const char *status, int returned);
extern void sl_run_report(const SlRun *run);
extern void sl_run_shortfall_error(const SlRun *run) pg_attribute_noreturn();
extern const char *sl_last_run_json(void);

#endif							/* SAMPLELLM_RUN_H */
