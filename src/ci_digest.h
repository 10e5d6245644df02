/*
 * ci_digest.h
 *		The digest of a CI's provider-owned fields (ci_digest.c).
 */
#ifndef CLOUDCONN_CI_DIGEST_H
#define CLOUDCONN_CI_DIGEST_H

#include "fmgr.h"
#include "utils/jsonb.h"

#define CI_DIGEST_BYTES 16

/* The provider-owned fields of a CI, as they are stored. */
typedef struct CiDigestFields
{
	const char *ci_type;
	const char *name;
	const char *hostname;		/* or NULL */
	Datum		ip_address;		/* an inet, or (Datum) 0 for NULL */
	const char *os_info;		/* or NULL */
	Jsonb	   *attributes;		/* not toasted */
	const char *scope;			/* or NULL */
} CiDigestFields;

extern void CiDigest(const CiDigestFields *fields, uint8 *digest);

extern Datum cloudconn_ci_digest(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_CI_DIGEST_H */
