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
