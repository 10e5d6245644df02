#!/usr/bin/env bash
# Benchmark: the cost of row-level security.  For CIs spread over an entity
# tree five levels deep, times the same queries run as a role whose read
# grants sit on the root and as a superuser (who bypasses RLS), and prints
# their ratio: count(*) and a 1,000-row page on configuration_item, and the
# same on the connectors and runs views.  Target: ratio at most 1.5.
#   usage: rls.sh [smoke|full]   (full: 100,000 CIs over 1,000 entities)
set -euo pipefail
scale=${1:-full}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

case "$scale" in
	full)  entities=1000; cis=100000; runs_per_connector=20; offset=50000; reps=31 ;;
	smoke) entities=200;  cis=10000;  runs_per_connector=5;  offset=5000;  reps=3 ;;
	*) echo "usage: $0 [smoke|full]" >&2; exit 2 ;;
esac

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
CREATE ROLE bench_reader;
SELECT cloudconn.grant_permission('bench_reader', 1, 'ConfigurationItem:read');
SELECT cloudconn.grant_permission('bench_reader', 1, 'CloudConnector:read');

-- Median server-side execution time (ms) of a query over reps runs, after
-- one warm-up.  EXPLAIN ANALYZE runs the query exactly as planned (every row
-- produced, none sent), with per-node timing off so it adds no overhead.
CREATE FUNCTION public.bench_ms(q text, reps int) RETURNS numeric LANGUAGE plpgsql AS \$\$
DECLARE
	plan json;
	times numeric[] := '{}';
BEGIN
	EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || q INTO plan;
	FOR i IN 1 .. reps LOOP
		EXECUTE 'EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) ' || q INTO plan;
		times := times || (plan -> 0 ->> 'Execution Time')::numeric;
	END LOOP;
	RETURN (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(times) x);
END;
\$\$;
CREATE TABLE public.bench_result (query text, who text, ms numeric, rows bigint, digest text);
GRANT INSERT ON public.bench_result TO bench_reader;
SQL

queries=(
	"CIs count|SELECT count(*) FROM cloudconn.configuration_item"
	"CIs page|SELECT * FROM cloudconn.configuration_item ORDER BY id LIMIT 1000 OFFSET $offset"
	"connectors count|SELECT count(*) FROM cloudconn.connectors"
	"connectors page|SELECT * FROM cloudconn.connectors ORDER BY id LIMIT 100 OFFSET $((entities / 2))"
	"runs count|SELECT count(*) FROM cloudconn.runs"
	"runs page|SELECT * FROM cloudconn.runs ORDER BY id LIMIT 1000 OFFSET $((entities * runs_per_connector / 2))"
)
for entry in "${queries[@]}"; do
	label=${entry%%|*}
	q=${entry#*|}
	for who in postgres bench_reader; do
		psql -qX -v ON_ERROR_STOP=1 -v q="$q" -v label="$label" -v who="$who" <<SQL
SET ROLE :"who";
INSERT INTO public.bench_result
SELECT :'label', :'who', public.bench_ms(:'q', $reps), r.n, r.digest
  FROM (SELECT count(*) AS n, md5(string_agg(t::text, '|')) AS digest FROM ($q) t) r;
SQL
	done
done

echo "RLS benchmark ($scale): $cis CIs, $entities entities in a 6-ary tree (5 levels at full size), $((entities * runs_per_connector)) runs; median of $reps"
psql -X -v ON_ERROR_STOP=1 <<'SQL'
SELECT s.query,
	   s.rows AS rows_seen,
	   round(s.ms, 2) AS superuser_ms,
	   round(r.ms, 2) AS root_reader_ms,
	   round(r.ms / nullif(s.ms, 0), 2) AS ratio,
	   CASE WHEN r.digest = s.digest THEN 'same result' ELSE 'RESULTS DIFFER' END AS check,
	   '<= 1.5' AS target
  FROM bench_result s JOIN bench_result r ON r.query = s.query AND r.who = 'bench_reader'
 WHERE s.who = 'postgres'
 ORDER BY s.query;
SQL
