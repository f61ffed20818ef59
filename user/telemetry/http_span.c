/* http_span.c — turns one HTTP/1.x exchange on a connection into an OTel span
 * (HTTP semantic conventions). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "telemetry/http_span.h"
#include "telemetry/resource.h"
#include "conn/trace_links.h"
#include "util/text.h"

static const char *const known_methods[] = {"GET",   "POST",    "PUT",     "DELETE", "HEAD",
                                            "PATCH", "OPTIONS", "CONNECT", "TRACE"};

static const char other_method[] = "_OTHER";

const char *http_method_normalize(const char *m)
{
	for (size_t i = 0; i < sizeof(known_methods) / sizeof(known_methods[0]); i++)
		if (m[0] == known_methods[i][0] && !strcmp(m, known_methods[i]))
			return known_methods[i];
	return other_method;
}

/* The port after a Host header's colon: 0 unless 1..65535 in digits only. */
static int parse_port(const char *s)
{
	int port = 0;

	if (!*s)
		return 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return 0;
		port = port * 10 + (*s - '0');
		if (port > 65535)
			return 0;
	}
	return port;
}

/* Where the host name is in a Host value (host_split without the copy: the
 * name is cut to cap - 1 bytes as that copy would). */
static void host_locate(const char *host, size_t cap, const char **name, size_t *n, int *port)
{
	const char *colon;

	*port = 0;
	*name = host;
	if (host[0] == '[') {
		const char *end = strchr(host, ']');
		if (!end) {
			*n = strlen(host);
		} else {
			*name = host + 1;
			*n = (size_t)(end - host - 1);
			if (end[1] == ':')
				*port = parse_port(end + 2);
		}
	} else {
		colon = strrchr(host, ':');
		*n = colon ? (size_t)(colon - host) : strlen(host);
		if (colon)
			*port = parse_port(colon + 1);
	}
	if (*n > cap - 1)
		*n = cap - 1;
}

/* Splits a Host header into host and port (0 when absent or not a port). */
void http_host_split(const char *host, char *name, size_t name_len, int *port)
{
	const char *colon;
	size_t n;

	*port = 0;
	if (host[0] == '[') {
		const char *end = strchr(host, ']');
		if (!end) {
			text_copy(name, name_len, host, strlen(host));
			return;
		}
		text_copy(name, name_len, host + 1, (size_t)(end - host - 1));
		if (end[1] == ':')
			*port = parse_port(end + 2);
		return;
	}
	colon = strrchr(host, ':');
	n = colon ? (size_t)(colon - host) : strlen(host);
	text_copy(name, name_len, host, n);
	if (colon)
		*port = parse_port(colon + 1);
}

const char *http_failure_type(const struct http1_exchange *ex, bool server)
{
	return http_end_failure_type(ex->end_how, server);
}

const char *http_end_failure_type(uint8_t end_how, bool server)
{
	switch (end_how) {
	case L7_END_RESET:
		return "connection_reset";
	case L7_END_PEER_CLOSED:
		return "connection_closed";
	case L7_END_EXIT:
		return "process_exit";
	default: /* this side closed: a client gave up, a server dropped it */
		return server ? "no_response" : "timeout";
	}
}

/* "METHOD" or "METHOD route" into the span name. */
static void span_name_set(struct span *s, const char *method, const char *route)
{
	size_t n = text_copy(s->name, sizeof(s->name), method, strlen(method));

	if (route && route[0] && n + 1 < sizeof(s->name)) {
		s->name[n++] = ' ';
		text_copy(s->name + n, sizeof(s->name) - n, route, strlen(route));
	}
}

void http_span_start(struct span *s, const struct conn *c, struct resource *r,
                     const struct link_ctx *ids, const char *traceparent, const char *tracestate,
                     uint64_t start_ns, uint64_t end_ns, int64_t unix_offset_ns)
{
	bool server = c->ref.role == PSCOPE_ROLE_SERVER;

	s->kind = server ? SPAN_KIND_SERVER : SPAN_KIND_CLIENT;
	s->resource = resource_ref(r);
	memcpy(s->trace_id, ids->trace_id, 16);
	memcpy(s->span_id, ids->span_id, 8);
	memcpy(s->parent_span_id, ids->parent_span_id, 8);
	s->sampled = ids->sampled;
	if (traceparent && traceparent[0] && tracestate && tracestate[0])
		text_copy(s->trace_state, sizeof(s->trace_state), tracestate, strlen(tracestate));
	/* server: first request byte read → last response byte written;
	 * client: first request byte written → last response byte read */
	s->start_unix_ns = start_ns + unix_offset_ns;
	s->end_unix_ns = (end_ns > start_ns ? end_ns : start_ns) + unix_offset_ns;
}

void http_span_add_endpoints(struct span *s, struct conn *c, const char *host_header,
                             struct http_span_server *srv)
{
	bool server = c->ref.role == PSCOPE_ROLE_SERVER;
	char rbuf[INET6_ADDRSTRLEN], sbuf[INET6_ADDRSTRLEN];
	const char *remote, *addr, *host;
	size_t remote_len, addr_len, host_len;
	int host_port, port;

	remote = conn_addr_text(c, true, rbuf, &remote_len);
	host_locate(host_header, HTTP1_HOST_MAX, &host, &host_len, &host_port);
	if (host_len) {
		addr = host;
		addr_len = host_len;
	} else if (server) {
		addr = conn_addr_text(c, false, sbuf, &addr_len);
	} else {
		addr = remote;
		addr_len = remote_len;
	}
	port = host_port ? host_port : server ? c->ref.local_port : c->ref.remote_port;
	if (span_add_strn(s, "server.address", addr, addr_len) == 0) {
		if (srv)
			srv->address = span_attr_str(s, &s->attrs[s->n_attrs - 1]);
	} else if (srv) {
		srv->address = NULL;
	}
	if (srv)
		srv->port = span_add_int(s, "server.port", port) == 0 ? port : 0;
	else
		span_add_int(s, "server.port", port);
	if (server)
		span_add_strn(s, "client.address", remote, remote_len);
	span_add_strn(s, "network.peer.address", remote, remote_len);
	span_add_int(s, "network.peer.port", c->ref.remote_port);
}

void http_span_fill(struct span *s, const struct http_span_view *v, struct conn *c,
                    const char *route, struct resource *r, const struct link_ctx *ids,
                    int64_t unix_offset_ns, struct http_span_server *srv)
{
	bool server = c->ref.role == PSCOPE_ROLE_SERVER;
	const char *method = http_method_normalize(v->method);
	size_t path_len = strcspn(v->target, "?#");

	http_span_start(s, c, r, ids, v->traceparent, v->tracestate, v->start_ns, v->end_ns,
	                unix_offset_ns);
	span_name_set(s, method, server ? route : NULL);

	span_add_str(s, "http.request.method", method);
	/* a known method is returned as sent: only _OTHER can differ from it */
	if (method == other_method && strcmp(method, v->method))
		span_add_str(s, "http.request.method_original", v->method);
	span_add_strn(s, "url.path", v->target, path_len);
	span_add_str(s, "url.scheme", (c->flags & CONN_FLAG_TLS) ? "https" : "http");
	if (v->status)
		span_add_int(s, "http.response.status_code", v->status);
	if (server && route && route[0])
		span_add_str(s, "http.route", route);
	http_span_add_endpoints(s, c, v->host, srv);
	span_add_str(s, "network.protocol.version", v->version);
	if (v->user_agent && v->user_agent[0])
		span_add_str(s, "user_agent.original", v->user_agent);

	if (v->failure) {
		/* no (complete) response: the connection or stream ended first */
		s->status = SPAN_STATUS_ERROR;
		span_add_str(s, "error.type", v->failure);
	} else if (v->status >= 500 || (!server && v->status >= 400)) {
		char code[8];
		snprintf(code, sizeof(code), "%d", v->status);
		s->status = SPAN_STATUS_ERROR;
		span_add_str(s, "error.type", code);
	}
}

void http_span_build(struct span *s, const struct http1_exchange *ex, struct conn *c,
                     const char *route, struct resource *r, const struct link_ctx *ids,
                     int64_t unix_offset_ns, struct http_span_server *srv)
{
	struct http_span_view v = {
	    .method = ex->method,
	    .target = ex->target,
	    .host = ex->host,
	    .user_agent = ex->user_agent,
	    .traceparent = ex->traceparent,
	    .tracestate = ex->tracestate,
	    .status = ex->status,
	    .version = ex->version_minor == 0 ? "1.0" : "1.1",
	    .start_ns = ex->req_start_ns,
	    .end_ns = ex->resp_end_ns,
	    .failure = ex->failed ? http_failure_type(ex, c->ref.role == PSCOPE_ROLE_SERVER) : NULL,
	};

	http_span_fill(s, &v, c, route, r, ids, unix_offset_ns, srv);
}
