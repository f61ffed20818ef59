/* test_metrics.c — the metrics registry: HTTP/DB attributes, attribute
 * canonicalisation, cardinality overflow, delta vs cumulative, counters set
 * from outside, self metrics, expiry and resource references; and its OTLP
 * encoding (unpacked again, and decoded by protoc against the official
 * opentelemetry-proto files when ../shared/otlp-proto is there). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "telemetry/histogram.h"
#include "telemetry/metrics.h"
#include "otlp.pb-c.h"
#include "export/otlp_metrics.h"
#include "telemetry/resource.h"
#include "unit.h"

#define MAX_COLLECT 64

struct collected {
	size_t n;
	struct {
		struct resource *resource;
		size_t n_attrs;
		char attrs[512]; /* "k=v,k=v" */
		bool overflow;
		uint64_t count; /* histograms */
		double sum;
		double value; /* counters, gauges */
		uint64_t start;
	} p[MAX_COLLECT];
};

static int collect_fn(void *ctx, const struct metric_point *p)
{
	struct collected *c = ctx;
	size_t at = 0;

	if (c->n == MAX_COLLECT)
		return -ENOSPC;
	c->p[c->n].resource = p->resource;
	c->p[c->n].n_attrs = p->n_attrs;
	c->p[c->n].attrs[0] = '\0';
	for (size_t i = 0; i < p->n_attrs; i++) {
		const struct metric_attr *a = &p->attrs[i];
		size_t room = sizeof(c->p[c->n].attrs) - at;
		int w;

		if (a->type == METRIC_ATTR_STR)
			w = snprintf(c->p[c->n].attrs + at, room, "%s%s=%s", i ? "," : "", a->key,
			             a->str);
		else if (a->type == METRIC_ATTR_BOOL)
			w = snprintf(c->p[c->n].attrs + at, room, "%s%s=%s", i ? "," : "", a->key,
			             a->num ? "true" : "false");
		else
			w = snprintf(c->p[c->n].attrs + at, room, "%s%s=%lld", i ? "," : "", a->key,
			             (long long)a->num);
		if (w > 0 && (size_t)w < room)
			at += (size_t)w;
	}
	c->p[c->n].overflow = p->overflow;
	c->p[c->n].count = p->hist ? histogram_count(p->hist) : 0;
	c->p[c->n].sum = p->hist ? histogram_sum(p->hist) : 0;
	c->p[c->n].value = p->value;
	c->p[c->n].start = p->start_unix_ns;
	c->n++;
	return 0;
}

static int collect(struct metrics *m, const char *name, enum metric_temporality t,
                   struct collected *c)
{
	int id = metrics_find(m, name);

	c->n = 0;
	if (id < 0)
		return id;
	return metrics_foreach_point(m, (size_t)id, t, collect_fn, c);
}

static struct resource *make_resource(const char *service, uint32_t pid)
{
	struct resource *r = resource__new(pid, 1000 + pid);

	if (r)
		resource_add_str(r, "service.name", service);
	return r;
}

static void test_http_attributes(void)
{
	struct metrics *m = metrics__new(NULL);
	struct resource *r = make_resource("shop", 10);
	struct collected c;
	struct http_metric_sample s = {
	    .kind = METRICS_HTTP_SERVER,
	    .method = "GET",
	    .status_code = 200,
	    .route = "/users/*",
	    .scheme = "http",
	    .protocol_version = "1.1",
	    .server_address = "ignored-on-server",
	    .server_port = 80,
	    .duration_s = 0.02,
	    .request_body_size = 0,
	    .response_body_size = 512,
	};

	CHECK(m && r);
	if (!m || !r)
		goto cleanup;
	CHECK_EQ_INT(metrics_record_http(m, r, &s), 0);
	s.duration_s = 0.04;
	CHECK_EQ_INT(metrics_record_http(m, r, &s), 0);
	s.status_code = 503;
	s.method = "BREW";
	s.request_body_size = -1;
	CHECK_EQ_INT(metrics_record_http(m, r, &s), 0);

	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 2);
	CHECK_EQ_STR(c.p[0].attrs,
	             "http.request.method=GET,http.response.status_code=200,"
	             "http.route=/users/*,network.protocol.version=1.1,url.scheme=http");
	CHECK_EQ_INT(c.p[0].count, 2);
	CHECK(fabs(c.p[0].sum - 0.06) < 1e-12);
	CHECK(c.p[0].resource == r);
	CHECK_EQ_STR(c.p[1].attrs, "error.type=503,http.request.method=_OTHER,"
	                           "http.response.status_code=503,http.route=/users/*,"
	                           "network.protocol.version=1.1,url.scheme=http");
	/* Unknown body size is not recorded; known sizes are. */
	CHECK_EQ_INT(collect(m, "http.server.request.body.size", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_EQ_INT(c.p[0].count, 2);
	CHECK_EQ_INT(
	    collect(m, "http.server.response.body.size", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK_EQ_INT(c.n, 2);
	CHECK(c.p[0].sum == 1024);

	/* Client: server.address/port, url.template, 4xx is an error. */
	struct http_metric_sample cs = {
	    .kind = METRICS_HTTP_CLIENT,
	    .method = "POST",
	    .status_code = 404,
	    .route = "/api/*",
	    .scheme = "https",
	    .protocol_version = "1.1",
	    .server_address = "api.example.com",
	    .server_port = 443,
	    .duration_s = 0.3,
	    .request_body_size = -1,
	    .response_body_size = -1,
	};
	CHECK_EQ_INT(metrics_record_http(m, r, &cs), 0);
	CHECK_EQ_INT(collect(m, "http.client.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_EQ_STR(c.p[0].attrs,
	             "error.type=404,http.request.method=POST,http.response.status_code=404,"
	             "network.protocol.version=1.1,server.address=api.example.com,server.port=443,"
	             "url.scheme=https,url.template=/api/*");
	/* No response: no status code attribute, the caller's error.type. */
	cs.status_code = 0;
	cs.error_type = "timeout";
	cs.route = NULL;
	cs.server_port = 0;
	CHECK_EQ_INT(metrics_record_http(m, r, &cs), 0);
	CHECK_EQ_INT(collect(m, "http.client.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 2);
	CHECK_EQ_STR(c.p[1].attrs, "error.type=timeout,http.request.method=POST,"
	                           "network.protocol.version=1.1,server.address=api.example.com,"
	                           "url.scheme=https");
	CHECK_EQ_INT(
	    collect(m, "http.client.response.body.size", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK_EQ_INT(c.n, 0);
cleanup:
	metrics__free(m);
	resource_unref(r);
}

static void test_db(void)
{
	struct metrics *m = metrics__new(NULL);
	struct collected c;
	struct db_metric_sample s = {
	    .system_name = "postgresql",
	    .operation_name = "SELECT",
	    .collection_name = "users",
	    .server_address = "db",
	    .server_port = 5432,
	    .duration_s = 0.003,
	};

	CHECK(m != NULL);
	if (!m)
		return;
	CHECK_EQ_INT(metrics_record_db(m, NULL, &s), 0);
	s.error_type = "42P01";
	s.collection_name = NULL;
	CHECK_EQ_INT(metrics_record_db(m, NULL, &s), 0);
	CHECK_EQ_INT(collect(m, "db.client.operation.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 2);
	CHECK_EQ_STR(c.p[0].attrs, "db.collection.name=users,db.operation.name=SELECT,"
	                           "db.system.name=postgresql,server.address=db,server.port=5432");
	CHECK_EQ_STR(c.p[1].attrs, "db.operation.name=SELECT,db.system.name=postgresql,"
	                           "error.type=42P01,server.address=db,server.port=5432");
	CHECK(c.p[0].resource == NULL);
	CHECK_EQ_INT(metrics_resource_count(m), 1);
	CHECK(metrics_resource_at(m, 0) == NULL);
	metrics__free(m);
}

static void test_attribute_canonical(void)
{
	struct metrics *m = metrics__new(NULL);
	struct collected c;
	char long_value[METRICS_ATTR_VALUE_MAX + 50];
	int id;

	CHECK(m != NULL);
	if (!m)
		return;
	id = metrics_add_counter(m, "test.count", "1", "a test counter", true);
	CHECK(id >= 0);
	struct metric_attr a1[] = {
	    {.key = "b", .type = METRIC_ATTR_STR, .str = "2"},
	    {.key = "a", .type = METRIC_ATTR_INT, .num = 1},
	    {.key = "skip", .type = METRIC_ATTR_STR, .str = NULL},
	    {.key = NULL, .type = METRIC_ATTR_STR, .str = "x"},
	    {.key = "c", .type = METRIC_ATTR_BOOL, .num = 7},
	    {.key = "b", .type = METRIC_ATTR_STR, .str = "dup"},
	};
	struct metric_attr a2[] = {
	    {.key = "c", .type = METRIC_ATTR_BOOL, .num = 1},
	    {.key = "a", .type = METRIC_ATTR_INT, .num = 1},
	    {.key = "b", .type = METRIC_ATTR_STR, .str = "2"},
	};
	/* Same set in another order, absent ones left out: one series. */
	CHECK_EQ_INT(metrics_record(m, id, NULL, a1, 6, 1), 0);
	CHECK_EQ_INT(metrics_record(m, id, NULL, a2, 3, 2), 0);
	CHECK_EQ_INT(collect(m, "test.count", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_EQ_STR(c.p[0].attrs, "a=1,b=2,c=true");
	CHECK(c.p[0].value == 3);

	/* Invalid UTF-8 and control characters become '?'; long values are cut. */
	struct metric_attr bad[] = {{.key = "v",
	                             .type = METRIC_ATTR_STR,
	                             .str = "a\xff\x01"
	                                    "b\xc3\xa9"}};
	CHECK_EQ_INT(metrics_record(m, id, NULL, bad, 1, 1), 0);
	memset(long_value, 'x', sizeof(long_value) - 1);
	long_value[sizeof(long_value) - 1] = '\0';
	struct metric_attr lv[] = {{.key = "v", .type = METRIC_ATTR_STR, .str = long_value}};
	CHECK_EQ_INT(metrics_record(m, id, NULL, lv, 1, 1), 0);
	CHECK_EQ_INT(metrics_record(m, id, NULL, lv, 1, 1), 0);
	CHECK_EQ_INT(collect(m, "test.count", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK_EQ_INT(c.n, 3);
	CHECK_EQ_STR(c.p[1].attrs, "v=a??b\xc3\xa9");
	CHECK_EQ_INT(strlen(c.p[2].attrs), 2 + METRICS_ATTR_VALUE_MAX - 1);
	CHECK(c.p[2].value == 2);

	/* Errors. */
	struct metric_attr many[METRICS_MAX_ATTRS + 1];
	char keys[METRICS_MAX_ATTRS + 1][8];
	for (int i = 0; i <= METRICS_MAX_ATTRS; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		many[i] = (struct metric_attr){.key = keys[i], .type = METRIC_ATTR_INT, .num = i};
	}
	CHECK_EQ_INT(metrics_record(m, id, NULL, many, METRICS_MAX_ATTRS + 1, 1), -EINVAL);
	CHECK_EQ_INT(metrics_record(m, id, NULL, many, METRICS_MAX_ATTRS, 1), 0);
	CHECK_EQ_INT(metrics_record(m, id, NULL, NULL, 0, -1), -EINVAL);
	CHECK_EQ_INT(metrics_record(m, id, NULL, NULL, 0, NAN), -EINVAL);
	CHECK_EQ_INT(metrics_record(m, 999, NULL, NULL, 0, 1), -EINVAL);
	CHECK_EQ_INT(metrics_record(m, -1, NULL, NULL, 0, 1), -EINVAL);
	CHECK_EQ_INT(metrics_record(m, id, NULL, NULL, 3, 1), -EINVAL);
	struct metric_attr empty_key[] = {{.key = "", .type = METRIC_ATTR_INT}};
	CHECK_EQ_INT(metrics_record(m, id, NULL, empty_key, 1, 1), -EINVAL);
	metrics__free(m);
}

static void test_instruments(void)
{
	struct metrics *m = metrics__new(NULL);
	const double bounds[] = {1, 2, 3};
	const double bad_bounds[] = {2, 1};
	struct metric_instrument_info info;
	char name[32];
	int id, err = 0;

	CHECK(m != NULL);
	if (!m)
		return;
	CHECK(metrics_find(m, "http.server.request.duration") >= 0);
	CHECK(metrics_find(m, "db.client.operation.duration") >= 0);
	CHECK_EQ_INT(metrics_find(m, "nope"), -ENOENT);
	id = metrics_add_histogram(m, "my.hist", "ms", "desc", bounds, 3);
	CHECK(id >= 0);
	CHECK_EQ_INT(metrics_instrument_info(m, (size_t)id, &info), 0);
	CHECK_EQ_STR(info.name, "my.hist");
	CHECK_EQ_STR(info.unit, "ms");
	CHECK_EQ_INT(info.kind, METRIC_KIND_HISTOGRAM);
	CHECK_EQ_INT(info.n_bounds, 3);
	CHECK(info.bounds[2] == 3);
	CHECK_EQ_INT(metrics_instrument_info(m, 9999, &info), -EINVAL);
	CHECK_EQ_INT(metrics_add_histogram(m, "my.hist", "ms", "d", bounds, 3), -EEXIST);
	CHECK_EQ_INT(metrics_add_histogram(m, "bad.hist", "ms", "d", bad_bounds, 2), -EINVAL);
	CHECK_EQ_INT(metrics_add_counter(m, "1starts.with.digit", "", "", true), -EINVAL);
	CHECK_EQ_INT(metrics_add_counter(m, "has space", "", "", true), -EINVAL);
	CHECK_EQ_INT(metrics_add_counter(m, "", "", "", true), -EINVAL);
	CHECK_EQ_INT(metrics_add_gauge(m, NULL, "", "", true), -EINVAL);
	/* A gauge takes the last value; a counter cannot go backwards by add. */
	id = metrics_add_gauge(m, "my.gauge", "", NULL, false);
	CHECK(id >= 0);
	CHECK_EQ_INT(metrics_record(m, id, NULL, NULL, 0, 5), 0);
	CHECK_EQ_INT(metrics_record(m, id, NULL, NULL, 0, -2.5), 0);
	struct collected c;
	CHECK_EQ_INT(collect(m, "my.gauge", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK(c.p[0].value == -2.5);
	CHECK_EQ_INT(metrics_counter_set(m, id, NULL, NULL, 0, 1), -EINVAL);
	while (!err) {
		snprintf(name, sizeof(name), "filler.%zu", metrics_instrument_count(m));
		err = metrics_add_counter(m, name, "", "", true);
		err = err < 0 ? err : 0;
	}
	CHECK_EQ_INT(err, -ENOSPC);
	CHECK_EQ_INT(metrics_instrument_count(m), METRICS_MAX_INSTRUMENTS);
	metrics__free(m);
}

static void test_cardinality_overflow(void)
{
	struct metrics_options opts = {.cardinality_limit = 10};
	struct metrics *m = metrics__new(&opts);
	struct resource *r1 = make_resource("a", 1);
	struct resource *r2 = make_resource("b", 2);
	struct collected c;
	char route[32];
	int id, ret;
	size_t overflowed = 0;

	CHECK(m && r1 && r2);
	if (!m || !r1 || !r2)
		goto cleanup;
	CHECK_EQ_INT(metrics_cardinality_limit(m), 10);
	id = metrics_find(m, "http.server.request.duration");
	for (int i = 0; i < 25; i++) {
		snprintf(route, sizeof(route), "/r%d", i);
		struct metric_attr a[] = {
		    {.key = "http.route", .type = METRIC_ATTR_STR, .str = route}};

		ret = metrics_record(m, id, r1, a, 1, 0.1);
		CHECK(ret >= 0);
		overflowed += ret == 1;
	}
	/* 9 regular series + 1 overflow series = the limit of 10. */
	CHECK_EQ_INT(overflowed, 16);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 10);
	CHECK_EQ_STR(c.p[9].attrs, "otel.metric.overflow=true");
	CHECK(c.p[9].overflow);
	CHECK_EQ_INT(c.p[9].count, 16);
	/* A series that existed before the overflow keeps its own point. */
	struct metric_attr r0[] = {{.key = "http.route", .type = METRIC_ATTR_STR, .str = "/r0"}};
	CHECK_EQ_INT(metrics_record(m, id, r1, r0, 1, 0.2), 0);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.p[0].count, 2);
	CHECK_EQ_INT(c.p[9].count, 16);
	/* Another resource overflows into its own series. */
	CHECK_EQ_INT(metrics_record(m, id, r2, r0, 1, 0.2), 1);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 11);
	CHECK(c.p[10].resource == r2 && c.p[10].overflow);
	/* Another instrument has its own limit. */
	CHECK_EQ_INT(
	    metrics_record(m, metrics_find(m, "http.client.request.duration"), r1, r0, 1, 0.1), 0);
	/* A look-alike attribute set is not the overflow series. */
	struct metric_attr fake[] = {
	    {.key = "otel.metric.overflow", .type = METRIC_ATTR_BOOL, .num = 1}};
	CHECK_EQ_INT(
	    metrics_record(m, metrics_find(m, "http.client.request.duration"), r1, fake, 1, 0.1),
	    0);
	CHECK_EQ_INT(collect(m, "http.client.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 2);
	CHECK(!c.p[1].overflow);
cleanup:
	metrics__free(m);
	resource_unref(r1);
	resource_unref(r2);
}

static void test_limit_one(void)
{
	struct metrics_options opts = {.cardinality_limit = 1};
	struct metrics *m = metrics__new(&opts);
	struct collected c;
	int id;

	CHECK(m != NULL);
	if (!m)
		return;
	id = metrics_add_counter(m, "c", "", "", true);
	CHECK_EQ_INT(metrics_record(m, id, NULL, NULL, 0, 1), 1);
	CHECK_EQ_INT(metrics_record(m, id, NULL, NULL, 0, 1), 1);
	CHECK_EQ_INT(collect(m, "c", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK(c.p[0].overflow && c.p[0].value == 2);
	metrics__free(m);
}

static void test_delta_vs_cumulative(void)
{
	struct metrics_options opts = {.delta = true};
	struct metrics *m = metrics__new(&opts);
	struct metrics *cum_only = metrics__new(NULL);
	struct collected c;
	struct metric_attr ga[] = {{.key = "route", .type = METRIC_ATTR_STR, .str = "/a"}};
	struct metric_attr gb[] = {{.key = "route", .type = METRIC_ATTR_STR, .str = "/b"}};
	int h, ctr;
	uint64_t commit_time;

	CHECK(m && cum_only);
	if (!m || !cum_only)
		goto cleanup;
	h = metrics_find(m, "http.server.request.duration");
	ctr = metrics_add_counter(m, "requests", "{request}", "", true);
	metrics_record(m, h, NULL, ga, 1, 0.1);
	metrics_record(m, h, NULL, ga, 1, 0.2);
	metrics_record(m, h, NULL, gb, 1, 1);
	metrics_record(m, ctr, NULL, ga, 1, 3);

	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_DELTA, &c), 0);
	CHECK_EQ_INT(c.n, 2);
	CHECK_EQ_INT(c.p[0].count, 2);
	commit_time = metrics_now_unix_ns();
	metrics_delta_commit(m, commit_time);

	/* Nothing new: the delta export is empty, the cumulative one is not. */
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_DELTA, &c), 0);
	CHECK_EQ_INT(c.n, 0);
	CHECK_EQ_INT(collect(m, "requests", METRIC_TEMPORALITY_DELTA, &c), 0);
	CHECK_EQ_INT(c.n, 0);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 2);

	metrics_record(m, h, NULL, ga, 1, 0.4);
	metrics_record(m, ctr, NULL, ga, 1, 2);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_DELTA, &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_EQ_INT(c.p[0].count, 1);
	CHECK(fabs(c.p[0].sum - 0.4) < 1e-12);
	CHECK(c.p[0].start == commit_time);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.p[0].count, 3);
	CHECK(fabs(c.p[0].sum - 0.7) < 1e-12);
	CHECK(c.p[0].start < commit_time);
	CHECK_EQ_INT(collect(m, "requests", METRIC_TEMPORALITY_DELTA, &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK(c.p[0].value == 2);
	CHECK_EQ_INT(collect(m, "requests", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK(c.p[0].value == 5);

	/* A registry without delta state refuses delta reads. */
	CHECK_EQ_INT(
	    collect(cum_only, "http.server.request.duration", METRIC_TEMPORALITY_DELTA, &c),
	    -EINVAL);
cleanup:
	metrics__free(m);
	metrics__free(cum_only);
}

static void test_counter_set_and_self(void)
{
	struct resource *self = make_resource("periscope", 1);
	struct metrics_options opts = {.delta = true, .self_resource = self};
	struct metrics *m = metrics__new(&opts);
	struct collected c;

	CHECK(m && self);
	if (!m || !self)
		goto cleanup;
	CHECK_EQ_INT(metrics_set_self_counter(m, "periscope.events.received", NULL, NULL, 100), 0);
	CHECK_EQ_INT(
	    metrics_set_self_counter(m, "periscope.events.dropped", "reason", "ringbuf_full", 4),
	    0);
	CHECK_EQ_INT(
	    metrics_set_self_counter(m, "periscope.events.dropped", "reason", "no_conn", 1), 0);
	CHECK_EQ_INT(metrics_set_self_gauge(m, "periscope.connections.tracked", NULL, NULL, 12), 0);
	CHECK_EQ_INT(collect(m, "periscope.events.dropped", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK_EQ_INT(c.n, 2);
	CHECK_EQ_STR(c.p[0].attrs, "reason=ringbuf_full");
	CHECK(c.p[0].value == 4);
	CHECK(c.p[0].resource == self);

	struct metric_instrument_info info;
	CHECK_EQ_INT(
	    metrics_instrument_info(m, (size_t)metrics_find(m, "periscope.events.received"), &info),
	    0);
	CHECK_EQ_INT(info.kind, METRIC_KIND_COUNTER);
	CHECK(info.is_int);
	CHECK_EQ_STR(info.unit, "{event}");

	/* Setting again replaces the cumulative value; delta is the increase. */
	metrics_delta_commit(m, metrics_now_unix_ns());
	CHECK_EQ_INT(metrics_set_self_counter(m, "periscope.events.received", NULL, NULL, 130), 0);
	CHECK_EQ_INT(collect(m, "periscope.events.received", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK(c.p[0].value == 130);
	CHECK_EQ_INT(collect(m, "periscope.events.received", METRIC_TEMPORALITY_DELTA, &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK(c.p[0].value == 30);
	/* Gauges always export their last value, in delta too. */
	CHECK_EQ_INT(collect(m, "periscope.connections.tracked", METRIC_TEMPORALITY_DELTA, &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK(c.p[0].value == 12);

	/* The counter restarted below its last value: a new stream. */
	metrics_delta_commit(m, metrics_now_unix_ns());
	CHECK_EQ_INT(collect(m, "periscope.events.received", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	uint64_t first_start = c.p[0].start;
	CHECK_EQ_INT(metrics_set_self_counter(m, "periscope.events.received", NULL, NULL, 7), 0);
	CHECK_EQ_INT(collect(m, "periscope.events.received", METRIC_TEMPORALITY_DELTA, &c), 0);
	CHECK(c.p[0].value == 7);
	CHECK_EQ_INT(collect(m, "periscope.events.received", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK(c.p[0].value == 7);
	CHECK(c.p[0].start > first_start);

	/* A name used as a counter cannot become a gauge. */
	CHECK_EQ_INT(metrics_set_self_gauge(m, "periscope.events.received", NULL, NULL, 1),
	             -EINVAL);
	CHECK_EQ_INT(metrics_set_self_counter(m, "bad name", NULL, NULL, 1), -EINVAL);
cleanup:
	metrics__free(m);
	if (self)
		CHECK_EQ_INT(self->refcount, 1);
	resource_unref(self);
}

static void test_expire_and_references(void)
{
	struct metrics *m = metrics__new(NULL);
	struct resource *r1 = make_resource("a", 1);
	struct resource *r2 = make_resource("b", 2);
	struct collected c;
	struct metric_attr a[] = {{.key = "k", .type = METRIC_ATTR_STR, .str = "v"}};
	int h;

	CHECK(m && r1 && r2);
	if (!m || !r1 || !r2)
		goto cleanup;
	h = metrics_find(m, "http.server.request.duration");
	metrics_record(m, h, r1, a, 1, 0.1);
	metrics_record(m, h, r2, a, 1, 0.1);
	metrics_record(m, metrics_find(m, "http.server.request.body.size"), r2, a, 1, 10);
	/* One reference per resource, however many series use it. */
	CHECK_EQ_INT(r1->refcount, 2);
	CHECK_EQ_INT(r2->refcount, 2);
	CHECK_EQ_INT(metrics_resource_count(m), 2);
	CHECK_EQ_INT(metrics_series_count(m), 3);

	/* Nothing is idle yet. */
	CHECK_EQ_INT(metrics_expire(m, metrics_now_unix_ns(), 60ULL * 1000000000ULL), 0);
	/* Touch r2's series later than r1's, then expire r1's only. */
	uint64_t between = metrics_now_unix_ns() + 1;
	struct timespec pause = {0, 2000000};
	nanosleep(&pause, NULL);
	metrics_record(m, h, r2, a, 1, 0.1);
	metrics_record(m, metrics_find(m, "http.server.request.body.size"), r2, a, 1, 10);
	CHECK_EQ_INT(metrics_expire(m, between, 0), 1);
	CHECK_EQ_INT(r1->refcount, 1);
	CHECK_EQ_INT(metrics_resource_count(m), 1);
	CHECK(metrics_resource_at(m, 0) == r2);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 1);
	CHECK(c.p[0].resource == r2);
	/* The index still finds the surviving series after the compaction. */
	metrics_record(m, h, r2, a, 1, 0.1);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_EQ_INT(c.p[0].count, 3);
	/* And a new series for an expired resource can come back. */
	metrics_record(m, h, r1, a, 1, 0.1);
	CHECK_EQ_INT(r1->refcount, 2);
	CHECK_EQ_INT(metrics_expire(m, metrics_now_unix_ns() + 10, 0), 3);
	CHECK_EQ_INT(metrics_series_count(m), 0);
	CHECK_EQ_INT(metrics_resource_count(m), 0);
	CHECK_EQ_INT(r1->refcount, 1);
	CHECK_EQ_INT(r2->refcount, 1);
cleanup:
	metrics__free(m);
	resource_unref(r1);
	resource_unref(r2);
}

/* metrics_record_http remembers which series a sample's inputs landed in:
 * the remembered series must follow expiry, resources, body sizes that appear
 * later, and inputs too long to remember. */
static void test_sample_cache(void)
{
	struct metrics *m = metrics__new(NULL);
	struct resource *r1 = make_resource("a", 1);
	struct resource *r2 = make_resource("b", 2);
	struct http_metric_sample s = {.kind = METRICS_HTTP_SERVER,
	                               .method = "GET",
	                               .status_code = 200,
	                               .route = "/a",
	                               .scheme = "http",
	                               .protocol_version = "1.1",
	                               .duration_s = 0.01,
	                               .request_body_size = -1,
	                               .response_body_size = -1};
	char long_route[300];
	struct collected c;

	CHECK(m && r1 && r2);
	if (!m || !r1 || !r2)
		goto cleanup;
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(metrics_record_http(m, r1, &s), 0);
	/* a remembered series still refuses what record_canonical refuses */
	s.duration_s = NAN;
	CHECK_EQ_INT(metrics_record_http(m, r1, &s), -EINVAL);
	s.duration_s = 0.01;
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_EQ_INT(c.p[0].count, 5);
	CHECK_EQ_INT(
	    collect(m, "http.server.response.body.size", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK_EQ_INT(c.n, 0);
	/* the same inputs with a body size: the size series appears */
	s.response_body_size = 68;
	CHECK_EQ_INT(metrics_record_http(m, r1, &s), 0);
	CHECK_EQ_INT(
	    collect(m, "http.server.response.body.size", METRIC_TEMPORALITY_CUMULATIVE, &c), 0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_EQ_INT(c.p[0].count, 1);
	/* another resource, another status: other series */
	CHECK_EQ_INT(metrics_record_http(m, r2, &s), 0);
	s.status_code = 500;
	CHECK_EQ_INT(metrics_record_http(m, r2, &s), 0);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 3);
	/* after every series expired, the same inputs start new ones (the
	 * remembered pointers are dead: ASan would see a use after free) */
	CHECK_EQ_INT(metrics_expire(m, metrics_now_unix_ns() + 10, 0), 6);
	CHECK_EQ_INT(metrics_record_http(m, r2, &s), 0);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 1);
	CHECK_EQ_INT(c.p[0].count, 1);
	CHECK(strstr(c.p[0].attrs, "error.type=500") != NULL);
	/* inputs longer than the cache key: recorded all the same */
	memset(long_route, 'x', sizeof(long_route) - 1);
	long_route[0] = '/';
	long_route[sizeof(long_route) - 1] = '\0';
	s.route = long_route;
	s.status_code = 200;
	for (int i = 0; i < 3; i++)
		CHECK_EQ_INT(metrics_record_http(m, r2, &s), 0);
	CHECK_EQ_INT(collect(m, "http.server.request.duration", METRIC_TEMPORALITY_CUMULATIVE, &c),
	             0);
	CHECK_EQ_INT(c.n, 2);
	CHECK_EQ_INT(c.p[0].count + c.p[1].count, 4);
cleanup:
	metrics__free(m);
	resource_unref(r1);
	resource_unref(r2);
}

static void test_many_series(void)
{
	struct metrics *m = metrics__new(NULL);
	struct collected c;
	char v[16];
	int id;
	bool ok = true;

	CHECK(m != NULL);
	if (!m)
		return;
	id = metrics_add_counter(m, "many", "", "", true);
	/* Enough to grow the index several times, each value twice. */
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 1500; i++) {
			snprintf(v, sizeof(v), "%d", i);
			struct metric_attr a[] = {{.key = "i", .type = METRIC_ATTR_STR, .str = v}};
			ok = ok && metrics_record(m, id, NULL, a, 1, 1) == 0;
		}
	}
	CHECK(ok);
	CHECK_EQ_INT(metrics_series_count(m), 1500);
	CHECK_EQ_INT(collect(m, "many", METRIC_TEMPORALITY_CUMULATIVE, &c), -ENOSPC);
	CHECK_EQ_INT(c.n, MAX_COLLECT);
	CHECK(c.p[5].value == 2);
	metrics__free(m);
}

/* ---- OTLP encoding ---- */

typedef Periscope__Otlp__ExportMetricsServiceRequest MetricsRequest;

static MetricsRequest *encode_unpack(struct metrics *m, enum metric_temporality t, uint64_t now,
                                     size_t *n_points)
{
	struct otlp_metrics_options o = {
	    .temporality = t, .now_unix_ns = now, .scope_version = "0.1.0"};
	MetricsRequest *req = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	int err = otlp_metrics_encode(m, &o, &buf, &len, n_points);

	CHECK_EQ_INT(err, 0);
	if (!err)
		req = periscope__otlp__export_metrics_service_request__unpack(NULL, len, buf);
	CHECK(req != NULL);
	free(buf);
	return req;
}

static const Periscope__Otlp__Metric *find_metric(const Periscope__Otlp__ResourceMetrics *rm,
                                                  const char *name)
{
	for (size_t i = 0; i < rm->n_scope_metrics; i++) {
		for (size_t k = 0; k < rm->scope_metrics[i]->n_metrics; k++) {
			if (strcmp(rm->scope_metrics[i]->metrics[k]->name, name) == 0)
				return rm->scope_metrics[i]->metrics[k];
		}
	}
	return NULL;
}

static const char *resource_service(const Periscope__Otlp__ResourceMetrics *rm)
{
	for (size_t i = 0; rm->resource && i < rm->resource->n_attributes; i++) {
		const Periscope__Otlp__KeyValue *kv = rm->resource->attributes[i];

		if (strcmp(kv->key, "service.name") == 0 && kv->value &&
		    kv->value->value_case == PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE)
			return kv->value->string_value;
	}
	return "";
}

static const Periscope__Otlp__AnyValue *find_attr(Periscope__Otlp__KeyValue **kvs, size_t n,
                                                  const char *key)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(kvs[i]->key, key) == 0)
			return kvs[i]->value;
	}
	return NULL;
}

static void test_otlp_cumulative(void)
{
	struct resource *shop = make_resource("shop", 1), *self = make_resource("periscope", 2);
	struct metrics_options mo = {.self_resource = self};
	struct metrics *m = metrics__new(&mo);
	struct http_metric_sample s = {.kind = METRICS_HTTP_SERVER,
	                               .method = "GET",
	                               .status_code = 503,
	                               .route = "/users/*",
	                               .scheme = "http",
	                               .protocol_version = "1.1",
	                               .duration_s = 0.01,
	                               .request_body_size = -1,
	                               .response_body_size = 512};
	const uint64_t now = metrics_now_unix_ns() + 1000000000ULL;
	MetricsRequest *req;
	size_t n_points = 0;
	bool saw_shop = false, saw_self = false;

	CHECK(shop && self && m);
	if (!shop || !self || !m)
		goto cleanup;
	resource_add_int(shop, "process.pid", 1);
	CHECK_EQ_INT(metrics_record_http(m, shop, &s), 0);
	s.duration_s = 12;
	CHECK_EQ_INT(metrics_record_http(m, shop, &s), 0);
	CHECK_EQ_INT(metrics_set_self_counter(m, "periscope.events.dropped", "reason", "lost", 7),
	             0);
	CHECK_EQ_INT(metrics_set_self_gauge(m, "periscope.ringbuf.usage", NULL, NULL, 1.5), 0);
	req = encode_unpack(m, METRIC_TEMPORALITY_CUMULATIVE, now, &n_points);
	if (!req)
		goto cleanup;
	CHECK_EQ_INT(n_points, 4); /* duration, response size, dropped, ringbuf */
	CHECK_EQ_INT(req->n_resource_metrics, 2);
	for (size_t i = 0; i < req->n_resource_metrics; i++) {
		const Periscope__Otlp__ResourceMetrics *rm = req->resource_metrics[i];
		const Periscope__Otlp__Metric *metric;

		CHECK_EQ_INT(rm->n_scope_metrics, 1);
		CHECK_EQ_STR(rm->scope_metrics[0]->scope->name, "periscope");
		CHECK_EQ_STR(rm->scope_metrics[0]->scope->version, "0.1.0");
		if (strcmp(resource_service(rm), "shop") == 0) {
			const Periscope__Otlp__HistogramDataPoint *dp;
			const Periscope__Otlp__AnyValue *v;

			saw_shop = true;
			CHECK(find_attr(rm->resource->attributes, rm->resource->n_attributes,
			                "process.pid") != NULL);
			metric = find_metric(rm, "http.server.request.duration");
			CHECK(metric != NULL);
			if (!metric)
				continue;
			CHECK_EQ_STR(metric->unit, "s");
			CHECK_EQ_INT(metric->data_case, PERISCOPE__OTLP__METRIC__DATA_HISTOGRAM);
			CHECK_EQ_INT(
			    metric->histogram->aggregation_temporality,
			    PERISCOPE__OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE);
			CHECK_EQ_INT(metric->histogram->n_data_points, 1);
			dp = metric->histogram->data_points[0];
			CHECK_EQ_INT(dp->count, 2);
			CHECK(dp->sum == 12.01);
			CHECK(dp->min_present_case ==
			          PERISCOPE__OTLP__HISTOGRAM_DATA_POINT__MIN_PRESENT_MIN &&
			      dp->min == 0.01);
			CHECK(dp->max_present_case ==
			          PERISCOPE__OTLP__HISTOGRAM_DATA_POINT__MAX_PRESENT_MAX &&
			      dp->max == 12);
			CHECK_EQ_INT(dp->n_explicit_bounds, 14);
			CHECK_EQ_INT(dp->n_bucket_counts, 15);
			CHECK(dp->n_bucket_counts == 15 && dp->bucket_counts[1] == 1 &&
			      dp->bucket_counts[14] == 1 && dp->bucket_counts[0] == 0);
			CHECK(dp->n_explicit_bounds == 14 && dp->explicit_bounds[0] == 0.005 &&
			      dp->explicit_bounds[13] == 10);
			CHECK(dp->time_unix_nano == now);
			CHECK(dp->start_time_unix_nano > 0 && dp->start_time_unix_nano <= now);
			v = find_attr(dp->attributes, dp->n_attributes,
			              "http.response.status_code");
			CHECK(v && v->value_case == PERISCOPE__OTLP__ANY_VALUE__VALUE_INT_VALUE &&
			      v->int_value == 503);
			v = find_attr(dp->attributes, dp->n_attributes, "error.type");
			CHECK(v &&
			      v->value_case == PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE &&
			      strcmp(v->string_value, "503") == 0);
			v = find_attr(dp->attributes, dp->n_attributes, "http.route");
			CHECK(v && strcmp(v->string_value, "/users/*") == 0);
			metric = find_metric(rm, "http.server.response.body.size");
			CHECK(metric && strcmp(metric->unit, "By") == 0);
			CHECK(find_metric(rm, "http.server.request.body.size") == NULL);
			CHECK(find_metric(rm, "periscope.events.dropped") == NULL);
		} else if (strcmp(resource_service(rm), "periscope") == 0) {
			const Periscope__Otlp__NumberDataPoint *dp;

			saw_self = true;
			metric = find_metric(rm, "periscope.events.dropped");
			CHECK(metric && metric->data_case == PERISCOPE__OTLP__METRIC__DATA_SUM);
			if (metric && metric->data_case == PERISCOPE__OTLP__METRIC__DATA_SUM) {
				CHECK(metric->sum->is_monotonic);
				CHECK_EQ_INT(metric->sum->n_data_points, 1);
				dp = metric->sum->data_points[0];
				CHECK_EQ_INT(dp->value_case,
				             PERISCOPE__OTLP__NUMBER_DATA_POINT__VALUE_AS_INT);
				CHECK_EQ_INT(dp->as_int, 7);
				CHECK(find_attr(dp->attributes, dp->n_attributes, "reason") !=
				      NULL);
			}
			metric = find_metric(rm, "periscope.ringbuf.usage");
			CHECK(metric && metric->data_case == PERISCOPE__OTLP__METRIC__DATA_GAUGE);
			if (metric && metric->data_case == PERISCOPE__OTLP__METRIC__DATA_GAUGE) {
				dp = metric->gauge->data_points[0];
				CHECK_EQ_INT(dp->value_case,
				             PERISCOPE__OTLP__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
				CHECK(dp->as_double == 1.5);
			}
		}
	}
	CHECK(saw_shop && saw_self);
	periscope__otlp__export_metrics_service_request__free_unpacked(req, NULL);

	/* cumulative again: the same totals, nothing reset */
	req = encode_unpack(m, METRIC_TEMPORALITY_CUMULATIVE, now + 1, &n_points);
	CHECK_EQ_INT(n_points, 4);
	periscope__otlp__export_metrics_service_request__free_unpacked(req, NULL);
	/* delta on a cumulative-only registry is refused */
	{
		struct otlp_metrics_options o = {.temporality = METRIC_TEMPORALITY_DELTA};
		uint8_t *buf = (uint8_t *)"x";
		size_t len = 1;

		CHECK_EQ_INT(otlp_metrics_encode(m, &o, &buf, &len, NULL), -EINVAL);
		CHECK(buf == NULL);
	}
cleanup:
	metrics__free(m);
	resource_unref(shop);
	resource_unref(self);
}

static uint64_t duration_count(MetricsRequest *req, bool *is_delta)
{
	uint64_t count = 0;

	for (size_t i = 0; req && i < req->n_resource_metrics; i++) {
		const Periscope__Otlp__Metric *metric =
		    find_metric(req->resource_metrics[i], "http.client.request.duration");

		if (!metric)
			continue;
		*is_delta = metric->histogram->aggregation_temporality ==
		            PERISCOPE__OTLP__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
		for (size_t k = 0; k < metric->histogram->n_data_points; k++)
			count += metric->histogram->data_points[k]->count;
	}
	return count;
}

static void test_otlp_delta(void)
{
	struct metrics_options mo = {.delta = true};
	struct metrics *m = metrics__new(&mo);
	struct resource *r = make_resource("client", 3);
	struct http_metric_sample s = {.kind = METRICS_HTTP_CLIENT,
	                               .method = "GET",
	                               .status_code = 200,
	                               .server_address = "api.example.com",
	                               .server_port = 443,
	                               .scheme = "https",
	                               .duration_s = 0.2,
	                               .request_body_size = -1,
	                               .response_body_size = -1};
	MetricsRequest *req;
	bool is_delta = false;
	size_t n_points;
	uint64_t t1 = 1700000000000000000ULL;

	CHECK(m && r);
	if (!m || !r)
		goto cleanup;
	for (int i = 0; i < 3; i++)
		metrics_record_http(m, r, &s);
	req = encode_unpack(m, METRIC_TEMPORALITY_DELTA, t1, &n_points);
	CHECK_EQ_INT(duration_count(req, &is_delta), 3);
	CHECK(is_delta);
	periscope__otlp__export_metrics_service_request__free_unpacked(req, NULL);
	metrics_delta_commit(m, t1);

	/* nothing new: an empty request */
	req = encode_unpack(m, METRIC_TEMPORALITY_DELTA, t1 + 10, &n_points);
	CHECK_EQ_INT(n_points, 0);
	CHECK(req && req->n_resource_metrics == 0);
	periscope__otlp__export_metrics_service_request__free_unpacked(req, NULL);

	metrics_record_http(m, r, &s);
	req = encode_unpack(m, METRIC_TEMPORALITY_DELTA, t1 + 20, &n_points);
	CHECK_EQ_INT(duration_count(req, &is_delta), 1);
	if (req && req->n_resource_metrics == 1) {
		const Periscope__Otlp__Metric *metric =
		    find_metric(req->resource_metrics[0], "http.client.request.duration");
		const Periscope__Otlp__HistogramDataPoint *dp =
		    metric ? metric->histogram->data_points[0] : NULL;

		/* the delta window starts at the last commit */
		CHECK(dp && dp->start_time_unix_nano == t1 && dp->time_unix_nano == t1 + 20);
		CHECK(dp && find_attr(dp->attributes, dp->n_attributes, "server.address"));
	}
	periscope__otlp__export_metrics_service_request__free_unpacked(req, NULL);
	/* cumulative at the same time still sees all four */
	req = encode_unpack(m, METRIC_TEMPORALITY_CUMULATIVE, t1 + 20, &n_points);
	CHECK_EQ_INT(duration_count(req, &is_delta), 4);
	CHECK(!is_delta);
	periscope__otlp__export_metrics_service_request__free_unpacked(req, NULL);
cleanup:
	metrics__free(m);
	resource_unref(r);
}

static void test_otlp_temporality_parse(void)
{
	CHECK_EQ_INT(otlp_metrics_temporality_parse(NULL), METRIC_TEMPORALITY_CUMULATIVE);
	CHECK_EQ_INT(otlp_metrics_temporality_parse("cumulative"), METRIC_TEMPORALITY_CUMULATIVE);
	CHECK_EQ_INT(otlp_metrics_temporality_parse("Delta"), METRIC_TEMPORALITY_DELTA);
	CHECK_EQ_INT(otlp_metrics_temporality_parse("lowmemory"), METRIC_TEMPORALITY_DELTA);
	CHECK_EQ_INT(otlp_metrics_temporality_parse("bogus"), METRIC_TEMPORALITY_CUMULATIVE);
}

/* The official definitions decode our bytes: field numbers and wire types
 * agree. Skipped without protoc or ../shared/otlp-proto. */
static void test_otlp_protoc_decode(void)
{
	static const char proto_dir[] = "../shared/otlp-proto";
	struct metrics *m = metrics__new(NULL);
	struct resource *r = make_resource("shop", 4);
	struct db_metric_sample d = {.system_name = "postgresql",
	                             .operation_name = "SELECT",
	                             .collection_name = "users",
	                             .server_address = "127.0.0.1",
	                             .server_port = 5432,
	                             .duration_s = 0.004};
	char in_path[] = "/tmp/periscope-otlp-XXXXXX";
	char cmd[512], text[8192];
	uint8_t *buf = NULL;
	size_t len = 0, n;
	FILE *p;
	int fd;

	if (access("/usr/bin/protoc", X_OK) != 0 || access(proto_dir, R_OK) != 0) {
		printf("test_metrics: protoc or %s missing, skipping the protoc decode\n",
		       proto_dir);
		goto cleanup;
	}
	CHECK(m && r);
	if (!m || !r)
		goto cleanup;
	metrics_record_db(m, r, &d);
	metrics_set_self_counter(m, "periscope.spans.exported", NULL, NULL, 42);
	CHECK_EQ_INT(otlp_metrics_encode(m, NULL, &buf, &len, NULL), 0);
	fd = mkstemp(in_path);
	CHECK(fd >= 0);
	if (fd < 0)
		goto cleanup;
	CHECK_EQ_INT(write(fd, buf, len), len);
	close(fd);
	snprintf(cmd, sizeof(cmd),
	         "protoc -I %s --decode=opentelemetry.proto.collector.metrics.v1."
	         "ExportMetricsServiceRequest "
	         "opentelemetry/proto/collector/metrics/v1/metrics_service.proto < %s 2>&1",
	         proto_dir, in_path);
	p = popen(cmd, "r");
	CHECK(p != NULL);
	if (!p)
		goto remove;
	n = fread(text, 1, sizeof(text) - 1, p);
	text[n] = '\0';
	CHECK_EQ_INT(pclose(p), 0);
	CHECK(strstr(text, "name: \"db.client.operation.duration\"") != NULL);
	CHECK(strstr(text, "string_value: \"postgresql\"") != NULL);
	CHECK(strstr(text, "aggregation_temporality: AGGREGATION_TEMPORALITY_CUMULATIVE") != NULL);
	CHECK(strstr(text, "explicit_bounds: 0.001") != NULL);
	CHECK(strstr(text, "name: \"periscope.spans.exported\"") != NULL);
	CHECK(strstr(text, "as_int: 42") != NULL);
	CHECK(strstr(text, "is_monotonic: true") != NULL);
	CHECK(strstr(text, "name: \"periscope\"") != NULL);
remove:
	unlink(in_path);
cleanup:
	free(buf);
	metrics__free(m);
	resource_unref(r);
}

int main(void)
{
	RUN(test_http_attributes);
	RUN(test_db);
	RUN(test_attribute_canonical);
	RUN(test_instruments);
	RUN(test_cardinality_overflow);
	RUN(test_limit_one);
	RUN(test_delta_vs_cumulative);
	RUN(test_counter_set_and_self);
	RUN(test_expire_and_references);
	RUN(test_sample_cache);
	RUN(test_many_series);
	RUN(test_otlp_cumulative);
	RUN(test_otlp_delta);
	RUN(test_otlp_temporality_parse);
	RUN(test_otlp_protoc_decode);
	return unit_summary("test_metrics");
}
