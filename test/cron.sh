#!/usr/bin/env bash
# test/cron.sh: a pg_cron job that refreshes a synthetic table, end to end
# (slow: pg_cron runs jobs on the minute, so this waits up to ~2.5 minutes).
#
# On a fresh cluster with pg_cron preloaded, schedules
#   SELECT samplellm_generate_into('clicks', 'clicks_aug', 20, ...,
#          idempotency_key => 'daily-' || current_date)
# every minute, waits for two runs, and checks: the first run inserted 20
# rows and is in samplellm_runs; the second run, same key, inserted nothing
# (a job rerun after its success is a no-op); pg_cron recorded both as
# succeeded; the server never restarted.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
trap sl_teardown EXIT

[ -f /usr/lib/postgresql/15/lib/pg_cron.so ] || {
	if [ "$(id -u)" = 0 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15-cron >/dev/null
	else
		echo "cron.sh: postgresql-15-cron is not installed" >&2; exit 2
	fi
}
export PGPORT=${PGPORT:-54395}
sl_build_install
sl_start_cluster "shared_preload_libraries = 'pg_cron,samplellm'" \
	"cron.database_name = 'postgres'" "cron.use_background_workers = on" \
	"max_worker_processes = 16" "session_preload_libraries = 'samplellm'"
sl_start_sim --seed 1

psql -X -q -v ON_ERROR_STOP=1 <<SQL
ALTER SYSTEM SET samplellm.endpoint = '$SAMPLELLM_SIM_URL';
ALTER SYSTEM SET samplellm.model = 'sim';
SELECT pg_reload_conf();
CREATE EXTENSION pg_cron;
CREATE EXTENSION samplellm;
CREATE TABLE clicks (user_id int NOT NULL, device text NOT NULL, price numeric(6,2) NOT NULL, clicked bool NOT NULL);
INSERT INTO clicks SELECT i % 40, (ARRAY['mobile','desktop','tablet'])[1 + i % 3],
       round((5 + (i * 37) % 90)::numeric, 2), (i * 7) % 5 = 0 FROM generate_series(1, 200) i;
CREATE TABLE clicks_aug (id bigint GENERATED ALWAYS AS IDENTITY, LIKE clicks, made_at timestamptz DEFAULT now());
SELECT cron.schedule('refresh-clicks-aug', '* * * * *',
  \$\$SELECT samplellm_generate_into('clicks', 'clicks_aug', 20, label => 'clicked',
                                    idempotency_key => 'daily-' || current_date)\$\$) > 0 AS scheduled;
SQL

sl_log "waiting for two runs of the job (pg_cron runs jobs on the minute)"
runs=0
for _ in $(seq 1 160); do
	runs=$(psql -X -At -c "SELECT count(*) FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')")
	[ "$runs" -ge 2 ] && break
	sleep 1
done
psql -X -q -c "SELECT cron.unschedule('refresh-clicks-aug')" >/dev/null

fail=0
check() { if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1: got '$2', want '$3'"; fail=1; fi; }
check "pg_cron ran the job twice" "$runs" 2
check "both runs succeeded" "$(psql -X -At -c "SELECT string_agg(status, ',' ORDER BY runid) FROM cron.job_run_details")" "succeeded,succeeded"
check "the first run inserted 20 rows, the rerun none" "$(psql -X -At -c "SELECT count(*) FROM clicks_aug")" 20
check "one successful run on record for the key" \
	"$(psql -X -At -c "SELECT count(*) FROM samplellm_runs WHERE status = 'ok' AND idempotency_key = 'daily-' || current_date")" 1
check "its target is clicks_aug" "$(psql -X -At -c "SELECT target FROM samplellm_runs WHERE status = 'ok'")" "public.clicks_aug"
sl_check_server_log || fail=1
if [ $fail = 0 ]; then echo "cron: 5 passed, 0 failed"; else echo "cron: FAILED"; fi
exit $fail
