/*
 * http.h
 *		The one place cloudconn talks HTTP (libcurl): HTTPS only, peer and
 *		host verification always on, no redirects, bounded responses,
 *		retries with backoff, rate-limit pacing, interruptible waits.  The
 *		one exception is AWS's metadata endpoints (HttpRequest.metadata),
 *		which are plain http on the local link: README, HTTP.
 *
 * An HttpClient owns one curl easy handle (reused, so connections are kept
 * alive across pages) and the rate-limit state of one credential; an
 * HttpBatch runs the requests of several clients concurrently.  It is
 * freed with the memory context it was created in, ERROR paths included.
 * Header values given to a request are treated as secrets: they never
 * appear in a message, a log line or curl's verbose output.  Hosts and
 * ports come from superuser-only settings, so messages (which reach users,
 * in runs.error and connector_test results) name a request by its
 * description instead; the host goes to the server log only.
 */
#ifndef CLOUDCONN_HTTP_H
#define CLOUDCONN_HTTP_H

#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

typedef struct HttpClient HttpClient;
typedef struct HttpResponse HttpResponse;

/*
 * Whether an HTTP response (a status was received) is retried, and how: a
 * throttled request ("slow down") backs off longer than one that met a
 * transient failure ("try again").  A provider's rule, for APIs that tell
 * these apart by an error code whatever the status (AWS's Query APIs
 * answer 400 Throttling).  It runs once curl has returned, outside curl's
 * callbacks, in the memory context of the response; it may allocate but
 * should not raise.  HttpRetryableStatus is the rule when a request has
 * none.
 */
typedef enum HttpRetryKind
{
	HTTP_NO_RETRY = 0,			/* the answer is final */
	HTTP_RETRY_TRANSIENT,		/* a transient failure: backoff from 500 ms */
	HTTP_RETRY_THROTTLED		/* throttled: backoff from 1 s */
} HttpRetryKind;

typedef HttpRetryKind (*HttpRetryClassifier) (const HttpResponse *resp, void *arg);

/*
 * Called before every attempt but the first, for a request whose headers
 * depend on when it is sent (AWS's X-Amz-Date and the signature over it):
 * it rebuilds the lines req->headers points at, in place.  It runs outside
 * curl's callbacks and may raise.
 */
typedef void (*HttpRequestRefresh) (void *arg);

typedef struct HttpRequest
{
	const char *method;			/* "GET", "POST" or "PUT" */
	const char *url;			/* absolute https:// URL */

	/*
	 * What is called, as messages name it: "the DigitalOcean API", "the
	 * configured AWS STS endpoint".  Never a host, port or URL (those are
	 * settings users may not read).  NULL: "the cloud API".
	 */
	const char *description;
	const char *const *headers; /* "Name: value" lines (values are secret) */
	int			nheaders;
	const char *body;			/* POST or PUT body, or NULL (may hold a secret: never copied) */
	size_t		body_len;

	/* which responses are retried (NULL: HttpRetryableStatus), and its argument */
	HttpRetryClassifier retry_response;
	void	   *retry_arg;
	/* headers rebuilt before each retry (NULL: sent as they are), and its argument */
	HttpRequestRefresh refresh_headers;
	void	   *refresh_arg;
	/*
	 * A metadata endpoint of the machine (EC2 instance metadata, a
	 * container's credentials endpoint).  Such a request may be plain
	 * http://, but then only to a literal loopback or link-local address
	 * (HttpMetadataUrlValid), never through a proxy; redirects are not
	 * followed, as for every request; its timeouts are short (1 s to
	 * connect, 3 s in all, at most 2 retries).
	 */
	bool		metadata;

	/*
	 * Wait this long before the first attempt: the caller's own pacing, for
	 * APIs whose rate-limit headers only the provider reads.  0: none.
	 */
	long		delay_ms;
} HttpRequest;

struct HttpResponse
{
	long		status;			/* HTTP status of the last attempt; 0 if none */
	StringInfoData body;		/* body of the last attempt (NUL-terminated) */
	int			attempts;		/* requests made, retries included */

	/*
	 * Set when no HTTP response could be had after every retry (connect,
	 * TLS, timeout, reset, truncated or oversized body): a message naming
	 * the request's description, method and path and what went wrong, never
	 * a host, a port or a header value (the server log gets the host and
	 * libcurl's own text).  status is then 0 (or the status of a response
	 * that was cut short).
	 */
	char	   *transport_error;

	/* response headers of the last attempt, lower-cased names */
	List	   *header_names;	/* of char * */
	List	   *header_values;	/* of char * */
};

/* Create a client in the current memory context. */
extern HttpClient *HttpClientCreate(void);

/* The default retry rule: 429 (throttled) and 5xx (transient server errors). */
extern HttpRetryKind HttpRetryableStatus(const HttpResponse *resp);

/*
 * Perform a request, retrying 429, 5xx (or what req->retry_response says)
 * and transport failures up to
 * cloudconn.http_max_retries times with exponential backoff and jitter,
 * honouring Retry-After and ratelimit-reset, and pacing requests when
 * ratelimit-remaining runs low.  Returns true if an HTTP response was
 * received (any status: the caller interprets it), false with
 * resp->transport_error set otherwise.  Query cancel and shutdown raise the
 * usual ERROR via CHECK_FOR_INTERRUPTS, within about a second.
 */
extern bool HttpPerform(HttpClient *client, const HttpRequest *req, HttpResponse *resp);

/*
 * Concurrent requests.  A batch runs the requests of several clients at
 * once (one each) over a curl multi handle, so that waiting on one does not
 * hold up the others; each request gets the retries, backoff and pacing of
 * HttpPerform.  The batch is freed with the memory context it was created
 * in; a client freed first leaves the batch by itself.
 */
typedef struct HttpBatch HttpBatch;

extern HttpBatch *HttpBatchCreate(void);

/*
 * Start req on client, answered into resp.  req, its strings and resp must
 * stay valid until HttpBatchWait hands the client back; resp's contents are
 * allocated in the memory context current here, which must live as long.
 */
extern void HttpBatchStart(HttpBatch *batch, HttpClient *client,
						   const HttpRequest *req, HttpResponse *resp);

/*
 * Wait until one of the batch's requests is over and hand back its client,
 * with *ok what HttpPerform would have returned for it; NULL if the batch
 * has no request.  Interrupts are acted on within a fraction of a second.
 */
extern HttpClient *HttpBatchWait(HttpBatch *batch, bool *ok);

/*
 * Let the batch's transfers move on without waiting: requests that are due
 * (started since, or done backing off) are sent, and what the servers sent
 * is read.  Transfers advance only inside batch calls, so a caller doing
 * long work between HttpBatchWait calls calls this now and then, and their
 * timeouts are not spent waiting on us.
 */
extern void HttpBatchProgress(HttpBatch *batch);

/* A response header by lower-case name, or NULL. */
extern const char *HttpResponseHeader(const HttpResponse *resp, const char *name);

/*
 * The origin of an https URL as "https://host:port" (host lower-cased, the
 * port always explicit, 443 by default), parsed with curl's URL API;
 * palloc'd.  NULL if the URL is not a well-formed https URL.  Two URLs are
 * same-origin when their origins are equal strings.
 */
extern char *HttpUrlOrigin(const char *url);

/*
 * Whether url may be a metadata request's: a well-formed https URL, or
 * http:// to a literal loopback or link-local address (127.0.0.0/8,
 * 169.254.0.0/16, ::1, fe80::/10) or AWS's IPv6 metadata addresses
 * (fd00:ec2::254, fd00:ec2::23).  Host names are refused for http.
 */
extern bool HttpMetadataUrlValid(const char *url);

#endif							/* CLOUDCONN_HTTP_H */
