# The permitted-set cache is never stale.  A reader session caches its sets
# (proved by the backend's counters: the second statement computes nothing),
# then another session makes one change of each kind, and the reader's very
# next statement sees it: grant, revoke, entity insert, move and delete,
# connector insert and move, GRANT role TO role, REVOKE role FROM role,
# DROP ROLE, ALTER ROLE ... NOINHERIT / BYPASSRLS / SUPERUSER, in autocommit
# and inside an open READ COMMITTED transaction.  Snapshots are
# honoured both ways: an uncommitted or prepared change is not seen, an
# older imported snapshot or a REPEATABLE READ transaction does not get a
# newer set, and a transaction sees its own uncommitted change (and nothing
# of it after ROLLBACK).  Without shared_preload_libraries sets serve one
# snapshot only.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('permission_cache');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'cloudconn'
cloudconn.scheduler_enabled = off
max_prepared_transactions = 2
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, parent_id, name) VALUES
		(1, NULL, 'root'), (2, 1, 'a'), (3, 1, 'b'), (5, 2, 'a-sub');
	INSERT INTO cloudconn.connector (entity_id, name, provider) VALUES (2, 'conn-a', 'digitalocean'), (3, 'conn-b', 'digitalocean');
	INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES
		(1, 'server', 'ci-root'), (2, 'server', 'ci-a'), (3, 'server', 'ci-b'), (5, 'server', 'ci-a-sub');
	CREATE ROLE reader;
	CREATE ROLE grp;
	CREATE ROLE grp_mid IN ROLE grp;
	SELECT cloudconn.grant_permission('reader', 2, 'ConfigurationItem:read');
	SELECT cloudconn.grant_permission('reader', 2, 'CloudConnector:read');
	SELECT cloudconn.grant_permission('grp', 3, 'ConfigurationItem:read');
});

sub admin { $node->safe_psql('postgres', $_[0]) }

# The reader: a session as its role all along (SET ROLE at session level).
my $reader = $node->background_psql('postgres');
$reader->query_safe('SET ROLE reader');

my $state_sql = q{SELECT (SELECT coalesce(string_agg(name, ',' ORDER BY name), '-') FROM cloudconn.configuration_item)
	|| ' | ' || (SELECT coalesce(string_agg(name, ',' ORDER BY name), '-') FROM cloudconn.connectors)
	|| ' | ' || cloudconn.permitted_entities('ConfigurationItem:read')::text};
sub state { my $s = shift // $reader; return $s->query_safe($state_sql) }
sub computed
{
	my $s = shift // $reader;
	return $s->query_safe('RESET ROLE; SELECT computed FROM cloudconn._permission_cache_stats(); SET ROLE reader');
}

# Run the state twice: the second statement must compute no set.
sub cached
{
	my ($expected, $name) = @_;
	is(state(), $expected, "$name: before");
	my $before = computed();
	is(state(), $expected, "$name: again");
	is(computed(), $before, "$name: the second statement reused the cached sets");
}

sub change_seen
{
	my ($name, $before, $sql, $after) = @_;
	cached($before, $name);
	admin($sql);
	is(state(), $after, "$name: the reader's next statement sees it");
}

my $s0 = 'ci-a,ci-a-sub | conn-a | {2,5}';
change_seen('grant', $s0,
	q{SELECT cloudconn.grant_permission('reader', 3, 'ConfigurationItem:read')},
	'ci-a,ci-a-sub,ci-b | conn-a | {2,3,5}');
change_seen('revoke', 'ci-a,ci-a-sub,ci-b | conn-a | {2,3,5}',
	q{SELECT cloudconn.revoke_permission('reader', 3, 'ConfigurationItem:read')},
	$s0);
change_seen('entity insert', $s0,
	q{INSERT INTO cloudconn.entity (id, parent_id, name) VALUES (4, 2, 'a-new');
	  INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES (4, 'server', 'ci-a-new')},
	'ci-a,ci-a-new,ci-a-sub | conn-a | {2,4,5}');
change_seen('entity move', 'ci-a,ci-a-new,ci-a-sub | conn-a | {2,4,5}',
	q{UPDATE cloudconn.entity SET parent_id = 3 WHERE id = 4},
	$s0);
admin(q{DELETE FROM cloudconn.configuration_item WHERE entity_id = 4; DELETE FROM cloudconn.entity WHERE id = 4});
change_seen('entity delete', $s0,
	q{DELETE FROM cloudconn.configuration_item WHERE entity_id = 5; DELETE FROM cloudconn.entity WHERE id = 5},
	'ci-a | conn-a | {2}');
change_seen('connector insert', 'ci-a | conn-a | {2}',
	q{INSERT INTO cloudconn.connector (entity_id, name, provider) VALUES (2, 'conn-a2', 'digitalocean')},
	'ci-a | conn-a,conn-a2 | {2}');
change_seen('connector move', 'ci-a | conn-a,conn-a2 | {2}',
	q{UPDATE cloudconn.connector SET entity_id = 3 WHERE name = 'conn-a2'},
	'ci-a | conn-a | {2}');
change_seen('GRANT role TO role', 'ci-a | conn-a | {2}',
	q{GRANT grp_mid TO reader},
	'ci-a,ci-b | conn-a | {2,3}');
change_seen('ALTER ROLE NOINHERIT', 'ci-a,ci-b | conn-a | {2,3}',
	q{ALTER ROLE reader NOINHERIT},
	'ci-a | conn-a | {2}');
change_seen('ALTER ROLE INHERIT', 'ci-a | conn-a | {2}',
	q{ALTER ROLE reader INHERIT},
	'ci-a,ci-b | conn-a | {2,3}');
change_seen('ALTER ROLE NOINHERIT of a role in the chain', 'ci-a,ci-b | conn-a | {2,3}',
	q{ALTER ROLE grp_mid NOINHERIT},
	'ci-a | conn-a | {2}');
admin(q{ALTER ROLE grp_mid INHERIT});
change_seen('DROP ROLE of a role in the chain', 'ci-a,ci-b | conn-a | {2,3}',
	q{DROP ROLE grp_mid},
	'ci-a | conn-a | {2}');
change_seen('GRANT role TO role, directly', 'ci-a | conn-a | {2}',
	q{GRANT grp TO reader},
	'ci-a,ci-b | conn-a | {2,3}');
change_seen('REVOKE role FROM role', 'ci-a,ci-b | conn-a | {2,3}',
	q{REVOKE grp FROM reader},
	'ci-a | conn-a | {2}');
# BYPASSRLS: PostgreSQL skips the policies itself; the permitted set is every entity
change_seen('ALTER ROLE BYPASSRLS', 'ci-a | conn-a | {2}',
	q{ALTER ROLE reader BYPASSRLS},
	'ci-a,ci-b,ci-root | conn-a,conn-a2,conn-b | {1,2,3}');
change_seen('ALTER ROLE NOBYPASSRLS', 'ci-a,ci-b,ci-root | conn-a,conn-a2,conn-b | {1,2,3}',
	q{ALTER ROLE reader NOBYPASSRLS},
	'ci-a | conn-a | {2}');
change_seen('ALTER ROLE SUPERUSER', 'ci-a | conn-a | {2}',
	q{ALTER ROLE reader SUPERUSER},
	'ci-a,ci-b,ci-root | conn-a,conn-a2,conn-b | {1,2,3}');
change_seen('ALTER ROLE NOSUPERUSER', 'ci-a,ci-b,ci-root | conn-a,conn-a2,conn-b | {1,2,3}',
	q{ALTER ROLE reader NOSUPERUSER},
	'ci-a | conn-a | {2}');
# a role dropped while it still holds grants: they count for nobody
admin(q{CREATE ROLE grp2; SELECT cloudconn.grant_permission('grp2', 3, 'ConfigurationItem:read'); GRANT grp2 TO reader});
change_seen('DROP ROLE of a granted group', 'ci-a,ci-b | conn-a | {2,3}',
	q{DROP ROLE grp2},
	'ci-a | conn-a | {2}');

# inside an open READ COMMITTED transaction, each statement has a new
# snapshot, and it sees each kind of change too (role memberships included:
# they are read under the statement's snapshot, not from the syscache, which
# a transaction that takes no new lock does not refresh)
$reader->query_safe('BEGIN');
cached('ci-a | conn-a | {2}', 'in a transaction');
admin(q{SELECT cloudconn.grant_permission('reader', 3, 'ConfigurationItem:read')});
is(state(), 'ci-a,ci-b | conn-a | {2,3}', 'in a transaction: a grant is seen by the next statement');
admin(q{SELECT cloudconn.revoke_permission('reader', 3, 'ConfigurationItem:read'); CREATE ROLE grp3; SELECT cloudconn.grant_permission('grp3', 3, 'ConfigurationItem:read')});
is(state(), 'ci-a | conn-a | {2}', 'in a transaction: a revoke is seen by the next statement');
admin(q{GRANT grp3 TO reader});
is(state(), 'ci-a,ci-b | conn-a | {2,3}', 'in a transaction: GRANT role TO role is seen by the next statement');
admin(q{REVOKE grp3 FROM reader});
is(state(), 'ci-a | conn-a | {2}', 'in a transaction: REVOKE role FROM role is seen by the next statement');
admin(q{GRANT grp3 TO reader});
is(state(), 'ci-a,ci-b | conn-a | {2,3}', 'in a transaction: granted again');
admin(q{DROP ROLE grp3});
is(state(), 'ci-a | conn-a | {2}', 'in a transaction: DROP ROLE is seen by the next statement');
$reader->query_safe('COMMIT');

# ---- snapshots
my $writer = $node->background_psql('postgres');

# an uncommitted change is not seen, and its commit is
cached('ci-a | conn-a | {2}', 'uncommitted grant');
$writer->query_safe(q{BEGIN; SELECT cloudconn.grant_permission('reader', 3, 'ConfigurationItem:read')});
is(state(), 'ci-a | conn-a | {2}', 'a grant not yet committed is not seen');
is(state(), 'ci-a | conn-a | {2}', 'nor by the statement after');
$writer->query_safe('COMMIT');
is(state(), 'ci-a,ci-b | conn-a | {2,3}', 'its commit is seen by the next statement');

# a prepared transaction is not committed until COMMIT PREPARED
cached('ci-a,ci-b | conn-a | {2,3}', 'prepared revoke');
$writer->query_safe(q{BEGIN; SELECT cloudconn.revoke_permission('reader', 3, 'ConfigurationItem:read'); PREPARE TRANSACTION 'revoke_b'});
is(state(), 'ci-a,ci-b | conn-a | {2,3}', 'a prepared revoke is not seen');
is(state(), 'ci-a,ci-b | conn-a | {2,3}', 'nor by the statement after');
admin(q{COMMIT PREPARED 'revoke_b'});
is(state(), 'ci-a | conn-a | {2}', 'COMMIT PREPARED is seen by the next statement');

# an older snapshot gets the set of its own time, not the newer cached one
$writer->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $snapshot = $writer->query_safe('SELECT pg_export_snapshot()');
admin(q{SELECT cloudconn.grant_permission('reader', 3, 'ConfigurationItem:read')});
cached('ci-a,ci-b | conn-a | {2,3}', 'newer set cached');
is($reader->query_safe(qq{BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '$snapshot'; $state_sql; COMMIT}),
	'ci-a | conn-a | {2}', 'a transaction on an older imported snapshot gets the set of that snapshot');
$writer->query_safe('COMMIT');
is(state(), 'ci-a,ci-b | conn-a | {2,3}', 'and the next statement the current one');

# REPEATABLE READ keeps its snapshot's set through a concurrent revoke
$reader->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
is(state(), 'ci-a,ci-b | conn-a | {2,3}', 'repeatable read: first statement');
admin(q{SELECT cloudconn.revoke_permission('reader', 3, 'ConfigurationItem:read')});
is(state(), 'ci-a,ci-b | conn-a | {2,3}', 'repeatable read: a revoke committed since is not seen');
$reader->query_safe('COMMIT');
is(state(), 'ci-a | conn-a | {2}', 'after the transaction it is');

# a transaction sees its own uncommitted grant, and nothing of it after ROLLBACK
cached('ci-a | conn-a | {2}', 'own change');
is($reader->query_safe(qq{BEGIN; RESET ROLE; SELECT cloudconn.grant_permission('reader', 3, 'ConfigurationItem:read');
	SET LOCAL ROLE reader; $state_sql}), "\nci-a,ci-b | conn-a | {2,3}", 'a transaction sees its own grant');
$reader->query_safe('ROLLBACK; SET ROLE reader');
is(state(), 'ci-a | conn-a | {2}', 'and after ROLLBACK the cached set is as it was');
my $c = computed();
is(state(), 'ci-a | conn-a | {2}', 'still');
is(computed(), $c, 'and cached again');

$reader->quit;
$writer->quit;
$node->stop;

# ---- without shared_preload_libraries: one snapshot per set, never stale
my $plain = PostgreSQL::Test::Cluster->new('permission_cache_plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', q{
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');
	INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES (1, 'server', 'ci-root');
	CREATE ROLE reader;
	SELECT cloudconn.grant_permission('reader', 1, 'ConfigurationItem:read');
});
my $r = $plain->background_psql('postgres');
$r->query_safe('SET ROLE reader');
my $count = q{SELECT count(*) FROM cloudconn.configuration_item};
is($r->query_safe($count), '1', 'not preloaded: the reader sees the CI');
my $c1 = $r->query_safe('RESET ROLE; SELECT computed FROM cloudconn._permission_cache_stats(); SET ROLE reader');
$r->query_safe($count);
my $c2 = $r->query_safe('RESET ROLE; SELECT computed FROM cloudconn._permission_cache_stats(); SET ROLE reader');
cmp_ok($c2, '>', $c1, 'not preloaded: every statement computes its set');
$plain->safe_psql('postgres', q{SELECT cloudconn.revoke_permission('reader', 1, 'ConfigurationItem:read')});
is($r->query_safe($count), '0', 'not preloaded: a revoke is seen by the next statement');
$r->quit;
$plain->stop;

done_testing();
