/*
 * xml_guard.c
 *		A check on untrusted XML before libxml2 parses it.  libxml2 (2.9)
 *		checks a start tag's attributes for duplicates in time that grows
 *		with the square of their number, inside one call that no callback
 *		interrupts: a single tag of a few megabytes of attributes would hold
 *		a backend for hours, deaf to cancel and shutdown.  Every attribute
 *		has an '=', so a body with few '=' in all (every page AWS sends: the
 *		root's xmlns, and what tag values hold) cannot hurt, and costs one
 *		fast scan.  A body with more is read as the parser will read it
 *		(tags with their quoted values, comments, CDATA sections, processing
 *		instructions; a DTD is refused) and each tag is bounded in length
 *		and in attributes.  A body cut off in the middle is left for the
 *		parser to refuse.
 */
#include "postgres.h"

#include "xml_guard.h"

/* Attributes in all below which no tag can cost much (1024 squared is cheap). */
#define XML_GUARD_FEW_ATTRIBUTES 1024

/* Attributes of one tag (AWS's have at most a namespace declaration or two). */
#define XML_GUARD_MAX_TAG_ATTRIBUTES 64

/* The first occurrence of the NUL-terminated word in [p, end), or NULL. */
static const char *
XmlGuardFind(const char *p, const char *end, const char *word)
{
	size_t		len = strlen(word);

	while (end - p >= (ptrdiff_t) len && (p = memchr(p, word[0], end - p - len + 1)) != NULL)
	{
		if (memcmp(p, word, len) == 0)
			return p;
		p++;
	}
	return NULL;
}

static bool
XmlGuardStartsWith(const char *p, const char *end, const char *word)
{
	size_t		len = strlen(word);

	return end - p >= (ptrdiff_t) len && memcmp(p, word, len) == 0;
}

/* The exact reading: each tag from its '<' to the '>' outside quotes. */
static const char *
XmlGuardScanMarkup(const char *p, const char *end)
{
	while (p < end && (p = memchr(p, '<', end - p)) != NULL)
	{
		const char *terminator = NULL;
		const char *q;
		char		quote = '\0';
		int			attributes = 0;

		if (XmlGuardStartsWith(p, end, "<!--"))
			terminator = "-->";
		else if (XmlGuardStartsWith(p, end, "<![CDATA["))
			terminator = "]]>";
		else if (XmlGuardStartsWith(p, end, "<?"))
			terminator = "?>";
		else if (XmlGuardStartsWith(p, end, "<!"))
			return "the response has a DTD, which AWS never sends";
		if (terminator != NULL)
		{
			/* their text is read straight, in linear time */
			q = XmlGuardFind(p + 2, end, terminator);
			if (q == NULL)
				return NULL;
			p = q + strlen(terminator);
			continue;
		}
		for (q = p + 1; q < end; q++)
		{
			if (q - p > XML_GUARD_MAX_MARKUP)
				return "the response has a tag longer than " CppAsString2(XML_GUARD_MAX_MARKUP) " bytes";
			if (quote != '\0')
			{
				if (*q == quote)
					quote = '\0';
			}
			else if (*q == '"' || *q == '\'')
				quote = *q;
			else if (*q == '=')
				attributes++;
			else if (*q == '>')
				break;
		}
		if (attributes > XML_GUARD_MAX_TAG_ATTRIBUTES)
			return "the response has a tag with more than " CppAsString2(XML_GUARD_MAX_TAG_ATTRIBUTES) " attributes";
		p = q + 1;
	}
	return NULL;
}

const char *
XmlMarkupRefusal(const char *text, size_t len)
{
	const char *p = text;
	const char *end = text + len;
	int			equals = 0;

	while (p < end && (p = memchr(p, '=', end - p)) != NULL)
	{
		if (++equals > XML_GUARD_FEW_ATTRIBUTES)
			return XmlGuardScanMarkup(text, end);
		p++;
	}
	return NULL;
}
