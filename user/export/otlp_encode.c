/* otlp_encode.c — encodes spans as an OTLP ExportTraceServiceRequest with
 * protobuf-c, and gzips request bodies with zlib.
 *
 * All protobuf-c structs of one request live in a single arena sized in a
 * first pass; strings point straight into the spans and resources (only
 * strings that are not valid UTF-8 are copied, with bad bytes replaced). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "otlp.pb-c.h"
#include "export/otlp_encode.h"
#include "telemetry/resource.h"
#include "telemetry/span.h"

#ifndef PERISCOPE_VERSION
#define PERISCOPE_VERSION "0.1.0"
#endif

#define ARENA_ALIGN 16
#define ALIGN_UP(x) (((x) + (ARENA_ALIGN - 1)) & ~(size_t)(ARENA_ALIGN - 1))

typedef Periscope__Otlp__AnyValue AnyValue;
typedef Periscope__Otlp__KeyValue KeyValue;
typedef Periscope__Otlp__Resource Resource;
typedef Periscope__Otlp__ResourceSpans ResourceSpans;
typedef Periscope__Otlp__ScopeSpans ScopeSpans;
typedef Periscope__Otlp__InstrumentationScope Scope;
typedef Periscope__Otlp__Span PbSpan;
typedef Periscope__Otlp__Status PbStatus;
typedef Periscope__Otlp__ExportTraceServiceRequest TraceRequest;

const char *otlp_scope_version(void)
{
	return PERISCOPE_VERSION;
}

/* A bump allocator over one zeroed block. */
struct pb_arena {
	uint8_t *base;
	size_t used;
	size_t cap;
};

static void *arena_take(struct pb_arena *a, size_t size)
{
	size_t need = ALIGN_UP(size);
	void *p;

	if (need > a->cap - a->used)
		return NULL; /* the sizing pass guarantees this does not happen */
	p = a->base + a->used;
	a->used += need;
	return p;
}

/* Length of the longest valid UTF-8 prefix of s[0..len). */
static size_t utf8_valid_prefix(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (n > len - i - 1)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		/* overlong, surrogate or beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return i;
}

static bool utf8_valid(const char *s)
{
	size_t len = strlen(s);

	return utf8_valid_prefix((const uint8_t *)s, len) == len;
}

/* Arena bytes a copy of s needs if it must be sanitized, else 0. */
static size_t sanitize_need(const char *s)
{
	return utf8_valid(s) ? 0 : ALIGN_UP(strlen(s) + 1);
}

/* s itself when valid UTF-8, else an arena copy with each bad byte as '?'. */
static char *pb_string(struct pb_arena *a, const char *s)
{
	size_t len = strlen(s), i = 0;
	char *copy;

	if (utf8_valid_prefix((const uint8_t *)s, len) == len)
		return (char *)s;
	copy = arena_take(a, len + 1);
	if (!copy)
		return (char *)"";
	memcpy(copy, s, len + 1);
	while (i < len) {
		i += utf8_valid_prefix((const uint8_t *)copy + i, len - i);
		if (i < len)
			copy[i++] = '?';
	}
	return copy;
}

static bool terminated(const char *field, size_t size)
{
	return memchr(field, '\0', size) != NULL;
}

/* The string value of a span attribute, or NULL when its offset/length do
 * not describe a NUL-terminated string inside the arena. */
static const char *span_attr_string(const struct span *s, const struct span_attr *at)
{
	if ((size_t)at->off + at->len >= SPAN_ARENA_SIZE)
		return NULL;
	if (s->arena[at->off + at->len] != '\0')
		return NULL;
	return s->arena + at->off;
}

static size_t span_attr_count(const struct span *s)
{
	return s->n_attrs < SPAN_MAX_ATTRS ? s->n_attrs : SPAN_MAX_ATTRS;
}

static bool attr_usable(const struct span *s, const struct span_attr *at)
{
	if (!at->key)
		return false;
	switch (at->type) {
	case SPAN_ATTR_STR:
		return span_attr_string(s, at) != NULL;
	case SPAN_ATTR_INT:
	case SPAN_ATTR_BOOL:
	case SPAN_ATTR_DOUBLE:
		return true;
	default:
		return false;
	}
}

static size_t span_arena_need(const struct span *s)
{
	size_t n = span_attr_count(s), need = 0;

	need += ALIGN_UP(sizeof(PbSpan)) + ALIGN_UP(sizeof(PbStatus));
	need += ALIGN_UP(n * sizeof(KeyValue)) + ALIGN_UP(n * sizeof(AnyValue)) +
	        ALIGN_UP(n * sizeof(KeyValue *));
	need += sanitize_need(s->name) + sanitize_need(s->status_message) +
	        sanitize_need(s->trace_state);
	for (size_t i = 0; i < n; i++) {
		const struct span_attr *at = &s->attrs[i];

		if (!attr_usable(s, at))
			continue;
		need += sanitize_need(at->key);
		if (at->type == SPAN_ATTR_STR)
			need += sanitize_need(span_attr_string(s, at));
	}
	return need;
}

static size_t resource_arena_need(const struct resource *r)
{
	size_t n = r ? r->n_attrs : 0, need = 0;

	need += ALIGN_UP(sizeof(ResourceSpans)) + ALIGN_UP(sizeof(Resource)) +
	        ALIGN_UP(sizeof(ScopeSpans)) + ALIGN_UP(sizeof(ScopeSpans *));
	need += ALIGN_UP(n * sizeof(KeyValue)) + ALIGN_UP(n * sizeof(AnyValue)) +
	        ALIGN_UP(n * sizeof(KeyValue *));
	for (size_t i = 0; i < n; i++) {
		if (r->attrs[i].key)
			need += sanitize_need(r->attrs[i].key);
		if (r->attrs[i].str)
			need += sanitize_need(r->attrs[i].str);
	}
	return need;
}

/* One ResourceSpans under construction. */
struct span_group {
	const struct resource *resource;
	size_t n_spans;
	ResourceSpans *rs;
	ScopeSpans *ss;
};

static void build_resource(struct pb_arena *a, struct span_group *g, Scope *scope)
{
	const struct resource *r = g->resource;
	size_t n = r ? r->n_attrs : 0, used = 0;
	Resource *res = arena_take(a, sizeof(*res));
	KeyValue *kvs = arena_take(a, n * sizeof(*kvs));
	AnyValue *vals = arena_take(a, n * sizeof(*vals));
	KeyValue **kvp = arena_take(a, n * sizeof(*kvp));
	ScopeSpans **ssp = arena_take(a, sizeof(*ssp));

	g->rs = arena_take(a, sizeof(*g->rs));
	g->ss = arena_take(a, sizeof(*g->ss));
	periscope__otlp__resource_spans__init(g->rs);
	periscope__otlp__resource__init(res);
	periscope__otlp__scope_spans__init(g->ss);
	for (size_t i = 0; i < n; i++) {
		const struct resource_attr *ra = &r->attrs[i];

		if (!ra->key)
			continue;
		periscope__otlp__key_value__init(&kvs[used]);
		periscope__otlp__any_value__init(&vals[used]);
		kvs[used].key = pb_string(a, ra->key);
		kvs[used].value = &vals[used];
		if (ra->str) {
			vals[used].value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
			vals[used].string_value = pb_string(a, ra->str);
		} else {
			vals[used].value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_INT_VALUE;
			vals[used].int_value = ra->num;
		}
		kvp[used] = &kvs[used];
		used++;
	}
	res->n_attributes = used;
	res->attributes = kvp;
	g->rs->resource = res;
	g->ss->scope = scope;
	g->ss->n_spans = 0; /* filled as spans are added */
	ssp[0] = g->ss;
	g->rs->n_scope_spans = 1;
	g->rs->scope_spans = ssp;
}

static void build_attr(struct pb_arena *a, const struct span *s, const struct span_attr *at,
                       KeyValue *kv, AnyValue *val)
{
	periscope__otlp__key_value__init(kv);
	periscope__otlp__any_value__init(val);
	kv->key = pb_string(a, at->key);
	kv->value = val;
	switch (at->type) {
	case SPAN_ATTR_STR:
		val->value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
		val->string_value = pb_string(a, span_attr_string(s, at));
		break;
	case SPAN_ATTR_INT:
		val->value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_INT_VALUE;
		val->int_value = at->i;
		break;
	case SPAN_ATTR_BOOL:
		val->value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
		val->bool_value = at->b;
		break;
	default:
		val->value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE;
		val->double_value = at->d;
		break;
	}
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static PbSpan *build_span(struct pb_arena *a, const struct span *s)
{
	size_t n = span_attr_count(s), used = 0;
	PbSpan *ps = arena_take(a, sizeof(*ps));
	PbStatus *st = arena_take(a, sizeof(*st));
	KeyValue *kvs = arena_take(a, n * sizeof(*kvs));
	AnyValue *vals = arena_take(a, n * sizeof(*vals));
	KeyValue **kvp = arena_take(a, n * sizeof(*kvp));

	periscope__otlp__span__init(ps);
	ps->trace_id.data = (uint8_t *)s->trace_id;
	ps->trace_id.len = sizeof(s->trace_id);
	ps->span_id.data = (uint8_t *)s->span_id;
	ps->span_id.len = sizeof(s->span_id);
	if (!all_zero(s->parent_span_id, sizeof(s->parent_span_id))) {
		ps->parent_span_id.data = (uint8_t *)s->parent_span_id;
		ps->parent_span_id.len = sizeof(s->parent_span_id);
	}
	ps->trace_state = pb_string(a, s->trace_state);
	ps->flags = s->sampled ? 0x01 : 0x00; /* W3C trace flags in the low byte */
	ps->name = pb_string(a, s->name);
	switch (s->kind) {
	case SPAN_KIND_INTERNAL:
	case SPAN_KIND_SERVER:
	case SPAN_KIND_CLIENT:
		ps->kind = (Periscope__Otlp__Span__SpanKind)s->kind;
		break;
	default:
		ps->kind = PERISCOPE__OTLP__SPAN__SPAN_KIND__SPAN_KIND_UNSPECIFIED;
		break;
	}
	ps->start_time_unix_nano = s->start_unix_ns;
	ps->end_time_unix_nano = s->end_unix_ns;
	for (size_t i = 0; i < n; i++) {
		const struct span_attr *at = &s->attrs[i];

		if (!attr_usable(s, at)) {
			ps->dropped_attributes_count++;
			continue;
		}
		build_attr(a, s, at, &kvs[used], &vals[used]);
		kvp[used] = &kvs[used];
		used++;
	}
	ps->n_attributes = used;
	ps->attributes = kvp;
	if (s->status == SPAN_STATUS_OK || s->status == SPAN_STATUS_ERROR ||
	    s->status_message[0] != '\0') {
		periscope__otlp__status__init(st);
		st->code = s->status == SPAN_STATUS_OK
		               ? PERISCOPE__OTLP__STATUS__STATUS_CODE__STATUS_CODE_OK
		           : s->status == SPAN_STATUS_ERROR
		               ? PERISCOPE__OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR
		               : PERISCOPE__OTLP__STATUS__STATUS_CODE__STATUS_CODE_UNSET;
		st->message = pb_string(a, s->status_message);
		ps->status = st;
	}
	return ps;
}

int otlp_encode_traces(const struct span *const *spans, size_t n, uint8_t **out, size_t *out_len)
{
	struct span_group *groups = NULL;
	size_t *group_of = NULL;
	size_t n_groups = 0, need, packed;
	struct pb_arena arena = {0};
	TraceRequest req;
	ResourceSpans **rsp;
	PbSpan **span_ptrs;
	Scope scope;
	int err = 0;

	*out = NULL;
	*out_len = 0;
	for (size_t i = 0; i < n; i++) {
		const struct span *s = spans[i];

		if (!terminated(s->name, sizeof(s->name)) ||
		    !terminated(s->status_message, sizeof(s->status_message)) ||
		    !terminated(s->trace_state, sizeof(s->trace_state)))
			return -EINVAL;
	}
	if (n > 0) {
		groups = calloc(n, sizeof(*groups));
		group_of = calloc(n, sizeof(*group_of));
		if (!groups || !group_of) {
			err = -ENOMEM;
			goto cleanup;
		}
	}
	/* Group by resource pointer, first appearance first. */
	for (size_t i = 0; i < n; i++) {
		size_t g = n_groups;

		if (i > 0 && groups[group_of[i - 1]].resource == spans[i]->resource)
			g = group_of[i - 1];
		else
			for (size_t k = 0; k < n_groups; k++)
				if (groups[k].resource == spans[i]->resource) {
					g = k;
					break;
				}
		if (g == n_groups)
			groups[n_groups++].resource = spans[i]->resource;
		groups[g].n_spans++;
		group_of[i] = g;
	}

	need = ALIGN_UP(n_groups * sizeof(ResourceSpans *)) + ALIGN_UP(n * sizeof(PbSpan *));
	for (size_t g = 0; g < n_groups; g++)
		need += resource_arena_need(groups[g].resource);
	for (size_t i = 0; i < n; i++)
		need += span_arena_need(spans[i]);
	arena.cap = need;
	arena.base = calloc(1, need ? need : 1);
	if (!arena.base) {
		err = -ENOMEM;
		goto cleanup;
	}

	periscope__otlp__instrumentation_scope__init(&scope);
	scope.name = (char *)OTLP_SCOPE_NAME;
	scope.version = (char *)PERISCOPE_VERSION;
	periscope__otlp__export_trace_service_request__init(&req);
	rsp = arena_take(&arena, n_groups * sizeof(*rsp));
	span_ptrs = arena_take(&arena, n * sizeof(*span_ptrs));
	/* Each group's spans take a contiguous slice of span_ptrs. */
	for (size_t g = 0, first = 0; g < n_groups; g++) {
		build_resource(&arena, &groups[g], &scope);
		groups[g].ss->spans = span_ptrs + first;
		first += groups[g].n_spans;
		rsp[g] = groups[g].rs;
	}
	for (size_t i = 0; i < n; i++) {
		ScopeSpans *ss = groups[group_of[i]].ss;

		ss->spans[ss->n_spans++] = build_span(&arena, spans[i]);
	}
	req.n_resource_spans = n_groups;
	req.resource_spans = rsp;

	packed = periscope__otlp__export_trace_service_request__get_packed_size(&req);
	*out = malloc(packed ? packed : 1);
	if (!*out) {
		err = -ENOMEM;
		goto cleanup;
	}
	*out_len = periscope__otlp__export_trace_service_request__pack(&req, *out);
cleanup:
	free(arena.base);
	free(groups);
	free(group_of);
	return err;
}

int otlp_gzip(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len)
{
	z_stream zs;
	uint8_t *buf = NULL;
	size_t bound;
	int err = 0;

	*out = NULL;
	*out_len = 0;
	memset(&zs, 0, sizeof(zs));
	if (n > UINT32_MAX)
		return -EFBIG;
	/* windowBits 15 + 16: gzip header and trailer instead of zlib's */
	if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
	    Z_OK)
		return -ENOMEM;
	bound = deflateBound(&zs, n) + 32; /* + room for the gzip header */
	buf = malloc(bound);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	zs.next_out = buf;
	zs.avail_out = (uInt)bound;
	if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
		err = -EIO;
		goto cleanup;
	}
	*out = buf;
	*out_len = zs.total_out;
	buf = NULL;
cleanup:
	deflateEnd(&zs);
	free(buf);
	return err;
}

int otlp_gunzip(const uint8_t *in, size_t n, size_t max_out, uint8_t **out, size_t *out_len)
{
	/* one byte beyond max_out tells "too big" from "exactly max_out" */
	size_t limit = max_out < UINT32_MAX - 1 ? max_out + 1 : UINT32_MAX;
	size_t cap = limit < 4096 ? limit : 4096, len = 0;
	uint8_t *buf = NULL;
	z_stream zs;
	int err = 0, zr;

	*out = NULL;
	*out_len = 0;
	memset(&zs, 0, sizeof(zs));
	if (n > UINT32_MAX)
		return -EFBIG;
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return -ENOMEM;
	buf = malloc(cap);
	if (!buf) {
		err = -ENOMEM;
		goto cleanup;
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	for (;;) {
		zs.next_out = buf + len;
		zs.avail_out = (uInt)(cap - len);
		zr = inflate(&zs, Z_NO_FLUSH);
		len = cap - zs.avail_out;
		if (zr == Z_STREAM_END)
			break;
		if ((zr != Z_OK && zr != Z_BUF_ERROR) || (zs.avail_in == 0 && len < cap)) {
			err = -EINVAL; /* corrupt, or the input ended mid-stream */
			goto cleanup;
		}
		if (len == cap) {
			uint8_t *grown;

			if (cap >= limit) {
				err = -EFBIG;
				goto cleanup;
			}
			cap = cap * 2 < limit ? cap * 2 : limit;
			grown = realloc(buf, cap);
			if (!grown) {
				err = -ENOMEM;
				goto cleanup;
			}
			buf = grown;
		}
	}
	if (len > max_out) {
		err = -EFBIG;
		goto cleanup;
	}
	*out = buf;
	*out_len = len;
	buf = NULL;
cleanup:
	inflateEnd(&zs);
	free(buf);
	return err;
}
