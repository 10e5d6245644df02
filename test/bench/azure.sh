#!/usr/bin/env bash
# Benchmark: Azure discovery over the simulator, with 50 ms of latency added
# to every request: 3 subscriptions of 20,000 virtual machines, each with its
# NICs (one in ten has two) and, for most, a public IP.  A run lists, per
# subscription, the VM statuses, the NICs and the public IPs, then the VMs
# (four list calls plus their pages), joining them in the worker.  Prints the
# initial run's time, the unchanged re-run's time and the rows it wrote, the
# worker's peak memory, its CPU time per VM, and the HTTP requests each run
# made, by list.  Targets: 0 rows written by the re-run; peak < 100 MB.
#   usage: azure.sh [smoke|full]   (full: 3 x 20,000 VMs; smoke: 3 x 600)
set -euo pipefail
scale=${1:-full}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

case "$scale" in
	full)  per_sub=20000 ;;
	smoke) per_sub=600 ;;
	*) echo "usage: $0 [smoke|full]" >&2; exit 2 ;;
esac
latency_ms=50
subs=(0a1b2c3d-1111-4aaa-8bbb-000000000001 0a1b2c3d-2222-4aaa-8bbb-000000000002 0a1b2c3d-3333-4aaa-8bbb-000000000003)

bench_cluster_start azure
bench_start_azure --latency-ms "$latency_ms"
pg_ctl -D "$BENCH_DIR/data" reload >/dev/null
sleep 0.5

seed=1
subs_json=
for s in "${subs[@]}"; do
	bench_sim_control POST /_sim/subscriptions "{\"subscription_id\": \"$s\", \"display_name\": \"bench $seed\"}" >/dev/null
	bench_sim_control POST "/_sim/subscriptions/$s/generate" \
		"{\"count\": $per_sub, \"seed\": $seed, \"group_prefix\": \"B$seed\", \"power_states\": [\"running\", \"running\", \"running\", \"deallocated\"], \"render\": true}" >/dev/null
	subs_json="$subs_json\"$s\","
	seed=$((seed + 1))
done
settings="{\"tenant_id\": \"$AZURE_TENANT\", \"client_id\": \"$AZURE_CLIENT\", \"subscription_ids\": [${subs_json%,}]}"

psql -qX -v ON_ERROR_STOP=1 -v settings="$settings" -v secret="$AZURE_SECRET" <<'SQL'
CREATE EXTENSION cloudconn CASCADE;
INSERT INTO cloudconn.entity (id, name) VALUES (1, 'bench');
SELECT cloudconn.connector_create(1, 'bench', 'azure', 'manual', :'settings', :'secret') \gset
SQL

now() { date +%s.%N; }
run_once() {
	psql -qAtX -v ON_ERROR_STOP=1 -c "SELECT cloudconn.connector_run(1)" >/dev/null
}
written() {
	psql -qAtX -c "SELECT pg_stat_force_next_flush()" -c "SELECT pg_stat_clear_snapshot()" \
		-c "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relid = 'cloudconn.configuration_item'::regclass" | tail -1
}
requests() {	# the simulator's requests so far, by list, as JSON
	bench_sim_control GET /_sim/stats "" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(json.dumps({"total": s["requests_total"], **s["requests_by_list"]}))'
}

q0=$(requests)
t0=$(now); run_once; t1=$(now)
q1=$(requests)
psql -qAtX -v ON_ERROR_STOP=1 -c "VACUUM (ANALYZE) cloudconn.configuration_item" -c "CHECKPOINT" >/dev/null
sleep 1   # the worker's table statistics are flushed when it exits
w0=$(written)
t2=$(now); run_once; t3=$(now)
q2=$(requests)
sleep 1
w1=$(written)

psql -qAtX -c "SELECT status, discovered, created, unchanged, pages_fetched FROM cloudconn.runs ORDER BY id" >"$BENCH_DIR/runs.txt"
f1=$(bench_run_figures 1)
f2=$(bench_run_figures 2)

python3 - "$per_sub" "${#subs[@]}" "$latency_ms" "$t0" "$t1" "$t2" "$t3" "$w0" "$w1" "$f1" "$f2" "$q0" "$q1" "$q2" "$BENCH_DIR/runs.txt" <<'PY'
import json, sys
a = sys.argv
per_sub, nsubs, latency = int(a[1]), int(a[2]), int(a[3])
t0, t1, t2, t3 = map(float, a[4:8])
w0, w1 = int(a[8]), int(a[9])
f1, f2 = a[10].split(), a[11].split()
q0, q1, q2 = (json.loads(x) for x in a[12:15])
runs = open(a[15]).read().split()
vms = per_sub * nsubs
def delta(x, y):
    return {k: y.get(k, 0) - x.get(k, 0) for k in y if y.get(k, 0) - x.get(k, 0)}
def fmt(d):
    lists = ("token", "subscriptions", "vm_status", "nics", "public_ips", "vms")
    return ", ".join("%s %d" % (k, d[k]) for k in lists if k in d) + " (total %d)" % d.get("total", 0)
print(f"Azure benchmark: {nsubs} subscriptions x {per_sub} VMs, {latency} ms latency per request")
print(f"  runs (status|discovered|created|unchanged|pages): {', '.join(runs)}")
print(f"  initial run:      {t1 - t0:.2f} s   worker CPU {f1[0]} s = {float(f1[0]) * 1e6 / vms:.1f} us per VM; "
      f"listing {f1[1]} s, merge {f1[2]} s")
print(f"  unchanged re-run: {t3 - t2:.2f} s   worker CPU {f2[0]} s = {float(f2[0]) * 1e6 / vms:.1f} us per VM; "
      f"listing {f2[1]} s, merge {f2[2]} s")
print(f"  rows written by the re-run: {w1 - w0}   (target 0)")
print(f"  worker peak memory: initial run {f1[3]} kB private resident ({f1[4]} kB in memory contexts), "
      f"re-run {f2[3]} kB ({f2[4]} kB)   (target < 100 MB)")
print(f"  HTTP requests, initial run: {fmt(delta(q0, q1))}")
print(f"  HTTP requests, re-run:      {fmt(delta(q1, q2))}")
print(f"  (4 list calls per subscription, plus their pages; never a call per VM)")
PY
