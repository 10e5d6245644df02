# AWS end to end against the simulator (test/sim/aws_sim.py), which verifies
# SigV4 on every request and enforces the two-hop chain with the trust
# policy of the template aws_cloudformation_template() produced.  The
# connectors here discover EC2 instances only (settings.resource_types);
# the other AWS types are 012_aws_types.pl's.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(gettimeofday tv_interval usleep);
use IO::Socket::INET;
use CloudconnSim;

my $sim = CloudconnSim::start_aws();
my $account = '444455556666';
my $creds = PostgreSQL::Test::Utils::tempdir('aws') . '/credentials';
open(my $fh, '>', $creds) or die $!;
print $fh "[default]\naws_access_key_id = AKIASIMULATORCALLER2\naws_secret_access_key = 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\n";
print $fh "[unprivileged]\naws_access_key_id = AKIASIMULATOROTHER23\naws_secret_access_key = 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\n";
close $fh;
chmod 0600, $creds;

my $node = CloudconnSim::cluster('aws', $sim->ca_file, qq{
cloudconn.aws_credentials_file = '$creds'
cloudconn.aws_sts_endpoint = '@{[$sim->url]}'
cloudconn.aws_ec2_endpoint = '@{[$sim->url]}/'
cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole'
cloudconn.http_max_retries = 1
log_min_messages = debug5
log_statement = none
log_min_error_statement = panic
});
sub sql { $node->safe_psql('postgres', $_[0]) }

sql(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});
my $c = sql(qq{SELECT cloudconn.connector_create(1, 'prod', 'aws', 'manual',
	'{"account_id": "$account", "regions": ["eu-west-1", "us-east-1", "ap-southeast-2"], "resource_types": ["aws_ec2_instance"]}')});
my $external_id = sql("SELECT external_id FROM cloudconn.connector WHERE id = $c");

# before the customer applied the template: hop 2 is denied, and says why
like(sql("SELECT cloudconn.connector_test($c)"),
	qr/"ok": false, "error": "hop 2 \(AssumeRole into arn:aws:iam::$account:role\/AnzenCustomerDiscoveryRole\) was denied: the role may not exist, the CloudFormation stack/,
	'without the customer role: hop 2 denied, with what to check');

$sim->control('POST', "/_sim/accounts/$account/apply-template", sql("SELECT cloudconn.aws_cloudformation_template($c)"));
is(sql("SELECT cloudconn.connector_test($c)"),
	qq({"ok": true, "caller_source": "static", "resource_types": {"aws_ec2_instance": {"ok": true}}, "assumed_role_arn": "arn:aws:sts::$account:assumed-role/AnzenCustomerDiscoveryRole/cloudconn-connector-$c"}),
	'with the template applied: the exact assumed-role ARN, EC2 instances may be listed, and where the caller\'s keys came from');

# another connector for the same account has another external id: denied
my $other = sql(qq{SELECT cloudconn.connector_create(1, 'other', 'aws', 'manual', '{"account_id": "$account", "resource_types": ["aws_ec2_instance"]}')});
like(sql("SELECT cloudconn.connector_test($other)"), qr/"ok": false, "error": "hop 2 .* external id may not match/,
	'a wrong external id: denied at hop 2');
unlike(sql("SELECT cloudconn.connector_test($other)"), qr/\Q$external_id\E/, 'the message never shows an external id');

# what AWS says is quoted bounded and without control characters; cut
# short in the middle of the external id, it is not shown at all
$sim->faults({ kind => 'status', status => 400, code => 'ValidationError', service => 'sts', principal_kind => 'discovery',
	message => "first line\nsecond line " . ('z' x 600), times => 1 });
my $quoted = sql("SELECT cloudconn.connector_test($c)->>'error'");
like($quoted, qr/^hop 2 \(AssumeRole into \S+\) failed: HTTP 400 ValidationError: first line second line z+\.\.\.$/,
	'an AWS message is quoted on one line');
cmp_ok(length($quoted), '<', 700, 'and cut short (' . length($quoted) . ' characters)');
$sim->faults({ kind => 'status', status => 400, code => 'ValidationError', service => 'sts', principal_kind => 'discovery',
	message => ('z' x 500) . $external_id, times => 1 });
like(sql("SELECT cloudconn.connector_test($c)->>'error'"), qr/quoted the external id and is not shown/,
	'a message cut short inside the external id is not shown');
$sim->faults();

# a caller without the right to assume the discovery role: hop 1, with what to check
$node->append_conf('postgresql.conf', "cloudconn.aws_profile = 'unprivileged'");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.aws_profile') = 'unprivileged'") or die;
like(sql("SELECT cloudconn.connector_test($c)"),
	qr/"ok": false, "error": "hop 1 \(AssumeRole into the platform's discovery role arn:aws:iam::111122223333:role\/AnzenDiscoveryRole\) failed with AccessDenied/,
	'a caller without rights: hop 1, naming the discovery role');
$node->append_conf('postgresql.conf', "cloudconn.aws_profile = 'default'");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.aws_profile') = 'default'") or die;

# three regions of several pages each (EC2 hands out a nextToken with every
# full page of 1000), some terminated instances
$sim->control('POST', "/_sim/accounts/$account/regions/eu-west-1/instances/generate", { count => 2300, seed => 1, states => ['running'] });
$sim->control('POST', "/_sim/accounts/$account/regions/us-east-1/instances/generate", { count => 1040, seed => 2, states => ['running', 'stopped'] });
$sim->control('POST', "/_sim/accounts/$account/regions/ap-southeast-2/instances/generate", { count => 1020, seed => 3, states => ['running', 'terminated'] });
$sim->control('DELETE', '/_sim/log');
my $run = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, discovered, created, unchanged FROM cloudconn.runs WHERE id = $run"), 'succeeded|4360|3850|510',
	'a run over three regions: terminated instances are not created');
is(sql(qq{SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c
	AND external_id ~ '^arn:aws:ec2:(eu-west-1|us-east-1|ap-southeast-2):$account:instance/i-[0-9a-f]+\$'
	AND ci_type = 'aws_ec2_instance'}), '3850', 'CIs carry instance ARNs');

my $log = $sim->log_entries;
is(scalar(grep { !$_->{signature_valid} } @$log), 0, 'every request was signed and verified');
is(scalar(grep { $_->{external_id_present} && $_->{service} ne 'sts' } @$log), 0, 'the external id went only to STS');
my %pages;
$pages{ $_->{region} }++ for grep { ($_->{action} // '') eq 'DescribeInstances' && ($_->{status} // 0) == 200 } @$log;
is(join(' ', map { "$_:" . ($pages{$_} // 0) } sort keys %pages), 'ap-southeast-2:2 eu-west-1:3 us-east-1:2',
	'each region took several pages');

my $rerun = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, created, updated, unchanged FROM cloudconn.runs WHERE id = $rerun"), 'succeeded|0|0|4360',
	'an unchanged re-run changes nothing');

# regions are listed concurrently, never more at once than the bound: with
# a slow simulator, the most requests it saw at once is the bound
sub set_parallel_regions
{
	my ($n) = @_;
	sql("ALTER SYSTEM SET cloudconn.aws_max_parallel_regions = $n");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.aws_max_parallel_regions') = '$n'") or die;
}
$sim->config(latency_ms => 300);
for my $bound (2, 1)
{
	set_parallel_regions($bound);
	$sim->control('DELETE', '/_sim/stats');
	my $bounded = sql("SELECT cloudconn.connector_run($c)");
	is(sql("SELECT status, unchanged, finished_at - started_at > interval '0.6 s' FROM cloudconn.runs WHERE id = $bounded")
		. ' max_in_flight ' . $sim->control('GET', '/_sim/stats')->{max_in_flight},
		"succeeded|4360|t max_in_flight $bound", "aws_max_parallel_regions = $bound: that many regions listed at once");
}
$sim->config(latency_ms => 0);
sql("ALTER SYSTEM RESET cloudconn.aws_max_parallel_regions");
$node->reload;

# the delta: a rename, a removal and an addition; an unchanged run writes nothing
my $insts = $sim->control('GET', "/_sim/accounts/$account/regions/ap-southeast-2/instances")->{instances};
my ($keep, $gone) = map { $_->{instanceId} } grep { $_->{instanceState}{name} ne 'terminated' } @$insts;
$sim->control('PATCH', "/_sim/accounts/$account/regions/ap-southeast-2/instances/$keep", { tags => { Name => 'renamed-box' } });
$sim->control('DELETE', "/_sim/accounts/$account/regions/ap-southeast-2/instances/$gone");
$sim->control('POST', "/_sim/accounts/$account/regions/ap-southeast-2/instances/add", { state => 'running' });
my $delta = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, discovered, created, updated, unchanged FROM cloudconn.runs WHERE id = $delta"), 'succeeded|4360|1|1|4358',
	'after a rename, a removal and an addition: created 1, updated 1');
is(sql("SELECT name FROM cloudconn.configuration_item WHERE external_id LIKE '%/$keep'"), 'renamed-box', 'the Name tag is the CI name');
is(sql("SELECT missing_since IS NOT NULL FROM cloudconn.configuration_item WHERE external_id LIKE '%/$gone'"), 't',
	'the removed instance stays, marked missing');
$sim->control('POST', "/_sim/accounts/$account/regions/ap-southeast-2/instances/add", { instanceId => $gone, state => 'running' });
my $back = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT missing_since IS NULL FROM cloudconn.configuration_item WHERE external_id LIKE '%/$gone'"), 't',
	'missing_since is cleared when the instance comes back');
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'") or die;
my $stats = "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relid = 'cloudconn.configuration_item'::regclass";
my $before = sql($stats);
my $same = sql("SELECT cloudconn.connector_run($c)");
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'") or die;
is(sql("SELECT status, created, updated FROM cloudconn.runs WHERE id = $same") . ' ' . sql($stats), "succeeded|0|0 $before",
	'an unchanged run writes no row of configuration_item');

# throttling is retried; credentials that expire mid-run are renewed
$sim->faults({ kind => 'throttle', service => 'ec2', action => 'DescribeInstances', times => 1 },
	{ kind => 'expire_credentials', which => 'customer', service => 'ec2', action => 'DescribeInstances', skip => 2, times => 1 });
$sim->control('DELETE', '/_sim/log');
my $bumpy = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, unchanged FROM cloudconn.runs WHERE id = $bumpy"), 'succeeded|4361',
	'a throttled request and expired credentials: the run still succeeds');
my @errors = map { $_->{error_code} // $_->{code} // '' } grep { ($_->{status} // 200) != 200 } @{ $sim->log_entries };
like(join(',', @errors), qr/RequestLimitExceeded/, 'the simulator throttled once');
like(join(',', @errors), qr/RequestExpired/, 'and the credentials expired during the run');
cmp_ok(scalar(grep { ($_->{action} // '') eq 'AssumeRole' } @{ $sim->log_entries }), '>=', 4,
	'the chain was assumed again');

# a failing region: partial, the others merged, nothing in it marked missing
# (the region's instances are gone too: only its failure keeps them from
# being marked missing)
$sim->control('POST', "/_sim/accounts/$account/regions/us-east-1/instances", []);
$sim->faults({ kind => 'auth_failure', service => 'ec2', region => 'us-east-1', times => -1 });
my $partial = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status FROM cloudconn.runs WHERE id = $partial"), 'partial', 'a failing region makes the run partial');
like(sql("SELECT message FROM cloudconn.run_errors WHERE run_id = $partial"), qr/^region us-east-1: EC2 DescribeInstances failed: HTTP 401 AuthFailure/,
	'the region error is recorded');
is(sql(qq{SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c AND missing_since IS NOT NULL
	AND attributes->>'region' = 'us-east-1'}),
	'0', 'nothing in the failed region was marked missing');

# a page cut short is retried; one that is not XML, or that has a DTD,
# fails its region (partial), never read as an empty listing
$sim->faults();
$sim->control('POST', "/_sim/accounts/$account/regions/us-east-1/instances/generate", { count => 1040, seed => 2, states => ['running', 'stopped'] });
$sim->faults({ kind => 'truncate', service => 'ec2', action => 'DescribeInstances', region => 'eu-west-1', times => 1 });
$sim->control('DELETE', '/_sim/stats');
my $cut = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, discovered FROM cloudconn.runs WHERE id = $cut") . ' faults ' . ($sim->control('GET', '/_sim/stats')->{faults_applied}{truncate} // 0),
	'succeeded|4361 faults 1', 'a page cut short is fetched again');
$sim->faults({ kind => 'malformed', service => 'ec2', action => 'DescribeInstances', region => 'us-east-1', times => -1 },
	{ kind => 'malformed', service => 'ec2', action => 'DescribeInstances', region => 'ap-southeast-2', times => -1,
	  body => '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>' });
# a run's status, then its errors in order
sub status_and_errors
{
	my ($run) = @_;
	return sql("SELECT status FROM cloudconn.runs WHERE id = $run") . ' '
	  . sql("SELECT string_agg(message, ' / ' ORDER BY message) FROM cloudconn.run_errors WHERE run_id = $run");
}
my $bad = sql("SELECT cloudconn.connector_run($c)");
is(status_and_errors($bad),
	'partial region ap-southeast-2: EC2 DescribeInstances: the response has a DTD, which AWS never sends / '
	. 'region us-east-1: EC2 DescribeInstances: the response is not well-formed XML',
	'malformed pages and a DTD fail their regions');
is(sql(qq{SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c AND missing_since IS NOT NULL
	AND attributes->>'region' IN ('us-east-1', 'ap-southeast-2')}), '0', 'nothing in those regions was marked missing');

# pages beyond what AWS sends are refused before they cost memory or time:
# more instances than MaxResults, and a start tag of thousands of attributes
# (whose values hold '>', which ends no tag: libxml2 would check them for
# duplicates in quadratic time)
my $wrap = sub { '<?xml version="1.0"?><DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
	. $_[0] . '</DescribeInstancesResponse>' };
$sim->faults({ kind => 'malformed', service => 'ec2', action => 'DescribeInstances', region => 'us-east-1', times => -1,
	  body => $wrap->('<reservationSet><item><instancesSet>' . ('<item/>' x 1001) . '</instancesSet></item></reservationSet>') },
	{ kind => 'malformed', service => 'ec2', action => 'DescribeInstances', region => 'ap-southeast-2', times => -1,
	  body => $wrap->('<reservationSet ' . join(' ', map { "a$_=\">\"" } 1 .. 20000) . '/>') });
my $huge = sql("SELECT cloudconn.connector_run($c)");
is(status_and_errors($huge),
	'partial region ap-southeast-2: EC2 DescribeInstances: the response has a tag longer than 4096 bytes / '
	. 'region us-east-1: EC2 DescribeInstances: the page lists more instances than the 1000 asked for, or an instance with more than 200 tags',
	'a page of 1001 instances and a tag of 20000 attributes are refused');
$sim->faults();

# no regions in the settings: the account's enabled regions, from DescribeRegions
my $whole = '777788889999';
my $wc = sql(qq{SELECT cloudconn.connector_create(1, 'whole account', 'aws', 'manual', '{"account_id": "$whole", "resource_types": ["aws_ec2_instance"]}')});
$sim->control('POST', "/_sim/accounts/$whole/apply-template", sql("SELECT cloudconn.aws_cloudformation_template($wc)"));
$sim->control('POST', "/_sim/accounts/$whole/regions", { enabled => ['us-east-1', 'eu-north-1', 'af-south-1'] });
$sim->control('POST', "/_sim/accounts/$whole/regions/eu-north-1/instances/generate", { count => 5, seed => 7 });
$sim->control('POST', "/_sim/accounts/$whole/regions/af-south-1/instances/generate", { count => 3, seed => 8 });
$sim->control('DELETE', '/_sim/log');
my $wrun = sql("SELECT cloudconn.connector_run($wc)");
is(sql("SELECT status, discovered, created FROM cloudconn.runs WHERE id = $wrun") . ' '
	. sql("SELECT string_agg(DISTINCT attributes->>'region', ',') FROM cloudconn.configuration_item WHERE source_connector_id = $wc"),
	'succeeded|8|8 af-south-1,eu-north-1', 'without regions: every enabled region, opt-in ones included');
is(join(',', sort map { $_->{region} } grep { ($_->{action} // '') eq 'DescribeInstances' } @{ $sim->log_entries }),
	'af-south-1,eu-north-1,us-east-1', 'DescribeInstances went to exactly the regions DescribeRegions listed');

# a run waiting on slow regions (their second pages) holds no xid and no
# snapshot, even where transactions are REPEATABLE READ by default, and
# stops at once when its worker is told to
$sim->faults({ kind => 'slow', service => 'ec2', action => 'DescribeInstances', page => 2, delay_ms => 30000, times => -1 });
$sim->control('DELETE', '/_sim/stats');
sql("ALTER DATABASE postgres SET default_transaction_isolation = 'repeatable read'");
my $stuck = sql("SELECT cloudconn.connector_run($c, wait => false)");
# (the first pages may be seen in flight too: wait for them to be fetched)
for (1 .. 200)
{
	last if $sim->control('GET', '/_sim/stats')->{in_flight} >= 3
		&& sql("SELECT pages_fetched FROM cloudconn.runs WHERE id = $stuck") == 3;
	usleep(50_000);
}
is($sim->control('GET', '/_sim/stats')->{in_flight}, 3, 'three regions wait on the simulator at once');
is(sql("SELECT pages_fetched FROM cloudconn.runs WHERE id = $stuck"), 3, 'after a page of each region');
is(sql("SELECT coalesce(backend_xid::text, 'none') || ' ' || coalesce(backend_xmin::text, 'none')"
		. "  FROM pg_stat_activity WHERE backend_type = 'cloudconn run'"),
	'none none', 'the listing run holds no xid and no snapshot: VACUUM is not held back');
sql("ALTER DATABASE postgres RESET default_transaction_isolation");
my $t0 = [gettimeofday];
sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'cloudconn run'");
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'") or die;
my $took = tv_interval($t0);
cmp_ok($took, '<', 2, "the worker left its waits when terminated ($took s)");
$sim->faults();
like(sql("SELECT status FROM cloudconn.runs WHERE id = " . sql("SELECT cloudconn.connector_run($c)")), qr/^succeeded$/,
	'the next run succeeds');
like(sql("SELECT status || ': ' || error FROM cloudconn.run WHERE id = $stuck"), qr/^failed: the run was interrupted/,
	'and the terminated one is marked failed as interrupted');

# ---- messages name no superuser-only setting: not an endpoint's host or
# port, nor the credentials file's path (the server log gets them)
my $sim_port = $sim->{port};
my $free = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1) or die $!;
my $free_port = $free->sockport;
close $free;
my (undef, $out, $err) = $node->psql('postgres', "SET cloudconn.aws_sts_endpoint = 'https://127.0.0.1:$free_port';"
	. " SET client_min_messages = debug5; SELECT cloudconn.connector_test($c)");
like($out, qr/"ok": false, "error": "hop 1 \(AssumeRole into \S+\): could not reach AWS STS: could not connect to the AWS STS endpoint for POST \/: Connection refused"/,
	'STS unreachable: connector_test names the AWS STS endpoint');
unlike("$out\n$err", qr/127\.0\.0\.1|:$free_port\b/, 'and not its host or port, nor does any message sent to the session');
sub set_conf
{
	my ($name, $value) = @_;
	sql("ALTER SYSTEM SET $name = '$value'; SELECT pg_reload_conf()");
	$node->poll_query_until('postgres', "SELECT current_setting('$name') = '$value'") or die 'reload not seen';
}
set_conf('cloudconn.aws_ec2_endpoint', "https://127.0.0.1:$free_port/");
my $unreachable = sql("SELECT cloudconn.connector_run($c)");
like(sql("SELECT status || ': ' || error FROM cloudconn.runs WHERE id = $unreachable"),
	qr/^failed: region [a-z0-9-]+: could not connect to the AWS EC2 endpoint for POST \/: Connection refused$/,
	'EC2 unreachable: the run fails, naming the AWS EC2 endpoint');
sql("ALTER SYSTEM RESET cloudconn.aws_ec2_endpoint; SELECT pg_reload_conf()");
$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.aws_ec2_endpoint') = '@{[$sim->url]}/'") or die 'reload not seen';
set_conf('cloudconn.aws_credentials_file', "$creds.missing");
like(sql("SELECT cloudconn.connector_test($c)"),
	qr/"error": "no AWS credentials for the platform caller: .* the shared credentials file \(cloudconn\.aws_credentials_file\) could not be read"/,
	'a missing credentials file: named by its setting');
set_conf('cloudconn.aws_profile', 'nobody');
sql("ALTER SYSTEM RESET cloudconn.aws_credentials_file; SELECT pg_reload_conf()");
$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.aws_credentials_file') = '$creds'") or die 'reload not seen';
like(sql("SELECT cloudconn.connector_test($c)"),
	qr/"error": "no AWS credentials for the platform caller in the profile cloudconn\.aws_profile of the shared credentials file \(cloudconn\.aws_credentials_file\)"/,
	'a missing profile: named by its setting');
sql("ALTER SYSTEM RESET cloudconn.aws_profile; SELECT pg_reload_conf()");
$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.aws_profile') = 'default'") or die 'reload not seen';
like(sql("SELECT status FROM cloudconn.runs WHERE id = " . sql("SELECT cloudconn.connector_run($c)")), qr/^succeeded$/,
	'with the settings back, a run succeeds');
my $seen = sql(q{SELECT coalesce(string_agg(error, ' / '), '') FROM cloudconn.runs})
  . sql(q{SELECT coalesce(string_agg(message, ' / '), '') FROM cloudconn.run_errors});
unlike($seen, qr/127\.0\.0\.1|:$sim_port\b|:$free_port\b|\Q$creds\E/, 'no run error names an endpoint\'s host or port, or the credentials file');

my $issued = $sim->control('GET', '/_sim/issued-secrets');
$node->stop;
my $server_log = slurp_file($node->logfile);
my @session_secrets = (@{ $issued->{secret_access_keys} }, @{ $issued->{session_tokens} });
cmp_ok(scalar(@session_secrets), '>=', 8, 'the simulator issued temporary credentials at both hops');
is(scalar(grep { index($server_log, $_) >= 0 } @session_secrets), 0,
	'no temporary secret access key or session token is in the server log (debug5)');
unlike($server_log, qr/\Q$external_id\E/, 'the external id is not in the server log (debug5)');
unlike($server_log, qr/wJalrXUtnFEMI\/K7MDENG\/bPxRfiCYSIMCALLER1/, 'nor the caller secret');
like($server_log, qr/LOG:  cloudconn: POST https:\/\/127\.0\.0\.1:$free_port\/ \(the AWS STS endpoint\) failed after 2 attempts/,
	'the server log names the endpoint a request failed to reach');
like($server_log, qr/LOG:  cloudconn: could not read the AWS shared credentials file "\Q$creds\E\.missing": No such file or directory/,
	'and the credentials file that could not be read');
$sim->stop;
done_testing();
