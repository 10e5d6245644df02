# The change history of CIs (README: Change history): a droplet's timeline
# through discovered, renamed, IP changed, tag added, missing, returned, its
# description edited by a user, linked to an application and moved to
# another entity; what each run changed (run_changes); an unchanged run
# writes no CI row and no change; history is visible exactly to those who
# may read the CI now; nobody but a superuser changes or deletes it; the
# retention deletes only what is older than cloudconn.history_retention;
# history writes switched off write none.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use CloudconnSim;

my $ca = CloudconnSim::test_ca();
my $do = CloudconnSim::start_digitalocean(ca => $ca);
my $node = CloudconnSim::cluster('history', $do->ca_file, qq{
cloudconn.digitalocean_api_url = '@{[$do->url]}'
cloudconn.http_max_retries = 1
cloudconn.scheduler_enabled = off
});
sub sql { $node->safe_psql('postgres', $_[0]) }

# An error's SQLSTATE and message, or 'ok'.
sub fails
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY sqlstate\n\\set ON_ERROR_STOP 1\n$sql");
	return $rc == 0 ? 'ok' : ($err =~ /ERROR:\s+(\w+)/ ? $1 : $err);
}

sql(q{
	CREATE EXTENSION cloudconn CASCADE;
	INSERT INTO cloudconn.entity (id, name) VALUES (1, 'root');
	INSERT INTO cloudconn.entity (id, parent_id, name) VALUES (2, 1, 'A'), (3, 1, 'B');
	CREATE ROLE history_reader_a;
	CREATE ROLE history_reader_b;
	CREATE ROLE history_manager IN ROLE cloudconn_app;
	SELECT cloudconn.grant_permission('history_reader_a', 2, 'ConfigurationItem:read');
	SELECT cloudconn.grant_permission('history_reader_b', 3, 'ConfigurationItem:read');
	SELECT cloudconn.grant_permission('history_manager', 1, 'ConfigurationItem:manage');
	INSERT INTO cloudconn.application (id, entity_id, name) VALUES (1, 1, 'billing');
});

my $c = sql(qq{SELECT cloudconn.connector_create(2, 'droplets', 'digitalocean', 'manual', '{}', '$CloudconnSim::TOKEN')});
my @runs;
sub run
{
	my $run = sql("SELECT cloudconn.connector_run($c)");
	push @runs, $run;
	return sql(qq{SELECT status, created, updated, unchanged, coalesce(error, '') FROM cloudconn.runs WHERE id = $run});
}
# A run's changes, one line each: kind, field, old and new value.
sub changes_of_run
{
	my ($run, $role) = @_;
	my $set = $role ? "SET ROLE $role;" : '';
	return sql(qq{$set SELECT string_agg(concat_ws(' ', kind, field, old_value, new_value), E'\\n' ORDER BY change_id)
		FROM cloudconn.run_changes($run)});
}

$do->control('POST', '/_sim/droplets/generate', { count => 3, regions => ['ams3'], seed => 21 });
my ($d) = @{ $do->droplets };
my $did = $d->{id};
my $ci_id_sql = "SELECT id FROM cloudconn.configuration_item WHERE external_id = 'do:droplet:$did'";

# ---- the timeline, run by run
is(run(), 'succeeded|3|0|0|', 'run 1 discovers three droplets');
my $ci = sql($ci_id_sql);
is(sql("SELECT count(*) FROM cloudconn.run_changes($runs[0]) WHERE kind = 'discovered' AND field IS NULL"),
	'3', 'run 1: one discovered change per CI');
is(sql("SELECT old_value IS NULL AND new_value IS NULL, run_id = $runs[0], actor, connector_id = $c FROM cloudconn.ci_history($ci)"),
	"t|t|droplets|t", 'the discovered change names its run and connector, and carries no value (the CI holds what it is)');
is(sql("SELECT changed_at = first_discovered_at FROM cloudconn.ci_history($ci), cloudconn.configuration_item ci WHERE ci.id = $ci"),
	't', 'it is dated when the CI was first discovered');
is(sql('SELECT count(*) FROM cloudconn.ci_change'), '0',
	'and it is derived from the CI: the initial inventory wrote no row of history');

$do->control('PATCH', "/_sim/droplets/$did", { name => 'renamed-droplet' });
is(run(), 'succeeded|0|1|2|', 'run 2: renamed');
is(changes_of_run($runs[1]),
	qq{updated hostname "$d->{name}" "renamed-droplet"\nupdated name "$d->{name}" "renamed-droplet"},
	'run 2 changed the name and the hostname (a droplet\'s hostname is its name), old and new');

my $old_ip = sql("SELECT host(ip_address) FROM cloudconn.configuration_item WHERE id = $ci");
my $net = $d->{networks};
my @v4 = map { { %$_ } } @{ $net->{v4} };
$_->{ip_address} = '203.0.113.77' for grep { $_->{type} eq 'public' } @v4;
$do->control('PATCH', "/_sim/droplets/$did", { networks => { %$net, v4 => \@v4 } });
is(run(), 'succeeded|0|1|2|', 'run 3: IP changed');
is(changes_of_run($runs[2]), qq{updated ip_address "$old_ip" "203.0.113.77"}, 'run 3 changed the IP address only');

my @tags = @{ $d->{tags} };
$do->control('PATCH', "/_sim/droplets/$did", { tags => [ @tags, 'added-tag' ] });
is(run(), 'succeeded|0|1|2|', 'run 4: a tag added');
my $old_tags = sql("SELECT to_jsonb(ARRAY[" . join(',', map { "'$_'" } @tags) . "]::text[])");
$old_tags = '[]' if !@tags;
is(changes_of_run($runs[3]), sql(qq{SELECT 'updated attributes.tags ' || ('$old_tags'::jsonb)::text || ' '
		|| ('$old_tags'::jsonb || '["added-tag"]'::jsonb)::text}),
	'run 4 changed one attribute key: the tags, old and new (not the whole attributes)');

my $full = $do->control('GET', "/_sim/droplets/$did")->{droplet};
$do->control('DELETE', "/_sim/droplets/$did");
is(run(), 'succeeded|0|0|2|', 'run 5: the droplet is gone');
like(changes_of_run($runs[4]), qr/^missing missing_since "\d{4}-[^"]+"$/, 'run 5 marked it missing');

$do->control('POST', '/_sim/droplets/add', $full);
is(run(), 'succeeded|0|1|2|', 'run 6: the droplet is back, as it was');
like(changes_of_run($runs[5]), qr/^returned missing_since "\d{4}-[^"]+"$/, 'run 6: it returned, and nothing else changed');

# ---- an unchanged run writes no CI row and no change
my $rows_sql = "SELECT string_agg(id || ':' || xmin, ',' ORDER BY id) FROM cloudconn.configuration_item";
my $cis_before = sql($rows_sql);
my $changes_before = sql('SELECT count(*) || ' . "'/'" . ' || max(id) FROM cloudconn.ci_change');
is(run(), 'succeeded|0|0|3|', 'run 7: nothing changed');
is(sql($rows_sql), $cis_before, 'run 7 wrote no row of configuration_item');
is(sql('SELECT count(*) || ' . "'/'" . ' || max(id) FROM cloudconn.ci_change'), $changes_before, 'run 7 wrote no change');
is(changes_of_run($runs[6]), '', 'and run_changes of it is empty');

# ---- what only the readers of A see (before the move)
is(sql("SET ROLE history_reader_a; SELECT count(DISTINCT ci_id), count(*) FROM cloudconn.ci_changes"),
	'3|9', 'a reader of A sees the history of A\'s CIs');
is(sql("SET ROLE history_reader_a; SELECT count(DISTINCT ci_id), count(*) FROM cloudconn.ci_change"),
	sql("SELECT count(DISTINCT ci_id), count(*) FROM cloudconn.ci_change"), '(table)');
is(sql("SET ROLE history_reader_b; SELECT count(*) FROM cloudconn.ci_change"), '0', 'a reader of B sees none of it (table)');
is(sql("SET ROLE history_reader_b; SELECT count(*) FROM cloudconn.ci_changes"), '0', '(view)');
is(sql("SET ROLE history_reader_b; SELECT count(*) FROM cloudconn.ci_history($ci)"), '0', '(ci_history)');
is(changes_of_run($runs[1], 'history_reader_b'), '', '(run_changes)');
is(changes_of_run($runs[1], 'history_reader_a'), changes_of_run($runs[1]), 'a reader of A sees run_changes');

# ---- user edits, with the role that made them
sql(qq{SET ROLE history_manager; UPDATE cloudconn.configuration_item SET description = 'the billing box' WHERE id = $ci});
sql(qq{SET ROLE history_manager; INSERT INTO cloudconn.ci_application (ci_id, application_id) VALUES ($ci, 1)});
sql(qq{SET ROLE history_manager; UPDATE cloudconn.configuration_item SET entity_id = 3 WHERE id = $ci});
is(sql(qq{SELECT string_agg(concat_ws(' ', kind, field, old_value, new_value, actor, run_id IS NULL), E'\\n' ORDER BY change_id)
	FROM cloudconn.ci_changes WHERE ci_id = $ci AND kind = 'edited'}),
	qq{edited description "the billing box" history_manager t\n}
	. qq{edited application {"id": 1, "name": "billing"} history_manager t\n}
	. qq{edited entity_id 2 3 history_manager t},
	'the edits are recorded field by field with the role that made them');
is(run(), 'succeeded|0|0|3|', 'run 8 after the edits: nothing changed at the provider');
is(changes_of_run($runs[7]), '', 'and the run records none of the user\'s edits again');

# the whole timeline
is(sql(qq{SELECT string_agg(concat_ws(' ', kind, field), ', ' ORDER BY changed_at, change_id) FROM cloudconn.ci_history($ci)}),
	'discovered, updated hostname, updated name, updated ip_address, updated attributes.tags, missing missing_since, '
	. 'returned missing_since, edited description, edited application, edited entity_id',
	'ci_history: discovered, renamed, IP changed, tag added, missing, returned, description edited, linked, moved');
is(sql(qq{SELECT string_agg(DISTINCT run_id::text, ',') FROM cloudconn.ci_history($ci)}),
	join(',', sort { $a <=> $b } @runs[0 .. 5]), 'the changes of runs carry their run');

# ---- after the move: the CI's history follows what may be read now
is(sql("SET ROLE history_reader_b; SELECT count(*) FROM cloudconn.ci_history($ci)"), '10',
	'a reader of B sees the whole history of the CI moved to B');
is(sql("SET ROLE history_reader_b; SELECT count(DISTINCT ci_id) FROM cloudconn.ci_changes"), '1', 'and of no other CI');
is(sql("SET ROLE history_reader_b; SELECT count(DISTINCT ci_id) FROM cloudconn.ci_change"), '1', '(table)');
is(sql("SET ROLE history_reader_a; SELECT count(*) FROM cloudconn.ci_history($ci)"), '0', 'a reader of A no longer sees it');
is(sql("SET ROLE history_reader_a; SELECT count(DISTINCT ci_id) FROM cloudconn.ci_changes"), '2', 'but sees the two CIs still in A');

# ---- nobody changes or deletes history but a superuser
is(fails(qq{SET ROLE history_manager; UPDATE cloudconn.ci_change SET new_value = '"x"' WHERE ci_id = $ci}), '42501',
	'a manager cannot change history');
is(fails(qq{SET ROLE history_manager; DELETE FROM cloudconn.ci_change WHERE ci_id = $ci}), '42501', 'nor delete it');
is(fails(q{SET ROLE history_manager; TRUNCATE cloudconn.ci_change}), '42501', 'nor truncate it');
is(fails(q{SET ROLE history_manager; INSERT INTO cloudconn.ci_change (ci_id, role_name, kind) VALUES (1, 'x', 'edited')}),
	'42501', 'nor forge a change');
sql(q{GRANT UPDATE, DELETE, TRUNCATE ON cloudconn.ci_change TO history_manager});
is(fails(qq{SET ROLE history_manager; DELETE FROM cloudconn.ci_change WHERE ci_id = $ci}), '42501',
	'even granted DELETE, a role that is not a superuser cannot delete history');
is(fails(q{SET ROLE history_manager; TRUNCATE cloudconn.ci_change}), '42501', 'nor truncate it');
sql(q{REVOKE UPDATE, DELETE, TRUNCATE ON cloudconn.ci_change FROM history_manager});
is(sql("SELECT count(*) FROM cloudconn.ci_history($ci)"), '10', 'the history is intact');

# ---- retention: only what is older goes
my $total = sql('SELECT count(*) FROM cloudconn.ci_change');
sql(qq{UPDATE cloudconn.ci_change SET changed_at = now() - interval '3 days' WHERE ci_id = $ci AND kind <> 'edited';
	UPDATE cloudconn.configuration_item SET first_discovered_at = now() - interval '3 days' WHERE id = $ci});
$node->append_conf('postgresql.conf', "cloudconn.history_retention = '2d'\n");
$node->reload;
$node->poll_query_until('postgres', q{SELECT setting = '2880' FROM pg_settings WHERE name = 'cloudconn.history_retention'})
	or die 'the retention setting was not reloaded';
is(sql('SELECT cloudconn.history_retention_now()'), 't', 'the launcher is asked to apply the retention');
$node->poll_query_until('postgres', "SELECT count(*) = 3 FROM cloudconn.ci_change WHERE ci_id = $ci")
	or diag('the old changes were not deleted');
is(sql("SELECT string_agg(kind || ' ' || field, ', ' ORDER BY change_id) FROM cloudconn.ci_history($ci)"),
	'edited description, edited application, edited entity_id',
	'the changes older than two days are deleted, and its discovery is no longer shown');
is(sql('SELECT count(*) FROM cloudconn.ci_change'), $total - 6, 'and nothing else');
is(sql("SELECT count(*) FROM cloudconn.ci_changes WHERE kind = 'discovered'"), '2', '(the others\' discoveries are shown)');
is(fails('SET ROLE history_manager; SELECT cloudconn.history_retention_now()'), '42501',
	'only a superuser asks for the retention');

# ---- history writes off (for measurement only): the same run, no changes
is(fails('SET ROLE history_manager; SET cloudconn.history_writes = off'), '42501', 'history writes are a superuser setting');
$node->append_conf('postgresql.conf', "cloudconn.history_writes = off\n");
$node->reload;
$node->poll_query_until('postgres', q{SELECT setting = 'off' FROM pg_settings WHERE name = 'cloudconn.history_writes'})
	or die 'the setting was not reloaded';
$do->control('PATCH', "/_sim/droplets/$did", { name => 'renamed-again' });
is(run(), 'succeeded|0|1|2|', 'with history writes off, a rename is merged');
is(changes_of_run($runs[-1]), '', 'and no change is written');

$node->stop;
$do->stop;
done_testing();
