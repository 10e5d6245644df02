-- The connector lifecycle on its happy paths, as a user holding
-- CloudConnector:manage on entity 2 (eu).
\set SHOW_CONTEXT never

SET ROLE regress_eu_manager;

-- an AWS connector: no token, an external id minted for it
SELECT cloudconn.connector_create(2, 'Production AWS', 'aws',
	settings => '{"account_id": "123456789012", "regions": ["eu-west-1", "us-gov-west-1"]}') AS aws_id \gset
-- a DigitalOcean connector: a token, no external id; default schedule is daily
SELECT cloudconn.connector_create(4, 'Droplets', 'digitalocean', settings => '{"region": "ams3"}',
	token => 'dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef') AS do_id \gset
-- settings may be omitted: every region
SELECT cloudconn.connector_create(2, 'All regions', 'aws', 'manual', '{"account_id": "210987654321"}') AS aws2_id \gset

SELECT id = :aws_id AS is_aws, entity_id, name, provider, schedule, settings, has_token
  FROM cloudconn.connectors ORDER BY id;

RESET ROLE;
-- external ids: 40 characters of AWS's alphabet, distinct per connector; DigitalOcean has none
SELECT provider, external_id ~ '^[A-Za-z0-9]{40}$' AS well_formed, token IS NOT NULL AS has_ciphertext
  FROM cloudconn.connector ORDER BY id;
SELECT count(DISTINCT external_id) FROM cloudconn.connector WHERE provider = 'aws';
CREATE TEMP TABLE ext_before AS SELECT id, external_id FROM cloudconn.connector;
GRANT SELECT ON ext_before TO PUBLIC;
SET ROLE regress_eu_manager;

-- update: rename, reschedule, replace settings, each leaving the rest alone
SELECT cloudconn.connector_update(:aws_id, name => 'Prod AWS');
SELECT cloudconn.connector_update(:aws_id, schedule => 'manual');
SELECT cloudconn.connector_update(:aws_id, settings => '{"account_id": "123456789012"}');
SELECT cloudconn.connector_update(:do_id, settings => '{}');
-- move within the manager's scope (eu -> eu-team-sub)
SELECT cloudconn.connector_update(:aws2_id, entity_id => 5);
SELECT id = :aws_id AS is_aws, entity_id, name, schedule, settings, updated_at > created_at AS touched
  FROM cloudconn.connectors ORDER BY id;

RESET ROLE;
-- the external id never changes on update
SELECT count(*) AS external_ids_changed
  FROM cloudconn.connector k JOIN ext_before b USING (id)
 WHERE k.external_id IS DISTINCT FROM b.external_id;

-- rotation: the ciphertext is replaced and decrypts to the new token only
CREATE TEMP TABLE token_before AS SELECT token FROM cloudconn.connector WHERE id = :do_id;
SET ROLE regress_eu_manager;
SELECT cloudconn.connector_set_token(:do_id, 'dop_v1_rotated');
RESET ROLE;
SELECT k.token <> b.token AS ciphertext_replaced,
	   cloudconn._token_matches(k.id, 'dop_v1_rotated') AS new_token,
	   cloudconn._token_matches(k.id, 'dop_v1_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef') AS old_token
  FROM cloudconn.connector k, token_before b WHERE k.id = :do_id;

-- has_permission for the current role
SET ROLE regress_eu_manager;
SELECT cloudconn.has_permission(2, 'CloudConnector:manage') AS eu_manage,
	   cloudconn.has_permission(5, 'CloudConnector:read') AS descendant_read,
	   cloudconn.has_permission(1, 'CloudConnector:read') AS ancestor_read,
	   cloudconn.has_permission(3, 'CloudConnector:read') AS sibling_read,
	   cloudconn.has_permission(2, 'ConfigurationItem:read') AS other_family,
	   cloudconn.has_permission(999, 'CloudConnector:read') AS no_such_entity;

-- delete: the CIs it discovered stay, with their attribution; its runs stay readable
RESET ROLE;
INSERT INTO cloudconn.configuration_item
	(entity_id, ci_type, name, external_id, source_connector_id, first_discovered_at)
VALUES (4, 'digitalocean_droplet', 'web-1', 'do:droplet:1001', :do_id, now());
INSERT INTO cloudconn.run (connector_id, trigger, status, finished_at, discovered, created)
VALUES (:do_id, 'manual', 'succeeded', now(), 1, 1);
SET ROLE regress_eu_manager;
SELECT cloudconn.connector_delete(:do_id);
SELECT count(*) AS still_listed FROM cloudconn.connectors WHERE id = :do_id;
SELECT connector_name, provider, connector_deleted, status, discovered, created
  FROM cloudconn.runs WHERE connector_id = :do_id;
RESET ROLE;
SELECT name, external_id, discovered_by_provider, discovered_by_connector
  FROM cloudconn.configuration_items WHERE external_id = 'do:droplet:1001';
-- the deleted connector's token is wiped; its name may be reused
SELECT token IS NULL AS token_wiped, deleted_at IS NOT NULL AS deleted FROM cloudconn.connector WHERE id = :do_id;
SET ROLE regress_eu_manager;
SELECT cloudconn.connector_create(4, 'Droplets', 'digitalocean', token => 'dop_v1_again') > :do_id AS recreated;
-- a deleted connector cannot be deleted, updated or given a token again
SELECT cloudconn.connector_update(:do_id, name => 'x');
SELECT cloudconn.connector_delete(:do_id);
SELECT cloudconn.connector_set_token(:do_id, 'dop_v1_x');
RESET ROLE;
