/* hpack.c — HPACK (RFC 7541) header block decoder.
 *
 * Dynamic table: entries in a ring of descriptors (oldest at `head`), their
 * bytes (name then value) laid out oldest to newest in one buffer of twice the
 * table capacity; eviction advances the start, insertion appends at the end
 * and compacts (one memmove) when the end is reached, so each byte is moved
 * O(1) times on average. A name taken from the dynamic table for a new entry
 * is copied out first: inserting may evict it (RFC 7541 section 4.4).
 *
 * Late-join. The decoder knows the entries inserted since it joined; they are
 * the newest entries of the encoder's table too, so dynamic index 62 + k is
 * known for k below the number of known entries and unknown beyond. Entries
 * whose name or value could not be decoded are kept (flagged unknown, counted
 * with length 0). Evicting later than the encoder is harmless (it never refers
 * to an entry it has evicted) while evicting earlier would lose entries, so
 * sizes the decoder cannot know are counted low and a late-join decoder
 * follows every size update it sees, capped by HPACK_TABLE_SIZE_LIMIT.
 *
 * Huffman: the code of RFC 7541 Appendix B is canonical (codes of one length
 * are consecutive, in symbol order, and shorter codes come first), so it is
 * decoded from the number of codes of each length and the symbols in code
 * order, one bit at a time. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/hpack.h"

#define ENTRY_OVERHEAD 32u
#define SCRATCH_KEEP   4096u /* scratch bytes kept between blocks */
#define HUFF_MAX_BITS  30

struct dyn_entry {
	uint32_t off; /* name bytes at buf + off, value bytes right after */
	uint32_t name_len;
	uint32_t value_len;
	uint32_t flags; /* HPACK_F_UNKNOWN_NAME / _VALUE */
};

struct hpack_decoder {
	bool late_join;
	uint32_t max_setting; /* SETTINGS_HEADER_TABLE_SIZE as told */
	uint32_t capacity;    /* current maximum table size */
	uint32_t size;        /* sum of entry sizes */
	struct dyn_entry *ents;
	uint32_t ents_cap;
	uint32_t head; /* oldest entry */
	uint32_t count;
	uint8_t *buf;
	uint32_t buf_cap;
	uint32_t buf_start; /* first byte of the oldest entry */
	uint32_t buf_end;   /* after the newest entry */
	char *scratch[2];   /* Huffman-decoded name, value */
	size_t scratch_cap[2];
	struct hpack_stats stats;
};

struct static_entry {
	const char *name;
	const char *value;
};

/* RFC 7541 Appendix A, index 1..61 */
static const struct static_entry static_table[] = {
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
};

#define STATIC_COUNT (sizeof(static_table) / sizeof(static_table[0]))

/* Number of Huffman codes of each length 0..30 (RFC 7541 Appendix B). */
static const uint16_t huff_count[HUFF_MAX_BITS + 1] = {
    0, 0, 0, 0, 0, 10, 26, 32, 6,  0, 5,  3,  2,  6, 2, 3,
    0, 0, 0, 3, 8, 13, 26, 29, 12, 4, 15, 19, 29, 0, 4,
};

/* Symbols in code order (by code length, then symbol value); 256 is EOS. */
static const uint16_t huff_sym[257] = {
    48,  49,  50,  97,  99,  101, 105, 111, 115, 116, 32,  37,  45,  46,  47,  51,  52,  53,  54,
    55,  56,  57,  61,  65,  95,  98,  100, 102, 103, 104, 108, 109, 110, 112, 114, 117, 58,  66,
    67,  68,  69,  70,  71,  72,  73,  74,  75,  76,  77,  78,  79,  80,  81,  82,  83,  84,  85,
    86,  87,  89,  106, 107, 113, 118, 119, 120, 121, 122, 38,  42,  44,  59,  88,  90,  33,  34,
    40,  41,  63,  39,  43,  124, 35,  62,  0,   36,  64,  91,  93,  126, 94,  125, 60,  96,  123,
    92,  195, 208, 128, 130, 131, 162, 184, 194, 224, 226, 153, 161, 167, 172, 176, 177, 179, 209,
    216, 217, 227, 229, 230, 129, 132, 133, 134, 136, 146, 154, 156, 160, 163, 164, 169, 170, 173,
    178, 181, 185, 186, 187, 189, 190, 196, 198, 228, 232, 233, 1,   135, 137, 138, 139, 140, 141,
    143, 147, 149, 150, 151, 152, 155, 157, 158, 165, 166, 168, 174, 175, 180, 182, 183, 188, 191,
    197, 231, 239, 9,   142, 144, 145, 148, 159, 171, 206, 215, 225, 236, 237, 199, 207, 234, 235,
    192, 193, 200, 201, 202, 205, 210, 213, 218, 219, 238, 240, 242, 243, 255, 203, 204, 211, 212,
    214, 221, 222, 223, 241, 244, 245, 246, 247, 248, 250, 251, 252, 253, 254, 2,   3,   4,   5,
    6,   7,   8,   11,  12,  14,  15,  16,  17,  18,  19,  20,  21,  23,  24,  25,  26,  27,  28,
    29,  30,  31,  127, 220, 249, 10,  13,  22,  256,
};

/* Per-block decoding state. */
struct block {
	hpack_header_cb cb;
	void *ctx;
	uint32_t fields; /* reported so far */
	bool field_seen; /* a field representation was seen (size updates must come first) */
};

/* The table size before any size update: the encoder starts at the initial
 * setting (4096) or lower when told a lower one. A late-join decoder assumes
 * the largest size allowed: the encoder may have raised it unseen, and holding
 * entries longer than the encoder does is harmless. */
static uint32_t initial_capacity(const struct hpack_decoder *d)
{
	uint32_t cap = d->late_join ? HPACK_TABLE_SIZE_LIMIT : HPACK_DEFAULT_TABLE_SIZE;

	return d->max_setting < cap ? d->max_setting : cap;
}

struct hpack_decoder *hpack_decoder__new(uint32_t max_table_size, bool late_join)
{
	struct hpack_decoder *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->late_join = late_join;
	d->max_setting = max_table_size;
	d->capacity = initial_capacity(d);
	return d;
}

void hpack_decoder__free(struct hpack_decoder *d)
{
	if (!d)
		return;
	free(d->ents);
	free(d->buf);
	free(d->scratch[0]);
	free(d->scratch[1]);
	free(d);
}

static struct dyn_entry *entry_at(const struct hpack_decoder *d, uint32_t k)
{
	/* k = 0 is the newest */
	return &d->ents[(d->head + d->count - 1 - k) % d->ents_cap];
}

static void evict_oldest(struct hpack_decoder *d)
{
	struct dyn_entry *e = &d->ents[d->head];

	d->size -= e->name_len + e->value_len + ENTRY_OVERHEAD;
	d->buf_start = e->off + e->name_len + e->value_len;
	d->head = (d->head + 1) % d->ents_cap;
	d->count--;
	d->stats.evictions++;
	if (!d->count) {
		d->head = 0;
		d->buf_start = 0;
		d->buf_end = 0;
	}
}

static void set_capacity(struct hpack_decoder *d, uint32_t capacity)
{
	d->capacity = capacity;
	while (d->count && d->size > d->capacity)
		evict_oldest(d);
}

/* Room for the current capacity: descriptors for capacity / 32 entries and
 * a byte buffer of twice the capacity. */
static int ensure_storage(struct hpack_decoder *d)
{
	uint32_t want_ents = d->capacity / ENTRY_OVERHEAD + 1;
	uint32_t want_buf = 2 * d->capacity;

	if (d->ents_cap < want_ents) {
		struct dyn_entry *n = malloc(want_ents * sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (uint32_t i = 0; i < d->count; i++)
			n[i] = d->ents[(d->head + i) % d->ents_cap];
		free(d->ents);
		d->ents = n;
		d->ents_cap = want_ents;
		d->head = 0;
	}
	if (d->buf_cap < want_buf) {
		uint8_t *n = realloc(d->buf, want_buf);

		if (!n)
			return -ENOMEM;
		d->buf = n;
		d->buf_cap = want_buf;
	}
	return 0;
}

static void compact(struct hpack_decoder *d)
{
	uint32_t shift = d->buf_start;

	if (!shift)
		return;
	memmove(d->buf, d->buf + shift, d->buf_end - shift);
	for (uint32_t i = 0; i < d->count; i++)
		d->ents[(d->head + i) % d->ents_cap].off -= shift;
	d->buf_end -= shift;
	d->buf_start = 0;
}

/* Adds an entry (RFC 7541 section 4.4). name and value must not point into
 * the table. */
static int insert(struct hpack_decoder *d, const char *name, size_t name_len, const char *value,
                  size_t value_len, unsigned flags)
{
	uint64_t esize = (uint64_t)name_len + value_len + ENTRY_OVERHEAD;
	struct dyn_entry *e;
	int err;

	if (esize > d->capacity) {
		while (d->count)
			evict_oldest(d);
		return 0;
	}
	while (d->count && d->size + esize > d->capacity)
		evict_oldest(d);
	err = ensure_storage(d);
	if (err)
		return err;
	if (d->buf_end + name_len + value_len > d->buf_cap)
		compact(d);
	e = &d->ents[(d->head + d->count) % d->ents_cap];
	e->off = d->buf_end;
	e->name_len = (uint32_t)name_len;
	e->value_len = (uint32_t)value_len;
	e->flags = flags & (HPACK_F_UNKNOWN_NAME | HPACK_F_UNKNOWN_VALUE);
	if (name_len)
		memcpy(d->buf + d->buf_end, name, name_len);
	if (value_len)
		memcpy(d->buf + d->buf_end + name_len, value, value_len);
	d->buf_end += (uint32_t)(name_len + value_len);
	d->count++;
	d->size += (uint32_t)esize;
	return 0;
}

/* RFC 7541 section 5.1: an integer with an N-bit prefix starting at *pos.
 * Values above UINT32_MAX, or continuation bytes past 32 bits of shift, are
 * rejected. */
static int read_int(const uint8_t *buf, size_t len, size_t *pos, unsigned prefix, uint32_t *out)
{
	uint32_t max = (1u << prefix) - 1;
	uint32_t v = buf[*pos] & max;
	size_t p = *pos + 1;

	if (v < max) {
		*out = v;
		*pos = p;
		return 0;
	}
	for (unsigned shift = 0;; shift += 7) {
		uint32_t add;
		uint8_t b;

		if (p >= len)
			return -EBADMSG;
		b = buf[p++];
		add = b & 0x7f;
		if (shift >= 32 || add > (UINT32_MAX >> shift))
			return -EBADMSG;
		add <<= shift;
		if (UINT32_MAX - add < v)
			return -EBADMSG;
		v += add;
		if (!(b & 0x80))
			break;
	}
	*out = v;
	*pos = p;
	return 0;
}

/* Decodes n Huffman-coded bytes into dst (room for n * 8 / 5 bytes). */
static int huff_decode(const uint8_t *src, size_t n, char *dst, size_t *out_len)
{
	uint32_t code = 0, first = 0, index = 0;
	unsigned len = 0;
	bool ones = true; /* every bit of the current partial code is 1 */
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		for (int bit = 7; bit >= 0; bit--) {
			uint32_t b = (src[i] >> bit) & 1u;
			uint32_t cnt;

			code |= b;
			ones = ones && b;
			len++;
			cnt = huff_count[len];
			if (code < first + cnt) {
				uint16_t sym = huff_sym[index + code - first];

				if (sym == 256)
					return -EBADMSG; /* EOS inside a string */
				dst[o++] = (char)sym;
				code = first = index = 0;
				len = 0;
				ones = true;
				continue;
			}
			if (len == HUFF_MAX_BITS)
				return -EBADMSG; /* unreachable: the code is complete */
			index += cnt;
			first = (first + cnt) << 1;
			code <<= 1;
		}
	}
	/* padding: at most 7 bits, the most significant bits of EOS (all 1) */
	if (len > 7 || !ones)
		return -EBADMSG;
	*out_len = o;
	return 0;
}

static int scratch_reserve(struct hpack_decoder *d, int slot, size_t n)
{
	char *p;

	if (d->scratch_cap[slot] >= n)
		return 0;
	p = realloc(d->scratch[slot], n);
	if (!p)
		return -ENOMEM;
	d->scratch[slot] = p;
	d->scratch_cap[slot] = n;
	return 0;
}

/* RFC 7541 section 5.2: a string literal at *pos. *s and *n point into buf or
 * into scratch[slot]. A string that is there but cannot be used (bad Huffman,
 * longer than HPACK_STRING_MAX) fails a synced decoder and is skipped by a
 * late-join one (*skipped). */
static int read_string(struct hpack_decoder *d, const uint8_t *buf, size_t len, size_t *pos,
                       int slot, const char **s, size_t *n, bool *skipped)
{
	bool huffman = buf[*pos] & 0x80;
	const uint8_t *src;
	uint32_t slen;
	int err;

	*skipped = false;
	*s = "";
	*n = 0;
	err = read_int(buf, len, pos, 7, &slen);
	if (err)
		return err;
	if (slen > len - *pos)
		return -EBADMSG;
	src = buf + *pos;
	*pos += slen;
	if (slen > HPACK_STRING_MAX) {
		if (!d->late_join)
			return -E2BIG;
		*skipped = true;
		return 0;
	}
	if (!huffman) {
		*s = (const char *)src;
		*n = slen;
		return 0;
	}
	err = scratch_reserve(d, slot, (size_t)slen * 8 / 5 + 1);
	if (err)
		return err;
	err = huff_decode(src, slen, d->scratch[slot], n);
	if (err) {
		*n = 0;
		if (!d->late_join)
			return err;
		*skipped = true;
		return 0;
	}
	*s = d->scratch[slot];
	return 0;
}

/* Resolves index idx (1-based, static then dynamic) into h's name and, when
 * with_value, value. A dynamic name is copied to scratch[0] when copy_name
 * (it is about to be inserted). */
static int lookup(struct hpack_decoder *d, uint32_t idx, bool with_value, bool copy_name,
                  struct hpack_header *h)
{
	const struct dyn_entry *e;
	uint32_t k;
	int err;

	if (idx == 0)
		return -EBADMSG;
	if (idx <= STATIC_COUNT) {
		h->name = static_table[idx - 1].name;
		h->name_len = strlen(h->name);
		if (with_value) {
			h->value = static_table[idx - 1].value;
			h->value_len = strlen(h->value);
		}
		h->flags |= HPACK_F_STATIC;
		return 0;
	}
	k = idx - STATIC_COUNT - 1;
	if (k >= d->count) {
		if (!d->late_join)
			return -EBADMSG;
		h->flags |= HPACK_F_UNKNOWN_NAME | (with_value ? HPACK_F_UNKNOWN_VALUE : 0);
		return 0;
	}
	e = entry_at(d, k);
	h->flags |= HPACK_F_DYNAMIC | (e->flags & HPACK_F_UNKNOWN_NAME);
	h->name = (const char *)d->buf + e->off;
	h->name_len = e->name_len;
	if (copy_name && e->name_len) {
		err = scratch_reserve(d, 0, e->name_len);
		if (err)
			return err;
		memcpy(d->scratch[0], h->name, e->name_len);
		h->name = d->scratch[0];
	}
	if (with_value) {
		h->value = (const char *)d->buf + e->off + e->name_len;
		h->value_len = e->value_len;
		h->flags |= e->flags & HPACK_F_UNKNOWN_VALUE;
	}
	return 0;
}

static int emit(struct hpack_decoder *d, struct block *b, const struct hpack_header *h)
{
	if (b->fields >= HPACK_BLOCK_FIELDS_MAX) {
		if (!d->late_join)
			return -E2BIG;
		d->stats.dropped++;
		return 0;
	}
	b->fields++;
	d->stats.headers++;
	if (h->flags & (HPACK_F_UNKNOWN_NAME | HPACK_F_UNKNOWN_VALUE))
		d->stats.unknown_refs++;
	if (b->cb)
		b->cb(b->ctx, h);
	return 0;
}

static int size_update(struct hpack_decoder *d, struct block *b, const uint8_t *buf, size_t len,
                       size_t *pos)
{
	uint32_t v;
	int err;

	if (b->field_seen && !d->late_join)
		return -EBADMSG; /* only at the start of a block */
	err = read_int(buf, len, pos, 5, &v);
	if (err)
		return err;
	if (v > d->max_setting && !d->late_join)
		return -EBADMSG;
	if (v > HPACK_TABLE_SIZE_LIMIT) {
		if (!d->late_join)
			return -E2BIG;
		v = HPACK_TABLE_SIZE_LIMIT;
	}
	set_capacity(d, v);
	d->stats.size_updates++;
	return 0;
}

static int literal(struct hpack_decoder *d, struct block *b, const uint8_t *buf, size_t len,
                   size_t *pos)
{
	uint8_t op = buf[*pos];
	bool indexing = op & 0x40;
	struct hpack_header h = {0};
	bool skipped;
	uint32_t idx;
	int err;

	if (!indexing && (op & 0x10))
		h.flags |= HPACK_F_NEVER_INDEXED;
	err = read_int(buf, len, pos, indexing ? 6 : 4, &idx);
	if (err)
		return err;
	if (idx) {
		err = lookup(d, idx, false, indexing, &h);
		if (err)
			return err;
	} else {
		if (*pos >= len)
			return -EBADMSG;
		err = read_string(d, buf, len, pos, 0, &h.name, &h.name_len, &skipped);
		if (err)
			return err;
		if (skipped)
			h.flags |= HPACK_F_UNKNOWN_NAME;
	}
	if (*pos >= len)
		return -EBADMSG;
	err = read_string(d, buf, len, pos, 1, &h.value, &h.value_len, &skipped);
	if (err)
		return err;
	if (skipped)
		h.flags |= HPACK_F_UNKNOWN_VALUE;
	if (h.flags & HPACK_F_UNKNOWN_NAME) {
		h.name = "";
		h.name_len = 0;
	}
	err = emit(d, b, &h);
	if (err)
		return err;
	if (indexing)
		err = insert(d, h.name, h.name_len, h.value, h.value_len, h.flags);
	return err;
}

static int indexed(struct hpack_decoder *d, struct block *b, const uint8_t *buf, size_t len,
                   size_t *pos)
{
	struct hpack_header h = {.flags = HPACK_F_INDEXED};
	uint32_t idx;
	int err;

	err = read_int(buf, len, pos, 7, &idx);
	if (err)
		return err;
	err = lookup(d, idx, true, false, &h);
	if (err)
		return err;
	if (h.flags & HPACK_F_UNKNOWN_NAME) {
		h.name = "";
		h.name_len = 0;
	}
	if (h.flags & HPACK_F_UNKNOWN_VALUE) {
		h.value = "";
		h.value_len = 0;
	}
	return emit(d, b, &h);
}

static void scratch_trim(struct hpack_decoder *d)
{
	for (int i = 0; i < 2; i++) {
		if (d->scratch_cap[i] > SCRATCH_KEEP) {
			free(d->scratch[i]);
			d->scratch[i] = NULL;
			d->scratch_cap[i] = 0;
		}
	}
}

int hpack_decode_block(struct hpack_decoder *d, const uint8_t *buf, size_t len, hpack_header_cb cb,
                       void *ctx)
{
	struct block b = {.cb = cb, .ctx = ctx};
	size_t pos = 0;
	int err = 0;

	if (!d || (!buf && len))
		return -EINVAL;
	d->stats.blocks++;
	while (pos < len) {
		uint8_t op = buf[pos];

		if (op & 0x80) {
			err = indexed(d, &b, buf, len, &pos);
			b.field_seen = true;
		} else if ((op & 0xe0) == 0x20) {
			err = size_update(d, &b, buf, len, &pos);
		} else {
			err = literal(d, &b, buf, len, &pos);
			b.field_seen = true;
		}
		if (err)
			break;
	}
	scratch_trim(d);
	if (err) {
		d->stats.errors++;
		if (d->late_join && err != -ENOMEM)
			err = 0;
	}
	return err;
}

void hpack_decoder_set_max_table_size(struct hpack_decoder *d, uint32_t max_table_size)
{
	d->max_setting = max_table_size;
}

void hpack_decoder_reset(struct hpack_decoder *d, bool late_join)
{
	while (d->count)
		evict_oldest(d);
	d->late_join = late_join;
	d->capacity = initial_capacity(d);
}

void hpack_decoder_set_late_join(struct hpack_decoder *d)
{
	d->late_join = true;
}

bool hpack_decoder_late_join(const struct hpack_decoder *d)
{
	return d->late_join;
}

void hpack_decoder_stats(const struct hpack_decoder *d, struct hpack_stats *out)
{
	*out = d->stats;
}

uint32_t hpack_decoder_table_size(const struct hpack_decoder *d)
{
	return d->size;
}

uint32_t hpack_decoder_table_capacity(const struct hpack_decoder *d)
{
	return d->capacity;
}

size_t hpack_decoder_table_count(const struct hpack_decoder *d)
{
	return d->count;
}

int hpack_decoder_table_entry(const struct hpack_decoder *d, size_t i, struct hpack_header *out)
{
	const struct dyn_entry *e;

	if (i == 0 || i > d->count)
		return -ENOENT;
	e = entry_at(d, (uint32_t)(i - 1));
	out->name = (const char *)d->buf + e->off;
	out->name_len = e->name_len;
	out->value = (const char *)d->buf + e->off + e->name_len;
	out->value_len = e->value_len;
	out->flags = HPACK_F_DYNAMIC | e->flags;
	return 0;
}

size_t hpack_decoder_memory(const struct hpack_decoder *d)
{
	return sizeof(*d) + (size_t)d->ents_cap * sizeof(struct dyn_entry) + d->buf_cap +
	       d->scratch_cap[0] + d->scratch_cap[1];
}
