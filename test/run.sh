#!/usr/bin/env bash
# test/run.sh: build, install, start a throwaway cluster and the LLM
# simulator, run the simulator's own tests, the C unit tests, the pg_regress
# suite (every test of the Makefile's REGRESS list, which must be exactly
# sql/*.sql, and no fewer), the shell checks (faults, concurrency, a quick
# memory check, progress), and tear everything down, also on failure.  Exit
# status is the suite's.
# SL_INSTALLED=1: no build and no install; the suite runs against the
# samplellm already installed in $PG_CONFIG's tree (a package: test/deb.sh).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap sl_teardown EXIT

# The Makefile's REGRESS list is exactly sql/*.sql (each with its expected
# file): a test dropped from the list, or a file never listed, fails here.
regress_list=$(make -s -C "$SL_ROOT" PG_CONFIG="$PG_CONFIG" \
	--eval='sl-print-regress: ; @echo $(REGRESS)' sl-print-regress)
nregress=$(wc -w <<<"$regress_list")
listed=$(tr ' ' '\n' <<<"$regress_list" | grep . | sort)
on_disk=$(cd "$SL_ROOT/sql" && ls *.sql | sed 's/\.sql$//' | sort)
if [ "$nregress" -eq 0 ] || [ "$listed" != "$on_disk" ]; then
	sl_log "REGRESS ($regress_list) is not exactly sql/*.sql ($(echo $on_disk))"
	exit 1
fi
for t in $regress_list; do
	[ -f "$SL_ROOT/expected/$t.out" ] || { sl_log "expected/$t.out is missing"; exit 1; }
done

sl_log "simulator unit tests"
(cd "$SL_ROOT" && python3 -m unittest -q test.test_llm_sim)

sl_log "release metadata (versions, META.json, upgrade paths)"
python3 "$SL_ROOT/test/check_release.py"

sl_log "stage 2 unit tests (no server)"
make -C "$SL_ROOT/test/unit" -s check PG_CONFIG="$PG_CONFIG"

sl_build_install
sl_start_cluster
sl_start_sim --seed 1
sl_start_llama_sim --seed 1 --tps 100
status=0
make -C "$SL_ROOT" -s PG_CONFIG="$PG_CONFIG" installcheck 2>&1 | tee "$SL_TMP/regress.log" || status=$?
if [ $status -ne 0 ] && [ -f "$SL_ROOT/regression.diffs" ]; then
	head -200 "$SL_ROOT/regression.diffs" >&2
fi
bash "$SL_ROOT/test/check_faults.sh" "$SL_TMP" || status=1
bash "$SL_ROOT/test/check_concurrency.sh" "$SL_TMP" || status=1
bash "$SL_ROOT/test/check_memory.sh" "$SL_TMP" || status=1
sl_check_server_log || status=1
# the progress view needs the library preloaded (shared memory)
sl_restart_cluster "shared_preload_libraries = 'samplellm'" || status=1
bash "$SL_ROOT/test/check_progress.sh" "$SL_TMP" || status=1
sl_check_server_log || status=1
passed=$(grep -cE '\.\.\. ok ' "$SL_TMP/regress.log" || true)
failed=$(grep -cE '\.\.\. (FAILED|failed)' "$SL_TMP/regress.log" || true)
echo "pg_regress: $passed passed, $failed failed, of $nregress listed"
# an emptied or shortened run (a test pg_regress skipped, a list that did
# not reach it) must not pass
if [ $((passed + failed)) -ne "$nregress" ]; then
	sl_log "pg_regress ran $((passed + failed)) tests, the Makefile lists $nregress"
	status=1
fi
exit $status
