-- generate: the request contract, determinism, atomicity, validation,
-- retries and cancel, against the simulator.
SET client_min_messages = warning;
SELECT sim_last_seq() AS seq_before \gset

-- the request follows the OpenAI chat-completions contract
SET samplellm.api_key = 'sk-test-key';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 10, label => 'clicked', seed => 7);
RESET samplellm.api_key;
SELECT r->>'path' AS path, r->>'authorization' AS authorization,
       r->'body'->>'model' AS model, r->'body'->'temperature' AS temperature,
       r->'body'->'top_p' AS top_p, r->'body'->'max_tokens' AS max_tokens,
       r->'body'->'response_format'->>'type' AS format,
       r->'body'->'response_format'->'json_schema'->'strict' AS strict,
       jsonb_object_keys(r->'body'->'response_format'->'json_schema'->'schema'->'properties') AS top_level_keys
FROM sim_requests() r WHERE (r->>'seq')::int = :seq_before + 1;
SELECT jsonb_pretty(r->'body'->'response_format'->'json_schema'->'schema'->'properties'->'rows'->'items')
FROM sim_requests() r WHERE (r->>'seq')::int = :seq_before + 1;
-- the system prompt comes first and never changes; exemplars vary per request
SELECT count(DISTINCT r->'body'->'messages'->0) AS system_prompts,
       count(DISTINCT sim_user_message(r)) = count(*) AS user_prompts_differ,
       bool_and(sim_user_message(r) LIKE '%The label column is "clicked".%') AS label_named,
       bool_and((SELECT count(*) FROM sim_exemplars(r)) = 10) AS ten_exemplars
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before;

-- determinism: the same seed gives the same rows (the cache is off here, so
-- that the second run really asks the simulator again)
SET samplellm.cache = off;
CREATE TEMP TABLE run1 AS SELECT * FROM samplellm_generate(NULL::clicks, 30, seed => 11);
CREATE TEMP TABLE run2 AS SELECT * FROM samplellm_generate(NULL::clicks, 30, seed => 11);
CREATE TEMP TABLE run3 AS SELECT * FROM samplellm_generate(NULL::clicks, 30, seed => 12);
SELECT (SELECT array_agg(r::text) FROM run1 r) = (SELECT array_agg(r::text) FROM run2 r) AS same_seed_same_rows,
       (SELECT array_agg(r::text) FROM run1 r) <> (SELECT array_agg(r::text) FROM run3 r) AS other_seed_other_rows;
-- and does not depend on the concurrency (answers are taken in request order)
SET samplellm.max_concurrency = 1;
CREATE TEMP TABLE run4 AS SELECT * FROM samplellm_generate(NULL::clicks, 30, seed => 11);
RESET samplellm.max_concurrency;
SELECT (SELECT array_agg(r::text) FROM run1 r) = (SELECT array_agg(r::text) FROM run4 r) AS concurrency_independent;
RESET samplellm.cache;

-- INSERT ... SELECT is all or nothing
CREATE TABLE clicks_aug (LIKE clicks);
INSERT INTO clicks_aug SELECT * FROM samplellm_generate(NULL::clicks, 25, seed => 42);
SELECT count(*) FROM clicks_aug;
SET samplellm.model = 'sim?status=500';
SET samplellm.max_retries = 1;
INSERT INTO clicks_aug SELECT * FROM samplellm_generate(NULL::clicks, 25, seed => 43);
RESET samplellm.max_retries;
SELECT count(*) FROM clicks_aug;

-- the summary and the run record (one request at a time: deterministic)
SET samplellm.max_concurrency = 1;
SET client_min_messages = notice;
SET samplellm.summary_level = notice;
\set VERBOSITY terse
-- (resample => 'uniform': the summary's stage-1 figures are pinned, stage
-- 2's weights are not; they are checked below)
SET samplellm.model = 'sim?malformed=0.1&wrong_type=0.1&nulls=0.1&dupkey=0.05&badvalue=0.1';
SELECT count(*) FROM samplellm_generate(NULL::alltypes, 60, seed => 21, resample => 'uniform');
SELECT key, value FROM jsonb_each(samplellm_last_run()->'rejected') ORDER BY key;
SELECT samplellm_last_run()->'valid' >= '60' AS enough,
       (samplellm_last_run()->>'candidates')::int =
       (samplellm_last_run()->>'valid')::int +
       (SELECT sum(value::int) FROM jsonb_each_text(samplellm_last_run()->'rejected')) AS every_row_accounted;
\set VERBOSITY default
-- Stage 2 on the same answers (replayed from the cache).  alltypes has no
-- label, so the label-free variant runs: fields linked by mutual
-- information into clusters of up to samplellm.max_cluster_size fields,
-- each weighted by p_T / p_S of its value tuple.  With 300 seeds and
-- near-unique columns (id, big, seen_at) most candidate tuples were never
-- seen in T: the paper's estimator gives them p_T = 1e-20 and its weights
-- sit on few candidates; the default smooths them (backing off to pairs and
-- single fields) and tempers to samplellm.ess_target.  What holds whatever
-- the estimator: the
-- effective sample size lies between 1 and the pool, so does the number of
-- candidates carrying 99 % of the weight, and a rerun gives the same figures.
SET client_min_messages = error;
SELECT count(*) FROM samplellm_generate(NULL::alltypes, 60, seed => 21);
SELECT samplellm_last_run()->'stage2' AS s2 \gset
SELECT count(*) FROM samplellm_generate(NULL::alltypes, 60, seed => 21);
SET client_min_messages = warning;
SELECT r->'stage2'->>'variant' LIKE '%label-free%' AS label_free,
       (r->'stage2'->>'ess')::float8 BETWEEN 1 AND (r->>'pool')::int AS ess_within_1_and_pool,
       (r->'stage2'->>'n_carry')::int BETWEEN 1 AND (r->>'pool')::int AS carry_within_1_and_pool,
       r->'stage2'->'ess' = (:'s2'::jsonb)->'ess' AND r->'stage2'->'n_carry' = (:'s2'::jsonb)->'n_carry' AS rerun_same
FROM samplellm_last_run() r;
-- The explanation holds for the paper's estimator (exact tuple frequencies,
-- untempered): samplellm.max_cluster_size = 1 makes every field its own
-- cluster (no joint tuples), and the weights spread over more candidates
-- than with clusters of up to 4; samplellm.threshold = 1 links
-- nothing either (no interaction exceeds the largest), and threshold = 0
-- links as much as the size cap allows.
CREATE FUNCTION s2_figures(max_cluster_size int, threshold float8) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  PERFORM set_config('samplellm.max_cluster_size', max_cluster_size::text, true);
  PERFORM set_config('samplellm.threshold', threshold::text, true);
  PERFORM count(*) FROM samplellm_generate(NULL::alltypes, 60, seed => 21, resample => 'paper');
  RETURN samplellm_last_run()->'stage2';
END $$;
SET client_min_messages = error;
SELECT (s1->>'clusters')::int = (s1->>'fields')::int AS size_1_singletons,
       (s4->>'clusters')::int < (s4->>'fields')::int AS size_4_links_fields,
       (s1->>'ess')::float8 > (s4->>'ess')::float8 AS singletons_spread_the_weights,
       (t1->>'clusters')::int = (t1->>'fields')::int AS threshold_1_links_nothing,
       (t0->>'clusters')::int <= (s4->>'clusters')::int AS threshold_0_links_at_least_as_much
FROM s2_figures(1, 0.5) s1, s2_figures(4, 0.5) s4, s2_figures(4, 1) t1, s2_figures(4, 0) t0;
SET client_min_messages = warning;
DROP FUNCTION s2_figures(int, float8);

-- the memorization guard: exact copies of seed rows are refused
SET samplellm.model = 'sim?copy=1';
SELECT * FROM samplellm_generate(NULL::clicks, 5, seed => 22);
SELECT samplellm_last_run()->'rejected'->'seed_copy' AS seed_copies;

-- a server that refuses response_format gets the prompt-only fallback
SET samplellm.model = 'sim?no_schema=1';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 10, seed => 23);
SELECT samplellm_last_run()->'response_format' AS response_format_used,
       samplellm_last_run()->'retries' AS retries;
-- prose and code fences around the JSON are fine
SET samplellm.model = 'sim?prose=1';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 10, seed => 24);
-- an answer cut at max_tokens keeps its complete rows
SET samplellm.model = 'sim?content=truncated';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 10, seed => 25);
SELECT samplellm_last_run()->'answers'->'truncated' AS truncated_answers;

-- retries: 429 with Retry-After, 5xx then success, 503 forever, 401 never
SET samplellm.model = 'sim?fail=429:1&retry_after=1';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 10, seed => 26);
SELECT samplellm_last_run()->'retries' AS retries, samplellm_last_run()->'rate_limited' AS rate_limited;
SET samplellm.model = 'sim?fail=500:1,502:1';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 10, seed => 27);
SELECT samplellm_last_run()->'retries' AS retries;
-- 408 (request timeout) and 409 (conflict) are retried too, as OpenAI advises
SET samplellm.model = 'sim?fail=408:1,409:1';
SELECT count(*) FROM samplellm_generate(NULL::clicks, 10, seed => 31);
SELECT (samplellm_last_run()->>'retries')::int = 2 * (samplellm_last_run()->>'requests')::int AS two_retries_per_request,
       (samplellm_last_run()->>'calls')::int = 3 * (samplellm_last_run()->>'requests')::int AS three_attempts_each;
SET samplellm.model = 'sim?fail=503:-1';
SELECT * FROM samplellm_generate(NULL::clicks, 10, seed => 28);
SET samplellm.model = 'sim?quota=1';
SELECT * FROM samplellm_generate(NULL::clicks, 10, seed => 29);

-- cancel: statement_timeout ends a call while the server stalls
SET samplellm.model = 'sim?stall=30';
SET statement_timeout = '1s';
SELECT * FROM samplellm_generate(NULL::clicks, 10, seed => 30);
RESET statement_timeout;
SELECT 1 AS session_still_usable;

-- budget: a cap on calls stops cleanly with the shortfall
SET samplellm.model = 'sim?rows=2';
SET samplellm.max_calls_per_statement = 3;
SELECT * FROM samplellm_generate(NULL::clicks, 50, seed => 31);
RESET samplellm.max_calls_per_statement;
RESET samplellm.model;
RESET samplellm.max_concurrency;

-- reuse of paid responses: a rerun with the same seed replays the cached
-- answers and sends no request
SELECT samplellm_cache_clear() >= 0 AS cleared;
CREATE TEMP TABLE paid1 AS SELECT * FROM samplellm_generate(NULL::clicks, 40, seed => 51);
SELECT sim_last_seq() AS seq_after_first \gset
CREATE TEMP TABLE paid2 AS SELECT * FROM samplellm_generate(NULL::clicks, 40, seed => 51);
SELECT sim_last_seq() = :seq_after_first AS no_second_request,
       (samplellm_last_run()->>'cached')::int > 0 AS answers_from_cache,
       samplellm_last_run()->'calls' AS calls,
       (SELECT array_agg(r::text) FROM paid1 r) = (SELECT array_agg(r::text) FROM paid2 r) AS same_rows;
-- one role never sees another's cached answers
CREATE ROLE sl_other;
GRANT EXECUTE ON FUNCTION samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) TO sl_other;
GRANT SELECT ON clicks TO sl_other;
SET ROLE sl_other;
SELECT count(*) FROM samplellm_generate(NULL::clicks, 40, seed => 51);
RESET ROLE;
SELECT sim_last_seq() > :seq_after_first AS other_role_paid_again;
REVOKE ALL ON clicks FROM sl_other;
REVOKE ALL ON FUNCTION samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) FROM sl_other;
DROP ROLE sl_other;
-- cleared, the cache is asked no more
SELECT samplellm_cache_clear() > 0 AS cleared_entries;
SELECT sim_last_seq() AS seq_before_third \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 40, seed => 51);
SELECT sim_last_seq() > :seq_before_third AS paid_again_after_clear;

-- OpenAI's newer models want max_completion_tokens instead of max_tokens
SET samplellm.max_completion_tokens = on;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 52, resample => 'none');
SELECT r->'body' ? 'max_completion_tokens' AS has_max_completion_tokens, r->'body' ? 'max_tokens' AS has_max_tokens
FROM sim_requests() r WHERE (r->>'seq')::int = :seq_before + 1;
RESET samplellm.max_completion_tokens;

-- a server that refuses response_format, with several requests in flight:
-- each gets its one retry without it
SET samplellm.model = 'sim?no_schema=1';
SET samplellm.cache = off;
SET samplellm.max_concurrency = 4;
SELECT count(*) FROM samplellm_generate(NULL::clicks, 200, seed => 53, resample => 'none');
SELECT samplellm_last_run()->'response_format' AS response_format_used;
RESET samplellm.max_concurrency;
RESET samplellm.cache;
RESET samplellm.model;
