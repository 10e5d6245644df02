/*
 * token_key.h
 *		The key that encrypts stored tokens, and where it comes from
 *		(token_key.c; README: Key management): cloudconn.key_file, or the
 *		standard output of cloudconn.key_command.
 */
#ifndef CLOUDCONN_TOKEN_KEY_H
#define CLOUDCONN_TOKEN_KEY_H

#define TOKEN_KEY_BYTES 32
#define TOKEN_KEY_FINGERPRINT_BYTES 8

/* A key, wiped with TokenKeyWipe once used (ERROR paths included). */
typedef struct TokenKey
{
	unsigned char bytes[TOKEN_KEY_BYTES];
	/* what a stored token carries to say which key it is under (not secret) */
	unsigned char fingerprint[TOKEN_KEY_FINGERPRINT_BYTES];
	char		password[TOKEN_KEY_BYTES * 2 + 1];	/* hex, what pgcrypto is given */
} TokenKey;

/*
 * The server's key: cloudconn.key_command's output if it is set, else the
 * key file (created when missing if create_if_missing: encryption; a
 * decryption never creates one, since a new key decrypts nothing).
 */
extern void TokenKeyLoad(TokenKey *key, bool create_if_missing);

/* A key named by a superuser (rotation's old key): a file, or a command. */
extern void TokenKeyFromFile(const char *path, TokenKey *key);
extern void TokenKeyFromCommand(const char *command, TokenKey *key);

extern void TokenKeyWipe(TokenKey *key);

/* How messages name where the server's key comes from (never a value). */
extern const char *TokenKeySourceName(void);

/*
 * At postmaster start, when preloaded: run cloudconn.key_command once, and
 * fail the start if it fails.
 */
extern void TokenKeyCheckAtStart(void);

#endif							/* CLOUDCONN_TOKEN_KEY_H */
