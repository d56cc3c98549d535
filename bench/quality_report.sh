#!/usr/bin/env bash
# bench/quality_report.sh: the quality report of samplellm on four real data
# sets, one command, seeded and reproducible.
#
#   bash bench/quality_report.sh
#
# For each data set (MovieLens latest-small, credit_data, mlc_churn, German
# credit) it loads the whole table, splits it (seeded) into a small training
# set (1,000 rows, scarce data; 500 for German credit, which has 1,000 rows in
# all) and a holdout (the rest, at most 5,000 rows), generates as many rows as
# the training set has with each method, and scores them with
# samplellm_evaluate(train, synthetic, label, holdout, seed => 1):
#   real_only        no augmentation (train evaluated against itself: the
#                    utility baseline; only its utility metrics are reported)
#   builtin          the built-in generator (Gaussian copula), resample 'none'
#   llm_uniform      LLM candidates drawn uniformly (the paper's ablation)
#   samplellm        full SampleLLM: LLM candidates + stage 2 ('attribution')
#   builtin_stage2   the built-in generator's candidates + stage 2
# THE LLM IS A SIMULATOR (test/llm_sim.py) that copies and perturbs the
# exemplars of each prompt, with a planted label bias: the LLM numbers measure
# the pipeline, not a real language model.
#
# Output: docs/quality/<dataset>.md, docs/quality/README.md and the plots
# (SVG) under docs/quality/.  No data set is written under docs/ or the
# repository: the CSV exports live in a temp folder removed on exit.
#
# Environment: PGPORT (default 54391), QUALITY_NO_BUILD=1 (skip make install),
# QUALITY_DATASETS (default "movielens credit_data mlc_churn credit_g"),
# QUALITY_EPOCHS (samplellm.epochs, default 100), QUALITY_NO_APT=1 (skip the
# apt-get step), QUALITY_OUT (default docs/quality), QUALITY_KEEP_WORK=1 (keep
# the temp folder with the CSV exports and logs; it holds MovieLens data: do
# not commit or share it).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PGPORT=${PGPORT:-54391}
. "$HERE/../test/lib.sh"

DATASETS=${QUALITY_DATASETS:-movielens credit_data mlc_churn credit_g}
EPOCHS=${QUALITY_EPOCHS:-100}
DOCS=${QUALITY_OUT:-$SL_ROOT/docs/quality}
PY=/usr/bin/python3
SPLIT_SEED=20250127      # seeds the train/holdout split (md5 of row number + seed)
GEN_SEED=1               # samplellm_generate(..., seed => 1) for every method
EVAL_SEED=1              # samplellm_evaluate(..., seed => 1)
SIM_SEED=0               # the simulator's --seed
HOLDOUT_CAP=5000
ARFF=/usr/share/doc/weka/examples/credit-g.arff
WORK=

cleanup() {
	local rc=$?
	sl_teardown
	if [ -n "$WORK" ]; then
		if [ -n "${QUALITY_KEEP_WORK:-}" ]; then sl_log "kept $WORK"; else rm -rf "$WORK"; fi
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

T_START=$(date +%s)

# -- 1. packages (idempotent) ------------------------------------------------
PKGS="r-cran-dslabs r-cran-modeldata weka python3-matplotlib"
if [ -z "${QUALITY_NO_APT:-}" ]; then
	missing=
	for p in $PKGS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		sl_log "installing$missing"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	fi
fi
[ -r "$ARFF" ] || { sl_log "$ARFF not found (package weka)"; exit 1; }

# -- 2. the data sets, exported to CSV in a temp folder ------------------------
WORK=$(mktemp -d /tmp/sl_quality.XXXXXX)
chmod 755 "$WORK"
sl_log "exporting the data sets to $WORK"
Rscript "$HERE/quality/export_r.R" "$WORK" >/dev/null
$PY "$HERE/quality/arff2csv.py" "$ARFF" "$WORK/credit_g.csv"
chmod 644 "$WORK"/*.csv

# -- 3. extension, cluster, simulator ----------------------------------------
[ -n "${QUALITY_NO_BUILD:-}" ] || sl_build_install
sl_start_cluster "shared_buffers = 128MB"
sl_start_sim --seed $SIM_SEED

q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

q <<SQL
CREATE EXTENSION samplellm;
\i $HERE/quality/schema.sql
CREATE TABLE qr_results (dataset text, method text, metric text, columns text, score float8);
CREATE TABLE qr_runs (dataset text, method text, run jsonb, seconds float8);
CREATE TABLE qr_info (dataset text, key text, value text);
SQL

# dataset -> "label train_rows simulator_label_rate"
declare -A LABEL=([movielens]=click [credit_data]=status [mlc_churn]=churn [credit_g]=class)
declare -A NTRAIN=([movielens]=1000 [credit_data]=1000 [mlc_churn]=1000 [credit_g]=500)
# The simulator's bias: the label's "positive" value (the simulator takes the
# largest: true, 'good', 'yes') with this probability, whatever the features,
# instead of the real rate (~0.52, ~0.72, ~0.14, ~0.70).
declare -A RATE=([movielens]=0.8 [credit_data]=0.9 [mlc_churn]=0.45 [credit_g]=0.9)

# Settings of every generating session.
preamble() {
	cat <<SQL
SET samplellm.summary_level = 'log';
SET samplellm.epochs = $EPOCHS;
SET samplellm.endpoint = '$SAMPLELLM_SIM_URL';
SET samplellm.max_calls_per_statement = 100000;
SQL
}

for ds in $DATASETS; do
	label=${LABEL[$ds]} n=${NTRAIN[$ds]}
	sl_log "$ds: loading and splitting ($n training rows, holdout at most $HOLDOUT_CAP)"
	ds_t0=$(date +%s)
	q <<SQL
\copy ${ds}_full FROM '$WORK/$ds.csv' WITH (FORMAT csv, HEADER)
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS cols
FROM pg_attribute WHERE attrelid = '${ds}_full'::regclass AND attnum > 0 AND NOT attisdropped \gset
-- a seeded permutation: rows ordered by md5(row number : seed)
CREATE TABLE ${ds}_perm AS
	SELECT row_number() OVER (ORDER BY md5(rn || ':$SPLIT_SEED'), rn) AS k, s.*
	FROM (SELECT row_number() OVER () AS rn, f.* FROM ${ds}_full f) s;
CREATE TABLE ${ds}_train (LIKE ${ds}_full);
CREATE TABLE ${ds}_holdout (LIKE ${ds}_full);
INSERT INTO ${ds}_train SELECT :cols FROM ${ds}_perm WHERE k <= $n ORDER BY k;
INSERT INTO ${ds}_holdout SELECT :cols FROM ${ds}_perm
	WHERE k > $n AND k <= $n + $HOLDOUT_CAP ORDER BY k;
ANALYZE ${ds}_train, ${ds}_holdout;
INSERT INTO qr_info
	SELECT '$ds', 'full_rows', count(*)::text FROM ${ds}_full
	UNION ALL SELECT '$ds', 'train_rows', count(*)::text FROM ${ds}_train
	UNION ALL SELECT '$ds', 'holdout_rows', count(*)::text FROM ${ds}_holdout
	UNION ALL SELECT '$ds', 'columns', count(*)::text FROM pg_attribute
		WHERE attrelid = '${ds}_full'::regclass AND attnum > 0 AND NOT attisdropped
	UNION ALL SELECT '$ds', 'label', '$label'
	UNION ALL SELECT '$ds', 'label_rate_sim', '${RATE[$ds]}'
	UNION ALL SELECT '$ds', 'label_dist_holdout',
		(SELECT string_agg(v || ': ' || c, ', ' ORDER BY v) FROM
			(SELECT $label::text AS v, count(*) AS c FROM ${ds}_holdout GROUP BY 1) x)
	UNION ALL SELECT '$ds', 'label_dist_train',
		(SELECT string_agg(v || ': ' || c, ', ' ORDER BY v) FROM
			(SELECT $label::text AS v, count(*) AS c FROM ${ds}_train GROUP BY 1) x);
SQL

	# Generation: four synthetic tables of n rows, and their run records.
	for spec in "builtin builtin none" "builtin_stage2 builtin attribution" \
		"llm_uniform openai uniform" "samplellm openai attribution"; do
		set -- $spec
		sl_log "$ds: generating $n rows: $1"
		t0=$(date +%s.%N)
		{
			preamble
			cat <<SQL
SET samplellm.provider = '$2';
SET samplellm.model = 'sim?label=$label&label_rate=${RATE[$ds]}&mix=0.3';
CREATE TABLE ${ds}_$1 AS
	SELECT * FROM samplellm_generate(NULL::${ds}_train, $n, label => '$label',
		seed => $GEN_SEED, resample => '$3');
\set t1 \`date +%s.%N\`
INSERT INTO qr_runs SELECT '$ds', '$1', samplellm_last_run(), :t1 - $t0;
INSERT INTO qr_info SELECT '$ds', 'label_dist_$1',
	(SELECT string_agg(v || ': ' || c, ', ' ORDER BY v) FROM
		(SELECT $label::text AS v, count(*) AS c FROM ${ds}_$1 GROUP BY 1) x);
SQL
		} | q -f - 2>"$WORK/$ds.$1.log" || { cat "$WORK/$ds.$1.log" >&2; exit 1; }
	done

	# Evaluation, one call per method (real only: train against itself).
	for spec in "real_only train" "builtin builtin" "llm_uniform llm_uniform" \
		"samplellm samplellm" "builtin_stage2 builtin_stage2"; do
		set -- $spec
		sl_log "$ds: evaluating $1"
		t0=$(date +%s.%N)
		{
			preamble
			cat <<SQL
INSERT INTO qr_results SELECT '$ds', '$1', metric, columns, score
FROM samplellm_evaluate('${ds}_train', '${ds}_$2', label => '$label',
	holdout => '${ds}_holdout', seed => $EVAL_SEED);
\set t1 \`date +%s.%N\`
INSERT INTO qr_runs SELECT '$ds', 'evaluate_$1', NULL, :t1 - $t0;
SQL
		} | q -f -
	done

	sl_log "$ds: interactions and exports for the plots"
	{
		preamble
		cat <<SQL
\copy (SELECT * FROM samplellm_interactions('${ds}_train', label => '$label', seed => $GEN_SEED)) TO '$WORK/$ds.interactions.csv' WITH (FORMAT csv, HEADER)
\copy ${ds}_train TO '$WORK/$ds.train.csv' WITH (FORMAT csv, HEADER)
\copy ${ds}_samplellm TO '$WORK/$ds.samplellm.csv' WITH (FORMAT csv, HEADER)
\copy ${ds}_builtin TO '$WORK/$ds.builtin.csv' WITH (FORMAT csv, HEADER)
\copy (SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '${ds}_train'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum) TO '$WORK/$ds.types.csv' WITH (FORMAT csv, HEADER)
SQL
	} | q -f -
	q -c "INSERT INTO qr_info VALUES ('$ds', 'seconds', '$(($(date +%s) - ds_t0))')"
	sl_check_server_log
done

q <<SQL
\copy qr_results TO '$WORK/results.csv' WITH (FORMAT csv, HEADER)
\copy qr_runs TO '$WORK/runs.csv' WITH (FORMAT csv, HEADER)
\copy qr_info TO '$WORK/info.csv' WITH (FORMAT csv, HEADER)
SQL
sl_check_server_log

T_END=$(date +%s)
cat >"$WORK/meta.env" <<EOF
date=$(date -u '+%Y-%m-%d %H:%M UTC')
machine=$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo), Debian $(cat /etc/debian_version), kernel $(uname -r)
postgres=$(psql -X -At -c 'SHOW server_version')
commit=$(git -C "$SL_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$SL_ROOT" diff --quiet -- src sql test/llm_sim.py 2>/dev/null || echo ' + uncommitted changes in src/, sql/ or test/llm_sim.py')
seconds=$((T_END - T_START))
epochs=$EPOCHS
split_seed=$SPLIT_SEED
gen_seed=$GEN_SEED
eval_seed=$EVAL_SEED
sim_seed=$SIM_SEED
holdout_cap=$HOLDOUT_CAP
datasets=$DATASETS
EOF
sl_log "writing the report to $DOCS"
mkdir -p "$DOCS"
$PY "$HERE/quality/make_report.py" "$WORK" "$DOCS"
if [[ " $DATASETS " == *" credit_g "* ]]; then
	sl_log "example of bench/report.py: $DOCS/example_report.html"
	$PY "$HERE/report.py" --dsn "host=$PGHOST port=$PGPORT dbname=postgres user=postgres" \
		--real credit_g_train --synthetic credit_g_samplellm --label class \
		--holdout credit_g_holdout --seed $EVAL_SEED --out "$DOCS/example_report.html"
fi
sl_log "done in $((T_END - T_START)) s"
