-- cache: settings and SQL functions of the response cache, two roles' entries,
-- corrupt, expired and evicted entries, a store that fails.  Storing and
-- replaying responses is tested end to end (a rerun sends the simulator
-- no second request) by the run tests.

-- Earlier tests may have stored responses: start from an empty cache.
-- (This first call also loads the library, which defines the settings.)
SELECT samplellm_cache_clear() >= 0 AS cleared;

-- The settings, with their defaults, units and who may change them.
SELECT name, boot_val, unit, context, min_val, max_val
FROM pg_settings WHERE name LIKE 'samplellm.cache%' ORDER BY name;
SELECT * FROM samplellm_cache_stats();
SELECT samplellm_cache_clear() AS deleted;

-- Units and limits.
SET samplellm.cache_max_age = '1h';
SHOW samplellm.cache_max_age;
SET samplellm.cache_max_age = -1;
SHOW samplellm.cache_max_age;
SET samplellm.cache_max_age = -2;
SET samplellm.cache_max_size = '1GB';
SHOW samplellm.cache_max_size;
RESET samplellm.cache_max_age;
RESET samplellm.cache_max_size;

-- An ordinary role: no EXECUTE until granted, and only its own switch.
CREATE ROLE regress_cache_user;
SELECT has_function_privilege('regress_cache_user', 'samplellm_cache_clear()', 'EXECUTE') AS can_clear,
       has_function_privilege('regress_cache_user', 'samplellm_cache_stats()', 'EXECUTE') AS can_stats;
SET ROLE regress_cache_user;
SELECT samplellm_cache_clear();
SELECT * FROM samplellm_cache_stats();
SET samplellm.cache = off;
SHOW samplellm.cache;
RESET samplellm.cache;
SET samplellm.cache_max_age = '1h';
SET samplellm.cache_max_size = '1GB';
RESET ROLE;

-- Granted, it clears (and counts) its own entries only, while the
-- superuser's entries are there too.
GRANT EXECUTE ON FUNCTION samplellm_cache_clear(), samplellm_cache_stats() TO regress_cache_user;
GRANT EXECUTE ON FUNCTION samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) TO regress_cache_user;
GRANT SELECT ON clicks TO regress_cache_user;
SET samplellm.max_concurrency = 1;
SET samplellm.rows_per_call = 5;
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 31, resample => 'none');
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 32, resample => 'none');
SET ROLE regress_cache_user;
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 33, resample => 'none');
SELECT entries AS own_entries FROM samplellm_cache_stats();
RESET ROLE;
SELECT entries AS all_entries FROM samplellm_cache_stats();
SET ROLE regress_cache_user;
SELECT samplellm_cache_clear() AS deleted;
SELECT entries, bytes, expired, oldest, newest FROM samplellm_cache_stats();
RESET ROLE;
-- the superuser's entries are still there, and still replay
SELECT entries AS entries_left FROM samplellm_cache_stats();
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 31, resample => 'none');
SELECT sim_last_seq() = :seq_before AS replayed;
SELECT samplellm_cache_clear() AS superuser_cleared;

-- The files of the cache, for the checks below (paths relative to the data
-- directory; not echoed: role OIDs and keys vary).
CREATE FUNCTION cache_files() RETURNS SETOF text LANGUAGE sql AS $$
  SELECT 'pg_samplellm/cache/' || r || '/' || p || '/' || f
  FROM pg_ls_dir('pg_samplellm/cache') r, pg_ls_dir('pg_samplellm/cache/' || r) p,
       pg_ls_dir('pg_samplellm/cache/' || r || '/' || p) f
  WHERE f !~ '^\.' $$;
-- (adminpack's pg_file_write writes the bytes as given, in the data directory)
CREATE EXTENSION adminpack;
CREATE FUNCTION cache_overwrite(path text, contents text) RETURNS void LANGUAGE sql AS $$
  SELECT pg_file_unlink(path) FROM pg_stat_file(path, true) s WHERE s.size IS NOT NULL;
  SELECT pg_file_write(path, contents, false) $$;

-- Corrupt entries are misses, are deleted, and are stored afresh: garbage,
-- an entry cut after its header line, and one with a byte of its body
-- changed (same size: only the CRC-32C tells).
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 34, resample => 'none');
SELECT count(*) AS files FROM cache_files();
SELECT cache_overwrite(f, 'garbage') FROM cache_files() f;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 34, resample => 'none');
SELECT sim_last_seq() = :seq_before + 1 AS garbage_was_a_miss,
       (SELECT bool_and(encode(substring(pg_read_binary_file(f) FROM 1 FOR 15), 'escape') = 'samplellm-cache')
        FROM cache_files() f) AS stored_afresh;
SELECT cache_overwrite(f, split_part(pg_read_file(f), E'\n', 1) || E'\n') FROM cache_files() f;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 34, resample => 'none');
SELECT sim_last_seq() = :seq_before + 1 AS truncated_was_a_miss;
SELECT (pg_stat_file(f)).size AS size_before FROM cache_files() f \gset
-- (the body's first byte after the header line, swapped for another)
SELECT cache_overwrite(f, split_part(c, E'\n', 1) || E'\n' ||
         overlay(substring(c FROM length(split_part(c, E'\n', 1)) + 2)
                 PLACING CASE WHEN substring(c FROM length(split_part(c, E'\n', 1)) + 2 FOR 1) = '{' THEN '[' ELSE '{' END
                 FROM 1 FOR 1))
FROM cache_files() f, pg_read_file(f) c;
SELECT (pg_stat_file(f)).size = :size_before AS same_size FROM cache_files() f;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 34, resample => 'none');
SELECT sim_last_seq() = :seq_before + 1 AS changed_byte_was_a_miss;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 34, resample => 'none');
SELECT sim_last_seq() = :seq_before AS then_replayed;
SELECT samplellm_cache_clear() AS cleared;

-- Expiry: an entry older than samplellm.cache_max_age is counted as expired,
-- is a miss, and is replaced.
SET samplellm.cache_max_age = 1;
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 35, resample => 'none');
SELECT pg_sleep(2.1);
SELECT entries, expired FROM samplellm_cache_stats();
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 35, resample => 'none');
SELECT sim_last_seq() = :seq_before + 1 AS expired_was_a_miss;
SELECT entries, expired FROM samplellm_cache_stats();
RESET samplellm.cache_max_age;
SELECT samplellm_cache_clear() AS cleared;

-- Eviction: with samplellm.cache_max_size = 1MB and answers padded to 0.4 MiB
-- each, the third store goes over the limit and the oldest entry goes (the
-- total ends under 90 % of the limit); the two newest still replay.
SET samplellm.cache_max_size = '1MB';
SET samplellm.model = 'sim?huge=0.4';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 36, resample => 'none');
SELECT pg_sleep(1.1);
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 37, resample => 'none');
SELECT entries AS before_the_limit FROM samplellm_cache_stats();
SELECT pg_sleep(1.1);
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 38, resample => 'none');
SELECT entries, bytes <= 0.9 * 1024 * 1024 AS under_90_percent FROM samplellm_cache_stats();
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 37, resample => 'none');
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 38, resample => 'none');
SELECT sim_last_seq() = :seq_before AS newest_two_replayed;
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 36, resample => 'none');
SELECT sim_last_seq() = :seq_before + 1 AS oldest_was_evicted;
RESET samplellm.model;
RESET samplellm.cache_max_size;
SELECT samplellm_cache_clear() AS cleared;

-- A store that fails (here the role's cache folder is a file) never fails
-- the call: the rows come back, nothing is kept, and the next identical
-- call pays again.  One WARNING per statement says so (shown by its
-- SQLSTATE only: its text names paths that vary).
SELECT oid AS user_oid FROM pg_roles WHERE rolname = 'regress_cache_user' \gset
SELECT cache_overwrite('pg_samplellm/cache/' || :user_oid, 'not a folder');
SELECT sim_last_seq() AS seq_before \gset
SET ROLE regress_cache_user;
SET samplellm.rows_per_call = 2;   -- three answers to store, one WARNING
\set VERBOSITY sqlstate
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 39, resample => 'none');
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 39, resample => 'none');
\set VERBOSITY default
SET samplellm.rows_per_call = 5;
RESET ROLE;
SELECT sim_last_seq() = :seq_before + 6 AS both_calls_paid;
SELECT pg_file_unlink('pg_samplellm/cache/' || :user_oid) AS folder_file_removed;
RESET samplellm.rows_per_call;
RESET samplellm.max_concurrency;

REVOKE EXECUTE ON FUNCTION samplellm_cache_clear(), samplellm_cache_stats() FROM regress_cache_user;
REVOKE EXECUTE ON FUNCTION samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) FROM regress_cache_user;
REVOKE SELECT ON clicks FROM regress_cache_user;
DROP ROLE regress_cache_user;
DROP FUNCTION cache_files();
DROP FUNCTION cache_overwrite(text, text);
DROP EXTENSION adminpack;
