/*
 * secrets.h
 *		Stored-token encryption under the token key (token_key.h), its
 *		rotation, and AWS external ids.
 */
#ifndef CLOUDCONN_SECRETS_H
#define CLOUDCONN_SECRETS_H

#include "fmgr.h"

/* Decrypt a stored token (palloc'd; caller zeroes and frees it after use). */
extern char *SecretsDecryptToken(bytea *stored, int64 connector_id);

extern Datum cloudconn_token_encrypt(PG_FUNCTION_ARGS);
extern Datum cloudconn_token_matches(PG_FUNCTION_ARGS);
extern Datum cloudconn_mint_external_id(PG_FUNCTION_ARGS);
extern Datum cloudconn_rotate_token_key(PG_FUNCTION_ARGS);

#endif							/* CLOUDCONN_SECRETS_H */
