-- test/slow/memory.sql: 1,000 successful and 1,000 failing samplellm calls in
-- one session, with the backend's memory and file descriptors recorded after
-- call 100 and call 1,000 of each kind (run by memory.sh, which reads the
-- figures from mem_snap).  Every call is its own transaction (COMMIT in the
-- procedure's loop), as separate statements of an application would be.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET samplellm.summary_level = debug1;
SET samplellm.cache = off;            -- every call goes through HTTP and parse
SET samplellm.max_retries = 0;
SET samplellm.endpoint = :'sim_url';
SELECT pg_backend_pid() AS bpid \gset
\setenv BPID :bpid
\! echo "start $(ls -l /proc/$BPID/fd | grep -c socket:) $(ls -l /proc/$BPID/fd | tail -n +2 | grep -vc "$PGDATA_DIR/")" >> "$SOCKLOG"

-- raises inside the validation subtransaction when memtest.boom says so
CREATE FUNCTION mem_boom(numeric) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  c text := current_setting('memtest.boom', true);
BEGIN
  IF c = 'P0001' THEN RAISE EXCEPTION 'boom' USING ERRCODE = 'P0001'; END IF;
  IF c = 'XX000' THEN RAISE EXCEPTION 'internal boom' USING ERRCODE = 'XX000'; END IF;
  RETURN true;
END $$;

CREATE TABLE mem_t (
    id      integer NOT NULL,
    device  text NOT NULL,
    price   numeric(6,2) NOT NULL CHECK (mem_boom(price)),
    clicked boolean NOT NULL
);
INSERT INTO mem_t
SELECT i, (ARRAY['mobile', 'desktop', 'tablet'])[1 + i % 3],
       round((5 + (i * 37) % 90)::numeric, 2), i % 5 = 0
FROM generate_series(1, 200) i;

CREATE TABLE mem_snap (label text, calls int, rss_kb bigint, anon_kb bigint, shmem_kb bigint, file_kb bigint,
                       fds int, ctx_total bigint, ctx_used bigint, ctx_count int,
                       ok int, failed int, at timestamptz);

CREATE TABLE mem_errors (kind text, sqlstate text, message text);

CREATE FUNCTION mem_snap(p_label text, p_calls int, p_ok int, p_failed int)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO mem_snap
  SELECT p_label, p_calls,
         (regexp_match(s, 'VmRSS:\s+(\d+)'))[1]::bigint,
         (regexp_match(s, 'RssAnon:\s+(\d+)'))[1]::bigint,
         (regexp_match(s, 'RssShmem:\s+(\d+)'))[1]::bigint,
         (regexp_match(s, 'RssFile:\s+(\d+)'))[1]::bigint,
         (SELECT count(*) FROM pg_ls_dir('/proc/self/fd')) - 1,  -- minus the listing's own
         (SELECT sum(total_bytes) FROM pg_backend_memory_contexts),
         (SELECT sum(used_bytes) FROM pg_backend_memory_contexts),
         (SELECT count(*) FROM pg_backend_memory_contexts),
         p_ok, p_failed, clock_timestamp()
  FROM pg_read_file('/proc/self/status') s
$$;

-- kind: 'ok', or a failure: 'http500' (status 500, no retry), 'invalid'
-- (content '{"rows": [ {broken'), 'check' (a CHECK constraint raises inside
-- the validation subtransaction: every row rejected, shortfall error),
-- 'internal' (the CHECK raises XX000, which validation re-throws mid-call).
CREATE PROCEDURE mem_loop(p_kind text, p_from int, p_to int, INOUT ok int, INOUT failed int)
LANGUAGE plpgsql AS $$
DECLARE
  kinds text[] := ARRAY['http500', 'invalid', 'check', 'internal'];
  k text;
  cnt bigint;
BEGIN
  FOR i IN p_from .. p_to LOOP
    k := CASE WHEN p_kind = 'ok' THEN 'ok' ELSE kinds[1 + i % 4] END;
    PERFORM set_config('samplellm.model', CASE k
        WHEN 'http500' THEN 'sim?status=500'
        WHEN 'invalid' THEN 'sim?content=invalid'
        ELSE 'sim' END, false);
    PERFORM set_config('memtest.boom', CASE k
        WHEN 'check' THEN 'P0001' WHEN 'internal' THEN 'XX000' ELSE '' END, false);
    BEGIN
      SELECT count(*) INTO cnt
      FROM samplellm_generate(NULL::mem_t, 5, seed => i, resample => 'none');
      IF cnt <> 5 THEN
        RAISE EXCEPTION 'call % returned % rows', i, cnt;
      END IF;
      ok := ok + 1;
    EXCEPTION WHEN OTHERS THEN
      IF k = 'ok' THEN
        RAISE WARNING 'successful call % failed: %', i, SQLERRM;
      END IF;
      failed := failed + 1;
      INSERT INTO mem_errors VALUES (k, SQLSTATE, left(SQLERRM, 60));
    END;
    COMMIT;
  END LOOP;
END $$;

SELECT mem_snap('start', 0, 0, 0);
CALL mem_loop('ok', 1, 100, 0, 0) \gset ok_
SELECT mem_snap('ok', 100, :ok_ok, :ok_failed);
\! echo "ok_100 $(ls -l /proc/$BPID/fd | grep -c socket:) $(ls -l /proc/$BPID/fd | tail -n +2 | grep -vc "$PGDATA_DIR/")" >> "$SOCKLOG"
CALL mem_loop('ok', 101, 1000, :ok_ok, :ok_failed) \gset ok_
SELECT mem_snap('ok', 1000, :ok_ok, :ok_failed);
\! echo "ok_1000 $(ls -l /proc/$BPID/fd | grep -c socket:) $(ls -l /proc/$BPID/fd | tail -n +2 | grep -vc "$PGDATA_DIR/")" >> "$SOCKLOG"
CALL mem_loop('fail', 1, 100, 0, 0) \gset f_
SELECT mem_snap('fail', 100, :f_ok, :f_failed);
\! echo "fail_100 $(ls -l /proc/$BPID/fd | grep -c socket:) $(ls -l /proc/$BPID/fd | tail -n +2 | grep -vc "$PGDATA_DIR/")" >> "$SOCKLOG"
CALL mem_loop('fail', 101, 1000, :f_ok, :f_failed) \gset f_
SELECT mem_snap('fail', 1000, :f_ok, :f_failed);
\! echo "fail_1000 $(ls -l /proc/$BPID/fd | grep -c socket:) $(ls -l /proc/$BPID/fd | tail -n +2 | grep -vc "$PGDATA_DIR/")" >> "$SOCKLOG"
SELECT set_config('memtest.boom', '', false);
\pset format unaligned
\pset fieldsep ' | '
\pset footer off
\echo errors by kind (kind | sqlstate | first message | count):
SELECT kind, sqlstate, min(message), count(*) FROM mem_errors GROUP BY 1, 2 ORDER BY 1, 2;
