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

CREATE FUNCTION @extschema@.samplellm_generate_related(
    tables regclass[],
    n integer,
    labels text[] DEFAULT NULL,
    seed bigint DEFAULT NULL,
    max_seed_rows integer DEFAULT NULL,
    resample text DEFAULT 'attribution',
    oversample float8 DEFAULT NULL,
    exclude text[] DEFAULT NULL)
RETURNS TABLE (source regclass, rows_inserted bigint, run_id bigint)
AS 'MODULE_PATHNAME', 'samplellm_generate_related'
LANGUAGE C CALLED ON NULL INPUT VOLATILE PARALLEL UNSAFE SECURITY INVOKER;

COMMENT ON FUNCTION @extschema@.samplellm_generate_related(regclass[], integer, text[], bigint, integer, text, float8, text[]) IS
'Generates related tables together, parents before children, each child row referencing a new parent row; inserts them all or nothing';

REVOKE ALL ON FUNCTION @extschema@.samplellm_generate_related(regclass[], integer, text[], bigint, integer, text, float8, text[]) FROM PUBLIC;
