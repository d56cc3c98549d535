#!/usr/bin/env bash
# test/slow/llama.sh: the real-engine part of the slow target (issue 16).
#
# llama.cpp (the npm package node-llama-cpp, its prebuilt CPU binary) behind a
# small OpenAI-compatible server of ours (test/slow/llama/server.mjs: one slot,
# a FIFO queue, streaming, JSON-schema grammars, /props and /slots like
# llama.cpp's, generation stopped when the client disconnects), with a model
# file written here (test/slow/llama/make_gguf.py: random weights in the shape
# of SmolLM2-135M-Instruct, a tokenizer of our own).  Random weights write
# garbage inside the grammar: this tests protocol, grammar, streaming,
# queueing and cancellation, not row quality.
#
# Usage: bash test/slow/llama.sh [smoke] [schema] [samplellm]
#   (default: smoke schema samplellm)
#   smoke      curl checks of the server: PASS/FAIL lines and FIGURE lines
#              (model load time, tokens/s, prompt tokens/s, peak RSS)
#   schema     which JSON-schema keywords the grammar honours (a Markdown
#              table: test/slow/llama/schema_keywords.mjs)
#   samplellm  samplellm_checks below (the extension against this server);
#              test/slow/llama_samplellm.sh, if present, is sourced and may
#              define it
# Installs what it lacks: node and npm (Debian packages, as root), the npm
# packages into test/slow/llama/node_modules (npm ci from the lock file, CPU
# build only: ~85 MB, ~5 s), the model into $LLAMA_CACHE
# (test/slow/llama/cache/, ~145 MB, written once, <1 s).  Both are git-ignored.
# Knobs (environment): LLAMA_CACHE, LLAMA_THREADS (1: llama.cpp's threads
# collapse on a busy machine), LLAMA_CTX (8192), LLAMA_SLOTS (1),
# LLAMA_NICE ("nice -n 10"; empty to run at normal priority),
# SCHEMA_SAMPLES (6), LLAMA_KEEP=1 (keep the work folder and its logs).
# Exit status: non-zero when a check fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
LL=$here/llama
LLAMA_CACHE=${LLAMA_CACHE:-$LL/cache}
MODEL=$LLAMA_CACHE/random-smollm2-135m-shape-q8_0.gguf
NODE_LLAMA_CPP=3.21.1
LLAMA_THREADS=${LLAMA_THREADS:-1}
LLAMA_CTX=${LLAMA_CTX:-8192}
LLAMA_SLOTS=${LLAMA_SLOTS:-1}
LLAMA_NICE=${LLAMA_NICE-nice -n 10}
CHECK="python3 $LL/check.py"

parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(smoke schema samplellm)
for p in "${parts[@]}"; do
	case $p in smoke|schema|samplellm) ;; *) echo "unknown part '$p' (smoke schema samplellm)" >&2; exit 2 ;; esac
done

status=0
log() { printf '== %s\n' "$*" >&2; }
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; status=1; }
figure() { echo "FIGURE $*"; }
now() { date +%s.%N; }

WORK=$(mktemp -d /tmp/samplellm-llama.XXXXXX)
LL_PID=
cleanup() {
	ll_stop_server
	if [ -n "${LLAMA_KEEP:-}" ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ---- installation ----------------------------------------------------------

ll_install() {
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		[ "$(id -u)" -eq 0 ] || { fail "install: node and npm are missing (apt-get install nodejs npm)"; return 1; }
		log "installing nodejs npm"
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null ||
			{ fail "install: apt-get install nodejs npm"; return 1; }
	fi
	local major
	major=$(node -p 'process.versions.node.split(".")[0]')
	[ "$major" -ge 18 ] || { fail "install: node $major is too old (node-llama-cpp needs 18+)"; return 1; }
	if [ "$(cd "$LL" && node -p 'require("./node_modules/node-llama-cpp/package.json").version' 2>/dev/null)" != "$NODE_LLAMA_CPP" ]; then
		log "installing node-llama-cpp $NODE_LLAMA_CPP (CPU build) into $LL/node_modules"
		# --omit=optional: node-llama-cpp's CUDA, Vulkan and ARM builds
		# (~650 MB); package.json names the x64 CPU build itself
		(cd "$LL" && npm ci --omit=optional --no-audit --no-fund --loglevel=error) >&2 ||
			{ fail "install: npm ci in $LL"; return 1; }
	fi
	if [ ! -s "$MODEL" ]; then
		log "writing the model file $MODEL"
		mkdir -p "$LLAMA_CACHE"
		python3 "$LL/make_gguf.py" "$MODEL" >&2 || { fail "install: make_gguf.py"; return 1; }
	fi
}

# ---- the server ------------------------------------------------------------

# ll_start_server: exports LLAMA_URL (…/v1), LLAMA_PORT, LLAMA_LOG,
# LLAMA_TIMING; sets LL_LOAD_MS (port open -> /health 200).
ll_start_server() {
	export LLAMA_LOG=$WORK/requests.jsonl LLAMA_TIMING=$WORK/timing.jsonl
	rm -f "$WORK/llama.port"
	(cd "$LL" && exec $LLAMA_NICE node server.mjs --model "$MODEL" --port 0 \
		--port-file "$WORK/llama.port" --log "$LLAMA_LOG" --timing-log "$LLAMA_TIMING" \
		--slots "$LLAMA_SLOTS" --ctx "$LLAMA_CTX" --threads "$LLAMA_THREADS") \
		>"$WORK/server.out" 2>&1 &
	LL_PID=$!
	local i
	for i in $(seq 1 200); do
		[ -s "$WORK/llama.port" ] && break
		kill -0 "$LL_PID" 2>/dev/null || { cat "$WORK/server.out" >&2; LL_PID=; return 1; }
		sleep 0.05
	done
	[ -s "$WORK/llama.port" ] || { log "the server did not open its port"; return 1; }
	LLAMA_PORT=$(cat "$WORK/llama.port")
	export LLAMA_PORT LLAMA_URL="http://127.0.0.1:$LLAMA_PORT/v1"
	local t0 code
	t0=$(now)
	LL_EARLY_HEALTH=$(curl -s -o "$WORK/health0.out" -w '%{http_code}' "http://127.0.0.1:$LLAMA_PORT/health")
	for i in $(seq 1 600); do
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$LLAMA_PORT/health")
		[ "$code" = 200 ] && break
		kill -0 "$LL_PID" 2>/dev/null || { cat "$WORK/server.out" >&2; LL_PID=; return 1; }
		sleep 0.05
	done
	[ "$code" = 200 ] || { log "the model did not load"; return 1; }
	LL_LOAD_MS=$(python3 -c "print(round(($(now) - $t0) * 1000))")
	log "llama.cpp server (node-llama-cpp $NODE_LLAMA_CPP, random weights) at $LLAMA_URL"
}

ll_stop_server() {
	if [ -n "${LL_PID:-}" ]; then
		kill "$LL_PID" 2>/dev/null
		wait "$LL_PID" 2>/dev/null
		LL_PID=
	fi
}

# ll_post NAME [curl args...] < body: the answer in $WORK/NAME.out; prints the HTTP code
ll_post() {
	local name=$1
	shift
	curl -s -o "$WORK/$name.out" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary @- "$@" "$LLAMA_URL/chat/completions"
}

# the timing record of the n-th chat request (1-based, in arrival order)
ll_timing() { sed -n "${1}p" "$LLAMA_TIMING"; }
ll_seq_timing() { python3 -c "
import json, sys
for line in open('$LLAMA_TIMING'):
    r = json.loads(line)
    if r['seq'] == int(sys.argv[1]):
        print(line.strip())" "$1"; }
ll_last_seq() { python3 -c "
import json
print(max([json.loads(l)['seq'] for l in open('$LLAMA_TIMING')] or [0]))" 2>/dev/null || echo 0; }
jget() { python3 -c "import json, sys; d = json.loads(sys.argv[1]); print(eval(sys.argv[2], {}, {'d': d}))" "$1" "$2"; }

# ---- smoke checks ----------------------------------------------------------

smoke() {
	local code out rec a b t0 seq
	# while the model loads: llama.cpp's 503
	if [ "$LL_EARLY_HEALTH" = 503 ] && grep -q '"Loading model"' "$WORK/health0.out"; then
		pass "503 Loading model before the model is loaded"
	else
		echo "SKIP 503 while loading: the first /health came after the load ($LL_EARLY_HEALTH)"
	fi
	figure "model load: $LL_LOAD_MS ms (port open to /health 200; server: $(grep -o 'model loaded in [0-9]* ms' "$WORK/server.out"))"

	# discovery
	out=$(curl -s "http://127.0.0.1:$LLAMA_PORT/props")
	if [ "$(jget "$out" 'd["total_slots"]')" = "$LLAMA_SLOTS" ] &&
		[ "$(jget "$out" 'd["default_generation_settings"]["n_ctx"]')" = "$LLAMA_CTX" ]; then
		pass "GET /props: total_slots $LLAMA_SLOTS, default_generation_settings.n_ctx $LLAMA_CTX"
	else fail "GET /props: $out"; fi
	out=$(curl -s "http://127.0.0.1:$LLAMA_PORT/slots")
	[ "$(jget "$out" 'len(d)')" = "$LLAMA_SLOTS" ] && pass "GET /slots: $LLAMA_SLOTS slot(s)" || fail "GET /slots: $out"
	out=$(curl -s "$LLAMA_URL/models")
	[ "$(jget "$out" 'd["data"][0]["object"]')" = model ] && pass "GET /v1/models" || fail "GET /v1/models: $out"

	# a non-streamed json_schema answer (bounded schema: it finishes)
	code=$($CHECK body rows --max-tokens 600 | ll_post rows)
	if [ "$code" = 200 ] && out=$($CHECK answer "$WORK/rows.out" rows); then
		pass "non-streamed json_schema answer is valid ($(jget "$out" 'd["usage"]["completion_tokens"]') tokens, notes: $(jget "$out" 'd["notes"] or "none"'))"
	else fail "non-streamed json_schema answer: HTTP $code ${out:-$(head -c 300 "$WORK/rows.out")}"; fi
	rec=$(ll_timing 1)
	figure "first request (cold): $(jget "$rec" 'd["prompt_tokens"]') prompt tokens in $(jget "$rec" 'round(d["first_token"] - d["slot"], 2)') s ($(jget "$rec" 'round(d["prompt_tokens"] / max(1e-3, d["first_token"] - d["slot"]))') prompt tokens/s), $(jget "$rec" 'd["generated"]') tokens at $(jget "$rec" 'round(d["generated"] / max(1e-3, d["stopped"] - d["first_token"]), 1)') tokens/s"

	# streamed, with include_usage
	code=$($CHECK body rows --stream --usage --max-tokens 600 --seed 2 | ll_post rows_stream -N)
	if [ "$code" = 200 ] && out=$($CHECK sse "$WORK/rows_stream.out" rows) &&
		[ "$(jget "$out" 'd["usage"] is not None')" = True ]; then
		pass "streamed json_schema answer is valid ($(jget "$out" 'd["events"]') events, a usage chunk, notes: $(jget "$out" 'd["notes"] or "none"'))"
	else fail "streamed answer: HTTP $code ${out:-$(head -c 300 "$WORK/rows_stream.out")}"; fi
	code=$($CHECK body none --stream --max-tokens 40 | ll_post plain_stream -N)
	if [ "$code" = 200 ] && out=$($CHECK sse "$WORK/plain_stream.out" none); then
		pass "streamed answer without a schema, cut by max_tokens (finish_reason $(jget "$out" 'd["finish"]'))"
	else fail "streamed answer without a schema: HTTP $code ${out:-}"; fi

	# two at once on one slot: the second waits for the first
	seq=$(ll_last_seq)
	$CHECK body none --max-tokens 80 --seed 3 | ll_post q1 >/dev/null &
	a=$!
	sleep 0.3
	$CHECK body none --max-tokens 80 --seed 4 | ll_post q2 >/dev/null &
	b=$!
	wait $a $b
	out=$(python3 - "$LLAMA_TIMING" "$seq" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
first, second = [r for r in recs if r["seq"] > int(sys.argv[2])][:2]
ok = (second["slot"] >= first["stopped"] - 0.05 and second["slot"] - second["received"] > 0.3
      and first["status"] == second["status"] == 200)
print("%s first %.2f-%.2f s, second received %.2f s, slot %.2f s, done %.2f s (queued %.2f s)" % (
    "ok" if ok else "bad", first["slot"] - first["received"], first["done"] - first["received"],
    second["received"] - first["received"], second["slot"] - first["received"],
    second["done"] - first["received"], second["slot"] - second["received"]))
EOF
	)
	[ "${out%% *}" = ok ] && pass "two requests on one slot: the second waits (${out#* })" ||
		fail "two requests on one slot: ${out#* }"

	# a client that leaves while queued never gets the slot
	seq=$(ll_last_seq)
	$CHECK body none --max-tokens 100 --seed 5 | ll_post q3 >/dev/null &
	a=$!
	sleep 0.3
	$CHECK body none --max-tokens 100 --seed 6 | ll_post q4 --max-time 0.6 >/dev/null
	wait $a
	out=$(python3 - "$LLAMA_TIMING" "$seq" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
mine = [r for r in recs if r["seq"] > int(sys.argv[2])]
left = [r for r in mine if r["cancelled"]]
ok = len(left) == 1 and left[0]["slot"] is None and left[0]["generated"] is None
print(("ok" if ok else "bad") + " %s" % [(r["seq"], r["slot"] is not None, r["cancelled"]) for r in mine])
EOF
	)
	[ "${out%% *}" = ok ] && pass "a client that leaves the queue is dropped without generating" ||
		fail "queued cancel: ${out#* }"

	# a client that disconnects mid-generation: the engine stops within 1 s
	seq=$(ll_last_seq)
	t0=$(now)
	$CHECK body none --stream --max-tokens 3000 --seed 7 | ll_post cancel -N --max-time 2.5 >/dev/null
	sleep 1.2
	rec=$(python3 -c "
import json
recs = [json.loads(l) for l in open('$LLAMA_TIMING')]
print(json.dumps([r for r in recs if r['seq'] > $seq][0]))" 2>/dev/null)
	if [ -n "$rec" ] && [ "$(jget "$rec" 'd["cancelled"] and d["stopped"] is not None and d["stopped"] - d["cancelled_at"] < 1.0 and d["generated"] < 3000')" = True ]; then
		pass "disconnect mid-generation: generation stopped $(jget "$rec" 'round((d["stopped"] - d["cancelled_at"]) * 1000)') ms after the client left, after $(jget "$rec" 'd["generated"]') of at most 3000 tokens"
	else fail "disconnect mid-generation: ${rec:-no timing record}"; fi
	out=$(curl -s "http://127.0.0.1:$LLAMA_PORT/slots")
	[ "$(jget "$out" 'any(s["is_processing"] for s in d)')" = False ] && pass "the slot is free after the disconnect" ||
		fail "a slot is still busy after the disconnect: $out"

	# figures: speed on a long answer, peak memory
	code=$($CHECK body long --max-tokens 200 --seed 8 | ll_post speed)
	rec=$(tail -1 "$LLAMA_TIMING")
	figure "decode: $(jget "$rec" 'd["generated"]') tokens in $(jget "$rec" 'round(d["stopped"] - d["first_token"], 2)') s = $(jget "$rec" 'round(d["generated"] / max(1e-3, d["stopped"] - d["first_token"]), 1)') tokens/s (prompt $(jget "$rec" 'd["prompt_tokens"]') tokens in $(jget "$rec" 'round(d["first_token"] - d["slot"], 2)') s; ${LLAMA_THREADS} thread(s)${LLAMA_NICE:+, $LLAMA_NICE}; load average $(cut -d' ' -f1-3 /proc/loadavg))"
	# a samplellm-sized prompt (~2k tokens): time to the first token
	code=$($CHECK body rows --max-tokens 30 --seed 9 --repeat 20 | ll_post bigprompt)
	rec=$(tail -1 "$LLAMA_TIMING")
	figure "large prompt: $(jget "$rec" 'd["prompt_tokens"]') prompt tokens in $(jget "$rec" 'round(d["first_token"] - d["slot"], 2)') s = $(jget "$rec" 'round(d["prompt_tokens"] / max(1e-3, d["first_token"] - d["slot"]))') prompt tokens/s before the first token (no byte reaches the client meanwhile)"
	figure "server peak RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$LL_PID/status" 2>/dev/null) (context $LLAMA_CTX x $LLAMA_SLOTS slot(s))"
}

# ---- schema keywords -------------------------------------------------------

schema() {
	log "schema keywords: ${SCHEMA_SAMPLES:-6} samples per case (about a minute)"
	if (cd "$LL" && $LLAMA_NICE node schema_keywords.mjs --model "$MODEL" \
		--samples "${SCHEMA_SAMPLES:-6}" --gbnf "$WORK/gbnf.txt") >"$WORK/schema.md" 2>"$WORK/schema.err"; then
		cat "$WORK/schema.md"
		pass "schema keyword table ($(grep -c '^| ' "$WORK/schema.md") lines; GBNF in $WORK/gbnf.txt with LLAMA_KEEP=1)"
	else
		cat "$WORK/schema.err" >&2
		fail "schema_keywords.mjs"
	fi
}

# ---- samplellm-side checks (the lead's) ------------------------------------
# Runs with the server up: LLAMA_URL (http://127.0.0.1:PORT/v1, for
# samplellm.endpoint), LLAMA_PORT, LLAMA_TIMING (one JSON line per chat
# request when it ends: received, slot, first_token, done, cancelled,
# cancelled_at, stopped, generated, ...), LLAMA_LOG (one line per request when
# it arrives).  Use pass / fail / figure.  Put the checks in
# test/slow/llama_samplellm.sh (sourced here) or replace this function.
samplellm_checks() {
	echo "SKIP samplellm: no samplellm checks yet (issue 16: a call with default settings completes, retries = 0, in-flight converges to the slots, cancel ends the call within 1 s, every row valid)"
}
[ -f "$here/llama_samplellm.sh" ] && . "$here/llama_samplellm.sh"

# ---- main ------------------------------------------------------------------

ll_install || exit 1
ll_start_server || { fail "the server did not start"; exit 1; }
for p in "${parts[@]}"; do
	log "llama: $p"
	case $p in
		smoke) smoke ;;
		schema) schema ;;
		samplellm) samplellm_checks ;;
	esac
done
exit $status
