/* prom_text.c — renders the metrics registry in the Prometheus text exposition
 * format 0.0.4: OTel→Prometheus name translation, label sanitising and
 * escaping, histogram buckets with cumulative le counts, counters with
 * _total, series with identical labels merged, and target_info per resource. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/histogram.h"
#include "export/prom_text.h"
#include "telemetry/resource.h"

#define PROM_BUF_MIN_CAP   256
#define RESOURCE_VALUE_MAX 1024
#define MAX_LABELS         (METRICS_MAX_ATTRS + 4)

/* ---- buffer ---- */

void prom_buf_init(struct prom_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max ? max : PROM_BUF_DEFAULT_MAX;
	b->error = 0;
}

void prom_buf_release(struct prom_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->error = 0;
}

void prom_buf_reset(struct prom_buf *b)
{
	b->len = 0;
	b->error = 0;
	if (b->data)
		b->data[0] = '\0';
}

/* Makes room for extra more bytes plus the NUL. */
static int prom_buf_reserve(struct prom_buf *b, size_t extra)
{
	size_t need, cap;
	char *grown;

	if (b->error)
		return b->error;
	if (extra > b->max || b->len + extra > b->max) {
		b->error = -E2BIG;
		return b->error;
	}
	need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : PROM_BUF_MIN_CAP;
	while (cap < need)
		cap *= 2;
	grown = realloc(b->data, cap);
	if (!grown) {
		b->error = -ENOMEM;
		return b->error;
	}
	b->data = grown;
	b->cap = cap;
	return 0;
}

int prom_buf_append(struct prom_buf *b, const char *s, size_t n)
{
	int err = prom_buf_reserve(b, n);

	if (err)
		return err;
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int prom_buf_puts(struct prom_buf *b, const char *s)
{
	return prom_buf_append(b, s, strlen(s));
}

int prom_buf_printf(struct prom_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;
	int err;

	if (b->error)
		return b->error;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->error = -EINVAL;
		return b->error;
	}
	err = prom_buf_reserve(b, (size_t)n);
	if (err)
		return err;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

/* ---- names ---- */

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Bounded writer into a fixed char array; sticky overflow. */
struct name_writer {
	char *out;
	size_t cap;
	size_t len;
	bool overflow;
};

static void nw_putc(struct name_writer *w, char c)
{
	if (w->len + 1 >= w->cap) {
		w->overflow = true;
		return;
	}
	w->out[w->len++] = c;
	w->out[w->len] = '\0';
}

/* Appends text with invalid characters → '_' and runs of '_' collapsed.
 * allow_colon: metric names may hold ':', label names may not. */
static void nw_put_sanitized(struct name_writer *w, const char *s, bool allow_colon)
{
	for (; *s; s++) {
		char c = *s;

		if (!(is_alpha(c) || is_digit(c) || c == '_' || (allow_colon && c == ':')))
			c = '_';
		if (c == '_' && w->len > 0 && w->out[w->len - 1] == '_')
			continue;
		nw_putc(w, c);
	}
}

static void nw_puts(struct name_writer *w, const char *s)
{
	for (; *s; s++)
		nw_putc(w, *s);
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

struct unit_word {
	const char *unit;
	const char *word;
};

/* OTel→Prometheus unit names (the compatibility spec's table). */
static const struct unit_word unit_words[] = {
    {"d", "days"},          {"h", "hours"},         {"min", "minutes"},    {"s", "seconds"},
    {"ms", "milliseconds"}, {"us", "microseconds"}, {"ns", "nanoseconds"}, {"By", "bytes"},
    {"KiBy", "kibibytes"},  {"MiBy", "mebibytes"},  {"GiBy", "gibibytes"}, {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},   {"MBy", "megabytes"},   {"GBy", "gigabytes"},  {"TBy", "terabytes"},
    {"m", "meters"},        {"V", "volts"},         {"A", "amperes"},      {"J", "joules"},
    {"W", "watts"},         {"g", "grams"},         {"Cel", "celsius"},    {"Hz", "hertz"},
    {"%", "percent"},
};

/* The "per" part of a/b units. */
static const struct unit_word per_unit_words[] = {
    {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
    {"w", "week"},   {"mo", "month"}, {"y", "year"},
};

static const char *unit_word(const struct unit_word *table, size_t n, const char *unit)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(table[i].unit, unit) == 0)
			return table[i].word;
	}
	return unit;
}

/* unit without {annotations}, into out (cap bytes). */
static void unit_strip_annotations(const char *unit, char *out, size_t cap)
{
	size_t o = 0;
	int depth = 0;

	for (; *unit && o + 1 < cap; unit++) {
		if (*unit == '{')
			depth++;
		else if (*unit == '}' && depth > 0)
			depth--;
		else if (depth == 0)
			out[o++] = *unit;
	}
	out[o] = '\0';
}

int prom_metric_name(const char *name, const char *unit, enum metric_kind kind, char *out,
                     size_t out_len)
{
	struct name_writer w = {.out = out, .cap = out_len};
	char stripped[64];
	char suffix[PROM_NAME_MAX];
	struct name_writer sw = {.out = suffix, .cap = sizeof(suffix)};
	char *slash;

	if (!name || !out || out_len == 0)
		return -EINVAL;
	out[0] = '\0';
	suffix[0] = '\0';
	if (is_digit(name[0]))
		nw_putc(&w, '_');
	nw_put_sanitized(&w, name, true);

	unit_strip_annotations(unit ? unit : "", stripped, sizeof(stripped));
	slash = strchr(stripped, '/');
	if (slash) {
		*slash = '\0';
		if (stripped[0])
			nw_put_sanitized(&sw,
			                 unit_word(unit_words,
			                           sizeof(unit_words) / sizeof(unit_words[0]),
			                           stripped),
			                 false);
		if (slash[1]) {
			nw_puts(&sw, sw.len ? "_per_" : "per_");
			nw_put_sanitized(
			    &sw,
			    unit_word(per_unit_words,
			              sizeof(per_unit_words) / sizeof(per_unit_words[0]),
			              slash + 1),
			    false);
		}
	} else if (strcmp(stripped, "1") == 0) {
		if (kind == METRIC_KIND_GAUGE)
			nw_puts(&sw, "ratio");
	} else if (stripped[0]) {
		nw_put_sanitized(
		    &sw,
		    unit_word(unit_words, sizeof(unit_words) / sizeof(unit_words[0]), stripped),
		    false);
	}
	/* Trim '_' the sanitising left at the ends of the suffix. */
	while (sw.len && suffix[sw.len - 1] == '_')
		suffix[--sw.len] = '\0';
	if (suffix[0] == '_')
		memmove(suffix, suffix + 1, sw.len--);
	if (sw.len && !ends_with(out, w.len, suffix)) {
		if (w.len && out[w.len - 1] != '_')
			nw_putc(&w, '_');
		nw_puts(&w, suffix);
	}
	if (kind == METRIC_KIND_COUNTER && !ends_with(out, w.len, "_total"))
		nw_puts(&w, w.len && out[w.len - 1] == '_' ? "total" : "_total");
	if (w.overflow || sw.overflow) {
		out[0] = '\0';
		return -ENOSPC;
	}
	return (int)w.len;
}

int prom_label_name(const char *key, char *out, size_t out_len)
{
	struct name_writer w = {.out = out, .cap = out_len};

	if (!key || !out || out_len == 0)
		return -EINVAL;
	out[0] = '\0';
	if (is_digit(key[0]))
		nw_puts(&w, "key_");
	else if (key[0] == '_')
		nw_puts(&w, "key");
	nw_put_sanitized(&w, key, false);
	if (w.len == 0)
		nw_puts(&w, "key_");
	if (w.overflow) {
		out[0] = '\0';
		return -ENOSPC;
	}
	return (int)w.len;
}

/* ---- values ---- */

void prom_append_label_value(struct prom_buf *b, const char *v)
{
	const char *run = v;

	for (; *v; v++) {
		const char *esc = NULL;

		if (*v == '\\')
			esc = "\\\\";
		else if (*v == '"')
			esc = "\\\"";
		else if (*v == '\n')
			esc = "\\n";
		if (!esc)
			continue;
		prom_buf_append(b, run, (size_t)(v - run));
		prom_buf_puts(b, esc);
		run = v + 1;
	}
	prom_buf_append(b, run, (size_t)(v - run));
}

void prom_append_help(struct prom_buf *b, const char *text)
{
	const char *run = text;

	for (; *text; text++) {
		const char *esc = NULL;

		if (*text == '\\')
			esc = "\\\\";
		else if (*text == '\n')
			esc = "\\n";
		if (!esc)
			continue;
		prom_buf_append(b, run, (size_t)(text - run));
		prom_buf_puts(b, esc);
		run = text + 1;
	}
	prom_buf_append(b, run, (size_t)(text - run));
}

/* The shortest text that reads back as v. */
static void format_double(double v, char *out, size_t cap)
{
	if (isnan(v)) {
		snprintf(out, cap, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, cap, "%s", v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, cap, "%.0f", v == 0 ? 0.0 : v);
		return;
	}
	for (int precision = 1; precision <= 17; precision++) {
		snprintf(out, cap, "%.*g", precision, v);
		if (strtod(out, NULL) == v)
			break;
	}
}

void prom_append_double(struct prom_buf *b, double v)
{
	char text[40];

	format_double(v, text, sizeof(text));
	prom_buf_puts(b, text);
}

/* ---- rendering ---- */

/* One data point after its labels were rendered. */
struct prom_point {
	size_t label_off; /* into the label arena */
	size_t label_len;
	const struct histogram *hist;
	double value;
	uint64_t last_update;
};

struct prom_points {
	struct prom_point *items;
	size_t n;
	size_t cap;
	struct prom_buf arena; /* label texts: a="b",c="d" */
	bool is_histogram;
	int error;
};

/* Label names already used in one label set (to skip collisions). */
struct label_names {
	char names[MAX_LABELS][PROM_NAME_MAX];
	size_t n;
	size_t written; /* labels appended to the text so far */
};

static bool label_names_has(const struct label_names *ln, const char *name)
{
	for (size_t i = 0; i < ln->n; i++) {
		if (strcmp(ln->names[i], name) == 0)
			return true;
	}
	return false;
}

/* Appends ,name="value" (without the comma for the first label). Returns
 * false when the name was already used. */
static bool append_label(struct prom_buf *b, struct label_names *ln, const char *name,
                         const char *value)
{
	if (ln->n == MAX_LABELS || label_names_has(ln, name))
		return false;
	snprintf(ln->names[ln->n++], PROM_NAME_MAX, "%s", name);
	if (ln->written++ > 0)
		prom_buf_puts(b, ",");
	prom_buf_puts(b, name);
	prom_buf_puts(b, "=\"");
	prom_append_label_value(b, value);
	prom_buf_puts(b, "\"");
	return true;
}

/* service_name and service_instance_id of r. */
static void append_resource_labels(struct prom_buf *b, struct label_names *ln,
                                   const struct resource *r)
{
	char value[RESOURCE_VALUE_MAX];
	const char *v;

	if (!r)
		return;
	v = resource_get_str(r, "service.name");
	if (v) {
		metrics_utf8_sanitize(v, value, sizeof(value));
		append_label(b, ln, "service_name", value);
	}
	v = resource_get_str(r, "service.instance.id");
	if (v) {
		metrics_utf8_sanitize(v, value, sizeof(value));
		append_label(b, ln, "service_instance_id", value);
	}
}

static int collect_point(void *ctx, const struct metric_point *p)
{
	struct prom_points *pts = ctx;
	struct label_names ln = {.n = 0};
	struct prom_point *pt;
	size_t start = pts->arena.len;

	if (pts->n == pts->cap) {
		size_t cap = pts->cap ? pts->cap * 2 : 64;
		struct prom_point *grown = realloc(pts->items, cap * sizeof(*grown));

		if (!grown) {
			pts->error = -ENOMEM;
			return pts->error;
		}
		pts->items = grown;
		pts->cap = cap;
	}
	/* A histogram's own "le" label wins over an attribute called le. */
	if (pts->is_histogram)
		snprintf(ln.names[ln.n++], PROM_NAME_MAX, "le");
	append_resource_labels(&pts->arena, &ln, p->resource);
	for (size_t i = 0; i < p->n_attrs; i++) {
		const struct metric_attr *a = &p->attrs[i];
		char name[PROM_NAME_MAX];
		char num[32];
		const char *value = num;

		if (prom_label_name(a->key, name, sizeof(name)) < 0)
			continue;
		if (a->type == METRIC_ATTR_STR)
			value = a->str;
		else if (a->type == METRIC_ATTR_BOOL)
			value = a->num ? "true" : "false";
		else
			snprintf(num, sizeof(num), "%" PRId64, a->num);
		/* An attribute whose label name is already taken (a resource
		 * label, or two keys that sanitise alike) is left out. */
		append_label(&pts->arena, &ln, name, value);
	}
	if (pts->arena.error) {
		pts->error = pts->arena.error;
		return pts->error;
	}
	pt = &pts->items[pts->n++];
	pt->label_off = start;
	pt->label_len = pts->arena.len - start;
	pt->hist = p->hist;
	pt->value = p->value;
	pt->last_update = p->last_update_unix_ns;
	return 0;
}

static int compare_points(const void *a, const void *b, void *ctx)
{
	const struct prom_point *pa = a, *pb = b;
	const char *arena = ctx;
	size_t n = pa->label_len < pb->label_len ? pa->label_len : pb->label_len;
	int c = memcmp(arena + pa->label_off, arena + pb->label_off, n);

	if (c)
		return c;
	return pa->label_len < pb->label_len ? -1 : pa->label_len > pb->label_len;
}

static bool same_labels(const struct prom_points *pts, const struct prom_point *a,
                        const struct prom_point *b)
{
	return a->label_len == b->label_len &&
	       memcmp(pts->arena.data + a->label_off, pts->arena.data + b->label_off,
	              a->label_len) == 0;
}

/* name{labels[,extra]} value\n */
static void append_sample(struct prom_buf *out, const char *name, const char *suffix,
                          const char *labels, size_t labels_len, const char *extra, double value)
{
	prom_buf_puts(out, name);
	prom_buf_puts(out, suffix);
	if (labels_len || extra) {
		prom_buf_puts(out, "{");
		prom_buf_append(out, labels, labels_len);
		if (extra) {
			if (labels_len)
				prom_buf_puts(out, ",");
			prom_buf_puts(out, extra);
		}
		prom_buf_puts(out, "}");
	}
	prom_buf_puts(out, " ");
	prom_append_double(out, value);
	prom_buf_puts(out, "\n");
}

/* Renders the points [first, end) that share one label set, merged. */
static void render_group(struct prom_buf *out, const char *name,
                         const struct metric_instrument_info *info, const struct prom_points *pts,
                         size_t first, size_t end)
{
	const struct prom_point *p0 = &pts->items[first];
	const char *labels = pts->arena.data + p0->label_off;
	uint64_t buckets[HISTOGRAM_MAX_BOUNDS + 1] = {0};
	uint64_t count = 0, cumulative = 0;
	double sum = 0, value = 0;
	uint64_t newest = 0;

	for (size_t i = first; i < end; i++) {
		const struct prom_point *p = &pts->items[i];

		if (info->kind == METRIC_KIND_HISTOGRAM) {
			const uint64_t *counts = histogram_bucket_counts(p->hist);
			size_t nb = histogram_n_bounds(p->hist);

			for (size_t k = 0; k <= nb && k <= HISTOGRAM_MAX_BOUNDS; k++)
				buckets[k] += counts[k];
			count += histogram_count(p->hist);
			sum += histogram_sum(p->hist);
		} else if (info->kind == METRIC_KIND_COUNTER) {
			value += p->value;
		} else if (i == first || p->last_update >= newest) {
			/* Gauges: the most recent value. */
			value = p->value;
			newest = p->last_update;
		}
	}
	if (info->kind != METRIC_KIND_HISTOGRAM) {
		append_sample(out, name, "", labels, p0->label_len, NULL, value);
		return;
	}
	for (size_t k = 0; k < info->n_bounds && k < HISTOGRAM_MAX_BOUNDS; k++) {
		char bound[40], le[48];

		cumulative += buckets[k];
		format_double(info->bounds[k], bound, sizeof(bound));
		snprintf(le, sizeof(le), "le=\"%s\"", bound);
		append_sample(out, name, "_bucket", labels, p0->label_len, le, (double)cumulative);
	}
	append_sample(out, name, "_bucket", labels, p0->label_len, "le=\"+Inf\"", (double)count);
	append_sample(out, name, "_sum", labels, p0->label_len, NULL, sum);
	append_sample(out, name, "_count", labels, p0->label_len, NULL, (double)count);
}

static void append_family_header(struct prom_buf *out, const char *name, const char *help,
                                 const char *type)
{
	char clean[1024];

	/* Descriptions are free text: valid UTF-8 without control characters. */
	metrics_utf8_sanitize(help, clean, sizeof(clean));
	prom_buf_puts(out, "# HELP ");
	prom_buf_puts(out, name);
	prom_buf_puts(out, " ");
	prom_append_help(out, clean);
	prom_buf_puts(out, "\n# TYPE ");
	prom_buf_puts(out, name);
	prom_buf_puts(out, " ");
	prom_buf_puts(out, type);
	prom_buf_puts(out, "\n");
}

static int render_instrument(const struct metrics *m, size_t instrument, struct prom_buf *out,
                             struct prom_points *pts)
{
	struct metric_instrument_info info;
	char name[PROM_NAME_MAX];
	const char *type;
	int err;

	err = metrics_instrument_info(m, instrument, &info);
	if (err)
		return err;
	if (info.n_series == 0)
		return 0;
	if (prom_metric_name(info.name, info.unit, info.kind, name, sizeof(name)) < 0)
		return 0; /* cannot happen for valid instrument names; skip it */
	pts->n = 0;
	prom_buf_reset(&pts->arena);
	prom_buf_append(&pts->arena, "", 0); /* data is never NULL from here on */
	pts->is_histogram = info.kind == METRIC_KIND_HISTOGRAM;
	pts->error = 0;
	err =
	    metrics_foreach_point(m, instrument, METRIC_TEMPORALITY_CUMULATIVE, collect_point, pts);
	if (err)
		return err;
	if (pts->n == 0)
		return 0;
	qsort_r(pts->items, pts->n, sizeof(pts->items[0]), compare_points, pts->arena.data);
	type = info.kind == METRIC_KIND_HISTOGRAM ? "histogram"
	       : info.kind == METRIC_KIND_COUNTER ? "counter"
	                                          : "gauge";
	append_family_header(out, name, info.description[0] ? info.description : info.name, type);
	for (size_t first = 0; first < pts->n;) {
		size_t end = first + 1;

		while (end < pts->n && same_labels(pts, &pts->items[first], &pts->items[end]))
			end++;
		render_group(out, name, &info, pts, first, end);
		first = end;
	}
	return out->error;
}

/* target_info{service_name=...,service_instance_id=...,other resource attrs} 1 */
static int render_target_info(const struct metrics *m, struct prom_buf *out,
                              struct prom_points *pts)
{
	size_t n_resources = metrics_resource_count(m);
	bool header = false;

	pts->n = 0;
	prom_buf_reset(&pts->arena);
	prom_buf_append(&pts->arena, "", 0); /* data is never NULL from here on */
	for (size_t i = 0; i < n_resources; i++) {
		const struct resource *r = metrics_resource_at(m, i);
		struct label_names ln = {.n = 0};
		struct prom_point *pt;
		size_t start = pts->arena.len;

		if (!r)
			continue;
		if (pts->n == pts->cap) {
			size_t cap = pts->cap ? pts->cap * 2 : 64;
			struct prom_point *grown = realloc(pts->items, cap * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			pts->items = grown;
			pts->cap = cap;
		}
		append_resource_labels(&pts->arena, &ln, r);
		for (size_t k = 0; k < r->n_attrs && ln.n < MAX_LABELS; k++) {
			const struct resource_attr *a = &r->attrs[k];
			char name[PROM_NAME_MAX];
			char value[RESOURCE_VALUE_MAX];

			if (!a->key || strcmp(a->key, "service.name") == 0 ||
			    strcmp(a->key, "service.instance.id") == 0)
				continue;
			if (prom_label_name(a->key, name, sizeof(name)) < 0)
				continue;
			if (a->str)
				metrics_utf8_sanitize(a->str, value, sizeof(value));
			else
				snprintf(value, sizeof(value), "%" PRId64, a->num);
			append_label(&pts->arena, &ln, name, value);
		}
		if (pts->arena.error)
			return pts->arena.error;
		if (pts->arena.len == start)
			continue; /* a resource without attributes has no target_info */
		pt = &pts->items[pts->n++];
		pt->label_off = start;
		pt->label_len = pts->arena.len - start;
	}
	if (pts->n == 0)
		return 0;
	qsort_r(pts->items, pts->n, sizeof(pts->items[0]), compare_points, pts->arena.data);
	for (size_t i = 0; i < pts->n; i++) {
		const struct prom_point *p = &pts->items[i];

		if (i > 0 && same_labels(pts, &pts->items[i - 1], p))
			continue;
		if (!header) {
			append_family_header(out, "target_info", "Target metadata", "gauge");
			header = true;
		}
		append_sample(out, "target_info", "", pts->arena.data + p->label_off, p->label_len,
		              NULL, 1);
	}
	return out->error;
}

int prom_text_render(const struct metrics *m, struct prom_buf *out)
{
	struct prom_points pts = {.items = NULL};
	int err = 0;

	if (!m || !out)
		return -EINVAL;
	prom_buf_init(&pts.arena, 0);
	for (size_t i = 0; i < metrics_instrument_count(m) && !err; i++)
		err = render_instrument(m, i, out, &pts);
	if (!err)
		err = render_target_info(m, out, &pts);
	if (!err)
		err = out->error;
	free(pts.items);
	prom_buf_release(&pts.arena);
	return err;
}
