/* http1.h — incremental HTTP/1.x parser for one connection. It is fed both
 * byte streams of the connection (requests and responses) chunk by chunk, in
 * any split, and reports each completed request/response exchange. */
#ifndef PERISCOPE_HTTP1_H
#define PERISCOPE_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parsers/protocol.h"
#include "parsers/stream.h"

struct mem_pool;

#define HTTP1_METHOD_MAX      24
#define HTTP1_TARGET_MAX      512
#define HTTP1_HOST_MAX        256
#define HTTP1_UA_MAX          256
#define HTTP1_TRACEPARENT_MAX 64
#define HTTP1_TRACESTATE_MAX  256
#define HTTP1_H2_SETTINGS_MAX 128

/* One request and its final response. Strings are NUL-terminated, truncated
 * to fit; an absent header is "". */
struct http1_exchange {
	char method[HTTP1_METHOD_MAX];
	char target[HTTP1_TARGET_MAX]; /* request-target as sent (path and query) */
	bool target_truncated;
	char host[HTTP1_HOST_MAX];     /* Host header */
	char user_agent[HTTP1_UA_MAX]; /* User-Agent header */
	char traceparent[HTTP1_TRACEPARENT_MAX];
	char tracestate[HTTP1_TRACESTATE_MAX];
	uint8_t version_major; /* of the request line: 1 */
	uint8_t version_minor; /* 0 or 1 */
	int status;            /* final (non-1xx) status code */
	/* the header block was not seen whole: the capture ended inside it,
	 * or a malformed line ended it */
	bool headers_truncated;
	/* bytes of body, decoded from chunking (raw bytes once the chunked
	 * framing was lost to uncaptured bytes) */
	uint64_t request_body_size;
	uint64_t response_body_size;
	uint64_t req_start_ns;  /* first request byte (ts_first of its chunk) */
	uint64_t req_end_ns;    /* last request byte */
	uint64_t resp_start_ns; /* first byte of the final response */
	uint64_t resp_end_ns;   /* last response byte */
	uint64_t seq;           /* the request's number on this connection, from 0 */
	/* no response: the connection ended (how: enum l7_end) while the request
	 * waited; status is 0 and resp_end_ns is when it ended */
	bool failed;
	uint8_t end_how;
	/* the request asked for "Upgrade: h2c" (HTTP2-Settings kept, truncated) */
	bool upgrade_h2c;
	char http2_settings[HTTP1_H2_SETTINGS_MAX];
};

struct http1_stats {
	uint64_t exchanges;    /* reported through the callback */
	uint64_t parse_errors; /* garbage skipped while looking for a message start */
	uint64_t unanswered;   /* requests dropped without a response (queue overflow) */
	uint64_t
	    failed; /* of exchanges: requests without a response (the connection ended first) */
	uint64_t orphan_responses; /* responses with no request to pair with */
};

typedef void (*http1_exchange_fn)(void *ctx, const struct http1_exchange *ex);
/* A request's head (line and headers) was parsed: req has the request fields
 * and seq; the response fields are not set yet. */
typedef void (*http1_request_fn)(void *ctx, const struct http1_exchange *req);

struct http1_parser;

/* fn is called once per completed exchange, from inside http1_parser_feed or
 * http1_parser_close. NULL on ENOMEM. */
struct http1_parser *http1_parser__new(http1_exchange_fn fn, void *ctx);
void http1_parser__free(struct http1_parser *p); /* accepts NULL */
/* Also report each request when its head is parsed (same ctx as fn). */
void http1_parser_set_request_fn(struct http1_parser *p, http1_request_fn fn);
/* Take the blocks of queued requests from pool (NULL: malloc), which must
 * outlive the parser. Call before the first feed. */
void http1_parser_set_pool(struct http1_parser *p, struct mem_pool *pool);
/* The size of the block each queued request takes (for a pool). */
size_t http1_request_block_size(void);

/* http1_parser_feed's return when the connection stopped being HTTP/1: a
 * request with "Upgrade: h2c" was answered by "101 Switching Protocols".
 * http1_parser_upgrade tells where; the parser ignores what it is fed after. */
#define HTTP1_FEED_UPGRADED 1

/* Feeds one chunk of one direction. Returns 0, HTTP1_FEED_UPGRADED, -EBADMSG when some of the
 * bytes were not HTTP (the parser skips them and resynchronises on the next
 * message start; the connection stays usable), -ENOMEM when bytes were skipped
 * for lack of memory, -EINVAL on bad arguments. */
int http1_parser_feed(struct http1_parser *p, enum stream_dir dir, const struct stream_chunk *c);

/* The connection ended at ts_ns (how: enum l7_end): completes a response
 * delimited by close, and reports every request that never got one as a
 * failed exchange (failed, end_how, status 0). */
void http1_parser_close(struct http1_parser *p, uint64_t ts_ns, enum l7_end how);

/* After HTTP1_FEED_UPGRADED: the upgraded request (not reported as an HTTP/1
 * exchange: the new protocol answers it; resp_start_ns is the 101's first
 * byte) and, in *consumed, the bytes of the last chunk up to the end of the
 * 101 response head (the rest belongs to the new protocol). NULL otherwise. */
const struct http1_exchange *http1_parser_upgrade(const struct http1_parser *p, size_t *consumed);

void http1_parser_stats(const struct http1_parser *p, struct http1_stats *out);

/* Requests wait for their response. */
bool http1_parser_pending(const struct http1_parser *p);

/* Bytes the parser holds now (itself, queued requests, line buffers); a few
 * hundred when nothing is pending. */
size_t http1_parser_memory(const struct http1_parser *p);

/* Sniffs the first bytes of a stream: STREAM_DIR_REQUEST if they start an
 * HTTP/1.x request ("GET / HTTP/1.1..." — method token and space are enough
 * when len is short), STREAM_DIR_RESPONSE if they start with "HTTP/1.", else -1. */
int http1_detect(const uint8_t *data, size_t len);

#endif
