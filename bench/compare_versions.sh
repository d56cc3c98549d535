#!/usr/bin/env bash
# bench/compare_versions.sh [BEFORE [AFTER]]: stage 1 and stage 2 benchmarks of
# two commits side by side, interleaved (before, after, before, after) so that
# a noisy machine's load falls on both.  Each commit is checked out into a
# scratch worktree and installed into a private copy of PostgreSQL 15, so the
# system's installation is untouched.  Defaults: BEFORE = 837a8d1 (0.1.0),
# AFTER = HEAD.  ROUNDS (2), BENCH_PARTS for stage 1 ("1 2": throughput and
# backend CPU per row).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
before=${1:-837a8d1} after=${2:-HEAD}
rounds=${ROUNDS:-2}
scratch=$(mktemp -d /tmp/sl_compare.XXXXXX)
chmod 755 "$scratch"	# the clusters run as the postgres user
cleanup() {
	for v in before after; do git -C "$root" worktree remove --force "$scratch/$v" 2>/dev/null || true; done
	rm -rf "$scratch"
}
trap cleanup EXIT
for v in before after; do
	rev=$([ $v = before ] && echo "$before" || echo "$after")
	git -C "$root" worktree add --detach "$scratch/$v" "$rev" >/dev/null 2>&1
	mkdir -p "$scratch/pg-$v/usr/lib/postgresql" "$scratch/pg-$v/usr/share/postgresql" "$scratch/pg-$v/usr/include"
	cp -a /usr/lib/postgresql/15 "$scratch/pg-$v/usr/lib/postgresql/"
	cp -a /usr/share/postgresql/15 "$scratch/pg-$v/usr/share/postgresql/"
	cp -a /usr/include/postgresql "$scratch/pg-$v/usr/include/"
done
port=54395
for r in $(seq 1 "$rounds"); do
	for v in before after; do
		rev=$([ $v = before ] && echo "$before" || echo "$after")
		echo "######## $v ($rev), round $r: stage 2"
		(cd "$scratch/$v" && bash bench/bench_stage2.sh >"$scratch/s2-$v-$r.log" 2>&1) || echo "(bench_stage2.sh failed: $scratch/s2-$v-$r.log)"
		grep -E "stage 2 total|f_T train|f_S train|Integrated|rest" "$scratch/s2-$v-$r.log" || true
		echo "######## $v ($rev), round $r: stage 1"
		port=$((port + 1))
		(cd "$scratch/$v" && PG_BIN=$scratch/pg-$v/usr/lib/postgresql/15/bin PGPORT=$port \
			BENCH_PARTS=${BENCH_PARTS:-"1 2"} bash bench/bench_stage1.sh >"$scratch/s1-$v-$r.log" 2>&1) ||
			{ echo "(bench_stage1.sh failed:)"; tail -5 "$scratch/s1-$v-$r.log"; }
		grep -E "^\| (throughput C=[0-9]+, L=1 s, R=20, llm_sim.py  |backend CPU)" "$scratch/s1-$v-$r.log" || true
	done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
