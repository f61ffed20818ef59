/* span.c — attribute storage for struct span (span.h): values live in the
 * span's own arena, so a span is copied with a memcpy plus one resource
 * reference and can cross to the exporter thread. */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "telemetry/resource.h"
#include "telemetry/span.h"

void span_init(struct span *s)
{
	/* ids, times, kind and status zeroed; the string buffers, the attribute
	 * slots and the arena are written before they are read (their NULs,
	 * n_attrs and arena_used say how far), so they are not cleared */
	memset(s, 0, offsetof(struct span, name));
	s->name[0] = '\0';
	s->status_message[0] = '\0';
	s->trace_state[0] = '\0';
	s->resource = NULL;
	s->n_attrs = 0;
	s->arena_used = 0;
}

void span_release(struct span *s)
{
	if (!s)
		return;
	resource_unref(s->resource);
	s->resource = NULL;
}

void span_copy(struct span *dst, const struct span *src)
{
	if (dst == src)
		return;
	/* everything before the arena, then only the part of it in use */
	memcpy(dst, src, offsetof(struct span, arena));
	memcpy(dst->arena, src->arena,
	       src->arena_used < SPAN_ARENA_SIZE ? src->arena_used : SPAN_ARENA_SIZE);
	dst->arena[SPAN_ARENA_SIZE - 1] = '\0';
	resource_ref(dst->resource);
}

/* The slot for key: its existing attribute (replaced), or a new one. */
/* Keys are mostly the same string literals: pointers first, then a cheap
 * first-byte test before the full comparison. */
static inline bool key_equal(const char *a, const char *b)
{
	return a == b || (a[0] == b[0] && !strcmp(a, b));
}

static struct span_attr *attr_slot(struct span *s, const char *key, bool replace)
{
	struct span_attr *a;

	for (uint16_t i = 0; replace && i < s->n_attrs; i++)
		if (key_equal(s->attrs[i].key, key))
			return &s->attrs[i];
	if (s->n_attrs >= SPAN_MAX_ATTRS)
		return NULL;
	a = &s->attrs[s->n_attrs++];
	memset(a, 0, sizeof(*a));
	a->key = key;
	return a;
}

/* The longest prefix of value[0..len) no longer than max that does not end
 * inside a UTF-8 sequence. */
static size_t utf8_cut(const char *value, size_t len, size_t max)
{
	size_t cut;

	if (len <= max)
		return len;
	/* value[max] is the first byte left out: if it continues a sequence,
	 * leave out that sequence's earlier bytes too (at most 3) */
	cut = max;
	while (cut > 0 && max - cut < 3 && ((unsigned char)value[cut] & 0xC0) == 0x80)
		cut--;
	return cut;
}

static int put_strn(struct span *s, const char *key, const char *value, size_t len, bool replace)
{
	struct span_attr *a;
	size_t room;

	if (!key)
		return -EINVAL;
	if (!value)
		len = 0;
	a = attr_slot(s, key, replace);
	if (!a)
		return -ENOSPC;
	a->type = SPAN_ATTR_STR;
	a->i = 0;
	/* each value needs its bytes plus a NUL; the arena's last byte stays a
	 * NUL for values that find no room (they read as "") */
	room = s->arena_used < SPAN_ARENA_SIZE - 1 ? SPAN_ARENA_SIZE - 1 - s->arena_used : 0;
	if (room == 0) {
		a->off = SPAN_ARENA_SIZE - 1;
		a->len = 0;
		s->arena[SPAN_ARENA_SIZE - 1] = '\0';
		return 0;
	}
	len = utf8_cut(value, len, room - 1);
	a->off = s->arena_used;
	a->len = (uint16_t)len;
	if (len)
		memcpy(s->arena + a->off, value, len);
	s->arena[a->off + len] = '\0';
	s->arena_used = (uint16_t)(s->arena_used + len + 1);
	return 0;
}

int span_set_strn(struct span *s, const char *key, const char *value, size_t len)
{
	return put_strn(s, key, value, len, true);
}

int span_set_str(struct span *s, const char *key, const char *value)
{
	return put_strn(s, key, value, value ? strlen(value) : 0, true);
}

int span_add_str_slow(struct span *s, const char *key, const char *value, size_t len)
{
	return put_strn(s, key, value, len, false);
}

static int put_int(struct span *s, const char *key, int64_t value, bool replace)
{
	struct span_attr *a = key ? attr_slot(s, key, replace) : NULL;

	if (!a)
		return key ? -ENOSPC : -EINVAL;
	a->type = SPAN_ATTR_INT;
	a->off = a->len = 0;
	a->i = value;
	return 0;
}

int span_set_int(struct span *s, const char *key, int64_t value)
{
	return put_int(s, key, value, true);
}

int span_add_int_slow(struct span *s, const char *key, int64_t value)
{
	return put_int(s, key, value, false);
}

int span_set_bool(struct span *s, const char *key, bool value)
{
	struct span_attr *a = key ? attr_slot(s, key, true) : NULL;

	if (!a)
		return key ? -ENOSPC : -EINVAL;
	a->type = SPAN_ATTR_BOOL;
	a->off = a->len = 0;
	a->i = 0;
	a->b = value;
	return 0;
}

int span_set_double(struct span *s, const char *key, double value)
{
	struct span_attr *a = key ? attr_slot(s, key, true) : NULL;

	if (!a)
		return key ? -ENOSPC : -EINVAL;
	a->type = SPAN_ATTR_DOUBLE;
	a->off = a->len = 0;
	a->d = value;
	return 0;
}

const char *span_attr_str(const struct span *s, const struct span_attr *a)
{
	if (!a || a->type != SPAN_ATTR_STR || a->len == 0 || a->off >= SPAN_ARENA_SIZE)
		return "";
	return s->arena + a->off;
}

const struct span_attr *span_find_attr(const struct span *s, const char *key)
{
	for (uint16_t i = 0; i < s->n_attrs && i < SPAN_MAX_ATTRS; i++)
		if (key_equal(s->attrs[i].key, key))
			return &s->attrs[i];
	return NULL;
}

const char *span_kind_name(enum span_kind k)
{
	switch (k) {
	case SPAN_KIND_INTERNAL:
		return "INTERNAL";
	case SPAN_KIND_SERVER:
		return "SERVER";
	case SPAN_KIND_CLIENT:
		return "CLIENT";
	}
	return "UNSPECIFIED";
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xF];
	}
	out[2 * n] = '\0';
}
