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


class SimTest(unittest.TestCase):
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
