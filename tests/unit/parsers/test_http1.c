/* test_http1.c — the HTTP/1.x parser: byte streams cut at every boundary give
 * the same exchanges, keep-alive, pipelining, chunked bodies, interim
 * responses, bodies and headers lost to the capture limit, garbage, huge
 * header lines, close handling, memory bounds and protocol detection. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/http1.h"
#include "unit.h"

#define MAX_EXCHANGES 64
#define MAX_CUTS      4096
#define REQ_TS_BASE   1000ULL
#define RESP_TS_BASE  1000000ULL
#define IDLE_MEMORY   512

struct collected {
	int n;
	struct http1_exchange ex[MAX_EXCHANGES];
};

static void collect(void *ctx, const struct http1_exchange *ex)
{
	struct collected *c = ctx;

	if (c->n < MAX_EXCHANGES)
		c->ex[c->n] = *ex;
	c->n++;
}

static struct http1_parser *new_parser(struct collected *out)
{
	memset(out, 0, sizeof(*out));
	return http1_parser__new(collect, out);
}

static int feed_chunk(struct http1_parser *p, enum stream_dir dir, const char *data, size_t len,
                      size_t missing, uint64_t ts_first, uint64_t ts_last)
{
	struct stream_chunk c = {
	    .data = (const uint8_t *)data,
	    .len = len,
	    .missing = missing,
	    .ts_first_ns = ts_first,
	    .ts_last_ns = ts_last,
	};
	return http1_parser_feed(p, dir, &c);
}

static int feed_str(struct http1_parser *p, enum stream_dir dir, const char *s, uint64_t ts)
{
	return feed_chunk(p, dir, s, strlen(s), 0, ts, ts);
}

static struct http1_stats stats_of(const struct http1_parser *p)
{
	struct http1_stats st;

	http1_parser_stats(p, &st);
	return st;
}

/* --- scripted exchanges, fed with arbitrary cuts --------------------------- */

struct xspec {
	const char *req;
	const char *interim; /* 1xx responses before the final one, or NULL */
	const char *resp;
	const char *method;
	const char *target;
	const char *host;
	const char *user_agent;
	const char *traceparent;
	const char *tracestate;
	uint8_t minor;
	int status;
	uint64_t req_body;
	uint64_t resp_body;
};

struct script {
	const struct xspec *x;
	int n;
	char *req;
	size_t req_len;
	char *resp;
	size_t resp_len;
	size_t req_first[MAX_EXCHANGES], req_last[MAX_EXCHANGES];
	size_t resp_first[MAX_EXCHANGES], resp_last[MAX_EXCHANGES];
};

static void script_build(struct script *s, const struct xspec *x, int n)
{
	size_t qcap = 1, rcap = 1;

	memset(s, 0, sizeof(*s));
	s->x = x;
	s->n = n;
	for (int i = 0; i < n; i++) {
		qcap += strlen(x[i].req);
		rcap += strlen(x[i].resp) + (x[i].interim ? strlen(x[i].interim) : 0);
	}
	s->req = malloc(qcap);
	s->resp = malloc(rcap);
	for (int i = 0; i < n; i++) {
		size_t ql = strlen(x[i].req), rl = strlen(x[i].resp);
		size_t il = x[i].interim ? strlen(x[i].interim) : 0;

		s->req_first[i] = s->req_len;
		memcpy(s->req + s->req_len, x[i].req, ql);
		s->req_len += ql;
		s->req_last[i] = s->req_len - 1;
		memcpy(s->resp + s->resp_len, x[i].interim ? x[i].interim : "", il);
		s->resp_len += il;
		s->resp_first[i] = s->resp_len;
		memcpy(s->resp + s->resp_len, x[i].resp, rl);
		s->resp_len += rl;
		s->resp_last[i] = s->resp_len - 1;
	}
}

static void script_free(struct script *s)
{
	free(s->req);
	free(s->resp);
}

/* Chunk boundaries of a stream of len bytes: 0, the cuts, len. */
struct cuts {
	size_t n;
	size_t at[MAX_CUTS + 2];
};

static void cuts_make(struct cuts *c, size_t len, const size_t *cut, size_t ncut)
{
	c->n = 0;
	c->at[c->n++] = 0;
	for (size_t i = 0; i < ncut; i++)
		if (cut[i] > c->at[c->n - 1] && cut[i] < len && c->n < MAX_CUTS)
			c->at[c->n++] = cut[i];
	c->at[c->n++] = len;
}

static void cuts_every(struct cuts *c, size_t len, size_t step)
{
	c->n = 0;
	for (size_t i = 0; i < len && c->n < MAX_CUTS; i += step)
		c->at[c->n++] = i;
	c->at[c->n++] = len;
}

/* ts_first of the chunk holding byte off */
static uint64_t chunk_first(const struct cuts *c, uint64_t base, size_t off)
{
	size_t i = 0;

	while (i + 1 < c->n && c->at[i + 1] <= off)
		i++;
	return base + c->at[i];
}

/* ts_last of the chunk holding byte off */
static uint64_t chunk_last(const struct cuts *c, uint64_t base, size_t off)
{
	size_t i = 0;

	while (i + 1 < c->n && c->at[i + 1] <= off)
		i++;
	return base + c->at[i + 1] - 1;
}

static void feed_cuts(struct http1_parser *p, enum stream_dir dir, const char *data,
                      const struct cuts *c, uint64_t base)
{
	for (size_t i = 0; i + 1 < c->n; i++) {
		size_t a = c->at[i], b = c->at[i + 1];

		feed_chunk(p, dir, data + a, b - a, 0, base + a, base + b - 1);
	}
}

static bool fail(const char *what, int i, long long got, long long want)
{
	fprintf(stderr, "  exchange %d: %s: got %lld, want %lld\n", i, what, got, want);
	return false;
}

static bool fail_str(const char *what, int i, const char *got, const char *want)
{
	fprintf(stderr, "  exchange %d: %s: got \"%s\", want \"%s\"\n", i, what, got, want);
	return false;
}

static bool check_exchange(const struct script *s, int i, const struct http1_exchange *ex,
                           const struct cuts *qc, const struct cuts *rc)
{
	const struct xspec *x = &s->x[i];

	if (strcmp(ex->method, x->method))
		return fail_str("method", i, ex->method, x->method);
	if (strcmp(ex->target, x->target))
		return fail_str("target", i, ex->target, x->target);
	if (strcmp(ex->host, x->host ? x->host : ""))
		return fail_str("host", i, ex->host, x->host);
	if (strcmp(ex->user_agent, x->user_agent ? x->user_agent : ""))
		return fail_str("user_agent", i, ex->user_agent, x->user_agent);
	if (strcmp(ex->traceparent, x->traceparent ? x->traceparent : ""))
		return fail_str("traceparent", i, ex->traceparent, x->traceparent);
	if (strcmp(ex->tracestate, x->tracestate ? x->tracestate : ""))
		return fail_str("tracestate", i, ex->tracestate, x->tracestate);
	if (ex->version_major != 1 || ex->version_minor != x->minor)
		return fail("version_minor", i, ex->version_minor, x->minor);
	if (ex->status != x->status)
		return fail("status", i, ex->status, x->status);
	if (ex->target_truncated || ex->headers_truncated)
		return fail("truncated", i, 1, 0);
	if (ex->request_body_size != x->req_body)
		return fail("request_body_size", i, (long long)ex->request_body_size,
		            (long long)x->req_body);
	if (ex->response_body_size != x->resp_body)
		return fail("response_body_size", i, (long long)ex->response_body_size,
		            (long long)x->resp_body);
	if (ex->req_start_ns != chunk_first(qc, REQ_TS_BASE, s->req_first[i]))
		return fail("req_start_ns", i, (long long)ex->req_start_ns,
		            (long long)chunk_first(qc, REQ_TS_BASE, s->req_first[i]));
	if (ex->req_end_ns != chunk_last(qc, REQ_TS_BASE, s->req_last[i]))
		return fail("req_end_ns", i, (long long)ex->req_end_ns,
		            (long long)chunk_last(qc, REQ_TS_BASE, s->req_last[i]));
	if (ex->resp_start_ns != chunk_first(rc, RESP_TS_BASE, s->resp_first[i]))
		return fail("resp_start_ns", i, (long long)ex->resp_start_ns,
		            (long long)chunk_first(rc, RESP_TS_BASE, s->resp_first[i]));
	if (ex->resp_end_ns != chunk_last(rc, RESP_TS_BASE, s->resp_last[i]))
		return fail("resp_end_ns", i, (long long)ex->resp_end_ns,
		            (long long)chunk_last(rc, RESP_TS_BASE, s->resp_last[i]));
	return true;
}

/* Feeds every request chunk, then every response chunk (a pipelining client),
 * closes, and checks every exchange. */
static bool script_run(const struct script *s, const struct cuts *qc, const struct cuts *rc)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);
	struct http1_stats st;
	bool ok = true;

	feed_cuts(p, STREAM_DIR_REQUEST, s->req, qc, REQ_TS_BASE);
	feed_cuts(p, STREAM_DIR_RESPONSE, s->resp, rc, RESP_TS_BASE);
	http1_parser_close(p, RESP_TS_BASE + s->resp_len + 100, L7_END_CLOSE);
	st = stats_of(p);
	if (got.n != s->n || st.exchanges != (uint64_t)s->n) {
		fprintf(stderr, "  %d exchanges, want %d\n", got.n, s->n);
		ok = false;
	}
	if (st.parse_errors || st.unanswered || st.orphan_responses) {
		fprintf(stderr, "  errors %llu unanswered %llu orphans %llu\n",
		        (unsigned long long)st.parse_errors, (unsigned long long)st.unanswered,
		        (unsigned long long)st.orphan_responses);
		ok = false;
	}
	for (int i = 0; ok && i < s->n && i < got.n; i++)
		ok = check_exchange(s, i, &got.ex[i], qc, rc);
	if (http1_parser_memory(p) > IDLE_MEMORY) {
		fprintf(stderr, "  %zu bytes held after close\n", http1_parser_memory(p));
		ok = false;
	}
	http1_parser__free(p);
	return ok;
}

static void describe_cuts(const char *dir, const struct cuts *c)
{
	fprintf(stderr, "  %s cuts:", dir);
	for (size_t i = 1; i + 1 < c->n && i < 20; i++)
		fprintf(stderr, " %zu", c->at[i]);
	fprintf(stderr, "\n");
}

/* Whole, every single cut, every pair of close cuts, byte by byte, random. */
static void script_check_all_splits(const struct xspec *x, int n)
{
	struct script s;
	struct cuts *qc = malloc(sizeof(*qc)), *rc = malloc(sizeof(*rc));
	size_t longest, cut[3];
	unsigned seed = 12345;
	bool ok = true;

	script_build(&s, x, n);
	longest = s.req_len > s.resp_len ? s.req_len : s.resp_len;

	cuts_make(qc, s.req_len, NULL, 0);
	cuts_make(rc, s.resp_len, NULL, 0);
	ok = script_run(&s, qc, rc);
	for (size_t k = 1; ok && k < longest; k++) {
		cuts_make(qc, s.req_len, &k, 1);
		cuts_make(rc, s.resp_len, &k, 1);
		ok = script_run(&s, qc, rc);
	}
	for (size_t k = 1; ok && k < longest; k++) {
		for (size_t d = 1; ok && d <= 3; d++) {
			cut[0] = k;
			cut[1] = k + d;
			cuts_make(qc, s.req_len, cut, 2);
			cuts_make(rc, s.resp_len, cut, 2);
			ok = script_run(&s, qc, rc);
		}
	}
	if (ok) {
		cuts_every(qc, s.req_len, 1);
		cuts_every(rc, s.resp_len, 1);
		ok = script_run(&s, qc, rc);
	}
	for (int r = 0; ok && r < 300; r++) {
		size_t qcut[64], rcut[64], nq = 0, nr = 0, at;

		for (at = 0; nq < 64 && at < s.req_len; qcut[nq++] = at)
			at += 1 + (size_t)(rand_r(&seed) % 40);
		for (at = 0; nr < 64 && at < s.resp_len; rcut[nr++] = at)
			at += 1 + (size_t)(rand_r(&seed) % 40);
		cuts_make(qc, s.req_len, qcut, nq);
		cuts_make(rc, s.resp_len, rcut, nr);
		ok = script_run(&s, qc, rc);
	}
	if (!ok) {
		describe_cuts("request", qc);
		describe_cuts("response", rc);
	}
	CHECK(ok);
	free(qc);
	free(rc);
	script_free(&s);
}

/* Feeds exchange by exchange (request i, then its response), each message
 * byte by byte or whole. */
static void script_check_interleaved(const struct xspec *x, int n, bool bytewise)
{
	struct script s;
	struct collected got;
	struct http1_parser *p = new_parser(&got);
	struct cuts *qc = malloc(sizeof(*qc)), *rc = malloc(sizeof(*rc));
	size_t qat = 0, rat = 0;
	bool ok = true;

	script_build(&s, x, n);
	if (bytewise) {
		cuts_every(qc, s.req_len, 1);
		cuts_every(rc, s.resp_len, 1);
	} else {
		size_t qcut[MAX_EXCHANGES], rcut[MAX_EXCHANGES];

		for (int i = 0; i < n; i++) {
			qcut[i] = s.req_first[i];
			rcut[i] = i ? s.resp_last[i - 1] + 1 : 0;
		}
		cuts_make(qc, s.req_len, qcut, (size_t)n);
		cuts_make(rc, s.resp_len, rcut, (size_t)n);
	}
	for (int i = 0; i < n; i++) {
		for (size_t k = 0; k + 1 < qc->n; k++) {
			size_t a = qc->at[k], b = qc->at[k + 1];

			if (a < qat || a > s.req_last[i])
				continue;
			feed_chunk(p, STREAM_DIR_REQUEST, s.req + a, b - a, 0, REQ_TS_BASE + a,
			           REQ_TS_BASE + b - 1);
			qat = b;
		}
		for (size_t k = 0; k + 1 < rc->n; k++) {
			size_t a = rc->at[k], b = rc->at[k + 1];

			if (a < rat || a > s.resp_last[i])
				continue;
			feed_chunk(p, STREAM_DIR_RESPONSE, s.resp + a, b - a, 0, RESP_TS_BASE + a,
			           RESP_TS_BASE + b - 1);
			rat = b;
		}
		/* every exchange but a close-delimited last one is complete now */
		if (i + 1 < n)
			CHECK_EQ_INT(got.n, i + 1);
	}
	http1_parser_close(p, RESP_TS_BASE + s.resp_len + 100, L7_END_CLOSE);
	CHECK_EQ_INT(got.n, n);
	for (int i = 0; ok && i < n && i < got.n; i++)
		ok = check_exchange(&s, i, &got.ex[i], qc, rc);
	CHECK(ok);
	CHECK_EQ_INT(stats_of(p).parse_errors, 0);
	CHECK_EQ_INT(stats_of(p).unanswered, 0);
	http1_parser__free(p);
	free(qc);
	free(rc);
	script_free(&s);
}

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static const struct xspec keepalive_script[] = {
    {.req = "GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.0\r\n"
            "traceparent: " TP "\r\ntracestate: a=1\r\nTracestate: b=2\r\nAccept: */*\r\n\r\n",
     .resp = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
     .method = "GET",
     .target = "/index.html?q=1",
     .host = "example.com",
     .user_agent = "curl/8.0",
     .traceparent = TP,
     .tracestate = "a=1,b=2",
     .minor = 1,
     .status = 200,
     .resp_body = 5},
    {.req = "POST /api/items HTTP/1.1\r\nHost: api\r\ncontent-length: 11\r\n\r\nhello world",
     .resp = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;name=val\r\nabcd\r\n"
             "6\r\nefghij\r\n0\r\nX-Trailer: t\r\n\r\n",
     .method = "POST",
     .target = "/api/items",
     .host = "api",
     .minor = 1,
     .status = 201,
     .req_body = 11,
     .resp_body = 10},
    {.req = "PUT /upload HTTP/1.1\r\nHost: up\r\nExpect: 100-continue\r\n"
            "Transfer-Encoding: gzip, chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n"
            "0\r\nChecksum: z\r\n\r\n",
     .interim = "HTTP/1.1 100 Continue\r\n\r\n",
     .resp = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
     .method = "PUT",
     .target = "/upload",
     .host = "up",
     .minor = 1,
     .status = 200,
     .req_body = 13},
    {.req = "HEAD /big HTTP/1.1\r\nHost: h\r\n\r\n",
     .resp = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
     .method = "HEAD",
     .target = "/big",
     .host = "h",
     .minor = 1,
     .status = 200},
    {.req = "DELETE /items/7 HTTP/1.1\r\nHost: h\r\n\r\n",
     .resp = "HTTP/1.1 204 No Content\r\n\r\n",
     .method = "DELETE",
     .target = "/items/7",
     .host = "h",
     .minor = 1,
     .status = 204},
    {.req = "GET /cached HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n\r\n",
     .resp = "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\nETag: \"x\"\r\n\r\n",
     .method = "GET",
     .target = "/cached",
     .host = "h",
     .minor = 1,
     .status = 304},
    {.req = "GET /early HTTP/1.1\r\nHost: h\r\n\r\n",
     .interim = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
     .resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     .method = "GET",
     .target = "/early",
     .host = "h",
     .minor = 1,
     .status = 200,
     .resp_body = 2},
    {.req = "GET /case HTTP/1.1\r\nhOsT: Mixed.Example\r\nUSER-AGENT: Agent/1\r\n\r\n",
     .resp = "HTTP/1.1 404 Not Found\r\nCONTENT-LENGTH: 3\r\n\r\nabc",
     .method = "GET",
     .target = "/case",
     .host = "Mixed.Example",
     .user_agent = "Agent/1",
     .minor = 1,
     .status = 404,
     .resp_body = 3},
    {.req = "OPTIONS * HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
     .resp = "HTTP/1.1 200 OK\r\nAllow: GET\r\nContent-Length: 0\r\n\r\n",
     .method = "OPTIONS",
     .target = "*",
     .host = "h",
     .minor = 1,
     .status = 200},
    {.req = "GET /old HTTP/1.0\r\n\r\n",
     .resp = "HTTP/1.0 200 OK\r\nServer: x\r\n\r\nbody until close",
     .method = "GET",
     .target = "/old",
     .minor = 0,
     .status = 200,
     .resp_body = 16},
};

#define NELEM(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void test_keepalive_all_splits(void)
{
	script_check_all_splits(keepalive_script, NELEM(keepalive_script));
}

static void test_keepalive_interleaved(void)
{
	script_check_interleaved(keepalive_script, NELEM(keepalive_script), false);
	script_check_interleaved(keepalive_script, NELEM(keepalive_script), true);
}

static const struct xspec pipeline_script[] = {
    {.req = "GET /a HTTP/1.1\r\nHost: p\r\n\r\n",
     .resp = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA",
     .method = "GET",
     .target = "/a",
     .host = "p",
     .minor = 1,
     .status = 200,
     .resp_body = 1},
    {.req = "GET /b HTTP/1.1\r\nHost: p\r\n\r\n",
     .resp = "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nBB\r\n0\r\n\r\n",
     .method = "GET",
     .target = "/b",
     .host = "p",
     .minor = 1,
     .status = 500,
     .resp_body = 2},
    {.req = "POST /c HTTP/1.1\r\nHost: p\r\nContent-Length: 3\r\n\r\nCCC",
     .resp = "HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n",
     .method = "POST",
     .target = "/c",
     .host = "p",
     .minor = 1,
     .status = 302,
     .req_body = 3},
    {.req = "HEAD /d HTTP/1.1\r\n\r\n",
     .resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
     .method = "HEAD",
     .target = "/d",
     .minor = 1,
     .status = 200},
};

/* Pipelining: every request, then every response; also every pair of cuts. */
static void test_pipelining(void)
{
	struct script s;
	struct cuts *qc = malloc(sizeof(*qc)), *rc = malloc(sizeof(*rc));
	bool ok = true;

	script_check_all_splits(pipeline_script, NELEM(pipeline_script));
	script_build(&s, pipeline_script, NELEM(pipeline_script));
	for (size_t a = 1; ok && a < s.req_len; a++) {
		for (size_t b = a + 1; ok && b < s.req_len; b++) {
			size_t cut[2] = {a, b};

			cuts_make(qc, s.req_len, cut, 2);
			cuts_make(rc, s.resp_len, cut, 2);
			ok = script_run(&s, qc, rc);
		}
	}
	if (!ok) {
		describe_cuts("request", qc);
		describe_cuts("response", rc);
	}
	CHECK(ok);
	script_free(&s);
	free(qc);
	free(rc);
}

/* --- single scenarios ------------------------------------------------------- */

static void test_close_delimited(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);

	feed_str(p, STREAM_DIR_REQUEST, "GET / HTTP/1.1\r\nHost: c\r\n\r\n", 10);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one ",
	         20);
	feed_str(p, STREAM_DIR_RESPONSE, "part two", 30);
	CHECK_EQ_INT(got.n, 0);
	http1_parser_close(p, 40, L7_END_CLOSE);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_INT(got.ex[0].status, 200);
	CHECK_EQ_INT(got.ex[0].response_body_size, 17);
	CHECK_EQ_INT(got.ex[0].resp_start_ns, 20);
	CHECK_EQ_INT(got.ex[0].resp_end_ns, 30);
	CHECK_EQ_INT(stats_of(p).unanswered, 0);
	http1_parser__free(p);
}

static void test_unanswered_at_close(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);

	feed_str(p, STREAM_DIR_REQUEST, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", 10);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 20);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_STR(got.ex[0].target, "/1");
	CHECK(http1_parser_memory(p) > IDLE_MEMORY); /* /2 is pending */
	http1_parser_close(p, 30, L7_END_PEER_CLOSED);
	/* /2 is reported as failed: the peer closed before answering */
	CHECK_EQ_INT(got.n, 2);
	CHECK(!got.ex[0].failed);
	CHECK_EQ_STR(got.ex[1].target, "/2");
	CHECK(got.ex[1].failed);
	CHECK_EQ_INT(got.ex[1].end_how, L7_END_PEER_CLOSED);
	CHECK_EQ_INT(got.ex[1].status, 0);
	CHECK_EQ_INT(got.ex[1].req_start_ns, 10);
	CHECK_EQ_INT(got.ex[1].resp_end_ns, 30);
	CHECK_EQ_INT(stats_of(p).unanswered, 0);
	CHECK_EQ_INT(stats_of(p).failed, 1);
	CHECK_EQ_INT(stats_of(p).exchanges, 2);
	CHECK(http1_parser_memory(p) <= IDLE_MEMORY);
	http1_parser__free(p);
}

/* A request whose head is longer than the capture: the request hook still
 * fires with what was seen (method, target, headers before the cut). */
static int heads_seen;
static char head_traceparent[HTTP1_TRACEPARENT_MAX];
static void count_head(void *ctx, const struct http1_exchange *req)
{
	heads_seen++;
	snprintf(head_traceparent, sizeof(head_traceparent), "%s", req->traceparent);
}

static void test_truncated_head_reports_request(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);
	const char *head =
	    "GET /big HTTP/1.1\r\nHost: h\r\ntraceparent: "
	    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nCookie: aaaa";
	struct stream_chunk c = {.data = (const uint8_t *)head,
	                         .len = strlen(head),
	                         .missing = 5000,
	                         .ts_first_ns = 10,
	                         .ts_last_ns = 11};

	heads_seen = 0;
	http1_parser_set_request_fn(p, count_head);
	http1_parser_feed(p, STREAM_DIR_REQUEST, &c);
	CHECK_EQ_INT(heads_seen, 1);
	CHECK_EQ_STR(head_traceparent, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 20);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_STR(got.ex[0].target, "/big");
	CHECK(got.ex[0].headers_truncated);
	CHECK_EQ_INT(heads_seen, 1);
	http1_parser__free(p);
}

/* A request the server never answers, ended by a reset, and one whose own
 * client gave up (closed): both failed, with how the connection ended. */
static void test_failed_reset_and_timeout(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);

	feed_str(p, STREAM_DIR_REQUEST, "POST /slow HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi", 10);
	http1_parser_close(p, 500, L7_END_RESET);
	CHECK_EQ_INT(got.n, 1);
	CHECK(got.ex[0].failed);
	CHECK_EQ_INT(got.ex[0].end_how, L7_END_RESET);
	CHECK_EQ_STR(got.ex[0].method, "POST");
	CHECK_EQ_INT(got.ex[0].resp_end_ns, 500);
	http1_parser__free(p);

	p = new_parser(&got);
	feed_str(p, STREAM_DIR_REQUEST, "GET /never HTTP/1.1\r\n\r\n", 10);
	http1_parser_close(p, 3000, L7_END_CLOSE);
	CHECK_EQ_INT(got.n, 1);
	CHECK(got.ex[0].failed);
	CHECK_EQ_INT(got.ex[0].end_how, L7_END_CLOSE);
	/* an idle keep-alive connection closing reports nothing */
	http1_parser__free(p);
	p = new_parser(&got);
	feed_str(p, STREAM_DIR_REQUEST, "GET /ok HTTP/1.1\r\n\r\n", 10);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 204 No Content\r\n\r\n", 20);
	http1_parser_close(p, 3000, L7_END_PEER_CLOSED);
	CHECK_EQ_INT(got.n, 1);
	CHECK(!got.ex[0].failed);
	http1_parser__free(p);
}

static void test_pending_overflow(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);
	char req[64];

	for (int i = 0; i < 40; i++) {
		snprintf(req, sizeof(req), "GET /%d HTTP/1.1\r\n\r\n", i);
		feed_str(p, STREAM_DIR_REQUEST, req, (uint64_t)i);
	}
	CHECK_EQ_INT(stats_of(p).unanswered, 8);
	CHECK(http1_parser_memory(p) < 64 * 1024);
	/* the oldest kept request gets the next response */
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 100);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_STR(got.ex[0].target, "/8");
	http1_parser_close(p, 200, L7_END_CLOSE);
	CHECK_EQ_INT(stats_of(p).unanswered, 8);
	CHECK_EQ_INT(stats_of(p).failed, 31);
	http1_parser__free(p);
}

static void test_orphan_response(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);

	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", 1);
	CHECK_EQ_INT(got.n, 0);
	CHECK_EQ_INT(stats_of(p).orphan_responses, 1);
	feed_str(p, STREAM_DIR_REQUEST, "GET / HTTP/1.1\r\n\r\n", 2);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 201 OK\r\nContent-Length: 0\r\n\r\n", 3);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_INT(got.ex[0].status, 201);
	http1_parser__free(p);
}

static void test_content_length_body_missing(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);
	char body[100];

	memset(body, 'x', sizeof(body));
	feed_str(p, STREAM_DIR_REQUEST, "GET /file HTTP/1.1\r\n\r\n", 1);
	/* headers and the start of the body in one capture, the rest not captured */
	{
		char buf[256];
		int n =
		    snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\nContent-Length: 10000\r\n\r\n");

		memcpy(buf + n, body, sizeof(body));
		CHECK_EQ_INT(feed_chunk(p, STREAM_DIR_RESPONSE, buf, (size_t)n + sizeof(body),
		                        10000 - sizeof(body), 10, 20),
		             0);
	}
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_INT(got.ex[0].response_body_size, 10000);
	CHECK_EQ_INT(got.ex[0].resp_start_ns, 10);
	CHECK_EQ_INT(got.ex[0].resp_end_ns, 20);

	/* sendfile(): headers captured, the body arrives as len=0, missing=N */
	feed_str(p, STREAM_DIR_REQUEST, "GET /static HTTP/1.1\r\n\r\n", 25);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", 30);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_INT(feed_chunk(p, STREAM_DIR_RESPONSE, NULL, 0, 3000, 31, 32), 0);
	CHECK_EQ_INT(feed_chunk(p, STREAM_DIR_RESPONSE, NULL, 0, 2000, 33, 40), 0);
	CHECK_EQ_INT(got.n, 2);
	CHECK_EQ_INT(got.ex[1].response_body_size, 5000);
	CHECK_EQ_INT(got.ex[1].resp_end_ns, 40);

	/* an uncaptured request body */
	feed_chunk(p, STREAM_DIR_REQUEST, "POST /up HTTP/1.1\r\nContent-Length: 9000\r\n\r\n", 43,
	           9000, 50, 51);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 60);
	CHECK_EQ_INT(got.n, 3);
	CHECK_EQ_INT(got.ex[2].request_body_size, 9000);
	CHECK_EQ_INT(got.ex[2].req_end_ns, 51);
	CHECK(!got.ex[2].headers_truncated);
	http1_parser_close(p, 100, L7_END_CLOSE);
	CHECK_EQ_INT(stats_of(p).parse_errors, 0);
	CHECK_EQ_INT(stats_of(p).unanswered, 0);
	http1_parser__free(p);
}

static void test_chunked_body_missing(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);
	static char data[4200];
	size_t n;

	/* the gap lies inside one chunk's data: the framing survives */
	feed_str(p, STREAM_DIR_REQUEST, "GET /c1 HTTP/1.1\r\n\r\n", 1);
	n = (size_t)snprintf(data, sizeof(data),
	                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n");
	memset(data + n, 'x', 4000);
	feed_chunk(p, STREAM_DIR_RESPONSE, data, n + 4000, 0x2000 - 4000, 10, 11);
	CHECK_EQ_INT(got.n, 0);
	feed_str(p, STREAM_DIR_RESPONSE, "\r\n0\r\n\r\n", 12);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_INT(got.ex[0].response_body_size, 0x2000);
	CHECK_EQ_INT(got.ex[0].resp_end_ns, 12);
	CHECK_EQ_INT(stats_of(p).parse_errors, 0);

	/* the gap runs past the chunk: the response ends with the last byte
	 * before the next response start */
	feed_str(p, STREAM_DIR_REQUEST, "GET /c2 HTTP/1.1\r\n\r\nGET /c3 HTTP/1.1\r\n\r\n", 20);
	n = (size_t)snprintf(data, sizeof(data),
	                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000\r\n");
	memset(data + n, 'y', 100);
	feed_chunk(p, STREAM_DIR_RESPONSE, data, n + 100, 5000, 30, 31);
	feed_str(p, STREAM_DIR_RESPONSE, "zzzz\r\n0\r\n\r\n", 40);
	CHECK_EQ_INT(got.n, 1);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 50);
	CHECK_EQ_INT(got.n, 3);
	CHECK_EQ_STR(got.ex[1].target, "/c2");
	CHECK_EQ_INT(got.ex[1].status, 200);
	CHECK_EQ_INT(got.ex[1].resp_start_ns, 30);
	CHECK_EQ_INT(got.ex[1].resp_end_ns, 40);
	CHECK_EQ_INT(got.ex[1].response_body_size, 100 + 5000 + 11);
	CHECK_EQ_STR(got.ex[2].target, "/c3");
	CHECK_EQ_INT(got.ex[2].status, 404);

	/* ... or at close */
	feed_str(p, STREAM_DIR_REQUEST, "GET /c4 HTTP/1.1\r\n\r\n", 60);
	feed_chunk(p, STREAM_DIR_RESPONSE, data, n + 100, 5000, 70, 71);
	feed_str(p, STREAM_DIR_RESPONSE, "tail", 80);
	CHECK_EQ_INT(got.n, 3);
	http1_parser_close(p, 90, L7_END_CLOSE);
	CHECK_EQ_INT(got.n, 4);
	CHECK_EQ_STR(got.ex[3].target, "/c4");
	CHECK_EQ_INT(got.ex[3].resp_end_ns, 80);
	CHECK_EQ_INT(stats_of(p).parse_errors, 0);
	CHECK_EQ_INT(stats_of(p).unanswered, 0);
	http1_parser__free(p);
}

static void test_truncated_headers(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);
	static char data[4096];
	size_t n;

	/* the capture ends inside the request's header block */
	n = (size_t)snprintf(data, sizeof(data),
	                     "GET /trunc HTTP/1.1\r\nHost: t.example\r\nCookie: ");
	memset(data + n, 'c', sizeof(data) - n);
	feed_chunk(p, STREAM_DIR_REQUEST, data, sizeof(data), 3000, 10, 11);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 20);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_STR(got.ex[0].host, "t.example");
	CHECK_EQ_STR(got.ex[0].target, "/trunc");
	CHECK(got.ex[0].headers_truncated);
	CHECK_EQ_INT(got.ex[0].req_end_ns, 11);

	/* the next request is found again */
	feed_str(p, STREAM_DIR_REQUEST, "GET /next HTTP/1.1\r\nHost: n\r\n\r\n", 30);
	/* the capture ends inside the response's header block */
	n = (size_t)snprintf(data, sizeof(data), "HTTP/1.1 503 Busy\r\nSet-Cookie: ");
	memset(data + n, 's', sizeof(data) - n);
	feed_chunk(p, STREAM_DIR_RESPONSE, data, sizeof(data), 100, 40, 41);
	CHECK_EQ_INT(got.n, 2);
	CHECK_EQ_STR(got.ex[1].target, "/next");
	CHECK_EQ_INT(got.ex[1].status, 503);
	CHECK(got.ex[1].headers_truncated);
	CHECK_EQ_INT(got.ex[1].resp_end_ns, 41);

	/* and the next response */
	feed_str(p, STREAM_DIR_REQUEST, "GET /last HTTP/1.1\r\n\r\n", 50);
	feed_str(p, STREAM_DIR_RESPONSE,
	         "body rest\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 60);
	CHECK_EQ_INT(got.n, 3);
	CHECK_EQ_STR(got.ex[2].target, "/last");
	CHECK(!got.ex[2].headers_truncated);
	CHECK_EQ_INT(stats_of(p).parse_errors, 0);
	http1_parser__free(p);
}

static void test_garbage_before_request(void)
{
	static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n";
	struct collected got;
	struct http1_parser *p = new_parser(&got);
	char buf[256];
	int n;

	static const char resp[] = "\x00\x01junk HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";

	memcpy(buf, tls, sizeof(tls) - 1);
	n = snprintf(buf + sizeof(tls) - 1, sizeof(buf) - sizeof(tls),
	             "GET /after HTTP/1.1\r\nHost: g\r\n\r\n");
	n += (int)sizeof(tls) - 1;
	CHECK_EQ_INT(feed_chunk(p, STREAM_DIR_REQUEST, buf, (size_t)n, 0, 5, 6), -EBADMSG);
	CHECK_EQ_INT(feed_chunk(p, STREAM_DIR_RESPONSE, resp, sizeof(resp) - 1, 0, 7, 7), -EBADMSG);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_STR(got.ex[0].target, "/after");
	CHECK_EQ_STR(got.ex[0].host, "g");
	CHECK_EQ_INT(got.ex[0].response_body_size, 1);
	CHECK(stats_of(p).parse_errors >= 2);
	/* a request glued to garbage, split byte by byte */
	{
		const char *s = "\x01\x02xyzPATCH /glued HTTP/1.1\r\n\r\n";
		for (size_t i = 0; s[i]; i++)
			feed_chunk(p, STREAM_DIR_REQUEST, s + i, 1, 0, 100 + i, 100 + i);
	}
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200);
	CHECK_EQ_INT(got.n, 2);
	CHECK_EQ_STR(got.ex[1].method, "PATCH");
	CHECK_EQ_STR(got.ex[1].target, "/glued");
	CHECK_EQ_INT(got.ex[1].req_start_ns, 105);
	http1_parser__free(p);
}

static void test_random_garbage(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);
	unsigned seed = 7;
	uint8_t buf[4096];

	for (int round = 0; round < 200; round++) {
		size_t len = (size_t)(rand_r(&seed) % sizeof(buf));

		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rand_r(&seed);
		feed_chunk(p, (enum stream_dir)(round & 1), (const char *)buf, len,
		           (size_t)(rand_r(&seed) % 3 ? 0 : rand_r(&seed) % 10000), (uint64_t)round,
		           (uint64_t)round);
		CHECK(http1_parser_memory(p) < 16 * 1024);
	}
	CHECK(stats_of(p).parse_errors > 0);
	http1_parser_close(p, 1000, L7_END_CLOSE);
	CHECK(http1_parser_memory(p) <= IDLE_MEMORY);
	http1_parser__free(p);
}

/* A 1 MB header line, fed in captures of 4096 and in one piece. */
static void test_huge_header_line(void)
{
	const size_t big = 1 << 20;
	const char *head = "GET /big HTTP/1.1\r\nX-Big: ";
	const char *tail = "\r\nHost: big.example\r\n\r\n";
	size_t hl = strlen(head), tl = strlen(tail), total = hl + big + tl;
	char *req = malloc(total);
	struct collected got;
	struct http1_parser *p;
	size_t peak = 0;

	memcpy(req, head, hl);
	memset(req + hl, 'a', big);
	memcpy(req + hl + big, tail, tl);
	for (int whole = 0; whole < 2; whole++) {
		p = new_parser(&got);
		for (size_t at = 0; at < total;) {
			size_t n = whole ? total : total - at < 4096 ? total - at : 4096;

			feed_chunk(p, STREAM_DIR_REQUEST, req + at, n, 0, at, at + n - 1);
			if (http1_parser_memory(p) > peak)
				peak = http1_parser_memory(p);
			at += n;
		}
		feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		         total);
		CHECK_EQ_INT(got.n, 1);
		CHECK_EQ_STR(got.ex[0].host, "big.example");
		CHECK_EQ_STR(got.ex[0].target, "/big");
		CHECK_EQ_INT(got.ex[0].req_end_ns, total - 1);
		CHECK_EQ_INT(stats_of(p).parse_errors, 0);
		CHECK(http1_parser_memory(p) <= IDLE_MEMORY);
		http1_parser__free(p);
	}
	CHECK(peak < 8 * 1024);

	/* a 1 MB request-target, split into captures */
	memcpy(req, "GET /", 5);
	memset(req + 5, 'b', big);
	memcpy(req + 5 + big, " HTTP/1.1\r\nHost: t\r\n\r\n", 22);
	total = 5 + big + 22;
	p = new_parser(&got);
	peak = 0;
	for (size_t at = 0; at < total; at += 4096) {
		size_t n = total - at < 4096 ? total - at : 4096;

		feed_chunk(p, STREAM_DIR_REQUEST, req + at, n, 0, at, at + n - 1);
		if (http1_parser_memory(p) > peak)
			peak = http1_parser_memory(p);
	}
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n\r\n",
	         total);
	CHECK_EQ_INT(got.n, 1);
	CHECK(got.ex[0].target_truncated);
	CHECK_EQ_INT(strlen(got.ex[0].target), HTTP1_TARGET_MAX - 1);
	CHECK_EQ_STR(got.ex[0].host, "t");
	CHECK_EQ_INT(got.ex[0].status, 414);
	CHECK(peak < 8 * 1024);
	http1_parser__free(p);
	free(req);
}

static void test_upgrade_tunnel(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);

	feed_str(p, STREAM_DIR_REQUEST,
	         "GET /ws HTTP/1.1\r\nHost: w\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	         1);
	feed_str(p, STREAM_DIR_RESPONSE,
	         "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", 2);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_INT(got.ex[0].status, 101);
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_REQUEST, "\x81\x85GET / HTTP/1.1\r\n\r\n", 3), 0);
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_RESPONSE, "\x81\x05HTTP/1.1 200 OK\r\n\r\n", 4), 0);
	CHECK_EQ_INT(got.n, 1);
	http1_parser_close(p, 5, L7_END_CLOSE);
	CHECK_EQ_INT(stats_of(p).parse_errors, 0);
	CHECK_EQ_INT(stats_of(p).unanswered, 0);
	http1_parser__free(p);
}

static void test_idle_memory(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);

	CHECK(http1_parser_memory(p) <= IDLE_MEMORY);
	feed_str(p, STREAM_DIR_REQUEST, "GET /m HTTP/1.1\r\nHost: ", 1);
	feed_str(p, STREAM_DIR_REQUEST, "m\r\n\r\n", 2);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-", 3);
	feed_str(p, STREAM_DIR_RESPONSE, "Length: 0\r\n\r\n", 4);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_STR(got.ex[0].host, "m");
	CHECK(http1_parser_memory(p) <= IDLE_MEMORY);
	http1_parser__free(p);
	http1_parser__free(NULL);
}

static void test_bad_arguments(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);
	struct stream_chunk c = {.data = NULL, .len = 3};

	CHECK_EQ_INT(http1_parser_feed(p, STREAM_DIR_REQUEST, &c), -EINVAL);
	CHECK_EQ_INT(http1_parser_feed(p, STREAM_DIR_REQUEST, NULL), -EINVAL);
	CHECK_EQ_INT(http1_parser_feed(p, (enum stream_dir)7, &c), -EINVAL);
	c.len = 0;
	CHECK_EQ_INT(http1_parser_feed(p, STREAM_DIR_REQUEST, &c), 0);
	http1_parser__free(p);
}

struct detect_case {
	const char *data;
	int want;
};

static void test_detect(void)
{
	static const struct detect_case cases[] = {
	    {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", STREAM_DIR_REQUEST},
	    {"GET ", STREAM_DIR_REQUEST},
	    {"POST /api/v1/items?x=1", STREAM_DIR_REQUEST},
	    {"DELETE /x HTTP/1.", STREAM_DIR_REQUEST},
	    {"GET /x HTTP/1.1\r", STREAM_DIR_REQUEST},
	    {"PROPFIND /dav HTTP/1.1\r\n", STREAM_DIR_REQUEST},
	    {"M-SEARCH * HTTP/1.1\r\n", STREAM_DIR_REQUEST},
	    {"HTTP/1.1 200 OK\r\n", STREAM_DIR_RESPONSE},
	    {"HTTP/1.0 404", STREAM_DIR_RESPONSE},
	    {"HTTP/", STREAM_DIR_RESPONSE},
	    {"HTTP/1.1 ", STREAM_DIR_RESPONSE},
	    {"HTTP/1.1xyz", -1},
	    {"HTTP/1.1 2x0 OK", -1},
	    {"HTTP/1.1 099 OK", -1},
	    {"HTTP/2.0 200 OK\r\n", -1},
	    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", -1},
	    {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", -1},
	    {"*1\r\n$4\r\nPING\r\n", -1},
	    {"+OK\r\n", -1},
	    {"GET key\r\n", -1},
	    {"SET key value\r\n", -1},
	    {"get / HTTP/1.1\r\n", -1},
	    {"GET /x FTP", -1},
	    {"GET  / HTTP/1.1\r\n", -1},
	    {"GET /a b HTTP/1.1\r\n", -1},
	    {"FOO /x", -1},
	    {"GE", -1},
	    {"", -1},
	    {"GET /x HTTP/1.1\r\nX", STREAM_DIR_REQUEST},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int got = http1_detect((const uint8_t *)cases[i].data, strlen(cases[i].data));

		if (got != cases[i].want)
			fprintf(stderr, "  detect case %zu \"%s\"\n", i, cases[i].data);
		CHECK_EQ_INT(got, cases[i].want);
	}
	CHECK_EQ_INT(http1_detect(NULL, 10), -1);
	CHECK_EQ_INT(http1_detect((const uint8_t *)"Q\0\0\0\x0dSELECT 1", 13), -1);
	CHECK_EQ_INT(http1_detect((const uint8_t *)"\0\0\0\x08\x04\xd2\x16\x2f", 8), -1);
}

/* --- fuzzer findings ---------------------------------------------------------- */

/* Inputs the fuzzer (tests/fuzz/fuzz_http1.c) once failed on, replayed the
 * same way: a script of chunks (control byte: bit 0 direction, bit 1 a
 * missing count follows, bits 2-7 length, 63 = the rest; 0xff closes), run
 * as written and byte by byte; both runs must agree and keep the invariants. */
/* crash-6e5b5188 */
static const uint8_t fuzz_case_0[] = {
    0x0c, 0x0a, 0x0d, 0x0a, 0x09, 0x00, 0x01, 0x7d, 0x45, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e,
    0x31, 0x20, 0x32, 0x30, 0x30, 0x20, 0x4f, 0x4b, 0x0d, 0x0a, 0x43, 0x98, 0x91, 0x74, 0x65,
    0x6e, 0x74, 0x2d, 0x4c, 0x65, 0x6e, 0x67, 0x74, 0x68, 0x05, 0x20, 0x0c, 0x48, 0x54, 0x54,
    0x24, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d, 0x0a, 0x0d, 0x0a, 0x7d, 0x48, 0x54, 0x54, 0x50,
    0x2f, 0x31, 0x2e, 0x31, 0x20, 0x32, 0x30, 0x30, 0x20, 0x08, 0x4b, 0x05, 0x0d, 0xc9, 0x0a,
    0x43, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x4c, 0x65, 0x6e, 0x67, 0x74, 0x68, 0x3a,
    0x20, 0x31, 0x0d, 0x0a, 0x0d, 0x0a, 0x31, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31,
    0x20, 0x32, 0x30, 0x30, 0x20, 0x4f, 0x4b, 0x0d, 0xa8, 0x47, 0x45, 0x54, 0x0c, 0x2f, 0x33,
    0x30, 0x0c, 0x48, 0x54, 0x54, 0x24, 0x50, 0x2f, 0x31, 0x2e, 0x20, 0x2f, 0x31, 0x20, 0x48,
    0x54, 0x54, 0x0a, 0x43, 0x50, 0x2f, 0xb0, 0x50, 0x55, 0x54, 0x20, 0x2f, 0x75, 0x20, 0x48,
    0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x2e, 0x31, 0x0d, 0x0a, 0x0d, 0x0a, 0x42, 0x45,
    0x54, 0x20, 0x2f, 0x32, 0x20, 0x48, 0x54, 0x54, 0x50, 0x31, 0x0d, 0x0a, 0x2f, 0x31, 0x45,
};
/* crash-b583c1fa */
static const uint8_t fuzz_case_1[] = {
    0x20, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x6f, 0x6c, 0x64, 0x2c, 0x20, 0x48, 0x54, 0x54, 0x50, 0x2f,
    0x31, 0x2e, 0x30, 0x0d, 0x0a, 0x04, 0xbc, 0x50, 0x4f, 0x53, 0x54, 0x20, 0x2f, 0x63, 0x20, 0x48,
    0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d, 0x0a, 0x54, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65,
    0x72, 0x2d, 0x45, 0x6e, 0x63, 0x6f, 0x64, 0x69, 0x6e, 0x67, 0x3a, 0x20, 0x63, 0x68, 0x75, 0x6e,
    0x6b, 0x65, 0x64, 0x0d, 0x0a, 0x0d, 0x20, 0x0a, 0x33, 0x3b, 0x78, 0x3d, 0x79, 0xff, 0x0d, 0x0a,
    0x10, 0x61, 0x62, 0x63, 0x0d, 0x18, 0x0a, 0x30, 0x0d, 0x0a, 0x54, 0x3a, 0x04, 0x20, 0x04, 0x31,
    0x04, 0x0d, 0x0c, 0x0a, 0x0d, 0x0a, 0x8d, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x20,
    0x32, 0x30, 0x31, 0x0d, 0x04, 0x0a, 0x29, 0x48, 0x54, 0x54, 0x50, 0x2f, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0x20, 0x43, 0x72, 0x65, 0x61, 0x74, 0x65, 0x64, 0x0d, 0x0a, 0x54,
    0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72, 0x2d, 0x45, 0x6e, 0x63, 0x6f, 0x05, 0x64, 0x75, 0x69,
    0x6e, 0x67, 0x3a, 0x20, 0x63, 0x68, 0x75, 0x6e, 0x6b, 0x65, 0x64, 0x0d, 0x0a, 0x0d, 0x0a, 0x34,
    0x0d, 0x0a, 0x61, 0x62, 0x63, 0x64, 0x0d, 0x0a, 0x30, 0x0d, 0x0a, 0x0d, 0x05, 0x0a, 0xff, 0xff,
    0x31, 0x2e, 0x30, 0x20, 0x32, 0x05, 0x30, 0x39, 0x30, 0x20, 0x4f, 0x4b, 0x0d, 0x0a, 0x0d, 0x0a,
    0x75, 0x6e, 0x74, 0x69, 0x6c, 0x20, 0x15, 0x63, 0x6c, 0x6f, 0x73, 0x65, 0xff,
};
/* crash-f0f0cc96 */
static const uint8_t fuzz_case_2[] = {
    0x10, 0x47, 0x45, 0x54, 0x20, 0x0c, 0x2f, 0x66, 0x20, 0x2c, 0x48, 0x54, 0x18, 0x50, 0x2f, 0x31,
    0x2e, 0x31, 0x0d, 0x0a, 0x0d, 0x04, 0x0a, 0x21, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31,
    0x59, 0x20, 0x32, 0x30, 0x30, 0x20, 0x4f, 0x4b, 0x0d, 0x74, 0x74, 0x43, 0x65, 0x9b, 0x90, 0x91,
    0xf5, 0xd2, 0xb3, 0x9a, 0x91, 0x67, 0x74, 0x31, 0x68, 0x3a, 0x20, 0x32, 0x30, 0x30, 0x30, 0x0d,
    0x0a, 0x0d, 0x0a, 0x78, 0x05, 0x78, 0x03, 0xc8, 0x44, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x67, 0x20,
    0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d, 0x0a, 0x04, 0x0d, 0x04, 0x0a, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x4d, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x20, 0x32, 0x30, 0x30, 0x20, 0x4f, 0x4b,
    0x0d, 0x0a, 0x54, 0x72, 0x81, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72, 0x2d, 0x45, 0x6e, 0x63, 0x6f,
    0x64, 0x69, 0x6e, 0x67, 0x3a, 0x20, 0x63, 0x68, 0x75, 0x6e, 0x6b, 0x65, 0x64, 0x0d, 0x0a, 0x0d,
    0x0a, 0x31, 0x30, 0x30, 0x0d, 0x0d, 0x0a, 0x78, 0x78, 0x03, 0xfa, 0x69, 0x48, 0x54, 0x54, 0x50,
    0x2f, 0x31, 0x2e, 0x31, 0x20, 0x32, 0x30, 0x30, 0x20, 0x4f, 0x4b, 0x0d, 0x0a, 0x43, 0x6f, 0x6e,
    0x74, 0x65, 0x6e, 0x74, 0x2d, 0x4c, 0x29, 0x65, 0x6e, 0x67, 0x74,
};

static bool script_exchange_ok(const struct http1_exchange *ex)
{
	return memchr(ex->target, 0, sizeof(ex->target)) && ex->method[0] &&
	       (ex->status == 101 || (ex->status >= 200 && ex->status <= 999) ||
	        (ex->failed && ex->status == 0)) &&
	       ex->req_start_ns <= ex->req_end_ns && ex->resp_start_ns <= ex->resp_end_ns &&
	       ex->req_start_ns <= ex->resp_end_ns;
}

static void replay_script(const uint8_t *data, size_t size, bool bytewise, struct collected *out,
                          struct http1_stats *st)
{
	struct http1_parser *p = new_parser(out);
	uint64_t ts = 1;
	size_t at = 0;

	while (at < size) {
		uint8_t ctl = data[at++];
		size_t len = ctl >> 2, missing = 0;

		if (ctl == 0xff) {
			http1_parser_close(p, ts++, L7_END_CLOSE);
			continue;
		}
		if (ctl & 2) {
			uint8_t m = at < size ? data[at++] : 0;
			missing = m < 128 ? m : (size_t)(m - 127) * 997;
		}
		if (len == 63 || len > size - at)
			len = size - at;
		if (!bytewise || len <= 1) {
			feed_chunk(p, (enum stream_dir)(ctl & 1), (const char *)data + at, len,
			           missing, ts, ts + len);
		} else {
			for (size_t i = 0; i < len; i++)
				feed_chunk(p, (enum stream_dir)(ctl & 1),
				           (const char *)data + at + i, 1,
				           i + 1 == len ? missing : 0, ts, ts + len);
		}
		CHECK(http1_parser_memory(p) < 64 * 1024);
		ts += len + 1;
		at += len;
	}
	http1_parser_close(p, ts, L7_END_CLOSE);
	http1_parser_stats(p, st);
	http1_parser__free(p);
}

static void check_fuzz_case(const uint8_t *data, size_t size)
{
	struct collected *whole = malloc(sizeof(*whole)), *bytes = malloc(sizeof(*bytes));
	struct http1_stats st_whole, st_bytes;

	replay_script(data, size, false, whole, &st_whole);
	replay_script(data, size, true, bytes, &st_bytes);
	CHECK_EQ_INT(whole->n, bytes->n);
	CHECK_EQ_INT(st_whole.parse_errors, st_bytes.parse_errors);
	CHECK_EQ_INT(st_whole.unanswered, st_bytes.unanswered);
	CHECK_EQ_INT(st_whole.orphan_responses, st_bytes.orphan_responses);
	for (int i = 0; i < whole->n && i < bytes->n && i < MAX_EXCHANGES; i++) {
		CHECK(script_exchange_ok(&whole->ex[i]));
		CHECK_EQ_STR(whole->ex[i].target, bytes->ex[i].target);
		CHECK_EQ_INT(whole->ex[i].status, bytes->ex[i].status);
		CHECK_EQ_INT(whole->ex[i].resp_end_ns, bytes->ex[i].resp_end_ns);
		CHECK_EQ_INT(whole->ex[i].response_body_size, bytes->ex[i].response_body_size);
	}
	free(whole);
	free(bytes);
}

static void test_fuzz_regressions(void)
{
	check_fuzz_case(fuzz_case_0, sizeof(fuzz_case_0));
	check_fuzz_case(fuzz_case_1, sizeof(fuzz_case_1));
	check_fuzz_case(fuzz_case_2, sizeof(fuzz_case_2));
}

/* A response that began before any request was seen is not paired with a
 * request that arrives while it is still open. */
static void test_response_before_request(void)
{
	struct collected got;
	struct http1_parser *p = new_parser(&got);

	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Le", 1);
	feed_str(p, STREAM_DIR_REQUEST, "GET /late HTTP/1.1\r\n\r\n", 2);
	feed_str(p, STREAM_DIR_RESPONSE, "ngth: 2\r\n\r\nok", 3);
	CHECK_EQ_INT(got.n, 0);
	CHECK_EQ_INT(stats_of(p).orphan_responses, 1);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 4);
	CHECK_EQ_INT(got.n, 1);
	CHECK_EQ_STR(got.ex[0].target, "/late");
	CHECK_EQ_INT(got.ex[0].status, 202);
	http1_parser__free(p);
}

/* A malformed header line ends the message; the next start is looked for
 * after that line, however the line was split. */
static void test_bad_header_line(void)
{
	static const char req[] = "GET /one HTTP/1.1\r\nHost: a\r\nno colon here\r\nmore junk\r\n"
	                          "\r\nGET /two HTTP/1.1\r\nHost: b\r\n\r\n";
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
	                           "HTTP/1.1 201 OK\r\nContent-Length: 0\r\n\r\n";

	for (size_t cut = 0; cut < sizeof(req) - 1; cut++) {
		struct collected got;
		struct http1_parser *p = new_parser(&got);

		feed_chunk(p, STREAM_DIR_REQUEST, req, cut, 0, 1, 1);
		feed_chunk(p, STREAM_DIR_REQUEST, req + cut, sizeof(req) - 1 - cut, 0, 2, 2);
		feed_chunk(p, STREAM_DIR_RESPONSE, resp, sizeof(resp) - 1, 0, 3, 3);
		CHECK_EQ_INT(got.n, 2);
		CHECK_EQ_STR(got.ex[0].target, "/one");
		CHECK_EQ_STR(got.ex[0].host, "a");
		CHECK(got.ex[0].headers_truncated);
		CHECK_EQ_STR(got.ex[1].target, "/two");
		CHECK_EQ_STR(got.ex[1].host, "b");
		CHECK_EQ_INT(got.ex[1].status, 201);
		CHECK_EQ_INT(stats_of(p).parse_errors, 1);
		http1_parser__free(p);
	}
}

/* Header names of every length around the sixteen-byte steps of the name
 * scan, made of letters, digits and '-' or of the other tchars, with a byte
 * that is no tchar (or no colon) at every position: a valid name is parsed
 * (and recognised in any case), a malformed line ends the message. */
static void test_header_name_scan(void)
{
	static const char tchars[] = "aZ09-!#$%&'*+.^_`|~";
	static const char bad[] = {' ', '(', '@', '[', '{', '"', (char)0x80, (char)0xff, 0x7f, 1};

	for (size_t len = 1; len <= 40; len++) {
		for (size_t mode = 0; mode <= sizeof(bad); mode++) {
			/* mode 0: a valid name; else bad[mode - 1] at position (len - 1) */
			char req[256], name[64];
			struct collected got;
			struct http1_parser *p = new_parser(&got);
			int n;

			for (size_t i = 0; i < len; i++)
				name[i] = tchars[(i * 7 + len) % (sizeof(tchars) - 1)];
			if (mode)
				name[len - 1] = bad[mode - 1];
			name[len] = '\0';
			n = snprintf(
			    req, sizeof(req),
			    "GET /x HTTP/1.1\r\n%s: v\r\ntRANSFER-eNCODING: chunked\r\n\r\n"
			    "0\r\n\r\n",
			    name);
			feed_chunk(p, STREAM_DIR_REQUEST, req, (size_t)n, 0, 1, 1);
			feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 204 No Content\r\n\r\n", 2);
			CHECK_EQ_INT(got.n, 1);
			if (!mode || (len == 1 && bad[mode - 1] == ' ')) {
				/* valid; " : v" is a folded continuation line, ignored */
				CHECK(!got.ex[0].headers_truncated);
				CHECK_EQ_INT(stats_of(p).parse_errors, 0);
			} else {
				CHECK(got.ex[0].headers_truncated);
				CHECK(stats_of(p).parse_errors >= 1);
			}
			http1_parser__free(p);
		}
	}
}

/* The request hook fires once per request head, in order, with the request's
 * seq and headers, before the exchange completes; the exchange carries the
 * same seq. (trace_links decides span ids from it.) */
struct hooked {
	int n_req;
	uint64_t req_seq[8];
	char traceparent[8][HTTP1_TRACEPARENT_MAX];
	int exchanges_at_request[8];
	struct collected ex;
};

static void hook_request(void *ctx, const struct http1_exchange *req)
{
	struct hooked *h = ctx;

	if (h->n_req < 8) {
		h->req_seq[h->n_req] = req->seq;
		memcpy(h->traceparent[h->n_req], req->traceparent, HTTP1_TRACEPARENT_MAX);
		h->exchanges_at_request[h->n_req] = h->ex.n;
	}
	h->n_req++;
}

static void hook_exchange(void *ctx, const struct http1_exchange *ex)
{
	collect(&((struct hooked *)ctx)->ex, ex);
}

static void test_request_hook(void)
{
	static struct hooked h;
	struct http1_parser *p;

	memset(&h, 0, sizeof(h));
	p = http1_parser__new(hook_exchange, &h);
	http1_parser_set_request_fn(p, hook_request);
	feed_str(p, STREAM_DIR_REQUEST, "GET /a HTTP/1.1\r\nHost: x\r\ntrace", 1);
	CHECK_EQ_INT(h.n_req, 0); /* head not complete yet */
	feed_str(p, STREAM_DIR_REQUEST,
	         "parent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n", 2);
	CHECK_EQ_INT(h.n_req, 1);
	CHECK_EQ_STR(h.traceparent[0], "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
	feed_str(p, STREAM_DIR_REQUEST, "POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 3);
	CHECK_EQ_INT(h.n_req, 2);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4);
	feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 201 OK\r\nContent-Length: 0\r\n\r\n", 5);
	CHECK_EQ_INT(h.ex.n, 2);
	CHECK_EQ_INT((int)h.req_seq[0], 0);
	CHECK_EQ_INT((int)h.req_seq[1], 1);
	CHECK_EQ_INT((int)h.ex.ex[0].seq, 0);
	CHECK_EQ_INT((int)h.ex.ex[1].seq, 1);
	CHECK_EQ_INT(h.exchanges_at_request[0], 0);
	CHECK_EQ_INT(h.exchanges_at_request[1], 0);
	http1_parser__free(p);
}

int main(void)
{
	RUN(test_request_hook);
	RUN(test_header_name_scan);
	RUN(test_keepalive_all_splits);
	RUN(test_keepalive_interleaved);
	RUN(test_pipelining);
	RUN(test_close_delimited);
	RUN(test_unanswered_at_close);
	RUN(test_truncated_head_reports_request);
	RUN(test_failed_reset_and_timeout);
	RUN(test_pending_overflow);
	RUN(test_orphan_response);
	RUN(test_content_length_body_missing);
	RUN(test_chunked_body_missing);
	RUN(test_truncated_headers);
	RUN(test_garbage_before_request);
	RUN(test_random_garbage);
	RUN(test_huge_header_line);
	RUN(test_upgrade_tunnel);
	RUN(test_idle_memory);
	RUN(test_bad_arguments);
	RUN(test_detect);
	RUN(test_fuzz_regressions);
	RUN(test_response_before_request);
	RUN(test_bad_header_line);
	return unit_summary("test_http1");
}
