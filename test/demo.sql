-- The newcomer's tour (run by test/demo.sh in a throwaway cluster): an
-- entity tree, grants, an AWS, a DigitalOcean and an Azure connector created
-- by an application role, the CloudFormation template applied to the
-- simulated account, connector tests, discovery runs, and what the views
-- show.
\set ON_ERROR_STOP on
\pset footer off
CREATE EXTENSION cloudconn CASCADE;

\echo '--- an entity tree: Acme, with two business units'
INSERT INTO cloudconn.entity (id, parent_id, name) VALUES
	(1, NULL, 'Acme'), (2, 1, 'Acme Europe'), (3, 1, 'Acme US');
SELECT id, parent_id, name FROM cloudconn.entity ORDER BY id;

\echo '--- roles of the application, one per user, granted on entities'
CREATE ROLE demo_eu_admin;
CREATE ROLE demo_auditor;
DO $$
BEGIN
	PERFORM cloudconn.grant_permission('demo_eu_admin', 2, 'CloudConnector:manage');
	PERFORM cloudconn.grant_permission('demo_eu_admin', 2, 'ConfigurationItem:manage');
	PERFORM cloudconn.grant_permission('demo_auditor', 1, 'CloudConnector:read');
END;
$$;
SELECT role, entity_id, permission FROM cloudconn.role_assignment ORDER BY 1, 2, 3;

\echo '--- the wizard picker, and what each provider discovers'
SELECT * FROM cloudconn.providers;
SELECT * FROM cloudconn.resource_types ORDER BY provider, ci_type;

-- the platform's discovery role, caller credentials and (here) the
-- simulator's endpoints are set once by the operator, in postgresql.conf
SELECT current_setting('cloudconn.aws_discovery_role_arn') AS platform_discovery_role;

\echo '--- as the EU admin (the application does SET LOCAL ROLE per request)'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
SELECT cloudconn.connector_create(2, 'Production AWS', 'aws',
	settings => '{"account_id": "123456789012", "regions": ["eu-west-1", "eu-central-1"]}') AS aws_connector \gset
SELECT cloudconn.connector_create(2, 'DigitalOcean', 'digitalocean', 'manual', '{}',
	:'do_token') AS do_connector \gset
-- a service principal made with az ad sp create-for-rbac --role Reader: its
-- tenant and application ids, and its client secret as the stored secret
SELECT cloudconn.connector_create(2, 'Azure estate', 'azure', 'manual',
	'{"tenant_id": "8b1f0c2e-5a3d-4e6f-9c7b-0a1b2c3d4e5f", "client_id": "3c9e7a51-6d2b-4f80-a1c4-7e5d9b2f6a03"}',
	:'azure_secret') AS azure_connector \gset
COMMIT;

\echo '--- the CloudFormation template the customer applies (external id pre-filled)'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
\set QUIET on
\pset format unaligned
\pset tuples_only on
SELECT cloudconn.aws_cloudformation_template(id) AS template
  FROM cloudconn.connectors WHERE provider = 'aws';
\pset format aligned
\pset tuples_only off
\set QUIET off
COMMIT;

\echo '--- the connectors view: has_token, never the token'
BEGIN;
SET LOCAL ROLE demo_auditor;
SELECT id, entity_id, name, provider, schedule, settings, has_token FROM cloudconn.connectors ORDER BY id;
\echo '--- the auditor may read but not manage'
SELECT cloudconn.has_permission(2, 'CloudConnector:read') AS can_read,
	   cloudconn.has_permission(2, 'CloudConnector:manage') AS can_manage;
COMMIT;

\echo '--- what is stored: ciphertext only'
SELECT id, provider, substr(token::text, 1, 34) || '...' AS stored_token, external_id
  FROM cloudconn.connector ORDER BY id;

\echo '--- before the customer applied the template, the AWS test says what to check'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
SELECT jsonb_pretty(cloudconn.connector_test(:aws_connector)) AS connector_test;
COMMIT;

\echo '--- or, least privilege: one inline policy with exactly what the enabled types need'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
SELECT jsonb_pretty(cloudconn.aws_cloudformation_template(:aws_connector, least_privilege => true)::jsonb
	#> '{Resources,CustomerDiscoveryRole,Properties,Policies}') AS least_privilege_policy;
COMMIT;

\echo '--- the customer applies the least-privilege template in account 123456789012 (here: the simulator)'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
\set QUIET on
\pset format unaligned
\pset tuples_only on
\o :template_file
SELECT cloudconn.aws_cloudformation_template(:aws_connector, least_privilege => true);
\o
\pset format aligned
\pset tuples_only off
\set QUIET off
COMMIT;
\! $DEMO_APPLY_TEMPLATE; echo

\echo '--- now the chain holds: platform caller -> discovery role -> customer role (with the external id),'
\echo '    and the role may list every enabled resource type'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
SELECT jsonb_pretty(cloudconn.connector_test(:aws_connector)) AS connector_test;
\echo '--- an AWS run: instances, VPCs, DB instances and functions in both regions, buckets account-wide,'
\echo '    several listings at once, every request signed with SigV4 for its service'
SELECT cloudconn.connector_run(:aws_connector) AS run_id;
COMMIT;

\echo '--- the DigitalOcean connector, tested end to end against the simulator: the account,'
\echo '    then whether the token may list each of the six resource types'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
SELECT jsonb_pretty(cloudconn.connector_test(:do_connector)) AS connector_test;
COMMIT;

\echo '--- a run: droplets, volumes, load balancers, Kubernetes clusters, managed databases and'
\echo '    reserved IPs discovered in a background worker, merged into the CMDB'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
SELECT cloudconn.connector_run(:do_connector) AS run_id;
COMMIT;

\echo '--- and again: an unchanged account is a delta of nothing'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
SELECT cloudconn.connector_run(:do_connector) AS run_id;
COMMIT;

\echo '--- the Azure connector: a token for the service principal, then the subscriptions it can read'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
SELECT jsonb_pretty(cloudconn.connector_test(:azure_connector)) AS connector_test;
\echo '--- an Azure run: per subscription, VM statuses, NICs and public IPs, then the VMs, joined in the worker'
SELECT cloudconn.connector_run(:azure_connector) AS run_id;
COMMIT;

\echo '--- the run history'
BEGIN;
SET LOCAL ROLE demo_auditor;
SELECT id, connector_name, trigger, status, discovered, created, updated, unchanged, error_count,
	   pages_fetched, finished_at - started_at AS took
  FROM cloudconn.runs ORDER BY id;
\echo '--- the counts of each run, per resource type'
SELECT r.id AS run_id, r.connector_name, t.key AS ci_type, (t.value->>'discovered')::int AS discovered,
	   (t.value->>'created')::int AS created, (t.value->>'updated')::int AS updated,
	   (t.value->>'unchanged')::int AS unchanged, (t.value->>'errors')::int AS errors
  FROM cloudconn.runs r, jsonb_each(r.counts_by_type) t ORDER BY r.id, t.key;
COMMIT;

\echo '--- some of the discovered CIs (as the EU admin, who may read CIs)'
BEGIN;
SET LOCAL ROLE demo_eu_admin;
SELECT discovered_by_provider AS provider, ci_type, count(*) AS configuration_items
  FROM cloudconn.configuration_items GROUP BY 1, 2 ORDER BY 1, 2;
SELECT name, ip_address, os_info, attributes->>'region' AS region, attributes->>'state' AS state,
	   attributes->>'instance_type' AS type, external_id
  FROM cloudconn.configuration_items WHERE ci_type = 'aws_ec2_instance' ORDER BY id LIMIT 4;
SELECT ci_type, name, hostname, os_info, discovery_scope AS scope, external_id
  FROM (SELECT *, row_number() OVER (PARTITION BY ci_type ORDER BY id) AS n
		  FROM cloudconn.configuration_items
		 WHERE discovered_by_provider = 'aws' AND ci_type <> 'aws_ec2_instance') c
 WHERE n <= 2 ORDER BY ci_type, id;
SELECT name, ip_address, os_info, attributes->>'region' AS region, attributes->>'size' AS size,
	   external_id, discovered_by_connector
  FROM cloudconn.configuration_items WHERE ci_type = 'digitalocean_droplet' ORDER BY id LIMIT 6;
-- the other DigitalOcean types: a database's credentials are never kept
SELECT ci_type, name, hostname, ip_address, os_info, attributes->>'region' AS region, external_id
  FROM (SELECT *, row_number() OVER (PARTITION BY ci_type ORDER BY id) AS n
		  FROM cloudconn.configuration_items
		 WHERE discovered_by_provider = 'digitalocean' AND ci_type <> 'digitalocean_droplet') c
 WHERE n <= 2 ORDER BY ci_type, id;
SELECT name, ip_address, attributes->>'power_state' AS power_state, attributes->>'location' AS location,
	   attributes->>'size' AS size, discovery_scope AS subscription, os_info
  FROM cloudconn.configuration_items WHERE discovered_by_provider = 'azure' ORDER BY id LIMIT 6;
COMMIT;
