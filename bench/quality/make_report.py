#!/usr/bin/python3
"""bench/quality/make_report.py: write docs/quality/ from a quality_report.sh run.

    /usr/bin/python3 bench/quality/make_report.py WORKDIR DOCSDIR

WORKDIR holds what bench/quality_report.sh exported: results.csv (every
samplellm_evaluate row), runs.csv (samplellm_last_run() of each generation
and the seconds of each step), info.csv (split sizes, label distributions),
meta.env (date, machine, seeds) and per data set <ds>.train.csv,
<ds>.samplellm.csv, <ds>.types.csv, <ds>.interactions.csv.  Writes
DOCSDIR/<ds>.md, DOCSDIR/<ds>_{distributions,interactions,metrics}.svg and
DOCSDIR/README.md.  No data row is written to DOCSDIR, only aggregates and
plots.
"""
import csv
import json
import math
import os
import sys

sys.dont_write_bytecode = True      # no __pycache__ in the checkout
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plots  # noqa: E402

METHODS = ["real_only", "builtin", "llm_uniform", "samplellm", "builtin_stage2"]
METHOD_TEXT = {
    "real_only": "real only (no augmentation)",
    "builtin": "built-in generator (Gaussian copula), no stage 2",
    "llm_uniform": "LLM (simulator) rows drawn uniformly (paper's ablation)",
    "samplellm": "full SampleLLM: LLM (simulator) + stage 2",
    "builtin_stage2": "built-in generator + stage 2",
}
TABLE_METRICS = ["quality_score", "column_shapes", "column_pair_trends", "detection_score",
                 "augmented_auc", "synthetic_only_auc", "augmented_logloss",
                 "exact_copy_rate", "dcr_baseline_protection"]
EXTRA_METRICS = ["discriminator_auc", "synthetic_only_logloss", "dcr_overfitting_protection"]
BAR_METRICS = ["quality_score", "column_shapes", "column_pair_trends", "detection_score",
               "augmented_auc", "synthetic_only_auc", "dcr_baseline_protection",
               "dcr_overfitting_protection"]
UTILITY = {"augmented_auc", "synthetic_only_auc", "augmented_logloss",
           "synthetic_only_logloss"}
TITLES = {
    "movielens": "MovieLens latest-small (dslabs::movielens)",
    "credit_data": "credit_data (modeldata)",
    "mlc_churn": "mlc_churn (modeldata)",
    "credit_g": "German credit (Weka credit-g.arff)",
}
SIM_CAVEAT = ("**The LLM is a simulator** (`test/llm_sim.py`, a test double) that copies and "
              "perturbs the exemplar rows of each prompt; it is not a language model. The "
              "`llm_uniform` and `samplellm` numbers measure the pipeline (prompting, "
              "validation, stage 2), not a real LLM.")


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def fmt(v, nd=3):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return "%.*f" % (nd, v)


def load(work):
    results = {}
    percol = {}
    for r in read_csv(os.path.join(work, "results.csv")):
        score = float(r["score"]) if r["score"] not in ("", None) else None
        if r["columns"]:
            percol.setdefault(r["dataset"], {}).setdefault(
                (r["metric"], r["columns"]), {})[r["method"]] = score
        else:
            results.setdefault(r["dataset"], {}).setdefault(r["method"], {})[r["metric"]] = score
    runs = {}
    for r in read_csv(os.path.join(work, "runs.csv")):
        runs.setdefault(r["dataset"], {})[r["method"]] = (
            json.loads(r["run"]) if r["run"] else None, float(r["seconds"]))
    info = {}
    for r in read_csv(os.path.join(work, "info.csv")):
        info.setdefault(r["dataset"], {})[r["key"]] = r["value"]
    meta = {}
    with open(os.path.join(work, "meta.env"), encoding="utf-8") as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("=")
            meta[k] = v
    return results, percol, runs, info, meta


def table_value(res, method, metric):
    """The cell of the main table: the real-only row shows the utility of the
    model trained on the real rows alone, and nothing else."""
    if method == "real_only":
        if metric == "augmented_auc":
            return res.get("real_only_auc")
        if metric == "augmented_logloss":
            return res.get("real_only_logloss")
        return None
    return res.get(metric)


def read_table(work, ds, which, types):
    rows = read_csv(os.path.join(work, "%s.%s.csv" % (ds, which)))
    names = [t[0] for t in types]
    cols = []
    for name, pgtype in types:
        kind = plots.kind_of(pgtype)
        vals = [r[name] for r in rows]
        if kind == "continuous":
            cols.append([plots.to_number(v, pgtype) for v in vals])
        else:
            cols.append([None if v == "" else v for v in vals])
    return names, cols


def interaction_matrix(work, ds, fields):
    idx = {f: i for i, f in enumerate(fields)}
    n = len(fields)
    score = [[0.0] * n for _ in range(n)]
    same = [[False] * n for _ in range(n)]
    for r in read_csv(os.path.join(work, "%s.interactions.csv" % ds)):
        a, b = idx.get(r["field_a"]), idx.get(r["field_b"])
        if a is None or b is None:
            continue
        s = float(r["score"]) if r["score"] else 0.0
        score[a][b] = score[b][a] = s
        same[a][b] = same[b][a] = r["same_cluster"] in ("t", "true")
    return score, same


def calls_text(run):
    """LLM requests sent, and answers served by the response cache."""
    if not run:
        return "—"
    if run.get("provider") == "builtin":
        return "— (built-in)"
    cached = run.get("cached") or 0
    return "%s%s" % (run.get("calls", "—"), " + %s cached" % cached if cached else "")


def stage2_of(run):
    return (run or {}).get("stage2") or {}


def dataset_page(ds, res, percol, runs, info, meta, work, docs):
    title = TITLES.get(ds, ds)
    label = info.get("label", "?")
    types = [(r["attname"], r["format_type"]) for r in
             read_csv(os.path.join(work, "%s.types.csv" % ds))]
    kinds = [plots.kind_of(t) for _, t in types]

    # plots
    names, real_cols = read_table(work, ds, "train", types)
    _, syn_cols = read_table(work, ds, "samplellm", types)
    svg = plots.distributions_svg(
        names, kinds, real_cols, syn_cols,
        "%s: real training rows (n=%d) vs full SampleLLM rows (n=%d; LLM = simulator)"
        % (title, len(real_cols[0]), len(syn_cols[0])),
        real_label="real (train)", syn_label="SampleLLM (simulator)")
    write(docs, "%s_distributions.svg" % ds, svg)
    fields = [n for n in names if n != label]
    score, same = interaction_matrix(work, ds, fields)
    write(docs, "%s_interactions.svg" % ds, plots.heatmap_svg(
        fields, score, same,
        "%s: samplellm_interactions(train, label => '%s')" % (ds, label)))
    bars = {m: {k: table_value(res.get(m, {}), m, k) if k in UTILITY or m != "real_only"
                else None for k in BAR_METRICS} for m in METHODS}
    bars.pop("real_only")
    roa = res.get("samplellm", {}).get("real_only_auc")
    refs = {"augmented_auc": (roa, "real only"), "synthetic_only_auc": (roa, "real only")} \
        if roa is not None else {}
    write(docs, "%s_metrics.svg" % ds, plots.metric_bars_svg(
        BAR_METRICS, [m for m in METHODS if m != "real_only"], bars,
        "%s: samplellm_evaluate per method (dashed: real-only AUC)" % ds, refs))

    L = []
    L.append("# Quality report: %s" % title)
    L.append("")
    L.append("Generated by `bash bench/quality_report.sh` on %s (%s). %s"
             % (meta.get("date"), meta.get("machine"), SIM_CAVEAT))
    L.append("")
    L.append("- Rows: %s in the data set; training set (seeded split) %s rows; holdout %s rows."
             % (info.get("full_rows"), info.get("train_rows"), info.get("holdout_rows")))
    L.append("- Columns: %s; label `%s`. Label in train: %s; in the holdout: %s."
             % (info.get("columns"), label, info.get("label_dist_train"),
                info.get("label_dist_holdout")))
    L.append("- Each method generated %s rows (as many as the training set has). "
             "Simulator bias for the LLM runs: model "
             "`sim?label=%s&label_rate=%s&mix=0.3`: the label's positive value (the "
             "simulator takes the largest: true / good / yes) with probability %s, "
             "independently of the other columns, and each cell taken from another "
             "exemplar with probability 0.3."
             % (info.get("train_rows"), label, info.get("label_rate_sim"),
                info.get("label_rate_sim")))
    L.append("- Every `samplellm_evaluate(train, synthetic, label => '%s', holdout => holdout, "
             "seed => %s)`; utility metrics are means of 5 seeded DNN runs; "
             "`samplellm.epochs = %s`." % (label, meta.get("eval_seed"), meta.get("epochs")))
    L.append("")
    L.append("## Metrics")
    L.append("")
    L.append("| method | " + " | ".join(TABLE_METRICS) + " |")
    L.append("|---|" + "---:|" * len(TABLE_METRICS))
    for m in METHODS:
        r = res.get(m, {})
        L.append("| %s | " % m + " | ".join(fmt(table_value(r, m, k)) for k in TABLE_METRICS)
                 + " |")
    L.append("")
    L.append("The `real_only` row shows the DNN trained on the %s real training rows alone "
             "(`real_only_auc`, `real_only_logloss`); `augmented_*` trains on the real + "
             "synthetic rows, `synthetic_only_auc` on the synthetic rows alone; all are "
             "measured on the holdout. Higher is better except log loss and "
             "`exact_copy_rate`." % info.get("train_rows"))
    L.append("")
    L.append("More metrics:")
    L.append("")
    L.append("| method | " + " | ".join(EXTRA_METRICS) + " | label in the synthetic rows |")
    L.append("|---|" + "---:|" * len(EXTRA_METRICS) + "---|")
    for m in METHODS[1:]:
        r = res.get(m, {})
        L.append("| %s | " % m + " | ".join(fmt(r.get(k)) for k in EXTRA_METRICS)
                 + " | %s |" % info.get("label_dist_" + m, "—"))
    r0 = res.get("real_only", {})
    L.append("")
    L.append("Train evaluated against itself (sanity check of the metrics): quality_score %s, "
             "discriminator_auc %s, exact_copy_rate %s, dcr_baseline_protection %s, "
             "augmented_auc (train + a copy of train) %s, augmented_logloss %s."
             % (fmt(r0.get("quality_score")), fmt(r0.get("discriminator_auc")),
                fmt(r0.get("exact_copy_rate")), fmt(r0.get("dcr_baseline_protection")),
                fmt(r0.get("augmented_auc")), fmt(r0.get("augmented_logloss"))))
    L.append("")
    L.append("## Runs")
    L.append("")
    L.append("| method | seconds (generate) | seconds (evaluate) | candidates | LLM calls | "
             "stage 2 variant | ESS | candidates with 99 % of the weight | field clusters | "
             "epochs f_T / f_S |")
    L.append("|---|---:|---:|---:|---:|---|---:|---:|---:|---|")
    for m in METHODS:
        run, sec = runs.get(m, (None, None))
        _, esec = runs.get("evaluate_" + m, (None, None))
        s2 = stage2_of(run)
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            m, fmt(sec, 1), fmt(esec, 1),
            (run or {}).get("pool", "—") if run else "—",
            calls_text(run),
            s2.get("variant", "—"), s2.get("ess", "—"), s2.get("n_carry", "—"),
            s2.get("clusters", "—"),
            "%s / %s" % (s2["epochs_T"], s2["epochs_S"]) if "epochs_T" in s2 else "—"))
    L.append("")
    L.append("ESS = (Σw)²/Σw² of stage 2's weights over the candidates (the pool); the "
             "rows returned are drawn from it without replacement.")
    L.append("")
    L.append("## Plots")
    L.append("")
    L.append("Per-column distributions, real training rows against full SampleLLM:")
    L.append("")
    L.append("![distributions](%s_distributions.svg)" % ds)
    L.append("")
    L.append("Stage 2's interaction matrix of the training rows (dots: fields in one cluster):")
    L.append("")
    L.append("![interactions](%s_interactions.svg)" % ds)
    L.append("")
    L.append("Metrics per method:")
    L.append("")
    L.append("![metrics](%s_metrics.svg)" % ds)
    L.append("")
    pc = percol.get(ds, {})
    shape_rows = [k for k in pc if k[0] in ("KSComplement", "TVComplement")]
    if shape_rows:
        L.append("<details><summary>Column shapes per column</summary>")
        L.append("")
        ms = METHODS[1:]
        L.append("| metric | column | " + " | ".join(ms) + " |")
        L.append("|---|---|" + "---:|" * len(ms))
        order = {n: i for i, n in enumerate(names)}
        for key in sorted(shape_rows, key=lambda k: order.get(k[1], 999)):
            L.append("| %s | %s | " % key + " | ".join(fmt(pc[key].get(m)) for m in ms) + " |")
        L.append("")
        L.append("</details>")
        L.append("")
    write(docs, "%s.md" % ds, "\n".join(L))


def write(docs, name, text):
    with open(os.path.join(docs, name), "w", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")


def readme(datasets, results, runs, info, meta, docs):
    L = []
    L.append("# Quality report")
    L.append("")
    L.append("> " + SIM_CAVEAT)
    L.append("")
    L.append("Made by one command, `bash bench/quality_report.sh` (%s, %s; PostgreSQL %s; "
             "samplellm at commit %s; %s s in all)."
             % (meta.get("date"), meta.get("machine"), meta.get("postgres"),
                meta.get("commit"), meta.get("seconds")))
    L.append("")
    L.append("For each data set the script loads the whole table, splits it (seeded) into a "
             "small training set (scarce data: 1,000 rows; 500 for German credit, which has "
             "1,000 rows in all) and a holdout (the rest, at most %s rows), generates as many "
             "rows as the training set has with each method and scores them with "
             "`samplellm_evaluate(train, synthetic, label => ..., holdout => holdout, "
             "seed => %s)`:" % (meta.get("holdout_cap"), meta.get("eval_seed")))
    L.append("")
    for m in METHODS:
        L.append("- `%s`: %s" % (m, METHOD_TEXT[m]))
    L.append("")
    L.append("Seeds: split %s (rows ordered by md5(row number : seed)), "
             "`samplellm_generate(..., seed => %s)` for every method, evaluation seed %s, "
             "simulator `--seed %s`. The simulator answers are a function of the request, "
             "so a rerun gives the same rows; `samplellm.epochs = %s`. Data sets are exported "
             "at run time (Rscript, a small ARFF reader) into a temp folder and never "
             "written here (MovieLens' terms forbid redistribution)."
             % (meta.get("split_seed"), meta.get("gen_seed"), meta.get("eval_seed"),
                meta.get("sim_seed"), meta.get("epochs")))
    L.append("")
    L.append("Simulator bias for the LLM runs (so that stage 2 has something to correct): "
             "model `sim?label=<label>&label_rate=<rate>&mix=0.3`, the positive label with "
             "probability `rate` whatever the other columns say:")
    L.append("")
    L.append("| data set | label | train label counts | simulator label_rate |")
    L.append("|---|---|---|---:|")
    for ds in datasets:
        i = info.get(ds, {})
        L.append("| %s | `%s` | %s | %s |" % (ds, i.get("label"), i.get("label_dist_train"),
                                              i.get("label_rate_sim")))
    L.append("")
    L.append("## Summary")
    L.append("")
    L.append("`quality` = quality_score, `detect` = detection_score, `aug AUC` / `syn AUC` = "
             "holdout ROC AUC of the DNN trained on real + synthetic / synthetic only (for "
             "`real_only`: trained on the real rows), `DCR prot.` = dcr_baseline_protection.")
    L.append("")
    cols = ["quality_score", "detection_score", "augmented_auc", "synthetic_only_auc",
            "augmented_logloss", "dcr_baseline_protection"]
    L.append("| data set | method | quality | detect | aug AUC | syn AUC | aug log loss | "
             "DCR prot. | stage 2 ESS / candidates |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for ds in datasets:
        for m in METHODS:
            r = results.get(ds, {}).get(m, {})
            run = runs.get(ds, {}).get(m, (None, None))[0]
            s2 = stage2_of(run)
            ess = "%s / %s" % (s2["ess"], run.get("pool")) if "ess" in s2 else "—"
            L.append("| [%s](%s.md) | %s | " % (ds, ds, m)
                     + " | ".join(fmt(table_value(r, m, k)) for k in cols) + " | %s |" % ess)
    L.append("")
    L.append("## Reading the numbers")
    L.append("")
    L.append("- The `samplellm` run reuses the answers the `llm_uniform` run received (the "
             "response cache: same prompts, same seeds), so the two draw from the same "
             "candidate pool and differ only by stage 2: the paper's ablation, exactly.")
    L.append("- The simulator sets the label at random with the biased rate, independently "
             "of the other columns, so its rows carry almost no label signal: "
             "`synthetic_only_auc` near 0.5 for the LLM runs is expected, and stage 2 (which "
             "reweights, never relabels) can move the label share back toward the real one "
             "but cannot restore the signal. Compare the label counts in each data set's "
             "page.")
    L.append("- `discriminator_auc` below 0.5 (shown as `detection_score` 1) means the "
             "classifier does worse than chance in cross-validation: the synthetic rows "
             "mirror the training sample's own frequencies more closely than an "
             "independent sample would (each fold's imbalance is then the opposite of the "
             "rest's). The training set against itself gives the extreme case; the built-in "
             "generator, fitted to the sample's marginals, sits below 0.5 too. An "
             "independent real sample scores about 0.5.")
    low = []
    for ds in datasets:
        for m in ("samplellm", "builtin_stage2"):
            run = runs.get(ds, {}).get(m, (None, None))[0]
            s2 = stage2_of(run)
            if "ess" in s2 and run.get("n") and s2["ess"] < run["n"]:
                low.append("%s/%s (ESS %s < n = %s, pool %s)"
                           % (ds, m, s2["ess"], run["n"], run.get("pool")))
    L.append("- Stage 2's effective sample size (ESS = (Σw)²/Σw² over the pool of "
             "`oversample` × n candidates) below n means the n rows, drawn without "
             "replacement, must include many low-weight candidates, so the correction is "
             "partial; raise `samplellm.oversample`. Below n in this run: %s."
             % ("; ".join(low) if low else "none"))
    L.append("")
    L.append("## Per data set")
    L.append("")
    for ds in datasets:
        L.append("- [%s](%s.md): %s; plots: [distributions](%s_distributions.svg), "
                 "[interaction matrix](%s_interactions.svg), [metrics](%s_metrics.svg); "
                 "%s s." % (ds, ds, TITLES.get(ds, ds), ds, ds, ds,
                            info.get(ds, {}).get("seconds", "?")))
    L.append("")
    L.append("Data set preparation: MovieLens keeps `user_id`, `movie_id` (integers: the "
             "extension treats them as continuous), `year`, `genre` (the first listed "
             "genre), `weekday` and `hour` (UTC) of the rating, and `click` = rating ≥ 4; "
             "title, rating and the raw timestamp are dropped. credit_data, mlc_churn and "
             "credit-g keep every column (names lower-cased), NA as NULL.")
    L.append("")
    L.append("## Your own tables")
    L.append("")
    L.append("`/usr/bin/python3 bench/report.py --dsn \"host=... dbname=...\" --real TABLE "
             "--synthetic TABLE [--label COL] [--holdout TABLE] --out report.html` writes a "
             "self-contained HTML report (metric table, per-column distributions, "
             "interaction matrix). Example: [example_report.html](example_report.html) "
             "(credit_g, full SampleLLM rows against the training rows).")
    L.append("")
    write(docs, "README.md", "\n".join(L))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    work, docs = sys.argv[1], sys.argv[2]
    results, percol, runs, info, meta = load(work)
    datasets = [d for d in meta.get("datasets", "").split() if d in results]
    os.makedirs(docs, exist_ok=True)
    for ds in datasets:
        dataset_page(ds, results[ds], percol, runs.get(ds, {}), info.get(ds, {}), meta,
                     work, docs)
    readme(datasets, results, runs, info, meta, docs)


if __name__ == "__main__":
    main()
