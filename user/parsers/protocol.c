/* protocol.c — the protocol table the session layer iterates: one `struct
 * l7_ops` per protocol, in detection order, and the adapters that put the
 * HTTP/1 and database parsers behind it. A new protocol defines its ops in
 * its own module and adds one line to l7_protocols. */
#include <stddef.h>

#include "parsers/http1.h"
#include "parsers/mysql.h"
#include "parsers/pgsql.h"
#include "parsers/protocol.h"
#include "parsers/redis.h"

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

	if (p)
		http1_parser_set_request_fn(p, http1_request_cb);
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

static const struct l7_ops http1_ops = {
    .id = L7_HTTP1,
    .name = "http1",
    .detect = http1_ops_detect,
    .parse_server_side = true,
    .create = http1_ops_create,
    .destroy = http1_ops_destroy,
    .feed = http1_ops_feed,
    .close = http1_ops_close,
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
    &http1_ops,
    &pgsql_ops,
    &mysql_ops,
    &redis_ops,
};
const size_t l7_protocol_count = sizeof(l7_protocols) / sizeof(l7_protocols[0]);

const struct l7_ops *l7_ops_of(uint8_t id)
{
	for (size_t i = 0; i < l7_protocol_count; i++)
		if (l7_protocols[i]->id == id)
			return l7_protocols[i];
	return NULL;
}
