/*-------------------------------------------------------------------------
 *
 * stage1_builtin.c
 *	  Stage 1 without an LLM: candidates from the built-in Gaussian copula.
 *
 * The same validation and the same stage 2 run on these candidates as on an
 * LLM's, so the built-in generator is both the offline provider and the
 * baseline every LLM run can be compared with.  It never pretends to be an
 * LLM: the run record names the provider.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "provider_builtin.h"
#include "run.h"

/* Proposal rounds before giving up with the shortfall error. */
#define MAX_BATCHES 20
#define COLLAPSE_MIN_BATCHES 3

/* Proposes about what the acceptance so far says is needed, plus a margin. */
static void
propose_into(SlRun *run, const SlRowSet *from, int64 need, uint64 seed, SlRowSet *rows)
{
	const SlTable *t = run->t;
	double		accept = run->received > 0 ? (double) run->valid / run->received : 1.0;
	int			nprop = (int) Min(ceil(need / Max(accept, 0.05) * 1.1) + 16, 1000000.0);
	MemoryContext old;
	char	  **texts;
	int			r;

	old = MemoryContextSwitchTo(run->respcxt);
	texts = sl_builtin_propose(t, from, nprop, seed);
	MemoryContextSwitchTo(run->cxt);
	for (r = 0; r < nprop; r++)
	{
		run->received++;
		if (sl_validate_texts(run->validator,
							  (const char *const *) texts + (size_t) r * t->ncols, rows))
			run->valid++;
		if ((r & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(run->respcxt);
}

void
sl_stage1_builtin(SlRun *run)
{
	const SlTable *t = run->t;
	int			batch;

	for (batch = 0; batch < MAX_BATCHES &&
		 (run->ngroups > 0 ? !sl_quota_satisfied(run, false) : run->prefix_valid < run->target);
		 batch++)
	{
		SlRowSet   *rows = sl_rowset_create(t->ncols, 64);
		int			g;

		/*
		 * Without groups, one proposal from the target rows; with groups,
		 * one per group that is short, from the rows with its label (a copula
		 * fitted on them writes that label).
		 */
		for (g = 0; g < Max(run->ngroups, 1); g++)
		{
			const SlRowSet *from = run->target_rows;
			int64		need = run->target - run->prefix_valid;

			if (run->ngroups > 0)
			{
				SlGroup    *grp = &run->groups[g];

				if (grp->have >= grp->target)
					continue;
				need = grp->target - grp->have;
				if (grp->seeds)
					from = grp->seeds;
			}
			propose_into(run, from, need, sl_mix_seed(run->seed, 5000 + batch * 64 + g), rows);
		}

		run->results[batch] = rows;
		sl_limit_check_context(run->cxt, "generating candidates");
		run->issued = run->answered = run->prefix = batch + 1;
		run->prefix_valid += rows->nrows;
		if (run->ngroups > 0)
			sl_quota_count(run, rows);
		if (batch + 1 >= COLLAPSE_MIN_BATCHES && run->valid == 0)
		{
			run->stop = "collapse";
			break;
		}
	}
}
