/* http2.h — passive HTTP/2 parser for one connection (RFC 9113). It is fed
 * both byte streams (client → server as STREAM_DIR_REQUEST, server → client
 * as STREAM_DIR_RESPONSE) chunk by chunk, in any split, and reports each
 * stream's request/response exchange when the stream ends, plus a hook when a
 * request's header block is complete. The same shape as http1.h so a session
 * can treat both alike. */
#ifndef PERISCOPE_HTTP2_H
#define PERISCOPE_HTTP2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parsers/protocol.h"
#include "parsers/stream.h"

#define HTTP2_METHOD_MAX       24
#define HTTP2_PATH_MAX         512
#define HTTP2_AUTHORITY_MAX    256
#define HTTP2_SCHEME_MAX       16
#define HTTP2_CONTENT_TYPE_MAX 128
#define HTTP2_UA_MAX           256
#define HTTP2_TRACEPARENT_MAX  64
#define HTTP2_TRACESTATE_MAX   256
#define HTTP2_TE_MAX           32
#define HTTP2_GRPC_MESSAGE_MAX 256

#define HTTP2_STREAMS_MAX      1024         /* streams tracked per connection */
#define HTTP2_HEADER_BLOCK_MAX (256 * 1024) /* HEADERS + CONTINUATION bytes kept */
#define HTTP2_CONTINUATION_MAX 64           /* CONTINUATION frames per header block */

/* How a stream ended. */
enum http2_end {
	HTTP2_END_STREAM = 0, /* the response's END_STREAM flag */
	HTTP2_END_RST,        /* RST_STREAM (error_code) */
	HTTP2_END_GOAWAY,     /* above a GOAWAY's last stream id (error_code) */
	HTTP2_END_CLOSE,      /* the connection closed first */
};

/* One stream: the request and its response. Strings are NUL-terminated,
 * truncated to fit; absent is "". */
struct http2_exchange {
	uint32_t stream_id;
	char method[HTTP2_METHOD_MAX];
	char path[HTTP2_PATH_MAX]; /* :path as sent (path and query) */
	bool path_truncated;
	char authority[HTTP2_AUTHORITY_MAX]; /* :authority, else host */
	char scheme[HTTP2_SCHEME_MAX];
	char content_type[HTTP2_CONTENT_TYPE_MAX]; /* of the request */
	char user_agent[HTTP2_UA_MAX];
	char traceparent[HTTP2_TRACEPARENT_MAX];
	char tracestate[HTTP2_TRACESTATE_MAX];
	char te[HTTP2_TE_MAX];
	int status;      /* final (non-1xx) :status, 0 when none was seen */
	int grpc_status; /* grpc-status of the trailers (or Trailers-Only response), -1 absent */
	char grpc_message[HTTP2_GRPC_MESSAGE_MAX];
	bool trailers_only; /* gRPC Trailers-Only: grpc-status in the response HEADERS */
	/* some header could not be decoded: a late-joined connection's unknown
	 * dynamic-table references, or a header block lost or malformed */
	bool unknown_headers;
	bool request_complete;       /* the request's END_STREAM was seen */
	uint8_t end;                 /* enum http2_end */
	uint32_t error_code;         /* RST_STREAM / GOAWAY error code */
	uint64_t request_body_size;  /* DATA payload bytes, padding excluded */
	uint64_t response_body_size; /* (uncaptured bytes included) */
	uint64_t req_start_ns; /* the request HEADERS frame's first byte (ts_first of its chunk) */
	uint64_t req_end_ns;   /* the request's END_STREAM (ts_last of its chunk) */
	uint64_t
	    resp_start_ns;    /* the final response HEADERS frame's first byte (else resp_end_ns) */
	uint64_t resp_end_ns; /* END_STREAM, RST_STREAM, GOAWAY or close */
	uint64_t seq;         /* the request's number on this connection, from 0 */
	uint8_t end_how;      /* HTTP2_END_CLOSE: how the connection ended (enum l7_end) */
	uint64_t grpc_timeout_ns; /* the request's grpc-timeout, 0 when absent */
	bool hpack_late_join;     /* a header decoder of the connection was late-join then */
	/* the stream's first DATA bytes, per direction (bit 0 request, bit 1
	 * response), began with gRPC's length-prefixed message framing: tells a
	 * gRPC stream whose content-type a late-joined decoder could not read */
	uint8_t grpc_framed;
	bool conn_first; /* the first stream the connection reported */
};

struct http2_stats {
	uint64_t exchanges;    /* reported through the callback */
	uint64_t frames;       /* frames parsed (both directions) */
	uint64_t parse_errors; /* malformed frames, bytes skipped while hunting for frames */
	uint64_t hpack_errors; /* header blocks a synced decoder failed (it then goes late-join) */
	uint64_t unknown_headers;  /* fields with an unknown name or value */
	uint64_t lost_blocks;      /* header blocks lost (uncaptured, too large, cut) */
	uint64_t streams_overflow; /* requests not tracked: HTTP2_STREAMS_MAX in flight */
	uint64_t orphan_frames;    /* response HEADERS for streams not tracked */
	uint64_t resyncs;          /* frame boundaries lost and found again */
	bool preface_seen;         /* the client preface (or an h2c upgrade) started it */
	bool late_join;            /* the connection was joined or resynchronised mid-way */
};

typedef void (*http2_exchange_fn)(void *ctx, const struct http2_exchange *ex);
/* A request's header block is complete: req has the request fields, seq and
 * req_start_ns; the response fields are not set yet. */
typedef void (*http2_request_fn)(void *ctx, const struct http2_exchange *req);

struct http2_conn;

/* fn is called once per ended stream, from inside http2_conn_feed or
 * http2_conn_close. NULL on ENOMEM. */
struct http2_conn *http2_conn__new(http2_exchange_fn fn, void *ctx);
void http2_conn__free(struct http2_conn *c); /* accepts NULL */
void http2_conn_set_request_fn(struct http2_conn *c, http2_request_fn fn);

/* h2c: the HTTP/1.1 layer saw a request with "Upgrade: h2c" answered by
 * "101 Switching Protocols". req carries the upgraded request's fields
 * (method, path, authority, ..., req_start_ns, req_end_ns,
 * request_body_size); it becomes stream 1, its request complete. settings is
 * the request's HTTP2-Settings header value (base64url SETTINGS payload, may
 * be NULL). Call it on a new connection before feeding: the response bytes
 * after the 101 response's head are HTTP/2 frames, the client sends the
 * preface next. The request hook is not called for stream 1 (the HTTP/1
 * layer parsed its head). Returns 0, -EINVAL (not a new connection), -ENOMEM. */
int http2_conn__start_upgraded(struct http2_conn *c, const struct http2_exchange *req,
                               const char *settings, size_t settings_len);

/* Feeds one chunk of one direction. Returns 0, -EBADMSG when some bytes were
 * not understood (they are skipped; the connection stays usable), -ENOMEM,
 * -EINVAL on bad arguments. */
int http2_conn_feed(struct http2_conn *c, enum stream_dir dir, const struct stream_chunk *chunk);

/* The connection closed at ts_ns: every stream still open is reported
 * (HTTP2_END_CLOSE). */
void http2_conn_close(struct http2_conn *c, uint64_t ts_ns);
/* The same, saying how the connection ended (end_how of the streams reported). */
void http2_conn_close_how(struct http2_conn *c, uint64_t ts_ns, enum l7_end how);

void http2_conn_stats(const struct http2_conn *c, struct http2_stats *out);

/* Streams wait for their end. */
bool http2_conn_pending(const struct http2_conn *c);

/* Bytes the parser holds now. */
size_t http2_conn_memory(const struct http2_conn *c);

enum http2_detect_result {
	HTTP2_DETECT_NO = 0,  /* not HTTP/2 */
	HTTP2_DETECT_MORE,    /* too short to tell (a prefix of the preface, or < 9 bytes) */
	HTTP2_DETECT_PREFACE, /* starts with the client connection preface */
	HTTP2_DETECT_FRAMES,  /* starts with a plausible sequence of frames (joined late) */
};

/* Sniffs the first bytes of a stream (either direction). */
enum http2_detect_result http2_detect(const uint8_t *data, size_t len);

#endif
