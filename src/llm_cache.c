/*-------------------------------------------------------------------------
 *
 * llm_cache.c
 *	  Reuse of paid responses: a server-side cache of 2xx LLM answers.
 *
 * A rerun with the same inputs sends byte-identical requests; the answers
 * paid for the first time are replayed from here instead of being bought
 * again.  Entries are plain files under the data directory (as
 * pg_stat_statements keeps its query texts), so they outlive the
 * transaction that stored them: a failure in stage 2 does not throw away
 * the stage-1 answers already paid for.
 *
 *	  pg_samplellm/cache/<role oid>/<first 2 hex of key>/<64-hex key>
 *
 * The key is SHA-256 over a format version, the current role's OID, the
 * database's OID, the endpoint URL, the model and the exact request body.  The role is in the
 * key and in the path: one role never reads another's entries, even for
 * identical requests, and clearing one role's entries is a walk of its own
 * folder.  The API key is neither stored nor hashed.
 *
 * An entry is one header line, then the raw response body:
 *
 *	  samplellm-cache 1 <role oid> <created, Unix time> <body bytes>
 *	  <body CRC-32C, 8 hex> <key>\n		(one line)
 *
 * A file whose header does not match its name, size and body is a miss and
 * is deleted.  Writers write <key>.tmp.<pid> and rename() it into place, so a
 * reader sees a whole entry or none, and concurrent writers of one key
 * simply replace each other's answer to the same request.  Nothing is
 * fsync'ed, this being a cache: after a crash an entry may be lost or fail
 * its checks, and both are misses, which only cost a new request.
 *
 * The total size is kept under samplellm.cache_max_size with a per-backend
 * estimate: each backend scans the tree on its first store, then again when
 * its last scan is SL_CACHE_RESCAN_SECS old, or as soon as its estimate
 * (last scan plus its own stores since) goes over the limit.  A scan
 * deletes expired entries (by file time) and abandoned temporary files;
 * when the total is over the limit it deletes the oldest entries (of any
 * role, first stored first out) until the total is under 90% of it, so the
 * next stores do not prune again at once.  Other backends' stores since a
 * backend's last scan are invisible to it, so the limit can be overshot by
 * what they stored in that window.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "common/cryptohash.h"
#include "common/file_perm.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "llm.h"

#define SL_CACHE_DIR			"pg_samplellm/cache"
#define SL_CACHE_MAGIC			"samplellm-cache"
#define SL_CACHE_FORMAT			1
#define SL_CACHE_KEY_VERSION	"samplellm-cache-key-2"
#define SL_CACHE_KEY_HEX		(PG_SHA256_DIGEST_LENGTH * 2)
#define SL_CACHE_HEADER_MAX		256
#define SL_CACHE_RESCAN_SECS	60
#define SL_CACHE_STALE_TMP_SECS 3600	/* a temporary file older than this
										 * was left by a crashed writer */
#define SL_CACHE_PRUNE_TARGET	0.9

bool		sl_cache_enabled = true;
int			sl_cache_max_age_s = 7 * 24 * 3600;
int			sl_cache_max_size_mb = 256;

/* This backend's view of the cache's total size (bytes; -1 = unknown). */
static int64 est_bytes = -1;
static pg_time_t last_scan = 0;

/* Statement that already got its cache WARNING. */
static TimestampTz warned_stmt = 0;

/* One file met by a walk of the tree. */
typedef struct CacheFile
{
	const char *path;
	Oid			role;
	bool		is_tmp;			/* <key>.tmp.<pid> */
	struct stat st;
} CacheFile;

typedef void (*CacheFileCallback) (const CacheFile *f, void *arg);

/* An entry kept for size pruning: the path is rebuilt from role and key. */
typedef struct CachePruneEntry
{
	pg_time_t	mtime;
	off_t		size;
	Oid			role;
	char		key[SL_CACHE_KEY_HEX + 1];
} CachePruneEntry;

typedef struct CacheScanState
{
	pg_time_t	now;
	int64		total;
	CachePruneEntry *entries;
	size_t		nentries;
	size_t		cap;
} CacheScanState;

typedef struct CacheClearState
{
	pg_time_t	now;
	int64		deleted;
} CacheClearState;

typedef struct CacheStatsState
{
	pg_time_t	now;
	int64		entries;
	int64		bytes;
	int64		expired;
	pg_time_t	oldest;
	pg_time_t	newest;
} CacheStatsState;

void
sl_cache_define_gucs(void)
{
	DefineCustomBoolVariable("samplellm.cache",
							 "Reuses stored LLM responses for identical requests.",
							 "Responses are kept per role in the data directory; "
							 "a rerun with the same inputs replays them instead of paying again.",
							 &sl_cache_enabled, true,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.cache_max_age",
							"Sets the maximum age of a reusable cached LLM response.",
							"Older responses are misses and are deleted. -1 means no limit.",
							&sl_cache_max_age_s, 7 * 24 * 3600, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("samplellm.cache_max_size",
							"Sets the maximum total size of the LLM response cache.",
							"When it is exceeded, the oldest responses of all roles are deleted. "
							"-1 means no limit.",
							&sl_cache_max_size_mb, 256, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MB,
							NULL, NULL, NULL);
}

/*
 * At most one WARNING per statement: a full disk would otherwise print one
 * for every response of a run.  The others go to DEBUG1.
 */
static int
cache_warn_level(void)
{
	TimestampTz stmt = GetCurrentStatementStartTimestamp();

	if (stmt == warned_stmt)
		return DEBUG1;
	warned_stmt = stmt;
	return WARNING;
}

static bool
is_hex_key(const char *s, size_t len)
{
	size_t		i;

	if (len != SL_CACHE_KEY_HEX)
		return false;
	for (i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static void
hash_cstring(pg_cryptohash_ctx *ctx, const char *s, bool *ok)
{
	/* the terminating NUL separates the fields: none can contain one */
	if (pg_cryptohash_update(ctx, (const uint8 *) (s ? s : ""),
							 strlen(s ? s : "") + 1) < 0)
		*ok = false;
}

/* The 64-hex key of a request of role, into key[SL_CACHE_KEY_HEX + 1]. */
static void
cache_key(Oid role, const char *url, const char *model, const char *body,
		  char *key)
{
	pg_cryptohash_ctx *ctx;
	uint8		digest[PG_SHA256_DIGEST_LENGTH];
	char		rolebuf[16];
	bool		ok = true;

	snprintf(rolebuf, sizeof(rolebuf), "%u", role);
	ctx = pg_cryptohash_create(PG_SHA256);
	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_cryptohash_init(ctx) < 0)
		ok = false;
	hash_cstring(ctx, SL_CACHE_KEY_VERSION, &ok);
	hash_cstring(ctx, rolebuf, &ok);
	/* one database's answers are never replayed in another */
	snprintf(rolebuf, sizeof(rolebuf), "%u", MyDatabaseId);
	hash_cstring(ctx, rolebuf, &ok);
	hash_cstring(ctx, url, &ok);
	hash_cstring(ctx, model, &ok);
	if (body && pg_cryptohash_update(ctx, (const uint8 *) body, strlen(body)) < 0)
		ok = false;
	if (ok && pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		ok = false;
	if (!ok)
		elog(ERROR, "could not compute the samplellm cache key: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	hex_encode((const char *) digest, sizeof(digest), key);
	key[SL_CACHE_KEY_HEX] = '\0';
}

static void
entry_dir(char *buf, Oid role, const char *key)
{
	snprintf(buf, MAXPGPATH, "%s/%u/%.2s", SL_CACHE_DIR, role, key);
}

static void
entry_path(char *buf, Oid role, const char *key)
{
	snprintf(buf, MAXPGPATH, "%s/%u/%.2s/%s", SL_CACHE_DIR, role, key, key);
}

static pg_crc32c
body_crc(const char *body, size_t len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, body, len);
	FIN_CRC32C(crc);
	return crc;
}

static int
format_header(char *buf, Oid role, long long created, size_t len,
			  pg_crc32c crc, const char *key)
{
	return snprintf(buf, SL_CACHE_HEADER_MAX, "%s %d %u %lld %zu %08x %s\n",
					SL_CACHE_MAGIC, SL_CACHE_FORMAT, role, created, len,
					(unsigned int) crc, key);
}

/*
 * Reads the entry open in fp.  Returns the body, or NULL with *corrupt set
 * when the file is not a whole entry of this role and key, or with *expired
 * set when it is older than samplellm.cache_max_age.
 */
static char *
read_entry(FILE *fp, Oid role, const char *key, size_t *len,
		   bool *corrupt, bool *expired)
{
	struct stat st;
	char		header[SL_CACHE_HEADER_MAX];
	char		expect[SL_CACHE_HEADER_MAX];
	char		magic[32];
	char		hkey[SL_CACHE_KEY_HEX + 2];
	int			format;
	unsigned int hrole;
	long long	created;
	size_t		blen;
	size_t		hlen;
	unsigned int crc;
	char	   *result;

	*corrupt = true;
	*expired = false;
	if (fstat(fileno(fp), &st) != 0 || fgets(header, sizeof(header), fp) == NULL)
		return NULL;
	hlen = strlen(header);
	if (hlen == 0 || header[hlen - 1] != '\n')
		return NULL;
	if (sscanf(header, "%31s %d %u %lld %zu %x %65s", magic, &format, &hrole,
			   &created, &blen, &crc, hkey) != 7)
		return NULL;
	/* the canonical form only: no stray spaces, signs or leading zeros */
	format_header(expect, (Oid) hrole, created, blen, (pg_crc32c) crc, hkey);
	if (strcmp(expect, header) != 0 ||
		strcmp(magic, SL_CACHE_MAGIC) != 0 || format != SL_CACHE_FORMAT ||
		(Oid) hrole != role || strcmp(hkey, key) != 0 ||
		blen >= MaxAllocSize || (off_t) (hlen + blen) != st.st_size)
		return NULL;
	if (sl_cache_max_age_s >= 0 &&
		(long long) time(NULL) - created > (long long) sl_cache_max_age_s)
	{
		*corrupt = false;
		*expired = true;
		return NULL;
	}

	/* a crash without fsync can leave the right size with wrong bytes */
	result = palloc(blen + 1);
	if ((blen > 0 && fread(result, 1, blen, fp) != blen) ||
		body_crc(result, blen) != (pg_crc32c) crc)
	{
		pfree(result);
		return NULL;
	}
	result[blen] = '\0';
	*corrupt = false;
	*len = blen;
	return result;
}

char *
sl_cache_get(const char *url, const char *model, const char *body,
			 size_t *len)
{
	Oid			role = GetUserId();
	char		key[SL_CACHE_KEY_HEX + 1];
	char		path[MAXPGPATH];
	FILE	   *fp;
	char	   *result;
	bool		corrupt;
	bool		expired;

	*len = 0;
	if (!sl_cache_enabled)
		return NULL;

	cache_key(role, url, model, body, key);
	entry_path(path, role, key);
	fp = AllocateFile(path, PG_BINARY_R);
	if (fp == NULL)
	{
		if (errno != ENOENT)
			ereport(cache_warn_level(),
					(errcode_for_file_access(),
					 errmsg("could not open samplellm cache file \"%s\": %m", path),
					 errdetail("The request is sent to the endpoint.")));
		return NULL;
	}
	result = read_entry(fp, role, key, len, &corrupt, &expired);
	FreeFile(fp);

	if (corrupt || expired)
	{
		/* a rename() may have replaced it meanwhile: then only a miss later */
		if (unlink(path) != 0 && errno != ENOENT)
			ereport(cache_warn_level(),
					(errcode_for_file_access(),
					 errmsg("could not remove samplellm cache file \"%s\": %m", path)));
		else if (corrupt)
			ereport(DEBUG1,
					(errmsg_internal("removed corrupt samplellm cache file \"%s\"", path)));
		*len = 0;
		return NULL;
	}
	return result;
}

/* A directory of the cache, or NULL (a missing one silently). */
static DIR *
open_dir(const char *path, int elevel)
{
	DIR		   *d = AllocateDir(path);

	if (d == NULL && errno != ENOENT)
		ereport(elevel,
				(errcode_for_file_access(),
				 errmsg("could not open directory \"%s\": %m", path)));
	return d;
}

/*
 * Calls cb for every entry and temporary file under one role's folder.
 * A missing folder is an empty one.  With remove_dirs, empty key-prefix
 * folders are removed afterwards (a concurrent writer recreates them).
 * Open and read errors are reported at elevel.
 */
static void
walk_role(Oid role, int elevel, bool remove_dirs,
		  CacheFileCallback cb, void *arg)
{
	char		roledir[MAXPGPATH];
	DIR		   *rdir;
	struct dirent *rde;

	snprintf(roledir, sizeof(roledir), "%s/%u", SL_CACHE_DIR, role);
	rdir = open_dir(roledir, elevel);
	if (rdir == NULL)
		return;
	while ((rde = ReadDirExtended(rdir, roledir, elevel)) != NULL)
	{
		char		subdir[MAXPGPATH];
		DIR		   *sdir;
		struct dirent *sde;

		CHECK_FOR_INTERRUPTS();
		if (strlen(rde->d_name) != 2 || !isxdigit((unsigned char) rde->d_name[0]) ||
			!isxdigit((unsigned char) rde->d_name[1]))
			continue;
		snprintf(subdir, sizeof(subdir), "%s/%s", roledir, rde->d_name);
		sdir = open_dir(subdir, elevel);
		if (sdir == NULL)
			continue;
		while ((sde = ReadDirExtended(sdir, subdir, elevel)) != NULL)
		{
			char		path[MAXPGPATH];
			size_t		nlen = strlen(sde->d_name);
			CacheFile	f;

			CHECK_FOR_INTERRUPTS();
			if (nlen < SL_CACHE_KEY_HEX || !is_hex_key(sde->d_name, SL_CACHE_KEY_HEX))
				continue;
			if (nlen == SL_CACHE_KEY_HEX)
				f.is_tmp = false;
			else if (strncmp(sde->d_name + SL_CACHE_KEY_HEX, ".tmp.", 5) == 0)
				f.is_tmp = true;
			else
				continue;
			snprintf(path, sizeof(path), "%s/%s", subdir, sde->d_name);
			/* gone meanwhile: a concurrent clear or prune */
			if (lstat(path, &f.st) != 0 || !S_ISREG(f.st.st_mode))
				continue;
			f.path = path;
			f.role = role;
			cb(&f, arg);
		}
		FreeDir(sdir);
		if (remove_dirs)
			(void) rmdir(subdir);	/* fails harmlessly when not empty */
	}
	FreeDir(rdir);
}

/* walk_role for every role folder. */
static void
walk_all(int elevel, bool remove_dirs, CacheFileCallback cb, void *arg)
{
	DIR		   *dir;
	struct dirent *de;

	dir = open_dir(SL_CACHE_DIR, elevel);
	if (dir == NULL)
		return;
	while ((de = ReadDirExtended(dir, SL_CACHE_DIR, elevel)) != NULL)
	{
		char	   *end;
		unsigned long role;

		CHECK_FOR_INTERRUPTS();
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		errno = 0;
		role = strtoul(de->d_name, &end, 10);
		if (errno != 0 || *end != '\0' || role == InvalidOid || role > PG_UINT32_MAX)
			continue;
		walk_role((Oid) role, elevel, remove_dirs, cb, arg);
		if (remove_dirs)
		{
			char		roledir[MAXPGPATH];

			snprintf(roledir, sizeof(roledir), "%s/%s", SL_CACHE_DIR, de->d_name);
			(void) rmdir(roledir);
		}
	}
	FreeDir(dir);
}

static bool
entry_expired(const CacheFile *f, pg_time_t now)
{
	return sl_cache_max_age_s >= 0 &&
		(int64) now - (int64) f->st.st_mtime > (int64) sl_cache_max_age_s;
}

static bool
tmp_abandoned(const CacheFile *f, pg_time_t now)
{
	return (int64) now - (int64) f->st.st_mtime > SL_CACHE_STALE_TMP_SECS;
}

/*
 * Removes a file; a concurrent delete is no error.  Returns true when the
 * file is gone.
 */
static bool
remove_file(const char *path, int elevel)
{
	if (unlink(path) == 0 || errno == ENOENT)
		return true;
	ereport(elevel,
			(errcode_for_file_access(),
			 errmsg("could not remove samplellm cache file \"%s\": %m", path)));
	return false;
}

/* Scan callback: drops what is expired or abandoned, lists the rest. */
static void
scan_cb(const CacheFile *f, void *arg)
{
	CacheScanState  *s = (CacheScanState *) arg;
	CachePruneEntry *e;
	const char *name;

	if (f->is_tmp)
	{
		if (tmp_abandoned(f, s->now))
			(void) remove_file(f->path, LOG);
		else
			s->total += f->st.st_size;
		return;
	}
	if (entry_expired(f, s->now))
	{
		if (remove_file(f->path, LOG))
			return;
	}
	if (s->nentries == s->cap)
	{
		s->cap = s->cap ? s->cap * 2 : 256;
		s->entries = s->entries ?
			repalloc_huge(s->entries, s->cap * sizeof(CachePruneEntry)) :
			MemoryContextAllocHuge(CurrentMemoryContext, s->cap * sizeof(CachePruneEntry));
	}
	e = &s->entries[s->nentries++];
	e->mtime = (pg_time_t) f->st.st_mtime;
	e->size = f->st.st_size;
	e->role = f->role;
	name = strrchr(f->path, '/') + 1;
	memcpy(e->key, name, SL_CACHE_KEY_HEX);
	e->key[SL_CACHE_KEY_HEX] = '\0';
	s->total += f->st.st_size;
}

static int
prune_entry_cmp(const void *a, const void *b)
{
	const CachePruneEntry *x = (const CachePruneEntry *) a;
	const CachePruneEntry *y = (const CachePruneEntry *) b;

	if (x->mtime != y->mtime)
		return x->mtime < y->mtime ? -1 : 1;
	return strcmp(x->key, y->key);
}

/*
 * Measures the whole cache, deletes expired entries and abandoned temporary
 * files, and deletes the oldest entries while the total is over limit
 * (bytes; -1 = none).  Trouble goes to the server log only.
 */
static void
scan_and_prune(int64 limit)
{
	MemoryContext scan_cxt;
	MemoryContext old;
	CacheScanState	s;

	scan_cxt = AllocSetContextCreate(CurrentMemoryContext,
									 "samplellm cache scan",
									 ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(scan_cxt);
	memset(&s, 0, sizeof(s));
	s.now = (pg_time_t) time(NULL);
	walk_all(LOG, false, scan_cb, &s);

	if (limit >= 0 && s.total > limit)
	{
		int64		target = (int64) (limit * SL_CACHE_PRUNE_TARGET);
		size_t		i;

		if (s.nentries > 1)
			qsort(s.entries, s.nentries, sizeof(CachePruneEntry), prune_entry_cmp);
		for (i = 0; i < s.nentries && s.total > target; i++)
		{
			char		path[MAXPGPATH];

			CHECK_FOR_INTERRUPTS();
			entry_path(path, s.entries[i].role, s.entries[i].key);
			if (remove_file(path, LOG))
				s.total -= s.entries[i].size;
		}
	}

	est_bytes = s.total;
	last_scan = s.now;
	MemoryContextSwitchTo(old);
	MemoryContextDelete(scan_cxt);
}

/* A store that failed: its temporary file goes, one WARNING says so. */
static void
write_failed(const char *tmp, int save_errno)
{
	unlink(tmp);
	errno = save_errno;
	ereport(cache_warn_level(),
			(errcode_for_file_access(),
			 errmsg("could not write samplellm cache file \"%s\": %m", tmp),
			 errdetail("The response is used but not kept for reuse.")));
}

/* Accounts for a stored entry of added bytes; scans and prunes when due. */
static void
account_put(int64 added)
{
	int64		limit = sl_cache_max_size_mb < 0 ? -1 :
		(int64) sl_cache_max_size_mb * 1024 * 1024;
	pg_time_t	now = (pg_time_t) time(NULL);

	if (est_bytes >= 0)
		est_bytes += added;

/* nothing to enforce: no scan needed */
	if (limit < 0 && sl_cache_max_age_s < 0)
		return;
	if (est_bytes >= 0 && (limit < 0 || est_bytes <= limit) &&
		now - last_scan < SL_CACHE_RESCAN_SECS && now >= last_scan)
		return;
	scan_and_prune(limit);
}

void
sl_cache_put(const char *url, const char *model, const char *body,
			 const char *response, size_t len)
{
	Oid			role = GetUserId();
	char		key[SL_CACHE_KEY_HEX + 1];
	char		dir[MAXPGPATH];
	char		path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	char		header[SL_CACHE_HEADER_MAX];
	int			hlen;
	FILE	   *fp;
	int			save_errno;

	if (!sl_cache_enabled || response == NULL || len >= MaxAllocSize)
		return;

	cache_key(role, url, model, body, key);
	entry_dir(dir, role, key);
	entry_path(path, role, key);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, MyProcPid);
	hlen = format_header(header, role, (long long) time(NULL), len,
						 body_crc(response, len), key);

	fp = AllocateFile(tmp, PG_BINARY_W);
	if (fp == NULL && errno == ENOENT)
	{
		/* first entry of this role and prefix; EEXIST is a concurrent mkdir */
		if (pg_mkdir_p(dir, pg_dir_create_mode) != 0 && errno != EEXIST)
		{
			ereport(cache_warn_level(),
					(errcode_for_file_access(),
					 errmsg("could not create directory \"%s\": %m", dir),
					 errdetail("The response is used but not kept for reuse.")));
			return;
		}
		fp = AllocateFile(tmp, PG_BINARY_W);
	}
	if (fp == NULL)
	{
		ereport(cache_warn_level(),
				(errcode_for_file_access(),
				 errmsg("could not create samplellm cache file \"%s\": %m", tmp),
				 errdetail("The response is used but not kept for reuse.")));
		return;
	}

	errno = 0;
	if (fwrite(header, 1, hlen, fp) != (size_t) hlen ||
		(len > 0 && fwrite(response, 1, len, fp) != len))
	{
		/* a short write without errno is a full disk */
		save_errno = errno ? errno : ENOSPC;
		FreeFile(fp);
		write_failed(tmp, save_errno);
		return;
	}
	if (FreeFile(fp) != 0)
	{
		write_failed(tmp, errno);
		return;
	}
	/* atomic: readers see the old entry or the new one, never a part */
	if (rename(tmp, path) != 0)
	{
		save_errno = errno;
		unlink(tmp);
		errno = save_errno;
		ereport(cache_warn_level(),
				(errcode_for_file_access(),
				 errmsg("could not rename samplellm cache file \"%s\" to \"%s\": %m",
						tmp, path),
				 errdetail("The response is used but not kept for reuse.")));
		return;
	}

	account_put((int64) hlen + (int64) len);
}

/* Clear callback: every entry goes; temporary files only when abandoned. */
static void
clear_cb(const CacheFile *f, void *arg)
{
	CacheClearState *c = (CacheClearState *) arg;

	if (f->is_tmp)
	{
		/* a fresh one belongs to a store in progress */
		if (tmp_abandoned(f, c->now))
			(void) remove_file(f->path, ERROR);
		return;
	}
	if (unlink(f->path) == 0)
		c->deleted++;
	else if (errno != ENOENT)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not remove samplellm cache file \"%s\": %m", f->path)));
}

PG_FUNCTION_INFO_V1(samplellm_cache_clear);

/*
 * samplellm_cache_clear() RETURNS bigint: deletes the current role's
 * entries (a superuser's call: every role's) and returns how many.
 */
Datum
samplellm_cache_clear(PG_FUNCTION_ARGS)
{
	CacheClearState	c;

	c.now = (pg_time_t) time(NULL);
	c.deleted = 0;
	if (superuser())
		walk_all(ERROR, true, clear_cb, &c);
	else
		walk_role(GetUserId(), ERROR, true, clear_cb, &c);

	/* this backend's size estimate is stale now */
	est_bytes = -1;
	PG_RETURN_INT64(c.deleted);
}

static void
stats_cb(const CacheFile *f, void *arg)
{
	CacheStatsState *s = (CacheStatsState *) arg;
	pg_time_t	mtime = (pg_time_t) f->st.st_mtime;

	if (f->is_tmp)
		return;
	s->entries++;
	s->bytes += f->st.st_size;
	if (entry_expired(f, s->now))
		s->expired++;
	if (s->entries == 1 || mtime < s->oldest)
		s->oldest = mtime;
	if (s->entries == 1 || mtime > s->newest)
		s->newest = mtime;
}

PG_FUNCTION_INFO_V1(samplellm_cache_stats);

/*
 * samplellm_cache_stats(OUT entries, OUT bytes, OUT expired, OUT oldest,
 * OUT newest): the entries on disk of the current role (a superuser's
 * call: of every role), expired ones included until they are deleted.
 */
Datum
samplellm_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5];
	CacheStatsState	s;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);

	memset(&s, 0, sizeof(s));
	s.now = (pg_time_t) time(NULL);
	if (superuser())
		walk_all(ERROR, false, stats_cb, &s);
	else
		walk_role(GetUserId(), ERROR, false, stats_cb, &s);

	memset(nulls, 0, sizeof(nulls));
	values[0] = Int64GetDatum(s.entries);
	values[1] = Int64GetDatum(s.bytes);
	values[2] = Int64GetDatum(s.expired);
	values[3] = TimestampTzGetDatum(time_t_to_timestamptz(s.oldest));
	values[4] = TimestampTzGetDatum(time_t_to_timestamptz(s.newest));
	nulls[3] = nulls[4] = (s.entries == 0);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
