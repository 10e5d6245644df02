# Rough edges of issue 12 (point 6): a dropped role's grants never apply
# to anyone, not even a role created later with its OID (forced here in
# binary-upgrade mode, as pg_upgrade does); in a LATIN1 database, a
# resource whose text LATIN1 cannot hold is a per-resource error and the
# rest merges (DigitalOcean, AWS, Azure).
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CloudconnSim;

my $ca = CloudconnSim::test_ca();
my $node = CloudconnSim::cluster('edges', "$ca/ca.crt", q{
log_statement = none
log_min_error_statement = panic
});
sub sql { $node->safe_psql('postgres', $_[0]) }

sql(q{CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root'), (2, 'team');
	CREATE ROLE alice; CREATE ROLE bob;
	SELECT cloudconn.grant_permission('alice', 1, 'CloudConnector:read');
	SELECT cloudconn.grant_permission('alice', 2, 'ConfigurationItem:read');
	CREATE DATABASE other;});
my $alice = sql("SELECT 'alice'::regrole::oid");
sub sees { my ($role) = @_; sql("SET ROLE $role; SELECT count(*) FROM cloudconn.entity") }
is(sees('alice'), '2', 'alice sees the entities she was granted');

# ---- a role with grants cannot be dropped from another database ----------
my ($rc, $out, $err) = $node->psql('other', 'DROP ROLE alice');
like($err, qr/role "alice" cannot be dropped because some objects depend on it.*1 object in database postgres/s,
	'DROP ROLE from another database is refused while alice has grants here');
is(sql("SELECT count(*) FROM cloudconn.role_assignment WHERE role::oid = $alice"), '2', 'and her grants are still hers');

# revoking her last grant releases her
sql("SELECT cloudconn.revoke_permission('alice', 2, 'ConfigurationItem:read')");
($rc, $out, $err) = $node->psql('other', 'DROP ROLE alice');
like($err, qr/1 object in database postgres/, 'one grant left: still refused');
sql("SELECT cloudconn.revoke_permission('alice', 1, 'CloudConnector:read')");
is($node->psql('other', 'CREATE ROLE carol; DROP ROLE alice; CREATE ROLE alice'), 0,
	'no grant left: alice may be dropped from anywhere');
$alice = sql("SELECT 'alice'::regrole::oid");

# ---- DROP ROLE and DROP OWNED BY here drop the grants first ---------------
sql(q{SELECT cloudconn.grant_permission('alice', 1, 'CloudConnector:read');
	SELECT cloudconn.grant_permission('bob', 1, 'CloudConnector:read');
	SELECT cloudconn.grant_permission('carol', 2, 'CloudConnector:read');});
sql('DROP ROLE alice');
is(sql("SELECT count(*) FROM cloudconn.role_assignment WHERE role::oid = $alice"), '0',
	'DROP ROLE alice here: her grants went with her');
sql('DROP OWNED BY carol');
is(sql("SELECT count(*) FROM cloudconn.role_assignment WHERE role = 'carol'::regrole"), '0',
	'DROP OWNED BY carol: her grants went');
is($node->psql('other', 'DROP ROLE carol'), 0, 'and she may be dropped from another database');
($rc, $out, $err) = $node->psql('postgres', 'BEGIN; DROP ROLE bob; ROLLBACK');
is(sql("SELECT count(*) FROM cloudconn.role_assignment WHERE role = 'bob'::regrole"), '1',
	'a DROP ROLE rolled back keeps the grants');

# a grant to an OID that names no role is refused, even written directly
($rc, $out, $err) = $node->psql('postgres', "INSERT INTO cloudconn.role_assignment (role, entity_id, permission) VALUES ($alice, 1, 'CloudConnector:read')");
like($err, qr/role with OID $alice does not exist/, 'a bare OID is refused, by the table itself');

# deleting an entity deletes its grants, and releases a role left with none
sql(q{INSERT INTO cloudconn.entity (id, parent_id, name) VALUES (3, 1, 'temp'); CREATE ROLE dave;
	SELECT cloudconn.grant_permission('dave', 3, 'CloudConnector:read'); DELETE FROM cloudconn.entity WHERE id = 3});
is($node->psql('other', 'DROP ROLE dave'), 0, 'a role whose grants went with their entity may be dropped');

# ---- a new role given a dropped role's OID inherits nothing ---------------
# binary-upgrade mode lets a role be created with a chosen OID, as pg_upgrade does
sub restart_binary_upgrade
{
	$node->stop;
	system_or_bail('pg_ctl', '-D', $node->data_dir, '-l', $node->logfile, '-o', '-b', '-w', 'start');
	$node->_update_pid(1);
}
sub restart_normal
{
	$node->stop;
	$node->start;
}
sub create_role_with_oid
{
	my ($name, $oid) = @_;
	restart_binary_upgrade();
	sql("SELECT binary_upgrade_set_next_pg_authid_oid('$oid'::oid); CREATE ROLE $name");
	restart_normal();
	return sql("SELECT '$name'::regrole::oid");
}
is(create_role_with_oid('mallory', $alice), $alice, 'mallory was created with the OID alice had');
is(sql("SELECT count(*) FROM cloudconn.role_assignment WHERE role::oid = $alice"), '0', 'no grant names that OID');
is(sees('mallory'), '0', 'mallory sees nothing of what alice was granted');

# the control: a grant written past the anchor (its trigger disabled), then
# its role dropped from another database, is inherited by the next role
# with its OID: what the anchor prevents
sql(q{CREATE ROLE erin; ALTER TABLE cloudconn.role_assignment DISABLE TRIGGER role_assignment_anchor;
	INSERT INTO cloudconn.role_assignment (role, entity_id, permission) VALUES ('erin', 1, 'CloudConnector:read');
	ALTER TABLE cloudconn.role_assignment ENABLE ALWAYS TRIGGER role_assignment_anchor;});
my $erin = sql("SELECT 'erin'::regrole::oid");
is($node->psql('other', 'DROP ROLE erin'), 0, 'without the anchor, erin is dropped from another database');
is(create_role_with_oid('trudy', $erin), $erin, 'trudy was created with the OID erin had');
is(sees('trudy'), '1', 'and inherits erin\'s grant: the attack the anchor stops');
sql("DELETE FROM cloudconn.role_assignment WHERE role = 'trudy'::regrole");

done_testing();
