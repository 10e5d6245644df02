-- Row-level security and the permission model: who sees and may do what.
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

-- fixtures: one connector per level of the tree, each with a run and a run error
SELECT cloudconn.connector_create(1, 'root aws', 'aws', 'manual', '{"account_id": "100000000001"}') AS root_c \gset
SELECT cloudconn.connector_create(3, 'us aws', 'aws', 'daily', '{"account_id": "300000000003"}') AS us_c \gset
SELECT cloudconn.connector_create(5, 'sub do', 'digitalocean', token => 'dop_v1_sub') AS sub_c \gset
SELECT id AS eu_c FROM cloudconn.connector WHERE name = 'Prod AWS' \gset
SELECT id AS team_c FROM cloudconn.connector WHERE name = 'Droplets' AND deleted_at IS NULL \gset
INSERT INTO cloudconn.run (connector_id, trigger, status, finished_at, error_count)
SELECT id, 'scheduled', 'partial', now(), 1 FROM cloudconn.connector WHERE deleted_at IS NULL;
INSERT INTO cloudconn.run_error (run_id, external_id, message)
SELECT r.id, 'ext-' || k.name, 'region failed' FROM cloudconn.run r JOIN cloudconn.connector k ON k.id = r.connector_id
 WHERE r.status = 'partial';

SELECT k.id, k.entity_id, k.name FROM cloudconn.connectors k ORDER BY entity_id, name;

-- What each role sees, through the views and the tables alike.  Grants:
-- root_reader read@1, eu_reader read@2, member (through its group) manage@4,
-- us_manager manage@3, ci_reader ConfigurationItem:read@2, outsider nothing.
SET ROLE regress_root_reader;
SELECT 'connectors' AS via, string_agg(name, ', ' ORDER BY name) FROM cloudconn.connectors
UNION ALL SELECT 'connector table', string_agg(name, ', ' ORDER BY name) FROM cloudconn.connector WHERE deleted_at IS NULL
UNION ALL SELECT 'runs', string_agg(DISTINCT connector_name, ', ') FROM cloudconn.runs
UNION ALL SELECT 'run_errors', string_agg(DISTINCT external_id, ', ') FROM cloudconn.run_errors
UNION ALL SELECT 'entities', string_agg(name, ', ' ORDER BY id) FROM cloudconn.entity;
SET ROLE regress_eu_reader;
SELECT 'connectors' AS via, string_agg(name, ', ' ORDER BY name) FROM cloudconn.connectors
UNION ALL SELECT 'connector table', string_agg(name, ', ' ORDER BY name) FROM cloudconn.connector WHERE deleted_at IS NULL
UNION ALL SELECT 'runs', string_agg(DISTINCT connector_name, ', ') FROM cloudconn.runs
UNION ALL SELECT 'run_errors', string_agg(DISTINCT external_id, ', ') FROM cloudconn.run_errors
UNION ALL SELECT 'entities', string_agg(name, ', ' ORDER BY id) FROM cloudconn.entity;
SET ROLE regress_member;
SELECT 'connectors' AS via, string_agg(name, ', ' ORDER BY name) FROM cloudconn.connectors
UNION ALL SELECT 'connector table', string_agg(name, ', ' ORDER BY name) FROM cloudconn.connector WHERE deleted_at IS NULL
UNION ALL SELECT 'runs', string_agg(DISTINCT connector_name, ', ') FROM cloudconn.runs
UNION ALL SELECT 'run_errors', string_agg(DISTINCT external_id, ', ') FROM cloudconn.run_errors
UNION ALL SELECT 'entities', string_agg(name, ', ' ORDER BY id) FROM cloudconn.entity;
SET ROLE regress_us_manager;
SELECT 'connectors' AS via, string_agg(name, ', ' ORDER BY name) FROM cloudconn.connectors
UNION ALL SELECT 'runs', string_agg(DISTINCT connector_name, ', ') FROM cloudconn.runs
UNION ALL SELECT 'entities', string_agg(name, ', ' ORDER BY id) FROM cloudconn.entity;
SET ROLE regress_ci_reader;
SELECT 'connectors' AS via, string_agg(name, ', ' ORDER BY name) FROM cloudconn.connectors
UNION ALL SELECT 'runs', string_agg(DISTINCT connector_name, ', ') FROM cloudconn.runs
UNION ALL SELECT 'entities', string_agg(name, ', ' ORDER BY id) FROM cloudconn.entity;
SET ROLE regress_outsider;
SELECT 'connectors' AS via, count(*) FROM cloudconn.connectors
UNION ALL SELECT 'connector table', count(*) FROM cloudconn.connector
UNION ALL SELECT 'runs', count(*) FROM cloudconn.runs
UNION ALL SELECT 'run table', count(*) FROM cloudconn.run
UNION ALL SELECT 'run_errors', count(*) FROM cloudconn.run_errors
UNION ALL SELECT 'entities', count(*) FROM cloudconn.entity
UNION ALL SELECT 'role assignments', count(*) FROM cloudconn.role_assignment
UNION ALL SELECT 'CIs', count(*) FROM cloudconn.configuration_item;
RESET ROLE;

-- read is not manage; what a role cannot read does not exist for it
SET ROLE regress_eu_reader;
SELECT label, pg_temp.try(replace(replace(stmt, '{eu}', :'eu_c'), '{us}', :'us_c')) AS outcome FROM (VALUES
	('update own-scope connector', $$SELECT cloudconn.connector_update({eu}, name => 'x')$$),
	('delete own-scope connector', $$SELECT cloudconn.connector_delete({eu})$$),
	('template of readable',       $$SELECT cloudconn.aws_cloudformation_template({eu})$$),
	('create in readable entity',  $$SELECT cloudconn.connector_create(2, 'x', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('update sibling connector',   $$SELECT cloudconn.connector_update({us}, name => 'x')$$),
	('template of sibling',        $$SELECT cloudconn.aws_cloudformation_template({us})$$),
	('grant to itself',            $$SELECT cloudconn.grant_permission('regress_eu_reader', 2, 'CloudConnector:manage')$$)
) AS cases(label, stmt);

-- group membership: the member manages entity 4 and below, nothing above
SET ROLE regress_member;
SELECT label, pg_temp.try(replace(replace(stmt, '{team}', :'team_c'), '{eu}', :'eu_c')) AS outcome FROM (VALUES
	('rename connector at 4',      $$SELECT cloudconn.connector_update({team}, name => 'Team droplets')$$),
	('create at 5 (descendant)',   $$SELECT cloudconn.connector_create(5, 'member do', 'digitalocean', token => 'dop_v1_m')$$),
	('create at 2 (ancestor)',     $$SELECT cloudconn.connector_create(2, 'x', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('update connector at 2',      $$SELECT cloudconn.connector_update({eu}, name => 'x')$$),
	('move 4 -> 2 (no manage@2)',  $$SELECT cloudconn.connector_update({team}, entity_id => 2)$$)
) AS cases(label, stmt);
RESET ROLE;

-- moving needs manage on both entities
SET ROLE regress_us_manager;
SELECT pg_temp.try(format('SELECT cloudconn.connector_update(%s, entity_id => 2)', :us_c)) AS us_manager_moves_to_eu;
SET ROLE regress_eu_manager;
SELECT pg_temp.try(format('SELECT cloudconn.connector_update(%s, entity_id => 3)', :eu_c)) AS eu_manager_moves_to_us;
SET ROLE regress_both_manager;
SELECT pg_temp.try(format('SELECT cloudconn.connector_update(%s, entity_id => 2)', :us_c)) AS both_manager_moves_to_eu;
RESET ROLE;
SELECT name, entity_id FROM cloudconn.connector WHERE id = :us_c;
-- the run history moved with it: the eu reader now sees it, the us manager no longer
SET ROLE regress_eu_reader;
SELECT count(*) AS eu_reader_sees_us_runs FROM cloudconn.runs WHERE connector_id = :us_c;
SET ROLE regress_us_manager;
SELECT count(*) AS us_manager_sees_us_runs FROM cloudconn.runs WHERE connector_id = :us_c;
SET ROLE regress_both_manager;
SELECT cloudconn.connector_update(:us_c, entity_id => 3);
RESET ROLE;

-- delegation: a manager grants read within its scope, and revokes it
SET ROLE regress_eu_manager;
SELECT cloudconn.grant_permission('regress_outsider', 4, 'CloudConnector:read');
SET ROLE regress_outsider;
SELECT string_agg(name, ', ' ORDER BY name) AS outsider_sees FROM cloudconn.connectors;
SET ROLE regress_eu_manager;
SELECT cloudconn.revoke_permission('regress_outsider', 4, 'CloudConnector:read');
SET ROLE regress_outsider;
SELECT count(*) AS outsider_sees_after_revoke FROM cloudconn.connectors;
RESET ROLE;

-- direct writes to the extension's tables are not granted; only the functions write
SET ROLE regress_eu_manager;
SELECT label, pg_temp.try(stmt) AS outcome FROM (VALUES
	('update connector table',  $$UPDATE cloudconn.connector SET name = 'x'$$),
	('insert connector table',  $$INSERT INTO cloudconn.connector (entity_id, name, provider) VALUES (2, 'x', 'digitalocean')$$),
	('grant by insert',         $$INSERT INTO cloudconn.role_assignment VALUES ('regress_eu_manager', 1, 'CloudConnector:manage')$$),
	('forge a run',             $$INSERT INTO cloudconn.run (connector_id, trigger) VALUES (1, 'manual')$$),
	('delete history',          $$DELETE FROM cloudconn.run$$),
	('insert entity',           $$INSERT INTO cloudconn.entity (name) VALUES ('mine')$$),
	('private implementation',  $$SELECT cloudconn._connector_create(10, 1, 'x', 'aws', 'daily', '{"account_id": "123456789012"}', NULL)$$),
	('private permission set',  $$SELECT cloudconn._permitted_entities(10, 'CloudConnector:read')$$),
	('private has_permission',  $$SELECT cloudconn._has_permission(10, 1, 'CloudConnector:manage')$$),
	('private encrypt',         $$SELECT cloudconn._token_encrypt('x')$$),
	('private mint',            $$SELECT cloudconn._mint_external_id()$$)
) AS cases(label, stmt);
RESET ROLE;

-- CIs: ConfigurationItem:read sees the subtree, :manage writes it, the
-- provider-owned attribution columns are not writable by anyone but runs
INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES
	(1, 'server', 'root-box'), (3, 'server', 'us-box'), (5, 'server', 'sub-box');
SET ROLE regress_ci_reader;
SELECT name, entity_id, discovered_by_provider, discovered_by_connector
  FROM cloudconn.configuration_items ORDER BY name;
SELECT string_agg(name, ', ' ORDER BY name) AS via_table FROM cloudconn.configuration_item;
SELECT pg_temp.try($$INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES (2, 'server', 'x')$$) AS reader_inserts;
WITH u AS (UPDATE cloudconn.configuration_item SET description = 'x' RETURNING 1)
SELECT count(*) AS reader_updated_rows FROM u;
WITH d AS (DELETE FROM cloudconn.configuration_item RETURNING 1)
SELECT count(*) AS reader_deleted_rows FROM d;
SET ROLE regress_ci_manager;
SELECT label, pg_temp.try(stmt) AS outcome FROM (VALUES
	('insert at 4',               $$INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES (4, 'server', 'team-box')$$),
	('insert at 3 (sibling)',     $$INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name) VALUES (3, 'server', 'x')$$),
	('edit description',          $$UPDATE cloudconn.configuration_item SET description = 'edited' WHERE name = 'web-1'$$),
	('move CI 5 -> 3',            $$UPDATE cloudconn.configuration_item SET entity_id = 3 WHERE name = 'sub-box'$$),
	('forge attribution',         $$UPDATE cloudconn.configuration_item SET source_connector_id = 1 WHERE name = 'team-box'$$),
	('clear missing_since',       $$UPDATE cloudconn.configuration_item SET missing_since = NULL$$),
	('insert as discovered',      $$INSERT INTO cloudconn.configuration_item (entity_id, ci_type, name, external_id, source_connector_id) VALUES (4, 'x', 'x', 'x', 1)$$),
	('application at 2',          $$INSERT INTO cloudconn.application (entity_id, name) VALUES (2, 'Shop')$$),
	('application at 3 (sibling)',$$INSERT INTO cloudconn.application (entity_id, name) VALUES (3, 'Other')$$),
	('link CI to application',    $$INSERT INTO cloudconn.ci_application SELECT ci.id, a.id FROM cloudconn.configuration_item ci, cloudconn.application a WHERE ci.name = 'web-1' AND a.name = 'Shop'$$),
	('delete sibling CI',         $$DELETE FROM cloudconn.configuration_item WHERE name = 'us-box'$$)
) AS cases(label, stmt);
-- (the sibling CI was invisible, so that DELETE matched no row)
SELECT name, entity_id, description FROM cloudconn.configuration_item ORDER BY name;
SET ROLE regress_ci_reader;
SELECT a.name AS application, ci.name AS ci
  FROM cloudconn.ci_application l
  JOIN cloudconn.application a ON a.id = l.application_id
  JOIN cloudconn.configuration_item ci ON ci.id = l.ci_id;
RESET ROLE;
SELECT count(*) AS us_box_still_there FROM cloudconn.configuration_item WHERE name = 'us-box';

-- A hostile role (manage@3) shadows every name the extension uses, then calls
-- it: nothing it defined runs, and it gains no permission.
CREATE SCHEMA hostile AUTHORIZATION regress_hostile;
SET ROLE regress_hostile;
CREATE FUNCTION hostile.has_permission(bigint, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION hostile._has_permission(oid, bigint, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION hostile._is_admin(oid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION hostile.permitted_entities(text) RETURNS bigint[] LANGUAGE sql AS 'SELECT ARRAY[1,2,3,4,5]::bigint[]';
CREATE FUNCTION hostile.unnest(bigint[]) RETURNS SETOF bigint LANGUAGE sql AS 'SELECT generate_series(1, 5)::bigint';
CREATE FUNCTION hostile.pg_has_role(oid, oid, text) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE FUNCTION hostile.pgp_sym_encrypt(text, text, text) RETURNS bytea LANGUAGE plpgsql AS
	$$BEGIN RAISE EXCEPTION 'hijacked: %', $2; END$$;
CREATE FUNCTION hostile.eq(bigint, bigint) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR hostile.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = hostile.eq);
CREATE TABLE hostile.role_assignment (role regrole, entity_id bigint, permission text);
INSERT INTO hostile.role_assignment VALUES ('regress_hostile', 1, 'CloudConnector:manage');
CREATE TEMP TABLE role_assignment (role regrole, entity_id bigint, permission text);
INSERT INTO role_assignment VALUES ('regress_hostile', 1, 'CloudConnector:manage');
SET search_path = hostile, pg_temp, pg_catalog;
SELECT label, pg_temp.try(stmt) AS outcome FROM (VALUES
	('create at 1 (no manage)',   $$SELECT cloudconn.connector_create(1, 'x', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('create DO at 3 (allowed)',  $$SELECT cloudconn.connector_create(3, 'hostile do', 'digitalocean', token => 'dop_v1_hostile')$$)
) AS cases(label, stmt);
SELECT cloudconn.has_permission(1, 'CloudConnector:read') AS has_root_read,
	   cloudconn.permitted_entities('CloudConnector:read') AS permitted;
SELECT string_agg(name, ', ' ORDER BY name) AS hostile_sees FROM cloudconn.connectors;
RESET search_path;
RESET ROLE;
-- the token went through the real pgcrypto, under the real key
SELECT cloudconn._token_matches(id, 'dop_v1_hostile') AS encrypted_properly
  FROM cloudconn.connector WHERE name = 'hostile do';
DROP SCHEMA hostile CASCADE;

-- Every SECURITY DEFINER function of the extension pins its search_path,
-- and none is executable by PUBLIC (they take the caller as an argument, so
-- only the C entry points may call them): both lists must stay empty.
SELECT p.oid::regprocedure AS unpinned_security_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'cloudconn'::regnamespace AND p.prosecdef
   AND NOT coalesce(p.proconfig::text[] @> ARRAY['search_path=pg_catalog, cloudconn, pg_temp'], false);
SELECT p.oid::regprocedure AS security_definer_executable_by_public
  FROM pg_proc p
 WHERE p.pronamespace = 'cloudconn'::regnamespace AND p.prosecdef
   AND has_function_privilege('public', p.oid, 'EXECUTE');
-- and every table of the extension has row-level security enabled and forced
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
  FROM pg_class c
 WHERE c.relnamespace = 'cloudconn'::regnamespace AND c.relkind = 'r'
 ORDER BY c.relname;
