/* fuzz_http1.c — libFuzzer harness for the HTTP/1.x parser. The input is a
 * script of chunks: each starts with a control byte (direction, length, whether
 * a missing-bytes count follows; 0xff closes the connection). The script is run
 * twice, once as written and once with every chunk split into single bytes;
 * both runs must report the same exchanges and statistics, every exchange
 * must satisfy the parser's invariants and memory must stay bounded. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/http1.h"

#define MAX_RECORDED 256
#define MEMORY_LIMIT (64 * 1024)
#define IDLE_MEMORY  512

struct run {
	size_t n;
	struct http1_exchange *ex; /* MAX_RECORDED */
};

static bool nul_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static void check_exchange(const struct http1_exchange *ex)
{
	if (!nul_terminated(ex->method, sizeof(ex->method)) ||
	    !nul_terminated(ex->target, sizeof(ex->target)) ||
	    !nul_terminated(ex->host, sizeof(ex->host)) ||
	    !nul_terminated(ex->user_agent, sizeof(ex->user_agent)) ||
	    !nul_terminated(ex->traceparent, sizeof(ex->traceparent)) ||
	    !nul_terminated(ex->tracestate, sizeof(ex->tracestate)))
		abort();
	if (!ex->method[0] || ex->method[0] < 'A' || ex->method[0] > 'Z')
		abort();
	for (const char *m = ex->method; *m; m++)
		if (!((*m >= 'A' && *m <= 'Z') || *m == '-' || *m == '_'))
			abort();
	if (!ex->target[0] && !ex->headers_truncated)
		abort();
	if (ex->version_major != 1 || ex->version_minor > 9)
		abort();
	if (ex->failed ? ex->status != 0
	               : ex->status != 101 && (ex->status < 200 || ex->status > 999))
		abort();
	/* the script's timestamps are monotonic */
	if (ex->req_start_ns > ex->req_end_ns || ex->resp_start_ns > ex->resp_end_ns ||
	    ex->req_start_ns > ex->resp_end_ns)
		abort();
}

static void on_exchange(void *ctx, const struct http1_exchange *ex)
{
	struct run *r = ctx;

	if (r->n < MAX_RECORDED)
		r->ex[r->n] = *ex;
	r->n++;
	check_exchange(ex);
}

static bool same_exchange(const struct http1_exchange *a, const struct http1_exchange *b)
{
	return !strcmp(a->method, b->method) && !strcmp(a->target, b->target) &&
	       a->target_truncated == b->target_truncated && !strcmp(a->host, b->host) &&
	       !strcmp(a->user_agent, b->user_agent) && !strcmp(a->traceparent, b->traceparent) &&
	       !strcmp(a->tracestate, b->tracestate) && a->version_major == b->version_major &&
	       a->version_minor == b->version_minor && a->status == b->status &&
	       a->headers_truncated == b->headers_truncated &&
	       a->request_body_size == b->request_body_size &&
	       a->response_body_size == b->response_body_size &&
	       a->req_start_ns == b->req_start_ns && a->req_end_ns == b->req_end_ns &&
	       a->resp_start_ns == b->resp_start_ns && a->resp_end_ns == b->resp_end_ns;
}

static void feed_checked(struct http1_parser *p, enum stream_dir dir, const struct stream_chunk *c)
{
	http1_parser_feed(p, dir, c);
	if (http1_parser_memory(p) > MEMORY_LIMIT)
		abort();
}

/* Runs the script; bytewise: each chunk is fed one byte at a time (the
 * uncaptured count goes with the last byte, timestamps stay the chunk's). */
static void run_script(const uint8_t *data, size_t size, bool bytewise, struct run *out,
                       struct http1_stats *stats)
{
	struct http1_parser *p = http1_parser__new(on_exchange, out);
	uint64_t ts = 1;
	size_t at = 0;

	if (!p)
		abort();
	while (at < size) {
		uint8_t ctl = data[at++];
		struct stream_chunk c = {0};
		enum stream_dir dir = (enum stream_dir)(ctl & 1);
		size_t len = ctl >> 2;

		if (ctl == 0xff) {
			http1_parser_close(p, ts++, L7_END_CLOSE);
			if (http1_parser_memory(p) > IDLE_MEMORY)
				abort();
			continue;
		}
		if (ctl & 2) {
			uint8_t m = at < size ? data[at++] : 0;
			c.missing = m < 128 ? m : (size_t)(m - 127) * 997;
		}
		if (len == 63)
			len = size - at;
		if (len > size - at)
			len = size - at;
		c.data = data + at;
		c.len = len;
		c.ts_first_ns = ts;
		c.ts_last_ns = ts + len;
		ts += len + 1;
		at += len;
		if (!bytewise || len <= 1) {
			feed_checked(p, dir, &c);
			continue;
		}
		for (size_t i = 0; i < len; i++) {
			struct stream_chunk one = c;

			one.data = c.data + i;
			one.len = 1;
			one.missing = i + 1 == len ? c.missing : 0;
			feed_checked(p, dir, &one);
		}
	}
	http1_parser_close(p, ts, L7_END_CLOSE);
	if (http1_parser_memory(p) > IDLE_MEMORY)
		abort();
	http1_parser_stats(p, stats);
	if (stats->exchanges != out->n)
		abort();
	http1_parser__free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole = {0}, bytes = {0};
	struct http1_stats st_whole, st_bytes;

	whole.ex = malloc(MAX_RECORDED * sizeof(*whole.ex));
	bytes.ex = malloc(MAX_RECORDED * sizeof(*bytes.ex));
	if (!whole.ex || !bytes.ex)
		abort();
	run_script(data, size, false, &whole, &st_whole);
	run_script(data, size, true, &bytes, &st_bytes);
	if (whole.n != bytes.n || memcmp(&st_whole, &st_bytes, sizeof(st_whole)))
		abort();
	for (size_t i = 0; i < whole.n && i < MAX_RECORDED; i++)
		if (!same_exchange(&whole.ex[i], &bytes.ex[i]))
			abort();
	(void)http1_detect(data, size);
	free(whole.ex);
	free(bytes.ex);
	return 0;
}
