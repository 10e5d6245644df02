#!/usr/bin/python3
"""Self-test of the AWS STS/EC2 simulator (aws_sim.py) and its SigV4 verifier (aws_sigv4.py).

Run:  /usr/bin/python3 test/sim/test_aws_sim.py

Part one runs the verifier on every header-signing case of the AWS SigV4 test suite vendored in
vendor/aws-sigv4-test-suite/ (see SOURCE there), and checks this file's own client-side signer
against the same cases.  The signer below shares no code with aws_sigv4.py, so the simulator is
exercised by an independent implementation.

Part two makes a throwaway CA with make_test_ca.sh in a temporary directory, starts the
simulator on a free port, and drives the whole chain over HTTPS: template applied, hop 1
(platform user -> discovery role), hop 2 (discovery session -> customer role, with the external
id), DescribeRegions and paginated DescribeInstances, then the failure modes and every fault kind;
then DescribeVpcs, RDS DescribeDBInstances, S3 ListBuckets and GetBucketLocation and Lambda
ListFunctions, with their shapes, pages, errors and throttling answers, and the IAM evaluation of
the applied template's policies.
"""

import datetime
import hashlib
import hmac
import http.client
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
import urllib.parse
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "aws_sim.py")
MAKE_CA = os.path.join(HERE, "make_test_ca.sh")
VECTORS = os.path.join(HERE, "vendor", "aws-sigv4-test-suite", "v4")

sys.path.insert(0, HERE)
import aws_services  # noqa: E402  (the shapes of RDS, S3 and Lambda)
import aws_sigv4  # noqa: E402  (the verifier under test)

EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
NS = {"ec2": EC2_NS, "sts": STS_NS}

CALLER = ("AKIASIMULATORCALLER2", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSIMCALLER1", None)
OTHER_USER = ("AKIASIMULATOROTHER23", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSIMOTHER22", None)
DISCOVERY_ARN = "arn:aws:iam::111122223333:role/AnzenDiscoveryRole"
ROLE_NAME = "AnzenCustomerDiscoveryRole"
CUSTOMER = "444455556666"
CUSTOMER2 = "777788889999"
EXTERNAL_ID = "Zq7RkP2mXw9LbT4nVc8HsY3dFg6JaE1uQo5KiM0r"  # 40 alphanumerics, like _mint_external_id()
SIG_MSG = ("The request signature we calculated does not match the signature you provided. "
           "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")


def make_template(external_id=EXTERNAL_ID, principal=DISCOVERY_ARN, role_name=ROLE_NAME):
    """The shape cloudconn._aws_cloudformation_template() returns (sql/cloudconn--0.1.0.sql)."""
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": 'Read-only discovery role for the cloudconn connector "prod" (id 7).',
        "Parameters": {"ExternalId": {
            "Type": "String", "Default": external_id,
            "Description": "External id minted for this connector; the role can only be assumed with it.",
            "MinLength": 2, "MaxLength": 1224, "AllowedPattern": "[\\w+=,.@:/-]*"}},
        "Resources": {"CustomerDiscoveryRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": role_name,
                "Description": "Read-only role assumed by the cloudconn discovery role to inventory this account.",
                "MaxSessionDuration": 3600,
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": {"Ref": "ExternalId"}}}}]},
                "ManagedPolicyArns": ["arn:aws:iam::aws:policy/SecurityAudit",
                                      "arn:aws:iam::aws:policy/job-function/ViewOnlyAccess"]}}},
        "Outputs": {"RoleArn": {"Description": "ARN of the role; cloudconn assumes it with the external id above.",
                                "Value": {"Fn::GetAtt": ["CustomerDiscoveryRole", "Arn"]}}},
    }


# --------------------------------------------------------------------------------------------
# A client-side SigV4 signer, written apart from aws_sigv4.py
# --------------------------------------------------------------------------------------------

def _q(s, safe="-_.~"):
    return urllib.parse.quote(s, safe=safe)


def _norm(path):
    out = []
    for part in path.split("/"):
        if part == "..":
            out = out[:-1]
        elif part not in ("", "."):
            out.append(part)
    res = "/" + "/".join(out)
    if path.rstrip(".").endswith("/") and len(out):
        res += "/"
    return res


def client_sign(method, path, query, headers, body, access_key, secret, region, service, when,
                token=None, token_signed=True, sign_body=False, normalize=True):
    """Returns the headers to add (X-Amz-Date, X-Amz-Security-Token, x-amz-content-sha256,
    Authorization) and the signature.  `headers` is [(name, value)] as the request will carry
    them; every one of them is signed."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    add = [("X-Amz-Date", amz_date)]
    if token and token_signed:
        add.append(("X-Amz-Security-Token", token))
    body_hash = hashlib.sha256(body).hexdigest()
    if sign_body:
        add.append(("x-amz-content-sha256", body_hash))
    grouped = {}
    for name, value in list(headers) + add:
        grouped.setdefault(name.lower(), []).append(" ".join(value.split()))
    names = sorted(grouped)
    pairs = []
    for item in filter(None, query.split("&")):
        k, _, v = item.partition("=")
        pairs.append((_q(urllib.parse.unquote(k)), _q(urllib.parse.unquote(v))))
    creq = "\n".join([
        method,
        _q(_norm(path) if normalize else path, safe="/-_.~"),
        "&".join("%s=%s" % kv for kv in sorted(pairs)),
        "".join("%s:%s\n" % (n, ",".join(grouped[n])) for n in names),
        ";".join(names),
        body_hash])
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    to_sign = "AWS4-HMAC-SHA256\n%s\n%s\n%s" % (amz_date, scope, hashlib.sha256(creq.encode()).hexdigest())
    key = ("AWS4" + secret).encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if token and not token_signed:
        add.append(("X-Amz-Security-Token", token))
    add.append(("Authorization", "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s"
                % (access_key, scope, ";".join(names), sig)))
    return add, sig


# --------------------------------------------------------------------------------------------
# Part one: the SigV4 test suite
# --------------------------------------------------------------------------------------------

def read_raw_request(path):
    """Parses a test-suite request file: request line, headers (continuation lines that start
    with white space belong to the header before), blank line, body."""
    with open(path, "rb") as f:
        text = f.read().decode("utf-8")
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    first = lines[0].split(" ")
    method, target = first[0], " ".join(first[1:-1])
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + "\n" + line)
        elif line:
            name, _, value = line.partition(":")
            headers.append((name, value))
    path, _, query = target.partition("?")
    return method, path, query, headers, body.encode("utf-8")


def vector_cases():
    return sorted(d for d in os.listdir(VECTORS) if os.path.isdir(os.path.join(VECTORS, d)))


def vector(case, name):
    with open(os.path.join(VECTORS, case, name), "rb") as f:
        return f.read().decode("utf-8")


class SigV4SuiteTest(unittest.TestCase):
    """Every header-signing case of the suite applies to a verifier: the GET and POST cases,
    query-string ordering and encoding, header folding, trimming, duplicates and ordering, path
    normalisation (and its absence, for normalize=false), session tokens signed or added after
    signing, and signed form bodies."""

    def test_cases_present(self):
        cases = vector_cases()
        self.assertEqual(len(cases), 38, cases)
        for c in cases:
            for f in ("context.json", "request.txt", "header-signed-request.txt", "header-canonical-request.txt",
                      "header-string-to-sign.txt", "header-signature.txt"):
                self.assertTrue(os.path.isfile(os.path.join(VECTORS, c, f)), (c, f))

    def test_verifier_reproduces_every_header_case(self):
        for case in vector_cases():
            with self.subTest(case=case):
                ctx = json.loads(vector(case, "context.json"))
                method, path, query, headers, body = read_raw_request(os.path.join(VECTORS, case, "header-signed-request.txt"))
                auth = aws_sigv4.parse_authorization(headers)
                self.assertEqual(auth.access_key_id, ctx["credentials"]["access_key_id"])
                self.assertEqual((auth.region, auth.service), (ctx["region"], ctx["service"]))
                self.assertIsNone(aws_sigv4.check_scope(auth))
                when = datetime.datetime.strptime(ctx["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
                self.assertIsNone(aws_sigv4.clock_skew(auth, when, 300))
                result = aws_sigv4.verify(method, path, query, headers, body, auth,
                                          ctx["credentials"]["secret_access_key"], normalize=ctx["normalize"])
                self.assertEqual(result.canonical_request, vector(case, "header-canonical-request.txt"))
                self.assertEqual(result.string_to_sign, vector(case, "header-string-to-sign.txt"))
                self.assertEqual(result.expected_signature, vector(case, "header-signature.txt").strip())
                self.assertTrue(result.valid)

    def test_verifier_rejects_tampering(self):
        for case in vector_cases():
            with self.subTest(case=case):
                ctx = json.loads(vector(case, "context.json"))
                secret = ctx["credentials"]["secret_access_key"]
                method, path, query, headers, body = read_raw_request(os.path.join(VECTORS, case, "header-signed-request.txt"))
                auth = aws_sigv4.parse_authorization(headers)
                verify = lambda h=headers, a=auth, s=secret, b=body, q=query, m=method: aws_sigv4.verify(
                    m, path, q, h, b, a, s, normalize=ctx["normalize"]).valid
                self.assertTrue(verify())
                self.assertFalse(verify(s=secret[:-1] + ("A" if secret[-1] != "A" else "B")))
                bad = aws_sigv4.parse_authorization(headers)
                bad.signature = auth.signature[:-1] + ("0" if auth.signature[-1] != "0" else "1")
                self.assertFalse(verify(a=bad))
                self.assertFalse(verify(m="PUT"))
                self.assertFalse(verify(q=(query + "&extra=1") if query else "extra=1"))
                changed = [(n, v + "x") if n.lower() == "host" else (n, v) for n, v in headers]
                self.assertFalse(verify(h=changed))
                if body:
                    self.assertFalse(verify(b=body + b"&x=1"))
                # A clock 20 minutes off is refused in both directions.
                when = datetime.datetime.strptime(ctx["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
                self.assertEqual(aws_sigv4.clock_skew(auth, when + datetime.timedelta(minutes=20), 900)[0], "expired")
                self.assertEqual(aws_sigv4.clock_skew(auth, when - datetime.timedelta(minutes=20), 900)[0], "not_yet")

    def test_client_signer_matches_every_header_case(self):
        for case in vector_cases():
            with self.subTest(case=case):
                ctx = json.loads(vector(case, "context.json"))
                method, path, query, headers, body = read_raw_request(os.path.join(VECTORS, case, "request.txt"))
                c = ctx["credentials"]
                when = datetime.datetime.strptime(ctx["timestamp"], "%Y-%m-%dT%H:%M:%SZ")
                add, sig = client_sign(method, path, query, headers, body, c["access_key_id"], c["secret_access_key"],
                                       ctx["region"], ctx["service"], when, token=c.get("token"),
                                       token_signed=not ctx.get("omit_session_token", False),
                                       sign_body=ctx["sign_body"], normalize=ctx["normalize"])
                self.assertEqual(sig, vector(case, "header-signature.txt").strip())
                _, _, _, expected_headers, _ = read_raw_request(os.path.join(VECTORS, case, "header-signed-request.txt"))
                self.assertEqual(dict(add)["Authorization"], dict(expected_headers)["Authorization"])

    @unittest.skip("the query-* (presigned URL) variants of all 38 cases are not vendored: cloudconn signs "
                   "with the Authorization header and the simulator accepts nothing else")
    def test_presigned_query_variants(self):
        pass


# --------------------------------------------------------------------------------------------
# Part two: the simulator
# --------------------------------------------------------------------------------------------

class Resp:
    def __init__(self, status, headers, body, sent_signature=None, sent_authorization=None):
        self.status, self.headers, self.body = status, headers, body
        self.sent_signature, self.sent_authorization = sent_signature, sent_authorization

    def h(self, name):
        return self.headers.get(name)

    def xml(self):
        return ET.fromstring(self.body)


def start_sim(tmp, ca_dir, *extra, name="aws"):
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
        cls.tmp = tempfile.mkdtemp(prefix="awssim-test-")
        cls.ca = os.path.join(cls.tmp, "ca")
        subprocess.run(["bash", MAKE_CA, cls.ca], check=True)
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.ca, "ca.crt"))
        cls.log_file = os.path.join(cls.tmp, "requests.jsonl")
        cls.proc, cls.port = start_sim(cls.tmp, cls.ca, "--log", cls.log_file)
        cls.host = "127.0.0.1:%d" % cls.port

    @classmethod
    def tearDownClass(cls):
        stop_sim(cls.proc)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.control("POST", "/_sim/reset")
        self.sent = []  # every signature and Authorization value sent, to search the log for

    # -- helpers -------------------------------------------------------------------------------

    def raw(self, method, path, body=b"", headers=None, port=None, timeout=20):
        conn = http.client.HTTPSConnection("127.0.0.1", port or self.port, context=self.ctx, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Resp(r.status, r.headers, r.read())
        finally:
            conn.close()

    def control(self, method, path, body=None, expect_ok=True):
        data = json.dumps(body).encode() if body is not None else b""
        r = self.raw(method, path, data, {"Content-Type": "application/json"} if body is not None else {})
        if expect_ok:
            self.assertLess(r.status, 300, "%s %s -> %d %r" % (method, path, r.status, r.body))
        return json.loads(r.body) if r.body else None

    def call(self, service, params, creds, region="us-east-1", method="POST", when=None, tamper=None,
             extra_headers=None, port=None, host=None):
        """A signed Query API request.  `creds` is (key, secret, token); None sends it unsigned.
        `tamper` may change the request after signing: "signature", "body", "drop-token"."""
        body = "&".join("%s=%s" % (_q(k), _q(str(v))) for k, v in params.items()).encode()
        path, query = "/", ""
        headers = [("Host", host or self.host)]
        if method == "GET":
            query, body = body.decode(), b""
            path = "/?" + query
        else:
            headers.append(("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"))
        headers += list(extra_headers or [])
        sig = None
        if creds is not None:
            key, secret, token = creds
            add, sig = client_sign(method, "/", query, headers, body, key, secret, region, service,
                                   when or datetime.datetime.utcnow(), token=token)
            headers += add
            self.sent.append(sig)
            self.sent.append(dict(add)["Authorization"])
        if tamper == "signature":
            headers = [(n, v[:-1] + ("0" if v[-1] != "0" else "1")) if n == "Authorization" else (n, v) for n, v in headers]
        elif tamper == "body":
            body = body + b"&Extra=1"
        elif tamper == "drop-token":
            headers = [(n, v) for n, v in headers if n != "X-Amz-Security-Token"]
        conn = http.client.HTTPSConnection("127.0.0.1", port or self.port, context=self.ctx, timeout=30)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for n, v in headers:
                conn.putheader(n, v)
            if method != "GET":
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if method != "GET" else None)
            r = conn.getresponse()
            return Resp(r.status, r.headers, r.read(), sig, dict(headers).get("Authorization"))
        finally:
            conn.close()

    def sts(self, params, creds, **kw):
        return self.call("sts", dict(params, Version="2011-06-15"), creds, **kw)

    def ec2(self, action, creds, region="us-east-1", **params):
        kw = {k: params.pop(k) for k in ("method", "when", "tamper", "port") if k in params}
        return self.call("ec2", dict({"Action": action, "Version": "2016-11-15"}, **params), creds, region=region, **kw)

    def assume(self, creds, role_arn, session="cloudconn-test", external_id=None, duration=None, **kw):
        p = {"Action": "AssumeRole", "RoleArn": role_arn, "RoleSessionName": session}
        if external_id is not None:
            p["ExternalId"] = external_id
        if duration is not None:
            p["DurationSeconds"] = duration
        return self.sts(p, creds, **kw)

    def creds_of(self, r):
        self.assertEqual(r.status, 200, r.body)
        c = r.xml().find("sts:AssumeRoleResult/sts:Credentials", NS)
        return (c.find("sts:AccessKeyId", NS).text, c.find("sts:SecretAccessKey", NS).text,
                c.find("sts:SessionToken", NS).text)

    def apply(self, account=CUSTOMER, external_id=EXTERNAL_ID, **kw):
        return self.control("POST", "/_sim/accounts/%s/apply-template" % account, make_template(external_id, **kw))

    def hop1(self):
        return self.creds_of(self.assume(CALLER, DISCOVERY_ARN, session="cloudconn-discovery"))

    def chain(self, account=CUSTOMER, external_id=EXTERNAL_ID):
        disc = self.hop1()
        r = self.assume(disc, "arn:aws:iam::%s:role/%s" % (account, ROLE_NAME), session="cloudconn-7", external_id=external_id)
        return disc, self.creds_of(r)

    def faults(self, *rules):
        self.control("POST", "/_sim/faults", list(rules))

    def log(self):
        return self.control("GET", "/_sim/log")

    def assertStsError(self, r, status, code, message=None, kind="Sender"):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.h("Content-Type"), "text/xml")
        rid = r.h("x-amzn-RequestId")
        self.assertRegex(rid, r"^[0-9a-f-]{36}$")
        root = r.xml()
        self.assertEqual(root.tag, "{%s}ErrorResponse" % STS_NS)
        self.assertEqual([c.tag.split("}")[1] for c in root], ["Error", "RequestId"])
        err = root.find("sts:Error", NS)
        self.assertEqual([c.tag.split("}")[1] for c in err], ["Type", "Code", "Message"])
        self.assertEqual(err.find("sts:Type", NS).text, kind)
        self.assertEqual(err.find("sts:Code", NS).text, code)
        self.assertEqual(root.find("sts:RequestId", NS).text, rid)
        if message is not None:
            self.assertEqual(err.find("sts:Message", NS).text, message)
            self.assertEqual(r.body.decode(), (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">\n  <Error>\n    <Type>%s</Type>\n'
                '    <Code>%s</Code>\n    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n'
                '</ErrorResponse>\n') % (kind, code, message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"), rid))
        return err.find("sts:Message", NS).text

    def assertEc2Error(self, r, status, code, message=None):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.h("Content-Type"), "text/xml;charset=UTF-8")
        self.assertEqual(r.h("Server"), "AmazonEC2")
        rid = r.h("x-amzn-RequestId")
        root = r.xml()
        self.assertEqual(root.tag, "Response")
        errs = root.findall("Errors/Error")
        self.assertEqual(len(errs), 1)
        self.assertEqual(errs[0].find("Code").text, code)
        self.assertEqual(root.find("RequestID").text, rid)
        if message is not None:
            self.assertEqual(r.body.decode(), '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s'
                             '</Code><Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>'
                             % (code, message, rid))
        return errs[0].find("Message").text

    def instances(self, creds, region="us-east-1", max_results=None, token=None, **kw):
        params = {}
        if max_results is not None:
            params["MaxResults"] = max_results
        if token is not None:
            params["NextToken"] = token
        params.update(kw)
        r = self.ec2("DescribeInstances", creds, region=region, **params)
        return r

    def page_of(self, r):
        self.assertEqual(r.status, 200, r.body)
        root = r.xml()
        self.assertEqual(root.tag, "{%s}DescribeInstancesResponse" % EC2_NS)
        self.assertEqual(root[0].tag, "{%s}requestId" % EC2_NS)
        self.assertEqual(root[0].text, r.h("x-amzn-RequestId"))
        ids = []
        for res in root.findall("ec2:reservationSet/ec2:item", NS):
            self.assertEqual([c.tag.split("}")[1] for c in res], ["reservationId", "ownerId", "groupSet", "instancesSet"])
            self.assertRegex(res.find("ec2:reservationId", NS).text, r"^r-[0-9a-f]{17}$")
            for inst in res.findall("ec2:instancesSet/ec2:item", NS):
                ids.append(inst.find("ec2:instanceId", NS).text)
        tok = root.find("ec2:nextToken", NS)
        return ids, (tok.text if tok is not None else None), root

    # -- the chain -----------------------------------------------------------------------------

    def test_full_chain_and_pagination(self):
        applied = self.apply()
        self.assertEqual(applied["role_arn"], "arn:aws:iam::%s:role/%s" % (CUSTOMER, ROLE_NAME))
        self.assertNotIn(EXTERNAL_ID, json.dumps(applied))

        # hop 1: the platform user assumes the discovery role
        r = self.assume(CALLER, DISCOVERY_ARN, session="cloudconn-discovery", duration=3600)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.h("Content-Type"), "text/xml")
        root = r.xml()
        self.assertEqual(root.tag, "{%s}AssumeRoleResponse" % STS_NS)
        self.assertEqual([c.tag.split("}")[1] for c in root], ["AssumeRoleResult", "ResponseMetadata"])
        res = root.find("sts:AssumeRoleResult", NS)
        self.assertEqual([c.tag.split("}")[1] for c in res], ["AssumedRoleUser", "Credentials"])
        user = res.find("sts:AssumedRoleUser", NS)
        self.assertEqual(user.find("sts:Arn", NS).text,
                         "arn:aws:sts::111122223333:assumed-role/AnzenDiscoveryRole/cloudconn-discovery")
        self.assertRegex(user.find("sts:AssumedRoleId", NS).text, r"^AROA[A-Z2-7]{17}:cloudconn-discovery$")
        c = res.find("sts:Credentials", NS)
        self.assertEqual([x.tag.split("}")[1] for x in c], ["AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"])
        self.assertRegex(c.find("sts:AccessKeyId", NS).text, r"^ASIA[A-Z2-7]{16}$")
        self.assertEqual(len(c.find("sts:SecretAccessKey", NS).text), 40)
        self.assertGreater(len(c.find("sts:SessionToken", NS).text), 300)
        exp = datetime.datetime.strptime(c.find("sts:Expiration", NS).text, "%Y-%m-%dT%H:%M:%SZ")
        self.assertAlmostEqual((exp - datetime.datetime.utcnow()).total_seconds(), 3600, delta=10)
        self.assertEqual(root.find("sts:ResponseMetadata/sts:RequestId", NS).text, r.h("x-amzn-RequestId"))
        disc = self.creds_of(r)

        # hop 2: the discovery session assumes the customer role with the external id
        role_arn = "arn:aws:iam::%s:role/%s" % (CUSTOMER, ROLE_NAME)
        r = self.assume(disc, role_arn, session="cloudconn-7", external_id=EXTERNAL_ID)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.xml().find("sts:AssumeRoleResult/sts:AssumedRoleUser/sts:Arn", NS).text,
                         "arn:aws:sts::%s:assumed-role/%s/cloudconn-7" % (CUSTOMER, ROLE_NAME))
        cust = self.creds_of(r)

        # GetCallerIdentity works for every principal
        r = self.sts({"Action": "GetCallerIdentity"}, cust)
        self.assertEqual(r.status, 200, r.body)
        gci = r.xml().find("sts:GetCallerIdentityResult", NS)
        self.assertEqual(gci.find("sts:Account", NS).text, CUSTOMER)

        # DescribeRegions, with the region taken from the credential scope
        r = self.ec2("DescribeRegions", cust, region="eu-west-1")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.h("Content-Type"), "text/xml;charset=UTF-8")
        self.assertTrue(r.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<DescribeRegionsResponse '
                                          b'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'))
        regions = r.xml().findall("ec2:regionInfo/ec2:item", NS)
        self.assertEqual(len(regions), 17)
        self.assertEqual([c.tag.split("}")[1] for c in regions[0]], ["regionName", "regionEndpoint", "optInStatus"])
        names = [x.find("ec2:regionName", NS).text for x in regions]
        self.assertIn("us-east-1", names)
        self.assertEqual({x.find("ec2:optInStatus", NS).text for x in regions}, {"opt-in-not-required"})
        us = [x for x in regions if x.find("ec2:regionName", NS).text == "us-east-1"][0]
        self.assertEqual(us.find("ec2:regionEndpoint", NS).text, "ec2.us-east-1.amazonaws.com")
        r = self.ec2("DescribeRegions", cust, AllRegions="true")
        self.assertEqual(len(r.xml().findall("ec2:regionInfo/ec2:item", NS)), 29)

        # DescribeInstances over several pages
        gen = self.control("POST", "/_sim/accounts/%s/regions/us-east-1/instances/generate" % CUSTOMER,
                           {"count": 23, "seed": 5, "states": ["running", "running", "stopped", "terminated"]})
        expected = gen["instance_ids"]
        self.assertEqual(len(expected), 23)
        got, token, pages, sizes = [], None, 0, []
        while True:
            ids, token, root = self.page_of(self.instances(cust, max_results=5, token=token))
            got += ids
            sizes.append(len(ids))
            pages += 1
            if token is None:
                break
            self.assertRegex(token, r"^[A-Za-z0-9+/]+==$")
            self.assertTrue("+" in token and "/" in token)
        self.assertEqual(got, expected)
        self.assertEqual(sizes, [5, 5, 5, 5, 3])
        # another region of the same account is empty; a full last page still hands out a token
        self.assertEqual(self.page_of(self.instances(cust, region="eu-west-1"))[:2], ([], None))
        self.control("POST", "/_sim/accounts/%s/regions/eu-west-1/instances/generate" % CUSTOMER, {"count": 10, "seed": 1})
        ids1, tok, _ = self.page_of(self.instances(cust, region="eu-west-1", max_results=5))
        ids2, tok, _ = self.page_of(self.instances(cust, region="eu-west-1", max_results=5, token=tok))
        self.assertIsNotNone(tok)
        ids3, tok, root = self.page_of(self.instances(cust, region="eu-west-1", max_results=5, token=tok))
        self.assertEqual((len(ids1), len(ids2), ids3, tok), (5, 5, [], None))
        self.assertIn(b"<reservationSet/>", self.instances(cust, region="eu-west-1", max_results=5, token=self.page_of(
            self.instances(cust, region="eu-west-1", max_results=10))[1]).body)
        # without MaxResults: everything on one page
        self.assertEqual(len(self.page_of(self.instances(cust))[0]), 23)
        # the log tells the pages apart
        pages_logged = [e["page"] for e in self.log() if e["action"] == "DescribeInstances" and e["region"] == "us-east-1"][:5]
        self.assertEqual(pages_logged, [1, 2, 3, 4, 5])

    def test_instance_shape(self):
        self.apply()
        _, cust = self.chain()
        self.control("POST", "/_sim/accounts/%s/regions/eu-west-1/instances/generate" % CUSTOMER,
                     {"count": 12, "seed": 9, "states": ["running", "stopped", "terminated", "pending"]})
        _, _, root = self.page_of(self.instances(cust, region="eu-west-1"))
        items = root.findall("ec2:reservationSet/ec2:item/ec2:instancesSet/ec2:item", NS)
        self.assertEqual(len(items), 12)
        order = ["instanceId", "imageId", "instanceState", "privateDnsName", "dnsName", "reason", "keyName",
                 "amiLaunchIndex", "productCodes", "instanceType", "launchTime", "placement", "platform", "monitoring",
                 "subnetId", "vpcId", "privateIpAddress", "ipAddress", "sourceDestCheck", "groupSet", "stateReason",
                 "architecture", "rootDeviceType", "rootDeviceName", "blockDeviceMapping", "virtualizationType",
                 "clientToken", "tagSet", "hypervisor", "networkInterfaceSet", "ebsOptimized", "enaSupport",
                 "cpuOptions", "capacityReservationSpecification", "hibernationOptions", "enclaveOptions",
                 "metadataOptions", "maintenanceOptions", "currentInstanceBootMode", "platformDetails",
                 "usageOperation", "usageOperationUpdateTime", "privateDnsNameOptions"]
        g = lambda e, p: (e.find(p, NS).text if e.find(p, NS) is not None else None)
        seen_public = seen_untagged = False
        for n, it in enumerate(items):
            tags = [c.tag.split("}")[1] for c in it]
            self.assertEqual(tags, [t for t in order if t in tags], tags)  # API order, nothing unknown
            state = g(it, "ec2:instanceState/ec2:name")
            code = int(g(it, "ec2:instanceState/ec2:code"))
            self.assertEqual(code, {"running": 16, "stopped": 80, "terminated": 48, "pending": 0}[state])
            self.assertEqual(state, ["running", "stopped", "terminated", "pending"][n % 4])
            self.assertRegex(g(it, "ec2:instanceId"), r"^i-0[0-9a-f]{16}$")
            self.assertRegex(g(it, "ec2:launchTime"), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertRegex(g(it, "ec2:placement/ec2:availabilityZone"), r"^eu-west-1[abc]$")
            self.assertIn(g(it, "ec2:platformDetails"), ("Linux/UNIX", "Windows", "Red Hat Enterprise Linux"))
            ip = g(it, "ec2:ipAddress")
            if state in ("stopped", "terminated"):
                self.assertIsNone(ip)
                self.assertIsNone(g(it, "ec2:dnsName"))  # <dnsName/>
                self.assertIn(b"User initiated", ET.tostring(it.find("ec2:reason", NS)))
            if state == "terminated":
                for t in ("subnetId", "vpcId", "privateIpAddress"):
                    self.assertNotIn(t, tags)
            else:
                self.assertRegex(g(it, "ec2:privateIpAddress"), r"^10\.\d+\.\d+\.\d+$")
                self.assertRegex(g(it, "ec2:privateDnsName"), r"^ip-10-\d+-\d+-\d+\.eu-west-1\.compute\.internal$")
                self.assertRegex(g(it, "ec2:subnetId"), r"^subnet-0[0-9a-f]{16}$")
                self.assertRegex(g(it, "ec2:vpcId"), r"^vpc-0[0-9a-f]{16}$")
            if ip:
                seen_public = True
                self.assertIn(state, ("running", "pending"))
                self.assertTrue(ip.startswith(("203.0.113.", "198.51.100.", "192.0.2.", "198.18.", "198.19.")), ip)
                self.assertEqual(g(it, "ec2:dnsName"), "ec2-%s.eu-west-1.compute.amazonaws.com" % ip.replace(".", "-"))
            if "tagSet" in tags:
                kv = {g(x, "ec2:key"): g(x, "ec2:value") for x in it.findall("ec2:tagSet/ec2:item", NS)}
                self.assertEqual(kv["Name"], "sim-eu-west-1-%04d" % (n + 1))
            else:
                seen_untagged = True
        self.assertTrue(seen_public and seen_untagged)
        # us-east-1 names
        self.control("POST", "/_sim/accounts/%s/regions/us-east-1/instances/generate" % CUSTOMER, {"count": 1, "seed": 1})
        _, _, root = self.page_of(self.instances(cust))
        it = root.find("ec2:reservationSet/ec2:item/ec2:instancesSet/ec2:item", NS)
        self.assertTrue(g(it, "ec2:privateDnsName").endswith(".ec2.internal"))
        self.assertTrue(g(it, "ec2:dnsName").endswith(".compute-1.amazonaws.com"))

    def test_generator_and_instance_control(self):
        base = "/_sim/accounts/%s/regions/us-west-2/instances" % CUSTOMER
        spec = {"count": 30, "seed": 3, "states": ["running", "terminated"]}
        a = self.control("POST", base + "/generate", spec)["instance_ids"]
        full_a = self.control("GET", base)["instances"]
        b = self.control("POST", base + "/generate", spec)["instance_ids"]
        self.assertEqual(a, b)
        self.assertEqual(full_a, self.control("GET", base)["instances"])
        self.assertNotEqual(a, self.control("POST", base + "/generate", dict(spec, seed=4))["instance_ids"])
        self.assertNotEqual(a, self.control("POST", "/_sim/accounts/%s/regions/us-west-2/instances/generate" % CUSTOMER2,
                                            spec)["instance_ids"])
        self.control("POST", base + "/generate", spec)
        # add, patch, delete between runs
        added = self.control("POST", base + "/add", {"tags": {"Name": "db-1", "env": "prod"}, "instanceType": "m5.large"})["instance"]
        self.assertEqual(added["instanceType"], "m5.large")
        self.assertEqual(added["tagSet"][0], {"key": "Name", "value": "db-1"})
        iid = added["instanceId"]
        patched = self.control("PATCH", base + "/" + iid, {"state": "stopped"})["instance"]
        self.assertEqual(patched["instanceState"], {"code": 80, "name": "stopped"})
        self.assertIsNone(patched["ipAddress"])
        again = self.control("PATCH", base + "/" + iid, {"state": "running", "tags": {"Name": "db-1-renamed"}})["instance"]
        self.assertIsNotNone(again["ipAddress"])
        self.assertEqual(again["tagSet"], [{"key": "Name", "value": "db-1-renamed"}])
        self.assertEqual(self.control("GET", base)["count"], 31)
        self.control("DELETE", base + "/" + iid)
        self.assertEqual(self.control("GET", base)["count"], 30)
        self.assertEqual(self.raw("DELETE", base + "/" + iid).status, 404)
        # verbatim replacement, odd shapes included
        self.control("POST", base, [{"instanceId": "i-0123456789abcdef0", "instanceState": {"code": 16, "name": "running"}}])
        self.apply()
        _, cust = self.chain()
        r = self.instances(cust, region="us-west-2")
        self.assertIn(b"<instanceId>i-0123456789abcdef0</instanceId>", r.body)
        self.assertNotIn(b"ipAddress", r.body)
        # bad specs are refused
        for bad in ({"count": -1}, {"count": 2, "states": ["exploded"]}, {"count": 1, "instance_types": ["x9.huge"]}):
            self.assertEqual(self.raw("POST", base + "/generate", json.dumps(bad).encode()).status, 400)
        self.assertEqual(self.raw("POST", "/_sim/accounts/%s/regions/mars-1/instances/generate" % CUSTOMER,
                                  b'{"count":1}').status, 400)

    # -- trust and authorisation ---------------------------------------------------------------

    def test_access_denied_cases(self):
        self.apply()
        role_arn = "arn:aws:iam::%s:role/%s" % (CUSTOMER, ROLE_NAME)
        disc = self.hop1()
        session = "arn:aws:sts::111122223333:assumed-role/AnzenDiscoveryRole/cloudconn-discovery"
        msg = "User: %s is not authorized to perform: sts:AssumeRole on resource: %s"
        # wrong external id, and none at all
        r = self.assume(disc, role_arn, external_id="Wrong" + EXTERNAL_ID[5:])
        self.assertStsError(r, 403, "AccessDenied", msg % (session, role_arn))
        self.assertStsError(self.assume(disc, role_arn), 403, "AccessDenied", msg % (session, role_arn))
        # no template applied for that account: the role does not exist
        other = "arn:aws:iam::%s:role/%s" % (CUSTOMER2, ROLE_NAME)
        self.assertStsError(self.assume(disc, other, external_id=EXTERNAL_ID), 403, "AccessDenied", msg % (session, other))
        # the right external id of another account's template does not open this one
        self.apply(account=CUSTOMER2, external_id="AnotherExternalId0000000000000000000000x")
        self.assertStsError(self.assume(disc, other, external_id=EXTERNAL_ID), 403, "AccessDenied", msg % (session, other))
        self.assertEqual(self.assume(disc, other, external_id="AnotherExternalId0000000000000000000000x").status, 200)
        # a template that trusts someone else
        self.apply(external_id=EXTERNAL_ID, principal="arn:aws:iam::999999999999:role/SomeoneElse")
        self.assertStsError(self.assume(disc, role_arn, external_id=EXTERNAL_ID), 403, "AccessDenied", msg % (session, role_arn))
        self.apply()
        # the discovery session may assume only roles with the configured name
        odd = "arn:aws:iam::%s:role/Admin" % CUSTOMER
        self.assertStsError(self.assume(disc, odd, external_id=EXTERNAL_ID), 403, "AccessDenied", msg % (session, odd))
        self.assertStsError(self.assume(disc, DISCOVERY_ARN), 403, "AccessDenied", msg % (session, DISCOVERY_ARN))
        # the platform user may assume only the discovery role
        user_arn = "arn:aws:iam::111122223333:user/cloudconn-platform"
        self.assertStsError(self.assume(CALLER, role_arn, external_id=EXTERNAL_ID), 403, "AccessDenied", msg % (user_arn, role_arn))
        # a user the discovery role does not trust
        self.assertStsError(self.assume(OTHER_USER, DISCOVERY_ARN), 403, "AccessDenied",
                            msg % ("arn:aws:iam::111122223333:user/cloudconn-unprivileged", DISCOVERY_ARN))
        # a customer session assumes nothing
        cust = self.creds_of(self.assume(disc, role_arn, session="s1", external_id=EXTERNAL_ID))
        self.assertStsError(self.assume(cust, role_arn, external_id=EXTERNAL_ID), 403, "AccessDenied",
                            msg % ("arn:aws:sts::%s:assumed-role/%s/s1" % (CUSTOMER, ROLE_NAME), role_arn))
        # the role disappears when its stack is deleted
        self.control("DELETE", "/_sim/accounts/%s/roles/%s" % (CUSTOMER, ROLE_NAME))
        self.assertStsError(self.assume(disc, role_arn, external_id=EXTERNAL_ID), 403, "AccessDenied")
        # the log: ExternalId presence and match, never the value
        hop2 = [e for e in self.log() if e["action"] == "AssumeRole" and e["principal_kind"] == "discovery"]
        self.assertEqual(hop2[0]["external_id_present"], True)
        self.assertEqual(hop2[0]["external_id_matches"], False)
        self.assertEqual(hop2[1]["external_id_present"], False)
        self.assertIsNone(hop2[1]["external_id_matches"])

    def test_ec2_needs_the_customer_role(self):
        self.apply()
        disc, cust = self.chain()
        for creds in (CALLER, disc):
            for action in ("DescribeRegions", "DescribeInstances"):
                self.assertEc2Error(self.ec2(action, creds), 403, "UnauthorizedOperation",
                                    "You are not authorized to perform this operation.")
        self.assertEqual(self.ec2("DescribeRegions", cust).status, 200)
        # a region that is not enabled for the account refuses the credentials
        self.control("POST", "/_sim/accounts/%s/regions" % CUSTOMER, {"enabled": ["us-east-1", "af-south-1"]})
        r = self.ec2("DescribeRegions", cust, region="af-south-1")
        self.assertEqual([(x.find("ec2:regionName", NS).text, x.find("ec2:optInStatus", NS).text)
                          for x in r.xml().findall("ec2:regionInfo/ec2:item", NS)],
                         [("us-east-1", "opt-in-not-required"), ("af-south-1", "opted-in")])
        self.assertEc2Error(self.ec2("DescribeInstances", cust, region="eu-west-1"), 401, "AuthFailure",
                            "AWS was not able to validate the provided access credentials")
        # unknown actions and versions
        self.assertEc2Error(self.ec2("RunInstances", cust), 400, "InvalidAction",
                            "The action RunInstances is not valid for this web service.")
        self.assertStsError(self.sts({"Action": "GetSessionToken"}, CALLER), 400, "InvalidAction",
                            "Could not find operation GetSessionToken for version 2011-06-15")
        r = self.call("sts", {"Action": "AssumeRole", "RoleArn": DISCOVERY_ARN, "RoleSessionName": "x1"}, CALLER)
        self.assertStsError(r, 400, "InvalidAction", "Could not find operation AssumeRole for version NO_VERSION_SPECIFIED")

    def test_duration_and_parameter_validation(self):
        self.apply()
        role_arn = "arn:aws:iam::%s:role/%s" % (CUSTOMER, ROLE_NAME)
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN, duration=899), 400, "ValidationError",
                            "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: "
                            "Member must have value greater than or equal to 900")
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN, duration=43201), 400, "ValidationError",
                            "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy constraint: "
                            "Member must have value less than or equal to 43200")
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN, duration=7200), 400, "ValidationError",
                            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
        disc = self.hop1()
        self.assertStsError(self.assume(disc, role_arn, external_id=EXTERNAL_ID, duration=3601), 400, "ValidationError",
                            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
        r = self.assume(disc, role_arn, external_id=EXTERNAL_ID, duration=900)
        exp = datetime.datetime.strptime(r.xml().find("sts:AssumeRoleResult/sts:Credentials/sts:Expiration", NS).text,
                                         "%Y-%m-%dT%H:%M:%SZ")
        self.assertAlmostEqual((exp - datetime.datetime.utcnow()).total_seconds(), 900, delta=10)
        self.assertStsError(self.sts({"Action": "AssumeRole", "RoleArn": DISCOVERY_ARN}, CALLER), 400, "ValidationError",
                            "1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: "
                            "Member must not be null")
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN, session="has space"), 400, "ValidationError",
                            "1 validation error detected: Value 'has space' at 'roleSessionName' failed to satisfy "
                            "constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*")
        msg = self.assertStsError(self.assume(disc, role_arn, external_id="bad value!"), 400, "ValidationError")
        self.assertNotIn("bad value!", msg)

    def test_template_as_text_and_parameter_override(self):
        text = json.dumps(make_template("DefaultValue00000000000000000000000000000"), indent=4)
        self.control("POST", "/_sim/accounts/%s/apply-template" % CUSTOMER,
                     {"template": text, "parameters": {"ExternalId": EXTERNAL_ID}})
        disc = self.hop1()
        role_arn = "arn:aws:iam::%s:role/%s" % (CUSTOMER, ROLE_NAME)
        self.assertEqual(self.assume(disc, role_arn, external_id=EXTERNAL_ID).status, 200)
        self.assertEqual(self.assume(disc, role_arn, external_id="DefaultValue00000000000000000000000000000").status, 403)
        view = self.control("GET", "/_sim/accounts/%s" % CUSTOMER)
        self.assertEqual(view["roles"][0]["trust"], [{"principals": [DISCOVERY_ARN], "external_id_required": True}])
        self.assertNotIn(EXTERNAL_ID, json.dumps(view))
        # templates that do not say what the trust check needs are refused
        broken = make_template()
        del broken["Resources"]["CustomerDiscoveryRole"]["Properties"]["AssumeRolePolicyDocument"]
        self.assertEqual(self.raw("POST", "/_sim/accounts/%s/apply-template" % CUSTOMER, json.dumps(broken).encode()).status, 400)
        broken = make_template()
        del broken["Parameters"]["ExternalId"]["Default"]
        self.assertEqual(self.raw("POST", "/_sim/accounts/%s/apply-template" % CUSTOMER, json.dumps(broken).encode()).status, 400)
        self.assertEqual(self.raw("POST", "/_sim/accounts/12345/apply-template", b"{}").status, 400)
        self.assertEqual(self.raw("POST", "/_sim/accounts/%s/apply-template" % CUSTOMER, b"{nope").status, 400)

    # -- signature, keys, clock, expiry ---------------------------------------------------------

    def test_signature_and_key_errors(self):
        self.apply()
        disc, cust = self.chain()
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN, tamper="signature"), 403, "SignatureDoesNotMatch", SIG_MSG)
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN, tamper="body"), 403, "SignatureDoesNotMatch", SIG_MSG)
        self.assertEc2Error(self.ec2("DescribeRegions", cust, tamper="signature"), 403, "SignatureDoesNotMatch", SIG_MSG)
        wrong_secret = (CALLER[0], CALLER[1][:-1] + "X", None)
        self.assertStsError(self.assume(wrong_secret, DISCOVERY_ARN), 403, "SignatureDoesNotMatch", SIG_MSG)
        unknown = ("AKIAUNKNOWNKEY234567", "x" * 40, None)
        self.assertStsError(self.assume(unknown, DISCOVERY_ARN), 403, "InvalidClientTokenId",
                            "The security token included in the request is invalid.")
        self.assertEc2Error(self.ec2("DescribeRegions", unknown), 401, "AuthFailure",
                            "AWS was not able to validate the provided access credentials")
        # a session key without its token, or with another session's token
        self.assertStsError(self.assume(disc, DISCOVERY_ARN, tamper="drop-token"), 403, "InvalidClientTokenId")
        self.assertEc2Error(self.ec2("DescribeRegions", cust, tamper="drop-token"), 401, "AuthFailure")
        self.assertEc2Error(self.ec2("DescribeRegions", (cust[0], cust[1], disc[2])), 401, "AuthFailure")
        # unsigned requests and broken Authorization headers
        r = self.call("sts", {"Action": "AssumeRole", "Version": "2011-06-15"}, None)
        self.assertStsError(r, 403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        self.assertEc2Error(self.call("ec2", {"Action": "DescribeRegions", "Version": "2016-11-15"}, None), 400,
                            "MissingParameter", "The request must contain the parameter AWSAccessKeyId")
        r = self.call("sts", {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, None,
                      extra_headers=[("Authorization", "AWS4-HMAC-SHA256 Credential=AKIASIMULATORCALLER2/x")])
        self.assertStsError(r, 400, "IncompleteSignature")
        # signed for the wrong service
        r = self.call("iam", {"Action": "AssumeRole", "Version": "2011-06-15"}, CALLER)
        self.assertStsError(r, 403, "SignatureDoesNotMatch", "Credential should be scoped to correct service: 'sts'. ")
        # GET with a query string works as well as POST
        r = self.ec2("DescribeRegions", cust, method="GET")
        self.assertEqual(r.status, 200, r.body)
        r = self.sts({"Action": "GetCallerIdentity"}, CALLER, method="GET")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.xml().find("sts:GetCallerIdentityResult/sts:Arn", NS).text,
                         "arn:aws:iam::111122223333:user/cloudconn-platform")
        log = self.log()
        bad = [e for e in log if e["error_code"] == "SignatureDoesNotMatch" and e["access_key_id"] == CALLER[0]]
        # tampered signature, tampered body, wrong secret; then a signature that is right for
        # the scope it names, but that scope is IAM's
        self.assertEqual([e["signature_valid"] for e in bad], [False, False, False, True])
        good = [e for e in log if e["status"] == 200]
        self.assertTrue(good and all(e["signature_valid"] is True for e in good))

    def test_clock_skew(self):
        self.apply()
        _, cust = self.chain()
        old = datetime.datetime.utcnow() - datetime.timedelta(minutes=20)
        r = self.assume(CALLER, DISCOVERY_ARN, when=old)
        msg = self.assertStsError(r, 403, "SignatureDoesNotMatch")
        self.assertRegex(msg, r"^Signature expired: %s is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 15 min\.\)$"
                         % old.strftime("%Y%m%dT%H%M%SZ"))
        self.assertEc2Error(self.ec2("DescribeInstances", cust, when=old), 400, "RequestExpired", "Request has expired.")
        future = datetime.datetime.utcnow() + datetime.timedelta(minutes=20)
        msg = self.assertStsError(self.assume(CALLER, DISCOVERY_ARN, when=future), 403, "SignatureDoesNotMatch")
        self.assertTrue(msg.startswith("Signature not yet current: "), msg)
        self.assertEc2Error(self.ec2("DescribeInstances", cust, when=future), 400, "RequestExpired")
        # a tighter window, and a server clock that is off instead of the client's
        self.control("POST", "/_sim/config", {"max_clock_skew_s": 300})
        six = datetime.datetime.utcnow() - datetime.timedelta(minutes=6)
        self.assertIn("- 5 min.)", self.assertStsError(self.assume(CALLER, DISCOVERY_ARN, when=six), 403, "SignatureDoesNotMatch"))
        self.control("POST", "/_sim/config", {"max_clock_skew_s": 900, "clock_offset_s": 1200})
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN), 403, "SignatureDoesNotMatch")
        self.control("POST", "/_sim/config", {"clock_offset_s": 0})
        self.assertEqual(self.assume(CALLER, DISCOVERY_ARN).status, 200)

    def test_expired_credentials(self):
        self.apply()
        role_arn = "arn:aws:iam::%s:role/%s" % (CUSTOMER, ROLE_NAME)
        self.control("POST", "/_sim/config", {"credential_lifetime_s": 1})
        disc, cust = self.chain()
        time.sleep(1.3)
        self.assertStsError(self.assume(disc, role_arn, external_id=EXTERNAL_ID), 403, "ExpiredToken",
                            "The security token included in the request is expired")
        self.assertEc2Error(self.ec2("DescribeInstances", cust), 400, "RequestExpired", "Request has expired.")
        # fresh credentials work again
        self.control("POST", "/_sim/config", {"credential_lifetime_s": None})
        _, cust = self.chain()
        self.assertEqual(self.ec2("DescribeInstances", cust).status, 200)
        # expiring on demand
        self.assertEqual(self.control("POST", "/_sim/credentials/expire", {"which": "customer"})["expired"], 1)
        self.assertEc2Error(self.ec2("DescribeInstances", cust), 400, "RequestExpired")
        ident = self.control("GET", "/_sim/identities")
        self.assertEqual(sorted((s["kind"], s["expired"]) for s in ident["sessions"]),
                         [("customer", True), ("customer", True), ("discovery", False), ("discovery", True)])

    # -- EC2 parameters ------------------------------------------------------------------------

    def test_describe_instances_parameters(self):
        self.apply()
        _, cust = self.chain()
        self.control("POST", "/_sim/accounts/%s/regions/us-east-1/instances/generate" % CUSTOMER,
                     {"count": 12, "seed": 2, "states": ["running", "stopped", "terminated"]})
        self.control("POST", "/_sim/accounts/%s/regions/eu-west-1/instances/generate" % CUSTOMER, {"count": 12, "seed": 2})
        self.assertEc2Error(self.instances(cust, max_results=4), 400, "InvalidParameterValue",
                            "Value ( 4 ) for parameter maxResults is invalid. Expecting a value greater than 5.")
        self.assertEc2Error(self.instances(cust, max_results=1001), 400, "InvalidParameterValue",
                            "Value ( 1001 ) for parameter maxResults is invalid. Expecting a value less than 1000.")
        self.assertEc2Error(self.instances(cust, max_results="ten"), 400, "InvalidParameterValue")
        self.assertEqual(len(self.page_of(self.instances(cust, max_results=1000))[0]), 12)
        self.assertEqual(len(self.page_of(self.instances(cust, max_results=5))[0]), 5)
        self.assertEc2Error(self.instances(cust, max_results=5, token="bm90LWEtdG9rZW4="), 400, "InvalidParameterValue",
                            "Value ( bm90LWEtdG9rZW4= ) for parameter NextToken is invalid. The token is invalid.")
        _, tok, _ = self.page_of(self.instances(cust, max_results=5))
        _, eu_tok, _ = self.page_of(self.instances(cust, region="eu-west-1", max_results=5))
        self.assertEc2Error(self.instances(cust, max_results=5, token=eu_tok), 400, "InvalidParameterValue")
        self.assertEc2Error(self.instances(cust, max_results=5, token=tok[:-4] + "AAA="), 400, "InvalidParameterValue")
        # a token sent without percent-encoding its "+" reaches the server with spaces in it
        r = self.call("ec2", {"Action": "DescribeInstances", "Version": "2016-11-15", "MaxResults": 5}, cust)
        self.assertEqual(r.status, 200)
        body = ("Action=DescribeInstances&Version=2016-11-15&MaxResults=5&NextToken=" + tok).encode()
        self.assertEc2Error(self._raw_signed_ec2(cust, body), 400, "InvalidParameterValue")
        # InstanceId with MaxResults, unknown ids, filters
        ids = self.page_of(self.instances(cust))[0]
        self.assertEc2Error(self.instances(cust, max_results=5, **{"InstanceId.1": ids[0]}), 400,
                            "InvalidParameterCombination", "The parameter instancesSet cannot be used with the parameter maxResults")
        self.assertEqual(self.page_of(self.instances(cust, **{"InstanceId.1": ids[3], "InstanceId.2": ids[1]}))[0], [ids[1], ids[3]])
        self.assertEc2Error(self.instances(cust, **{"InstanceId.1": "i-0000000000000000f"}), 400, "InvalidInstanceID.NotFound",
                            "The instance ID 'i-0000000000000000f' does not exist")
        running = self.page_of(self.instances(cust, **{"Filter.1.Name": "instance-state-name", "Filter.1.Value.1": "running"}))[0]
        self.assertEqual(running, ids[0::3])
        self.assertEc2Error(self.instances(cust, **{"Filter.1.Name": "bogus", "Filter.1.Value.1": "x"}), 400,
                            "InvalidParameterValue", "The filter 'bogus' is invalid")

    def _raw_signed_ec2(self, creds, body):
        """Signs and sends `body` exactly as given (no re-encoding), like a sloppy client."""
        headers = [("Host", self.host), ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
        add, _ = client_sign("POST", "/", "", headers, body, creds[0], creds[1], "us-east-1", "ec2",
                             datetime.datetime.utcnow(), token=creds[2])
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=20)
        try:
            conn.putrequest("POST", "/", skip_host=True, skip_accept_encoding=True)
            for n, v in headers + add:
                conn.putheader(n, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return Resp(r.status, r.headers, r.read())
        finally:
            conn.close()

    # -- faults --------------------------------------------------------------------------------

    def test_fault_throttle_and_status(self):
        self.apply()
        _, cust = self.chain()
        self.faults({"kind": "throttle", "service": "ec2", "times": 2},
                    {"kind": "throttle", "service": "sts"},
                    {"kind": "status", "status": 500, "service": "ec2", "action": "DescribeRegions"},
                    {"kind": "status", "status": 503, "service": "ec2", "action": "DescribeRegions"},
                    {"kind": "status", "status": 500, "service": "sts"},
                    {"kind": "status", "status": 503, "service": "sts"})
        for _ in range(2):
            self.assertEc2Error(self.ec2("DescribeInstances", cust), 503, "RequestLimitExceeded", "Request limit exceeded.")
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN), 400, "Throttling", "Rate exceeded")
        self.assertEc2Error(self.ec2("DescribeRegions", cust), 500, "InternalError", "An internal error has occurred")
        self.assertEc2Error(self.ec2("DescribeRegions", cust), 503, "ServiceUnavailable",
                            "The request has failed due to a temporary failure of the server.")
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN), 500, "InternalFailure", kind="Receiver")
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN), 503, "ServiceUnavailable", kind="Receiver")
        self.assertEqual(self.ec2("DescribeRegions", cust).status, 200)  # all spent
        self.assertEqual(self.assume(CALLER, DISCOVERY_ARN).status, 200)
        self.assertEqual(self.control("GET", "/_sim/stats")["faults_applied"], {"throttle": 3, "status": 4})
        self.assertEqual(self.control("GET", "/_sim/faults")["faults"][0]["times"], 0)
        # a custom code, a page-specific rule and skip
        self.control("POST", "/_sim/accounts/%s/regions/us-east-1/instances/generate" % CUSTOMER, {"count": 15, "seed": 1})
        self.faults({"kind": "status", "status": 400, "code": "DryRunOperation", "message": "nope", "action": "GetCallerIdentity"},
                    {"kind": "throttle", "action": "DescribeInstances", "page": 2, "skip": 1, "times": -1})
        self.assertStsError(self.sts({"Action": "GetCallerIdentity"}, CALLER), 400, "DryRunOperation", "nope")
        _, tok, _ = self.page_of(self.instances(cust, max_results=5))
        self.assertEqual(self.instances(cust, max_results=5, token=tok).status, 200)  # skipped once
        self.assertEqual(self.instances(cust, max_results=5, token=tok).status, 503)
        self.assertEqual(self.instances(cust, max_results=5, token=tok).status, 503)
        self.assertEqual(self.instances(cust, max_results=5).status, 200)  # page 1 untouched

    def test_fault_region_auth_failure(self):
        self.apply()
        _, cust = self.chain()
        self.faults({"kind": "auth_failure", "service": "ec2", "region": "eu-west-3", "times": -1})
        for _ in range(3):
            self.assertEc2Error(self.ec2("DescribeInstances", cust, region="eu-west-3"), 401, "AuthFailure",
                                "AWS was not able to validate the provided access credentials")
        self.assertEqual(self.ec2("DescribeInstances", cust, region="eu-west-2").status, 200)

    def test_fault_expire_credentials(self):
        self.apply()
        role_arn = "arn:aws:iam::%s:role/%s" % (CUSTOMER, ROLE_NAME)
        disc, cust = self.chain()
        self.control("POST", "/_sim/accounts/%s/regions/us-east-1/instances/generate" % CUSTOMER, {"count": 12, "seed": 1})
        self.faults({"kind": "expire_credentials", "action": "DescribeInstances", "page": 2})
        _, tok, _ = self.page_of(self.instances(cust, max_results=5))
        self.assertEc2Error(self.instances(cust, max_results=5, token=tok), 400, "RequestExpired")
        self.assertStsError(self.assume(disc, role_arn, external_id=EXTERNAL_ID), 403, "ExpiredToken")
        # re-authenticating from the start and resuming with the same token works
        _, cust2 = self.chain()
        self.assertEqual(len(self.page_of(self.instances(cust2, max_results=5, token=tok))[0]), 5)

    def test_fault_transport(self):
        self.apply()
        _, cust = self.chain()
        self.control("POST", "/_sim/accounts/%s/regions/us-east-1/instances/generate" % CUSTOMER, {"count": 40, "seed": 1})
        # slow
        self.faults({"kind": "slow", "delay_ms": 400, "action": "DescribeRegions"})
        t = time.monotonic()
        self.assertEqual(self.ec2("DescribeRegions", cust).status, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.4)
        # reset: the connection goes away with no answer
        self.faults({"kind": "reset", "service": "sts"})
        with self.assertRaises((ConnectionError, ssl.SSLError, http.client.RemoteDisconnected, OSError)):
            self.assume(CALLER, DISCOVERY_ARN)
        self.assertEqual(self.assume(CALLER, DISCOVERY_ARN).status, 200)
        # truncate: full Content-Length, half the body
        self.faults({"kind": "truncate", "action": "DescribeInstances"})
        with self.assertRaises((http.client.IncompleteRead, ConnectionError, ssl.SSLError)):
            self.instances(cust)
        entry = [e for e in self.log() if e["fault"] == "truncate"][0]
        self.assertGreater(entry["bytes"], 1000)
        # malformed: 200 with a body that is not XML
        self.faults({"kind": "malformed", "action": "DescribeInstances"}, {"kind": "malformed", "service": "sts",
                                                                           "body": "<html>oops</html"})
        r = self.instances(cust, max_results=5)
        self.assertEqual(r.status, 200)
        with self.assertRaises(ET.ParseError):
            ET.fromstring(r.body)
        r = self.assume(CALLER, DISCOVERY_ARN)
        self.assertEqual((r.status, r.body), (200, b"<html>oops</html"))
        self.assertEqual(self.instances(cust, max_results=5).status, 200)
        # bad rules are refused
        for bad in ({"kind": "explode"}, {"kind": "status", "status": 429}, {"kind": "slow"}, {"kind": "throttle", "times": 0},
                    {"kind": "throttle", "service": "iam"}):
            self.assertEqual(self.raw("POST", "/_sim/faults", json.dumps([bad]).encode()).status, 400, bad)

    # -- log, stats, concurrency -----------------------------------------------------------------

    def test_log_never_holds_a_secret(self):
        self.apply()
        disc_r = self.assume(CALLER, DISCOVERY_ARN, session="cloudconn-discovery")
        disc = self.creds_of(disc_r)
        cust_r = self.assume(disc, "arn:aws:iam::%s:role/%s" % (CUSTOMER, ROLE_NAME), session="c7", external_id=EXTERNAL_ID)
        cust = self.creds_of(cust_r)
        self.control("POST", "/_sim/accounts/%s/regions/us-east-1/instances/generate" % CUSTOMER, {"count": 6, "seed": 1})
        self.instances(cust, max_results=5)
        self.ec2("DescribeRegions", cust)
        self.assume(disc, "arn:aws:iam::%s:role/%s" % (CUSTOMER, ROLE_NAME), external_id="WrongWrongWrong")
        self.assume(CALLER, DISCOVERY_ARN, tamper="signature")
        # a confused client that sends the external id to EC2 too, and as a session name
        self.ec2("DescribeRegions", cust, ExternalId=EXTERNAL_ID)
        self.assume(CALLER, DISCOVERY_ARN, session=EXTERNAL_ID)
        log = self.log()
        with open(self.log_file, encoding="utf-8") as f:
            file_text = f.read()
        self.assertEqual([json.loads(line) for line in file_text.splitlines()], log)
        everything = json.dumps(log) + file_text
        secrets_ = [CALLER[1], disc[1], disc[2], cust[1], cust[2], EXTERNAL_ID, "WrongWrongWrong"] + self.sent
        for s in secrets_:
            self.assertNotIn(s, everything)
            self.assertNotIn(urllib.parse.quote(s, safe=""), everything)
        for word in ("AWS4-HMAC-SHA256", "Signature=", "SecretAccessKey", "SessionToken"):
            self.assertNotIn(word, everything)
        keys = {"time", "method", "service", "action", "region", "access_key_id", "principal", "principal_kind",
                "account", "signature_valid", "status", "error_code", "external_id_present", "external_id_matches",
                "fault", "request_id", "duration_ms", "bytes"}
        for e in log:
            self.assertLessEqual(keys, set(e))
        hop1, hop2 = log[0], log[1]
        self.assertEqual((hop1["service"], hop1["action"], hop1["access_key_id"], hop1["principal"], hop1["external_id_present"]),
                         ("sts", "AssumeRole", CALLER[0], "arn:aws:iam::111122223333:user/cloudconn-platform", False))
        self.assertEqual((hop2["principal_kind"], hop2["external_id_present"], hop2["external_id_matches"], hop2["account"]),
                         ("discovery", True, True, CUSTOMER))
        ec2 = [e for e in log if e["service"] == "ec2"]
        self.assertEqual([e["external_id_present"] for e in ec2], [False, False, True])
        self.assertEqual(ec2[-1]["external_id_matches"], True)  # the leak is visible, the value is not
        self.assertTrue(all(e["region"] == "us-east-1" and e["principal_kind"] == "customer" and e["account"] == CUSTOMER
                            for e in ec2))
        self.assertEqual(ec2[0]["items"], 5)
        # the control API shows no secret either
        view = json.dumps(self.control("GET", "/_sim/identities"))
        for s in (CALLER[1], disc[1], disc[2], cust[1], cust[2], EXTERNAL_ID):
            self.assertNotIn(s, view)

    def test_stats_and_max_in_flight(self):
        self.apply()
        _, cust = self.chain()
        self.faults({"kind": "slow", "delay_ms": 700, "action": "DescribeRegions", "times": -1})
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.ec2("DescribeRegions", cust).status)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(results, [200] * 4)
        s = self.control("GET", "/_sim/stats")
        self.assertEqual(s["max_in_flight"], 4)
        self.assertEqual(s["in_flight"], 0)
        self.assertEqual(s["requests_by_action"], {"sts:AssumeRole": 2, "ec2:DescribeRegions": 4})
        self.assertEqual(s["requests_by_service"], {"sts": 2, "ec2": 4})
        self.assertEqual(s["credentials_issued"], 2)
        self.control("DELETE", "/_sim/stats")
        self.assertEqual(self.control("GET", "/_sim/stats")["max_in_flight"], 0)

    def test_keepalive_and_robustness(self):
        # several signed requests on one connection
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=10)
        for _ in range(3):
            body = b"Action=GetCallerIdentity&Version=2011-06-15"
            headers = [("Host", self.host), ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
            add, _ = client_sign("POST", "/", "", headers, body, CALLER[0], CALLER[1], "us-east-1", "sts",
                                 datetime.datetime.utcnow())
            conn.request("POST", "/", body=body, headers=dict(headers + add))
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
        conn.close()
        self.assertEqual(len({e["client_port"] for e in self.log()}), 1)
        # garbage never kills the server
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        s.sendall(os.urandom(3000))
        s.close()
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        t = self.ctx.wrap_socket(s, server_hostname="127.0.0.1")
        t.sendall(b"\x00\xffNONSENSE\r\n\r\n")
        self.assertTrue(t.recv(4096).startswith(b"HTTP/1.1 400"))
        t.close()
        for auth in ("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=zz",
                     "Basic Zm9vOmJhcg==", "AWS4-HMAC-SHA256 Credential=AKIASIMULATORCALLER2/20200101/us-east-1/sts/aws4_request, "
                     "SignedHeaders=host, Signature=" + "0" * 64):
            r = self.raw("POST", "/", b"Action=AssumeRole&Version=2011-06-15",
                         {"Content-Type": "application/x-www-form-urlencoded", "Authorization": auth, "X-Amz-Date": "garbage"})
            self.assertIn(r.status, (400, 403), (auth, r.body))
        # an oversized body is refused before it is read
        s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        t = self.ctx.wrap_socket(s, server_hostname="127.0.0.1")
        t.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n")
        self.assertTrue(t.recv(4096).startswith(b"HTTP/1.1 413"))
        t.close()
        self.assertEqual(self.raw("GET", "/_sim/nothing").status, 404)
        self.assertEqual(self.raw("POST", "/_sim/config", b'{"bogus": 1}', {"Content-Type": "application/json"}).status, 400)
        self.assertEqual(self.raw("POST", "/_sim/faults", b"{not json").status, 400)
        self.assertEqual(self.control("GET", "/_sim/health")["ok"], True)

    def test_cli_latency_and_identities(self):
        proc, port = start_sim(self.tmp, self.ca, "--latency-ms", "250", "--customer-role-name", "OtherName",
                               "--discovery-role-arn", "arn:aws:iam::222233334444:role/Disc", name="lat")
        try:
            ident = self.control_on(port, "GET", "/_sim/identities")
            self.assertEqual(ident["customer_role_name"], "OtherName")
            self.assertEqual(ident["discovery_role"]["arn"], "arn:aws:iam::222233334444:role/Disc")
            self.assertEqual([u["access_key_id"] for u in ident["users"]], [CALLER[0], OTHER_USER[0]])
            self.assertNotIn(CALLER[1], json.dumps(ident))
            t = time.monotonic()
            r = self.call("sts", {"Action": "AssumeRole", "Version": "2011-06-15", "RoleArn": "arn:aws:iam::222233334444:role/Disc",
                                  "RoleSessionName": "x1"}, CALLER, port=port, host="127.0.0.1:%d" % port)
            self.assertEqual(r.status, 200, r.body)
            self.assertGreaterEqual(time.monotonic() - t, 0.25)
            t = time.monotonic()
            self.control_on(port, "GET", "/_sim/stats")
            self.assertLess(time.monotonic() - t, 0.25)  # not on the control API
        finally:
            stop_sim(proc)
        self.assertEqual(proc.returncode, 0)

    def control_on(self, port, method, path):
        r = self.raw(method, path, port=port)
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body)

    # -- VPCs, RDS, S3, Lambda ---------------------------------------------------------------------

    def rest(self, service, path, params, creds, region="us-east-1", method="GET", omit_sha256=False):
        """A signed REST request (S3, Lambda): GET path?query, signed for service and region; S3
        signs its path as it is and its payload's hash (x-amz-content-sha256)."""
        query = "&".join("%s=%s" % (_q(k), _q(str(v))) for k, v in params.items())
        headers = [("Host", self.host)]
        key, secret, token = creds
        add, sig = client_sign(method, path, query, headers, b"", key, secret, region, service,
                               datetime.datetime.utcnow(), token=token, sign_body=service == "s3" and not omit_sha256,
                               normalize=service != "s3")
        headers += add
        self.sent += [sig, dict(add)["Authorization"]]
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
        try:
            conn.putrequest(method, path + ("?" + query if query else ""), skip_host=True, skip_accept_encoding=True)
            for n, v in headers:
                conn.putheader(n, v)
            conn.endheaders()
            r = conn.getresponse()
            return Resp(r.status, r.headers, r.read(), sig)
        finally:
            conn.close()

    def rds(self, params, creds, region="us-east-1"):
        return self.call("rds", dict({"Action": "DescribeDBInstances", "Version": "2014-10-31"}, **params), creds, region=region)

    def least_privilege(self, actions, account=CUSTOMER):
        """A template whose role has one inline policy of actions (as least_privilege => true makes it)."""
        t = make_template()
        props = t["Resources"]["CustomerDiscoveryRole"]["Properties"]
        del props["ManagedPolicyArns"]
        props["Policies"] = [{"PolicyName": "CloudconnDiscoveryLeastPrivilege", "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{"Sid": "ListEnabledResourceTypes", "Effect": "Allow",
                                                     "Action": list(actions), "Resource": "*"}]}}]
        return self.control("POST", "/_sim/accounts/%s/apply-template" % account, t)

    def assertRdsError(self, r, status, code, message=None):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.h("Content-Type"), "text/xml")
        root = r.xml()
        ns = {"rds": aws_services.RDS_NS}
        self.assertEqual(root.tag, "{%s}ErrorResponse" % aws_services.RDS_NS)
        self.assertEqual([c.tag.split("}")[1] for c in root], ["Error", "RequestId"])
        err = root.find("rds:Error", ns)
        self.assertEqual([c.tag.split("}")[1] for c in err], ["Type", "Code", "Message"])
        self.assertEqual(err.find("rds:Type", ns).text, "Receiver" if status >= 500 else "Sender")
        self.assertEqual(err.find("rds:Code", ns).text, code)
        self.assertEqual(root.find("rds:RequestId", ns).text, r.h("x-amzn-RequestId"))
        if message is not None:
            self.assertEqual(err.find("rds:Message", ns).text, message)
        return err.find("rds:Message", ns).text

    def assertS3Error(self, r, status, code, message=None):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.h("Content-Type"), "application/xml")
        self.assertEqual(r.h("Server"), "AmazonS3")
        self.assertRegex(r.h("x-amz-request-id"), r"^[0-9A-F]{16}$")
        self.assertTrue(r.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>'))
        root = r.xml()
        self.assertEqual(root.tag, "Error")
        tags = [c.tag for c in root]
        self.assertEqual((tags[:2], tags[-2:]), (["Code", "Message"], ["RequestId", "HostId"]))
        self.assertEqual(root.find("Code").text, code)
        self.assertEqual(root.find("RequestId").text, r.h("x-amz-request-id"))
        self.assertEqual(root.find("HostId").text, r.h("x-amz-id-2"))
        if message is not None:
            self.assertEqual(root.find("Message").text, message)
        return root.find("Message").text

    def assertLambdaError(self, r, status, code, message=None):
        self.assertEqual(r.status, status, r.body)
        self.assertEqual(r.h("Content-Type"), "application/json")
        self.assertEqual(r.h("x-amzn-ErrorType"), code)
        self.assertRegex(r.h("x-amzn-RequestId"), r"^[0-9a-f-]{36}$")
        body = json.loads(r.body)
        text = body.get("Message" if code == "AccessDeniedException" else "message")
        if message is not None:
            self.assertEqual(text, message)
        return body

    def test_describe_vpcs(self):
        self.apply()
        _, cust = self.chain()
        gen = self.control("POST", "/_sim/accounts/%s/regions/eu-west-1/vpcs/generate" % CUSTOMER, {"count": 12, "seed": 3})
        self.assertEqual(gen["count"], 12)
        got, token, sizes = [], None, []
        while True:
            params = {"MaxResults": 5}
            if token:
                params["NextToken"] = token
            r = self.ec2("DescribeVpcs", cust, region="eu-west-1", **params)
            self.assertEqual(r.status, 200, r.body)
            root = r.xml()
            self.assertEqual(root.tag, "{%s}DescribeVpcsResponse" % EC2_NS)
            self.assertEqual(root[0].tag, "{%s}requestId" % EC2_NS)
            items = root.findall("ec2:vpcSet/ec2:item", NS)
            sizes.append(len(items))
            for v in items:
                names = [c.tag.split("}")[1] for c in v]
                # the members of botocore's ec2 Vpc shape, in the order EC2 sends them
                self.assertEqual([n for n in names if n not in ("ipv6CidrBlockAssociationSet", "tagSet")],
                                 ["vpcId", "ownerId", "state", "cidrBlock", "cidrBlockAssociationSet", "dhcpOptionsId",
                                  "instanceTenancy", "isDefault"])
                assoc = v.find("ec2:cidrBlockAssociationSet/ec2:item", NS)
                self.assertEqual([c.tag.split("}")[1] for c in assoc], ["cidrBlock", "associationId", "cidrBlockState"])
                got.append(v.find("ec2:vpcId", NS).text)
            tok = root.find("ec2:nextToken", NS)
            token = tok.text if tok is not None else None
            if token is None:
                break
            self.assertRegex(token, r"^[A-Za-z0-9+/]+==$")
        self.assertEqual(got, gen["ids"])
        self.assertEqual(sizes, [5, 5, 2])
        first = self.ec2("DescribeVpcs", cust, region="eu-west-1", MaxResults=5).xml().find("ec2:vpcSet/ec2:item", NS)
        self.assertEqual((first.find("ec2:isDefault", NS).text, first.find("ec2:cidrBlock", NS).text), ("true", "172.31.0.0/16"))
        self.assertIsNone(first.find("ec2:tagSet", NS))
        # filters, bounds and a token of another listing
        r = self.ec2("DescribeVpcs", cust, region="eu-west-1", **{"Filter.1.Name": "is-default", "Filter.1.Value.1": "true"})
        self.assertEqual(len(r.xml().findall("ec2:vpcSet/ec2:item", NS)), 1)
        self.assertEc2Error(self.ec2("DescribeVpcs", cust, region="eu-west-1", MaxResults=4), 400, "InvalidParameterValue")
        inst_token = self.page_of(self.instances(cust, region="eu-west-1", max_results=5))[1]
        self.control("POST", "/_sim/accounts/%s/regions/eu-west-1/instances/generate" % CUSTOMER, {"count": 7, "seed": 1})
        inst_token = self.page_of(self.instances(cust, region="eu-west-1", max_results=5))[1]
        self.assertEc2Error(self.ec2("DescribeVpcs", cust, region="eu-west-1", MaxResults=5, NextToken=inst_token),
                            400, "InvalidParameterValue")
        pages = [e["page"] for e in self.log() if e["action"] == "DescribeVpcs" and e["status"] == 200][:3]
        self.assertEqual(pages, [1, 2, 3])

    def test_rds_describe_db_instances(self):
        self.apply()
        _, cust = self.chain()
        self.control("POST", "/_sim/accounts/%s/regions/eu-west-1/db-instances/generate" % CUSTOMER, {"count": 45, "seed": 1})
        ns = {"rds": aws_services.RDS_NS}
        got, marker, sizes = [], None, []
        while True:
            params = {"MaxRecords": 20}
            if marker:
                params["Marker"] = marker
            r = self.rds(params, cust, region="eu-west-1")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.h("Content-Type"), "text/xml")
            self.assertFalse(r.body.startswith(b"<?xml"))
            root = r.xml()
            self.assertEqual(root.tag, "{%s}DescribeDBInstancesResponse" % aws_services.RDS_NS)
            self.assertEqual([c.tag.split("}")[1] for c in root], ["DescribeDBInstancesResult", "ResponseMetadata"])
            self.assertEqual(root.find("rds:ResponseMetadata/rds:RequestId", ns).text, r.h("x-amzn-RequestId"))
            dbs = root.findall("rds:DescribeDBInstancesResult/rds:DBInstances/rds:DBInstance", ns)
            sizes.append(len(dbs))
            for db in dbs:
                ident = db.find("rds:DBInstanceIdentifier", ns).text
                got.append(ident)
                self.assertEqual(db.find("rds:DBInstanceArn", ns).text, "arn:aws:rds:eu-west-1:%s:db:%s" % (CUSTOMER, ident))
                # lists are of the model's member names
                for outer, member in (("TagList", "Tag"), ("VpcSecurityGroups", "VpcSecurityGroupMembership"),
                                      ("DBSubnetGroup/rds:Subnets", "Subnet")):
                    for child in db.find("rds:" + outer, ns):
                        self.assertEqual(child.tag, "{%s}%s" % (aws_services.RDS_NS, member))
                self.assertIn(db.find("rds:MultiAZ", ns).text, ("true", "false"))
                self.assertRegex(db.find("rds:Endpoint/rds:Address", ns).text, r"\.eu-west-1\.rds\.amazonaws\.com$")
            m = root.find("rds:DescribeDBInstancesResult/rds:Marker", ns)
            marker = m.text if m is not None else None
            if marker is None:
                break
        self.assertEqual(sizes, [20, 20, 5])
        self.assertEqual(got, ["sim-db-eu-west-1-%04d" % i for i in range(1, 46)])
        # bounds, a bad marker, one instance, an unknown one, another version
        self.assertRdsError(self.rds({"MaxRecords": 19}, cust, region="eu-west-1"), 400, "InvalidParameterValue")
        self.assertRdsError(self.rds({"MaxRecords": 101}, cust, region="eu-west-1"), 400, "InvalidParameterValue")
        self.assertRdsError(self.rds({"Marker": "bogus"}, cust, region="eu-west-1"), 400, "InvalidParameterValue")
        r = self.rds({"DBInstanceIdentifier": "sim-db-eu-west-1-0007"}, cust, region="eu-west-1")
        self.assertEqual(len(r.xml().findall("rds:DescribeDBInstancesResult/rds:DBInstances/rds:DBInstance", ns)), 1)
        self.assertRdsError(self.rds({"DBInstanceIdentifier": "nope"}, cust, region="eu-west-1"), 404, "DBInstanceNotFound",
                            "DBInstance nope not found.")
        r = self.call("rds", {"Action": "DescribeDBInstances", "Version": "2013-01-10"}, cust, region="eu-west-1")
        self.assertRdsError(r, 400, "InvalidAction")
        # an empty region
        r = self.rds({}, cust, region="us-west-2")
        self.assertIn(b"<DBInstances/>", r.body)
        self.assertNotIn(b"<Marker>", r.body)

    def test_s3_list_buckets_and_location(self):
        self.apply()
        _, cust = self.chain()
        self.control("POST", "/_sim/accounts/%s/buckets/generate" % CUSTOMER,
                     {"count": 25, "seed": 2, "regions": ["us-east-1", "eu-west-1", "ap-south-1"], "eu_every": 2})
        names = sorted(b["Name"] for b in self.control("GET", "/_sim/accounts/%s/buckets" % CUSTOMER)["items"])
        ns = {"s3": aws_services.S3_NS}
        # unpaginated: every bucket, no BucketRegion, no token
        r = self.rest("s3", "/", {}, cust)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual((r.h("Content-Type"), r.h("Server")), ("application/xml", "AmazonS3"))
        self.assertTrue(r.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult xmlns='))
        root = r.xml()
        self.assertEqual([c.tag.split("}")[1] for c in root], ["Owner", "Buckets"])
        bs = root.findall("s3:Buckets/s3:Bucket", ns)
        self.assertEqual([b.find("s3:Name", ns).text for b in bs], names)
        self.assertEqual([c.tag.split("}")[1] for c in bs[0]], ["Name", "CreationDate"])
        # paginated (max-buckets): BucketRegion on every bucket, ContinuationToken while more
        got, token, sizes = [], None, []
        while True:
            params = {"max-buckets": 10}
            if token:
                params["continuation-token"] = token
            root = self.rest("s3", "/", params, cust).xml()
            bs = root.findall("s3:Buckets/s3:Bucket", ns)
            sizes.append(len(bs))
            for b in bs:
                self.assertEqual([c.tag.split("}")[1] for c in b], ["Name", "CreationDate", "BucketRegion"])
                got.append((b.find("s3:Name", ns).text, b.find("s3:BucketRegion", ns).text))
            t = root.find("s3:ContinuationToken", ns)
            token = t.text if t is not None else None
            if token is None:
                break
        self.assertEqual(sizes, [10, 10, 5])
        self.assertEqual([n for n, _ in got], names)
        self.assertEqual({r for _, r in got}, {"us-east-1", "eu-west-1", "ap-south-1"})
        # an S3 that never names the region
        self.control("POST", "/_sim/config", {"s3_bucket_region": False})
        self.assertNotIn(b"BucketRegion", self.rest("s3", "/", {"max-buckets": 10}, cust).body)
        self.control("POST", "/_sim/config", {"s3_bucket_region": True})
        # GetBucketLocation: us-east-1 is empty, the oldest eu-west-1 buckets EU
        views = {b["Name"]: b for b in self.control("GET", "/_sim/accounts/%s/buckets" % CUSTOMER)["items"]}
        seen = set()
        for name, v in views.items():
            r = self.rest("s3", "/" + name, {"location": ""}, cust)
            self.assertEqual(r.status, 200, r.body)
            root = r.xml()
            self.assertEqual(root.tag, "{%s}LocationConstraint" % aws_services.S3_NS)
            seen.add((v["region"], root.text))
        self.assertEqual(seen, {("us-east-1", None), ("eu-west-1", "EU"), ("eu-west-1", "eu-west-1"), ("ap-south-1", "ap-south-1")})
        self.assertS3Error(self.rest("s3", "/no-such-bucket-here", {"location": ""}, cust), 404, "NoSuchBucket",
                           "The specified bucket does not exist")
        self.control("PATCH", "/_sim/accounts/%s/buckets/%s" % (CUSTOMER, names[0]), {"location_denied": True})
        msg = self.assertS3Error(self.rest("s3", "/" + names[0], {"location": ""}, cust), 403, "AccessDenied")
        self.assertIn('s3:GetBucketLocation on resource: "arn:aws:s3:::%s" with an explicit deny in a resource-based policy' % names[0], msg)
        # S3's own rules: x-amz-content-sha256 is required; max-buckets is bounded; a bad token refused
        self.assertS3Error(self.rest("s3", "/", {}, cust, omit_sha256=True), 400, "InvalidRequest",
                           "Missing required header for this request: x-amz-content-sha256")
        self.assertS3Error(self.rest("s3", "/", {"max-buckets": 0}, cust), 400, "InvalidArgument")
        self.assertS3Error(self.rest("s3", "/", {"continuation-token": "bogus"}, cust), 400, "InvalidArgument")
        self.assertS3Error(self.rest("s3", "/", {}, OTHER_USER[:2] + (None,)), 403, "AccessDenied")
        self.assertS3Error(self.rest("s3", "/", {}, ("AKIANOSUCHKEY0000000", "x" * 40, None)), 403, "InvalidAccessKeyId")
        # the log names the buckets asked about, and every signature checked out
        log = [e for e in self.log() if e["service"] == "s3"]
        self.assertIn(names[0], [e.get("bucket") for e in log if e["action"] == "GetBucketLocation"])
        self.assertTrue(all(e["signature_valid"] for e in log if e["access_key_id"] != "AKIANOSUCHKEY0000000"))

    def test_lambda_list_functions(self):
        self.apply()
        _, cust = self.chain()
        self.control("POST", "/_sim/accounts/%s/regions/eu-west-1/functions/generate" % CUSTOMER,
                     {"count": 120, "seed": 1, "environment": {"SECRET": "hunter2"}})
        got, marker, sizes = [], None, []
        while True:
            params = {"MaxItems": 100}
            if marker:
                params["Marker"] = marker
            r = self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, params, cust, region="eu-west-1")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.h("Content-Type"), "application/json")
            body = json.loads(r.body)
            self.assertEqual(list(body), ["Functions", "NextMarker"])
            sizes.append(len(body["Functions"]))
            for fn in body["Functions"]:
                got.append(fn["FunctionName"])
                self.assertEqual(fn["FunctionArn"], "arn:aws:lambda:eu-west-1:%s:function:%s" % (CUSTOMER, fn["FunctionName"]))
                self.assertEqual(fn["Environment"], {"Variables": {"SECRET": "hunter2"}})
                self.assertEqual(list(fn)[:3], ["FunctionName", "FunctionArn", "Runtime"] if "Runtime" in fn
                                 else ["FunctionName", "FunctionArn", "Role"])
                self.assertIn(fn["PackageType"], ("Zip", "Image"))
                self.assertRegex(fn["LastModified"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
            marker = body["NextMarker"]
            if marker is None:
                break
        # at most 50 a page whatever MaxItems says; the last page says NextMarker: null
        self.assertEqual(sizes, [50, 50, 20])
        self.assertEqual(got, ["sim-fn-eu-west-1-%04d" % i for i in range(1, 121)])
        body = self.assertLambdaError(self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {"MaxItems": 0}, cust,
                                                region="eu-west-1"), 400, "InvalidParameterValueException")
        self.assertEqual(body["Type"], "User")
        self.assertLambdaError(self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {"Marker": "bogus"}, cust,
                                         region="eu-west-1"), 400, "InvalidParameterValueException")
        self.assertLambdaError(self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {}, ("AKIANOSUCHKEY0000000", "x" * 40, None),
                                         region="eu-west-1"), 403, "UnrecognizedClientException",
                               "The security token included in the request is invalid.")
        # the log never holds an environment variable
        self.assertNotIn("hunter2", json.dumps(self.log()))

    def test_iam_of_the_applied_template(self):
        """The managed pair allows every listing; an inline policy exactly what it names; a
        missing action gets each service's own AccessDenied, naming the action."""
        self.apply()
        _, cust = self.chain()
        for path in ("vpcs", "db-instances", "functions"):
            self.control("POST", "/_sim/accounts/%s/regions/us-east-1/%s/generate" % (CUSTOMER, path), {"count": 2})
        calls = {
            "ec2:DescribeVpcs": lambda: self.ec2("DescribeVpcs", cust),
            "rds:DescribeDBInstances": lambda: self.rds({}, cust),
            "s3:ListAllMyBuckets": lambda: self.rest("s3", "/", {"max-buckets": 5}, cust),
            "lambda:ListFunctions": lambda: self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {}, cust),
            "ec2:DescribeInstances": lambda: self.instances(cust),
        }
        for action, call in calls.items():
            self.assertEqual(call().status, 200, action)
        self.least_privilege(["ec2:DescribeInstances", "ec2:DescribeRegions"])
        session = "arn:aws:sts::%s:assumed-role/%s/cloudconn-7" % (CUSTOMER, ROLE_NAME)
        self.assertEqual(self.instances(cust).status, 200)
        self.assertEqual(self.assertEc2Error(calls["ec2:DescribeVpcs"](), 403, "UnauthorizedOperation"),
                         "You are not authorized to perform this operation. User: %s is not authorized to perform: "
                         "ec2:DescribeVpcs because no identity-based policy allows the ec2:DescribeVpcs action" % session)
        self.assertRdsError(calls["rds:DescribeDBInstances"](), 403, "AccessDenied",
                            "User: %s is not authorized to perform: rds:DescribeDBInstances on resource: "
                            "arn:aws:rds:us-east-1:%s:db:* because no identity-based policy allows the "
                            "rds:DescribeDBInstances action" % (session, CUSTOMER))
        self.assertS3Error(calls["s3:ListAllMyBuckets"](), 403, "AccessDenied",
                           "User: %s is not authorized to perform: s3:ListAllMyBuckets because no identity-based "
                           "policy allows the s3:ListAllMyBuckets action" % session)
        self.assertLambdaError(calls["lambda:ListFunctions"](), 403, "AccessDeniedException",
                               "User: %s is not authorized to perform: lambda:ListFunctions on resource: * because no "
                               "identity-based policy allows the lambda:ListFunctions action" % session)
        # wildcards, and an explicit Deny winning over an Allow
        t = make_template()
        props = t["Resources"]["CustomerDiscoveryRole"]["Properties"]
        props["Policies"] = [{"PolicyName": "deny-lambda", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "lambda:List*", "Resource": "*"}]}}]
        self.control("POST", "/_sim/accounts/%s/apply-template" % CUSTOMER, t)
        self.assertEqual(calls["rds:DescribeDBInstances"]().status, 200)
        body = self.assertLambdaError(calls["lambda:ListFunctions"](), 403, "AccessDeniedException")
        self.assertTrue(body["Message"].endswith("with an explicit deny in an identity-based policy"))
        # what cannot be evaluated is refused when applied
        for bad in ({"ManagedPolicyArns": ["arn:aws:iam::aws:policy/NoSuchPolicy"]},
                    {"Policies": [{"PolicyName": "c", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}}]},
                    {"Policies": [{"PolicyName": "a", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                        {"Effect": "Allow", "Action": "ListBuckets", "Resource": "*"}]}}]}):
            t = make_template()
            t["Resources"]["CustomerDiscoveryRole"]["Properties"].update(bad)
            r = self.raw("POST", "/_sim/accounts/%s/apply-template" % CUSTOMER, json.dumps(t).encode(),
                         {"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, bad)
        # the role's actions as the control API shows them
        self.least_privilege(["s3:ListAllMyBuckets", "ec2:DescribeRegions"])
        self.assertEqual(self.control("GET", "/_sim/accounts/%s" % CUSTOMER)["roles"][0]["allowed_actions"],
                         ["ec2:DescribeRegions", "s3:ListAllMyBuckets"])

    def test_services_throttling_and_faults(self):
        self.apply()
        _, cust = self.chain()
        self.faults({"kind": "throttle", "service": "rds"}, {"kind": "throttle", "service": "s3"},
                    {"kind": "throttle", "service": "lambda", "retry_after": 2},
                    {"kind": "status", "status": 503, "service": "lambda"},
                    {"kind": "auth_failure", "service": "rds"})
        self.assertRdsError(self.rds({}, cust), 400, "Throttling", "Rate exceeded")
        self.assertS3Error(self.rest("s3", "/", {}, cust), 503, "SlowDown", "Please reduce your request rate.")
        r = self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {}, cust)
        body = self.assertLambdaError(r, 429, "TooManyRequestsException", "Rate exceeded")
        self.assertEqual((body["Reason"], body["Type"], r.h("Retry-After")), ("CallerRateLimitExceeded", "User", "2"))
        body = self.assertLambdaError(self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {}, cust), 503, "ServiceException")
        self.assertEqual(body["Type"], "Service")
        self.assertRdsError(self.rds({}, cust), 403, "InvalidClientTokenId")
        # each answered once; then the calls go through
        self.assertEqual(self.rds({}, cust).status, 200)
        self.assertEqual(self.rest("s3", "/", {}, cust).status, 200)
        self.assertEqual(self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {}, cust).status, 200)
        # a page of a listing can be targeted
        self.control("POST", "/_sim/accounts/%s/regions/us-east-1/functions/generate" % CUSTOMER, {"count": 60})
        self.faults({"kind": "status", "status": 500, "service": "lambda", "page": 2})
        body = json.loads(self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {}, cust).body)
        self.assertLambdaError(self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {"Marker": body["NextMarker"]}, cust),
                               500, "ServiceException")
        # expired temporary credentials: each service's answer
        self.control("POST", "/_sim/credentials/expire", {"which": "customer"})
        self.assertRdsError(self.rds({}, cust), 403, "ExpiredToken")
        self.assertS3Error(self.rest("s3", "/", {}, cust), 400, "ExpiredToken", "The provided token has expired.")
        self.assertLambdaError(self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {}, cust), 403, "ExpiredTokenException")

    def test_fault_error_code_and_log_fields(self):
        self.apply()
        self.control("DELETE", "/_sim/log")
        _, cust = self.chain()
        self.faults({"kind": "error_code", "service": "sts", "code": "IDPCommunicationError"},
                    {"kind": "error_code", "service": "ec2", "code": "Unavailable"},
                    {"kind": "error_code", "service": "s3", "code": "RequestTimeout"},
                    {"kind": "error_code", "service": "lambda", "code": "EC2ThrottledException"},
                    {"kind": "error_code", "service": "lambda", "code": "TooManyRequestsException"})
        self.assertStsError(self.assume(CALLER, DISCOVERY_ARN), 400, "IDPCommunicationError")
        self.assertEc2Error(self.ec2("DescribeRegions", cust), 503, "Unavailable",
                            "The server is overloaded and can't handle the request.")
        self.assertS3Error(self.rest("s3", "/", {}, cust), 400, "RequestTimeout")
        body = self.assertLambdaError(self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {}, cust), 502,
                                      "EC2ThrottledException")
        self.assertEqual(body["Type"], "Service")
        body = self.assertLambdaError(self.rest("lambda", aws_services.LAMBDA_FUNCTIONS_PATH, {}, cust), 429,
                                      "TooManyRequestsException")
        self.assertEqual(body["Reason"], "CallerRateLimitExceeded")
        self.assertEqual(self.ec2("DescribeRegions", cust).status, 200)  # all spent
        # a code the service does not send, or no service: refused
        for bad in ({"kind": "error_code", "service": "ec2", "code": "SlowDown"},
                    {"kind": "error_code", "code": "Throttling"}):
            r = self.raw("POST", "/_sim/faults", json.dumps([bad]).encode(), {"Content-Type": "application/json"})
            self.assertEqual(r.status, 400, bad)
        # the log: each request's X-Amz-Date, and where an external id appeared
        log = self.log()
        self.assertTrue(all(re.match(r"^\d{8}T\d{6}Z$", e["amz_date"]) for e in log), log)
        places = [(e["action"], e["principal_kind"], e["external_id_in"]) for e in log]
        self.assertIn(("AssumeRole", "discovery", ["body"]), places)
        self.assertEqual([p for p in places if p[2] and p[1] != "discovery"], [])
        self.call("ec2", {"Action": "DescribeRegions", "Version": "2016-11-15"}, cust,
                  extra_headers=[("X-Probe", EXTERNAL_ID)])
        self.ec2("DescribeRegions", cust, method="GET", Filter=urllib.parse.quote(EXTERNAL_ID))
        self.assertEqual([e["external_id_in"] for e in self.log()[-2:]], [["headers"], ["url"]])
        self.assertNotIn(EXTERNAL_ID, json.dumps(self.log()))


if __name__ == "__main__":
    unittest.main(verbosity=2)
