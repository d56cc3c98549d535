#!/usr/bin/env bash
# test/check_faults.sh: the fault cases pg_regress cannot drive, run by
# test/run.sh after the regression suite while its cluster still runs.
#
#   bash test/check_faults.sh SL_TMP
#
# SL_TMP is test/lib.sh's temp folder (server.log, data/); PGHOST, PGPORT,
# PGUSER and SAMPLELLM_SIM_URL come from the environment test/lib.sh sets.
# Checks:
#   - black-holed connect: samplellm.connect_timeout ends the attempt (a port
#     whose accept queue is full drops SYNs, so connect() really hangs; a
#     server that merely stalls before answering has already completed the
#     TCP handshake and exercises the request timeout instead)
#   - statement_timeout and pg_cancel_backend while connecting, and
#     pg_cancel_backend during a retry backoff (statement_timeout cannot fire
#     there: samplellm refuses a wait that would pass the deadline)
#   - pg_terminate_backend mid-transfer and during a backoff: the backend
#     exits cleanly, the server keeps answering
#   - the fake API keys of sql/faults.sql and sql/security.sql appear in no
#     test output, nowhere in the server log and nowhere in the data
#     directory, though the simulator received them
# Prints one "ok"/"not ok" line per check; exit status 1 if any failed.
set -uo pipefail

SL_TMP=${1:?usage: check_faults.sh SL_TMP}
SL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
# sl_check_server_log and its crash pattern
. "$SL_ROOT/test/lib.sh"
WORK=$SL_TMP/faults
DB=sl_faults
failures=0
sim_pid=

rm -rf "$WORK"		# a stale sim.port would be read before the new one is written
mkdir -p "$WORK"
chmod 755 "$WORK"

ok() { printf 'ok - %s\n' "$*"; }
not_ok() { printf 'not ok - %s\n' "$*"; failures=$((failures + 1)); }
check() {	# check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then ok "$what"; else not_ok "$what"; fi
}
now() { date +%s.%N; }
# less SECONDS A B: is B - A < SECONDS?
less() { awk -v d="$1" -v a="$2" -v b="$3" 'BEGIN { exit !(b - a < d) }'; }
# bounded DESCRIPTION SECONDS A B: a check that prints the measured time.
# Timeouts that are not cancels (the black hole, the call without a
# timeout) have generous bounds: they prove the call did not sit out the
# 30-60 s it was given.  Cancels are bounded at CANCEL_BOUND (below).
bounded() {
	local what=$1 limit=$2 a=$3 b=$4 took
	took=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b - a }')
	check "$what (took $took s; bound $limit s)" less "$limit" "$a" "$b"
}

cleanup() {
	if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null; fi
	"$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
}
trap cleanup EXIT

q() {	# q SQL...: run in the test database, quietly, bounded
	timeout 60 "$PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"
}

# A second simulator (the suite's own keeps running) with a black hole.
sl_spawn_sim "$WORK" sim --seed 1 --blackhole-port-file "$WORK/hole.port" ||
	{ not_ok "second simulator started"; exit 1; }
sim_pid=$SL_SPAWN_PID
SIM_URL=$SL_SPAWN_URL
HOLE_URL="http://127.0.0.1:$(cat "$WORK/hole.port")/v1"

PGOPTIONS="-c client_min_messages=warning" "$PG_BIN/psql" -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
q <<EOF
CREATE EXTENSION samplellm;
ALTER DATABASE $DB SET samplellm.endpoint = '$SIM_URL';
ALTER DATABASE $DB SET samplellm.model = 'sim';
ALTER DATABASE $DB SET samplellm.max_concurrency = 1;
-- (no capacity probes: the checks count the simulator's requests)
ALTER DATABASE $DB SET samplellm.discover_capacity = off;
ALTER DATABASE $DB SET client_min_messages = warning;
CREATE TABLE t (id int NOT NULL, g text NOT NULL);
INSERT INTO t SELECT i, 'g' || i % 3 FROM generate_series(1, 60) i;
EOF
GEN="SELECT count(*) FROM samplellm_generate(NULL::t, 5, resample => 'none')"

# run_case NAME SETTINGS: runs GEN with SETTINGS in a background psql named
# NAME (application_name); output in $WORK/NAME.out; sets case_pid.
run_case() {
	local name=$1 settings=$2
	PGAPPNAME=$name timeout 60 "$PG_BIN/psql" -X -d "$DB" -v VERBOSITY=verbose \
		-c "$settings" -c "$GEN" -c "SELECT 'session still usable'" \
		>"$WORK/$name.out" 2>&1 &
	case_pid=$!
}
# backend_of NAME: the backend pid of application NAME, once it waits on the network
backend_of() {
	local pid=
	for _ in $(seq 1 100); do
		pid=$(q -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'
		            AND wait_event_type = 'Extension' AND state = 'active'")
		[ -n "$pid" ] && { echo "$pid"; return 0; }
		sleep 0.05
	done
	return 1
}

# 1. black-holed connect: connect_timeout ends each attempt (not the
#    statement_timeout guard, not the 60 s request timeout)
t0=$(now)
out=$(q -v VERBOSITY=verbose -c "SET samplellm.endpoint = '$HOLE_URL'" \
	-c "SET samplellm.connect_timeout = '300ms'" -c "SET samplellm.request_timeout = '60s'" \
	-c "SET samplellm.max_retries = 1" -c "SET statement_timeout = '10s'" -c "$GEN" 2>&1)
t1=$(now)
check "black hole: connect timeout, SQLSTATE 08006" \
	grep -q "ERROR:  08006: could not reach the LLM endpoint" <<<"$out"
check "black hole: curl reports the connect timeout" \
	grep -q "Timeout was reached (Connection timed out); 2 attempts" <<<"$out"
bounded "black hole: 2 attempts of 300 ms" 5 "$t0" "$t1"

# Cancel and terminate are bounded at 2 s (the README promises about a
# second): each case runs once more when its first run is over the bound,
# since a busy shared machine can stall any one run, and the check judges
# the second run; both figures are printed.
CANCEL_BOUND=2
# retry_bounded DESCRIPTION BOUND FUNC ARGS...: FUNC runs the case and sets
# t0/t1 around the part the bound covers (from the cancel to the end);
# prints the figure, reruns FUNC once when it is over BOUND.
retry_bounded() {
	local what=$1 limit=$2 first
	shift 2
	"$@"
	if ! less "$limit" "$t0" "$t1"; then
		first=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
		echo "# $what: first run took $first s, over the $limit s bound; running it once more"
		"$@"
	fi
	bounded "$what" "$limit" "$t0" "$t1"
}

# 2. statement_timeout while connecting: the bound covers the time after
#    the 1 s timeout fired (t0 = start + 1 s)
stmt_timeout_connect() {
	local s
	s=$(now)
	out=$(timeout 60 "$PG_BIN/psql" -X -d "$DB" -v VERBOSITY=verbose \
		-c "SET samplellm.endpoint = '$HOLE_URL'" -c "SET samplellm.connect_timeout = '60s'" \
		-c "SET statement_timeout = '1s'" -c "$GEN" -c "SELECT 'session still usable'" 2>&1)
	t1=$(now)
	t0=$(awk -v s="$s" 'BEGIN { printf "%.3f", s + 1 }')
}
retry_bounded "statement_timeout (1 s) while connecting: ends the call within $CANCEL_BOUND s of the timeout" \
	"$CANCEL_BOUND" stmt_timeout_connect
check "statement_timeout while connecting: 57014" \
	grep -q "ERROR:  57014: canceling statement due to statement timeout" <<<"$out"
check "statement_timeout while connecting: session usable" \
	grep -q "session still usable" <<<"$out"

# signal_case FUNCTION NAME SETTINGS: runs GEN in the background, sends
# FUNCTION (pg_cancel_backend(pid) or pg_terminate_backend(pid, 5000)) once
# it waits on the network; t0/t1 around the signal and the end; sets
# case_waited=no when the call never waited on the network, and
# case_requests to the requests of this run
signal_case() {
	local fn=$1 name=$2 settings=$3 pid before
	before=$(wc -l <"$WORK/sim.jsonl")
	run_case "$name" "$settings"
	case_waited=yes
	if pid=$(backend_of "$name"); then
		sleep 0.5
		t0=$(now)
		q -c "SELECT ${fn/pid/$pid}" >/dev/null
		wait "$case_pid"
		t1=$(now)
	else
		wait "$case_pid"
		case_waited=no
		t0=0 t1=0
	fi
	case_requests=$(( $(wc -l <"$WORK/sim.jsonl") - before ))
}

# 3. pg_cancel_backend while connecting, and during a retry backoff
#    (the server asks to wait 30 s before the retry)
for c in "connect|SET samplellm.endpoint = '$HOLE_URL'; SET samplellm.connect_timeout = '60s'" \
	"backoff|SET samplellm.model = 'sim?fail=503:-1&retry_after=30&seed=11'; SET samplellm.max_retries = 3"; do
	name=sl_cancel_${c%%|*}
	retry_bounded "cancel during ${c%%|*}: ends the call" "$CANCEL_BOUND" \
		signal_case "pg_cancel_backend(pid)" "$name" "${c#*|}"
	if [ "$case_waited" = no ]; then
		not_ok "cancel during ${c%%|*}: the call never waited on the network"
		cat "$WORK/$name.out" >&2
		continue
	fi
	check "cancel during ${c%%|*}: 57014" \
		grep -q "ERROR:  57014: canceling statement due to user request" "$WORK/$name.out"
	check "cancel during ${c%%|*}: session usable" grep -q "session still usable" "$WORK/$name.out"
	if [ "${c%%|*}" = backoff ]; then
		check "cancel during backoff: it was a backoff (one request only; saw $case_requests)" \
			test "$case_requests" -eq 1
	fi
done

# 4. pg_terminate_backend mid-transfer (the body drips at 5 bytes/s) and
#    during a backoff: the backend exits cleanly, the server keeps answering
for c in "transfer|SET samplellm.model = 'sim?drip=5&seed=12'" \
	"backoff|SET samplellm.model = 'sim?fail=503:-1&retry_after=30&seed=13'; SET samplellm.max_retries = 3"; do
	name=sl_terminate_${c%%|*}
	retry_bounded "terminate during ${c%%|*}: ends the backend" "$CANCEL_BOUND" \
		signal_case "pg_terminate_backend(pid, 5000)" "$name" "${c#*|}"
	if [ "$case_waited" = no ]; then
		not_ok "terminate during ${c%%|*}: the call never waited on the network"
		cat "$WORK/$name.out" >&2
		continue
	fi
	check "terminate during ${c%%|*}: FATAL 57P01" \
		grep -q "FATAL:  57P01: terminating connection due to administrator command" "$WORK/$name.out"
	check "terminate during ${c%%|*}: server still answers" \
		test "$(q -c 'SELECT 1')" = 1
done
check "terminate mid-transfer: the body had started" grep -q 'seed=12' "$WORK/sim.jsonl"
check "no crashed backend in the server log" sl_check_server_log "$SL_TMP/server.log"

# 5. cancel during stage 2's math: the built-in generator proposes 15,000
#    candidates in well under a second, then f_T, Integrated Hessians and f_S
#    train for several seconds; statement_timeout ends them
q <<EOF
CREATE TABLE big (a int, b int, c float8, d text, e text, f int, y bool);
INSERT INTO big SELECT i % 97, i % 13, (i * 7919 % 1000) / 10.0, 'd' || i % 11, 'e' || i % 7,
       i % 50, (i % 97 + i % 13) % 3 = 0 FROM generate_series(1, 20000) i;
EOF
# The call without a timeout first: the timeout is then set to 60 % of its
# length, so that it falls inside the call (mostly stage 2) on a fast or a
# slow machine alike.
t0=$(now)
out=$(timeout 120 "$PG_BIN/psql" -X -d "$DB" -At \
	-c "SET samplellm.provider = 'builtin'" \
	-c "SELECT count(*) FROM samplellm_generate(NULL::big, 5000, label => 'y', seed => 1)" 2>&1)
t1=$(now)
check "the call without a timeout returns 5000 rows" grep -qx "5000" <<<"$out"
bounded "the call without a timeout" 120 "$t0" "$t1"
full_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%d", (b - a) * 1000 }')
limit_ms=$(( full_ms * 6 / 10 ))
[ "$limit_ms" -lt 300 ] && limit_ms=300
# the bound covers the time after the timeout fired
stmt_timeout_stage2() {
	local s
	s=$(now)
	out=$(timeout 60 "$PG_BIN/psql" -X -d "$DB" -v VERBOSITY=verbose \
		-c "SET samplellm.provider = 'builtin'" -c "SET statement_timeout = '${limit_ms}ms'" \
		-c "SELECT count(*) FROM samplellm_generate(NULL::big, 5000, label => 'y', seed => 1)" \
		-c "SELECT 'session still usable'" 2>&1)
	t1=$(now)
	t0=$(awk -v s="$s" -v l="$limit_ms" 'BEGIN { printf "%.3f", s + l / 1000 }')
}
retry_bounded "statement_timeout (${limit_ms} ms, 60 % of the call) during stage 2: ends the call within $CANCEL_BOUND s of the timeout" \
	"$CANCEL_BOUND" stmt_timeout_stage2
check "statement_timeout during stage 2: 57014" \
	grep -q "ERROR:  57014: canceling statement due to statement timeout" <<<"$out"
check "statement_timeout during stage 2: session usable" grep -q "session still usable" <<<"$out"

# 5b. six concurrent calls with one idempotency key: one pays, the others
#     wait for it and return its run id (no 23505, no second payment)
q -c "CREATE TABLE idem_target (LIKE t)"
seq0=$(wc -l <"$WORK/sim.jsonl")
pids=()
for i in 1 2 3 4 5 6; do
	timeout 60 "$PG_BIN/psql" -X -At -d "$DB" -c "SET samplellm.model = 'sim?latency=0.5'" \
		-c "SELECT samplellm_generate_into('t', 'idem_target', 5, seed => $i, resample => 'none', idempotency_key => 'nightly')" \
		>"$WORK/idem.$i.out" 2>&1 &
	pids+=($!)
done
idem_fail=0
for p in "${pids[@]}"; do wait "$p" || idem_fail=1; done
check "idempotency: all six concurrent calls succeed" test "$idem_fail" -eq 0
check "idempotency: no unique-index violation reached a caller" \
	bash -c "! grep -q '23505\|duplicate key' '$WORK'/idem.*.out"
ids=$(cat "$WORK"/idem.*.out | grep -E '^[0-9]+$' | sort -u | wc -l)
check "idempotency: all six returned one run id (distinct ids: $ids)" test "$ids" -eq 1
rows=$(q -c "SELECT count(*) FROM idem_target")
check "idempotency: exactly one run's rows inserted ($rows)" test "$rows" -eq 5
paid=$(( $(wc -l <"$WORK/sim.jsonl") - seq0 ))
check "idempotency: one run paid (requests: $paid)" test "$paid" -eq 1

# 6. the fake keys (built in SQL from md5, so no statement text holds them)
#    reached the simulator but no output, log or data file
for k in "faultkey|samplellm faults" "seckey|samplellm security" "cachekey|samplellm cache"; do
	secret=$(printf %s "${k#*|}" | md5sum | cut -c1-32)
	key="sk-fake-${k%%|*}-$secret"
	if [ -n "${SIM_LOG:-}" ] && grep -q "Bearer $key" "$SIM_LOG"; then
		ok "key ${k%%|*}: the simulator received it"
	else
		not_ok "key ${k%%|*}: the simulator received it (SIM_LOG=${SIM_LOG:-unset})"
	fi
	check "key ${k%%|*}: in no regression output" \
		bash -c "! grep -rl '$secret' '$SL_ROOT/results' '$SL_ROOT/regression.out' 2>/dev/null | grep -q ."
	check "key ${k%%|*}: not in the server log" bash -c "! grep -q '$secret' '$SL_TMP/server.log'"
	check "key ${k%%|*}: in no file of the data directory" \
		bash -c "! grep -rla '$secret' '$SL_TMP/data' 2>/dev/null | grep -q ."
done
check "the server log saw log_statement = all (the key check is not vacuous)" \
	grep -q "statement: SELECT \* FROM sec_error('sim?status=401')" "$SL_TMP/server.log"

if [ "$failures" -ne 0 ]; then
	echo "check_faults: $failures check(s) failed" >&2
	exit 1
fi
echo "check_faults: all checks passed"
