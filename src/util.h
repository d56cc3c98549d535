/*-------------------------------------------------------------------------
 *
 * util.h
 *	  Shared pieces (util_*.c): named random streams (util_random.c),
 *	  comparators (util_compare.c), and the memory bound of a call
 *	  (util_limits.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_UTIL_H
#define SAMPLELLM_UTIL_H

#include "common/pg_prng.h"

#include "table.h"

/*
 * Every random choice of a call derives from its seed through one of these
 * streams, some indexed (a request, a group, a batch).  sl_stream_seed()
 * puts the stream in the top 16 bits and the index in the low 48 of one
 * 64-bit number, and mixes it with a bijection: for one call's seed, two
 * different (stream, index) pairs never get the same stream seed.
 * Reordering or inserting names changes every result; append only.
 */
typedef enum SlStream
{
	SL_STREAM_SEED_SAMPLE = 1,	/* reservoir sample of the seed rows */
	SL_STREAM_EXEMPLAR_PLAN,	/* k-means++ of a group's rows; index: group */
	SL_STREAM_REQUEST_EXEMPLARS,	/* a request's exemplars; index:
									 * SL_REQUEST_INDEX(group, k) */
	SL_STREAM_REQUEST_SEED,		/* the seed a request sends; likewise */
	SL_STREAM_HTTP_JITTER,		/* retry backoff jitter */
	SL_STREAM_BUILTIN_BATCH,	/* a batch of the built-in generator;
								 * SL_REQUEST_INDEX(group, batch) */
	SL_STREAM_DRAW,				/* the draw of a group's rows; index: group */
	SL_STREAM_STAGE2_INIT_T,	/* stage 2: f_T's initial weights */
	SL_STREAM_STAGE2_TRAIN_T,	/* f_T's batches and dropout */
	SL_STREAM_STAGE2_IH_ROWS,	/* the rows Integrated Hessians use */
	SL_STREAM_STAGE2_INIT_S,	/* f_S */
	SL_STREAM_STAGE2_TRAIN_S,
	SL_STREAM_EVAL_REAL,		/* samplellm_evaluate: table samples */
	SL_STREAM_EVAL_SYN,
	SL_STREAM_EVAL_HOLD,
	SL_STREAM_EVAL_DETECTION,	/* folds and balancing */
	SL_STREAM_EVAL_DCR,
	SL_STREAM_EVAL_INIT,		/* utility models; index: run */
	SL_STREAM_EVAL_TRAIN,
	SL_STREAM_STAGE2_S_SAMPLE,	/* the candidates f_S trains on */
	SL_STREAM_BUILTIN_FIT,		/* the copula: from a batch's seed */
	SL_STREAM_BUILTIN_SAMPLE,
	SL_STREAM_SYNTH,			/* synthetic values; index: column << 16 | attempt */
	SL_STREAM_REQUEST_REFS,		/* a request's references; SL_REQUEST_INDEX */
	SL_STREAM_BUILTIN_REFS,		/* the built-in generator's references */
	SL_STREAM_RELATED,			/* related tables: children counts, seeds;
								 * index: the table */
	SL_STREAM_STAGE2_NOVELTY	/* stage 2's novelty guard: 0 the seeds it
								 * measures against, 1 the probe */
} SlStream;

/* A request of a group: group in bits 32-47, the group's own number below. */
#define SL_REQUEST_INDEX(group, k) (((uint64) (group) << 32) | (uint64) (uint32) (k))

/* util_random.c */
extern uint64 sl_stream_seed(uint64 seed, SlStream stream, uint64 index);
extern void sl_stream_init(pg_prng_state *rng, uint64 seed, SlStream stream,
						   uint64 index);
/* The first k entries of perm[0..n) become a uniform k-sample, in draw order. */
extern void sl_shuffle_prefix(int *perm, int n, int k, pg_prng_state *rng);
/* 0..n-1, for sl_shuffle_prefix (palloc'd). */
extern int *sl_identity(int n);

/* util_compare.c: qsort/bsearch comparators */
extern int	sl_cmp_double(const void *a, const void *b);
extern int	sl_cmp_double_desc(const void *a, const void *b);
extern int	sl_cmp_int64(const void *a, const void *b);
extern int	sl_cmp_uint64(const void *a, const void *b);
extern int	sl_cmp_str(const void *a, const void *b);

/* util_limits.c: samplellm.max_memory */
extern int64 sl_limit_bytes(void);
extern void sl_limit_check(double bytes, const char *detail);
extern void sl_limit_check_context(MemoryContext cxt, const char *what);
extern double sl_row_bytes_typical(const SlTable *t);
extern double sl_row_bytes_measured(const SlTable *t, const SlRowSet *rs);
extern double sl_relation_rows_estimate(Oid relid);

#endif							/* SAMPLELLM_UTIL_H */
