/* test_histogram.c — bucketing with le semantics, merge, reset, bad bounds. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "telemetry/histogram.h"
#include "unit.h"

static const double semconv_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                        0.5,   0.75, 1,     2.5,  5,     7.5, 10};
#define N_SEMCONV (sizeof(semconv_bounds) / sizeof(semconv_bounds[0]))

static void test_bucket_index_le(void)
{
	/* A value equal to a bound belongs to that bound's bucket. */
	CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, 0.005), 0);
	CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, 0.0050001), 1);
	CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, 0), 0);
	CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, -3), 0);
	CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, 0.01), 1);
	CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, 1), 9);
	CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, 1.0000001), 10);
	CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, 10), 13);
	CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, 10.5), 14);
	CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, 1e300), 14);
	CHECK_EQ_INT(histogram_bucket_index(NULL, 0, 42), 0);
	/* Every bound lands in its own bucket. */
	for (size_t i = 0; i < N_SEMCONV; i++)
		CHECK_EQ_INT(histogram_bucket_index(semconv_bounds, N_SEMCONV, semconv_bounds[i]),
		             i);
}

static void test_record(void)
{
	struct histogram *h = histogram__new(semconv_bounds, N_SEMCONV);
	const uint64_t *c;

	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_EQ_INT(histogram_count(h), 0);
	CHECK(histogram_min(h) == 0 && histogram_max(h) == 0);
	CHECK_EQ_INT(histogram_record(h, 0.1), 0);
	CHECK_EQ_INT(histogram_record(h, 0.1), 0);
	CHECK_EQ_INT(histogram_record(h, 0.3), 0);
	CHECK_EQ_INT(histogram_record(h, 42), 0);
	CHECK_EQ_INT(histogram_record(h, 0.002), 0);
	CHECK_EQ_INT(histogram_record(h, NAN), -EINVAL);
	CHECK_EQ_INT(histogram_record(h, INFINITY), -EINVAL);
	CHECK_EQ_INT(histogram_record(h, -INFINITY), -EINVAL);
	c = histogram_bucket_counts(h);
	CHECK_EQ_INT(c[0], 1);  /* 0.002 */
	CHECK_EQ_INT(c[5], 2);  /* 0.1 (le=0.1) */
	CHECK_EQ_INT(c[7], 1);  /* 0.3 (le=0.5) */
	CHECK_EQ_INT(c[14], 1); /* 42 (+Inf) */
	CHECK_EQ_INT(histogram_count(h), 5);
	CHECK(fabs(histogram_sum(h) - 42.502) < 1e-9);
	CHECK(histogram_min(h) == 0.002);
	CHECK(histogram_max(h) == 42);
	uint64_t total = 0;
	for (size_t i = 0; i <= histogram_n_bounds(h); i++)
		total += c[i];
	CHECK_EQ_INT(total, histogram_count(h));
	histogram__free(h);
}

static void test_merge_and_reset(void)
{
	struct histogram *a = histogram__new(semconv_bounds, N_SEMCONV);
	struct histogram *b = histogram__new(semconv_bounds, N_SEMCONV);
	struct histogram *other = histogram__new(semconv_bounds, N_SEMCONV - 1);
	struct histogram *empty = histogram__new(semconv_bounds, N_SEMCONV);
	struct histogram *copy = NULL;

	CHECK(a && b && other && empty);
	if (!a || !b || !other || !empty)
		goto cleanup;
	histogram_record(a, 0.5);
	histogram_record(a, 3);
	histogram_record(b, 0.001);
	histogram_record(b, 100);
	CHECK_EQ_INT(histogram_merge(a, b), 0);
	CHECK_EQ_INT(histogram_count(a), 4);
	CHECK(histogram_min(a) == 0.001);
	CHECK(histogram_max(a) == 100);
	CHECK(fabs(histogram_sum(a) - 103.501) < 1e-9);
	CHECK_EQ_INT(histogram_bucket_counts(a)[0], 1);
	CHECK_EQ_INT(histogram_bucket_counts(a)[7], 1);
	CHECK_EQ_INT(histogram_bucket_counts(a)[11], 1);
	CHECK_EQ_INT(histogram_bucket_counts(a)[14], 1);
	/* b is untouched by the merge. */
	CHECK_EQ_INT(histogram_count(b), 2);
	CHECK_EQ_INT(histogram_merge(a, other), -EINVAL);
	CHECK_EQ_INT(histogram_count(a), 4);

	/* Merging an empty histogram changes nothing, not even min. */
	CHECK_EQ_INT(histogram_merge(a, empty), 0);
	CHECK(histogram_min(a) == 0.001);
	/* Merging into an empty histogram takes src's min and max. */
	CHECK_EQ_INT(histogram_merge(empty, b), 0);
	CHECK(histogram_min(empty) == 0.001 && histogram_max(empty) == 100);

	copy = histogram__clone(a);
	CHECK(copy != NULL);
	if (copy) {
		CHECK(histogram_same_bounds(copy, a));
		CHECK_EQ_INT(histogram_count(copy), 4);
		CHECK_EQ_INT(histogram_bucket_counts(copy)[14], 1);
	}

	histogram_reset(a);
	CHECK_EQ_INT(histogram_count(a), 0);
	CHECK(histogram_sum(a) == 0);
	for (size_t i = 0; i <= N_SEMCONV; i++)
		CHECK_EQ_INT(histogram_bucket_counts(a)[i], 0);
	histogram_record(a, 7);
	CHECK(histogram_min(a) == 7 && histogram_max(a) == 7);
	/* The clone did not share storage with the original. */
	if (copy)
		CHECK_EQ_INT(histogram_count(copy), 4);
cleanup:
	histogram__free(a);
	histogram__free(b);
	histogram__free(other);
	histogram__free(empty);
	histogram__free(copy);
}

static void test_bad_bounds(void)
{
	const double unsorted[] = {1, 0.5};
	const double dup[] = {1, 1};
	const double inf[] = {1, INFINITY};
	double many[HISTOGRAM_MAX_BOUNDS + 1];

	for (size_t i = 0; i < HISTOGRAM_MAX_BOUNDS + 1; i++)
		many[i] = (double)i;
	errno = 0;
	CHECK(histogram__new(unsorted, 2) == NULL && errno == EINVAL);
	CHECK(histogram__new(dup, 2) == NULL);
	CHECK(histogram__new(inf, 2) == NULL);
	CHECK(histogram__new(many, HISTOGRAM_MAX_BOUNDS + 1) == NULL);
	CHECK(histogram__new(NULL, 3) == NULL);

	struct histogram *h = histogram__new(many, HISTOGRAM_MAX_BOUNDS);
	CHECK(h != NULL);
	histogram__free(h);
	/* No bounds: a single (-Inf, +Inf) bucket. */
	h = histogram__new(NULL, 0);
	CHECK(h != NULL);
	if (h) {
		histogram_record(h, -5);
		histogram_record(h, 5);
		CHECK_EQ_INT(histogram_bucket_counts(h)[0], 2);
	}
	histogram__free(h);
	histogram__free(NULL);
}

int main(void)
{
	RUN(test_bucket_index_le);
	RUN(test_record);
	RUN(test_merge_and_reset);
	RUN(test_bad_bounds);
	return unit_summary("test_histogram");
}
