/*-------------------------------------------------------------------------
 *
 * ledger.h
 *	  The run ledger (successful runs, in a table) and the failure journal
 *	  (failed runs, in files): one record per run, readable by its owner.
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

/* ledger_table.c */
extern Oid	sl_extension_schema(void);
extern void sl_ledger_check_ready(const char *function);
extern int64 sl_ledger_next_id(void);
extern void sl_ledger_record_success(const SlLedgerRecord *rec);
extern void sl_ledger_lock_key(Oid target, const char *key);
extern int64 sl_ledger_find_success(const char *target, const char *key);

/* ledger_journal.c */
extern void sl_journal_define_gucs(void);
extern void sl_journal_append(const SlLedgerRecord *rec);

#endif							/* SAMPLELLM_LEDGER_H */
