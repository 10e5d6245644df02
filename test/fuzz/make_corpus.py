#!/usr/bin/python3
"""Writes the seed corpus of every fuzz target (test/fuzz/corpus/<target>/) from the simulators.

Run:  /usr/bin/python3 test/fuzz/make_corpus.py [CORPUS_DIR]

DigitalOcean, Azure and the AWS container/IMDS endpoints are started (test/sim/*_sim.py) and
their answers fetched over the wire; the AWS pages (EC2, VPC, RDS, S3, Lambda, STS,
DescribeRegions, GetBucketLocation, errors) are rendered by aws_sim.py's and aws_services.py's
own page functions (the ones their HTTP handlers send), without the SigV4 round trip.  Files
named regress-* are inputs that once found a problem: they are kept, never rewritten.
The output is deterministic except for the ids, tokens and times the simulators mint."""

import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "..", "sim")
sys.path.insert(0, SIM)
import aws_services  # noqa: E402
import aws_sim  # noqa: E402

ACCOUNT = "444455556666"


def write(corpus, target, name, body):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(body, str):
        body = body.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(body)


def start(script, tmp, ca, *args, port_file_opt="--port-file"):
    port_file = os.path.join(tmp, os.path.basename(script) + ".port")
    extra = []
    proc = subprocess.Popen([sys.executable, os.path.join(SIM, script), "--cert", os.path.join(ca, "server.crt"),
                             "--key", os.path.join(ca, "server.key"), "--port", "0", port_file_opt, port_file,
                             "--exit-with-parent", "--max-lifetime", "300"] + list(args) + extra,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.exists(port_file):
            with open(port_file) as f:
                text = f.read().strip()
            if text:
                return proc, int(text)
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("%s did not start" % script)


def fetch(url, ctx=None, method="GET", data=None, headers=None):
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# ------------------------------------------------------------------------------------------------
# AWS: the simulators' own renderers
# ------------------------------------------------------------------------------------------------

def aws(corpus):
    region = "eu-west-1"
    rid = "5f1a8e7c-2b3d-4e5f-8a9b-0c1d2e3f4a5b"
    for n, spec in enumerate([{"count": 3, "seed": 1}, {"count": 7, "seed": 2, "states": ["running", "stopped"]},
                              {"count": 1, "seed": 3, "public_ip_every": 1}, {"count": 0}]):
        insts = aws_sim.generate_instances(ACCOUNT, region, spec)
        reservations = []
        for inst in insts:
            rid_ = inst.get("_reservationId")
            if reservations and reservations[-1]["reservationId"] == rid_:
                reservations[-1]["instancesSet"].append(aws_sim.rendered_instance(inst))
            else:
                reservations.append({"reservationId": rid_, "ownerId": inst.get("_ownerId", ACCOUNT),
                                     "groupSet": [], "instancesSet": [aws_sim.rendered_instance(inst)]})
        fields = [("reservationSet", reservations)]
        if n == 1:
            fields.append(("nextToken", "eyJvIjozLCJwIjoyfQ.c2lt"))
        write(corpus, "aws_ec2_instances", "describe-instances-%d.xml" % n,
              aws_sim.ec2_response_xml("DescribeInstances", rid, fields))
    for n, spec in enumerate([{"count": 3, "seed": 1}, {"count": 5, "seed": 2, "ipv6_every": 1}]):
        vpcs = aws_services.generate_vpcs(ACCOUNT, region, spec)
        fields = [("vpcSet", vpcs)] + ([("nextToken", "dnBjLXRva2Vu")] if n else [])
        write(corpus, "aws_vpcs", "describe-vpcs-%d.xml" % n, aws_sim.ec2_response_xml("DescribeVpcs", rid, fields))
    for n, spec in enumerate([{"count": 2, "seed": 1}, {"count": 4, "seed": 2, "statuses": ["available", "stopped"]}]):
        dbs = aws_services.generate_db_instances(ACCOUNT, region, spec)
        write(corpus, "aws_rds_instances", "describe-db-instances-%d.xml" % n,
              aws_services.rds_response_xml(rid, dbs, "bWFya2Vy" if n else None))
    buckets = aws_services.generate_buckets(ACCOUNT, {"count": 4, "seed": 1,
                                                      "regions": ["us-east-1", "eu-west-1"], "eu_every": 2})
    owner = "7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b"
    write(corpus, "aws_s3_buckets", "list-buckets-regions.xml",
          aws_services.list_buckets_xml(owner, buckets, True, "Y29udGludWU=", ""))
    write(corpus, "aws_s3_buckets", "list-buckets-plain.xml",
          aws_services.list_buckets_xml(owner, buckets, False, None, None))
    for n, c in enumerate(["", "EU", "eu-west-1", "ap-southeast-2"]):
        write(corpus, "aws_s3_location", "location-%d.xml" % n, aws_services.location_xml(c))
    for n, spec in enumerate([{"count": 3, "seed": 1}, {"count": 2, "seed": 2, "vpc_every": 1,
                                                        "environment": {"SECRET": "do-not-keep"}}]):
        fns = aws_services.generate_functions(ACCOUNT, region, spec)
        write(corpus, "aws_lambda_functions", "list-functions-%d.json" % n,
              aws_services.list_functions_json(fns, "bmV4dA==" if n else None))
    result = {"AssumedRoleUser": {"Arn": "arn:aws:sts::%s:assumed-role/AnzenCustomerDiscoveryRole/cloudconn-1" % ACCOUNT,
                                  "AssumedRoleId": "AROASIMULATORROLE0001:cloudconn-1"},
              "Credentials": {"AccessKeyId": "ASIASIMULATORSESSION", "SecretAccessKey": "c2ltdWxhdGVkLXNlY3JldC1rZXktMDAwMDAwMDAw",
                              "SessionToken": "FwoGZXIvYXdzEBYaDSIMULATEDSESSIONTOKEN" * 4,
                              "Expiration": "2026-12-03T06:45:00Z"}}
    write(corpus, "aws_sts_assume_role", "assume-role.xml", aws_sim.sts_response_xml("AssumeRole", rid, result))
    write(corpus, "aws_sts_assume_role", "sts-error.xml",
          aws_sim.sts_error_xml(400, "Throttling", "Rate exceeded", rid))
    rows = [{"regionName": r, "regionEndpoint": "ec2.%s.amazonaws.com" % r, "optInStatus": "opt-in-not-required"}
            for r in ("us-east-1", "eu-west-1", "ap-southeast-2")]
    write(corpus, "aws_regions", "describe-regions.xml",
          aws_sim.ec2_response_xml("DescribeRegions", rid, [("regionInfo", rows)]))
    errors = {
        "ec2-auth.xml": aws_sim.ec2_error_xml("AuthFailure", aws_sim.MSG_EC2_AUTH_FAILURE, rid),
        "ec2-throttle.xml": aws_sim.ec2_error_xml("RequestLimitExceeded", aws_sim.MSG_EC2_THROTTLE, rid),
        "sts-denied.xml": aws_sim.sts_error_xml(403, "AccessDenied", "User is not authorized to perform: sts:AssumeRole", rid),
        "sts-expired.xml": aws_sim.sts_error_xml(403, "ExpiredToken", aws_sim.MSG_STS_EXPIRED_TOKEN, rid),
        "rds-throttle.xml": aws_services.rds_error_xml(400, "Throttling", "Rate exceeded", rid),
        "s3-denied.xml": aws_services.s3_error_xml("AccessDenied", "Access Denied", "REQ0123456789", "aG9zdA=="),
        "s3-slowdown.xml": aws_services.s3_error_xml("SlowDown", "Please reduce your request rate.", "REQ1", "aG9zdA=="),
        "lambda-throttle.json": b"TooManyRequestsException\n" + aws_services.lambda_error_json(
            "TooManyRequestsException", "Rate exceeded", {"Reason": "CallerRateLimitExceeded", "Type": "User"}),
        "lambda-denied.json": b"AccessDeniedException:http://internal.amazon.com/coral/\n" + aws_services.lambda_error_json(
            "AccessDeniedException", "User is not authorized to perform: lambda:ListFunctions"),
    }
    for name, body in errors.items():
        write(corpus, "aws_errors", name, body)
    # the XML guard sees every XML page
    for target in ("aws_ec2_instances", "aws_s3_buckets", "aws_sts_assume_role", "aws_errors"):
        d = os.path.join(corpus, target)
        for name in sorted(os.listdir(d)):
            if name.endswith(".xml") and not name.startswith("regress-"):
                shutil.copy(os.path.join(d, name), os.path.join(corpus, "xml_guard", "%s-%s" % (target, name))
                            if os.path.isdir(os.path.join(corpus, "xml_guard")) else
                            _mkdir_then(os.path.join(corpus, "xml_guard"), "%s-%s" % (target, name)))


def _mkdir_then(d, name):
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, name)


# ------------------------------------------------------------------------------------------------
# DigitalOcean, Azure, the caller endpoints: over the wire
# ------------------------------------------------------------------------------------------------

def digitalocean(corpus, tmp, ca, ctx):
    proc, port = start("digitalocean_sim.py", tmp, ca)
    try:
        base = "https://127.0.0.1:%d" % port
        token = "dop_v1_" + "5317" * 16
        auth = {"Authorization": "Bearer " + token}
        fetch(base + "/_sim/droplets/generate", ctx, "POST",
              json.dumps({"count": 5, "regions": ["nyc3", "ams3"], "seed": 7}).encode(),
              {"Content-Type": "application/json"})
        for n, q in enumerate(["?per_page=2", "?per_page=2&page=2", "?per_page=200"]):
            status, body = fetch(base + "/v2/droplets" + q, ctx, headers=auth)
            write(corpus, "do_droplets", "droplets-%d.json" % n, body)
        for kind, path in [("volumes", "/v2/volumes"), ("load_balancers", "/v2/load_balancers"),
                           ("kubernetes_clusters", "/v2/kubernetes/clusters"), ("databases", "/v2/databases"),
                           ("reserved_ips", "/v2/reserved_ips")]:
            fetch(base + "/_sim/%s/generate" % kind, ctx, "POST",
                  json.dumps({"count": 3, "regions": ["nyc3", "ams3"], "seed": 7}).encode(),
                  {"Content-Type": "application/json"})
            status, body = fetch(base + path + "?per_page=2", ctx, headers=auth)
            write(corpus, "do_other_types", kind + ".json", body)
        status, body = fetch(base + "/v2/account", ctx, headers=auth)
        write(corpus, "do_account", "account.json", body)
        status, body = fetch(base + "/v2/droplets", ctx, headers={"Authorization": "Bearer dop_v1_wrong"})
        write(corpus, "do_errors", "unauthorized.json", body)
        status, body = fetch(base + "/v2/nothing", ctx, headers=auth)
        write(corpus, "do_errors", "not-found.json", body)
        status, body = fetch(base + "/v2/droplets", ctx, headers={"Authorization": "Bearer dop_v1_" + "0bad" * 16})
        write(corpus, "do_errors", "forbidden.json", body)
    finally:
        proc.terminate()
        proc.wait()
    for name in os.listdir(os.path.join(corpus, "do_droplets")):
        shutil.copy(os.path.join(corpus, "do_droplets", name), _mkdir_then(os.path.join(corpus, "json_items"), "do-" + name))


def azure(corpus, tmp, ca, ctx):
    tenant = "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f"
    client = "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"
    secret = "SimQ8~cloudconn.ClientSecret-0123456789_abcdefgh"
    sub = "0b1f6471-1bf0-4dda-aec3-111122223333"
    state = os.path.join(tmp, "azure.json")
    with open(state, "w") as f:
        json.dump({"subscriptions": [{"subscription_id": sub}]}, f)
    proc, port = start("azure_sim.py", tmp, ca, "--state-file", state)
    try:
        base = "https://127.0.0.1:%d" % port
        fetch(base + "/_sim/subscriptions/%s/generate" % sub, ctx, "POST",
              json.dumps({"count": 4, "seed": 3, "power_states": ["running", "deallocated"]}).encode(),
              {"Content-Type": "application/json"})
        form = urllib.parse.urlencode({"client_id": client, "client_secret": secret, "grant_type": "client_credentials",
                                       "scope": "https://management.azure.com/.default"}).encode()
        ctype = {"Content-Type": "application/x-www-form-urlencoded"}
        status, body = fetch(base + "/%s/oauth2/v2.0/token" % tenant, ctx, "POST", form, ctype)
        write(corpus, "azure_token", "token.json", body)
        token = json.loads(body)["access_token"]
        bad = urllib.parse.urlencode({"client_id": client, "client_secret": "wrong", "grant_type": "client_credentials",
                                      "scope": "https://management.azure.com/.default"}).encode()
        status, body = fetch(base + "/%s/oauth2/v2.0/token" % tenant, ctx, "POST", bad, ctype)
        write(corpus, "azure_errors", "login-bad-secret.json", body)
        auth = {"Authorization": "Bearer " + token}
        status, body = fetch(base + "/subscriptions?api-version=2022-12-01", ctx, headers=auth)
        write(corpus, "azure_subscriptions", "subscriptions.json", body)
        lists = {
            "vms": "/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01",
            "status": "/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01&statusOnly=true",
            "nics": "/providers/Microsoft.Network/networkInterfaces?api-version=2024-05-01",
            "public-ips": "/providers/Microsoft.Network/publicIPAddresses?api-version=2024-05-01",
        }
        for name, path in lists.items():
            status, body = fetch(base + "/subscriptions/%s%s" % (sub, path), ctx, headers=auth)
            write(corpus, "azure_lists", name + ".json", body)
        # all three lookups and the VMs in one page: the lists' items joined
        merged = {"value": []}
        for name in ("status", "nics", "public-ips", "vms"):
            with open(os.path.join(corpus, "azure_lists", name + ".json"), "rb") as f:
                merged["value"] += json.loads(f.read())["value"]
        write(corpus, "azure_lists", "all.json", json.dumps(merged))
        status, body = fetch(base + "/subscriptions/%s%s" % (sub, lists["vms"]), ctx,
                             headers={"Authorization": "Bearer not-a-token"})
        write(corpus, "azure_errors", "arm-unauthorized.json", body)
        status, body = fetch(base + "/subscriptions/%s%s" % ("0b1f6471-1bf0-4dda-aec3-999999999999", lists["vms"]),
                             ctx, headers=auth)
        write(corpus, "azure_errors", "arm-not-found.json", body)
    finally:
        proc.terminate()
        proc.wait()


def caller(corpus, tmp, ca):
    proc, port = start("aws_caller_sim.py", tmp, ca, "--http-port", "0", "--http-port-file",
                       os.path.join(tmp, "caller.http"))
    try:
        with open(os.path.join(tmp, "caller.http")) as f:
            http = int(f.read().strip())
        base = "http://127.0.0.1:%d" % http
        status, body = fetch(base + "/v2/credentials/6b0c1a2e-3f4d-4e5a-9b6c-7d8e9f0a1b2c")
        write(corpus, "aws_metadata_credentials", "container.json", body)
        status, tok = fetch(base + "/latest/api/token", method="PUT",
                            headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"})
        hdr = {"X-aws-ec2-metadata-token": tok.decode()}
        status, role = fetch(base + "/latest/meta-data/iam/security-credentials/", headers=hdr)
        status, body = fetch(base + "/latest/meta-data/iam/security-credentials/" + role.decode().strip(), headers=hdr)
        write(corpus, "aws_metadata_credentials", "imds.json", body)
        status, body = fetch(base + "/latest/meta-data/iam/security-credentials/")
        write(corpus, "aws_metadata_credentials", "imds-error.html", body)
    finally:
        proc.terminate()
        proc.wait()


def roles_anywhere(corpus):
    # the CreateSession answer's shape, as aws_caller_sim.py serialises it
    import simlib
    answer = {"credentialSet": [{
        "assumedRoleUser": {"arn": "arn:aws:sts::111122223333:assumed-role/cloudconn-caller/cloudconn",
                            "assumedRoleId": "AROA0123456789ABCDEF0:cloudconn"},
        "credentials": {"accessKeyId": "ASIASIMULATORRA00001", "expiration": "2026-12-03T07:00:00Z",
                        "secretAccessKey": "c2ltdWxhdGVkLXJvbGVzLWFueXdoZXJlLXNlY3JldA",
                        "sessionToken": "IQoJb3JpZ2luX2VjEUIaQJyqod85ptsj2FAyTJ8cvPxHO3jAAryxPohvBj0w" * 8},
        "packedPolicySize": 0, "roleArn": "arn:aws:iam::111122223333:role/cloudconn-caller",
        "sourceIdentity": "CN=cloudconn"}],
        "subjectArn": "arn:aws:rolesanywhere:us-east-1:111122223333:subject/6f1d0c9e-0b1a-5f4e-8d7c-3b2a1f0e9d8c"}
    write(corpus, "aws_roles_anywhere", "create-session.json", simlib.json_bytes(answer))
    write(corpus, "aws_roles_anywhere", "denied.json",
          b"AccessDeniedException\n" + simlib.json_bytes({"message": "Untrusted Signing Certificate"}))


def static_seeds(corpus):
    write(corpus, "aws_credentials_file", "credentials",
          "[default]\naws_access_key_id = AKIASIMULATORCALLER2\n"
          "aws_secret_access_key = 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\n\n"
          "[prod]\r\naws_access_key_id=AKIAPRODEXAMPLE00001\r\naws_secret_access_key=c2VjcmV0\r\n"
          "aws_session_token = FwoGZXIvYXdzEBYaD\r\n# a comment\n; another\n")
    write(corpus, "http_headers", "do-200.txt",
          "HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\nratelimit-limit: 5000\r\n"
          "ratelimit-remaining: 4\r\nratelimit-reset: 1999999999\r\n\r\n")
    write(corpus, "http_headers", "do-429.txt",
          "HTTP/2 429\r\nretry-after: 3\r\nratelimit-remaining: 0\r\nratelimit-reset: 1764740000\r\n\r\n")
    write(corpus, "http_headers", "date.txt",
          "HTTP/1.1 503 Slow Down\r\nRetry-After: Wed, 03 Dec 2026 06:00:00 GMT\r\nx-amzn-ErrorType: SlowDown:http://x/\r\n"
          "x-ms-ratelimit-remaining-subscription-reads: 11999\r\n folded\r\n\r\n")
    write(corpus, "scalars", "values.txt",
          "2026-12-03T05:33:15Z\n2026-12-03T05:33:15.123456+00:00\n1e999\n-0.5\n12345678901234567890\n"
          "10.0.0.1\n2001:db8::1\n::ffff:1.2.3.4\nhttps://api.digitalocean.com/v2/droplets?page=2\n"
          "http://169.254.169.254/latest/api/token\nhttp://[fd00:ec2::254]/latest\nhttp://169.254.170.2/v2/credentials/x\n")


def main():
    corpus = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus")
    # regress-* inputs are kept; everything else is made anew
    if os.path.isdir(corpus):
        for target in os.listdir(corpus):
            d = os.path.join(corpus, target)
            for name in os.listdir(d):
                if not name.startswith("regress-"):
                    os.unlink(os.path.join(d, name))
    tmp = tempfile.mkdtemp(prefix="cloudconn-corpus-")
    try:
        ca = os.path.join(tmp, "ca")
        subprocess.run(["bash", os.path.join(SIM, "make_test_ca.sh"), ca], check=True, stdout=subprocess.DEVNULL)
        ctx = ssl.create_default_context(cafile=os.path.join(ca, "ca.crt"))
        aws(corpus)
        digitalocean(corpus, tmp, ca, ctx)
        azure(corpus, tmp, ca, ctx)
        caller(corpus, tmp, ca)
        roles_anywhere(corpus)
        static_seeds(corpus)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for target in sorted(os.listdir(corpus)):
        print("%-26s %d seeds" % (target, len(os.listdir(os.path.join(corpus, target)))))


if __name__ == "__main__":
    main()
