/* samplellm--0.1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION samplellm" to load this file. \quit

CREATE FUNCTION @extschema@.samplellm_generate(
    source anyelement,
    n integer,
    label text DEFAULT NULL,
    seed bigint DEFAULT NULL,
    max_seed_rows integer DEFAULT NULL)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'samplellm_generate'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_generate(anyelement, integer, text, bigint, integer) IS
'Generates n synthetic rows typed like the source table (pass NULL::table) with an LLM, from the table''s real rows';

CREATE FUNCTION @extschema@.samplellm_last_run()
RETURNS jsonb
AS 'MODULE_PATHNAME', 'samplellm_last_run'
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_last_run() IS
'Figures of this session''s last samplellm call: LLM calls, retries, tokens, rejected rows by reason';

-- Sending rows to a third party and spending money are decisions: nobody
-- but the owner runs these until granted (see README, Privileges).
REVOKE ALL ON FUNCTION @extschema@.samplellm_generate(anyelement, integer, text, bigint, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.samplellm_last_run() FROM PUBLIC;
