/*
 * aws_roles_anywhere.c
 *		IAM Roles Anywhere: the AWS caller's temporary credentials from an
 *		X.509 certificate.  CreateSession is POST /sessions with the trust
 *		anchor, profile and role ARNs as query parameters and
 *		durationSeconds in a JSON body, signed as SigV4 is but with the
 *		certificate's private key (sigv4.c, SigV4SignX509): the leaf goes
 *		in X-Amz-X509 (base64 DER), the intermediates in X-Amz-X509-Chain,
 *		and the credential's key id is the certificate's serial number in
 *		decimal.  The 201 answer's credentialSet[0].credentials are the
 *		caller.  README: AWS.
 *
 * Memory and handles: everything is done in a memory context of its own;
 * the OpenSSL objects (certificate, chain, key) are freed by its reset
 * callback, on ERROR paths too, and the key file's text is wiped as soon
 * as OpenSSL has parsed it.  Messages name the settings, never their
 * values; paths go to the server log only.
 */
#include "postgres.h"

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/base64.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "aws_roles_anywhere.h"
#include "guc.h"
#include "sigv4.h"
#include "wipe.h"

/* The session asked for: an hour, AWS's default (the profile may cap it). */
#define RA_DURATION_SECONDS 3600

/* Files this large are no certificate or key. */
#define RA_MAX_FILE (256 * 1024)

/* Intermediates sent in X-Amz-X509-Chain. */
#define RA_MAX_CHAIN 5

#define RA_PREFIX "no AWS credentials for the platform caller: "

/* The OpenSSL objects of one CreateSession, freed with their context. */
typedef struct RolesAnywhereMaterial
{
	X509	   *cert;
	STACK_OF(X509) *chain;
	EVP_PKEY   *key;
	MemoryContextCallback release;
} RolesAnywhereMaterial;

static void
RolesAnywhereRelease(void *arg)
{
	RolesAnywhereMaterial *m = (RolesAnywhereMaterial *) arg;

	/* EVP_PKEY_free clears the private key's numbers before freeing them */
	EVP_PKEY_free(m->key);
	X509_free(m->cert);
	sk_X509_pop_free(m->chain, X509_free);
	m->key = NULL;
	m->cert = NULL;
	m->chain = NULL;
}

/* No passphrase: an encrypted key fails to load instead of prompting. */
static int
RolesAnywhereNoPassphrase(char *buf, int size, int rwflag, void *userdata)
{
	return -1;
}

/*
 * A file's contents (at most RA_MAX_FILE), NUL-terminated, or NULL with
 * *error.  With check_key, the file must be a regular file owned by the
 * server's OS user (mode 0600 or less) or by root (0640 or less), as
 * PostgreSQL requires of ssl_key_file; the check is on the open file.
 * what names the file in messages, setting its setting.
 */
static char *
RolesAnywhereReadFile(const char *path, const char *what, const char *setting, bool check_key,
		   size_t *len, char **error)
{
	FILE	   *f;
	struct stat st;
	char	   *buf;
	size_t		n;

	if (path == NULL || path[0] == '\0')
	{
		*error = psprintf(RA_PREFIX "%s is not set", setting);
		return NULL;
	}
	f = AllocateFile(path, "r");
	if (f == NULL)
	{
		ereport(LOG_SERVER_ONLY,
				(errhidestmt(true),
				 errmsg("cloudconn: could not open the IAM Roles Anywhere %s \"%s\": %m", what, path)));
		*error = psprintf(RA_PREFIX "the IAM Roles Anywhere %s (%s) could not be read", what, setting);
		return NULL;
	}
	if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
	{
		FreeFile(f);
		*error = psprintf(RA_PREFIX "the IAM Roles Anywhere %s (%s) is not a regular file", what, setting);
		return NULL;
	}
	if (check_key)
	{
		if (st.st_uid != geteuid() && st.st_uid != 0)
		{
			FreeFile(f);
			*error = psprintf(RA_PREFIX "the IAM Roles Anywhere %s (%s) must be owned by the database user or root", what, setting);
			return NULL;
		}
		if ((st.st_uid == geteuid() && (st.st_mode & (S_IRWXG | S_IRWXO))) ||
			(st.st_uid == 0 && (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))))
		{
			FreeFile(f);
			ereport(LOG_SERVER_ONLY,
					(errhidestmt(true),
					 errmsg("cloudconn: the IAM Roles Anywhere %s \"%s\" has group or world access", what, path)));
			*error = psprintf(RA_PREFIX "the IAM Roles Anywhere %s (%s) has group or world access: it must have permissions u=rw (0600) or less if owned by the database user, or u=rw,g=r (0640) or less if owned by root",
							  what, setting);
			return NULL;
		}
	}
	buf = palloc(RA_MAX_FILE + 2);
	/* unbuffered: no stdio buffer of libc's keeps a copy of a key */
	setvbuf(f, NULL, _IONBF, 0);
	n = fread(buf, 1, RA_MAX_FILE + 1, f);
	FreeFile(f);
	buf[n] = '\0';
	if (n > RA_MAX_FILE || n == 0)
	{
		WipeBuffer(buf, n);
		pfree(buf);
		*error = psprintf(RA_PREFIX "the IAM Roles Anywhere %s (%s) is %s", what, setting,
						  n == 0 ? "empty" : "larger than 256 kB");
		return NULL;
	}
	*len = n;
	return buf;
}

/* "YYYY-MM-DD HH:MM:SS UTC" of a certificate's time. */
static char *
RolesAnywhereTimeText(const ASN1_TIME *t)
{
	struct tm	tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return pstrdup("an unreadable time");
	return psprintf("%04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* The certificate, its key and its chain, read and checked into m. */
static bool
RolesAnywhereLoad(RolesAnywhereMaterial *m, char **error)
{
	const char *cert_setting = "cloudconn.aws_roles_anywhere_certificate_file";
	const char *key_setting = "cloudconn.aws_roles_anywhere_private_key_file";
	const char *chain_setting = "cloudconn.aws_roles_anywhere_chain_file";
	char	   *text;
	size_t		len;
	BIO		   *bio;

	/* the certificate: the first one of its file */
	if ((text = RolesAnywhereReadFile(cloudconn_aws_roles_anywhere_certificate_file, "certificate file", cert_setting,
						   false, &len, error)) == NULL)
		return false;
	ERR_clear_error();
	bio = BIO_new_mem_buf(text, (int) len);
	m->cert = bio ? PEM_read_bio_X509(bio, NULL, RolesAnywhereNoPassphrase, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (m->cert == NULL)
	{
		*error = psprintf(RA_PREFIX "the IAM Roles Anywhere certificate file (%s) holds no PEM certificate", cert_setting);
		return false;
	}
	if (X509_cmp_current_time(X509_get0_notBefore(m->cert)) >= 0)
	{
		*error = psprintf(RA_PREFIX "the IAM Roles Anywhere certificate (%s) is not valid yet: its validity starts at %s",
						  cert_setting, RolesAnywhereTimeText(X509_get0_notBefore(m->cert)));
		return false;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(m->cert)) <= 0)
	{
		*error = psprintf(RA_PREFIX "the IAM Roles Anywhere certificate (%s) expired at %s",
						  cert_setting, RolesAnywhereTimeText(X509_get0_notAfter(m->cert)));
		return false;
	}

	/* the private key: its text is wiped as soon as OpenSSL has it */
	if ((text = RolesAnywhereReadFile(cloudconn_aws_roles_anywhere_private_key_file, "private key file", key_setting,
						   true, &len, error)) == NULL)
		return false;
	ERR_clear_error();
	bio = BIO_new_mem_buf(text, (int) len);
	m->key = bio ? PEM_read_bio_PrivateKey(bio, NULL, RolesAnywhereNoPassphrase, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	WipeBuffer(text, len);
	pfree(text);
	if (m->key == NULL)
	{
		*error = psprintf(RA_PREFIX "the IAM Roles Anywhere private key file (%s) holds no unencrypted PEM private key", key_setting);
		return false;
	}
	if (EVP_PKEY_base_id(m->key) != EVP_PKEY_RSA && EVP_PKEY_base_id(m->key) != EVP_PKEY_EC)
	{
		*error = psprintf(RA_PREFIX "the IAM Roles Anywhere private key (%s) is neither an RSA nor an EC key", key_setting);
		return false;
	}
	if (X509_check_private_key(m->cert, m->key) != 1)
	{
		ERR_clear_error();
		*error = psprintf(RA_PREFIX "the IAM Roles Anywhere private key (%s) does not match the certificate (%s)",
						  key_setting, cert_setting);
		return false;
	}

	/* the intermediates, if any: every certificate of the chain file */
	if (cloudconn_aws_roles_anywhere_chain_file && cloudconn_aws_roles_anywhere_chain_file[0])
	{
		X509	   *c;
		unsigned long err;

		if ((text = RolesAnywhereReadFile(cloudconn_aws_roles_anywhere_chain_file, "chain file", chain_setting,
							   false, &len, error)) == NULL)
			return false;
		if ((m->chain = sk_X509_new_null()) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		ERR_clear_error();
		bio = BIO_new_mem_buf(text, (int) len);
		while (bio != NULL && sk_X509_num(m->chain) <= RA_MAX_CHAIN &&
			   (c = PEM_read_bio_X509(bio, NULL, RolesAnywhereNoPassphrase, NULL)) != NULL)
		{
			if (sk_X509_push(m->chain, c) == 0)
				X509_free(c);
		}
		BIO_free(bio);
		/* the end of the file is "no start line"; anything else is a broken certificate */
		err = ERR_peek_last_error();
		ERR_clear_error();
		if (sk_X509_num(m->chain) == 0 || sk_X509_num(m->chain) > RA_MAX_CHAIN ||
			(err != 0 && ERR_GET_REASON(err) != PEM_R_NO_START_LINE))
		{
			*error = psprintf(RA_PREFIX "the IAM Roles Anywhere chain file (%s) must hold 1 to %d PEM certificates",
							  chain_setting, RA_MAX_CHAIN);
			return false;
		}
	}
	return true;
}

/* Base64 of a certificate's DER encoding. */
static char *
RolesAnywhereCertBase64(X509 *cert)
{
	int			len = i2d_X509(cert, NULL);
	unsigned char *der;
	unsigned char *p;
	char	   *out;
	int			outlen;

	if (len <= 0)
		elog(ERROR, "could not encode a certificate");
	der = p = palloc(len);
	if (i2d_X509(cert, &p) != len)
		elog(ERROR, "could not encode a certificate");
	out = palloc(pg_b64_enc_len(len) + 1);
	outlen = pg_b64_encode((const char *) der, len, out, pg_b64_enc_len(len));
	if (outlen < 0)
		elog(ERROR, "could not encode a certificate");
	out[outlen] = '\0';
	return out;
}

/*
 * The certificate's serial number in decimal, as the credential's key id.
 * The copy is made without ERROR while OpenSSL's objects live, then they
 * are freed, then an allocation failure is reported.
 */
static char *
RolesAnywhereSerial(X509 *cert)
{
	BIGNUM	   *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char	   *dec = bn ? BN_bn2dec(bn) : NULL;
	char	   *out = NULL;

	if (dec != NULL)
	{
		out = MemoryContextAllocExtended(CurrentMemoryContext, strlen(dec) + 1, MCXT_ALLOC_NO_OOM);
		if (out != NULL)
			strcpy(out, dec);
	}
	OPENSSL_free(dec);
	BN_free(bn);
	if (out == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	return out;
}

/* The region of a rolesanywhere ARN (its fourth field), or NULL. */
static char *
RolesAnywhereArnRegion(const char *arn)
{
	const char *p = arn;

	for (int i = 0; i < 3 && p != NULL; i++)
	{
		p = strchr(p, ':');
		if (p)
			p++;
	}
	return p ? pnstrdup(p, strcspn(p, ":")) : NULL;
}

/* The settings CreateSession needs; false with *error naming the first missing. */
static bool
RolesAnywhereSettings(char **region, char **error)
{
	const char *const names[] = {"cloudconn.aws_roles_anywhere_trust_anchor_arn",
		"cloudconn.aws_roles_anywhere_profile_arn", "cloudconn.aws_roles_anywhere_role_arn"};
	const char *const values[] = {cloudconn_aws_roles_anywhere_trust_anchor_arn,
		cloudconn_aws_roles_anywhere_profile_arn, cloudconn_aws_roles_anywhere_role_arn};
	char	   *anchor_region;

	for (int i = 0; i < 3; i++)
	{
		if (values[i] == NULL || values[i][0] == '\0')
		{
			*error = psprintf(RA_PREFIX "cloudconn.aws_caller_source is roles_anywhere, but %s is not set", names[i]);
			return false;
		}
	}
	/* as AWS's signing helper: the profile lives where the trust anchor does */
	anchor_region = RolesAnywhereArnRegion(cloudconn_aws_roles_anywhere_trust_anchor_arn);
	if (anchor_region == NULL ||
		strcmp(anchor_region, RolesAnywhereArnRegion(cloudconn_aws_roles_anywhere_profile_arn)) != 0)
	{
		*error = pstrdup(RA_PREFIX "the IAM Roles Anywhere trust anchor (cloudconn.aws_roles_anywhere_trust_anchor_arn) and profile (cloudconn.aws_roles_anywhere_profile_arn) are in different regions");
		return false;
	}
	*region = (cloudconn_aws_roles_anywhere_region && cloudconn_aws_roles_anywhere_region[0])
		? pstrdup(cloudconn_aws_roles_anywhere_region) : anchor_region;
	return true;
}

/* "host" or "host:port" of an https origin, as the Host header carries it. */
static char *
RolesAnywhereHostHeader(const char *origin)
{
	char	   *host = pstrdup(origin + strlen("https://"));
	size_t		len = strlen(host);

	if (len > 4 && strcmp(host + len - 4, ":443") == 0)
		host[len - 4] = '\0';
	return host;
}

/* What a failed CreateSession answered: status, AWS's error type and message. */
static char *
RolesAnywhereExplain(HttpResponse *resp)
{
	static const char *const paths[] = {"message", "Message", NULL};
	const char *type = HttpResponseHeader(resp, "x-amzn-errortype");
	char	   *v[2];
	char	   *code = NULL;

	(void) AwsCallerJsonRead(resp->body.data, resp->body.len, paths, v);
	WipeBuffer(resp->body.data, resp->body.len);
	if (type != NULL)
		code = AwsCallerQuoted(pnstrdup(type, strcspn(type, ":")), 64);
	return psprintf(RA_PREFIX "IAM Roles Anywhere CreateSession failed: HTTP %ld %s: %s",
					resp->status, code ? code : "", v[0] ? AwsCallerQuoted(v[0], 512)
					: v[1] ? AwsCallerQuoted(v[1], 512) : "(no message)");
}

/*
 * A CreateSession request: what its signature covers, kept so that a retry
 * is signed again at its own time (RolesAnywhereResign).
 */
typedef struct RolesAnywhereCall
{
	RolesAnywhereMaterial *m;
	SigV4Request sreq;
	const char *host;
	const char *x509;
	const char *chain;			/* or NULL */
	const char *headers[6];
	HttpRequest req;
} RolesAnywhereCall;

/* Sign the call now (X-Amz-Date is the current time) and build its headers. */
static bool
RolesAnywhereSign(RolesAnywhereCall *call, char **error)
{
	SigV4Signature sig;
	int			nheaders = 0;

	call->sreq.amz_date = SigV4AmzDate(GetCurrentTimestamp());
	if (!SigV4SignX509(&call->sreq, call->m->key, RolesAnywhereSerial(call->m->cert), &sig, error))
	{
		*error = psprintf(RA_PREFIX "%s", *error);
		return false;
	}
	call->headers[nheaders++] = psprintf("Host: %s", call->host);
	call->headers[nheaders++] = "Content-Type: application/json";
	call->headers[nheaders++] = psprintf("X-Amz-Date: %s", call->sreq.amz_date);
	call->headers[nheaders++] = psprintf("X-Amz-X509: %s", call->x509);
	if (call->chain != NULL)
		call->headers[nheaders++] = psprintf("X-Amz-X509-Chain: %s", call->chain);
	call->headers[nheaders++] = psprintf("Authorization: %s", sig.authorization);
	call->req.headers = call->headers;
	call->req.nheaders = nheaders;
	return true;
}

/* The HTTP client's refresh_headers: a retry is signed again, now. */
static void
RolesAnywhereResign(void *arg)
{
	char	   *error = NULL;

	if (!RolesAnywhereSign((RolesAnywhereCall *) arg, &error))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s", error)));
}

/* The signed CreateSession request for m, sent; its answer in *resp. */
static bool
RolesAnywhereCreateSession(HttpClient *http, RolesAnywhereMaterial *m, const char *region,
						   HttpResponse *resp, char **error)
{
	const char *endpoint = cloudconn_aws_roles_anywhere_endpoint;
	char	   *origin;
	char	   *query;
	char	   *chain = NULL;
	char	   *body = psprintf("{\"durationSeconds\":%d}", RA_DURATION_SECONDS);
	RolesAnywhereCall call;

	origin = HttpUrlOrigin((endpoint && endpoint[0]) ? endpoint
						   : psprintf("https://rolesanywhere.%s.amazonaws.com", region));
	if (origin == NULL)
	{
		*error = pstrdup(RA_PREFIX "the IAM Roles Anywhere endpoint (cloudconn.aws_roles_anywhere_endpoint, or the region) does not make a well-formed https URL");
		return false;
	}
	memset(&call, 0, sizeof(call));
	call.m = m;
	call.host = RolesAnywhereHostHeader(origin);
	query = psprintf("profileArn=%s&roleArn=%s&trustAnchorArn=%s",
					 SigV4UriEncode(cloudconn_aws_roles_anywhere_profile_arn, false),
					 SigV4UriEncode(cloudconn_aws_roles_anywhere_role_arn, false),
					 SigV4UriEncode(cloudconn_aws_roles_anywhere_trust_anchor_arn, false));
	call.x509 = RolesAnywhereCertBase64(m->cert);
	if (m->chain != NULL)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		for (int i = 0; i < sk_X509_num(m->chain); i++)
			appendStringInfo(&buf, "%s%s", i ? "," : "", RolesAnywhereCertBase64(sk_X509_value(m->chain, i)));
		chain = buf.data;
	}
	call.chain = chain;

	call.sreq.method = "POST";
	call.sreq.path = "/sessions";
	call.sreq.query = query;
	call.sreq.header_names = list_make3("host", "content-type", "x-amz-x509");
	call.sreq.header_values = list_make3((char *) call.host, "application/json", (char *) call.x509);
	if (chain != NULL)
	{
		call.sreq.header_names = lappend(call.sreq.header_names, "x-amz-x509-chain");
		call.sreq.header_values = lappend(call.sreq.header_values, chain);
	}
	call.sreq.body = body;
	call.sreq.body_len = strlen(body);
	call.sreq.region = region;
	call.sreq.service = "rolesanywhere";
	if (!RolesAnywhereSign(&call, error))
		return false;

	call.req.method = "POST";
	call.req.url = psprintf("%s/sessions?%s", origin, query);
	/* messages name the service, never the endpoint (a superuser-only setting) */
	call.req.description = "the AWS IAM Roles Anywhere endpoint";
	call.req.body = body;
	call.req.body_len = strlen(body);
	call.req.refresh_headers = RolesAnywhereResign;
	call.req.refresh_arg = &call;
	if (!HttpPerform(http, &call.req, resp))
	{
		WipeBuffer(resp->body.data, resp->body.len);
		*error = psprintf(RA_PREFIX "%s", resp->transport_error);
		return false;
	}
	return true;
}

/*
 * The credentials from CreateSession, in the caller's context; the work
 * (and every OpenSSL object) in a context of its own, deleted before
 * returning, or with its parent on an ERROR.
 */
bool
AwsRolesAnywhereCredentials(HttpClient *http, AwsCallerCredentials *out, char **error)
{
	static const char *const paths[] = {
		"credentialSet.0.credentials.accessKeyId",
		"credentialSet.0.credentials.secretAccessKey",
		"credentialSet.0.credentials.sessionToken",
		"credentialSet.0.credentials.expiration",
		NULL
	};
	MemoryContext outer = CurrentMemoryContext;
	MemoryContext work = AllocSetContextCreate(CurrentMemoryContext, "cloudconn roles anywhere",
											   ALLOCSET_SMALL_SIZES);
	RolesAnywhereMaterial *m;
	HttpResponse resp;
	char	   *region;
	char	   *v[4];
	char	   *failure = NULL;
	bool		ok = false;

	MemoryContextSwitchTo(work);
	m = palloc0(sizeof(RolesAnywhereMaterial));
	/* registered before any OpenSSL object exists: no window for a leak */
	m->release.func = RolesAnywhereRelease;
	m->release.arg = m;
	MemoryContextRegisterResetCallback(work, &m->release);

	if (RolesAnywhereSettings(&region, &failure) && RolesAnywhereLoad(m, &failure) &&
		RolesAnywhereCreateSession(http, m, region, &resp, &failure))
	{
		if (resp.status != 201)
			failure = RolesAnywhereExplain(&resp);
		else
		{
			/* the answer's secrets are copied into the caller's context */
			MemoryContextSwitchTo(outer);
			if (!AwsCallerJsonRead(resp.body.data, resp.body.len, paths, v))
				failure = pstrdup(RA_PREFIX "IAM Roles Anywhere CreateSession answered with a body that is not JSON");
			else if (v[0] == NULL || v[1] == NULL || v[2] == NULL || v[3] == NULL ||
					 !AwsCallerParseTime(v[3], &out->expiration))
				failure = pstrdup(RA_PREFIX "the IAM Roles Anywhere CreateSession answer lacks credentialSet[0].credentials (accessKeyId, secretAccessKey, sessionToken, expiration)");
			else
			{
				out->access_key_id = v[0];
				out->secret_access_key = v[1];
				out->session_token = v[2];
				out->origin = "IAM Roles Anywhere";
				ok = true;
			}
			MemoryContextSwitchTo(work);
			WipeBuffer(resp.body.data, resp.body.len);
		}
	}
	MemoryContextSwitchTo(outer);
	if (!ok)
		*error = pstrdup(failure ? failure : RA_PREFIX "IAM Roles Anywhere failed");
	MemoryContextDelete(work);
	return ok;
}
