/*
 * digitalocean.c
 *		The DigitalOcean provider: a read-only token sent as a Bearer header;
 *		GET /v2/account to test; GET /v2/droplets?per_page=200 following
 *		links.pages.next, but only on the configured API origin, so a
 *		response can never send the token elsewhere.  Droplets become CIs of
 *		type digitalocean_droplet (SPEC §5).
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "guc.h"
#include "http.h"
#include "provider.h"

/* DigitalOcean's maximum page size. */
#define DO_PER_PAGE 200

static char *
DoApiBase(void)
{
	char	   *base = pstrdup(cloudconn_digitalocean_api_url);
	size_t		len = strlen(base);

	while (len > 0 && base[len - 1] == '/')
		base[--len] = '\0';
	return base;
}

static char *
DoAuthHeader(ProviderConnector *conn)
{
	if (conn->token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("DigitalOcean connector " INT64_FORMAT " has no token", conn->id),
				 errhint("Set one with connector_set_token().")));
	return psprintf("Authorization: Bearer %s", conn->token);
}

static void
DoWipe(char *header)
{
	explicit_bzero(header, strlen(header));
	pfree(header);
}

/* GET url with the token; the header is wiped as soon as the call returns. */
static bool
DoGet(ProviderConnector *conn, HttpClient *http, const char *url, HttpResponse *resp)
{
	char	   *auth = DoAuthHeader(conn);
	const char *headers[2];
	HttpRequest req;
	volatile bool ok = false;

	headers[0] = auth;
	headers[1] = "Accept: application/json";
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.headers = headers;
	req.nheaders = 2;
	PG_TRY();
	{
		ok = HttpPerform(http, &req, resp);
	}
	PG_FINALLY();
	{
		DoWipe(auth);
	}
	PG_END_TRY();
	return ok;
}

/* DigitalOcean's error body is {"id": ..., "message": ...}: quote its id. */
static char *
DoErrorId(const HttpResponse *resp)
{
	Jsonb	   *body;
	char	   *id;

	if (resp->body.len == 0 || resp->body.len > 64 * 1024)
		return NULL;
	body = ProviderJsonbTryParse(resp->body.data, resp->body.len);
	if (body == NULL)
		return NULL;
	id = ProviderJsonbString(&body->root, "id");
	if (id != NULL)
		id[pg_mbcliplen(id, strlen(id), 64)] = '\0';
	return id;
}

/* A message a customer can act on, for a failed response. */
static char *
DoExplainFailure(const char *what, const HttpResponse *resp)
{
	char	   *id;

	if (resp->transport_error != NULL)
		return psprintf("could not reach DigitalOcean: %s", resp->transport_error);
	switch (resp->status)
	{
		case 401:
			return psprintf("DigitalOcean rejected the token (HTTP 401) for %s: it may have been revoked, expired or mistyped; "
							"generate a new read-only token and set it with connector_set_token()", what);
		case 403:
			return psprintf("the DigitalOcean token lacks read scope (HTTP 403) for %s: "
							"generate a token with read access and set it with connector_set_token()", what);
		case 429:
			return psprintf("DigitalOcean kept rate-limiting %s (HTTP 429) after %d attempts; try again later",
							what, resp->attempts);
		default:
			id = DoErrorId(resp);
			return psprintf("DigitalOcean answered %s with HTTP %ld%s%s%s", what, resp->status,
							id ? " (" : "", id ? id : "", id ? ")" : "");
	}
}

static Jsonb *
DoTest(ProviderConnector *conn, HttpClient *http)
{
	char	   *url = psprintf("%s/v2/account", DoApiBase());
	HttpResponse resp;
	Jsonb	   *body;
	JsonbValue *account;
	StringInfoData out;
	static const char *const keys[] = {"uuid", "email", "status", "droplet_limit", "email_verified"};
	JsonbValue *team;

	if (!DoGet(conn, http, url, &resp) || resp.status != 200)
		return ProviderJsonbOk(false, "error", DoExplainFailure("GET /v2/account", &resp), NULL);

	body = ProviderJsonbParse(resp.body.data, resp.body.len, "DigitalOcean's response to GET /v2/account");
	account = ProviderJsonbGet(&body->root, "account");
	if (account == NULL || account->type != jbvBinary)
		return ProviderJsonbOk(false, "error", "DigitalOcean's response to GET /v2/account has no account object", NULL);

	/* Only what identifies the account; nothing else is echoed. */
	initStringInfo(&out);
	appendStringInfoChar(&out, '{');
	for (int i = 0; i < (int) lengthof(keys); i++)
	{
		JsonbValue *v = ProviderJsonbGet(account->val.binary.data, keys[i]);

		if (v != NULL && v->type != jbvBinary)
			ProviderJsonAppendValue(&out, keys[i], v);
	}
	team = ProviderJsonbGet(account->val.binary.data, "team");
	if (team != NULL && team->type == jbvBinary)
	{
		char	   *team_name = ProviderJsonbString(team->val.binary.data, "name");

		if (team_name != NULL)
		{
			if (out.len > 1)
				appendStringInfoString(&out, ", ");
			appendStringInfoString(&out, "\"team\": ");
			escape_json(&out, team_name);
		}
	}
	appendStringInfoChar(&out, '}');
	return ProviderJsonbOk(true, "account", NULL,
						   DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data))));
}

/* Addresses are checked here so that a bad one is a per-resource error. */
static bool
DoValidAddress(const char *family, const char *s)
{
	unsigned char addr[sizeof(struct in6_addr)];

	if (s == NULL)
		return false;
	return inet_pton(strcmp(family, "v4") == 0 ? AF_INET : AF_INET6, s, addr) == 1;
}

/*
 * The first address of the given type ("public" or "private") in
 * networks.<family>; *malformed if one is there but is not an address.
 */
static char *
DoAddress(JsonbContainer *droplet, const char *family, const char *type, bool *malformed)
{
	JsonbValue *networks = ProviderJsonbGet(droplet, "networks");
	JsonbValue *list;
	int			n;

	if (networks == NULL || networks->type != jbvBinary)
		return NULL;
	list = ProviderJsonbGet(networks->val.binary.data, family);
	if (list == NULL || list->type != jbvBinary || !JsonContainerIsArray(list->val.binary.data))
		return NULL;
	n = JsonContainerSize(list->val.binary.data);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *entry = getIthJsonbValueFromContainer(list->val.binary.data, i);
		char	   *t;
		char	   *ip;

		if (entry == NULL || entry->type != jbvBinary)
			continue;
		t = ProviderJsonbString(entry->val.binary.data, "type");
		if (t == NULL || strcmp(t, type) != 0)
			continue;
		ip = ProviderJsonbString(entry->val.binary.data, "ip_address");
		if (!DoValidAddress(family, ip))
		{
			*malformed = true;
			return NULL;
		}
		return ip;
	}
	return NULL;
}

static bool
DoMap(ProviderConnector *conn, JsonbContainer *d, MappedResource *out, char **error)
{
	JsonbValue *id = ProviderJsonbGet(d, "id");
	JsonbValue *region = ProviderJsonbGet(d, "region");
	JsonbValue *image = ProviderJsonbGet(d, "image");
	char	   *region_slug = NULL;
	char	   *name;
	char	   *idtext;
	char	   *filter;
	char	   *public_v4;
	char	   *private_v4;
	char	   *public_v6;
	bool		malformed = false;
	StringInfoData attrs;

	memset(out, 0, sizeof(*out));
	if (d == NULL || !JsonContainerIsObject(d))
	{
		*error = pstrdup("a droplet in the listing is not a JSON object");
		return false;
	}
	if (id == NULL || id->type != jbvNumeric)
	{
		*error = pstrdup("a droplet in the listing has no numeric id");
		return false;
	}
	idtext = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(id->val.numeric)));
	if (strspn(idtext, "0123456789") != strlen(idtext) || strlen(idtext) > 20)
	{
		*error = psprintf("a droplet in the listing has an invalid id %s", idtext);
		return false;
	}

	if (region != NULL && region->type == jbvBinary)
		region_slug = ProviderJsonbString(region->val.binary.data, "slug");
	filter = ProviderJsonbString(&conn->settings->root, "region");
	if (filter != NULL && (region_slug == NULL || strcmp(filter, region_slug) != 0))
		return true;			/* outside the connector's region: skipped */

	out->external_id = psprintf("do:droplet:%s", idtext);
	name = ProviderJsonbString(d, "name");
	if (name == NULL || name[0] == '\0' || strlen(name) > 1000)
	{
		*error = psprintf("droplet %s has no valid name", idtext);
		return false;
	}
	public_v4 = DoAddress(d, "v4", "public", &malformed);
	private_v4 = DoAddress(d, "v4", "private", &malformed);
	public_v6 = DoAddress(d, "v6", "public", &malformed);
	if (malformed)
	{
		*error = psprintf("droplet %s has a malformed IP address in networks", idtext);
		return false;
	}

	out->ci_type = "digitalocean_droplet";
	out->name = name;
	out->hostname = name;
	out->ip_address = public_v4;
	out->scope = region_slug;
	out->create_if_new = true;
	if (image != NULL && image->type == jbvBinary)
	{
		char	   *distribution = ProviderJsonbString(image->val.binary.data, "distribution");
		char	   *image_name = ProviderJsonbString(image->val.binary.data, "name");

		if (distribution != NULL && image_name != NULL)
			out->os_info = psprintf("%s %s", distribution, image_name);
		else
			out->os_info = distribution ? distribution : image_name;
	}

	/* attributes: the provider detail of SPEC §5, nothing secret */
	initStringInfo(&attrs);
	appendStringInfoChar(&attrs, '{');
	ProviderJsonAppendString(&attrs, "region", region_slug);
	ProviderJsonAppendValue(&attrs, "status", ProviderJsonbGet(d, "status"));
	ProviderJsonAppendValue(&attrs, "size", ProviderJsonbGet(d, "size_slug"));
	ProviderJsonAppendValue(&attrs, "vcpus", ProviderJsonbGet(d, "vcpus"));
	ProviderJsonAppendValue(&attrs, "memory", ProviderJsonbGet(d, "memory"));
	ProviderJsonAppendValue(&attrs, "disk", ProviderJsonbGet(d, "disk"));
	ProviderJsonAppendValue(&attrs, "tags", ProviderJsonbGet(d, "tags"));
	ProviderJsonAppendValue(&attrs, "vpc_uuid", ProviderJsonbGet(d, "vpc_uuid"));
	ProviderJsonAppendString(&attrs, "private_ipv4", private_v4);
	ProviderJsonAppendString(&attrs, "ipv6", public_v6);
	appendStringInfoChar(&attrs, '}');
	out->attributes = attrs.data;
	return true;
}

static void
DoDiscover(DiscoveryContext *ctx)
{
	char	   *base = DoApiBase();
	char	   *origin = HttpUrlOrigin(base);
	char	   *url = psprintf("%s/v2/droplets?per_page=%d", base, DO_PER_PAGE);
	MemoryContext pagecxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn digitalocean page",
												  ALLOCSET_DEFAULT_SIZES);
	int			page = 0;

	if (origin == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cloudconn.digitalocean_api_url is not an https URL")));

	while (url != NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(pagecxt);
		HttpResponse resp;
		Jsonb	   *body;
		JsonbValue *droplets;
		JsonbValue *links;
		char	   *next = NULL;
		List	   *raw = NIL;
		char	   *what;

		page++;
		what = psprintf("GET /v2/droplets (page %d)", page);
		if (!DoGet(ctx->connector, ctx->http, url, &resp) || resp.status != 200)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("%s", DoExplainFailure(what, &resp))));

		body = ProviderJsonbParse(resp.body.data, resp.body.len,
								  psprintf("DigitalOcean's response to %s", what));
		droplets = ProviderJsonbGet(&body->root, "droplets");
		if (droplets == NULL || droplets->type != jbvBinary || !JsonContainerIsArray(droplets->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("DigitalOcean's response to %s has no droplets array", what)));
		for (int i = 0; i < (int) JsonContainerSize(droplets->val.binary.data); i++)
		{
			JsonbValue *v = getIthJsonbValueFromContainer(droplets->val.binary.data, i);

			/* a non-object becomes a per-resource error in DoMap */
			raw = lappend(raw, v->type == jbvBinary ? v->val.binary.data : NULL);
		}

		links = ProviderJsonbGet(&body->root, "links");
		if (links != NULL && links->type == jbvBinary)
		{
			JsonbValue *pages = ProviderJsonbGet(links->val.binary.data, "pages");

			if (pages != NULL && pages->type == jbvBinary)
				next = ProviderJsonbString(pages->val.binary.data, "next");
		}
		if (next != NULL)
		{
			char	   *next_origin = HttpUrlOrigin(next);

			/* the token goes nowhere but the configured API origin */
			if (strcmp(next, url) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("DigitalOcean's response to %s links the next page to the same page", what)));
			if (next_origin == NULL || strcmp(next_origin, origin) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_PROTOCOL_VIOLATION),
						 errmsg("DigitalOcean's response to %s links the next page to another origin (%s); the run was stopped so that the token is not sent there",
								what, next_origin ? next_origin : "not an https URL"),
						 errhint("cloudconn.digitalocean_api_url is %s.", origin)));
		}

		ctx->page_done(ctx, raw);

		MemoryContextSwitchTo(old);
		pfree(url);
		url = next ? pstrdup(next) : NULL;
		MemoryContextReset(pagecxt);
	}
	MemoryContextDelete(pagecxt);
}

const Provider digitalocean_provider = {
	.name = "digitalocean",
	.test = DoTest,
	.discover = DoDiscover,
	.map = DoMap,
};
