# Rough edges of issue 12 (point 6): a dropped role's grants never apply
# to anyone, not even a role created later with its OID (forced here in
# binary-upgrade mode, as pg_upgrade does); in a LATIN1 database, a
# resource whose text LATIN1 cannot hold is a per-resource error and the
# rest merges (DigitalOcean, AWS, Azure).
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CloudconnSim;

my $ca = CloudconnSim::test_ca();
my $node = CloudconnSim::cluster('edges', "$ca/ca.crt", q{
log_statement = none
log_min_error_statement = panic
});
sub sql { $node->safe_psql('postgres', $_[0]) }

sql(q{CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root'), (2, 'team');
	CREATE ROLE alice; CREATE ROLE bob;
	SELECT cloudconn.grant_permission('alice', 1, 'CloudConnector:read');
	SELECT cloudconn.grant_permission('alice', 2, 'ConfigurationItem:read');
	CREATE DATABASE other;});
my $alice = sql("SELECT 'alice'::regrole::oid");
sub sees { my ($role) = @_; sql("SET ROLE $role; SELECT count(*) FROM cloudconn.entity") }
is(sees('alice'), '2', 'alice sees the entities she was granted');

# ---- a role with grants cannot be dropped from another database ----------
my ($rc, $out, $err) = $node->psql('other', 'DROP ROLE alice');
like($err, qr/role "alice" cannot be dropped because some objects depend on it.*1 object in database postgres/s,
	'DROP ROLE from another database is refused while alice has grants here');
is(sql("SELECT count(*) FROM cloudconn.role_assignment WHERE role::oid = $alice"), '2', 'and her grants are still hers');

# revoking her last grant releases her
sql("SELECT cloudconn.revoke_permission('alice', 2, 'ConfigurationItem:read')");
($rc, $out, $err) = $node->psql('other', 'DROP ROLE alice');
like($err, qr/1 object in database postgres/, 'one grant left: still refused');
sql("SELECT cloudconn.revoke_permission('alice', 1, 'CloudConnector:read')");
is($node->psql('other', 'CREATE ROLE carol; DROP ROLE alice; CREATE ROLE alice'), 0,
	'no grant left: alice may be dropped from anywhere');
$alice = sql("SELECT 'alice'::regrole::oid");

# ---- DROP ROLE and DROP OWNED BY here drop the grants first ---------------
sql(q{SELECT cloudconn.grant_permission('alice', 1, 'CloudConnector:read');
	SELECT cloudconn.grant_permission('bob', 1, 'CloudConnector:read');
	SELECT cloudconn.grant_permission('carol', 2, 'CloudConnector:read');});
sql('DROP ROLE alice');
is(sql("SELECT count(*) FROM cloudconn.role_assignment WHERE role::oid = $alice"), '0',
	'DROP ROLE alice here: her grants went with her');
sql('DROP OWNED BY carol');
is(sql("SELECT count(*) FROM cloudconn.role_assignment WHERE role = 'carol'::regrole"), '0',
	'DROP OWNED BY carol: her grants went');
is($node->psql('other', 'DROP ROLE carol'), 0, 'and she may be dropped from another database');
($rc, $out, $err) = $node->psql('postgres', 'BEGIN; DROP ROLE bob; ROLLBACK');
is(sql("SELECT count(*) FROM cloudconn.role_assignment WHERE role = 'bob'::regrole"), '1',
	'a DROP ROLE rolled back keeps the grants');

# a grant to an OID that names no role is refused, even written directly
($rc, $out, $err) = $node->psql('postgres', "INSERT INTO cloudconn.role_assignment (role, entity_id, permission) VALUES ($alice, 1, 'CloudConnector:read')");
like($err, qr/role with OID $alice does not exist/, 'a bare OID is refused, by the table itself');

# deleting an entity deletes its grants, and releases a role left with none
sql(q{INSERT INTO cloudconn.entity (id, parent_id, name) VALUES (3, 1, 'temp'); CREATE ROLE dave;
	SELECT cloudconn.grant_permission('dave', 3, 'CloudConnector:read'); DELETE FROM cloudconn.entity WHERE id = 3});
is($node->psql('other', 'DROP ROLE dave'), 0, 'a role whose grants went with their entity may be dropped');

# ---- a new role given a dropped role's OID inherits nothing ---------------
# binary-upgrade mode lets a role be created with a chosen OID, as pg_upgrade does
sub restart_binary_upgrade
{
	$node->stop;
	system_or_bail('pg_ctl', '-D', $node->data_dir, '-l', $node->logfile, '-o', '-b', '-w', 'start');
	$node->_update_pid(1);
}
sub restart_normal
{
	$node->stop;
	$node->start;
}
sub create_role_with_oid
{
	my ($name, $oid) = @_;
	restart_binary_upgrade();
	sql("SELECT binary_upgrade_set_next_pg_authid_oid('$oid'::oid); CREATE ROLE $name");
	restart_normal();
	return sql("SELECT '$name'::regrole::oid");
}
is(create_role_with_oid('mallory', $alice), $alice, 'mallory was created with the OID alice had');
is(sql("SELECT count(*) FROM cloudconn.role_assignment WHERE role::oid = $alice"), '0', 'no grant names that OID');
is(sees('mallory'), '0', 'mallory sees nothing of what alice was granted');

# the control: a grant written past the anchor (its trigger disabled), then
# its role dropped from another database, is inherited by the next role
# with its OID: what the anchor prevents
sql(q{CREATE ROLE erin; ALTER TABLE cloudconn.role_assignment DISABLE TRIGGER role_assignment_anchor;
	INSERT INTO cloudconn.role_assignment (role, entity_id, permission) VALUES ('erin', 1, 'CloudConnector:read');
	ALTER TABLE cloudconn.role_assignment ENABLE ALWAYS TRIGGER role_assignment_anchor;});
my $erin = sql("SELECT 'erin'::regrole::oid");
is($node->psql('other', 'DROP ROLE erin'), 0, 'without the anchor, erin is dropped from another database');
is(create_role_with_oid('trudy', $erin), $erin, 'trudy was created with the OID erin had');
is(sees('trudy'), '1', 'and inherits erin\'s grant: the attack the anchor stops');
sql("DELETE FROM cloudconn.role_assignment WHERE role = 'trudy'::regrole");

# ---- LATIN1: a resource whose text LATIN1 cannot hold is its own error ----
# (DigitalOcean's: 002_digitalocean.pl; here AWS, whose pages are XML, and
# Azure, whose VMs keep their tags as JSON)
my $aws = CloudconnSim::start_aws(ca => $ca);
my $azure = CloudconnSim::start_azure(ca => $ca);
my $creds = CloudconnSim::aws_credentials();
$node->append_conf('postgresql.conf', CloudconnSim::aws_conf($aws, $creds) . qq{
cloudconn.azure_login_url = '@{[$azure->url]}'
cloudconn.azure_management_url = '@{[$azure->url]}'
cloudconn.http_max_retries = 1
});
$node->restart;
sql("CREATE DATABASE latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
sub latin1 { $node->safe_psql('latin1', $_[0]) }
latin1(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root')});
sub latin1_run
{
	my ($c) = @_;
	my $id = latin1("SELECT cloudconn.connector_run($c)");
	return latin1("SELECT status || ' ' || discovered || ' ' || created || ' ' || updated || ': '"
		. " || coalesce((SELECT string_agg(message, ' / ') FROM cloudconn.run_errors WHERE run_id = $id), '')"
		. " FROM cloudconn.runs WHERE id = $id");
}

# AWS: an instance named in Japanese among four
my $account = '444455556666';
my $ac = latin1(qq{SELECT cloudconn.connector_create(1, 'aws', 'aws', 'manual',
	'{"account_id": "$account", "regions": ["eu-west-1"], "resource_types": ["aws_ec2_instance"]}')});
$aws->control('POST', "/_sim/accounts/$account/apply-template", latin1("SELECT cloudconn.aws_cloudformation_template($ac)"));
my @ids = @{ $aws->control('POST', "/_sim/accounts/$account/regions/eu-west-1/instances/generate",
	{ count => 4, seed => 1, states => ['running'], untagged_every => 100 })->{instance_ids} // [] };
@ids = map { $_->{instanceId} } @{ $aws->control('GET', "/_sim/accounts/$account/regions/eu-west-1/instances")->{instances} } unless @ids;
$aws->control('PATCH', "/_sim/accounts/$account/regions/eu-west-1/instances/$ids[0]", { tags => { Name => "caf\x{e9}-\x{fc}" } });
is(latin1_run($ac), 'succeeded 4 4 0: ', 'AWS in a LATIN1 database: four instances');
is(latin1("SELECT encode(convert_to(name, 'UTF8'), 'hex') FROM cloudconn.configuration_item WHERE external_id LIKE '%/$ids[0]'"),
	'636166c3a92dc3bc', 'a Name with accents arrives as the same characters');
$aws->control('PATCH', "/_sim/accounts/$account/regions/eu-west-1/instances/$ids[0]", { tags => { Name => "\x{6771}\x{4eac}" } });
$aws->control('PATCH', "/_sim/accounts/$account/regions/eu-west-1/instances/$ids[1]", { tags => { Name => 'renamed' } });
like(latin1_run($ac), qr{^partial 4 0 1: arn:aws:ec2:eu-west-1:$account:instance/$ids[0] has characters that the database's encoding "LATIN1" cannot hold$},
	'a Name LATIN1 cannot hold: that instance is an error naming it; the rename of another merged');
is(latin1("SELECT encode(convert_to(name, 'UTF8'), 'hex') || ' ' || (missing_since IS NULL) FROM cloudconn.configuration_item WHERE external_id LIKE '%/$ids[0]'"),
	'636166c3a92dc3bc true', 'that instance\'s CI is left as it was, not marked missing');
is(latin1("SELECT name FROM cloudconn.configuration_item WHERE external_id LIKE '%/$ids[1]'"), 'renamed', 'the other instance was renamed');

# AWS: a REST-JSON error's message with accents (Lambda's, read as jsonb,
# so already in the database's encoding) is converted once, not twice
latin1(qq{SELECT cloudconn.connector_update($ac, settings => '{"account_id": "$account", "regions": ["eu-west-1"], "resource_types": ["aws_lambda_function"]}')});
$aws->faults({ kind => 'status', status => 403, code => 'AccessDeniedException', service => 'lambda',
	message => "acc\x{e8}s refus\x{e9} \x{e0} la fonction", times => -1 });
is(latin1_run($ac), 'failed 0 0 0: ', 'Lambda denied in a LATIN1 database, its only listing: the run failed');
is(latin1(q{SELECT encode(convert_to(substring(error from 'AccessDeniedException: [^(]*'), 'UTF8'), 'hex')
	FROM cloudconn.runs WHERE id = (SELECT max(id) FROM cloudconn.run)}),
	unpack('H*', "AccessDeniedException: acc\xc3\xa8s refus\xc3\xa9 \xc3\xa0 la fonction "),
	'its message keeps its accents (as the same characters)');
$aws->faults();

# Azure: a VM tagged in Japanese among the subscription's
my $sub = '0a1b2c3d-1111-4aaa-8bbb-000000000001';
$azure->control('POST', '/_sim/subscriptions', [ { subscription_id => $sub, display_name => 'Production',
	roles => { $CloudconnSim::AZURE_CLIENT => 'Reader' } } ]);
$azure->control('POST', "/_sim/subscriptions/$sub/generate", { count => 5, seed => 1, power_states => ['running'] });
my @vms = @{ $azure->control('GET', "/_sim/subscriptions/$sub/vms")->{vms} };
my $zc = latin1(qq{SELECT cloudconn.connector_create(1, 'azure', 'azure', 'manual',
	'{"tenant_id": "$CloudconnSim::AZURE_TENANT", "client_id": "$CloudconnSim::AZURE_CLIENT"}', '$CloudconnSim::AZURE_SECRET')});
$azure->control('PATCH', "/_sim/subscriptions/$sub/vms/$vms[0]{name}", { tags => { team => "caf\x{e9}" } });
is(latin1_run($zc), 'succeeded 5 5 0: ', 'Azure in a LATIN1 database: five VMs');
$azure->control('PATCH', "/_sim/subscriptions/$sub/vms/$vms[0]{name}", { tags => { team => "\x{6771}\x{4eac}" } });
$azure->control('PATCH', "/_sim/subscriptions/$sub/vms/$vms[1]{name}", { tags => { team => 'moved' } });
like(latin1_run($zc), qr{^partial 5 0 1: \S+ has characters that the database's encoding "LATIN1" cannot hold$},
	'a tag LATIN1 cannot hold: that VM is an error; the other VM\'s change merged');
like(latin1("SELECT string_agg(external_id, ' ') FROM cloudconn.run_errors WHERE run_id = (SELECT max(id) FROM cloudconn.run)"),
	qr/\Q$vms[0]{name}\E$/i, 'the error names that VM');

# (issue 12, point 7) Azure's connection reset, retried
$azure->control('DELETE', '/_sim/log');
$azure->faults({ kind => 'reset', times => 1 });
like(latin1_run($zc), qr/^partial 5 0 0: /, 'a run whose first request\'s connection is reset: retried (the same VM error only)');
my @azlog = @{ $azure->log_entries };
is(join(' ', map { $_->{status} // 'reset' } @azlog[0, 1]), 'reset 200', 'the reset request was sent again and answered');
is($azlog[0]{path}, $azlog[1]{path}, 'the same request');
$aws->stop;
$azure->stop;

done_testing();
