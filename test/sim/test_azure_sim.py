#!/usr/bin/python3
"""Self-test of the Azure simulator (azure_sim.py).

Run:  /usr/bin/python3 test/sim/test_azure_sim.py

Makes a throwaway CA with make_test_ca.sh, starts the simulator on a free port and talks to it
over HTTPS, verifying TLS against that CA.

Schema checks: every ARM body the tests fetch (virtual machine pages, plain and statusOnly,
network interface and public IP address pages, the subscriptions list, CloudError bodies) is
validated against vendor/azure-rest-api-specs/definitions.json, the definitions copied from
Microsoft's REST API specifications (see SOURCE there), by the Swagger 2.0 validator below:
$ref, allOf, type, enum (not for x-ms-enum modelAsString, which the specs mark extensible),
required, items, additionalProperties, format date-time, minimum/maximum, and strict members:
a member no definition declares, or one whose definition was not copied, is an error.  The
token endpoint is checked against the identity platform's documented shapes (no OpenAPI
document describes it; the sources are named in SOURCE).
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import ssl

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "azure_sim.py")
MAKE_CA = os.path.join(HERE, "make_test_ca.sh")
SPECS = os.path.join(HERE, "vendor", "azure-rest-api-specs", "definitions.json")

TENANT = "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f"       # the simulator's defaults
CLIENT = "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"
SECRET = "SimQ8~cloudconn.ClientSecret-0123456789_abcdefgh"
OTHER_CLIENT = "5d1c4e2a-9b7f-4a36-8e05-c2b1a0f9d8e7"
EXPIRED_CLIENT = "6e2d5f3b-0c8a-4b47-9f16-d3c2b1a0e9f8"
SUB_A = "0a1b2c3d-1111-4aaa-8bbb-000000000001"
SUB_B = "0a1b2c3d-2222-4aaa-8bbb-000000000002"
SUB_C = "0a1b2c3d-3333-4aaa-8bbb-000000000003"

COMPUTE = "2024-07-01"
NETWORK = "2024-05-01"

with open(SPECS, encoding="utf-8") as f:
    SPEC = json.load(f)
FILES = SPEC["files"]
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


# --------------------------------------------------------------------------------------------
# A small validator for the Swagger 2.0 subset the vendored definitions use
# --------------------------------------------------------------------------------------------

def resolve(ref):
    """The definition a $ref names, or None when it was not copied."""
    fname, _, name = ref.partition("#/definitions/")
    return FILES.get(fname, {}).get("definitions", {}).get(name)


def declared(schema):
    """Every member an object schema declares, allOf included: {name: schema}."""
    if "$ref" in schema:
        target = resolve(schema["$ref"])
        return declared(target) if target is not None else {}
    out = {}
    for sub in schema.get("allOf", []):
        out.update(declared(sub))
    out.update(schema.get("properties", {}))
    return out


def required(schema):
    if "$ref" in schema:
        target = resolve(schema["$ref"])
        return required(target) if target is not None else []
    out = list(schema.get("required", []))
    for sub in schema.get("allOf", []):
        out += required(sub)
    return out


def schema_errors(schema, value, where="$", skip_required=()):
    if "$ref" in schema:
        target = resolve(schema["$ref"])
        if target is None:
            return ["%s: %s is not among the copied definitions: the simulator should not send it"
                    % (where, schema["$ref"])]
        return schema_errors(target, value, where, skip_required)
    errs = []
    t = schema.get("type")
    is_object = t == "object" or "properties" in schema or "allOf" in schema
    if t is None and is_object:
        t = "object"
    if t is None:
        return errs
    ok = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "string": isinstance(value, str),
        "boolean": isinstance(value, bool),
        "array": isinstance(value, list),
        "object": isinstance(value, dict),
    }[t]
    if not ok:
        return ["%s: %r is not %s" % (where, value, t)]
    if "enum" in schema and not schema.get("x-ms-enum", {}).get("modelAsString", False) and value not in schema["enum"]:
        errs.append("%s: %r not in enum %r" % (where, value, schema["enum"]))
    if t in ("integer", "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append("%s: below minimum" % where)
        if "maximum" in schema and value > schema["maximum"]:
            errs.append("%s: above maximum" % where)
    if t == "string" and schema.get("format") == "date-time" and not DATE_TIME.match(value):
        errs.append("%s: %r is not a date-time" % (where, value))
    if t == "object":
        members = declared(schema)
        for r in required(schema):
            if r not in value and r not in skip_required:
                errs.append("%s: required member %r missing" % (where, r))
        extra = schema.get("additionalProperties")
        for k, v in value.items():
            if k in members:
                errs += schema_errors(members[k], v, "%s.%s" % (where, k))
            elif extra is not None:
                errs += schema_errors(extra, v, "%s.%s" % (where, k))
            else:
                errs.append("%s: member %r is declared by no definition" % (where, k))
    if t == "array" and "items" in schema:
        for i, v in enumerate(value):
            errs += schema_errors(schema["items"], v, "%s[%d]" % (where, i))
    return errs


def op(name):
    return SPEC["operations"][name]


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


STATE = {
    "tenants": [{"tenant_id": TENANT, "display_name": "Contoso",
                 "apps": [{"client_id": CLIENT, "secrets": [{"value": SECRET}]},
                          {"client_id": OTHER_CLIENT, "secrets": [{"value": "other-secret-value"}]},
                          {"client_id": EXPIRED_CLIENT, "secrets": [{"value": "old-secret-value", "expired": True}]}]}],
    "subscriptions": [
        {"subscription_id": SUB_A, "display_name": "Production", "roles": {CLIENT: "Reader"}},
        {"subscription_id": SUB_B, "display_name": "Staging", "roles": {CLIENT: "ResourceGroupReader"}},
        {"subscription_id": SUB_C, "display_name": "Old", "state": "Disabled", "roles": {CLIENT: "Reader",
                                                                                         OTHER_CLIENT: "Reader"}},
    ],
}


class SimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="azsim-test-")
        cls.ca = os.path.join(cls.tmp, "ca")
        subprocess.run(["bash", MAKE_CA, cls.ca], check=True, stdout=subprocess.DEVNULL)
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
        self.control("POST", "/_sim/subscriptions/%s/generate" % SUB_A, {"count": 12, "seed": 3,
                                                                      "power_states": ["running", "deallocated"]})

    # -- helpers -------------------------------------------------------------------------------

    def request(self, path, method="GET", data=None, headers=None, origin=None):
        req = urllib.request.Request((origin or self.origin) + path, data=data, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=20) as r:
                return Resp(r.status, r.headers, r.read())
        except urllib.error.HTTPError as e:
            return Resp(e.code, e.headers, e.read())

    def control(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        r = self.request(path, method, data, {"Content-Type": "application/json"})
        self.assertLess(r.status, 300, "%s %s -> %d %r" % (method, path, r.status, r.body))
        return r.json() if r.body else None

    def token_request(self, form, tenant=TENANT, ctype="application/x-www-form-urlencoded"):
        return self.request("/%s/oauth2/v2.0/token" % tenant, "POST", urllib.parse.urlencode(form).encode(),
                            {"Content-Type": ctype})

    def token(self, client=CLIENT, secret=SECRET):
        r = self.token_request({"client_id": client, "client_secret": secret, "grant_type": "client_credentials",
                                "scope": "https://management.azure.com/.default"})
        self.assertEqual(r.status, 200, r.body)
        return r.json()["access_token"]

    def arm(self, path, token=None, origin=None):
        headers = {"Authorization": "Bearer " + (token or self.token())} if token != "" else {}
        return self.request(path, headers=headers, origin=origin)

    def list_all(self, path, token):
        """Every page of a list, following nextLink; returns (items, pages)."""
        items, pages, url = [], [], path
        while url:
            r = self.arm(url, token)
            self.assertEqual(r.status, 200, r.body)
            body = r.json()
            pages.append((r, body))
            items += body["value"]
            nxt = body.get("nextLink")
            url = nxt[len(self.origin):] if nxt else None
            if nxt:
                self.assertTrue(nxt.startswith(self.origin + "/"), nxt)
        return items, pages

    def assertValid(self, operation, body, skip_required=()):
        errs = schema_errors(op(operation)["response"], body, skip_required=skip_required)
        self.assertEqual(errs, [], "%s: %s" % (operation, errs[:5]))

    def assertCloudError(self, r, status, code, spec="compute"):
        self.assertEqual(r.status, status, r.body)
        body = r.json()
        self.assertEqual(body["error"]["code"], code)
        self.assertIsInstance(body["error"]["message"], str)
        ref = op("VirtualMachines_ListAll" if spec == "compute" else "NetworkInterfaces_ListAll")["error"]
        self.assertEqual(schema_errors(ref, body), [])

    def assertAadError(self, r, status, error, code):
        # WIRE: "Error response" of v2-oauth2-client-creds-grant-flow.md
        self.assertEqual(r.status, status, r.body)
        body = r.json()
        self.assertEqual(set(body), {"error", "error_description", "error_codes", "timestamp", "trace_id",
                                     "correlation_id", "error_uri"})
        self.assertEqual(body["error"], error)
        self.assertEqual(body["error_codes"], [code])
        self.assertTrue(body["error_description"].startswith("AADSTS%d: " % code), body["error_description"])
        self.assertRegex(body["error_description"], r"\r\nTrace ID: [0-9a-f-]{36}\r\nCorrelation ID: [0-9a-f-]{36}"
                                                    r"\r\nTimestamp: \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
        self.assertRegex(body["timestamp"], r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
        return body

    def log(self):
        return self.control("GET", "/_sim/log")

    # -- the validator itself -----------------------------------------------------------------

    def test_validator_finds_what_is_wrong(self):
        token = self.token()
        body = self.arm("/subscriptions/%s/providers/Microsoft.Compute/virtualMachines?api-version=%s"
                        % (SUB_A, COMPUTE), token).json()
        vm = body["value"][0]
        self.assertEqual(schema_errors(op("VirtualMachines_ListAll")["response"], body), [])
        cases = [
            ("an undeclared member", lambda v: v["properties"].__setitem__("bogus", 1), "declared by no definition"),
            ("a member not copied", lambda v: v.__setitem__("resources", [{}]), "not among the copied definitions"),
            ("a wrong type", lambda v: v["properties"]["hardwareProfile"].__setitem__("vmSize", 3), "is not string"),
            ("a closed enum", lambda v: v["properties"]["storageProfile"]["osDisk"].__setitem__("osType", "BeOS"),
             "not in enum"),
            ("a required member", lambda v: v.pop("location"), "required member 'location'"),
            ("a bad date-time", lambda v: v["properties"].__setitem__("timeCreated", "yesterday"), "not a date-time"),
        ]
        for label, change, message in cases:
            broken = json.loads(json.dumps(vm))
            change(broken)
            errs = schema_errors(op("VirtualMachines_ListAll")["response"], {"value": [broken]})
            self.assertTrue(any(message in e for e in errs), "%s: %s" % (label, errs))
        # an extensible enum (x-ms-enum modelAsString) takes other values, as the service may send them
        open_enum = json.loads(json.dumps(vm))
        open_enum["properties"]["hardwareProfile"]["vmSize"] = "Standard_D2as_v6"
        self.assertEqual(schema_errors(op("VirtualMachines_ListAll")["response"], {"value": [open_enum]}), [])

    # -- the token endpoint --------------------------------------------------------------------

    def test_token_success_shape(self):
        r = self.token_request({"client_id": CLIENT, "client_secret": SECRET, "grant_type": "client_credentials",
                                "scope": "https://management.azure.com/.default"})
        self.assertEqual(r.status, 200)
        body = r.json()
        # WIRE: "Successful response": token_type, expires_in, access_token (plus ext_expires_in)
        self.assertEqual(set(body), {"token_type", "expires_in", "ext_expires_in", "access_token"})
        self.assertEqual(body["token_type"], "Bearer")
        self.assertEqual(body["expires_in"], 3599)
        self.assertRegex(body["access_token"], r"^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
        self.assertGreater(len(body["access_token"]), 600)
        self.assertIn("no-store", r.h("Cache-Control"))
        claims = json.loads(base64.urlsafe_b64decode(body["access_token"].split(".")[1] + "=="))
        self.assertEqual((claims["tid"], claims["appid"], claims["aud"]),
                         (TENANT, CLIENT, "https://management.azure.com"))
        # the simulator's own origin is a management resource too (tests point cloudconn at it)
        r = self.token_request({"client_id": CLIENT, "client_secret": SECRET, "grant_type": "client_credentials",
                                "scope": self.origin + "/.default"})
        self.assertEqual(r.status, 200)

    def test_token_errors(self):
        base = {"client_id": CLIENT, "client_secret": SECRET, "grant_type": "client_credentials",
                "scope": "https://management.azure.com/.default"}
        self.assertAadError(self.token_request(dict(base, client_secret="wrong")), 401, "invalid_client", 7000215)
        self.assertAadError(self.token_request(dict(base, client_id=EXPIRED_CLIENT, client_secret="old-secret-value")),
                            401, "invalid_client", 7000222)
        b = self.assertAadError(self.token_request(dict(base, client_id="00000000-0000-4000-8000-000000000000")),
                                400, "unauthorized_client", 700016)
        self.assertIn("00000000-0000-4000-8000-000000000000", b["error_description"])
        self.assertAadError(self.token_request(base, tenant="99999999-0000-4000-8000-000000000000"),
                            400, "invalid_request", 90002)
        self.assertAadError(self.token_request(dict(base, scope="https://graph.microsoft.com/.default")),
                            400, "invalid_scope", 70011)
        self.assertAadError(self.token_request({k: v for k, v in base.items() if k != "grant_type"}),
                            400, "invalid_request", 900144)
        self.assertAadError(self.token_request({k: v for k, v in base.items() if k != "client_secret"}),
                            401, "invalid_client", 7000216)
        self.assertAadError(self.token_request(dict(base, grant_type="password")), 400, "unsupported_grant_type", 70003)
        self.assertAadError(self.request("/%s/oauth2/v2.0/token" % TENANT), 400, "invalid_request", 900561)

    def test_log_never_holds_a_secret_or_token(self):
        token = self.token()
        self.token_request({"client_id": CLIENT, "client_secret": "a-wrong-secret-value", "grant_type":
                            "client_credentials", "scope": "https://management.azure.com/.default"})
        self.arm("/subscriptions?api-version=2022-12-01", token)
        # a token in the query string, where no client would put it, is redacted too
        self.arm("/subscriptions?api-version=2022-12-01&leak=" + urllib.parse.quote(token), token)
        with open(self.log_file) as f:
            text = f.read()
        text += json.dumps(self.log())
        for s in (SECRET, token, "a-wrong-secret-value", token.split(".")[2]):
            self.assertNotIn(s, text)
        entries = self.log()
        t = [e for e in entries if e["list"] == "token"]
        self.assertEqual([e["secret"] for e in t], ["matches", "wrong"])
        self.assertEqual(t[0]["client_id"], CLIENT)
        self.assertEqual(t[0]["param_names"], ["client_id", "client_secret", "grant_type", "scope"])
        self.assertEqual([e["auth"] for e in entries if e["list"] == "subscriptions"], ["valid", "valid"])

    # -- ARM: authentication, versions, RBAC -------------------------------------------------------

    def test_authentication_errors(self):
        path = "/subscriptions/%s/providers/Microsoft.Compute/virtualMachines?api-version=%s" % (SUB_A, COMPUTE)
        r = self.arm(path, "")
        self.assertCloudError(r, 401, "AuthenticationFailed")
        self.assertIn("Bearer authorization_uri=", r.h("WWW-Authenticate"))
        self.assertCloudError(self.arm(path, "eyJ0.eyJ0.bm90"), 401, "InvalidAuthenticationToken")
        token = self.token()
        self.control("POST", "/_sim/tokens/expire")
        self.assertCloudError(self.arm(path, token), 401, "ExpiredAuthenticationToken")
        # a token that outlives its expires_in
        self.control("POST", "/_sim/config", {"token_lifetime_s": 1})
        token = self.token()
        self.assertEqual(self.arm(path, token).status, 200)
        time.sleep(1.2)
        self.assertCloudError(self.arm(path, token), 401, "ExpiredAuthenticationToken")

    def test_api_versions(self):
        base = "/subscriptions/%s/providers/Microsoft.Compute/virtualMachines" % SUB_A
        token = self.token()
        self.assertCloudError(self.arm(base, token), 400, "MissingApiVersionParameter")
        self.assertCloudError(self.arm(base + "?api-version=2015-01-01", token), 400, "NoRegisteredProviderFound")
        self.assertCloudError(self.arm("/subscriptions/%s/providers/Microsoft.Network/networkInterfaces?api-version=%s"
                                       % (SUB_A, COMPUTE), token), 400, "NoRegisteredProviderFound", "network")

    def test_rbac_per_subscription(self):
        token = self.token()
        for kind, path, spec in (("compute", "Microsoft.Compute/virtualMachines?api-version=" + COMPUTE, "compute"),
                                 ("network", "Microsoft.Network/publicIPAddresses?api-version=" + NETWORK, "network")):
            r = self.arm("/subscriptions/%s/providers/%s" % (SUB_B, path), token)
            self.assertCloudError(r, 403, "AuthorizationFailed", spec)
            self.assertIn("does not have authorization to perform action", r.json()["error"]["message"])
            self.assertIn("over scope '/subscriptions/%s'" % SUB_B, r.json()["error"]["message"])
        # an unknown subscription
        r = self.arm("/subscriptions/99999999-9999-4999-8999-999999999999/providers/Microsoft.Compute/"
                     "virtualMachines?api-version=" + COMPUTE, token)
        self.assertCloudError(r, 404, "SubscriptionNotFound")
        # a principal with no role on A is refused there, and lists only what it may see
        other = self.token(OTHER_CLIENT, "other-secret-value")
        self.assertCloudError(self.arm("/subscriptions/%s/providers/Microsoft.Compute/virtualMachines?api-version=%s"
                                       % (SUB_A, COMPUTE), other), 403, "AuthorizationFailed")
        items, _ = self.list_all("/subscriptions?api-version=2022-12-01", other)
        self.assertEqual([s["subscriptionId"] for s in items], [SUB_C])
        # roles change at once
        self.control("PATCH", "/_sim/subscriptions/" + SUB_B, {"roles": {CLIENT: "Reader"}})
        self.assertEqual(self.arm("/subscriptions/%s/providers/Microsoft.Compute/virtualMachines?api-version=%s"
                                  % (SUB_B, COMPUTE), token).status, 200)

    # -- ARM: shapes -------------------------------------------------------------------------------

    def test_subscriptions_list(self):
        self.control("POST", "/_sim/config", {"page_size_subscriptions": 2})
        token = self.token()
        items, pages = self.list_all("/subscriptions?api-version=2022-12-01", token)
        self.assertEqual(len(pages), 2)
        # WIRE: the spec requires nextLink; the service sends none on the last page
        for i, (r, body) in enumerate(pages):
            self.assertValid("Subscriptions_List", body, skip_required=("nextLink",) if i == len(pages) - 1 else ())
            self.assertRegex(r.h("x-ms-ratelimit-remaining-tenant-reads"), r"^\d+$")
            self.assertEqual(r.h("Content-Type"), "application/json; charset=utf-8")
        self.assertEqual([(s["subscriptionId"], s["state"]) for s in items],
                         [(SUB_A, "Enabled"), (SUB_B, "Enabled"), (SUB_C, "Disabled")])
        self.assertEqual(items[0]["id"], "/subscriptions/" + SUB_A)
        self.assertEqual(items[0]["displayName"], "Production")

    def test_lists_pages_and_schemas(self):
        self.control("POST", "/_sim/config", {"page_size_vms": 5, "page_size_network": 4})
        token = self.token()
        base = "/subscriptions/%s/providers/" % SUB_A
        vms, pages = self.list_all(base + "Microsoft.Compute/virtualMachines?api-version=" + COMPUTE, token)
        self.assertEqual((len(vms), len(pages)), (12, 3))
        for r, body in pages:
            self.assertValid("VirtualMachines_ListAll", body)
            self.assertRegex(r.h("x-ms-ratelimit-remaining-subscription-reads"), r"^\d+$")
            self.assertIsNotNone(r.h("x-ms-request-id"))
            self.assertIsNone(r.h("Server"))
        self.assertIn("$skiptoken=", pages[0][1]["nextLink"])
        self.assertIn("api-version=" + COMPUTE, pages[0][1]["nextLink"])
        self.assertNotIn("nextLink", pages[-1][1])
        statuses, spages = self.list_all(base + "Microsoft.Compute/virtualMachines?api-version=%s&statusOnly=true"
                                         % COMPUTE, token)
        for _, body in spages:
            self.assertValid("VirtualMachines_ListAll", body)
        self.assertIn("statusOnly=true", spages[0][1]["nextLink"])
        self.assertEqual([s["id"] for s in statuses], [v["id"] for v in vms])
        codes = {s["id"]: [c["code"] for c in s["properties"]["instanceView"]["statuses"]] for s in statuses}
        view = {v["external_id"]: v for v in self.control("GET", "/_sim/subscriptions/%s/vms" % SUB_A)["vms"]}
        for vid, c in codes.items():
            self.assertEqual(c, ["ProvisioningState/succeeded", "PowerState/" + view[vid.lower()]["power_state"]])
        nics, npages = self.list_all(base + "Microsoft.Network/networkInterfaces?api-version=" + NETWORK, token)
        for _, body in npages:
            self.assertValid("NetworkInterfaces_ListAll", body)
        pips, ppages = self.list_all(base + "Microsoft.Network/publicIPAddresses?api-version=" + NETWORK, token)
        for _, body in ppages:
            self.assertValid("PublicIPAddresses_ListAll", body)
        # the join a client makes: VM -> primary NIC -> public IP, ids case-insensitive
        nic_by_id = {n["id"].lower(): n for n in nics}
        pip_by_id = {p["id"].lower(): p for p in pips}
        joined = 0
        for vm in vms:
            ref = [n for n in vm["properties"]["networkProfile"]["networkInterfaces"] if n["properties"]["primary"]][0]
            nic = nic_by_id[ref["id"].lower()]
            self.assertEqual(nic["properties"]["virtualMachine"]["id"].lower(), vm["id"].lower())
            config = nic["properties"]["ipConfigurations"][0]["properties"]
            v = view[vm["id"].lower()]
            self.assertEqual(config["privateIPAddress"], v["private_ip"])
            pip = config.get("publicIPAddress")
            address = pip_by_id[pip["id"].lower()]["properties"].get("ipAddress") if pip else None
            self.assertEqual(address, v["public_ip"])
            joined += 1
        self.assertEqual(joined, 12)
        # references carry the resource group upper-cased, as ARM's often do
        self.assertTrue(any(n["properties"]["virtualMachine"]["id"] != n["properties"]["virtualMachine"]["id"].lower()
                            and "RG-" in n["properties"]["virtualMachine"]["id"] for n in nics))
        # a deallocated VM's Dynamic public IP has no address
        dyn = [p for p in pips if p["properties"]["publicIPAllocationMethod"] == "Dynamic"]
        self.assertTrue(dyn)
        for p in dyn:
            name = p["name"][:-3].lower()
            state = [v for v in view.values() if v["name"].lower() == name][0]["power_state"]
            self.assertEqual("ipAddress" in p["properties"], state != "deallocated")

    def test_vm_changes(self):
        token = self.token()
        path = "/subscriptions/%s/providers/Microsoft.Compute/virtualMachines?api-version=%s" % (SUB_A, COMPUTE)
        name = self.control("GET", "/_sim/subscriptions/%s/vms" % SUB_A)["vms"][0]["name"]
        self.control("PATCH", "/_sim/subscriptions/%s/vms/%s" % (SUB_A, name), {"size": "Standard_E2s_v3"})
        vms, _ = self.list_all(path, token)
        self.assertEqual([v for v in vms if v["name"] == name][0]["properties"]["hardwareProfile"]["vmSize"],
                         "Standard_E2s_v3")
        self.control("DELETE", "/_sim/subscriptions/%s/vms/%s" % (SUB_A, name))
        vms, _ = self.list_all(path, token)
        self.assertNotIn(name, [v["name"] for v in vms])
        self.assertEqual(len(vms), 11)

    # -- throttling ----------------------------------------------------------------------------

    def test_token_bucket_and_429(self):
        self.control("POST", "/_sim/config", {"read_bucket_size": 3, "read_refill_per_s": 0.5})
        token = self.token()
        path = "/subscriptions/%s/providers/Microsoft.Network/networkInterfaces?api-version=%s" % (SUB_A, NETWORK)
        left = [self.arm(path, token).h("x-ms-ratelimit-remaining-subscription-reads") for _ in range(3)]
        self.assertEqual(left, ["2", "1", "0"])
        r = self.arm(path, token)
        self.assertCloudError(r, 429, "SubscriptionRequestsThrottled", "network")
        self.assertRegex(r.h("Retry-After"), r"^[1-9]\d*$")
        self.assertIn("https://aka.ms/arm-throttling", r.json()["error"]["message"])
        time.sleep(int(r.h("Retry-After")))
        self.assertEqual(self.arm(path, token).status, 200)
        self.assertEqual(self.control("GET", "/_sim/stats")["throttled"], 1)

    # -- faults --------------------------------------------------------------------------------

    def test_faults(self):
        token = self.token()
        self.control("POST", "/_sim/config", {"page_size_vms": 5})
        base = "/subscriptions/%s/providers/Microsoft.Compute/virtualMachines?api-version=%s" % (SUB_A, COMPUTE)
        self.control("POST", "/_sim/faults", [{"kind": "status", "status": 429, "retry_after": 3, "list": "vms",
                                              "page": 2}])
        r1 = self.arm(base, token)
        nxt = r1.json()["nextLink"][len(self.origin):]
        r = self.arm(nxt, token)
        self.assertCloudError(r, 429, "SubscriptionRequestsThrottled")
        self.assertEqual(r.h("Retry-After"), "3")
        self.assertEqual(self.arm(nxt, token).status, 200)
        # another origin in nextLink
        self.control("POST", "/_sim/faults", [{"kind": "foreign_next", "next_url": "https://127.0.0.2:1/x",
                                              "subscription": SUB_A, "list": "nics"}])
        r = self.arm("/subscriptions/%s/providers/Microsoft.Network/networkInterfaces?api-version=%s"
                     % (SUB_A, NETWORK), token)
        self.assertEqual(r.json()["nextLink"], "https://127.0.0.2:1/x")
        # a broken VM on a page
        self.control("POST", "/_sim/faults", [{"kind": "bad_vm", "field": "id", "index": 1}])
        r = self.arm(base, token)
        self.assertNotIn("id", r.json()["value"][1])
        self.assertIn("id", r.json()["value"][0])
        # an expired token, once
        self.control("POST", "/_sim/faults", [{"kind": "expire_token", "list": "vm_status"}])
        self.assertCloudError(self.arm(base + "&statusOnly=true", token), 401, "ExpiredAuthenticationToken")
        self.assertEqual(self.arm(base + "&statusOnly=true", token).status, 200)
        # generic faults: malformed, truncated
        self.control("POST", "/_sim/faults", [{"kind": "malformed", "list": "vms"}])
        r = self.arm(base, token)
        self.assertEqual(r.status, 200)
        self.assertRaises(ValueError, json.loads, r.body)
        self.control("POST", "/_sim/faults", [{"kind": "status", "status": 503, "list": "token"}])
        r = self.token_request({"client_id": CLIENT, "client_secret": SECRET, "grant_type": "client_credentials",
                                "scope": "https://management.azure.com/.default"})
        self.assertEqual(r.status, 503)
        self.assertEqual(r.json()["error_codes"], [50000])
        # bad rules are refused
        r = self.request("/_sim/faults", "POST", json.dumps([{"kind": "foreign_next"}]).encode(),
                         {"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)
        r = self.request("/_sim/faults", "POST", json.dumps([{"kind": "status", "status": 500, "list": "disks"}]).encode(),
                         {"Content-Type": "application/json"})
        self.assertEqual(r.status, 400)

    def test_log_entries(self):
        token = self.token()
        self.control("DELETE", "/_sim/log")
        self.arm("/subscriptions/%s/providers/Microsoft.Compute/virtualMachines?api-version=%s&statusOnly=true"
                 % (SUB_A, COMPUTE), token)
        e = self.log()[-1]
        self.assertEqual((e["list"], e["subscription"], e["page"], e["auth"], e["status"]),
                         ("vm_status", SUB_A, 1, "valid", 200))
        self.assertIsInstance(e["token_serial"], int)
        self.assertIsInstance(e["remaining_reads"], int)
        stats = self.control("GET", "/_sim/stats")
        self.assertEqual(stats["requests_by_list"].get("vm_status"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
