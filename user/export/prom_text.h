/* prom_text.h — renders the metrics registry in the Prometheus text
 * exposition format 0.0.4, with names translated the OpenTelemetry way
 * (http.server.request.duration, unit s → http_server_request_duration_seconds,
 * counters with _total, attribute keys with '.' → '_'), resource labels
 * service_name and service_instance_id on every series, and target_info. */
#ifndef PERISCOPE_PROM_TEXT_H
#define PERISCOPE_PROM_TEXT_H

#include <stdarg.h>
#include <stddef.h>

#include "telemetry/metrics.h"

#define PROM_CONTENT_TYPE    "text/plain; version=0.0.4; charset=utf-8"
#define PROM_BUF_DEFAULT_MAX (64u << 20)
#define PROM_NAME_MAX        256

/* A growable text buffer. Errors are sticky: after one, appends do nothing
 * and error tells why (-ENOMEM, or -E2BIG beyond max bytes). */
struct prom_buf {
	char *data; /* NUL-terminated when len > 0 */
	size_t len;
	size_t cap;
	size_t max;
	int error;
};

void prom_buf_init(struct prom_buf *b, size_t max); /* max 0: PROM_BUF_DEFAULT_MAX */
void prom_buf_release(struct prom_buf *b);          /* frees data; b can be reused after init */
void prom_buf_reset(struct prom_buf *b);            /* empties it, keeps the memory */
int prom_buf_append(struct prom_buf *b, const char *s, size_t n);
int prom_buf_puts(struct prom_buf *b, const char *s);
int prom_buf_printf(struct prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The Prometheus metric family name of an OTel instrument: sanitised name,
 * unit suffix (s → _seconds, By → _bytes, {annotations} dropped, a/b →
 * a_per_b, 1 → _ratio for gauges), _total for counters. Returns the length,
 * or -ENOSPC (out is then ""). */
int prom_metric_name(const char *name, const char *unit, enum metric_kind kind, char *out,
                     size_t out_len);
/* A Prometheus label name for an attribute key: invalid characters → '_',
 * "key_" before a leading digit, "key" before a leading '_'. Returns the
 * length or -ENOSPC. */
int prom_label_name(const char *key, char *out, size_t out_len);
/* Appends v escaped for a label value (\\, \", \n). */
void prom_append_label_value(struct prom_buf *b, const char *v);
/* Appends text escaped for a HELP line (\\, \n). */
void prom_append_help(struct prom_buf *b, const char *text);
/* Appends a sample value: shortest text that reads back as v; NaN, +Inf, -Inf. */
void prom_append_double(struct prom_buf *b, double v);

/* Appends the whole registry (cumulative) to out. Series whose labels come
 * out identical (two resources with the same service name and instance) are
 * merged. Returns 0 or out->error / -ENOMEM. */
int prom_text_render(const struct metrics *m, struct prom_buf *out);

#endif
