#!/usr/bin/python3
"""Self-test of simlib.py, the part the simulators share.

Run:  /usr/bin/python3 test/sim/test_simlib.py

Part one tests fault rules (validation, and matching with skip, times, method, prefixes and
pages), the state (configuration, log file, counters) and the address pools in this process.
Part two starts example_sim.py, the smallest simulator on simlib, over HTTPS with a throwaway
CA, and checks what every simulator gets from simlib: the command line, the port file and
the listening line, the generic faults on the wire, the control API's shared endpoints and
errors, the idle timeout, and the stops (SIGTERM, --max-lifetime, --exit-with-parent).  The
DigitalOcean and AWS self-tests cover the same through their simulators' own shapes.
"""

import base64
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import simlib  # noqa: E402  (under test)
import example_sim  # noqa: E402

EXAMPLE = os.path.join(HERE, "example_sim.py")
MAKE_CA = os.path.join(HERE, "make_test_ca.sh")
AUTH = {"Authorization": "Bearer " + example_sim.TOKEN}


# --------------------------------------------------------------------------------------------
# Part one: in this process
# --------------------------------------------------------------------------------------------

RULES = simlib.FaultRules(simlib.GENERIC_FAULTS + ("own",),
                          match={"path_prefix": simlib.Prefix(default="/v1/"), "page": simlib.Positive(hint="from 1"),
                                 "service": simlib.Text(choices=("a", "b")), "action": simlib.Text()})


class State(simlib.SimState):
    fault_rules = RULES
    config_keys = frozenset({"latency_ms", "mode"})
    stats_template = {"requests_total": 0, "requests_by_status": {}, "faults_applied": {}, "own": 0}

    def reset_state(self, init):
        self.resets = getattr(self, "resets", 0) + 1

    def count_request(self, entry):
        self.stats["own"] += 1


def request(path="/v1/items", method="GET", **kw):
    return dict({"path": path, "method": method}, **kw)


class FaultRuleTest(unittest.TestCase):
    def setUp(self):
        self.sim = State({}, {"latency_ms": 0}, None)

    def take(self, n, **info):
        """The kinds (or None) of the faults n identical requests get."""
        out = []
        for _ in range(n):
            f = self.sim.take_fault(request(**info))
            out.append(f and f.get("name", f["kind"]))
        return out

    def test_defaults_and_normalisation(self):
        r = RULES.validate({"kind": "reset"})
        self.assertEqual((r["times"], r["skip"], r["path_prefix"], r["_seen"]), (1, 0, "/v1/", 0))
        r = RULES.validate({"kind": "malformed", "body_base64": base64.b64encode(b"\xff\x00{").decode()})
        self.assertEqual(r["_raw_body"], b"\xff\x00{")
        self.assertEqual(simlib.malformed_body(r, b"default"), b"\xff\x00{")
        self.assertEqual(simlib.malformed_body(RULES.validate({"kind": "malformed", "body": "é<"}), b"d"), "é<".encode())
        self.assertEqual(simlib.malformed_body(RULES.validate({"kind": "malformed"}), b"d"), b"d")
        rule = {"kind": "slow", "delay_ms": 5}
        RULES.validate(rule)
        self.assertEqual(rule, {"kind": "slow", "delay_ms": 5})  # the caller's object is left alone

    def test_invalid_rules(self):
        cases = [
            (5, "each fault rule must be a JSON object"),
            ({"kind": "explode"}, "kind must be one of: status, reset, slow, truncate, malformed, own"),
            ({"kind": "reset", "times": 0}, "times must be positive, or -1"),
            ({"kind": "reset", "times": -2}, "times must be positive, or -1"),
            ({"kind": "reset", "times": True}, "times must be an integer"),
            ({"kind": "reset", "skip": "1"}, "skip must be an integer"),
            ({"kind": "reset", "path_prefix": "v1"}, "path_prefix must be a string starting with /"),
            ({"kind": "reset", "page": 0}, "page must be a positive integer (from 1)"),
            ({"kind": "reset", "service": "c"}, 'service must be "a" or "b"'),
            ({"kind": "reset", "action": 7}, "action must be a string"),
            ({"kind": "reset", "method": ["GET"]}, "method must be a string"),
            ({"kind": "status"}, 'a status fault needs "status": an integer 400..599'),
            ({"kind": "status", "status": 600}, 'a status fault needs "status"'),
            ({"kind": "slow"}, 'a slow fault needs "delay_ms": 0..600000'),
            ({"kind": "slow", "delay_ms": 600001}, 'a slow fault needs "delay_ms"'),
            ({"kind": "malformed", "body": 5}, "body must be a string"),
            ({"kind": "malformed", "body_base64": "!!"}, "body_base64 must be base64"),
        ]
        for rule, message in cases:
            with self.assertRaises(ValueError, msg=rule) as cm:
                RULES.validate(rule)
            self.assertIn(message, str(cm.exception), rule)
        # a null match field or method means "any"
        r = RULES.validate({"kind": "reset", "page": None, "method": None, "action": None})
        self.assertTrue(RULES.matches(r, request(page=3)))

    def test_check_kind_hook(self):
        seen = []

        def check(r):
            seen.append(r["kind"])
            if r["kind"] == "own" and "x" not in r:
                raise ValueError("an own fault needs x")
            r.setdefault("y", 1)
        rules = simlib.FaultRules(("own", "slow"), check_kind=check)
        self.assertEqual(rules.validate({"kind": "own", "x": 1})["y"], 1)
        with self.assertRaisesRegex(ValueError, "an own fault needs x"):
            rules.validate({"kind": "own"})
        with self.assertRaisesRegex(ValueError, "delay_ms"):  # generic checks come first
            rules.validate({"kind": "slow"})
        self.assertEqual(seen, ["own", "own"])

    def test_skip_and_times(self):
        self.sim.set_faults([{"kind": "own", "name": "A", "skip": 2, "times": 2}])
        self.assertEqual(self.take(6), [None, None, "A", "A", None, None])
        self.assertEqual(self.sim.stats["faults_applied"], {"own": 2})
        self.assertEqual(self.sim.faults_view(), [{"kind": "own", "name": "A", "skip": 2, "times": 0, "path_prefix": "/v1/"}])
        self.sim.set_faults({"kind": "reset", "times": -1})
        self.assertEqual(self.take(5), ["reset"] * 5)
        self.assertEqual(self.sim.faults_view()[0]["times"], -1)

    def test_first_unspent_matching_rule_applies_alone(self):
        self.sim.set_faults([{"kind": "own", "name": "A", "page": 2},
                             {"kind": "own", "name": "B", "times": 2},
                             {"kind": "own", "name": "C"}])
        self.assertEqual(self.take(1, page=1), ["B"])
        self.assertEqual(self.take(1, page=2), ["A"])        # A first, B not spent by it
        self.assertEqual(self.take(3, page=2), ["B", "C", None])
        # skip counts only the requests a rule matches
        self.sim.set_faults([{"kind": "own", "name": "D", "method": "post", "skip": 1}])
        self.assertEqual(self.take(3, method="GET"), [None] * 3)
        self.assertEqual(self.take(2, method="POST"), [None, "D"])

    def test_match_fields(self):
        self.sim.set_faults([{"kind": "own", "name": "P", "path_prefix": "/v1/items/", "times": -1},
                             {"kind": "own", "name": "S", "service": "b", "action": "List", "times": -1}])
        self.assertEqual(self.take(1, path="/v1/items"), [None])
        self.assertEqual(self.take(1, path="/v1/items/7"), ["P"])
        self.assertEqual(self.take(1, path="/v1/other", service="b", action="List"), ["S"])
        self.assertEqual(self.take(1, path="/v1/other", service="b", action="Get"), [None])
        self.assertEqual(self.take(1, path="/v1/other", service="b"), [None])  # the request has no action
        self.assertEqual(self.take(1, path="/v2/other", service="b", action="List"), [None])  # default prefix /v1/

    def test_returned_rule_is_a_copy(self):
        self.sim.set_faults([{"kind": "own", "times": -1, "v": 1}])
        f = self.sim.take_fault(request())
        f["v"] = 2
        self.assertEqual(self.sim.take_fault(request())["v"], 1)

    def test_set_faults_append_and_errors(self):
        self.assertEqual(self.sim.set_faults({"kind": "reset"}), 1)
        self.assertEqual(self.sim.set_faults({"faults": [{"kind": "slow", "delay_ms": 1}], "append": True}), 1)
        self.assertEqual([f["kind"] for f in self.sim.faults_view()], ["reset", "slow"])
        for bad in ({"faults": {"kind": "reset"}}, [{"kind": "reset"}, {"kind": "nope"}], None):
            with self.assertRaises(ValueError):
                self.sim.set_faults(bad)
        self.assertEqual([f["kind"] for f in self.sim.faults_view()], ["reset", "slow"])  # unchanged
        self.sim.set_faults([])
        self.assertEqual(self.sim.faults_view(), [])


class StateTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="simlib-test-")
        self.log_path = os.path.join(self.tmp, "log")
        with open(self.log_path, "w") as f:
            f.write("old contents\n")
        self.sim = State({"config": {"mode": "file"}, "faults": [{"kind": "reset"}]}, {"latency_ms": 5, "mode": "cli"},
                         self.log_path)

    def tearDown(self):
        self.sim.log_file.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log_lines(self):
        with open(self.log_path) as f:
            return [json.loads(line) for line in f]

    def test_config(self):
        self.assertEqual(self.sim.config, {"latency_ms": 5, "mode": "file"})  # the state file wins
        self.assertEqual(self.sim.set_config({"mode": "x", "latency_ms": 0.5}), {"latency_ms": 0.5, "mode": "x"})
        for bad, message in (({"bogus": 1}, "unknown settings: bogus (known: latency_ms, mode)"),
                             ({"latency_ms": -1}, "latency_ms must be a non-negative number"),
                             ({"latency_ms": True}, "latency_ms must be a non-negative number"),
                             ([], "send the settings as a JSON object")):
            with self.assertRaises(ValueError) as cm:
                self.sim.set_config(bad)
            self.assertEqual(str(cm.exception), message)
        self.assertEqual(self.sim.config["mode"], "x")
        self.sim.reset()
        self.assertEqual((self.sim.config, self.sim.resets), ({"latency_ms": 5, "mode": "file"}, 2))
        self.assertEqual([f["kind"] for f in self.sim.faults_view()], ["reset"])

    def test_log_and_counters(self):
        self.assertEqual(self.log_lines(), [])  # emptied at start
        self.sim.enter()
        self.sim.enter()
        self.sim.leave()
        self.sim.record({"path": "/a", "status": 200, "v": "é"})
        self.sim.record({"path": "/b", "status": None}, text='{"given":"text"}')
        self.sim.count("connections_total")
        self.assertEqual(self.sim.log, [{"path": "/a", "status": 200, "v": "é"}, {"path": "/b", "status": None}])
        self.assertEqual(self.log_lines(), [{"path": "/a", "status": 200, "v": "é"}, {"given": "text"}])
        self.assertEqual(self.sim.stats, {"requests_total": 2, "requests_by_status": {"200": 1, "none": 1},
                                          "faults_applied": {}, "own": 2, "in_flight": 1, "max_in_flight": 2,
                                          "connections_total": 1, "tls_handshake_failures": 0})
        self.sim.clear_stats()  # the request still being handled stays counted
        self.assertEqual((self.sim.stats["in_flight"], self.sim.stats["max_in_flight"], self.sim.stats["own"]), (1, 1, 0))
        self.sim.clear_log()
        self.assertEqual((self.sim.log, self.log_lines()), ([], []))
        self.sim.record({"path": "/c", "status": 404})
        self.sim.reset()
        self.assertEqual((self.sim.log, self.log_lines(), self.sim.stats["requests_total"]), ([], [], 0))


class HelpersTest(unittest.TestCase):
    def test_public_ipv4(self):
        self.assertEqual([simlib.public_ipv4(n) for n in (0, 253, 254, 508, 762)],
                         ["203.0.113.1", "203.0.113.254", "198.51.100.1", "192.0.2.1", "198.18.0.1"])
        last = simlib.PUBLIC_IPV4_POOL_SIZE - 1
        self.assertEqual(simlib.public_ipv4(last), "198.19.255.254")
        self.assertEqual(simlib.public_ipv4(last + 1, wrap=True), "203.0.113.1")
        with self.assertRaisesRegex(ValueError, "too many droplets for the address pools"):
            simlib.public_ipv4(last + 1, what="droplets")

    def test_json_bytes(self):
        self.assertEqual(simlib.json_bytes({"a": [1, "é"], "b": None}), '{"a":[1,"é"],"b":null}'.encode())
        self.assertEqual(simlib.json_bytes({"a": "é"}, ensure_ascii=True), b'{"a":"\\u00e9"}')
        self.assertRegex(simlib.log_time(), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_readme_shows_example_sim(self):
        with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
            readme = f.read()
        with open(EXAMPLE, encoding="utf-8") as f:
            example = f.read()
        shown = readme.split("```python\n", 1)[1].split("```", 1)[0]
        self.assertEqual(shown, example[example.index("class Sim(simlib.SimState):"):])

    def test_load_state(self):
        self.assertEqual(simlib.load_state(None), {})
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            f.write("[1]")
            f.flush()
            with self.assertRaisesRegex(ValueError, "must hold a JSON object"):
                simlib.load_state(f.name)


# --------------------------------------------------------------------------------------------
# Part two: example_sim.py over HTTPS
# --------------------------------------------------------------------------------------------

class Running:
    """example_sim.py in a child process; the port comes from its listening line, which must
    agree with the port file."""

    def __init__(self, tmp, ca, *args, popen=None):
        self.port_file = os.path.join(tmp, "port-%d" % time.monotonic_ns())
        cmd = [sys.executable, EXAMPLE, "--cert", os.path.join(ca, "server.crt"), "--key", os.path.join(ca, "server.key"),
               "--port", "0", "--port-file", self.port_file, "--max-lifetime", "300", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("example_sim did not start: " + self.proc.stderr.read().decode())
        self.listening = json.loads(line)
        self.port = self.listening["port"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10)
        self.proc.stdout.close()
        self.stderr = self.proc.stderr.read().decode()
        self.proc.stderr.close()
        return rc


class ServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="simlib-test-")
        cls.ca = os.path.join(cls.tmp, "ca")
        subprocess.run(["bash", MAKE_CA, cls.ca], check=True, stdout=subprocess.DEVNULL)
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.ca, "ca.crt"))
        cls.log_path = os.path.join(cls.tmp, "requests.log")
        cls.sim = Running(cls.tmp, cls.ca, "--log", cls.log_path, "--items", "40", "--idle-timeout", "1")
        cls.port = cls.sim.port

    @classmethod
    def tearDownClass(cls):
        cls.sim.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.control("POST", "/_sim/reset")

    def conn(self, port=None):
        return http.client.HTTPSConnection("127.0.0.1", port or self.port, context=self.ctx, timeout=10)

    def call(self, method, path, body=None, headers=None):
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r, r.read()
        finally:
            c.close()

    def control(self, method, path, body=None):
        status, _, data = self.call(method, path, None if body is None else json.dumps(body).encode())
        self.assertEqual(status, 200, data)
        return json.loads(data)

    def raw(self, data):
        t = self.ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.port), timeout=10), server_hostname="127.0.0.1")
        try:
            t.sendall(data)
            out = b""
            while True:
                chunk = t.recv(65536)
                if not chunk:
                    return out
                out += chunk
        finally:
            t.close()

    def test_startup(self):
        self.assertEqual(set(self.sim.listening), {"event", "host", "port", "pid"})
        self.assertEqual((self.sim.listening["event"], self.sim.listening["host"], self.sim.listening["pid"]),
                         ("listening", "127.0.0.1", self.sim.proc.pid))
        with open(self.sim.port_file) as f:
            self.assertEqual(f.read(), "%d\n" % self.port)
        self.assertEqual(self.control("GET", "/_sim/health"), {"ok": True, "port": self.port})
        self.assertEqual(self.control("GET", "/_sim"), {"ok": True, "port": self.port})

    def test_api_log_and_stats(self):
        status, r, got = self.call("GET", "/v1/items", headers=AUTH)
        self.assertEqual((status, r.getheader("Server"), r.getheader("Content-Type")), (200, "example-sim/1.0", "application/json"))
        self.assertIsNotNone(r.getheader("Date"))
        self.assertEqual(len(json.loads(got)["items"]), 40)
        status, r, body = self.call("HEAD", "/v1/items", headers=AUTH)
        self.assertEqual((status, body, int(r.getheader("Content-Length")) > 100), (200, b"", True))
        self.assertEqual(self.call("GET", "/v1/items")[0], 401)
        self.assertEqual(self.call("GET", "/v1/other", headers=AUTH)[0], 404)
        log = self.control("GET", "/_sim/log")
        with open(self.log_path) as f:
            self.assertEqual([json.loads(line) for line in f], log)
        self.assertEqual([(e["method"], e["path"], e["status"], e["authorized"]) for e in log],
                         [("GET", "/v1/items", 200, True), ("HEAD", "/v1/items", 200, True),
                          ("GET", "/v1/items", 401, False), ("GET", "/v1/other", 404, True)])
        self.assertEqual((log[0]["bytes"], log[1]["bytes"]), (len(got), 0))
        for e in log:
            self.assertLessEqual({"time", "fault", "client_port", "duration_ms"}, set(e))
        stats = self.control("GET", "/_sim/stats")
        self.assertEqual((stats["requests_total"], stats["requests_by_status"], stats["unauthorized"], stats["in_flight"]),
                         (4, {"200": 2, "401": 1, "404": 1}, 1, 0))
        self.control("DELETE", "/_sim/log")
        self.assertEqual(self.control("GET", "/_sim/log"), [])
        with open(self.log_path) as f:
            self.assertEqual(f.read(), "")
        self.control("DELETE", "/_sim/stats")
        self.assertEqual(self.control("GET", "/_sim/stats")["requests_total"], 0)

    def test_config_and_latency(self):
        self.assertEqual(self.control("GET", "/_sim/config"), {"latency_ms": 0.0, "items": 40})
        self.assertEqual(self.control("POST", "/_sim/config", {"latency_ms": 300, "greeting": "hi"}),
                         {"latency_ms": 300, "items": 40, "greeting": "hi"})
        t = time.monotonic()
        status, _, body = self.call("GET", "/v1/items", headers=AUTH)
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        self.assertEqual(json.loads(body)["greeting"], "hi")
        t = time.monotonic()
        self.control("GET", "/_sim/stats")
        self.assertLess(time.monotonic() - t, 0.3)  # not on the control API
        for bad in ({"bogus": 1}, {"greeting": 5}, {"latency_ms": -1}):
            status, _, data = self.call("POST", "/_sim/config", json.dumps(bad).encode())
            self.assertEqual(status, 400)
            self.assertIn("error", json.loads(data))
        self.control("POST", "/_sim/reset")
        self.assertEqual(self.control("GET", "/_sim/config"), {"latency_ms": 0.0, "items": 40})

    def test_generic_faults_on_the_wire(self):
        _, _, real = self.call("GET", "/v1/items", headers=AUTH)
        self.control("DELETE", "/_sim/log")
        # status (answered by the simulator) and the page match field
        self.control("POST", "/_sim/faults", [{"kind": "status", "status": 503, "page": 2}])
        self.assertEqual(self.call("GET", "/v1/items", headers=AUTH)[0], 200)
        self.assertEqual(self.call("GET", "/v1/items?page=2", headers=AUTH)[:3:2], (503, b'{"error":"injected"}'))
        # malformed: a rule taken by an answer other than 200 is spent, and that body is untouched
        self.control("POST", "/_sim/faults", {"kind": "malformed"})
        self.assertEqual(self.call("GET", "/v1/items")[:3:2], (401, b'{"error":"unauthorized"}'))
        self.assertEqual(self.call("GET", "/v1/items", headers=AUTH)[2], real)
        # malformed without a body: the simulator's default (here half the real body, then HTML)
        self.control("POST", "/_sim/faults", {"kind": "malformed"})
        status, _, body = self.call("GET", "/v1/items", headers=AUTH)
        self.assertEqual((status, body), (200, real[: len(real) // 2] + b"<html><body>502 Bad Gateway</body></html>"))
        # malformed with body, then with body_base64 (any bytes)
        raw_bytes = b"\xff\xfe not json"
        self.control("POST", "/_sim/faults", [{"kind": "malformed", "body": "<oops>"},
                                              {"kind": "malformed", "body_base64": base64.b64encode(raw_bytes).decode()}])
        self.assertEqual(self.call("GET", "/v1/items", headers=AUTH)[2], b"<oops>")
        self.assertEqual(self.call("GET", "/v1/items", headers=AUTH)[2], raw_bytes)
        left = self.control("GET", "/_sim/faults")["faults"]
        self.assertEqual([f["times"] for f in left], [0, 0])
        self.assertNotIn("_raw_body", json.dumps(left))
        # the simulator's own kind, with method and skip: the POST is not counted by skip
        self.control("POST", "/_sim/faults", {"kind": "empty", "method": "get", "skip": 1})
        self.assertEqual(self.call("POST", "/v1/items", b"{}", AUTH)[0], 404)
        self.assertEqual(self.call("GET", "/v1/items", headers=AUTH)[2], real)
        self.assertEqual(json.loads(self.call("GET", "/v1/items", headers=AUTH)[2])["items"], [])
        # slow
        self.control("POST", "/_sim/faults", {"kind": "slow", "delay_ms": 300})
        t = time.monotonic()
        self.assertEqual(self.call("GET", "/v1/items", headers=AUTH)[2], real)
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        self.assertEqual(self.control("GET", "/_sim/stats")["faults_applied"],
                         {"status": 1, "malformed": 4, "empty": 1, "slow": 1})
        self.assertEqual([(e["fault"], e["status"]) for e in self.control("GET", "/_sim/log")],
                         [(None, 200), ("status", 503), ("malformed", 401), (None, 200), ("malformed", 200),
                          ("malformed", 200), ("malformed", 200), (None, 404), (None, 200), ("empty", 200), ("slow", 200)])
        self.control("DELETE", "/_sim/faults")
        self.assertEqual(self.control("GET", "/_sim/faults"), {"faults": []})

    def test_reset_and_truncate(self):
        self.control("POST", "/_sim/faults", [{"kind": "reset"}, {"kind": "truncate"}])
        c = self.conn()
        with self.assertRaises((ConnectionError, ssl.SSLError, http.client.HTTPException, OSError)):
            c.request("GET", "/v1/items", headers=AUTH)
            c.getresponse().read()
        c.close()
        # truncate: the headers promise the whole body, half of it comes, then the stream ends
        answer = self.raw(b"GET /v1/items HTTP/1.1\r\nHost: x\r\nAuthorization: " + AUTH["Authorization"].encode() + b"\r\n\r\n")
        head, _, got = answer.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
        declared = int(dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])[b"Content-Length"])
        self.assertGreater(declared, 100)
        self.assertEqual(len(got), declared // 2)
        log = self.control("GET", "/_sim/log")
        self.assertEqual([(e["fault"], e["status"], e["bytes"]) for e in log], [("reset", None, 0), ("truncate", 200, declared // 2)])
        self.assertEqual(self.call("GET", "/v1/items", headers=AUTH)[0], 200)  # the server is fine

    def test_control_errors(self):
        status, _, data = self.call("POST", "/_sim/faults", b"{not json")
        self.assertEqual(status, 400)
        self.assertIn("body is not valid JSON", json.loads(data)["error"])
        status, _, data = self.call("POST", "/_sim/faults", b'[{"kind": "explode"}]')
        self.assertEqual((status, json.loads(data)["error"]), (400, "kind must be one of: status, reset, slow, truncate, malformed, empty"))
        status, _, data = self.call("GET", "/_sim/nothing")
        self.assertEqual((status, json.loads(data)), (404, {"error": "no such control endpoint: GET /_sim/nothing"}))
        self.assertEqual(self.call("PUT", "/_sim/faults")[0], 404)
        self.assertEqual(self.control("POST", "/_sim/items", [{"id": 9}]), {"ok": True, "count": 1})
        self.assertEqual(json.loads(self.call("GET", "/v1/items", headers=AUTH)[2])["items"], [{"id": 9}])
        self.assertEqual(self.call("POST", "/_sim/items", b'{"a": 1}')[0], 400)
        head = self.raw(b"POST /_sim/items HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (simlib.MAX_CONTROL_BODY + 1))
        self.assertTrue(head.startswith(b"HTTP/1.1 413 "), head[:40])
        self.assertIn(b"Connection: close", head)
        head = self.raw(b"POST /v1/items HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (simlib.MAX_API_BODY + 1))
        self.assertTrue(head.startswith(b"HTTP/1.1 413 "), head[:40])
        self.assertEqual(self.control("GET", "/_sim/log")[-1]["status"], 413)
        head = self.raw(b"POST /_sim/items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 411 "), head[:40])
        answer = self.raw(b"\x00\xffNONSENSE\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 400 "), answer[:40])
        self.assertIn(b"Connection: close", answer)
        self.assertEqual(self.control("GET", "/_sim/health")["ok"], True)

    def test_keepalive_and_idle_timeout(self):
        before = self.control("GET", "/_sim/stats")["connections_total"]
        c = self.conn()
        for _ in range(3):
            c.request("GET", "/v1/items", headers=AUTH)
            r = c.getresponse()
            r.read()
            self.assertIsNone(r.getheader("Connection"))
        self.assertEqual(self.control("GET", "/_sim/stats")["connections_total"] - before, 2)
        self.assertEqual(len({e["client_port"] for e in self.control("GET", "/_sim/log")}), 1)
        # --idle-timeout 1: the server closes a connection left idle
        t = time.monotonic()
        c.sock.settimeout(10)
        self.assertEqual(c.sock.recv(100), b"")
        self.assertLess(time.monotonic() - t, 5)
        c.close()
        # a client that never starts TLS is counted and holds up nobody
        stalled = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        stalled.sendall(b"GET / HTTP/1.1\r\n\r\n")
        try:
            self.assertEqual(self.call("GET", "/v1/items", headers=AUTH)[0], 200)
        finally:
            stalled.close()
        deadline = time.monotonic() + 5
        while self.control("GET", "/_sim/stats")["tls_handshake_failures"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.control("GET", "/_sim/stats")["tls_handshake_failures"], 1)

    def test_stops(self):
        # SIGTERM: a clean stop, exit status 0
        other = Running(self.tmp, self.ca)
        self.assertEqual(other.stop(), 0)
        self.assertEqual(other.stderr, "")
        # --max-lifetime
        other = Running(self.tmp, self.ca, "--max-lifetime", "0.5")
        self.assertEqual(other.proc.wait(10), 0)
        other.stop()
        # --exit-with-parent: a parent that starts the simulator and goes away
        out = os.path.join(self.tmp, "child.out")
        parent = ("import subprocess, sys, time; subprocess.Popen([sys.executable, %r, '--cert', %r, '--key', %r, '--port', '0', "
                  "'--exit-with-parent', '--max-lifetime', '60'], stdout=open(%r, 'w')); time.sleep(1.5)"
                  % (EXAMPLE, os.path.join(self.ca, "server.crt"), os.path.join(self.ca, "server.key"), out))
        subprocess.run([sys.executable, "-c", parent], check=True)
        with open(out) as f:
            pid = json.loads(f.readline())["pid"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self._alive(pid):
            time.sleep(0.1)
        self.assertFalse(self._alive(pid), "the simulator outlived its parent")
        # a start that fails says why, with the simulator's name
        r = subprocess.run([sys.executable, EXAMPLE, "--cert", "/nonexistent", "--key", "/nonexistent"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"^example_sim: cannot start: ")

    @staticmethod
    def _alive(pid):
        try:
            with open("/proc/%d/status" % pid) as f:
                return "\nState:\tZ" not in f.read()
        except FileNotFoundError:
            return False


if __name__ == "__main__":
    unittest.main(verbosity=2)
