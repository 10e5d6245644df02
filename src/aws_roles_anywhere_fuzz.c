/*
 * aws_roles_anywhere_fuzz.c
 *		Fuzz target of the IAM Roles Anywhere answers' readers (fuzz.h),
 *		included at the end of aws_roles_anywhere.c when built with `make
 *		FUZZ=1`: a CreateSession answer read for its credentials, and read
 *		as an error body (the first line also as x-amzn-ErrorType).
 */
#ifndef CLOUDCONN_FUZZ
#error "aws_roles_anywhere_fuzz.c is included by aws_roles_anywhere.c in the FUZZ build only"
#endif

#include "fuzz.h"

static bool
RolesAnywhereFuzzSession(const char *data, size_t len)
{
	HttpResponse resp;
	AwsCallerCredentials out;
	char	   *copy = palloc(len + 1);
	const char *nl = memchr(data, '\n', len);
	bool		read;

	memset(&out, 0, sizeof(out));
	FuzzResponse(&resp, 201, data, len);
	read = RolesAnywhereReadSession(&resp, &out) == NULL;
	/* the error reader wipes the body: a copy */
	memcpy(copy, data, len + 1);
	FuzzResponse(&resp, 403, copy, len);
	resp.header_names = list_make1(pstrdup("x-amzn-errortype"));
	resp.header_values = list_make1(pnstrdup(data, Min(nl ? (size_t) (nl - data) : len, (size_t) 256)));
	(void) RolesAnywhereExplain(&resp);
	return read;
}

static const char *const roles_anywhere_fuzz_tokens[] = {
	"\"credentialSet\"", "\"credentials\"", "\"accessKeyId\"", "\"secretAccessKey\"", "\"sessionToken\"",
	"\"expiration\"", "\"2026-12-03T06:00:00Z\"", "\"message\"", "\"Message\"", "[{}]", "[[]]", "{\"0\":{}}",
	NULL
};

const FuzzTarget roles_anywhere_fuzz_targets[] = {
	{"aws_roles_anywhere", RolesAnywhereFuzzSession, roles_anywhere_fuzz_tokens},
	{NULL, NULL, NULL}
};
