/* protocol.c — the protocol table the session layer iterates: one `struct
 * l7_ops` per protocol, in detection order, and the adapters that put the
 * HTTP/1 and database parsers behind it. A new protocol defines its ops in
 * its own module and adds one line to l7_protocols. */
#include <stddef.h>
#include <stdio.h>

#include <string.h>

#include "parsers/http1.h"
#include "parsers/http2.h"
#include "parsers/mysql.h"
#include "parsers/pgsql.h"
#include "parsers/protocol.h"
#include "parsers/redis.h"
#include "util/mem_pool.h"

/* ---- HTTP/1.x ---- */

static void http1_exchange_cb(void *ctx, const struct http1_exchange *ex)
{
	const struct l7_callbacks *cb = ctx;

	if (cb->exchange)
		cb->exchange(cb->ctx, L7_HTTP1, ex);
}

static void http1_request_cb(void *ctx, const struct http1_exchange *req)
{
	const struct l7_callbacks *cb = ctx;

	if (cb->request)
		cb->request(cb->ctx, L7_HTTP1, req);
}

/* Either direction is accepted even when the role is known: a request or a
 * status line is HTTP whichever end shows it first. */
static int http1_ops_detect(const uint8_t *data, size_t len, int dir)
{
	return http1_detect(data, len);
}

static void *http1_ops_create(const struct l7_callbacks *cb)
{
	struct http1_parser *p = http1_parser__new(http1_exchange_cb, (void *)cb);

	if (p) {
		http1_parser_set_request_fn(p, http1_request_cb);
		http1_parser_set_pool(p, cb->pool);
	}
	return p;
}

static void http1_ops_destroy(void *p)
{
	http1_parser__free(p);
}

static int http1_ops_feed(void *p, enum stream_dir dir, const struct stream_chunk *c)
{
	return http1_parser_feed(p, dir, c);
}

static void http1_ops_close(void *p, uint64_t ts_ns, enum l7_end how)
{
	http1_parser_close(p, ts_ns, how);
}

/* "Upgrade: h2c" answered by 101: the connection goes on as HTTP/2. */
static bool http1_ops_switch_info(void *p, struct l7_switch *sw)
{
	size_t consumed = 0;
	const struct http1_exchange *req = http1_parser_upgrade(p, &consumed);

	if (!req)
		return false;
	sw->from = L7_HTTP1;
	sw->to = L7_HTTP2;
	sw->state = req;
	sw->consumed = consumed;
	return true;
}

static bool http1_ops_pending(const void *p)
{
	return http1_parser_pending(p);
}

static const struct l7_ops http1_ops = {
    .id = L7_HTTP1,
    .name = "http1",
    .detect = http1_ops_detect,
    .parse_server_side = true,
    .request_hook = true,
    .create = http1_ops_create,
    .destroy = http1_ops_destroy,
    .feed = http1_ops_feed,
    .switch_info = http1_ops_switch_info,
    .close = http1_ops_close,
    .pending = http1_ops_pending,
};

/* ---- HTTP/2 ---- */

static void http2_exchange_cb(void *ctx, const struct http2_exchange *ex)
{
	const struct l7_callbacks *cb = ctx;

	if (cb->exchange)
		cb->exchange(cb->ctx, L7_HTTP2, ex);
}

static void http2_request_cb(void *ctx, const struct http2_exchange *req)
{
	const struct l7_callbacks *cb = ctx;

	if (cb->request)
		cb->request(cb->ctx, L7_HTTP2, req);
}

/* An HPACK integer with an N-bit prefix at p[*i] (advances *i); -1 when cut
 * or too large. */
static long hpack_int_at(const uint8_t *p, size_t n, size_t *i, unsigned bits)
{
	unsigned long max = (1u << bits) - 1, v;

	if (*i >= n)
		return -1;
	v = p[(*i)++] & max;
	if (v < max)
		return (long)v;
	for (unsigned shift = 0; shift <= 21; shift += 7) {
		if (*i >= n)
			return -1;
		v += (unsigned long)(p[*i] & 0x7f) << shift;
		if (!(p[(*i)++] & 0x80))
			return (long)v;
	}
	return -1;
}

/* Skips an HPACK string literal at p[*i]; false when cut. */
static bool hpack_skip_string(const uint8_t *p, size_t n, size_t *i)
{
	long len = hpack_int_at(p, n, i, 7);

	if (len < 0 || (size_t)len > n - *i)
		return false;
	*i += (size_t)len;
	return true;
}

/* The direction a header block's fields say: the first field (in order)
 * whose name is a static request pseudo-header (:authority, :method, :path,
 * :scheme: indexes 1-7) or :status (8-14). Fields referencing other entries
 * (a late-joined connection's unknown dynamic ones) are skipped over, so a
 * gRPC C core request that starts with an indexed :path still shows its
 * static `:method POST`. -1 when no field says. */
static int block_dir(const uint8_t *p, size_t n)
{
	size_t i = 0;

	for (int fields = 0; i < n && fields < 32; fields++) {
		long idx;

		if ((p[i] & 0xe0) == 0x20) { /* dynamic table size update */
			if (hpack_int_at(p, n, &i, 5) < 0)
				return -1;
			continue;
		}
		if (p[i] & 0x80) {
			idx = hpack_int_at(p, n, &i, 7);
		} else {
			idx = hpack_int_at(p, n, &i, (p[i] & 0xc0) == 0x40 ? 6 : 4);
			if (idx == 0 && !hpack_skip_string(p, n, &i))
				return -1; /* a literal name */
			if (idx < 0 || !hpack_skip_string(p, n, &i))
				return -1;
		}
		if (idx < 0)
			return -1;
		if (idx >= 1 && idx <= 7)
			return STREAM_DIR_REQUEST;
		if (idx >= 8 && idx <= 14)
			return STREAM_DIR_RESPONSE;
	}
	return -1;
}

/* A connection joined mid-way whose role is unknown: whose bytes are these?
 * The first HEADERS frame tells (block_dir): a request block names :authority,
 * :method, :path or :scheme (static indexes 1-7), a response :status (8-14).
 * -1 when no HEADERS frame says. */
static int http2_guess_dir(const uint8_t *p, size_t n)
{
	size_t off = 0;

	for (int frames = 0; off + 9 <= n && frames < 8; frames++) {
		size_t len = (size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2];
		size_t b = off + 9, end = b + len < n ? b + len : n;
		uint8_t flags = p[off + 4];

		if (p[off + 3] == 1) { /* HEADERS */
			if (flags & 0x08)
				b++;
			if (flags & 0x20)
				b += 5;
			if (b < end) {
				int d = block_dir(p + b, end - b);

				if (d >= 0)
					return d;
			}
		}
		off += 9 + len;
	}
	return -1;
}

/* The client preface; or, for a connection the agent joined (role unknown),
 * a plausible chain of frames whose HEADERS say the direction; or, on a
 * connection seen from its start, the server's SETTINGS when the client's
 * preface was missed. */
static int http2_ops_detect(const uint8_t *data, size_t len, int dir)
{
	enum http2_detect_result r = http2_detect(data, len);

	if (r == HTTP2_DETECT_PREFACE)
		return dir < 0 || dir == STREAM_DIR_REQUEST ? STREAM_DIR_REQUEST : -1;
	if (r != HTTP2_DETECT_FRAMES)
		return -1;
	if (dir < 0)
		return http2_guess_dir(data, len);
	if (dir == STREAM_DIR_RESPONSE && len >= 9 && data[3] == 4 && !(data[4] & 1))
		return dir;
	return -1;
}

static void *http2_ops_create(const struct l7_callbacks *cb)
{
	struct http2_conn *c = http2_conn__new(http2_exchange_cb, (void *)cb);

	if (c)
		http2_conn_set_request_fn(c, http2_request_cb);
	return c;
}

/* h2c: the HTTP/1.1 request that asked for the upgrade becomes stream 1. */
static void *http2_ops_create_switched(const struct l7_callbacks *cb, const struct l7_switch *sw)
{
	const struct http1_exchange *h1 = sw->state;
	struct http2_exchange req;
	struct http2_conn *c;

	if (sw->from != L7_HTTP1 || !h1)
		return NULL;
	c = http2_ops_create(cb);
	if (!c)
		return NULL;
	memset(&req, 0, sizeof(req));
#define COPY_STR(dst, src) snprintf(dst, sizeof(dst), "%s", src)
	COPY_STR(req.method, h1->method);
	COPY_STR(req.path, h1->target);
	COPY_STR(req.authority, h1->host);
	COPY_STR(req.scheme, "http");
	COPY_STR(req.user_agent, h1->user_agent);
	COPY_STR(req.traceparent, h1->traceparent);
	COPY_STR(req.tracestate, h1->tracestate);
#undef COPY_STR
	req.path_truncated = h1->target_truncated;
	req.req_start_ns = h1->req_start_ns;
	req.req_end_ns = h1->req_end_ns;
	req.request_body_size = h1->request_body_size;
	if (http2_conn__start_upgraded(c, &req, h1->http2_settings, strlen(h1->http2_settings)) <
	    0) {
		http2_conn__free(c);
		return NULL;
	}
	return c;
}

static void http2_ops_destroy(void *p)
{
	http2_conn__free(p);
}

static int http2_ops_feed(void *p, enum stream_dir dir, const struct stream_chunk *c)
{
	return http2_conn_feed(p, dir, c);
}

static void http2_ops_close(void *p, uint64_t ts_ns, enum l7_end how)
{
	http2_conn_close_how(p, ts_ns, how);
}

static bool http2_ops_pending(const void *p)
{
	return http2_conn_pending(p);
}

static const struct l7_ops http2_ops = {
    .id = L7_HTTP2,
    .name = "http2",
    .detect = http2_ops_detect,
    .parse_server_side = true,
    .request_hook = true,
    .create = http2_ops_create,
    .create_switched = http2_ops_create_switched,
    .destroy = http2_ops_destroy,
    .feed = http2_ops_feed,
    .close = http2_ops_close,
    .multiplexed = true,
    .pending = http2_ops_pending,
};

/* ---- databases: one exchange type (db_exchange), the same shape of API ---- */

static void db_exchange_cb(const struct l7_callbacks *cb, enum l7_protocol kind,
                           const struct db_exchange *ex)
{
	if (cb->exchange)
		cb->exchange(cb->ctx, kind, ex);
}

typedef int (*db_detect_fn)(const uint8_t *data, size_t len, enum stream_dir dir);

static int db_detect(db_detect_fn fn, const uint8_t *data, size_t len, int dir)
{
	if (dir >= 0)
		return fn(data, len, (enum stream_dir)dir) == 1 ? dir : -1;
	for (int d = STREAM_DIR_REQUEST; d <= STREAM_DIR_RESPONSE; d++)
		if (fn(data, len, (enum stream_dir)d) == 1)
			return d;
	return -1;
}

/* Defines the ops of database parser NAME (NAME_parser__new, _feed, _close,
 * _free, NAME_detect). */
#define DB_OPS(NAME, ID)                                                                           \
	static void NAME##_exchange_cb(void *ctx, const struct db_exchange *ex)                    \
	{                                                                                          \
		db_exchange_cb(ctx, ID, ex);                                                       \
	}                                                                                          \
	static int NAME##_ops_detect(const uint8_t *data, size_t len, int dir)                     \
	{                                                                                          \
		return db_detect(NAME##_detect, data, len, dir);                                   \
	}                                                                                          \
	static void *NAME##_ops_create(const struct l7_callbacks *cb)                              \
	{                                                                                          \
		return NAME##_parser__new(NAME##_exchange_cb, (void *)cb);                         \
	}                                                                                          \
	static void NAME##_ops_destroy(void *p)                                                    \
	{                                                                                          \
		NAME##_parser__free(p);                                                            \
	}                                                                                          \
	static int NAME##_ops_feed(void *p, enum stream_dir dir, const struct stream_chunk *c)     \
	{                                                                                          \
		return NAME##_parser_feed(p, dir, c);                                              \
	}                                                                                          \
	static void NAME##_ops_close(void *p, uint64_t ts_ns, enum l7_end how)                     \
	{                                                                                          \
		NAME##_parser_close(p, ts_ns);                                                     \
	}                                                                                          \
	static const struct l7_ops NAME##_ops = {                                                  \
	    .id = ID,                                                                              \
	    .name = #NAME,                                                                         \
	    .detect = NAME##_ops_detect,                                                           \
	    .parse_server_side = false,                                                            \
	    .request_hook = false,                                                                 \
	    .create = NAME##_ops_create,                                                           \
	    .destroy = NAME##_ops_destroy,                                                         \
	    .feed = NAME##_ops_feed,                                                               \
	    .close = NAME##_ops_close,                                                             \
	}

DB_OPS(pgsql, L7_PGSQL);
DB_OPS(mysql, L7_MYSQL);
DB_OPS(redis, L7_REDIS);

/* ---- the table ---- */

const struct l7_ops *const l7_protocols[] = {
    &http1_ops, &http2_ops, &pgsql_ops, &mysql_ops, &redis_ops,
};
const size_t l7_protocol_count = sizeof(l7_protocols) / sizeof(l7_protocols[0]);

/* Blocks kept for reuse: enough for the requests in flight on a few dozen
 * busy connections; the rest goes back to malloc. */
#define L7_POOL_KEEP 64

struct mem_pool *l7_pool__new(void)
{
	return mem_pool__new(http1_request_block_size(), L7_POOL_KEEP);
}

const struct l7_ops *l7_ops_of(uint8_t id)
{
	for (size_t i = 0; i < l7_protocol_count; i++)
		if (l7_protocols[i]->id == id)
			return l7_protocols[i];
	return NULL;
}
