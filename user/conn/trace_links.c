/* trace_links.c — in-process causality by thread, same-node pairing by
 * mirrored 4-tuple, incoming traceparent first. */
#include <stdlib.h>
#include <string.h>

#include "conn/trace_links.h"
#include "parsers/protocol.h"

#define THREAD_SLOTS   65536 /* power of two; the most the thread table grows to */
#define THREAD_MIN     1024  /* power of two; its size at first */
#define MAX_UNRESOLVED 1024
#define LOOP_SLOTS     4096 /* power of two; direct-mapped by thread id */
#define MAX_HELD       64
#define TASK_SLOTS     4096 /* power of two; sets of TASK_WAYS by (pid, task) */
#define TASK_WAYS      4    /* a set's slots: its least recently used one is taken */

/* How long (event time) a server request whose client is on this host waits
 * for that client's request event: the two come from different CPUs' rings,
 * and the client's CPU may be held up (a descheduled vCPU) after its write
 * has woken the server. Requests from elsewhere get two batches. */
#define PAIR_WAIT_NS (250ull * 1000 * 1000)

/* One event-loop thread's current turn: who owns it (see trace_links.h). A
 * slot taken over by another thread only loses that thread's turn (its calls
 * become roots), never links them wrongly. */
struct loop_turn {
	uint32_t tid, pid;
	uint32_t tick;
	uint8_t owners;   /* 0, 1, or 2 for several */
	bool claimed;     /* a client request of this turn took the owner already */
	bool last_ok;     /* last names whose work the turn does now */
	bool by_response; /* owner came from a response read (its caller's request) */
	struct link_ref owner;
	struct link_ref last; /* the request the turn read last (or whose call's answer) */
	bool made;            /* phased: an asyncio task was made in the turn */
	bool task;            /* phased: the turn is one step of a Python asyncio task */
	bool task_owned;      /* ... made for the server request task_owner */
	uint64_t task_ptr;    /* ... that task */
	struct link_ref task_owner;
};

/* A Python asyncio task, as it was made: the server request whose work made
 * it (the read that carried the request, or a step of a task made for it).
 * Tasks end unseen, so a set's least recently made or stepped one gives way
 * to a new one; a live task that loses its slot only loses its owner (roots).
 * Direct-mapped, two live tasks (of any processes) sharing a slot lost one's
 * chain: ~4 such pairs in 180 tasks of a uvicorn front and its back. */
struct task_slot {
	uint64_t task; /* the object's address; 0: free */
	uint64_t used; /* trace_links.task_clock when last made or stepped */
	uint32_t pid;
	bool owned;
	struct link_ref owner;
	struct link_ref
	    wrote;      /* the server connection a step of it last wrote on (sock_id 0: none) */
	uint64_t maker; /* the task in whose step it was made, or 0 */
	bool for_conn;  /* made by a callback that read nothing (a connection_made's):
	                 * a connection's own task once it answers on one */
};

/* A thread handling server requests: the last one it started. */
struct thread_entry {
	uint32_t tid; /* 0: free slot */
	uint32_t pid;
	uint32_t inflight; /* server requests started on it and not yet answered */
	int32_t fd;        /* the connection of the last one */
	uint64_t sock_id;
	uint32_t seq;
};

struct unresolved {
	uint32_t pid;
	int32_t fd;
	uint64_t sock_id;
	uint64_t seq;
	uint64_t start_ns;
	uint32_t tries;
	bool local; /* its client may be on this host: waits PAIR_WAIT_NS */
};

/* A server request whose ids went out as a root while the request event of
 * its local client (known connection) had not been seen: that event, stamped
 * when the client's write has returned, can come after the server's read, its
 * calls, even its answer. Every span of its trace waits in the agent
 * (trace_links_trace_open) until the client's request shows up — it becomes
 * the request's parent, and a client with a trace of its own takes the whole
 * trace into it (movable: every span of the trace so far has waited) — or
 * until the entry closes (until_ns, or a span that could not wait). */
struct held {
	uint8_t family;
	uint8_t local_addr[16];  /* the server connection's 4-tuple: the client */
	uint8_t remote_addr[16]; /* finds it even after the server closed */
	uint16_t local_port, remote_port;
	uint64_t seq;
	uint32_t stream;      /* HTTP/2: its stream id */
	uint64_t until_ns;    /* event time: open until then */
	uint8_t trace_id[16]; /* the trace its ids went out in */
	uint8_t span_id[8];
	uint8_t to_trace[16]; /* paired: the trace it is in now */
	uint8_t parent_span_id[8];
	bool sampled; /* paired: to_trace's */
	bool movable;
	bool paired;
	bool closed;      /* paired, or no longer waiting: its spans go */
	bool closed_seen; /* closed at the last flush already */
};

struct trace_links {
	struct conn_table *conns;
	struct id_gen *ids;
	const struct sampler *sampler;
	struct thread_entry *threads; /* thread_cap slots, doubling while half full */
	size_t thread_cap;
	size_t n_threads;
	struct unresolved unresolved[MAX_UNRESOLVED];
	size_t n_unresolved;
	uint64_t now_ns;         /* the newest request start seen (event time) */
	struct loop_turn *loops; /* LOOP_SLOTS */
	struct task_slot *tasks; /* TASK_SLOTS */
	uint64_t task_clock;
	struct held held[MAX_HELD];
	size_t n_held;
	struct trace_links_stats stats;
};

struct trace_links *trace_links__new(struct conn_table *conns, struct id_gen *ids,
                                     const struct sampler *sampler)
{
	struct trace_links *tl = calloc(1, sizeof(*tl));

	if (!tl)
		return NULL;
	tl->thread_cap = THREAD_MIN;
	tl->threads = calloc(tl->thread_cap, sizeof(*tl->threads));
	tl->loops = calloc(LOOP_SLOTS, sizeof(*tl->loops));
	tl->tasks = calloc(TASK_SLOTS, sizeof(*tl->tasks));
	if (!tl->threads || !tl->loops || !tl->tasks) {
		free(tl->threads);
		free(tl->loops);
		free(tl->tasks);
		free(tl);
		return NULL;
	}
	tl->conns = conns;
	tl->ids = ids;
	tl->sampler = sampler;
	return tl;
}

void trace_links__free(struct trace_links *tl)
{
	if (!tl)
		return;
	free(tl->threads);
	free(tl->loops);
	free(tl->tasks);
	free(tl);
}

/* ---- threads (open addressing, backward-shift deletion) ---- */

/* Keyed by (pid, key): goroutine keys are addresses, and two processes of one
 * Go binary run goroutines at the same ones (a front and a back built alike:
 * one's request ending took the other's goroutine entry). */
static size_t thread_slot(const struct trace_links *tl, uint32_t pid, uint32_t tid)
{
	uint32_t h = tid * 2654435761u ^ pid * 0x9e3779b9u;

	return h & (tl->thread_cap - 1);
}

static struct thread_entry *thread_find(struct trace_links *tl, uint32_t pid, uint32_t tid)
{
	for (size_t i = thread_slot(tl, pid, tid), n = 0; n < tl->thread_cap;
	     i = (i + 1) & (tl->thread_cap - 1), n++) {
		if (!tl->threads[i].tid)
			return NULL;
		if (tl->threads[i].tid == tid && tl->threads[i].pid == pid)
			return &tl->threads[i];
	}
	return NULL;
}

/* Doubles the thread table, every entry re-inserted at its new home; false
 * (the table unchanged) at THREAD_SLOTS or out of memory. */
static bool threads_grow(struct trace_links *tl)
{
	size_t cap = tl->thread_cap * 2;
	struct thread_entry *old = tl->threads, *t;

	if (cap > THREAD_SLOTS)
		return false;
	t = calloc(cap, sizeof(*t));
	if (!t)
		return false;
	tl->threads = t;
	tl->thread_cap = cap;
	for (size_t k = 0; k < cap / 2; k++) {
		size_t i;

		if (!old[k].tid)
			continue;
		for (i = thread_slot(tl, old[k].pid, old[k].tid); t[i].tid; i = (i + 1) & (cap - 1))
			;
		t[i] = old[k];
	}
	free(old);
	return true;
}

static struct thread_entry *thread_insert(struct trace_links *tl, uint32_t pid, uint32_t tid)
{
	if (tl->n_threads >= tl->thread_cap / 2 && !threads_grow(tl))
		return NULL; /* keep probes short; such a host links less */
	for (size_t i = thread_slot(tl, pid, tid);; i = (i + 1) & (tl->thread_cap - 1)) {
		if (!tl->threads[i].tid) {
			memset(&tl->threads[i], 0, sizeof(tl->threads[i]));
			tl->threads[i].tid = tid;
			tl->threads[i].pid = pid;
			tl->n_threads++;
			return &tl->threads[i];
		}
	}
}

static void thread_delete(struct trace_links *tl, struct thread_entry *e)
{
	size_t i = (size_t)(e - tl->threads), j = i;

	for (;;) {
		j = (j + 1) & (tl->thread_cap - 1);
		if (!tl->threads[j].tid)
			break;
		size_t home = thread_slot(tl, tl->threads[j].pid, tl->threads[j].tid);
		/* move j back to i unless its home lies cyclically in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			tl->threads[i] = tl->threads[j];
			i = j;
		}
	}
	tl->threads[i].tid = 0;
	tl->n_threads--;
}

static void key_release(struct trace_links *tl, const struct conn *c, const struct link_ctx *ctx,
                        uint32_t key)
{
	struct thread_entry *e = key ? thread_find(tl, c->ref.pid, key) : NULL;

	if (!e)
		return;
	if (e->inflight > 1) {
		e->inflight--;
		/* the entry named the request that just ended: which one is left
		 * is unknown, so nothing links to this key until the next starts */
		if (e->sock_id == c->ref.sock_id && e->seq == ctx->seq)
			e->sock_id = 0;
		return;
	}
	thread_delete(tl, e);
}

/* A server request on c (its ring entry ctx) stopped occupying its thread and
 * goroutine. */
static void thread_release(struct trace_links *tl, const struct conn *c, const struct link_ctx *ctx)
{
	key_release(tl, c, ctx, ctx->tid);
	key_release(tl, c, ctx, ctx->gkey);
}

/* ---- rings ---- */

static struct link_ring *ring_of(struct conn *c)
{
	if (!c->links)
		c->links = calloc(1, sizeof(*c->links));
	return c->links;
}

static struct link_ctx *ring_find(struct link_ring *r, uint64_t seq)
{
	for (uint8_t i = 0; r && i < r->n; i++) {
		struct link_ctx *x = &r->ctx[(r->head + i) % LINK_RING_MAX];

		if (x->seq == seq)
			return x;
	}
	return NULL;
}

void trace_links_forget_conn(struct trace_links *tl, struct conn *c)
{
	struct link_ring *r = c->links;

	if (!r)
		return;
	if (c->ref.role == PSCOPE_ROLE_SERVER)
		for (uint8_t i = 0; i < r->n; i++)
			thread_release(tl, c, &r->ctx[(r->head + i) % LINK_RING_MAX]);
	free(r);
	c->links = NULL;
}

/* ---- event-loop turns ---- */

static struct loop_turn *loop_slot(struct trace_links *tl, uint32_t tid)
{
	return &tl->loops[(tid * 2654435761u) & (LOOP_SLOTS - 1)];
}

/* The turn (pid, tid, tick) now: NULL when the thread's slot holds another
 * turn (nothing was read in this one yet). */
static struct loop_turn *loop_current(struct trace_links *tl, uint32_t pid, uint32_t tid,
                                      uint32_t tick)
{
	struct loop_turn *t = loop_slot(tl, tid);

	return t->tid == tid && t->pid == pid && t->tick == tick ? t : NULL;
}

static struct link_ctx *ref_find(struct trace_links *tl, uint32_t pid, const struct link_ref *o,
                                 struct conn **conn_out);

/* A phased turn ends: a read's callback that made no asyncio task leaves its
 * request for a task made later (made_for). */
static void loop_retire(struct trace_links *tl, const struct loop_turn *t)
{
	struct conn *sc = NULL;
	struct link_ctx *x;

	if (!(t->tick & LINK_TICK_PHASED_BIT) || t->task || t->made || t->owners != 1 ||
	    t->by_response)
		return;
	x = ref_find(tl, t->pid, &t->owner, &sc);
	if (x && !x->task_made)
		x->no_task = true;
}

/* Thread tid's slot, holding turn tick (a fresh one when it held another). */
static struct loop_turn *loop_take(struct trace_links *tl, uint32_t pid, uint32_t tid,
                                   uint32_t tick)
{
	struct loop_turn *t = loop_slot(tl, tid);

	if (t->tid != tid || t->pid != pid || t->tick != tick) {
		if (t->tid == tid && t->pid == pid)
			loop_retire(tl, t);
		*t = (struct loop_turn){.tid = tid, .pid = pid, .tick = tick};
	}
	return t;
}

/* Server request o owns thread tid's turn tick (with any other owner: several). */
static struct loop_turn *loop_own(struct trace_links *tl, uint32_t pid, uint32_t tid, uint32_t tick,
                                  const struct link_ref *o)
{
	struct loop_turn *t = loop_take(tl, pid, tid, tick);

	t->by_response = false;
	t->last = *o;
	t->last_ok = true;
	if (!t->owners) {
		t->owner = *o;
		t->owners = 1;
	} else if (t->owner.sock_id != o->sock_id || t->owner.fd != o->fd ||
	           t->owner.seq != o->seq) {
		t->owners = 2;
	}
	return t;
}

/* A response read owns the turn for its caller's request o. */
static void loop_own_response(struct trace_links *tl, uint32_t pid, uint32_t tid, uint32_t tick,
                              const struct link_ref *o)
{
	loop_own(tl, pid, tid, tick, o)->by_response = true;
}

/* Thread tid's turn tick read something whose work is nobody's we know (the
 * answer to a call that has no parent): what follows is not the last
 * reader's. */
static void loop_foreign(struct trace_links *tl, uint32_t pid, uint32_t tid, uint32_t tick)
{
	loop_take(tl, pid, tid, tick)->last_ok = false;
}

/* The server request a ref names, if it is still in flight. */
/* The server connection a ref names (its fd and socket), if still open. */
static struct conn *ref_conn(struct trace_links *tl, uint32_t pid, const struct link_ref *o)
{
	struct conn *sc = conn_table_lookup(tl->conns, pid, o->fd);

	return sc && sc->ref.sock_id == o->sock_id && sc->ref.role == PSCOPE_ROLE_SERVER ? sc
	                                                                                 : NULL;
}

static struct link_ctx *ref_find(struct trace_links *tl, uint32_t pid, const struct link_ref *o,
                                 struct conn **conn_out)
{
	struct conn *sc = ref_conn(tl, pid, o);

	if (!sc)
		return NULL;
	*conn_out = sc;
	return ring_find(sc->links, o->seq);
}

/* The owner of the turn a client request is written in, if exactly one. */
static struct link_ctx *loop_parent(struct trace_links *tl, uint32_t pid, uint32_t tid,
                                    uint32_t tick, struct conn **conn_out, bool *ambiguous)
{
	struct loop_turn *t = loop_current(tl, pid, tid, tick);

	if (!t || !t->owners)
		return NULL; /* a turn that read nothing (a timer): nobody's */
	if (t->owners > 1) {
		*ambiguous = true;
		return NULL;
	}
	return ref_find(tl, pid, &t->owner, conn_out);
}

/* The parent c->write_parent names, if still in flight. */
static struct link_ctx *write_parent_find(struct trace_links *tl, struct conn *c,
                                          struct conn **conn_out)
{
	struct link_ref o = {
	    .fd = c->write_parent_fd, .sock_id = c->write_parent_sock, .seq = c->write_parent_seq};

	return c->write_parent == 3 ? ref_find(tl, c->ref.pid, &o, conn_out) : NULL;
}

/* ---- pairing ---- */

static bool conn_multiplexed(const struct conn *c);

/* Client request x of process pid, linked to a server request of its own
 * process (local_parent): that request while it is in flight. */
static struct link_ctx *local_parent_of(struct trace_links *tl, uint32_t pid,
                                        const struct link_ctx *x)
{
	struct conn *sc = NULL;

	return x->local_parent ? ref_find(tl, pid, &x->parent, &sc) : NULL;
}

/* Client request x's ids leave: its span ends, or a server paired with it
 * took its trace. Its parent's trace can no longer move (pair_from_client). */
static void parent_out(struct trace_links *tl, uint32_t pid, const struct link_ctx *x)
{
	struct link_ctx *p = local_parent_of(tl, pid, x);

	if (p)
		p->child_done = true;
}

/* The other end of c when it is a connection of this host, else NULL. */
static struct conn *local_peer(struct trace_links *tl, const struct conn *c)
{
	struct conn *peer;

	peer = conn_table_lookup_tuple(tl->conns, c->ref.family, c->ref.remote_addr,
	                               c->ref.remote_port, c->ref.local_addr, c->ref.local_port);
	return peer == c ? NULL : peer;
}

/* ---- held server requests (struct held) ---- */

static struct held *held_of_span(struct trace_links *tl, const uint8_t span_id[8])
{
	for (size_t i = 0; i < tl->n_held; i++)
		if (!memcmp(tl->held[i].span_id, span_id, 8))
			return &tl->held[i];
	return NULL;
}

static struct held *held_of_trace(struct trace_links *tl, const uint8_t trace_id[16])
{
	for (size_t i = 0; i < tl->n_held; i++)
		if (!memcmp(tl->held[i].trace_id, trace_id, 16))
			return &tl->held[i];
	return NULL;
}

/* h still waits for its client: open, and its wait (event time) not over
 * (an entry found over it is closed here). */
static bool held_waiting(const struct trace_links *tl, struct held *h)
{
	if (!h->closed && tl->now_ns >= h->until_ns)
		h->closed = true;
	return !h->closed;
}

/* Closes entries whose wait is over and forgets closed ones (all: every
 * closed one): one that did not move its trace at the next flush (the agent
 * let its spans go after the last one), one that moved it a wait later
 * (spans already in its old trace, a downstream server's, may still end). */
static void held_expire(struct trace_links *tl, bool all)
{
	size_t kept = 0;

	for (size_t i = 0; i < tl->n_held; i++) {
		struct held *h = &tl->held[i];
		bool moved = h->paired && memcmp(h->to_trace, h->trace_id, 16);

		if (!held_waiting(tl, h) &&
		    (all || (moved ? tl->now_ns >= h->until_ns + PAIR_WAIT_NS : h->closed_seen)))
			continue;
		h->closed_seen = h->closed;
		tl->held[kept++] = *h;
	}
	tl->n_held = kept;
}

/* Server request x on c (peer: c's other end on this host, or NULL), a root
 * whose ids go out now: waits for its local client's request (struct held)
 * when that client's connection is a traced one. */
static bool held_open(struct trace_links *tl, const struct conn *c, const struct conn *peer,
                      const struct link_ctx *x, bool movable)
{
	struct held *h;

	if (x->has_parent || !peer || peer->ref.role == PSCOPE_ROLE_SERVER ||
	    (peer->flags & CONN_FLAG_IGNORED))
		return false;
	if (tl->n_held == MAX_HELD)
		held_expire(tl, true);
	if (tl->n_held == MAX_HELD)
		return false;
	h = &tl->held[tl->n_held++];
	memset(h, 0, sizeof(*h));
	h->family = c->ref.family;
	memcpy(h->local_addr, c->ref.local_addr, 16);
	memcpy(h->remote_addr, c->ref.remote_addr, 16);
	h->local_port = c->ref.local_port;
	h->remote_port = c->ref.remote_port;
	h->seq = x->seq;
	h->stream = x->stream;
	h->until_ns = (tl->now_ns > x->start_ns ? tl->now_ns : x->start_ns) + PAIR_WAIT_NS;
	memcpy(h->trace_id, x->trace_id, 16);
	memcpy(h->span_id, x->span_id, 8);
	h->sampled = x->sampled;
	h->movable = movable;
	return true;
}

/* Open entry h's request is the child of client request cl. With adopt, cl
 * (a root whose ids have not gone out) takes h's trace; otherwise h's trace
 * moves into cl's (movable h only). */
static bool held_pair(struct trace_links *tl, struct held *h, const struct link_ctx *cl, bool adopt)
{
	if (!held_waiting(tl, h) || (!adopt && !h->movable))
		return false;
	memcpy(h->to_trace, adopt ? h->trace_id : cl->trace_id, 16);
	h->sampled = adopt ? h->sampled : cl->sampled;
	memcpy(h->parent_span_id, cl->span_id, 8);
	h->paired = h->closed = true;
	return true;
}

bool trace_links_trace_open(struct trace_links *tl, const uint8_t trace_id[16])
{
	const uint8_t *t = trace_id;

	for (int depth = 0; tl->n_held && depth < 4; depth++) {
		struct held *h = held_of_trace(tl, t);

		if (!h)
			return false;
		if (held_waiting(tl, h))
			return true;
		if (!h->paired || !memcmp(h->to_trace, t, 16))
			return false;
		t = h->to_trace; /* moved into a trace that may wait itself */
	}
	return false;
}

void trace_links_span_settle(struct trace_links *tl, uint8_t trace_id[16], const uint8_t span_id[8],
                             uint8_t parent_span_id[8], uint8_t *sampled)
{
	for (int depth = 0; tl->n_held && depth < 4; depth++) {
		struct held *h = held_of_trace(tl, trace_id);

		if (!h)
			return;
		h->closed = true; /* a span of it goes out as it is now */
		if (!h->paired)
			return;
		if (!memcmp(h->span_id, span_id, 8))
			memcpy(parent_span_id, h->parent_span_id, 8);
		if (!memcmp(h->to_trace, trace_id, 16))
			return;
		memcpy(trace_id, h->to_trace, 16);
		*sampled = h->sampled;
	}
}

/* ---- same-node pairing ---- */

/* Gives server request s the local client span that sent it on peer (its
 * connection's other end, or NULL), if any. A provisional s (its ids went
 * out) moves its trace into the client's. */
static bool try_pair_with(struct trace_links *tl, struct conn *peer, struct link_ctx *s)
{
	struct link_ring *r;

	if (!peer || peer->ref.role == PSCOPE_ROLE_SERVER || !(r = peer->links))
		return false;
	for (uint8_t i = 0; i < r->n; i++) {
		struct link_ctx *cl = &r->ctx[(r->head + i) % LINK_RING_MAX];

		if (cl->consumed || cl->stream != s->stream)
			continue; /* HTTP/2: its own stream; HTTP/1: the oldest */
		if (s->provisional) {
			struct held *h = held_of_span(tl, s->span_id);

			s->provisional = false;
			if (!h || !held_pair(tl, h, cl, false))
				return false; /* too late: it stays a root */
			tl->stats.moved++;
		}
		cl->consumed = true;
		parent_out(tl, peer->ref.pid, cl); /* cl's trace goes on in s */
		memcpy(s->trace_id, cl->trace_id, 16);
		memcpy(s->parent_span_id, cl->span_id, 8);
		s->has_parent = true;
		s->sampled = cl->sampled;
		s->resolved = true;
		tl->stats.paired++;
		return true;
	}
	return false;
}

static bool try_pair(struct trace_links *tl, struct conn *c, struct link_ctx *s)
{
	return try_pair_with(tl, local_peer(tl, c), s);
}

/* Client request x on c whose server request was answered already, as a
 * root still waiting (struct held): the entry of the server connection at
 * x's other end with x's stream (HTTP/2) or number (HTTP/1: the k-th request
 * at both ends), when there is one only. */
static void pair_held(struct trace_links *tl, const struct conn *c, struct link_ctx *x)
{
	struct held *h = NULL;

	for (size_t i = 0; i < tl->n_held; i++) {
		struct held *e = &tl->held[i];

		if (e->closed || e->family != c->ref.family ||
		    e->local_port != c->ref.remote_port || e->remote_port != c->ref.local_port ||
		    memcmp(e->local_addr, c->ref.remote_addr, 16) ||
		    memcmp(e->remote_addr, c->ref.local_addr, 16))
			continue;
		if (x->stream ? e->stream != x->stream : e->seq != x->seq)
			continue;
		if (h)
			return; /* several: ambiguous */
		h = e;
	}
	if (!h || !held_pair(tl, h, x, !x->has_parent))
		return;
	if (x->has_parent) {
		parent_out(tl, c->ref.pid, x);
		tl->stats.moved++;
	} else {
		memcpy(x->trace_id, h->trace_id, 16);
		x->sampled = h->sampled;
	}
	x->consumed = true;
	tl->stats.paired++;
}

/* The request of server connection peer that client request x sent, looked
 * for from the client's side (the server's read was merged first): on
 * HTTP/2 x's stream; on HTTP/1 the newest request, when it is the only one
 * without a parent (it can be no other request's). 1 found, 0 none, -1 not
 * one sure enough. */
static int peer_request(const struct conn *peer, const struct link_ctx *x, struct link_ctx **out)
{
	struct link_ring *r = peer->links;

	*out = NULL;
	for (uint8_t i = 0; r && i < r->n; i++) {
		struct link_ctx *e = &r->ctx[(r->head + i) % LINK_RING_MAX];

		if (x->stream) {
			if (e->stream != x->stream)
				continue;
			if (e->has_parent)
				return -1;
			*out = e;
			return 1;
		}
		if (e->has_parent)
			continue;
		if (*out || i != r->n - 1)
			return -1; /* several candidates, or not the newest */
		*out = e;
	}
	return *out ? 1 : 0;
}

/* The other way round: client request x on c finds its local server's
 * request already settled as a root (the server's read was seen before the
 * client's write, and a call the server made settled it). The server
 * request becomes the child of x. A root x takes the server's trace, which
 * the server's own calls already carry; an x with a trace of its own gives
 * it to the server request when none of that request's spans has gone out
 * in its old trace: none of its calls has ended, or they all wait with it
 * (provisional); its in-flight calls follow (trace_links_complete). Without
 * a request in flight, x looks among the answered ones that wait
 * (pair_held). */
static void pair_from_client(struct trace_links *tl, struct conn *c, struct link_ctx *x)
{
	struct conn *peer = local_peer(tl, c);
	struct link_ctx *s = NULL;
	struct held *h;
	int found = 0;

	if (peer && peer->ref.role == PSCOPE_ROLE_SERVER)
		found = peer_request(peer, x, &s);
	else if (peer)
		return;
	if (!found)
		pair_held(tl, c, x);
	if (found <= 0 || !s->resolved)
		return; /* unresolved: still open to the usual pairing (trace_links_flush) */
	h = s->provisional ? held_of_span(tl, s->span_id) : NULL;
	if (!x->has_parent) {
		if (h)
			held_pair(tl, h, x, true);
		memcpy(x->trace_id, s->trace_id, 16);
		x->sampled = s->sampled;
	} else if (!x->stream && s->seq != x->seq) {
		return; /* HTTP/1: the k-th request at both ends, or not sure */
	} else if (s->provisional ? !h || !held_pair(tl, h, x, false) : s->child_done) {
		return; /* a span of its old trace is out */
	} else {
		if (s->provisional)
			tl->stats.moved++;
		memcpy(s->trace_id, x->trace_id, 16);
		s->sampled = x->sampled;
		parent_out(tl, c->ref.pid, x);
	}
	s->provisional = false;
	x->consumed = true;
	memcpy(s->parent_span_id, x->span_id, 8);
	s->has_parent = true;
	tl->stats.paired++;
}

/* Settles a server request's parent: pairing now, else a root for good — or,
 * with wait, a root whose ids go out now but whose local client's request
 * may still come (provisional, struct held). */
static void resolve(struct trace_links *tl, struct conn *c, struct link_ctx *s, bool wait)
{
	struct conn *peer;

	if (s->resolved)
		return;
	peer = local_peer(tl, c);
	if (try_pair_with(tl, peer, s))
		return;
	s->resolved = true;
	if (wait && tl->now_ns - s->start_ns < PAIR_WAIT_NS && held_open(tl, c, peer, s, true))
		s->provisional = true;
}

/* Server request x on c answered: settled, and a root whose local client is
 * known keeps waiting for that client's request (a root client may still
 * take its trace). */
static void resolve_answered(struct trace_links *tl, struct conn *c, struct link_ctx *x)
{
	resolve(tl, c, x, true);
	thread_release(tl, c, x);
	if (!x->provisional && !x->has_parent && !held_of_span(tl, x->span_id))
		held_open(tl, c, local_peer(tl, c), x, false);
}

static void fresh_root(struct trace_links *tl, struct link_ctx *x)
{
	id_gen_trace_id(tl->ids, x->trace_id);
	memset(x->parent_span_id, 0, 8);
	x->has_parent = false;
	x->sampled = sampler_decide(tl->sampler, x->trace_id, false, false);
}

static bool from_traceparent(struct trace_links *tl, struct link_ctx *x, const char *tp)
{
	struct traceparent p;

	if (!tp || !tp[0] || !traceparent_parse(tp, strlen(tp), &p))
		return false;
	memcpy(x->trace_id, p.trace_id, 16);
	memcpy(x->parent_span_id, p.parent_id, 8);
	x->has_parent = true;
	x->sampled = sampler_decide(tl->sampler, x->trace_id, true, p.flags & 1);
	x->resolved = true;
	return true;
}

/* The server request handled by thread tid now, if exactly one. */
static struct link_ctx *thread_parent(struct trace_links *tl, uint32_t pid, uint32_t tid,
                                      struct conn **conn_out, bool *ambiguous)
{
	struct thread_entry *e = thread_find(tl, pid, tid);
	struct conn *sc;

	if (!e)
		return NULL;
	if (e->inflight > 1) {
		*ambiguous = true;
		return NULL;
	}
	sc = conn_table_lookup(tl->conns, e->pid, e->fd);
	if (!sc || sc->ref.sock_id != e->sock_id)
		return NULL;
	*conn_out = sc;
	return ring_find(sc->links, e->seq);
}

/* Server request x on c now occupies thread (or goroutine) key. */
static void key_occupy(struct trace_links *tl, const struct conn *c, const struct link_ctx *x,
                       uint32_t key)
{
	struct thread_entry *e = thread_find(tl, c->ref.pid, key);

	if (!e) {
		e = thread_insert(tl, c->ref.pid, key);
		if (!e)
			return;
	}
	e->inflight++;
	e->fd = c->ref.fd;
	e->sock_id = c->ref.sock_id;
	e->seq = x->seq;
}

/* Multiplexed connections (HTTP/2): requests end in any order. */
static bool conn_multiplexed(const struct conn *c)
{
	const struct l7_ops *ops = l7_ops_of(c->protocol);

	return ops && ops->multiplexed;
}

static void server_request(struct trace_links *tl, struct conn *c, struct link_ctx *x,
                           const char *traceparent)
{
	if (x->gkey && c->serve_gkey && !conn_multiplexed(c))
		x->gkey = c->serve_gkey; /* see trace_links_complete */

	if (from_traceparent(tl, x, traceparent)) {
		tl->stats.remote_parents++;
	} else {
		fresh_root(tl, x); /* until pairing says otherwise */
		if (!try_pair(tl, c, x) && tl->n_unresolved < MAX_UNRESOLVED)
			tl->unresolved[tl->n_unresolved++] = (struct unresolved){
			    .pid = c->ref.pid,
			    .fd = c->ref.fd,
			    .sock_id = c->ref.sock_id,
			    .seq = x->seq,
			    .start_ns = x->start_ns,
			    .local = local_peer(tl, c) ||
			             !memcmp(c->ref.local_addr, c->ref.remote_addr, 16)};
	}
	key_occupy(tl, c, x, x->tid);
	if (x->gkey)
		key_occupy(tl, c, x, x->gkey);
	if (x->tick) {
		struct link_ref o = {.fd = c->ref.fd, .sock_id = c->ref.sock_id, .seq = x->seq};

		loop_own(tl, c->ref.pid, x->tid, x->tick, &o);
	}
}

/* nginx runs a request's handler when it reads it and opens or writes its
 * upstream request right there (posted events, subrequests and upstream
 * retries included); only its timers (a retry after a timeout) run other
 * work between, and a timer-safe turn has run none. Other loops (asyncio,
 * libuv) defer handlers to later callbacks, where another request's or a
 * background job's work may come after a read. */
static bool loop_synchronous(const struct conn *c)
{
	return !strcmp(c->comm, "nginx");
}

/* A phased segment's owner stands unless a response read made it the owner
 * (its caller's request) while other requests are in flight on the thread. */
static bool phased_owner_holds(struct trace_links *tl, const struct loop_turn *turn, uint32_t pid,
                               uint32_t tid, const struct link_ctx *owner, bool *ambiguous)
{
	struct conn *tc = NULL;

	return !turn->by_response || thread_parent(tl, pid, tid, &tc, ambiguous) == owner;
}

/* The server request an asyncio task step's turn works for, if its task was
 * made for one and that one is still in flight. */
static struct link_ctx *task_parent(struct trace_links *tl, uint32_t pid,
                                    const struct loop_turn *turn, bool in_segment,
                                    struct conn **conn_out)
{
	if (!in_segment || !turn->task_owned)
		return NULL;
	return ref_find(tl, pid, &turn->task_owner, conn_out);
}

/* The owner of a phased loop's segment (trace_links.h): the one request its
 * read carried, for the segment's first client request; a response read's
 * only while that is the thread's one request in flight (a pool may write a
 * request queued by another handler when a response frees its connection). */
static struct link_ctx *phased_decide(struct trace_links *tl, struct conn *c, uint32_t tid,
                                      uint32_t tick, bool in_segment, bool claim,
                                      struct conn **conn_out, bool *ambiguous)
{
	struct loop_turn *turn = loop_current(tl, c->ref.pid, tid, tick);
	struct link_ctx *owner;
	bool first;

	if (turn && turn->task)
		return task_parent(tl, c->ref.pid, turn, in_segment, conn_out); /* all its calls */
	if (!in_segment || !turn || !turn->owners)
		return NULL; /* a timer's, an immediate's, a write callback's: nobody's */
	if (turn->owners > 1 || !turn->last_ok) {
		*ambiguous = true;
		return NULL;
	}
	owner = ref_find(tl, c->ref.pid, &turn->owner, conn_out);
	if (!owner)
		return NULL;
	first = !turn->claimed;
	if (claim)
		turn->claimed = true;
	if (!first || !phased_owner_holds(tl, turn, c->ref.pid, tid, owner, ambiguous)) {
		*ambiguous = true;
		return NULL;
	}
	return owner;
}

/* An event loop's client request on c, written in turn tick of thread tid.
 * The first request on a connection belongs to the request whose turn opened
 * it (pools open a connection for the request that needs one; its write may
 * wait for the connect in a later turn). Any other belongs to the turn's owner
 * only when that owner is also the thread's one server request in flight, and
 * only for the turn's first client request: a turn can also run work its reads
 * did not start (a timer, a task woken by another task, a connection pool
 * writing a queued request when an earlier response arrives), and such work
 * must not take a parent it may not have. */
static struct link_ctx *loop_decide(struct trace_links *tl, struct conn *c, uint32_t tid,
                                    uint32_t tick, bool timer_safe, bool claim,
                                    struct conn **conn_out, bool *ambiguous)
{
	struct link_ctx *owner, *only;
	struct loop_turn *turn;
	struct conn *sc = NULL;

	if (c->write_parent_connect) {
		uint8_t opened = c->write_parent;

		c->write_parent_connect = false;
		if (opened == 3) {
			owner = write_parent_find(tl, c, conn_out);
			c->write_parent = 0;
			return owner;
		}
		c->write_parent = 0;
		if (opened && !loop_synchronous(c)) {
			/* opened for no request (a timer's fetch), or for one of
			 * several: its first request is not the write turn's
			 * (that turn may read another request before the
			 * connection turns writable) */
			*ambiguous = opened == 2;
			return NULL;
		}
	}
	if (tick & LINK_TICK_PHASED_BIT)
		return phased_decide(tl, c, tid, tick, timer_safe, claim, conn_out, ambiguous);
	if (timer_safe && loop_synchronous(c)) {
		/* a loop that calls out from the handler of the read itself:
		 * the request read last, before any timer could run */
		turn = loop_current(tl, c->ref.pid, tid, tick);
		if (turn && turn->last_ok) {
			owner = ref_find(tl, c->ref.pid, &turn->last, conn_out);
			if (owner)
				return owner;
		}
	}
	owner = loop_parent(tl, c->ref.pid, tid, tick, conn_out, ambiguous);
	if (!owner)
		return NULL;
	only = thread_parent(tl, c->ref.pid, tid, &sc, ambiguous);
	turn = loop_current(tl, c->ref.pid, tid, tick);
	bool first = turn && !turn->claimed;
	/* the turn's first client request after its read is taken, linked
	 * or not: one left a root because another request was in flight
	 * too may be the reader's, and what the turn writes after it may be
	 * a timer's */
	if (claim && turn)
		turn->claimed = true;
	if (only != owner || !first) {
		/* several requests on the thread, or a second request in the
		 * turn: a timer's or another task's work may run after the
		 * reader's own (Node runs timers at the end of a turn) */
		*ambiguous = true;
		return NULL;
	}
	return owner;
}

/* Remembers in c the parent a request without a request hook was written
 * for (write_parent), for its exchange's completion. */
static void write_parent_store(struct conn *c, const struct conn *sc, const struct link_ctx *p,
                               bool ambiguous)
{
	if (!p) {
		c->write_parent = ambiguous ? 2 : 1;
		return;
	}
	c->write_parent = 3;
	c->write_parent_fd = sc->ref.fd;
	c->write_parent_sock = sc->ref.sock_id;
	c->write_parent_seq = p->seq;
}

/* Client request x becomes the child of server request parent on sc. */
static void link_to(struct trace_links *tl, struct conn *sc, struct link_ctx *parent,
                    struct link_ctx *x)
{
	resolve(tl, sc, parent, true);
	memcpy(x->trace_id, parent->trace_id, 16);
	memcpy(x->parent_span_id, parent->span_id, 8);
	x->has_parent = true;
	x->sampled = parent->sampled;
	x->local_parent = true;
	x->parent.fd = sc->ref.fd;
	x->parent.sock_id = sc->ref.sock_id;
	x->parent.seq = parent->seq;
	tl->stats.in_process_links++;
}

static void client_request(struct trace_links *tl, struct conn *c, struct link_ctx *x,
                           const char *traceparent)
{
	struct conn *sc = NULL;
	struct link_ctx *parent;
	bool ambiguous = false;

	x->resolved = true;
	if (from_traceparent(tl, x, traceparent))
		return; /* the application propagates context itself */
	if (x->gkey) {
		/* Go: the goroutine only. Goroutines move between threads, so a
		 * thread's or the process's server request is a guess; net/http's
		 * writer goroutine writes under its caller's goroutine (go.bpf.h). */
		parent = thread_parent(tl, c->ref.pid, x->gkey, &sc, &ambiguous);
	} else if (x->tick) {
		/* an event loop: see loop_decide */
		parent = loop_decide(tl, c, x->tid, x->tick, x->timer_safe, true, &sc, &ambiguous);
		if (parent)
			tl->stats.loop_links++;
	} else {
		parent = thread_parent(tl, c->ref.pid, x->tid, &sc, &ambiguous);
	}
	/* A thread serving nothing itself (a worker pool's) gets no parent: the
	 * process's only request in flight is not necessarily the one it works
	 * for (a background job queued by an answered request runs while the
	 * next one is in flight). */
	if (!parent) {
		if (ambiguous)
			tl->stats.ambiguous++;
		else
			tl->stats.no_parent++;
		fresh_root(tl, x);
		pair_from_client(tl, c, x);
		return;
	}
	link_to(tl, sc, parent, x);
	pair_from_client(tl, c, x);
}

/* An actor's thread, goroutine key and tick key (see LINK_*_BIT). */
static void actor_split(uint64_t actor, uint32_t *tid, uint32_t *gkey, uint32_t *tick)
{
	uint32_t hi = (uint32_t)(actor >> 32);

	*tid = (uint32_t)actor;
	*gkey = (hi & LINK_GOROUTINE_BIT) ? hi : 0;
	*tick = !(hi & LINK_GOROUTINE_BIT) && (hi & LINK_TICK_BIT) ? hi & ~LINK_TICK_SAFE_BIT : 0;
}

/* The actor's event is in a turn where no timer has run (LINK_TICK_SAFE_BIT). */
static bool actor_timer_safe(uint64_t actor)
{
	uint32_t hi = (uint32_t)(actor >> 32);

	return !(hi & LINK_GOROUTINE_BIT) && (hi & LINK_TICK_BIT) && (hi & LINK_TICK_SAFE_BIT);
}

void trace_links_request(struct trace_links *tl, struct conn *c, uint64_t actor, uint64_t ts_ns,
                         uint64_t seq, const char *traceparent)
{
	trace_links_request_stream(tl, c, actor, ts_ns, seq, 0, traceparent);
}

void trace_links_request_stream(struct trace_links *tl, struct conn *c, uint64_t actor,
                                uint64_t ts_ns, uint64_t seq, uint32_t stream,
                                const char *traceparent)
{
	struct link_ring *r = ring_of(c);
	struct link_ctx *x;

	if (!r)
		return;
	if (r->n == LINK_RING_MAX) {
		tl->stats.unlinked++; /* too deep a pipeline: this one is decided at its end */
		return;
	}
	x = &r->ctx[(r->head + r->n) % LINK_RING_MAX];
	memset(x, 0, sizeof(*x));
	x->seq = seq;
	x->stream = stream;
	actor_split(actor, &x->tid, &x->gkey, &x->tick);
	x->timer_safe = actor_timer_safe(actor);
	x->start_ns = ts_ns;
	if (ts_ns > tl->now_ns)
		tl->now_ns = ts_ns;
	id_gen_span_id(tl->ids, x->span_id);
	r->n++;
	if (c->ref.role == PSCOPE_ROLE_SERVER)
		server_request(tl, c, x, traceparent);
	else
		client_request(tl, c, x, traceparent);
}

/* ---- multiplexed connections (HTTP/2): requests end in any order ---- */

/* Takes request seq's entry out of the ring wherever it is (an older request
 * may still be in flight: it keeps its place). */
static bool ring_take(struct trace_links *tl, struct conn *c, struct link_ring *r, uint64_t seq,
                      struct link_ctx *out)
{
	uint8_t i;

	for (i = 0; i < r->n && r->ctx[(r->head + i) % LINK_RING_MAX].seq != seq; i++)
		;
	if (i == r->n)
		return false;
	if (c->ref.role == PSCOPE_ROLE_SERVER)
		resolve_answered(tl, c, &r->ctx[(r->head + i) % LINK_RING_MAX]);
	*out = r->ctx[(r->head + i) % LINK_RING_MAX];
	for (; i + 1 < r->n; i++)
		r->ctx[(r->head + i) % LINK_RING_MAX] = r->ctx[(r->head + i + 1) % LINK_RING_MAX];
	r->n--;
	return true;
}

static void complete_ids(struct trace_links *tl, struct conn *c, uint64_t actor, bool has_seq,
                         uint64_t seq, const char *traceparent, struct link_ctx *out)
{
	struct link_ring *r = c->links;
	bool server = c->ref.role == PSCOPE_ROLE_SERVER;
	uint32_t hi = (uint32_t)(actor >> 32);

	/* Go's HTTP/1 server answers on the connection's serving goroutine, but a
	 * background goroutine may read the next request's first bytes: the
	 * answering goroutine is the one the next request's calls come from */
	if (server && (hi & LINK_GOROUTINE_BIT) && !conn_multiplexed(c))
		c->serve_gkey = hi;

	if (r && has_seq && conn_multiplexed(c)) {
		if (ring_take(tl, c, r, seq, out))
			return;
	} else if (r && has_seq) {
		/* entries of requests that ended without an exchange go first */
		while (r->n && r->ctx[r->head].seq < seq) {
			if (server)
				thread_release(tl, c, &r->ctx[r->head]);
			r->head = (r->head + 1) % LINK_RING_MAX;
			r->n--;
		}
		if (r->n && r->ctx[r->head].seq == seq) {
			struct link_ctx *x = &r->ctx[r->head];

			if (server)
				resolve_answered(tl, c, x);
			*out = *x;
			r->head = (r->head + 1) % LINK_RING_MAX;
			r->n--;
			return;
		}
	}
	/* decided now */
	memset(out, 0, sizeof(*out));
	out->seq = seq;
	actor_split(actor, &out->tid, &out->gkey, &out->tick);
	out->resolved = true;
	id_gen_span_id(tl->ids, out->span_id);
	if (server) {
		if (from_traceparent(tl, out, traceparent))
			tl->stats.remote_parents++;
		else
			fresh_root(tl, out);
		return;
	}
	if (c->write_parent && !out->gkey) {
		/* decided by the event-loop turn that wrote the request */
		uint8_t wp = c->write_parent;
		struct conn *sc = NULL;
		struct link_ctx *parent = write_parent_find(tl, c, &sc);

		c->write_parent = 0;
		c->write_parent_connect = false;
		if (from_traceparent(tl, out, traceparent))
			return;
		if (parent) {
			tl->stats.loop_links++;
			link_to(tl, sc, parent, out);
			return;
		}
		if (wp == 2)
			tl->stats.ambiguous++;
		else
			tl->stats.no_parent++;
		fresh_root(tl, out);
		return;
	}
	if (out->tick) {
		/* an event loop's request whose write was not seen: nobody's */
		tl->stats.no_parent++;
		fresh_root(tl, out);
		return;
	}
	client_request(tl, c, out, traceparent);
}

void trace_links_complete(struct trace_links *tl, struct conn *c, uint64_t actor, bool has_seq,
                          uint64_t seq, const char *traceparent, struct link_ctx *out)
{
	struct link_ctx *p;

	complete_ids(tl, c, actor, has_seq, seq, traceparent, out);
	if (c->ref.role == PSCOPE_ROLE_SERVER || !(p = local_parent_of(tl, c->ref.pid, out)))
		return;
	/* a call ends while its server request is in flight: in that request's
	 * trace now (a late pairing may have moved it: pair_from_client) */
	memcpy(out->trace_id, p->trace_id, 16);
	out->sampled = p->sampled;
	p->child_done = true;
}

static struct task_slot *task_set(struct trace_links *tl, uint32_t pid, uint64_t task)
{
	uint64_t h = (task >> 4) * 0x9e3779b97f4a7c15ull ^ (uint64_t)pid * 2654435761u;

	return &tl->tasks[((h >> 20) & (TASK_SLOTS / TASK_WAYS - 1)) * TASK_WAYS];
}

/* Task task of pid as it was made, if its set still holds it. */
static struct task_slot *task_of(struct trace_links *tl, uint32_t pid, uint64_t task)
{
	struct task_slot *set = task_set(tl, pid, task);

	if (!task)
		return NULL;
	for (int i = 0; i < TASK_WAYS; i++)
		if (set[i].task == task && set[i].pid == pid)
			return &set[i];
	return NULL;
}

/* A slot for task (its own, a free one, or its set's least recently used),
 * cleared for it and marked used now. */
static struct task_slot *task_place(struct trace_links *tl, uint32_t pid, uint64_t task)
{
	struct task_slot *set = task_set(tl, pid, task), *s = task_of(tl, pid, task);

	if (!s) {
		s = &set[0];
		for (int i = 0; i < TASK_WAYS && s->task; i++)
			if (!set[i].task || set[i].used < s->used)
				s = &set[i];
	}
	*s = (struct task_slot){.task = task, .pid = pid, .used = ++tl->task_clock};
	return s;
}

/* A step of an asyncio task writes on server connection c: the task answers
 * its request (made_for). */
static void task_answers(struct trace_links *tl, const struct conn *c, uint32_t tid, uint32_t tick)
{
	const struct loop_turn *turn = loop_current(tl, c->ref.pid, tid, tick);
	struct task_slot *s = turn && turn->task ? task_of(tl, c->ref.pid, turn->task_ptr) : NULL;

	if (!s)
		return;
	s->wrote = (struct link_ref){.fd = c->ref.fd, .sock_id = c->ref.sock_id};
	/* a task a connection's own task made for one request (aiohttp's
	 * _handle_request) answers for it: the maker serves that connection */
	s = s->maker ? task_of(tl, c->ref.pid, s->maker) : NULL;
	if (s && s->for_conn)
		s->wrote = (struct link_ref){.fd = c->ref.fd, .sock_id = c->ref.sock_id};
}

void trace_links_io(struct trace_links *tl, struct conn *c, uint64_t actor, bool ingress,
                    bool before_feed, bool request_hook)
{
	uint32_t tid, gkey, tick;
	struct link_ring *r = c->links;
	bool server = c->ref.role == PSCOPE_ROLE_SERVER;

	actor_split(actor, &tid, &gkey, &tick);
	if (!tick)
		return;
	if (server) {
		/* the request being read (head, or body) owns the turn */
		if (!before_feed && ingress && r && r->n) {
			const struct link_ctx *x = &r->ctx[(r->head + r->n - 1) % LINK_RING_MAX];
			struct link_ref o = {
			    .fd = c->ref.fd, .sock_id = c->ref.sock_id, .seq = x->seq};

			loop_own(tl, c->ref.pid, tid, tick, &o);
			/* one read, several requests (pipelined, or HTTP/2 streams):
			 * the handlers ran for each, not for the last only */
			if (r->n != 1 || conn_multiplexed(c))
				loop_foreign(tl, c->ref.pid, tid, tick);
		}
		if (!ingress && before_feed)
			task_answers(tl, c, tid, tick);
		return;
	}
	if (!before_feed)
		return;
	if (ingress) {
		/* a response being read: the turn continues its caller's work */
		if (r && r->n && r->ctx[r->head].local_parent) {
			loop_own_response(tl, c->ref.pid, tid, tick, &r->ctx[r->head].parent);
		} else if (c->write_parent == 3) {
			struct link_ref o = {.fd = c->write_parent_fd,
			                     .sock_id = c->write_parent_sock,
			                     .seq = c->write_parent_seq};

			loop_own_response(tl, c->ref.pid, tid, tick, &o);
		} else {
			loop_foreign(tl, c->ref.pid, tid, tick);
		}
		return;
	}
	if (request_hook)
		return; /* a protocol with request starts decides at the start */
	if (!c->write_parent || c->write_parent_connect) {
		/* a request of a protocol without request starts: decided now,
		 * kept until its exchange completes */
		struct conn *sc = NULL;
		bool ambiguous = false;
		struct link_ctx *p =
		    loop_decide(tl, c, tid, tick, actor_timer_safe(actor), true, &sc, &ambiguous);

		write_parent_store(c, sc, p, ambiguous);
	}
}

void trace_links_connect(struct trace_links *tl, struct conn *c, uint64_t actor)
{
	uint32_t tid, gkey, tick;
	struct conn *sc = NULL;
	struct link_ctx *p;
	bool ambiguous = false;

	actor_split(actor, &tid, &gkey, &tick);
	if (!tick || c->ref.role != PSCOPE_ROLE_CLIENT)
		return;
	/* the same test as for a request written now: the turn's owner that is
	 * also the thread's only request in flight (a pool may hand a connection
	 * opened for one request to another waiting one otherwise) */
	c->write_parent_connect = false;
	c->write_parent = 0;
	/* the opener claims its turn: its own call goes out on this new
	 * connection, so another write in the same turn (a timer's) is not its */
	p = loop_decide(tl, c, tid, tick, actor_timer_safe(actor), true, &sc, &ambiguous);
	write_parent_store(c, sc, p, ambiguous);
	c->write_parent_connect = true;
}

void trace_links_flush(struct trace_links *tl)
{
	size_t kept = 0;

	held_expire(tl, false);
	for (size_t i = 0; i < tl->n_unresolved; i++) {
		struct unresolved u = tl->unresolved[i];
		struct conn *c = conn_table_lookup(tl->conns, u.pid, u.fd);
		struct link_ctx *x;

		if (!c || c->ref.sock_id != u.sock_id)
			continue;
		x = ring_find(c->links, u.seq);
		if (!x || (x->resolved && !x->provisional) || try_pair(tl, c, x))
			continue;
		if (++u.tries >= 2 && !(u.local && tl->now_ns - u.start_ns < PAIR_WAIT_NS))
			continue;
		tl->unresolved[kept++] = u; /* maybe next batch; used or completed settles it */
	}
	tl->n_unresolved = kept;
}

bool trace_links_context(struct trace_links *tl, uint32_t pid, uint64_t actor, struct link_ctx *out)
{
	uint32_t tid, gkey, tick;
	struct conn *sc = NULL;
	struct link_ctx *p;
	bool ambiguous = false;

	actor_split(actor, &tid, &gkey, &tick);
	if (gkey) {
		p = thread_parent(tl, pid, gkey, &sc, &ambiguous);
	} else if (tick) {
		/* the turn's owner, when it is also the thread's one request; a
		 * phased loop's segment owner by its read (phased_decide's rule) */
		struct conn *tc = NULL;
		struct loop_turn *turn = loop_current(tl, pid, tid, tick);

		if (turn && turn->task) {
			/* an asyncio task's step: its request's */
			p = task_parent(tl, pid, turn, actor_timer_safe(actor), &sc);
		} else {
			p = loop_parent(tl, pid, tid, tick, &sc, &ambiguous);
			if (p && (tick & LINK_TICK_PHASED_BIT)) {
				if (!actor_timer_safe(actor) || !turn->last_ok ||
				    !phased_owner_holds(tl, turn, pid, tid, p, &ambiguous))
					p = NULL;
			} else if (p && thread_parent(tl, pid, tid, &tc, &ambiguous) != p) {
				p = NULL;
			}
		}
	} else {
		p = thread_parent(tl, pid, tid, &sc, &ambiguous);
	}
	if (!p)
		return false;
	resolve(tl, sc, p, false);
	if (p->provisional) {
		/* the line goes out in its trace now: a root client may still
		 * take that trace, but the trace no longer moves */
		struct held *h = held_of_span(tl, p->span_id);

		if (h)
			h->movable = false;
		p->provisional = false;
	}
	*out = *p;
	return true;
}

/* The server request in flight o names, when it is also the last one read on
 * its connection: with a later one read already (pipelined), work begun now
 * may be for either. */
static struct link_ctx *owner_latest(struct trace_links *tl, uint32_t pid, const struct link_ref *o)
{
	struct conn *sc = NULL;
	struct link_ctx *x = ref_find(tl, pid, o, &sc);
	const struct link_ring *r = sc ? sc->links : NULL;

	if (!x || !r || !r->n || r->ctx[(r->head + r->n - 1) % LINK_RING_MAX].seq != x->seq)
		return NULL;
	return x;
}

/* The request a task made now works for, when that is sure (into *out):
 *  - made in a read's segment: the one server request the read carried
 *    (uvicorn's data_received makes the request's task);
 *  - made in a step of a task made for request R: R, while R is in flight and
 *    the last one read on its connection (its children: a task group's, a
 *    happy-eyeballs connect's);
 *  - made in a step of the task that wrote R's answer (R: the request its
 *    task was made for), once R is answered, while R's connection holds one
 *    request in flight, read after R by a callback that made no task: that
 *    one, once (uvicorn queues a request read while the previous answer is
 *    still open, and makes its task when the answering task sends the end of
 *    that answer: on_response_complete).
 * A response read's segment is nobody's (its callback may wake several). */
static struct link_ctx *made_for(struct trace_links *tl, uint32_t pid, const struct loop_turn *turn,
                                 const struct task_slot *maker, bool in_segment,
                                 struct link_ref *out)
{
	struct link_ctx *x;
	struct conn *sc;

	if (!in_segment || !turn)
		return NULL;
	if (!turn->task) {
		if (turn->owners != 1 || !turn->last_ok || turn->by_response)
			return NULL;
		*out = turn->owner;
		return owner_latest(tl, pid, out);
	}
	if (!turn->task_owned)
		return NULL;
	*out = turn->task_owner;
	if ((x = owner_latest(tl, pid, out)) != NULL)
		return x;
	if (!maker || maker->wrote.fd != out->fd || maker->wrote.sock_id != out->sock_id)
		return NULL; /* not the task that answered R */
	sc = ref_conn(tl, pid, out);
	if (!sc || !sc->links || sc->links->n != 1)
		return NULL;
	x = &sc->links->ctx[sc->links->head];
	if (!x->no_task || x->task_made || x->seq <= out->seq)
		return NULL;
	out->seq = x->seq;
	return x;
}

/* A step of task s, made by a callback that read nothing, that has answered
 * on a server connection before (itself, or a task it made: aiohttp's
 * per-request one): a connection's own task (an asyncio.start_server
 * handler, aiohttp's request loop) woken by a read of that connection. The
 * one request in flight there, read by a callback that made no task and
 * with no task made for it since, is what the step works for. A request's
 * own task never gets this (made by a read or a task, or before the agent:
 * not for_conn): its steps after its answer are its request's background
 * work, not the next request's. */
static struct link_ctx *conn_task_request(struct trace_links *tl, uint32_t pid,
                                          const struct task_slot *s)
{
	struct conn *sc;
	struct link_ctx *x;

	if (!s->for_conn || !s->wrote.sock_id || !(sc = ref_conn(tl, pid, &s->wrote)) ||
	    !sc->links || sc->links->n != 1 || conn_multiplexed(sc))
		return NULL;
	x = &sc->links->ctx[sc->links->head];
	return x->no_task && !x->task_made ? x : NULL;
}

void trace_links_task(struct trace_links *tl, uint32_t pid, uint64_t actor, uint64_t task,
                      bool enter)
{
	uint32_t tid, gkey, tick;
	struct task_slot *s;
	struct loop_turn *turn;
	struct link_ctx *x;

	actor_split(actor, &tid, &gkey, &tick);
	if (!task || !(tick & LINK_TICK_PHASED_BIT))
		return;
	if (!enter) {
		turn = loop_current(tl, pid, tid, tick);
		s = task_place(tl, pid, task);
		s->maker = turn && turn->task ? turn->task_ptr : 0;
		x = made_for(tl, pid, turn,
		             turn && turn->task ? task_of(tl, pid, turn->task_ptr) : NULL,
		             actor_timer_safe(actor), &s->owner);
		if (turn)
			turn->made = true;
		if (x) {
			x->task_made = true;
			s->owned = true;
		} else {
			/* no turn: nothing was read in its callback */
			s->for_conn = !turn || (!turn->task && !turn->owners && !turn->by_response);
		}
		tl->stats.tasks_made++;
		tl->stats.tasks_owned += s->owned;
		return;
	}
	turn = loop_take(tl, pid, tid, tick);
	turn->task = true;
	turn->task_ptr = task;
	s = task_of(tl, pid, task);
	if (s)
		s->used = ++tl->task_clock;
	else
		s = task_place(tl, pid, task); /* made before: no owner */
	turn->task_owned = s->owned;
	if (turn->task_owned) {
		turn->task_owner = s->owner;
	} else if ((x = conn_task_request(tl, pid, s)) != NULL) {
		turn->task_owned = true;
		turn->task_owner = (struct link_ref){
		    .fd = s->wrote.fd, .sock_id = s->wrote.sock_id, .seq = x->seq};
		tl->stats.conn_task_steps++;
	}
}

void trace_links_get_stats(const struct trace_links *tl, struct trace_links_stats *out)
{
	*out = tl->stats;
}
