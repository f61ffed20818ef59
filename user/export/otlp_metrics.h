/* otlp_metrics.h — encodes the metrics registry as an OTLP
 * ExportMetricsServiceRequest (protobuf, proto/otlp.proto) for POST
 * /v1/metrics: one ResourceMetrics per resource, one ScopeMetrics "periscope",
 * histograms as explicit-bucket Histogram, counters as monotonic Sum, gauges
 * as Gauge, with cumulative or delta temporality. */
#ifndef PERISCOPE_OTLP_METRICS_H
#define PERISCOPE_OTLP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/metrics.h"

#define OTLP_METRICS_SCOPE_NAME      "periscope"
#define OTLP_METRICS_TEMPORALITY_ENV "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"

struct otlp_metrics_options {
	enum metric_temporality temporality;
	uint64_t now_unix_ns;      /* time_unix_nano of every point; 0: the clock now */
	const char *scope_version; /* NULL: none */
};

/* Encodes every data point of m (opts NULL: cumulative, now). With delta
 * temporality only points with measurements since the last
 * metrics_delta_commit are sent, and the caller commits right after a
 * successful encode (metrics_delta_commit(m, the same now)) so that the next
 * export starts where this one ended. On success *out is a malloc()ed buffer
 * the caller frees (non-NULL even when empty), *out_len its size and
 * *n_points (may be NULL) the number of data points in it; returns 0. Else
 * -EINVAL (delta asked of a registry without delta state) or -ENOMEM, with
 * *out NULL. */
int otlp_metrics_encode(const struct metrics *m, const struct otlp_metrics_options *opts,
                        uint8_t **out, size_t *out_len, size_t *n_points);

/* The temporality an OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE value
 * asks for: "delta" and "lowmemory" (case-insensitive) give delta, anything
 * else (NULL, "cumulative", unknown) cumulative. */
enum metric_temporality otlp_metrics_temporality_parse(const char *value);

#endif
