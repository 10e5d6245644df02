# Change detection of the merge (README: Runs and the merge): an unchanged
# resource is skipped by comparing the digest of its provider-owned fields
# (configuration_item.provider_digest) with the digest of what was listed,
# so every provider-owned field must be part of it.  This test changes each
# provider field in turn, at the cloud (through the simulators) and in the
# database (as a user editing a provider-owned field would), and one
# attribute key at a time, and checks that each change is caught: the CI is
# updated, exactly that one, and carries the provider's value afterwards.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CloudconnSim;

my $ca = CloudconnSim::test_ca();
my $do = CloudconnSim::start_digitalocean(ca => $ca);
my $aws = CloudconnSim::start_aws(ca => $ca);
my $account = '444455556666';
my $creds = PostgreSQL::Test::Utils::tempdir('aws') . '/credentials';
open(my $fh, '>', $creds) or die $!;
print $fh "[default]\naws_access_key_id = AKIASIMULATORCALLER2\naws_secret_access_key = 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\n";
close $fh;
chmod 0600, $creds;

my $node = CloudconnSim::cluster('change_detection', $do->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$do->url]}'
cloudconn.aws_credentials_file = '$creds'
cloudconn.aws_sts_endpoint = '@{[$aws->url]}'
cloudconn.aws_ec2_endpoint = '@{[$aws->url]}/'
cloudconn.aws_rds_endpoint = '@{[$aws->url]}/'
cloudconn.aws_s3_endpoint = '@{[$aws->url]}'
cloudconn.aws_lambda_endpoint = '@{[$aws->url]}'
cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole'
cloudconn.http_max_retries = 1
log_min_messages = debug1
});
sub sql { $node->safe_psql('postgres', $_[0]) }

sql(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});

sub run
{
	my ($c) = @_;
	my $run = sql("SELECT cloudconn.connector_run($c)");
	return sql(qq{SELECT status, updated, unchanged, created, error_count, coalesce(error, '')
		FROM cloudconn.runs WHERE id = $run});
}

# The provider-owned fields of one CI, as text, for comparisons.
sub fields
{
	my ($external_id) = @_;
	return sql(qq{SELECT concat_ws('|', name, hostname, ip_address, os_info, attributes::text,
		missing_since IS NULL) FROM cloudconn.configuration_item WHERE external_id = '$external_id'});
}

# Every user-facing way a CI's stored provider field can differ from what the
# provider lists: each column changed or emptied, each attribute key changed,
# removed, and a key added.  Each is undone by the next run.
sub check_stored_edits
{
	my ($c, $external_id, $what, $total) = @_;
	my $unchanged = $total - 1;
	my $listed = fields($external_id);
	my @keys = split /\n/, sql(qq{SELECT jsonb_object_keys(attributes) FROM cloudconn.configuration_item
		WHERE external_id = '$external_id' ORDER BY 1});
	cmp_ok(scalar @keys, '>=', 5, "$what: the CI has attributes (@keys)");
	my @edits = (
		[ 'name', "name = 'edited by hand'" ],
		[ 'hostname', "hostname = 'edited.example'" ],
		[ 'hostname emptied', 'hostname = NULL' ],
		[ 'ip_address', "ip_address = '192.0.2.254'" ],
		[ 'ip_address emptied', 'ip_address = NULL' ],
		[ 'os_info', "os_info = 'TempleOS'" ],
		[ 'os_info emptied', 'os_info = NULL' ],
		[ 'an attribute key added', q{attributes = attributes || '{"zz_added": 1}'} ],
		[ 'attributes emptied', q{attributes = '{}'} ],
		[ 'marked missing', 'missing_since = now()' ],
		map {
			(   [ "attribute $_ changed", qq{attributes = jsonb_set(attributes, '{$_}', '"x"')} ],
				[ "attribute $_ set to null", qq{attributes = jsonb_set(attributes, '{$_}', 'null')} ],
				[ "attribute $_ removed", qq{attributes = attributes - '$_'} ])
		} @keys);
	for my $edit (@edits)
	{
		my ($label, $set) = @$edit;
		sql(qq{UPDATE cloudconn.configuration_item SET $set WHERE external_id = '$external_id'});
		if (fields($external_id) eq $listed)
		{
			# (a null attribute set to null, a hostname that was empty: no difference to catch)
			is(run($c), "succeeded|0|$total|0|0|", "$what: $label is no change, and none is seen");
			next;
		}
		is(run($c), "succeeded|1|$unchanged|0|0|", "$what: $label by a user is seen by the next run");
		is(fields($external_id), $listed, "$what: and the provider's value is back after $label");
	}
}

# ---- DigitalOcean: each source field of a droplet changed at the provider
my $dc = sql(qq{SELECT cloudconn.connector_create(1, 'droplets', 'digitalocean', 'manual', '{}', '$CloudconnSim::TOKEN')});
$do->control('POST', '/_sim/droplets/generate', { count => 3, regions => ['ams3', 'nyc1'], seed => 11 });
is(run($dc), 'succeeded|0|0|3|0|', 'DigitalOcean: initial run creates three droplets');
my ($d) = @{ $do->droplets };
my $did = $d->{id};
my $dext = "do:droplet:$did";
sql(qq{UPDATE cloudconn.configuration_item SET description = 'kept by the user' WHERE external_id = '$dext'});

my $net = sub {
	my (%ip) = @_;
	my $v4 = [ { ip_address => $ip{public} // '203.0.113.10', netmask => '255.255.240.0', gateway => '203.0.113.1', type => 'public' },
		{ ip_address => $ip{private} // '10.110.0.10', netmask => '255.255.240.0', gateway => '10.110.0.1', type => 'private' } ];
	my $v6 = [ { ip_address => $ip{v6} // '2604:a880:400:d1::a:1', netmask => 64, gateway => '2604:a880:400:d1::1', type => 'public' } ];
	return { v4 => $v4, v6 => $v6 };
};
my @do_changes = (
	[ 'name', { name => 'renamed-droplet' }, "name = 'renamed-droplet' AND hostname = 'renamed-droplet'" ],
	[ 'networks (a known layout)', { networks => $net->() }, "ip_address = '203.0.113.10'" ],
	[ 'public IPv4', { networks => $net->(public => '203.0.113.11') }, "ip_address = '203.0.113.11'" ],
	[ 'private IPv4', { networks => $net->(public => '203.0.113.11', private => '10.110.0.11') },
		"attributes->>'private_ipv4' = '10.110.0.11'" ],
	[ 'public IPv6', { networks => $net->(public => '203.0.113.11', private => '10.110.0.11', v6 => '2604:a880:400:d1::a:2') },
		"attributes->>'ipv6' = '2604:a880:400:d1::a:2'" ],
	[ 'image distribution', { image => { %{ $d->{image} }, distribution => 'Fedora' } }, "os_info LIKE 'Fedora %'" ],
	[ 'image name', { image => { %{ $d->{image} }, distribution => 'Fedora', name => '40 x64' } }, "os_info = 'Fedora 40 x64'" ],
	[ 'region', { region => 'fra1' }, "attributes->>'region' = 'fra1'" ],
	[ 'status', { status => 'off' }, "attributes->>'status' = 'off'" ],
	[ 'size_slug', { size_slug => 's-8vcpu-16gb' }, "attributes->>'size' = 's-8vcpu-16gb'" ],
	[ 'vcpus', { vcpus => 77 }, "attributes->'vcpus' = '77'" ],
	[ 'memory', { memory => 777 }, "attributes->'memory' = '777'" ],
	[ 'disk', { disk => 7777 }, "attributes->'disk' = '7777'" ],
	[ 'tags (one added)', { tags => [ @{ $d->{tags} }, 'added-tag' ] }, q{attributes->'tags' ? 'added-tag'} ],
	[ 'tags (reordered)', { tags => [ reverse @{ $d->{tags} }, 'added-tag' ] }, q{attributes->'tags'->>0 = 'added-tag'} ],
	[ 'vpc_uuid', { vpc_uuid => '00000000-1111-2222-3333-444444444444' },
		"attributes->>'vpc_uuid' = '00000000-1111-2222-3333-444444444444'" ],
	[ 'vpc_uuid removed', { vpc_uuid => undef }, "attributes->'vpc_uuid' = 'null'" ],
);
for my $change (@do_changes)
{
	my ($label, $patch, $check) = @$change;
	$do->control('PATCH', "/_sim/droplets/$did", $patch);
	is(run($dc), 'succeeded|1|2|0|0|', "DigitalOcean: a change of $label updates that one CI");
	is(sql(qq{SELECT count(*) FROM cloudconn.configuration_item WHERE external_id = '$dext'
		AND $check AND description = 'kept by the user'}), '1', "DigitalOcean: the CI carries the new $label");
	is(run($dc), 'succeeded|0|3|0|0|', "DigitalOcean: after $label, the next run is unchanged");
}
check_stored_edits($dc, $dext, 'DigitalOcean', 3);

# ---- AWS: each source field of an EC2 instance changed at the provider
my $ac = sql(qq{SELECT cloudconn.connector_create(1, 'prod', 'aws', 'manual',
	'{"account_id": "$account", "regions": ["eu-west-1"]}')});
$aws->control('POST', "/_sim/accounts/$account/apply-template", sql("SELECT cloudconn.aws_cloudformation_template($ac)"));
$aws->control('POST', "/_sim/accounts/$account/regions/eu-west-1/instances/generate", { count => 3, seed => 5, states => ['running'] });
is(run($ac), 'succeeded|0|0|3|0|', 'AWS: initial run creates three instances');
my $inst = $aws->control('GET', "/_sim/accounts/$account/regions/eu-west-1/instances")->{instances}[0];
my $iid = $inst->{instanceId};
my $aext = "arn:aws:ec2:eu-west-1:$account:instance/$iid";
my $ipath = "/_sim/accounts/$account/regions/eu-west-1/instances/$iid";
my @aws_changes = (
	[ 'Name tag', { tags => { Name => 'renamed-box', team => 'a' } }, "name = 'renamed-box'" ],
	[ 'another tag', { tags => { Name => 'renamed-box', team => 'b' } }, q{attributes->'tags'->>'team' = 'b'} ],
	# more '=' in a page than xml_guard.c lets through unread: the page is read tag by tag, and passes
	[ 'tags full of =', { tags => { Name => 'renamed-box', team => 'b', map { ("eq$_" => '=' x 250) } 1 .. 5 } },
		q{attributes->'tags'->>'eq5' = repeat('=', 250)} ],
	[ 'dnsName', { dnsName => 'ec2-203-0-113-9.eu-west-1.compute.amazonaws.com' },
		"hostname = 'ec2-203-0-113-9.eu-west-1.compute.amazonaws.com'" ],
	[ 'ipAddress', { ipAddress => '203.0.113.9' }, "ip_address = '203.0.113.9'" ],
	[ 'platformDetails', { platformDetails => 'Red Hat Enterprise Linux' }, "os_info = 'Red Hat Enterprise Linux'" ],
	[ 'state', { state => 'stopped' }, "attributes->>'state' = 'stopped'" ],
	[ 'instanceType', { instanceType => 'c5.large' }, "attributes->>'instance_type' = 'c5.large'" ],
	[ 'availability zone', { placement => { availabilityZone => 'eu-west-1c', groupName => '', tenancy => 'default' } },
		"attributes->>'availability_zone' = 'eu-west-1c'" ],
	[ 'vpcId', { vpcId => 'vpc-0123456789abcdef0' }, "attributes->>'vpc_id' = 'vpc-0123456789abcdef0'" ],
	[ 'subnetId', { subnetId => 'subnet-0123456789abcdef0' }, "attributes->>'subnet_id' = 'subnet-0123456789abcdef0'" ],
	[ 'imageId', { imageId => 'ami-0123456789abcdef0' }, "attributes->>'image_id' = 'ami-0123456789abcdef0'" ],
	[ 'launchTime', { launchTime => '2026-01-02T03:04:05.000Z' }, "attributes->>'launch_time' = '2026-01-02T03:04:05.000Z'" ],
	[ 'privateIpAddress', { privateIpAddress => '10.0.9.9' }, "attributes->>'private_ip' = '10.0.9.9'" ],
);
for my $change (@aws_changes)
{
	my ($label, $patch, $check) = @$change;
	$aws->control('PATCH', $ipath, $patch);
	is(run($ac), 'succeeded|1|2|0|0|', "AWS: a change of $label updates that one CI");
	is(sql(qq{SELECT count(*) FROM cloudconn.configuration_item WHERE external_id = '$aext' AND $check}), '1',
		"AWS: the CI carries the new $label");
	is(run($ac), 'succeeded|0|3|0|0|', "AWS: after $label, the next run is unchanged");
}
check_stored_edits($ac, $aext, 'AWS', 3);

# ---- the foreign keys of new CIs: checked once per run, unless the table
# has an insert trigger of its own (which then fires for every new CI)
my $fk_log = qr/the foreign keys of new CIs are checked (once for the run|row by row)/;
sub fk_mode
{
	my ($from) = @_;
	my @modes = (slurp_file($node->logfile, $from) =~ /$fk_log/g);
	return join(',', @modes);
}
$do->control('POST', '/_sim/droplets/generate', { count => 5, regions => ['ams3'], seed => 12, append => 1 });
my $offset = -s $node->logfile;
is(run($dc), 'succeeded|0|3|5|0|', 'five new droplets are created');
is(fk_mode($offset), 'once for the run', 'their foreign keys were checked once for the run');
is(sql(qq{SELECT count(*) FROM cloudconn.configuration_item ci JOIN cloudconn.entity e ON e.id = ci.entity_id
	JOIN cloudconn.connector c ON c.id = ci.source_connector_id WHERE c.id = $dc}), '8',
	'every CI references its connector and entity');

sql(q{CREATE TABLE public.ci_inserted (id bigint);
	CREATE FUNCTION public.note_ci() RETURNS trigger LANGUAGE plpgsql AS
		$$BEGIN INSERT INTO public.ci_inserted VALUES (NEW.id); RETURN NEW; END$$;
	CREATE TRIGGER note_ci AFTER INSERT ON cloudconn.configuration_item FOR EACH ROW EXECUTE FUNCTION public.note_ci();});
$do->control('POST', '/_sim/droplets/generate', { count => 4, regions => ['ams3'], seed => 13, append => 1 });
$offset = -s $node->logfile;
is(run($dc), 'succeeded|0|8|4|0|', 'with a user trigger on the table: four new droplets are created');
is(fk_mode($offset), 'row by row', 'their foreign keys were checked row by row');
is(sql(q{SELECT count(*) FROM public.ci_inserted}), '4', "and the user's trigger fired for each of them");
sql(q{DROP TRIGGER note_ci ON cloudconn.configuration_item});

# a foreign key a user added: the run does not know its shape, so rows are checked
sql(q{ALTER TABLE cloudconn.configuration_item ADD COLUMN owner_entity bigint REFERENCES cloudconn.entity (id)});
$do->control('POST', '/_sim/droplets/generate', { count => 2, regions => ['ams3'], seed => 14, append => 1 });
$offset = -s $node->logfile;
is(run($dc), 'succeeded|0|12|2|0|', 'with a foreign key a user added: two new droplets are created');
is(fk_mode($offset), 'row by row', 'their foreign keys were checked row by row');
sql(q{ALTER TABLE cloudconn.configuration_item DROP COLUMN owner_entity});

done_testing();
