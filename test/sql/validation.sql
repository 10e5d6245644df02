-- Every bad input is refused with a clear message and its SQLSTATE, and
-- leaves the database exactly as it was.
\set SHOW_CONTEXT never

-- runs a statement, returning "ok" or "SQLSTATE: message"
CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

-- runs a statement that should succeed, and undoes it
CREATE FUNCTION pg_temp.accepted(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RAISE EXCEPTION USING ERRCODE = 'UNDO0';
EXCEPTION WHEN SQLSTATE 'UNDO0' THEN
	RETURN 'accepted (and undone)';
WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

-- a fingerprint of every table a call could change
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
	SELECT md5(concat_ws('|',
		(SELECT string_agg(k::text, ',' ORDER BY id) FROM cloudconn.connector k),
		(SELECT string_agg(r::text, ',' ORDER BY role::text, entity_id, permission) FROM cloudconn.role_assignment r),
		(SELECT string_agg(e::text, ',' ORDER BY id) FROM cloudconn.entity e),
		(SELECT string_agg(c::text, ',' ORDER BY id) FROM cloudconn.configuration_item c)))
$$;

SELECT pg_temp.state() AS state_before \gset
SELECT id AS aws_id FROM cloudconn.connector WHERE provider = 'aws' AND deleted_at IS NULL ORDER BY id LIMIT 1 \gset
SELECT id AS do_id FROM cloudconn.connector WHERE provider = 'digitalocean' AND deleted_at IS NULL ORDER BY id LIMIT 1 \gset
SET ROLE regress_eu_manager;

SELECT label, pg_temp.try(stmt) AS outcome FROM (VALUES
	('account id, 11 digits',      $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "12345678901"}')$$),
	('account id, 13 digits',      $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "1234567890123"}')$$),
	('account id, letters',        $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "12345678901x"}')$$),
	('account id, a number',       $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": 123456789012}')$$),
	('account id, trailing space', $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012 "}')$$),
	('account id, missing',        $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{}')$$),
	('region, upper case',         $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "regions": ["EU-WEST-1"]}')$$),
	('region, no number',          $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "regions": ["eu-west"]}')$$),
	('region, DO slug on AWS',     $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "regions": ["ams3"]}')$$),
	('regions, not an array',      $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "regions": "eu-west-1"}')$$),
	('regions, a number inside',   $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "regions": [1]}')$$),
	('regions, duplicate',         $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "regions": ["eu-west-1", "eu-west-1"]}')$$),
	('AWS, unknown setting',       $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "role_arn": "x"}')$$),
	('AWS, settings not object',   $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '["x"]')$$),
	('AWS, given a token',         $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012"}', token => 'dop_v1_x')$$),
	('DO region, AWS form',        $$SELECT cloudconn.connector_create(2, 'a', 'digitalocean', settings => '{"region": "eu-west-1"}', token => 't')$$),
	('DO region, upper case',      $$SELECT cloudconn.connector_create(2, 'a', 'digitalocean', settings => '{"region": "AMS3"}', token => 't')$$),
	('DO region, not a string',    $$SELECT cloudconn.connector_create(2, 'a', 'digitalocean', settings => '{"region": 3}', token => 't')$$),
	('DO, unknown setting',        $$SELECT cloudconn.connector_create(2, 'a', 'digitalocean', settings => '{"regions": ["ams3"]}', token => 't')$$),
	('DO, no token',               $$SELECT cloudconn.connector_create(2, 'a', 'digitalocean')$$),
	('DO, empty token',            $$SELECT cloudconn.connector_create(2, 'a', 'digitalocean', token => '')$$),
	('DO, token with newline',     $$SELECT cloudconn.connector_create(2, 'a', 'digitalocean', token => E'dop_v1_abc\n')$$),
	('DO, token with NUL-ish ctl', $$SELECT cloudconn.connector_create(2, 'a', 'digitalocean', token => E'dop\x01v1')$$),
	('DO, token too long',         $$SELECT cloudconn.connector_create(2, 'a', 'digitalocean', token => repeat('a', 1025))$$),
	('schedule, weekly',           $$SELECT cloudconn.connector_create(2, 'a', 'aws', 'weekly', '{"account_id": "123456789012"}')$$),
	('schedule, null',             $$SELECT cloudconn.connector_create(2, 'a', 'aws', NULL, '{"account_id": "123456789012"}')$$),
	('name, empty',                $$SELECT cloudconn.connector_create(2, '', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('name, blank',                $$SELECT cloudconn.connector_create(2, '   ', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('name, null',                 $$SELECT cloudconn.connector_create(2, NULL, 'aws', settings => '{"account_id": "123456789012"}')$$),
	('name, 201 characters',       $$SELECT cloudconn.connector_create(2, repeat('n', 201), 'aws', settings => '{"account_id": "123456789012"}')$$),
	('name, control character',    $$SELECT cloudconn.connector_create(2, E'a\tb', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('name, taken in entity',      $$SELECT cloudconn.connector_create(2, 'Prod AWS', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('provider, unknown',          $$SELECT cloudconn.connector_create(2, 'a', 'gcp')$$),
	('provider, null',             $$SELECT cloudconn.connector_create(2, 'a', NULL)$$),
	('entity, null',               $$SELECT cloudconn.connector_create(NULL, 'a', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('entity, not permitted',      $$SELECT cloudconn.connector_create(3, 'a', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('entity, does not exist',     $$SELECT cloudconn.connector_create(999, 'a', 'aws', settings => '{"account_id": "123456789012"}')$$)
) AS cases(label, stmt);

-- Azure: tenant and client ids are GUIDs, subscription_ids an array of distinct
-- GUIDs (either case), and the client secret is the stored secret
\set az_ids '"tenant_id": "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f", "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"'
SELECT label, pg_temp.try(replace(stmt, '{ids}', :'az_ids')) AS outcome FROM (VALUES
	('Azure, no settings',         $$SELECT cloudconn.connector_create(2, 'a', 'azure', token => 's')$$),
	('tenant, a domain name',      $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{"tenant_id": "contoso.onmicrosoft.com", "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"}', token => 's')$$),
	('tenant, 35 characters',      $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{"tenant_id": "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5", "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"}', token => 's')$$),
	('tenant, not hexadecimal',    $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{"tenant_id": "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5g", "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"}', token => 's')$$),
	('tenant, a number',           $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{"tenant_id": 8, "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"}', token => 's')$$),
	('client, missing',            $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{"tenant_id": "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f"}', token => 's')$$),
	('client, in braces',          $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{"tenant_id": "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f", "client_id": "{3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03}"}', token => 's')$$),
	('subscriptions, a string',    $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{{ids}, "subscription_ids": "0a1b2c3d-1111-4aaa-8bbb-000000000001"}', token => 's')$$),
	('subscription, a name',       $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{{ids}, "subscription_ids": ["Production"]}', token => 's')$$),
	('subscription, a number',     $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{{ids}, "subscription_ids": [1]}', token => 's')$$),
	('subscription, twice',        $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{{ids}, "subscription_ids": ["0a1b2c3d-1111-4aaa-8bbb-00000000000a", "0A1B2C3D-1111-4AAA-8BBB-00000000000A"]}', token => 's')$$),
	('subscriptions, 1001',        $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => ('{{ids}}')::jsonb || jsonb_build_object('subscription_ids', (SELECT jsonb_agg(format('0a1b2c3d-1111-4aaa-8bbb-%s', lpad(i::text, 12, '0'))) FROM generate_series(1, 1001) i)), token => 's')$$),
	('Azure, unknown setting',     $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{{ids}, "subscription": "x"}', token => 's')$$),
	('Azure, AWS''s type',         $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{{ids}, "resource_types": ["aws_ec2_instance"]}', token => 's')$$),
	('Azure, no client secret',    $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{{ids}}')$$),
	('Azure, empty client secret', $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{{ids}}', token => '')$$),
	('client secret, a newline',   $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{{ids}}', token => E'Abc~def.ghi\n')$$),
	('client secret, 1025 bytes',  $$SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{{ids}}', token => repeat('s', 1025))$$)
) AS cases(label, stmt);
-- {aws} and {do} stand for an AWS and a DigitalOcean connector of entity 2's subtree
SELECT label, pg_temp.try(replace(replace(stmt, '{aws}', :'aws_id'), '{do}', :'do_id')) AS outcome FROM (VALUES
	('update, no such connector',  $$SELECT cloudconn.connector_update(999999, name => 'x')$$),
	('update, null id',            $$SELECT cloudconn.connector_update(NULL, name => 'x')$$),
	('update, empty name',         $$SELECT cloudconn.connector_update({aws}, name => '')$$),
	('update, bad schedule',       $$SELECT cloudconn.connector_update({aws}, schedule => 'hourly')$$),
	('update, bad settings',       $$SELECT cloudconn.connector_update({aws}, settings => '{"account_id": "1"}')$$),
	('update, unknown key',        $$SELECT cloudconn.connector_update({aws}, settings => '{"account_id": "123456789012", "x": 1}')$$),
	('update, move to no manage',  $$SELECT cloudconn.connector_update({aws}, entity_id => 3)$$),
	('set token, on AWS',          $$SELECT cloudconn.connector_set_token({aws}, 'dop_v1_x')$$),
	('set token, empty',           $$SELECT cloudconn.connector_set_token({do}, '')$$),
	('set token, null',            $$SELECT cloudconn.connector_set_token({do}, NULL)$$),
	('set token, control char',    $$SELECT cloudconn.connector_set_token({do}, E'abc\r')$$),
	('set token, no connector',    $$SELECT cloudconn.connector_set_token(999999, 'dop_v1_x')$$),
	('delete, no such connector',  $$SELECT cloudconn.connector_delete(999999)$$),
	('template, DO connector',     $$SELECT cloudconn.aws_cloudformation_template({do})$$),
	('grant, unknown permission',  $$SELECT cloudconn.grant_permission('regress_outsider', 2, 'CloudConnector:write')$$),
	('grant, null permission',     $$SELECT cloudconn.grant_permission('regress_outsider', 2, NULL)$$),
	('grant, null role',           $$SELECT cloudconn.grant_permission(NULL, 2, 'CloudConnector:read')$$),
	('grant, role OID unused',     $$SELECT cloudconn.grant_permission(4000000000::oid::regrole, 2, 'CloudConnector:read')$$),
	('grant, other family',        $$SELECT cloudconn.grant_permission('regress_outsider', 2, 'ConfigurationItem:read')$$),
	('grant, outside scope',       $$SELECT cloudconn.grant_permission('regress_outsider', 3, 'CloudConnector:read')$$),
	('revoke, unknown permission', $$SELECT cloudconn.revoke_permission('regress_outsider', 2, 'Everything')$$),
	('has_permission, unknown',    $$SELECT cloudconn.has_permission(2, 'CloudConnector:own')$$)
) AS cases(label, stmt);

-- settings.resource_types: a non-empty array of distinct resource types of
-- the connector's own provider (cloudconn.resource_types lists them)
SELECT label, pg_temp.try(replace(stmt, '{aws}', :'aws_id')) AS outcome FROM (VALUES
	('types, unknown',             $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "resource_types": ["aws_ec2"]}')$$),
	('types, another provider''s', $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "resource_types": ["digitalocean_droplet"]}')$$),
	('types, duplicate',           $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "resource_types": ["aws_ec2_instance", "aws_ec2_instance"]}')$$),
	('types, empty',               $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "resource_types": []}')$$),
	('types, not an array',        $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "resource_types": "aws_ec2_instance"}')$$),
	('types, not a string',        $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "resource_types": [{"x": 1}]}')$$),
	('types, DO''s on DO, unknown',$$SELECT cloudconn.connector_create(2, 'a', 'digitalocean', settings => '{"resource_types": ["aws_ec2_instance"]}', token => 't')$$),
	('types, update, foreign',     $$SELECT cloudconn.connector_update({aws}, settings => '{"account_id": "123456789012", "resource_types": ["digitalocean_droplet"]}')$$),
	('types, a long unknown one',  $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => jsonb_build_object('account_id', '123456789012', 'resource_types', jsonb_build_array(repeat('x', 100000))))$$)
) AS cases(label, stmt);

-- what a user is given back of a value is bounded (64 characters and the length)
SELECT label, pg_temp.try(replace(replace(stmt, '{aws}', :'aws_id'), '{do}', :'do_id')) AS outcome FROM (VALUES
	('provider, 100000 characters', $$SELECT cloudconn.connector_create(2, 'a', repeat('p', 100000))$$),
	('unknown settings, many',      $$SELECT cloudconn.connector_create(2, 'a', 'aws', settings => (SELECT jsonb_object_agg('key_' || i, i) || '{"account_id": "123456789012"}' FROM generate_series(1, 1000) i))$$),
	('unknown setting, long key',   $$SELECT cloudconn.connector_create(2, 'a', 'digitalocean', settings => jsonb_build_object(repeat('k', 100000), 1), token => 't')$$),
	('schedule, 100000 characters', $$SELECT cloudconn.connector_create(2, 'a', 'aws', repeat('s', 100000), '{"account_id": "123456789012"}')$$),
	('update, schedule, 100000',    $$SELECT cloudconn.connector_update({aws}, schedule => repeat('s', 100000))$$),
	('grant, permission, 100000',   $$SELECT cloudconn.grant_permission('regress_outsider', 2, repeat('P', 100000))$$),
	('has_permission, 100000',      $$SELECT cloudconn.has_permission(2, repeat('P', 100000))$$),
	('permitted_entities, 100000',  $$SELECT cloudconn.permitted_entities(repeat('P', 100000))$$),
	-- (a name is at most 200 characters, and is quoted as any other value;
	-- each statement takes a name, then fails on it, which undoes both)
	('name taken, 200 characters',  $$SELECT cloudconn.connector_update({aws}, name => repeat('n', 200)),
										cloudconn.connector_create((SELECT entity_id FROM cloudconn.connectors WHERE id = {aws}), repeat('n', 200), 'aws', settings => '{"account_id": "123456789012"}')$$),
	('move onto a taken name',      $$SELECT cloudconn.connector_update({aws}, name => repeat('m', 200)),
										cloudconn.connector_update({do}, name => repeat('m', 200), entity_id => (SELECT entity_id FROM cloudconn.connectors WHERE id = {aws}))$$)
) AS cases(label, stmt);

-- a role without the permission is refused before anything it sent is
-- looked at: a megabyte of provider name or schedule costs it a short
-- 42501; a megabyte of permission name (which says which permission a
-- grant needs, so it is checked first) a short 22023
SET ROLE regress_outsider;
SELECT pg_temp.try($$SELECT cloudconn.connector_create(2, 'a', repeat('p', 1000000))$$) AS outsider_sends_a_megabyte;
SELECT label, pg_temp.try(replace(stmt, '{aws}', :'aws_id')) AS outcome FROM (VALUES
	('schedule, create',           $$SELECT cloudconn.connector_create(2, 'a', 'aws', repeat('s', 1000000), '{"account_id": "123456789012"}')$$),
	('schedule, update',           $$SELECT cloudconn.connector_update({aws}, schedule => repeat('s', 1000000))$$),
	('permission, grant',          $$SELECT cloudconn.grant_permission('regress_outsider', 2, repeat('P', 1000000))$$),
	('permission, revoke',         $$SELECT cloudconn.revoke_permission('regress_outsider', 2, repeat('P', 1000000))$$),
	('permission, has_permission', $$SELECT cloudconn.has_permission(2, repeat('P', 1000000))$$),
	('permission, permitted',      $$SELECT cloudconn.permitted_entities(repeat('P', 1000000))$$),
	('permission, in a query',     $$SELECT count(*) FROM cloudconn.entity WHERE cloudconn.entity_permitted(id, repeat('P', 1000000))$$)
) AS cases(label, stmt);
SET ROLE regress_eu_manager;

-- names that would display as another, or break the line they are shown
-- on, are refused: bidirectional formatting characters (U+202A to U+202E,
-- U+2066 to U+2069) and line and paragraph separators (U+2028, U+2029)
SELECT label, pg_temp.try(replace(stmt, '{aws}', :'aws_id')) AS outcome FROM (VALUES
	('name, U+202E',               $$SELECT cloudconn.connector_create(2, E'invoice\u202Efdp.exe', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('name, U+202A',               $$SELECT cloudconn.connector_create(2, E'a\u202Ab', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('name, U+2066',               $$SELECT cloudconn.connector_create(2, E'a\u2066b', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('name, U+2069',               $$SELECT cloudconn.connector_create(2, E'a\u2069b', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('name, U+2028',               $$SELECT cloudconn.connector_create(2, E'a\u2028b', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('name, U+2029',               $$SELECT cloudconn.connector_create(2, E'a\u2029b', 'aws', settings => '{"account_id": "123456789012"}')$$),
	('update, name U+202E',        $$SELECT cloudconn.connector_update({aws}, name => E'prod\u202Ed')$$)
) AS cases(label, stmt);
-- ...while their neighbours are fine (a right-to-left script included)
SELECT pg_temp.accepted(format($$SELECT cloudconn.connector_update(%s, name => E'a\u2027b \u202Fc \u2065d \u206Ae \u05D0\u05D1')$$, :'aws_id')) AS neighbours;
-- so are the other names users write: applications, business processes
-- and entities (their table checks say so, with 23514 as for their length)
SET ROLE regress_ci_manager;
SELECT label, pg_temp.try(stmt) AS outcome FROM (VALUES
	('application, U+202E',        $$INSERT INTO cloudconn.application (entity_id, name) VALUES (2, E'shop\u202Epot')$$),
	('business process, U+2029',   $$INSERT INTO cloudconn.business_process (entity_id, name) VALUES (2, E'billing\u2029x')$$)
) AS cases(label, stmt);
RESET ROLE;
SELECT pg_temp.try($$INSERT INTO cloudconn.entity (parent_id, name) VALUES (1, E'team\u202Dx')$$) AS entity_u202d;
SET ROLE regress_eu_manager;

RESET ROLE;
-- nothing at all was changed by any of the failed calls
SELECT pg_temp.state() = :'state_before' AS unchanged;

-- what a user is told, in full, for typical mistakes
SET ROLE regress_eu_manager;
SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "12345"}');
SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{"tenant_id": "contoso.onmicrosoft.com", "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"}', token => 's');
SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{"tenant_id": "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f", "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03", "subscription_ids": ["Production"]}', token => 's');
SELECT cloudconn.connector_create(2, 'a', 'azure', settings => '{"tenant_id": "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f", "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"}');
SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "role_arn": "x"}');
SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "resource_types": ["digitalocean_droplet"]}');
SELECT cloudconn.connector_create(2, 'a', 'aws', settings => '{"account_id": "123456789012", "resource_types": []}');
SELECT cloudconn.connector_create(2, 'a', 'gcp');
RESET ROLE;
