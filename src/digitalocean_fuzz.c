/*
 * digitalocean_fuzz.c
 *		Fuzz targets of the DigitalOcean provider's readers (fuzz.h),
 *		included at the end of digitalocean.c when built with `make
 *		FUZZ=1`: a droplets page read and mapped as a run does, the same
 *		input as a page of each other resource type, the account answer as
 *		connector_test reads it, and error bodies.
 */
#ifndef CLOUDCONN_FUZZ
#error "digitalocean_fuzz.c is included by digitalocean.c in the FUZZ build only"
#endif

#include "fuzz.h"

#define DO_FUZZ_ORIGIN "https://api.digitalocean.com"

/* A page of droplets, as DoList reads it (page 1), then mapped as DiscoveryPage does. */
static bool
DoFuzzDroplets(const char *data, size_t len)
{
	ProviderConnector *conn = FuzzConnector(&digitalocean_provider, "{}");
	const DoListing *listing = (const DoListing *) do_droplet_type.listing;
	HttpResponse resp;
	JsonItemsPage items;
	char	   *next;

	FuzzResponse(&resp, 200, data, len);
	if (DoReadPage(listing, "GET /v2/droplets (page 1)", DO_FUZZ_ORIGIN "/v2/droplets?per_page=200",
				   DO_FUZZ_ORIGIN, &resp, &items, &next) != NULL)
		return false;
	(void) FuzzMapItems(conn, &do_droplet_type, PROVIDER_ACCOUNT_SCOPE, items.items, items.untranslatable);
	/* and once more with a region setting: the mapping filters by region */
	conn = FuzzConnector(&digitalocean_provider, "{\"region\": \"nyc3\"}");
	(void) FuzzMapItems(conn, &do_droplet_type, PROVIDER_ACCOUNT_SCOPE, items.items, items.untranslatable);
	return true;
}

/*
 * The input as a page of each other resource type (volumes, load balancers,
 * clusters, databases, reserved IPs), read and mapped as DoList does.
 * True if any of them took it.
 */
static bool
DoFuzzOtherTypes(const char *data, size_t len)
{
	bool		taken = false;

	for (int t = 0; t < (int) lengthof(do_resource_types); t++)
	{
		const ResourceType *type = do_resource_types[t];
		const DoListing *listing = (const DoListing *) type->listing;
		ProviderConnector *conn;
		HttpResponse resp;
		JsonItemsPage items;
		char	   *url;
		char	   *next;

		if (type == &do_droplet_type)
			continue;
		url = psprintf("%s%s?per_page=200", DO_FUZZ_ORIGIN, listing->path);
		FuzzResponse(&resp, 200, data, len);
		if (DoReadPage(listing, "GET (page 1)", url, DO_FUZZ_ORIGIN, &resp, &items, &next) != NULL)
			continue;
		taken = true;
		conn = FuzzConnector(&digitalocean_provider, "{}");
		(void) FuzzMapItems(conn, type, PROVIDER_ACCOUNT_SCOPE, items.items, items.untranslatable);
		conn = FuzzConnector(&digitalocean_provider, "{\"region\": \"nyc3\"}");
		(void) FuzzMapItems(conn, type, PROVIDER_ACCOUNT_SCOPE, items.items, items.untranslatable);
	}
	return taken;
}

/* The account answer, as connector_test reads it. */
static bool
DoFuzzAccount(const char *data, size_t len)
{
	HttpResponse resp;
	Jsonb	   *result;
	JsonbValue *ok;

	FuzzResponse(&resp, 200, data, len);
	result = DoAccountAnswer(&resp);
	ok = ProviderJsonbGet(&result->root, "ok");
	return ok != NULL && ok->type == jbvBool && ok->val.boolean;
}

/* An error body, as a failed request's message is made of it (each status's way). */
static bool
DoFuzzErrors(const char *data, size_t len)
{
	static const long statuses[] = {400, 401, 403, 404, 422, 429, 500, 503};
	bool		coded = false;

	for (int i = 0; i < (int) lengthof(statuses); i++)
	{
		HttpResponse resp;

		FuzzResponse(&resp, statuses[i], data, len);
		(void) DoExplainFailure("GET /v2/droplets (page 1)", NULL, &resp);
		(void) DoExplainFailure("GET /v2/databases", &do_database_type, &resp);
	}
	{
		HttpResponse resp;

		FuzzResponse(&resp, 404, data, len);
		coded = DoErrorId(&resp) != NULL;
	}
	return coded;
}

static const char *const do_fuzz_tokens[] = {
	"\"droplets\"", "\"links\"", "\"pages\"", "\"next\"", "\"meta\"", "\"networks\"", "\"v4\"", "\"v6\"",
	"\"ip_address\"", "\"type\":\"public\"", "\"type\":\"private\"", "\"region\"", "\"slug\"", "\"image\"",
	"\"distribution\"", "\"size_slug\"", "\"tags\"", "\"id\"", "\"name\"", "\"account\"", "\"team\"",
	"\"message\"", "\"https://api.digitalocean.com/v2/droplets?page=2\"", "\"https://evil.example/v2\"",
	"{\"id\":1}", "[{}]", "\"volumes\"", "\"load_balancers\"", "\"kubernetes_clusters\"", "\"databases\"",
	"\"reserved_ips\"", "\"droplet_ids\"", "\"forwarding_rules\"", "\"node_pools\"", "\"connection\"",
	"\"password\"", "\"users\"", "\"endpoint\"", "\"ipv4\"", "\"version\"", "\"engine\"", "null", NULL
};

const FuzzTarget digitalocean_fuzz_targets[] = {
	{"do_droplets", DoFuzzDroplets, do_fuzz_tokens},
	{"do_other_types", DoFuzzOtherTypes, do_fuzz_tokens},
	{"do_account", DoFuzzAccount, do_fuzz_tokens},
	{"do_errors", DoFuzzErrors, do_fuzz_tokens},
	{NULL, NULL, NULL}
};
