# DigitalOcean resource types besides droplets, end to end against the
# simulator (test/sim/digitalocean_sim.py): volumes, load balancers,
# Kubernetes clusters, managed databases and reserved IPs, each created
# with its mapping over several pages (databases: one answer), as a delta,
# each source field's change seen and others' not, filtered by region; a
# token without database:read (partial, nothing of databases marked
# missing, connector_test naming the scope); a foreign links.pages.next on
# each paginated type; per-resource errors; and a database password marker
# that reaches no table, temporary file, log line (debug5) or dump.
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

my $ca = CloudconnSim::test_ca();
my $sim = CloudconnSim::start_digitalocean(ca => $ca);
my $foreign = CloudconnSim::start_digitalocean(ca => $ca, host => '127.0.0.2');
# work_mem at its least: the kept pages spill into temporary files, which
# the marker test searches
my $node = CloudconnSim::cluster('dotypes', $sim->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$sim->url]}'
cloudconn.http_max_retries = 2
work_mem = 64
log_temp_files = 0
log_min_messages = debug5
log_statement = none
log_min_error_statement = panic
});
sub sql { $node->safe_psql('postgres', $_[0]) }
my $json = JSON::PP->new->canonical;
my $token = $CloudconnSim::TOKEN;
my $nodb = 'dop_v1_' . ('0dbf' x 16);
$sim->control('POST', '/_sim/tokens', { name => 'nodb', token => $nodb,
	scope => [ 'account:read', 'droplet:read', 'block_storage:read', 'load_balancer:read', 'kubernetes:read', 'reserved_ip:read' ] });

sql(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});
my $c = sql(qq{SELECT cloudconn.connector_create(1, 'all types', 'digitalocean', 'manual', '{}', '$token')});

# every type over several pages of 200: 450 volumes, 250 load balancers, 230
# clusters, 420 reserved IPs; 40 databases in one answer, each holding the
# marker as its password (connection, private and standby connections, users)
my $marker = 'DBPWMARKER' . join('', map { sprintf('%02x', int(rand(256))) } 1 .. 12);
my @regions = ('ams3', 'nyc1', 'fra1');
my %count = (volumes => 450, load_balancers => 250, kubernetes_clusters => 230, databases => 40, reserved_ips => 420);
my %ci_type = (volumes => 'digitalocean_volume', load_balancers => 'digitalocean_load_balancer',
	kubernetes_clusters => 'digitalocean_kubernetes_cluster', databases => 'digitalocean_database',
	reserved_ips => 'digitalocean_reserved_ip', droplets => 'digitalocean_droplet');
my %path = (volumes => '/v2/volumes', load_balancers => '/v2/load_balancers', kubernetes_clusters => '/v2/kubernetes/clusters',
	databases => '/v2/databases', reserved_ips => '/v2/reserved_ips', droplets => '/v2/droplets');
my %id_key = (reserved_ips => 'ip');
$sim->control('POST', '/_sim/droplets/generate', { count => 30, regions => \@regions, seed => 1 });
for my $kind (sort keys %count)
{
	$sim->control('POST', "/_sim/$kind/generate", { count => $count{$kind}, regions => \@regions, seed => 1,
		($kind eq 'databases' ? (password => $marker) : ()) });
}
sub items { my ($kind) = @_; return $sim->control('GET', "/_sim/$kind")->{$kind} }
like($json->encode(items('databases')->[0]), qr/\Q$marker\E.*\Q$marker\E/, 'the simulator\'s databases carry the marker password');

is(sql("SELECT cloudconn.connector_test($c)"),
	'{"ok": true, "account": {"team": "My Team", "uuid": "b6fr89dbf6d9156cace5f3c78dc9851d957381ef", "email": "sammy@digitalocean.com", "status": "active", "droplet_limit": 25, "email_verified": true}, '
	. '"resource_types": {"digitalocean_volume": {"ok": true}, "digitalocean_droplet": {"ok": true}, "digitalocean_database": {"ok": true}, '
	. '"digitalocean_reserved_ip": {"ok": true}, "digitalocean_load_balancer": {"ok": true}, "digitalocean_kubernetes_cluster": {"ok": true}}}',
	'connector_test: the account, then each of the six types listed with one small page');

# ---- the first run, paused on the last page of reserved IPs while the kept
# pages (the databases' among them) sit in temporary files
$sim->control('DELETE', '/_sim/log');
$sim->faults({ kind => 'slow', path_prefix => '/v2/reserved_ips', page => 3, delay_ms => 8000, times => 1 });
my $first = sql("SELECT cloudconn.connector_run($c, wait => false)");
sub fetched { my ($p) = @_; return scalar grep { $_->{path} eq $p && ($_->{status} // 0) == 200 } @{ $sim->log_entries } }
for (1 .. 300)
{
	last if fetched('/v2/reserved_ips') == 2;
	usleep(50_000);
}
usleep(1_000_000);
my ($temp_files, $temp_with_db, $temp_with_marker) = (0, 0, 0);
find(sub {
	return unless -f $_ && $File::Find::name =~ m{/pgsql_tmp/};
	$temp_files++;
	my $content = slurp_file($_);
	$temp_with_db++ if index($content, 'sim-db-ams3-0001') >= 0;
	$temp_with_marker++ if index($content, $marker) >= 0;
}, $node->data_dir . '/base');
cmp_ok($temp_files, '>', 0, "the run keeps its pages in temporary files ($temp_files)");
cmp_ok($temp_with_db, '>', 0, 'they hold the databases listed');
is($temp_with_marker, 0, 'and no database\'s password');
$node->poll_query_until('postgres', "SELECT status <> 'running' FROM cloudconn.run WHERE id = $first") or die;
$sim->faults();

my $total = 30;
$total += $count{$_} for keys %count;
is(sql("SELECT status, discovered, created, error_count FROM cloudconn.runs WHERE id = $first"),
	"succeeded|$total|$total|0", 'the first run creates every resource of every type');
is(sql("SELECT string_agg(key || ':' || (value->>'created'), ' ' ORDER BY key) FROM cloudconn.runs, jsonb_each(counts_by_type) WHERE id = $first"),
	'digitalocean_database:40 digitalocean_droplet:30 digitalocean_kubernetes_cluster:230 digitalocean_load_balancer:250 '
	. 'digitalocean_reserved_ip:420 digitalocean_volume:450', 'runs.counts_by_type: each type\'s count');
my @log = @{ $sim->log_entries };
is(join(' ', map { my $p = $path{$_}; "$_:" . scalar(grep { $_->{path} eq $p } @log) } sort keys %path),
	'databases:1 droplets:1 kubernetes_clusters:2 load_balancers:2 reserved_ips:3 volumes:3',
	'several pages of every paginated type, one answer of databases');
is(join(' ', sort map { "$_->{path}?$_->{query}" } grep { $_->{path} ne '/v2/droplets' && ($_->{query} // '') !~ /(^|&)page=/ } @log),
	'/v2/databases? /v2/kubernetes/clusters?per_page=200 /v2/load_balancers?per_page=200 /v2/reserved_ips?per_page=200 /v2/volumes?per_page=200',
	'each paginated type asked for pages of 200, databases without paging');

# ---- each type's mapping
sub ci
{
	my ($external_id) = @_;
	my $row = sql(qq{SELECT json_build_object('name', name, 'hostname', hostname, 'ip_address', host(ip_address), 'os_info', os_info,
		'attributes', attributes, 'scope', discovery_scope, 'entity', entity_id)
		FROM cloudconn.configuration_item WHERE source_connector_id = $c AND external_id = '$external_id'});
	return $row eq '' ? undef : decode_json($row);
}
my $null = JSON::PP::null;
my $v = items('volumes')->[0];
is($json->encode(ci("do:volume:$v->{id}")), $json->encode({ name => $v->{name}, hostname => $null, ip_address => $null, os_info => $null,
	scope => 'account', entity => 1,
	attributes => { region => $v->{region}{slug}, size_gb => $v->{size_gigabytes}, filesystem_type => $v->{filesystem_type},
		filesystem_label => $v->{filesystem_label}, droplet_ids => $v->{droplet_ids}, tags => $v->{tags} } }),
	'a volume: do:volume:<id>, its name, region, size, filesystem, droplets and tags');
my $lb = items('load_balancers')->[0];
is($json->encode(ci("do:load_balancer:$lb->{id}")), $json->encode({ name => $lb->{name}, hostname => $null, ip_address => $lb->{ip}, os_info => $null,
	scope => 'account', entity => 1,
	attributes => { region => $lb->{region}{slug}, status => $lb->{status}, size => $lb->{size}, size_unit => $lb->{size_unit},
		forwarding_rules => [ map { { entry_protocol => $_->{entry_protocol}, entry_port => $_->{entry_port},
			target_protocol => $_->{target_protocol}, target_port => $_->{target_port} } } @{ $lb->{forwarding_rules} } ],
		droplet_ids => $lb->{droplet_ids}, tag => $lb->{tag}, vpc_uuid => $lb->{vpc_uuid} } }),
	'a load balancer: its IP, region, status, size, forwarding rules (ports and protocols only), droplets, tag and VPC');
my $k = items('kubernetes_clusters')->[0];
(my $k_host = $k->{endpoint}) =~ s{^https://}{};
is($json->encode(ci("do:kubernetes_cluster:$k->{id}")), $json->encode({ name => $k->{name}, hostname => $k_host, ip_address => $k->{ipv4},
	os_info => "Kubernetes $k->{version}", scope => 'account', entity => 1,
	attributes => { region => $k->{region}, status => $k->{status}{state}, vpc_uuid => $k->{vpc_uuid}, tags => $k->{tags},
		node_pools => [ map { my $p = $_; +{ map { ($_ => $p->{$_}) } qw(name size count auto_scale min_nodes max_nodes) } } @{ $k->{node_pools} } ] } }),
	'a Kubernetes cluster: its endpoint\'s host, IPv4, version, region, status, node pools (not their nodes), VPC and tags');
my $db = items('databases')->[0];
is($json->encode(ci("do:database:$db->{id}")), $json->encode({ name => $db->{name}, hostname => $db->{connection}{host}, ip_address => $null,
	os_info => "$db->{engine} $db->{version}", scope => 'account', entity => 1,
	attributes => { region => $db->{region}, status => $db->{status}, size => $db->{size}, num_nodes => $db->{num_nodes}, tags => $db->{tags} } }),
	'a database: its connection host, engine and version, region, status, size, nodes and tags, nothing of its credentials');
my ($rip_free) = grep { !defined $_->{droplet} } @{ items('reserved_ips') };
my ($rip_taken) = grep { defined $_->{droplet} } @{ items('reserved_ips') };
for my $r ($rip_free, $rip_taken)
{
	is($json->encode(ci("do:reserved_ip:$r->{ip}")), $json->encode({ name => $r->{ip}, hostname => $null, ip_address => $r->{ip}, os_info => $null,
		scope => 'account', entity => 1,
		attributes => { region => $r->{region}{slug}, droplet_id => $r->{droplet} ? $r->{droplet}{id} : $null,
			project_id => $r->{project_id}, locked => $r->{locked} } }),
		'a reserved IP ' . ($r->{droplet} ? 'assigned to a droplet' : 'not assigned') . ': do:reserved_ip:<ip>, its region, droplet, project and lock');
}

# ---- the delta of each type: one changed, one removed, one added
my %first_id;
my %gone;
my %changes = (volumes => { size_gigabytes => 999 }, load_balancers => { name => 'renamed-lb' },
	kubernetes_clusters => { version => '1.32.0-do.0' }, databases => { size => 'db-s-8vcpu-16gb' }, reserved_ips => { locked => JSON::PP::true });
for my $kind (sort keys %count)
{
	my $items = items($kind);
	my $key = $id_key{$kind} // 'id';
	$first_id{$kind} = $items->[0]{$key};
	$gone{$kind} = $items->[1]{$key};
	$sim->control('PATCH', "/_sim/$kind/$first_id{$kind}", $changes{$kind});
	$sim->control('DELETE', "/_sim/$kind/$gone{$kind}");
	$sim->control('POST', "/_sim/$kind/add", { region => 'fra1', ($kind eq 'databases' ? (password => $marker) : ()) });
}
my $delta = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, created, updated FROM cloudconn.runs WHERE id = $delta") . ' '
	. sql("SELECT string_agg(key || ':' || (value->>'created') || '/' || (value->>'updated') || '/' || (value->>'unchanged'), ' ' ORDER BY key) FROM cloudconn.runs, jsonb_each(counts_by_type) WHERE id = $delta"),
	'succeeded|5|5 digitalocean_database:1/1/38 digitalocean_droplet:0/0/30 digitalocean_kubernetes_cluster:1/1/228 '
	. 'digitalocean_load_balancer:1/1/248 digitalocean_reserved_ip:1/1/418 digitalocean_volume:1/1/448',
	'the delta: per type, one created and one updated, the rest unchanged');
is(join(' ', ci("do:volume:$first_id{volumes}")->{attributes}{size_gb}, ci("do:load_balancer:$first_id{load_balancers}")->{name},
		ci("do:kubernetes_cluster:$first_id{kubernetes_clusters}")->{os_info}, ci("do:database:$first_id{databases}")->{attributes}{size},
		ci("do:reserved_ip:$first_id{reserved_ips}")->{attributes}{locked} ? 'locked' : 'unlocked'),
	'999 renamed-lb Kubernetes 1.32.0-do.0 db-s-8vcpu-16gb locked', 'each changed resource is refreshed');
my %prefix = (volumes => 'volume', load_balancers => 'load_balancer', kubernetes_clusters => 'kubernetes_cluster',
	databases => 'database', reserved_ips => 'reserved_ip');
is(sql("SELECT string_agg(external_id, ' ' ORDER BY external_id) FROM cloudconn.configuration_item WHERE missing_since IS NOT NULL"),
	join(' ', sort map { "do:$prefix{$_}:$gone{$_}" } keys %count), 'the removed resource of each type, and nothing else, is marked missing');

my $workers_gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'";
$node->poll_query_until('postgres', $workers_gone) or die;
my $stats = "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relid = 'cloudconn.configuration_item'::regclass";
my $before = sql($stats);
my $same = sql("SELECT cloudconn.connector_run($c)");
$node->poll_query_until('postgres', $workers_gone) or die;
is(sql("SELECT status, created, updated, unchanged FROM cloudconn.runs WHERE id = $same") . ' ' . sql($stats),
	"succeeded|0|0|$total $before", 'an unchanged re-run of every type writes no row of configuration_item');

# ---- each source field of each type is seen when it changes, and a field
# the mapping does not keep changes nothing (a database's password among them)
sub changed_run
{
	my $id = sql("SELECT cloudconn.connector_run($c)");
	return sql("SELECT status, created, updated FROM cloudconn.runs WHERE id = $id");
}
sub item { my ($kind, $id) = @_; return $sim->control('GET', "/_sim/$kind/$id")->{item} }
my $vol = $first_id{volumes};
my $lbid = $first_id{load_balancers};
my $kid = $first_id{kubernetes_clusters};
my $dbid = $first_id{databases};
my $rip = $first_id{reserved_ips};
my $lb_item = item('load_balancers', $lbid);
my $k_item = item('kubernetes_clusters', $kid);
my $db_item = item('databases', $dbid);
my $other_droplet = $sim->droplets->[5];
my @field_changes = (
	[ volumes => $vol, 'name', { name => 'renamed-volume' }, "do:volume:$vol", "name = 'renamed-volume'" ],
	[ volumes => $vol, 'region', { region => 'sgp1' }, "do:volume:$vol", "attributes->>'region' = 'sgp1'" ],
	[ volumes => $vol, 'filesystem_type', { filesystem_type => 'btrfs' }, "do:volume:$vol", "attributes->>'filesystem_type' = 'btrfs'" ],
	[ volumes => $vol, 'filesystem_label', { filesystem_label => 'scratch' }, "do:volume:$vol", "attributes->>'filesystem_label' = 'scratch'" ],
	[ volumes => $vol, 'droplet_ids', { droplet_ids => [ $other_droplet->{id} ] }, "do:volume:$vol", "attributes->'droplet_ids' = '[$other_droplet->{id}]'" ],
	[ volumes => $vol, 'tags', { tags => [ 'env:test' ] }, "do:volume:$vol", q{attributes->'tags' = '["env:test"]'} ],
	[ volumes => $vol, 'description (not kept)', { description => 'another description' }, "do:volume:$vol", 'true', 0 ],
	[ load_balancers => $lbid, 'ip', { ip => '198.18.250.1' }, "do:load_balancer:$lbid", "ip_address = '198.18.250.1'" ],
	[ load_balancers => $lbid, 'status', { status => 'errored' }, "do:load_balancer:$lbid", "attributes->>'status' = 'errored'" ],
	[ load_balancers => $lbid, 'a forwarding rule\'s target port',
		{ forwarding_rules => [ { %{ $lb_item->{forwarding_rules}[0] }, target_port => 9090 } ] }, "do:load_balancer:$lbid",
		"attributes->'forwarding_rules'->0->'target_port' = '9090'" ],
	[ load_balancers => $lbid, 'a forwarding rule\'s certificate (not kept)',
		{ forwarding_rules => [ { %{ $lb_item->{forwarding_rules}[0] }, target_port => 9090, certificate_id => 'a-certificate' } ] },
		"do:load_balancer:$lbid", 'true', 0 ],
	[ load_balancers => $lbid, 'health check (not kept)', { health_check => { %{ $lb_item->{health_check} }, port => 81 } },
		"do:load_balancer:$lbid", 'true', 0 ],
	[ load_balancers => $lbid, 'vpc_uuid', { vpc_uuid => '00000000-1111-2222-3333-444444444444' }, "do:load_balancer:$lbid",
		"attributes->>'vpc_uuid' = '00000000-1111-2222-3333-444444444444'" ],
	[ kubernetes_clusters => $kid, 'endpoint', { endpoint => 'https://moved.k8s.ondigitalocean.com' }, "do:kubernetes_cluster:$kid",
		"hostname = 'moved.k8s.ondigitalocean.com'" ],
	[ kubernetes_clusters => $kid, 'ipv4', { ipv4 => '198.18.250.2' }, "do:kubernetes_cluster:$kid", "ip_address = '198.18.250.2'" ],
	[ kubernetes_clusters => $kid, 'status', { status => { state => 'degraded', message => 'a node is down' } }, "do:kubernetes_cluster:$kid",
		"attributes->>'status' = 'degraded'" ],
	[ kubernetes_clusters => $kid, 'status message (not kept)', { status => { state => 'degraded', message => 'two nodes are down' } },
		"do:kubernetes_cluster:$kid", 'true', 0 ],
	[ kubernetes_clusters => $kid, 'a node pool\'s count', { node_pools => [ { %{ $k_item->{node_pools}[0] }, count => 9 } ] },
		"do:kubernetes_cluster:$kid", "attributes->'node_pools'->0->'count' = '9'" ],
	[ kubernetes_clusters => $kid, 'a node pool\'s nodes (not kept)', { node_pools => [ { %{ $k_item->{node_pools}[0] }, count => 9, nodes => [] } ] },
		"do:kubernetes_cluster:$kid", 'true', 0 ],
	[ databases => $dbid, 'connection host', { connection => { %{ $db_item->{connection} }, host => 'moved.db.ondigitalocean.com' } },
		"do:database:$dbid", "hostname = 'moved.db.ondigitalocean.com'" ],
	[ databases => $dbid, 'engine version', { version => '17' }, "do:database:$dbid", "os_info = '$db_item->{engine} 17'" ],
	[ databases => $dbid, 'num_nodes', { num_nodes => 7 }, "do:database:$dbid", "attributes->'num_nodes' = '7'" ],
	[ databases => $dbid, 'the password (not kept)',
		{ connection => { %{ $db_item->{connection} }, host => 'moved.db.ondigitalocean.com', password => "${marker}2" },
		  users => [ map { { %$_, password => "${marker}2" } } @{ $db_item->{users} } ] }, "do:database:$dbid", 'true', 0 ],
	[ reserved_ips => $rip, 'droplet', { droplet => $other_droplet }, "do:reserved_ip:$rip", "attributes->'droplet_id' = '$other_droplet->{id}'" ],
	[ reserved_ips => $rip, 'the droplet\'s own fields (not kept)', { droplet => { %$other_droplet, name => 'renamed-droplet' } },
		"do:reserved_ip:$rip", 'true', 0 ],
	[ reserved_ips => $rip, 'droplet unassigned', { droplet => undef }, "do:reserved_ip:$rip", "attributes->'droplet_id' = 'null'" ],
	[ reserved_ips => $rip, 'project_id', { project_id => '00000000-1111-2222-3333-555555555555' }, "do:reserved_ip:$rip",
		"attributes->>'project_id' = '00000000-1111-2222-3333-555555555555'" ],
);
for my $change (@field_changes)
{
	my ($kind, $id, $label, $patch, $external_id, $check, $updates) = @$change;
	$updates //= 1;
	$sim->control('PATCH', "/_sim/$kind/$id", $patch);
	is(changed_run() . ' ' . sql(qq{SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c AND external_id = '$external_id' AND $check}),
		"succeeded|0|$updates 1", "$kind: a change of $label " . ($updates ? 'updates that one CI' : 'updates nothing'));
}

# ---- the region filter applies to every type
my $fra = sql(qq{SELECT cloudconn.connector_create(1, 'frankfurt', 'digitalocean', 'manual', '{"region": "fra1"}', '$token')});
my $fra_run = sql("SELECT cloudconn.connector_run($fra)");
my %in_fra;
for my $kind (keys %count, 'droplets')
{
	$in_fra{ $ci_type{$kind} } = scalar grep {
		my $r = $_->{region};
		(ref $r ? $r->{slug} : $r) eq 'fra1'
	} @{ items($kind) };
}
is(sql("SELECT string_agg(key || ':' || (value->>'created'), ' ' ORDER BY key) FROM cloudconn.runs, jsonb_each(counts_by_type) WHERE id = $fra_run"),
	join(' ', map { "$_:$in_fra{$_}" } sort keys %in_fra), 'settings.region: each type\'s resources of fra1 alone');
is(sql("SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $fra AND attributes->>'region' IS DISTINCT FROM 'fra1'"),
	'0', 'and none of another region');

# ---- a token without database:read: databases are not listed, the run is
# partial, nothing of them is marked missing, the other types merge
sql("SELECT cloudconn.connector_set_token($c, '$nodb')");
my $db_gone = items('databases')->[2]{id};
$sim->control('DELETE', "/_sim/databases/$db_gone");
my $new_vol = $sim->control('POST', '/_sim/volumes/add', { region => 'ams3', name => 'vol-during-denial' })->{item}{id};
my $denied = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, created FROM cloudconn.runs WHERE id = $denied") . ' '
	. sql("SELECT ci_type || ' ' || scope || ' ' || coalesce(external_id, '-') || ' | ' || message FROM cloudconn.run_errors WHERE run_id = $denied"),
	'partial|1 digitalocean_database account - | the DigitalOcean token lacks read scope (HTTP 403) for GET /v2/databases: '
	. 'listing Managed databases needs the database:read scope; add database:read to the token\'s custom scopes, or use a read-only token, '
	. 'and set it with connector_set_token()',
	'without database:read: partial, a run_error naming the type and the scope, and the other types merged (a new volume)');
is(sql("SELECT count(*) FROM cloudconn.configuration_item WHERE ci_type = 'digitalocean_database' AND missing_since IS NOT NULL"),
	'1', 'nothing of databases is marked missing (but the one removed before)');
is(ci("do:volume:$new_vol")->{name}, 'vol-during-denial', 'while the new volume merged');
my $tested = decode_json(sql("SELECT cloudconn.connector_test($c)"));
is(join(' ', $tested->{ok} ? 'ok' : 'not ok', map { "$_:" . ($tested->{resource_types}{$_}{ok} ? 'ok' : 'denied') } sort keys %{ $tested->{resource_types} }),
	'ok digitalocean_database:denied digitalocean_droplet:ok digitalocean_kubernetes_cluster:ok digitalocean_load_balancer:ok '
	. 'digitalocean_reserved_ip:ok digitalocean_volume:ok', 'connector_test: only databases may not be listed');
like($tested->{resource_types}{digitalocean_database}{error}, qr/^the DigitalOcean token lacks read scope \(HTTP 403\) for GET \/v2\/databases: listing Managed databases needs the database:read scope/,
	'and names the scope it needs');
sql("SELECT cloudconn.connector_set_token($c, '$token')");
is(sql("SELECT status FROM cloudconn.runs WHERE id = " . sql("SELECT cloudconn.connector_run($c)")) . ' '
	. sql("SELECT count(*) FROM cloudconn.configuration_item WHERE external_id = 'do:database:$db_gone' AND missing_since IS NOT NULL"),
	'succeeded 1', 'with the scope back, databases are listed again and the removed one is marked missing');

# ---- a links.pages.next to another origin stops that type's listing alone
my $elsewhere = $foreign->url;
$sim->faults(map { { kind => 'foreign_next', path_prefix => $path{$_}, page => 1, next_url => "$elsewhere$path{$_}?page=2&per_page=200" } }
	qw(volumes load_balancers kubernetes_clusters reserved_ips));
my $missing_before = sql("SELECT count(*) FROM cloudconn.configuration_item WHERE missing_since IS NOT NULL");
my $foreign_run = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status FROM cloudconn.runs WHERE id = $foreign_run") . "\n"
	. sql("SELECT ci_type || ' | ' || message FROM cloudconn.run_errors WHERE run_id = $foreign_run ORDER BY ci_type"),
	"partial\n" . join("\n", map { "$ci_type{$_} | DigitalOcean's response to GET $path{$_} (page 1) links the next page to another origin ($elsewhere); the run was stopped so that the token is not sent there" }
		qw(kubernetes_clusters load_balancers reserved_ips volumes)),
	'a foreign next link on each paginated type: that type\'s listing fails, naming the origin');
is(sql("SELECT count(*) FROM cloudconn.configuration_item WHERE missing_since IS NOT NULL") . ' ' . scalar(@{ $foreign->log_entries }),
	"$missing_before 0", 'nothing more is marked missing, and the other origin received no request');
$sim->faults();

# ---- a broken resource of a new type is a per-resource error: one with an
# id stays as it was, one without marks nothing of its type missing
$sim->faults({ kind => 'bad_item', path_prefix => '/v2/load_balancers', field => 'ip', value => '300.1.2.3', index => 0, times => 1 },
	{ kind => 'bad_item', path_prefix => '/v2/kubernetes/clusters', field => 'endpoint', value => 'http://plain.example', index => 0, times => 1 },
	{ kind => 'bad_item', path_prefix => '/v2/databases', field => 'id', index => 0, times => 1 });
my $lb0 = items('load_balancers')->[0]{id};
my $k0 = items('kubernetes_clusters')->[0]{id};
$sim->control('DELETE', '/_sim/databases/' . items('databases')->[5]{id});
my $missing_dbs = sql("SELECT count(*) FROM cloudconn.configuration_item WHERE ci_type = 'digitalocean_database' AND missing_since IS NOT NULL");
my $broken = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, error_count FROM cloudconn.runs WHERE id = $broken") . "\n"
	. sql("SELECT ci_type || ' ' || coalesce(external_id, '-') || ' | ' || message FROM cloudconn.run_errors WHERE run_id = $broken ORDER BY ci_type"),
	"partial|3\n"
	. "digitalocean_database - | a database cluster in the listing has no id\n"
	. "digitalocean_kubernetes_cluster do:kubernetes_cluster:$k0 | Kubernetes cluster $k0 has a malformed endpoint\n"
	. "digitalocean_load_balancer do:load_balancer:$lb0 | load balancer $lb0 has a malformed IP address",
	'a malformed IP, a plain-http endpoint and a database without an id: per-resource errors naming what they can');
is(sql("SELECT count(*) FROM cloudconn.configuration_item WHERE ci_type = 'digitalocean_database' AND missing_since IS NOT NULL") . ' '
	. sql("SELECT count(*) FROM cloudconn.configuration_item WHERE external_id IN ('do:load_balancer:$lb0', 'do:kubernetes_cluster:$k0') AND missing_since IS NULL"),
	"$missing_dbs 2", 'nothing of databases is marked missing (the removed one neither), and the broken ones are kept');
$sim->faults();

# ---- an account without databases: DigitalOcean answers {"databases":
# null}, a complete listing of none (the databases are marked missing)
$sim->control('POST', '/_sim/databases', []);
$sim->config(empty_databases => 'null');
$sim->control('DELETE', '/_sim/log');
my $no_dbs = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, error_count FROM cloudconn.runs WHERE id = $no_dbs") . ' '
	. sql("SELECT count(*) FILTER (WHERE missing_since IS NULL) || '/' || count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c AND ci_type = 'digitalocean_database'"),
	'succeeded|0 0/' . sql("SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c AND ci_type = 'digitalocean_database'"),
	'"databases": null is an empty listing: the run succeeds and every database is marked missing');
is(join(' ', map { $_->{status} } grep { $_->{path} eq '/v2/databases' } @{ $sim->log_entries }), '200', 'after one answer');
$sim->config(empty_databases => 'array');

# ---- the database password marker: in no table (run_errors included), no
# log line (debug5), no dump
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
cmp_ok(sql("SELECT public.rows_holding('sim-db-ams3-0001')"), '>', 0, 'the search finds a database where it is kept');
cmp_ok(sql("SELECT public.rows_holding('lacks read scope')"), '>', 0, 'and a run_error');
is(sql("SELECT public.rows_holding('$marker')"), '0', 'the password marker is in no row of any table');
my $dump = `pg_dump -d "@{[$node->connstr('postgres')]}" 2>&1`;
like($dump, qr/sim-db-ams3-0001/, 'pg_dump dumps the databases\' CIs');
unlike($dump, qr/\Q$marker\E/, 'and not the marker');
$node->stop;
my $server_log = slurp_file($node->logfile);
like($server_log, qr/temporary file: path/, 'the runs wrote temporary files (log_temp_files)');
like($server_log, qr/GET .*databases/, 'the server log has the requests (debug5)');
unlike($server_log, qr/\Q$marker\E/, 'the marker is in no line of the server log (debug5)');
$sim->stop;
$foreign->stop;
done_testing();
