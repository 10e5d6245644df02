-- Tokens are stored encrypted and no SQL path available to a non-superuser
-- returns them: not the table, not the views, not any function.
\set SHOW_CONTEXT never

CREATE FUNCTION pg_temp.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;

SET ROLE regress_eu_manager;
SELECT cloudconn.connector_create(2, 'secret do', 'digitalocean',
	token => 'dop_v1_f00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeed') AS secret_c \gset
RESET ROLE;

-- stored form: cloudconn's header, an OpenPGP message, nothing of the plain text
SELECT substr(token, 1, 4) AS magic,
	   length(token) > 60 AS has_message,
	   position(convert_to('f00dfeed', 'UTF8') IN token) AS plaintext_at,
	   position(convert_to('dop_v1', 'UTF8') IN token) AS prefix_at
  FROM cloudconn.connector WHERE id = :secret_c;
-- encrypting the same token twice gives different ciphertexts (random salt and IV)
SELECT cloudconn._token_encrypt('same') <> cloudconn._token_encrypt('same') AS salted;

-- as a non-superuser with manage: no way to the token or its ciphertext
SET ROLE regress_eu_manager;
SELECT label, pg_temp.try(stmt) AS outcome FROM (VALUES
	('select token column',     $$SELECT token FROM cloudconn.connector$$),
	('select * from table',     $$SELECT * FROM cloudconn.connector$$),
	('whole-row reference',     $$SELECT k FROM cloudconn.connector k$$),
	('token in a WHERE clause', $$SELECT id FROM cloudconn.connector WHERE token IS NOT NULL$$),
	('decrypt oracle',          $$SELECT cloudconn._token_matches(1, 'x')$$)
) AS cases(label, stmt);
COPY cloudconn.connector (token) TO STDOUT;
-- the views have no token column, only has_token
SELECT table_name, string_agg(column_name, ', ' ORDER BY ordinal_position) AS columns
  FROM information_schema.columns
 WHERE table_schema = 'cloudconn' AND table_name IN ('connectors', 'runs', 'run_errors', 'providers', 'resource_types', 'configuration_items')
 GROUP BY table_name ORDER BY table_name;
-- every function a non-superuser may execute, with what it returns: none
-- yields the token (the AWS template refuses DigitalOcean connectors, and
-- connector_test's result is checked for the token in test/t/002)
SELECT p.oid::regprocedure AS function, p.prorettype::regtype AS returns
  FROM pg_proc p
 WHERE p.pronamespace = 'cloudconn'::regnamespace
   AND has_function_privilege('regress_eu_manager', p.oid, 'EXECUTE')
 ORDER BY p.oid::regprocedure::text;
SELECT pg_temp.try(format('SELECT cloudconn.aws_cloudformation_template(%s)', :secret_c)) AS template_of_do;
-- what the connector's readers see of it
SELECT name, provider, has_token, settings FROM cloudconn.connectors WHERE id = :secret_c;
RESET ROLE;

-- the superuser-only comparison hook refuses other roles even if granted
GRANT EXECUTE ON FUNCTION cloudconn._token_matches(bigint, text) TO regress_eu_manager;
SET ROLE regress_eu_manager;
SELECT pg_temp.try(format('SELECT cloudconn._token_matches(%s, %L)', :secret_c, 'x')) AS granted_but_not_superuser;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION cloudconn._token_matches(bigint, text) FROM regress_eu_manager;

-- a damaged stored token gives a clear error naming the connector, never garbage
-- (each damage is done in a transaction that is rolled back)
CREATE FUNCTION pg_temp.damaged(expr text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	outcome text;
	c bigint;
BEGIN
	SELECT id INTO c FROM cloudconn.connector WHERE name = 'secret do';
	BEGIN
		EXECUTE format('UPDATE cloudconn.connector SET token = %s WHERE id = $1', expr) USING c;
		outcome := pg_temp.try(format('SELECT cloudconn._token_matches(%s, %L)', c, 'x'));
		RAISE EXCEPTION 'undo';
	EXCEPTION WHEN raise_exception THEN
		RETURN replace(outcome, c::text, '<id>');
	END;
END;
$$;
SELECT label, pg_temp.damaged(expr) AS outcome FROM (VALUES
	('truncated to the header',     $$substr(token, 1, 12)$$),
	('not cloudconn''s format',     $$'\x00112233445566778899aabbccddeeff'$$),
	('another key''s fingerprint',  $$overlay(token placing '\x0000000000000000' from 5 for 8)$$),
	('corrupted message',           $$substr(token, 1, 16) || '\xdeadbeef'::bytea || substr(token, 21)$$)
) AS cases(label, expr);
SELECT cloudconn._token_matches(:secret_c, 'x') AS intact_but_wrong_candidate;
SELECT cloudconn._token_matches(:secret_c,
	'dop_v1_f00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeedf00dfeed') AS intact_and_right;

-- the key file was created in the data directory: 32 bytes
SELECT (pg_stat_file('cloudconn.key')).size AS key_bytes;

-- rotate_token_key() is for superusers only, even when granted
SET ROLE regress_eu_manager;
SELECT pg_temp.try($$SELECT cloudconn.rotate_token_key(old_key_file => 'cloudconn.key')$$) AS not_granted;
RESET ROLE;
GRANT EXECUTE ON FUNCTION cloudconn.rotate_token_key(text, text) TO regress_eu_manager;
SET ROLE regress_eu_manager;
SELECT pg_temp.try($$SELECT cloudconn.rotate_token_key(old_key_file => 'cloudconn.key')$$) AS granted_but_not_superuser;
RESET ROLE;
REVOKE EXECUTE ON FUNCTION cloudconn.rotate_token_key(text, text) FROM regress_eu_manager;

-- its old key: exactly one of a file and a command, and not the current
-- key (each is refused before any token is touched; the data directory is
-- shown as $PGDATA).  A command must print the key as 64 hexadecimal
-- digits, optionally followed by a newline; here it prints the current key
-- in various forms, or something else, and no message quotes what it printed.
CREATE FUNCTION pg_temp.failure(stmt text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	detail text;
BEGIN
	EXECUTE stmt;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
	RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN detail <> '' THEN ' | ' || detail ELSE '' END;
END;
$$;
SELECT encode(pg_read_binary_file('cloudconn.key'), 'hex') AS key_hex \gset
SELECT md5(string_agg(token::text, ',' ORDER BY id)) AS tokens_before FROM cloudconn.connector \gset
SELECT label, replace(pg_temp.failure(stmt), current_setting('data_directory'), '$PGDATA') AS outcome FROM (VALUES
	('neither',                    $$SELECT cloudconn.rotate_token_key()$$),
	('both',                       $$SELECT cloudconn.rotate_token_key('a', 'b')$$),
	('the current key file',       $$SELECT cloudconn.rotate_token_key(old_key_file => 'cloudconn.key')$$),
	('a missing file',             $$SELECT cloudconn.rotate_token_key(old_key_file => 'no-such.key')$$),
	('a directory',                $$SELECT cloudconn.rotate_token_key(old_key_file => 'base')$$),
	('a file of another size',     $$SELECT cloudconn.rotate_token_key(old_key_file => 'PG_VERSION')$$),
	('command: key and newline',   format($$SELECT cloudconn.rotate_token_key(old_key_command => 'echo %s')$$, :'key_hex')),
	('command: key, no newline',   format($$SELECT cloudconn.rotate_token_key(old_key_command => 'printf %s')$$, :'key_hex')),
	('command: upper case',        format($$SELECT cloudconn.rotate_token_key(old_key_command => 'echo %s')$$, upper(:'key_hex'))),
	('command: two newlines',      format($$SELECT cloudconn.rotate_token_key(old_key_command => 'printf ''%s\n\n''')$$, :'key_hex')),
	('command: CRLF',              format($$SELECT cloudconn.rotate_token_key(old_key_command => 'printf ''%s\r\n''')$$, :'key_hex')),
	('command: 63 digits',         format($$SELECT cloudconn.rotate_token_key(old_key_command => 'printf %s')$$, substr(:'key_hex', 2))),
	('command: not hexadecimal',   format($$SELECT cloudconn.rotate_token_key(old_key_command => 'printf %s')$$, 'g' || substr(:'key_hex', 2))),
	('command: raw bytes',         $$SELECT cloudconn.rotate_token_key(old_key_command => 'head -c 32 /dev/urandom')$$),
	('command: endless output',    $$SELECT cloudconn.rotate_token_key(old_key_command => 'yes')$$),
	('command: nothing',           $$SELECT cloudconn.rotate_token_key(old_key_command => 'true')$$),
	('command: exits 3',           format($$SELECT cloudconn.rotate_token_key(old_key_command => 'echo %s; exit 3')$$, :'key_hex')),
	('command: not found',         $$SELECT cloudconn.rotate_token_key(old_key_command => 'no-such-command-cloudconn')$$),
	('command: killed',            $q$SELECT cloudconn.rotate_token_key(old_key_command => 'kill -9 $$')$q$)
) AS cases(label, stmt);
-- none of it changed a stored token
SELECT md5(string_agg(token::text, ',' ORDER BY id)) = :'tokens_before' AS tokens_unchanged FROM cloudconn.connector;
