/*-------------------------------------------------------------------------
 *
 * builtin.h
 *	  Stage 1 without an LLM: a Gaussian-copula proposal generator
 *	  (samplellm.provider = 'builtin').
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_PROVIDER_BUILTIN_H
#define SAMPLELLM_PROVIDER_BUILTIN_H

#include "table.h"

/*
 * Proposes nrows candidate rows imitating seeds with a Gaussian copula.
 * Returns a palloc'd array of nrows * t->ncols strings, row-major (NULL =
 * SQL NULL), each the text a column's input function accepts.  Deterministic
 * for a seed.  Allocates in CurrentMemoryContext.
 */
extern char **sl_builtin_propose(const SlTable *t, const SlRowSet *seeds,
								 int nrows, uint64 seed);

/* The standard normal CDF and its inverse (exposed for the unit tests). */
extern double sl_builtin_norm_cdf(double z);
extern double sl_builtin_norm_quantile(double p);

#endif							/* SAMPLELLM_PROVIDER_BUILTIN_H */
