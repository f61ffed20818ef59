/* test_printer.c — the span printer's JSON lines (exact text, and parsed
 * back with a tiny JSON reader) and its text lines. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json.h"
#include "export/printer.h"
#include "telemetry/resource.h"
#include "telemetry/span.h"
#include "unit.h"

static struct span span_a;

static struct resource *make_resource(void)
{
	struct resource *r = resource__new(1234, 55);

	resource_add_int(r, "process.pid", 1234);
	resource_add_str(r, "process.executable.name", "nginx");
	resource_add_str(r, "service.name", "nginx");
	return r;
}

/* A SERVER span as http_span would build it. */
static void make_span(struct span *s, struct resource *r)
{
	span_init(s);
	for (int i = 0; i < 16; i++)
		s->trace_id[i] = (uint8_t)(0x10 + i);
	for (int i = 0; i < 8; i++)
		s->span_id[i] = (uint8_t)(0xa0 + i);
	s->kind = SPAN_KIND_SERVER;
	s->status = SPAN_STATUS_UNSET;
	s->start_unix_ns = 1795494600123000000ULL; /* 2026-11-25T04:30:00.123Z */
	s->end_unix_ns = s->start_unix_ns + 1234567;
	snprintf(s->name, sizeof(s->name), "GET");
	s->resource = resource_ref(r);
	span_set_str(s, "http.request.method", "GET");
	span_set_str(s, "url.path", "/index.html");
	span_set_int(s, "http.response.status_code", 200);
	span_set_str(s, "server.address", "127.0.0.1");
	span_set_int(s, "server.port", 8080);
	span_set_str(s, "network.peer.address", "127.0.0.1");
	span_set_int(s, "network.peer.port", 40000);
	span_set_bool(s, "tls", false);
	span_set_double(s, "ratio", 0.5);
}

static char *print_to_string(enum printer_format f, const struct span *s)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);
	struct printer *p = printer__new(out, f);

	CHECK(p != NULL);
	CHECK_EQ_INT(printer_print_span(p, s), 0);
	CHECK_EQ_INT(printer_flush(p), 0);
	printer__free(p);
	fclose(out);
	return text;
}

static void test_json_exact(void)
{
	struct resource *r = make_resource();
	char *line;

	make_span(&span_a, r);
	line = print_to_string(PRINTER_JSON, &span_a);
	CHECK_EQ_STR(line,
	             "{\"type\":\"span\",\"trace_id\":\"101112131415161718191a1b1c1d1e1f\","
	             "\"span_id\":\"a0a1a2a3a4a5a6a7\",\"parent_span_id\":\"\",\"name\":\"GET\","
	             "\"kind\":\"SERVER\",\"start_time_unix_nano\":1795494600123000000,"
	             "\"end_time_unix_nano\":1795494600124234567,\"duration_ms\":1.235,"
	             "\"status\":\"UNSET\",\"status_message\":\"\",\"trace_state\":\"\","
	             "\"attributes\":{\"http.request.method\":\"GET\",\"url.path\":\"/index.html\","
	             "\"http.response.status_code\":200,\"server.address\":\"127.0.0.1\","
	             "\"server.port\":8080,\"network.peer.address\":\"127.0.0.1\","
	             "\"network.peer.port\":40000,\"tls\":false,\"ratio\":0.5},"
	             "\"resource\":{\"service.name\":\"nginx\",\"process.pid\":1234,"
	             "\"process.executable.name\":\"nginx\"}}\n");
	free(line);
	span_release(&span_a);
	resource_unref(r);
}

/* ---- a tiny JSON reader: enough to check the structure and pick values ---- */

struct reader {
	const char *p;
	int ok;
};

static void skip_ws(struct reader *r)
{
	while (*r->p == ' ' || *r->p == '\n' || *r->p == '\t' || *r->p == '\r')
		r->p++;
}

/* Reads a string into out (escapes \" \\ \n \uXXXX<0x80 decoded). */
static void read_string(struct reader *r, char *out, size_t size)
{
	size_t n = 0;

	if (*r->p != '"') {
		r->ok = 0;
		return;
	}
	r->p++;
	while (*r->p && *r->p != '"') {
		char c = *r->p++;

		if ((unsigned char)c < 0x20) {
			r->ok = 0;
			return;
		}
		if (c == '\\') {
			char e = *r->p++;
			if (e == 'n')
				c = '\n';
			else if (e == 't')
				c = '\t';
			else if (e == 'r')
				c = '\r';
			else if (e == 'u') {
				char hex[5] = {0};
				memcpy(hex, r->p, 4);
				for (int i = 0; i < 4; i++)
					if (!isxdigit((unsigned char)hex[i]))
						r->ok = 0;
				c = (char)strtol(hex, NULL, 16);
				r->p += 4;
			} else if (e == '"' || e == '\\' || e == '/')
				c = e;
			else
				r->ok = 0;
		}
		if (n + 1 < size)
			out[n++] = c;
	}
	if (*r->p != '"')
		r->ok = 0;
	else
		r->p++;
	out[n < size ? n : size - 1] = '\0';
}

enum jtype { J_STR, J_NUM, J_BOOL, J_NULL, J_OBJ, J_ARR, J_BAD };

static enum jtype read_value(struct reader *r, char *out, size_t size);

/* Reads an object; calls back nothing but records keys "a,b,c" in keys. */
static void read_object(struct reader *r, char *keys, size_t keys_size)
{
	char key[256], val[512];
	size_t used = 0;

	r->p++; /* '{' */
	skip_ws(r);
	if (keys_size)
		keys[0] = '\0';
	if (*r->p == '}') {
		r->p++;
		return;
	}
	for (;;) {
		enum jtype t;

		skip_ws(r);
		read_string(r, key, sizeof(key));
		skip_ws(r);
		if (*r->p++ != ':') {
			r->ok = 0;
			return;
		}
		skip_ws(r);
		t = read_value(r, val, sizeof(val));
		if (t == J_BAD || !r->ok) {
			r->ok = 0;
			return;
		}
		if (keys_size && used + strlen(key) + 4 < keys_size)
			used += (size_t)snprintf(keys + used, keys_size - used, "%s%s:%c",
			                         used ? "," : "", key, "snbzoa"[t]);
		skip_ws(r);
		if (*r->p == ',') {
			r->p++;
			continue;
		}
		if (*r->p == '}') {
			r->p++;
			return;
		}
		r->ok = 0;
		return;
	}
}

static enum jtype read_value(struct reader *r, char *out, size_t size)
{
	out[0] = '\0';
	if (*r->p == '"') {
		read_string(r, out, size);
		return J_STR;
	}
	if (*r->p == '{') {
		read_object(r, out, size);
		return J_OBJ;
	}
	if (!strncmp(r->p, "true", 4) || !strncmp(r->p, "false", 5)) {
		r->p += *r->p == 't' ? 4 : 5;
		return J_BOOL;
	}
	if (!strncmp(r->p, "null", 4)) {
		r->p += 4;
		return J_NULL;
	}
	if (*r->p == '-' || isdigit((unsigned char)*r->p)) {
		char *end;
		strtod(r->p, &end);
		snprintf(out, size, "%.*s", (int)(end - r->p), r->p);
		r->p = end;
		return J_NUM;
	}
	r->ok = 0;
	return J_BAD;
}

static void test_json_parses_back(void)
{
	struct resource *r = make_resource();
	char keys[2048];
	char *line;
	struct reader rd;

	make_span(&span_a, r);
	span_a.parent_span_id[7] = 1;
	span_a.status = SPAN_STATUS_ERROR;
	snprintf(span_a.status_message, sizeof(span_a.status_message), "bad \"thing\"\n");
	snprintf(span_a.trace_state, sizeof(span_a.trace_state), "vendor=x");
	span_set_str(&span_a, "user_agent.original", "evil\x01\x1b[31m\xff");
	line = print_to_string(PRINTER_JSON, &span_a);
	CHECK(strchr(line, '\n') == line + strlen(line) - 1); /* one line */
	rd.p = line;
	rd.ok = 1;
	CHECK(*rd.p == '{');
	read_object(&rd, keys, sizeof(keys));
	CHECK(rd.ok);
	CHECK_EQ_STR(rd.p, "\n");
	CHECK_EQ_STR(keys, "type:s,trace_id:s,span_id:s,parent_span_id:s,name:s,kind:s,"
	                   "start_time_unix_nano:n,end_time_unix_nano:n,duration_ms:n,status:s,"
	                   "status_message:s,trace_state:s,attributes:o,resource:o");
	CHECK(strstr(line, "\"parent_span_id\":\"0000000000000001\"") != NULL);
	CHECK(strstr(line, "\"status\":\"ERROR\",\"status_message\":\"bad \\\"thing\\\"\\n\"") !=
	      NULL);
	CHECK(strstr(line, "\"trace_state\":\"vendor=x\"") != NULL);
	CHECK(strstr(line, "\"user_agent.original\":\"evil\\u0001\\u001b[31m\xEF\xBF\xBD\"") !=
	      NULL);
	/* the attributes object with its value types */
	rd.p = strstr(line, "\"attributes\":") + 13;
	rd.ok = 1;
	read_object(&rd, keys, sizeof(keys));
	CHECK(rd.ok);
	CHECK_EQ_STR(keys, "http.request.method:s,url.path:s,http.response.status_code:n,"
	                   "server.address:s,server.port:n,network.peer.address:s,"
	                   "network.peer.port:n,tls:b,ratio:n,user_agent.original:s");
	rd.p = strstr(line, "\"resource\":") + 11;
	rd.ok = 1;
	read_object(&rd, keys, sizeof(keys));
	CHECK(rd.ok);
	CHECK_EQ_STR(keys, "service.name:s,process.pid:n,process.executable.name:s");
	free(line);
	span_release(&span_a);
	resource_unref(r);
}

static void test_json_full_span_and_no_resource(void)
{
	static const char *keys[SPAN_MAX_ATTRS] = {
	    "a0",  "a1",  "a2",  "a3",  "a4",  "a5",  "a6",  "a7",  "a8",  "a9",  "a10", "a11",
	    "a12", "a13", "a14", "a15", "a16", "a17", "a18", "a19", "a20", "a21", "a22", "a23",
	};
	char value[SPAN_ARENA_SIZE];
	struct reader rd;
	char parsed[4096];
	char *line;

	span_init(&span_a);
	memset(span_a.name, '"', sizeof(span_a.name)); /* not NUL-terminated */
	memset(value, '\\', sizeof(value));
	for (int i = 0; i < SPAN_MAX_ATTRS; i++)
		span_set_strn(&span_a, keys[i], value, sizeof(value));
	span_a.end_unix_ns = 5; /* before the start: duration 0 */
	span_a.start_unix_ns = 10;
	line = print_to_string(PRINTER_JSON, &span_a);
	rd.p = line;
	rd.ok = 1;
	read_object(&rd, parsed, sizeof(parsed));
	CHECK(rd.ok);
	CHECK(strstr(line, "\"duration_ms\":0.000,") != NULL);
	CHECK(strstr(line, "\"kind\":\"UNSPECIFIED\"") != NULL);
	CHECK(strstr(line, "\"resource\":{}}\n") != NULL);
	CHECK(strlen(line) > 2 * (SPAN_ARENA_SIZE - 100));
	free(line);
	span_release(&span_a);
}

static void test_text_line(void)
{
	struct resource *r = make_resource();
	char *line;

	setenv("TZ", "UTC", 1);
	tzset();
	make_span(&span_a, r);
	line = print_to_string(PRINTER_TEXT, &span_a);
	CHECK_EQ_STR(line,
	             "04:30:00.123 SERVER nginx[1234] GET /index.html 200 1.235ms "
	             "127.0.0.1:40000→127.0.0.1:8080 "
	             "trace=101112131415161718191a1b1c1d1e1f span=a0a1a2a3a4a5a6a7 parent=-\n");
	free(line);
	span_release(&span_a);

	/* a client span with a query, an error, IPv6 and control characters */
	span_init(&span_a);
	span_a.kind = SPAN_KIND_CLIENT;
	span_a.status = SPAN_STATUS_ERROR;
	span_a.parent_span_id[0] = 0xff;
	span_a.start_unix_ns = 1795494600123000000ULL;
	span_a.end_unix_ns = span_a.start_unix_ns + 2000000;
	span_a.resource = resource_ref(r);
	snprintf(span_a.name, sizeof(span_a.name), "SELECT");
	snprintf(span_a.status_message, sizeof(span_a.status_message), "boom\x1b");
	span_set_str(&span_a, "db.query.text", "SELECT *\n  FROM\tt");
	span_set_str(&span_a, "server.address", "::1");
	span_set_int(&span_a, "server.port", 5432);
	line = print_to_string(PRINTER_TEXT, &span_a);
	CHECK_EQ_STR(line, "04:30:00.123 CLIENT nginx[1234] SELECT SELECT * FROM t ERROR(boom?) "
	                   "2.000ms →[::1]:5432 trace=00000000000000000000000000000000 "
	                   "span=0000000000000000 parent=ff00000000000000\n");
	free(line);
	span_release(&span_a);
	resource_unref(r);
}

static void test_text_truncates(void)
{
	char big[SPAN_ARENA_SIZE];
	char out[64];
	size_t n;

	span_init(&span_a);
	memset(big, 'p', sizeof(big));
	span_set_strn(&span_a, "url.path", big, sizeof(big));
	n = printer_format_text(&span_a, out, sizeof(out));
	CHECK_EQ_INT(n, sizeof(out) - 1);
	CHECK_EQ_INT(strlen(out), n);
	CHECK(out[n - 1] == '\n');
	CHECK_EQ_INT(printer_format_text(&span_a, out, 1), 0);
	CHECK_EQ_INT(printer_format_text(&span_a, out, 0), 0);
	span_release(&span_a);
}

static void test_bad_arguments(void)
{
	CHECK(printer__new(NULL, PRINTER_JSON) == NULL);
	CHECK(printer__new(stdout, (enum printer_format)7) == NULL);
	CHECK(printer_print_span(NULL, &span_a) < 0);
	CHECK(printer_flush(NULL) < 0);
	printer__free(NULL);
}

int main(void)
{
	RUN(test_json_exact);
	RUN(test_json_parses_back);
	RUN(test_json_full_span_and_no_resource);
	RUN(test_text_line);
	RUN(test_text_truncates);
	RUN(test_bad_arguments);
	return unit_summary("test_printer");
}
