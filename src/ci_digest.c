/*
 * ci_digest.c
 *		The digest of a CI's provider-owned fields (ci_type, name, hostname,
 *		ip_address, os_info, attributes, discovery_scope): SHA-256 over
 *		their stored bytes, each field preceded by whether it is NULL and its
 *		length, cut to 16 bytes.  The CI table keeps it in a generated column
 *		(provider_digest), so it follows every write, a user's edit of a
 *		provider field included; a run computes the same digest of what it
 *		listed and leaves a resource whose digest is unchanged out of the
 *		merge (discovery.c).  Equal fields always give equal digests; a
 *		digest that differs only makes the merge compare the fields.
 */
#include "postgres.h"

#include <openssl/evp.h>

#include "utils/builtins.h"
#include "utils/inet.h"

#include "ci_digest.h"

PG_FUNCTION_INFO_V1(cloudconn_ci_digest);

/*
 * The digest and its context, made once per process: a run digests every
 * resource it lists, and OpenSSL 3's implicit fetch of an algorithm takes
 * locks each time.  They live as long as the process (a reused context is
 * initialised afresh for each digest, ERROR or not).
 */
static const EVP_MD *ci_digest_md = NULL;
static EVP_MD_CTX *ci_digest_ctx = NULL;

static EVP_MD_CTX *
CiDigestContext(void)
{
	if (ci_digest_ctx == NULL)
	{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
		ci_digest_md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
		ci_digest_md = EVP_sha256();
#endif
		ci_digest_ctx = ci_digest_md ? EVP_MD_CTX_new() : NULL;
		if (ci_digest_ctx == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	}
	return ci_digest_ctx;
}

/* A field: NULL or not, its length, its bytes. */
static void
CiDigestField(EVP_MD_CTX *ctx, const void *data, uint32 len, bool isnull, bool *ok)
{
	uint8		header[5];

	header[0] = isnull ? 0 : 1;
	len = isnull ? 0 : len;
	memcpy(header + 1, &len, sizeof(uint32));
	*ok = *ok && EVP_DigestUpdate(ctx, header, sizeof(header)) == 1 &&
		(len == 0 || EVP_DigestUpdate(ctx, data, len) == 1);
}

static void
CiDigestText(EVP_MD_CTX *ctx, const char *s, bool *ok)
{
	CiDigestField(ctx, s, s ? (uint32) strlen(s) : 0, s == NULL, ok);
}

void
CiDigest(const CiDigestFields *f, uint8 *digest)
{
	EVP_MD_CTX *ctx = CiDigestContext();
	unsigned char full[EVP_MAX_MD_SIZE];
	unsigned int full_len = 0;
	bool		ok;

	ok = EVP_DigestInit_ex(ctx, ci_digest_md, NULL) == 1;
	CiDigestText(ctx, f->ci_type, &ok);
	CiDigestText(ctx, f->name, &ok);
	CiDigestText(ctx, f->hostname, &ok);
	if (f->ip_address != (Datum) 0)
	{
		inet	   *ip = DatumGetInetPP(f->ip_address);

		CiDigestField(ctx, VARDATA_ANY(ip), VARSIZE_ANY_EXHDR(ip), false, &ok);
	}
	else
		CiDigestField(ctx, NULL, 0, true, &ok);
	CiDigestText(ctx, f->os_info, &ok);
	CiDigestField(ctx, VARDATA(f->attributes), VARSIZE(f->attributes) - VARHDRSZ, false, &ok);
	CiDigestText(ctx, f->scope, &ok);
	ok = ok && EVP_DigestFinal_ex(ctx, full, &full_len) == 1 && full_len >= CI_DIGEST_BYTES;
	if (!ok)
		elog(ERROR, "could not compute a CI digest");
	memcpy(digest, full, CI_DIGEST_BYTES);
}

/* A text argument as a C string, or NULL. */
static const char *
CiDigestArg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/*
 * cloudconn._ci_digest(ci_type text, name text, hostname text, ip_address
 * inet, os_info text, attributes jsonb, discovery_scope text) RETURNS bytea,
 * immutable: the expression of configuration_item.provider_digest.
 */
Datum
cloudconn_ci_digest(PG_FUNCTION_ARGS)
{
	CiDigestFields f;
	bytea	   *result = palloc(VARHDRSZ + CI_DIGEST_BYTES);

	f.ci_type = CiDigestArg(fcinfo, 0);
	f.name = CiDigestArg(fcinfo, 1);
	f.hostname = CiDigestArg(fcinfo, 2);
	f.ip_address = PG_ARGISNULL(3) ? (Datum) 0 : PG_GETARG_DATUM(3);
	f.os_info = CiDigestArg(fcinfo, 4);
	if (PG_ARGISNULL(5))
		PG_RETURN_NULL();
	f.attributes = PG_GETARG_JSONB_P(5);
	f.scope = CiDigestArg(fcinfo, 6);
	SET_VARSIZE(result, VARHDRSZ + CI_DIGEST_BYTES);
	CiDigest(&f, (uint8 *) VARDATA(result));
	PG_RETURN_BYTEA_P(result);
}
