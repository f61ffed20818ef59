/* otlp_metrics.c — builds an ExportMetricsServiceRequest from the metrics
 * registry and packs it. Every message of the request comes from one arena
 * freed after packing; strings and bucket arrays point into the registry
 * (which is not modified while encoding) except resource strings, which are
 * copied as valid UTF-8. Two walks per instrument: count the points per
 * resource, then fill exactly sized arrays. */
#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "telemetry/histogram.h"
#include "otlp.pb-c.h"
#include "export/otlp_metrics.h"
#include "telemetry/resource.h"

#define ARENA_BLOCK_MIN (64 * 1024)

typedef Periscope__Otlp__ExportMetricsServiceRequest MetricsRequest;
typedef Periscope__Otlp__ResourceMetrics ResourceMetrics;
typedef Periscope__Otlp__ScopeMetrics ScopeMetrics;
typedef Periscope__Otlp__InstrumentationScope Scope;
typedef Periscope__Otlp__Resource Resource;
typedef Periscope__Otlp__Metric Metric;
typedef Periscope__Otlp__Histogram Histogram;
typedef Periscope__Otlp__Sum Sum;
typedef Periscope__Otlp__Gauge Gauge;
typedef Periscope__Otlp__HistogramDataPoint HistogramPoint;
typedef Periscope__Otlp__NumberDataPoint NumberPoint;
typedef Periscope__Otlp__KeyValue KeyValue;
typedef Periscope__Otlp__AnyValue AnyValue;

/* ---- arena ---- */

struct arena_block {
	struct arena_block *next;
	size_t used;
	size_t cap;
	max_align_t data[];
};

struct arena {
	struct arena_block *head;
};

/* n zeroed bytes, or NULL. */
static void *arena_alloc(struct arena *a, size_t n)
{
	struct arena_block *b = a->head;
	size_t aligned = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	void *p;

	if (aligned < n)
		return NULL;
	if (!b || b->cap - b->used < aligned) {
		size_t cap = aligned > ARENA_BLOCK_MIN ? aligned : ARENA_BLOCK_MIN;

		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->cap = cap;
		b->used = 0;
		b->next = a->head;
		a->head = b;
	}
	p = (char *)b->data + b->used;
	b->used += aligned;
	memset(p, 0, n);
	return p;
}

static void *arena_array(struct arena *a, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	return arena_alloc(a, n * size ? n * size : 1);
}

static void arena_release(struct arena *a)
{
	while (a->head) {
		struct arena_block *next = a->head->next;

		free(a->head);
		a->head = next;
	}
}

/* ---- building ---- */

struct encoder {
	struct arena arena;
	const struct metrics *m;
	enum metric_temporality temporality;
	uint64_t now;
	const char *scope_version;
	size_t n_resources;
	ResourceMetrics **rm; /* per resource index; NULL until it has a point */
	size_t *counts;       /* points of the current instrument per resource */
	Metric **metric;      /* the current instrument's Metric per resource */
	struct metric_instrument_info info;
	size_t instrument;
	size_t n_points;
	int error;
};

static KeyValue *key_value(struct encoder *e, const char *key, const struct metric_attr *a,
                           const char *str)
{
	KeyValue *kv = arena_alloc(&e->arena, sizeof(*kv));
	AnyValue *v = arena_alloc(&e->arena, sizeof(*v));

	if (!kv || !v)
		return NULL;
	periscope__otlp__key_value__init(kv);
	periscope__otlp__any_value__init(v);
	kv->key = (char *)key;
	kv->value = v;
	if (str) {
		v->value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
		v->string_value = (char *)str;
	} else if (a->type == METRIC_ATTR_STR) {
		v->value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
		v->string_value = (char *)a->str;
	} else if (a->type == METRIC_ATTR_BOOL) {
		v->value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
		v->bool_value = a->num != 0;
	} else {
		v->value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_INT_VALUE;
		v->int_value = a->num;
	}
	return kv;
}

/* A copy of s as valid UTF-8 in the arena. */
static char *arena_utf8(struct encoder *e, const char *s)
{
	size_t cap = strlen(s) + 1;
	char *copy = arena_alloc(&e->arena, cap);

	if (copy)
		metrics_utf8_sanitize(s, copy, cap);
	return copy;
}

static Resource *build_resource(struct encoder *e, const struct resource *r)
{
	Resource *res = arena_alloc(&e->arena, sizeof(*res));

	if (!res)
		return NULL;
	periscope__otlp__resource__init(res);
	if (!r || r->n_attrs == 0)
		return res;
	res->attributes = arena_array(&e->arena, r->n_attrs, sizeof(*res->attributes));
	if (!res->attributes)
		return NULL;
	for (size_t i = 0; i < r->n_attrs; i++) {
		const struct resource_attr *ra = &r->attrs[i];
		struct metric_attr num = {.type = METRIC_ATTR_INT, .num = ra->num};
		char *key, *str = NULL;
		KeyValue *kv;

		if (!ra->key)
			continue;
		key = arena_utf8(e, ra->key);
		if (ra->str)
			str = arena_utf8(e, ra->str);
		kv = key && (str || !ra->str) ? key_value(e, key, &num, str) : NULL;
		if (!kv)
			return NULL;
		res->attributes[res->n_attributes++] = kv;
	}
	return res;
}

/* The ResourceMetrics of resource index i with one ScopeMetrics, created on
 * first use; its metrics array has room for every instrument. */
static ResourceMetrics *resource_metrics(struct encoder *e, size_t i)
{
	ResourceMetrics *rm;
	ScopeMetrics *sm;
	Scope *scope;

	if (e->rm[i])
		return e->rm[i];
	rm = arena_alloc(&e->arena, sizeof(*rm));
	sm = arena_alloc(&e->arena, sizeof(*sm));
	scope = arena_alloc(&e->arena, sizeof(*scope));
	if (!rm || !sm || !scope)
		return NULL;
	periscope__otlp__resource_metrics__init(rm);
	periscope__otlp__scope_metrics__init(sm);
	periscope__otlp__instrumentation_scope__init(scope);
	scope->name = OTLP_METRICS_SCOPE_NAME;
	if (e->scope_version)
		scope->version = (char *)e->scope_version;
	sm->scope = scope;
	sm->metrics = arena_array(&e->arena, metrics_instrument_count(e->m), sizeof(*sm->metrics));
	rm->scope_metrics = arena_array(&e->arena, 1, sizeof(*rm->scope_metrics));
	rm->resource = build_resource(e, metrics_resource_at(e->m, i));
	if (!sm->metrics || !rm->scope_metrics || !rm->resource)
		return NULL;
	rm->scope_metrics[0] = sm;
	rm->n_scope_metrics = 1;
	e->rm[i] = rm;
	return rm;
}

static Periscope__Otlp__AggregationTemporality otlp_temporality(const struct encoder *e)
{
	return e->temporality == METRIC_TEMPORALITY_DELTA
	           ? PERISCOPE__OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
	           : PERISCOPE__OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
}

/* The Metric of the current instrument for resource i, with a data point
 * array of counts[i] entries. */
static Metric *instrument_metric(struct encoder *e, size_t i)
{
	const struct metric_instrument_info *info = &e->info;
	ResourceMetrics *rm;
	ScopeMetrics *sm;
	Metric *metric;
	size_t n = e->counts[i];

	if (e->metric[i])
		return e->metric[i];
	rm = resource_metrics(e, i);
	metric = arena_alloc(&e->arena, sizeof(*metric));
	if (!rm || !metric)
		return NULL;
	periscope__otlp__metric__init(metric);
	metric->name = (char *)info->name;
	metric->unit = (char *)info->unit;
	metric->description = (char *)info->description;
	if (info->kind == METRIC_KIND_HISTOGRAM) {
		Histogram *h = arena_alloc(&e->arena, sizeof(*h));

		if (!h)
			return NULL;
		periscope__otlp__histogram__init(h);
		h->aggregation_temporality = otlp_temporality(e);
		h->data_points = arena_array(&e->arena, n, sizeof(*h->data_points));
		if (!h->data_points)
			return NULL;
		metric->data_case = PERISCOPE__OTLP__METRIC__DATA_HISTOGRAM;
		metric->histogram = h;
	} else if (info->kind == METRIC_KIND_COUNTER) {
		Sum *s = arena_alloc(&e->arena, sizeof(*s));

		if (!s)
			return NULL;
		periscope__otlp__sum__init(s);
		s->aggregation_temporality = otlp_temporality(e);
		s->is_monotonic = 1;
		s->data_points = arena_array(&e->arena, n, sizeof(*s->data_points));
		if (!s->data_points)
			return NULL;
		metric->data_case = PERISCOPE__OTLP__METRIC__DATA_SUM;
		metric->sum = s;
	} else {
		Gauge *g = arena_alloc(&e->arena, sizeof(*g));

		if (!g)
			return NULL;
		periscope__otlp__gauge__init(g);
		g->data_points = arena_array(&e->arena, n, sizeof(*g->data_points));
		if (!g->data_points)
			return NULL;
		metric->data_case = PERISCOPE__OTLP__METRIC__DATA_GAUGE;
		metric->gauge = g;
	}
	sm = rm->scope_metrics[0];
	sm->metrics[sm->n_metrics++] = metric;
	e->metric[i] = metric;
	return metric;
}

static KeyValue **point_attributes(struct encoder *e, const struct metric_point *p)
{
	KeyValue **kvs = arena_array(&e->arena, p->n_attrs, sizeof(*kvs));

	if (!kvs)
		return NULL;
	for (size_t i = 0; i < p->n_attrs; i++) {
		kvs[i] = key_value(e, p->attrs[i].key, &p->attrs[i], NULL);
		if (!kvs[i])
			return NULL;
	}
	return kvs;
}

static int count_point(void *ctx, const struct metric_point *p)
{
	struct encoder *e = ctx;

	if (p->resource_index < e->n_resources)
		e->counts[p->resource_index]++;
	return 0;
}

static int add_histogram_point(struct encoder *e, Histogram *h, const struct metric_point *p,
                               KeyValue **attrs)
{
	HistogramPoint *dp = arena_alloc(&e->arena, sizeof(*dp));
	const struct histogram *hist = p->hist;

	if (!dp)
		return -ENOMEM;
	periscope__otlp__histogram_data_point__init(dp);
	dp->attributes = attrs;
	dp->n_attributes = p->n_attrs;
	dp->start_time_unix_nano = p->start_unix_ns;
	dp->time_unix_nano = e->now;
	dp->count = histogram_count(hist);
	dp->sum_present_case = PERISCOPE__OTLP__HISTOGRAM_DATA_POINT__SUM_PRESENT_SUM;
	dp->sum = histogram_sum(hist);
	dp->n_explicit_bounds = histogram_n_bounds(hist);
	dp->explicit_bounds = (double *)histogram_bounds(hist);
	dp->n_bucket_counts = histogram_n_bounds(hist) + 1;
	dp->bucket_counts = (uint64_t *)histogram_bucket_counts(hist);
	if (dp->count > 0) {
		dp->min_present_case = PERISCOPE__OTLP__HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN;
		dp->min = histogram_min(hist);
		dp->max_present_case = PERISCOPE__OTLP__HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX;
		dp->max = histogram_max(hist);
	}
	h->data_points[h->n_data_points++] = dp;
	return 0;
}

static int add_number_point(struct encoder *e, size_t *n, NumberPoint **points,
                            const struct metric_point *p, KeyValue **attrs)
{
	NumberPoint *dp = arena_alloc(&e->arena, sizeof(*dp));

	if (!dp)
		return -ENOMEM;
	periscope__otlp__number_data_point__init(dp);
	dp->attributes = attrs;
	dp->n_attributes = p->n_attrs;
	if (e->info.kind == METRIC_KIND_COUNTER)
		dp->start_time_unix_nano = p->start_unix_ns;
	dp->time_unix_nano = e->now;
	if (e->info.is_int) {
		dp->value_case = PERISCOPE__OTLP__NUMBER_DATA_POINT__VALUE_AS_INT;
		dp->as_int = (int64_t)p->value;
	} else {
		dp->value_case = PERISCOPE__OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
		dp->as_double = p->value;
	}
	points[(*n)++] = dp;
	return 0;
}

static int fill_point(void *ctx, const struct metric_point *p)
{
	struct encoder *e = ctx;
	KeyValue **attrs;
	Metric *metric;
	int err;

	if (p->resource_index >= e->n_resources)
		return 0;
	metric = instrument_metric(e, p->resource_index);
	attrs = metric ? point_attributes(e, p) : NULL;
	if (!attrs)
		return -ENOMEM;
	switch (metric->data_case) {
	case PERISCOPE__OTLP__METRIC__DATA_HISTOGRAM:
		err = add_histogram_point(e, metric->histogram, p, attrs);
		break;
	case PERISCOPE__OTLP__METRIC__DATA_SUM:
		err = add_number_point(e, &metric->sum->n_data_points, metric->sum->data_points, p,
		                       attrs);
		break;
	default:
		err = add_number_point(e, &metric->gauge->n_data_points, metric->gauge->data_points,
		                       p, attrs);
		break;
	}
	if (!err)
		e->n_points++;
	return err;
}

static int encode_instrument(struct encoder *e, size_t instrument)
{
	int err = metrics_instrument_info(e->m, instrument, &e->info);

	if (err)
		return err;
	if (e->info.n_series == 0)
		return 0;
	memset(e->counts, 0, e->n_resources * sizeof(*e->counts));
	memset(e->metric, 0, e->n_resources * sizeof(*e->metric));
	err = metrics_foreach_point(e->m, instrument, e->temporality, count_point, e);
	if (err)
		return err;
	return metrics_foreach_point(e->m, instrument, e->temporality, fill_point, e);
}

int otlp_metrics_encode(const struct metrics *m, const struct otlp_metrics_options *opts,
                        uint8_t **out, size_t *out_len, size_t *n_points)
{
	struct encoder e = {.m = m};
	MetricsRequest req = PERISCOPE__OTLP__EXPORT_METRICS_SERVICE_REQUEST__INIT;
	size_t size;
	int err = 0;

	if (!out || !out_len)
		return -EINVAL;
	*out = NULL;
	*out_len = 0;
	if (!m)
		return -EINVAL;
	e.temporality = opts ? opts->temporality : METRIC_TEMPORALITY_CUMULATIVE;
	e.now = opts && opts->now_unix_ns ? opts->now_unix_ns : metrics_now_unix_ns();
	e.scope_version = opts ? opts->scope_version : NULL;
	e.n_resources = metrics_resource_count(m);
	e.rm = arena_array(&e.arena, e.n_resources, sizeof(*e.rm));
	e.counts = arena_array(&e.arena, e.n_resources, sizeof(*e.counts));
	e.metric = arena_array(&e.arena, e.n_resources, sizeof(*e.metric));
	req.resource_metrics = arena_array(&e.arena, e.n_resources, sizeof(*req.resource_metrics));
	if (!e.rm || !e.counts || !e.metric || !req.resource_metrics) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < metrics_instrument_count(m) && !err; i++)
		err = encode_instrument(&e, i);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < e.n_resources; i++) {
		if (e.rm[i])
			req.resource_metrics[req.n_resource_metrics++] = e.rm[i];
	}
	size = periscope__otlp__export_metrics_service_request__get_packed_size(&req);
	*out = malloc(size ? size : 1);
	if (!*out) {
		err = -ENOMEM;
		goto cleanup;
	}
	*out_len = periscope__otlp__export_metrics_service_request__pack(&req, *out);
	if (n_points)
		*n_points = e.n_points;
cleanup:
	arena_release(&e.arena);
	return err;
}

enum metric_temporality otlp_metrics_temporality_parse(const char *value)
{
	if (value && (strcasecmp(value, "delta") == 0 || strcasecmp(value, "lowmemory") == 0))
		return METRIC_TEMPORALITY_DELTA;
	return METRIC_TEMPORALITY_CUMULATIVE;
}
