# Failover (README: Backup, restore and high availability).  On a hot
# standby the scheduler does not run (nothing written, no error logged over
# 30 s), reads and connector_test() work, and every function that writes
# fails with SQLSTATE 25006 and a message of cloudconn's saying the server
# is a standby (no internal SQL in a CONTEXT).  After the primary dies and
# the standby is promoted, the launcher starts within seconds, marks failed
# the run the old primary's death cut off, and catches up the fire time
# that passed while no primary ran, exactly once per daily connector.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use POSIX qw(floor);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CloudconnSim;

my $sim = CloudconnSim::start_digitalocean(args => [ '--no-burst-limit', '--hourly-limit', '1000000' ]);
$sim->control('POST', '/_sim/droplets/generate', { count => 30, regions => ['ams3'], seed => 5 });
my $token = $CloudconnSim::TOKEN;

my $primary = CloudconnSim::cluster('primary', $sim->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$sim->url]}'
cloudconn.http_max_retries = 0
cloudconn.daily_run_at = '12:00'
cloudconn.timezone = 'UTC'
}, { allows_streaming => 1 });
sub on_primary { $primary->safe_psql('postgres', $_[0]) }

on_primary(qq{CREATE ROLE viewer LOGIN;
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});
my @daily = map { on_primary("SELECT cloudconn.connector_create(1, 'daily $_', 'digitalocean', 'daily', '{}', '$token')") } 1 .. 3;
my $manual = on_primary("SELECT cloudconn.connector_create(1, 'manual', 'digitalocean', 'manual', '{}', '$token')");
# the daily connectors' scheduled runs of today: due again at the next fire time only
$primary->poll_query_until('postgres', 'SELECT launcher_pid IS NOT NULL FROM cloudconn.scheduler') or die;
on_primary('SELECT cloudconn.scheduler_fire_now()');
$primary->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM cloudconn.run WHERE trigger = 'scheduled' AND status = 'succeeded'") or die;
on_primary("SELECT cloudconn.connector_run($manual)");

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
chmod 0600, $standby->data_dir . '/cloudconn.key';    # (the framework's copy loses the mode)
$standby->start;
$primary->wait_for_catchup($standby);
sub on_standby { $standby->safe_psql('postgres', $_[0]) }

# ---- a standby: the scheduler waits, without writing or logging errors
is(on_standby('SELECT pg_is_in_recovery()'), 't', 'the standby is in recovery');
my $log_start = -s $standby->logfile;
sleep 30;
is(on_standby("SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'cloudconn%'"), '0',
	'no cloudconn worker runs on the standby');
is(on_standby('SELECT launcher_pid IS NULL AND next_fire_at IS NULL FROM cloudconn.scheduler'), 't',
	'and scheduler_status says so');
my $quiet = substr(slurp_file($standby->logfile), $log_start);
unlike($quiet, qr/\b(ERROR|FATAL|PANIC|WARNING):/, 'no error or warning in the standby\'s log over 30 s');
is(on_standby('SELECT count(*) FROM cloudconn.configuration_item'), '120', 'the standby has the primary\'s CIs');
like(on_standby("SELECT cloudconn.connector_test($manual)"), qr/^\{"ok": true/, 'connector_test works on a standby');

# ---- functions that write fail with 25006 and our message
my %writes = (
	connector_create => "cloudconn.connector_create(1, 'new', 'digitalocean', 'manual', '{}', '$token')",
	connector_update => "cloudconn.connector_update($manual, name => 'renamed')",
	connector_set_token => "cloudconn.connector_set_token($manual, '$token')",
	connector_delete => "cloudconn.connector_delete($manual)",
	grant_permission => "cloudconn.grant_permission('viewer', 1, 'CloudConnector:read')",
	revoke_permission => "cloudconn.revoke_permission('viewer', 1, 'CloudConnector:read')",
	connector_run => "cloudconn.connector_run($manual)",
	rotate_token_key => "cloudconn.rotate_token_key(old_key_file => 'old.key')",
);
for my $f (sort keys %writes)
{
	my ($rc, $out, $err) = $standby->psql('postgres', "\\set VERBOSITY verbose\nSELECT $writes{$f}", timeout => 30);
	like($err, qr/(?:^|: )ERROR:  25006: cloudconn\.$f\(\) cannot run on a standby server\nDETAIL:  This server is a hot standby/,
		"$f: SQLSTATE 25006, saying the server is a standby");
	unlike($err, qr/CONTEXT|read-only transaction/, "$f: no internal SQL in a CONTEXT");
}
{
	my ($rc, $out, $err) = $standby->psql('postgres', "SELECT cloudconn.connector_run($manual, wait => false)", timeout => 30);
	like($err, qr/cannot run on a standby server/, 'connector_run(wait => false) too, without waiting for a worker');
}

# ---- the primary dies during a run, a fire time passes, the standby is promoted
# The next fire time is made 15 s from now: cloudconn.daily_run_at 12:00 in
# a time zone whose clock is set to reach 12:00 then (a POSIX time zone,
# offset to the second).
my $fire_at = time + 15;
my $secs_to_noon = (12 * 3600 - floor($fire_at) % 86400) % 86400;
$secs_to_noon -= 86400 if $secs_to_noon > 43200;
my $offset = sprintf('%s%02d:%02d:%02d', $secs_to_noon >= 0 ? '-' : '+',
	abs($secs_to_noon) / 3600, abs($secs_to_noon) % 3600 / 60, abs($secs_to_noon) % 60);
for my $node ($primary, $standby)
{
	$node->append_conf('postgresql.conf', "cloudconn.timezone = '<+0000>$offset'");
	$node->reload;
}
$primary->poll_query_until('postgres',
	"SELECT abs(extract(epoch FROM next_fire_at) - " . floor($fire_at) . ") < 2 FROM cloudconn.scheduler")
  or die 'the primary did not take the new fire time';
pass('the next fire time is 15 s away');

$sim->config(latency_ms => 20000);
my $cut = on_primary("SELECT cloudconn.connector_run($manual, wait => false)");
$standby->poll_query_until('postgres', "SELECT status = 'running' FROM cloudconn.run WHERE id = $cut")
  or die 'the running run did not reach the standby';
$primary->stop('immediate');
$sim->config(latency_ms => 0);
cmp_ok(time, '<', $fire_at, 'the primary died before the fire time');
usleep(100_000) while time < $fire_at + 1;

my $mark = on_standby('SELECT max(id) FROM cloudconn.run');
my $t0 = time;
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT launcher_pid IS NOT NULL FROM cloudconn.scheduler')
  or die 'no launcher after promotion';
my $started = time - $t0;
cmp_ok($started, '<', 15, sprintf('after promotion the launcher starts within seconds (%.1f s)', $started));
$standby->poll_query_until('postgres', "SELECT status = 'failed' FROM cloudconn.run WHERE id = $cut")
  or die 'the cut-off run was not marked failed';
like(on_standby("SELECT error FROM cloudconn.run WHERE id = $cut"), qr/interrupted/,
	'the run the old primary\'s death cut off is marked failed');
$standby->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM cloudconn.run WHERE id > $mark AND trigger = 'scheduled' AND status <> 'running'")
  or die 'the missed fire time was not caught up';
sleep 3;
is(on_standby("SELECT string_agg(connector_id || ' ' || status, ', ' ORDER BY connector_id) FROM cloudconn.run
	WHERE id > $mark AND trigger = 'scheduled'"),
	join(', ', map { "$_ succeeded" } @daily), 'the fire time missed while no primary ran is caught up once per daily connector');
is(on_standby("SELECT count(*) FROM cloudconn.run WHERE id > $mark AND connector_id = $manual"), '0',
	'the manual connector is not');
my $id = on_standby("SELECT cloudconn.connector_create(1, 'after', 'digitalocean', 'manual', '{}', '$token')");
my $run = on_standby("SELECT cloudconn.connector_run($id)");
is(on_standby("SELECT status FROM cloudconn.runs WHERE id = $run"), 'succeeded', 'the promoted server writes and runs');

$standby->stop;
$sim->stop;
done_testing();
