# The read policies' gate, settled once per execution (src/policy_gate.c): a
# reader with grants on the root makes no per-row check at all (the
# backend's row_checks counter does not move) and sees what a superuser
# sees, on configuration_item and on the connectors, runs and ci_changes
# views; a reader restricted to a subtree is checked row by row.  The gate
# is settled by each execution, never by the plan: a prepared statement
# with a generic plan and a PL/pgSQL function's cached plan, executed again
# inside one open transaction, follow a revoke of the root grant (to a
# subtree) and a grant back at their very next execution.  Parallel plans,
# EXPLAIN ANALYZE, and an UPDATE's read of the rows give the same answers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('policy_gate');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cloudconn'
cloudconn.scheduler_enabled = off
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, parent_id, name) VALUES
		(1, NULL, 'root'), (2, 1, 'a'), (3, 1, 'b'), (4, 2, 'a-sub');
	INSERT INTO cloudconn.connector (entity_id, name, provider)
	SELECT e, 'conn-' || e, 'digitalocean' FROM generate_series(1, 4) e;
	INSERT INTO cloudconn.run (connector_id, trigger, status, started_at, finished_at)
	SELECT k.id, 'manual', 'succeeded', now(), now() FROM cloudconn.connector k, generate_series(1, 5);
	INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name)
	SELECT i % 4 + 1, 'server', 'ci-' || i FROM generate_series(1, 200) i;
	CREATE ROLE gate_reader;
	CREATE ROLE gate_manager IN ROLE cloudconn_app;
	SELECT cloudconn.grant_permission('gate_reader', 1, 'ConfigurationItem:read');
	SELECT cloudconn.grant_permission('gate_reader', 1, 'CloudConnector:read');
	SELECT cloudconn.grant_permission('gate_manager', 1, 'ConfigurationItem:manage');
	SELECT cloudconn.grant_permission('gate_manager', 1, 'ConfigurationItem:read');
});
sub admin { $node->safe_psql('postgres', $_[0]) }

my $reader = $node->background_psql('postgres');
$reader->query_safe('SET ROLE gate_reader');
sub row_checks
{
	return $reader->query_safe('RESET ROLE; SELECT row_checks FROM cloudconn._permission_cache_stats(); SET ROLE gate_reader');
}
# Filter clauses this backend settled true (dropped from the running plan).
sub settled
{
	return $reader->query_safe('RESET ROLE; SELECT clauses_dropped FROM cloudconn._policy_gate_stats(); SET ROLE gate_reader');
}

# ---- an UPDATE reads the rows under the SELECT policy too
my $m = $node->background_psql('postgres');
$m->query_safe('SET ROLE gate_manager');
is($m->query_safe(q{WITH u AS (UPDATE cloudconn.configuration_item SET description = 'seen' WHERE name LIKE 'ci-1%' RETURNING 1)
	SELECT count(*) FROM u}), admin(q{SELECT count(*) FROM cloudconn.configuration_item WHERE name LIKE 'ci-1%'}),
	'a manager of the root updates every CI it selects');
$m->quit;

# Each statement, with what a superuser gets from it.
my %statements = (
	'CIs count' => 'SELECT count(*) FROM cloudconn.configuration_item',
	'CIs page' => q{SELECT string_agg(name, ',' ORDER BY id) FROM
		(SELECT id, name FROM cloudconn.configuration_item ORDER BY id LIMIT 50 OFFSET 100) p},
	'CIs lookup' => 'SELECT name FROM cloudconn.configuration_item WHERE id = 7',
	'connectors' => q{SELECT string_agg(name, ',' ORDER BY id) FROM cloudconn.connectors},
	'runs' => 'SELECT count(*) FROM cloudconn.runs',
	'CIs with their connector' => q{SELECT count(*) FROM cloudconn.configuration_item ci
		JOIN cloudconn.connector k ON k.entity_id = ci.entity_id},
	'CI changes' => 'SELECT count(*) FROM cloudconn.ci_changes',
);
for my $label (sort keys %statements)
{
	my $before = row_checks();
	my $settled = settled();
	is($reader->query_safe($statements{$label}), admin($statements{$label}),
		"a reader of the root: $label, as a superuser");
	is(row_checks(), $before, "$label: no per-row check");
	cmp_ok(settled() - $settled, '>=', 1, "$label: the policy's filter was dropped from the running plan");
}

# ---- parallel plans and EXPLAIN ANALYZE
$reader->query_safe(q{SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
	SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2; SET force_parallel_mode = on});
is($reader->query_safe('SELECT count(*) FROM cloudconn.configuration_item'), '200', 'a parallel plan: every CI');
like($reader->query_safe('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT count(*) FROM cloudconn.configuration_item'),
	qr/Gather/, '(it was one)');
$reader->query_safe('RESET force_parallel_mode; RESET max_parallel_workers_per_gather');
like($reader->query_safe('EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM cloudconn.configuration_item'),
	qr/rows=200 /, 'EXPLAIN ANALYZE: every CI');

# ---- settled per execution: cached plans in one open transaction
my $names_sql = q{SELECT string_agg(DISTINCT entity_id::text, ',' ORDER BY entity_id::text) FROM cloudconn.configuration_item};
$reader->query_safe(qq{SET plan_cache_mode = force_generic_plan; PREPARE names AS $names_sql});
$reader->query_safe(qq{RESET ROLE;
	CREATE FUNCTION public.gate_names() RETURNS text LANGUAGE plpgsql STABLE AS \$\$
	BEGIN RETURN ($names_sql); END \$\$;
	GRANT EXECUTE ON FUNCTION public.gate_names() TO gate_reader;
	SET ROLE gate_reader});
$reader->query_safe('BEGIN');
is($reader->query_safe('EXECUTE names'), '1,2,3,4', 'in an open transaction, the prepared statement sees every entity');
is($reader->query_safe('SELECT public.gate_names()'), '1,2,3,4', 'and so does the function');
is($reader->query_safe('EXECUTE names'), '1,2,3,4', '(again, on its cached generic plan)');
admin(q{SELECT cloudconn.grant_permission('gate_reader', 2, 'ConfigurationItem:read');
	SELECT cloudconn.revoke_permission('gate_reader', 1, 'ConfigurationItem:read')});
my $before = row_checks();
is($reader->query_safe('EXECUTE names'), '2,4', 'the root grant revoked: the very next execution sees the subtree only');
is($reader->query_safe('SELECT public.gate_names()'), '2,4', 'so does the function\'s cached plan');
cmp_ok(row_checks() - $before, '>=', 400, 'checked row by row');
admin(q{SELECT cloudconn.grant_permission('gate_reader', 1, 'ConfigurationItem:read')});
$before = row_checks();
my $settled = settled();
is($reader->query_safe('EXECUTE names'), '1,2,3,4', 'granted back: the next execution sees everything again');
is($reader->query_safe('SELECT public.gate_names()'), '1,2,3,4', 'and the function');
is(row_checks(), $before, 'without a per-row check');
is(settled() - $settled, 2, 'each execution settled its filter');
$reader->query_safe('COMMIT');

# ---- a reader of a subtree is checked row by row, and sees its subtree
admin(q{SELECT cloudconn.revoke_permission('gate_reader', 1, 'ConfigurationItem:read')});
$before = row_checks();
is($reader->query_safe('SELECT count(*) FROM cloudconn.configuration_item'), '100', 'a reader of a: its two entities\' CIs');
cmp_ok(row_checks() - $before, '>=', 200, 'each row checked');

$reader->quit;
$node->stop;
done_testing();
