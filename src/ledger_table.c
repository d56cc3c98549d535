/*-------------------------------------------------------------------------
 *
 * ledger_table.c
 *	  The run ledger: one record per successful run, readable by its owner.
 *
 * A successful run is recorded in the table samplellm_run_ledger within the
 * caller's transaction, so the record and the rows it describes commit or
 * vanish together (which makes idempotency keys sound).  Failed runs go to
 * the failure journal (journal.c).  Run ids come from a sequence, which is
 * not transactional, so a failed run's id is never reused.  No data values
 * and no secrets are recorded.
 *
 * Nothing here runs SQL text under the caller's search_path with another
 * role's rights: the idempotency lookup is an index scan in C, and the one
 * insert that runs as the ledger's owner has no operator or function in it
 * and runs under a pinned search_path.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "ledger.h"
#include "samplellm.h"

#define LEDGER_TABLE		"samplellm_run_ledger"
#define LEDGER_KEY_INDEX	"samplellm_run_ledger_idempotency"
#define LEDGER_SEQUENCE		"samplellm_run_id_seq"

/* locktag_field4 of the advisory lock on (target, key): no user-level
 * advisory lock function makes this value (they use 1 and 2). */
#define LEDGER_LOCK_KIND	0x534c

/*
 * The extension's schema, from pg_extension (no SQL).  Looked up at each
 * call: ALTER EXTENSION ... SET SCHEMA is refused (not relocatable), but a
 * DROP and CREATE EXTENSION in another schema is not.
 */
static Oid
extension_lookup(char **version)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			schema = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum("samplellm"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		v;

		schema = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
		v = heap_getattr(tup, Anum_pg_extension_extversion, RelationGetDescr(rel), &isnull);
		*version = isnull ? NULL : TextDatumGetCString(v);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(schema))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("extension \"samplellm\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION samplellm.")));
	return schema;
}

Oid
sl_extension_schema(void)
{
	char	   *version;

	return extension_lookup(&version);
}

/*
 * Refuses, before anything is paid for, what would make the run's ledger
 * write fail at the end: a read-only transaction, or SQL objects of another
 * version than the library (after a package upgrade, before ALTER EXTENSION
 * ... UPDATE).
 */
void
sl_ledger_check_ready(const char *function)
{
	char	   *version = NULL;

	(void) extension_lookup(&version);
	if (version == NULL || strcmp(version, SAMPLELLM_VERSION) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("samplellm's SQL objects are at version %s, its library at %s",
						version ? version : "(unknown)", SAMPLELLM_VERSION),
				 errhint("Run ALTER EXTENSION samplellm UPDATE.")));
	if (XactReadOnly || RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("%s cannot run in a read-only transaction", function),
				 errdetail("Every run is recorded in the run ledger (samplellm_runs)."),
				 errhint(RecoveryInProgress() ?
						 "Run it on the primary server." :
						 "Run it in a read-write transaction.")));
}

static Oid
ledger_relid(const char *name)
{
	Oid			relid = get_relname_relid(name, sl_extension_schema());

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("samplellm's relation \"%s\" is missing", name),
				 errhint("Reinstall the extension with DROP EXTENSION samplellm; CREATE EXTENSION samplellm.")));
	return relid;
}

static AttrNumber
ledger_attnum(Oid relid, const char *name)
{
	AttrNumber	a = get_attnum(relid, name);

	if (a == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("samplellm's run ledger has no column \"%s\"", name),
				 errhint("Run ALTER EXTENSION samplellm UPDATE.")));
	return a;
}

static Oid
rel_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

int64
sl_ledger_next_id(void)
{
	/* The run id is the extension's, not the caller's to grant. */
	return nextval_internal(ledger_relid(LEDGER_SEQUENCE), false);
}

/*
 * Records a successful run in the caller's transaction.  The insert runs as
 * the ledger's owner (callers can read their own records, not forge them),
 * under a pinned search_path, with no operator or function in its text.
 */
void
sl_ledger_record_success(const SlLedgerRecord *rec)
{
	Oid			schema = sl_extension_schema();
	Oid			relid = ledger_relid(LEDGER_TABLE);
	Oid			argtypes[13] = {INT8OID, NAMEOID, OIDOID, TIMESTAMPTZOID,
		TIMESTAMPTZOID, TEXTOID, TEXTOID, INT4OID, INT4OID, TEXTOID, TEXTOID,
	TEXTOID, JSONBOID};
	Datum		args[13];
	char		nulls[13];
	char	   *sql;
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(rec->run_id);
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(GetUserNameFromId(GetUserId(), false)));
	args[2] = ObjectIdGetDatum(GetUserId());
	args[3] = TimestampTzGetDatum(rec->started_at);
	args[4] = TimestampTzGetDatum(GetCurrentTimestamp());
	args[5] = CStringGetTextDatum(rec->source ? rec->source : "");
	if (rec->target)
		args[6] = CStringGetTextDatum(rec->target);
	else
		nulls[6] = 'n';
	args[7] = Int32GetDatum(rec->n_requested);
	args[8] = Int32GetDatum(rec->n_returned);
	args[9] = CStringGetTextDatum(rec->status);
	nulls[10] = 'n';			/* a successful run has no error */
	if (rec->idempotency_key)
		args[11] = CStringGetTextDatum(rec->idempotency_key);
	else
		nulls[11] = 'n';
	args[12] = DirectFunctionCall1(jsonb_in, CStringGetDatum(rec->details ? rec->details : "{}"));

	sql = psprintf("INSERT INTO %s.%s (run_id, run_by, run_by_oid, started_at, finished_at, "
				   "source, target, n_requested, n_returned, status, error, idempotency_key, details) "
				   "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
				   quote_identifier(get_namespace_name(schema)), LEDGER_TABLE);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	save_nestlevel = NewGUCNestLevel();
	PG_TRY();
	{
		int			rc;

		(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
								 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
		SetUserIdAndSecContext(rel_owner(relid),
							   save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
		SPI_connect();
		rc = SPI_execute_with_args(sql, 13, argtypes, args, nulls, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "samplellm: ledger insert failed: %s", SPI_result_code_string(rc));
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
		AtEOXact_GUC(true, save_nestlevel);
	}
	PG_END_TRY();
}

/*
 * Serializes the calls that use one idempotency key on one target: a second
 * caller waits here until the first commits or rolls back, then finds (or
 * does not find) its record.  A transaction-level advisory lock, released
 * at commit.
 */
void
sl_ledger_lock_key(Oid target, const char *key)
{
	LOCKTAG		tag;
	uint32		h = hash_bytes((const unsigned char *) key, strlen(key));

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) target, h, LEDGER_LOCK_KIND);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * The run id of an earlier successful run into target with this
 * idempotency key, or 0.  Keys belong to the target table, whoever ran the
 * job: a direct scan of the partial unique index, which row-level security
 * does not apply to and which runs no SQL.  The latest snapshot is used, so
 * that a run committed while this call waited on sl_ledger_lock_key() is
 * seen even in a repeatable-read transaction.
 */
int64
sl_ledger_find_success(const char *target, const char *key)
{
	Oid			relid = ledger_relid(LEDGER_TABLE);
	Oid			indexid = ledger_relid(LEDGER_KEY_INDEX);
	Relation	rel;
	ScanKeyData keys[2];
	SysScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	int64		found = 0;

	AttrNumber	att_target = ledger_attnum(relid, "target");
	AttrNumber	att_key = ledger_attnum(relid, "idempotency_key");
	AttrNumber	att_status = ledger_attnum(relid, "status");
	AttrNumber	att_id = ledger_attnum(relid, "run_id");

	rel = table_open(relid, AccessShareLock);
	/* heap attribute numbers: systable_beginscan maps them to the index's */
	ScanKeyInit(&keys[0], att_target, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(target));
	ScanKeyInit(&keys[1], att_key, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(key));
	/* text equality is the same under every deterministic collation */
	keys[0].sk_collation = DEFAULT_COLLATION_OID;
	keys[1].sk_collation = DEFAULT_COLLATION_OID;
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, indexid, true, snap, 2, keys);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		status = heap_getattr(tup, att_status, RelationGetDescr(rel), &isnull);
		Datum		id;

		if (isnull || strcmp(TextDatumGetCString(status), "ok") != 0)
			continue;
		id = heap_getattr(tup, att_id, RelationGetDescr(rel), &isnull);
		if (!isnull)
		{
			found = DatumGetInt64(id);
			break;
		}
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	return found;
}
