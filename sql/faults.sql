-- faults: every transport and envelope fault of docs/reliability.md's list,
-- driven through the simulator (a test double, not an LLM).  Each case shows
-- the error and its SQLSTATE, and inserts nothing: failing calls all insert
-- into fault_sink, which is still empty at the end.  The backend surviving is
-- checked by test/run.sh (no "terminated by signal" in the server log), and
-- the fake API key set below never appearing in this file's output or the
-- server log by test/check_faults.sh.
--
-- Covered elsewhere, not repeated here:
--   connection refused with no retries, HTML 200, invalid JSON, content null,
--   401/403/404 texts: sql/errors.sql
--   prose and code fences, finish_reason "length", 429 Retry-After seconds,
--   500/502 then success, 503 forever (retries used up), insufficient_quota,
--   statement_timeout while the server stalls, too few rows (rows=2 and the
--   call cap): sql/generate.sql
--   extra, missing and duplicate keys, wrong types, out-of-range values,
--   varchar(n) overflow, bad dates, invalid enum labels, NULL in NOT NULL,
--   CHECK and domain violations (every rejection reason): sql/stage1.sql
--   bigints beyond 2^53 survive exactly: sql/types.sql
--   black-holed connect (the connect timeout), query cancel during connect
--   and during retry backoff, pg_terminate_backend mid-transfer:
--   test/check_faults.sh (they need a second simulator port or a second
--   session)
\set VERBOSITY default
SET client_min_messages = warning;
-- the guard: a call that hangs fails this test visibly instead of blocking it
SET statement_timeout = '20s';
SET samplellm.max_concurrency = 1;   -- deterministic call counts
SET samplellm.max_retries = 1;
-- replaying stored answers would hide the faults (loaded first: a renamed
-- setting is then an error, not a silent placeholder)
LOAD 'samplellm';
SET samplellm.cache = off;
-- a recognizable fake key, built so that no statement text contains it
SELECT set_config('samplellm.api_key', 'sk-fake-' || 'faultkey-' || md5('samplellm faults'), false) IS NOT NULL AS key_set;
CREATE TABLE fault_sink (LIKE clicks);
SELECT sim_last_seq() AS seq_start \gset

-- connection refused, retried once (nothing listens on port 1)
SET samplellm.endpoint = 'http://127.0.0.1:1/v1';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 101, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
RESET samplellm.endpoint;

-- idle after the request: the server reads it and says nothing;
-- samplellm.request_timeout ends each attempt
SET samplellm.request_timeout = '1s';
SET samplellm.max_retries = 0;
SET samplellm.model = 'sim?stall=30';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 102, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
-- slow drip: headers at once, then the body at 20 bytes per second; a
-- whole (non-streamed) answer has samplellm.request_timeout to arrive (a
-- stream that keeps sending is alive: sql/servers.sql)
SET samplellm.stream = off;
SET samplellm.model = 'sim?drip=20';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 103, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
RESET samplellm.stream;
RESET samplellm.request_timeout;
SET samplellm.max_retries = 1;

-- (whole answers here: a stream cut after complete rows keeps them, and
-- its limit is on the content; sql/servers.sql)
SET samplellm.stream = off;
-- the connection ends early: after the headers, after half the body
-- (Content-Length promised more), and with a reset (RST) mid-body
SET samplellm.model = 'sim?close=headers';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 104, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.model = 'sim?close=short';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 105, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.model = 'sim?close=reset';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 106, resample => 'none');
\echo :LAST_ERROR_SQLSTATE

-- a 5 MB answer: over samplellm.max_response_kb (1 MB), refused while it
-- arrives; the same answer is fine under a larger limit
SET samplellm.model = 'sim?huge=5';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 107, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.max_response_kb = '8MB';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 107, resample => 'none');
RESET samplellm.max_response_kb;
-- a gzip bomb (16 MB of JSON in 16 kB): samplellm never asks for
-- compression, so curl does not inflate it and the bytes are not UTF-8 text
SET samplellm.model = 'sim?gzip=16';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 108, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
RESET samplellm.stream;

-- broken envelopes: an empty 200, "choices": [], content null with a refusal
SET samplellm.model = 'sim?content=empty';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 109, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.model = 'sim?content=choices_empty';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 110, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.model = 'sim?content=refusal';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 111, resample => 'none');
\echo :LAST_ERROR_SQLSTATE

-- hostile bytes: \u0000 inside a row's string value and at the end of the
-- content string, invalid UTF-8, and values nested 10,000 levels deep (in a
-- row, and in the envelope): counted as unusable answers, never a crash
SET samplellm.model = 'sim?nul=row';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 112, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.model = 'sim?nul=envelope';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 113, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.model = 'sim?badutf8=1';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 114, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.model = 'sim?deep=10000';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 115, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.model = 'sim?deepenv=10000';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 116, resample => 'none');
\echo :LAST_ERROR_SQLSTATE

-- too few rows per answer (more calls) and too many (the first n are kept)
SET samplellm.model = 'sim?rows=1';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 117, resample => 'none');
SELECT samplellm_last_run()->'calls' AS calls;
SET samplellm.model = 'sim?rows=200';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 118, resample => 'none');

-- 429 then success: Retry-After in seconds, retry-after-ms, and an HTTP date;
-- the wait asked for is honoured (at least that long; no upper bound shown)
SET samplellm.model = 'sim?fail=429:1&retry_after=1';
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 119, resample => 'none');
SELECT clock_timestamp() - :'t0' >= interval '1 s' AS waited,
       samplellm_last_run()->'rate_limited' AS rate_limited;
SET samplellm.model = 'sim?fail=429:1&retry_after_ms=700';
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 120, resample => 'none');
SELECT clock_timestamp() - :'t0' >= interval '0.7 s' AS waited,
       samplellm_last_run()->'rate_limited' AS rate_limited;
SET samplellm.model = 'sim?fail=429:1&retry_after_date=2';
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 121, resample => 'none');
SELECT clock_timestamp() - :'t0' >= interval '1 s' AS waited,
       samplellm_last_run()->'rate_limited' AS rate_limited;

-- a Retry-After longer than the statement's remaining time fails at once,
-- with a clear error, in each of the three forms (the seconds left vary: N)
CREATE FUNCTION fault_error(model text, call_seed bigint)
RETURNS TABLE (err_code text, err_message text, err_detail text, under_2s boolean)
LANGUAGE plpgsql AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM set_config('samplellm.model', model, true);
  BEGIN
    INSERT INTO fault_sink
    SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => call_seed, resample => 'none');
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS err_code = RETURNED_SQLSTATE, err_message = MESSAGE_TEXT,
                            err_detail = PG_EXCEPTION_DETAIL;
  END;
  err_detail := regexp_replace(err_detail, '\d+ s left', 'N s left');
  -- an HTTP date has whole seconds: 3600 s from now may read 3599 s later
  err_detail := replace(err_detail, 'wait 3599 s', 'wait 3600 s');
  under_2s := clock_timestamp() - t0 < interval '2 s';
  RETURN NEXT;
END $$;
SET statement_timeout = '5s';
SELECT * FROM fault_error('sim?fail=429:1&retry_after=3600', 122);
SELECT * FROM fault_error('sim?fail=429:1&retry_after_ms=3600000', 123);
SELECT * FROM fault_error('sim?fail=429:1&retry_after_date=3600', 124);
SET statement_timeout = '20s';

-- 503 and 504, then success; 503 forever (after one retry)
SET samplellm.max_retries = 2;
SET samplellm.model = 'sim?fail=503:1,504:1';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 125, resample => 'none');
SELECT samplellm_last_run()->'retries' AS retries;
SET samplellm.max_retries = 1;
SET samplellm.model = 'sim?fail=503:-1';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 126, resample => 'none');
\echo :LAST_ERROR_SQLSTATE

-- 400 context length: tried once more without response_format, then a
-- clear error; never retried beyond that
SELECT sim_last_seq() AS seq_before \gset
SET samplellm.model = 'sim?status=400';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 127, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SELECT (r->'body') ? 'response_format' AS with_response_format
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before ORDER BY (r->>'seq')::int;

-- 401, 403 and 404 are not retried (texts in sql/errors.sql): SQLSTATEs
SET samplellm.model = 'sim?status=401';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 128, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.model = 'sim?status=403';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 129, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SET samplellm.model = 'sim?status=404';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 130, resample => 'none');
\echo :LAST_ERROR_SQLSTATE

-- cancel: statement_timeout while waiting for the answer and while the body
-- drips in; the session is usable afterwards.  (Connect and backoff:
-- test/check_faults.sh.  samplellm never sleeps past the statement deadline,
-- so statement_timeout cannot fire in a backoff: a wait that would pass it
-- fails at once, as above.)
SET statement_timeout = '1s';
SET samplellm.model = 'sim?stall=30';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 131, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SELECT 1 AS session_usable;
SET samplellm.model = 'sim?drip=5';
INSERT INTO fault_sink SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 132, resample => 'none');
\echo :LAST_ERROR_SQLSTATE
SELECT 1 AS session_usable;
SET statement_timeout = '20s';

-- nothing was inserted by any failing call, and every request carried the
-- key (so a leak would have had something to leak)
SELECT count(*) AS rows_in_sink FROM fault_sink;
SELECT count(*) > 30 AS many_requests,
       bool_and(r->>'authorization' = 'Bearer sk-fake-faultkey-' || md5('samplellm faults')) AS key_sent
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_start;

DROP FUNCTION fault_error(text, bigint);
DROP TABLE fault_sink;
RESET samplellm.model;
RESET samplellm.api_key;
RESET samplellm.max_retries;
RESET samplellm.max_concurrency;
RESET statement_timeout;
