#!/usr/bin/env bash
# test/slow/fuzz.sh: part 3 of the slow target.  Builds the libFuzzer targets
# with ASan and UBSan: fuzz_parse (src/llm_parse.c, the HTTP body ->
# candidate rows path) for FUZZ_SECONDS (default 120) and fuzz_stream
# (src/llm_stream.c, server-sent events -> a body -> rows; the answer must
# not depend on how the bytes arrive) for FUZZ_STREAM_SECONDS (default 60),
# each from its seed corpus, then times the parser on large truncated
# answers (the salvage path must stay linear).
# Prints figures and PASS/FAIL lines; exits non-zero on any failure.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
secs=${FUZZ_SECONDS:-120}
stream_secs=${FUZZ_STREAM_SECONDS:-60}
work=$(mktemp -d /tmp/samplellm-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
status=0

bash "$here/build_fuzz.sh" "$work" >/dev/null || { echo "FAIL fuzz: build"; exit 1; }

# run_target NAME CORPUS SECONDS: one libFuzzer run from the seed corpus
run_target() {
	local name=$1 seeds=$2 t=$3 rc runs rate added rss cov arts ncorpus
	mkdir -p "$work/$name.corpus" "$work/$name.artifacts"
	cp "$seeds"/* "$work/$name.corpus/"
	ncorpus=$(ls "$seeds" | wc -l)
	# -timeout: one input of at most max_len bytes must parse in well under
	# a second; the quadratic salvage case is measured separately below.
	(cd "$work" && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		"./$name" -max_total_time="$t" -max_len=16384 -timeout=10 \
		-rss_limit_mb=2048 -dict="$here/fuzz_parse.dict" -print_final_stats=1 \
		-artifact_prefix="$work/$name.artifacts/" "$name.corpus" "$seeds" >"$work/$name.log" 2>&1)
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/$name.log")
	added=$(sed -n 's/^stat::new_units_added: *//p' "$work/$name.log")
	rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$work/$name.log")
	cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$work/$name.log" | tail -1)
	arts=$(ls "$work/$name.artifacts" | wc -l)
	echo "$name: ${t}s, ${runs:-?} inputs (${rate:-?}/s), seed corpus $ncorpus files, $added new units, ${cov:-?}, peak RSS ${rss:-?} MB, exit $rc, artifacts $arts"
	if [ "$rc" -ne 0 ] || [ "$arts" -ne 0 ] || [ -z "$runs" ]; then
		grep -E 'ERROR: (Address|Leak|libFuzzer)|runtime error|fuzz:|fuzz_shim:|SUMMARY' "$work/$name.log" | head -20
		mkdir -p "$here/crashes"
		cp "$work/$name.artifacts"/* "$here/crashes/" 2>/dev/null
		echo "FAIL $name: crash, leak, UB, broken promise or timeout (inputs copied to test/slow/crashes/)"
		status=1
	else
		echo "PASS $name: no crash, leak, undefined behaviour, broken promise or timeout"
	fi
}
run_target fuzz_parse "$here/corpus" "$secs"
run_target fuzz_stream "$here/corpus_stream" "$stream_secs"

# Linear time: a truncated answer (finish_reason "length") of N complete
# rows goes through salvage_rows().  Three times the rows must take less than
# five times as long (linear: about 3x; quadratic: about 9x).
python3 - "$work" <<'PY'
import json, sys
for n in (4000, 12000):
    rows = ",".join('{"a":%d,"b":"x"}' % i for i in range(n))
    content = '{"rows": [' + rows + ', {"a": '
    body = {"choices": [{"message": {"content": content}, "finish_reason": "length"}]}
    open("%s/salvage_%d.json" % (sys.argv[1], n), "w").write(json.dumps(body))
PY
t=()
for n in 4000 12000; do
	ms=$("$work/fuzz_parse" "$work/salvage_$n.json" 2>&1 | sed -n 's/^Executed .* in \([0-9]*\) ms$/\1/p')
	t+=("${ms:-0}")
	echo "salvage: truncated answer of $n rows ($(stat -c %s "$work/salvage_$n.json") bytes) parsed in ${ms:-?} ms (ASan build)"
done
if [ "${t[1]}" -gt $((5 * ${t[0]} + 200)) ]; then
	echo "FAIL fuzz-salvage: parse time grows quadratically with a truncated answer (${t[0]} ms -> ${t[1]} ms for 3x the rows)"
	status=1
else
	echo "PASS fuzz-salvage: parse time linear (${t[0]} ms -> ${t[1]} ms for 3x the rows)"
fi
exit $status
