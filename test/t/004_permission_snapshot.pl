# Permission sets are computed once per statement, but never outlive the
# snapshot they were computed under: a revoke committed by another session
# is seen by the next statement, even one sent in the same query string.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('permission_snapshot');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'cloudconn'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');
	CREATE ROLE reader;
	SELECT cloudconn.grant_permission('reader', 1, 'CloudConnector:read');
	INSERT INTO cloudconn.connector (entity_id, name, provider) VALUES (1, 'c', 'digitalocean');
});

# one query string, three statements, a revoke committed during the sleep
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-c',
	  q{SET ROLE reader; SELECT cloudconn.has_permission(1, 'CloudConnector:read'), (SELECT count(*) FROM cloudconn.connectors); SELECT pg_sleep(3); SELECT cloudconn.has_permission(1, 'CloudConnector:read'), (SELECT count(*) FROM cloudconn.connectors);} ],
	'>', \$out, '2>', \$err);
sleep 1;
$node->safe_psql('postgres', q{SELECT cloudconn.revoke_permission('reader', 1, 'CloudConnector:read')});
$h->finish;
is($out, "t|1\n\nf|0\n", 'the statement after a concurrent revoke no longer has the permission nor sees the rows');

# and within one statement the set stays the one of its snapshot
is($node->safe_psql('postgres', q{SET ROLE reader;
	SELECT count(*) FROM cloudconn.connectors, generate_series(1, 3)}), '0', 'no rows after the revoke');

$node->stop;
done_testing();
