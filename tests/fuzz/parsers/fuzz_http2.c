/* fuzz_http2.c — libFuzzer harness for the HTTP/2 frame layer. The input is
 * a script of chunks: each starts with a control byte (bit 0 direction, bit 1
 * a missing-bytes count follows, bits 2-7 the length, 63 = the rest; 0xff
 * closes the connection). The script runs twice, as written and with every
 * chunk split into single bytes. Exchanges must satisfy the parser's
 * invariants and memory stays bounded; when neither run had to hunt for frame
 * boundaries (hunting depends on where chunks start) both runs must report
 * the same exchanges and statistics. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/http2.h"

#define MAX_RECORDED 64
#define MEMORY_LIMIT (HTTP2_STREAMS_MAX * (sizeof(struct http2_exchange) + 64) + 1536 * 1024)

struct run {
	size_t n, nreq;
	struct http2_exchange *ex; /* MAX_RECORDED */
};

static bool nul_terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static void check_exchange(const struct http2_exchange *ex)
{
	if (!nul_terminated(ex->method, sizeof(ex->method)) ||
	    !nul_terminated(ex->path, sizeof(ex->path)) ||
	    !nul_terminated(ex->authority, sizeof(ex->authority)) ||
	    !nul_terminated(ex->scheme, sizeof(ex->scheme)) ||
	    !nul_terminated(ex->content_type, sizeof(ex->content_type)) ||
	    !nul_terminated(ex->user_agent, sizeof(ex->user_agent)) ||
	    !nul_terminated(ex->traceparent, sizeof(ex->traceparent)) ||
	    !nul_terminated(ex->tracestate, sizeof(ex->tracestate)) ||
	    !nul_terminated(ex->te, sizeof(ex->te)) ||
	    !nul_terminated(ex->grpc_message, sizeof(ex->grpc_message)))
		abort();
	if (!ex->stream_id || ex->stream_id > 0x7fffffffu)
		abort();
	if (ex->status && (ex->status < 200 || ex->status > 999))
		abort();
	if (ex->grpc_status < -1 || ex->grpc_status > 999)
		abort();
	if (ex->end > HTTP2_END_CLOSE)
		abort();
	if (ex->trailers_only && ex->grpc_status < 0)
		abort();
	/* the script's timestamps are monotonic */
	if (ex->resp_start_ns > ex->resp_end_ns || ex->req_start_ns > ex->resp_end_ns)
		abort();
}

static void on_exchange(void *ctx, const struct http2_exchange *ex)
{
	struct run *r = ctx;

	check_exchange(ex);
	if (r->n < MAX_RECORDED)
		r->ex[r->n] = *ex;
	r->n++;
}

static void on_request(void *ctx, const struct http2_exchange *req)
{
	struct run *r = ctx;

	if (req->status || !req->stream_id)
		abort();
	r->nreq++;
}

static bool same_exchange(const struct http2_exchange *a, const struct http2_exchange *b)
{
	return a->stream_id == b->stream_id && !strcmp(a->method, b->method) &&
	       !strcmp(a->path, b->path) && !strcmp(a->authority, b->authority) &&
	       !strcmp(a->scheme, b->scheme) && !strcmp(a->content_type, b->content_type) &&
	       !strcmp(a->user_agent, b->user_agent) && !strcmp(a->traceparent, b->traceparent) &&
	       !strcmp(a->tracestate, b->tracestate) && !strcmp(a->te, b->te) &&
	       !strcmp(a->grpc_message, b->grpc_message) && a->status == b->status &&
	       a->grpc_status == b->grpc_status && a->trailers_only == b->trailers_only &&
	       a->unknown_headers == b->unknown_headers && a->end == b->end &&
	       a->error_code == b->error_code && a->request_complete == b->request_complete &&
	       a->request_body_size == b->request_body_size &&
	       a->response_body_size == b->response_body_size &&
	       a->req_start_ns == b->req_start_ns && a->req_end_ns == b->req_end_ns &&
	       a->resp_start_ns == b->resp_start_ns && a->resp_end_ns == b->resp_end_ns &&
	       a->seq == b->seq;
}

static void feed_checked(struct http2_conn *c, enum stream_dir dir, const struct stream_chunk *ch)
{
	http2_conn_feed(c, dir, ch);
	if (http2_conn_memory(c) > MEMORY_LIMIT)
		abort();
}

static void run_script(const uint8_t *data, size_t size, bool bytewise, struct run *out,
                       struct http2_stats *stats)
{
	struct http2_conn *c = http2_conn__new(on_exchange, out);
	uint64_t ts = 1;
	size_t at = 0;

	if (!c)
		abort();
	http2_conn_set_request_fn(c, on_request);
	while (at < size) {
		uint8_t ctl = data[at++];
		struct stream_chunk ch = {0};
		enum stream_dir dir = (enum stream_dir)(ctl & 1);
		size_t len = ctl >> 2;

		if (ctl == 0xff) {
			http2_conn_close(c, ts++);
			continue;
		}
		if (ctl & 2) {
			uint8_t m = at < size ? data[at++] : 0;
			ch.missing = m < 128 ? m : (size_t)(m - 127) * 997;
		}
		if (len == 63 || len > size - at)
			len = size - at;
		ch.data = data + at;
		ch.len = len;
		ch.ts_first_ns = ts;
		ch.ts_last_ns = ts + len;
		ts += len + 1;
		at += len;
		if (!bytewise || len <= 1) {
			feed_checked(c, dir, &ch);
			continue;
		}
		for (size_t i = 0; i < len; i++) {
			struct stream_chunk one = ch;

			one.data = ch.data + i;
			one.len = 1;
			one.missing = i + 1 == len ? ch.missing : 0;
			feed_checked(c, dir, &one);
		}
	}
	http2_conn_close(c, ts);
	http2_conn_stats(c, stats);
	if (stats->exchanges != out->n)
		abort();
	http2_conn__free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run whole = {0}, bytes = {0};
	struct http2_stats st_whole, st_bytes;

	whole.ex = malloc(MAX_RECORDED * sizeof(*whole.ex));
	bytes.ex = malloc(MAX_RECORDED * sizeof(*bytes.ex));
	if (!whole.ex || !bytes.ex)
		abort();
	run_script(data, size, false, &whole, &st_whole);
	run_script(data, size, true, &bytes, &st_bytes);
	if (!st_whole.resyncs && !st_bytes.resyncs && !st_whole.parse_errors &&
	    !st_bytes.parse_errors) {
		if (whole.n != bytes.n || whole.nreq != bytes.nreq ||
		    memcmp(&st_whole, &st_bytes, sizeof(st_whole)))
			abort();
		for (size_t i = 0; i < whole.n && i < MAX_RECORDED; i++)
			if (!same_exchange(&whole.ex[i], &bytes.ex[i]))
				abort();
	}
	(void)http2_detect(data, size);
	free(whole.ex);
	free(bytes.ex);
	return 0;
}
