#!/usr/bin/env bash
# test/slow/bound.sh: the memory bound (samplellm.max_memory, issue 11 D3)
# holds for the largest calls it allows.  Under a bound of MAXMEM_MB (128),
# built-in calls of growing n (oversample 3, stage 2 uniform, so the pool
# is the whole cost) run in one fresh session each: every allowed call's
# peak resident memory (VmHWM) stays under the bound plus the backend's own
# size before the call, and the first call priced over the bound is refused
# with SQLSTATE 54000 before it allocates.  Prints each call's figures.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
trap sl_teardown EXIT
MAXMEM_MB=${MAXMEM_MB:-128}
sl_start_cluster "shared_buffers = 16MB" || exit 1
psql -X -q -v ON_ERROR_STOP=1 <<'SQL' || exit 1
CREATE EXTENSION samplellm;
CREATE TABLE b (id int NOT NULL, grp text NOT NULL, x float8 NOT NULL, y numeric(8,2) NOT NULL, flag bool NOT NULL);
INSERT INTO b SELECT i, 'g' || (i % 17), (i * 37 % 1000) / 10.0, (i * 11 % 700) + 0.5, i % 3 = 0
FROM generate_series(1, 5000) i;
ANALYZE b;
SQL
status=0 allowed=0 refused=0
for n in 5000 20000 40000 50000 60000 80000; do
	out=$(psql -X -q -At -v ON_ERROR_STOP=0 2>&1 <<SQL
SET samplellm.provider = 'builtin';
SET samplellm.max_memory = '${MAXMEM_MB}MB';
\o /dev/null
SELECT count(*) FROM samplellm_generate(NULL::b, 1);
\o
SELECT 'before ' || substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\s+\d+ kB');
SELECT 'rows=' || count(*) FROM samplellm_generate(NULL::b, $n, oversample => 3, resample => 'uniform', seed => 1);
SELECT 'after ' || substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\s+\d+ kB');
SQL
)
	before=$(echo "$out" | sed -n 's/^before VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p')
	after=$(echo "$out" | sed -n 's/^after VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p')
	rows=$(echo "$out" | sed -n 's/^rows=//p')
	if [ -z "$before" ] || [ -z "$after" ]; then
		echo "FAIL bound: n=$n: no VmHWM figures"; echo "$out" | head -5; status=1; continue
	fi
	growth=$(( (after - before) / 1024 ))
	if [ "$rows" = "$n" ]; then
		allowed=$((allowed + 1))
		if [ "$growth" -le "$MAXMEM_MB" ]; then
			echo "ok - n=$n allowed: peak grew ${growth} MB (bound ${MAXMEM_MB} MB), VmHWM $((after / 1024)) MB"
		else
			echo "FAIL bound: n=$n allowed but peak grew ${growth} MB over the bound ${MAXMEM_MB} MB"; status=1
		fi
	elif echo "$out" | grep -q "samplellm.max_memory"; then
		refused=$((refused + 1))
		if [ "$growth" -le 8 ]; then
			echo "ok - n=$n refused naming samplellm.max_memory, peak grew ${growth} MB"
		else
			echo "FAIL bound: n=$n refused only after growing ${growth} MB"; status=1
		fi
	else
		echo "FAIL bound: n=$n neither returned $n rows nor was refused"; echo "$out" | grep -v "^before\|^after" | head -5; status=1
	fi
done
if [ $allowed -eq 0 ] || [ $refused -eq 0 ]; then
	echo "FAIL bound: the sizes did not straddle the bound ($allowed allowed, $refused refused): change MAXMEM_MB"; status=1
fi
[ $status -eq 0 ] && echo "PASS bound"
exit $status
