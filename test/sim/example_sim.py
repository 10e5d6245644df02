#!/usr/bin/python3
"""A complete simulator on simlib, as small as one can be: the example of README.md, and what
test_simlib.py drives to test simlib itself.  Not a provider's API.

It serves GET /v1/items (a JSON list, with a bearer token), has one setting of its own
("greeting"), one option (--items N), one control endpoint (POST /_sim/items) and one fault
kind of its own ("empty", matched on the path and the "page" query parameter), besides all
that simlib gives every simulator.
"""

import hmac
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import simlib  # noqa: E402

TOKEN = "example-token-0123456789"


class Sim(simlib.SimState):
    stats_template = {"requests_total": 0, "requests_by_status": {}, "faults_applied": {}, "unauthorized": 0}
    config_keys = frozenset({"latency_ms", "greeting"})
    fault_rules = simlib.FaultRules(simlib.GENERIC_FAULTS + ("empty",),
                                    match={"path_prefix": simlib.Prefix(default="/v1/"), "page": simlib.Positive()})

    def reset_state(self, init):
        self.items = init.get("items") or [{"id": i + 1} for i in range(self.base_config["items"])]

    def check_config(self, data):
        super().check_config(data)
        if "greeting" in data and not isinstance(data["greeting"], str):
            raise ValueError("greeting must be a string")

    def count_request(self, entry):
        if entry["status"] == 401:
            self.stats["unauthorized"] += 1


class Handler(simlib.BaseHandler):
    sim_name = "example_sim"
    description = "HTTPS simulator of a made-up API (the simlib example)."
    state_help = "JSON: items, config, faults"
    server_header = "example-sim/1.0"

    def begin_call(self, call):
        try:
            call.page = int(urllib.parse.parse_qs(call.query).get("page", ["1"])[0])
        except ValueError:
            call.page = 1
        entry = super().begin_call(call)  # time, method, path, status, bytes, fault, client_port
        presented = (self.headers.get("Authorization") or "").encode()
        entry["authorized"] = hmac.compare_digest(presented, b"Bearer " + TOKEN.encode())  # never log the token
        return entry

    def inspect(self, call):
        return {"method": call.method, "path": call.path, "page": call.page}

    def respond(self, call):
        sim = self.server.sim
        if call.fault and call.fault["kind"] == "status":
            return call.fault["status"], simlib.json_bytes({"error": "injected"}), [("Content-Type", "application/json")]
        if not call.entry["authorized"]:
            return 401, simlib.json_bytes({"error": "unauthorized"}), [("Content-Type", "application/json")]
        if call.path != "/v1/items" or call.method not in ("GET", "HEAD"):
            return 404, simlib.json_bytes({"error": "not found"}), [("Content-Type", "application/json")]
        with sim.lock:
            items = [] if call.fault and call.fault["kind"] == "empty" else sim.items
            body = {"greeting": sim.config.get("greeting", "hello"), "items": items}
        return 200, simlib.json_bytes(body), [("Content-Type", "application/json")]

    def control_route(self, sim, m, seg, data):
        if seg == ["items"] and m == "POST":
            if not isinstance(data, list):
                raise ValueError("send a JSON list of items")
            with sim.lock:
                sim.items = data
            return 200, {"ok": True, "count": len(data)}
        return None


def _add_arguments(ap):
    ap.add_argument("--items", type=int, default=3, help="how many items there are at first")


def main(argv=None):
    return simlib.serve(argv, Handler, Sim, add_arguments=_add_arguments,
                        configure=lambda args, state: {"items": args.items})


if __name__ == "__main__":
    sys.exit(main())
