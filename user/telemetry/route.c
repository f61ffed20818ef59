/* route.c — route templates for http.route: the id-segment heuristic and the
 * table of user route patterns. Everything works on bounded views of the
 * input path; nothing is allocated per request. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/route.h"

/* Segments longer than this are never readable words. */
#define SEGMENT_LONG 40
/* Ids with digits are at least this long; shorter ones ("v1", "ipv6") stay. */
#define SEGMENT_ID_MIN 8
#define PATTERN_MAX    256

struct out_buf {
	char *data;
	size_t cap;
	size_t len;
	bool overflow;
};

static void out_append(struct out_buf *o, const char *s, size_t n)
{
	if (o->overflow || n >= o->cap - o->len) {
		o->overflow = true;
		return;
	}
	memcpy(o->data + o->len, s, n);
	o->len += n;
	o->data[o->len] = '\0';
}

static int out_finish(struct out_buf *o)
{
	if (o->overflow) {
		o->data[0] = '\0';
		return -ENOSPC;
	}
	return (int)o->len;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_upper(char c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_alpha(char c)
{
	return is_lower(c) || is_upper(c);
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_word_sep(char c)
{
	return c == '-' || c == '_' || c == '.';
}

/* The path part of a request-target: absolute-form loses scheme and
 * authority; query and fragment are cut. */
static void path_extract(const char *target, const char **path, size_t *len)
{
	const char *p = target;
	size_t n;

	if (is_alpha(p[0])) {
		const char *q = p + 1;

		while (is_alpha(*q) || is_digit(*q) || *q == '+' || *q == '-' || *q == '.')
			q++;
		if (q[0] == ':' && q[1] == '/' && q[2] == '/') {
			p = q + 3 + strcspn(q + 3, "/?#");
		}
	}
	n = strcspn(p, "?#");
	*path = p;
	*len = n;
}

/* Splits the path into segments (offsets into path). Returns how many, at
 * most max; *more is set when segments were left over. */
static size_t path_segments(const char *path, size_t len, const char **seg, size_t *seg_len,
                            size_t max, bool *more)
{
	size_t i = 0, n = 0;

	*more = false;
	if (len > 0 && path[0] == '/')
		i = 1;
	for (;;) {
		size_t start = i;

		while (i < len && path[i] != '/')
			i++;
		if (n == max) {
			*more = true;
			return n;
		}
		seg[n] = path + start;
		seg_len[n] = i - start;
		n++;
		if (i >= len)
			return n;
		i++; /* the '/' */
	}
}

/* One '-'/'_'/'.'-separated part of a segment that has digits: does it look
 * generated rather than written by a person? */
static bool part_is_generated(const char *s, size_t n)
{
	size_t digits = 0, digit_runs = 0, run = 0, longest_run = 0, lower_to_upper = 0;

	for (size_t i = 0; i < n; i++) {
		if (is_digit(s[i])) {
			digits++;
			if (run == 0)
				digit_runs++;
			run++;
			if (run > longest_run)
				longest_run = run;
		} else {
			run = 0;
		}
		if (i > 0 && is_lower(s[i - 1]) && is_upper(s[i]))
			lower_to_upper++;
	}
	if (digits == 0)
		return false;
	if (digits == n)
		return true; /* "2024", "00042" */
	/* "order12345", "a1b2c3d4", "dQw4w9WgXcQ" */
	return longest_run >= 3 || digit_runs >= 3 || lower_to_upper >= 2;
}

/* Is this path segment a value (id, number, name) rather than a fixed word? */
static bool segment_is_variable(const char *s, size_t n)
{
	size_t digits = 0, hyphens = 0, hex_digits = 0;
	bool only_numeric = true, only_hex = true;
	size_t core = n;

	if (n == 0)
		return false;
	if (n > SEGMENT_LONG)
		return true;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		/* '@' (e-mail), '%' (encoded text), ':', '+', '=', ',', '~',
		 * non-ASCII and anything else unusual: a value. */
		if (!is_alpha(c) && !is_digit(c) && !is_word_sep(c))
			return true;
		if (is_digit(c))
			digits++;
		if (c == '-')
			hyphens++;
		if (!is_digit(c) && !is_word_sep(c))
			only_numeric = false;
	}
	if (digits == 0)
		return hyphens >= 3; /* a slug: "how-to-train-your-dragon" */
	if (only_numeric)
		return true; /* numbers, dates, times, versions, addresses */

	/* Leave out a file extension: "3f2a9c1b.js", "report-2024.pdf". */
	for (size_t i = n; i-- > 1;) {
		if (s[i] == '.') {
			size_t ext = n - i - 1;
			bool alpha = false, ok = ext >= 1 && ext <= 5;

			for (size_t j = i + 1; ok && j < n; j++) {
				ok = is_alpha(s[j]) || is_digit(s[j]);
				alpha = alpha || is_alpha(s[j]);
			}
			if (ok && alpha)
				core = i;
			break;
		}
	}
	digits = 0;
	for (size_t i = 0; i < core; i++) {
		if (is_digit(s[i]))
			digits++;
		if (is_hex(s[i]))
			hex_digits++;
		else if (s[i] != '-')
			only_hex = false;
	}
	if (digits == 0)
		return false; /* "mp3" was an extension: "song.mp3" */
	/* UUIDs, hashes, hex object ids. */
	if (only_hex && hex_digits >= SEGMENT_ID_MIN)
		return true;
	if (core < SEGMENT_ID_MIN)
		return false; /* "v1", "v2beta", "ipv6", "oauth2" */
	for (size_t i = 0; i < core;) {
		size_t j = i;

		while (j < core && !is_word_sep(s[j]))
			j++;
		if (part_is_generated(s + i, j - i))
			return true;
		i = j + 1;
	}
	return false;
}

int route_from_path(const char *path, char *out, size_t out_len)
{
	const char *seg[ROUTE_MAX_SEGMENTS];
	size_t seg_len[ROUTE_MAX_SEGMENTS];
	struct out_buf o = {.data = out, .cap = out_len};
	const char *p;
	size_t len, n;
	bool more;

	if (!path || !out || out_len == 0)
		return -EINVAL;
	out[0] = '\0';
	if (strcmp(path, "*") == 0) {
		out_append(&o, "*", 1);
		return out_finish(&o);
	}
	path_extract(path, &p, &len);
	n = path_segments(p, len, seg, seg_len, ROUTE_MAX_SEGMENTS, &more);
	if (more)
		n = ROUTE_MAX_SEGMENTS - 1;
	for (size_t i = 0; i < n; i++) {
		/* Matrix parameters (";jsessionid=...") are not part of the route. */
		const char *semi = memchr(seg[i], ';', seg_len[i]);
		size_t sl = semi ? (size_t)(semi - seg[i]) : seg_len[i];

		out_append(&o, "/", 1);
		if (segment_is_variable(seg[i], sl))
			out_append(&o, "*", 1);
		else
			out_append(&o, seg[i], sl);
	}
	if (more)
		out_append(&o, "/*", 2);
	return out_finish(&o);
}

/* ---- the route table ---- */

enum pattern_seg_type {
	PATTERN_LITERAL,
	PATTERN_PARAM, /* {name} or :name, one non-empty segment */
	PATTERN_STAR,  /* *, one segment */
	PATTERN_REST,  /* * as the last segment: everything that follows */
};

struct pattern_seg {
	uint8_t type;
	uint16_t off; /* into the pattern text */
	uint16_t len;
};

struct route_pattern {
	char *text;
	size_t n_segs;
	struct pattern_seg segs[ROUTE_MAX_SEGMENTS];
};

/* The routes of recently seen request-targets: a request-target maps to one
 * route until the patterns change, and most services see few distinct
 * targets, so a small direct-mapped cache skips the segment heuristics. */
#define ROUTE_CACHE_SLOTS 128
#define ROUTE_CACHE_TEXT  96 /* targets and routes up to this length, NUL included */

struct route_cache_slot {
	uint8_t target_len; /* 0: empty */
	uint8_t route_len;
	char target[ROUTE_CACHE_TEXT];
	char route[ROUTE_CACHE_TEXT];
};

struct route_cache {
	struct route_cache_slot slot[ROUTE_CACHE_SLOTS];
};

struct route_table {
	struct route_cache *cache; /* allocated by the first match */
	struct route_pattern *patterns;
	size_t n;
	size_t cap;
};

struct route_table *route_table__new(void)
{
	return calloc(1, sizeof(struct route_table));
}

void route_table__free(struct route_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n; i++)
		free(t->patterns[i].text);
	free(t->patterns);
	free(t->cache);
	free(t);
}

size_t route_table_count(const struct route_table *t)
{
	return t ? t->n : 0;
}

static int pattern_parse(const char *text, struct route_pattern *pat)
{
	const char *seg[ROUTE_MAX_SEGMENTS];
	size_t seg_len[ROUTE_MAX_SEGMENTS];
	size_t len = strlen(text), n;
	bool more;

	if (text[0] != '/' || len >= PATTERN_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];

		if (c <= ' ' || c == 0x7f || c == '?' || c == '#' || c == ',')
			return -EINVAL;
	}
	n = path_segments(text, len, seg, seg_len, ROUTE_MAX_SEGMENTS, &more);
	if (more)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		const char *s = seg[i];
		size_t sl = seg_len[i];
		struct pattern_seg *ps = &pat->segs[i];
		bool braced = sl >= 1 && s[0] == '{';

		ps->off = (uint16_t)(s - text);
		ps->len = (uint16_t)sl;
		if (braced || (sl >= 1 && s[0] == ':')) {
			size_t name_end = braced ? sl - 1 : sl;

			if ((braced && s[sl - 1] != '}') || name_end < 2)
				return -EINVAL;
			for (size_t j = 1; j < name_end; j++) {
				if (s[j] == '{' || s[j] == '}' || s[j] == '*')
					return -EINVAL;
			}
			ps->type = PATTERN_PARAM;
		} else if (sl == 1 && s[0] == '*') {
			ps->type = i + 1 == n ? PATTERN_REST : PATTERN_STAR;
		} else {
			if (memchr(s, '{', sl) || memchr(s, '}', sl) || memchr(s, '*', sl))
				return -EINVAL;
			ps->type = PATTERN_LITERAL;
		}
	}
	pat->n_segs = n;
	return 0;
}

int route_table_add(struct route_table *t, const char *pattern)
{
	struct route_pattern pat = {0};
	int err;

	if (!t || !pattern)
		return -EINVAL;
	err = pattern_parse(pattern, &pat);
	if (err)
		return err;
	if (t->n == ROUTE_MAX_PATTERNS)
		return -ENOSPC;
	free(t->cache); /* cached routes may change */
	t->cache = NULL;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct route_pattern *grown = realloc(t->patterns, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		t->patterns = grown;
		t->cap = cap;
	}
	pat.text = strdup(pattern);
	if (!pat.text)
		return -ENOMEM;
	t->patterns[t->n++] = pat;
	return 0;
}

int route_table_add_list(struct route_table *t, const char *list)
{
	char one[PATTERN_MAX];

	if (!t || !list)
		return -EINVAL;
	while (*list) {
		size_t n = strcspn(list, ",");
		const char *s = list, *e = list + n;
		int err;

		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e > s) {
			if ((size_t)(e - s) >= sizeof(one))
				return -EINVAL;
			memcpy(one, s, (size_t)(e - s));
			one[e - s] = '\0';
			err = route_table_add(t, one);
			if (err)
				return err;
		}
		list += n;
		if (*list == ',')
			list++;
	}
	return 0;
}

static bool pattern_matches(const struct route_pattern *pat, const char *const *seg,
                            const size_t *seg_len, size_t n)
{
	/* "/users/{id}/orders" also matches "/users/5/orders/". */
	if (n > pat->n_segs && n == pat->n_segs + 1 && seg_len[n - 1] == 0 &&
	    pat->segs[pat->n_segs - 1].type != PATTERN_REST)
		n--;
	for (size_t i = 0; i < pat->n_segs; i++) {
		const struct pattern_seg *ps = &pat->segs[i];

		if (ps->type == PATTERN_REST)
			return n >= i + 1;
		if (i >= n)
			return false;
		switch (ps->type) {
		case PATTERN_LITERAL:
			if (seg_len[i] != ps->len || memcmp(seg[i], pat->text + ps->off, ps->len))
				return false;
			break;
		case PATTERN_PARAM:
			if (seg_len[i] == 0)
				return false;
			break;
		default: /* PATTERN_STAR */
			break;
		}
	}
	return n == pat->n_segs;
}

static int match_uncached(const struct route_table *t, const char *path, char *out, size_t out_len)
{
	const char *seg[ROUTE_MAX_SEGMENTS];
	size_t seg_len[ROUTE_MAX_SEGMENTS];
	const char *p;
	size_t len, n;
	bool more;

	if (t->n == 0 || strcmp(path, "*") == 0)
		return route_from_path(path, out, out_len);
	path_extract(path, &p, &len);
	n = path_segments(p, len, seg, seg_len, ROUTE_MAX_SEGMENTS, &more);
	if (!more) {
		for (size_t i = 0; i < t->n; i++) {
			if (pattern_matches(&t->patterns[i], seg, seg_len, n)) {
				struct out_buf o = {.data = out, .cap = out_len};

				out[0] = '\0';
				out_append(&o, t->patterns[i].text, strlen(t->patterns[i].text));
				return out_finish(&o);
			}
		}
	}
	return route_from_path(path, out, out_len);
}

/* FNV-1a of the target's bytes and its length, or -1 when it is too long to cache. */
static int target_hash(const char *path, size_t *len, uint32_t *hash)
{
	uint32_t h = 2166136261u;
	size_t n;

	for (n = 0; path[n]; n++) {
		if (n == ROUTE_CACHE_TEXT - 1)
			return -1;
		h = (h ^ (uint8_t)path[n]) * 16777619u;
	}
	*len = n;
	*hash = h;
	return 0;
}

int route_table_match(struct route_table *t, const char *path, char *out, size_t out_len)
{
	struct route_cache_slot *slot;
	uint32_t hash;
	size_t len;
	int rc;

	if (!path || !out || out_len == 0)
		return -EINVAL;
	if (!t)
		return route_from_path(path, out, out_len);
	if (!path[0] || target_hash(path, &len, &hash) < 0)
		return match_uncached(t, path, out, out_len);
	if (!t->cache) {
		t->cache = calloc(1, sizeof(*t->cache));
		if (!t->cache)
			return match_uncached(t, path, out, out_len);
	}
	slot = &t->cache->slot[hash % ROUTE_CACHE_SLOTS];
	if (slot->target_len == len && !memcmp(slot->target, path, len) &&
	    slot->route_len < out_len) {
		memcpy(out, slot->route, (size_t)slot->route_len + 1);
		return slot->route_len;
	}
	rc = match_uncached(t, path, out, out_len);
	if (rc >= 0 && rc < ROUTE_CACHE_TEXT) {
		slot->target_len = (uint8_t)len;
		slot->route_len = (uint8_t)rc;
		memcpy(slot->target, path, len);
		memcpy(slot->route, out, (size_t)rc + 1);
	}
	return rc;
}
