/* session.c — per-connection protocol state: recognises the protocol from the
 * first bytes, maps read/write to request/response streams by the connection's
 * role, and feeds the right parser. */
#include <stdbool.h>
#include <stdlib.h>

#include "session.h"

/* Bytes we look at before deciding a connection speaks nothing we parse. */
#define DETECT_GIVE_UP_CHUNKS 8

struct session {
	struct conn *conn;
	const struct session_sink *sink;
	uint8_t undetected_chunks;
	bool tls; /* plaintext comes from TLS library probes; socket bytes are ciphertext */
	uint32_t cur_tid; /* thread of the event being fed */
	struct http1_parser *http1;
};

static void on_http1_exchange(void *ctx, const struct http1_exchange *ex)
{
	struct session *s = ctx;

	if (s->sink && s->sink->http)
		s->sink->http(s->sink->ctx, s->conn, ex, s->cur_tid);
}

static void on_http1_request(void *ctx, const struct http1_exchange *req)
{
	struct session *s = ctx;

	if (s->sink && s->sink->http_request)
		s->sink->http_request(s->sink->ctx, s->conn, req, s->cur_tid);
}

/* Which stream a read or write belongs to, given the role. */
static enum stream_dir stream_dir_of(uint8_t role, uint8_t direction)
{
	int is_request = (role == PSCOPE_ROLE_SERVER) == (direction == PSCOPE_DIR_INGRESS);
	return is_request ? STREAM_DIR_REQUEST : STREAM_DIR_RESPONSE;
}

/* Recognises the protocol (and, for sockets older than the agent, the role)
 * from the first captured bytes of a chunk. */
static void detect(struct conn *c, const struct pscope_data_event *e)
{
	int d = http1_detect(e->payload, e->captured);

	if (d < 0)
		return;
	if (c->ref.role == PSCOPE_ROLE_UNKNOWN) {
		int req = d == STREAM_DIR_REQUEST;
		int ingress = e->direction == PSCOPE_DIR_INGRESS;
		c->ref.role = req == ingress ? PSCOPE_ROLE_SERVER : PSCOPE_ROLE_CLIENT;
	}
	c->protocol = L7_HTTP1;
}

void session_on_data(struct conn *c, const struct pscope_data_event *e,
                     const struct session_sink *sink, struct session_stats *st)
{
	struct session *s = c->session;
	struct stream_chunk chunk;

	bool tls_event = e->hdr.flags & PSCOPE_EVF_TLS;

	if (s && s->tls && !tls_event)
		return; /* ciphertext of a connection we read at its TLS library */
	if (tls_event && (!s || !s->tls)) {
		/* The first plaintext of a TLS connection: what the socket showed so
		 * far was the handshake. Start over on the plaintext. */
		if (s) {
			http1_parser__free(s->http1);
			s->http1 = NULL;
			s->undetected_chunks = 0;
		}
		c->protocol = L7_UNKNOWN;
		c->flags = (c->flags | CONN_FLAG_TLS) & ~CONN_FLAG_KERNEL_SKIP;
	}
	if (c->protocol == L7_NONE)
		return;
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
	}
	if (c->protocol == L7_HTTP1 && !s->http1) {
		s->http1 = http1_parser__new(on_http1_exchange, s);
		if (!s->http1) {
			st->alloc_failures++;
			return;
		}
		http1_parser_set_request_fn(s->http1, on_http1_request);
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
	s->cur_tid = e->conn.tid;
	if (http1_parser_feed(s->http1, stream_dir_of(c->ref.role, e->direction), &chunk) < 0)
		st->parse_errors++;
}

void session_on_close(struct conn *c, uint64_t ts_ns, uint32_t tid)
{
	struct session *s = c->session;

	if (s)
		s->cur_tid = tid;
	if (s && s->http1)
		http1_parser_close(s->http1, ts_ns);
}

void session_free(struct conn *c)
{
	struct session *s = c->session;

	if (!s)
		return;
	http1_parser__free(s->http1);
	free(s);
	c->session = NULL;
}
