# Backup and restore (README: Backup, restore and high availability).
# pg_dump -Fc restored into a fresh cluster with the key file copied: every
# table of the extension is intact (entities, grants, connectors with their
# encrypted tokens and external ids, runs, CIs and their links), the tokens
# decrypt (connector_test), and the next run of each connector finds every
# CI unchanged and writes none.  Restored without the key file, or with
# another one: every function that needs a token fails naming
# cloudconn.key_file and what to do, and nothing changes.  A base backup
# carries the key file, which lives in the data directory.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use File::Copy qw(copy);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CloudconnSim;

my $ca = CloudconnSim::test_ca();
my $do = CloudconnSim::start_digitalocean(ca => $ca);
my $aws = CloudconnSim::start_aws(ca => $ca);
my $account = '444455556666';
my $creds = CloudconnSim::aws_credentials();
$do->control('POST', '/_sim/droplets/generate', { count => 60, regions => ['ams3', 'fra1'], seed => 7 });
$aws->control('POST', "/_sim/accounts/$account/regions/eu-west-1/instances/generate", { count => 40, seed => 7 });

my $conf = qq{
cloudconn.digitalocean_api_url = '@{[$do->url]}'
cloudconn.http_max_retries = 1
} . CloudconnSim::aws_conf($aws, $creds);

sub new_cluster
{
	my ($name, $init) = @_;
	return CloudconnSim::cluster($name, $do->ca_file, $conf, $init);
}

my $primary = new_cluster('primary', { allows_streaming => 1 });
sub psql_on { my ($node, $q) = @_; return $node->safe_psql('postgres', $q) }

psql_on($primary, q{
	CREATE ROLE viewer LOGIN; CREATE ROLE ops LOGIN;
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');
	INSERT INTO cloudconn.entity (id, name, parent_id) VALUES (2, 'team a', 1), (3, 'team b', 1);
	SELECT cloudconn.grant_permission('viewer', 2, 'ConfigurationItem:read');
	SELECT cloudconn.grant_permission('ops', 1, 'CloudConnector:manage');
});
my $dc = psql_on($primary, qq{SELECT cloudconn.connector_create(2, 'droplets', 'digitalocean', 'daily', '{}', '$CloudconnSim::TOKEN')});
my $ac = psql_on($primary, qq{SELECT cloudconn.connector_create(3, 'prod', 'aws', 'manual',
	'{"account_id": "$account", "regions": ["eu-west-1"], "resource_types": ["aws_ec2_instance"]}')});
$aws->control('POST', "/_sim/accounts/$account/apply-template", psql_on($primary, "SELECT cloudconn.aws_cloudformation_template($ac)"));
for my $c ($dc, $ac)
{
	my $run = psql_on($primary, "SELECT cloudconn.connector_run($c)");
	is(psql_on($primary, "SELECT status FROM cloudconn.runs WHERE id = $run"), 'succeeded', "connector $c runs on the primary");
}
psql_on($primary, q{
	INSERT INTO cloudconn.application (name, entity_id) VALUES ('billing', 2);
	INSERT INTO cloudconn.ci_application (ci_id, application_id)
		SELECT ci.id, (SELECT a.id FROM cloudconn.application a) FROM cloudconn.configuration_item ci ORDER BY ci.id LIMIT 5;
});

# What must survive: every table of the extension, row by row (ctid-free).
my @tables = qw(entity role_assignment connector run run_error configuration_item application business_process
	ci_application ci_business_process);
sub contents
{
	my ($node) = @_;
	return join("\n", map {
		"$_: " . psql_on($node, "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')
			FROM cloudconn.$_ t")
	} @tables);
}
# A CI row written changes its xmin: the set of (id, xmin) proves none was.
sub ci_versions
{
	my ($node) = @_;
	return psql_on($node, "SELECT count(*) || ' ' || md5(string_agg(id || ':' || xmin, ',' ORDER BY id)) FROM cloudconn.configuration_item");
}
my $before = contents($primary);
like($before, qr/configuration_item: 100 /, 'the primary has its 100 CIs');
like($before, qr/ci_application: 5 /, 'and links');
my $key = slurp_file($primary->data_dir . '/cloudconn.key');
is(length($key), 32, 'the key file is in the data directory');

# ---- pg_dump -Fc, restored into fresh clusters
my $dump = $primary->basedir . '/cmdb.dump';
$primary->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $primary->connstr('postgres') ], 'pg_dump -Fc');
my $globals = $primary->safe_psql('postgres', q{SELECT string_agg(format('CREATE ROLE %I LOGIN;', rolname), ' ')
	FROM pg_roles WHERE rolname IN ('viewer', 'ops')});

sub restored
{
	my ($name, $keyfile) = @_;
	my $node = new_cluster($name);
	if (defined $keyfile)
	{
		$node->stop;
		copy($keyfile, $node->data_dir . '/cloudconn.key') or die "copy: $!";
		chmod 0600, $node->data_dir . '/cloudconn.key';
		$node->start;
	}
	psql_on($node, $globals);
	$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('postgres'), $dump ], "pg_restore into $name");
	return $node;
}

my $restored = restored('restored', $primary->data_dir . '/cloudconn.key');
is(contents($restored), $before, 'with the key file: every table restored row for row');
is(psql_on($restored, "SELECT string_agg(external_id, ',') FROM cloudconn.connector WHERE id = $ac"),
	psql_on($primary, "SELECT string_agg(external_id, ',') FROM cloudconn.connector WHERE id = $ac"), 'the external id too');
is(psql_on($restored, "SET ROLE viewer; SELECT count(*) FROM cloudconn.configuration_item"),
	psql_on($primary, "SET ROLE viewer; SELECT count(*) FROM cloudconn.configuration_item"), 'the grants apply as before');
for my $c ($dc, $ac)
{
	like(psql_on($restored, "SELECT cloudconn.connector_test($c)"), qr/^\{"ok": true/, "connector_test of $c works: its token decrypts");
}
my $versions = ci_versions($restored);
for my $c ($dc, $ac)
{
	my $run = psql_on($restored, "SELECT cloudconn.connector_run($c)");
	is(psql_on($restored, "SELECT status || ' ' || created || ' ' || updated FROM cloudconn.runs WHERE id = $run"),
		'succeeded 0 0', "the next run of $c succeeds and creates or updates nothing");
}
is(ci_versions($restored), $versions, 'no CI row was written by those runs');

# ---- restored without the key file
my $keyless = restored('keyless', undef);
my $keyless_before = contents($keyless);
my $keyless_versions = ci_versions($keyless);
# (the DigitalOcean connector's token; an AWS connector stores none, its
# external id is plain data, and it keeps working)
{
	my ($rc, $out, $err) = $keyless->psql('postgres', "SELECT cloudconn.connector_test($dc)");
	like("$out$err", qr/the token encryption key file \(cloudconn\.key_file\) does not exist.*HINT:  Restore the key file the tokens were encrypted with/s,
		'without the key file: connector_test names cloudconn.key_file and what to do');
	my $run = psql_on($keyless, "SELECT cloudconn.connector_run($dc)");
	like(psql_on($keyless, "SELECT status || ': ' || error FROM cloudconn.runs WHERE id = $run"),
		qr/^failed: the token encryption key file \(cloudconn\.key_file\) does not exist$/, 'and a run fails saying so');
}
is(ci_versions($keyless), $keyless_versions, 'no CI changed');
is(contents($keyless) =~ s/\nrun: [^\n]*//r, $keyless_before =~ s/\nrun: [^\n]*//r, 'nothing but the failed run was written');
like(psql_on($keyless, "SELECT cloudconn.connector_test($ac)"), qr/^\{"ok": true/,
	'an AWS connector, which stores no token, works without the key file');
ok(!-e $keyless->data_dir . '/cloudconn.key', 'and no key file was made up by reading tokens');

# ---- restored with another key file
my $other_key = $keyless->basedir . '/other.key';
open(my $fh, '>', $other_key) or die $!;
binmode $fh;
print $fh pack('C32', map { int(rand(256)) } 1 .. 32);
close $fh;
$keyless->stop;
copy($other_key, $keyless->data_dir . '/cloudconn.key') or die;
chmod 0600, $keyless->data_dir . '/cloudconn.key';
$keyless->start;
{
	my ($rc, $out, $err) = $keyless->psql('postgres', "SELECT cloudconn.connector_test($dc)");
	like("$out$err", qr/could not decrypt the stored token of connector $dc with the key from the token encryption key file \(cloudconn\.key_file\).*HINT:  Restore the key the token was encrypted with/s,
		'with another key file: connector_test names cloudconn.key_file and what to do');
	my $run = psql_on($keyless, "SELECT cloudconn.connector_run($dc)");
	like(psql_on($keyless, "SELECT status || ': ' || error FROM cloudconn.runs WHERE id = $run"),
		qr/^failed: could not decrypt the stored token of connector $dc with the key from the token encryption key file \(cloudconn\.key_file\)$/,
		'and a run fails saying so');
}
is(ci_versions($keyless), $keyless_versions, 'no CI changed');
is(psql_on($keyless, "SELECT count(*) FROM cloudconn.connector WHERE token IS NOT NULL"), '1',
	'the stored token is kept as it was, for the right key to decrypt later');

# ---- a base backup carries the key file
$primary->backup('base');
my $backup_key = $primary->backup_dir . '/base/cloudconn.key';
ok(-f $backup_key, 'pg_basebackup copied cloudconn.key');
is(slurp_file($backup_key), $key, 'byte for byte');
is(sprintf('%o', (stat $backup_key)[2] & 07777), '600', 'readable by the server\'s OS user only');
my $from_base = PostgreSQL::Test::Cluster->new('from_base');
$from_base->init_from_backup($primary, 'base');
# (the test framework copies the backup into place with File::Copy, which
# does not keep modes; pg_basebackup did, as just checked)
chmod 0600, $from_base->data_dir . '/cloudconn.key';
$from_base->start;
like(psql_on($from_base, "SELECT cloudconn.connector_test($dc)"), qr/^\{"ok": true/,
	'a server started from the base backup decrypts the tokens');

$_->stop for ($primary, $restored, $keyless, $from_base);
$do->stop;
$aws->stop;
done_testing();
