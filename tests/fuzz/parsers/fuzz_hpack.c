/* fuzz_hpack.c — libFuzzer harness for the HPACK decoder. The first byte
 * picks the announced table size; the rest is a list of blocks, each prefixed
 * by a 2-byte length. The blocks go to a synced and a late-join decoder, both
 * starting empty: while the synced one succeeds the late-join one must report
 * exactly the same fields (none unknown) and hold the same newest entries; the
 * late-join one never fails; memory and table size stay within bounds. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/hpack.h"

#define MAX_FIELDS 256

struct field {
	size_t name_len, value_len;
	unsigned flags;
	uint64_t hash;
};

struct fields {
	size_t n;
	struct field f[MAX_FIELDS];
};

static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)p[i]) * 1099511628211ULL;
	return h;
}

static void collect(void *ctx, const struct hpack_header *h)
{
	struct fields *l = ctx;

	if ((h->name_len && !h->name) || (h->value_len && !h->value))
		abort();
	if ((h->flags & HPACK_F_UNKNOWN_NAME) && h->name_len)
		abort();
	if ((h->flags & HPACK_F_UNKNOWN_VALUE) && h->value_len)
		abort();
	if (l->n < MAX_FIELDS) {
		struct field *f = &l->f[l->n];

		/* whole, padding too: the harness compares fields with memcmp */
		memset(f, 0, sizeof(*f));
		f->name_len = h->name_len;
		f->value_len = h->value_len;
		f->flags = h->flags;
		f->hash = hash_bytes(hash_bytes(14695981039346656037ULL, h->name, h->name_len),
		                     h->value, h->value_len);
	}
	l->n++;
}

static void check_bounds(const struct hpack_decoder *d)
{
	if (hpack_decoder_table_size(d) > hpack_decoder_table_capacity(d) ||
	    hpack_decoder_table_capacity(d) > HPACK_TABLE_SIZE_LIMIT)
		abort();
	if (hpack_decoder_memory(d) > 4 * HPACK_TABLE_SIZE_LIMIT + 8192)
		abort();
}

/* The late-join table starts larger (it assumes the largest size allowed):
 * the synced table must be its newest entries. */
static bool same_tables(const struct hpack_decoder *a, const struct hpack_decoder *b)
{
	size_t n = hpack_decoder_table_count(a);

	if (n > hpack_decoder_table_count(b) ||
	    hpack_decoder_table_size(a) > hpack_decoder_table_size(b))
		return false;
	for (size_t i = 1; i <= n; i++) {
		struct hpack_header x, y;

		if (hpack_decoder_table_entry(a, i, &x) || hpack_decoder_table_entry(b, i, &y))
			return false;
		if (x.name_len != y.name_len || x.value_len != y.value_len ||
		    memcmp(x.name, y.name, x.name_len) || memcmp(x.value, y.value, x.value_len))
			return false;
	}
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t sizes[8] = {0, 64, 256, 4096, 4096, 16384, 65536, UINT32_MAX};
	struct fields *fs = malloc(sizeof(*fs)), *fl = malloc(sizeof(*fl));
	struct hpack_decoder *s, *l;
	bool synced_ok = true;
	size_t at = 1;

	if (!size || !fs || !fl) {
		free(fs);
		free(fl);
		return 0;
	}
	s = hpack_decoder__new(sizes[data[0] & 7], false);
	l = hpack_decoder__new(sizes[data[0] & 7], true);
	if (!s || !l)
		abort();
	while (at < size) {
		size_t len = at + 2 <= size ? (size_t)data[at] << 8 | data[at + 1] : 0;
		int rs, rl;

		at += 2;
		if (at > size)
			break;
		if (len > size - at)
			len = size - at;
		fs->n = fl->n = 0;
		rl = hpack_decode_block(l, data + at, len, collect, fl);
		if (rl)
			abort();
		if (synced_ok) {
			rs = hpack_decode_block(s, data + at, len, collect, fs);
			if (rs == 0) {
				if (fs->n != fl->n)
					abort();
				for (size_t i = 0; i < fs->n && i < MAX_FIELDS; i++)
					if (memcmp(&fs->f[i], &fl->f[i], sizeof(fs->f[i])) ||
					    (fs->f[i].flags &
					     (HPACK_F_UNKNOWN_NAME | HPACK_F_UNKNOWN_VALUE)))
						abort();
				if (!same_tables(s, l))
					abort();
			} else {
				synced_ok = false;
			}
		}
		check_bounds(s);
		check_bounds(l);
		at += len;
		if ((data[0] & 0x80) && at < size) { /* the announced size changes */
			hpack_decoder_set_max_table_size(s, sizes[data[at - 1] & 7]);
			hpack_decoder_set_max_table_size(l, sizes[data[at - 1] & 7]);
		}
	}
	hpack_decoder__free(s);
	hpack_decoder__free(l);
	free(fs);
	free(fl);
	return 0;
}
