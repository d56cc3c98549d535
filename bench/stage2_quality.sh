#!/usr/bin/env bash
# bench/stage2_quality.sh: does stage 2 remove the LLM's bias without throwing
# away what the LLM knows?  One command, seeded, prints one table.
#
#   bash bench/stage2_quality.sh            # four data sets, ~10 minutes
#   S2Q_DATASETS="credit_g mlc_churn" bash bench/stage2_quality.sh
#
# For each public data set (MovieLens latest-small, credit_data, mlc_churn,
# German credit) it splits the rows (seeded) into SEEDS training rows (the
# seeds, 500), a holdout (the real rows nobody saw; at most 2,000, 250 for
# German credit) and keeps "the population": the data set minus the holdout.
# The LLM is the simulator's population mode (test/llm_sim.py population=):
# an LLM that knows the whole population, not only the seeds, but writes the
# positive label half of the time (label_rate=0.5) and breaks one relation
# (break=COL draws COL from its marginal).  Each method generates SEEDS rows:
#   real_only   no synthetic rows (utility baseline)
#   builtin     the built-in generator (Gaussian copula), no stage 2
#   builtin_s2  (optional) the built-in generator's candidates + the default
#               stage 2
#   uniform     the LLM candidates drawn uniformly (the paper's ablation)
#   paper       the paper's stage 2, exactly (resample => 'paper')
#   default     the default stage 2 (resample => 'attribution')
#   balanced    (optional) the default stage 2 with per_group => half the
#               rows positive: stage 2 corrects the features within each
#               label, the labels stay as balanced as the LLM wrote them
# and is scored by samplellm_evaluate(train, synthetic, label, holdout):
#   shapes      column_shapes (KS/TV complement, mean over columns)
#   pairs       column_pair_trends (mean over column pairs)
#   lpairs      the pair trends of the pairs that include the label
#   lrate_err   |share of the positive label in synthetic - in the holdout|
#   dcr         dcr_synthetic_median / dcr_holdout_median (distance to the
#               seeds over the distance of unseen real rows to the seeds)
#   auc         augmented_auc: holdout AUC of the DNN trained on real +
#               synthetic (real_only: real_only_auc)
#   lr_auc      the issue's own measure: holdout AUC of a logistic
#               regression (sklearn, bench/quality/lr_auc.py) trained on
#               real + synthetic (real_only: the seeds alone)
#   ess         stage 2's effective sample size over the candidates
# THE LLM IS A SIMULATOR: the numbers measure the estimator, not a model.
#
# Environment: PGPORT (default 54397), S2Q_DATASETS, S2Q_METHODS (default
# "real_only builtin uniform paper default"), S2Q_SEEDS (500), S2Q_OVERSAMPLE
# (empty: the default), S2Q_EXTRA_SQL (SQL run before each generation, for
# sweeps), S2Q_NO_BUILD=1, S2Q_NO_APT=1, S2Q_OUT (a file: the table is also
# written there), S2Q_KEEP_WORK=1 (keep the temp folder: it holds MovieLens
# data, do not commit or share it).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export PGPORT=${PGPORT:-54397}
. "$HERE/../test/lib.sh"

DATASETS=${S2Q_DATASETS:-credit_data mlc_churn credit_g movielens}
METHODS=${S2Q_METHODS:-real_only builtin uniform paper default}
NSEED=${S2Q_SEEDS:-500}
PY=/usr/bin/python3
SPLIT_SEED=20250127
GEN_SEED=1
EVAL_SEED=1
ARFF=/usr/share/doc/weka/examples/credit-g.arff
WORK=

cleanup() {
	local rc=$?
	sl_teardown
	if [ -n "$WORK" ]; then
		if [ -n "${S2Q_KEEP_WORK:-}" ]; then sl_log "kept $WORK"; else rm -rf "$WORK"; fi
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "${S2Q_NO_APT:-}" ]; then
	missing=
	for p in r-cran-dslabs r-cran-modeldata weka python3-sklearn; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		sl_log "installing$missing"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
	fi
fi

WORK=$(mktemp -d /tmp/sl_s2q.XXXXXX)
chmod 755 "$WORK"
Rscript "$HERE/quality/export_r.R" "$WORK" >/dev/null
$PY "$HERE/quality/arff2csv.py" "$ARFF" "$WORK/credit_g.csv"
chmod 644 "$WORK"/*.csv

[ -n "${S2Q_NO_BUILD:-}" ] || sl_build_install
sl_start_cluster "shared_buffers = 128MB"
q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
q <<SQL
CREATE EXTENSION samplellm;
\i $HERE/quality/schema.sql
CREATE TABLE s2q (dataset text, method text, metric text, score float8);
SQL

declare -A LABEL=([movielens]=click [credit_data]=status [mlc_churn]=churn [credit_g]=class)
# the positive label (the simulator's: true, or the largest text value)
declare -A POS=([movielens]=true [credit_data]=good [mlc_churn]=yes [credit_g]=good)
# the relation the LLM gets wrong: a column strongly tied to another one
declare -A BREAK=([movielens]=year [credit_data]=price [mlc_churn]=total_day_charge
	[credit_g]=credit_amount)
declare -A HOLD=([movielens]=2000 [credit_data]=2000 [mlc_churn]=2000 [credit_g]=250)

# split, and the populations the simulator is started with
pops=()
for ds in $DATASETS; do
	q <<SQL
\copy ${ds}_full FROM '$WORK/$ds.csv' WITH (FORMAT csv, HEADER)
SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS cols
FROM pg_attribute WHERE attrelid = '${ds}_full'::regclass AND attnum > 0 AND NOT attisdropped \gset
CREATE TABLE ${ds}_perm AS
	SELECT row_number() OVER (ORDER BY md5(rn || ':$SPLIT_SEED'), rn) AS k, s.*
	FROM (SELECT row_number() OVER () AS rn, f.* FROM ${ds}_full f) s;
CREATE TABLE ${ds}_holdout (LIKE ${ds}_full);
CREATE TABLE ${ds}_train (LIKE ${ds}_full);
INSERT INTO ${ds}_holdout SELECT :cols FROM ${ds}_perm WHERE k <= ${HOLD[$ds]} ORDER BY k;
INSERT INTO ${ds}_train SELECT :cols FROM ${ds}_perm
	WHERE k > ${HOLD[$ds]} AND k <= ${HOLD[$ds]} + $NSEED ORDER BY k;
ANALYZE ${ds}_train, ${ds}_holdout;
CREATE TABLE ${ds}_population AS SELECT :cols FROM ${ds}_perm WHERE k > ${HOLD[$ds]} ORDER BY k;
\copy ${ds}_population TO '$WORK/$ds.population.csv' WITH (FORMAT csv, HEADER)
SQL
	pops+=(--population "$ds=$WORK/$ds.population.csv")
done
chmod 644 "$WORK"/*.csv
sl_start_sim --seed 0 "${pops[@]}"

for ds in $DATASETS; do
	label=${LABEL[$ds]}
	for m in $METHODS; do
		[ "$m" = real_only ] && continue
		pg=
		case $m in
		builtin) prov=builtin res=none ;;
		builtin_s2) prov=builtin res=attribution ;;
		balanced) prov=openai res=attribution pg=", per_group => '{\"${POS[$ds]}\": 0.5}'" ;;
		uniform) prov=openai res=uniform ;;
		paper) prov=openai res=paper ;;
		default) prov=openai res=attribution ;;
		*) prov=openai res=$m ;;
		esac
		sl_log "$ds: $m"
		over=${S2Q_OVERSAMPLE:+, oversample => $S2Q_OVERSAMPLE}
		{
			cat <<SQL
SET samplellm.summary_level = 'log';
SET samplellm.endpoint = '$SAMPLELLM_SIM_URL';
SET samplellm.max_calls_per_statement = 100000;
SET samplellm.provider = '$prov';
SET samplellm.model = 'sim?population=$ds&label=$label&label_rate=0.5&break=${BREAK[$ds]}&mix=0';
${S2Q_EXTRA_SQL:-}
CREATE TABLE ${ds}_$m AS
	SELECT * FROM samplellm_generate(NULL::${ds}_train, $NSEED, label => '$label',
		seed => $GEN_SEED, resample => '$res'$over$pg);
INSERT INTO s2q SELECT '$ds', '$m', 'ess', (samplellm_last_run()->'stage2'->>'ess')::float8;
SQL
		} | q -f - 2>"$WORK/$ds.$m.log" || { cat "$WORK/$ds.$m.log" >&2; exit 1; }
	done
	q <<SQL
\copy ${ds}_train TO '$WORK/$ds.train.csv' WITH (FORMAT csv, HEADER)
\copy ${ds}_holdout TO '$WORK/$ds.holdout.csv' WITH (FORMAT csv, HEADER)
SQL
	for m in $METHODS; do
		syn=${ds}_$m
		[ "$m" = real_only ] && syn=${ds}_train
		synfile=
		if [ "$m" != real_only ]; then
			q -c "\copy $syn TO '$WORK/$ds.$m.csv' WITH (FORMAT csv, HEADER)"
			synfile=$WORK/$ds.$m.csv
		fi
		lr=$($PY "$HERE/quality/lr_auc.py" "$label" "${POS[$ds]}" "$EVAL_SEED" \
			"$WORK/$ds.holdout.csv" "$WORK/$ds.train.csv" $synfile)
		q -c "INSERT INTO s2q VALUES ('$ds', '$m', 'lr_auc', $lr)"
		q <<SQL
INSERT INTO s2q SELECT '$ds', '$m', metric, score
FROM samplellm_evaluate('${ds}_train', '$syn', label => '$label',
	holdout => '${ds}_holdout', seed => $EVAL_SEED)
WHERE metric IN ('column_shapes', 'column_pair_trends', 'augmented_auc', 'real_only_auc',
	'dcr_synthetic_median', 'dcr_holdout_median') AND columns IS NULL;
INSERT INTO s2q SELECT '$ds', '$m', 'lpairs', avg(score)
FROM samplellm_evaluate('${ds}_train', '$syn', label => '$label',
	holdout => '${ds}_holdout', seed => $EVAL_SEED)
WHERE metric IN ('ContingencySimilarity', 'CorrelationSimilarity')
	AND ('$label' = split_part(columns, ', ', 1) OR '$label' = split_part(columns, ', ', 2));
INSERT INTO s2q SELECT '$ds', '$m', 'lrate_err',
	abs((SELECT avg(($label::text IN ('${POS[$ds]}', 't'))::int) FROM $syn)
	  - (SELECT avg(($label::text IN ('${POS[$ds]}', 't'))::int) FROM ${ds}_holdout));
SQL
	done
	sl_check_server_log
done

table=$(q -A -F ' ' -t <<'SQL'
SELECT format('%-12s %-9s %6s %6s %6s %9s %5s %6s %6s %7s', 'dataset', 'method', 'shapes', 'pairs',
	'lpairs', 'lrate_err', 'dcr', 'auc', 'lr_auc', 'ess')
UNION ALL
SELECT * FROM (
SELECT format('%-12s %-9s %6s %6s %6s %9s %5s %6s %6s %7s', dataset, method,
	to_char(max(score) FILTER (WHERE metric = 'column_shapes'), 'FM0.000'),
	to_char(max(score) FILTER (WHERE metric = 'column_pair_trends'), 'FM0.000'),
	to_char(max(score) FILTER (WHERE metric = 'lpairs'), 'FM0.000'),
	to_char(max(score) FILTER (WHERE metric = 'lrate_err'), 'FM0.000'),
	to_char(max(score) FILTER (WHERE metric = 'dcr_synthetic_median')
		/ nullif(max(score) FILTER (WHERE metric = 'dcr_holdout_median'), 0), 'FM0.00'),
	to_char(max(score) FILTER (WHERE metric = CASE WHEN method = 'real_only'
		THEN 'real_only_auc' ELSE 'augmented_auc' END), 'FM0.000'),
	to_char(max(score) FILTER (WHERE metric = 'lr_auc'), 'FM0.000'),
	coalesce(to_char(max(score) FILTER (WHERE metric = 'ess'), 'FM99990'), '-'))
FROM s2q GROUP BY dataset, method
ORDER BY dataset, array_position(ARRAY['real_only','builtin','builtin_s2','uniform','paper','default','balanced'], method),
	method) x;
SQL
)
printf '%s\n' "$table"
if [ -n "${S2Q_OUT:-}" ]; then
	{
		echo "# $(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'); commit $(git -C "$SL_ROOT" rev-parse --short HEAD)$(git -C "$SL_ROOT" diff --quiet -- src 2>/dev/null || echo '+changes')"
		echo "# seeds $NSEED, datasets $DATASETS, oversample ${S2Q_OVERSAMPLE:-default}"
		printf '%s\n' "$table"
	} >"$S2Q_OUT"
fi
