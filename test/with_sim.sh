#!/usr/bin/env bash
# test/with_sim.sh COMMAND...: run COMMAND (pg_regress, from `make
# installcheck`) with the LLM simulator the regression tests talk to.  When
# SAMPLELLM_SIM_URL is already set (test/run.sh started a simulator), the
# command runs as is.  The simulator is a test double, not an LLM; it listens
# on 127.0.0.1 only and writes its request log where the server can read it
# (the tests inspect requests with pg_read_file, so the server must run on
# this machine).
set -euo pipefail
if [ -n "${SAMPLELLM_SIM_URL:-}" ]; then
	exec "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/samplellm-sim.XXXXXX)
chmod 755 "$dir"
python3 "$here/llm_sim.py" --port 0 --port-file "$dir/port" --log "$dir/requests.jsonl" \
	--seed 1 >"$dir/sim.out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do
	[ -s "$dir/port" ] && break
	kill -0 $pid 2>/dev/null || { cat "$dir/sim.out" >&2; exit 1; }
	sleep 0.1
done
[ -s "$dir/port" ] || { echo "test/with_sim.sh: the simulator did not start" >&2; exit 1; }
touch "$dir/requests.jsonl"
chmod 644 "$dir/requests.jsonl"
export SAMPLELLM_SIM_URL="http://127.0.0.1:$(cat "$dir/port")/v1" SIM_LOG=$dir/requests.jsonl
echo "test/with_sim.sh: LLM simulator (a test double) at $SAMPLELLM_SIM_URL" >&2
status=0
"$@" || status=$?
exit $status
