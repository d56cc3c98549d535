-- servers: local model servers with their defaults (issue 16).  Streaming
-- (server-sent events) with fallbacks, a stream cut after complete rows,
-- silence versus queueing, capacity discovery and the AIMD window, against
-- the simulator (a test double, not an LLM) and a second one with
-- llama.cpp's defaults: one slot, a queue, /props and /slots, paced tokens.
\getenv llama_url SAMPLELLM_LLAMA_SIM_URL
SET client_min_messages = warning;
-- every call below must reach the server: no replay from the cache
SET samplellm.cache = off;
SET samplellm.rows_per_call = 5;
CREATE TABLE srv (
    id     integer NOT NULL,
    kind   text NOT NULL,
    amount numeric(6,2),
    day    date,
    code   varchar(4)
);
INSERT INTO srv
SELECT i, (ARRAY['a', 'b', 'c'])[1 + i % 3], CASE WHEN i % 7 = 0 THEN NULL ELSE (i * 13 % 500) / 4.0 END,
       date '2024-01-01' + i % 60, 'k' || i % 50
FROM generate_series(1, 120) i;
CREATE FUNCTION srv_last(n int) RETURNS SETOF jsonb LANGUAGE sql AS
  $$ SELECT r FROM sim_requests() r WHERE r->>'path' LIKE '%chat/completions'
     ORDER BY (r->>'seq')::int DESC LIMIT n $$;

-- 1. Streaming by default: stream with include_usage, the events parsed into
-- rows, the usage chunk's tokens counted
SELECT count(*) FROM samplellm_generate(NULL::srv, 10, seed => 1, resample => 'none');
SELECT r->'body'->'stream' AS stream, r->'body'->'stream_options' AS stream_options
FROM srv_last(1) r;
SELECT s->'streaming' AS streaming, s->'stream_usage' AS stream_usage,
       (s->>'streamed')::int = (samplellm_last_run()->>'calls')::int AS every_answer_streamed,
       (samplellm_last_run()->>'prompt_tokens')::int > 0 AS usage_counted,
       (samplellm_last_run()->>'retries')::int AS retries
FROM (SELECT samplellm_last_run()->'server' AS s) x;

-- the grammar bounds: integer range, numeric digits, date form, varchar
-- length, NULL as an alternative, the reasoning's length; max_tokens
-- follows the rows asked
SELECT jsonb_pretty(r->'body'->'response_format'->'json_schema'->'schema'->'properties'->'rows'->'items'->'properties')
FROM srv_last(1) r;
SELECT r->'body'->'response_format'->'json_schema'->'schema'->'properties'->'reasoning' AS reasoning
FROM srv_last(1) r;
SELECT (r->'body'->>'max_tokens')::int < current_setting('samplellm.max_tokens')::int AS budget_follows_rows
FROM srv_last(1) r;
-- without the reasoning step: no field, no instruction about it
SET samplellm.reasoning_chars = 0;
SELECT count(*) FROM samplellm_generate(NULL::srv, 5, seed => 2, resample => 'none');
SELECT jsonb_object_keys(r->'body'->'response_format'->'json_schema'->'schema'->'properties') AS keys,
       position('reasoning' IN r->'body'->'messages'->0->>'content') = 0 AS no_reasoning_asked
FROM srv_last(1) r;
RESET samplellm.reasoning_chars;

-- 2. A server that refuses stream_options, then one that refuses stream:
-- dropped once, for the rest of the call; never stream_options without
-- stream; not counted as retries
SET samplellm.model = 'sim?nostream_options=1';
SELECT sim_last_seq() AS s0 \gset
SELECT count(*) FROM samplellm_generate(NULL::srv, 15, seed => 3, resample => 'none');
SELECT samplellm_last_run()->'server'->'streaming' AS streaming,
       samplellm_last_run()->'server'->'stream_usage' AS stream_usage,
       samplellm_last_run()->'retries' AS retries;
-- only the first wave (at most max_concurrency) carried it
SELECT count(*) FILTER (WHERE r->'body' ? 'stream_options') BETWEEN 1 AND 4 AS first_wave_only,
       count(*) FILTER (WHERE NOT r->'body' ? 'stream_options' AND r->'body' ? 'stream') > 0 AS then_without,
       (SELECT NOT l->'body' ? 'stream_options' FROM srv_last(1) l) AS last_without
FROM sim_requests() r WHERE (r->>'seq')::int > :s0;
SET samplellm.model = 'sim?nostream=1';
SELECT sim_last_seq() AS s0 \gset
SELECT count(*) FROM samplellm_generate(NULL::srv, 15, seed => 4, resample => 'none');
SELECT samplellm_last_run()->'server'->'streaming' AS streaming,
       samplellm_last_run()->'server'->'streamed' AS streamed,
       samplellm_last_run()->'retries' AS retries;
SELECT count(*) FILTER (WHERE r->'body' ? 'stream') BETWEEN 1 AND 4 AS first_wave_only,
       count(*) FILTER (WHERE r->'body' ? 'stream_options' AND NOT r->'body' ? 'stream') AS options_without_stream,
       (SELECT NOT l->'body' ? 'stream' FROM srv_last(1) l) AS last_without
FROM sim_requests() r WHERE (r->>'seq')::int > :s0;
-- a strict schema validator that refuses a grammar keyword: the same schema
-- without the bounds for the rest of the call, not a retry, still a schema
SET samplellm.model = 'sim?strict_schema=1';
SELECT count(*) FROM samplellm_generate(NULL::srv, 10, seed => 14, resample => 'none');
SELECT samplellm_last_run()->'server'->'schema_bounds' AS schema_bounds,
       samplellm_last_run()->'response_format' AS response_format,
       samplellm_last_run()->'retries' AS retries;
SELECT r->'body'->'response_format'->'json_schema'->'schema'->'properties'->'reasoning' AS reasoning,
       r->'body'->'response_format'->'json_schema'->'schema'->'properties'->'rows'->'items'->'properties'->'code' AS code
FROM srv_last(1) r;
-- a server that ignores stream: a whole answer is read as one
SET samplellm.model = 'sim?nostream=ignore';
SELECT count(*) FROM samplellm_generate(NULL::srv, 5, seed => 5, resample => 'none');
SELECT samplellm_last_run()->'server'->'streamed' AS streamed;

-- 3. A stream cut after complete rows (the connection closes after half
-- the events): the rows are kept, not paid again, not cached
SET samplellm.model = 'sim?close=short&rows=10';
SET samplellm.max_retries = 0;
SELECT count(*) FROM samplellm_generate(NULL::srv, 4, seed => 6, resample => 'none');
SELECT samplellm_last_run()->'server'->'cut_kept' AS cut_kept,
       samplellm_last_run()->'retries' AS retries,
       samplellm_last_run()->'answers'->'truncated' AS truncated;
-- the limit is on the content (2 MB over 1 MB refused while it arrives),
-- the stream's framing does not count against it
SET samplellm.model = 'sim?huge=2';
SELECT count(*) FROM samplellm_generate(NULL::srv, 5, seed => 7, resample => 'none');
SET samplellm.max_response_kb = '4MB';
SELECT count(*) FROM samplellm_generate(NULL::srv, 5, seed => 7, resample => 'none');
RESET samplellm.max_response_kb;

-- 4. Silence: a server that sends nothing is given up after
-- samplellm.idle_timeout (here capped by request_timeout before the first
-- byte); a stream that keeps sending is alive past request_timeout
SET samplellm.model = 'sim?stall=5';
SET samplellm.idle_timeout = '1s';
SELECT count(*) FROM samplellm_generate(NULL::srv, 5, seed => 8, resample => 'none');
SET samplellm.model = 'sim?drip=20000&rows=10';
SET samplellm.request_timeout = '1s';
SELECT count(*) FROM samplellm_generate(NULL::srv, 5, seed => 9, resample => 'none');
SELECT samplellm_last_run()->'retries' AS retries;
RESET samplellm.request_timeout;
RESET samplellm.idle_timeout;
RESET samplellm.max_retries;

-- 5. AIMD: max_concurrency is the ceiling; a 429 halves the window
SET samplellm.max_concurrency = 4;
SET samplellm.model = 'sim';
SELECT count(*) FROM samplellm_generate(NULL::srv, 20, seed => 10, resample => 'none');
SELECT samplellm_last_run()->'min_concurrency' AS min_concurrency,
       samplellm_last_run()->'server'->'ceiling' AS ceiling;
SET samplellm.model = 'sim?fail=429:1&retry_after=1';
SELECT count(*) FROM samplellm_generate(NULL::srv, 20, seed => 11, resample => 'none');
SELECT (samplellm_last_run()->>'min_concurrency')::int < 4 AS window_halved,
       (samplellm_last_run()->>'rate_limited')::int > 0 AS rate_limited;

-- 6. A one-slot server (llama.cpp's default).  Discovery: /props says one
-- slot, so one request is in flight at a time and none waits
\set ECHO none
SELECT format('SET samplellm.endpoint = %L', :'llama_url') \gexec
\set ECHO all
SET samplellm.model = 'sim';
SET samplellm.discover_capacity = on;
SELECT count(*) FROM samplellm_generate(NULL::srv, 15, seed => 12, resample => 'none');
SELECT s->'capacity_source' AS source, s->'slots' AS slots, s->'ceiling' AS ceiling,
       s->'max_in_flight' AS max_in_flight, samplellm_last_run()->'retries' AS retries
FROM (SELECT samplellm_last_run()->'server' AS s) x;
-- without discovery the window learns it: the queued requests' first bytes
-- come a whole answer late (congestion), and while one streams the queued
-- ones are alive, however short request_timeout and idle_timeout are
SET samplellm.discover_capacity = off;
SET samplellm.model = 'sim?tps=50';
SET samplellm.request_timeout = '1s';
SET samplellm.idle_timeout = '1s';
SELECT count(*) FROM samplellm_generate(NULL::srv, 20, seed => 13, resample => 'none');
SELECT (s->>'min_concurrency')::int < 4 AS window_shrank, (s->>'congestion')::int > 0 AS congestion,
       s->'idle_timeouts' AS idle_timeouts, samplellm_last_run()->'retries' AS retries
FROM (SELECT samplellm_last_run()->'server' AS s) x;
RESET samplellm.request_timeout;
RESET samplellm.idle_timeout;
RESET samplellm.discover_capacity;
RESET samplellm.endpoint;
RESET samplellm.model;
-- 7. Integer bounds from the table's CHECKs: a small range becomes an enum
-- (the one integer form a grammar that ignores minimum and maximum cannot
-- write with an exponent), a wide one minimum/maximum; comparisons written
-- either way round and BETWEEN count, other operators imply nothing
CREATE TABLE bounded (hour int NOT NULL CHECK (hour BETWEEN 0 AND 23),
                      age int CHECK (age >= 16 AND 100 >= age),
                      big bigint CHECK (big > 0),
                      odd int CHECK (odd % 2 = 1),
                      pick smallint CHECK (pick = 3));
INSERT INTO bounded SELECT i % 24, 16 + i % 80, i, 2 * i + 1, 3 FROM generate_series(1, 60) i;
SELECT count(*) FROM samplellm_generate(NULL::bounded, 5, seed => 14, resample => 'none');
SELECT p.key AS column, coalesce(p.value->'enum', p.value->'oneOf'->0->'enum') AS enum,
       coalesce(p.value->'minimum', p.value->'oneOf'->0->'minimum') AS minimum,
       coalesce(p.value->'maximum', p.value->'oneOf'->0->'maximum') AS maximum
FROM srv_last(1) r, jsonb_each(r->'body'->'response_format'->'json_schema'->'schema'->'properties'->'rows'->'items'->'properties') p
ORDER BY p.key;
DROP TABLE bounded;
-- 8. Capacity probes stay under the endpoint's path: behind a gateway's
-- prefix (/mnt/team/v1) they go to /mnt/team/props, never to the host's
-- root, where another service would get the key
SELECT sim_last_seq() AS s0 \gset
\getenv sim_url SAMPLELLM_SIM_URL
\set ECHO none
SELECT format('SET samplellm.endpoint = %L', replace(:'sim_url', '/v1', '/mnt/team/v1')) \gexec
\set ECHO all
SET samplellm.discover_capacity = on;
SET samplellm.api_key = 'gatewaykey';
SELECT count(*) FROM samplellm_generate(NULL::srv, 5, seed => 15, resample => 'none');
SELECT count(*) FILTER (WHERE r->>'method' = 'GET') > 0 AS probed,
       count(*) FILTER (WHERE r->>'path' NOT LIKE '/mnt/team/%') AS outside_prefix,
       count(*) FILTER (WHERE r->>'path' LIKE '/mnt/team/props%') AS props_under_prefix
FROM sim_requests() r WHERE (r->>'seq')::bigint > :s0;
RESET samplellm.api_key;
RESET samplellm.discover_capacity;
RESET samplellm.endpoint;
RESET samplellm.max_concurrency;
DROP FUNCTION srv_last(int);
DROP TABLE srv;
