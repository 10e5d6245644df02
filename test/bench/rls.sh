#!/usr/bin/env bash
# Benchmark: the cost of row-level security, as a client sees it.  For CIs
# spread over an entity tree five levels deep, pgbench runs the same
# statement as a role whose read grants sit on the root and as a superuser
# (who bypasses RLS), in the same cluster, alternating rounds.  pgbench uses
# the simple protocol: every statement is parsed, planned and executed, and
# its latency is measured from the client, so the planning-time work of the
# policies counts.  Statements: a single-row lookup by a random id, count(*),
# and a 1,000-row page (100 rows for connectors, there are 1,000 of them),
# on configuration_item, and on the connectors and runs views.
# Prints each statement's median latency per role, and the median over the
# rounds of each round's ratio and added time (each reader run against the
# superuser run just before it, so that load from elsewhere on the machine
# weighs on both), with the spread of the ratio over the rounds.
# Targets: a lookup adds at most 0.3 ms; count(*) and the page take at most
# 1.2 times as long.
#   usage: rls.sh [smoke|full]   (full: 100,000 CIs over 1,000 entities)
set -euo pipefail
scale=${1:-full}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

case "$scale" in
	full)  entities=1000; cis=100000; runs_per_connector=20; offset=50000; seconds=2; rounds=11 ;;
	smoke) entities=200;  cis=10000;  runs_per_connector=5;  offset=5000;  seconds=1; rounds=1 ;;
	*) echo "usage: $0 [smoke|full]" >&2; exit 2 ;;
esac
runs=$((entities * runs_per_connector))

bench_cluster_start rls
psql -qX -v ON_ERROR_STOP=1 <<SQL
CREATE EXTENSION cloudconn CASCADE;
-- a 6-ary tree: 1 + 6 + 36 + 216 + rest = five levels for 1,000 entities
INSERT INTO cloudconn.entity (id, parent_id, name)
SELECT i, CASE WHEN i = 1 THEN NULL ELSE (i - 2) / 6 + 1 END, 'entity ' || i
  FROM generate_series(1, $entities) i;
INSERT INTO cloudconn.connector (entity_id, name, provider, schedule)
SELECT i, 'connector ' || i, 'digitalocean', 'daily' FROM generate_series(1, $entities) i;
INSERT INTO cloudconn.run (connector_id, trigger, status, started_at, finished_at, discovered, unchanged)
SELECT k.id, 'scheduled', 'succeeded', now() - n * interval '1 day', now() - n * interval '1 day' + interval '1 minute', 100, 100
  FROM cloudconn.connector k, generate_series(1, $runs_per_connector) n;
INSERT INTO cloudconn.configuration_item
	(entity_id, ci_type, name, hostname, ip_address, os_info, external_id, source_connector_id,
	 first_discovered_at, attributes)
SELECT (i % $entities) + 1, 'digitalocean_droplet', 'droplet-' || i, 'droplet-' || i,
	   ('10.' || (i / 65536) % 256 || '.' || (i / 256) % 256 || '.' || i % 256)::inet, 'Ubuntu 22.04 x64',
	   'do:droplet:' || i, (i % $entities) + 1, now(),
	   jsonb_build_object('region', 'ams3', 'status', 'active', 'size', 's-1vcpu-1gb', 'vcpus', 1,
						  'memory', 1024, 'disk', 25, 'tags', jsonb_build_array('web', 'prod'))
  FROM generate_series(1, $cis) i;
VACUUM ANALYZE;
CHECKPOINT;
CREATE ROLE bench_reader LOGIN;
SELECT cloudconn.grant_permission('bench_reader', 1, 'ConfigurationItem:read');
SELECT cloudconn.grant_permission('bench_reader', 1, 'CloudConnector:read');
SQL

# label | statement (pgbench script; :id is a random id where there is one)
queries=(
	"CIs lookup|\\set id random(1, $cis)
SELECT * FROM cloudconn.configuration_item WHERE id = :id;"
	"CIs count|SELECT count(*) FROM cloudconn.configuration_item;"
	"CIs page|SELECT * FROM cloudconn.configuration_item ORDER BY id LIMIT 1000 OFFSET $offset;"
	"connectors lookup|\\set id random(1, $entities)
SELECT * FROM cloudconn.connectors WHERE id = :id;"
	"connectors count|SELECT count(*) FROM cloudconn.connectors;"
	"connectors page|SELECT * FROM cloudconn.connectors ORDER BY id LIMIT 100 OFFSET $((entities / 2));"
	"runs lookup|\\set id random(1, $runs)
SELECT * FROM cloudconn.runs WHERE id = :id;"
	"runs count|SELECT count(*) FROM cloudconn.runs;"
	"runs page|SELECT * FROM cloudconn.runs ORDER BY id LIMIT 1000 OFFSET $((runs / 2));"
)

# Both roles must see the same rows (the reader's grants cover everything);
# a lookup is checked at a fixed id.
digest() {
	local q=${1#*$'\n'}
	q=${q//:id/2}
	psql -XAtq -v ON_ERROR_STOP=1 -U "$2" -c "SELECT count(*) || ' ' || md5(string_agg(t::text, '|')) FROM (${q%;}) t"
}

# Average latency (ms) of one pgbench run of a script, from the client.
latency() {
	pgbench -n -M simple -c 1 -T "$seconds" -U "$2" -f "$1" 2>&1 |
		awk '/^latency average/ { print $4; found = 1 } END { if (!found) exit 1 }'
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

out=$BENCH_DIR/results
: >"$out"
for entry in "${queries[@]}"; do
	label=${entry%%|*}
	script=$BENCH_DIR/script.sql
	printf '%s\n' "${entry#*|}" >"$script"
	check="same result"
	[ "$(digest "${entry#*|}" postgres)" = "$(digest "${entry#*|}" bench_reader)" ] || check="RESULTS DIFFER"
	# warm-up: caches, and each role's plans and permitted sets
	for who in postgres bench_reader; do
		pgbench -n -M simple -c 1 -t 50 -U "$who" -f "$script" >/dev/null 2>&1
	done
	su=() rd=() ratios=() added=()
	for _ in $(seq "$rounds"); do
		s=$(latency "$script" postgres)
		r=$(latency "$script" bench_reader)
		su+=("$s") rd+=("$r")
		ratios+=("$(awk -v r="$r" -v s="$s" 'BEGIN { printf "%.4f", r / s }')")
		added+=("$(awk -v r="$r" -v s="$s" 'BEGIN { printf "%.4f", r - s }')")
	done
	s=$(printf '%s\n' "${su[@]}" | median)
	r=$(printf '%s\n' "${rd[@]}" | median)
	ratio=$(printf '%s\n' "${ratios[@]}" | median)
	add=$(printf '%s\n' "${added[@]}" | median)
	lo=$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)
	hi=$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)
	case "$label" in
		*lookup) target="added <= 0.3 ms" ;;
		*) target="ratio <= 1.2" ;;
	esac
	printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\n' "$label" "$s" "$r" "$ratio" "$add" "$lo" "$hi" "$check" "$target" >>"$out"
done

echo "RLS benchmark ($scale): $cis CIs, $entities entities in a 6-ary tree (5 levels at full size), $runs runs;"
echo "pgbench -M simple, 1 client, $rounds alternating rounds of ${seconds} s per role; latency from the client, planning included;"
echo "latencies: medians over the rounds; ratio and added ms: medians of each round's (reader against the superuser just before it)"
awk -F'|' 'BEGIN {
		printf "%-18s %12s %12s %7s %9s %13s  %-14s %s\n", "statement", "superuser ms", "reader ms", "ratio", "added ms", "ratio spread", "check", "target"
	}
	{
		printf "%-18s %12.3f %12.3f %7.2f %9.3f %6.2f-%-6.2f  %-14s %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9
	}' "$out"
