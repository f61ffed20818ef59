/* histogram.h — an explicit-bucket histogram as OpenTelemetry and Prometheus
 * define it: bucket i counts values v with bounds[i-1] < v <= bounds[i] (the
 * last bucket is (bounds[n-1], +Inf)), plus count, sum, min and max. */
#ifndef PERISCOPE_HISTOGRAM_H
#define PERISCOPE_HISTOGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HISTOGRAM_MAX_BOUNDS 64

struct histogram;

/* A histogram with its own copy of bounds (strictly increasing, finite,
 * 0 < n_bounds <= HISTOGRAM_MAX_BOUNDS; n_bounds == 0 means one bucket).
 * NULL with errno EINVAL for bad bounds, ENOMEM when out of memory. */
struct histogram *histogram__new(const double *bounds, size_t n_bounds);
void histogram__free(struct histogram *h); /* accepts NULL */

/* A new histogram with the same bounds and contents. NULL on ENOMEM. */
struct histogram *histogram__clone(const struct histogram *h);

/* Index of the bucket v falls in: the first i with v <= bounds[i], or
 * n_bounds when v is above every bound. */
size_t histogram_bucket_index(const double *bounds, size_t n_bounds, double v);

/* Records one value. Returns 0, or -EINVAL for NaN and infinities (ignored). */
int histogram_record(struct histogram *h, double v);

/* Adds src into dst. Returns 0, or -EINVAL when the bounds differ. */
int histogram_merge(struct histogram *dst, const struct histogram *src);

/* Forgets every recorded value (for delta temporality). */
void histogram_reset(struct histogram *h);

size_t histogram_n_bounds(const struct histogram *h);
const double *histogram_bounds(const struct histogram *h);
/* n_bounds + 1 counts, not cumulative. */
const uint64_t *histogram_bucket_counts(const struct histogram *h);
uint64_t histogram_count(const struct histogram *h);
double histogram_sum(const struct histogram *h);
/* min and max of the recorded values; both 0 when count is 0. */
double histogram_min(const struct histogram *h);
double histogram_max(const struct histogram *h);
bool histogram_same_bounds(const struct histogram *a, const struct histogram *b);

#endif
