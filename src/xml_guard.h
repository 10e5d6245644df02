/*
 * xml_guard.h
 *		A check on untrusted XML before libxml2 parses it (xml_guard.c).
 */
#ifndef CLOUDCONN_XML_GUARD_H
#define CLOUDCONN_XML_GUARD_H

/* No tag of the AWS Query APIs' answers is anywhere near this long. */
#define XML_GUARD_MAX_MARKUP 4096

/*
 * Why text is refused before it is parsed (a tag of more than
 * XML_GUARD_MAX_MARKUP bytes or of too many attributes, a DTD), or NULL if
 * libxml2 may parse it.
 */
extern const char *XmlMarkupRefusal(const char *text, size_t len);

#endif							/* CLOUDCONN_XML_GUARD_H */
