/* samplellm--0.2.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION samplellm" to load this file. \quit

CREATE FUNCTION @extschema@.samplellm_generate(
    source anyelement,
    n integer,
    label text DEFAULT NULL,
    seed bigint DEFAULT NULL,
    max_seed_rows integer DEFAULT NULL,
    resample text DEFAULT 'attribution',
    oversample float8 DEFAULT NULL,
    condition text DEFAULT NULL,
    per_group text DEFAULT NULL,
    exclude text[] DEFAULT NULL,
    instructions text DEFAULT NULL)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'samplellm_generate'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) IS
'Generates n synthetic rows typed like the source table (pass NULL::table) with an LLM, from the table''s real rows';

CREATE FUNCTION @extschema@.samplellm_last_run()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'samplellm_last_run'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_last_run() IS
'Figures of this session''s last samplellm call: LLM calls, retries, tokens, rejected rows by reason';

-- The run ledger: one record per run.  Successful runs are rows of
-- samplellm_run_ledger, written in the caller's transaction; failed runs are
-- kept in a journal file (their transaction rolled back) that
-- samplellm_failed_runs() reads.  samplellm_runs shows both; each role sees
-- its own runs (a superuser sees all).
CREATE SEQUENCE @extschema@.samplellm_run_id_seq;

CREATE TABLE @extschema@.samplellm_run_ledger (
    run_id          bigint PRIMARY KEY,
    run_by          name NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    source          text NOT NULL,
    target          text,
    n_requested     integer NOT NULL,
    n_returned      integer NOT NULL,
    status          text NOT NULL CHECK (status IN ('ok', 'failed')),
    error           text,
    idempotency_key text,
    details         jsonb NOT NULL,
    -- the role by OID: a role dropped and re-created under the same name
    -- is another role, and a renamed role keeps its runs
    run_by_oid      oid NOT NULL
);
CREATE UNIQUE INDEX samplellm_run_ledger_idempotency
    ON @extschema@.samplellm_run_ledger (target, idempotency_key)
    WHERE status = 'ok' AND idempotency_key IS NOT NULL;
ALTER TABLE @extschema@.samplellm_run_ledger ENABLE ROW LEVEL SECURITY;
CREATE POLICY samplellm_own_runs ON @extschema@.samplellm_run_ledger
    FOR SELECT USING (run_by_oid OPERATOR(pg_catalog.=)
                      pg_catalog.to_regrole(CURRENT_USER::pg_catalog.text)::pg_catalog.oid);
GRANT SELECT ON @extschema@.samplellm_run_ledger TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.samplellm_run_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.samplellm_run_id_seq', '');

CREATE FUNCTION @extschema@.samplellm_failed_run_records()
RETURNS SETOF jsonb
AS 'MODULE_PATHNAME', 'samplellm_failed_run_records'
LANGUAGE C STRICT VOLATILE PARALLEL SAFE SECURITY INVOKER;

CREATE FUNCTION @extschema@.samplellm_failed_runs()
RETURNS SETOF @extschema@.samplellm_run_ledger
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT r.* FROM @extschema@.samplellm_failed_run_records() AS j,
         pg_catalog.jsonb_populate_record(NULL::@extschema@.samplellm_run_ledger, j) AS r
$$;

COMMENT ON FUNCTION @extschema@.samplellm_failed_runs() IS
'The failed runs of the calling role (all roles for a superuser), from the failure journal';

CREATE VIEW @extschema@.samplellm_runs WITH (security_invoker = true) AS
SELECT run_id, run_by, started_at, finished_at, source, target, n_requested, n_returned,
       details->>'provider' AS provider, details->>'model' AS model,
       details->>'prompt_version' AS prompt_version, details->>'prompt_hash' AS prompt_hash,
       (details->>'seed')::bigint AS seed,
       (details->>'calls')::integer AS llm_calls, (details->>'retries')::integer AS retries,
       (details->>'cached')::integer AS cached_answers,
       (details->>'prompt_tokens')::bigint AS prompt_tokens,
       (details->>'completion_tokens')::bigint AS completion_tokens,
       details->'rejected' AS rejected, details->'stage2' AS stage2,
       status, error, idempotency_key, details
FROM (SELECT * FROM @extschema@.samplellm_run_ledger
      UNION ALL
      SELECT * FROM @extschema@.samplellm_failed_runs()) AS runs;

COMMENT ON VIEW @extschema@.samplellm_runs IS
'One row per samplellm run of the current role: provenance, costs, rejections, stage 2 figures, status';
GRANT SELECT ON @extschema@.samplellm_runs TO PUBLIC;

CREATE FUNCTION @extschema@.samplellm_generate_into(
    source regclass,
    target regclass,
    n integer,
    label text DEFAULT NULL,
    seed bigint DEFAULT NULL,
    max_seed_rows integer DEFAULT NULL,
    resample text DEFAULT 'attribution',
    oversample float8 DEFAULT NULL,
    condition text DEFAULT NULL,
    per_group text DEFAULT NULL,
    exclude text[] DEFAULT NULL,
    idempotency_key text DEFAULT NULL,
    instructions text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'samplellm_generate_into'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_generate_into(regclass, regclass, integer, text, bigint, integer, text, float8, text, text, text[], text, text) IS
'Inserts n generated rows of source into target, all or nothing; returns the run id (see samplellm_runs)';

REVOKE ALL ON FUNCTION @extschema@.samplellm_generate_into(regclass, regclass, integer, text, bigint, integer, text, float8, text, text, text[], text, text) FROM PUBLIC;

CREATE FUNCTION @extschema@.samplellm_estimate(
    source regclass,
    n integer,
    label text DEFAULT NULL,
    seed bigint DEFAULT NULL,
    max_seed_rows integer DEFAULT NULL,
    resample text DEFAULT 'attribution',
    oversample float8 DEFAULT NULL,
    condition text DEFAULT NULL,
    per_group text DEFAULT NULL,
    exclude text[] DEFAULT NULL,
    instructions text DEFAULT NULL)
RETURNS TABLE (provider text, calls integer, rows_per_call integer, prompt_tokens bigint,
               schema_tokens bigint, completion_tokens bigint, candidates integer)
AS 'MODULE_PATHNAME', 'samplellm_estimate'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_estimate(regclass, integer, text, bigint, integer, text, float8, text, text, text[], text) IS
'The LLM calls and tokens samplellm_generate would spend, from the prompts it would build, without calling the LLM';

REVOKE ALL ON FUNCTION @extschema@.samplellm_estimate(regclass, integer, text, bigint, integer, text, float8, text, text, text[], text) FROM PUBLIC;

CREATE FUNCTION @extschema@.samplellm_interactions(
    source regclass,
    label text DEFAULT NULL,
    seed bigint DEFAULT NULL,
    max_seed_rows integer DEFAULT NULL)
RETURNS TABLE (field_a text, field_b text, score float8, raw_score float8,
               same_cluster boolean, cluster_a integer, cluster_b integer)
AS 'MODULE_PATHNAME', 'samplellm_interactions'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_interactions(regclass, text, bigint, integer) IS
'Pairwise feature interactions (Integrated Hessians of a model of the real rows) and the feature clusters stage 2 uses';

CREATE FUNCTION @extschema@.samplellm_evaluate(
    "real" regclass,
    synthetic regclass,
    label text DEFAULT NULL,
    holdout regclass DEFAULT NULL,
    seed bigint DEFAULT 0)
RETURNS TABLE (metric text, columns text, score float8)
AS 'MODULE_PATHNAME', 'samplellm_evaluate'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_evaluate(regclass, regclass, text, regclass, bigint) IS
'Quality (SDMetrics column shapes and pair trends), detection, utility (label and holdout) and privacy metrics of synthetic rows against real rows';

REVOKE ALL ON FUNCTION @extschema@.samplellm_evaluate(regclass, regclass, text, regclass, bigint) FROM PUBLIC;

CREATE FUNCTION @extschema@.samplellm_cache_clear()
RETURNS bigint
AS 'MODULE_PATHNAME', 'samplellm_cache_clear'
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_cache_clear() IS
'Deletes the cached LLM responses of the current role (called by a superuser: of every role); returns how many were deleted';

REVOKE ALL ON FUNCTION @extschema@.samplellm_cache_clear() FROM PUBLIC;

CREATE FUNCTION @extschema@.samplellm_cache_stats(
    OUT entries bigint,
    OUT bytes bigint,
    OUT expired bigint,
    OUT oldest timestamptz,
    OUT newest timestamptz)
RETURNS record
AS 'MODULE_PATHNAME', 'samplellm_cache_stats'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_cache_stats() IS
'Cached LLM responses on disk of the current role (called by a superuser: of every role): count, bytes, how many expired, oldest and newest';

REVOKE ALL ON FUNCTION @extschema@.samplellm_cache_stats() FROM PUBLIC;

-- Sending rows to a third party and spending money are decisions: nobody
-- but the owner runs these until granted (see README, Privileges).
REVOKE ALL ON FUNCTION @extschema@.samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.samplellm_last_run() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.samplellm_interactions(regclass, text, bigint, integer) FROM PUBLIC;

CREATE FUNCTION @extschema@.samplellm_generate_related(
    tables regclass[],
    n integer,
    labels text[] DEFAULT NULL,
    seed bigint DEFAULT NULL,
    max_seed_rows integer DEFAULT NULL,
    resample text DEFAULT 'attribution',
    oversample float8 DEFAULT NULL,
    exclude text[] DEFAULT NULL,
    instructions text DEFAULT NULL)
RETURNS TABLE (source regclass, rows_inserted bigint, run_id bigint)
AS 'MODULE_PATHNAME', 'samplellm_generate_related'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_generate_related(regclass[], integer, text[], bigint, integer, text, float8, text[], text) IS
'Generates related tables together, parents before children, each child row referencing a new parent row; inserts them all or nothing';

REVOKE ALL ON FUNCTION @extschema@.samplellm_generate_related(regclass[], integer, text[], bigint, integer, text, float8, text[], text) FROM PUBLIC;

-- The literal form: samplellm_generate('clicks', 5000) resolves here (an
-- unknown literal prefers text), NULL::clicks to the typed form above.
CREATE FUNCTION @extschema@.samplellm_generate(
    source text,
    n integer,
    label text DEFAULT NULL,
    seed bigint DEFAULT NULL,
    max_seed_rows integer DEFAULT NULL,
    resample text DEFAULT 'attribution',
    oversample float8 DEFAULT NULL,
    condition text DEFAULT NULL,
    per_group text DEFAULT NULL,
    exclude text[] DEFAULT NULL,
    instructions text DEFAULT NULL)
RETURNS SETOF jsonb
AS 'MODULE_PATHNAME', 'samplellm_generate_jsonb'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_generate(text, integer, text, bigint, integer, text, float8, text, text, text[], text) IS
'Generates n synthetic rows of the named table as jsonb objects (what to_jsonb of the typed row gives); the typed form takes NULL::table';

REVOKE ALL ON FUNCTION @extschema@.samplellm_generate(text, integer, text, bigint, integer, text, float8, text, text, text[], text) FROM PUBLIC;

-- Progress of running calls (shared memory: samplellm in
-- shared_preload_libraries).  Each role sees its own calls;
-- pg_read_all_stats sees all.
CREATE FUNCTION @extschema@.samplellm_progress(
    OUT pid integer,
    OUT run_id bigint,
    OUT run_by oid,
    OUT source text,
    OUT phase text,
    OUT rows_valid bigint,
    OUT rows_needed bigint,
    OUT requests_done integer,
    OUT requests_in_flight integer,
    OUT retries integer,
    OUT tokens bigint,
    OUT elapsed_s float8,
    OUT remaining_s float8,
    OUT started_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'samplellm_progress'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED SECURITY INVOKER;

CREATE VIEW @extschema@.samplellm_progress WITH (security_invoker = true) AS
SELECT * FROM @extschema@.samplellm_progress();

COMMENT ON VIEW @extschema@.samplellm_progress IS
'One row per running samplellm call of the current role (all roles for pg_read_all_stats): phase, rows, requests, tokens, time left';
GRANT SELECT ON @extschema@.samplellm_progress TO PUBLIC;
