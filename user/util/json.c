/* json.c — the append-only JSON writer of json.h: no allocation while the
 * caller's buffer has room, full string escaping, invalid UTF-8 replaced by
 * U+FFFD. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

void json_init(struct json_writer *w, char *buf, size_t cap, size_t max_cap)
{
	memset(w, 0, sizeof(*w));
	w->buf = cap ? buf : NULL;
	w->cap = w->buf ? cap : 0;
	w->max_cap = max_cap > w->cap ? max_cap : w->cap;
	if (w->buf)
		w->buf[0] = '\0';
}

void json_release(struct json_writer *w)
{
	if (w->heap)
		free(w->buf);
	memset(w, 0, sizeof(*w));
}

void json_reset(struct json_writer *w)
{
	w->len = 0;
	w->overflow = false;
	w->need_comma = false;
	if (w->buf)
		w->buf[0] = '\0';
}

/* Makes room for n more bytes plus the NUL; false (and overflow) if it can't. */
static bool reserve(struct json_writer *w, size_t n)
{
	size_t need;
	size_t new_cap;
	char *grown;

	if (w->overflow)
		return false;
	if (n < w->cap && w->len < w->cap - n)
		return true;
	need = w->len + n + 1;
	if (need < n || need > w->max_cap) {
		w->overflow = true;
		return false;
	}
	new_cap = w->cap < 256 ? 256 : w->cap;
	while (new_cap < need)
		new_cap = new_cap > w->max_cap / 2 ? w->max_cap : new_cap * 2;
	if (new_cap > w->max_cap)
		new_cap = w->max_cap;
	if (w->heap) {
		grown = realloc(w->buf, new_cap);
	} else {
		grown = malloc(new_cap);
		if (grown && w->len)
			memcpy(grown, w->buf, w->len);
	}
	if (!grown) {
		w->overflow = true;
		return false;
	}
	w->buf = grown;
	w->cap = new_cap;
	w->heap = true;
	return true;
}

static void put(struct json_writer *w, const char *s, size_t n)
{
	if (!reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static void put_char(struct json_writer *w, char c)
{
	put(w, &c, 1);
}

void json_raw(struct json_writer *w, const char *s, size_t n)
{
	put(w, s, n);
}

/* A value or key is about to be written: separate it from the previous one. */
static void before_value(struct json_writer *w)
{
	if (w->need_comma)
		put_char(w, ',');
	w->need_comma = true;
}

void json_object_begin(struct json_writer *w)
{
	before_value(w);
	put_char(w, '{');
	w->need_comma = false;
}

void json_object_end(struct json_writer *w)
{
	put_char(w, '}');
	w->need_comma = true;
}

void json_array_begin(struct json_writer *w)
{
	before_value(w);
	put_char(w, '[');
	w->need_comma = false;
}

void json_array_end(struct json_writer *w)
{
	put_char(w, ']');
	w->need_comma = true;
}

/* Length of the valid UTF-8 sequence at s[0..n) (s[0] >= 0x80), or 0 if it
 * is invalid; *bad_len then tells how many bytes to replace by U+FFFD (the
 * maximal prefix of a valid sequence, at least 1). */
static size_t utf8_seq_len(const unsigned char *s, size_t n, size_t *bad_len)
{
	unsigned char c = s[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t want;

	if (c >= 0xC2 && c <= 0xDF) {
		want = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		want = 3;
		if (c == 0xE0)
			lo = 0xA0; /* no overlong forms */
		else if (c == 0xED)
			hi = 0x9F; /* no surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		want = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F; /* nothing above U+10FFFF */
	} else {
		*bad_len = 1;
		return 0;
	}
	for (size_t i = 1; i < want; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*bad_len = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xBF;
	}
	return want;
}

static bool plain_ascii(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

void json_escape(struct json_writer *w, const char *str, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < n && !w->overflow) {
		size_t run = i;
		size_t seq;
		size_t bad_len;
		unsigned char c;

		while (run < n && plain_ascii(s[run]))
			run++;
		if (run > i) {
			put(w, (const char *)s + i, run - i);
			i = run;
			continue;
		}
		c = s[i];
		if (c >= 0x80) {
			seq = utf8_seq_len(s + i, n - i, &bad_len);
			if (seq) {
				put(w, (const char *)s + i, seq);
				i += seq;
			} else {
				put(w, "\xEF\xBF\xBD", 3);
				i += bad_len;
			}
			continue;
		}
		switch (c) {
		case '"':
			put(w, "\\\"", 2);
			break;
		case '\\':
			put(w, "\\\\", 2);
			break;
		case '\n':
			put(w, "\\n", 2);
			break;
		case '\r':
			put(w, "\\r", 2);
			break;
		case '\t':
			put(w, "\\t", 2);
			break;
		case '\b':
			put(w, "\\b", 2);
			break;
		case '\f':
			put(w, "\\f", 2);
			break;
		default: {
			char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};

			put(w, esc, sizeof(esc));
		}
		}
		i++;
	}
}

static void put_string(struct json_writer *w, const char *s, size_t n)
{
	put_char(w, '"');
	json_escape(w, s, n);
	put_char(w, '"');
}

void json_key(struct json_writer *w, const char *key)
{
	before_value(w);
	put_string(w, key ? key : "", key ? strlen(key) : 0);
	put_char(w, ':');
	w->need_comma = false;
}

void json_strn(struct json_writer *w, const char *s, size_t n)
{
	before_value(w);
	put_string(w, s ? s : "", s ? n : 0);
}

void json_str(struct json_writer *w, const char *s)
{
	if (!s) {
		json_null(w);
		return;
	}
	json_strn(w, s, strlen(s));
}

void json_int(struct json_writer *w, int64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRId64, v);

	before_value(w);
	put(w, num, (size_t)n);
}

void json_uint(struct json_writer *w, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%" PRIu64, v);

	before_value(w);
	put(w, num, (size_t)n);
}

void json_double(struct json_writer *w, double v, int decimals)
{
	char num[352]; /* %.*f of DBL_MAX has 309 digits before the point */
	int n;

	if (!isfinite(v)) {
		json_null(w);
		return;
	}
	if (decimals < 0)
		decimals = 0;
	if (decimals > 17)
		decimals = 17;
	n = snprintf(num, sizeof(num), "%.*f", decimals, v);
	if (n < 0 || (size_t)n >= sizeof(num)) {
		json_null(w);
		return;
	}
	before_value(w);
	put(w, num, (size_t)n);
}

void json_number(struct json_writer *w, double v)
{
	char num[32];
	int n;

	if (!isfinite(v)) {
		json_null(w);
		return;
	}
	/* the shorter form when it reads back exactly (0.1, not 0.10000000000000001) */
	n = snprintf(num, sizeof(num), "%.15g", v);
	if (strtod(num, NULL) != v)
		n = snprintf(num, sizeof(num), "%.17g", v);
	before_value(w);
	put(w, num, (size_t)n);
}

void json_bool(struct json_writer *w, bool v)
{
	before_value(w);
	if (v)
		put(w, "true", 4);
	else
		put(w, "false", 5);
}

void json_null(struct json_writer *w)
{
	before_value(w);
	put(w, "null", 4);
}

void json_kv_str(struct json_writer *w, const char *key, const char *s)
{
	json_key(w, key);
	json_str(w, s);
}

void json_kv_strn(struct json_writer *w, const char *key, const char *s, size_t n)
{
	json_key(w, key);
	json_strn(w, s, n);
}

void json_kv_int(struct json_writer *w, const char *key, int64_t v)
{
	json_key(w, key);
	json_int(w, v);
}

void json_kv_uint(struct json_writer *w, const char *key, uint64_t v)
{
	json_key(w, key);
	json_uint(w, v);
}

void json_kv_bool(struct json_writer *w, const char *key, bool v)
{
	json_key(w, key);
	json_bool(w, v);
}
