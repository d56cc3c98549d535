#!/usr/bin/python3
"""bench/report.py: a self-contained HTML quality report of your own synthetic table.

    /usr/bin/python3 bench/report.py --dsn "host=/tmp/x dbname=mydb" \\
        --real clicks --synthetic clicks_synthetic \\
        [--label clicked] [--holdout clicks_test] [--seed 1] --out report.html

Runs samplellm_evaluate(real, synthetic, label, holdout, seed) in the database,
reads both tables (a seeded sample of at most --max-rows rows each, for the
plots) and writes one HTML file with no external assets: the metric table,
per-column scores, per-column distributions of real against synthetic rows
(histograms for numbers and dates, bars for categories), the column pairs whose
trends differ most, and the interaction matrix of the real rows
(samplellm_interactions, unless --no-interactions).

Needs psql on PATH (or --psql) and, for the plots, python3-matplotlib (without
it the plots are plain hand-drawn SVG bars).  No Python database driver: every
query goes through `psql -X --csv`, with table names passed as psql variables
(:'name'::regclass), never pasted into SQL.  The role needs EXECUTE on
samplellm_evaluate (and samplellm_interactions) and SELECT on the tables.
"""
import argparse
import csv
import datetime
import html
import io
import math
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True      # no __pycache__ in the checkout
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "quality"))
import plots  # noqa: E402

AGGREGATES = [
    ("quality_score", "mean of column_shapes and column_pair_trends (SDMetrics quality score)"),
    ("column_shapes", "mean KSComplement / TVComplement over columns"),
    ("column_pair_trends", "mean CorrelationSimilarity / ContingencySimilarity over pairs"),
    ("discriminator_auc", "cross-validated AUC of a classifier telling real from synthetic "
                          "(0.5 = indistinguishable)"),
    ("detection_score", "SDMetrics LogisticDetection: 1 = indistinguishable"),
    ("real_only_auc", "holdout AUC, DNN trained on the real rows"),
    ("augmented_auc", "holdout AUC, trained on real + synthetic rows"),
    ("synthetic_only_auc", "holdout AUC, trained on synthetic rows only"),
    ("real_only_logloss", "holdout log loss, real rows"),
    ("augmented_logloss", "holdout log loss, real + synthetic"),
    ("synthetic_only_logloss", "holdout log loss, synthetic only"),
    ("exact_copy_rate", "share of synthetic rows equal to a real row"),
    ("dcr_synthetic_median", "median distance of a synthetic row to its closest real row"),
    ("dcr_holdout_median", "the same for holdout rows"),
    ("dcr_baseline_protection", "min(1, synthetic DCR / holdout DCR): 1 = no closer than "
                                "unseen real rows"),
    ("dcr_overfitting_protection", "SDMetrics DCROverfittingProtection"),
]


class PsqlError(RuntimeError):
    pass


class Db:
    def __init__(self, dsn, psql):
        self.dsn, self.psql = dsn, psql

    def query(self, sql, variables=None):
        """Run sql (read from stdin, so :'var' interpolation works) and return
        the rows of its last result as dicts."""
        cmd = [self.psql, "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", "-d", self.dsn]
        for k, v in (variables or {}).items():
            cmd += ["-v", "%s=%s" % (k, v)]
        p = subprocess.run(cmd, input="SET datestyle TO ISO, YMD;\n" + sql,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise PsqlError(p.stderr.strip() or "psql failed with status %d" % p.returncode)
        return list(csv.DictReader(io.StringIO(p.stdout)))


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def columns_of(db, rel):
    return [(r["attname"], r["format_type"]) for r in db.query(
        "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = :'rel'::regclass AND attnum > 0 AND NOT attisdropped "
        "ORDER BY attnum;\n", {"rel": rel})]


def read_rows(db, rel, names, max_rows, seed):
    """A seeded uniform sample (Bernoulli, then truncated) of at most max_rows
    rows, the named columns only, as lists per column."""
    n = int(db.query("SELECT count(*) AS n FROM %s;\n" % ":rel_ident",
                     {"rel_ident": rel_ident(db, rel)})[0]["n"])
    cols = ", ".join(ident(c) for c in names)
    where = ""
    if n > max_rows:
        # Bernoulli sample in one serial scan (random() after setseed is
        # reproducible only without parallel workers); no LIMIT, which would
        # keep the first rows of the scan
        where = " WHERE random() < %.9f" % (max_rows / n)
    sql = ("SET max_parallel_workers_per_gather = 0;\n"
           "SELECT setseed(%.6f) \\g /dev/null\n" % ((seed % 1000) / 1000.0)
           + "SELECT %s FROM %s%s;\n" % (cols, ":rel_ident", where))
    rows = db.query(sql, {"rel_ident": rel_ident(db, rel)})
    return n, [[r[c] for r in rows] for c in names]


_ident_cache = {}


def rel_ident(db, rel):
    """The relation's name as the server quotes it (regclass output): safe to
    interpolate as :rel_ident."""
    if rel not in _ident_cache:
        _ident_cache[rel] = db.query("SELECT :'rel'::regclass::text AS r;\n",
                                     {"rel": rel})[0]["r"]
    return _ident_cache[rel]


def convert(vals, pgtype):
    if plots.kind_of(pgtype) == "continuous":
        return [plots.to_number(v, pgtype) for v in vals]
    return [None if v == "" else v for v in vals]


def fmt(v, nd=3):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return "%.*f" % (nd, v)


def inline_svg(svg):
    """An SVG document as an element to put inside HTML."""
    svg = re.sub(r"^<\?xml[^>]*\?>\s*", "", svg)
    svg = re.sub(r"^<!DOCTYPE[^>]*>\s*", "", svg)
    return svg


def score_class(v):
    if v is None:
        return ""
    return "good" if v >= 0.9 else ("mid" if v >= 0.75 else "bad")


def build_html(a, real_rel, syn_rel, real_n, syn_n, names, types, metrics, percol, pairs,
               dist_svg, heat_svg, sample_note):
    e = html.escape
    out = []
    out.append("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>")
    out.append("<title>samplellm quality report: %s vs %s</title>" % (e(syn_rel), e(real_rel)))
    out.append("""<style>
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1250px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;
font-size:13px}th{background:#f3f3f3;text-align:left}td.n{text-align:right;font-variant-numeric:
tabular-nums}.good{background:#e3f4e3}.mid{background:#fff4d6}.bad{background:#fbe0e0}
.note{color:#555;font-size:13px}svg{max-width:100%;height:auto}h2{margin-top:1.6em}
</style></head><body>""")
    out.append("<h1>Synthetic data quality report</h1>")
    out.append("<p>Real: <code>%s</code> (%d rows) &middot; synthetic: <code>%s</code> "
               "(%d rows)%s%s &middot; seed %d &middot; %s</p>" % (
                   e(real_rel), real_n, e(syn_rel), syn_n,
                   " &middot; label <code>%s</code>" % e(a.label) if a.label else "",
                   " &middot; holdout <code>%s</code>" % e(a.holdout) if a.holdout else "",
                   a.seed, e(datetime.datetime.now(datetime.timezone.utc)
                             .strftime("%Y-%m-%d %H:%M UTC"))))
    out.append("<p class='note'>Scores from <code>samplellm_evaluate</code> (1 = best, "
               "except log loss, exact_copy_rate and the DCR medians). Utility metrics need "
               "a label and a holdout.</p>")
    out.append("<h2>Metrics</h2><table><tr><th>metric</th><th>score</th><th>meaning</th></tr>")
    for m, meaning in AGGREGATES:
        if m in metrics:
            v = metrics[m]
            cls = score_class(v) if m in ("quality_score", "column_shapes",
                                           "column_pair_trends", "detection_score",
                                           "dcr_baseline_protection") else ""
            out.append("<tr><td>%s</td><td class='n %s'>%s</td><td>%s</td></tr>"
                       % (e(m), cls, fmt(v), e(meaning)))
    out.append("</table>")
    out.append("<h2>Column shapes</h2><table><tr><th>column</th><th>type</th><th>metric</th>"
               "<th>score</th></tr>")
    for name, t in zip(names, types):
        for metric in ("KSComplement", "TVComplement"):
            if (metric, name) in percol:
                v = percol[(metric, name)]
                out.append("<tr><td>%s</td><td>%s</td><td>%s</td><td class='n %s'>%s</td></tr>"
                           % (e(name), e(t), metric, score_class(v), fmt(v)))
    out.append("</table>")
    out.append("<h2>Distributions</h2><p class='note'>Share of each side's rows per bin "
               "(numbers, dates) or category (the 12 most frequent, the rest as "
               "&ldquo;(other)&rdquo;). %s</p>" % e(sample_note))
    out.append(inline_svg(dist_svg))
    if pairs:
        out.append("<h2>Column pairs whose trends differ most</h2><table><tr><th>pair</th>"
                   "<th>metric</th><th>score</th></tr>")
        for (metric, cols), v in pairs[:15]:
            out.append("<tr><td>%s</td><td>%s</td><td class='n %s'>%s</td></tr>"
                       % (e(cols), metric, score_class(v), fmt(v)))
        out.append("</table>")
    if heat_svg:
        out.append("<h2>Interactions in the real rows</h2><p class='note'>"
                   "<code>samplellm_interactions(real%s)</code>: the field &times; field "
                   "interaction matrix stage 2 uses, divided by its largest entry; dots mark "
                   "fields stage 2 puts in one cluster.</p>"
                   % (", label => '%s'" % e(a.label) if a.label else ""))
        out.append(inline_svg(heat_svg))
    out.append("<p class='note'>Made by bench/report.py (samplellm).</p></body></html>")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dsn", required=True, help="libpq connection string or URI")
    ap.add_argument("--real", required=True, help="the real table (any name regclass accepts)")
    ap.add_argument("--synthetic", required=True, help="the synthetic table")
    ap.add_argument("--label", help="label column: utility metrics (with --holdout)")
    ap.add_argument("--holdout", help="real rows never used for training or generation")
    ap.add_argument("--seed", type=int, default=1, help="seed of samplellm_evaluate (default 1)")
    ap.add_argument("--out", required=True, help="the HTML file to write")
    ap.add_argument("--max-rows", type=int, default=20000,
                    help="about this many rows read per table for the plots (seeded sample; default 20000)")
    ap.add_argument("--no-interactions", action="store_true",
                    help="skip the interaction matrix (samplellm_interactions)")
    ap.add_argument("--psql", default="psql", help="psql binary (default: psql on PATH)")
    a = ap.parse_args(argv)

    db = Db(a.dsn, a.psql)
    try:
        real_rel, syn_rel = rel_ident(db, a.real), rel_ident(db, a.synthetic)
        cols = columns_of(db, a.real)
        syn_names = {c for c, _ in columns_of(db, a.synthetic)}
        missing = [c for c, _ in cols if c not in syn_names]
        if missing:
            sys.exit("report.py: column %s of %s is missing from %s"
                     % (missing[0], real_rel, syn_rel))
        v = {"real": a.real, "syn": a.synthetic}
        extra = ""
        if a.label:
            v["label"] = a.label
            extra += ", label => :'label'"
        if a.holdout:
            v["holdout"] = a.holdout
            extra += ", holdout => :'holdout'::regclass"
        rows = db.query("SELECT metric, columns, score FROM samplellm_evaluate("
                        ":'real'::regclass, :'syn'::regclass%s, seed => %d);\n"
                        % (extra, a.seed), v)
        metrics, percol = {}, {}
        for r in rows:
            s = float(r["score"]) if r["score"] != "" else None
            if r["columns"]:
                percol[(r["metric"], r["columns"])] = s
            else:
                metrics[r["metric"]] = s
        names = [c for c, _ in cols]
        types = [t for _, t in cols]
        real_n, real_raw = read_rows(db, a.real, names, a.max_rows, a.seed)
        syn_n, syn_raw = read_rows(db, a.synthetic, names, a.max_rows, a.seed + 1)
        heat = None
        if not a.no_interactions:
            ivars = {"real": a.real}
            lab = ""
            if a.label:
                ivars["label"] = a.label
                lab = ", label => :'label'"
            inter = db.query("SELECT field_a, field_b, score, same_cluster FROM "
                             "samplellm_interactions(:'real'::regclass%s, seed => %d);\n"
                             % (lab, a.seed), ivars)
            fields = [n for n in names if n != a.label]
            idx = {f: i for i, f in enumerate(fields)}
            k = len(fields)
            score = [[0.0] * k for _ in range(k)]
            same = [[False] * k for _ in range(k)]
            for r in inter:
                i, j = idx.get(r["field_a"]), idx.get(r["field_b"])
                if i is None or j is None:
                    continue
                score[i][j] = score[j][i] = float(r["score"]) if r["score"] else 0.0
                same[i][j] = same[j][i] = r["same_cluster"] == "t"
            if k >= 2:
                heat = plots.heatmap_svg(fields, score, same, "interaction matrix of %s"
                                         % real_rel)
    except PsqlError as err:
        sys.exit("report.py: psql: %s" % err)

    real_cols = [convert(vals, t) for vals, t in zip(real_raw, types)]
    syn_cols = [convert(vals, t) for vals, t in zip(syn_raw, types)]
    kinds = [plots.kind_of(t) for t in types]
    dist = plots.distributions_svg(names, kinds, real_cols, syn_cols,
                                   "%s (real) vs %s (synthetic)" % (real_rel, syn_rel),
                                   real_label="real", syn_label="synthetic",
                                   units=[plots.time_unit(t) for t in types])
    note = "Plotted: %d of %d real rows, %d of %d synthetic rows." % (
        len(real_cols[0]) if real_cols else 0, real_n,
        len(syn_cols[0]) if syn_cols else 0, syn_n)
    pairs = sorted(((k, v) for k, v in percol.items()
                    if k[0] in ("CorrelationSimilarity", "ContingencySimilarity")
                    and v is not None), key=lambda kv: kv[1])
    doc = build_html(a, real_rel, syn_rel, real_n, syn_n, names, types, metrics, percol,
                     pairs, dist, heat, note)
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(doc)
    print("wrote %s (%d bytes)" % (a.out, len(doc.encode())))


if __name__ == "__main__":
    main()
