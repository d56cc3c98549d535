/*-------------------------------------------------------------------------
 *
 * ledger.c
 *	  The run ledger: one record per run, readable by the run's owner.
 *
 * A successful run is recorded in the table samplellm_run_ledger within the
 * caller's transaction, so the record and the rows it describes commit or
 * vanish together (which makes idempotency keys sound).  A failed run's
 * transaction rolls back, so its record goes to a journal file in the data
 * directory instead ($PGDATA/pg_samplellm/failed_runs.jsonl, one JSON line
 * per run, as pg_stat_statements keeps its query texts in a file), which
 * samplellm_failed_runs() reads.  Run ids come from a sequence, which is
 * not transactional, so a failed run's id is never reused.  No data
 * values and no secrets are recorded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/file_perm.h"
#include "commands/sequence.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "cjson_prelude.h"
#include "ledger.h"

#define LEDGER_DIR "pg_samplellm"
#define JOURNAL_FILE LEDGER_DIR "/failed_runs.jsonl"
/* Longest journal line read back; longer lines are skipped whole. */
#define MAX_JOURNAL_LINE (1024 * 1024)
/* Longest error message recorded, in bytes. */
#define MAX_ERROR_CHARS 2000

/* The extension's schema: the one the calling SQL function lives in. */
static Oid	ledger_schema = InvalidOid;

void
sl_ledger_set_schema(Oid schema)
{
	ledger_schema = schema;
}

static Oid
extension_schema(void)
{
	if (!OidIsValid(ledger_schema))
		elog(ERROR, "samplellm: ledger schema not set");
	return ledger_schema;
}

static Oid
ledger_relid(const char *name)
{
	return get_relname_relid(name, extension_schema());
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
	Oid			seq = ledger_relid("samplellm_run_id_seq");

	if (!OidIsValid(seq))
		elog(ERROR, "samplellm: sequence samplellm_run_id_seq is missing");
	/* The run id is the extension's, not the caller's to grant. */
	return nextval_internal(seq, false);
}

/* The record's columns as a JSON object (jsonb_populate_record's input). */
static char *
record_json(const SlLedgerRecord *rec)
{
	StringInfoData buf;

	initStringInfo(&buf);
	/* run_by_oid (not a column) lets the journal's reader match the role, not its name. */
	appendStringInfo(&buf, "{\"run_id\": " INT64_FORMAT ", \"run_by_oid\": %u, \"run_by\": ",
					 rec->run_id, GetUserId());
	escape_json(&buf, GetUserNameFromId(GetUserId(), false));
	appendStringInfoString(&buf, ", \"started_at\": ");
	escape_json(&buf, timestamptz_to_str(rec->started_at));
	appendStringInfoString(&buf, ", \"finished_at\": ");
	escape_json(&buf, timestamptz_to_str(GetCurrentTimestamp()));
	appendStringInfoString(&buf, ", \"source\": ");
	escape_json(&buf, rec->source ? rec->source : "");
	appendStringInfoString(&buf, ", \"target\": ");
	if (rec->target)
		escape_json(&buf, rec->target);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfo(&buf, ", \"n_requested\": %d, \"n_returned\": %d, \"status\": ",
					 rec->n_requested, rec->n_returned);
	escape_json(&buf, rec->status);
	appendStringInfoString(&buf, ", \"error\": ");
	if (rec->error)
	{
		/* The message can carry user text (a label, a condition): bounded. */
		int			len = strlen(rec->error);
		int			cut = pg_mbcliplen(rec->error, len, MAX_ERROR_CHARS);

		escape_json(&buf, cut < len ? psprintf("%.*s...", cut, rec->error) : rec->error);
	}
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ", \"idempotency_key\": ");
	if (rec->idempotency_key)
		escape_json(&buf, rec->idempotency_key);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ", \"details\": ");
	appendStringInfoString(&buf, rec->details ? rec->details : "{}");
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Records a successful run in the caller's transaction.  The insert runs as
 * the ledger's owner: callers can read their own records, not forge them.
 */
void
sl_ledger_record_success(const SlLedgerRecord *rec)
{
	char	   *json = record_json(rec);
	Oid			relid = ledger_relid("samplellm_run_ledger");
	Oid			argtypes[1] = {JSONBOID};
	Datum		args[1];
	Oid			save_userid;
	int			save_sec;
	StringInfoData sql;
	int			rc;

	if (!OidIsValid(relid))
		elog(ERROR, "samplellm: table samplellm_run_ledger is missing");
	args[0] = DirectFunctionCall1(jsonb_in, CStringGetDatum(json));
	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO %s.samplellm_run_ledger "
					 "SELECT (r).run_id, (r).run_by, (r).started_at, (r).finished_at, (r).source, (r).target, "
					 "(r).n_requested, (r).n_returned, (r).status, (r).error, (r).idempotency_key, (r).details "
					 "FROM (SELECT pg_catalog.jsonb_populate_record(NULL::%s.samplellm_run_ledger, $1) AS r) s",
					 quote_identifier(get_namespace_name(extension_schema())),
					 quote_identifier(get_namespace_name(extension_schema())));

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(rel_owner(relid),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		SPI_connect();
		rc = SPI_execute_with_args(sql.data, 1, argtypes, args, NULL, false, 0);
		if (rc != SPI_OK_INSERT)
			elog(ERROR, "samplellm: ledger insert failed: %s", SPI_result_code_string(rc));
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
}

/*
 * The run id of an earlier successful run into target with this
 * idempotency key, or 0.  Keys belong to the target table, whoever ran the
 * job, so the ledger is read as its owner (row-level security would hide
 * another role's run).
 */
int64
sl_ledger_find_success(const char *target, const char *key)
{
	Oid			relid = ledger_relid("samplellm_run_ledger");
	Oid			argtypes[2] = {TEXTOID, TEXTOID};
	Datum		args[2];
	Oid			save_userid;
	int			save_sec;
	int64		found = 0;

	if (!OidIsValid(relid))
		elog(ERROR, "samplellm: table samplellm_run_ledger is missing");
	args[0] = CStringGetTextDatum(target);
	args[1] = CStringGetTextDatum(key);
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(rel_owner(relid),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		int			rc;

		SPI_connect();
		rc = SPI_execute_with_args(psprintf("SELECT run_id FROM %s.samplellm_run_ledger "
											"WHERE target = $1 AND idempotency_key = $2 AND status = 'ok'",
											quote_identifier(get_namespace_name(extension_schema()))),
								   2, argtypes, args, NULL, true, 1);
		if (rc == SPI_OK_SELECT && SPI_processed > 0)
		{
			bool		isnull;

			found = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	return found;
}

/*
 * Appends a failed run to the journal.  Called while an error is being
 * raised, so it uses plain system calls and never raises one itself: a
 * journal that cannot be written loses the record, not the error.
 */
void
sl_ledger_record_failure(const SlLedgerRecord *rec)
{
	char	   *json = record_json(rec);
	size_t		len = strlen(json);
	char	   *line = palloc(len + 2);
	int			fd;

	memcpy(line, json, len);
	line[len] = '\n';
	line[len + 1] = '\0';
	(void) mkdir(LEDGER_DIR, pg_dir_create_mode);
	fd = open(JOURNAL_FILE, O_WRONLY | O_APPEND | O_CREAT | PG_BINARY, pg_file_create_mode);
	if (fd < 0)
		return;
	/* One write with O_APPEND: concurrent backends' lines do not interleave. */
	if (write(fd, line, len + 1) != (ssize_t) (len + 1))
	{
		/* nothing to do: the record is lost, the original error stands */
	}
	close(fd);
}

PG_FUNCTION_INFO_V1(samplellm_failed_run_records);

/*
 * The journal's records as jsonb: the caller's own, or everyone's for a
 * superuser.  The SQL function samplellm_failed_runs() turns them into rows
 * of samplellm_run_ledger.
 */
Datum
samplellm_failed_run_records(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	const char *me = psprintf("%u", GetUserId());
	bool		all = superuser();
	FILE	   *f;
	char	   *line;

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	f = AllocateFile(JOURNAL_FILE, "r");
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not read the samplellm failed-run journal: %m")));
		return (Datum) 0;
	}
	line = palloc(MAX_JOURNAL_LINE);
	while (fgets(line, MAX_JOURNAL_LINE, f) != NULL)
	{
		size_t		len = strlen(line);
		Jsonb	   *jb;
		JsonbValue	k;
		JsonbValue *v;
		Datum		value;
		bool		isnull = false;
		cJSON	   *check;

		CHECK_FOR_INTERRUPTS();
		if (len == 0 || line[len - 1] != '\n')
		{
			/* Overlong (or torn at the end): skip the rest of this line too. */
			int			ch;

			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			continue;
		}
		line[len - 1] = '\0';
		/* A torn line must not break the function for everyone: check first. */
		check = cJSON_Parse(line);
		if (check == NULL || !cJSON_IsObject(check))
			continue;
		cJSON_Delete(check);
		jb = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(line)));
		if (!all)
		{
			/* By role OID: a role dropped and created again under the same name is another role. */
			k.type = jbvString;
			k.val.string.val = "run_by_oid";
			k.val.string.len = 10;
			v = findJsonbValueFromContainer(&jb->root, JB_FOBJECT, &k);
			if (v == NULL || v->type != jbvNumeric ||
				strcmp(me, DatumGetCString(DirectFunctionCall1(numeric_out,
															   NumericGetDatum(v->val.numeric)))) != 0)
				continue;
		}
		value = JsonbPGetDatum(jb);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	FreeFile(f);
	return (Datum) 0;
}
