#!/usr/bin/env bash
# Benchmark: DigitalOcean discovery over the simulator.  Prints the initial
# run's time, the unchanged re-run's time, the rows the re-run wrote, the
# run worker's peak memory, and the initial run's time over a baseline
# measured in the same run: curl fetching the same pages from the same
# simulator, plus COPY of the same rows into a plain table.
# Targets: ratio <= 2.0; 0 rows written by the re-run; peak < 100 MB.
#   usage: digitalocean.sh [smoke|full]   (full: 100,000 droplets, 500 pages)
set -euo pipefail
scale=${1:-full}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

case "$scale" in
	full)  droplets=100000 ;;
	smoke) droplets=2000 ;;
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
SELECT cloudconn.connector_create(1, 'bench', 'digitalocean', 'manual', '{}', :'token') \gset
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
