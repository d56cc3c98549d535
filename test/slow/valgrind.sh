#!/usr/bin/env bash
# test/slow/valgrind.sh: part 2 of the slow target.  A throwaway cluster whose
# postmaster (and so every backend it forks) runs under Valgrind Memcheck;
# the regression suite (VALGRIND_TESTS; stage2 and evaluate left out), then valgrind_stage2.sql (stage 2,
# interactions, evaluate at a small size).  Memcheck runs with
# --leak-check=full: a block definitely lost at a process's exit is an
# error.  PASS when no Memcheck error (leaks included) has a frame in
# samplellm.so (or in its sources), the server never crashed, and the
# scripts ran; no logs or no leak summary in them FAIL.  pg_regress output differences are reported, not judged:
# timing-dependent lines may differ at Valgrind's speed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export PGPORT=${PGPORT:-54383}
. "$here/../lib.sh"
# Default: the Makefile's REGRESS list without stage2 and evaluate, whose
# model training takes hours under Memcheck (valgrind_stage2.sql runs the
# same code at a small size).
tests=${VALGRIND_TESTS:-$(sed -n "s/^REGRESS *= *//p" "$SL_ROOT/Makefile" | tr ' ' '\n' | grep -vxE 'stage2|evaluate|' | tr '\n' ' ')}
VG_PID=
vg_cleanup() {
	if [ -n "${SL_TMP:-}" ] && [ -d "$SL_TMP/data" ]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SL_TMP/data" -m immediate stop >/dev/null 2>&1
	fi
	[ -n "$VG_PID" ] && { kill "$VG_PID" 2>/dev/null; wait "$VG_PID" 2>/dev/null; }
	sl_teardown
}
trap vg_cleanup EXIT

SL_TMP=$(mktemp -d /tmp/samplellm-vg.XXXXXX)
chmod 755 "$SL_TMP"; chown postgres: "$SL_TMP"
export PGHOST=$SL_TMP PGUSER=postgres PGDATABASE=postgres
runuser -u postgres -- "$PG_BIN/initdb" -D "$SL_TMP/data" -A trust -U postgres \
	--no-sync -E UTF8 --locale=C.UTF-8 >"$SL_TMP/initdb.log" 2>&1 ||
	{ cat "$SL_TMP/initdb.log"; echo "FAIL valgrind: initdb"; exit 1; }
cat >>"$SL_TMP/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$SL_TMP'
fsync = off
max_connections = 20
logging_collector = off
# background workers and parallel query only cost time under Valgrind
max_worker_processes = 2
max_parallel_workers_per_gather = 0
autovacuum = off
CONF
mkdir "$SL_TMP/vg"; chown postgres: "$SL_TMP/vg"
start=$(date +%s)
# No --error-exitcode: a backend exiting with it looks like a crash to the
# postmaster, which would restart every session; the per-process logs are
# read below instead.
runuser -u postgres -- valgrind --tool=memcheck --trace-children=yes \
	--track-origins=no --leak-check=full --show-leak-kinds=definite \
	--errors-for-leak-kinds=definite --read-var-info=no --num-callers=40 \
	--fullpath-after= --gen-suppressions=all \
	--suppressions="$here/valgrind.supp" --log-file="$SL_TMP/vg/vg.%p.log" \
	"$PG_BIN/postgres" -D "$SL_TMP/data" >"$SL_TMP/server.log" 2>&1 &
VG_PID=$!
for _ in $(seq 1 300); do
	"$PG_BIN/pg_isready" -q && break
	kill -0 "$VG_PID" 2>/dev/null || break
	sleep 1
done
"$PG_BIN/pg_isready" -q || { tail -20 "$SL_TMP/server.log"; echo "FAIL valgrind: the server did not start under Valgrind"; exit 1; }
echo "valgrind: postmaster up under Memcheck after $(( $(date +%s) - start )) s"
sl_start_sim --seed 1 2>/dev/null || { echo "FAIL valgrind: simulator did not start"; exit 1; }

status=0
t0=$(date +%s)
mkdir -p "$SL_TMP/regress"
# Later tests (builtin) read the table ctr that stage2.sql creates: when
# stage2 is left out, its fixtures (everything before its first SET
# samplellm line) run in its place, and the suite continues on the same
# database (--use-existing).
all=$(sed -n "s/^REGRESS *= *//p" "$SL_ROOT/Makefile")
before=() after=()
seen_stage2=no
for t in $all; do
	[ "$t" = stage2 ] && seen_stage2=yes
	case " $tests " in *" $t "*) ;; *) continue ;; esac
	if [ $seen_stage2 = no ]; then before+=("$t"); else after+=("$t"); fi
done
regress() {
	timeout "${VALGRIND_REGRESS_TIMEOUT:-3600}" \
		"$($PG_CONFIG --pkglibdir)/pgxs/src/test/regress/pg_regress" --inputdir="$SL_ROOT" \
		--outputdir="$SL_TMP/regress" --bindir="$PG_BIN" --load-extension=samplellm \
		--dbname=contrib_regression "$@"
}
rc=0
if [ ${#before[@]} -gt 0 ]; then regress "${before[@]}" >"$SL_TMP/regress.log" 2>&1 || rc=$?; fi
if [ ${#after[@]} -gt 0 ]; then
	case " $tests " in
		*" stage2 "*) ;;
		*) awk '/^SET samplellm/ {exit} {print}' "$SL_ROOT/sql/stage2.sql" |
			psql -X -q -d contrib_regression >/dev/null 2>&1 ;;
	esac
	regress --use-existing "${after[@]}" >>"$SL_TMP/regress.log" 2>&1 || rc=$?
fi
passed=$(grep -cE '\.\.\. ok ' "$SL_TMP/regress.log")
failed=$(grep -cE '\.\.\. FAILED' "$SL_TMP/regress.log")
echo "valgrind: pg_regress (${before[*]} ${after[*]}) in $(( $(date +%s) - t0 )) s: $passed passed, $failed differ (exit $rc)"
if [ "$failed" -gt 0 ]; then
	grep FAILED "$SL_TMP/regress.log"
	mkdir -p "$here/valgrind-out"
	cat "$SL_TMP/regress/regression.diffs" >"$here/valgrind-out/regression.diffs" 2>/dev/null
	echo "valgrind: diffs copied to test/slow/valgrind-out/regression.diffs"
fi
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
	cat "$SL_TMP/regress.log"; echo "FAIL valgrind: pg_regress did not run"; status=1
fi

t0=$(date +%s)
if psql -X -q -d contrib_regression -f "$here/valgrind_stage2.sql" >"$SL_TMP/stage2.out" 2>&1; then
	echo "valgrind: stage-2 script in $(( $(date +%s) - t0 )) s: $(grep -cE '^ *(t|[0-9]+|attribution)$' "$SL_TMP/stage2.out") results"
else
	cat "$SL_TMP/stage2.out"; echo "FAIL valgrind: the stage-2 script failed"; status=1
fi

runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SL_TMP/data" -m fast -t 120 stop >/dev/null 2>&1
wait "$VG_PID" 2>/dev/null; VG_PID=

# Each error block of a log ends at the next "==pid== " blank line.
total= ours= leaks=
python3 "$here/vg_summary.py" "$SL_TMP/vg" "$SL_ROOT/src/" >"$SL_TMP/vg-summary.txt" ||
	{ echo "FAIL valgrind: vg_summary.py failed"; status=1; }
read -r _ total ours leaks < <(grep '^TOTAL' "$SL_TMP/vg-summary.txt")
nlogs=$(ls "$SL_TMP/vg" | wc -l)
# Fail closed: no logs, no summary line, or no process that ran its leak
# check at exit means Memcheck saw nothing to judge.
checked=$(grep -lE 'LEAK SUMMARY|All heap blocks were freed' "$SL_TMP"/vg/vg.*.log 2>/dev/null | wc -l)
if ! [[ "${total:-}" =~ ^[0-9]+$ && "${ours:-}" =~ ^[0-9]+$ && "${leaks:-}" =~ ^[0-9]+$ ]] ||
	[ "$nlogs" -eq 0 ] || [ "$checked" -eq 0 ]; then
	echo "FAIL valgrind: no Memcheck figures ($nlogs logs, $checked with a leak check, summary '${total:-} ${ours:-} ${leaks:-}')"
	total=0 ours=0 leaks=0 status=1
fi
echo "valgrind: $nlogs processes traced ($checked leak-checked), $total Memcheck errors outside the suppressions, $ours with a samplellm frame ($leaks of them definite leaks); total $(( $(date +%s) - start )) s"
grep '^KIND' "$SL_TMP/vg-summary.txt" | head -10 | sed 's/^KIND/valgrind:   error kind (count, first line):/'
if [ "$ours" -gt 0 ]; then
	mkdir -p "$here/valgrind-out"
	cp "$SL_TMP/vg-summary.txt" "$here/valgrind-out/"
	grep -v '^KIND\|^TOTAL' "$SL_TMP/vg-summary.txt" | head -80
	echo "FAIL valgrind: Memcheck errors in samplellm (full list: test/slow/valgrind-out/vg-summary.txt)"
	status=1
fi
if ! sl_check_server_log "$SL_TMP/server.log"; then
	echo "FAIL valgrind: the server log shows a crashed backend"; status=1
fi
[ "$status" -eq 0 ] && echo "PASS valgrind: no Memcheck error in samplellm.so"
exit $status
