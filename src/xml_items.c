/*
 * xml_items.c
 *		Reading an XML page into its items with libxml2's SAX2 interface:
 *		the elements on the path from the root to the items are followed,
 *		each item becomes a small tree of the children its mapping reads
 *		(XmlNode), and everything else is skipped without being built.  A
 *		page of 1000 EC2 instances is about 8 MB of XML; a document tree of
 *		it cost more time than everything else in a run, and tens of
 *		megabytes, for the twenty-odd values per instance kept.
 *
 * The callbacks (libxml2's SAX1 interface) run inside libxml2, so they never ereport and never
 * allocate in a way that can ERROR: nodes and text are allocated with
 * MCXT_ALLOC_NO_OOM and CallbackBufferAppend, failures set flags, and the
 * page is judged once the parser has returned.  Nothing is fetched
 * (XML_PARSE_NONET), a DTD stops the parse (AWS never sends one; here it
 * could only declare entities), and entities other than XML's predefined
 * five are errors.  Text is converted to the database's encoding after
 * the parse, outside libxml2.
 */
#include "postgres.h"

#include <libxml/parser.h>
#include <libxml/parserInternals.h>

#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "callback_buffer.h"
#include "provider.h"
#include "wipe.h"
#include "xml_guard.h"
#include "xml_items.h"

/* The longest text of one element kept (ids, names, tags are far shorter). */
#define XML_ITEMS_TEXT_MAX (8 * 1024)

/* The body is handed to the parser this much at a time. */
#define XML_ITEMS_SLICE ((size_t) 256 * 1024)

/* Elements are followed this deep; deeper ones are only counted. */
#define XML_ITEMS_MAX_DEPTH 32

typedef struct XmlItemsReader
{
	xmlParserCtxtPtr parser;
	const XmlItemsSpec *spec;
	MemoryContext cxt;
	int			path_length;	/* elements in spec->item_path */

	int			depth;			/* of the element being read; the root is 1 */
	bool		on_path[XML_ITEMS_MAX_DEPTH + 1];	/* the element at this depth leads to items */
	XmlNode    *nodes[XML_ITEMS_MAX_DEPTH + 1]; /* kept element at this depth, or NULL */
	int			skip_depth;		/* > 0: inside an element not kept, opened at this depth */
	int			item_depth;		/* depth of the item being built, 0 if none */

	StringInfoData text;		/* text of the kept element opened last */
	int			text_depth;		/* its depth, 0 if none */

	XmlItemsPage *out;
	XmlNode   **items;			/* the items read so far, in document order */
	int			nitems;
	int			items_size;

	bool		root_ok;
	bool		dtd;
	bool		too_large;
	bool		too_many;
	bool		oom;
} XmlItemsReader;

/* Stop the parse: the page is refused, whatever follows. */
static void
XmlItemsStop(XmlItemsReader *r)
{
	xmlStopParser(r->parser);
}

static void *
XmlItemsAlloc(XmlItemsReader *r, size_t size)
{
	void	   *p = MemoryContextAllocExtended(r->cxt, size, MCXT_ALLOC_NO_OOM | MCXT_ALLOC_ZERO);

	if (p == NULL)
	{
		r->oom = true;
		XmlItemsStop(r);
	}
	return p;
}

/* The spec's own copy of a name in names, if it is there. */
static const char *
XmlItemsFind(const char *const *names, const char *name)
{
	if (names == NULL)
		return NULL;
	for (; *names != NULL; names++)
	{
		if ((*names)[0] == name[0] && strcmp(*names, name) == 0)
			return *names;
	}
	return NULL;
}

/* A kept element: a child of parent (or the root of an item when NULL). */
static XmlNode *
XmlItemsNewNode(XmlItemsReader *r, XmlNode *parent, const char *name, const char *known)
{
	XmlNode    *node;
	size_t		len;

	if (parent != NULL && parent->nchildren >= r->spec->max_children)
	{
		r->too_many = true;
		XmlItemsStop(r);
		return NULL;
	}
	if ((node = XmlItemsAlloc(r, sizeof(XmlNode))) == NULL)
		return NULL;
	if (known != NULL)
		node->name = known;
	else
	{
		char	   *copy;

		len = strlen(name);
		if ((copy = XmlItemsAlloc(r, len + 1)) == NULL)
			return NULL;
		memcpy(copy, name, len + 1);
		node->name = copy;
	}
	node->text = "";
	if (parent != NULL)
	{
		if (parent->last_child != NULL)
			parent->last_child->next = node;
		else
			parent->children = node;
		parent->last_child = node;
		parent->nchildren++;
	}
	resetStringInfo(&r->text);
	r->text_depth = r->depth;
	return node;
}

/* The local part of a qualified name (namespaces are ignored). */
static const char *
XmlItemsLocalName(const xmlChar *qname)
{
	const char *colon = strchr((const char *) qname, ':');

	return colon ? colon + 1 : (const char *) qname;
}

static void
XmlItemsStartElement(void *ctx, const xmlChar *qname, const xmlChar **attributes)
{
	XmlItemsReader *r = (XmlItemsReader *) ctx;
	const char *name = XmlItemsLocalName(qname);
	int			d = ++r->depth;
	XmlNode    *parent;

	if (r->skip_depth > 0 || d > XML_ITEMS_MAX_DEPTH)
		return;
	r->on_path[d] = false;
	r->nodes[d] = NULL;
	parent = r->nodes[d - 1];

	if (d == 1)
	{
		r->on_path[1] = r->root_ok = strcmp(name, r->spec->root) == 0;
		return;
	}
	if (parent != NULL)
	{
		/* inside an item or a kept child of the root */
		const char *known = NULL;

		if (d == r->item_depth + 1 && r->item_depth > 0 &&
			(known = XmlItemsFind(r->spec->item_members, name)) == NULL &&
			r->spec->item_members != NULL)
		{
			r->skip_depth = d;	/* a child no mapping reads */
			return;
		}
		r->nodes[d] = XmlItemsNewNode(r, parent, name, known);
		return;
	}
	if (!r->on_path[d - 1])
		return;
	if (d == 2 + r->spec->page_depth && r->spec->page_members != NULL)
	{
		const char *known = XmlItemsFind(r->spec->page_members, name);

		if (known != NULL)
		{
			r->nodes[d] = XmlItemsNewNode(r, r->out->page, name, known);
			return;
		}
	}
	if (d - 2 < r->path_length && strcmp(name, r->spec->item_path[d - 2]) == 0)
	{
		r->on_path[d] = true;
		if (d == 2)
			r->out->has_list = true;
		if (d - 2 == r->path_length - 1)
		{
			/* an item */
			if (r->nitems >= r->spec->max_items)
			{
				r->too_many = true;
				XmlItemsStop(r);
				return;
			}
			r->nodes[d] = XmlItemsNewNode(r, NULL, name, r->spec->item_path[d - 2]);
			r->item_depth = d;
		}
	}
}

static void
XmlItemsEndElement(void *ctx, const xmlChar *qname)
{
	XmlItemsReader *r = (XmlItemsReader *) ctx;
	int			d = r->depth--;
	XmlNode    *node;

	if (r->skip_depth > 0)
	{
		if (r->skip_depth == d)
			r->skip_depth = 0;
		return;
	}
	if (d > XML_ITEMS_MAX_DEPTH || (node = r->nodes[d]) == NULL)
		return;
	if (r->text_depth == d)
	{
		/* a leaf: its text is kept */
		char	   *text = XmlItemsAlloc(r, r->text.len + 1);

		if (text != NULL)
		{
			memcpy(text, r->text.data, r->text.len + 1);
			node->text = text;
		}
		r->text_depth = 0;
	}
	if (d == r->item_depth)
	{
		r->item_depth = 0;
		if (r->nitems == r->items_size)
		{
			/* a List could raise on out of memory: an array of our own */
			int			size = Max(64, r->items_size * 2);
			XmlNode   **items = XmlItemsAlloc(r, sizeof(XmlNode *) * size);

			if (items == NULL)
				return;
			if (r->nitems > 0)
				memcpy(items, r->items, sizeof(XmlNode *) * r->nitems);
			r->items = items;
			r->items_size = size;
		}
		r->items[r->nitems++] = node;
	}
	r->nodes[d] = NULL;
}

static void
XmlItemsCharacters(void *ctx, const xmlChar *ch, int len)
{
	XmlItemsReader *r = (XmlItemsReader *) ctx;

	/* text of the kept element itself, not of elements inside it */
	if (r->skip_depth > 0 || r->text_depth != r->depth || r->text_depth == 0)
		return;
	if (!CallbackBufferAppend(&r->text, (const char *) ch, (size_t) len, XML_ITEMS_TEXT_MAX, &r->oom))
	{
		r->too_large = !r->oom;
		XmlItemsStop(r);
	}
}

static void
XmlItemsDtd(void *ctx, const xmlChar *name, const xmlChar *ExternalID, const xmlChar *SystemID)
{
	XmlItemsReader *r = (XmlItemsReader *) ctx;

	r->dtd = true;
	XmlItemsStop(r);
}

/* libxml2's own messages are dropped: the outcome is judged by its flags. */
static void
XmlItemsIgnoreMessage(void *ctx, const char *msg,...)
{
}

/*
 * Convert a node tree's text and names to the database's encoding;
 * returns whether all of it could be.
 */
static bool
XmlItemsConvert(XmlNode *node)
{
	bool		ok = true;

	for (; node != NULL; node = node->next)
	{
		char	   *text = ProviderUtf8ToServer(node->text, strlen(node->text), false);

		if (text == NULL)
		{
			ok = false;
			text = ProviderUtf8ToServer(node->text, strlen(node->text), true);
		}
		node->text = text;
		if ((text = ProviderUtf8ToServer(node->name, strlen(node->name), false)) == NULL)
		{
			ok = false;
			text = ProviderUtf8ToServer(node->name, strlen(node->name), true);
		}
		node->name = text;
		if (!XmlItemsConvert(node->children))
			ok = false;
	}
	return ok;
}

/* Hand the items over, with their encoding flags. */
static void
XmlItemsFinish(XmlItemsReader *r, XmlItemsPage *out)
{
	int			encoding = GetDatabaseEncoding();
	bool		convert = encoding != PG_UTF8 && encoding != PG_SQL_ASCII;

	out->untranslatable = palloc0(sizeof(bool) * Max(r->nitems, 1));
	for (int i = 0; i < r->nitems; i++)
	{
		out->items = lappend(out->items, r->items[i]);
		if (convert)
			out->untranslatable[i] = !XmlItemsConvert(r->items[i]);
	}
	if (convert)
		(void) XmlItemsConvert(out->page->children);
}

bool
XmlItemsRead(const char *body, size_t len, const XmlItemsSpec *spec,
			 void (*between_slices) (void *arg), void *between_slices_arg,
			 XmlItemsPage *out, const char **error)
{
	XmlItemsReader r;
	xmlSAXHandler sax;
	bool		well_formed;

	memset(out, 0, sizeof(*out));
	*error = NULL;
	if (len == 0 || len > INT_MAX)
	{
		*error = "the response is not well-formed XML";
		return false;
	}
	if ((*error = XmlMarkupRefusal(body, len)) != NULL)
		return false;

	memset(&r, 0, sizeof(r));
	r.spec = spec;
	r.cxt = CurrentMemoryContext;
	r.out = out;
	while (spec->item_path[r.path_length] != NULL)
		r.path_length++;
	initStringInfo(&r.text);
	out->page = palloc0(sizeof(XmlNode));
	out->page->name = spec->root;
	out->page->text = "";

	/*
	 * SAX1 handlers: no namespace processing, a third faster than SAX2's
	 * on these pages; names are matched on their local part.
	 */
	memset(&sax, 0, sizeof(sax));
	sax.startElement = XmlItemsStartElement;
	sax.endElement = XmlItemsEndElement;
	sax.characters = XmlItemsCharacters;
	sax.cdataBlock = XmlItemsCharacters;
	sax.internalSubset = XmlItemsDtd;
	sax.externalSubset = XmlItemsDtd;
	sax.warning = XmlItemsIgnoreMessage;
	sax.error = XmlItemsIgnoreMessage;
	sax.fatalError = XmlItemsIgnoreMessage;

	/*
	 * A push parser, fed the body in slices: it keeps only a slice's worth
	 * of input at a time, where a memory parser would first copy the whole
	 * body.  It holds its own copy of the handler.
	 */
	r.parser = xmlCreatePushParserCtxt(&sax, &r, NULL, 0, NULL);
	if (r.parser == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create an XML parser")));
	xmlCtxtUseOptions(r.parser, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);

	/*
	 * The callbacks never ERROR (they only flag, and the parser's own memory
	 * is libxml2's); between_slices may, and the parser goes with it.
	 */
	PG_TRY();
	{
		for (size_t done = 0; done < len && !r.parser->disableSAX; done += XML_ITEMS_SLICE)
		{
			(void) xmlParseChunk(r.parser, body + done, (int) Min(len - done, XML_ITEMS_SLICE), 0);
			if (between_slices)
				between_slices(between_slices_arg);
		}
		if (!r.parser->disableSAX)
			(void) xmlParseChunk(r.parser, NULL, 0, 1);
	}
	PG_CATCH();
	{
		if (r.parser->myDoc != NULL)
			xmlFreeDoc(r.parser->myDoc);
		xmlFreeParserCtxt(r.parser);
		WipeBuffer(r.text.data, r.text.maxlen);
		PG_RE_THROW();
	}
	PG_END_TRY();
	well_formed = r.parser->wellFormed != 0;
	if (r.parser->myDoc != NULL)
		xmlFreeDoc(r.parser->myDoc);
	xmlFreeParserCtxt(r.parser);
	WipeBuffer(r.text.data, r.text.maxlen);
	pfree(r.text.data);

	if (r.oom)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not read an XML page of %zu bytes.", len)));
	if (r.dtd)
		*error = "the response has a DTD, which AWS never sends";
	else if (r.too_large)
		*error = "a value in the response is too large";
	else if (r.too_many)
		*error = spec->too_many;
	else if (!well_formed)
		*error = "the response is not well-formed XML";
	else if (!r.root_ok || !out->has_list)
		*error = psprintf("the response is not a %s", spec->root);
	if (*error != NULL)
		return false;
	XmlItemsFinish(&r, out);
	return true;
}

XmlNode *
XmlNodeChild(const XmlNode *node, const char *name)
{
	if (node == NULL)
		return NULL;
	for (XmlNode *c = node->children; c != NULL; c = c->next)
	{
		if (strcmp(c->name, name) == 0)
			return c;
	}
	return NULL;
}

const char *
XmlNodeChildText(const XmlNode *node, const char *name)
{
	XmlNode    *c = XmlNodeChild(node, name);

	return c ? c->text : NULL;
}

const char *
XmlNodeChildValue(const XmlNode *node, const char *name)
{
	const char *text = XmlNodeChildText(node, name);

	return text != NULL && text[0] != '\0' ? text : NULL;
}
