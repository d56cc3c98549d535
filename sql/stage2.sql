-- stage2: importance resampling pulls the LLM's biased candidates back
-- toward the real rows; the structure it finds is inspectable.
SET client_min_messages = warning;

-- The real rows: ctr (setup.sql): clicks depend on the device (mobile 50%,
-- tablet 20%, desktop 10%).

-- The simulated LLM is biased: it writes clicked = true 80% of the time, and
-- draws device independently of everything else.
SET samplellm.model = 'sim?label=clicked&label_rate=0.8&break=device';
SET samplellm.max_concurrency = 1;
CREATE TEMP TABLE attr AS SELECT * FROM samplellm_generate(NULL::ctr, 300, label => 'clicked', seed => 9, oversample => 5);
SELECT samplellm_last_run()->'stage2'->>'variant' AS variant,
       (samplellm_last_run()->>'pool')::int >= 1500 AS pool_of_5n,
       (samplellm_last_run()->'stage2'->>'ess')::float8 > 1 AS ess_reported;
SELECT (samplellm_last_run()->'stage2'->>'ess')::float8 AS ess_default \gset
-- the default's novelty guard, in the run record: its ratio, the threshold
-- it measured, the close shares (weight) before and after, the factor
SELECT n->>'ratio' AS novelty_ratio, (n->>'tau')::float8 >= 0 AS tau_reported,
       (n->>'close_before')::float8 BETWEEN 0 AND 1 AND (n->>'close_after')::float8 BETWEEN 0 AND 1 AS shares_in_0_1,
       (n->>'close_after')::float8 <= (n->>'close_before')::float8 + 1e-9 AS not_closer,
       (n->>'beta')::float8 > 0 AND (n->>'beta')::float8 <= 1 AS beta_in_0_1
FROM (SELECT samplellm_last_run()->'stage2'->'novelty' AS n) s;
-- the paper's estimator, by name, on the same candidates (the cache replays them)
CREATE TEMP TABLE paper AS SELECT * FROM samplellm_generate(NULL::ctr, 300, label => 'clicked', seed => 9, oversample => 5, resample => 'paper');
SELECT samplellm_last_run()->>'resample' AS resample, samplellm_last_run()->'stage2'->>'variant' AS variant,
       samplellm_last_run()->'stage2' ? 'novelty' AS paper_has_novelty_guard,
       :ess_default >= 299.5 AS default_ess_at_least_n,
       :ess_default > (samplellm_last_run()->'stage2'->>'ess')::float8 AS default_ess_above_paper;
CREATE TEMP TABLE unif AS SELECT * FROM samplellm_generate(NULL::ctr, 300, label => 'clicked', seed => 9, oversample => 5, resample => 'uniform');
SELECT samplellm_last_run()->>'resample' AS resample, samplellm_last_run()->'stage2' IS NULL AS no_model;
-- samplellm.novelty = 0 turns the guard off: nothing measured
SET samplellm.novelty = 0;
CREATE TEMP TABLE nonov AS SELECT * FROM samplellm_generate(NULL::ctr, 300, label => 'clicked', seed => 9, oversample => 5);
SELECT n->>'ratio' AS novelty_off, (n->>'tau')::float8 = 0 AS nothing_measured, n->>'beta' AS beta
FROM (SELECT samplellm_last_run()->'stage2'->'novelty' AS n) s;
RESET samplellm.novelty;
RESET samplellm.model;

-- distance to the real rows: label rate, and total variation of the
-- (device, clicked) contingency table
CREATE FUNCTION ctr_distance(syn regclass, OUT label_rate_gap float8, OUT contingency_tv float8)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format($q$
    WITH r AS (SELECT device, clicked, count(*)::float8 / sum(count(*)) OVER () p FROM ctr GROUP BY 1, 2),
         s AS (SELECT device, clicked, count(*)::float8 / sum(count(*)) OVER () p FROM %s GROUP BY 1, 2)
    SELECT abs((SELECT avg(clicked::int) FROM ctr) - (SELECT avg(clicked::int) FROM %s)),
           0.5 * sum(abs(coalesce(r.p, 0) - coalesce(s.p, 0)))
    FROM r FULL JOIN s USING (device, clicked) $q$, syn, syn)
  INTO label_rate_gap, contingency_tv;
END $$;
SELECT u.label_rate_gap - a.label_rate_gap >= 0.25 AS label_rate_closer_by_025,
       u.contingency_tv - a.contingency_tv >= 0.25 AS contingency_closer_by_025
FROM ctr_distance('attr') a, ctr_distance('unif') u;
SELECT u.label_rate_gap - p.label_rate_gap >= 0.25 AS paper_label_rate_closer_by_025
FROM ctr_distance('paper') p, ctr_distance('unif') u;

-- A planted interaction: y = a XOR b, while c, d and e are noise.
CREATE TABLE planted (a int, b int, c int, d int, e int, y bool);
INSERT INTO planted
SELECT a, b, (prand(i, 7) * 4)::int, (prand(i, 8) * 4)::int, (prand(i, 9) * 4)::int, (a + b) % 2 = 1
FROM (SELECT i, (prand(i, 5) * 2)::int % 2 AS a, (prand(i, 6) * 2)::int % 2 AS b
      FROM generate_series(1, 4000) i) s;
SELECT field_a, field_b, round(score::numeric, 1) AS score, same_cluster
FROM samplellm_interactions('planted', label => 'y', seed => 1)
WHERE same_cluster OR score > 0.5 ORDER BY 1, 2;
SELECT count(*) FILTER (WHERE same_cluster) AS linked_pairs, count(*) AS pairs
FROM samplellm_interactions('planted', label => 'y', seed => 1);

-- degenerate inputs: clear behaviour, no crash
CREATE TABLE one_class (x int, y bool);
INSERT INTO one_class SELECT i % 17, true FROM generate_series(1, 200) i;
SELECT count(*) FROM samplellm_generate(NULL::one_class, 20, label => 'y', seed => 2);
SELECT samplellm_last_run()->'stage2'->>'variant' AS variant;
CREATE TABLE only_label (y bool);
INSERT INTO only_label SELECT i % 3 = 0 FROM generate_series(1, 100) i;
SELECT count(*) FROM samplellm_generate(NULL::only_label, 2, label => 'y', seed => 3, oversample => 1);
SELECT samplellm_last_run()->'stage2'->>'variant' AS variant;
CREATE TABLE with_nulls (x int, nothing text, f float8, y bool);
INSERT INTO with_nulls
SELECT i % 11, NULL, CASE i % 10 WHEN 0 THEN 'NaN' WHEN 1 THEN 'Infinity' WHEN 2 THEN '-Infinity' ELSE i / 7.0 END,
       i % 4 = 0
FROM generate_series(1, 300) i;
SELECT count(*), count(nothing) AS non_null_nothing
FROM samplellm_generate(NULL::with_nulls, 30, label => 'y', seed => 4);
SELECT samplellm_last_run()->'stage2'->>'variant' AS variant;
SELECT count(*) FROM samplellm_generate(NULL::with_nulls, 30, seed => 4);
SELECT samplellm_last_run()->'stage2'->>'variant' AS variant;
RESET samplellm.max_concurrency;
