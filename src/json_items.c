/*
 * json_items.c
 *		Reading a JSON page of a provider's API into its items in one pass:
 *		a validating scanner of RFC 8259 JSON that builds, for each element
 *		of the items array, a JsonbValue tree of the members its mapping
 *		reads, and only checks the syntax of the rest.  Building a jsonb of
 *		the whole page (what jsonb_in does) costs ten times the scan: it
 *		copies every string a character at a time, and sorts the keys of
 *		every object of every resource, most of which no mapping reads.
 *
 * What is accepted is what PostgreSQL's JSON parser accepts, bar \u0000
 * (which no text can hold): a body that is not well-formed JSON, nested
 * deeper than JSON_ITEMS_MAX_DEPTH, with a number beyond what numeric
 * takes, or with more items than the spec allows, is refused whole.  The
 * body is UTF-8 (checked first); kept strings are de-escaped to UTF-8 and
 * converted one by one to the database's encoding, so that a character
 * the encoding lacks spoils its own item only.  Kept objects are built
 * without sorting: their members are found by a linear search, the last
 * of equal keys winning, as in jsonb.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "port/pg_bitutils.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "json_items.h"
#include "provider.h"

/* No API we read nests anywhere near this deep. */
#define JSON_ITEMS_MAX_DEPTH 64

/* The longest number token kept (numeric takes 1000 digits; see JsonNumberInRange). */
#define JSON_ITEMS_MAX_NUMBER 1100

typedef struct JsonScanner
{
	const char *p;
	const char *end;
	const char *refusal;		/* why the body is refused; NULL while it is fine */
	int			depth;
	bool		convert;		/* the database's encoding is not UTF-8 */
	bool		untranslatable; /* a kept string of the current item lacked a character */
} JsonScanner;

/*
 * Which members of an object are kept: those named in names, after
 * prefix (the path to the object: "" at an item, "image." in an item's
 * image).  A name kept whole ("region"), or only some of its members
 * ("region.slug": the region object with its slug alone).
 */
typedef struct JsonWanted
{
	const char *const *names;	/* NULL-terminated */
	const char *prefix;			/* the first prefix_len bytes of a name */
	int			prefix_len;
} JsonWanted;

typedef enum JsonKeep
{
	JSON_SKIP,					/* not kept */
	JSON_KEEP_WHOLE,			/* kept with all it holds */
	JSON_KEEP_SOME				/* an object kept with some of its members */
} JsonKeep;

static bool JsonScanValue(JsonScanner *s, JsonbValue *out, const JsonWanted *wanted);

static bool
JsonScanRefuse(JsonScanner *s, const char *why)
{
	if (s->refusal == NULL)
		s->refusal = why;
	return false;
}

static inline void
JsonScanSpace(JsonScanner *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

static int
JsonScanHex4(const char *p)
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

/* The text of a kept string, UTF-8 in, the database's encoding out. */
static char *
JsonScanText(JsonScanner *s, char *utf8, size_t len)
{
	char	   *text;

	if (!s->convert)
		return utf8;
	text = ProviderUtf8ToServer(utf8, len, false);
	if (text != NULL)
		return text;
	s->untranslatable = true;
	return ProviderUtf8ToServer(utf8, len, true);
}

/*
 * How many bytes at p, up to eight, need no look in a string: the bytes
 * before the first quote, backslash or control character.  One 64-bit
 * word at a time, with the has-zero-byte and has-less-than tests of
 * Hacker's Delight: in each test the lowest-order byte flagged is exactly
 * the first (in memory, on a little-endian machine) that matches, since a
 * borrow only runs upwards, so the lowest of the three is the first
 * special byte.
 */
static inline int
JsonPlainBytes(const char *p)
{
	const uint64 ones = UINT64CONST(0x0101010101010101);
	const uint64 highs = UINT64CONST(0x8080808080808080);
	uint64		w;
	uint64		quote;
	uint64		backslash;
	uint64		special;

	memcpy(&w, p, sizeof(w));
	quote = w ^ (ones * '"');
	backslash = w ^ (ones * '\\');
	special = (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) |
			   ((w - ones * 0x20) & ~w)) & highs;
	if (special == 0)
		return 8;
#ifdef WORDS_BIGENDIAN
	/* the lowest byte flagged is the last in memory: look byte by byte */
	for (int i = 0; i < 8; i++)
	{
		if (p[i] == '"' || p[i] == '\\' || (unsigned char) p[i] < 0x20)
			return i;
	}
	return 8;
#else
	return pg_rightmost_one_pos64(special) / 8;
#endif
}

/*
 * A string (s->p at its opening quote).  Kept (out not NULL): its
 * de-escaped text.  Control characters must be escaped; escapes are those
 * of RFC 8259, surrogate pairs combined, \u0000 refused.
 */
static bool
JsonScanString(JsonScanner *s, JsonbValue *out)
{
	const char *start = ++s->p;
	const char *q = start;
	bool		escaped = false;
	char	   *text;
	char	   *o;

	/* find the end: a quote not escaped (plain runs eight bytes at a time) */
	for (;;)
	{
		while (s->end - q >= 8)
		{
			int			plain = JsonPlainBytes(q);

			q += plain;
			if (plain < 8)
				break;
		}
		if (q >= s->end || *q == '"')
			break;
		if ((unsigned char) *q < 0x20)
			return JsonScanRefuse(s, "a control character in a string");
		if (*q == '\\')
		{
			escaped = true;
			if (++q >= s->end)
				break;
		}
		q++;
	}
	if (q >= s->end)
		return JsonScanRefuse(s, "a string is not closed");
	s->p = q + 1;

	if (!escaped)
	{
		if (out != NULL)
		{
			size_t		len = q - start;

			text = s->convert ? JsonScanText(s, pnstrdup(start, len), len) : (char *) start;
			out->type = jbvString;
			out->val.string.val = text;
			out->val.string.len = (int) (s->convert ? strlen(text) : len);
		}
		return true;
	}

	/* escapes: checked always, written only when kept */
	o = text = out ? palloc(q - start + 1) : NULL;
	for (const char *c = start; c < q; c++)
	{
		int			cp;
		unsigned char utf8[4];

		if (*c != '\\')
		{
			if (o)
				*o++ = *c;
			continue;
		}
		c++;
		switch (*c)
		{
			case '"':
			case '\\':
			case '/':
				if (o)
					*o++ = *c;
				continue;
			case 'b':
				if (o)
					*o++ = '\b';
				continue;
			case 'f':
				if (o)
					*o++ = '\f';
				continue;
			case 'n':
				if (o)
					*o++ = '\n';
				continue;
			case 'r':
				if (o)
					*o++ = '\r';
				continue;
			case 't':
				if (o)
					*o++ = '\t';
				continue;
			case 'u':
				break;
			default:
				return JsonScanRefuse(s, "an invalid escape in a string");
		}
		if (q - c < 5 || (cp = JsonScanHex4(c + 1)) < 0)
			return JsonScanRefuse(s, "an invalid \\u escape in a string");
		c += 4;
		if (cp >= 0xDC00 && cp <= 0xDFFF)
			return JsonScanRefuse(s, "a lone low surrogate in a string");
		if (cp >= 0xD800 && cp <= 0xDBFF)
		{
			int			low = (q - c >= 7 && c[1] == '\\' && c[2] == 'u') ? JsonScanHex4(c + 3) : -1;

			if (low < 0xDC00 || low > 0xDFFF)
				return JsonScanRefuse(s, "a lone high surrogate in a string");
			cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
			c += 6;
		}
		if (cp == 0)
			return JsonScanRefuse(s, "\\u0000 in a string");
		if (o)
		{
			unicode_to_utf8((pg_wchar) cp, utf8);
			memcpy(o, utf8, pg_utf_mblen(utf8));
			o += pg_utf_mblen(utf8);
		}
	}
	if (out != NULL)
	{
		*o = '\0';
		text = JsonScanText(s, text, o - text);
		out->type = jbvString;
		out->val.string.val = text;
		out->val.string.len = strlen(text);
	}
	return true;
}

/*
 * Whether a JSON number token is within what jsonb takes (numeric_in
 * raises beyond): any number this long or with an exponent this large is
 * refused.
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

/* A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
JsonScanNumber(JsonScanner *s, JsonbValue *out)
{
	const char *start = s->p;
	const char *p = s->p;
	char		token[JSON_ITEMS_MAX_NUMBER + 1];
	bool		integral = true;

#define DIGIT(c) ((c) >= '0' && (c) <= '9')
	if (p < s->end && *p == '-')
		p++;
	if (p < s->end && *p == '0')
		p++;
	else if (p < s->end && DIGIT(*p))
		while (p < s->end && DIGIT(*p))
			p++;
	else
		return JsonScanRefuse(s, "an invalid number");
	if (p < s->end && *p == '.')
	{
		integral = false;
		if (++p >= s->end || !DIGIT(*p))
			return JsonScanRefuse(s, "an invalid number");
		while (p < s->end && DIGIT(*p))
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E'))
	{
		integral = false;
		p++;
		if (p < s->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= s->end || !DIGIT(*p))
			return JsonScanRefuse(s, "an invalid number");
		while (p < s->end && DIGIT(*p))
			p++;
	}
#undef DIGIT
	s->p = p;
	/* an integer of up to 18 digits (ids, sizes, counts): in range, and an int64 */
	if (integral && p - start <= 18)
	{
		if (out != NULL)
		{
			int64		v = 0;
			bool		negative = *start == '-';

			for (const char *d = start + (negative ? 1 : 0); d < p; d++)
				v = v * 10 + (*d - '0');
			out->type = jbvNumeric;
			out->val.numeric = int64_to_numeric(negative ? -v : v);
		}
		return true;
	}
	if (p - start > JSON_ITEMS_MAX_NUMBER)
		return JsonScanRefuse(s, "a number out of range");
	memcpy(token, start, p - start);
	token[p - start] = '\0';
	if (!JsonNumberInRange(token))
		return JsonScanRefuse(s, "a number out of range");
	if (out != NULL)
	{
		out->type = jbvNumeric;
		out->val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(token),
															   ObjectIdGetDatum(InvalidOid),
															   Int32GetDatum(-1)));
	}
	return true;
}

static bool
JsonScanLiteral(JsonScanner *s, const char *word, JsonbValue *out, enum jbvType type, bool value)
{
	size_t		len = strlen(word);

	if ((size_t) (s->end - s->p) < len || memcmp(s->p, word, len) != 0)
		return JsonScanRefuse(s, "an invalid token");
	s->p += len;
	if (out != NULL)
	{
		out->type = type;
		out->val.boolean = value;
	}
	return true;
}

/* Whether the member called name (len bytes, raw) is kept; *nested: which of its members. */
static JsonKeep
JsonScanWanted(const JsonWanted *wanted, const char *name, int len, JsonWanted *nested)
{
	JsonKeep	keep = JSON_SKIP;

	if (wanted == NULL)
		return JSON_KEEP_WHOLE;
	for (const char *const *n = wanted->names; *n != NULL; n++)
	{
		const char *rest;

		/*
		 * a name not under the prefix may be shorter than it: nothing past
		 * it is read (at the top, the prefix is empty: every name is under it)
		 */
		if (wanted->prefix_len > 0 &&
			((*n)[0] != wanted->prefix[0] || strncmp(*n, wanted->prefix, wanted->prefix_len) != 0))
			continue;
		rest = *n + wanted->prefix_len;
		if (rest[0] != name[0] || strncmp(rest, name, len) != 0)
			continue;
		if (rest[len] == '\0')
			return JSON_KEEP_WHOLE;
		if (rest[len] == '.')
		{
			keep = JSON_KEEP_SOME;
			nested->names = wanted->names;
			nested->prefix = *n;
			nested->prefix_len = wanted->prefix_len + len + 1;
		}
	}
	return keep;
}

/*
 * An object.  Kept: the members wanted names (all if NULL).  Keys are raw
 * here: a key that needs unescaping or converting is looked up as
 * written, and kept as read.
 */
static bool
JsonScanObject(JsonScanner *s, JsonbValue *out, const JsonWanted *wanted)
{
	JsonbPair  *pairs = NULL;
	int			npairs = 0,
				size = 0;

	s->p++;						/* '{' */
	JsonScanSpace(s);
	if (s->p < s->end && *s->p == '}')
		s->p++;
	else
	{
		for (;;)
		{
			JsonbValue	key;
			JsonKeep	keep = JSON_SKIP;
			JsonWanted	nested;
			const char *raw;

			JsonScanSpace(s);
			if (s->p >= s->end || *s->p != '"')
				return JsonScanRefuse(s, "an object key is not a string");
			raw = s->p + 1;
			if (!JsonScanString(s, NULL))
				return false;
			if (out != NULL)
				keep = JsonScanWanted(wanted, raw, s->p - 1 - raw, &nested);
			if (keep != JSON_SKIP)
			{
				/* read again, kept: it is short */
				s->p = raw - 1;
				(void) JsonScanString(s, &key);
			}
			JsonScanSpace(s);
			if (s->p >= s->end || *s->p != ':')
				return JsonScanRefuse(s, "a colon is missing in an object");
			s->p++;
			JsonScanSpace(s);
			if (keep != JSON_SKIP)
			{
				if (npairs == size)
				{
					size = Max(8, size * 2);
					pairs = pairs ? repalloc(pairs, sizeof(JsonbPair) * size) : palloc(sizeof(JsonbPair) * size);
				}
				pairs[npairs].key = key;
				pairs[npairs].order = npairs;
				if (!JsonScanValue(s, &pairs[npairs].value, keep == JSON_KEEP_SOME ? &nested : NULL))
					return false;
				npairs++;
			}
			else if (!JsonScanValue(s, NULL, NULL))
				return false;
			JsonScanSpace(s);
			if (s->p < s->end && *s->p == ',')
			{
				s->p++;
				continue;
			}
			if (s->p < s->end && *s->p == '}')
			{
				s->p++;
				break;
			}
			return JsonScanRefuse(s, "an object is not closed");
		}
	}
	if (out != NULL)
	{
		out->type = jbvObject;
		out->val.object.pairs = pairs;
		out->val.object.nPairs = npairs;
	}
	return true;
}

/*
 * An array.  wanted, if not NULL, applies to each element that is an
 * object ("node_pools.name" keeps each node pool with its name alone).
 */
static bool
JsonScanArray(JsonScanner *s, JsonbValue *out, const JsonWanted *wanted)
{
	JsonbValue *elems = NULL;
	int			nelems = 0,
				size = 0;

	s->p++;						/* '[' */
	JsonScanSpace(s);
	if (s->p < s->end && *s->p == ']')
		s->p++;
	else
	{
		for (;;)
		{
			JsonScanSpace(s);
			if (out != NULL && nelems == size)
			{
				size = Max(8, size * 2);
				elems = elems ? repalloc(elems, sizeof(JsonbValue) * size) : palloc(sizeof(JsonbValue) * size);
			}
			if (!JsonScanValue(s, out ? &elems[nelems] : NULL, wanted))
				return false;
			nelems++;
			JsonScanSpace(s);
			if (s->p < s->end && *s->p == ',')
			{
				s->p++;
				continue;
			}
			if (s->p < s->end && *s->p == ']')
			{
				s->p++;
				break;
			}
			return JsonScanRefuse(s, "an array is not closed");
		}
	}
	if (out != NULL)
	{
		out->type = jbvArray;
		out->val.array.elems = elems;
		out->val.array.nElems = nelems;
		out->val.array.rawScalar = false;
	}
	return true;
}

/* Any value at s->p (space skipped); out NULL to only check it. */
static bool
JsonScanValue(JsonScanner *s, JsonbValue *out, const JsonWanted *wanted)
{
	bool		ok;

	if (s->p >= s->end)
		return JsonScanRefuse(s, "the body ends in the middle");
	switch (*s->p)
	{
		case '{':
		case '[':
			if (++s->depth > JSON_ITEMS_MAX_DEPTH)
				return JsonScanRefuse(s, "the body is nested too deeply");
			ok = *s->p == '{' ? JsonScanObject(s, out, wanted) : JsonScanArray(s, out, wanted);
			s->depth--;
			return ok;
		case '"':
			return JsonScanString(s, out);
		case 't':
			return JsonScanLiteral(s, "true", out, jbvBool, true);
		case 'f':
			return JsonScanLiteral(s, "false", out, jbvBool, false);
		case 'n':
			return JsonScanLiteral(s, "null", out, jbvNull, false);
		default:
			return JsonScanNumber(s, out);
	}
}

/* The items array: each element, objects with only the item's members. */
static bool
JsonScanItems(JsonScanner *s, const JsonItemsSpec *spec, JsonItemsPage *out)
{
	int			size = 0;

	if (*s->p != '[')
	{
		/* not an array: no items (null says so, for an API that does) */
		out->items_null = *s->p == 'n';
		return JsonScanValue(s, NULL, NULL);
	}
	out->has_items = true;
	s->depth++;
	s->p++;
	JsonScanSpace(s);
	if (s->p < s->end && *s->p == ']')
	{
		s->p++;
		s->depth--;
		return true;
	}
	for (;;)
	{
		JsonbValue *item = palloc(sizeof(JsonbValue));
		int			n = list_length(out->items);

		CHECK_FOR_INTERRUPTS();
		JsonScanSpace(s);
		if (n >= spec->max_items)
			return JsonScanRefuse(s, "too many items");
		s->untranslatable = false;
		if (s->p < s->end && *s->p == '{')
		{
			JsonWanted	wanted = {spec->item_members, "", 0};

			s->depth++;
			if (!JsonScanObject(s, item, spec->item_members ? &wanted : NULL))
				return false;
			s->depth--;
		}
		else if (!JsonScanValue(s, item, NULL))
			return false;
		if (n == size)
		{
			size = Max(64, size * 2);
			out->untranslatable = out->untranslatable
				? repalloc(out->untranslatable, sizeof(bool) * size) : palloc(sizeof(bool) * size);
		}
		out->untranslatable[n] = s->untranslatable;
		out->items = lappend(out->items, item);
		JsonScanSpace(s);
		if (s->p < s->end && *s->p == ',')
		{
			s->p++;
			continue;
		}
		if (s->p < s->end && *s->p == ']')
		{
			s->p++;
			s->depth--;
			return true;
		}
		return JsonScanRefuse(s, "an array is not closed");
	}
}

/* The page: an object with the items member and the kept page members. */
static bool
JsonScanPage(JsonScanner *s, const JsonItemsSpec *spec, JsonItemsPage *out)
{
	JsonbPair  *pairs = NULL;
	int			npairs = 0,
				size = 0;
	JsonWanted	page_wanted = {spec->page_members, "", 0};
	JsonWanted	nested;

	JsonScanSpace(s);
	if (s->p >= s->end)
		return JsonScanRefuse(s, "the body is empty");
	if (*s->p != '{')
		return JsonScanValue(s, NULL, NULL);	/* JSON, but not a page */
	s->depth = 1;
	s->p++;
	JsonScanSpace(s);
	if (s->p < s->end && *s->p == '}')
		s->p++;
	else
	{
		for (;;)
		{
			JsonbValue	key;
			const char *raw;
			int			rawlen;

			JsonScanSpace(s);
			if (s->p >= s->end || *s->p != '"')
				return JsonScanRefuse(s, "an object key is not a string");
			raw = s->p + 1;
			if (!JsonScanString(s, &key))
				return false;
			rawlen = s->p - 1 - raw;
			JsonScanSpace(s);
			if (s->p >= s->end || *s->p != ':')
				return JsonScanRefuse(s, "a colon is missing in an object");
			s->p++;
			JsonScanSpace(s);
			if (s->p >= s->end)
				return JsonScanRefuse(s, "the body ends in the middle");
			if (spec->items_key != NULL && strncmp(spec->items_key, raw, rawlen) == 0 &&
				spec->items_key[rawlen] == '\0')
			{
				if (!JsonScanItems(s, spec, out))
					return false;
			}
			else if (spec->page_members != NULL && JsonScanWanted(&page_wanted, raw, rawlen, &nested) == JSON_KEEP_WHOLE)
			{
				if (npairs == size)
				{
					size = Max(4, size * 2);
					pairs = pairs ? repalloc(pairs, sizeof(JsonbPair) * size) : palloc(sizeof(JsonbPair) * size);
				}
				pairs[npairs].key = key;
				pairs[npairs].order = npairs;
				if (!JsonScanValue(s, &pairs[npairs].value, NULL))
					return false;
				npairs++;
			}
			else if (!JsonScanValue(s, NULL, NULL))
				return false;
			JsonScanSpace(s);
			if (s->p < s->end && *s->p == ',')
			{
				s->p++;
				continue;
			}
			if (s->p < s->end && *s->p == '}')
			{
				s->p++;
				break;
			}
			return JsonScanRefuse(s, "an object is not closed");
		}
	}
	out->page->val.object.pairs = pairs;
	out->page->val.object.nPairs = npairs;
	return true;
}

bool
JsonItemsRead(const char *body, size_t len, const JsonItemsSpec *spec, const char *what,
			  JsonItemsPage *out, char **error)
{
	JsonScanner s;
	int			encoding = GetDatabaseEncoding();

	memset(out, 0, sizeof(*out));
	out->page = palloc0(sizeof(JsonbValue));
	out->page->type = jbvObject;
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

	memset(&s, 0, sizeof(s));
	s.p = body;
	s.end = body + len;
	s.convert = encoding != PG_UTF8 && encoding != PG_SQL_ASCII;
	if (JsonScanPage(&s, spec, out))
	{
		JsonScanSpace(&s);
		if (s.p < s.end)
			JsonScanRefuse(&s, "more follows the value");
	}
	if (s.refusal != NULL)
	{
		if (strcmp(s.refusal, "too many items") == 0)
			*error = psprintf("%s lists more than %d items", what, spec->max_items);
		else
			*error = psprintf("malformed JSON in %s", what);
		ereport(DEBUG1,
				(errmsg_internal("cloudconn: %s refused: %s at byte %ld", what, s.refusal,
								 (long) (s.p - body))));
		return false;
	}
	return true;
}

JsonbValue *
JsonItemGet(const JsonbValue *object, const char *key)
{
	size_t		keylen = strlen(key);

	if (object == NULL || object->type != jbvObject)
		return NULL;
	/* the last of equal keys, as jsonb keeps it */
	for (int i = object->val.object.nPairs - 1; i >= 0; i--)
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
