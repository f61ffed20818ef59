/* log_json.c — JSON log lines and severities (see log_json.h). */
#include <string.h>
#include <strings.h>

#include "parsers/log_json.h"

#define MAX_DEPTH 64

struct cursor {
	const char *s;
	size_t i, len;
};

static void skip_ws(struct cursor *c)
{
	while (c->i < c->len && (c->s[c->i] == ' ' || c->s[c->i] == '\t' || c->s[c->i] == '\r' ||
	                         c->s[c->i] == '\n'))
		c->i++;
}

static bool is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* At a '"': moves past the closing quote. */
static bool parse_string(struct cursor *c)
{
	c->i++;
	while (c->i < c->len) {
		unsigned char ch = (unsigned char)c->s[c->i];

		if (ch == '"') {
			c->i++;
			return true;
		}
		if (ch < 0x20)
			return false;
		if (ch == '\\') {
			if (c->i + 1 >= c->len)
				return false;
			ch = (unsigned char)c->s[c->i + 1];
			if (ch == 'u') {
				if (c->i + 6 > c->len)
					return false;
				for (int k = 2; k < 6; k++)
					if (!is_hex(c->s[c->i + k]))
						return false;
				c->i += 6;
				continue;
			}
			if (!strchr("\"\\/bfnrt", ch) || !ch)
				return false;
			c->i += 2;
			continue;
		}
		c->i++;
	}
	return false;
}

static bool parse_number(struct cursor *c)
{
	size_t start = c->i, digits = 0;

	if (c->i < c->len && c->s[c->i] == '-')
		c->i++;
	while (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
		c->i++;
		digits++;
	}
	if (!digits)
		return false;
	if (c->i < c->len && c->s[c->i] == '.') {
		c->i++;
		digits = 0;
		while (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
			c->i++;
			digits++;
		}
		if (!digits)
			return false;
	}
	if (c->i < c->len && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
		c->i++;
		if (c->i < c->len && (c->s[c->i] == '+' || c->s[c->i] == '-'))
			c->i++;
		digits = 0;
		while (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9') {
			c->i++;
			digits++;
		}
		if (!digits)
			return false;
	}
	return c->i > start;
}

static bool parse_word(struct cursor *c, const char *w)
{
	size_t n = strlen(w);

	if (c->len - c->i < n || memcmp(c->s + c->i, w, n))
		return false;
	c->i += n;
	return true;
}

static bool parse_value(struct cursor *c, int depth, uint8_t *type);

static bool parse_container(struct cursor *c, int depth, char close)
{
	c->i++;
	skip_ws(c);
	if (c->i < c->len && c->s[c->i] == close) {
		c->i++;
		return true;
	}
	for (;;) {
		uint8_t t;

		skip_ws(c);
		if (close == '}') {
			if (c->i >= c->len || c->s[c->i] != '"' || !parse_string(c))
				return false;
			skip_ws(c);
			if (c->i >= c->len || c->s[c->i] != ':')
				return false;
			c->i++;
			skip_ws(c);
		}
		if (!parse_value(c, depth + 1, &t))
			return false;
		skip_ws(c);
		if (c->i >= c->len)
			return false;
		if (c->s[c->i] == ',') {
			c->i++;
			continue;
		}
		if (c->s[c->i] == close) {
			c->i++;
			return true;
		}
		return false;
	}
}

static bool parse_value(struct cursor *c, int depth, uint8_t *type)
{
	if (depth > MAX_DEPTH || c->i >= c->len)
		return false;
	switch (c->s[c->i]) {
	case '"':
		*type = LOG_JSON_STRING;
		return parse_string(c);
	case '{':
		*type = LOG_JSON_NESTED;
		return parse_container(c, depth, '}');
	case '[':
		*type = LOG_JSON_NESTED;
		return parse_container(c, depth, ']');
	case 't':
		*type = LOG_JSON_BOOL;
		return parse_word(c, "true");
	case 'f':
		*type = LOG_JSON_BOOL;
		return parse_word(c, "false");
	case 'n':
		*type = LOG_JSON_NULL;
		return parse_word(c, "null");
	default:
		*type = LOG_JSON_NUMBER;
		return parse_number(c);
	}
}

static bool key_is(const char *k, size_t n, const char *const *names)
{
	for (; *names; names++)
		if (strlen(*names) == n && !memcmp(k, *names, n))
			return true;
	return false;
}

static uint8_t role_of(const char *k, size_t n)
{
	static const char *const level[] = {"level",         "severity",     "lvl",   "levelname",
	                                    "log.level",     "loglevel",     "LEVEL", "Level",
	                                    "severity_text", "severityText", "@l",    NULL};
	static const char *const msg[] = {"msg",     "message", "event", "body", "Message",
	                                  "MESSAGE", "@m",      "@mt",   NULL};
	static const char *const trace[] = {
	    "trace_id",    "traceId",         "trace.id",
	    "otelTraceID", "traceid",         "TraceId",
	    "traceID",     "dd.trace_id_hex", "logging.googleapis.com/trace",
	    NULL};
	static const char *const span[] = {"span_id", "spanId", "span.id", "otelSpanID",
	                                   "spanid",  "SpanId", "spanID",  NULL};
	static const char *const time[] = {"time", "timestamp", "ts", "@timestamp",
	                                   "@t",   "asctime",   NULL};

	if (key_is(k, n, level))
		return LOG_JSON_LEVEL;
	if (key_is(k, n, msg))
		return LOG_JSON_MESSAGE;
	if (key_is(k, n, trace))
		return LOG_JSON_TRACE_ID;
	if (key_is(k, n, span))
		return LOG_JSON_SPAN_ID;
	if (key_is(k, n, time))
		return LOG_JSON_TIME;
	return LOG_JSON_ATTR;
}

int log_json_parse(const char *s, size_t len, struct log_json_field *fields, size_t max)
{
	struct cursor c = {s, 0, len};
	int n = 0;

	skip_ws(&c);
	if (c.i >= c.len || s[c.i] != '{')
		return -1;
	c.i++;
	skip_ws(&c);
	if (c.i < c.len && s[c.i] == '}') {
		c.i++;
		goto end;
	}
	for (;;) {
		struct log_json_field f = {0};
		size_t k0, v0;

		skip_ws(&c);
		if (c.i >= c.len || s[c.i] != '"')
			return -1;
		k0 = c.i;
		if (!parse_string(&c))
			return -1;
		f.key = s + k0 + 1;
		f.key_len = c.i - k0 - 2;
		skip_ws(&c);
		if (c.i >= c.len || s[c.i] != ':')
			return -1;
		c.i++;
		skip_ws(&c);
		v0 = c.i;
		if (!parse_value(&c, 1, &f.type))
			return -1;
		if (f.type == LOG_JSON_STRING) {
			f.val = s + v0 + 1;
			f.val_len = c.i - v0 - 2;
		} else {
			f.val = s + v0;
			f.val_len = c.i - v0;
		}
		f.role = role_of(f.key, f.key_len);
		if ((size_t)n < max)
			fields[n] = f;
		n++;
		skip_ws(&c);
		if (c.i >= c.len)
			return -1;
		if (s[c.i] == ',') {
			c.i++;
			continue;
		}
		if (s[c.i] == '}') {
			c.i++;
			break;
		}
		return -1;
	}
end:
	skip_ws(&c);
	return c.i == c.len ? n : -1;
}

static int hex_val(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static unsigned read_u4(const char *s)
{
	return (unsigned)(hex_val(s[0]) << 12 | hex_val(s[1]) << 8 | hex_val(s[2]) << 4 |
	                  hex_val(s[3]));
}

static size_t put_utf8(unsigned cp, char *o)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

size_t log_json_unescape(const char *s, size_t len, char *out, size_t out_size)
{
	size_t o = 0;

	if (!out_size)
		return 0;
	for (size_t i = 0; i < len;) {
		char tmp[4];
		size_t n = 1;

		if (s[i] != '\\' || i + 1 >= len) {
			tmp[0] = s[i++];
		} else {
			char e = s[i + 1];

			i += 2;
			switch (e) {
			case 'n':
				tmp[0] = '\n';
				break;
			case 't':
				tmp[0] = '\t';
				break;
			case 'r':
				tmp[0] = '\r';
				break;
			case 'b':
				tmp[0] = '\b';
				break;
			case 'f':
				tmp[0] = '\f';
				break;
			case 'u': {
				unsigned cp;

				if (i + 4 > len || hex_val(s[i]) < 0 || hex_val(s[i + 1]) < 0 ||
				    hex_val(s[i + 2]) < 0 || hex_val(s[i + 3]) < 0) {
					tmp[0] = '?';
					break;
				}
				cp = read_u4(s + i);
				i += 4;
				if (cp >= 0xd800 && cp < 0xdc00 && i + 6 <= len && s[i] == '\\' &&
				    s[i + 1] == 'u' && hex_val(s[i + 2]) >= 0 &&
				    hex_val(s[i + 3]) >= 0 && hex_val(s[i + 4]) >= 0 &&
				    hex_val(s[i + 5]) >= 0) {
					unsigned lo = read_u4(s + i + 2);

					if (lo >= 0xdc00 && lo < 0xe000) {
						cp =
						    0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						i += 6;
					}
				}
				if (cp >= 0xd800 && cp < 0xe000) {
					tmp[0] = '?';
					break;
				}
				n = put_utf8(cp, tmp);
				break;
			}
			default:
				tmp[0] = e;
				break;
			}
		}
		if (o + n >= out_size)
			break;
		memcpy(out + o, tmp, n);
		o += n;
	}
	out[o] = '\0';
	return o;
}

static enum log_severity level_word(const char *s, size_t n)
{
	static const struct {
		const char *name;
		enum log_severity sev;
	} words[] = {
	    {"trace", LOG_SEV_TRACE}, {"debug", LOG_SEV_DEBUG},    {"dbg", LOG_SEV_DEBUG},
	    {"fine", LOG_SEV_DEBUG},  {"info", LOG_SEV_INFO},      {"information", LOG_SEV_INFO},
	    {"notice", LOG_SEV_INFO}, {"warn", LOG_SEV_WARN},      {"warning", LOG_SEV_WARN},
	    {"error", LOG_SEV_ERROR}, {"err", LOG_SEV_ERROR},      {"severe", LOG_SEV_ERROR},
	    {"fatal", LOG_SEV_FATAL}, {"critical", LOG_SEV_FATAL}, {"crit", LOG_SEV_FATAL},
	    {"panic", LOG_SEV_FATAL}, {"dpanic", LOG_SEV_FATAL},   {"emerg", LOG_SEV_FATAL},
	    {"alert", LOG_SEV_FATAL}, {"verbose", LOG_SEV_TRACE},
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].name) == n && !strncasecmp(s, words[i].name, n))
			return words[i].sev;
	return LOG_SEV_UNSPECIFIED;
}

enum log_severity log_severity_from_level(const char *s, size_t len, uint8_t json_type)
{
	if (json_type == LOG_JSON_NUMBER) {
		long v = 0;

		for (size_t i = 0; i < len && s[i] >= '0' && s[i] <= '9' && v < 1000; i++)
			v = v * 10 + (s[i] - '0');
		/* pino / bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal */
		if (v >= 60)
			return LOG_SEV_FATAL;
		if (v >= 50)
			return LOG_SEV_ERROR;
		if (v >= 40)
			return LOG_SEV_WARN;
		if (v >= 30)
			return LOG_SEV_INFO;
		if (v >= 20)
			return LOG_SEV_DEBUG;
		if (v >= 10)
			return LOG_SEV_TRACE;
		return LOG_SEV_UNSPECIFIED;
	}
	if (json_type != LOG_JSON_STRING)
		return LOG_SEV_UNSPECIFIED;
	return level_word(s, len);
}

static bool word_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_';
}

static bool all_upper(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < 'A' || s[i] > 'Z')
			return false;
	return true;
}

enum log_severity log_severity_from_text(const char *s, size_t len, size_t *at, size_t *len_out)
{
	size_t lim = len < 80 ? len : 80;

	/* glog / klog: "E0102 15:04:05.000000 …" */
	if (len > 5 && strchr("IWEF", s[0]) && s[1] >= '0' && s[1] <= '1' && s[2] >= '0' &&
	    s[2] <= '9' && s[3] >= '0' && s[3] <= '3' && s[4] >= '0' && s[4] <= '9' &&
	    (s[5] == ' ' || s[5] == '\t')) {
		if (at)
			*at = 0;
		if (len_out)
			*len_out = 1;
		return s[0] == 'I'   ? LOG_SEV_INFO
		       : s[0] == 'W' ? LOG_SEV_WARN
		       : s[0] == 'E' ? LOG_SEV_ERROR
		                     : LOG_SEV_FATAL;
	}
	for (size_t i = 0; i < lim;) {
		size_t j = i;
		bool after_eq;
		enum log_severity sev;

		if (!word_char(s[i])) {
			i++;
			continue;
		}
		while (j < len && word_char(s[j]))
			j++;
		/* "level=error", "lvl=warn", "severity: info" */
		after_eq = (i >= 6 && (!strncasecmp(s + i - 6, "level=", 6) ||
		                       !strncasecmp(s + i - 6, "level:", 6))) ||
		           (i >= 4 && !strncasecmp(s + i - 4, "lvl=", 4));
		if ((all_upper(s + i, j - i) || after_eq) &&
		    (sev = level_word(s + i, j - i)) != LOG_SEV_UNSPECIFIED) {
			if (at)
				*at = i;
			if (len_out)
				*len_out = j - i;
			return sev;
		}
		i = j;
	}
	return LOG_SEV_UNSPECIFIED;
}

const char *log_severity_name(enum log_severity s)
{
	switch (s) {
	case LOG_SEV_TRACE:
		return "TRACE";
	case LOG_SEV_DEBUG:
		return "DEBUG";
	case LOG_SEV_INFO:
		return "INFO";
	case LOG_SEV_WARN:
		return "WARN";
	case LOG_SEV_ERROR:
		return "ERROR";
	case LOG_SEV_FATAL:
		return "FATAL";
	default:
		return "";
	}
}

bool log_hex_id(const char *s, size_t len, size_t n)
{
	bool nonzero = false;

	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_hex(s[i]))
			return false;
		nonzero |= s[i] != '0';
	}
	return nonzero;
}
