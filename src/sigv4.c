/*
 * sigv4.c
 *		AWS Signature Version 4: canonical request, string to sign, derived
 *		signing key and Authorization header, with OpenSSL's SHA-256 and
 *		HMAC.  Proven on the official test suite (test/t/005_sigv4.pl, with
 *		the vectors in test/sim/vendor/aws-sigv4-test-suite).  Its X.509
 *		variant (IAM Roles Anywhere) signs the same string to sign with a
 *		certificate's private key; the simulator checks it with Python's
 *		cryptography (test/sim/aws_caller_sim.py).
 *
 * Paths are normalised (RFC 3986 dot segments, repeated slashes), as for
 * every service but S3; an S3 request (unnormalized_path) signs its path as
 * it is, each byte but '/' percent-encoded once, and signs the payload's
 * hash as x-amz-content-sha256 (sign_payload_hash), which S3 requires.  The
 * secret key and every derived key are wiped as soon as they have been
 * used; nothing here reaches a message.
 */
#include "postgres.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/formatting.h"
#include "utils/timestamp.h"

#include "sigv4.h"

PG_FUNCTION_INFO_V1(cloudconn_sigv4_sign);

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_X509_RSA "AWS4-X509-RSA-SHA256"
#define SIGV4_X509_ECDSA "AWS4-X509-ECDSA-SHA256"

static void
SigV4Hex(const unsigned char *bytes, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = hex[bytes[i] >> 4];
		out[2 * i + 1] = hex[bytes[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

/* Lower-case hex SHA-256 of data, into out[65]. */
static void
SigV4Sha256Hex(const char *data, size_t len, char *out)
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (EVP_Digest(data, len, digest, &dlen, EVP_sha256(), NULL) != 1)
		elog(ERROR, "SHA-256 failed");
	SigV4Hex(digest, dlen, out);
}

static void
SigV4Hmac(const unsigned char *key, size_t keylen, const char *data, size_t len, unsigned char *out)
{
	unsigned int outlen = 0;

	if (HMAC(EVP_sha256(), key, (int) keylen, (const unsigned char *) data, len, out, &outlen) == NULL ||
		outlen != 32)
		elog(ERROR, "HMAC-SHA256 failed");
}

/* RFC 3986 unreserved characters stay; every other byte is %XX. */
char *
SigV4UriEncode(const char *s, bool keep_slash)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const unsigned char *p = (const unsigned char *) s; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '_' || *p == '.' || *p == '~' || (keep_slash && *p == '/'))
			appendStringInfoChar(&buf, (char) *p);
		else
			appendStringInfo(&buf, "%%%02X", *p);
	}
	return buf.data;
}

static int
SigV4HexValue(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode (a malformed escape is kept as it is). */
static char *
SigV4UriDecode(const char *s, size_t len)
{
	char	   *out = palloc(len + 1);
	size_t		o = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (s[i] == '%' && i + 2 < len &&
			SigV4HexValue(s[i + 1]) >= 0 && SigV4HexValue(s[i + 2]) >= 0)
		{
			out[o++] = (char) (SigV4HexValue(s[i + 1]) * 16 + SigV4HexValue(s[i + 2]));
			i += 2;
		}
		else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

/* Dot segments and repeated slashes removed, then each segment encoded. */
static char *
SigV4CanonicalUri(const char *path)
{
	List	   *segments = NIL;
	StringInfoData buf;
	const char *p = path;
	bool		trailing_slash;
	size_t		len = strlen(path);

	if (len == 0)
		return pstrdup("/");
	trailing_slash = path[len - 1] == '/';
	while (*p)
	{
		const char *end = strchr(p, '/');
		size_t		n = end ? (size_t) (end - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.'))
			;
		else if (n == 2 && p[0] == '.' && p[1] == '.')
		{
			if (segments != NIL)
				segments = list_delete_last(segments);
		}
		else
			segments = lappend(segments, pnstrdup(p, n));
		p += n;
		if (*p == '/')
			p++;
	}
	initStringInfo(&buf);
	{
		ListCell   *lc;

		foreach(lc, segments)
		{
			appendStringInfoChar(&buf, '/');
			appendStringInfoString(&buf, SigV4UriEncode((char *) lfirst(lc), false));
		}
	}
	if (buf.len == 0 || trailing_slash)
		appendStringInfoChar(&buf, '/');
	return buf.data;
}

typedef struct SigV4Pair
{
	char	   *key;
	char	   *value;
} SigV4Pair;

static int
SigV4ComparePairs(const void *a, const void *b)
{
	const SigV4Pair *x = (const SigV4Pair *) a;
	const SigV4Pair *y = (const SigV4Pair *) b;
	int			c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* Parameters decoded, re-encoded strictly, sorted by name then value. */
static char *
SigV4CanonicalQuery(const char *query)
{
	SigV4Pair  *pairs;
	int			n = 0,
				cap = 8;
	StringInfoData buf;
	const char *p = query;

	initStringInfo(&buf);
	if (query == NULL || *query == '\0')
		return buf.data;
	pairs = palloc(sizeof(SigV4Pair) * cap);
	while (*p)
	{
		const char *end = strchr(p, '&');
		size_t		n_part = end ? (size_t) (end - p) : strlen(p);
		const char *eq = memchr(p, '=', n_part);

		if (n_part > 0)
		{
			if (n == cap)
				pairs = repalloc(pairs, sizeof(SigV4Pair) * (cap *= 2));
			pairs[n].key = SigV4UriEncode(SigV4UriDecode(p, eq ? (size_t) (eq - p) : n_part), false);
			pairs[n].value = eq ? SigV4UriEncode(SigV4UriDecode(eq + 1, n_part - (eq - p) - 1), false) : pstrdup("");
			n++;
		}
		p += n_part;
		if (*p == '&')
			p++;
	}
	qsort(pairs, n, sizeof(SigV4Pair), SigV4ComparePairs);
	for (int i = 0; i < n; i++)
		appendStringInfo(&buf, "%s%s=%s", i ? "&" : "", pairs[i].key, pairs[i].value);
	return buf.data;
}

/* Trimmed, with runs of white space collapsed to one space. */
static char *
SigV4TrimValue(const char *v)
{
	StringInfoData buf;
	bool		space = false;

	initStringInfo(&buf);
	while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
		v++;
	for (; *v; v++)
	{
		if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
			space = true;
		else
		{
			if (space && buf.len > 0)
				appendStringInfoChar(&buf, ' ');
			space = false;
			appendStringInfoChar(&buf, *v);
		}
	}
	return buf.data;
}

static int
SigV4CompareNames(const void *a, const void *b)
{
	return strcmp(((const SigV4Pair *) a)->key, ((const SigV4Pair *) b)->key);
}

/*
 * The canonical request and the string to sign of req under algorithm
 * ("AWS4-HMAC-SHA256", or an X.509 one), into out (canonical_request,
 * string_to_sign, payload_hash); *signed_headers and date[9] for the
 * Authorization header.  session_token, if not NULL, is signed as
 * x-amz-security-token.
 */
static void
SigV4StringToSign(const SigV4Request *req, const char *algorithm, const char *session_token,
				  SigV4Signature *out, char **signed_headers_out, char *date)
{
	int			nheaders = list_length(req->header_names);
	SigV4Pair  *headers = palloc(sizeof(SigV4Pair) * (nheaders + 3));
	int			n = 0;
	StringInfoData canonical_headers,
				signed_headers,
				creq,
				sts;
	char		payload_hash[65];
	char		creq_hash[65];
	ListCell   *ln,
			   *lv;

	if (strlen(req->amz_date) != 16)
		elog(ERROR, "invalid x-amz-date");
	memcpy(date, req->amz_date, 8);
	date[8] = '\0';
	SigV4Sha256Hex(req->body ? req->body : "", req->body ? req->body_len : 0, payload_hash);

	/* lower-cased names; a repeated name's values are joined with commas */
	forboth(ln, req->header_names, lv, req->header_values)
	{
		char	   *name = asc_tolower((char *) lfirst(ln), strlen((char *) lfirst(ln)));
		char	   *value = SigV4TrimValue((char *) lfirst(lv));
		int			i;

		for (i = 0; i < n; i++)
		{
			if (strcmp(headers[i].key, name) == 0)
			{
				headers[i].value = psprintf("%s,%s", headers[i].value, value);
				break;
			}
		}
		if (i == n)
		{
			headers[n].key = name;
			headers[n].value = value;
			n++;
		}
	}
	headers[n].key = "x-amz-date";
	headers[n++].value = (char *) req->amz_date;
	if (req->sign_session_token && session_token != NULL)
	{
		headers[n].key = "x-amz-security-token";
		headers[n++].value = (char *) session_token;
	}
	if (req->sign_payload_hash)
	{
		headers[n].key = "x-amz-content-sha256";
		headers[n++].value = payload_hash;
	}
	qsort(headers, n, sizeof(SigV4Pair), SigV4CompareNames);

	/*
	 * The canonical headers and request hold the session token: their
	 * buffers are sized up front, so that no copy of it is left behind by a
	 * reallocation, and the headers are wiped once used (the caller wipes
	 * the canonical request).
	 */
	initStringInfo(&canonical_headers);
	initStringInfo(&signed_headers);
	{
		size_t		total = 0;

		for (int i = 0; i < n; i++)
			total += strlen(headers[i].key) + strlen(headers[i].value) + 2;
		enlargeStringInfo(&canonical_headers, (int) total);
	}
	for (int i = 0; i < n; i++)
	{
		appendStringInfo(&canonical_headers, "%s:%s\n", headers[i].key, headers[i].value);
		appendStringInfo(&signed_headers, "%s%s", i ? ";" : "", headers[i].key);
	}

	{
		char	   *uri = req->unnormalized_path
			? (req->path[0] != '\0' ? SigV4UriEncode(req->path, true) : pstrdup("/"))
			: SigV4CanonicalUri(req->path);
		char	   *query = SigV4CanonicalQuery(req->query);

		initStringInfo(&creq);
		enlargeStringInfo(&creq, (int) (strlen(req->method) + strlen(uri) + strlen(query) +
										canonical_headers.len + signed_headers.len +
										strlen(payload_hash) + 5));
		appendStringInfo(&creq, "%s\n%s\n%s\n%s\n%s\n%s",
						 req->method, uri, query, canonical_headers.data, signed_headers.data,
						 payload_hash);
	}
	explicit_bzero(canonical_headers.data, canonical_headers.len);

	SigV4Sha256Hex(creq.data, creq.len, creq_hash);
	initStringInfo(&sts);
	appendStringInfo(&sts, "%s\n%s\n%s/%s/%s/aws4_request\n%s",
					 algorithm, req->amz_date, date, req->region, req->service, creq_hash);

	out->payload_hash = pstrdup(payload_hash);
	out->canonical_request = creq.data;
	out->string_to_sign = sts.data;
	*signed_headers_out = signed_headers.data;
}

void
SigV4Sign(const SigV4Request *req, const SigV4Credentials *cred, SigV4Signature *out)
{
	StringInfoData key;
	char		date[9];
	char	   *signed_headers;
	unsigned char k1[32],
				k2[32],
				k3[32],
				k4[32],
				sig[32];
	char		sighex[65];

	SigV4StringToSign(req, SIGV4_ALGORITHM, cred->session_token, out, &signed_headers, date);

	/* the derived key chain; every key is wiped after use */
	initStringInfo(&key);
	appendStringInfo(&key, "AWS4%s", cred->secret_access_key);
	SigV4Hmac((unsigned char *) key.data, key.len, date, strlen(date), k1);
	explicit_bzero(key.data, key.len);
	SigV4Hmac(k1, 32, req->region, strlen(req->region), k2);
	SigV4Hmac(k2, 32, req->service, strlen(req->service), k3);
	SigV4Hmac(k3, 32, "aws4_request", 12, k4);
	SigV4Hmac(k4, 32, out->string_to_sign, strlen(out->string_to_sign), sig);
	explicit_bzero(k1, sizeof(k1));
	explicit_bzero(k2, sizeof(k2));
	explicit_bzero(k3, sizeof(k3));
	explicit_bzero(k4, sizeof(k4));
	SigV4Hex(sig, 32, sighex);

	out->authorization = psprintf("%s Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
								  SIGV4_ALGORITHM, cred->access_key_id, date, req->region, req->service,
								  signed_headers, sighex);
}

/*
 * The X.509 variant (IAM Roles Anywhere, README: AWS): the same canonical
 * request and string to sign, under AWS4-X509-RSA-SHA256 or
 * AWS4-X509-ECDSA-SHA256 as the key is, signed with the certificate's
 * private key over SHA-256 (PKCS #1 v1.5 for RSA, a DER-encoded ECDSA
 * signature), in lower-case hex; the credential's key id is the
 * certificate's serial number in decimal.  The request's headers must
 * include X-Amz-X509 (and X-Amz-X509-Chain if sent).  Returns false with
 * *error set if OpenSSL cannot sign; the EVP context is freed on every path
 * (nothing between its creation and release can ERROR: the buffers are
 * allocated first, at the key's largest signature).
 */
bool
SigV4SignX509(const SigV4Request *req, EVP_PKEY *key, const char *serial, SigV4Signature *out,
			  char **error)
{
	const char *algorithm;
	char		date[9];
	char	   *signed_headers;
	EVP_MD_CTX *md;
	unsigned char *sig;
	char	   *hex;
	size_t		siglen;
	bool		ok;

	if (EVP_PKEY_base_id(key) == EVP_PKEY_RSA)
		algorithm = SIGV4_X509_RSA;
	else if (EVP_PKEY_base_id(key) == EVP_PKEY_EC)
		algorithm = SIGV4_X509_ECDSA;
	else
	{
		*error = pstrdup("the private key is neither an RSA nor an EC key");
		return false;
	}
	SigV4StringToSign(req, algorithm, NULL, out, &signed_headers, date);

	/* our buffers first: nothing may ERROR while the EVP context lives */
	siglen = (size_t) Max(EVP_PKEY_size(key), 1);
	sig = palloc(siglen);
	hex = palloc(2 * siglen + 1);
	ERR_clear_error();
	md = EVP_MD_CTX_new();
	ok = md != NULL &&
		EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
		EVP_DigestSign(md, sig, &siglen, (const unsigned char *) out->string_to_sign,
					   strlen(out->string_to_sign)) == 1;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	if (ok)
	{
		SigV4Hex(sig, siglen, hex);
		out->authorization = psprintf("%s Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, Signature=%s",
									  algorithm, serial, date, req->region, req->service,
									  signed_headers, hex);
	}
	pfree(sig);
	if (!ok)
		*error = pstrdup("OpenSSL could not sign the request with the private key");
	return ok;
}

/* The x-amz-date form of a timestamp: YYYYMMDDTHHMMSSZ, UTC. */
char *
SigV4AmzDate(TimestampTz t)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(t, NULL, &tm, &fsec, NULL, NULL) != 0)
		elog(ERROR, "timestamp out of range");
	return psprintf("%04d%02d%02dT%02d%02d%02dZ", tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * cloudconn._sigv4_sign(method, path, query, headers text[] ("Name:value"),
 * body, access_key_id, secret_access_key, session_token, region, service,
 * amz_date, sign_session_token, sign_payload_hash, normalize_path) RETURNS text[] (canonical
 * request, string to sign, Authorization); normalize_path false signs the path
 * as S3 does.  Superuser only: it exists to prove the signer on
 * the official test vectors.
 */
Datum
cloudconn_sigv4_sign(PG_FUNCTION_ARGS)
{
	SigV4Request req;
	SigV4Credentials cred;
	SigV4Signature sig;
	Datum		result[3];
	ArrayType  *headers;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;

	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only superusers may call the signing test hook")));
	for (int i = 0; i < 14; i++)
		if (PG_ARGISNULL(i) && i != 2 && i != 4 && i != 7)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("argument %d must not be null", i + 1)));

	memset(&req, 0, sizeof(req));
	memset(&cred, 0, sizeof(cred));
	req.method = text_to_cstring(PG_GETARG_TEXT_PP(0));
	req.path = text_to_cstring(PG_GETARG_TEXT_PP(1));
	req.query = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	headers = PG_GETARG_ARRAYTYPE_P(3);
	deconstruct_array(headers, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &nelems);
	for (int i = 0; i < nelems; i++)
	{
		char	   *line = nulls[i] ? NULL : TextDatumGetCString(elems[i]);
		char	   *colon = line ? strchr(line, ':') : NULL;

		if (colon == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("headers are \"Name:value\" lines")));
		*colon = '\0';
		req.header_names = lappend(req.header_names, line);
		req.header_values = lappend(req.header_values, colon + 1);
	}
	if (!PG_ARGISNULL(4))
	{
		req.body = text_to_cstring(PG_GETARG_TEXT_PP(4));
		req.body_len = strlen(req.body);
	}
	cred.access_key_id = text_to_cstring(PG_GETARG_TEXT_PP(5));
	cred.secret_access_key = text_to_cstring(PG_GETARG_TEXT_PP(6));
	cred.session_token = PG_ARGISNULL(7) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(7));
	req.region = text_to_cstring(PG_GETARG_TEXT_PP(8));
	req.service = text_to_cstring(PG_GETARG_TEXT_PP(9));
	req.amz_date = text_to_cstring(PG_GETARG_TEXT_PP(10));
	req.sign_session_token = PG_GETARG_BOOL(11);
	req.sign_payload_hash = PG_GETARG_BOOL(12);
	req.unnormalized_path = !PG_GETARG_BOOL(13);

	SigV4Sign(&req, &cred, &sig);
	explicit_bzero((char *) cred.secret_access_key, strlen(cred.secret_access_key));
	result[0] = CStringGetTextDatum(sig.canonical_request);
	result[1] = CStringGetTextDatum(sig.string_to_sign);
	result[2] = CStringGetTextDatum(sig.authorization);
	PG_RETURN_ARRAYTYPE_P(construct_array(result, 3, TEXTOID, -1, false, TYPALIGN_INT));
}
