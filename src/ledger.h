/*-------------------------------------------------------------------------
 *
 * ledger.h
 *	  The run ledger: one record per run, readable by the run's owner.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SAMPLELLM_LEDGER_H
#define SAMPLELLM_LEDGER_H

#include "datatype/timestamp.h"

typedef struct SlLedgerRecord
{
	int64		run_id;
	TimestampTz started_at;
	const char *source;
	const char *target;			/* NULL for samplellm_generate */
	int			n_requested;
	int			n_returned;
	const char *status;			/* "ok" or "failed" */
	const char *error;			/* message of a failure */
	const char *idempotency_key;
	const char *details;		/* the run's figures, JSON (sl_run_json) */
} SlLedgerRecord;

extern void sl_ledger_set_schema(Oid schema);
extern int64 sl_ledger_next_id(void);
extern void sl_ledger_record_success(const SlLedgerRecord *rec);
extern int64 sl_ledger_find_success(const char *target, const char *key);
extern void sl_ledger_record_failure(const SlLedgerRecord *rec);

#endif							/* SAMPLELLM_LEDGER_H */
