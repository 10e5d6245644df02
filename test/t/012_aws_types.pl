# AWS resource types besides EC2 instances, end to end against the
# simulator (test/sim/aws_sim.py), which verifies SigV4 per service and
# evaluates the applied template's IAM policies: VPCs, RDS DB instances, S3
# buckets and Lambda functions, each created with its ARN and mapping, over
# several pages, as a delta, under the least-privilege template and
# without one of its actions; a Lambda function's environment never kept;
# each service's throttling retried.  Then what the registry promises
# (issue 11): a disabled type's CIs left as they are, a failing (type,
# scope) marking nothing of it missing while another type of its region
# merges, and counts per type.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use File::Find;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use CloudconnSim;

my $sim = CloudconnSim::start_aws();
my $account = '444455556666';
my $creds = CloudconnSim::aws_credentials();
# work_mem at its least: the kept pages spill into temporary files, which
# the environment test searches
my $node = CloudconnSim::cluster('awstypes', $sim->ca_file, CloudconnSim::aws_conf($sim, $creds) . q{
cloudconn.http_max_retries = 2
work_mem = 64
log_temp_files = 0
log_min_messages = debug5
log_statement = none
log_min_error_statement = panic
});
sub sql { $node->safe_psql('postgres', $_[0]) }
my $json = JSON::PP->new->canonical;
my $acct = "/_sim/accounts/$account";

sql(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});
my $c = sql(qq{SELECT cloudconn.connector_create(1, 'prod', 'aws', 'manual',
	'{"account_id": "$account", "regions": ["eu-west-1", "us-east-1"]}')});
my $lp_template = sql("SELECT cloudconn.aws_cloudformation_template($c, least_privilege => true)");
$sim->control('POST', "$acct/apply-template", $lp_template);
is(join(',', @{ $sim->control('GET', $acct)->{roles}[0]{allowed_actions} }),
	'ec2:DescribeInstances,ec2:DescribeRegions,ec2:DescribeVpcs,lambda:ListFunctions,rds:DescribeDBInstances,s3:GetBucketLocation,s3:ListAllMyBuckets',
	'the least-privilege template applied: the role has exactly the seven actions, no managed policy');

# every type, over several pages of each paginated API: 1100 VPCs (pages of
# 1000), 230 DB instances (100), 120 functions (50) in eu-west-1; 2300
# buckets (1000) account-wide; a few of each in us-east-1.  Every function
# has an environment variable holding a marker, which must never be kept.
my $marker = 'ENVMARKER' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 12);
my %sizes = ('eu-west-1' => [1100, 230, 120, 4], 'us-east-1' => [6, 5, 7, 3]);
for my $region (sort keys %sizes)
{
	my ($vpcs, $dbs, $fns, $insts) = @{ $sizes{$region} };
	my $seed = $region eq 'eu-west-1' ? 1 : 2;
	$sim->control('POST', "$acct/regions/$region/vpcs/generate", { count => $vpcs, seed => $seed });
	$sim->control('POST', "$acct/regions/$region/db-instances/generate", { count => $dbs, seed => $seed });
	$sim->control('POST', "$acct/regions/$region/functions/generate",
		{ count => $fns, seed => $seed, environment => { DB_PASSWORD => $marker, STAGE => 'prod' } });
	$sim->control('POST', "$acct/regions/$region/instances/generate", { count => $insts, seed => $seed });
}
$sim->control('POST', "$acct/buckets/generate", { count => 2300, seed => 1, regions => ['us-east-1', 'eu-west-1', 'ap-southeast-2'] });

is(sql("SELECT cloudconn.connector_test($c)"),
	qq({"ok": true, "caller_source": "static", "resource_types": {"aws_vpc": {"ok": true}, "aws_s3_bucket": {"ok": true}, "aws_ec2_instance": {"ok": true}, "aws_lambda_function": {"ok": true}, "aws_rds_db_instance": {"ok": true}}, "assumed_role_arn": "arn:aws:sts::$account:assumed-role/AnzenCustomerDiscoveryRole/cloudconn-connector-$c"}),
	'connector_test: the chain, then one cheap page of each enabled type allowed');

# ---- the first run, paused on a page while the kept pages sit in temporary files
$sim->control('DELETE', '/_sim/log');
$sim->faults({ kind => 'slow', service => 'lambda', region => 'us-east-1', delay_ms => 8000, times => 1 });
my $first = sql("SELECT cloudconn.connector_run($c, wait => false)");
sub fn_pages
{
	my ($region) = @_;
	return scalar grep { ($_->{action} // '') eq 'ListFunctions' && ($_->{region} // '') eq $region
		  && ($_->{status} // 0) == 200 } @{ $sim->log_entries };
}
for (1 .. 300)
{
	last if fn_pages('eu-west-1') == 3;
	usleep(50_000);
}
usleep(1_000_000);	# the last page of eu-west-1 mapped and kept
my ($temp_files, $temp_with_functions, $temp_with_marker) = (0, 0, 0);
find(sub {
	return unless -f $_ && $File::Find::name =~ m{/pgsql_tmp/};
	$temp_files++;
	my $content = slurp_file($_);
	$temp_with_functions++ if index($content, 'sim-fn-eu-west-1-0001') >= 0;
	$temp_with_marker++ if index($content, $marker) >= 0;
}, $node->data_dir . '/base');
cmp_ok($temp_files, '>', 0, "the run keeps its pages in temporary files ($temp_files)");
cmp_ok($temp_with_functions, '>', 0, 'they hold the Lambda functions listed');
is($temp_with_marker, 0, 'and no function\'s environment');
$node->poll_query_until('postgres', "SELECT status <> 'running' FROM cloudconn.run WHERE id = $first") or die;
$sim->faults();

my %total = (aws_vpc => 1106, aws_rds_db_instance => 235, aws_lambda_function => 127, aws_s3_bucket => 2300, aws_ec2_instance => 7);
is(sql("SELECT status, discovered, created, error_count FROM cloudconn.runs WHERE id = $first"),
	'succeeded|3775|3775|0', 'the first run creates every resource of every type');
is(sql("SELECT counts_by_type FROM cloudconn.runs WHERE id = $first"),
	'{"aws_vpc": {"errors": 0, "created": 1106, "updated": 0, "unchanged": 0, "discovered": 1106}, '
	. '"aws_s3_bucket": {"errors": 0, "created": 2300, "updated": 0, "unchanged": 0, "discovered": 2300}, '
	. '"aws_ec2_instance": {"errors": 0, "created": 7, "updated": 0, "unchanged": 0, "discovered": 7}, '
	. '"aws_lambda_function": {"errors": 0, "created": 127, "updated": 0, "unchanged": 0, "discovered": 127}, '
	. '"aws_rds_db_instance": {"errors": 0, "created": 235, "updated": 0, "unchanged": 0, "discovered": 235}}',
	'runs.counts_by_type: the counts of each type of a run over five');
my %arn = (
	aws_vpc => qr/^arn:aws:ec2:(eu-west-1|us-east-1):$account:vpc\/vpc-[0-9a-f]+$/,
	aws_rds_db_instance => qr/^arn:aws:rds:(eu-west-1|us-east-1):$account:db:sim-db-\1-\d{4}$/,
	aws_s3_bucket => qr/^arn:aws:s3:::sim-6666-\d{5}-[0-9a-f]{6}$/,
	aws_lambda_function => qr/^arn:aws:lambda:(eu-west-1|us-east-1):$account:function:sim-fn-\1-\d{4}$/,
);
for my $type (sort keys %arn)
{
	my @ids = split /\n/, sql("SELECT external_id FROM cloudconn.configuration_item WHERE ci_type = '$type' AND source_connector_id = $c");
	is(scalar(grep { $_ =~ $arn{$type} } @ids) . '/' . scalar(@ids), "$total{$type}/$total{$type}", "$type: every CI has its ARN");
}
is(sql("SELECT count(DISTINCT discovery_scope) || ' ' || min(discovery_scope) FROM cloudconn.configuration_items WHERE ci_type = 'aws_s3_bucket'"),
	'1 account', 'buckets are listed account-wide: their scope is "account"');

# the mappings, field by field, against what the simulator serves
sub item { $sim->control('GET', $_[0])->{item} }
my @vpcs = @{ $sim->control('GET', "$acct/regions/eu-west-1/vpcs")->{items} };
my ($v6) = grep { $_->{ipv6CidrBlockAssociationSet} && @{ $_->{cidrBlockAssociationSet} } > 1 } @vpcs;
is(sql("SELECT name || ' | ' || coalesce(hostname, '-') || ' | ' || attributes::text FROM cloudconn.configuration_item WHERE external_id = 'arn:aws:ec2:eu-west-1:$account:vpc/$v6->{vpcId}'"),
	"$v6->{tagSet}[0]{value} | - | " . '{"tags": {"Name": "' . $v6->{tagSet}[0]{value} . '"}, "state": "available", "region": "eu-west-1", "owner_id": "' . $account
	. '", "cidr_block": "' . $v6->{cidrBlock} . '", "is_default": false, "cidr_blocks": ["' . $v6->{cidrBlockAssociationSet}[0]{cidrBlock} . '", "'
	. $v6->{cidrBlockAssociationSet}[1]{cidrBlock} . '"], "dhcp_options_id": "' . $v6->{dhcpOptionsId} . '", "instance_tenancy": "default", "ipv6_cidr_blocks": ["'
	. $v6->{ipv6CidrBlockAssociationSet}[0]{ipv6CidrBlock} . '"]}',
	'a VPC: its Name tag, primary and associated IPv4 and IPv6 blocks, default flag, DHCP options, tenancy, owner, tags');
my ($default) = grep { $_->{isDefault} } @vpcs;
is(sql("SELECT name || ' ' || (attributes->>'is_default') FROM cloudconn.configuration_item WHERE external_id LIKE '%/$default->{vpcId}'"),
	"$default->{vpcId} true", 'an untagged VPC (the default one) is named by its id');
my $db = item("$acct/regions/eu-west-1/db-instances/sim-db-eu-west-1-0005");
is(sql("SELECT name || ' | ' || hostname || ' | ' || os_info || ' | ' || attributes::text FROM cloudconn.configuration_item WHERE external_id = '$db->{DBInstanceArn}'"),
	"sim-db-eu-west-1-0005 | $db->{Endpoint}{Address} | sqlserver-se 15.00.4365.2.v1 | "
	. '{"port": 1433, "tags": {"env": "staging", "team": "team-0"}, "engine": "sqlserver-se", "region": "eu-west-1", "status": "available", "vpc_id": "'
	. $db->{DBSubnetGroup}{VpcId} . '", "multi_az": false, "storage_type": "io1", "engine_version": "15.00.4365.2.v1", "instance_class": "db.m5.2xlarge", "db_subnet_group": "'
	. $db->{DBSubnetGroup}{DBSubnetGroupName} . '", "availability_zone": "eu-west-1b", "storage_encrypted": false, "publicly_accessible": false, "allocated_storage_gib": 168}',
	'an RDS DB instance: DBInstanceArn, identifier, endpoint, engine and version, class, status, Multi-AZ, storage, zone, VPC and subnet group, access, encryption, TagList');
my @buckets = @{ $sim->control('GET', "$acct/buckets")->{items} };
my ($sydney) = grep { $_->{region} eq 'ap-southeast-2' } @buckets;
is(sql("SELECT name || ' ' || attributes::text FROM cloudconn.configuration_item WHERE external_id = 'arn:aws:s3:::$sydney->{Name}'"),
	"$sydney->{Name} " . '{"region": "ap-southeast-2", "creation_date": "' . $sydney->{CreationDate} . '"}',
	'an S3 bucket: its region (BucketRegion) and creation date');
my $fn = item("$acct/regions/eu-west-1/functions/sim-fn-eu-west-1-0003");
is(sql("SELECT name || ' | ' || os_info || ' | ' || attributes::text FROM cloudconn.configuration_item WHERE external_id = '$fn->{FunctionArn}'"),
	"sim-fn-eu-west-1-0003 | java21 | " . '{"role": "' . $fn->{Role} . '", "region": "eu-west-1", "handler": "example.Handler::handleRequest", "runtime": "java21", "vpc_config": {"vpc_id": "'
	. $fn->{VpcConfig}{VpcId} . '", "subnet_ids": ["' . join('", "', @{ $fn->{VpcConfig}{SubnetIds} }) . '"], "security_group_ids": ["' . $fn->{VpcConfig}{SecurityGroupIds}[0]
	. '"]}, "package_type": "Zip", "architectures": ["x86_64"], "last_modified": "' . $fn->{LastModified} . '", "memory_size_mb": 512, "timeout_seconds": 30}',
	'a Lambda function: FunctionArn, name, runtime, handler, memory, timeout, architectures, package type, last modified, VPC config, role; never its environment');
is(sql("SELECT count(*) FROM cloudconn.configuration_item WHERE ci_type = 'aws_lambda_function' AND os_info IS NULL AND attributes->>'package_type' = 'Image'"),
	'18', 'a container image function has no runtime');

# the requests: every one signed for its own service and region, and verified;
# several pages of each paginated API
my $log = $sim->log_entries;
is(scalar(grep { !$_->{signature_valid} } @$log), 0, 'every request was signed and its signature verified');
my %service_of = (DescribeVpcs => 'ec2', DescribeInstances => 'ec2', DescribeDBInstances => 'rds', ListBuckets => 's3', ListFunctions => 'lambda');
is(scalar(grep { my $s = $service_of{ $_->{action} // '' }; $s && $s ne $_->{service} } @$log), 0,
	'each call was signed for its service');
is(join(' ', sort map { $_->{region} } grep { ($_->{action} // '') eq 'ListBuckets' } @$log), 'us-east-1 us-east-1 us-east-1',
	'buckets are listed through us-east-1');
is(scalar(grep { ($_->{action} // '') eq 'GetBucketLocation' } @$log), 0, 'with BucketRegion in the answer, no GetBucketLocation is asked');
my %pages;
$pages{"$_->{action} $_->{region}"}++ for grep { $service_of{ $_->{action} // '' } && ($_->{status} // 0) == 200 } @$log;
is(join(', ', map { "$_: $pages{$_}" } sort keys %pages),
	'DescribeDBInstances eu-west-1: 3, DescribeDBInstances us-east-1: 1, DescribeInstances eu-west-1: 1, DescribeInstances us-east-1: 1, '
	. 'DescribeVpcs eu-west-1: 2, DescribeVpcs us-east-1: 1, ListBuckets us-east-1: 3, ListFunctions eu-west-1: 3, ListFunctions us-east-1: 1',
	'several pages of each paginated API: DescribeVpcs (1000), DescribeDBInstances (100), ListBuckets (1000), ListFunctions (50)');

# ---- the delta of each type: a rename (or another change), a removal, an addition
sub run { sql("SELECT cloudconn.connector_run($c)") }
my $workers_gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'";
my ($renamed, $gone_vpc) = map { $_->{vpcId} } grep { $_->{tagSet} } @vpcs[5, 6];
$sim->control('PATCH', "$acct/regions/eu-west-1/vpcs/$renamed", { tags => { Name => 'renamed-vpc' } });
$sim->control('DELETE', "$acct/regions/eu-west-1/vpcs/$gone_vpc");
$sim->control('POST', "$acct/regions/eu-west-1/vpcs/add", {});
$sim->control('PATCH', "$acct/regions/eu-west-1/db-instances/sim-db-eu-west-1-0001", { DBInstanceClass => 'db.r6g.2xlarge' });
$sim->control('DELETE', "$acct/regions/eu-west-1/db-instances/sim-db-eu-west-1-0002");
$sim->control('POST', "$acct/regions/us-east-1/db-instances/add", {});
my ($b_changed, $b_gone) = map { $_->{Name} } @buckets[10, 11];
$sim->control('PATCH', "$acct/buckets/$b_changed", { CreationDate => '2025-01-01T00:00:00.000Z' });
$sim->control('DELETE', "$acct/buckets/$b_gone");
my $b_new = $sim->control('POST', "$acct/buckets/add", { region => 'eu-west-1' })->{item}{Name};
$sim->control('PATCH', "$acct/regions/us-east-1/functions/sim-fn-us-east-1-0002", { MemorySize => 4096 });
$sim->control('DELETE', "$acct/regions/eu-west-1/functions/sim-fn-eu-west-1-0007");
$sim->control('POST', "$acct/regions/eu-west-1/functions/add", { environment => { DB_PASSWORD => $marker } });
my $delta = run();
is(sql("SELECT status, created, updated FROM cloudconn.runs WHERE id = $delta") . ' '
	. sql("SELECT string_agg(key || ':' || (value->>'created') || '/' || (value->>'updated') || '/' || (value->>'unchanged'), ' ' ORDER BY key) FROM cloudconn.runs, jsonb_each(counts_by_type) WHERE id = $delta"),
	'succeeded|4|4 aws_ec2_instance:0/0/7 aws_lambda_function:1/1/125 aws_rds_db_instance:1/1/233 aws_s3_bucket:1/1/2298 aws_vpc:1/1/1104',
	'the delta: per type, one created and one updated, the rest unchanged');
is(sql("SELECT name FROM cloudconn.configuration_item WHERE external_id LIKE '%/$renamed'"), 'renamed-vpc', 'the renamed VPC has its new name');
is(sql("SELECT attributes->>'instance_class' FROM cloudconn.configuration_item WHERE name = 'sim-db-eu-west-1-0001'") . ' '
	. sql("SELECT attributes->>'creation_date' FROM cloudconn.configuration_item WHERE name = '$b_changed'") . ' '
	. sql("SELECT attributes->>'memory_size_mb' FROM cloudconn.configuration_item WHERE name = 'sim-fn-us-east-1-0002'"),
	'db.r6g.2xlarge 2025-01-01T00:00:00.000Z 4096', 'the changed DB instance, bucket and function are refreshed');
is(sql(qq{SELECT string_agg(ci_type, ',' ORDER BY ci_type) FROM cloudconn.configuration_item WHERE missing_since IS NOT NULL
	AND (external_id LIKE '%/$gone_vpc' OR name IN ('sim-db-eu-west-1-0002', '$b_gone', 'sim-fn-eu-west-1-0007'))}),
	'aws_lambda_function,aws_rds_db_instance,aws_s3_bucket,aws_vpc', 'the removed resource of each type stays, marked missing');
is(sql("SELECT count(*) FROM cloudconn.configuration_item WHERE missing_since IS NOT NULL"), '4', 'and nothing else');
is(sql("SELECT attributes->>'region' FROM cloudconn.configuration_item WHERE name = '$b_new'"), 'eu-west-1', 'the new bucket, with its region');

$node->poll_query_until('postgres', $workers_gone) or die;
my $stats = "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relid = 'cloudconn.configuration_item'::regclass";
my $before = sql($stats);
my $same = run();
$node->poll_query_until('postgres', $workers_gone) or die;
is(sql("SELECT status, created, updated, unchanged FROM cloudconn.runs WHERE id = $same") . ' ' . sql($stats), "succeeded|0|0|3775 $before",
	'an unchanged re-run of every type writes no row of configuration_item');

# ---- each service's throttling is retried
$sim->faults({ kind => 'throttle', service => 'rds', region => 'eu-west-1', times => 1 },
	{ kind => 'throttle', service => 's3', times => 1 },
	{ kind => 'throttle', service => 'lambda', region => 'eu-west-1', times => 1 },
	{ kind => 'throttle', service => 'ec2', action => 'DescribeVpcs', region => 'us-east-1', times => 1 });
$sim->control('DELETE', '/_sim/log');
my $throttled = run();
is(sql("SELECT status, unchanged FROM cloudconn.runs WHERE id = $throttled"), 'succeeded|3775', 'throttled by every service: the run still succeeds');
my @codes = map { "$_->{service} $_->{status} $_->{error_code}" } grep { $_->{error_code} } @{ $sim->log_entries };
is(join(', ', sort @codes), 'ec2 503 RequestLimitExceeded, lambda 429 TooManyRequestsException, rds 400 Throttling, s3 503 SlowDown',
	'each service throttled once, with its own answer (RDS 400 Throttling, S3 503 SlowDown, Lambda 429), and each was retried');
$sim->faults();

# ---- issue 11: a type disabled on the connector keeps its CIs as they are
my $vpc_state = "SELECT md5(string_agg(id || name || updated_at || coalesce(missing_since::text, '-') || attributes::text, ',' ORDER BY id))"
  . " FROM cloudconn.configuration_item WHERE ci_type = 'aws_vpc'";
my $vpcs_before = sql($vpc_state);
sql(qq{SELECT cloudconn.connector_update($c, settings => '{"account_id": "$account", "regions": ["eu-west-1", "us-east-1"],
	"resource_types": ["aws_ec2_instance", "aws_rds_db_instance", "aws_s3_bucket", "aws_lambda_function"]}')});
$sim->control('DELETE', "$acct/regions/us-east-1/vpcs/" . $sim->control('GET', "$acct/regions/us-east-1/vpcs")->{items}[1]{vpcId});
$sim->control('PATCH', "$acct/regions/eu-west-1/vpcs/$renamed", { tags => { Name => 'renamed-again' } });
$sim->control('POST', "$acct/regions/us-east-1/functions/add", {});
$sim->control('DELETE', '/_sim/log');
my $without_vpcs = run();
is(sql("SELECT status, created FROM cloudconn.runs WHERE id = $without_vpcs") . ' ' . sql("SELECT counts_by_type ? 'aws_vpc' FROM cloudconn.runs WHERE id = $without_vpcs"),
	'succeeded|1 f', 'with VPCs disabled, the other types merge (a new function) and the run counts no VPCs');
is(sql($vpc_state), $vpcs_before, 'the VPCs\' CIs are untouched: neither refreshed (the rename) nor marked missing (the removal)');
is(scalar(grep { ($_->{action} // '') eq 'DescribeVpcs' } @{ $sim->log_entries }), 0, 'and VPCs were not listed at all');
sql(qq{SELECT cloudconn.connector_update($c, settings => '{"account_id": "$account", "regions": ["eu-west-1", "us-east-1"]}')});

# ---- issue 11: a failing (type, scope): Lambda denied in eu-west-1 marks
# nothing of it missing, while VPCs of the same region merge
$sim->faults({ kind => 'status', status => 403, code => 'AccessDeniedException', service => 'lambda', region => 'eu-west-1',
	message => "User: arn:aws:sts::$account:assumed-role/AnzenCustomerDiscoveryRole/cloudconn-connector-$c is not authorized to perform: lambda:ListFunctions on resource: * with an explicit deny in a service control policy",
	times => -1 });
$sim->control('DELETE', "$acct/regions/eu-west-1/functions/sim-fn-eu-west-1-0010");
my $new_vpc = $sim->control('POST', "$acct/regions/eu-west-1/vpcs/add", { tags => { Name => 'vpc-during-denial' } })->{item}{vpcId};
my $denied = run();
is(sql("SELECT status FROM cloudconn.runs WHERE id = $denied") . ' '
	. sql("SELECT ci_type || ' ' || scope || ' ' || coalesce(external_id, '-') || ' | ' || message FROM cloudconn.run_errors WHERE run_id = $denied"),
	"partial aws_lambda_function eu-west-1 - | region eu-west-1: Lambda ListFunctions failed: HTTP 403 AccessDeniedException: User: arn:aws:sts::$account:assumed-role/AnzenCustomerDiscoveryRole/cloudconn-connector-$c is not authorized to perform: lambda:ListFunctions on resource: * with an explicit deny in a service control policy (the role needs lambda:ListFunctions: update the CloudFormation stack with aws_cloudformation_template())",
	'Lambda denied in eu-west-1: the run is partial, with a run_error naming the type and the scope');
is(sql("SELECT count(*) FROM cloudconn.configuration_item WHERE ci_type = 'aws_lambda_function' AND missing_since IS NOT NULL AND discovery_scope = 'eu-west-1' AND name <> 'sim-fn-eu-west-1-0007'"),
	'0', 'nothing of Lambda in eu-west-1 is marked missing (its removed function included)');
is(sql("SELECT name || ' ' || discovery_scope FROM cloudconn.configuration_items WHERE external_id LIKE '%/$new_vpc'"), 'vpc-during-denial eu-west-1',
	'while the VPCs of eu-west-1 merged');
$sim->faults();

# ---- a stack without lambda:ListFunctions: partial, Lambda's scopes in
# run_errors, no Lambda CI marked missing, the other types merged, and
# connector_test names the missing action
my $t = decode_json($lp_template);
my $stmt = $t->{Resources}{CustomerDiscoveryRole}{Properties}{Policies}[0]{PolicyDocument}{Statement}[0];
$stmt->{Action} = [ grep { $_ ne 'lambda:ListFunctions' } @{ $stmt->{Action} } ];
$sim->control('POST', "$acct/apply-template", $t);
$sim->control('DELETE', "$acct/regions/us-east-1/functions/sim-fn-us-east-1-0003");
$sim->control('POST', "$acct/regions/eu-west-1/db-instances/add", {});
my $no_lambda = run();
my $denial = "User: arn:aws:sts::$account:assumed-role/AnzenCustomerDiscoveryRole/cloudconn-connector-$c is not authorized to perform: lambda:ListFunctions on resource: * because no identity-based policy allows the lambda:ListFunctions action";
is(sql("SELECT status, created FROM cloudconn.runs WHERE id = $no_lambda") . "\n"
	. sql("SELECT ci_type || ' ' || scope || ' | ' || message FROM cloudconn.run_errors WHERE run_id = $no_lambda ORDER BY scope"),
	"partial|1\n"
	. "aws_lambda_function eu-west-1 | region eu-west-1: Lambda ListFunctions failed: HTTP 403 AccessDeniedException: $denial (the role needs lambda:ListFunctions: update the CloudFormation stack with aws_cloudformation_template())\n"
	. "aws_lambda_function us-east-1 | region us-east-1: Lambda ListFunctions failed: HTTP 403 AccessDeniedException: $denial (the role needs lambda:ListFunctions: update the CloudFormation stack with aws_cloudformation_template())",
	'without lambda:ListFunctions: partial, both of Lambda\'s scopes in run_errors with AWS\'s AccessDenied, and the other types merged (a new DB instance)');
is(sql("SELECT count(*) FROM cloudconn.configuration_item WHERE ci_type = 'aws_lambda_function' AND missing_since IS NOT NULL"),
	'1', 'no Lambda CI is marked missing (but the one removed before)');
my $tested = decode_json(sql("SELECT cloudconn.connector_test($c)"));
is(join(' ', map { "$_:" . ($tested->{resource_types}{$_}{ok} ? 'ok' : 'denied') } sort keys %{ $tested->{resource_types} }),
	'aws_ec2_instance:ok aws_lambda_function:denied aws_rds_db_instance:ok aws_s3_bucket:ok aws_vpc:ok', 'connector_test: only Lambda may not be listed');
is($tested->{ok} . ' ' . $tested->{resource_types}{aws_lambda_function}{error},
	"1 the role may not list Lambda functions: lambda:ListFunctions was denied in eu-west-1 (HTTP 403 AccessDeniedException: $denial); update the CloudFormation stack with aws_cloudformation_template()",
	'and names the missing action');
$sim->control('POST', "$acct/apply-template", $lp_template);
like(sql("SELECT status FROM cloudconn.runs WHERE id = " . run()), qr/^succeeded$/, 'with the stack updated, Lambda is listed again');

# ---- S3 without BucketRegion: each bucket's GetBucketLocation; EU is
# eu-west-1, none is us-east-1; a denied location is a per-resource error
my $other = '777788889999';
my $s3c = sql(qq{SELECT cloudconn.connector_create(1, 'buckets', 'aws', 'manual', '{"account_id": "$other", "resource_types": ["aws_s3_bucket"]}')});
$sim->control('POST', "/_sim/accounts/$other/apply-template", sql("SELECT cloudconn.aws_cloudformation_template($s3c, true)"));
$sim->control('POST', "/_sim/accounts/$other/buckets", [
	{ Name => 'legacy-eu-bucket', region => 'eu-west-1', location_constraint => 'EU', CreationDate => '2008-05-01T10:00:00.000Z' },
	{ Name => 'old-virginia-bucket', region => 'us-east-1', CreationDate => '2009-01-01T00:00:00.000Z' },
	{ Name => 'frankfurt-bucket', region => 'eu-central-1', CreationDate => '2020-01-01T00:00:00.000Z' },
	{ Name => 'locked-bucket', region => 'eu-west-2', CreationDate => '2021-01-01T00:00:00.000Z' } ]);
my $s3run = sql("SELECT cloudconn.connector_run($s3c)");
is(sql("SELECT status, created FROM cloudconn.runs WHERE id = $s3run"), 'succeeded|4', 'four buckets, with their regions from ListBuckets');
$sim->control('PATCH', "/_sim/accounts/$other/buckets/locked-bucket", { location_denied => JSON::PP::true });
$sim->config(s3_bucket_region => JSON::PP::false);
$sim->control('DELETE', '/_sim/log');
my $located = sql("SELECT cloudconn.connector_run($s3c)");
is(sql("SELECT status, discovered, unchanged, error_count FROM cloudconn.runs WHERE id = $located") . ' '
	. sql("SELECT external_id || ' | ' || message FROM cloudconn.run_errors WHERE run_id = $located"),
	"partial|4|3|1 arn:aws:s3:::locked-bucket | S3 bucket locked-bucket: its region is unknown: GetBucketLocation failed: HTTP 403 AccessDenied: "
	. "User: arn:aws:sts::$other:assumed-role/AnzenCustomerDiscoveryRole/cloudconn-connector-$s3c is not authorized to perform: s3:GetBucketLocation on resource: \"arn:aws:s3:::locked-bucket\" with an explicit deny in a resource-based policy",
	'without BucketRegion: the regions from GetBucketLocation, unchanged; a denied location is a per-resource error naming the bucket');
is(sql("SELECT string_agg(name || '=' || (attributes->>'region') || '/' || (missing_since IS NULL), ' ' ORDER BY name) FROM cloudconn.configuration_item WHERE source_connector_id = $s3c"),
	'frankfurt-bucket=eu-central-1/true legacy-eu-bucket=eu-west-1/true locked-bucket=eu-west-2/true old-virginia-bucket=us-east-1/true',
	'EU is eu-west-1, an empty constraint us-east-1; the denied bucket is kept, not marked missing');
is(join(' ', sort map { "$_->{bucket}:$_->{status}" } grep { ($_->{action} // '') eq 'GetBucketLocation' } @{ $sim->log_entries }),
	'frankfurt-bucket:200 legacy-eu-bucket:200 locked-bucket:403 old-virginia-bucket:200', 'one GetBucketLocation per bucket');
$sim->config(s3_bucket_region => JSON::PP::true);

# ---- the environment marker: in no table, no log line (debug5), no dump
sql(q{CREATE FUNCTION public.rows_holding(needle text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	t regclass;
	n bigint;
	total bigint := 0;
BEGIN
	FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
			  WHERE c.relkind IN ('r', 'm') AND s.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
	LOOP
		EXECUTE format('SELECT count(*) FROM %s x WHERE x::text LIKE %L', t, '%' || needle || '%') INTO n;
		total := total + n;
	END LOOP;
	RETURN total;
END;
$$});
cmp_ok(sql("SELECT public.rows_holding('sim-fn-eu-west-1-0001')"), '>', 0, 'the search finds a function where it is kept');
is(sql("SELECT public.rows_holding('$marker')"), '0', 'the environment marker is in no row of any table');
my $dump = `pg_dump -d "@{[$node->connstr('postgres')]}" 2>&1`;
like($dump, qr/sim-fn-eu-west-1-0001/, 'pg_dump dumps the functions\' CIs');
unlike($dump, qr/\Q$marker\E/, 'and not the marker');
$node->stop;
my $server_log = slurp_file($node->logfile);
like($server_log, qr/temporary file: path/, 'the runs wrote temporary files (log_temp_files)');
unlike($server_log, qr/\Q$marker\E/, 'the marker is in no line of the server log (debug5)');
$sim->stop;
done_testing();
