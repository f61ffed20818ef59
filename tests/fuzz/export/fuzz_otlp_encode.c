/* fuzz_otlp_encode.c — builds spans and resources from fuzz bytes (random
 * strings, attribute types, corrupt attribute offsets), encodes them as OTLP,
 * decodes the result with protobuf-c and checks it matches; also round-trips
 * the bytes through otlp_gzip/otlp_gunzip and feeds raw input to gunzip. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.pb-c.h"
#include "export/otlp_encode.h"
#include "telemetry/resource.h"
#include "telemetry/span.h"

#define MAX_SPANS     6
#define MAX_RESOURCES 3

struct fuzz_input {
	const uint8_t *p;
	size_t left;
};

static uint8_t take_byte(struct fuzz_input *in)
{
	uint8_t b;

	if (in->left == 0)
		return 0;
	b = *in->p++;
	in->left--;
	return b;
}

/* A NUL-terminated string of up to max-1 fuzz bytes (NULs become 'x'). */
static void take_string(struct fuzz_input *in, char *out, size_t max)
{
	size_t len = take_byte(in);

	if (len > max - 1)
		len = max - 1;
	if (len > in->left)
		len = in->left;
	for (size_t i = 0; i < len; i++)
		out[i] = in->p[i] ? (char)in->p[i] : 'x';
	out[len] = '\0';
	in->p += len;
	in->left -= len;
}

static uint64_t take_u64(struct fuzz_input *in)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | take_byte(in);
	return v;
}

static const char *const KEYS[] = {"http.request.method", "url.path",    "db.system",
                                   "k\xff\xfe",           "server.port", ""};

static void build_span(struct fuzz_input *in, struct span *s, struct resource **res)
{
	char value[300];
	uint8_t n_attrs;

	span_init(s);
	for (size_t i = 0; i < 16; i++)
		s->trace_id[i] = take_byte(in);
	for (size_t i = 0; i < 8; i++)
		s->span_id[i] = take_byte(in);
	if (take_byte(in) & 1)
		for (size_t i = 0; i < 8; i++)
			s->parent_span_id[i] = take_byte(in);
	s->kind = take_byte(in);
	s->status = take_byte(in);
	s->sampled = take_byte(in) & 1;
	s->start_unix_ns = take_u64(in);
	s->end_unix_ns = take_u64(in);
	take_string(in, s->name, sizeof(s->name));
	take_string(in, s->status_message, sizeof(s->status_message));
	take_string(in, s->trace_state, sizeof(s->trace_state));
	{
		uint8_t which = take_byte(in) % (MAX_RESOURCES + 1);

		s->resource = which < MAX_RESOURCES ? resource_ref(res[which]) : NULL;
	}
	n_attrs = take_byte(in) % (SPAN_MAX_ATTRS + 4);
	for (uint8_t a = 0; a < n_attrs && in->left > 0; a++) {
		uint8_t type = take_byte(in);
		const char *key = KEYS[type % (sizeof(KEYS) / sizeof(KEYS[0]))];

		switch (type & 3) {
		case 0:
			take_string(in, value, sizeof(value));
			span_set_str(s, key, value);
			break;
		case 1:
			span_set_int(s, key, (int64_t)take_u64(in));
			break;
		case 2:
			span_set_bool(s, key, take_byte(in) & 1);
			break;
		default: {
			uint64_t bits = take_u64(in);
			double d;

			memcpy(&d, &bits, sizeof(d));
			span_set_double(s, key, d);
			break;
		}
		}
	}
	/* occasionally corrupt an attribute the way a bug elsewhere might */
	if (s->n_attrs > 0 && (take_byte(in) & 7) == 0) {
		struct span_attr *at = &s->attrs[take_byte(in) % s->n_attrs];

		at->off = (uint16_t)take_u64(in);
		at->len = (uint16_t)take_u64(in);
		at->type = take_byte(in) % 6;
	}
}

static size_t count_spans(const Periscope__Otlp__ExportTraceServiceRequest *req)
{
	size_t total = 0;

	for (size_t r = 0; r < req->n_resource_spans; r++)
		for (size_t k = 0; k < req->resource_spans[r]->n_scope_spans; k++)
			total += req->resource_spans[r]->scope_spans[k]->n_spans;
	return total;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_input in = {data, size};
	struct resource *res[MAX_RESOURCES] = {0};
	struct span *spans = calloc(MAX_SPANS, sizeof(*spans));
	const struct span *ptrs[MAX_SPANS];
	size_t n_spans = 0, len = 0, gz_len = 0, back_len = 0;
	uint8_t *buf = NULL, *gz = NULL, *back = NULL;
	Periscope__Otlp__ExportTraceServiceRequest *req;
	char str[64];

	if (!spans)
		return 0;
	/* raw input straight into the decompressor: must fail cleanly or succeed */
	if (otlp_gunzip(data, size, 1 << 16, &back, &back_len) == 0)
		free(back);
	back = NULL;

	for (size_t r = 0; r < MAX_RESOURCES; r++) {
		uint8_t n_attrs = take_byte(&in) % 5;

		res[r] = resource__new(take_byte(&in), 0);
		if (!res[r])
			goto cleanup;
		for (uint8_t a = 0; a < n_attrs; a++) {
			take_string(&in, str, sizeof(str));
			if (take_byte(&in) & 1)
				resource_add_str(res[r], a == 0 ? "service.name" : "k\xc3", str);
			else
				resource_add_int(res[r], str, (int64_t)take_u64(&in));
		}
	}
	n_spans = 1 + take_byte(&in) % MAX_SPANS;
	for (size_t i = 0; i < n_spans; i++) {
		build_span(&in, &spans[i], res);
		ptrs[i] = &spans[i];
	}

	assert(otlp_encode_traces(ptrs, n_spans, &buf, &len) == 0);
	req = periscope__otlp__export_trace_service_request__unpack(NULL, len, buf);
	assert(req != NULL);
	assert(count_spans(req) == n_spans);
	{
		/* spans keep their order within their resource; check the first */
		const Periscope__Otlp__Span *first =
		    req->resource_spans[0]->scope_spans[0]->spans[0];

		assert(memcmp(first->span_id.data, spans[0].span_id, 8) == 0);
		assert(strlen(first->name) == strlen(spans[0].name));
		assert(first->start_time_unix_nano == spans[0].start_unix_ns);
	}
	periscope__otlp__export_trace_service_request__free_unpacked(req, NULL);

	assert(otlp_gzip(buf, len, &gz, &gz_len) == 0);
	assert(otlp_gunzip(gz, gz_len, len, &back, &back_len) == 0);
	assert(back_len == len && memcmp(back, buf, len) == 0);

cleanup:
	free(buf);
	free(gz);
	free(back);
	for (size_t i = 0; i < n_spans; i++)
		span_release(&spans[i]);
	for (size_t r = 0; r < MAX_RESOURCES; r++)
		resource_unref(res[r]);
	free(spans);
	return 0;
}
