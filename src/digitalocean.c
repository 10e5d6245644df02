/*
 * digitalocean.c
 *		The DigitalOcean provider: a read-only token sent as a Bearer header;
 *		GET /v2/account to test; each resource type (droplets, volumes, load
 *		balancers, Kubernetes clusters, managed databases, reserved IPs)
 *		listed account-wide from its endpoint, following links.pages.next,
 *		but only on the configured API origin, so a response can never send
 *		the token elsewhere (README: DigitalOcean).  A database's page holds
 *		its credentials: they are never read into an item, and the page is
 *		wiped once mapped.
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/jsonb.h"

#include "guc.h"
#include "http.h"
#include "json_items.h"
#include "provider.h"
#include "wipe.h"

/* DigitalOcean's maximum page size. */
#define DO_PER_PAGE 200

/* A page of a listing has at most this many items (it asks for 200). */
#define DO_MAX_PAGE_ITEMS 1000

/* How one resource type is listed. */
typedef struct DoListing
{
	const char *path;			/* e.g. "/v2/droplets" */
	JsonItemsSpec items;		/* the array of resources in each page */
	bool		paginated;		/* per_page and links.pages.next */
	const char *token_scope;	/* the custom scope a token needs, e.g. "droplet:read" */
	bool		holds_credentials;	/* its pages carry secrets: wiped once read */
	bool		null_is_empty;	/* an items member of null means none (README: DigitalOcean) */
} DoListing;

/* A page body to wipe when its memory context goes (ERROR included). */
typedef struct DoWipedBody
{
	MemoryContextCallback callback;
	char	   *data;
	size_t		size;
} DoWipedBody;

static char *
DoApiBase(void)
{
	char	   *base = pstrdup(cloudconn_digitalocean_api_url);
	size_t		len = strlen(base);

	while (len > 0 && base[len - 1] == '/')
		base[--len] = '\0';
	return base;
}

/* GET url with the token; the header is wiped as soon as the call returns. */
static bool
DoGet(ProviderConnector *conn, HttpClient *http, const char *url, HttpResponse *resp)
{
	char	   *auth;
	const char *headers[2];
	HttpRequest req;
	volatile bool ok = false;

	if (conn->token == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("DigitalOcean connector " INT64_FORMAT " has no token", conn->id),
				 errhint("Set one with connector_set_token().")));
	auth = psprintf("Authorization: Bearer %s", conn->token);
	headers[0] = auth;
	headers[1] = "Accept: application/json";
	memset(&req, 0, sizeof(req));
	req.method = "GET";
	req.url = url;
	req.description = "the DigitalOcean API";	/* never the URL: a setting */
	req.headers = headers;
	req.nheaders = 2;
	PG_TRY();
	{
		ok = HttpPerform(http, &req, resp);
	}
	PG_FINALLY();
	{
		WipeAndFree(auth);
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

/*
 * A message a customer can act on, for a failed response; type, if not
 * NULL, is the resource type being listed (a 403 names the scope it needs).
 */
static char *
DoExplainFailure(const char *what, const ResourceType *type, const HttpResponse *resp)
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
			if (type != NULL)
			{
				const char *scope = ((const DoListing *) type->listing)->token_scope;

				return psprintf("the DigitalOcean token lacks read scope (HTTP 403) for %s: listing %s needs the %s scope; "
								"add %s to the token's custom scopes, or use a read-only token, and set it with connector_set_token()",
								what, type->display_name, scope, scope);
			}
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

static void
DoWipeBodyCallback(void *arg)
{
	DoWipedBody *body = (DoWipedBody *) arg;

	explicit_bzero(body->data, body->size);
}

/*
 * A response of a listing whose pages hold credentials is wiped when the
 * current memory context (the page's) is reset or deleted: the items point
 * into it until they are mapped.
 */
static void
DoWipeBodyOnReset(const DoListing *listing, HttpResponse *resp)
{
	DoWipedBody *body;

	if (!listing->holds_credentials || resp->body.data == NULL)
		return;
	body = MemoryContextAlloc(GetMemoryChunkContext(resp->body.data), sizeof(DoWipedBody));
	body->data = resp->body.data;
	body->size = resp->body.maxlen;
	body->callback.func = DoWipeBodyCallback;
	body->callback.arg = body;
	MemoryContextRegisterResetCallback(GetMemoryChunkContext(resp->body.data), &body->callback);
}

/* The first page of a listing, of per_page items. */
static char *
DoListingUrl(const DoListing *listing, const char *base, int per_page)
{
	return listing->paginated
		? psprintf("%s%s?per_page=%d", base, listing->path, per_page)
		: psprintf("%s%s", base, listing->path);
}

static const char *const do_account_members[] = {"account", NULL};
static const JsonItemsSpec do_account_spec = {NULL, NULL, do_account_members, 0};

/*
 * Whether the token may list a type: its first page of one item.  NULL if
 * it may, else why not (a 403 names the scope it lacks).
 */
static char *
DoTestType(ProviderConnector *conn, HttpClient *http, const ResourceType *type, const char *base)
{
	const DoListing *listing = (const DoListing *) type->listing;
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn digitalocean test",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	char	   *what = psprintf("GET %s", listing->path);
	HttpResponse resp;
	char	   *why = NULL;
	bool		got = DoGet(conn, http, DoListingUrl(listing, base, 1), &resp);

	DoWipeBodyOnReset(listing, &resp);
	if (!got || resp.status != 200)
		why = DoExplainFailure(what, type, &resp);
	MemoryContextSwitchTo(old);
	if (why != NULL)
		why = pstrdup(why);
	MemoryContextDelete(cxt);
	return why;
}

/*
 * result plus "resource_types": {"<ci_type>": {"ok": true} | {"ok": false,
 * "error": ...}, ...}: each enabled type tried with one small page.
 */
static Jsonb *
DoTestTypes(ProviderConnector *conn, HttpClient *http, Jsonb *result)
{
	char	   *base = DoApiBase();
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"resource_types\": {");
	foreach(lc, conn->resource_types)
	{
		const ResourceType *type = lfirst(lc);
		char	   *why = DoTestType(conn, http, type, base);

		ProviderAppendTypeTest(&buf, lc == list_head(conn->resource_types), type->ci_type, why);
	}
	appendStringInfoString(&buf, "}}");
	return DatumGetJsonbP(DirectFunctionCall2(jsonb_concat, JsonbPGetDatum(result),
											  DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data))));
}

static Jsonb *DoAccountAnswer(const HttpResponse *resp);

static Jsonb *
DoTest(ProviderConnector *conn, HttpClient *http)
{
	char	   *url = psprintf("%s/v2/account", DoApiBase());
	HttpResponse resp;

	Jsonb	   *result;
	JsonbValue *ok;

	if (!DoGet(conn, http, url, &resp) || resp.status != 200)
		return ProviderJsonbOk(false, "error", DoExplainFailure("GET /v2/account", NULL, &resp), NULL);
	result = DoAccountAnswer(&resp);
	ok = ProviderJsonbGet(&result->root, "ok");
	if (ok == NULL || ok->type != jbvBool || !ok->val.boolean)
		return result;
	return DoTestTypes(conn, http, result);
}

/* connector_test's result for a GET /v2/account answered with a 200. */
static Jsonb *
DoAccountAnswer(const HttpResponse *resp)
{
	static const char *const keys[] = {"uuid", "email", "status", "droplet_limit", "email_verified"};
	JsonItemsPage page;
	JsonbValue *account;
	JsonbValue *team;
	JsonbParseState *state = NULL;
	char	   *error;

	if (!JsonItemsRead(resp->body.data, resp->body.len, &do_account_spec,
					   "DigitalOcean's response to GET /v2/account", &page, &error))
		return ProviderJsonbOk(false, "error", error, NULL);
	account = JsonItemGet(page.page, "account");
	if (account == NULL || account->type != jbvObject)
		return ProviderJsonbOk(false, "error", "DigitalOcean's response to GET /v2/account has no account object", NULL);

	/* Only what identifies the account; nothing else is echoed. */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < (int) lengthof(keys); i++)
	{
		JsonbValue *v = JsonItemGet(account, keys[i]);

		if (v != NULL && v->type != jbvObject && v->type != jbvArray)
			JsonItemPushMember(&state, keys[i], v);
	}
	team = JsonItemGet(account, "team");
	JsonItemPushString(&state, "team", JsonItemString(team, "name"));
	return ProviderJsonbOk(true, "account", NULL,
						   JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL)));
}

/* ------------------------------------------------------------------------
 * Listing
 * ------------------------------------------------------------------------ */

/*
 * Read a page of a listing (url, what it is called in messages): its items
 * and the next page's link, checked (NULL for the last page).  Returns
 * NULL, or why the page cannot be taken.
 */
static char *
DoReadPage(const DoListing *listing, const char *what, const char *url, const char *origin,
		   const HttpResponse *resp, JsonItemsPage *items, char **next)
{
	JsonbValue *pages;
	char	   *error;

	*next = NULL;
	if (!JsonItemsRead(resp->body.data, resp->body.len, &listing->items,
					   psprintf("DigitalOcean's response to %s", what), items, &error))
		return error;
	if (!items->has_items && !(listing->null_is_empty && items->items_null))
		return psprintf("DigitalOcean's response to %s has no %s array", what, listing->items.items_key);
	pages = JsonItemGet(JsonItemGet(items->page, "links"), "pages");
	*next = listing->paginated ? JsonItemString(pages, "next") : NULL;
	if (*next != NULL)
	{
		char	   *next_origin = HttpUrlOrigin(*next);

		/* the token goes nowhere but the configured API origin */
		if (strcmp(*next, url) == 0)
			return psprintf("DigitalOcean's response to %s links the next page to the same page", what);
		if (next_origin == NULL || strcmp(next_origin, origin) != 0)
			return psprintf("DigitalOcean's response to %s links the next page to another origin (%s); the run was stopped so that the token is not sent there",
							what, next_origin ? next_origin : "not an https URL");
	}
	return NULL;
}

/*
 * One resource type, page by page.  Returns NULL when the listing is
 * complete, else why it failed.
 */
static char *
DoList(DiscoveryContext *ctx, const ResourceType *type, const char *base, const char *origin,
	   MemoryContext pagecxt)
{
	const DoListing *listing = (const DoListing *) type->listing;
	char	   *url = DoListingUrl(listing, base, DO_PER_PAGE);
	char	   *failure = NULL;
	int			page = 0;

	while (url != NULL && failure == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(pagecxt);
		HttpResponse resp;
		JsonItemsPage items;
		char	   *what;
		char	   *next = NULL;
		bool		got;

		page++;
		what = listing->paginated ? psprintf("GET %s (page %d)", listing->path, page)
			: psprintf("GET %s", listing->path);
		got = DoGet(ctx->connector, ctx->http, url, &resp);
		DoWipeBodyOnReset(listing, &resp);
		if (!got || resp.status != 200)
			failure = DoExplainFailure(what, type, &resp);
		else if ((failure = DoReadPage(listing, what, url, origin, &resp, &items, &next)) == NULL)
			DiscoveryPage(ctx, type, PROVIDER_ACCOUNT_SCOPE, items.items, items.untranslatable);

		MemoryContextSwitchTo(old);
		if (failure != NULL)
			failure = pstrdup(failure);
		pfree(url);
		url = (failure == NULL && next != NULL) ? pstrdup(next) : NULL;
		MemoryContextReset(pagecxt);
	}
	return failure;
}

static void
DoDiscover(DiscoveryContext *ctx)
{
	char	   *base = DoApiBase();
	char	   *origin = HttpUrlOrigin(base);
	MemoryContext pagecxt = AllocSetContextCreate(CurrentMemoryContext, "cloudconn digitalocean page",
												  ALLOCSET_DEFAULT_SIZES);
	ListCell   *lc;

	if (origin == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cloudconn.digitalocean_api_url is not an https URL")));
	foreach(lc, ctx->connector->resource_types)
	{
		const ResourceType *type = lfirst(lc);
		char	   *failure = DoList(ctx, type, base, origin, pagecxt);

		if (failure == NULL)
			DiscoveryListed(ctx, type, PROVIDER_ACCOUNT_SCOPE);
		else
			DiscoveryFailed(ctx, type, PROVIDER_ACCOUNT_SCOPE, failure);
	}
	MemoryContextDelete(pagecxt);
}

/* ------------------------------------------------------------------------
 * Mapping
 * ------------------------------------------------------------------------ */

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
DoAddress(const JsonbValue *droplet, const char *family, const char *type, bool *malformed)
{
	JsonbValue *list = JsonItemGet(JsonItemGet(droplet, "networks"), family);

	if (list == NULL || list->type != jbvArray)
		return NULL;
	for (int i = 0; i < list->val.array.nElems; i++)
	{
		JsonbValue *entry = &list->val.array.elems[i];
		char	   *t = JsonItemString(entry, "type");
		char	   *ip;

		if (t == NULL || strcmp(t, type) != 0)
			continue;
		ip = JsonItemString(entry, "ip_address");
		if (!DoValidAddress(family, ip))
		{
			*malformed = true;
			return NULL;
		}
		return ip;
	}
	return NULL;
}

/*
 * "key": the item's member, or null when it has none: the droplet mapping
 * always has these keys.
 */
static void
DoPushOrNull(JsonbParseState **state, const char *key, const JsonbValue *item, const char *member)
{
	JsonbValue *v = JsonItemGet(item, member);
	JsonbValue	null;

	null.type = jbvNull;
	JsonItemPushMember(state, key, v ? v : &null);
}

/*
 * The resource's numeric id as text ("do:<kind>:<id>"), or NULL (*error
 * set) if it has none.
 */
static char *
DoNumericId(const JsonbValue *item, const char *kind, char **error)
{
	JsonbValue *id = JsonItemGet(item, "id");
	char	   *idtext;

	if (item == NULL || item->type != jbvObject)
	{
		*error = psprintf("a %s in the listing is not a JSON object", kind);
		return NULL;
	}
	if (id == NULL || id->type != jbvNumeric)
	{
		*error = psprintf("a %s in the listing has no numeric id", kind);
		return NULL;
	}
	idtext = DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(id->val.numeric)));
	if (strspn(idtext, "0123456789") != strlen(idtext) || strlen(idtext) > 20)
	{
		*error = psprintf("a %s in the listing has an invalid id %s", kind, idtext);
		return NULL;
	}
	return idtext;
}

/* Whether settings.region excludes a resource of the given region. */
static bool
DoOutsideRegion(const ProviderConnector *conn, const char *region_slug)
{
	char	   *filter = ProviderJsonbString(&conn->settings->root, "region");

	return filter != NULL && (region_slug == NULL || strcmp(filter, region_slug) != 0);
}

static const char *const do_droplet_members[] = {
	"id", "name", "region.slug", "image.distribution", "image.name", "networks", "status",
	"size_slug", "vcpus", "memory", "disk", "tags", "vpc_uuid", NULL
};

static bool
DoMapDroplet(const ProviderConnector *conn, const char *scope, const void *item,
			 MappedResource *out, char **error)
{
	const JsonbValue *d = (const JsonbValue *) item;
	JsonbValue *image = JsonItemGet(d, "image");
	char	   *region_slug = JsonItemString(JsonItemGet(d, "region"), "slug");
	char	   *idtext;
	char	   *name;
	char	   *private_v4;
	char	   *public_v6;
	bool		malformed = false;
	JsonbParseState *state = NULL;

	memset(out, 0, sizeof(*out));
	if ((idtext = DoNumericId(d, "droplet", error)) == NULL)
		return false;
	if (DoOutsideRegion(conn, region_slug))
		return true;			/* skipped */

	out->external_id = psprintf("do:droplet:%s", idtext);
	name = JsonItemString(d, "name");
	if (name == NULL || name[0] == '\0' || strlen(name) > 1000)
	{
		*error = psprintf("droplet %s has no valid name", idtext);
		return false;
	}
	out->ip_address = DoAddress(d, "v4", "public", &malformed);
	private_v4 = DoAddress(d, "v4", "private", &malformed);
	public_v6 = DoAddress(d, "v6", "public", &malformed);
	if (malformed)
	{
		*error = psprintf("droplet %s has a malformed IP address in networks", idtext);
		return false;
	}

	out->name = name;
	out->hostname = name;
	out->create_if_new = true;
	if (image != NULL)
	{
		char	   *distribution = JsonItemString(image, "distribution");
		char	   *image_name = JsonItemString(image, "name");

		if (distribution != NULL && image_name != NULL)
			out->os_info = psprintf("%s %s", distribution, image_name);
		else
			out->os_info = distribution ? distribution : image_name;
	}

	/*
	 * attributes: the provider detail of README's mapping, nothing secret;
	 * pushed in jsonb's own key order (shorter keys first, then bytewise),
	 * so that sorting the object's keys finds them sorted at once
	 */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	DoPushOrNull(&state, "disk", d, "disk");
	JsonItemPushString(&state, "ipv6", public_v6);
	DoPushOrNull(&state, "size", d, "size_slug");
	DoPushOrNull(&state, "tags", d, "tags");
	DoPushOrNull(&state, "vcpus", d, "vcpus");
	DoPushOrNull(&state, "memory", d, "memory");
	JsonItemPushString(&state, "region", region_slug);
	DoPushOrNull(&state, "status", d, "status");
	DoPushOrNull(&state, "vpc_uuid", d, "vpc_uuid");
	JsonItemPushString(&state, "private_ipv4", private_v4);
	out->attributes = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
	return true;
}

/*
 * The resource's string id ("do:<kind>:<id>": a UUID for most types), or
 * NULL (*error set) if it has none or it is not plain.
 */
static char *
DoStringId(const JsonbValue *item, const char *member, const char *kind, char **error)
{
	char	   *id;

	if (item == NULL || item->type != jbvObject)
	{
		*error = psprintf("a %s in the listing is not a JSON object", kind);
		return NULL;
	}
	id = JsonItemString(item, member);
	if (id == NULL || id[0] == '\0')
	{
		*error = psprintf("a %s in the listing has no %s", kind, member);
		return NULL;
	}
	if (strlen(id) > 64 || strspn(id, "0123456789abcdefABCDEF-") != strlen(id))
	{
		*error = psprintf("a %s in the listing has an invalid %s", kind, member);
		return NULL;
	}
	return id;
}

/* The resource's name, or NULL (*error set) for none or one too long. */
static char *
DoName(const JsonbValue *item, const char *kind, const char *idtext, char **error)
{
	char	   *name = JsonItemString(item, "name");

	if (name == NULL || name[0] == '\0' || strlen(name) > 1000)
	{
		*error = psprintf("%s %s has no valid name", kind, idtext);
		return NULL;
	}
	return name;
}

/*
 * An IPv4 address member: NULL when absent, null or empty (not assigned
 * yet); *malformed when it is there but is not an address.
 */
static char *
DoIpv4Member(const JsonbValue *item, const char *member, bool *malformed)
{
	char	   *ip = JsonItemString(item, member);

	if (ip == NULL || ip[0] == '\0')
		return NULL;
	if (!DoValidAddress("v4", ip))
	{
		*malformed = true;
		return NULL;
	}
	return ip;
}

/* The region of an item: "region" as a slug, or a region object's slug. */
static char *
DoRegionSlug(const JsonbValue *item)
{
	JsonbValue *region = JsonItemGet(item, "region");

	if (region != NULL && region->type == jbvObject)
		return JsonItemString(region, "slug");
	return JsonItemString(item, "region");
}

/* Begin the attributes object with the region every type has. */
static void
DoBeginAttributes(JsonbParseState **state, const char *region_slug)
{
	JsonbValue	null;

	null.type = jbvNull;
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	if (region_slug != NULL)
		JsonItemPushString(state, "region", region_slug);
	else
		JsonItemPushMember(state, "region", &null);
}

static Jsonb *
DoEndAttributes(JsonbParseState **state)
{
	return JsonbValueToJsonb(pushJsonbValue(state, WJB_END_OBJECT, NULL));
}

/* Volumes (GET /v2/volumes) */
static const char *const do_volume_members[] = {
	"id", "name", "region.slug", "size_gigabytes", "filesystem_type", "filesystem_label",
	"droplet_ids", "tags", NULL
};

static bool
DoMapVolume(const ProviderConnector *conn, const char *scope, const void *item,
			MappedResource *out, char **error)
{
	const JsonbValue *v = (const JsonbValue *) item;
	char	   *region_slug = DoRegionSlug(v);
	char	   *id;
	JsonbParseState *state = NULL;

	memset(out, 0, sizeof(*out));
	if ((id = DoStringId(v, "id", "volume", error)) == NULL)
		return false;
	if (DoOutsideRegion(conn, region_slug))
		return true;
	out->external_id = psprintf("do:volume:%s", id);
	if ((out->name = DoName(v, "volume", id, error)) == NULL)
		return false;
	out->create_if_new = true;

	DoBeginAttributes(&state, region_slug);
	DoPushOrNull(&state, "size_gb", v, "size_gigabytes");
	DoPushOrNull(&state, "filesystem_type", v, "filesystem_type");
	DoPushOrNull(&state, "filesystem_label", v, "filesystem_label");
	DoPushOrNull(&state, "droplet_ids", v, "droplet_ids");
	DoPushOrNull(&state, "tags", v, "tags");
	out->attributes = DoEndAttributes(&state);
	return true;
}

/* Load balancers (GET /v2/load_balancers): the forwarding rules' ports and protocols only */
static const char *const do_load_balancer_members[] = {
	"id", "name", "ip", "region.slug", "status", "size", "size_unit",
	"forwarding_rules.entry_protocol", "forwarding_rules.entry_port",
	"forwarding_rules.target_protocol", "forwarding_rules.target_port",
	"droplet_ids", "tag", "vpc_uuid", NULL
};

static bool
DoMapLoadBalancer(const ProviderConnector *conn, const char *scope, const void *item,
				  MappedResource *out, char **error)
{
	const JsonbValue *lb = (const JsonbValue *) item;
	char	   *region_slug = DoRegionSlug(lb);
	char	   *id;
	bool		malformed = false;
	JsonbParseState *state = NULL;

	memset(out, 0, sizeof(*out));
	if ((id = DoStringId(lb, "id", "load balancer", error)) == NULL)
		return false;
	if (DoOutsideRegion(conn, region_slug))
		return true;
	out->external_id = psprintf("do:load_balancer:%s", id);
	if ((out->name = DoName(lb, "load balancer", id, error)) == NULL)
		return false;
	out->ip_address = DoIpv4Member(lb, "ip", &malformed);
	if (malformed)
	{
		*error = psprintf("load balancer %s has a malformed IP address", id);
		return false;
	}
	out->create_if_new = true;

	DoBeginAttributes(&state, region_slug);
	DoPushOrNull(&state, "status", lb, "status");
	DoPushOrNull(&state, "size", lb, "size");
	DoPushOrNull(&state, "size_unit", lb, "size_unit");
	DoPushOrNull(&state, "forwarding_rules", lb, "forwarding_rules");
	DoPushOrNull(&state, "droplet_ids", lb, "droplet_ids");
	DoPushOrNull(&state, "tag", lb, "tag");
	DoPushOrNull(&state, "vpc_uuid", lb, "vpc_uuid");
	out->attributes = DoEndAttributes(&state);
	return true;
}

/* Kubernetes clusters (GET /v2/kubernetes/clusters) */
static const char *const do_cluster_members[] = {
	"id", "name", "region", "version", "endpoint", "ipv4", "status.state", "vpc_uuid", "tags",
	"node_pools.name", "node_pools.size", "node_pools.count", "node_pools.auto_scale",
	"node_pools.min_nodes", "node_pools.max_nodes", NULL
};

/*
 * The host of a cluster's endpoint ("https://<host>[:port][/...]"), or
 * NULL for none; *malformed for one that is not such a URL.
 */
static char *
DoEndpointHost(const JsonbValue *cluster, bool *malformed)
{
	char	   *endpoint = JsonItemString(cluster, "endpoint");
	const char *host;
	size_t		len;

	if (endpoint == NULL || endpoint[0] == '\0')
		return NULL;
	if (strncmp(endpoint, "https://", 8) != 0)
	{
		*malformed = true;
		return NULL;
	}
	host = endpoint + 8;
	len = strcspn(host, ":/?#");
	if (len == 0 || len > 253 || strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") < len)
	{
		*malformed = true;
		return NULL;
	}
	return pnstrdup(host, len);
}

static bool
DoMapCluster(const ProviderConnector *conn, const char *scope, const void *item,
			 MappedResource *out, char **error)
{
	const JsonbValue *k = (const JsonbValue *) item;
	char	   *region_slug = DoRegionSlug(k);
	char	   *id;
	char	   *version;
	bool		malformed = false;
	JsonbParseState *state = NULL;
	JsonbValue *pools;

	memset(out, 0, sizeof(*out));
	if ((id = DoStringId(k, "id", "Kubernetes cluster", error)) == NULL)
		return false;
	if (DoOutsideRegion(conn, region_slug))
		return true;
	out->external_id = psprintf("do:kubernetes_cluster:%s", id);
	if ((out->name = DoName(k, "Kubernetes cluster", id, error)) == NULL)
		return false;
	out->ip_address = DoIpv4Member(k, "ipv4", &malformed);
	if (malformed)
	{
		*error = psprintf("Kubernetes cluster %s has a malformed IPv4 address", id);
		return false;
	}
	out->hostname = DoEndpointHost(k, &malformed);
	if (malformed)
	{
		*error = psprintf("Kubernetes cluster %s has a malformed endpoint", id);
		return false;
	}
	version = JsonItemString(k, "version");
	out->os_info = version ? psprintf("Kubernetes %s", version) : NULL;
	out->create_if_new = true;

	DoBeginAttributes(&state, region_slug);
	JsonItemPushString(&state, "status", JsonItemString(JsonItemGet(k, "status"), "state"));
	pools = JsonItemGet(k, "node_pools");
	if (pools != NULL)
		JsonItemPushMember(&state, "node_pools", pools);
	DoPushOrNull(&state, "vpc_uuid", k, "vpc_uuid");
	DoPushOrNull(&state, "tags", k, "tags");
	out->attributes = DoEndAttributes(&state);
	return true;
}

/*
 * Managed databases (GET /v2/databases).  A cluster carries its
 * credentials (connection.password and .uri, private_connection,
 * standby_connection, users[].password): only connection.host is read of
 * them, so no credential ever becomes part of an item.
 */
static const char *const do_database_members[] = {
	"id", "name", "engine", "version", "connection.host", "region", "status", "size",
	"num_nodes", "tags", NULL
};

static bool
DoMapDatabase(const ProviderConnector *conn, const char *scope, const void *item,
			  MappedResource *out, char **error)
{
	const JsonbValue *db = (const JsonbValue *) item;
	char	   *region_slug = DoRegionSlug(db);
	char	   *id;
	char	   *engine;
	char	   *version;
	char	   *host;
	JsonbParseState *state = NULL;

	memset(out, 0, sizeof(*out));
	if ((id = DoStringId(db, "id", "database cluster", error)) == NULL)
		return false;
	if (DoOutsideRegion(conn, region_slug))
		return true;
	out->external_id = psprintf("do:database:%s", id);
	if ((out->name = DoName(db, "database cluster", id, error)) == NULL)
		return false;
	host = JsonItemString(JsonItemGet(db, "connection"), "host");
	if (host != NULL && (strlen(host) > 253 ||
						 strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") != strlen(host)))
	{
		*error = psprintf("database cluster %s has a malformed connection host", id);
		return false;
	}
	out->hostname = (host != NULL && host[0] != '\0') ? host : NULL;
	engine = JsonItemString(db, "engine");
	version = JsonItemString(db, "version");
	if (engine != NULL && version != NULL)
		out->os_info = psprintf("%s %s", engine, version);
	else
		out->os_info = engine;
	out->create_if_new = true;

	DoBeginAttributes(&state, region_slug);
	DoPushOrNull(&state, "status", db, "status");
	DoPushOrNull(&state, "size", db, "size");
	DoPushOrNull(&state, "num_nodes", db, "num_nodes");
	DoPushOrNull(&state, "tags", db, "tags");
	out->attributes = DoEndAttributes(&state);
	return true;
}

/* Reserved IPs (GET /v2/reserved_ips): the address is the id */
static const char *const do_reserved_ip_members[] = {
	"ip", "region.slug", "droplet.id", "project_id", "locked", NULL
};

static bool
DoMapReservedIp(const ProviderConnector *conn, const char *scope, const void *item,
				MappedResource *out, char **error)
{
	const JsonbValue *r = (const JsonbValue *) item;
	char	   *region_slug = DoRegionSlug(r);
	char	   *ip;
	JsonbValue *droplet;
	JsonbValue *droplet_id = NULL;
	JsonbValue	null;
	JsonbParseState *state = NULL;

	memset(out, 0, sizeof(*out));
	if (r == NULL || r->type != jbvObject)
	{
		*error = pstrdup("a reserved IP in the listing is not a JSON object");
		return false;
	}
	ip = JsonItemString(r, "ip");
	if (!DoValidAddress("v4", ip))
	{
		*error = pstrdup("a reserved IP in the listing has no valid ip");
		return false;
	}
	if (DoOutsideRegion(conn, region_slug))
		return true;
	out->external_id = psprintf("do:reserved_ip:%s", ip);
	out->name = ip;
	out->ip_address = ip;
	out->create_if_new = true;

	droplet = JsonItemGet(r, "droplet");
	if (droplet != NULL && droplet->type == jbvObject)
		droplet_id = JsonItemGet(droplet, "id");
	null.type = jbvNull;
	DoBeginAttributes(&state, region_slug);
	JsonItemPushMember(&state, "droplet_id", droplet_id ? droplet_id : &null);
	DoPushOrNull(&state, "project_id", r, "project_id");
	DoPushOrNull(&state, "locked", r, "locked");
	out->attributes = DoEndAttributes(&state);
	return true;
}

static const char *const do_page_members[] = {"links", NULL};

static const DoListing do_droplets = {
	.path = "/v2/droplets",
	.items = {"droplets", do_droplet_members, do_page_members, DO_MAX_PAGE_ITEMS},
	.paginated = true,
	.token_scope = "droplet:read",
};

static const DoListing do_volumes = {
	.path = "/v2/volumes",
	.items = {"volumes", do_volume_members, do_page_members, DO_MAX_PAGE_ITEMS},
	.paginated = true,
	.token_scope = "block_storage:read",
};

static const DoListing do_load_balancers = {
	.path = "/v2/load_balancers",
	.items = {"load_balancers", do_load_balancer_members, do_page_members, DO_MAX_PAGE_ITEMS},
	.paginated = true,
	.token_scope = "load_balancer:read",
};

static const DoListing do_clusters = {
	.path = "/v2/kubernetes/clusters",
	.items = {"kubernetes_clusters", do_cluster_members, do_page_members, DO_MAX_PAGE_ITEMS},
	.paginated = true,
	.token_scope = "kubernetes:read",
};

/*
 * Not paginated: every cluster of the account in one answer.  An account
 * without any is answered {"databases": null} (a Go nil slice), not the
 * empty array the OpenAPI description promises.
 */
#define DO_MAX_DATABASES 10000

static const DoListing do_databases = {
	.path = "/v2/databases",
	.items = {"databases", do_database_members, NULL, DO_MAX_DATABASES},
	.paginated = false,
	.token_scope = "database:read",
	.holds_credentials = true,
	.null_is_empty = true,
};

static const DoListing do_reserved_ips = {
	.path = "/v2/reserved_ips",
	.items = {"reserved_ips", do_reserved_ip_members, do_page_members, DO_MAX_PAGE_ITEMS},
	.paginated = true,
	.token_scope = "reserved_ip:read",
};

static const ResourceType do_droplet_type = {
	.ci_type = "digitalocean_droplet",
	.display_name = "Droplets",
	.default_enabled = true,
	.scope_kind = SCOPE_ACCOUNT,
	.listing = &do_droplets,
	.map = DoMapDroplet,
};

static const ResourceType do_volume_type = {
	.ci_type = "digitalocean_volume",
	.display_name = "Volumes",
	.default_enabled = true,
	.scope_kind = SCOPE_ACCOUNT,
	.listing = &do_volumes,
	.map = DoMapVolume,
};

static const ResourceType do_load_balancer_type = {
	.ci_type = "digitalocean_load_balancer",
	.display_name = "Load balancers",
	.default_enabled = true,
	.scope_kind = SCOPE_ACCOUNT,
	.listing = &do_load_balancers,
	.map = DoMapLoadBalancer,
};

static const ResourceType do_cluster_type = {
	.ci_type = "digitalocean_kubernetes_cluster",
	.display_name = "Kubernetes clusters",
	.default_enabled = true,
	.scope_kind = SCOPE_ACCOUNT,
	.listing = &do_clusters,
	.map = DoMapCluster,
};

static const ResourceType do_database_type = {
	.ci_type = "digitalocean_database",
	.display_name = "Managed databases",
	.default_enabled = true,
	.scope_kind = SCOPE_ACCOUNT,
	.listing = &do_databases,
	.map = DoMapDatabase,
};

static const ResourceType do_reserved_ip_type = {
	.ci_type = "digitalocean_reserved_ip",
	.display_name = "Reserved IPs",
	.default_enabled = true,
	.scope_kind = SCOPE_ACCOUNT,
	.listing = &do_reserved_ips,
	.map = DoMapReservedIp,
};

/* ------------------------------------------------------------------------
 * Settings and the registry entry
 * ------------------------------------------------------------------------ */

static bool
DoValidRegionSlug(const JsonbValue *v)
{
	const char *s;

	if (v->type != jbvString || v->val.string.len != 4)
		return false;
	s = v->val.string.val;
	return s[0] >= 'a' && s[0] <= 'z' && s[1] >= 'a' && s[1] <= 'z' && s[2] >= 'a' && s[2] <= 'z' &&
		s[3] >= '0' && s[3] <= '9';
}

static void
DoValidateSettings(Jsonb *settings)
{
	JsonbValue *region = ProviderJsonbGet(&settings->root, "region");

	if (region != NULL && !DoValidRegionSlug(region))
		ProviderInvalidSetting(psprintf("invalid DigitalOcean region slug %s", ProviderJsonForMessage(region)),
							   "Region slugs look like \"ams3\" or \"nyc1\".");
}

/* Every DigitalOcean listing is account-wide (0.1.0's droplets included). */
static const char *
DoScopeOfCi(const char *ci_type, const char *external_id, Jsonb *attributes)
{
	return PROVIDER_ACCOUNT_SCOPE;
}

static const char *const do_settings_keys[] = {"region", NULL};

static const ResourceType *const do_resource_types[] = {
	&do_droplet_type,
	&do_volume_type,
	&do_load_balancer_type,
	&do_cluster_type,
	&do_database_type,
	&do_reserved_ip_type,
};

const Provider digitalocean_provider = {
	.name = "digitalocean",
	.display_name = "DigitalOcean",
	.label = "DigitalOcean",
	.status = PROVIDER_GA,
	.secret_name = "token",
	.secret_hint = "Generate a read-only Personal Access Token in the DigitalOcean control panel.",
	.settings_keys = do_settings_keys,
	.validate_settings = DoValidateSettings,
	.resource_types = do_resource_types,
	.nresource_types = lengthof(do_resource_types),
	.test = DoTest,
	.discover = DoDiscover,
	.scope_of_ci = DoScopeOfCi,
};

#ifdef CLOUDCONN_FUZZ
#include "digitalocean_fuzz.c"
#endif
