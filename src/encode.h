/*-------------------------------------------------------------------------
 *
 * encode.h
 *	  Numeric encoding of rows for distance computations (k-means).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_ENCODE_H
#define SAMPLELLM_ENCODE_H

#include "samplellm.h"

/*
 * A dense row-major matrix (nrows x dim) encoding a row set: continuous
 * columns standardized on the reference set (plus a 0/1 "is NULL" indicator
 * when the reference has NULLs; NaN/Inf mapped to the indicator too),
 * categorical columns one-hot over their top categories plus "other" and
 * "NULL".  The encoder is learned on one row set and may encode others.
 */
typedef struct SlEncoder SlEncoder;

extern SlEncoder *sl_encoder_fit(const SlTable *t, const SlRowSet *ref,
								 int max_categories);
extern int	sl_encoder_dim(const SlEncoder *enc);
extern double *sl_encoder_apply(const SlEncoder *enc, const SlRowSet *rs);

#endif							/* SAMPLELLM_ENCODE_H */
