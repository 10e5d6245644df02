/*
 * xml_items.h
 *		Reading an XML page of a provider's API (AWS's Query and REST-XML
 *		answers) into its items, keeping only what the mappings need
 *		(xml_items.c).
 */
#ifndef CLOUDCONN_XML_ITEMS_H
#define CLOUDCONN_XML_ITEMS_H

#include "nodes/pg_list.h"

/* An element kept from a page: its children, or its text if it has none. */
typedef struct XmlNode
{
	const char *name;			/* local name (namespaces are ignored) */
	char	   *text;			/* its text in the database's encoding; "" if none */
	struct XmlNode *children;	/* first child element */
	struct XmlNode *last_child;
	struct XmlNode *next;		/* next sibling */
	int			nchildren;
} XmlNode;

typedef struct XmlItemsSpec
{
	const char *root;			/* local name of the root element */
	const char *const *item_path;	/* element names from a child of the root down to an
									 * item, NULL-terminated */
	const char *const *item_members;	/* children of an item kept (NULL-terminated); NULL: all */
	const char *const *page_members;	/* children of the root kept, or NULL */
	int			page_depth;		/* 1: page_members are children of item_path[0]
								 * instead (RDS wraps its answer in a
								 * <ActionResult>) */
	int			max_items;		/* a page with more items is refused */
	int			max_children;	/* ... and one with a kept element with more children */
	const char *too_many;		/* what the refusal says */
} XmlItemsSpec;

typedef struct XmlItemsPage
{
	List	   *items;			/* of XmlNode *: each item element */
	bool	   *untranslatable; /* per item: it has text the database's encoding lacks */
	XmlNode    *page;			/* a node whose children are the kept children of the root */
	bool		has_list;		/* the root has the first element of item_path */
} XmlItemsPage;

/*
 * Read a body with libxml2's SAX2 interface, fed in slices (no document
 * tree of the page is built, and libxml2 holds one slice of input at a
 * time).  between_slices, if not NULL, is called after each slice (the
 * caller lets other transfers move on there) and may raise.  Returns false
 * with *error (a constant message) for a body that is not a well-formed
 * document with the spec's root, that has a DTD, a value over 8 kB, more
 * items or children than the bounds, or markup longer than
 * XML_GUARD_MAX_MARKUP; raises on out of memory.  Kept text is converted
 * to the database's encoding; a character it lacks becomes '?' and flags
 * its item.  Nodes live in the current memory context.
 */
extern bool XmlItemsRead(const char *body, size_t len, const XmlItemsSpec *spec,
						 void (*between_slices) (void *arg), void *between_slices_arg,
						 XmlItemsPage *out, const char **error);

/* The first child element named name, or NULL. */
extern XmlNode *XmlNodeChild(const XmlNode *node, const char *name);

/* The text of the first child named name, or NULL if there is none. */
extern const char *XmlNodeChildText(const XmlNode *node, const char *name);

/* Same, but NULL for an empty text too (AWS leaves empty what it has not). */
extern const char *XmlNodeChildValue(const XmlNode *node, const char *name);

#endif							/* CLOUDCONN_XML_ITEMS_H */
