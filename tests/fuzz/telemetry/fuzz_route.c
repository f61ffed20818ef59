/* fuzz_route.c — libFuzzer harness for the route heuristic and the route
 * table: any bytes as path and patterns, with checks on every result. The
 * route and the raw input then go through the metrics registry as attribute
 * values, and the Prometheus text rendering is checked line by line, and the
 * OTLP encoding unpacked again. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/metrics.h"
#include "otlp.pb-c.h"
#include "export/otlp_metrics.h"
#include "export/prom_text.h"
#include "telemetry/route.h"

static void check_route(int len, const char *out, size_t out_len)
{
	if (len == -ENOSPC) {
		if (out[0] != '\0')
			abort();
		return;
	}
	if (len < 0 || (size_t)len >= out_len || strlen(out) != (size_t)len)
		abort();
	/* A route never carries the query string or fragment. */
	if (strchr(out, '?') || strchr(out, '#'))
		abort();
}

static bool is_name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

/* One sample line: name{label="value",...} number — returns false when malformed. */
static bool sample_line_valid(const char *p, const char *end)
{
	if (p == end || !is_name_char(*p, true))
		return false;
	while (p < end && (is_name_char(*p, false) || *p == ':'))
		p++;
	if (p < end && *p == '{') {
		p++;
		while (p < end && *p != '}') {
			if (!is_name_char(*p, true))
				return false;
			while (p < end && is_name_char(*p, false))
				p++;
			if (end - p < 2 || p[0] != '=' || p[1] != '"')
				return false;
			p += 2;
			while (p < end && *p != '"') {
				if (*p == '\\') {
					if (p + 1 == end ||
					    (p[1] != '\\' && p[1] != '"' && p[1] != 'n'))
						return false;
					p++;
				}
				p++;
			}
			if (p == end)
				return false;
			p++;
			if (p < end && *p == ',')
				p++;
		}
		if (p == end)
			return false;
		p++;
	}
	return p < end && *p == ' ' && p + 1 < end;
}

static void check_prom_text(const struct prom_buf *b)
{
	const char *p = b->data, *end = b->data + b->len;

	for (size_t i = 0; i < b->len; i++) {
		unsigned char c = (unsigned char)b->data[i];

		if ((c < 0x20 && c != '\n') || c == 0x7f)
			abort();
	}
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl)
			abort(); /* every line ends in a newline */
		if (strncmp(p, "# HELP ", 7) != 0 && strncmp(p, "# TYPE ", 7) != 0 &&
		    !sample_line_valid(p, nl))
			abort();
		p = nl + 1;
	}
}

/* The route and the raw input as attribute values of a recorded exchange. */
static void check_metrics(const char *route, const char *raw)
{
	struct metrics *m = metrics__new(NULL);
	struct http_metric_sample s = {.kind = METRICS_HTTP_CLIENT,
	                               .method = raw,
	                               .status_code = 502,
	                               .route = route,
	                               .scheme = raw,
	                               .protocol_version = "1.1",
	                               .server_address = raw,
	                               .server_port = 80,
	                               .error_type = raw,
	                               .duration_s = 0.25,
	                               .request_body_size = (int64_t)strlen(raw),
	                               .response_body_size = 0};
	struct metric_attr a = {.key = raw, .type = METRIC_ATTR_STR, .str = raw};
	Periscope__Otlp__ExportMetricsServiceRequest *req;
	struct prom_buf b;
	uint8_t *buf = NULL;
	size_t len = 0, n_points = 0;
	int id;

	if (!m)
		return;
	if (metrics_record_http(m, NULL, &s) != 0)
		abort();
	id = metrics_add_counter(m, "fuzz.counter", raw, raw, false);
	if (id >= 0)
		metrics_record(m, id, NULL, &a, 1, 1);
	prom_buf_init(&b, 0);
	if (prom_text_render(m, &b) != 0)
		abort();
	check_prom_text(&b);
	prom_buf_release(&b);
	if (otlp_metrics_encode(m, NULL, &buf, &len, &n_points) != 0 || n_points < 3)
		abort();
	req = periscope__otlp__export_metrics_service_request__unpack(NULL, len, buf);
	if (!req)
		abort();
	periscope__otlp__export_metrics_service_request__free_unpacked(req, NULL);
	free(buf);
	metrics__free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct route_table *t;
	char out[ROUTE_MAX];
	char tiny[7];
	char *text;
	const char *path;
	int len;

	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	/* The whole input as one path. */
	len = route_from_path(text, out, sizeof(out));
	check_route(len, out, sizeof(out));
	if (len > 0 && out[0] != '/' && strcmp(out, "*") != 0)
		abort();
	len = route_from_path(text, tiny, sizeof(tiny));
	check_route(len, tiny, sizeof(tiny));

	/* Before the first newline: a comma-separated pattern list; after it:
	 * the path to match. */
	t = route_table__new();
	if (!t)
		goto cleanup;
	path = text;
	char *nl = strchr(text, '\n');
	if (nl) {
		*nl = '\0';
		path = nl + 1;
		(void)route_table_add_list(t, text);
	}
	len = route_table_match(t, path, out, sizeof(out));
	check_route(len, out, sizeof(out));
	len = route_table_match(t, path, tiny, sizeof(tiny));
	check_route(len, tiny, sizeof(tiny));
	if (route_table_match(t, path, out, sizeof(out)) >= 0)
		check_metrics(out, path);
cleanup:
	route_table__free(t);
	free(text);
	return 0;
}
