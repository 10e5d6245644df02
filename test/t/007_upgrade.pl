# The upgrade path: a database filled by cloudconn 0.1.0 (the fixture in
# test/t/upgrade, made by the real 0.1.0 code against the simulators) is
# upgraded in place with ALTER EXTENSION cloudconn UPDATE.  Every row is
# kept, tokens still decrypt, the next run of each connector finds every CI
# unchanged and writes no CI row, and the upgraded catalog is exactly the
# catalog of a fresh install of the current version.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CloudconnSim;

my $fixture = "$FindBin::Bin/upgrade";
my $ca = CloudconnSim::test_ca();
my $do = CloudconnSim::start_digitalocean(ca => $ca);
my $aws = CloudconnSim::start_aws(ca => $ca);
my $account = '444455556666';
# the resources the fixture was made from (make_fixture.pl)
$do->control('POST', '/_sim/droplets/generate', { count => 450, regions => [ 'ams3', 'nyc1', 'fra1' ], seed => 7 });
$aws->control('POST', "/_sim/accounts/$account/regions/eu-west-1/instances/generate", { count => 1200, seed => 1, states => ['running', 'stopped'] });
$aws->control('POST', "/_sim/accounts/$account/regions/us-east-1/instances/generate", { count => 300, seed => 2, states => ['running', 'terminated'] });
my $creds = PostgreSQL::Test::Utils::tempdir('aws') . '/credentials';
open(my $fh, '>', $creds) or die $!;
print $fh "[default]\naws_access_key_id = AKIASIMULATORCALLER2\naws_secret_access_key = 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\n";
close $fh;
chmod 0600, $creds;

my $node = CloudconnSim::cluster('upgrade', $do->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$do->url]}'
cloudconn.aws_credentials_file = '$creds'
cloudconn.aws_sts_endpoint = '@{[$aws->url]}'
cloudconn.aws_ec2_endpoint = '@{[$aws->url]}/'
cloudconn.aws_rds_endpoint = '@{[$aws->url]}/'
cloudconn.aws_s3_endpoint = '@{[$aws->url]}'
cloudconn.aws_lambda_endpoint = '@{[$aws->url]}'
cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole'
});
my $current = $node->safe_psql('postgres', "SELECT default_version FROM pg_available_extensions WHERE name = 'cloudconn'");
isnt($current, '0.1.0', "the current version ($current) is not 0.1.0");

sub up { $node->safe_psql('upgraded', $_[0]) }

# ---- a 0.1.0 database, filled by 0.1.0
$node->safe_psql('postgres', q{
	CREATE DATABASE upgraded;
	CREATE DATABASE fresh;
	CREATE ROLE upgrade_admin;
	CREATE ROLE upgrade_reader;
	CREATE ROLE upgrade_group;
	CREATE ROLE upgrade_member IN ROLE upgrade_group;
});
up(q{CREATE EXTENSION cloudconn VERSION '0.1.0' CASCADE});
is(up("SELECT extversion FROM pg_extension WHERE extname = 'cloudconn'"), '0.1.0', 'the 0.1.0 install script is still installed');
system('cp', "$fixture/fixture-0.1.0.key", $node->data_dir . '/cloudconn.key') == 0 or die;
chmod 0600, $node->data_dir . '/cloudconn.key';
$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('upgraded'),
	'-f', "$fixture/fixture-0.1.0.sql" ], 'the 0.1.0 fixture loads');

# every table's rows, over its 0.1.0 columns
my %columns_010 = (
	entity => 'id, parent_id, name, created_at',
	role_assignment => 'role, entity_id, permission, granted_at',
	connector => 'id, entity_id, name, provider, schedule, settings, external_id, token, has_token, token_set_at, created_by, created_at, updated_at, deleted_at',
	run => 'id, connector_id, trigger, status, started_at, finished_at, discovered, created, updated, unchanged, error_count, pages_fetched, error',
	run_error => 'id, run_id, external_id, message, created_at',
	configuration_item => 'id, entity_id, ci_type, name, hostname, ip_address, os_info, description, external_id, source_connector_id, first_discovered_at, missing_since, attributes, created_at, updated_at',
	application => 'id, entity_id, name, description',
	business_process => 'id, entity_id, name, description',
	ci_application => 'ci_id, application_id',
	ci_business_process => 'ci_id, business_process_id',
);
sub contents
{
	my %digest;
	for my $t (sort keys %columns_010)
	{
		$digest{$t} = up(qq{SELECT count(*) || ' ' || md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), ''))
			FROM (SELECT $columns_010{$t} FROM cloudconn.$t) r});
	}
	return join("\n", map { "$_: $digest{$_}" } sort keys %digest);
}
my $before = contents();
like($before, qr/configuration_item: 2401 /, 'the fixture has its CIs');

# ---- the upgrade
up('ALTER EXTENSION cloudconn UPDATE');
is(up("SELECT extversion FROM pg_extension WHERE extname = 'cloudconn'"), $current, "ALTER EXTENSION UPDATE reaches $current");
is(contents(), $before, 'every row of every table is kept');

my $token = $CloudconnSim::TOKEN;
is(up(qq{SELECT string_agg(id || ':' || cloudconn._token_matches(id, '$token'), ',' ORDER BY id)
	FROM cloudconn.connector WHERE token IS NOT NULL}), '1:true,2:true', 'stored tokens still decrypt');

# ---- the next run of each connector changes nothing
my $c_aws = up(q{SELECT id FROM cloudconn.connector WHERE name = 'prod aws'});
$aws->control('POST', "/_sim/accounts/$account/apply-template", up("SELECT cloudconn.aws_cloudformation_template($c_aws)"));
sub workers_gone
{
	$node->poll_query_until('upgraded',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'")
	  or die 'run workers did not exit';
}
my $stats = q{SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables
	WHERE relid = 'cloudconn.configuration_item'::regclass};
my $stats_before = up($stats);
for my $c (split /\n/, up('SELECT id FROM cloudconn.connector WHERE deleted_at IS NULL ORDER BY id'))
{
	my $cis = up("SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c");
	my $run = up("SELECT cloudconn.connector_run($c)");
	cmp_ok($cis, '>', 100, "connector $c has CIs from 0.1.0");
	# (terminated instances are listed, and unchanged, without a CI)
	is(up("SELECT status, created, updated, unchanged = discovered, discovered >= $cis, coalesce(error, '')"
			. " FROM cloudconn.runs WHERE id = $run"),
		"succeeded|0|0|t|t|", "connector $c: the first run after the upgrade finds every CI unchanged");
}
workers_gone();
is(up($stats), $stats_before, 'those runs wrote no CI row (pg_stat_user_tables)');
is(up('SELECT count(*) FROM cloudconn.ci_change'), '0', 'nor any change to the history of CIs');
is(contents() =~ s/^(run|run_error): .*$//gmr, $before =~ s/^(run|run_error): .*$//gmr,
	'and every table but the run history is as before');

# ---- the upgraded catalog is the catalog of a fresh install
$node->safe_psql('fresh', 'CREATE EXTENSION cloudconn CASCADE');

# Everything that makes up the extension's objects, one line each, sorted:
# its member objects, tables with their columns, defaults, constraints,
# indexes, triggers, policies and privileges, views, sequences, functions
# with their arguments, bodies, settings and privileges, comments, and the
# tables pg_dump keeps the data of.  Column order counts (SELECT * shows it).
my $catalog_sql = q{
WITH ext AS (SELECT oid, extconfig FROM pg_extension WHERE extname = 'cloudconn'),
nsp AS (SELECT 'cloudconn'::regnamespace AS oid),
rels AS (SELECT c.oid, c.relname, c.relkind FROM pg_class c, nsp WHERE c.relnamespace = nsp.oid)
SELECT line FROM (
	SELECT 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
	  FROM pg_depend d, ext WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
	UNION ALL
	SELECT 'schema acl ' || coalesce(nspacl::text, '') FROM pg_namespace WHERE nspname = 'cloudconn'
	UNION ALL
	SELECT format('relation %s kind %s persistence %s rls %s/%s options %s acl %s comment %s',
				  c.relname, c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
				  c.reloptions, c.relacl, obj_description(c.oid, 'pg_class'))
	  FROM pg_class c, nsp WHERE c.relnamespace = nsp.oid
	UNION ALL
	SELECT format('column %s.%s #%s %s notnull %s default %s identity %s generated %s acl %s comment %s',
				  r.relname, a.attname,
				  rank() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
				  format_type(a.atttypid, a.atttypmod), a.attnotnull,
				  pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated, a.attacl,
				  col_description(a.attrelid, a.attnum))
	  FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
	  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	UNION ALL
	SELECT format('constraint %s on %s: %s', co.conname, r.relname, pg_get_constraintdef(co.oid))
	  FROM pg_constraint co JOIN rels r ON r.oid = co.conrelid
	UNION ALL
	SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN rels r ON r.oid = i.indrelid
	UNION ALL
	SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN rels r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
	UNION ALL
	SELECT format('policy %s on %s: %s %s to %s using %s check %s', p.polname, r.relname, p.polcmd,
				  CASE WHEN p.polpermissive THEN 'permissive' ELSE 'restrictive' END,
				  p.polroles::regrole[], pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
	  FROM pg_policy p JOIN rels r ON r.oid = p.polrelid
	UNION ALL
	SELECT format('view %s: %s', r.relname, pg_get_viewdef(r.oid)) FROM rels r WHERE r.relkind IN ('v', 'm')
	UNION ALL
	SELECT format('sequence %s: %s %s %s %s %s %s', r.relname, s.seqtypid::regtype, s.seqstart, s.seqincrement,
				  s.seqmax, s.seqmin, s.seqcycle)
	  FROM pg_sequence s JOIN rels r ON r.oid = s.seqrelid
	UNION ALL
	SELECT format('function %s returns %s kind %s volatile %s parallel %s secdef %s strict %s leakproof %s config %s acl %s support %s bin %s comment %s body %s',
				  p.oid::regprocedure, pg_get_function_result(p.oid), p.prokind, p.provolatile, p.proparallel,
				  p.prosecdef, p.proisstrict, p.proleakproof, p.proconfig, p.proacl, p.prosupport, p.probin,
				  obj_description(p.oid, 'pg_proc'), p.prosrc)
	  FROM pg_proc p, nsp WHERE p.pronamespace = nsp.oid
	UNION ALL
	SELECT format('function %s argument names %s defaults %s', p.oid::regprocedure, p.proargnames,
				  pg_get_expr(p.proargdefaults, 0))
	  FROM pg_proc p, nsp WHERE p.pronamespace = nsp.oid
	UNION ALL
	SELECT format('type %s kind %s', t.typname, t.typtype) FROM pg_type t, nsp WHERE t.typnamespace = nsp.oid
	UNION ALL
	SELECT 'dumped data ' || c::regclass::text FROM ext, unnest(ext.extconfig) c
) lines(line) ORDER BY line COLLATE "C";
};
my $upgraded_catalog = $node->safe_psql('upgraded', $catalog_sql);
my $fresh_catalog = $node->safe_psql('fresh', $catalog_sql);
cmp_ok(scalar(split /\n/, $fresh_catalog), '>', 200, 'the catalog description covers the extension');
if ($upgraded_catalog eq $fresh_catalog)
{
	pass('the upgraded catalog equals a fresh install');
}
else
{
	my %fresh = map { $_ => 1 } split /\n/, $fresh_catalog;
	my %upgraded = map { $_ => 1 } split /\n/, $upgraded_catalog;
	diag("only after the upgrade: $_") for grep { !$fresh{$_} } sort keys %upgraded;
	diag("only in a fresh install: $_") for grep { !$upgraded{$_} } sort keys %fresh;
	fail('the upgraded catalog equals a fresh install');
}

$node->stop;
$do->stop;
$aws->stop;
done_testing();
