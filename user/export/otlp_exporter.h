/* otlp_exporter.h — OTLP/HTTP exporter running on its own thread: a bounded
 * span queue batched into ExportTraceServiceRequests, pre-encoded metric
 * bodies, retries with backoff, configured from the OTEL_* environment. */
#ifndef PERISCOPE_OTLP_EXPORTER_H
#define PERISCOPE_OTLP_EXPORTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct span;
struct otlp_exporter;

/* Log levels passed to the log callback (syslog's numbers). */
#define OTLP_LOG_ERR     3
#define OTLP_LOG_WARNING 4
#define OTLP_LOG_INFO    6

#define OTLP_URL_MAX     1024
#define OTLP_HEADERS_MAX 2048

struct otlp_exporter_config {
	char traces_url[OTLP_URL_MAX];  /* full URL, e.g. http://host:4318/v1/traces */
	char metrics_url[OTLP_URL_MAX]; /* full URL, e.g. http://host:4318/v1/metrics */
	char logs_url[OTLP_URL_MAX];    /* full URL, e.g. http://host:4318/v1/logs */
	bool endpoint_from_env;         /* some OTEL_EXPORTER_OTLP_*ENDPOINT was set */
	/* "k=v,k2=v2" with URL-encoded values; signal-specific keys win. */
	char headers[OTLP_HEADERS_MAX];
	char traces_headers[OTLP_HEADERS_MAX];
	char metrics_headers[OTLP_HEADERS_MAX];
	char logs_headers[OTLP_HEADERS_MAX];
	bool gzip;
	int timeout_ms;            /* one HTTP request */
	int schedule_delay_ms;     /* export at least this often when spans wait */
	int max_queue_size;        /* spans */
	int max_export_batch_size; /* spans per request */
	int max_pending_metrics;   /* metric bodies waiting */
	int max_pending_logs;      /* encoded log batches waiting (each up to a batch of records) */
	int retry_initial_ms;      /* first backoff */
	int retry_max_backoff_ms;  /* backoff cap */
	int retry_max_elapsed_ms;  /* give a batch up after retrying this long */
	void (*log)(void *ctx, int level, const char *msg); /* may be NULL */
	void *log_ctx;
};

struct otlp_exporter_stats {
	uint64_t spans_submitted; /* accepted into the queue */
	uint64_t spans_queued;    /* in the queue now */
	uint64_t spans_exported;  /* acknowledged with 2xx */
	uint64_t spans_dropped_queue_full;
	uint64_t spans_dropped_export; /* non-retryable answer or retries exhausted */
	uint64_t metric_posts_ok;
	uint64_t metric_posts_failed;   /* dropped after a failure */
	uint64_t metric_bodies_dropped; /* pending queue full */
	uint64_t logs_exported;         /* log records acknowledged with 2xx */
	uint64_t logs_dropped_queue_full;
	uint64_t logs_dropped_export;
	uint64_t export_failures; /* failed HTTP attempts (every signal) */
	uint64_t retries;
	uint64_t bytes_sent; /* request bodies as sent (after gzip) */
};

/* Defaults, then the OTEL_EXPORTER_OTLP_* and OTEL_BSP_* variables. Returns 0,
 * or -EINVAL when a variable is malformed (the default is kept for it). */
int otlp_exporter_config_from_env(struct otlp_exporter_config *c);

/* Builds "<base>/v1/<signal>" from an OTLP base endpoint into out. */
int otlp_signal_url(const char *base, const char *signal, char *out, size_t out_size);

/* Parses a "k=v,k2=v2" header list: calls emit(ctx, key, value) for each
 * entry with the key trimmed and the value trimmed and URL-decoded. Entries
 * without '=' or with an empty key are skipped. Returns the count emitted. */
int otlp_parse_headers(const char *spec,
                       void (*emit)(void *ctx, const char *key, const char *value), void *ctx);

/* Starts the exporter thread. NULL on failure. */
struct otlp_exporter *otlp_exporter__new(const struct otlp_exporter_config *c);
/* Stops the thread (aborting a request in flight) without flushing; frees
 * everything still queued. Accepts NULL. */
void otlp_exporter__free(struct otlp_exporter *e);

/* Copies s into the queue. O(1); -ENOSPC (counted) when the queue is full. */
int otlp_exporter_submit_span(struct otlp_exporter *e, const struct span *s);
/* Queues an encoded ExportMetricsServiceRequest; takes ownership of body
 * (free()d by the exporter, also on error). -ENOSPC (counted) when full. */
int otlp_exporter_submit_metrics(struct otlp_exporter *e, uint8_t *body, size_t len);
/* Queues an encoded ExportLogsServiceRequest of `records` records; takes
 * ownership of body. -ENOSPC (counted) when full: never blocks. */
int otlp_exporter_submit_logs(struct otlp_exporter *e, uint8_t *body, size_t len, size_t records);
/* Exports everything queued now and waits for it. 0 when all of it was
 * delivered or given up on, -ETIMEDOUT when timeout_ms passed first. */
int otlp_exporter_flush(struct otlp_exporter *e, int timeout_ms);
void otlp_exporter_stats(struct otlp_exporter *e, struct otlp_exporter_stats *out);

#endif
