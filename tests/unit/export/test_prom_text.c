/* test_prom_text.c — Prometheus text rendering: OTel→Prometheus names, label
 * sanitising and escaping, number formatting, histogram lines, merging of
 * identical series, target_info, `promtool check metrics` when present; and
 * the /metrics HTTP server on a real event loop with a client thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/event_loop.h"
#include "telemetry/metrics.h"
#include "export/prom_server.h"
#include "export/prom_text.h"
#include "telemetry/resource.h"
#include "unit.h"

static bool contains(const struct prom_buf *b, const char *needle)
{
	return b->data && strstr(b->data, needle) != NULL;
}

static void test_metric_names(void)
{
	static const struct {
		const char *name, *unit;
		enum metric_kind kind;
		const char *want;
	} cases[] = {
	    {"http.server.request.duration", "s", METRIC_KIND_HISTOGRAM,
	     "http_server_request_duration_seconds"},
	    {"http.server.request.body.size", "By", METRIC_KIND_HISTOGRAM,
	     "http_server_request_body_size_bytes"},
	    {"periscope.events.received", "{event}", METRIC_KIND_COUNTER,
	     "periscope_events_received_total"},
	    {"periscope.ringbuf.usage", "By", METRIC_KIND_GAUGE, "periscope_ringbuf_usage_bytes"},
	    {"system.cpu.utilization", "1", METRIC_KIND_GAUGE, "system_cpu_utilization_ratio"},
	    {"requests", "1", METRIC_KIND_COUNTER, "requests_total"},
	    {"throughput", "By/s", METRIC_KIND_GAUGE, "throughput_bytes_per_second"},
	    {"rate", "{req}/s", METRIC_KIND_GAUGE, "rate_per_second"},
	    {"latency_seconds", "s", METRIC_KIND_HISTOGRAM, "latency_seconds"},
	    {"jobs_total", "", METRIC_KIND_COUNTER, "jobs_total"},
	    {"db.client.operation.duration", "s", METRIC_KIND_HISTOGRAM,
	     "db_client_operation_duration_seconds"},
	    {"a-b/c..d", "ms", METRIC_KIND_GAUGE, "a_b_c_d_milliseconds"},
	    {"temp", "Cel", METRIC_KIND_GAUGE, "temp_celsius"},
	};
	char out[PROM_NAME_MAX];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n =
		    prom_metric_name(cases[i].name, cases[i].unit, cases[i].kind, out, sizeof(out));
		CHECK_EQ_STR(out, cases[i].want);
		CHECK_EQ_INT(n, strlen(cases[i].want));
	}
	CHECK_EQ_INT(
	    prom_metric_name("http.server.request.duration", "s", METRIC_KIND_HISTOGRAM, out, 10),
	    -ENOSPC);
	CHECK_EQ_STR(out, "");
}

static void test_label_names(void)
{
	char out[PROM_NAME_MAX];

	CHECK_EQ_INT(prom_label_name("http.request.method", out, sizeof(out)), 19);
	CHECK_EQ_STR(out, "http_request_method");
	prom_label_name("otel.metric.overflow", out, sizeof(out));
	CHECK_EQ_STR(out, "otel_metric_overflow");
	prom_label_name("2xx", out, sizeof(out));
	CHECK_EQ_STR(out, "key_2xx");
	prom_label_name("_private", out, sizeof(out));
	CHECK_EQ_STR(out, "key_private");
	prom_label_name("k8s.pod:name", out, sizeof(out));
	CHECK_EQ_STR(out, "k8s_pod_name");
	prom_label_name("été", out, sizeof(out));
	CHECK_EQ_STR(out, "_t_");
	CHECK_EQ_INT(prom_label_name("abcdef", out, 4), -ENOSPC);
}

static void test_escaping(void)
{
	struct prom_buf b;

	prom_buf_init(&b, 0);
	prom_append_label_value(&b, "a\\b\"c\nd");
	CHECK_EQ_STR(b.data, "a\\\\b\\\"c\\nd");
	prom_buf_reset(&b);
	prom_append_help(&b, "x \"quoted\" \\ and\nnewline");
	CHECK_EQ_STR(b.data, "x \"quoted\" \\\\ and\\nnewline");
	prom_buf_reset(&b);
	prom_append_label_value(&b, "plain");
	CHECK_EQ_STR(b.data, "plain");
	prom_buf_release(&b);
}

static void test_doubles(void)
{
	static const struct {
		double v;
		const char *want;
	} cases[] = {
	    {0, "0"},
	    {-0.0, "0"},
	    {1, "1"},
	    {42, "42"},
	    {0.005, "0.005"},
	    {0.1, "0.1"},
	    {2.5, "2.5"},
	    {1e-9, "1e-09"},
	    {1e20, "1e+20"},
	    {-3.25, "-3.25"},
	    {1.0 / 3, "0.3333333333333333"},
	};
	struct prom_buf b;

	prom_buf_init(&b, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		prom_buf_reset(&b);
		prom_append_double(&b, cases[i].v);
		CHECK_EQ_STR(b.data, cases[i].want);
		CHECK(strtod(b.data, NULL) == cases[i].v);
	}
	prom_buf_reset(&b);
	prom_append_double(&b, NAN);
	prom_buf_puts(&b, " ");
	prom_append_double(&b, INFINITY);
	prom_buf_puts(&b, " ");
	prom_append_double(&b, -INFINITY);
	CHECK_EQ_STR(b.data, "NaN +Inf -Inf");
	prom_buf_release(&b);
}

static void test_buffer_limits(void)
{
	struct prom_buf b;

	prom_buf_init(&b, 8);
	CHECK_EQ_INT(prom_buf_puts(&b, "12345"), 0);
	CHECK_EQ_INT(prom_buf_printf(&b, "%d", 6789), -E2BIG);
	CHECK_EQ_INT(b.error, -E2BIG);
	/* sticky: even a short append fails now */
	CHECK_EQ_INT(prom_buf_puts(&b, "x"), -E2BIG);
	CHECK_EQ_STR(b.data, "12345");
	prom_buf_reset(&b);
	CHECK_EQ_INT(prom_buf_printf(&b, "%s-%d", "ab", 12), 0);
	CHECK_EQ_STR(b.data, "ab-12");
	CHECK_EQ_INT(b.len, 5);
	prom_buf_release(&b);

	/* growth well beyond the initial capacity */
	prom_buf_init(&b, 0);
	for (int i = 0; i < 10000; i++)
		prom_buf_puts(&b, "0123456789");
	CHECK_EQ_INT(b.len, 100000);
	CHECK_EQ_INT(b.error, 0);
	prom_buf_release(&b);
}

static struct resource *make_resource(const char *service, const char *instance, uint32_t pid)
{
	struct resource *r = resource__new(pid, 1);

	if (!r)
		return NULL;
	resource_add_str(r, "service.name", service);
	if (instance)
		resource_add_str(r, "service.instance.id", instance);
	resource_add_int(r, "process.pid", pid);
	resource_add_str(r, "host.name", "box \"1\"");
	return r;
}

/* A pod's process: service_namespace on every series, the k8s attributes on
 * target_info only, service.namespace not repeated there. */
static void test_render_pod_resource(void)
{
	struct metrics *m = metrics__new(NULL);
	struct resource *r = make_resource("orders", "shop.orders-7d9f8b6c5d-x2x9k.app", 7);
	int counter = m ? metrics_add_counter(m, "jobs.done", "{job}", "Jobs.", true) : -1;
	struct prom_buf b;

	CHECK(m && r && counter >= 0);
	if (!m || !r || counter < 0)
		goto cleanup;
	resource_add_str(r, "service.namespace", "shop");
	resource_add_str(r, "k8s.pod.name", "orders-7d9f8b6c5d-x2x9k");
	CHECK_EQ_INT(metrics_record(m, counter, r, NULL, 0, 1), 0);
	prom_buf_init(&b, 0);
	CHECK_EQ_INT(prom_text_render(m, &b), 0);
	CHECK(contains(&b, "jobs_done_total{service_name=\"orders\",service_namespace=\"shop\","
	                   "service_instance_id=\"shop.orders-7d9f8b6c5d-x2x9k.app\"} 1\n"));
	CHECK(contains(
	    &b, "target_info{service_name=\"orders\",service_namespace=\"shop\","
	        "service_instance_id=\"shop.orders-7d9f8b6c5d-x2x9k.app\",process_pid=\"7\","
	        "host_name=\"box \\\"1\\\"\",k8s_pod_name=\"orders-7d9f8b6c5d-x2x9k\"} 1\n"));
	prom_buf_release(&b);
cleanup:
	resource_unref(r);
	metrics__free(m);
}

static void test_render_http(void)
{
	struct metrics *m = metrics__new(NULL);
	struct resource *r = make_resource("shop", "shop-1", 100);
	struct http_metric_sample s = {
	    .kind = METRICS_HTTP_SERVER,
	    .method = "GET",
	    .status_code = 200,
	    .route = "/users/*",
	    .scheme = "http",
	    .protocol_version = "1.1",
	    .duration_s = 0.01, /* equal to a bound: counted in le="0.01" */
	    .request_body_size = -1,
	    .response_body_size = 300,
	};
	struct prom_buf b;
	const char *labels = "{service_name=\"shop\",service_instance_id=\"shop-1\","
	                     "http_request_method=\"GET\",http_response_status_code=\"200\","
	                     "http_route=\"/users/*\",network_protocol_version=\"1.1\","
	                     "url_scheme=\"http\"";
	char line[1024];

	CHECK(m && r);
	if (!m || !r)
		goto cleanup;
	CHECK_EQ_INT(metrics_record_http(m, r, &s), 0);
	s.duration_s = 0.2;
	CHECK_EQ_INT(metrics_record_http(m, r, &s), 0);
	s.duration_s = 30;
	s.status_code = 503;
	CHECK_EQ_INT(metrics_record_http(m, r, &s), 0);
	prom_buf_init(&b, 0);
	CHECK_EQ_INT(prom_text_render(m, &b), 0);

	CHECK(contains(&b, "# HELP http_server_request_duration_seconds Duration of HTTP server "
	                   "requests.\n# TYPE http_server_request_duration_seconds histogram\n"));
	snprintf(line, sizeof(line),
	         "http_server_request_duration_seconds_bucket%s,le=\"0.005\"} 0\n", labels);
	CHECK(contains(&b, line));
	snprintf(line, sizeof(line),
	         "http_server_request_duration_seconds_bucket%s,le=\"0.01\"} 1\n", labels);
	CHECK(contains(&b, line));
	snprintf(line, sizeof(line),
	         "http_server_request_duration_seconds_bucket%s,le=\"0.25\"} 2\n", labels);
	CHECK(contains(&b, line));
	snprintf(line, sizeof(line),
	         "http_server_request_duration_seconds_bucket%s,le=\"+Inf\"} 2\n", labels);
	CHECK(contains(&b, line));
	snprintf(line, sizeof(line), "http_server_request_duration_seconds_sum%s} %.17g\n", labels,
	         0.01 + 0.2);
	CHECK(contains(&b, line));
	snprintf(line, sizeof(line), "http_server_request_duration_seconds_count%s} 2\n", labels);
	CHECK(contains(&b, line));
	/* the failed request: its own series with error_type */
	CHECK(contains(&b, "error_type=\"503\",http_request_method=\"GET\","
	                   "http_response_status_code=\"503\""));
	/* body sizes: response recorded, request unknown */
	CHECK(contains(&b, "# TYPE http_server_response_body_size_bytes histogram\n"));
	CHECK(!contains(&b, "http_server_request_body_size_bytes"));
	/* histograms without series are not rendered at all */
	CHECK(!contains(&b, "http_client_request_duration_seconds"));
	/* target_info with the other resource attributes, values escaped */
	CHECK(contains(&b, "# TYPE target_info gauge\ntarget_info{service_name=\"shop\","
	                   "service_instance_id=\"shop-1\",process_pid=\"100\","
	                   "host_name=\"box \\\"1\\\"\"} 1\n"));
	prom_buf_release(&b);
cleanup:
	resource_unref(r);
	metrics__free(m);
}

/* Two processes of one service without instance ids render to identical
 * label sets: they must come out as one merged series. */
static void test_render_merges_identical_series(void)
{
	struct metrics *m = metrics__new(NULL);
	struct resource *r1 = make_resource("api", NULL, 1);
	struct resource *r2 = make_resource("api", NULL, 1);
	int counter = m ? metrics_add_counter(m, "jobs.done", "{job}", "Jobs.", true) : -1;
	int gauge = m ? metrics_add_gauge(m, "queue.depth", "{item}", "Depth.", true) : -1;
	struct metric_attr a = {.key = "queue", .type = METRIC_ATTR_STR, .str = "q1"};
	struct http_metric_sample s = {.kind = METRICS_HTTP_SERVER,
	                               .method = "POST",
	                               .status_code = 201,
	                               .duration_s = 0.05,
	                               .request_body_size = -1,
	                               .response_body_size = -1};
	struct prom_buf b;
	const char *p;
	int n = 0;

	CHECK(m && r1 && r2 && counter >= 0 && gauge >= 0);
	if (!m || !r1 || !r2 || counter < 0 || gauge < 0)
		goto cleanup;
	metrics_record_http(m, r1, &s);
	s.duration_s = 1.5;
	metrics_record_http(m, r2, &s);
	metrics_record(m, counter, r1, &a, 1, 3);
	metrics_record(m, counter, r2, &a, 1, 4);
	metrics_record(m, gauge, r1, &a, 1, 10);
	metrics_record(m, gauge, r2, &a, 1, 12);
	prom_buf_init(&b, 0);
	CHECK_EQ_INT(prom_text_render(m, &b), 0);
	CHECK(contains(&b, "http_server_request_duration_seconds_count{service_name=\"api\","
	                   "http_request_method=\"POST\",http_response_status_code=\"201\"} 2\n"));
	CHECK(contains(&b,
	               "http_server_request_duration_seconds_sum{service_name=\"api\","
	               "http_request_method=\"POST\",http_response_status_code=\"201\"} 1.55\n"));
	CHECK(contains(&b, "le=\"0.05\"} 1\n"));
	CHECK(contains(&b, "le=\"2.5\"} 2\n"));
	CHECK(contains(&b, "# TYPE jobs_done_total counter\njobs_done_total{service_name=\"api\","
	                   "queue=\"q1\"} 7\n"));
	CHECK(contains(&b, "queue_depth{service_name=\"api\",queue=\"q1\"} 12\n"));
	/* one target_info line for the two identical resources */
	for (p = b.data; p && (p = strstr(p, "\ntarget_info{")); p++)
		n++;
	CHECK_EQ_INT(n, 1);
	prom_buf_release(&b);
cleanup:
	resource_unref(r1);
	resource_unref(r2);
	metrics__free(m);
}

static void test_render_overflow_and_self(void)
{
	struct metrics_options o = {.cardinality_limit = 3};
	struct metrics *m;
	struct resource *self = make_resource("periscope", NULL, 7);
	struct prom_buf b;
	char route[32];

	o.self_resource = self;
	m = metrics__new(&o);
	CHECK(m != NULL);
	if (!m)
		goto cleanup;
	for (int i = 0; i < 10; i++) {
		struct http_metric_sample s = {.kind = METRICS_HTTP_SERVER,
		                               .method = "GET",
		                               .status_code = 200,
		                               .route = route,
		                               .duration_s = 0.001,
		                               .request_body_size = -1,
		                               .response_body_size = -1};

		snprintf(route, sizeof(route), "/r%d", i);
		metrics_record_http(m, NULL, &s);
	}
	CHECK_EQ_INT(
	    metrics_set_self_counter(m, "periscope.events.dropped", "reason", "ringbuf_full", 5),
	    0);
	CHECK_EQ_INT(metrics_set_self_counter(m, "periscope.events.received", NULL, NULL, 99), 0);
	CHECK_EQ_INT(metrics_set_self_gauge(m, "periscope.connections.tracked", NULL, NULL, 3), 0);
	prom_buf_init(&b, 0);
	CHECK_EQ_INT(prom_text_render(m, &b), 0);
	CHECK(contains(
	    &b, "http_server_request_duration_seconds_count{otel_metric_overflow=\"true\"} 8\n"));
	CHECK(contains(&b, "periscope_events_dropped_total{service_name=\"periscope\","
	                   "reason=\"ringbuf_full\"} 5\n"));
	CHECK(contains(&b, "# TYPE periscope_events_received_total counter\n"
	                   "periscope_events_received_total{service_name=\"periscope\"} 99\n"));
	CHECK(contains(&b, "periscope_connections_tracked{service_name=\"periscope\"} 3\n"));
	prom_buf_release(&b);

	/* a rendering that does not fit the buffer limit fails cleanly */
	prom_buf_init(&b, 100);
	CHECK_EQ_INT(prom_text_render(m, &b), -E2BIG);
	prom_buf_release(&b);
cleanup:
	metrics__free(m);
	resource_unref(self);
}

/* A registry with hostile strings everywhere, checked by promtool. */
static void test_promtool(void)
{
	struct metrics *m = metrics__new(NULL);
	struct resource *r = make_resource("we\"ird\\svc\n", "i-1", 9);
	struct resource *r2 = make_resource("other", NULL, 10);
	struct prom_buf b;
	char path[] = "/tmp/periscope-prom-XXXXXX";
	char cmd[256];
	int fd, rc;

	CHECK(m && r && r2);
	if (!m || !r || !r2)
		goto cleanup;
	for (int i = 0; i < 3; i++) {
		struct http_metric_sample s = {
		    .kind = i == 2 ? METRICS_HTTP_CLIENT : METRICS_HTTP_SERVER,
		    .method = i ? "BREW" : "GET",
		    .status_code = i ? 500 : 200,
		    .route = "/a\"b\\c\xff",
		    .scheme = "https",
		    .protocol_version = "1.1",
		    .server_address = "db.local",
		    .server_port = 8080,
		    .duration_s = 0.3 * i,
		    .request_body_size = 10,
		    .response_body_size = 1 << 20,
		};
		metrics_record_http(m, i ? r2 : r, &s);
	}
	struct db_metric_sample d = {.system_name = "postgresql",
	                             .operation_name = "SELECT",
	                             .collection_name = "users",
	                             .server_address = "127.0.0.1",
	                             .server_port = 5432,
	                             .duration_s = 0.002};
	metrics_record_db(m, r, &d);
	metrics_set_self_counter(m, "periscope.events.dropped", "reason", "lost", 1);
	metrics_set_self_gauge(m, "periscope.ringbuf.usage", NULL, NULL, 4096);
	prom_buf_init(&b, 0);
	CHECK_EQ_INT(prom_text_render(m, &b), 0);
	if (access("/usr/bin/promtool", X_OK) != 0) {
		printf("test_prom_text: promtool not installed, skipping its check\n");
		goto release;
	}
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		goto release;
	CHECK_EQ_INT(write(fd, b.data, b.len), b.len);
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/promtool check metrics < %s", path);
	rc = system(cmd);
	CHECK_EQ_INT(rc, 0);
	if (rc != 0)
		fprintf(stderr, "%s", b.data);
	unlink(path);
release:
	prom_buf_release(&b);
cleanup:
	resource_unref(r);
	resource_unref(r2);
	metrics__free(m);
}

/* Found by fuzz_route: a description with a control character (and bad
 * UTF-8) must not reach the HELP line raw. */
static void test_help_sanitized(void)
{
	struct metrics *m = metrics__new(NULL);
	int id =
	    m ? metrics_add_counter(m, "fuzz.counter", ".\x13", ".\x13 caf\xc3\xa9 \xff\nx", false)
	      : -1;
	struct prom_buf b;

	CHECK(id >= 0);
	if (id < 0)
		goto cleanup;
	CHECK_EQ_INT(metrics_record(m, id, NULL, NULL, 0, 1), 0);
	prom_buf_init(&b, 0);
	CHECK_EQ_INT(prom_text_render(m, &b), 0);
	CHECK(contains(&b, "# HELP fuzz_counter_total .? café ??x\n"));
	CHECK(!contains(&b, "\x13"));
	prom_buf_release(&b);
cleanup:
	metrics__free(m);
}

/* ---- the HTTP server ---- */

struct server_test {
	struct metrics *metrics;
	int port;
	int fail_render; /* atomic */
	int done;        /* atomic: the client thread finished */
	struct event_loop *loop;
};

static int test_render(void *ctx, struct prom_buf *out)
{
	struct server_test *t = ctx;

	if (__atomic_load_n(&t->fail_render, __ATOMIC_SEQ_CST))
		return -EIO;
	return prom_server_render_metrics(t->metrics, out);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int connect_local(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 5};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Reads until EOF (or error/timeout) into resp; returns the length. */
static size_t read_all(int fd, char *resp, size_t cap)
{
	size_t len = 0;

	while (len + 1 < cap) {
		ssize_t n = recv(fd, resp + len, cap - 1 - len, 0);

		if (n <= 0)
			break;
		len += (size_t)n;
	}
	resp[len] = '\0';
	return len;
}

/* Sends request, returns the whole response (the server closes after it). */
static size_t http_exchange(int port, const char *request, size_t request_len, char *resp,
                            size_t cap)
{
	int fd = connect_local(port);
	size_t len;

	resp[0] = '\0';
	if (fd < 0)
		return 0;
	if (send(fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len) {
		close(fd);
		return 0;
	}
	len = read_all(fd, resp, cap);
	close(fd);
	return len;
}

static size_t http_request(int port, const char *request, char *resp, size_t cap)
{
	return http_exchange(port, request, strlen(request), resp, cap);
}

static void *server_client_thread(void *arg)
{
	struct server_test *t = arg;
	static char resp[1 << 20];
	static char big[PROM_SERVER_MAX_REQUEST + 1000];
	int idle[PROM_SERVER_MAX_CLIENTS];
	const char *body;
	uint64_t start;
	int fd;

	/* GET /metrics: the rendered registry with the right headers */
	http_request(t->port, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
	             resp, sizeof(resp));
	CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(strstr(resp, "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != NULL);
	body = strstr(resp, "\r\n\r\n");
	CHECK(body && strstr(body, "# TYPE http_server_request_duration_seconds histogram\n"));
	if (body) {
		char want[64];

		snprintf(want, sizeof(want), "Content-Length: %zu\r\n", strlen(body + 4));
		CHECK(strstr(resp, want) != NULL);
	}
	/* bare-LF request, with a query string */
	http_request(t->port, "GET /metrics?x=1 HTTP/1.0\n\n", resp, sizeof(resp));
	CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	/* HEAD: headers only */
	http_request(t->port, "HEAD /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	body = strstr(resp, "\r\n\r\n");
	CHECK(body && body[4] == '\0');
	/* the index links to /metrics */
	http_request(t->port, "GET / HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(strstr(resp, "href=\"/metrics\"") != NULL);
	http_request(t->port, "GET /metricsx HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	CHECK(strncmp(resp, "HTTP/1.1 404 ", 13) == 0);
	http_request(t->port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", resp,
	             sizeof(resp));
	CHECK(strncmp(resp, "HTTP/1.1 405 ", 13) == 0);
	CHECK(strstr(resp, "Allow: GET, HEAD\r\n") != NULL);
	http_request(t->port, "hello\r\n\r\n", resp, sizeof(resp));
	CHECK(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);
	/* headers beyond the limit */
	memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 27);
	memset(big + 27, 'a', sizeof(big) - 27);
	http_exchange(t->port, big, sizeof(big), resp, sizeof(resp));
	CHECK(strncmp(resp, "HTTP/1.1 431 ", 13) == 0);
	/* a failing renderer gives 500 */
	__atomic_store_n(&t->fail_render, 1, __ATOMIC_SEQ_CST);
	http_request(t->port, "GET /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	CHECK(strncmp(resp, "HTTP/1.1 500 ", 13) == 0);
	__atomic_store_n(&t->fail_render, 0, __ATOMIC_SEQ_CST);

	/* the client cap: one more than allowed is closed at once */
	for (int i = 0; i < PROM_SERVER_MAX_CLIENTS; i++)
		idle[i] = connect_local(t->port);
	usleep(200 * 1000);
	start = mono_ms();
	fd = connect_local(t->port);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_EQ_INT(read_all(fd, resp, sizeof(resp)), 0);
		CHECK(mono_ms() - start < 1000);
		close(fd);
	}
	/* a slow client is dropped after the timeout (1500 ms here) */
	start = mono_ms();
	CHECK(idle[0] >= 0);
	if (idle[0] >= 0) {
		send(idle[0], "GET /met", 8, MSG_NOSIGNAL);
		CHECK_EQ_INT(read_all(idle[0], resp, sizeof(resp)), 0);
		CHECK(mono_ms() - start < 3000);
	}
	for (int i = 0; i < PROM_SERVER_MAX_CLIENTS; i++) {
		if (idle[i] >= 0)
			close(idle[i]);
	}
	/* and once they are gone, the server answers again */
	http_request(t->port, "GET /metrics HTTP/1.1\r\n\r\n", resp, sizeof(resp));
	CHECK(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	__atomic_store_n(&t->done, 1, __ATOMIC_SEQ_CST);
	return NULL;
}

static void stop_when_done(void *ctx)
{
	struct server_test *t = ctx;

	if (__atomic_load_n(&t->done, __ATOMIC_SEQ_CST))
		event_loop_stop(t->loop);
}

static void test_server(void)
{
	struct server_test t = {0};
	struct prom_server *s = NULL, *again = NULL;
	struct http_metric_sample hs = {.kind = METRICS_HTTP_SERVER,
	                                .method = "GET",
	                                .status_code = 200,
	                                .route = "/",
	                                .duration_s = 0.003,
	                                .request_body_size = -1,
	                                .response_body_size = -1};
	char addr[64];
	pthread_t thread;

	t.loop = event_loop__new();
	t.metrics = metrics__new(NULL);
	CHECK(t.loop && t.metrics);
	if (!t.loop || !t.metrics)
		goto cleanup;
	metrics_record_http(t.metrics, NULL, &hs);
	s = prom_server__new(t.loop, "127.0.0.1:0", test_render, &t);
	CHECK(s != NULL);
	if (!s)
		goto cleanup;
	t.port = prom_server_local_port(s);
	CHECK(t.port > 0);
	prom_server_set_timeout_ms(s, 1500);

	/* the same address again: in use */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", t.port);
	errno = 0;
	again = prom_server__new(t.loop, addr, test_render, &t);
	CHECK(again == NULL);
	CHECK_EQ_INT(errno, EADDRINUSE);
	prom_server__free(again);

	CHECK(event_loop_add_timer(t.loop, 20, stop_when_done, &t) >= 0);
	CHECK_EQ_INT(pthread_create(&thread, NULL, server_client_thread, &t), 0);
	CHECK_EQ_INT(event_loop_run(t.loop), 0);
	pthread_join(thread, NULL);
	CHECK(prom_server_scrape_count(s) >= 4);
cleanup:
	prom_server__free(s);
	event_loop__free(t.loop);
	metrics__free(t.metrics);
}

static void test_server_addresses(void)
{
	static const char *const invalid[] = {
	    "",     "nonsense",  "127.0.0.1", "127.0.0.1:",   "127.0.0.1:99999", ":abc",
	    "[::1", "[::1]9464", "::1:9464",  "1.2.3.4.5:80", ":123456",         "host:-1",
	};
	struct event_loop *l = event_loop__new();
	struct prom_server *s;

	CHECK(l != NULL);
	if (!l)
		return;
	for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
		errno = 0;
		s = prom_server__new(l, invalid[i], prom_server_render_metrics, NULL);
		CHECK(s == NULL);
		if (errno != EINVAL)
			fprintf(stderr, "address \"%s\": errno %d\n", invalid[i], errno);
		CHECK_EQ_INT(errno, EINVAL);
		prom_server__free(s);
	}
	errno = 0;
	CHECK(prom_server__new(l, "127.0.0.1:0", NULL, NULL) == NULL);
	CHECK_EQ_INT(errno, EINVAL);
	/* every address, and IPv6 loopback when the host has it */
	s = prom_server__new(l, ":0", prom_server_render_metrics, NULL);
	CHECK(s != NULL);
	CHECK(prom_server_local_port(s) > 0);
	prom_server__free(s);
	s = prom_server__new(l, "[::1]:0", prom_server_render_metrics, NULL);
	CHECK(s != NULL || errno == EADDRNOTAVAIL || errno == EAFNOSUPPORT);
	prom_server__free(s);
	s = prom_server__new(l, "localhost:0", prom_server_render_metrics, NULL);
	CHECK(s != NULL);
	prom_server__free(s);
	event_loop__free(l);
}

int main(void)
{
	RUN(test_metric_names);
	RUN(test_label_names);
	RUN(test_escaping);
	RUN(test_doubles);
	RUN(test_buffer_limits);
	RUN(test_render_http);
	RUN(test_render_merges_identical_series);
	RUN(test_render_overflow_and_self);
	RUN(test_promtool);
	RUN(test_help_sanitized);
	RUN(test_server_addresses);
	RUN(test_server);
	RUN(test_render_pod_resource);
	return unit_summary("test_prom_text");
}
