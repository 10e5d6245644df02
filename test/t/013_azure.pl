# Azure discovery end to end against the simulator (test/sim/azure_sim.py):
# connector_test and its failures (wrong, expired secret, unknown tenant or
# application, missing Reader role), a run over three subscriptions with
# several pages of each of the four lists, the join of each VM with its
# NICs, public IP and power state, the delta semantics of the merge, a
# forbidden subscription (partial, nothing of it marked missing), 429 with
# Retry-After, pacing on x-ms-ratelimit-remaining-subscription-reads, the
# token renewed mid-run and on ExpiredAuthenticationToken, a nextLink to
# another origin, and no client secret or access token in the debug5 log,
# results, errors or pg_dump.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::Local qw(timegm);
use JSON::PP;
use CloudconnSim;

my $json = JSON::PP->new->canonical;
my $ca = CloudconnSim::test_ca();
my $sim = CloudconnSim::start_azure(ca => $ca);
# a second origin that must never be contacted (the hostile nextLink)
my $foreign = CloudconnSim::start_azure(ca => $ca, host => '127.0.0.2');

my $node = CloudconnSim::cluster('azure', $sim->ca_file, qq{
cloudconn.azure_login_url = '@{[$sim->url]}'
cloudconn.azure_management_url = '@{[$sim->url]}'
cloudconn.http_max_retries = 3
cloudconn.http_timeout_ms = 10000
cloudconn.http_connect_timeout_ms = 2000
log_min_messages = debug5
log_statement = none
log_min_error_statement = panic
});

my $tenant = $CloudconnSim::AZURE_TENANT;
my $client = $CloudconnSim::AZURE_CLIENT;
my $secret = $CloudconnSim::AZURE_SECRET;
my $expired_client = '6e2d5f3b-0c8a-4b47-9f16-d3c2b1a0e9f8';
my $norole_client = '7f3e6a4c-1d9b-4c58-a027-e4d3c2b1f0a9';
my %sub = (
	a => '0a1b2c3d-1111-4aaa-8bbb-000000000001',
	b => '0a1b2c3d-2222-4aaa-8bbb-000000000002',
	c => '0a1b2c3d-3333-4aaa-8bbb-000000000003',
	disabled => '0a1b2c3d-4444-4aaa-8bbb-000000000004',
	other => '0a1b2c3d-5555-4aaa-8bbb-000000000005',
	rgonly => '0a1b2c3d-6666-4aaa-8bbb-000000000006');
my %count = (a => 60, b => 45, c => 30);

sub setup_sim
{
	$sim->reset;
	$sim->control('POST', '/_sim/apps', { tenant_id => $tenant, client_id => $expired_client,
		secrets => [ { value => 'an-expired-secret-value', expired => JSON::PP::true } ] });
	$sim->control('POST', '/_sim/apps', { tenant_id => $tenant, client_id => $norole_client,
		secrets => [ { value => 'a-secret-of-no-role' } ] });
	$sim->control('POST', '/_sim/subscriptions', [
		{ subscription_id => $sub{a}, display_name => 'Production', roles => { $client => 'Reader' } },
		{ subscription_id => $sub{b}, display_name => 'Staging', roles => { $client => 'Reader' } },
		{ subscription_id => $sub{c}, display_name => 'Research', roles => { $client => 'Reader' } },
		{ subscription_id => $sub{disabled}, display_name => 'Retired', state => 'Disabled', roles => { $client => 'Reader' } },
		{ subscription_id => $sub{other}, display_name => 'Not ours', roles => {} },
		{ subscription_id => $sub{rgonly}, display_name => 'One group only', roles => { $client => 'ResourceGroupReader' } } ]);
	my $seed = 1;
	for my $s (qw(a b c))
	{
		$sim->control('POST', "/_sim/subscriptions/$sub{$s}/generate", { count => $count{$s}, seed => $seed++,
			group_prefix => uc($s), power_states => [ 'running', 'running', 'deallocated', 'stopped' ] });
	}
	$sim->control('POST', "/_sim/subscriptions/$sub{disabled}/generate", { count => 5, seed => 9 });
	$sim->config(page_size_vms => 10, page_size_network => 12);
}
setup_sim();

$node->safe_psql('postgres', q{
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, parent_id, name) VALUES (1, NULL, 'root');
	CREATE ROLE app_admin;
	SELECT cloudconn.grant_permission('app_admin', 1, 'CloudConnector:manage');
	SELECT cloudconn.grant_permission('app_admin', 1, 'ConfigurationItem:manage');
});

sub sql { $node->safe_psql('postgres', $_[0]) }

my @results;    # every connector_test result and run error, for the secret checks
sub create_connector
{
	my ($name, $settings, $tok) = @_;
	my $s = $json->encode($settings);
	$tok //= $secret;
	return sql(qq{SET ROLE app_admin; SELECT cloudconn.connector_create(1, '$name', 'azure', 'manual', '$s', '$tok')});
}

sub test_connector
{
	my ($id) = @_;
	my $r = sql("SET ROLE app_admin; SELECT cloudconn.connector_test($id)");
	push @results, $r;
	return $r;
}

sub run
{
	my ($id) = @_;
	my $run = sql("SET ROLE app_admin; SELECT cloudconn.connector_run($id)");
	return sql(qq{SELECT status, discovered, created, updated, unchanged, error_count, coalesce(error, '')
		FROM cloudconn.runs WHERE id = $run});
}

sub last_run_errors
{
	my ($id) = @_;
	my $e = sql(qq{SELECT coalesce(string_agg(coalesce(scope, '') || ': ' || message, ' / ' ORDER BY scope), '')
		FROM cloudconn.run_errors WHERE run_id = (SELECT max(id) FROM cloudconn.run WHERE connector_id = $id)});
	push @results, $e;
	return $e;
}

sub log_entries { $sim->log_entries }
sub entries_of { my ($kind, $s) = @_; grep { $_->{list} eq $kind && (!$s || ($_->{subscription} // '') eq $s) } @{ log_entries() } }

sub iso_time
{
	my ($t) = @_;
	$t =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)\.(\d+)Z$/ or die "bad time $t";
	return timegm($6, $5, $4, $3, $2 - 1, $1) + $7 / 1000;
}

sub ci_state
{
	my ($id, $scope) = @_;
	my $where = $scope ? "AND discovery_scope = '$scope'" : '';
	return sql(qq{SELECT md5(coalesce(string_agg(ci::text, ',' ORDER BY id), ''))
		FROM cloudconn.configuration_items ci WHERE source_connector_id = $id $where});
}

# ---- connector settings are validated (the regression suite covers the rest)
my (undef, undef, $bad) = $node->psql('postgres', qq{SET ROLE app_admin;
	SELECT cloudconn.connector_create(1, 'x', 'azure', 'manual', '{"tenant_id": "nope", "client_id": "$client"}', 's')});
like($bad, qr/Azure tenant id must be a GUID/, 'a tenant id that is not a GUID is refused');

# ---- connector_test
my $c = create_connector('azure', { tenant_id => $tenant, client_id => $client });
$sim->clear_log;
my $test = test_connector($c);
is(scalar(entries_of('token')), 1, 'connector_test: one token request');
my ($tok) = entries_of('token');
is("$tok->{grant_type} $tok->{scope} $tok->{client_id}", "client_credentials @{[$sim->url]}/.default $client",
	'the client credentials grant for the management origin');

# a visible subscription without Reader at the subscription's scope fails the test (below);
# without it, the test lists every enabled subscription
$sim->control('PATCH', "/_sim/subscriptions/$sub{rgonly}", { roles => { $client => undef } });
my $t = $json->decode(test_connector($c));
ok($t->{ok}, 'connector_test: ok with every visible subscription readable');
is(join(',', map { "$_->{id}=$_->{display_name}/$_->{state}" } @{ $t->{subscriptions} }),
	"$sub{a}=Production/Enabled,$sub{b}=Staging/Enabled,$sub{c}=Research/Enabled",
	'connector_test lists the enabled subscriptions visible to the service principal (not the disabled one, not one without a role)');
like($test, qr/"ok": false, "error": "subscription $sub{rgonly}: the service principal may not read it \(HTTP 403 AuthorizationFailed on GET \/subscriptions\/$sub{rgonly}\/providers\/Microsoft.Compute\/virtualMachines\?statusOnly=true\): give the service principal the Reader role on the subscription, for example with az role assignment create --assignee $client --role Reader --scope \/subscriptions\/$sub{rgonly}"/,
	'missing Reader role on a visible subscription: ok false, saying to give the Reader role');

my $wrong = create_connector('wrong secret', { tenant_id => $tenant, client_id => $client }, 'not-the-secret-value');
like(test_connector($wrong), qr/"ok": false, "error": "Azure rejected the client secret of application $client \(AADSTS7000215\): it may be mistyped, or be the secret's ID rather than its value; create a client secret for the app registration and set its value with connector_set_token\(\)"/,
	'wrong client secret: AADSTS7000215, say so');
my $expired = create_connector('expired secret', { tenant_id => $tenant, client_id => $expired_client }, 'an-expired-secret-value');
like(test_connector($expired), qr/"ok": false, "error": "the client secret of application $expired_client has expired \(AADSTS7000222\): create a new client secret for the app registration \(Certificates & secrets in the Azure portal\) and set it with connector_set_token\(\)"/,
	'expired client secret: AADSTS7000222, create one');
my $no_tenant = create_connector('unknown tenant', { tenant_id => '99999999-0000-4000-8000-000000000000', client_id => $client });
like(test_connector($no_tenant), qr/"ok": false, "error": "Azure found no tenant 99999999-0000-4000-8000-000000000000 \(AADSTS90002\): check tenant_id/,
	'unknown tenant: AADSTS90002');
my $no_app = create_connector('unknown app', { tenant_id => $tenant, client_id => '88888888-0000-4000-8000-000000000000' });
like(test_connector($no_app), qr/"ok": false, "error": "Azure found no application with client id 88888888-0000-4000-8000-000000000000 in tenant $tenant \(AADSTS700016\)/,
	'unknown application: AADSTS700016');
my $norole = create_connector('no role', { tenant_id => $tenant, client_id => $norole_client }, 'a-secret-of-no-role');
like(test_connector($norole), qr/"ok": false, "error": "the service principal can read no enabled subscription of tenant $tenant: give it the Reader role on the subscriptions to discover \(az role assignment create --assignee $norole_client --role Reader/,
	'a service principal without any role: ok false, give it the Reader role');
my $invisible = create_connector('not visible', { tenant_id => $tenant, client_id => $client, subscription_ids => [ uc $sub{other} ] });
like(test_connector($invisible), qr/"ok": false, "error": "subscription $sub{other} is not visible to the service principal: it may not exist in tenant $tenant, or the service principal has no role on it; give the service principal the Reader role on it/,
	'a configured subscription it cannot see: ok false, with the Reader role');
# the secret rotates: the wrong one set right
sql("SET ROLE app_admin; SELECT cloudconn.connector_set_token($wrong, '$secret')");
$t = $json->decode(test_connector($wrong));
ok($t->{ok}, 'after connector_set_token, the test passes');

# ---- a run over three subscriptions, several pages of each list
my $three = create_connector('three', { tenant_id => $tenant, client_id => $client,
	subscription_ids => [ $sub{a}, uc($sub{b}), $sub{c} ] });
$sim->clear_log;
my $total = $count{a} + $count{b} + $count{c};
is(run($three), "succeeded|$total|$total|0|0|0|", 'the initial run creates every VM of the three subscriptions');
my @log = @{ log_entries() };
my $pages = 0;
for my $s (qw(a b c))
{
	my $n = $count{$s};
	my $vms = () = entries_of('vms', $sub{$s});
	my $st = () = entries_of('vm_status', $sub{$s});
	my $nics = () = entries_of('nics', $sub{$s});
	my $pips = () = entries_of('public_ips', $sub{$s});
	is("$vms $st", (int(($n + 9) / 10)) . ' ' . int(($n + 9) / 10), "subscription $s: the VM list and the status list, every page once");
	cmp_ok($nics, '>=', 3, "subscription $s: several pages of NICs ($nics)");
	cmp_ok($pips, '>=', 2, "subscription $s: several pages of public IPs ($pips)");
	$pages += $vms + $st + $nics + $pips;
}
is(scalar(grep { $_->{list} eq 'token' } @log), 1, 'one token for the whole run');
is(scalar(grep { $_->{list} eq 'subscriptions' } @log), 0, 'configured subscriptions: no subscriptions list');
is(scalar(grep { ($_->{status} // 0) != 200 } @log), 0, 'no request failed');
is(sql("SELECT pages_fetched FROM cloudconn.runs WHERE connector_id = $three"), $pages,
	'pages_fetched counts every page of the four lists');
is(sql(qq{SELECT string_agg(DISTINCT discovery_scope, ',' ORDER BY discovery_scope) FROM cloudconn.configuration_items WHERE source_connector_id = $three}),
	join(',', sort map { $sub{$_} } qw(a b c)), 'each CI is scoped to its subscription, lower-cased');

# every CI against the simulator's own view of the VM (its join of NICs, public IP, power state)
sub check_cis
{
	my ($id, $label) = @_;
	my %want;
	for my $s (qw(a b c))
	{
		$want{ $_->{external_id} } = $_ for @{ $sim->control('GET', "/_sim/subscriptions/$sub{$s}/vms")->{vms} };
	}
	my $rows = $json->decode(sql(qq{SELECT coalesce(json_agg(json_build_object('external_id', external_id, 'name', name,
		'hostname', hostname, 'ip', host(ip_address), 'os_info', os_info, 'a', attributes, 'missing', missing_since IS NOT NULL)), '[]')
		FROM cloudconn.configuration_items WHERE source_connector_id = $id AND missing_since IS NULL}));
	my @bad;
	for my $r (@$rows)
	{
		my $w = delete $want{ $r->{external_id} };
		if (!$w) { push @bad, "$r->{external_id}: not in the simulator"; next; }
		my $ip = $w->{public_ip} // $w->{private_ip};
		my $host = $w->{os} eq 'Windows' ? substr($w->{name}, 0, 15) : $w->{name};
		my %exp = (name => $w->{name}, hostname => $host, ip => $ip,
			power_state => $w->{power_state}, resource_group => lc $w->{resource_group},
			location => $w->{location}, size => $w->{size}, vm_id => $w->{vm_id},
			private_ips => join(',', @{ $w->{private_ips} }), tags => $json->encode($w->{tags}),
			zones => $w->{zone} ? "[\"$w->{zone}\"]" : 'null');
		my %got = (name => $r->{name}, hostname => $r->{hostname}, ip => $r->{ip},
			power_state => $r->{a}{power_state}, resource_group => $r->{a}{resource_group},
			location => $r->{a}{location}, size => $r->{a}{size}, vm_id => $r->{a}{vm_id},
			private_ips => join(',', @{ $r->{a}{private_ips} }), tags => $json->encode($r->{a}{tags}),
			zones => defined $r->{a}{zones} ? $json->encode($r->{a}{zones}) : 'null');
		for my $k (sort keys %exp)
		{
			push @bad, "$r->{external_id}: $k is " . ($got{$k} // 'NULL') . ', not ' . ($exp{$k} // 'NULL')
			  if ($got{$k} // '') ne ($exp{$k} // '');
		}
		push @bad, "$r->{external_id}: os_info $r->{os_info}" unless $r->{os_info} =~ /^(Linux|Windows) \([A-Za-z]+:[^:]+:[^:]+:latest\)$/;
		push @bad, "$r->{external_id}: no os_disk_type" unless $r->{a}{os_disk_type} =~ /_LRS$/;
		push @bad, "$r->{external_id}: provisioning_state" unless ($r->{a}{provisioning_state} // '') eq 'Succeeded';
		push @bad, "$r->{external_id}: subscription_id" unless $r->{external_id} =~ m{^/subscriptions/\Q$r->{a}{subscription_id}\E/resourcegroups/};
	}
	push @bad, map { "$_: no CI" } sort keys %want;
	is(join("\n", @bad[0 .. ($#bad > 9 ? 9 : $#bad)]), '', $label);
}
check_cis($three, 'every CI carries the mapping of README: Azure (ids lower-cased, the primary NIC\'s public IP else its private one, power state, private IPs of every NIC)');
my $mix = sql(qq{SELECT count(*) FILTER (WHERE attributes->>'power_state' = 'running' AND ip_address << '10.0.0.0/8'::inet) > 0,
	count(*) FILTER (WHERE NOT ip_address << '10.0.0.0/8'::inet) > 0,
	count(*) FILTER (WHERE attributes->>'power_state' = 'deallocated' AND ip_address << '10.0.0.0/8'::inet) > 0,
	count(*) FILTER (WHERE jsonb_array_length(attributes->'private_ips') = 2) > 0
	FROM cloudconn.configuration_items WHERE source_connector_id = $three});
is($mix, 't|t|t|t', 'among them: private addresses (no public IP, or a Dynamic one released), public ones, and VMs with two NICs');

# ---- unchanged re-run writes nothing
sub workers_gone
{
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'")
	  or die 'run workers did not exit';
}
my $stats = "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relid = 'cloudconn.configuration_item'::regclass";
workers_gone();
my $before = sql($stats);
is(run($three), "succeeded|$total|0|0|$total|0|", 'unchanged re-run: everything unchanged');
workers_gone();
is(sql($stats), $before, 'pg_stat_user_tables: zero rows inserted, updated or deleted by the re-run');

# ---- the delta: a power change, a deletion, an addition; user edits survive
my @a_vms = @{ $sim->control('GET', "/_sim/subscriptions/$sub{a}/vms")->{vms} };
my ($running) = grep { $_->{power_state} eq 'running' && defined $_->{public_ip} && $_->{public_dynamic} } @a_vms;
my $gone = $a_vms[1];
sql(qq{UPDATE cloudconn.configuration_item SET description = 'owned by the web team'
	WHERE external_id = '$running->{external_id}' AND source_connector_id = $three});
$sim->control('PATCH', "/_sim/subscriptions/$sub{a}/vms/$running->{name}", { power_state => 'deallocated' });
$sim->control('DELETE', "/_sim/subscriptions/$sub{a}/vms/$gone->{name}");
$sim->control('POST', "/_sim/subscriptions/$sub{a}/generate", { count => 1, seed => 77, append => JSON::PP::true,
	first => 500, group_prefix => 'A' });
is(run($three), "succeeded|$total|1|1|" . ($total - 2) . '|0|', 'after a power change, a deletion and an addition: updated 1, created 1');
is(sql(qq{SELECT attributes->>'power_state', ip_address << '10.0.0.0/8'::inet, description FROM cloudconn.configuration_items
	WHERE external_id = '$running->{external_id}'}), 'deallocated|t|owned by the web team',
	'the deallocated VM lost its Dynamic public address (now its private one), its description kept');
is(sql(qq{SELECT missing_since IS NOT NULL FROM cloudconn.configuration_items WHERE external_id = '$gone->{external_id}'}),
	't', 'the deleted VM stays, marked missing');
check_cis($three, 'after the delta every present CI still matches the simulator');

# ---- one subscription forbidden: partial, nothing of it marked missing
$sim->control('PATCH', "/_sim/subscriptions/$sub{b}", { roles => { $client => 'ResourceGroupReader' } });
my @b_vms = @{ $sim->control('GET', "/_sim/subscriptions/$sub{b}/vms")->{vms} };
$sim->control('DELETE', "/_sim/subscriptions/$sub{b}/vms/$b_vms[0]{name}");    # a complete listing would mark it
my $b_state = ci_state($three, $sub{b});
my $r = run($three);
like($r, qr/^partial\|/, 'a subscription without the Reader role: the run is partial') or diag $r;
like(last_run_errors($three), qr/^$sub{b}: subscription $sub{b}: the service principal may not read it \(HTTP 403 AuthorizationFailed on GET \/subscriptions\/$sub{b}\/providers\/Microsoft\.[A-Za-z]+\/[A-Za-z]+(\?statusOnly=true)? \(page 1\)\): give the service principal the Reader role on the subscription/,
	'its run error names the subscription and the Reader role');
is(ci_state($three, $sub{b}), $b_state, 'nothing of that subscription changed, nothing marked missing');
is(sql(qq{SELECT count(*) FROM cloudconn.configuration_items WHERE source_connector_id = $three AND missing_since IS NOT NULL
	AND discovery_scope = '$sub{b}'}), '0', 'no CI of it marked missing');
is(sql(qq{SELECT (counts_by_type->'azure_vm'->>'unchanged')::int FROM cloudconn.runs WHERE connector_id = $three ORDER BY id DESC LIMIT 1}),
	$count{a} + $count{c}, 'the two other subscriptions merged');
$sim->control('PATCH', "/_sim/subscriptions/$sub{b}", { roles => { $client => 'Reader' } });
like(run($three), qr/^succeeded\|/, 'with the role back, it succeeds');
is(sql(qq{SELECT missing_since IS NOT NULL FROM cloudconn.configuration_items WHERE external_id = '$b_vms[0]{external_id}'}),
	't', 'and the VM deleted meanwhile is marked missing then');

# ---- 429 with Retry-After is retried, honouring the wait
$sim->faults({ kind => 'status', status => 429, retry_after => 2, list => 'vms', subscription => $sub{a}, page => 2, times => 1 });
$sim->clear_log;
like(run($three), qr/^succeeded\|/, 'a 429 is retried: the run succeeds');
my @p2 = grep { ($_->{page} // 0) == 2 } entries_of('vms', $sub{a});
is(join(',', map { $_->{status} } @p2), '429,200', 'the simulator saw the 429, then the page again');
my $waited = iso_time($p2[1]{time}) - iso_time($p2[0]{time});
cmp_ok($waited, '>=', 1.9, "the retry came after Retry-After ($waited s)");

# ---- pacing on x-ms-ratelimit-remaining-subscription-reads
# (a quota of 12 reads refilled at 4 a second: the subscription's 21 requests, sent at full
# speed, would be throttled within the first second)
my $paced = create_connector('paced', { tenant_id => $tenant, client_id => $client, subscription_ids => [ $sub{a} ] });
$sim->config(read_bucket_size => 12, read_refill_per_s => 4);
$sim->clear_log;
like(run($paced), qr/^succeeded\|$count{a}\|$count{a}\|/, 'with a small read quota, the run succeeds');
my @a_reqs = grep { ($_->{subscription} // '') eq $sub{a} } @{ log_entries() };
cmp_ok(scalar(@a_reqs), '>', 16, 'the run made more reads than the quota holds (' . scalar(@a_reqs) . ')');
is(scalar(grep { $_->{status} == 429 } @a_reqs), 0, 'and was never throttled: its requests were paced as the reads ran low');
my $span = iso_time($a_reqs[-1]{time}) - iso_time($a_reqs[0]{time});
cmp_ok($span, '>=', (@a_reqs - 12) / 4 * 0.9, "its requests were spread over the refill ($span s for " . scalar(@a_reqs) . ')');
$sim->config(read_bucket_size => 250, read_refill_per_s => 25);

# ---- the token renewed mid-run, and on ExpiredAuthenticationToken
$sim->config(token_lifetime_s => 4, latency_ms => 300);
$sim->clear_log;
like(run($three), qr/^succeeded\|/, 'a run longer than the token lives succeeds');
my @tokens = entries_of('token');
cmp_ok(scalar(@tokens), '>=', 2, 'the token was renewed during the run (' . scalar(@tokens) . ' tokens)');
is(scalar(grep { $_->{list} ne 'token' && $_->{auth} ne 'valid' } @{ log_entries() }), 0,
	'before it expired: no request carried an expired token');
$sim->config(token_lifetime_s => 3599, latency_ms => 0);
$sim->faults({ kind => 'expire_token', list => 'nics', subscription => $sub{c}, times => 1 });
$sim->clear_log;
like(run($three), qr/^succeeded\|/, 'ExpiredAuthenticationToken: the token is renewed and the page sent again');
is(scalar(entries_of('token')), 2, 'a second token was had for it');
is(join(',', map { $_->{status} } grep { ($_->{page} // 0) == 1 } entries_of('nics', $sub{c})), '401,200',
	'the page was refused once, then answered');

# ---- a nextLink to another origin is not followed
my @c_vms = @{ $sim->control('GET', "/_sim/subscriptions/$sub{c}/vms")->{vms} };
$sim->control('DELETE', "/_sim/subscriptions/$sub{c}/vms/$c_vms[0]{name}");
my $c_state = ci_state($three, $sub{c});
$sim->faults({ kind => 'foreign_next', list => 'nics', subscription => $sub{c}, page => 1,
	next_url => $foreign->url . "/subscriptions/$sub{c}/providers/Microsoft.Network/networkInterfaces?api-version=2024-05-01&\$skiptoken=x", times => 1 });
$foreign->clear_log;
like(run($three), qr/^partial\|/, 'a nextLink to another origin fails that subscription: partial');
like(last_run_errors($three), qr/^$sub{c}: subscription $sub{c}: Azure's response to GET \/subscriptions\/$sub{c}\/providers\/Microsoft.Network\/networkInterfaces \(page 1\) links the next page to another origin \(https:\/\/127\.0\.0\.2:\d+\); the run was stopped so that the access token is not sent there$/,
	'the run error says why');
is(scalar @{ $foreign->log_entries }, 0, 'the other origin received no request');
is(ci_state($three, $sub{c}), $c_state, 'nothing of that subscription changed (the VM deleted meanwhile is not marked missing)');

# ---- every subscription the principal can read, when none is configured
$sim->control('PATCH', "/_sim/subscriptions/$sub{rgonly}", { roles => { $client => undef } });
my $now_total = 0;
$now_total += $_->{vms} for grep { $_->{state} eq 'Enabled' && ($_->{roles}{$client} // '') eq 'Reader' }
  @{ $sim->control('GET', '/_sim/subscriptions')->{subscriptions} };
$sim->clear_log;
like(run($c), qr/^succeeded\|$now_total\|$now_total\|/, "without subscription_ids: every enabled subscription is listed ($now_total VMs)");
is(scalar(entries_of('subscriptions')), 1, 'after one subscriptions list');
is(scalar(grep { ($_->{subscription} // '') eq $sub{disabled} } @{ log_entries() }), 0, 'the disabled one is left out');

# ---- a failing token request fails the run with the reason, changing nothing
my $three_state = ci_state($three);
sql("SET ROLE app_admin; SELECT cloudconn.connector_set_token($three, 'a-revoked-secret')");
like(run($three), qr/^failed\|0\|0\|0\|0\|0\|Azure rejected the client secret of application $client \(AADSTS7000215\)/,
	'a rejected secret fails the run with the reason');
is(ci_state($three), $three_state, 'a failed run changes no CI');

# ---- secrets: never in the server log (debug5), results, errors or pg_dump
my $issued = $sim->control('GET', '/_sim/issued-tokens');
cmp_ok(scalar @{ $issued->{tokens} }, '>=', 5, 'the simulator issued tokens (' . scalar(@{ $issued->{tokens} }) . ')');
push @results, sql(q{SELECT coalesce(string_agg(coalesce(error, ''), ' / '), '') FROM cloudconn.runs}),
	sql(q{SELECT coalesce(string_agg(message, ' / '), '') FROM cloudconn.run_errors}),
	sql(q{SELECT coalesce(string_agg(attributes::text || coalesce(os_info, ''), ' '), '') FROM cloudconn.configuration_items});
my $dump = `pg_dump -h @{[$node->host]} -p @{[$node->port]} -d postgres 2>&1`;
like($dump, qr/COPY cloudconn\.connector /, 'pg_dump includes the connector table');
$node->stop;
my $server_log = slurp_file($node->logfile);
like($server_log, qr/cloudconn: run \d+ of connector \d+ succeeded: discovered $total, created $total/, 'the run LOG lines are there');
my $everything = join("\n", $server_log, $dump, @results);
my @leaks;
for my $s (@{ $issued->{secrets} }, $secret, 'not-the-secret-value', 'a-revoked-secret')
{
	push @leaks, 'a client secret' if index($everything, $s) >= 0;
}
for my $tk (@{ $issued->{tokens} })
{
	my ($h, $p, $sig) = split /\./, $tk;
	push @leaks, 'an access token' if index($everything, $tk) >= 0 || index($everything, substr($sig, 0, 40)) >= 0
	  || index($everything, $p) >= 0;
}
like($everything, qr/AADSTS7000215.*\Q$client\E|\Q$client\E.*AADSTS7000215/s, '(what is searched holds the results and errors)');
is(join(',', @leaks), '', 'no client secret and no access token (nor part of one) in the server log at debug5, the results, the errors or pg_dump');
unlike($server_log, qr/Bearer eyJ/, 'no Authorization header in the server log');

$sim->stop;
$foreign->stop;
done_testing();
