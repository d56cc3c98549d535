/*-------------------------------------------------------------------------
 *
 * validate.h
 *	  Stage 1, step 5b: candidate rows checked against the table's rules.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_VALIDATE_H
#define SAMPLELLM_VALIDATE_H

#include "nodes/primnodes.h"

#include "parse.h"
#include "samplellm.h"

/* Why a candidate row was rejected.  Keep sl_reject_names in step. */
typedef enum SlReject
{
	SL_REJ_NOT_OBJECT = 0,
	SL_REJ_UNKNOWN_KEY,
	SL_REJ_MISSING_KEY,
	SL_REJ_DUPLICATE_KEY,
	SL_REJ_WRONG_TYPE,
	SL_REJ_INVALID_VALUE,
	SL_REJ_NOT_NULL,
	SL_REJ_DOMAIN,
	SL_REJ_CHECK,
	SL_REJ_SEED_COPY,
	SL_REJ_CONDITION,
	SL_REJ_COUNT
} SlReject;

extern const char *const sl_reject_names[SL_REJ_COUNT];

typedef struct SlValidator SlValidator;

extern SlValidator *sl_validator_create(const SlTable *t, const SlRowSet *seeds);

/*
 * Converts one JSON row with the columns' own input functions and typmods,
 * checks NOT NULL, domains, enum labels and the table's CHECK constraints,
 * and refuses copies of seed rows.  A valid row is appended to out (whose
 * memory context must be current) and true returned; otherwise the reason
 * is counted in rejected[] and false returned.  Cancel still raises.
 */
extern bool sl_validate_row(SlValidator *v, const cJSON *row, SlRowSet *out);
/*
 * The same for a row given as one text per column (NULL for SQL NULL), in
 * the column order of the table, e.g. from the built-in generator.
 */
extern bool sl_validate_texts(SlValidator *v, const char *const *texts, SlRowSet *out);
extern const int64 *sl_validator_rejected(const SlValidator *v);

/* Candidates must also satisfy cond (from sl_condition_parse). */
extern void sl_validator_set_condition(SlValidator *v, Expr *cond);
/* Does row r of rs (e.g. a seed) satisfy the condition? */
extern bool sl_validator_matches(SlValidator *v, const SlRowSet *rs, int r);
extern void sl_validator_free(SlValidator *v);

#endif							/* SAMPLELLM_VALIDATE_H */
