/* session.h — per-connection protocol state: recognises the protocol from the
 * first bytes (through the protocol table, parsers/protocol.h), maps
 * read/write to request/response streams by the connection's role, and feeds
 * the right parser. Completed exchanges go to a sink. */
#ifndef PERISCOPE_SESSION_H
#define PERISCOPE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "conn/conn_table.h"
#include "parsers/protocol.h"
#include "periscope_abi.h"

/* actor: who moved the bytes of the event that completed (or started) it,
 * as trace_links.h describes (thread id, and goroutine for Go programs).
 * kind says which exchange struct ex points to (see parsers/protocol.h). */
struct session_sink {
	void (*exchange)(void *ctx, struct conn *c, enum l7_protocol kind, const void *ex,
	                 uint64_t actor);
	/* a request's head was parsed (ids are decided here, see trace_links.h) */
	void (*request)(void *ctx, struct conn *c, enum l7_protocol kind, const void *req,
	                uint64_t actor);
	/* bytes of c moved by actor, just before (before_feed) and after the
	 * parser saw them; request_hook: the protocol reports request starts */
	void (*io)(void *ctx, struct conn *c, uint64_t actor, bool ingress, bool before_feed,
	           bool request_hook);
	/* whether the kernel may have lost events of c since it was last seen
	 * (then requests waiting at its end are dropped, not reported failed) */
	bool (*lost_since)(void *ctx, const struct conn *c);
	/* c's parser started over (events were lost): forget its requests in flight */
	void (*reset)(void *ctx, struct conn *c);
	void *ctx;
	/* the parsers' per-request blocks (l7_pool__new; may be NULL), outliving
	 * every session fed with this sink */
	struct mem_pool *pool;
};

struct session_stats {
	uint64_t unrecognised_conns; /* connections given up on */
	uint64_t parse_errors;       /* chunks a parser rejected */
	uint64_t resyncs;            /* parsers restarted after the kernel lost events */
	uint64_t alloc_failures;
	uint64_t switches; /* connections that changed protocol (h2c upgrades) */
};

/* Feeds one data event of connection c. */
void session_on_data(struct conn *c, const struct pscope_data_event *e,
                     const struct session_sink *sink, struct session_stats *st);
/* The connection ended at ts_ns (how: enum l7_end): parsers finish what the
 * end completes and report requests left unanswered as failed. */
void session_on_close(struct conn *c, uint64_t ts_ns, uint32_t tid, enum l7_end how);
/* Frees c's protocol state (called when the connection leaves the table). */
void session_free(struct conn *c);

#endif
