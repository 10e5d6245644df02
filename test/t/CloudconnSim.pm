# Test helpers: start the cloud simulators of test/sim with a throwaway test
# CA, drive their control API, and make a cluster that preloads cloudconn
# and trusts that CA.  Used by the TAP tests in this directory.
package CloudconnSim;

use strict;
use warnings;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use JSON::PP;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep);

my $simdir = abs_path(dirname(__FILE__) . '/../sim');
my $json = JSON::PP->new->canonical;

# The simulators' default tokens (test/sim/README.md).
our $TOKEN = 'dop_v1_' . ('5317' x 16);
our $NOSCOPE_TOKEN = 'dop_v1_' . ('0bad' x 16);

# The Azure simulator's default tenant, application and client secret.
our $AZURE_TENANT = '8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f';
our $AZURE_CLIENT = '3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03';
our $AZURE_SECRET = 'SimQ8~cloudconn.ClientSecret-0123456789_abcdefgh';

sub test_ca
{
	my $dir = PostgreSQL::Test::Utils::tempdir('ca');
	system('bash', "$simdir/make_test_ca.sh", $dir) == 0 or die "make_test_ca.sh failed";
	return $dir;
}

# Start the AWS simulator (STS and EC2); same handle as below.
sub start_aws
{
	my (%opts) = @_;
	return start_digitalocean(%opts, script => 'aws_sim.py');
}

# Start the Azure simulator (token endpoint and Resource Manager); same handle as below.
sub start_azure
{
	my (%opts) = @_;
	return start_digitalocean(%opts, script => 'azure_sim.py');
}

# Start the DigitalOcean simulator; returns a handle with url, log, pid.
sub start_digitalocean
{
	my (%opts) = @_;
	my $ca = $opts{ca} // test_ca();
	my $host = $opts{host} // '127.0.0.1';
	my $dir = PostgreSQL::Test::Utils::tempdir('do_sim');
	my @cmd = ('/usr/bin/python3', "$simdir/" . ($opts{script} // 'digitalocean_sim.py'),
		'--host', $host, '--port', '0', '--cert', "$ca/server.crt", '--key', "$ca/server.key",
		'--port-file', "$dir/port", '--log', "$dir/requests.log", '--exit-with-parent',
		'--max-lifetime', '3600', @{ $opts{args} // [] });
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>', "$dir/stdout") or die;
		open(STDERR, '>', "$dir/stderr") or die;
		exec(@cmd) or die "exec: $!";
	}
	for (1 .. 200)
	{
		last if -s "$dir/port";
		usleep(50_000);
	}
	die "simulator did not start: " . slurp_file("$dir/stderr") unless -s "$dir/port";
	my $port = slurp_file("$dir/port");
	chomp $port;
	return bless { pid => $pid, port => $port, host => $host, ca => $ca, dir => $dir,
		url => "https://$host:$port" }, 'CloudconnSim::Server';
}

# Start the caller simulator (test/sim/aws_caller_sim.py: IAM Roles Anywhere
# on HTTPS, instance metadata and the container endpoint on plain HTTP),
# registering what it issues with the STS simulator $opts{sts}; the handle
# also has http_url.
sub start_aws_caller
{
	my (%opts) = @_;
	my $sts = $opts{sts} or die 'start_aws_caller needs sts';
	my $dir = PostgreSQL::Test::Utils::tempdir('caller_sim');
	my $server = start_digitalocean(%opts, ca => $sts->{ca}, script => 'aws_caller_sim.py',
		args => ['--http-port-file', "$dir/http_port", '--sts-url', $sts->url, '--sts-ca', $sts->ca_file,
			($opts{trust_anchor} ? ('--trust-anchor', $opts{trust_anchor}) : ()), @{ $opts{args} // [] }]);
	my $http_port = slurp_file("$dir/http_port");
	chomp $http_port;
	$server->{http_port} = $http_port;
	$server->{http_url} = "http://$server->{host}:$http_port";
	return $server;
}

package CloudconnSim::Server;

use File::Temp ();

use JSON::PP;

my $codec = JSON::PP->new->canonical;

sub url { $_[0]->{url} }
sub http_url { $_[0]->{http_url} }
sub ca_file { "$_[0]->{ca}/ca.crt" }

# A control request; returns the decoded JSON answer.
sub control
{
	my ($self, $method, $path, $body) = @_;
	my @cmd = ('curl', '-sS', '--fail-with-body', '--cacert', $self->ca_file, '-X', $method,
		'-H', 'Content-Type: application/json');
	if (defined $body)
	{
		# through a file: a body may be larger than a command line can hold
		# (the bytes a command line argument would have carried: a character
		# string as UTF-8, a byte string as it is)
		my $data = ref $body ? $codec->encode($body) : $body;
		utf8::encode($data) if utf8::is_utf8($data);
		my ($tmp, $file) = File::Temp::tempfile(UNLINK => 1);
		binmode $tmp;
		print $tmp $data;
		close $tmp;
		push @cmd, '--data-binary', "\@$file";
	}
	push @cmd, $self->{url} . $path;
	open(my $fh, '-|', @cmd) or die "curl: $!";
	local $/;
	my $out = <$fh>;
	close $fh or die "control $method $path failed: $out";
	return length($out) ? $codec->decode($out) : undef;
}

sub reset { $_[0]->control('POST', '/_sim/reset') }
sub faults { my ($self, @rules) = @_; $self->control('POST', '/_sim/faults', [@rules]) }
sub log_entries { $_[0]->control('GET', '/_sim/log') }
sub droplets { $_[0]->control('GET', '/_sim/droplets')->{droplets} }
sub clear_log { $_[0]->control('DELETE', '/_sim/log') }
sub config { my ($self, %c) = @_; $self->control('POST', '/_sim/config', {%c}) }

sub stop
{
	my ($self) = @_;
	kill 'TERM', $self->{pid};
	waitpid($self->{pid}, 0);
}

package CloudconnSim;

# postgresql.conf lines pointing every AWS endpoint at the AWS simulator
# (which reads the region from each request's signature), with the
# platform's caller in the credentials file $creds.
sub aws_conf
{
	my ($sim, $creds) = @_;
	my $url = $sim->url;
	return qq{
cloudconn.aws_credentials_file = '$creds'
cloudconn.aws_sts_endpoint = '$url'
cloudconn.aws_ec2_endpoint = '$url/'
cloudconn.aws_rds_endpoint = '$url/'
cloudconn.aws_s3_endpoint = '$url'
cloudconn.aws_lambda_endpoint = '$url'
cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole'
};
}

# A shared credentials file with the simulator's platform caller as the
# default profile (and the unprivileged user as "unprivileged").
sub aws_credentials
{
	my $creds = PostgreSQL::Test::Utils::tempdir('aws') . '/credentials';
	open(my $fh, '>', $creds) or die $!;
	print $fh "[default]\naws_access_key_id = AKIASIMULATORCALLER2\naws_secret_access_key = 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\n";
	print $fh "[unprivileged]\naws_access_key_id = AKIASIMULATOROTHER23\naws_secret_access_key = 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\n";
	close $fh;
	chmod 0600, $creds;
	return $creds;
}

# A started cluster that preloads cloudconn and trusts the test CA; $init
# (optional) holds PostgreSQL::Test::Cluster::init's options.
sub cluster
{
	my ($name, $ca_file, $extra, $init) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $init // {} });
	$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cloudconn'
cloudconn.ca_file = '$ca_file'
cloudconn.database = 'postgres'
max_worker_processes = 32
} . ($extra // ''));
	$node->start;
	return $node;
}

1;
