#!/usr/bin/env bash
# test/with_sim.sh COMMAND...: run COMMAND (pg_regress, from `make
# installcheck`) with the LLM simulators the regression tests talk to: the
# main one (SAMPLELLM_SIM_URL, SIM_LOG) and a one-slot llama.cpp-like one
# for sql/servers.sql (SAMPLELLM_LLAMA_SIM_URL), each started here unless
# already set (test/run.sh starts its own).  The simulators are test
# doubles, not LLMs; they listen on 127.0.0.1 only and write their request
# logs where the server can read them (the tests inspect requests with
# pg_read_file, so the server must run on this machine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/samplellm-sim.XXXXXX)
chmod 755 "$dir"
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf "$dir"' EXIT

# start NAME [flags...]: a simulator; prints its base URL
start() {
	local name=$1 pid
	shift
	touch "$dir/$name.jsonl"
	chmod 644 "$dir/$name.jsonl"
	python3 "$here/llm_sim.py" --port 0 --port-file "$dir/$name.port" --log "$dir/$name.jsonl" \
		--seed 1 "$@" >"$dir/$name.out" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 1 100); do
		[ -s "$dir/$name.port" ] && break
		kill -0 $pid 2>/dev/null || { cat "$dir/$name.out" >&2; exit 1; }
		sleep 0.1
	done
	[ -s "$dir/$name.port" ] || { echo "test/with_sim.sh: the simulator $name did not start" >&2; exit 1; }
}
if [ -z "${SAMPLELLM_SIM_URL:-}" ]; then
	start main
	export SAMPLELLM_SIM_URL="http://127.0.0.1:$(cat "$dir/main.port")/v1" SIM_LOG=$dir/main.jsonl
	echo "test/with_sim.sh: LLM simulator (a test double) at $SAMPLELLM_SIM_URL" >&2
fi
if [ -z "${SAMPLELLM_LLAMA_SIM_URL:-}" ]; then
	start llama --personality llamacpp --slots 1 --tps 100
	export SAMPLELLM_LLAMA_SIM_URL="http://127.0.0.1:$(cat "$dir/llama.port")/v1" LLAMA_SIM_LOG=$dir/llama.jsonl
fi
status=0
"$@" || status=$?
exit $status
