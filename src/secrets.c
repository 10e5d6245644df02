/*
 * secrets.c
 *		Tokens encrypted at rest, and AWS external ids.
 *
 * A stored token is "CCT1" || key fingerprint (8 bytes) || an OpenPGP
 * message made by pgcrypto's pgp_sym_encrypt under the key in
 * cloudconn.key_file.  The key (32 random bytes) lives only in that file: it
 * is read here, handed to pgcrypto as a function argument from C (never in SQL
 * text), and wiped from memory after each use.  The fingerprint lets a wrong
 * key be reported as such instead of as corrupt data.  Nothing in this file
 * ever puts a token or the key into a message.
 */
#include "postgres.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

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
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"

#include "guc.h"
#include "secrets.h"

PG_FUNCTION_INFO_V1(cloudconn_token_encrypt);
PG_FUNCTION_INFO_V1(cloudconn_token_matches);
PG_FUNCTION_INFO_V1(cloudconn_mint_external_id);

#define KEY_BYTES 32
#define FINGERPRINT_BYTES 8
#define TOKEN_MAGIC "CCT1"
#define TOKEN_MAGIC_LEN 4
#define TOKEN_HEADER_LEN (TOKEN_MAGIC_LEN + FINGERPRINT_BYTES)

/* AWS allows [\w+=,.@:/-] in an external id; we draw from the alphanumerics. */
#define EXTERNAL_ID_CHARS 40
static const char external_id_alphabet[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

typedef struct SecretKey
{
	unsigned char bytes[KEY_BYTES];
	unsigned char fingerprint[FINGERPRINT_BYTES];
	char		password[KEY_BYTES * 2 + 1];	/* hex, what pgcrypto is given */
} SecretKey;

/* Absolute path of the key file: the GUC, or cloudconn.key in the data dir. */
static char *
SecretsKeyPath(void)
{
	if (cloudconn_key_file == NULL || cloudconn_key_file[0] == '\0')
		return psprintf("%s/cloudconn.key", DataDir);
	if (is_absolute_path(cloudconn_key_file))
		return pstrdup(cloudconn_key_file);
	return psprintf("%s/%s", DataDir, cloudconn_key_file);
}

static void
SecretsWipeKey(SecretKey *key)
{
	explicit_bzero(key, sizeof(SecretKey));
}

/* First 8 bytes of SHA-256("cloudconn key fingerprint" || key). */
static void
SecretsFingerprint(SecretKey *key)
{
	static const char label[] = "cloudconn key fingerprint";
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool		ok;

	if (ctx == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
		EVP_DigestUpdate(ctx, label, sizeof(label) - 1) == 1 &&
		EVP_DigestUpdate(ctx, key->bytes, KEY_BYTES) == 1 &&
		EVP_DigestFinal_ex(ctx, digest, &digest_len) == 1;
	EVP_MD_CTX_free(ctx);
	if (!ok || digest_len < FINGERPRINT_BYTES)
		elog(ERROR, "could not compute the key fingerprint");
	memcpy(key->fingerprint, digest, FINGERPRINT_BYTES);
	explicit_bzero(digest, sizeof(digest));
}

static void
SecretsFinishKey(SecretKey *key)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < KEY_BYTES; i++)
	{
		key->password[2 * i] = hex[key->bytes[i] >> 4];
		key->password[2 * i + 1] = hex[key->bytes[i] & 0x0f];
	}
	key->password[KEY_BYTES * 2] = '\0';
	SecretsFingerprint(key);
}

/*
 * Create the key file atomically: write a private temporary file, then
 * link() it into place, which fails if another backend got there first (then
 * its key is used).  Returns false if the file already existed.
 */
static bool
SecretsCreateKeyFile(const char *path)
{
	unsigned char bytes[KEY_BYTES];
	char	   *tmppath = psprintf("%s.tmp.%d", path, MyProcPid);
	int			fd;
	bool		created;

	if (!pg_strong_random(bytes, KEY_BYTES))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate a random key for cloudconn.key_file")));

	unlink(tmppath);
	fd = OpenTransientFilePerm(tmppath, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY, S_IRUSR | S_IWUSR);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create key file \"%s\": %m", tmppath)));
	if (write(fd, bytes, KEY_BYTES) != KEY_BYTES || pg_fsync(fd) != 0)
	{
		int			save_errno = errno;

		explicit_bzero(bytes, sizeof(bytes));
		CloseTransientFile(fd);
		unlink(tmppath);
		errno = save_errno ? save_errno : ENOSPC;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write key file \"%s\": %m", tmppath)));
	}
	explicit_bzero(bytes, sizeof(bytes));
	CloseTransientFile(fd);

	if (link(tmppath, path) == 0)
		created = true;
	else if (errno == EEXIST)
		created = false;
	else
	{
		int			save_errno = errno;

		unlink(tmppath);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create key file \"%s\": %m", path)));
	}
	unlink(tmppath);
	/* the key must survive a crash once a token encrypted under it commits */
	{
		char	   *dir = pstrdup(path);

		get_parent_directory(dir);
		fsync_fname_ext(dir[0] ? dir : ".", true, false, ERROR);
	}
	if (created)
		ereport(LOG,
				(errhidestmt(true),
				 errhidecontext(true),
				 errmsg("cloudconn created a new token encryption key in \"%s\"", path),
				 errhint("Back this file up apart from database dumps: stored tokens cannot be decrypted without it.")));
	return created;
}

/*
 * Load the key.  With create_if_missing (encryption), a missing file is
 * created; otherwise (decryption) a missing file is an error, since a new key
 * could never decrypt what is stored.
 */
static void
SecretsLoadKey(SecretKey *key, bool create_if_missing)
{
	char	   *path = SecretsKeyPath();
	struct stat st;
	int			fd;
	ssize_t		nread;
	unsigned char extra;

	if (stat(path, &st) != 0)
	{
		if (errno == ENOENT && create_if_missing)
		{
			SecretsCreateKeyFile(path);
			if (stat(path, &st) != 0)
				ereport(ERROR,
						(errcode_for_file_access(),
						 errmsg("could not stat key file \"%s\": %m", path)));
		}
		else if (errno == ENOENT)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("token encryption key file \"%s\" does not exist", path),
					 errdetail("Stored tokens are encrypted under the key in cloudconn.key_file, which is kept outside the database."),
					 errhint("Restore the key file the tokens were encrypted with, or set the tokens again with connector_set_token().")));
		else
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat key file \"%s\": %m", path)));
	}

	if (!S_ISREG(st.st_mode))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("token encryption key file \"%s\" is not a regular file", path)));
	if (st.st_mode & (S_IRWXG | S_IRWXO))
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("token encryption key file \"%s\" has group or world access", path),
				 errhint("The file must be readable by the server's OS user only: chmod 0600 it.")));

	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open key file \"%s\": %m", path)));
	nread = read(fd, key->bytes, KEY_BYTES);
	if (nread == KEY_BYTES && read(fd, &extra, 1) != 0)
		nread = -2;				/* longer than a key */
	CloseTransientFile(fd);
	if (nread != KEY_BYTES)
	{
		SecretsWipeKey(key);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("token encryption key file \"%s\" is invalid", path),
				 errdetail("The file must hold exactly %d bytes.", KEY_BYTES)));
	}
	SecretsFinishKey(key);
}

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

static bytea *
SecretsEncrypt(const char *plaintext)
{
	static const Oid argtypes[3] = {TEXTOID, TEXTOID, TEXTOID};
	SecretKey	key;
	text	   *password;
	text	   *data;
	bytea	   *message;
	bytea	   *stored;
	Size		msglen;

	SecretsLoadKey(&key, true);
	password = cstring_to_text(key.password);
	data = cstring_to_text(plaintext);
	message = DatumGetByteaPP(OidFunctionCall3(SecretsPgcryptoFunction("pgp_sym_encrypt", 3, argtypes),
											   PointerGetDatum(data),
											   PointerGetDatum(password),
											   CStringGetTextDatum("cipher-algo=aes256")));
	explicit_bzero(VARDATA(password), VARSIZE(password) - VARHDRSZ);
	explicit_bzero(VARDATA(data), VARSIZE(data) - VARHDRSZ);

	msglen = VARSIZE_ANY_EXHDR(message);
	stored = palloc(VARHDRSZ + TOKEN_HEADER_LEN + msglen);
	SET_VARSIZE(stored, VARHDRSZ + TOKEN_HEADER_LEN + msglen);
	memcpy(VARDATA(stored), TOKEN_MAGIC, TOKEN_MAGIC_LEN);
	memcpy(VARDATA(stored) + TOKEN_MAGIC_LEN, key.fingerprint, FINGERPRINT_BYTES);
	memcpy(VARDATA(stored) + TOKEN_HEADER_LEN, VARDATA_ANY(message), msglen);
	SecretsWipeKey(&key);
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

static void
SecretsReportWrongKey(int64 connector_id)
{
	char	   *path = SecretsKeyPath();

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("could not decrypt the stored token of connector " INT64_FORMAT, connector_id),
			 errdetail("The token was encrypted under a different key than the one in \"%s\".", path),
			 errhint("Restore the original key file, or set the token again with connector_set_token().")));
}

char *
SecretsDecryptToken(bytea *stored, int64 connector_id)
{
	static const Oid argtypes[2] = {BYTEAOID, TEXTOID};
	SecretKey	key;
	text	   *password;
	bytea	   *message;
	Size		storedlen = VARSIZE_ANY_EXHDR(stored);
	const char *p = VARDATA_ANY(stored);
	Oid			decrypt_fn;
	MemoryContext oldcxt = CurrentMemoryContext;
	text	   *volatile plain = NULL;

	if (storedlen <= TOKEN_HEADER_LEN || memcmp(p, TOKEN_MAGIC, TOKEN_MAGIC_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the stored token of connector " INT64_FORMAT " is not in cloudconn's format", connector_id),
				 errhint("Set the token again with connector_set_token().")));

	SecretsLoadKey(&key, false);
	if (memcmp(p + TOKEN_MAGIC_LEN, key.fingerprint, FINGERPRINT_BYTES) != 0)
	{
		SecretsWipeKey(&key);
		SecretsReportWrongKey(connector_id);
	}

	decrypt_fn = SecretsPgcryptoFunction("pgp_sym_decrypt", 2, argtypes);
	password = cstring_to_text(key.password);
	SecretsWipeKey(&key);
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
