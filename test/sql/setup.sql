-- Installs cloudconn and builds the fixtures the other tests share: an entity
-- tree, and roles standing for users and groups of an application.
--
--   1 root
--   ├── 2 eu
--   │   └── 4 eu-team
--   │       └── 5 eu-team-sub
--   └── 3 us
\set SHOW_CONTEXT never
SET client_min_messages = warning;
DROP ROLE IF EXISTS regress_admin_group, regress_root_reader, regress_eu_manager, regress_eu_reader,
	regress_us_manager, regress_member, regress_outsider, regress_ci_reader, regress_ci_manager,
	regress_both_manager, regress_hostile;
RESET client_min_messages;

CREATE EXTENSION cloudconn CASCADE;

-- the extension lives in its fixed schema and pulled in pgcrypto
SELECT extname, extnamespace::regnamespace, extrelocatable FROM pg_extension
 WHERE extname IN ('cloudconn', 'pgcrypto') ORDER BY extname;

INSERT INTO cloudconn.entity (id, parent_id, name) VALUES
	(1, NULL, 'root'), (2, 1, 'eu'), (3, 1, 'us'), (4, 2, 'eu-team'), (5, 4, 'eu-team-sub');
SELECT setval(pg_get_serial_sequence('cloudconn.entity', 'id'), 100);

-- cycles are rejected: an entity under itself, and a root under its own descendant
UPDATE cloudconn.entity SET parent_id = 2 WHERE id = 2;
UPDATE cloudconn.entity SET parent_id = 5 WHERE id = 1;
UPDATE cloudconn.entity SET parent_id = 4 WHERE id = 2;
-- ...while a legal move is fine (and is undone)
UPDATE cloudconn.entity SET parent_id = 3 WHERE id = 4;
UPDATE cloudconn.entity SET parent_id = 2 WHERE id = 4;
SELECT id, parent_id, name FROM cloudconn.entity ORDER BY id;

CREATE ROLE regress_root_reader;
CREATE ROLE regress_eu_manager;
CREATE ROLE regress_eu_reader;
CREATE ROLE regress_us_manager;
CREATE ROLE regress_both_manager;
CREATE ROLE regress_admin_group;		-- a group: its members inherit its grants
CREATE ROLE regress_member IN ROLE regress_admin_group;
CREATE ROLE regress_outsider;
CREATE ROLE regress_ci_reader;
CREATE ROLE regress_ci_manager;
CREATE ROLE regress_hostile;
-- user roles write the CMDB tables directly through cloudconn_app (README);
-- the outsider is a role without any grant
GRANT cloudconn_app TO regress_root_reader, regress_eu_manager, regress_eu_reader, regress_us_manager,
	regress_both_manager, regress_admin_group, regress_ci_reader, regress_ci_manager, regress_hostile;

SELECT cloudconn.grant_permission('regress_root_reader', 1, 'CloudConnector:read');
SELECT cloudconn.grant_permission('regress_eu_manager', 2, 'CloudConnector:manage');
SELECT cloudconn.grant_permission('regress_eu_reader', 2, 'CloudConnector:read');
SELECT cloudconn.grant_permission('regress_us_manager', 3, 'CloudConnector:manage');
SELECT cloudconn.grant_permission('regress_both_manager', 2, 'CloudConnector:manage');
SELECT cloudconn.grant_permission('regress_both_manager', 3, 'CloudConnector:manage');
SELECT cloudconn.grant_permission('regress_admin_group', 4, 'CloudConnector:manage');
SELECT cloudconn.grant_permission('regress_ci_reader', 2, 'ConfigurationItem:read');
SELECT cloudconn.grant_permission('regress_ci_manager', 2, 'ConfigurationItem:manage');
SELECT cloudconn.grant_permission('regress_hostile', 3, 'CloudConnector:manage');
-- granting twice is harmless
SELECT cloudconn.grant_permission('regress_eu_reader', 2, 'CloudConnector:read');
SELECT role, entity_id, permission FROM cloudconn.role_assignment ORDER BY role::text, entity_id, permission;

-- the wizard's picker
SELECT provider, display_name, status, resource_types FROM cloudconn.providers ORDER BY provider;
-- what each provider discovers, and what one listing of it covers
SELECT provider, ci_type, display_name, default_enabled, scope_kind FROM cloudconn.resource_types
 ORDER BY provider, ci_type;

-- every GUC of the spec, with its default and context (superuser view)
SELECT name, boot_val, context FROM pg_settings WHERE name LIKE 'cloudconn.%' ORDER BY name;
-- endpoint, identity and file settings are superuser-only: an ordinary role
-- sees only the scheduling and HTTP tuning ones, and cannot read the others
SET ROLE regress_outsider;
SELECT name FROM pg_settings WHERE name LIKE 'cloudconn.%' ORDER BY name;
SHOW cloudconn.key_file;
SHOW cloudconn.key_command;
SHOW cloudconn.digitalocean_api_url;
SHOW cloudconn.aws_rds_endpoint;
SHOW cloudconn.aws_s3_endpoint;
SHOW cloudconn.aws_lambda_endpoint;
SHOW cloudconn.aws_caller_source;
SHOW cloudconn.aws_roles_anywhere_private_key_file;
SHOW cloudconn.azure_login_url;
SHOW cloudconn.azure_management_url;
RESET ROLE;
