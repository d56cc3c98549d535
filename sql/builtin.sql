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

-- marginals of the seeds are kept: device shares within 0.02, the click
-- rate within 0.02, the mean price within 2
CREATE TEMP TABLE bc AS SELECT * FROM samplellm_generate(NULL::ctr, 2000, label => 'clicked', seed => 2, resample => 'none');
CREATE TEMP TABLE bc_by_device AS
SELECT device, avg(clicked::int) AS syn_rate, count(*) / 2000.0 AS syn_share,
       (SELECT avg(clicked::int) FROM ctr c WHERE c.device = bc.device) AS real_rate,
       (SELECT count(*) FROM ctr c WHERE c.device = bc.device) / (SELECT count(*) FROM ctr)::numeric AS real_share
FROM bc GROUP BY device;
SELECT count(*) AS devices, bool_and(abs(syn_share - real_share) < 0.02) AS shares_within_0_02,
       abs((SELECT avg(clicked::int) FROM bc) - (SELECT avg(clicked::int) FROM ctr)) < 0.02 AS click_rate_within_0_02,
       abs((SELECT avg(price) FROM bc) - (SELECT avg(price) FROM ctr)) < 2 AS mean_price_within_2
FROM bc_by_device;
-- the device -> click relation is kept in direction but attenuated (a
-- Gaussian copula carries a category's effect through one normal score):
-- the devices rank as in the real rows, each synthetic rate lies between
-- the device's real rate and the overall rate, and the spread between the
-- highest and lowest rate is at least 40 % of the real spread (rows drawn
-- with independent columns would show almost none)
SELECT string_agg(device, ' > ' ORDER BY syn_rate DESC) AS synthetic_order,
       string_agg(device, ' > ' ORDER BY real_rate DESC) AS real_order,
       bool_and(syn_rate BETWEEN least(real_rate, (SELECT avg(clicked::int) FROM ctr))
                             AND greatest(real_rate, (SELECT avg(clicked::int) FROM ctr))) AS between_real_and_overall,
       max(syn_rate) - min(syn_rate) >= 0.4 * (max(real_rate) - min(real_rate)) AS spread_at_least_40pct
FROM bc_by_device;

-- the summary names the provider
SET client_min_messages = notice;
SET samplellm.summary_level = notice;
\set VERBOSITY terse
SELECT count(*) FROM samplellm_generate(NULL::clicks, 20, seed => 3, resample => 'uniform');
\set VERBOSITY default
SET client_min_messages = warning;

-- a table whose rules the copula cannot meet fails with the reasons, and
-- the HINT speaks of the reason that refused the most candidates: here the
-- copula reproduces the seed rows (a + b is fixed, so the two columns are
-- perfectly tied), which the memorization guard refuses ...
CREATE TABLE impossible (a int NOT NULL, b int NOT NULL, CHECK (a + b = 1000001));
INSERT INTO impossible SELECT i, 1000001 - i FROM generate_series(1, 50) i;
SELECT * FROM samplellm_generate(NULL::impossible, 10, seed => 4);
-- ... and here values between the seeds' quarter steps break the CHECK
CREATE TABLE quarters (p numeric(6,2) NOT NULL, q numeric(6,2) NOT NULL, r numeric(6,2) NOT NULL,
                       CHECK (p * 4 = round(p * 4) AND q * 4 = round(q * 4) AND r * 4 = round(r * 4)));
INSERT INTO quarters SELECT ((i * 37) % 50 + 1) * 0.25, ((i * 11) % 50 + 1) * 0.25, ((i * 23) % 50 + 1) * 0.25
FROM generate_series(1, 50) i;
SELECT * FROM samplellm_generate(NULL::quarters, 10, seed => 5);
DROP TABLE impossible, quarters;

-- no request reached the simulator
SELECT sim_last_seq() = :seq_before AS no_request_sent;
