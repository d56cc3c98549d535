"""bench/quality/plots.py: the plots of the quality report and of bench/report.py.

Each function returns the text of a self-contained SVG document (no external
assets, text kept as text, no timestamps, fixed ids: the same input gives the
same bytes).  matplotlib (Debian's python3-matplotlib, Agg backend) draws
them; without it, plain hand-written SVG bars are drawn instead (coarser, but
no dependency).

Columns come as lists of Python values (None = NULL) with a kind:
"continuous" (numbers, or dates/timestamps already turned into numbers) or
"categorical" (compared by text), as samplellm_evaluate classifies them.
"""
import io
import math
import re

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    matplotlib.rcParams.update({
        "svg.fonttype": "none",         # text stays text: small files
        "svg.hashsalt": "samplellm",    # stable ids
        "font.size": 8,
        "axes.titlesize": 8,
        "axes.spines.top": False,
        "axes.spines.right": False,
    })
    HAVE_MPL = True
except ImportError:                      # pragma: no cover - depends on the machine
    HAVE_MPL = False

REAL_COLOR = "#4C72B0"
SYN_COLOR = "#DD8452"
METHOD_COLORS = {
    "real_only": "#7f7f7f", "builtin": "#8172B3", "builtin_stage2": "#64B5CD",
    "llm_uniform": "#C44E52", "samplellm": "#55A868",
}
MAX_CATEGORIES = 12                      # bars per categorical panel (+ "other")


# -- column types --------------------------------------------------------------

_CONT_TYPES = re.compile(
    r"^(smallint|integer|bigint|numeric|real|double precision|money|date|"
    r"timestamp|time|interval)")


def kind_of(pg_type):
    """continuous or categorical, from format_type() text, as the extension
    classifies columns (time and interval are drawn as categories here)."""
    t = pg_type.lower()
    if t.startswith(("time ", "interval")) or t == "time":
        return "categorical"
    return "continuous" if _CONT_TYPES.match(t) else "categorical"


def to_number(text, pg_type):
    """The number a continuous CSV field stands for (dates: days since 1970,
    timestamps: seconds), or None for NULL / unparsable / non-finite."""
    if text is None or text == "":
        return None
    t = pg_type.lower()
    try:
        if t.startswith("date"):
            import datetime
            return float(datetime.date.fromisoformat(text[:10]).toordinal() - 719163)
        if t.startswith("timestamp"):
            import datetime
            s = text.replace(" ", "T", 1)
            s = re.sub(r"([+-]\d\d)$", r"\1:00", s)
            d = datetime.datetime.fromisoformat(s)
            if d.tzinfo is None:
                d = d.replace(tzinfo=datetime.timezone.utc)
            return d.timestamp()
        if t.startswith("money"):
            text = re.sub(r"[^0-9.\-]", "", text)
        x = float(text)
        return x if math.isfinite(x) else None
    except ValueError:
        return None


def time_unit(pg_type):
    """'days' for a date column, 'seconds' for a timestamp, else None: how
    to_number encoded it, so the axis can show dates again."""
    t = pg_type.lower()
    if t.startswith("date"):
        return "days"
    if t.startswith("timestamp"):
        return "seconds"
    return None


def _date_formatter(unit):
    import datetime
    from matplotlib.ticker import FuncFormatter

    def f(x, _pos):
        try:
            secs = x * 86400.0 if unit == "days" else x
            d = datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=secs)
        except (OverflowError, ValueError):
            return ""
        return d.strftime("%Y-%m-%d")
    return FuncFormatter(f)


def category_counts(values):
    counts = {}
    for v in values:
        k = "NULL" if v is None else str(v)
        counts[k] = counts.get(k, 0) + 1
    return counts


def top_categories(real, syn):
    """Categories to draw (by real frequency, then synthetic), and their shares
    on both sides; the rest pooled as "(other)"."""
    rc, sc = category_counts(real), category_counts(syn)
    keys = sorted(set(rc) | set(sc), key=lambda k: (-rc.get(k, 0), -sc.get(k, 0), k))
    shown, rest = keys[:MAX_CATEGORIES], keys[MAX_CATEGORIES:]
    rn, sn = max(len(real), 1), max(len(syn), 1)
    rs = [rc.get(k, 0) / rn for k in shown]
    ss = [sc.get(k, 0) / sn for k in shown]
    if rest:
        shown = shown + ["(other)"]
        rs.append(sum(rc.get(k, 0) for k in rest) / rn)
        ss.append(sum(sc.get(k, 0) for k in rest) / sn)
    return shown, rs, ss


def histogram(real, syn, bins=20):
    """Shared bin edges over both sides' finite values and each side's share
    of its non-NULL values per bin."""
    r = [x for x in real if x is not None]
    s = [x for x in syn if x is not None]
    both = r + s
    if not both:
        return [0.0, 1.0], [0.0], [0.0]
    lo, hi = min(both), max(both)
    if hi <= lo:
        hi = lo + 1.0
    # integers with few distinct values: one bin per value
    distinct = set(both)
    if len(distinct) <= bins and all(float(x).is_integer() for x in distinct):
        lo, hi = min(distinct) - 0.5, max(distinct) + 0.5
        bins = int(hi - lo)
    edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)]

    def shares(xs):
        c = [0] * bins
        for x in xs:
            i = min(int((x - lo) / (hi - lo) * bins), bins - 1)
            c[i] += 1
        n = max(len(xs), 1)
        return [v / n for v in c]
    return edges, shares(r), shares(s)


def _short(text, n=14):
    return text if len(text) <= n else text[:n - 1] + "\u2026"


def _svg_text(fig):
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None},
                bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# -- the three plots -----------------------------------------------------------

def distributions_svg(names, kinds, real_cols, syn_cols, title,
                      real_label="real", syn_label="synthetic", null_shares=True,
                      units=None):
    """A grid, one panel per column: overlaid histograms (continuous) or side
    by side bars (categorical) of the real and the synthetic values, as shares
    of each side's rows."""
    if not HAVE_MPL:
        return _fallback_distributions(names, kinds, real_cols, syn_cols, title,
                                       real_label, syn_label)
    n = len(names)
    ncols = min(4, max(n, 1))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.3 * nrows),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        name, kind, real, syn = names[i], kinds[i], real_cols[i], syn_cols[i]
        if kind == "continuous":
            edges, rs, ss = histogram(real, syn)
            widths = [edges[j + 1] - edges[j] for j in range(len(rs))]
            ax.bar(edges[:-1], rs, width=widths, align="edge", color=REAL_COLOR,
                   alpha=0.55, label=real_label, linewidth=0)
            ax.stairs(ss, edges, color=SYN_COLOR, linewidth=1.4, label=syn_label)
            rnull = sum(v is None for v in real) / max(len(real), 1)
            snull = sum(v is None for v in syn) / max(len(syn), 1)
            extra = ""
            if null_shares and (rnull or snull):
                extra = "  (NULL %.1f%% / %.1f%%)" % (100 * rnull, 100 * snull)
            ax.set_title(name + extra)
            if units and units[i]:
                ax.xaxis.set_major_formatter(_date_formatter(units[i]))
                ax.tick_params(axis="x", labelrotation=30)
        else:
            keys, rs, ss = top_categories(real, syn)
            x = list(range(len(keys)))
            ax.bar([v - 0.2 for v in x], rs, width=0.4, color=REAL_COLOR,
                   label=real_label, linewidth=0)
            ax.bar([v + 0.2 for v in x], ss, width=0.4, color=SYN_COLOR,
                   label=syn_label, linewidth=0)
            ax.set_xticks(x)
            ax.set_xticklabels([_short(k) for k in keys], rotation=45, ha="right",
                               fontsize=6.5)
            ax.set_title(name)
        ax.tick_params(labelsize=6.5)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.97 if nrows > 1 else 0.93))
    fig.legend(handles, labels, loc="upper right", ncol=2, fontsize=7, frameon=False)
    return _svg_text(fig)


def heatmap_svg(fields, score, same, title):
    """The field x field interaction matrix (score = interaction / largest),
    with a dot where stage 2 put the two fields in one cluster."""
    n = len(fields)
    if not HAVE_MPL:
        return _fallback_heatmap(fields, score, same, title)
    size = max(3.5, 0.32 * n + 1.8)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    data = [[float("nan") if i == j else score[i][j] for j in range(n)] for i in range(n)]
    im = ax.imshow(data, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels([_short(f, 18) for f in fields], rotation=60, ha="right", fontsize=6.5)
    ax.set_yticklabels([_short(f, 18) for f in fields], fontsize=6.5)
    for i in range(n):
        for j in range(n):
            if i != j and same[i][j]:
                ax.plot(j, i, "o", color="white", markersize=2.5)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                 label="interaction / largest (dot: same stage 2 cluster)")
    ax.set_title(title)
    fig.tight_layout()
    return _svg_text(fig)


def metric_bars_svg(metrics, methods, values, title, refs=None):
    """Grouped horizontal bars: one group per metric, one bar per method.
    values[method][metric] may be None (not applicable).  refs: {metric:
    (value, label)} drawn as a dashed line (e.g. the real-only AUC)."""
    if not HAVE_MPL:
        return _fallback_bars(metrics, methods, values, title)
    refs = refs or {}
    m, k = len(metrics), len(methods)
    fig, ax = plt.subplots(figsize=(7.0, 0.15 * m * (k + 1) + 1.0))
    h = 0.8 / k
    for j, method in enumerate(methods):
        ys, xs = [], []
        for i, metric in enumerate(metrics):
            v = values.get(method, {}).get(metric)
            if v is not None and math.isfinite(v):
                ys.append(i + (j - (k - 1) / 2) * h)
                xs.append(v)
        ax.barh(ys, xs, height=h, color=METHOD_COLORS.get(method, None),
                label=method, linewidth=0)
        for y, x in zip(ys, xs):
            ax.text(x + 0.005, y, "%.3f" % x, va="center", fontsize=5.5)
    for i, metric in enumerate(metrics):
        if metric in refs:
            v, lab = refs[metric]
            ax.plot([v, v], [i - 0.45, i + 0.45], "--", color="black", linewidth=0.8)
            ax.text(v + 0.005, i - 0.45, lab, fontsize=5.5, ha="left", va="top")
    ax.set_yticks(range(m))
    ax.set_yticklabels(metrics)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.12)
    ax.legend(fontsize=6.5, frameon=False, loc="upper center", ncol=k,
              bbox_to_anchor=(0.5, -0.04))
    ax.set_title(title)
    fig.tight_layout()
    return _svg_text(fig)


# -- hand-written SVG when matplotlib is missing --------------------------------

def _esc(s):
    return (str(s).replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;"))


def _fallback_distributions(names, kinds, real_cols, syn_cols, title, rl, sl):
    pw, ph, ncols = 260, 170, 3
    n = len(names)
    nrows = max(1, math.ceil(n / ncols))
    W, H = pw * ncols, ph * nrows + 40
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="9">' % (W, H),
           '<text x="6" y="14" font-size="12">%s</text>' % _esc(title),
           '<rect x="6" y="22" width="9" height="9" fill="%s"/><text x="18" y="30">%s</text>'
           % (REAL_COLOR, _esc(rl)),
           '<rect x="90" y="22" width="9" height="9" fill="%s"/><text x="102" y="30">%s</text>'
           % (SYN_COLOR, _esc(sl))]
    for i in range(n):
        x0, y0 = (i % ncols) * pw + 10, (i // ncols) * ph + 45
        if kinds[i] == "continuous":
            edges, rs, ss = histogram(real_cols[i], syn_cols[i])
            labels = ["%.4g" % edges[0], "%.4g" % edges[-1]]
        else:
            keys, rs, ss = top_categories(real_cols[i], syn_cols[i])
            labels = None
        top = max(rs + ss + [1e-9])
        bw = (pw - 30) / max(len(rs), 1)
        out.append('<text x="%d" y="%d">%s</text>' % (x0, y0, _esc(names[i])))
        base = y0 + ph - 45
        for j, (a, b) in enumerate(zip(rs, ss)):
            for off, v, c in ((0, a, REAL_COLOR), (bw / 2, b, SYN_COLOR)):
                hgt = v / top * (ph - 65)
                out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                           % (x0 + j * bw + off, base - hgt, max(bw / 2 - 0.5, 0.5), hgt, c))
            if labels is None:
                out.append('<text x="%.1f" y="%d" font-size="6" transform="rotate(45 %.1f %d)">'
                           '%s</text>' % (x0 + j * bw, base + 8, x0 + j * bw, base + 8,
                                          _esc(_short(keys[j], 10))))
        if labels:
            out.append('<text x="%d" y="%d">%s</text><text x="%d" y="%d" text-anchor="end">%s</text>'
                       % (x0, base + 10, labels[0], x0 + pw - 30, base + 10, labels[1]))
    out.append("</svg>")
    return "\n".join(out)


def _fallback_heatmap(fields, score, same, title):
    n, c = len(fields), 16
    W, H = 130 + n * c, 30 + n * c + 110
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="8">' % (W, H),
           '<text x="4" y="14" font-size="11">%s</text>' % _esc(title)]
    for i in range(n):
        out.append('<text x="124" y="%d" text-anchor="end">%s</text>'
                   % (30 + i * c + 11, _esc(_short(fields[i], 20))))
        for j in range(n):
            v = 0.0 if i == j else max(0.0, min(1.0, score[i][j]))
            g = int(255 * (1 - v))
            out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="rgb(%d,%d,255)"/>'
                       % (130 + j * c, 30 + i * c, c - 1, c - 1, g, g))
    out.append("</svg>")
    return "\n".join(out)


def _fallback_bars(metrics, methods, values, title):
    row = 9
    H = 30 + len(metrics) * (len(methods) + 1) * row + 20
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="520" height="%d" '
           'font-family="sans-serif" font-size="8">' % H,
           '<text x="4" y="14" font-size="11">%s</text>' % _esc(title)]
    y = 30
    for metric in metrics:
        out.append('<text x="4" y="%d">%s</text>' % (y + 7, _esc(metric)))
        for method in methods:
            v = values.get(method, {}).get(metric)
            if v is not None and math.isfinite(v):
                out.append('<rect x="150" y="%d" width="%.1f" height="%d" fill="%s"/>'
                           '<text x="%.1f" y="%d">%s %.3f</text>'
                           % (y, 300 * v, row - 1, METHOD_COLORS.get(method, "#999"),
                              155 + 300 * v, y + 7, _esc(method), v))
            y += row
        y += row
    out.append("</svg>")
    return "\n".join(out)
