#!/usr/bin/env bash
# test/demo.sh: the main job.  Builds and installs samplellm, starts a
# throwaway PostgreSQL 15 cluster, loads the demo table shipped in
# test/data, generates rows with samplellm_generate and prints them.
#
# With SAMPLELLM_ENDPOINT (and SAMPLELLM_MODEL, SAMPLELLM_API_KEY) set it
# uses that OpenAI-compatible server; otherwise the built-in offline
# generator (a Gaussian copula, no LLM), and it says so.  DEMO_SIMULATOR=1
# uses the project's LLM simulator (a test double) instead.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap sl_teardown EXIT

N=${N:-12}
sl_build_install
sl_start_cluster
provider=openai
if [ -n "${SAMPLELLM_ENDPOINT:-}" ]; then
	endpoint=$SAMPLELLM_ENDPOINT
	model=${SAMPLELLM_MODEL:-gpt-4o-mini}
	sl_log "using the LLM at SAMPLELLM_ENDPOINT, model $model"
elif [ -n "${DEMO_SIMULATOR:-}" ]; then
	sl_start_sim --seed 1
	endpoint=$SAMPLELLM_SIM_URL
	model=sim
	sl_log "DEMO_SIMULATOR is set: using the local LLM SIMULATOR (a test double, not a real LLM)"
else
	provider=builtin endpoint= model=
	sl_log "SAMPLELLM_ENDPOINT is not set: using the BUILT-IN generator (a Gaussian copula over the real rows, no LLM)"
fi

# The key goes into a server-side file only the server can read: never into
# SQL text, the server log or pg_settings.
keyconf=""
if [ -n "${SAMPLELLM_API_KEY:-}" ]; then
	install -m 600 -o postgres /dev/null "$SL_TMP/api_key"
	printf '%s\n' "$SAMPLELLM_API_KEY" >"$SL_TMP/api_key"
	keyconf="ALTER SYSTEM SET samplellm.api_key_file = '$SL_TMP/api_key';"
fi

psql -X -q -v ON_ERROR_STOP=1 <<SQL
LOAD 'samplellm';
ALTER SYSTEM SET session_preload_libraries = 'samplellm';
ALTER SYSTEM SET samplellm.provider = '$provider';
ALTER SYSTEM SET samplellm.endpoint = '$endpoint';
ALTER SYSTEM SET samplellm.model = '$model';
$keyconf
SELECT pg_reload_conf();
SQL
psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION samplellm;
\i $SL_ROOT/test/data/demo_clicks.sql
\copy clicks FROM '$SL_ROOT/test/data/demo_clicks.csv' WITH (FORMAT csv, HEADER)
\echo
\echo == 5 of the 600 real rows:
SELECT * FROM clicks ORDER BY user_id LIMIT 5;
\echo == $N synthetic rows, typed like clicks:
SELECT * FROM samplellm_generate(NULL::clicks, $N, label => 'clicked', seed => 42);
\echo == the run, as recorded:
SELECT jsonb_pretty(samplellm_last_run() - 'rejected' - 'answers');
SQL
