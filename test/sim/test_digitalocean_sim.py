#!/usr/bin/python3
"""Self-test of the DigitalOcean API simulator (digitalocean_sim.py).

Run:  /usr/bin/python3 test/sim/test_digitalocean_sim.py

Makes a throwaway CA with make_test_ca.sh in a temporary directory, starts the simulator on a
free port, and talks to it with urllib/http.client, verifying TLS against that CA.

Schema checks: the account and droplet objects, the list responses of every resource type
(droplets, volumes, load balancers, Kubernetes clusters, databases, reserved IPs), each item of
them and the error bodies are validated at test time against vendor/digitalocean-openapi/schemas.json, a JSON copy of the
relevant schema fragments of the official OpenAPI description (see SOURCE there), using the
small validator below (type, nullable, enum, required, properties, items, allOf, anyOf,
multipleOf, minimum/maximum, and the formats date-time, ipv4, ipv6 and uuid).
"""

import http.client
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "digitalocean_sim.py")
MAKE_CA = os.path.join(HERE, "make_test_ca.sh")
SCHEMAS = os.path.join(HERE, "vendor", "digitalocean-openapi", "schemas.json")

READER = "dop_v1_" + "a1b2c3d4" * 8
NOSCOPE = "dop_v1_" + "deadbeef" * 8
CUSTOM = "dop_v1_" + "c0ffee00" * 8  # custom scopes: droplet:read only
NODB = "dop_v1_" + "0dbf0dbf" * 8  # custom scopes: every list but database:read

STATE = {
    "tokens": [
        {"name": "reader", "token": READER, "scope": "read"},
        {"name": "noscope", "token": NOSCOPE, "scope": "none"},
        {"name": "custom", "token": CUSTOM, "scope": ["droplet:read"]},
        {"name": "nodb", "token": NODB, "scope": ["account:read", "droplet:read", "block_storage:read",
                                                  "load_balancer:read", "kubernetes:read", "reserved_ip:read"]},
    ],
    "generate": {"count": 5, "regions": ["nyc3", "fra1"], "seed": 42},
}

# --------------------------------------------------------------------------------------------
# A small validator for the OpenAPI 3.0 schema subset the vendored fragments use
# --------------------------------------------------------------------------------------------

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def schema_errors(schema, value, where="$"):
    errs = []
    if value is None and schema.get("nullable"):
        return errs
    for sub in schema.get("allOf", []):
        errs += schema_errors(sub, value, where)
    if "anyOf" in schema and not any(not schema_errors(s, value, where) for s in schema["anyOf"]):
        errs.append("%s: matches none of anyOf" % where)
    if "oneOf" in schema and sum(1 for s in schema["oneOf"] if not schema_errors(s, value, where)) != 1:
        errs.append("%s: does not match exactly one of oneOf" % where)
    t = schema.get("type")
    if t is None and isinstance(value, dict) and ("properties" in schema or "required" in schema):
        t = "object"  # properties apply to an object whether or not the schema names its type
    if t is None:
        return errs
    if value is None:
        return errs + ["%s: null where %s is required" % (where, t)]
    ok = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[t]
    if not ok:
        return errs + ["%s: %r is not %s" % (where, value, t)]
    if "enum" in schema and value not in schema["enum"]:
        errs.append("%s: %r not in enum %r" % (where, value, schema["enum"]))
    if t in ("integer", "number"):
        if "multipleOf" in schema and value % schema["multipleOf"]:
            errs.append("%s: %r not a multiple of %r" % (where, value, schema["multipleOf"]))
        if "minimum" in schema and value < schema["minimum"]:
            errs.append("%s: %r below minimum" % (where, value))
        if "maximum" in schema and value > schema["maximum"]:
            errs.append("%s: %r above maximum" % (where, value))
    if t == "string" and "format" in schema:
        fmt = schema["format"]
        try:
            if fmt == "date-time" and not DATE_TIME.match(value):
                raise ValueError
            if fmt == "ipv4":
                ipaddress.IPv4Address(value)
            if fmt == "ipv6":
                ipaddress.IPv6Address(value)
            if fmt == "uuid" and not UUID.match(value):
                raise ValueError
        except ValueError:
            errs.append("%s: %r is not a valid %s" % (where, value, fmt))
    if t == "object":
        for r in schema.get("required", []):
            if r not in value:
                errs.append("%s: required property %r missing" % (where, r))
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                errs += schema_errors(sub, value[k], "%s.%s" % (where, k))
    if t == "array" and "items" in schema:
        for i, v in enumerate(value):
            errs += schema_errors(schema["items"], v, "%s[%d]" % (where, i))
    return errs


with open(SCHEMAS, encoding="utf-8") as f:
    SPEC = json.load(f)["schemas"]


def schema_properties(schema):
    """Every property name a schema defines, through allOf/anyOf/oneOf."""
    names = set(schema.get("properties", {}))
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key, []):
            names |= schema_properties(sub)
    return names


# kind: (list path, items key, list response schema, item schema, id member, paginated)
KINDS = {
    "volumes": ("/v2/volumes", "volumes", "volumes_list_response", "volume", "id", True),
    "load_balancers": ("/v2/load_balancers", "load_balancers", "load_balancers_list_response", "load_balancer", "id", True),
    "kubernetes_clusters": ("/v2/kubernetes/clusters", "kubernetes_clusters", "kubernetes_clusters_list_response",
                            "kubernetes_cluster", "id", True),
    "databases": ("/v2/databases", "databases", "databases_list_response", "database_cluster", "id", False),
    "reserved_ips": ("/v2/reserved_ips", "reserved_ips", "reserved_ips_list_response", "reserved_ip", "ip", True),
}


# --------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def h(self, name):
        return self.headers.get(name)


def start_sim(tmp, ca_dir, *extra, name="sim"):
    port_file = os.path.join(tmp, name + ".port")
    errf = open(os.path.join(tmp, name + ".stderr"), "w")
    proc = subprocess.Popen(
        [sys.executable, SIM, "--port", "0", "--cert", os.path.join(ca_dir, "server.crt"),
         "--key", os.path.join(ca_dir, "server.key"), "--port-file", port_file,
         "--max-lifetime", "900", "--exit-with-parent", *extra],
        stdout=subprocess.DEVNULL, stderr=errf, stdin=subprocess.DEVNULL)
    errf.close()
    deadline = time.time() + 15
    while time.time() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as f:
                return proc, int(f.read().strip())
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    with open(os.path.join(tmp, name + ".stderr")) as f:
        raise RuntimeError("simulator did not start: " + f.read())


def stop_sim(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class SimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="dosim-test-")
        cls.ca = os.path.join(cls.tmp, "ca")
        subprocess.run(["bash", MAKE_CA, cls.ca], check=True)
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.ca, "ca.crt"))
        cls.state_file = os.path.join(cls.tmp, "state.json")
        with open(cls.state_file, "w") as f:
            json.dump(STATE, f)
        cls.log_file = os.path.join(cls.tmp, "requests.jsonl")
        cls.proc, cls.port = start_sim(cls.tmp, cls.ca, "--state-file", cls.state_file, "--log", cls.log_file)
        cls.origin = "https://127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        stop_sim(cls.proc)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.control("POST", "/_sim/reset")

    # -- helpers -------------------------------------------------------------------------------

    def call(self, path, token=READER, method="GET", body=None, headers=None, origin=None, timeout=20):
        h = dict(headers or {})
        if token is not None:
            h["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        req = urllib.request.Request((origin or self.origin) + path, data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=timeout) as r:
                return Resp(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Resp(e.code, e.headers, e.read())

    def control(self, method, path, body=None):
        r = self.call(path, token=None, method=method, body=body)
        self.assertLess(r.status, 300, "%s %s -> %d %r" % (method, path, r.status, r.body))
        return r.json() if r.body else None

    def faults(self, *rules):
        self.control("POST", "/_sim/faults", list(rules))

    def assertRateHeaders(self, r):
        for name in ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"):
            self.assertIsNotNone(r.h(name), name)
            self.assertRegex(r.h(name), r"^\d+$", name)
            self.assertEqual(schema_errors(SPEC["headers"][name], int(r.h(name))), [])

    def assertErrorBody(self, r, status, body):
        self.assertEqual(r.status, status)
        self.assertEqual(r.h("Content-Type"), "application/json")
        self.assertEqual(r.json(), body)
        self.assertEqual(schema_errors(SPEC["error"], r.json()), [])
        self.assertRateHeaders(r)

    # -- account -------------------------------------------------------------------------------

    def test_account_shape_and_schema(self):
        r = self.call("/v2/account")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.h("Content-Type"), "application/json; charset=utf-8")
        self.assertRateHeaders(r)
        body = r.json()
        self.assertEqual(list(body), ["account"])
        acct = body["account"]
        self.assertEqual(set(acct), {"droplet_limit", "floating_ip_limit", "email", "name", "uuid",
                                     "email_verified", "status", "status_message", "team"})
        self.assertEqual(set(acct["team"]), {"uuid", "name"})
        self.assertEqual(schema_errors(SPEC["account_response"], body), [])
        self.assertEqual(schema_errors(SPEC["account"], acct), [])
        # every key served is one the spec defines
        self.assertLessEqual(set(acct), set(SPEC["account"]["properties"]))
        broken = dict(acct)
        del broken["uuid"]
        self.assertTrue(schema_errors(SPEC["account"], broken), "the validator must see a missing field")

    # -- droplets: shape ----------------------------------------------------------------------

    def test_droplet_schema(self):
        self.control("POST", "/_sim/droplets/generate", {"count": 40, "regions": ["nyc3", "ams3", "sgp1", "tor1"], "seed": 3})
        r = self.call("/v2/droplets?per_page=40")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.h("Content-Type"), "application/json; charset=utf-8")
        body = r.json()
        self.assertEqual(list(body), ["droplets", "links", "meta"])
        self.assertEqual(schema_errors(SPEC["droplets_list_response"], body), [])
        for d in body["droplets"]:
            self.assertEqual(schema_errors(SPEC["droplet"], d), [], d.get("id"))
            self.assertLessEqual(set(d), set(SPEC["droplet"]["properties"]))
            for k in ("id", "name", "memory", "vcpus", "disk", "locked", "status", "kernel", "created_at",
                      "features", "backup_ids", "next_backup_window", "snapshot_ids", "image", "volume_ids",
                      "size", "size_slug", "networks", "region", "tags", "vpc_uuid"):
                self.assertIn(k, d)
            self.assertEqual(set(d["image"]) >= {"id", "name", "distribution", "slug", "public", "regions",
                                                 "created_at", "type", "min_disk_size", "size_gigabytes",
                                                 "description", "tags", "status"}, True)
            self.assertEqual(set(d["region"]), {"name", "slug", "features", "available", "sizes"})
            types = sorted(n["type"] for n in d["networks"]["v4"])
            self.assertEqual(types, ["private", "public"])
            self.assertEqual(d["size_slug"], d["size"]["slug"])
        self.assertEqual(len({d["id"] for d in body["droplets"]}), 40)
        self.assertEqual(len({n["ip_address"] for d in body["droplets"] for n in d["networks"]["v4"]}), 80)

    def test_generator_is_deterministic_and_spread(self):
        spec = {"count": 30, "regions": ["nyc3", "fra1", "syd1"], "seed": 99}
        self.control("POST", "/_sim/droplets/generate", spec)
        a = self.control("GET", "/_sim/droplets")["droplets"]
        self.control("POST", "/_sim/droplets/generate", spec)
        b = self.control("GET", "/_sim/droplets")["droplets"]
        self.assertEqual(a, b)
        self.control("POST", "/_sim/droplets/generate", dict(spec, seed=100))
        c = self.control("GET", "/_sim/droplets")["droplets"]
        self.assertNotEqual([d["id"] for d in a], [d["id"] for d in c])
        per_region = {}
        for d in a:
            per_region[d["region"]["slug"]] = per_region.get(d["region"]["slug"], 0) + 1
        self.assertEqual(per_region, {"nyc3": 10, "fra1": 10, "syd1": 10})
        ids = [d["id"] for d in a]
        self.assertEqual(ids, sorted(ids))
        r = self.call("/_sim/droplets/generate", token=None, method="POST", body={"count": 2, "regions": ["mars1"]})
        self.assertEqual(r.status, 400)

    # -- droplets: pagination -----------------------------------------------------------------

    def test_pagination_450_at_200(self):
        self.control("POST", "/_sim/droplets/generate", {"count": 450, "regions": ["nyc3", "ams3", "sfo3"], "seed": 7})
        expected_ids = [d["id"] for d in self.control("GET", "/_sim/droplets")["droplets"]]
        u = lambda n: "%s/v2/droplets?page=%d&per_page=200" % (self.origin, n)

        p1 = self.call("/v2/droplets?per_page=200").json()
        self.assertEqual(len(p1["droplets"]), 200)
        self.assertEqual(p1["meta"], {"total": 450})
        self.assertEqual(p1["links"], {"pages": {"last": u(3), "next": u(2)}})
        self.assertNotIn("first", p1["links"]["pages"])
        self.assertNotIn("prev", p1["links"]["pages"])

        # Follow next exactly as a client would: the absolute URL as given.
        next_url = p1["links"]["pages"]["next"]
        parts = urllib.parse.urlsplit(next_url)
        self.assertEqual((parts.scheme, parts.netloc), ("https", "127.0.0.1:%d" % self.port))
        p2 = self.call(next_url[len(self.origin):]).json()
        self.assertEqual(len(p2["droplets"]), 200)
        self.assertEqual(p2["meta"], {"total": 450})
        self.assertEqual(p2["links"], {"pages": {"first": u(1), "last": u(3), "next": u(3), "prev": u(1)}})
        self.assertEqual(list(p2["links"]["pages"]), ["first", "last", "next", "prev"])

        p3 = self.call(p2["links"]["pages"]["next"][len(self.origin):]).json()
        self.assertEqual(len(p3["droplets"]), 50)
        self.assertEqual(p3["meta"], {"total": 450})
        self.assertEqual(p3["links"], {"pages": {"first": u(1), "prev": u(2)}})
        self.assertNotIn("next", p3["links"]["pages"])
        self.assertNotIn("last", p3["links"]["pages"])

        got = [d["id"] for p in (p1, p2, p3) for d in p["droplets"]]
        self.assertEqual(got, expected_ids)
        for p in (p1, p2, p3):
            self.assertEqual(schema_errors(SPEC["droplets_list_response"], p), [])

    def test_pagination_defaults_cap_and_edges(self):
        self.control("POST", "/_sim/droplets/generate", {"count": 450, "regions": ["nyc3"], "seed": 1})
        # default per_page is 20; links then carry only page (no per_page was asked for)
        b = self.call("/v2/droplets").json()
        self.assertEqual(len(b["droplets"]), 20)
        self.assertEqual(b["links"]["pages"]["next"], self.origin + "/v2/droplets?page=2")
        self.assertEqual(b["links"]["pages"]["last"], self.origin + "/v2/droplets?page=23")
        # above the maximum: served as 200 per page, and the links say 200
        b = self.call("/v2/droplets?per_page=500").json()
        self.assertEqual(len(b["droplets"]), 200)
        self.assertEqual(b["links"]["pages"]["last"], self.origin + "/v2/droplets?page=3&per_page=200")
        self.assertEqual(SPEC["parameters"]["per_page"]["maximum"], 200)
        self.assertEqual(SPEC["parameters"]["per_page"]["default"], 20)
        # other query parameters are carried along
        b = self.call("/v2/droplets?per_page=100&name=sim-nyc3-0001").json()
        self.assertEqual(b["meta"]["total"], 1)
        # past the last page: empty list, links back
        b = self.call("/v2/droplets?page=9&per_page=200").json()
        self.assertEqual(b["droplets"], [])
        self.assertEqual(b["meta"]["total"], 450)
        self.assertEqual(set(b["links"]["pages"]), {"first", "prev"})
        # a single page: no page links; "links":{} by default, {"pages":{}} if configured
        self.control("POST", "/_sim/droplets/generate", {"count": 3, "regions": ["nyc3"], "seed": 1})
        b = self.call("/v2/droplets").json()
        self.assertEqual(b["links"], {})
        self.assertEqual(b["meta"], {"total": 3})
        self.control("POST", "/_sim/config", {"single_page_links": "pages"})
        self.assertEqual(self.call("/v2/droplets").json()["links"], {"pages": {}})
        # origin follows the Host the client used
        b = self.call("/v2/droplets?per_page=1", origin="https://localhost:%d" % self.port).json()
        self.assertEqual(b["links"]["pages"]["next"], "https://localhost:%d/v2/droplets?page=2&per_page=1" % self.port)

    def test_tag_filter(self):
        self.control("POST", "/_sim/droplets/generate", {"count": 4, "regions": ["nyc3"], "seed": 1, "tags": ["env:test"]})
        self.control("POST", "/_sim/droplets/add", {"name": "tagged", "region": "lon1", "tags": ["special"]})
        b = self.call("/v2/droplets?tag_name=special").json()
        self.assertEqual([d["name"] for d in b["droplets"]], ["tagged"])
        self.assertEqual(b["meta"]["total"], 1)

    # -- auth ----------------------------------------------------------------------------------

    def test_401(self):
        body = {"id": "Unauthorized", "message": "Unable to authenticate you"}
        for token, headers in ((None, None), ("dop_v1_" + "0" * 64, None), (None, {"Authorization": "Basic Zm9vOmJhcg=="}),
                               ("", None)):
            for path in ("/v2/droplets", "/v2/account"):
                r = self.call(path, token=token, headers=headers)
                self.assertErrorBody(r, 401, body)
                self.assertEqual(r.body, b'{"id":"Unauthorized","message":"Unable to authenticate you"}')
        # the spec's (older) example can be selected
        self.control("POST", "/_sim/config", {"error_bodies": {"401": SPEC["error_examples"]["401"]}})
        self.assertErrorBody(self.call("/v2/droplets", token=None), 401, SPEC["error_examples"]["401"])

    def test_403_scopes(self):
        body = {"id": "forbidden", "message": "You do not have access for the attempted action."}
        self.assertErrorBody(self.call("/v2/droplets", token=NOSCOPE), 403, body)
        self.assertErrorBody(self.call("/v2/account", token=NOSCOPE), 403, body)
        # custom scopes: droplet:read only
        self.assertEqual(self.call("/v2/droplets", token=CUSTOM).status, 200)
        self.assertErrorBody(self.call("/v2/account", token=CUSTOM), 403, body)

    def test_404(self):
        body = {"id": "not_found", "message": "The resource you were accessing could not be found."}
        self.assertErrorBody(self.call("/v2/nothing"), 404, body)
        self.assertErrorBody(self.call("/v2/droplets", method="POST", body={"name": "x"}), 404, body)
        self.assertErrorBody(self.call("/"), 404, body)

    # -- rate limits ---------------------------------------------------------------------------

    def test_ratelimit_headers(self):
        now = time.time()
        a = self.call("/v2/droplets")
        b = self.call("/v2/account")
        self.assertEqual(a.h("ratelimit-limit"), "5000")
        self.assertEqual(int(a.h("ratelimit-remaining")), 4999)
        self.assertEqual(int(b.h("ratelimit-remaining")), 4998)
        reset = int(a.h("ratelimit-reset"))
        self.assertTrue(now + 3590 <= reset <= now + 3610, reset - now)
        # per token
        c = self.call("/v2/droplets", token=CUSTOM)
        self.assertEqual(int(c.h("ratelimit-remaining")), 4999)
        self.assertIsNone(a.h("retry-after"))

    def test_ratelimit_hourly_exhausted(self):
        self.control("POST", "/_sim/ratelimit", {"token": "reader", "remaining": 1, "reset_in": 120})
        r = self.call("/v2/droplets")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.h("ratelimit-remaining"), "0")
        r = self.call("/v2/droplets")
        self.assertErrorBody(r, 429, {"id": "too_many_requests", "message": "API Rate limit exceeded."})
        self.assertEqual(r.h("ratelimit-remaining"), "0")
        self.assertAlmostEqual(int(r.h("ratelimit-reset")), time.time() + 120, delta=5)
        self.assertIsNone(r.h("retry-after"))
        self.assertEqual(self.call("/v2/droplets", token=CUSTOM).status, 200)  # other tokens unaffected
        self.assertGreaterEqual(self.control("GET", "/_sim/stats")["rate_limited"], 1)

    def test_burst_limit(self):
        cfg = self.control("GET", "/_sim/config")
        self.assertEqual((cfg["burst_limit"], cfg["per_minute_limit"], cfg["hourly_limit"]), (True, 250, 5000))
        self.control("POST", "/_sim/config", {"per_minute_limit": 5})
        for _ in range(5):
            self.assertEqual(self.call("/v2/account").status, 200)
        r = self.call("/v2/account")
        self.assertErrorBody(r, 429, {"id": "too_many_requests", "message": "API Rate limit exceeded."})
        self.assertEqual(r.h("ratelimit-remaining"), "0")
        self.assertTrue(1 <= int(r.h("retry-after")) <= 60, r.h("retry-after"))
        self.control("POST", "/_sim/config", {"burst_limit": False})
        self.assertEqual(self.call("/v2/account").status, 200)

    # -- faults --------------------------------------------------------------------------------

    def test_fault_status_500_503(self):
        self.faults({"path_prefix": "/v2/droplets", "kind": "status", "status": 500, "times": 1},
                    {"path_prefix": "/v2/account", "kind": "status", "status": 503, "times": 2})
        self.assertErrorBody(self.call("/v2/droplets"), 500, {"id": "server_error", "message": "Unexpected server-side error"})
        self.assertEqual(self.call("/v2/droplets").status, 200)  # spent
        for _ in range(2):
            r = self.call("/v2/account")
            self.assertEqual(r.status, 503)
            self.assertEqual(schema_errors(SPEC["error"], r.json()), [])
            self.assertRateHeaders(r)
        self.assertEqual(self.call("/v2/account").status, 200)
        self.assertEqual(self.control("GET", "/_sim/stats")["faults_applied"], {"status": 3})

    def test_fault_status_429(self):
        self.faults({"path_prefix": "/v2/droplets", "kind": "status", "status": 429,
                     "retry_after": 7, "ratelimit_reset_in": 30})
        r = self.call("/v2/droplets")
        self.assertErrorBody(r, 429, {"id": "too_many_requests", "message": "API Rate limit exceeded."})
        self.assertEqual(r.h("retry-after"), "7")
        self.assertEqual(r.h("ratelimit-remaining"), "0")
        self.assertAlmostEqual(int(r.h("ratelimit-reset")), time.time() + 30, delta=3)
        self.assertEqual(self.call("/v2/droplets").status, 200)

    def test_fault_page_skip_and_times(self):
        self.control("POST", "/_sim/droplets/generate", {"count": 50, "regions": ["nyc3"], "seed": 1})
        self.faults({"path_prefix": "/v2/droplets", "page": 2, "kind": "status", "status": 503, "times": -1, "skip": 1})
        self.assertEqual(self.call("/v2/droplets?per_page=20").status, 200)
        self.assertEqual(self.call("/v2/droplets?page=2&per_page=20").status, 200)  # skipped once
        self.assertEqual(self.call("/v2/droplets?page=2&per_page=20").status, 503)
        self.assertEqual(self.call("/v2/droplets?page=2&per_page=20").status, 503)  # never runs out
        self.assertEqual(self.call("/v2/droplets?page=3&per_page=20").status, 200)
        bad = self.call("/_sim/faults", token=None, method="POST", body=[{"kind": "explode"}])
        self.assertEqual(bad.status, 400)
        self.assertIn("kind must be one of", bad.json()["error"])

    def test_fault_reset(self):
        self.faults({"path_prefix": "/v2/droplets", "kind": "reset"})
        with self.assertRaises((urllib.error.URLError, ConnectionError, http.client.HTTPException, ssl.SSLError, OSError)):
            self.call("/v2/droplets")
        self.assertEqual(self.call("/v2/droplets").status, 200)  # server fine, rule spent
        log = self.control("GET", "/_sim/log")
        self.assertEqual((log[0]["fault"], log[0]["status"], log[0]["bytes"]), ("reset", None, 0))

    def test_fault_slow(self):
        self.faults({"path_prefix": "/v2/account", "kind": "slow", "delay_ms": 400})
        t = time.monotonic()
        self.assertEqual(self.call("/v2/account").status, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.4)
        t = time.monotonic()
        self.call("/v2/account")
        self.assertLess(time.monotonic() - t, 0.4)

    def test_fault_truncate(self):
        self.control("POST", "/_sim/droplets/generate", {"count": 30, "regions": ["nyc3"], "seed": 1})
        self.faults({"path_prefix": "/v2/droplets", "kind": "truncate"})
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
        conn.request("GET", "/v2/droplets?per_page=30", headers={"Authorization": "Bearer " + READER})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        declared = int(resp.getheader("Content-Length"))
        got = b""
        with self.assertRaises((http.client.IncompleteRead, ssl.SSLError, ConnectionError)):
            while True:
                chunk = resp.read(4096)
                if not chunk:
                    # http.client raises IncompleteRead when the body ends short of its length
                    raise http.client.IncompleteRead(got, declared - len(got))
                got += chunk
        conn.close()
        self.assertLess(len(got), declared)
        self.assertGreater(declared, 1000)
        log = self.control("GET", "/_sim/log")
        self.assertEqual(log[0]["bytes"], declared // 2)

    def test_fault_malformed(self):
        self.faults({"path_prefix": "/v2/droplets", "kind": "malformed"})
        r = self.call("/v2/droplets")
        self.assertEqual(r.status, 200)
        with self.assertRaises(ValueError):
            json.loads(r.body)
        self.call("/v2/droplets").json()  # spent

    def test_fault_foreign_next(self):
        self.control("POST", "/_sim/droplets/generate", {"count": 30, "regions": ["nyc3"], "seed": 1})
        foreign = "https://127.0.0.2:%d/v2/droplets?page=2" % self.port
        self.faults({"path_prefix": "/v2/droplets", "page": 1, "kind": "foreign_next", "next_url": foreign})
        b = self.call("/v2/droplets").json()
        self.assertEqual(b["links"]["pages"]["next"], foreign)
        self.assertEqual(b["links"]["pages"]["last"], self.origin + "/v2/droplets?page=2")

    def test_fault_bad_droplet(self):
        self.faults({"path_prefix": "/v2/droplets", "kind": "bad_droplet", "field": "id"},
                    {"path_prefix": "/v2/droplets", "kind": "bad_droplet", "field": "ip", "index": 1})
        d = self.call("/v2/droplets").json()["droplets"]
        self.assertNotIn("id", d[0])
        self.assertIn("required property 'id' missing", " ".join(schema_errors(SPEC["droplet"], d[0])))
        self.assertEqual(schema_errors(SPEC["droplet"], d[1]), [])
        d = self.call("/v2/droplets").json()["droplets"]
        pub = [n for n in d[1]["networks"]["v4"] if n["type"] == "public"][0]
        self.assertEqual(pub["ip_address"], "999.1.2.3")
        self.assertTrue(schema_errors(SPEC["droplet"], d[1]))
        self.assertEqual(schema_errors(SPEC["droplet"], d[0]), [])
        # the stored droplet is untouched
        d = self.call("/v2/droplets").json()["droplets"]
        self.assertEqual([schema_errors(SPEC["droplet"], x) for x in d], [[]] * len(d))


    # -- the other resource types -------------------------------------------------------------

    def test_resource_types_schema(self):
        self.control("POST", "/_sim/droplets/generate", {"count": 12, "regions": ["nyc3", "ams3", "sgp1"], "seed": 3})
        for kind, (path, key, list_schema, item_schema, id_key, paginated) in KINDS.items():
            with self.subTest(kind=kind):
                self.control("POST", "/_sim/%s/generate" % kind, {"count": 30, "regions": ["nyc3", "ams3", "sgp1"], "seed": 3})
                r = self.call(path + ("?per_page=30" if paginated else ""))
                self.assertEqual(r.status, 200)
                self.assertEqual(r.h("Content-Type"), "application/json; charset=utf-8")
                self.assertRateHeaders(r)
                body = r.json()
                self.assertEqual(list(body), [key, "links", "meta"] if paginated else [key])
                self.assertEqual(schema_errors(SPEC[list_schema], body), [])
                self.assertEqual(len(body[key]), 30)
                allowed = schema_properties(SPEC[item_schema])
                for item in body[key]:
                    self.assertEqual(schema_errors(SPEC[item_schema], item), [], item.get(id_key))
                    self.assertLessEqual(set(item), allowed, "every key served is one the spec defines")
                self.assertEqual(len({i[id_key] for i in body[key]}), 30)
                if paginated:
                    self.assertEqual(body["meta"], {"total": 30})
                broken = dict(body[key][0])
                broken[id_key] = 42
                self.assertTrue(schema_errors(SPEC[item_schema], broken), "the validator must see a wrong type")
        # what the mappings read is there in each shape
        v = self.call("/v2/volumes").json()["volumes"][0]
        self.assertEqual(set(v["region"]), {"name", "slug", "features", "available", "sizes"})
        lb = self.call("/v2/load_balancers").json()["load_balancers"][0]
        self.assertTrue(lb["forwarding_rules"] and ipaddress.IPv4Address(lb["ip"]))
        k = self.call("/v2/kubernetes/clusters").json()["kubernetes_clusters"][0]
        self.assertIn(k["region"], ("nyc3", "ams3", "sgp1"))
        self.assertTrue(k["endpoint"].startswith("https://") and k["node_pools"][0]["nodes"])
        rips = self.call("/v2/reserved_ips?per_page=30").json()["reserved_ips"]
        attached = [x for x in rips if x["droplet"] is not None]
        self.assertTrue(attached and len(attached) < len(rips), "some reserved IPs are assigned, some not")
        self.assertEqual(schema_errors(SPEC["droplet"], attached[0]["droplet"]), [])

    def test_resource_types_pagination(self):
        for kind, (path, key, list_schema, item_schema, id_key, paginated) in KINDS.items():
            with self.subTest(kind=kind):
                self.control("POST", "/_sim/%s/generate" % kind, {"count": 450, "regions": ["nyc3", "fra1"], "seed": 5})
                expected = [i[id_key] for i in self.control("GET", "/_sim/" + kind)[kind]]
                if not paginated:
                    body = self.call(path + "?per_page=200").json()
                    self.assertEqual([i[id_key] for i in body[key]], expected, "databases: every cluster in one answer")
                    self.assertEqual(schema_errors(SPEC[list_schema], body), [])
                    continue
                got, url, pages = [], path + "?per_page=200", 0
                while url:
                    body = self.call(url).json()
                    self.assertEqual(schema_errors(SPEC[list_schema], body), [])
                    self.assertEqual(body["meta"], {"total": 450})
                    got += [i[id_key] for i in body[key]]
                    pages += 1
                    nxt = body["links"].get("pages", {}).get("next")
                    if nxt:
                        self.assertTrue(nxt.startswith(self.origin + path + "?page=%d" % (pages + 1)), nxt)
                    url = nxt[len(self.origin):] if nxt else None
                self.assertEqual((pages, got), (3, expected))

    def test_resource_types_scopes(self):
        self.control("POST", "/_sim/databases/generate", {"count": 2, "seed": 1})
        body = {"id": "forbidden", "message": "You do not have access for the attempted action."}
        for kind, (path, key, *_rest) in KINDS.items():
            with self.subTest(kind=kind):
                self.assertErrorBody(self.call(path, token=CUSTOM), 403, body)
                self.assertErrorBody(self.call(path, token=NOSCOPE), 403, body)
                self.assertEqual(self.call(path).status, 200)
                self.assertEqual(self.call(path, token=NODB).status, 403 if kind == "databases" else 200)
        self.assertEqual(self.call("/v2/droplets", token=NODB).status, 200)

    def test_database_credentials(self):
        marker = "MARKERPW0123456789"
        self.control("POST", "/_sim/databases/generate", {"count": 4, "seed": 2, "password": marker})
        for db in self.call("/v2/databases").json()["databases"]:
            self.assertEqual(db["connection"]["password"], marker)
            self.assertIn(marker, db["connection"]["uri"])
            self.assertIn(marker, db["private_connection"]["uri"])
            self.assertEqual({u["password"] for u in db["users"]}, {marker})
            if db["num_nodes"] > 1:
                self.assertEqual(db["standby_connection"]["password"], marker)
        added = self.control("POST", "/_sim/databases/add", {"region": "fra1", "password": marker, "name": "added-db"})["item"]
        self.assertEqual((added["name"], added["region"], added["users"][0]["password"]), ("added-db", "fra1", marker))

    def test_empty_databases(self):
        self.assertEqual(self.call("/v2/databases").json(), {"databases": []})
        self.assertEqual(schema_errors(SPEC["databases_list_response"], self.call("/v2/databases").json()), [])
        self.control("POST", "/_sim/config", {"empty_databases": "null"})
        self.assertEqual(self.call("/v2/databases").json(), {"databases": None})
        self.control("POST", "/_sim/databases/generate", {"count": 1, "seed": 1})
        self.assertEqual(len(self.call("/v2/databases").json()["databases"]), 1)
        r = self.call("/_sim/config", token=None, method="POST", body={"empty_databases": "nil"})
        self.assertEqual(r.status, 400)

    def test_control_resource_types(self):
        for kind, (path, key, list_schema, item_schema, id_key, paginated) in KINDS.items():
            with self.subTest(kind=kind):
                spec = {"count": 5, "regions": ["nyc3"], "seed": 9}
                self.control("POST", "/_sim/%s/generate" % kind, spec)
                a = self.control("GET", "/_sim/" + kind)[kind]
                self.control("POST", "/_sim/%s/generate" % kind, spec)
                self.assertEqual(self.control("GET", "/_sim/" + kind)[kind], a, "deterministic")
                first = str(a[0][id_key])
                self.control("PATCH", "/_sim/%s/%s" % (kind, first), {"name": "renamed", "tags": ["x"]})
                self.assertEqual(self.control("GET", "/_sim/%s/%s" % (kind, first))["item"]["name"], "renamed")
                self.control("DELETE", "/_sim/%s/%s" % (kind, a[1][id_key]))
                new = self.control("POST", "/_sim/%s/add" % kind, {"region": "ams3"})["item"]
                self.assertNotIn(new[id_key], [x[id_key] for x in a])
                self.control("POST", "/_sim/%s/generate" % kind, dict(spec, count=2, append=True))
                now = self.control("GET", "/_sim/" + kind)[kind]
                self.assertEqual(len(now), 7)
                self.assertEqual(len({x[id_key] for x in now}), 7, "appended items get new ids")
                for item in now:
                    self.assertEqual(schema_errors(SPEC[item_schema], item), [])
                r = self.call(path)
                self.assertEqual(len(r.json()[key]), 7)
                self.assertEqual(self.call("/_sim/%s/nope" % kind, token=None).status, 404)
                bad = self.call("/_sim/%s/generate" % kind, token=None, method="POST", body={"count": 2, "regions": ["mars1"]})
                self.assertEqual(bad.status, 400)

    def test_resource_types_faults(self):
        self.control("POST", "/_sim/volumes/generate", {"count": 250, "seed": 1})
        self.control("POST", "/_sim/reserved_ips/generate", {"count": 3, "seed": 1})
        self.faults({"path_prefix": "/v2/volumes", "kind": "bad_item", "field": "id"},
                    {"path_prefix": "/v2/reserved_ips", "kind": "bad_item", "field": "ip", "index": 1},
                    {"path_prefix": "/v2/volumes", "page": 2, "kind": "foreign_next", "next_url": "https://127.0.0.2/v2/volumes"},
                    {"path_prefix": "/v2/load_balancers", "kind": "status", "status": 500})
        v = self.call("/v2/volumes?per_page=200").json()["volumes"]
        self.assertNotIn("id", v[0])
        self.assertIn("id", v[1])
        self.assertEqual(self.call("/v2/reserved_ips").json()["reserved_ips"][1]["ip"], "999.1.2.3")
        self.assertEqual(self.call("/v2/volumes?per_page=200&page=2").json()["links"]["pages"]["next"], "https://127.0.0.2/v2/volumes")
        self.assertEqual(self.call("/v2/load_balancers").status, 500)
        self.assertEqual(self.call("/v2/load_balancers").status, 200)

    # -- log, stats, keep-alive, concurrency ----------------------------------------------------

    def test_log_never_contains_token(self):
        self.call("/v2/droplets")
        self.call("/v2/droplets", token=NOSCOPE)
        self.call("/v2/droplets", token="dop_v1_" + "7" * 64)
        self.call("/v2/droplets", token=None)
        self.call("/v2/droplets?access_token=" + READER, token=None)
        self.call("/v2/" + READER)
        log = self.control("GET", "/_sim/log")
        with open(self.log_file, encoding="utf-8") as f:
            file_text = f.read()
        self.assertEqual([json.loads(line) for line in file_text.splitlines()], log)
        everything = json.dumps(log) + file_text
        for secret in (READER, NOSCOPE, CUSTOM, "7" * 64, "Bearer"):
            self.assertNotIn(secret, everything)
        self.assertEqual([(e["auth_present"], e["token_matches"], e["status"]) for e in log],
                         [(True, "reader", 200), (True, "noscope", 403), (True, None, 401), (False, None, 401),
                          (False, None, 401), (True, "reader", 404)])
        for e in log:
            self.assertLessEqual({"time", "method", "path", "query", "auth_present", "token_matches", "status", "bytes"}, set(e))
            self.assertIsInstance(e["bytes"], int)
        self.assertEqual(log[0]["bytes"], len(self.call("/v2/droplets").body))
        tokens = self.control("GET", "/_sim/tokens")
        self.assertNotIn(READER, json.dumps(tokens))

    def test_keepalive(self):
        before = self.control("GET", "/_sim/stats")["connections_total"]
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
        for path in ("/v2/account", "/v2/droplets", "/v2/droplets?page=1"):
            conn.request("GET", path, headers={"Authorization": "Bearer " + READER})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertNotEqual((r.getheader("Connection") or "").lower(), "close")
        conn.close()
        after = self.control("GET", "/_sim/stats")["connections_total"]
        self.assertEqual(after - before, 2)  # the one keep-alive connection, plus the stats call
        log = self.control("GET", "/_sim/log")
        self.assertEqual(len({e["client_port"] for e in log}), 1)

    def test_stats_and_max_in_flight(self):
        self.faults({"path_prefix": "/v2/droplets", "kind": "slow", "delay_ms": 800, "times": -1})
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.call("/v2/droplets").status)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [200] * 4)
        s = self.control("GET", "/_sim/stats")
        self.assertEqual(s["max_in_flight"], 4)
        self.assertEqual(s["in_flight"], 0)
        self.assertEqual(s["requests_by_path"], {"/v2/droplets": 4})
        self.assertEqual(s["requests_by_status"], {"200": 4})
        self.control("DELETE", "/_sim/stats")
        self.assertEqual(self.control("GET", "/_sim/stats")["max_in_flight"], 0)

    # -- control API ---------------------------------------------------------------------------

    def test_control_droplets(self):
        self.control("POST", "/_sim/droplets/generate", {"count": 3, "regions": ["nyc3"], "seed": 5})
        added = self.control("POST", "/_sim/droplets/add", {"name": "db-1", "region": "fra1", "size": "s-4vcpu-8gb"})["droplet"]
        self.assertEqual((added["region"]["slug"], added["memory"], added["size_slug"]), ("fra1", 8192, "s-4vcpu-8gb"))
        self.assertEqual(schema_errors(SPEC["droplet"], added), [])
        did = added["id"]
        self.control("PATCH", "/_sim/droplets/%d" % did, {"name": "db-1-renamed"})
        names = [d["name"] for d in self.call("/v2/droplets").json()["droplets"]]
        self.assertIn("db-1-renamed", names)
        self.assertNotIn("db-1", names)
        self.control("DELETE", "/_sim/droplets/%d" % did)
        b = self.call("/v2/droplets").json()
        self.assertEqual(b["meta"]["total"], 3)
        self.assertEqual(self.call("/_sim/droplets/%d" % did, token=None, method="DELETE").status, 404)
        # whole set replaced verbatim
        self.control("POST", "/_sim/droplets", [{"id": 1, "name": "only"}])
        self.assertEqual(self.call("/v2/droplets").json()["droplets"], [{"id": 1, "name": "only"}])
        # appended generation continues ids and addresses
        self.control("POST", "/_sim/droplets/generate", {"count": 2, "regions": ["nyc3"], "seed": 5, "append": True})
        ids = [d["id"] for d in self.control("GET", "/_sim/droplets")["droplets"]]
        self.assertEqual(len(set(ids)), 3)
        # reset restores the state file's set
        self.control("POST", "/_sim/reset")
        self.assertEqual(self.call("/v2/droplets").json()["meta"]["total"], 5)

    def test_control_tokens_account_and_errors(self):
        self.control("POST", "/_sim/tokens", {"name": "late", "token": "dop_v1_" + "9" * 64, "scope": "read"})
        self.assertEqual(self.call("/v2/account", token="dop_v1_" + "9" * 64).status, 200)
        self.control("POST", "/_sim/tokens", {"name": "late", "token": "dop_v1_" + "9" * 64, "scope": "none"})
        self.assertEqual(self.call("/v2/account", token="dop_v1_" + "9" * 64).status, 403)
        self.control("DELETE", "/_sim/tokens/late")
        self.assertEqual(self.call("/v2/account", token="dop_v1_" + "9" * 64).status, 401)
        self.control("PATCH", "/_sim/account", {"status": "locked", "status_message": "Payment overdue"})
        acct = self.call("/v2/account").json()["account"]
        self.assertEqual((acct["status"], acct["email"]), ("locked", "sammy@digitalocean.com"))
        self.assertEqual(schema_errors(SPEC["account"], acct), [])
        # malformed control requests are answered, never fatal
        req = urllib.request.Request(self.origin + "/_sim/faults", data=b"{not json", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(req, context=self.ctx, timeout=10)
        self.assertEqual(cm.exception.code, 400)
        self.assertEqual(self.call("/_sim/nothing", token=None).status, 404)
        self.assertEqual(self.call("/_sim/config", token=None, method="POST", body={"bogus": 1}).status, 400)
        # an oversized body is refused before it is read
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        t = self.ctx.wrap_socket(s, server_hostname="127.0.0.1")
        t.sendall(b"POST /_sim/droplets HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
        head = t.recv(4096)
        t.close()
        self.assertTrue(head.startswith(b"HTTP/1.1 413"), head[:40])

    def test_head(self):
        r = self.call("/v2/droplets", method="HEAD")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertGreater(int(r.h("Content-Length")), 100)
        self.assertRateHeaders(r)

    def test_robustness(self):
        # plain HTTP on the TLS port, garbage, and a broken request line over TLS
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(b"GET /v2/droplets HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            s.recv(100)
        except OSError:
            pass
        s.close()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(os.urandom(3000))
        s.close()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        t = self.ctx.wrap_socket(s, server_hostname="127.0.0.1")
        t.sendall(b"\x00\xffNONSENSE\r\n\r\n")
        answer = t.recv(4096)
        t.close()
        self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer[:40])
        # a client that connects and never starts TLS must not hold up anyone else
        stalled = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            t0 = time.monotonic()
            self.assertEqual(self.call("/v2/droplets").status, 200)
            self.assertLess(time.monotonic() - t0, 2.0)
        finally:
            stalled.close()
        self.assertGreaterEqual(self.control("GET", "/_sim/stats")["tls_handshake_failures"], 1)

    def test_second_origin_and_latency_cli(self):
        # A second simulator as the "other origin" (127.0.0.2, same certificate), with --latency-ms.
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.2", 0))
        except OSError:
            self.skipTest("127.0.0.2 is not usable here")
        finally:
            probe.close()
        proc, port = start_sim(self.tmp, self.ca, "--host", "127.0.0.2", "--latency-ms", "300", name="other")
        try:
            t = time.monotonic()
            r = self.call("/v2/account", token="dop_v1_" + "5317" * 16, origin="https://127.0.0.2:%d" % port)
            self.assertEqual(r.status, 200)  # the built-in default token, no state file
            self.assertGreaterEqual(time.monotonic() - t, 0.3)
            b = self.call("/v2/droplets", token="dop_v1_" + "5317" * 16, origin="https://127.0.0.2:%d" % port).json()
            self.assertEqual(b["meta"]["total"], 3)
        finally:
            stop_sim(proc)
        self.assertEqual(proc.returncode, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
