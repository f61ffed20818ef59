/* json.h — a small append-only JSON writer. It writes into a caller buffer
 * (usually on the stack) and, when allowed, moves to a growing heap buffer
 * once that is full, so the common case allocates nothing. Commas and colons
 * are inserted automatically; strings are escaped and invalid UTF-8 becomes
 * U+FFFD. A writer that ran out of room (or memory) keeps `overflow` set and
 * ignores further writes; its text is always NUL-terminated. */
#ifndef PERISCOPE_JSON_H
#define PERISCOPE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json_writer {
	char *buf;      /* buffer in use: the caller's or heap */
	size_t len;     /* bytes written, excluding the NUL */
	size_t cap;     /* size of buf */
	size_t max_cap; /* growth limit; == cap: never grows */
	bool heap;      /* buf is ours to free */
	bool overflow;  /* something did not fit: the text is incomplete */
	bool need_comma;
};

/* Writes into buf[cap]; grows into the heap up to max_cap bytes (pass
 * max_cap <= cap for a fixed buffer). buf may be NULL with cap 0. */
void json_init(struct json_writer *w, char *buf, size_t cap, size_t max_cap);
/* Frees the heap buffer, if any. */
void json_release(struct json_writer *w);
/* Forgets the content, keeping the buffer. */
void json_reset(struct json_writer *w);

static inline const char *json_text(const struct json_writer *w)
{
	return w->buf ? w->buf : "";
}
static inline size_t json_len(const struct json_writer *w)
{
	return w->len;
}
static inline bool json_ok(const struct json_writer *w)
{
	return !w->overflow;
}

void json_object_begin(struct json_writer *w);
void json_object_end(struct json_writer *w);
void json_array_begin(struct json_writer *w);
void json_array_end(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_str(struct json_writer *w, const char *s); /* NULL writes null */
void json_strn(struct json_writer *w, const char *s, size_t n);
void json_int(struct json_writer *w, int64_t v);
void json_uint(struct json_writer *w, uint64_t v);
/* printf %.*f with `decimals` places; NaN and infinities write null. */
void json_double(struct json_writer *w, double v, int decimals);
/* %.15g, or %.17g when that is needed to read back the same double;
 * NaN and infinities write null. */
void json_number(struct json_writer *w, double v);
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);
/* Appends raw bytes that are not a JSON value (e.g. "\n"). */
void json_raw(struct json_writer *w, const char *s, size_t n);

/* key:value shorthands */
void json_kv_str(struct json_writer *w, const char *key, const char *s);
void json_kv_strn(struct json_writer *w, const char *key, const char *s, size_t n);
void json_kv_int(struct json_writer *w, const char *key, int64_t v);
void json_kv_uint(struct json_writer *w, const char *key, uint64_t v);
void json_kv_bool(struct json_writer *w, const char *key, bool v);

/* Appends s[0..n) to w as the inside of a JSON string (no quotes). */
void json_escape(struct json_writer *w, const char *s, size_t n);

#endif
