/* http2_span.c — one HTTP/2 stream to one span: plain HTTP/2 through
 * http_span's builder, gRPC with the RPC semantic conventions. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "telemetry/http2_span.h"
#include "telemetry/http_span.h"
#include "util/text.h"

/* HTTP/2 error codes (RFC 9113 section 7) gRPC maps to statuses. */
#define H2_REFUSED_STREAM      0x7
#define H2_CANCEL              0x8
#define H2_ENHANCE_YOUR_CALM   0xb
#define H2_INADEQUATE_SECURITY 0xc

enum grpc_code {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
	GRPC_DATA_LOSS = 15,
	GRPC_UNAUTHENTICATED = 16,
};

/* A path gRPC could call: /service/method (or one the decoder could not read). */
static bool grpc_path_shape(const struct http2_exchange *ex)
{
	const char *p = ex->path, *slash;

	if (!p[0])
		return true;
	if (p[0] != '/' || !(slash = strchr(p + 1, '/')) || slash == p + 1 || !slash[1])
		return false;
	return !strchr(slash + 1, '/') && !strchr(p, '?');
}

bool http2_is_grpc(const struct http2_exchange *ex)
{
	if (!strncmp(ex->content_type, "application/grpc", 16))
		return true;
	if (ex->content_type[0])
		return false;
	if (ex->grpc_status >= 0)
		return true;
	/* a late-joined connection whose content-type is an unknown dynamic
	 * entry: the request body's gRPC message framing tells */
	return ex->unknown_headers && (ex->grpc_framed & 1) && grpc_path_shape(ex);
}

/* gRPC's doc/http-grpc-status-mapping.md */
static int grpc_from_http(int status)
{
	switch (status) {
	case 400:
		return GRPC_INTERNAL;
	case 401:
		return GRPC_UNAUTHENTICATED;
	case 403:
		return GRPC_PERMISSION_DENIED;
	case 404:
		return GRPC_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return GRPC_UNAVAILABLE;
	default:
		return GRPC_UNKNOWN;
	}
}

/* Did the stream end at (or past) its deadline? */
static bool at_deadline(const struct http2_exchange *ex)
{
	uint64_t d = ex->resp_end_ns > ex->req_start_ns ? ex->resp_end_ns - ex->req_start_ns : 0;

	return ex->grpc_timeout_ns && d >= ex->grpc_timeout_ns - ex->grpc_timeout_ns / 20;
}

static int grpc_status_derive(const struct http2_exchange *ex)
{
	if (ex->grpc_status >= 0)
		return ex->grpc_status;
	switch (ex->end) {
	case HTTP2_END_RST:
		switch (ex->error_code) {
		case H2_CANCEL:
			return at_deadline(ex) ? GRPC_DEADLINE_EXCEEDED : GRPC_CANCELLED;
		case H2_REFUSED_STREAM:
			return GRPC_UNAVAILABLE;
		case H2_ENHANCE_YOUR_CALM:
			return GRPC_RESOURCE_EXHAUSTED;
		case H2_INADEQUATE_SECURITY:
			return GRPC_PERMISSION_DENIED;
		default:
			return GRPC_INTERNAL;
		}
	case HTTP2_END_GOAWAY:
		return GRPC_UNAVAILABLE;
	case HTTP2_END_CLOSE:
		return at_deadline(ex) ? GRPC_DEADLINE_EXCEEDED : GRPC_UNAVAILABLE;
	default:
		break;
	}
	if (ex->unknown_headers)
		return -1; /* the trailers may have said, undecodably */
	if (ex->status && ex->status != 200)
		return grpc_from_http(ex->status);
	return ex->status == 200 ? GRPC_UNKNOWN : -1;
}

static bool server_error(int code)
{
	return code == GRPC_UNKNOWN || code == GRPC_DEADLINE_EXCEEDED ||
	       code == GRPC_UNIMPLEMENTED || code == GRPC_INTERNAL || code == GRPC_UNAVAILABLE ||
	       code == GRPC_DATA_LOSS;
}

void grpc_call_of(const struct http2_exchange *ex, bool server, struct grpc_call *out)
{
	const char *p = ex->path, *slash, *end;

	memset(out, 0, sizeof(*out));
	if (p[0] == '/' && !ex->path_truncated) {
		p++;
		end = p + strcspn(p, "?#");
		slash = memchr(p, '/', (size_t)(end - p));
		if (slash && slash > p && slash + 1 < end &&
		    !memchr(slash + 1, '/', (size_t)(end - slash - 1))) {
			text_copy(out->service, sizeof(out->service), p, (size_t)(slash - p));
			text_copy(out->method, sizeof(out->method), slash + 1,
			          (size_t)(end - slash - 1));
		}
	}
	out->status = grpc_status_derive(ex);
	out->error = out->status > 0 && (!server || server_error(out->status));
}

const char *http2_failure_type(const struct http2_exchange *ex, bool server)
{
	switch (ex->end) {
	case HTTP2_END_RST:
		return "stream_reset";
	case HTTP2_END_GOAWAY:
		return "goaway";
	case HTTP2_END_CLOSE:
		return http_end_failure_type(ex->end_how, server);
	default:
		return NULL;
	}
}

static const char *const grpc_code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

static void grpc_span_build(struct span *s, const struct http2_exchange *ex, struct conn *c,
                            struct resource *r, const struct link_ctx *ids, int64_t unix_offset_ns)
{
	bool server = c->ref.role == PSCOPE_ROLE_SERVER;
	struct grpc_call call;

	http_span_start(s, c, r, ids, ex->traceparent, ex->tracestate, ex->req_start_ns,
	                ex->resp_end_ns, unix_offset_ns);
	grpc_call_of(ex, server, &call);
	if (call.service[0])
		snprintf(s->name, sizeof(s->name), "%s/%s", call.service, call.method);
	else
		snprintf(s->name, sizeof(s->name), "grpc");

	span_add_str(s, "rpc.system", "grpc");
	if (call.service[0]) {
		span_add_str(s, "rpc.service", call.service);
		span_add_str(s, "rpc.method", call.method);
	}
	if (call.status >= 0)
		span_add_int(s, "rpc.grpc.status_code", call.status);
	http_span_add_endpoints(s, c, ex->authority, NULL);
	span_add_str(s, "network.protocol.name", "http");
	span_add_str(s, "network.protocol.version", "2");
	/* as on HTTP spans: https when the plaintext came from a TLS probe */
	span_add_str(s, "url.scheme", (c->flags & CONN_FLAG_TLS) ? "https" : "http");
	if (ex->user_agent[0])
		span_add_str(s, "user_agent.original", ex->user_agent);
	if (call.error) {
		s->status = SPAN_STATUS_ERROR;
		if (call.status < (int)(sizeof(grpc_code_names) / sizeof(grpc_code_names[0])))
			span_add_str(s, "error.type", grpc_code_names[call.status]);
		if (ex->grpc_message[0])
			text_copy(s->status_message, sizeof(s->status_message), ex->grpc_message,
			          strlen(ex->grpc_message));
	}
}

void http2_span_build(struct span *s, const struct http2_exchange *ex, struct conn *c,
                      const char *route, struct resource *r, const struct link_ctx *ids,
                      int64_t unix_offset_ns)
{
	struct http_span_view v = {
	    .method = ex->method[0] ? ex->method : "_OTHER",
	    .target = ex->path,
	    .host = ex->authority,
	    .user_agent = ex->user_agent,
	    .traceparent = ex->traceparent,
	    .tracestate = ex->tracestate,
	    .status = ex->status,
	    .version = "2",
	    .start_ns = ex->req_start_ns,
	    .end_ns = ex->resp_end_ns,
	};

	if (http2_is_grpc(ex)) {
		grpc_span_build(s, ex, c, r, ids, unix_offset_ns);
		return;
	}
	v.failure = http2_failure_type(ex, c->ref.role == PSCOPE_ROLE_SERVER);
	http_span_fill(s, &v, c, route, r, ids, unix_offset_ns, NULL);
}
