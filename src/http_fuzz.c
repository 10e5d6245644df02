/*
 * http_fuzz.c
 *		Fuzz target of the HTTP client's readers (fuzz.h), included at the
 *		end of http.c when built with `make FUZZ=1`: a response's raw
 *		header block split into headers, and the numbers and dates read
 *		from them (Retry-After, ratelimit-remaining and ratelimit-reset).
 */
#ifndef CLOUDCONN_FUZZ
#error "http_fuzz.c is included by http.c in the FUZZ build only"
#endif

#include "fuzz.h"

static bool
HttpFuzzHeaders(const char *data, size_t len)
{
	static const long statuses[] = {200, 429, 503};
	StringInfoData raw;
	HttpResponse resp;
	HttpClient *client = HttpClientCreate();

	/* the raw block is a NUL-terminated copy, cut at a NUL as curl's lines are kept */
	initStringInfo(&raw);
	appendBinaryStringInfo(&raw, data, (int) strnlen(data, len));
	FuzzResponse(&resp, 200, "", 0);
	HttpParseHeaders(&raw, &resp);
	for (int i = 0; i < (int) lengthof(statuses); i++)
	{
		resp.status = statuses[i];
		(void) HttpRetryDelayMs(&resp, i, i % 2 ? HTTP_RETRY_THROTTLED : HTTP_RETRY_TRANSIENT);
		HttpNoteRateLimit(client, &resp);
		(void) HttpRetryableStatus(&resp);
	}
	return resp.header_names != NIL;
}

static const char *const http_fuzz_tokens[] = {
	"HTTP/1.1 200 OK\r\n", "HTTP/2 429\r\n", "\r\n", "retry-after: ", "Retry-After: 120\r\n",
	"Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n", "ratelimit-remaining: 0\r\n",
	"ratelimit-reset: 1999999999\r\n", "ratelimit-reset: 99999999999999999999\r\n", "x-amzn-ErrorType: ",
	":", " \t", "GMT", "Sun, 06 Nov 1994 08:49:37 GMT", NULL
};

const FuzzTarget http_fuzz_targets[] = {
	{"http_headers", HttpFuzzHeaders, http_fuzz_tokens},
	{NULL, NULL, NULL}
};
