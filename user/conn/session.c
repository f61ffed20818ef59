/* session.c — per-connection protocol state: recognises the protocol from the
 * first bytes (by content, never by port), maps read/write to request/response
 * streams by the connection's role, and feeds the right parser. */
#include <stdbool.h>
#include <stdlib.h>

#include "parsers/mysql.h"
#include "parsers/pgsql.h"
#include "parsers/redis.h"
#include "conn/session.h"
#include "conn/trace_links.h"

/* Chunks we look at before deciding a connection speaks nothing we parse. */
#define DETECT_GIVE_UP_CHUNKS 8

struct session {
	struct conn *conn;
	const struct session_sink *sink;
	uint8_t undetected_chunks;
	bool tls; /* plaintext comes from TLS library probes; socket bytes are ciphertext */
	uint64_t cur_actor; /* who moved the event being fed (trace_links.h) */
	union {
		struct http1_parser *http1;
		struct pgsql_parser *pgsql;
		struct mysql_parser *mysql;
		struct redis_parser *redis;
		void *any;
	} parser;
};

static void on_http1_exchange(void *ctx, const struct http1_exchange *ex)
{
	struct session *s = ctx;

	if (s->sink && s->sink->http)
		s->sink->http(s->sink->ctx, s->conn, ex, s->cur_actor);
}

static void on_http1_request(void *ctx, const struct http1_exchange *req)
{
	struct session *s = ctx;

	if (s->sink && s->sink->http_request)
		s->sink->http_request(s->sink->ctx, s->conn, req, s->cur_actor);
}

static void on_db_exchange(void *ctx, const struct db_exchange *ex)
{
	struct session *s = ctx;

	if (s->sink && s->sink->db)
		s->sink->db(s->sink->ctx, s->conn, ex, s->cur_actor);
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

typedef int (*db_detect_fn)(const uint8_t *data, size_t len, enum stream_dir dir);

static const struct {
	enum l7_protocol proto;
	db_detect_fn detect;
} db_protocols[] = {
    {L7_PGSQL, pgsql_detect},
    {L7_MYSQL, mysql_detect},
    {L7_REDIS, redis_detect},
};

/* Recognises the protocol (and, for sockets older than the agent, the role)
 * from the first captured bytes of a chunk. */
static void detect(struct conn *c, const struct pscope_data_event *e)
{
	int d = http1_detect(e->payload, e->captured);

	if (d >= 0) {
		if (c->ref.role == PSCOPE_ROLE_UNKNOWN)
			c->ref.role = role_for((enum stream_dir)d, e->direction);
		c->protocol = L7_HTTP1;
		return;
	}
	for (size_t i = 0; i < sizeof(db_protocols) / sizeof(db_protocols[0]); i++) {
		if (c->ref.role != PSCOPE_ROLE_UNKNOWN) {
			enum stream_dir dir = stream_dir_of(c->ref.role, e->direction);

			if (db_protocols[i].detect(e->payload, e->captured, dir) == 1) {
				c->protocol = db_protocols[i].proto;
				return;
			}
			continue;
		}
		for (int dir = STREAM_DIR_REQUEST; dir <= STREAM_DIR_RESPONSE; dir++) {
			if (db_protocols[i].detect(e->payload, e->captured, dir) == 1) {
				c->ref.role = role_for((enum stream_dir)dir, e->direction);
				c->protocol = db_protocols[i].proto;
				return;
			}
		}
	}
}

static void parser_free(struct session *s, uint8_t proto)
{
	switch (proto) {
	case L7_HTTP1:
		http1_parser__free(s->parser.http1);
		break;
	case L7_PGSQL:
		pgsql_parser__free(s->parser.pgsql);
		break;
	case L7_MYSQL:
		mysql_parser__free(s->parser.mysql);
		break;
	case L7_REDIS:
		redis_parser__free(s->parser.redis);
		break;
	}
	s->parser.any = NULL;
}

static void *parser_new(struct session *s, uint8_t proto)
{
	switch (proto) {
	case L7_HTTP1:
		s->parser.http1 = http1_parser__new(on_http1_exchange, s);
		if (s->parser.http1)
			http1_parser_set_request_fn(s->parser.http1, on_http1_request);
		break;
	case L7_PGSQL:
		s->parser.pgsql = pgsql_parser__new(on_db_exchange, s);
		break;
	case L7_MYSQL:
		s->parser.mysql = mysql_parser__new(on_db_exchange, s);
		break;
	case L7_REDIS:
		s->parser.redis = redis_parser__new(on_db_exchange, s);
		break;
	}
	return s->parser.any;
}

static int parser_feed(struct session *s, uint8_t proto, enum stream_dir dir,
                       const struct stream_chunk *chunk)
{
	switch (proto) {
	case L7_HTTP1:
		return http1_parser_feed(s->parser.http1, dir, chunk);
	case L7_PGSQL:
		return pgsql_parser_feed(s->parser.pgsql, dir, chunk);
	case L7_MYSQL:
		return mysql_parser_feed(s->parser.mysql, dir, chunk);
	case L7_REDIS:
		return redis_parser_feed(s->parser.redis, dir, chunk);
	}
	return 0;
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
			parser_free(s, c->protocol);
			s->undetected_chunks = 0;
		}
		c->protocol = L7_UNKNOWN;
		c->flags = (c->flags | CONN_FLAG_TLS) & ~CONN_FLAG_KERNEL_SKIP;
	}
	if (c->protocol == L7_NONE)
		return;
	if ((e->hdr.flags & PSCOPE_EVF_LOST) && s && s->parser.any) {
		/* The kernel lost events of this connection: what the parser holds
		 * would pair requests with the wrong responses. Start over from
		 * here, without the requests in flight (no span rather than a
		 * wrong one). */
		parser_free(s, c->protocol);
		s->parser.any = NULL;
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
		if (c->protocol != L7_HTTP1 && c->ref.role == PSCOPE_ROLE_SERVER) {
			c->protocol = L7_NONE;
			return;
		}
	}
	if (!s->parser.any && !parser_new(s, c->protocol)) {
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
	if (parser_feed(s, c->protocol, stream_dir_of(c->ref.role, e->direction), &chunk) < 0)
		st->parse_errors++;
}

void session_on_close(struct conn *c, uint64_t ts_ns, uint32_t tid)
{
	struct session *s = c->session;

	if (!s || !s->parser.any)
		return;
	s->cur_actor = tid;
	switch (c->protocol) {
	case L7_HTTP1:
		http1_parser_close(s->parser.http1, ts_ns);
		break;
	case L7_PGSQL:
		pgsql_parser_close(s->parser.pgsql, ts_ns);
		break;
	case L7_MYSQL:
		mysql_parser_close(s->parser.mysql, ts_ns);
		break;
	case L7_REDIS:
		redis_parser_close(s->parser.redis, ts_ns);
		break;
	}
}

void session_free(struct conn *c)
{
	struct session *s = c->session;

	if (!s)
		return;
	parser_free(s, c->protocol);
	free(s);
	c->session = NULL;
}
