"""Quick checks of test/llm_sim.py, the LLM simulator (a test double).

Run from the repository root:  python3 -m unittest test/test_llm_sim.py
"""

import concurrent.futures
import email.utils
import gzip
import http.client
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llm_sim.py")
_spec = importlib.util.spec_from_file_location("llm_sim", SIM)
sim = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim)

EXEMPLARS = [
    ["age", "income", "city", "signup", "label"],
    [30, 50000.5, "paris", "2023-01-05", True],
    [41, 62000.25, "rome", "2023-02-11", False],
    [25, 31000.0, "oslo", "2022-12-30", False],
    [52, 88000.75, "paris", "2023-03-01T10:00:00+02:00", True],
    [38, 45000.0, "rome", "2023-01-20", False],
    [29, 39000.5, "oslo", "2023-01-02", True],
    [61, None, "rome", "2023-02-02", False],
]
# names the markers in running text: the simulator must only take whole lines
SYSTEM = "You write table rows; exemplars come between <exemplars> and </exemplars> lines."
PROPS = {"age": {"type": "integer"}, "income": {"type": ["number", "null"]},
         "city": {"type": "string", "enum": ["paris", "rome", "oslo"]},
         "signup": {"type": "string"}, "label": {"type": "boolean"}}


def make_body(model="sim", n=4, schema=True, **extra):
    user = ("Analyse the exemplars first.\n<exemplars>\n"
            + "\n".join(json.dumps(r) for r in EXEMPLARS)
            + "\n</exemplars>\nWrite exactly %d new rows." % n)
    body = {"model": model, "temperature": 0.1, "top_p": 0.9, "seed": 7,
            "messages": [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": user}]}
    if schema:
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "rows", "strict": True, "schema": {
                "type": "object",
                "properties": {"reasoning": {"type": "string"}, "rows": {
                    "type": "array", "items": {
                        "type": "object", "properties": PROPS, "required": list(PROPS),
                        "additionalProperties": False}}},
                "required": ["reasoning", "rows"], "additionalProperties": False}}}
    body.update(extra)
    return body


def raw_exchange(port, body, timeout=10):
    """POST body on a bare socket (Connection: close); return (bytes received,
    how it ended: "eof", "reset" or "timeout" after timeout seconds in all)."""
    data = json.dumps(body).encode()
    deadline = time.monotonic() + timeout
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    got = b""
    try:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Connection: close\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(data) + data)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            sock.settimeout(left)
            chunk = sock.recv(65536)
            if not chunk:
                return got, "eof"
            got += chunk
    except ConnectionResetError:
        return got, "reset"
    except socket.timeout:
        return got, "timeout"
    finally:
        sock.close()


def split_response(got):
    head, _, body = got.partition(b"\r\n\r\n")
    headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    return head.split(b" ")[1], headers, body


def start_sim(tmp, *extra):
    port_file = os.path.join(tmp, "port")
    proc = subprocess.Popen([sys.executable, SIM, "--port", "0", "--port-file", port_file,
                             "--log", os.path.join(tmp, "log.jsonl")] + list(extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not os.path.exists(port_file):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("llm_sim did not start: %s" % proc.stderr.read())
        time.sleep(0.02)
    with open(port_file) as f:
        return proc, int(f.read())


def sse_events(data):
    """The data: payloads of an event stream, JSON-decoded ("[DONE]" as is)."""
    out = []
    for block in data.split(b"\n\n"):
        if not block.strip():
            continue
        assert block.startswith(b"data: "), block[:80]
        payload = block[6:]
        out.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return out


def stream_text(events):
    return "".join(e["choices"][0]["delta"].get("content") or ""
                   for e in events if e != "[DONE]" and e["choices"])


def read_timing(path, seq=None):
    with open(path) as f:
        recs = [json.loads(line) for line in f]
    return recs if seq is None else next(r for r in recs if r["seq"] == seq)


def stop_sim(proc):
    proc.terminate()
    proc.wait(10)
    proc.stdout.close()
    proc.stderr.close()


class Client:
    """HTTP helpers for a test case whose simulator listens on self.port."""

    def request(self, method, path, body=None, headers=None, timeout=10, port=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        try:
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            return resp, resp.read()
        finally:
            conn.close()

    def chat(self, body, **kw):
        return self.request("POST", "/v1/chat/completions", body, **kw)


class SimTest(Client, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="llm_sim_test.")
        cls.proc, cls.port = start_sim(cls.tmp, "--seed", "3")

    @classmethod
    def tearDownClass(cls):
        cls.proc.terminate()
        cls.proc.wait(10)
        cls.proc.stdout.close()
        cls.proc.stderr.close()
        shutil.rmtree(cls.tmp)


    def content(self, body):
        resp, raw = self.chat(body)
        self.assertEqual(resp.status, 200, raw)
        return json.loads(raw)["choices"][0]["message"]["content"]

    # -- basics --

    def test_models_and_404(self):
        resp, raw = self.request("GET", "/v1/models")
        self.assertEqual(resp.status, 200)
        self.assertEqual(json.loads(raw)["data"][0]["id"], "sim")
        resp, raw = self.request("GET", "/nope")
        self.assertEqual(resp.status, 404)
        self.assertIn("error", json.loads(raw))

    def test_completion_shape_and_rows(self):
        resp, raw = self.chat(make_body())
        self.assertEqual(resp.status, 200)
        self.assertEqual(int(resp.getheader("Content-Length")), len(raw))
        doc = json.loads(raw)
        self.assertEqual(doc["object"], "chat.completion")
        self.assertEqual(doc["created"], 1700000000)
        self.assertTrue(doc["id"].startswith("chatcmpl-sim-"))
        choice = doc["choices"][0]
        self.assertEqual(choice["finish_reason"], "stop")
        content = choice["message"]["content"]
        out = json.loads(content)
        self.assertEqual(list(out), ["reasoning", "rows"])
        self.assertEqual(len(out["rows"]), 4)
        for row in out["rows"]:
            self.assertEqual(list(row), list(PROPS))
            self.assertIn(row["city"], PROPS["city"]["enum"])
            self.assertIsInstance(row["age"], int)
            self.assertTrue(25 <= row["age"] <= 61)
            self.assertIsInstance(row["label"], bool)
            self.assertRegex(row["signup"], r"^\d{4}-\d{2}-\d{2}(T10:00:00\+02:00)?$")
        usage = doc["usage"]
        self.assertEqual(usage["completion_tokens"], -(-len(content) // 4))
        self.assertEqual(usage["total_tokens"],
                         usage["prompt_tokens"] + usage["completion_tokens"])

    def test_deterministic_and_concurrent(self):
        bodies = [make_body(n=5, seed=s) for s in range(12)]
        serial = [self.content(b) for b in bodies]
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            parallel = list(pool.map(self.content, bodies))
        self.assertEqual(serial, parallel)
        self.assertGreater(len(set(serial)), 1)
        self.assertNotEqual(self.content(make_body(model="sim?seed=1")),
                            self.content(make_body()))

    def test_fallback_without_schema(self):
        out = json.loads(self.content(make_body(schema=False, n=3)))
        self.assertEqual(list(out), ["rows"])
        self.assertEqual(len(out["rows"]), 3)
        self.assertEqual(list(out["rows"][0]), EXEMPLARS[0])
        out = json.loads(self.content(make_body(model="sim?think=1", schema=False)))
        self.assertEqual(list(out), ["reasoning", "rows"])
        out = json.loads(self.content(make_body(model="sim?think=0")))
        self.assertEqual(list(out), ["rows"])

    def test_generation_keys(self):
        out = json.loads(self.content(make_body(model="sim?rows=9")))
        self.assertEqual(len(out["rows"]), 9)
        rows = json.loads(self.content(make_body(model="sim?copy=1", n=20)))["rows"]
        for row in rows:
            self.assertIn(list(row.values()), EXEMPLARS[1:])
        for rate, want in (("1", True), ("0", False)):
            rows = json.loads(self.content(
                make_body(model="sim?label=label&label_rate=" + rate, n=30)))["rows"]
            self.assertTrue(all(r["label"] is want for r in rows))
        rows = json.loads(self.content(make_body(model="sim?lowdiv=1&mix=0", n=10)))["rows"]
        self.assertEqual(len({r["city"] for r in rows}), 1)

    def test_flaws(self):
        def pairs_of(content):
            return json.loads(content, object_pairs_hook=lambda p: p)
        rows = pairs_of(self.content(make_body(model="sim?dupkey=1", n=5)))[1][1]
        for row in rows:
            keys = [k for k, _ in row]
            self.assertEqual(len(keys), len(set(keys)) + 1)
        rows = json.loads(self.content(make_body(model="sim?malformed=1", n=40)))["rows"]
        for row in rows:
            self.assertFalse(isinstance(row, dict) and list(row) == list(PROPS))
        rows = json.loads(self.content(make_body(model="sim?nulls=1&mix=0", n=20)))["rows"]
        self.assertTrue(all(None in r.values() for r in rows))
        rows = json.loads(self.content(make_body(model="sim?wrong_type=1", n=20)))["rows"]
        self.assertTrue(all("n/a" in r.values() or {"nested": "object"} in r.values()
                            for r in rows))
        rows = json.loads(self.content(make_body(model="sim?badvalue=1", n=30)))["rows"]
        bad = (99999999999999999999, 1e300, "zzz_invalid_label", "2023-02-30", "x" * 10000)
        self.assertTrue(all(any(v in bad for v in r.values()) for r in rows))

    def test_bad_scenarios(self):
        for model in ("sim?mixx=1", "sim?mix=2", "sim?content=weird", "sim?label=nope",
                      "sim?close=weird", "sim?nul=x", "sim?deep=0", "sim?drip=0",
                      "sim?huge=-1", "sim?badutf8=2"):
            resp, raw = self.chat(make_body(model=model))
            self.assertEqual(resp.status, 400, model)
            self.assertIn("llm_sim", json.loads(raw)["error"]["message"])

    # -- envelope and transport faults --

    def test_fail_chain(self):
        body = make_body(model="sim?fail=429:1,500:1&retry_after=2&retry_after_ms=150")
        resp, raw = self.chat(body)
        self.assertEqual(resp.status, 429)
        self.assertEqual(resp.getheader("Retry-After"), "2")
        self.assertEqual(resp.getheader("retry-after-ms"), "150")
        self.assertEqual(self.chat(body)[0].status, 500)
        self.assertEqual(self.chat(body)[0].status, 200)
        self.assertEqual(self.chat(body)[0].status, 200)
        self.assertEqual(self.chat(make_body(model="sim?fail=503:-1", seed=1))[0].status, 503)

    def test_retry_after_date_and_400(self):
        resp, raw = self.chat(make_body(model="sim?status=503&retry_after_date=120"))
        self.assertEqual(resp.status, 503)
        when = email.utils.parsedate_to_datetime(resp.getheader("Retry-After")).timestamp()
        self.assertAlmostEqual(when, time.time() + 120, delta=3)
        resp, raw = self.chat(make_body(model="sim?status=400"))
        err = json.loads(raw)["error"]
        self.assertEqual((resp.status, err["code"]), (400, "context_length_exceeded"))
        self.assertIn("maximum context length", err["message"])

    # -- transport faults (bare sockets: http.client hides how a connection ended) --

    def test_close_modes(self):
        full, how = raw_exchange(self.port, make_body(model="sim?seed=5"))
        status, headers, body = split_response(full)
        self.assertEqual((status, len(body), how), (b"200", int(headers["Content-Length"]), "eof"))
        for mode, half, want_end in (("headers", False, "eof"), ("short", True, "eof"),
                                     ("reset", True, "reset")):
            got, how = raw_exchange(self.port, make_body(model="sim?seed=5&close=" + mode),
                                    timeout=5)
            status, headers, body = split_response(got)
            length = int(headers["Content-Length"])
            self.assertEqual(status, b"200", mode)
            self.assertGreater(length, 500, mode)
            self.assertEqual((len(body), how), (length // 2 if half else 0, want_end), mode)
        got, how = raw_exchange(self.port, make_body(model="sim?status=503&close=short"),
                                timeout=5)
        self.assertEqual((split_response(got)[0], how), (b"503", "eof"))

    def test_drip(self):
        t0 = time.monotonic()
        resp, raw = self.chat(make_body(model="sim?status=404&drip=400"))
        self.assertEqual(resp.status, 404)
        self.assertGreaterEqual(time.monotonic() - t0, len(raw) / 400 * 0.8)
        self.assertIn("error", json.loads(raw))
        got, how = raw_exchange(self.port, make_body(model="sim?drip=5"), timeout=1)
        status, headers, body = split_response(got)
        self.assertEqual((status, how), (b"200", "timeout"))
        self.assertLessEqual(len(body), 8)
        self.assertGreater(int(headers["Content-Length"]), 100)

    # -- hostile answers --

    def test_huge_and_gzip(self):
        resp, raw = self.chat(make_body(model="sim?huge=1.5"))
        self.assertGreaterEqual(len(raw), int(1.5 * 1024 * 1024))
        self.assertEqual(len(json.loads(json.loads(raw)["choices"][0]["message"]["content"])
                             ["rows"]), 4)
        resp, raw = self.chat(make_body(model="sim?gzip=20"),
                              headers={"Accept-Encoding": "identity"})
        self.assertEqual(resp.getheader("Content-Encoding"), "gzip")
        self.assertLess(len(raw), 200 * 1024)
        plain = gzip.decompress(raw)
        self.assertGreaterEqual(len(plain), 20 * 1024 * 1024)
        self.assertEqual(json.loads(plain)["object"], "chat.completion")

    def test_nul_badutf8_deep(self):
        rows = json.loads(self.content(make_body(model="sim?nul=row")))["rows"]
        self.assertIn("\x00", rows[0]["city"] + rows[0]["signup"])
        self.assertTrue(all("\x00" not in json.dumps(r) for r in rows[1:]))
        self.assertTrue(self.content(make_body(model="sim?nul=envelope")).endswith("}\x00"))
        resp, raw = self.chat(make_body(model="sim?badutf8=1"))
        self.assertIn(b'"content": "\xff\xfe\xc0\xaf{', raw)
        with self.assertRaises(UnicodeDecodeError):
            raw.decode("utf-8")
        content = self.content(make_body(model="sim?deep=10000"))
        self.assertIn('"age": ' + "[" * 10000 + "]" * 10000 + ",", content)
        self.assertEqual(content.count("[" * 10000), 1)
        resp, raw = self.chat(make_body(model="sim?deepenv=10000"))
        self.assertTrue(raw.startswith(b'{"meta": ' + b"[" * 10000 + b"]" * 10000 + b', "id": '))

    def test_inject(self):
        out = json.loads(self.content(make_body(model="sim?inject=1&think=1", schema=False, n=8)))
        cities = {r["city"] for r in out["rows"]}
        self.assertTrue(cities <= set(sim.INJECTIONS) and len(cities) > 1, cities)
        self.assertTrue(out["reasoning"].startswith(sim.INJECTIONS[0]))
        self.assertTrue(all(r["signup"][:2] in ("20",) for r in out["rows"]))  # dates stay

    def test_status_quota_schema(self):
        resp, raw = self.chat(make_body(model="sim?status=401"),
                              headers={"Authorization": "Bearer sk-test-echo"})
        self.assertEqual(resp.status, 401)
        self.assertIn("Bearer sk-test-echo", json.loads(raw)["error"]["message"])
        resp, raw = self.chat(make_body(model="sim?quota=1"))
        self.assertEqual((resp.status, json.loads(raw)["error"]["code"]),
                         (429, "insufficient_quota"))
        resp, raw = self.chat(make_body(model="sim?no_schema=1"))
        self.assertEqual(resp.status, 400)
        self.assertEqual(json.loads(raw)["error"]["param"], "response_format")
        text = self.content(make_body(model="sim?no_schema=1", schema=False))
        self.assertTrue(text.startswith("Sure! Here are the rows:\n```json\n{"))
        self.assertTrue(text.endswith("}\n```\nHope this helps."))

    def test_auth_and_redirect(self):
        resp, raw = self.chat(make_body(model="sim?auth=sk-right"),
                              headers={"Authorization": "Bearer sk-wrong"})
        self.assertEqual(resp.status, 401)
        self.assertEqual(json.loads(raw)["error"]["code"], "invalid_api_key")
        resp, raw = self.chat(make_body(model="sim?auth=sk-right"))
        self.assertEqual(resp.status, 401)
        resp, raw = self.chat(make_body(model="sim?auth=sk-right"),
                              headers={"Authorization": "Bearer sk-right"})
        self.assertEqual(resp.status, 200, raw)
        resp, raw = self.chat(make_body(model="sim?redirect=307"))
        self.assertEqual((resp.status, raw), (307, b""))
        self.assertEqual(resp.getheader("Location"), "/v1/chat/completions?redirected=1")
        resp, raw = self.request("POST", "/v1/chat/completions?redirected=1",
                                 make_body(model="sim?redirect=307"))
        self.assertEqual(resp.status, 200, raw)

    def test_content_modes(self):
        resp, raw = self.chat(make_body(model="sim?content=empty"))
        self.assertEqual((resp.status, raw), (200, b""))
        resp, raw = self.chat(make_body(model="sim?content=html"))
        self.assertEqual(resp.getheader("Content-Type"), "text/html")
        self.assertEqual(self.content(make_body(model="sim?content=invalid")),
                         '{"rows": [ {broken')
        self.assertIsNone(self.content(make_body(model="sim?content=null")))
        msg = json.loads(self.chat(make_body(model="sim?content=refusal"))[1])
        self.assertEqual(msg["choices"][0]["message"]["refusal"], "I can't help with that")
        doc = json.loads(self.chat(make_body(model="sim?content=choices_empty"))[1])
        self.assertEqual(doc["choices"], [])
        doc = json.loads(self.chat(make_body(model="sim?content=truncated"))[1])
        self.assertEqual(doc["choices"][0]["finish_reason"], "length")
        self.assertTrue(doc["choices"][0]["message"]["content"].startswith('{"reasoning": '))
        with self.assertRaises(ValueError):
            json.loads(doc["choices"][0]["message"]["content"])
        doc = json.loads(self.chat(make_body(max_tokens=10))[1])
        self.assertEqual(doc["choices"][0]["finish_reason"], "length")
        self.assertEqual(len(doc["choices"][0]["message"]["content"]), 40)

    def test_stall_and_latency(self):
        t0 = time.monotonic()
        self.assertEqual(self.chat(make_body(model="sim?latency=0.3"))[0].status, 200)
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        with self.assertRaises(OSError):        # socket.timeout is an OSError
            self.chat(make_body(model="sim?stall=5"), timeout=0.3)

    def test_log(self):
        self.chat(make_body(model="sim?rows=1"), headers={"Authorization": "Bearer sk-log"})
        self.request("POST", "/v1/chat/completions", b"not json")
        path = os.path.join(self.tmp, "log.jsonl")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o644)
        with open(path) as f:
            lines = [json.loads(line) for line in f]
        seqs = [e["seq"] for e in lines]
        self.assertEqual(sorted(seqs), list(range(1, len(seqs) + 1)))
        mine = [e for e in lines if e["authorization"] == "Bearer sk-log"]
        self.assertEqual(mine[0]["model"], "sim?rows=1")
        self.assertEqual(mine[0]["body"]["seed"], 7)
        self.assertIn("not json", [e["body"] for e in lines])


    # -- streaming --

    def stream(self, body, **kw):
        resp, raw = self.chat(body, **kw)
        self.assertEqual(resp.status, 200, raw[:300])
        self.assertEqual(resp.getheader("Content-Type"), "text/event-stream")
        self.assertEqual(resp.getheader("Transfer-Encoding"), "chunked")
        return sse_events(raw)

    def test_answer_key_ignores_delivery_members(self):
        body = make_body(stream=True, stream_options={"include_usage": True})
        plain = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        for kw in ({}, {"separators": (",", ":")}, {"indent": "\t"}):
            self.assertEqual(sim.answer_key(body, json.dumps(body, **kw).encode()),
                             json.dumps(plain, **kw).encode())
        moved = dict([("stream", True)] + list(plain.items()))
        self.assertEqual(sim.answer_key(moved, json.dumps(moved).encode()),
                         json.dumps(plain).encode())
        raw = json.dumps(plain).encode()
        self.assertIs(sim.answer_key(plain, raw), raw)      # untouched without them

    def test_stream_matches_non_stream(self):
        for extra in ({}, {"max_tokens": 30}, {"n": 9, "seed": 11}):
            kw = dict(extra)
            plain = json.loads(self.chat(make_body(**kw))[1])
            events = self.stream(make_body(stream=True, **kw))
            self.assertEqual(events[-1], "[DONE]")
            chunks = events[:-1]
            self.assertTrue(all(c["object"] == "chat.completion.chunk" and
                                c["id"] == plain["id"] and "usage" not in c for c in chunks))
            self.assertEqual(chunks[0]["choices"][0]["delta"], {"role": "assistant",
                                                                "content": ""})
            self.assertEqual(stream_text(chunks), plain["choices"][0]["message"]["content"])
            self.assertEqual(chunks[-1]["choices"][0]["finish_reason"],
                             plain["choices"][0]["finish_reason"])
            self.assertEqual(chunks[-1]["choices"][0]["delta"], {})
            self.assertTrue(all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]))
            pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
            self.assertEqual(len(pieces), plain["usage"]["completion_tokens"])
        events = self.stream(make_body(stream=True, stream_options={"include_usage": True}))
        self.assertEqual(events[-2]["choices"], [])
        self.assertEqual(events[-2]["usage"], json.loads(self.chat(make_body())[1])["usage"])
        self.assertTrue(all(e["usage"] is None for e in events[:-2]))
        self.assertEqual(events[-3]["choices"][0]["finish_reason"], "stop")

    def test_stream_refusals(self):
        resp, raw = self.chat(make_body(model="sim?nostream=1", stream=True))
        err = json.loads(raw)["error"]
        self.assertEqual((resp.status, err["param"], err["code"]),
                         (400, "stream", "unsupported_value"))
        self.assertEqual(self.chat(make_body(model="sim?nostream=1"))[0].status, 200)
        body = make_body(model="sim?nostream_options=1", stream=True,
                         stream_options={"include_usage": True})
        resp, raw = self.chat(body)
        self.assertEqual(resp.status, 400)
        self.assertIn("stream_options", json.loads(raw)["error"]["message"])
        self.stream(make_body(model="sim?nostream_options=1", stream=True))
        resp, raw = self.chat(make_body(stream_options={"include_usage": True}))
        self.assertEqual((resp.status, json.loads(raw)["error"]["param"]),
                         (400, "stream_options"))
        resp, raw = self.chat(make_body(model="sim?nostream=ignore", stream=True))
        self.assertEqual(resp.getheader("Content-Type"), "application/json")
        self.assertEqual(json.loads(raw)["choices"][0]["message"]["content"],
                         self.content(make_body(model="sim?nostream=ignore")))
        resp, raw = self.chat(make_body(model="sim?status=503", stream=True))
        self.assertEqual((resp.status, resp.getheader("Content-Type")),
                         (503, "application/json"))

    def test_stream_content_modes(self):
        def text_of(model, **kw):
            return stream_text(self.stream(make_body(model=model, stream=True, **kw)))
        self.assertEqual(text_of("sim?content=invalid"), '{"rows": [ {broken')
        self.assertEqual(text_of("sim?prose=1"), self.content(make_body(model="sim?prose=1")))
        self.assertEqual(text_of("sim?nul=envelope"),
                         self.content(make_body(model="sim?nul=envelope")))
        self.assertEqual(text_of("sim?huge=0.1"), self.content(make_body(model="sim?huge=0.1")))
        ev = self.stream(make_body(model="sim?content=truncated", stream=True))
        self.assertEqual(ev[-2]["choices"][0]["finish_reason"], "length")
        ev = self.stream(make_body(model="sim?content=null", stream=True))
        self.assertEqual(stream_text(ev), "")
        self.assertIsNone(ev[0]["choices"][0]["delta"]["content"])
        ev = self.stream(make_body(model="sim?content=refusal", stream=True))
        self.assertIn({"refusal": "I can't help with that"},
                      [e["choices"][0]["delta"] for e in ev[:-1]])
        ev = self.stream(make_body(model="sim?content=choices_empty", stream=True))
        self.assertTrue(all(e["choices"] == [] for e in ev[:-1]))
        resp, raw = self.chat(make_body(model="sim?content=html", stream=True))
        self.assertEqual(resp.getheader("Content-Type"), "text/html")
        resp, raw = self.chat(make_body(model="sim?badutf8=1", stream=True))
        self.assertIn(b'"content": "\xff\xfe\xc0\xaf', raw)
        resp, raw = self.chat(make_body(model="sim?deepenv=100", stream=True))
        self.assertTrue(raw.startswith(b'data: {"meta": ' + b"[" * 100))
        resp, raw = self.chat(make_body(model="sim?gzip=2", stream=True))
        self.assertEqual(resp.getheader("Content-Encoding"), "gzip")
        ev = sse_events(gzip.decompress(raw))
        plain = gzip.decompress(self.chat(make_body(model="sim?gzip=2"))[1])
        self.assertEqual(stream_text(ev), json.loads(plain)["choices"][0]["message"]["content"])

    def test_stream_transport_faults(self):
        body = make_body(model="sim?seed=5&close=short", n=6, stream=True)
        whole = sim.make_content(body, json.dumps(body).encode(),
                                 sim.parse_scenario(body["model"]), 3)
        got, how = raw_exchange(self.port, body, timeout=5)
        status, headers, body = split_response(got)
        self.assertEqual((status, how, headers["Transfer-Encoding"]), (b"200", "eof", "chunked"))
        self.assertFalse(body.endswith(b"0\r\n\r\n"))     # no final chunk
        events = []
        while body:                                         # undo the chunked framing
            size, _, rest = body.partition(b"\r\n")
            events += sse_events(rest[:int(size, 16)])
            body = rest[int(size, 16) + 2:]
        text = stream_text(events)
        self.assertNotIn("[DONE]", events)
        self.assertEqual(len(text), 4 * -(-len(whole) // 8))   # half the 4-char pieces
        self.assertEqual(text, whole[:len(text)])
        # complete rows before the cut
        self.assertGreaterEqual(text.count("}, {"), 2)
        got, how = raw_exchange(self.port, make_body(model="sim?close=reset", stream=True),
                                timeout=5)
        self.assertEqual((split_response(got)[0], how), (b"200", "reset"))
        got, how = raw_exchange(self.port, make_body(model="sim?close=headers", stream=True),
                                timeout=5)
        self.assertEqual((split_response(got)[0], split_response(got)[2], how),
                         (b"200", b"", "eof"))
        got, how = raw_exchange(self.port, make_body(model="sim?drip=2000", stream=True),
                                timeout=0.5)
        self.assertEqual(how, "timeout")
        self.assertLess(len(got), 2000)
        self.assertIn(b"data: {", got)

    def test_personality_routes_absent_by_default(self):
        for path in ("/props", "/slots", "/metrics", "/health", "/api/ps"):
            self.assertEqual(self.request("GET", path)[0].status, 404, path)



def population_csv(n=2000, seed=3):
    """A population where label = (age > 40) mostly and city follows age."""
    import random as _r
    rng = _r.Random(seed)
    lines = ["age,income,city,signup,label"]
    for i in range(n):
        age = rng.randint(20, 70)
        city = "rome" if age > 45 else ("paris" if age > 30 else "oslo")
        income = round(1000.0 * age + rng.random(), 2)
        label = "t" if (age > 40) != (rng.random() < 0.1) else "f"
        lines.append("%d,%s,%s,2023-01-%02d,%s" % (age, income if i % 50 else "",
                                                   city, 1 + i % 28, label))
    return "\n".join(lines) + "\n"


class PopulationTest(unittest.TestCase):
    """population=NAME: rows from a larger real population, with planted biases."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        path = os.path.join(cls.dir, "pop.csv")
        with open(path, "w") as fh:
            fh.write(population_csv())
        name, table = sim.load_population("people=" + path)
        sim.POPULATIONS[name] = table
        cls.header, cls.pop = table

    @classmethod
    def tearDownClass(cls):
        sim.POPULATIONS.pop("people", None)
        shutil.rmtree(cls.dir)

    def rows(self, model, n=400):
        body = make_body(model=model, n=n)
        content = sim.make_content(body, json.dumps(body).encode(),
                                   sim.parse_scenario(model), 0)
        return json.loads(content)["rows"]

    def test_rows_come_from_the_population_not_the_exemplars(self):
        rows = self.rows("sim?population=people&copy=1&mix=0")
        pop = {(int(r[0]), r[2], r[4] == "t") for r in self.pop}
        got = {(r["age"], r["city"], r["label"]) for r in rows}
        self.assertTrue(got <= pop)
        # far more distinct ages than the 7 exemplars have
        self.assertGreater(len({r["age"] for r in rows}), 30)
        # an empty cell is null, numbers are numbers
        self.assertTrue(all(r["income"] is None or isinstance(r["income"], float)
                            for r in rows))

    def test_relations_of_the_population_hold(self):
        rows = self.rows("sim?population=people&mix=0")
        agree = sum((r["age"] > 45) == (r["city"] == "rome") for r in rows)
        self.assertGreater(agree / len(rows), 0.9)      # perturbed ages near 45 only
        pos = sum(r["label"] for r in rows) / len(rows)
        self.assertLess(abs(pos - 0.56), 0.08)          # the population's own rate

    def test_label_skew_keeps_features_given_label(self):
        rows = self.rows("sim?population=people&mix=0&label=label&label_rate=0.2", 1000)
        rate = sum(r["label"] for r in rows) / len(rows)
        self.assertLess(abs(rate - 0.2), 0.04)
        # P(age > 40 | label) still the population's: ~0.9 among positives
        pos = [r for r in rows if r["label"]]
        self.assertGreater(sum(r["age"] > 40 for r in pos) / len(pos), 0.8)

    def test_break_makes_a_column_independent(self):
        rows = self.rows("sim?population=people&mix=0&break=city", 1000)
        agree = sum((r["age"] > 45) == (r["city"] == "rome") for r in rows)
        self.assertLess(agree / len(rows), 0.75)
        # the marginal stays the population's (rome ~ half of ages 20..70)
        rome = sum(r["city"] == "rome" for r in rows) / len(rows)
        self.assertLess(abs(rome - 25 / 51), 0.06)

    def test_deterministic_and_unknown_population(self):
        self.assertEqual(self.rows("sim?population=people"), self.rows("sim?population=people"))
        body = make_body(model="sim?population=nobody")
        with self.assertRaises(sim.RequestError):
            sim.make_content(body, json.dumps(body).encode(),
                             sim.parse_scenario(body["model"]), 0)
        with self.assertRaises(ValueError):
            sim.load_population("no-equals-sign")

class CapacityTest(Client, unittest.TestCase):
    """--slots, --tps, the timing log and cancellation (vllm personality: /metrics)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="llm_sim_test.")
        cls.timing = os.path.join(cls.tmp, "timing.jsonl")
        cls.proc, cls.port = start_sim(cls.tmp, "--slots", "2", "--tps", "400",
                                       "--personality", "vllm", "--timing-log", cls.timing)

    @classmethod
    def tearDownClass(cls):
        stop_sim(cls.proc)
        shutil.rmtree(cls.tmp)

    def seq_of(self, model):
        """The timing record of the (only) request whose model string is model."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with open(os.path.join(self.tmp, "log.jsonl")) as f:
                seqs = [e["seq"] for e in map(json.loads, f) if e["model"] == model]
            recs = [r for r in read_timing(self.timing) if r["seq"] in seqs]
            if recs:
                return recs[0]
            time.sleep(0.02)
        self.fail("no timing record for %s" % model)

    def metrics(self):
        resp, raw = self.request("GET", "/metrics")
        self.assertEqual(resp.status, 200)
        vals = {}
        for line in raw.decode().splitlines():
            if line.startswith("vllm:num_requests_"):
                name, value = line.split("{")[0], float(line.rsplit(" ", 1)[1])
                vals[name[len("vllm:num_requests_"):]] = value
        return vals

    def test_slots_queue_fifo_and_metrics(self):
        # 4 requests of ~110 tokens at 400 tokens/s (~0.27 s each) on 2 slots
        models = ["sim?seed=%d&rows=3" % i for i in range(4)]
        seen = []

        def poll():
            end = time.monotonic() + 0.4
            while time.monotonic() < end:
                seen.append(self.metrics())
                time.sleep(0.03)

        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            futs = []
            for m in models:
                futs.append(pool.submit(self.chat, make_body(model=m)))
                time.sleep(0.03)                    # a known arrival order
            pool.submit(poll).result()
            for f in futs:
                self.assertEqual(f.result()[0].status, 200)
        recs = [self.seq_of(m) for m in models]
        for r in recs:
            self.assertGreaterEqual(r["done"] - r["slot"], r["completion_tokens"] / 400 * 0.9)
            self.assertFalse(r["cancelled"])
            self.assertEqual(r["generated"], r["completion_tokens"])
        a, b, c, d = recs
        self.assertLess(b["slot"], a["done"])               # two at once
        # the monotonic pair spans the same interval as the epoch pair
        for r in recs:
            self.assertAlmostEqual(r["mono_sent"] - r["mono_received"],
                                   r["done"] - r["received"], delta=0.02)
        self.assertLess(b["mono_received"], a["mono_sent"])
        self.assertLess(b["slot"] - b["received"], 0.05)
        self.assertGreaterEqual(c["slot"], min(a["done"], b["done"]) - 0.01)   # queued
        self.assertGreater(c["slot"] - c["received"], 0.1)
        self.assertLessEqual(c["slot"], d["slot"])          # first come first served
        self.assertEqual({r["slot_id"] for r in recs}, {0, 1})
        self.assertIn({"running": 2.0, "waiting": 2.0}, seen)
        self.assertTrue(all(v["running"] <= 2 for v in seen))
        self.assertEqual(self.metrics(), {"running": 0.0, "waiting": 0.0})

    def test_stream_paced_and_early_headers(self):
        t0 = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("POST", "/v1/chat/completions",
                     json.dumps(make_body(model="sim?tps=100&rows=2&pps=2000", stream=True)))
        resp = conn.getresponse()                  # vLLM: headers before the tokens
        headers_at = time.time()
        raw = resp.read()
        conn.close()
        elapsed = time.monotonic() - t0
        r = self.seq_of("sim?tps=100&rows=2&pps=2000")
        self.assertGreaterEqual(r["first_token"] - r["slot"], r["prompt_tokens"] / 2000 * 0.9)
        self.assertLess(headers_at, r["first_token"])
        self.assertGreaterEqual(elapsed, r["completion_tokens"] / 100 * 0.9)
        self.assertGreater(len(raw), 1000)

    def test_cancel_stops_generation(self):
        # streamed: read a few events, hang up; the slot frees within ~0.1 s
        model = "sim?tps=50&rows=4&seed=21"
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        data = json.dumps(make_body(model=model, stream=True)).encode()
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(data) + data)
        got = b""
        while got.count(b"data: ") < 6:
            got += sock.recv(65536)
        sock.close()
        closed = time.time()
        r = self.seq_of(model)
        self.assertTrue(r["cancelled"])
        self.assertIsNone(r["done"])
        self.assertLess(r["cancelled_at"] - closed, 0.2)
        self.assertLess(r["generated"], 20)
        self.assertGreater(r["completion_tokens"], 100)
        # non-streamed: the client times out
        model = "sim?tps=50&rows=4&seed=22"
        with self.assertRaises(OSError):
            self.chat(make_body(model=model), timeout=0.3)
        r = self.seq_of(model)
        self.assertTrue(r["cancelled"])
        self.assertLess(r["cancelled_at"] - r["received"], 0.5)
        self.assertLess(r["generated"], 25)
        self.assertEqual(self.metrics()["running"], 0.0)

    def test_cancel_while_queued(self):
        def open_request(model):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            data = json.dumps(make_body(model=model)).encode()
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Length: %d\r\n\r\n" % len(data) + data)
            return sock
        busy = [open_request("sim?tps=20&seed=%d" % i) for i in (31, 32)]
        time.sleep(0.1)
        waiting = open_request("sim?tps=20&seed=33")
        time.sleep(0.1)
        self.assertEqual(self.metrics(), {"running": 2.0, "waiting": 1.0})
        waiting.close()
        r = self.seq_of("sim?tps=20&seed=33")
        self.assertTrue(r["cancelled"])
        self.assertIsNone(r["slot"])
        self.assertEqual(self.metrics(), {"running": 2.0, "waiting": 0.0})
        for sock in busy:
            sock.close()
        for seed in (31, 32):
            self.assertTrue(self.seq_of("sim?tps=20&seed=%d" % seed)["cancelled"])
        self.assertEqual(self.metrics(), {"running": 0.0, "waiting": 0.0})


class PersonalityTest(Client, unittest.TestCase):
    """The llamacpp and ollama personalities (and --loading, --max-queue)."""

    def test_llamacpp_personality(self):
        tmp = tempfile.mkdtemp(prefix="llm_sim_test.")
        timing = os.path.join(tmp, "timing.jsonl")
        proc, self.port = start_sim(tmp, "--personality", "llamacpp", "--loading", "0.4",
                                    "--max-queue", "1", "--tps", "300", "--n-ctx", "4096",
                                    "--timing-log", timing)
        get = lambda path: self.request("GET", path)   # noqa: E731
        chat = self.chat
        try:
            resp, raw = get("/health")
            self.assertEqual((resp.status, json.loads(raw)["error"]["message"]),
                             (503, "Loading model"))
            self.assertEqual(chat(make_body())[0].status, 503)
            time.sleep(0.45)
            self.assertEqual(json.loads(get("/health")[1]), {"status": "ok"})
            props = json.loads(get("/props")[1])
            self.assertEqual((props["total_slots"], props["default_generation_settings"]["n_ctx"]),
                             (1, 4096))
            self.assertIn("<|im_start|>", props["chat_template"])
            self.assertEqual(json.loads(get("/v1/models")[1])["data"][0]["owned_by"], "llamacpp")
            with concurrent.futures.ThreadPoolExecutor(3) as pool:
                a = pool.submit(chat, make_body(model="sim?tps=60&seed=1", stream=True,
                                                stream_options={"include_usage": True}))
                time.sleep(0.1)
                slots = json.loads(get("/slots")[1])
                self.assertEqual(len(slots), 1)
                self.assertTrue(slots[0]["is_processing"])
                self.assertTrue(slots[0]["params"]["stream"])
                self.assertEqual(get("/slots?fail_on_no_slot=1")[0].status, 503)
                b = pool.submit(chat, make_body(model="sim?seed=2"))
                time.sleep(0.1)
                resp, raw = chat(make_body(model="sim?seed=3"))   # the queue (1) is full
                self.assertEqual(resp.status, 503)
                self.assertIn("server busy", json.loads(raw)["error"]["message"])
                self.assertGreater(json.loads(get("/slots")[1])[0]["next_token"]["n_decoded"], 0)
                ra, rb = a.result(), b.result()
            self.assertEqual(rb[0].status, 200)
            ev = sse_events(ra[1])
            self.assertEqual(ev[-2]["timings"]["predicted_per_second"], 60.0)
            self.assertEqual(ev[-2]["usage"]["completion_tokens"],
                             ev[-2]["timings"]["predicted_n"])
            self.assertTrue(all("usage" not in e for e in ev[:-2]))
            self.assertFalse(json.loads(get("/slots")[1])[0]["is_processing"])
            recs = sorted(read_timing(timing), key=lambda r: r["seq"])
            served = [r for r in recs if r["status"] == 200]
            self.assertEqual(len(served), 2)
            self.assertGreaterEqual(served[1]["slot"], served[0]["done"] - 0.01)
        finally:
            stop_sim(proc)
            shutil.rmtree(tmp)

    def test_ollama_personality(self):
        tmp = tempfile.mkdtemp(prefix="llm_sim_test.")
        proc, self.port = start_sim(tmp, "--personality", "ollama")
        get = lambda path: self.request("GET", path)   # noqa: E731
        try:
            self.assertEqual(get("/")[1], b"Ollama is running")
            ps = json.loads(get("/api/ps")[1])["models"][0]
            self.assertEqual((ps["name"], ps["context_length"]), ("sim", 8192))
            self.assertIn("version", json.loads(get("/api/version")[1]))
            self.assertEqual(get("/props")[0].status, 404)
            body = make_body(stream=True, stream_options={"include_usage": True})
            resp, raw = self.chat(body)
            ev = sse_events(raw)
            self.assertEqual(ev[-2]["choices"], [])
            self.assertTrue(all("usage" not in e for e in ev[:-2]))
            # stream_options without stream: ignored, as Ollama does
            resp, raw = self.chat(make_body(stream_options={"include_usage": True}))
            self.assertEqual(resp.status, 200)
        finally:
            stop_sim(proc)
            shutil.rmtree(tmp)


class BlackholeTest(unittest.TestCase):
    def test_blackhole_never_connects(self):
        tmp = tempfile.mkdtemp(prefix="llm_sim_test.")
        hole = os.path.join(tmp, "hole")
        proc, port = start_sim(tmp, "--blackhole-port-file", hole)
        try:
            with open(hole) as f:
                hole_port = int(f.read())
            self.assertNotEqual(hole_port, port)
            t0 = time.monotonic()
            with self.assertRaises(socket.timeout):
                socket.create_connection(("127.0.0.1", hole_port), timeout=0.5).close()
            self.assertGreaterEqual(time.monotonic() - t0, 0.45)
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
            shutil.rmtree(tmp)


class RateAndSignalTest(unittest.TestCase):
    def test_rate_limit_and_sigterm(self):
        tmp = tempfile.mkdtemp(prefix="llm_sim_test.")
        proc, port = start_sim(tmp, "--rate", "3")
        try:
            statuses = []
            for _ in range(10):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/v1/models")
                resp = conn.getresponse()
                body = json.loads(resp.read())
                statuses.append(resp.status)
                if resp.status == 429:
                    self.assertEqual(resp.getheader("Retry-After"), "1")
                    self.assertEqual(body["error"]["code"], "rate_limit_exceeded")
                conn.close()
            self.assertIn(429, statuses)
            self.assertGreaterEqual(statuses.count(200), 3)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(5), 0)
            self.assertIn(b"listening on 127.0.0.1:%d" % port, proc.stdout.read())
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
            shutil.rmtree(tmp)


if __name__ == "__main__":
    unittest.main()
