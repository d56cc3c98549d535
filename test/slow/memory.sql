-- test/slow/memory.sql: the fixtures and the call loop of memory.sh, which
-- runs this file and then, phase after phase in one session, mem_loop for
-- the warm-up calls, a snapshot, mem_loop for the rest, a snapshot (the
-- backend's memory and file descriptors; memory.sh reads the figures from
-- mem_snap).  Every call is its own transaction (COMMIT in the procedure's
-- loop), as separate statements of an application would be.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET samplellm.summary_level = debug1;
SET samplellm.cache = off;            -- every call goes through HTTP and parse
SET samplellm.epochs = 3;             -- stage 2 trains, briefly
SET samplellm.max_retries = 0;
SET samplellm.endpoint = :'sim_url';
SELECT pg_backend_pid() AS bpid \gset
\setenv BPID :bpid

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

-- Phases (p_kind): 'ok' (LLM rows, no stage 2), 'fail' (the failures below,
-- in turn), 'stage2' (LLM rows and stage 2 with the label: f_T, Integrated
-- Hessians, f_S, weights, draw), 'builtin' (the built-in generator, then
-- stage 2), 'cache' (samplellm.cache = on; ten seeds, so after the first ten
-- calls every call is a cache hit: read, parse, validate), 'evaluate'
-- (samplellm_evaluate of a fixed synthetic table, with the label).
-- Failures: 'http500' (status 500, no retry), 'invalid' (content
-- '{"rows": [ {broken'), 'check' (a CHECK constraint raises inside the
-- validation subtransaction: every row rejected, shortfall error),
-- 'internal' (the CHECK raises XX000, which validation re-throws mid-call).
CREATE PROCEDURE mem_loop(p_kind text, p_from int, p_to int, INOUT ok int, INOUT failed int)
LANGUAGE plpgsql AS $$
DECLARE
  kinds text[] := ARRAY['http500', 'invalid', 'check', 'internal'];
  k text;
  cnt bigint;
  want bigint;
BEGIN
  PERFORM set_config('samplellm.provider', CASE p_kind WHEN 'builtin' THEN 'builtin' ELSE 'openai' END, false);
  PERFORM set_config('samplellm.cache', CASE p_kind WHEN 'cache' THEN 'on' ELSE 'off' END, false);
  FOR i IN p_from .. p_to LOOP
    k := CASE WHEN p_kind = 'fail' THEN kinds[1 + i % 4] ELSE p_kind END;
    PERFORM set_config('samplellm.model', CASE k
        WHEN 'http500' THEN 'sim?status=500'
        WHEN 'invalid' THEN 'sim?content=invalid'
        ELSE 'sim' END, false);
    PERFORM set_config('memtest.boom', CASE k
        WHEN 'check' THEN 'P0001' WHEN 'internal' THEN 'XX000' ELSE '' END, false);
    BEGIN
      IF k IN ('stage2', 'builtin') THEN
        want := CASE k WHEN 'builtin' THEN 20 ELSE 5 END;
        SELECT count(*) INTO cnt
        FROM samplellm_generate(NULL::mem_t, want::int, seed => i, label => 'clicked');
      ELSIF k = 'cache' THEN
        want := 5;
        SELECT count(*) INTO cnt
        FROM samplellm_generate(NULL::mem_t, 5, seed => 1 + i % 10, resample => 'none');
      ELSIF k = 'evaluate' THEN
        want := 1;
        SELECT least(count(*), 1) INTO cnt
        FROM samplellm_evaluate('mem_t', 'mem_syn', label => 'clicked', seed => i);
      ELSE
        want := 5;
        SELECT count(*) INTO cnt
        FROM samplellm_generate(NULL::mem_t, 5, seed => i, resample => 'none');
      END IF;
      IF cnt <> want THEN
        RAISE EXCEPTION 'call % returned % rows', i, cnt;
      END IF;
      ok := ok + 1;
    EXCEPTION WHEN OTHERS THEN
      IF p_kind <> 'fail' THEN
        RAISE WARNING '% call % failed: %', p_kind, i, SQLERRM;
      END IF;
      failed := failed + 1;
      INSERT INTO mem_errors VALUES (k, SQLSTATE, left(SQLERRM, 60));
    END;
    COMMIT;
  END LOOP;
END $$;

-- the fixed synthetic table of the evaluate phase
SET samplellm.model = 'sim';
CREATE TABLE mem_syn AS
SELECT * FROM samplellm_generate(NULL::mem_t, 100, seed => 100000, resample => 'none');

SELECT mem_snap('start', 0, 0, 0);
\! echo "start $(ls -l /proc/$BPID/fd | grep -c socket:) $(ls -l /proc/$BPID/fd | tail -n +2 | grep -vc "$PGDATA_DIR/")" >> "$SOCKLOG"
