/*-------------------------------------------------------------------------
 *
 * ledger_journal.c
 *	  The failure journal: records of runs whose transaction rolled back.
 *
 * A failed run's ledger row would roll back with its transaction, so its
 * record goes to a file instead, one JSON line per run, as
 * pg_stat_statements keeps its query texts in a file:
 *
 *	  $PGDATA/pg_samplellm/journal/<database oid>/<role oid>.jsonl
 *	  $PGDATA/pg_samplellm/journal/<database oid>/<role oid>.1.jsonl (older)
 *
 * One file per database and role: another database's runs never show up
 * (run ids come from a per-database sequence), a reader pays for its own
 * records only, and one role that fails a lot cannot push out another's
 * records.  Each role's file is capped at samplellm.journal_max_size: when
 * a line would take it over, it becomes the older generation (replacing the
 * previous one) and a new file starts, so a role keeps between one and two
 * caps' worth of its latest failures.  Text is stored as UTF-8, whatever
 * the database's encoding.  Only runs that started their work are
 * journaled: a call refused for its arguments costs nothing and leaves no
 * record (sql_generate.c starts a run only once its checks passed).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file_perm.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "cjson_prelude.h"
#include "ledger.h"

#define JOURNAL_ROOT "pg_samplellm/journal"
/* Longest journal line read back; longer lines are skipped whole. */
#define MAX_JOURNAL_LINE (1024 * 1024)
/* Longest error message recorded, in bytes. */
#define MAX_ERROR_CHARS 2000

static int	journal_max_kb = 1024;

void
sl_journal_define_gucs(void)
{
	DefineCustomIntVariable("samplellm.journal_max_size",
							"Sets the size at which a role's failure journal file is rotated.",
							"Each role keeps its latest failed runs in at most two files of this size per database.",
							&journal_max_kb, 1024, 16, 1024 * 1024,
							PGC_SUSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
}

static void
journal_dir(char *buf)
{
	snprintf(buf, MAXPGPATH, "%s/%u", JOURNAL_ROOT, MyDatabaseId);
}

static void
journal_path(char *buf, Oid role, int generation)
{
	if (generation == 0)
		snprintf(buf, MAXPGPATH, "%s/%u/%u.jsonl", JOURNAL_ROOT, MyDatabaseId, role);
	else
		snprintf(buf, MAXPGPATH, "%s/%u/%u.1.jsonl", JOURNAL_ROOT, MyDatabaseId, role);
}

/* The record as one JSON line in the server encoding. */
static char *
record_json(const SlLedgerRecord *rec)
{
	StringInfoData buf;

	initStringInfo(&buf);
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
	{
		int			len = strlen(rec->idempotency_key);
		int			cut = pg_mbcliplen(rec->idempotency_key, len, MAX_ERROR_CHARS);

		escape_json(&buf, pnstrdup(rec->idempotency_key, cut));
	}
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ", \"details\": ");
	appendStringInfoString(&buf, rec->details ? rec->details : "{}");
	appendStringInfoString(&buf, "}\n");
	return buf.data;
}

/* Same file as the open descriptor (not renamed away meanwhile)? */
static bool
still_current(int fd, const char *path)
{
	struct stat a;
	struct stat b;

	return fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
		a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/*
 * Appends a failed run to the caller's journal file.  Called while an error
 * is being raised: plain system calls, and no error of its own for I/O
 * trouble (a journal that cannot be written loses the record, not the
 * error).  The caller catches what the conversion could raise.
 */
void
sl_journal_append(const SlLedgerRecord *rec)
{
	char	   *line = record_json(rec);
	size_t		len;
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	char		older[MAXPGPATH];
	off_t		cap = (off_t) journal_max_kb * 1024;
	int			fd = -1;
	int			tries;

	/* The database's text as UTF-8, so that the file has one encoding. */
	line = pg_server_to_any(line, strlen(line), PG_UTF8);
	len = strlen(line);
	journal_dir(dir);
	(void) mkdir("pg_samplellm", pg_dir_create_mode);
	(void) mkdir(JOURNAL_ROOT, pg_dir_create_mode);
	(void) mkdir(dir, pg_dir_create_mode);
	journal_path(path, GetUserId(), 0);
	journal_path(older, GetUserId(), 1);

	/*
	 * flock() serializes this role's writers around the size check and the
	 * rotation; a writer that waited on a file another writer rotated away
	 * opens the new one.
	 */
	for (tries = 0; tries < 4; tries++)
	{
		struct stat st;

		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | PG_BINARY, pg_file_create_mode);
		if (fd < 0)
			return;
		if (flock(fd, LOCK_EX) != 0 || !still_current(fd, path))
		{
			close(fd);
			fd = -1;
			continue;
		}
		if (fstat(fd, &st) == 0 && st.st_size > 0 && st.st_size + (off_t) len > cap)
		{
			/* this file becomes the older generation; start a new one */
			(void) rename(path, older);
			close(fd);
			fd = -1;
			continue;
		}
		break;
	}
	if (fd < 0)
		return;
	/* One write with O_APPEND: a torn line is skipped by the reader. */
	if (write(fd, line, len) != (ssize_t) len)
	{
		/* nothing to do: the record is lost, the original error stands */
	}
	close(fd);					/* releases the lock */
}

/* Emits the records of one journal file (missing: nothing). */
static void
read_journal_file(const char *path, ReturnSetInfo *rsinfo, char *line)
{
	FILE	   *f = AllocateFile(path, "r");

	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(WARNING,
					(errcode_for_file_access(),
					 errmsg("could not read the samplellm failure journal \"%s\": %m", path)));
		return;
	}
	while (fgets(line, MAX_JOURNAL_LINE, f) != NULL)
	{
		size_t		len = strlen(line);
		char	   *text;
		cJSON	   *check;
		Datum		value;
		bool		isnull = false;

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
		/* A torn or foreign line must not break the function: check first. */
		if (!pg_verify_mbstr(PG_UTF8, line, (int) len - 1, true))
			continue;
		check = cJSON_Parse(line);
		if (check == NULL || !cJSON_IsObject(check))
			continue;
		cJSON_Delete(check);
		text = pg_any_to_server(line, len - 1, PG_UTF8);
		value = DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, &value, &isnull);
	}
	FreeFile(f);
}

static bool
is_journal_name(const char *name)
{
	size_t		n = strspn(name, "0123456789");

	return n > 0 && (strcmp(name + n, ".jsonl") == 0 || strcmp(name + n, ".1.jsonl") == 0);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

PG_FUNCTION_INFO_V1(samplellm_failed_run_records);

/*
 * The journal's records of this database as jsonb: the caller's own (its
 * two files), or every role's for a superuser.
 */
Datum
samplellm_failed_run_records(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *line;
	char		path[MAXPGPATH];

	InitMaterializedSRF(fcinfo, MAT_SRF_USE_EXPECTED_DESC);
	line = palloc(MAX_JOURNAL_LINE);
	if (!superuser())
	{
		journal_path(path, GetUserId(), 1);
		read_journal_file(path, rsinfo, line);
		journal_path(path, GetUserId(), 0);
		read_journal_file(path, rsinfo, line);
	}
	else
	{
		char		dir[MAXPGPATH];
		DIR		   *d;
		struct dirent *de;
		char	  **names = NULL;
		int			n = 0;
		int			cap = 0;
		int			i;

		journal_dir(dir);
		d = AllocateDir(dir);
		if (d == NULL && errno == ENOENT)
			return (Datum) 0;
		while ((de = ReadDir(d, dir)) != NULL)
		{
			if (!is_journal_name(de->d_name))
				continue;
			if (n == cap)
			{
				cap = Max(16, cap * 2);
				names = names ? repalloc(names, sizeof(char *) * cap) : palloc(sizeof(char *) * cap);
			}
			names[n++] = pstrdup(de->d_name);
		}
		FreeDir(d);
		/* a stable order: by file name ("<oid>.1.jsonl" sorts before "<oid>.jsonl") */
		if (n > 1)
			qsort(names, n, sizeof(char *), cmp_names);
		for (i = 0; i < n; i++)
		{
			snprintf(path, MAXPGPATH, "%s/%s", dir, names[i]);
			read_journal_file(path, rsinfo, line);
		}
	}
	return (Datum) 0;
}
