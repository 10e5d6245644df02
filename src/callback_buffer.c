/*
 * callback_buffer.c
 *		Appending to a StringInfo from inside a C library's callback, where
 *		an ERROR must never be raised (see callback_buffer.h).  The cap is
 *		checked first and the buffer grows with an allocation that returns
 *		NULL on OOM instead of raising; repalloc and enlargeStringInfo would
 *		raise.
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "callback_buffer.h"

/* Move the buffer to one of newlen bytes (wiping the old one). */
static bool
CallbackBufferResize(StringInfo buf, size_t newlen, bool *oom)
{
	char	   *newdata = MemoryContextAllocExtended(GetMemoryChunkContext(buf->data),
													 newlen, MCXT_ALLOC_NO_OOM);

	if (newdata == NULL)
	{
		*oom = true;
		return false;
	}
	memcpy(newdata, buf->data, (size_t) buf->len + 1);
	explicit_bzero(buf->data, (size_t) buf->maxlen);
	pfree(buf->data);
	buf->data = newdata;
	buf->maxlen = (int) newlen;
	return true;
}

bool
CallbackBufferReserve(StringInfo buf, size_t total, size_t cap, bool *oom)
{
	Assert(cap < MaxAllocSize);
	if (total > cap)
		return false;
	if (total + 1 <= (size_t) buf->maxlen)
		return true;
	return CallbackBufferResize(buf, total + 1, oom);
}

bool
CallbackBufferAppend(StringInfo buf, const char *data, size_t len, size_t cap, bool *oom)
{
	size_t		needed;

	Assert(cap < MaxAllocSize);
	if (len > cap || (size_t) buf->len > cap - len)
		return false;
	needed = (size_t) buf->len + len + 1;
	if (needed > (size_t) buf->maxlen)
	{
		size_t		newlen = (size_t) buf->maxlen;

		while (newlen < needed)
			newlen *= 2;
		if (!CallbackBufferResize(buf, Min(newlen, cap + 1), oom))
			return false;
	}
	memcpy(buf->data + buf->len, data, len);
	buf->len += (int) len;
	buf->data[buf->len] = '\0';
	return true;
}

bool
CallbackBufferAppendJsonString(StringInfo buf, const char *s, size_t len, size_t cap, bool *oom)
{
	size_t		start = 0;

	if (!CallbackBufferAppend(buf, "\"", 1, cap, oom))
		return false;
	/* runs of plain bytes are copied at once; the rest escaped as in RFC 8259 */
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];
		char		esc[8];
		size_t		esclen = 2;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (!CallbackBufferAppend(buf, s + start, i - start, cap, oom))
			return false;
		start = i + 1;
		esc[0] = '\\';
		switch (c)
		{
			case '"':
			case '\\':
				esc[1] = (char) c;
				break;
			case '\b':
				esc[1] = 'b';
				break;
			case '\f':
				esc[1] = 'f';
				break;
			case '\n':
				esc[1] = 'n';
				break;
			case '\r':
				esc[1] = 'r';
				break;
			case '\t':
				esc[1] = 't';
				break;
			default:
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				esclen = 6;
				break;
		}
		if (!CallbackBufferAppend(buf, esc, esclen, cap, oom))
			return false;
	}
	return CallbackBufferAppend(buf, s + start, len - start, cap, oom) &&
		CallbackBufferAppend(buf, "\"", 1, cap, oom);
}
