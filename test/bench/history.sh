#!/usr/bin/env bash
# Benchmark: what the change history of CIs costs a re-run.  After an
# initial run of N droplets, four re-runs, each after 10% of the droplets
# changed at the simulator (half of them renamed, half given one more tag;
# other droplets each time), alternately with the history writes switched
# off and on (cloudconn.history_writes, superuser-only, for measurement
# only): off, on, on, off.  Prints each re-run's time, the mean time with
# history over the mean time without (target <= 1.3), and the history rows
# each re-run wrote against the fields it changed (exactly one row per
# changed field: a renamed droplet changes its name and its hostname, a
# retagged one its tags; none with history off).
#   usage: history.sh [smoke|full]   (full: 100,000 droplets)
set -euo pipefail
scale=${1:-full}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

case "$scale" in
	full)  droplets=100000 ;;
	smoke) droplets=2000 ;;
	*) echo "usage: $0 [smoke|full]" >&2; exit 2 ;;
esac
bench_cluster_start history
bench_start_digitalocean "{\"count\": $droplets, \"regions\": [\"ams3\", \"nyc1\", \"fra1\", \"sfo3\"], \"seed\": 3}"
pg_ctl -D "$BENCH_DIR/data" reload >/dev/null
sleep 0.5

psql -qX -v ON_ERROR_STOP=1 -v token="$DO_TOKEN" <<'SQL' >/dev/null
CREATE EXTENSION cloudconn CASCADE;
INSERT INTO cloudconn.entity (id, name) VALUES (1, 'bench');
SELECT cloudconn.connector_create(1, 'bench', 'digitalocean', 'manual', '{}', :'token');
SQL

now() { date +%s.%N; }
run_once() { psql -qAtX -v ON_ERROR_STOP=1 -c "SELECT cloudconn.connector_run(1)"; }
history_writes() {
	psql -qAtX -v ON_ERROR_STOP=1 -c "ALTER SYSTEM SET cloudconn.history_writes = $1" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 0.5
}

# Change the droplets of round $1 (every tenth, offset by the round) at the
# simulator, in one request: even ones renamed, odd ones one more tag.
# Prints "renamed retagged".
change_droplets() {
	curl -sS --fail-with-body --cacert "$BENCH_DIR/ca/ca.crt" "$DO_URL/_sim/droplets" -o "$BENCH_DIR/droplets.json"
	/usr/bin/python3 - "$BENCH_DIR/droplets.json" "$1" "$BENCH_DIR/patches.json" <<'PY'
import json, sys
path, rnd, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
droplets = json.load(open(path))["droplets"]
patches = []
renamed = retagged = 0
for i, d in enumerate(droplets):
    if i % 10 != rnd:
        continue
    if (i // 10) % 2 == 0:
        patches.append({"id": d["id"], "name": f"{d['name']}-r{rnd}"})
        renamed += 1
    else:
        patches.append({"id": d["id"], "tags": d["tags"] + [f"bench-r{rnd}"]})
        retagged += 1
json.dump({"patches": patches}, open(out, "w"))
print(renamed, retagged)
PY
	curl -sS --fail-with-body --cacert "$BENCH_DIR/ca/ca.crt" -X POST "$DO_URL/_sim/droplets/patch" \
		--data-binary "@$BENCH_DIR/patches.json" >/dev/null
}

run_once >/dev/null
results=""
round=1
for writes in off on on off; do
	history_writes "$writes"
	change_droplets "$round" >"$BENCH_DIR/changed.txt"   # (not a process substitution: the POST must be over)
	read -r renamed retagged <"$BENCH_DIR/changed.txt"
	t0=$(now)
	run=$(run_once)
	t1=$(now)
	figures=$(psql -qAtX -c "SELECT r.updated, r.unchanged, r.status,
		(SELECT count(*) FROM cloudconn.ci_change c WHERE c.run_id = r.id),
		(SELECT count(*) FROM cloudconn.ci_change c WHERE c.run_id = r.id AND c.field = 'name'),
		(SELECT count(*) FROM cloudconn.ci_change c WHERE c.run_id = r.id AND c.field = 'hostname'),
		(SELECT count(*) FROM cloudconn.ci_change c WHERE c.run_id = r.id AND c.field = 'attributes.tags')
		FROM cloudconn.runs r WHERE r.id = $run")
	sleep 1   # the run's LOG line, with its CPU and merge time
	read -r cpu _ merge _ _ < <(bench_run_figures "$run")
	results="$results $writes:$t0:$t1:$renamed:$retagged:${figures//|/:}:$cpu:$merge"
	round=$((round + 1))
done
history_writes on

python3 - "$droplets" $results <<'PY'
import sys
droplets = int(sys.argv[1])
on, off = [], []
cpu_on, cpu_off, merge_on, merge_off = [], [], [], []
print(f"History benchmark: re-runs of {droplets} droplets, 10% of them changed before each (half renamed, half retagged)")
for r in sys.argv[2:]:
    writes, t0, t1, renamed, retagged, updated, unchanged, status, rows, names, hosts, tags, cpu, merge = r.split(":")
    secs = float(t1) - float(t0)
    (on if writes == "on" else off).append(secs)
    (cpu_on if writes == "on" else cpu_off).append(float(cpu))
    (merge_on if writes == "on" else merge_off).append(float(merge))
    expected = 2 * int(renamed) + int(retagged) if writes == "on" else 0
    exact = int(rows) == expected and (writes == "off" or
            (int(names) == int(renamed) and int(hosts) == int(renamed) and int(tags) == int(retagged)))
    print(f"  history {writes:3}: {secs:6.2f} s (worker CPU {float(cpu):.2f} s, merge {float(merge):.2f} s)  {status}, {updated} CIs updated, {unchanged} unchanged; "
          f"history rows written {rows} (name {names}, hostname {hosts}, tags {tags}; "
          f"expected {expected}: {'exact' if exact else 'NOT EXACT'})")
mean = lambda v: sum(v) / len(v)
m_on, m_off = mean(on), mean(off)
print(f"  mean with history {m_on:.2f} s, without {m_off:.2f} s: ratio {m_on / m_off:.2f}   (target <= 1.3)")
print(f"  the same for the worker's CPU: {mean(cpu_on):.2f} s / {mean(cpu_off):.2f} s = {mean(cpu_on) / max(mean(cpu_off), 0.01):.2f}; "
      f"for the merge alone: {mean(merge_on):.2f} s / {mean(merge_off):.2f} s = {mean(merge_on) / max(mean(merge_off), 0.01):.2f}")
PY
