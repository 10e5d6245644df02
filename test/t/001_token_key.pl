# Stored tokens across restarts and key-file mishaps: tokens still decrypt
# after a restart; a swapped, missing, unreadable-by-policy or damaged key
# file gives a clear error, never garbage, and never its path (a
# superuser-only setting's value: the server log gets it), whether a
# superuser, a manager or a run meets it; pg_dump shows ciphertext only;
# rotate_token_key() re-encrypts every token under a new key, or none;
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
	CREATE ROLE manager;
	SELECT cloudconn.grant_permission('manager', 1, 'CloudConnector:manage');
});
my $id = $node->safe_psql('postgres',
	"SELECT cloudconn.connector_create(1, 'do', 'digitalocean', token => '$token')");
my $keyfile = $node->data_dir . '/cloudconn.key';

sub matches
{
	my ($candidate, $cid) = @_;
	$cid //= $id;
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT cloudconn._token_matches($cid, '$candidate')");
	return $ret == 0 ? $out : "ERROR: $err";
}

# what a manager is told when it sets a token, tests a connector or runs it
sub as_manager
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "SET ROLE manager; $sql");
	return $ret == 0 ? $out : "ERROR: $err";
}
my $datadir = $node->data_dir;

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

# Every message below names cloudconn.key_file, never its path: the path
# is the value of a superuser-only setting (and shows the data directory).
my @messages;

# another key: a clear error naming the connector and the key file
write_key(join('', map { chr(int(rand(256))) } 1 .. 32), 0600);
push @messages, matches($token);
like($messages[-1],
	qr/could not decrypt the stored token of connector $id.*DETAIL:  The token was encrypted under a different key than the one from the token encryption key file \(cloudconn\.key_file\)\..*HINT:  .*rotate_token_key/s,
	'a swapped key file is reported as such');
push @messages, as_manager("SELECT cloudconn.connector_test($id)");
like($messages[-1], qr/could not decrypt the stored token of connector $id/, 'and to a manager testing the connector');

# missing
unlink $keyfile;
push @messages, matches($token);
like($messages[-1],
	qr/the token encryption key file \(cloudconn\.key_file\) does not exist.*DETAIL:  Stored tokens are encrypted under the key in the file that cloudconn\.key_file names \(by default cloudconn\.key in the data directory\), not in the database.*HINT:  Restore the key file/s,
	'a missing key file is reported (saying where the key lives), and not silently recreated');
ok(!-e $keyfile, 'decryption never creates a key');
push @messages, as_manager("SELECT cloudconn.connector_test($id)");
like($messages[-1], qr/the token encryption key file \(cloudconn\.key_file\) does not exist/, 'a manager is told the same');
# a run, in its worker: runs.error, which every reader of the connector sees
my $run = $node->safe_psql('postgres', "SET ROLE manager; SELECT cloudconn.connector_run($id)");
push @messages, $node->safe_psql('postgres', "SET ROLE manager; SELECT status || ': ' || error FROM cloudconn.runs WHERE id = $run");
like($messages[-1], qr/^failed: the token encryption key file \(cloudconn\.key_file\) does not exist$/, 'a run fails with it');

# too permissive, wrong size
write_key($key, 0644);
push @messages, matches($token);
like($messages[-1], qr/the token encryption key file \(cloudconn\.key_file\) has group or world access.*HINT:  .*chmod 0600/s,
	'a group- or world-readable key file is refused');
push @messages, as_manager("SELECT cloudconn.connector_set_token($id, '$token')");
like($messages[-1], qr/has group or world access/, 'also when a manager sets a token');
write_key(substr($key, 0, 16), 0600);
push @messages, matches($token);
like($messages[-1], qr/the token encryption key file \(cloudconn\.key_file\) is invalid.*exactly 32 bytes/s, 'a short key file is refused');
write_key($key . 'x', 0600);
push @messages, as_manager("SELECT cloudconn.connector_set_token($id, '$token')");
like($messages[-1], qr/is invalid/, 'a long key file is refused');
# a directory where the key file should be
unlink $keyfile;
mkdir $keyfile or die $!;
push @messages, as_manager("SELECT cloudconn.connector_set_token($id, '$token')");
like($messages[-1], qr/the token encryption key file \(cloudconn\.key_file\) is not a regular file/, 'a directory is refused');
rmdir $keyfile or die $!;

is(scalar(grep { /\Q$datadir\E/ } @messages), 0,
	'no message names the key file\'s path (' . scalar(@messages) . ' messages)');
like(slurp_file($node->logfile), qr/DETAIL:  The file is "\Q$keyfile\E"\./, 'the server log has the path');

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

# ---- rotation: the key under alt.key is replaced by a new one.  The old
# key file is moved aside; the next use of cloudconn.key_file makes the new
# key; rotate_token_key() re-encrypts every token under it in one
# transaction, naming the old key.
my @ids = ($id, map { $node->safe_psql('postgres',
	"SELECT cloudconn.connector_create(1, 'do $_', 'digitalocean', token => '${token}$_')") } (3, 4));
my %tok = ($ids[0] => "${token}2", $ids[1] => "${token}3", $ids[2] => "${token}4");
sub tokens { $node->safe_psql('postgres', 'SELECT string_agg(id || \':\' || encode(token, \'hex\'), \',\' ORDER BY id) FROM cloudconn.connector WHERE token IS NOT NULL') }
sub all_match { join(',', map { matches($tok{$_}, $_) } @ids) }
is(all_match(), 't,t,t', 'three tokens under the alt key');
my $oldkey = $node->basedir . '/old.key';
rename($altkey, $oldkey) or die $!;
my $old_hex = unpack('H*', slurp_file($oldkey));

# a failure midway changes nothing: the last token's ciphertext is damaged
# (its header still names the old key), so the rotation fails at it
my $before = tokens();
$node->safe_psql('postgres', "UPDATE cloudconn.connector SET token = overlay(token placing '\\xdeadbeef' from 40 for 4) WHERE id = $ids[2]");
my $damaged = tokens();
my ($ret, $out, $err) = $node->psql('postgres', "SELECT cloudconn.rotate_token_key(old_key_file => '$oldkey')");
like($err, qr/could not decrypt the stored token of connector $ids[2].*DETAIL:  The stored ciphertext is damaged/s,
	'a token that cannot be decrypted stops the rotation');
is(tokens(), $damaged, 'and no token was changed, not even those before it');
ok(-f $altkey, '(the new key was made by that first use, as any encryption would)');
$node->safe_psql('postgres', "UPDATE cloudconn.connector SET token = decode('" . (split /:/, (split /,/, $before)[2])[1] . "', 'hex') WHERE id = $ids[2]");
is(tokens(), $before, 'the damaged token repaired');
like(matches($tok{ $ids[0] }), qr/encrypted under a different key than the one from the token encryption key file/,
	'until the rotation, the tokens are not under the server\'s key');

# the rotation
is($node->safe_psql('postgres', "SELECT cloudconn.rotate_token_key(old_key_file => '$oldkey')"), '3', 'the rotation re-encrypts three tokens');
is(all_match(), 't,t,t', 'every token decrypts under the new key');
my $new_hex = unpack('H*', slurp_file($altkey));
isnt($new_hex, $old_hex, 'which is another key');
is($node->safe_psql('postgres', "SELECT count(DISTINCT substr(token, 5, 8)) || ' ' || bool_and(substr(token, 5, 8) <> '\\x" . substr($before =~ s/^\d+://r, 8, 16) . "') FROM cloudconn.connector WHERE token IS NOT NULL"),
	'1 true', 'every token carries the new key\'s fingerprint, not the old one');
# the old key no longer decrypts them: not through pgcrypto itself, past the fingerprint
is($node->safe_psql('postgres', qq{
	CREATE FUNCTION pg_temp.decrypts(t bytea, hexkey text) RETURNS boolean LANGUAGE plpgsql AS \$\$
	BEGIN
		PERFORM pgp_sym_decrypt(substr(t, 13), hexkey);
		RETURN true;
	EXCEPTION WHEN external_routine_invocation_exception THEN
		RETURN false;
	END \$\$;
	SELECT string_agg(pg_temp.decrypts(token, '$old_hex') || '/' || pg_temp.decrypts(token, '$new_hex'), ',' ORDER BY id)
	  FROM cloudconn.connector WHERE token IS NOT NULL}),
	'false/true,false/true,false/true', 'pgcrypto: the old key decrypts none of them, the new one each');
# nor as the server's key
$node->append_conf('postgresql.conf', "cloudconn.key_file = '$oldkey'");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.key_file') = '$oldkey'") or die 'reload not seen';
like(matches($tok{ $ids[1] }, $ids[1]), qr/encrypted under a different key/, 'the old key as the server\'s key decrypts none');
$node->append_conf('postgresql.conf', "cloudconn.key_file = '$altkey'");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.key_file') = '$altkey'") or die 'reload not seen';
# again: nothing left to do
is($node->safe_psql('postgres', "SELECT cloudconn.rotate_token_key(old_key_file => '$oldkey')"), '0', 'a second rotation has nothing to do');
is(all_match(), 't,t,t', 'and every token still decrypts');

# neither the token nor the key ever reached the server log
my $log = slurp_file($node->logfile);
unlike($log, qr/5ec2e7/, 'the token is not in the server log');
unlike($log, qr/$keyhex/i, 'the key is not in the server log');
unlike($log, qr/$old_hex|$new_hex/i, 'nor the rotated keys');
like($log, qr/cloudconn: rotate_token_key\(\) re-encrypted 3 stored tokens/, 'the rotation was logged');
like($log, qr/cloudconn created a new token encryption key in "\Q$keyfile\E"/, 'key creation was logged, by path');

$node->stop;
done_testing();
