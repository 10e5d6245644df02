-- Privileges as PostgreSQL has them: a grant counts only for roles that
-- inherit it (NOINHERIT is honoured), PUBLIC only reads, nobody without a
-- grant can lock an extension table in a mode that blocks others, and the
-- scheduler's global figures are for those who see the whole tree.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_login, regress_chain_login, regress_chain_mid;
RESET client_min_messages;

CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

SELECT min(id) AS eu_c FROM cloudconn.connector WHERE entity_id = 2 AND deleted_at IS NULL \gset
SELECT min(id) AS us_c FROM cloudconn.connector WHERE entity_id = 3 AND deleted_at IS NULL \gset

-- The application's login role as README sets it up: NOINHERIT, a member of
-- the user roles it switches to.  Connected as it, before any SET ROLE, it
-- has no cloudconn permission at all: it sees nothing...
CREATE ROLE regress_login NOINHERIT IN ROLE regress_eu_manager, regress_ci_manager, regress_admin_group,
	regress_root_reader;
SET SESSION AUTHORIZATION regress_login;
SELECT 'connectors' AS via, count(*) FROM cloudconn.connectors
UNION ALL SELECT 'connector table', count(*) FROM cloudconn.connector
UNION ALL SELECT 'runs', count(*) FROM cloudconn.runs
UNION ALL SELECT 'run_errors', count(*) FROM cloudconn.run_errors
UNION ALL SELECT 'entities', count(*) FROM cloudconn.entity
UNION ALL SELECT 'role assignments', count(*) FROM cloudconn.role_assignment
UNION ALL SELECT 'CIs', count(*) FROM cloudconn.configuration_item
UNION ALL SELECT 'configuration_items', count(*) FROM cloudconn.configuration_items
UNION ALL SELECT 'applications', count(*) FROM cloudconn.application
UNION ALL SELECT 'CI links', count(*) FROM cloudconn.ci_application;
SELECT cloudconn.has_permission(2, 'CloudConnector:manage') AS has_eu_manage,
	   cloudconn.has_permission(1, 'CloudConnector:read') AS has_root_read,
	   cloudconn.permitted_entities('CloudConnector:manage') AS manages,
	   cloudconn.permitted_entities('ConfigurationItem:read') AS reads_cis;
-- ...and can do nothing
SELECT label, pg_temp.try(replace(replace(stmt, '{eu}', :'eu_c'), '{us}', :'us_c')) AS outcome FROM (VALUES
	('update eu connector',        $$SELECT cloudconn.connector_update({eu}, name => 'x')$$),
	('update us connector',        $$SELECT cloudconn.connector_update({us}, name => 'x')$$),
	('set token',                  $$SELECT cloudconn.connector_set_token({eu}, 'x')$$),
	('delete connector',           $$SELECT cloudconn.connector_delete({eu})$$),
	('template',                   $$SELECT cloudconn.aws_cloudformation_template({eu})$$),
	('test',                       $$SELECT cloudconn.connector_test({eu})$$),
	('run',                        $$SELECT cloudconn.connector_run({eu}, wait => false)$$),
	('create at 2',                $$SELECT cloudconn.connector_create(2, 'x', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('grant',                      $$SELECT cloudconn.grant_permission('regress_login', 1, 'CloudConnector:manage')$$),
	('revoke',                     $$SELECT cloudconn.revoke_permission('regress_eu_manager', 2, 'CloudConnector:manage')$$),
	('insert CI',                  $$INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES (2, 'server', 'x')$$),
	('delete CIs',                 $$DELETE FROM cloudconn.configuration_item$$),
	('lock CIs',                   $$LOCK TABLE cloudconn.configuration_item IN ACCESS EXCLUSIVE MODE$$)
) AS cases(label, stmt);

-- After SET ROLE it has exactly what its current role has
SET ROLE regress_eu_manager;
SELECT string_agg(name, ', ' ORDER BY name) AS eu_manager_sees FROM cloudconn.connectors;
SELECT cloudconn.permitted_entities('CloudConnector:manage') AS manages,
	   cloudconn.has_permission(3, 'CloudConnector:read') AS has_us_read;
SELECT role, entity_id, permission FROM cloudconn.role_assignment ORDER BY role::text, entity_id, permission;
SELECT label, pg_temp.try(replace(replace(stmt, '{eu}', :'eu_c'), '{us}', :'us_c')) AS outcome FROM (VALUES
	('update eu connector',        $$SELECT cloudconn.connector_update({eu}, schedule => 'manual')$$),
	('and back',                   $$SELECT cloudconn.connector_update({eu}, schedule => 'daily')$$),
	('update us connector',        $$SELECT cloudconn.connector_update({us}, name => 'x')$$),
	('grant within scope',         $$SELECT cloudconn.grant_permission('regress_outsider', 4, 'CloudConnector:read')$$),
	('revoke within scope',        $$SELECT cloudconn.revoke_permission('regress_outsider', 4, 'CloudConnector:read')$$),
	('grant outside scope',        $$SELECT cloudconn.grant_permission('regress_outsider', 3, 'CloudConnector:read')$$)
) AS cases(label, stmt);
SET ROLE regress_ci_manager;
SELECT label, pg_temp.try(stmt) AS outcome FROM (VALUES
	('insert CI at 2',             $$INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES (2, 'server', 'login-box')$$),
	('insert CI at 3',             $$INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES (3, 'server', 'x')$$),
	('delete it',                  $$DELETE FROM cloudconn.configuration_item WHERE name = 'login-box'$$)
) AS cases(label, stmt);
SELECT cloudconn.permitted_entities('ConfigurationItem:manage') AS manages_cis;
-- a group's grant reaches the login role only through SET ROLE to a role that inherits it
SET ROLE regress_admin_group;
SELECT cloudconn.permitted_entities('CloudConnector:manage') AS group_manages;
SET ROLE regress_root_reader;
SELECT cloudconn.permitted_entities('CloudConnector:read') AS root_reader_reads;
RESET ROLE;
SELECT count(*) AS after_reset_role_sees FROM cloudconn.connectors;
SELECT cloudconn.permitted_entities('CloudConnector:read') AS after_reset_role_reads;
RESET SESSION AUTHORIZATION;

-- An inheriting member still gets its group's grants, through every
-- inheriting link of a chain; a NOINHERIT link stops them.
SET ROLE regress_member;
SELECT cloudconn.permitted_entities('CloudConnector:manage') AS member_manages;
RESET ROLE;
CREATE ROLE regress_chain_mid IN ROLE regress_admin_group;
CREATE ROLE regress_chain_login NOINHERIT IN ROLE regress_chain_mid;
SET SESSION AUTHORIZATION regress_chain_login;
SELECT cloudconn.permitted_entities('CloudConnector:manage') AS login_manages,
	   (SELECT count(*) FROM cloudconn.role_assignment) AS login_sees_grants;
SET ROLE regress_chain_mid;
SELECT cloudconn.permitted_entities('CloudConnector:manage') AS mid_manages,
	   (SELECT string_agg(role::text, ', ') FROM cloudconn.role_assignment WHERE entity_id = 4) AS mid_sees_grants_at_4;
RESET SESSION AUTHORIZATION;
ALTER ROLE regress_chain_mid NOINHERIT;
SET ROLE regress_chain_mid;
SELECT cloudconn.permitted_entities('CloudConnector:manage') AS noinherit_mid_manages,
	   (SELECT count(*) FROM cloudconn.connectors) AS noinherit_mid_sees;
RESET ROLE;
-- the same answers as PostgreSQL's own privilege test
SELECT r.rolname, pg_has_role(r.oid, 'regress_admin_group', 'USAGE') AS has_group_privileges,
	   cloudconn._has_permission(r.oid, 4, 'CloudConnector:manage') AS manages_4
  FROM pg_roles r
 WHERE r.rolname IN ('regress_member', 'regress_login', 'regress_chain_login', 'regress_chain_mid')
 ORDER BY r.rolname;
DROP ROLE regress_chain_login, regress_chain_mid;

-- PUBLIC may only read: SELECT on tables and views, nothing on sequences.
SELECT c.relname, c.relkind, string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type) AS public_may
  FROM pg_class c
  LEFT JOIN LATERAL aclexplode(c.relacl) a ON a.grantee = 0
 WHERE c.relnamespace = 'cloudconn'::regnamespace AND c.relkind IN ('r', 'v', 'S')
 GROUP BY c.relname, c.relkind ORDER BY c.relkind, c.relname;
SELECT c.relname, string_agg(DISTINCT a.privilege_type, ', ') AS public_may_on_columns
  FROM pg_class c
  JOIN pg_attribute t ON t.attrelid = c.oid AND t.attacl IS NOT NULL
  JOIN LATERAL aclexplode(t.attacl) a ON a.grantee = 0
 WHERE c.relnamespace = 'cloudconn'::regnamespace
 GROUP BY c.relname ORDER BY c.relname;
-- what cloudconn_app members may write
SELECT c.relname, string_agg(DISTINCT a.privilege_type || a.level, ', ') AS cloudconn_app_may
  FROM pg_class c,
	   LATERAL (SELECT x.privilege_type, x.grantee, '' AS level FROM aclexplode(c.relacl) x
				UNION ALL
				SELECT x.privilege_type, x.grantee, ' (columns)' FROM pg_attribute t, aclexplode(t.attacl) x
				 WHERE t.attrelid = c.oid AND t.attacl IS NOT NULL) a
 WHERE c.relnamespace = 'cloudconn'::regnamespace AND a.grantee = 'cloudconn_app'::regrole
 GROUP BY c.relname ORDER BY c.relname;

-- A role without any grant can lock an extension table or view only in
-- ACCESS SHARE mode (what every SELECT takes; it conflicts with ACCESS
-- EXCLUSIVE alone): every mode is tried on every table and view.
CREATE FUNCTION pg_temp.lockable_in(relid regclass) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(m.mode, ', ' ORDER BY m.ord)
						FILTER (WHERE pg_temp.try(format('LOCK TABLE %s IN %s MODE NOWAIT', relid, m.mode)) = 'ok'),
					'none')
	  FROM unnest(ARRAY['ACCESS SHARE', 'ROW SHARE', 'ROW EXCLUSIVE', 'SHARE UPDATE EXCLUSIVE', 'SHARE',
						'SHARE ROW EXCLUSIVE', 'EXCLUSIVE', 'ACCESS EXCLUSIVE']) WITH ORDINALITY m(mode, ord)
$$;
SET ROLE regress_outsider;
SELECT c.relname, c.relkind, pg_temp.lockable_in(c.oid) AS outsider_can_lock_in
  FROM pg_class c
 WHERE c.relnamespace = 'cloudconn'::regnamespace AND c.relkind IN ('r', 'v', 'p', 'm', 'f')
 ORDER BY c.relkind, c.relname;
-- (a member of cloudconn_app can: its DELETE privilege allows every mode)
SET ROLE regress_ci_manager;
SELECT pg_temp.lockable_in('cloudconn.configuration_item') AS cloudconn_app_member_can_lock_cis_in;
RESET ROLE;

-- The scheduler's launcher pid and counters count every tenant's runs:
-- shown to superusers and to roles with a permission on every root entity.
SET ROLE regress_eu_reader;
SELECT enabled, launcher_pid, queued, runs_in_progress FROM cloudconn.scheduler;
SELECT launcher_pid, queued, runs_in_progress FROM cloudconn.scheduler_status();
SET ROLE regress_login;
SELECT queued, runs_in_progress FROM cloudconn.scheduler;
SET ROLE regress_root_reader;
SELECT queued IS NOT NULL AS queued_shown, runs_in_progress IS NOT NULL AS runs_shown FROM cloudconn.scheduler;
SET ROLE regress_ci_manager;
SELECT queued IS NOT NULL AS queued_shown, runs_in_progress IS NOT NULL AS runs_shown FROM cloudconn.scheduler;
RESET ROLE;
SELECT queued IS NOT NULL AS queued_shown, runs_in_progress IS NOT NULL AS runs_shown FROM cloudconn.scheduler;
-- a second tree: a permission on the first root no longer covers everything
-- (nor does the read policies' once-per-statement shortcut let its rows through)
INSERT INTO cloudconn.entity (id, parent_id, name) VALUES (90, NULL, 'second root');
INSERT INTO cloudconn.connector (entity_id, name, provider) VALUES (90, 'second tree do', 'digitalocean');
INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES (90, 'server', 'second-tree-box');
SET ROLE regress_root_reader;
SELECT queued IS NOT NULL AS queued_shown, runs_in_progress IS NOT NULL AS runs_shown FROM cloudconn.scheduler;
SELECT cloudconn.entity_restriction('CloudConnector:read') AS restricted,
	   (SELECT count(*) FROM cloudconn.connectors WHERE entity_id = 90) AS sees_second_tree_connectors,
	   (SELECT count(*) FROM cloudconn.entity WHERE id = 90) AS sees_second_root;
SET ROLE regress_eu_reader;
SELECT cloudconn.entity_restriction('CloudConnector:read') AS eu_reader_restricted;
RESET ROLE;
SELECT cloudconn.entity_restriction('CloudConnector:read') AS superuser_restricted,
	   cloudconn.connector_restriction('CloudConnector:read') AS superuser_connectors_restricted;
DELETE FROM cloudconn.configuration_item WHERE entity_id = 90;
DELETE FROM cloudconn.connector WHERE entity_id = 90;
DELETE FROM cloudconn.entity WHERE id = 90;
SET ROLE regress_root_reader;
SELECT queued IS NOT NULL AS queued_shown, runs_in_progress IS NOT NULL AS runs_shown FROM cloudconn.scheduler;
SELECT cloudconn.entity_restriction('CloudConnector:read') AS restricted,
	   cloudconn.connector_restriction('CloudConnector:read') AS connectors_restricted;
RESET ROLE;
DROP ROLE regress_login;
