#!/usr/bin/python3
"""Server-side verifier of AWS Signature Version 4 (header form), for cloudconn's test simulators.

It rebuilds, from a request as it arrived on the wire, the canonical request, the string to sign
and the signature, and compares the signature with the one the client sent.  It is written from
the SigV4 description (the "create a canonical request / string to sign / calculate the
signature" steps) and checked against the AWS SigV4 test suite vendored under
vendor/aws-sigv4-test-suite/ (see test_aws_sim.py).  It shares no code with any signer: the
self-test signs with a separate client-side implementation, so a mistake cannot cancel itself out.

Python 3 standard library only.  Typical use by a server:

    auth = parse_authorization(headers)            # SigV4Error if absent or malformed
    secret = lookup(auth.access_key_id)            # the server's own business
    result = verify(method, raw_path, raw_query, headers, body, auth, secret)
    if not result.valid: ...                       # answer SignatureDoesNotMatch

`headers` is a list of (name, value) pairs in the order received, duplicates kept.
Nothing here ever logs or returns a secret; `VerifyResult` carries the expected signature only so
the self-test can compare it with the test suite, and callers must not log it.
"""

import datetime
import hashlib
import hmac
import re
import urllib.parse

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"

# RFC 3986 unreserved characters: SigV4 leaves exactly these unencoded (plus "/" in paths).
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
_AMZ_DATE_RE = re.compile(r"^(\d{8})T(\d{6})Z$")
_WS_RE = re.compile(r"\s+")


class SigV4Error(Exception):
    """The request cannot be verified at all.  `code` is the AWS error code a service answers
    with (IncompleteSignature, MissingAuthenticationToken, SignatureDoesNotMatch); `message` is
    safe to send back (it never contains the signature or any secret)."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class AuthInfo:
    """What the Authorization header and X-Amz-Date say.  No secret in here; `signature` is the
    client's signature, which callers must not log."""

    __slots__ = ("access_key_id", "date", "region", "service", "terminator", "signed_headers",
                 "signature", "amz_date", "amz_date_source")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))

    @property
    def scope(self):
        return "/".join((self.date, self.region, self.service, self.terminator))


class VerifyResult:
    __slots__ = ("valid", "canonical_request", "string_to_sign", "expected_signature")

    def __init__(self, valid, canonical_request, string_to_sign, expected_signature):
        self.valid = valid
        self.canonical_request = canonical_request
        self.string_to_sign = string_to_sign
        self.expected_signature = expected_signature


# --------------------------------------------------------------------------------------------
# Encoding and canonical pieces
# --------------------------------------------------------------------------------------------

def uri_encode(data, keep_slash=False):
    """Percent-encodes every byte except the unreserved ones (and "/" when asked), with
    upper-case hex, as SigV4 requires.  Takes str (encoded as UTF-8) or bytes."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    out = []
    for b in data:
        if b in _UNRESERVED or (keep_slash and b == 0x2F):
            out.append(chr(b))
        else:
            out.append("%%%02X" % b)
    return "".join(out)


def normalize_path(path):
    """RFC 3986 dot-segment removal plus collapsing of empty segments, which is what the SigV4
    description asks of every service but S3.  A trailing slash is kept ("/a/" stays "/a/")."""
    if not path:
        return "/"
    segments = []
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if seg == "..":
            if segments:
                segments.pop()
            continue
        segments.append(seg)
    out = "/" + "/".join(segments)
    trailing = path.endswith("/") or path.endswith("/.") or path.endswith("/..")
    if trailing and out != "/":
        out += "/"
    return out


def canonical_uri(raw_path, normalize=True, s3=False):
    """The path as sent is encoded once more.  For services other than S3 that is the
    "double encoding" of the SigV4 description: a client encodes each segment for the wire and
    signs the encoding of that, so "%20" on the wire is signed as "%2520".  S3 (s3=True) signs
    the path as it is, neither normalised nor encoded twice: the wire's encoding of it."""
    path = raw_path or "/"
    if s3:
        return uri_encode(urllib.parse.unquote_to_bytes(path), keep_slash=True)
    if normalize:
        path = normalize_path(path)
    return uri_encode(path, keep_slash=True)


def canonical_query(raw_query):
    """Each name and value is decoded and re-encoded (so both "%E1%88%B4" and a raw UTF-8
    name end up the same), then the pairs are sorted by name, then value.  "+" is not read as a
    space here: a SigV4 client encodes spaces as %20."""
    if not raw_query:
        return ""
    pairs = []
    for part in raw_query.split("&"):
        if part == "":
            continue
        name, _, value = part.partition("=")
        n = uri_encode(urllib.parse.unquote_to_bytes(name))
        v = uri_encode(urllib.parse.unquote_to_bytes(value))
        pairs.append((n, v))
    pairs.sort()
    return "&".join("%s=%s" % p for p in pairs)


def canonical_header_value(value):
    """Trims and collapses runs of white space (folded continuation lines included) to one
    space.  Quoted strings are not treated specially: the test suite collapses inside quotes too."""
    return _WS_RE.sub(" ", value).strip()


def canonical_headers(headers, signed_headers):
    """The canonical header block (each line ending in "\\n") for the names in `signed_headers`
    (already lower-case and sorted).  Several headers with one name are joined by commas in the
    order received; a signed header that is missing contributes an empty value, so the
    signatures then differ, as they would at AWS."""
    values = {}
    for name, value in headers:
        key = name.strip().lower()
        values.setdefault(key, []).append(canonical_header_value(value))
    return "".join("%s:%s\n" % (n, ",".join(values.get(n, []))) for n in signed_headers)


def payload_hash(body):
    return hashlib.sha256(body or b"").hexdigest()


def build_canonical_request(method, raw_path, raw_query, headers, signed_headers, body_hash,
                            normalize=True, s3=False):
    return "\n".join((
        method.upper(),
        canonical_uri(raw_path, normalize, s3),
        canonical_query(raw_query),
        canonical_headers(headers, signed_headers),
        ";".join(signed_headers),
        body_hash,
    ))


def build_string_to_sign(amz_date, scope, canonical_request):
    return "\n".join((ALGORITHM, amz_date, scope,
                      hashlib.sha256(canonical_request.encode("utf-8", "surrogateescape")).hexdigest()))


def _hmac(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_access_key, date, region, service):
    k_date = _hmac(("AWS4" + secret_access_key).encode("utf-8"), date)
    k_region = _hmac(k_date, region)
    k_service = _hmac(k_region, service)
    return _hmac(k_service, TERMINATOR)


def signature_for(secret_access_key, auth, string_to_sign):
    key = signing_key(secret_access_key, auth.date, auth.region, auth.service)
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------

def header_value(headers, name):
    """The first value of a header (case-insensitive), or None."""
    name = name.lower()
    for n, v in headers:
        if n.strip().lower() == name:
            return v
    return None


def parse_amz_date(value):
    """datetime (UTC) of an ISO 8601 basic timestamp such as 20150830T123600Z, or None."""
    if value is None:
        return None
    m = _AMZ_DATE_RE.match(value.strip())
    if not m:
        return None
    try:
        return datetime.datetime.strptime(value.strip(), "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def parse_authorization(headers):
    """Parses the Authorization header and the request date.  Raises SigV4Error with the code a
    service would answer.  Messages follow the AWS wording where it is known, but never repeat
    the header value (it carries the signature)."""
    raw = header_value(headers, "authorization")
    if raw is None:
        raise SigV4Error("MissingAuthenticationToken", "Request is missing Authentication Token")
    raw = raw.strip()
    algorithm, _, rest = raw.partition(" ")
    if algorithm != ALGORITHM:
        raise SigV4Error("IncompleteSignature", "Unsupported AWS 'algorithm': '%s'" % algorithm[:32])
    fields = {}
    for part in rest.split(","):
        k, sep, v = part.strip().partition("=")
        if sep and k in ("Credential", "SignedHeaders", "Signature") and k not in fields:
            fields[k] = v.strip()
    missing = [k for k in ("Credential", "SignedHeaders", "Signature") if not fields.get(k)]
    if missing:
        raise SigV4Error("IncompleteSignature", " ".join(
            "Authorization header requires '%s' parameter." % k for k in missing))
    cred = fields["Credential"].split("/")
    if len(cred) != 5 or not all(cred):
        raise SigV4Error("IncompleteSignature",
                         "Credential should be scoped to a valid region, service and date.")
    signature = fields["Signature"]
    if not re.fullmatch(r"[0-9a-f]{64}", signature):
        # Not a hex SHA-256 HMAC: it cannot match, but it is still a complete header.
        signature = signature[:128]
    signed = fields["SignedHeaders"].split(";")
    amz_date = header_value(headers, "x-amz-date")
    source = "x-amz-date"
    if amz_date is None:
        amz_date = header_value(headers, "date")
        source = "date"
    if amz_date is None:
        raise SigV4Error("IncompleteSignature",
                         "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    return AuthInfo(access_key_id=cred[0], date=cred[1], region=cred[2], service=cred[3],
                    terminator=cred[4], signed_headers=signed, signature=signature,
                    amz_date=amz_date.strip(), amz_date_source=source)


def check_scope(auth):
    """Problems with the credential scope that make the signature wrong whatever the key:
    returns a SignatureDoesNotMatch message, or None."""
    if auth.terminator != TERMINATOR:
        return "Credential should be scoped with a valid terminator: '%s', not '%s'." % (TERMINATOR, auth.terminator[:32])
    if parse_amz_date(auth.amz_date) is None:
        return "Date must be in ISO-8601 'basic format'. Got '%s'." % auth.amz_date[:32]
    if auth.amz_date[:8] != auth.date:
        return ("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                "'%s' != '%s', from '%s'." % (auth.date[:16], auth.amz_date[:8], auth.amz_date_source))
    if auth.signed_headers != sorted(set(auth.signed_headers)) or any(
            h != h.lower() or not h for h in auth.signed_headers):
        return "The SignedHeaders list must be sorted, lower-case and without duplicates."
    if "host" not in auth.signed_headers:
        return "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    return None


def clock_skew(auth, now, max_skew_s):
    """None when the request date is within max_skew_s of `now` (an aware datetime), else
    ("expired" | "not_yet", request_time)."""
    when = parse_amz_date(auth.amz_date)
    if when is None:
        return ("expired", None)
    delta = (now - when).total_seconds()
    if delta > max_skew_s:
        return ("expired", when)
    if -delta > max_skew_s:
        return ("not_yet", when)
    return None


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------

def verify(method, raw_path, raw_query, headers, body, auth, secret_access_key, normalize=True, s3=False):
    """Recomputes the signature with the given secret and compares it, in constant time, with
    the client's.  The payload hash is always that of the body actually received; a client's
    x-amz-content-sha256 that disagrees with it makes the request fail, as tampering would.
    s3=True: S3's rules for the path (see canonical_uri)."""
    body_hash = payload_hash(body)
    claimed = header_value(headers, "x-amz-content-sha256")
    claimed_ok = claimed is None or claimed.strip() in (body_hash, UNSIGNED_PAYLOAD)
    if claimed is not None and claimed.strip() == UNSIGNED_PAYLOAD:
        body_hash = UNSIGNED_PAYLOAD
    creq = build_canonical_request(method, raw_path, raw_query, headers, auth.signed_headers,
                                   body_hash, normalize, s3)
    sts = build_string_to_sign(auth.amz_date, auth.scope, creq)
    expected = signature_for(secret_access_key, auth, sts)
    valid = hmac.compare_digest(expected.encode("ascii"), auth.signature.encode("ascii", "replace")) and claimed_ok
    return VerifyResult(valid, creq, sts, expected)
