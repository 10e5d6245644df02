#!/usr/bin/env bash
# Benchmark: DigitalOcean discovery over the simulator.  Prints the initial
# run's time, the unchanged re-run's time, the rows the re-run wrote, the
# run worker's peak memory, and the initial run's time over a baseline
# measured in the same run: curl fetching the same pages from the same
# simulator, plus COPY of the same rows into a plain table.
# Targets: ratio <= 1.3; worker CPU <= 45 us a droplet initial, <= 25 us on
# the re-run; 0 rows written by the re-run; peak < 100 MB.
# The first connector lists droplets only, so that those figures keep their
# meaning.  Then every type: the same droplets plus volumes, load
# balancers, Kubernetes clusters, managed databases and reserved IPs, with
# the same figures against a curl+COPY baseline of all their pages and
# rows (target ratio <= 1.5).
#   usage: digitalocean.sh [smoke|full]   (full: 100,000 droplets, 500 pages;
#   then 20,000 volumes, 2,000 load balancers, 500 clusters, 500 databases
#   and 5,000 reserved IPs besides)
set -euo pipefail
scale=${1:-full}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

case "$scale" in
	full)  droplets=100000 volumes=20000 lbs=2000 clusters=500 databases=500 rips=5000 ;;
	smoke) droplets=2000 volumes=400 lbs=40 clusters=10 databases=10 rips=100 ;;
	*) echo "usage: $0 [smoke|full]" >&2; exit 2 ;;
esac
pages=$(( (droplets + 199) / 200 ))
bench_cluster_start digitalocean
bench_start_digitalocean "{\"count\": $droplets, \"regions\": [\"ams3\", \"nyc1\", \"fra1\", \"sfo3\"], \"seed\": 1}"
token=$DO_TOKEN
url=$DO_URL
pg_ctl -D "$BENCH_DIR/data" reload >/dev/null
sleep 0.5

now() { date +%s.%N; }

# --- baseline: curl fetches the pages (one connection, like the run), then COPY
t0=$(now)
curl -sS --cacert "$BENCH_DIR/ca/ca.crt" -H "Authorization: Bearer $token" \
	"$url/v2/droplets?page=[1-$pages]&per_page=200" -o "$BENCH_DIR/page_#1.json"
t1=$(now)
/usr/bin/python3 - "$BENCH_DIR" "$pages" <<'PY'
import csv, json, sys
d, pages = sys.argv[1], int(sys.argv[2])
with open(f"{d}/rows.csv", "w", newline="") as out:
    w = csv.writer(out)
    for p in range(1, pages + 1):
        for x in json.load(open(f"{d}/page_{p}.json"))["droplets"]:
            ip = next((n["ip_address"] for n in x["networks"]["v4"] if n["type"] == "public"), None)
            attrs = {"region": x["region"]["slug"], "status": x["status"], "size": x["size_slug"],
                     "vcpus": x["vcpus"], "memory": x["memory"], "disk": x["disk"], "tags": x["tags"]}
            w.writerow([f"do:droplet:{x['id']}", x["name"], x["name"], ip,
                        f"{x['image']['distribution']} {x['image']['name']}", json.dumps(attrs)])
PY
psql -qX -v ON_ERROR_STOP=1 -c "CREATE TABLE baseline (external_id text, name text, hostname text, ip_address inet, os_info text, attributes jsonb)"
t2=$(now)
psql -qX -v ON_ERROR_STOP=1 -c "\\copy baseline FROM '$BENCH_DIR/rows.csv' WITH (FORMAT csv)"
t3=$(now)

# --- cloudconn
psql -qX -v ON_ERROR_STOP=1 -v token="$token" <<'SQL'
CREATE EXTENSION cloudconn CASCADE;
INSERT INTO cloudconn.entity (id, name) VALUES (1, 'bench');
SELECT cloudconn.connector_create(1, 'bench', 'digitalocean', 'manual', '{"resource_types": ["digitalocean_droplet"]}', :'token') \gset
SQL
run_once() {
	psql -qAtX -v ON_ERROR_STOP=1 -c "SELECT cloudconn.connector_run(1)" >/dev/null
}
written() {
	psql -qAtX -c "SELECT pg_stat_force_next_flush()" -c "SELECT pg_stat_clear_snapshot()" \
		-c "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relid = 'cloudconn.configuration_item'::regclass" | tail -1
}
t4=$(now)
run_once
t5=$(now)
sleep 1   # the worker's table statistics are flushed when it exits
w0=$(written)
t6=$(now)
run_once
t7=$(now)
sleep 1
w1=$(written)

psql -qAtX -c "SELECT status, discovered, created, unchanged FROM cloudconn.runs ORDER BY id" > "$BENCH_DIR/runs.txt"
f1=$(bench_run_figures 1)
f2=$(bench_run_figures 2)

python3 - "$droplets" "$pages" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" "$t7" "$w0" "$w1" "$f1" "$f2" "$BENCH_DIR/runs.txt" <<'PY'
import sys
a = sys.argv
droplets, pages = int(a[1]), int(a[2])
t0, t1, t2, t3, t4, t5, t6, t7 = map(float, a[3:11])
w0, w1 = int(a[11]), int(a[12])
f1, f2 = a[13].split(), a[14].split()
runs = open(a[15]).read().split()
fetch, copy = t1 - t0, t3 - t2
initial, rerun = t5 - t4, t7 - t6
baseline = fetch + copy
def us(f): return float(f[0]) * 1e6 / droplets
print(f"DigitalOcean benchmark: {droplets} droplets, {pages} pages of 200")
print(f"  runs (status|discovered|created|unchanged): {', '.join(runs)}")
print(f"  baseline: curl fetch {fetch:.2f} s + COPY {copy:.2f} s = {baseline:.2f} s")
print(f"  initial run:        {initial:.2f} s   ratio to baseline {initial / baseline:.2f}   (target <= 1.3)")
print(f"                      worker CPU {f1[0]} s = {us(f1):.1f} us per droplet (target <= 45); listing {f1[1]} s, merge {f1[2]} s")
print(f"  unchanged re-run:   {rerun:.2f} s   rows written by it: {w1 - w0}   (target 0)")
print(f"                      worker CPU {f2[0]} s = {us(f2):.1f} us per droplet (target <= 25); listing {f2[1]} s, merge {f2[2]} s")
print(f"  worker peak memory: initial run {f1[3]} kB private resident ({f1[4]} kB in memory contexts), "
      f"re-run {f2[3]} kB ({f2[4]} kB)   (target < 100 MB)")
PY

# --- every type: the droplets above plus the other five types
regions='["ams3", "nyc1", "fra1", "sfo3"]'
for spec in "volumes $volumes" "load_balancers $lbs" "kubernetes_clusters $clusters" "databases $databases" "reserved_ips $rips"; do
	set -- $spec
	bench_sim_control POST "/_sim/$1/generate" "{\"count\": $2, \"regions\": $regions, \"seed\": 1}" >/dev/null
done
pages_of() { echo $(( ($1 + 199) / 200 )); }
vp=$(pages_of "$volumes") lp=$(pages_of "$lbs") kp=$(pages_of "$clusters") rp=$(pages_of "$rips")
all_pages=$(( pages + vp + lp + kp + 1 + rp ))
all_rows=$(( droplets + volumes + lbs + clusters + databases + rips ))
rm -f "$BENCH_DIR"/page_*.json
get() { curl -sS --cacert "$BENCH_DIR/ca/ca.crt" -H "Authorization: Bearer $token" "$@"; }
a0=$(now)
get "$url/v2/droplets?page=[1-$pages]&per_page=200" -o "$BENCH_DIR/droplets_#1.json" \
	"$url/v2/volumes?page=[1-$vp]&per_page=200" -o "$BENCH_DIR/volumes_#1.json" \
	"$url/v2/load_balancers?page=[1-$lp]&per_page=200" -o "$BENCH_DIR/load_balancers_#1.json" \
	"$url/v2/kubernetes/clusters?page=[1-$kp]&per_page=200" -o "$BENCH_DIR/kubernetes_clusters_#1.json" \
	"$url/v2/databases" -o "$BENCH_DIR/databases_1.json" \
	"$url/v2/reserved_ips?page=[1-$rp]&per_page=200" -o "$BENCH_DIR/reserved_ips_#1.json"
a1=$(now)
/usr/bin/python3 - "$BENCH_DIR" "$pages" "$vp" "$lp" "$kp" "$rp" <<'PY'
import csv, json, sys
d = sys.argv[1]
pages = dict(zip(["droplets", "volumes", "load_balancers", "kubernetes_clusters", "reserved_ips"], map(int, sys.argv[2:7])))
pages["databases"] = 1
def slug(r): return r["slug"] if isinstance(r, dict) else r
def droplet(x):
    ip = next((n["ip_address"] for n in x["networks"]["v4"] if n["type"] == "public"), None)
    return (f"do:droplet:{x['id']}", x["name"], x["name"], ip, f"{x['image']['distribution']} {x['image']['name']}",
            {"region": x["region"]["slug"], "status": x["status"], "size": x["size_slug"], "vcpus": x["vcpus"],
             "memory": x["memory"], "disk": x["disk"], "tags": x["tags"]})
def volume(x):
    return (f"do:volume:{x['id']}", x["name"], None, None, None,
            {"region": slug(x["region"]), "size_gb": x["size_gigabytes"], "filesystem_type": x["filesystem_type"],
             "filesystem_label": x["filesystem_label"], "droplet_ids": x["droplet_ids"], "tags": x["tags"]})
def lb(x):
    rules = [{k: r[k] for k in ("entry_protocol", "entry_port", "target_protocol", "target_port")} for r in x["forwarding_rules"]]
    return (f"do:load_balancer:{x['id']}", x["name"], None, x["ip"] or None, None,
            {"region": slug(x["region"]), "status": x["status"], "size": x["size"], "size_unit": x["size_unit"],
             "forwarding_rules": rules, "droplet_ids": x["droplet_ids"], "tag": x["tag"], "vpc_uuid": x["vpc_uuid"]})
def cluster(x):
    pools = [{k: p[k] for k in ("name", "size", "count", "auto_scale", "min_nodes", "max_nodes")} for p in x["node_pools"]]
    return (f"do:kubernetes_cluster:{x['id']}", x["name"], x["endpoint"][8:], x["ipv4"] or None, "Kubernetes " + x["version"],
            {"region": x["region"], "status": x["status"]["state"], "node_pools": pools, "vpc_uuid": x["vpc_uuid"], "tags": x["tags"]})
def database(x):
    return (f"do:database:{x['id']}", x["name"], x["connection"]["host"], None, f"{x['engine']} {x['version']}",
            {"region": x["region"], "status": x["status"], "size": x["size"], "num_nodes": x["num_nodes"], "tags": x["tags"]})
def rip(x):
    return (f"do:reserved_ip:{x['ip']}", x["ip"], None, x["ip"], None,
            {"region": slug(x["region"]), "droplet_id": (x["droplet"] or {}).get("id"), "project_id": x["project_id"], "locked": x["locked"]})
maps = {"droplets": droplet, "volumes": volume, "load_balancers": lb, "kubernetes_clusters": cluster, "databases": database, "reserved_ips": rip}
with open(f"{d}/all_rows.csv", "w", newline="") as out:
    w = csv.writer(out)
    for kind, n in pages.items():
        for p in range(1, n + 1):
            for x in json.load(open(f"{d}/{kind}_{p}.json"))[kind]:
                row = maps[kind](x)
                w.writerow(list(row[:5]) + [json.dumps(row[5])])
PY
psql -qX -v ON_ERROR_STOP=1 -c "CREATE TABLE baseline_all (external_id text, name text, hostname text, ip_address inet, os_info text, attributes jsonb)"
a2=$(now)
psql -qX -v ON_ERROR_STOP=1 -c "\\copy baseline_all FROM '$BENCH_DIR/all_rows.csv' WITH (FORMAT csv)"
a3=$(now)
psql -qAtX -v ON_ERROR_STOP=1 -v token="$token" >/dev/null <<'SQL'
SELECT cloudconn.connector_create(1, 'every type', 'digitalocean', 'manual', '{}', :'token');
SQL
run_all() {
	psql -qAtX -v ON_ERROR_STOP=1 -c "SELECT cloudconn.connector_run(2)" >/dev/null
}
a4=$(now)
run_all
a5=$(now)
sleep 1
x0=$(written)
a6=$(now)
run_all
a7=$(now)
sleep 1
x1=$(written)
psql -qAtX -c "SELECT status, discovered, created, unchanged FROM cloudconn.runs WHERE connector_id = 2 ORDER BY id" > "$BENCH_DIR/runs_all.txt"
psql -qAtX -c "SELECT string_agg(key || '=' || (value->>'created'), ', ' ORDER BY key) FROM cloudconn.runs, jsonb_each(counts_by_type) WHERE connector_id = 2 AND id = (SELECT min(id) FROM cloudconn.runs WHERE connector_id = 2)" > "$BENCH_DIR/per_type.txt"
g1=$(bench_run_figures 3)
g2=$(bench_run_figures 4)

python3 - "$all_rows" "$all_pages" "$a0" "$a1" "$a2" "$a3" "$a4" "$a5" "$a6" "$a7" "$x0" "$x1" "$g1" "$g2" "$BENCH_DIR/runs_all.txt" "$BENCH_DIR/per_type.txt" <<'PY'
import sys
a = sys.argv
rows, pages = int(a[1]), int(a[2])
t0, t1, t2, t3, t4, t5, t6, t7 = map(float, a[3:11])
w0, w1 = int(a[11]), int(a[12])
f1, f2 = a[13].split(), a[14].split()
runs = open(a[15]).read().split()
per_type = open(a[16]).read().strip()
fetch, copy = t1 - t0, t3 - t2
initial, rerun = t5 - t4, t7 - t6
baseline = fetch + copy
def us(f): return float(f[0]) * 1e6 / rows
print(f"DigitalOcean benchmark, every type: {rows} resources, {pages} pages ({per_type})")
print(f"  runs (status|discovered|created|unchanged): {', '.join(runs)}")
print(f"  baseline: curl fetch {fetch:.2f} s + COPY {copy:.2f} s = {baseline:.2f} s")
print(f"  initial run:        {initial:.2f} s   ratio to baseline {initial / baseline:.2f}   (target <= 1.5)")
print(f"                      worker CPU {f1[0]} s = {us(f1):.1f} us per resource; listing {f1[1]} s, merge {f1[2]} s")
print(f"  unchanged re-run:   {rerun:.2f} s   rows written by it: {w1 - w0}   (target 0)")
print(f"                      worker CPU {f2[0]} s = {us(f2):.1f} us per resource; listing {f2[1]} s, merge {f2[2]} s")
print(f"  worker peak memory: initial run {f1[3]} kB private resident ({f1[4]} kB in memory contexts), "
      f"re-run {f2[3]} kB ({f2[4]} kB)   (target < 100 MB)")
PY
