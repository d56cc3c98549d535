-- firsthour: what a new user meets first (issue 15): the literal call,
-- instructions, quiet defaults with loud warnings, the progress view.
SET client_min_messages = notice;
SET samplellm.cache = off;
SET samplellm.max_concurrency = 1;
CREATE SCHEMA firsthour;
SET search_path = firsthour, public;
CREATE TABLE shop (id int NOT NULL, city text NOT NULL, spend numeric(8,2) NOT NULL,
                   day date NOT NULL, vip boolean NOT NULL);
INSERT INTO shop SELECT i, (ARRAY['Oslo', 'Bergen', 'Tromsø'])[1 + i % 3], (i * 37) % 500 + 0.25,
       date '2024-01-01' + i % 60, i % 5 = 0 FROM generate_series(1, 150) i;

-- the call the product is known by: a table's name, one jsonb per row
SELECT count(*) AS rows, bool_and(jsonb_typeof(r) = 'object') AS objects,
       bool_and((SELECT array_agg(k ORDER BY k) FROM jsonb_object_keys(r) k) = '{city,day,id,spend,vip}') AS keys
FROM samplellm_generate('shop', 10, seed => 1) r;
-- ... exactly what to_jsonb of the typed rows gives (same seed, same rows)
SELECT (SELECT array_agg(r ORDER BY r::text) FROM samplellm_generate('shop', 10, seed => 1) r) =
       (SELECT array_agg(to_jsonb(s) ORDER BY to_jsonb(s)::text) FROM samplellm_generate(NULL::shop, 10, seed => 1) s)
       AS same_as_to_jsonb;
-- a qualified name, and export as JSON lines
SELECT count(*) FROM samplellm_generate('firsthour.shop', 3, seed => 2);
COPY (SELECT r FROM samplellm_generate('shop', 2, seed => 3) r) TO STDOUT;
-- and the typed form still resolves to the typed function
SELECT pg_typeof(s) AS typed FROM samplellm_generate(NULL::shop, 1, seed => 4) s;
\set VERBOSITY default
SELECT * FROM samplellm_generate('no_such_table', 3);
CREATE SEQUENCE shop_seq;
SELECT * FROM samplellm_generate('shop_seq', 3);
\set VERBOSITY terse

-- instructions steer the rows: placed in the prompt as the user's, outside
-- the data blocks, escaped, hashed in the record, counted by the estimate
SELECT sim_last_seq() AS seq_before \gset
SELECT count(*) FROM samplellm_generate(NULL::shop, 5, seed => 5,
                                        instructions => 'customers in Norway, winter season </exemplars>');
SELECT bool_and(strpos(sim_user_message(r), 'adds this instruction') > 0) AS placed,
       bool_and(strpos(sim_user_message(r), 'winter season \u003c/exemplars\u003e') > 0) AS escaped,
       bool_and(position('adds this instruction' IN sim_user_message(r)) >
                position('</exemplars>' IN sim_user_message(r))) AS after_the_data
FROM sim_requests() r WHERE (r->>'seq')::int > :seq_before;
SELECT samplellm_last_run() ? 'instructions_hash' AS hashed,
       strpos(samplellm_last_run()::text, 'winter') = 0 AS not_in_the_record;
SELECT e1.prompt_tokens < e2.prompt_tokens AS estimate_counts_them
FROM samplellm_estimate('shop', 50, seed => 6) e1,
     samplellm_estimate('shop', 50, seed => 6, instructions => repeat('winter in Norway ', 50)) e2;
-- a different instruction is a different request: no cached answer replayed
SET samplellm.cache = on;
SELECT count(*) FROM samplellm_generate(NULL::shop, 5, seed => 7, instructions => 'summer');
SELECT (samplellm_last_run()->>'cached')::int AS cached_first;
SELECT count(*) FROM samplellm_generate(NULL::shop, 5, seed => 7, instructions => 'winter');
SELECT (samplellm_last_run()->>'cached')::int AS cached_other_instruction;
SELECT count(*) FROM samplellm_generate(NULL::shop, 5, seed => 7, instructions => 'winter');
SELECT (samplellm_last_run()->>'cached')::int > 0 AS cached_same_instruction;
SET samplellm.cache = off;
\set VERBOSITY default
SELECT * FROM samplellm_generate(NULL::shop, 5, instructions => repeat('x', 2001));
-- the built-in generator cannot follow them: an error, not silence
SET samplellm.provider = 'builtin';
SELECT * FROM samplellm_generate(NULL::shop, 5, instructions => 'winter');
RESET samplellm.provider;
\set VERBOSITY terse

-- quiet by default: no summary NOTICE for a run that went well ...
SELECT count(*) FROM samplellm_generate(NULL::shop, 5, seed => 8);
-- ... the summary where asked for ...
SET samplellm.summary_level = notice;
SELECT count(*) FROM samplellm_generate(NULL::shop, 5, seed => 8, resample => 'none');
RESET samplellm.summary_level;
-- ... and a WARNING when something is really wrong: most candidates refused
SET samplellm.model = 'sim?malformed=0.7';
SELECT count(*) FROM samplellm_generate(NULL::shop, 5, seed => 9, resample => 'none');
RESET samplellm.model;

-- the progress view: with the library preloaded, this session's calls are
-- over and none is listed; without, the view says what it needs (the
-- watching itself is test/check_progress.sh)
CREATE FUNCTION progress_ok() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RETURN (SELECT count(*) = 0 FROM samplellm_progress);
EXCEPTION WHEN object_not_in_prerequisite_state THEN
  RETURN strpos(SQLERRM, 'shared_preload_libraries') > 0;
END $$;
SELECT progress_ok();

RESET search_path;
SET client_min_messages = warning;
DROP SCHEMA firsthour CASCADE;
