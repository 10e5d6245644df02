#!/usr/bin/python3
"""aws_caller_sim.py: where cloudconn's AWS caller gets credentials without long-lived keys.

One process, one state, two listeners:
  HTTPS (--port)       IAM Roles Anywhere: POST /sessions (CreateSession), and the control API
  plain HTTP           EC2 instance metadata, IMDSv2 (PUT /latest/api/token, then
  (--http-port)        GET /latest/meta-data/iam/security-credentials/[ROLE]), and a container's
                       credentials endpoint (GET on a configured path, with its Authorization token)

Every CreateSession is verified as IAM Roles Anywhere does: the AWS4-X509-RSA-SHA256 or
AWS4-X509-ECDSA-SHA256 signature against the certificate in X-Amz-X509 with Python's
cryptography (an implementation independent of cloudconn's OpenSSL code), the canonical request
with aws_sigv4.py's (checked on the official SigV4 suite), the certificate's chain up to a trust
anchor's CA and every certificate's dates.  Credentials handed out (by any of the three) are
registered with the STS simulator (aws_sim.py, --sts-url), so that hop 1 accepts them and
refuses them once expired.  Wire formats and where each comes from: README.md.

Python 3 standard library plus Debian's python3-cryptography.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

import aws_sigv4
import simlib

RSA_ALG = "AWS4-X509-RSA-SHA256"
ECDSA_ALG = "AWS4-X509-ECDSA-SHA256"
ACCOUNT = "111122223333"
DEFAULT_TRUST_ANCHOR_ARN = "arn:aws:rolesanywhere:us-east-1:%s:trust-anchor/4f8e0a2c-5b1d-4c3e-9f7a-0123456789ab" % ACCOUNT
DEFAULT_PROFILE_ARN = "arn:aws:rolesanywhere:us-east-1:%s:profile/9a7b6c5d-1e2f-4a3b-8c9d-abcdef012345" % ACCOUNT
DEFAULT_CALLER_ROLE_ARN = "arn:aws:iam::%s:role/cloudconn-caller" % ACCOUNT
DEFAULT_INSTANCE_ROLE = {"name": "cloudconn-instance", "role_arn": "arn:aws:iam::%s:role/cloudconn-instance" % ACCOUNT}
DEFAULT_CONTAINER = {"paths": ["/v2/credentials/6b0c1a2e-3f4d-4e5a-9b6c-7d8e9f0a1b2c", "/v1/credentials"],
                     "role_arn": "arn:aws:iam::%s:role/cloudconn-task" % ACCOUNT}

# WIRE: CreateSession's durationSeconds is 900..43200, 3600 by default (CreateSession API).
DURATION_MIN, DURATION_MAX, DURATION_DEFAULT = 900, 43200, 3600
# WIRE: an IMDSv2 token lives 1..21600 seconds (X-aws-ec2-metadata-token-ttl-seconds).
IMDS_TTL_MIN, IMDS_TTL_MAX = 1, 21600

# WIRE: messages.  "Untrusted Signing Certificate" and "Invalid signature" are what
# CreateSession was seen to answer (aws/rolesanywhere-credential-helper#108, #128, both 403
# AccessDeniedException); the others are chosen (README.md).
MSG_UNTRUSTED = "Untrusted Signing Certificate"
MSG_BAD_SIGNATURE = "Invalid signature"

IMDS_ERROR_HTML = ('<?xml version="1.0" encoding="iso-8859-1"?>\n'
                   '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
                   '\t"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
                   '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n'
                   ' <head>\n  <title>%(s)s - %(t)s</title>\n </head>\n'
                   ' <body>\n  <h1>%(s)s - %(t)s</h1>\n </body>\n</html>\n')
REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 500: "Internal Server Error", 503: "Service Unavailable"}


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def pem_certificates(text):
    """The certificates of a PEM bundle (cryptography 38 loads one at a time)."""
    out = []
    for m in re.finditer(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", text, re.S):
        out.append(x509.load_pem_x509_certificate(m.group(0).encode()))
    return out


def _naive_utc(now):
    return now.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def cert_current(cert, now):
    n = _naive_utc(now)
    return cert.not_valid_before <= n <= cert.not_valid_after


def issued_by(cert, issuer):
    """Whether issuer's key signed cert (and the names chain)."""
    if cert.issuer != issuer.subject:
        return False
    pub = issuer.public_key()
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
        elif isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        else:
            return False
    except InvalidSignature:
        return False
    return True


def is_ca(cert):
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def chain_trusted(leaf, intermediates, anchors, now):
    """A path leaf -> intermediates -> one of the anchors' CA certificates, every certificate on
    it current."""
    path = [leaf]
    current = leaf
    for _ in range(8):
        for a in anchors:
            if issued_by(current, a) and cert_current(a, now):
                return all(cert_current(c, now) for c in path)
        nxt = next((c for c in intermediates if all(c is not p for p in path) and is_ca(c) and issued_by(current, c)), None)
        if nxt is None:
            return False
        path.append(nxt)
        current = nxt
    return False


def signature_ok(cert, algorithm, data, signature):
    """The X.509 signature check of CreateSession, by cryptography: RSA PKCS #1 v1.5 or ECDSA
    (DER), over SHA-256 of the string to sign."""
    pub = cert.public_key()
    try:
        if algorithm == RSA_ALG and isinstance(pub, rsa.RSAPublicKey):
            pub.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif algorithm == ECDSA_ALG and isinstance(pub, ec.EllipticCurvePublicKey):
            pub.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            return False
    except InvalidSignature:
        return False
    return True


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _denied(message):
    return ApiError(403, "AccessDeniedException", message)


# --------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------

FAULT_RULES = simlib.FaultRules(simlib.GENERIC_FAULTS, match={
    "service": simlib.Text(choices=("rolesanywhere", "imds", "container")),
    "path_prefix": simlib.Prefix(default="/")})


class Sim(simlib.SimState):
    stats_template = {
        "requests_total": 0,
        "requests_by_service": {},
        "requests_by_status": {},
        "errors_by_code": {},
        "faults_applied": {},
        "sessions_created": 0,
        "imds_tokens_issued": 0,
        "imdsv1_requests": 0,
        "credentials_issued": 0,
    }
    config_keys = frozenset({"latency_ms", "credential_lifetime_s", "max_clock_skew_s"})
    fault_rules = FAULT_RULES

    def __init__(self, initial, base_config, log_path, sts_url=None, sts_ca=None):
        self.sts_url = sts_url
        self.sts_ctx = ssl.create_default_context(cafile=sts_ca) if sts_url else None
        super().__init__(initial, base_config, log_path)

    def reset_state(self, init):
        self.trust_anchors = {}
        for t in init.get("trust_anchors") or []:
            self.set_trust_anchor(t)
        self.profiles = {}
        for p in init.get("profiles") or [{"arn": DEFAULT_PROFILE_ARN, "role_arns": [DEFAULT_CALLER_ROLE_ARN]}]:
            self.set_profile(p)
        self.instance_role = init.get("instance_role", DEFAULT_INSTANCE_ROLE)
        self.container = dict(DEFAULT_CONTAINER, token=None)
        self.container.update(init.get("container") or {})
        self.imds_tokens = {}
        self.issued = []
        self.secrets = set()

    def check_config(self, data):
        super().check_config(data)
        v = data.get("credential_lifetime_s")
        if "credential_lifetime_s" in data and v is not None and not (simlib.is_number(v) and v > 0):
            raise ValueError("credential_lifetime_s must be a positive number of seconds, or null")
        if "max_clock_skew_s" in data and not (simlib.is_number(data["max_clock_skew_s"]) and data["max_clock_skew_s"] >= 0):
            raise ValueError("max_clock_skew_s must be a non-negative number")

    def set_trust_anchor(self, t):
        if not isinstance(t, dict) or not isinstance(t.get("arn"), str) or not isinstance(t.get("certificates"), str):
            raise ValueError("a trust anchor is {\"arn\": ..., \"certificates\": PEM text, \"enabled\": true}")
        certs = pem_certificates(t["certificates"])
        if not certs:
            raise ValueError("the trust anchor's PEM text holds no certificate")
        with self.lock:
            self.trust_anchors[t["arn"]] = {"certificates": certs, "enabled": t.get("enabled", True)}

    def set_profile(self, p):
        if not isinstance(p, dict) or not isinstance(p.get("arn"), str) or not isinstance(p.get("role_arns"), list):
            raise ValueError("a profile is {\"arn\": ..., \"role_arns\": [...], \"duration_seconds\": N, \"enabled\": true}")
        with self.lock:
            self.profiles[p["arn"]] = {"role_arns": list(p["role_arns"]), "enabled": p.get("enabled", True),
                                       "duration_seconds": int(p.get("duration_seconds", DURATION_DEFAULT))}

    def issue(self, role_arn, session_name, seconds, source):
        """Temporary credentials for role_arn, registered with the STS simulator."""
        with self.lock:
            lifetime = self.config.get("credential_lifetime_s")
        expires = _now() + datetime.timedelta(seconds=seconds if lifetime is None else float(lifetime))
        cred = {"access_key_id": "ASIA" + base64.b32encode(secrets.token_bytes(10)).decode()[:16],
                "secret_access_key": base64.b64encode(secrets.token_bytes(30)).decode(),
                "session_token": "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(420)).decode(),
                "expiration": _iso(expires), "role_arn": role_arn, "session_name": session_name,
                "source": source}
        if self.sts_url:
            req = urllib.request.Request(self.sts_url.rstrip("/") + "/_sim/sessions", method="POST",
                                         data=json.dumps(cred).encode(), headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, context=self.sts_ctx, timeout=10) as r:
                r.read()
        with self.lock:
            self.issued.append(cred)
            self.secrets.update((cred["secret_access_key"], cred["session_token"]))
            self.stats["credentials_issued"] += 1
        return cred

    def count_request(self, entry):
        st = self.stats
        svc = entry.get("service") or "unknown"
        st["requests_by_service"][svc] = st["requests_by_service"].get(svc, 0) + 1
        if entry.get("error_code"):
            st["errors_by_code"][entry["error_code"]] = st["errors_by_code"].get(entry["error_code"], 0) + 1
        if entry.get("imdsv1"):
            st["imdsv1_requests"] += 1

    def record(self, entry, text=None):
        # The log is built from safe fields; this is the safety net.
        text = json.dumps(entry, separators=(",", ":"))
        with self.lock:
            for sec in self.secrets:
                text = text.replace(sec, "[REDACTED]")
        super().record(json.loads(text), text)


# --------------------------------------------------------------------------------------------
# HTTP handling
# --------------------------------------------------------------------------------------------

class Handler(simlib.BaseHandler):
    sim_name = "aws_caller_sim"
    description = ("Simulator of IAM Roles Anywhere (HTTPS), EC2 instance metadata IMDSv2 and a container "
                   "credentials endpoint (plain HTTP).")
    state_help = "JSON: trust_anchors, profiles, instance_role, container, config, faults"
    server_header = None
    date_header = True

    def begin_call(self, call):
        plain = getattr(self.server, "plain", False)
        if not plain:
            call.service = "rolesanywhere"
        elif call.path.startswith("/latest/"):
            call.service = "imds"
        else:
            call.service = "container"
        entry = super().begin_call(call)
        entry.update(service=call.service, error_code=None)
        call.headers = list(self.headers.items())
        if call.service == "rolesanywhere":
            # logged before any fault answers: a test compares the dates of a request's attempts
            entry["amz_date"] = aws_sigv4.header_value(call.headers, "x-amz-date")
        return entry

    def inspect(self, call):
        return {"method": call.method, "path": call.path, "service": call.service}

    def respond(self, call):
        try:
            if call.fault and call.fault["kind"] == "status":
                raise ApiError(call.fault["status"], "InternalServerException" if call.fault["status"] >= 500 else "ThrottlingException",
                               "injected")
            if call.service == "rolesanywhere":
                return self._create_session(call)
            if call.service == "imds":
                return self._imds(call)
            return self._container(call)
        except ApiError as e:
            call.entry["error_code"] = e.code
            return self._error(call.service, e)

    @staticmethod
    def _error(service, e):
        if service == "rolesanywhere":
            # WIRE: restJson1: the error type in x-amzn-ErrorType, {"message": ...} in the body.
            return e.status, simlib.json_bytes({"message": e.message}), [
                ("Content-Type", "application/json"), ("x-amzn-ErrorType", e.code),
                ("x-amzn-RequestId", str(uuid.uuid4()))]
        if service == "imds":
            body = IMDS_ERROR_HTML % {"s": e.status, "t": REASONS.get(e.status, "Error")}
            return e.status, body.encode(), [("Content-Type", "text/html"), ("Server", "EC2ws")]
        return e.status, simlib.json_bytes({"code": e.code, "message": e.message}), [("Content-Type", "application/json")]

    # -- IAM Roles Anywhere ------------------------------------------------------------------

    def _create_session(self, call):
        sim = self.server.sim
        entry = call.entry
        if call.path != "/sessions" or call.method != "POST":
            raise ApiError(404, "ResourceNotFoundException", "Not Found")
        auth = aws_sigv4.header_value(call.headers, "authorization")
        x509_b64 = aws_sigv4.header_value(call.headers, "x-amz-x509")
        chain_b64 = aws_sigv4.header_value(call.headers, "x-amz-x509-chain")
        amz_date = aws_sigv4.header_value(call.headers, "x-amz-date")
        entry["authorization_present"] = auth is not None
        entry["chain_length"] = 0
        if auth is None or x509_b64 is None or amz_date is None:
            raise _denied("Missing Authentication Token")
        algorithm, _, rest = auth.strip().partition(" ")
        entry["algorithm"] = algorithm if algorithm in (RSA_ALG, ECDSA_ALG) else "other"
        fields = {}
        for part in rest.split(","):
            k, sep, v = part.strip().partition("=")
            if sep:
                fields.setdefault(k, v.strip())
        cred = fields.get("Credential", "").split("/")
        signed = fields.get("SignedHeaders", "").split(";")
        entry["signed_headers"] = signed
        if algorithm not in (RSA_ALG, ECDSA_ALG) or len(cred) != 5 or not re.fullmatch(r"[0-9a-f]+", fields.get("Signature", "")):
            raise _denied(MSG_BAD_SIGNATURE)
        try:
            leaf = x509.load_der_x509_certificate(base64.b64decode(x509_b64.strip(), validate=True))
            chain = [x509.load_der_x509_certificate(base64.b64decode(c.strip(), validate=True))
                     for c in chain_b64.split(",")] if chain_b64 is not None else []
        except (ValueError, binascii.Error):
            raise _denied("Invalid certificate")
        entry["chain_length"] = len(chain)
        entry["serial"] = str(leaf.serial_number)
        serial, date, region, service, terminator = cred
        now = _now()
        with sim.lock:
            skew = float(sim.config.get("max_clock_skew_s", 300))
        when = aws_sigv4.parse_amz_date(amz_date)
        if (serial != str(leaf.serial_number) or service != "rolesanywhere" or terminator != "aws4_request"
                or when is None or amz_date[:8] != date or signed != sorted(set(signed))
                or not {"host", "x-amz-date", "x-amz-x509"} <= set(signed)
                or (chain_b64 is not None and "x-amz-x509-chain" not in signed)):
            raise _denied(MSG_BAD_SIGNATURE)
        if abs((now - when).total_seconds()) > skew:
            raise _denied("Signature expired")
        creq = aws_sigv4.build_canonical_request(call.method, call.path, call.query, call.headers, signed,
                                                 aws_sigv4.payload_hash(call.body))
        sts = "\n".join((algorithm, amz_date, "/".join(cred[1:]), hashlib.sha256(creq.encode()).hexdigest()))
        entry["signature_valid"] = signature_ok(leaf, algorithm, sts.encode(), bytes.fromhex(fields["Signature"]))
        if not entry["signature_valid"]:
            raise _denied(MSG_BAD_SIGNATURE)

        params = urllib.parse.parse_qs(call.query, keep_blank_values=True)
        arns = {k: (params.get(k) or [None])[0] for k in ("profileArn", "roleArn", "trustAnchorArn")}
        missing = [k for k, v in arns.items() if not v]
        if missing:
            raise ApiError(400, "ValidationException", "%d validation error%s detected: %s" % (
                len(missing), "" if len(missing) == 1 else "s",
                "; ".join("Value null at '%s' failed to satisfy constraint: Member must not be null" % k for k in missing)))
        entry.update(trust_anchor_arn=arns["trustAnchorArn"], profile_arn=arns["profileArn"], role_arn=arns["roleArn"])
        with sim.lock:
            anchor = sim.trust_anchors.get(arns["trustAnchorArn"])
            profile = sim.profiles.get(arns["profileArn"])
        if anchor is None or not anchor["enabled"]:
            raise ApiError(404, "ResourceNotFoundException", "Trust anchor not found")
        if profile is None or not profile["enabled"]:
            raise ApiError(404, "ResourceNotFoundException", "Profile not found")
        entry["cert_trusted"] = chain_trusted(leaf, chain, anchor["certificates"], now)
        if not entry["cert_trusted"]:
            raise _denied(MSG_UNTRUSTED)
        if arns["roleArn"] not in profile["role_arns"]:
            raise _denied("Unable to assume role for %s. The role is not associated with the profile." % arns["roleArn"][:256])
        try:
            body = json.loads(call.body or b"{}")
            duration = body.get("durationSeconds", DURATION_DEFAULT) if isinstance(body, dict) else None
        except ValueError:
            duration = None
        if not isinstance(duration, int) or isinstance(duration, bool) or not DURATION_MIN <= duration <= DURATION_MAX:
            raise ApiError(400, "ValidationException", "1 validation error detected: Value at 'durationSeconds' failed "
                           "to satisfy constraint: Member must have value between 900 and 43200")
        entry["duration_seconds"] = duration
        # WIRE: the session is named after the certificate's serial number (hex).
        session = "%x" % leaf.serial_number
        c = sim.issue(arns["roleArn"], session, min(duration, profile["duration_seconds"]), "rolesanywhere")
        with sim.lock:
            sim.stats["sessions_created"] += 1
        entry["issued_access_key_id"] = c["access_key_id"]
        m = re.match(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(.+)$", arns["roleArn"])
        acct, rname = (m.group(1), m.group(2).split("/")[-1]) if m else (ACCOUNT, "role")
        answer = {
            "credentialSet": [{
                "assumedRoleUser": {"arn": "arn:aws:sts::%s:assumed-role/%s/%s" % (acct, rname, session),
                                    "assumedRoleId": "AROA%s:%s" % (hashlib.sha1(arns["roleArn"].encode()).hexdigest()[:17].upper(), session)},
                "credentials": {"accessKeyId": c["access_key_id"], "expiration": c["expiration"],
                                "secretAccessKey": c["secret_access_key"], "sessionToken": c["session_token"]},
                "packedPolicySize": 0,
                "roleArn": arns["roleArn"],
                "sourceIdentity": "CN=" + ",".join(a.value for a in leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)),
            }],
            "subjectArn": "arn:aws:rolesanywhere:%s:%s:subject/%s" % (region, acct, uuid.uuid5(uuid.NAMESPACE_OID, session)),
        }
        return 201, simlib.json_bytes(answer), [("Content-Type", "application/json"),
                                                ("x-amzn-RequestId", str(uuid.uuid4()))]

    # -- EC2 instance metadata (IMDSv2 required) ---------------------------------------------

    def _imds(self, call):
        sim = self.server.sim
        entry = call.entry
        token = aws_sigv4.header_value(call.headers, "x-aws-ec2-metadata-token")
        entry["imds_token_present"] = token is not None
        if call.path == "/latest/api/token":
            if call.method != "PUT":
                raise ApiError(405, "MethodNotAllowed", "")
            if aws_sigv4.header_value(call.headers, "x-forwarded-for") is not None:
                raise ApiError(403, "Forbidden", "")
            ttl = aws_sigv4.header_value(call.headers, "x-aws-ec2-metadata-token-ttl-seconds")
            try:
                ttl = int(ttl)
            except (TypeError, ValueError):
                ttl = None
            if ttl is None or not IMDS_TTL_MIN <= ttl <= IMDS_TTL_MAX:
                raise ApiError(400, "BadRequest", "")
            value = "AQAEA" + base64.b64encode(secrets.token_bytes(36)).decode()
            with sim.lock:
                sim.imds_tokens[value] = time.monotonic() + ttl
                sim.secrets.add(value)
                sim.stats["imds_tokens_issued"] += 1
            entry["imds_token_ttl"] = ttl
            return 200, value.encode(), [("Content-Type", "text/plain"), ("Server", "EC2ws"),
                                         ("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", str(ttl))]
        if call.method not in ("GET", "HEAD"):
            raise ApiError(405, "MethodNotAllowed", "")
        if token is None:
            # An IMDSv1 request: refused, as on an instance that requires IMDSv2.
            entry["imdsv1"] = True
            raise ApiError(401, "Unauthorized", "")
        with sim.lock:
            expires = sim.imds_tokens.get(token.strip())
        entry["imds_token_valid"] = expires is not None and expires > time.monotonic()
        if not entry["imds_token_valid"]:
            raise ApiError(401, "Unauthorized", "")
        base = "/latest/meta-data/iam/security-credentials/"
        with sim.lock:
            role = sim.instance_role
        if call.path == base:
            if role is None:
                raise ApiError(404, "NotFound", "")
            return 200, role["name"].encode(), [("Content-Type", "text/plain"), ("Server", "EC2ws")]
        if role is not None and call.path == base + role["name"]:
            c = sim.issue(role["role_arn"], "i-0123456789abcdef0", 6 * 3600, "imds")
            entry["issued_access_key_id"] = c["access_key_id"]
            # WIRE: the document's layout as the EC2 user guide shows it.
            body = ('{\n  "Code" : "Success",\n  "LastUpdated" : "%s",\n  "Type" : "AWS-HMAC",\n'
                    '  "AccessKeyId" : "%s",\n  "SecretAccessKey" : "%s",\n  "Token" : "%s",\n'
                    '  "Expiration" : "%s"\n}') % (_iso(_now()), c["access_key_id"], c["secret_access_key"],
                                                  c["session_token"], c["expiration"])
            return 200, body.encode(), [("Content-Type", "text/plain"), ("Server", "EC2ws")]
        raise ApiError(404, "NotFound", "")

    # -- a container's credentials endpoint --------------------------------------------------

    def _container(self, call):
        sim = self.server.sim
        entry = call.entry
        with sim.lock:
            cont = dict(sim.container)
        presented = aws_sigv4.header_value(call.headers, "authorization")
        entry["authorization_present"] = presented is not None
        if call.method != "GET" or call.path not in cont["paths"]:
            raise ApiError(404, "NotFound", "No credentials at this path")
        if cont.get("token"):
            entry["authorization_valid"] = presented is not None and hmac.compare_digest(
                presented.strip().encode(), cont["token"].encode())
            if not entry["authorization_valid"]:
                raise ApiError(401, "AccessDenied", "Invalid authorization token")
        c = sim.issue(cont["role_arn"], "cloudconn-task", 6 * 3600, "container")
        entry["issued_access_key_id"] = c["access_key_id"]
        # WIRE: the fields of the ECS task role credentials document, in its order.
        body = {"AccessKeyId": c["access_key_id"], "Expiration": c["expiration"], "RoleArn": cont["role_arn"],
                "SecretAccessKey": c["secret_access_key"], "Token": c["session_token"]}
        return 200, simlib.json_bytes(body), [("Content-Type", "application/json")]

    # -- the control API ---------------------------------------------------------------------

    def control_route(self, sim, m, seg, data):
        if seg == ["trust-anchors"] and m == "POST":
            for t in data if isinstance(data, list) else [data]:
                sim.set_trust_anchor(t)
            return 200, {"ok": True}
        if seg == ["profiles"] and m == "POST":
            for p in data if isinstance(data, list) else [data]:
                sim.set_profile(p)
            return 200, {"ok": True}
        if seg == ["instance-role"] and m == "POST":
            if data is not None and not (isinstance(data, dict) and isinstance(data.get("name"), str)
                                         and isinstance(data.get("role_arn"), str)):
                raise ValueError("send {\"name\": ..., \"role_arn\": ...}, or null for no role")
            with sim.lock:
                sim.instance_role = data
            return 200, {"ok": True}
        if seg == ["container"] and m == "POST":
            if not isinstance(data, dict) or set(data) - {"paths", "token", "role_arn"}:
                raise ValueError("send {\"paths\": [...], \"token\": ..., \"role_arn\": ...}")
            with sim.lock:
                sim.container.update(data)
                if data.get("token"):
                    sim.secrets.add(data["token"])
            return 200, {"ok": True}
        if seg == ["issued-secrets"] and m == "GET":
            # The one place the simulator shows secrets, so that a test can prove the client
            # never logged any of them.
            with sim.lock:
                return 200, {"secret_access_keys": [c["secret_access_key"] for c in sim.issued],
                             "session_tokens": [c["session_token"] for c in sim.issued],
                             "imds_tokens": list(sim.imds_tokens)}
        return None


class PlainServer(simlib.SimServer):
    """The plain-HTTP listener (IMDS, container endpoint): the metadata endpoints are http."""

    plain = True

    def finish_request(self, request, client_address):
        request.settimeout(simlib.HANDSHAKE_TIMEOUT)
        self.RequestHandlerClass(request, client_address, self)


def main(argv=None):
    ap = argparse.ArgumentParser(description=Handler.description)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="the HTTPS port (Roles Anywhere, control API); 0 picks one")
    ap.add_argument("--http-port", type=int, default=0, help="the plain HTTP port (IMDS, container); 0 picks one")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--state-file", help=Handler.state_help)
    ap.add_argument("--log", help="request log, one JSON object per line")
    ap.add_argument("--port-file", help="the HTTPS port is written here once both listen")
    ap.add_argument("--http-port-file", help="the plain HTTP port is written here (before --port-file)")
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--sts-url", help="the STS simulator (aws_sim.py) to register issued credentials with")
    ap.add_argument("--sts-ca", help="CA file that the STS simulator's certificate is checked against")
    ap.add_argument("--trust-anchor", help="PEM file: the CA certificates of the default trust anchor")
    ap.add_argument("--idle-timeout", type=float, default=30.0)
    ap.add_argument("--max-lifetime", type=float, default=0)
    ap.add_argument("--exit-with-parent", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    try:
        state = simlib.load_state(args.state_file)
        if args.trust_anchor and "trust_anchors" not in state:
            with open(args.trust_anchor, encoding="ascii") as f:
                state["trust_anchors"] = [{"arn": DEFAULT_TRUST_ANCHOR_ARN, "certificates": f.read()}]
        ctx = simlib.server_context(args.cert, args.key)
        sim = Sim(state, {"latency_ms": args.latency_ms, "credential_lifetime_s": None, "max_clock_skew_s": 300},
                  args.log, args.sts_url, args.sts_ca)
        tls = simlib.SimServer((args.host, args.port), sim, ctx, Handler, args.idle_timeout, args.verbose)
        plain = PlainServer((args.host, args.http_port), sim, None, Handler, args.idle_timeout, args.verbose)
    except (OSError, ValueError, ssl.SSLError) as e:
        sys.stderr.write("aws_caller_sim: cannot start: %s\n" % e)
        return 1

    def stop(*_):
        threading.Thread(target=tls.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.max_lifetime > 0:
        t = threading.Timer(args.max_lifetime, stop)
        t.daemon = True
        t.start()
    if args.exit_with_parent:
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            stop()
        threading.Thread(target=watch, daemon=True).start()
    threading.Thread(target=plain.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
    if args.http_port_file:
        simlib.write_port_file(args.http_port_file, plain.server_address[1])
    if args.port_file:
        simlib.write_port_file(args.port_file, tls.server_address[1])
    print(json.dumps({"event": "listening", "host": args.host, "port": tls.server_address[1],
                      "http_port": plain.server_address[1], "pid": os.getpid()}), flush=True)
    try:
        tls.serve_forever(poll_interval=0.2)
    finally:
        plain.shutdown()
        plain.server_close()
        tls.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
