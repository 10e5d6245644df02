/*
 * callback_buffer.h
 *		Appending to a StringInfo from inside a C library's callback (libcurl,
 *		libxml2), where an ERROR must never be raised: a longjmp across the
 *		library's stack would leave it in a broken state.
 */
#ifndef CLOUDCONN_CALLBACK_BUFFER_H
#define CLOUDCONN_CALLBACK_BUFFER_H

#include "lib/stringinfo.h"

/*
 * Append len bytes, keeping buf->len at most cap.  Returns false, appending
 * nothing, when that would exceed cap, or when memory ran out (then *oom is
 * set).  Grown buffers are wiped before they are freed: they may hold
 * secrets.
 */
extern bool CallbackBufferAppend(StringInfo buf, const char *data, size_t len, size_t cap,
								 bool *oom);

/*
 * Make room for exactly total bytes in all (a size announced in advance),
 * so that appending them copies nothing twice.  Same returns as above.
 */
extern bool CallbackBufferReserve(StringInfo buf, size_t total, size_t cap, bool *oom);

/* Append s (len bytes of UTF-8) as a JSON string literal, quotes included. */
extern bool CallbackBufferAppendJsonString(StringInfo buf, const char *s, size_t len, size_t cap,
										   bool *oom);

#endif							/* CLOUDCONN_CALLBACK_BUFFER_H */
