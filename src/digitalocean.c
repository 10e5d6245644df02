/*
 * digitalocean.c
 *		The DigitalOcean provider: a read-only token sent as a Bearer header;
 *		GET /v2/account to test; each resource type listed account-wide
 *		from its endpoint, following links.pages.next, but only on the
 *		configured API origin, so a response can never send the token
 *		elsewhere (README: DigitalOcean).
 */
#include "postgres.h"

#include <arpa/inet.h>

#include "mb/pg_wchar.h"
#include "utils/builtins.h"
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
} DoListing;

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

static const char *const do_account_members[] = {"account", NULL};
static const JsonItemsSpec do_account_spec = {NULL, NULL, do_account_members, 0};

static Jsonb *DoAccountAnswer(const HttpResponse *resp);

static Jsonb *
DoTest(ProviderConnector *conn, HttpClient *http)
{
	char	   *url = psprintf("%s/v2/account", DoApiBase());
	HttpResponse resp;

	if (!DoGet(conn, http, url, &resp) || resp.status != 200)
		return ProviderJsonbOk(false, "error", DoExplainFailure("GET /v2/account", &resp), NULL);
	return DoAccountAnswer(&resp);
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
	if (!items->has_items)
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
	char	   *url = listing->paginated
		? psprintf("%s%s?per_page=%d", base, listing->path, DO_PER_PAGE)
		: psprintf("%s%s", base, listing->path);
	char	   *failure = NULL;
	int			page = 0;

	while (url != NULL && failure == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(pagecxt);
		HttpResponse resp;
		JsonItemsPage items;
		char	   *what;
		char	   *next = NULL;

		page++;
		what = listing->paginated ? psprintf("GET %s (page %d)", listing->path, page)
			: psprintf("GET %s", listing->path);
		if (!DoGet(ctx->connector, ctx->http, url, &resp) || resp.status != 200)
			failure = DoExplainFailure(what, &resp);
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

	/* attributes: the provider detail of README's mapping, nothing secret */
	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	JsonItemPushString(&state, "region", region_slug);
	DoPushOrNull(&state, "status", d, "status");
	DoPushOrNull(&state, "size", d, "size_slug");
	DoPushOrNull(&state, "vcpus", d, "vcpus");
	DoPushOrNull(&state, "memory", d, "memory");
	DoPushOrNull(&state, "disk", d, "disk");
	DoPushOrNull(&state, "tags", d, "tags");
	DoPushOrNull(&state, "vpc_uuid", d, "vpc_uuid");
	JsonItemPushString(&state, "private_ipv4", private_v4);
	JsonItemPushString(&state, "ipv6", public_v6);
	out->attributes = JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL));
	return true;
}

static const char *const do_page_members[] = {"links", NULL};

static const DoListing do_droplets = {
	.path = "/v2/droplets",
	.items = {"droplets", do_droplet_members, do_page_members, DO_MAX_PAGE_ITEMS},
	.paginated = true,
};

static const ResourceType do_droplet_type = {
	.ci_type = "digitalocean_droplet",
	.display_name = "Droplets",
	.default_enabled = true,
	.scope_kind = SCOPE_ACCOUNT,
	.listing = &do_droplets,
	.map = DoMapDroplet,
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
