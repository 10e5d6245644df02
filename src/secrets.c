/*
 * secrets.c
 *		Tokens encrypted at rest, their rotation to a new key, and AWS
 *		external ids.
 *
 * A stored token is "CCT1" || key fingerprint (8 bytes) || an OpenPGP
 * message made by pgcrypto's pgp_sym_encrypt under the token key, which
 * comes from cloudconn.key_file or cloudconn.key_command (token_key.c) and
 * is never in the database: it is handed to pgcrypto as a function argument
 * from C (never in SQL text), and wiped from memory after each use.  The
 * fingerprint lets a wrong key be reported as such instead of as corrupt
 * data, and tells a rotation which tokens are still under the old key.
 * Nothing in this file ever puts a token or a key into a message.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "secrets.h"
#include "standby.h"
#include "token_key.h"
#include "wipe.h"

PG_FUNCTION_INFO_V1(cloudconn_token_encrypt);
PG_FUNCTION_INFO_V1(cloudconn_token_matches);
PG_FUNCTION_INFO_V1(cloudconn_mint_external_id);
PG_FUNCTION_INFO_V1(cloudconn_rotate_token_key);

#define TOKEN_MAGIC "CCT1"
#define TOKEN_MAGIC_LEN 4
#define TOKEN_HEADER_LEN (TOKEN_MAGIC_LEN + TOKEN_KEY_FINGERPRINT_BYTES)

/* AWS allows [\w+=,.@:/-] in an external id; we draw from the alphanumerics. */
#define EXTERNAL_ID_CHARS 40
static const char external_id_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/* pgcrypto's schema: PostgreSQL 15 does not export get_extension_schema(). */
static Oid
SecretsPgcryptoSchema(void)
{
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			nsp = InvalidOid;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("pgcrypto"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		nsp = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);

	if (!OidIsValid(nsp))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"pgcrypto\" is not installed"),
				 errhint("cloudconn requires it: CREATE EXTENSION pgcrypto.")));
	return nsp;
}

/* A pgcrypto function by exact schema, name and signature. */
static Oid
SecretsPgcryptoFunction(const char *name, int nargs, const Oid *argtypes)
{
	char	   *schema = get_namespace_name(SecretsPgcryptoSchema());

	return LookupFuncName(list_make2(makeString(schema), makeString(pstrdup(name))),
						  nargs, argtypes, false);
}

/*
 * A token encrypted under key: the header (magic, the key's fingerprint)
 * and pgcrypto's message.  The plain text and the password handed to
 * pgcrypto are wiped on every path.
 */
static bytea *
SecretsEncryptUnder(const char *plaintext, const TokenKey *key)
{
	static const Oid argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	text	   *password = cstring_to_text(key->password);
	text	   *data = cstring_to_text(plaintext);
	bytea	   *volatile message = NULL;
	bytea	   *stored;
	Size		msglen;

	PG_TRY();
	{
		message = DatumGetByteaPP(OidFunctionCall3(SecretsPgcryptoFunction("pgp_sym_encrypt", 3, argtypes),
												   PointerGetDatum(data),
												   PointerGetDatum(password),
												   CStringGetTextDatum("cipher-algo=aes256")));
	}
	PG_FINALLY();
	{
		explicit_bzero(VARDATA(password), VARSIZE(password) - VARHDRSZ);
		explicit_bzero(VARDATA(data), VARSIZE(data) - VARHDRSZ);
	}
	PG_END_TRY();

	msglen = VARSIZE_ANY_EXHDR(message);
	stored = palloc(VARHDRSZ + TOKEN_HEADER_LEN + msglen);
	SET_VARSIZE(stored, VARHDRSZ + TOKEN_HEADER_LEN + msglen);
	memcpy(VARDATA(stored), TOKEN_MAGIC, TOKEN_MAGIC_LEN);
	memcpy(VARDATA(stored) + TOKEN_MAGIC_LEN, key->fingerprint, TOKEN_KEY_FINGERPRINT_BYTES);
	memcpy(VARDATA(stored) + TOKEN_HEADER_LEN, VARDATA_ANY(message), msglen);
	return stored;
}

/* A token encrypted under the server's key (created if it does not exist yet). */
static bytea *
SecretsEncrypt(const char *plaintext)
{
	TokenKey	key;
	bytea	   *volatile stored = NULL;

	TokenKeyLoad(&key, true);
	PG_TRY();
	{
		stored = SecretsEncryptUnder(plaintext, &key);
	}
	PG_FINALLY();
	{
		TokenKeyWipe(&key);
	}
	PG_END_TRY();
	return stored;
}

/* Copy a detoasted bytea into the caller's (pre-SPI_connect) context. */
static bytea *
SecretsCopyOutOfSpi(Datum d)
{
	bytea	   *b = DatumGetByteaPP(d);
	Size		len = VARSIZE_ANY(b);
	bytea	   *copy = SPI_palloc(len);

	memcpy(copy, b, len);
	return copy;
}

/* The fingerprint of the key a stored token is under, once it is known to be cloudconn's. */
static const unsigned char *
SecretsStoredFingerprint(bytea *stored, int64 connector_id)
{
	if (VARSIZE_ANY_EXHDR(stored) <= TOKEN_HEADER_LEN ||
		memcmp(VARDATA_ANY(stored), TOKEN_MAGIC, TOKEN_MAGIC_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the stored token of connector " INT64_FORMAT " is not in cloudconn's format", connector_id),
				 errhint("Set the token again with connector_set_token().")));
	return (const unsigned char *) VARDATA_ANY(stored) + TOKEN_MAGIC_LEN;
}

static void
SecretsReportWrongKey(int64 connector_id)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("could not decrypt the stored token of connector " INT64_FORMAT " with the key from %s",
					connector_id, TokenKeySourceName()),
			 errdetail("The token was encrypted under a different key than the one from %s.", TokenKeySourceName()),
			 errhint("Restore the key the token was encrypted with; after a change of key, re-encrypt the stored tokens with cloudconn.rotate_token_key(); or set the token again with connector_set_token().")));
}

/*
 * Decrypt a stored token under key, whose fingerprint it carries (the
 * caller checked).  The result is palloc'd; the caller wipes it.
 */
static char *
SecretsDecryptUnder(bytea *stored, int64 connector_id, const TokenKey *key)
{
	static const Oid argtypes[2] = {BYTEAOID, TEXTOID};
	text	   *password;
	bytea	   *message;
	Size		storedlen = VARSIZE_ANY_EXHDR(stored);
	const char *p = VARDATA_ANY(stored);
	Oid			decrypt_fn;
	MemoryContext oldcxt = CurrentMemoryContext;
	text	   *volatile plain = NULL;

	decrypt_fn = SecretsPgcryptoFunction("pgp_sym_decrypt", 2, argtypes);
	password = cstring_to_text(key->password);
	message = palloc(VARHDRSZ + storedlen - TOKEN_HEADER_LEN);
	SET_VARSIZE(message, VARHDRSZ + storedlen - TOKEN_HEADER_LEN);
	memcpy(VARDATA(message), p + TOKEN_HEADER_LEN, storedlen - TOKEN_HEADER_LEN);

	/*
	 * pgcrypto says "Wrong key or corrupt data"; replace that with a message
	 * that says which connector and what to do.  Its message holds no secret,
	 * but ours is the one a user can act on.
	 */
	PG_TRY();
	{
		plain = DatumGetTextPP(OidFunctionCall2(decrypt_fn, PointerGetDatum(message),
												PointerGetDatum(password)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		explicit_bzero(VARDATA(password), VARSIZE(password) - VARHDRSZ);
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		/* cancels, timeouts, out of memory: not a damaged token */
		if (edata->sqlerrcode != ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION)
			PG_RE_THROW();
		FlushErrorState();
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt the stored token of connector " INT64_FORMAT, connector_id),
				 errdetail("The stored ciphertext is damaged."),
				 errhint("Set the token again with connector_set_token().")));
	}
	PG_END_TRY();
	explicit_bzero(VARDATA(password), VARSIZE(password) - VARHDRSZ);
	{
		char	   *result = text_to_cstring((text *) plain);

		explicit_bzero(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
		return result;
	}
}

char *
SecretsDecryptToken(bytea *stored, int64 connector_id)
{
	const unsigned char *fingerprint = SecretsStoredFingerprint(stored, connector_id);
	TokenKey	key;
	char	   *volatile plain = NULL;

	TokenKeyLoad(&key, false);
	PG_TRY();
	{
		if (memcmp(fingerprint, key.fingerprint, TOKEN_KEY_FINGERPRINT_BYTES) != 0)
			SecretsReportWrongKey(connector_id);
		plain = SecretsDecryptUnder(stored, connector_id, &key);
	}
	PG_FINALLY();
	{
		TokenKeyWipe(&key);
	}
	PG_END_TRY();
	return plain;
}

Datum
cloudconn_token_encrypt(PG_FUNCTION_ARGS)
{
	char	   *plaintext = text_to_cstring(PG_GETARG_TEXT_PP(0));
	bytea	   *stored = SecretsEncrypt(plaintext);

	explicit_bzero(plaintext, strlen(plaintext));
	PG_RETURN_BYTEA_P(stored);
}

/*
 * Superuser-only check that a connector's stored token decrypts to the
 * candidate (compared in constant time).  It never returns the token; it
 * exists so that tests and operators can prove the key still works.
 */
Datum
cloudconn_token_matches(PG_FUNCTION_ARGS)
{
	int64		connector_id = PG_GETARG_INT64(0);
	text	   *candidate = PG_GETARG_TEXT_PP(1);
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(connector_id)};
	bytea	   *stored = NULL;
	char	   *plain;
	Size		plainlen;
	Size		candlen = VARSIZE_ANY_EXHDR(candidate);
	const char *cand = VARDATA_ANY(candidate);
	unsigned char diff;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may compare stored tokens")));

	SPI_connect();
	if (SPI_execute_with_args("SELECT token FROM cloudconn.connector WHERE id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read connector " INT64_FORMAT, connector_id);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			stored = SecretsCopyOutOfSpi(d);
	}
	SPI_finish();
	if (stored == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("connector " INT64_FORMAT " has no stored token", connector_id)));

	plain = SecretsDecryptToken(stored, connector_id);
	plainlen = strlen(plain);
	diff = (plainlen != candlen);
	for (Size i = 0; i < Min(plainlen, candlen); i++)
		diff |= (unsigned char) (plain[i] ^ cand[i]);
	explicit_bzero(plain, plainlen);
	PG_RETURN_BOOL(diff == 0);
}

/*
 * Re-encrypt under new_key every stored token under old_key; tokens under
 * new_key already are left alone, a token under neither is an ERROR.  The
 * rows are locked first, so a token set meanwhile waits for this
 * transaction instead of being overwritten by it.
 */
static int64
SecretsReencryptAll(const TokenKey *old_key, const TokenKey *new_key)
{
	Oid			argtypes[2] = {INT8OID, BYTEAOID};
	SPITupleTable *rows;
	uint64		nrows;
	int64		rotated = 0;
	MemoryContext rowcxt;

	SPI_connect();
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn token rotation", ALLOCSET_SMALL_SIZES);
	if (SPI_execute("SELECT id, token FROM cloudconn.connector WHERE token IS NOT NULL ORDER BY id FOR UPDATE",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the stored tokens");
	rows = SPI_tuptable;
	nrows = SPI_processed;
	for (uint64 i = 0; i < nrows; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(rowcxt);
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
		bytea	   *stored = DatumGetByteaPP(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull));
		const unsigned char *fingerprint = SecretsStoredFingerprint(stored, id);

		if (memcmp(fingerprint, new_key->fingerprint, TOKEN_KEY_FINGERPRINT_BYTES) != 0)
		{
			char	   *plain;
			Datum		args[2];

			if (memcmp(fingerprint, old_key->fingerprint, TOKEN_KEY_FINGERPRINT_BYTES) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the stored token of connector " INT64_FORMAT " is under neither the old key nor the current one", id),
						 errdetail("No token was re-encrypted."),
						 errhint("Set that connector's token again with connector_set_token(), then rotate again.")));
			/* wiped when rowcxt goes, an ERROR included */
			plain = WipeOnReset(SecretsDecryptUnder(stored, id, old_key));
			args[0] = Int64GetDatum(id);
			args[1] = PointerGetDatum(SecretsEncryptUnder(plain, new_key));
			if (SPI_execute_with_args("UPDATE cloudconn.connector SET token = $2 WHERE id OPERATOR(pg_catalog.=) $1",
									  2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE || SPI_processed != 1)
				elog(ERROR, "could not store the re-encrypted token of connector " INT64_FORMAT, id);
			rotated++;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);
	}
	SPI_finish();
	return rotated;
}

/*
 * cloudconn.rotate_token_key(old_key_file text, old_key_command text)
 *
 * Superuser only.  Once the server has its new key (README: Key
 * management), re-encrypt under it every stored token still under the old
 * key, which the caller names by exactly one of its arguments, in the
 * caller's transaction: every token or, on any error, none.  Running it
 * again is harmless (tokens under the current key are left alone).
 * Returns how many tokens were re-encrypted.
 */
Datum
cloudconn_rotate_token_key(PG_FUNCTION_ARGS)
{
	TokenKey	old_key;
	TokenKey	new_key;
	volatile int64 rotated = 0;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may rotate the token encryption key")));
	StandbyRefuseWrite("rotate_token_key");
	if (PG_ARGISNULL(0) == PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("exactly one of old_key_file and old_key_command must be given"),
				 errhint("The old key is the one the stored tokens are under now; the new one is the server's (cloudconn.key_file or cloudconn.key_command).")));

	memset(&old_key, 0, sizeof(old_key));
	memset(&new_key, 0, sizeof(new_key));
	PG_TRY();
	{
		if (!PG_ARGISNULL(0))
			TokenKeyFromFile(text_to_cstring(PG_GETARG_TEXT_PP(0)), &old_key);
		else
			TokenKeyFromCommand(text_to_cstring(PG_GETARG_TEXT_PP(1)), &old_key);
		TokenKeyLoad(&new_key, true);
		if (memcmp(old_key.fingerprint, new_key.fingerprint, TOKEN_KEY_FINGERPRINT_BYTES) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the old key is the server's current key"),
					 errhint("Give the server its new key first (cloudconn.key_file or cloudconn.key_command), then name the old one here.")));
		rotated = SecretsReencryptAll(&old_key, &new_key);
	}
	PG_FINALLY();
	{
		TokenKeyWipe(&old_key);
		TokenKeyWipe(&new_key);
	}
	PG_END_TRY();

	ereport(LOG,
			(errmsg("cloudconn: rotate_token_key() re-encrypted " INT64_FORMAT " stored tokens under the current key, as of the commit of its transaction",
					(int64) rotated)));
	PG_RETURN_INT64(rotated);
}

/* 40 characters from 62: about 238 bits, rejection-sampled so unbiased. */
Datum
cloudconn_mint_external_id(PG_FUNCTION_ARGS)
{
	char		id[EXTERNAL_ID_CHARS + 1];
	int			filled = 0;
	const int	alphabet_len = sizeof(external_id_alphabet) - 1;

	while (filled < EXTERNAL_ID_CHARS)
	{
		unsigned char buf[64];

		if (!pg_strong_random(buf, sizeof(buf)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random external id")));
		for (int i = 0; i < (int) sizeof(buf) && filled < EXTERNAL_ID_CHARS; i++)
		{
			/* 248 = 4 * 62: values at or above it would bias the draw */
			if (buf[i] < 248)
				id[filled++] = external_id_alphabet[buf[i] % alphabet_len];
		}
	}
	id[filled] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text(id));
}
