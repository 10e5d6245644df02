# cloudconn.key_command: the token key from a command's output (as a secret
# manager's tool gives it), never from a key file.  Moving a server from
# its key file to a new key from a command with rotate_token_key(), a
# failure midway changing nothing; runs and tests in every kind of process;
# a command that prints another key than at start, hangs (cancelled, or
# past cloudconn.key_command_timeout_ms: stopped either way), or fails at
# start (the start fails); key_command without the library preloaded;
# neither key in the server log.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use CloudconnSim;

my $token = $CloudconnSim::TOKEN;
my $sim = CloudconnSim::start_digitalocean();
$sim->control('POST', '/_sim/droplets/generate', { count => 30, regions => ['ams3'], seed => 3 });
my $dir = PostgreSQL::Test::Utils::tempdir('keycmd');
my $script = "$dir/key.sh";

# the command cloudconn runs is "sh $script"; the test rewrites the script
sub set_script
{
	my ($body) = @_;
	open(my $fh, '>', $script) or die $!;
	print $fh "$body\n";
	close $fh;
}
sub random_hex { join('', map { sprintf('%02x', int(rand(256))) } 1 .. 32) }
my $new_hex = random_hex();
open(my $fh, '>', "$dir/key.hex") or die $!;
print $fh "$new_hex\n";
close $fh;
set_script("cat '$dir/key.hex'");

my $node = CloudconnSim::cluster('key_command', $sim->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$sim->url]}'
log_min_messages = debug2
log_statement = none
log_min_error_statement = panic
});
my $pgdata = $node->data_dir;
sub sql { $node->safe_psql('postgres', $_[0]) }
sub try_sql
{
	my ($sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $sql);
	return $ret == 0 ? $out : "ERROR: $err";
}

# ---- tokens under the key file of the data directory
sql(q{
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');
	CREATE ROLE manager;
	SELECT cloudconn.grant_permission('manager', 1, 'CloudConnector:manage');
	SELECT cloudconn.grant_permission('manager', 1, 'ConfigurationItem:manage');
});
my @ids = map { sql("SET ROLE manager; SELECT cloudconn.connector_create(1, 'do $_', 'digitalocean', 'manual', '{}', '$token')") } (1 .. 3);
sub matches { join(',', map { sql("SELECT cloudconn._token_matches($_, '$token')") } @ids) }
sub tokens { sql(q{SELECT string_agg(id || ':' || encode(token, 'hex'), ',' ORDER BY id) FROM cloudconn.connector WHERE token IS NOT NULL}) }
is(matches(), 't,t,t', 'three tokens under the key file');
my $old_hex = unpack('H*', slurp_file("$pgdata/cloudconn.key"));

# ---- the server is given a new key, from a command, and its key file is moved out
$node->stop;
my $oldkey = "$dir/old.key";
rename("$pgdata/cloudconn.key", $oldkey) or die $!;
$node->append_conf('postgresql.conf', "cloudconn.key_command = 'sh $script'");
$node->start;
like(slurp_file($node->logfile), qr/LOG:  cloudconn: cloudconn\.key_command gave the token encryption key/,
	'the postmaster ran the command at start');
like(try_sql("SELECT cloudconn._token_matches($ids[0], '$token')"),
	qr/could not decrypt the stored token of connector $ids[0].*DETAIL:  The token was encrypted under a different key than the one from cloudconn\.key_command\./s,
	'the tokens are not under the command\'s key yet, and nothing falls back to a key file');
ok(!-e "$pgdata/cloudconn.key", 'no key file was read or created');

# a failure midway changes nothing: the last token cannot be decrypted
my $before = tokens();
sql("UPDATE cloudconn.connector SET token = overlay(token placing '\\xdeadbeef' from 40 for 4) WHERE id = $ids[2]");
my $damaged = tokens();
like(try_sql("SELECT cloudconn.rotate_token_key(old_key_file => '$oldkey')"),
	qr/could not decrypt the stored token of connector $ids[2]/, 'a damaged token stops the rotation');
is(tokens(), $damaged, 'and no token changed, not even those before it');
sql("UPDATE cloudconn.connector SET token = decode('" . (split /:/, (split /,/, $before)[2])[1] . "', 'hex') WHERE id = $ids[2]");
is(tokens(), $before, '(the damaged token repaired)');
# a token under a third key stops it too
my $third = sql("SELECT encode(token, 'hex') FROM cloudconn.connector WHERE id = $ids[1]");
sql("UPDATE cloudconn.connector SET token = overlay(token placing '\\x0102030405060708' from 5 for 8) WHERE id = $ids[1]");
like(try_sql("SELECT cloudconn.rotate_token_key(old_key_file => '$oldkey')"),
	qr/the stored token of connector $ids[1] is under neither the old key nor the current one.*DETAIL:  No token was re-encrypted/s,
	'a token under neither key stops the rotation');
sql("UPDATE cloudconn.connector SET token = decode('$third', 'hex') WHERE id = $ids[1]");
is(tokens(), $before, 'and changed nothing');

# the rotation, in a transaction that is rolled back, then committed
is(sql("BEGIN; SELECT cloudconn.rotate_token_key(old_key_file => '$oldkey'); ROLLBACK;"), '3', 'a rotation rolled back...');
is(tokens(), $before, '...changes nothing');
is(sql("SELECT cloudconn.rotate_token_key(old_key_file => '$oldkey')"), '3', 'the rotation re-encrypts the three tokens');
is(matches(), 't,t,t', 'every token decrypts under the command\'s key');
is(sql(qq{
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
# and the old key as a command decrypts none either
like(try_sql("SELECT cloudconn.rotate_token_key(old_key_command => 'echo $old_hex')"), qr/^0$/,
	'a rotation from the old key (as a command) finds nothing left under it');

# ---- every kind of process gets the key: backends, run workers
my $c4 = sql("SET ROLE manager; SELECT cloudconn.connector_create(1, 'do 4', 'digitalocean', 'manual', '{}', '$token')");
ok(!-e "$pgdata/cloudconn.key", 'a new token is encrypted without a key file');
like(sql("SET ROLE manager; SELECT cloudconn.connector_test($c4)"), qr/^\{"ok": true/, 'connector_test decrypts the token in the backend');
my $run = sql("SET ROLE manager; SELECT cloudconn.connector_run($ids[0])");
is(sql("SELECT status, discovered FROM cloudconn.runs WHERE id = $run"), 'succeeded|30', 'a run decrypts it in its worker');

# the command inherits no file of the server but its standard error
set_script("ls -l /proc/\$\$/fd > '$dir/fds'; cat '$dir/key.hex'");
is(sql("SELECT cloudconn._token_matches($ids[0], '$token')"), 't', 'a command that lists its open files');
my $fds = slurp_file("$dir/fds");
like($fds, qr/ 0 -> \/dev\/null/, 'its standard input is /dev/null');
unlike($fds, qr/socket:|\Q$pgdata\E/, 'it has no socket (the client\'s) and no file of the data directory');
set_script("cat '$dir/key.hex'");

# ---- the command prints another key than at start: refused, in any new process
my $other_hex = random_hex();
set_script("echo $other_hex");
like(try_sql("SELECT cloudconn._token_matches($ids[0], '$token')"),
	qr/cloudconn\.key_command printed another key than it did at server start.*HINT:  A new key takes effect at a restart/s,
	'another key than at start is refused');
like(try_sql("SET ROLE manager; SELECT cloudconn.connector_create(1, 'do x', 'digitalocean', 'manual', '{}', '$token')"),
	qr/printed another key than it did at server start/, 'also for a new token: no token is ever under another key');
set_script("cat '$dir/key.hex'");

# whether a process is gone (a killed grandchild of ours is reaped by init)
sub gone
{
	my ($pid) = @_;
	for (1 .. 100)
	{
		return 1 unless kill(0, $pid);
		usleep(50_000);
	}
	return 0;
}

# ---- a command that hangs: a cancel stops it (and the command) at once...
set_script("echo \$\$ > '$dir/pid'; exec sleep 300");
unlink "$dir/pid";
my $t0 = time;
like(try_sql("SET statement_timeout = '1s'; SELECT cloudconn._token_matches($ids[0], '$token')"),
	qr/canceling statement due to statement timeout/, 'a hanging command is cancelled with the statement');
my $elapsed = time - $t0;
cmp_ok($elapsed, '<', 10, "promptly ($elapsed s)");
my $pid = slurp_file("$dir/pid") =~ s/\s+//gr;
ok(gone($pid), "and the command ($pid) was stopped");

# ...and cloudconn.key_command_timeout_ms bounds it
sql("ALTER SYSTEM SET cloudconn.key_command_timeout_ms = 1000; SELECT pg_reload_conf()");
$node->poll_query_until('postgres', "SELECT current_setting('cloudconn.key_command_timeout_ms') = '1s'") or die 'reload not seen';
unlink "$dir/pid";
like(try_sql("SET ROLE manager; SELECT cloudconn.connector_test($c4)"),
	qr/could not get the token encryption key from cloudconn\.key_command.*DETAIL:  The command did not finish within 1000 ms/s,
	'past the timeout: a clear error, to a manager too');
$pid = slurp_file("$dir/pid") =~ s/\s+//gr;
ok(gone($pid), "and the command ($pid) was stopped");
# a command that prints the key and does not exit is stopped too
set_script("cat '$dir/key.hex'; echo \$\$ > '$dir/pid'; exec sleep 300");
like(try_sql("SELECT cloudconn._token_matches($ids[0], '$token')"), qr/did not finish within 1000 ms/,
	'a command must exit, not only print the key');
$pid = slurp_file("$dir/pid") =~ s/\s+//gr;
ok(gone($pid), "and it ($pid) was stopped");
sql("ALTER SYSTEM RESET cloudconn.key_command_timeout_ms; SELECT pg_reload_conf()");
set_script("cat '$dir/key.hex'");
is(matches(), 't,t,t', 'with the command back, every token decrypts');

# ---- a command that fails at start: the server does not start
$node->stop;
set_script("echo 'vault: permission denied' >&2; exit 2");
ok(!$node->start(fail_ok => 1), 'a failing command stops the server from starting');
like(slurp_file($node->logfile),
	qr/FATAL:  could not get the token encryption key from cloudconn\.key_command\n[^\n]*DETAIL:  The command failed: child process exited with exit code 2\./,
	'with a clear error');
like(slurp_file($node->logfile), qr/vault: permission denied/, 'and the command\'s standard error in the server log');
set_script("echo 0123");
ok(!$node->start(fail_ok => 1), 'so does a command that prints no key');
like(slurp_file($node->logfile), qr/DETAIL:  The command printed 5 bytes; it must print the 32-byte key as 64 hexadecimal digits/,
	'saying what it printed wrong, not what it printed');
set_script("cat '$dir/key.hex'");
$node->start;
is(matches(), 't,t,t', 'a good command again, and every token decrypts');

# ---- neither key reached the server log (nor did the token)
$node->stop;
my $log = slurp_file($node->logfile);
unlike($log, qr/$old_hex|$new_hex|$other_hex/i, 'no key is in the server log (debug2)');
unlike($log, qr/\Q$token\E/, 'nor the token');

# ---- key_command without the library preloaded: no key file instead
my $plain = PostgreSQL::Test::Cluster->new('not_preloaded');
$plain->init;
$plain->append_conf('postgresql.conf', "cloudconn.key_command = 'sh $script'");
$plain->start;
$plain->safe_psql('postgres', q{CREATE EXTENSION cloudconn CASCADE; INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root')});
my (undef, undef, $err) = $plain->psql('postgres',
	"SELECT cloudconn.connector_create(1, 'do', 'digitalocean', 'manual', '{}', '$token')");
like($err, qr/cloudconn\.key_command is set, but cloudconn is not in shared_preload_libraries/,
	'without preloading, a key_command set makes encryption fail');
ok(!-e $plain->data_dir . '/cloudconn.key', 'rather than make a key file');
$plain->stop;

$sim->stop;
done_testing();
