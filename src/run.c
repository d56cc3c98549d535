/*-------------------------------------------------------------------------
 *
 * run.c
 *	  One call of the pipeline: checks, seeds, groups, prompt, stage 1,
 *	  the pool, stage 2's choice of the rows.
 *
 * Everything that can be refused is refused in sl_run_prepare, before a
 * request is sent.  The seeds are read first, through SPI as the caller,
 * and copied out before stage 1 starts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/sysattr.h"
#include "miscadmin.h"
#include "nodes/bitmapset.h"
#include "optimizer/optimizer.h"
#include "utils/datetime.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "run.h"
#include "samplellm.h"

/*
 * exclude: columns whose names and values never appear in a request (PII);
 * they get values locally (stage1_validate.c).
 */
static void
mark_excluded(SlTable *t, const SlRunOptions *opt)
{
	int			k;
	int			c;

	for (k = 0; k < opt->nexclude; k++)
	{
		const char *name = opt->exclude[k];
		const char *dot = strchr(name, '.');

		/* "parent.column": a column of a referenced table, left out of the context */
		if (dot && !(strncmp(name, t->relname, dot - name) == 0 &&
					 t->relname[dot - name] == '\0'))
		{
			int			f;
			bool		found = false;

			for (f = 0; f < t->nfkeys && !found; f++)
			{
				char	   *pname = get_rel_name(t->fkeys[f].parent);

				if (strncmp(name, pname, dot - name) == 0 && pname[dot - name] == '\0' &&
					get_attnum(t->fkeys[f].parent, dot + 1) != InvalidAttrNumber)
					found = true;
			}
			if (!found)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_COLUMN),
						 errmsg("excluded column \"%s\" is not a column of \"%s\" or of a table it references",
								name, t->relname),
						 errhint("Name a column of the source, or \"table.column\" of a table one of its foreign keys references.")));
			continue;
		}
		if (dot)
			name = dot + 1;
		for (c = 0; c < t->ncols; c++)
			if (strcmp(t->cols[c].name, name) == 0)
				break;
		if (c == t->ncols)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("excluded column \"%s\" does not exist in \"%s\"",
							opt->exclude[k], t->relname)));
		if (c == t->label_col)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the label column \"%s\" cannot be excluded", opt->exclude[k]),
					 errhint("The LLM must write the label; exclude other columns.")));
		if (!t->cols[c].excluded)
		{
			t->nexcluded++;
			if (sl_col_written(&t->cols[c]))
				t->nwritten--;
		}
		t->cols[c].excluded = true;
	}
	if (t->nwritten == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("every column of \"%s\" is excluded", t->relname),
				 errhint("Leave at least one column for the LLM, or use samplellm.provider = 'builtin'.")));
}

/*
 * Prices the rest of the call before stage 1 starts: the candidate pool
 * (with stage 2's per-candidate arrays), the built-in generator's proposals
 * or the LLM responses in flight, on top of what the seeds already hold.
 */
static void
check_memory(SlRun *run)
{
	const SlTable *t = run->t;
	double		row = sl_row_bytes_measured(t, run->seeds);
	double		per_cand = row + t->ncols * 12.0 + 64.0;
	double		held = (double) MemoryContextMemAllocated(run->cxt, true);
	double		extra;
	double		cands = 0;
	int			g;

	for (g = 0; g < run->groups->ngroups; g++)
		cands += run->groups->groups[g].target;

	if (run->builtin)
		extra = cands * row * 1.2;	/* one batch of proposals, as texts */
	else
	{
		double		body = run->prompt ? run->prompt->est_prompt_tokens * sl_chars_per_token : 0;

		cands += (double) sl_max_concurrency * (run->prompt ? run->prompt->rows_per_call : 0);
		extra = (double) sl_max_concurrency * (3.0 * sl_max_response_kb * 1024.0 + 2.0 * body);
	}
	sl_limit_check(held + cands * per_cand + extra,
				   psprintf("%.0f candidate rows (n = %d times oversample %g) of about %.0f bytes each, "
							"%.0f MB for the seed rows, %.0f MB for %s.",
							cands, run->opt.n, run->opt.oversample, per_cand,
							held / (1024.0 * 1024.0), extra / (1024.0 * 1024.0),
							run->builtin ? "the generator's proposals" : "responses in flight"));
}

SlRun *
sl_run_create(MemoryContext parent, const SlRunOptions *opt)
{
	SlRun	   *run = MemoryContextAllocZero(parent, sizeof(SlRun));

	run->cxt = AllocSetContextCreate(parent, "samplellm run", ALLOCSET_DEFAULT_SIZES);
	run->start = GetCurrentTimestamp();
	run->opt = *opt;
	if (run->opt.resample == SL_RESAMPLE_NONE)
		run->opt.oversample = 1.0;
	run->seed = opt->seed;
	run->builtin = (sl_provider == SL_PROVIDER_BUILTIN);
	run->guc_level = -1;
	return run;
}

/*
 * What no provider writes: synthetic values of excluded columns (and of
 * the built-in generator's natural keys), and the references of foreign
 * keys, drawn from their real distribution among visible parents.
 */
static void
make_local_values(SlRun *run)
{
	const SlTable *t = run->t;
	bool	   *which = palloc0(sizeof(bool) * Max(t->ncols, 1));
	bool		any = false;
	int			c;

	for (c = 0; c < t->ncols; c++)
	{
		const SlColumn *col = &t->cols[c];

		if (col->excluded && col->unique_alone && sl_excluded_values == SL_EXCLUDED_COPY_REAL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("excluded column \"%s\" is a unique key of \"%s\": copies of real values would all be taken",
							col->name, t->relname),
					 errhint("SET samplellm.excluded_values = 'synthetic'.")));
		which[c] = (col->excluded && sl_excluded_values == SL_EXCLUDED_SYNTHETIC &&
					!(col->roles & SL_ROLE_FOREIGN)) ||
			(run->builtin && col->unique_alone && !col->excluded);
		any |= which[c];
	}
	if (any)
	{
		run->synth = sl_synth_create(t, run->seeds, which);
		sl_validator_set_synth(run->validator, run->synth);
	}
	run->refs = sl_refs_create(t, run->seeds, (const char *const *) run->opt.exclude,
							   run->opt.nexclude);
	sl_validator_set_refs(run->validator, run->refs);
}

/* Seeds satisfying the condition: the exemplars and stage 2's target rows. */
static void
apply_condition(SlRun *run)
{
	const char *text = run->opt.condition;
	Expr	   *cond = sl_condition_parse(run->t, text);
	Bitmapset  *attrs = NULL;
	int			c;
	int			r;

	/* The condition's text goes into the prompt: it may not name an excluded column. */
	pull_varattnos((Node *) cond, 1, &attrs);
	for (c = 0; c < run->t->ncols; c++)
		if (run->t->cols[c].excluded && !run->builtin &&
			bms_is_member(run->t->cols[c].attnum - FirstLowInvalidHeapAttributeNumber, attrs))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the condition uses excluded column \"%s\"", run->t->cols[c].name),
					 errdetail("The condition is stated in the prompt, and an excluded column's name never is.")));
	sl_validator_set_condition(run->validator, cond);
	run->target_rows = sl_rowset_create(run->t->ncols, 16);
	for (r = 0; r < run->seeds->nrows; r++)
		if (sl_validator_matches(run->validator, run->seeds, r))
			sl_rowset_append_row(run->target_rows, run->seeds, r);
	if (run->target_rows->nrows == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("no real row satisfies the condition \"%s\"", text),
				 errdetail("None of the %d seed rows read from \"%s\" satisfies it.",
						   run->seeds->nrows, run->t->relname),
				 errhint("samplellm imitates real rows: use a condition some of them satisfy, or raise max_seed_rows if they are rare.")));
}

/*
 * Checks, settings, seeds, groups, exemplar clusters, prompt and validator.
 * Runs in run->cxt, which the caller makes current.
 */
void
sl_run_prepare(SlRun *run, Oid rowtype)
{
	const SlRunOptions *opt = &run->opt;

	/*
	 * Values travel as text both ways: ISO dates and the default interval
	 * style are unambiguous for the LLM and for reading its answers back,
	 * whatever the session's DateStyle (postgres_fdw does the same).
	 */
	run->guc_level = NewGUCNestLevel();
	if (DateStyle != USE_ISO_DATES || DateOrder != DATEORDER_YMD)
		(void) set_config_option("datestyle", "ISO, YMD", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (IntervalStyle != INTSTYLE_POSTGRES)
		(void) set_config_option("intervalstyle", "postgres", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);

	sl_progress_phase(SL_PHASE_SEEDS);
	run->t = sl_table_open(rowtype, opt->label);
	mark_excluded(run->t, opt);
	/* free text steers an LLM; the copula would silently ignore it */
	if (run->builtin && opt->instructions)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("instructions need an LLM provider"),
				 errdetail("samplellm.provider is 'builtin', a statistical generator that cannot follow free-text instructions."),
				 errhint("Set samplellm.provider = 'openai' and an endpoint, or express the constraint as a condition.")));
	if (!run->builtin && !run->estimate_only)
		sl_llm_check_settings();
	run->seeds = sl_seeds_read(run->t, opt->max_seed_rows, run->seed, &run->seen_rows);
	sl_seeds_require_rows(run->t, run->seeds);

	/* Stage 2's label check (at most 64 classes) costs nothing now. */
	if (run->t->label_col >= 0 && SL_RESAMPLE_STAGE2(opt->resample))
		(void) sl_label_fit(run->t, run->seeds);

	run->validator = sl_validator_create(run->t, run->seeds);
	make_local_values(run);
	sl_table_check_keys(run->t, opt->n, (double) run->seen_rows);
	run->target_rows = run->seeds;
	if (opt->condition)
		apply_condition(run);
	run->groups = sl_groups_create(run->t, run->target_rows, opt->n, opt->oversample,
								   opt->per_group, opt->condition != NULL);
	if (!run->builtin)
	{
		int			k = 0;
		int			g;

		sl_progress_phase(SL_PHASE_EXEMPLARS);
		sl_groups_plan_exemplars(run->groups, run->t, sl_clusters, run->seed);
		for (g = 0; g < run->groups->ngroups; g++)
			if (run->groups->groups[g].plan)
				k = Max(k, run->groups->groups[g].plan->k);
		run->prompt = sl_prompt_create(run->t, run->target_rows, sl_rows_per_call,
									   sl_max_tokens, k * sl_exemplars_per_cluster,
									   sl_context_tokens, opt->condition, opt->instructions);
	}
	run->stage1.t = run->t;
	run->stage1.validator = run->validator;
	run->stage1.groups = run->groups;
	run->stage1.prompt = run->prompt;
	run->stage1.refs = run->refs;
	run->stage1.seed = run->seed;
	run->stage1.cxt = run->cxt;
	check_memory(run);
}

/*
 * The n rows from the pool: stage 2's weights (or none), then each group
 * draws its quota (stage2_draw.c).
 */
static void
choose_rows(SlRun *run)
{
	const SlGroups *gs = run->groups;
	int		   *quota = palloc(sizeof(int) * gs->ngroups);
	const double *logw = NULL;
	SlDrawMethod method;
	const int  *key;			/* the default's label classes: exact shares */
	int			g;

	for (g = 0; g < gs->ngroups; g++)
		quota[g] = gs->groups[g].quota;
	memset(&run->s2, 0, sizeof(SlStage2Result));
	if (SL_RESAMPLE_STAGE2(run->opt.resample))
	{
		SlStage2Options s2opt;

		sl_run_stage2_options(run->seed, &s2opt);
		s2opt.estimator = run->opt.resample == SL_RESAMPLE_PAPER ?
			SL_ESTIMATOR_PAPER : SL_ESTIMATOR_BACKOFF;
		/* the draw takes n rows: weights flatter than that waste the pool */
		s2opt.ess_target = sl_ess_target * run->opt.n;
		s2opt.draw_n = run->opt.n;
		sl_stage2_weights(run->t, run->target_rows, run->pool_rows, &s2opt, &run->s2);
		run->s2_ran = true;
		logw = run->s2.log_weights;
	}
	method = run->opt.resample == SL_RESAMPLE_NONE ? SL_DRAW_FIRST :
		run->opt.resample == SL_RESAMPLE_UNIFORM ? SL_DRAW_UNIFORM :
		run->opt.resample == SL_RESAMPLE_PAPER ? SL_DRAW_WEIGHTED : SL_DRAW_PPS;
	run->chosen = palloc(sizeof(int) * run->opt.n);
	key = (method == SL_DRAW_PPS && run->s2_ran) ? run->s2.label_class : NULL;
	if (run->strata)
	{
		/* related tables: each new parent row draws its own children */
		int		   *stratum = palloc(sizeof(int) * Max(run->pool_rows->nrows, 1));
		int			r;

		for (r = 0; r < run->pool_rows->nrows; r++)
			stratum[r] = sl_refs_tuple_of_row(run->strata->refs, run->strata->fk,
											  run->pool_rows, r);
		run->nchosen = sl_draw_groups(method, logw, stratum, run->pool_rows->nrows,
									  run->strata->quota, run->strata->nstrata,
									  run->seed, run->chosen, key);
	}
	else
		run->nchosen = sl_draw_groups(method, logw, run->pool_group, run->pool_rows->nrows,
									  quota, gs->ngroups, run->seed, run->chosen, key);
	if (run->nchosen != run->opt.n)
		elog(ERROR, "samplellm: the draw took %d of %d rows", run->nchosen, run->opt.n);
}

/* Stage 1, then the pool, then stage 2's choice of the n rows. */
void
sl_run_execute(SlRun *run)
{
	run->pool = sl_pool_create(run->t, run->groups, run->validator);
	if (run->strata)
		sl_pool_set_strata(run->pool, run->strata);
	sl_progress_phase(run->builtin ? SL_PHASE_VALIDATION : SL_PHASE_REQUESTS);
	if (run->builtin)
		sl_stage1_builtin(&run->stage1, run->pool, &run->s1);
	else
		sl_stage1_llm(&run->stage1, run->pool, &run->s1);
	sl_progress_phase(SL_PHASE_STAGE2);
	if (!sl_pool_quotas_met(run->pool, NULL))
		sl_run_shortfall_error(run);
	run->pool_rows = sl_pool_rows(run->pool, &run->pool_group);
	choose_rows(run);
}

/* The one teardown: restores DateStyle, frees the run. */
void
sl_run_free(SlRun *run)
{
	if (run->guc_level >= 0)
		AtEOXact_GUC(true, run->guc_level);
	if (run->validator)
		sl_validator_free(run->validator);
	MemoryContextDelete(run->cxt);
}
