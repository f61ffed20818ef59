/* histogram.c — explicit-bucket histogram: one allocation holding the bounds
 * and the bucket counts, binary search on record. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/histogram.h"

struct histogram {
	size_t n_bounds;
	uint64_t count;
	double sum;
	double min;
	double max;
	double *bounds;          /* n_bounds, inside this allocation */
	uint64_t *bucket_counts; /* n_bounds + 1, inside this allocation */
	                         /* bounds and counts follow the struct */
};

static struct histogram *histogram_alloc(size_t n_bounds)
{
	size_t size = sizeof(struct histogram) + n_bounds * sizeof(double) +
	              (n_bounds + 1) * sizeof(uint64_t);
	struct histogram *h = calloc(1, size);

	if (!h)
		return NULL;
	h->n_bounds = n_bounds;
	h->bounds = (double *)(h + 1);
	h->bucket_counts = (uint64_t *)(h->bounds + n_bounds);
	return h;
}

struct histogram *histogram__new(const double *bounds, size_t n_bounds)
{
	struct histogram *h;

	if (n_bounds > HISTOGRAM_MAX_BOUNDS || (n_bounds && !bounds)) {
		errno = EINVAL;
		return NULL;
	}
	for (size_t i = 0; i < n_bounds; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
			errno = EINVAL;
			return NULL;
		}
	}
	h = histogram_alloc(n_bounds);
	if (!h) {
		errno = ENOMEM;
		return NULL;
	}
	if (n_bounds)
		memcpy(h->bounds, bounds, n_bounds * sizeof(double));
	return h;
}

void histogram__free(struct histogram *h)
{
	free(h);
}

struct histogram *histogram__clone(const struct histogram *h)
{
	struct histogram *copy = histogram_alloc(h->n_bounds);

	if (!copy)
		return NULL;
	copy->count = h->count;
	copy->sum = h->sum;
	copy->min = h->min;
	copy->max = h->max;
	memcpy(copy->bounds, h->bounds, h->n_bounds * sizeof(double));
	memcpy(copy->bucket_counts, h->bucket_counts, (h->n_bounds + 1) * sizeof(uint64_t));
	return copy;
}

size_t histogram_bucket_index(const double *bounds, size_t n_bounds, double v)
{
	size_t lo = 0, hi = n_bounds;

	/* The first bound >= v: upper bounds are inclusive. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v <= bounds[mid])
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

int histogram_record(struct histogram *h, double v)
{
	if (!isfinite(v))
		return -EINVAL;
	h->bucket_counts[histogram_bucket_index(h->bounds, h->n_bounds, v)]++;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (h->count == 0 || v > h->max)
		h->max = v;
	h->count++;
	h->sum += v;
	return 0;
}

bool histogram_same_bounds(const struct histogram *a, const struct histogram *b)
{
	if (a->n_bounds != b->n_bounds)
		return false;
	for (size_t i = 0; i < a->n_bounds; i++) {
		if (a->bounds[i] != b->bounds[i])
			return false;
	}
	return true;
}

int histogram_merge(struct histogram *dst, const struct histogram *src)
{
	if (!histogram_same_bounds(dst, src))
		return -EINVAL;
	if (src->count == 0)
		return 0;
	for (size_t i = 0; i <= dst->n_bounds; i++)
		dst->bucket_counts[i] += src->bucket_counts[i];
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (dst->count == 0 || src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
	return 0;
}

void histogram_reset(struct histogram *h)
{
	h->count = 0;
	h->sum = 0;
	h->min = 0;
	h->max = 0;
	memset(h->bucket_counts, 0, (h->n_bounds + 1) * sizeof(uint64_t));
}

size_t histogram_n_bounds(const struct histogram *h)
{
	return h->n_bounds;
}

const double *histogram_bounds(const struct histogram *h)
{
	return h->bounds;
}

const uint64_t *histogram_bucket_counts(const struct histogram *h)
{
	return h->bucket_counts;
}

uint64_t histogram_count(const struct histogram *h)
{
	return h->count;
}

double histogram_sum(const struct histogram *h)
{
	return h->sum;
}

double histogram_min(const struct histogram *h)
{
	return h->min;
}

double histogram_max(const struct histogram *h)
{
	return h->max;
}
