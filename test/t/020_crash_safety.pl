# Crash safety of a run: its worker killed with SIGKILL at random moments
# of a large run (12,000 droplets), while it lists and while it merges (the server then
# restarts as after any crash), leaves no half-merged state: the CIs and
# their links are those from before the run, the run is marked failed once
# the server is back, and the next run converges to the full inventory.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CloudconnSim;

my $seed = $ENV{CLOUDCONN_CRASH_SEED} // int(rand(1 << 30));
srand($seed);
note("random seed $seed (CLOUDCONN_CRASH_SEED repeats it)");

my $count = 12000;
my $sim = CloudconnSim::start_digitalocean(args => [ '--no-burst-limit', '--hourly-limit', '1000000' ]);
$sim->control('POST', '/_sim/droplets/generate', { count => $count, regions => [ 'ams3', 'fra1', 'nyc1' ], seed => 1 });

my $node = CloudconnSim::cluster('crash', $sim->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$sim->url]}'
cloudconn.http_max_retries = 0
restart_after_crash = on
log_min_messages = warning
});
sub sql { $node->safe_psql('postgres', $_[0]) }
# (droplets only: the run's listing and timing are the droplets')
my $droplets = '{"resource_types": ["digitalocean_droplet"]}';

# poll_query_until, across the crash restart a kill causes (a psql that
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

sql(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});
my $c = sql("SELECT cloudconn.connector_create(1, 'big', 'digitalocean', 'manual', '$droplets', '$CloudconnSim::TOKEN')");
my $first = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status || ' ' || created FROM cloudconn.runs WHERE id = $first"), "succeeded $count", "a first run of $count droplets");
sql(q{INSERT INTO cloudconn.application (name, entity_id) VALUES ('app', 1);
	INSERT INTO cloudconn.ci_application (ci_id, application_id)
	SELECT ci.id, (SELECT a.id FROM cloudconn.application a) FROM cloudconn.configuration_item ci WHERE ci.id % 7 = 0;});

# Then the cloud changes: a third of the droplets move region (the same
# seed, so the same ids, with another third region), 2,000 are gone and
# 3,000 new: the next run has updates, creates and missing marks to make.
my $inventory = $count - 2000 + 3000;
my $generation = 0;
sub change_cloud
{
	$generation++;
	my $third = ('lon1', 'sgp1', 'blr1')[ $generation % 3 ];
	$sim->control('POST', '/_sim/droplets/generate', { count => $count - 2000, regions => [ 'ams3', 'fra1', $third ], seed => 1 });
	$sim->control('POST', '/_sim/droplets/generate', { count => 3000, regions => ['tor1'], seed => 100 + $generation, append => 1 });
}
change_cloud();

sub cis
{
	return sql(q{SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY t.id)) FROM cloudconn.configuration_item t})
	  . ' / ' . sql(q{SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY t::text)) FROM cloudconn.ci_application t});
}
my $before = cis();

my %kills = (listing => 0, merge => 0);
my $trials = 0;
my $attempts = 0;
while ($trials < 10 && $attempts++ < 30)
{
	my $phase = $trials % 2 ? 'merge' : 'listing';
	# 25 ms a page makes the listing (60 pages) last 1.5 s or more, however
	# fast the machine: a moment of it is then a moment of the listing
	$sim->config(latency_ms => $phase eq 'listing' ? 25 : 0);
	my $run = sql("SELECT cloudconn.connector_run($c, wait => false)");
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'cloudconn run'") or die 'no run worker';
	my $pid = sql("SELECT pid FROM pg_stat_activity WHERE backend_type = 'cloudconn run'");
	if ($phase eq 'merge')
	{
		# the merge begins when the run's transaction takes its xid (at its
		# first write, the listing takes none): wait for that, closely
		sql(qq{DO \$\$ BEGIN
			WHILE EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $pid AND backend_xid IS NULL) LOOP
				PERFORM pg_sleep(0.002);
				PERFORM pg_stat_clear_snapshot();
			END LOOP; END \$\$});
		usleep(int(rand(100_000)));    # a moment of the merge (which takes a few hundred ms)
	}
	else
	{
		usleep(int(rand(1_000_000)));    # a moment of the listing (1.5 s or more)
	}
	my $at = sql("SELECT CASE WHEN backend_xid IS NULL THEN 'listing' ELSE 'merge' END
		FROM pg_stat_activity WHERE pid = $pid");
	my $killed = $at ne '' && kill('KILL', $pid);
	# (a kill is a crash restart: every connection is cut, then the server is back)
	poll_across_restart("SELECT status <> 'running' FROM cloudconn.run WHERE id = $run")
	  or die "run $run did not end";
	my $status = sql("SELECT status || ': ' || coalesce(error, '') FROM cloudconn.run WHERE id = $run");
	if ($status =~ /^succeeded/)
	{
		# it committed before the signal: not a trial; the cloud changes
		# again so that the next run has work to do
		note("run $run ended before its kill");
		change_cloud();
		$before = cis();
		next;
	}
	die "run $run failed without a kill: $status" unless $killed;
	$trials++;
	$kills{$at}++;
	like($status, qr/^failed: the run was interrupted/, "trial $trials: killed in the $at, the run is marked failed");
	is(cis(), $before, "trial $trials: the CIs and their links are those from before the run");
}
is($trials, 10, "10 trials");
$sim->config(latency_ms => 0);
cmp_ok($kills{listing}, '>=', 3, "kills in the listing ($kills{listing})");
cmp_ok($kills{merge}, '>=', 3, "kills in the merge ($kills{merge})");

my $run = sql("SELECT cloudconn.connector_run($c)");
like(sql("SELECT status || ' ' || created || ' ' || updated FROM cloudconn.runs WHERE id = $run"), qr/^succeeded [1-9]\d* [1-9]\d*$/,
	'the next run succeeds, with its creates and updates');
is(sql("SELECT count(*) FROM cloudconn.configuration_item WHERE source_connector_id = $c AND missing_since IS NULL"),
	$inventory, 'and converges to the full inventory');
$run = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT created || ' ' || updated || ' ' || unchanged FROM cloudconn.runs WHERE id = $run"), "0 0 $inventory",
	'a run after it finds everything unchanged');

$node->stop;
$sim->stop;
done_testing();
