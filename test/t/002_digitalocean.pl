# DigitalOcean discovery end to end against the simulator (test/sim):
# connector_test, runs and their counts, the delta semantics of the merge,
# the region filter, retries, failures that change nothing, per-resource
# errors, the same-origin rule for pagination, timeouts, cancellation,
# concurrency, live progress, interrupted runs, and no token in the log.
# Its connectors discover droplets only (settings.resource_types), so that
# its pages and counts keep their meaning; 014_digitalocean_types tests the
# other types.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use MIME::Base64 qw(encode_base64);
use IO::Socket::INET;
use CloudconnSim;

my $ca = CloudconnSim::test_ca();
my $sim = CloudconnSim::start_digitalocean(ca => $ca);
# a second origin that must never be contacted (the hostile "next" link)
my $foreign = CloudconnSim::start_digitalocean(ca => $ca, host => '127.0.0.2');

my $node = CloudconnSim::cluster('digitalocean', $sim->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$sim->url]}'
cloudconn.http_max_retries = 3
cloudconn.http_timeout_ms = 3000
cloudconn.http_connect_timeout_ms = 2000
log_min_messages = debug5
log_statement = none
log_min_error_statement = panic
});
my $token = $CloudconnSim::TOKEN;

$node->safe_psql('postgres', q{
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, parent_id, name) VALUES (1, NULL, 'root'), (2, 1, 'team');
	CREATE ROLE app_admin;
	SELECT cloudconn.grant_permission('app_admin', 1, 'CloudConnector:manage');
	SELECT cloudconn.grant_permission('app_admin', 1, 'ConfigurationItem:manage');
});

sub sql { $node->safe_psql('postgres', $_[0]) }

sub create_connector
{
	my ($name, $tok, $settings) = @_;
	$settings //= '{"resource_types": ["digitalocean_droplet"]}';
	return sql(qq{SET ROLE app_admin; SELECT cloudconn.connector_create(1, '$name', 'digitalocean', 'manual', '$settings', '$tok')});
}

sub run
{
	my ($id) = @_;
	my $run = sql("SET ROLE app_admin; SELECT cloudconn.connector_run($id)");
	return sql(qq{SELECT status, discovered, created, updated, unchanged, error_count, coalesce(error, '')
		FROM cloudconn.runs WHERE id = $run});
}

sub ci_state
{
	my ($id) = @_;
	return sql(qq{SELECT md5(coalesce(string_agg(ci::text, ',' ORDER BY id), ''))
		FROM cloudconn.configuration_item ci WHERE source_connector_id = $id});
}

# ---- connector_test
my $c = create_connector('droplets', $token);
my $test = sql("SET ROLE app_admin; SELECT cloudconn.connector_test($c)");
like($test, qr/^\{"ok": true, "account": \{.*"uuid": "/, 'connector_test: ok with the account');
unlike($test, qr/dop_v1/, 'connector_test result has no token');

my $bad = create_connector('bad token', 'dop_v1_' . ('f' x 64));
like(sql("SELECT cloudconn.connector_test($bad)"),
	qr/"ok": false, "error": "DigitalOcean rejected the token \(HTTP 401\).*revoked, expired or mistyped/,
	'connector_test: 401 says the token was rejected');
my $noscope = create_connector('no scope', $CloudconnSim::NOSCOPE_TOKEN);
like(sql("SELECT cloudconn.connector_test($noscope)"), qr/"ok": false, "error": "the DigitalOcean token lacks read scope \(HTTP 403\)/,
	'connector_test: 403 says the token lacks read scope');

# ---- initial run: 450 droplets, three pages of 200
$sim->control('POST', '/_sim/droplets/generate', { count => 450, regions => [ 'ams3', 'nyc1', 'fra1' ], seed => 7 });
$sim->clear_log;
is(run($c), 'succeeded|450|450|0|0|0|', 'initial run creates every droplet');
my @pages = grep { $_->{path} eq '/v2/droplets' } @{ $sim->log_entries };
is(scalar @pages, 3, 'three pages were fetched');
like($pages[0]{query}, qr/per_page=200/, 'pages of 200 were asked for');
is(sql(qq{SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c
	AND ci_type = 'digitalocean_droplet' AND external_id ~ '^do:droplet:[0-9]+\$' AND entity_id = 1
	AND hostname = name AND attributes ? 'region' AND attributes ? 'size' AND first_discovered_at IS NOT NULL}),
	'450', 'CIs carry the mapping of README: DigitalOcean');
is(sql(qq{SELECT pages_fetched, resources_seen FROM cloudconn.runs WHERE connector_id = $c}), '3|450',
	'the run records pages and resources');

# ---- unchanged re-run writes nothing
# (a worker's table statistics are flushed when it exits)
sub workers_gone
{
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'")
	  or die 'run workers did not exit';
}
my $stats = "SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relid = 'cloudconn.configuration_item'::regclass";
workers_gone();
my $before = sql($stats);
like($before, qr/^450\|/, 'the initial run shows in pg_stat_user_tables');
is(run($c), 'succeeded|450|0|0|450|0|', 'unchanged re-run: everything unchanged');
workers_gone();
is(sql($stats), $before, 'pg_stat_user_tables: zero rows inserted, updated or deleted by the re-run');

# ---- user edits survive; rename, removal and addition are the delta
my ($first, $second) = map { $_->{id} } @{ $sim->droplets }[0, 1];
sql(qq{UPDATE cloudconn.configuration_item SET description = 'owned by web team', entity_id = 2
	WHERE external_id = 'do:droplet:$first' AND source_connector_id = $c});
$sim->control('PATCH', "/_sim/droplets/$first", { name => 'renamed-web' });
$sim->control('DELETE', "/_sim/droplets/$second");
my $added = $sim->control('POST', '/_sim/droplets/add', { name => 'brand-new', region => 'ams3' });
is(run($c), 'succeeded|450|1|1|448|0|', 'after a rename, a removal and an addition: updated 1, created 1');
is(sql(qq{SELECT name, hostname, description, entity_id FROM cloudconn.configuration_item
	WHERE external_id = 'do:droplet:$first' AND source_connector_id = $c}),
	'renamed-web|renamed-web|owned by web team|2', 'provider fields refreshed, user edits kept');
is(sql(qq{SELECT missing_since IS NOT NULL FROM cloudconn.configuration_item WHERE external_id = 'do:droplet:$second'}),
	't', 'the removed droplet stays, marked missing');
$sim->control('POST', '/_sim/droplets/add', { id => $second, name => 'came-back', region => 'nyc1' });
is(run($c), 'succeeded|451|0|1|450|0|', 'the returning droplet is refreshed (renamed while away)');
is(sql(qq{SELECT missing_since IS NULL FROM cloudconn.configuration_item WHERE external_id = 'do:droplet:$second'}),
	't', 'missing_since is cleared when it comes back');

# ---- region filter
my $ams = create_connector('amsterdam', $token, '{"region": "ams3", "resource_types": ["digitalocean_droplet"]}');
my $ams_count = grep { $_->{region}{slug} eq 'ams3' } @{ $sim->droplets };
like(run($ams), qr/^succeeded\|$ams_count\|$ams_count\|0\|0\|0\|/, 'region filter: only ams3 droplets');
is(sql(qq{SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $ams AND attributes->>'region' <> 'ams3'}),
	'0', 'no droplet of another region');

# ---- 429 and 5xx are retried until the run succeeds
$sim->faults({ kind => 'status', status => 429, retry_after => 1, page => 2, times => 1 },
	{ kind => 'status', status => 503, page => 3, times => 2 });
$sim->clear_log;
like(run($c), qr/^succeeded\|/, '429 and 503 retried: run succeeds');
my @statuses = map { $_->{status} } grep { $_->{path} eq '/v2/droplets' } @{ $sim->log_entries };
is(join(',', @statuses), '200,429,200,503,503,200', 'the simulator saw the retries');

# ---- retries exhausted: failed, nothing changed, nothing marked missing
$sim->control('DELETE', "/_sim/droplets/$first");    # would be marked missing by a complete run
my $state = ci_state($c);
$sim->faults({ kind => 'status', status => 500, page => 2, times => -1 });
my $r = run($c);
like($r, qr/^failed\|0\|0\|0\|0\|0\|DigitalOcean answered GET \/v2\/droplets \(page 2\) with HTTP 500/,
	'retries exhausted: the run fails with the reason');
is(ci_state($c), $state, 'a failed run changes no CI (nothing marked missing)');
$sim->control('DELETE', '/_sim/faults');

# ---- a malformed page: failed, nothing lost
$sim->faults({ kind => 'malformed', page => 2, times => -1 });
like(run($c), qr/^failed\|.*malformed JSON in DigitalOcean's response to GET \/v2\/droplets \(page 2\)/,
	'malformed JSON: failed with a clear reason');
is(ci_state($c), $state, 'nothing lost or changed');
$sim->faults({ kind => 'truncate', page => 3, times => -1 });
like(run($c), qr/^failed\|/, 'a truncated page fails the run');
is(ci_state($c), $state, 'nothing changed by it either');
# JSON is UTF-8: bytes that are not never reach a CI
$sim->faults({ kind => 'malformed', page => 1, times => -1,
	body_base64 => encode_base64(qq({"droplets":[{"id":1,"name":"web-\xff\xfe"}],"links":{},"meta":{"total":1}}), '') });
like(run($c), qr/^failed\|.*invalid UTF-8 in DigitalOcean's response to GET \/v2\/droplets \(page 1\)/,
	'a page that is not UTF-8: failed with a clear reason');
is(ci_state($c), $state, 'nothing changed by it');
# a number out of numeric's range: a malformed page, and an error body left unread
$sim->faults({ kind => 'malformed', page => 1, times => 1,
	body => '{"droplets":[{"id":1e1000000}],"links":{},"meta":{"total":1}}' });
like(run($c), qr/^failed\|.*\|malformed JSON in DigitalOcean's response to GET \/v2\/droplets \(page 1\)$/,
	'a page with a number out of range: failed as malformed');
$sim->faults({ kind => 'status', status => 404, page => 1, times => -1, body => '{"id":"not_found","n":1e1000000}' });
like(run($c), qr/^failed\|.*\|DigitalOcean answered GET \/v2\/droplets \(page 1\) with HTTP 404$/,
	'an error body with one: the usual reason');
$sim->faults({ kind => 'status', status => 404, page => 1, times => -1, body => '{"id":"not_found","n":1e-99999999999999999999}' });
like(run($c), qr/^failed\|.*\|DigitalOcean answered GET \/v2\/droplets \(page 1\) with HTTP 404$/,
	'also with an exponent beyond what a long holds');
is(ci_state($c), $state, 'neither changed anything');
$sim->control('DELETE', '/_sim/faults');

# ---- a droplet with a malformed field: a per-resource error, the rest merged
$sim->faults({ kind => 'bad_droplet', field => 'ip', page => 1, index => 0, times => 1 });
$r = run($c);
is($r, 'partial|450|0|0|449|1|', 'malformed address: partial, one error, the others merged');
like(sql(qq{SELECT external_id || ': ' || message FROM cloudconn.run_errors
	WHERE run_id = (SELECT max(id) FROM cloudconn.run WHERE connector_id = $c)}),
	qr/^do:droplet:\d+: droplet \d+ has a malformed IP address/, 'the run error names the droplet');
is(sql(qq{SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c AND missing_since IS NOT NULL
	AND external_id <> 'do:droplet:$first'}), '0', 'the droplet with the error was not marked missing');
$sim->faults({ kind => 'bad_droplet', field => 'id', page => 1, index => 0, times => 1 });
is(run($c), 'partial|450|0|0|449|1|', 'a droplet without an id: partial');
is(sql(qq{SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c AND missing_since IS NOT NULL
	AND external_id <> 'do:droplet:$first'}), '0', 'with an unidentified failure nothing is marked missing');

# ---- the hostile next link is not followed
$state = ci_state($c);
$sim->faults({ kind => 'foreign_next', page => 1, next_url => $foreign->url . '/v2/droplets?page=2&per_page=200', times => 1 });
$foreign->clear_log;
like(run($c), qr/^failed\|.*links the next page to another origin \(https:\/\/127\.0\.0\.2:\d+\); the run was stopped so that the token is not sent there/,
	'a next link to another origin fails the run');
is(scalar @{ $foreign->log_entries }, 0, 'the other origin received no request');
is(ci_state($c), $state, 'nothing changed');

# ---- timeouts
$sim->faults({ kind => 'slow', delay_ms => 5000, page => 2, times => -1 });
my $t0 = time;
like(run($c), qr/^failed\|.*(timed out|Timeout)/i, 'a response slower than the timeout fails the run');
cmp_ok(time - $t0, '<', 40, 'within the retries of the timeout');
$sim->control('DELETE', '/_sim/faults');

# ---- cancelling a waiting connector_run
$sim->config(latency_ms => 1500);
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_until(qr/started/, qq{\\echo started\nSELECT cloudconn.connector_run($c);\n});
usleep(1_000_000);
$t0 = time;
sql(q{SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT cloudconn.connector_run%' AND pid <> pg_backend_pid()});
$bg->query('SELECT 1');
my $elapsed = time - $t0;
cmp_ok($elapsed, '<', 2, "a cancelled connector_run returns within 2 s ($elapsed s)");
$bg->quit;
# the run itself goes on
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM cloudconn.run WHERE status = 'running'")
  or die 'run did not finish';

# ---- two concurrent calls make one run; progress is visible while it goes
my $r1 = sql("SELECT cloudconn.connector_run($c, wait => false)");
my $r2 = sql("SELECT cloudconn.connector_run($c, wait => false)");
is($r2, $r1, 'a second connector_run returns the running run');
$node->poll_query_until('postgres', "SELECT pages_fetched >= 1 AND resources_seen >= 200 FROM cloudconn.runs WHERE id = $r1 AND status = 'running'")
  or die 'no progress seen';
pass('the runs view shows pages and resources while the run goes');
$node->poll_query_until('postgres', "SELECT status <> 'running' FROM cloudconn.run WHERE id = $r1") or die;
is(sql("SELECT count(*) FROM cloudconn.run WHERE id >= $r1"), '1', 'only one run was made');

# ---- a run whose worker dies is not left running
$r1 = sql("SELECT cloudconn.connector_run($c, wait => false)");
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'") or die;
sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'cloudconn run'");
$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'") or die;
$sim->config(latency_ms => 0);
like(run($c), qr/^succeeded\|/, 'the next run succeeds');
like(sql("SELECT status || ': ' || error FROM cloudconn.run WHERE id = $r1"), qr/^failed: the run was interrupted/,
	'the killed run is marked failed as interrupted');

# ---- waiting needs to see the run's own commits: refused under REPEATABLE READ
my (undef, undef, $rr_err) = $node->psql('postgres',
	"BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT cloudconn.connector_run($c); COMMIT;");
like($rr_err, qr/cannot wait inside a REPEATABLE READ or SERIALIZABLE transaction/, 'wait => true is refused under REPEATABLE READ');

# ---- a search_path set on the database cannot reach the run worker, which
# acts as a superuser
sql(q{CREATE SCHEMA evil;
	CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked'; END$$;
	CREATE FUNCTION evil.count(anyelement) RETURNS bigint LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'hijacked'; END$$;
	ALTER DATABASE postgres SET search_path = evil, pg_catalog, public;});
like(run($c), qr/^succeeded\|/, 'the run ignores the database search_path');
sql(q{ALTER DATABASE postgres RESET search_path; DROP SCHEMA evil CASCADE;});

# ---- in a LATIN1 database, provider text is converted; a resource whose
# text LATIN1 cannot hold is a per-resource error naming it, and the rest
# merges (that resource's CI is left as it was)
$node->safe_psql('postgres', "CREATE DATABASE latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
sub latin1 { $node->safe_psql('latin1', $_[0]) }
latin1(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root')});
my $lc = latin1(qq{SELECT cloudconn.connector_create(1, 'latin', 'digitalocean', 'manual', '{"resource_types": ["digitalocean_droplet"]}', '$token')});
my $first_id = $sim->droplets->[0]{id};
$sim->faults({ kind => 'bad_droplet', field => 'name', value => "caf\x{e9}-\x{fc}", page => 1, index => 0, times => 1 });
sub latin1_run { my $id = latin1("SELECT cloudconn.connector_run($lc)"); latin1("SELECT status || ': ' || coalesce(error, '') FROM cloudconn.runs WHERE id = $id") }
sub latin1_errors { latin1("SELECT string_agg(external_id || ': ' || message, ' / ') FROM cloudconn.run_errors WHERE run_id = (SELECT max(id) FROM cloudconn.run)") }
is(latin1_run(), 'succeeded: ', 'a run in a LATIN1 database');
is(latin1("SELECT encode(convert_to(name, 'UTF8'), 'hex') FROM cloudconn.configuration_item"
		. " WHERE external_id = 'do:droplet:$first_id'"),
	'636166c3a92dc3bc', 'a name with accents arrives as the same characters');
my $latin1_state = latin1("SELECT md5(string_agg(ci::text, ',' ORDER BY id)) FROM cloudconn.configuration_item ci");
$sim->faults({ kind => 'bad_droplet', field => 'name', value => "\x{6771}\x{4eac}", page => 1, index => 0, times => 1 });
is(latin1_run() . ' ' . latin1_errors(),
	qq{partial:  do:droplet:$first_id: do:droplet:$first_id has characters that the database's encoding "LATIN1" cannot hold},
	'a name LATIN1 cannot hold: a per-resource error naming the droplet');
is(latin1("SELECT md5(string_agg(ci::text, ',' ORDER BY id)) FROM cloudconn.configuration_item ci"), $latin1_state,
	'it changes no CI (the others merged unchanged)');
# (a page of that one droplet, complete: the others are marked missing)
$sim->faults({ kind => 'malformed', page => 1, times => 1,
	body => '{"droplets":[{"id":' . $first_id . ',"name":"\\u6771"}],"links":{},"meta":{"total":1}}' });
is(latin1_run() . ' ' . latin1_errors(),
	qq{partial:  do:droplet:$first_id: do:droplet:$first_id has characters that the database's encoding "LATIN1" cannot hold},
	'so is such a character written as a \u escape');
is(latin1("SELECT missing_since IS NULL FROM cloudconn.configuration_item WHERE external_id = 'do:droplet:$first_id'"), 't',
	'and that droplet is not marked missing');
$sim->faults({ kind => 'status', status => 404, page => 1, times => -1,
	body => '{"id":"\\u6771","message":"The resource you were accessing could not be found."}' });
like(latin1_run(), qr/^failed: DigitalOcean answered GET \/v2\/droplets \(page 1\) with HTTP 404$/,
	'an error body it cannot read leaves the usual reason');
$sim->control('DELETE', '/_sim/faults');

# ---- messages name no superuser-only setting: not the API's URL, host or
# port (cloudconn.digitalocean_api_url).  Readers see runs.error and
# run_errors, a manager connector_test's result and every message sent to
# its session; the server log gets the host.
my $port = $sim->{port};
# a port just freed, which nothing listens on; a certificate that does not name 127.0.0.3
my $free = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp', Listen => 1) or die $!;
my $free_port = $free->sockport;
close $free;
my $refused_url = "https://127.0.0.1:$free_port";
my $mismatch = CloudconnSim::start_digitalocean(ca => $ca, host => '127.0.0.3');
sub manager_test
{
	my ($url) = @_;
	# a superuser points the session at the URL; the manager asks for every message
	my (undef, $out, $err) = $node->psql('postgres', qq{SET cloudconn.digitalocean_api_url = '$url';
		SET ROLE app_admin; SET client_min_messages = debug5; SELECT cloudconn.connector_test($c)});
	return "$out\n$err";
}
my $refused = manager_test($refused_url);
like($refused, qr/"ok": false, "error": "could not reach DigitalOcean: could not connect to the DigitalOcean API for GET \/v2\/account: Connection refused"/,
	'connection refused: connector_test names the DigitalOcean API');
unlike($refused, qr/127\.0\.0\.1|:$free_port\b/, 'and not its host or port, nor does any message sent to the session');
my $tls = manager_test($mismatch->url);
like($tls, qr/"ok": false, "error": "could not reach DigitalOcean: TLS certificate of the DigitalOcean API could not be verified \(GET \/v2\/account\): the certificate does not name that host"/,
	'a certificate for another host: connector_test names the DigitalOcean API');
unlike($tls, qr/127\.0\.0\.3|:$mismatch->{port}\b/, 'and not its host or port');
my $ok = manager_test($sim->url);
like($ok, qr/"ok": true/, 'a working connector_test, with debug5 messages sent to the session');
unlike($ok, qr/127\.0\.0\.1|:$port\b/, 'sends the session no line naming the host or port');
# a run, in its worker, with the URL from the configuration file
sub set_api_url
{
	my ($url) = @_;
	sql("ALTER SYSTEM SET cloudconn.digitalocean_api_url = '$url'; SELECT pg_reload_conf()");
	$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.digitalocean_api_url') = '$url'")
	  or die 'reload not seen';
}
set_api_url($refused_url);
like(run($c), qr/^failed\|0\|0\|0\|0\|0\|could not reach DigitalOcean: could not connect to the DigitalOcean API for GET \/v2\/droplets: Connection refused$/,
	'a run that cannot connect: runs.error names the DigitalOcean API');
set_api_url($sim->url);
like(run($c), qr/^succeeded\|/, 'and the next one, with the URL back, succeeds');
my $seen = sql(q{SET ROLE app_admin; SELECT coalesce(string_agg(error, ' / '), '') FROM cloudconn.runs})
  . sql(q{SET ROLE app_admin; SELECT coalesce(string_agg(message, ' / '), '') FROM cloudconn.run_errors});
like($seen, qr/timed out after \d+ ms waiting for the DigitalOcean API \(GET \/v2\/droplets\)/, 'runs.error holds the timeout of earlier');
unlike($seen, qr/127\.0\.0\.1|:$port\b|\Q@{[$sim->url]}\E/, 'no run error a reader sees names the API\'s host, port or URL');
$mismatch->stop;

# ---- the token never reached the server log
$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/\Q$token\E/, 'the token is nowhere in the server log (debug5)');
unlike($log, qr/5317531753175317/, 'not even in part');
like($log, qr/cloudconn: run \d+ of connector \d+ succeeded: discovered 450, created 450/, 'one LOG line per run with its counts');
like($log, qr/LOG:  cloudconn: GET https:\/\/127\.0\.0\.1:$free_port\/v2\/account \(the DigitalOcean API\) failed after 4 attempts: could not connect to the DigitalOcean API/,
	'the server log names the host a request failed to reach, once for its attempts');
like($log, qr/DETAIL:  libcurl: SSL: no alternative certificate subject name matches target host name '127\.0\.0\.3'/,
	'with libcurl\'s own text');
like($log, qr/cloudconn: GET https 127\.0\.0\.1:$port \/v2\/account -> 200 \(attempt 1/, 'and, at debug levels, every attempt');

$sim->stop;
$foreign->stop;
done_testing();
