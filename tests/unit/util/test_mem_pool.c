/* test_mem_pool.c — the block freelist: blocks of the pool's size are reused
 * up to its bound, other sizes and a NULL pool go to malloc, and an HTTP/1
 * parser drawing its queued requests from a pool gives the same exchanges. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "parsers/http1.h"
#include "util/mem_pool.h"
#include "unit.h"

static void test_reuse_and_bound(void)
{
	struct mem_pool *p = mem_pool__new(100, 2);
	size_t idle = mem_pool_memory(p);
	void *a, *b, *c, *d;

	CHECK(p != NULL);
	a = mem_pool_get(p, 100);
	b = mem_pool_get(p, 100);
	c = mem_pool_get(p, 100);
	CHECK(a && b && c);
	memset(a, 0xab, 100);
	CHECK_EQ_INT(mem_pool_memory(p), idle); /* nothing kept yet */
	mem_pool_put(p, a, 100);
	mem_pool_put(p, b, 100);
	mem_pool_put(p, c, 100); /* beyond the bound: freed */
	CHECK_EQ_INT(mem_pool_memory(p), idle + 200);
	d = mem_pool_get(p, 100);
	CHECK(d == b); /* the last one kept comes back first */
	mem_pool_put(p, d, 100);
	mem_pool__free(p); /* frees the two kept blocks (asan checks) */
}

static void test_other_sizes_and_null(void)
{
	struct mem_pool *p = mem_pool__new(64, 4);
	size_t idle = mem_pool_memory(p);
	void *x = mem_pool_get(p, 200), *y = mem_pool_get(NULL, 64);

	CHECK(x && y);
	mem_pool_put(p, x, 200);   /* not the pool's size: freed */
	mem_pool_put(NULL, y, 64); /* no pool: freed */
	mem_pool_put(p, NULL, 64); /* nothing */
	CHECK_EQ_INT(mem_pool_memory(p), idle);
	x = mem_pool_get(p, 64);
	mem_pool_put(p, x, 64);
	CHECK_EQ_INT(mem_pool_memory(p), idle + 64);
	mem_pool__free(p);
	mem_pool__free(NULL);
}

struct seen {
	int n;
	char targets[8][16];
	int status[8];
};

static void on_exchange(void *ctx, const struct http1_exchange *ex)
{
	struct seen *s = ctx;

	if (s->n < 8) {
		snprintf(s->targets[s->n], sizeof(s->targets[0]), "%s", ex->target);
		s->status[s->n] = ex->status;
	}
	s->n++;
}

static void feed(struct http1_parser *p, enum stream_dir dir, const char *s, uint64_t ts)
{
	struct stream_chunk c = {
	    .data = (const uint8_t *)s, .len = strlen(s), .ts_first_ns = ts, .ts_last_ns = ts};

	CHECK_EQ_INT(http1_parser_feed(p, dir, &c), 0);
}

static void test_http1_with_pool(void)
{
	size_t block = http1_request_block_size();
	struct mem_pool *pool = mem_pool__new(block, 4);
	size_t idle = mem_pool_memory(pool);
	struct seen s = {0};
	struct http1_parser *p = http1_parser__new(on_exchange, &s);
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

	http1_parser_set_pool(p, pool);
	for (int round = 0; round < 3; round++) {
		/* two pipelined requests, then their answers */
		feed(p, STREAM_DIR_REQUEST,
		     "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\n\r\n", 10 + round);
		feed(p, STREAM_DIR_RESPONSE, resp, 20 + round);
		feed(p, STREAM_DIR_RESPONSE, resp, 30 + round);
	}
	CHECK_EQ_INT(s.n, 6);
	for (int i = 0; i < 6; i++) {
		CHECK_EQ_STR(s.targets[i], i % 2 ? "/b" : "/a");
		CHECK_EQ_INT(s.status[i], 200);
	}
	/* the two blocks went back to the pool and came out of it again */
	CHECK_EQ_INT(mem_pool_memory(pool), idle + 2 * block);
	feed(p, STREAM_DIR_REQUEST, "GET /c HTTP/1.1\r\n\r\n", 40);
	CHECK_EQ_INT(mem_pool_memory(pool), idle + block);
	http1_parser__free(p); /* the queued request goes back to the pool */
	CHECK_EQ_INT(mem_pool_memory(pool), idle + 2 * block);
	mem_pool__free(pool);
}

int main(void)
{
	RUN(test_reuse_and_bound);
	RUN(test_other_sizes_and_null);
	RUN(test_http1_with_pool);
	return unit_summary("test_mem_pool");
}
