#!/usr/bin/env bash
# test/check_concurrency.sh: requests really overlap at max_concurrency > 1,
# and max_concurrency = 1 really serializes them.  Run by test/run.sh after
# the regression suite while its cluster still runs.
#
#   bash test/check_concurrency.sh SL_TMP
#
# A simulator of its own answers every request after a fixed latency and
# writes one timing line per request with its monotonic receive and send
# times; requests in flight are counted from those intervals (the server's
# view, not the client's), and the call's wall time is compared with the
# serial time (requests x latency).  The counting tests of sql/ all pin
# max_concurrency = 1, so without this check a build that sent one request
# at a time would pass the suite.
# Prints one "ok"/"not ok" line per check; exit status 1 if any failed.
set -uo pipefail

SL_TMP=${1:?usage: check_concurrency.sh SL_TMP}
SL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$SL_ROOT/test/lib.sh"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
WORK=$SL_TMP/concurrency
DB=sl_concurrency
LATENCY=0.3			# seconds per request
failures=0
sim_pid=

rm -rf "$WORK"
mkdir -p "$WORK"
chmod 755 "$WORK"

ok() { printf 'ok - %s\n' "$*"; }
not_ok() { printf 'not ok - %s\n' "$*"; failures=$((failures + 1)); }

cleanup() {
	if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null; fi
	"$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
}
trap cleanup EXIT

sl_spawn_sim "$WORK" sim --timing-log "$WORK/timing.jsonl" --seed 1 ||
	{ not_ok "concurrency simulator started"; exit 1; }
sim_pid=$SL_SPAWN_PID
SIM_URL=$SL_SPAWN_URL

PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -d postgres \
	-c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
timeout 60 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$DB" <<EOF || { not_ok "setup"; exit 1; }
CREATE EXTENSION samplellm;
ALTER DATABASE $DB SET samplellm.endpoint = '$SIM_URL';
ALTER DATABASE $DB SET samplellm.cache = off;
ALTER DATABASE $DB SET samplellm.rows_per_call = 5;
ALTER DATABASE $DB SET client_min_messages = error;
CREATE TABLE t (id int NOT NULL, g text NOT NULL);
INSERT INTO t SELECT i, 'g' || i % 3 FROM generate_series(1, 60) i;
EOF

# run_at CONCURRENCY SEED: one call of about 8 requests; prints "requests
# max_in_flight wall_s" (requests of this call only: the model string
# carries a seed no other call uses)
run_at() {
	local conc=$1 seed=$2 t0 t1 out model="sim?latency=$LATENCY&seed=$2"
	t0=$(date +%s.%N)
	out=$(timeout 60 "$PG_BIN/psql" -X -q -At -d "$DB" -c "SET samplellm.max_concurrency = $conc" \
		-c "SET samplellm.model = '$model'" \
		-c "SELECT count(*) FROM samplellm_generate(NULL::t, 20, seed => $seed, resample => 'none')" 2>&1)
	t1=$(date +%s.%N)
	[ "$out" = 20 ] || { echo "call failed: $out" >&2; return 1; }
	# the simulator writes a timing line just after the answer went out
	sleep 0.3
	python3 - "$WORK/sim.jsonl" "$WORK/timing.jsonl" "$model" "$t0" "$t1" <<'PY'
import json, sys
log, timing, model, t0, t1 = sys.argv[1:6]
seqs = {e["seq"] for e in map(json.loads, open(log)) if e.get("model") == model}
recs = [r for r in map(json.loads, open(timing)) if r["seq"] in seqs]
events = []
for r in recs:
    events.append((r["mono_received"], 1))
    events.append((r["mono_sent"] if r["mono_sent"] is not None else r["mono_received"], -1))
inflight = peak = 0
for _, d in sorted(events, key=lambda e: (e[0], e[1])):    # a send before a receive at a tie
    inflight += d
    peak = max(peak, inflight)
print(len(recs), peak, "%.2f" % (float(t1) - float(t0)))
PY
}

# serial time of N requests, and a share of it
serial() { awk -v n="$1" -v l="$LATENCY" -v f="${2:-1}" 'BEGIN { printf "%.2f", n * l * f }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

if read -r n4 peak4 wall4 < <(run_at 4 31); then
	ok "max_concurrency = 4: the call returned 20 rows ($n4 requests)"
	if [ "$peak4" -ge 2 ]; then
		ok "max_concurrency = 4: requests overlap at the simulator (at most $peak4 in flight)"
	else
		not_ok "max_concurrency = 4: requests overlap at the simulator (at most $peak4 in flight)"
	fi
	if [ "$peak4" -le 4 ]; then ok "max_concurrency = 4: never more than 4 in flight ($peak4)"
	else not_ok "max_concurrency = 4: never more than 4 in flight ($peak4)"; fi
	# ~8 requests of 0.3 s on 4 connections: ~0.6 s plus the pipeline,
	# against 2.4 s one at a time; 60 % of serial leaves room for a busy
	# machine and still fails a build that sends one at a time
	half=$(serial "$n4" 0.6)
	if [ "$n4" -ge 4 ] && lt "$wall4" "$half"; then
		ok "max_concurrency = 4: wall time $wall4 s, under 60 % of serial ($(serial "$n4") s)"
	else
		not_ok "max_concurrency = 4: wall time $wall4 s, under 60 % of serial ($(serial "$n4") s; $n4 requests)"
	fi
else
	not_ok "max_concurrency = 4: the call returned 20 rows"
fi

if read -r n1 peak1 wall1 < <(run_at 1 32); then
	ok "max_concurrency = 1: the call returned 20 rows ($n1 requests)"
	if [ "$peak1" -eq 1 ]; then ok "max_concurrency = 1: one request in flight at a time"
	else not_ok "max_concurrency = 1: one request in flight at a time (saw $peak1)"; fi
	floor=$(serial "$n1" 0.95)
	if [ "$n1" -ge 4 ] && ! lt "$wall1" "$floor"; then
		ok "max_concurrency = 1: wall time $wall1 s, at least the serial $(serial "$n1") s"
	else
		not_ok "max_concurrency = 1: wall time $wall1 s, at least the serial $(serial "$n1") s ($n1 requests)"
	fi
else
	not_ok "max_concurrency = 1: the call returned 20 rows"
fi

if [ "$failures" -ne 0 ]; then
	echo "check_concurrency: $failures check(s) failed" >&2
	exit 1
fi
echo "check_concurrency: all checks passed"
