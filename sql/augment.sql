-- augment: generate_into, the run ledger, idempotency keys, conditions.
SET client_min_messages = warning;
SET samplellm.max_concurrency = 1;

-- a target with defaults, identity and generated columns
CREATE TABLE clicks_more (
    id       bigint GENERATED ALWAYS AS IDENTITY,
    user_id  integer NOT NULL,
    device   text NOT NULL,
    price    numeric(6,2) NOT NULL,
    clicked  boolean NOT NULL,
    batch    text DEFAULT 'synthetic',
    price_x2 numeric GENERATED ALWAYS AS (price * 2) STORED
);
SELECT samplellm_generate_into('clicks', 'clicks_more', 30, label => 'clicked', seed => 61) AS run_id \gset
SELECT count(*), count(DISTINCT id) AS identities, bool_and(batch = 'synthetic') AS defaults,
       bool_and(price_x2 = price * 2) AS generated
FROM clicks_more;

-- the ledger has the run, readable as samplellm_runs
SELECT run_id = :run_id AS same_id, status, source, target, n_requested, n_returned, provider,
       model, prompt_version, seed, llm_calls > 0 AS paid, rejected IS NOT NULL AS has_rejections,
       stage2->>'variant' AS variant, error
FROM samplellm_runs WHERE run_id = :run_id;

-- all or nothing: a failing endpoint inserts nothing, and the failure is on record
SET samplellm.model = 'sim?status=500';
SET samplellm.max_retries = 0;
SELECT samplellm_generate_into('clicks', 'clicks_more', 30, seed => 62);
RESET samplellm.max_retries;
RESET samplellm.model;
SELECT count(*) FROM clicks_more;
SELECT status, target, n_returned, error FROM samplellm_runs
WHERE run_id > :run_id ORDER BY run_id;

-- samplellm_generate is on record too
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, seed => 63);
SELECT status, target IS NULL AS no_target, n_returned FROM samplellm_runs ORDER BY run_id DESC LIMIT 1;

-- an incompatible target is refused before anything is paid for
SELECT sim_last_seq() AS seq_before \gset
CREATE TABLE no_price (user_id int, device text, clicked bool);
SELECT samplellm_generate_into('clicks', 'no_price', 5);
CREATE TABLE bad_types (user_id int, device int, price numeric, clicked bool);
SELECT samplellm_generate_into('clicks', 'bad_types', 5);
CREATE TABLE needs_more (user_id int, device text, price numeric, clicked bool, region text NOT NULL);
SELECT samplellm_generate_into('clicks', 'needs_more', 5);
SELECT sim_last_seq() = :seq_before AS no_request_sent;

-- idempotency: a job rerun after its success inserts nothing
SELECT samplellm_generate_into('clicks', 'clicks_more', 10, seed => 64, idempotency_key => 'daily-2026-11-26') AS first_id \gset
SELECT samplellm_generate_into('clicks', 'clicks_more', 10, seed => 65, idempotency_key => 'daily-2026-11-26') = :first_id AS same_run;
SELECT count(*) FROM clicks_more;

-- a failure after stage 1 (here the insert) does not pay stage 1 twice: the
-- rerun replays the cached answers
CREATE TABLE clicks_unique (user_id int UNIQUE, device text, price numeric, clicked bool);
INSERT INTO clicks_unique VALUES (1, 'x', 1, true), (2, 'x', 1, true), (3, 'x', 1, true),
  (4, 'x', 1, true), (5, 'x', 1, true), (6, 'x', 1, true), (7, 'x', 1, true), (8, 'x', 1, true),
  (9, 'x', 1, true), (10, 'x', 1, true), (11, 'x', 1, true), (12, 'x', 1, true);
SELECT samplellm_generate_into('clicks', 'clicks_unique', 20, seed => 66, resample => 'none');
SELECT sim_last_seq() AS seq_after_failure \gset
ALTER TABLE clicks_unique DROP CONSTRAINT clicks_unique_user_id_key;
SELECT samplellm_generate_into('clicks', 'clicks_unique', 20, seed => 66, resample => 'none') > 0 AS inserted;
SELECT sim_last_seq() = :seq_after_failure AS stage1_not_paid_again, count(*) FROM clicks_unique;

-- conditions: every returned row satisfies it
SELECT count(*) AS rows, bool_and(clicked AND price BETWEEN 10 AND 60) AS all_satisfy
FROM samplellm_generate(NULL::clicks, 40, seed => 67, condition => 'clicked AND price BETWEEN 10 AND 60');
SELECT (samplellm_last_run()->'rejected'->>'condition')::int > 0 AS some_candidates_refused;
SELECT sim_user_message(r) LIKE '%Every NEW row must also satisfy this SQL condition: "clicked AND price BETWEEN 10 AND 60"%' AS prompt_states_it,
       bool_and(e->>3 = 'true') AS exemplars_satisfy_it
FROM sim_requests() r, sim_exemplars(r) e
WHERE (r->>'seq')::int = (SELECT max((x->>'seq')::int) FROM sim_requests() x) GROUP BY 1;
-- bad conditions are refused before anything is paid for
SELECT sim_last_seq() AS seq_before \gset
SELECT * FROM samplellm_generate(NULL::clicks, 5, condition => 'no_such_column > 1');
SELECT * FROM samplellm_generate(NULL::clicks, 5, condition => 'price + 1');
SELECT * FROM samplellm_generate(NULL::clicks, 5, condition => 'price > (SELECT 1)');
SELECT * FROM samplellm_generate(NULL::clicks, 5, condition => 'random() < 0.5');
SELECT * FROM samplellm_generate(NULL::clicks, 5, condition => 'clicked; DROP TABLE clicks');
SELECT * FROM samplellm_generate(NULL::clicks, 5, condition => 'clicked FROM pg_class');
SELECT * FROM samplellm_generate(NULL::clicks, 5, condition => 'count(*) > 1');
SELECT sim_last_seq() = :seq_before AS no_request_sent;
SELECT count(*) AS clicks_still_there FROM clicks;

-- the built-in generator honours conditions too
SET samplellm.provider = 'builtin';
SELECT count(*), bool_and(device = 'mobile' AND NOT clicked) AS all_satisfy
FROM samplellm_generate(NULL::clicks, 30, seed => 68, condition => 'device = ''mobile'' AND NOT clicked');
RESET samplellm.provider;
RESET samplellm.max_concurrency;

-- quotas: rebalance the label (a fifth of the real clicks are clicked)
SET samplellm.max_concurrency = 1;
SELECT round(avg(clicked::int), 2) AS real_click_rate FROM clicks;
SELECT clicked, count(*) FROM samplellm_generate(NULL::clicks, 60, label => 'clicked', seed => 69,
                                                 per_group => '{"true": 0.5}') GROUP BY 1 ORDER BY 1;
SELECT clicked, count(*) FROM samplellm_generate(NULL::clicks, 30, label => 'clicked', seed => 70,
                                                 per_group => '{"true": 20, "false": 10}', resample => 'uniform')
GROUP BY 1 ORDER BY 1;
-- the minority's requests show minority exemplars and ask for that label
SELECT count(*) FILTER (WHERE sim_user_message(r) LIKE '%Every one of them must have "clicked" = true.%') > 0 AS asked_for_true,
       bool_and((SELECT bool_and(e->>3 = 'true') FROM sim_exemplars(r) e))
         FILTER (WHERE sim_user_message(r) LIKE '%Every one of them must have "clicked" = true.%') AS true_exemplars
FROM sim_requests() r WHERE r->>'model' = 'sim' AND (r->'body'->>'seed') IS NOT NULL
  AND (r->>'seq')::int > (SELECT max((x->>'seq')::int) - 6 FROM sim_requests() x);
-- the built-in generator meets quotas too
SET samplellm.provider = 'builtin';
SELECT clicked, count(*) FROM samplellm_generate(NULL::clicks, 40, label => 'clicked', seed => 71,
                                                 per_group => '{"true": 0.75}') GROUP BY 1 ORDER BY 1;
RESET samplellm.provider;
-- bad quotas are refused before anything is paid for
SELECT sim_last_seq() AS seq_before \gset
SELECT * FROM samplellm_generate(NULL::clicks, 10, per_group => '{"true": 0.5}');
SELECT * FROM samplellm_generate(NULL::clicks, 10, label => 'clicked', per_group => 'not json');
SELECT * FROM samplellm_generate(NULL::clicks, 10, label => 'clicked', per_group => '{"true": 0.7, "false": 0.6}');
SELECT * FROM samplellm_generate(NULL::clicks, 10, label => 'clicked', per_group => '{"true": 0.5, "false": 3}');
SELECT * FROM samplellm_generate(NULL::clicks, 10, label => 'clicked', per_group => '{"true": 30}');
SELECT * FROM samplellm_generate(NULL::clicks, 10, label => 'clicked', per_group => '{"maybe": 3}');
CREATE TABLE all_clicked (x int, y bool);
INSERT INTO all_clicked SELECT i, true FROM generate_series(1, 50) i;
SELECT * FROM samplellm_generate(NULL::all_clicked, 10, label => 'y', per_group => '{"true": 3}');
SELECT sim_last_seq() = :seq_before AS no_request_sent;

-- the cost estimate: from the prompts a run would send (the simulator
-- counts a token per 4 characters)
SET samplellm.chars_per_token = 4;
SELECT provider, calls, rows_per_call, candidates FROM samplellm_estimate('alltypes', 200, seed => 72);
CREATE TEMP TABLE est AS SELECT * FROM samplellm_estimate('alltypes', 200, seed => 72);
SELECT count(*) FROM samplellm_generate(NULL::alltypes, 200, seed => 72);
SELECT abs(e.prompt_tokens - (r->>'prompt_tokens')::int) <= 0.1 * (r->>'prompt_tokens')::int AS prompt_within_10pct,
       abs(e.completion_tokens - (r->>'completion_tokens')::int) <= 0.1 * (r->>'completion_tokens')::int AS completion_within_10pct,
       abs(e.calls - (r->>'calls')::int) <= 1 AS calls_within_one
FROM est e, samplellm_last_run() r;
RESET samplellm.chars_per_token;
SET samplellm.provider = 'builtin';
SELECT provider, calls, prompt_tokens, completion_tokens FROM samplellm_estimate('alltypes', 200);
RESET samplellm.provider;
RESET samplellm.max_concurrency;

-- PII: excluded columns never appear in a request and get values locally
CREATE TABLE patients (id int NOT NULL, ssn text NOT NULL, age int NOT NULL, smoker bool NOT NULL);
INSERT INTO patients SELECT i, 'SSN-' || lpad((i * 7919 % 1000000)::text, 6, '0'), 20 + i % 60, i % 4 = 0
FROM generate_series(1, 120) i;
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) AS rows, bool_and(ssn ~ '^[A-Z]{3}-[0-9]{6}$') AS ssn_of_the_real_shape,
       bool_or(ssn IN (SELECT ssn FROM patients)) AS any_real_ssn
FROM samplellm_generate(NULL::patients, 30, label => 'smoker', seed => 73, exclude => '{ssn}');
SELECT count(*) > 0 AS requests_sent,
       bool_and(strpos(r->>'body', 'ssn') = 0 AND strpos(r->>'body', 'SSN-') = 0) AS no_request_names_or_shows_ssn
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before;
SELECT * FROM samplellm_generate(NULL::patients, 5, exclude => '{nope}');
SELECT * FROM samplellm_generate(NULL::patients, 5, label => 'smoker', exclude => '{smoker}');
SELECT * FROM samplellm_generate(NULL::patients, 5, exclude => '{ssn}', condition => 'ssn <> ''x''');
SELECT * FROM samplellm_generate(NULL::patients, 5, exclude => '{id,ssn,age,smoker}');

-- the INSERT privilege on the target is checked before anything is paid for
CREATE ROLE sl_writer;
GRANT EXECUTE ON FUNCTION samplellm_generate_into(regclass, regclass, integer, text, bigint, integer, text, float8, text, text, text[], text, text) TO sl_writer;
GRANT SELECT ON clicks, clicks_more TO sl_writer;
SELECT sim_last_seq() AS seq_before \gset
SET ROLE sl_writer;
SELECT samplellm_generate_into('clicks', 'clicks_more', 5);
RESET ROLE;
SELECT sim_last_seq() = :seq_before AS no_request_sent;
REVOKE ALL ON clicks, clicks_more FROM sl_writer;
REVOKE ALL ON FUNCTION samplellm_generate_into(regclass, regclass, integer, text, bigint, integer, text, float8, text, text, text[], text, text) FROM sl_writer;
DROP ROLE sl_writer;

-- huge user text cannot break the journal.  An argument error is no run and
-- is not journaled (nothing was paid for); a paid failure carrying a 1.1 MB
-- idempotency key is journaled, with the key clipped, and reads back.
SELECT count(*) AS journaled_before FROM samplellm_failed_runs() \gset
DO $$
BEGIN
  PERFORM count(*) FROM samplellm_generate(NULL::clicks, 5, label => repeat('a', 1100000) || '{x');
EXCEPTION WHEN undefined_column THEN
  RAISE WARNING 'refused: %', left(SQLERRM, 20);
END $$;
SELECT count(*) = :journaled_before AS argument_error_not_journaled FROM samplellm_failed_runs();
SET samplellm.model = 'sim?status=500';
SET samplellm.max_retries = 0;
SELECT samplellm_generate_into('clicks', 'clicks_more', 5, seed => 74,
                               idempotency_key => repeat('k', 1100000) || 'end');
RESET samplellm.max_retries;
RESET samplellm.model;
SELECT count(*) AS runs, length(idempotency_key) AS key_chars, idempotency_key ~ '^k+$' AS key_prefix_kept,
       status, target, error
FROM samplellm_failed_runs() WHERE details->>'seed' = '74' GROUP BY idempotency_key, status, target, error;
SELECT count(*) = :journaled_before + 1 AS one_more_journaled, max(length(error)) < 3000 AS error_clipped
FROM samplellm_failed_runs();

-- each role sees its own runs, failures included
CREATE ROLE sl_u1;
CREATE ROLE sl_u2;
GRANT EXECUTE ON FUNCTION samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) TO sl_u1, sl_u2;
GRANT SELECT ON clicks TO sl_u1, sl_u2;
SET ROLE sl_u1;
-- (a call refused for its arguments costs nothing and is no run)
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, label => 'nope');
SELECT count(*) AS runs_after_refusal FROM samplellm_runs;
RESET ROLE;
-- a paid failure is a run (the superuser's settings stay through SET ROLE)
SET samplellm.model = 'sim?status=500';
SET samplellm.max_retries = 0;
SET ROLE sl_u1;
SELECT count(*) FROM samplellm_generate(NULL::clicks, 5, label => 'clicked', seed => 80);
RESET ROLE;
RESET samplellm.max_retries;
RESET samplellm.model;
SET ROLE sl_u1;
SELECT count(*) AS own_runs, bool_and(run_by = 'sl_u1') AS all_mine FROM samplellm_runs;
-- the model is recorded only for callers who may read samplellm.model:
-- not in sl_u1's run, even for a superuser; in the superuser's own runs
SELECT model, provider FROM samplellm_runs;
RESET ROLE;
SELECT run_by, model FROM samplellm_runs WHERE run_by = 'sl_u1' OR run_id = :run_id ORDER BY run_id;
SET ROLE sl_u2;
SELECT count(*) AS own_runs FROM samplellm_runs;
RESET ROLE;
REVOKE ALL ON clicks FROM sl_u1, sl_u2;
REVOKE ALL ON FUNCTION samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) FROM sl_u1, sl_u2;
DROP ROLE sl_u1;
DROP ROLE sl_u2;
