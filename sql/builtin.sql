-- builtin: the offline generator (a Gaussian copula over the seed rows)
-- needs no endpoint, returns exactly n typed rows, and runs stage 2 too.
SET client_min_messages = warning;
SET samplellm.provider = 'builtin';
SET samplellm.endpoint = '';
SELECT sim_last_seq() AS seq_before \gset

CREATE TEMP TABLE b1 AS SELECT * FROM samplellm_generate(NULL::alltypes, 100, seed => 1);
SELECT count(*) AS rows, count(DISTINCT b1.*) > 90 AS diverse FROM b1;
SELECT samplellm_last_run()->>'provider' AS provider, samplellm_last_run()->'model' AS model,
       samplellm_last_run()->'calls' AS llm_calls, samplellm_last_run()->'stage2'->>'variant' AS variant;
INSERT INTO alltypes SELECT * FROM b1;  -- every row passes the table's own rules
DELETE FROM alltypes WHERE (alltypes.*) IN (SELECT b FROM b1 b);

-- deterministic for a seed
CREATE TEMP TABLE b2 AS SELECT * FROM samplellm_generate(NULL::alltypes, 100, seed => 1);
SELECT (SELECT array_agg(b::text) FROM b1 b) = (SELECT array_agg(b::text) FROM b2 b) AS same_rows;

-- marginals and relations of the seeds are kept: clicks by device
CREATE TEMP TABLE bc AS SELECT * FROM samplellm_generate(NULL::ctr, 2000, label => 'clicked', seed => 2, resample => 'none');
SELECT device,
       round(avg(clicked::int)::numeric, 1) AS synthetic_click_rate,
       (SELECT round(avg(clicked::int)::numeric, 1) FROM ctr c WHERE c.device = bc.device) AS real_click_rate,
       round(count(*) / 2000.0, 1) AS synthetic_share,
       (SELECT round(count(*) / 2000.0, 1) FROM ctr c WHERE c.device = bc.device) AS real_share
FROM bc GROUP BY device ORDER BY device;
SELECT round(avg(price)::numeric, -1) AS synthetic_mean_price, (SELECT round(avg(price)::numeric, -1) FROM ctr) AS real_mean_price FROM bc;

-- the summary names the provider
SET client_min_messages = notice;
SET samplellm.summary_level = notice;
\set VERBOSITY terse
SELECT count(*) FROM samplellm_generate(NULL::clicks, 20, seed => 3, resample => 'uniform');
\set VERBOSITY default
SET client_min_messages = warning;

-- a table whose rules the copula cannot meet fails with the reasons
CREATE TABLE impossible (a int NOT NULL, b int NOT NULL, CHECK (a + b = 1000001));
INSERT INTO impossible SELECT i, 1000001 - i FROM generate_series(1, 50) i;
SELECT * FROM samplellm_generate(NULL::impossible, 10, seed => 4);

-- no request reached the simulator
SELECT sim_last_seq() = :seq_before AS no_request_sent;
