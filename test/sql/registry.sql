-- The provider registry as SQL sees it: the providers and resource_types
-- views come from the C registry, and a connector's settings choose which
-- of its provider's resource types its runs list.
\set SHOW_CONTEXT never

-- every resource type belongs to a provider of the picker, and every
-- provider's types are in the view
SELECT p.provider, p.status, p.resource_types,
	   array(SELECT t.ci_type FROM cloudconn.resource_types t WHERE t.provider = p.provider ORDER BY t.ci_type) AS listed
  FROM cloudconn.providers p ORDER BY p.provider;
SELECT count(*) AS types_of_unknown_providers
  FROM cloudconn.resource_types t WHERE t.provider NOT IN (SELECT provider FROM cloudconn.providers);
-- every role may read both views
SET ROLE regress_outsider;
SELECT count(*) > 0 AS outsider_reads_types FROM cloudconn.resource_types;
RESET ROLE;

-- a connector naming its resource types, and one leaving them to the defaults
SET ROLE regress_eu_manager;
SELECT cloudconn.connector_create(2, 'typed', 'aws', 'manual',
	'{"account_id": "123456789012", "resource_types": ["aws_ec2_instance"]}') AS typed_c \gset
SELECT settings FROM cloudconn.connectors WHERE id = :typed_c;
-- settings are replaced whole: without resource_types, the defaults again
SELECT cloudconn.connector_update(:typed_c, settings => '{"account_id": "123456789012"}');
SELECT settings FROM cloudconn.connectors WHERE id = :typed_c;
SELECT cloudconn.connector_delete(:typed_c);
RESET ROLE;

-- the connector table's check asks the registry: a provider it does not
-- know, an AWS connector without its external id, a stored secret for a
-- provider that keeps none
\set VERBOSITY terse
INSERT INTO cloudconn.connector (entity_id, name, provider) VALUES (1, 'x', 'gcp');
INSERT INTO cloudconn.connector (entity_id, name, provider) VALUES (1, 'x', 'aws');
INSERT INTO cloudconn.connector (entity_id, name, provider, external_id, token)
VALUES (1, 'x', 'aws', 'ext-x', '\x00');
\set VERBOSITY default

-- Azure connectors are taken with their ids in capitals, with subscription_ids
-- empty (every enabled subscription) or a thousand of them, and a client
-- secret of 1024 bytes (what is refused is in validation.sql); the client
-- secret is never shown, only that there is one
SET ROLE regress_eu_manager;
BEGIN;
SELECT cloudconn.connector_create(2, 'azure capitals', 'azure', 'manual',
	'{"tenant_id": "8B1F0C2E-5A3D-4E6F-9C7B-0A1B2C3D4E5F", "client_id": "3C9E7A51-6D2B-4F80-A1C4-7E5D9B2F6A03"}', 's') > 0 AS created;
SELECT cloudconn.connector_create(2, 'azure every subscription', 'azure', 'manual',
	'{"tenant_id": "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f", "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03", "subscription_ids": []}', 's') > 0 AS created;
SELECT cloudconn.connector_create(2, 'azure thousand', 'azure', 'manual',
	'{"tenant_id": "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f", "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03", "resource_types": ["azure_vm"]}'::jsonb
	  || jsonb_build_object('subscription_ids', (SELECT jsonb_agg(format('0a1b2c3d-1111-4aaa-8bbb-%s', lpad(i::text, 12, '0')))
											   FROM generate_series(1, 1000) i)),
	repeat('s', 1024)) > 0 AS created;
SELECT name, has_token, settings->>'tenant_id' AS tenant_id, jsonb_array_length(settings->'subscription_ids') AS subscriptions,
	   settings->'resource_types' AS resource_types
  FROM cloudconn.connectors WHERE provider = 'azure' ORDER BY name;
ROLLBACK;
RESET ROLE;
