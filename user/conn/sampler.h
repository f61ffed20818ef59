/* sampler.h — head sampling as the OTel SDKs define it (OTEL_TRACES_SAMPLER,
 * OTEL_TRACES_SAMPLER_ARG). The ratio decision depends on the trace id only, so
 * every span of a trace gets the same answer on every node running this agent. */
#ifndef PERISCOPE_SAMPLER_H
#define PERISCOPE_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

enum sampler_kind {
	SAMPLER_ALWAYS_ON = 0,
	SAMPLER_ALWAYS_OFF,
	SAMPLER_TRACEIDRATIO,
	SAMPLER_PARENTBASED_ALWAYS_ON, /* the SDK default */
	SAMPLER_PARENTBASED_ALWAYS_OFF,
	SAMPLER_PARENTBASED_TRACEIDRATIO,
};

struct sampler {
	enum sampler_kind kind;
	double ratio;       /* traceidratio: 0..1 */
	uint64_t threshold; /* sampled when the trace id's low 8 bytes (big endian) < threshold */
	bool all;           /* ratio >= 1 */
};

/* Parses the two variables' values (either may be NULL: defaults). Returns 0 or
 * -EINVAL for an unknown sampler or a bad ratio (then the default is set). */
int sampler_init(struct sampler *s, const char *name, const char *arg);

/* has_parent: the span continues a trace from outside (traceparent, or a
 * client span paired with it); parent_sampled: that parent's flag. */
bool sampler_decide(const struct sampler *s, const uint8_t trace_id[16], bool has_parent,
                    bool parent_sampled);

const char *sampler_name(const struct sampler *s);

#endif
