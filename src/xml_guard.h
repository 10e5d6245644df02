/*
 * xml_guard.h
 *		A check on untrusted XML before libxml2 parses it (xml_guard.c).
 */
#ifndef CLOUDCONN_XML_GUARD_H
#define CLOUDCONN_XML_GUARD_H

/* No tag of the AWS Query APIs' answers is anywhere near this long. */
#define XML_GUARD_MAX_MARKUP 4096

/*
 * Whether every markup span of text (from a '<' to the next '>') is at most
 * max_markup bytes long.  A cut-off last span is left for the parser to
 * refuse.
 */
extern bool XmlMarkupIsBounded(const char *text, size_t len, size_t max_markup);

#endif							/* CLOUDCONN_XML_GUARD_H */
