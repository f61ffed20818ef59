/* session.c — per-connection protocol state: recognises the protocol from the
 * first bytes (by content, never by port), maps read/write to request/response
 * streams by the connection's role, and feeds the right parser. */
#include <stdbool.h>
#include <stdlib.h>

#include "conn/session.h"
#include "conn/trace_links.h"

/* Chunks we look at before deciding a connection speaks nothing we parse. */
#define DETECT_GIVE_UP_CHUNKS 8

struct session {
	struct conn *conn;
	const struct session_sink *sink;
	uint8_t undetected_chunks;
	bool tls; /* plaintext comes from TLS library probes; socket bytes are ciphertext */
	uint64_t cur_actor;       /* who moved the event being fed (trace_links.h) */
	const struct l7_ops *ops; /* the connection's protocol, once known */
	void *parser;             /* ops->create's, owned */
	struct l7_callbacks cb;   /* what the parser reports to: back to this session */
};

static void on_exchange(void *ctx, enum l7_protocol kind, const void *ex)
{
	struct session *s = ctx;

	if (s->sink && s->sink->exchange)
		s->sink->exchange(s->sink->ctx, s->conn, kind, ex, s->cur_actor);
}

static void on_request(void *ctx, enum l7_protocol kind, const void *req)
{
	struct session *s = ctx;

	if (s->sink && s->sink->request)
		s->sink->request(s->sink->ctx, s->conn, kind, req, s->cur_actor);
}

/* Which stream a read or write belongs to, given the role. */
static enum stream_dir stream_dir_of(uint8_t role, uint8_t direction)
{
	int is_request = (role == PSCOPE_ROLE_SERVER) == (direction == PSCOPE_DIR_INGRESS);
	return is_request ? STREAM_DIR_REQUEST : STREAM_DIR_RESPONSE;
}

/* The role that makes bytes moved in `direction` belong to stream `dir`. */
static uint8_t role_for(enum stream_dir dir, uint8_t direction)
{
	bool req = dir == STREAM_DIR_REQUEST, ingress = direction == PSCOPE_DIR_INGRESS;

	return req == ingress ? PSCOPE_ROLE_SERVER : PSCOPE_ROLE_CLIENT;
}

/* Recognises the protocol (and, for sockets older than the agent, the role)
 * from the first captured bytes of a chunk: the first protocol of the table
 * whose detector accepts them. */
static void detect(struct conn *c, const struct pscope_data_event *e)
{
	bool role_known = c->ref.role != PSCOPE_ROLE_UNKNOWN;
	int want = role_known ? (int)stream_dir_of(c->ref.role, e->direction) : -1;

	for (size_t i = 0; i < l7_protocol_count; i++) {
		int d = l7_protocols[i]->detect(e->payload, e->captured, want);

		if (d < 0)
			continue;
		if (!role_known)
			c->ref.role = role_for((enum stream_dir)d, e->direction);
		c->protocol = l7_protocols[i]->id;
		return;
	}
}

static void parser_free(struct session *s)
{
	if (s->ops && s->parser)
		s->ops->destroy(s->parser);
	s->parser = NULL;
}

static void *parser_new(struct session *s, uint8_t proto)
{
	s->ops = l7_ops_of(proto);
	if (!s->ops)
		return NULL;
	s->cb.exchange = on_exchange;
	s->cb.request = on_request;
	s->cb.ctx = s;
	s->cb.pool = s->sink ? s->sink->pool : NULL;
	s->parser = s->ops->create(&s->cb);
	return s->parser;
}

/* The parser said the connection changes protocol (an h2c upgrade): the new
 * protocol's parser takes over from what the old one hands it, and gets the
 * rest of the chunk. The requests in flight are forgotten by the sink (their
 * numbering starts over with the new parser). */
static void switch_protocol(struct session *s, const struct pscope_data_event *e,
                            const struct stream_chunk *chunk, const struct session_sink *sink,
                            struct session_stats *st)
{
	struct conn *c = s->conn;
	struct l7_switch sw = {0};
	const struct l7_ops *to;
	void *p = NULL;

	if (!s->ops->switch_info || !s->ops->switch_info(s->parser, &sw))
		return;
	to = l7_ops_of(sw.to);
	if (to && to->create_switched)
		p = to->create_switched(&s->cb, &sw);
	parser_free(s);
	if (sink->reset)
		sink->reset(sink->ctx, c);
	if (!p) {
		c->protocol = L7_NONE; /* nothing to parse it with */
		s->ops = NULL;
		return;
	}
	st->switches++;
	c->protocol = sw.to;
	s->ops = to;
	s->parser = p;
	if (sw.consumed < chunk->len) {
		struct stream_chunk rest = *chunk;

		rest.data += sw.consumed;
		rest.len -= sw.consumed;
		if (to->feed(p, stream_dir_of(c->ref.role, e->direction), &rest) < 0)
			st->parse_errors++;
	} else if (chunk->missing) {
		struct stream_chunk rest = *chunk;

		rest.len = 0;
		to->feed(p, stream_dir_of(c->ref.role, e->direction), &rest);
	}
}

void session_on_data(struct conn *c, const struct pscope_data_event *e,
                     const struct session_sink *sink, struct session_stats *st)
{
	struct session *s = c->session;
	struct stream_chunk chunk;
	bool tls_event = e->hdr.flags & PSCOPE_EVF_TLS;
	bool ingress;
	int rc;

	if (s && s->tls && !tls_event)
		return; /* ciphertext of a connection we read at its TLS library */
	if (tls_event && (!s || !s->tls)) {
		/* The first plaintext of a TLS connection: what the socket showed so
		 * far was the handshake. Start over on the plaintext. */
		if (s) {
			parser_free(s);
			s->undetected_chunks = 0;
		}
		c->protocol = L7_UNKNOWN;
		c->flags = (c->flags | CONN_FLAG_TLS) & ~CONN_FLAG_KERNEL_SKIP;
	}
	if (c->protocol == L7_NONE)
		return;
	if ((e->hdr.flags & PSCOPE_EVF_LOST) && s && s->parser) {
		/* The kernel lost events of this connection: what the parser holds
		 * would pair requests with the wrong responses. Start over from
		 * here, without the requests in flight (no span rather than a
		 * wrong one). */
		parser_free(s);
		st->resyncs++;
		if (sink->reset)
			sink->reset(sink->ctx, c);
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s) {
			st->alloc_failures++;
			return;
		}
		s->conn = c;
		c->session = s;
	}
	if (tls_event)
		s->tls = true;
	s->sink = sink;
	if (c->protocol == L7_UNKNOWN) {
		detect(c, e);
		if (c->protocol == L7_UNKNOWN) {
			if (++s->undetected_chunks >= DETECT_GIVE_UP_CHUNKS) {
				c->protocol = L7_NONE;
				st->unrecognised_conns++;
			}
			return;
		}
		/* A database's own side of its connections: the clients' spans
		 * already describe these operations, so it is not parsed. */
		const struct l7_ops *ops = l7_ops_of(c->protocol);
		if (ops && !ops->parse_server_side && c->ref.role == PSCOPE_ROLE_SERVER) {
			c->protocol = L7_NONE;
			return;
		}
	}
	if (!s->parser && !parser_new(s, c->protocol)) {
		st->alloc_failures++;
		return;
	}

	chunk.data = e->payload;
	chunk.len = e->captured;
	chunk.missing = e->bytes > e->captured ? e->bytes - e->captured : 0;
	if (e->direction == PSCOPE_DIR_INGRESS) {
		chunk.ts_first_ns =
		    e->hdr.timestamp_ns; /* the bytes were there when read returned */
		chunk.ts_last_ns = e->hdr.timestamp_ns;
	} else {
		chunk.ts_first_ns = e->enter_ns;
		chunk.ts_last_ns = e->hdr.timestamp_ns;
	}
	s->cur_actor = e->conn.tid;
	if ((c->flags & CONN_FLAG_GO) && e->goroutine)
		s->cur_actor |= (uint64_t)(e->goroutine | LINK_GOROUTINE_BIT) << 32;
	else if (e->conn.tick)
		s->cur_actor = link_loop_actor(e->conn.tid, e->conn.tick);
	ingress = e->direction == PSCOPE_DIR_INGRESS;
	if (sink->io)
		sink->io(sink->ctx, c, s->cur_actor, ingress, true, s->ops->request_hook);
	rc = s->ops->feed(s->parser, stream_dir_of(c->ref.role, e->direction), &chunk);
	if (rc < 0)
		st->parse_errors++;
	else if (rc == L7_FEED_SWITCH)
		switch_protocol(s, e, &chunk, sink, st);
	if (sink->io && c->session == s && s->ops)
		sink->io(sink->ctx, c, s->cur_actor, ingress, false, s->ops->request_hook);
}

void session_on_close(struct conn *c, uint64_t ts_ns, uint32_t tid, enum l7_end how)
{
	struct session *s = c->session;

	if (!s || !s->parser)
		return;
	s->cur_actor = tid;
	if (how != L7_END_LOST && s->ops->pending && s->ops->pending(s->parser) && s->sink &&
	    s->sink->lost_since && s->sink->lost_since(s->sink->ctx, c))
		how = L7_END_LOST;
	s->ops->close(s->parser, ts_ns, how);
}

void session_free(struct conn *c)
{
	struct session *s = c->session;

	if (!s)
		return;
	parser_free(s);
	free(s);
	c->session = NULL;
}
