/*
 * http.c
 *		HTTPS requests to cloud APIs through libcurl, and nothing else; plain
 *		http only for AWS's metadata endpoints (HttpRequest.metadata), to a
 *		literal loopback or link-local address, with no proxy.
 *
 * A client is one curl easy handle (kept across requests, so connections
 * are reused) plus the rate-limit state of one credential; a request is one
 * HttpPerform call, or one HttpBatchStart; an attempt is one transfer within
 * it: curl_easy_perform for HttpPerform, the handle's turn in a curl multi
 * handle for a batch.  Both go through the same steps (HttpAttemptBegin,
 * HttpAttemptEnd, HttpAfterAttempt), so retries, backoff, pacing and
 * messages are the same whichever way a request is sent.
 *
 * Memory rule: libcurl callbacks run on curl's stack, so they never ereport
 * and never allocate in a way that can ERROR; they set flags that are turned
 * into errors once curl has returned.  The easy handle, the header list and
 * the multi handle are released by reset callbacks of their memory contexts
 * (and the header list of HttpPerform by PG_FINALLY), so an ERROR anywhere
 * leaks none of them.
 *
 * Message rule: hosts and ports come from superuser-only settings, and
 * transport errors reach users (runs.error, connector_test), so they name
 * the request's description, never the host, and never libcurl's own text
 * (which quotes host names); the host, port and libcurl's text go to the
 * server log only (HttpLogFailure, HTTP_DEBUG).
 */
#include "postgres.h"

#include <sys/time.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "storage/ipc.h"
#include "pgstat.h"
#include "utils/memutils.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

#include "callback_buffer.h"
#include "guc.h"
#include "http.h"

/* CLOUDCONN_VERSION comes from the Makefile (EXTVERSION) */
#define CLOUDCONN_USER_AGENT "cloudconn/" CLOUDCONN_VERSION

/* A response body larger than this is refused (and not retried). */
#define HTTP_MAX_BODY_BYTES (32 * 1024 * 1024)
#define HTTP_MAX_BODY_TEXT "32 MB"

/* Response headers of one response; curl allows 100 kB per line. */
#define HTTP_MAX_HEADER_BYTES (256 * 1024)
#define HTTP_MAX_HEADER_TEXT "256 kB"

/*
 * Backoff: base * 2^retry, at most 30 s, with full jitter; the base is
 * 500 ms after a transient failure and 1 s after throttling, which asks
 * for a longer pause (as the AWS SDKs' standard retry mode scales
 * throttling's backoff up: botocore/retries/standard.py, ExponentialBackoff).
 */
#define HTTP_BACKOFF_BASE_MS 500
#define HTTP_BACKOFF_THROTTLED_BASE_MS 1000
#define HTTP_BACKOFF_MAX_MS 30000

/*
 * The longest single wait (Retry-After, ratelimit-reset, pacing).  A server
 * asking for more gets its 429 or 5xx handed back to the caller instead:
 * a discovery run should fail and be retried later, not hang for an hour.
 */
#define HTTP_MAX_WAIT_MS 120000

/* ratelimit-reset has one-second resolution: wait a little past it. */
#define HTTP_RESET_MARGIN_MS 500

/* Pacing starts when this many requests or fewer are left. */
#define HTTP_PACE_REMAINING 5

/*
 * The longest a batch sleeps in curl before looking at interrupts again
 * (a signal usually ends the sleep sooner).
 */
#define HTTP_BATCH_POLL_MS 200

/*
 * Metadata endpoints answer on the local link within milliseconds, or not
 * at all (a server that is not on EC2 or in a container): their requests
 * give up soon, as the AWS SDKs' do (1 s), rather than hold a run for the
 * cloud APIs' timeouts.
 */
#define HTTP_METADATA_CONNECT_TIMEOUT_MS 1000
#define HTTP_METADATA_TIMEOUT_MS 3000
#define HTTP_METADATA_MAX_RETRIES 2

/*
 * Where a request goes: messages show its description, method and path;
 * only the server log shows the host.  Never the query string.
 */
typedef struct HttpTarget
{
	const char *method;
	const char *description;	/* what is called: "the DigitalOcean API" */
	const char *scheme;			/* "https", or "http" for a metadata endpoint */
	char	   *host;			/* host, ":port" added unless the scheme's: log only */
	char	   *path;
} HttpTarget;

/*
 * A per-attempt line for the server log, when log_min_messages asks for
 * DEBUG1.  It names the host, so it is written as LOG_SERVER_ONLY, which
 * is never sent to the client: a DEBUG1 message would reach any role that
 * sets client_min_messages = debug1 before calling connector_test().
 */
#define HTTP_DEBUG(...) \
	do { \
		if (log_min_messages <= DEBUG1) \
			ereport(LOG_SERVER_ONLY, (errhidestmt(true), errmsg_internal(__VA_ARGS__))); \
	} while (0)

/*
 * What the callbacks of one attempt share.  They append to the buffers and
 * set the flags, and never ERROR: HttpAttemptEnd reports afterwards.
 */
/*
 * A response body while its request is in flight: the buffer the transfer
 * writes to, wiped when its memory context goes, for an ERROR (a cancel, a
 * timeout) may come mid-transfer, before the caller has the body to wipe
 * it.  Lives in the body's own memory context, so that it runs before that
 * memory is freed; it never looks at the response (which may be on a stack
 * frame an ERROR has left).  Disarmed when the response is handed back:
 * the body is then the caller's.
 */
typedef struct HttpBodyGuard
{
	MemoryContextCallback callback;
	char	   *data;			/* NULL once handed back */
	size_t		size;
} HttpBodyGuard;

typedef struct HttpAttempt
{
	CURL	   *curl;
	StringInfo	body;
	HttpBodyGuard *body_guard;	/* follows body's buffer as it grows */
	StringInfoData raw_headers; /* header lines of the last response */
	const char *ca_file;
	bool		body_too_large;
	bool		headers_too_large;
	bool		out_of_memory;
	bool		ca_failed;
	char		ca_error[256];
} HttpAttempt;


struct HttpClient
{
	CURL	   *curl;

	/* Header list of the request in flight, so the reset callback frees it */
	struct curl_slist *headers;
	MemoryContextCallback release;

	/* Last ratelimit-remaining / ratelimit-reset seen (see HttpPaceDelayMs) */
	bool		have_ratelimit;
	int64		ratelimit_remaining;
	int64		ratelimit_reset;	/* Unix time, seconds */

	char		errbuf[CURL_ERROR_SIZE];

	/* The request this client runs in a batch (see HttpBatchStart) */
	HttpBatch  *batch;			/* NULL unless a request is in one */
	const HttpRequest *req;
	HttpResponse *resp;
	MemoryContext resp_cxt;		/* where resp's contents are allocated */
	HttpBodyGuard *body_guard;	/* resp's body while the request is in flight */
	HttpTarget	target;
	bool		is_post;		/* POST, or PUT (a body, maybe empty) */
	bool		is_put;
	bool		in_multi;		/* the handle is added to batch->multi */
	bool		finished;		/* waiting to be handed back by HttpBatchWait */
	bool		result;			/* what HttpPerform would have returned */
	int			attempt;		/* attempts made so far */
	int64		next_attempt_ms;	/* Unix ms; the next attempt waits until then */
	bool		paced;			/* that wait is the pacing of the next attempt */
	TimestampTz attempt_start;
	HttpAttempt at;				/* what the callbacks of the transfer share */
};

/* Requests of several clients at once: see HttpBatchStart. */
struct HttpBatch
{
	CURLM	   *multi;
	List	   *clients;		/* of HttpClient *: each with a request here */
	MemoryContext cxt;			/* holds the list */
	MemoryContextCallback release;
};

/*
 * Set a curl option or fail loudly: every option here is a security or
 * robustness setting (protocols, verification, limits), and running without
 * one of them is never acceptable.
 */
#define HttpSetopt(curl, option, value) \
	do { \
		if (curl_easy_setopt((curl), (option), (value)) != CURLE_OK) \
			elog(ERROR, "could not set libcurl option %s", #option); \
	} while (0)


/* Free a header list, wiping it first: the values are credentials. */
static void
HttpFreeHeaders(struct curl_slist *list)
{
	for (struct curl_slist *p = list; p != NULL; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(list);
}

/*
 * Take a client out of its batch: its handle out of the multi handle, the
 * client out of the list.  Nothing here can ERROR, as reset callbacks call it.
 */
static void
HttpBatchDetach(HttpClient *client)
{
	HttpBatch  *batch = client->batch;

	if (batch == NULL)
		return;
	if (client->in_multi)
		curl_multi_remove_handle(batch->multi, client->curl);
	client->in_multi = false;
	batch->clients = list_delete_ptr(batch->clients, client);
	client->batch = NULL;
	client->finished = false;
}

/* Reset callback of the client's memory context: runs on ERROR paths too. */
static void
HttpClientRelease(void *arg)
{
	HttpClient *client = (HttpClient *) arg;

	HttpBatchDetach(client);
	if (client->headers != NULL)
	{
		HttpFreeHeaders(client->headers);
		client->headers = NULL;
	}
	if (client->curl != NULL)
	{
		curl_easy_cleanup(client->curl);
		client->curl = NULL;
	}
}

HttpClient *
HttpClientCreate(void)
{
	HttpClient *client = palloc0(sizeof(HttpClient));

	/* Registered before the handle exists, so there is no leaking window. */
	client->release.func = HttpClientRelease;
	client->release.arg = client;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &client->release);

	client->curl = curl_easy_init();
	if (client->curl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl handle")));
	return client;
}

/* strdup into CurrentMemoryContext returning NULL on OOM instead of ERROR. */
static char *
HttpStrdupNoError(const char *s)
{
	size_t		len = strlen(s);
	char	   *copy = MemoryContextAllocExtended(CurrentMemoryContext, len + 1,
												  MCXT_ALLOC_NO_OOM);

	if (copy != NULL)
		memcpy(copy, s, len + 1);
	return copy;
}

/*
 * Whether host (as curl's URL parser gives it: an IPv6 address in
 * brackets) is a literal address where AWS's metadata endpoints live, or a
 * loopback one: 127.0.0.0/8, 169.254.0.0/16 (IMDS at 169.254.169.254, the
 * ECS and EKS container endpoints at 169.254.170.2 and .23), ::1,
 * fe80::/10, and the two IPv6 addresses AWS gives them, fd00:ec2::254
 * (IMDS) and fd00:ec2::23 (EKS).  A name is never accepted: what it
 * resolves to is not ours to check.
 */
static bool
HttpMetadataHostAllowed(const char *host)
{
	unsigned char a4[4];
	unsigned char a6[16];
	char		buf[64];
	size_t		len = strlen(host);

	if (inet_pton(AF_INET, host, a4) == 1)
		return a4[0] == 127 || (a4[0] == 169 && a4[1] == 254);
	if (len < 3 || len >= sizeof(buf) || host[0] != '[' || host[len - 1] != ']')
		return false;
	memcpy(buf, host + 1, len - 2);
	buf[len - 2] = '\0';
	if (inet_pton(AF_INET6, buf, a6) != 1)
		return false;
	{
		static const unsigned char loopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
		static const unsigned char ec2_prefix[14] = {0xfd, 0x00, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

		if (memcmp(a6, loopback, 16) == 0)
			return true;
		if (a6[0] == 0xfe && (a6[1] & 0xc0) == 0x80)
			return true;
		return memcmp(a6, ec2_prefix, 14) == 0 && a6[14] == 0 && (a6[15] == 0x54 || a6[15] == 0x23);
	}
}

/*
 * Split a URL with curl's own parser, the one that will be used to send
 * it, so that what is checked is what curl connects to.  Returns false
 * unless it is a well-formed https URL with a host or, when metadata is
 * set, an http URL to a literal address HttpMetadataHostAllowed accepts
 * (*scheme says which).  The parts are palloc'd; nothing between curl_url()
 * and curl_url_cleanup() can ERROR, so curl's handle and strings are
 * released on every path.
 */
static bool
HttpParseUrlScheme(const char *url, bool metadata, const char **scheme_out,
				   char **host, char **port, char **path)
{
	CURLU	   *h = curl_url();
	char	   *scheme = NULL;
	char	   *chost = NULL;
	char	   *cport = NULL;
	char	   *cpath = NULL;
	char	   *zone = NULL;
	bool		ok;
	bool		plain = false;
	bool		oom = false;

	if (h == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));

	ok = curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
		curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
		(strcmp(scheme, "https") == 0 || (metadata && strcmp(scheme, "http") == 0)) &&
		curl_url_get(h, CURLUPART_HOST, &chost, 0) == CURLUE_OK &&
		chost[0] != '\0' &&
		curl_url_get(h, CURLUPART_PORT, &cport, CURLU_DEFAULT_PORT) == CURLUE_OK &&
		curl_url_get(h, CURLUPART_PATH, &cpath, 0) == CURLUE_OK;
	if (ok && strcmp(scheme, "http") == 0)
	{
		/* plain http: a literal address of ours, with no zone id to pick a link */
		plain = true;
		ok = curl_url_get(h, CURLUPART_ZONEID, &zone, 0) != CURLUE_OK &&
			HttpMetadataHostAllowed(chost);
	}
	if (ok)
	{
		*host = HttpStrdupNoError(chost);
		*port = HttpStrdupNoError(cport);
		*path = HttpStrdupNoError(cpath);
		oom = *host == NULL || *port == NULL || *path == NULL;
	}
	curl_free(scheme);
	curl_free(chost);
	curl_free(cport);
	curl_free(cpath);
	curl_free(zone);
	curl_url_cleanup(h);

	if (oom)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (ok)
	{
		/* DNS names are case-insensitive: one spelling per origin. */
		for (char *p = *host; *p; p++)
			*p = pg_ascii_tolower((unsigned char) *p);
		if (scheme_out != NULL)
			*scheme_out = plain ? "http" : "https";
	}
	return ok;
}

static bool
HttpParseUrl(const char *url, char **host, char **port, char **path)
{
	return HttpParseUrlScheme(url, false, NULL, host, port, path);
}

bool
HttpMetadataUrlValid(const char *url)
{
	char	   *host;
	char	   *port;
	char	   *path;

	return url != NULL && HttpParseUrlScheme(url, true, NULL, &host, &port, &path);
}

char *
HttpUrlOrigin(const char *url)
{
	char	   *host;
	char	   *port;
	char	   *path;

	if (url == NULL || !HttpParseUrl(url, &host, &port, &path))
		return NULL;
	return psprintf("https://%s:%s", host, port);
}

/* Unix time in milliseconds, the clock ratelimit-reset is given in. */
static int64
HttpUnixTimeMs(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64) tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* A non-negative decimal integer (header values are already trimmed). */
static bool
HttpParseCount(const char *s, int64 *out)
{
	int64		v = 0;

	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
	{
		if (*s < '0' || *s > '9')
			return false;
		if (v > (PG_INT64_MAX - 9) / 10)
			return false;
		v = v * 10 + (*s - '0');
	}
	*out = v;
	return true;
}

/* CURLOPT_WRITEFUNCTION: the body, up to HTTP_MAX_BODY_BYTES. */
static size_t
HttpWriteCallback(char *data, size_t size, size_t nmemb, void *arg)
{
	HttpAttempt *at = (HttpAttempt *) arg;
	size_t		len = size * nmemb;
	curl_off_t	announced;

	bool		appended;

	/* the whole body at once when its size is announced: no regrowing */
	if (at->body->len == 0 &&
		curl_easy_getinfo(at->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &announced) == CURLE_OK &&
		announced > 0 && announced <= HTTP_MAX_BODY_BYTES &&
		!CallbackBufferReserve(at->body, (size_t) announced, HTTP_MAX_BODY_BYTES, &at->out_of_memory))
		appended = false;
	else
		appended = CallbackBufferAppend(at->body, data, len, HTTP_MAX_BODY_BYTES,
										&at->out_of_memory);
	/* the buffer may have moved (the old one wiped) */
	at->body_guard->data = at->body->data;
	at->body_guard->size = (size_t) at->body->maxlen;
	if (!appended)
	{
		if (!at->out_of_memory)
			at->body_too_large = true;
		return 0;				/* curl fails with CURLE_WRITE_ERROR */
	}
	return len;
}

/*
 * CURLOPT_HEADERFUNCTION: raw header lines, parsed once curl has returned.
 * Every status line starts a new response (a 100 Continue before the real
 * one, say), so the buffer is restarted there and only the headers of the
 * last response are kept.
 */
static size_t
HttpHeaderCallback(char *data, size_t size, size_t nitems, void *arg)
{
	HttpAttempt *at = (HttpAttempt *) arg;
	size_t		len = size * nitems;

	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
		resetStringInfo(&at->raw_headers);
	if (!CallbackBufferAppend(&at->raw_headers, data, len, HTTP_MAX_HEADER_BYTES,
						  &at->out_of_memory))
	{
		if (!at->out_of_memory)
			at->headers_too_large = true;
		return 0;
	}
	return len;
}

/*
 * CURLOPT_XFERINFOFUNCTION: curl calls it often while data flows and about
 * once a second while waiting, so a cancel or terminate request stops the
 * transfer within a second.  It only looks at the flags: ProcessInterrupts
 * would longjmp out of libcurl.  HttpAttemptOnce calls CHECK_FOR_INTERRUPTS
 * once curl has returned.
 */
static int
HttpProgressCallback(void *arg, curl_off_t dltotal, curl_off_t dlnow,
					 curl_off_t ultotal, curl_off_t ulnow)
{
	if (InterruptPending && (QueryCancelPending || ProcDiePending))
		return 1;
	return 0;
}

/*
 * CURLOPT_SSL_CTX_FUNCTION: add cloudconn.ca_file to the trust store of a
 * new connection, the same store curl loads the system's CAs into, so a
 * private CA is trusted besides the public ones rather than instead of them
 * (CURLOPT_CAINFO would replace them).  A file that cannot be loaded fails
 * the connection: going on without it would only end in a confusing
 * verification error, or in trusting less than the administrator meant.
 */
static CURLcode
HttpSslCtxCallback(CURL *curl, void *ssl_ctx, void *arg)
{
	HttpAttempt *at = (HttpAttempt *) arg;
	X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *) ssl_ctx);
	bool		ok;

	ERR_clear_error();
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	ok = store != NULL && X509_STORE_load_file(store, at->ca_file) == 1;
#else
	ok = store != NULL && X509_STORE_load_locations(store, at->ca_file, NULL) == 1;
#endif
	if (!ok)
	{
		unsigned long err;
		const char *reason = NULL;
		int			sys_errno = 0;

		/*
		 * Drain the queue (leaving nothing for the next OpenSSL user in this
		 * backend), keeping the cause: an OS error such as a missing file,
		 * else the first reason given.
		 */
		while ((err = ERR_get_error()) != 0)
		{
			if (ERR_GET_LIB(err) == ERR_LIB_SYS)
				sys_errno = ERR_GET_REASON(err);
			else if (reason == NULL)
				reason = ERR_reason_error_string(err);
		}
		if (sys_errno != 0)
			reason = strerror(sys_errno);
		strlcpy(at->ca_error, reason != NULL ? reason : "no certificate could be read from it",
				sizeof(at->ca_error));
		at->ca_failed = true;
		return CURLE_SSL_CACERT_BADFILE;
	}
	return CURLE_OK;
}

/*
 * The ca_file callback hands curl's SSL_CTX to OpenSSL functions we link
 * against ourselves, which is only right if curl's TLS backend is OpenSSL.
 */
static bool
HttpCurlUsesOpenSSL(void)
{
	const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);

	return info != NULL && info->ssl_version != NULL &&
		strncmp(info->ssl_version, "OpenSSL/", 8) == 0;
}

/* The connect timeout of a request: metadata endpoints get a short one. */
static int
HttpConnectTimeoutMs(const HttpRequest *req)
{
	if (req->metadata)
		return Min(cloudconn_http_connect_timeout_ms, HTTP_METADATA_CONNECT_TIMEOUT_MS);
	return cloudconn_http_connect_timeout_ms;
}

static int
HttpTimeoutMs(const HttpRequest *req)
{
	if (req->metadata)
		return Min(cloudconn_http_timeout_ms, HTTP_METADATA_TIMEOUT_MS);
	return cloudconn_http_timeout_ms;
}

static int
HttpMaxRetries(const HttpRequest *req)
{
	if (req->metadata)
		return Min(cloudconn_http_max_retries, HTTP_METADATA_MAX_RETRIES);
	return cloudconn_http_max_retries;
}

/* Every option, every attempt: curl_easy_reset has just cleared them. */
static void
HttpSetOptions(HttpClient *client, const HttpRequest *req, bool is_post,
			   struct curl_slist *headers, HttpAttempt *at)
{
	CURL	   *curl = client->curl;

	HttpSetopt(curl, CURLOPT_URL, req->url);
	HttpSetopt(curl, CURLOPT_PRIVATE, client);
	HttpSetopt(curl, CURLOPT_NOSIGNAL, 1L);
	HttpSetopt(curl, CURLOPT_VERBOSE, 0L);
	HttpSetopt(curl, CURLOPT_ERRORBUFFER, client->errbuf);

	/*
	 * https only, for the request and for any redirect (never followed);
	 * plain http for a metadata request whose URL HttpPrepare checked (a
	 * literal loopback or link-local address), and then never through a
	 * proxy, which the environment's http_proxy would otherwise choose.
	 */
	if (strcmp(client->target.scheme, "http") == 0)
	{
#if LIBCURL_VERSION_NUM >= 0x075500
		HttpSetopt(curl, CURLOPT_PROTOCOLS_STR, "http");
		HttpSetopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
		HttpSetopt(curl, CURLOPT_PROTOCOLS, (long) CURLPROTO_HTTP);
		HttpSetopt(curl, CURLOPT_REDIR_PROTOCOLS, (long) CURLPROTO_HTTPS);
#endif
	}
	else
	{
#if LIBCURL_VERSION_NUM >= 0x075500
		HttpSetopt(curl, CURLOPT_PROTOCOLS_STR, "https");
		HttpSetopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
		HttpSetopt(curl, CURLOPT_PROTOCOLS, (long) CURLPROTO_HTTPS);
		HttpSetopt(curl, CURLOPT_REDIR_PROTOCOLS, (long) CURLPROTO_HTTPS);
#endif
	}
	if (req->metadata)
	{
		HttpSetopt(curl, CURLOPT_PROXY, "");
		HttpSetopt(curl, CURLOPT_NOPROXY, "*");
	}
	HttpSetopt(curl, CURLOPT_FOLLOWLOCATION, 0L);

	HttpSetopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
	HttpSetopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
	HttpSetopt(curl, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
	if (at->ca_file != NULL)
	{
		if (!HttpCurlUsesOpenSSL())
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cloudconn.ca_file cannot be used with this libcurl"),
					 errdetail("libcurl uses %s, but cloudconn adds CA files through OpenSSL.",
							   curl_version_info(CURLVERSION_NOW)->ssl_version),
					 errhint("Install a libcurl built with OpenSSL, or empty cloudconn.ca_file.")));
#if LIBCURL_VERSION_NUM >= 0x075700
		/*
		 * curl can cache a CA store and swap it into later connections; the
		 * callback adds to the store of each new connection, which must then
		 * be a fresh one, loaded with whatever ca_file says now.
		 */
		HttpSetopt(curl, CURLOPT_CA_CACHE_TIMEOUT, 0L);
#endif
		HttpSetopt(curl, CURLOPT_SSL_CTX_FUNCTION, HttpSslCtxCallback);
		HttpSetopt(curl, CURLOPT_SSL_CTX_DATA, at);
	}

#if LIBCURL_VERSION_NUM >= 0x075700
	/*
	 * A handle released while a name is being resolved (a cancel, an ERROR)
	 * would otherwise wait for the resolver thread, deaf to interrupts.
	 */
	HttpSetopt(curl, CURLOPT_QUICK_EXIT, 1L);
#endif
	HttpSetopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) HttpConnectTimeoutMs(req));
	HttpSetopt(curl, CURLOPT_TIMEOUT_MS, (long) HttpTimeoutMs(req));

	HttpSetopt(curl, CURLOPT_USERAGENT, CLOUDCONN_USER_AGENT);
	if (headers != NULL)
		HttpSetopt(curl, CURLOPT_HTTPHEADER, headers);
	if (is_post)
	{
		/*
		 * Not copied (a body can hold a secret, which curl's copy would
		 * leave in freed memory unwiped): req->body stays valid until the
		 * request is over, as HttpPerform and HttpBatchStart require.
		 */
		HttpSetopt(curl, CURLOPT_POST, 1L);
		HttpSetopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
		HttpSetopt(curl, CURLOPT_POSTFIELDS, req->body != NULL ? req->body : "");
		/* a PUT is sent as a POST is, under its own method */
		if (client->is_put)
			HttpSetopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
	}
	else
		HttpSetopt(curl, CURLOPT_HTTPGET, 1L);

	/* fail early when Content-Length already says the body is too big */
	HttpSetopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) HTTP_MAX_BODY_BYTES);
	HttpSetopt(curl, CURLOPT_WRITEFUNCTION, HttpWriteCallback);
	HttpSetopt(curl, CURLOPT_WRITEDATA, at);
	HttpSetopt(curl, CURLOPT_HEADERFUNCTION, HttpHeaderCallback);
	HttpSetopt(curl, CURLOPT_HEADERDATA, at);
	HttpSetopt(curl, CURLOPT_XFERINFOFUNCTION, HttpProgressCallback);
	HttpSetopt(curl, CURLOPT_NOPROGRESS, 0L);
}

/* Clear what an earlier attempt left in the response. */
static void
HttpResetResponse(HttpResponse *resp)
{
	resp->status = 0;
	/* what an earlier attempt received may be part of a secret */
	explicit_bzero(resp->body.data, resp->body.len);
	resetStringInfo(&resp->body);
	if (resp->transport_error != NULL)
	{
		pfree(resp->transport_error);
		resp->transport_error = NULL;
	}
	list_free_deep(resp->header_names);
	list_free_deep(resp->header_values);
	resp->header_names = NIL;
	resp->header_values = NIL;
}

/* Trim spaces and tabs at both ends, in place. */
static char *
HttpTrim(char *s, char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*end = '\0';
	return s;
}

/* Turn the raw header lines of the last response into the two lists. */
static void
HttpParseHeaders(StringInfo raw, HttpResponse *resp)
{
	char	   *line = raw->data;

	while (*line != '\0')
	{
		char	   *eol = strchr(line, '\n');
		char	   *next = eol != NULL ? eol + 1 : line + strlen(line);
		char	   *end = eol != NULL ? eol : next;
		char	   *colon;

		if (end > line && end[-1] == '\r')
			end--;
		colon = memchr(line, ':', end - line);

		/* the status line, the blank line and obsolete folding are skipped */
		if (colon != NULL && colon > line && line[0] != ' ' && line[0] != '\t' &&
			strncmp(line, "HTTP/", 5) != 0)
		{
			char	   *name = HttpTrim(line, colon);
			char	   *value = HttpTrim(colon + 1, end);

			for (char *p = name; *p; p++)
				*p = pg_ascii_tolower((unsigned char) *p);
			resp->header_names = lappend(resp->header_names, pstrdup(name));
			resp->header_values = lappend(resp->header_values, pstrdup(value));
		}
		line = next;
	}
}

const char *
HttpResponseHeader(const HttpResponse *resp, const char *name)
{
	ListCell   *n;
	ListCell   *v;

	forboth(n, resp->header_names, v, resp->header_values)
	{
		if (pg_strcasecmp((const char *) lfirst(n), name) == 0)
			return (const char *) lfirst(v);
	}
	return NULL;
}

/*
 * curl's own text for a failure: the error buffer, else the code's text.
 * The buffer quotes host names and ports ("Failed to connect to 127.0.0.1
 * port 443"): for the server log only.
 */
static const char *
HttpCurlText(HttpClient *client, CURLcode rc)
{
	return client->errbuf[0] != '\0' ? client->errbuf : curl_easy_strerror(rc);
}

/*
 * Why a certificate was refused, without a host name: a mismatch that curl
 * found itself (its text quotes the host, so only its kind is told), else
 * OpenSSL's text for its verification result ("certificate has expired"),
 * else the fixed text of curl's code.
 */
static const char *
HttpTlsVerifyText(HttpClient *client, CURLcode rc)
{
	long		result = 0;

	if (strstr(client->errbuf, "target host name") != NULL)
		return "the certificate does not name that host";
	if (HttpCurlUsesOpenSSL() &&
		curl_easy_getinfo(client->curl, CURLINFO_SSL_VERIFYRESULT, &result) == CURLE_OK &&
		result != X509_V_OK && result != X509_V_ERR_UNSPECIFIED)
		return X509_verify_cert_error_string(result);
	return curl_easy_strerror(rc);
}

/*
 * The transport_error message of a failed attempt, and whether it is worth
 * retrying.  Messages name the request's description, method and path
 * (never the host or port, never the query, which can carry identifiers,
 * and never a header), with texts that quote no host: curl's fixed text
 * for its code, an OS error, OpenSSL's verification result.  Failures that
 * will not change on a second try (certificate verification, CA file, size
 * cap, interruption) are final.
 */
static char *
HttpDescribeFailure(HttpClient *client, CURLcode rc, const HttpAttempt *at,
					const HttpTarget *t, bool *retryable)
{
	*retryable = false;

	/* what the callbacks found, whichever code curl turned it into */
	if (at->ca_failed)
		return psprintf("could not load the CA file in cloudconn.ca_file to verify %s (%s %s): %s",
						t->description, t->method, t->path, at->ca_error);
	if (at->body_too_large)
		return psprintf("response from %s to %s %s exceeds " HTTP_MAX_BODY_TEXT,
						t->description, t->method, t->path);
	if (at->headers_too_large)
		return psprintf("response headers from %s to %s %s exceed " HTTP_MAX_HEADER_TEXT,
						t->description, t->method, t->path);

	switch (rc)
	{
		case CURLE_COULDNT_RESOLVE_HOST:
			*retryable = true;
			return psprintf("could not resolve the host name of %s for %s %s",
							t->description, t->method, t->path);

		case CURLE_COULDNT_CONNECT:
			{
				long		os_errno = 0;

				*retryable = true;
				curl_easy_getinfo(client->curl, CURLINFO_OS_ERRNO, &os_errno);
				return psprintf("could not connect to %s for %s %s: %s",
								t->description, t->method, t->path,
								os_errno != 0 ? strerror((int) os_errno) : curl_easy_strerror(rc));
			}

		case CURLE_OPERATION_TIMEDOUT:
			{
				curl_off_t	connected = 0;

				*retryable = true;
				/* connected: TLS done for https; the TCP connection for plain http */
				curl_easy_getinfo(client->curl,
								  strcmp(t->scheme, "http") == 0 ? CURLINFO_CONNECT_TIME_T : CURLINFO_APPCONNECT_TIME_T,
								  &connected);
				if (connected == 0)
					return psprintf("could not connect to %s for %s %s: timed out after %d ms",
									t->description, t->method, t->path,
									Min(HttpConnectTimeoutMs(client->req), HttpTimeoutMs(client->req)));
				return psprintf("timed out after %d ms waiting for %s (%s %s)",
								HttpTimeoutMs(client->req), t->description, t->method, t->path);
			}

		case CURLE_PEER_FAILED_VERIFICATION:
			return psprintf("TLS certificate of %s could not be verified (%s %s): %s",
							t->description, t->method, t->path, HttpTlsVerifyText(client, rc));

		case CURLE_SSL_CACERT_BADFILE:
			return psprintf("could not load the CA certificates to verify %s (%s %s): %s",
							t->description, t->method, t->path, curl_easy_strerror(rc));

		case CURLE_SSL_CONNECT_ERROR:
			*retryable = true;
			return psprintf("TLS handshake with %s failed for %s %s: %s",
							t->description, t->method, t->path, curl_easy_strerror(rc));

		case CURLE_FILESIZE_EXCEEDED:
			return psprintf("response from %s to %s %s exceeds " HTTP_MAX_BODY_TEXT,
							t->description, t->method, t->path);

		case CURLE_PARTIAL_FILE:
			*retryable = true;
			return psprintf("response from %s to %s %s was cut short: %s",
							t->description, t->method, t->path, curl_easy_strerror(rc));

		case CURLE_RECV_ERROR:
		case CURLE_SEND_ERROR:
		case CURLE_GOT_NOTHING:
			*retryable = true;
			return psprintf("connection to %s was lost during %s %s: %s",
							t->description, t->method, t->path, curl_easy_strerror(rc));

		case CURLE_HTTP2:
		case CURLE_HTTP2_STREAM:
			*retryable = true;
			return psprintf("HTTP/2 error from %s during %s %s: %s",
							t->description, t->method, t->path, curl_easy_strerror(rc));

		case CURLE_ABORTED_BY_CALLBACK:
			/* an interrupt that CHECK_FOR_INTERRUPTS held off */
			return psprintf("%s %s to %s was interrupted",
							t->method, t->path, t->description);

		default:
			break;
	}
	return psprintf("%s %s to %s failed: %s",
					t->method, t->path, t->description, curl_easy_strerror(rc));
}

/*
 * A request failed for good (no HTTP response after its retries): the
 * server log gets where it went and libcurl's own text, which the message
 * users see leaves out.  LOG, so that the default log_min_messages keeps
 * it: the user's message no longer says which host could not be reached,
 * and an operator has nothing else to go on; one line per failed request,
 * not per attempt (those are HTTP_DEBUG lines).  LOG_SERVER_ONLY, because
 * a LOG message would reach a role that sets client_min_messages = log
 * (connector_test() runs in the user's backend).
 */
static void
HttpLogFailure(HttpClient *client)
{
	const HttpTarget *t = &client->target;

	ereport(LOG_SERVER_ONLY,
			(errhidestmt(true),
			 errhidecontext(true),
			 errmsg_plural("cloudconn: %s %s://%s%s (%s) failed after %d attempt: %s",
						   "cloudconn: %s %s://%s%s (%s) failed after %d attempts: %s",
						   client->attempt,
						   t->method, t->scheme, t->host, t->path, t->description, client->attempt,
						   client->resp->transport_error),
			 client->errbuf[0] != '\0' ? errdetail_log("libcurl: %s", client->errbuf) : 0));
}

static void HttpBuildHeaders(HttpClient *client, const HttpRequest *req);

/*
 * The first step of an attempt: reset the handle and set every option.  The
 * request is client->req, the answer goes to client->resp.  A request
 * signed with its time (refresh_headers) is signed again for a retry.
 */
static void
HttpAttemptBegin(HttpClient *client)
{
	HttpAttempt *at = &client->at;

	HttpResetResponse(client->resp);
	memset(at, 0, sizeof(HttpAttempt));
	at->curl = client->curl;
	at->body = &client->resp->body;
	at->body_guard = client->body_guard;
	initStringInfo(&at->raw_headers);
	if (cloudconn_ca_file != NULL && cloudconn_ca_file[0] != '\0')
		at->ca_file = cloudconn_ca_file;

	/* a retry of a request signed with its time is signed again, now */
	if (client->attempt > 0 && client->req->refresh_headers != NULL)
	{
		client->req->refresh_headers(client->req->refresh_arg);
		HttpBuildHeaders(client, client->req);
	}
	curl_easy_reset(client->curl);
	HttpSetOptions(client, client->req, client->is_post, client->headers, at);
	client->errbuf[0] = '\0';
	client->attempt_start = GetCurrentTimestamp();
	client->paced = false;
}

/*
 * The last step of an attempt, once curl has returned its code: fill
 * client->resp.  On failure resp->transport_error is set and *retryable
 * says whether another attempt may help.
 */
static void
HttpAttemptEnd(HttpClient *client, CURLcode rc, bool *retryable)
{
	HttpAttempt *at = &client->at;
	HttpResponse *resp = client->resp;
	const HttpTarget *target = &client->target;
	long		elapsed_ms = TimestampDifferenceMilliseconds(client->attempt_start,
															 GetCurrentTimestamp());

	client->attempt++;
	resp->attempts = client->attempt;
	if (at->out_of_memory)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Could not store the response from %s to %s %s.",
						   target->description, target->method, target->path)));
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		CHECK_FOR_INTERRUPTS();

	curl_easy_getinfo(client->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	HttpParseHeaders(&at->raw_headers, resp);
	pfree(at->raw_headers.data);
	at->raw_headers.data = NULL;

	*retryable = false;
	if (rc != CURLE_OK)
	{
		resp->transport_error = HttpDescribeFailure(client, rc, at, target, retryable);
		HTTP_DEBUG("cloudconn: %s %s %s %s -> failed (attempt %d, %ld ms): %s (libcurl: %s)",
				   target->method, target->scheme, target->host, target->path,
				   client->attempt, elapsed_ms, resp->transport_error, HttpCurlText(client, rc));
	}
	else
		HTTP_DEBUG("cloudconn: %s %s %s %s -> %ld (attempt %d, %ld ms)",
				   target->method, target->scheme, target->host, target->path,
				   resp->status, client->attempt, elapsed_ms);
}

/*
 * Wait on the latch, so that a cancel, a terminate or postmaster death is
 * acted on at once rather than after the wait.
 */
static void
HttpWait(long ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left;

		CHECK_FOR_INTERRUPTS();
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* The ceiling of the retry'th backoff of a kind: base * 2^retry, at most 30 s. */
static long
HttpBackoffCeilingMs(int retry, HttpRetryKind kind)
{
	long		ceiling = kind == HTTP_RETRY_THROTTLED ? HTTP_BACKOFF_THROTTLED_BASE_MS : HTTP_BACKOFF_BASE_MS;

	for (int i = 0; i < retry && ceiling < HTTP_BACKOFF_MAX_MS; i++)
		ceiling *= 2;
	return Min(ceiling, HTTP_BACKOFF_MAX_MS);
}

/* Exponential backoff with full jitter: uniform in [0, ceiling]. */
static long
HttpBackoffMs(int retry, HttpRetryKind kind)
{
	return (long) (pg_prng_double(&pg_global_prng_state) * HttpBackoffCeilingMs(retry, kind));
}

/*
 * How long to wait before retrying an answer (a 429, a 5xx, or what the
 * request's classifier retries): what the server asked for
 * (Retry-After, in seconds or as an HTTP date; on a 429 without it,
 * DigitalOcean's ratelimit-reset, a Unix time), else backoff.  Returns -1
 * when the server asks for more than HTTP_MAX_WAIT_MS: the response is then
 * handed back as it is.
 */
static long
HttpRetryDelayMs(const HttpResponse *resp, int retry, HttpRetryKind kind)
{
	const char *value;
	int64		now_ms = HttpUnixTimeMs();
	int64		wait_ms;
	int64		n;

	if ((value = HttpResponseHeader(resp, "retry-after")) != NULL)
	{
		time_t		when;

		if (HttpParseCount(value, &n))
			wait_ms = n > HTTP_MAX_WAIT_MS / 1000 ? HTTP_MAX_WAIT_MS + 1 : n * 1000;
		else if ((when = curl_getdate(value, NULL)) != -1)
			wait_ms = Max((int64) when * 1000 - now_ms, 0);
		else
			return HttpBackoffMs(retry, kind);	/* unreadable: as if absent */
	}
	else if (resp->status == 429 &&
			 (value = HttpResponseHeader(resp, "ratelimit-reset")) != NULL &&
			 HttpParseCount(value, &n) && n <= PG_INT64_MAX / 1000 - 1 &&
			 n * 1000 > now_ms)
		wait_ms = n * 1000 - now_ms + HTTP_RESET_MARGIN_MS;
	else
		return HttpBackoffMs(retry, kind);

	return wait_ms > HTTP_MAX_WAIT_MS ? -1 : (long) wait_ms;
}

/*
 * Remember the rate-limit state a response reports.  A 429's own headers
 * say "0 left" about the request it refused; its wait is handled by
 * HttpRetryDelayMs, so it clears the state rather than making HttpPaceDelayMs wait
 * a second time on top of Retry-After.
 */
static void
HttpNoteRateLimit(HttpClient *client, const HttpResponse *resp)
{
	int64		remaining;
	int64		reset;

	if (resp->status == 429)
		client->have_ratelimit = false;
	else if (HttpParseCount(HttpResponseHeader(resp, "ratelimit-remaining"), &remaining) &&
			 HttpParseCount(HttpResponseHeader(resp, "ratelimit-reset"), &reset) &&
			 reset <= PG_INT64_MAX / 1000)
	{
		client->have_ratelimit = true;
		client->ratelimit_remaining = remaining;
		client->ratelimit_reset = reset;
	}
}

/*
 * Pacing.  APIs such as DigitalOcean's report on every response how many
 * requests are left (ratelimit-remaining) and when the window resets
 * (ratelimit-reset, Unix seconds).  Spending the last few at full speed
 * would only buy a run of 429s, so once HTTP_PACE_REMAINING or fewer are
 * left and the reset lies ahead, the remaining requests are spread evenly
 * over the time to the reset: wait (reset - now) / (remaining + 1) before
 * the next one.  A single wait is capped at HTTP_MAX_WAIT_MS; beyond that
 * the request goes ahead and any 429 is handled as such.  Returns the wait
 * before the client's next attempt, 0 for none.  After a 429 the retry
 * delay has already obeyed the server, so there is no pacing on top.
 */
static long
HttpPaceDelayMs(HttpClient *client)
{
	int64		now_ms;
	int64		wait_ms;

	if (client->attempt > 0 && client->resp->status == 429)
		return 0;
	if (!client->have_ratelimit || client->ratelimit_remaining > HTTP_PACE_REMAINING)
		return 0;
	now_ms = HttpUnixTimeMs();
	if (client->ratelimit_reset * 1000 <= now_ms)
		return 0;
	wait_ms = (client->ratelimit_reset * 1000 - now_ms) / (client->ratelimit_remaining + 1);
	wait_ms = Min(wait_ms, HTTP_MAX_WAIT_MS);
	HTTP_DEBUG("cloudconn: pacing %s %s %s %s: " INT64_FORMAT " requests left, waiting " INT64_FORMAT " ms",
			   client->target.method, client->target.scheme, client->target.host, client->target.path,
			   client->ratelimit_remaining, wait_ms);
	return (long) wait_ms;
}

HttpRetryKind
HttpRetryableStatus(const HttpResponse *resp)
{
	if (resp->status == 429)
		return HTTP_RETRY_THROTTLED;
	if (resp->status >= 500 && resp->status <= 599)
		return HTTP_RETRY_TRANSIENT;
	return HTTP_NO_RETRY;
}

/*
 * After an attempt: true when the request is over (client->result is then
 * what HttpPerform returns), else false with the wait before the next
 * attempt in *delay_ms.  Answers the request's classifier calls retryable
 * (by default 429 and 5xx) and retryable transport failures are retried up
 * to cloudconn.http_max_retries times.
 */
static bool
HttpAfterAttempt(HttpClient *client, CURLcode rc, bool retryable, long *delay_ms)
{
	HttpResponse *resp = client->resp;
	const HttpTarget *target = &client->target;
	int			retries_done = client->attempt - 1;
	HttpRetryKind kind = HTTP_RETRY_TRANSIENT;

	if (rc == CURLE_OK)
	{
		HttpNoteRateLimit(client, resp);
		client->result = true;
		kind = client->req->retry_response
			? client->req->retry_response(resp, client->req->retry_arg)
			: HttpRetryableStatus(resp);
		if (kind == HTTP_NO_RETRY)
			return true;
		if (retries_done >= HttpMaxRetries(client->req))
			return true;
		*delay_ms = HttpRetryDelayMs(resp, retries_done, kind);
		if (*delay_ms < 0)
		{
			HTTP_DEBUG("cloudconn: not retrying %s %s %s %s: the server asks to wait more than %d s",
					   target->method, target->scheme, target->host, target->path,
					   HTTP_MAX_WAIT_MS / 1000);
			return true;
		}
	}
	else
	{
		client->result = false;
		if (!retryable || retries_done >= HttpMaxRetries(client->req))
		{
			HttpLogFailure(client);
			return true;
		}
		*delay_ms = HttpBackoffMs(retries_done, kind);
	}
	HTTP_DEBUG("cloudconn: retrying %s %s %s %s in %ld ms (%s, backoff up to %ld ms)",
			   target->method, target->scheme, target->host, target->path, *delay_ms,
			   kind == HTTP_RETRY_THROTTLED ? "throttled" : "transient",
			   HttpBackoffCeilingMs(retries_done, kind));
	return false;
}

/* The request is over: its header list goes (wiped). */
static void
HttpRequestDone(HttpClient *client)
{
	HttpFreeHeaders(client->headers);
	client->headers = NULL;
}

/* HttpBodyGuard's callback: the memory context of a body in flight goes. */
static void
HttpBodyGuardWipe(void *arg)
{
	HttpBodyGuard *guard = (HttpBodyGuard *) arg;

	if (guard->data != NULL)
		explicit_bzero(guard->data, guard->size);
}

/* Guard resp's body, just made, in its memory context (the current one). */
static void
HttpBodyGuardArm(HttpClient *client, HttpResponse *resp)
{
	HttpBodyGuard *guard = palloc(sizeof(HttpBodyGuard));

	guard->data = resp->body.data;
	guard->size = (size_t) resp->body.maxlen;
	guard->callback.func = HttpBodyGuardWipe;
	guard->callback.arg = guard;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &guard->callback);
	client->body_guard = guard;
}

/* The response is handed back: its body is the caller's to wipe now. */
static void
HttpBodyGuardDisarm(HttpClient *client)
{
	client->body_guard->data = NULL;
	client->body_guard = NULL;
}

/*
 * The request's header lines into client->headers (where the reset
 * callback frees them if an ERROR comes first), replacing any built before.
 */
static void
HttpBuildHeaders(HttpClient *client, const HttpRequest *req)
{
	HttpFreeHeaders(client->headers);
	client->headers = NULL;

	/*
	 * A line break in a header line would let its value add headers of its
	 * own; the value is a secret, so the message does not quote it.
	 */
	for (int i = 0; i < req->nheaders; i++)
	{
		if (strpbrk(req->headers[i], "\r\n") != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("an HTTP request header for %s contains a line break",
							client->target.description)));
	}

	for (int i = 0; i < req->nheaders; i++)
	{
		struct curl_slist *next = curl_slist_append(client->headers, req->headers[i]);

		if (next == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory")));
		client->headers = next;
	}
}

/*
 * Make a request the client's: resp emptied, the target parsed for
 * messages, the header list built (in client->headers, so that the reset
 * callback frees it if an ERROR comes first).  Returns false, with
 * resp->transport_error set, for a URL that is not a well-formed https URL.
 */
static bool
HttpPrepare(HttpClient *client, const HttpRequest *req, HttpResponse *resp)
{
	char	   *port;

	HttpRequestDone(client);	/* what an ERROR may have left */
	memset(resp, 0, sizeof(HttpResponse));
	initStringInfo(&resp->body);
	HttpBodyGuardArm(client, resp);
	client->req = req;
	client->resp = resp;
	client->attempt = 0;
	client->result = false;

	client->is_put = false;
	if (strcmp(req->method, "GET") == 0)
		client->is_post = false;
	else if (strcmp(req->method, "POST") == 0)
		client->is_post = true;
	else if (strcmp(req->method, "PUT") == 0)
		client->is_post = client->is_put = true;
	else
		elog(ERROR, "unsupported HTTP method \"%s\"", req->method);

	client->target.method = req->method;
	client->target.description = req->description ? req->description : "the cloud API";
	client->target.scheme = "https";
	if (!HttpParseUrlScheme(req->url, req->metadata, &client->target.scheme,
							&client->target.host, &port, &client->target.path))
	{
		resp->transport_error = req->metadata
			? psprintf("refusing to send %s to %s: its URL is neither a well-formed https URL nor http to a loopback or link-local address",
					   req->method, client->target.description)
			: psprintf("refusing to send %s to %s: its URL is not a well-formed https URL",
					   req->method, client->target.description);
		return false;
	}
	if (strcmp(port, strcmp(client->target.scheme, "http") == 0 ? "80" : "443") != 0)
		client->target.host = psprintf("%s:%s", client->target.host, port);

	HttpBuildHeaders(client, req);
	return true;
}

bool
HttpPerform(HttpClient *client, const HttpRequest *req, HttpResponse *resp)
{
	if (client->batch != NULL)
		elog(ERROR, "HTTP client already has a request in a batch");
	/* no catalog snapshot is held (pinning the xmin horizon) while we wait */
	InvalidateCatalogSnapshot();

	PG_TRY();
	{
		if (HttpPrepare(client, req, resp))
		{
			if (req->delay_ms > 0)
				HttpWait(req->delay_ms);
			for (;;)
			{
				CURLcode	rc;
				bool		retryable;
				long		delay_ms = HttpPaceDelayMs(client);

				if (delay_ms > 0)
					HttpWait(delay_ms);
				HttpAttemptBegin(client);
				rc = curl_easy_perform(client->curl);
				HttpAttemptEnd(client, rc, &retryable);
				if (HttpAfterAttempt(client, rc, retryable, &delay_ms))
					break;
				HttpWait(delay_ms);
			}
		}
	}
	PG_FINALLY();
	{
		HttpRequestDone(client);
	}
	PG_END_TRY();

	HttpBodyGuardDisarm(client);
	return client->result;
}

/* ------------------------------------------------------------------------
 * Batches: concurrent requests over one curl multi handle
 * ------------------------------------------------------------------------ */

/* Reset callback of the batch's memory context: runs on ERROR paths too. */
static void
HttpBatchRelease(void *arg)
{
	HttpBatch  *batch = (HttpBatch *) arg;

	ListCell   *lc;

	/* every client is let go, whatever state it is in */
	foreach(lc, batch->clients)
	{
		HttpClient *client = (HttpClient *) lfirst(lc);

		if (client->in_multi && batch->multi != NULL)
			curl_multi_remove_handle(batch->multi, client->curl);
		client->in_multi = false;
		client->batch = NULL;
		client->finished = false;
	}
	batch->clients = NIL;
	if (batch->multi != NULL)
	{
		curl_multi_cleanup(batch->multi);
		batch->multi = NULL;
	}
}

HttpBatch *
HttpBatchCreate(void)
{
	HttpBatch  *batch = palloc0(sizeof(HttpBatch));

	batch->cxt = CurrentMemoryContext;
	batch->release.func = HttpBatchRelease;
	batch->release.arg = batch;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &batch->release);

	batch->multi = curl_multi_init();
	if (batch->multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not create a libcurl multi handle")));
	return batch;
}

void
HttpBatchStart(HttpBatch *batch, HttpClient *client, const HttpRequest *req,
			   HttpResponse *resp)
{
	MemoryContext old;
	bool		prepared;

	if (client->batch != NULL)
		elog(ERROR, "HTTP client already has a request in a batch");
	prepared = HttpPrepare(client, req, resp);

	old = MemoryContextSwitchTo(batch->cxt);
	batch->clients = lappend(batch->clients, client);
	MemoryContextSwitchTo(old);
	client->batch = batch;
	client->in_multi = false;
	client->resp_cxt = CurrentMemoryContext;
	client->next_attempt_ms = req->delay_ms > 0 ? HttpUnixTimeMs() + req->delay_ms : 0;
	/* a malformed URL is an answer of its own, handed back at once */
	client->finished = !prepared;
}

/*
 * Start the attempts that are due, and return the earliest time (Unix ms)
 * at which a waiting one will be, or -1 if none waits.  *transfers says
 * whether any transfer is under way.
 */
static int64
HttpBatchStartDue(HttpBatch *batch, bool *transfers)
{
	int64		now_ms = HttpUnixTimeMs();
	int64		next_ms = -1;
	ListCell   *lc;

	*transfers = false;
	foreach(lc, batch->clients)
	{
		HttpClient *client = (HttpClient *) lfirst(lc);

		if (client->finished)
			continue;
		if (!client->in_multi && client->next_attempt_ms <= now_ms)
		{
			/* paced once per attempt, as HttpPerform does */
			long		pace_ms = client->paced ? 0 : HttpPaceDelayMs(client);

			if (pace_ms > 0)
			{
				client->next_attempt_ms = now_ms + pace_ms;
				client->paced = true;
			}
			else
			{
				MemoryContext old = MemoryContextSwitchTo(client->resp_cxt);
				CURLMcode	mc;

				HttpAttemptBegin(client);
				MemoryContextSwitchTo(old);
				mc = curl_multi_add_handle(batch->multi, client->curl);
				if (mc != CURLM_OK)
					ereport(ERROR,
							(errcode(ERRCODE_INTERNAL_ERROR),
							 errmsg("could not start %s %s to %s: %s", client->target.method,
									client->target.path, client->target.description,
									curl_multi_strerror(mc))));
				client->in_multi = true;
			}
		}
		if (client->in_multi)
			*transfers = true;
		else if (next_ms < 0 || client->next_attempt_ms < next_ms)
			next_ms = client->next_attempt_ms;
	}
	return next_ms;
}

/* Let curl move the transfers on, and end the attempts that are over. */
static void
HttpBatchPerform(HttpBatch *batch)
{
	CURLMsg    *msg;
	CURLMcode	mc;
	int			running;
	int			queued;

	mc = curl_multi_perform(batch->multi, &running);
	if (mc != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("libcurl failed: %s", curl_multi_strerror(mc))));

	while ((msg = curl_multi_info_read(batch->multi, &queued)) != NULL)
	{
		HttpClient *client = NULL;
		CURLcode	rc;
		bool		retryable;
		long		delay_ms;
		MemoryContext old;

		if (msg->msg != CURLMSG_DONE)
			continue;
		/* msg does not survive curl_multi_remove_handle: read it first */
		rc = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &client);
		Assert(client != NULL && client->batch == batch && client->in_multi);
		curl_multi_remove_handle(batch->multi, client->curl);
		client->in_multi = false;

		old = MemoryContextSwitchTo(client->resp_cxt);
		HttpAttemptEnd(client, rc, &retryable);
		if (HttpAfterAttempt(client, rc, retryable, &delay_ms))
			client->finished = true;
		else
			client->next_attempt_ms = HttpUnixTimeMs() + delay_ms;
		MemoryContextSwitchTo(old);
	}
}

void
HttpBatchProgress(HttpBatch *batch)
{
	bool		transfers;

	(void) HttpBatchStartDue(batch, &transfers);
	if (transfers)
		HttpBatchPerform(batch);
}

HttpClient *
HttpBatchWait(HttpBatch *batch, bool *ok)
{
	/* no catalog snapshot is held (pinning the xmin horizon) while we wait */
	InvalidateCatalogSnapshot();
	for (;;)
	{
		ListCell   *lc;
		bool		transfers;
		int64		next_ms;
		long		timeout_ms = HTTP_BATCH_POLL_MS;

		CHECK_FOR_INTERRUPTS();
		if (!PostmasterIsAlive())
			proc_exit(1);

		/*
		 * Start what is due before handing anything back: a request queued
		 * while the caller worked on an answer goes out now, not after every
		 * other answer waiting here has been worked on too.
		 */
		next_ms = HttpBatchStartDue(batch, &transfers);
		if (transfers)
			HttpBatchPerform(batch);
		foreach(lc, batch->clients)
		{
			HttpClient *client = (HttpClient *) lfirst(lc);

			if (client->finished)
			{
				*ok = client->result;
				HttpRequestDone(client);
				HttpBatchDetach(client);
				HttpBodyGuardDisarm(client);
				return client;
			}
		}
		if (batch->clients == NIL)
			return NULL;

		if (next_ms >= 0)
			timeout_ms = (long) Min(Max(next_ms - HttpUnixTimeMs(), 0), timeout_ms);
		if (transfers)
		{
			long		curl_ms = -1;
			CURLMcode	mc;

			if (curl_multi_timeout(batch->multi, &curl_ms) == CURLM_OK && curl_ms >= 0)
				timeout_ms = Min(timeout_ms, curl_ms);
			if (timeout_ms > 0)
			{
				pgstat_report_wait_start(PG_WAIT_EXTENSION);
				mc = curl_multi_poll(batch->multi, NULL, 0, (int) timeout_ms, NULL);
				pgstat_report_wait_end();
				if (mc != CURLM_OK)
					ereport(ERROR,
							(errcode(ERRCODE_INTERNAL_ERROR),
							 errmsg("libcurl failed: %s", curl_multi_strerror(mc))));
			}
		}
		else if (timeout_ms > 0)
			HttpWait(timeout_ms);
	}
}

#ifdef CLOUDCONN_FUZZ
#include "http_fuzz.c"
#endif
