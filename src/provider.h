/*
 * provider.h
 *		The provider registry and interface: everything cloudconn knows about
 *		a cloud provider is in its source file and its registry entry
 *		(provider.c): its name and status, its stored secret, its settings,
 *		its resource types, and how to test, list and map them.  SQL reads
 *		the registry through C functions (providers and resource_types
 *		views, connector validation); no provider rule is written in SQL.
 *
 * Vocabulary: a resource type is one kind of CI a provider discovers
 * (aws_ec2_instance, digitalocean_droplet), listed per scope: a region, or
 * the whole account.  A listing is one (resource type, scope) pair; it
 * either completes, and then its CIs that were not seen are marked
 * missing, or fails, and then nothing of it is marked.  An item is the
 * provider's own description of one resource as its page reader kept it
 * (a JsonbValue tree from json_items.c, an XmlNode tree from
 * xml_items.c); the resource type's map function turns it into CI fields.
 */
#ifndef CLOUDCONN_PROVIDER_H
#define CLOUDCONN_PROVIDER_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "utils/jsonb.h"

#include "http.h"

typedef enum ProviderStatus
{
	PROVIDER_GA,
	PROVIDER_COMING_SOON
} ProviderStatus;

/* What one listing of a resource type covers (README: Runs and the merge). */
typedef enum ProviderScopeKind
{
	SCOPE_REGION,				/* one listing per region */
	SCOPE_ACCOUNT,				/* one listing for the whole account */
	SCOPE_SUBSCRIPTION			/* one listing per subscription (Azure) */
} ProviderScopeKind;

/* The scope of an account-wide listing. */
#define PROVIDER_ACCOUNT_SCOPE "account"

typedef struct Provider Provider;
typedef struct ResourceType ResourceType;

/* What a provider is handed about the connector; secrets only in memory. */
typedef struct ProviderConnector
{
	int64		id;
	int64		entity_id;
	const char *name;
	const Provider *provider;
	Jsonb	   *settings;
	char	   *token;			/* the stored secret, decrypted; wiped with its context */
	const char *external_id;	/* providers that mint one (AWS) */
	List	   *resource_types; /* of const ResourceType *: the enabled ones */
} ProviderConnector;

/*
 * The CI fields of one resource (README: Runs and the merge); its ci_type
 * and scope are those of the listing it came from.  Strings are in the
 * database's encoding.
 */
typedef struct MappedResource
{
	char	   *external_id;
	char	   *name;
	char	   *hostname;		/* or NULL */
	char	   *ip_address;		/* validated address text, or NULL */
	char	   *os_info;		/* or NULL */
	Jsonb	   *attributes;		/* an object */
	bool		create_if_new;	/* false: refresh an existing CI only */
} MappedResource;

/*
 * Map one item to CI fields.  Returns false with *error set (a message
 * naming the resource) and out->external_id set if it is known, for a
 * resource that cannot be mapped: it becomes a per-resource error and the
 * rest still merge.  Returns true with out->external_id == NULL for an
 * item to skip (filtered out).
 */
typedef bool (*ResourceMapFunction) (const ProviderConnector *conn, const char *scope,
									 const void *item, MappedResource *out, char **error);

struct ResourceType
{
	const char *ci_type;
	const char *display_name;
	bool		default_enabled;
	ProviderScopeKind scope_kind;
	const void *listing;		/* the provider's own description of how to list it */
	ResourceMapFunction map;
};

/* How the engine learns what a listing found (discovery.c). */
typedef struct DiscoveryContext DiscoveryContext;

struct DiscoveryContext
{
	ProviderConnector *connector;
	HttpClient *http;
	void	   *engine;			/* the engine's own state */
};

/*
 * A page of items (List of const void *) of one listing; untranslatable,
 * if not NULL, flags the items whose text the database's encoding cannot
 * hold (they become per-resource errors).
 */
extern void DiscoveryPage(DiscoveryContext *ctx, const ResourceType *type, const char *scope,
						  List *items, const bool *untranslatable);

/* The listing is complete: what it did not list is gone. */
extern void DiscoveryListed(DiscoveryContext *ctx, const ResourceType *type, const char *scope);

/* The listing failed (message says why): nothing of it is marked missing. */
extern void DiscoveryFailed(DiscoveryContext *ctx, const ResourceType *type, const char *scope,
							const char *message);

/*
 * A sentence for the run's LOG line (its detail), replacing any earlier
 * one: what the provider wants operators to know about the run, such as
 * where its credentials came from.  Never a secret.
 */
extern void DiscoveryNote(DiscoveryContext *ctx, const char *note);

struct Provider
{
	const char *name;			/* as in connector.provider */
	const char *display_name;	/* "Amazon Web Services" */
	const char *label;			/* how messages name it: "AWS" */
	ProviderStatus status;

	/* the stored secret (connector_create's token), or NULL for none */
	const char *secret_name;	/* "token" */
	const char *secret_hint;	/* where a user gets one */
	const char *no_secret_hint; /* how a provider without one is reached */
	bool		mints_external_id;	/* a per-connector external id (AWS) */

	/* the keys of its settings, besides resource_types; NULL-terminated */
	const char *const *settings_keys;

	/*
	 * Validate the values of its settings (the keys are checked already),
	 * raising 22023 with a message a user can act on.
	 */
	void		(*validate_settings) (Jsonb *settings);

	const ResourceType *const *resource_types;
	int			nresource_types;

	/*
	 * Prove the connector works end to end.  Returns {"ok": true, ...} or
	 * {"ok": false, "error": "..."}; never raises for a provider-side
	 * failure.
	 */
	Jsonb	   *(*test) (ProviderConnector *connector, HttpClient *http);

	/*
	 * List every enabled resource type in every scope, reporting each
	 * listing through DiscoveryPage/DiscoveryListed/DiscoveryFailed.
	 * Raises an ERROR when nothing can be listed at all.
	 */
	void		(*discover) (DiscoveryContext *ctx);

	/*
	 * The scope of a CI discovered before scopes were stored with CIs
	 * (0.1.0), from what was stored; NULL if it cannot tell.
	 */
	const char *(*scope_of_ci) (const char *ci_type, const char *external_id, Jsonb *attributes);
};

/* The registry */
extern const Provider *ProviderFind(const char *name);
extern const Provider *ProviderLookup(const char *name);
extern const ResourceType *ProviderResourceType(const Provider *provider, const char *ci_type);

/* The types a connector of these settings lists (a List of const ResourceType *), in registry order. */
extern List *ProviderEnabledTypes(const Provider *provider, Jsonb *settings);

/*
 * Load a connector (not deleted) for a run or a test: its settings, its
 * enabled resource types, and its secret decrypted into cxt (wiped when
 * cxt goes, ERROR included).  With a valid caller, the connector is
 * looked up as the caller's action (permission checks, P0002 for one the
 * caller cannot read); otherwise directly (run workers).  Needs SPI.
 */
extern bool ProviderConnectorLoad(int64 connector_id, Oid caller, ProviderConnector *conn,
								  MemoryContext cxt);

/* Shared by providers: jsonb results, text from providers */
extern Jsonb *ProviderJsonbOk(bool ok, const char *key, const char *value, Jsonb *detail);
extern void ProviderAppendTypeTest(StringInfo buf, bool first, const char *ci_type, const char *why);
extern char *ProviderMessageText(char *text);
extern char *ProviderUtf8ToServer(const char *text, size_t len, bool replace_untranslatable);
extern bool ProviderUtf8Valid(const char *text, size_t len);
extern Jsonb *ProviderJsonbTryParse(const char *text, size_t len);
extern JsonbValue *ProviderJsonbGet(JsonbContainer *container, const char *key);
extern char *ProviderJsonbString(JsonbContainer *container, const char *key);
extern void ProviderInvalidSetting(const char *message, const char *hint) pg_attribute_noreturn();
extern char *ProviderQuoteValue(const char *value, int max_chars);
extern char *ProviderJsonForMessage(JsonbValue *v);

/* providers */
extern const Provider aws_provider;
extern const Provider digitalocean_provider;
extern const Provider azure_provider;

#endif							/* CLOUDCONN_PROVIDER_H */
