/*
 * xml_guard.c
 *		A check on untrusted XML before libxml2 parses it.  libxml2 (2.9)
 *		checks a start tag's attributes for duplicates in time that grows
 *		with the square of their number, inside one call that no callback
 *		interrupts: a single tag of a few megabytes of attributes would hold
 *		a backend for hours, deaf to cancel and shutdown.  The cloud APIs
 *		we read send tags of a few dozen bytes, so a long markup span is
 *		refused before any parsing.
 */
#include "postgres.h"

#include "xml_guard.h"

bool
XmlMarkupIsBounded(const char *text, size_t len, size_t max_markup)
{
	const char *p = text;
	const char *end = text + len;

	while (p < end && (p = memchr(p, '<', end - p)) != NULL)
	{
		size_t		left = end - p;
		const char *close = memchr(p, '>', Min(left, max_markup + 1));

		if (close == NULL)
			return left <= max_markup;
		p = close + 1;
	}
	return true;
}
