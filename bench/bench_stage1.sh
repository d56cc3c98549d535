#!/usr/bin/env bash
# bench/bench_stage1.sh: stage-1 benchmark of samplellm_generate against the
# LLM simulator (test/llm_sim.py, a test double, not an LLM).
#
#   bash bench/bench_stage1.sh            # all four parts, about 2-3 minutes on 2 cores
#
# 1. throughput: simulator latency L = 1 s, R rows per answer, concurrency
#    C = 1, 8, 32, n = 8*C*R (8 waves); measured rows/s against C*R/L, with
#    the simulator as it is and with TCP_NODELAY (bench/sim_nodelay.py: the
#    stock simulator adds ~40 ms per answer, Nagle + delayed ACK)
# 2. backend CPU per generated row (parse + validate + tuple): latency 0,
#    n = 50,000, C = 4, from /proc/<backend pid>/stat (TCP_NODELAY simulator)
# 3. peak backend memory (VmHWM) and seed-reading time for a 10-million-row
#    source against a 10,000-row one (max_seed_rows default 10,000)
# 4. prompt and completion tokens per generated row, 10 and 50 columns;
#    exemplars as JSON arrays (sent) against JSON objects (computed), and
#    the 50-column prompt against 8k/32k contexts
#
# Environment: PGPORT (default 54371), BENCH_PARTS (default "1 2 3 4"),
# BENCH_BIG_ROWS (default 10000000), BENCH_NO_BUILD=1 (skip make install),
# BENCH_STREAM (on: part 2 with streamed answers, the default; off: whole answers),
# SL_TOKENIZER_DIR (a folder where `npm install gpt-tokenizer` was run:
# adds real o200k_base token counts to part 4; default /tmp/sl_tokenizer).
# Stage 2 is never timed: every call passes resample => 'none'.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PGPORT=${PGPORT:-54371}
. "$HERE/../test/lib.sh"

PARTS=${BENCH_PARTS:-1 2 3 4}
BIG_ROWS=${BENCH_BIG_ROWS:-10000000}
PY=${PYTHON:-python3}
HELPER="$HERE/bench_stage1.py"
OUT=
SIM2_PID=

cleanup() {
	local rc=$?
	if [ -n "$OUT" ] && [ -s "$OUT/perf.pid" ]; then
		kill -INT "$(cat "$OUT/perf.pid")" 2>/dev/null || true
	fi
	if [ -n "$SIM2_PID" ]; then kill "$SIM2_PID" 2>/dev/null; wait "$SIM2_PID" 2>/dev/null; fi
	sl_teardown
	[ -n "$OUT" ] && rm -rf "$OUT"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

part() { [[ " $PARTS " == *" $1 "* ]]; }

[ -n "${BENCH_NO_BUILD:-}" ] || sl_build_install
sl_start_cluster "shared_buffers = 128MB" "max_wal_size = 4GB" "checkpoint_timeout = 30min"
sl_start_sim
SIM1_URL=$SAMPLELLM_SIM_URL
SIM1_PID=$SL_SIM_PID
# The same simulator with TCP_NODELAY, beside it (see bench/sim_nodelay.py).
python3 "$HERE/sim_nodelay.py" --port 0 --port-file "$SL_TMP/sim2.port" \
	--log "$SL_TMP/sim2-requests.jsonl" >"$SL_TMP/sim2.out" 2>&1 &
SIM2_PID=$!
for _ in $(seq 1 100); do [ -s "$SL_TMP/sim2.port" ] && break; sleep 0.1; done
[ -s "$SL_TMP/sim2.port" ] || { cat "$SL_TMP/sim2.out" >&2; exit 1; }
SIM2_URL="http://127.0.0.1:$(cat "$SL_TMP/sim2.port")/v1"
SIM2_LOG=$SL_TMP/sim2-requests.jsonl
OUT=$(mktemp -d /tmp/sl_bench1.XXXXXX)
chmod 755 "$OUT"
export OUT
echo "== machine: $(nproc) cores, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine shows in the figures)"
echo "== samplellm at commit $(git -C "$SL_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$SL_ROOT" diff --quiet 2>/dev/null || echo ' + uncommitted changes'); simulator: test/llm_sim.py (a test double)"

q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

# The session preamble of every measured call (SIM_URL: which simulator).
SIM_URL=$SIM1_URL
preamble() {
	cat <<SQL
SET samplellm.endpoint = '$SIM_URL';
SET samplellm.summary_level = 'log';
SET samplellm.max_calls_per_statement = 100000;
SET samplellm.max_retries = 10;
SQL
}

# measure NAME SETTINGS CALL: CALL in a fresh backend; writes
# $OUT/NAME.{out,err,stat0,stat1,status,json}.  With SAMPLE_ANON=1 also
# NAME.anon: the backend's RssAnon every 10 ms while the session lasts.
measure() {
	local name=$1 settings=$2 call=$3 sampler=""
	if [ -n "${SAMPLE_ANON:-}" ]; then
		sampler="\\! (while kill -0 \$BPID 2>/dev/null; do grep '^RssAnon' /proc/\$BPID/status; sleep 0.01; done) > \"\$OUT/$name.anon\" 2>/dev/null &"
	fi
	{
		preamble
		printf '%s\n' "$settings"
		cat <<SQL
SELECT pg_backend_pid() AS bpid \gset
\setenv BPID :bpid
$sampler
\! cat /proc/\$BPID/stat > "\$OUT/$name.stat0"
\timing on
$call
\timing off
\! cat /proc/\$BPID/stat > "\$OUT/$name.stat1"; cat /proc/\$BPID/status > "\$OUT/$name.status"
\t on
\pset format unaligned
\o $OUT/$name.json
SELECT samplellm_last_run();
\o
SQL
	} | q -f - >"$OUT/$name.out" 2>"$OUT/$name.err" ||
		{ cat "$OUT/$name.err" >&2; return 1; }
}

sim_cpu() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }

sl_log "creating the benchmark tables"
q <<'SQL'
CREATE EXTENSION samplellm;
CREATE TYPE tier AS ENUM ('free', 'pro', 'team', 'enterprise');
-- 8 columns of mixed types
CREATE TABLE t8 (id integer NOT NULL, price numeric(10,2), qty smallint,
	score double precision, name text, plan tier, signup date, active boolean);
INSERT INTO t8 SELECT g, round((random() * 100)::numeric, 2), (g % 50)::smallint,
	random(), 'user' || (g % 97), (ARRAY['free','pro','team','enterprise'])[1 + g % 4]::tier,
	date '2023-01-01' + g % 365, g % 2 = 0
FROM generate_series(1, 1000) g;
-- 10 columns: t8 plus a city and an amount
CREATE TABLE t10 (LIKE t8, city varchar(20), amount numeric(12,2));
INSERT INTO t10 SELECT t8.*, (ARRAY['Paris','Lyon','Lille','Nantes','Nice'])[1 + id % 5],
	round((random() * 5000)::numeric, 2) FROM t8;
-- 50 columns: the same ten kinds of column, five times over
DO $$
DECLARE
	kinds text[] := ARRAY['integer', 'numeric(10,2)', 'smallint', 'double precision', 'text',
		'tier', 'date', 'boolean', 'varchar(20)', 'numeric(12,2)'];
	vals text[] := ARRAY['(g * %s) %% 100000', 'round((random() * %s)::numeric, 2)',
		'((g + %s) %% 50)::smallint', 'random() * %s', '''cat'' || ((g + %s) %% 13)',
		'(ARRAY[''free'',''pro'',''team'',''enterprise''])[1 + (g + %s) %% 4]::tier',
		'date ''2023-01-01'' + (g * %s) %% 365', '(g + %s) %% 3 = 0',
		'(ARRAY[''Paris'',''Lyon'',''Lille'',''Nantes'',''Nice''])[1 + (g + %s) %% 5]',
		'round((random() * 50 * %s)::numeric, 2)'];
	cols text := '';
	sels text := '';
	i int;
BEGIN
	FOR i IN 0..49 LOOP
		cols := cols || format('%s c%s_%s %s', CASE WHEN i > 0 THEN ',' END, i,
			replace(split_part(kinds[1 + i % 10], '(', 1), ' ', '_'), kinds[1 + i % 10]);
		sels := sels || CASE WHEN i > 0 THEN ', ' ELSE '' END
			|| format(vals[1 + i % 10], i + 1);
	END LOOP;
	EXECUTE format('CREATE TABLE t50 (%s)', cols);
	EXECUTE format('INSERT INTO t50 SELECT %s FROM generate_series(1, 1000) g', sels);
END
$$;
ANALYZE;
SQL

# -- 1. throughput ----------------------------------------------------------
if part 1; then
	R=20
	L=1
	echo
	echo "== 1. throughput: simulator latency L = ${L} s, R = $R rows per answer, 8 waves (n = 8*C*R), table t8 (8 columns, 1,000 rows)"
	for sim in stock nodelay; do
		if [ $sim = stock ]; then
			SIM_URL=$SIM1_URL spid=$SIM1_PID slog=$SIM_LOG
			echo "-- test/llm_sim.py as it is"
		else
			SIM_URL=$SIM2_URL spid=$SIM2_PID slog=$SIM2_LOG
			echo "-- the same simulator with TCP_NODELAY (bench/sim_nodelay.py)"
		fi
		for C in 1 8 32; do
			n=$((8 * C * R))
			s0=$(sim_cpu $spid)
			measure "tp_${sim}_c$C" "SET samplellm.model = 'sim?latency=$L&rows=$R&copy=0';
SET samplellm.rows_per_call = $R;
SET samplellm.max_concurrency = $C;" \
				"SELECT count(*) FROM samplellm_generate(NULL::t8, $n, seed => 1, resample => 'none');"
			s1=$(sim_cpu $spid)
			echo "$s0 $s1" >"$OUT/tp_${sim}_c$C.simcpu"
			$PY "$HELPER" throughput "$OUT" "tp_${sim}_c$C" "$C" "$R" "$L" "$n"
		done
		# The simulator alone, no extension: a Python client replays a
		# logged body, first one connection at latency 0 (the per-answer
		# overhead), then 32 connections x 4 requests at L = 1 s.
		$PY "$HELPER" simcheck "$OUT" "$sim" "$SIM_URL" "$slog" 1 20 0
		$PY "$HELPER" simcheck "$OUT" "$sim" "$SIM_URL" "$slog" 32 4 1
	done
	SIM_URL=$SIM1_URL
fi

# -- 2. backend CPU per row -------------------------------------------------
if part 2; then
	N2=50000
	R2=100
	echo
	echo "== 2. backend CPU per row: latency 0, C = 4, R = $R2 rows per answer, table t8; n = $N2 against n = $R2 (the fixed cost); TCP_NODELAY simulator; samplellm.stream = ${BENCH_STREAM:-on}"
	SIM_URL=$SIM2_URL
	set2="SET samplellm.model = 'sim?latency=0&rows=$R2&copy=0';
SET samplellm.rows_per_call = $R2;
SET samplellm.max_tokens = 16000;
SET samplellm.max_concurrency = 4;
SET samplellm.stream = ${BENCH_STREAM:-on};"
	measure cpu_small "$set2" \
		"SELECT count(*) FROM samplellm_generate(NULL::t8, $R2, seed => 2, resample => 'none');"
	perf_cmd=""
	if command -v perf >/dev/null 2>&1; then
		# a CPU profile of the backend alone, for the split between steps
		perf_cmd="\\! perf record -q -F 999 --call-graph dwarf,16384 -p \$BPID -o \"\$OUT/perf.data\" >/dev/null 2>&1 & echo \$! > \"\$OUT/perf.pid\"; sleep 0.5"
	fi
	s0=$(sim_cpu $SIM2_PID)
	measure cpu_big "$set2
SELECT pg_backend_pid() AS bpid \\gset
\\setenv BPID :bpid
$perf_cmd" \
		"SELECT count(*) FROM samplellm_generate(NULL::t8, $N2, seed => 2, resample => 'none');"
	s1=$(sim_cpu $SIM2_PID)
	echo "$s0 $s1" >"$OUT/cpu_big.simcpu"
	SIM_URL=$SIM1_URL
	if [ -s "$OUT/perf.pid" ]; then
		kill -INT "$(cat "$OUT/perf.pid")" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$(cat "$OUT/perf.pid")" 2>/dev/null || break; sleep 0.1; done
		: >"$OUT/perf.pid"
		perf report -i "$OUT/perf.data" --no-children --sort dso,symbol --stdio -g none 2>/dev/null |
			tee "$OUT/perf.all" |
			grep -E '^ +[0-9.]+%' | head -25 >"$OUT/perf.top" || true
		perf report -i "$OUT/perf.data" --children --sort symbol --stdio -g none \
			>"$OUT/perf.children" 2>/dev/null || true
	fi
	$PY "$HELPER" cpu "$OUT" "$N2" "$R2"
fi

# -- 3. peak backend memory, 10M-row source --------------------------------
if part 3; then
	echo
	echo "== 3. peak backend memory: $BIG_ROWS-row source against 10,000 rows, max_seed_rows default (10,000)"
	sl_log "creating t_big ($BIG_ROWS rows, 8 columns like t8) and t_10k"
	t0=$(date +%s.%N)
	q <<SQL
CREATE TABLE t_big (LIKE t8);
CREATE TABLE t_10k (LIKE t8);
INSERT INTO t_big SELECT g, ((g::bigint * 7919) % 10000) / 100.0, (g % 50)::smallint,
	((g::bigint * 104729) % 1000003) / 1000003.0, 'user' || (g % 97),
	(ARRAY['free','pro','team','enterprise'])[1 + g % 4]::tier,
	date '2023-01-01' + g % 365, g % 2 = 0
FROM generate_series(1, $BIG_ROWS) g;
INSERT INTO t_10k SELECT * FROM t_big WHERE id <= 10000;
VACUUM (FREEZE, ANALYZE) t_big, t_10k;
SQL
	t1=$(date +%s.%N)
	echo "$t0 $t1" >"$OUT/big_create.time"
	# Restart, so that no backend finds t_big's pages left in shared_buffers
	# by the INSERT: a big scan then goes through its small ring buffer and
	# VmHWM shows the backend's own memory, not 128 MB of shared buffers.
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SL_TMP/data" -l "$SL_TMP/server.log" \
		-w -t 60 -m fast restart >/dev/null
	set3="SET samplellm.model = 'sim?latency=0&rows=20';
SET samplellm.rows_per_call = 20;"
	for t in t_10k t_big; do
		measure "mem_idle_$t" "" "SELECT 1;"
		SAMPLE_ANON=1 measure "mem_scan_$t" "SET max_parallel_workers_per_gather = 0; SET jit = off;" \
			"SELECT count(*) FROM $t;"
		SAMPLE_ANON=1 measure "mem_gen_$t" "$set3" \
			"SELECT count(*) FROM samplellm_generate(NULL::$t, 20, seed => 3, resample => 'none');"
	done
	q -Atc "SELECT pg_size_pretty(pg_total_relation_size('t_big'))" >"$OUT/big.size"
	$PY "$HELPER" memory "$OUT" "$BIG_ROWS"
fi

# -- 4. tokens per row, row encodings --------------------------------------
if part 4; then
	echo
	echo "== 4. tokens per generated row: exemplars as JSON arrays + header (sent) against JSON objects (computed from the logged requests)"
	for t in t10 t50; do
		before=$(wc -l <"$SIM_LOG")
		measure "tok_$t" "SET samplellm.model = 'sim?latency=0';" \
			"SELECT count(*) FROM samplellm_generate(NULL::$t, 300, seed => 4, resample => 'none');"
		after=$(wc -l <"$SIM_LOG")
		sed -n "$((before + 1)),${after}p" "$SIM_LOG" >"$OUT/tok_$t.requests.jsonl"
	done
	$PY "$HELPER" tokens "$OUT" "${SL_TOKENIZER_DIR:-/tmp/sl_tokenizer}"
fi

echo
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
$PY "$HELPER" summary "$OUT"
sl_check_server_log
