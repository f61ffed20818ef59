/* http_span.h — turns one HTTP/1.x exchange on a connection into an OTel span
 * (HTTP semantic conventions). */
#ifndef PERISCOPE_HTTP_SPAN_H
#define PERISCOPE_HTTP_SPAN_H

#include <stdbool.h>
#include <stdint.h>

#include "conn/conn_addr.h"
#include "conn/conn_table.h"
#include "parsers/http1.h"
#include "telemetry/span.h"
#include "conn/trace_id.h"

struct resource;
struct link_ctx;

/* The span's server.address and server.port, for the metrics: the address is
 * its attribute's value in the span's arena (NULL when the span had no room
 * for the attribute), the port 0 when absent. */
struct http_span_server {
	const char *address;
	int port;
};

/* Fills s (which the caller has span_init'ed). route is the low-cardinality
 * route template of the path (NULL: none); server spans get http.route and the
 * name "METHOD route". unix_offset_ns converts the exchange's monotonic
 * timestamps to Unix time. The span takes a reference on r. srv (NULL: not
 * wanted) gets the server endpoint. c keeps its addresses' text. */
void http_span_build(struct span *s, const struct http1_exchange *ex, struct conn *c,
                     const char *route, struct resource *r, const struct link_ctx *ids,
                     int64_t unix_offset_ns, struct http_span_server *srv);

/* What an HTTP span is built from, whatever the version (HTTP/1.x, HTTP/2). */
struct http_span_view {
	const char *method, *target, *host, *user_agent, *traceparent, *tracestate;
	int status;          /* 0: none */
	const char *version; /* network.protocol.version */
	uint64_t start_ns, end_ns;
	const char *failure; /* error.type when no complete response came, else NULL */
};

/* http_span_build for any version. */
void http_span_fill(struct span *s, const struct http_span_view *v, struct conn *c,
                    const char *route, struct resource *r, const struct link_ctx *ids,
                    int64_t unix_offset_ns, struct http_span_server *srv);

/* What every request/response span shares: kind by role, resource, ids,
 * tracestate (kept when a traceparent came with it), start and end. */
void http_span_start(struct span *s, const struct conn *c, struct resource *r,
                     const struct link_ctx *ids, const char *traceparent, const char *tracestate,
                     uint64_t start_ns, uint64_t end_ns, int64_t unix_offset_ns);

/* Adds server.address/port (from the Host or :authority value, else the
 * connection's server end), client.address on a server span, and
 * network.peer.address/port; srv (NULL: not wanted) gets the server's. */
void http_span_add_endpoints(struct span *s, struct conn *c, const char *host_header,
                             struct http_span_server *srv);

/* Splits a Host (or :authority) value into host and port (0: none). */
void http_host_split(const char *host, char *name, size_t name_len, int *port);

/* http_failure_type by how the connection ended (enum l7_end). */
const char *http_end_failure_type(uint8_t end_how, bool server);

/* The method as exported: one of the nine standard methods, else "_OTHER". */
const char *http_method_normalize(const char *method);

/* error.type of a request that got no response (ex->failed), by how its
 * connection ended: connection_reset (RST), connection_closed (the peer
 * closed first), timeout (a client closed it while waiting: a timeout or a
 * cancellation), no_response (a server closed it without answering),
 * process_exit (the process ended with it open). */
const char *http_failure_type(const struct http1_exchange *ex, bool server);

#endif
