# Edges of the scheduler and of runs: while cloudconn.database does not
# exist the scheduler says so once and checks quietly (no FATAL every
# restart), then starts when it is created; two connector_run() calls
# racing from two sessions make one run; the cloudconn.max_parallel_runs
# bound holds on the runs' own start and end times, manual runs included;
# and a fast shutdown is prompt while a run waits on a transfer that would
# take a minute.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use IPC::Run ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CloudconnSim;

my $sim = CloudconnSim::start_digitalocean(args => [ '--no-burst-limit', '--hourly-limit', '1000000' ]);
$sim->control('POST', '/_sim/droplets/generate', { count => 20, regions => ['ams3'], seed => 4 });
my $token = $CloudconnSim::TOKEN;

# ---- a cluster whose cloudconn.database does not exist (yet); looked at below
my $nodb = CloudconnSim::cluster('nodb', $sim->ca_file, "cloudconn.database = 'cmdb'\n");
my $nodb_since = time;

my $node = CloudconnSim::cluster('edges', $sim->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$sim->url]}'
cloudconn.max_parallel_runs = 2
cloudconn.http_max_retries = 0
cloudconn.http_timeout_ms = 120000
cloudconn.daily_run_at = '00:00'
cloudconn.timezone = 'UTC'
});
sub sql { $node->safe_psql('postgres', $_[0]) }
# (droplets only: the run's listing and timing are the droplets')
my $droplets = '{"resource_types": ["digitalocean_droplet"]}';
sql(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});
my @daily = map { sql("SELECT cloudconn.connector_create(1, 'daily $_', 'digitalocean', 'daily', '$droplets', '$token')") } 1 .. 6;
my @manual = map { sql("SELECT cloudconn.connector_create(1, 'manual $_', 'digitalocean', 'manual', '$droplets', '$token')") } 1 .. 3;
$node->poll_query_until('postgres', 'SELECT launcher_pid IS NOT NULL FROM cloudconn.scheduler') or die;

# ---- two sessions call connector_run() at the same moment: one run
# (both wait on an advisory lock the test holds, and go when it is released)
$sim->config(latency_ms => 200);
my $barrier = $node->background_psql('postgres');
for my $round (1 .. 5)
{
	my $c = $manual[ $round % 3 ];
	$barrier->query_safe('SELECT pg_advisory_lock(4242)');
	my @racers = map {
		my ($out, $err) = ('', '');
		my @cmd = ('psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
			"SELECT pg_advisory_lock_shared(4242) IS NULL", '-c', "SELECT cloudconn.connector_run($c)");
		[ IPC::Run::start(\@cmd, '>', \$out, '2>', \$err), \$out, \$err ];
	} 1 .. 2;
	$node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted") or die;
	my $mark = sql('SELECT coalesce(max(id), 0) FROM cloudconn.run');
	$barrier->query_safe('SELECT pg_advisory_unlock(4242)');
	my @ids;
	for my $r (@racers)
	{
		$r->[0]->finish;
		my ($id) = ${ $r->[1] } =~ /(\d+)\s*$/;
		push @ids, $id // 'none: ' . ${ $r->[2] };
	}
	is($ids[0], $ids[1], "round $round: both calls return the same run ($ids[0])");
	is(sql("SELECT count(*) FROM cloudconn.run WHERE id > $mark"), '1', "round $round: one run was made");
	is(sql("SELECT status FROM cloudconn.run WHERE id = $ids[0]"), 'succeeded', "round $round: and it succeeded");
}
$barrier->quit;

# ---- max_parallel_runs = 2 on the runs' start and end times: a fire of six
# daily connectors and three manual runs at once
$sim->config(latency_ms => 400);
my $mark = sql('SELECT max(id) FROM cloudconn.run');
sql('SELECT cloudconn.scheduler_fire_now()');
sql("SELECT cloudconn.connector_run($_, wait => false)") for @manual;
$node->poll_query_until('postgres',
	"SELECT count(*) = 9 FROM cloudconn.run WHERE id > $mark AND status <> 'running'")
  or die 'the runs did not end: ' . sql("SELECT string_agg(status, ',') FROM cloudconn.run WHERE id > $mark");
is(sql("SELECT count(*) FROM cloudconn.run WHERE id > $mark AND status = 'succeeded'"), '9', 'nine runs succeeded');
is(sql("SELECT count(*) FROM cloudconn.run WHERE id > $mark AND trigger = 'manual'"), '3', 'three of them manual');
# the most runs in progress at any run's start
my $overlap = sql("SELECT max((SELECT count(*) FROM cloudconn.run o
	WHERE o.id > $mark AND o.started_at <= r.started_at AND o.finished_at > r.started_at))
	FROM cloudconn.run r WHERE r.id > $mark");
is($overlap, '2', 'at most two runs were in progress at once, by their started_at and finished_at (and two did overlap)');

# ---- a fast shutdown while a run waits on a transfer that takes a minute
$sim->config(latency_ms => 60000);
my $slow = sql("SELECT cloudconn.connector_run($manual[0], wait => false)");
$node->poll_query_until('postgres', "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'") or die;
sleep 1;    # the request is out, its answer a minute away
my $t0 = time;
$node->stop('fast');
my $stop = time - $t0;
cmp_ok($stop, '<', 10, sprintf('a fast shutdown during a minute-long transfer takes %.1f s, not the minute', $stop));
$sim->config(latency_ms => 0);
$node->start;
$node->poll_query_until('postgres', "SELECT status = 'failed' FROM cloudconn.run WHERE id = $slow") or die;
pass('the run it cut short is marked failed at start');

# ---- the cluster without its database: one line, no FATAL, then it starts
my $waited = time - $nodb_since;
sleep(26 - $waited) if $waited < 26;
my $log = slurp_file($nodb->logfile);
my @missing = ($log =~ /database "cmdb" does not exist; the scheduler starts once it is created/g);
is(scalar @missing, 1, 'while cloudconn.database does not exist, the scheduler says so once over 26 s');
unlike($log, qr/FATAL/, 'and logs no FATAL');
$nodb->safe_psql('postgres', 'CREATE DATABASE cmdb');
$nodb->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'cloudconn scheduler' AND datname = 'cmdb'")
  or die 'no launcher once the database exists';
pass('once the database is created, the launcher starts in it');
$nodb->poll_query_until('postgres', 'SELECT true') or die;
sleep 1;
like(slurp_file($nodb->logfile), qr/extension "cloudconn" is not created in database "cmdb"; waiting for it/,
	'and waits for the extension there');
# the supervisor terminated: its successor (5 s later) starts no second launcher
my $supervisor = $nodb->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity
	WHERE backend_type = 'cloudconn scheduler supervisor'});
$nodb->safe_psql('postgres', "SELECT pg_terminate_backend($supervisor)");
$nodb->poll_query_until('postgres',
	qq{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'cloudconn scheduler supervisor' AND pid <> $supervisor})
  or die 'no new supervisor';
sleep 3;
is($nodb->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'cloudconn scheduler'}),
	'1', 'a supervisor restarted after pg_terminate_backend starts no second launcher');

$node->stop;
$nodb->stop;
$sim->stop;
done_testing();
