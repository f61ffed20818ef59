/* fuzz_hpack_diff.c — differential fuzzing of the synced HPACK decoder
 * against libnghttp2's inflater (test-only dependency). The first byte picks
 * the announced table size (4096 or 65536: nghttp2 requires a size update
 * after a lowered setting, which a passive decoder cannot demand, so lowered
 * settings are not compared); the rest is a list of blocks, each prefixed by a
 * 2-byte length, decoded by both in turn until one fails. Per block:
 *  - nghttp2 accepts → we accept with the same fields (name, value,
 *    never-indexed) and the same dynamic table afterwards;
 *  - we accept → nghttp2 accepts;
 * with one intended difference: we fail a block of more than
 * HPACK_BLOCK_FIELDS_MAX fields (-E2BIG) that nghttp2 decodes. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "parsers/hpack.h"

#define MAX_FIELDS 2048

struct field {
	const uint8_t *name, *value; /* copies */
	size_t name_len, value_len;
	bool never;
};

struct fields {
	size_t n;
	struct field f[MAX_FIELDS];
};

static void add(struct fields *l, const void *name, size_t nl, const void *value, size_t vl,
                bool never)
{
	struct field *f;

	if (l->n >= MAX_FIELDS) { /* counted, not kept: more than we accept anyway */
		l->n++;
		return;
	}
	f = &l->f[l->n++];
	f->name = malloc(nl + 1);
	f->value = malloc(vl + 1);
	if (!f->name || !f->value)
		abort();
	memcpy((void *)f->name, name, nl);
	memcpy((void *)f->value, value, vl);
	f->name_len = nl;
	f->value_len = vl;
	f->never = never;
}

static void clear(struct fields *l)
{
	for (size_t i = 0; i < l->n && i < MAX_FIELDS; i++) {
		free((void *)l->f[i].name);
		free((void *)l->f[i].value);
	}
	l->n = 0;
}

static void collect(void *ctx, const struct hpack_header *h)
{
	add(ctx, h->name, h->name_len, h->value, h->value_len, h->flags & HPACK_F_NEVER_INDEXED);
}

/* 0 when nghttp2 decodes the whole block, else -1. */
static int ng_block(nghttp2_hd_inflater *inf, const uint8_t *in, size_t len, struct fields *out)
{
	for (;;) {
		nghttp2_nv nv;
		int flags = 0;
		ssize_t rv = nghttp2_hd_inflate_hd2(inf, &nv, &flags, in, len, 1);

		if (rv < 0)
			return -1;
		in += rv;
		len -= (size_t)rv;
		if (flags & NGHTTP2_HD_INFLATE_EMIT)
			add(out, nv.name, nv.namelen, nv.value, nv.valuelen,
			    nv.flags & NGHTTP2_NV_FLAG_NO_INDEX);
		if (flags & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(inf);
			return 0;
		}
		if (!(flags & NGHTTP2_HD_INFLATE_EMIT) && len == 0)
			return -1;
	}
}

static bool same_fields(const struct fields *a, const struct fields *b)
{
	if (a->n != b->n || a->n > MAX_FIELDS)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct field *x = &a->f[i], *y = &b->f[i];

		if (x->name_len != y->name_len || x->value_len != y->value_len ||
		    x->never != y->never || memcmp(x->name, y->name, x->name_len) ||
		    memcmp(x->value, y->value, x->value_len))
			return false;
	}
	return true;
}

static bool same_table(nghttp2_hd_inflater *inf, const struct hpack_decoder *d)
{
	size_t n = hpack_decoder_table_count(d);

	if (nghttp2_hd_inflate_get_num_table_entries(inf) != 61 + n)
		return false;
	if (nghttp2_hd_inflate_get_dynamic_table_size(inf) != hpack_decoder_table_size(d))
		return false;
	if (nghttp2_hd_inflate_get_max_dynamic_table_size(inf) != hpack_decoder_table_capacity(d))
		return false;
	for (size_t i = 1; i <= n; i++) {
		const nghttp2_nv *nv = nghttp2_hd_inflate_get_table_entry(inf, 61 + i);
		struct hpack_header h;

		if (!nv || hpack_decoder_table_entry(d, i, &h))
			return false;
		if (nv->namelen != h.name_len || nv->valuelen != h.value_len ||
		    memcmp(nv->name, h.name, h.name_len) || memcmp(nv->value, h.value, h.value_len))
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fields *ours = calloc(1, sizeof(*ours)), *theirs = calloc(1, sizeof(*theirs));
	nghttp2_hd_inflater *inf = NULL;
	struct hpack_decoder *d;
	uint32_t setting;
	size_t at = 1;

	if (!size || !ours || !theirs)
		goto cleanup;
	setting = (data[0] & 1) ? 65536 : 4096;
	d = hpack_decoder__new(setting, false);
	if (!d || nghttp2_hd_inflate_new(&inf))
		abort();
	if (nghttp2_hd_inflate_change_table_size(inf, setting))
		abort();
	while (at + 2 <= size) {
		size_t len = (size_t)data[at] << 8 | data[at + 1];
		int ng, rc;

		at += 2;
		if (len > size - at)
			len = size - at;
		clear(ours);
		clear(theirs);
		ng = ng_block(inf, data + at, len, theirs);
		rc = hpack_decode_block(d, data + at, len, collect, ours);
		at += len;
		if (rc == -E2BIG && ours->n == HPACK_BLOCK_FIELDS_MAX)
			break; /* intended difference: too many fields */
		if (ng == 0 && rc != 0)
			abort(); /* nghttp2 accepts, we do not */
		if (ng != 0 && rc == 0)
			abort(); /* we accept, nghttp2 does not */
		if (ng != 0)
			break;
		if (!same_fields(ours, theirs) || !same_table(inf, d))
			abort();
	}
	hpack_decoder__free(d);
	nghttp2_hd_inflate_del(inf);
cleanup:
	if (ours)
		clear(ours);
	if (theirs)
		clear(theirs);
	free(ours);
	free(theirs);
	return 0;
}
