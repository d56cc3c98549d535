#!/usr/bin/env bash
# test/slow/upgrade.sh: the upgrade from the 0.1.0 release to this tree's
# version, the way a user lives it.  Builds 0.1.0 (git commit 837a8d1 of this
# repository) into $PG_CONFIG's tree, creates the extension at 0.1.0 and
# makes runs there (a generate, generate_into with idempotency keys by two
# roles: ledger rows, cache entries), installs this tree's build over it,
# runs ALTER EXTENSION samplellm UPDATE, then checks:
#   - every member object (functions with their arguments, defaults, flags,
#     settings, comments and grants; tables, columns, indexes, policies,
#     views, sequences) is identical to a fresh CREATE EXTENSION of the new
#     version in another database of the same cluster;
#   - the ledger rows made by 0.1.0 read back unchanged, owned by the right
#     role (by OID), each role still sees only its own;
#   - the cache entries made by 0.1.0 are still there;
#   - the idempotent calls return their 0.1.0 run ids without an LLM request
#     and without inserting a row; new runs work, and replay from the cache.
# Leaves this tree's build installed.  Usage (as root, from test/slow.sh or
# alone): PG_BIN=... bash test/slow/upgrade.sh
#   UPGRADE_FROM   the commit of the old release (default 837a8d1, 0.1.0)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
from=${UPGRADE_FROM:-837a8d1}
new_version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$SL_ROOT/samplellm.control")

status=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; status=1; }
# expect <description> <expected> <actual>
expect() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1: expected '$2', got '$3'"; fi; }

old_src=$(mktemp -d /tmp/samplellm-upgrade.XXXXXX)
cleanup() {
	sl_teardown
	rm -rf "$old_src"
}
trap cleanup EXIT

pkglib=$("$PG_CONFIG" --pkglibdir)
ext=$("$PG_CONFIG" --sharedir)/extension
remove_installed() {
	rm -rf "$pkglib/samplellm.so" "$pkglib/bitcode/samplellm" "$pkglib/bitcode/samplellm.index.bc" \
		"$ext"/samplellm.control "$ext"/samplellm--*.sql
}
install_new() {
	make -C "$SL_ROOT" -s PG_CONFIG="$PG_CONFIG" >/dev/null &&
		make -C "$SL_ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# 1. The old release, alone in the tree (as on a machine that has only it).
sl_log "building the old release ($from) into $($PG_CONFIG --bindir)/.."
git -C "$SL_ROOT" archive "$from" | tar -x -C "$old_src" || { fail "git archive $from"; exit 1; }
old_version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$old_src/samplellm.control")
remove_installed
if ! { make -C "$old_src" -s PG_CONFIG="$PG_CONFIG" >"$old_src/build.log" 2>&1 &&
	make -C "$old_src" -s PG_CONFIG="$PG_CONFIG" install >>"$old_src/build.log" 2>&1; }; then
	tail -20 "$old_src/build.log"
	fail "build and install $old_version"
	install_new
	exit 1
fi
expect "old release's version" "0.1.0" "$old_version"

sl_start_cluster || { fail "cluster"; install_new; exit 1; }
sl_start_sim --seed 1 || { fail "simulator"; install_new; exit 1; }
# LLM calls only (capacity discovery also asks the simulator for /props)
requests() { grep -c "chat/completions" "$SIM_LOG" 2>/dev/null || echo 0; }
q() { PGOPTIONS="-c client_min_messages=warning" psql -X -v ON_ERROR_STOP=1 -qAt -d "$@"; }

q postgres -c "CREATE DATABASE upg" -c "CREATE DATABASE fresh" >/dev/null
for db in upg fresh; do
	q postgres -c "ALTER DATABASE $db SET samplellm.endpoint = '$SAMPLELLM_SIM_URL'" \
		-c "ALTER DATABASE $db SET samplellm.model = 'sim'" >/dev/null
done

# 2. Runs at 0.1.0: a superuser and an ordinary role, each with a key.
sl_log "runs at $old_version"
q upg >/dev/null <<'SQL' || fail "setup and runs at 0.1.0"
CREATE EXTENSION samplellm VERSION '0.1.0';
CREATE TABLE clicks (user_id integer NOT NULL, device text NOT NULL,
                     price numeric(6,2) NOT NULL, clicked boolean NOT NULL);
INSERT INTO clicks
SELECT i % 40, (ARRAY['mobile', 'desktop', 'tablet'])[1 + i % 3],
       round((5 + (i * 37) % 90)::numeric, 2), (i * 7) % 5 = 0
FROM generate_series(1, 200) i;
CREATE TABLE clicks_copy (LIKE clicks);
CREATE TABLE clicks_user (LIKE clicks);
-- a user's view on the extension's: the update must not need to drop it
CREATE VIEW my_runs AS SELECT run_id, idempotency_key FROM samplellm_runs;
CREATE ROLE regress_upgrade_user;
GRANT SELECT ON clicks TO regress_upgrade_user;
GRANT SELECT, INSERT ON clicks_user TO regress_upgrade_user;
GRANT EXECUTE ON FUNCTION samplellm_generate_into(regclass, regclass, integer, text, bigint, integer,
    text, float8, text, text, text[], text) TO regress_upgrade_user;
SELECT count(*) FROM samplellm_generate(NULL::clicks, 20, label => 'clicked', seed => 1);
SELECT samplellm_generate_into('clicks', 'clicks_copy', 20, label => 'clicked', seed => 2,
                               idempotency_key => 'nightly-1');
SET ROLE regress_upgrade_user;
SELECT samplellm_generate_into('clicks', 'clicks_user', 10, label => 'clicked', seed => 3,
                               idempotency_key => 'user-1');
RESET ROLE;
SQL
ledger_sql="SELECT run_id, run_by, started_at, finished_at, source, target, n_requested, n_returned,
  status, error, idempotency_key, details FROM samplellm_run_ledger ORDER BY run_id"
ledger_before=$(q upg -c "$ledger_sql")
runs_before=$(q upg -c "SELECT run_id, run_by, target, n_returned, status, idempotency_key FROM samplellm_runs ORDER BY run_id")
runs_keys=$(q upg -c "SELECT run_id, idempotency_key FROM samplellm_runs ORDER BY run_id")
cache_before=$(q upg -c "SELECT entries, bytes FROM samplellm_cache_stats()")
copy_before=$(q upg -c "SELECT count(*), md5(string_agg(c::text, ',' ORDER BY c::text)) FROM clicks_copy c")
user_before=$(q upg -c "SELECT count(*), md5(string_agg(c::text, ',' ORDER BY c::text)) FROM clicks_user c")
run_nightly=$(q upg -c "SELECT run_id FROM samplellm_run_ledger WHERE idempotency_key = 'nightly-1'")
run_user=$(q upg -c "SELECT run_id FROM samplellm_run_ledger WHERE idempotency_key = 'user-1'")
expect "ledger rows at 0.1.0" 3 "$(printf '%s\n' "$ledger_before" | grep -c .)"
expect "target rows at 0.1.0" 20 "${copy_before%%|*}"
[ "${cache_before%%|*}" -gt 0 ] 2>/dev/null && pass "cache entries at 0.1.0: ${cache_before%%|*}" ||
	fail "no cache entries at 0.1.0 ($cache_before)"

# 3. The new build over the old one; the SQL objects are still 0.1.0's.
sl_log "installing this tree's build ($new_version) over $old_version"
install_new || { fail "build and install $new_version"; exit 1; }
n0=$(requests)
out=$(q upg -c "SELECT samplellm_generate_into('clicks', 'clicks_copy', 20, label => 'clicked', seed => 2,
                 idempotency_key => 'nightly-1')" 2>&1)
if grep -q "samplellm's SQL objects are at version $old_version, its library at $new_version" <<<"$out"; then
	pass "before ALTER EXTENSION UPDATE the new library refuses to run, with a hint"
else
	fail "before ALTER EXTENSION UPDATE: $out"
fi
expect "no LLM request before the update" "$n0" "$(requests)"

# 4. The update, and a fresh install of the new version to compare with.
sl_log "ALTER EXTENSION samplellm UPDATE"
q upg -c "ALTER EXTENSION samplellm UPDATE" >/dev/null || fail "ALTER EXTENSION samplellm UPDATE"
expect "version after the update" "$new_version" "$(q upg -c "SELECT extversion FROM pg_extension WHERE extname = 'samplellm'")"
q fresh >/dev/null <<'SQL' || fail "fresh CREATE EXTENSION"
CREATE EXTENSION samplellm;
GRANT EXECUTE ON FUNCTION samplellm_generate_into(regclass, regclass, integer, text, bigint, integer,
    text, float8, text, text, text[], text, text) TO regress_upgrade_user;
SQL

# Every member of the extension, described by what defines it.  Run ids,
# sequence positions and the rows themselves are data, not definitions.
objects_sql=$(cat <<'SQL'
WITH m AS (
  SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
  WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'samplellm' AND d.deptype = 'e')
SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM m
UNION ALL
SELECT format('function %s(%s) returns %s | %s %s | volatile=%s strict=%s secdef=%s parallel=%s leakproof=%s rows=%s cost=%s | config=%s | acl=%s | comment=%s | body=%s',
              p.proname, pg_get_function_arguments(p.oid), pg_get_function_result(p.oid),
              l.lanname, coalesce(p.probin, ''), p.provolatile, p.proisstrict, p.prosecdef,
              p.proparallel, p.proleakproof, p.prorows, p.procost, p.proconfig, p.proacl,
              obj_description(p.oid, 'pg_proc'), md5(p.prosrc))
FROM m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
JOIN pg_language l ON l.oid = p.prolang
UNION ALL
SELECT format('relation %s kind=%s rls=%s force_rls=%s options=%s acl=%s comment=%s',
              c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.reloptions,
              c.relacl, obj_description(c.oid, 'pg_class'))
FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
UNION ALL
SELECT format('column %s.%s #%s %s notnull=%s default=%s', c.relname, a.attname, a.attnum,
              format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid))
FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
UNION ALL
SELECT format('index %s: %s', i.indexrelid::regclass, pg_get_indexdef(i.indexrelid))
FROM m JOIN pg_index i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
UNION ALL
SELECT format('constraint %s on %s: %s', co.conname, co.conrelid::regclass, pg_get_constraintdef(co.oid))
FROM m JOIN pg_constraint co ON m.classid = 'pg_class'::regclass AND co.conrelid = m.objid
UNION ALL
SELECT format('policy %s on %s: cmd=%s permissive=%s roles=%s using=%s check=%s', po.polname,
              po.polrelid::regclass, po.polcmd, po.polpermissive, po.polroles::regrole[],
              pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))
FROM m JOIN pg_policy po ON m.classid = 'pg_class'::regclass AND po.polrelid = m.objid
UNION ALL
SELECT format('view %s: %s', c.relname, pg_get_viewdef(c.oid))
FROM m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid AND c.relkind = 'v'
UNION ALL
SELECT format('sequence %s: %s start=%s inc=%s min=%s max=%s cache=%s cycle=%s', s.seqrelid::regclass,
              format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
              s.seqcache, s.seqcycle)
FROM m JOIN pg_sequence s ON m.classid = 'pg_class'::regclass AND s.seqrelid = m.objid
UNION ALL
SELECT format('config dump %s: %s', c.relname, x.cond)
FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(cfg, cond)
JOIN pg_class c ON c.oid = x.cfg
WHERE e.extname = 'samplellm'
UNION ALL
SELECT format('extension schema=%s relocatable=%s version=%s', e.extnamespace::regnamespace,
              e.extrelocatable, e.extversion)
FROM pg_extension e WHERE e.extname = 'samplellm'
ORDER BY 1
SQL
)
q upg -c "$objects_sql" >"$old_src/objects.upgraded" || fail "describe the upgraded objects"
q fresh -c "$objects_sql" >"$old_src/objects.fresh" || fail "describe the fresh objects"
nobj=$(grep -c '^member ' "$old_src/objects.fresh")
nfun=$(grep -c '^function ' "$old_src/objects.fresh")
if [ "$nobj" -gt 0 ] && diff -u "$old_src/objects.fresh" "$old_src/objects.upgraded" >"$old_src/objects.diff"; then
	pass "every member object identical to a fresh CREATE EXTENSION ($nobj members, $nfun functions)"
else
	fail "upgraded objects differ from a fresh CREATE EXTENSION (- fresh, + upgraded):"
	cat "$old_src/objects.diff"
fi

# 5. The data 0.1.0 left.
expect "ledger rows read back unchanged" "$ledger_before" "$(q upg -c "$ledger_sql")"
expect "samplellm_runs unchanged" "$runs_before" \
	"$(q upg -c "SELECT run_id, run_by, target, n_returned, status, idempotency_key FROM samplellm_runs ORDER BY run_id")"
expect "every ledger row owned by its role's OID" "0" \
	"$(q upg -c "SELECT count(*) FROM samplellm_run_ledger l LEFT JOIN pg_roles r ON r.oid = l.run_by_oid
	             WHERE r.rolname IS DISTINCT FROM l.run_by")"
expect "the ordinary role sees only its own run" "$run_user|user-1" \
	"$(q upg -c "SET ROLE regress_upgrade_user" -c "SELECT run_id, idempotency_key FROM samplellm_runs")"
expect "a user's view on samplellm_runs still reads" "$runs_keys" \
	"$(q upg -c "SELECT run_id, idempotency_key FROM my_runs ORDER BY run_id")"
expect "cache entries and bytes unchanged" "$cache_before" "$(q upg -c "SELECT entries, bytes FROM samplellm_cache_stats()")"

# 6. The idempotent calls: the 0.1.0 run ids, no request, no row.
n0=$(requests)
expect "idempotent call returns its 0.1.0 run id" "$run_nightly" \
	"$(q upg -c "SELECT samplellm_generate_into('clicks', 'clicks_copy', 20, label => 'clicked', seed => 2,
	                 idempotency_key => 'nightly-1')" 2>/dev/null)"
expect "the ordinary role's idempotent call returns its 0.1.0 run id" "$run_user" \
	"$(q upg -c "SET ROLE regress_upgrade_user" -c "SELECT samplellm_generate_into('clicks', 'clicks_user', 10,
	                 label => 'clicked', seed => 3, idempotency_key => 'user-1')" 2>/dev/null)"
expect "no LLM request for the idempotent calls" "$n0" "$(requests)"
expect "no row inserted by the idempotent call" "$copy_before" \
	"$(q upg -c "SELECT count(*), md5(string_agg(c::text, ',' ORDER BY c::text)) FROM clicks_copy c")"
expect "no row inserted by the ordinary role's idempotent call" "$user_before" \
	"$(q upg -c "SELECT count(*), md5(string_agg(c::text, ',' ORDER BY c::text)) FROM clicks_user c")"

# 7. New runs on the upgraded extension: the new argument, the new form,
# the ledger, and a rerun served from the cache.
gen="SELECT count(*) FROM samplellm_generate(NULL::clicks, 20, label => 'clicked', seed => 7,
       instructions => 'weekend traffic')"
n_new=$(requests)
expect "a new run with instructions" 20 "$(q upg -c "$gen")"
n0=$(requests)
# (the request count moves when a call does reach the LLM: the checks of
# "no LLM request" above are not vacuous)
expect "the new run reached the LLM" yes "$([ "$n0" -gt "$n_new" ] && echo yes || echo "no ($n_new -> $n0)")"
expect "its rerun" 20 "$(q upg -c "$gen")"
expect "the rerun replays the cache: no LLM request" "$n0" "$(requests)"
expect "the literal form" 5 "$(q upg -c "SELECT count(*) FROM samplellm_generate('clicks', 5, label => 'clicked', seed => 8)")"
id=$(q upg -c "SELECT samplellm_generate_into('clicks', 'clicks_copy', 5, label => 'clicked', seed => 9,
                idempotency_key => 'nightly-2')")
expect "a new keyed run, recorded with its role's OID" "postgres|nightly-2" \
	"$(q upg -c "SELECT run_by_oid::regrole, idempotency_key FROM samplellm_run_ledger WHERE run_id = '$id'")"
# 3 runs at 0.1.0; 2 generate, 1 literal form, 1 generate_into since
expect "ledger rows after the new runs" 7 "$(q upg -c "SELECT count(*) FROM samplellm_run_ledger")"

sl_check_server_log || fail "the server log shows a crashed backend"
q postgres -c "DROP DATABASE upg" -c "DROP DATABASE fresh" -c "DROP ROLE regress_upgrade_user" >/dev/null ||
	fail "clean up"
[ $status -eq 0 ] && echo "PASS upgrade $old_version -> $new_version" || echo "FAIL upgrade $old_version -> $new_version"
exit $status
