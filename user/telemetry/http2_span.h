/* http2_span.h — turns one HTTP/2 stream into an OTel span: plain HTTP/2 as
 * http_span does for HTTP/1.x (plus network.protocol.version=2), gRPC
 * (content-type application/grpc*) with the RPC conventions. */
#ifndef PERISCOPE_HTTP2_SPAN_H
#define PERISCOPE_HTTP2_SPAN_H

#include <stdbool.h>
#include <stdint.h>

#include "conn/conn_table.h"
#include "conn/trace_links.h"
#include "parsers/http2.h"
#include "telemetry/span.h"

struct resource;

#define GRPC_NAME_MAX 128

/* What a gRPC call is, from its stream. */
struct grpc_call {
	char service[GRPC_NAME_MAX]; /* "package.Service", "" when unknown */
	char method[GRPC_NAME_MAX];  /* "Method", "" when unknown */
	int status;                  /* rpc.grpc.status_code, -1 when unknown */
	bool error;                  /* the span's status is ERROR */
};

/* Is the stream a gRPC call? content-type application/grpc*, or (late join,
 * content-type not decoded) a grpc-status in the response. */
bool http2_is_grpc(const struct http2_exchange *ex);

/* The call's names and status: grpc-status from the trailers (or a
 * Trailers-Only response); else from how the stream ended (RST_STREAM
 * CANCEL: CANCELLED, or DEADLINE_EXCEEDED when it came at the request's
 * grpc-timeout; GOAWAY or close: UNAVAILABLE) or from :status as gRPC maps
 * HTTP statuses; -1 when nothing says (undecodable headers). error follows
 * the conventions: server UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED,
 * INTERNAL, UNAVAILABLE, DATA_LOSS; client any status but OK. */
void grpc_call_of(const struct http2_exchange *ex, bool server, struct grpc_call *out);

/* error.type of a stream that ended without a complete response, else NULL. */
const char *http2_failure_type(const struct http2_exchange *ex, bool server);

/* Fills s (span_init'ed). route: as http_span_build (plain HTTP/2 only). The
 * span takes a reference on r. */
void http2_span_build(struct span *s, const struct http2_exchange *ex, struct conn *c,
                      const char *route, struct resource *r, const struct link_ctx *ids,
                      int64_t unix_offset_ns);

#endif
