/* test_sampler.c — OTEL_TRACES_SAMPLER parsing and trace-id-consistent decisions. */
#include <string.h>

#include "conn/sampler.h"
#include "conn/trace_id.h"
#include "unit.h"

static void test_parse(void)
{
	struct sampler s;

	CHECK_EQ_INT(sampler_init(&s, NULL, NULL), 0);
	CHECK_EQ_STR(sampler_name(&s), "parentbased_always_on");
	CHECK_EQ_INT(sampler_init(&s, "traceidratio", "0.25"), 0);
	CHECK_EQ_INT(s.kind, SAMPLER_TRACEIDRATIO);
	CHECK(s.ratio == 0.25);
	CHECK(sampler_init(&s, "traceidratio", "2") < 0);
	CHECK(sampler_init(&s, "traceidratio", "abc") < 0);
	CHECK(sampler_init(&s, "sometimes", NULL) < 0);
	CHECK_EQ_INT(sampler_init(&s, "always_off", NULL), 0);
	CHECK_EQ_INT(s.kind, SAMPLER_ALWAYS_OFF);
}

static void test_ratio_is_consistent_and_close(void)
{
	struct sampler s;
	struct id_gen g;
	uint8_t id[16];
	int yes = 0;

	sampler_init(&s, "traceidratio", "0.1");
	id_gen_seed_fixed(&g, 42);
	for (int i = 0; i < 100000; i++) {
		bool d;

		id_gen_trace_id(&g, id);
		d = sampler_decide(&s, id, false, false);
		/* the same trace id always gets the same answer, parent or not */
		CHECK(d == sampler_decide(&s, id, false, false));
		yes += d;
	}
	CHECK(yes > 9000 && yes < 11000);
}

static void test_parent_based(void)
{
	struct sampler s;
	uint8_t id[16] = {0};

	sampler_init(&s, "parentbased_traceidratio", "0");
	CHECK(!sampler_decide(&s, id, false, false));
	CHECK(sampler_decide(&s, id, true, true));
	CHECK(!sampler_decide(&s, id, true, false));
	sampler_init(&s, "parentbased_always_off", NULL);
	CHECK(!sampler_decide(&s, id, false, false));
	CHECK(sampler_decide(&s, id, true, true));
	sampler_init(&s, "always_on", NULL);
	CHECK(sampler_decide(&s, id, true, false));
}

int main(void)
{
	RUN(test_parse);
	RUN(test_ratio_is_consistent_and_close);
	RUN(test_parent_based);
	return unit_summary("test_sampler");
}
