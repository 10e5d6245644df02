/*
 * json_items.c
 *		Reading a JSON page of a provider's API into its items in one pass:
 *		PostgreSQL's JSON parser with semantic actions builds, for each
 *		element of the items array, a JsonbValue tree of the members its
 *		mapping reads, and skips the rest.  Building a jsonb of the whole
 *		page (what jsonb_in does) costs ten times the parse: it sorts the
 *		keys of every object of every resource, most of which no mapping
 *		reads.
 *
 * Vocabulary: depth counts the containers open around the current point
 * (the page's object is depth 1, the items array depth 2, an item's object
 * depth 3).  A value is kept (pushed into a JsonbParseState: the item
 * being built, or the page object), or skipped.  The body is lexed as
 * UTF-8, whatever the database's encoding, and kept strings are converted
 * one by one, so that a character the encoding lacks spoils its own item
 * only.
 */
#include "postgres.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "json_items.h"
#include "provider.h"

/* No API we read nests anywhere near this deep. */
#define JSON_ITEMS_MAX_DEPTH 64

typedef struct JsonItemsReader
{
	const JsonItemsSpec *spec;
	const char *what;
	int			depth;

	JsonbParseState *page;		/* the page object being built */
	JsonbParseState *item;		/* the item being built */
	JsonbParseState **target;	/* where kept values go, or NULL */
	int			skip_depth;		/* > 0: the value of a member at this depth is skipped */
	bool		expect_items;	/* the next value is the items member's */
	bool		in_items;		/* inside the items array */
	bool		item_untranslatable;

	int			nitems;
	int			flags_size;
	JsonItemsPage *out;
	char	   *error;			/* why the page is refused; the parse then only lexes */
} JsonItemsReader;

/* The page is refused; the rest of the body is only checked for syntax. */
static void
JsonItemsRefuse(JsonItemsReader *r, char *error)
{
	if (r->error == NULL)
		r->error = error;
}

static bool
JsonItemsWanted(const char *const *names, const char *name)
{
	if (names == NULL)
		return true;
	for (; *names != NULL; names++)
	{
		if (strcmp(*names, name) == 0)
			return true;
	}
	return false;
}

/* Text of the body (UTF-8) in the database's encoding; flags the item. */
static char *
JsonItemsText(JsonItemsReader *r, char *utf8)
{
	size_t		len = strlen(utf8);
	char	   *text = ProviderUtf8ToServer(utf8, len, false);

	if (text != NULL)
		return text;
	if (r->target == &r->item || r->in_items)
		r->item_untranslatable = true;
	return ProviderUtf8ToServer(utf8, len, true);
}

/* An item is complete: it joins the page. */
static void
JsonItemsAddItem(JsonItemsReader *r, JsonbValue *item)
{
	JsonItemsPage *out = r->out;

	if (++r->nitems > r->spec->max_items)
	{
		JsonItemsRefuse(r, psprintf("%s lists more than %d items", r->what, r->spec->max_items));
		return;
	}
	if (r->nitems > r->flags_size)
	{
		int			size = Max(64, r->flags_size * 2);

		out->untranslatable = r->flags_size == 0 ? palloc0(sizeof(bool) * size)
			: repalloc(out->untranslatable, sizeof(bool) * size);
		r->flags_size = size;
	}
	out->untranslatable[r->nitems - 1] = r->item_untranslatable;
	out->items = lappend(out->items, item);
	r->item_untranslatable = false;
	r->item = NULL;
	r->target = NULL;
}

static void
JsonItemsContainerStart(JsonItemsReader *r, JsonbIteratorToken token)
{
	r->depth++;
	if (r->depth > JSON_ITEMS_MAX_DEPTH)
		JsonItemsRefuse(r, psprintf("malformed JSON in %s", r->what));
	if (r->skip_depth > 0 || r->error != NULL)
		return;
	if (r->depth == 1)
	{
		/* the page itself: kept only if it is an object */
		if (token == WJB_BEGIN_OBJECT)
			pushJsonbValue(&r->page, WJB_BEGIN_OBJECT, NULL);
		return;
	}
	if (r->depth == 2 && r->expect_items && token == WJB_BEGIN_ARRAY)
	{
		r->in_items = true;
		r->out->has_items = true;
		return;
	}
	if (r->target != NULL)
		pushJsonbValue(r->target, token, NULL);
}

static void
JsonItemsContainerEnd(JsonItemsReader *r, JsonbIteratorToken token)
{
	r->depth--;
	if (r->skip_depth > 0 || r->error != NULL)
		return;
	if (r->depth == 0)
	{
		if (token == WJB_END_OBJECT)
			r->out->page = pushJsonbValue(&r->page, WJB_END_OBJECT, NULL);
		return;
	}
	if (r->depth == 1 && r->in_items)
	{
		r->in_items = false;
		return;
	}
	if (r->target != NULL)
	{
		JsonbValue *done = pushJsonbValue(r->target, token, NULL);

		if (r->target == &r->item && r->item == NULL)
			JsonItemsAddItem(r, done);
	}
}

static void
JsonItemsObjectStart(void *state)
{
	JsonItemsContainerStart((JsonItemsReader *) state, WJB_BEGIN_OBJECT);
}

static void
JsonItemsObjectEnd(void *state)
{
	JsonItemsContainerEnd((JsonItemsReader *) state, WJB_END_OBJECT);
}

static void
JsonItemsArrayStart(void *state)
{
	JsonItemsContainerStart((JsonItemsReader *) state, WJB_BEGIN_ARRAY);
}

static void
JsonItemsArrayEnd(void *state)
{
	JsonItemsContainerEnd((JsonItemsReader *) state, WJB_END_ARRAY);
}

static void
JsonItemsFieldStart(void *state, char *fname, bool isnull)
{
	JsonItemsReader *r = (JsonItemsReader *) state;
	JsonbValue	key;

	if (r->skip_depth > 0 || r->error != NULL)
		return;
	if (r->depth == 1)
	{
		/* a member of the page */
		if (r->spec->items_key != NULL && strcmp(fname, r->spec->items_key) == 0)
			r->expect_items = true;
		else if (r->spec->page_members != NULL && JsonItemsWanted(r->spec->page_members, fname) &&
				 r->page != NULL)
			r->target = &r->page;
		else
		{
			r->skip_depth = r->depth;
			return;
		}
		if (r->target == NULL)
			return;
	}
	else if (r->depth == 3 && r->target == &r->item && r->item != NULL && r->item->next == NULL &&
			 !JsonItemsWanted(r->spec->item_members, fname))
	{
		/* a member of an item that no mapping reads */
		r->skip_depth = r->depth;
		return;
	}
	if (r->target == NULL)
		return;
	key.type = jbvString;
	key.val.string.val = JsonItemsText(r, fname);
	key.val.string.len = strlen(key.val.string.val);
	pushJsonbValue(r->target, WJB_KEY, &key);
}

static void
JsonItemsFieldEnd(void *state, char *fname, bool isnull)
{
	JsonItemsReader *r = (JsonItemsReader *) state;

	if (r->skip_depth == r->depth)
		r->skip_depth = 0;
	if (r->depth == 1)
	{
		r->expect_items = false;
		r->target = NULL;
	}
}

static void
JsonItemsElementStart(void *state, bool isnull)
{
	JsonItemsReader *r = (JsonItemsReader *) state;

	if (r->skip_depth == 0 && r->error == NULL && r->in_items && r->depth == 2)
	{
		r->item = NULL;
		r->target = &r->item;
	}
}

/*
 * A number jsonb would refuse as out of numeric's range (numeric_in
 * raises) makes the page malformed; any number this long or with an
 * exponent this large is refused.
 */
bool
JsonNumberInRange(const char *token)
{
	const char *e = strpbrk(token, "eE");
	long		exponent;

	/* strtol saturates at LONG_MIN/LONG_MAX: compare, never negate */
	exponent = e ? strtol(e + 1, NULL, 10) : 0;
	return strlen(token) <= 1000 && exponent <= 1000 && exponent >= -1000;
}

static void
JsonItemsScalar(void *state, char *token, JsonTokenType tokentype)
{
	JsonItemsReader *r = (JsonItemsReader *) state;
	JsonbValue	v;

	if (tokentype == JSON_TOKEN_NUMBER && !JsonNumberInRange(token))
		JsonItemsRefuse(r, psprintf("malformed JSON in %s", r->what));
	if (r->skip_depth > 0 || r->target == NULL || r->error != NULL)
		return;
	switch (tokentype)
	{
		case JSON_TOKEN_STRING:
			v.type = jbvString;
			v.val.string.val = JsonItemsText(r, token);
			v.val.string.len = strlen(v.val.string.val);
			break;
		case JSON_TOKEN_NUMBER:
			v.type = jbvNumeric;
			v.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(token),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
			break;
		case JSON_TOKEN_TRUE:
		case JSON_TOKEN_FALSE:
			v.type = jbvBool;
			v.val.boolean = (tokentype == JSON_TOKEN_TRUE);
			break;
		default:
			v.type = jbvNull;
			break;
	}
	if (r->target == &r->item && r->item == NULL)
	{
		/* an item that is not an object or array (the mapping refuses it) */
		JsonItemsAddItem(r, memcpy(palloc(sizeof(JsonbValue)), &v, sizeof(JsonbValue)));
		return;
	}
	pushJsonbValue(r->target, (*r->target)->contVal.type == jbvArray ? WJB_ELEM : WJB_VALUE, &v);
}

static int
JsonItemsHex4(const char *p)
{
	int			v = 0;

	for (int i = 0; i < 4; i++)
	{
		char		c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/*
 * The body with every \u escape of a character beyond ASCII written as that
 * character in UTF-8.  PostgreSQL's lexer turns such escapes into the
 * database's encoding (and raises on a character the encoding lacks),
 * while the rest of a string stays as the body has it, UTF-8: in a
 * database that is not UTF8, the two would mix.  Done this way, every kept
 * string is UTF-8 and is converted, and judged, as a whole.  Escapes that
 * are not well-formed are left for the lexer to refuse.
 */
static char *
JsonItemsUnescapeNonAscii(const char *body, size_t len, size_t *outlen)
{
	char	   *out = palloc(len + 1);
	size_t		o = 0;
	bool		in_string = false;

	for (size_t i = 0; i < len; i++)
	{
		char		c = body[i];
		int			cp;

		if (!in_string)
		{
			in_string = (c == '"');
			out[o++] = c;
			continue;
		}
		if (c == '"')
			in_string = false;
		else if (c == '\\' && i + 1 < len)
		{
			if (body[i + 1] == 'u' && i + 5 < len && (cp = JsonItemsHex4(body + i + 2)) >= 0x80)
			{
				size_t		used = 6;
				unsigned char utf8[4];
				int			n;

				if (cp >= 0xD800 && cp <= 0xDBFF)
				{
					int			low = (i + 11 < len && body[i + 6] == '\\' && body[i + 7] == 'u')
						? JsonItemsHex4(body + i + 8) : -1;

					if (low < 0xDC00 || low > 0xDFFF)
					{
						out[o++] = c;	/* a lone high surrogate: the lexer refuses it */
						continue;
					}
					cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
					used = 12;
				}
				else if (cp >= 0xDC00 && cp <= 0xDFFF)
				{
					out[o++] = c;	/* a lone low surrogate: likewise */
					continue;
				}
				unicode_to_utf8((pg_wchar) cp, utf8);
				n = pg_utf_mblen(utf8);
				memcpy(out + o, utf8, n);
				o += n;
				i += used - 1;
				continue;
			}
			/* any other escape is copied whole, so that \\ is never read as an escape */
			out[o++] = c;
			out[o++] = body[++i];
			continue;
		}
		out[o++] = c;
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

bool
JsonItemsRead(const char *body, size_t len, const JsonItemsSpec *spec, const char *what,
			  JsonItemsPage *out, char **error)
{
	JsonItemsReader r;
	JsonSemAction sem;
	JsonLexContext *lex;

	memset(out, 0, sizeof(*out));
	*error = NULL;
	if (len >= (size_t) MaxAllocSize || memchr(body, '\0', len) != NULL)
	{
		*error = psprintf("malformed JSON in %s", what);
		return false;
	}
	if (!ProviderUtf8Valid(body, len))
	{
		*error = psprintf("invalid UTF-8 in %s", what);
		return false;
	}

	memset(&r, 0, sizeof(r));
	r.spec = spec;
	r.what = what;
	r.out = out;
	memset(&sem, 0, sizeof(sem));
	sem.semstate = &r;
	sem.object_start = JsonItemsObjectStart;
	sem.object_end = JsonItemsObjectEnd;
	sem.array_start = JsonItemsArrayStart;
	sem.array_end = JsonItemsArrayEnd;
	sem.object_field_start = JsonItemsFieldStart;
	sem.object_field_end = JsonItemsFieldEnd;
	sem.array_element_start = JsonItemsElementStart;
	sem.scalar = JsonItemsScalar;

	/* lexed as UTF-8, whatever the database's encoding: strings are converted one by one */
	if (GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII &&
		memmem(body, len, "\\u", 2) != NULL)
		body = JsonItemsUnescapeNonAscii(body, len, &len);
	lex = makeJsonLexContextCstringLen((char *) body, (int) len, PG_UTF8, true);
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS)
		JsonItemsRefuse(&r, psprintf("malformed JSON in %s", what));
	if (r.error != NULL)
	{
		*error = r.error;
		return false;
	}
	if (out->page == NULL)
	{
		out->page = palloc0(sizeof(JsonbValue));
		out->page->type = jbvObject;
	}
	return true;
}

JsonbValue *
JsonItemGet(const JsonbValue *object, const char *key)
{
	size_t		keylen = strlen(key);

	if (object == NULL || object->type != jbvObject)
		return NULL;
	for (int i = 0; i < object->val.object.nPairs; i++)
	{
		const JsonbPair *p = &object->val.object.pairs[i];

		if (p->key.val.string.len == (int) keylen && memcmp(p->key.val.string.val, key, keylen) == 0)
			return (JsonbValue *) &p->value;
	}
	return NULL;
}

char *
JsonItemString(const JsonbValue *object, const char *key)
{
	JsonbValue *v = JsonItemGet(object, key);

	if (v == NULL || v->type != jbvString)
		return NULL;
	/* kept strings are NUL-terminated where the parser made them */
	return pnstrdup(v->val.string.val, v->val.string.len);
}

void
JsonItemPush(JsonbParseState **state, JsonbIteratorToken seq, const JsonbValue *value)
{
	switch (value->type)
	{
		case jbvObject:
			pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
			for (int i = 0; i < value->val.object.nPairs; i++)
			{
				pushJsonbValue(state, WJB_KEY, (JsonbValue *) &value->val.object.pairs[i].key);
				JsonItemPush(state, WJB_VALUE, &value->val.object.pairs[i].value);
			}
			pushJsonbValue(state, WJB_END_OBJECT, NULL);
			break;
		case jbvArray:
			pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
			for (int i = 0; i < value->val.array.nElems; i++)
				JsonItemPush(state, WJB_ELEM, &value->val.array.elems[i]);
			pushJsonbValue(state, WJB_END_ARRAY, NULL);
			break;
		default:
			pushJsonbValue(state, seq, (JsonbValue *) value);
			break;
	}
}

void
JsonItemPushMember(JsonbParseState **state, const char *key, const JsonbValue *value)
{
	JsonbValue	k;

	if (value == NULL)
		return;
	k.type = jbvString;
	k.val.string.val = (char *) key;
	k.val.string.len = strlen(key);
	pushJsonbValue(state, WJB_KEY, &k);
	JsonItemPush(state, WJB_VALUE, value);
}

void
JsonItemPushString(JsonbParseState **state, const char *key, const char *text)
{
	JsonbValue	v;

	if (text == NULL)
		return;
	v.type = jbvString;
	v.val.string.val = (char *) text;
	v.val.string.len = strlen(text);
	JsonItemPushMember(state, key, &v);
}
