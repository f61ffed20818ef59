/* log_json.h — recognising what a log line says: a one-line JSON object
 * (OpenTelemetry, structlog, pino, zap, logrus, python-json-logger, bunyan
 * conventions) gives its level, message, trace context and other fields; a
 * text line gives its level from a common prefix or token (ERROR, WARN,
 * INFO, DEBUG, …). No I/O, no allocation. */
#ifndef PERISCOPE_LOG_JSON_H
#define PERISCOPE_LOG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* OpenTelemetry SeverityNumber ranges: each level's first number. */
enum log_severity {
	LOG_SEV_UNSPECIFIED = 0,
	LOG_SEV_TRACE = 1,
	LOG_SEV_DEBUG = 5,
	LOG_SEV_INFO = 9,
	LOG_SEV_WARN = 13,
	LOG_SEV_ERROR = 17,
	LOG_SEV_FATAL = 21,
};

enum log_json_type {
	LOG_JSON_STRING = 0, /* val is the raw contents between the quotes (escapes kept) */
	LOG_JSON_NUMBER,
	LOG_JSON_BOOL,
	LOG_JSON_NULL,
	LOG_JSON_NESTED, /* an object or array: val is its JSON text */
};

/* What a field is to a log record. */
enum log_json_role {
	LOG_JSON_ATTR = 0, /* anything else: an attribute */
	LOG_JSON_LEVEL,    /* level, severity, lvl, levelname, log.level, severity_text */
	LOG_JSON_MESSAGE,  /* msg, message, event (structlog), body */
	LOG_JSON_TRACE_ID, /* trace_id, traceId, trace.id, otelTraceID, traceid */
	LOG_JSON_SPAN_ID,  /* span_id, spanId, span.id, otelSpanID, spanid */
	LOG_JSON_TIME,     /* time, timestamp, ts, @timestamp (kept as an attribute) */
};

struct log_json_field {
	const char *key; /* raw, between the quotes */
	size_t key_len;
	const char *val;
	size_t val_len;
	uint8_t type; /* enum log_json_type */
	uint8_t role; /* enum log_json_role */
};

#define LOG_JSON_MAX_FIELDS 32

/* Parses s[0..len) as one JSON object (whitespace around it allowed). Fills
 * up to max fields (the rest are counted in the return value but not
 * stored). Returns the number of top-level members, or -1 when the text is
 * not a complete, valid JSON object. Depth is limited (64). */
int log_json_parse(const char *s, size_t len, struct log_json_field *fields, size_t max);

/* Decodes a JSON string's raw contents into out (NUL-terminated, cut to
 * fit; \u escapes become UTF-8, surrogate pairs joined, bad ones '?').
 * Returns the decoded length. */
size_t log_json_unescape(const char *s, size_t len, char *out, size_t out_size);

/* The severity a level name or number means: "warn", "WARNING", "err",
 * "CRITICAL", "dpanic", pino's 10..60, syslog-like 0..7 are not guessed. */
enum log_severity log_severity_from_level(const char *s, size_t len, uint8_t json_type);

/* The severity a text line states: a level word near its start (within the
 * first 80 bytes) as a whole word, upper case ("ERROR", "[WARN]",
 * "level=error" also lower case), or glog's "E0102 …" prefix. at and len_out
 * (may be NULL) give the word found. UNSPECIFIED when none. */
enum log_severity log_severity_from_text(const char *s, size_t len, size_t *at, size_t *len_out);

/* The short name OTel uses for a severity: "INFO", "ERROR", … ("" for none). */
const char *log_severity_name(enum log_severity s);

/* Whether s is n hex digits, not all zero (trace/span ids). */
bool log_hex_id(const char *s, size_t len, size_t n);

#endif
