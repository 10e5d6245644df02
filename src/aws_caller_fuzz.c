/*
 * aws_caller_fuzz.c
 *		Fuzz targets of the AWS caller credentials' readers (fuzz.h),
 *		included at the end of aws_caller.c when built with `make FUZZ=1`:
 *		the shared credentials file, read from a file as a run reads it,
 *		and the answers of the instance metadata and container endpoints.
 */
#ifndef CLOUDCONN_FUZZ
#error "aws_caller_fuzz.c is included by aws_caller.c in the FUZZ build only"
#endif

#include "fuzz.h"

/*
 * The input as the shared credentials file (written to a file of the data
 * directory's, then read by AwsCallerStatic with the environment's keys
 * unset), for the profiles "default" and "prod".
 */
static bool
AwsCallerFuzzProfiles(const char *path)
{
	static const char *const profiles[] = {"default", "prod"};
	bool		found = false;

	cloudconn_aws_credentials_file = (char *) path;
	for (int i = 0; i < (int) lengthof(profiles); i++)
	{
		AwsCallerCredentials out;
		char	   *error = NULL;

		memset(&out, 0, sizeof(out));
		cloudconn_aws_profile = (char *) profiles[i];
		found |= AwsCallerStatic(&out, &error);
	}
	return found;
}

static bool
AwsCallerFuzzCredentialsFile(const char *data, size_t len)
{
	char		path[MAXPGPATH];
	FILE	   *f;
	char	   *saved_file = cloudconn_aws_credentials_file;
	char	   *saved_profile = cloudconn_aws_profile;
	bool		found;

	snprintf(path, sizeof(path), "pg_fuzz_credentials.%d", MyProcPid);
	if ((f = AllocateFile(path, "wb")) == NULL)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not write \"%s\": %m", path)));
	if (fwrite(data, 1, len, f) != len)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not write \"%s\": %m", path)));
	FreeFile(f);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	PG_TRY();
	{
		found = AwsCallerFuzzProfiles(path);
	}
	PG_FINALLY();
	{
		cloudconn_aws_credentials_file = saved_file;
		cloudconn_aws_profile = saved_profile;
		unlink(path);
	}
	PG_END_TRY();
	return found;
}

/* An answer of the instance metadata or container credentials endpoint. */
static bool
AwsCallerFuzzMetadata(const char *data, size_t len)
{
	HttpResponse resp;
	AwsCallerCredentials out;
	char	   *error = NULL;
	char	   *copy = palloc(len + 1);

	/* the reader wipes the body: a copy */
	memcpy(copy, data, len + 1);
	memset(&out, 0, sizeof(out));
	FuzzResponse(&resp, 200, copy, len);
	return AwsCallerReadMetadataCredentials(&resp, "the AWS container credentials endpoint", &out, &error);
}

static const char *const aws_caller_fuzz_tokens[] = {
	"[default]\n", "[prod]\n", "[ default ]", "aws_access_key_id", "aws_secret_access_key",
	"aws_session_token", " = ", "=", "#", ";", "\r\n", "\n", "[", "]", "\"AccessKeyId\"", "\"SecretAccessKey\"",
	"\"Token\"", "\"Expiration\"", "\"Code\":\"Success\"", "\"Message\"", "\"2026-12-03T06:00:00Z\"",
	"\"2026-13-40T25:61:61Z\"", "\"AKIASIMULATORCALLER2\"", NULL
};

const FuzzTarget aws_caller_fuzz_targets[] = {
	{"aws_credentials_file", AwsCallerFuzzCredentialsFile, aws_caller_fuzz_tokens},
	{"aws_metadata_credentials", AwsCallerFuzzMetadata, aws_caller_fuzz_tokens},
	{NULL, NULL, NULL}
};
