/*
 * cloudconn 0.1.0 -> 0.2.0.  Every schema change of 0.2.0, in the order of
 * sql/cloudconn.sql; test/t/007_upgrade.pl proves that a 0.1.0 database
 * upgraded with it has the catalog of a fresh 0.2.0 install.
 */

\echo Use "ALTER EXTENSION cloudconn UPDATE" to load this file. \quit

/* ---- the provider registry, read through C functions (provider.c) */

CREATE FUNCTION cloudconn._connector_valid(provider text, has_external_id boolean, has_token boolean)
	RETURNS boolean LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'cloudconn_connector_valid';

ALTER TABLE cloudconn.connector
	DROP CONSTRAINT connector_provider_check,
	DROP CONSTRAINT connector_check,
	DROP CONSTRAINT connector_check1,
	ADD CONSTRAINT connector_provider_valid
		CHECK (cloudconn._connector_valid(provider, external_id IS NOT NULL, token IS NOT NULL));
COMMENT ON COLUMN cloudconn.connector.token IS
	'The provider''s stored secret (a read-only token), encrypted with pgcrypto under the key in cloudconn.key_file; never readable as plain text through SQL';
COMMENT ON COLUMN cloudconn.connector.external_id IS
	'External id minted for this connector by providers that use one (sts:ExternalId); unique, never changed or reused';

/* ---- resource types and explicit scopes; counts per type */

ALTER TABLE cloudconn.run
	ADD COLUMN counts_by_type jsonb NOT NULL DEFAULT '{}',
	ADD CONSTRAINT run_counts_by_type_check CHECK (jsonb_typeof(counts_by_type) = 'object');
ALTER TABLE cloudconn.run_error ADD COLUMN ci_type text, ADD COLUMN scope text;
ALTER TABLE cloudconn.configuration_item ADD COLUMN discovery_scope text;

/* the scope of every discovered CI, as its provider tells it from what 0.1.0 stored */
CREATE FUNCTION cloudconn._ci_scope(provider text, ci_type text, external_id text, attributes jsonb)
	RETURNS text LANGUAGE C STABLE STRICT AS 'MODULE_PATHNAME', 'cloudconn_ci_scope';
UPDATE cloudconn.configuration_item ci
   SET discovery_scope = cloudconn._ci_scope(k.provider, ci.ci_type, ci.external_id, ci.attributes)
  FROM cloudconn.connector k
 WHERE k.id = ci.source_connector_id;
DROP FUNCTION cloudconn._ci_scope(text, text, text, jsonb);

ALTER TABLE cloudconn.configuration_item
	ADD CONSTRAINT configuration_item_discovery_scope_check
		CHECK (discovery_scope IS NULL OR source_connector_id IS NOT NULL);
COMMENT ON COLUMN cloudconn.configuration_item.discovery_scope IS
	'The scope (a region, or the whole account) of the listing that found the resource: missing_since is only set from a complete listing of it';

/* the digest of the provider-owned fields (computed for every CI now) */
CREATE FUNCTION cloudconn._ci_digest(ci_type text, name text, hostname text, ip_address inet,
									 os_info text, attributes jsonb, discovery_scope text)
	RETURNS bytea LANGUAGE C IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cloudconn_ci_digest';
ALTER TABLE cloudconn.configuration_item
	ADD COLUMN provider_digest bytea GENERATED ALWAYS AS
		(cloudconn._ci_digest(ci_type, name, hostname, ip_address, os_info, attributes, discovery_scope)) STORED;
COMMENT ON COLUMN cloudconn.configuration_item.provider_digest IS
	'Digest of the provider-owned fields, whoever wrote them: a run leaves a resource whose fields have this digest out of the merge';

/* the test-only signing function does not ship in the extension's schema */
DROP FUNCTION cloudconn._sigv4_sign(text, text, text, text[], text, text, text, text, text, text, text,
									boolean, boolean);

/* validation by the registry */
DROP FUNCTION cloudconn._validate_provider(text);
DROP FUNCTION cloudconn._validate_settings(text, jsonb);
DROP FUNCTION cloudconn._validate_token(text);
CREATE FUNCTION cloudconn._validate_provider(provider text) RETURNS void
	LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'cloudconn_validate_provider';
CREATE FUNCTION cloudconn._validate_settings(provider text, settings jsonb) RETURNS void
	LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'cloudconn_validate_settings';
CREATE FUNCTION cloudconn._validate_secret(provider text, secret text, rotating boolean) RETURNS void
	LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'cloudconn_validate_secret';
CREATE FUNCTION cloudconn._provider_mints_external_id(provider text) RETURNS boolean
	LANGUAGE C IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'cloudconn_provider_mints_external_id';

CREATE OR REPLACE FUNCTION cloudconn._connector_create(caller oid, entity_id bigint, name text, provider text,
											schedule text, settings jsonb, token text)
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, cloudconn, pg_temp
	AS $$
DECLARE
	new_id bigint;
BEGIN
	/* permission first: a caller without it learns nothing, and costs nothing */
	PERFORM cloudconn._require_entity(caller, entity_id, 'CloudConnector:manage');
	PERFORM cloudconn._validate_provider(provider);
	PERFORM cloudconn._validate_name(name);
	PERFORM cloudconn._validate_schedule(schedule);
	PERFORM cloudconn._validate_settings(provider, coalesce(settings, '{}'));
	PERFORM cloudconn._validate_secret(provider, token, false);

	IF EXISTS (SELECT 1 FROM cloudconn.connector k
				WHERE k.entity_id = _connector_create.entity_id AND k.name = _connector_create.name
				  AND k.deleted_at IS NULL) THEN
		RAISE EXCEPTION 'a connector named "%" already exists in entity %', name, entity_id
			USING ERRCODE = 'unique_violation';
	END IF;

	INSERT INTO cloudconn.connector AS k
		(entity_id, name, provider, schedule, settings, external_id, token, token_set_at, created_by)
	VALUES (entity_id, name, provider, schedule, coalesce(settings, '{}'),
			CASE WHEN cloudconn._provider_mints_external_id(provider) THEN cloudconn._mint_external_id() END,
			CASE WHEN token IS NOT NULL THEN cloudconn._token_encrypt(token) END,
			CASE WHEN token IS NOT NULL THEN now() END,
			caller::regrole)
	RETURNING k.id INTO new_id;
	RETURN new_id;
END;
$$;

CREATE OR REPLACE FUNCTION cloudconn._connector_set_token(caller oid, connector_id bigint, token text)
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, cloudconn, pg_temp
	AS $$
DECLARE
	c cloudconn.connector;
BEGIN
	c := cloudconn._connector_for_action(caller, connector_id, true);
	PERFORM cloudconn._validate_secret(c.provider, token, true);
	UPDATE cloudconn.connector k
	   SET token = cloudconn._token_encrypt(_connector_set_token.token),
		   token_set_at = now(), updated_at = now()
	 WHERE k.id = c.id;
END;
$$;

CREATE OR REPLACE FUNCTION cloudconn._aws_cloudformation_template(caller oid, connector_id bigint)
	RETURNS text
	LANGUAGE C STABLE SECURITY DEFINER
	SET search_path = pg_catalog, cloudconn, pg_temp
	AS 'MODULE_PATHNAME', 'cloudconn_aws_cloudformation_template';

/* views */
CREATE OR REPLACE VIEW cloudconn.runs WITH (security_invoker = true) AS
SELECT r.id, r.connector_id, k.name AS connector_name, k.provider, k.entity_id,
	   (k.deleted_at IS NOT NULL) AS connector_deleted,
	   r.trigger, r.status, r.started_at, r.finished_at,
	   r.discovered, r.created, r.updated, r.unchanged, r.error_count, r.error,
	   coalesce(p.pages_fetched, r.pages_fetched) AS pages_fetched,
	   CASE WHEN r.status = 'running' THEN coalesce(p.resources_seen, 0) ELSE r.discovered END AS resources_seen,
	   r.counts_by_type
  FROM cloudconn.run r
  JOIN cloudconn.connector k ON k.id = r.connector_id
  LEFT JOIN cloudconn.run_progress() p ON p.run_id = r.id;

CREATE OR REPLACE VIEW cloudconn.run_errors WITH (security_invoker = true) AS
SELECT e.id, e.run_id, r.connector_id, e.external_id, e.message, e.created_at, e.ci_type, e.scope
  FROM cloudconn.run_error e
  JOIN cloudconn.run r ON r.id = e.run_id;

CREATE FUNCTION cloudconn._providers(OUT provider text, OUT display_name text, OUT status text,
									 OUT resource_types text[])
	RETURNS SETOF record LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'cloudconn_providers';
CREATE FUNCTION cloudconn._resource_types(OUT provider text, OUT ci_type text, OUT display_name text,
										  OUT default_enabled boolean, OUT scope_kind text)
	RETURNS SETOF record LANGUAGE C IMMUTABLE AS 'MODULE_PATHNAME', 'cloudconn_resource_types';

CREATE OR REPLACE VIEW cloudconn.providers AS
SELECT p.provider, p.display_name, p.status, p.resource_types FROM cloudconn._providers() p;

CREATE VIEW cloudconn.resource_types AS
SELECT t.provider, t.ci_type, t.display_name, t.default_enabled, t.scope_kind FROM cloudconn._resource_types() t;
COMMENT ON VIEW cloudconn.resource_types IS
	'What each provider discovers: a connector''s settings.resource_types names some of them (absent: those with default_enabled); scope_kind says what one listing covers (a region, or the whole account)';

CREATE OR REPLACE VIEW cloudconn.configuration_items WITH (security_barrier = true) AS
SELECT ci.id, ci.entity_id, ci.ci_type, ci.name, ci.hostname, ci.ip_address, ci.os_info,
	   ci.description, ci.external_id, ci.source_connector_id,
	   k.provider AS discovered_by_provider, k.name AS discovered_by_connector,
	   ci.first_discovered_at, ci.missing_since, ci.attributes, ci.created_at, ci.updated_at,
	   ci.discovery_scope
  FROM cloudconn.configuration_item ci
  LEFT JOIN cloudconn.connector k ON k.id = ci.source_connector_id
 WHERE cloudconn.entity_permitted(ci.entity_id, 'ConfigurationItem:read');

/* privileges of what is new */
DO $$
DECLARE
	f regprocedure;
BEGIN
	FOR f IN SELECT p.oid FROM pg_catalog.pg_proc p
			  WHERE p.pronamespace = 'cloudconn'::regnamespace AND p.proname LIKE '\_%'
	LOOP
		EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
	END LOOP;
END;
$$;
GRANT SELECT ON cloudconn.resource_types TO PUBLIC;
GRANT EXECUTE ON FUNCTION cloudconn._providers(), cloudconn._resource_types() TO PUBLIC;
GRANT EXECUTE ON FUNCTION cloudconn._ci_digest(text, text, text, inet, text, jsonb, text) TO PUBLIC;

/* ---- issue 19: echoed values cut short; names without bidirectional controls */

CREATE FUNCTION cloudconn._quote_value(value text) RETURNS text
	LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
	SET search_path = pg_catalog, pg_temp
	RETURN CASE WHEN length(value) <= 64 THEN '"' || value || '"'
		ELSE format('"%s..." (%s characters)', left(value, 64), length(value)) END;

CREATE OR REPLACE FUNCTION cloudconn._check_permission_name(perm text) RETURNS void
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF perm IS NULL OR cloudconn._implying_permissions(perm) IS NULL THEN
		RAISE EXCEPTION USING MESSAGE = CASE WHEN perm IS NULL THEN 'permission must not be null'
											 ELSE format('unknown permission %s', cloudconn._quote_value(perm)) END,
			ERRCODE = 'invalid_parameter_value',
				  HINT = 'Permissions are CloudConnector:read, CloudConnector:manage, ConfigurationItem:read and ConfigurationItem:manage.';
	END IF;
END;
$$;

CREATE OR REPLACE FUNCTION cloudconn._validate_name(name text) RETURNS void
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF name IS NULL OR btrim(name) = '' THEN
		PERFORM cloudconn._invalid('connector name must not be empty');
	ELSIF length(name) > 200 THEN
		PERFORM cloudconn._invalid(format('connector name is too long (%s characters)', length(name)),
								   'A connector name has at most 200 characters.');
	ELSIF name ~ '[\u202A-\u202E\u2066-\u2069\u2028\u2029]' THEN
		/* they make a name display as another, or break the line it is shown on */
		PERFORM cloudconn._invalid('connector name must not contain bidirectional formatting characters or line or paragraph separators',
								   'U+202A to U+202E, U+2066 to U+2069, U+2028 and U+2029 are refused.');
	ELSIF name ~ '[[:cntrl:]]' THEN
		PERFORM cloudconn._invalid('connector name must not contain control characters');
	END IF;
END;
$$;

CREATE OR REPLACE FUNCTION cloudconn._validate_schedule(schedule text) RETURNS void
	LANGUAGE plpgsql IMMUTABLE
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF schedule IS NULL THEN
		PERFORM cloudconn._invalid('schedule must not be null', 'The schedule is "daily" or "manual".');
	ELSIF schedule NOT IN ('daily', 'manual') THEN
		PERFORM cloudconn._invalid(format('invalid schedule %s', cloudconn._quote_value(schedule)),
								   'The schedule is "daily" or "manual".');
	END IF;
END;
$$;

CREATE OR REPLACE FUNCTION cloudconn._connector_create(caller oid, entity_id bigint, name text, provider text,
											schedule text, settings jsonb, token text)
	RETURNS bigint
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, cloudconn, pg_temp
	AS $$
DECLARE
	new_id bigint;
BEGIN
	/* permission first: a caller without it learns nothing, and costs nothing */
	PERFORM cloudconn._require_entity(caller, entity_id, 'CloudConnector:manage');
	PERFORM cloudconn._validate_provider(provider);
	PERFORM cloudconn._validate_name(name);
	PERFORM cloudconn._validate_schedule(schedule);
	PERFORM cloudconn._validate_settings(provider, coalesce(settings, '{}'));
	PERFORM cloudconn._validate_secret(provider, token, false);

	IF EXISTS (SELECT 1 FROM cloudconn.connector k
				WHERE k.entity_id = _connector_create.entity_id AND k.name = _connector_create.name
				  AND k.deleted_at IS NULL) THEN
		RAISE EXCEPTION 'a connector named % already exists in entity %', cloudconn._quote_value(name), entity_id
			USING ERRCODE = 'unique_violation';
	END IF;

	INSERT INTO cloudconn.connector AS k
		(entity_id, name, provider, schedule, settings, external_id, token, token_set_at, created_by)
	VALUES (entity_id, name, provider, schedule, coalesce(settings, '{}'),
			CASE WHEN cloudconn._provider_mints_external_id(provider) THEN cloudconn._mint_external_id() END,
			CASE WHEN token IS NOT NULL THEN cloudconn._token_encrypt(token) END,
			CASE WHEN token IS NOT NULL THEN now() END,
			caller::regrole)
	RETURNING k.id INTO new_id;
	RETURN new_id;
END;
$$;

CREATE OR REPLACE FUNCTION cloudconn._connector_update(caller oid, connector_id bigint, name text,
											schedule text, entity_id bigint, settings jsonb)
	RETURNS void
	LANGUAGE plpgsql VOLATILE SECURITY DEFINER
	SET search_path = pg_catalog, cloudconn, pg_temp
	AS $$
DECLARE
	c cloudconn.connector;
BEGIN
	c := cloudconn._connector_for_action(caller, connector_id, true);
	IF name IS NOT NULL THEN
		PERFORM cloudconn._validate_name(name);
	END IF;
	IF schedule IS NOT NULL THEN
		PERFORM cloudconn._validate_schedule(schedule);
	END IF;
	IF settings IS NOT NULL THEN
		PERFORM cloudconn._validate_settings(c.provider, settings);
	END IF;
	/* moving needs manage on the target too (the source was checked above) */
	IF entity_id IS NOT NULL AND entity_id <> c.entity_id THEN
		PERFORM cloudconn._require_entity(caller, entity_id, 'CloudConnector:manage');
	END IF;

	IF EXISTS (SELECT 1 FROM cloudconn.connector k
				WHERE k.entity_id = coalesce(_connector_update.entity_id, c.entity_id)
				  AND k.name = coalesce(_connector_update.name, c.name)
				  AND k.deleted_at IS NULL AND k.id <> c.id) THEN
		RAISE EXCEPTION 'a connector named % already exists in entity %',
			cloudconn._quote_value(coalesce(name, c.name)), coalesce(entity_id, c.entity_id)
			USING ERRCODE = 'unique_violation';
	END IF;

	/* external_id and token are deliberately not updatable here */
	UPDATE cloudconn.connector k
	   SET name = coalesce(_connector_update.name, k.name),
		   schedule = coalesce(_connector_update.schedule, k.schedule),
		   entity_id = coalesce(_connector_update.entity_id, k.entity_id),
		   settings = coalesce(_connector_update.settings, k.settings),
		   updated_at = now()
	 WHERE k.id = c.id;
END;
$$;

ALTER TABLE cloudconn.entity
	ADD CONSTRAINT entity_name_bidi_check CHECK (name !~ '[\u202A-\u202E\u2066-\u2069\u2028\u2029]');
ALTER TABLE cloudconn.application
	ADD CONSTRAINT application_name_bidi_check CHECK (name !~ '[\u202A-\u202E\u2066-\u2069\u2028\u2029]');
ALTER TABLE cloudconn.business_process
	ADD CONSTRAINT business_process_name_bidi_check CHECK (name !~ '[\u202A-\u202E\u2066-\u2069\u2028\u2029]');

REVOKE ALL ON FUNCTION cloudconn._quote_value(text) FROM PUBLIC;

/* ---- issue 19: the token key from cloudconn.key_file or cloudconn.key_command; its rotation */

COMMENT ON COLUMN cloudconn.connector.token IS
	'The provider''s stored secret (a read-only token), encrypted with pgcrypto under the token key (cloudconn.key_file or cloudconn.key_command); never readable as plain text through SQL';
CREATE FUNCTION cloudconn.rotate_token_key(old_key_file text DEFAULT NULL, old_key_command text DEFAULT NULL)
	RETURNS bigint LANGUAGE C VOLATILE SET search_path = pg_catalog, pg_temp
	AS 'MODULE_PATHNAME', 'cloudconn_rotate_token_key';
REVOKE ALL ON FUNCTION cloudconn.rotate_token_key(text, text) FROM PUBLIC;
COMMENT ON FUNCTION cloudconn.rotate_token_key(text, text) IS
	'Superuser only: re-encrypts under the server''s current token key, in one transaction, every stored token still under the old key (old_key_file or old_key_command); returns how many';

/* ---- the permission model (permission.c): inheritance, the permitted-set cache, cloudconn_app */

COMMENT ON FUNCTION cloudconn.has_permission(bigint, text) IS
	'Does the current role hold the permission on the entity (directly, through an ancestor, or through a role whose privileges it inherits)?';

CREATE FUNCTION cloudconn._permission_data_changed() RETURNS trigger
	LANGUAGE C AS 'MODULE_PATHNAME', 'cloudconn_permission_data_changed';
REVOKE ALL ON FUNCTION cloudconn._permission_data_changed() FROM PUBLIC;

/* Private: this backend's permitted sets computed, lookups the cache answered, per-row checks made (tests, benchmarks). */
CREATE FUNCTION cloudconn._permission_cache_stats(OUT computed bigint, OUT reused bigint,
												   OUT row_checks bigint) RETURNS record
	LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'cloudconn_permission_cache_stats';
/* Private: this backend's policy filter clauses settled true, and gates settled false (policy_gate.c; tests, benchmarks). */
CREATE FUNCTION cloudconn._policy_gate_stats(OUT clauses_dropped bigint, OUT arms_dropped bigint) RETURNS record
	LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'cloudconn_policy_gate_stats';
REVOKE ALL ON FUNCTION cloudconn._permission_cache_stats() FROM PUBLIC;
REVOKE ALL ON FUNCTION cloudconn._policy_gate_stats() FROM PUBLIC;

CREATE TRIGGER role_assignment_permission_changed
	BEFORE INSERT OR UPDATE OR DELETE ON cloudconn.role_assignment
	FOR EACH ROW EXECUTE FUNCTION cloudconn._permission_data_changed();
CREATE TRIGGER role_assignment_permission_truncated
	BEFORE TRUNCATE ON cloudconn.role_assignment
	FOR EACH STATEMENT EXECUTE FUNCTION cloudconn._permission_data_changed();
CREATE TRIGGER entity_permission_changed
	BEFORE INSERT OR UPDATE OF parent_id OR DELETE ON cloudconn.entity
	FOR EACH ROW EXECUTE FUNCTION cloudconn._permission_data_changed();
CREATE TRIGGER entity_permission_truncated
	BEFORE TRUNCATE ON cloudconn.entity
	FOR EACH STATEMENT EXECUTE FUNCTION cloudconn._permission_data_changed();
CREATE TRIGGER connector_permission_changed
	BEFORE INSERT OR UPDATE OF entity_id OR DELETE ON cloudconn.connector
	FOR EACH ROW EXECUTE FUNCTION cloudconn._permission_data_changed();
CREATE TRIGGER connector_permission_truncated
	BEFORE TRUNCATE ON cloudconn.connector
	FOR EACH STATEMENT EXECUTE FUNCTION cloudconn._permission_data_changed();
ALTER TABLE cloudconn.role_assignment
	ENABLE ALWAYS TRIGGER role_assignment_permission_changed,
	ENABLE ALWAYS TRIGGER role_assignment_permission_truncated;
ALTER TABLE cloudconn.entity
	ENABLE ALWAYS TRIGGER entity_permission_changed,
	ENABLE ALWAYS TRIGGER entity_permission_truncated;
ALTER TABLE cloudconn.connector
	ENABLE ALWAYS TRIGGER connector_permission_changed,
	ENABLE ALWAYS TRIGGER connector_permission_truncated;

ALTER POLICY role_assignment_read ON cloudconn.role_assignment
	USING (pg_catalog.pg_has_role(role::oid, 'USAGE')
		   OR cloudconn.entity_permitted(entity_id, 'CloudConnector:manage')
		   OR cloudconn.entity_permitted(entity_id, 'ConfigurationItem:manage'));

/* PUBLIC only reads; writing the CMDB tables is for members of cloudconn_app */
REVOKE DELETE ON cloudconn.configuration_item, cloudconn.application, cloudconn.business_process
	FROM PUBLIC;
REVOKE INSERT (entity_id, ci_type, name, hostname, ip_address, os_info, description, attributes),
	   UPDATE (entity_id, name, hostname, ip_address, os_info, description, attributes, updated_at)
	ON cloudconn.configuration_item FROM PUBLIC;
REVOKE INSERT (entity_id, name, description), UPDATE (entity_id, name, description)
	ON cloudconn.application, cloudconn.business_process FROM PUBLIC;
REVOKE INSERT, DELETE ON cloudconn.ci_application, cloudconn.ci_business_process FROM PUBLIC;
REVOKE USAGE ON SEQUENCE cloudconn.configuration_item_id_seq, cloudconn.application_id_seq,
	cloudconn.business_process_id_seq FROM PUBLIC;
DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'cloudconn_app') THEN
		CREATE ROLE cloudconn_app NOLOGIN;
	END IF;
END;
$$;
GRANT DELETE ON cloudconn.configuration_item TO cloudconn_app;
GRANT INSERT (entity_id, ci_type, name, hostname, ip_address, os_info, description, attributes),
	  UPDATE (entity_id, name, hostname, ip_address, os_info, description, attributes, updated_at)
	ON cloudconn.configuration_item TO cloudconn_app;
GRANT DELETE ON cloudconn.application, cloudconn.business_process TO cloudconn_app;
GRANT INSERT (entity_id, name, description), UPDATE (entity_id, name, description)
	ON cloudconn.application, cloudconn.business_process TO cloudconn_app;
GRANT INSERT, DELETE ON cloudconn.ci_application, cloudconn.ci_business_process TO cloudconn_app;
GRANT USAGE ON SEQUENCE cloudconn.configuration_item_id_seq, cloudconn.application_id_seq,
	cloudconn.business_process_id_seq TO cloudconn_app;

/* read policies ask once per statement whether the role sees everything */
CREATE FUNCTION cloudconn.entity_restriction(permission text) RETURNS boolean
	LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cloudconn_entity_restriction';
CREATE FUNCTION cloudconn.connector_restriction(permission text) RETURNS boolean
	LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cloudconn_connector_restriction';
ALTER POLICY entity_read ON cloudconn.entity
	USING ((SELECT cloudconn.entity_restriction('CloudConnector:read')) IS NULL
		   OR (SELECT cloudconn.entity_restriction('ConfigurationItem:read')) IS NULL
		   OR cloudconn.entity_permitted(id, 'CloudConnector:read')
		   OR cloudconn.entity_permitted(id, 'ConfigurationItem:read'));
ALTER POLICY connector_read ON cloudconn.connector
	USING ((SELECT cloudconn.entity_restriction('CloudConnector:read')) IS NULL
		   OR cloudconn.entity_permitted(entity_id, 'CloudConnector:read'));
ALTER POLICY run_read ON cloudconn.run
	USING ((SELECT cloudconn.connector_restriction('CloudConnector:read')) IS NULL
		   OR cloudconn.connector_permitted(connector_id, 'CloudConnector:read'));
ALTER POLICY configuration_item_read ON cloudconn.configuration_item
	USING ((SELECT cloudconn.entity_restriction('ConfigurationItem:read')) IS NULL
		   OR cloudconn.entity_permitted(entity_id, 'ConfigurationItem:read'));
ALTER POLICY application_read ON cloudconn.application
	USING ((SELECT cloudconn.entity_restriction('ConfigurationItem:read')) IS NULL
		   OR cloudconn.entity_permitted(entity_id, 'ConfigurationItem:read'));
ALTER POLICY business_process_read ON cloudconn.business_process
	USING ((SELECT cloudconn.entity_restriction('ConfigurationItem:read')) IS NULL
		   OR cloudconn.entity_permitted(entity_id, 'ConfigurationItem:read'));
CREATE OR REPLACE VIEW cloudconn.configuration_items WITH (security_barrier = true) AS
SELECT ci.id, ci.entity_id, ci.ci_type, ci.name, ci.hostname, ci.ip_address, ci.os_info,
	   ci.description, ci.external_id, ci.source_connector_id,
	   k.provider AS discovered_by_provider, k.name AS discovered_by_connector,
	   ci.first_discovered_at, ci.missing_since, ci.attributes, ci.created_at, ci.updated_at,
	   ci.discovery_scope
  FROM cloudconn.configuration_item ci
  LEFT JOIN cloudconn.connector k ON k.id = ci.source_connector_id
 WHERE (SELECT cloudconn.entity_restriction('ConfigurationItem:read')) IS NULL
	OR cloudconn.entity_permitted(ci.entity_id, 'ConfigurationItem:read');
/* ---- issue 13: AWS VPCs, RDS DB instances, S3 buckets, Lambda functions; the least-privilege template */

DROP FUNCTION cloudconn.aws_cloudformation_template(bigint);
DROP FUNCTION cloudconn._aws_cloudformation_template(oid, bigint);
/*
 * The AWS provider's template (aws.c); the permission check is
 * _connector_for_action's (manage).  least_privilege: one inline policy of
 * the actions the connector's enabled types need (the registry's).
 */
CREATE FUNCTION cloudconn._aws_cloudformation_template(caller oid, connector_id bigint, least_privilege boolean)
	RETURNS text
	LANGUAGE C STABLE SECURITY DEFINER
	SET search_path = pg_catalog, cloudconn, pg_temp
	AS 'MODULE_PATHNAME', 'cloudconn_aws_cloudformation_template';
REVOKE ALL ON FUNCTION cloudconn._aws_cloudformation_template(oid, bigint, boolean) FROM PUBLIC;
CREATE FUNCTION cloudconn.aws_cloudformation_template(connector_id bigint, least_privilege boolean DEFAULT false)
	RETURNS text LANGUAGE C STABLE AS 'MODULE_PATHNAME', 'cloudconn_dispatch';

/* ---- issue 12: a grant never outlives its role */

/*
 * A grant never outlives its role.  Every role that a grant names holds
 * USAGE on this domain, which lets it do nothing: its only effect is the
 * shared dependency PostgreSQL records, through which DROP ROLE, from any
 * database of the cluster, refuses to drop a role that still has grants
 * here ("privileges for type cloudconn.grantee_anchor").  In this
 * database, DROP ROLE and DROP OWNED BY remove the role's grants first
 * (permission.c), so the drop goes through.  A grant can thus never be
 * left as a bare OID that a role created later with the same OID would
 * inherit.
 */
CREATE DOMAIN cloudconn.grantee_anchor AS boolean;
REVOKE ALL ON DOMAIN cloudconn.grantee_anchor FROM PUBLIC;
COMMENT ON DOMAIN cloudconn.grantee_anchor IS
	'Held (USAGE) by every role a grant names, so that the role cannot be dropped while it has grants; grants nothing';

/*
 * After a grant is written: its role must exist (a bare OID could name a
 * role created later) and gets the anchor; after a role's last grant goes
 * (revoked, its entity deleted, the table truncated), the anchor goes.
 */
CREATE FUNCTION cloudconn._role_assignment_anchor() RETURNS trigger
	LANGUAGE plpgsql SECURITY DEFINER
	SET search_path = pg_catalog, cloudconn, pg_temp
	AS $$
DECLARE
	holder regrole;
BEGIN
	IF TG_OP = 'TRUNCATE' THEN
		FOR holder IN
			SELECT acl.grantee::regrole
			  FROM pg_catalog.pg_type t, pg_catalog.aclexplode(t.typacl) acl
			 WHERE t.oid = 'cloudconn.grantee_anchor'::pg_catalog.regtype AND acl.grantee <> t.typowner
		LOOP
			EXECUTE format('REVOKE USAGE ON DOMAIN cloudconn.grantee_anchor FROM %s', holder);
		END LOOP;
		RETURN NULL;
	END IF;
	IF TG_OP IN ('UPDATE', 'DELETE')
	   AND (TG_OP = 'DELETE' OR OLD.role IS DISTINCT FROM NEW.role)
	   AND NOT EXISTS (SELECT 1 FROM cloudconn.role_assignment ra WHERE ra.role = OLD.role)
	   AND EXISTS (SELECT 1 FROM pg_catalog.pg_authid a WHERE a.oid = OLD.role::oid) THEN
		EXECUTE format('REVOKE USAGE ON DOMAIN cloudconn.grantee_anchor FROM %s', OLD.role);
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_authid a WHERE a.oid = NEW.role::oid) THEN
			PERFORM cloudconn._invalid(format('role with OID %s does not exist', NEW.role::oid));
		END IF;
		EXECUTE format('GRANT USAGE ON DOMAIN cloudconn.grantee_anchor TO %s', NEW.role);
	END IF;
	RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION cloudconn._role_assignment_anchor() FROM PUBLIC;
CREATE TRIGGER role_assignment_anchor
	AFTER INSERT OR UPDATE OF role OR DELETE ON cloudconn.role_assignment
	FOR EACH ROW EXECUTE FUNCTION cloudconn._role_assignment_anchor();
CREATE TRIGGER role_assignment_anchor_truncated
	AFTER TRUNCATE ON cloudconn.role_assignment
	FOR EACH STATEMENT EXECUTE FUNCTION cloudconn._role_assignment_anchor();
ALTER TABLE cloudconn.role_assignment
	ENABLE ALWAYS TRIGGER role_assignment_anchor,
	ENABLE ALWAYS TRIGGER role_assignment_anchor_truncated;

/* grants left by roles dropped before: nobody's (a role given their OID would inherit them) */
DELETE FROM cloudconn.role_assignment ra
 WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_authid a WHERE a.oid = ra.role::oid);
DO $$
DECLARE
	holder regrole;
BEGIN
	FOR holder IN SELECT DISTINCT ra.role FROM cloudconn.role_assignment ra LOOP
		EXECUTE format('GRANT USAGE ON DOMAIN cloudconn.grantee_anchor TO %s', holder);
	END LOOP;
END;
$$;

/* ---- issue 16: change history of CIs */
/* ------------------------------------------------------------------------
 * Change history of CIs (README: Change history; issue 16).  Runs write it
 * in the merge's own statements (merge.c), but for a CI's discovery: that
 * is the CI's own first_discovered_at and discovered_by_run_id, and
 * ci_changes derives its 'discovered' entry from them, so that an initial
 * inventory writes no row of history at all.  User edits of user-owned fields
 * are recorded by the triggers below (history.c), as the role that made
 * them.  Append-only: nobody is granted UPDATE, DELETE or TRUNCATE, and the
 * statement trigger refuses them to anyone but a superuser; the launcher
 * deletes what is older than cloudconn.history_retention.  No foreign keys:
 * a change outlives the CI, and a run writes its rows without a check each.
 * ------------------------------------------------------------------------ */

CREATE TABLE cloudconn.ci_change (
	id			bigint GENERATED BY DEFAULT AS IDENTITY,
	ci_id		bigint NOT NULL,
	run_id		bigint,
	connector_id bigint,
	role_name	text,
	changed_at	timestamptz NOT NULL DEFAULT now(),
	kind		text NOT NULL CHECK (kind IN ('discovered', 'updated', 'missing', 'returned', 'edited')),
	field		text,
	old_value	jsonb,
	new_value	jsonb,
	CONSTRAINT ci_change_actor_check
		CHECK (CASE WHEN kind = 'edited' THEN run_id IS NULL AND role_name IS NOT NULL
					ELSE run_id IS NOT NULL AND connector_id IS NOT NULL END)
);
CREATE INDEX ci_change_ci_id_idx ON cloudconn.ci_change (ci_id, id);
/*
 * No primary key, and BRIN for run_id: every index costs each row a run
 * writes (an initial inventory writes one a CI).  id is unique by its
 * identity; ids and run ids grow with time, so BRIN finds a run's changes.
 */
CREATE INDEX ci_change_run_id_idx ON cloudconn.ci_change USING brin (run_id);
/* BRIN: cheap to keep up as runs append, and enough for the retention's range */
CREATE INDEX ci_change_changed_at_idx ON cloudconn.ci_change USING brin (changed_at);
ALTER TABLE cloudconn.configuration_item ADD COLUMN discovered_by_run_id bigint;
COMMENT ON COLUMN cloudconn.configuration_item.discovered_by_run_id IS
	'The run that created the CI: its ''discovered'' entry in ci_changes (with first_discovered_at)';
/* run_changes() finds a run's discovered CIs by it; BRIN, for CIs are created in run order */
CREATE INDEX configuration_item_discovered_by_run_id_idx
	ON cloudconn.configuration_item USING brin (discovered_by_run_id);
COMMENT ON TABLE cloudconn.ci_change IS
	'Change history of CIs: what each run changed, field by field (attributes per top-level key), and which role edited a user-owned field; read it through ci_changes, ci_history() and run_changes()';
SELECT pg_catalog.pg_extension_config_dump('cloudconn.ci_change', '');
SELECT pg_catalog.pg_extension_config_dump('cloudconn.ci_change_id_seq', '');

/*
 * Private: now() less cloudconn.history_retention, or -infinity when it is 0
 * (history.c).  Executable by everyone: ci_changes calls it as its reader.
 */
CREATE FUNCTION cloudconn._history_horizon() RETURNS timestamptz
	LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'cloudconn_history_horizon';

/* Private: records an edit of a user-owned field as the role that made it (history.c). */
CREATE FUNCTION cloudconn._ci_edit_recorded() RETURNS trigger
	LANGUAGE C AS 'MODULE_PATHNAME', 'cloudconn_ci_edit_recorded';
REVOKE ALL ON FUNCTION cloudconn._ci_edit_recorded() FROM PUBLIC;

/*
 * Only the user-owned columns: the merge never sets them, so its own
 * writes are never recorded twice, and configuration_item keeps no insert
 * trigger but its foreign keys' (ci_foreign_keys.c).
 */
CREATE TRIGGER configuration_item_edit_recorded
	AFTER UPDATE OF entity_id, description ON cloudconn.configuration_item
	FOR EACH ROW
	WHEN (OLD.entity_id IS DISTINCT FROM NEW.entity_id OR OLD.description IS DISTINCT FROM NEW.description)
	EXECUTE FUNCTION cloudconn._ci_edit_recorded('ci');
CREATE TRIGGER ci_application_edit_recorded
	AFTER INSERT OR DELETE ON cloudconn.ci_application
	FOR EACH ROW EXECUTE FUNCTION cloudconn._ci_edit_recorded('application');
CREATE TRIGGER ci_business_process_edit_recorded
	AFTER INSERT OR DELETE ON cloudconn.ci_business_process
	FOR EACH ROW EXECUTE FUNCTION cloudconn._ci_edit_recorded('business_process');

/* Private: history is append-only; superusers (the retention job runs as one) may delete. */
CREATE FUNCTION cloudconn._ci_change_refuse_write() RETURNS trigger
	LANGUAGE plpgsql
	SET search_path = pg_catalog, pg_temp
	AS $$
BEGIN
	IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), false) THEN
		RAISE EXCEPTION 'the change history of CIs cannot be changed or deleted'
			USING ERRCODE = 'insufficient_privilege',
				  HINT = 'Changes older than cloudconn.history_retention are deleted by the scheduler.';
	END IF;
	RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION cloudconn._ci_change_refuse_write() FROM PUBLIC;
CREATE TRIGGER ci_change_append_only
	BEFORE UPDATE OR DELETE OR TRUNCATE ON cloudconn.ci_change
	FOR EACH STATEMENT EXECUTE FUNCTION cloudconn._ci_change_refuse_write();
ALTER TABLE cloudconn.ci_change ENABLE ALWAYS TRIGGER ci_change_append_only;

/* A change is visible to exactly those who may read its CI now. */
ALTER TABLE cloudconn.ci_change ENABLE ROW LEVEL SECURITY;
ALTER TABLE cloudconn.ci_change FORCE ROW LEVEL SECURITY;
CREATE POLICY ci_change_read ON cloudconn.ci_change FOR SELECT
	USING (ci_id IN (SELECT ci.id FROM cloudconn.configuration_item ci));
GRANT SELECT ON cloudconn.ci_change TO PUBLIC;

/*
 * The history with its actor: the run's connector (by name, visible with the
 * CI as in configuration_items), or the role that edited.  The stored
 * changes, and each CI's 'discovered' entry derived from the CI (no
 * change_id: it is no row of ci_change), both within
 * cloudconn.history_retention (the launcher deletes the stored ones older
 * than that once a day).  Not security_invoker, for the connector's name;
 * the filter is explicit, as the table's policy.
 */
CREATE VIEW cloudconn.ci_changes WITH (security_barrier = true) AS
SELECT c.id AS change_id, c.ci_id, c.run_id, c.changed_at,
	   CASE WHEN c.run_id IS NULL THEN c.role_name ELSE k.name END AS actor,
	   c.connector_id, c.kind, c.field, c.old_value, c.new_value
  FROM cloudconn.ci_change c
  LEFT JOIN cloudconn.configuration_item ci ON ci.id = c.ci_id
  LEFT JOIN cloudconn.connector k ON k.id = c.connector_id
 WHERE c.changed_at >= (SELECT cloudconn._history_horizon())
   AND ((SELECT cloudconn.entity_restriction('ConfigurationItem:read')) IS NULL
		OR (ci.id IS NOT NULL AND cloudconn.entity_permitted(ci.entity_id, 'ConfigurationItem:read')))
UNION ALL
SELECT NULL::bigint, ci.id, ci.discovered_by_run_id, ci.first_discovered_at, k.name,
	   ci.source_connector_id, 'discovered'::text, NULL::text, NULL::jsonb, NULL::jsonb
  FROM cloudconn.configuration_item ci
  LEFT JOIN cloudconn.connector k ON k.id = ci.source_connector_id
 WHERE ci.discovered_by_run_id IS NOT NULL
   AND ci.first_discovered_at >= (SELECT cloudconn._history_horizon())
   AND ((SELECT cloudconn.entity_restriction('ConfigurationItem:read')) IS NULL
		OR cloudconn.entity_permitted(ci.entity_id, 'ConfigurationItem:read'));
GRANT SELECT ON cloudconn.ci_changes TO PUBLIC;

CREATE FUNCTION cloudconn.ci_history(ci_id bigint) RETURNS SETOF cloudconn.ci_changes
	LANGUAGE sql STABLE
	AS $$
SELECT c.* FROM cloudconn.ci_changes c WHERE c.ci_id = $1 ORDER BY c.changed_at, c.change_id NULLS FIRST
$$;
COMMENT ON FUNCTION cloudconn.ci_history(bigint) IS
	'A CI''s timeline, oldest first: discovered, each field a run changed (attributes per top-level key), missing, returned, and each edit of a user-owned field with the role that made it';

CREATE FUNCTION cloudconn.run_changes(run_id bigint) RETURNS SETOF cloudconn.ci_changes
	LANGUAGE sql STABLE
	AS $$
SELECT c.* FROM cloudconn.ci_changes c WHERE c.run_id = $1 ORDER BY c.ci_id, c.change_id NULLS FIRST
$$;
COMMENT ON FUNCTION cloudconn.run_changes(bigint) IS
	'What a run changed, CI by CI: the CIs it discovered, each field it changed, the CIs it marked missing and those that returned';

/* Superuser only: the launcher applies cloudconn.history_retention now rather than at its daily time. */
CREATE FUNCTION cloudconn.history_retention_now() RETURNS boolean
	LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'cloudconn_history_retention_now';
REVOKE ALL ON FUNCTION cloudconn.history_retention_now() FROM PUBLIC;
COMMENT ON FUNCTION cloudconn.history_retention_now() IS
	'Superuser only: makes the scheduler delete the changes older than cloudconn.history_retention now (as it does once a day); false if no scheduler runs';
