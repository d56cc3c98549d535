-- transport: promises of the HTTP side the other tests leave out: the key
-- file is read at each call, redirects are never followed, and the token
-- budget of a statement stops the requests.
SET client_min_messages = warning;
SET samplellm.max_concurrency = 1;
LOAD 'samplellm';            -- its settings are known from here on
SET samplellm.cache = off;   -- every call must reach the simulator

-- samplellm.api_key_file (reloaded, never SET): a path relative to the data
-- directory, holding a key this file writes and rewrites between calls.
-- The simulator answers 401 unless the request carries the key it expects.
CREATE FUNCTION write_key_file(contents text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  -- (CSV: a backslash stays one, a line break is a real one)
  EXECUTE format('COPY (SELECT %L) TO %L (FORMAT csv)', contents,
                 current_setting('data_directory') || '/regress_transport_key');
END $$;
SELECT write_key_file('sk-file-' || 'one');
ALTER SYSTEM SET samplellm.api_key_file = 'regress_transport_key';
SELECT pg_reload_conf();
SELECT pg_sleep(1);
SHOW samplellm.api_key_file;
SELECT sim_last_seq() AS seq_before \gset
SET samplellm.model = 'sim?auth=sk-file-one';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 1, resample => 'none');
-- rewritten, no reload: the next call sends the new key
SELECT write_key_file('sk-file-' || 'two');
SET samplellm.model = 'sim?auth=sk-file-two';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 2, resample => 'none');
SELECT r->>'authorization' AS sent, r->>'model' AS model
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before ORDER BY (r->>'seq')::int;
-- a wrong key fails clearly, is not retried, and is not shown, not even
-- the part after a character no token has (the simulator echoes it)
SELECT write_key_file('sk-file-' || 'wrong\' || 'tail');
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 3, resample => 'none');
SELECT sim_last_seq() - :seq_before AS requests_sent;
-- a file that does not hold one key is refused before any request
SELECT write_key_file(E'sk-file-one\nsk-file-two');
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 4, resample => 'none');
SELECT sim_last_seq() - :seq_before AS requests_sent;
RESET samplellm.model;
ALTER SYSTEM RESET samplellm.api_key_file;
SELECT pg_reload_conf();
SELECT pg_sleep(1);
SHOW samplellm.api_key_file;
DROP FUNCTION write_key_file(text);

-- redirects are never followed: the endpoint's 307 is the answer, and no
-- request reaches the URL it points to
SET samplellm.model = 'sim?redirect=307';
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 5, resample => 'none');
SELECT count(*) AS requests, count(*) FILTER (WHERE r->>'path' LIKE '%redirected=1%') AS followed
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before;
SET samplellm.model = 'sim?redirect=301';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 6, resample => 'none');
RESET samplellm.model;

-- samplellm.max_tokens_per_statement (superuser): the requests stop once
-- the statement's prompt + completion tokens reach it, with the shortfall
-- error; nothing is returned.  A budget that suffices changes nothing.
SET samplellm.rows_per_call = 5;
SET samplellm.max_tokens_per_statement = 4000;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 40, seed => 7, resample => 'none');
SELECT sim_last_seq() - :seq_before < 8 AS stopped_before_the_eight_calls_needed,
       (samplellm_last_run()->>'prompt_tokens')::int + (samplellm_last_run()->>'completion_tokens')::int
         BETWEEN 4000 AND 4000 + 3000 AS spent_about_the_budget,
       samplellm_last_run()->>'status' AS status;
SET samplellm.max_tokens_per_statement = 1000000;
SELECT count(*) FROM samplellm_generate(NULL::clicks, 40, seed => 7, resample => 'none');
RESET samplellm.max_tokens_per_statement;
RESET samplellm.rows_per_call;
-- only a superuser may raise it
CREATE ROLE regress_transport_user;
SET ROLE regress_transport_user;
SET samplellm.max_tokens_per_statement = 0;
RESET ROLE;
DROP ROLE regress_transport_user;
RESET samplellm.cache;
RESET samplellm.max_concurrency;
