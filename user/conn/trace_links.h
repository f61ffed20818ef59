/* trace_links.h — which span caused which, from what the kernel shows, without
 * touching the application's traffic:
 *  - in-process causality: while a thread handles a server request (request
 *    read, response not yet written), the client requests that thread makes
 *    are children of that server span; a thread with more than one server
 *    request in flight (event loops) is ambiguous and links nothing;
 *  - same-node pairing: when both ends of a connection are local processes, the
 *    server span of a request is the child of the client span that sent it,
 *    found by the mirrored 4-tuple and the order of requests on the connection
 *    (from the server's side, or — when the server's read was seen first and
 *    already settled as a root — from a root client's side, which then takes
 *    the server's trace);
 *  - an incoming W3C traceparent wins over both.
 * Ids are decided when a request starts, so children and paired spans know
 * their parent before either span ends. One exception: a server request
 * whose ids went out as a root (a call it made ended, or it was answered)
 * while the request event of its known local client was not seen yet (that
 * event, stamped when the client's write returns, can come after the server's
 * read, its calls, even its answer): the spans of its trace wait
 * (trace_links_trace_open) until the client's request shows up, which becomes
 * its parent and takes the trace into its own, or the wait ends; the agent
 * fixes each span as it goes out (trace_links_span_settle).
 *
 * An actor is who moved a request's bytes: the thread id in the low 32 bits
 * and in the high 32 bits, for Go programs, a goroutine key, for event-loop
 * threads a tick key (0 otherwise). Precision first: a client request gets a
 * parent only on evidence that it works for that request, never because a
 * request happens to be in flight somewhere.
 *  - Threads: the thread's one server request in flight.
 *  - Go: the goroutine's server request only (goroutines move between
 *    threads; net/http's writer goroutine writes under its caller's goroutine,
 *    see bpf/go.bpf.h).
 *  - Event loops (a thread that waits in epoll; its events carry a tick, one
 *    per return from epoll_wait): a turn is owned by the server
 *    request it read, or by the parent of the client request whose response it
 *    read. A connection's first request belongs to the request whose turn
 *    opened it (when that turn was unambiguous); any other client request
 *    belongs to its turn's owner only when that owner is also the thread's one
 *    server request in flight and only as the turn's first client request. A
 *    turn that read nothing (a timer) belongs to nobody.
 *  - Phased loops (Node with its event-loop probes, LINK_TICK_PHASED_BIT): a
 *    tick is the work one socket read started, up to the next read or the
 *    next callback no read started (timers, immediates, write completions,
 *    accepts); its first client request belongs to the server request the
 *    read carried, whatever else is in flight (a response read's: only while
 *    that is the thread's one request); work in no read's segment is nobody's.
 *  - Python asyncio loops (with their probes; phased too, a boundary at every
 *    callback the loop runs): a task made in a read's segment works for the
 *    request that read carried, a task made in a task's step for that task's
 *    request; every call of a task's steps is its request's while that is in
 *    flight (trace_links_task).
 *  - A thread serving nothing itself (a worker pool's) links to nothing: the
 *    process's only request in flight may not be the one it works for.
 */
#ifndef PERISCOPE_TRACE_LINKS_H
#define PERISCOPE_TRACE_LINKS_H

#include <stdbool.h>
#include <stdint.h>

#include "conn/conn_table.h"
#include "conn/sampler.h"
#include "conn/trace_id.h"

/* Set in every goroutine key, so goroutine keys never equal a thread id. */
#define LINK_GOROUTINE_BIT 0x80000000u
/* Set in an actor's high word that carries an event-loop tick (its low 28
 * bits) instead of a goroutine key: the thread waits in epoll (an event loop). */
#define LINK_TICK_BIT  0x20000000u
#define LINK_TICK_MASK 0x0fffffffu
/* With LINK_TICK_BIT: no timer can have run in the turn so far
 * (PSCOPE_TICK_TIMER_SAFE); not part of the turn's key. */
#define LINK_TICK_SAFE_BIT 0x40000000u
/* With LINK_TICK_BIT: the tick is a phased loop's segment (PSCOPE_TICK_PHASED:
 * Node with its event-loop probes; the work one read started); part of the key. */
#define LINK_TICK_PHASED_BIT 0x10000000u

/* The actor of an event of thread tid whose pscope_conn_ref.tick is tick (non-zero). */
static inline uint64_t link_loop_actor(uint32_t tid, uint32_t tick)
{
	uint32_t hi = (tick & LINK_TICK_MASK) | LINK_TICK_BIT;

	if (tick & PSCOPE_TICK_TIMER_SAFE)
		hi |= LINK_TICK_SAFE_BIT;
	if (tick & PSCOPE_TICK_PHASED)
		hi |= LINK_TICK_PHASED_BIT;
	return (uint64_t)hi << 32 | tid;
}

/* A server request, by its connection and number (to find it again). */
struct link_ref {
	int32_t fd;
	uint32_t pad;
	uint64_t sock_id;
	uint64_t seq;
};

/* The ids of one request's span. */
struct link_ctx {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8];
	uint64_t seq;    /* the request's number on its connection (the parser's) */
	uint32_t tid;    /* the thread that read (server) or wrote (client) it */
	uint32_t gkey;   /* its goroutine key (Go programs), else 0 */
	uint32_t tick;   /* its event-loop tick key (LINK_TICK_BIT set), else 0 */
	bool timer_safe; /* with tick: no timer had run in the turn (LINK_TICK_SAFE_BIT) */
	/* client: the local server request it was linked to (local_parent) */
	struct link_ref parent;
	bool local_parent;
	uint64_t start_ns;
	bool has_parent;
	bool sampled;
	bool resolved;  /* server: parent settled (traceparent, pairing, or used) */
	bool consumed;  /* client: a paired server span took it as its parent */
	bool task_made; /* server: an asyncio task was made for it (trace_links_task) */
	bool no_task;   /* server: the callback that read it made no task (queued by the server) */
	bool provisional; /* server: its ids went out as a root while its local client's
	                   * request may still come (its trace waits in the agent) */
	bool child_done;  /* server: a call it made has completed (its ids are out) */
	uint32_t stream;  /* HTTP/2: the stream id (the same at both ends), else 0 */
};

#define LINK_RING_MAX 8 /* pipelined (HTTP/1) or concurrent (HTTP/2) requests per connection */

/* Per connection (conn->links), allocated on its first request. */
struct link_ring {
	struct link_ctx ctx[LINK_RING_MAX];
	uint8_t head, n;
	uint32_t next_req_seq;  /* numbers requests as they start */
	uint32_t next_done_seq; /* numbers exchanges as they complete */
};

struct trace_links_stats {
	uint64_t in_process_links; /* client spans given a local server parent */
	uint64_t ambiguous;        /* client spans left as roots: several requests on the thread */
	uint64_t no_parent;        /* client spans left as roots: no server request in flight */
	uint64_t loop_links;       /* of in_process_links: through an event-loop turn's owner */
	uint64_t paired;           /* server spans given a local client parent */
	uint64_t moved; /* of those, whose trace moved into the client's after spans of it waited */
	uint64_t remote_parents; /* server spans continuing an incoming traceparent */
	uint64_t unlinked;    /* exchanges without a ring entry (pipelining deeper than the ring) */
	uint64_t tasks_made;  /* Python asyncio tasks seen made (trace_links_task) */
	uint64_t tasks_owned; /* of those, made for a server request */
	uint64_t conn_task_steps; /* steps of a connection's task given its next request */
};

struct trace_links;

struct trace_links *trace_links__new(struct conn_table *conns, struct id_gen *ids,
                                     const struct sampler *sampler);
void trace_links__free(struct trace_links *tl); /* accepts NULL */

/* Frees a connection's ring (call when the connection is released). */
void trace_links_forget_conn(struct trace_links *tl, struct conn *c);

/* Request seq started on c (its role decides how): actor moved its bytes.
 * traceparent: the request's header ("" or NULL when absent). */
void trace_links_request(struct trace_links *tl, struct conn *c, uint64_t actor, uint64_t ts_ns,
                         uint64_t seq, const char *traceparent);

/* The same for an HTTP/2 stream: its id pairs it with the other end's. */
void trace_links_request_stream(struct trace_links *tl, struct conn *c, uint64_t actor,
                                uint64_t ts_ns, uint64_t seq, uint32_t stream,
                                const char *traceparent);

/* An exchange of c completed: fills out with its ids. Without a recorded
 * request (has_seq false: a protocol without a request hook, or a request
 * whose head was never seen whole) they are decided now: traceparent first,
 * then, for a client, the server request of actor. A server exchange also
 * ends its thread's (and goroutine's) link. */
void trace_links_complete(struct trace_links *tl, struct conn *c, uint64_t actor, bool has_seq,
                          uint64_t seq, const char *traceparent, struct link_ctx *out);

/* Bytes of c moved by actor (before the parsers see them: before_feed; after:
 * !before_feed). On event-loop threads this is what tells which request a
 * turn of the loop works for: a server request being read owns the turn, and
 * so does the parent of a client request whose response is being read; a
 * write on a connection whose protocol reports no request start (databases)
 * takes the turn's owner as its parent now. */
void trace_links_io(struct trace_links *tl, struct conn *c, uint64_t actor, bool ingress,
                    bool before_feed, bool request_hook);

/* Client connection c was opened by actor (connect): on an event loop, its
 * first request belongs to the owner of that turn when the turn that writes
 * it read nothing (the write waited for the connect to complete). */
void trace_links_connect(struct trace_links *tl, struct conn *c, uint64_t actor);

/* A Python asyncio task (its address in pid) was made (enter false) or began
 * a step (enter true) in actor's segment (a phased tick; others are ignored).
 * A task made in a segment whose owner is sure (a read's one server request,
 * or a step of a task made for one) works for that request: every client
 * request and log line of its steps is that request's while it is in flight. */
void trace_links_task(struct trace_links *tl, uint32_t pid, uint64_t actor, uint64_t task,
                      bool enter);

/* Retries same-node pairing for server requests still unresolved (call after
 * each batch of events: the client's event may come just after the server's). */
void trace_links_flush(struct trace_links *tl);

/* A span of this trace must wait before it goes out: the trace belongs to a
 * server request whose local client's request may still come (see the top). */
bool trace_links_trace_open(struct trace_links *tl, const uint8_t trace_id[16]);

/* A span goes out now: applies what pairing decided (its trace moved into the
 * client's, its parent when it is the paired server request's span, sampled)
 * and ends the wait of its trace (a span of it is out as it is). */
void trace_links_span_settle(struct trace_links *tl, uint8_t trace_id[16], const uint8_t span_id[8],
                             uint8_t parent_span_id[8], uint8_t *sampled);

/* Which server request actor of pid is serving right now (for its log
 * lines): the rules that give a client request its parent — the goroutine's
 * request (Go), the owner of the event-loop turn when it is also the thread's
 * one request, else the thread's one request. Fills out with that request's
 * ids (parent settled first) and returns true; false when none or ambiguous. */
bool trace_links_context(struct trace_links *tl, uint32_t pid, uint64_t actor,
                         struct link_ctx *out);

void trace_links_get_stats(const struct trace_links *tl, struct trace_links_stats *out);

#endif
