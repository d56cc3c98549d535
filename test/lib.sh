# test/lib.sh: throwaway PostgreSQL 15 cluster and LLM simulator for scripts.
# Sourced by test/run.sh, test/demo.sh and bench/*.sh.  Runs as root: the
# server runs as the postgres user (initdb refuses root), on a Unix socket
# in a fresh temp folder, and everything is torn down by sl_teardown.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
SL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

sl_log() { printf '== %s\n' "$*" >&2; }

# The extension, built and installed into this machine's PostgreSQL 15.
# SL_INSTALLED=1: neither build nor install; test the files already
# installed in $PG_CONFIG's tree (a package, see test/deb.sh).
sl_build_install() {
	if [ -n "${SL_INSTALLED:-}" ]; then
		local so
		so=$("$PG_CONFIG" --pkglibdir)/samplellm.so
		[ -f "$so" ] || { sl_log "SL_INSTALLED is set but $so does not exist"; return 1; }
		sl_log "SL_INSTALLED: testing the installed $so, no build, no install"
		return 0
	fi
	sl_log "building and installing samplellm"
	make -C "$SL_ROOT" -s PG_CONFIG="$PG_CONFIG" >/dev/null
	make -C "$SL_ROOT" -s PG_CONFIG="$PG_CONFIG" install >/dev/null
}

# sl_start_cluster [extra postgresql.conf lines...]
sl_start_cluster() {
	SL_TMP=$(mktemp -d /tmp/samplellm.XXXXXX)
	chmod 755 "$SL_TMP"
	chown postgres: "$SL_TMP"
	export PGHOST=$SL_TMP PGPORT=${PGPORT:-54329} PGUSER=postgres PGDATABASE=postgres
	runuser -u postgres -- "$PG_BIN/initdb" -D "$SL_TMP/data" -A trust -U postgres \
		--no-sync -E UTF8 --locale=C.UTF-8 >"$SL_TMP/initdb.log" 2>&1 ||
		{ cat "$SL_TMP/initdb.log" >&2; return 1; }
	{
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$SL_TMP'"
		echo "fsync = off"
		echo "max_connections = 40"
		echo "logging_collector = off"
		for line in "$@"; do echo "$line"; done
	} >>"$SL_TMP/data/postgresql.conf"
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SL_TMP/data" -l "$SL_TMP/server.log" \
		-w -t 60 start >/dev/null || { cat "$SL_TMP/server.log" >&2; return 1; }
	sl_log "PostgreSQL 15 running on socket $SL_TMP"
}

# sl_spawn_sim DIR NAME [simulator flags...]: a simulator (a test double,
# not an LLM) on an ephemeral port, writing DIR/NAME.port, its request log
# DIR/NAME.jsonl and its output DIR/NAME.out; sets SL_SPAWN_PID and
# SL_SPAWN_URL; returns 1 (with its output) when it did not start.
sl_spawn_sim() {
	local dir=$1 name=$2
	shift 2
	python3 "$SL_ROOT/test/llm_sim.py" --port 0 --port-file "$dir/$name.port" \
		--log "$dir/$name.jsonl" "$@" >"$dir/$name.out" 2>&1 &
	SL_SPAWN_PID=$!
	for _ in $(seq 1 100); do
		[ -s "$dir/$name.port" ] && break
		kill -0 "$SL_SPAWN_PID" 2>/dev/null || break
		sleep 0.1
	done
	[ -s "$dir/$name.port" ] || { cat "$dir/$name.out" >&2; return 1; }
	SL_SPAWN_URL="http://127.0.0.1:$(cat "$dir/$name.port")/v1"
}

# sl_start_sim [simulator flags...]: exports SAMPLELLM_SIM_URL and SIM_LOG.
sl_start_sim() {
	sl_spawn_sim "$SL_TMP" sim "$@" || { sl_log "simulator did not start"; return 1; }
	SL_SIM_PID=$SL_SPAWN_PID
	export SIM_LOG=$SL_TMP/sim.jsonl SAMPLELLM_SIM_URL=$SL_SPAWN_URL
	sl_log "LLM simulator (a test double, not an LLM) at $SAMPLELLM_SIM_URL"
}

# sl_start_llama_sim [simulator flags...]: a second simulator with
# llama.cpp's defaults (one slot, a queue, /props and /slots) and paced
# generation, for sql/servers.sql; exports SAMPLELLM_LLAMA_SIM_URL and
# LLAMA_SIM_LOG.
sl_start_llama_sim() {
	sl_spawn_sim "$SL_TMP" llama-sim --personality llamacpp --slots 1 "$@" ||
		{ sl_log "the llama.cpp-like simulator did not start"; return 1; }
	SL_SIM2_PID=$SL_SPAWN_PID
	export LLAMA_SIM_LOG=$SL_TMP/llama-sim.jsonl SAMPLELLM_LLAMA_SIM_URL=$SL_SPAWN_URL
	sl_log "one-slot llama.cpp-like simulator at $SAMPLELLM_LLAMA_SIM_URL"
}

# sl_restart_cluster [extra postgresql.conf lines...]: the same cluster,
# restarted with more settings (e.g. shared_preload_libraries).
sl_restart_cluster() {
	local line
	for line in "$@"; do echo "$line"; done >>"$SL_TMP/data/postgresql.conf"
	runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SL_TMP/data" -l "$SL_TMP/server.log" \
		-w -t 60 -m fast restart >/dev/null || { tail -20 "$SL_TMP/server.log" >&2; return 1; }
}

sl_teardown() {
	if [ -n "${SL_SIM_PID:-}" ]; then kill "$SL_SIM_PID" 2>/dev/null; wait "$SL_SIM_PID" 2>/dev/null; fi
	if [ -n "${SL_SIM2_PID:-}" ]; then kill "$SL_SIM2_PID" 2>/dev/null; wait "$SL_SIM2_PID" 2>/dev/null; fi
	if [ -n "${SL_TMP:-}" ] && [ -d "$SL_TMP" ]; then
		runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$SL_TMP/data" -m immediate stop >/dev/null 2>&1
		if [ -n "${SL_KEEP_TMP:-}" ]; then sl_log "kept $SL_TMP"; else rm -rf "$SL_TMP"; fi
	fi
	SL_SIM_PID= SL_SIM2_PID= SL_TMP=
}

# What the postmaster logs when a child died abnormally and it restarts every
# session: a signal, PANIC, an exit status other than 0 and 1 (1 is a
# normal FATAL exit and is logged for background workers), and the restart
# itself.  check_faults.sh and slow/valgrind.sh use the same pattern.
SL_CRASH_RE='terminated by signal|server process .* was terminated|PANIC|exited with exit code ([02-9]|[1-9][0-9]+)([^0-9]|$)|reinitializing'

# The server must never have restarted: a crashed backend shows up here.
# sl_check_server_log [LOG]: LOG defaults to $SL_TMP/server.log.
sl_check_server_log() {
	if grep -E "$SL_CRASH_RE" "${1:-$SL_TMP/server.log}" >&2; then
		sl_log "the server log shows a crashed backend"
		return 1
	fi
}
