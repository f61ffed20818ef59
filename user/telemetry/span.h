/* span.h — one finished span. Self-contained (strings live in its own arena,
 * referenced by offset) so it can be copied and handed to the exporter thread. */
#ifndef PERISCOPE_SPAN_H
#define PERISCOPE_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct resource;

/* Values as in OTLP's Span.SpanKind and Status.StatusCode. */
enum span_kind {
	SPAN_KIND_INTERNAL = 1,
	SPAN_KIND_SERVER = 2,
	SPAN_KIND_CLIENT = 3,
};

enum span_status {
	SPAN_STATUS_UNSET = 0,
	SPAN_STATUS_OK = 1,
	SPAN_STATUS_ERROR = 2,
};

enum span_attr_type {
	SPAN_ATTR_STR = 0,
	SPAN_ATTR_INT = 1,
	SPAN_ATTR_BOOL = 2,
	SPAN_ATTR_DOUBLE = 3,
};

struct span_attr {
	const char *key; /* a string literal (static storage) */
	uint8_t type;    /* enum span_attr_type */
	uint16_t off;    /* SPAN_ATTR_STR: value at arena + off, NUL-terminated */
	uint16_t len;
	union {
		int64_t i;
		double d;
		bool b;
	};
};

#define SPAN_MAX_ATTRS      24
#define SPAN_ARENA_SIZE     2048
#define SPAN_NAME_MAX       128
#define SPAN_STATUS_MSG_MAX 128
#define SPAN_TRACESTATE_MAX 256

struct span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8]; /* all zero: a root span */
	uint8_t kind;              /* enum span_kind */
	uint8_t status;            /* enum span_status */
	uint8_t sampled;           /* trace flags bit 0 */
	uint64_t start_unix_ns;
	uint64_t end_unix_ns;
	char name[SPAN_NAME_MAX];
	char status_message[SPAN_STATUS_MSG_MAX];
	char trace_state[SPAN_TRACESTATE_MAX];
	struct resource *resource; /* one reference, owned by the span */
	uint16_t n_attrs;
	uint16_t arena_used;
	struct span_attr attrs[SPAN_MAX_ATTRS];
	char arena[SPAN_ARENA_SIZE];
};

/* Empties the span: zero ids, times, kind and status, empty strings, no
 * resource, no attributes (unused buffer bytes are left as they were). */
void span_init(struct span *s);
/* Releases the resource reference; the span memory itself is the caller's. */
void span_release(struct span *s);
/* Copies src into dst, taking a new resource reference. */
void span_copy(struct span *dst, const struct span *src);

/* Attribute setters. `key` must be a string literal. Values that do not fit
 * in the arena are truncated; beyond SPAN_MAX_ATTRS the call returns -ENOSPC. */
int span_set_str(struct span *s, const char *key, const char *value);
int span_set_strn(struct span *s, const char *key, const char *value, size_t len);
int span_set_int(struct span *s, const char *key, int64_t value);
int span_set_bool(struct span *s, const char *key, bool value);
int span_set_double(struct span *s, const char *key, double value);
/* Like the setters, without looking for an attribute with the same key: for
 * builders that set each key once on a fresh span. */
int span_add_str_slow(struct span *s, const char *key, const char *value, size_t len);
int span_add_int_slow(struct span *s, const char *key, int64_t value);

/* Inline: a span takes a dozen of them. The fast path (a free slot, room for
 * the whole value) stores what the slow one would. */
static inline int span_add_strn(struct span *s, const char *key, const char *value, size_t len)
{
	if (key && value && s->n_attrs < SPAN_MAX_ATTRS &&
	    (size_t)s->arena_used + len + 2 <= SPAN_ARENA_SIZE) {
		struct span_attr *a = &s->attrs[s->n_attrs++];

		*a = (struct span_attr){.key = key, .type = SPAN_ATTR_STR};
		a->off = s->arena_used;
		a->len = (uint16_t)len;
		memcpy(s->arena + a->off, value, len);
		s->arena[a->off + len] = '\0';
		s->arena_used = (uint16_t)(s->arena_used + len + 1);
		return 0;
	}
	return span_add_str_slow(s, key, value, len);
}

static inline int span_add_str(struct span *s, const char *key, const char *value)
{
	return span_add_strn(s, key, value, value ? strlen(value) : 0);
}

static inline int span_add_int(struct span *s, const char *key, int64_t value)
{
	if (key && s->n_attrs < SPAN_MAX_ATTRS) {
		s->attrs[s->n_attrs++] =
		    (struct span_attr){.key = key, .type = SPAN_ATTR_INT, .i = value};
		return 0;
	}
	return span_add_int_slow(s, key, value);
}
const char *span_attr_str(const struct span *s, const struct span_attr *a);
/* The attribute named key, or NULL. */
const struct span_attr *span_find_attr(const struct span *s, const char *key);

const char *span_kind_name(enum span_kind k); /* "SERVER", "CLIENT", ... */

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);

#endif
