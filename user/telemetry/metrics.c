/* metrics.c — the RED metrics registry: instruments, series hashed by
 * (resource, sorted attribute set), cardinality limit with overflow series,
 * cumulative and delta state, the HTTP/DB recording helpers and the agent's
 * self metrics. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telemetry/histogram.h"
#include "telemetry/metrics.h"
#include "telemetry/resource.h"

#define NAME_MAX_LEN        255
#define UNIT_MAX_LEN        63
#define DESCRIPTION_MAX_LEN 1023

/* OTel HTTP semantic conventions: http.{server,client}.request.duration. */
static const double http_duration_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                              0.5,   0.75, 1,     2.5,  5,     7.5, 10};
/* db.client.operation.duration. */
static const double db_duration_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10};
/* rpc.{server,client}.duration (semantic conventions up to v1.37: ms). */
static const double rpc_duration_bounds[] = {0,   5,   10,   25,   50,   75,   100,  250,
                                             500, 750, 1000, 2500, 5000, 7500, 10000};
/* Body sizes: the conventions give no buckets; powers of four from 64 B to 16 MiB. */
static const double body_size_bounds[] = {0,     64,     256,     1024,    4096,    16384,
                                          65536, 262144, 1048576, 4194304, 16777216};

#define N_BOUNDS(a) (sizeof(a) / sizeof((a)[0]))

struct series {
	uint64_t hash;
	struct resource *resource; /* the resource entry holds the reference */
	size_t resource_index;
	size_t n_attrs;
	struct metric_attr *attrs; /* inside this allocation, strings too */
	bool overflow;
	bool dirty; /* measurements since the last delta commit */
	uint64_t start_ns;
	uint64_t delta_start_ns;
	uint64_t last_update_ns;
	struct histogram *cum;
	struct histogram *delta; /* registries with .delta only */
	double value;            /* counter (cumulative) or gauge */
	double committed_value;  /* counter value at the last delta commit */
};

struct instrument {
	char *name;
	char *unit;
	char *description;
	enum metric_kind kind;
	bool is_int;
	double *bounds;
	size_t n_bounds;
	struct series **series;
	size_t n_series;
	size_t cap_series;
	size_t n_regular; /* series other than the overflow ones */
	uint32_t *index;  /* open addressing: series index + 1, 0 is empty */
	size_t index_cap; /* a power of two, > 2 * n_series */
};

struct resource_entry {
	struct resource *resource; /* one reference */
	size_t uses;               /* series on it */
};

struct metrics {
	size_t limit;
	bool delta;
	struct resource *self_resource;
	struct instrument *inst[METRICS_MAX_INSTRUMENTS];
	size_t n_inst;
	struct resource_entry *resources;
	size_t n_resources;
	size_t cap_resources;
	int http_server_duration;
	int http_client_duration;
	int http_server_request_size;
	int http_server_response_size;
	int http_client_request_size;
	int http_client_response_size;
	int db_client_duration;
	int rpc_server_duration;
	int rpc_client_duration;
	uint64_t generation; /* bumped whenever series are freed: cached pointers die */
	struct sample_cache_entry *cache; /* METRICS_CACHE_SLOTS entries */
	uint64_t delta_start_ns;          /* the last metrics_delta_commit time */
};

/* A direct-mapped cache from a measurement's raw inputs (resource, kind and
 * attribute values, packed into a key) to the series they land in, so the
 * common case skips canonicalising, hashing and comparing the attributes. */
#define METRICS_CACHE_SLOTS   256
#define METRICS_CACHE_KEY_MAX 200
#define METRICS_CACHE_INSTS   3

struct sample_key {
	size_t len;
	bool too_long;
	uint8_t buf[METRICS_CACHE_KEY_MAX];
};

struct sample_cache_entry {
	uint64_t hash;
	uint64_t generation; /* 0: empty */
	struct series *series[METRICS_CACHE_INSTS];
	uint16_t key_len;
	uint8_t key[METRICS_CACHE_KEY_MAX];
};

/* Attributes of one measurement after filtering, sanitising and sorting. */
struct attr_scratch {
	struct metric_attr attrs[METRICS_MAX_ATTRS];
	size_t n;
	char values[METRICS_MAX_ATTRS][METRICS_ATTR_VALUE_MAX];
};

uint64_t metrics_now_unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The time of a span's measurement. The coarse clock (the last timer tick,
 * never ahead of the fine one) costs a fraction of a fine read, which can be a
 * system call in a VM; it is held at or after the last delta commit so delta
 * intervals never overlap. */
static uint64_t sample_now_unix_ns(const struct metrics *m)
{
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	now = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	return now > m->delta_start_ns ? now : m->delta_start_ns;
}

/* ---- strings ---- */

size_t metrics_utf8_char_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void metrics_utf8_sanitize(const char *in, char *out, size_t cap)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n, i = 0, o = 0;

	/* the common case: printable ASCII, copied as is */
	while (s[i] >= 0x20 && s[i] < 0x7f && i + 1 < cap)
		i++;
	if (!s[i]) {
		memcpy(out, in, i + 1);
		return;
	}
	memcpy(out, in, i);
	o = i;
	n = i + strlen(in + i);
	while (i < n) {
		size_t len = metrics_utf8_char_len(s + i, n - i);

		if (len == 0 || (len == 1 && (s[i] < 0x20 || s[i] == 0x7f))) {
			if (o + 1 >= cap)
				break;
			out[o++] = '?';
			i++;
			continue;
		}
		if (o + len >= cap)
			break;
		memcpy(out + o, s + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
}

static uint64_t hash_bytes(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	uint64_t w;

	for (; n >= 8; n -= 8, p += 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 31;
	}
	w = 0;
	memcpy(&w, p, n);
	h = (h ^ w ^ ((uint64_t)n << 56)) * 0x9e3779b97f4a7c15ULL;
	return h ^ (h >> 29);
}

static uint64_t series_key_hash(const struct resource *r, const struct metric_attr *attrs, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	uintptr_t rp = (uintptr_t)r;

	h = hash_bytes(h, &rp, sizeof(rp));
	for (size_t i = 0; i < n; i++) {
		h = hash_bytes(h, attrs[i].key, strlen(attrs[i].key) + 1);
		h = hash_bytes(h, &attrs[i].type, 1);
		if (attrs[i].type == METRIC_ATTR_STR)
			h = hash_bytes(h, attrs[i].str, strlen(attrs[i].str) + 1);
		else
			h = hash_bytes(h, &attrs[i].num, sizeof(attrs[i].num));
	}
	/* Mix the high bits down: the index uses the low ones. */
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 32;
	return h;
}

static bool attrs_equal(const struct metric_attr *a, size_t na, const struct metric_attr *b,
                        size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (a[i].type != b[i].type || strcmp(a[i].key, b[i].key) != 0)
			return false;
		if (a[i].type == METRIC_ATTR_STR ? strcmp(a[i].str, b[i].str) != 0
		                                 : a[i].num != b[i].num)
			return false;
	}
	return true;
}

/* Filters out absent attributes, sanitises values, sorts by key, keeps the
 * first of duplicate keys. */
static int attrs_canonical(const struct metric_attr *in, size_t n_in, struct attr_scratch *out)
{
	out->n = 0;
	if (n_in && !in)
		return -EINVAL;
	for (size_t i = 0; i < n_in; i++) {
		const struct metric_attr *a = &in[i];
		struct metric_attr *dst;
		size_t pos, key_len;
		bool dup = false;

		if (!a->key || (a->type == METRIC_ATTR_STR && !a->str))
			continue;
		key_len = strlen(a->key);
		if (key_len == 0 || key_len > METRICS_ATTR_KEY_MAX || a->type > METRIC_ATTR_BOOL)
			return -EINVAL;
		/* Insertion sort of the small attrs array; each value is written
		 * once into its own buffer (slot n), which its attr points at. A
		 * key equal to its sorted neighbour is a duplicate. */
		int cmp = 1;

		pos = out->n;
		while (pos > 0 && (cmp = strcmp(out->attrs[pos - 1].key, a->key)) > 0)
			pos--;
		dup = pos > 0 && cmp == 0;
		if (dup)
			continue;
		if (out->n == METRICS_MAX_ATTRS)
			return -EINVAL;
		memmove(&out->attrs[pos + 1], &out->attrs[pos],
		        (out->n - pos) * sizeof(out->attrs[0]));
		dst = &out->attrs[pos];
		*dst = *a;
		if (a->type == METRIC_ATTR_STR) {
			metrics_utf8_sanitize(a->str, out->values[out->n], METRICS_ATTR_VALUE_MAX);
			dst->str = out->values[out->n];
		} else {
			dst->str = NULL;
			if (a->type == METRIC_ATTR_BOOL)
				dst->num = a->num ? 1 : 0;
		}
		out->n++;
	}
	return 0;
}

static bool name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	if (!((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-' || c == '/'))
			return false;
	}
	return true;
}

/* ---- resources ---- */

static int resource_use(struct metrics *m, struct resource *r, size_t *index)
{
	for (size_t i = 0; i < m->n_resources; i++) {
		if (m->resources[i].resource == r) {
			m->resources[i].uses++;
			*index = i;
			return 0;
		}
	}
	if (m->n_resources == m->cap_resources) {
		size_t cap = m->cap_resources ? m->cap_resources * 2 : 8;
		struct resource_entry *grown = realloc(m->resources, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		m->resources = grown;
		m->cap_resources = cap;
	}
	m->resources[m->n_resources].resource = r ? resource_ref(r) : NULL;
	m->resources[m->n_resources].uses = 1;
	*index = m->n_resources++;
	return 0;
}

/* Drops resource entries without series and renumbers the series' indices. */
static void resources_compact(struct metrics *m)
{
	size_t *remap = malloc((m->n_resources + 1) * sizeof(*remap));
	size_t j = 0;

	if (!remap)
		return; /* entries without series stay until the next try */
	for (size_t i = 0; i < m->n_resources; i++) {
		if (m->resources[i].uses == 0) {
			resource_unref(m->resources[i].resource);
			continue;
		}
		remap[i] = j;
		m->resources[j++] = m->resources[i];
	}
	if (j != m->n_resources) {
		m->n_resources = j;
		for (size_t k = 0; k < m->n_inst; k++) {
			struct instrument *in = m->inst[k];

			for (size_t s = 0; s < in->n_series; s++)
				in->series[s]->resource_index =
				    remap[in->series[s]->resource_index];
		}
	}
	free(remap);
}

/* ---- series ---- */

static void series_free(struct series *s)
{
	if (!s)
		return;
	histogram__free(s->cum);
	histogram__free(s->delta);
	free(s);
}

static struct series *series_new(const struct metrics *m, const struct instrument *in,
                                 struct resource *r, const struct metric_attr *attrs, size_t n,
                                 uint64_t hash, uint64_t now)
{
	size_t strings = 0, off;
	struct series *s;
	char *text;

	for (size_t i = 0; i < n; i++) {
		strings += strlen(attrs[i].key) + 1;
		if (attrs[i].type == METRIC_ATTR_STR)
			strings += strlen(attrs[i].str) + 1;
	}
	s = calloc(1, sizeof(*s) + n * sizeof(struct metric_attr) + strings);
	if (!s)
		return NULL;
	s->attrs = (struct metric_attr *)(s + 1);
	text = (char *)(s->attrs + n);
	off = 0;
	for (size_t i = 0; i < n; i++) {
		size_t kl = strlen(attrs[i].key) + 1;

		s->attrs[i] = attrs[i];
		memcpy(text + off, attrs[i].key, kl);
		s->attrs[i].key = text + off;
		off += kl;
		if (attrs[i].type == METRIC_ATTR_STR) {
			size_t vl = strlen(attrs[i].str) + 1;

			memcpy(text + off, attrs[i].str, vl);
			s->attrs[i].str = text + off;
			off += vl;
		}
	}
	s->n_attrs = n;
	s->hash = hash;
	s->resource = r;
	s->start_ns = now;
	s->delta_start_ns = now;
	s->last_update_ns = now;
	if (in->kind == METRIC_KIND_HISTOGRAM) {
		s->cum = histogram__new(in->bounds, in->n_bounds);
		if (m->delta)
			s->delta = histogram__new(in->bounds, in->n_bounds);
		if (!s->cum || (m->delta && !s->delta)) {
			series_free(s);
			return NULL;
		}
	}
	return s;
}

static void index_insert(struct instrument *in, size_t series_idx)
{
	size_t mask = in->index_cap - 1;
	size_t slot = (size_t)in->series[series_idx]->hash & mask;

	while (in->index[slot])
		slot = (slot + 1) & mask;
	in->index[slot] = (uint32_t)(series_idx + 1);
}

/* Re-inserts every series (after removals), in place. */
static void index_reset(struct instrument *in)
{
	memset(in->index, 0, in->index_cap * sizeof(*in->index));
	for (size_t i = 0; i < in->n_series; i++)
		index_insert(in, i);
}

static int index_rebuild(struct instrument *in, size_t cap)
{
	uint32_t *index = calloc(cap, sizeof(*index));

	if (!index)
		return -ENOMEM;
	free(in->index);
	in->index = index;
	in->index_cap = cap;
	for (size_t i = 0; i < in->n_series; i++)
		index_insert(in, i);
	return 0;
}

static struct series *series_lookup(const struct instrument *in, const struct resource *r,
                                    const struct metric_attr *attrs, size_t n, uint64_t hash,
                                    bool overflow)
{
	size_t mask, slot;

	if (!in->index_cap)
		return NULL;
	mask = in->index_cap - 1;
	for (slot = (size_t)hash & mask; in->index[slot]; slot = (slot + 1) & mask) {
		struct series *s = in->series[in->index[slot] - 1];

		if (s->hash == hash && s->resource == r && s->overflow == overflow &&
		    attrs_equal(s->attrs, s->n_attrs, attrs, n))
			return s;
	}
	return NULL;
}

static int series_add(struct metrics *m, struct instrument *in, struct series *s)
{
	int err;

	if (in->n_series == in->cap_series) {
		size_t cap = in->cap_series ? in->cap_series * 2 : 16;
		struct series **grown = realloc(in->series, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		in->series = grown;
		in->cap_series = cap;
	}
	if ((in->n_series + 1) * 2 >= in->index_cap) {
		err = index_rebuild(in, in->index_cap ? in->index_cap * 2 : 32);
		if (err)
			return err;
	}
	err = resource_use(m, s->resource, &s->resource_index);
	if (err)
		return err;
	in->series[in->n_series] = s;
	index_insert(in, in->n_series);
	in->n_series++;
	if (!s->overflow)
		in->n_regular++;
	return 0;
}

/* The series for (r, attrs), created if the cardinality limit allows, else
 * the overflow series of r. *overflowed tells which. */
static int series_get(struct metrics *m, struct instrument *in, struct resource *r,
                      const struct attr_scratch *a, uint64_t hash, uint64_t now,
                      struct series **out, bool *overflowed)
{
	static const struct metric_attr overflow_attr = {
	    .key = METRICS_OVERFLOW_ATTR, .type = METRIC_ATTR_BOOL, .num = 1};
	struct series *s = series_lookup(in, r, a->attrs, a->n, hash, false);
	int err;

	*overflowed = false;
	if (s) {
		*out = s;
		return 0;
	}
	if (in->n_regular + 1 < m->limit) {
		s = series_new(m, in, r, a->attrs, a->n, hash, now);
	} else {
		*overflowed = true;
		hash = series_key_hash(r, &overflow_attr, 1);
		s = series_lookup(in, r, &overflow_attr, 1, hash, true);
		if (s) {
			*out = s;
			return 0;
		}
		s = series_new(m, in, r, &overflow_attr, 1, hash, now);
		if (s)
			s->overflow = true;
	}
	if (!s)
		return -ENOMEM;
	err = series_add(m, in, s);
	if (err) {
		series_free(s);
		return err;
	}
	*out = s;
	return 0;
}

/* ---- registry ---- */

static void instrument_free(struct instrument *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n_series; i++)
		series_free(in->series[i]);
	free(in->series);
	free(in->index);
	free(in->name);
	free(in->unit);
	free(in->description);
	free(in->bounds);
	free(in);
}

static int instrument_add(struct metrics *m, const char *name, const char *unit,
                          const char *description, enum metric_kind kind, bool is_int,
                          const double *bounds, size_t n_bounds)
{
	struct instrument *in;
	struct histogram *check;

	if (!m || !name_valid(name))
		return -EINVAL;
	unit = unit ? unit : "";
	description = description ? description : "";
	if (strlen(unit) > UNIT_MAX_LEN || strlen(description) > DESCRIPTION_MAX_LEN)
		return -EINVAL;
	if (metrics_find(m, name) >= 0)
		return -EEXIST;
	if (m->n_inst == METRICS_MAX_INSTRUMENTS)
		return -ENOSPC;
	if (kind == METRIC_KIND_HISTOGRAM) {
		check = histogram__new(bounds, n_bounds);
		if (!check)
			return -errno;
		histogram__free(check);
	}
	in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->kind = kind;
	in->is_int = is_int;
	in->name = strdup(name);
	in->unit = strdup(unit);
	in->description = strdup(description);
	if (kind == METRIC_KIND_HISTOGRAM && n_bounds) {
		in->bounds = malloc(n_bounds * sizeof(double));
		if (in->bounds)
			memcpy(in->bounds, bounds, n_bounds * sizeof(double));
	}
	in->n_bounds = kind == METRIC_KIND_HISTOGRAM ? n_bounds : 0;
	if (!in->name || !in->unit || !in->description || (in->n_bounds && !in->bounds)) {
		instrument_free(in);
		return -ENOMEM;
	}
	m->inst[m->n_inst] = in;
	return (int)m->n_inst++;
}

int metrics_add_histogram(struct metrics *m, const char *name, const char *unit,
                          const char *description, const double *bounds, size_t n_bounds)
{
	return instrument_add(m, name, unit, description, METRIC_KIND_HISTOGRAM, false, bounds,
	                      n_bounds);
}

int metrics_add_counter(struct metrics *m, const char *name, const char *unit,
                        const char *description, bool is_int)
{
	return instrument_add(m, name, unit, description, METRIC_KIND_COUNTER, is_int, NULL, 0);
}

int metrics_add_gauge(struct metrics *m, const char *name, const char *unit,
                      const char *description, bool is_int)
{
	return instrument_add(m, name, unit, description, METRIC_KIND_GAUGE, is_int, NULL, 0);
}

int metrics_find(const struct metrics *m, const char *name)
{
	if (!m || !name)
		return -ENOENT;
	for (size_t i = 0; i < m->n_inst; i++) {
		if (strcmp(m->inst[i]->name, name) == 0)
			return (int)i;
	}
	return -ENOENT;
}

struct metrics *metrics__new(const struct metrics_options *opts)
{
	struct metrics *m = calloc(1, sizeof(*m));
	int id;

	if (!m)
		return NULL;
	m->limit = opts && opts->cardinality_limit ? opts->cardinality_limit
	                                           : METRICS_DEFAULT_CARDINALITY_LIMIT;
	m->delta = opts && opts->delta;
	if (opts && opts->self_resource)
		m->self_resource = resource_ref(opts->self_resource);
	m->generation = 1;
	m->cache = calloc(METRICS_CACHE_SLOTS, sizeof(*m->cache));
	if (!m->cache)
		goto fail;

#define ADD_HISTOGRAM(field, name, unit, desc, bounds)                                             \
	do {                                                                                       \
		id = metrics_add_histogram(m, name, unit, desc, bounds, N_BOUNDS(bounds));         \
		if (id < 0)                                                                        \
			goto fail;                                                                 \
		m->field = id;                                                                     \
	} while (0)

	ADD_HISTOGRAM(http_server_duration, "http.server.request.duration", "s",
	              "Duration of HTTP server requests.", http_duration_bounds);
	ADD_HISTOGRAM(http_client_duration, "http.client.request.duration", "s",
	              "Duration of HTTP client requests.", http_duration_bounds);
	ADD_HISTOGRAM(http_server_request_size, "http.server.request.body.size", "By",
	              "Size of HTTP server request bodies.", body_size_bounds);
	ADD_HISTOGRAM(http_server_response_size, "http.server.response.body.size", "By",
	              "Size of HTTP server response bodies.", body_size_bounds);
	ADD_HISTOGRAM(http_client_request_size, "http.client.request.body.size", "By",
	              "Size of HTTP client request bodies.", body_size_bounds);
	ADD_HISTOGRAM(http_client_response_size, "http.client.response.body.size", "By",
	              "Size of HTTP client response bodies.", body_size_bounds);
	ADD_HISTOGRAM(db_client_duration, "db.client.operation.duration", "s",
	              "Duration of database client operations.", db_duration_bounds);
	ADD_HISTOGRAM(rpc_server_duration, "rpc.server.duration", "ms",
	              "Measures the duration of inbound RPC.", rpc_duration_bounds);
	ADD_HISTOGRAM(rpc_client_duration, "rpc.client.duration", "ms",
	              "Measures the duration of outbound RPC.", rpc_duration_bounds);
#undef ADD_HISTOGRAM
	return m;
fail:
	metrics__free(m);
	return NULL;
}

void metrics__free(struct metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_inst; i++)
		instrument_free(m->inst[i]);
	for (size_t i = 0; i < m->n_resources; i++)
		resource_unref(m->resources[i].resource);
	free(m->resources);
	resource_unref(m->self_resource);
	free(m->cache);
	free(m);
}

size_t metrics_cardinality_limit(const struct metrics *m)
{
	return m->limit;
}

size_t metrics_series_count(const struct metrics *m)
{
	size_t n = 0;

	for (size_t i = 0; i < m->n_inst; i++)
		n += m->inst[i]->n_series;
	return n;
}

/* ---- recording ---- */

enum record_op {
	RECORD_MEASURE, /* histogram record, counter add, gauge set */
	RECORD_COUNTER_SET,
};

/* One measurement into series s of instrument in. */
static void series_record(const struct instrument *in, struct series *s, double value,
                          enum record_op op, uint64_t now, bool overflowed)
{
	s->last_update_ns = now;
	s->dirty = true;
	switch (in->kind) {
	case METRIC_KIND_HISTOGRAM:
		histogram_record(s->cum, value);
		if (s->delta)
			histogram_record(s->delta, value);
		break;
	case METRIC_KIND_COUNTER:
		if (op == RECORD_MEASURE) {
			s->value += value;
		} else if (!overflowed) {
			if (value < s->value) {
				/* The source restarted: a new cumulative stream. */
				s->start_ns = now;
				s->committed_value = 0;
			}
			s->value = value;
		}
		/* An absolute value that overflowed cannot be folded into a sum
		 * of several sources: it is left out. */
		break;
	case METRIC_KIND_GAUGE:
		s->value = value;
		break;
	}
}

/* Records value with attributes already canonical (attrs_canonical) and
 * hashed (series_key_hash); *found (if not NULL) gets the series. */
static int record_canonical(struct metrics *m, int instrument, struct resource *r,
                            const struct attr_scratch *canon, uint64_t hash, uint64_t now,
                            double value, enum record_op op, struct series **found)
{
	struct instrument *in;
	struct series *s;
	bool overflowed;
	int err;

	if (instrument < 0 || (size_t)instrument >= m->n_inst || !isfinite(value))
		return -EINVAL;
	in = m->inst[instrument];
	if (in->kind == METRIC_KIND_COUNTER && value < 0)
		return -EINVAL;
	if (op == RECORD_COUNTER_SET && in->kind != METRIC_KIND_COUNTER)
		return -EINVAL;
	err = series_get(m, in, r, canon, hash, now, &s, &overflowed);
	if (err)
		return err;
	if (found)
		*found = s;
	series_record(in, s, value, op, now, overflowed);
	return overflowed ? 1 : 0;
}

static int record(struct metrics *m, int instrument, struct resource *r,
                  const struct metric_attr *attrs, size_t n_attrs, double value, enum record_op op)
{
	struct attr_scratch canon;
	int err;

	if (!m)
		return -EINVAL;
	err = attrs_canonical(attrs, n_attrs, &canon);
	if (err)
		return err;
	return record_canonical(m, instrument, r, &canon, series_key_hash(r, canon.attrs, canon.n),
	                        metrics_now_unix_ns(), value, op, NULL);
}

int metrics_record(struct metrics *m, int instrument, struct resource *r,
                   const struct metric_attr *attrs, size_t n_attrs, double value)
{
	return record(m, instrument, r, attrs, n_attrs, value, RECORD_MEASURE);
}

int metrics_counter_set(struct metrics *m, int instrument, struct resource *r,
                        const struct metric_attr *attrs, size_t n_attrs, double value)
{
	return record(m, instrument, r, attrs, n_attrs, value, RECORD_COUNTER_SET);
}

static const char *http_method_name(const char *method)
{
	static const char *const known[] = {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS",
	                                    "PATCH",   "POST",   "PUT", "TRACE"};

	for (size_t i = 0; method && i < N_BOUNDS(known); i++) {
		if (method[0] == known[i][0] && strcmp(method, known[i]) == 0)
			return known[i];
	}
	return "_OTHER";
}

static struct metric_attr str_attr(const char *key, const char *value)
{
	struct metric_attr a = {.key = key, .type = METRIC_ATTR_STR, .str = value};

	return a;
}

static struct metric_attr int_attr(const char *key, int64_t value)
{
	struct metric_attr a = {.key = key, .type = METRIC_ATTR_INT, .num = value};

	return a;
}

static int first_error(int err, int ret)
{
	return err < 0 ? err : (ret < 0 ? ret : 0);
}

/* ---- the sample cache ---- */

static void key_put(struct sample_key *k, const void *data, size_t n)
{
	if (k->too_long || n > sizeof(k->buf) - k->len) {
		k->too_long = true;
		return;
	}
	memcpy(k->buf + k->len, data, n);
	k->len += n;
}

/* A key starting with the resource (by identity) and some numbers. */
static void key_start(struct sample_key *k, const struct resource *r, const int32_t *nums, size_t n)
{
	k->len = 0;
	k->too_long = false;
	key_put(k, &r, sizeof(r));
	key_put(k, nums, n * sizeof(*nums));
}

/* A string with its NUL, or one 0xff byte for NULL (never inside UTF-8 text
 * that is valid, and never confused with "" which is a lone NUL). */
static void key_put_str(struct sample_key *k, const char *str)
{
	static const uint8_t absent = 0xff;
	size_t room = sizeof(k->buf) - k->len, i = 0;
	uint8_t *dst = k->buf + k->len;

	if (!str) {
		key_put(k, &absent, 1);
		return;
	}
	if (k->too_long)
		return;
	/* short strings: copied byte by byte with their NUL, no strlen + memcpy */
	do {
		if (i == room) {
			k->too_long = true;
			return;
		}
		dst[i] = (uint8_t)str[i];
	} while (str[i++]);
	k->len += i;
}

/* record_sample when the cache knows the series of every instrument to
 * record (the usual case): the attributes are not needed. Returns false,
 * having recorded nothing, when it does not; else true with *err as
 * record_sample would return. */
static bool record_sample_cached(struct metrics *m, const struct sample_key *key,
                                 const int inst[METRICS_CACHE_INSTS],
                                 const double value[METRICS_CACHE_INSTS], int *err)
{
	const struct sample_cache_entry *e;
	uint64_t hash, now;

	if (key->too_long)
		return false;
	hash = hash_bytes(0x84222325cbf29ce4ULL, key->buf, key->len);
	e = &m->cache[hash & (METRICS_CACHE_SLOTS - 1)];
	if (e->generation != m->generation || e->hash != hash || e->key_len != key->len ||
	    memcmp(e->key, key->buf, key->len) != 0)
		return false;
	for (size_t i = 0; i < METRICS_CACHE_INSTS; i++)
		if (inst[i] >= 0 && isfinite(value[i]) && !e->series[i])
			return false;
	now = sample_now_unix_ns(m);
	*err = 0;
	for (size_t i = 0; i < METRICS_CACHE_INSTS; i++) {
		if (inst[i] < 0)
			continue;
		if (!isfinite(value[i])) {
			*err = first_error(*err, -EINVAL);
			continue;
		}
		series_record(m->inst[inst[i]], e->series[i], value[i], RECORD_MEASURE, now, false);
	}
	return true;
}

/* One measurement: up to METRICS_CACHE_INSTS instruments (inst[i] < 0: not
 * recorded) with the same attributes. The key must say everything the
 * attributes are built from, with the resource and the instruments. */
static int record_sample(struct metrics *m, struct resource *r, const struct sample_key *key,
                         const struct metric_attr *attrs, size_t n_attrs,
                         const int inst[METRICS_CACHE_INSTS],
                         const double value[METRICS_CACHE_INSTS])
{
	struct sample_cache_entry *e = NULL;
	struct attr_scratch canon;
	bool have_canon = false;
	uint64_t hash = 0, canon_hash = 0, now = sample_now_unix_ns(m);
	int err = 0;

	if (!key->too_long) {
		hash = hash_bytes(0x84222325cbf29ce4ULL, key->buf, key->len);
		e = &m->cache[hash & (METRICS_CACHE_SLOTS - 1)];
		if (e->generation != m->generation || e->hash != hash || e->key_len != key->len ||
		    memcmp(e->key, key->buf, key->len) != 0) {
			memset(e->series, 0, sizeof(e->series));
			e->generation = m->generation;
			e->hash = hash;
			e->key_len = (uint16_t)key->len;
			memcpy(e->key, key->buf, key->len);
		}
	}
	for (size_t i = 0; i < METRICS_CACHE_INSTS; i++) {
		struct series *s = NULL;
		int ret;

		if (inst[i] < 0)
			continue;
		if (!isfinite(value[i])) { /* as record_canonical refuses it */
			err = first_error(err, -EINVAL);
			continue;
		}
		if (e && e->series[i]) {
			/* histograms only: measuring never depends on overflow */
			series_record(m->inst[inst[i]], e->series[i], value[i], RECORD_MEASURE, now,
			              false);
			continue;
		}
		if (!have_canon) {
			ret = attrs_canonical(attrs, n_attrs, &canon);
			if (ret < 0)
				return ret;
			canon_hash = series_key_hash(r, canon.attrs, canon.n);
			have_canon = true;
		}
		ret = record_canonical(m, inst[i], r, &canon, canon_hash, now, value[i],
		                       RECORD_MEASURE, &s);
		err = first_error(err, ret);
		if (ret >= 0 && e && m->inst[inst[i]]->kind == METRIC_KIND_HISTOGRAM)
			e->series[i] = s;
	}
	return err;
}

int metrics_record_http(struct metrics *m, struct resource *r, const struct http_metric_sample *s)
{
	struct sample_key key;
	struct metric_attr attrs[8];
	char status_text[16];
	const char *error_type, *method;
	int inst[METRICS_CACHE_INSTS];
	double value[METRICS_CACHE_INSTS];
	int32_t nums[3];
	bool client;
	size_t n = 0;
	int err;

	if (!m || !s)
		return -EINVAL;
	client = s->kind == METRICS_HTTP_CLIENT;
	error_type = s->error_type;
	if (!error_type && s->status_code >= (client ? 400 : 500)) {
		snprintf(status_text, sizeof(status_text), "%d", s->status_code);
		error_type = status_text;
	}
	method = http_method_name(s->method);

	inst[0] = client ? m->http_client_duration : m->http_server_duration;
	inst[1] = s->request_body_size < 0 ? -1
	          : client                 ? m->http_client_request_size
	                                   : m->http_server_request_size;
	inst[2] = s->response_body_size < 0 ? -1
	          : client                  ? m->http_client_response_size
	                                    : m->http_server_response_size;
	value[0] = s->duration_s;
	value[1] = (double)s->request_body_size;
	value[2] = (double)s->response_body_size;

	nums[0] = inst[0];
	nums[1] = s->status_code;
	nums[2] = client ? s->server_port : 0;
	key_start(&key, r, nums, 3);
	key_put_str(&key, method);
	key_put_str(&key, s->route && s->route[0] ? s->route : NULL);
	key_put_str(&key, s->scheme);
	key_put_str(&key, s->protocol_version);
	key_put_str(&key, client ? s->server_address : NULL);
	key_put_str(&key, error_type);
	if (record_sample_cached(m, &key, inst, value, &err))
		return err;

	attrs[n++] = str_attr("http.request.method", method);
	if (s->status_code > 0)
		attrs[n++] = int_attr("http.response.status_code", s->status_code);
	if (s->route && s->route[0])
		attrs[n++] = str_attr(client ? "url.template" : "http.route", s->route);
	attrs[n++] = str_attr("url.scheme", s->scheme);
	attrs[n++] = str_attr("network.protocol.version", s->protocol_version);
	if (client) {
		attrs[n++] = str_attr("server.address", s->server_address);
		if (s->server_port > 0)
			attrs[n++] = int_attr("server.port", s->server_port);
	}
	attrs[n++] = str_attr("error.type", error_type);
	return record_sample(m, r, &key, attrs, n, inst, value);
}

int metrics_record_db(struct metrics *m, struct resource *r, const struct db_metric_sample *s)
{
	struct sample_key key;
	struct metric_attr attrs[6];
	int inst[METRICS_CACHE_INSTS] = {-1, -1, -1};
	double value[METRICS_CACHE_INSTS] = {0};
	int32_t nums[2];
	size_t n = 0;

	if (!m || !s)
		return -EINVAL;
	attrs[n++] = str_attr("db.system.name", s->system_name);
	attrs[n++] = str_attr("db.operation.name", s->operation_name);
	attrs[n++] = str_attr("db.collection.name", s->collection_name);
	attrs[n++] = str_attr("server.address", s->server_address);
	if (s->server_port > 0)
		attrs[n++] = int_attr("server.port", s->server_port);
	attrs[n++] = str_attr("error.type", s->error_type);
	inst[0] = m->db_client_duration;
	value[0] = s->duration_s;

	nums[0] = inst[0];
	nums[1] = s->server_port > 0 ? s->server_port : 0;
	key_start(&key, r, nums, 2);
	key_put_str(&key, s->system_name);
	key_put_str(&key, s->operation_name);
	key_put_str(&key, s->collection_name);
	key_put_str(&key, s->server_address);
	key_put_str(&key, s->error_type);
	return record_sample(m, r, &key, attrs, n, inst, value);
}

/* A gRPC service or method name as recorded: [A-Za-z0-9_.$-]+, else one
 * placeholder (unknown names from late-joined connections, garbage paths). */
static const char *rpc_name(const char *s)
{
	size_t n = 0;

	if (!s || !*s)
		return "_OTHER";
	for (; s[n]; n++) {
		char ch = s[n];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-' || ch == '$'))
			return "_OTHER";
	}
	return n > 128 ? "_OTHER" : s;
}

int metrics_record_rpc(struct metrics *m, struct resource *r, const struct rpc_metric_sample *s)
{
	struct sample_key key;
	struct metric_attr attrs[7];
	int inst[METRICS_CACHE_INSTS] = {-1, -1, -1};
	double value[METRICS_CACHE_INSTS] = {0};
	const char *service, *method;
	int32_t nums[3];
	bool client;
	size_t n = 0;

	if (!m || !s)
		return -EINVAL;
	client = s->kind == METRICS_RPC_CLIENT;
	service = rpc_name(s->service);
	method = rpc_name(s->method);
	if (service[0] == '_' && !strcmp(service, "_OTHER"))
		method = "_OTHER"; /* a method of an unknown service is unknown */
	attrs[n++] = str_attr("rpc.system", s->system ? s->system : "grpc");
	attrs[n++] = str_attr("rpc.service", service);
	attrs[n++] = str_attr("rpc.method", method);
	if (s->grpc_status_code >= 0)
		attrs[n++] = int_attr("rpc.grpc.status_code", s->grpc_status_code);
	if (client) {
		attrs[n++] = str_attr("server.address", s->server_address);
		if (s->server_port > 0)
			attrs[n++] = int_attr("server.port", s->server_port);
	}
	inst[0] = client ? m->rpc_client_duration : m->rpc_server_duration;
	value[0] = s->duration_s * 1000.0;

	nums[0] = inst[0];
	nums[1] = s->grpc_status_code;
	nums[2] = client ? s->server_port : 0;
	key_start(&key, r, nums, 3);
	key_put_str(&key, s->system ? s->system : "grpc");
	key_put_str(&key, service);
	key_put_str(&key, method);
	key_put_str(&key, client ? s->server_address : NULL);
	return record_sample(m, r, &key, attrs, n, inst, value);
}

/* ---- self metrics ---- */

struct self_metric_desc {
	const char *name;
	const char *unit;
	const char *description;
};

static const struct self_metric_desc self_metrics[] = {
    {"periscope.events.received", "{event}", "Events received from the kernel ring buffer."},
    {"periscope.events.dropped", "{event}", "Events lost before parsing, by reason."},
    {"periscope.spans.exported", "{span}", "Spans exported over OTLP."},
    {"periscope.spans.dropped", "{span}", "Spans dropped before export, by reason."},
    {"periscope.metric_points.exported", "{data_point}", "Metric data points exported."},
    {"periscope.export.failures", "{request}", "Failed OTLP export requests, by signal."},
    {"periscope.export.retries", "{request}", "Retried OTLP export requests, by signal."},
    {"periscope.parse.errors", "{error}", "Protocol parse errors, by protocol."},
    {"periscope.ringbuf.usage", "By",
     "Most bytes waiting in the kernel ring buffer since the last report."},
    {"periscope.streams.resynced", "{connection}",
     "Parsers restarted because the kernel lost events of their connection."},
    {"periscope.spans.created", "{span}", "Spans built from observed requests."},
    {"periscope.connections.unrecognised", "{connection}",
     "Connections given up on: no protocol the agent parses."},
    {"periscope.ringbuf.size", "By", "Size of the kernel ring buffer."},
    {"periscope.connections.tracked", "{connection}", "Connections being tracked."},
    {"periscope.http2.connections", "{connection}",
     "HTTP/2 connections by HPACK mode when their first stream ended: synced (seen from the "
     "preface) or late_join (joined mid-way or after lost bytes)."},
    {"periscope.http2.streams", "{stream}",
     "HTTP/2 streams reported, by the HPACK mode of their connection then."},
    {"periscope.http2.unknown_headers", "{stream}",
     "HTTP/2 streams with header fields that could not be decoded (late join)."},
};

static int self_instrument(struct metrics *m, const char *name, enum metric_kind kind)
{
	const char *unit = "", *description = "A periscope self metric.";
	int id = metrics_find(m, name);

	if (id >= 0)
		return m->inst[id]->kind == kind ? id : -EINVAL;
	for (size_t i = 0; i < N_BOUNDS(self_metrics); i++) {
		if (strcmp(self_metrics[i].name, name) == 0) {
			unit = self_metrics[i].unit;
			description = self_metrics[i].description;
		}
	}
	if (kind == METRIC_KIND_COUNTER)
		return metrics_add_counter(m, name, unit, description, true);
	return metrics_add_gauge(m, name, unit, description, false);
}

int metrics_set_self_counter(struct metrics *m, const char *name, const char *label_key,
                             const char *label_value, uint64_t value)
{
	struct metric_attr attr = str_attr(label_key, label_value ? label_value : "");
	int id, ret;

	if (!m || !name)
		return -EINVAL;
	id = self_instrument(m, name, METRIC_KIND_COUNTER);
	if (id < 0)
		return id;
	ret = metrics_counter_set(m, id, m->self_resource, &attr, label_key ? 1 : 0, (double)value);
	return ret < 0 ? ret : 0;
}

int metrics_set_self_gauge(struct metrics *m, const char *name, const char *label_key,
                           const char *label_value, double value)
{
	struct metric_attr attr = str_attr(label_key, label_value ? label_value : "");
	int id, ret;

	if (!m || !name)
		return -EINVAL;
	id = self_instrument(m, name, METRIC_KIND_GAUGE);
	if (id < 0)
		return id;
	ret = metrics_record(m, id, m->self_resource, &attr, label_key ? 1 : 0, value);
	return ret < 0 ? ret : 0;
}

/* ---- reading ---- */

size_t metrics_instrument_count(const struct metrics *m)
{
	return m->n_inst;
}

int metrics_instrument_info(const struct metrics *m, size_t instrument,
                            struct metric_instrument_info *out)
{
	const struct instrument *in;

	if (instrument >= m->n_inst)
		return -EINVAL;
	in = m->inst[instrument];
	out->name = in->name;
	out->unit = in->unit;
	out->description = in->description;
	out->kind = in->kind;
	out->is_int = in->is_int;
	out->bounds = in->bounds;
	out->n_bounds = in->n_bounds;
	out->n_series = in->n_series;
	return 0;
}

int metrics_foreach_point(const struct metrics *m, size_t instrument,
                          enum metric_temporality temporality, metrics_point_fn fn, void *ctx)
{
	const struct instrument *in;
	bool delta = temporality == METRIC_TEMPORALITY_DELTA;

	if (instrument >= m->n_inst || (delta && !m->delta))
		return -EINVAL;
	in = m->inst[instrument];
	for (size_t i = 0; i < in->n_series; i++) {
		const struct series *s = in->series[i];
		struct metric_point p = {
		    .resource = s->resource,
		    .resource_index = s->resource_index,
		    .attrs = s->attrs,
		    .n_attrs = s->n_attrs,
		    .overflow = s->overflow,
		    .start_unix_ns = s->start_ns,
		    .last_update_unix_ns = s->last_update_ns,
		    .hist = s->cum,
		    .value = s->value,
		};
		int ret;

		if (delta && in->kind != METRIC_KIND_GAUGE) {
			if (!s->dirty)
				continue;
			p.start_unix_ns = s->delta_start_ns;
			p.hist = s->delta;
			if (in->kind == METRIC_KIND_COUNTER) {
				p.value = s->value - s->committed_value;
				if (p.value < 0)
					p.value = s->value;
			}
		}
		ret = fn(ctx, &p);
		if (ret)
			return ret;
	}
	return 0;
}

size_t metrics_resource_count(const struct metrics *m)
{
	return m->n_resources;
}

struct resource *metrics_resource_at(const struct metrics *m, size_t i)
{
	return i < m->n_resources ? m->resources[i].resource : NULL;
}

void metrics_delta_commit(struct metrics *m, uint64_t now_unix_ns)
{
	m->delta_start_ns = now_unix_ns;
	for (size_t k = 0; k < m->n_inst; k++) {
		struct instrument *in = m->inst[k];

		for (size_t i = 0; i < in->n_series; i++) {
			struct series *s = in->series[i];

			if (s->delta)
				histogram_reset(s->delta);
			s->committed_value = s->value;
			s->dirty = false;
			s->delta_start_ns = now_unix_ns;
		}
	}
}

size_t metrics_expire(struct metrics *m, uint64_t now_unix_ns, uint64_t idle_ns)
{
	size_t dropped = 0;

	if (now_unix_ns < idle_ns)
		return 0;
	for (size_t k = 0; k < m->n_inst; k++) {
		struct instrument *in = m->inst[k];
		size_t j = 0;

		for (size_t i = 0; i < in->n_series; i++) {
			struct series *s = in->series[i];

			if (s->last_update_ns < now_unix_ns - idle_ns) {
				m->resources[s->resource_index].uses--;
				if (!s->overflow)
					in->n_regular--;
				series_free(s);
				dropped++;
				continue;
			}
			in->series[j++] = s;
		}
		if (j != in->n_series) {
			in->n_series = j;
			index_reset(in);
		}
	}
	if (dropped) {
		resources_compact(m);
		m->generation++;
	}
	return dropped;
}
