/* sampler.c — OTEL_TRACES_SAMPLER head sampling, decided by trace id. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "conn/sampler.h"

static const char *const names[] = {
    [SAMPLER_ALWAYS_ON] = "always_on",
    [SAMPLER_ALWAYS_OFF] = "always_off",
    [SAMPLER_TRACEIDRATIO] = "traceidratio",
    [SAMPLER_PARENTBASED_ALWAYS_ON] = "parentbased_always_on",
    [SAMPLER_PARENTBASED_ALWAYS_OFF] = "parentbased_always_off",
    [SAMPLER_PARENTBASED_TRACEIDRATIO] = "parentbased_traceidratio",
};

static void set_ratio(struct sampler *s, double r)
{
	s->ratio = r;
	s->all = r >= 1.0;
	/* 2^64 * r, computed without overflow */
	s->threshold = s->all ? UINT64_MAX : (uint64_t)(r * 18446744073709551616.0);
}

int sampler_init(struct sampler *s, const char *name, const char *arg)
{
	int rc = 0;

	memset(s, 0, sizeof(*s));
	s->kind = SAMPLER_PARENTBASED_ALWAYS_ON;
	set_ratio(s, 1.0);
	if (name && name[0]) {
		size_t i;

		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (!strcmp(name, names[i]))
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			return -EINVAL;
		s->kind = (enum sampler_kind)i;
	}
	if (s->kind == SAMPLER_TRACEIDRATIO || s->kind == SAMPLER_PARENTBASED_TRACEIDRATIO) {
		double r = 1.0;

		if (arg && arg[0]) {
			char *end;

			r = strtod(arg, &end);
			if (end == arg || *end || !(r >= 0.0 && r <= 1.0)) {
				r = 1.0;
				rc = -EINVAL;
			}
		}
		set_ratio(s, r);
	}
	return rc;
}

static bool ratio_says(const struct sampler *s, const uint8_t trace_id[16])
{
	uint64_t v = 0;

	if (s->all)
		return true;
	for (int i = 8; i < 16; i++)
		v = v << 8 | trace_id[i];
	return v < s->threshold;
}

bool sampler_decide(const struct sampler *s, const uint8_t trace_id[16], bool has_parent,
                    bool parent_sampled)
{
	switch (s->kind) {
	case SAMPLER_ALWAYS_ON:
		return true;
	case SAMPLER_ALWAYS_OFF:
		return false;
	case SAMPLER_TRACEIDRATIO:
		return ratio_says(s, trace_id);
	case SAMPLER_PARENTBASED_ALWAYS_ON:
		return has_parent ? parent_sampled : true;
	case SAMPLER_PARENTBASED_ALWAYS_OFF:
		return has_parent ? parent_sampled : false;
	case SAMPLER_PARENTBASED_TRACEIDRATIO:
		return has_parent ? parent_sampled : ratio_says(s, trace_id);
	}
	return true;
}

const char *sampler_name(const struct sampler *s)
{
	return names[s->kind];
}
