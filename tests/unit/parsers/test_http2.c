/* test_http2.c — unit tests for the HTTP/2 frame layer: exchanges from the
 * preface on, the same conversation cut at every point and byte by byte,
 * padding, priority, CONTINUATION, RST_STREAM, GOAWAY, gRPC (trailers and
 * Trailers-Only), streaming, late join, uncaptured bytes, h2c upgrade,
 * detection and hostile frames. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "parsers/http2.h"
#include "unit.h"

#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define MAX_EX  2048
#define MAX_W   64

struct buf {
	uint8_t b[1 << 16];
	size_t n;
};

/* one syscall's bytes */
struct write {
	enum stream_dir dir;
	size_t off, len; /* in the script's bytes */
	size_t missing;
	uint64_t ts;
};

struct script {
	struct buf bytes;
	struct write w[MAX_W];
	int nw;
};

struct record {
	int n, nreq;
	struct http2_exchange ex[MAX_EX];
	struct http2_exchange req[MAX_EX];
};

static void on_exchange(void *ctx, const struct http2_exchange *ex)
{
	struct record *r = ctx;

	if (r->n < MAX_EX)
		r->ex[r->n] = *ex;
	r->n++;
}

static void on_request(void *ctx, const struct http2_exchange *req)
{
	struct record *r = ctx;

	if (r->nreq < MAX_EX)
		r->req[r->nreq] = *req;
	r->nreq++;
}

static void put(struct buf *b, const void *p, size_t n)
{
	memcpy(b->b + b->n, p, n);
	b->n += n;
}

static void put8(struct buf *b, uint8_t v)
{
	b->b[b->n++] = v;
}

static void frame(struct buf *o, uint8_t type, uint8_t flags, uint32_t sid, const void *p,
                  size_t len)
{
	uint8_t h[9] = {
	    (uint8_t)(len >> 16), (uint8_t)(len >> 8),  (uint8_t)len,        type,        flags,
	    (uint8_t)(sid >> 24), (uint8_t)(sid >> 16), (uint8_t)(sid >> 8), (uint8_t)sid};

	put(o, h, 9);
	if (len)
		put(o, p, len);
}

/* HPACK: literal field without indexing (or with, 0x40), new name */
static void lit(struct buf *b, uint8_t op, const char *name, const char *value)
{
	put8(b, op);
	put8(b, (uint8_t)strlen(name));
	put(b, name, strlen(name));
	put8(b, (uint8_t)strlen(value));
	put(b, value, strlen(value));
}

/* literal without indexing, indexed name */
static void lit_idx(struct buf *b, uint8_t idx, const char *value)
{
	put8(b, idx); /* idx < 15 */
	put8(b, (uint8_t)strlen(value));
	put(b, value, strlen(value));
}

static void script_write(struct script *s, enum stream_dir dir, const struct buf *b, uint64_t ts)
{
	struct write *w = &s->w[s->nw++];

	w->dir = dir;
	w->off = s->bytes.n;
	w->len = b->n;
	w->missing = 0;
	w->ts = ts;
	put(&s->bytes, b->b, b->n);
}

static struct http2_conn *conn_new(struct record *r)
{
	struct http2_conn *c = http2_conn__new(on_exchange, r);

	http2_conn_set_request_fn(c, on_request);
	return c;
}

static void feed(struct http2_conn *c, enum stream_dir dir, const uint8_t *p, size_t n,
                 size_t missing, uint64_t ts)
{
	struct stream_chunk ch = {p, n, missing, ts, ts + 1};

	http2_conn_feed(c, dir, &ch);
}

/* split: -1 whole writes, -2 byte by byte, else (write w, offset k) */
static void run(const struct script *s, int split_w, size_t split_k, bool bytewise,
                struct record *r, struct http2_stats *st)
{
	struct http2_conn *c = conn_new(r);

	memset(r, 0, sizeof(*r));
	for (int i = 0; i < s->nw; i++) {
		const struct write *w = &s->w[i];
		const uint8_t *p = s->bytes.b + w->off;

		if (bytewise) {
			for (size_t k = 0; k < w->len; k++)
				feed(c, w->dir, p + k, 1, k + 1 == w->len ? w->missing : 0, w->ts);
		} else if (i == split_w) {
			feed(c, w->dir, p, split_k, 0, w->ts);
			feed(c, w->dir, p + split_k, w->len - split_k, w->missing, w->ts);
		} else {
			feed(c, w->dir, p, w->len, w->missing, w->ts);
		}
	}
	http2_conn_close(c, 1000000);
	if (st)
		http2_conn_stats(c, st);
	CHECK(http2_conn_memory(c) < 200 * 1024);
	http2_conn__free(c);
}

static bool same_ex(const struct http2_exchange *a, const struct http2_exchange *b)
{
	return a->stream_id == b->stream_id && !strcmp(a->method, b->method) &&
	       !strcmp(a->path, b->path) && a->path_truncated == b->path_truncated &&
	       !strcmp(a->authority, b->authority) && !strcmp(a->scheme, b->scheme) &&
	       !strcmp(a->content_type, b->content_type) && !strcmp(a->user_agent, b->user_agent) &&
	       !strcmp(a->traceparent, b->traceparent) && !strcmp(a->tracestate, b->tracestate) &&
	       !strcmp(a->te, b->te) && a->status == b->status &&
	       a->grpc_status == b->grpc_status && !strcmp(a->grpc_message, b->grpc_message) &&
	       a->trailers_only == b->trailers_only && a->unknown_headers == b->unknown_headers &&
	       a->request_complete == b->request_complete && a->end == b->end &&
	       a->error_code == b->error_code && a->request_body_size == b->request_body_size &&
	       a->response_body_size == b->response_body_size &&
	       a->req_start_ns == b->req_start_ns && a->req_end_ns == b->req_end_ns &&
	       a->resp_start_ns == b->resp_start_ns && a->resp_end_ns == b->resp_end_ns &&
	       a->seq == b->seq;
}

static bool same_record(const struct record *a, const struct record *b)
{
	if (a->n != b->n || a->nreq != b->nreq)
		return false;
	for (int i = 0; i < a->n && i < MAX_EX; i++)
		if (!same_ex(&a->ex[i], &b->ex[i]))
			return false;
	for (int i = 0; i < a->nreq && i < MAX_EX; i++)
		if (!same_ex(&a->req[i], &b->req[i]))
			return false;
	return true;
}

/* Runs s whole, cut in two at every point of every write, byte by byte and
 * with each direction coalesced: all results must equal the whole run. */
static void check_splits(const struct script *s, const struct record *whole)
{
	struct record *r = malloc(sizeof(*r));
	int bad = 0;

	for (int i = 0; i < s->nw; i++)
		for (size_t k = 1; k < s->w[i].len; k++) {
			run(s, i, k, false, r, NULL);
			if (!same_record(whole, r) && bad++ < 3)
				fprintf(stderr, "split at write %d offset %zu differs\n", i, k);
		}
	CHECK_EQ_INT(bad, 0);
	run(s, -1, 0, true, r, NULL);
	CHECK(same_record(whole, r));
	free(r);
}

static void settings(struct buf *b, uint16_t id, uint32_t v)
{
	uint8_t p[6] = {(uint8_t)(id >> 8), (uint8_t)id,       (uint8_t)(v >> 24),
	                (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	frame(b, 4, 0, 0, p, 6);
}

static void client_start(struct script *s)
{
	struct buf b = {.n = 0};

	put(&b, PREFACE, 24);
	settings(&b, 3, 100); /* MAX_CONCURRENT_STREAMS */
	script_write(s, STREAM_DIR_REQUEST, &b, 10);
	b.n = 0;
	settings(&b, 1, 4096);
	frame(&b, 4, 1, 0, NULL, 0); /* ACK */
	script_write(s, STREAM_DIR_RESPONSE, &b, 20);
}

static void test_simple_exchange(void)
{
	struct script *s = calloc(1, sizeof(*s));
	struct record *r = malloc(sizeof(*r));
	struct http2_stats st;
	struct buf blk = {.n = 0}, b = {.n = 0};

	client_start(s);
	put8(&blk, 0x82); /* :method GET */
	put8(&blk, 0x87); /* :scheme https */
	lit_idx(&blk, 0x04, "/api/items?id=7");
	lit_idx(&blk, 0x01, "example.com");
	lit(&blk, 0x40, "user-agent", "curl/8.0");
	lit(&blk, 0x00, "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	lit(&blk, 0x00, "tracestate", "congo=t61rcWkgMzE");
	frame(&b, 1, 0x05, 1, blk.b, blk.n); /* END_STREAM | END_HEADERS */
	script_write(s, STREAM_DIR_REQUEST, &b, 100);
	blk.n = b.n = 0;
	put8(&blk, 0x88); /* :status 200 */
	lit(&blk, 0x00, "content-type", "text/plain");
	frame(&b, 1, 0x04, 1, blk.b, blk.n);
	frame(&b, 0, 0x01, 1, "hello", 5);
	script_write(s, STREAM_DIR_RESPONSE, &b, 200);
	/* a second request reuses user-agent from the dynamic table */
	blk.n = b.n = 0;
	put8(&blk, 0x83); /* POST */
	put8(&blk, 0x87);
	put8(&blk, 0x84); /* :path / */
	lit_idx(&blk, 0x01, "example.com");
	put8(&blk, 0xbe);
	frame(&b, 1, 0x04, 3, blk.b, blk.n);
	frame(&b, 0, 0x00, 3, "abc", 3);
	frame(&b, 0, 0x01, 3, "defg", 4);
	script_write(s, STREAM_DIR_REQUEST, &b, 300);
	blk.n = b.n = 0;
	put8(&blk, 0x8d); /* 404 */
	frame(&b, 1, 0x05, 3, blk.b, blk.n);
	script_write(s, STREAM_DIR_RESPONSE, &b, 400);

	run(s, -1, 0, false, r, &st);
	CHECK_EQ_INT(r->n, 2);
	CHECK_EQ_INT(r->nreq, 2);
	CHECK_EQ_INT(r->ex[0].stream_id, 1);
	CHECK_EQ_STR(r->ex[0].method, "GET");
	CHECK_EQ_STR(r->ex[0].scheme, "https");
	CHECK_EQ_STR(r->ex[0].path, "/api/items?id=7");
	CHECK_EQ_STR(r->ex[0].authority, "example.com");
	CHECK_EQ_STR(r->ex[0].user_agent, "curl/8.0");
	CHECK_EQ_STR(r->ex[0].traceparent,
	             "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	CHECK_EQ_STR(r->ex[0].tracestate, "congo=t61rcWkgMzE");
	CHECK_EQ_INT(r->ex[0].status, 200);
	CHECK_EQ_INT(r->ex[0].grpc_status, -1);
	CHECK_EQ_INT(r->ex[0].end, HTTP2_END_STREAM);
	CHECK_EQ_INT(r->ex[0].response_body_size, 5);
	CHECK_EQ_INT(r->ex[0].request_body_size, 0);
	CHECK(r->ex[0].request_complete);
	CHECK(!r->ex[0].unknown_headers);
	CHECK_EQ_INT(r->ex[0].req_start_ns, 100);
	CHECK_EQ_INT(r->ex[0].req_end_ns, 101);
	CHECK_EQ_INT(r->ex[0].resp_start_ns, 200);
	CHECK_EQ_INT(r->ex[0].resp_end_ns, 201);
	CHECK_EQ_INT(r->ex[0].seq, 0);
	CHECK_EQ_STR(r->ex[1].method, "POST");
	CHECK_EQ_STR(r->ex[1].user_agent, "curl/8.0");
	CHECK_EQ_INT(r->ex[1].request_body_size, 7);
	CHECK_EQ_INT(r->ex[1].status, 404);
	CHECK_EQ_INT(r->ex[1].seq, 1);
	/* the request hook came first, with the request fields only */
	CHECK_EQ_STR(r->req[0].path, "/api/items?id=7");
	CHECK_EQ_INT(r->req[0].status, 0);
	CHECK_EQ_INT(r->req[0].req_start_ns, 100);
	CHECK_EQ_INT(r->req[1].stream_id, 3);
	CHECK(st.preface_seen);
	CHECK(!st.late_join);
	CHECK_EQ_INT(st.exchanges, 2);
	CHECK_EQ_INT(st.parse_errors, 0);
	CHECK_EQ_INT(st.frames, 10);
	check_splits(s, r);
	free(s);
	free(r);
}

/* Padding, priority, CONTINUATION, interleaved streams, gRPC. */
static void build_complex(struct script *s)
{
	struct buf blk = {.n = 0}, b = {.n = 0};
	uint8_t pay[64];

	client_start(s);
	/* stream 1: gRPC unary. HEADERS PADDED|PRIORITY without END_HEADERS,
	 * then two CONTINUATIONs */
	put8(&blk, 0x83);
	put8(&blk, 0x86);
	lit_idx(&blk, 0x04, "/helloworld.Greeter/SayHello");
	lit_idx(&blk, 0x01, "grpc.local:50051");
	lit(&blk, 0x40, "content-type", "application/grpc");
	lit(&blk, 0x00, "te", "trailers");
	pay[0] = 3;                 /* pad length */
	memset(pay + 1, 0, 5);      /* priority */
	memcpy(pay + 6, blk.b, 10); /* first 10 bytes of the block */
	memset(pay + 16, 0, 3);     /* padding */
	frame(&b, 1, 0x28, 1, pay, 19);
	frame(&b, 9, 0x00, 1, blk.b + 10, 20);
	frame(&b, 9, 0x04, 1, blk.b + 30, blk.n - 30);
	/* padded DATA: 2 bytes of message, 4 of padding, END_STREAM */
	pay[0] = 4;
	pay[1] = 'h';
	pay[2] = 'i';
	memset(pay + 3, 0, 4);
	frame(&b, 0, 0x09, 1, pay, 7);
	script_write(s, STREAM_DIR_REQUEST, &b, 100);
	/* stream 3: another gRPC call, Trailers-Only answer */
	blk.n = b.n = 0;
	put8(&blk, 0x83);
	put8(&blk, 0x86);
	lit_idx(&blk, 0x04, "/helloworld.Greeter/Missing");
	lit_idx(&blk, 0x01, "grpc.local:50051");
	put8(&blk, 0xbe); /* content-type: application/grpc */
	frame(&b, 1, 0x04, 3, blk.b, blk.n);
	frame(&b, 0, 0x01, 3, "\0\0\0\0\0", 5);
	script_write(s, STREAM_DIR_REQUEST, &b, 110);
	/* responses, interleaved */
	blk.n = b.n = 0;
	put8(&blk, 0x88);
	lit(&blk, 0x40, "content-type", "application/grpc");
	frame(&b, 1, 0x04, 1, blk.b, blk.n);
	blk.n = 0;
	put8(&blk, 0x88);
	put8(&blk, 0xbe);
	lit(&blk, 0x00, "grpc-status", "5");
	lit(&blk, 0x00, "grpc-message", "not found");
	frame(&b, 1, 0x05, 3, blk.b, blk.n);
	frame(&b, 6, 0x00, 0, "12345678", 8); /* PING */
	frame(&b, 8, 0x00, 0, "\0\0\1\0", 4); /* WINDOW_UPDATE */
	frame(&b, 0, 0x00, 1, "\0\0\0\0\3abc", 8);
	blk.n = 0;
	lit(&blk, 0x00, "grpc-status", "0");
	frame(&b, 1, 0x05, 1, blk.b, blk.n);
	script_write(s, STREAM_DIR_RESPONSE, &b, 200);
}

static void test_grpc_padding_continuation(void)
{
	struct script *s = calloc(1, sizeof(*s));
	struct record *r = malloc(sizeof(*r));
	struct http2_stats st;

	build_complex(s);
	run(s, -1, 0, false, r, &st);
	CHECK_EQ_INT(r->n, 2);
	CHECK_EQ_INT(st.parse_errors, 0);
	/* stream 3 ends first (Trailers-Only) */
	CHECK_EQ_INT(r->ex[0].stream_id, 3);
	CHECK_EQ_STR(r->ex[0].path, "/helloworld.Greeter/Missing");
	CHECK_EQ_STR(r->ex[0].content_type, "application/grpc");
	CHECK_EQ_INT(r->ex[0].status, 200);
	CHECK_EQ_INT(r->ex[0].grpc_status, 5);
	CHECK_EQ_STR(r->ex[0].grpc_message, "not found");
	CHECK(r->ex[0].trailers_only);
	CHECK_EQ_INT(r->ex[0].request_body_size, 5);
	CHECK_EQ_INT(r->ex[1].stream_id, 1);
	CHECK_EQ_STR(r->ex[1].method, "POST");
	CHECK_EQ_STR(r->ex[1].scheme, "http");
	CHECK_EQ_STR(r->ex[1].path, "/helloworld.Greeter/SayHello");
	CHECK_EQ_STR(r->ex[1].authority, "grpc.local:50051");
	CHECK_EQ_STR(r->ex[1].te, "trailers");
	CHECK_EQ_INT(r->ex[1].request_body_size, 2);
	CHECK_EQ_INT(r->ex[1].response_body_size, 8);
	CHECK_EQ_INT(r->ex[1].grpc_status, 0);
	CHECK(!r->ex[1].trailers_only);
	CHECK(!r->ex[1].unknown_headers);
	CHECK_EQ_INT(r->ex[1].end, HTTP2_END_STREAM);
	CHECK_EQ_INT(r->ex[1].seq, 0);
	check_splits(s, r);
	free(s);
	free(r);
}

static void test_rst_goaway_close(void)
{
	struct script *s = calloc(1, sizeof(*s));
	struct record *r = malloc(sizeof(*r));
	struct buf blk = {.n = 0}, b = {.n = 0};

	client_start(s);
	put8(&blk, 0x82);
	put8(&blk, 0x84);
	for (uint32_t sid = 1; sid <= 9; sid += 2)
		frame(&b, 1, 0x05, sid, blk.b, blk.n);
	frame(&b, 3, 0, 1, "\0\0\0\x08", 4); /* client cancels stream 1 */
	script_write(s, STREAM_DIR_REQUEST, &b, 100);
	b.n = 0;
	frame(&b, 7, 0, 0, "\0\0\0\x05\0\0\0\x00", 8); /* GOAWAY last 5, NO_ERROR */
	frame(&b, 3, 0, 3, "\0\0\0\x02", 4);           /* server resets 3: INTERNAL_ERROR */
	script_write(s, STREAM_DIR_RESPONSE, &b, 200);
	/* stream 5 still answers */
	b.n = 0;
	frame(&b, 1, 0x05, 5, "\x88", 1);
	script_write(s, STREAM_DIR_RESPONSE, &b, 300);
	run(s, -1, 0, false, r, NULL);
	CHECK_EQ_INT(r->n, 5);
	CHECK_EQ_INT(r->ex[0].stream_id, 1);
	CHECK_EQ_INT(r->ex[0].end, HTTP2_END_RST);
	CHECK_EQ_INT(r->ex[0].error_code, 8);
	CHECK_EQ_INT(r->ex[0].resp_end_ns, 101);
	/* GOAWAY ends 7 and 9 (table order) */
	CHECK_EQ_INT(r->ex[1].end, HTTP2_END_GOAWAY);
	CHECK_EQ_INT(r->ex[2].end, HTTP2_END_GOAWAY);
	CHECK(r->ex[1].stream_id + r->ex[2].stream_id == 16);
	CHECK_EQ_INT(r->ex[3].stream_id, 3);
	CHECK_EQ_INT(r->ex[3].end, HTTP2_END_RST);
	CHECK_EQ_INT(r->ex[3].error_code, 2);
	CHECK_EQ_INT(r->ex[4].stream_id, 5);
	CHECK_EQ_INT(r->ex[4].status, 200);
	CHECK_EQ_INT(r->ex[4].end, HTTP2_END_STREAM);
	check_splits(s, r);

	/* close reports what is open, in request order */
	s->nw = 0;
	s->bytes.n = 0;
	client_start(s);
	b.n = 0;
	for (uint32_t sid = 1; sid <= 41; sid += 2)
		frame(&b, 1, 0x05, sid, blk.b, blk.n);
	script_write(s, STREAM_DIR_REQUEST, &b, 100);
	run(s, -1, 0, false, r, NULL);
	CHECK_EQ_INT(r->n, 21);
	for (int i = 0; i < 21 && i < r->n; i++) {
		CHECK_EQ_INT(r->ex[i].stream_id, 1 + 2 * i);
		CHECK_EQ_INT(r->ex[i].end, HTTP2_END_CLOSE);
		CHECK_EQ_INT(r->ex[i].resp_end_ns, 1000000);
	}
	free(s);
	free(r);
}

static void test_streaming(void)
{
	struct script *s = calloc(1, sizeof(*s));
	struct record *r = malloc(sizeof(*r));
	struct buf b = {.n = 0};
	uint8_t data[100] = {0};

	client_start(s);
	frame(&b, 1, 0x04, 1, "\x83\x86\x84", 3);
	script_write(s, STREAM_DIR_REQUEST, &b, 100);
	b.n = 0;
	frame(&b, 1, 0x04, 1, "\x88", 1);
	script_write(s, STREAM_DIR_RESPONSE, &b, 150);
	for (int i = 0; i < 40; i++) {
		b.n = 0;
		frame(&b, 0, i == 39 ? 1 : 0, 1, data, 100);
		script_write(s, i % 2 ? STREAM_DIR_RESPONSE : STREAM_DIR_REQUEST, &b,
		             (uint64_t)(200 + i * 10));
	}
	b.n = 0;
	frame(&b, 0, 1, 1, NULL, 0);
	script_write(s, STREAM_DIR_REQUEST, &b, 700);
	run(s, -1, 0, false, r, NULL);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_INT(r->ex[0].request_body_size, 2000);
	CHECK_EQ_INT(r->ex[0].response_body_size, 2000);
	CHECK_EQ_INT(r->ex[0].resp_end_ns, 200 + 39 * 10 + 1);
	CHECK(!r->ex[0].request_complete); /* the server ended first */
	check_splits(s, r);
	free(s);
	free(r);
}

static void test_late_join(void)
{
	struct record *r = malloc(sizeof(*r));
	struct http2_conn *c = conn_new(r);
	struct buf blk = {.n = 0}, b = {.n = 0};
	struct http2_stats st;

	memset(r, 0, sizeof(*r));
	/* mid-connection: a request using dynamic entries we never saw */
	put8(&blk, 0x82);
	put8(&blk, 0xbf); /* unknown */
	lit_idx(&blk, 0x04, "/late");
	lit(&blk, 0x40, "x-new", "1");
	frame(&b, 1, 0x05, 21, blk.b, blk.n);
	CHECK_EQ_INT(http2_detect(b.b, b.n), HTTP2_DETECT_FRAMES);
	feed(c, STREAM_DIR_REQUEST, b.b, b.n, 0, 100);
	b.n = 0;
	frame(&b, 1, 0x05, 21, "\x88\xc0", 2); /* 200 + unknown index 63 */
	feed(c, STREAM_DIR_RESPONSE, b.b, b.n, 0, 200);
	/* the next request refers to the entry inserted since */
	blk.n = b.n = 0;
	put8(&blk, 0x82);
	lit_idx(&blk, 0x04, "/again");
	put8(&blk, 0xbe);
	frame(&b, 1, 0x05, 23, blk.b, blk.n);
	feed(c, STREAM_DIR_REQUEST, b.b, b.n, 0, 300);
	b.n = 0;
	frame(&b, 1, 0x05, 23, "\x88", 1);
	feed(c, STREAM_DIR_RESPONSE, b.b, b.n, 0, 400);
	http2_conn_stats(c, &st);
	CHECK(st.late_join);
	CHECK(!st.preface_seen);
	CHECK_EQ_INT(st.unknown_headers, 2);
	CHECK_EQ_INT(r->n, 2);
	CHECK_EQ_STR(r->ex[0].method, "GET");
	CHECK_EQ_STR(r->ex[0].path, "/late");
	CHECK_EQ_INT(r->ex[0].status, 200);
	CHECK(r->ex[0].unknown_headers);
	CHECK_EQ_STR(r->ex[1].path, "/again");
	CHECK(!r->ex[1].unknown_headers);
	CHECK_EQ_INT(r->ex[0].grpc_framed, 0);

	/* gRPC message framing on a stream's first DATA bytes is noted per
	 * direction: one message filling the frame; two messages, the second
	 * running into the next frame; not: a flag of 2, or a short message */
	static const struct {
		const char *data;
		size_t n;
		int framed;
	} bodies[] = {
	    {"\0\0\0\0\3abc", 8, 1},  {"\0\0\0\0\1a\1\0\0\0\x09xy", 13, 1},
	    {"\2\0\0\0\3abc", 8, 0},  {"\0\0\0\0\1abc", 8, 0},
	    {"{\"json\": 1}", 11, 0},
	};
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		uint32_t sid = 31 + 2 * (uint32_t)i;

		r->n = 0;
		b.n = 0;
		frame(&b, 1, 0x04, sid, "\x83\x86\x84", 3); /* POST http / */
		frame(&b, 0, 0x01, sid, bodies[i].data, bodies[i].n);
		feed(c, STREAM_DIR_REQUEST, b.b, b.n, 0, 500);
		b.n = 0;
		frame(&b, 1, 0x05, sid, "\x88", 1);
		feed(c, STREAM_DIR_RESPONSE, b.b, b.n, 0, 600);
		CHECK_EQ_INT(r->n, 1);
		CHECK_EQ_INT(r->ex[0].grpc_framed, bodies[i].framed);
	}
	http2_conn__free(c);

	/* joined mid-frame: the chunk starts inside a DATA payload; the next
	 * chunk starts on a frame */
	c = conn_new(r);
	memset(r, 0, sizeof(*r));
	feed(c, STREAM_DIR_RESPONSE, (const uint8_t *)"garbage that is not a frame at all", 34, 0,
	     10);
	b.n = 0;
	frame(&b, 1, 0x05, 25, "\x82\x84", 2);
	feed(c, STREAM_DIR_REQUEST, b.b, b.n, 0, 20);
	b.n = 0;
	put(&b, "tail of a data frame", 20);
	frame(&b, 1, 0x05, 25, "\x8c", 1);
	feed(c, STREAM_DIR_RESPONSE, b.b, b.n, 0, 30);
	http2_conn_stats(c, &st);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_INT(r->ex[0].status, 400);
	CHECK(st.parse_errors >= 2);
	http2_conn__free(c);
	free(r);
}

static void test_missing_bytes(void)
{
	struct record *r = malloc(sizeof(*r));
	struct http2_conn *c = conn_new(r);
	struct buf b = {.n = 0}, blk = {.n = 0};
	uint8_t big[300] = {0};
	struct http2_stats st;

	memset(r, 0, sizeof(*r));
	put(&b, PREFACE, 24);
	frame(&b, 1, 0x05, 1, "\x82\x84", 2);
	feed(c, STREAM_DIR_REQUEST, b.b, b.n, 0, 10);
	/* response: HEADERS, then a 10000-byte DATA of which 300 were captured */
	b.n = 0;
	frame(&b, 1, 0x04, 1, "\x88", 1);
	b.b[b.n++] = 0;
	b.b[b.n++] = 0x27;
	b.b[b.n++] = 0x10;
	b.b[b.n++] = 0;
	b.b[b.n++] = 0;
	b.b[b.n++] = 0;
	b.b[b.n++] = 0;
	b.b[b.n++] = 0;
	b.b[b.n++] = 1;
	put(&b, big, 300);
	feed(c, STREAM_DIR_RESPONSE, b.b, b.n, 9700, 20);
	b.n = 0;
	frame(&b, 0, 0x01, 1, "end", 3);
	feed(c, STREAM_DIR_RESPONSE, b.b, b.n, 0, 30);
	http2_conn_stats(c, &st);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_INT(r->ex[0].response_body_size, 10003);
	CHECK_EQ_INT(r->ex[0].resp_end_ns, 31);
	CHECK_EQ_INT(st.resyncs, 0);
	CHECK_EQ_INT(st.parse_errors, 0);

	/* a header block not captured: the stream is marked, the decoder
	 * restarts empty in late-join mode */
	blk.n = b.n = 0;
	put8(&blk, 0x82);
	put8(&blk, 0x84);
	lit(&blk, 0x40, "x-a", "1");
	frame(&b, 1, 0x05, 3, blk.b, blk.n);
	feed(c, STREAM_DIR_REQUEST, b.b, 12, b.n - 12, 40);
	b.n = 0;
	frame(&b, 1, 0x05, 5, "\x82\x84\xbe", 3);
	feed(c, STREAM_DIR_REQUEST, b.b, b.n, 0, 50);
	b.n = 0;
	frame(&b, 1, 0x05, 3, "\x88", 1);
	frame(&b, 1, 0x05, 5, "\x88", 1);
	feed(c, STREAM_DIR_RESPONSE, b.b, b.n, 0, 60);
	http2_conn_stats(c, &st);
	CHECK_EQ_INT(st.lost_blocks, 1);
	CHECK_EQ_INT(r->n, 3);
	CHECK(r->ex[1].unknown_headers);
	CHECK_EQ_STR(r->ex[1].method, "");
	CHECK(r->ex[2].unknown_headers); /* 0xbe: the lost block's entry */
	CHECK_EQ_STR(r->ex[2].method, "GET");

	/* uncaptured bytes past a frame's end: boundaries lost, found again at
	 * the next chunk */
	b.n = 0;
	frame(&b, 1, 0x05, 7, "\x82\x84", 2);
	feed(c, STREAM_DIR_REQUEST, b.b, b.n, 50, 70);
	b.n = 0;
	frame(&b, 1, 0x05, 9, "\x83\x84", 2);
	feed(c, STREAM_DIR_REQUEST, b.b, b.n, 0, 80);
	b.n = 0;
	frame(&b, 1, 0x05, 7, "\x88", 1);
	frame(&b, 1, 0x05, 9, "\x88", 1);
	feed(c, STREAM_DIR_RESPONSE, b.b, b.n, 0, 90);
	http2_conn_stats(c, &st);
	CHECK_EQ_INT(st.resyncs, 1);
	CHECK_EQ_INT(r->n, 5);
	CHECK_EQ_STR(r->ex[4].method, "POST");
	http2_conn__free(c);
	free(r);
}

static void test_upgrade(void)
{
	struct record *r = malloc(sizeof(*r));
	struct http2_conn *c = conn_new(r);
	struct http2_exchange req = {0};
	struct buf b = {.n = 0};

	memset(r, 0, sizeof(*r));
	snprintf(req.method, sizeof(req.method), "%s", "GET");
	snprintf(req.path, sizeof(req.path), "%s", "/upgrade");
	snprintf(req.authority, sizeof(req.authority), "%s", "h2c.local");
	req.req_start_ns = 5;
	req.req_end_ns = 6;
	/* HTTP2-Settings: HEADER_TABLE_SIZE 8192 (00 01 00 00 20 00) */
	CHECK_EQ_INT(http2_conn__start_upgraded(c, &req, "AAEAACAA", 8), 0);
	CHECK_EQ_INT(http2_conn__start_upgraded(c, &req, NULL, 0), -EINVAL);
	settings(&b, 3, 100);
	frame(&b, 1, 0x04, 1, "\x3f\xe1\x3f\x88", 4); /* size update 8192, :status 200 */
	frame(&b, 0, 0x01, 1, "data", 4);
	feed(c, STREAM_DIR_RESPONSE, b.b, b.n, 0, 20);
	b.n = 0;
	put(&b, PREFACE, 24);
	settings(&b, 3, 100);
	feed(c, STREAM_DIR_REQUEST, b.b, b.n, 0, 15);
	CHECK_EQ_INT(r->n, 1);
	CHECK_EQ_INT(r->nreq, 0);
	CHECK_EQ_INT(r->ex[0].stream_id, 1);
	CHECK_EQ_STR(r->ex[0].path, "/upgrade");
	CHECK_EQ_INT(r->ex[0].status, 200);
	CHECK_EQ_INT(r->ex[0].response_body_size, 4);
	CHECK_EQ_INT(r->ex[0].req_start_ns, 5);
	CHECK(!r->ex[0].unknown_headers);
	http2_conn__free(c);
	free(r);
}

static void test_detect(void)
{
	uint8_t f[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};

	CHECK_EQ_INT(http2_detect((const uint8_t *)PREFACE, 24), HTTP2_DETECT_PREFACE);
	CHECK_EQ_INT(http2_detect((const uint8_t *)PREFACE, 10), HTTP2_DETECT_MORE);
	CHECK_EQ_INT(http2_detect((const uint8_t *)"GET / HTTP/1.1\r\n", 16), HTTP2_DETECT_NO);
	CHECK_EQ_INT(http2_detect((const uint8_t *)"HTTP/1.1 200 OK\r\n", 17), HTTP2_DETECT_NO);
	CHECK_EQ_INT(http2_detect(f, 9), HTTP2_DETECT_FRAMES);
	CHECK_EQ_INT(http2_detect(f, 5), HTTP2_DETECT_MORE);
	f[3] = 0x20;
	CHECK_EQ_INT(http2_detect(f, 9), HTTP2_DETECT_NO);
	f[3] = 0; /* DATA on stream 0 */
	CHECK_EQ_INT(http2_detect(f, 9), HTTP2_DETECT_NO);
	f[8] = 2; /* DATA on an even stream */
	CHECK_EQ_INT(http2_detect(f, 9), HTTP2_DETECT_NO);
}

static void test_hostile(void)
{
	struct record *r = malloc(sizeof(*r));
	struct http2_conn *c = conn_new(r);
	struct buf *b = calloc(1, sizeof(*b));
	struct http2_stats st;
	uint8_t zero[64] = {0};

	memset(r, 0, sizeof(*r));
	put(b, PREFACE, 24);
	feed(c, STREAM_DIR_REQUEST, b->b, b->n, 0, 1);
	/* more streams than tracked */
	for (uint32_t sid = 1; sid < 2 * (HTTP2_STREAMS_MAX + 100); sid += 2) {
		b->n = 0;
		frame(b, 1, 0x04, sid, "\x82\x84", 2);
		feed(c, STREAM_DIR_REQUEST, b->b, b->n, 0, 2);
	}
	http2_conn_stats(c, &st);
	CHECK_EQ_INT(st.streams_overflow, 100);
	CHECK(http2_conn_memory(c) < 4 * 1024 * 1024);
	http2_conn_close(c, 3);
	CHECK_EQ_INT(r->n, HTTP2_STREAMS_MAX);
	/* an endless CONTINUATION chain */
	b->n = 0;
	frame(b, 1, 0x00, 9001, "\x82", 1);
	feed(c, STREAM_DIR_REQUEST, b->b, b->n, 0, 4);
	for (int i = 0; i < 200; i++) {
		b->n = 0;
		frame(b, 9, 0, 9001, zero, 64);
		feed(c, STREAM_DIR_REQUEST, b->b, b->n, 0, 5);
	}
	CHECK(http2_conn_memory(c) < 64 * 1024);
	b->n = 0;
	frame(b, 9, 0x04, 9001, zero, 1);
	frame(b, 1, 0x05, 9003, "\x82\x84", 2);
	feed(c, STREAM_DIR_REQUEST, b->b, b->n, 0, 6);
	http2_conn_stats(c, &st);
	CHECK_EQ_INT(st.lost_blocks, 1);
	/* a header block larger than kept */
	b->n = 0;
	frame(b, 1, 0x00, 9005, "\x82", 1);
	feed(c, STREAM_DIR_REQUEST, b->b, b->n, 0, 7);
	for (int i = 0; i < 20; i++) {
		uint8_t h[9] = {0, 0x40, 0, 9, 0, 0, 0, 0x23, 0x2d};

		feed(c, STREAM_DIR_REQUEST, h, 9, 16384, 8);
	}
	/* bad frames: SETTINGS of 7 bytes, PING on a stream, DATA on stream 0 */
	b->n = 0;
	frame(b, 4, 0, 0, zero, 7);
	feed(c, STREAM_DIR_RESPONSE, b->b, b->n, 0, 9);
	b->n = 0;
	frame(b, 6, 0, 1, zero, 8);
	feed(c, STREAM_DIR_RESPONSE, b->b, b->n, 0, 10);
	b->n = 0;
	frame(b, 0, 0, 0, zero, 8);
	feed(c, STREAM_DIR_RESPONSE, b->b, b->n, 0, 11);
	/* a padded frame whose padding is longer than it */
	b->n = 0;
	frame(b, 0, 0x08, 9003, "\x09xyz", 4);
	frame(b, 1, 0x0d, 9003, "\x05\x88", 2);
	feed(c, STREAM_DIR_RESPONSE, b->b, b->n, 0, 12);
	http2_conn_stats(c, &st);
	CHECK(st.parse_errors >= 4);
	CHECK(http2_conn_memory(c) < 64 * 1024);
	/* random bytes */
	srand(7);
	for (int i = 0; i < 200; i++) {
		uint8_t junk[256];

		for (size_t k = 0; k < sizeof(junk); k++)
			junk[k] = (uint8_t)rand();
		feed(c, i % 2 ? STREAM_DIR_REQUEST : STREAM_DIR_RESPONSE, junk, sizeof(junk),
		     (size_t)(rand() % 3 ? 0 : rand() % 100000), 20);
	}
	CHECK(http2_conn_memory(c) < 4 * 1024 * 1024);
	http2_conn_close(c, 30);
	http2_conn__free(c);
	http2_conn__free(NULL);
	CHECK_EQ_INT(http2_conn_feed(NULL, STREAM_DIR_REQUEST, NULL), -EINVAL);
	free(b);
	free(r);
}

int main(void)
{
	RUN(test_simple_exchange);
	RUN(test_grpc_padding_continuation);
	RUN(test_rst_goaway_close);
	RUN(test_streaming);
	RUN(test_late_join);
	RUN(test_missing_bytes);
	RUN(test_upgrade);
	RUN(test_detect);
	RUN(test_hostile);
	return unit_summary("test_http2");
}
