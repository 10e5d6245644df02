# Signature Version 4 on the official AWS test suite (copied with its
# licence to test/sim/vendor/aws-sigv4-test-suite): for every header-signing
# case, the canonical request, the string to sign and the Authorization
# header must be byte for byte those of the suite, the S3-style cases
# (normalize false: the path signed as it is) included.
use strict;
use warnings;
use FindBin;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $suite = "$FindBin::Bin/../sim/vendor/aws-sigv4-test-suite/v4";
my $node = PostgreSQL::Test::Cluster->new('sigv4');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION cloudconn CASCADE');
# The signing hook is not part of the extension's schema: the test declares
# it (C functions need a superuser to declare).
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.sigv4_sign(method text, path text, query text, headers text[], body text,
		access_key_id text, secret_access_key text, session_token text, region text, service text,
		amz_date text, sign_session_token boolean, sign_payload_hash boolean, normalize_path boolean)
	RETURNS text[] LANGUAGE C VOLATILE AS '$libdir/cloudconn', 'cloudconn_sigv4_sign';
	REVOKE ALL ON FUNCTION public.sigv4_sign FROM PUBLIC;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_proc WHERE proname LIKE '%sigv4%'
	AND pronamespace = 'cloudconn'::regnamespace}), '0', 'the extension ships no signing function in its schema');

sub quote
{
	my ($s) = @_;
	return 'NULL' unless defined $s;
	$s =~ s/'/''/g;
	return "'$s'";
}

opendir(my $dh, $suite) or die "$suite: $!";
my @cases = sort grep { -f "$suite/$_/request.txt" } readdir($dh);
my $unnormalized = 0;
closedir $dh;
cmp_ok(scalar @cases, '>=', 30, 'the vendored suite is there');

for my $case (@cases)
{
	my $ctx = decode_json(slurp_file("$suite/$case/context.json"));
	$unnormalized++ unless $ctx->{normalize};

	# parse the raw request: request line, headers (folded lines joined), body
	my $raw = slurp_file("$suite/$case/request.txt");
	my ($head, $body) = split(/\n\n/, $raw, 2);
	my @lines = split(/\n/, $head);
	my $request_line = shift @lines;
	my ($method, $target) = $request_line =~ /^(\S+) (.*) HTTP\/1\.1$/ or die "bad request line in $case";
	my ($path, $query) = split(/\?/, $target, 2);
	my @headers;
	for my $line (@lines)
	{
		if ($line =~ /^\s/ && @headers)
		{
			(my $more = $line) =~ s/^\s+//;
			$headers[-1] .= " $more";
		}
		else
		{
			push @headers, $line;
		}
	}
	my $cred = $ctx->{credentials};
	(my $amz_date = $ctx->{timestamp}) =~ s/[-:]//g;
	my $token = $cred->{token};
	my $sign_token = defined $token && !$ctx->{omit_session_token} ? 'true' : 'false';
	my $sign_body = $ctx->{sign_body} ? 'true' : 'false';
	my $normalize = $ctx->{normalize} ? 'true' : 'false';

	my $array = 'ARRAY[' . join(',', map { quote($_) } @headers) . ']::text[]';
	my $sql = "SELECT array_to_string(public.sigv4_sign(" . join(', ',
		quote($method), quote($path), quote($query), $array, quote($body),
		quote($cred->{access_key_id}), quote($cred->{secret_access_key}), quote($token),
		quote($ctx->{region}), quote($ctx->{service}), quote($amz_date), $sign_token, $sign_body, $normalize) . "), E'\\x01')";
	my ($canonical, $string_to_sign, $authorization) = split(/\x01/, $node->safe_psql('postgres', $sql));

	is($canonical, slurp_file("$suite/$case/header-canonical-request.txt"), "$case: canonical request");
	is($string_to_sign, slurp_file("$suite/$case/header-string-to-sign.txt"), "$case: string to sign");
	my ($expected_auth) = slurp_file("$suite/$case/header-signed-request.txt") =~ /^Authorization:(.*)$/m;
	is($authorization, $expected_auth, "$case: Authorization header");
}

is($unnormalized, 7, 'the 7 S3-style cases (paths signed unnormalised) were checked too');

# the hook is for superusers only
$node->safe_psql('postgres', 'CREATE ROLE someone');
my ($ret, $out, $err) = $node->psql('postgres',
	"SET ROLE someone; SELECT public.sigv4_sign('GET', '/', NULL, '{}', NULL, 'a', 'b', NULL, 'r', 's', '20150830T123600Z', false, false, true)");
like($err, qr/permission denied for function sigv4_sign/, 'not executable by other roles');

$node->stop;
done_testing();
