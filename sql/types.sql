-- types: rows come back typed exactly like the source table.
SET client_min_messages = warning;
-- one request at a time: the refusal counts in the warnings are exact
SET samplellm.max_concurrency = 1;

-- 100 rows of int, bigint, numeric, float8, bool, text, varchar(n), date,
-- timestamptz and an enum, with NOT NULL and CHECK constraints
CREATE TEMP TABLE gen AS SELECT * FROM samplellm_generate(NULL::alltypes, 100, seed => 1);
SELECT count(*) AS rows FROM gen;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a WHERE a.attrelid = 'gen'::regclass AND a.attnum > 0 ORDER BY a.attnum;
SELECT pg_typeof(g.*) AS row_type FROM samplellm_generate(NULL::alltypes, 1, seed => 1) g;

-- every row satisfies the table's own rules
SELECT count(*) FILTER (WHERE id IS NULL OR clicked IS NULL) AS not_null_violations,
       count(*) FILTER (WHERE price < 0) AS check_violations,
       count(*) FILTER (WHERE length(code) > 6) AS too_long
FROM gen;

-- values are diverse, not copies of the seeds (counted against the real
-- table before anything is added to it: the memorization guard refuses
-- exact copies of seed rows, and every alltypes row occurs once)
SELECT count(DISTINCT gen.*) > 90 AS mostly_distinct,
       count(*) FILTER (WHERE (gen.*)::text IN (SELECT (a.*)::text FROM alltypes a)) AS seed_copies
FROM gen;
-- with the guard off the same call returns the simulator's copies: the
-- count above is a real count
SET samplellm.memorization_guard = off;
SELECT count(*) FILTER (WHERE (g.*)::text IN (SELECT (a.*)::text FROM alltypes a)) > 0 AS copies_without_guard
FROM samplellm_generate(NULL::alltypes, 100, seed => 1, resample => 'none') g;
RESET samplellm.memorization_guard;

-- the real table accepts every row; only the rows this transaction added
-- are deleted again (a copy of a real row leaves its original in place)
SELECT count(*) AS real_rows_before FROM alltypes \gset
BEGIN;
INSERT INTO alltypes SELECT * FROM gen;
DELETE FROM alltypes WHERE xmin::text = (pg_current_xact_id()::text::bigint % 4294967296)::text;
COMMIT;
SELECT count(*) = :real_rows_before AS real_rows_intact FROM alltypes;

-- bigints beyond 2^53 survive exactly (no float round trip)
-- (three distinct odd values, which the simulator copies, never perturbs)
CREATE TABLE bigs (id int, v bigint NOT NULL);
INSERT INTO bigs SELECT i, 9007199254740993 + (i % 3) * 2 FROM generate_series(1, 20) i;
SELECT count(*) AS rows,
       count(*) FILTER (WHERE v NOT IN (SELECT v FROM bigs)) AS v_altered
FROM samplellm_generate(NULL::bigs, 10, seed => 3);

-- domains, and a view as the source
CREATE DOMAIN rating AS int CHECK (VALUE BETWEEN 1 AND 5);
CREATE TABLE reviews (user_id int NOT NULL, r rating NOT NULL, note varchar(20));
INSERT INTO reviews SELECT i, 1 + i % 5, 'note ' || i % 4 FROM generate_series(1, 50) i;
SELECT pg_typeof(r) AS domain_type, min(r) >= 1 AND max(r) <= 5 AS in_domain
FROM samplellm_generate(NULL::reviews, 20, seed => 4) GROUP BY 1;
CREATE VIEW mobile_clicks AS SELECT user_id, price, clicked FROM clicks WHERE device = 'mobile';
SELECT count(*) FROM samplellm_generate(NULL::mobile_clicks, 10, seed => 5);

-- dropped columns stay out of the prompt and the result
ALTER TABLE reviews DROP COLUMN note;
SELECT count(*) FROM samplellm_generate(NULL::reviews, 5, seed => 6);
SELECT substring(sim_user_message(r) FROM E'<exemplars>\n([^\n]*)') AS exemplar_columns
FROM sim_requests() r ORDER BY (r->>'seq')::int DESC LIMIT 1;

-- a materialized view and a foreign table (file_fdw) are sources too
CREATE MATERIALIZED VIEW tablet_clicks AS SELECT user_id, price, clicked FROM clicks WHERE device = 'tablet';
SELECT count(*) AS rows, pg_typeof(min(m.price)) AS price_type
FROM samplellm_generate(NULL::tablet_clicks, 10, seed => 7) m;
CREATE EXTENSION file_fdw;
CREATE SERVER types_files FOREIGN DATA WRAPPER file_fdw;
-- (the file lives in the data directory, whose path varies: not echoed)
DO $$
DECLARE f text := current_setting('data_directory') || '/types_clicks.csv';
BEGIN
  EXECUTE format('COPY (SELECT user_id, device, price, clicked FROM clicks) TO %L (FORMAT csv)', f);
  EXECUTE format('CREATE FOREIGN TABLE clicks_file (user_id int NOT NULL, device text NOT NULL, '
                 'price numeric(6,2), clicked bool) SERVER types_files OPTIONS (filename %L, format %L)', f, 'csv');
END $$;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) AS rows, count(DISTINCT device) > 1 AS devices_vary
FROM samplellm_generate(NULL::clicks_file, 10, seed => 8);
-- the foreign table's rows were the exemplars
SELECT bool_and(e->>1 IN ('mobile', 'desktop', 'tablet')) AS exemplars_from_the_file
FROM sim_requests() r, sim_exemplars(r) e WHERE (r->>'seq')::int > :seq_before;
DROP FOREIGN TABLE clicks_file;
DROP SERVER types_files;
DROP EXTENSION file_fdw;
DROP MATERIALIZED VIEW tablet_clicks;

-- the other supported types through the LLM path: every value comes back
-- through the column's own input function and typmod
CREATE TABLE moretypes (
    u    uuid NOT NULL,
    j    json,
    jb   jsonb,
    ip   inet,
    net  cidr,
    mac  macaddr,
    cash money,
    dur  interval,
    t    time,
    ttz  timetz,
    ts   timestamp,
    ch   char(4),
    vc   varchar(8),
    nm   name,
    c1   "char",
    sm   smallint,
    r4   real
);
INSERT INTO moretypes
SELECT md5(i::text)::uuid, json_build_object('k', i % 5), jsonb_build_object('tag', 'v' || i % 3),
       ('10.0.' || i % 4 || '.' || i)::inet, ('10.' || i % 4 || '.0.0/16')::cidr,
       ('08:00:2b:01:02:' || lpad(to_hex(i), 2, '0'))::macaddr, (i * 1.25)::numeric::money,
       make_interval(hours => i % 24, mins => i % 60), make_time(i % 24, i % 60, 0),
       (make_time(i % 24, 0, 0)::text || '+02')::timetz, timestamp '2024-03-01' + i * interval '1 day',
       'a' || i % 10, 'v' || i % 30, 'n' || i % 6, chr(97 + i % 3)::"char", i % 100, i / 7.0
FROM generate_series(1, 60) i;
CREATE TEMP TABLE moregen AS SELECT * FROM samplellm_generate(NULL::moretypes, 30, seed => 9, resample => 'uniform');
SELECT count(*) AS rows, count(DISTINCT u) > 1 AS uuids_vary, bool_and(length(ch) <= 4 AND octet_length(ch::bpchar::text) <= 4) AS char_fits,
       bool_and(length(vc) <= 8) AS varchar_fits, count(DISTINCT jb) > 1 AS jsonb_varies,
       count(DISTINCT dur) > 1 AS intervals_vary, count(DISTINCT ip) > 1 AS inets_vary,
       bool_and(ip << inet '10.0.0.0/16' AND jb ? 'tag' AND j::jsonb ? 'k' AND c1 IN ('a', 'b', 'c')
                AND cash BETWEEN '$0' AND '$100' AND mac::text LIKE '08:00:2b:01:02:%') AS seed_shaped
FROM moregen;
SELECT a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a WHERE a.attrelid = 'moregen'::regclass AND a.attnum > 0 ORDER BY a.attnum;
INSERT INTO moretypes SELECT * FROM moregen;  -- the real table accepts every row
-- the request's schema gives each column its JSON type and names its SQL type
-- (a nullable column's types are a list, or with grammar bounds the oneOf
-- alternatives)
SELECT p.key AS column, coalesce(p.value->'type', jsonb_path_query_array(p.value, '$.oneOf[*].type')) AS json_type,
       p.value->>'description' AS described_as
FROM sim_requests() r, jsonb_each(r->'body'->'response_format'->'json_schema'->'schema'->'properties'->'rows'->'items'->'properties') p
WHERE (r->>'seq')::int = (SELECT max((x->>'seq')::int) FROM sim_requests() x)
ORDER BY (SELECT attnum FROM pg_attribute WHERE attrelid = 'moretypes'::regclass AND attname = p.key);
