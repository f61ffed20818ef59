/* hpack.h — HPACK (RFC 7541) header block decoder for one direction of an
 * HTTP/2 connection. Two modes: synced (the connection was seen from its
 * start: strict RFC 7541, any error fails the block) and late-join (the
 * dynamic table's earlier contents are unknown: what can be decoded is, a
 * reference the decoder cannot resolve is reported as an unknown field, and a
 * block never fails). Memory and work are bounded on hostile input. */
#ifndef PERISCOPE_HPACK_H
#define PERISCOPE_HPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HPACK_DEFAULT_TABLE_SIZE 4096u
/* Hard cap on the dynamic table size the decoder will hold, whatever the
 * peer's SETTINGS_HEADER_TABLE_SIZE says. A synced decoder told to go above it
 * fails the block; a late-join decoder holds this much and reports older
 * references as unknown. */
#define HPACK_TABLE_SIZE_LIMIT 65536u
#define HPACK_STRING_MAX       65536u /* longest string literal (encoded bytes) */
#define HPACK_BLOCK_FIELDS_MAX 1024u  /* header fields reported per block */

/* hpack_header.flags */
#define HPACK_F_STATIC        0x01u /* name (and value when fully indexed) from the static table */
#define HPACK_F_DYNAMIC       0x02u /* name (and value when fully indexed) from the dynamic table */
#define HPACK_F_UNKNOWN_NAME  0x04u /* late-join: the name is not known (name_len 0) */
#define HPACK_F_UNKNOWN_VALUE 0x08u /* late-join: the value is not known (value_len 0) */
#define HPACK_F_NEVER_INDEXED 0x10u /* literal never indexed (sensitive) */
#define HPACK_F_INDEXED       0x20u /* fully indexed field (name and value from a table) */

/* One decoded header field. The strings are not NUL-terminated and are valid
 * only during the callback. */
struct hpack_header {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
	unsigned flags; /* HPACK_F_* */
};

typedef void (*hpack_header_cb)(void *ctx, const struct hpack_header *h);

struct hpack_stats {
	uint64_t blocks;       /* hpack_decode_block calls */
	uint64_t headers;      /* fields reported */
	uint64_t unknown_refs; /* late-join: fields with an unknown name or value */
	uint64_t errors;       /* blocks failed (synced) or cut short (late-join) */
	uint64_t size_updates; /* dynamic table size updates applied */
	uint64_t evictions;    /* entries evicted */
	uint64_t dropped;      /* fields not reported (more than HPACK_BLOCK_FIELDS_MAX) */
};

struct hpack_decoder;

/* max_table_size is SETTINGS_HEADER_TABLE_SIZE as announced by the decoding
 * side (4096 when not announced). A synced table starts at the smaller of it
 * and 4096 (the encoder raises it with a size update); a late-join one at the
 * smaller of it and HPACK_TABLE_SIZE_LIMIT. NULL on ENOMEM. */
struct hpack_decoder *hpack_decoder__new(uint32_t max_table_size, bool late_join);
void hpack_decoder__free(struct hpack_decoder *d); /* accepts NULL */

/* A new SETTINGS_HEADER_TABLE_SIZE: the bound for size updates. The table is
 * not shrunk here (the encoder shrinks it with a size update once it has seen
 * the setting); a passive observer cannot tell when that is, so a block not
 * starting with the update is accepted. */
void hpack_decoder_set_max_table_size(struct hpack_decoder *d, uint32_t max_table_size);

/* Empties the dynamic table and sets the mode (used after lost bytes: a
 * header block may have been missed). */
void hpack_decoder_reset(struct hpack_decoder *d, bool late_join);
/* Switches to late-join keeping the table (after a synced block failed). */
void hpack_decoder_set_late_join(struct hpack_decoder *d);
bool hpack_decoder_late_join(const struct hpack_decoder *d);

/* Decodes one complete header block (HEADERS + CONTINUATION fragments
 * concatenated), calling cb for each field in order. Synced: returns 0 or
 * -EBADMSG (malformed: bad index, integer overflow, bad Huffman, truncated,
 * size update out of place or above the bound), -E2BIG (a limit above was
 * passed), -ENOMEM; the fields reported before the error stand and the table
 * keeps the entries inserted before it. Late-join: returns 0 (or -ENOMEM),
 * stopping at the first unparsable representation. -EINVAL on bad arguments. */
int hpack_decode_block(struct hpack_decoder *d, const uint8_t *buf, size_t len, hpack_header_cb cb,
                       void *ctx);

void hpack_decoder_stats(const struct hpack_decoder *d, struct hpack_stats *out);

/* Dynamic table state (tests, diagnostics). Size counts 32 bytes per entry
 * as RFC 7541 section 4.1 does. */
uint32_t hpack_decoder_table_size(const struct hpack_decoder *d);
uint32_t hpack_decoder_table_capacity(const struct hpack_decoder *d);
size_t hpack_decoder_table_count(const struct hpack_decoder *d);
/* Entry i, 1 = newest (dynamic index 62 + i - 1). -ENOENT when out of range. */
int hpack_decoder_table_entry(const struct hpack_decoder *d, size_t i, struct hpack_header *out);

/* Bytes the decoder holds. */
size_t hpack_decoder_memory(const struct hpack_decoder *d);

#endif
