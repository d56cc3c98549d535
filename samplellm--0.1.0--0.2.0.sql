/* samplellm--0.1.0--0.2.0.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION samplellm UPDATE TO '0.2.0'" to load this file. \quit

-- The ledger matches runs to roles by OID (a role re-created under a dropped
-- role's name is another role; a renamed role keeps its runs).  Records of
-- roles that no longer exist get OID 0, which no role has: only superusers
-- see them.
ALTER TABLE @extschema@.samplellm_run_ledger ADD COLUMN run_by_oid oid;
UPDATE @extschema@.samplellm_run_ledger AS l
   SET run_by_oid = coalesce((SELECT r.oid FROM pg_catalog.pg_roles AS r
                              WHERE r.rolname OPERATOR(pg_catalog.=) l.run_by),
                             0::pg_catalog.oid);
ALTER TABLE @extschema@.samplellm_run_ledger ALTER COLUMN run_by_oid SET NOT NULL;
DROP POLICY samplellm_own_runs ON @extschema@.samplellm_run_ledger;
CREATE POLICY samplellm_own_runs ON @extschema@.samplellm_run_ledger
    FOR SELECT USING (run_by_oid OPERATOR(pg_catalog.=)
                      pg_catalog.to_regrole(CURRENT_USER::pg_catalog.text)::pg_catalog.oid);

-- Functions written in SQL run under a pinned search_path.
ALTER FUNCTION @extschema@.samplellm_failed_runs() SET search_path = pg_catalog, pg_temp;

-- samplellm_generate gains instructions: replaced, with the EXECUTE grants it had
DO $upgrade$
DECLARE
    grantees regrole[];
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT a.grantee::pg_catalog.regrole) INTO grantees
    FROM pg_catalog.pg_proc AS p, LATERAL pg_catalog.aclexplode(p.proacl) AS a
    WHERE p.oid OPERATOR(pg_catalog.=) '@extschema@.samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[])'::pg_catalog.regprocedure
      AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
      AND a.grantee OPERATOR(pg_catalog.<>) p.proowner AND a.grantee OPERATOR(pg_catalog.<>) 0;
    DROP FUNCTION @extschema@.samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[]);
    EXECUTE $create$CREATE FUNCTION @extschema@.samplellm_generate(
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
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;$create$;
    EXECUTE $comment$COMMENT ON FUNCTION @extschema@.samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) IS
'Generates n synthetic rows typed like the source table (pass NULL::table) with an LLM, from the table''s real rows';$comment$;
    EXECUTE $revoke$REVOKE ALL ON FUNCTION @extschema@.samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) FROM PUBLIC$revoke$;
    IF grantees IS NOT NULL THEN
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.samplellm_generate(anyelement, integer, text, bigint, integer, text, float8, text, text, text[], text) TO %s',
                                  pg_catalog.array_to_string(grantees, ', '));
    END IF;
END
$upgrade$;

-- samplellm_generate_into gains instructions: replaced, with the EXECUTE grants it had
DO $upgrade$
DECLARE
    grantees regrole[];
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT a.grantee::pg_catalog.regrole) INTO grantees
    FROM pg_catalog.pg_proc AS p, LATERAL pg_catalog.aclexplode(p.proacl) AS a
    WHERE p.oid OPERATOR(pg_catalog.=) '@extschema@.samplellm_generate_into(regclass, regclass, integer, text, bigint, integer, text, float8, text, text, text[], text)'::pg_catalog.regprocedure
      AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
      AND a.grantee OPERATOR(pg_catalog.<>) p.proowner AND a.grantee OPERATOR(pg_catalog.<>) 0;
    DROP FUNCTION @extschema@.samplellm_generate_into(regclass, regclass, integer, text, bigint, integer, text, float8, text, text, text[], text);
    EXECUTE $create$CREATE FUNCTION @extschema@.samplellm_generate_into(
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
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;$create$;
    EXECUTE $comment$COMMENT ON FUNCTION @extschema@.samplellm_generate_into(regclass, regclass, integer, text, bigint, integer, text, float8, text, text, text[], text, text) IS
'Inserts n generated rows of source into target, all or nothing; returns the run id (see samplellm_runs)';$comment$;
    EXECUTE $revoke$REVOKE ALL ON FUNCTION @extschema@.samplellm_generate_into(regclass, regclass, integer, text, bigint, integer, text, float8, text, text, text[], text, text) FROM PUBLIC$revoke$;
    IF grantees IS NOT NULL THEN
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.samplellm_generate_into(regclass, regclass, integer, text, bigint, integer, text, float8, text, text, text[], text, text) TO %s',
                                  pg_catalog.array_to_string(grantees, ', '));
    END IF;
END
$upgrade$;

-- samplellm_estimate gains instructions: replaced, with the EXECUTE grants it had
DO $upgrade$
DECLARE
    grantees regrole[];
BEGIN
    SELECT pg_catalog.array_agg(DISTINCT a.grantee::pg_catalog.regrole) INTO grantees
    FROM pg_catalog.pg_proc AS p, LATERAL pg_catalog.aclexplode(p.proacl) AS a
    WHERE p.oid OPERATOR(pg_catalog.=) '@extschema@.samplellm_estimate(regclass, integer, text, bigint, integer, text, float8, text, text, text[])'::pg_catalog.regprocedure
      AND a.privilege_type OPERATOR(pg_catalog.=) 'EXECUTE'
      AND a.grantee OPERATOR(pg_catalog.<>) p.proowner AND a.grantee OPERATOR(pg_catalog.<>) 0;
    DROP FUNCTION @extschema@.samplellm_estimate(regclass, integer, text, bigint, integer, text, float8, text, text, text[]);
    EXECUTE $create$CREATE FUNCTION @extschema@.samplellm_estimate(
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
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;$create$;
    EXECUTE $comment$COMMENT ON FUNCTION @extschema@.samplellm_estimate(regclass, integer, text, bigint, integer, text, float8, text, text, text[], text) IS
'The LLM calls and tokens samplellm_generate would spend, from the prompts it would build, without calling the LLM';$comment$;
    EXECUTE $revoke$REVOKE ALL ON FUNCTION @extschema@.samplellm_estimate(regclass, integer, text, bigint, integer, text, float8, text, text, text[], text) FROM PUBLIC$revoke$;
    IF grantees IS NOT NULL THEN
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @extschema@.samplellm_estimate(regclass, integer, text, bigint, integer, text, float8, text, text, text[], text) TO %s',
                                  pg_catalog.array_to_string(grantees, ', '));
    END IF;
END
$upgrade$;

-- New in 0.2.0: related tables, the literal form, progress.
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

-- samplellm_runs: its "SELECT *" was expanded when 0.1.0 created it; expanded
-- again, it reads the ledger's new column as a fresh install does.  OR REPLACE
-- (the view is this extension's member, and its columns stay the same) keeps
-- its grants, its comment, and the user views built on it that a DROP would
-- refuse to drop.
CREATE OR REPLACE VIEW @extschema@.samplellm_runs WITH (security_invoker = true) AS
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
