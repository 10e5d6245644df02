# Retries, proved against the simulators' request logs (issue 12, points 1,
# 6 and 7): AWS errors retried by their code whatever the HTTP status
# (STS's 400 Throttling in connector_test, at the start of a run and in a
# renewal mid-run; each retryable code for the service that sends it, and
# its kind of backoff), each AWS retry signed again at its own time,
# credentials renewed before they expire and when STS says ExpiredToken,
# connection resets retried, DigitalOcean's ratelimit-reset pacing and the
# time actually waited on a 429's Retry-After, and the external id sent in
# no request but STS hop 2, anywhere in the request.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::Local qw(timegm);
use CloudconnSim;

my $json = JSON::PP->new->canonical;
my $ca = CloudconnSim::test_ca();
my $sim = CloudconnSim::start_aws(ca => $ca);
my $do = CloudconnSim::start_digitalocean(ca => $ca);
my $account = '444455556666';
my $creds = CloudconnSim::aws_credentials();
my $acct = "/_sim/accounts/$account";

# debug1: the HTTP client's "retrying ... (throttled|transient, ...)" lines
my $node = CloudconnSim::cluster('retries', $sim->ca_file, CloudconnSim::aws_conf($sim, $creds) . qq{
cloudconn.digitalocean_api_url = '@{[$do->url]}'
cloudconn.http_max_retries = 3
log_min_messages = debug1
log_statement = none
log_min_error_statement = panic
});
sub sql { $node->safe_psql('postgres', $_[0]) }

sql(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});
my $c = sql(qq{SELECT cloudconn.connector_create(1, 'prod', 'aws', 'manual',
	'{"account_id": "$account", "regions": ["eu-west-1"],
	  "resource_types": ["aws_ec2_instance", "aws_rds_db_instance", "aws_s3_bucket", "aws_lambda_function"]}')});
my $external_id = sql("SELECT external_id FROM cloudconn.connector WHERE id = $c");
$sim->control('POST', "$acct/apply-template", sql("SELECT cloudconn.aws_cloudformation_template($c)"));
$sim->control('POST', "$acct/regions/eu-west-1/instances/generate", { count => 5, seed => 1, states => ['running'] });
$sim->control('POST', "$acct/regions/eu-west-1/db-instances/generate", { count => 3, seed => 1 });
$sim->control('POST', "$acct/buckets/generate", { count => 3, seed => 1, regions => ['eu-west-1'] });
$sim->control('POST', "$acct/regions/eu-west-1/functions/generate", { count => 3, seed => 1 });
my $inventory = 14;

sub tested { $json->decode(sql("SELECT cloudconn.connector_test($c)")) }
sub all_ok
{
	my ($t) = @_;
	return 'not ok: ' . ($t->{error} // $json->encode($t)) unless $t->{ok};
	my @bad = grep { !$t->{resource_types}{$_}{ok} } sort keys %{ $t->{resource_types} };
	return @bad ? "types not ok: @bad: " . $json->encode($t) : 'ok';
}
sub run_status
{
	my $run = sql("SELECT cloudconn.connector_run($c)");
	return sql("SELECT status || ' ' || discovered || coalesce(' ' || error, '') FROM cloudconn.runs WHERE id = $run");
}
sub entries { @{ $sim->log_entries } }
sub what { my ($e) = @_; join(' ', $e->{service} // '-', $e->{action} // '-', $e->{status} // 'reset', $e->{error_code} // '') }
# a log entry's time, in seconds since the epoch
sub when
{
	my ($t) = @_;
	$t =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(\.\d+)?Z$/ or die "time $t";
	return timegm($6, $5, $4, $3, $2 - 1, $1) + ($7 // 0);
}
# X-Amz-Date (20261203T054000Z), in seconds since the epoch
sub amz_when
{
	my ($d) = @_;
	$d =~ /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/ or die "amz date $d";
	return timegm($6, $5, $4, $3, $2 - 1, $1);
}

is(all_ok(tested()), 'ok', 'connector_test: the chain and every type');
is(run_status(), "succeeded $inventory", 'a first run');

# ---- point 1: STS's 400 Throttling, retried until success ------------------

for my $who (['user', 'hop 1'], ['discovery', 'hop 2'])
{
	$sim->clear_log;
	$sim->faults({ kind => 'throttle', service => 'sts', principal_kind => $who->[0], times => 2 });
	is(all_ok(tested()), 'ok', "connector_test: STS throttling $who->[1] twice with 400 Throttling, retried");
	my @sts = map { what($_) } grep { $_->{service} eq 'sts' && ($_->{principal_kind} // '') eq $who->[0] } entries();
	is("@sts[0..2]", 'sts AssumeRole 400 Throttling sts AssumeRole 400 Throttling sts AssumeRole 200 ',
		"$who->[1]: two 400 Throttling answers, then the same request succeeded");
}

$sim->clear_log;
$sim->faults({ kind => 'throttle', service => 'sts', times => 3 });
is(run_status(), "succeeded $inventory", 'a run whose chain is throttled three times at its start succeeds');
is(scalar(grep { ($_->{error_code} // '') eq 'Throttling' && $_->{status} == 400 } entries()), 3,
	'STS answered 400 Throttling three times');

# a renewal mid-run: the customer's credentials expire at the first EC2
# page; the chain assumed again is throttled at hop 1, and retried
$sim->clear_log;
$sim->faults({ kind => 'expire_credentials', which => 'customer', service => 'ec2', action => 'DescribeInstances', times => 1 },
	{ kind => 'throttle', service => 'sts', skip => 2, times => 2 });
is(run_status(), "succeeded $inventory", 'a run whose renewal mid-run is throttled twice succeeds');
{
	my @log = entries();
	my ($expired) = grep { ($log[$_]{error_code} // '') eq 'RequestExpired' } 0 .. $#log;
	my @after = map { what($_) } grep { $_->{service} eq 'sts' } @log[ ($expired // 0) .. $#log ];
	ok(defined $expired, 'EC2 answered RequestExpired mid-run');
	is("@after", 'sts AssumeRole 400 Throttling sts AssumeRole 400 Throttling sts AssumeRole 200  sts AssumeRole 200 ',
		'then the renewal: hop 1 throttled twice and retried, then hop 2');
}

# ---- point 1: each retryable code, sent by its service with its status ------

# [service, code, status, kind]: the codes each simulated service sends
# (test/sim/aws_sim.py SERVICE_ERROR_CODES, with its sources)
my @sent = (
	['sts', 'Throttling', 400, 'throttled'], ['sts', 'IDPCommunicationError', 400, 'transient'],
	['sts', 'InternalFailure', 500, 'transient'], ['sts', 'ServiceUnavailable', 503, 'transient'],
	['ec2', 'RequestLimitExceeded', 503, 'throttled'], ['ec2', 'Unavailable', 503, 'transient'],
	['ec2', 'InternalError', 500, 'transient'], ['ec2', 'ServiceUnavailable', 503, 'transient'],
	['rds', 'Throttling', 400, 'throttled'], ['rds', 'InternalFailure', 500, 'transient'],
	['rds', 'ServiceUnavailable', 503, 'transient'],
	['s3', 'SlowDown', 503, 'throttled'], ['s3', 'RequestTimeout', 400, 'transient'],
	['s3', 'InternalError', 500, 'transient'], ['s3', 'ServiceUnavailable', 503, 'transient'],
	['lambda', 'TooManyRequestsException', 429, 'throttled'], ['lambda', 'EC2ThrottledException', 502, 'throttled'],
	['lambda', 'ServiceException', 500, 'transient']);
# the SDKs' other codes, which services cloudconn does not call send: each
# from a Query (RDS) and a REST-JSON (Lambda) service, as a 400 (their
# senders' usual status; the code decides, not the status)
for my $code (qw(ThrottlingException ThrottledException RequestThrottledException RequestThrottled
	BandwidthLimitExceeded PriorRequestNotComplete ProvisionedThroughputExceededException
	TransactionInProgressException LimitExceededException))
{
	push @sent, ['rds', $code, 400, 'throttled'], ['lambda', $code, 400, 'throttled'];
}
push @sent, ['rds', 'RequestTimeoutException', 400, 'transient'], ['lambda', 'RequestTimeoutException', 400, 'transient'];

for my $case (@sent)
{
	my ($service, $code, $status, $kind) = @$case;
	my $fault = { service => $service, times => 1, ($service eq 'sts' ? (principal_kind => 'user') : ()) };
	my $native = $service ne 'rds' && $service ne 'lambda' || grep { $_ eq $code }
		qw(Throttling InternalFailure ServiceUnavailable TooManyRequestsException EC2ThrottledException ServiceException);
	if ($native)
	{
		$fault->{kind} = 'error_code';
		$fault->{code} = $code;
	}
	else
	{
		@$fault{qw(kind status code)} = ('status', $status, $code);
	}
	$sim->clear_log;
	$sim->faults($fault);
	my $from = -s $node->logfile;
	my $t = tested();
	my @log = map { what($_) } grep { $_->{service} eq $service } entries();
	my @retries = slurp_file($node->logfile, $from) =~ /cloudconn: retrying [^\n]* \((\w+), backoff up to (\d+) ms\)/g;
	my $action = $log[0] =~ s/^\S+ (\S+).*/$1/r;
	is(all_ok($t) . " $log[0], then $log[1]; retried: @retries",
		"ok $service $action $status $code, then $service $action 200 ; retried: $kind "
		. ($kind eq 'throttled' ? 1000 : 500),
		"$service $status $code: retried once as $kind (backoff from " . ($kind eq 'throttled' ? '1 s' : '500 ms')
		. '), then succeeded');
}

# the control: a code that is not retryable is answered at once
$sim->clear_log;
$sim->faults({ kind => 'status', service => 'rds', status => 400, code => 'ValidationError', times => 1 });
like(tested()->{resource_types}{aws_rds_db_instance}{error} // '', qr/HTTP 400 ValidationError/,
	'RDS 400 ValidationError is not retried: connector_test reports it');
is(scalar(grep { $_->{service} eq 'rds' } entries()), 1, 'after one request');

# ---- point 6: each attempt signed at its own time --------------------------

# the simulator answers 1.2 s after each request: a retry goes out at least
# a second after the attempt before it, and must carry its own X-Amz-Date
$sim->config(latency_ms => 1200);
$sim->clear_log;
$sim->faults({ kind => 'error_code', service => 's3', code => 'InternalError', times => 2 });
is(all_ok(tested()), 'ok', 'connector_test with S3 failing twice on a slow simulator');
{
	my @s3 = grep { $_->{service} eq 's3' } entries();
	my @dates = map { $_->{amz_date} } @s3;
	is(join(' ', map { ($_->{status} // 'reset') . ($_->{signature_valid} ? ' signed' : ' unsigned') } @s3),
		'500 signed 500 signed 200 signed', 'three attempts, each with a valid signature');
	ok(amz_when($dates[1]) >= amz_when($dates[0]) + 1 && amz_when($dates[2]) >= amz_when($dates[1]) + 1,
		"each attempt has its own X-Amz-Date, a second or more after the one before (@dates)");
}
$sim->config(latency_ms => 0);

# ---- point 7: connection resets ---------------------------------------------

$sim->clear_log;
$sim->faults({ kind => 'reset', service => 'sts', principal_kind => 'user', times => 1 },
	{ kind => 'reset', service => 'ec2', action => 'DescribeInstances', times => 1 },
	{ kind => 'reset', service => 'lambda', times => 1 });
is(run_status(), "succeeded $inventory", 'a run whose STS, EC2 and Lambda connections are reset once each succeeds');
{
	my @log = entries();
	for my $svc ('sts AssumeRole', 'ec2 DescribeInstances', 'lambda ListFunctions')
	{
		my @mine = map { what($_) } grep { what($_) =~ /^\Q$svc\E / } @log;
		is("@mine[0..1]", "$svc reset  $svc 200 ", "$svc: reset (no answer), then sent again and answered");
	}
}

# ---- point 7: renewal before expiry, and on STS ExpiredToken ---------------

# sessions that last 302 s: two seconds after it is assumed, the chain is
# within the 300 s renewal margin, and a run of slow pages (Lambda's 50 a
# page) renews it before each page; nothing ever expires
$sim->control('POST', "$acct/regions/eu-west-1/functions/generate", { count => 300, seed => 2 });
$sim->config(credential_lifetime_s => 302, latency_ms => 700);
$sim->clear_log;
is(run_status(), 'succeeded ' . ($inventory - 3 + 300), 'a run of short sessions succeeds');
{
	my @log = entries();
	my $chains = grep { ($_->{action} // '') eq 'AssumeRole' && ($_->{principal_kind} // '') eq 'discovery' } @log;
	my @errors = map { what($_) } grep { ($_->{status} // 0) != 200 } @log;
	cmp_ok($chains, '>=', 2, "the chain was assumed again during the run ($chains times)");
	is("@errors", '', 'before the credentials expired: no request was refused');
}
$sim->config(credential_lifetime_s => undef, latency_ms => 0);

$sim->clear_log;
$sim->faults({ kind => 'status', service => 'sts', principal_kind => 'user', status => 403, code => 'ExpiredToken', times => 1 });
is(all_ok(tested()), 'ok', 'connector_test: STS answers ExpiredToken at hop 1 once; the caller credentials are fetched again');
is(join(', ', map { what($_) } grep { $_->{service} eq 'sts' } entries()),
	'sts AssumeRole 403 ExpiredToken, sts AssumeRole 200 , sts AssumeRole 200 ', 'hop 1 twice, then hop 2');
$sim->faults({ kind => 'status', service => 'sts', principal_kind => 'user', status => 403, code => 'ExpiredToken', times => 2 });
like(tested()->{error}, qr/^hop 1 .*ExpiredToken/, 'ExpiredToken twice: hop 1 fails, naming it (renewed once, not in a loop)');
$sim->clear_log;
$sim->faults({ kind => 'expire_credentials', which => 'customer', service => 's3', times => 1 },
	{ kind => 'status', service => 'sts', principal_kind => 'user', status => 403, code => 'ExpiredToken', skip => 1, times => 1 });
is(run_status(), 'succeeded ' . ($inventory - 3 + 300), 'a run: S3 refuses expired credentials, then STS the caller\'s at the renewal');
{
	my @codes = map { "$_->{service} $_->{error_code}" } grep { $_->{error_code} } entries();
	my ($s3) = grep { $codes[$_] eq 's3 ExpiredToken' } 0 .. $#codes;
	my ($sts) = grep { $codes[$_] eq 'sts ExpiredToken' } 0 .. $#codes;
	ok(defined $s3 && defined $sts && $s3 < $sts, "S3 answered ExpiredToken, then STS at hop 1 of the renewal (@codes)");
}

# ---- point 7: the external id, by value, in no request but hop 2 -----------

{
	my @log = entries();
	my @hop2 = grep { ($_->{action} // '') eq 'AssumeRole' && ($_->{principal_kind} // '') eq 'discovery' } @log;
	my @elsewhere = map { what($_) . ' ' . join('+', @{ $_->{external_id_in} }) }
		grep { @{ $_->{external_id_in} } && !(($_->{action} // '') eq 'AssumeRole' && ($_->{principal_kind} // '') eq 'discovery') } @log;
	ok(@hop2 >= 1 && !grep({ join('+', @{ $_->{external_id_in} }) ne 'body' || !$_->{external_id_matches} } @hop2),
		'every hop 2 carried the external id, in its body only, and it matched');
	is("@elsewhere", '', 'no other request (' . scalar(@log) . ') held it anywhere: URL, headers or body');
	is(scalar(grep { $_->{status} // 0 } @log) > 0 && !grep({ /\Q$external_id\E/ } map { $json->encode($_) } @log), 1,
		'and the log itself never shows it');
}
# the simulator's check can fail: a request with the external id in a header
{
	my $probe = `curl -sS -o /dev/null -w '%{http_code}' --cacert @{[$sim->ca_file]} -H 'X-Probe: $external_id' '@{[$sim->url]}/?Action=DescribeRegions'`;
	my ($last) = reverse entries();
	is(join('+', @{ $last->{external_id_in} }), 'headers', 'the simulator finds an external id in a header');
}

# ---- point 7: DigitalOcean pacing and Retry-After, timed in its log --------

my $d = sql(qq{SELECT cloudconn.connector_create(1, 'droplets', 'digitalocean', 'manual', '{}', '$CloudconnSim::TOKEN')});
$do->control('POST', '/_sim/droplets/generate', { count => 1000, regions => ['nyc3'], seed => 1 });
sub do_run
{
	my $run = sql("SELECT cloudconn.connector_run($d)");
	return sql("SELECT status || ' ' || discovered FROM cloudconn.runs WHERE id = $run");
}
sub do_gaps
{
	my @t = map { when($_->{time}) } grep { $_->{path} eq '/v2/droplets' } @{ $do->log_entries };
	return map { $t[$_] - $t[ $_ - 1 ] } 1 .. $#t;
}

# 5 pages of 200; 5 requests left in a window that resets in 6 s: the
# client spreads them over the window (about 1.2 s apart)
$do->clear_log;
$do->control('POST', '/_sim/ratelimit', { token => 'default', remaining => 5, reset_in => 6 });
is(do_run(), 'succeeded 1000', 'a run with 5 requests left in the window');
{
	my @gaps = do_gaps();
	is(scalar(@gaps), 4, 'five pages');
	ok(!grep({ $_ < 0.5 } @gaps), 'each page waited for its share of the window: gaps ' . join(' ', map { sprintf('%.2f s', $_) } @gaps));
}
$do->control('POST', '/_sim/ratelimit', { token => 'default', clear => JSON::PP::true });

# a 429 with Retry-After: 2 is waited out before the same page is asked again
$do->clear_log;
$do->faults({ kind => 'status', status => 429, retry_after => 2, path_prefix => '/v2/droplets', page => 2, times => 1 });
is(do_run(), 'succeeded 1000', 'a run answered 429 Retry-After: 2 once');
{
	my @log = grep { $_->{path} eq '/v2/droplets' } @{ $do->log_entries };
	my ($i) = grep { ($log[$_]{status} // 0) == 429 } 0 .. $#log;
	my $gap = when($log[ $i + 1 ]{time}) - when($log[$i]{time});
	ok($gap >= 1.9 && $gap < 10, sprintf('the next request came %.2f s after the 429 (Retry-After: 2)', $gap));
}
# and one with only ratelimit-reset (2 s ahead), as DigitalOcean's quota 429
$do->clear_log;
$do->faults({ kind => 'status', status => 429, ratelimit_reset_in => 2, path_prefix => '/v2/droplets', page => 3, times => 1 });
is(do_run(), 'succeeded 1000', 'a run answered 429 with ratelimit-reset once');
{
	my @log = grep { $_->{path} eq '/v2/droplets' } @{ $do->log_entries };
	my ($i) = grep { ($log[$_]{status} // 0) == 429 } 0 .. $#log;
	my $gap = when($log[ $i + 1 ]{time}) - when($log[$i]{time});
	ok($gap >= 1.0 && $gap < 10, sprintf('the next request came %.2f s after the 429 (ratelimit-reset 2 s ahead)', $gap));
}
# a connection reset is retried too
$do->clear_log;
$do->faults({ kind => 'reset', path_prefix => '/v2/droplets', page => 2, times => 1 });
is(do_run(), 'succeeded 1000', 'a run whose second page\'s connection is reset');
is(join(' ', map { ($_->{status} // 'reset') } grep { $_->{path} eq '/v2/droplets' } @{ $do->log_entries }),
	'200 reset 200 200 200 200', 'page 2: reset, then asked again and answered');

$sim->stop;
$do->stop;
done_testing();
