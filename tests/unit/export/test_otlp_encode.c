/* test_otlp_encode.c — span → OTLP protobuf encoding, checked with protobuf-c's
 * own decoder and, when the official protos sit at ../shared/otlp-proto, with
 * `protoc --decode` as an independent decoder; gzip/gunzip round trips; and the
 * OTLP/HTTP exporter thread against a small in-process HTTP server (batching,
 * retry with Retry-After, 400 drops, queue-full drops, flush, gzip, headers). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "otlp.pb-c.h"
#include "export/otlp_encode.h"
#include "export/otlp_exporter.h"
#include "telemetry/resource.h"
#include "telemetry/span.h"
#include "unit.h"

static const uint8_t TRACE_A[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                    0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
static const uint8_t SPAN_A[8] = {0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7};
static const uint8_t PARENT_B[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88};

static struct resource *make_resource(const char *service, uint32_t pid)
{
	struct resource *r = resource__new(pid, 1000);

	if (!r)
		return NULL;
	resource_add_str(r, "service.name", service);
	resource_add_int(r, "process.pid", pid);
	return r;
}

/* A server span with attributes of every type. */
static void make_server_span(struct span *s, struct resource *r)
{
	span_init(s);
	memcpy(s->trace_id, TRACE_A, 16);
	memcpy(s->span_id, SPAN_A, 8);
	s->kind = SPAN_KIND_SERVER;
	s->status = SPAN_STATUS_ERROR;
	s->sampled = 1;
	s->start_unix_ns = 1700000000123456789ULL;
	s->end_unix_ns = 1700000000223456789ULL;
	snprintf(s->name, sizeof(s->name), "GET /users/{id}");
	snprintf(s->status_message, sizeof(s->status_message), "HTTP 500");
	snprintf(s->trace_state, sizeof(s->trace_state), "vendor=abc");
	s->resource = resource_ref(r);
	span_set_str(s, "http.request.method", "GET");
	span_set_int(s, "http.response.status_code", 500);
	span_set_bool(s, "error.flag", true);
	span_set_double(s, "periscope.ratio", 0.25);
}

static void make_client_span(struct span *s, struct resource *r, uint8_t id_last)
{
	span_init(s);
	memcpy(s->trace_id, TRACE_A, 16);
	memcpy(s->span_id, SPAN_A, 8);
	s->span_id[7] = id_last;
	memcpy(s->parent_span_id, PARENT_B, 8);
	s->kind = SPAN_KIND_CLIENT;
	s->status = SPAN_STATUS_UNSET;
	s->start_unix_ns = 5;
	s->end_unix_ns = 9;
	snprintf(s->name, sizeof(s->name), "SELECT shop.orders");
	s->resource = r ? resource_ref(r) : NULL;
	span_set_str(s, "db.system", "postgresql");
}

static const Periscope__Otlp__AnyValue *find_attr(Periscope__Otlp__KeyValue **kv, size_t n,
                                                  const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(kv[i]->key, key) == 0)
			return kv[i]->value;
	return NULL;
}

static void test_encode_decode_grouping(void)
{
	struct resource *r1 = make_resource("shop", 100), *r2 = make_resource("db", 200);
	struct span s[4];
	const struct span *ptrs[4] = {&s[0], &s[1], &s[2], &s[3]};
	uint8_t *buf = NULL;
	size_t len = 0;
	Periscope__Otlp__ExportTraceServiceRequest *req;

	make_server_span(&s[0], r1);
	make_client_span(&s[1], r2, 1);
	make_client_span(&s[2], r1, 2);
	make_client_span(&s[3], NULL, 3);
	CHECK_EQ_INT(otlp_encode_traces(ptrs, 4, &buf, &len), 0);
	CHECK(len > 0);
	req = periscope__otlp__export_trace_service_request__unpack(NULL, len, buf);
	CHECK(req != NULL);
	if (!req)
		goto cleanup;
	CHECK_EQ_INT(req->n_resource_spans, 3);
	if (req->n_resource_spans != 3)
		goto cleanup_req;
	{
		Periscope__Otlp__ResourceSpans *rs = req->resource_spans[0];
		Periscope__Otlp__ScopeSpans *ss;
		Periscope__Otlp__Span *sp;
		const Periscope__Otlp__AnyValue *v;

		CHECK_EQ_INT(rs->resource->n_attributes, 2);
		v = find_attr(rs->resource->attributes, rs->resource->n_attributes, "service.name");
		CHECK(v && v->value_case == PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE);
		CHECK(v && strcmp(v->string_value, "shop") == 0);
		v = find_attr(rs->resource->attributes, rs->resource->n_attributes, "process.pid");
		CHECK(v && v->value_case == PERISCOPE__OTLP__ANY_VALUE__VALUE_INT_VALUE &&
		      v->int_value == 100);
		CHECK_EQ_INT(rs->n_scope_spans, 1);
		ss = rs->scope_spans[0];
		CHECK_EQ_STR(ss->scope->name, "periscope");
		CHECK_EQ_STR(ss->scope->version, otlp_scope_version());
		CHECK_EQ_INT(ss->n_spans, 2);
		sp = ss->spans[0];
		CHECK_EQ_INT(sp->trace_id.len, 16);
		CHECK(memcmp(sp->trace_id.data, TRACE_A, 16) == 0);
		CHECK_EQ_INT(sp->span_id.len, 8);
		CHECK(memcmp(sp->span_id.data, SPAN_A, 8) == 0);
		CHECK_EQ_INT(sp->parent_span_id.len, 0);
		CHECK_EQ_STR(sp->name, "GET /users/{id}");
		CHECK_EQ_STR(sp->trace_state, "vendor=abc");
		CHECK_EQ_INT(sp->kind, PERISCOPE__OTLP__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
		CHECK_EQ_INT(sp->flags, 1);
		CHECK(sp->start_time_unix_nano == 1700000000123456789ULL);
		CHECK(sp->end_time_unix_nano == 1700000000223456789ULL);
		CHECK(sp->status != NULL);
		if (sp->status) {
			CHECK_EQ_INT(sp->status->code,
			             PERISCOPE__OTLP__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
			CHECK_EQ_STR(sp->status->message, "HTTP 500");
		}
		CHECK_EQ_INT(sp->n_attributes, 4);
		v = find_attr(sp->attributes, sp->n_attributes, "http.request.method");
		CHECK(v && v->value_case == PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE &&
		      strcmp(v->string_value, "GET") == 0);
		v = find_attr(sp->attributes, sp->n_attributes, "http.response.status_code");
		CHECK(v && v->value_case == PERISCOPE__OTLP__ANY_VALUE__VALUE_INT_VALUE &&
		      v->int_value == 500);
		v = find_attr(sp->attributes, sp->n_attributes, "error.flag");
		CHECK(v && v->value_case == PERISCOPE__OTLP__ANY_VALUE__VALUE_BOOL_VALUE &&
		      v->bool_value);
		v = find_attr(sp->attributes, sp->n_attributes, "periscope.ratio");
		CHECK(v && v->value_case == PERISCOPE__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE &&
		      v->double_value == 0.25);
		/* second span of the same resource: the third one submitted */
		sp = ss->spans[1];
		CHECK_EQ_INT(sp->span_id.data[7], 2);
		CHECK_EQ_INT(sp->parent_span_id.len, 8);
		CHECK(memcmp(sp->parent_span_id.data, PARENT_B, 8) == 0);
		CHECK_EQ_INT(sp->kind, PERISCOPE__OTLP__SPAN__SPAN_KIND__SPAN_KIND_CLIENT);
		CHECK(sp->status == NULL);
		CHECK_EQ_INT(sp->flags, 0);
	}
	{
		Periscope__Otlp__ResourceSpans *rs = req->resource_spans[1];
		const Periscope__Otlp__AnyValue *v;

		v = find_attr(rs->resource->attributes, rs->resource->n_attributes, "service.name");
		CHECK(v && strcmp(v->string_value, "db") == 0);
		CHECK_EQ_INT(rs->scope_spans[0]->n_spans, 1);
		CHECK_EQ_INT(rs->scope_spans[0]->spans[0]->span_id.data[7], 1);
		/* no resource: an empty one */
		rs = req->resource_spans[2];
		CHECK(rs->resource == NULL || rs->resource->n_attributes == 0);
		CHECK_EQ_INT(rs->scope_spans[0]->n_spans, 1);
		CHECK_EQ_INT(rs->scope_spans[0]->spans[0]->span_id.data[7], 3);
	}
cleanup_req:
	periscope__otlp__export_trace_service_request__free_unpacked(req, NULL);
cleanup:
	free(buf);
	for (int i = 0; i < 4; i++)
		span_release(&s[i]);
	resource_unref(r1);
	resource_unref(r2);
}

static void test_encode_empty(void)
{
	uint8_t *buf = NULL;
	size_t len = 99;

	CHECK_EQ_INT(otlp_encode_traces(NULL, 0, &buf, &len), 0);
	CHECK(buf != NULL);
	CHECK_EQ_INT(len, 0);
	free(buf);
}

static void test_encode_rejects_unterminated(void)
{
	struct span s;
	const struct span *p = &s;
	uint8_t *buf = (uint8_t *)"x";
	size_t len = 1;

	span_init(&s);
	memset(s.name, 'a', sizeof(s.name));
	CHECK_EQ_INT(otlp_encode_traces(&p, 1, &buf, &len), -EINVAL);
	CHECK(buf == NULL);
}

static void test_encode_sanitizes_utf8_and_bad_attrs(void)
{
	struct span s;
	const struct span *p = &s;
	uint8_t *buf = NULL;
	size_t len = 0;
	Periscope__Otlp__ExportTraceServiceRequest *req;

	span_init(&s);
	memcpy(s.trace_id, TRACE_A, 16);
	memcpy(s.span_id, SPAN_A, 8);
	s.kind = 77; /* not a kind */
	snprintf(s.name, sizeof(s.name), "GET /caf\xc3\xa9/\xff\xfe/\xe2\x82");
	span_set_str(&s, "url.path", "/ok\xc0\xaf");
	span_set_str(&s, "good", "\xe2\x82\xac");
	span_set_int(&s, "broken", 1);
	s.attrs[s.n_attrs - 1].type = 9; /* unknown type: dropped */
	req = NULL;
	CHECK_EQ_INT(otlp_encode_traces(&p, 1, &buf, &len), 0);
	if (buf)
		req = periscope__otlp__export_trace_service_request__unpack(NULL, len, buf);
	CHECK(req != NULL);
	if (req) {
		Periscope__Otlp__Span *sp = req->resource_spans[0]->scope_spans[0]->spans[0];

		CHECK_EQ_STR(sp->name, "GET /caf\xc3\xa9/??"
		                       "/??");
		CHECK_EQ_INT(sp->kind, PERISCOPE__OTLP__SPAN__SPAN_KIND__SPAN_KIND_UNSPECIFIED);
		CHECK_EQ_INT(sp->n_attributes, 2);
		CHECK_EQ_INT(sp->dropped_attributes_count, 1);
		CHECK_EQ_STR(sp->attributes[0]->value->string_value, "/ok??");
		CHECK_EQ_STR(sp->attributes[1]->value->string_value, "\xe2\x82\xac");
		periscope__otlp__export_trace_service_request__free_unpacked(req, NULL);
	}
	free(buf);
	/* an attribute whose offset runs past the arena is dropped, not read */
	s.attrs[0].off = SPAN_ARENA_SIZE - 2;
	s.attrs[0].len = 10;
	CHECK_EQ_INT(otlp_encode_traces(&p, 1, &buf, &len), 0);
	req = periscope__otlp__export_trace_service_request__unpack(NULL, len, buf);
	CHECK(req != NULL);
	if (req) {
		CHECK_EQ_INT(
		    req->resource_spans[0]->scope_spans[0]->spans[0]->dropped_attributes_count, 2);
		periscope__otlp__export_trace_service_request__free_unpacked(req, NULL);
	}
	free(buf);
	span_release(&s);
}

static void test_gzip_round_trip(void)
{
	uint8_t in[10000];
	uint8_t *gz = NULL, *back = NULL;
	size_t gz_len = 0, back_len = 0;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i % 7 == 0 ? i * 31 : 'a');
	CHECK_EQ_INT(otlp_gzip(in, sizeof(in), &gz, &gz_len), 0);
	CHECK(gz_len > 18 && gz_len < sizeof(in));
	CHECK(gz && gz[0] == 0x1f && gz[1] == 0x8b); /* gzip magic */
	CHECK_EQ_INT(otlp_gunzip(gz, gz_len, sizeof(in), &back, &back_len), 0);
	CHECK_EQ_INT(back_len, sizeof(in));
	CHECK(back && memcmp(back, in, sizeof(in)) == 0);
	free(back);
	/* too small a limit */
	CHECK_EQ_INT(otlp_gunzip(gz, gz_len, sizeof(in) - 1, &back, &back_len), -EFBIG);
	CHECK(back == NULL);
	/* truncated */
	CHECK_EQ_INT(otlp_gunzip(gz, gz_len / 2, sizeof(in), &back, &back_len), -EINVAL);
	/* corrupt */
	gz[0] = 0;
	CHECK_EQ_INT(otlp_gunzip(gz, gz_len, sizeof(in), &back, &back_len), -EINVAL);
	free(gz);
	/* empty input */
	CHECK_EQ_INT(otlp_gzip(in, 0, &gz, &gz_len), 0);
	CHECK_EQ_INT(otlp_gunzip(gz, gz_len, 0, &back, &back_len), 0);
	CHECK_EQ_INT(back_len, 0);
	free(back);
	free(gz);
}

/* ../shared/otlp-proto relative to the repository (the test runs from the
 * repository root), or $PERISCOPE_OTLP_PROTO_DIR. */
static const char *shared_proto_dir(void)
{
	const char *env = getenv("PERISCOPE_OTLP_PROTO_DIR");
	const char *rel = "../shared/otlp-proto";

	if (env && access(env, R_OK) == 0)
		return env;
	if (access(
	        "../shared/otlp-proto/opentelemetry/proto/collector/trace/v1/trace_service.proto",
	        R_OK) == 0)
		return rel;
	return NULL;
}

static void test_protoc_independent_decode(void)
{
	const char *dir = shared_proto_dir();
	char path[] = "/tmp/periscope-otlp-XXXXXX";
	char cmd[1024], text[16384];
	struct resource *r = make_resource("shop", 4242);
	struct span s[2];
	const struct span *ptrs[2] = {&s[0], &s[1]};
	uint8_t *buf = NULL;
	size_t len = 0, got = 0;
	FILE *pipe;
	int fd;

	if (!dir || system("protoc --version >/dev/null 2>&1") != 0) {
		printf("test_otlp_encode: protoc or ../shared/otlp-proto missing, skipping "
		       "independent decode\n");
		resource_unref(r);
		return;
	}
	make_server_span(&s[0], r);
	make_client_span(&s[1], r, 9);
	CHECK_EQ_INT(otlp_encode_traces(ptrs, 2, &buf, &len), 0);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		goto cleanup;
	CHECK(write(fd, buf, len) == (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd),
	         "protoc --decode=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest "
	         "-I '%s' opentelemetry/proto/collector/trace/v1/trace_service.proto < '%s' 2>&1",
	         dir, path);
	pipe = popen(cmd, "r");
	CHECK(pipe != NULL);
	if (pipe) {
		size_t k;

		while (got < sizeof(text) - 1 &&
		       (k = fread(text + got, 1, sizeof(text) - 1 - got, pipe)) > 0)
			got += k;
		text[got] = '\0';
		CHECK_EQ_INT(pclose(pipe), 0);
		CHECK(strstr(text, "string_value: \"shop\"") != NULL);
		CHECK(strstr(text, "key: \"process.pid\"") != NULL);
		CHECK(strstr(text, "int_value: 4242") != NULL);
		CHECK(strstr(text, "name: \"GET /users/{id}\"") != NULL);
		CHECK(strstr(text, "name: \"SELECT shop.orders\"") != NULL);
		CHECK(strstr(text, "kind: SPAN_KIND_SERVER") != NULL);
		CHECK(strstr(text, "kind: SPAN_KIND_CLIENT") != NULL);
		CHECK(
		    strstr(text,
		           "trace_id: \"K\\371/5w\\263M\\246\\243\\316\\222\\235\\016\\016G6\"") !=
		    NULL);
		CHECK(strstr(text, "parent_span_id: \"\\021\\\"3DUfw\\210\"") != NULL);
		CHECK(strstr(text, "start_time_unix_nano: 1700000000123456789") != NULL);
		CHECK(strstr(text, "code: STATUS_CODE_ERROR") != NULL);
		CHECK(strstr(text, "message: \"HTTP 500\"") != NULL);
		CHECK(strstr(text, "trace_state: \"vendor=abc\"") != NULL);
		CHECK(strstr(text, "flags: 1") != NULL);
		CHECK(strstr(text, "bool_value: true") != NULL);
		CHECK(strstr(text, "double_value: 0.25") != NULL);
		CHECK(strstr(text, "name: \"periscope\"") != NULL);
		if (unit_failed_checks)
			fprintf(stderr, "protoc output:\n%s\n", text);
	}
	unlink(path);
cleanup:
	free(buf);
	span_release(&s[0]);
	span_release(&s[1]);
	resource_unref(r);
}

/* ---- exporter ---- */

static void test_signal_url_and_headers_emit(void *ctx, const char *key, const char *value)
{
	char *out = ctx;
	size_t used = strlen(out);

	snprintf(out + used, 512 - used, "[%s=%s]", key, value);
}

static void test_signal_url_and_headers(void)
{
	char url[64], got[512] = "";

	CHECK_EQ_INT(otlp_signal_url("http://c:4318", "traces", url, sizeof(url)), 0);
	CHECK_EQ_STR(url, "http://c:4318/v1/traces");
	CHECK_EQ_INT(otlp_signal_url("http://c:4318//", "metrics", url, sizeof(url)), 0);
	CHECK_EQ_STR(url, "http://c:4318/v1/metrics");
	CHECK_EQ_INT(
	    otlp_signal_url("http://a-very-long-host-name-indeed.example:4318", "metrics", url, 20),
	    -ENAMETOOLONG);
	CHECK_EQ_INT(otlp_parse_headers(" api-key = se%20cret ,x=a%3Db,,noeq, =v,bad=%0d%0aX: y,"
	                                "t=%zz",
	                                test_signal_url_and_headers_emit, got),
	             3);
	CHECK_EQ_STR(got, "[api-key=se cret][x=a=b][t=%zz]");
}

static void test_config_from_env(void)
{
	struct otlp_exporter_config c;

	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9090/custom", 1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "a=1", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2", 1);
	setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500", 1);
	setenv("OTEL_BSP_SCHEDULE_DELAY", "100", 1);
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "64", 1);
	setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1000", 1);
	CHECK_EQ_INT(otlp_exporter_config_from_env(&c), 0);
	CHECK_EQ_STR(c.traces_url, "http://collector:4318/v1/traces");
	CHECK_EQ_STR(c.metrics_url, "http://m:9090/custom");
	CHECK(c.endpoint_from_env);
	CHECK_EQ_STR(c.headers, "a=1");
	CHECK_EQ_STR(c.traces_headers, "b=2");
	CHECK(c.gzip);
	CHECK_EQ_INT(c.timeout_ms, 2500);
	CHECK_EQ_INT(c.schedule_delay_ms, 100);
	CHECK_EQ_INT(c.max_queue_size, 64);
	CHECK_EQ_INT(c.max_export_batch_size, 64); /* never more than the queue */
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "-3", 1);
	setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", 1);
	CHECK_EQ_INT(otlp_exporter_config_from_env(&c), -EINVAL);
	CHECK_EQ_INT(c.max_queue_size, 2048);
	CHECK(!c.gzip);
	unsetenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_HEADERS");
	unsetenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
	unsetenv("OTEL_EXPORTER_OTLP_COMPRESSION");
	unsetenv("OTEL_EXPORTER_OTLP_TIMEOUT");
	unsetenv("OTEL_BSP_SCHEDULE_DELAY");
	unsetenv("OTEL_BSP_MAX_QUEUE_SIZE");
	unsetenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
	CHECK_EQ_INT(otlp_exporter_config_from_env(&c), 0);
	CHECK(!c.endpoint_from_env);
	CHECK_EQ_STR(c.traces_url, "http://localhost:4318/v1/traces");
	CHECK_EQ_INT(c.timeout_ms, 10000);
	CHECK_EQ_INT(c.schedule_delay_ms, 5000);
	CHECK_EQ_INT(c.max_queue_size, 2048);
	CHECK_EQ_INT(c.max_export_batch_size, 512);
}

/* A tiny HTTP/1.1 server on 127.0.0.1 that records requests and answers
 * from a script of status codes (200 once the script runs out). */
#define SRV_MAX_REQ  64
#define SRV_MAX_CONN 8
#define SRV_BUF      (4 << 20)

struct srv_request {
	char path[64];
	int status;
	bool gzip;
	char x_test[32];
	uint8_t *body;
	size_t len;
};

struct srv_conn {
	int fd;
	uint8_t *buf;
	size_t used;
};

struct test_server {
	int listen_fd;
	uint16_t port;
	pthread_t thread;
	pthread_mutex_t lock;
	bool stop;
	int script[16];
	int n_script;
	int retry_after; /* seconds to send with 429/503, -1: none */
	int n_req;
	struct srv_request req[SRV_MAX_REQ];
	int connections;
};

static const char *srv_header(const char *head, const char *name, char *out, size_t out_size)
{
	const char *p = head;
	size_t nlen = strlen(name);

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1, *end = strstr(v, "\r\n");
			size_t len;

			while (*v == ' ')
				v++;
			len = end ? (size_t)(end - v) : strlen(v);
			if (len >= out_size)
				len = out_size - 1;
			memcpy(out, v, len);
			out[len] = '\0';
			return out;
		}
	}
	return NULL;
}

/* Handles every complete request in c->buf. false: close the connection. */
static bool srv_handle(struct test_server *ts, struct srv_conn *c)
{
	for (;;) {
		uint8_t *end = memmem(c->buf, c->used, "\r\n\r\n", 4);
		size_t head_len, body_len = 0, total;
		char head[4096], value[64], reply[256];
		struct srv_request *r;
		int status;

		if (!end)
			return c->used < 8192;
		head_len = (size_t)(end - c->buf) + 4;
		if (head_len >= sizeof(head))
			return false;
		memcpy(head, c->buf, head_len);
		head[head_len] = '\0';
		if (srv_header(head, "Content-Length", value, sizeof(value)))
			body_len = strtoul(value, NULL, 10);
		total = head_len + body_len;
		if (total > SRV_BUF)
			return false;
		if (c->used < total)
			return true;
		pthread_mutex_lock(&ts->lock);
		status = ts->n_req < ts->n_script ? ts->script[ts->n_req] : 200;
		if (ts->n_req < SRV_MAX_REQ) {
			r = &ts->req[ts->n_req];
			sscanf(head, "POST %63s", r->path);
			r->status = status;
			r->gzip = srv_header(head, "Content-Encoding", value, sizeof(value)) &&
			          strcmp(value, "gzip") == 0;
			if (!srv_header(head, "X-Test", r->x_test, sizeof(r->x_test)))
				r->x_test[0] = '\0';
			r->body = malloc(body_len ? body_len : 1);
			if (r->body)
				memcpy(r->body, c->buf + head_len, body_len);
			r->len = body_len;
		}
		ts->n_req++;
		if ((status == 503 || status == 429) && ts->retry_after >= 0)
			snprintf(value, sizeof(value), "Retry-After: %d\r\n", ts->retry_after);
		else
			value[0] = '\0';
		pthread_mutex_unlock(&ts->lock);
		snprintf(reply, sizeof(reply),
		         "HTTP/1.1 %d X\r\nContent-Type: application/x-protobuf\r\n"
		         "Content-Length: %d\r\n%s\r\n%s",
		         status, status == 400 ? 3 : 0, value, status == 400 ? "bad" : "");
		if (write(c->fd, reply, strlen(reply)) < 0)
			return false;
		memmove(c->buf, c->buf + total, c->used - total);
		c->used -= total;
	}
}

static void *srv_main(void *arg)
{
	struct test_server *ts = arg;
	struct srv_conn conns[SRV_MAX_CONN];
	int n_conns = 0;

	for (;;) {
		struct pollfd pfd[SRV_MAX_CONN + 1];
		bool stop;

		pthread_mutex_lock(&ts->lock);
		stop = ts->stop;
		pthread_mutex_unlock(&ts->lock);
		if (stop)
			break;
		pfd[0] = (struct pollfd){.fd = ts->listen_fd, .events = POLLIN};
		for (int i = 0; i < n_conns; i++)
			pfd[i + 1] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
		if (poll(pfd, (nfds_t)n_conns + 1, 50) <= 0)
			continue;
		if ((pfd[0].revents & POLLIN) && n_conns < SRV_MAX_CONN) {
			int fd = accept(ts->listen_fd, NULL, NULL);

			if (fd >= 0) {
				conns[n_conns] = (struct srv_conn){fd, malloc(SRV_BUF), 0};
				n_conns++;
				pthread_mutex_lock(&ts->lock);
				ts->connections++;
				pthread_mutex_unlock(&ts->lock);
			}
		}
		for (int i = 0; i < n_conns; i++) {
			struct srv_conn *c = &conns[i];
			ssize_t got;
			bool keep = true;

			if (!(pfd[i + 1].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			got = read(c->fd, c->buf + c->used, SRV_BUF - c->used);
			if (got <= 0 || !c->buf)
				keep = false;
			else {
				c->used += (size_t)got;
				keep = srv_handle(ts, c);
			}
			if (!keep) {
				close(c->fd);
				free(c->buf);
				conns[i] = conns[--n_conns];
				pfd[i + 1] = pfd[n_conns + 1];
				i--;
			}
		}
	}
	for (int i = 0; i < n_conns; i++) {
		close(conns[i].fd);
		free(conns[i].buf);
	}
	return NULL;
}

static struct test_server *srv_start(const int *script, int n_script, int retry_after)
{
	struct test_server *ts = calloc(1, sizeof(*ts));
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);

	if (!ts)
		return NULL;
	pthread_mutex_init(&ts->lock, NULL);
	if (n_script > 0)
		memcpy(ts->script, script, (size_t)n_script * sizeof(int));
	ts->n_script = n_script;
	ts->retry_after = retry_after;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ts->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ts->listen_fd < 0 || bind(ts->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(ts->listen_fd, 16) < 0 ||
	    getsockname(ts->listen_fd, (struct sockaddr *)&addr, &alen) < 0) {
		close(ts->listen_fd);
		free(ts);
		return NULL;
	}
	ts->port = ntohs(addr.sin_port);
	pthread_create(&ts->thread, NULL, srv_main, ts);
	return ts;
}

static void srv_stop(struct test_server *ts)
{
	if (!ts)
		return;
	pthread_mutex_lock(&ts->lock);
	ts->stop = true;
	pthread_mutex_unlock(&ts->lock);
	pthread_join(ts->thread, NULL);
	close(ts->listen_fd);
	for (int i = 0; i < ts->n_req && i < SRV_MAX_REQ; i++)
		free(ts->req[i].body);
	pthread_mutex_destroy(&ts->lock);
	free(ts);
}

static int srv_count(struct test_server *ts)
{
	int n;

	pthread_mutex_lock(&ts->lock);
	n = ts->n_req;
	pthread_mutex_unlock(&ts->lock);
	return n;
}

/* Spans in one recorded trace request, -1 if it does not decode. */
static int srv_spans_in(struct test_server *ts, int i)
{
	struct srv_request *r = &ts->req[i];
	Periscope__Otlp__ExportTraceServiceRequest *req;
	uint8_t *plain = NULL;
	size_t plain_len = 0;
	int n = 0;

	if (r->gzip) {
		if (otlp_gunzip(r->body, r->len, 16 << 20, &plain, &plain_len) < 0)
			return -1;
		req = periscope__otlp__export_trace_service_request__unpack(NULL, plain_len, plain);
	} else {
		req = periscope__otlp__export_trace_service_request__unpack(NULL, r->len, r->body);
	}
	free(plain);
	if (!req)
		return -1;
	for (size_t k = 0; k < req->n_resource_spans; k++)
		n += (int)req->resource_spans[k]->scope_spans[0]->n_spans;
	periscope__otlp__export_trace_service_request__free_unpacked(req, NULL);
	return n;
}

static uint64_t test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct log_capture {
	pthread_mutex_t lock;
	int lines;
	char last[512];
};

static void capture_log(void *ctx, int level, const char *msg)
{
	struct log_capture *lc = ctx;

	pthread_mutex_lock(&lc->lock);
	lc->lines++;
	snprintf(lc->last, sizeof(lc->last), "%s", msg);
	pthread_mutex_unlock(&lc->lock);
}

static void test_config(struct otlp_exporter_config *c, uint16_t port)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->traces_url, sizeof(c->traces_url), "http://127.0.0.1:%u/v1/traces", port);
	snprintf(c->metrics_url, sizeof(c->metrics_url), "http://127.0.0.1:%u/v1/metrics", port);
	c->timeout_ms = 2000;
	c->schedule_delay_ms = 10000;
	c->max_queue_size = 16;
	c->max_export_batch_size = 3;
	c->max_pending_metrics = 2;
	c->retry_initial_ms = 20;
	c->retry_max_backoff_ms = 100;
	c->retry_max_elapsed_ms = 5000;
}

static void submit_n(struct otlp_exporter *e, struct resource *r, int n, int expect_ok)
{
	struct span s;
	int ok = 0;

	for (int i = 0; i < n; i++) {
		make_client_span(&s, r, (uint8_t)i);
		if (otlp_exporter_submit_span(e, &s) == 0)
			ok++;
		span_release(&s);
	}
	CHECK_EQ_INT(ok, expect_ok);
}

static void test_exporter_batches_and_flushes(void)
{
	struct test_server *ts = srv_start(NULL, 0, -1);
	struct resource *r = make_resource("shop", 1);
	struct otlp_exporter_config c;
	struct otlp_exporter_stats st;
	struct otlp_exporter *e;
	int total = 0, n;

	CHECK(ts != NULL);
	if (!ts)
		return;
	test_config(&c, ts->port);
	c.schedule_delay_ms = 150;
	e = otlp_exporter__new(&c);
	CHECK(e != NULL);
	if (!e)
		goto cleanup;
	/* two full batches go out at once, the last span after the schedule delay */
	submit_n(e, r, 7, 7);
	for (int i = 0; i < 300; i++) {
		otlp_exporter_stats(e, &st);
		if (st.spans_exported == 7)
			break;
		usleep(10000);
	}
	n = srv_count(ts);
	CHECK(n >= 3); /* 3 + 3 + 1, more only if submitting took longer than the delay */
	for (int i = 0; i < n; i++) {
		int k = srv_spans_in(ts, i);

		CHECK(k >= 1 && k <= 3);
		CHECK_EQ_STR(ts->req[i].path, "/v1/traces");
		CHECK(!ts->req[i].gzip);
		total += k;
	}
	CHECK_EQ_INT(total, 7);
	/* flush sends what waits without waiting for the delay */
	submit_n(e, r, 2, 2);
	CHECK_EQ_INT(otlp_exporter_flush(e, 3000), 0);
	CHECK_EQ_INT(srv_count(ts), n + 1);
	CHECK_EQ_INT(srv_spans_in(ts, n), 2);
	otlp_exporter_stats(e, &st);
	CHECK_EQ_INT(st.spans_submitted, 9);
	CHECK_EQ_INT(st.spans_exported, 9);
	CHECK_EQ_INT(st.spans_queued, 0);
	CHECK_EQ_INT(st.export_failures, 0);
	CHECK(st.bytes_sent > 0);
	/* keep-alive: one connection for all requests */
	CHECK_EQ_INT(ts->connections, 1);
	/* flush with nothing queued returns at once */
	CHECK_EQ_INT(otlp_exporter_flush(e, 1000), 0);
	otlp_exporter__free(e);
cleanup:
	srv_stop(ts);
	resource_unref(r);
}

static void test_exporter_retries_with_retry_after(void)
{
	int script[] = {503, 429};
	struct test_server *ts = srv_start(script, 2, 1);
	struct resource *r = make_resource("shop", 1);
	struct log_capture lc = {PTHREAD_MUTEX_INITIALIZER, 0, ""};
	struct otlp_exporter_config c;
	struct otlp_exporter_stats st;
	struct otlp_exporter *e;
	uint64_t t0;

	if (!ts)
		return;
	test_config(&c, ts->port);
	c.log = capture_log;
	c.log_ctx = &lc;
	e = otlp_exporter__new(&c);
	CHECK(e != NULL);
	if (!e)
		goto cleanup;
	submit_n(e, r, 2, 2);
	t0 = test_now_ms();
	CHECK_EQ_INT(otlp_exporter_flush(e, 5000), 0);
	CHECK(test_now_ms() - t0 >= 1900); /* two Retry-After: 1 */
	CHECK_EQ_INT(srv_count(ts), 3);
	CHECK_EQ_INT(ts->req[2].status, 200);
	CHECK_EQ_INT(srv_spans_in(ts, 2), 2);
	otlp_exporter_stats(e, &st);
	CHECK_EQ_INT(st.spans_exported, 2);
	CHECK_EQ_INT(st.spans_dropped_export, 0);
	CHECK_EQ_INT(st.export_failures, 2);
	CHECK_EQ_INT(st.retries, 2);
	/* one line for the first failure, one for the recovery */
	CHECK_EQ_INT(lc.lines, 2);
	CHECK(strstr(lc.last, "recovered") != NULL);
	otlp_exporter__free(e);
cleanup:
	srv_stop(ts);
	resource_unref(r);
}

static void test_exporter_drops_on_400(void)
{
	int script[] = {400};
	struct test_server *ts = srv_start(script, 1, -1);
	struct resource *r = make_resource("shop", 1);
	struct log_capture lc = {PTHREAD_MUTEX_INITIALIZER, 0, ""};
	struct otlp_exporter_config c;
	struct otlp_exporter_stats st;
	struct otlp_exporter *e;

	if (!ts)
		return;
	test_config(&c, ts->port);
	c.log = capture_log;
	c.log_ctx = &lc;
	e = otlp_exporter__new(&c);
	CHECK(e != NULL);
	if (!e)
		goto cleanup;
	submit_n(e, r, 2, 2);
	CHECK_EQ_INT(otlp_exporter_flush(e, 3000), 0);
	CHECK_EQ_INT(srv_count(ts), 1); /* not retried */
	otlp_exporter_stats(e, &st);
	CHECK_EQ_INT(st.spans_dropped_export, 2);
	CHECK_EQ_INT(st.spans_exported, 0);
	CHECK_EQ_INT(st.retries, 0);
	CHECK_EQ_INT(st.export_failures, 1);
	CHECK_EQ_INT(lc.lines, 1);
	CHECK(strstr(lc.last, "HTTP 400: bad") != NULL);
	/* the next batch goes through */
	submit_n(e, r, 1, 1);
	CHECK_EQ_INT(otlp_exporter_flush(e, 3000), 0);
	otlp_exporter_stats(e, &st);
	CHECK_EQ_INT(st.spans_exported, 1);
	otlp_exporter__free(e);
cleanup:
	srv_stop(ts);
	resource_unref(r);
}

static void test_exporter_queue_full(void)
{
	int script[] = {503, 503};
	struct test_server *ts = srv_start(script, 2, -1);
	struct resource *r = make_resource("shop", 1);
	struct otlp_exporter_config c;
	struct otlp_exporter_stats st;
	struct otlp_exporter *e;

	if (!ts)
		return;
	test_config(&c, ts->port);
	c.max_queue_size = 4;
	c.max_export_batch_size = 4;
	c.retry_initial_ms = 300;
	c.retry_max_backoff_ms = 300;
	e = otlp_exporter__new(&c);
	CHECK(e != NULL);
	if (!e)
		goto cleanup;
	/* the endpoint answers 503: the batch stays queued, newer spans drop */
	submit_n(e, r, 4, 4);
	for (int i = 0; i < 100 && srv_count(ts) < 1; i++)
		usleep(10000);
	submit_n(e, r, 3, 0);
	otlp_exporter_stats(e, &st);
	CHECK_EQ_INT(st.spans_dropped_queue_full, 3);
	CHECK_EQ_INT(st.spans_queued, 4);
	/* once it recovers everything queued is delivered */
	CHECK_EQ_INT(otlp_exporter_flush(e, 4000), 0);
	otlp_exporter_stats(e, &st);
	CHECK_EQ_INT(st.spans_exported, 4);
	CHECK_EQ_INT(st.spans_queued, 0);
	CHECK_EQ_INT(srv_count(ts), 3);
	submit_n(e, r, 4, 4);
	otlp_exporter__free(e); /* frees queued spans without exporting */
cleanup:
	srv_stop(ts);
	resource_unref(r);
}

static void test_exporter_gzip_headers_and_metrics(void)
{
	int script[] = {200, 502};
	struct test_server *ts = srv_start(script, 2, -1);
	struct resource *r = make_resource("shop", 1);
	struct otlp_exporter_config c;
	struct otlp_exporter_stats st;
	struct otlp_exporter *e;
	uint8_t *body;
	int n;

	if (!ts)
		return;
	test_config(&c, ts->port);
	c.gzip = true;
	snprintf(c.headers, sizeof(c.headers), "x-test=generic,other=1");
	snprintf(c.traces_headers, sizeof(c.traces_headers), "X-Test=for%%20traces");
	e = otlp_exporter__new(&c);
	CHECK(e != NULL);
	if (!e)
		goto cleanup;
	submit_n(e, r, 2, 2);
	CHECK_EQ_INT(otlp_exporter_flush(e, 3000), 0);
	body = malloc(5);
	memcpy(body, "\x0a\x03\x0a\x01\x00", 5);
	CHECK_EQ_INT(otlp_exporter_submit_metrics(e, body, 5), 0);
	CHECK_EQ_INT(otlp_exporter_flush(e, 3000), 0);
	n = srv_count(ts);
	CHECK_EQ_INT(n, 3); /* traces, metrics 502, metrics retried */
	if (n == 3) {
		uint8_t *plain = NULL;
		size_t plain_len = 0;

		CHECK(ts->req[0].gzip);
		CHECK_EQ_STR(ts->req[0].x_test, "for traces");
		CHECK_EQ_INT(srv_spans_in(ts, 0), 2);
		CHECK_EQ_STR(ts->req[2].path, "/v1/metrics");
		CHECK_EQ_STR(ts->req[2].x_test, "generic");
		CHECK(ts->req[2].gzip);
		CHECK_EQ_INT(otlp_gunzip(ts->req[2].body, ts->req[2].len, 100, &plain, &plain_len),
		             0);
		CHECK_EQ_INT(plain_len, 5);
		CHECK(plain && memcmp(plain, "\x0a\x03\x0a\x01\x00", 5) == 0);
		free(plain);
	}
	otlp_exporter_stats(e, &st);
	CHECK_EQ_INT(st.metric_posts_ok, 1);
	CHECK_EQ_INT(st.retries, 1);
	otlp_exporter__free(e);
cleanup:
	srv_stop(ts);
	resource_unref(r);
}

static void test_exporter_dead_endpoint(void)
{
	struct resource *r = make_resource("shop", 1);
	struct otlp_exporter_config c;
	struct otlp_exporter_stats st;
	struct otlp_exporter *e;
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 1;

	/* a port that was just free: nothing listens there */
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&addr, &alen) == 0)
		port = ntohs(addr.sin_port);
	close(fd);
	test_config(&c, port);
	c.retry_max_elapsed_ms = 300;
	e = otlp_exporter__new(&c);
	CHECK(e != NULL);
	if (!e)
		goto cleanup;
	submit_n(e, r, 5, 5);
	{
		uint8_t *body = malloc(3);

		memcpy(body, "abc", 3);
		CHECK_EQ_INT(otlp_exporter_submit_metrics(e, body, 3), 0);
	}
	CHECK_EQ_INT(otlp_exporter_flush(e, 5000), 0);
	otlp_exporter_stats(e, &st);
	CHECK_EQ_INT(st.spans_dropped_export, 5);
	CHECK_EQ_INT(st.metric_posts_failed, 1);
	CHECK(st.retries >= 2);
	otlp_exporter__free(e);
cleanup:
	resource_unref(r);
}

static void test_exporter_free_interrupts_retry(void)
{
	int script[] = {503, 503, 503};
	struct test_server *ts = srv_start(script, 3, 30);
	struct resource *r = make_resource("shop", 1);
	struct otlp_exporter_config c;
	struct otlp_exporter *e;
	uint64_t t0;

	if (!ts)
		return;
	test_config(&c, ts->port);
	c.retry_max_elapsed_ms = 60000;
	e = otlp_exporter__new(&c);
	CHECK(e != NULL);
	if (!e)
		goto cleanup;
	submit_n(e, r, 3, 3);
	for (int i = 0; i < 100 && srv_count(ts) < 1; i++)
		usleep(10000);
	CHECK_EQ_INT(otlp_exporter_flush(e, 200), -ETIMEDOUT);
	t0 = test_now_ms();
	otlp_exporter__free(e);
	CHECK(test_now_ms() - t0 < 1000);
cleanup:
	srv_stop(ts);
	resource_unref(r);
}

int main(void)
{
	RUN(test_encode_decode_grouping);
	RUN(test_encode_empty);
	RUN(test_encode_rejects_unterminated);
	RUN(test_encode_sanitizes_utf8_and_bad_attrs);
	RUN(test_gzip_round_trip);
	RUN(test_protoc_independent_decode);
	RUN(test_signal_url_and_headers);
	RUN(test_config_from_env);
	RUN(test_exporter_batches_and_flushes);
	RUN(test_exporter_retries_with_retry_after);
	RUN(test_exporter_drops_on_400);
	RUN(test_exporter_queue_full);
	RUN(test_exporter_gzip_headers_and_metrics);
	RUN(test_exporter_dead_endpoint);
	RUN(test_exporter_free_interrupts_retry);
	return unit_summary("test_otlp_encode");
}
