/*
 * provider.h
 *		The provider interface: what a cloud provider implements so that the
 *		engine can test a connector and discover its resources.  A provider is
 *		one source file plus one line in the registry (provider.c).
 *
 * Vocabulary: a raw resource is the provider's own description of one
 * resource, as a jsonb container (DigitalOcean's droplet object, pointing
 * into the parsed page; AWS's instance turned into an object); mapping it
 * yields the CI fields (MappedResource).  A
 * scope is the part of an account a listing covers (a region): when a scope
 * fails, the run is partial and nothing in that scope is marked missing.
 */
#ifndef CLOUDCONN_PROVIDER_H
#define CLOUDCONN_PROVIDER_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

#include "http.h"

/* What a provider is handed about the connector; secrets only in memory. */
typedef struct ProviderConnector
{
	int64		id;
	const char *name;
	const char *provider;
	Jsonb	   *settings;
	char	   *token;			/* DigitalOcean, decrypted; wiped after use */
	const char *external_id;	/* AWS */
} ProviderConnector;

/* The CI fields of one resource (SPEC §5). */
typedef struct MappedResource
{
	char	   *external_id;
	const char *ci_type;
	char	   *name;
	char	   *hostname;		/* or NULL */
	char	   *ip_address;		/* validated address text, or NULL */
	char	   *os_info;		/* or NULL */
	char	   *attributes;		/* JSON object text */
	const char *scope;			/* region, for partial listings */
	bool		create_if_new;	/* false: refresh an existing CI only */
} MappedResource;

typedef struct DiscoveryContext DiscoveryContext;

/*
 * A provider hands each page of raw resources (a List of JsonbContainer *,
 * valid until the callback returns) to the engine with this; the engine
 * maps, validates and stages them.
 */
typedef void (*DiscoveryPageCallback) (DiscoveryContext *ctx, List *raw_resources);

struct DiscoveryContext
{
	ProviderConnector *connector;
	HttpClient *http;
	DiscoveryPageCallback page_done;
	void	   *engine_state;

	/* set by the provider */
	List	   *failed_scopes;	/* of char *: scopes that could not be listed */
	List	   *scope_errors;	/* of char *: why, one per failed scope */
};

typedef struct Provider
{
	const char *name;			/* as in connector.provider */

	/*
	 * Prove the connector works end to end.  Returns {"ok": true, ...} or
	 * {"ok": false, "error": "..."}; never raises for a provider-side
	 * failure.
	 */
	Jsonb	   *(*test) (ProviderConnector *connector, HttpClient *http);

	/*
	 * List every resource, page by page, through ctx->page_done.  Raises an
	 * ERROR when nothing can be listed (the run fails); records failed
	 * scopes in ctx when only part of the account could be listed.
	 */
	void		(*discover) (DiscoveryContext *ctx);

	/*
	 * Map one raw resource to CI fields.  Returns false with *error set (a
	 * message naming the resource) for a resource that cannot be mapped; it
	 * becomes a per-resource error and the rest still merge.  Returns true
	 * with out->external_id == NULL for a resource to skip (filtered out).
	 */
	bool		(*map) (ProviderConnector *connector, JsonbContainer *raw, MappedResource *out, char **error);
} Provider;

extern const Provider *ProviderLookup(const char *name);
extern int64 ProviderConnectorFromSpi(ProviderConnector *conn, MemoryContext cxt);

/* jsonb helpers shared by providers */
extern JsonbValue *ProviderJsonbGet(JsonbContainer *container, const char *key);
extern char *ProviderJsonbString(JsonbContainer *container, const char *key);
extern Jsonb *ProviderJsonbParse(const char *text, size_t len, const char *what);
extern Jsonb *ProviderJsonbTryParse(const char *text, size_t len);
extern char *ProviderMessageText(char *text);
extern void ProviderJsonAppendValue(StringInfo out, const char *key, JsonbValue *v);
extern void ProviderJsonAppendString(StringInfo out, const char *key, const char *value);
extern Jsonb *ProviderJsonbOk(bool ok, const char *key, const char *value, Jsonb *detail);

/* providers */
extern const Provider aws_provider;
extern const Provider digitalocean_provider;

#endif							/* CLOUDCONN_PROVIDER_H */
