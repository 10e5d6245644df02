#!/usr/bin/python3
"""Self-test of aws_caller_sim.py: IAM Roles Anywhere, EC2 instance metadata (IMDSv2) and the
container credentials endpoint, with the credentials they hand out accepted by aws_sim.py's STS.

Run:  /usr/bin/python3 test/sim/test_aws_caller_sim.py

It makes a throwaway TLS CA (make_test_ca.sh) and the Roles Anywhere PKI
(make_roles_anywhere_pki.sh) in a temporary directory, starts both simulators, and signs
CreateSession requests with a client-side signer of its own (below: its own canonical request,
and cryptography's private-key signing), so that the simulator's verifier is checked by another
implementation than the one it is made of.
"""

import base64
import datetime
import hashlib
import http.client
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_aws_sim import client_sign, start_sim, stop_sim  # noqa: E402

CALLER_SIM = os.path.join(HERE, "aws_caller_sim.py")
ANCHOR = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/4f8e0a2c-5b1d-4c3e-9f7a-0123456789ab"
PROFILE = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/9a7b6c5d-1e2f-4a3b-8c9d-abcdef012345"
ROLE = "arn:aws:iam::111122223333:role/cloudconn-caller"
DISCOVERY = "arn:aws:iam::111122223333:role/AnzenDiscoveryRole"


def _q(s):
    return urllib.parse.quote(s, safe="-_.~")


def ra_sign(cert_pem, key_pem, host, query, body, chain_pems=(), when=None, region="us-east-1",
            serial=None, tamper_query=None):
    """Headers of a CreateSession request signed as IAM Roles Anywhere's signing process says:
    SigV4's canonical request and string to sign under AWS4-X509-*-SHA256, the signature made
    with the private key over SHA-256, hex; the key id is the serial number in decimal."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    key = serialization.load_pem_private_key(key_pem, None)
    alg = "AWS4-X509-RSA-SHA256" if isinstance(key, rsa.RSAPrivateKey) else "AWS4-X509-ECDSA-SHA256"
    when = when or datetime.datetime.utcnow()
    amz = when.strftime("%Y%m%dT%H%M%SZ")
    headers = [("Host", host), ("Content-Type", "application/json"), ("X-Amz-Date", amz),
               ("X-Amz-X509", base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode())]
    if chain_pems:
        headers.append(("X-Amz-X509-Chain", ",".join(
            base64.b64encode(x509.load_pem_x509_certificate(p).public_bytes(serialization.Encoding.DER)).decode()
            for p in chain_pems)))
    names = sorted(n.lower() for n, _ in headers)
    values = {n.lower(): v for n, v in headers}
    pairs = sorted(tuple(_q(urllib.parse.unquote(x)) for x in p.split("=", 1)) for p in query.split("&"))
    creq = "\n".join(["POST", "/sessions", "&".join("%s=%s" % p for p in pairs),
                      "".join("%s:%s\n" % (n, values[n]) for n in names), ";".join(names),
                      hashlib.sha256(body).hexdigest()])
    scope = "%s/%s/rolesanywhere/aws4_request" % (amz[:8], region)
    sts = "%s\n%s\n%s\n%s" % (alg, amz, scope, hashlib.sha256(creq.encode()).hexdigest())
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(sts.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        sig = key.sign(sts.encode(), ec.ECDSA(hashes.SHA256()))
    headers.append(("Authorization", "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        alg, serial or cert.serial_number, scope, ";".join(names), sig.hex())))
    return headers


class CallerSimTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="callersim-test-")
        cls.ca = os.path.join(cls.tmp, "ca")
        cls.pki = os.path.join(cls.tmp, "pki")
        subprocess.run(["bash", os.path.join(HERE, "make_test_ca.sh"), cls.ca], check=True)
        subprocess.run(["bash", os.path.join(HERE, "make_roles_anywhere_pki.sh"), cls.pki], check=True)
        cls.ctx = ssl.create_default_context(cafile=os.path.join(cls.ca, "ca.crt"))
        cls.sts_proc, cls.sts_port = start_sim(cls.tmp, cls.ca, name="sts")
        http_port_file = os.path.join(cls.tmp, "http.port")
        port_file = os.path.join(cls.tmp, "caller.port")
        cls.log_file = os.path.join(cls.tmp, "caller.log")
        cls.proc = subprocess.Popen(
            [sys.executable, CALLER_SIM, "--cert", os.path.join(cls.ca, "server.crt"),
             "--key", os.path.join(cls.ca, "server.key"), "--port-file", port_file,
             "--http-port-file", http_port_file, "--log", cls.log_file,
             "--sts-url", "https://127.0.0.1:%d" % cls.sts_port, "--sts-ca", os.path.join(cls.ca, "ca.crt"),
             "--trust-anchor", os.path.join(cls.pki, "anchor-ca.crt"), "--max-lifetime", "600", "--exit-with-parent"],
            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        for _ in range(300):
            if os.path.exists(port_file):
                break
            time.sleep(0.05)
        with open(port_file) as f:
            cls.port = int(f.read())
        with open(http_port_file) as f:
            cls.http_port = int(f.read())

    @classmethod
    def tearDownClass(cls):
        stop_sim(cls.proc)
        stop_sim(cls.sts_proc)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.control("POST", "/_sim/reset")
        self.sts("POST", "/_sim/reset")
        self.sts("POST", "/_sim/discovery-role", {"trusted": [ROLE, "arn:aws:iam::111122223333:role/cloudconn-instance",
                                                             "arn:aws:iam::111122223333:role/cloudconn-task"]})

    # -- helpers -------------------------------------------------------------------------------

    def _https(self, port, method, path, body=b"", headers=()):
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=self.ctx, timeout=20)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            hs = list(headers)
            if not any(n.lower() == "host" for n, _ in hs):
                hs.insert(0, ("Host", "127.0.0.1:%d" % port))
            for n, v in hs:
                conn.putheader(n, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def control(self, method, path, body=None):
        st, _, out = self._https(self.port, method, path, json.dumps(body).encode() if body is not None else b"",
                                 [("Content-Type", "application/json")])
        self.assertLess(st, 300, out)
        return json.loads(out) if out else None

    def sts(self, method, path, body=None):
        st, _, out = self._https(self.sts_port, method, path, json.dumps(body).encode() if body is not None else b"",
                                 [("Content-Type", "application/json")])
        self.assertLess(st, 300, out)
        return json.loads(out) if out else None

    def read(self, name):
        with open(os.path.join(self.pki, name), "rb") as f:
            return f.read()

    def create_session(self, cert, key, chain=(), query=None, body=b'{"durationSeconds":3600}', **kw):
        query = query if query is not None else "profileArn=%s&roleArn=%s&trustAnchorArn=%s" % (_q(PROFILE), _q(ROLE), _q(ANCHOR))
        host = "127.0.0.1:%d" % self.port
        headers = ra_sign(self.read(cert), self.read(key), host, query, body, [self.read(c) for c in chain], **kw)
        sent = kw.get("tamper_query") or query
        st, h, out = self._https(self.port, "POST", "/sessions?" + sent, body, headers)
        return st, h, json.loads(out) if out else None

    def http(self, method, path, headers=()):
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=20)
        try:
            conn.request(method, path, headers=dict(headers))
            r = conn.getresponse()
            return r.status, r.headers, r.read()
        finally:
            conn.close()

    def hop1(self, cred):
        """STS AssumeRole into the discovery role, signed with cred (key, secret, token)."""
        body = ("Action=AssumeRole&Version=2011-06-15&RoleArn=%s&RoleSessionName=cloudconn-discovery&DurationSeconds=900"
                % _q(DISCOVERY)).encode()
        headers = [("Host", "127.0.0.1:%d" % self.sts_port), ("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
        add, _ = client_sign("POST", "/", "", headers, body, cred[0], cred[1], "us-east-1", "sts",
                             datetime.datetime.utcnow(), token=cred[2])
        st, _, out = self._https(self.sts_port, "POST", "/", body, headers + add)
        return st, out

    # -- IAM Roles Anywhere --------------------------------------------------------------------

    def test_rsa_with_chain_and_hop1(self):
        st, h, out = self.create_session("rsa.crt", "rsa.key", chain=["intermediate.crt"])
        self.assertEqual(st, 201, out)
        self.assertEqual(h["Content-Type"], "application/json")
        self.assertTrue(h["x-amzn-RequestId"])
        cs = out["credentialSet"][0]
        self.assertEqual(sorted(cs), ["assumedRoleUser", "credentials", "packedPolicySize", "roleArn", "sourceIdentity"])
        self.assertEqual(sorted(cs["credentials"]), ["accessKeyId", "expiration", "secretAccessKey", "sessionToken"])
        self.assertRegex(cs["credentials"]["expiration"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertRegex(cs["assumedRoleUser"]["arn"], r"^arn:aws:sts::111122223333:assumed-role/cloudconn-caller/[0-9a-f]+$")
        self.assertTrue(out["subjectArn"].startswith("arn:aws:rolesanywhere:us-east-1:111122223333:subject/"))
        c = cs["credentials"]
        st, body = self.hop1((c["accessKeyId"], c["secretAccessKey"], c["sessionToken"]))
        self.assertEqual(st, 200, body)
        entry = [e for e in self.control("GET", "/_sim/log") if e["service"] == "rolesanywhere"][-1]
        self.assertEqual((entry["algorithm"], entry["signature_valid"], entry["cert_trusted"], entry["chain_length"]),
                         ("AWS4-X509-RSA-SHA256", True, True, 1))

    def test_ecdsa(self):
        st, _, out = self.create_session("ecdsa.crt", "ecdsa.key")
        self.assertEqual(st, 201, out)

    def assertDenied(self, result, message, status=403, code="AccessDeniedException"):
        st, h, out = result
        self.assertEqual((st, h["x-amzn-ErrorType"], out), (status, code, {"message": message}))

    def test_refusals(self):
        self.assertDenied(self.create_session("untrusted.crt", "untrusted.key"), "Untrusted Signing Certificate")
        self.assertDenied(self.create_session("expired.crt", "expired.key"), "Untrusted Signing Certificate")
        self.assertDenied(self.create_session("notyet.crt", "notyet.key"), "Untrusted Signing Certificate")
        # the leaf of an intermediate, without the intermediate
        self.assertDenied(self.create_session("rsa.crt", "rsa.key"), "Untrusted Signing Certificate")
        # a key that is not the certificate's, a request changed after signing, another serial
        self.assertDenied(self.create_session("rsa.crt", "other.key", chain=["intermediate.crt"]), "Invalid signature")
        self.assertDenied(self.create_session("ecdsa.crt", "ecdsa.key", tamper_query="profileArn=%s&roleArn=%s&trustAnchorArn=%s"
                                              % (_q(PROFILE), _q(ROLE + "x"), _q(ANCHOR))), "Invalid signature")
        self.assertDenied(self.create_session("ecdsa.crt", "ecdsa.key", serial="12345"), "Invalid signature")
        self.assertDenied(self.create_session("ecdsa.crt", "ecdsa.key",
                                              when=datetime.datetime.utcnow() - datetime.timedelta(minutes=10)),
                          "Signature expired")
        st, h, out = self.create_session("ecdsa.crt", "ecdsa.key", query="roleArn=%s&trustAnchorArn=%s" % (_q(ROLE), _q(ANCHOR)))
        self.assertEqual((st, h["x-amzn-ErrorType"]), (400, "ValidationException"))
        self.assertIn("Value null at 'profileArn'", out["message"])
        st, h, out = self.create_session("ecdsa.crt", "ecdsa.key", body=b'{"durationSeconds":899}')
        self.assertEqual((st, h["x-amzn-ErrorType"]), (400, "ValidationException"))
        log = [e for e in self.control("GET", "/_sim/log") if e["service"] == "rolesanywhere"]
        self.assertEqual([e["status"] for e in log], [403] * 8 + [400, 400])
        self.assertEqual(self.control("GET", "/_sim/stats")["sessions_created"], 0)

    def test_lifetime_and_expiry_at_sts(self):
        self.control("POST", "/_sim/config", {"credential_lifetime_s": 1})
        st, _, out = self.create_session("ecdsa.crt", "ecdsa.key")
        c = out["credentialSet"][0]["credentials"]
        time.sleep(1.5)
        st, body = self.hop1((c["accessKeyId"], c["secretAccessKey"], c["sessionToken"]))
        self.assertEqual(st, 403)
        self.assertIn(b"ExpiredToken", body)

    # -- instance metadata and the container endpoint -------------------------------------------

    def test_imdsv2(self):
        st, _, _ = self.http("PUT", "/latest/api/token")
        self.assertEqual(st, 400, "a token needs its TTL")
        st, h, token = self.http("PUT", "/latest/api/token", [("X-aws-ec2-metadata-token-ttl-seconds", "60")])
        self.assertEqual((st, h["X-Aws-Ec2-Metadata-Token-Ttl-Seconds"], h["Server"]), (200, "60", "EC2ws"))
        st, _, body = self.http("GET", "/latest/meta-data/iam/security-credentials/")
        self.assertEqual(st, 401, "IMDSv1 is refused")
        self.assertIn(b"401 - Unauthorized", body)
        hdr = [("X-aws-ec2-metadata-token", token.decode())]
        st, _, role = self.http("GET", "/latest/meta-data/iam/security-credentials/", hdr)
        self.assertEqual((st, role), (200, b"cloudconn-instance"))
        st, _, doc = self.http("GET", "/latest/meta-data/iam/security-credentials/cloudconn-instance", hdr)
        c = json.loads(doc)
        self.assertEqual((st, c["Code"], c["Type"]), (200, "Success", "AWS-HMAC"))
        self.assertEqual(self.hop1((c["AccessKeyId"], c["SecretAccessKey"], c["Token"]))[0], 200)
        stats = self.control("GET", "/_sim/stats")
        self.assertEqual((stats["imdsv1_requests"], stats["imds_tokens_issued"]), (1, 1))
        st, _, _ = self.http("GET", "/latest/meta-data/iam/security-credentials/", [("X-aws-ec2-metadata-token", "AQAEAbogus")])
        self.assertEqual(st, 401)

    def test_container(self):
        st, _, doc = self.http("GET", "/v1/credentials")
        c = json.loads(doc)
        self.assertEqual((st, sorted(c)), (200, ["AccessKeyId", "Expiration", "RoleArn", "SecretAccessKey", "Token"]))
        self.assertEqual(self.hop1((c["AccessKeyId"], c["SecretAccessKey"], c["Token"]))[0], 200)
        self.control("POST", "/_sim/container", {"token": "a-container-token-0123456789"})
        self.assertEqual(self.http("GET", "/v1/credentials")[0], 401)
        self.assertEqual(self.http("GET", "/v1/credentials", [("Authorization", "wrong")])[0], 401)
        self.assertEqual(self.http("GET", "/v1/credentials", [("Authorization", "a-container-token-0123456789")])[0], 200)
        self.assertEqual(self.http("GET", "/v1/other")[0], 404)

    def test_log_holds_no_secret(self):
        self.create_session("ecdsa.crt", "ecdsa.key")
        self.control("POST", "/_sim/container", {"token": "a-container-token-0123456789"})
        self.http("GET", "/v1/credentials", [("Authorization", "a-container-token-0123456789")])
        _, _, token = self.http("PUT", "/latest/api/token", [("X-aws-ec2-metadata-token-ttl-seconds", "60")])
        self.http("GET", "/latest/meta-data/iam/security-credentials/cloudconn-instance", [("X-aws-ec2-metadata-token", token.decode())])
        issued = self.control("GET", "/_sim/issued-secrets")
        secrets = issued["secret_access_keys"] + issued["session_tokens"] + issued["imds_tokens"] + ["a-container-token-0123456789"]
        self.assertGreaterEqual(len(secrets), 8)
        with open(self.log_file) as f:
            text = f.read() + json.dumps(self.control("GET", "/_sim/log"))
        self.assertEqual([s for s in secrets if s in text], [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
