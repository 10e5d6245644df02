/*
 * provider.c
 *		The provider registry and what SQL reads from it: the providers and
 *		resource_types views, the validation of a connector's provider,
 *		settings and stored secret, the connector check constraint; loading
 *		a connector for a provider (its secret decrypted only in memory);
 *		connector_test(); and helpers the providers share for text that
 *		comes from a provider.
 *
 * A provider is one source file plus one line in providers[] below; a
 * resource type is one mapping plus one entry in its provider's list.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "json_items.h"
#include "provider.h"
#include "secrets.h"
#include "wipe.h"

PG_FUNCTION_INFO_V1(cloudconn_connector_test);
PG_FUNCTION_INFO_V1(cloudconn_providers);
PG_FUNCTION_INFO_V1(cloudconn_resource_types);
PG_FUNCTION_INFO_V1(cloudconn_validate_provider);
PG_FUNCTION_INFO_V1(cloudconn_validate_settings);
PG_FUNCTION_INFO_V1(cloudconn_validate_secret);
PG_FUNCTION_INFO_V1(cloudconn_connector_valid);
PG_FUNCTION_INFO_V1(cloudconn_provider_mints_external_id);
PG_FUNCTION_INFO_V1(cloudconn_ci_scope);

/* One line per provider, in the order the providers view lists them. */
static const Provider *const providers[] = {
	&aws_provider,
	&digitalocean_provider,
	&azure_provider,
};

/* What a message quotes of a value a user gave: this many characters at most. */
#define PROVIDER_QUOTE_CHARS 64

/* A connector's resource_types has at most this many entries. */
#define PROVIDER_MAX_RESOURCE_TYPES 64

/* ------------------------------------------------------------------------
 * The registry
 * ------------------------------------------------------------------------ */

const Provider *
ProviderFind(const char *name)
{
	for (int i = 0; i < (int) lengthof(providers); i++)
	{
		if (strcmp(providers[i]->name, name) == 0)
			return providers[i];
	}
	return NULL;
}

/* A provider that can be used (ga); raises for any other name. */
const Provider *
ProviderLookup(const char *name)
{
	const Provider *p = ProviderFind(name);

	if (p == NULL || p->status != PROVIDER_GA)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("discovery with the provider %s is not available",
						ProviderQuoteValue(name, PROVIDER_QUOTE_CHARS))));
	return p;
}

const ResourceType *
ProviderResourceType(const Provider *provider, const char *ci_type)
{
	for (int i = 0; i < provider->nresource_types; i++)
	{
		if (strcmp(provider->resource_types[i]->ci_type, ci_type) == 0)
			return provider->resource_types[i];
	}
	return NULL;
}

/*
 * A value a user gave, quoted for a message: "value", or its first
 * max_chars characters and its length when it is longer.
 */
char *
ProviderQuoteValue(const char *value, int max_chars)
{
	int			chars = pg_mbstrlen(value);
	int			cut;

	if (chars <= max_chars)
		return psprintf("\"%s\"", value);
	cut = pg_mbcharcliplen(value, strlen(value), max_chars);
	return psprintf("\"%.*s...\" (%d characters)", cut, value, chars);
}

static const char *
ProviderStatusName(ProviderStatus status)
{
	return status == PROVIDER_GA ? "ga" : "coming_soon";
}

static const char *
ProviderScopeKindName(ProviderScopeKind kind)
{
	switch (kind)
	{
		case SCOPE_REGION:
			return "region";
		case SCOPE_ACCOUNT:
			return "account";
		case SCOPE_SUBSCRIPTION:
			return "subscription";
	}
	return "account";			/* keep compiler quiet */
}

/* "a", "a and b", "a, b and c", each item formatted with fmt. */
static char *
ProviderJoin(const char *const *items, int n, const char *fmt)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(&buf, i == n - 1 ? " and " : ", ");
		appendStringInfo(&buf, fmt, items[i]);
	}
	return buf.data;
}

/* 'Available providers are "aws" and "digitalocean".' */
static char *
ProviderAvailableHint(void)
{
	const char *names[lengthof(providers)];
	int			n = 0;

	for (int i = 0; i < (int) lengthof(providers); i++)
	{
		if (providers[i]->status == PROVIDER_GA)
			names[n++] = providers[i]->name;
	}
	return psprintf("Available providers are %s.", ProviderJoin(names, n, "\"%s\""));
}

/* "AWS resource types are aws_ec2_instance and aws_vpc." */
static char *
ProviderResourceTypesHint(const Provider *p)
{
	const char **names = palloc(sizeof(char *) * Max(p->nresource_types, 1));

	for (int i = 0; i < p->nresource_types; i++)
		names[i] = p->resource_types[i]->ci_type;
	return psprintf("%s resource types are %s.", p->label,
					ProviderJoin(names, p->nresource_types, "%s"));
}

/*
 * cloudconn._providers() RETURNS TABLE (provider, display_name, status,
 * resource_types text[]): the wizard's picker (the providers view).
 */
Datum
cloudconn_providers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < (int) lengthof(providers); i++)
	{
		const Provider *p = providers[i];
		Datum	   *types = palloc(sizeof(Datum) * Max(p->nresource_types, 1));
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		for (int t = 0; t < p->nresource_types; t++)
			types[t] = CStringGetTextDatum(p->resource_types[t]->ci_type);
		values[0] = CStringGetTextDatum(p->name);
		values[1] = CStringGetTextDatum(p->display_name);
		values[2] = CStringGetTextDatum(ProviderStatusName(p->status));
		values[3] = PointerGetDatum(construct_array(types, p->nresource_types, TEXTOID, -1, false, TYPALIGN_INT));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	PG_RETURN_VOID();
}

/*
 * cloudconn._resource_types() RETURNS TABLE (provider, ci_type,
 * display_name, default_enabled, scope_kind): the resource_types view.
 */
Datum
cloudconn_resource_types(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < (int) lengthof(providers); i++)
	{
		for (int t = 0; t < providers[i]->nresource_types; t++)
		{
			const ResourceType *type = providers[i]->resource_types[t];
			Datum		values[5];
			bool		nulls[5] = {false, false, false, false, false};

			values[0] = CStringGetTextDatum(providers[i]->name);
			values[1] = CStringGetTextDatum(type->ci_type);
			values[2] = CStringGetTextDatum(type->display_name);
			values[3] = BoolGetDatum(type->default_enabled);
			values[4] = CStringGetTextDatum(ProviderScopeKindName(type->scope_kind));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	PG_RETURN_VOID();
}

/* ------------------------------------------------------------------------
 * Validation of what a user gives for a connector
 * ------------------------------------------------------------------------ */

/* Raise 22023 with a message and hint for a setting (hint may be NULL). */
void
ProviderInvalidSetting(const char *message, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("%s", message),
			 hint ? errhint("%s", hint) : 0));
}

/* The provider a connector may be created with; raises otherwise. */
static const Provider *
ProviderValidateName(text *name)
{
	const Provider *p;
	char	   *s;

	if (name == NULL)
		ProviderInvalidSetting("provider must not be null", ProviderAvailableHint());
	s = text_to_cstring(name);
	p = ProviderFind(s);
	if (p == NULL)
		ProviderInvalidSetting(psprintf("unknown provider %s", ProviderQuoteValue(s, PROVIDER_QUOTE_CHARS)),
							   ProviderAvailableHint());
	if (p->status != PROVIDER_GA)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the %s provider is coming soon and cannot be used yet", p->label),
				 errhint("Available providers are listed in cloudconn.providers.")));
	return p;
}

/* cloudconn._validate_provider(provider text) RETURNS void */
Datum
cloudconn_validate_provider(PG_FUNCTION_ARGS)
{
	(void) ProviderValidateName(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	PG_RETURN_VOID();
}

static int
ProviderCompareStrings(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static bool
ProviderIsSettingKey(const Provider *p, const char *key)
{
	if (strcmp(key, "resource_types") == 0)
		return true;
	for (const char *const *k = p->settings_keys; *k != NULL; k++)
	{
		if (strcmp(*k, key) == 0)
			return true;
	}
	return false;
}

/* Refuse keys the provider does not know, naming (a bounded list of) them. */
static void
ProviderCheckSettingKeys(const Provider *p, Jsonb *settings)
{
	JsonbIterator *it = JsonbIteratorInit(&settings->root);
	JsonbValue	v;
	JsonbIteratorToken tok;
	List	   *unknown = NIL;
	const char **keys;
	const char **known;
	int			nknown = 0;
	int			n = 0;
	StringInfoData list;
	ListCell   *lc;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			char	   *key = pnstrdup(v.val.string.val, v.val.string.len);

			if (!ProviderIsSettingKey(p, key))
				unknown = lappend(unknown, key);
		}
	}
	if (unknown == NIL)
		return;

	keys = palloc(sizeof(char *) * list_length(unknown));
	foreach(lc, unknown)
		keys[n++] = lfirst(lc);
	qsort(keys, n, sizeof(char *), ProviderCompareStrings);
	initStringInfo(&list);
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoString(&list, ", ");
		appendStringInfoString(&list, keys[i]);
		if (pg_mbstrlen(list.data) > PROVIDER_QUOTE_CHARS)
		{
			list.len = pg_mbcharcliplen(list.data, list.len, PROVIDER_QUOTE_CHARS);
			list.data[list.len] = '\0';
			appendStringInfo(&list, "... (%d unknown setting%s)", n, n == 1 ? "" : "s");
			break;
		}
	}

	for (const char *const *k = p->settings_keys; *k != NULL; k++)
		nknown++;
	known = palloc(sizeof(char *) * (nknown + 1));
	for (int i = 0; i < nknown; i++)
		known[i] = p->settings_keys[i];
	known[nknown] = "resource_types";
	ProviderInvalidSetting(psprintf("unknown %s connector settings: %s", p->label, list.data),
						   psprintf("%s settings are %s.", p->label, ProviderJoin(known, nknown + 1, "\"%s\"")));
}

/* A value of a jsonb container as JSON text, for a message (bounded). */
char *
ProviderJsonForMessage(JsonbValue *v)
{
	JsonbValue	copy = *v;
	Jsonb	   *j = JsonbValueToJsonb(&copy);
	char	   *text = JsonbToCString(NULL, &j->root, VARSIZE(j));

	if (pg_mbstrlen(text) > PROVIDER_QUOTE_CHARS)
		text[pg_mbcharcliplen(text, strlen(text), PROVIDER_QUOTE_CHARS)] = '\0';
	return text;
}

/*
 * settings.resource_types: absent (the provider's defaults), or a
 * non-empty array of distinct ci_types of this provider.
 */
static void
ProviderCheckResourceTypes(const Provider *p, Jsonb *settings)
{
	JsonbValue *types = ProviderJsonbGet(&settings->root, "resource_types");
	int			n;
	const ResourceType **seen;

	if (types == NULL)
		return;
	if (types->type != jbvBinary || !JsonContainerIsArray(types->val.binary.data))
		ProviderInvalidSetting(psprintf("%s \"resource_types\" must be an array of resource types", p->label),
							   ProviderResourceTypesHint(p));
	n = JsonContainerSize(types->val.binary.data);
	if (n == 0)
		ProviderInvalidSetting(psprintf("%s \"resource_types\" is empty", p->label),
							   psprintf("Leave \"resource_types\" out to discover the default types. %s",
										ProviderResourceTypesHint(p)));
	if (n > PROVIDER_MAX_RESOURCE_TYPES)
		ProviderInvalidSetting(psprintf("%s \"resource_types\" lists too many resource types", p->label),
							   ProviderResourceTypesHint(p));
	seen = palloc0(sizeof(ResourceType *) * n);
	for (int i = 0; i < n; i++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(types->val.binary.data, i);
		char	   *name;
		const ResourceType *type;

		if (v->type != jbvString)
			ProviderInvalidSetting(psprintf("invalid %s resource type %s", p->label, ProviderJsonForMessage(v)),
								   ProviderResourceTypesHint(p));
		name = pnstrdup(v->val.string.val, v->val.string.len);
		type = ProviderResourceType(p, name);
		if (type == NULL)
		{
			for (int k = 0; k < (int) lengthof(providers); k++)
			{
				if (providers[k] != p && ProviderResourceType(providers[k], name) != NULL)
					ProviderInvalidSetting(psprintf("%s is a resource type of %s, not of %s",
													ProviderQuoteValue(name, PROVIDER_QUOTE_CHARS),
													providers[k]->label, p->label),
										   ProviderResourceTypesHint(p));
			}
			ProviderInvalidSetting(psprintf("unknown %s resource type %s", p->label,
											ProviderQuoteValue(name, PROVIDER_QUOTE_CHARS)),
								   ProviderResourceTypesHint(p));
		}
		for (int k = 0; k < i; k++)
		{
			if (seen[k] == type)
				ProviderInvalidSetting(psprintf("%s \"resource_types\" lists %s twice", p->label, type->ci_type),
									   NULL);
		}
		seen[i] = type;
	}
}

/*
 * cloudconn._validate_settings(provider text, settings jsonb) RETURNS void:
 * settings are replaced whole, so they are validated whole.
 */
Datum
cloudconn_validate_settings(PG_FUNCTION_ARGS)
{
	const Provider *p = ProviderValidateName(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	Jsonb	   *settings = PG_ARGISNULL(1) ? NULL : PG_GETARG_JSONB_P(1);

	if (settings == NULL || !JB_ROOT_IS_OBJECT(settings))
		ProviderInvalidSetting("connector settings must be a JSON object", NULL);
	ProviderCheckSettingKeys(p, settings);
	p->validate_settings(settings);
	ProviderCheckResourceTypes(p, settings);
	PG_RETURN_VOID();
}

/*
 * Characters a pasted secret never has: controls (C0, DEL, C1), and the
 * Unicode line and paragraph separators and bidirectional controls, which
 * could make a stored value display as something it is not.
 */
static bool
ProviderSecretCharsValid(const char *s)
{
	const unsigned char *p = (const unsigned char *) s;

	while (*p)
	{
		pg_wchar	c;
		int			len = pg_mblen((const char *) p);

		if (GetDatabaseEncoding() == PG_UTF8)
			c = utf8_to_unicode(p);
		else
			c = len == 1 ? *p : 0x100;	/* multibyte text of other encodings */
		if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0) ||
			c == 0x2028 || c == 0x2029 || (c >= 0x202a && c <= 0x202e) ||
			(c >= 0x2066 && c <= 0x2069))
			return false;
		p += len;
	}
	return true;
}

/* "a" or "an" before a word (a provider's label): "an Azure connector" */
static const char *
ProviderArticle(const char *word, bool capital)
{
	bool		vowel = strchr("AEIOUaeiou", word[0]) != NULL && word[0] != '\0';

	return vowel ? (capital ? "An" : "an") : (capital ? "A" : "a");
}

/*
 * cloudconn._validate_secret(provider text, secret text, rotating boolean)
 * RETURNS void: the stored secret a connector of provider takes, given to
 * connector_create (rotating false; NULL means none) or connector_set_token
 * (rotating true).  A secret is never echoed in a message.
 */
Datum
cloudconn_validate_secret(PG_FUNCTION_ARGS)
{
	const Provider *p = ProviderValidateName(PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0));
	text	   *secret = PG_ARGISNULL(1) ? NULL : PG_GETARG_TEXT_PP(1);
	bool		rotating = PG_GETARG_BOOL(2);
	char	   *s;

	if (p->secret_name == NULL)
	{
		if (secret != NULL || rotating)
			ProviderInvalidSetting(psprintf("%s connectors take no token", p->label),
								   psprintf("%s%s", p->no_secret_hint, rotating ? "." : "; pass token => NULL."));
		PG_RETURN_VOID();
	}
	if (secret == NULL || VARSIZE_ANY_EXHDR(secret) == 0)
		ProviderInvalidSetting(psprintf("%s %s connector needs a %s", ProviderArticle(p->label, false),
										p->label, p->secret_name), p->secret_hint);
	if (VARSIZE_ANY_EXHDR(secret) > 1024)
		ProviderInvalidSetting(psprintf("%s is too long", p->secret_name),
							   psprintf("%s %s %s has at most 1024 bytes.", ProviderArticle(p->label, true),
										p->label, p->secret_name));
	s = text_to_cstring(secret);
	if (!ProviderSecretCharsValid(s))
	{
		WipeString(s);
		ProviderInvalidSetting(psprintf("%s must not contain control characters or line breaks", p->secret_name),
							   psprintf("Paste the %s exactly as %s shows it.", p->secret_name, p->label));
	}
	WipeString(s);
	PG_RETURN_VOID();
}

/*
 * cloudconn._connector_valid(provider text, has_external_id boolean,
 * has_token boolean) RETURNS boolean: the connector table's check.  The
 * provider is one of the registry; it has an external id exactly when it
 * mints one; a token only if it keeps a secret.
 */
Datum
cloudconn_connector_valid(PG_FUNCTION_ARGS)
{
	const Provider *p = ProviderFind(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	PG_RETURN_BOOL(p != NULL && p->mints_external_id == PG_GETARG_BOOL(1) &&
				   (p->secret_name != NULL || !PG_GETARG_BOOL(2)));
}

/* cloudconn._provider_mints_external_id(provider text) RETURNS boolean */
Datum
cloudconn_provider_mints_external_id(PG_FUNCTION_ARGS)
{
	const Provider *p = ProviderFind(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	PG_RETURN_BOOL(p != NULL && p->mints_external_id);
}

/*
 * cloudconn._ci_scope(provider text, ci_type text, external_id text,
 * attributes jsonb) RETURNS text: the scope of a CI discovered before
 * scopes were stored (the 0.1.0 -> 0.2.0 upgrade).
 */
Datum
cloudconn_ci_scope(PG_FUNCTION_ARGS)
{
	const Provider *p = ProviderFind(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	const char *scope;

	if (p == NULL || p->scope_of_ci == NULL)
		PG_RETURN_NULL();
	scope = p->scope_of_ci(text_to_cstring(PG_GETARG_TEXT_PP(1)), text_to_cstring(PG_GETARG_TEXT_PP(2)),
						   PG_GETARG_JSONB_P(3));
	if (scope == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(scope));
}

/* ------------------------------------------------------------------------
 * Loading a connector
 * ------------------------------------------------------------------------ */

/* The resource types a connector lists: settings.resource_types, else the defaults. */
List *
ProviderEnabledTypes(const Provider *p, Jsonb *settings)
{
	JsonbValue *types = ProviderJsonbGet(&settings->root, "resource_types");
	List	   *enabled = NIL;

	if (types != NULL && types->type == jbvBinary && JsonContainerIsArray(types->val.binary.data))
	{
		/* in registry order, whatever order the settings name them in */
		for (int t = 0; t < p->nresource_types; t++)
		{
			for (int i = 0; i < (int) JsonContainerSize(types->val.binary.data); i++)
			{
				JsonbValue *v = getIthJsonbValueFromContainer(types->val.binary.data, i);

				if (v->type == jbvString &&
					strlen(p->resource_types[t]->ci_type) == (size_t) v->val.string.len &&
					memcmp(p->resource_types[t]->ci_type, v->val.string.val, v->val.string.len) == 0)
				{
					enabled = lappend(enabled, (void *) p->resource_types[t]);
					break;
				}
			}
		}
		return enabled;
	}
	for (int t = 0; t < p->nresource_types; t++)
	{
		if (p->resource_types[t]->default_enabled)
			enabled = lappend(enabled, (void *) p->resource_types[t]);
	}
	return enabled;
}

static Datum
ProviderColumn(const char *name, bool *isnull)
{
	int			col = SPI_fnumber(SPI_tuptable->tupdesc, name);

	if (col <= 0)
		elog(ERROR, "connector query has no column \"%s\"", name);
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull);
}

bool
ProviderConnectorLoad(int64 connector_id, Oid caller, ProviderConnector *conn, MemoryContext cxt)
{
	Oid			types[2] = {INT8OID, OIDOID};
	Datum		args[2] = {Int64GetDatum(connector_id), ObjectIdGetDatum(caller)};
	MemoryContext old;
	bool		isnull;
	Datum		d;

	if (SPI_execute_with_args(OidIsValid(caller)
							  ? "SELECT c.* FROM cloudconn._connector_for_action($2, $1, false) c"
							  : "SELECT c.* FROM cloudconn.connector c WHERE c.id = $1 AND c.deleted_at IS NULL",
							  OidIsValid(caller) ? 2 : 1, types, args, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not load connector " INT64_FORMAT, connector_id);
	if (SPI_processed != 1)
		return false;

	old = MemoryContextSwitchTo(cxt);
	memset(conn, 0, sizeof(*conn));
	conn->id = DatumGetInt64(ProviderColumn("id", &isnull));
	conn->entity_id = DatumGetInt64(ProviderColumn("entity_id", &isnull));
	conn->name = TextDatumGetCString(ProviderColumn("name", &isnull));
	conn->provider = ProviderLookup(TextDatumGetCString(ProviderColumn("provider", &isnull)));
	conn->settings = DatumGetJsonbPCopy(ProviderColumn("settings", &isnull));
	d = ProviderColumn("external_id", &isnull);
	conn->external_id = isnull ? NULL : TextDatumGetCString(d);
	conn->resource_types = ProviderEnabledTypes(conn->provider, conn->settings);
	d = ProviderColumn("token", &isnull);
	if (!isnull)
		conn->token = WipeOnReset(SecretsDecryptToken(DatumGetByteaPP(d), conn->id));
	MemoryContextSwitchTo(old);
	return true;
}

/*
 * cloudconn._connector_test(caller oid, connector_id bigint) RETURNS jsonb,
 * SECURITY DEFINER, reached through cloudconn_dispatch.  The permission
 * check is _connector_for_action's (manage); the secret is decrypted into
 * the call's memory, wiped when it goes.
 */
Datum
cloudconn_connector_test(PG_FUNCTION_ARGS)
{
	ProviderConnector conn;
	MemoryContext callcxt = CurrentMemoryContext;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connector_id must not be null")));
	SPI_connect();
	if (!ProviderConnectorLoad(PG_GETARG_INT64(1), PG_GETARG_OID(0), &conn, callcxt))
		elog(ERROR, "could not load connector");
	SPI_finish();

	PG_RETURN_JSONB_P(conn.provider->test(&conn, HttpClientCreate()));
}

/* ------------------------------------------------------------------------
 * Text from providers
 * ------------------------------------------------------------------------ */

JsonbValue *
ProviderJsonbGet(JsonbContainer *container, const char *key)
{
	if (container == NULL || !JsonContainerIsObject(container))
		return NULL;
	return getKeyJsonValueFromContainer(container, key, strlen(key), NULL);
}

/* The string value of key, palloc'd, or NULL if absent or not a string. */
char *
ProviderJsonbString(JsonbContainer *container, const char *key)
{
	JsonbValue *v = ProviderJsonbGet(container, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/*
 * Provider text in the database's encoding.  Providers speak UTF-8 (JSON
 * must be UTF-8, and libxml2 hands out UTF-8 whatever the document's
 * encoding); text is trusted to be valid UTF-8 here.  In a UTF8 or
 * SQL_ASCII database that is text itself; otherwise a converted copy, in
 * which a character the database's encoding lacks becomes '?' when
 * replace_untranslatable, and makes the result NULL when not.
 */
char *
ProviderUtf8ToServer(const char *text, size_t len, bool replace_untranslatable)
{
	int			encoding = GetDatabaseEncoding();
	Oid			proc;
	unsigned char *out;
	size_t		done = 0,
				outlen = 0;

	if (encoding == PG_UTF8 || encoding == PG_SQL_ASCII)
		return (char *) text;
	proc = FindDefaultConversionProc(PG_UTF8, encoding);
	if (!OidIsValid(proc))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("no conversion from UTF8 to the database's encoding \"%s\"",
						GetDatabaseEncodingName())));
	if (len >= MaxAllocSize / MAX_CONVERSION_GROWTH)
		return NULL;
	out = palloc(len * MAX_CONVERSION_GROWTH + 1);
	out[0] = '\0';
	while (done < len)
	{
		done += pg_do_encoding_conversion_buf(proc, PG_UTF8, encoding,
											  (unsigned char *) text + done, (int) (len - done),
											  out + outlen, (int) ((len - done) * MAX_CONVERSION_GROWTH + 1),
											  true);
		outlen += strlen((char *) out + outlen);
		if (done < len)
		{
			/* the conversion stopped at a character the encoding lacks */
			if (!replace_untranslatable)
			{
				pfree(out);
				return NULL;
			}
			out[outlen++] = '?';
			out[outlen] = '\0';
			done += pg_utf_mblen((const unsigned char *) text + done);
		}
	}
	return (char *) out;
}

/* Whether a body is valid UTF-8 without NUL bytes, of a size PostgreSQL takes. */
bool
ProviderUtf8Valid(const char *text, size_t len)
{
	return len < (size_t) MaxAllocSize / MAX_CONVERSION_GROWTH &&
		pg_verify_mbstr(PG_UTF8, text, (int) len, true);
}

/*
 * Provider text for a message in the database's encoding: bytes that are
 * not UTF-8 become '?', and so do characters the encoding lacks.  text is
 * changed in place when it is not valid UTF-8.
 */
char *
ProviderMessageText(char *text)
{
	size_t		len = strlen(text);

	if (!ProviderUtf8Valid(text, len))
	{
		for (size_t i = 0; i < len; i++)
		{
			if ((unsigned char) text[i] >= 0x80)
				text[i] = '?';
		}
	}
	return ProviderUtf8ToServer(text, len, true);
}

static void
ProviderJsonCheckNumber(void *state, char *token, JsonTokenType tokentype)
{
	if (tokentype == JSON_TOKEN_NUMBER && !JsonNumberInRange(token))
		*(bool *) state = true;
}

/*
 * Parse a small body that may not be JSON at all (an error body), without
 * raising: the non-throwing parser validates it first.
 */
Jsonb *
ProviderJsonbTryParse(const char *text, size_t len)
{
	JsonLexContext *lex;
	JsonSemAction sem;
	bool		out_of_range = false;

	if (!ProviderUtf8Valid(text, len) || (text = ProviderUtf8ToServer(text, len, false)) == NULL)
		return NULL;

	/*
	 * jsonb_in raises on a \u escape of a character the database's encoding
	 * lacks; such a body is left unread.
	 */
	if (GetDatabaseEncoding() != PG_UTF8 && strstr(text, "\\u") != NULL)
		return NULL;
	len = strlen(text);
	/* with its escapes read, as jsonb_in reads them: a lone surrogate or \u0000 raises there */
	lex = makeJsonLexContextCstringLen((char *) text, (int) len, GetDatabaseEncoding(), true);
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &out_of_range;
	sem.scalar = ProviderJsonCheckNumber;
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS || out_of_range)
		return NULL;
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/* {"ok": ok, key: value} with value a JSON string (or detail as an object). */
/*
 * connector_test's verdict on one resource type, appended to the members of
 * a "resource_types" object: "<ci_type>": {"ok": true}, or {"ok": false,
 * "error": why}.  first: no comma before it.
 */
void
ProviderAppendTypeTest(StringInfo buf, bool first, const char *ci_type, const char *why)
{
	if (!first)
		appendStringInfoString(buf, ", ");
	escape_json(buf, ci_type);
	if (why == NULL)
		appendStringInfoString(buf, ": {\"ok\": true}");
	else
	{
		appendStringInfoString(buf, ": {\"ok\": false, \"error\": ");
		escape_json(buf, why);
		appendStringInfoChar(buf, '}');
	}
}

Jsonb *
ProviderJsonbOk(bool ok, const char *key, const char *value, Jsonb *detail)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"ok\": %s", ok ? "true" : "false");
	if (key != NULL)
	{
		appendStringInfoString(&buf, ", ");
		escape_json(&buf, key);
		appendStringInfoString(&buf, ": ");
		if (detail != NULL)
			appendStringInfoString(&buf, JsonbToCString(NULL, &detail->root, VARSIZE(detail)));
		else
			escape_json(&buf, value);
	}
	appendStringInfoChar(&buf, '}');
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
