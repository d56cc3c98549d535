/*-------------------------------------------------------------------------
 *
 * exemplars.h
 *	  Stage 1, step 2: diverse exemplars by k-means++ over encoded seed rows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_EXEMPLARS_H
#define SAMPLELLM_EXEMPLARS_H

#include "samplellm.h"

/*
 * The seed rows split into k clusters.  members[j] lists the seed row
 * numbers of cluster j (nmembers[j] of them); empty clusters are dropped, so
 * k may be smaller than asked.
 */
typedef struct SlExemplarPlan
{
	int			k;
	int		   *nmembers;
	int		  **members;
	int		   *cluster_of;		/* per seed row */
} SlExemplarPlan;

/*
 * Encodes the rows (encode.c: standardized numerics, one-hot top categories
 * plus "other", NULL as its own value) and clusters them with seeded
 * k-means++.  k is clamped to the number of distinct encoded rows.
 */
extern SlExemplarPlan *sl_exemplars_plan(const SlTable *t, const SlRowSet *seeds,
										 int k, uint64 seed);

/*
 * Draws up to per_cluster distinct rows from every cluster, afresh for each
 * call (a cluster with fewer rows gives what it has).  Writes seed row numbers
 * to out (room for k * per_cluster) and returns how many were written.
 */
extern int	sl_exemplars_draw(const SlExemplarPlan *plan, int per_cluster,
							  pg_prng_state *rng, int *out);

#endif							/* SAMPLELLM_EXEMPLARS_H */
