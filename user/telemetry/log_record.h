/* log_record.h — one OTel log record built from a line a process wrote to
 * stdout/stderr: severity, body and attributes (from the line's JSON fields
 * when it is a JSON object: level, message, trace_id/span_id, the rest as
 * attributes; else the level a text prefix states), the trace context of the
 * server request the writer was serving, and the process's resource. Self
 * contained (one allocation, strings valid UTF-8 and NUL-terminated) so it
 * can be batched and handed to the exporter. */
#ifndef PERISCOPE_LOG_RECORD_H
#define PERISCOPE_LOG_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct resource;

#define LOG_RECORD_MAX_ATTRS 24

enum log_attr_type {
	LOG_ATTR_STR = 0,
	LOG_ATTR_INT,
	LOG_ATTR_BOOL,
	LOG_ATTR_DOUBLE,
};

struct log_attr {
	const char *key; /* in the record's arena */
	uint8_t type;    /* enum log_attr_type */
	const char *str; /* LOG_ATTR_STR, in the arena */
	int64_t i;       /* INT, BOOL */
	double d;
};

struct log_record {
	uint64_t time_unix_ns;     /* when the line was written */
	uint64_t observed_unix_ns; /* when the agent made the record */
	uint8_t severity;          /* OTel SeverityNumber, 0: unspecified */
	char severity_text[24];
	uint8_t trace_id[16];
	uint8_t span_id[8];
	bool has_trace;
	bool sampled;
	bool from_json;            /* the line was a JSON object */
	struct resource *resource; /* one reference */
	const char *body;          /* in the arena */
	uint16_t n_attrs;
	struct log_attr attrs[LOG_RECORD_MAX_ATTRS];
	size_t arena_used, arena_size;
	char arena[];
};

/* What a line and its writer say. */
struct log_line_input {
	const char *text;
	size_t len;
	bool truncated;
	uint32_t lines;
	int32_t fd; /* 1: stdout, 2: stderr */
	uint32_t tid;
	uint64_t time_unix_ns, observed_unix_ns;
	/* the writer's server request, when it served exactly one */
	bool has_context;
	bool sampled;
	uint8_t trace_id[16];
	uint8_t span_id[8];
	struct resource *resource; /* borrowed; the record takes a reference */
};

/* NULL on ENOMEM. */
struct log_record *log_record_build(const struct log_line_input *in);
void log_record_free(struct log_record *r); /* accepts NULL */

#endif
