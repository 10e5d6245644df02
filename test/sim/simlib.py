"""simlib: the part every cloud API simulator of cloudconn's tests shares.

A simulator is an HTTPS server that speaks one provider's wire format and has a control API
under /_sim/ through which a test sets its data, injects faults and reads its request log and
counters.  What is the same for every provider lives here, so that a simulator's own file holds
only the provider: its routes, data, authentication and error shapes.  README.md beside this file
shows how to write one in a page of code (example_sim.py is that page, and test_simlib.py runs
it).  Python 3 standard library only.

What a simulator gets:

  serve()       the command line (--host, --port, --cert, --key, --state-file, --log, --port-file,
                --latency-ms, --idle-timeout, --max-lifetime, --exit-with-parent, --verbose, plus
                the simulator's own options), the TLS server, the port file written atomically,
                the {"event":"listening",...} line on stdout, a clean stop on SIGTERM/SIGINT and
                the two safety nets (--max-lifetime, --exit-with-parent).
  SimServer     a threading HTTPS server: the TLS handshake runs in the connection's thread (a
                client that stalls cannot hold up accept()), handshake failures are counted.
  SimState      the state shared by all connection threads: one lock, the configuration (reset
                to the command line's and the state file's), the request log (in memory and in
                the --log file, emptied on reset), the counters (requests_total,
                requests_by_status, faults_applied, in_flight, max_in_flight, connections_total,
                tls_handshake_failures, plus the simulator's own), and the fault rules.
  FaultRules    validation and matching of fault rules: kind, times (-1: never runs out), skip,
                method, and the simulator's own match fields (Text, Positive, Prefix); the
                generic kinds status, slow, reset, truncate and malformed (body, body_base64).
  BaseHandler   HTTP/1.1 keep-alive with an idle timeout, bounded request bodies (411/413),
                answers to requests http.server cannot parse, one request's bug never costing
                the server, the API request's life cycle (log entry, fault, latency, the generic
                faults, counters), and the control API: /_sim/health, reset, config, faults, log
                and stats, JSON in and out (16 MiB bodies, 400 for bad JSON or a ValueError,
                404 for an unknown endpoint), with the simulator's own endpoints routed first.

What a simulator writes: a SimState subclass (stats_template, config_keys, check_config,
reset_state, fault_rules, count_request), a BaseHandler subclass (begin_call, inspect, respond,
and the few hooks whose answer is in the provider's error shape: protocol_error,
send_request_error, internal_error), and a main() that calls serve().
"""

import argparse
import base64
import binascii
import copy
import datetime
import http.server
import ipaddress
import json
import os
import signal
import socket
import ssl
import struct
import sys
import threading
import time

MAX_CONTROL_BODY = 16 * 1024 * 1024   # control API request bodies (data sets can be large)
MAX_API_BODY = 64 * 1024              # API request bodies; a simulator may allow more
HANDSHAKE_TIMEOUT = 10.0              # seconds a client has to finish the TLS handshake


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

def json_bytes(obj, ensure_ascii=False):
    """obj as compact JSON (what the providers' APIs send), UTF-8 encoded.  Values JSON has no
    type for are written as their str()."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=ensure_ascii, default=str).encode("utf-8")


def log_time():
    """The current time as a log entry's "time": ISO 8601, UTC, milliseconds, "Z"."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_number(v):
    """An int or a float, but not a bool (which Python counts as an int)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# Public IPv4 addresses handed out by the data generators: only documentation (RFC 5737) and
# benchmarking (RFC 2544) ranges, so nothing a test discovers is a real host anywhere.
PUBLIC_IPV4_POOLS = [("203.0.113.0", 254), ("198.51.100.0", 254), ("192.0.2.0", 254), ("198.18.0.0", 131070)]
PUBLIC_IPV4_POOL_SIZE = sum(n for _, n in PUBLIC_IPV4_POOLS)


def public_ipv4(n, wrap=False, what="addresses"):
    """The n-th public address of PUBLIC_IPV4_POOLS (counting from 0).  Past the last one it
    starts again if wrap is set, and otherwise raises ValueError ("too many <what> for the
    address pools")."""
    if wrap:
        n %= PUBLIC_IPV4_POOL_SIZE
    for base, size in PUBLIC_IPV4_POOLS:
        if n < size:
            return str(ipaddress.IPv4Address(base) + 1 + n)
        n -= size
    raise ValueError("too many %s for the address pools" % what)


def load_state(path):
    """The --state-file's JSON object ({} without a file).  Raises OSError or ValueError."""
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    if not isinstance(state, dict):
        raise ValueError("the state file must hold a JSON object")
    return state


class Abort(Exception):
    """The connection was dropped on purpose; nothing more may be written."""


# --------------------------------------------------------------------------------------------
# Fault rules
# --------------------------------------------------------------------------------------------

# The kinds the framework carries out itself (status is validated here, but answered by the
# simulator, in its error shape).  A simulator lists the ones it supports in its FaultRules.
GENERIC_FAULTS = ("status", "reset", "slow", "truncate", "malformed")


class Text:
    """A match field holding a string that must equal the request's value.  choices, if given,
    are the only values a rule may name."""

    default = None

    def __init__(self, choices=None, against=None):
        self.choices = tuple(choices) if choices is not None else None
        self.against = against

    def check(self, name, value):
        if self.choices is not None and value not in self.choices:
            raise ValueError("%s must be %s" % (name, " or ".join('"%s"' % c for c in self.choices)))
        if not isinstance(value, str):
            raise ValueError(name + " must be a string")

    @staticmethod
    def matches(rule_value, request_value):
        return rule_value == request_value


class Positive(Text):
    """A match field holding an integer from 1 (a page number, say); hint is added to the
    error message in parentheses."""

    def __init__(self, hint=None, against=None):
        super().__init__(against=against)
        self.hint = hint

    def check(self, name, value):
        if not isinstance(value, int) or value < 1:
            raise ValueError("%s must be a positive integer%s" % (name, " (%s)" % self.hint if self.hint else ""))


class Prefix(Text):
    """A match field holding a path prefix, compared with the request's value of `against`
    (by default "path").  default is what a rule that names none gets."""

    def __init__(self, default=None, against="path"):
        super().__init__(against=against)
        self.default = default

    def check(self, name, value):
        if not isinstance(value, str) or not value.startswith("/"):
            raise ValueError(name + " must be a string starting with /")

    @staticmethod
    def matches(rule_value, request_value):
        return isinstance(request_value, str) and request_value.startswith(rule_value)


class FaultRules:
    """What fault rules a simulator takes, and how one is matched with a request.

    A rule is a JSON object: {"kind": K, <match fields>, "method": M, "times": N, "skip": S,
    <the kind's own fields>}.  times defaults to 1 and -1 never runs out; skip (default 0) lets
    the first S matching requests through; method (any case) matches the request's method; each
    match field in `match` ({name: Text() | Positive() | Prefix()}) that a rule names must match
    the request's value, as given by the simulator's BaseHandler.inspect (under the field's name,
    or under field.against).  check_kind(rule) validates the fields of the simulator's own kinds
    (and its extra fields of the generic ones); it may set defaults, and raises ValueError.

    The generic kinds, validated here:
      status     {"status": 400..599}: the simulator answers it in its error shape
      slow       {"delay_ms": 0..600000}: waits that much more before answering
      reset      closes the TCP connection with a RST, sending no response (no TLS close_notify)
      truncate   sends the headers with the full Content-Length, half the body, then closes
      malformed  answers 200 with a body that does not parse: the bytes of "body_base64", the
                 UTF-8 of "body", or the simulator's default (BaseHandler.malformed_body)
    """

    def __init__(self, kinds, match=None, check_kind=None):
        self.kinds = tuple(kinds)
        self.match = dict(match or {})
        self.check_kind = check_kind

    def validate(self, rule):
        """A normalised copy of one rule (defaults filled in), or ValueError saying what is
        wrong with it.  Keys starting with "_" are internal: the control API does not show them."""
        if not isinstance(rule, dict):
            raise ValueError("each fault rule must be a JSON object")
        kind = rule.get("kind")
        if kind not in self.kinds:
            raise ValueError("kind must be one of: " + ", ".join(self.kinds))
        r = dict(rule)
        for name, field in self.match.items():
            if field.default is not None:
                r.setdefault(name, field.default)
        for key, default in (("times", 1), ("skip", 0)):
            r.setdefault(key, default)
            if not isinstance(r[key], int) or isinstance(r[key], bool):
                raise ValueError(key + " must be an integer")
        if r["times"] == 0 or r["times"] < -1:
            raise ValueError("times must be positive, or -1 for a rule that never runs out")
        for name, field in self.match.items():
            if r.get(name) is not None:
                field.check(name, r[name])
        if r.get("method") is not None and not isinstance(r["method"], str):
            raise ValueError("method must be a string")
        if kind == "status":
            st = r.get("status")
            if not isinstance(st, int) or not 400 <= st <= 599:
                raise ValueError("a status fault needs \"status\": an integer 400..599")
        elif kind == "slow":
            d = r.get("delay_ms")
            if not isinstance(d, (int, float)) or not 0 <= d <= 600000:
                raise ValueError("a slow fault needs \"delay_ms\": 0..600000")
        elif kind == "malformed":
            if "body" in r and not isinstance(r["body"], str):
                raise ValueError("body must be a string")
            if "body_base64" in r:
                try:
                    r["_raw_body"] = base64.b64decode(r["body_base64"], validate=True)
                except (TypeError, binascii.Error):
                    raise ValueError("body_base64 must be base64 (the exact bytes to answer with)")
        if self.check_kind is not None:
            self.check_kind(r)
        r["_seen"] = 0
        return r

    def matches(self, rule, info):
        """Does this rule (spent or not) apply to a request described by info?"""
        for name, field in self.match.items():
            v = rule.get(name)
            if v is not None and not field.matches(v, info.get(field.against or name)):
                return False
        m = rule.get("method")
        return not m or m.upper() == info.get("method")


def malformed_body(fault, default):
    """The body a malformed fault answers with: body_base64's bytes, body's UTF-8, or default."""
    if "_raw_body" in fault:
        return fault["_raw_body"]
    if "body" in fault:
        return fault["body"].encode("utf-8")
    return default


# --------------------------------------------------------------------------------------------
# State shared by all connection threads
# --------------------------------------------------------------------------------------------

class SimState:
    """Configuration, request log, counters and fault rules of one simulator.

    A subclass sets:
      stats_template  its counters, in the order /_sim/stats shows them; it must hold
                      "requests_total" (0), "requests_by_status" ({}) and "faults_applied" ({}).
                      in_flight, max_in_flight, connections_total and tls_handshake_failures
                      are added after them.
      config_keys     the settings POST /_sim/config accepts ("latency_ms" is the framework's:
                      the delay added to every API response)
      fault_rules     a FaultRules
    and may override check_config(data) (raise ValueError for a bad value), reset_state(init)
    (rebuild its data from the initial state, under the lock) and count_request(entry) (its
    own counters for one logged request, under the lock).

    Everything is guarded by self.lock (re-entrant).  The subclass's __init__ sets what
    reset_state needs, then calls SimState.__init__, which resets.
    """

    stats_template = {"requests_total": 0, "requests_by_status": {}, "faults_applied": {}}
    config_keys = frozenset({"latency_ms"})
    fault_rules = FaultRules(GENERIC_FAULTS)

    def __init__(self, initial, base_config, log_path):
        self.lock = threading.RLock()
        self.initial = copy.deepcopy(initial)
        self.base_config = dict(base_config)
        self.log_file = open(log_path, "a", encoding="utf-8") if log_path else None
        self.stats = {}
        self.reset()

    # -- lifecycle ---------------------------------------------------------------------------

    def reset(self):
        """Back to the initial state: configuration, the simulator's data, faults, log, counters."""
        with self.lock:
            init = copy.deepcopy(self.initial)
            self.config = dict(self.base_config)
            self.config.update(init.get("config") or {})
            self.reset_state(init)
            self.faults = [self.fault_rules.validate(f) for f in init.get("faults") or []]
            self.clear_log()
            self.clear_stats()

    def reset_state(self, init):
        """Hook: rebuild the simulator's data from init (a copy of the initial state)."""

    def clear_log(self):
        with self.lock:
            self.log = []
            if self.log_file:
                self.log_file.seek(0)
                self.log_file.truncate()
                self.log_file.flush()

    def clear_stats(self):
        """Zeroes the counters; requests still being handled stay counted in in_flight."""
        with self.lock:
            in_flight = self.stats.get("in_flight", 0)
            self.stats = copy.deepcopy(self.stats_template)
            self.stats.update(in_flight=in_flight, max_in_flight=in_flight, connections_total=0,
                              tls_handshake_failures=0)

    # -- configuration -------------------------------------------------------------------------

    def set_config(self, data):
        """Applies POST /_sim/config; returns the whole configuration.  Raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError("send the settings as a JSON object")
        allowed = self.config_keys
        unknown = set(data) - allowed
        if unknown:
            raise ValueError("unknown settings: %s (known: %s)" % (", ".join(sorted(unknown)), ", ".join(sorted(allowed))))
        self.check_config(data)
        with self.lock:
            self.config.update(data)
            return dict(self.config)

    def check_config(self, data):
        """Hook: raise ValueError for a bad value in data (whose keys are all known)."""
        if "latency_ms" in data and not (is_number(data["latency_ms"]) and data["latency_ms"] >= 0):
            raise ValueError("latency_ms must be a non-negative number")

    # -- faults ------------------------------------------------------------------------------

    def set_faults(self, data):
        """Applies POST /_sim/faults: a rule, a list of rules, or {"faults": [...], "append":
        bool}.  Returns how many rules were given.  Raises ValueError (and then changes nothing)."""
        if isinstance(data, dict) and "faults" in data:
            rules = data["faults"]
        else:
            rules = data if isinstance(data, list) else [data]
        if not isinstance(rules, list):
            raise ValueError("send a list of fault rules")
        parsed = [self.fault_rules.validate(r) for r in rules]
        with self.lock:
            if isinstance(data, dict) and data.get("append"):
                self.faults.extend(parsed)
            else:
                self.faults = parsed
        return len(parsed)

    def faults_view(self):
        with self.lock:
            return [{k: v for k, v in f.items() if not k.startswith("_")} for f in self.faults]

    def take_fault(self, info):
        """The first unspent rule that matches the request described by info (a copy), after
        counting it; None if no rule applies.  Only one rule applies per request."""
        with self.lock:
            for r in self.faults:
                if r["times"] == 0 or not self.fault_rules.matches(r, info):
                    continue
                r["_seen"] += 1
                if r["_seen"] <= r["skip"]:
                    continue
                if r["times"] > 0:
                    r["times"] -= 1
                k = r["kind"]
                self.stats["faults_applied"][k] = self.stats["faults_applied"].get(k, 0) + 1
                return dict(r)
        return None

    # -- log and counters ----------------------------------------------------------------------

    def enter(self):
        with self.lock:
            self.stats["in_flight"] += 1
            self.stats["max_in_flight"] = max(self.stats["max_in_flight"], self.stats["in_flight"])

    def leave(self):
        with self.lock:
            self.stats["in_flight"] -= 1

    def count(self, key):
        with self.lock:
            self.stats[key] += 1

    def record(self, entry, text=None):
        """Counts one API request and logs it: entry goes into the in-memory log and, as one
        line of JSON (text, if the caller has it already), into the --log file."""
        with self.lock:
            s = self.stats
            s["requests_total"] += 1
            key = str(entry["status"]) if entry.get("status") is not None else "none"
            s["requests_by_status"][key] = s["requests_by_status"].get(key, 0) + 1
            self.count_request(entry)
            self.log.append(entry)
            if self.log_file:
                self.log_file.write((text if text is not None else json.dumps(entry, separators=(",", ":"))) + "\n")
                self.log_file.flush()

    def count_request(self, entry):
        """Hook: the simulator's own counters for one logged request (called under the lock)."""


# --------------------------------------------------------------------------------------------
# HTTP handling
# --------------------------------------------------------------------------------------------

class Call:
    """One API request on its way through BaseHandler.serve_api.  The framework sets method,
    path and query (the request target split at "?"), entry (the log entry begin_call made),
    body (bytes) and fault (the rule that applies, or None); a simulator hangs anything else it
    needs between its hooks on it."""

    def __init__(self, method, path, query):
        self.method = method
        self.path = path
        self.query = query
        self.entry = None
        self.body = None
        self.fault = None


class BaseHandler(http.server.BaseHTTPRequestHandler):
    """One connection (HTTP/1.1 keep-alive) of a simulator.  Class attributes to set:

      sim_name         prefixes every line the simulator writes on stderr
      description, state_help    its --help text, and what --state-file holds
      server_header    the Server header sent with every response (None: none)
      date_header      whether send_response adds a Date header
      tcp_nodelay      no Nagle delay on the last segment of a response (with the client's
                       delayed ACK it costs about 40 ms), as the providers' front ends do
      max_api_body, max_control_body    the largest request bodies read (larger: 413)
      control_content_type, control_ensure_ascii    how control API answers are written

    The API request's life cycle is serve_api's (read its docstring for the hooks).  Requests
    under /_sim/ go to serve_control: the simulator's control_route first, then the shared
    endpoints.
    """

    protocol_version = "HTTP/1.1"
    sim_name = "sim"
    description = "HTTPS simulator of a cloud API."
    state_help = "JSON: the initial state (config, faults)"
    server_header = None
    date_header = True
    tcp_nodelay = True
    max_api_body = MAX_API_BODY
    max_control_body = MAX_CONTROL_BODY
    control_content_type = "application/json"
    control_ensure_ascii = False

    def setup(self):
        self.timeout = self.server.idle_timeout   # an idle keep-alive connection is closed then
        if self.tcp_nodelay:
            try:
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        super().setup()
        self.server.sim.count("connections_total")

    def log_message(self, fmt, *args):  # the request log is ours; stderr stays quiet
        if self.server.verbose:
            sys.stderr.write("%s: %s\n" % (self.sim_name, fmt % args))

    def send_response(self, code, message=None):
        self.log_request(code)
        self.send_response_only(code, message)
        if self.server_header:
            self.send_header("Server", self.server_header)
        if self.date_header:
            self.send_header("Date", self.date_time_string())

    def send_error(self, code, message=None, explain=None):
        # Errors found by http.server itself (bad request line, header too long...): answered
        # in the provider's error shape (protocol_error), and the connection is dropped since
        # its state is unknown.
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            # http.server takes an unparsable request line for HTTP/0.9 and would send a bare
            # body; nothing speaks 0.9 to an API, so answer with a real status line.
            self.request_version = "HTTP/1.1"
        try:
            content_type, body = self.protocol_error(code, message)
            self.send_response(code, message)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = \
        lambda self: self._dispatch()

    # -- hooks in the provider's error shape ---------------------------------------------------

    def protocol_error(self, code, message):
        """(content type, body) of the answer to a request http.server could not parse."""
        return "application/json", json_bytes({"error": message or "Bad request."})

    def send_request_error(self, status, code, message):
        """Answers a body refused before it is read: 411 ("length_required": chunked) or 413
        ("request_too_large")."""
        self.send_body(status, json_bytes({"error": message, "code": code}), [("Content-Type", "application/json")])

    def internal_error(self):
        """Answers 500 after a bug in the simulator (the connection is closed after it)."""
        self.send_body(500, json_bytes({"error": "internal error"}), [("Content-Type", "application/json")])

    # -- plumbing ----------------------------------------------------------------------------

    def split_target(self):
        """(path, query) of the request target."""
        path, _, query = self.path.partition("?")
        return path, query

    def _dispatch(self):
        self.target_path = self.path
        try:
            self.target_path, self.target_query = self.split_target()
            if self.target_path == "/_sim" or self.target_path.startswith("/_sim/"):
                self.serve_control()
            else:
                self.serve_api()
        except Abort:
            self.close_connection = True
        except (ConnectionError, ssl.SSLError, socket.timeout, BrokenPipeError):
            self.close_connection = True
        except Exception as e:  # a bug must cost one request, never the server
            self.close_connection = True
            sys.stderr.write("%s: internal error on %s %s: %r\n" % (self.sim_name, self.command, self.target_path, e))
            try:
                self.internal_error()
            except Exception:
                pass

    def read_body(self, limit):
        """The request body, or None after answering 411 (chunked) or 413 (over limit).  The
        connection is then closed: the unread body would desynchronise it."""
        if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
            self.close_connection = True
            self.send_request_error(411, "length_required", "Send the body with a Content-Length.")
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > limit:
            self.close_connection = True
            self.send_request_error(413, "request_too_large", "The request body is larger than %d bytes." % limit)
            return None
        return self.rfile.read(length) if length else b""

    def send_body(self, status, body, headers, truncate=False):
        """Writes a whole response: the status line (send_response), headers in the order
        given, Content-Length, "Connection: close" if the connection is to be closed, and body
        (none for HEAD).  With truncate, only the first half of the body.  Returns the number
        of body bytes written."""
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            self.wfile.flush()
            return 0
        out = body[: len(body) // 2] if truncate else body
        self.wfile.write(out)
        self.wfile.flush()
        return len(out)

    def drop_connection(self, hard):
        """Closes the TCP connection under the client without a TLS close_notify, and raises
        Abort.  hard=True sends a RST (SO_LINGER 0) instead of a FIN."""
        self.close_connection = True
        sock = self.connection
        try:
            self.wfile.flush()
        except OSError:
            pass
        try:
            if hard:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            os.close(sock.detach())  # detach: no close_notify is sent, the fd just goes
        except OSError:
            pass
        raise Abort()

    # -- the API -----------------------------------------------------------------------------

    def serve_api(self):
        """One API request, start to end:

          1. begin_call(call) returns the log entry (it must have "status", "bytes" and "fault"
             keys; the framework fills them in, and "duration_ms" at the end);
          2. the body is read (max_api_body; too large: 413, body_refused(call), logged);
          3. inspect(call) returns what fault rules match on ({"method":..., "path":..., ...});
             the first rule that applies becomes call.fault, then fault_taken(call) runs;
          4. the configured latency_ms, plus a slow fault's delay_ms, is waited;
          5. a reset fault drops the connection here (logged with status null);
          6. respond(call) returns (status, body bytes, headers): the provider's answer,
             including any status fault and the simulator's own faults, in its shapes;
          7. a malformed fault on a 200 replaces the body (malformed_body(body) by default);
          8. the answer is sent (a truncate fault: half the body, then the connection drops);
          9. end_call(call) logs the entry (default: sim.record(entry)).
        The request counts in in_flight from before step 1 until the end."""
        sim = self.server.sim
        started = time.monotonic()
        sim.enter()
        call = Call(self.command, self.target_path, self.target_query)
        try:
            entry = call.entry = self.begin_call(call)
            call.body = self.read_body(self.max_api_body)
            if call.body is None:
                entry["status"] = 413
                self.body_refused(call)
                return
            fault = call.fault = sim.take_fault(self.inspect(call))
            kind = fault["kind"] if fault else None
            if fault:
                entry["fault"] = kind
                self.fault_taken(call)
            with sim.lock:
                latency = float(sim.config.get("latency_ms") or 0)
            if kind == "slow":
                latency += fault["delay_ms"]
            if latency:
                time.sleep(latency / 1000.0)
            if kind == "reset":
                self.drop_connection(hard=True)
            status, body, headers = self.respond(call)
            if kind == "malformed" and status == 200:
                given = malformed_body(fault, None)
                body = given if given is not None else self.malformed_body(call, body)
            entry["status"] = status
            entry["bytes"] = self.send_body(status, body, headers, truncate=kind == "truncate")
            if kind == "truncate":
                self.drop_connection(hard=False)
        finally:
            sim.leave()
            if call.entry is not None:
                call.entry["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
                self.end_call(call)

    def begin_call(self, call):
        """Hook: the log entry of this request (a dict; never put a secret in it)."""
        return {"time": log_time(), "method": call.method, "path": call.path, "status": None,
                "bytes": 0, "fault": None, "client_port": self.client_address[1]}

    def body_refused(self, call):
        """Hook: the body was too large (413 already answered and set in the entry)."""

    def inspect(self, call):
        """Hook: the request's values fault rules match on, by field name."""
        return {"method": call.method, "path": call.path}

    def fault_taken(self, call):
        """Hook: call.fault applies to this request (before the latency is waited)."""

    def respond(self, call):
        """Hook: (status, body bytes, [(header, value)]) of the answer."""
        raise NotImplementedError

    def malformed_body(self, call, body):
        """Hook: the body a malformed fault sends in place of the real 200 body when the rule
        gives none: by default the first half of the real one, then a gateway's error page."""
        return body[: len(body) // 2] + b"<html><body>502 Bad Gateway</body></html>"

    def end_call(self, call):
        """Hook: logs the finished request."""
        self.server.sim.record(call.entry)

    # -- the control API ---------------------------------------------------------------------

    def serve_control(self):
        sim = self.server.sim
        body = self.read_body(self.max_control_body)
        if body is None:
            return
        data = None
        if body.strip():
            try:
                data = json.loads(body)
            except ValueError as e:
                return self.reply(400, {"error": "body is not valid JSON: %s" % e})
        path = self.target_path.rstrip("/")
        m = self.command
        seg = path.split("/")[2:]  # after "", "_sim"
        try:
            result = self.control_route(sim, m, seg, data)
            if result is None:
                result = self._control_common(sim, m, seg, data)
        except ValueError as e:
            return self.reply(400, {"error": str(e)})
        if result is None:
            return self.reply(404, {"error": "no such control endpoint: %s %s" % (m, path)})
        self.reply(*result)

    def reply(self, status, obj):
        """Answers a control request with obj as JSON."""
        self.send_body(status, json_bytes(obj, ensure_ascii=self.control_ensure_ascii),
                       [("Content-Type", self.control_content_type)])

    def control_route(self, sim, m, seg, data):
        """Hook: the simulator's own control endpoints.  m is the method, seg the path's
        segments after /_sim/ (["droplets", "42"]), data the decoded JSON body (None if
        empty).  Returns (status, JSON-able object), or None for "not mine"; a ValueError is
        answered 400 with its message."""
        return None

    def _control_common(self, sim, m, seg, data):
        if m == "GET" and seg in (["health"], []):
            return 200, {"ok": True, "port": self.server.server_address[1]}
        if m == "POST" and seg == ["reset"]:
            sim.reset()
            return 200, {"ok": True}
        if seg == ["config"]:
            if m == "GET":
                with sim.lock:
                    return 200, dict(sim.config)
            if m in ("POST", "PATCH"):
                return 200, sim.set_config(data)
        if seg == ["faults"]:
            if m == "GET":
                return 200, {"faults": sim.faults_view()}
            if m == "POST":
                return 200, {"ok": True, "count": sim.set_faults(data)}
            if m == "DELETE":
                with sim.lock:
                    sim.faults = []
                return 200, {"ok": True}
        if seg == ["log"]:
            if m == "GET":
                with sim.lock:
                    return 200, list(sim.log)
            if m == "DELETE":
                sim.clear_log()
                return 200, {"ok": True}
        if seg == ["stats"]:
            if m == "GET":
                with sim.lock:
                    return 200, copy.deepcopy(sim.stats)
            if m == "DELETE":
                sim.clear_stats()
                return 200, {"ok": True}
        return None


# --------------------------------------------------------------------------------------------
# Server and command line
# --------------------------------------------------------------------------------------------

class SimServer(http.server.ThreadingHTTPServer):
    """A threading HTTPS server for one SimState and one BaseHandler subclass."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, sim, ssl_ctx, handler, idle_timeout=30.0, verbose=False):
        self.sim = sim
        self.ssl_ctx = ssl_ctx
        self.idle_timeout = idle_timeout
        self.verbose = verbose
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a client that
        # connects and stalls (or speaks plain HTTP) never holds up accept().
        request.settimeout(HANDSHAKE_TIMEOUT)
        try:
            tls = self.ssl_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            self.sim.count("tls_handshake_failures")
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, OSError)):
            return  # clients hang up; that is their right
        sys.stderr.write("%s: error serving %s: %r\n" % (self.RequestHandlerClass.sim_name, client_address, exc))


def server_context(cert, key):
    """The TLS context of a simulator: TLS 1.2 or later, with this certificate and key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def write_port_file(path, port):
    # Written whole and renamed, so a test polling for the file never reads half a number.
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, path)


def serve(argv, handler, state_class, add_arguments=None, configure=None):
    """A simulator's main(): parses the command line, starts the server and serves until
    SIGTERM, SIGINT, --max-lifetime or (with --exit-with-parent) the parent's exit.  Returns
    the exit status (1 if it cannot start).

      handler         the BaseHandler subclass (its description is the --help text, its
                      state_help the --state-file's help, its sim_name starts error lines)
      state_class     the SimState subclass, made as state_class(state file's object, base
                      configuration, --log path)
      add_arguments   add_arguments(parser): the simulator's own options (listed after
                      --latency-ms)
      configure       configure(args, state) -> {setting: value}: the simulator's settings from
                      its options, after latency_ms (--latency-ms).  It may also change the
                      state file's object; a ValueError means it cannot start.
    """
    name = handler.sim_name
    ap = argparse.ArgumentParser(description=handler.description)
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=0, help="port; 0 picks a free one (default 0)")
    ap.add_argument("--cert", required=True, help="server certificate (PEM), e.g. from make_test_ca.sh")
    ap.add_argument("--key", required=True, help="server private key (PEM)")
    ap.add_argument("--state-file", help=handler.state_help)
    ap.add_argument("--log", help="request log file, one JSON object per line (truncated at start and on reset)")
    ap.add_argument("--port-file", help="file to write the listening port to, once listening")
    ap.add_argument("--latency-ms", type=float, default=0, help="delay added to every API response")
    if add_arguments is not None:
        add_arguments(ap)
    ap.add_argument("--idle-timeout", type=float, default=30.0, help="seconds an idle keep-alive connection is kept")
    ap.add_argument("--max-lifetime", type=float, default=0, help="exit after this many seconds (0: never)")
    ap.add_argument("--exit-with-parent", action="store_true", help="exit when the parent process goes away")
    ap.add_argument("--verbose", action="store_true", help="one stderr line per request")
    args = ap.parse_args(argv)

    try:
        state = load_state(args.state_file)
        ctx = server_context(args.cert, args.key)
        base_config = {"latency_ms": args.latency_ms}
        base_config.update(configure(args, state) if configure is not None else {})
        sim = state_class(state, base_config, args.log)
        server = SimServer((args.host, args.port), sim, ctx, handler, args.idle_timeout, args.verbose)
    except (OSError, ValueError, ssl.SSLError) as e:
        sys.stderr.write("%s: cannot start: %s\n" % (name, e))
        return 1

    # The stops are in place before the port is announced: whoever reads the port file or the
    # listening line may send SIGTERM at once, and gets a clean stop.
    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.max_lifetime > 0:
        timer = threading.Timer(args.max_lifetime, stop)
        timer.daemon = True
        timer.start()
    if args.exit_with_parent:
        parent = os.getppid()

        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            stop()
        threading.Thread(target=watch, daemon=True).start()

    port = server.server_address[1]
    if args.port_file:
        write_port_file(args.port_file, port)
    try:
        print(json.dumps({"event": "listening", "host": args.host, "port": port, "pid": os.getpid()}), flush=True)
    except OSError:
        pass  # nobody reads stdout; the port file and /_sim/health still work

    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0
