/* samplellm--0.1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION samplellm" to load this file. \quit

CREATE FUNCTION @extschema@.samplellm_generate(
    source anyelement,
    n integer,
    label text DEFAULT NULL,
    seed bigint DEFAULT NULL,
    max_seed_rows integer DEFAULT NULL,
    resample text DEFAULT 'attribution',
    oversample float8 DEFAULT NULL)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'samplellm_generate'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_generate(anyelement, integer, text, bigint, integer, text, float8) IS
'Generates n synthetic rows typed like the source table (pass NULL::table) with an LLM, from the table''s real rows';

CREATE FUNCTION @extschema@.samplellm_last_run()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'samplellm_last_run'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_last_run() IS
'Figures of this session''s last samplellm call: LLM calls, retries, tokens, rejected rows by reason';

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

-- (further functions, one block each, in pipeline order, above this line)

-- Sending rows to a third party and spending money are decisions: nobody
-- but the owner runs these until granted (see README, Privileges).
REVOKE ALL ON FUNCTION @extschema@.samplellm_generate(anyelement, integer, text, bigint, integer, text, float8) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.samplellm_last_run() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.samplellm_interactions(regclass, text, bigint, integer) FROM PUBLIC;
