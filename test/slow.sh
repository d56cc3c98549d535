#!/usr/bin/env bash
# test/slow.sh: the slow target (issue 7).  Runs, in order,
#   memory    six phases of calls in one session (successful, failing,
#             stage 2, built-in, cache hits, evaluate): RSS, memory
#             contexts, descriptors and sockets stay flat, per-call bounds
#   bound     the largest calls samplellm.max_memory allows stay under it;
#             the next size up is refused before it allocates
#   valgrind  the regression suite and a stage-2 script with every backend
#             under Valgrind Memcheck (--leak-check=full): no error and no
#             definite leak in samplellm.so
#   fuzz      libFuzzer + ASan/UBSan on the response -> rows path and on the
#             stream (server-sent events) parser, from the seed corpora
#             test/slow/corpus/ and corpus_stream/, and a linear-time check
#   load      8 sessions at once against a rate-limited simulator
#   upgrade   0.1.0 (commit 837a8d1) built, installed and used, this tree
#             installed over it, ALTER EXTENSION UPDATE: objects identical
#             to a fresh install, ledger, cache and idempotent calls intact
#   llama     the real engine (issue 16): llama.cpp via node-llama-cpp behind
#             a one-slot server, a model file written here; samplellm with
#             default settings completes, retries 0, in flight = slots,
#             cancel within 1 s (test/slow/llama.sh, llama_samplellm.sh)
# Usage: bash test/slow.sh [memory] [bound] [valgrind] [fuzz] [load] [upgrade] [llama]   (default: all)
# Each part prints its figures and PASS/FAIL lines; the exit status is
# non-zero when any part fails.  .ci/run does not run this (too slow for CI).
# Knobs (environment): FUZZ_SECONDS (120), FUZZ_STREAM_SECONDS (60), VALGRIND_TESTS (the Makefile's
# REGRESS list), MEM_PHASES, MEM_BOUND_<PHASE> and MEM_CALLS_<PHASE> (see
# test/slow/memory.sh), CTX_BOUND_KB (64), LOAD_RATE (10), LOAD_BACKENDS (8);
# each part uses its own PGPORT (54381-54386).  llama installs node, npm and
# node-llama-cpp (npm) itself; knobs in test/slow/llama.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
parts=("$@")
[ ${#parts[@]} -eq 0 ] && parts=(memory bound valgrind fuzz load upgrade llama)
for p in "${parts[@]}"; do
	case $p in memory|bound|valgrind|fuzz|load|upgrade|llama) ;; *) echo "unknown part '$p' (memory bound valgrind fuzz load upgrade llama)" >&2; exit 2 ;; esac
done

# Tools, for the parts that use them: clang 14 with libFuzzer and the
# sanitizer runtimes (fuzz), Valgrind (valgrind).
wants() { case " ${parts[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
missing=()
if wants fuzz; then
	command -v clang-14 >/dev/null || missing+=(clang-14)
	ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || missing+=(libclang-rt-14-dev)
fi
if wants valgrind; then command -v valgrind >/dev/null || missing+=(valgrind); fi
[ -x "$PG_BIN/postgres" ] && [ -x "$($PG_CONFIG --pkglibdir)/pgxs/src/test/regress/pg_regress" ] ||
	missing+=(postgresql-15 postgresql-server-dev-15)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -eq 0 ]; then
		sl_log "installing ${missing[*]}"
		apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
			{ echo "test/slow.sh: apt-get install ${missing[*]} failed" >&2; exit 1; }
	else
		echo "test/slow.sh: missing ${missing[*]}; run as root to install them, or: apt-get install ${missing[*]}" >&2
		exit 1
	fi
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "test/slow.sh: run as root (the clusters run as the postgres user via runuser)" >&2
	exit 1
fi

sl_build_install || { echo "FAIL build"; exit 1; }
declare -A port=([memory]=54381 [valgrind]=54383 [load]=54382 [bound]=54384 [upgrade]=54385 [llama]=54386)
status=0
summary=()
t_all=$(date +%s)
for p in "${parts[@]}"; do
	sl_log "slow target: $p"
	t0=$(date +%s)
	PGPORT=${port[$p]:-54380} bash "$here/slow/$p.sh" 2>&1 | tee "/tmp/samplellm-slow-$p.log"
	rc=${PIPESTATUS[0]}
	secs=$(( $(date +%s) - t0 ))
	if [ "$rc" -eq 0 ]; then summary+=("PASS $p (${secs} s)"); else summary+=("FAIL $p (${secs} s)"); status=1; fi
done
echo "---- slow target summary ($(( $(date +%s) - t_all )) s) ----"
printf '%s\n' "${summary[@]}"
exit $status
