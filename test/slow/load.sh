#!/usr/bin/env bash
# test/slow/load.sh: part 4 of the slow target.  LOAD_BACKENDS (8) psql
# sessions generate at once against a simulator limited to LOAD_RATE (10)
# requests per second, so 429s happen.  PASS when every session returns
# exactly n rows or fails with a clear samplellm ERROR (none crash), some
# sessions saw 429s and retried through them, the attempts per second stay
# within LOAD_HERD_FACTOR (4) times the limit (no thundering herd: a herd
# multiplies the load on the server that is already refusing work),
# all finish within LOAD_MAX_SECONDS (180), and the server log shows no
# crashed backend.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PGPORT=${PGPORT:-54382}
. "$here/../lib.sh"
trap sl_teardown EXIT
nb=${LOAD_BACKENDS:-8}
rate=${LOAD_RATE:-10}
n=${LOAD_ROWS:-100}
herd=${LOAD_HERD_FACTOR:-4}
maxsec=${LOAD_MAX_SECONDS:-180}

sl_start_cluster >/dev/null 2>&1 || { echo "FAIL load: cluster did not start"; exit 1; }
sl_start_sim --seed 3 --rate "$rate" 2>/dev/null || { echo "FAIL load: simulator did not start"; exit 1; }
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL || { echo "FAIL load: setup"; exit 1; }
CREATE EXTENSION samplellm;
ALTER DATABASE postgres SET samplellm.endpoint = '$SAMPLELLM_SIM_URL';
ALTER DATABASE postgres SET samplellm.model = 'sim';
ALTER DATABASE postgres SET samplellm.max_retries = 10;
ALTER DATABASE postgres SET samplellm.rows_per_call = 10;
ALTER DATABASE postgres SET samplellm.cache = off;
CREATE TABLE load_t (
    user_id  integer NOT NULL,
    device   text NOT NULL,
    price    numeric(6,2) NOT NULL,
    clicked  boolean NOT NULL
);
INSERT INTO load_t
SELECT i % 40, (ARRAY['mobile', 'desktop', 'tablet'])[1 + i % 3],
       round((5 + (i * 37) % 90)::numeric, 2), (i * 7) % 5 = 0
FROM generate_series(1, 400) i;
SQL

# sessions 1..nb: most take the first n valid rows, two resample uniformly
# and two run the paper's stage 2 (label clicked), so CPU and network overlap
start=$(date +%s.%N)
pids=()
for i in $(seq 1 "$nb"); do
	case $((i % 4)) in
		0) rs="resample => 'attribution', label => 'clicked'" ;;
		1) rs="resample => 'uniform'" ;;
		*) rs="resample => 'none'" ;;
	esac
	(
		s0=$(date +%s.%N)
		psql -X -q -At -v ON_ERROR_STOP=1 \
			-c "SET statement_timeout = '${maxsec}s'" \
			-c "SET client_min_messages = warning" \
			-c "SELECT count(*) FROM samplellm_generate(NULL::load_t, $n, seed => $i, $rs)" \
			-c "SELECT r->>'calls', r->>'retries', r->>'rate_limited', r->>'requests' FROM samplellm_last_run() r" \
			>"$SL_TMP/load_$i.out" 2>"$SL_TMP/load_$i.err"
		echo "$? $(awk -v a="$s0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')" >"$SL_TMP/load_$i.rc"
	) &
	pids+=($!)
done
wait "${pids[@]}"
total=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')

status=0
nok=0; nfail=0; sum_calls=0; sum_retries=0; sum_429=0; with429=0; sum_req=0
for i in $(seq 1 "$nb"); do
	read -r rc secs <"$SL_TMP/load_$i.rc"
	rows=$(sed -n 1p "$SL_TMP/load_$i.out")
	if [ "$rc" -eq 0 ] && [ "$rows" = "$n" ]; then
		IFS='|' read -r calls retries rl req < <(sed -n 2p "$SL_TMP/load_$i.out")
		nok=$((nok + 1))
		sum_calls=$((sum_calls + calls)); sum_retries=$((sum_retries + retries))
		sum_429=$((sum_429 + rl)); sum_req=$((sum_req + req))
		[ "$rl" -gt 0 ] && with429=$((with429 + 1))
		echo "load: session $i: $rows rows in $secs s, $req requests, $calls attempts, $retries retries, $rl rate-limited"
	elif grep -qE '^(psql:[^ ]* )?ERROR: +samplellm' "$SL_TMP/load_$i.err"; then
		nfail=$((nfail + 1))
		echo "load: session $i failed cleanly in $secs s: $(grep -m1 ERROR "$SL_TMP/load_$i.err")"
	else
		echo "load: session $i: rc $rc, rows '${rows}', $(head -c 300 "$SL_TMP/load_$i.err")"
		echo "FAIL load: session $i neither finished nor failed with a samplellm error"
		status=1
	fi
done
simreq=$(grep -c '' "$SIM_LOG" 2>/dev/null || echo 0)
aps=$(awk -v c="$sum_calls" -v t="$total" 'BEGIN {printf "%.1f", c / t}')
gps=$(awk -v c="$sum_req" -v t="$total" 'BEGIN {printf "%.1f", c / t}')
echo "load: $nb sessions, simulator at $rate req/s: $nok finished, $nfail failed cleanly, total $total s;" \
	"$sum_req requests, $sum_calls HTTP attempts ($simreq received by the simulator), $sum_retries retries, $sum_429 answered 429 ($with429 sessions saw a 429); $aps attempts/s, $gps successful requests/s"
if [ "$status" -eq 0 ]; then
	if [ "$nok" -eq 0 ]; then
		echo "FAIL load: no session finished"; status=1
	elif [ "$with429" -eq 0 ]; then
		echo "FAIL load: no 429 seen: the rate limit was not reached (raise LOAD_ROWS or lower LOAD_RATE)"; status=1
	elif awk -v c="$sum_calls" -v t="$total" -v r="$rate" -v h="$herd" 'BEGIN {exit !(c / t > h * r)}'; then
		echo "FAIL load: thundering herd: $aps attempts/s against a limit of $rate/s (bound ${herd}x)"; status=1
	elif awk -v t="$total" -v m="$maxsec" 'BEGIN {exit !(t > m)}'; then
		echo "FAIL load: took $total s (bound $maxsec s)"; status=1
	else
		echo "PASS load: all sessions finished or failed cleanly, 429s retried, $aps attempts/s for a limit of $rate/s (bound ${herd}x), $total s"
	fi
fi
sl_check_server_log || { echo "FAIL load: the server log shows a crashed backend"; status=1; }
exit $status
