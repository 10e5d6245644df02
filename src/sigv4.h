/*
 * sigv4.h
 *		AWS Signature Version 4 (HMAC-SHA256), and its X.509 variant for IAM
 *		Roles Anywhere (RSA or ECDSA over SHA-256), with OpenSSL.
 */
#ifndef CLOUDCONN_SIGV4_H
#define CLOUDCONN_SIGV4_H

#include <openssl/evp.h>

#include "fmgr.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

typedef struct SigV4Credentials
{
	const char *access_key_id;
	const char *secret_access_key;	/* secret */
	const char *session_token;	/* secret; NULL for long-term keys */
} SigV4Credentials;

typedef struct SigV4Request
{
	const char *method;			/* "GET", "POST" */
	const char *path;			/* not percent-encoded, e.g. "/" */
	const char *query;			/* "a=b&c=d" as sent, or NULL */
	List	   *header_names;	/* of char *, as sent (any case) */
	List	   *header_values;	/* of char * */
	const char *body;
	size_t		body_len;
	const char *region;
	const char *service;
	const char *amz_date;		/* "YYYYMMDDTHHMMSSZ" */
	bool		sign_session_token; /* add and sign x-amz-security-token */
	bool		sign_payload_hash;	/* add and sign x-amz-content-sha256 */
	bool		unnormalized_path;	/* S3: sign the path as it is (see sigv4.c) */
} SigV4Request;

typedef struct SigV4Signature
{
	char	   *canonical_request;
	char	   *string_to_sign;
	char	   *authorization;	/* the Authorization header's value */
	char	   *payload_hash;	/* hex SHA-256 of the body (x-amz-content-sha256) */
} SigV4Signature;

extern void SigV4Sign(const SigV4Request *req, const SigV4Credentials *cred, SigV4Signature *out);
extern bool SigV4SignX509(const SigV4Request *req, EVP_PKEY *key, const char *serial,
						  SigV4Signature *out, char **error);
extern char *SigV4AmzDate(TimestampTz t);
extern char *SigV4UriEncode(const char *s, bool keep_slash);

extern Datum cloudconn_sigv4_sign(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_SIGV4_H */
