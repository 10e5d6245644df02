#!/usr/bin/python3
"""HTTPS simulator of AWS STS, EC2, RDS, S3 and Lambda, for cloudconn's automated tests.

One process plays every service.  A request is routed by the service named in the credential
scope of its SigV4 signature ("sts", "ec2", "rds", "s3" or "lambda"); an unsigned request by its
path or Action.  It serves:

  STS (Version 2011-06-15): AssumeRole, GetCallerIdentity
  EC2 (Version 2016-11-15): DescribeRegions, DescribeInstances, DescribeVpcs
  RDS (Version 2014-10-31, Query API): DescribeDBInstances
  S3 (REST XML, path-style): ListBuckets, GetBucketLocation
  Lambda (REST-JSON, 2015-03-31): ListFunctions

with AWS's wire format (XML bodies and namespaces, status codes, error shapes), real SigV4
verification (aws_sigv4.py), the two-hop AssumeRole chain that cloudconn uses (a static IAM user
assumes the platform's discovery role, whose session assumes a customer's role that exists only
once its CloudFormation template was "applied"), IAM evaluation of that role's managed and inline
policies (aws_iam.py), and a control API under /_sim/ through which a test applies templates,
sets resources, injects faults and reads the request log and counters.  The resources other than
instances, and the wire shapes of RDS, S3 and Lambda, are aws_services.py's.

Python 3 standard library only.  README.md beside this file documents the control API, the fault
kinds, the default identities and where each error code comes from.  Where the official material
and observed behaviour differ, or nothing is documented, the choice made is written next to the
code concerned (search for "WIRE:").

The request log never holds a secret: no secret access key, no session token, no Authorization
header, no signature and no ExternalId value (only whether one was sent and whether it matched).
"""

import base64
import copy
import datetime
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import sys
import urllib.parse
import uuid
from xml.sax.saxutils import escape as _xml_escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import aws_iam  # noqa: E402  (beside this file: IAM policies of the customer role)
import aws_services  # noqa: E402  (beside this file: VPCs, RDS, S3 and Lambda resources and shapes)
import aws_sigv4  # noqa: E402  (beside this file; no package to import from)
import simlib  # noqa: E402  (beside this file: the server, control API, log and faults all simulators share)

# --------------------------------------------------------------------------------------------
# Wire constants
# --------------------------------------------------------------------------------------------

STS_VERSION = "2011-06-15"
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"
EC2_VERSION = "2016-11-15"
EC2_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"

# WIRE: STS answers "text/xml" with an indented body and no XML declaration; EC2 answers
# "text/xml;charset=UTF-8" with an XML declaration (the error shape on one line).  Both send
# the request id in x-amzn-RequestId; EC2 also sends "Server: AmazonEC2".
CT_STS = "text/xml"
CT_EC2 = "text/xml;charset=UTF-8"

STS_ACTIONS = ("AssumeRole", "GetCallerIdentity")
EC2_ACTIONS = ("DescribeRegions", "DescribeInstances", "DescribeVpcs")
RDS_ACTIONS = ("DescribeDBInstances",)
SERVICES = ("sts", "ec2", "rds", "s3", "lambda")

# The listing actions: their pagination parameter (request) and where each counts its pages.
LISTING_TOKENS = {"DescribeInstances": "NextToken", "DescribeVpcs": "NextToken", "DescribeDBInstances": "Marker",
                  "ListBuckets": "continuation-token", "ListFunctions": "Marker"}

# The IAM action of each API call of a customer session.
IAM_ACTIONS = {"DescribeRegions": "ec2:DescribeRegions", "DescribeInstances": "ec2:DescribeInstances",
               "DescribeVpcs": "ec2:DescribeVpcs", "DescribeDBInstances": "rds:DescribeDBInstances",
               "ListBuckets": "s3:ListAllMyBuckets", "GetBucketLocation": "s3:GetBucketLocation",
               "ListFunctions": "lambda:ListFunctions"}

# WIRE: messages of the errors the simulator sends.  Sources are listed in README.md; those not
# documented anywhere are marked "chosen" there.
MSG_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                 "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.")
MSG_STS_INVALID_TOKEN = "The security token included in the request is invalid."
MSG_STS_EXPIRED_TOKEN = "The security token included in the request is expired"
MSG_EC2_AUTH_FAILURE = "AWS was not able to validate the provided access credentials"
MSG_EC2_REQUEST_EXPIRED = "Request has expired."
MSG_EC2_UNAUTHORIZED = "You are not authorized to perform this operation."
MSG_EC2_THROTTLE = "Request limit exceeded."
MSG_STS_THROTTLE = "Rate exceeded"
MSG_S3_SIGNATURE = ("The request signature we calculated does not match the signature you provided. "
                    "Check your key and signing method.")
MSG_LAMBDA_SIGNATURE = MSG_SIGNATURE

# (status, code, message) of the server errors a "status" fault sends when the rule names no
# code: EC2's own server error codes, and STS's common errors (where a 5xx has Type Receiver).
SERVER_ERRORS = {
    "ec2": {500: ("InternalError", "An internal error has occurred"),
            503: ("ServiceUnavailable", "The request has failed due to a temporary failure of the server.")},
    "sts": {500: ("InternalFailure", "The request processing has failed because of an unknown error, exception or failure."),
            503: ("ServiceUnavailable", "The request has failed due to a temporary failure of the server.")},
    "rds": {500: ("InternalFailure", "The request processing has failed because of an unknown error, exception or failure."),
            503: ("ServiceUnavailable", "The request has failed due to a temporary failure of the server.")},
    "s3": {500: ("InternalError", "We encountered an internal error. Please try again."),
           503: ("ServiceUnavailable", "Service is unable to handle request.")},
    "lambda": {500: ("ServiceException", "An internal error occurred."),
               503: ("ServiceException", "The service is unavailable. Try again later.")},
}

# The retryable error codes each simulated service sends, with the status it sends them with: what
# an "error_code" fault answers ({"kind": "error_code", "service": S, "code": C}).  These are the
# codes of the AWS SDKs' standard retry mode (botocore/retries/standard.py) that these services
# use, and their server errors.  Sources: STS Throttling 400 (jlevers/selling-partner-api#278,
# aws/aws-sdk-go-v2#2481) and IDPCommunicationError 400 (STS API reference,
# AssumeRoleWithWebIdentity, Errors); EC2 RequestLimitExceeded 503 and Unavailable,
# InternalError, ServiceUnavailable (EC2 API reference, "Error codes", server errors); RDS
# Throttling 400 (the Query front end STS shares); S3 SlowDown 503, RequestTimeout 400,
# InternalError 500, ServiceUnavailable 503 (S3 API reference, "Error responses"); Lambda
# TooManyRequestsException 429, EC2ThrottledException 502, ServiceException 500 (Lambda API
# reference, Invoke and ListFunctions, Errors).  Messages are those sources' descriptions, cut
# short where they run to several sentences (IDPCommunicationError's is chosen).
SERVICE_ERROR_CODES = {
    "sts": {"Throttling": (400, MSG_STS_THROTTLE),
            "IDPCommunicationError": (400, "The request could not be fulfilled because the identity provider "
                                           "(IDP) that was asked to verify the incoming identity token could "
                                           "not be reached."),
            "InternalFailure": (500, SERVER_ERRORS["sts"][500][1]),
            "ServiceUnavailable": (503, SERVER_ERRORS["sts"][503][1])},
    "ec2": {"RequestLimitExceeded": (503, MSG_EC2_THROTTLE),
            "Unavailable": (503, "The server is overloaded and can't handle the request."),
            "InternalError": (500, SERVER_ERRORS["ec2"][500][1]),
            "ServiceUnavailable": (503, SERVER_ERRORS["ec2"][503][1])},
    "rds": {"Throttling": (400, MSG_STS_THROTTLE),
            "InternalFailure": (500, SERVER_ERRORS["rds"][500][1]),
            "ServiceUnavailable": (503, SERVER_ERRORS["rds"][503][1])},
    "s3": {"SlowDown": (503, "Please reduce your request rate."),
           "RequestTimeout": (400, "Your socket connection to the server was not read from or written to "
                                   "within the timeout period."),
           "InternalError": (500, SERVER_ERRORS["s3"][500][1]),
           "ServiceUnavailable": (503, SERVER_ERRORS["s3"][503][1])},
    "lambda": {"TooManyRequestsException": (429, "Rate exceeded"),
               "EC2ThrottledException": (502, "Amazon EC2 throttled Lambda during Lambda function "
                                              "initialization when using the execution role provided for the "
                                              "function."),
               "ServiceException": (500, SERVER_ERRORS["lambda"][500][1])},
}

# WIRE: SigV4 requests are accepted within 15 minutes of the server's clock.  STS says so in its
# "Signature expired: ... (... - 15 min.)" message and EC2's RequestExpired is documented with
# 15 minutes.  Tests that want another window set max_clock_skew_s.
MAX_CLOCK_SKEW_S = 900

# WIRE: AssumeRole's DurationSeconds is 900..43200, 3600 by default, and at most 3600 when a role
# session assumes another role ("role chaining").
DURATION_MIN, DURATION_MAX, DURATION_DEFAULT, CHAINING_MAX = 900, 43200, 3600, 3600

# WIRE: DescribeInstances' MaxResults is 5..1000.
MAX_RESULTS_MIN, MAX_RESULTS_MAX = 5, 1000

# Regions.  The first list is what DescribeRegions shows an account by default (the regions that
# need no opt-in), in the order of the AWS CLI's describe-regions example; the second is the
# opt-in regions, shown only with AllRegions=true unless a test enables them for an account.
DEFAULT_REGIONS = [
    "ap-south-1", "eu-north-1", "eu-west-3", "eu-west-2", "eu-west-1", "ap-northeast-3",
    "ap-northeast-2", "ap-northeast-1", "ca-central-1", "sa-east-1", "ap-southeast-1",
    "ap-southeast-2", "eu-central-1", "us-east-1", "us-east-2", "us-west-1", "us-west-2",
]
OPT_IN_REGIONS = [
    "af-south-1", "ap-east-1", "ap-south-2", "ap-southeast-3", "ap-southeast-4", "ca-west-1",
    "eu-south-1", "eu-south-2", "eu-central-2", "il-central-1", "me-south-1", "me-central-1",
]
ALL_REGIONS = DEFAULT_REGIONS + OPT_IN_REGIONS

# Default identities.  Keys have the shape of real ones (AKIA + 16, 40-character secrets) but are
# the simulator's own, published in README.md, and worthless anywhere else.
PLATFORM_ACCOUNT = "111122223333"
DEFAULT_USERS = [
    {"name": "cloudconn-platform", "account_id": PLATFORM_ACCOUNT,
     "access_key_id": "AKIASIMULATORCALLER2",
     "secret_access_key": "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"},
    # A real user of the platform account that the discovery role does not trust.
    {"name": "cloudconn-unprivileged", "account_id": PLATFORM_ACCOUNT,
     "access_key_id": "AKIASIMULATOROTHER23",
     "secret_access_key": "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"},
]
DEFAULT_DISCOVERY_ROLE_ARN = "arn:aws:iam::%s:role/AnzenDiscoveryRole" % PLATFORM_ACCOUNT
DEFAULT_CUSTOMER_ROLE_NAME = "AnzenCustomerDiscoveryRole"

MAX_API_BODY = 256 * 1024

_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/(?:[\w+=,.@-]+/)*([\w+=,.@-]{1,64})$")
_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]*$")
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]*$")
_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_INSTANCE_ID_RE = re.compile(r"^i-[0-9a-f]{8,17}$")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(dt, millis=False):
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# An AWS error answer; it is rendered in the shape of the service that was called (STS and RDS
# also derive their <Type> from the status: Sender for 4xx, Receiver for 5xx).
ApiError = aws_services.ApiError


def _err(service, kind, detail=None):
    """The error each service sends for one authentication or authorisation problem."""
    if service == "s3":
        return _err_s3(kind, detail)
    if service == "lambda":
        return _err_lambda(kind, detail)
    # STS and RDS are Query-protocol services with the same common errors
    query = service in ("sts", "rds")
    if kind == "missing_auth":
        if query:
            return ApiError(403, "MissingAuthenticationToken", "Request is missing Authentication Token")
        # WIRE: chosen.  EC2 answers an unsigned Query request by asking for the (SigV2-era)
        # AWSAccessKeyId parameter; not documented, see README.
        return ApiError(400, "MissingParameter", "The request must contain the parameter AWSAccessKeyId")
    if kind == "incomplete":
        return ApiError(400, "IncompleteSignature", detail or "The request signature does not conform to AWS standards.")
    if kind in ("unknown_key", "bad_token"):
        if query:
            return ApiError(403, "InvalidClientTokenId", MSG_STS_INVALID_TOKEN)
        return ApiError(401, "AuthFailure", MSG_EC2_AUTH_FAILURE)
    if kind == "signature":
        return ApiError(403, "SignatureDoesNotMatch", detail or MSG_SIGNATURE)
    if kind == "skew":
        if query:
            return ApiError(403, "SignatureDoesNotMatch", detail)
        return ApiError(400, "RequestExpired", MSG_EC2_REQUEST_EXPIRED)
    if kind == "expired_token":
        if query:
            return ApiError(403, "ExpiredToken", MSG_STS_EXPIRED_TOKEN)
        # WIRE: EC2 answers requests made with expired temporary credentials with
        # RequestExpired (400), not ExpiredToken; see README.
        return ApiError(400, "RequestExpired", MSG_EC2_REQUEST_EXPIRED)
    if kind == "throttle":
        if query:
            return ApiError(400, "Throttling", MSG_STS_THROTTLE)
        return ApiError(503, "RequestLimitExceeded", MSG_EC2_THROTTLE)
    if kind == "region_auth":
        if query:
            return ApiError(403, "InvalidClientTokenId", MSG_STS_INVALID_TOKEN)
        return ApiError(401, "AuthFailure", MSG_EC2_AUTH_FAILURE)
    raise ValueError(kind)


def _err_s3(kind, detail=None):
    """S3's answers (its REST errors, not the Query protocol's common ones)."""
    if kind == "missing_auth":
        return ApiError(403, "AccessDenied", "Access Denied")
    if kind == "incomplete":
        return ApiError(400, "AuthorizationHeaderMalformed", "The authorization header is malformed; %s"
                        % (detail or "it does not conform to AWS standards."))
    if kind == "unknown_key":
        return ApiError(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    if kind == "bad_token":
        return ApiError(400, "InvalidToken", "The provided token is malformed or otherwise invalid.")
    if kind == "signature":
        return ApiError(403, "SignatureDoesNotMatch", MSG_S3_SIGNATURE)
    if kind == "skew":
        return ApiError(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
    if kind == "expired_token":
        return ApiError(400, "ExpiredToken", "The provided token has expired.")
    if kind == "throttle":
        return ApiError(503, "SlowDown", "Please reduce your request rate.")
    if kind == "region_auth":
        return ApiError(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
    if kind == "missing_sha256":
        return ApiError(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    raise ValueError(kind)


def _err_lambda(kind, detail=None):
    """Lambda's answers: the REST-JSON services' common errors."""
    if kind == "missing_auth":
        return ApiError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    if kind == "incomplete":
        return ApiError(400, "IncompleteSignatureException", detail or "The request signature does not conform to AWS standards.")
    if kind in ("unknown_key", "bad_token", "region_auth"):
        return ApiError(403, "UnrecognizedClientException", MSG_STS_INVALID_TOKEN)
    if kind == "signature":
        return ApiError(403, "InvalidSignatureException", detail or MSG_LAMBDA_SIGNATURE)
    if kind == "skew":
        return ApiError(403, "InvalidSignatureException", detail)
    if kind == "expired_token":
        return ApiError(403, "ExpiredTokenException", MSG_STS_EXPIRED_TOKEN)
    if kind == "throttle":
        return ApiError(429, "TooManyRequestsException", "Rate exceeded",
                        {"Reason": "CallerRateLimitExceeded", "Type": "User"})
    raise ValueError(kind)


# --------------------------------------------------------------------------------------------
# XML
# --------------------------------------------------------------------------------------------

def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class RawXml(str):
    """XML lines already rendered (an instance's <item>, see rendered_instance): appended as
    they are."""


def rendered_instance(inst):
    """An instance as the <item> of an instancesSet, rendered once and kept in the instance
    (as "_xml") until _overlay changes it.  A page of 1000 instances is about 7.7 MB of
    XML; rendering it anew for every request would make the simulator, not the client,
    what a benchmark measures."""
    xml = inst.get("_xml")
    if xml is None:
        out = []
        _xml_node("item", inst, 4, 4, out)
        xml = inst["_xml"] = RawXml("\n".join(out))
    return xml


def _xml_node(name, value, level, indent, out):
    """Renders a value as AWS query-protocol XML: a dict becomes child elements in its key order
    (keys starting with "_" are internal and skipped, None values are left out), a list becomes
    <item> children, an empty string, dict or list an empty element."""
    if value is None:
        return
    pad = " " * (indent * level)
    if isinstance(value, dict):
        kids = [(k, v) for k, v in value.items() if not k.startswith("_") and v is not None]
        if not kids:
            out.append("%s<%s/>" % (pad, name))
            return
        out.append("%s<%s>" % (pad, name))
        for k, v in kids:
            _xml_node(k, v, level + 1, indent, out)
        out.append("%s</%s>" % (pad, name))
    elif isinstance(value, list):
        if not value:
            out.append("%s<%s/>" % (pad, name))
            return
        out.append("%s<%s>" % (pad, name))
        for v in value:
            if isinstance(v, RawXml):
                out.append(v)
            else:
                _xml_node("item", v, level + 1, indent, out)
        out.append("%s</%s>" % (pad, name))
    else:
        text = _text(value)
        if text == "":
            out.append("%s<%s/>" % (pad, name))
        else:
            out.append("%s<%s>%s</%s>" % (pad, name, _xml_escape(text), name))


def ec2_response_xml(action, request_id, fields):
    # WIRE: EC2 bodies start with an XML declaration and are indented by four spaces; requestId
    # is the first child of the <ActionResponse> element.
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<%sResponse xmlns="%s">' % (action, EC2_NS)]
    out.append("    <requestId>%s</requestId>" % request_id)
    for k, v in fields:
        _xml_node(k, v, 1, 4, out)
    out.append("</%sResponse>" % action)
    return ("\n".join(out) + "\n").encode("utf-8")


def ec2_error_xml(code, message, request_id):
    # WIRE: <Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>,
    # on one line after the declaration (note RequestID, not RequestId).
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code>'
            '<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>'
            % (_xml_escape(code), _xml_escape(message), request_id)).encode("utf-8")


def sts_response_xml(action, request_id, result):
    # WIRE: <ActionResponse><ActionResult>...</ActionResult><ResponseMetadata><RequestId/>
    # </ResponseMetadata></ActionResponse>, indented by two spaces, no declaration.
    out = ['<%sResponse xmlns="%s">' % (action, STS_NS)]
    _xml_node(action + "Result", result, 1, 2, out)
    out.append("  <ResponseMetadata>")
    out.append("    <RequestId>%s</RequestId>" % request_id)
    out.append("  </ResponseMetadata>")
    out.append("</%sResponse>" % action)
    return ("\n".join(out) + "\n").encode("utf-8")


def sts_error_xml(status, code, message, request_id):
    # WIRE: <ErrorResponse><Error><Type>Sender|Receiver</Type><Code/><Message/></Error>
    # <RequestId/></ErrorResponse>; Receiver for server-side (5xx) errors.
    kind = "Receiver" if status >= 500 else "Sender"
    return ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>\n'
            '    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
            % (STS_NS, kind, _xml_escape(code), _xml_escape(message), request_id)).encode("utf-8")


# --------------------------------------------------------------------------------------------
# Instance generator
# --------------------------------------------------------------------------------------------

STATE_CODES = {"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

# (type, cores, threads per core, architecture)
INSTANCE_TYPES = [
    ("t3.micro", 1, 2, "x86_64"), ("t3.small", 1, 2, "x86_64"), ("t3.medium", 1, 2, "x86_64"),
    ("m5.large", 1, 2, "x86_64"), ("c5.xlarge", 2, 2, "x86_64"), ("r5.large", 1, 2, "x86_64"),
    ("t4g.small", 2, 1, "arm64"), ("m6g.large", 2, 1, "arm64"),
]
INSTANCE_TYPE_BY_NAME = {t[0]: t for t in INSTANCE_TYPES}

# (platformDetails, usageOperation, platform element or None, boot mode, root device)
PLATFORMS = [
    ("Linux/UNIX", "RunInstances", None, "legacy-bios", "/dev/xvda"),
    ("Linux/UNIX", "RunInstances", None, "uefi", "/dev/xvda"),
    ("Red Hat Enterprise Linux", "RunInstances:0010", None, "legacy-bios", "/dev/sda1"),
    ("Windows", "RunInstances:0002", "windows", "legacy-bios", "/dev/sda1"),
]

def _hex_id(prefix, *parts):
    """A stable resource id (vpc-0..., subnet-0...) derived from its parts."""
    return prefix + "0" + hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


def _dns_names(region, private_ip, public_ip):
    """WIRE: us-east-1 uses ec2.internal and compute-1.amazonaws.com; other regions
    <region>.compute.internal and <region>.compute.amazonaws.com."""
    p = private_ip.replace(".", "-") if private_ip else None
    q = public_ip.replace(".", "-") if public_ip else None
    if region == "us-east-1":
        return ("ip-%s.ec2.internal" % p if p else "", "ec2-%s.compute-1.amazonaws.com" % q if q else "")
    return ("ip-%s.%s.compute.internal" % (p, region) if p else "",
            "ec2-%s.%s.compute.amazonaws.com" % (q, region) if q else "")


def _tag_set(tags):
    """Accepts {"k": "v"} or [{"key":..,"value":..}] (or [{"Key":..,"Value":..}])."""
    if tags is None:
        return None
    if isinstance(tags, dict):
        return [{"key": str(k), "value": "" if v is None else str(v)} for k, v in tags.items()]
    if isinstance(tags, list):
        out = []
        for t in tags:
            if not isinstance(t, dict):
                raise ValueError("each tag is an object with key and value")
            k = t.get("key", t.get("Key"))
            v = t.get("value", t.get("Value", ""))
            if not isinstance(k, str):
                raise ValueError("each tag needs a string key")
            out.append({"key": k, "value": "" if v is None else str(v)})
        return out
    raise ValueError("tags must be an object or a list of {key, value}")


def apply_state(inst, state, when=None):
    """Sets an instance's state and the fields that follow from it, as EC2 shows them: stopped
    instances lose their public address; terminated ones also lose their private address,
    subnet, VPC, volumes and interfaces.  The addresses are kept in hidden fields so that a test
    can start a stopped instance again."""
    if state not in STATE_CODES:
        raise ValueError("state must be one of: " + ", ".join(STATE_CODES))
    region = inst.get("_region", "us-east-1")
    when = when or datetime.datetime(2024, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
    inst["instanceState"] = {"code": STATE_CODES[state], "name": state}
    private_ip = inst.get("_privateIp")
    public_ip = inst.get("_publicIp") if state in ("pending", "running") else None
    gone = state in ("shutting-down", "terminated")
    pdns, dns = _dns_names(region, None if gone else private_ip, public_ip)
    inst["privateDnsName"] = pdns
    inst["dnsName"] = dns
    if state in ("stopping", "stopped", "shutting-down", "terminated"):
        inst["reason"] = "User initiated (%s GMT)" % when.strftime("%Y-%m-%d %H:%M:%S")
        inst["stateReason"] = {"code": "Client.UserInitiatedShutdown",
                               "message": "Client.UserInitiatedShutdown: User initiated shutdown"}
    else:
        inst["reason"] = ""
        inst["stateReason"] = None
    inst["ipAddress"] = public_ip
    for k in ("subnetId", "vpcId", "privateIpAddress"):
        inst[k] = None if gone else inst.get("_" + k)
    inst["blockDeviceMapping"] = [] if gone else copy.deepcopy(inst.get("_blockDeviceMapping") or [])
    if gone:
        inst["networkInterfaceSet"] = []
        inst["groupSet"] = []
    else:
        inst["groupSet"] = copy.deepcopy(inst.get("_groupSet") or [])
        inst["networkInterfaceSet"] = _interfaces(inst, public_ip)
    return inst


def _interfaces(inst, public_ip):
    eni = inst.get("_eni")
    if not eni:
        return []
    assoc = None
    if public_ip:
        assoc = {"publicIp": public_ip, "publicDnsName": inst.get("dnsName") or "", "ipOwnerId": "amazon"}
    return [{
        "networkInterfaceId": eni,
        "subnetId": inst.get("_subnetId"),
        "vpcId": inst.get("_vpcId"),
        "description": "",
        "ownerId": inst.get("_ownerId"),
        "status": "in-use",
        "macAddress": inst.get("_mac"),
        "privateIpAddress": inst.get("_privateIp"),
        "privateDnsName": inst.get("privateDnsName"),
        "sourceDestCheck": True,
        "groupSet": copy.deepcopy(inst.get("_groupSet") or []),
        "attachment": {"attachmentId": "eni-attach-" + eni[4:], "deviceIndex": 0, "status": "attached",
                       "attachTime": inst.get("launchTime"), "deleteOnTermination": True, "networkCardIndex": 0},
        "association": assoc,
        "privateIpAddressesSet": [{"privateIpAddress": inst.get("_privateIp"),
                                   "privateDnsName": inst.get("privateDnsName"),
                                   "primary": True, "association": copy.deepcopy(assoc)}],
        "ipv6AddressesSet": [],
        "interfaceType": "interface",
    }]


def build_instance(account, region, index, rng, *, state="running", instance_type=None, tags=None,
                   name=None, public_ip=True, reservation_id=None, ip_base=0, launch_time=None):
    """One instance with the elements of the DescribeInstances response, in the API's order.
    Hidden fields (starting with "_") are never rendered."""
    itype = INSTANCE_TYPE_BY_NAME[instance_type] if instance_type else rng.choice(INSTANCE_TYPES)
    plat = rng.choice(PLATFORMS if itype[3] == "x86_64" else PLATFORMS[:2])
    azs = [region + s for s in "abc"]
    az = azs[index % 3]
    vpc = _hex_id("vpc-", account, region)
    subnet = _hex_id("subnet-", account, az)
    sg = _hex_id("sg-", account, region, "web")
    octet = int(hashlib.sha256(("%s/%s" % (account, region)).encode()).hexdigest()[:2], 16)
    private_ip = "10.%d.%d.%d" % (octet, (index // 250) % 256, index % 250 + 4)
    public = simlib.public_ipv4(ip_base + index, wrap=True) if public_ip else None
    if launch_time is None:
        launch_time = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(
            minutes=37 * index + rng.randrange(30), seconds=rng.randrange(60))
    lt = _iso(launch_time, millis=True)
    iid = "i-0" + "%016x" % rng.getrandbits(64)
    vol = "vol-0" + "%016x" % rng.getrandbits(64)
    eni = "eni-0" + "%016x" % rng.getrandbits(64)
    mac = "0a:%02x:%02x:%02x:%02x:%02x" % tuple(rng.randrange(256) for _ in range(5))
    name = name or "sim-%s-%04d" % (region, index + 1)
    tag_list = [{"key": "Name", "value": name}]
    if tags is not None:
        tag_list += [t for t in _tag_set(tags) if t["key"] != "Name"]
    groups = [{"groupId": sg, "groupName": "sim-web"}]
    bdm = [{"deviceName": plat[4], "ebs": {"volumeId": vol, "status": "attached", "attachTime": lt,
                                          "deleteOnTermination": True}}]
    inst = {
        "_region": region, "_ownerId": account, "_reservationId": reservation_id or ("r-0" + "%016x" % rng.getrandbits(64)),
        "_privateIp": private_ip, "_publicIp": public, "_subnetId": subnet, "_vpcId": vpc,
        "_privateIpAddress": private_ip, "_groupSet": groups, "_blockDeviceMapping": bdm, "_eni": eni, "_mac": mac,
        "instanceId": iid,
        "imageId": "ami-0" + "%016x" % rng.getrandbits(64),
        "instanceState": None,
        "privateDnsName": "",
        "dnsName": "",
        "reason": "",
        "keyName": "sim-key" if index % 4 else None,
        "amiLaunchIndex": 0,
        "productCodes": [],
        "instanceType": itype[0],
        "launchTime": lt,
        "placement": {"availabilityZone": az, "groupName": "", "tenancy": "default"},
        "platform": plat[2],
        "monitoring": {"state": "disabled"},
        "subnetId": None,
        "vpcId": None,
        "privateIpAddress": None,
        "ipAddress": None,
        "sourceDestCheck": True,
        "groupSet": [],
        "stateReason": None,
        "architecture": itype[3],
        "rootDeviceType": "ebs",
        "rootDeviceName": plat[4],
        "blockDeviceMapping": [],
        "virtualizationType": "hvm",
        "clientToken": "",
        "tagSet": tag_list,
        "hypervisor": "xen",
        "networkInterfaceSet": [],
        "ebsOptimized": itype[0].startswith(("m", "c", "r")),
        "enaSupport": True,
        "cpuOptions": {"coreCount": itype[1], "threadsPerCore": itype[2]},
        "capacityReservationSpecification": {"capacityReservationPreference": "open"},
        "hibernationOptions": {"configured": False},
        "enclaveOptions": {"enabled": False},
        "metadataOptions": {"state": "applied", "httpTokens": "required", "httpPutResponseHopLimit": 2,
                            "httpEndpoint": "enabled", "httpProtocolIpv6": "disabled",
                            "instanceMetadataTags": "disabled"},
        "maintenanceOptions": {"autoRecovery": "default"},
        "currentInstanceBootMode": plat[3],
        "platformDetails": plat[0],
        "usageOperation": plat[1],
        "usageOperationUpdateTime": lt,
        "privateDnsNameOptions": {"hostnameType": "ip-name", "enableResourceNameDnsARecord": False,
                                  "enableResourceNameDnsAAAARecord": False},
    }
    return apply_state(inst, state, launch_time + datetime.timedelta(days=30))


def generate_instances(account, region, spec, start_index=0):
    """Deterministic: the same account, region, spec and starting index always give the same
    instances.  Raises ValueError on a bad spec."""
    count = spec.get("count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100000:
        raise ValueError("count must be an integer between 0 and 100000")
    seed = spec.get("seed", 0)
    states = spec.get("states") or ["running"]
    if not isinstance(states, list) or not all(s in STATE_CODES for s in states):
        raise ValueError("states must be a list drawn from: " + ", ".join(STATE_CODES))
    types = spec.get("instance_types")
    if types is not None and (not isinstance(types, list) or not types or not all(t in INSTANCE_TYPE_BY_NAME for t in types)):
        raise ValueError("instance_types must be a list drawn from: " + ", ".join(INSTANCE_TYPE_BY_NAME))
    tags = spec.get("tags")
    if tags is not None:
        _tag_set(tags)
    untagged_every = spec.get("untagged_every", 10)
    if not isinstance(untagged_every, int) or untagged_every < 0:
        raise ValueError("untagged_every must be a non-negative integer (0: every instance is tagged)")
    public_every = spec.get("public_ip_every", 3)
    if not isinstance(public_every, int) or public_every < 0:
        raise ValueError("public_ip_every must be a non-negative integer")
    per_reservation = spec.get("reservation_size", 3)
    if not isinstance(per_reservation, int) or per_reservation < 1:
        raise ValueError("reservation_size must be a positive integer")
    prefix = spec.get("name_prefix", "sim")
    if not isinstance(prefix, str):
        raise ValueError("name_prefix must be a string")
    rng = random.Random(repr(("ec2-instances", account, region, seed, start_index)))
    ip_base = int(hashlib.sha256(repr((account, region, seed)).encode()).hexdigest()[:8], 16) % 100000
    out = []
    reservation, left = None, 0
    for n in range(count):
        i = start_index + n
        if left == 0:
            reservation = "r-0" + "%016x" % rng.getrandbits(64)
            left = 1 + rng.randrange(per_reservation)
        left -= 1
        # Every public_ip_every-th instance has no public address (0: all have one).
        public = not (public_every and i % public_every == public_every - 1)
        inst = build_instance(account, region, i, rng, state=states[n % len(states)],
                              instance_type=types[n % len(types)] if types else None, tags=tags,
                              name="%s-%s-%04d" % (prefix, region, i + 1), public_ip=public,
                              reservation_id=reservation, ip_base=ip_base)
        if untagged_every and i % untagged_every == untagged_every - 1:
            inst["tagSet"] = None  # WIRE: an untagged instance has no tagSet element at all
        out.append(inst)
    return out


# The regional resources besides instances, as the control API and the state file name them
# (accounts/ID/regions/REGION/<path>): their id field, generator and PATCH shorthands.
REGIONAL_KINDS = {
    "vpcs": {"path": "vpcs", "id": "vpcId", "generate": aws_services.generate_vpcs,
             "shorthands": aws_services.vpc_shorthands},
    "db_instances": {"path": "db-instances", "id": "DBInstanceIdentifier", "generate": aws_services.generate_db_instances,
                     "shorthands": aws_services.db_shorthands},
    "functions": {"path": "functions", "id": "FunctionName", "generate": aws_services.generate_functions,
                  "shorthands": aws_services.function_shorthands},
}
KIND_BY_PATH = {k["path"]: name for name, k in REGIONAL_KINDS.items()}


def public_view(inst):
    """An instance as the control API shows it: the rendered fields plus the reservation."""
    v = {k: copy.deepcopy(val) for k, val in inst.items() if not k.startswith("_")}
    v["reservationId"] = inst.get("_reservationId")
    v["ownerId"] = inst.get("_ownerId")
    return v


# --------------------------------------------------------------------------------------------
# CloudFormation template (the one sql/cloudconn--0.1.0.sql, _aws_cloudformation_template, makes)
# --------------------------------------------------------------------------------------------

def parse_template(template, parameters=None):
    """Reads the customer role out of a template: its name, its trust statements (principals
    and the sts:ExternalId the condition requires) and MaxSessionDuration.  Only what the trust
    check needs is interpreted; everything else is accepted as CloudFormation would.  Raises
    ValueError saying what is wrong."""
    if isinstance(template, str):
        try:
            template = json.loads(template)
        except ValueError as e:
            raise ValueError("the template is not valid JSON: %s" % e)
    if not isinstance(template, dict):
        raise ValueError("the template must be a JSON object")
    params = template.get("Parameters") or {}
    if not isinstance(params, dict):
        raise ValueError("Parameters must be an object")
    overrides = parameters or {}

    def resolve(v, what):
        if isinstance(v, dict) and set(v) == {"Ref"}:
            name = v["Ref"]
            if name in overrides:
                return overrides[name]
            p = params.get(name)
            if not isinstance(p, dict) or "Default" not in p:
                raise ValueError("%s refers to parameter %r, which has no value" % (what, name))
            return p["Default"]
        return v

    resources = template.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise ValueError("the template has no Resources")
    roles = [(k, r) for k, r in resources.items() if isinstance(r, dict) and r.get("Type") == "AWS::IAM::Role"]
    if not roles:
        raise ValueError("the template has no AWS::IAM::Role resource")
    # The extension names it CustomerDiscoveryRole; any other template's first role will do.
    logical = "CustomerDiscoveryRole" if "CustomerDiscoveryRole" in dict(roles) else roles[0][0]
    props = resources[logical].get("Properties")
    if not isinstance(props, dict):
        raise ValueError("Resources.%s.Properties must be an object" % logical)
    role_name = resolve(props.get("RoleName"), "RoleName")
    if not isinstance(role_name, str) or not re.fullmatch(r"[\w+=,.@-]{1,64}", role_name):
        raise ValueError("Resources.%s.Properties.RoleName must be an IAM role name" % logical)
    max_session = props.get("MaxSessionDuration", 3600)
    if not isinstance(max_session, int) or not 3600 <= max_session <= 43200:
        raise ValueError("MaxSessionDuration must be an integer between 3600 and 43200")
    doc = props.get("AssumeRolePolicyDocument")
    if isinstance(doc, str):
        try:
            doc = json.loads(doc)
        except ValueError:
            raise ValueError("AssumeRolePolicyDocument is not valid JSON")
    if not isinstance(doc, dict):
        raise ValueError("Resources.%s.Properties.AssumeRolePolicyDocument must be an object" % logical)
    stmts = doc.get("Statement")
    if isinstance(stmts, dict):
        stmts = [stmts]
    if not isinstance(stmts, list) or not stmts:
        raise ValueError("AssumeRolePolicyDocument.Statement must be a non-empty list")
    trust = []
    for i, st in enumerate(stmts):
        if not isinstance(st, dict):
            raise ValueError("Statement[%d] must be an object" % i)
        if st.get("Effect") != "Allow":
            continue  # only Allow statements grant; Deny is not modelled
        actions = st.get("Action")
        actions = [actions] if isinstance(actions, str) else actions
        if not isinstance(actions, list) or not any(a in ("sts:AssumeRole", "sts:*", "*") for a in actions):
            continue
        principal = st.get("Principal")
        if not isinstance(principal, dict) or "AWS" not in principal:
            raise ValueError("Statement[%d].Principal must name an AWS principal" % i)
        aws = principal["AWS"]
        aws = [aws] if isinstance(aws, str) else aws
        if not isinstance(aws, list) or not all(isinstance(a, str) and a for a in aws):
            raise ValueError("Statement[%d].Principal.AWS must be an ARN, an account id or a list of them" % i)
        external_ids = None
        cond = st.get("Condition")
        if cond is not None:
            if not isinstance(cond, dict):
                raise ValueError("Statement[%d].Condition must be an object" % i)
            for op, block in cond.items():
                if op != "StringEquals" or not isinstance(block, dict):
                    raise ValueError("Statement[%d]: only StringEquals conditions are modelled" % i)
                for key, val in block.items():
                    if key != "sts:ExternalId":
                        raise ValueError("Statement[%d]: only the sts:ExternalId condition key is modelled" % i)
                    vals = val if isinstance(val, list) else [val]
                    vals = [resolve(v, "sts:ExternalId") for v in vals]
                    if not all(isinstance(v, str) and 2 <= len(v) <= 1224 for v in vals):
                        raise ValueError("sts:ExternalId must be a string of 2 to 1224 characters")
                    external_ids = vals
        trust.append({"principals": aws, "external_ids": external_ids})
    if not trust:
        raise ValueError("no Allow statement grants sts:AssumeRole")
    # what the role may do: its managed and inline policies, evaluated as IAM does
    statements = aws_iam.role_statements(props)
    return {"role_name": role_name, "max_session_duration": max_session, "trust": trust,
            "statements": statements}


def _role_id(arn):
    """A stable unique id ("AROA" + 17) for a role, as IAM shows them."""
    digest = hashlib.sha256(arn.encode()).digest()
    return "AROA" + base64.b32encode(digest).decode()[:17]


def _user_id(arn):
    digest = hashlib.sha256(arn.encode()).digest()
    return "AIDA" + base64.b32encode(digest).decode()[:17]


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

def _check_fault(r):
    """The fields of the AWS simulator's own fault kinds, and of its status faults (the generic
    ones and the match fields are simlib's)."""
    kind = r["kind"]
    if "retry_after" in r and (not isinstance(r["retry_after"], int) or isinstance(r["retry_after"], bool)
                               or not 0 <= r["retry_after"] <= 3600):
        raise ValueError("retry_after must be a number of seconds, 0..3600")
    if kind == "status":
        for key in ("code", "message"):
            if key in r and not isinstance(r[key], str):
                raise ValueError(key + " must be a string")
        if "code" not in r and r["status"] not in (500, 503):
            raise ValueError("a status fault other than 500 or 503 needs a \"code\"")
    elif kind == "error_code":
        codes = SERVICE_ERROR_CODES.get(r.get("service"))
        if codes is None:
            raise ValueError("an error_code fault needs a \"service\" (one of %s)" % ", ".join(sorted(SERVICE_ERROR_CODES)))
        if r.get("code") not in codes:
            raise ValueError("%s sends none of the retryable code %r; it sends %s"
                             % (r["service"], r.get("code"), ", ".join(sorted(codes))))
    elif kind == "expire_credentials":
        if r.setdefault("which", "all") not in ("all", "discovery", "customer"):
            raise ValueError("which must be \"all\", \"discovery\" or \"customer\"")


# A rule matches on the service, the action, the signature's region, the account (the caller's,
# or the one in AssumeRole's RoleArn), a listing's page, the principal's kind and the method.
FAULT_RULES = simlib.FaultRules(
    ("throttle", "status", "error_code", "auth_failure", "reset", "slow", "truncate", "malformed",
     "expire_credentials"),
    match={"service": simlib.Text(choices=SERVICES), "action": simlib.Text(), "region": simlib.Text(),
           "account": simlib.Text(), "principal_kind": simlib.Text(),
           "page": simlib.Positive(hint="a listing's pages count from 1")},
    check_kind=_check_fault)


# --------------------------------------------------------------------------------------------
# Log redaction
# --------------------------------------------------------------------------------------------

def _secret_forms(secret):
    """A secret as it may appear in JSON text: raw, JSON-escaped and percent-encoded."""
    return {secret, json.dumps(secret)[1:-1], urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)}


class Redactor:
    """Finds every known secret, in any of its encoded forms, in a piece of text and replaces it
    with [REDACTED].  The simulator may hold thousands of session secrets and tokens (benchmarks
    issue many), so instead of searching for each one, it indexes them by length and only looks
    at the runs of characters that secrets are made of: the cost per log entry stays small and
    does not grow with the number of secrets.  Not thread-safe: the simulator holds its lock."""

    MIN_LEN = 4

    def __init__(self):
        self.by_len = {}
        self.chars = set()
        self._run_re = None

    def add(self, secret):
        if not isinstance(secret, str) or len(secret) < self.MIN_LEN:
            return
        for form in _secret_forms(secret):
            self.by_len.setdefault(len(form), set()).add(form)
            if not set(form) <= self.chars:
                self.chars |= set(form)
                self._run_re = None

    def redact(self, text):
        if not self.by_len:
            return text
        if self._run_re is None:
            self._run_re = re.compile("[%s]{%d,}" % (re.escape("".join(sorted(self.chars))), min(self.by_len)))
        spans = []
        for m in self._run_re.finditer(text):
            run, base = m.group(), m.start()
            for n, forms in self.by_len.items():
                for i in range(len(run) - n + 1):
                    if run[i:i + n] in forms:
                        spans.append((base + i, base + i + n))
        if not spans:
            return text
        # Overlapping matches are merged, so no part of any secret survives.
        out, pos, end = [], 0, -1
        for a, b in sorted(spans):
            if a <= end:
                end = max(end, b)
                continue
            if end >= 0:
                out.append("[REDACTED]")
                pos = end
            out.append(text[pos:a])
            end = b
        out.append("[REDACTED]")
        out.append(text[end:])
        return "".join(out)


# --------------------------------------------------------------------------------------------
# Simulator state (shared by all connection threads)
# --------------------------------------------------------------------------------------------

class Sim(simlib.SimState):
    stats_template = {
        "requests_total": 0,
        "requests_by_service": {},
        "requests_by_action": {},
        "requests_by_status": {},
        "errors_by_code": {},
        "faults_applied": {},
        "credentials_issued": 0,
    }
    config_keys = frozenset({"latency_ms", "credential_lifetime_s", "max_clock_skew_s", "clock_offset_s",
                             "full_page_next_token", "default_max_results", "s3_bucket_region"})
    fault_rules = FAULT_RULES

    def __init__(self, initial, base_config, log_path):
        # Pagination tokens are MACed with a per-process key, so a client cannot forge one and a
        # token from another simulator is refused.
        self.token_key = secrets.token_bytes(32)
        super().__init__(initial, base_config, log_path)

    # -- lifecycle ---------------------------------------------------------------------------

    def reset_state(self, init):
        self.redactor = Redactor()
        self.users = {}
        for u in init.get("users") if init.get("users") is not None else DEFAULT_USERS:
            self.set_user(u)
        d = init.get("discovery_role") or {}
        self.set_discovery_role(d.get("arn", DEFAULT_DISCOVERY_ROLE_ARN), d.get("max_session_duration", 3600),
                                d.get("trusted"))
        self.customer_role_name = init.get("customer_role_name") or DEFAULT_CUSTOMER_ROLE_NAME
        self.accounts = {}
        self.sessions = {}
        for acct, spec in (init.get("accounts") or {}).items():
            self._load_account(acct, spec)

    def check_config(self, data):
        super().check_config(data)  # latency_ms
        num = simlib.is_number
        if "credential_lifetime_s" in data and data["credential_lifetime_s"] is not None and not (
                num(data["credential_lifetime_s"]) and data["credential_lifetime_s"] > 0):
            raise ValueError("credential_lifetime_s must be a positive number of seconds, or null (DurationSeconds)")
        if "max_clock_skew_s" in data and not (num(data["max_clock_skew_s"]) and data["max_clock_skew_s"] >= 0):
            raise ValueError("max_clock_skew_s must be a non-negative number")
        if "clock_offset_s" in data and not num(data["clock_offset_s"]):
            raise ValueError("clock_offset_s must be a number of seconds")
        if "full_page_next_token" in data and not isinstance(data["full_page_next_token"], bool):
            raise ValueError("full_page_next_token must be true or false")
        if "default_max_results" in data and data["default_max_results"] is not None and not (
                isinstance(data["default_max_results"], int) and data["default_max_results"] > 0):
            raise ValueError("default_max_results must be a positive integer or null")
        if "s3_bucket_region" in data and not isinstance(data["s3_bucket_region"], bool):
            raise ValueError("s3_bucket_region must be true or false")

    def _load_account(self, acct, spec):
        a = self.account(acct)
        if "regions" in spec:
            self.set_regions(acct, spec["regions"])
        if "template" in spec:
            self.apply_template(acct, spec["template"], spec.get("parameters"))
        for region, inst in (spec.get("instances") or {}).items():
            if isinstance(inst, dict):
                a["instances"][region] = generate_instances(acct, region, inst)
            else:
                a["instances"][region] = [dict(i) for i in inst]
        for kind in REGIONAL_KINDS:
            for region, gen in (spec.get(kind) or {}).items():
                a[kind][region] = REGIONAL_KINDS[kind]["generate"](acct, region, gen)
        if spec.get("buckets") is not None:
            a["buckets"] = aws_services.generate_buckets(acct, spec["buckets"])

    def now(self):
        """The server's clock, shifted by clock_offset_s so tests can create clock skew without
        touching the client's clock."""
        with self.lock:
            off = float(self.config.get("clock_offset_s") or 0)
        return _now() + datetime.timedelta(seconds=off)

    # -- identities ----------------------------------------------------------------------------

    def set_user(self, u):
        if not isinstance(u, dict):
            raise ValueError("a user is a JSON object")
        for k in ("name", "access_key_id", "secret_access_key"):
            if not isinstance(u.get(k), str) or not u[k]:
                raise ValueError("a user needs a non-empty %r" % k)
        if not re.fullmatch(r"AKIA[A-Z0-9]{12,124}", u["access_key_id"]):
            raise ValueError("access_key_id must look like AKIA followed by upper-case letters and digits")
        acct = u.get("account_id", PLATFORM_ACCOUNT)
        if not isinstance(acct, str) or not _ACCOUNT_RE.match(acct):
            raise ValueError("account_id must be 12 digits")
        arn = "arn:aws:iam::%s:user/%s" % (acct, u["name"])
        with self.lock:
            self.users[u["access_key_id"]] = {"name": u["name"], "account_id": acct, "arn": arn,
                                              "secret_access_key": u["secret_access_key"]}
            self.redactor.add(u["secret_access_key"])

    def set_discovery_role(self, arn, max_session_duration=3600, trusted=None):
        m = _ROLE_ARN_RE.match(arn or "")
        if not m:
            raise ValueError("the discovery role must be an IAM role ARN such as %s" % DEFAULT_DISCOVERY_ROLE_ARN)
        if not isinstance(max_session_duration, int) or not 3600 <= max_session_duration <= 43200:
            raise ValueError("max_session_duration must be 3600..43200")
        with self.lock:
            if trusted is None:
                # By default only the first configured user (the platform's caller) is trusted.
                first = next(iter(self.users.values()), None)
                trusted = [first["arn"]] if first else []
            self.discovery_role = {"arn": arn, "account_id": m.group(1), "name": m.group(2),
                                   "max_session_duration": max_session_duration,
                                   "role_id": _role_id(arn),
                                   "trust": [{"principals": list(trusted), "external_ids": None}]}

    def account(self, acct):
        if not isinstance(acct, str) or not _ACCOUNT_RE.match(acct):
            raise ValueError("an account id is 12 digits")
        with self.lock:
            a = self.accounts.get(acct)
            if a is None:
                a = self.accounts[acct] = {"roles": {}, "regions": {r: "opt-in-not-required" for r in DEFAULT_REGIONS},
                                           "instances": {}, "vpcs": {}, "db_instances": {}, "functions": {},
                                           "buckets": []}
            return a

    def set_regions(self, acct, enabled):
        """enabled: a list of region names; the account then sees exactly these (opt-in ones as
        "opted-in").  Tests use small sets to keep runs short."""
        if not isinstance(enabled, list) or not all(isinstance(r, str) for r in enabled):
            raise ValueError("send {\"enabled\": [region names]}")
        unknown = [r for r in enabled if r not in ALL_REGIONS]
        if unknown:
            raise ValueError("unknown regions: %s (known: %s)" % (", ".join(unknown), ", ".join(ALL_REGIONS)))
        with self.lock:
            a = self.account(acct)
            a["regions"] = {r: ("opt-in-not-required" if r in DEFAULT_REGIONS else "opted-in") for r in enabled}

    def apply_template(self, acct, template, parameters=None):
        parsed = parse_template(template, parameters)
        arn = "arn:aws:iam::%s:role/%s" % (acct, parsed["role_name"])
        role = {"arn": arn, "account_id": acct, "name": parsed["role_name"], "role_id": _role_id(arn),
                "max_session_duration": parsed["max_session_duration"], "trust": parsed["trust"],
                "statements": parsed["statements"]}
        with self.lock:
            self.account(acct)["roles"][parsed["role_name"]] = role
            for st in parsed["trust"]:
                for e in st["external_ids"] or []:
                    self.redactor.add(e)
        return role

    def lookup_key(self, access_key_id):
        """(kind, record) for an access key: ("user", user), ("session", session) or (None, None)."""
        with self.lock:
            if access_key_id in self.users:
                return "user", self.users[access_key_id]
            s = self.sessions.get(access_key_id)
            if s is not None:
                return "session", s
        return None, None

    def find_role(self, arn):
        m = _ROLE_ARN_RE.match(arn or "")
        if not m:
            return None
        with self.lock:
            if arn == self.discovery_role["arn"]:
                return self.discovery_role
            a = self.accounts.get(m.group(1))
            role = a["roles"].get(m.group(2)) if a else None
            return role if role and role["arn"] == arn else None

    def known_external_ids(self):
        with self.lock:
            out = []
            for a in self.accounts.values():
                for role in a["roles"].values():
                    for st in role["trust"]:
                        out += st["external_ids"] or []
            return out

    def issue_session(self, role, session_name, duration, source_arn, kind):
        now = self.now()
        with self.lock:
            lifetime = self.config.get("credential_lifetime_s")
        seconds = duration if lifetime is None else float(lifetime)
        # AWS keys are upper-case base32; the secret is 40 characters of base64's alphabet.
        key = "ASIA" + base64.b32encode(secrets.token_bytes(10)).decode()[:16]
        secret = base64.b64encode(secrets.token_bytes(30)).decode()
        token = "IQoJb3JpZ2luX2VjE" + base64.b64encode(secrets.token_bytes(480)).decode()
        expires = now + datetime.timedelta(seconds=seconds)
        s = {"access_key_id": key, "secret_access_key": secret, "session_token": token,
             "expires_at": expires, "role_arn": role["arn"], "role_name": role["name"],
             "account_id": role["account_id"], "session_name": session_name, "kind": kind,
             "arn": "arn:aws:sts::%s:assumed-role/%s/%s" % (role["account_id"], role["name"], session_name),
             "assumed_role_id": "%s:%s" % (role["role_id"], session_name), "source_arn": source_arn,
             "issued_at": now}
        with self.lock:
            self.sessions[key] = s
            self.redactor.add(secret)
            self.redactor.add(token)
            self.stats["credentials_issued"] += 1
        return s

    def register_session(self, data):
        """Temporary credentials issued elsewhere (aws_caller_sim.py: IAM Roles Anywhere, instance
        metadata, a container endpoint) for a role, known from now on as a "caller" session: it
        may assume the discovery role, if that trusts the role, as the platform user may."""
        if not isinstance(data, dict):
            raise ValueError("send {access_key_id, secret_access_key, session_token, role_arn, session_name, expiration}")
        for k in ("access_key_id", "secret_access_key", "session_token", "role_arn", "session_name", "expiration"):
            if not isinstance(data.get(k), str) or not data[k]:
                raise ValueError("a session needs a non-empty %r" % k)
        m = _ROLE_ARN_RE.match(data["role_arn"])
        if not m or not re.fullmatch(r"ASIA[A-Z0-9]{12,124}", data["access_key_id"]):
            raise ValueError("role_arn must be an IAM role ARN, access_key_id ASIA followed by upper-case letters and digits")
        try:
            expires = datetime.datetime.strptime(data["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
        except ValueError:
            raise ValueError("expiration looks like 2026-01-01T12:00:00Z")
        acct, name = m.group(1), m.group(2)
        s = {"access_key_id": data["access_key_id"], "secret_access_key": data["secret_access_key"],
             "session_token": data["session_token"], "expires_at": expires, "role_arn": data["role_arn"],
             "role_name": name, "account_id": acct, "session_name": data["session_name"], "kind": "caller",
             "arn": "arn:aws:sts::%s:assumed-role/%s/%s" % (acct, name, data["session_name"]),
             "assumed_role_id": "%s:%s" % (_role_id(data["role_arn"]), data["session_name"]),
             "source_arn": data.get("source", "external"), "issued_at": self.now()}
        with self.lock:
            self.sessions[s["access_key_id"]] = s
            self.redactor.add(s["secret_access_key"])
            self.redactor.add(s["session_token"])
        return s

    def expire_sessions(self, which="all"):
        """Makes the temporary credentials issued so far expire now.  Later AssumeRole calls
        get fresh, valid ones."""
        now = self.now()
        n = 0
        with self.lock:
            for s in self.sessions.values():
                if (which == "all" or s["kind"] == which) and s["expires_at"] > now:
                    s["expires_at"] = now - datetime.timedelta(seconds=1)
                    n += 1
        return n

    # -- log and counters ----------------------------------------------------------------------

    def redact(self, obj, extra_secrets=()):
        """obj as compact JSON text with every known secret (and its encoded forms) replaced by
        [REDACTED].  The log and the control API's views are built from safe fields only; this
        is the safety net that keeps a secret out even if one slipped into, say, a role session
        name.  extra_secrets are what this request presented (token, signature, ExternalId),
        which may be unknown to the simulator; short ones are left alone, as they are no secret
        and replacing them would mangle ordinary words."""
        text = json.dumps(obj, separators=(",", ":"), default=str)
        for e in sorted({e for e in extra_secrets if isinstance(e, str) and len(e) >= 8}, key=len, reverse=True):
            for form in _secret_forms(e):
                text = text.replace(form, "[REDACTED]")
        with self.lock:
            return self.redactor.redact(text)

    def record(self, entry, extra_secrets=()):
        text = self.redact(entry, extra_secrets)
        super().record(json.loads(text), text)

    def count_request(self, entry):
        st = self.stats
        svc = entry.get("service") or "unknown"
        st["requests_by_service"][svc] = st["requests_by_service"].get(svc, 0) + 1
        act = "%s:%s" % (svc, entry.get("action") or "-")
        st["requests_by_action"][act] = st["requests_by_action"].get(act, 0) + 1
        if entry.get("error_code"):
            st["errors_by_code"][entry["error_code"]] = st["errors_by_code"].get(entry["error_code"], 0) + 1

    # -- views for the control API (never a secret) --------------------------------------------

    def identities_view(self):
        return json.loads(self.redact(self._identities()))

    def _identities(self):
        now = self.now()
        with self.lock:
            return {
                "users": [{"name": u["name"], "account_id": u["account_id"], "arn": u["arn"], "access_key_id": k}
                          for k, u in self.users.items()],
                "discovery_role": {k: copy.deepcopy(self.discovery_role[k])
                                   for k in ("arn", "account_id", "name", "max_session_duration", "role_id", "trust")},
                "customer_role_name": self.customer_role_name,
                "sessions": [{"access_key_id": k, "arn": s["arn"], "kind": s["kind"], "source_arn": s["source_arn"],
                              "expiration": _iso(s["expires_at"]), "expired": s["expires_at"] <= now}
                             for k, s in self.sessions.items()],
            }

    def account_view(self, acct):
        with self.lock:
            a = self.account(acct)
            roles = []
            for r in a["roles"].values():
                roles.append({"arn": r["arn"], "name": r["name"], "role_id": r["role_id"],
                              "max_session_duration": r["max_session_duration"],
                              "trust": [{"principals": st["principals"],
                                         "external_id_required": st["external_ids"] is not None}
                                        for st in r["trust"]],
                              "allowed_actions": aws_iam.allowed_actions(r.get("statements", []))})
            view = {"account_id": acct, "roles": roles,
                    "regions": [{"regionName": k, "optInStatus": v} for k, v in a["regions"].items()],
                    "instances": {r: len(v) for r, v in a["instances"].items()}}
            for kind in REGIONAL_KINDS:
                view[kind] = {r: len(v) for r, v in a[kind].items()}
            view["buckets"] = len(a["buckets"])
            return view


# --------------------------------------------------------------------------------------------
# Pagination tokens
# --------------------------------------------------------------------------------------------

# WIRE: EC2's NextToken values are opaque base64 and contain "+", "/" and "=".  These do too
# (the fixed prefix guarantees "+/+/", the length guarantees "=="), so a client that does not
# percent-encode the token in its form body gets it back mangled, as it would from EC2.
# Layout: prefix, one byte giving the number of filler bytes, the filler, the JSON payload, and
# a 16-byte MAC of the payload.
_TOKEN_PREFIX = b"\xfb\xff\xbf"


def make_token(sim, account, region, offset, page, fingerprint):
    payload = json.dumps({"a": account, "r": region, "o": offset, "p": page, "f": fingerprint},
                         separators=(",", ":"), sort_keys=True).encode()
    mac = hmac.new(sim.token_key, payload, hashlib.sha256).digest()[:16]
    fill = (1 - (len(_TOKEN_PREFIX) + 1 + len(payload) + 16)) % 3  # total = 1 (mod 3): ends in "=="
    raw = _TOKEN_PREFIX + bytes([fill]) + b"\x00" * fill + payload + mac
    return base64.b64encode(raw).decode()


def read_token(sim, token):
    """(account, region, offset, page, fingerprint), or None for anything that is not a token
    this simulator made."""
    try:
        raw = base64.b64decode(token, validate=True)
    except (ValueError, TypeError):
        return None
    n = len(_TOKEN_PREFIX)
    if not raw.startswith(_TOKEN_PREFIX) or len(raw) < n + 1 + 16 or raw[n] > 2:
        return None
    payload, mac = raw[n + 1 + raw[n]:-16], raw[-16:]
    good = hmac.new(sim.token_key, payload, hashlib.sha256).digest()[:16]
    if not hmac.compare_digest(mac, good):
        return None
    try:
        d = json.loads(payload)
        return d["a"], d["r"], int(d["o"]), int(d["p"]), d["f"]
    except (ValueError, KeyError, TypeError):
        return None


# --------------------------------------------------------------------------------------------
# Request parsing helpers
# --------------------------------------------------------------------------------------------

def parse_form(text):
    """application/x-www-form-urlencoded (and query strings): "+" is a space, the first value of
    a repeated name wins.  Returns (dict, ordered names)."""
    params, names = {}, []
    if not text:
        return params, names
    for part in text.split("&"):
        if not part:
            continue
        k, _, v = part.partition("=")
        k = urllib.parse.unquote_plus(k, errors="replace")
        v = urllib.parse.unquote_plus(v, errors="replace")
        if k not in params:
            params[k] = v
            names.append(k)
    return params, names


def indexed(params, prefix):
    """Values of Prefix.1, Prefix.2, ... in index order."""
    out = []
    for k, v in params.items():
        if k.startswith(prefix + "."):
            rest = k[len(prefix) + 1:]
            if rest.isdigit():
                out.append((int(rest), v))
    return [v for _, v in sorted(out)]


def parse_filters(params):
    """Filter.N.Name / Filter.N.Value.M -> [(name, [values])]."""
    names = {}
    for k, v in params.items():
        m = re.fullmatch(r"Filter\.(\d+)\.Name", k)
        if m:
            names[int(m.group(1))] = v
    out = []
    for n in sorted(names):
        out.append((names[n], indexed(params, "Filter.%d.Value" % n)))
    return out


# --------------------------------------------------------------------------------------------
# HTTP handling
# --------------------------------------------------------------------------------------------

class Handler(simlib.BaseHandler):
    sim_name = "aws_sim"
    description = "HTTPS simulator of AWS STS (AssumeRole) and EC2 (DescribeRegions, DescribeInstances)."
    state_help = "JSON: users, discovery_role, customer_role_name, accounts, config, faults"
    # Server and Date are sent per service by _service_headers (STS sends no Server header).
    server_header = None
    date_header = False
    # Nagle stays on, as it always was here: the AWS benchmark's figures were measured so.  (The
    # DigitalOcean simulator turns it off, as the real API's front ends do.)
    tcp_nodelay = False
    max_api_body = MAX_API_BODY

    def _service_headers(self, service):
        server = {"ec2": "AmazonEC2", "s3": "AmazonS3"}.get(service)
        return [("Date", self.date_time_string())] + ([("Server", server)] if server else [])

    def _send(self, status, body, headers, service, truncate=False):
        """Writes a whole response with the service's Date and Server headers; returns the
        number of body bytes written."""
        return self.send_body(status, body, self._service_headers(service) + headers, truncate=truncate)

    # -- answers in EC2's error shape ----------------------------------------------------------

    def protocol_error(self, code, message):
        return CT_EC2, ec2_error_xml("InvalidRequest" if code < 500 else "InternalError",
                                     message or "The request is not valid.", str(uuid.uuid4()))

    def send_request_error(self, status, code, message):
        code = {"length_required": "MissingContentLength", "request_too_large": "RequestEntityTooLarge"}[code]
        self._send(status, ec2_error_xml(code, message, str(uuid.uuid4())), [("Content-Type", CT_EC2)], "ec2")

    def internal_error(self):
        self._send(500, ec2_error_xml("InternalError", "An internal error has occurred", str(uuid.uuid4())),
                   [("Content-Type", CT_EC2)], "ec2")

    def reply(self, status, obj):
        self._send(status, simlib.json_bytes(obj, ensure_ascii=True), [("Content-Type", "application/json")], "control")

    # -- the API -----------------------------------------------------------------------------

    def begin_call(self, call):
        call.request_id = str(uuid.uuid4())
        # S3's own forms: 16 upper-case hex digits, and an extended id of base64
        call.s3_request_id = call.request_id.replace("-", "")[:16].upper()
        call.host_id = base64.b64encode(hashlib.sha256(call.request_id.encode()).digest() * 2).decode()
        call.presented = []  # what this request presented (token, signature, ExternalId): kept out of the log
        call.headers = list(self.headers.items())
        return {
            "time": simlib.log_time(), "method": call.method, "path": call.path, "service": None,
            "action": None, "region": None, "access_key_id": None, "principal": None,
            "principal_kind": None, "account": None, "authorization_present": False,
            "security_token_present": False, "signature_valid": None, "external_id_present": False,
            "external_id_matches": None, "external_id_in": [], "amz_date": None,
            "status": None, "error_code": None, "fault": None, "request_id": call.request_id, "client_port": self.client_address[1], "bytes": 0,
        }

    def body_refused(self, call):
        call.entry["error_code"] = "RequestEntityTooLarge"

    def inspect(self, call):
        """Who is calling, before anything is verified: lets faults match on the service, region,
        account and principal, and lets the log say which key was used."""
        sim = self.server.sim
        entry, headers, presented = call.entry, call.headers, call.presented
        params, names = parse_form(call.query)
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if self.command == "POST" and call.body and ctype == "application/x-www-form-urlencoded":
            bparams, bnames = parse_form(call.body.decode("utf-8", "replace"))
            for k in bnames:
                if k not in params:
                    params[k] = bparams[k]
                    names.append(k)
        entry["param_names"] = names
        entry["amz_date"] = aws_sigv4.header_value(headers, "x-amz-date")
        entry["external_id_in"] = self._external_id_places(call)
        action = params.get("Action")
        auth, auth_err = None, None
        if aws_sigv4.header_value(headers, "authorization") is not None:
            entry["authorization_present"] = True
            try:
                auth = aws_sigv4.parse_authorization(headers)
            except aws_sigv4.SigV4Error as e:
                auth_err = e
        token = aws_sigv4.header_value(headers, "x-amz-security-token")
        entry["security_token_present"] = token is not None
        if token:
            presented.append(token)
        if auth is not None:
            presented.append(auth.signature)
        service = self._route(auth, action, call.path, self.command)
        if service in ("s3", "lambda"):
            action = self._rest_action(service, call.path, params)
        entry["action"] = action
        entry["service"] = service
        region = auth.region if auth is not None else None
        entry["region"] = region
        kind, record = (None, None)
        if auth is not None:
            entry["access_key_id"] = auth.access_key_id
            kind, record = sim.lookup_key(auth.access_key_id)
            if record is not None:
                entry["principal"] = record["arn"]
                entry["principal_kind"] = "user" if kind == "user" else record["kind"]
        ext = params.get("ExternalId")
        if ext is not None:
            presented.append(ext)
            entry["external_id_present"] = True
            # Set again, against the target role only, by AssumeRole; elsewhere it tells
            # whether a real external id leaked to where it does not belong.
            entry["external_id_matches"] = any(hmac.compare_digest(ext.encode(), k.encode())
                                               for k in sim.known_external_ids())
        page, token_info = 1, None
        token_param = LISTING_TOKENS.get(action)
        if token_param and params.get(token_param):
            token_info = read_token(sim, params[token_param])
            page = token_info[3] if token_info else None
        entry["page"] = page if token_param else None
        acct = None
        if service != "sts" and record is not None:
            acct = record.get("account_id")
        elif action == "AssumeRole":
            m = _ROLE_ARN_RE.match(params.get("RoleArn") or "")
            acct = m.group(1) if m else None
        entry["account"] = acct
        call.params, call.action, call.service, call.region = params, action, service, region
        call.auth, call.auth_err, call.kind, call.record, call.token_info = auth, auth_err, kind, record, token_info
        return {"service": service, "action": action, "region": region, "account": acct,
                "page": entry["page"], "principal_kind": entry["principal_kind"], "method": self.command}

    def _external_id_places(self, call):
        """Where in the request ("url", "headers", "body") the value of any external id of an
        applied template appears, raw or percent-encoded (either case of hex digits, '+' or %20
        for a space): a value is only ever sent in AssumeRole's body at hop 2."""
        forms = set()
        for ext in self.server.sim.known_external_ids():
            for enc in (ext, urllib.parse.quote(ext, safe=""), urllib.parse.quote_plus(ext, safe=""),
                        urllib.parse.quote(ext, safe="-_.~")):
                forms.add(enc)
                forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), enc))
        forms = [f.encode() for f in forms if f]
        places = {"url": (call.path + "?" + (call.query or "")).encode("utf-8", "surrogateescape"),
                  "headers": "\n".join("%s: %s" % (k, v) for k, v in call.headers).encode("utf-8", "surrogateescape"),
                  "body": call.body or b""}
        return sorted(place for place, data in places.items() if any(f in data for f in forms))

    def fault_taken(self, call):
        if call.fault["kind"] == "expire_credentials":
            self.server.sim.expire_sessions(call.fault["which"])

    def respond(self, call):
        fault, service, entry, request_id = call.fault, call.service, call.entry, call.request_id
        auth_args = (service, call.auth, call.auth_err, call.kind, call.record, call.headers, call.body,
                     call.path, call.query, entry)
        try:
            if fault and fault["kind"] in ("throttle", "status", "error_code", "auth_failure"):
                # Answered instead of the request; the signature is still checked for the log.
                try:
                    self._authenticate(*auth_args)
                except ApiError:
                    pass
                raise self._fault_error(fault, service)
            principal = self._authenticate(*auth_args)
            if service == "sts":
                status, out = self._sts(call.action, call.params, principal, request_id, entry)
            elif service == "ec2":
                status, out = self._ec2(call.action, call.params, principal, call.region, call.token_info,
                                        request_id, entry)
            elif service == "rds":
                status, out = self._rds(call, principal)
            elif service == "s3":
                status, out = self._s3(call, principal)
            else:
                status, out = self._lambda(call, principal)
            extra_headers = []
        except ApiError as e:
            status = e.status
            entry["error_code"] = e.code
            out, extra_headers = self._error_body(service, e, call)
        return status, out, self._service_headers(service) + self._response_headers(service, call) + extra_headers

    def _response_headers(self, service, call):
        """The request id and content type each service answers with (errors included)."""
        rid = call.request_id
        if service == "s3":
            return [("x-amz-id-2", call.host_id), ("x-amz-request-id", call.s3_request_id),
                    ("Content-Type", aws_services.CT_S3)]
        ctype = {"sts": CT_STS, "ec2": CT_EC2, "rds": aws_services.CT_RDS, "lambda": aws_services.CT_LAMBDA}[service]
        hdrs = [("x-amzn-RequestId", rid), ("Content-Type", ctype)]
        if service == "ec2":
            hdrs += [("Cache-Control", "no-cache, no-store"),
                     ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
                     ("Vary", "accept-encoding")]
        return hdrs

    def _error_body(self, service, e, call):
        """(body, extra headers) of an error answer in the service's shape."""
        rid = call.request_id
        if service == "sts":
            return sts_error_xml(e.status, e.code, e.message, rid), []
        if service == "rds":
            return aws_services.rds_error_xml(e.status, e.code, e.message, rid), []
        if service == "s3":
            return aws_services.s3_error_xml(e.code, e.message, call.s3_request_id, call.host_id, e.extra), []
        if service == "lambda":
            extra = dict(e.extra)
            hdrs = [("x-amzn-ErrorType", e.code)]
            if "retry_after" in extra:
                hdrs.append(("Retry-After", str(extra.pop("retry_after"))))
            return aws_services.lambda_error_json(e.code, e.message, extra), hdrs
        return ec2_error_xml(e.code, e.message, rid), []

    def malformed_body(self, call, body):
        # The start of the real body, then garbage: not well-formed XML.
        return body[: len(body) * 3 // 5] + b"<<<upstream connection reset>>>"

    def end_call(self, call):
        self.server.sim.record(call.entry, call.presented)

    @staticmethod
    def _route(auth, action, path, method):
        """The signed service decides; an unsigned (or unparsable) request goes by its path (Lambda's
        are under /2015-03-31/) or its Action (STS's and RDS's; a GET without one is S3's)."""
        if auth is not None and auth.service in SERVICES:
            return auth.service
        if path.startswith("/2015-03-31/"):
            return "lambda"
        if action in STS_ACTIONS:
            return "sts"
        if action in RDS_ACTIONS:
            return "rds"
        if action is None and method == "GET":
            return "s3"
        return "ec2"

    @staticmethod
    def _rest_action(service, path, params):
        """The operation a REST request asks for, or None."""
        if service == "lambda":
            return "ListFunctions" if path.rstrip("/") == aws_services.LAMBDA_FUNCTIONS_PATH.rstrip("/") else None
        if path == "/":
            return "ListBuckets"
        if path.count("/") == 1 and "location" in params:
            return "GetBucketLocation"
        return None

    def _fault_error(self, fault, service):
        k = fault["kind"]
        if k == "throttle":
            e = _err(service, "throttle")
            if "retry_after" in fault:
                e.extra["retry_after"] = fault["retry_after"]
            return e
        if k == "auth_failure":
            return _err(service, "region_auth")
        if k == "error_code":
            st, msg = SERVICE_ERROR_CODES[service][fault["code"]]
            extra = {}
            if service == "lambda" and fault["code"] == "TooManyRequestsException":
                extra = {"Reason": "CallerRateLimitExceeded", "Type": "User"}
            elif service == "lambda":
                extra = {"Type": "Service"}
            return ApiError(st, fault["code"], msg, extra)
        st = fault["status"]
        code, msg = SERVER_ERRORS[service].get(st, (None, None))
        extra = {"Type": "Service"} if service == "lambda" and st >= 500 else None
        return ApiError(st, fault.get("code", code), fault.get("message", msg or fault.get("code")), extra)

    def _authenticate(self, service, auth, auth_err, kind, record, headers, body, raw_path, raw_query, entry):
        """SigV4 and credential checks, in the order AWS appears to apply them: the header must
        parse, the scope must name this service, the key must exist, the clock must be close,
        a session's token must be the right one and unexpired, and the signature must match.
        Returns the principal (a user or session record); raises ApiError."""
        sim = self.server.sim
        if auth_err is not None:
            if auth_err.code == "MissingAuthenticationToken":
                raise _err(service, "missing_auth")
            raise _err(service, "incomplete", auth_err.message)
        if auth is None:
            raise _err(service, "missing_auth")
        result = None
        if record is not None:
            # The signature is checked for the log whatever else fails below (S3 signs its path
            # as it is, and always its payload's hash).
            result = aws_sigv4.verify(self.command, raw_path, raw_query, headers, body, auth,
                                      record["secret_access_key"], s3=service == "s3")
            entry["signature_valid"] = result.valid
        if auth.service != service:
            raise _err(service, "signature", "Credential should be scoped to correct service: '%s'. " % service)
        if service != "ec2" and auth.region not in ALL_REGIONS:
            if service == "s3":
                raise _err(service, "incomplete", "the region '%s' is wrong; expecting 'us-east-1'" % auth.region[:32])
            raise _err(service, "signature", "Credential should be scoped to a valid region. ")
        if service == "s3" and aws_sigv4.header_value(headers, "x-amz-content-sha256") is None:
            raise _err(service, "missing_sha256")
        problem = aws_sigv4.check_scope(auth)
        if problem:
            raise _err(service, "signature", problem)
        if record is None:
            raise _err(service, "unknown_key")
        now = sim.now()
        with sim.lock:
            window = float(sim.config.get("max_clock_skew_s", MAX_CLOCK_SKEW_S))
        skew = aws_sigv4.clock_skew(auth, now, window)
        if skew is not None:
            fmt = lambda d: d.strftime("%Y%m%dT%H%M%SZ")
            mins = "%g min." % (window / 60.0)
            if skew[0] == "expired":
                msg = "Signature expired: %s is now earlier than %s (%s - %s)" % (
                    auth.amz_date, fmt(now - datetime.timedelta(seconds=window)), fmt(now), mins)
            else:
                msg = "Signature not yet current: %s is still later than %s (%s + %s)" % (
                    auth.amz_date, fmt(now + datetime.timedelta(seconds=window)), fmt(now), mins)
            raise _err(service, "skew", msg)
        token = aws_sigv4.header_value(headers, "x-amz-security-token")
        if kind == "session":
            if token is None or not hmac.compare_digest(token.strip().encode(), record["session_token"].encode()):
                raise _err(service, "bad_token")
            if record["expires_at"] <= now:
                raise _err(service, "expired_token")
        elif token is not None:
            # A session token sent with a long-term key names no session: refused as invalid.
            raise _err(service, "bad_token")
        if not result.valid:
            raise _err(service, "signature")
        return dict(record, principal_type=kind)

    # -- STS ---------------------------------------------------------------------------------

    def _sts(self, action, params, principal, request_id, entry):
        if params.get("Version") != STS_VERSION or action not in STS_ACTIONS:
            raise ApiError(400, "InvalidAction", "Could not find operation %s for version %s"
                           % (action or "", params.get("Version") or "NO_VERSION_SPECIFIED"))
        if action == "GetCallerIdentity":
            if principal["principal_type"] == "user":
                result = {"Arn": principal["arn"], "UserId": _user_id(principal["arn"]), "Account": principal["account_id"]}
            else:
                result = {"Arn": principal["arn"], "UserId": principal["assumed_role_id"], "Account": principal["account_id"]}
            return 200, sts_response_xml(action, request_id, result)
        return 200, self._assume_role(params, principal, request_id, entry)

    @staticmethod
    def _validation(errors):
        # WIRE: STS reports constraint violations as "N validation error(s) detected: ...; ...".
        n = len(errors)
        return ApiError(400, "ValidationError", "%d validation error%s detected: %s"
                        % (n, "" if n == 1 else "s", "; ".join(errors)))

    def _assume_role(self, params, principal, request_id, entry):
        sim = self.server.sim
        role_arn = params.get("RoleArn")
        session = params.get("RoleSessionName")
        ext = params.get("ExternalId")
        errors = []
        if role_arn is None:
            errors.append("Value null at 'roleArn' failed to satisfy constraint: Member must not be null")
        elif not 20 <= len(role_arn) <= 2048:
            errors.append("Value '%s' at 'roleArn' failed to satisfy constraint: Member must have length %s"
                          % (role_arn[:64], "greater than or equal to 20" if len(role_arn) < 20 else "less than or equal to 2048"))
        if session is None:
            errors.append("Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
        elif not 2 <= len(session) <= 64:
            errors.append("Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must have length %s"
                          % (session[:64], "greater than or equal to 2" if len(session) < 2 else "less than or equal to 64"))
        elif not _SESSION_NAME_RE.match(session):
            errors.append("Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy "
                          "regular expression pattern: [\\w+=,.@-]*" % session[:64])
        duration = DURATION_DEFAULT
        if params.get("DurationSeconds") is not None:
            raw = params["DurationSeconds"]
            try:
                duration = int(raw)
            except ValueError:
                raise ApiError(400, "ValidationError", "Invalid value for parameter DurationSeconds: %s" % raw[:32])
            if duration < DURATION_MIN:
                errors.append("Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have "
                              "value greater than or equal to %d" % (duration, DURATION_MIN))
            elif duration > DURATION_MAX:
                errors.append("Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have "
                              "value less than or equal to %d" % (duration, DURATION_MAX))
        if ext is not None:
            # The value itself never goes into a message: the log and the client must not see
            # it echoed.
            if not 2 <= len(ext) <= 1224:
                errors.append("Value at 'externalId' failed to satisfy constraint: Member must have length %s"
                              % ("greater than or equal to 2" if len(ext) < 2 else "less than or equal to 1224"))
            elif not _EXTERNAL_ID_RE.match(ext):
                errors.append("Value at 'externalId' failed to satisfy constraint: Member must satisfy regular "
                              "expression pattern: [\\w+=,.@:\\/-]*")
        entry["role_arn"] = role_arn
        entry["role_session_name"] = session
        entry["duration_seconds"] = duration
        if errors:
            raise self._validation(errors)

        role = sim.find_role(role_arn)
        caller = principal["arn"]
        denied = ApiError(403, "AccessDenied", "User: %s is not authorized to perform: sts:AssumeRole on resource: %s"
                          % (caller, role_arn))
        # The caller's own permissions: the platform user (or a caller session registered through
        # POST /_sim/sessions) may assume the discovery role only;
        # a discovery session may assume only customer roles of the configured name; a customer
        # session may assume nothing.
        m = _ROLE_ARN_RE.match(role_arn)
        with sim.lock:
            discovery_arn = sim.discovery_role["arn"]
            customer_name = sim.customer_role_name
        ptype = principal["principal_type"]
        if ptype == "user" or principal.get("kind") == "caller":
            allowed = role_arn == discovery_arn
            new_kind = "discovery"
        elif principal["kind"] == "discovery":
            allowed = bool(m) and m.group(2) == customer_name and role_arn != discovery_arn
            new_kind = "customer"
        else:
            allowed, new_kind = False, "other"
        if ext is not None:
            wanted = [e for st in role["trust"] for e in (st["external_ids"] or [])] if role else []
            entry["external_id_matches"] = any(hmac.compare_digest(ext.encode(), w.encode()) for w in wanted)
        if not allowed or role is None or not self._trusts(role, principal, ext):
            raise denied
        # WIRE: checked after authorisation: a session of a role may ask for an hour at most
        # ("role chaining"), and nobody for more than the role's MaxSessionDuration.
        if ptype == "session" and duration > CHAINING_MAX:
            raise ApiError(400, "ValidationError",
                           "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
        if duration > role["max_session_duration"]:
            raise ApiError(400, "ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
        s = sim.issue_session(role, session, duration, caller, new_kind)
        entry["issued_access_key_id"] = s["access_key_id"]
        result = {
            "AssumedRoleUser": {"Arn": s["arn"], "AssumedRoleId": s["assumed_role_id"]},
            "Credentials": {"AccessKeyId": s["access_key_id"], "SecretAccessKey": s["secret_access_key"],
                            "SessionToken": s["session_token"], "Expiration": _iso(s["expires_at"])},
        }
        return sts_response_xml("AssumeRole", request_id, result)

    @staticmethod
    def _trusts(role, principal, ext):
        """Does one of the role's trust statements let this principal in?  A principal entry
        matches the user's ARN, the ARN of the role a session belongs to, or the caller's
        account (given as the 12-digit id or arn:aws:iam::ID:root).  A statement with the
        sts:ExternalId condition also needs that exact ExternalId."""
        if principal["principal_type"] == "user":
            names = {principal["arn"]}
        else:
            names = {principal["role_arn"]}
        acct = principal["account_id"]
        names |= {acct, "arn:aws:iam::%s:root" % acct}
        for st in role["trust"]:
            if not names.intersection(st["principals"]) and "*" not in st["principals"]:
                continue
            if st["external_ids"] is None:
                return True
            if ext is not None and any(hmac.compare_digest(ext.encode(), w.encode()) for w in st["external_ids"]):
                return True
        return False

    # -- EC2 ---------------------------------------------------------------------------------

    def _ec2(self, action, params, principal, region, token_info, request_id, entry):
        sim = self.server.sim
        if not action:
            raise ApiError(400, "MissingAction", "The request must contain the parameter Action")
        if action not in EC2_ACTIONS:
            raise ApiError(400, "InvalidAction", "The action %s is not valid for this web service." % action[:64])
        if not params.get("Version"):
            raise ApiError(400, "MissingParameter", "The request must contain the parameter Version")
        if principal["principal_type"] != "session" or principal["kind"] != "customer":
            # Neither the platform user nor the discovery role has EC2 permissions: only the
            # customer's read-only role does.
            raise ApiError(403, "UnauthorizedOperation", MSG_EC2_UNAUTHORIZED)
        acct = principal["account_id"]
        with sim.lock:
            enabled = dict(sim.account(acct)["regions"])
        if region not in enabled:
            # WIRE: a region that is not enabled for the account rejects the credentials.
            raise _err("ec2", "region_auth")
        self._authorize("ec2", action, principal, "*")
        if action == "DescribeRegions":
            return 200, self._describe_regions(params, enabled, request_id)
        if action == "DescribeVpcs":
            return 200, self._describe_vpcs(params, acct, region, token_info, request_id, entry)
        return 200, self._describe_instances(params, acct, region, token_info, request_id, entry)

    # -- IAM -----------------------------------------------------------------------------------

    def _authorize(self, service, action, principal, resource, resource_policy_denies=False):
        """IAM's verdict on a call: only a customer-role session has identity policies (its
        role's, as the applied template set them; a deleted role's sessions have none).  A call
        that is not allowed gets the service's AccessDenied answer, naming the IAM action."""
        sim = self.server.sim
        iam_action = IAM_ACTIONS[action]
        statements = []
        if principal["principal_type"] == "session" and principal["kind"] == "customer":
            role = sim.find_role(principal["role_arn"])
            statements = role.get("statements", []) if role else []
        verdict = aws_iam.evaluate(statements, iam_action, resource)
        if verdict == "allow" and resource_policy_denies:
            verdict = "resource_deny"
        if verdict == "allow":
            return
        why = {"implicit_deny": "because no identity-based policy allows the %s action" % iam_action,
               "explicit_deny": "with an explicit deny in an identity-based policy",
               "resource_deny": "with an explicit deny in a resource-based policy"}[verdict]
        who = principal["arn"]
        # WIRE: the messages of AWS's denials within one account; EC2 prefixes its usual text,
        # S3 quotes a bucket resource and names none for ListAllMyBuckets.
        if service == "ec2":
            raise ApiError(403, "UnauthorizedOperation", "%s User: %s is not authorized to perform: %s %s"
                           % (MSG_EC2_UNAUTHORIZED, who, iam_action, why))
        if service == "s3":
            on = "" if resource == "*" else ' on resource: "%s"' % resource
            raise ApiError(403, "AccessDenied", "User: %s is not authorized to perform: %s%s %s"
                           % (who, iam_action, on, why))
        code = "AccessDeniedException" if service == "lambda" else "AccessDenied"
        raise ApiError(403, code, "User: %s is not authorized to perform: %s on resource: %s %s"
                       % (who, iam_action, resource, why))

    def _enabled_region(self, service, acct, region):
        """A region not enabled for the account rejects the credentials, in every service."""
        with self.server.sim.lock:
            enabled = region in self.server.sim.account(acct)["regions"]
        if not enabled:
            raise _err(service, "region_auth")

    def _page(self, items, offset, limit, acct, region, page, fingerprint, full_page_token=False):
        """One page of a listing: (chunk, the next page's token or None).  full_page_token: a
        full page always has a token (EC2's way), even when nothing is left."""
        sim = self.server.sim
        chunk = items[offset: offset + limit]
        more = offset + len(chunk) < len(items) or (full_page_token and chunk and len(chunk) == limit)
        token = make_token(sim, acct, region, offset + len(chunk), page + 1, fingerprint) if more else None
        return chunk, token

    @staticmethod
    def _start(token_info, acct, region, fingerprint, bad):
        """(offset, page) a listing starts from: the first page, or where its token says; a
        token of another account, region or listing raises bad."""
        if token_info is None:
            return 0, 1
        t_acct, t_region, offset, page, t_fp = token_info
        if (t_acct, t_region, t_fp) != (acct, region, fingerprint) or offset < 0:
            raise bad
        return offset, page

    @staticmethod
    def _int_param(params, name, low, high, error):
        """An integer parameter within [low, high], None when absent; error(value) otherwise."""
        raw = params.get(name)
        if raw is None:
            return None
        try:
            v = int(raw)
        except ValueError:
            raise error(raw[:32])
        if not low <= v <= high:
            raise error(str(v))
        return v

    # -- EC2 DescribeVpcs --------------------------------------------------------------------

    def _describe_vpcs(self, params, acct, region, token_info, request_id, entry):
        sim = self.server.sim
        # WIRE: MaxResults is 5..1000, as DescribeInstances', with the same messages.
        max_results = self._int_param(params, "MaxResults", MAX_RESULTS_MIN, MAX_RESULTS_MAX, lambda v: ApiError(
            400, "InvalidParameterValue", "Value ( %s ) for parameter maxResults is invalid. Expecting a value "
            "between %d and %d." % (v, MAX_RESULTS_MIN, MAX_RESULTS_MAX)))
        ids = indexed(params, "VpcId")
        filters = parse_filters(params)
        fingerprint = "vpcs:" + hashlib.sha256(json.dumps([sorted(ids), filters]).encode()).hexdigest()[:12]
        bad = ApiError(400, "InvalidParameterValue", "Value ( %s ) for parameter NextToken is invalid. "
                       "The token is invalid." % (params.get("NextToken") or "")[:256])
        offset, page = self._start(token_info if params.get("NextToken") else None, acct, region, fingerprint, bad)
        if params.get("NextToken") and token_info is None:
            raise bad
        with sim.lock:
            items = list(sim.account(acct)["vpcs"].get(region, []))
            full_page = sim.config.get("full_page_next_token", True)
        if ids:
            have = {v.get("vpcId") for v in items}
            missing = [i for i in ids if i not in have]
            if missing:
                raise ApiError(400, "InvalidVpcID.NotFound", "The vpc ID '%s' does not exist" % missing[0][:64])
            items = [v for v in items if v.get("vpcId") in ids]
        for name, values in filters:
            items = self._filter_vpcs(items, name, values)
        if max_results is None:
            chunk, token = items[offset:], None
        else:
            chunk, token = self._page(items, offset, max_results, acct, region, page, fingerprint, full_page)
        entry.update(items=len(chunk), page=page, max_results=max_results, next_token_present="NextToken" in params)
        fields = [("vpcSet", chunk)]
        if token:
            fields.append(("nextToken", token))
        return ec2_response_xml("DescribeVpcs", request_id, fields)

    @staticmethod
    def _filter_vpcs(items, name, values):
        def tags(v):
            return {t.get("key"): t.get("value") for t in (v.get("tagSet") or [])}
        getters = {"vpc-id": lambda v: [v.get("vpcId")], "state": lambda v: [v.get("state")],
                   "is-default": lambda v: [_text(v.get("isDefault"))], "cidr": lambda v: [v.get("cidrBlock")],
                   "owner-id": lambda v: [v.get("ownerId")], "tag-key": lambda v: list(tags(v))}
        if name.startswith("tag:"):
            return [v for v in items if tags(v).get(name[4:]) in values]
        g = getters.get(name)
        if g is None:
            raise ApiError(400, "InvalidParameterValue", "The filter '%s' is invalid" % name[:64])
        return [v for v in items if any(x in values for x in g(v))]

    # -- RDS DescribeDBInstances ---------------------------------------------------------------

    def _rds(self, call, principal):
        sim, params, entry, region = self.server.sim, call.params, call.entry, call.region
        action = call.action
        if params.get("Version") != aws_services.RDS_VERSION or action not in RDS_ACTIONS:
            # WIRE: as STS (both are Query APIs): the operation is looked up by action and version
            raise ApiError(400, "InvalidAction", "Could not find operation %s for version %s"
                           % ((action or "")[:64], (params.get("Version") or "NO_VERSION_SPECIFIED")[:32]))
        acct = principal["account_id"]
        self._enabled_region("rds", acct, region)
        self._authorize("rds", action, principal, "arn:aws:rds:%s:%s:db:*" % (region, acct))
        # WIRE: MaxRecords is 20..100 (default 100); the message is chosen.
        max_records = self._int_param(params, "MaxRecords", 20, 100, lambda v: ApiError(
            400, "InvalidParameterValue", "Invalid value %s for MaxRecords. Must be between 20 and 100" % v)) or 100
        ident = params.get("DBInstanceIdentifier")
        fingerprint = "rds:" + hashlib.sha256((ident or "").encode()).hexdigest()[:12]
        # WIRE: chosen; an invalid Marker is not documented.
        bad = ApiError(400, "InvalidParameterValue", "The parameter Marker is not a valid pagination token.")
        if params.get("Marker") and call.token_info is None:
            raise bad
        offset, page = self._start(call.token_info if params.get("Marker") else None, acct, region, fingerprint, bad)
        with sim.lock:
            items = list(sim.account(acct)["db_instances"].get(region, []))
        if ident:
            items = [d for d in items if d["DBInstanceIdentifier"] == ident]
            if not items:
                raise ApiError(404, "DBInstanceNotFound", "DBInstance %s not found." % ident[:64])
        chunk, token = self._page(items, offset, max_records, acct, region, page, fingerprint)
        entry.update(items=len(chunk), page=page, max_results=max_records, next_token_present="Marker" in params)
        return 200, aws_services.rds_response_xml(call.request_id, chunk, token)

    # -- S3 ListBuckets, GetBucketLocation -----------------------------------------------------

    def _s3(self, call, principal):
        sim, params, entry = self.server.sim, call.params, call.entry
        if self.command not in ("GET", "HEAD"):
            raise ApiError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.",
                           {"Method": self.command, "ResourceType": "SERVICE" if call.path == "/" else "BUCKET"})
        if call.action is None:
            # WIRE: chosen; the simulator serves the account-level calls cloudconn makes only
            raise ApiError(501, "NotImplemented", "A header you provided implies functionality that is not implemented")
        acct = principal["account_id"]
        if call.action == "GetBucketLocation":
            name = urllib.parse.unquote(call.path[1:])
            with sim.lock:
                bucket = next((b for b in sim.account(acct)["buckets"] if b["Name"] == name), None)
            if bucket is None:
                raise ApiError(404, "NoSuchBucket", "The specified bucket does not exist", {"BucketName": name[:255]})
            entry["bucket"] = name
            self._authorize("s3", "GetBucketLocation", principal, "arn:aws:s3:::%s" % name,
                            resource_policy_denies=bucket["_location_denied"])
            return 200, aws_services.location_xml(bucket["_constraint"])
        self._authorize("s3", "ListBuckets", principal, "*")
        # WIRE: max-buckets is 1..10000; the message is chosen.
        max_buckets = self._int_param(params, "max-buckets", 1, 10000, lambda v: ApiError(
            400, "InvalidArgument", "Argument max-buckets must be an integer between 1 and 10000",
            {"ArgumentName": "max-buckets", "ArgumentValue": v}))
        prefix = params.get("prefix")
        region_filter = params.get("bucket-region")
        paginated = any(k in params for k in ("max-buckets", "continuation-token", "prefix", "bucket-region"))
        fingerprint = "s3:" + hashlib.sha256(json.dumps([prefix, region_filter]).encode()).hexdigest()[:12]
        bad = ApiError(400, "InvalidArgument", "The continuation token provided is incorrect",
                       {"ArgumentName": "continuation-token"})
        if params.get("continuation-token") and call.token_info is None:
            raise bad
        # S3 is global: tokens are bound to the account, not to the region signed for
        offset, page = self._start(call.token_info if params.get("continuation-token") else None, acct, "global",
                                   fingerprint, bad)
        with sim.lock:
            items = sorted(sim.account(acct)["buckets"], key=lambda b: b["Name"])
            with_region = paginated and sim.config.get("s3_bucket_region", True)
        if prefix:
            items = [b for b in items if b["Name"].startswith(prefix)]
        if region_filter:
            items = [b for b in items if b["_region"] == region_filter]
        if paginated:
            # WIRE: without max-buckets, a paginated request gets pages of 10,000
            chunk, token = self._page(items, offset, max_buckets or 10000, acct, "global", page, fingerprint)
        else:
            # WIRE: an unpaginated request gets every bucket (up to the default quota of 10,000),
            # without regions or a token
            chunk, token = items[:10000], None
        entry.update(items=len(chunk), page=page, max_results=max_buckets,
                     next_token_present="continuation-token" in params)
        return 200, aws_services.list_buckets_xml(hashlib.sha256(acct.encode()).hexdigest(), chunk,
                                                  with_region, token, prefix if paginated else None)

    # -- Lambda ListFunctions ------------------------------------------------------------------

    def _lambda(self, call, principal):
        sim, params, entry, region = self.server.sim, call.params, call.entry, call.region
        if call.action is None or self.command != "GET":
            # WIRE: chosen; the simulator serves ListFunctions only
            raise ApiError(404, "ResourceNotFoundException", "The resource you requested does not exist.",
                           {"Type": "User"})
        acct = principal["account_id"]
        self._enabled_region("lambda", acct, region)
        self._authorize("lambda", "ListFunctions", principal, "*")
        max_items = self._int_param(params, "MaxItems", 1, 10000, lambda v: ApiError(
            400, "InvalidParameterValueException",
            "1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have "
            "value between 1 and 10000" % v, {"Type": "User"}))
        fingerprint = "lambda:" + hashlib.sha256(json.dumps([params.get("FunctionVersion"),
                                                             params.get("MasterRegion")]).encode()).hexdigest()[:12]
        # WIRE: chosen; an invalid Marker is not documented.
        bad = ApiError(400, "InvalidParameterValueException", "Invalid Marker value.", {"Type": "User"})
        if params.get("Marker") and call.token_info is None:
            raise bad
        offset, page = self._start(call.token_info if params.get("Marker") else None, acct, region, fingerprint, bad)
        with sim.lock:
            items = list(sim.account(acct)["functions"].get(region, []))
        # WIRE: at most 50 functions a page, whatever MaxItems asks for
        chunk, token = self._page(items, offset, min(max_items or 50, 50), acct, region, page, fingerprint)
        entry.update(items=len(chunk), page=page, max_results=max_items, next_token_present="Marker" in params)
        return 200, aws_services.list_functions_json(chunk, token)

    def _describe_regions(self, params, enabled, request_id):
        all_regions = (params.get("AllRegions") or "").lower() == "true"
        rows = []
        for r in ALL_REGIONS:
            if r in enabled:
                rows.append({"regionName": r, "regionEndpoint": "ec2.%s.amazonaws.com" % r, "optInStatus": enabled[r]})
            elif all_regions:
                rows.append({"regionName": r, "regionEndpoint": "ec2.%s.amazonaws.com" % r, "optInStatus": "not-opted-in"})
        names = indexed(params, "RegionName")
        if names:
            known = {row["regionName"] for row in rows} | set(ALL_REGIONS)
            bad = [n for n in names if n not in known]
            if bad:
                # WIRE: chosen; not documented.
                raise ApiError(400, "InvalidParameterValue", "Invalid region: %s" % bad[0][:64])
            rows = [row for row in rows if row["regionName"] in names]
        for name, values in parse_filters(params):
            field = {"region-name": "regionName", "endpoint": "regionEndpoint", "opt-in-status": "optInStatus"}.get(name)
            if field is None:
                raise ApiError(400, "InvalidParameterValue", "The filter '%s' is invalid" % name[:64])
            rows = [row for row in rows if row[field] in values]
        return ec2_response_xml("DescribeRegions", request_id, [("regionInfo", rows)])

    def _describe_instances(self, params, acct, region, token_info, request_id, entry):
        sim = self.server.sim
        ids = indexed(params, "InstanceId")
        max_raw = params.get("MaxResults")
        if ids and max_raw is not None:
            raise ApiError(400, "InvalidParameterCombination",
                           "The parameter instancesSet cannot be used with the parameter maxResults")
        max_results = None
        if max_raw is not None:
            try:
                max_results = int(max_raw)
            except ValueError:
                # WIRE: chosen; not documented.
                raise ApiError(400, "InvalidParameterValue", "Invalid value '%s' for parameter maxResults" % max_raw[:32])
            # WIRE: "Value ( 1 ) for parameter maxResults is invalid. Expecting a value greater
            # than 5." is what EC2 sends below the minimum; the wording above the maximum follows
            # it by analogy.
            if max_results < MAX_RESULTS_MIN:
                raise ApiError(400, "InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. "
                               "Expecting a value greater than %d." % (max_results, MAX_RESULTS_MIN))
            if max_results > MAX_RESULTS_MAX:
                raise ApiError(400, "InvalidParameterValue", "Value ( %d ) for parameter maxResults is invalid. "
                               "Expecting a value less than %d." % (max_results, MAX_RESULTS_MAX))
        else:
            with sim.lock:
                max_results = None if ids else sim.config.get("default_max_results")
        filters = parse_filters(params)
        fingerprint = hashlib.sha256(json.dumps([sorted(ids), filters]).encode()).hexdigest()[:12]
        entry["max_results"] = max_results
        entry["next_token_present"] = "NextToken" in params
        offset, page = 0, 1
        if params.get("NextToken"):
            # WIRE: an invalid token is InvalidParameterValue with this message (as EC2 answers
            # DescribeVpcs); an empty NextToken is taken as "first page".
            bad = ApiError(400, "InvalidParameterValue", "Value ( %s ) for parameter NextToken is invalid. "
                           "The token is invalid." % params["NextToken"][:256])
            if token_info is None:
                raise bad
            t_acct, t_region, offset, page, t_fp = token_info
            if (t_acct, t_region, t_fp) != (acct, region, fingerprint) or offset < 0:
                raise bad
        with sim.lock:
            items = list(sim.account(acct)["instances"].get(region, []))
        if ids:
            for i in ids:
                if not _INSTANCE_ID_RE.match(i):
                    raise ApiError(400, "InvalidInstanceID.Malformed", 'Invalid id: "%s"' % i[:64])
            have = {x.get("instanceId") for x in items}
            missing = [i for i in ids if i not in have]
            if missing:
                raise ApiError(400, "InvalidInstanceID.NotFound", "The instance ID%s '%s' do%s not exist"
                               % ("s" if len(missing) > 1 else "", ", ".join(missing), "" if len(missing) > 1 else "es"))
            items = [x for x in items if x.get("instanceId") in ids]
        for name, values in filters:
            items = self._filter(items, name, values)
        if max_results is None:
            chunk, more = items[offset:], False
        else:
            chunk = items[offset: offset + max_results]
            more = offset + len(chunk) < len(items)
            with sim.lock:
                full_page_token = sim.config.get("full_page_next_token", True)
            # WIRE: EC2 hands out a nextToken whenever a page is full, even when nothing is
            # left; the next page is then empty and has none.
            if full_page_token and chunk and len(chunk) == max_results:
                more = True
        reservations = []
        for inst in chunk:
            rid = inst.get("_reservationId")
            if reservations and reservations[-1]["reservationId"] == rid:
                reservations[-1]["instancesSet"].append(rendered_instance(inst))
            else:
                reservations.append({"reservationId": rid, "ownerId": inst.get("_ownerId", acct),
                                     "groupSet": [], "instancesSet": [rendered_instance(inst)]})
        fields = [("reservationSet", reservations)]
        if more:
            fields.append(("nextToken", make_token(sim, acct, region, offset + len(chunk), page + 1, fingerprint)))
        entry["items"] = len(chunk)
        entry["page"] = page
        return ec2_response_xml("DescribeInstances", request_id, fields)

    @staticmethod
    def _filter(items, name, values):
        def tags(x):
            return {t.get("key"): t.get("value") for t in (x.get("tagSet") or [])}
        getters = {
            "instance-state-name": lambda x: [(x.get("instanceState") or {}).get("name")],
            "instance-state-code": lambda x: [str((x.get("instanceState") or {}).get("code"))],
            "instance-id": lambda x: [x.get("instanceId")],
            "instance-type": lambda x: [x.get("instanceType")],
            "vpc-id": lambda x: [x.get("vpcId")],
            "availability-zone": lambda x: [(x.get("placement") or {}).get("availabilityZone")],
            "tag-key": lambda x: list(tags(x)),
        }
        if name.startswith("tag:"):
            key = name[4:]
            return [x for x in items if key in tags(x) and tags(x)[key] in values]
        g = getters.get(name)
        if g is None:
            raise ApiError(400, "InvalidParameterValue", "The filter '%s' is invalid" % name[:64])
        return [x for x in items if any(v in values for v in g(x))]

    # -- the control API ---------------------------------------------------------------------

    def control_route(self, sim, m, seg, data):
        """The AWS simulator's own endpoints (health, reset, config, faults, log and stats are
        simlib's)."""
        if seg == ["identities"] and m == "GET":
            return 200, sim.identities_view()
        if seg == ["issued-secrets"] and m == "GET":
            # The one place the simulator shows a secret: what it issued, so that a test can
            # prove the client never wrote any of it to its own logs.
            with sim.lock:
                return 200, {"secret_access_keys": [s["secret_access_key"] for s in sim.sessions.values()],
                             "session_tokens": [s["session_token"] for s in sim.sessions.values()]}
        if seg == ["users"] and m == "POST":
            items = data if isinstance(data, list) else [data]
            for u in items:
                sim.set_user(u)
            return 200, {"ok": True, "access_key_ids": [u["access_key_id"] for u in items]}
        if seg == ["sessions"] and m == "POST":
            s = sim.register_session(data)
            return 200, {"ok": True, "arn": s["arn"]}
        if seg == ["discovery-role"] and m in ("POST", "PATCH"):
            if not isinstance(data, dict):
                raise ValueError("send {\"arn\":..., \"max_session_duration\":..., \"trusted\": [principal ARNs]}")
            with sim.lock:
                cur = sim.discovery_role
                sim.set_discovery_role(data.get("arn", cur["arn"]),
                                       data.get("max_session_duration", cur["max_session_duration"]),
                                       data.get("trusted", cur["trust"][0]["principals"]))
            return 200, sim.identities_view()["discovery_role"]
        if seg == ["customer-role-name"] and m in ("POST", "PATCH"):
            name = data.get("name") if isinstance(data, dict) else data
            if not isinstance(name, str) or not re.fullmatch(r"[\w+=,.@-]{1,64}", name):
                raise ValueError("send {\"name\": an IAM role name}")
            with sim.lock:
                sim.customer_role_name = name
            return 200, {"ok": True, "customer_role_name": name}
        if seg == ["credentials", "expire"] and m == "POST":
            which = (data or {}).get("which", "all") if isinstance(data, (dict, type(None))) else None
            if which not in ("all", "discovery", "customer"):
                raise ValueError("which must be \"all\", \"discovery\" or \"customer\"")
            return 200, {"ok": True, "expired": sim.expire_sessions(which)}
        if seg and seg[0] == "accounts":
            return self._control_accounts(sim, m, seg[1:], data)
        return None

    def _control_accounts(self, sim, m, rest, data):
        if not rest:
            if m == "GET":
                with sim.lock:
                    return 200, {"accounts": sorted(sim.accounts)}
            return None
        acct = rest[0]
        if not _ACCOUNT_RE.match(acct):
            raise ValueError("an account id is 12 digits")
        rest = rest[1:]
        if not rest and m == "GET":
            return 200, sim.account_view(acct)
        if rest == ["apply-template"] and m == "POST":
            # The body is the template itself (what aws_cloudformation_template() returns), or
            # {"template": <object or text>, "parameters": {"ExternalId": ...}} to override
            # parameters as a stack creation would.
            if isinstance(data, dict) and "template" in data and "Resources" not in data:
                template, parameters = data["template"], data.get("parameters")
                if parameters is not None and not isinstance(parameters, dict):
                    raise ValueError("parameters must be an object")
            else:
                template, parameters = data, None
            if template is None:
                raise ValueError("send the template as the request body")
            role = sim.apply_template(acct, template, parameters)
            return 200, {"ok": True, "role_arn": role["arn"], "role_name": role["name"],
                         "max_session_duration": role["max_session_duration"],
                         "external_id_required": any(st["external_ids"] is not None for st in role["trust"])}
        if len(rest) == 2 and rest[0] == "roles" and m == "DELETE":
            with sim.lock:
                found = sim.account(acct)["roles"].pop(rest[1], None) is not None
            return (200, {"ok": True}) if found else (404, {"error": "no role %s in account %s" % (rest[1], acct)})
        if rest == ["regions"]:
            if m == "GET":
                return 200, {"regions": sim.account_view(acct)["regions"]}
            if m in ("POST", "PUT"):
                enabled = data.get("enabled") if isinstance(data, dict) else data
                sim.set_regions(acct, enabled)
                return 200, {"regions": sim.account_view(acct)["regions"]}
        if len(rest) >= 3 and rest[0] == "regions" and rest[2] in KIND_BY_PATH:
            region = rest[1]
            if region not in ALL_REGIONS:
                raise ValueError("unknown region %r" % region)
            kind = KIND_BY_PATH[rest[2]]
            with sim.lock:
                store = sim.account(acct)[kind]
                return self._control_collection(
                    m, rest[3:], data, store.get(region, []), lambda items: store.__setitem__(region, items),
                    REGIONAL_KINDS[kind]["id"], lambda spec, start: REGIONAL_KINDS[kind]["generate"](acct, region, spec, start),
                    REGIONAL_KINDS[kind]["shorthands"], aws_services.public_view, "%s/%s" % (acct, region))
        if rest and rest[0] == "buckets":
            with sim.lock:
                a = sim.account(acct)
                return self._control_collection(
                    m, rest[1:], data, a["buckets"], lambda items: a.__setitem__("buckets", items), "Name",
                    lambda spec, start: aws_services.generate_buckets(acct, spec, start),
                    aws_services.bucket_shorthands, aws_services.bucket_view, acct)
        if len(rest) >= 3 and rest[0] == "regions" and rest[2] == "instances":
            region = rest[1]
            if region not in ALL_REGIONS:
                raise ValueError("unknown region %r" % region)
            return self._control_instances(sim, m, acct, region, rest[3:], data)
        return None

    def _control_instances(self, sim, m, acct, region, rest, data):
        with sim.lock:
            store = sim.account(acct)["instances"]
            items = store.get(region, [])
            if not rest and m == "GET":
                return 200, {"instances": [public_view(i) for i in items], "count": len(items)}
            if not rest and m == "POST":
                lst = data.get("instances") if isinstance(data, dict) else data
                if not isinstance(lst, list) or not all(isinstance(i, dict) for i in lst):
                    raise ValueError("send a JSON list of instance objects (or {\"instances\": [...]})")
                # Stored as given (rendered in their key order), to inject odd shapes.
                new = []
                for i in lst:
                    inst = {k: v for k, v in i.items() if k not in ("reservationId", "ownerId")}
                    inst["_reservationId"] = i.get("reservationId") or "r-0" + "%016x" % random.getrandbits(64)
                    inst["_ownerId"] = i.get("ownerId") or acct
                    inst["_region"] = region
                    new.append(inst)
                store[region] = new
                return 200, {"ok": True, "count": len(new)}
            if rest == ["generate"] and m == "POST":
                if not isinstance(data, dict):
                    raise ValueError("send {\"count\": N, \"seed\": S, \"states\": [...]}")
                if data.get("append"):
                    new = generate_instances(acct, region, data, start_index=len(items))
                    store[region] = items + new
                else:
                    store[region] = new = generate_instances(acct, region, data)
                for inst in new:
                    rendered_instance(inst)
                total = store[region]
                return 200, {"ok": True, "count": len(total),
                             "instance_ids": [i["instanceId"] for i in total] if len(total) <= 2000 else None}
            if rest == ["add"] and m == "POST":
                if not isinstance(data, dict):
                    raise ValueError("send one instance's fields as a JSON object")
                inst = self._new_instance(acct, region, items, data)
                store[region] = items + [inst]
                return 200, {"ok": True, "instance": public_view(inst)}
            if len(rest) == 1 and m in ("GET", "PATCH", "DELETE"):
                idx = next((n for n, i in enumerate(items) if i.get("instanceId") == rest[0]), None)
                if idx is None:
                    return 404, {"error": "no instance %s in %s/%s" % (rest[0], acct, region)}
                if m == "GET":
                    return 200, {"instance": public_view(items[idx])}
                if m == "DELETE":
                    store[region] = items[:idx] + items[idx + 1:]
                    return 200, {"ok": True}
                if not isinstance(data, dict):
                    raise ValueError("send the fields to change as a JSON object")
                # Copy-on-write: a page being rendered keeps the old object.
                inst = copy.deepcopy(items[idx])
                self._overlay(inst, data)
                store[region] = items[:idx] + [inst] + items[idx + 1:]
                return 200, {"ok": True, "instance": public_view(inst)}
        return None

    @staticmethod
    def _control_collection(m, rest, data, items, store, id_field, generate, shorthands, view, where):
        """A resource collection's control endpoints (VPCs, DB instances, functions of a region;
        buckets of an account): GET / POST (replace, stored as given), generate, add (one
        complete resource with the fields given laid over it), and GET / PATCH / DELETE of one by
        its id.  Changes are copy-on-write: a page being rendered keeps the old objects.  The
        caller holds the simulator's lock."""
        if not rest and m == "GET":
            return 200, {"items": [view(i) for i in items], "count": len(items)}
        if not rest and m == "POST":
            lst = data.get("items") if isinstance(data, dict) else data
            if not isinstance(lst, list) or not all(isinstance(i, dict) and isinstance(i.get(id_field), str) for i in lst):
                raise ValueError("send a JSON list of objects, each with its %s (or {\"items\": [...]})" % id_field)
            new = []
            for i in lst:
                # the hidden fields of a generated one, then exactly the fields given
                obj = {k: v for k, v in generate({"count": 1}, len(new))[0].items() if k.startswith("_")}
                new.append(aws_services.overlay(obj, copy.deepcopy(i), shorthands))
            store(new)
            return 200, {"ok": True, "count": len(new)}
        if rest == ["generate"] and m == "POST":
            if not isinstance(data, dict):
                raise ValueError("send {\"count\": N, \"seed\": S, ...}")
            new = generate(data, len(items) if data.get("append") else 0)
            total = items + new if data.get("append") else new
            store(total)
            return 200, {"ok": True, "count": len(total),
                         "ids": [i[id_field] for i in total] if len(total) <= 2000 else None}
        if rest == ["add"] and m == "POST":
            if not isinstance(data, dict):
                raise ValueError("send one resource's fields as a JSON object")
            start = len(items)
            while True:
                obj = generate({"count": 1, "seed": start}, start)[0]
                if id_field in data or not any(i[id_field] == obj[id_field] for i in items):
                    break
                start += 1
            aws_services.overlay(obj, data, shorthands)
            if any(i[id_field] == obj[id_field] for i in items):
                raise ValueError("%s %s already exists" % (id_field, obj[id_field]))
            store(items + [obj])
            return 200, {"ok": True, "item": view(obj)}
        if len(rest) == 1 and m in ("GET", "PATCH", "DELETE"):
            idx = next((n for n, i in enumerate(items) if i.get(id_field) == rest[0]), None)
            if idx is None:
                return 404, {"error": "no %s %s in %s" % (id_field, rest[0], where)}
            if m == "GET":
                return 200, {"item": view(items[idx])}
            if m == "DELETE":
                store(items[:idx] + items[idx + 1:])
                return 200, {"ok": True}
            obj = aws_services.overlay(copy.deepcopy(items[idx]), data, shorthands)
            store(items[:idx] + [obj] + items[idx + 1:])
            return 200, {"ok": True, "item": view(obj)}
        return None

    @staticmethod
    def _overlay(inst, data):
        """Top-level fields replace the instance's (null removes one).  Shorthands: "state"
        (with the fields that follow from it), "tags" ({"k":"v"} or a list) and
        "instanceType"."""
        inst.pop("_xml", None)
        d = dict(data)
        state = d.pop("state", None)
        tags = d.pop("tags", "-")
        if "instanceType" in d and d["instanceType"] in INSTANCE_TYPE_BY_NAME:
            t = INSTANCE_TYPE_BY_NAME[d["instanceType"]]
            inst["cpuOptions"] = {"coreCount": t[1], "threadsPerCore": t[2]}
            inst["architecture"] = t[3]
        for k, v in d.items():
            if k.startswith("_"):
                raise ValueError("fields starting with _ are internal")
            inst[k] = v
        if tags != "-":
            inst["tagSet"] = _tag_set(tags) if tags else None
        if state is not None:
            apply_state(inst, state)

    def _new_instance(self, acct, region, items, data):
        n = len(items)
        rng = random.Random(repr(("ec2-add", acct, region, n, data.get("instanceId"))))
        ip_base = int(hashlib.sha256(repr((acct, region, "add")).encode()).hexdigest()[:8], 16) % 100000
        itype = data.get("instanceType") if data.get("instanceType") in INSTANCE_TYPE_BY_NAME else None
        inst = build_instance(acct, region, n, rng, state=data.get("state", "running"), instance_type=itype,
                              name=(data.get("tags") or {}).get("Name") if isinstance(data.get("tags"), dict) else None,
                              public_ip=data.get("public_ip", True), ip_base=ip_base)
        d = {k: v for k, v in data.items() if k != "public_ip"}
        if "instanceId" in d and any(i.get("instanceId") == d["instanceId"] for i in items):
            raise ValueError("instance %s already exists" % d["instanceId"])
        if "tags" in d and isinstance(d["tags"], dict) and "Name" not in d["tags"]:
            d["tags"] = dict({"Name": inst["tagSet"][0]["value"]}, **d["tags"])
        self._overlay(inst, d)
        return inst


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def _add_arguments(ap):
    ap.add_argument("--discovery-role-arn", help="the platform's discovery role (default %s)" % DEFAULT_DISCOVERY_ROLE_ARN)
    ap.add_argument("--customer-role-name", help="the customer role's name (default %s)" % DEFAULT_CUSTOMER_ROLE_NAME)


def _configure(args, state):
    # The CLI overrides the identity defaults unless the state file sets them itself.
    if args.discovery_role_arn and "discovery_role" not in state:
        state["discovery_role"] = {"arn": args.discovery_role_arn}
    if args.customer_role_name and "customer_role_name" not in state:
        state["customer_role_name"] = args.customer_role_name
    return {
        "credential_lifetime_s": None,
        "max_clock_skew_s": MAX_CLOCK_SKEW_S,
        "clock_offset_s": 0,
        "full_page_next_token": True,
        "default_max_results": None,
    }


def main(argv=None):
    return simlib.serve(argv, Handler, Sim, add_arguments=_add_arguments, configure=_configure)


if __name__ == "__main__":
    sys.exit(main())
