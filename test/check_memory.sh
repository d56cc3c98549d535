#!/usr/bin/env bash
# test/check_memory.sh: the quick memory sanity check of test/run.sh (a few
# seconds), run after the regression suite while its cluster still runs.
# The slow target (test/slow/memory.sh) runs thousands of calls in six
# phases; this one runs, in one session of a database of its own, 150
# warm-up calls and then 800 measured ones that alternate a successful LLM
# call, a cache hit and a failing call (HTTP 500), and checks that the
# backend's anonymous memory grows by less than MEM_QUICK_BOUND bytes per
# call (default 512: the slow target measures about 120-160 B per call) and
# its memory contexts by less than 32 kB.
#
#   bash test/check_memory.sh SL_TMP
#
# Prints one "ok"/"not ok" line per check; exit status 1 if any failed.
set -uo pipefail

SL_TMP=${1:?usage: check_memory.sh SL_TMP}
SL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
WORK=$SL_TMP/memory
DB=sl_memory
BOUND=${MEM_QUICK_BOUND:-512}
# RssAnon moves in pages and malloc grows its heap in steps: with 50 warm-up
# and 400 measured calls, one late step of 100-200 kB on an unchanged tree
# was enough to read 460-573 B/call in some runs (-205 to 307 in others);
# the slow target's 900-call phases read 41 B/call.  More warm-up and a
# longer window keep the same per-call bound and make it measure a slope.
WARM=150
CALLS=950
failures=0

rm -rf "$WORK"
mkdir -p "$WORK"
chmod 755 "$WORK"
ok() { printf 'ok - %s\n' "$*"; }
not_ok() { printf 'not ok - %s\n' "$*"; failures=$((failures + 1)); }
cleanup() { "$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1; }
trap cleanup EXIT

PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -d postgres \
	-c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
"$PG_BIN/psql" -X -q -d "$DB" -c "CREATE EXTENSION samplellm" >/dev/null
export SOCKLOG=$WORK/sockets.log PGDATA_DIR=$SL_TMP/data
# test/slow/memory.sql's fixtures and loop; 'mixed' is not one of its phases,
# so the driver below alternates three of them by call number
cat >"$WORK/driver.sql" <<EOF
\\i $SL_ROOT/test/slow/memory.sql
CREATE PROCEDURE mem_mixed(p_from int, p_to int, INOUT ok int, INOUT failed int)
LANGUAGE plpgsql AS \$\$
BEGIN
  FOR i IN p_from .. p_to LOOP
    CALL mem_loop((ARRAY['ok', 'cache', 'fail'])[1 + i % 3], i, i, ok, failed);
  END LOOP;
END \$\$;
CALL mem_mixed(1, $WARM, 0, 0) \\gset r_
SELECT mem_snap('mixed', $WARM, :r_ok, :r_failed);
CALL mem_mixed($((WARM + 1)), $CALLS, :r_ok, :r_failed) \\gset r_
SELECT mem_snap('mixed', $CALLS, :r_ok, :r_failed);
EOF
t0=$(date +%s.%N)
if ! timeout 240 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -v sim_url="$SAMPLELLM_SIM_URL" -d "$DB" \
	-f "$WORK/driver.sql" >"$WORK/memory.out" 2>&1; then
	cat "$WORK/memory.out" >&2
	not_ok "memory: the script ran"
	exit 1
fi
t1=$(date +%s.%N)
# calls 1 + i % 3: i = 2 mod 3 fails (fail phase: kinds[1 + i % 4], never 'ok')
read -r anon1 ctx1 < <("$PG_BIN/psql" -X -At -F ' ' -d "$DB" -c "SELECT anon_kb, ctx_total FROM mem_snap WHERE label = 'mixed' AND calls = $WARM")
read -r anon2 ctx2 okn failn < <("$PG_BIN/psql" -X -At -F ' ' -d "$DB" -c "SELECT anon_kb, ctx_total, ok, failed FROM mem_snap WHERE label = 'mixed' AND calls = $CALLS")
for v in "${anon1:-}" "${ctx1:-}" "${anon2:-}" "${ctx2:-}" "${okn:-}" "${failn:-}"; do
	[[ "$v" =~ ^[0-9]+$ ]] || { not_ok "memory: snapshots recorded"; exit 1; }
done
m=$((CALLS - WARM))
danon=$((anon2 - anon1)); dctx=$(( (ctx2 - ctx1) / 1024 ))
per=$(awk -v d="$danon" -v m="$m" 'BEGIN { printf "%.0f", d * 1024 / m }')
# calls i = 1..CALLS with i % 3 = 2 fail
want_fail=$(( (CALLS + 1) / 3 ))
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
if [ "$okn" -eq $((CALLS - want_fail)) ] && [ "$failn" -eq "$want_fail" ]; then
	ok "memory: $CALLS calls in $secs s, $okn ok and $failn failed as planned"
else
	not_ok "memory: $CALLS calls, $okn ok and $failn failed (want $((CALLS - want_fail)) and $want_fail)"
fi
if [ $((danon * 1024)) -lt $((BOUND * m)) ]; then
	ok "memory: RssAnon $(printf %+d "$danon") kB over $m calls = $per B/call (bound $BOUND B/call)"
else
	not_ok "memory: RssAnon $(printf %+d "$danon") kB over $m calls = $per B/call (bound $BOUND B/call)"
fi
if [ "$dctx" -lt 32 ]; then
	ok "memory: memory contexts $(printf %+d "$dctx") kB over $m calls (bound 32 kB)"
else
	not_ok "memory: memory contexts $(printf %+d "$dctx") kB over $m calls (bound 32 kB)"
fi
[ "$failures" -eq 0 ] && echo "check_memory: all checks passed" || { echo "check_memory: $failures check(s) failed" >&2; exit 1; }
