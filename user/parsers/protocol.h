/* protocol.h — what the session layer needs of a protocol parser, as one table
 * of operations per protocol. Adding a protocol is one parser module that
 * defines a `struct l7_ops` plus one entry in l7_protocols (protocol.c); the
 * session recognises, creates, feeds and closes parsers only through these. */
#ifndef PERISCOPE_PROTOCOL_H
#define PERISCOPE_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "parsers/stream.h"

struct mem_pool;

enum l7_protocol {
	L7_UNKNOWN = 0, /* not recognised yet */
	L7_HTTP1 = 1,
	L7_PGSQL = 2,
	L7_MYSQL = 3,
	L7_REDIS = 4,
	L7_HTTP2 = 5,
	L7_NONE = 255, /* gave up: not a protocol we parse */
};

/* How a connection ended, as far as the parser's open requests are concerned:
 * a request still waiting for its answer then ends with this. */
enum l7_end {
	L7_END_CLOSE = 0,       /* this process closed it (a client that gave up waiting) */
	L7_END_PEER_CLOSED = 1, /* the peer closed its end (FIN) first */
	L7_END_RESET = 2,       /* the connection was reset (RST) */
	L7_END_EXIT = 3,        /* this process exited with the connection open */
	L7_END_LOST = 4,        /* closed after the kernel lost some of its data: requests
	                           still open may have been answered, so they are dropped */
};

/* Where a parser reports to. `kind` tells the receiver which struct ex points
 * to: each protocol documents its exchange type (http1_exchange, db_exchange…). */
struct l7_callbacks {
	/* a request and its answer (or its failure) are complete */
	void (*exchange)(void *ctx, enum l7_protocol kind, const void *ex);
	/* a request has started (its head was parsed): trace ids are decided here */
	void (*request)(void *ctx, enum l7_protocol kind, const void *req);
	void *ctx;
	/* recycles the parsers' per-request blocks (l7_pool__new; may be NULL):
	 * shared by every connection, it outlives their parsers */
	struct mem_pool *pool;
};

/* A connection changing protocol mid-stream (HTTP/1.1 "Upgrade: h2c"
 * answered by 101): the old parser's feed returns L7_FEED_SWITCH, its
 * switch_info says to what, and the new protocol's create_switched builds a
 * parser from that; the rest of the chunk goes to the new parser. */
#define L7_FEED_SWITCH 1

struct l7_switch {
	enum l7_protocol from, to;
	/* the old protocol's account of the handover, as it documents (HTTP/1:
	 * the upgraded request, a struct http1_exchange), valid until the old
	 * parser is destroyed */
	const void *state;
	size_t consumed; /* bytes of the chunk fed that were the old protocol's */
};

struct l7_ops {
	enum l7_protocol id;
	const char *name;
	/* Do these first bytes start this protocol's stream dir? dir < 0: either
	 * direction (the connection's role is unknown). Returns the stream the
	 * bytes start (STREAM_DIR_REQUEST or _RESPONSE), or -1. */
	int (*detect)(const uint8_t *data, size_t len, int dir);
	/* false: the server's own side of the connection is not parsed (databases:
	 * their clients' spans describe the same operations) */
	bool parse_server_side;
	/* the parser reports request starts (l7_callbacks.request) */
	bool request_hook;
	void *(*create)(const struct l7_callbacks *cb); /* NULL on ENOMEM */
	void (*destroy)(void *parser);                  /* accepts NULL */
	/* as http1_parser_feed: 0, or a negative errno for bytes it had to skip,
	 * or L7_FEED_SWITCH (the connection changes protocol, see switch_info) */
	int (*feed)(void *parser, enum stream_dir dir, const struct stream_chunk *c);
	/* after L7_FEED_SWITCH: fills sw; false if there is no switch (optional) */
	bool (*switch_info)(void *parser, struct l7_switch *sw);
	/* a parser taking over a connection from another protocol (optional);
	 * NULL when it cannot (sw not understood, ENOMEM) */
	void *(*create_switched)(const struct l7_callbacks *cb, const struct l7_switch *sw);
	/* several requests in flight at once, answered in any order (HTTP/2
	 * streams): trace links then look requests up by seq, never by age */
	bool multiplexed;
	/* the connection ended at ts_ns, how as above */
	void (*close)(void *parser, uint64_t ts_ns, enum l7_end how);
	/* requests wait for an answer (close would report them as failed);
	 * optional: without it, close reports no failures */
	bool (*pending)(const void *parser);
};

/* Every protocol, in the order detection tries them. */
extern const struct l7_ops *const l7_protocols[];
extern const size_t l7_protocol_count;

/* The ops of a protocol id, or NULL. */
const struct l7_ops *l7_ops_of(uint8_t id);

/* A pool for l7_callbacks.pool, sized for the parsers' per-request blocks
 * (mem_pool__free frees it). NULL on ENOMEM. */
struct mem_pool *l7_pool__new(void);

#endif
