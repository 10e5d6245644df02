/*
 * aws.c
 *		The AWS provider: the caller's static credentials (environment, else
 *		the shared credentials file), STS AssumeRole into the platform's
 *		discovery role (hop 1), then into the customer's role with the
 *		connector's external id (hop 2), then EC2 DescribeRegions and
 *		DescribeInstances (MaxResults=1000, NextToken) in several regions
 *		at once (cloudconn.aws_max_parallel_regions).
 *		Every request is signed with SigV4 (sigv4.c).  Instances become CIs
 *		of type aws_ec2_instance with their ARN as external_id (SPEC §5).
 *
 * Secrets (secret keys, session tokens) live only in memory that is wiped
 * when it goes; the external id is sent only to STS and never put in a
 * message.  XML is parsed with libxml2 without network access or entity
 * expansion; documents are freed with the memory context that holds them.
 */
#include "postgres.h"

#include <pwd.h>
#include <unistd.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "aws_instances.h"
#include "guc.h"
#include "http.h"
#include "provider.h"
#include "sigv4.h"
#include "xml_guard.h"

#define AWS_STS_VERSION "2011-06-15"
#define AWS_EC2_VERSION "2016-11-15"
#define AWS_SESSION_SECONDS 900		/* the shortest AssumeRole allows */
#define AWS_RENEW_MARGIN_SECS 300	/* renew temporary credentials this early */
#define AWS_MAX_XML_BYTES (32 * 1024 * 1024)

typedef struct AwsCredentials
{
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;	/* NULL for the caller's static keys */
	TimestampTz expiration;		/* 0 for static keys */
} AwsCredentials;

/* The outcome of one AWS call that failed: for messages a customer can act on. */
typedef struct AwsError
{
	long		status;			/* 0 for a transport failure */
	char	   *code;			/* AWS error code, or NULL */
	char	   *message;		/* AWS message, or the transport error */
} AwsError;

/* ------------------------------------------------------------------------
 * Memory hygiene
 * ------------------------------------------------------------------------ */

static void
AwsWipeString(void *arg)
{
	char	   *s = (char *) arg;

	explicit_bzero(s, strlen(s));
}

/*
 * A string holding a secret, allocated in the current context: it is wiped
 * when the context is reset or deleted, ERROR included.
 */
static char *
AwsWipeLater(char *s)
{
	MemoryContextCallback *cb = palloc(sizeof(MemoryContextCallback));

	cb->func = AwsWipeString;
	cb->arg = s;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	return s;
}

static char *
AwsSecretCopy(const char *s)
{
	return AwsWipeLater(pstrdup(s));
}

/*
 * "Name: value" for a header whose value is a secret, allocated once at its
 * size (psprintf may try a smaller buffer first and free it unwiped).
 */
static char *
AwsSecretHeader(const char *name, const char *value)
{
	size_t		nlen = strlen(name);
	size_t		vlen = strlen(value);
	char	   *line = palloc(nlen + vlen + 1);

	memcpy(line, name, nlen);
	memcpy(line + nlen, value, vlen + 1);
	return AwsWipeLater(line);
}

/*
 * Free a document, wiping its text first: an STS answer holds a secret key
 * and a session token, which xmlFreeDoc would hand back to malloc as they
 * are.  Text the document's dictionary owns is short markup-like text
 * (never a key), and it is not ours to write.  (xmlReadMemory's own copy
 * of the input is freed inside libxml2, out of our reach.)
 */
static void
AwsFreeXml(void *arg)
{
	xmlDocPtr	doc = (xmlDocPtr) arg;
	xmlNodePtr	n = doc->children;

	while (n != NULL)
	{
		if ((n->type == XML_TEXT_NODE || n->type == XML_CDATA_SECTION_NODE) && n->content != NULL &&
			(doc->dict == NULL || !xmlDictOwns(doc->dict, n->content)))
			explicit_bzero(n->content, xmlStrlen(n->content));
		/* depth first, without recursion: child, else next, else an ancestor's next */
		if (n->type == XML_ELEMENT_NODE && n->children != NULL)
			n = n->children;
		else
		{
			while (n != NULL && n->next == NULL)
				n = (n->parent == (xmlNodePtr) doc) ? NULL : n->parent;
			if (n != NULL)
				n = n->next;
		}
	}
	xmlFreeDoc(doc);
}

/*
 * Parse XML (no network, no entity expansion, no DTD loading); the document
 * is freed, its text wiped, with the current memory context.  NULL if it is
 * not XML.
 */
static xmlDocPtr
AwsParseXml(const char *body, size_t len)
{
	xmlDocPtr	doc;
	MemoryContextCallback *cb;

	if (len == 0 || len > AWS_MAX_XML_BYTES || !XmlMarkupIsBounded(body, len, XML_GUARD_MAX_MARKUP))
		return NULL;
	doc = xmlReadMemory(body, (int) len, NULL, NULL,
						XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL)
		return NULL;
	/* AWS never sends a DTD; one here could only declare entities to expand */
	if (doc->intSubset != NULL || doc->extSubset != NULL)
	{
		AwsFreeXml(doc);
		return NULL;
	}
	cb = palloc(sizeof(MemoryContextCallback));
	cb->func = AwsFreeXml;
	cb->arg = doc;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	return doc;
}

static bool
AwsIsElement(xmlNodePtr n, const char *name)
{
	return n != NULL && n->type == XML_ELEMENT_NODE && strcmp((const char *) n->name, name) == 0;
}

/* First child element named name (namespaces ignored), or NULL. */
static xmlNodePtr
AwsChild(xmlNodePtr parent, const char *name)
{
	if (parent == NULL)
		return NULL;
	for (xmlNodePtr n = parent->children; n != NULL; n = n->next)
	{
		if (AwsIsElement(n, name))
			return n;
	}
	return NULL;
}

/* First descendant element named name, depth first. */
static xmlNodePtr
AwsFind(xmlNodePtr node, const char *name)
{
	for (xmlNodePtr n = node; n != NULL; n = n->next)
	{
		xmlNodePtr	found;

		if (AwsIsElement(n, name))
			return n;
		if ((found = AwsFind(n->children, name)) != NULL)
			return found;
	}
	return NULL;
}

/* Text of an element (palloc'd), or NULL. */
static char *
AwsText(xmlNodePtr n)
{
	xmlChar    *content;
	char	   *s;

	if (n == NULL)
		return NULL;
	content = xmlNodeGetContent(n);
	if (content == NULL)
		return NULL;
	s = pstrdup((const char *) content);
	explicit_bzero(content, xmlStrlen(content));	/* may be a secret */
	xmlFree(content);
	return s;
}

static char *
AwsChildText(xmlNodePtr parent, const char *name)
{
	return AwsText(AwsChild(parent, name));
}

/* ------------------------------------------------------------------------
 * Caller credentials
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
AwsCredentialsLine(char *line, bool *in_profile, AwsCredentials *out)
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
		out->secret_access_key = AwsSecretCopy(AwsTrim(eq + 1));
	else if (strcmp(AwsTrim(l), "aws_session_token") == 0)
		out->session_token = AwsSecretCopy(AwsTrim(eq + 1));
}

/*
 * The caller's keys, by the AWS convention: the server's environment, else
 * the profile cloudconn.aws_profile of the shared credentials file.
 */
static bool
AwsCallerCredentials(AwsCredentials *out, char **error)
{
	const char *id = getenv("AWS_ACCESS_KEY_ID");
	const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
	char	   *path;
	FILE	   *f;
	char		line[4096];
	char		stdio_buffer[BUFSIZ];

	memset(out, 0, sizeof(*out));
	if (id && id[0] && secret && secret[0])
	{
		const char *token = getenv("AWS_SESSION_TOKEN");

		out->access_key_id = pstrdup(id);
		out->secret_access_key = AwsSecretCopy(secret);
		out->session_token = (token && token[0]) ? AwsSecretCopy(token) : NULL;
		return true;
	}

	path = AwsCredentialsPath();
	f = path ? AllocateFile(path, "r") : NULL;
	if (f == NULL)
	{
		*error = psprintf("no AWS credentials for the platform caller: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set in the server's environment, and the shared credentials file %s%s%s could not be read",
						  path ? "\"" : "", path ? path : "(none)", path ? "\"" : "");
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
		explicit_bzero(line, sizeof(line));
		explicit_bzero(stdio_buffer, sizeof(stdio_buffer));
	}
	PG_END_TRY();
	if (out->access_key_id == NULL || out->secret_access_key == NULL)
	{
		*error = psprintf("no AWS credentials for the platform caller in profile \"%s\" of \"%s\"",
						  cloudconn_aws_profile, path);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------------
 * Signed Query API requests
 * ------------------------------------------------------------------------ */

static char *
AwsEndpoint(const char *pattern, const char *region)
{
	StringInfoData buf;
	const char *p = pattern;
	const char *at;

	initStringInfo(&buf);
	while ((at = strstr(p, "{region}")) != NULL)
	{
		appendBinaryStringInfo(&buf, p, at - p);
		appendStringInfoString(&buf, region);
		p = at + strlen("{region}");
	}
	appendStringInfoString(&buf, p);
	return buf.data;
}

static char *
AwsStsEndpoint(void)
{
	if (cloudconn_aws_sts_endpoint && cloudconn_aws_sts_endpoint[0])
		return AwsEndpoint(cloudconn_aws_sts_endpoint, cloudconn_aws_region);
	return psprintf("https://sts.%s.amazonaws.com", cloudconn_aws_region);
}

/* "host" or "host:port" of an https URL, as the Host header carries it. */
static char *
AwsHostHeader(const char *url)
{
	char	   *origin = HttpUrlOrigin(url);
	char	   *host;
	size_t		len;

	if (origin == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("AWS endpoint \"%s\" is not an https URL", url)));
	host = origin + strlen("https://");
	len = strlen(host);
	if (len > 4 && strcmp(host + len - 4, ":443") == 0)
		host[len - 4] = '\0';
	return host;
}

/*
 * One signed Query API request: what is sent, and what came back.  The
 * request's strings live in the memory context current when it was
 * prepared; the header lines carrying secrets are wiped with it.
 */
typedef struct AwsCallState
{
	SigV4Signature sig;
	const char *headers[5];
	HttpRequest request;
	HttpResponse response;
} AwsCallState;

/* Sign a POST of body to url, ready to send (HttpPerform or a batch). */
static void
AwsCallPrepare(AwsCallState *call, const char *url, const char *region, const char *service,
			   const AwsCredentials *cred, const char *body)
{
	SigV4Request sreq;
	SigV4Credentials scred;
	char	   *host = AwsHostHeader(url);
	int			nheaders = 0;

	memset(call, 0, sizeof(*call));
	memset(&sreq, 0, sizeof(sreq));
	sreq.method = "POST";
	sreq.path = "/";
	sreq.header_names = list_make2("host", "content-type");
	sreq.header_values = list_make2(host, "application/x-www-form-urlencoded; charset=utf-8");
	sreq.body = body;
	sreq.body_len = strlen(body);
	sreq.region = region;
	sreq.service = service;
	sreq.amz_date = SigV4AmzDate(GetCurrentTimestamp());
	sreq.sign_session_token = true;
	scred.access_key_id = cred->access_key_id;
	scred.secret_access_key = cred->secret_access_key;
	scred.session_token = cred->session_token;
	SigV4Sign(&sreq, &scred, &call->sig);

	call->headers[nheaders++] = psprintf("Host: %s", host);
	call->headers[nheaders++] = "Content-Type: application/x-www-form-urlencoded; charset=utf-8";
	call->headers[nheaders++] = psprintf("X-Amz-Date: %s", sreq.amz_date);
	if (cred->session_token)
		call->headers[nheaders++] = AwsSecretHeader("X-Amz-Security-Token: ", cred->session_token);
	call->headers[nheaders++] = AwsSecretHeader("Authorization: ", call->sig.authorization);
	explicit_bzero(call->sig.authorization, strlen(call->sig.authorization));
	explicit_bzero(call->sig.canonical_request, strlen(call->sig.canonical_request));

	call->request.method = "POST";
	call->request.url = url;
	call->request.headers = call->headers;
	call->request.nheaders = nheaders;
	call->request.body = body;
	call->request.body_len = strlen(body);
}

/*
 * Text AWS sent (an error's code or message) made fit for a message of
 * ours: at most max bytes, cut on a character boundary (libxml2 hands out
 * UTF-8), control characters made spaces, in the database's encoding.  NULL
 * stays NULL.
 */
static char *
AwsQuoted(char *text, size_t max)
{
	size_t		len;
	bool		cut;

	if (text == NULL)
		return NULL;
	len = strlen(text);
	cut = len > max;
	if (cut)
	{
		len = max;
		while (len > 0 && ((unsigned char) text[len] & 0xC0) == 0x80)
			len--;
	}
	for (size_t i = 0; i < len; i++)
	{
		if ((unsigned char) text[i] < 0x20 || text[i] == 0x7f)
			text[i] = ' ';
	}
	return ProviderMessageText(cut ? psprintf("%.*s...", (int) len, text) : text);
}

/*
 * Whether a sent call (ok: what HttpPerform or HttpBatchWait said) was
 * answered with a 200.  If not, *err describes the failure: AWS's code and
 * message, or the transport error.
 */
static bool
AwsCallSucceeded(AwsCallState *call, bool ok, AwsError *err)
{
	HttpResponse *resp = &call->response;
	xmlDocPtr	doc;

	memset(err, 0, sizeof(*err));
	if (!ok)
	{
		/* whatever came before the failure may be part of a secret */
		explicit_bzero(resp->body.data, resp->body.len);
		err->message = resp->transport_error;
		return false;
	}
	if (resp->status == 200)
		return true;
	err->status = resp->status;
	doc = AwsParseXml(resp->body.data, resp->body.len);
	explicit_bzero(resp->body.data, resp->body.len);
	if (doc != NULL)
	{
		xmlNodePtr	e = AwsFind(xmlDocGetRootElement(doc), "Error");

		err->code = AwsQuoted(AwsChildText(e, "Code"), 64);
		err->message = AwsQuoted(AwsChildText(e, "Message"), 512);
	}
	if (err->message == NULL)
		err->message = psprintf("HTTP %ld", resp->status);
	return false;
}

/*
 * The parsed XML body of a call answered with a 200, or NULL with *err
 * describing the failure.
 */
static xmlDocPtr
AwsCallFinish(AwsCallState *call, bool ok, AwsError *err)
{
	HttpResponse *resp = &call->response;
	xmlDocPtr	doc;

	if (!AwsCallSucceeded(call, ok, err))
		return NULL;
	doc = AwsParseXml(resp->body.data, resp->body.len);
	/* an STS answer carries secrets: the raw body goes as soon as it is parsed */
	explicit_bzero(resp->body.data, resp->body.len);
	if (doc == NULL)
	{
		err->status = resp->status;
		err->message = pstrdup("the response is not well-formed XML");
	}
	return doc;
}

/* A signed Query API call, waited for. */
static xmlDocPtr
AwsCall(HttpClient *http, const char *url, const char *region, const char *service,
		const AwsCredentials *cred, const char *body, AwsError *err)
{
	AwsCallState call;
	bool		ok;

	AwsCallPrepare(&call, url, region, service, cred, body);
	ok = HttpPerform(http, &call.request, &call.response);
	return AwsCallFinish(&call, ok, err);
}

static char *
AwsFormValue(const char *v)
{
	return SigV4UriEncode(v, false);
}

/* STS AssumeRole; the new credentials live in the current context. */
static bool
AwsAssumeRole(HttpClient *http, const AwsCredentials *cred, const char *role_arn,
			  const char *session_name, const char *external_id,
			  AwsCredentials *out, char **assumed_arn, AwsError *err)
{
	StringInfoData body;
	xmlDocPtr	doc;
	xmlNodePtr	result,
				creds;
	char	   *expiration;

	initStringInfo(&body);
	appendStringInfo(&body, "Action=AssumeRole&Version=%s&RoleArn=%s&RoleSessionName=%s&DurationSeconds=%d",
					 AWS_STS_VERSION, AwsFormValue(role_arn), AwsFormValue(session_name), AWS_SESSION_SECONDS);
	if (external_id)
		appendStringInfo(&body, "&ExternalId=%s", AwsFormValue(external_id));
	doc = AwsCall(http, AwsStsEndpoint(), cloudconn_aws_region, "sts", cred, body.data, err);
	explicit_bzero(body.data, body.len);
	if (doc == NULL)
		return false;

	if (!AwsIsElement(xmlDocGetRootElement(doc), "AssumeRoleResponse"))
	{
		err->message = pstrdup("the AssumeRole response is not an AssumeRoleResponse");
		return false;
	}
	result = AwsFind(xmlDocGetRootElement(doc), "AssumeRoleResult");
	creds = AwsChild(result, "Credentials");
	memset(out, 0, sizeof(*out));
	out->access_key_id = AwsChildText(creds, "AccessKeyId");
	{
		char	   *secret = AwsChildText(creds, "SecretAccessKey");
		char	   *token = AwsChildText(creds, "SessionToken");

		out->secret_access_key = secret ? AwsSecretCopy(secret) : NULL;
		out->session_token = token ? AwsSecretCopy(token) : NULL;
		if (secret)
			explicit_bzero(secret, strlen(secret));
		if (token)
			explicit_bzero(token, strlen(token));
	}
	expiration = AwsChildText(creds, "Expiration");
	if (assumed_arn)
	{
		char	   *arn = AwsChildText(AwsChild(result, "AssumedRoleUser"), "Arn");

		*assumed_arn = arn ? ProviderMessageText(arn) : NULL;
	}
	if (out->access_key_id == NULL || out->secret_access_key == NULL || out->session_token == NULL)
	{
		err->message = pstrdup("the AssumeRole response has no credentials");
		return false;
	}
	out->expiration = expiration
		? DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(expiration),
												  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)))
		: GetCurrentTimestamp() + (TimestampTz) AWS_SESSION_SECONDS * USECS_PER_SEC;
	return true;
}

/* What a customer reads when a hop fails (never the external id). */
static char *
AwsExplainHop(int hop, const char *role_arn, const AwsError *err)
{
	const char *code = err->code ? err->code : "";

	if (err->status == 0)
		return psprintf("hop %d (AssumeRole into %s): could not reach AWS STS: %s", hop, role_arn, err->message);
	if (hop == 2 && strcmp(code, "AccessDenied") == 0)
		return psprintf("hop 2 (AssumeRole into %s) was denied: the role may not exist, the CloudFormation stack of aws_cloudformation_template() may not be applied in that account, or its external id may not match this connector's",
						role_arn);
	if (hop == 1 && (strcmp(code, "AccessDenied") == 0 || strcmp(code, "InvalidClientTokenId") == 0 ||
					 strcmp(code, "SignatureDoesNotMatch") == 0))
		return psprintf("hop 1 (AssumeRole into the platform's discovery role %s) failed with %s: the platform's caller credentials are not allowed to assume it; check cloudconn.aws_discovery_role_arn and the caller's keys",
						role_arn, code);
	return psprintf("hop %d (AssumeRole into %s) failed: HTTP %ld %s: %s", hop, role_arn, err->status,
					code, err->message);
}

/*
 * Whether message shows secret, or the start of it where AwsQuoted cut the
 * message short.
 */
static bool
AwsMentions(const char *message, const char *secret)
{
	size_t		mlen = strlen(message);

	if (strstr(message, secret) != NULL)
		return true;
	if (mlen < 3 || strcmp(message + mlen - 3, "...") != 0)
		return false;
	mlen -= 3;
	for (size_t k = Min(strlen(secret), mlen); k > 0; k--)
	{
		if (memcmp(message + mlen - k, secret, k) == 0)
			return true;
	}
	return false;
}

/*
 * The two-hop chain.  Returns the customer role's credentials, or false
 * with *error set (a message naming the hop).
 */
static bool
AwsChain(HttpClient *http, ProviderConnector *conn, AwsCredentials *customer, char **assumed_arn,
		 char **error)
{
	AwsCredentials caller,
				discovery;
	AwsError	err;
	char	   *account = ProviderJsonbString(&conn->settings->root, "account_id");
	char	   *customer_role;
	char	   *session = psprintf("cloudconn-connector-" INT64_FORMAT, conn->id);

	if (cloudconn_aws_discovery_role_arn == NULL || cloudconn_aws_discovery_role_arn[0] == '\0')
	{
		*error = pstrdup("cloudconn.aws_discovery_role_arn is not set");
		return false;
	}
	if (account == NULL || conn->external_id == NULL)
	{
		*error = pstrdup("the connector has no AWS account id or external id");
		return false;
	}
	if (!AwsCallerCredentials(&caller, error))
		return false;
	if (!AwsAssumeRole(http, &caller, cloudconn_aws_discovery_role_arn, "cloudconn-discovery", NULL,
					   &discovery, NULL, &err))
	{
		*error = AwsExplainHop(1, cloudconn_aws_discovery_role_arn, &err);
		return false;
	}
	customer_role = psprintf("arn:aws:iam::%s:role/%s", account, cloudconn_aws_customer_role_name);
	if (!AwsAssumeRole(http, &discovery, customer_role, session, conn->external_id,
					   customer, assumed_arn, &err))
	{
		/* AWS messages may quote a rejected parameter: never the external id */
		if (err.message && AwsMentions(err.message, conn->external_id))
			err.message = pstrdup("(AWS's message quoted the external id and is not shown)");
		*error = AwsExplainHop(2, customer_role, &err);
		return false;
	}
	return true;
}

static Jsonb *
AwsTest(ProviderConnector *conn, HttpClient *http)
{
	AwsCredentials customer;
	char	   *assumed = NULL;
	char	   *error = NULL;

	if (!AwsChain(http, conn, &customer, &assumed, &error))
		return ProviderJsonbOk(false, "error", error, NULL);
	return ProviderJsonbOk(true, "assumed_role_arn", assumed ? assumed : "", NULL);
}

/* ------------------------------------------------------------------------
 * Discovery
 * ------------------------------------------------------------------------ */

typedef struct AwsSession
{
	HttpClient *http;
	ProviderConnector *conn;
	AwsCredentials customer;
	MemoryContext cxt;			/* holds the current credentials */
	uint64		generation;		/* counts the credentials assumed so far */
} AwsSession;

/* (Re)assume the chain when the credentials are about to expire. */
static void
AwsEnsureCredentials(AwsSession *s, bool force)
{
	char	   *error = NULL;
	MemoryContext old;

	if (!force && s->customer.access_key_id != NULL &&
		s->customer.expiration - GetCurrentTimestamp() > (TimestampTz) AWS_RENEW_MARGIN_SECS * USECS_PER_SEC)
		return;
	MemoryContextReset(s->cxt);	/* wipes the old secrets */
	old = MemoryContextSwitchTo(s->cxt);
	if (!AwsChain(s->http, s->conn, &s->customer, NULL, &error))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s", error)));
	MemoryContextSwitchTo(old);
	s->generation++;
}

static bool
AwsExpiredError(const AwsError *err)
{
	return err->code && (strcmp(err->code, "ExpiredToken") == 0 || strcmp(err->code, "RequestExpired") == 0 ||
						 strcmp(err->code, "ExpiredTokenException") == 0);
}

/* An EC2 call in a region, renewing the credentials once if they expired. */
static xmlDocPtr
AwsEc2(AwsSession *s, const char *region, const char *body, AwsError *err)
{
	char	   *url = AwsEndpoint(cloudconn_aws_ec2_endpoint, region);
	xmlDocPtr	doc;

	AwsEnsureCredentials(s, false);
	doc = AwsCall(s->http, url, region, "ec2", &s->customer, body, err);
	if (doc == NULL && AwsExpiredError(err))
	{
		AwsEnsureCredentials(s, true);
		doc = AwsCall(s->http, url, region, "ec2", &s->customer, body, err);
	}
	return doc;
}

static List *
AwsRegions(AwsSession *s)
{
	JsonbValue *configured = ProviderJsonbGet(&s->conn->settings->root, "regions");
	List	   *regions = NIL;
	AwsError	err;
	xmlDocPtr	doc;
	xmlNodePtr	info;

	if (configured && configured->type == jbvBinary && JsonContainerSize(configured->val.binary.data) > 0)
	{
		for (int i = 0; i < (int) JsonContainerSize(configured->val.binary.data); i++)
		{
			JsonbValue *v = getIthJsonbValueFromContainer(configured->val.binary.data, i);

			if (v && v->type == jbvString)
				regions = lappend(regions, pnstrdup(v->val.string.val, v->val.string.len));
		}
		return regions;
	}
	doc = AwsEc2(s, cloudconn_aws_region, "Action=DescribeRegions&Version=" AWS_EC2_VERSION, &err);
	if (doc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("EC2 DescribeRegions failed: HTTP %ld %s: %s", err.status,
						err.code ? err.code : "", err.message)));
	info = AwsChild(xmlDocGetRootElement(doc), "regionInfo");
	if (!AwsIsElement(xmlDocGetRootElement(doc), "DescribeRegionsResponse") || info == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("EC2 DescribeRegions answered with an unexpected document")));
	for (xmlNodePtr item = info->children; item; item = item->next)
	{
		char	   *name;

		if (!AwsIsElement(item, "item"))
			continue;
		name = AwsChildText(item, "regionName");
		/* it goes into an endpoint's host name: region names only */
		if (name == NULL || strlen(name) > 32 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(name))
			ereport(ERROR,
					(errcode(ERRCODE_PROTOCOL_VIOLATION),
					 errmsg("EC2 DescribeRegions answered with an invalid region name")));
		regions = lappend(regions, name);
	}
	if (regions == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_PROTOCOL_VIOLATION),
				 errmsg("EC2 DescribeRegions listed no region")));
	return regions;
}

/*
 * The listing of one region: DescribeInstances page by page.  The regions
 * being listed each have a page in flight in one HttpBatch, so waiting on
 * one region's answer does not hold up the others.
 */
typedef struct AwsRegionListing
{
	const char *region;
	HttpClient *http;			/* the region's own handle in the batch */
	MemoryContext cxt;			/* long-lived: the token, failures */
	MemoryContext pagecxt;		/* the page in flight: request, answer, document */
	char	   *next_token;		/* NextToken of the page in flight, or NULL */
	AwsCallState call;
	uint64		generation;		/* of the credentials the page was signed with */
	bool		renewed;		/* the page was sent again after ExpiredToken */
	bool		listing;		/* a page is in flight */
} AwsRegionListing;

/* Sign the region's next page with the current credentials and send it. */
static void
AwsRegionSendPage(AwsSession *s, AwsRegionListing *l, HttpBatch *batch)
{
	MemoryContext old;
	StringInfoData body;

	AwsEnsureCredentials(s, false);
	MemoryContextReset(l->pagecxt);
	old = MemoryContextSwitchTo(l->pagecxt);
	initStringInfo(&body);
	appendStringInfo(&body, "Action=DescribeInstances&Version=%s&MaxResults=1000", AWS_EC2_VERSION);
	if (l->next_token)
		appendStringInfo(&body, "&NextToken=%s", AwsFormValue(l->next_token));
	AwsCallPrepare(&l->call, AwsEndpoint(cloudconn_aws_ec2_endpoint, l->region), l->region, "ec2",
				   &s->customer, body.data);
	l->generation = s->generation;
	HttpBatchStart(batch, l->http, &l->call.request, &l->call.response);
	MemoryContextSwitchTo(old);
	l->listing = true;
}

/* The region could not be listed (the run becomes partial). */
static void
AwsRegionFailed(DiscoveryContext *ctx, AwsRegionListing *l, const char *message)
{
	MemoryContext old = MemoryContextSwitchTo(l->cxt);

	ctx->failed_scopes = lappend(ctx->failed_scopes, pstrdup(l->region));
	ctx->scope_errors = lappend(ctx->scope_errors, psprintf("region %s: %s", l->region, message));
	MemoryContextSwitchTo(old);
	l->listing = false;
}

/* While a page is read, the other regions' transfers move on. */
static void
AwsBatchProgress(void *batch)
{
	HttpBatchProgress((HttpBatch *) batch);
}

/*
 * The answer to a region's page: its instances go to the engine and the
 * next page is sent; expired credentials are renewed and the page sent
 * again, once; anything else fails the region.
 */
static void
AwsRegionAnswer(DiscoveryContext *ctx, AwsSession *s, AwsRegionListing *l, HttpBatch *batch,
				bool ok, const char *account)
{
	MemoryContext old = MemoryContextSwitchTo(l->pagecxt);
	HttpResponse *resp = &l->call.response;
	AwsError	err;
	List	   *instances;
	char	   *token;
	const char *problem;

	l->listing = false;
	if (!AwsCallSucceeded(&l->call, ok, &err))
	{
		if (AwsExpiredError(&err) && !l->renewed)
		{
			MemoryContextSwitchTo(old);
			/* regions answering so at once renew once: not if renewed since */
			if (l->generation == s->generation)
				AwsEnsureCredentials(s, true);
			l->renewed = true;
			AwsRegionSendPage(s, l, batch);
			return;
		}
		AwsRegionFailed(ctx, l, err.status
						? psprintf("EC2 DescribeInstances failed: HTTP %ld %s: %s", err.status,
								   err.code ? err.code : "", err.message)
						: err.message);
	}
	else if (!AwsReadInstancesPage(resp->body.data, resp->body.len, l->region, account,
								   AwsBatchProgress, batch, &instances, &token, &problem))
		AwsRegionFailed(ctx, l, psprintf("EC2 DescribeInstances: %s", problem));
	else
	{
		/* the body is read: its memory goes before the engine's work */
		pfree(resp->body.data);
		resp->body.data = NULL;
		HttpBatchProgress(batch);
		ctx->page_done(ctx, instances);
		HttpBatchProgress(batch);
		if (l->next_token && token && strcmp(l->next_token, token) == 0)
			AwsRegionFailed(ctx, l, "EC2 DescribeInstances returned the same NextToken twice");
		else
		{
			if (l->next_token)
				pfree(l->next_token);
			l->next_token = (token && token[0]) ? MemoryContextStrdup(l->cxt, token) : NULL;
			l->renewed = false;
			if (l->next_token)
			{
				MemoryContextSwitchTo(old);
				AwsRegionSendPage(s, l, batch);
				return;
			}
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(l->pagecxt);
}

/*
 * Every region, at most cloudconn.aws_max_parallel_regions of them listed
 * at once.  One failing region makes the run partial; the others still
 * merge.
 */
static void
AwsDiscover(DiscoveryContext *ctx)
{
	AwsSession	s;
	List	   *regions;
	char	   *account = ProviderJsonbString(&ctx->connector->settings->root, "account_id");
	AwsRegionListing *listings;
	HttpBatch  *batch;
	int			nregions;
	int			started = 0;
	int			listing = 0;

	memset(&s, 0, sizeof(s));
	s.http = ctx->http;
	s.conn = ctx->connector;
	s.cxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn aws credentials", ALLOCSET_SMALL_SIZES);
	AwsEnsureCredentials(&s, true);
	regions = AwsRegions(&s);
	nregions = list_length(regions);
	listings = palloc0(sizeof(AwsRegionListing) * nregions);
	batch = HttpBatchCreate();

	for (;;)
	{
		HttpClient *client;
		AwsRegionListing *l = NULL;
		bool		ok;

		while (listing < cloudconn_aws_max_parallel_regions && started < nregions)
		{
			l = &listings[started];
			l->region = list_nth(regions, started++);
			l->cxt = CurrentMemoryContext;
			l->pagecxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn aws page",
											   ALLOCSET_DEFAULT_SIZES);
			l->http = HttpClientCreate();
			AwsRegionSendPage(&s, l, batch);
			listing++;
		}
		if (listing == 0)
			break;

		client = HttpBatchWait(batch, &ok);
		l = NULL;
		for (int i = 0; i < started && client != NULL; i++)
		{
			if (listings[i].http == client)
				l = &listings[i];
		}
		if (client == NULL || l == NULL || !l->listing)
			elog(ERROR, "AWS region listing lost track of its requests");
		AwsRegionAnswer(ctx, &s, l, batch, ok, account);
		if (!l->listing)
			listing--;
	}
	if (nregions > 0 && list_length(ctx->failed_scopes) == nregions)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("no region could be listed: %s", (char *) linitial(ctx->scope_errors))));
	MemoryContextDelete(s.cxt);
}

static bool
AwsMap(ProviderConnector *conn, JsonbContainer *raw, MappedResource *out, char **error)
{
	char	   *id = ProviderJsonbString(raw, "instanceId");
	char	   *region = ProviderJsonbString(raw, "region");
	char	   *account = ProviderJsonbString(raw, "account");
	char	   *state = ProviderJsonbString(raw, "state");
	JsonbValue *tags = ProviderJsonbGet(raw, "tags");
	char	   *name = NULL;
	char	   *public_ip = ProviderJsonbString(raw, "ipAddress");
	char	   *private_ip = ProviderJsonbString(raw, "privateIpAddress");
	char	   *dns = ProviderJsonbString(raw, "dnsName");
	StringInfoData attrs;

	memset(out, 0, sizeof(*out));
	if (id == NULL || strncmp(id, "i-", 2) != 0 || strlen(id) > 32 || region == NULL || account == NULL)
	{
		*error = pstrdup("an EC2 instance in the listing has no valid instance id");
		return false;
	}
	out->external_id = psprintf("arn:aws:ec2:%s:%s:instance/%s", region, account, id);
	if (tags && tags->type == jbvBinary)
		name = ProviderJsonbString(tags->val.binary.data, "Name");
	out->ci_type = "aws_ec2_instance";
	out->name = (name && name[0]) ? name : id;
	out->hostname = (dns && dns[0]) ? dns : ProviderJsonbString(raw, "privateDnsName");
	out->ip_address = (public_ip && public_ip[0]) ? public_ip : private_ip;
	out->os_info = ProviderJsonbString(raw, "platformDetails");
	out->scope = region;
	/* a terminated instance refreshes its CI but never creates one */
	out->create_if_new = state == NULL || strcmp(state, "terminated") != 0;

	initStringInfo(&attrs);
	appendStringInfoChar(&attrs, '{');
	ProviderJsonAppendString(&attrs, "region", region);
	ProviderJsonAppendString(&attrs, "state", state);
	ProviderJsonAppendString(&attrs, "instance_type", ProviderJsonbString(raw, "instanceType"));
	ProviderJsonAppendString(&attrs, "availability_zone", ProviderJsonbString(raw, "availabilityZone"));
	ProviderJsonAppendString(&attrs, "vpc_id", ProviderJsonbString(raw, "vpcId"));
	ProviderJsonAppendString(&attrs, "subnet_id", ProviderJsonbString(raw, "subnetId"));
	ProviderJsonAppendString(&attrs, "image_id", ProviderJsonbString(raw, "imageId"));
	ProviderJsonAppendString(&attrs, "launch_time", ProviderJsonbString(raw, "launchTime"));
	ProviderJsonAppendString(&attrs, "private_ip", private_ip);
	if (tags && tags->type == jbvBinary)
	{
		appendStringInfoString(&attrs, ", \"tags\": ");
		(void) JsonbToCString(&attrs, tags->val.binary.data, tags->val.binary.len);
	}
	appendStringInfoChar(&attrs, '}');
	out->attributes = attrs.data;
	return true;
}

const Provider aws_provider = {
	.name = "aws",
	.test = AwsTest,
	.discover = AwsDiscover,
	.map = AwsMap,
};
