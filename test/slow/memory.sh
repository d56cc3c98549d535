#!/usr/bin/env bash
# test/slow/memory.sh: part 1 of the slow target.  1,000 successful and 1,000
# failing calls in one session against the simulator; the backend's RSS,
# anonymous RSS, memory-context totals, open file descriptors and sockets
# after call 100 (warm-up) and call 1,000 of each kind.  PASS when, over the
# 900 calls after warm-up, RssAnon (the backend's private memory: palloc
# blocks and libcurl's malloc) grows by less than MEM_BOUND_KB (default
# 2048), memory contexts by less than CTX_BOUND_KB (default 512), and the
# counts of sockets and of descriptors other than relation files do not grow
# (the backend's cache of open relation files is PostgreSQL's own and grows
# as the test's tables grow; all descriptors are reported too).  VmRSS is reported too, but it
# also counts shared buffers the backend touches for the first time
# (RssShmem): each successful call inserts a row into samplellm_run_ledger,
# so VmRSS rises with the table's size, not with a leak.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PGPORT=${PGPORT:-54381}
. "$here/../lib.sh"
trap sl_teardown EXIT
bound=${MEM_BOUND_KB:-2048}
ctxbound=${CTX_BOUND_KB:-512}

sl_start_cluster >/dev/null 2>&1 || { echo "FAIL memory: cluster did not start"; exit 1; }
sl_start_sim --seed 7 2>/dev/null || { echo "FAIL memory: simulator did not start"; exit 1; }
export SOCKLOG=$SL_TMP/sockets.log PGDATA_DIR=$SL_TMP/data
psql -X -q -v ON_ERROR_STOP=1 -v sim_url="$SAMPLELLM_SIM_URL" -c 'CREATE EXTENSION samplellm' >/dev/null
start=$(date +%s)
if ! psql -X -q -v ON_ERROR_STOP=1 -v sim_url="$SAMPLELLM_SIM_URL" -f "$here/memory.sql" \
	>"$SL_TMP/memory.out" 2>&1; then
	cat "$SL_TMP/memory.out"
	echo "FAIL memory: the script failed"
	exit 1
fi
elapsed=$(( $(date +%s) - start ))
grep -m5 WARNING "$SL_TMP/memory.out"
sed -n '/^errors by kind/,$p' "$SL_TMP/memory.out" | grep -v '^kind | sqlstate'

psql -X -q -A -F ' ' -t -c "SELECT label, calls, rss_kb, anon_kb, shmem_kb, file_kb, fds, ctx_total, ctx_used, ctx_count, ok, failed FROM mem_snap ORDER BY at" \
	>"$SL_TMP/snap.txt"
status=0
echo "memory: $elapsed s for 2,000 calls (samplellm.cache = off, $(grep -c '"path": "/v1/chat/completions"' "$SIM_LOG" 2>/dev/null || wc -l <"$SIM_LOG") HTTP requests)"
printf '%-6s %5s %8s %8s %8s %8s %4s %6s %10s %10s %5s %5s %6s %7s\n' phase calls rss_kb anon_kb shmem_kb file_kb fds nonrel ctx_total ctx_used ctxs ok failed sockets
while read -r label calls rss anon shm fil fds ctot cused ccount ok failed; do
	k="${label}_${calls}"; [ "$label" = start ] && k=start
	read -r _ sock nonrel < <(grep "^$k " "$SOCKLOG")
	printf '%-6s %5s %8s %8s %8s %8s %4s %6s %10s %10s %5s %5s %6s %7s\n' "$label" "$calls" "$rss" "$anon" "$shm" "$fil" "$fds" "$nonrel" "$ctot" "$cused" "$ccount" "$ok" "$failed" "$sock"
done <"$SL_TMP/snap.txt"
read -r _ sock0 nonrel0 < <(grep "^start " "$SOCKLOG")
for phase in ok fail; do
	read -r _ _ rss1 anon1 shm1 _ fds1 ctx1 _ _ _ _ < <(grep "^$phase 100 " "$SL_TMP/snap.txt")
	read -r _ _ rss2 anon2 shm2 _ fds2 ctx2 _ _ ok failed < <(grep "^$phase 1000 " "$SL_TMP/snap.txt")
	read -r _ _ nonrel1 < <(grep "^${phase}_100 " "$SOCKLOG")
	read -r _ sock2 nonrel2 < <(grep "^${phase}_1000 " "$SOCKLOG")
	drss=$((rss2 - rss1)); danon=$((anon2 - anon1)); dctx=$(( (ctx2 - ctx1) / 1024 ))
	per=$(awk -v d="$drss" 'BEGIN {printf "%.2f", d * 1024 / 900}')
	peranon=$(awk -v d="$danon" 'BEGIN {printf "%.2f", d * 1024 / 900}')
	echo "memory ($phase calls 100 -> 1000): VmRSS $(printf %+d $drss) kB ($per B/call; RssShmem $(printf %+d $((shm2 - shm1))) kB), RssAnon $(printf %+d $danon) kB ($peranon B/call), contexts $(printf %+d $dctx) kB, fds $fds1 -> $fds2 (other than relation files $nonrel1 -> $nonrel2), sockets $sock0 -> $sock2; $ok ok, $failed failed"
	want_ok=1000; want_failed=0
	[ "$phase" = fail ] && { want_ok=0; want_failed=1000; }
	if [ "$ok" -ne "$want_ok" ] || [ "$failed" -ne "$want_failed" ]; then
		echo "FAIL memory-$phase: expected $want_ok ok and $want_failed failed calls"; status=1
	elif [ "$danon" -ge "$bound" ] || [ "$dctx" -ge "$ctxbound" ]; then
		echo "FAIL memory-$phase: growth over the bound ($bound kB RssAnon, $ctxbound kB contexts)"; status=1
	elif [ "$nonrel2" -gt "$nonrel1" ] || [ "$sock2" -gt "$sock0" ]; then
		echo "FAIL memory-$phase: file descriptors or sockets leak"; status=1
	else
		echo "PASS memory-$phase: flat (bound $bound kB RssAnon over 900 calls, $ctxbound kB contexts)"
	fi
done
sl_check_server_log || { echo "FAIL memory: a backend crashed"; status=1; }
exit $status
