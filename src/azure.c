/*
 * azure.c
 *		The Microsoft Azure provider: a service principal (tenant id and
 *		client id in the settings, its client secret as the stored secret)
 *		gets an access token by the OAuth 2.0 client credentials grant; Azure
 *		Resource Manager (ARM) then lists, per subscription, the virtual
 *		machines, their power states, the network interfaces and the public
 *		IP addresses, joined here into one CI per virtual machine (README:
 *		Azure).
 *
 * Vocabulary: a subscription's four lists are the status list
 * (virtualMachines?statusOnly=true), the NIC list, the public IP list (the
 * three lookups, read first into hash tables) and the VM list, whose pages
 * are then mapped as they come, each VM joined with its lookups: never a
 * call per VM.  Subscriptions are listed concurrently, every list with its
 * page in flight in one HttpBatch.  The access token lives in memory only,
 * in its own context, and is wiped when renewed or freed; so is every
 * Authorization header made from it.
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "guc.h"
#include "http.h"
#include "json_items.h"
#include "provider.h"
#include "wipe.h"

#define AZURE_SUBSCRIPTIONS_API "2022-12-01"
#define AZURE_COMPUTE_API "2024-07-01"
#define AZURE_NETWORK_API "2024-05-01"

/* Renew the access token this long before it expires (at most half its life). */
#define AZURE_RENEW_MARGIN_SECS 300

/* Bounds on what Azure sends */
#define AZURE_MAX_TOKEN_BYTES (16 * 1024)
#define AZURE_MAX_ERROR_BODY (64 * 1024)
#define AZURE_MAX_PAGE_ITEMS 5000
#define AZURE_MAX_PAGES 100000	/* of one list */
#define AZURE_MAX_LOOKUP_ENTRIES 500000 /* of one lookup table */
#define AZURE_MAX_SUBSCRIPTIONS 10000	/* visible to the principal */
#define AZURE_MAX_SETTING_SUBSCRIPTIONS 1000	/* in subscription_ids */
#define AZURE_MAX_ID_BYTES 1024

/*
 * Pacing: when ARM reports fewer subscription reads left than this, the
 * subscription's next request waits, up to a second when none is left,
 * so that its quota refills rather than being spent into 429s.
 */
#define AZURE_PACE_READS 20

#define AZURE_LOGIN_DESCRIPTION "the Azure login endpoint"
#define AZURE_ARM_DESCRIPTION "the Azure Resource Manager API"

#define AZURE_GUID_EXAMPLE "aaaabbbb-0000-cccc-1111-dddd2222eeee"

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

/* 8-4-4-4-12 hexadecimal digits, either case. */
static bool
AzureIsGuid(const char *s, int len)
{
	if (len != 36)
		return false;
	for (int i = 0; i < 36; i++)
	{
		char		c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (c != '-')
				return false;
		}
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

static bool
AzureIsGuidValue(const JsonbValue *v)
{
	return v != NULL && v->type == jbvString && AzureIsGuid(v->val.string.val, v->val.string.len);
}

/* A copy with ASCII letters lower-cased: ARM ids are case-insensitive. */
static char *
AzureLower(const char *s, size_t len)
{
	char	   *out = palloc(len + 1);

	for (size_t i = 0; i < len; i++)
		out[i] = pg_ascii_tolower((unsigned char) s[i]);
	out[len] = '\0';
	return out;
}

/* A setting's GUID, lower-cased (validated when the connector was saved). */
static char *
AzureSettingGuid(const ProviderConnector *conn, const char *key)
{
	JsonbValue *v = ProviderJsonbGet(&conn->settings->root, key);

	if (!AzureIsGuidValue(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("Azure connector " INT64_FORMAT " has no valid %s", conn->id, key)));
	return AzureLower(v->val.string.val, v->val.string.len);
}

/* An origin setting without its trailing slashes, or NULL if not https. */
static char *
AzureBase(const char *setting)
{
	char	   *base;
	size_t		len;

	if (setting == NULL || HttpUrlOrigin(setting) == NULL)
		return NULL;
	base = pstrdup(setting);
	len = strlen(base);
	while (len > 0 && base[len - 1] == '/')
		base[--len] = '\0';
	return base;
}

/* application/x-www-form-urlencoded: unreserved characters kept, others %XX. */
static void
AzureFormAppend(StringInfo buf, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";

	if (buf->len > 0)
		appendStringInfoChar(buf, '&');
	appendStringInfoString(buf, name);
	appendStringInfoChar(buf, '=');
	for (const unsigned char *p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(buf, (char) *p);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[*p >> 4]);
			appendStringInfoChar(buf, hex[*p & 15]);
		}
	}
}

/* A string of a provider body for a message: at most 64 bytes, whole characters. */
static char *
AzureBounded(char *s)
{
	if (s != NULL)
		s[pg_mbcliplen(s, strlen(s), 64)] = '\0';
	return s;
}

/* Whether s is an IPv4 or IPv6 address in the text inet takes. */
static bool
AzureValidAddress(const char *s)
{
	unsigned char addr[sizeof(struct in6_addr)];

	return s != NULL && (inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1);
}

/* Push "key": the item's member, or null when it has none. */
static void
AzurePushOrNull(JsonbParseState **state, const char *key, const JsonbValue *v)
{
	JsonbValue	null;

	null.type = jbvNull;
	JsonItemPushMember(state, key, v ? v : &null);
}

/* Push "key": "text", or null. */
static void
AzurePushStringOrNull(JsonbParseState **state, const char *key, const char *text)
{
	JsonbValue	null;

	if (text != NULL)
		JsonItemPushString(state, key, text);
	else
	{
		null.type = jbvNull;
		JsonItemPushMember(state, key, &null);
	}
}

/* ------------------------------------------------------------------------
 * The access token
 * ------------------------------------------------------------------------ */

typedef struct AzureToken
{
	MemoryContext cxt;			/* holds access_token, wiped when reset */
	char	   *access_token;	/* NULL until one is had */
	TimestampTz renew_at;
	uint64		generation;		/* counts the tokens had so far */
} AzureToken;

/*
 * The raw text of the top-level member key of a JSON object already known
 * to be well formed, when it is a string without escapes.  The access
 * token is found in place in the body, so that the only copy made of it is
 * the one kept (the body itself is wiped); equal keys: the last wins.
 */
static bool
AzureRawMember(const char *p, const char *end, const char *key, const char **val, size_t *vlen)
{
	size_t		keylen = strlen(key);
	int			depth = 0;
	bool		expect_key = false;
	bool		found = false;

	while (p < end)
	{
		const char *s;
		bool		escaped = false;

		switch (*p)
		{
			case '"':
				s = ++p;
				while (p < end && *p != '"')
				{
					if (*p == '\\')
					{
						escaped = true;
						p++;
					}
					p++;
				}
				if (p >= end)
					return false;
				p++;
				if (depth != 1 || !expect_key)
					continue;
				expect_key = false;
				if (escaped || (size_t) (p - 1 - s) != keylen || memcmp(s, key, keylen) != 0)
					continue;
				while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':'))
					p++;
				if (p >= end || *p != '"')
				{
					found = false;	/* the last one is not a string */
					continue;
				}
				s = ++p;
				while (p < end && *p != '"' && *p != '\\')
					p++;
				if (p >= end || *p == '\\')
					return false;
				*val = s;
				*vlen = p - s;
				found = true;
				p++;
				continue;
			case '{':
			case '[':
				depth++;
				if (depth == 1)
					expect_key = (*p == '{');
				break;
			case '}':
			case ']':
				depth--;
				break;
			case ',':
				if (depth == 1)
					expect_key = true;
				break;
			default:
				break;
		}
		p++;
	}
	return found;
}

/* A JSON number or numeric string of whole seconds in 1..limit, or -1. */
static long
AzureSeconds(const JsonbValue *v, long limit)
{
	char	   *text;
	char	   *end;
	long		n;

	if (v == NULL)
		return -1;
	if (v->type == jbvNumeric)
		text = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	else if (v->type == jbvString)
		text = pnstrdup(v->val.string.val, v->val.string.len);
	else
		return -1;
	if (strlen(text) == 0 || strlen(text) > 9 || strspn(text, "0123456789") != strlen(text))
		return -1;
	n = strtol(text, &end, 10);
	return (n >= 1 && n <= limit) ? n : -1;
}

static const char *const azure_token_members[] = {"token_type", "expires_in", NULL};
static const JsonItemsSpec azure_token_spec = {NULL, NULL, azure_token_members, 0};

/*
 * Read a token response into tok; false with *error for one that has no
 * usable token.  The body is not wiped here (the caller does).
 */
static bool
AzureReadToken(const HttpResponse *resp, AzureToken *tok, char **error)
{
	JsonItemsPage page;
	const char *raw = NULL;
	size_t		rawlen = 0;
	char	   *type;
	long		expires_in;
	long		margin;
	MemoryContext old;

	if (!JsonItemsRead(resp->body.data, resp->body.len, &azure_token_spec,
					   "the Azure login endpoint's token response", &page, error))
		return false;
	type = JsonItemString(page.page, "token_type");
	expires_in = AzureSeconds(JsonItemGet(page.page, "expires_in"), 7 * 86400);
	if (!AzureRawMember(resp->body.data, resp->body.data + resp->body.len, "access_token", &raw, &rawlen) ||
		rawlen == 0 || rawlen > AZURE_MAX_TOKEN_BYTES)
	{
		*error = pstrdup("the Azure login endpoint answered without a usable access token");
		return false;
	}
	for (size_t i = 0; i < rawlen; i++)
	{
		/* it goes into a header: printable ASCII only */
		if ((unsigned char) raw[i] < 0x21 || (unsigned char) raw[i] > 0x7e)
		{
			*error = pstrdup("the Azure login endpoint answered with a malformed access token");
			return false;
		}
	}
	if (type == NULL || pg_strcasecmp(type, "Bearer") != 0)
	{
		*error = pstrdup("the Azure login endpoint answered with a token that is not a Bearer token");
		return false;
	}
	if (expires_in < 0)
	{
		*error = pstrdup("the Azure login endpoint answered without a valid expires_in");
		return false;
	}

	MemoryContextReset(tok->cxt);	/* wipes the token it replaces */
	old = MemoryContextSwitchTo(tok->cxt);
	tok->access_token = palloc(rawlen + 1);
	memcpy(tok->access_token, raw, rawlen);
	tok->access_token[rawlen] = '\0';
	WipeOnReset(tok->access_token);
	MemoryContextSwitchTo(old);
	margin = Min(AZURE_RENEW_MARGIN_SECS, expires_in / 2);
	tok->renew_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), (expires_in - margin) * 1000);
	tok->generation++;
	return true;
}

/* Whether error_codes of a login error body holds code. */
static bool
AzureHasErrorCode(Jsonb *body, const char *code)
{
	JsonbValue *codes = body ? ProviderJsonbGet(&body->root, "error_codes") : NULL;

	if (codes == NULL || codes->type != jbvBinary || !JsonContainerIsArray(codes->val.binary.data))
		return false;
	for (int i = 0; i < (int) JsonContainerSize(codes->val.binary.data); i++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(codes->val.binary.data, i);

		if (v->type == jbvNumeric &&
			strcmp(DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric))), code) == 0)
			return true;
	}
	return false;
}

/* The first of error_codes, as "AADSTS<n>", or NULL. */
static char *
AzureFirstErrorCode(Jsonb *body)
{
	JsonbValue *codes = body ? ProviderJsonbGet(&body->root, "error_codes") : NULL;
	JsonbValue *v;
	char	   *n;

	if (codes == NULL || codes->type != jbvBinary || !JsonContainerIsArray(codes->val.binary.data) ||
		JsonContainerSize(codes->val.binary.data) == 0)
		return NULL;
	v = getIthJsonbValueFromContainer(codes->val.binary.data, 0);
	if (v->type != jbvNumeric)
		return NULL;
	n = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	if (strlen(n) > 12 || strspn(n, "0123456789") != strlen(n))
		return NULL;
	return psprintf("AADSTS%s", n);
}

/*
 * What a customer can do about a refused token request, from the
 * error_codes of Microsoft's error body (never its description, which
 * quotes identifiers at length).
 */
static char *
AzureExplainLogin(const char *tenant, const char *client, const HttpResponse *resp)
{
	Jsonb	   *body = NULL;
	char	   *error;
	char	   *code;

	if (resp->transport_error != NULL)
		return psprintf("could not reach Azure: %s", resp->transport_error);
	if (resp->body.len > 0 && resp->body.len <= AZURE_MAX_ERROR_BODY)
		body = ProviderJsonbTryParse(resp->body.data, resp->body.len);
	if (AzureHasErrorCode(body, "7000215"))
		return psprintf("Azure rejected the client secret of application %s (AADSTS7000215): it may be mistyped, "
						"or be the secret's ID rather than its value; create a client secret for the app registration "
						"and set its value with connector_set_token()", client);
	if (AzureHasErrorCode(body, "7000222"))
		return psprintf("the client secret of application %s has expired (AADSTS7000222): create a new client secret "
						"for the app registration (Certificates & secrets in the Azure portal) and set it with "
						"connector_set_token()", client);
	if (AzureHasErrorCode(body, "700016"))
		return psprintf("Azure found no application with client id %s in tenant %s (AADSTS700016): check client_id, "
						"and that the app registration belongs to that tenant", client, tenant);
	if (AzureHasErrorCode(body, "90002"))
		return psprintf("Azure found no tenant %s (AADSTS90002): check tenant_id, the Directory (tenant) ID of the "
						"app registration", tenant);
	if (resp->status == 429)
		return psprintf("the Azure login endpoint kept throttling the token request (HTTP 429) after %d attempts; "
						"try again later", resp->attempts);
	error = body ? AzureBounded(ProviderJsonbString(&body->root, "error")) : NULL;
	code = AzureFirstErrorCode(body);
	if (error != NULL || code != NULL)
		return psprintf("the Azure login endpoint refused the token request with HTTP %ld (%s%s%s)", resp->status,
						error ? error : "", error && code ? ", " : "", code ? code : "");
	return psprintf("the Azure login endpoint answered the token request with HTTP %ld", resp->status);
}

/*
 * Get an access token for the management origin, by the client credentials
 * grant.  The request body holds the client secret: it is built in a
 * buffer sized for it (so no partial copy is left by a reallocation) and
 * wiped as soon as the request is over; the response is wiped once read.
 */
static bool
AzureFetchToken(ProviderConnector *conn, HttpClient *http, AzureToken *tok, char **error)
{
	char	   *login = AzureBase(cloudconn_azure_login_url);
	char	   *management = AzureBase(cloudconn_azure_management_url);
	char	   *tenant = AzureSettingGuid(conn, "tenant_id");
	char	   *client = AzureSettingGuid(conn, "client_id");
	const char *headers[2] = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"};
	StringInfoData body;
	HttpRequest req;
	HttpResponse resp;
	volatile bool ok = false;
	bool		read;

	if (login == NULL || management == NULL)
	{
		*error = psprintf("%s is not an https URL",
						  login == NULL ? "cloudconn.azure_login_url" : "cloudconn.azure_management_url");
		return false;
	}
	if (conn->token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("Azure connector " INT64_FORMAT " has no client secret", conn->id),
				 errhint("Set one with connector_set_token().")));

	initStringInfo(&body);
	enlargeStringInfo(&body, (int) (3 * strlen(conn->token) + 3 * strlen(management) + 256));
	AzureFormAppend(&body, "client_id", client);
	AzureFormAppend(&body, "scope", psprintf("%s/.default", management));
	AzureFormAppend(&body, "grant_type", "client_credentials");
	AzureFormAppend(&body, "client_secret", conn->token);

	memset(&req, 0, sizeof(req));
	req.method = "POST";
	req.url = psprintf("%s/%s/oauth2/v2.0/token", login, tenant);
	req.description = AZURE_LOGIN_DESCRIPTION;	/* never the URL: a setting */
	req.headers = headers;
	req.nheaders = 2;
	req.body = body.data;
	req.body_len = body.len;
	PG_TRY();
	{
		ok = HttpPerform(http, &req, &resp);
	}
	PG_FINALLY();
	{
		WipeBuffer(body.data, body.len);
		pfree(body.data);
	}
	PG_END_TRY();

	if (!ok || resp.status != 200)
	{
		*error = AzureExplainLogin(tenant, client, &resp);
		WipeBuffer(resp.body.data, resp.body.len);
		return false;
	}
	read = AzureReadToken(&resp, tok, error);
	WipeBuffer(resp.body.data, resp.body.len);
	return read;
}

/* ------------------------------------------------------------------------
 * ARM calls
 * ------------------------------------------------------------------------ */

/* One GET to ARM with the current token; auth is wiped with its context. */
typedef struct AzureCall
{
	HttpRequest req;
	HttpResponse resp;
	const char *headers[2];
	char	   *auth;
	uint64		generation;		/* of the token it carries */
} AzureCall;

/*
 * Prepare a GET of url (which must stay valid) in the current memory
 * context, which also holds the Authorization header, made at its exact
 * size so that no partial copy of the token is left behind.
 */
static void
AzureCallPrepare(AzureCall *call, const AzureToken *tok, const char *url, long delay_ms)
{
	static const char prefix[] = "Authorization: Bearer ";
	size_t		len = strlen(tok->access_token);

	memset(call, 0, sizeof(*call));
	call->auth = palloc(sizeof(prefix) + len);
	memcpy(call->auth, prefix, sizeof(prefix) - 1);
	memcpy(call->auth + sizeof(prefix) - 1, tok->access_token, len + 1);
	WipeOnReset(call->auth);
	call->headers[0] = call->auth;
	call->headers[1] = "Accept: application/json";
	call->req.method = "GET";
	call->req.url = url;
	call->req.description = AZURE_ARM_DESCRIPTION; /* never the URL: a setting */
	call->req.headers = call->headers;
	call->req.nheaders = 2;
	call->req.delay_ms = delay_ms;
	call->generation = tok->generation;
}

/* error.code of an ARM CloudError body, bounded, or NULL. */
static char *
AzureCloudErrorCode(const HttpResponse *resp)
{
	Jsonb	   *body;
	JsonbValue *error;

	if (resp->body.len == 0 || resp->body.len > AZURE_MAX_ERROR_BODY)
		return NULL;
	body = ProviderJsonbTryParse(resp->body.data, resp->body.len);
	if (body == NULL)
		return NULL;
	error = ProviderJsonbGet(&body->root, "error");
	if (error == NULL || error->type != jbvBinary)
		return NULL;
	return AzureBounded(ProviderJsonbString(error->val.binary.data, "code"));
}

/* A 401 saying the token expired: worth one renewal and a second try. */
static bool
AzureTokenExpired(const HttpResponse *resp)
{
	char	   *code;

	if (resp->status != 401)
		return false;
	code = AzureCloudErrorCode(resp);
	return code != NULL && strcmp(code, "ExpiredAuthenticationToken") == 0;
}

/*
 * A message a customer can act on for a failed ARM request (what: its
 * method, path and page); subscription is the one it was about, or NULL.
 */
static char *
AzureExplainArm(const char *what, const HttpResponse *resp, const char *client, const char *tenant,
				const char *subscription)
{
	char	   *code;

	if (resp->transport_error != NULL)
		return psprintf("could not reach Azure Resource Manager: %s", resp->transport_error);
	code = AzureCloudErrorCode(resp);
	if (resp->status == 403 && subscription != NULL)
		return psprintf("the service principal may not read it (HTTP 403 %s on %s): give the service principal the "
						"Reader role on the subscription, for example with az role assignment create --assignee %s "
						"--role Reader --scope /subscriptions/%s",
						code ? code : "Forbidden", what, client, subscription);
	if (resp->status == 401)
		return psprintf("Azure Resource Manager rejected the access token (HTTP 401%s%s) for %s",
						code ? " " : "", code ? code : "", what);
	if (resp->status == 404 && code != NULL && strcmp(code, "SubscriptionNotFound") == 0 && subscription != NULL)
		return psprintf("Azure found no such subscription (HTTP 404 SubscriptionNotFound on %s): check "
						"subscription_ids, and that the subscription belongs to tenant %s", what, tenant);
	if (resp->status == 429)
		return psprintf("Azure Resource Manager kept throttling %s (HTTP 429) after %d attempts; try again later",
						what, resp->attempts);
	return psprintf("Azure Resource Manager answered %s with HTTP %ld%s%s%s", what, resp->status,
					code ? " (" : "", code ? code : "", code ? ")" : "");
}

/*
 * The next page's link of a list page, checked: NULL with *failure NULL
 * for the last page.  A link to another origin would send the token
 * there: it is refused, and so is one that points back to the same page.
 */
static char *
AzureNextLink(const JsonbValue *page, const char *url, const char *origin, const char *what, char **failure)
{
	JsonbValue *v = JsonItemGet(page, "nextLink");
	char	   *next;
	char	   *next_origin;

	*failure = NULL;
	if (v == NULL || v->type == jbvNull || (v->type == jbvString && v->val.string.len == 0))
		return NULL;
	if (v->type != jbvString || v->val.string.len > 8192)
	{
		*failure = psprintf("Azure's response to %s has an invalid nextLink", what);
		return NULL;
	}
	next = pnstrdup(v->val.string.val, v->val.string.len);
	next_origin = HttpUrlOrigin(next);
	if (next_origin == NULL || strcmp(next_origin, origin) != 0)
	{
		*failure = psprintf("Azure's response to %s links the next page to another origin (%s); the run was stopped "
							"so that the access token is not sent there",
							what, next_origin ? next_origin : "not an https URL");
		return NULL;
	}
	if (strcmp(next, url) == 0)
	{
		*failure = psprintf("Azure's response to %s links the next page to the same page", what);
		return NULL;
	}
	return next;
}

/* ------------------------------------------------------------------------
 * Subscriptions
 * ------------------------------------------------------------------------ */

typedef struct AzureSubscriptionInfo
{
	char	   *id;				/* lower-cased */
	char	   *display_name;	/* or NULL */
	char	   *state;			/* or NULL */
} AzureSubscriptionInfo;

/* What a run or a test works with: the settings, the token, the origins. */
typedef struct AzureSession
{
	ProviderConnector *conn;
	HttpClient *http;			/* for the token and synchronous calls */
	AzureToken token;
	char	   *tenant;
	char	   *client;
	char	   *base;			/* cloudconn.azure_management_url, no trailing slash */
	char	   *origin;
} AzureSession;

/* Start a session: the origins checked, a first token.  false: *error says why. */
static bool
AzureSessionStart(AzureSession *s, ProviderConnector *conn, HttpClient *http, char **error)
{
	memset(s, 0, sizeof(*s));
	s->conn = conn;
	s->http = http;
	s->tenant = AzureSettingGuid(conn, "tenant_id");
	s->client = AzureSettingGuid(conn, "client_id");
	s->base = AzureBase(cloudconn_azure_management_url);
	if (s->base == NULL)
	{
		*error = pstrdup("cloudconn.azure_management_url is not an https URL");
		return false;
	}
	s->origin = HttpUrlOrigin(s->base);
	s->token.cxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn azure token", ALLOCSET_SMALL_SIZES);
	return AzureFetchToken(conn, http, &s->token, error);
}

/* Renew the token when it is due (or when forced); raises if that fails. */
static void
AzureEnsureToken(AzureSession *s, bool force)
{
	char	   *error = NULL;

	if (!force && s->token.access_token != NULL && GetCurrentTimestamp() < s->token.renew_at)
		return;
	if (!AzureFetchToken(s->conn, s->http, &s->token, &error))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s", error)));
}

/* One synchronous GET of url with the current token, its header wiped after. */
static bool
AzureGetOnce(AzureSession *s, const char *url, AzureCall *call)
{
	volatile bool ok = false;

	AzureCallPrepare(call, &s->token, url, 0);
	PG_TRY();
	{
		ok = HttpPerform(s->http, &call->req, &call->resp);
	}
	PG_FINALLY();
	{
		WipeString(call->auth);
	}
	PG_END_TRY();
	return ok;
}

/*
 * A synchronous GET of url, renewing the token once if ARM says it
 * expired; the response is in *resp.  false: a transport failure.
 */
static bool
AzureGet(AzureSession *s, const char *url, HttpResponse *resp)
{
	AzureCall	call;
	bool		ok;

	AzureEnsureToken(s, false);
	ok = AzureGetOnce(s, url, &call);
	if (ok && AzureTokenExpired(&call.resp))
	{
		AzureEnsureToken(s, true);
		ok = AzureGetOnce(s, url, &call);
	}
	*resp = call.resp;
	return ok;
}

static const char *const azure_subscription_members[] = {"subscriptionId", "displayName", "state", NULL};
static const char *const azure_page_members[] = {"nextLink", NULL};
static const JsonItemsSpec azure_subscriptions_spec = {
	"value", azure_subscription_members, azure_page_members, AZURE_MAX_PAGE_ITEMS
};

/*
 * A page of the subscriptions list (url), its subscriptions appended to
 * *out, the next page's link in *next (NULL for the last page); false
 * with *error when it cannot be taken.
 */
static bool
AzureReadSubscriptionsPage(const HttpResponse *resp, const char *what, const char *url, const char *origin,
						   List **out, char **next, char **error)
{
	JsonItemsPage items;
	char	   *failure;
	ListCell   *lc;

	*next = NULL;
	if (!JsonItemsRead(resp->body.data, resp->body.len, &azure_subscriptions_spec,
					   psprintf("Azure's response to %s", what), &items, error))
		return false;
	if (!items.has_items)
	{
		*error = psprintf("Azure's response to %s has no value array", what);
		return false;
	}
	foreach(lc, items.items)
	{
		JsonbValue *v = lfirst(lc);
		JsonbValue *id = JsonItemGet(v, "subscriptionId");
		AzureSubscriptionInfo *info;

		/* it goes into the path of every later request: a GUID only */
		if (!AzureIsGuidValue(id))
		{
			*error = psprintf("Azure's response to %s lists a subscription without a valid subscriptionId", what);
			return false;
		}
		info = palloc0(sizeof(AzureSubscriptionInfo));
		info->id = AzureLower(id->val.string.val, id->val.string.len);
		info->display_name = JsonItemString(v, "displayName");
		info->state = JsonItemString(v, "state");
		*out = lappend(*out, info);
	}
	if (list_length(*out) > AZURE_MAX_SUBSCRIPTIONS)
	{
		*error = psprintf("Azure lists more than %d subscriptions for the service principal", AZURE_MAX_SUBSCRIPTIONS);
		return false;
	}
	*next = AzureNextLink(items.page, url, origin, what, &failure);
	if (failure != NULL)
	{
		*error = failure;
		return false;
	}
	return true;
}

/*
 * Every subscription the principal can see (GET /subscriptions, page by
 * page).  false with *error when they cannot be listed.
 */
static bool
AzureListSubscriptions(AzureSession *s, List **out, char **error)
{
	char	   *url = psprintf("%s/subscriptions?api-version=" AZURE_SUBSCRIPTIONS_API, s->base);
	int			page = 0;

	*out = NIL;
	while (url != NULL)
	{
		HttpResponse resp;
		char	   *what = psprintf("GET /subscriptions (page %d)", ++page);
		char	   *next;

		if (!AzureGet(s, url, &resp) || resp.status != 200)
		{
			*error = AzureExplainArm(what, &resp, s->client, s->tenant, NULL);
			return false;
		}
		if (!AzureReadSubscriptionsPage(&resp, what, url, s->origin, out, &next, error))
			return false;
		if (next != NULL && page >= 1000)
		{
			*error = pstrdup("Azure's list of subscriptions does not end");
			return false;
		}
		url = next;
	}
	return true;
}

static AzureSubscriptionInfo *
AzureFindSubscription(List *subs, const char *id)
{
	ListCell   *lc;

	foreach(lc, subs)
	{
		AzureSubscriptionInfo *info = lfirst(lc);

		if (strcmp(info->id, id) == 0)
			return info;
	}
	return NULL;
}

/* settings.subscription_ids, lower-cased (NIL when absent or empty). */
static List *
AzureConfiguredSubscriptions(const ProviderConnector *conn)
{
	JsonbValue *v = ProviderJsonbGet(&conn->settings->root, "subscription_ids");
	List	   *ids = NIL;

	if (v == NULL || v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data))
		return NIL;
	for (int i = 0; i < (int) JsonContainerSize(v->val.binary.data); i++)
	{
		JsonbValue *e = getIthJsonbValueFromContainer(v->val.binary.data, i);

		if (AzureIsGuidValue(e))
			ids = lappend(ids, AzureLower(e->val.string.val, e->val.string.len));
	}
	return ids;
}

/* The hint of every message about a missing role. */
static char *
AzureReaderHint(const AzureSession *s, const char *subscription)
{
	return psprintf("az role assignment create --assignee %s --role Reader --scope /subscriptions/%s",
					s->client, subscription ? subscription : "<subscription id>");
}

/* ------------------------------------------------------------------------
 * connector_test
 * ------------------------------------------------------------------------ */

/*
 * The token, then the subscriptions the connector would list: the ones
 * configured, each visible to the principal, or every enabled one; each
 * probed with one page of its VM statuses, which a missing Reader role
 * refuses.
 */
static Jsonb *
AzureTest(ProviderConnector *conn, HttpClient *http)
{
	AzureSession s;
	List	   *visible;
	List	   *configured = AzureConfiguredSubscriptions(conn);
	List	   *targets = NIL;
	char	   *error = NULL;
	JsonbParseState *state = NULL;
	ListCell   *lc;

	if (!AzureSessionStart(&s, conn, http, &error) || !AzureListSubscriptions(&s, &visible, &error))
		return ProviderJsonbOk(false, "error", error, NULL);
	if (configured != NIL)
	{
		foreach(lc, configured)
		{
			AzureSubscriptionInfo *info = AzureFindSubscription(visible, lfirst(lc));

			if (info == NULL)
				return ProviderJsonbOk(false, "error",
									   psprintf("subscription %s is not visible to the service principal: it may not "
												"exist in tenant %s, or the service principal has no role on it; give "
												"the service principal the Reader role on it (%s)",
												(char *) lfirst(lc), s.tenant, AzureReaderHint(&s, lfirst(lc))), NULL);
			targets = lappend(targets, info);
		}
	}
	else
	{
		foreach(lc, visible)
		{
			AzureSubscriptionInfo *info = lfirst(lc);

			if (info->state != NULL && strcmp(info->state, "Enabled") == 0)
				targets = lappend(targets, info);
		}
		if (targets == NIL)
			return ProviderJsonbOk(false, "error",
								   psprintf("the service principal can read no enabled subscription of tenant %s: give "
											"it the Reader role on the subscriptions to discover (%s)",
											s.tenant, AzureReaderHint(&s, NULL)), NULL);
	}

	foreach(lc, targets)
	{
		AzureSubscriptionInfo *info = lfirst(lc);
		char	   *path = psprintf("/subscriptions/%s/providers/Microsoft.Compute/virtualMachines", info->id);
		char	   *url = psprintf("%s%s?api-version=" AZURE_COMPUTE_API "&statusOnly=true", s.base, path);
		HttpResponse resp;

		if (!AzureGet(&s, url, &resp) || resp.status != 200)
			return ProviderJsonbOk(false, "error",
								   psprintf("subscription %s: %s", info->id,
											AzureExplainArm(psprintf("GET %s?statusOnly=true", path), &resp,
															s.client, s.tenant, info->id)), NULL);
	}

	/* what identifies the subscriptions; nothing else is echoed */
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, targets)
	{
		AzureSubscriptionInfo *info = lfirst(lc);

		pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
		JsonItemPushString(&state, "id", info->id);
		AzurePushStringOrNull(&state, "display_name", info->display_name);
		AzurePushStringOrNull(&state, "state", info->state);
		pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	}
	return ProviderJsonbOk(true, "subscriptions", NULL,
						   JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_ARRAY, NULL)));
}

/* ------------------------------------------------------------------------
 * Lookup tables: ARM id -> what the VM mapping joins
 * ------------------------------------------------------------------------ */

/*
 * The strings of a subscription's lookup tables, packed into blocks without
 * a header each (there are tens of thousands per table): they live as long
 * as the subscription's listing, and go with the context of the blocks.
 */
typedef struct AzureArena
{
	MemoryContext cxt;
	char	   *block;
	size_t		used;
	size_t		size;
} AzureArena;

#define AZURE_ARENA_BLOCK (64 * 1024)

static void *
AzureArenaAlloc(AzureArena *a, size_t len, bool align)
{
	char	   *p;

	if (align)
		a->used = MAXALIGN(a->used);
	if (a->block == NULL || a->used + len > a->size)
	{
		a->size = Max(AZURE_ARENA_BLOCK, len);
		a->block = MemoryContextAlloc(a->cxt, a->size);
		a->used = 0;
	}
	p = a->block + a->used;
	a->used += len;
	return p;
}

static char *
AzureArenaCopy(AzureArena *a, const char *s, size_t len)
{
	char	   *p = AzureArenaAlloc(a, len + 1, false);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* What the ids of each table's resources look like after their resource group. */
#define AZURE_VM_TYPE "/providers/microsoft.compute/virtualmachines/"
#define AZURE_NIC_TYPE "/providers/microsoft.network/networkinterfaces/"
#define AZURE_PIP_TYPE "/providers/microsoft.network/publicipaddresses/"

/*
 * The key of an ARM id in its subscription's tables, into buf (at least
 * len + 2 bytes): for /subscriptions/<sub>/resourceGroups/<rg><type><name>,
 * "<rg>/<name>" lower-cased (ids are case-insensitive; what every id of the
 * table shares is left out); any other id whole, lower-cased, after a '!'.
 */
static size_t
AzureKey(const char *id, size_t len, const char *sub, const char *type, char *buf)
{
	size_t		sublen = strlen(sub);
	size_t		tlen = strlen(type);
	size_t		k = 0;
	const char *end = id + len;

	if (len > 15 + sublen + 16 && pg_strncasecmp(id, "/subscriptions/", 15) == 0 &&
		pg_strncasecmp(id + 15, sub, sublen) == 0 && pg_strncasecmp(id + 15 + sublen, "/resourcegroups/", 16) == 0)
	{
		const char *rg = id + 15 + sublen + 16;
		const char *slash = memchr(rg, '/', end - rg);

		if (slash != NULL && slash > rg && (size_t) (end - slash) > tlen &&
			pg_strncasecmp(slash, type, tlen) == 0 && memchr(slash + tlen, '/', end - slash - tlen) == NULL)
		{
			for (const char *c = rg; c < slash; c++)
				buf[k++] = pg_ascii_tolower((unsigned char) *c);
			buf[k++] = '/';
			for (const char *c = slash + tlen; c < end; c++)
				buf[k++] = pg_ascii_tolower((unsigned char) *c);
			buf[k] = '\0';
			return k;
		}
	}
	buf[k++] = '!';
	for (const char *c = id; c < end; c++)
		buf[k++] = pg_ascii_tolower((unsigned char) *c);
	buf[k] = '\0';
	return k;
}

typedef struct AzureEntry
{
	char	   *key;			/* AzureKey's */
	uint32		hash;
	char		status;			/* simplehash's */
	const char *value;			/* status: power state; public IP: its address; NIC: primary private address */
	const char *public_ip;		/* NIC: the key of its primary configuration's public IP, then its address */
	const char **private_ips;	/* NIC: its private addresses, primary first */
	int			nprivate;
} AzureEntry;

#define SH_PREFIX azure_ids
#define SH_ELEMENT_TYPE AzureEntry
#define SH_KEY_TYPE char *
#define SH_KEY key
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k), (int) strlen(k))
#define SH_EQUAL(tb, a, b) (strcmp((a), (b)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* ------------------------------------------------------------------------
 * Listing
 * ------------------------------------------------------------------------ */

typedef enum AzureListKind
{
	AZURE_LIST_STATUS,			/* power states */
	AZURE_LIST_NICS,
	AZURE_LIST_PUBLIC_IPS,
	AZURE_LIST_VMS,				/* the items, read after the three lookups */
	AZURE_NLISTS
} AzureListKind;

#define AZURE_NLOOKUPS AZURE_LIST_VMS

typedef struct AzureListSpec
{
	const char *path;			/* after /subscriptions/<id> */
	const char *query;
	const char *label;			/* how messages name it, after the path */
	JsonItemsSpec items;
} AzureListSpec;

static const char *const azure_lookup_members[] = {"id", "properties", NULL};
static const char *const azure_vm_members[] = {"id", "name", "location", "zones", "tags", "properties", NULL};

static const AzureListSpec azure_lists[AZURE_NLISTS] = {
	[AZURE_LIST_STATUS] = {
		"/providers/Microsoft.Compute/virtualMachines", "api-version=" AZURE_COMPUTE_API "&statusOnly=true",
		"?statusOnly=true",
		{"value", azure_lookup_members, azure_page_members, AZURE_MAX_PAGE_ITEMS},
	},
	[AZURE_LIST_NICS] = {
		"/providers/Microsoft.Network/networkInterfaces", "api-version=" AZURE_NETWORK_API, "",
		{"value", azure_lookup_members, azure_page_members, AZURE_MAX_PAGE_ITEMS},
	},
	[AZURE_LIST_PUBLIC_IPS] = {
		"/providers/Microsoft.Network/publicIPAddresses", "api-version=" AZURE_NETWORK_API, "",
		{"value", azure_lookup_members, azure_page_members, AZURE_MAX_PAGE_ITEMS},
	},
	[AZURE_LIST_VMS] = {
		"/providers/Microsoft.Compute/virtualMachines", "api-version=" AZURE_COMPUTE_API, "",
		{"value", azure_vm_members, azure_page_members, AZURE_MAX_PAGE_ITEMS},
	},
};

typedef struct AzureSub AzureSub;

/* One list of a subscription, page by page. */
typedef struct AzureList
{
	AzureListKind kind;
	AzureSub   *sub;
	HttpClient *http;			/* while a page is in flight */
	MemoryContext pagecxt;		/* the page in flight: its header, answer, items */
	char	   *url;			/* of the page in flight, in the subscription's context */
	int			page;
	AzureCall	call;
	bool		in_flight;
	bool		done;
	bool		renewed;		/* the page was sent again with a renewed token */
} AzureList;

/* One subscription's listing: its four lists and the lookups they fill. */
struct AzureSub
{
	char	   *id;				/* lower-cased: the scope */
	MemoryContext cxt;			/* all of the listing's memory */
	MemoryContext pipcxt;		/* the public IP table and its strings, until resolved */
	AzureArena	lookups;		/* strings of the status and NIC tables */
	AzureArena	pipstrings;		/* strings of the public IP table */
	azure_ids_hash *status;
	azure_ids_hash *nics;
	azure_ids_hash *pips;
	AzureList	lists[AZURE_NLISTS];
	int			lookups_left;
	char	   *failure;		/* why the listing failed, or NULL */
	int64		remaining_reads;	/* last x-ms-ratelimit-remaining-subscription-reads, or -1 */
};

/* What the VM mapping is handed: the VM and the lookups to join it with. */
typedef struct AzureVmItem
{
	const JsonbValue *vm;
	const AzureSub *sub;
} AzureVmItem;

typedef struct AzureRun
{
	DiscoveryContext *ctx;
	MemoryContext cxt;			/* the run's: subscriptions, handles, failures */
	const ResourceType *type;
	AzureSession session;
	HttpBatch  *batch;
	HttpClient **idle;			/* handles of lists between pages, for the next ones */
	int			nidle;
	int			maxidle;
} AzureRun;

/* While a page is read, the other lists' transfers move on. */
static void
AzureProgress(AzureRun *run)
{
	HttpBatchProgress(run->batch);
}

/* How messages name a list's page. */
static char *
AzureListWhat(const AzureList *l)
{
	const AzureListSpec *spec = &azure_lists[l->kind];

	return psprintf("GET /subscriptions/%s%s%s (page %d)", l->sub->id, spec->path, spec->label, l->page);
}

/* The subscription's listing failed: its other lists stop at their next answer. */
static void
AzureSubFail(AzureRun *run, AzureSub *sub, const char *message)
{
	if (sub->failure == NULL)
		sub->failure = MemoryContextStrdup(run->cxt, psprintf("subscription %s: %s", sub->id, message));
}

/* The wait before a subscription's next request, from its reads left. */
static long
AzurePaceMs(const AzureSub *sub)
{
	if (sub->remaining_reads < 0 || sub->remaining_reads >= AZURE_PACE_READS)
		return 0;
	return 1000L * (AZURE_PACE_READS - sub->remaining_reads) / AZURE_PACE_READS;
}

/* Send the list's next page (l->url) with the current token. */
static void
AzureListSend(AzureRun *run, AzureList *l)
{
	MemoryContext old;

	AzureEnsureToken(&run->session, false);
	MemoryContextReset(l->pagecxt);
	old = MemoryContextSwitchTo(l->pagecxt);
	AzureCallPrepare(&l->call, &run->session.token, l->url, AzurePaceMs(l->sub));
	if (l->http == NULL)
	{
		MemoryContextSwitchTo(run->cxt);
		l->http = run->nidle > 0 ? run->idle[--run->nidle] : HttpClientCreate();
		MemoryContextSwitchTo(l->pagecxt);
	}
	HttpBatchStart(run->batch, l->http, &l->call.req, &l->call.resp);
	MemoryContextSwitchTo(old);
	l->in_flight = true;
}

/* Start a list at its first page. */
static void
AzureListStart(AzureRun *run, AzureSub *sub, AzureListKind kind)
{
	AzureList  *l = &sub->lists[kind];
	const AzureListSpec *spec = &azure_lists[kind];

	l->kind = kind;
	l->sub = sub;
	l->page = 1;
	l->pagecxt = AllocSetContextCreate(sub->cxt, "cloudconn azure page", ALLOCSET_DEFAULT_SIZES);
	l->url = MemoryContextStrdup(sub->cxt, psprintf("%s/subscriptions/%s%s?%s", run->session.base, sub->id,
													spec->path, spec->query));
	AzureListSend(run, l);
}

static azure_ids_hash *
AzureTableCreate(MemoryContext cxt)
{
	return azure_ids_create(cxt, 1024, NULL);
}

/*
 * Add an entry under the key of id, a string (the key into arena); NULL
 * when the table is full (the listing fails) or id is not a string.  A
 * second entry of the same id replaces the first.
 */
static AzureEntry *
AzureTableAdd(AzureRun *run, AzureSub *sub, azure_ids_hash *table, AzureArena *arena, const JsonbValue *id,
			  const char *type, const char *what)
{
	char		buf[AZURE_MAX_ID_BYTES + 2];
	size_t		len;
	AzureEntry *e;
	bool		found;

	if (id == NULL || id->type != jbvString || id->val.string.len == 0 || id->val.string.len > AZURE_MAX_ID_BYTES)
		return NULL;			/* nothing can be joined with it */
	if (table->members >= AZURE_MAX_LOOKUP_ENTRIES)
	{
		AzureSubFail(run, sub, psprintf("it lists more than %d %s", AZURE_MAX_LOOKUP_ENTRIES, what));
		return NULL;
	}
	len = AzureKey(id->val.string.val, id->val.string.len, sub->id, type, buf);
	e = azure_ids_insert(table, AzureArenaCopy(arena, buf, len), &found);
	e->value = NULL;
	e->public_ip = NULL;
	e->private_ips = NULL;
	e->nprivate = 0;
	return e;
}

/* A string member, copied into arena (at most 1024 bytes), or NULL. */
static const char *
AzureCopyString(AzureArena *arena, const JsonbValue *object, const char *key)
{
	JsonbValue *v = JsonItemGet(object, key);

	if (v == NULL || v->type != jbvString || v->val.string.len > AZURE_MAX_ID_BYTES)
		return NULL;
	return AzureArenaCopy(arena, v->val.string.val, v->val.string.len);
}

/* The power states ARM reports (any other is copied). */
static const char *const azure_power_states[] = {
	"running", "deallocated", "stopped", "starting", "stopping", "deallocating", NULL
};

/* Element i of an in-memory array member, or NULL. */
static JsonbValue *
AzureArrayGet(const JsonbValue *object, const char *key, int *n)
{
	JsonbValue *v = JsonItemGet(object, key);

	*n = (v != NULL && v->type == jbvArray) ? v->val.array.nElems : 0;
	return *n > 0 ? v->val.array.elems : NULL;
}

static bool
AzureIsTrue(const JsonbValue *v)
{
	return v != NULL && v->type == jbvBool && v->val.boolean;
}

/* A page of the status list: id -> "running", "deallocated", ... */
static void
AzureReadStatuses(AzureRun *run, AzureSub *sub, List *items)
{
	ListCell   *lc;

	foreach(lc, items)
	{
		JsonbValue *view = JsonItemGet(JsonItemGet(lfirst(lc), "properties"), "instanceView");
		JsonbValue *statuses;
		AzureEntry *e;
		int			n;

		statuses = AzureArrayGet(view, "statuses", &n);
		for (int i = 0; i < n; i++)
		{
			char	   *code = JsonItemString(&statuses[i], "code");

			if (code == NULL || strncmp(code, "PowerState/", 11) != 0 || strlen(code) > 64)
				continue;
			e = AzureTableAdd(run, sub, sub->status, &sub->lookups, JsonItemGet(lfirst(lc), "id"),
							  AZURE_VM_TYPE, "virtual machines");
			if (e == NULL)
				break;
			for (const char *const *known = azure_power_states; *known != NULL && e->value == NULL; known++)
			{
				if (strcmp(*known, code + 11) == 0)
					e->value = *known;
			}
			if (e->value == NULL)
				e->value = AzureArenaCopy(&sub->lookups, code + 11, strlen(code + 11));
			break;
		}
	}
}

/* A page of the NIC list: id -> its addresses and its public IP's id. */
static void
AzureReadNics(AzureRun *run, AzureSub *sub, List *items)
{
	ListCell   *lc;

	foreach(lc, items)
	{
		JsonbValue *configs;
		AzureEntry *e;
		int			n;
		int			primary = 0;
		int			k = 0;

		configs = AzureArrayGet(JsonItemGet(lfirst(lc), "properties"), "ipConfigurations", &n);
		if ((e = AzureTableAdd(run, sub, sub->nics, &sub->lookups, JsonItemGet(lfirst(lc), "id"),
							   AZURE_NIC_TYPE, "network interfaces")) == NULL)
			continue;
		for (int i = 0; i < n; i++)
		{
			if (AzureIsTrue(JsonItemGet(JsonItemGet(&configs[i], "properties"), "primary")))
			{
				primary = i;
				break;
			}
		}
		if (n == 0)
			continue;
		e->private_ips = AzureArenaAlloc(&sub->lookups, sizeof(char *) * n, true);
		for (int i = -1; i < n; i++)
		{
			/* the primary configuration first, then the others in order */
			int			c = i < 0 ? primary : i;
			const char *ip;

			if (i == primary)
				continue;
			ip = AzureCopyString(&sub->lookups, JsonItemGet(&configs[c], "properties"), "privateIPAddress");
			if (ip != NULL)
				e->private_ips[k++] = ip;
			if (i < 0)
			{
				JsonbValue *pip = JsonItemGet(JsonItemGet(JsonItemGet(&configs[c], "properties"), "publicIPAddress"), "id");

				e->value = ip;
				if (pip != NULL && pip->type == jbvString && pip->val.string.len <= AZURE_MAX_ID_BYTES)
				{
					char		buf[AZURE_MAX_ID_BYTES + 2];
					size_t		len = AzureKey(pip->val.string.val, pip->val.string.len, sub->id, AZURE_PIP_TYPE, buf);

					e->public_ip = AzureArenaCopy(&sub->lookups, buf, len);
				}
			}
		}
		e->nprivate = k;
	}
}

/* A page of the public IP list: id -> its address (none while unallocated). */
static void
AzureReadPublicIps(AzureRun *run, AzureSub *sub, List *items)
{
	ListCell   *lc;

	foreach(lc, items)
	{
		const char *address = AzureCopyString(&sub->pipstrings, JsonItemGet(lfirst(lc), "properties"), "ipAddress");
		AzureEntry *e;

		if (address != NULL &&
			(e = AzureTableAdd(run, sub, sub->pips, &sub->pipstrings, JsonItemGet(lfirst(lc), "id"),
							   AZURE_PIP_TYPE, "public IP addresses")) != NULL)
			e->value = address;
	}
}

/*
 * The lookups are read: each NIC gets its public address, and the public
 * IP table goes.
 */
static void
AzureResolvePublicIps(AzureSub *sub)
{
	azure_ids_iterator it;
	AzureEntry *e;

	azure_ids_start_iterate(sub->nics, &it);
	while ((e = azure_ids_iterate(sub->nics, &it)) != NULL)
	{
		AzureEntry *pip = e->public_ip ? azure_ids_lookup(sub->pips, (char *) e->public_ip) : NULL;

		e->public_ip = pip ? AzureArenaCopy(&sub->lookups, pip->value, strlen(pip->value)) : NULL;
	}
	sub->pips = NULL;			/* it is in pipcxt */
	MemoryContextDelete(sub->pipcxt);
	sub->pipcxt = NULL;
}

/* A page of the VM list: mapped now, each VM joined with the lookups. */
static void
AzureReadVms(AzureRun *run, AzureSub *sub, JsonItemsPage *page)
{
	AzureVmItem *vms = palloc(sizeof(AzureVmItem) * Max(list_length(page->items), 1));
	List	   *items = NIL;
	int			i = 0;
	ListCell   *lc;

	foreach(lc, page->items)
	{
		vms[i].vm = lfirst(lc);
		vms[i].sub = sub;
		items = lappend(items, &vms[i++]);
	}
	AzureProgress(run);
	DiscoveryPage(run->ctx, run->type, sub->id, items, page->untranslatable);
	AzureProgress(run);
}

/* The reads left in the subscription's quota, as the answer reports them. */
static void
AzureNoteReads(AzureSub *sub, const HttpResponse *resp)
{
	const char *v = HttpResponseHeader(resp, "x-ms-ratelimit-remaining-subscription-reads");
	char	   *end;
	long		n;

	if (v == NULL || strlen(v) > 12 || strspn(v, "0123456789") != strlen(v) || v[0] == '\0')
		return;
	n = strtol(v, &end, 10);
	sub->remaining_reads = n;
}

/*
 * A page is read: its items go to the lookups (or, for VMs, to the
 * engine), and the list goes on to its next page or ends.
 */
static void
AzureListPage(AzureRun *run, AzureList *l, const char *what)
{
	AzureSub   *sub = l->sub;
	HttpResponse *resp = &l->call.resp;
	JsonItemsPage page;
	char	   *error;
	char	   *next;

	if (!JsonItemsRead(resp->body.data, resp->body.len, &azure_lists[l->kind].items,
					   psprintf("Azure's response to %s", what), &page, &error))
	{
		AzureSubFail(run, sub, error);
		return;
	}
	if (!page.has_items)
	{
		AzureSubFail(run, sub, psprintf("Azure's response to %s has no value array", what));
		return;
	}
	next = AzureNextLink(page.page, l->url, run->session.origin, what, &error);
	if (error != NULL)
	{
		AzureSubFail(run, sub, error);
		return;
	}
	switch (l->kind)
	{
		case AZURE_LIST_STATUS:
			AzureReadStatuses(run, sub, page.items);
			break;
		case AZURE_LIST_NICS:
			AzureReadNics(run, sub, page.items);
			break;
		case AZURE_LIST_PUBLIC_IPS:
			AzureReadPublicIps(run, sub, page.items);
			break;
		case AZURE_LIST_VMS:
			AzureReadVms(run, sub, &page);
			break;
		case AZURE_NLISTS:
			break;
	}
	if (l->kind != AZURE_LIST_VMS)
		DiscoveryPage(run->ctx, run->type, sub->id, NIL, NULL);	/* a page read, no item */
	if (sub->failure != NULL)
		return;
	if (next != NULL && l->page >= AZURE_MAX_PAGES)
	{
		AzureSubFail(run, sub, psprintf("Azure's list of %s%s does not end after %d pages",
										azure_lists[l->kind].path, azure_lists[l->kind].label, AZURE_MAX_PAGES));
		return;
	}
	if (next != NULL)
	{
		pfree(l->url);
		l->url = MemoryContextStrdup(sub->cxt, next);
		l->page++;
		l->renewed = false;
		AzureListSend(run, l);
		return;
	}
	l->done = true;
	if (l->kind != AZURE_LIST_VMS && --sub->lookups_left == 0)
	{
		AzureResolvePublicIps(sub);
		AzureListStart(run, sub, AZURE_LIST_VMS);
	}
}

/*
 * The answer to a list's page.  An expired token is renewed (once for
 * lists that all answer so at once) and the page sent again, once; any
 * other failure fails the subscription's listing.
 */
static void
AzureListAnswer(AzureRun *run, AzureList *l, bool ok)
{
	AzureSub   *sub = l->sub;
	HttpResponse *resp = &l->call.resp;
	MemoryContext old = MemoryContextSwitchTo(l->pagecxt);
	char	   *what = AzureListWhat(l);

	l->in_flight = false;
	WipeString(l->call.auth);
	if (ok)
		AzureNoteReads(sub, resp);
	if (sub->failure != NULL)
		;						/* the listing failed meanwhile: this answer goes unread */
	else if (ok && AzureTokenExpired(resp) && !l->renewed)
	{
		if (l->call.generation == run->session.token.generation)
			AzureEnsureToken(&run->session, true);
		l->renewed = true;
		AzureListSend(run, l);
	}
	else if (!ok || resp->status != 200)
		AzureSubFail(run, sub, AzureExplainArm(what, resp, run->session.client, run->session.tenant, sub->id));
	else
		AzureListPage(run, l, what);
	MemoryContextSwitchTo(old);
	if (!l->in_flight)
		MemoryContextReset(l->pagecxt);
}

/* Start a subscription's listing: its three lookups at once. */
static void
AzureSubStart(AzureRun *run, AzureSub *sub, MemoryContext runcxt)
{
	sub->cxt = AllocSetContextCreate(runcxt, "cloudconn azure subscription", ALLOCSET_DEFAULT_SIZES);
	sub->pipcxt = AllocSetContextCreate(sub->cxt, "cloudconn azure public IPs", ALLOCSET_DEFAULT_SIZES);
	sub->lookups.cxt = sub->cxt;
	sub->pipstrings.cxt = sub->pipcxt;
	sub->status = AzureTableCreate(sub->cxt);
	sub->nics = AzureTableCreate(sub->cxt);
	sub->pips = AzureTableCreate(sub->pipcxt);
	sub->remaining_reads = -1;
	sub->lookups_left = AZURE_NLOOKUPS;
	for (int k = 0; k < AZURE_NLOOKUPS; k++)
		AzureListStart(run, sub, (AzureListKind) k);
}

static bool
AzureSubInFlight(const AzureSub *sub)
{
	for (int k = 0; k < AZURE_NLISTS; k++)
	{
		if (sub->lists[k].in_flight)
			return true;
	}
	return false;
}

/* The listing is over, complete or failed: the engine is told, its memory goes. */
static void
AzureSubEnd(AzureRun *run, AzureSub *sub)
{
	if (sub->failure != NULL)
		DiscoveryFailed(run->ctx, run->type, sub->id, sub->failure);
	else
		DiscoveryListed(run->ctx, run->type, sub->id);
	MemoryContextDelete(sub->cxt);
	sub->cxt = NULL;
}

/* The subscriptions to list: the configured ones, else every enabled one. */
static List *
AzureRunSubscriptions(AzureRun *run)
{
	List	   *ids = AzureConfiguredSubscriptions(run->session.conn);
	List	   *visible;
	char	   *error = NULL;
	ListCell   *lc;

	if (ids != NIL)
		return ids;
	if (!AzureListSubscriptions(&run->session, &visible, &error))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s", error)));
	foreach(lc, visible)
	{
		AzureSubscriptionInfo *info = lfirst(lc);

		ListCell   *seen;
		bool		dup = false;

		if (info->state == NULL || strcmp(info->state, "Enabled") != 0)
			continue;
		foreach(seen, ids)
			dup = dup || strcmp(lfirst(seen), info->id) == 0;
		if (!dup)
			ids = lappend(ids, info->id);
	}
	if (ids == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("the service principal can read no enabled subscription of tenant %s: give it the Reader role "
						"on the subscriptions to discover (%s)", run->session.tenant,
						AzureReaderHint(&run->session, NULL))));
	return ids;
}

/*
 * Every subscription, at most cloudconn.azure_max_parallel_subscriptions
 * at once.  A failing subscription makes the run partial; the others
 * still merge.
 */
static void
AzureDiscover(DiscoveryContext *ctx)
{
	AzureRun	run;
	List	   *ids;
	AzureSub   *subs;
	int			nsubs;
	int			started = 0;
	int			going = 0;
	char	   *error = NULL;
	MemoryContext runcxt = CurrentMemoryContext;
	ListCell   *lc;

	memset(&run, 0, sizeof(run));
	run.ctx = ctx;
	run.cxt = runcxt;
	if (list_length(ctx->connector->resource_types) != 1)
		elog(ERROR, "Azure connector " INT64_FORMAT " lists %d resource types", ctx->connector->id,
			 list_length(ctx->connector->resource_types));
	run.type = linitial(ctx->connector->resource_types);
	if (!AzureSessionStart(&run.session, ctx->connector, ctx->http, &error))
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("%s", error)));
	ids = AzureRunSubscriptions(&run);
	nsubs = list_length(ids);
	subs = palloc0(sizeof(AzureSub) * nsubs);
	foreach(lc, ids)
		subs[foreach_current_index(lc)].id = lfirst(lc);
	run.maxidle = AZURE_NLISTS * nsubs;
	run.idle = palloc(sizeof(HttpClient *) * run.maxidle);
	run.batch = HttpBatchCreate();

	for (;;)
	{
		HttpClient *client;
		AzureList  *l = NULL;
		bool		ok;

		while (going < cloudconn_azure_max_parallel_subscriptions && started < nsubs)
		{
			AzureSubStart(&run, &subs[started++], runcxt);
			going++;
		}
		if (going == 0)
			break;

		client = HttpBatchWait(run.batch, &ok);
		for (int i = 0; i < started && client != NULL && l == NULL; i++)
		{
			for (int k = 0; k < AZURE_NLISTS && subs[i].cxt != NULL; k++)
			{
				if (subs[i].lists[k].in_flight && subs[i].lists[k].http == client)
					l = &subs[i].lists[k];
			}
		}
		if (client == NULL || l == NULL)
			elog(ERROR, "Azure listing lost track of its requests");

		AzureListAnswer(&run, l, ok);
		if (!l->in_flight && l->http != NULL)
		{
			/* the list is between pages or over: its handle serves another */
			run.idle[run.nidle++] = l->http;
			l->http = NULL;
		}
		if (!AzureSubInFlight(l->sub))
		{
			AzureSubEnd(&run, l->sub);
			going--;
		}
	}
}

/* ------------------------------------------------------------------------
 * Mapping
 * ------------------------------------------------------------------------ */

/*
 * A lower-cased VM id of subscription sub, of the form
 * /subscriptions/<sub>/resourcegroups/<rg>/providers/microsoft.compute/virtualmachines/<name>;
 * its resource group in *group.  NULL for anything else.
 */
static char *
AzureVmId(const char *id, const char *sub, char **group)
{
	char	   *lower;
	char	   *prefix = psprintf("/subscriptions/%s/resourcegroups/", sub);
	char	   *rg;
	char	   *rest;
	static const char vms[] = "/providers/microsoft.compute/virtualmachines/";

	if (id == NULL || strlen(id) > AZURE_MAX_ID_BYTES)
		return NULL;
	lower = AzureLower(id, strlen(id));
	if (strncmp(lower, prefix, strlen(prefix)) != 0)
		return NULL;
	rg = lower + strlen(prefix);
	rest = strchr(rg, '/');
	if (rest == NULL || rest == rg || strncmp(rest, vms, sizeof(vms) - 1) != 0)
		return NULL;
	if (rest[sizeof(vms) - 1] == '\0' || strchr(rest + sizeof(vms) - 1, '/') != NULL)
		return NULL;
	*group = pnstrdup(rg, rest - rg);
	return lower;
}

/* "Linux (Canonical:ubuntu-24_04-lts:server:latest)", from the storage profile. */
static char *
AzureOsInfo(const JsonbValue *storage)
{
	JsonbValue *image = JsonItemGet(storage, "imageReference");
	char	   *os = JsonItemString(JsonItemGet(storage, "osDisk"), "osType");
	char	   *publisher = JsonItemString(image, "publisher");
	char	   *image_id = JsonItemString(image, "id");
	char	   *urn = NULL;

	if (publisher != NULL)
	{
		char	   *offer = JsonItemString(image, "offer");
		char	   *sku = JsonItemString(image, "sku");
		char	   *version = JsonItemString(image, "version");

		urn = psprintf("%s:%s:%s:%s", publisher, offer ? offer : "", sku ? sku : "", version ? version : "");
	}
	else if (image_id != NULL)
		urn = AzureLower(image_id, strlen(image_id));
	if (os != NULL && urn != NULL)
		return psprintf("%s (%s)", os, urn);
	return os ? os : urn;
}

static bool
AzureMapVm(const ProviderConnector *conn, const char *scope, const void *item, MappedResource *out, char **error)
{
	const AzureVmItem *vi = (const AzureVmItem *) item;
	const JsonbValue *vm = vi->vm;
	JsonbValue *props;
	JsonbValue *refs;
	JsonbValue *storage;
	JsonbValue	key;
	const AzureEntry *primary = NULL;
	const AzureEntry *power;
	char	   *group = NULL;
	char	   *name;
	List	   *private_ips = NIL;
	int			nrefs;
	int			primary_ref = 0;
	JsonbParseState *state = NULL;
	ListCell   *lc;

	memset(out, 0, sizeof(*out));
	if (vm->type != jbvObject)
	{
		*error = pstrdup("a virtual machine in the listing is not a JSON object");
		return false;
	}
	out->external_id = AzureVmId(JsonItemString(vm, "id"), scope, &group);
	if (out->external_id == NULL)
	{
		*error = psprintf("a virtual machine in the listing of subscription %s has no valid id", scope);
		return false;
	}
	name = JsonItemString(vm, "name");
	if (name == NULL || name[0] == '\0' || strlen(name) > 1000)
	{
		*error = psprintf("virtual machine %s has no valid name", out->external_id);
		return false;
	}
	props = JsonItemGet(vm, "properties");
	storage = JsonItemGet(props, "storageProfile");
	{
		char		key[AZURE_MAX_ID_BYTES + 2];

		AzureKey(out->external_id, strlen(out->external_id), scope, AZURE_VM_TYPE, key);
		power = azure_ids_lookup(vi->sub->status, key);
	}

	/* its NICs: the primary one, then the others, as the VM lists them */
	refs = AzureArrayGet(JsonItemGet(props, "networkProfile"), "networkInterfaces", &nrefs);
	for (int i = 0; i < nrefs; i++)
	{
		if (AzureIsTrue(JsonItemGet(JsonItemGet(&refs[i], "properties"), "primary")))
		{
			primary_ref = i;
			break;
		}
	}
	for (int i = nrefs > 0 ? -1 : 0; i < nrefs; i++)
	{
		int			r = i < 0 ? primary_ref : i;
		JsonbValue *nic_id = JsonItemGet(&refs[r], "id");
		const AzureEntry *nic;
		char		key[AZURE_MAX_ID_BYTES + 2];

		if (i == primary_ref || nic_id == NULL || nic_id->type != jbvString ||
			nic_id->val.string.len > AZURE_MAX_ID_BYTES)
			continue;
		AzureKey(nic_id->val.string.val, nic_id->val.string.len, scope, AZURE_NIC_TYPE, key);
		nic = azure_ids_lookup(vi->sub->nics, key);
		if (nic == NULL)
			continue;
		if (i < 0)
			primary = nic;
		for (int k = 0; k < nic->nprivate; k++)
		{
			if (!AzureValidAddress(nic->private_ips[k]))
			{
				*error = psprintf("virtual machine %s has a malformed private IP address", out->external_id);
				return false;
			}
			private_ips = lappend(private_ips, (char *) nic->private_ips[k]);
		}
	}
	if (primary != NULL)
		out->ip_address = (char *) (primary->public_ip ? primary->public_ip : primary->value);

	out->name = name;
	out->hostname = JsonItemString(JsonItemGet(props, "osProfile"), "computerName");
	if (out->hostname != NULL && (out->hostname[0] == '\0' || strlen(out->hostname) > 255))
		out->hostname = NULL;
	out->os_info = AzureOsInfo(storage);
	out->create_if_new = true;

	/* attributes: README's mapping, nothing secret */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	AzurePushOrNull(&state, "location", JsonItemGet(vm, "location"));
	AzurePushOrNull(&state, "zones", JsonItemGet(vm, "zones"));
	AzurePushOrNull(&state, "size", JsonItemGet(JsonItemGet(props, "hardwareProfile"), "vmSize"));
	AzurePushStringOrNull(&state, "power_state", power ? power->value : NULL);
	AzurePushOrNull(&state, "provisioning_state", JsonItemGet(props, "provisioningState"));
	JsonItemPushString(&state, "resource_group", group);
	JsonItemPushString(&state, "subscription_id", scope);
	AzurePushOrNull(&state, "vm_id", JsonItemGet(props, "vmId"));
	AzurePushOrNull(&state, "os_disk_type",
					JsonItemGet(JsonItemGet(JsonItemGet(storage, "osDisk"), "managedDisk"), "storageAccountType"));
	key.type = jbvString;
	key.val.string.val = "private_ips";
	key.val.string.len = strlen("private_ips");
	pushJsonbValue(&state, WJB_KEY, &key);
	pushJsonbValue(&state, WJB_BEGIN_ARRAY, NULL);
	foreach(lc, private_ips)
	{
		JsonbValue	ip;

		ip.type = jbvString;
		ip.val.string.val = lfirst(lc);
		ip.val.string.len = strlen(lfirst(lc));
		pushJsonbValue(&state, WJB_ELEM, &ip);
	}
	pushJsonbValue(&state, WJB_END_ARRAY, NULL);
	AzurePushOrNull(&state, "tags", JsonItemGet(vm, "tags"));
	out->attributes = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
	return true;
}

static const ResourceType azure_vm_type = {
	.ci_type = "azure_vm",
	.display_name = "Virtual machines",
	.default_enabled = true,
	.scope_kind = SCOPE_SUBSCRIPTION,
	.listing = azure_lists,
	.map = AzureMapVm,
};

/* ------------------------------------------------------------------------
 * Settings and the registry entry
 * ------------------------------------------------------------------------ */

static void
AzureValidateSettings(Jsonb *settings)
{
	JsonbValue *subs = ProviderJsonbGet(&settings->root, "subscription_ids");
	int			n;

	if (!AzureIsGuidValue(ProviderJsonbGet(&settings->root, "tenant_id")))
		ProviderInvalidSetting("Azure tenant id must be a GUID",
							   "Copy the Directory (tenant) ID from the overview of the app registration in the Azure "
							   "portal, for example \"" AZURE_GUID_EXAMPLE "\".");
	if (!AzureIsGuidValue(ProviderJsonbGet(&settings->root, "client_id")))
		ProviderInvalidSetting("Azure client id must be a GUID",
							   "Copy the Application (client) ID from the overview of the app registration, or the "
							   "appId that az ad sp create-for-rbac printed.");
	if (subs == NULL)
		return;
	if (subs->type != jbvBinary || !JsonContainerIsArray(subs->val.binary.data))
		ProviderInvalidSetting("Azure \"subscription_ids\" must be an array of subscription ids",
							   "Leave it out, or empty, to discover every enabled subscription the service principal can read.");
	n = JsonContainerSize(subs->val.binary.data);
	if (n > AZURE_MAX_SETTING_SUBSCRIPTIONS)
		ProviderInvalidSetting("Azure \"subscription_ids\" lists too many subscriptions",
							   psprintf("It lists at most %d; leave it out to discover every enabled subscription the "
										"service principal can read.", AZURE_MAX_SETTING_SUBSCRIPTIONS));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(subs->val.binary.data, i);

		if (!AzureIsGuidValue(v))
			ProviderInvalidSetting(psprintf("invalid Azure subscription id %s", ProviderJsonForMessage(v)),
								   "Subscription ids are GUIDs, as az account list --query [].id prints them.");
	}
	for (int i = 0; i < n; i++)
	{
		JsonbValue *a = getIthJsonbValueFromContainer(subs->val.binary.data, i);

		for (int k = i + 1; k < n; k++)
		{
			JsonbValue *b = getIthJsonbValueFromContainer(subs->val.binary.data, k);

			if (pg_strncasecmp(a->val.string.val, b->val.string.val, 36) == 0)
				ProviderInvalidSetting(psprintf("Azure \"subscription_ids\" lists subscription %s twice",
												ProviderJsonForMessage(a)), NULL);
		}
	}
}

static const char *const azure_settings_keys[] = {"tenant_id", "client_id", "subscription_ids", NULL};

static const ResourceType *const azure_resource_types[] = {
	&azure_vm_type,
};

const Provider azure_provider = {
	.name = "azure",
	.display_name = "Microsoft Azure",
	.label = "Azure",
	.status = PROVIDER_GA,
	.secret_name = "client secret",
	.secret_hint = "Create a client secret for the app registration of the service principal (Certificates & secrets, "
	"or az ad sp create-for-rbac) and pass its value, not its secret ID.",
	.settings_keys = azure_settings_keys,
	.validate_settings = AzureValidateSettings,
	.resource_types = azure_resource_types,
	.nresource_types = lengthof(azure_resource_types),
	.test = AzureTest,
	.discover = AzureDiscover,
};

#ifdef CLOUDCONN_FUZZ
#include "azure_fuzz.c"
#endif
