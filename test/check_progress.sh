#!/usr/bin/env bash
# test/check_progress.sh: the samplellm_progress view, watched from a second
# session while a call runs.  test/run.sh runs it last, after restarting
# the cluster with shared_preload_libraries = 'samplellm' (the view's shared
# memory); the regression suite itself runs without the preload, as a plain
# server would.  Prints "ok"/"not ok" lines; exit status 1 if any failed.
#
#   bash test/check_progress.sh SL_TMP
set -uo pipefail
SL_TMP=${1:?usage: check_progress.sh SL_TMP}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DB=sl_progress
failures=0
ok() { printf 'ok - %s\n' "$*"; }
not_ok() { printf 'not ok - %s\n' "$*"; failures=$((failures + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
q() { timeout 60 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

"$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
trap '"$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1' EXIT
q <<SQL
SET client_min_messages = warning;
CREATE EXTENSION samplellm;
ALTER DATABASE $DB SET samplellm.endpoint = '$SAMPLELLM_SIM_URL';
ALTER DATABASE $DB SET samplellm.model = 'sim';
ALTER DATABASE $DB SET samplellm.max_concurrency = 1;
-- (no capacity probes: the checks count the simulator's requests)
ALTER DATABASE $DB SET samplellm.discover_capacity = off;
CREATE TABLE t (id int NOT NULL, g text NOT NULL);
INSERT INTO t SELECT i, 'g' || i % 3 FROM generate_series(1, 60) i;
CREATE ROLE regress_progress_other;
SQL

PGAPPNAME=progress_case timeout 60 "$PG_BIN/psql" -X -At -d "$DB" -c "SET samplellm.model = 'sim?latency=0.4'" \
	-c "SET samplellm.rows_per_call = 5" -c "SET samplellm.cache = off" \
	-c "SELECT count(*) FROM samplellm_generate(NULL::t, 40, resample => 'none', seed => 7)" \
	>"$SL_TMP/progress.out" 2>&1 &
prog_pid=$!
seen=
for _ in $(seq 1 100); do
	seen=$(q -F'|' -c "SELECT phase, rows_valid, rows_needed, requests_done, run_id IS NOT NULL,
	                         remaining_s IS NOT NULL, elapsed_s > 0, source
	                  FROM samplellm_progress WHERE rows_valid > 0 AND phase = 'requests'")
	[ -n "$seen" ] && break
	sleep 0.1
done
other=$(q -c "SET ROLE regress_progress_other" -c "SELECT count(*) FROM samplellm_progress")
wait "$prog_pid"
check "a second session sees the call in its requests phase ($seen)" \
	grep -q '^requests|[0-9]*|40|[0-9]*|t|t|t|public.t$' <<<"$seen"
check "another role does not see it ($other rows)" test "$other" = "0"
check "the call finished" grep -qx "40" "$SL_TMP/progress.out"
left=$(q -c "SELECT count(*) FROM samplellm_progress")
check "nothing listed once the call is over ($left)" test "$left" -eq 0
q -c "DROP ROLE regress_progress_other" >/dev/null
if [ "$failures" -ne 0 ]; then
	echo "check_progress: $failures check(s) failed" >&2
	exit 1
fi
echo "check_progress: all checks passed"
