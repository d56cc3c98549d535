#!/usr/bin/env python3
"""Figures of bench/bench_stage1.sh (the stage-1 benchmark).

Usage: python3 bench/bench_stage1.py STEP DIR [ARGS...], called by the shell
script, which leaves in DIR, for each measured call NAME (run in a fresh
backend): NAME.out (psql output with \\timing), NAME.stat0/NAME.stat1
(/proc/<backend>/stat before and after), NAME.status (/proc/<backend>/status
right after the call) and NAME.json (samplellm_last_run()).  Each step prints
its figures and adds them to DIR/results.json; "summary" prints the table.

Steps: throughput DIR NAME C R L N | simcheck DIR SIM URL SIM_LOG C WAVES L |
cpu DIR N R | memory DIR BIG_ROWS | tokens DIR TOKENIZER_DIR | summary DIR
"""
import http.client
import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "test"))
import llm_sim  # noqa: E402  (the simulator's own answer generator)

HZ = os.sysconf("SC_CLK_TCK")
CONTEXTS = (8192, 32768)


# -- files of one measured call ----------------------------------------------

def last_run(d, name):
    with open(os.path.join(d, name + ".json")) as f:
        return json.loads(f.read().strip())


def wall_s(d, name):
    """Seconds of the timed statement (psql \\timing)."""
    with open(os.path.join(d, name + ".out")) as f:
        times = re.findall(r"^Time: ([0-9.]+) ms", f.read(), re.M)
    return float(times[-1]) / 1000.0


def cpu_s(d, name):
    """Backend CPU seconds (utime + stime) spent between stat0 and stat1."""
    def ticks(path):
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])    # fields 14, 15 of stat
    return (ticks(os.path.join(d, name + ".stat1"))
            - ticks(os.path.join(d, name + ".stat0"))) / HZ


def status_kb(d, name):
    out = {}
    with open(os.path.join(d, name + ".status")) as f:
        for line in f:
            m = re.match(r"^(Vm\w+|Rss\w+):\s+(\d+) kB", line)
            if m:
                out[m.group(1)] = int(m.group(2))
    return out


def anon_peak_mb(d, name):
    """Largest RssAnon sampled every 10 ms during the session, or None."""
    path = os.path.join(d, name + ".anon")
    if not os.path.exists(path):
        return None
    kb = [int(m.group(1)) for m in re.finditer(r"RssAnon:\s+(\d+) kB", open(path).read())]
    return mb(max(kb)) if kb else None


def sim_cpu_s(d, name):
    path = os.path.join(d, name + ".simcpu")
    if not os.path.exists(path):
        return None
    a, b = open(path).read().split()
    return (float(b) - float(a)) / HZ


def save(d, key, value):
    path = os.path.join(d, "results.json")
    res = json.load(open(path)) if os.path.exists(path) else {}
    res[key] = value
    with open(path, "w") as f:
        json.dump(res, f, indent=1)


def mb(kb):
    return kb / 1024.0


# -- 1. throughput -------------------------------------------------------------

def throughput(d, name, c, r, lat, n):
    c, r, lat, n = int(c), int(r), float(lat), int(n)
    run, wall = last_run(d, name), wall_s(d, name)
    rate, ideal = n / wall, c * r / lat
    sim = sim_cpu_s(d, name)
    waves = math.ceil(run["calls"] / c)
    print("C = %2d: n = %5d rows in %6.2f s = %6.1f rows/s; ideal C*R/L = %5.0f rows/s "
          "-> %5.1f %% (calls %d in %d waves, retries %d, valid %d; backend CPU %.2f s, "
          "simulator CPU %.2f s = %.0f %% of one core)"
          % (c, n, wall, rate, ideal, 100 * rate / ideal, run["calls"], waves,
             run["retries"], run["valid"], cpu_s(d, name), sim, 100 * sim / wall))
    save(d, name, {"C": c, "R": r, "L": lat, "n": n, "wall_s": wall, "rows_per_s": rate,
                   "ideal": ideal, "pct": 100 * rate / ideal, "calls": run["calls"],
                   "retries": run["retries"], "backend_cpu_s": cpu_s(d, name),
                   "sim_cpu_s": sim})


def simcheck(d, sim, url, log, c, waves, lat):
    """The simulator alone at concurrency C and latency L: replay a logged body."""
    c, waves, lat = int(c), int(waves), float(lat)
    body = None
    with open(log) as f:
        for line in f:
            e = json.loads(line)
            b = e.get("body")
            if isinstance(b, dict) and "latency=" in str(b.get("model")):
                body = b
    if body is None:
        print("simulator check: no logged request to replay")
        return
    body = dict(body, model=re.sub(r"latency=[0-9.]+", "latency=%g" % lat, body["model"]))
    raw = json.dumps(body).encode()
    u = urllib.parse.urlsplit(url)
    errors = []

    def client():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        try:
            for _ in range(waves):
                conn.request("POST", u.path + "/chat/completions", raw,
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors.append(resp.status)
        except OSError as e:
            errors.append(str(e))
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(c)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    per = wall / waves - lat
    err = ", errors: %s" % errors[:5] if errors else ""
    if lat > 0:
        rps, ideal = c * waves / wall, c / lat
        print("   simulator alone (Python client, %d keep-alive connections x %d requests, "
              "L = %g s): %.2f s = %.1f requests/s against ideal %.0f -> %.1f %%; "
              "%.1f ms per answer beyond L%s"
              % (c, waves, lat, wall, rps, ideal, 100 * rps / ideal, 1000 * per, err))
    else:
        rps, ideal = None, None
        print("   simulator alone (Python client, %d connection%s x %d requests, L = 0): "
              "%.1f ms per answer%s" % (c, "s" if c > 1 else "", waves, 1000 * per, err))
    save(d, "simcheck_%s_c%d" % (sim, c),
         {"sim": sim, "C": c, "waves": waves, "L": lat, "wall_s": wall,
          "ms_per_answer": 1000 * per,
          "pct": 100 * rps / ideal if ideal else None, "errors": len(errors)})


# -- 2. backend CPU per row ----------------------------------------------------

def cpu(d, n, r):
    n, r = int(n), int(r)
    small, big = last_run(d, "cpu_small"), last_run(d, "cpu_big")
    cs, cb = cpu_s(d, "cpu_small"), cpu_s(d, "cpu_big")
    ws, wb = wall_s(d, "cpu_small"), wall_s(d, "cpu_big")
    rows = big["candidates"] - small["candidates"]
    per_row = 1e6 * (cb - cs) / rows
    sim = sim_cpu_s(d, "cpu_big")
    print("n = %d: wall %.2f s (%.0f rows/s), backend CPU %.2f s = %.1f us per returned row "
          "gross; %d calls, %d candidates, %d valid"
          % (n, wb, n / wb, cb, 1e6 * cb / n, big["calls"], big["candidates"], big["valid"]))
    print("n = %d (fixed cost: settings, seeds, k-means, prompt, one call): wall %.3f s, "
          "backend CPU %.2f s" % (r, ws, cs))
    print("backend CPU per candidate row (parse + validate + tuple), net of the fixed cost: "
          "%.1f us  (/proc ticks of %d ms)" % (per_row, 1000 // HZ))
    print("simulator CPU meanwhile: %.2f s (%.0f %% of one core); 2 cores are shared by both"
          % (sim, 100 * sim / wb))
    top = os.path.join(d, "perf.top")
    split = None
    if os.path.exists(top) and os.path.getsize(top):
        split = perf_split(os.path.join(d, "perf.all"))
        print("perf profile of the backend during the n = %d call (self time, share of "
              "samples; postgres symbols shown as addresses are static functions):" % n)
        for line in open(top).read().splitlines()[:15]:
            f = line.split()
            print("   %7s  %-22s %s" % (f[0], f[1], " ".join(f[3:]).rstrip(" -")))
        print("   by library: " + ", ".join("%s %.0f %%" % kv for kv in split))
        incl = perf_children(os.path.join(d, "perf.children"))
        if incl:
            print("   inclusive time of the pipeline's steps (DWARF call graphs, approximate; "
                  "us per row = share x backend CPU / n):")
            for sym, what, pct in incl:
                print("   %6.1f %%  %5.1f us/row  %-28s %s" % (pct, pct / 100 * 1e6 * cb / n,
                                                            sym, what))
            split = {"libs": split, "inclusive": incl}
    save(d, "cpu", {"n": n, "wall_s": wb, "rows_per_s": n / wb, "cpu_s": cb,
                    "us_per_row_gross": 1e6 * cb / n, "us_per_row_net": per_row,
                    "fixed_cpu_s": cs, "sim_cpu_s": sim, "split": split})


STEPS = [
    ("samplellm_generate", "the whole call"),
    ("sl_http_run", "requests and everything done per answer"),
    ("on_success", "one answer: parse + validate + keep"),
    ("sl_parse_response", "parse: the response JSON (cJSON)"),
    ("sl_validate_row", "validate: keys, type input functions, checks"),
    ("BeginInternalSubTransaction", "  of which subtransaction start"),
    ("InputFunctionCall", "  of which type input functions"),
    ("sl_rowset_add", "keep the row (copy, text, numeric value)"),
    ("sl_rowset_create", "a row set per answer"),
    ("tuplestore_putvalues", "tuple: the result tuplestore"),
    ("request_body", "prompt: request bodies"),
    ("curl_multi_perform", "libcurl: sending and receiving"),
    ("sl_seeds_read", "seeds (1,000 rows)"),
]


def perf_children(path):
    """Inclusive sample shares of the steps in STEPS, from perf report --children."""
    if not os.path.exists(path):
        return []
    seen = {}
    for line in open(path):
        m = re.match(r"\s*([0-9.]+)%\s+([0-9.]+)%\s+\[\.\]\s+(\S+)", line)
        if m and m.group(3) not in seen:
            seen[m.group(3)] = float(m.group(1))
    return [(sym, what, seen[sym]) for sym, what in STEPS if sym in seen]


def perf_split(path):
    by = {}
    for line in open(path):
        m = re.match(r"\s*([0-9.]+)%\s+(\S+)", line)
        if m:
            by[m.group(2)] = by.get(m.group(2), 0.0) + float(m.group(1))
    return sorted(by.items(), key=lambda kv: -kv[1])[:6]


# -- 3. memory -----------------------------------------------------------------

def memory(d, big_rows):
    big_rows = int(big_rows)
    res = {}
    t0, t1 = (float(x) for x in open(os.path.join(d, "big_create.time")).read().split())
    size = open(os.path.join(d, "big.size")).read().strip()
    print("t_big: %d rows, %s on disk, created (INSERT + VACUUM FREEZE ANALYZE) in %.0f s"
          % (big_rows, size, t1 - t0))
    print("(each line a fresh backend after a server restart; RssAnon/RssShmem at the end, "
          "peak anon sampled every 10 ms)")
    print("(count(*): serial, jit = off; with JIT on, LLVM alone adds ~60 MB to VmHWM)")
    print("%-6s %-30s %8s %9s %10s %8s %9s %s"
          % ("table", "statement", "wall s", "VmHWM MB", "peak anon", "RssAnon", "RssShmem",
             "seed rows kept/seen"))
    for t, label in (("t_10k", "10k"), ("t_big", "big")):
        for kind, what in (("idle", "SELECT 1"), ("scan", "SELECT count(*)"),
                           ("gen", "samplellm_generate(n => 20)")):
            name = "mem_%s_%s" % (kind, t)
            st = status_kb(d, name)
            extra = ""
            if kind == "gen":
                run = last_run(d, name)
                extra = "%d / %d" % (run["seed_rows"], run["seed_rows_seen"])
            peak = anon_peak_mb(d, name)
            res["%s_%s" % (kind, label)] = {"wall_s": wall_s(d, name),
                                            "hwm_mb": mb(st["VmHWM"]),
                                            "anon_peak_mb": peak,
                                            "anon_mb": mb(st.get("RssAnon", 0)),
                                            "shmem_mb": mb(st.get("RssShmem", 0))}
            print("%-6s %-30s %8.3f %9.1f %10s %8.1f %9.1f %s"
                  % (t, what, wall_s(d, name), mb(st["VmHWM"]),
                     "%.1f" % peak if peak is not None else "-", mb(st.get("RssAnon", 0)),
                     mb(st.get("RssShmem", 0)), extra))
    g10, gb = res["gen_10k"], res["gen_big"]
    seed_read = gb["wall_s"] - g10["wall_s"]
    delta = gb["hwm_mb"] - g10["hwm_mb"]
    bounded = abs(delta) < 32
    print("peak backend RSS of the call: %.1f MB with %d rows against %.1f MB with 10,000 "
          "(difference %+.1f MB, table %s): %s"
          % (gb["hwm_mb"], big_rows, g10["hwm_mb"], delta, size,
             "bounded by max_seed_rows, not by the table" if bounded
             else "GROWS WITH THE TABLE"))
    if g10["anon_peak_mb"] is not None and gb["anon_peak_mb"] is not None:
        print("peak private (anonymous) memory of the call: %.1f MB with %d rows against "
              "%.1f MB with 10,000" % (gb["anon_peak_mb"], big_rows, g10["anon_peak_mb"]))
    print("seed reading of %d rows: %.2f s (the call's time minus the same call on 10,000 "
          "rows); a plain serial SELECT count(*) (no JIT) scans them in %.2f s"
          % (big_rows, seed_read, res["scan_big"]["wall_s"]))
    res.update({"rows": big_rows, "size": size, "seed_read_s": seed_read,
                "hwm_delta_mb": delta, "bounded": bounded})
    save(d, "memory", res)


# -- 4. tokens and row encodings -------------------------------------------------

class Raw(str):
    """A JSON number kept as its text, so re-encoding changes nothing."""


def loads_raw(text):
    return json.loads(text, parse_float=Raw, parse_int=Raw)


def enc(v, sep=","):
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, list):
        return "[" + sep.join(enc(x, sep) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + sep.join(json.dumps(k) + ":" + enc(x, sep) for k, x in v.items()) + "}"
    return json.dumps(v, ensure_ascii=False)


EXEMPLARS_RE = re.compile(r"^([ \t]*<exemplars>[ \t]*\n)(.*?)(^[ \t]*</exemplars>)", re.S | re.M)


def as_objects(text):
    """The user message with its exemplars as JSON objects, one a line, no header."""
    m = EXEMPLARS_RE.search(text)
    lines = [ln for ln in m.group(2).splitlines() if ln.strip()]
    header = loads_raw(lines[0])
    rows = [loads_raw(ln) for ln in lines[1:]]
    same = all(enc(r) == ln.strip() for r, ln in zip(rows, lines[1:]))
    objs = "".join(enc(dict(zip(header, r))) + "\n" for r in rows)
    new = text[:m.start(2)] + objs + text[m.end(2):]
    new = new.replace("as JSON arrays in column order (the first line names the columns)",
                      "as JSON objects, one a line")
    return new, same


def completion_forms(body):
    """The simulator's answer to body (rows as objects) and the same rows as arrays."""
    raw = json.dumps(body).encode()
    sc = llm_sim.parse_scenario(body.get("model", "sim"))
    content = llm_sim.make_content(body, raw, sc, 0)
    obj = json.loads(content, parse_float=Raw, parse_int=Raw)
    rows = obj.get("rows", [])
    header = list(rows[0].keys()) if rows else []
    parts = ["%s: %s" % (json.dumps(k), enc(v, ", ")) for k, v in obj.items() if k != "rows"]
    parts.append('"columns": ' + enc(header, ", "))
    parts.append('"rows": [' + ", ".join(enc(list(r.values()), ", ") for r in rows) + "]")
    return content, "{" + ", ".join(parts) + "}", len(rows)


def ceil4(text):
    return math.ceil(len(text) / 4) if text else 0


def tokenizer(tokdir):
    """A function counting o200k_base tokens of many texts, or None."""
    mod = os.path.join(tokdir, "node_modules", "gpt-tokenizer")
    if not (shutil.which("node") and os.path.isdir(mod)):
        return None
    script = ("const t = require(%s); let s = ''; process.stdin.on('data', c => s += c);"
              "process.stdin.on('end', () => console.log(JSON.stringify("
              "JSON.parse(s).map(x => t.encode(x).length))));"
              % json.dumps(os.path.join(mod, "cjs", "encoding", "o200k_base.js")))

    def count(texts):
        out = subprocess.run(["node", "-e", script], input=json.dumps(texts).encode(),
                             capture_output=True, check=True)
        return json.loads(out.stdout)
    return count


def tokens(d, tokdir):
    count = tokenizer(tokdir)
    if count is None:
        print("token figures are the simulator's estimate, ceil(chars / 4) per request "
              "(no python3-tiktoken in Debian 12; `npm install --prefix %s gpt-tokenizer` "
              "adds real o200k_base counts)" % tokdir)
    else:
        print("token figures: the simulator's ceil(chars / 4) per request (what "
              "samplellm_last_run() reports), and o200k_base (GPT-4o tokenizer, npm "
              "gpt-tokenizer) counts of the same texts")
    res = {}
    for t in ("t10", "t50"):
        run = last_run(d, "tok_" + t)
        reqs = [json.loads(ln)["body"] for ln in open(os.path.join(d, "tok_%s.requests.jsonl" % t))]
        reqs = [b for b in reqs if isinstance(b, dict) and "messages" in b]
        ncols = len(loads_raw(EXEMPLARS_RE.search(
            "\n".join(m["content"] for m in reqs[0]["messages"])).group(2).split("\n")[0]))
        valid = run["valid"]
        p_arr, p_obj, c_obj, c_arr, all_same = [], [], [], [], True
        texts = []
        for b in reqs:
            msgs = [m["content"] for m in b["messages"]]
            alt = []
            for m in msgs:
                if "<exemplars>" in m and EXEMPLARS_RE.search(m):
                    m2, same = as_objects(m)
                    all_same &= same
                    alt.append(m2)
                else:
                    alt.append(m)
            p_arr.append("".join(msgs))
            p_obj.append("".join(alt))
            co, ca, _ = completion_forms(b)
            c_obj.append(co)
            c_arr.append(ca)
        schema = [json.dumps(b.get("response_format")) if b.get("response_format") else ""
                  for b in reqs]
        max_tokens = [b.get("max_tokens") or b.get("max_completion_tokens") or 0 for b in reqs]
        est = {k: sum(ceil4(x) for x in v) for k, v in
               (("p_arr", p_arr), ("p_obj", p_obj), ("c_obj", c_obj), ("c_arr", c_arr))}
        real = None
        if count:
            cnt = count(p_arr + p_obj + c_obj + c_arr + schema)
            k = len(reqs)
            real = {"p_arr": sum(cnt[0:k]), "p_obj": sum(cnt[k:2 * k]),
                    "c_obj": sum(cnt[2 * k:3 * k]), "c_arr": sum(cnt[3 * k:4 * k]),
                    "schema": cnt[4 * k:5 * k], "p_each": cnt[0:k]}
        print("%s (%d columns): %d requests, %d rows per call, %d valid rows; "
              "samplellm_last_run(): prompt %d + completion %d tokens = %.1f + %.1f per row"
              % (t, ncols, run["calls"], run["rows_per_call"], valid, run["prompt_tokens"],
                 run["completion_tokens"], run["prompt_tokens"] / valid,
                 run["completion_tokens"] / valid))
        if est["p_arr"] != run["prompt_tokens"]:
            print("   note: the logged requests give %d prompt tokens, last_run %d"
                  % (est["p_arr"], run["prompt_tokens"]))
        if not all_same:
            print("   note: some exemplar lines did not re-encode byte for byte")
        fmt = "   %-34s %10s %10s"
        print(fmt % ("per generated row", "chars/4", "o200k" if real else ""))
        rows_out = [
            ("prompt, exemplars as arrays (sent)", "p_arr"),
            ("prompt, exemplars as objects", "p_obj"),
            ("completion, rows as objects (sent)", "c_obj"),
            ("completion, rows as arrays", "c_arr")]
        for label, key in rows_out:
            print(fmt % (label, "%.1f" % (est[key] / valid),
                         "%.1f" % (real[key] / valid) if real else ""))
        if real:
            print("   chars per o200k token: prompt %.2f, json_schema %.2f, completion %.2f "
                  "(the simulator assumes 4; the extension's budget assumes 3)"
                  % (sum(map(len, p_arr)) / real["p_arr"],
                     sum(map(len, schema)) / max(1, sum(real["schema"])),
                     sum(map(len, c_obj)) / real["c_obj"]))
        pick = real or est
        arr_total = (pick["p_arr"] + pick["c_obj"]) / valid
        obj_total = (pick["p_obj"] + pick["c_obj"]) / valid
        cheaper = "arrays" if arr_total <= obj_total else "objects"
        print("   exemplars as arrays: %.1f tokens per row in all; as objects: %.1f -> "
              "%s cheaper by %.1f %% (%s)"
              % (arr_total, obj_total, cheaper,
                 100 * abs(obj_total - arr_total) / max(arr_total, obj_total),
                 "o200k" if real else "chars/4"))
        print("   (rows asked for as arrays instead of objects would change the completion "
              "by %+.1f tokens per row)" % ((pick["c_arr"] - pick["c_obj"]) / valid))
        entry = {"columns": ncols, "calls": run["calls"], "rows_per_call": run["rows_per_call"],
                 "valid": valid, "prompt_per_row": run["prompt_tokens"] / valid,
                 "completion_per_row": run["completion_tokens"] / valid,
                 "est": {k: v / valid for k, v in est.items()},
                 "real": {k: real[k] / valid for k in ("p_arr", "p_obj", "c_obj", "c_arr")}
                 if real else None,
                 "arrays_total": arr_total, "objects_total": obj_total, "cheaper": cheaper}
        if t == "t50":
            i = max(range(len(reqs)), key=lambda j: len(p_arr[j]))
            p_est, s_est = ceil4(p_arr[i]), ceil4(schema[i])
            p_real = real["p_each"][i] if real else None
            s_real = real["schema"][i] if real else None
            need_est = p_est + s_est + max_tokens[i]
            need_real = p_real + s_real + max_tokens[i] if real else None
            print("   context, largest 50-column request: prompt %d (o200k %s) + json_schema "
                  "%d (o200k %s) + max_tokens %d = %d tokens%s"
                  % (p_est, p_real if real else "-", s_est, s_real if real else "-",
                     max_tokens[i], need_est,
                     " (o200k %d)" % need_real if real else ""))
            for ctx in CONTEXTS:
                worst = max(need_est, need_real or 0)
                print("   fits a %dk context: %s (%d tokens to spare)"
                      % (ctx // 1024, "yes" if worst <= ctx else "NO", ctx - worst))
            entry["context"] = {"prompt": p_est, "prompt_real": p_real, "schema": s_est,
                                "schema_real": s_real, "max_tokens": max_tokens[i],
                                "need": need_est, "need_real": need_real}
            if "prompt_budget" in run:
                print("   the extension's own prompt budget: %s" % json.dumps(run["prompt_budget"]))
        res[t] = entry
    res["tokenizer"] = "o200k_base" if count else None
    save(d, "tokens", res)


# -- summary -------------------------------------------------------------------

def summary(d):
    path = os.path.join(d, "results.json")
    res = json.load(open(path)) if os.path.exists(path) else {}
    rows = []
    for sim, what in (("stock", "llm_sim.py"), ("nodelay", "llm_sim.py + TCP_NODELAY")):
        for c in (1, 8, 32):
            r = res.get("tp_%s_c%d" % (sim, c))
            if r:
                rows.append(("throughput C=%d, L=1 s, R=%d, %s" % (c, r["R"], what),
                             "%.1f rows/s" % r["rows_per_s"],
                             "ideal C*R/L = %.0f rows/s" % r["ideal"],
                             "%.1f %%%s" % (r["pct"], " (target >= 90 %)" if c == 32 else "")))
        r = res.get("simcheck_%s_c1" % sim)
        if r:
            rows.append(("%s alone: time per answer, L=0" % what,
                         "%.1f ms" % r["ms_per_answer"], "Python client, keep-alive", ""))
        r = res.get("simcheck_%s_c32" % sim)
        if r:
            rows.append(("%s alone: C=32, L=1 s" % what, "%.1f %% of ideal" % r["pct"],
                         "C/L = 32 requests/s", ""))
    if "cpu" in res:
        r = res["cpu"]
        rows.append(("backend CPU per row, L=0, C=4, stream %s" % os.environ.get("BENCH_STREAM", "on"), "%.1f us net (%.1f gross)"
                     % (r["us_per_row_net"], r["us_per_row_gross"]),
                     "n=%d in %.2f s wall" % (r["n"], r["wall_s"]),
                     "%.0f rows/s" % r["rows_per_s"]))
    if "memory" in res:
        r = res["memory"]
        rows.append(("peak backend RSS, %d-row source" % r["rows"],
                     "%.1f MB" % r["gen_big"]["hwm_mb"],
                     "%.1f MB with 10,000 rows" % r["gen_10k"]["hwm_mb"],
                     "bounded" if r["bounded"] else "NOT BOUNDED"))
        rows.append(("seed reading, %d rows" % r["rows"], "%.2f s" % r["seed_read_s"],
                     "count(*) scan %.2f s" % r["scan_big"]["wall_s"], ""))
    if "tokens" in res:
        r = res["tokens"]
        unit = r["tokenizer"] or "chars/4"
        for t in ("t10", "t50"):
            e = r.get(t)
            if e:
                rows.append(("tokens per row, %d columns (%s)" % (e["columns"], unit),
                             "%.1f (arrays)" % e["arrays_total"],
                             "%.1f (exemplars as objects)" % e["objects_total"],
                             "%s cheaper" % e["cheaper"]))
        ctx = r.get("t50", {}).get("context")
        if ctx:
            need = max(ctx["need"], ctx["need_real"] or 0)
            rows.append(("50-column request + max_tokens", "%d tokens" % need,
                         "8k / 32k context",
                         "/".join("fits" if need <= c else "DOES NOT FIT" for c in CONTEXTS)))
    w = [max(len(r[i]) for r in rows) if rows else 10 for i in range(4)]
    head = ("measure", "result", "against", "verdict")
    print("== summary")
    print("| " + " | ".join(h.ljust(w[i]) for i, h in enumerate(head)) + " |")
    print("|" + "|".join("-" * (w[i] + 2) for i in range(4)) + "|")
    for r in rows:
        print("| " + " | ".join(r[i].ljust(w[i]) for i in range(4)) + " |")


def main():
    step, args = sys.argv[1], sys.argv[2:]
    steps = {"throughput": throughput, "simcheck": simcheck, "cpu": cpu, "memory": memory,
             "tokens": tokens, "summary": summary}
    if step not in steps:
        sys.exit("unknown step %r" % step)
    steps[step](*args)


if __name__ == "__main__":
    main()
