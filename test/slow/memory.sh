#!/usr/bin/env bash
# test/slow/memory.sh: part 1 of the slow target.  Phases of calls in one
# session against the simulator (test/slow/memory.sql says what each does):
#   ok        1,000 LLM calls, resample 'none', cache off
#   fail      1,000 failing calls (HTTP 500, invalid JSON, CHECK raising, XX000)
#   stage2      300 LLM calls with stage 2 (label: f_T, IH, f_S, weights, draw)
#   builtin     300 built-in generator calls with stage 2
#   cache     1,000 calls with samplellm.cache = on (cache hits after ten)
#   evaluate  1,000 samplellm_evaluate calls
# After the warm-up (the first tenth of each phase) and at its end: the
# backend's RSS, anonymous RSS, memory-context totals, open file descriptors
# and sockets.  A phase PASSes when, over the calls after its warm-up,
# RssAnon (the backend's private memory: palloc blocks and libcurl's,
# cJSON's and OpenBLAS's malloc) grows by less than its bound in bytes per
# call (MEM_BOUND_<PHASE>, defaults below: about three times the growth
# measured on this machine kind, so that a leak of a few hundred bytes per
# call fails), memory contexts by less than CTX_BOUND_KB (default 64) over
# the phase, the counts of sockets and of descriptors other than relation
# files do not grow (the backend's cache of open relation files is
# PostgreSQL's own and grows as the test's tables grow), and every call of
# the phase succeeded (or, for fail, failed).  Missing figures FAIL.
# VmRSS is reported too, but it also counts shared buffers the backend
# touches for the first time (RssShmem): each successful call inserts a row
# into samplellm_run_ledger, so VmRSS rises with the table's size, not with
# a leak.  MEM_PHASES (default: all six, in the order above) picks phases.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PGPORT=${PGPORT:-54381}
. "$here/../lib.sh"
trap sl_teardown EXIT
ctxbound=${CTX_BOUND_KB:-64}
phases=(${MEM_PHASES:-ok fail stage2 builtin cache evaluate})
declare -A calls=([ok]=1000 [fail]=1000 [stage2]=300 [builtin]=300 [cache]=1000 [evaluate]=1000)
# bytes per call after warm-up; measured (2026-12, 3 runs): ok 82-159,
# fail 0-105, stage2 0, builtin 0, cache 0, evaluate 0; a leak of 1 kB per
# call (malloc or palloc in TopMemoryContext) fails every phase
declare -A bound=([ok]=512 [fail]=384 [stage2]=512 [builtin]=512 [cache]=256 [evaluate]=256)
for p in "${phases[@]}"; do
	[ -n "${calls[$p]:-}" ] || { echo "FAIL memory: unknown phase '$p'"; exit 1; }
	v=MEM_BOUND_${p^^}; [ -n "${!v:-}" ] && bound[$p]=${!v}
	v=MEM_CALLS_${p^^}; [ -n "${!v:-}" ] && calls[$p]=${!v}
done

sl_start_cluster >/dev/null 2>&1 || { echo "FAIL memory: cluster did not start"; exit 1; }
sl_start_sim --seed 7 2>/dev/null || { echo "FAIL memory: simulator did not start"; exit 1; }
export SOCKLOG=$SL_TMP/sockets.log PGDATA_DIR=$SL_TMP/data
psql -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION samplellm' >/dev/null

# the driver: memory.sql, then each phase's warm-up, a snapshot, the rest,
# a snapshot
fdline() {	# fdline KEY: a psql line that logs KEY, sockets, non-relation fds
	printf '%s\n' "\\! echo \"$1 \$(ls -l /proc/\$BPID/fd | grep -c socket:) \$(ls -l /proc/\$BPID/fd | tail -n +2 | grep -vc \"\$PGDATA_DIR/\")\" >> \"\$SOCKLOG\""
}
{
	echo "\\i $here/memory.sql"
	for p in "${phases[@]}"; do
		n=${calls[$p]} w=$(( ${calls[$p]} / 10 ))
		echo "CALL mem_loop('$p', 1, $w, 0, 0) \\gset r_"
		echo "SELECT mem_snap('$p', $w, :r_ok, :r_failed);"
		fdline "${p}_$w"
		echo "CALL mem_loop('$p', $((w + 1)), $n, :r_ok, :r_failed) \\gset r_"
		echo "SELECT mem_snap('$p', $n, :r_ok, :r_failed);"
		fdline "${p}_$n"
	done
	echo "SELECT set_config('memtest.boom', '', false);"
	echo "\\pset format unaligned"
	echo "\\pset fieldsep ' | '"
	echo "\\pset footer off"
	echo "\\echo errors by kind (kind | sqlstate | first message | count):"
	echo "SELECT kind, sqlstate, min(message), count(*) FROM mem_errors GROUP BY 1, 2 ORDER BY 1, 2;"
} >"$SL_TMP/driver.sql"

start=$(date +%s)
if ! psql -X -q -v ON_ERROR_STOP=1 -v sim_url="$SAMPLELLM_SIM_URL" -f "$SL_TMP/driver.sql" \
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
total=0
for p in "${phases[@]}"; do total=$((total + calls[$p])); done
echo "memory: $elapsed s for $total calls ($(grep -c '"path": "/v1/chat/completions"' "$SIM_LOG" 2>/dev/null) HTTP requests)"
printf '%-8s %5s %8s %8s %8s %8s %4s %6s %10s %10s %5s %5s %6s %7s\n' phase calls rss_kb anon_kb shmem_kb file_kb fds nonrel ctx_total ctx_used ctxs ok failed sockets
while read -r label ncalls rss anon shm fil fds ctot cused ccount ok failed; do
	k="${label}_${ncalls}"; [ "$label" = start ] && k=start
	read -r _ sock nonrel < <(grep "^$k " "$SOCKLOG")
	printf '%-8s %5s %8s %8s %8s %8s %4s %6s %10s %10s %5s %5s %6s %7s\n' "$label" "$ncalls" "$rss" "$anon" "$shm" "$fil" "$fds" "${nonrel:-?}" "$ctot" "$cused" "$ccount" "$ok" "$failed" "${sock:-?}"
done <"$SL_TMP/snap.txt"

isnum() { for v in "$@"; do [[ "$v" =~ ^[0-9]+$ ]] || return 1; done; }
read -r _ sock0 _ < <(grep "^start " "$SOCKLOG")
for p in "${phases[@]}"; do
	n=${calls[$p]} w=$(( ${calls[$p]} / 10 ))
	rss1= anon1= shm1= ctx1= rss2= anon2= shm2= ctx2= ok= failed= nonrel1= nonrel2= sock2= fds1= fds2=
	read -r _ _ rss1 anon1 shm1 _ fds1 ctx1 _ _ _ _ < <(grep "^$p $w " "$SL_TMP/snap.txt")
	read -r _ _ rss2 anon2 shm2 _ fds2 ctx2 _ _ ok failed < <(grep "^$p $n " "$SL_TMP/snap.txt")
	read -r _ _ nonrel1 < <(grep "^${p}_$w " "$SOCKLOG")
	read -r _ sock2 nonrel2 < <(grep "^${p}_$n " "$SOCKLOG")
	# fail closed: a snapshot or a descriptor count that is missing is a failure
	if ! isnum "$rss1" "$anon1" "$shm1" "$ctx1" "$rss2" "$anon2" "$shm2" "$ctx2" "$ok" "$failed" \
		"$nonrel1" "$nonrel2" "$sock2" "${sock0:-}" "$fds1" "$fds2"; then
		echo "FAIL memory-$p: figures missing (snapshots at calls $w and $n, descriptor counts)"
		status=1
		continue
	fi
	m=$((n - w))
	drss=$((rss2 - rss1)); danon=$((anon2 - anon1)); dctx=$(( (ctx2 - ctx1) / 1024 ))
	per=$(awk -v d="$drss" -v m="$m" 'BEGIN {printf "%.0f", d * 1024 / m}')
	peranon=$(awk -v d="$danon" -v m="$m" 'BEGIN {printf "%.0f", d * 1024 / m}')
	echo "memory ($p calls $w -> $n): RssAnon $(printf %+d $danon) kB = $peranon B/call (bound ${bound[$p]} B/call), contexts $(printf %+d $dctx) kB (bound $ctxbound kB), VmRSS $(printf %+d $drss) kB ($per B/call; RssShmem $(printf %+d $((shm2 - shm1))) kB), fds $fds1 -> $fds2 (other than relation files $nonrel1 -> $nonrel2), sockets $sock0 -> $sock2; $ok ok, $failed failed"
	want_ok=$n; want_failed=0
	[ "$p" = fail ] && { want_ok=0; want_failed=$n; }
	if [ "$ok" -ne "$want_ok" ] || [ "$failed" -ne "$want_failed" ]; then
		echo "FAIL memory-$p: expected $want_ok ok and $want_failed failed calls"; status=1
	elif [ $((danon * 1024)) -ge $((bound[$p] * m)) ] || [ "$dctx" -ge "$ctxbound" ]; then
		echo "FAIL memory-$p: growth over the bound (${bound[$p]} B/call RssAnon, $ctxbound kB contexts)"; status=1
	elif [ "$nonrel2" -gt "$nonrel1" ] || [ "$sock2" -gt "$sock0" ]; then
		echo "FAIL memory-$p: file descriptors or sockets leak"; status=1
	else
		echo "PASS memory-$p: flat ($peranon B/call RssAnon, bound ${bound[$p]}; contexts $(printf %+d $dctx) kB, bound $ctxbound)"
	fi
done
sl_check_server_log || { echo "FAIL memory: a backend crashed"; status=1; }
exit $status
