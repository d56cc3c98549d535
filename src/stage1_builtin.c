/*-------------------------------------------------------------------------
 *
 * stage1_builtin.c
 *	  Stage 1's built-in provider: candidates from the Gaussian copula
 *	  (builtin_copula.c), no LLM.
 *
 * The same validation, pool and stage 2 run on these candidates as on an
 * LLM's, so the built-in generator is both the offline provider and the
 * baseline every LLM run can be compared with.  It never pretends to be an
 * LLM: the run record names the provider and counts batches, not calls.
 * Batch k of group g is fitted on the group's real rows and drawn with a
 * stream of (g, k).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include "builtin.h"
#include "run.h"
#include "stage1.h"

/* Proposal rounds of one group before giving up with the shortfall error. */
#define MAX_BATCHES 20
#define COLLAPSE_MIN_BATCHES 3

/* Proposes about what the acceptance so far says is needed, plus a margin. */
static SlRowSet *
propose(const SlStage1 *in, SlStage1Stats *st, int64 valid, MemoryContext scratch,
		const SlRowSet *from, int64 need, uint64 seed)
{
	const SlTable *t = in->t;
	double		accept = st->received > 0 ? (double) valid / st->received : 1.0;
	int			nprop = (int) Min(ceil(need / Max(accept, 0.05) * 1.1) + 16, 1000000.0);
	SlRowSet   *rows = sl_rowset_create(t->ncols, 64);
	MemoryContext old;
	char	  **texts;
	int			r;

	old = MemoryContextSwitchTo(scratch);
	texts = sl_builtin_propose(t, from, nprop, seed);
	MemoryContextSwitchTo(in->cxt);
	for (r = 0; r < nprop; r++)
	{
		st->received++;
		(void) sl_validate_texts(in->validator,
								 (const char *const *) texts + (size_t) r * t->ncols, rows);
		if ((r & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(scratch);
	return rows;
}

void
sl_stage1_builtin(const SlStage1 *in, SlPool *pool, SlStage1Stats *st)
{
	const SlGroups *gs = in->groups;
	MemoryContext scratch = AllocSetContextCreate(in->cxt, "samplellm proposals",
												  ALLOCSET_DEFAULT_SIZES);

	st->stop_group = -1;
	while (!sl_pool_full(pool))
	{
		int			g;

		CHECK_FOR_INTERRUPTS();
		for (g = 0; g < gs->ngroups; g++)
		{
			const SlGroup *grp = &gs->groups[g];
			int64		need = sl_pool_lacking(pool, g);
			int			k;
			SlRowSet   *rows;

			if (need <= 0)
				continue;
			if (sl_pool_issued(pool, g) >= MAX_BATCHES)
			{
				st->stop = "batches";
				break;
			}
			k = sl_pool_issue(pool, g);
			st->requests++;
			rows = propose(in, st, sl_pool_valid(pool), scratch, grp->seeds, need,
						   sl_stream_seed(in->seed, SL_STREAM_BUILTIN_BATCH, SL_REQUEST_INDEX(g, k)));
			sl_pool_put(pool, g, k, rows);
			sl_limit_check_context(in->cxt, "generating candidates");
			sl_progress_stage1(sl_pool_valid(pool), need + sl_pool_have(pool, g),
							   st->requests, 0, 0, 0);
		}
		if (st->stop)
			break;
		st->stop_group = sl_pool_collapsed_group(pool, COLLAPSE_MIN_BATCHES);
		if (st->stop_group >= 0)
		{
			st->stop = "collapse";
			break;
		}
	}
	MemoryContextDelete(scratch);
}
