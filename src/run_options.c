/*-------------------------------------------------------------------------
 *
 * run_options.c
 *	  The options of a run, checked before anything else happens: one
 *	  parser for every SQL function that takes them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "utils/array.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "run.h"
#include "samplellm.h"

const char *const sl_resample_names[4] = {"attribution", "uniform", "none", "paper"};

void
sl_run_options_init(SlRunOptions *opt)
{
	memset(opt, 0, sizeof(SlRunOptions));
	opt->max_seed_rows = sl_max_seed_rows;
	opt->resample = SL_RESAMPLE_ATTRIBUTION;
	opt->oversample = sl_oversample;
}

void
sl_run_options_set_n(SlRunOptions *opt, bool isnull, int32 n)
{
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("n must not be null"),
				 errhint("Pass the number of rows to generate.")));
	if (n <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be positive, not %d", n)));
	if (n > sl_max_rows)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("n = %d exceeds samplellm.max_rows (%d)", n, sl_max_rows),
				 errhint("Generate in several calls, or ask a superuser to raise samplellm.max_rows.")));
	opt->n = n;
}

void
sl_run_options_set_label(SlRunOptions *opt, bool isnull, text *label)
{
	opt->label = isnull ? NULL : text_to_cstring(label);
}

/*
 * NULL picks a seed (every run has one, shown in its record): the same
 * rule for every function that takes one.
 */
void
sl_run_options_set_seed(SlRunOptions *opt, bool isnull, int64 seed)
{
	opt->seed_given = !isnull;
	opt->seed = isnull ? (pg_prng_uint64(&pg_global_prng_state) >> 1) : (uint64) seed;
}

void
sl_run_options_set_max_seed_rows(SlRunOptions *opt, bool isnull, int32 v)
{
	opt->max_seed_rows = isnull ? sl_max_seed_rows : v;
	if (opt->max_seed_rows <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_seed_rows must be positive, not %d", opt->max_seed_rows)));
}

void
sl_run_options_set_resample(SlRunOptions *opt, bool isnull, text *v)
{
	char	   *r;
	int			i;

	opt->resample = SL_RESAMPLE_ATTRIBUTION;
	if (isnull)
		return;
	r = text_to_cstring(v);
	for (i = 0; i < lengthof(sl_resample_names); i++)
		if (strcmp(r, sl_resample_names[i]) == 0)
			break;
	if (i == lengthof(sl_resample_names))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown resample method \"%s\"", r),
				 errhint("Use 'attribution' (stage 2), 'paper' (stage 2 exactly as the paper), 'uniform' (the same candidates drawn uniformly) or 'none' (the first n valid candidates).")));
	opt->resample = (SlResample) i;
}

void
sl_run_options_set_oversample(SlRunOptions *opt, bool isnull, float8 v)
{
	opt->oversample = isnull ? sl_oversample : v;
	if (!(opt->oversample >= 1.0 && opt->oversample <= 100.0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("oversample must be between 1 and 100, not %g", opt->oversample)));
}

void
sl_run_options_set_exclude(SlRunOptions *opt, bool isnull, Datum array)
{
	Datum	   *elems;
	bool	   *enulls;
	int			k;

	opt->nexclude = 0;
	opt->exclude = NULL;
	if (isnull)
		return;
	deconstruct_array(DatumGetArrayTypeP(array), TEXTOID, -1, false, TYPALIGN_INT,
					  &elems, &enulls, &opt->nexclude);
	opt->exclude = palloc(sizeof(char *) * Max(opt->nexclude, 1));
	for (k = 0; k < opt->nexclude; k++)
	{
		if (enulls[k])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("exclude must not contain NULL")));
		opt->exclude[k] = TextDatumGetCString(elems[k]);
	}
}

/* Longest instructions text, in characters: steering, not a second prompt. */
#define MAX_INSTRUCTIONS_CHARS 2000

void
sl_run_options_set_instructions(SlRunOptions *opt, bool isnull, text *v)
{
	char	   *s;
	int			len;

	opt->instructions = NULL;
	if (isnull)
		return;
	s = text_to_cstring(v);
	len = pg_mbstrlen(s);
	if (len > MAX_INSTRUCTIONS_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("instructions are %d characters long, more than %d", len, MAX_INSTRUCTIONS_CHARS),
				 errhint("Say what the rows should be like in a sentence or two: the table's description and real rows are sent anyway.")));
	if (len > 0)
		opt->instructions = s;
}

void
sl_run_options_parse(FunctionCallInfo fcinfo, int first, SlRunOptions *opt)
{
	sl_run_options_init(opt);
	sl_run_options_set_n(opt, PG_ARGISNULL(first), PG_ARGISNULL(first) ? 0 : PG_GETARG_INT32(first));
	sl_run_options_set_label(opt, PG_ARGISNULL(first + 1),
							 PG_ARGISNULL(first + 1) ? NULL : PG_GETARG_TEXT_PP(first + 1));
	sl_run_options_set_seed(opt, PG_ARGISNULL(first + 2),
							PG_ARGISNULL(first + 2) ? 0 : PG_GETARG_INT64(first + 2));
	sl_run_options_set_max_seed_rows(opt, PG_ARGISNULL(first + 3),
									 PG_ARGISNULL(first + 3) ? 0 : PG_GETARG_INT32(first + 3));
	sl_run_options_set_resample(opt, PG_ARGISNULL(first + 4),
								PG_ARGISNULL(first + 4) ? NULL : PG_GETARG_TEXT_PP(first + 4));
	sl_run_options_set_oversample(opt, PG_ARGISNULL(first + 5),
								  PG_ARGISNULL(first + 5) ? 0 : PG_GETARG_FLOAT8(first + 5));
	opt->condition = PG_ARGISNULL(first + 6) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(first + 6));
	opt->per_group = PG_ARGISNULL(first + 7) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(first + 7));
	sl_run_options_set_exclude(opt, PG_ARGISNULL(first + 8),
							   PG_ARGISNULL(first + 8) ? (Datum) 0 : PG_GETARG_DATUM(first + 8));
}

/* Stage 2's options from the settings: for runs and samplellm_interactions. */
void
sl_run_stage2_options(uint64 seed, SlStage2Options *s2)
{
	sl_stage2_default_options(s2);
	s2->threshold = sl_threshold;
	s2->max_cluster_size = sl_max_cluster_size;
	s2->max_epochs = sl_epochs;
	s2->seed = seed;
	s2->novelty = sl_novelty;
}
