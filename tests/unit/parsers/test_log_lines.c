/* test_log_lines.c — stdout/stderr writes into records: writes cut at every
 * boundary, CRLF, binary garbage, a 10 MB line, incomplete lines flushed by
 * time, uncaptured tails, stack traces grouped (Python, Java, Node, Go). */
#include <stdlib.h>
#include <string.h>

#include "parsers/log_lines.h"
#include "unit.h"

#define MAX_RECS 64

struct got {
	size_t n;
	char text[MAX_RECS][512];
	size_t len[MAX_RECS];
	uint32_t lines[MAX_RECS];
	bool trunc[MAX_RECS];
	uint8_t tag0[MAX_RECS];
	uint64_t ts[MAX_RECS];
	int32_t fd[MAX_RECS];
};

static void on_rec(void *ctx, const struct log_text *r)
{
	struct got *g = ctx;

	if (g->n >= MAX_RECS)
		return;
	size_t n = r->len < 511 ? r->len : 511;
	memcpy(g->text[g->n], r->text, n);
	g->text[g->n][n] = '\0';
	g->len[g->n] = r->len;
	g->lines[g->n] = r->lines;
	g->trunc[g->n] = r->truncated;
	g->tag0[g->n] = r->tag->b[0];
	g->ts[g->n] = r->ts_ns;
	g->fd[g->n] = r->fd;
	g->n++;
}

static struct log_tag tag_of(uint8_t v)
{
	struct log_tag t;

	memset(&t, v, sizeof(t));
	return t;
}

static void feed_str(struct log_lines *ll, int fd, uint64_t ts, uint8_t tag, const char *s)
{
	struct log_tag t = tag_of(tag);

	log_lines_feed(ll, 42, fd, ts, &t, (const uint8_t *)s, strlen(s), strlen(s));
}

static void test_simple_lines(void)
{
	struct got g = {0};
	struct log_lines *ll = log_lines__new(NULL, on_rec, &g);

	feed_str(ll, 1, 10, 1, "hello\nworld\n");
	CHECK_EQ_INT(g.n, 2);
	CHECK_EQ_STR(g.text[0], "hello");
	CHECK_EQ_STR(g.text[1], "world");
	CHECK_EQ_INT(g.lines[0], 1);
	CHECK(!g.trunc[0]);
	CHECK_EQ_INT(g.tag0[1], 1);
	feed_str(ll, 2, 11, 2, "\n\n   \n"); /* blank lines make nothing */
	CHECK_EQ_INT(g.n, 2);
	log_lines__free(ll);
}

static void test_crlf(void)
{
	struct got g = {0};
	struct log_lines *ll = log_lines__new(NULL, on_rec, &g);

	feed_str(ll, 1, 10, 1, "a\r\nb\r");
	feed_str(ll, 1, 11, 1, "\nc\n");
	CHECK_EQ_INT(g.n, 3);
	CHECK_EQ_STR(g.text[0], "a");
	CHECK_EQ_STR(g.text[1], "b");
	CHECK_EQ_STR(g.text[2], "c");
	log_lines__free(ll);
}

/* The same text cut into two writes at every position gives the same records,
 * with the tag and time of the write that started each. */
static void test_every_boundary(void)
{
	const char *text = "first line\nsecond\r\nERROR: boom\n    at f (x.js:1:2)\nlast\n";
	size_t n = strlen(text);

	for (size_t cut = 0; cut <= n; cut++) {
		struct got g = {0};
		struct log_lines *ll = log_lines__new(NULL, on_rec, &g);
		struct log_tag t1 = tag_of(1), t2 = tag_of(2);

		log_lines_feed(ll, 7, 1, 100, &t1, (const uint8_t *)text, cut, cut);
		log_lines_feed(ll, 7, 1, 200, &t2, (const uint8_t *)text + cut, n - cut, n - cut);
		log_lines_flush_all(ll);
		CHECK_EQ_INT(g.n, 4);
		CHECK_EQ_STR(g.text[0], "first line");
		CHECK_EQ_STR(g.text[1], "second");
		CHECK_EQ_STR(g.text[2], "ERROR: boom\n    at f (x.js:1:2)");
		CHECK_EQ_INT(g.lines[2], 2);
		CHECK_EQ_STR(g.text[3], "last");
		CHECK_EQ_INT(g.tag0[0], cut > 0 ? 1 : 2);
		CHECK_EQ_INT(g.tag0[3], cut > n - 5 ? 1 : 2);
		log_lines__free(ll);
	}
}

static void test_bytewise(void)
{
	const char *text = "one\ntwo\r\nthree\n";
	struct got g = {0};
	struct log_lines *ll = log_lines__new(NULL, on_rec, &g);
	struct log_tag t = tag_of(3);

	for (size_t i = 0; text[i]; i++)
		log_lines_feed(ll, 1, 2, i, &t, (const uint8_t *)text + i, 1, 1);
	CHECK_EQ_INT(g.n, 3);
	CHECK_EQ_STR(g.text[1], "two");
	CHECK_EQ_INT(g.ts[1], 4);
	log_lines__free(ll);
}

static void test_streams_apart(void)
{
	struct got g = {0};
	struct log_lines *ll = log_lines__new(NULL, on_rec, &g);

	feed_str(ll, 1, 1, 1, "out-");
	feed_str(ll, 2, 2, 2, "err-");
	feed_str(ll, 1, 3, 1, "1\n");
	feed_str(ll, 2, 4, 2, "2\n");
	CHECK_EQ_INT(g.n, 2);
	CHECK_EQ_STR(g.text[0], "out-1");
	CHECK_EQ_INT(g.fd[0], 1);
	CHECK_EQ_STR(g.text[1], "err-2");
	CHECK_EQ_INT(g.fd[1], 2);
	log_lines__free(ll);
}

static void test_incomplete_flushed_by_time(void)
{
	struct log_lines_config cfg = {.flush_after_ns = 100};
	struct got g = {0};
	struct log_lines *ll = log_lines__new(&cfg, on_rec, &g);

	feed_str(ll, 1, 1000, 1, "no newline yet");
	log_lines_tick(ll, 1050);
	CHECK_EQ_INT(g.n, 0);
	log_lines_tick(ll, 1200);
	CHECK_EQ_INT(g.n, 1);
	CHECK_EQ_STR(g.text[0], "no newline yet");
	CHECK_EQ_INT(log_lines_memory(ll) <= 8192, 1);
	log_lines__free(ll);
}

static void test_long_line(void)
{
	struct log_lines_config cfg = {.max_record = 1000};
	struct got g = {0};
	struct log_lines *ll = log_lines__new(&cfg, on_rec, &g);
	size_t total = 10u << 20, chunk = 4096;
	uint8_t *buf = malloc(chunk);
	struct log_tag t = tag_of(5);

	memset(buf, 'x', chunk);
	for (size_t done = 0; done < total; done += chunk) {
		log_lines_feed(ll, 9, 1, done, &t, buf, chunk, chunk);
		CHECK(log_lines_memory(ll) <= 2 * cfg.max_record);
	}
	CHECK_EQ_INT(g.n, 0);
	log_lines_feed(ll, 9, 1, total, &t, (const uint8_t *)"yz\nnext\n", 8, 8);
	CHECK_EQ_INT(g.n, 2);
	CHECK_EQ_INT(g.len[0], 1000);
	CHECK(g.trunc[0]);
	CHECK_EQ_STR(g.text[1], "next");
	CHECK(!g.trunc[1]);
	/* a long line inside one write */
	memset(buf, 'y', chunk);
	buf[chunk - 1] = '\n';
	log_lines_feed(ll, 9, 1, 1, &t, buf, chunk, chunk);
	CHECK_EQ_INT(g.n, 3);
	CHECK_EQ_INT(g.len[2], 1000);
	CHECK(g.trunc[2]);
	free(buf);
	log_lines__free(ll);
}

static void test_uncaptured_tail(void)
{
	struct got g = {0};
	struct log_lines *ll = log_lines__new(NULL, on_rec, &g);
	struct log_tag t = tag_of(1);

	log_lines_feed(ll, 1, 1, 1, &t, (const uint8_t *)"full\npartial", 12, 5000);
	CHECK_EQ_INT(g.n, 2);
	CHECK_EQ_STR(g.text[1], "partial");
	CHECK(g.trunc[1]);
	feed_str(ll, 1, 2, 1, "fresh\n");
	CHECK_EQ_STR(g.text[2], "fresh");
	log_lines__free(ll);
}

static void test_binary_garbage(void)
{
	struct got g = {0};
	struct log_lines *ll = log_lines__new(NULL, on_rec, &g);
	struct log_tag t = tag_of(1);
	uint8_t junk[300];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	log_lines_feed(ll, 1, 1, 1, &t, junk, sizeof(junk), sizeof(junk));
	log_lines_flush_all(ll);
	size_t total = 0;
	for (size_t i = 0; i < g.n; i++)
		total += g.len[i] + 1;
	CHECK(g.n >= 1);
	CHECK(total <= sizeof(junk) + 1);
	log_lines__free(ll);
}

static void test_python_traceback(void)
{
	struct got g = {0};
	struct log_lines *ll = log_lines__new(NULL, on_rec, &g);

	feed_str(ll, 2, 1, 1,
	         "ERROR:root:request failed\nTraceback (most recent call last):\n"
	         "  File \"app.py\", line 3, in handler\n    1 / 0\n"
	         "ZeroDivisionError: division by zero\nINFO:next\n");
	CHECK_EQ_INT(g.n, 2);
	CHECK_EQ_INT(g.lines[0], 5);
	CHECK(strstr(g.text[0], "ERROR:root:request failed\nTraceback") == g.text[0]);
	CHECK(strstr(g.text[0], "ZeroDivisionError: division by zero") != NULL);
	CHECK_EQ_STR(g.text[1], "INFO:next");
	/* a bare traceback, one line per write */
	feed_str(ll, 2, 2, 7, "Traceback (most recent call last):\n");
	feed_str(ll, 2, 3, 8, "  File \"x.py\", line 1, in <module>\n");
	feed_str(ll, 2, 4, 8, "ValueError: bad\n");
	CHECK_EQ_INT(g.n, 3);
	CHECK_EQ_INT(g.lines[2], 3);
	CHECK_EQ_INT(g.tag0[2], 7);
	log_lines__free(ll);
}

static void test_java_and_node(void)
{
	struct got g = {0};
	struct log_lines *ll = log_lines__new(NULL, on_rec, &g);

	feed_str(ll, 2, 1, 1, "java.lang.IllegalStateException: nope\n");
	feed_str(ll, 2, 2, 1, "\tat com.shop.Orders.get(Orders.java:42)\n");
	feed_str(ll, 2, 3, 1, "\tat com.shop.Main.main(Main.java:7)\n");
	feed_str(ll, 2, 4, 1, "Caused by: java.io.IOException: disk\n");
	feed_str(ll, 2, 5, 1, "\t... 2 more\n");
	feed_str(ll, 2, 6, 1, "GET /next 200\n");
	CHECK_EQ_INT(g.n, 2);
	CHECK_EQ_INT(g.lines[0], 5);
	CHECK_EQ_STR(g.text[1], "GET /next 200");
	feed_str(ll, 2, 7, 1, "Error: boom\n    at Server.<anonymous> (/srv/server.js:5:11)\n");
	log_lines_flush_all(ll);
	CHECK_EQ_INT(g.n, 3);
	CHECK_EQ_INT(g.lines[2], 2);
	/* an error line with nothing after it stands alone */
	feed_str(ll, 1, 8, 1, "ERROR could not connect\nINFO retrying\n");
	CHECK_EQ_INT(g.n, 5);
	CHECK_EQ_STR(g.text[3], "ERROR could not connect");
	log_lines__free(ll);
}

static void test_go_panic(void)
{
	struct got g = {0};
	struct log_lines *ll = log_lines__new(NULL, on_rec, &g);

	feed_str(ll, 2, 1, 1, "panic: runtime error: index out of range\n\n");
	feed_str(ll, 2, 2, 1, "goroutine 1 [running]:\nmain.main()\n\t/tmp/x.go:5 +0x1d\n\n");
	feed_str(ll, 2, 3, 1, "goroutine 7 [chan receive]:\nmain.worker()\n\t/tmp/x.go:9 +0x2\n");
	feed_str(ll, 2, 4, 1, "\nexit status 2\n");
	CHECK_EQ_INT(g.n, 2);
	CHECK_EQ_INT(g.lines[0], 9);
	CHECK(strstr(g.text[0], "\n\ngoroutine 7 [chan receive]:") != NULL);
	CHECK_EQ_STR(g.text[1], "exit status 2");
	log_lines__free(ll);
}

static void test_no_grouping_and_pid_flush(void)
{
	struct log_lines_config cfg = {.no_grouping = true};
	struct got g = {0};
	struct log_lines *ll = log_lines__new(&cfg, on_rec, &g);

	feed_str(ll, 2, 1, 1, "Error: x\n    at y\npartial");
	CHECK_EQ_INT(g.n, 2);
	log_lines_flush_pid(ll, 42);
	CHECK_EQ_INT(g.n, 3);
	CHECK_EQ_STR(g.text[2], "partial");
	log_lines__free(ll);
}

static void test_many_streams_evicted(void)
{
	struct log_lines_config cfg = {.max_streams = 32};
	struct got g = {0};
	struct log_lines *ll = log_lines__new(&cfg, on_rec, &g);
	struct log_tag t = tag_of(1);
	struct log_lines_stats st;

	for (uint32_t pid = 1; pid <= 200; pid++)
		log_lines_feed(ll, pid, 1, pid, &t, (const uint8_t *)"x", 1, 1);
	log_lines_flush_all(ll);
	CHECK_EQ_INT(g.n, MAX_RECS < 200 ? MAX_RECS : 200);
	log_lines_get_stats(ll, &st);
	CHECK_EQ_INT(st.records, 200);
	CHECK(st.evicted >= 168);
	log_lines__free(ll);
}

int main(void)
{
	RUN(test_simple_lines);
	RUN(test_crlf);
	RUN(test_every_boundary);
	RUN(test_bytewise);
	RUN(test_streams_apart);
	RUN(test_incomplete_flushed_by_time);
	RUN(test_long_line);
	RUN(test_uncaptured_tail);
	RUN(test_binary_garbage);
	RUN(test_python_traceback);
	RUN(test_java_and_node);
	RUN(test_go_panic);
	RUN(test_no_grouping_and_pid_flush);
	RUN(test_many_streams_evicted);
	return unit_summary("test_log_lines");
}
