#!/usr/bin/env bash
# test/run.sh: build, install, start a throwaway cluster and the LLM
# simulator, run the pg_regress suite and the simulator's own tests, and tear
# everything down, also on failure.  Exit status is the suite's.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap sl_teardown EXIT

sl_log "simulator unit tests"
(cd "$SL_ROOT" && python3 -m unittest -q test.test_llm_sim)

sl_build_install
sl_start_cluster
sl_start_sim --seed 1
status=0
make -C "$SL_ROOT" -s PG_CONFIG="$PG_CONFIG" installcheck || status=$?
if [ $status -ne 0 ] && [ -f "$SL_ROOT/regression.diffs" ]; then
	head -200 "$SL_ROOT/regression.diffs" >&2
fi
sl_check_server_log || status=1
if [ -f "$SL_ROOT/regression.out" ]; then
	passed=$(grep -cE '^(ok|test) .* \.\.\. ok|\.\.\. ok' "$SL_ROOT/regression.out" || true)
	failed=$(grep -cE '\.\.\. FAILED' "$SL_ROOT/regression.out" || true)
	echo "pg_regress: $passed passed, $failed failed"
fi
exit $status
