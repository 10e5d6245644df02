# The nightly scheduler: daily connectors run at the fire time with trigger
# "scheduled" (manual ones never), at most max_parallel_runs at once, a
# hanging provider does not hold up the others, a fire time missed while the
# server was down is caught up once, interrupted runs are marked failed, the
# launcher comes back after kill -9 and pg_terminate_backend, shutdown is
# prompt, and without the extension the launcher idles and says so once.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CloudconnSim;

my $sim = CloudconnSim::start_digitalocean(args => [ '--no-burst-limit', '--hourly-limit', '1000000' ]);
$sim->control('POST', '/_sim/droplets/generate', { count => 30, regions => ['ams3'], seed => 3 });

my $node = CloudconnSim::cluster('scheduler', $sim->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$sim->url]}'
cloudconn.max_parallel_runs = 3
cloudconn.http_max_retries = 0
cloudconn.http_timeout_ms = 3000
cloudconn.daily_run_at = '00:00'
cloudconn.timezone = 'UTC'
restart_after_crash = on
});
my $token = $CloudconnSim::TOKEN;
sub sql { $node->safe_psql('postgres', $_[0]) }

# poll_query_until across the crash restart a kill -9 causes (a psql that
# cannot connect yet may exit before reading its query: a broken pipe)
sub poll_across_restart
{
	my ($query) = @_;
	for (1 .. 600)
	{
		my $ok = eval { $node->poll_query_until('postgres', $query) };
		return 1 if $ok;
		usleep(100_000);
	}
	return 0;
}

sub launcher_pid
{
	return sql("SELECT launcher_pid FROM cloudconn.scheduler");
}

# ---- without the extension the launcher idles and says so once
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'cloudconn scheduler'") or die;
sleep 11;    # past the launcher's 10 s recheck
my $log = slurp_file($node->logfile);
my @waiting = ($log =~ /extension "cloudconn" is not created in database "postgres"; waiting for it/g);
is(scalar @waiting, 1, 'without the extension the launcher logs once and waits');

sql(q{CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});
# (droplets only: a hanging droplets listing is then a failed run)
my $droplets = '{"resource_types": ["digitalocean_droplet"]}';
my @daily = map { sql("SELECT cloudconn.connector_create(1, 'daily $_', 'digitalocean', 'daily', '$droplets', '$token')") } 1 .. 10;
my $manual = sql("SELECT cloudconn.connector_create(1, 'manual', 'digitalocean', 'manual', '$droplets', '$token')");
# (created after the latest fire time, midnight, they are due only at the
# fires scheduler_fire_now() makes: the launcher never catches them up here)

$node->poll_query_until('postgres', 'SELECT launcher_pid IS NOT NULL FROM cloudconn.scheduler') or die;
like(sql('SELECT next_fire_at > now() FROM cloudconn.scheduler'), qr/^t$/, 'the scheduler shows its next fire time');

# ---- a fire: every daily connector once, trigger scheduled; bounded parallelism
$sim->config(latency_ms => 400);
$sim->control('DELETE', '/_sim/stats');
is(sql('SELECT cloudconn.scheduler_fire_now()'), 't', 'scheduler_fire_now reaches the launcher');
$node->poll_query_until('postgres',
	"SELECT count(*) = 10 FROM cloudconn.runs WHERE trigger = 'scheduled' AND status = 'succeeded'")
  or die 'scheduled runs did not finish: ' . sql('SELECT status, count(*) FROM cloudconn.runs GROUP BY 1');
is(sql("SELECT count(DISTINCT connector_id) FROM cloudconn.runs WHERE trigger = 'scheduled'"), '10',
	'each daily connector ran once');
is(sql("SELECT count(*) FROM cloudconn.runs WHERE connector_id = $manual"), '0', 'the manual connector was not scheduled');
my $stats = $sim->control('GET', '/_sim/stats');
cmp_ok($stats->{max_in_flight}, '<=', 3, "at most max_parallel_runs requests at once ($stats->{max_in_flight})");
cmp_ok($stats->{max_in_flight}, '>=', 2, 'and runs did overlap');
sleep 2;
is(sql("SELECT count(*) FROM cloudconn.runs WHERE trigger = 'scheduled'"), '10', 'a fire runs them once, not again');

# ---- a hanging provider does not hold up the others
sql("UPDATE cloudconn.connector SET schedule = 'manual' WHERE id <> ALL (ARRAY[$daily[0], $daily[1], $daily[2], $daily[3]])");
$sim->config(latency_ms => 0);
$sim->faults({ kind => 'slow', delay_ms => 20000, path_prefix => '/v2/droplets', times => 1 });
my $mark = sql('SELECT max(id) FROM cloudconn.run');
my $t0 = time;
sql('SELECT cloudconn.scheduler_fire_now()');
$node->poll_query_until('postgres',
	"SELECT count(*) = 4 FROM cloudconn.runs WHERE trigger = 'scheduled' AND id > $mark AND status <> 'running'")
  or die;
my $elapsed = time - $t0;
is(sql("SELECT count(*) FROM cloudconn.runs WHERE id > $mark AND status = 'failed' AND error ~ 'timed out'"),
	'1', 'the hanging run failed on its own timeout');
is(sql("SELECT count(*) FROM cloudconn.runs WHERE id > $mark AND status = 'succeeded'"),
	'3', 'the others succeeded');
is(sql("SELECT bool_and(r.finished_at <= h.finished_at) FROM cloudconn.runs r, cloudconn.runs h
	WHERE r.id > $mark AND h.id > $mark AND r.status = 'succeeded' AND h.status = 'failed'"),
	't', 'without waiting for the hanging one');
cmp_ok($elapsed, '<', 12, "all within the hanging run's timeout ($elapsed s)");

# ---- a fire time missed while the server was down runs once after start
# (pretend the scheduled runs so far happened days ago: the latest fire
# time, midnight, passed while the server was down; the launcher catches up
# once after start, by itself, without scheduler_fire_now())
$node->stop;
$node->append_conf('postgresql.conf', 'cloudconn.scheduler_enabled = off');
$node->start;
sql(q{UPDATE cloudconn.run SET started_at = now() - interval '3 days', finished_at = now() - interval '3 days' WHERE trigger = 'scheduled';
	UPDATE cloudconn.connector SET created_at = now() - interval '4 days'});
$node->stop;
$node->append_conf('postgresql.conf', 'cloudconn.scheduler_enabled = on');
$mark = $node->start && sql('SELECT max(id) FROM cloudconn.run');
$node->poll_query_until('postgres',
	"SELECT count(*) = 4 FROM cloudconn.runs WHERE trigger = 'scheduled' AND started_at > now() - interval '1 day' AND status <> 'running'")
  or die 'no catch-up';
sleep 3;
is(sql("SELECT count(*) FROM cloudconn.runs WHERE trigger = 'scheduled' AND started_at > now() - interval '1 day'"),
	'4', 'after a restart the missed fire time ran each due connector once');

# ---- kill -9 of a run's worker: the run is marked failed as interrupted
$sim->config(latency_ms => 3000);
my $run = sql("SELECT cloudconn.connector_run($manual, wait => false)");
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'") or die;
my $wpid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'cloudconn run'");
kill 'KILL', $wpid;
poll_across_restart("SELECT status = 'failed' FROM cloudconn.run WHERE id = $run")
  or die 'the killed run was not marked failed';
like(sql("SELECT error FROM cloudconn.run WHERE id = $run"), qr/interrupted/, 'kill -9 of a worker: failed as interrupted');
$sim->config(latency_ms => 0);
my $next = sql("SELECT cloudconn.connector_run($manual)");
is(sql("SELECT status FROM cloudconn.runs WHERE id = $next"), 'succeeded', 'the next run succeeds');

# ---- the launcher comes back after kill -9 and after pg_terminate_backend
my $pid1 = launcher_pid();
kill 'KILL', $pid1;
poll_across_restart("SELECT launcher_pid IS NOT NULL AND launcher_pid <> $pid1 FROM cloudconn.scheduler")
  or die 'launcher not back after kill -9';
pass('the launcher restarts after kill -9');
my $pid2 = launcher_pid();
sql("SELECT pg_terminate_backend($pid2)");
$node->poll_query_until('postgres', "SELECT launcher_pid IS NOT NULL AND launcher_pid <> $pid2 FROM cloudconn.scheduler")
  or die 'launcher not back after pg_terminate_backend';
pass('the launcher restarts after pg_terminate_backend');

# ---- pg_ctl stop during runs is prompt; the runs are failed at start
$sim->config(latency_ms => 5000);
my @runs = map { sql("SELECT cloudconn.connector_run($_, wait => false)") } @daily[0, 1];
$node->poll_query_until('postgres', "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'") or die;
$t0 = time;
$node->stop('fast');
my $stop = time - $t0;
cmp_ok($stop, '<', 5, "shutdown during runs is prompt ($stop s)");
$sim->config(latency_ms => 0);
$node->start;
$node->poll_query_until('postgres',
	"SELECT count(*) = 2 FROM cloudconn.run WHERE id IN ($runs[0], $runs[1]) AND status = 'failed' AND error ~ 'interrupted'")
  or die 'runs not marked failed at start';
pass('runs cut short by the shutdown are marked failed at start');

$node->stop;
$sim->stop;
done_testing();
