-- setup: point the extension at the test simulator and create the tables
-- every other test uses.  The simulator is a test double, not an LLM.
\getenv sim_url SAMPLELLM_SIM_URL
\getenv sim_log SIM_LOG
SELECT :'sim_url' <> '' AS simulator_configured;
-- (the simulator's port changes every run: keep it out of the output)
\set ECHO none
SELECT format('ALTER DATABASE %I SET samplellm.endpoint = %L', current_database(), :'sim_url') \gexec
\set ECHO all
SELECT format('ALTER DATABASE %I SET samplellm.model = %L', current_database(), 'sim') \gexec
SELECT format('ALTER DATABASE %I SET samplellm.max_retries = 2', current_database()) \gexec
-- (the simulator's default personality has no capacity endpoints; probing
-- them would put GETs between the requests the tests count: sql/servers.sql
-- turns it on)
SELECT format('ALTER DATABASE %I SET samplellm.discover_capacity = off', current_database()) \gexec

-- The requests the simulator received, one jsonb per request, oldest first.
\set ECHO none
SELECT format($f$CREATE FUNCTION sim_requests() RETURNS SETOF jsonb LANGUAGE sql AS $$
  SELECT line::jsonb FROM regexp_split_to_table(pg_read_file(%L), E'\n') AS line
  WHERE line <> '' $$$f$, :'sim_log') \gexec
\set ECHO all
CREATE FUNCTION sim_last_seq() RETURNS bigint LANGUAGE sql AS
  $$ SELECT coalesce(max((r->>'seq')::bigint), 0) FROM sim_requests() r $$;
-- The user message of a request, and its exemplar lines.
CREATE FUNCTION sim_user_message(r jsonb) RETURNS text LANGUAGE sql AS
  $$ SELECT m->>'content' FROM jsonb_array_elements(r->'body'->'messages') m WHERE m->>'role' = 'user' $$;
CREATE FUNCTION sim_exemplars(r jsonb) RETURNS SETOF jsonb LANGUAGE sql AS $$
  SELECT line::jsonb FROM regexp_split_to_table(
    substring(sim_user_message(r) FROM E'<exemplars>\n(.*)\n</exemplars>'), E'\n')
    WITH ORDINALITY AS l(line, i) WHERE i > 1 $$;

CREATE TYPE mood AS ENUM ('happy', 'sad', 'neutral');

-- The acceptance table: one column of each common type.
CREATE TABLE alltypes (
    id      integer NOT NULL,
    big     bigint,
    price   numeric(8,2) CHECK (price >= 0),
    score   float8,
    clicked boolean NOT NULL,
    name    text,
    code    varchar(6),
    day     date,
    seen_at timestamptz,
    m       mood
);
COMMENT ON TABLE alltypes IS 'clicks on shop items';
COMMENT ON COLUMN alltypes.price IS 'item price in EUR';
COMMENT ON COLUMN alltypes.clicked IS 'whether the user clicked the item';
INSERT INTO alltypes
SELECT i, i * 1000000000000, (i % 50) + 0.99, (i % 97) / 97.0, i % 3 = 0,
       'user' || (i % 7), 'c' || (i % 100), date '2024-01-01' + i % 30,
       timestamptz '2024-01-01 00:00+00' + i * interval '1 hour',
       (ARRAY['happy', 'sad', 'neutral'])[1 + i % 3]::mood
FROM generate_series(1, 300) i;

-- A small click table.
CREATE TABLE clicks (
    user_id  integer NOT NULL,
    device   text NOT NULL,
    price    numeric(6,2) NOT NULL,
    clicked  boolean NOT NULL
);
INSERT INTO clicks
SELECT i % 40, (ARRAY['mobile', 'desktop', 'tablet'])[1 + i % 3],
       round((5 + (i * 37) % 90)::numeric, 2), (i * 7) % 5 = 0
FROM generate_series(1, 200) i;

-- Click-through rows for stage 2 and the built-in generator: clicks depend
-- on the device (mobile 50%, tablet 20%, desktop 10%).
-- (deterministic pseudo-random numbers in [0, 1) from md5)
CREATE FUNCTION prand(i int, salt int) RETURNS float8 LANGUAGE sql IMMUTABLE AS
  $$ SELECT ('x' || substr(md5(i || ':' || salt), 1, 8))::bit(32)::bigint / 4294967296.0 $$;
CREATE TABLE ctr (device text NOT NULL, hour int NOT NULL, price numeric(6,2) NOT NULL, clicked bool NOT NULL);
INSERT INTO ctr
SELECT d, (prand(i, 2) * 24)::int % 24, round((5 + prand(i, 3) * 95)::numeric, 2),
       prand(i, 4) < CASE d WHEN 'mobile' THEN 0.5 WHEN 'tablet' THEN 0.2 ELSE 0.1 END
FROM (SELECT i, CASE WHEN prand(i, 1) < 0.5 THEN 'mobile' WHEN prand(i, 1) < 0.7 THEN 'tablet' ELSE 'desktop' END AS d
      FROM generate_series(1, 2000) i) s;

