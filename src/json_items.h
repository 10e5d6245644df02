/*
 * json_items.h
 *		Reading a JSON page of a provider's API into its items, keeping only
 *		what the mappings need (json_items.c).
 */
#ifndef CLOUDCONN_JSON_ITEMS_H
#define CLOUDCONN_JSON_ITEMS_H

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

typedef struct JsonItemsSpec
{
	const char *items_key;		/* top-level member holding the array of items, or NULL */
	/*
	 * Members kept of each item (NULL-terminated; NULL: all): "image" keeps
	 * the item's image with all it holds, "image.name" only the name of
	 * the image object (any depth); through an array, the name applies to
	 * each of its objects ("node_pools.name": each node pool's name).
	 */
	const char *const *item_members;
	const char *const *page_members;	/* other top-level members kept (NULL-terminated), or NULL */
	int			max_items;		/* a page with more items is refused */
} JsonItemsSpec;

typedef struct JsonItemsPage
{
	List	   *items;			/* of JsonbValue *: each element of the items array */
	bool	   *untranslatable; /* per item: it has text the database's encoding lacks */
	bool		has_items;		/* the items member is there and is an array */
	bool		items_null;		/* the items member is there and is null */
	JsonbValue *page;			/* a jbvObject of the kept top-level members */
} JsonItemsPage;

/*
 * Read a body (UTF-8 JSON, as every provider sends it) in one pass with a
 * validating scanner (RFC 8259: the whole body is checked, kept or not):
 * no jsonb of the whole page is built.  Every item and kept member becomes an in-memory
 * JsonbValue tree (objects and arrays as jbvObject/jbvArray, strings in
 * the database's encoding), allocated in the current memory context.  A
 * string the database's encoding cannot hold becomes '?' marks and flags
 * its item (the engine makes that item a per-resource error).  Returns
 * false with *error, a message naming what, for a body that cannot be
 * read: not UTF-8, not JSON, nested too deeply, a number out of jsonb's
 * range, more items than the spec allows.
 */
extern bool JsonItemsRead(const char *body, size_t len, const JsonItemsSpec *spec,
						  const char *what, JsonItemsPage *out, char **error);

/* Whether a JSON number token is within what jsonb takes (numeric_in raises beyond). */
extern bool JsonNumberInRange(const char *token);

/* A member of an in-memory object (jbvObject), or NULL. */
extern JsonbValue *JsonItemGet(const JsonbValue *object, const char *key);

/* A member's string (in the database's encoding), or NULL if absent or not a string. */
extern char *JsonItemString(const JsonbValue *object, const char *key);

/* Push an in-memory value (any type, trees included) as a value or element. */
extern void JsonItemPush(JsonbParseState **state, JsonbIteratorToken seq, const JsonbValue *value);

/* Push "key": value into an object being built; nothing when value is NULL. */
extern void JsonItemPushMember(JsonbParseState **state, const char *key, const JsonbValue *value);

/* Push "key": "text"; nothing when text is NULL. */
extern void JsonItemPushString(JsonbParseState **state, const char *key, const char *text);

#endif							/* CLOUDCONN_JSON_ITEMS_H */
