#!/usr/bin/env python3
"""check.py - request bodies and answer checks for test/slow/llama.sh.

  check.py body KIND [--stream] [--usage] [--max-tokens N] [--seed N] [--repeat K]
      print a chat request body like samplellm's (a system message, a user
      message with an <exemplars> block of 5 rows, K times); KIND picks the response_format
      schema: rows (bounded: maxLength strings, 2 rows, terminates), long
      (an unbounded reasoning string: runs until max_tokens), none
  check.py schema KIND       print that schema
  check.py answer FILE KIND  check a non-streamed answer (FILE: its body)
  check.py sse FILE KIND     check a streamed answer (FILE: the event stream)
      both print one JSON line {ok, finish, content, errors, notes, ...} and
      exit 0 when the envelope parses and, if the answer finished ("stop"),
      its content satisfies the schema as a grammar can: types, enums,
      lengths, array sizes, the shape of formats.  "notes" lists what a
      grammar lets through but a database would reject: integers written
      with an exponent (19e147632180), impossible dates (2023-02-30)
  check.py timing FILE [SEQ..]  print the timing records (all, or those seqs)

Standard library only.
"""

import datetime
import decimal
import json
import re
import sys

EXEMPLARS = [
    ["age", "income", "city", "signup", "label"],
    [30, 50000.5, "paris", "2023-01-05", True],
    [41, 62000.25, "rome", "2023-02-11", False],
    [25, 31000.0, "oslo", "2022-12-30", False],
    [52, 88000.75, "paris", "2023-03-01", True],
    [38, None, "rome", "2023-01-20", False],
]
SYSTEM = ("You write new rows for a database table. Answer with one JSON object "
          "that follows the schema. Each row must look like the exemplars without "
          "copying them.")

ROW = {"type": "object",
       "properties": {"age": {"type": "integer"},
                      "income": {"oneOf": [{"type": "number"}, {"type": "null"}]},
                      "city": {"enum": ["paris", "rome", "oslo"]},
                      "signup": {"type": "string", "format": "date"},
                      "label": {"type": "boolean"}},
       "required": ["age", "income", "city", "signup", "label"],
       "additionalProperties": False}
SCHEMAS = {
    "rows": {"type": "object",
             "properties": {"reasoning": {"type": "string", "maxLength": 60},
                            "rows": {"type": "array", "items": ROW,
                                     "minItems": 2, "maxItems": 2}},
             "required": ["reasoning", "rows"], "additionalProperties": False},
    "long": {"type": "object",
             "properties": {"reasoning": {"type": "string"},
                            "rows": {"type": "array", "items": ROW}},
             "required": ["reasoning", "rows"], "additionalProperties": False},
    "none": None,
}


def body(kind, stream=False, usage=False, max_tokens=None, seed=1, n=2, repeat=1):
    rows = [EXEMPLARS[0]] + EXEMPLARS[1:] * repeat
    user = ("Study the exemplars, then write new rows.\n<exemplars>\n"
            + "\n".join(json.dumps(r) for r in rows)
            + "\n</exemplars>\nWrite exactly %d new rows." % n)
    b = {"model": "sim", "temperature": 1.0, "seed": seed,
         "messages": [{"role": "system", "content": SYSTEM},
                      {"role": "user", "content": user}]}
    if SCHEMAS[kind] is not None:
        b["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "rows", "strict": True, "schema": SCHEMAS[kind]}}
    if max_tokens is not None:
        b["max_tokens"] = max_tokens
    if stream:
        b["stream"] = True
        if usage:
            b["stream_options"] = {"include_usage": True}
    return b


# -- a small JSON-schema check (the keywords samplellm's schemas use) --------

class Num(str):
    """A JSON number kept as its text."""


def loads(text):
    return json.loads(text, parse_float=Num, parse_int=Num)


def is_int_text(t):
    try:
        d = decimal.Decimal(t)
    except decimal.InvalidOperation:
        return False
    return d.is_finite() and d == d.to_integral_value()


def check(v, s, path, errors, notes):
    if s is None or s == {}:
        return
    for key in ("oneOf", "anyOf"):
        if key in s:
            ok = []
            for alt in s[key]:
                e = []
                check(v, alt, path, e, [])
                ok.append(not e)
            if sum(ok) == 0 or (key == "oneOf" and sum(ok) > 1):
                errors.append("%s: matches %d of the %s alternatives" % (path, sum(ok), key))
            for alt, good in zip(s[key], ok):
                if good:
                    check(v, alt, path, [], notes)
                    break
            return
    if "const" in s and v != s["const"]:
        errors.append("%s: %r is not the const" % (path, v))
    if "enum" in s:
        vals = [str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x
                for x in s["enum"]]
        if v not in vals:
            errors.append("%s: %r is not in the enum" % (path, v))
        return
    t = s.get("type")
    types = t if isinstance(t, list) else [t] if t else []
    kinds = {"null": v is None, "boolean": isinstance(v, bool),
             "string": isinstance(v, str) and not isinstance(v, Num),
             "number": isinstance(v, Num), "integer": isinstance(v, Num) and is_int_text(v),
             "object": isinstance(v, dict), "array": isinstance(v, list)}
    if types and not any(kinds[x] for x in types):
        errors.append("%s: %.40r is not %s" % (path, v, "/".join(types)))
        return
    if isinstance(v, Num):
        if "integer" in types and re.search(r"[eE.]", v):
            notes.append("%s: integer written as %s" % (path, v))
        d = decimal.Decimal(v)
        if "minimum" in s and d < decimal.Decimal(str(s["minimum"])):
            errors.append("%s: %s < minimum %s" % (path, v, s["minimum"]))
        if "maximum" in s and d > decimal.Decimal(str(s["maximum"])):
            errors.append("%s: %s > maximum %s" % (path, v, s["maximum"]))
    elif kinds["string"]:
        if "maxLength" in s and len(v) > s["maxLength"]:
            errors.append("%s: %d characters > maxLength %d" % (path, len(v), s["maxLength"]))
        if "minLength" in s and len(v) < s["minLength"]:
            errors.append("%s: %d characters < minLength %d" % (path, len(v), s["minLength"]))
        if "pattern" in s and not re.search(s["pattern"], v):
            errors.append("%s: %.40r does not match %s" % (path, v, s["pattern"]))
        fmt = s.get("format")
        if fmt in ("date", "date-time"):
            if not re.match(r"^\d{4}-\d{2}-\d{2}", v) or (fmt == "date" and len(v) != 10):
                errors.append("%s: %.40r is not shaped like a %s" % (path, v, fmt))
            else:
                try:
                    datetime.date.fromisoformat(v[:10])
                except ValueError:
                    notes.append("%s: impossible date %s" % (path, v))
    elif kinds["array"]:
        if "minItems" in s and len(v) < s["minItems"]:
            errors.append("%s: %d items < minItems %d" % (path, len(v), s["minItems"]))
        if "maxItems" in s and len(v) > s["maxItems"]:
            errors.append("%s: %d items > maxItems %d" % (path, len(v), s["maxItems"]))
        for i, x in enumerate(v):
            check(x, s.get("items"), "%s[%d]" % (path, i), errors, notes)
    elif kinds["object"]:
        props = s.get("properties", {})
        for k in s.get("required", []):
            if k not in v:
                errors.append("%s: missing %s" % (path, k))
        for k, x in v.items():
            if k in props:
                check(x, props[k], path + "." + k, errors, notes)
            elif s.get("additionalProperties") is False:
                errors.append("%s: unexpected key %s" % (path, k))


def verdict(content, finish, kind, extra):
    out = dict(extra, finish=finish, content=content, errors=[], notes=[])
    schema = SCHEMAS[kind]
    if finish == "stop" and schema is not None:
        try:
            doc = loads(content)
        except ValueError as e:
            out["errors"].append("content is not JSON: %s" % e)
        else:
            check(doc, schema, "$", out["errors"], out["notes"])
    out["ok"] = not out["errors"] and isinstance(content, str)
    return out


def answer(path, kind):
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
        choice = doc["choices"][0]
        content, finish = choice["message"]["content"], choice["finish_reason"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        return {"ok": False, "errors": ["bad envelope: %s" % e]}
    return verdict(content, finish, kind, {"usage": doc.get("usage"),
                                           "timings": doc.get("timings")})


def sse(path, kind):
    with open(path, "rb") as f:
        data = f.read()
    events, errors = [], []
    for block in data.split(b"\n\n"):
        if not block.strip():
            continue
        if not block.startswith(b"data: "):
            errors.append("not a data line: %.60r" % block)
            continue
        payload = block[6:]
        try:
            events.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
        except ValueError:
            errors.append("event is not JSON: %.60r" % payload)
    if not events or events[-1] != "[DONE]":
        errors.append("the stream does not end with [DONE]")
    chunks = [e for e in events if e != "[DONE]"]
    content, finish, usage = "", None, None
    for c in chunks:
        if c.get("object") != "chat.completion.chunk":
            errors.append("object is %r" % c.get("object"))
        if c.get("usage"):
            usage = c["usage"]
            if c.get("choices"):
                errors.append("the usage chunk has choices")
        for ch in c.get("choices") or []:
            content += ch.get("delta", {}).get("content") or ""
            finish = ch.get("finish_reason") or finish
    out = verdict(content, finish, kind, {"events": len(events), "usage": usage,
                                          "timings": (chunks[-1] if chunks else {}).get("timings")})
    out["errors"] = errors + out["errors"]
    out["ok"] = out["ok"] and not errors
    return out


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "body":
        kind, opts = argv[2], argv[3:]
        mt = opts[opts.index("--max-tokens") + 1] if "--max-tokens" in opts else None
        seed = opts[opts.index("--seed") + 1] if "--seed" in opts else 1
        rep = opts[opts.index("--repeat") + 1] if "--repeat" in opts else 1
        print(json.dumps(body(kind, "--stream" in opts, "--usage" in opts,
                              int(mt) if mt else None, int(seed), repeat=int(rep))))
        return 0
    if cmd == "schema":
        print(json.dumps(SCHEMAS[argv[2]]))
        return 0
    if cmd in ("answer", "sse"):
        out = (answer if cmd == "answer" else sse)(argv[2], argv[3])
        print(json.dumps(out))
        return 0 if out["ok"] else 1
    if cmd == "timing":
        seqs = {int(s) for s in argv[3:]}
        with open(argv[2]) as f:
            for line in f:
                rec = json.loads(line)
                if not seqs or rec["seq"] in seqs:
                    print(json.dumps(rec))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
