#!/usr/bin/env bash
# test/run.sh: build, install, start a throwaway cluster and the LLM
# simulator, run the simulator's own tests and the pg_regress suite, and
# tear everything down, also on failure.  Exit status is the suite's.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap sl_teardown EXIT

sl_log "simulator unit tests"
(cd "$SL_ROOT" && python3 -m unittest -q test.test_llm_sim)

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
sl_check_server_log || status=1
# the progress view needs the library preloaded (shared memory)
sl_restart_cluster "shared_preload_libraries = 'samplellm'" || status=1
bash "$SL_ROOT/test/check_progress.sh" "$SL_TMP" || status=1
sl_check_server_log || status=1
passed=$(grep -cE '\.\.\. ok ' "$SL_TMP/regress.log" || true)
failed=$(grep -cE '\.\.\. FAILED' "$SL_TMP/regress.log" || true)
echo "pg_regress: $passed passed, $failed failed"
exit $status
