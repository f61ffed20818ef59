/* log.c — structured JSON-lines logging (log.h). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/json.h"
#include "util/log.h"

#define LOG_LINE_STACK 1024
#define LOG_LINE_MAX   (64 * 1024)
#define LOG_MAX_FIELDS 64

struct logger {
	FILE *out;
	enum log_level min;
};

struct logger *logger__new(FILE *out, enum log_level min)
{
	struct logger *lg;

	if (!out)
		return NULL;
	lg = calloc(1, sizeof(*lg));
	if (!lg)
		return NULL;
	lg->out = out;
	lg->min = min;
	return lg;
}

void logger__free(struct logger *lg)
{
	free(lg);
}

int log_enabled(const struct logger *lg, enum log_level lvl)
{
	return lg && lvl <= lg->min;
}

enum log_level log_level_parse(const char *name)
{
	if (!name)
		return LOG_INFO;
	if (!strcasecmp(name, "debug"))
		return LOG_DEBUG;
	if (!strcasecmp(name, "warn") || !strcasecmp(name, "warning"))
		return LOG_WARN;
	if (!strcasecmp(name, "error"))
		return LOG_ERROR;
	return LOG_INFO;
}

const char *log_level_name(enum log_level lvl)
{
	/* other syslog severities fold into the nearest of the four */
	if (lvl <= LOG_ERROR)
		return "error";
	if (lvl == LOG_WARN)
		return "warn";
	if (lvl < LOG_DEBUG)
		return "info";
	return "debug";
}

/* RFC 3339 UTC time with milliseconds: 2026-11-25T04:30:00.123Z */
static void format_now(char *out, size_t size)
{
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

/* Appends the key/value pairs; stops at NULL or at a value without a known tag. */
static void append_fields(struct json_writer *w, va_list ap)
{
	for (int i = 0; i < LOG_MAX_FIELDS; i++) {
		const char *key = va_arg(ap, const char *);
		int tag;

		if (!key)
			return;
		tag = va_arg(ap, int);
		switch (tag) {
		case LOG_T_STR:
			json_kv_str(w, key, va_arg(ap, const char *));
			break;
		case LOG_T_INT:
			json_kv_int(w, key, va_arg(ap, int64_t));
			break;
		case LOG_T_UINT:
			json_kv_uint(w, key, va_arg(ap, uint64_t));
			break;
		case LOG_T_BOOL:
			json_kv_bool(w, key, va_arg(ap, int) != 0);
			break;
		case LOG_T_DOUBLE:
			json_key(w, key);
			json_number(w, va_arg(ap, double));
			break;
		default:
			/* not made with a LOG_* macro: the rest cannot be read safely */
			json_kv_str(w, key, "<invalid log field>");
			return;
		}
	}
}

void log_msg(struct logger *lg, enum log_level lvl, const char *msg, ...)
{
	char stack[LOG_LINE_STACK];
	char ts[40];
	struct json_writer w;
	va_list ap;

	if (!log_enabled(lg, lvl))
		return;
	format_now(ts, sizeof(ts));
	json_init(&w, stack, sizeof(stack), LOG_LINE_MAX);
	json_object_begin(&w);
	json_kv_str(&w, "ts", ts);
	json_kv_str(&w, "level", log_level_name(lvl));
	json_kv_str(&w, "msg", msg ? msg : "");
	va_start(ap, msg);
	append_fields(&w, ap);
	va_end(ap);
	json_object_end(&w);
	if (!json_ok(&w)) {
		/* too long or out of memory: say so rather than print half a line */
		json_release(&w);
		json_init(&w, stack, sizeof(stack), sizeof(stack));
		json_object_begin(&w);
		json_kv_str(&w, "ts", ts);
		json_kv_str(&w, "level", log_level_name(lvl));
		json_kv_strn(&w, "msg", msg ? msg : "", msg ? strnlen(msg, 256) : 0);
		json_kv_bool(&w, "truncated", true);
		json_object_end(&w);
	}
	json_raw(&w, "\n", 1);
	fwrite(json_text(&w), 1, json_len(&w), lg->out);
	fflush(lg->out);
	json_release(&w);
}
