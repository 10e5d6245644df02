/*
 * provider.c
 *		The provider registry, loading a connector for a provider (the token
 *		decrypted only in memory), connector_test(), and jsonb helpers the
 *		providers share.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "provider.h"
#include "secrets.h"

PG_FUNCTION_INFO_V1(cloudconn_connector_test);

/* One line per provider. */
static const Provider *const providers[] = {
	&aws_provider,
	&digitalocean_provider,
};

const Provider *
ProviderLookup(const char *name)
{
	for (int i = 0; i < (int) lengthof(providers); i++)
	{
		if (strcmp(providers[i]->name, name) == 0)
			return providers[i];
	}
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("discovery with the %s provider is not available yet", name)));
	return NULL;				/* keep compiler quiet */
}

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
static char *
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

/* Whether a body is valid UTF-8 without NUL bytes, of a size jsonb_in takes. */
static bool
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

/*
 * A number jsonb_in would refuse as out of numeric's range (it raises) is
 * flagged instead; any number this long or with an exponent this large is.
 */
static void
ProviderJsonCheckNumber(void *state, char *token, JsonTokenType tokentype)
{
	const char *e;
	long		exponent;

	if (tokentype != JSON_TOKEN_NUMBER)
		return;
	e = strpbrk(token, "eE");
	/* strtol saturates at LONG_MIN/LONG_MAX: compare, never negate */
	exponent = e ? strtol(e + 1, NULL, 10) : 0;
	if (strlen(token) > 1000 || exponent > 1000 || exponent < -1000)
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
	lex = makeJsonLexContextCstringLen((char *) text, (int) len, GetDatabaseEncoding(), false);
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &out_of_range;
	sem.scalar = ProviderJsonCheckNumber;
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS || out_of_range)
		return NULL;
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

/*
 * Parse a body (every page of a run goes through here, so it is parsed
 * once), raising an error that names what it was: jsonb_in's own syntax
 * error is replaced, since it quotes the offending text.  The error is
 * always re-raised, never swallowed.
 */
Jsonb *
ProviderJsonbParse(const char *text, size_t len, const char *what)
{
	MemoryContext cxt = CurrentMemoryContext;
	Jsonb	   *volatile result = NULL;
	const char *server_text;

	if (len >= (size_t) MaxAllocSize / MAX_CONVERSION_GROWTH || memchr(text, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("malformed JSON in %s", what),
				 errdetail("The body contains a NUL byte or is too large.")));
	if (!ProviderUtf8Valid(text, len))
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("invalid UTF-8 in %s", what)));
	server_text = ProviderUtf8ToServer(text, len, false);
	if (server_text == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("%s has characters that the database's encoding \"%s\" cannot hold",
						what, GetDatabaseEncodingName())));
	PG_TRY();
	{
		result = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(server_text)));
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_INVALID_TEXT_REPRESENTATION &&
			edata->sqlerrcode != ERRCODE_UNTRANSLATABLE_CHARACTER &&
			edata->sqlerrcode != ERRCODE_CHARACTER_NOT_IN_REPERTOIRE &&
			edata->sqlerrcode != ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE)
			PG_RE_THROW();
		FlushErrorState();
		/* a \u escape of a character the database's encoding lacks */
		if (edata->sqlerrcode == ERRCODE_UNTRANSLATABLE_CHARACTER)
			ereport(ERROR,
					(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
					 errmsg("%s has characters that the database's encoding \"%s\" cannot hold",
							what, GetDatabaseEncodingName())));
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("malformed JSON in %s", what),
				 errdetail("The body is not valid JSON, or has a number out of range.")));
	}
	PG_END_TRY();
	if (server_text != text)
		pfree((char *) server_text);
	return result;
}

/* Append "key": <v as JSON> to an object being built ('{' already there). */
void
ProviderJsonAppendValue(StringInfo out, const char *key, JsonbValue *v)
{
	if (out->len > 1)
		appendStringInfoString(out, ", ");
	escape_json(out, key);
	appendStringInfoString(out, ": ");
	if (v == NULL || v->type == jbvNull)
		appendStringInfoString(out, "null");
	else if (v->type == jbvBinary)
		(void) JsonbToCString(out, v->val.binary.data, v->val.binary.len);
	else if (v->type == jbvString)
	{
		char	   *str = pnstrdup(v->val.string.val, v->val.string.len);

		escape_json(out, str);
		pfree(str);
	}
	else if (v->type == jbvNumeric)
		appendStringInfoString(out, DatumGetCString(DirectFunctionCall1(numeric_out,
																		 NumericGetDatum(v->val.numeric))));
	else if (v->type == jbvBool)
		appendStringInfoString(out, v->val.boolean ? "true" : "false");
	else
		appendStringInfoString(out, "null");
}

/* Append "key": "value" to an object being built; nothing if value is NULL. */
void
ProviderJsonAppendString(StringInfo out, const char *key, const char *value)
{
	if (value == NULL)
		return;
	if (out->len > 1)
		appendStringInfoString(out, ", ");
	escape_json(out, key);
	appendStringInfoString(out, ": ");
	escape_json(out, value);
}

/* {"ok": ok, key: value} with value a JSON string (or detail as an object). */
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

/* Wipe a decrypted token when the memory holding it goes, on every path. */
static void
ProviderWipeToken(void *arg)
{
	char	   *token = (char *) arg;

	explicit_bzero(token, strlen(token));
}

/*
 * Fill conn from the first row of the current SPI result, whose columns are
 * (id, name, provider, settings, token, external_id, entity_id), copying
 * into cxt.  The token is decrypted into cxt and wiped when cxt is reset or
 * deleted, ERROR included.  Returns the connector's entity id.
 */
int64
ProviderConnectorFromSpi(ProviderConnector *conn, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	HeapTuple	tup = SPI_tuptable->vals[0];
	TupleDesc	desc = SPI_tuptable->tupdesc;
	bool		isnull;
	Datum		token;
	int64		entity_id;

	memset(conn, 0, sizeof(*conn));
	conn->id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	conn->name = SPI_getvalue(tup, desc, 2);
	conn->provider = SPI_getvalue(tup, desc, 3);
	conn->settings = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 4, &isnull));
	conn->external_id = SPI_getvalue(tup, desc, 6);
	entity_id = DatumGetInt64(SPI_getbinval(tup, desc, 7, &isnull));
	token = SPI_getbinval(tup, desc, 5, &isnull);
	if (!isnull)
	{
		MemoryContextCallback *cb = palloc(sizeof(MemoryContextCallback));

		conn->token = SecretsDecryptToken(DatumGetByteaPP(token), conn->id);
		cb->func = ProviderWipeToken;
		cb->arg = conn->token;
		MemoryContextRegisterResetCallback(cxt, cb);
	}
	MemoryContextSwitchTo(old);
	return entity_id;
}

/*
 * cloudconn._connector_test(caller oid, connector_id bigint) RETURNS jsonb,
 * SECURITY DEFINER, reached through cloudconn_dispatch.  The permission
 * check is _connector_for_action's (manage); the token is decrypted into
 * the call's memory, wiped when it goes.
 */
Datum
cloudconn_connector_test(PG_FUNCTION_ARGS)
{
	Oid			argtypes[2] = {OIDOID, INT8OID};
	Datum		args[2];
	ProviderConnector conn;
	MemoryContext callcxt = CurrentMemoryContext;

	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("connector_id must not be null")));
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PG_GETARG_DATUM(1);

	SPI_connect();
	if (SPI_execute_with_args("SELECT c.id, c.name, c.provider, c.settings, c.token, c.external_id, c.entity_id"
							  "  FROM cloudconn._connector_for_action($1, $2, false) c",
							  2, argtypes, args, NULL, false, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not load connector");
	(void) ProviderConnectorFromSpi(&conn, callcxt);
	SPI_finish();

	PG_RETURN_JSONB_P(ProviderLookup(conn.provider)->test(&conn, HttpClientCreate()));
}
