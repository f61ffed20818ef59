/* printer.c — span output for --print: JSON lines for machines (the e2e
 * tests parse them) and one short text line per span for people. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/json.h"
#include "export/printer.h"
#include "telemetry/log_record.h"
#include "telemetry/resource.h"
#include "telemetry/span.h"

#define PRINTER_LINE_STACK 8192
#define PRINTER_LINE_MAX   (1024 * 1024)
#define TEXT_LINE_MAX      2048
#define TEXT_QUERY_MAX     160 /* db.query.text shown in a text line */

struct printer {
	FILE *out;
	enum printer_format format;
};

struct printer *printer__new(FILE *out, enum printer_format f)
{
	struct printer *p;

	if (!out || (f != PRINTER_TEXT && f != PRINTER_JSON))
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->out = out;
	p->format = f;
	return p;
}

void printer__free(struct printer *p)
{
	if (!p)
		return;
	fflush(p->out);
	free(p);
}

static const char *status_name(uint8_t status)
{
	switch (status) {
	case SPAN_STATUS_OK:
		return "OK";
	case SPAN_STATUS_ERROR:
		return "ERROR";
	}
	return "UNSET";
}

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static uint64_t duration_ns(const struct span *s)
{
	return s->end_unix_ns > s->start_unix_ns ? s->end_unix_ns - s->start_unix_ns : 0;
}

static void json_attributes(const struct span *s, struct json_writer *w)
{
	json_key(w, "attributes");
	json_object_begin(w);
	for (uint16_t i = 0; i < s->n_attrs && i < SPAN_MAX_ATTRS; i++) {
		const struct span_attr *a = &s->attrs[i];

		json_key(w, a->key);
		switch (a->type) {
		case SPAN_ATTR_STR:
			json_strn(w, span_attr_str(s, a), a->len);
			break;
		case SPAN_ATTR_INT:
			json_int(w, a->i);
			break;
		case SPAN_ATTR_BOOL:
			json_bool(w, a->b);
			break;
		case SPAN_ATTR_DOUBLE:
			json_number(w, a->d);
			break;
		default:
			json_null(w);
		}
	}
	json_object_end(w);
}

static void json_resource(const struct resource *r, struct json_writer *w)
{
	json_key(w, "resource");
	json_object_begin(w);
	for (size_t i = 0; r && i < r->n_attrs; i++) {
		const struct resource_attr *a = &r->attrs[i];

		json_key(w, a->key);
		if (a->str)
			json_str(w, a->str);
		else
			json_int(w, a->num);
	}
	json_object_end(w);
}

void printer_format_json(const struct span *s, struct json_writer *w)
{
	char trace_id[33], span_id[17], parent_id[17];

	hex_encode(s->trace_id, sizeof(s->trace_id), trace_id);
	hex_encode(s->span_id, sizeof(s->span_id), span_id);
	if (all_zero(s->parent_span_id, sizeof(s->parent_span_id)))
		parent_id[0] = '\0';
	else
		hex_encode(s->parent_span_id, sizeof(s->parent_span_id), parent_id);

	json_object_begin(w);
	json_kv_str(w, "type", "span");
	json_kv_str(w, "trace_id", trace_id);
	json_kv_str(w, "span_id", span_id);
	json_kv_str(w, "parent_span_id", parent_id);
	json_kv_strn(w, "name", s->name, strnlen(s->name, sizeof(s->name)));
	json_kv_str(w, "kind", span_kind_name((enum span_kind)s->kind));
	json_kv_uint(w, "start_time_unix_nano", s->start_unix_ns);
	json_kv_uint(w, "end_time_unix_nano", s->end_unix_ns);
	json_key(w, "duration_ms");
	json_double(w, (double)duration_ns(s) / 1e6, 3);
	json_kv_str(w, "status", status_name(s->status));
	json_kv_strn(w, "status_message", s->status_message,
	             strnlen(s->status_message, sizeof(s->status_message)));
	json_kv_strn(w, "trace_state", s->trace_state,
	             strnlen(s->trace_state, sizeof(s->trace_state)));
	json_attributes(s, w);
	json_resource(s->resource, w);
	json_object_end(w);
	json_raw(w, "\n", 1);
}

/* ---- text ---- */

struct text_line {
	char *buf;
	size_t size; /* > 0 */
	size_t len;
};

/* Appends n bytes, control characters shown as '?', truncating at the end. */
static void text_put(struct text_line *t, const char *s, size_t n)
{
	for (size_t i = 0; i < n && t->len + 1 < t->size; i++) {
		unsigned char c = (unsigned char)s[i];

		t->buf[t->len++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	t->buf[t->len] = '\0';
}

static void text_str(struct text_line *t, const char *s)
{
	text_put(t, s, strlen(s));
}

static void text_fmt(struct text_line *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void text_fmt(struct text_line *t, const char *fmt, ...)
{
	char piece[128];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(piece, sizeof(piece), fmt, ap);
	va_end(ap);
	if (n > 0)
		text_put(t, piece, (size_t)n < sizeof(piece) ? (size_t)n : sizeof(piece) - 1);
}

static const char *attr_str(const struct span *s, const char *key)
{
	const struct span_attr *a = span_find_attr(s, key);

	return a && a->type == SPAN_ATTR_STR ? span_attr_str(s, a) : NULL;
}

static int64_t attr_int(const struct span *s, const char *key)
{
	const struct span_attr *a = span_find_attr(s, key);

	return a && a->type == SPAN_ATTR_INT ? a->i : 0;
}

/* host:port, [v6]:port, host (no port) */
static void text_endpoint(struct text_line *t, const char *addr, int64_t port)
{
	if (!addr || !addr[0])
		addr = "?";
	if (strchr(addr, ':')) {
		text_str(t, "[");
		text_str(t, addr);
		text_str(t, "]");
	} else {
		text_str(t, addr);
	}
	if (port > 0)
		text_fmt(t, ":%" PRId64, port);
}

/* The query shortened, whitespace runs shown as one space. */
static void text_query(struct text_line *t, const char *q)
{
	size_t shown = 0;
	bool space = false;

	for (; *q && shown < TEXT_QUERY_MAX; q++) {
		if (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r') {
			space = true;
			continue;
		}
		if (space && shown) {
			text_put(t, " ", 1);
			shown++;
		}
		space = false;
		text_put(t, q, 1);
		shown++;
	}
	if (*q)
		text_str(t, "…");
}

size_t printer_format_text(const struct span *s, char *out, size_t size)
{
	struct text_line t = {.buf = out, .size = size, .len = 0};
	char trace_id[33], span_id[17], parent_id[17];
	const char *service = s->resource ? resource_get_str(s->resource, "service.name") : NULL;
	const char *path = attr_str(s, "url.path");
	const char *query = attr_str(s, "db.query.text");
	const char *server_addr = attr_str(s, "server.address");
	int64_t status_code = attr_int(s, "http.response.status_code");
	time_t secs = (time_t)(s->start_unix_ns / 1000000000ULL);
	unsigned ms = (unsigned)(s->start_unix_ns / 1000000ULL % 1000);
	uint64_t dur = duration_ns(s);
	struct tm tm;
	char clock[16];

	if (!size)
		return 0;
	out[0] = '\0';
	localtime_r(&secs, &tm);
	strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
	text_fmt(&t, "%s.%03u %s ", clock, ms, span_kind_name((enum span_kind)s->kind));
	text_str(&t, service ? service : "?");
	text_fmt(&t, "[%" PRIu32 "] ", s->resource ? s->resource->pid : 0);
	text_put(&t, s->name, strnlen(s->name, sizeof(s->name)));
	if (path) {
		text_str(&t, " ");
		text_str(&t, path);
	}
	if (query) {
		text_str(&t, " ");
		text_query(&t, query);
	}
	if (status_code)
		text_fmt(&t, " %" PRId64, status_code);
	if (s->status == SPAN_STATUS_ERROR) {
		text_str(&t, " ERROR");
		if (s->status_message[0]) {
			text_str(&t, "(");
			text_put(&t, s->status_message,
			         strnlen(s->status_message, sizeof(s->status_message)));
			text_str(&t, ")");
		}
	}
	text_fmt(&t, " %.3fms ", (double)dur / 1e6);
	if (s->kind == SPAN_KIND_SERVER)
		text_endpoint(&t, attr_str(s, "network.peer.address"),
		              attr_int(s, "network.peer.port"));
	text_str(&t, "→");
	text_endpoint(&t, server_addr, attr_int(s, "server.port"));

	hex_encode(s->trace_id, sizeof(s->trace_id), trace_id);
	hex_encode(s->span_id, sizeof(s->span_id), span_id);
	if (all_zero(s->parent_span_id, sizeof(s->parent_span_id)))
		snprintf(parent_id, sizeof(parent_id), "-");
	else
		hex_encode(s->parent_span_id, sizeof(s->parent_span_id), parent_id);
	text_fmt(&t, " trace=%s span=%s parent=%s", trace_id, span_id, parent_id);
	/* the newline survives truncation */
	if (t.len + 1 >= t.size)
		t.len = t.size >= 2 ? t.size - 2 : 0;
	if (t.len + 1 < t.size) {
		out[t.len++] = '\n';
		out[t.len] = '\0';
	}
	return t.len;
}

int printer_print_span(struct printer *p, const struct span *s)
{
	char stack[PRINTER_LINE_STACK];
	struct json_writer w;
	size_t len;
	int rc = 0;

	if (!p || !s)
		return -EINVAL;
	if (p->format == PRINTER_TEXT) {
		len = printer_format_text(
		    s, stack, sizeof(stack) < TEXT_LINE_MAX ? sizeof(stack) : TEXT_LINE_MAX);
		if (fwrite(stack, 1, len, p->out) != len)
			rc = -EIO;
		return rc;
	}
	json_init(&w, stack, sizeof(stack), PRINTER_LINE_MAX);
	printer_format_json(s, &w);
	if (!json_ok(&w))
		rc = -ENOMEM;
	else if (fwrite(json_text(&w), 1, json_len(&w), p->out) != json_len(&w))
		rc = -EIO;
	json_release(&w);
	return rc;
}

int printer_flush(struct printer *p)
{
	if (!p)
		return -EINVAL;
	return fflush(p->out) == 0 ? 0 : -EIO;
}

static void json_log_attributes(const struct log_record *r, struct json_writer *w)
{
	json_key(w, "attributes");
	json_object_begin(w);
	for (size_t i = 0; i < r->n_attrs; i++) {
		const struct log_attr *a = &r->attrs[i];

		json_key(w, a->key);
		switch (a->type) {
		case LOG_ATTR_STR:
			json_str(w, a->str);
			break;
		case LOG_ATTR_INT:
			json_int(w, a->i);
			break;
		case LOG_ATTR_BOOL:
			json_bool(w, a->i != 0);
			break;
		default:
			json_number(w, a->d);
			break;
		}
	}
	json_object_end(w);
}

int printer_print_log(struct printer *p, const struct log_record *r)
{
	char stack[PRINTER_LINE_STACK];
	char trace_id[33] = "", span_id[17] = "";
	const char *service = r->resource ? resource_get_str(r->resource, "service.name") : NULL;
	struct json_writer w;
	int rc = 0;

	if (!p || !r)
		return -EINVAL;
	if (r->has_trace) {
		hex_encode(r->trace_id, sizeof(r->trace_id), trace_id);
		hex_encode(r->span_id, sizeof(r->span_id), span_id);
	}
	if (p->format == PRINTER_TEXT) {
		time_t secs = (time_t)(r->time_unix_ns / 1000000000ULL);
		unsigned ms = (unsigned)(r->time_unix_ns / 1000000ULL % 1000);
		char clock[16];
		struct tm tm;
		int body_len = (int)strnlen(r->body ? r->body : "", TEXT_LINE_MAX);

		localtime_r(&secs, &tm);
		strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
		if (fprintf(p->out, "%s.%03u LOG %s[%" PRIu32 "] %s %.*s%s%s%s%s\n", clock, ms,
		            service ? service : "?", r->resource ? r->resource->pid : 0,
		            r->severity_text[0] ? r->severity_text : "-", body_len,
		            r->body ? r->body : "", r->has_trace ? " trace=" : "", trace_id,
		            r->has_trace ? " span=" : "", span_id) < 0)
			rc = -EIO;
		return rc;
	}
	json_init(&w, stack, sizeof(stack), PRINTER_LINE_MAX);
	json_object_begin(&w);
	json_kv_str(&w, "type", "log");
	json_kv_uint(&w, "time_unix_nano", r->time_unix_ns);
	json_kv_uint(&w, "observed_time_unix_nano", r->observed_unix_ns);
	json_kv_int(&w, "severity_number", r->severity);
	json_kv_str(&w, "severity_text", r->severity_text);
	json_kv_str(&w, "body", r->body ? r->body : "");
	json_kv_str(&w, "trace_id", trace_id);
	json_kv_str(&w, "span_id", span_id);
	json_log_attributes(r, &w);
	json_resource(r->resource, &w);
	json_object_end(&w);
	json_raw(&w, "\n", 1);
	if (!json_ok(&w))
		rc = -ENOMEM;
	else if (fwrite(json_text(&w), 1, json_len(&w), p->out) != json_len(&w))
		rc = -EIO;
	json_release(&w);
	return rc;
}
