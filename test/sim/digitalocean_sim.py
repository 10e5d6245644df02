#!/usr/bin/python3
"""HTTPS simulator of the DigitalOcean API v2, for cloudconn's automated tests.

It serves the read endpoints a discovery client uses, GET /v2/account, GET /v2/droplets and the
other resource types' lists (GET /v2/volumes, /v2/load_balancers, /v2/kubernetes/clusters,
/v2/databases and /v2/reserved_ips: digitalocean_types.py), with DigitalOcean's wire format (bodies, status codes, error bodies, ratelimit headers,
pagination links), plus a control API under /_sim/ through which a test sets the data,
the tokens and injected faults, and reads the request log and counters.

Python 3 standard library only.  See README.md beside this file for the control API, the fault
kinds, and which parts were checked against which part of the official OpenAPI description.

Where the official material and observed behaviour differ, the choice made is written next to
the constant concerned (search for "WIRE:").
"""

import collections
import copy
import datetime
import hmac
import http
import ipaddress
import math
import os
import random
import re
import sys
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simlib  # noqa: E402  (beside this file: the server, control API, log and faults all simulators share)
import digitalocean_types as types  # noqa: E402  (volumes, load balancers, clusters, databases, reserved IPs)

# --------------------------------------------------------------------------------------------
# Wire constants
# --------------------------------------------------------------------------------------------

# WIRE: per_page default 20, maximum 200 (shared/parameters.yml).  The description only says
# "The maximum number of results per page is 200"; the API does not reject larger values, it
# serves 200, so a larger per_page is clamped (and the clamped value is what the links carry).
PER_PAGE_DEFAULT = 20
PER_PAGE_MAX = 200

# WIRE: 5000 requests per hour and 250 per minute, per token (description "Rate Limit",
# shared/headers.yml).  Each request has its own one-hour timer; ratelimit-reset is when the
# oldest counted request expires.
HOURLY_LIMIT = 5000
PER_MINUTE_LIMIT = 250

# WIRE: error bodies.  Each is {"id", "message"} (shared/models/error.yml).
#  401: the spec's example is {"id":"unauthorized","message":"Unable to authenticate you."}
#       (shared/responses/unauthorized.yml), which is what the API sent years ago; the API now
#       answers {"id":"Unauthorized","message":"Unable to authenticate you"}, which is served.
#       A test can switch to the spec's example with POST /_sim/config {"error_bodies":...}.
#  403: the description's example error ("You do not have access for the attempted action.").
#       Scope-denied answers have also been seen with "You are not authorized to perform this
#       operation."; clients should key on the status and "id", never on the message.
#  404: the description's "not_found" example (shared/models/error.yml).
#  429: the description's "Sample Rate Exceeded Response" ("API Rate limit exceeded."); the
#       too_many_requests.yml example spells it "API rate limit exceeded.".
#  500: shared/responses/server_error.yml's example.
#  Anything else (502, 503, 504, ...) is not documented; the simulator answers the same shape
#  with an id made from the status phrase.
ERROR_BODIES = {
    401: {"id": "Unauthorized", "message": "Unable to authenticate you"},
    403: {"id": "forbidden", "message": "You do not have access for the attempted action."},
    404: {"id": "not_found", "message": "The resource you were accessing could not be found."},
    429: {"id": "too_many_requests", "message": "API Rate limit exceeded."},
    500: {"id": "server_error", "message": "Unexpected server-side error"},
}

# WIRE: successful bodies are sent as "application/json; charset=utf-8" (shared/headers.yml
# example); error bodies as plain "application/json", as the API sends its 401s.
CT_OK = "application/json; charset=utf-8"
CT_ERROR = "application/json"

# WIRE: the scopes each operation needs (security of account_get.yml / droplets_list.yml, and of
# each other type's list operation: digitalocean_types.KINDS).
ROUTE_SCOPES = {"/v2/account": "account:read", "/v2/droplets": "droplet:read",
                **{k[0]: k[1] for k in types.KINDS.values()}}

# Body of the "malformed" fault: starts like a droplets page, then is not JSON.
MALFORMED_BODY = b'{"droplets":[{"id":1,"name":"web-1",<html><body>502 Bad Gateway</body></html>'

# Well-known default tokens, so a shell test can run the simulator with no state file.
# They have the shape of real personal access tokens ("dop_v1_" + 64 hex digits).
DEFAULT_TOKENS = [
    {"name": "default", "token": "dop_v1_" + "5317" * 16, "scope": "read"},
    {"name": "noscope", "token": "dop_v1_" + "0bad" * 16, "scope": "none"},
]

MAX_API_BODY = 64 * 1024              # bodies sent to the API endpoints are read and dropped

# --------------------------------------------------------------------------------------------
# Catalog used by the droplet generator (values in the shape of the spec's examples)
# --------------------------------------------------------------------------------------------

# Region slugs are the enum of shared/attributes/region_slug.yml.
REGION_NAMES = {
    "ams1": "Amsterdam 1", "ams2": "Amsterdam 2", "ams3": "Amsterdam 3", "blr1": "Bangalore 1",
    "fra1": "Frankfurt 1", "lon1": "London 1", "nyc1": "New York 1", "nyc2": "New York 2",
    "nyc3": "New York 3", "sfo1": "San Francisco 1", "sfo2": "San Francisco 2",
    "sfo3": "San Francisco 3", "sgp1": "Singapore 1", "tor1": "Toronto 1", "syd1": "Sydney 1",
}
REGION_FEATURES = ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"]

# (slug, memory MB, vcpus, disk GB, transfer TB, price_monthly, price_hourly)
SIZES = [
    ("s-1vcpu-1gb", 1024, 1, 25, 1.0, 6.0, 0.00893),
    ("s-1vcpu-2gb", 2048, 1, 50, 2.0, 12.0, 0.01786),
    ("s-2vcpu-2gb", 2048, 2, 60, 3.0, 18.0, 0.02679),
    ("s-2vcpu-4gb", 4096, 2, 80, 4.0, 24.0, 0.03571),
    ("s-4vcpu-8gb", 8192, 4, 160, 5.0, 48.0, 0.07143),
]
SIZE_BY_SLUG = {s[0]: s for s in SIZES}

IMAGES = [
    {"id": 129211873, "name": "22.04 (LTS) x64", "distribution": "Ubuntu", "slug": "ubuntu-22-04-x64",
     "created_at": "2023-03-29T17:54:59Z", "min_disk_size": 7, "size_gigabytes": 2.29},
    {"id": 148252387, "name": "12 x64", "distribution": "Debian", "slug": "debian-12-x64",
     "created_at": "2024-01-25T16:30:37Z", "min_disk_size": 10, "size_gigabytes": 0.98},
    {"id": 153997442, "name": "9 x64", "distribution": "Rocky Linux", "slug": "rockylinux-9-x64",
     "created_at": "2024-04-10T11:02:14Z", "min_disk_size": 10, "size_gigabytes": 1.21},
]

DEFAULT_ACCOUNT = {  # values of the spec's example (resources/account/models/account.yml)
    "droplet_limit": 25,
    "floating_ip_limit": 5,
    "email": "sammy@digitalocean.com",
    "name": "Sammy the Shark",
    "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef",
    "email_verified": True,
    "status": "active",
    "status_message": " ",
    "team": {"uuid": "5df3e3004a17e242b7c20ca6c9fc25b701a47ece", "name": "My Team"},
}

DEFAULT_GENERATE = {"count": 3, "regions": ["nyc3", "ams3", "sfo3"], "seed": 1}


def _region_object(slug):
    return {
        "name": REGION_NAMES.get(slug, slug.upper()),
        "slug": slug,
        "features": list(REGION_FEATURES),
        "available": True,
        "sizes": [s[0] for s in SIZES],
    }


def _size_object(slug, regions):
    slug, mem, vcpus, disk, transfer, pm, ph = SIZE_BY_SLUG[slug]
    return {
        "slug": slug, "memory": mem, "vcpus": vcpus, "disk": disk, "transfer": transfer,
        "price_monthly": pm, "price_hourly": ph, "regions": list(regions), "available": True,
        "description": "Basic",
        "disk_info": [{"type": "local", "size": {"amount": disk, "unit": "gib"}}],
    }


def _image_object(img, regions):
    return {
        "id": img["id"], "name": img["name"], "distribution": img["distribution"],
        "slug": img["slug"], "public": True, "regions": list(regions),
        "created_at": img["created_at"], "type": "base", "min_disk_size": img["min_disk_size"],
        "size_gigabytes": img["size_gigabytes"], "description": img["distribution"] + " " + img["name"],
        "tags": [], "status": "available", "error_message": "",
    }


def build_droplet(droplet_id, name, region, ip_index, rng, *, size_slug=None, status="active",
                  tags=None, created_at=None, private_gateway="nil"):
    """One droplet in the shape of resources/droplets/models/droplet.yml, keys in its order.

    WIRE: a private IPv4 interface carries no gateway; the spec's examples show the value as
    the string "nil" (network_v4.yml describes it as "nil"), which is served by default so
    clients are exercised against it.  private_gateway=None serves JSON null instead.
    """
    size_slug = size_slug or rng.choice(SIZES)[0]
    _, mem, vcpus, disk, _, _, _ = SIZE_BY_SLUG[size_slug]
    all_regions = sorted(REGION_NAMES)
    img = rng.choice(IMAGES)
    ipv6 = rng.random() < 0.5
    backups = rng.random() < 0.3
    if created_at is None:
        created_at = (datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
                      + datetime.timedelta(minutes=37 * ip_index + rng.randrange(30)))
        created_at = created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    if tags is None:
        tags = [rng.choice(["env:prod", "env:staging"]), rng.choice(["role:web", "role:db", "role:worker"])]
    features = ["droplet_agent", "private_networking"] + (["ipv6"] if ipv6 else []) + (["backups"] if backups else [])
    public = simlib.public_ipv4(ip_index, what="droplets")
    public_net = ipaddress.IPv4Network(public + "/24", strict=False)
    private = ipaddress.IPv4Address("10.100.0.1") + ip_index
    v6 = []
    if ipv6:
        v6 = [{"ip_address": str(ipaddress.IPv6Address("2001:db8:10::") + ip_index * 0x10000 + 1),
               "netmask": 64, "gateway": "2001:db8:10::1", "type": "public"}]
    window = None
    backup_ids = []
    if backups:
        backup_ids = [rng.randrange(100000000, 199999999)]
        window = {"start": "2024-06-03T00:00:00Z", "end": "2024-06-03T23:00:00Z"}
    return {
        "id": droplet_id,
        "name": name,
        "memory": mem,
        "vcpus": vcpus,
        "disk": disk,
        "disk_info": [{"type": "local", "size": {"amount": disk, "unit": "gib"}}],
        "locked": False,
        "status": status,
        "kernel": None,
        "created_at": created_at,
        "features": features,
        "backup_ids": backup_ids,
        "next_backup_window": window,
        "snapshot_ids": [],
        "image": _image_object(img, all_regions),
        "volume_ids": [],
        "size": _size_object(size_slug, all_regions),
        "size_slug": size_slug,
        "networks": {
            "v4": [
                {"ip_address": str(private), "netmask": "255.255.0.0", "gateway": private_gateway, "type": "private"},
                {"ip_address": public, "netmask": "255.255.255.0",
                 "gateway": str(public_net.network_address + 1), "type": "public"},
            ],
            "v6": v6,
        },
        "region": _region_object(region),
        "tags": list(tags),
        "vpc_uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, "sim-vpc/" + region)),
    }


def generate_droplets(spec, first_ip_index=0, min_id=None):
    """Deterministic: the same spec (and starting point) always yields the same droplets.
    Returns (droplets, next_ip_index).  Raises ValueError on a bad spec."""
    count = spec.get("count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100000:
        raise ValueError("count must be an integer between 0 and 100000")
    regions = spec.get("regions") or ["nyc3"]
    if not isinstance(regions, list) or not all(r in REGION_NAMES for r in regions):
        raise ValueError("regions must be a list of region slugs from: " + ", ".join(sorted(REGION_NAMES)))
    seed = spec.get("seed", 0)
    statuses = spec.get("statuses") or ["active"]
    if not all(s in ("new", "active", "off", "archive") for s in statuses):
        raise ValueError("statuses must be drawn from new, active, off, archive")
    tags = spec.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise ValueError("tags must be a list of strings")
    size = spec.get("size")
    if size is not None and size not in SIZE_BY_SLUG:
        raise ValueError("size must be one of: " + ", ".join(SIZE_BY_SLUG))
    prefix = spec.get("name_prefix", "sim")
    rng = random.Random(repr(("droplets", seed)))
    # Ids ascend like the API's, with gaps, from a seed-dependent base.
    next_id = 300000000 + (random.Random(repr(("base", seed))).randrange(1000) * 100000)
    if min_id is not None and next_id <= min_id:
        next_id = min_id + 1
    out = []
    for i in range(count):
        region = regions[i % len(regions)]  # spread evenly, in the order given
        droplet_id = next_id
        next_id += 1 + rng.randrange(9)
        out.append(build_droplet(
            droplet_id, "%s-%s-%04d" % (prefix, region, i + 1), region, first_ip_index + i, rng,
            size_slug=size, status=rng.choice(statuses), tags=tags,
            private_gateway=spec.get("private_gateway", "nil")))
    return out, first_ip_index + count


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

def _check_fault(r):
    """The fields of DigitalOcean's own fault kinds, and of its status faults (the generic ones
    and the match fields are simlib's)."""
    kind = r["kind"]
    if kind == "status":
        for key in ("retry_after", "ratelimit_reset_in"):
            if key in r and (not isinstance(r[key], (int, float)) or r[key] < 0):
                raise ValueError(key + " must be a non-negative number of seconds")
    elif kind == "foreign_next":
        if not isinstance(r.get("next_url"), str):
            raise ValueError("a foreign_next fault needs \"next_url\": the URL to put in links.pages.next")
    elif kind in ("bad_droplet", "bad_item"):
        if not isinstance(r.get("field"), str):
            raise ValueError("a %s fault needs \"field\" (\"id\", \"ip\" or another key of the item)" % kind)
        if not isinstance(r.setdefault("index", 0), int):
            raise ValueError("index must be an integer")


# A rule matches on path_prefix (default /v2/), page (the request's page, 1 by default) and
# method.
FAULT_RULES = simlib.FaultRules(
    ("status", "reset", "slow", "truncate", "malformed", "foreign_next", "bad_droplet", "bad_item"),
    match={"path_prefix": simlib.Prefix(default="/v2/"), "page": simlib.Positive()},
    check_kind=_check_fault)


# --------------------------------------------------------------------------------------------
# Simulator state (shared by all connection threads)
# --------------------------------------------------------------------------------------------

class Bucket:
    """Per-token sliding windows of request times (one hour and one minute)."""

    def __init__(self):
        self.hour = collections.deque()
        self.minute = collections.deque()

    def prune(self, now):
        while self.hour and self.hour[0] <= now - 3600:
            self.hour.popleft()
        while self.minute and self.minute[0] <= now - 60:
            self.minute.popleft()


class Sim(simlib.SimState):
    stats_template = {
        "requests_total": 0,
        "requests_by_path": {},
        "requests_by_status": {},
        "faults_applied": {},
        "rate_limited": 0,
    }
    config_keys = frozenset({"latency_ms", "hourly_limit", "per_minute_limit", "burst_limit",
                             "single_page_links", "error_bodies", "origin", "empty_databases"})
    fault_rules = FAULT_RULES

    # -- lifecycle ---------------------------------------------------------------------------

    def reset_state(self, init):
        self.account = init.get("account") or copy.deepcopy(DEFAULT_ACCOUNT)
        self.tokens = {}
        for t in init.get("tokens") if init.get("tokens") is not None else DEFAULT_TOKENS:
            self.set_token(t)
        self.next_ip_index = 0
        if init.get("droplets") is not None:
            self.droplets = list(init["droplets"])
            self.next_ip_index = len(self.droplets)
        else:
            self.droplets, self.next_ip_index = generate_droplets(init.get("generate") or DEFAULT_GENERATE)
        # the other types: none unless the state file has them (a list, or {"generate": spec})
        self.collections = {}
        self.next_index = {}
        for kind in types.KINDS:
            given = init.get(kind)
            self.collections[kind], self.next_index[kind] = [], 0
            if isinstance(given, list):
                self.collections[kind], self.next_index[kind] = list(given), len(given)
            elif isinstance(given, dict):
                self.collections[kind], self.next_index[kind] = types.generate(
                    kind, given.get("generate", given), self.type_context())
        self.buckets = {}

    def type_context(self):
        """What the other types' builders need of the droplets (call with the lock held, or
        before the server starts)."""
        by_region = {}
        for d in self.droplets:
            slug = (d.get("region") or {}).get("slug") if isinstance(d.get("region"), dict) else None
            if isinstance(d.get("id"), int):
                by_region.setdefault(slug, []).append(d)
        picks = {}

        def droplet(region):
            ds = by_region.get(region) or []
            if not ds:
                return None
            i = picks.get(region, 0)
            picks[region] = i + 1
            return ds[i % len(ds)]

        return {"regions": REGION_NAMES, "region_object": _region_object, "droplet": droplet,
                "droplet_ids": lambda region: [d["id"] for d in (by_region.get(region) or [])[:50]]}

    def check_config(self, data):
        for k in ("latency_ms", "hourly_limit", "per_minute_limit"):
            if k in data and (not isinstance(data[k], (int, float)) or data[k] < 0):
                raise ValueError(k + " must be a non-negative number")
        if "single_page_links" in data and data["single_page_links"] not in ("empty", "pages"):
            raise ValueError("single_page_links is \"empty\" (links:{}) or \"pages\" (links:{pages:{}})")
        if "empty_databases" in data and data["empty_databases"] not in ("array", "null"):
            raise ValueError("empty_databases is \"array\" (databases:[]) or \"null\" (databases:null)")

    def count_request(self, entry):
        s = self.stats
        s["requests_by_path"][entry["path"]] = s["requests_by_path"].get(entry["path"], 0) + 1
        if entry["status"] == 429 and entry.get("fault") is None:
            s["rate_limited"] += 1

    # -- tokens ------------------------------------------------------------------------------

    def set_token(self, t):
        if not isinstance(t, dict) or not isinstance(t.get("name"), str) or not t["name"]:
            raise ValueError("a token needs a non-empty \"name\"")
        if not isinstance(t.get("token"), str) or not t["token"]:
            raise ValueError("a token needs a non-empty \"token\" string")
        scope = t.get("scope", "read")
        if not (scope in ("read", "write", "full", "none")
                or (isinstance(scope, list) and all(isinstance(s, str) for s in scope))):
            raise ValueError("scope must be \"read\", \"write\", \"full\", \"none\" or a list of custom scopes")
        with self.lock:
            self.tokens[t["name"]] = {"token": t["token"], "scope": scope}

    def identify(self, authorization):
        """(auth_present, token_name or None, scope or None, presented token or None)."""
        if authorization is None:
            return False, None, None, None
        parts = authorization.strip().split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return True, None, None, None
        presented = parts[1].strip()
        with self.lock:
            tokens = list(self.tokens.items())
        for name, t in tokens:
            # Constant-time compare: the simulator should not teach clients to leak via timing.
            if hmac.compare_digest(t["token"].encode(), presented.encode()):
                return True, name, t["scope"], presented
        return True, None, None, presented

    @staticmethod
    def scope_allows(scope, needed):
        if scope in ("read", "write", "full"):
            return True
        if scope == "none" or scope is None:
            return False
        return needed in scope

    # -- rate limiting -----------------------------------------------------------------------

    def rate_check(self, bucket_name):
        """Counts one request.  Returns (allowed, headers, retry_after or None)."""
        now = time.time()
        with self.lock:
            limit = int(self.config["hourly_limit"])
            per_minute = int(self.config["per_minute_limit"])
            b = self.buckets.setdefault(bucket_name, Bucket())
            b.prune(now)
            if len(b.hour) >= limit:
                # WIRE: hourly quota spent: 429 with remaining 0 and the time the oldest
                # request expires; retry-after is only sent for the burst limit.
                return False, self._rl_headers(limit, 0, b.hour[0] + 3600 if b.hour else now), None
            if self.config["burst_limit"] and len(b.minute) >= per_minute:
                # WIRE: burst limit: remaining reads 0 and retry-after tells the seconds to wait.
                retry = max(1, math.ceil(b.minute[0] + 60 - now))
                return False, self._rl_headers(limit, 0, b.hour[0] + 3600 if b.hour else now + 3600), retry
            b.hour.append(now)
            b.minute.append(now)
            return True, self._rl_headers(limit, limit - len(b.hour), b.hour[0] + 3600), None

    def rate_peek(self, bucket_name):
        now = time.time()
        with self.lock:
            limit = int(self.config["hourly_limit"])
            b = self.buckets.setdefault(bucket_name, Bucket())
            b.prune(now)
            return self._rl_headers(limit, max(0, limit - len(b.hour)), b.hour[0] + 3600 if b.hour else now + 3600)

    @staticmethod
    def _rl_headers(limit, remaining, reset):
        return [("ratelimit-limit", str(limit)), ("ratelimit-remaining", str(remaining)),
                ("ratelimit-reset", str(int(reset)))]

    def set_ratelimit(self, bucket_name, remaining=None, reset_in=None, clear=False):
        now = time.time()
        with self.lock:
            limit = int(self.config["hourly_limit"])
            b = self.buckets.setdefault(bucket_name, Bucket())
            if clear:
                b.hour.clear()
                b.minute.clear()
            if remaining is not None:
                # Fill the hour window with synthetic requests so that `remaining` are left,
                # all stamped so that the oldest expires `reset_in` seconds from now.
                stamp = now - 3600 + (3600 if reset_in is None else reset_in)
                b.hour.clear()
                b.hour.extend([stamp] * max(0, limit - remaining))

    # -- log ---------------------------------------------------------------------------------

    def redact(self, text, presented):
        """Removes every configured token, and the one presented, from a string bound for
        the log.  Short presented strings are left alone: they are not secrets, and
        replacing them would mangle ordinary paths."""
        with self.lock:
            secrets = [t["token"] for t in self.tokens.values()]
        if presented and len(presented) >= 8:
            secrets.append(presented)
        for s in sorted(set(secrets), key=len, reverse=True):
            for form in (s, urllib.parse.quote(s, safe=""), urllib.parse.quote_plus(s)):
                if form:
                    text = text.replace(form, "[REDACTED]")
        return text


# --------------------------------------------------------------------------------------------
# HTTP handling
# --------------------------------------------------------------------------------------------

# WIRE: the API sends compact JSON.
_json_bytes = simlib.json_bytes


def _error_body(sim, status):
    with sim.lock:
        custom = (sim.config.get("error_bodies") or {}).get(str(status))
    if custom is not None:
        return custom
    if status in ERROR_BODIES:
        return ERROR_BODIES[status]
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"id": re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_"), "message": phrase + "."}


def _int_param(query, name, default):
    vals = query.get(name)
    if not vals:
        return default, False
    try:
        return int(vals[0]), True
    except ValueError:
        return default, False


_HOST_RE = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


class Handler(simlib.BaseHandler):
    sim_name = "digitalocean_sim"
    description = ("HTTPS simulator of the DigitalOcean API v2 (account, droplets, volumes, load balancers, "
                   "Kubernetes clusters, databases, reserved IPs).")
    state_help = ("JSON: initial account, tokens, droplets or generate, volumes, load_balancers, "
                  "kubernetes_clusters, databases, reserved_ips (lists or generate specs), config, faults")
    server_header = "digitalocean-sim/1.0"
    max_api_body = MAX_API_BODY
    control_content_type = CT_OK

    def split_target(self):
        parsed = urllib.parse.urlsplit(self.path)
        return parsed.path, parsed.query

    # -- answers in the API's error shape ------------------------------------------------------

    def protocol_error(self, code, message):
        return CT_ERROR, _json_bytes({"id": "bad_request", "message": message or "Bad request."})

    def send_request_error(self, status, code, message):
        self.send_body(status, _json_bytes({"id": code, "message": message}), [("Content-Type", CT_ERROR)])

    def internal_error(self):
        self.send_body(500, _json_bytes(ERROR_BODIES[500]), [("Content-Type", CT_ERROR)])

    def _origin(self):
        """The origin that pagination links point at: the client's own Host (as the real API's
        links carry the host the client called), unless --origin fixes it."""
        fixed = self.server.sim.config.get("origin")
        if fixed:
            return fixed.rstrip("/")
        host = self.headers.get("Host", "")
        if host and _HOST_RE.match(host):
            return "https://" + host
        h, p = self.server.server_address[:2]
        return "https://%s:%d" % ("[%s]" % h if ":" in h else h, p)

    # -- the API -----------------------------------------------------------------------------

    def begin_call(self, call):
        sim = self.server.sim
        call.params = urllib.parse.parse_qs(call.query, keep_blank_values=True)
        call.page, _ = _int_param(call.params, "page", 1)
        auth_present, call.token_name, call.scope, presented = sim.identify(self.headers.get("Authorization"))
        return {
            "time": simlib.log_time(),
            "method": call.method,
            "path": sim.redact(call.path, presented),
            "query": sim.redact(call.query, presented),
            "auth_present": auth_present,
            "token_matches": call.token_name,
            "status": None,
            "bytes": 0,
            "fault": None,
            "request_id": str(uuid.uuid4()),
            "client_port": self.client_address[1],
        }

    def inspect(self, call):
        return {"method": call.method, "path": call.path, "page": call.page}

    def respond(self, call):
        fault = call.fault
        bucket = call.token_name or "anonymous"
        common = [("x-request-id", call.entry["request_id"])]
        if fault and fault["kind"] == "status":
            status, body, headers = self._fault_status(fault, bucket)
        else:
            status, body, headers = self._api_response(call.path, call.params, call.token_name, call.scope, bucket)
            body = self._apply_body_fault(fault, status, body)
        return status, body, headers + common

    def malformed_body(self, call, body):
        return MALFORMED_BODY

    def _fault_status(self, fault, bucket):
        sim = self.server.sim
        st = fault["status"]
        if st == 429:
            now = time.time()
            rl = sim.rate_peek(bucket)
            if "ratelimit_reset_in" in fault:
                rl = [h for h in rl if h[0] != "ratelimit-reset"] + [("ratelimit-reset", str(int(now + fault["ratelimit_reset_in"])))]
            rl = [("ratelimit-remaining", "0") if h[0] == "ratelimit-remaining" else h for h in rl]
        else:
            ok, rl, _ = sim.rate_check(bucket)
            if not ok:
                rl = sim.rate_peek(bucket)
        headers = [("Content-Type", CT_ERROR)] + rl
        if "retry_after" in fault:
            headers.append(("retry-after", str(int(math.ceil(fault["retry_after"])))))
        if "body" in fault:  # a test may want the exact bytes of some gateway's error page
            b = fault["body"]
            body = b.encode("utf-8") if isinstance(b, str) else _json_bytes(b)
            if "content_type" in fault:
                headers[0] = ("Content-Type", fault["content_type"])
        else:
            body = _json_bytes(_error_body(sim, st))
        return st, body, headers

    def _api_response(self, path, query, token_name, scope, bucket):
        """Rate limit, then auth, then route, then scope.  Returns (status, body, headers);
        body is bytes, except for a droplets page: a dict, which body faults may still change."""
        sim = self.server.sim
        err = [("Content-Type", CT_ERROR)]
        ok, rl, retry = sim.rate_check(bucket)
        if not ok:
            headers = err + rl + ([("retry-after", str(retry))] if retry is not None else [])
            return 429, _json_bytes(_error_body(sim, 429)), headers
        if token_name is None:
            return 401, _json_bytes(_error_body(sim, 401)), err + rl
        route = path.rstrip("/") if path != "/" else path
        needed = ROUTE_SCOPES.get(route)
        if needed is None or self.command not in ("GET", "HEAD"):
            return 404, _json_bytes(_error_body(sim, 404)), err + rl
        if not sim.scope_allows(scope, needed):
            return 403, _json_bytes(_error_body(sim, 403)), err + rl
        with sim.lock:
            account = sim.account
            droplets = sim.droplets  # replaced, never mutated, by the control API
            kind = types.ROUTE_KINDS.get(route)
            collection = sim.collections[kind] if kind else None  # likewise
            single_page_links = sim.config.get("single_page_links", "empty")
        if route == "/v2/account":
            return 200, _json_bytes({"account": account}), [("Content-Type", CT_OK)] + rl
        if kind is not None:
            return 200, self._kind_page(kind, query, collection, single_page_links), [("Content-Type", CT_OK)] + rl
        return 200, self._droplets_page(query, droplets, single_page_links), [("Content-Type", CT_OK)] + rl

    def _kind_page(self, kind, query, items, single_page_links):
        """A page of another type's list, with its own filters: volumes take name and region
        (volumes_list.yml), databases tag_name and are not paginated (databases_list_clusters.yml:
        the answer is {"databases": [...]} alone)."""
        route = types.KINDS[kind][0]
        if kind == "volumes":
            name = query.get("name", [None])[0]
            if name:
                items = [v for v in items if v.get("name") == name]
            region = query.get("region", [None])[0]
            if region:
                items = [v for v in items if (v.get("region") or {}).get("slug") == region]
        if kind == "databases":
            tag = query.get("tag_name", [None])[0]
            if tag:
                items = [d for d in items if tag in (d.get("tags") or [])]
            # WIRE: the description has "databases" an array; an account without clusters has
            # been seen answered {"databases": null} (a Go nil slice), which the setting
            # empty_databases: "null" serves.
            if not items and self.server.sim.config.get("empty_databases") == "null":
                return {"databases": None}
            return {"databases": list(items)}
        return self._page(kind, route, query, items, single_page_links)

    def _droplets_page(self, query, droplets, single_page_links):
        # Filters (droplets_list.yml): tag_name (exact tag), name (exact, case-insensitive),
        # type=gpus (only droplets with gpu_info; by default those are left out).
        items = droplets
        tag = query.get("tag_name", [None])[0]
        if tag:
            items = [d for d in items if tag in (d.get("tags") or [])]
        name = query.get("name", [None])[0]
        if name:
            items = [d for d in items if str(d.get("name", "")).lower() == name.lower()]
        want_gpus = query.get("type", [""])[0] == "gpus"
        items = [d for d in items if bool(d.get("gpu_info")) == want_gpus]

        return self._page("droplets", "/v2/droplets", query, items, single_page_links)

    def _page(self, key, route, query, items, single_page_links):
        """One page of a paginated list: {key: [...], "links": ..., "meta": {"total": n}}."""
        per_page, _ = _int_param(query, "per_page", PER_PAGE_DEFAULT)
        if per_page < 1:
            per_page = PER_PAGE_DEFAULT
        per_page = min(per_page, PER_PAGE_MAX)
        page, _ = _int_param(query, "page", 1)
        page = max(page, 1)
        total = len(items)
        last = max(1, math.ceil(total / per_page))
        chunk = items[(page - 1) * per_page: page * per_page]

        # WIRE: links carry the client's other query parameters, page first; per_page as
        # served.  Keys are in the API's (alphabetical) order; on page 1 there is no first/prev,
        # on the last page no next/last (description "Links & Pagination").
        rest = [(k, str(per_page) if k == "per_page" else vs[0]) for k, vs in query.items() if k != "page"]
        base = self._origin() + route + "?"

        def link(n):
            return base + urllib.parse.urlencode([("page", n)] + rest)

        pages = {}
        if page > 1:
            pages["first"] = link(1)
        if page < last:
            pages["last"] = link(last)
            pages["next"] = link(page + 1)
        if page > 1:
            pages["prev"] = link(page - 1)
        if pages:
            links = {"pages": pages}
        else:
            # WIRE: a single page gets "links":{} (the API, and the spec's GPU example);
            # other spec examples show {"pages":{}}, selectable with single_page_links.
            links = {"pages": {}} if single_page_links == "pages" else {}
        return {key: chunk, "links": links, "meta": {"total": total}}

    def _apply_body_fault(self, fault, status, body):
        """body is a dict for a list page, else bytes.  Returns bytes."""
        if fault and status == 200:
            kind = fault["kind"]
            key = next((k for k in ("droplets",) + tuple(types.KINDS) if isinstance(body, dict) and k in body), None)
            if kind == "foreign_next" and isinstance(body, dict) and "links" in body:
                pages = body["links"].setdefault("pages", {})
                pages["next"] = fault["next_url"]
            if kind in ("bad_droplet", "bad_item") and key and body[key]:
                i = min(max(fault["index"], 0), len(body[key]) - 1)
                d = copy.deepcopy(body[key][i])
                field = fault["field"]
                if field == "ip" and "networks" in d:
                    for net in d.get("networks", {}).get("v4", []):
                        if net.get("type") == "public":
                            net["ip_address"] = fault.get("value", "999.1.2.3")
                elif field == "ip":
                    d["ip"] = fault.get("value", "999.1.2.3")
                elif "value" in fault:
                    d[field] = fault["value"]
                else:
                    d.pop(field, None)
                body[key] = body[key][:i] + [d] + body[key][i + 1:]
        return _json_bytes(body) if isinstance(body, dict) else body

    # -- the control API ---------------------------------------------------------------------

    def control_route(self, sim, m, seg, data):
        """DigitalOcean's own endpoints (health, reset, config, faults, log and stats are
        simlib's)."""
        if seg == ["account"]:
            if m == "GET":
                with sim.lock:
                    return 200, {"account": sim.account}
            if m in ("POST", "PATCH"):
                if not isinstance(data, dict):
                    raise ValueError("send the account as a JSON object")
                acct = data.get("account", data)
                with sim.lock:
                    sim.account = dict(acct) if m == "POST" else {**sim.account, **acct}
                    return 200, {"account": sim.account}
        if seg and seg[0] == "droplets":
            return self._control_droplets(sim, m, seg[1:], data)
        if seg and seg[0] in types.KINDS:
            return self._control_kind(sim, seg[0], m, seg[1:], data)
        if seg and seg[0] == "tokens":
            if m == "GET" and len(seg) == 1:
                with sim.lock:  # names and scopes only: token values never leave by this API
                    return 200, {"tokens": [{"name": n, "scope": t["scope"]} for n, t in sim.tokens.items()]}
            if m == "POST" and len(seg) == 1:
                items = data if isinstance(data, list) else [data]
                for t in items:
                    sim.set_token(t)
                return 200, {"ok": True, "names": [t["name"] for t in items]}
            if m == "DELETE" and len(seg) == 2:
                with sim.lock:
                    found = sim.tokens.pop(seg[1], None) is not None
                return (200, {"ok": True}) if found else (404, {"error": "no token named %s" % seg[1]})
        if seg == ["ratelimit"] and m == "POST":
            if not isinstance(data, dict):
                raise ValueError("send {\"token\": NAME, \"remaining\": N, \"reset_in\": S, \"clear\": bool}")
            remaining = data.get("remaining")
            if remaining is not None and (not isinstance(remaining, int) or remaining < 0):
                raise ValueError("remaining must be a non-negative integer")
            sim.set_ratelimit(data.get("token") or "anonymous", remaining, data.get("reset_in"), bool(data.get("clear")))
            return 200, {"ok": True}
        return None

    def _control_droplets(self, sim, m, rest, data):
        if m == "GET" and not rest:
            with sim.lock:
                return 200, {"droplets": sim.droplets, "count": len(sim.droplets)}
        if m == "POST" and not rest:
            items = data.get("droplets") if isinstance(data, dict) else data
            if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
                raise ValueError("send a JSON list of droplet objects (or {\"droplets\": [...]})")
            with sim.lock:  # stored verbatim: tests may inject droplets of any shape
                sim.droplets = list(items)
                sim.next_ip_index = max(sim.next_ip_index, len(items))
            return 200, {"ok": True, "count": len(items)}
        if m == "POST" and rest == ["generate"]:
            if not isinstance(data, dict):
                raise ValueError("send {\"count\": N, \"regions\": [...], \"seed\": S}")
            with sim.lock:
                if data.get("append"):
                    max_id = max([d["id"] for d in sim.droplets if isinstance(d.get("id"), int)] or [0])
                    new, sim.next_ip_index = generate_droplets(data, sim.next_ip_index, max_id)
                    sim.droplets = sim.droplets + new
                else:
                    sim.droplets, sim.next_ip_index = generate_droplets(data)
                return 200, {"ok": True, "count": len(sim.droplets),
                             "ids": [d.get("id") for d in sim.droplets] if len(sim.droplets) <= 1000 else None}
        if m == "POST" and rest == ["add"]:
            if not isinstance(data, dict):
                raise ValueError("send one droplet as a JSON object")
            return 200, {"ok": True, "droplet": self._add_droplet(sim, data)}
        if len(rest) == 1 and m in ("PATCH", "DELETE", "GET"):
            try:
                did = int(rest[0])
            except ValueError:
                raise ValueError("droplet id must be an integer")
            with sim.lock:
                idx = next((i for i, d in enumerate(sim.droplets) if d.get("id") == did), None)
                if idx is None:
                    return 404, {"error": "no droplet with id %d" % did}
                if m == "GET":
                    return 200, {"droplet": sim.droplets[idx]}
                if m == "DELETE":
                    sim.droplets = sim.droplets[:idx] + sim.droplets[idx + 1:]
                    return 200, {"ok": True}
                if not isinstance(data, dict):
                    raise ValueError("send the fields to change as a JSON object")
                # Copy-on-write: a response being serialised keeps the old object.
                new = {**sim.droplets[idx], **self._expand_shorthands(data)}
                sim.droplets = sim.droplets[:idx] + [new] + sim.droplets[idx + 1:]
                return 200, {"ok": True, "droplet": new}
        return None

    def _control_kind(self, sim, kind, m, rest, data):
        """/_sim/<kind>: as /_sim/droplets (GET, POST a list, POST generate with "append", POST
        add, GET/PATCH/DELETE one by its id: a reserved IP's is its address)."""
        id_key = types.KINDS[kind][2]
        if m == "GET" and not rest:
            with sim.lock:
                return 200, {kind: sim.collections[kind], "count": len(sim.collections[kind])}
        if m == "POST" and not rest:
            items = data.get(kind) if isinstance(data, dict) else data
            if not isinstance(items, list) or not all(isinstance(d, dict) for d in items):
                raise ValueError("send a JSON list of objects (or {\"%s\": [...]})" % kind)
            with sim.lock:  # stored verbatim: tests may inject any shape
                sim.collections[kind] = list(items)
                sim.next_index[kind] = max(sim.next_index[kind], len(items))
            return 200, {"ok": True, "count": len(items)}
        if m == "POST" and rest in (["generate"], ["add"]):
            if not isinstance(data, dict):
                raise ValueError("send {\"count\": N, \"regions\": [...], \"seed\": S}")
            with sim.lock:
                if rest == ["add"]:
                    fields = dict(data)
                    region = fields.pop("region", "nyc3")
                    if not isinstance(region, str):
                        raise ValueError("region is a slug here")
                    spec = {"count": 1, "regions": [region], "seed": "add",
                            **{k: fields.pop(k) for k in ("password", "engine", "tags") if k in fields}}
                    new, sim.next_index[kind] = types.generate(kind, spec, sim.type_context(), sim.next_index[kind])
                    new = [{**new[0], **fields}]
                    sim.collections[kind] = sim.collections[kind] + new
                    return 200, {"ok": True, "item": new[0]}
                if data.get("append"):
                    new, sim.next_index[kind] = types.generate(kind, data, sim.type_context(), sim.next_index[kind])
                    sim.collections[kind] = sim.collections[kind] + new
                else:
                    sim.collections[kind], sim.next_index[kind] = types.generate(kind, data, sim.type_context())
                items = sim.collections[kind]
                return 200, {"ok": True, "count": len(items),
                             "ids": [d.get(id_key) for d in items] if len(items) <= 1000 else None}
        if len(rest) == 1 and m in ("PATCH", "DELETE", "GET"):
            with sim.lock:
                items = sim.collections[kind]
                idx = next((i for i, d in enumerate(items) if str(d.get(id_key)) == rest[0]), None)
                if idx is None:
                    return 404, {"error": "no item of %s with %s %s" % (kind, id_key, rest[0])}
                if m == "GET":
                    return 200, {"item": items[idx]}
                if m == "DELETE":
                    sim.collections[kind] = items[:idx] + items[idx + 1:]
                    return 200, {"ok": True}
                if not isinstance(data, dict):
                    raise ValueError("send the fields to change as a JSON object")
                fields = dict(data)
                if isinstance(fields.get("region"), str) and kind not in ("kubernetes_clusters", "databases"):
                    fields["region"] = _region_object(fields["region"])
                new = {**items[idx], **fields}  # copy-on-write, as for droplets
                sim.collections[kind] = items[:idx] + [new] + items[idx + 1:]
                return 200, {"ok": True, "item": new}
        return None

    @staticmethod
    def _expand_shorthands(data):
        """Lets a test write "region": "fra1" or "size": "s-2vcpu-4gb" and get the full objects
        (and the fields that follow from them) as the API would show them."""
        d = dict(data)
        if isinstance(d.get("region"), str):
            if d["region"] not in REGION_NAMES:
                raise ValueError("unknown region slug %r" % d["region"])
            d["region"] = _region_object(d["region"])
        if isinstance(d.get("size"), str):
            if d["size"] not in SIZE_BY_SLUG:
                raise ValueError("unknown size slug %r" % d["size"])
            slug, mem, vcpus, disk = SIZE_BY_SLUG[d["size"]][:4]
            d["size"] = _size_object(slug, sorted(REGION_NAMES))
            d.update(size_slug=slug, memory=mem, vcpus=vcpus, disk=disk,
                     disk_info=[{"type": "local", "size": {"amount": disk, "unit": "gib"}}])
        return d

    def _add_droplet(self, sim, data):
        """A complete, valid droplet built like the generator's, with the given fields laid
        over it (shorthand region/size strings expanded).  A missing id gets the next free."""
        fields = self._expand_shorthands(data)
        with sim.lock:
            ids = [d["id"] for d in sim.droplets if isinstance(d.get("id"), int)]
            did = fields.get("id", (max(ids) + 1) if ids else 300000001)
            region = fields["region"]["slug"] if isinstance(fields.get("region"), dict) else "nyc3"
            rng = random.Random(repr(("add", did)))
            base = build_droplet(did, fields.get("name", "sim-added-%s" % did), region, sim.next_ip_index, rng)
            sim.next_ip_index += 1
            new = {**base, **fields, "id": did}
            sim.droplets = sim.droplets + [new]
            return new


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------

def _add_arguments(ap):
    ap.add_argument("--origin", help="fixed origin for pagination links (default: the request's Host)")
    ap.add_argument("--no-burst-limit", action="store_true", help="turn off the 250/minute burst limit")
    ap.add_argument("--hourly-limit", type=int, default=HOURLY_LIMIT)
    ap.add_argument("--per-minute-limit", type=int, default=PER_MINUTE_LIMIT)


def _configure(args, state):
    for t in state.get("tokens") or []:
        if not isinstance(t, dict) or "name" not in t or "token" not in t:
            raise ValueError("each token in the state file needs \"name\" and \"token\"")
    return {
        "hourly_limit": args.hourly_limit,
        "per_minute_limit": args.per_minute_limit,
        "burst_limit": not args.no_burst_limit,
        "single_page_links": "empty",
        "empty_databases": "array",
        "error_bodies": {},
        "origin": args.origin,
    }


def main(argv=None):
    return simlib.serve(argv, Handler, Sim, add_arguments=_add_arguments, configure=_configure)


if __name__ == "__main__":
    sys.exit(main())
