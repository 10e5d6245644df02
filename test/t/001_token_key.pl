# Stored tokens across restarts and key-file mishaps: tokens still decrypt
# after a restart; a swapped, missing, unreadable-by-policy or damaged key
# file gives a clear error, never garbage; pg_dump shows ciphertext only;
# neither the token nor the key reaches the server log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $token = 'dop_v1_5ec2e7' . ('ab' x 29);
my $node = PostgreSQL::Test::Cluster->new('token_key');
$node->init;
# The statement text is the application's (which passes tokens as bind
# parameters); what is checked here is what cloudconn itself logs, at a
# verbose level.
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cloudconn'
log_min_messages = debug2
log_statement = none
log_min_error_statement = panic
});
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');
});
my $id = $node->safe_psql('postgres',
	"SELECT cloudconn.connector_create(1, 'do', 'digitalocean', token => '$token')");
my $keyfile = $node->data_dir . '/cloudconn.key';

sub matches
{
	my ($candidate) = @_;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT cloudconn._token_matches($id, '$candidate')");
	return $ret == 0 ? $out : "ERROR: $err";
}

ok(-f $keyfile, 'key file created in the data directory on first use');
is((stat $keyfile)[2] & 07777, 0600, 'key file is owner-only (0600)');
is(-s $keyfile, 32, 'key file holds 32 bytes');
is(matches($token), 't', 'token decrypts');

$node->restart;
is(matches($token), 't', 'token still decrypts after a restart');
is(matches('dop_v1_other'), 'f', 'a wrong candidate does not match');

# pg_dump keeps the connector, with the ciphertext only
my $dump = `pg_dump -h @{[$node->host]} -p @{[$node->port]} -d postgres 2>&1`;
like($dump, qr/COPY cloudconn\.connector /, 'pg_dump includes the connector table');
like($dump, qr/\\\\x43435431/, 'pg_dump carries the token as cloudconn ciphertext');
unlike($dump, qr/5ec2e7/, 'pg_dump does not contain the token');

open(my $fh, '<:raw', $keyfile) or die $!;
my $key = do { local $/; <$fh> };
close $fh;
my $keyhex = unpack('H*', $key);
unlike($dump, qr/$keyhex/, 'pg_dump does not contain the key');

sub write_key
{
	my ($bytes, $mode) = @_;
	unlink $keyfile;
	open(my $out, '>:raw', $keyfile) or die $!;
	print $out $bytes;
	close $out;
	chmod $mode, $keyfile;
}

# another key: a clear error naming the connector and the key file
write_key(join('', map { chr(int(rand(256))) } 1 .. 32), 0600);
like(matches($token),
	qr/could not decrypt the stored token of connector $id.*DETAIL:  The token was encrypted under a different key than the one in "\Q$keyfile\E"/s,
	'a swapped key file is reported as such');

# missing
unlink $keyfile;
like(matches($token), qr/token encryption key file "\Q$keyfile\E" does not exist.*HINT:  Restore the key file/s,
	'a missing key file is reported, and not silently recreated');
ok(!-e $keyfile, 'decryption never creates a key');

# too permissive, wrong size
write_key($key, 0644);
like(matches($token), qr/has group or world access/, 'a group- or world-readable key file is refused');
write_key(substr($key, 0, 16), 0600);
like(matches($token), qr/key file "\Q$keyfile\E" is invalid.*exactly 32 bytes/s, 'a short key file is refused');
write_key($key . 'x', 0600);
like(matches($token), qr/is invalid/, 'a long key file is refused');

# the original key back: everything decrypts again
write_key($key, 0600);
is(matches($token), 't', 'restoring the key restores decryption');

# cloudconn.key_file points elsewhere: a new key is made there for new tokens
my $altkey = $node->basedir . '/alt.key';
$node->append_conf('postgresql.conf', "cloudconn.key_file = '$altkey'");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.key_file') = '$altkey'")
  or die 'reload not seen';
$node->safe_psql('postgres', "SELECT cloudconn.connector_set_token($id, '${token}2')");
ok(-f $altkey, 'cloudconn.key_file names where the key is created');
is(matches("${token}2"), 't', 'a token set under the new key decrypts');

# neither the token nor the key ever reached the server log
my $log = slurp_file($node->logfile);
unlike($log, qr/5ec2e7/, 'the token is not in the server log');
unlike($log, qr/$keyhex/i, 'the key is not in the server log');
like($log, qr/cloudconn created a new token encryption key in "\Q$keyfile\E"/, 'key creation was logged, by path');

$node->stop;
done_testing();
