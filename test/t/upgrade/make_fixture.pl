# Makes the 0.1.0 fixture of test/t/007_upgrade.pl: a database filled by the
# real cloudconn 0.1.0 (commit f0af04a), dumped as data, with the key its
# tokens are encrypted under.  Run with the 0.1.0 extension installed:
#   PERL5LIB=$(pg_config --pkglibdir)/pgxs/src/test/perl:test/t \
#     perl test/t/upgrade/make_fixture.pl test/t/upgrade
# The simulators' data comes from fixed seeds (the same ones 007_upgrade.pl
# uses), so the CIs in the fixture are what those resources map to.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use CloudconnSim;

my $outdir = shift or die "usage: make_fixture.pl OUTDIR";
my $ca = CloudconnSim::test_ca();
my $do = CloudconnSim::start_digitalocean(ca => $ca);
my $aws = CloudconnSim::start_aws(ca => $ca);
my $account = '444455556666';
my $creds = PostgreSQL::Test::Utils::tempdir('aws') . '/credentials';
open(my $fh, '>', $creds) or die $!;
print $fh "[default]\naws_access_key_id = AKIASIMULATORCALLER2\naws_secret_access_key = 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\n";
close $fh;
chmod 0600, $creds;

my $node = CloudconnSim::cluster('fixture', $do->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$do->url]}'
cloudconn.aws_credentials_file = '$creds'
cloudconn.aws_sts_endpoint = '@{[$aws->url]}'
cloudconn.aws_ec2_endpoint = '@{[$aws->url]}/'
cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole'
cloudconn.scheduler_enabled = off
});
sub sql { $node->safe_psql('postgres', $_[0]) }

# the simulators' resources (007_upgrade.pl makes the same)
$do->control('POST', '/_sim/droplets/generate', { count => 450, regions => [ 'ams3', 'nyc1', 'fra1' ], seed => 7 });
$aws->control('POST', "/_sim/accounts/$account/regions/eu-west-1/instances/generate", { count => 1200, seed => 1, states => ['running', 'stopped'] });
$aws->control('POST', "/_sim/accounts/$account/regions/us-east-1/instances/generate", { count => 300, seed => 2, states => ['running', 'terminated'] });

my $token = $CloudconnSim::TOKEN;
sql(qq{
	CREATE EXTENSION cloudconn VERSION '0.1.0' CASCADE;
	CREATE ROLE upgrade_admin;
	CREATE ROLE upgrade_reader;
	CREATE ROLE upgrade_group;
	CREATE ROLE upgrade_member IN ROLE upgrade_group;
	INSERT INTO cloudconn.entity (id, parent_id, name) VALUES (1, NULL, 'root'), (2, 1, 'eu'), (3, 2, 'eu-team');
	SELECT setval(pg_get_serial_sequence('cloudconn.entity', 'id'), 10);
	SELECT cloudconn.grant_permission('upgrade_admin', 1, 'CloudConnector:manage');
	SELECT cloudconn.grant_permission('upgrade_admin', 1, 'ConfigurationItem:manage');
	SELECT cloudconn.grant_permission('upgrade_reader', 2, 'ConfigurationItem:read');
	SELECT cloudconn.grant_permission('upgrade_group', 3, 'CloudConnector:read');
});
my $c_do = sql(qq{SET ROLE upgrade_admin; SELECT cloudconn.connector_create(2, 'droplets', 'digitalocean', 'daily', '{}', '$token')});
my $c_ams = sql(qq{SET ROLE upgrade_admin; SELECT cloudconn.connector_create(3, 'amsterdam', 'digitalocean', 'manual', '{"region": "ams3"}', '$token')});
my $c_aws = sql(qq{SET ROLE upgrade_admin; SELECT cloudconn.connector_create(1, 'prod aws', 'aws', 'daily',
	'{"account_id": "$account", "regions": ["eu-west-1", "us-east-1"]}')});
my $c_gone = sql(qq{SET ROLE upgrade_admin; SELECT cloudconn.connector_create(1, 'gone', 'digitalocean', 'manual', '{}', '$token')});
$aws->control('POST', "/_sim/accounts/$account/apply-template", sql("SELECT cloudconn.aws_cloudformation_template($c_aws)"));

sub run_ok
{
	my ($id, $want) = @_;
	my $run = sql("SELECT cloudconn.connector_run($id)");
	my $status = sql("SELECT status FROM cloudconn.run WHERE id = $run");
	die "run of connector $id: $status" unless $status eq $want;
}
run_ok($c_do, 'succeeded');
run_ok($c_ams, 'succeeded');
run_ok($c_aws, 'succeeded');
run_ok($c_gone, 'succeeded');
# a partial run (one droplet with a malformed address), then a clean one
$do->faults({ kind => 'bad_droplet', field => 'ip', page => 1, index => 0, times => 1 });
run_ok($c_do, 'partial');
run_ok($c_do, 'succeeded');
# a failed run
$do->faults({ kind => 'status', status => 500, page => 2, times => -1 });
run_ok($c_ams, 'failed');
$do->control('DELETE', '/_sim/faults');
sql("SET ROLE upgrade_admin; SELECT cloudconn.connector_delete($c_gone)");

# what users did with the CIs: edits, moves, links, a CI of their own
sql(q{
	SET ROLE upgrade_admin;
	UPDATE cloudconn.configuration_item SET description = 'web front end'
	 WHERE id IN (SELECT id FROM cloudconn.configuration_item WHERE ci_type = 'digitalocean_droplet' ORDER BY id LIMIT 5);
	UPDATE cloudconn.configuration_item SET entity_id = 3
	 WHERE id IN (SELECT id FROM cloudconn.configuration_item WHERE ci_type = 'aws_ec2_instance' ORDER BY id LIMIT 3);
	INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name, description) VALUES (2, 'server', 'on-prem-db', 'in the basement');
	INSERT INTO cloudconn.application (entity_id, name, description) VALUES (2, 'Shop', 'the web shop');
	INSERT INTO cloudconn.business_process (entity_id, name) VALUES (1, 'Order to cash');
	INSERT INTO cloudconn.ci_application SELECT ci.id, a.id FROM cloudconn.configuration_item ci, cloudconn.application a
	 WHERE ci.description = 'web front end';
	INSERT INTO cloudconn.ci_business_process SELECT ci.id, b.id FROM cloudconn.configuration_item ci, cloudconn.business_process b
	 WHERE ci.name = 'on-prem-db';
});

my $dump = `pg_dump --data-only --schema=cloudconn --no-owner --no-privileges -d '@{[$node->connstr('postgres')]}'`;
die "pg_dump failed" if $?;
open(my $out, '>', "$outdir/fixture-0.1.0.sql") or die $!;
print $out "-- cloudconn 0.1.0 data made by test/t/upgrade/make_fixture.pl (see there); load into\n";
print $out "-- CREATE EXTENSION cloudconn VERSION '0.1.0' after creating the roles upgrade_admin,\n";
print $out "-- upgrade_reader, upgrade_group and upgrade_member (IN ROLE upgrade_group).\n";
print $out $dump;
close $out;
system('cp', $node->data_dir . '/cloudconn.key', "$outdir/fixture-0.1.0.key") == 0 or die;
print "connectors: do=$c_do ams=$c_ams aws=$c_aws gone=$c_gone\n";
$node->stop;
$do->stop;
$aws->stop;
