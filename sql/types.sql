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
INSERT INTO alltypes SELECT * FROM gen;  -- the real table accepts every row
DELETE FROM alltypes WHERE (alltypes.*) IN (SELECT g FROM gen g);

-- values are diverse, not copies of the seeds
SELECT count(DISTINCT gen.*) > 90 AS mostly_distinct,
       count(*) FILTER (WHERE (gen.*)::text IN (SELECT (a.*)::text FROM alltypes a)) AS seed_copies
FROM gen;

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
