"""DigitalOcean's resource types besides droplets, for digitalocean_sim.py: volumes, load
balancers, Kubernetes clusters, managed database clusters and reserved IPs.

Each kind has its list endpoint, the custom scope it needs, its id member, whether it is
paginated, and a builder that makes one resource in the shape of its model in the official
OpenAPI description (vendor/digitalocean-openapi/SOURCE names the files; the simulator's
self-test validates every list response against them).  Generators are deterministic: the same
spec always yields the same resources.

Python 3 standard library only.
"""

import datetime
import ipaddress
import random
import uuid

import simlib

# Region slugs and sizes are shared with droplets (digitalocean_sim passes them in).

# (slug, GB) of database node sizes, and the engines with a current version each.
DB_SIZES = ["db-s-1vcpu-1gb", "db-s-1vcpu-2gb", "db-s-2vcpu-4gb", "db-s-4vcpu-8gb"]
DB_ENGINES = [("pg", "16", "16.4"), ("mysql", "8", "8.0.39"), ("valkey", "8", "8.0.1"),
              ("mongodb", "7", "7.0.14")]
DB_PORTS = {"pg": 25060, "mysql": 25060, "valkey": 25061, "mongodb": 27017}
DB_SCHEMES = {"pg": "postgresql", "mysql": "mysql", "valkey": "rediss", "mongodb": "mongodb+srv"}

K8S_VERSIONS = ["1.31.1-do.3", "1.30.5-do.3", "1.29.9-do.3"]
K8S_NODE_SIZES = ["s-1vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb"]
LB_SIZES = ["lb-small", "lb-medium", "lb-large"]
LB_RULES = [
    {"entry_protocol": "http", "entry_port": 80, "target_protocol": "http", "target_port": 80,
     "certificate_id": "", "tls_passthrough": False},
    {"entry_protocol": "https", "entry_port": 443, "target_protocol": "http", "target_port": 8080,
     "certificate_id": "892071a0-bb95-49bc-8021-3afd67a210bf", "tls_passthrough": False},
    {"entry_protocol": "tcp", "entry_port": 5432, "target_protocol": "tcp", "target_port": 5432,
     "certificate_id": "", "tls_passthrough": False},
]

# Public addresses: each kind draws from its own part of simlib's pools, away from droplets'
# (which count from 0), so that addresses never collide within a kind.
IP_BASES = {"reserved_ips": 105000, "load_balancers": 115000, "kubernetes_clusters": 120000}

PROJECT_ID = "4de7ac8b-495b-4884-9a69-1050c6793cd6"


def _uuid(kind, seed, n):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sim/%s/%r/%d" % (kind, seed, n)))


def _created(n, rng):
    t = (datetime.datetime(2024, 2, 1, tzinfo=datetime.timezone.utc)
         + datetime.timedelta(minutes=41 * n + rng.randrange(30)))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _vpc(region):
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sim-vpc/" + region))


def _public_ip(kind, n):
    return simlib.public_ipv4(IP_BASES[kind] + n, wrap=True)


def build_volume(ctx, n, rng, region, name, spec):
    """resources/volumes/models/volume_full.yml (volume_base_read + region and filesystem)."""
    droplets = ctx["droplet_ids"](region)
    attached = [rng.choice(droplets)] if droplets and rng.random() < 0.6 else []
    fs = rng.choice([("ext4", "data"), ("xfs", "logs"), ("", "")])
    return {
        "id": _uuid("volume", spec.get("seed", 0), n),
        "droplet_ids": attached,
        "name": name,
        "description": "Block storage for %s" % name,
        "size_gigabytes": rng.choice([10, 50, 100, 250, 500]),
        "created_at": _created(n, rng),
        "tags": spec.get("tags", ["env:prod"]),
        "region": ctx["region_object"](region),
        "filesystem_type": fs[0],
        "filesystem_label": fs[1],
    }


def build_load_balancer(ctx, n, rng, region, name, spec):
    """resources/load_balancers/models/load_balancer.yml (load_balancer_base + region, droplet_ids,
    tag).  WIRE: the API sends both droplet_ids and tag; one of them is empty."""
    droplets = ctx["droplet_ids"](region)
    by_tag = rng.random() < 0.3 or not droplets
    size = rng.choice(LB_SIZES)
    return {
        "id": _uuid("load_balancer", spec.get("seed", 0), n),
        "name": name,
        "project_id": PROJECT_ID,
        "ip": _public_ip("load_balancers", ctx["index"]),
        "ipv6": "",
        "size_unit": LB_SIZES.index(size) + 1,
        "size": size,
        "algorithm": "round_robin",
        "status": "active",
        "created_at": _created(n, rng),
        "forwarding_rules": [dict(r) for r in LB_RULES[:1 + rng.randrange(len(LB_RULES))]],
        "health_check": {"protocol": "http", "port": 80, "path": "/", "check_interval_seconds": 10,
                         "response_timeout_seconds": 5, "unhealthy_threshold": 3, "healthy_threshold": 5},
        "sticky_sessions": {"type": "none"},
        "redirect_http_to_https": False,
        "enable_proxy_protocol": False,
        "enable_backend_keepalive": False,
        "http_idle_timeout_seconds": 60,
        "vpc_uuid": _vpc(region),
        "disable_lets_encrypt_dns_records": False,
        "firewall": {"deny": [], "allow": []},
        "network": "EXTERNAL",
        "network_stack": "IPV4",
        "type": "REGIONAL",
        "tls_cipher_policy": "DEFAULT",
        "region": ctx["region_object"](region),
        "droplet_ids": [] if by_tag else sorted(rng.sample(droplets, min(len(droplets), 1 + rng.randrange(3)))),
        "tag": "role:web" if by_tag else "",
    }


def build_cluster(ctx, n, rng, region, name, spec):
    """resources/kubernetes/models/cluster_read.yml, with node_pool.yml and node.yml."""
    cid = _uuid("kubernetes_cluster", spec.get("seed", 0), n)
    pools = []
    for p in range(1 + rng.randrange(2)):
        count = 1 + rng.randrange(3)
        auto = rng.random() < 0.5
        pid = _uuid("node_pool", cid, p)
        pools.append({
            "size": rng.choice(K8S_NODE_SIZES),
            "id": pid,
            "name": "%s-pool-%d" % (name, p + 1),
            "count": count,
            "tags": ["k8s", "k8s:" + cid, "k8s:worker"],
            "labels": None,
            "taints": [],
            "auto_scale": auto,
            "min_nodes": 1 if auto else 0,
            "max_nodes": count + 2 if auto else 0,
            "nodes": [{"id": _uuid("node", pid, i), "name": "%s-pool-%d-%d" % (name, p + 1, i),
                       "status": {"state": "running"}, "droplet_id": str(400000000 + n * 10 + i),
                       "created_at": _created(n, rng), "updated_at": _created(n, rng)}
                      for i in range(count)],
        })
    created = _created(n, rng)
    return {
        "id": cid,
        "name": name,
        "region": region,
        "version": rng.choice(K8S_VERSIONS),
        "cluster_subnet": "10.244.0.0/16",
        "service_subnet": "10.245.0.0/16",
        "vpc_uuid": _vpc(region),
        "ipv4": _public_ip("kubernetes_clusters", ctx["index"]),
        "endpoint": "https://%s.k8s.ondigitalocean.com" % cid,
        "tags": ["k8s", "k8s:" + cid] + list(spec.get("tags", [])),
        "node_pools": pools,
        "maintenance_policy": {"start_time": "00:00", "duration": "4h0m0s", "day": "any"},
        "auto_upgrade": False,
        "status": {"state": "running", "message": "Cluster is running"},
        "created_at": created,
        "updated_at": created,
        "surge_upgrade": True,
        "ha": False,
        "registry_enabled": False,
        "control_plane_firewall": {"enabled": False, "allowed_addresses": []},
    }


def _connection(engine, host, user, password, port, database):
    return {
        "uri": "%s://%s:%s@%s:%d/%s?sslmode=require" % (DB_SCHEMES[engine], user, password, host, port, database),
        "database": database,
        "host": host,
        "port": port,
        "user": user,
        "password": password,
        "ssl": True,
    }


def build_database(ctx, n, rng, region, name, spec):
    """resources/databases/models/database_cluster_read.yml.  It carries credentials:
    connection, private_connection and standby_connection (password and uri), users[].password.
    spec["password"] sets every one of them (tests put a marker there)."""
    engine, version, semantic = DB_ENGINES[n % len(DB_ENGINES)] if "engine" not in spec else \
        next(e for e in DB_ENGINES if e[0] == spec["engine"])
    password = spec.get("password") or "AVNS_" + "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(19))
    port = DB_PORTS[engine]
    host = "%s-do-user-1000001-0.db.ondigitalocean.com" % name
    nodes = 1 + rng.randrange(3)
    db = {
        "id": _uuid("database", spec.get("seed", 0), n),
        "name": name,
        "engine": engine,
        "version": version,
        "semantic_version": semantic,
        "num_nodes": nodes,
        "size": rng.choice(DB_SIZES),
        "region": region,
        "status": "online",
        "created_at": _created(n, rng),
        "private_network_uuid": _vpc(region),
        "tags": list(spec.get("tags", ["env:prod"])),
        "db_names": ["defaultdb"],
        "connection": _connection(engine, host, "doadmin", password, port, "defaultdb"),
        "private_connection": _connection(engine, "private-" + host, "doadmin", password, port, "defaultdb"),
        "users": [{"name": "doadmin", "role": "primary", "password": password},
                  {"name": "app", "role": "normal", "password": password}],
        "maintenance_window": {"day": "tuesday", "hour": "01:00:00", "pending": False, "description": []},
        "project_id": PROJECT_ID,
        "rules": [],
        "storage_size_mib": 61440,
    }
    if nodes > 1:
        db["standby_connection"] = _connection(engine, "replica-" + host, "doadmin", password, port, "defaultdb")
        db["standby_private_connection"] = _connection(engine, "private-replica-" + host, "doadmin", password,
                                                       port, "defaultdb")
    return db


def build_reserved_ip(ctx, n, rng, region, name, spec):
    """resources/reserved_ips/models/reserved_ip.yml: the droplet it is assigned to is the whole
    droplet object (as the API sends it), or null."""
    droplet = ctx["droplet"](region) if rng.random() < 0.5 else None
    return {
        "ip": _public_ip("reserved_ips", ctx["index"]),
        "region": ctx["region_object"](region),
        "droplet": droplet,
        "locked": False,
        "project_id": PROJECT_ID,
    }


# kind: (list route, the custom scope it needs, the id member, paginated, builder, name part)
KINDS = {
    "volumes": ("/v2/volumes", "block_storage:read", "id", True, build_volume, "vol"),
    "load_balancers": ("/v2/load_balancers", "load_balancer:read", "id", True, build_load_balancer, "lb"),
    "kubernetes_clusters": ("/v2/kubernetes/clusters", "kubernetes:read", "id", True, build_cluster, "k8s"),
    "databases": ("/v2/databases", "database:read", "id", False, build_database, "db"),
    "reserved_ips": ("/v2/reserved_ips", "reserved_ip:read", "ip", True, build_reserved_ip, "rip"),
}
ROUTE_KINDS = {v[0]: k for k, v in KINDS.items()}

MAX_COUNT = {"volumes": 100000, "load_balancers": 20000, "kubernetes_clusters": 5000,
             "databases": 5000, "reserved_ips": 10000}


def generate(kind, spec, ctx, first_index=0):
    """count resources of kind spread round-robin over spec["regions"].  ctx holds
    region_object(slug), droplet_ids(slug), droplet(slug) and is given "index" (the address
    index) per resource.  Returns (resources, next_index).  Raises ValueError on a bad spec."""
    count = spec.get("count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_COUNT[kind]:
        raise ValueError("count must be an integer between 0 and %d" % MAX_COUNT[kind])
    regions = spec.get("regions") or ["nyc3"]
    if not isinstance(regions, list) or not all(r in ctx["regions"] for r in regions):
        raise ValueError("regions must be a list of region slugs from: " + ", ".join(sorted(ctx["regions"])))
    tags = spec.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise ValueError("tags must be a list of strings")
    if "engine" in spec and spec["engine"] not in [e[0] for e in DB_ENGINES]:
        raise ValueError("engine must be one of: " + ", ".join(e[0] for e in DB_ENGINES))
    if "password" in spec and not isinstance(spec["password"], str):
        raise ValueError("password must be a string")
    build = KINDS[kind][4]
    prefix = spec.get("name_prefix", "sim-" + KINDS[kind][5])
    seed = spec.get("seed", 0)
    rng = random.Random(repr((kind, seed, first_index)))
    out = []
    for i in range(count):
        region = regions[i % len(regions)]
        n = first_index + i
        c = dict(ctx, index=n)
        out.append(build(c, n, rng, region, "%s-%s-%04d" % (prefix, region, n + 1), spec))
    return out, first_index + count


def valid_ip(s):
    try:
        ipaddress.IPv4Address(s)
        return True
    except (ValueError, TypeError):
        return False
