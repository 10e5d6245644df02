# A page that fails to parse never changes a CI (issue 12, point 5): real
# pages of each provider (the fuzz seed corpus, test/fuzz/corpus/, made from
# the simulators) are mutated deterministically (cut short, bytes flipped,
# deleted or inserted, markup tokens inserted) and served by the simulators
# in place of the listing's page; after every run whose listing failed, the
# connector's CIs are exactly what they were (nothing created, updated or
# marked missing): a run of one listing fails as a whole, and EC2's failed
# region of two leaves the run partial with nothing of that region missing.  A mutant that still parses is a run like any other: the
# inventory is then restored by a clean run and the comparison starts anew.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CloudconnSim;

my $ca = CloudconnSim::test_ca();
my $do = CloudconnSim::start_digitalocean(ca => $ca);
my $aws = CloudconnSim::start_aws(ca => $ca);
my $azure = CloudconnSim::start_azure(ca => $ca);
my $creds = CloudconnSim::aws_credentials();
my $node = CloudconnSim::cluster('failedpages', $do->ca_file, CloudconnSim::aws_conf($aws, $creds) . qq{
cloudconn.digitalocean_api_url = '@{[$do->url]}'
cloudconn.azure_login_url = '@{[$azure->url]}'
cloudconn.azure_management_url = '@{[$azure->url]}'
cloudconn.http_max_retries = 1
cloudconn.http_timeout_ms = 10000
});
sub sql { $node->safe_psql('postgres', $_[0]) }
sql(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});

my $corpus = "$FindBin::Bin/../fuzz/corpus";
sub slurp
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "$path: $!";
	local $/;
	return scalar <$fh>;
}

# the same mutants on every machine
my $state = 20261203;
sub below
{
	$state = ($state * 1103515245 + 12345) % 2147483648;
	return int($state / 65536) % $_[0];
}
my @tokens = ('<', '>', '</', '"', "'", '{', '}', '[', ']', ':', ',', '&x;', '<!DOCTYPE a>', '<![CDATA[',
	'\\u0000', '\\ud800', "\xff", "\xc3", '1e999999', 'null');
sub mutant
{
	my ($page) = @_;
	for (0 .. below(3))
	{
		my $at = below(length($page) + 1);
		my $op = below(5);
		if ($op == 0) { $page = substr($page, 0, $at) }
		elsif ($op == 1 && length $page) { substr($page, below(length $page), 1) = chr(below(256)) }
		elsif ($op == 2) { substr($page, $at, 1 + below(16)) = '' if $at < length $page }
		else { substr($page, $at, 0) = $tokens[ below(scalar @tokens) ] }
	}
	return $page;
}

sub ci_state
{
	my ($c) = @_;
	return sql(qq{SELECT count(*) || ' ' || md5(coalesce(string_agg(ci::text, ',' ORDER BY id), ''))
		FROM cloudconn.configuration_item ci WHERE source_connector_id = $c});
}

sub run
{
	my ($c) = @_;
	return sql("SELECT cloudconn.connector_run($c)");
}

sub status { sql("SELECT status FROM cloudconn.runs WHERE id = $_[0]") }

# Serve mutants of the seed pages in place of the listing's page ($fault:
# the fault rule's match fields); after each run whose listing failed
# ($listing_failed->(run id)), the CIs must be as they were.
sub mutate_pages
{
	my ($label, $sim, $c, $fault, $listing_failed, @seeds) = @_;
	my @pages = map { slurp("$corpus/$_") } @seeds;
	is(status(run($c)), 'succeeded', "$label: a clean run first");
	my $before = ci_state($c);
	my ($failed, $changed, $parsed) = (0, 0, 0);
	for my $i (1 .. 30)
	{
		my $page = mutant($pages[ below(scalar @pages) ]);
		$sim->faults({ %$fault, kind => 'malformed', times => -1, body_base64 => encode_base64($page, '') });
		my $run = run($c);
		$sim->faults();
		if ($listing_failed->($run))
		{
			$failed++;
			my $after = ci_state($c);
			if ($after ne $before)
			{
				$changed++;
				diag("$label: mutant $i failed its listing but changed the CIs: $before -> $after");
			}
		}
		else
		{
			# it parsed: its content is a listing like another; back to the simulator's inventory
			$parsed++;
			run($c);
			$before = ci_state($c);
		}
	}
	cmp_ok($failed, '>=', 15, "$label: most mutants fail to parse ($failed of 30 failed, $parsed parsed)");
	is($changed, 0, "$label: no page that failed to parse changed a CI");
	ok(ci_state($c) =~ /^[1-9]/, "$label: the connector still has its CIs");
}

# a connector of one listing: the run fails with it
sub run_failed { status($_[0]) eq 'failed' }

# ---- DigitalOcean: the droplets page
my $doc = sql(qq{SELECT cloudconn.connector_create(1, 'do', 'digitalocean', 'manual', '{}', '$CloudconnSim::TOKEN')});
mutate_pages('DigitalOcean', $do, $doc, { page => 1 }, \&run_failed, 'do_droplets/droplets-2.json');

# ---- AWS: EC2 DescribeInstances in one of two regions (the run is partial:
# nothing of the failed region may be marked missing), and S3 ListBuckets
my $account = '444455556666';
for my $region ('eu-west-1', 'us-east-1')
{
	$aws->control('POST', "/_sim/accounts/$account/regions/$region/instances/generate", { count => 5, seed => 1 });
}
$aws->control('POST', "/_sim/accounts/$account/buckets/generate", { count => 4, seed => 1, regions => ['eu-west-1'] });
my $ec2 = sql(qq{SELECT cloudconn.connector_create(1, 'ec2', 'aws', 'manual',
	'{"account_id": "$account", "regions": ["eu-west-1", "us-east-1"], "resource_types": ["aws_ec2_instance"]}')});
$aws->control('POST', "/_sim/accounts/$account/apply-template", sql("SELECT cloudconn.aws_cloudformation_template($ec2)"));
mutate_pages('AWS EC2', $aws, $ec2, { service => 'ec2', action => 'DescribeInstances', region => 'eu-west-1' },
	sub {
		my ($run) = @_;
		return status($run) eq 'partial' && sql(qq{SELECT count(*) FROM cloudconn.run_error WHERE run_id = $run
			AND external_id IS NULL AND message LIKE 'region eu-west-1: EC2 DescribeInstances: %'}) eq '1';
	},
	'aws_ec2_instances/describe-instances-0.xml', 'aws_ec2_instances/describe-instances-2.xml');
my $s3 = sql(qq{SELECT cloudconn.connector_create(1, 's3', 'aws', 'manual',
	'{"account_id": "$account", "resource_types": ["aws_s3_bucket"]}')});
$aws->control('POST', "/_sim/accounts/$account/apply-template", sql("SELECT cloudconn.aws_cloudformation_template($s3)"));
mutate_pages('AWS S3', $aws, $s3, { service => 's3', action => 'ListBuckets' }, \&run_failed,
	'aws_s3_buckets/list-buckets-plain.xml');

# ---- Azure: the VM list
my $sub = '0b1f6471-1bf0-4dda-aec3-111122223333';
$azure->control('POST', '/_sim/subscriptions',
	[ { subscription_id => $sub, display_name => 'Production', roles => { $CloudconnSim::AZURE_CLIENT => 'Reader' } } ]);
$azure->control('POST', "/_sim/subscriptions/$sub/generate", { count => 4, seed => 3 });
my $az = sql(qq{SELECT cloudconn.connector_create(1, 'azure', 'azure', 'manual',
	'{"tenant_id": "$CloudconnSim::AZURE_TENANT", "client_id": "$CloudconnSim::AZURE_CLIENT", "subscription_ids": ["$sub"]}',
	'$CloudconnSim::AZURE_SECRET')});
mutate_pages('Azure', $azure, $az, { list => 'vms' }, \&run_failed, 'azure_lists/vms.json');

done_testing();
