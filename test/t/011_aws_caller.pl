# The AWS caller without long-lived keys (cloudconn.aws_caller_source):
# IAM Roles Anywhere with RSA and ECDSA certificates made at test time,
# verified by the simulator with Python's cryptography; EC2 instance
# metadata (IMDSv2 only) and a container's credentials endpoint, plain http
# on loopback.  Every endpoint points at the loopback simulators: the last
# tests prove from the server log that nothing else was ever contacted.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Math::BigInt;
use CloudconnSim;

# nothing from this machine's environment may point anywhere else
delete $ENV{$_} for grep { /^AWS_/ } keys %ENV;

my $simdir = "$FindBin::Bin/../sim";
my $pki = PostgreSQL::Test::Utils::tempdir('pki');
system('bash', "$simdir/make_roles_anywhere_pki.sh", $pki) == 0 or die 'make_roles_anywhere_pki.sh failed';
my $sts = CloudconnSim::start_aws();
my $caller = CloudconnSim::start_aws_caller(sts => $sts, trust_anchor => "$pki/anchor-ca.crt");
my $account = '444455556666';
my $anchor = 'arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/4f8e0a2c-5b1d-4c3e-9f7a-0123456789ab';
my $profile = 'arn:aws:rolesanywhere:us-east-1:111122223333:profile/9a7b6c5d-1e2f-4a3b-8c9d-abcdef012345';
my $role = 'arn:aws:iam::111122223333:role/cloudconn-caller';

# the discovery role trusts the roles the caller simulator hands out
$sts->control('POST', '/_sim/discovery-role', { trusted => [ $role,
	'arn:aws:iam::111122223333:role/cloudconn-instance', 'arn:aws:iam::111122223333:role/cloudconn-task' ] });

my $node = CloudconnSim::cluster('caller', $sts->ca_file, qq{
cloudconn.aws_caller_source = 'roles_anywhere'
cloudconn.aws_roles_anywhere_certificate_file = '$pki/rsa.crt'
cloudconn.aws_roles_anywhere_chain_file = '$pki/intermediate.crt'
cloudconn.aws_roles_anywhere_private_key_file = '$pki/rsa.key'
cloudconn.aws_roles_anywhere_trust_anchor_arn = '$anchor'
cloudconn.aws_roles_anywhere_profile_arn = '$profile'
cloudconn.aws_roles_anywhere_role_arn = '$role'
cloudconn.aws_roles_anywhere_endpoint = '@{[$caller->url]}'
cloudconn.aws_ec2_metadata_endpoint = '@{[$caller->http_url]}'
cloudconn.aws_container_endpoint = '@{[$caller->http_url]}'
cloudconn.aws_sts_endpoint = '@{[$sts->url]}'
cloudconn.aws_ec2_endpoint = '@{[$sts->url]}/'
cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole'
cloudconn.http_max_retries = 1
log_min_messages = debug5
log_statement = none
log_min_error_statement = panic
});
sub sql { $node->safe_psql('postgres', $_[0]) }
sub set_conf
{
	my ($name, $value) = @_;
	sql("ALTER SYSTEM SET $name = '$value'; SELECT pg_reload_conf()");
	$node->poll_query_until('postgres', "SELECT current_setting('$name') = '$value'") or die "reload of $name not seen";
}
sub caller_log { @{ $caller->log_entries } }
sub sessions { grep { $_->{service} eq 'rolesanywhere' } caller_log() }

sql(q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');});
my $c = sql(qq{SELECT cloudconn.connector_create(1, 'prod', 'aws', 'manual',
	'{"account_id": "$account", "regions": ["eu-west-1", "us-east-1"], "resource_types": ["aws_ec2_instance"]}')});
$sts->control('POST', "/_sim/accounts/$account/apply-template", sql("SELECT cloudconn.aws_cloudformation_template($c)"));
my $ok = qq({"ok": true, "caller_source": "%s", "resource_types": {"aws_ec2_instance": {"ok": true}}, "assumed_role_arn": "arn:aws:sts::$account:assumed-role/AnzenCustomerDiscoveryRole/cloudconn-connector-$c"});
sub serial_hex
{
	my $out = `openssl x509 -noout -serial -in $_[0]`;
	$out =~ /serial=([0-9A-F]+)/ or die;
	(my $hex = lc $1) =~ s/^0+//;
	return $hex;
}

# ---- IAM Roles Anywhere: an RSA leaf under an intermediate (the chain file)
is(sql("SELECT cloudconn.connector_test($c)"), sprintf($ok, 'roles_anywhere'), 'RSA certificate: connector_test ok through the whole chain');
my ($s) = sessions();
is(join(' ', $s->{status}, $s->{algorithm}, $s->{signature_valid} ? 'verified' : 'not verified',
		$s->{cert_trusted} ? 'trusted' : 'untrusted', "chain $s->{chain_length}", join(';', @{ $s->{signed_headers} })),
	'201 AWS4-X509-RSA-SHA256 verified trusted chain 1 content-type;host;x-amz-date;x-amz-x509;x-amz-x509-chain',
	'CreateSession signed with the RSA key, verified by cryptography, with the intermediate in X-Amz-X509-Chain');
is($s->{serial}, Math::BigInt->from_hex(serial_hex("$pki/rsa.crt"))->bstr,
	'the credential names the certificate by its serial number in decimal');
is(join(' ', map { $_->{role_arn} } grep { ($_->{action} // '') eq 'AssumeRole' && $_->{principal_kind} eq 'caller' } @{ $sts->log_entries }),
	'arn:aws:iam::111122223333:role/AnzenDiscoveryRole', 'hop 1 was signed with the credentials CreateSession gave');
is((grep { ($_->{principal_kind} // '') eq 'caller' } @{ $sts->log_entries })[0]{principal},
	'arn:aws:sts::111122223333:assumed-role/cloudconn-caller/' . serial_hex("$pki/rsa.crt"),
	'as the Roles Anywhere session of the certificate');

# ---- an ECDSA leaf straight under the trust anchor, without a chain file
set_conf('cloudconn.aws_roles_anywhere_certificate_file', "$pki/ecdsa.crt");
set_conf('cloudconn.aws_roles_anywhere_private_key_file', "$pki/ecdsa.key");
set_conf('cloudconn.aws_roles_anywhere_chain_file', '');
$caller->clear_log;
is(sql("SELECT cloudconn.connector_test($c)"), sprintf($ok, 'roles_anywhere'), 'ECDSA certificate: connector_test ok');
($s) = sessions();
is(join(' ', $s->{status}, $s->{algorithm}, $s->{signature_valid} ? 'verified' : 'not verified', "chain $s->{chain_length}"),
	'201 AWS4-X509-ECDSA-SHA256 verified chain 0', 'signed with the EC key, verified by cryptography');

# ---- what the service refuses: a certificate of a CA no trust anchor names
set_conf('cloudconn.aws_roles_anywhere_certificate_file', "$pki/untrusted.crt");
set_conf('cloudconn.aws_roles_anywhere_private_key_file', "$pki/untrusted.key");
$caller->clear_log;
is(sql("SELECT cloudconn.connector_test($c)"),
	'{"ok": false, "error": "no AWS credentials for the platform caller: IAM Roles Anywhere CreateSession failed: HTTP 403 AccessDeniedException: Untrusted Signing Certificate", "caller_source": "roles_anywhere"}',
	'an untrusted CA: the service\'s refusal, clearly');
($s) = sessions();
is(join(' ', $s->{status}, $s->{signature_valid} ? 'verified' : 'not verified'), '403 verified', 'the signature was good, the chain was not');

# ---- what is refused before any call: expired, not yet valid, a key of
# another certificate, a key file others can read
sub refused_before_call
{
	my ($cert, $key, $pattern, $name) = @_;
	set_conf('cloudconn.aws_roles_anywhere_certificate_file', $cert);
	set_conf('cloudconn.aws_roles_anywhere_private_key_file', $key);
	$caller->clear_log;
	like(sql("SELECT cloudconn.connector_test($c)"), $pattern, $name);
	is(scalar(caller_log()), 0, "$name: nothing was sent");
}
refused_before_call("$pki/expired.crt", "$pki/expired.key",
	qr/^\{"ok": false, "error": "no AWS credentials for the platform caller: the IAM Roles Anywhere certificate \(cloudconn\.aws_roles_anywhere_certificate_file\) expired at 2020-01-02 00:00:00 UTC", "caller_source": "roles_anywhere"\}$/,
	'an expired certificate');
refused_before_call("$pki/notyet.crt", "$pki/notyet.key",
	qr/the IAM Roles Anywhere certificate \(cloudconn\.aws_roles_anywhere_certificate_file\) is not valid yet: its validity starts at 2099-01-01 00:00:00 UTC/,
	'a certificate not valid yet');
refused_before_call("$pki/rsa.crt", "$pki/other.key",
	qr/the IAM Roles Anywhere private key \(cloudconn\.aws_roles_anywhere_private_key_file\) does not match the certificate \(cloudconn\.aws_roles_anywhere_certificate_file\)/,
	'a key not matching the certificate');
system('cp', "$pki/rsa.key", "$pki/group.key") == 0 or die;
chmod 0640, "$pki/group.key";
refused_before_call("$pki/rsa.crt", "$pki/group.key",
	qr/the IAM Roles Anywhere private key file \(cloudconn\.aws_roles_anywhere_private_key_file\) has group or world access: it must have permissions u=rw \(0600\) or less/,
	'a group-readable key file');
refused_before_call("$pki/rsa.crt", "$pki/missing.key",
	qr/the IAM Roles Anywhere private key file \(cloudconn\.aws_roles_anywhere_private_key_file\) could not be read/,
	'a missing key file');
unlike(sql("SELECT cloudconn.connector_test($c)"), qr/\Q$pki\E/, 'messages name the settings, never the paths');
set_conf('cloudconn.aws_roles_anywhere_private_key_file', "$pki/rsa.key");
set_conf('cloudconn.aws_roles_anywhere_chain_file', "$pki/intermediate.crt");
set_conf('cloudconn.aws_roles_anywhere_profile_arn', '');
like(sql("SELECT cloudconn.connector_test($c)"), qr/cloudconn\.aws_caller_source is roles_anywhere, but cloudconn\.aws_roles_anywhere_profile_arn is not set/,
	'a missing setting is named');
set_conf('cloudconn.aws_roles_anywhere_profile_arn', $profile);

# a retried CreateSession is signed again at its own time (issue 12): the
# simulator answers 1.2 s after each request, so the retry's X-Amz-Date
# is at least a second later
$caller->config(latency_ms => 1200);
$caller->clear_log;
$caller->faults({ kind => 'status', status => 500, service => 'rolesanywhere', times => 1 });
like(sql("SELECT cloudconn.connector_test($c)"), qr/^\{"ok": true/, 'connector_test with CreateSession failing once on a slow simulator');
{
	my @attempts = sessions();
	is(join(' ', map { $_->{status} } @attempts), '500 201', 'CreateSession: a 500, then created');
	cmp_ok($attempts[1]{amz_date} // '', 'gt', $attempts[0]{amz_date} // '~',
		"the retry carries its own, later X-Amz-Date (@{[ map { $_->{amz_date} // 'none' } @attempts ]})");
}
$caller->config(latency_ms => 0);
$caller->faults();

# ---- a run; then credentials that expire during a long run are renewed
$sts->control('POST', "/_sim/accounts/$account/regions/eu-west-1/instances/generate", { count => 2100, seed => 1 });
$sts->control('POST', "/_sim/accounts/$account/regions/us-east-1/instances/generate", { count => 2100, seed => 2 });
my $run = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, discovered FROM cloudconn.runs WHERE id = $run"), 'succeeded|4200', 'a run with the Roles Anywhere caller');

$caller->config(credential_lifetime_s => 2);
$sts->config(credential_lifetime_s => 2, latency_ms => 400);
$caller->clear_log;
$sts->clear_log;
my $long = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status, unchanged FROM cloudconn.runs WHERE id = $long"), 'succeeded|4200',
	'a run longer than the caller\'s credentials live succeeds');
cmp_ok(scalar(grep { $_->{status} == 201 } sessions()), '>=', 2, 'CreateSession was called again during the run');
is(scalar(grep { ($_->{principal_kind} // '') eq 'caller' && ($_->{status} // 0) != 200 } @{ $sts->log_entries }), 0,
	'and hop 1 never presented expired caller credentials');
$caller->config(credential_lifetime_s => undef);
$caller->clear_log;
$sts->clear_log;
my $reuse = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status FROM cloudconn.runs WHERE id = $reuse")
	. ' sessions ' . scalar(grep { $_->{status} == 201 } sessions())
	. ' hop1 ' . (scalar(grep { ($_->{principal_kind} // '') eq 'caller' } @{ $sts->log_entries }) >= 2 ? 'several' : 'once'),
	'succeeded sessions 1 hop1 several', 'caller credentials far from expiring are kept across the chain\'s renewals');
$sts->config(credential_lifetime_s => undef, latency_ms => 0);

# ---- instance: EC2 instance metadata, IMDSv2 only
set_conf('cloudconn.aws_caller_source', 'instance');
$caller->clear_log;
is(sql("SELECT cloudconn.connector_test($c)"), sprintf($ok, 'instance'), 'IMDSv2: connector_test ok');
my @imds = grep { $_->{service} eq 'imds' } caller_log();
is(join(', ', map { "$_->{method} $_->{path} $_->{status}" . ($_->{imds_token_present} ? ' token' : '') } @imds),
	'PUT /latest/api/token 200, GET /latest/meta-data/iam/security-credentials/ 200 token, '
	. 'GET /latest/meta-data/iam/security-credentials/cloudconn-instance 200 token',
	'a session token first, then the role and its credentials with it');
is($imds[0]{imds_token_ttl}, 300, 'the token asked for lives 300 s');
$caller->faults({ kind => 'status', status => 403, service => 'imds', path_prefix => '/latest/api/token', times => 1 });
$caller->clear_log;
like(sql("SELECT cloudconn.connector_test($c)"),
	qr/the EC2 instance metadata service answered HTTP 403 to PUT \/latest\/api\/token, so no IMDSv2 session token; cloudconn never falls back to IMDSv1/,
	'no session token: a clear error');
is(join(',', map { "$_->{method} $_->{path}" } caller_log()), 'PUT /latest/api/token', 'and no request without one');
# a metadata service that does not answer is given up soon (3 s), and
# plain http never goes through a proxy, whatever http_proxy says
$caller->faults({ kind => 'slow', delay_ms => 4000, service => 'imds', path_prefix => '/latest/api/token', times => 2 });
like(sql("SELECT cloudconn.connector_test($c)"),
	qr/timed out after 3000 ms waiting for the EC2 instance metadata service \(PUT \/latest\/api\/token\)/,
	'a silent metadata service: a short timeout');
$caller->faults();
$ENV{http_proxy} = $ENV{HTTP_PROXY} = 'http://127.0.0.1:9';
$node->restart;
is(sql("SELECT cloudconn.connector_test($c)"), sprintf($ok, 'instance'), 'IMDSv2 with http_proxy set: no proxy is used');
delete $ENV{http_proxy};
delete $ENV{HTTP_PROXY};
$node->restart;
$caller->control('POST', '/_sim/instance-role', undef);
like(sql("SELECT cloudconn.connector_test($c)"), qr/answered HTTP 404 to GET \/latest\/meta-data\/iam\/security-credentials\/ \(no IAM role is attached to the instance\)/,
	'an instance without a role: said so');
$caller->control('POST', '/_sim/instance-role', { name => 'cloudconn-instance', role_arn => 'arn:aws:iam::111122223333:role/cloudconn-instance' });
my $irun = sql("SELECT cloudconn.connector_run($c)");
is(sql("SELECT status FROM cloudconn.runs WHERE id = $irun"), 'succeeded', 'a run with the instance\'s role');
is($caller->control('GET', '/_sim/stats')->{imdsv1_requests}, 0, 'IMDSv1 was never tried');

# ---- instance: a container's endpoint, named by the environment
my $tokdir = PostgreSQL::Test::Utils::tempdir('token');
my $token = 'eyJhbGciOiJSUzI1NiJ9.container-authorization-token-' . ('x' x 40);
open(my $fh, '>', "$tokdir/token") or die;
print $fh $token;
close $fh;
$caller->control('POST', '/_sim/container', { token => $token });
$ENV{AWS_CONTAINER_CREDENTIALS_FULL_URI} = $caller->http_url . '/v1/credentials';
$ENV{AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE} = "$tokdir/token";
$node->restart;
$caller->clear_log;
is(sql("SELECT cloudconn.connector_test($c)"), sprintf($ok, 'instance'), 'the container endpoint (full URI, token file): ok');
is(join(',', map { "$_->{service} $_->{method} $_->{path} $_->{status}" . ($_->{authorization_valid} ? ' authorized' : '') } caller_log()),
	'container GET /v1/credentials 200 authorized', 'the endpoint of the environment, with the token of the file; no IMDS');
open($fh, '>', "$tokdir/token") or die;
print $fh 'not-the-token';
close $fh;
like(sql("SELECT cloudconn.connector_test($c)"),
	qr/the AWS container credentials endpoint answered HTTP 401 to GET \(check AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or AWS_CONTAINER_AUTHORIZATION_TOKEN\)/,
	'a wrong token: said so (the file is read at every use)');
delete $ENV{AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE};
$ENV{AWS_CONTAINER_AUTHORIZATION_TOKEN} = $token;
$ENV{AWS_CONTAINER_CREDENTIALS_RELATIVE_URI} = '/v2/credentials/6b0c1a2e-3f4d-4e5a-9b6c-7d8e9f0a1b2c';
$node->restart;
$caller->clear_log;
is(sql("SELECT cloudconn.connector_test($c)"), sprintf($ok, 'instance'), 'the relative URI, under cloudconn.aws_container_endpoint, with the token variable');
is(join(',', map { "$_->{method} $_->{path}" . ($_->{authorization_valid} ? ' authorized' : '') } caller_log()),
	'GET /v2/credentials/6b0c1a2e-3f4d-4e5a-9b6c-7d8e9f0a1b2c authorized', 'the relative URI comes first, as in the AWS SDKs');
delete $ENV{AWS_CONTAINER_CREDENTIALS_RELATIVE_URI};
$ENV{AWS_CONTAINER_CREDENTIALS_FULL_URI} = 'http://10.11.12.13/v1/credentials';
$node->restart;
like(sql("SELECT cloudconn.connector_test($c)"),
	qr/refusing to send GET to the AWS container credentials endpoint: its URL is neither a well-formed https URL nor http to a loopback or link-local address/,
	'plain http to any other address is refused before any connection');
delete $ENV{$_} for grep { /^AWS_/ } keys %ENV;
$ENV{AWS_EC2_METADATA_DISABLED} = 'true';
$node->restart;
$caller->clear_log;
like(sql("SELECT cloudconn.connector_test($c)"), qr/EC2 instance metadata is disabled \(AWS_EC2_METADATA_DISABLED is true in the server's environment\)/,
	'AWS_EC2_METADATA_DISABLED=true turns instance metadata off, as in the AWS SDKs');
is(scalar(caller_log()), 0, 'and nothing is asked of it');
delete $ENV{AWS_EC2_METADATA_DISABLED};
$node->restart;

# ---- the metadata endpoint settings take loopback and link-local addresses only
for my $bad ('http://10.0.0.1', 'http://metadata.internal', 'ftp://169.254.169.254', 'http://[fe80::1%25eth0]')
{
	my ($rc, undef, $err) = $node->psql('postgres', "ALTER SYSTEM SET cloudconn.aws_ec2_metadata_endpoint = '$bad'");
	like($err, qr/invalid value for parameter "cloudconn\.aws_ec2_metadata_endpoint".*\n.*literal loopback or link-local address/,
		"$bad is refused as a metadata endpoint");
}
sql("ALTER SYSTEM SET cloudconn.aws_container_endpoint = 'http://169.254.170.2'; ALTER SYSTEM RESET cloudconn.aws_container_endpoint");
pass('http://169.254.170.2 is accepted (and reset, never loaded)');

# ---- the run's LOG line says where the caller's credentials came from
my $issued = $caller->control('GET', '/_sim/issued-secrets');
my $sts_issued = $sts->control('GET', '/_sim/issued-secrets');
$node->stop;
my $server_log = slurp_file($node->logfile);
like($server_log, qr/LOG:  cloudconn: run $run of connector $c succeeded.*\n.*DETAIL:  .*AWS caller credentials: roles_anywhere \(IAM Roles Anywhere\)\./,
	'the Roles Anywhere run\'s LOG line names its caller source');
like($server_log, qr/LOG:  cloudconn: run $irun of connector $c succeeded.*\n.*DETAIL:  .*AWS caller credentials: instance \(EC2 instance metadata, IMDSv2\)\./,
	'and the instance run\'s');

# ---- every request went to the loopback simulators: the server log has a
# line for each attempt (log_min_messages = debug5), naming its host
my @attempts = $server_log =~ /cloudconn: (?:GET|PUT|POST) (https?) (\S+) \S+ -> /g;
my %hosts;
for (my $i = 0; $i < @attempts; $i += 2) { $hosts{"$attempts[$i]://$attempts[$i + 1]"}++ }
my @expected = sort ("http://127.0.0.1:$caller->{http_port}", "https://127.0.0.1:$caller->{port}", "https://127.0.0.1:$sts->{port}");
is(join(' ', sort keys %hosts), join(' ', @expected), 'every attempt went to the simulators on 127.0.0.1, and nowhere else');
cmp_ok($hosts{"http://127.0.0.1:$caller->{http_port}"}, '>=', 8, 'plain http only to the loopback metadata simulator');

# ---- no key, no session secret in the debug5 log
my @secrets = (@{ $issued->{secret_access_keys} }, @{ $issued->{session_tokens} }, @{ $issued->{imds_tokens} },
	@{ $sts_issued->{secret_access_keys} }, @{ $sts_issued->{session_tokens} }, $token);
cmp_ok(scalar(@secrets), '>=', 20, 'the simulators handed out secrets at every step');
# PostgreSQL itself writes the postmaster's environment to the log at debug3
# and below ("initial environment dump"): AWS_CONTAINER_AUTHORIZATION_TOKEN
# set in the environment is there (README: prefer the token file); nothing
# of cloudconn's making is
my $dump = qr/^\S+ \S+ \S+ \[\d+\] DEBUG:  \t[A-Za-z_][A-Za-z0-9_]*=.*$/m;
like($server_log, qr/DEBUG:  \tAWS_CONTAINER_AUTHORIZATION_TOKEN=\Q$token\E$/m, 'PostgreSQL\'s own environment dump has the token variable');
(my $ours = $server_log) =~ s/$dump//g;
is(scalar(grep { index($ours, $_) >= 0 } @secrets), 0, 'no secret is anywhere else in the server log (debug5)');
my @key_lines;
for my $key (qw(rsa ecdsa other untrusted expired notyet))
{
	push @key_lines, grep { length($_) >= 40 } map { s/\s+$//r } grep { !/-----/ } split /\n/, slurp_file("$pki/$key.key");
}
cmp_ok(scalar(@key_lines), '>', 20, 'the private keys\' lines');
is(scalar(grep { index($server_log, $_) >= 0 } @key_lines), 0, 'no line of a private key is in the server log');

$caller->stop;
$sts->stop;
done_testing();
