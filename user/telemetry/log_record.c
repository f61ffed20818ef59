/* log_record.c — a line → an OTel log record (see log_record.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/log_json.h"
#include "telemetry/log_record.h"
#include "telemetry/resource.h"

/* Bytes of s[0..len) that form valid UTF-8 from the start. */
static size_t utf8_prefix(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return i;
		}
		if (n > len - i - 1)
			return i;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += n + 1;
	}
	return i;
}

/* Copies s into the arena as valid UTF-8 without control characters (other
 * than tab and newline): each bad byte becomes '?'. */
static const char *put(struct log_record *r, const char *s, size_t len)
{
	char *o;
	size_t i = 0;

	if (r->arena_used + len + 1 > r->arena_size)
		len = r->arena_used + 1 < r->arena_size ? r->arena_size - r->arena_used - 1 : 0;
	o = r->arena + r->arena_used;
	memcpy(o, s, len);
	o[len] = '\0';
	r->arena_used += len + 1;
	while (i < len) {
		size_t ok = utf8_prefix((const uint8_t *)o + i, len - i);

		for (size_t k = i; k < i + ok; k++)
			if (((uint8_t)o[k] < 0x20 && o[k] != '\t' && o[k] != '\n') || o[k] == 0x7f)
				o[k] = '?';
		i += ok;
		if (i < len)
			o[i++] = '?';
	}
	return o;
}

/* A JSON string's decoded value into the arena. */
static const char *put_json_string(struct log_record *r, const char *s, size_t len)
{
	char tmp[4096];
	size_t n = log_json_unescape(s, len, tmp, sizeof(tmp));

	return put(r, tmp, n);
}

static struct log_attr *attr_add(struct log_record *r, const char *key, uint8_t type)
{
	struct log_attr *a;

	if (r->n_attrs >= LOG_RECORD_MAX_ATTRS)
		return NULL;
	a = &r->attrs[r->n_attrs++];
	memset(a, 0, sizeof(*a));
	a->key = key;
	a->type = type;
	return a;
}

static void json_attr(struct log_record *r, const struct log_json_field *f)
{
	const char *key;
	struct log_attr *a;

	if (f->type == LOG_JSON_NULL || r->n_attrs >= LOG_RECORD_MAX_ATTRS - 3)
		return; /* room kept for ours */
	key = put_json_string(r, f->key, f->key_len);
	switch (f->type) {
	case LOG_JSON_STRING:
		a = attr_add(r, key, LOG_ATTR_STR);
		if (a)
			a->str = put_json_string(r, f->val, f->val_len);
		break;
	case LOG_JSON_BOOL:
		a = attr_add(r, key, LOG_ATTR_BOOL);
		if (a)
			a->i = f->val[0] == 't';
		break;
	case LOG_JSON_NUMBER: {
		char num[64];
		size_t n = f->val_len < sizeof(num) - 1 ? f->val_len : sizeof(num) - 1;
		bool integral = !memchr(f->val, '.', f->val_len) &&
		                !memchr(f->val, 'e', f->val_len) &&
		                !memchr(f->val, 'E', f->val_len) && f->val_len < 19;

		memcpy(num, f->val, n);
		num[n] = '\0';
		a = attr_add(r, key, integral ? LOG_ATTR_INT : LOG_ATTR_DOUBLE);
		if (a && integral)
			a->i = strtoll(num, NULL, 10);
		else if (a)
			a->d = strtod(num, NULL);
		break;
	}
	default:
		a = attr_add(r, key, LOG_ATTR_STR);
		if (a)
			a->str = put(r, f->val, f->val_len);
		break;
	}
}

static void hex_decode(const char *s, size_t n, uint8_t *out)
{
	for (size_t i = 0; i < n / 2; i++) {
		uint8_t v = 0;

		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];

			v = (uint8_t)(v << 4 | (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10));
		}
		out[i] = v;
	}
}

static bool from_json(struct log_record *r, const struct log_line_input *in)
{
	struct log_json_field f[LOG_JSON_MAX_FIELDS];
	int n = in->len && in->text[0] == '{'
	            ? log_json_parse(in->text, in->len, f, LOG_JSON_MAX_FIELDS)
	            : -1;
	bool have_trace = false, have_span = false;
	uint8_t tid[16], sid[8];

	if (n < 0)
		return false;
	if (n > LOG_JSON_MAX_FIELDS)
		n = LOG_JSON_MAX_FIELDS;
	r->from_json = true;
	for (int i = 0; i < n; i++) {
		switch (f[i].role) {
		case LOG_JSON_LEVEL:
			if (!r->severity) {
				r->severity = (uint8_t)log_severity_from_level(
				    f[i].val, f[i].val_len, f[i].type);
				if (f[i].type == LOG_JSON_STRING) {
					size_t k = f[i].val_len < sizeof(r->severity_text) - 1
					               ? f[i].val_len
					               : sizeof(r->severity_text) - 1;

					log_json_unescape(f[i].val, k, r->severity_text,
					                  sizeof(r->severity_text));
				} else {
					snprintf(r->severity_text, sizeof(r->severity_text), "%s",
					         log_severity_name(r->severity));
				}
				continue;
			}
			break;
		case LOG_JSON_MESSAGE:
			if (!r->body && f[i].type == LOG_JSON_STRING) {
				r->body = put_json_string(r, f[i].val, f[i].val_len);
				continue;
			}
			break;
		case LOG_JSON_TRACE_ID:
			if (f[i].type == LOG_JSON_STRING &&
			    log_hex_id(f[i].val, f[i].val_len, 32)) {
				hex_decode(f[i].val, 32, tid);
				have_trace = true;
				continue;
			}
			break;
		case LOG_JSON_SPAN_ID:
			if (f[i].type == LOG_JSON_STRING &&
			    log_hex_id(f[i].val, f[i].val_len, 16)) {
				hex_decode(f[i].val, 16, sid);
				have_span = true;
				continue;
			}
			break;
		default:
			break;
		}
		json_attr(r, &f[i]);
	}
	if (have_trace) {
		/* the application's own context wins over ours */
		memcpy(r->trace_id, tid, 16);
		if (have_span)
			memcpy(r->span_id, sid, 8);
		else
			memset(r->span_id, 0, 8);
		r->has_trace = true;
		r->sampled = true;
	}
	if (!r->body)
		r->body = put(r, in->text, in->len);
	return true;
}

struct log_record *log_record_build(const struct log_line_input *in)
{
	/* the body, decoded copies of JSON keys and values, NULs */
	size_t arena = 2 * in->len + 64 * LOG_RECORD_MAX_ATTRS + 256;
	struct log_record *r = malloc(sizeof(*r) + arena);
	struct log_attr *a;

	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->arena_size = arena;
	r->time_unix_ns = in->time_unix_ns;
	r->observed_unix_ns = in->observed_unix_ns;
	r->resource = in->resource ? resource_ref(in->resource) : NULL;
	if (in->has_context) {
		memcpy(r->trace_id, in->trace_id, 16);
		memcpy(r->span_id, in->span_id, 8);
		r->has_trace = true;
		r->sampled = in->sampled;
	}
	if (!from_json(r, in)) {
		r->severity = (uint8_t)log_severity_from_text(in->text, in->len, NULL, NULL);
		r->body = put(r, in->text, in->len);
	}
	if (r->severity && !r->severity_text[0])
		snprintf(r->severity_text, sizeof(r->severity_text), "%s",
		         log_severity_name(r->severity));
	a = attr_add(r, "log.iostream", LOG_ATTR_STR);
	if (a)
		a->str = in->fd == 2 ? "stderr" : "stdout";
	a = attr_add(r, "thread.id", LOG_ATTR_INT);
	if (a)
		a->i = in->tid;
	if (in->truncated && (a = attr_add(r, "periscope.log.truncated", LOG_ATTR_BOOL)))
		a->i = 1;
	return r;
}

void log_record_free(struct log_record *r)
{
	if (!r)
		return;
	resource_unref(r->resource);
	free(r);
}
