/*
 * aws_caller.h
 *		The AWS caller's credentials (aws_caller.c): what signs hop 1 of the
 *		STS chain, from the source cloudconn.aws_caller_source names:
 *		static keys (the environment, else the shared credentials file),
 *		IAM Roles Anywhere (aws_roles_anywhere.c), or the machine's own
 *		role (a container's credentials endpoint, else EC2 instance
 *		metadata, IMDSv2).  README: AWS.
 *
 * Secrets live only in memory that is wiped when its context goes.
 */
#ifndef CLOUDCONN_AWS_CALLER_H
#define CLOUDCONN_AWS_CALLER_H

#include "datatype/timestamp.h"

#include "http.h"

typedef struct AwsCallerCredentials
{
	char	   *access_key_id;
	char	   *secret_access_key;	/* secret */
	char	   *session_token;	/* secret; NULL for long-term keys */
	TimestampTz expiration;		/* 0: they do not expire */
	const char *source;			/* "static", "roles_anywhere" or "instance" */
	const char *origin;			/* where from, e.g. "EC2 instance metadata, IMDSv2" */
} AwsCallerCredentials;

/* The configured source's name, as cloudconn.aws_caller_source spells it. */
extern const char *AwsCallerSourceName(void);

/*
 * The caller's credentials from the configured source, allocated in the
 * current memory context (secrets wiped with it).  Returns false with
 * *error set to a message users may read (it names settings, never their
 * values; the server log gets paths and URLs).  May make HTTP requests
 * with http; raises only for interrupts and out-of-memory.
 */
extern bool AwsCallerGet(HttpClient *http, AwsCallerCredentials *out, char **error);

/* Shared by the sources (aws_roles_anywhere.c) */

/*
 * Read the string members at paths (dot-separated members and array
 * indexes: "credentialSet.0.credentials.accessKeyId") of a JSON body into
 * values[] (NULL where absent, or not a string), as copies wiped with the
 * current memory context; the parser's own copies are wiped too.  Returns
 * false if the body is not JSON.
 */
extern bool AwsCallerJsonRead(const char *body, size_t len, const char *const *paths, char **values);

/* An ISO 8601 UTC time (2026-01-01T12:00:00Z, fractions allowed), or false. */
extern bool AwsCallerParseTime(const char *s, TimestampTz *out);

/* "Name: value" for a header whose value is a secret, wiped with its context. */
extern char *AwsCallerSecretHeader(const char *name, const char *value);

/* Text a server sent, made fit for a message: at most max bytes, one line. */
extern char *AwsCallerQuoted(const char *text, size_t max);

#endif							/* CLOUDCONN_AWS_CALLER_H */
