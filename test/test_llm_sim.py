"""Quick checks of test/llm_sim.py, the LLM simulator (a test double).

Run from the repository root:  python3 -m unittest test/test_llm_sim.py
"""

import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "llm_sim.py")

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
        for model in ("sim?mixx=1", "sim?mix=2", "sim?content=weird", "sim?label=nope"):
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
