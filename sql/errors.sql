-- errors: every bad input gets a clear error before any request is sent.
\set VERBOSITY default
SELECT sim_last_seq() AS seq_before \gset

-- n
SELECT * FROM samplellm_generate(NULL::clicks, NULL);
SELECT * FROM samplellm_generate(NULL::clicks, 0);
SELECT * FROM samplellm_generate(NULL::clicks, -5);
SET samplellm.max_rows = 1000;
SELECT * FROM samplellm_generate(NULL::clicks, 1001);
RESET samplellm.max_rows;
SELECT * FROM samplellm_generate(NULL::clicks, 5, max_seed_rows => 0);

-- source
SELECT * FROM samplellm_generate(NULL::int, 5);
CREATE TYPE pair AS (a int, b int);
SELECT * FROM samplellm_generate(NULL::pair, 5);
CREATE TABLE empty_t (a int);
SELECT * FROM samplellm_generate(NULL::empty_t, 5);
CREATE TABLE arr_t (a int, tags text[]);
INSERT INTO arr_t VALUES (1, '{x}');
SELECT * FROM samplellm_generate(NULL::arr_t, 5);
SELECT * FROM samplellm_generate(NULL::clicks, 5, label => 'no_such_column');

-- privileges: the seeds are read as the caller
CREATE ROLE sl_reader;
GRANT EXECUTE ON FUNCTION samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) TO sl_reader;
SET ROLE sl_reader;
SELECT * FROM samplellm_generate(NULL::clicks, 5);
RESET ROLE;
GRANT SELECT (user_id, device) ON clicks TO sl_reader;
SET ROLE sl_reader;
SELECT * FROM samplellm_generate(NULL::clicks, 5);
RESET ROLE;

-- settings: only a superuser decides where rows go, and nobody sees the key
REVOKE ALL ON clicks FROM sl_reader;
SET ROLE sl_reader;
SET samplellm.endpoint = 'http://127.0.0.1:9/v1';
SET samplellm.api_key = 'sk-test-secret';
SHOW samplellm.endpoint;
SHOW samplellm.api_key;
SELECT current_setting('samplellm.api_key');
SELECT count(*) FROM pg_settings WHERE name IN ('samplellm.api_key', 'samplellm.endpoint');
ALTER ROLE sl_reader SET samplellm.endpoint = 'http://127.0.0.1:9/v1';
RESET ROLE;
-- a key stored per role would be readable in pg_db_role_setting
ALTER ROLE sl_reader SET samplellm.api_key = 'sk-test-secret';
SELECT count(*) FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') LIKE '%sk-test%';
SET samplellm.api_key = 'sk-test-secret';
SHOW samplellm.api_key;
SELECT current_setting('samplellm.api_key');
RESET samplellm.api_key;
SET samplellm.endpoint = 'ftp://example.com/v1';
SET samplellm.endpoint = 'http://user:pass@127.0.0.1/v1';
SET samplellm.endpoint = 'http://';

-- endpoint and model unset
SET samplellm.endpoint = '';
SELECT * FROM samplellm_generate(NULL::clicks, 5);
RESET samplellm.endpoint;
SET samplellm.model = '';
SELECT * FROM samplellm_generate(NULL::clicks, 5);
RESET samplellm.model;

-- none of the above sent a request
SELECT sim_last_seq() = :seq_before AS no_request_sent;

-- endpoint unreachable: nothing listens on port 1
SET samplellm.endpoint = 'http://127.0.0.1:1/v1';
SET samplellm.max_retries = 0;
SELECT * FROM samplellm_generate(NULL::clicks, 5);
RESET samplellm.endpoint;
RESET samplellm.max_retries;

-- upstream refusals are not retried, and never echo the key
SET samplellm.api_key = 'sk-test-secret-0123456789';
SET samplellm.model = 'sim?status=401';
SELECT * FROM samplellm_generate(NULL::clicks, 5);
SET samplellm.model = 'sim?status=403';
SELECT * FROM samplellm_generate(NULL::clicks, 5);
SET samplellm.model = 'sim?status=404';
SELECT * FROM samplellm_generate(NULL::clicks, 5);
SELECT count(*) AS requests_for_401 FROM sim_requests() r
WHERE (r->>'seq')::bigint > :seq_before AND r->>'model' = 'sim?status=401';
RESET samplellm.api_key;

-- a malformed response is counted, and the call stops early with the reasons
-- (one request at a time, so the number of calls is deterministic)
SET samplellm.max_concurrency = 1;
SET samplellm.model = 'sim?content=invalid';
SELECT * FROM samplellm_generate(NULL::clicks, 5);
SET samplellm.model = 'sim?content=html';
SELECT * FROM samplellm_generate(NULL::clicks, 5);
SET samplellm.model = 'sim?content=null';
SELECT * FROM samplellm_generate(NULL::clicks, 5);
RESET samplellm.model;
RESET samplellm.max_concurrency;

REVOKE ALL ON FUNCTION samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) FROM sl_reader;
DROP ROLE sl_reader;

-- stage 2 options are checked before any request
SELECT sim_last_seq() AS seq_before \gset
SELECT * FROM samplellm_generate(NULL::clicks, 5, resample => 'bogus');
SELECT * FROM samplellm_generate(NULL::clicks, 5, oversample => 0.5);
CREATE TABLE many_labels (id int, lab int);
INSERT INTO many_labels SELECT i, i FROM generate_series(1, 100) i;
SELECT * FROM samplellm_generate(NULL::many_labels, 5, label => 'lab');
SELECT sim_last_seq() = :seq_before AS no_request_sent;
