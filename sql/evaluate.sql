-- evaluate: samplellm_evaluate() on hand-made tables whose scores are known.
-- Scores print rounded, or as range checks where only a range is known.

-- 100 rows: integer, numeric, date, text and boolean columns
CREATE TABLE ev_real AS
SELECT i AS n, ((i * 37) % 101 + 0.25 * i)::numeric(8,2) AS v,
       date '2024-01-01' + i AS d, 'c' || (i % 4) AS cat, i % 3 = 0 AS flag
FROM generate_series(1, 100) i;

-- identical tables: every quality score is 1, every row is a copy
CREATE TABLE ev_copy AS SELECT * FROM ev_real;
SELECT metric, columns, round(score::numeric, 3) AS score
FROM samplellm_evaluate('ev_real', 'ev_copy')
WHERE metric NOT IN ('discriminator_auc', 'detection_score');
-- (a held-out row's twin trains with the other label, so AUC < 0.5 here;
-- detection_score clamps it)
SELECT metric, score BETWEEN 0 AND 0.6 AS in_range
FROM samplellm_evaluate('ev_real', 'ev_copy')
WHERE metric = 'discriminator_auc';
SELECT metric, round(score::numeric, 3) AS score
FROM samplellm_evaluate('ev_real', 'ev_copy')
WHERE metric = 'detection_score';

-- columns match by name, in any order; numeric types match one another
CREATE TABLE ev_reordered AS
SELECT flag, cat, d, v::float8 AS v, n::bigint AS n FROM ev_real;
SELECT metric, round(score::numeric, 3) AS score
FROM samplellm_evaluate('ev_real', 'ev_reordered')
WHERE metric IN ('column_shapes', 'column_pair_trends', 'quality_score', 'exact_copy_rate');

-- a shifted column: real n = 1..100, synthetic n = 51..150, KS = 0.5;
-- disjoint categories: TVComplement 0 and ContingencySimilarity 0
CREATE TABLE ev_shift AS
SELECT n + 50 AS n, v, d, 'z' || substr(cat, 2) AS cat, flag FROM ev_real;
SELECT metric, columns, round(score::numeric, 3) AS score
FROM samplellm_evaluate('ev_real', 'ev_shift')
WHERE metric IN ('KSComplement', 'TVComplement', 'ContingencySimilarity',
                 'CorrelationSimilarity', 'exact_copy_rate')
ORDER BY metric, columns;

-- NULL is a category: 10 NULLs become 'c0', TV distance 0.1
CREATE TABLE ev_nulls AS
SELECT n, v, d, CASE WHEN n % 10 = 0 THEN NULL ELSE cat END AS cat, flag FROM ev_real;
CREATE TABLE ev_nulls_syn AS
SELECT n, v, d, coalesce(cat, 'c0') AS cat, flag FROM ev_nulls;
SELECT metric, columns, round(score::numeric, 3) AS score
FROM samplellm_evaluate('ev_nulls', 'ev_nulls_syn')
WHERE metric = 'TVComplement';

-- half the synthetic rows copy real rows
CREATE TABLE ev_half AS
SELECT * FROM ev_real WHERE n <= 50
UNION ALL
SELECT n + 1000, v, d, cat, flag FROM ev_real WHERE n > 50;
SELECT metric, round(score::numeric, 3) AS score
FROM samplellm_evaluate('ev_real', 'ev_half')
WHERE metric IN ('exact_copy_rate', 'dcr_synthetic_median');

-- detection: two low-discrepancy samples of one distribution (no shared
-- rows) are hard to tell apart; a shifted copy is told apart perfectly
CREATE FUNCTION ev_points(lo int, hi int, shift float8 DEFAULT 0)
RETURNS TABLE (a float8, b float8, c text, y boolean) LANGUAGE sql AS $$
  SELECT a + shift, b, c, (a + b + CASE c WHEN 'k0' THEN 0.5 ELSE 0 END) > 1.1
  FROM (SELECT ((i * 0.6180339887)::numeric % 1)::float8 AS a,
               ((i * 0.7548776662)::numeric % 1)::float8 AS b,
               'k' || floor(((i * 0.5698402910)::numeric % 1) * 4) AS c
        FROM generate_series(lo, hi) i) s $$;
CREATE TABLE ev_a AS SELECT * FROM ev_points(1, 1000);
CREATE TABLE ev_b AS SELECT * FROM ev_points(1001, 2000);
CREATE TABLE ev_far AS SELECT * FROM ev_points(1001, 2000, 10);
SELECT metric, score BETWEEN 0.4 AND 0.6 AS near_half
FROM samplellm_evaluate('ev_a', 'ev_b') WHERE metric = 'discriminator_auc';
SELECT metric, columns, round(score::numeric, 3) AS score
FROM samplellm_evaluate('ev_a', 'ev_far')
WHERE metric IN ('discriminator_auc', 'detection_score', 'KSComplement')
ORDER BY metric, columns;

-- utility: label and holdout give six more metrics, averaged over five runs
CREATE TABLE ev_train AS SELECT * FROM ev_points(1, 400);
CREATE TABLE ev_syn AS SELECT * FROM ev_points(401, 800);
CREATE TABLE ev_hold AS SELECT * FROM ev_points(801, 1000);
CREATE TEMP TABLE ev_u AS
SELECT * FROM samplellm_evaluate('ev_train', 'ev_syn', label => 'y', holdout => 'ev_hold', seed => 7);
SELECT metric,
       CASE WHEN metric LIKE '%auc' THEN score BETWEEN 0 AND 1 ELSE score >= 0 END AS in_range
FROM ev_u
WHERE metric LIKE '%only%' OR metric LIKE 'augmented%' ORDER BY metric;
-- the label is learnable, so the models beat chance
SELECT bool_and(score > 0.8) AS auc_above_0_8 FROM ev_u WHERE metric LIKE '%\_auc' ESCAPE '\' AND metric <> 'discriminator_auc';
-- the holdout also gives the DCR baseline
SELECT metric, score BETWEEN 0 AND 1 AS in_range FROM ev_u
WHERE metric IN ('dcr_baseline_protection', 'dcr_overfitting_protection') ORDER BY metric;
-- same seed, same scores
SELECT count(*) AS differing FROM (
  SELECT * FROM samplellm_evaluate('ev_train', 'ev_syn', label => 'y', holdout => 'ev_hold', seed => 7)
  EXCEPT SELECT * FROM ev_u) x;
-- a multi-class label: macro one-vs-rest AUC
SELECT metric, score BETWEEN 0 AND 1 AS in_range
FROM samplellm_evaluate('ev_train', 'ev_syn', label => 'c', holdout => 'ev_hold')
WHERE metric = 'real_only_auc';

-- known values on constructed data.  Synthetic rows = the holdout: they are
-- exactly as far from the training rows as the holdout is (baseline
-- protection 1), and each is nearer the holdout than the training rows
-- (overfitting protection 1); no copies.  (No label: the DCR metrics need
-- none.)
CREATE TABLE ev_syn_is_hold AS SELECT * FROM ev_hold;
CREATE TABLE ev_train200 AS SELECT * FROM ev_points(1, 200);
CREATE TEMP TABLE ev_k1 AS
SELECT * FROM samplellm_evaluate('ev_train200', 'ev_syn_is_hold', holdout => 'ev_hold', seed => 3);
SELECT metric, score FROM ev_k1
WHERE metric IN ('exact_copy_rate', 'dcr_baseline_protection', 'dcr_overfitting_protection') ORDER BY metric;
SELECT (SELECT score FROM ev_k1 WHERE metric = 'dcr_synthetic_median') =
       (SELECT score FROM ev_k1 WHERE metric = 'dcr_holdout_median') AS same_median_distance;
-- Synthetic rows = the training rows: every row a copy at distance 0 (both
-- protections 0), and the synthetic-only model is the real-only model
-- (same rows, same seeds): the same AUC and log loss to the last bit.
SET samplellm.epochs = 10;
CREATE TABLE ev_syn_is_train AS SELECT * FROM ev_train200;
CREATE TEMP TABLE ev_k2 AS
SELECT * FROM samplellm_evaluate('ev_train200', 'ev_syn_is_train', label => 'y', holdout => 'ev_hold', seed => 3);
SELECT metric, score FROM ev_k2
WHERE metric IN ('exact_copy_rate', 'dcr_synthetic_median', 'dcr_baseline_protection', 'dcr_overfitting_protection')
ORDER BY metric;
SELECT (SELECT score FROM ev_k2 WHERE metric = 'real_only_auc') = (SELECT score FROM ev_k2 WHERE metric = 'synthetic_only_auc') AS same_auc,
       (SELECT score FROM ev_k2 WHERE metric = 'real_only_logloss') = (SELECT score FROM ev_k2 WHERE metric = 'synthetic_only_logloss') AS same_logloss,
       (SELECT score FROM ev_k2 WHERE metric = 'real_only_auc') > 0.8 AS learnable;
-- A 3-class label a categorical column separates exactly: macro
-- one-vs-rest AUC 1 and a log loss near 0 for every model.
CREATE TABLE ev_sep_train AS
SELECT (i * 0.7548776662)::numeric % 1 AS noise, (ARRAY['L', 'M', 'H'])[1 + i % 3] AS tag,
       (ARRAY['low', 'mid', 'high'])[1 + i % 3] AS cls
FROM generate_series(1, 240) i;
CREATE TABLE ev_sep_hold AS
SELECT (i * 0.7548776662)::numeric % 1 AS noise, (ARRAY['L', 'M', 'H'])[1 + i % 3] AS tag,
       (ARRAY['low', 'mid', 'high'])[1 + i % 3] AS cls
FROM generate_series(241, 390) i;
-- (the default samplellm.epochs: training to convergence)
RESET samplellm.epochs;
SELECT metric, CASE WHEN metric LIKE '%auc' THEN score = 1 ELSE score < 0.01 END AS auc_1_or_logloss_below_0_01
FROM samplellm_evaluate('ev_sep_train', 'ev_sep_train', label => 'cls', holdout => 'ev_sep_hold', seed => 3)
WHERE metric LIKE '%only%' OR metric LIKE 'augmented%' ORDER BY metric;
SET samplellm.epochs = 30;
-- The same three balanced classes with nothing to learn from: every model
-- predicts the prior, log loss ln 3 = 1.0986 and AUC 0.5 (within the
-- rounding of identical rows through blocked BLAS).
CREATE TABLE ev_flat_train AS SELECT 1 AS f, (ARRAY['p', 'q', 'r'])[1 + i % 3] AS cls FROM generate_series(1, 240) i;
CREATE TABLE ev_flat_hold AS SELECT 1 AS f, (ARRAY['p', 'q', 'r'])[1 + i % 3] AS cls FROM generate_series(1, 150) i;
SELECT metric, CASE WHEN metric LIKE '%auc' THEN abs(score - 0.5) < 0.02 ELSE abs(score - ln(3)) < 0.01 END AS at_the_known_value
FROM samplellm_evaluate('ev_flat_train', 'ev_flat_train', label => 'cls', holdout => 'ev_flat_hold', seed => 3)
WHERE metric LIKE '%only%' OR metric LIKE 'augmented%' ORDER BY metric;
RESET samplellm.epochs;
DROP TABLE ev_syn_is_hold, ev_train200, ev_syn_is_train, ev_sep_train, ev_sep_hold, ev_flat_train, ev_flat_hold;
-- a label without a holdout: the utility metrics are skipped
SELECT count(*) AS utility_rows
FROM samplellm_evaluate('ev_train', 'ev_syn', label => 'y')
WHERE metric LIKE '%only%' OR metric LIKE 'augmented%';

-- errors: arguments, relations, columns and the label are checked before
-- any row is read
SELECT * FROM samplellm_evaluate(NULL, 'ev_copy');
SELECT * FROM samplellm_evaluate('ev_real', NULL);
SELECT * FROM samplellm_evaluate('ev_real', 'ev_copy', seed => NULL);
CREATE TABLE ev_empty (LIKE ev_real);
SELECT * FROM samplellm_evaluate('ev_real', 'ev_empty');
SELECT * FROM samplellm_evaluate('ev_empty', 'ev_real');
CREATE TABLE ev_fewer AS SELECT n, v, d, cat FROM ev_real;
SELECT * FROM samplellm_evaluate('ev_real', 'ev_fewer');
SELECT * FROM samplellm_evaluate('ev_fewer', 'ev_real');
CREATE TABLE ev_badtype AS SELECT n, v, d, length(cat) AS cat, flag FROM ev_real;
SELECT * FROM samplellm_evaluate('ev_real', 'ev_badtype');
SELECT * FROM samplellm_evaluate('ev_real', 'ev_copy', holdout => 'ev_fewer');
SELECT * FROM samplellm_evaluate('ev_real', 'ev_copy', label => 'nope');
CREATE TABLE ev_oneclass AS SELECT n, v, d, cat, true AS flag FROM ev_real;
SELECT * FROM samplellm_evaluate('ev_oneclass', 'ev_copy', label => 'flag', holdout => 'ev_copy');
CREATE SEQUENCE ev_seq;
SELECT * FROM samplellm_evaluate('ev_seq', 'ev_copy');
-- rows are read as the caller: privileges apply
CREATE ROLE regress_ev_user;
GRANT EXECUTE ON FUNCTION samplellm_evaluate(regclass, regclass, text, regclass, bigint) TO regress_ev_user;
GRANT SELECT ON ev_real TO regress_ev_user;
SET ROLE regress_ev_user;
SELECT * FROM samplellm_evaluate('ev_real', 'ev_copy');
RESET ROLE;
REVOKE ALL ON FUNCTION samplellm_evaluate(regclass, regclass, text, regclass, bigint) FROM regress_ev_user;
REVOKE ALL ON ev_real FROM regress_ev_user;
DROP ROLE regress_ev_user;
