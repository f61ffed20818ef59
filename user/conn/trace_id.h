/* trace_id.h — random trace/span ids and the W3C traceparent header. */
#ifndef PERISCOPE_TRACE_ID_H
#define PERISCOPE_TRACE_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* xoshiro256** state: fast, non-cryptographic ids, seeded from getrandom(). */
struct id_gen {
	uint64_t s[4];
};

void id_gen_seed(struct id_gen *g);
void id_gen_seed_fixed(struct id_gen *g, uint64_t seed); /* for tests and replay */
void id_gen_trace_id(struct id_gen *g, uint8_t out[16]);
void id_gen_span_id(struct id_gen *g, uint8_t out[8]);

struct traceparent {
	uint8_t trace_id[16];
	uint8_t parent_id[8];
	uint8_t flags;
};

/* Parses "00-<32 hex>-<16 hex>-<2 hex>" (version 00, or a later version with the
 * same prefix). Rejects all-zero ids. Returns true when valid. */
bool traceparent_parse(const char *s, size_t len, struct traceparent *out);

#endif
