/* session.h — per-connection protocol state: recognises the protocol from the
 * first bytes, maps read/write to request/response streams by the connection's
 * role, and feeds the right parser. Completed exchanges go to a sink. */
#ifndef PERISCOPE_SESSION_H
#define PERISCOPE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "conn/conn_table.h"
#include "parsers/db_exchange.h"
#include "parsers/http1.h"
#include "periscope_abi.h"

enum l7_protocol {
	L7_UNKNOWN = 0, /* not recognised yet */
	L7_HTTP1 = 1,
	L7_PGSQL = 2,
	L7_MYSQL = 3,
	L7_REDIS = 4,
	L7_NONE = 255, /* gave up: not a protocol we parse */
};

/* actor: who moved the bytes of the event that completed (or started) it,
 * as trace_links.h describes (thread id, and goroutine for Go programs). */
struct session_sink {
	void (*http)(void *ctx, struct conn *c, const struct http1_exchange *ex, uint64_t actor);
	/* a request's head was parsed (ids are decided here, see trace_links.h) */
	void (*http_request)(void *ctx, struct conn *c, const struct http1_exchange *req,
	                     uint64_t actor);
	void (*db)(void *ctx, struct conn *c, const struct db_exchange *ex, uint64_t actor);
	/* c's parser started over (events were lost): forget its requests in flight */
	void (*reset)(void *ctx, struct conn *c);
	void *ctx;
};

struct session_stats {
	uint64_t unrecognised_conns; /* connections given up on */
	uint64_t parse_errors;       /* chunks a parser rejected */
	uint64_t resyncs;            /* parsers restarted after the kernel lost events */
	uint64_t alloc_failures;
};

/* Feeds one data event of connection c. */
void session_on_data(struct conn *c, const struct pscope_data_event *e,
                     const struct session_sink *sink, struct session_stats *st);
/* The connection closed at ts_ns: parsers finish what close completes. */
void session_on_close(struct conn *c, uint64_t ts_ns, uint32_t tid);
/* Frees c's protocol state (called when the connection leaves the table). */
void session_free(struct conn *c);

#endif
