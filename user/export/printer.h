/* printer.h — prints finished spans to a FILE*, one line each: a human
 * readable line (PRINTER_TEXT) or a JSON object (PRINTER_JSON) with the keys
 * type, trace_id, span_id, parent_span_id, name, kind, start_time_unix_nano,
 * end_time_unix_nano, duration_ms, status, status_message, trace_state,
 * attributes and resource. Used from one thread. */
#ifndef PERISCOPE_PRINTER_H
#define PERISCOPE_PRINTER_H

#include <stddef.h>
#include <stdio.h>

struct span;
struct log_record;
struct json_writer;

enum printer_format {
	PRINTER_TEXT = 0,
	PRINTER_JSON = 1,
};

struct printer;

/* out stays the caller's (not closed by printer__free). NULL on ENOMEM/EINVAL. */
struct printer *printer__new(FILE *out, enum printer_format f);
void printer__free(struct printer *p); /* accepts NULL; flushes */

/* Writes one line. Returns 0, or a negative errno if the write failed. */
int printer_print_span(struct printer *p, const struct span *s);
/* Writes one log record (--logs), interleaved with spans: text
 * "HH:MM:SS.mmm LOG service[pid] SEVERITY body trace=… span=…", or a JSON
 * object with type "log", time_unix_nano, severity_number, severity_text,
 * body, trace_id, span_id, attributes and resource. */
int printer_print_log(struct printer *p, const struct log_record *r);
/* Flushes the stream. Returns 0 or a negative errno. */
int printer_flush(struct printer *p);

/* The line printer_print_span writes (with its trailing "\n") appended to w. */
void printer_format_json(const struct span *s, struct json_writer *w);
/* The text line (with "\n") into out[size], truncated to fit; returns its length. */
size_t printer_format_text(const struct span *s, char *out, size_t size);

#endif
