/*
 * aws_caller.c
 *		The AWS caller's credentials, from cloudconn.aws_caller_source:
 *		static (AWS_ACCESS_KEY_ID and friends in the server's environment,
 *		else a profile of the shared credentials file), roles_anywhere
 *		(aws_roles_anywhere.c), or instance (a container's credentials
 *		endpoint when AWS_CONTAINER_CREDENTIALS_* say so, else EC2 instance
 *		metadata with IMDSv2 session tokens, never IMDSv1).  README: AWS.
 *
 * The metadata endpoints are plain http on the local link: their requests
 * are HttpRequest.metadata ones, which http.c sends only to a literal
 * loopback or link-local address, never through a proxy, with short
 * timeouts.  Secrets (keys, session tokens, the container's authorization
 * token, the IMDSv2 session token) live in memory wiped with its context;
 * messages name settings and environment variables, never their values.
 */
#include "postgres.h"

#include <pwd.h>
#include <unistd.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "storage/fd.h"
#include "utils/datetime.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "aws_caller.h"
#include "aws_roles_anywhere.h"
#include "guc.h"
#include "provider.h"
#include "wipe.h"

/* What the metadata endpoints answer is small: a larger body is refused. */
#define AWS_CALLER_MAX_BODY (64 * 1024)

/* A container's authorization token file is small too. */
#define AWS_CALLER_MAX_TOKEN_FILE (16 * 1024)

/* An IMDSv2 session token serves the two reads that follow it, no more. */
#define AWS_IMDS_TOKEN_TTL "300"

#define AWS_IMDS_DEFAULT "http://169.254.169.254"
#define AWS_CONTAINER_DEFAULT "http://169.254.170.2"

#define AWS_JSON_MAX_DEPTH 8

const char *
AwsCallerSourceName(void)
{
	switch (cloudconn_aws_caller_source)
	{
		case GUC_AWS_CALLER_ROLES_ANYWHERE:
			return "roles_anywhere";
		case GUC_AWS_CALLER_INSTANCE:
			return "instance";
		default:
			return "static";
	}
}

/* ------------------------------------------------------------------------
 * Shared helpers
 * ------------------------------------------------------------------------ */

char *
AwsCallerSecretHeader(const char *name, const char *value)
{
	size_t		nlen = strlen(name);
	size_t		vlen = strlen(value);
	char	   *line = palloc(nlen + vlen + 1);

	/* allocated once at its size: no smaller copy is left behind unwiped */
	memcpy(line, name, nlen);
	memcpy(line + nlen, value, vlen + 1);
	return WipeOnReset(line);
}

char *
AwsCallerQuoted(const char *text, size_t max)
{
	size_t		len;
	char	   *out;

	if (text == NULL)
		return NULL;
	len = strlen(text);
	if (len > max)
	{
		len = max;
		while (len > 0 && ((unsigned char) text[len] & 0xC0) == 0x80)
			len--;
	}
	out = palloc(len + 4);
	memcpy(out, text, len);
	for (size_t i = 0; i < len; i++)
	{
		if ((unsigned char) out[i] < 0x20 || out[i] == 0x7f)
			out[i] = ' ';
	}
	strcpy(out + len, strlen(text) > len ? "..." : "");
	return ProviderMessageText(out);
}

bool
AwsCallerParseTime(const char *s, TimestampTz *out)
{
	struct pg_tm tm;
	int			usec = 0;
	int			n = 0;
	const char *p;

	if (s == NULL || strlen(s) < 20 ||
		sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 || n != 19)
		return false;
	/* the digits and separators exactly where ISO 8601 puts them */
	for (int i = 0; i < 19; i++)
	{
		char		want = "9999-99-99T99:99:99"[i];

		if (want == '9' ? !(s[i] >= '0' && s[i] <= '9') : s[i] != want)
			return false;
	}
	p = s + 19;
	if (*p == '.')
	{
		int			digits = 0;

		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
		{
			if (digits < 6)
				usec = usec * 10 + (*p - '0');
		}
		if (digits == 0)
			return false;
		for (; digits < 6; digits++)
			usec *= 10;
	}
	if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return false;
	if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
		tm.tm_mday > day_tab[isleap(tm.tm_year)][tm.tm_mon - 1] ||
		tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 59)
		return false;
	return tm2timestamp(&tm, usec, NULL, out) == 0;
}

/* Where the JSON reader is: the path of the value being parsed. */
typedef struct AwsJsonState
{
	const char *const *paths;
	char	  **values;
	int			depth;
	char	   *segment[AWS_JSON_MAX_DEPTH + 1];	/* segment[d]: the member or index at depth d */
	int			index[AWS_JSON_MAX_DEPTH + 1];	/* next array index at depth d */
	bool		in_array[AWS_JSON_MAX_DEPTH + 1];
	char		numbuf[AWS_JSON_MAX_DEPTH + 1][12];
} AwsJsonState;

static void
AwsJsonEnter(void *state, bool array)
{
	AwsJsonState *s = (AwsJsonState *) state;

	s->depth++;
	if (s->depth <= AWS_JSON_MAX_DEPTH)
	{
		s->in_array[s->depth] = array;
		s->index[s->depth] = 0;
		s->segment[s->depth] = NULL;
	}
}

static void
AwsJsonObjectStart(void *state)
{
	AwsJsonEnter(state, false);
}

static void
AwsJsonArrayStart(void *state)
{
	AwsJsonEnter(state, true);
}

static void
AwsJsonLeave(void *state)
{
	((AwsJsonState *) state)->depth--;
}

static void
AwsJsonField(void *state, char *fname, bool isnull)
{
	AwsJsonState *s = (AwsJsonState *) state;

	if (s->depth >= 1 && s->depth <= AWS_JSON_MAX_DEPTH)
		s->segment[s->depth] = fname;
}

static void
AwsJsonElement(void *state, bool isnull)
{
	AwsJsonState *s = (AwsJsonState *) state;

	if (s->depth >= 1 && s->depth <= AWS_JSON_MAX_DEPTH)
	{
		snprintf(s->numbuf[s->depth], sizeof(s->numbuf[s->depth]), "%d", s->index[s->depth]++);
		s->segment[s->depth] = s->numbuf[s->depth];
	}
}

/* Whether the current path is path ("a.0.b"). */
static bool
AwsJsonAt(AwsJsonState *s, const char *path)
{
	const char *p = path;

	if (s->depth < 1 || s->depth > AWS_JSON_MAX_DEPTH)
		return false;
	for (int d = 1; d <= s->depth; d++)
	{
		size_t		n = strcspn(p, ".");

		if (s->segment[d] == NULL || strlen(s->segment[d]) != n || strncmp(s->segment[d], p, n) != 0)
			return false;
		p += n;
		if (d < s->depth)
		{
			if (*p != '.')
				return false;
			p++;
		}
	}
	return *p == '\0';
}

/* A scalar: kept (as a wiped copy) if wanted; the parser's copy is wiped. */
static void
AwsJsonScalar(void *state, char *token, JsonTokenType tokentype)
{
	AwsJsonState *s = (AwsJsonState *) state;

	if (tokentype == JSON_TOKEN_STRING)
	{
		for (int i = 0; s->paths[i] != NULL; i++)
		{
			if (s->values[i] == NULL && AwsJsonAt(s, s->paths[i]))
				s->values[i] = WipeCopy(token);
		}
	}
	if (token != NULL)
	{
		WipeString(token);
		pfree(token);
	}
}

bool
AwsCallerJsonRead(const char *body, size_t len, const char *const *paths, char **values)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	AwsJsonState state;
	JsonParseErrorType rc;
	char	   *copy;

	for (int i = 0; paths[i] != NULL; i++)
		values[i] = NULL;
	if (body == NULL || len == 0 || len > AWS_CALLER_MAX_BODY || !ProviderUtf8Valid(body, len))
		return false;
	copy = palloc(len + 1);
	memcpy(copy, body, len);
	copy[len] = '\0';
	memset(&state, 0, sizeof(state));
	state.paths = paths;
	state.values = values;
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &state;
	sem.object_start = AwsJsonObjectStart;
	sem.object_end = AwsJsonLeave;
	sem.array_start = AwsJsonArrayStart;
	sem.array_end = AwsJsonLeave;
	sem.object_field_start = AwsJsonField;
	sem.array_element_start = AwsJsonElement;
	sem.scalar = AwsJsonScalar;

	lex = makeJsonLexContextCstringLen(copy, (int) len, PG_UTF8, true);
	/* the de-escaped strings are built here: sized once, so never reallocated unwiped */
	enlargeStringInfo(lex->strval, (int) len + 1);
	rc = pg_parse_json(lex, &sem);
	WipeBuffer(lex->strval->data, lex->strval->maxlen);
	WipeBuffer(copy, len);
	pfree(copy);
	if (rc != JSON_SUCCESS)
	{
		for (int i = 0; paths[i] != NULL; i++)
		{
			/*
			 * Wiped now, freed with the context: a WipeCopy has a reset
			 * callback that writes to it, which must not find it freed.
			 */
			WipeString(values[i]);
			values[i] = NULL;
		}
		return false;
	}
	return true;
}

/*
 * The four credential members an answer of the metadata endpoints has
 * (AccessKeyId, SecretAccessKey, Token, Expiration), into out; false with
 * *error (naming what) when the body is not such an answer.
 */
static bool
AwsCallerReadMetadataCredentials(HttpResponse *resp, const char *what, AwsCallerCredentials *out,
								 char **error)
{
	static const char *const paths[] = {"AccessKeyId", "SecretAccessKey", "Token", "Expiration", "Code", "Message", NULL};
	char	   *v[6];
	bool		json = AwsCallerJsonRead(resp->body.data, resp->body.len, paths, v);

	WipeBuffer(resp->body.data, resp->body.len);
	if (!json)
	{
		*error = psprintf("no AWS credentials for the platform caller: %s answered with a body that is not JSON", what);
		return false;
	}
	if (v[4] != NULL && strcmp(v[4], "Success") != 0)
	{
		*error = psprintf("no AWS credentials for the platform caller: %s answered %s: %s", what,
						  AwsCallerQuoted(v[4], 64), v[5] ? AwsCallerQuoted(v[5], 256) : "");
		return false;
	}
	if (v[0] == NULL || v[1] == NULL || v[2] == NULL || v[3] == NULL ||
		!AwsCallerParseTime(v[3], &out->expiration))
	{
		*error = psprintf("no AWS credentials for the platform caller: the answer of %s lacks AccessKeyId, SecretAccessKey, Token or a valid Expiration", what);
		return false;
	}
	if (strlen(v[0]) > 128 || strspn(v[0], "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != strlen(v[0]))
	{
		*error = psprintf("no AWS credentials for the platform caller: %s answered with a malformed AccessKeyId", what);
		return false;
	}
	out->access_key_id = v[0];
	out->secret_access_key = v[1];
	out->session_token = v[2];
	return true;
}

/* ------------------------------------------------------------------------
 * static: the environment, else the shared credentials file
 * ------------------------------------------------------------------------ */

static char *
AwsCredentialsPath(void)
{
	const char *env = getenv("AWS_SHARED_CREDENTIALS_FILE");
	const char *home;
	struct passwd *pw;

	if (cloudconn_aws_credentials_file && cloudconn_aws_credentials_file[0])
		return pstrdup(cloudconn_aws_credentials_file);
	if (env && env[0])
		return pstrdup(env);
	pw = getpwuid(geteuid());
	home = pw ? pw->pw_dir : getenv("HOME");
	return home ? psprintf("%s/.aws/credentials", home) : NULL;
}

static char *
AwsTrim(char *s)
{
	char	   *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		*--end = '\0';
	return s;
}

/* One line of the shared credentials file, read into out if in the profile. */
static void
AwsCredentialsLine(char *line, bool *in_profile, AwsCallerCredentials *out)
{
	char	   *l = AwsTrim(line);
	char	   *eq;

	if (l[0] == '[')
	{
		char	   *end = strchr(l, ']');

		if (end)
			*end = '\0';
		*in_profile = strcmp(AwsTrim(l + 1), cloudconn_aws_profile) == 0;
		return;
	}
	if (!*in_profile || l[0] == '#' || l[0] == ';' || (eq = strchr(l, '=')) == NULL)
		return;
	*eq = '\0';
	if (strcmp(AwsTrim(l), "aws_access_key_id") == 0)
		out->access_key_id = pstrdup(AwsTrim(eq + 1));
	else if (strcmp(AwsTrim(l), "aws_secret_access_key") == 0)
		out->secret_access_key = WipeCopy(AwsTrim(eq + 1));
	else if (strcmp(AwsTrim(l), "aws_session_token") == 0)
		out->session_token = WipeCopy(AwsTrim(eq + 1));
}

/*
 * The caller's keys, by the AWS convention: the server's environment, else
 * the profile cloudconn.aws_profile of the shared credentials file.
 */
static bool
AwsCallerStatic(AwsCallerCredentials *out, char **error)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	char	   *path;
	FILE	   *f;
	char		line[4096];
	char		stdio_buffer[BUFSIZ];

	if (id && id[0] && secret && secret[0])
	{
		const char *token = getenv("AWS_SESSION_TOKEN");

		out->access_key_id = pstrdup(id);
		out->secret_access_key = WipeCopy(secret);
		out->session_token = (token && token[0]) ? WipeCopy(token) : NULL;
		out->origin = "the server's environment";
		return true;
	}

	path = AwsCredentialsPath();
	f = path ? AllocateFile(path, "r") : NULL;
	if (f == NULL)
	{
		/* the path is a superuser-only setting's value: the server log only */
		ereport(LOG_SERVER_ONLY,
				(errhidestmt(true),
				 path ? errmsg("cloudconn: could not read the AWS shared credentials file \"%s\": %m", path)
				 : errmsg("cloudconn: no AWS shared credentials file: the server's OS user has no home directory")));
		*error = pstrdup("no AWS credentials for the platform caller: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set in the server's environment, and the shared credentials file (cloudconn.aws_credentials_file) could not be read");
		return false;
	}
	/* stdio reads the file through a buffer of ours, wiped on every path */
	setvbuf(f, stdio_buffer, _IOFBF, sizeof(stdio_buffer));
	PG_TRY();
	{
		bool		in_profile = false;

		while (fgets(line, sizeof(line), f) != NULL)
			AwsCredentialsLine(line, &in_profile, out);
	}
	PG_FINALLY();
	{
		FreeFile(f);
		WipeBuffer(line, sizeof(line));
		WipeBuffer(stdio_buffer, sizeof(stdio_buffer));
	}
	PG_END_TRY();
	if (out->access_key_id == NULL || out->secret_access_key == NULL)
	{
		ereport(LOG_SERVER_ONLY,
				(errhidestmt(true),
				 errmsg("cloudconn: no AWS credentials in profile \"%s\" of \"%s\"",
						cloudconn_aws_profile, path)));
		*error = pstrdup("no AWS credentials for the platform caller in the profile cloudconn.aws_profile of the shared credentials file (cloudconn.aws_credentials_file)");
		return false;
	}
	out->origin = "the shared credentials file";
	return true;
}

/* ------------------------------------------------------------------------
 * instance: a container's credentials endpoint
 * ------------------------------------------------------------------------ */

/*
 * The container's authorization token: the contents of the file
 * AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names (read at every use: the
 * platform rotates it), else AWS_CONTAINER_AUTHORIZATION_TOKEN, else none.
 * As the AWS SDKs do, a token with a line break is refused rather than
 * trimmed.  *token is wiped with the current context.
 */
static bool
AwsCallerContainerToken(char **token, char **error)
{
	const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *value = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");

	*token = NULL;
	if (file && file[0])
	{
		FILE	   *f = AllocateFile(file, "r");
		char	   *buf;
		size_t		n;

		if (f == NULL)
		{
			ereport(LOG_SERVER_ONLY,
					(errhidestmt(true),
					 errmsg("cloudconn: could not read the container authorization token file \"%s\": %m", file)));
			*error = pstrdup("no AWS credentials for the platform caller: the file AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names could not be read");
			return false;
		}
		buf = palloc0(AWS_CALLER_MAX_TOKEN_FILE + 2);
		/* unbuffered: no stdio buffer of libc's keeps a copy of the token */
		setvbuf(f, NULL, _IONBF, 0);
		n = fread(buf, 1, AWS_CALLER_MAX_TOKEN_FILE + 1, f);
		FreeFile(f);
		if (n > AWS_CALLER_MAX_TOKEN_FILE || strlen(buf) != n)
		{
			WipeBuffer(buf, n);
			pfree(buf);
			*error = pstrdup(n > AWS_CALLER_MAX_TOKEN_FILE
							 ? "no AWS credentials for the platform caller: the file AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE names is larger than 16 kB"
							 : "no AWS credentials for the platform caller: the container authorization token contains a NUL byte");
			return false;
		}
		*token = WipeOnReset(buf);
	}
	else if (value && value[0])
		*token = WipeCopy(value);
	if (*token != NULL && (*token)[0] == '\0')
		*token = NULL;
	if (*token != NULL && strpbrk(*token, "\r\n") != NULL)
	{
		*error = pstrdup("no AWS credentials for the platform caller: the container authorization token contains a line break, which no header may carry");
		return false;
	}
	return true;
}

/* The credentials of a container's endpoint at url (GET, the token if any). */
static bool
AwsCallerContainer(HttpClient *http, const char *url, AwsCallerCredentials *out, char **error)
{
	const char *what = "the AWS container credentials endpoint";
	const char *headers[1];
	HttpRequest req;
	HttpResponse resp;
	char	   *token;

	if (!AwsCallerContainerToken(&token, error))
		return false;
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.description = what;
	req.metadata = true;
	req.headers = headers;
	if (token != NULL)
		headers[req.nheaders++] = AwsCallerSecretHeader("Authorization: ", token);
	if (!HttpPerform(http, &req, &resp))
	{
		/* whatever came before the failure may be part of a secret */
		WipeBuffer(resp.body.data, resp.body.len);
		*error = psprintf("no AWS credentials for the platform caller: %s", resp.transport_error);
		return false;
	}
	if (resp.status != 200)
	{
		WipeBuffer(resp.body.data, resp.body.len);
		*error = psprintf("no AWS credentials for the platform caller: %s answered HTTP %ld to GET%s",
						  what, resp.status,
						  (resp.status == 401 || resp.status == 403)
						  ? " (check AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or AWS_CONTAINER_AUTHORIZATION_TOKEN)" : "");
		return false;
	}
	if (!AwsCallerReadMetadataCredentials(&resp, what, out, error))
		return false;
	out->origin = "the container credentials endpoint";
	return true;
}

/* ------------------------------------------------------------------------
 * instance: EC2 instance metadata, IMDSv2
 * ------------------------------------------------------------------------ */

/* A request to EC2 instance metadata; false with *error if no answer came. */
static bool
AwsImdsCall(HttpClient *http, const char *method, const char *url, const char *header,
			HttpResponse *resp, char **error)
{
	HttpRequest req;
	const char *headers[1] = {header};

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.description = "the EC2 instance metadata service";
	req.metadata = true;
	req.headers = headers;
	req.nheaders = 1;
	if (strcmp(method, "PUT") == 0)
	{
		req.body = "";
		req.body_len = 0;
	}
	if (!HttpPerform(http, &req, resp))
	{
		WipeBuffer(resp->body.data, resp->body.len);
		*error = psprintf("no AWS credentials for the platform caller: %s", resp->transport_error);
		return false;
	}
	return true;
}

/*
 * The instance role's credentials, IMDSv2 only: a session token first
 * (PUT /latest/api/token with its TTL), then the role's name and its
 * credentials with that token.  An answer other than 200 to the PUT is an
 * error: there is no fallback to IMDSv1's token-less requests, which an
 * instance that requires IMDSv2 refuses anyway and which SSRF can reach.
 */
static bool
AwsCallerImds(HttpClient *http, AwsCallerCredentials *out, char **error)
{
	const char *disabled = getenv("AWS_EC2_METADATA_DISABLED");
	char	   *base;
	char	   *token;
	char	   *token_header;
	char	   *role;
	HttpResponse resp;
	size_t		n;

	if (disabled && pg_strcasecmp(disabled, "true") == 0)
	{
		*error = pstrdup("no AWS credentials for the platform caller: EC2 instance metadata is disabled (AWS_EC2_METADATA_DISABLED is true in the server's environment)");
		return false;
	}
	base = pstrdup((cloudconn_aws_ec2_metadata_endpoint && cloudconn_aws_ec2_metadata_endpoint[0])
				   ? cloudconn_aws_ec2_metadata_endpoint : AWS_IMDS_DEFAULT);
	for (n = strlen(base); n > 0 && base[n - 1] == '/'; n--)
		base[n - 1] = '\0';

	if (!AwsImdsCall(http, "PUT", psprintf("%s/latest/api/token", base),
					 "X-aws-ec2-metadata-token-ttl-seconds: " AWS_IMDS_TOKEN_TTL, &resp, error))
		return false;
	if (resp.status != 200)
	{
		WipeBuffer(resp.body.data, resp.body.len);
		*error = psprintf("no AWS credentials for the platform caller: the EC2 instance metadata service answered HTTP %ld to PUT /latest/api/token, so no IMDSv2 session token; cloudconn never falls back to IMDSv1",
						  resp.status);
		return false;
	}
	token = WipeCopy(resp.body.data);
	WipeBuffer(resp.body.data, resp.body.len);
	n = strlen(token);
	if (n == 0 || n > 4096 || strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-") != n)
	{
		*error = pstrdup("no AWS credentials for the platform caller: the EC2 instance metadata service answered PUT /latest/api/token with a malformed session token");
		return false;
	}
	token_header = AwsCallerSecretHeader("X-aws-ec2-metadata-token: ", token);

	if (!AwsImdsCall(http, "GET", psprintf("%s/latest/meta-data/iam/security-credentials/", base),
					 token_header, &resp, error))
		return false;
	if (resp.status != 200)
	{
		*error = psprintf("no AWS credentials for the platform caller: the EC2 instance metadata service answered HTTP %ld to GET /latest/meta-data/iam/security-credentials/%s",
						  resp.status, resp.status == 404 ? " (no IAM role is attached to the instance)" : "");
		return false;
	}
	role = pnstrdup(resp.body.data, strcspn(resp.body.data, "\r\n"));
	n = strlen(role);
	if (n == 0 || n > 64 || strspn(role, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@_-") != n)
	{
		*error = pstrdup("no AWS credentials for the platform caller: the EC2 instance metadata service named no valid IAM role");
		return false;
	}

	if (!AwsImdsCall(http, "GET", psprintf("%s/latest/meta-data/iam/security-credentials/%s", base, role),
					 token_header, &resp, error))
		return false;
	if (resp.status != 200)
	{
		WipeBuffer(resp.body.data, resp.body.len);
		*error = psprintf("no AWS credentials for the platform caller: the EC2 instance metadata service answered HTTP %ld to GET the credentials of the instance's role",
						  resp.status);
		return false;
	}
	if (!AwsCallerReadMetadataCredentials(&resp, "the EC2 instance metadata service", out, error))
		return false;
	out->origin = "EC2 instance metadata, IMDSv2";
	return true;
}

/*
 * instance: the container endpoint when the environment names one (the
 * relative URI first, as the AWS SDKs do), else EC2 instance metadata.
 */
static bool
AwsCallerInstance(HttpClient *http, AwsCallerCredentials *out, char **error)
{
	const char *relative = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");

	if (relative && relative[0])
	{
		const char *base = (cloudconn_aws_container_endpoint && cloudconn_aws_container_endpoint[0])
			? cloudconn_aws_container_endpoint : AWS_CONTAINER_DEFAULT;
		size_t		n = strlen(base);

		if (relative[0] != '/')
		{
			*error = pstrdup("no AWS credentials for the platform caller: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI does not start with /");
			return false;
		}
		while (n > 0 && base[n - 1] == '/')
			n--;
		return AwsCallerContainer(http, psprintf("%.*s%s", (int) n, base, relative), out, error);
	}
	if (full && full[0])
		return AwsCallerContainer(http, full, out, error);
	return AwsCallerImds(http, out, error);
}

/* ------------------------------------------------------------------------
 * The entry point
 * ------------------------------------------------------------------------ */

bool
AwsCallerGet(HttpClient *http, AwsCallerCredentials *out, char **error)
{
	bool		ok;

	memset(out, 0, sizeof(*out));
	out->source = AwsCallerSourceName();
	switch (cloudconn_aws_caller_source)
	{
		case GUC_AWS_CALLER_ROLES_ANYWHERE:
			ok = AwsRolesAnywhereCredentials(http, out, error);
			break;
		case GUC_AWS_CALLER_INSTANCE:
			ok = AwsCallerInstance(http, out, error);
			break;
		default:
			ok = AwsCallerStatic(out, error);
			break;
	}
	if (!ok)
	{
		const char *source = out->source;

		memset(out, 0, sizeof(*out));
		out->source = source;
	}
	return ok;
}

#ifdef CLOUDCONN_FUZZ
#include "aws_caller_fuzz.c"
#endif
