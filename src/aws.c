/*
 * aws.c
 *		The AWS provider: the caller's credentials (aws_caller.c, from
 *		cloudconn.aws_caller_source), STS AssumeRole into the platform's
 *		discovery role (hop 1), then into the customer's role with the
 *		connector's external id (hop 2); then each enabled resource type is
 *		listed in each region, several listings at once
 *		(cloudconn.aws_max_parallel_regions), with the Query API's pages
 *		(MaxResults, NextToken).  Every request is signed with SigV4
 *		(sigv4.c).  README: AWS.
 *
 * Secrets (secret keys, session tokens) live only in memory that is wiped
 * when it goes; the external id is sent only to STS and never put in a
 * message.  XML is parsed with libxml2 without network access or entity
 * expansion: listing pages with xml_items.c's SAX reader, the small STS
 * and DescribeRegions answers as documents freed (their text wiped) with
 * the memory context that holds them.
 */
#include "postgres.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "executor/spi.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "aws_caller.h"
#include "guc.h"
#include "http.h"
#include "json_items.h"
#include "provider.h"
#include "sigv4.h"
#include "wipe.h"
#include "xml_guard.h"
#include "xml_items.h"

PG_FUNCTION_INFO_V1(cloudconn_aws_cloudformation_template);

#define AWS_STS_VERSION "2011-06-15"
#define AWS_EC2_VERSION "2016-11-15"
#define AWS_SESSION_SECONDS 900		/* the shortest AssumeRole allows */
#define AWS_RENEW_MARGIN_SECS 300	/* renew temporary credentials this early */
#define AWS_MAX_XML_BYTES (32 * 1024 * 1024)

typedef struct AwsCredentials
{
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;	/* NULL for long-term keys */
	TimestampTz expiration;		/* 0 for keys that do not expire */
} AwsCredentials;

/* The outcome of one AWS call that failed: for messages a customer can act on. */
typedef struct AwsError
{
	long		status;			/* 0 for a transport failure */
	char	   *code;			/* AWS error code, or NULL */
	char	   *message;		/* AWS message, or the transport error */
} AwsError;

/*
 * How one resource type is listed: a Query API action of a service,
 * answered in pages of XML.
 */
typedef struct AwsListing
{
	const char *service;		/* signing name, e.g. "ec2" */
	const char *service_label;	/* how messages name it, e.g. "EC2" */
	char	  **endpoint;		/* the endpoint setting ({region} substituted) */
	const char *action;			/* e.g. "DescribeInstances" */
	const char *version;		/* the API version */
	const char *page_size;		/* e.g. "MaxResults=1000" */
	const char *next_param;		/* the request's pagination parameter, e.g. "NextToken" */
	const char *next_member;	/* where the answer gives it, a child of the root */
	XmlItemsSpec items;
} AwsListing;

/* ------------------------------------------------------------------------
 * Memory hygiene and XML documents
 * ------------------------------------------------------------------------ */

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
	return WipeOnReset(line);
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
			WipeBuffer(n->content, xmlStrlen(n->content));
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
	WipeBuffer(content, xmlStrlen(content));	/* may be a secret */
	xmlFree(content);
	return s;
}

static char *
AwsChildText(xmlNodePtr parent, const char *name)
{
	return AwsText(AwsChild(parent, name));
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

static char *
AwsUpper(const char *s)
{
	char	   *u = pstrdup(s);

	for (char *p = u; *p; p++)
		*p = pg_toupper((unsigned char) *p);
	return u;
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
				 errmsg("the configured AWS endpoint is not a well-formed https URL"),
				 errdetail_log("The URL is \"%s\" (cloudconn.aws_sts_endpoint or cloudconn.aws_ec2_endpoint).", url)));
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
	WipeString(call->sig.authorization);
	WipeString(call->sig.canonical_request);

	call->request.method = "POST";
	call->request.url = url;
	/* messages name the service, never the endpoint (a superuser-only setting) */
	call->request.description = psprintf("the AWS %s endpoint", AwsUpper(service));
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
		WipeBuffer(resp->body.data, resp->body.len);
		err->message = resp->transport_error;
		return false;
	}
	if (resp->status == 200)
		return true;
	err->status = resp->status;
	doc = AwsParseXml(resp->body.data, resp->body.len);
	WipeBuffer(resp->body.data, resp->body.len);
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
	WipeBuffer(resp->body.data, resp->body.len);
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
	WipeBuffer(body.data, body.len);
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

		out->secret_access_key = secret ? WipeCopy(secret) : NULL;
		out->session_token = token ? WipeCopy(token) : NULL;
		if (secret)
			WipeString(secret);
		if (token)
			WipeString(token);
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

/* A cut-off message ending in fewer characters of a secret does not show it. */
#define AWS_MENTION_MIN_CHARS 4

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

	/*
	 * A few characters are no part of a secret worth hiding (and a message
	 * ending in the first character of an external id by chance must not
	 * be hidden): from AWS_MENTION_MIN_CHARS on, a cut start is.
	 */
	for (size_t k = Min(strlen(secret), mlen); k >= AWS_MENTION_MIN_CHARS; k--)
	{
		if (memcmp(message + mlen - k, secret, k) == 0)
			return true;
	}
	return false;
}

/*
 * The caller's credentials in *caller, (re)fetched into cxt when there are
 * none yet or they expire within AWS_RENEW_MARGIN_SECS (temporary ones,
 * from IAM Roles Anywhere or the instance): the old ones are wiped with
 * cxt's reset.  False with *error (in the current context) otherwise.
 */
static bool
AwsEnsureCaller(HttpClient *http, AwsCallerCredentials *caller, MemoryContext cxt, char **error)
{
	MemoryContext old;
	bool		ok;

	if (caller->access_key_id != NULL &&
		(caller->expiration == 0 ||
		 caller->expiration - GetCurrentTimestamp() > (TimestampTz) AWS_RENEW_MARGIN_SECS * USECS_PER_SEC))
		return true;
	MemoryContextReset(cxt);
	old = MemoryContextSwitchTo(cxt);
	ok = AwsCallerGet(http, caller, error);
	MemoryContextSwitchTo(old);
	if (!ok)
		*error = pstrdup(*error);
	return ok;
}

/*
 * The two-hop chain, signed at hop 1 by *caller (fetched or renewed into
 * callercxt as needed).  Returns the customer role's credentials, or false
 * with *error set (a message naming the hop).
 */
static bool
AwsChain(HttpClient *http, ProviderConnector *conn, AwsCallerCredentials *caller, MemoryContext callercxt,
		 AwsCredentials *customer, char **assumed_arn, char **error)
{
	AwsCredentials hop1,
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
	if (!AwsEnsureCaller(http, caller, callercxt, error))
		return false;
	hop1.access_key_id = caller->access_key_id;
	hop1.secret_access_key = caller->secret_access_key;
	hop1.session_token = caller->session_token;
	hop1.expiration = caller->expiration;
	if (!AwsAssumeRole(http, &hop1, cloudconn_aws_discovery_role_arn, "cloudconn-discovery", NULL,
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

/*
 * connector_test's answer, with the source of the caller's credentials
 * (cloudconn.aws_caller_source's value: never a secret) as caller_source.
 */
static Jsonb *
AwsTestResult(bool ok, const char *key, const char *value)
{
	StringInfoData source;

	initStringInfo(&source);
	appendStringInfoString(&source, "{\"caller_source\": ");
	escape_json(&source, AwsCallerSourceName());
	appendStringInfoChar(&source, '}');
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat,
											  JsonbPGetDatum(ProviderJsonbOk(ok, key, value, NULL)),
											  DirectFunctionCall1(jsonb_in, CStringGetDatum(source.data))));
}

static Jsonb *
AwsTest(ProviderConnector *conn, HttpClient *http)
{
	AwsCallerCredentials caller;
	MemoryContext callercxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn aws caller",
													ALLOCSET_SMALL_SIZES);
	AwsCredentials customer;
	char	   *assumed = NULL;
	char	   *error = NULL;
	bool		ok;

	memset(&caller, 0, sizeof(caller));
	ok = AwsChain(http, conn, &caller, callercxt, &customer, &assumed, &error);
	MemoryContextDelete(callercxt);		/* wipes the caller's secrets */
	if (!ok)
		return AwsTestResult(false, "error", error);
	return AwsTestResult(true, "assumed_role_arn", assumed ? assumed : "");
}

/* ------------------------------------------------------------------------
 * Discovery
 * ------------------------------------------------------------------------ */

typedef struct AwsSession
{
	HttpClient *http;
	ProviderConnector *conn;
	DiscoveryContext *ctx;
	AwsCredentials customer;
	MemoryContext cxt;			/* holds the current credentials */
	AwsCallerCredentials caller;	/* hop 1's, kept until they are about to expire */
	MemoryContext callercxt;	/* holds them */
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
	if (!AwsChain(s->http, s->conn, &s->caller, s->callercxt, &s->customer, NULL, &error))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s", error)));
	MemoryContextSwitchTo(old);
	/* the run's LOG line says where the caller's credentials came from */
	DiscoveryNote(s->ctx, psprintf("AWS caller credentials: %s (%s).", s->caller.source, s->caller.origin));
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

/* The connector's regions, else every region enabled in the account. */
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
 * One listing of a resource type in a region, page by page.  The listings
 * going on each have a page in flight in one HttpBatch, so waiting on one
 * answer does not hold up the others.
 */
typedef struct AwsListingState
{
	const ResourceType *type;
	const AwsListing *spec;
	const char *region;
	HttpClient *http;			/* the listing's handle in the batch while it goes */
	MemoryContext cxt;			/* long-lived: the token */
	MemoryContext pagecxt;		/* the page in flight: request, answer, items */
	char	   *next_token;		/* pagination token of the page in flight, or NULL */
	AwsCallState call;
	uint64		generation;		/* of the credentials the page was signed with */
	bool		renewed;		/* the page was sent again after ExpiredToken */
	bool		in_flight;		/* a page is in flight */
} AwsListingState;

/* Sign the listing's next page with the current credentials and send it. */
static void
AwsListingSendPage(AwsSession *s, AwsListingState *l, HttpBatch *batch)
{
	const AwsListing *a = l->spec;
	MemoryContext old;
	StringInfoData body;

	AwsEnsureCredentials(s, false);
	MemoryContextReset(l->pagecxt);
	old = MemoryContextSwitchTo(l->pagecxt);
	initStringInfo(&body);
	appendStringInfo(&body, "Action=%s&Version=%s", a->action, a->version);
	if (a->page_size)
		appendStringInfo(&body, "&%s", a->page_size);
	if (l->next_token)
		appendStringInfo(&body, "&%s=%s", a->next_param, AwsFormValue(l->next_token));
	AwsCallPrepare(&l->call, AwsEndpoint(*a->endpoint, l->region), l->region, a->service,
				   &s->customer, body.data);
	l->generation = s->generation;
	HttpBatchStart(batch, l->http, &l->call.request, &l->call.response);
	MemoryContextSwitchTo(old);
	l->in_flight = true;
}

/* The listing could not be completed (the run becomes partial). */
static void
AwsListingFailed(DiscoveryContext *ctx, AwsListingState *l, const char *message)
{
	DiscoveryFailed(ctx, l->type, l->region, psprintf("region %s: %s", l->region, message));
	l->in_flight = false;
}

/* While a page is read, the other listings' transfers move on. */
static void
AwsBatchProgress(void *batch)
{
	HttpBatchProgress((HttpBatch *) batch);
}

/*
 * The answer to a listing's page: its items go to the engine and the next
 * page is sent; expired credentials are renewed and the page sent again,
 * once; anything else fails the listing.
 */
static void
AwsListingAnswer(DiscoveryContext *ctx, AwsSession *s, AwsListingState *l, HttpBatch *batch, bool ok)
{
	const AwsListing *a = l->spec;
	MemoryContext old = MemoryContextSwitchTo(l->pagecxt);
	HttpResponse *resp = &l->call.response;
	AwsError	err;
	XmlItemsPage page;
	const char *problem;
	const char *token;

	l->in_flight = false;
	if (!AwsCallSucceeded(&l->call, ok, &err))
	{
		if (AwsExpiredError(&err) && !l->renewed)
		{
			MemoryContextSwitchTo(old);
			/* listings answering so at once renew once: not if renewed since */
			if (l->generation == s->generation)
				AwsEnsureCredentials(s, true);
			l->renewed = true;
			AwsListingSendPage(s, l, batch);
			return;
		}
		AwsListingFailed(ctx, l, err.status
						 ? psprintf("%s %s failed: HTTP %ld %s: %s", a->service_label, a->action, err.status,
									err.code ? err.code : "", err.message)
						 : err.message);
	}
	else if (!XmlItemsRead(resp->body.data, resp->body.len, &a->items,
						   AwsBatchProgress, batch, &page, &problem))
		AwsListingFailed(ctx, l, psprintf("%s %s: %s", a->service_label, a->action, problem));
	else
	{
		/* the body is read: its memory goes before the engine's work */
		pfree(resp->body.data);
		resp->body.data = NULL;
		HttpBatchProgress(batch);
		DiscoveryPage(ctx, l->type, l->region, page.items, page.untranslatable);
		HttpBatchProgress(batch);
		token = XmlNodeChildValue(page.page, a->next_member);
		if (l->next_token && token && strcmp(l->next_token, token) == 0)
			AwsListingFailed(ctx, l, psprintf("%s %s returned the same %s twice", a->service_label, a->action,
											  a->next_param));
		else
		{
			if (l->next_token)
				pfree(l->next_token);
			l->next_token = token ? MemoryContextStrdup(l->cxt, token) : NULL;
			l->renewed = false;
			if (l->next_token)
			{
				MemoryContextSwitchTo(old);
				AwsListingSendPage(s, l, batch);
				return;
			}
			DiscoveryListed(ctx, l->type, l->region);
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(l->pagecxt);
}

/*
 * Every enabled resource type in every region, at most
 * cloudconn.aws_max_parallel_regions listings at once.  A failing listing
 * makes the run partial; the others still merge.
 */
static void
AwsDiscover(DiscoveryContext *ctx)
{
	AwsSession	s;
	List	   *regions;
	AwsListingState *listings;
	HttpClient **idle;			/* handles of finished listings, for the next ones */
	int			nidle = 0;
	HttpBatch  *batch;
	int			nlistings = 0;
	int			started = 0;
	int			going = 0;
	ListCell   *lt;
	ListCell   *lr;

	memset(&s, 0, sizeof(s));
	s.http = ctx->http;
	s.conn = ctx->connector;
	s.ctx = ctx;
	s.cxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn aws credentials", ALLOCSET_SMALL_SIZES);
	s.callercxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn aws caller", ALLOCSET_SMALL_SIZES);
	DiscoveryNote(ctx, psprintf("AWS caller credentials: %s.", AwsCallerSourceName()));
	AwsEnsureCredentials(&s, true);
	regions = AwsRegions(&s);
	listings = palloc0(sizeof(AwsListingState) *
					   Max(list_length(regions) * list_length(ctx->connector->resource_types), 1));
	foreach(lt, ctx->connector->resource_types)
	{
		foreach(lr, regions)
		{
			AwsListingState *l = &listings[nlistings++];

			l->type = lfirst(lt);
			l->spec = (const AwsListing *) l->type->listing;
			l->region = lfirst(lr);
		}
	}
	idle = palloc(sizeof(HttpClient *) * Max(nlistings, 1));
	batch = HttpBatchCreate();

	for (;;)
	{
		HttpClient *client;
		AwsListingState *l = NULL;
		bool		ok;

		while (going < cloudconn_aws_max_parallel_regions && started < nlistings)
		{
			l = &listings[started++];
			l->cxt = CurrentMemoryContext;
			l->pagecxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn aws page",
											   ALLOCSET_DEFAULT_SIZES);
			l->http = nidle > 0 ? idle[--nidle] : HttpClientCreate();
			AwsListingSendPage(&s, l, batch);
			going++;
		}
		if (going == 0)
			break;

		client = HttpBatchWait(batch, &ok);
		l = NULL;
		for (int i = 0; i < started && client != NULL; i++)
		{
			if (listings[i].http == client && listings[i].in_flight)
				l = &listings[i];
		}
		if (client == NULL || l == NULL)
			elog(ERROR, "AWS listing lost track of its requests");
		AwsListingAnswer(ctx, &s, l, batch, ok);
		if (!l->in_flight)
		{
			/* the listing is over: its handle (and connection) serve the next one */
			going--;
			idle[nidle++] = l->http;
			l->http = NULL;
			MemoryContextDelete(l->pagecxt);
			l->pagecxt = NULL;
		}
	}
	MemoryContextDelete(s.cxt);
	MemoryContextDelete(s.callercxt);
}

/* ------------------------------------------------------------------------
 * EC2 instances
 * ------------------------------------------------------------------------ */

static const char *const aws_instance_path[] = {"reservationSet", "item", "instancesSet", "item", NULL};
static const char *const aws_instance_members[] = {
	"instanceId", "imageId", "privateDnsName", "dnsName", "instanceType", "launchTime",
	"platformDetails", "privateIpAddress", "ipAddress", "subnetId", "vpcId",
	"instanceState", "placement", "tagSet", NULL
};
static const char *const aws_next_token[] = {"nextToken", NULL};

static const AwsListing aws_instances_listing = {
	.service = "ec2",
	.service_label = "EC2",
	.endpoint = &cloudconn_aws_ec2_endpoint,
	.action = "DescribeInstances",
	.version = AWS_EC2_VERSION,
	.page_size = "MaxResults=1000",
	.next_param = "NextToken",
	.next_member = "nextToken",
	.items = {
		.root = "DescribeInstancesResponse",
		.item_path = aws_instance_path,
		.item_members = aws_instance_members,
		.page_members = aws_next_token,
		.max_items = 1000,
		.max_children = 200,
		.too_many = "the page lists more instances than the 1000 asked for, or an instance with more than 200 tags",
	},
};

/* An EC2 tagSet as an object of key: value (a tag without a key is left out). */
static void
AwsPushTags(JsonbParseState **state, const XmlNode *tag_set)
{
	JsonbValue	key;
	JsonbValue	value;

	key.type = jbvString;
	key.val.string.val = "tags";
	key.val.string.len = 4;
	pushJsonbValue(state, WJB_KEY, &key);
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	for (const XmlNode *tag = tag_set ? tag_set->children : NULL; tag != NULL; tag = tag->next)
	{
		const char *k = XmlNodeChildText(tag, "key");
		const char *v = XmlNodeChildText(tag, "value");

		if (strcmp(tag->name, "item") != 0 || k == NULL)
			continue;
		key.val.string.val = (char *) k;
		key.val.string.len = strlen(k);
		value.type = jbvString;
		value.val.string.val = (char *) (v ? v : "");
		value.val.string.len = strlen(value.val.string.val);
		pushJsonbValue(state, WJB_KEY, &key);
		pushJsonbValue(state, WJB_VALUE, &value);
	}
	pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/* The Name tag of a tagSet, or NULL. */
static const char *
AwsNameTag(const XmlNode *tag_set)
{
	const char *name = NULL;

	for (const XmlNode *tag = tag_set ? tag_set->children : NULL; tag != NULL; tag = tag->next)
	{
		const char *k = XmlNodeChildText(tag, "key");

		/* the last one wins, as in the tags attribute */
		if (strcmp(tag->name, "item") == 0 && k != NULL && strcmp(k, "Name") == 0)
			name = XmlNodeChildText(tag, "value");
	}
	return name ? name : NULL;
}

static bool
AwsMapInstance(const ProviderConnector *conn, const char *region, const void *item,
			   MappedResource *out, char **error)
{
	const XmlNode *inst = (const XmlNode *) item;
	const char *id = XmlNodeChildValue(inst, "instanceId");
	char	   *account = ProviderJsonbString(&conn->settings->root, "account_id");
	const XmlNode *state_node = XmlNodeChild(inst, "instanceState");
	const char *state = state_node ? XmlNodeChildText(state_node, "name") : NULL;
	const XmlNode *placement = XmlNodeChild(inst, "placement");
	const XmlNode *tags = XmlNodeChild(inst, "tagSet");
	const char *name = AwsNameTag(tags);
	const char *public_ip = XmlNodeChildValue(inst, "ipAddress");
	const char *private_ip = XmlNodeChildValue(inst, "privateIpAddress");
	const char *dns = XmlNodeChildValue(inst, "dnsName");
	JsonbParseState *attrs = NULL;

	memset(out, 0, sizeof(*out));
	if (id == NULL || strncmp(id, "i-", 2) != 0 || strlen(id) > 32 || account == NULL)
	{
		*error = pstrdup("an EC2 instance in the listing has no valid instance id");
		return false;
	}
	out->external_id = psprintf("arn:aws:ec2:%s:%s:instance/%s", region, account, id);
	out->name = pstrdup((name && name[0]) ? name : id);
	out->hostname = (char *) (dns ? dns : XmlNodeChildValue(inst, "privateDnsName"));
	out->ip_address = (char *) (public_ip ? public_ip : private_ip);
	out->os_info = (char *) XmlNodeChildValue(inst, "platformDetails");
	/* a terminated instance refreshes its CI but never creates one */
	out->create_if_new = state == NULL || strcmp(state, "terminated") != 0;

	pushJsonbValue(&attrs, WJB_BEGIN_OBJECT, NULL);
	JsonItemPushString(&attrs, "region", region);
	JsonItemPushString(&attrs, "state", state);
	JsonItemPushString(&attrs, "instance_type", XmlNodeChildValue(inst, "instanceType"));
	JsonItemPushString(&attrs, "availability_zone", placement ? XmlNodeChildText(placement, "availabilityZone") : NULL);
	JsonItemPushString(&attrs, "vpc_id", XmlNodeChildValue(inst, "vpcId"));
	JsonItemPushString(&attrs, "subnet_id", XmlNodeChildValue(inst, "subnetId"));
	JsonItemPushString(&attrs, "image_id", XmlNodeChildValue(inst, "imageId"));
	JsonItemPushString(&attrs, "launch_time", XmlNodeChildValue(inst, "launchTime"));
	JsonItemPushString(&attrs, "private_ip", private_ip);
	AwsPushTags(&attrs, tags);
	out->attributes = JsonbValueToJsonb(pushJsonbValue(&attrs, WJB_END_OBJECT, NULL));
	return true;
}

static const ResourceType aws_ec2_instance_type = {
	.ci_type = "aws_ec2_instance",
	.display_name = "EC2 instances",
	.default_enabled = true,
	.scope_kind = SCOPE_REGION,
	.listing = &aws_instances_listing,
	.map = AwsMapInstance,
};

/* ------------------------------------------------------------------------
 * Settings
 * ------------------------------------------------------------------------ */

/* Region names look like eu-west-1 or us-gov-west-1: ^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$ */
static bool
AwsValidRegionName(const char *s, int len)
{
	int			i = 0;
	int			groups = 0;
	int			digits;

	if (len < 2 || !(s[0] >= 'a' && s[0] <= 'z') || !(s[1] >= 'a' && s[1] <= 'z'))
		return false;
	i = 2;
	for (;;)
	{
		int			letters = 0;

		if (i >= len || s[i] != '-')
			return false;
		i++;
		while (i < len && s[i] >= 'a' && s[i] <= 'z')
		{
			i++;
			letters++;
		}
		if (letters == 0)
			break;
		groups++;
	}
	/* the last '-' was followed by no letter: the digits must follow it */
	digits = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9')
	{
		i++;
		digits++;
	}
	return groups >= 1 && digits >= 1 && digits <= 2 && i == len;
}

static void
AwsValidateSettings(Jsonb *settings)
{
	JsonbValue *account = ProviderJsonbGet(&settings->root, "account_id");
	JsonbValue *regions = ProviderJsonbGet(&settings->root, "regions");
	int			n;

	if (account == NULL || account->type != jbvString || account->val.string.len != 12 ||
		strspn(pnstrdup(account->val.string.val, 12), "0123456789") != 12)
		ProviderInvalidSetting("AWS account id must be a string of exactly 12 digits",
							   "Copy it from the AWS console, for example \"123456789012\".");
	if (regions == NULL)
		return;
	if (regions->type != jbvBinary || !JsonContainerIsArray(regions->val.binary.data))
		ProviderInvalidSetting("AWS \"regions\" must be an array of region names", NULL);
	n = JsonContainerSize(regions->val.binary.data);
	if (n > 64)
		ProviderInvalidSetting("AWS \"regions\" lists too many regions", NULL);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *r = getIthJsonbValueFromContainer(regions->val.binary.data, i);

		if (r->type != jbvString || !AwsValidRegionName(r->val.string.val, r->val.string.len))
			ProviderInvalidSetting(psprintf("invalid AWS region name %s", ProviderJsonForMessage(r)),
								   "Region names look like \"eu-west-1\" or \"us-gov-west-1\".");
	}
	for (int i = 0; i < n; i++)
	{
		JsonbValue *a = getIthJsonbValueFromContainer(regions->val.binary.data, i);

		for (int k = i + 1; k < n; k++)
		{
			JsonbValue *b = getIthJsonbValueFromContainer(regions->val.binary.data, k);

			if (a->val.string.len == b->val.string.len &&
				memcmp(a->val.string.val, b->val.string.val, a->val.string.len) == 0)
				ProviderInvalidSetting("AWS \"regions\" lists a region twice", NULL);
		}
	}
}

/*
 * The scope of a CI of 0.1.0: the region in its ARN
 * (arn:aws:ec2:<region>:<account>:instance/<id>).
 */
static const char *
AwsScopeOfCi(const char *ci_type, const char *external_id, Jsonb *attributes)
{
	const char *p = external_id;

	for (int field = 0; field < 3; field++)
	{
		p = strchr(p, ':');
		if (p == NULL)
			return NULL;
		p++;
	}
	return pnstrdup(p, strcspn(p, ":"));
}

/* ------------------------------------------------------------------------
 * The CloudFormation template
 * ------------------------------------------------------------------------ */

static void
AwsJsonString(StringInfo buf, const char *s)
{
	escape_json(buf, s);
}

/*
 * The template a customer applies: one IAM role, trusting only the
 * platform's discovery role under the connector's external id, with the
 * read-only managed policies (README: AWS).
 */
static char *
AwsTemplate(int64 id, const char *name, const char *external_id)
{
	StringInfoData t;
	const char *role_name = (cloudconn_aws_customer_role_name && cloudconn_aws_customer_role_name[0])
		? cloudconn_aws_customer_role_name : "AnzenCustomerDiscoveryRole";

	initStringInfo(&t);
	appendStringInfoString(&t, "{\"AWSTemplateFormatVersion\": \"2010-09-09\", \"Description\": ");
	AwsJsonString(&t, psprintf("Read-only discovery role for the cloudconn connector \"%s\" (id " INT64_FORMAT ").",
							   name, id));
	appendStringInfoString(&t, ", \"Parameters\": {\"ExternalId\": {\"Type\": \"String\", \"Default\": ");
	AwsJsonString(&t, external_id);
	appendStringInfoString(&t, ", \"Description\": \"External id minted for this connector; the role can only be assumed with it.\","
						   " \"MinLength\": 2, \"MaxLength\": 1224, \"AllowedPattern\": \"[\\\\w+=,.@:/-]*\"}},"
						   " \"Resources\": {\"CustomerDiscoveryRole\": {\"Type\": \"AWS::IAM::Role\", \"Properties\": {\"RoleName\": ");
	AwsJsonString(&t, role_name);
	appendStringInfoString(&t, ", \"Description\": \"Read-only role assumed by the cloudconn discovery role to inventory this account.\","
						   " \"MaxSessionDuration\": 3600, \"AssumeRolePolicyDocument\": {\"Version\": \"2012-10-17\","
						   " \"Statement\": [{\"Effect\": \"Allow\", \"Principal\": {\"AWS\": ");
	AwsJsonString(&t, cloudconn_aws_discovery_role_arn);
	appendStringInfoString(&t, "}, \"Action\": \"sts:AssumeRole\", \"Condition\": {\"StringEquals\": {\"sts:ExternalId\": {\"Ref\": \"ExternalId\"}}}}]},"
						   " \"ManagedPolicyArns\": [\"arn:aws:iam::aws:policy/SecurityAudit\", \"arn:aws:iam::aws:policy/job-function/ViewOnlyAccess\"]}}},"
						   " \"Outputs\": {\"RoleArn\": {\"Description\": \"ARN of the role; cloudconn assumes it with the external id above.\","
						   " \"Value\": {\"Fn::GetAtt\": [\"CustomerDiscoveryRole\", \"Arn\"]}}}}");
	return TextDatumGetCString(DirectFunctionCall1(jsonb_pretty,
												   DirectFunctionCall1(jsonb_in, CStringGetDatum(t.data))));
}

/*
 * cloudconn._aws_cloudformation_template(caller oid, connector_id bigint)
 * RETURNS text, SECURITY DEFINER, reached through cloudconn_dispatch.
 */
Datum
cloudconn_aws_cloudformation_template(PG_FUNCTION_ARGS)
{
	Oid			types[2] = {OIDOID, INT8OID};
	Datum		args[2];
	bool		isnull;
	int64		id;
	char	   *provider;
	char	   *name;
	char	   *external_id;
	char	   *result;
	MemoryContext callcxt = CurrentMemoryContext;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connector_id must not be null")));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	SPI_connect();
	if (SPI_execute_with_args("SELECT c.id, c.provider, c.name, c.external_id"
							  "  FROM cloudconn._connector_for_action($1, $2, true) c",
							  2, types, args, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not load connector");
	id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	provider = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	external_id = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	if (strcmp(provider, aws_provider.name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connector " INT64_FORMAT " is not an AWS connector", id),
				 errhint("Only AWS connectors are set up with a CloudFormation template.")));
	if (cloudconn_aws_discovery_role_arn == NULL || cloudconn_aws_discovery_role_arn[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cloudconn.aws_discovery_role_arn is not set"),
				 errdetail("The template must name the platform's discovery role as the only principal the customer role trusts."),
				 errhint("A superuser sets it in postgresql.conf, for example cloudconn.aws_discovery_role_arn = 'arn:aws:iam::111122223333:role/AnzenDiscoveryRole'.")));
	result = MemoryContextStrdup(callcxt, AwsTemplate(id, name, external_id));
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/* ------------------------------------------------------------------------
 * The registry entry
 * ------------------------------------------------------------------------ */

static const char *const aws_settings_keys[] = {"account_id", "regions", NULL};

static const ResourceType *const aws_resource_types[] = {
	&aws_ec2_instance_type,
};

const Provider aws_provider = {
	.name = "aws",
	.display_name = "Amazon Web Services",
	.label = "AWS",
	.status = PROVIDER_GA,
	.no_secret_hint = "AWS access goes through the IAM role of aws_cloudformation_template()",
	.mints_external_id = true,
	.settings_keys = aws_settings_keys,
	.validate_settings = AwsValidateSettings,
	.resource_types = aws_resource_types,
	.nresource_types = lengthof(aws_resource_types),
	.test = AwsTest,
	.discover = AwsDiscover,
	.scope_of_ci = AwsScopeOfCi,
};
