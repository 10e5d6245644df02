/*
 * aws.c
 *		The AWS provider: the caller's credentials (aws_caller.c, from
 *		cloudconn.aws_caller_source), STS AssumeRole into the platform's
 *		discovery role (hop 1), then into the customer's role with the
 *		connector's external id (hop 2); then each enabled resource type is
 *		listed in each region (or once, account-wide), several listings at
 *		once (cloudconn.aws_max_parallel_regions), page by page.  A listing
 *		is one AwsListing: a call of a service in one of its protocols
 *		(Query: EC2 and RDS; REST-XML: S3; REST-JSON: Lambda), its pages,
 *		and the IAM actions the role needs for it.  Every request is signed
 *		with SigV4 (sigv4.c) for its own service and region.  README: AWS.
 *
 * Secrets (secret keys, session tokens) live only in memory that is wiped
 * when it goes; the external id is sent only to STS and never put in a
 * message.  XML is parsed with libxml2 without network access or entity
 * expansion: listing pages with xml_items.c's SAX reader, the small STS,
 * DescribeRegions and GetBucketLocation answers as documents freed (their
 * text wiped) with the memory context that holds them.  JSON pages are read
 * with json_items.c.  A Lambda function's environment variables (which
 * often hold secrets) are never kept: its page reader keeps only the
 * members the mapping reads, and the page's text is wiped once read.
 */
#include "postgres.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "executor/spi.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
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

static bool AwsValidRegionName(const char *s, int len);

#define AWS_STS_VERSION "2011-06-15"
#define AWS_EC2_VERSION "2016-11-15"
#define AWS_RDS_VERSION "2014-10-31"
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

/* How a service is called and answers. */
typedef enum AwsProtocol
{
	AWS_QUERY,					/* POST of a form to "/", XML answers (EC2, RDS, STS) */
	AWS_REST_XML,				/* GET of a path, XML answers (S3) */
	AWS_REST_JSON				/* GET of a path, JSON answers (Lambda) */
} AwsProtocol;

/*
 * How one resource type is listed: an action of a service, answered in
 * pages, and what the role needs to be allowed for it.
 */
typedef struct AwsListing
{
	AwsProtocol protocol;
	const char *service;		/* signing name, e.g. "ec2" */
	const char *service_label;	/* how messages name it, e.g. "EC2" */
	char	  **endpoint;		/* the endpoint setting ({region} substituted) */
	const char *action;			/* e.g. "DescribeInstances" */
	const char *version;		/* Query: the API version */
	const char *path;			/* REST: the path listed */
	const char *page_size;		/* e.g. "MaxResults=1000" */
	const char *test_page_size; /* connector_test's one cheap page, e.g. "MaxResults=5" */
	const char *next_param;		/* the request's pagination parameter, e.g. "NextToken" */
	const char *next_member;	/* where the answer gives it (XmlItemsSpec.page_members) */
	const char *account_region; /* account-wide: the region it is listed through */
	/* IAM actions the role needs (NULL-terminated); the first is the listing's own */
	const char *const *iam_actions;
	XmlItemsSpec items;			/* XML answers */
	JsonItemsSpec json_items;	/* JSON answers */
	bool		bucket_locations;	/* S3: each bucket's region, if the page lacks it */
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

	if (len == 0 || len > AWS_MAX_XML_BYTES || XmlMarkupRefusal(body, len) != NULL)
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
				 errdetail_log("The URL is \"%s\" (a cloudconn.aws_*_endpoint setting).", url)));
	host = origin + strlen("https://");
	len = strlen(host);
	if (len > 4 && strcmp(host + len - 4, ":443") == 0)
		host[len - 4] = '\0';
	return host;
}

/*
 * One signed request: what is sent, and what came back.  The request's
 * strings live in the memory context current when it was prepared; the
 * header lines carrying secrets are wiped with it.  What the signature
 * covers is kept, so that each retry is signed again at its own time
 * (AwsCallSign): AWS refuses a request whose X-Amz-Date is more than 15
 * minutes old, and a retry after long backoffs must not carry the first
 * attempt's date.  cred points at credentials that outlive the request
 * (a run's current ones: a retry after a renewal signs with the new ones).
 */
typedef struct AwsCallState
{
	AwsProtocol protocol;		/* how its errors are told */
	const char *url;
	const char *path;
	const char *query;
	const char *region;
	const char *service;
	const char *body;			/* Query: the form body */
	const AwsCredentials *cred;
	char	   *host;			/* the Host header's value */
	SigV4Signature sig;
	const char *headers[6];
	HttpRequest request;
	HttpResponse response;
} AwsCallState;

/*
 * AWS's error codes that the AWS SDKs' standard retry mode retries, taken
 * from botocore/retries/standard.py (ThrottledRetryableChecker's
 * _THROTTLED_ERROR_CODES, TransientRetryableChecker's
 * _TRANSIENT_ERROR_CODES, and special.RetryIDPCommunicationError for STS),
 * which are also aws-sdk-go-v2's aws/retry DefaultThrottleErrorCodes and
 * DefaultRetryableErrorCodes, as the AWS SDKs and Tools Reference Guide
 * ("Retry behavior", standard mode) describes them.  They are retried
 * whatever the HTTP status they come with (STS and RDS answer 400
 * Throttling, S3 400 RequestTimeout, Route 53 400 PriorRequestNotComplete),
 * throttling with the longer backoff.  InternalError and ServiceUnavailable
 * (S3's and EC2's 500 and 503 codes), which the SDKs retry by their status,
 * are retried by code too, should a front end pass them on with another.
 */
static const char *const aws_throttling_codes[] = {
	"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
	"TooManyRequestsException", "ProvisionedThroughputExceededException",
	"TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
	"LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
	"EC2ThrottledException", NULL
};

static const char *const aws_transient_codes[] = {
	"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete",
	"IDPCommunicationError", "InternalError", "ServiceUnavailable", NULL
};

/*
 * The error code of an AWS answer, into code[size]: REST-JSON's
 * x-amzn-ErrorType header (up to a ':'), else the first <Code> of an XML
 * body; "" if neither.  Reads without parsing and never raises: it runs as
 * the HTTP client's retry classifier.
 */
static void
AwsErrorCodeOf(const HttpResponse *resp, char *code, size_t size)
{
	const char *type = HttpResponseHeader(resp, "x-amzn-errortype");
	const char *start = NULL;
	size_t		len = 0;

	code[0] = '\0';
	if (type != NULL)
	{
		start = type;
		len = strcspn(type, ":");
	}
	else if (resp->body.data != NULL && resp->body.len > 0)
	{
		const char *body = resp->body.data;
		size_t		n = Min((size_t) resp->body.len, (size_t) 65536);
		const char *open = memmem(body, n, "<Code>", 6);
		const char *close;

		if (open != NULL && (close = memmem(open + 6, n - (open + 6 - body), "</Code>", 7)) != NULL)
		{
			start = open + 6;
			len = close - start;
		}
	}
	if (start != NULL && len < size)
	{
		memcpy(code, start, len);
		code[len] = '\0';
	}
}

/* Whether code is one of the NULL-terminated list. */
static bool
AwsCodeIn(const char *code, const char *const *list)
{
	for (const char *const *c = list; *c != NULL; c++)
	{
		if (strcmp(code, *c) == 0)
			return true;
	}
	return false;
}

/*
 * The HTTP client's retry classifier for AWS calls: an error whose code is
 * one of the SDKs' retryable codes, whatever its status (throttling first:
 * PriorRequestNotComplete is in both lists, and botocore backs it off as
 * throttling); else 429 (throttled) and 5xx (transient).
 */
static HttpRetryKind
AwsRetryable(const HttpResponse *resp, void *arg)
{
	char		code[65];

	if (resp->status >= 400)
	{
		AwsErrorCodeOf(resp, code, sizeof(code));
		if (AwsCodeIn(code, aws_throttling_codes))
			return HTTP_RETRY_THROTTLED;
		if (AwsCodeIn(code, aws_transient_codes))
			return HTTP_RETRY_TRANSIENT;
	}
	return HttpRetryableStatus(resp);
}

/*
 * Sign the call now (X-Amz-Date is the current time) and build its header
 * lines; the previous attempt's secret lines are wiped first.  The HTTP
 * client calls it again before every retry (HttpRequest.refresh_headers).
 */
static void
AwsCallSign(void *arg)
{
	AwsCallState *call = (AwsCallState *) arg;
	SigV4Request sreq;
	SigV4Credentials scred;
	bool		post = call->protocol == AWS_QUERY;
	bool		s3 = call->protocol == AWS_REST_XML;
	int			nheaders = 0;

	for (int i = 0; i < call->request.nheaders; i++)
	{
		if (strncmp(call->headers[i], "Authorization: ", 15) == 0 ||
			strncmp(call->headers[i], "X-Amz-Security-Token: ", 22) == 0)
			WipeString((char *) call->headers[i]);
	}
	memset(&sreq, 0, sizeof(sreq));
	sreq.method = post ? "POST" : "GET";
	sreq.path = call->path;
	sreq.query = call->query;
	if (post)
	{
		sreq.header_names = list_make2("host", "content-type");
		sreq.header_values = list_make2(call->host, "application/x-www-form-urlencoded; charset=utf-8");
		sreq.body = call->body;
		sreq.body_len = strlen(call->body);
	}
	else
	{
		sreq.header_names = list_make1("host");
		sreq.header_values = list_make1(call->host);
	}
	sreq.region = call->region;
	sreq.service = call->service;
	sreq.amz_date = SigV4AmzDate(GetCurrentTimestamp());
	sreq.sign_session_token = true;
	sreq.sign_payload_hash = s3;
	sreq.unnormalized_path = s3;
	scred.access_key_id = call->cred->access_key_id;
	scred.secret_access_key = call->cred->secret_access_key;
	scred.session_token = call->cred->session_token;
	SigV4Sign(&sreq, &scred, &call->sig);

	call->headers[nheaders++] = psprintf("Host: %s", call->host);
	if (post)
		call->headers[nheaders++] = "Content-Type: application/x-www-form-urlencoded; charset=utf-8";
	call->headers[nheaders++] = psprintf("X-Amz-Date: %s", sreq.amz_date);
	if (s3)
		call->headers[nheaders++] = psprintf("x-amz-content-sha256: %s", call->sig.payload_hash);
	if (call->cred->session_token)
		call->headers[nheaders++] = AwsSecretHeader("X-Amz-Security-Token: ", call->cred->session_token);
	call->headers[nheaders++] = AwsSecretHeader("Authorization: ", call->sig.authorization);
	WipeString(call->sig.authorization);
	WipeString(call->sig.canonical_request);
	list_free(sreq.header_names);
	list_free(sreq.header_values);
	call->request.headers = call->headers;
	call->request.nheaders = nheaders;
}

/*
 * Sign a request, ready to send (HttpPerform or a batch): a POST of a form
 * body to "/" (the Query protocol), or a GET of path?query (REST).  label
 * is how messages name the service ("EC2").  S3 (s3) signs its path as it
 * is, and the payload's hash, as it requires.
 */
static void
AwsCallPrepareRequest(AwsCallState *call, AwsProtocol protocol, const char *url, const char *path,
					  const char *query, const char *region, const char *service, const char *label,
					  const AwsCredentials *cred, const char *body)
{
	bool		post = protocol == AWS_QUERY;

	memset(call, 0, sizeof(*call));
	call->protocol = protocol;
	call->url = url;
	call->path = path;
	call->query = query;
	call->region = region;
	call->service = service;
	call->body = body;
	call->cred = cred;
	call->host = AwsHostHeader(url);
	AwsCallSign(call);

	call->request.method = post ? "POST" : "GET";
	call->request.url = url;
	/* messages name the service, never the endpoint (a superuser-only setting) */
	call->request.description = psprintf("the AWS %s endpoint", label);
	call->request.body = post ? body : NULL;
	call->request.body_len = post ? strlen(body) : 0;
	call->request.retry_response = AwsRetryable;
	call->request.refresh_headers = AwsCallSign;
	call->request.refresh_arg = call;
}

/* Sign a POST of a Query API form body to url. */
static void
AwsCallPrepare(AwsCallState *call, const char *url, const char *region, const char *service,
			   const AwsCredentials *cred, const char *body)
{
	AwsCallPrepareRequest(call, AWS_QUERY, url, "/", NULL, region, service, AwsUpper(service), cred, body);
}

/*
 * Sign a GET of path?query (REST) on the origin of endpoint (a path in the
 * setting is not used: REST paths are absolute).
 */
static void
AwsCallPrepareRest(AwsCallState *call, AwsProtocol protocol, const char *endpoint, const char *path,
				   const char *query, const char *region, const char *service, const char *label,
				   const AwsCredentials *cred)
{
	char	   *origin;
	char	   *url;

	(void) AwsHostHeader(endpoint); /* the error for a malformed one */
	origin = HttpUrlOrigin(endpoint);
	url = psprintf("%s%s%s%s", origin, path, query && query[0] ? "?" : "", query ? query : "");
	AwsCallPrepareRequest(call, protocol, url, path, query, region, service, label, cred, NULL);
}

/*
 * Text AWS sent (an error's code or message) made fit for a message of
 * ours: at most max bytes, cut on a character boundary, control characters
 * made spaces, in the database's encoding.  The text is UTF-8 (libxml2's,
 * a header's), or already in the database's encoding (a string of a jsonb,
 * see ProviderJsonbTryParse): server_encoded says which, so that it is
 * converted once.  NULL stays NULL.
 */
static char *
AwsQuotedText(char *text, size_t max, bool server_encoded)
{
	size_t		len;
	bool		cut;

	if (text == NULL)
		return NULL;
	len = strlen(text);
	cut = len > max;
	if (cut && server_encoded)
		len = (size_t) pg_mbcliplen(text, (int) len, (int) max);
	else if (cut)
	{
		len = max;
		while (len > 0 && ((unsigned char) text[len] & 0xC0) == 0x80)
			len--;
	}
	/* no server encoding has a byte below 0x20 inside a character */
	for (size_t i = 0; i < len; i++)
	{
		if ((unsigned char) text[i] < 0x20 || text[i] == 0x7f)
			text[i] = ' ';
	}
	if (cut)
		text = psprintf("%.*s...", (int) len, text);
	return server_encoded ? text : ProviderMessageText(text);
}

/* UTF-8 text AWS sent, for a message (see AwsQuotedText). */
static char *
AwsQuoted(char *text, size_t max)
{
	return AwsQuotedText(text, max, false);
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
	if (call->protocol == AWS_REST_JSON)
	{
		/* the code in x-amzn-ErrorType, the message in the body's "message" */
		Jsonb	   *j = ProviderJsonbTryParse(resp->body.data, resp->body.len);
		char		code[65];
		char	   *message = NULL;

		AwsErrorCodeOf(resp, code, sizeof(code));
		if (j != NULL && JB_ROOT_IS_OBJECT(j))
		{
			message = ProviderJsonbString(&j->root, "message");
			if (message == NULL)
				message = ProviderJsonbString(&j->root, "Message");
		}
		err->code = code[0] ? AwsQuoted(pstrdup(code), 64) : NULL;
		/* a jsonb's string: in the database's encoding already */
		err->message = AwsQuotedText(message, 512, true);
		WipeBuffer(resp->body.data, resp->body.len);
	}
	else if ((doc = AwsParseXml(resp->body.data, resp->body.len)) != NULL)
	{
		xmlNodePtr	e = AwsFind(xmlDocGetRootElement(doc), "Error");

		WipeBuffer(resp->body.data, resp->body.len);
		err->code = AwsQuoted(AwsChildText(e, "Code"), 64);
		err->message = AwsQuoted(AwsChildText(e, "Message"), 512);
	}
	else
		WipeBuffer(resp->body.data, resp->body.len);
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

static bool AwsAssumeRoleRead(xmlDocPtr doc, AwsCredentials *out, char **assumed_arn, AwsError *err);

/* STS AssumeRole; the new credentials live in the current context. */
static bool
AwsAssumeRole(HttpClient *http, const AwsCredentials *cred, const char *role_arn,
			  const char *session_name, const char *external_id,
			  AwsCredentials *out, char **assumed_arn, AwsError *err)
{
	StringInfoData body;
	xmlDocPtr	doc;

	initStringInfo(&body);
	appendStringInfo(&body, "Action=AssumeRole&Version=%s&RoleArn=%s&RoleSessionName=%s&DurationSeconds=%d",
					 AWS_STS_VERSION, AwsFormValue(role_arn), AwsFormValue(session_name), AWS_SESSION_SECONDS);
	if (external_id)
		appendStringInfo(&body, "&ExternalId=%s", AwsFormValue(external_id));
	doc = AwsCall(http, AwsStsEndpoint(), cloudconn_aws_region, "sts", cred, body.data, err);
	WipeBuffer(body.data, body.len);
	if (doc == NULL)
		return false;
	return AwsAssumeRoleRead(doc, out, assumed_arn, err);
}

/* An AssumeRole answer's credentials (and the assumed role's ARN) into out; false with err->message. */
static bool
AwsAssumeRoleRead(xmlDocPtr doc, AwsCredentials *out, char **assumed_arn, AwsError *err)
{
	xmlNodePtr	result,
				creds;
	char	   *expiration;

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
	/* ISO 8601 in UTC, as STS writes it; anything else is refused, not handed to timestamptz_in */
	if (expiration == NULL)
		out->expiration = GetCurrentTimestamp() + (TimestampTz) AWS_SESSION_SECONDS * USECS_PER_SEC;
	else if (!AwsCallerParseTime(expiration, &out->expiration))
	{
		err->message = pstrdup("the AssumeRole response has an invalid Expiration");
		return false;
	}
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

/* Whether AWS refused the credentials as expired (each service has its code). */
static bool
AwsExpiredError(const AwsError *err)
{
	return err->code && (strcmp(err->code, "ExpiredToken") == 0 || strcmp(err->code, "RequestExpired") == 0 ||
						 strcmp(err->code, "ExpiredTokenException") == 0);
}

/*
 * The caller's credentials in *caller, (re)fetched into cxt when there are
 * none yet or they expire within AWS_RENEW_MARGIN_SECS (temporary ones,
 * from IAM Roles Anywhere or the instance): the old ones are wiped with
 * cxt's reset.  False with *error (in the current context) otherwise.
 */
static bool
AwsEnsureCaller(HttpClient *http, AwsCallerCredentials *caller, MemoryContext cxt, bool force, char **error)
{
	MemoryContext old;
	bool		ok;

	if (!force && caller->access_key_id != NULL &&
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
	/*
	 * STS answering ExpiredToken at hop 1 means the caller's temporary
	 * credentials expired earlier than they said (or the clocks disagree):
	 * they are fetched again, once.
	 */
	for (int attempt = 0;; attempt++)
	{
		if (!AwsEnsureCaller(http, caller, callercxt, attempt > 0, error))
			return false;
		hop1.access_key_id = caller->access_key_id;
		hop1.secret_access_key = caller->secret_access_key;
		hop1.session_token = caller->session_token;
		hop1.expiration = caller->expiration;
		if (AwsAssumeRole(http, &hop1, cloudconn_aws_discovery_role_arn, "cloudconn-discovery", NULL,
						  &discovery, NULL, &err))
			break;
		if (attempt == 0 && AwsExpiredError(&err))
			continue;
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

/* ------------------------------------------------------------------------
 * A listing's requests
 * ------------------------------------------------------------------------ */

/*
 * The request of one page of a listing in region (account-wide listings:
 * their account_region): page_size items, from next_token (NULL: the
 * first page).
 */
static void
AwsListingPrepare(AwsCallState *call, const AwsListing *a, const char *region,
				  const AwsCredentials *cred, const char *page_size, const char *next_token)
{
	char	   *endpoint = AwsEndpoint(*a->endpoint, region);
	StringInfoData q;

	initStringInfo(&q);
	if (a->protocol == AWS_QUERY)
	{
		appendStringInfo(&q, "Action=%s&Version=%s", a->action, a->version);
		if (page_size)
			appendStringInfo(&q, "&%s", page_size);
		if (next_token)
			appendStringInfo(&q, "&%s=%s", a->next_param, AwsFormValue(next_token));
		AwsCallPrepareRequest(call, AWS_QUERY, endpoint, "/", NULL, region, a->service,
							  a->service_label, cred, q.data);
		return;
	}
	if (page_size)
		appendStringInfoString(&q, page_size);
	if (next_token)
		appendStringInfo(&q, "%s%s=%s", q.len > 0 ? "&" : "", a->next_param, SigV4UriEncode(next_token, false));
	AwsCallPrepareRest(call, a->protocol, endpoint, a->path, q.data, region, a->service,
					   a->service_label, cred);
}

/* Whether AWS refused the call for want of a permission (the role lacks an action). */
static bool
AwsDeniedError(const AwsError *err)
{
	return err->status == 403 && err->code != NULL &&
		(strcmp(err->code, "AccessDenied") == 0 || strcmp(err->code, "AccessDeniedException") == 0 ||
		 strcmp(err->code, "UnauthorizedOperation") == 0);
}

/* "EC2 DescribeInstances failed: HTTP 401 AuthFailure: ...", or the transport error. */
static char *
AwsListingError(const AwsListing *a, const AwsError *err)
{
	if (err->status == 0)
		return err->message;
	if (AwsDeniedError(err))
		return psprintf("%s %s failed: HTTP %ld %s: %s (the role needs %s: update the CloudFormation stack with aws_cloudformation_template())",
						a->service_label, a->action, err->status, err->code, err->message, a->iam_actions[0]);
	return psprintf("%s %s failed: HTTP %ld %s: %s", a->service_label, a->action, err->status,
					err->code ? err->code : "", err->message);
}

/* ------------------------------------------------------------------------
 * connector_test
 * ------------------------------------------------------------------------ */

/*
 * Whether the role may list a type: one cheap page of it, in region.  NULL
 * if it may, else why not, naming the action.
 */
static char *
AwsTestType(HttpClient *http, const ResourceType *type, const char *region, const AwsCredentials *cred)
{
	const AwsListing *a = (const AwsListing *) type->listing;
	const char *where = a->account_region ? a->account_region : region;
	AwsCallState call;
	AwsError	err;
	bool		ok;

	AwsListingPrepare(&call, a, where, cred, a->test_page_size, NULL);
	ok = HttpPerform(http, &call.request, &call.response);
	if (AwsCallSucceeded(&call, ok, &err))
		return NULL;
	if (AwsDeniedError(&err))
		return psprintf("the role may not list %s: %s was denied in %s (HTTP %ld %s: %s); update the CloudFormation stack with aws_cloudformation_template()",
						type->display_name, a->iam_actions[0], where, err.status, err.code, err.message);
	return psprintf("%s could not be listed in %s: %s", type->display_name, where, AwsListingError(a, &err));
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

/*
 * {"ok": true, "assumed_role_arn": ..., "resource_types": {"<ci_type>":
 * {"ok": true} | {"ok": false, "error": ...}, ...}, "caller_source": ...}:
 * the chain, then each enabled type tried in the connector's first region
 * (else cloudconn.aws_region) or, account-wide, where it is listed.
 */
static Jsonb *
AwsTest(ProviderConnector *conn, HttpClient *http)
{
	AwsCallerCredentials caller;
	MemoryContext callercxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn aws caller",
													ALLOCSET_SMALL_SIZES);
	AwsCredentials customer;
	char	   *assumed = NULL;
	char	   *error = NULL;
	JsonbValue *regions = ProviderJsonbGet(&conn->settings->root, "regions");
	const char *region = cloudconn_aws_region;
	StringInfoData buf;
	ListCell   *lc;
	bool		ok;

	memset(&caller, 0, sizeof(caller));
	ok = AwsChain(http, conn, &caller, callercxt, &customer, &assumed, &error);
	MemoryContextDelete(callercxt);		/* wipes the caller's secrets */
	if (!ok)
		return AwsTestResult(false, "error", error);
	if (regions && regions->type == jbvBinary && JsonContainerSize(regions->val.binary.data) > 0)
	{
		JsonbValue *first = getIthJsonbValueFromContainer(regions->val.binary.data, 0);

		if (first->type == jbvString)
			region = pnstrdup(first->val.string.val, first->val.string.len);
	}

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"ok\": true, \"assumed_role_arn\": ");
	escape_json(&buf, assumed ? assumed : "");
	appendStringInfoString(&buf, ", \"resource_types\": {");
	foreach(lc, conn->resource_types)
	{
		const ResourceType *type = lfirst(lc);
		char	   *why = AwsTestType(http, type, region, &customer);

		ProviderAppendTypeTest(&buf, lc == list_head(conn->resource_types), type->ci_type, why);
	}
	appendStringInfoString(&buf, "}, \"caller_source\": ");
	escape_json(&buf, AwsCallerSourceName());
	appendStringInfoChar(&buf, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
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

static List *AwsRegionsRead(xmlDocPtr doc);

/* The connector's regions, else every region enabled in the account. */
static List *
AwsRegions(AwsSession *s)
{
	JsonbValue *configured = ProviderJsonbGet(&s->conn->settings->root, "regions");
	List	   *regions = NIL;
	AwsError	err;
	xmlDocPtr	doc;

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
	return AwsRegionsRead(doc);
}

/* The regions a DescribeRegions answer lists; raises for one that is not such an answer. */
static List *
AwsRegionsRead(xmlDocPtr doc)
{
	List	   *regions = NIL;
	xmlNodePtr	info;

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
 * One listing of a resource type in a scope (a region, or the account),
 * page by page.  The listings going on each have a request in flight in
 * one HttpBatch, so waiting on one answer does not hold up the others.  A
 * page of S3 buckets without their regions is held while each bucket's
 * GetBucketLocation is asked, one after another, on the listing's handle.
 */
typedef struct AwsListingState
{
	const ResourceType *type;
	const AwsListing *spec;
	const char *scope;			/* the region, or PROVIDER_ACCOUNT_SCOPE */
	const char *region;			/* where it is listed (and signed for) */
	HttpClient *http;			/* the listing's handle in the batch while it goes */
	MemoryContext cxt;			/* long-lived: the token */
	MemoryContext pagecxt;		/* the page in flight: request, answer, items */
	MemoryContext callcxt;		/* a GetBucketLocation in flight (in pagecxt) */
	char	   *next_token;		/* pagination token of the page in flight, or NULL */
	AwsCallState call;
	uint64		generation;		/* of the credentials the request was signed with */
	bool		renewed;		/* the request was sent again after ExpiredToken */
	bool		in_flight;		/* a request is in flight */

	/* a page held for its buckets' locations */
	List	   *held_items;		/* of XmlNode * */
	bool	   *held_untranslatable;
	const char *held_token;		/* the page's pagination token, or NULL */
	int			locating;		/* index of the bucket whose location is asked, or -1 */
} AwsListingState;

/* Sign the listing's next page with the current credentials and send it. */
static void
AwsListingSendPage(AwsSession *s, AwsListingState *l, HttpBatch *batch)
{
	const AwsListing *a = l->spec;
	MemoryContext old;

	AwsEnsureCredentials(s, false);
	MemoryContextReset(l->pagecxt);
	l->callcxt = NULL;
	l->locating = -1;
	old = MemoryContextSwitchTo(l->pagecxt);
	AwsListingPrepare(&l->call, a, l->region, &s->customer, a->page_size, l->next_token);
	l->generation = s->generation;
	HttpBatchStart(batch, l->http, &l->call.request, &l->call.response);
	MemoryContextSwitchTo(old);
	l->in_flight = true;
}

/* The listing could not be completed (the run becomes partial). */
static void
AwsListingFailed(DiscoveryContext *ctx, AwsListingState *l, const char *message)
{
	if (l->type->scope_kind == SCOPE_REGION)
		message = psprintf("region %s: %s", l->region, message);
	DiscoveryFailed(ctx, l->type, l->scope, message);
	l->in_flight = false;
}

/* While a page is read, the other listings' transfers move on. */
static void
AwsBatchProgress(void *batch)
{
	HttpBatchProgress((HttpBatch *) batch);
}

/*
 * Hand a page's items to the engine, then send the next page, or end the
 * listing.  token is the page's pagination token (NULL: the last page).
 * body, if not NULL, is the text the items point into (a JSON page's),
 * wiped once they are mapped: what was not kept of it (a function's
 * environment) goes with it.
 */
static void
AwsListingDeliver(DiscoveryContext *ctx, AwsSession *s, AwsListingState *l, HttpBatch *batch,
				  List *items, const bool *untranslatable, const char *token, StringInfo body)
{
	const AwsListing *a = l->spec;
	MemoryContext old;

	HttpBatchProgress(batch);
	/* what mapping the page allocates goes with the page */
	old = MemoryContextSwitchTo(l->pagecxt);
	DiscoveryPage(ctx, l->type, l->scope, items, untranslatable);
	MemoryContextSwitchTo(old);
	if (body != NULL && body->data != NULL)
	{
		WipeBuffer(body->data, body->len);
		pfree(body->data);
		body->data = NULL;
	}
	HttpBatchProgress(batch);
	if (l->next_token && token && strcmp(l->next_token, token) == 0)
	{
		AwsListingFailed(ctx, l, psprintf("%s %s returned the same %s twice", a->service_label, a->action,
										  a->next_param));
		return;
	}
	if (l->next_token)
		pfree(l->next_token);
	l->next_token = token ? MemoryContextStrdup(l->cxt, token) : NULL;
	l->renewed = false;
	if (l->next_token)
	{
		AwsListingSendPage(s, l, batch);
		return;
	}
	DiscoveryListed(ctx, l->type, l->scope);
}

/*
 * A bucket's region as its location constraint gives it: none means
 * us-east-1 and EU (the oldest buckets') eu-west-1.
 */
static const char *
AwsBucketRegion(const char *constraint)
{
	if (constraint == NULL || constraint[0] == '\0')
		return "us-east-1";
	if (strcmp(constraint, "EU") == 0)
		return "eu-west-1";
	return constraint;
}

/*
 * A bucket name as S3 may list it: 3 to 63 lower-case letters, digits,
 * dots and hyphens, or, for buckets made in us-east-1 before March 2018,
 * up to 255 of these, upper-case letters and underscores.  None of them
 * needs percent-encoding in a path.
 */
static bool
AwsValidBucketName(const char *name)
{
	size_t		len = name ? strlen(name) : 0;

	return len >= 3 && len <= 255 &&
		strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/* Where a bucket whose location could not be had says why (not a name AWS sends: no ':'). */
#define AWS_LOCATION_ERROR "cloudconn:location-error"

/* Add a child element of text to a kept node (in the page's context). */
static void
AwsNodeAddChild(AwsListingState *l, XmlNode *node, const char *name, const char *text)
{
	XmlNode    *child = MemoryContextAllocZero(l->pagecxt, sizeof(XmlNode));

	child->name = name;
	child->text = MemoryContextStrdup(l->pagecxt, text);
	if (node->last_child)
		node->last_child->next = child;
	else
		node->children = child;
	node->last_child = child;
	node->nchildren++;
}

/*
 * Ask the location of the held page's next bucket that has none (from
 * index from on); when none is left, deliver the page.
 */
static void
AwsBucketsLocate(DiscoveryContext *ctx, AwsSession *s, AwsListingState *l, HttpBatch *batch, int from)
{
	const AwsListing *a = l->spec;
	int			i = 0;
	ListCell   *lc;

	foreach(lc, l->held_items)
	{
		XmlNode    *bucket = lfirst(lc);
		const char *name = XmlNodeChildValue(bucket, "Name");

		if (i++ < from || XmlNodeChild(bucket, "BucketRegion") != NULL || !AwsValidBucketName(name))
			continue;
		AwsEnsureCredentials(s, false);
		if (l->callcxt == NULL)
			l->callcxt = AllocSetContextCreate(l->pagecxt, "cloudconn aws location", ALLOCSET_SMALL_SIZES);
		MemoryContextReset(l->callcxt);
		{
			MemoryContext old = MemoryContextSwitchTo(l->callcxt);

			AwsCallPrepareRest(&l->call, AWS_REST_XML, AwsEndpoint(*a->endpoint, l->region),
							   psprintf("/%s", name), "location", l->region, a->service, a->service_label,
							   &s->customer);
			l->generation = s->generation;
			HttpBatchStart(batch, l->http, &l->call.request, &l->call.response);
			MemoryContextSwitchTo(old);
		}
		l->locating = i - 1;
		l->in_flight = true;
		return;
	}
	l->locating = -1;
	AwsListingDeliver(ctx, s, l, batch, l->held_items, l->held_untranslatable, l->held_token, NULL);
}

static void AwsBucketLocationRead(AwsListingState *l, XmlNode *bucket, xmlDocPtr doc, const AwsError *err);

/*
 * The answer to a bucket's GetBucketLocation: its region, or why it could
 * not be had (the bucket becomes a per-resource error, never the listing);
 * then the next bucket.
 */
static void
AwsBucketLocationAnswer(DiscoveryContext *ctx, AwsSession *s, AwsListingState *l, HttpBatch *batch, bool ok)
{
	MemoryContext old = MemoryContextSwitchTo(l->callcxt);
	XmlNode    *bucket = list_nth(l->held_items, l->locating);
	AwsError	err;
	xmlDocPtr	doc;

	l->in_flight = false;
	doc = AwsCallFinish(&l->call, ok, &err);
	if (doc == NULL && AwsExpiredError(&err) && !l->renewed)
	{
		MemoryContextSwitchTo(old);
		if (l->generation == s->generation)
			AwsEnsureCredentials(s, true);
		l->renewed = true;
		AwsBucketsLocate(ctx, s, l, batch, l->locating);
		return;
	}
	l->renewed = false;
	AwsBucketLocationRead(l, bucket, doc, &err);
	MemoryContextSwitchTo(old);
	AwsBucketsLocate(ctx, s, l, batch, l->locating + 1);
}

/*
 * A bucket's GetBucketLocation answer (doc, or NULL and err): its region,
 * or why it could not be had, added to the bucket.
 */
static void
AwsBucketLocationRead(AwsListingState *l, XmlNode *bucket, xmlDocPtr doc, const AwsError *err)
{
	if (doc != NULL && AwsIsElement(xmlDocGetRootElement(doc), "LocationConstraint"))
	{
		char	   *constraint = AwsText(xmlDocGetRootElement(doc));
		const char *region = AwsBucketRegion(constraint);

		if (AwsValidRegionName(region, strlen(region)))
			AwsNodeAddChild(l, bucket, "BucketRegion", region);
		else
			AwsNodeAddChild(l, bucket, AWS_LOCATION_ERROR, "GetBucketLocation answered with an invalid region name");
	}
	else if (doc != NULL)
		AwsNodeAddChild(l, bucket, AWS_LOCATION_ERROR, "GetBucketLocation answered with an unexpected document");
	else
		AwsNodeAddChild(l, bucket, AWS_LOCATION_ERROR,
						err->status ? psprintf("GetBucketLocation failed: HTTP %ld %s: %s", err->status,
											   err->code ? err->code : "", err->message)
						: err->message);
}

/*
 * Read a page's items (and its pagination token) as the listing's
 * protocol has them; false with *problem if it cannot be read.
 */
static bool
AwsListingReadPage(AwsListingState *l, HttpResponse *resp, HttpBatch *batch, List **items,
				   bool **untranslatable, const char **token, const char **problem)
{
	const AwsListing *a = l->spec;

	if (a->protocol == AWS_REST_JSON)
	{
		JsonItemsPage page;
		char	   *error = NULL;
		bool		read = JsonItemsRead(resp->body.data, resp->body.len, &a->json_items,
										 psprintf("the %s %s answer", a->service_label, a->action),
										 &page, &error);

		/*
		 * The items point into the text, which is wiped once they are
		 * mapped (AwsListingDeliver), or now if the page is refused: what
		 * was not kept (a function's environment) goes with it.
		 */
		if (!read || !page.has_items)
		{
			WipeBuffer(resp->body.data, resp->body.len);
			*problem = read ? psprintf("the answer has no \"%s\" array", a->json_items.items_key) : error;
			return false;
		}
		*items = page.items;
		*untranslatable = page.untranslatable;
		*token = JsonItemString(page.page, a->next_member);
		return true;
	}
	else
	{
		XmlItemsPage page;

		if (!XmlItemsRead(resp->body.data, resp->body.len, &a->items, AwsBatchProgress, batch, &page, problem))
			return false;
		*items = page.items;
		*untranslatable = page.untranslatable;
		*token = XmlNodeChildValue(page.page, a->next_member);
		return true;
	}
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
	MemoryContext old;
	HttpResponse *resp = &l->call.response;
	AwsError	err;
	List	   *items;
	bool	   *untranslatable;
	const char *problem;
	const char *token;

	if (l->locating >= 0)
	{
		AwsBucketLocationAnswer(ctx, s, l, batch, ok);
		return;
	}
	old = MemoryContextSwitchTo(l->pagecxt);
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
		AwsListingFailed(ctx, l, AwsListingError(a, &err));
	}
	else if (!AwsListingReadPage(l, resp, batch, &items, &untranslatable, &token, &problem))
		AwsListingFailed(ctx, l, psprintf("%s %s: %s", a->service_label, a->action, problem));
	else
	{
		bool		json = a->protocol == AWS_REST_JSON;

		/* an XML body is read into nodes of their own: its memory goes before the engine's work */
		if (!json)
		{
			pfree(resp->body.data);
			resp->body.data = NULL;
		}
		MemoryContextSwitchTo(old);
		if (a->bucket_locations)
		{
			l->held_items = items;
			l->held_untranslatable = untranslatable;
			l->held_token = token;
			l->renewed = false;
			AwsBucketsLocate(ctx, s, l, batch, 0);
		}
		else
			AwsListingDeliver(ctx, s, l, batch, items, untranslatable, token, json ? &resp->body : NULL);
		if (l->in_flight)
			return;
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(l->pagecxt);
	l->callcxt = NULL;
}

/*
 * Every enabled resource type in every region (or once, account-wide), at
 * most cloudconn.aws_max_parallel_regions listings at once.  A failing
 * listing makes the run partial; the others still merge.
 */
static void
AwsDiscover(DiscoveryContext *ctx)
{
	AwsSession	s;
	List	   *regions = NIL;
	AwsListingState *listings;
	HttpClient **idle;			/* handles of finished listings, for the next ones */
	int			nidle = 0;
	HttpBatch  *batch;
	int			nlistings = 0;
	int			started = 0;
	int			going = 0;
	bool		regional = false;
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
	foreach(lt, ctx->connector->resource_types)
		regional |= ((const ResourceType *) lfirst(lt))->scope_kind == SCOPE_REGION;
	/* DescribeRegions only when a type is listed per region */
	if (regional)
		regions = AwsRegions(&s);
	listings = palloc0(sizeof(AwsListingState) *
					   (list_length(regions) + 1) * Max(list_length(ctx->connector->resource_types), 1));
	foreach(lt, ctx->connector->resource_types)
	{
		const ResourceType *type = lfirst(lt);
		const AwsListing *spec = (const AwsListing *) type->listing;

		if (type->scope_kind != SCOPE_REGION)
		{
			AwsListingState *l = &listings[nlistings++];

			l->type = type;
			l->spec = spec;
			l->scope = PROVIDER_ACCOUNT_SCOPE;
			l->region = spec->account_region;
			continue;
		}
		foreach(lr, regions)
		{
			AwsListingState *l = &listings[nlistings++];

			l->type = type;
			l->spec = spec;
			l->scope = lfirst(lr);
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
static const char *const aws_instance_actions[] = {"ec2:DescribeInstances", NULL};

static const AwsListing aws_instances_listing = {
	.protocol = AWS_QUERY,
	.service = "ec2",
	.service_label = "EC2",
	.endpoint = &cloudconn_aws_ec2_endpoint,
	.action = "DescribeInstances",
	.version = AWS_EC2_VERSION,
	.page_size = "MaxResults=1000",
	.test_page_size = "MaxResults=5",
	.iam_actions = aws_instance_actions,
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

/*
 * Tags as an object of key: value (a tag without a key is left out), from
 * the children named item of tag_set, each with its key and value
 * children: EC2's tagSet (item, key, value), RDS's TagList (Tag, Key,
 * Value).
 */
static void
AwsPushTagList(JsonbParseState **state, const XmlNode *tag_set, const char *item_name,
			   const char *key_name, const char *value_name)
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
		const char *k = XmlNodeChildText(tag, key_name);
		const char *v = XmlNodeChildText(tag, value_name);

		if (strcmp(tag->name, item_name) != 0 || k == NULL)
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

/* An EC2 tagSet as an object of key: value. */
static void
AwsPushTags(JsonbParseState **state, const XmlNode *tag_set)
{
	AwsPushTagList(state, tag_set, "item", "key", "value");
}

/* The Name tag of a tag list (the last one wins, as in the tags attribute), or NULL. */
static const char *
AwsNameTagOf(const XmlNode *tag_set, const char *item_name, const char *key_name, const char *value_name)
{
	const char *name = NULL;

	for (const XmlNode *tag = tag_set ? tag_set->children : NULL; tag != NULL; tag = tag->next)
	{
		const char *k = XmlNodeChildText(tag, key_name);

		if (strcmp(tag->name, item_name) == 0 && k != NULL && strcmp(k, "Name") == 0)
			name = XmlNodeChildText(tag, value_name);
	}
	return name;
}

/* The Name tag of an EC2 tagSet, or NULL. */
static const char *
AwsNameTag(const XmlNode *tag_set)
{
	return AwsNameTagOf(tag_set, "item", "key", "value");
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
 * Attributes shared by the mappings below
 * ------------------------------------------------------------------------ */

/* "key": true/false from AWS's text "true"/"false"; nothing for anything else. */
static void
AwsPushBool(JsonbParseState **state, const char *key, const char *text)
{
	JsonbValue	v;

	if (text == NULL || (strcmp(text, "true") != 0 && strcmp(text, "false") != 0))
		return;
	v.type = jbvBool;
	v.val.boolean = strcmp(text, "true") == 0;
	JsonItemPushMember(state, key, &v);
}

/* "key": n from AWS's text of a non-negative integer; nothing for anything else. */
static void
AwsPushCount(JsonbParseState **state, const char *key, const char *text)
{
	JsonbValue	v;
	size_t		len = text ? strlen(text) : 0;

	if (len == 0 || len > 18 || strspn(text, "0123456789") != len)
		return;
	v.type = jbvNumeric;
	v.val.numeric = int64_to_numeric(strtoi64(text, NULL, 10));
	JsonItemPushMember(state, key, &v);
}

/*
 * "key": [...] of the texts of the children of set (EC2's <item> lists)
 * that are associated: whose state_parent/state child says "associated",
 * when they have one.
 */
static void
AwsPushAssociated(JsonbParseState **state, const char *key, const XmlNode *set, const char *member,
				  const char *state_parent)
{
	JsonbValue	k;

	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
	pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
	for (const XmlNode *item = set ? set->children : NULL; item != NULL; item = item->next)
	{
		const char *text = XmlNodeChildValue(item, member);
		const XmlNode *st = XmlNodeChild(item, state_parent);
		const char *assoc = st ? XmlNodeChildText(st, "state") : NULL;
		JsonbValue	v;

		if (text == NULL || (assoc != NULL && strcmp(assoc, "associated") != 0))
			continue;
		v.type = jbvString;
		v.val.string.val = (char *) text;
		v.val.string.len = strlen(text);
		pushJsonbValue(state, WJB_ELEM, &v);
	}
	pushJsonbValue(state, WJB_END_ARRAY, NULL);
}

/* An AWS id of prefix ("vpc-"): at most 64 lower-case letters, digits and hyphens. */
static bool
AwsValidId(const char *id, const char *prefix)
{
	size_t		len = id ? strlen(id) : 0;

	return len > strlen(prefix) && len <= 64 && strncmp(id, prefix, strlen(prefix)) == 0 &&
		strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == len;
}

/* An ARN of service from AWS: "arn:<partition>:<service>:", at most 2048 printable ASCII characters. */
static bool
AwsValidArn(const char *arn, const char *service)
{
	size_t		len = arn ? strlen(arn) : 0;
	const char *p;

	if (len < 12 || len > 2048 || strncmp(arn, "arn:aws", 7) != 0)
		return false;
	for (size_t i = 0; i < len; i++)
	{
		if (arn[i] <= ' ' || arn[i] > '~')
			return false;
	}
	p = strchr(arn + 4, ':');
	return p != NULL && strncmp(p + 1, service, strlen(service)) == 0 && p[1 + strlen(service)] == ':';
}

/* ------------------------------------------------------------------------
 * VPCs (EC2 DescribeVpcs)
 * ------------------------------------------------------------------------ */

static const char *const aws_vpc_path[] = {"vpcSet", "item", NULL};
static const char *const aws_vpc_members[] = {
	"vpcId", "state", "cidrBlock", "cidrBlockAssociationSet", "ipv6CidrBlockAssociationSet",
	"dhcpOptionsId", "instanceTenancy", "isDefault", "ownerId", "tagSet", NULL
};
static const char *const aws_vpc_actions[] = {"ec2:DescribeVpcs", NULL};

static const AwsListing aws_vpcs_listing = {
	.protocol = AWS_QUERY,
	.service = "ec2",
	.service_label = "EC2",
	.endpoint = &cloudconn_aws_ec2_endpoint,
	.action = "DescribeVpcs",
	.version = AWS_EC2_VERSION,
	.page_size = "MaxResults=1000",
	.test_page_size = "MaxResults=5",
	.iam_actions = aws_vpc_actions,
	.next_param = "NextToken",
	.next_member = "nextToken",
	.items = {
		.root = "DescribeVpcsResponse",
		.item_path = aws_vpc_path,
		.item_members = aws_vpc_members,
		.page_members = aws_next_token,
		.max_items = 1000,
		.max_children = 200,
		.too_many = "the page lists more VPCs than the 1000 asked for, or a VPC with more than 200 tags or CIDR blocks",
	},
};

static bool
AwsMapVpc(const ProviderConnector *conn, const char *region, const void *item,
		  MappedResource *out, char **error)
{
	const XmlNode *vpc = (const XmlNode *) item;
	const char *id = XmlNodeChildValue(vpc, "vpcId");
	char	   *account = ProviderJsonbString(&conn->settings->root, "account_id");
	const XmlNode *tags = XmlNodeChild(vpc, "tagSet");
	const char *name = AwsNameTag(tags);
	JsonbParseState *attrs = NULL;

	memset(out, 0, sizeof(*out));
	if (!AwsValidId(id, "vpc-") || account == NULL)
	{
		*error = pstrdup("a VPC in the listing has no valid VPC id");
		return false;
	}
	out->external_id = psprintf("arn:aws:ec2:%s:%s:vpc/%s", region, account, id);
	out->name = pstrdup((name && name[0]) ? name : id);
	out->create_if_new = true;

	pushJsonbValue(&attrs, WJB_BEGIN_OBJECT, NULL);
	JsonItemPushString(&attrs, "region", region);
	JsonItemPushString(&attrs, "state", XmlNodeChildValue(vpc, "state"));
	JsonItemPushString(&attrs, "cidr_block", XmlNodeChildValue(vpc, "cidrBlock"));
	AwsPushAssociated(&attrs, "cidr_blocks", XmlNodeChild(vpc, "cidrBlockAssociationSet"), "cidrBlock",
					  "cidrBlockState");
	AwsPushAssociated(&attrs, "ipv6_cidr_blocks", XmlNodeChild(vpc, "ipv6CidrBlockAssociationSet"),
					  "ipv6CidrBlock", "ipv6CidrBlockState");
	AwsPushBool(&attrs, "is_default", XmlNodeChildValue(vpc, "isDefault"));
	JsonItemPushString(&attrs, "dhcp_options_id", XmlNodeChildValue(vpc, "dhcpOptionsId"));
	JsonItemPushString(&attrs, "instance_tenancy", XmlNodeChildValue(vpc, "instanceTenancy"));
	JsonItemPushString(&attrs, "owner_id", XmlNodeChildValue(vpc, "ownerId"));
	AwsPushTags(&attrs, tags);
	out->attributes = JsonbValueToJsonb(pushJsonbValue(&attrs, WJB_END_OBJECT, NULL));
	return true;
}

static const ResourceType aws_vpc_type = {
	.ci_type = "aws_vpc",
	.display_name = "VPCs",
	.default_enabled = true,
	.scope_kind = SCOPE_REGION,
	.listing = &aws_vpcs_listing,
	.map = AwsMapVpc,
};

/* ------------------------------------------------------------------------
 * RDS DB instances (RDS DescribeDBInstances)
 * ------------------------------------------------------------------------ */

static const char *const aws_rds_path[] = {"DescribeDBInstancesResult", "DBInstances", "DBInstance", NULL};
static const char *const aws_rds_members[] = {
	"DBInstanceIdentifier", "DBInstanceClass", "Engine", "EngineVersion", "DBInstanceStatus",
	"Endpoint", "AllocatedStorage", "StorageType", "AvailabilityZone", "MultiAZ", "DBSubnetGroup",
	"PubliclyAccessible", "StorageEncrypted", "DBInstanceArn", "TagList", NULL
};
static const char *const aws_rds_marker[] = {"Marker", NULL};
static const char *const aws_rds_actions[] = {"rds:DescribeDBInstances", NULL};

static const AwsListing aws_rds_listing = {
	.protocol = AWS_QUERY,
	.service = "rds",
	.service_label = "RDS",
	.endpoint = &cloudconn_aws_rds_endpoint,
	.action = "DescribeDBInstances",
	.version = AWS_RDS_VERSION,
	.page_size = "MaxRecords=100",
	.test_page_size = "MaxRecords=20",
	.iam_actions = aws_rds_actions,
	.next_param = "Marker",
	.next_member = "Marker",
	.items = {
		.root = "DescribeDBInstancesResponse",
		.item_path = aws_rds_path,
		.item_members = aws_rds_members,
		.page_members = aws_rds_marker,
		.page_depth = 1,
		.max_items = 100,
		.max_children = 200,
		.too_many = "the page lists more DB instances than the 100 asked for, or a DB instance with more than 200 tags or subnets",
	},
};

static bool
AwsMapDbInstance(const ProviderConnector *conn, const char *region, const void *item,
				 MappedResource *out, char **error)
{
	const XmlNode *db = (const XmlNode *) item;
	const char *arn = XmlNodeChildValue(db, "DBInstanceArn");
	const char *id = XmlNodeChildValue(db, "DBInstanceIdentifier");
	const char *engine = XmlNodeChildValue(db, "Engine");
	const char *version = XmlNodeChildValue(db, "EngineVersion");
	const XmlNode *endpoint = XmlNodeChild(db, "Endpoint");
	const XmlNode *subnets = XmlNodeChild(db, "DBSubnetGroup");
	JsonbParseState *attrs = NULL;

	memset(out, 0, sizeof(*out));
	if (!AwsValidArn(arn, "rds") || id == NULL || strlen(id) > 255)
	{
		*error = id && strlen(id) <= 255
			? psprintf("the RDS DB instance \"%s\" has no valid DBInstanceArn", id)
			: pstrdup("an RDS DB instance in the listing has no valid DBInstanceArn or identifier");
		return false;
	}
	out->external_id = pstrdup(arn);
	out->name = pstrdup(id);
	out->hostname = (char *) (endpoint ? XmlNodeChildValue(endpoint, "Address") : NULL);
	out->os_info = engine ? (version ? psprintf("%s %s", engine, version) : pstrdup(engine)) : NULL;
	out->create_if_new = true;

	pushJsonbValue(&attrs, WJB_BEGIN_OBJECT, NULL);
	JsonItemPushString(&attrs, "region", region);
	JsonItemPushString(&attrs, "instance_class", XmlNodeChildValue(db, "DBInstanceClass"));
	JsonItemPushString(&attrs, "engine", engine);
	JsonItemPushString(&attrs, "engine_version", version);
	JsonItemPushString(&attrs, "status", XmlNodeChildValue(db, "DBInstanceStatus"));
	AwsPushBool(&attrs, "multi_az", XmlNodeChildValue(db, "MultiAZ"));
	AwsPushCount(&attrs, "allocated_storage_gib", XmlNodeChildValue(db, "AllocatedStorage"));
	JsonItemPushString(&attrs, "storage_type", XmlNodeChildValue(db, "StorageType"));
	AwsPushBool(&attrs, "storage_encrypted", XmlNodeChildValue(db, "StorageEncrypted"));
	JsonItemPushString(&attrs, "availability_zone", XmlNodeChildValue(db, "AvailabilityZone"));
	JsonItemPushString(&attrs, "vpc_id", subnets ? XmlNodeChildValue(subnets, "VpcId") : NULL);
	JsonItemPushString(&attrs, "db_subnet_group", subnets ? XmlNodeChildValue(subnets, "DBSubnetGroupName") : NULL);
	AwsPushBool(&attrs, "publicly_accessible", XmlNodeChildValue(db, "PubliclyAccessible"));
	AwsPushCount(&attrs, "port", endpoint ? XmlNodeChildValue(endpoint, "Port") : NULL);
	AwsPushTagList(&attrs, XmlNodeChild(db, "TagList"), "Tag", "Key", "Value");
	out->attributes = JsonbValueToJsonb(pushJsonbValue(&attrs, WJB_END_OBJECT, NULL));
	return true;
}

static const ResourceType aws_rds_db_instance_type = {
	.ci_type = "aws_rds_db_instance",
	.display_name = "RDS DB instances",
	.default_enabled = true,
	.scope_kind = SCOPE_REGION,
	.listing = &aws_rds_listing,
	.map = AwsMapDbInstance,
};

/* ------------------------------------------------------------------------
 * S3 buckets (S3 ListBuckets, account-wide)
 * ------------------------------------------------------------------------ */

static const char *const aws_bucket_path[] = {"Buckets", "Bucket", NULL};
static const char *const aws_bucket_members[] = {"Name", "CreationDate", "BucketRegion", NULL};
static const char *const aws_continuation_token[] = {"ContinuationToken", NULL};
static const char *const aws_bucket_actions[] = {"s3:ListAllMyBuckets", "s3:GetBucketLocation", NULL};

/*
 * max-buckets makes S3 paginate, and (being a parameter) name each
 * bucket's BucketRegion; an endpoint that ignores it may answer all buckets
 * at once (10,000 at most, as S3's unpaginated answer), without regions.
 */
static const AwsListing aws_buckets_listing = {
	.protocol = AWS_REST_XML,
	.service = "s3",
	.service_label = "S3",
	.endpoint = &cloudconn_aws_s3_endpoint,
	.action = "ListBuckets",
	.path = "/",
	.page_size = "max-buckets=1000",
	.test_page_size = "max-buckets=1",
	.iam_actions = aws_bucket_actions,
	.next_param = "continuation-token",
	.next_member = "ContinuationToken",
	.account_region = "us-east-1",
	.bucket_locations = true,
	.items = {
		.root = "ListAllMyBucketsResult",
		.item_path = aws_bucket_path,
		.item_members = aws_bucket_members,
		.page_members = aws_continuation_token,
		.max_items = 10000,
		.max_children = 8,
		.too_many = "the page lists more than 10000 buckets",
	},
};

static bool
AwsMapBucket(const ProviderConnector *conn, const char *scope, const void *item,
			 MappedResource *out, char **error)
{
	const XmlNode *bucket = (const XmlNode *) item;
	const char *name = XmlNodeChildValue(bucket, "Name");
	const char *region = XmlNodeChildValue(bucket, "BucketRegion");
	const char *location_error = XmlNodeChildValue(bucket, AWS_LOCATION_ERROR);
	JsonbParseState *attrs = NULL;

	memset(out, 0, sizeof(*out));
	if (!AwsValidBucketName(name))
	{
		*error = pstrdup("an S3 bucket in the listing has no valid name");
		return false;
	}
	out->external_id = psprintf("arn:aws:s3:::%s", name);
	if (location_error != NULL)
	{
		*error = psprintf("S3 bucket %s: its region is unknown: %s", name, location_error);
		return false;
	}
	if (region == NULL || !AwsValidRegionName(region, strlen(region)))
	{
		*error = psprintf("S3 bucket %s: its region is unknown: the listing gave none that is valid", name);
		return false;
	}
	out->name = pstrdup(name);
	out->create_if_new = true;

	pushJsonbValue(&attrs, WJB_BEGIN_OBJECT, NULL);
	JsonItemPushString(&attrs, "region", region);
	JsonItemPushString(&attrs, "creation_date", XmlNodeChildValue(bucket, "CreationDate"));
	out->attributes = JsonbValueToJsonb(pushJsonbValue(&attrs, WJB_END_OBJECT, NULL));
	return true;
}

static const ResourceType aws_s3_bucket_type = {
	.ci_type = "aws_s3_bucket",
	.display_name = "S3 buckets",
	.default_enabled = true,
	.scope_kind = SCOPE_ACCOUNT,
	.listing = &aws_buckets_listing,
	.map = AwsMapBucket,
};

/* ------------------------------------------------------------------------
 * Lambda functions (Lambda ListFunctions, REST-JSON)
 * ------------------------------------------------------------------------ */

/*
 * What is kept of a function: never its Environment (variables often hold
 * secrets), which the reader skips like every member not named here.
 */
static const char *const aws_function_members[] = {
	"FunctionName", "FunctionArn", "Runtime", "Role", "Handler", "Timeout", "MemorySize",
	"LastModified", "VpcConfig", "PackageType", "Architectures", NULL
};
static const char *const aws_next_marker[] = {"NextMarker", NULL};
static const char *const aws_function_actions[] = {"lambda:ListFunctions", NULL};

static const AwsListing aws_functions_listing = {
	.protocol = AWS_REST_JSON,
	.service = "lambda",
	.service_label = "Lambda",
	.endpoint = &cloudconn_aws_lambda_endpoint,
	.action = "ListFunctions",
	.path = "/2015-03-31/functions/",
	.page_size = "MaxItems=50",
	.test_page_size = "MaxItems=1",
	.iam_actions = aws_function_actions,
	.next_param = "Marker",
	.next_member = "NextMarker",
	.json_items = {
		.items_key = "Functions",
		.item_members = aws_function_members,
		.page_members = aws_next_marker,
		.max_items = 50,
	},
};

/* A member that is a number (JSON), or NULL. */
static const JsonbValue *
AwsJsonNumber(const JsonbValue *object, const char *key)
{
	const JsonbValue *v = JsonItemGet(object, key);

	return v != NULL && v->type == jbvNumeric ? v : NULL;
}

/* A member that is an array (JSON), or NULL. */
static const JsonbValue *
AwsJsonArray(const JsonbValue *object, const char *key)
{
	const JsonbValue *v = JsonItemGet(object, key);

	return v != NULL && v->type == jbvArray ? v : NULL;
}

static bool
AwsMapFunction(const ProviderConnector *conn, const char *region, const void *item,
			   MappedResource *out, char **error)
{
	const JsonbValue *fn = (const JsonbValue *) item;
	char	   *arn = fn->type == jbvObject ? JsonItemString(fn, "FunctionArn") : NULL;
	char	   *name = fn->type == jbvObject ? JsonItemString(fn, "FunctionName") : NULL;
	const JsonbValue *vpc = fn->type == jbvObject ? JsonItemGet(fn, "VpcConfig") : NULL;
	char	   *vpc_id = vpc && vpc->type == jbvObject ? JsonItemString(vpc, "VpcId") : NULL;
	JsonbParseState *attrs = NULL;

	memset(out, 0, sizeof(*out));
	if (!AwsValidArn(arn, "lambda") || name == NULL || name[0] == '\0' || strlen(name) > 170)
	{
		*error = pstrdup("a Lambda function in the listing has no valid FunctionArn or FunctionName");
		return false;
	}
	out->external_id = arn;
	out->name = name;
	out->os_info = JsonItemString(fn, "Runtime");
	out->create_if_new = true;

	pushJsonbValue(&attrs, WJB_BEGIN_OBJECT, NULL);
	JsonItemPushString(&attrs, "region", region);
	JsonItemPushString(&attrs, "runtime", out->os_info);
	JsonItemPushString(&attrs, "handler", JsonItemString(fn, "Handler"));
	JsonItemPushMember(&attrs, "memory_size_mb", AwsJsonNumber(fn, "MemorySize"));
	JsonItemPushMember(&attrs, "timeout_seconds", AwsJsonNumber(fn, "Timeout"));
	JsonItemPushMember(&attrs, "architectures", AwsJsonArray(fn, "Architectures"));
	JsonItemPushString(&attrs, "package_type", JsonItemString(fn, "PackageType"));
	JsonItemPushString(&attrs, "last_modified", JsonItemString(fn, "LastModified"));
	JsonItemPushString(&attrs, "role", JsonItemString(fn, "Role"));
	if (vpc_id != NULL && vpc_id[0] != '\0')
	{
		JsonbValue	k;

		k.type = jbvString;
		k.val.string.val = "vpc_config";
		k.val.string.len = strlen("vpc_config");
		pushJsonbValue(&attrs, WJB_KEY, &k);
		pushJsonbValue(&attrs, WJB_BEGIN_OBJECT, NULL);
		JsonItemPushString(&attrs, "vpc_id", vpc_id);
		JsonItemPushMember(&attrs, "subnet_ids", AwsJsonArray(vpc, "SubnetIds"));
		JsonItemPushMember(&attrs, "security_group_ids", AwsJsonArray(vpc, "SecurityGroupIds"));
		pushJsonbValue(&attrs, WJB_END_OBJECT, NULL);
	}
	out->attributes = JsonbValueToJsonb(pushJsonbValue(&attrs, WJB_END_OBJECT, NULL));
	return true;
}

static const ResourceType aws_lambda_function_type = {
	.ci_type = "aws_lambda_function",
	.display_name = "Lambda functions",
	.default_enabled = true,
	.scope_kind = SCOPE_REGION,
	.listing = &aws_functions_listing,
	.map = AwsMapFunction,
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

	if (strcmp(ci_type, aws_s3_bucket_type.ci_type) == 0)
		return PROVIDER_ACCOUNT_SCOPE;

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

/* What every AWS connector may call besides its types' listings: the regions to list. */
static const char *const aws_connector_actions[] = {"ec2:DescribeRegions", NULL};

static int
AwsCompareActions(const ListCell *a, const ListCell *b)
{
	return strcmp(lfirst(a), lfirst(b));
}

/*
 * The IAM actions a connector listing types (a List of const ResourceType
 * *) needs, sorted, each once: ec2:DescribeRegions (connectors without
 * regions list the account's; having it lets regions be emptied later
 * without a new stack), then every action of each type's listing.
 */
static List *
AwsNeededActions(List *types)
{
	List	   *all = NIL;
	List	   *unique = NIL;
	ListCell   *lc;

	for (const char *const *a = aws_connector_actions; *a; a++)
		all = lappend(all, (char *) *a);
	foreach(lc, types)
	{
		const AwsListing *listing = ((const ResourceType *) lfirst(lc))->listing;

		for (const char *const *a = listing->iam_actions; *a; a++)
			all = lappend(all, (char *) *a);
	}
	list_sort(all, AwsCompareActions);
	foreach(lc, all)
	{
		if (unique == NIL || strcmp(llast(unique), lfirst(lc)) != 0)
			unique = lappend(unique, lfirst(lc));
	}
	return unique;
}

/*
 * The template a customer applies: one IAM role, trusting only the
 * platform's discovery role under the connector's external id, with the
 * read-only managed policies, or (actions not NIL: least privilege) one
 * inline policy allowing exactly those actions (README: AWS).
 */
static char *
AwsTemplate(int64 id, const char *name, const char *external_id, List *actions)
{
	StringInfoData t;
	const char *role_name = (cloudconn_aws_customer_role_name && cloudconn_aws_customer_role_name[0])
		? cloudconn_aws_customer_role_name : "AnzenCustomerDiscoveryRole";
	ListCell   *lc;

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
	appendStringInfoString(&t, "}, \"Action\": \"sts:AssumeRole\", \"Condition\": {\"StringEquals\": {\"sts:ExternalId\": {\"Ref\": \"ExternalId\"}}}}]},");
	if (actions == NIL)
		appendStringInfoString(&t, " \"ManagedPolicyArns\": [\"arn:aws:iam::aws:policy/SecurityAudit\", \"arn:aws:iam::aws:policy/job-function/ViewOnlyAccess\"]}}},");
	else
	{
		appendStringInfoString(&t, " \"Policies\": [{\"PolicyName\": \"CloudconnDiscoveryLeastPrivilege\", \"PolicyDocument\": {"
							   "\"Version\": \"2012-10-17\", \"Statement\": [{\"Sid\": \"ListEnabledResourceTypes\","
							   " \"Effect\": \"Allow\", \"Action\": [");
		foreach(lc, actions)
		{
			if (lc != list_head(actions))
				appendStringInfoString(&t, ", ");
			AwsJsonString(&t, lfirst(lc));
		}
		appendStringInfoString(&t, "], \"Resource\": \"*\"}]}}]}}},");
	}
	appendStringInfoString(&t, " \"Outputs\": {\"RoleArn\": {\"Description\": \"ARN of the role; cloudconn assumes it with the external id above.\","
						   " \"Value\": {\"Fn::GetAtt\": [\"CustomerDiscoveryRole\", \"Arn\"]}}}}");
	return TextDatumGetCString(DirectFunctionCall1(jsonb_pretty,
												   DirectFunctionCall1(jsonb_in, CStringGetDatum(t.data))));
}

/*
 * cloudconn._aws_cloudformation_template(caller oid, connector_id bigint,
 * least_privilege boolean) RETURNS text, SECURITY DEFINER, reached through
 * cloudconn_dispatch.  least_privilege: the actions of the connector's
 * enabled types, from the registry.
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
	List	   *actions = NIL;
	char	   *result;
	MemoryContext callcxt = CurrentMemoryContext;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connector_id must not be null")));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("least_privilege must not be null")));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);
	SPI_connect();
	if (SPI_execute_with_args("SELECT c.id, c.provider, c.name, c.external_id, c.settings"
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
	if (PG_GETARG_BOOL(2))
	{
		Jsonb	   *settings = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));

		actions = AwsNeededActions(ProviderEnabledTypes(&aws_provider, settings));
	}
	result = MemoryContextStrdup(callcxt, AwsTemplate(id, name, external_id, actions));
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(result));
}

/* ------------------------------------------------------------------------
 * The registry entry
 * ------------------------------------------------------------------------ */

static const char *const aws_settings_keys[] = {"account_id", "regions", NULL};

static const ResourceType *const aws_resource_types[] = {
	&aws_ec2_instance_type,
	&aws_vpc_type,
	&aws_rds_db_instance_type,
	&aws_s3_bucket_type,
	&aws_lambda_function_type,
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

#ifdef CLOUDCONN_FUZZ
#include "aws_fuzz.c"
#endif
