/* test_protocol.c — the protocol table: HTTP/2 detection by preface and by
 * frame shape (direction from the first HEADERS block's first pseudo-header field), and an h2c
 * upgrade handed over from HTTP/1.1 through the generic switch operations. */
#include <string.h>

#include "parsers/http1.h"
#include "parsers/http2.h"
#include "parsers/protocol.h"
#include "unit.h"

struct got {
	int n1, n2;
	struct http2_exchange h2;
};

static void on_exchange(void *ctx, enum l7_protocol kind, const void *ex)
{
	struct got *g = ctx;

	if (kind == L7_HTTP1)
		g->n1++;
	if (kind == L7_HTTP2) {
		g->n2++;
		g->h2 = *(const struct http2_exchange *)ex;
	}
}

static int feed(const struct l7_ops *ops, void *p, enum stream_dir dir, const void *data,
                size_t len, uint64_t ts)
{
	struct stream_chunk c = {.data = data, .len = len, .ts_first_ns = ts, .ts_last_ns = ts};

	return ops->feed(p, dir, &c);
}

static void test_detect(void)
{
	const struct l7_ops *h2 = l7_ops_of(L7_HTTP2);
	static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
	/* HEADERS stream 1 END_HEADERS: :method GET (0x82) :path / (0x84) */
	static const uint8_t req[] = {0, 0, 2, 1, 4, 0, 0, 0, 1, 0x82, 0x84};
	/* HEADERS stream 1 END_HEADERS|END_STREAM: :status 200 (0x88) */
	static const uint8_t resp[] = {0, 0, 1, 1, 5, 0, 0, 0, 1, 0x88};
	/* a block of dynamic references only says nothing */
	static const uint8_t dyn[] = {0, 0, 1, 1, 4, 0, 0, 0, 3, 0xbe};
	static const uint8_t settings[] = {0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x10, 0};

	CHECK(h2 != NULL);
	CHECK(h2->multiplexed);
	CHECK_EQ_INT(h2->detect(preface, sizeof(preface) - 1, -1), STREAM_DIR_REQUEST);
	CHECK_EQ_INT(h2->detect(preface, sizeof(preface) - 1, STREAM_DIR_RESPONSE), -1);
	CHECK_EQ_INT(h2->detect(req, sizeof(req), -1), STREAM_DIR_REQUEST);
	CHECK_EQ_INT(h2->detect(resp, sizeof(resp), -1), STREAM_DIR_RESPONSE);
	CHECK_EQ_INT(h2->detect(dyn, sizeof(dyn), -1), -1);
	/* gRPC C core late-joined: an indexed :path (dynamic), then :authority
	 * as a literal with an unknown dynamic name... then `:method POST` (0x83) */
	static const uint8_t grpc_req[] = {0,    0,    8,    1, 4,   0,   0,    0,   5,
	                                   0xbf, 0x7f, 0x03, 2, 'a', 'b', 0xc1, 0x83};
	CHECK_EQ_INT(h2->detect(grpc_req, sizeof(grpc_req), -1), STREAM_DIR_REQUEST);
	/* ... or a response whose :status follows a dynamic reference */
	static const uint8_t late_resp[] = {0, 0, 2, 1, 4, 0, 0, 0, 5, 0xc0, 0x88};
	CHECK_EQ_INT(h2->detect(late_resp, sizeof(late_resp), -1), STREAM_DIR_RESPONSE);
	/* a cut literal says nothing */
	static const uint8_t cut[] = {0, 0, 3, 1, 4, 0, 0, 0, 5, 0x40, 0x05, 'x'};
	CHECK_EQ_INT(h2->detect(cut, sizeof(cut), -1), -1);
	/* a connection seen from its start: the preface, or the server's SETTINGS */
	CHECK_EQ_INT(h2->detect(req, sizeof(req), STREAM_DIR_REQUEST), -1);
	CHECK_EQ_INT(h2->detect(settings, sizeof(settings), STREAM_DIR_RESPONSE),
	             STREAM_DIR_RESPONSE);
	CHECK_EQ_INT(h2->detect((const uint8_t *)"GET / HTTP/1.1\r\n", 16, -1), -1);
	/* HTTP/1 does not claim the preface */
	CHECK_EQ_INT(l7_ops_of(L7_HTTP1)->detect(preface, sizeof(preface) - 1, -1), -1);
}

static void test_h2c_upgrade(void)
{
	const struct l7_ops *h1 = l7_ops_of(L7_HTTP1), *to;
	static const char req[] =
	    "GET /up?q=1 HTTP/1.1\r\nHost: example:8080\r\n"
	    "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
	    "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
	    "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n";
	static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
	                           "Upgrade: h2c\r\n\r\n";
	/* server SETTINGS, then stream 1's response: HEADERS :status 200, DATA "hi" END_STREAM */
	static const uint8_t frames[] = {0, 0, 0, 4,    0, 0, 0, 0, 0, 0, 0, 1, 1, 4,   0,
	                                 0, 0, 1, 0x88, 0, 0, 2, 0, 1, 0, 0, 0, 1, 'h', 'i'};
	static const uint8_t preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0";
	uint8_t resp[sizeof(head) - 1 + sizeof(frames)];
	struct got g = {0};
	struct l7_callbacks cb = {.exchange = on_exchange, .ctx = &g};
	struct l7_switch sw = {0};
	void *p = h1->create(&cb), *p2;

	memcpy(resp, head, sizeof(head) - 1);
	memcpy(resp + sizeof(head) - 1, frames, sizeof(frames));
	CHECK_EQ_INT(feed(h1, p, STREAM_DIR_REQUEST, req, sizeof(req) - 1, 100), 0);
	CHECK_EQ_INT(feed(h1, p, STREAM_DIR_RESPONSE, resp, sizeof(resp), 200), L7_FEED_SWITCH);
	CHECK(h1->switch_info(p, &sw));
	CHECK_EQ_INT(sw.from, L7_HTTP1);
	CHECK_EQ_INT(sw.to, L7_HTTP2);
	CHECK_EQ_INT(sw.consumed, sizeof(head) - 1);
	to = l7_ops_of(sw.to);
	p2 = to->create_switched(&cb, &sw);
	CHECK(p2 != NULL);
	h1->destroy(p);
	CHECK_EQ_INT(g.n1, 0); /* the 101 is not an HTTP/1 exchange */
	CHECK_EQ_INT(
	    feed(to, p2, STREAM_DIR_RESPONSE, resp + sw.consumed, sizeof(resp) - sw.consumed, 200),
	    0);
	CHECK_EQ_INT(feed(to, p2, STREAM_DIR_REQUEST, preface, sizeof(preface) - 1, 300), 0);
	CHECK_EQ_INT(g.n2, 1);
	CHECK_EQ_INT(g.h2.stream_id, 1);
	CHECK_EQ_STR(g.h2.method, "GET");
	CHECK_EQ_STR(g.h2.path, "/up?q=1");
	CHECK_EQ_STR(g.h2.authority, "example:8080");
	CHECK_EQ_STR(g.h2.traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	CHECK_EQ_INT(g.h2.status, 200);
	CHECK_EQ_INT(g.h2.response_body_size, 2);
	CHECK_EQ_INT(g.h2.req_start_ns, 100);
	CHECK_EQ_INT(g.h2.end, HTTP2_END_STREAM);
	to->destroy(p2);

	/* without Upgrade: h2c a 101 is a tunnel, reported as HTTP/1 */
	memset(&g, 0, sizeof(g));
	p = h1->create(&cb);
	CHECK_EQ_INT(feed(h1, p, STREAM_DIR_REQUEST,
	                  "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n", 40, 1),
	             0);
	CHECK_EQ_INT(feed(h1, p, STREAM_DIR_RESPONSE, head, sizeof(head) - 1, 2), 0);
	CHECK(!h1->switch_info(p, &sw));
	CHECK_EQ_INT(g.n1, 1);
	h1->destroy(p);
}

int main(void)
{
	RUN(test_detect);
	RUN(test_h2c_upgrade);
	return unit_summary("test_protocol");
}
