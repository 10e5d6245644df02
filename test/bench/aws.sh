#!/usr/bin/env bash
# Benchmark: AWS discovery over the simulator, with 50 ms of latency added
# to every request.  After an initial run, the same unchanged account is
# listed twice more in the same cluster: once with regions fetched
# concurrently (cloudconn.aws_max_parallel_regions at its default) and once
# forced sequential (the setting at 1).  Prints both wall times and their
# ratio, the rows the unchanged re-runs wrote, and the workers' peak memory.
# Targets: ratio <= 0.35; 0 rows written by a re-run; peak < 100 MB.
# The worker's CPU time of each re-run is printed too: a run cannot take
# less wall time than that, so concurrent CPU / sequential wall is the
# lowest ratio the worker's CPU allows on the machine at hand.
# Then, as a supplementary figure (no target), the same pair of re-runs with
# 500 ms of latency, closer to what a page of 1,000 instances takes on AWS:
# at 50 ms the run is bound by the worker's CPU (reading about 8 MB of XML
# per page and merging), which concurrency cannot shorten.
# Then, per resource type (VPCs, RDS DB instances, S3 buckets, Lambda
# functions), a connector listing that type alone in an account of its
# own: its initial and unchanged re-run times, the rows the re-run wrote
# (target 0), the worker's peak memory (target < 100 MB) and its CPU time
# per resource; and the first connector again, with every type enabled
# over the whole account.
#   usage: aws.sh [smoke|full]   (full: 10 regions x (10,000 instances + 200 VPCs
#                                 + 1,000 DB instances + 2,000 functions) + 5,000 buckets)
set -euo pipefail
scale=${1:-full}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

case "$scale" in
	full)  per_region=10000; vpcs=200; dbs=1000; functions=2000; buckets=5000 ;;
	smoke) per_region=1100; vpcs=20; dbs=120; functions=60; buckets=1100 ;;
	*) echo "usage: $0 [smoke|full]" >&2; exit 2 ;;
esac
latency_ms=50
account=444455556666
regions=(us-east-1 us-east-2 us-west-1 us-west-2 eu-west-1 eu-west-2 eu-central-1 ap-northeast-1 ap-southeast-1 ap-southeast-2)
regions_json=$(printf '"%s",' "${regions[@]}")
regions_json="[${regions_json%,}]"

bench_cluster_start aws
bench_start_aws --latency-ms "$latency_ms"
pg_ctl -D "$BENCH_DIR/data" reload >/dev/null
sleep 0.5

psql -qX -v ON_ERROR_STOP=1 -v settings="{\"account_id\": \"$account\", \"regions\": $regions_json, \"resource_types\": [\"aws_ec2_instance\"]}" <<'SQL'
CREATE EXTENSION cloudconn CASCADE;
INSERT INTO cloudconn.entity (id, name) VALUES (1, 'bench');
SELECT cloudconn.connector_create(1, 'bench', 'aws', 'manual', :'settings') \gset
SQL
psql -qAtX -c "SELECT cloudconn.aws_cloudformation_template(1)" >"$BENCH_DIR/template.json"
bench_sim_control POST "/_sim/accounts/$account/apply-template" "@$BENCH_DIR/template.json" >/dev/null
seed=1
for r in "${regions[@]}"; do
	bench_sim_control POST "/_sim/accounts/$account/regions/$r/instances/generate" \
		"{\"count\": $per_region, \"seed\": $seed, \"states\": [\"running\", \"stopped\"]}" >/dev/null
	seed=$((seed + 1))
done

now() { date +%s.%N; }
run_once() {
	psql -qAtX -v ON_ERROR_STOP=1 -c "SELECT cloudconn.connector_run(1)" >/dev/null
}
written() {
	psql -qAtX -c "SELECT pg_stat_force_next_flush()" -c "SELECT pg_stat_clear_snapshot()" \
		-c "SELECT n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables WHERE relid = 'cloudconn.configuration_item'::regclass" | tail -1
}
set_parallel() {
	psql -qAtX -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET cloudconn.aws_max_parallel_regions = $1" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
}
parallel_default=$(psql -qAtX -c "SELECT boot_val FROM pg_settings WHERE name = 'cloudconn.aws_max_parallel_regions'")

# the simulator's CPU time so far (user + system, in seconds)
sim_pid=${BENCH_SIM_PIDS##* }
sim_cpu() { awk '{ printf "%.2f\n", ($14 + $15) / 100 }' "/proc/$sim_pid/stat"; }

t0=$(now); run_once; t1=$(now)
# both re-runs start from the same state: the initial run's rows vacuumed
# (hint bits set, visibility map built) and checkpointed, not left for
# whichever re-run comes first
psql -qAtX -v ON_ERROR_STOP=1 -c "VACUUM (ANALYZE) cloudconn.configuration_item" -c "CHECKPOINT" >/dev/null
sleep 1   # the worker's table statistics are flushed when it exits
w0=$(written)
s2=$(sim_cpu); t2=$(now); run_once; t3=$(now); s3=$(sim_cpu)
sleep 1
w1=$(written)
set_parallel 1
s4=$(sim_cpu); t4=$(now); run_once; t5=$(now); s5=$(sim_cpu)
sleep 1
w2=$(written)
echo "$s2 $s3 $s4 $s5" >"$BENCH_DIR/simcpu.txt"

# supplementary: the same pair at 500 ms per request
bench_sim_control POST /_sim/config '{"latency_ms": 500}' >/dev/null
psql -qAtX -v ON_ERROR_STOP=1 -c "ALTER SYSTEM RESET cloudconn.aws_max_parallel_regions" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
t6=$(now); run_once; t7=$(now)
set_parallel 1
t8=$(now); run_once; t9=$(now)

psql -qAtX -c "SELECT status, discovered, created, unchanged FROM cloudconn.runs ORDER BY id" >"$BENCH_DIR/runs.txt"
bench_run_figures 1 >"$BENCH_DIR/initial.txt"
for n in 1 2 3; do
	grep -A1 "cloudconn: run $n of connector" "$BENCH_DIR/server.log" |
		sed -n 's/.*Peak memory: \([0-9]*\) kB in memory contexts, \([0-9]*\) kB private resident.*/\2/p' | head -1
done | paste -sd' ' >"$BENCH_DIR/peaks.txt"
# the worker's CPU time (user + system) of the two re-runs, as each run logs it
for n in 2 3; do
	grep -A1 "cloudconn: run $n of connector" "$BENCH_DIR/server.log" |
		sed -n 's/.*CPU: user: \([0-9.]*\) s, system: \([0-9.]*\) s.*/\1 \2/p' | head -1 |
		awk '{ printf "%.2f\n", $1 + $2 }'
done | paste -sd' ' >"$BENCH_DIR/cpu.txt"
# and how long their listing and their merge took
for n in 2 3; do
	grep -A1 "cloudconn: run $n of connector" "$BENCH_DIR/server.log" |
		sed -n 's/.*Listing took \([0-9.]*\) s, the merge \([0-9.]*\) s.*/\1 \2/p' | head -1
done | paste -sd' ' >"$BENCH_DIR/phases.txt"

python3 - "$per_region" "${#regions[@]}" "$latency_ms" "$parallel_default" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" \
	"$w0" "$w1" "$w2" "$BENCH_DIR/runs.txt" "$BENCH_DIR/peaks.txt" "$t6" "$t7" "$t8" "$t9" "$BENCH_DIR/cpu.txt" "$BENCH_DIR/phases.txt" "$BENCH_DIR/simcpu.txt" "$BENCH_DIR/initial.txt" <<'PY'
import sys
a = sys.argv
per_region, nregions, latency, parallel = int(a[1]), int(a[2]), int(a[3]), a[4]
t0, t1, t2, t3, t4, t5 = map(float, a[5:11])
w0, w1, w2 = map(int, a[11:14])
runs = open(a[14]).read().split()
peaks = open(a[15]).read().split()
t6, t7, t8, t9 = map(float, a[16:20])
cpu_concurrent, cpu_sequential = map(float, open(a[20]).read().split())
list_concurrent, merge_concurrent, list_sequential, merge_sequential = map(float, open(a[21]).read().split())
s2, s3, s4, s5 = map(float, open(a[22]).read().split())
initial_cpu = float(open(a[23]).read().split()[0])
initial, concurrent, sequential = t1 - t0, t3 - t2, t5 - t4
slow_concurrent, slow_sequential = t7 - t6, t9 - t8
pages = nregions * (per_region // 1000 + 1)
print(f"AWS benchmark: {nregions} regions x {per_region} instances, {latency} ms latency per request, "
      f"about {pages} DescribeInstances pages per run")
print(f"  runs (status|discovered|created|unchanged): {', '.join(runs)}")
instances = nregions * per_region
print(f"  initial run (concurrent):        {initial:.2f} s")
print(f"  worker CPU per instance:         initial {initial_cpu * 1e6 / instances:.1f} us (target <= 90), "
      f"unchanged re-run {cpu_concurrent * 1e6 / instances:.1f} us (target <= 60)")
print(f"  unchanged re-run, concurrent:    {concurrent:.2f} s   (aws_max_parallel_regions = {parallel})")
print(f"  unchanged re-run, sequential:    {sequential:.2f} s   (aws_max_parallel_regions = 1)")
print(f"  ratio concurrent / sequential:   {concurrent / sequential:.2f}   (target <= 0.35)")
print(f"  worker CPU of the re-runs:       concurrent {cpu_concurrent:.2f} s, sequential {cpu_sequential:.2f} s")
print(f"  listing + merge of the re-runs:  concurrent {list_concurrent:.2f} + {merge_concurrent:.2f} s, "
      f"sequential {list_sequential:.2f} + {merge_sequential:.2f} s")
print(f"  simulator CPU in the re-runs:    concurrent {s3 - s2:.2f} s, sequential {s5 - s4:.2f} s")
print(f"  lowest ratio this CPU allows:    {cpu_concurrent / sequential:.2f}   (concurrent CPU / sequential wall: "
      f"no run is shorter than its CPU time)")
print(f"  rows written by the re-runs:     {w1 - w0}, {w2 - w1}   (target 0)")
print(f"  worker peak private resident memory (kB), runs 1-3: {' '.join(peaks)}   (target < 100 MB)")
print(f"  supplementary, 500 ms per request: concurrent {slow_concurrent:.2f} s, sequential {slow_sequential:.2f} s, "
      f"ratio {slow_concurrent / slow_sequential:.2f}   (no target)")
PY

# ---- per resource type, at 50 ms per request again: one connector per type,
# each in an account of its own (an account's role trusts one connector)
bench_sim_control POST /_sim/config "{\"latency_ms\": $latency_ms}" >/dev/null
psql -qAtX -v ON_ERROR_STOP=1 -c "ALTER SYSTEM RESET cloudconn.aws_max_parallel_regions" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
# generate TYPE ACCOUNT: that type's resources in the account
generate() {
	local seed=1
	case "$1" in
		aws_s3_bucket)
			bench_sim_control POST "/_sim/accounts/$2/buckets/generate" \
				"{\"count\": $buckets, \"seed\": 1, \"regions\": $regions_json}" >/dev/null ;;
		*)
			local path count
			case "$1" in
				aws_vpc) path=vpcs; count=$vpcs ;;
				aws_rds_db_instance) path=db-instances; count=$dbs ;;
				aws_lambda_function) path=functions; count=$functions ;;
			esac
			for r in "${regions[@]}"; do
				bench_sim_control POST "/_sim/accounts/$2/regions/$r/$path/generate" "{\"count\": $count, \"seed\": $seed}" >/dev/null
				seed=$((seed + 1))
			done ;;
	esac
}
# measure NAME CONNECTOR RESOURCES: an initial run (after the last), then an
# unchanged re-run; one line of figures into $BENCH_DIR/types.txt
measure() {
	local name=$1 conn=$2 count=$3 ta tb tc td wa wb first second
	ta=$(now); first=$(psql -qAtX -v ON_ERROR_STOP=1 -c "SELECT cloudconn.connector_run($conn)"); tb=$(now)
	psql -qAtX -v ON_ERROR_STOP=1 -c "VACUUM (ANALYZE) cloudconn.configuration_item" -c "CHECKPOINT" >/dev/null
	sleep 1
	wa=$(written)
	tc=$(now); second=$(psql -qAtX -v ON_ERROR_STOP=1 -c "SELECT cloudconn.connector_run($conn)"); td=$(now)
	sleep 1
	wb=$(written)
	echo "$name $count $ta $tb $tc $td $wa $wb $(psql -qAtX -c "SELECT string_agg(status, '/' ORDER BY id) FROM cloudconn.runs WHERE id IN ($first, $second)") \
$(bench_run_figures "$first") $(bench_run_figures "$second")" >>"$BENCH_DIR/types.txt"
}
: >"$BENCH_DIR/types.txt"
n=0
for type in aws_vpc aws_rds_db_instance aws_s3_bucket aws_lambda_function; do
	n=$((n + 1))
	type_account=55556666000$n
	generate "$type" "$type_account"
	conn=$(psql -qAtX -v ON_ERROR_STOP=1 -c "SELECT cloudconn.connector_create(1, 'bench $type', 'aws', 'manual',
		'{\"account_id\": \"$type_account\", \"regions\": $regions_json, \"resource_types\": [\"$type\"]}')")
	psql -qAtX -c "SELECT cloudconn.aws_cloudformation_template($conn, least_privilege => true)" >"$BENCH_DIR/template-$type.json"
	bench_sim_control POST "/_sim/accounts/$type_account/apply-template" "@$BENCH_DIR/template-$type.json" >/dev/null
	case "$type" in
		aws_s3_bucket) count=$buckets ;;
		aws_vpc) count=$((vpcs * ${#regions[@]})) ;;
		aws_rds_db_instance) count=$((dbs * ${#regions[@]})) ;;
		aws_lambda_function) count=$((functions * ${#regions[@]})) ;;
	esac
	measure "$type" "$conn" "$count"
done
# the first connector with every type enabled, over the whole account
for type in aws_vpc aws_rds_db_instance aws_s3_bucket aws_lambda_function; do generate "$type" "$account"; done
psql -qAtX -v ON_ERROR_STOP=1 -c "SELECT cloudconn.connector_update(1, settings => '{\"account_id\": \"$account\", \"regions\": $regions_json}')" >/dev/null
psql -qAtX -c "SELECT cloudconn.aws_cloudformation_template(1, least_privilege => true)" >"$BENCH_DIR/template-all.json"
bench_sim_control POST "/_sim/accounts/$account/apply-template" "@$BENCH_DIR/template-all.json" >/dev/null
measure "all five types" 1 $((per_region * ${#regions[@]} + (vpcs + dbs + functions) * ${#regions[@]} + buckets))

python3 - "$BENCH_DIR/types.txt" "$latency_ms" <<'PY'
import sys
lines = [l.split() for l in open(sys.argv[1]) if l.strip()]
print(f"AWS benchmark per resource type ({sys.argv[2]} ms per request; each line a connector of that type alone, "
      f"the last one every type; re-runs unchanged)")
print(f"  {'type':<22} {'resources':>9} {'initial':>9} {'re-run':>8} {'rows':>5} {'peak MB':>8} "
      f"{'CPU/res initial':>16} {'CPU/res re-run':>15}  status")
for l in lines:
    if l[0] == "all":
        l = ["all five types"] + l[3:]
    name, count = l[0], int(l[1])
    ta, tb, tc, td = map(float, l[2:6])
    wa, wb = int(l[6]), int(l[7])
    status = l[8]
    cpu1, _, _, priv1, _ = l[9:14]
    cpu2, _, _, priv2, _ = l[14:19]
    peak = max(int(priv1), int(priv2)) / 1024
    print(f"  {name:<22} {count:>9} {tb - ta:>8.2f}s {td - tc:>7.2f}s {wb - wa:>5} {peak:>8.1f} "
          f"{float(cpu1) * 1e6 / count:>13.1f} us {float(cpu2) * 1e6 / count:>12.1f} us  {status}")
print("  targets: rows written by a re-run 0; peak private resident memory < 100 MB")
PY
