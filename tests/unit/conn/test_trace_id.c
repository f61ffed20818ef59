/* test_trace_id.c — id generation and W3C traceparent parsing. */
#include "conn/trace_id.h"
#include "unit.h"

static void test_ids_nonzero_and_distinct(void)
{
	struct id_gen g;
	uint8_t a[16], b[16], z[16] = {0};

	id_gen_seed_fixed(&g, 42);
	id_gen_trace_id(&g, a);
	id_gen_trace_id(&g, b);
	CHECK(memcmp(a, z, 16) != 0);
	CHECK(memcmp(a, b, 16) != 0);
}

static void test_traceparent_valid(void)
{
	const char *h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
	struct traceparent tp;

	CHECK(traceparent_parse(h, strlen(h), &tp));
	CHECK_EQ_INT(tp.trace_id[0], 0x4b);
	CHECK_EQ_INT(tp.trace_id[15], 0x36);
	CHECK_EQ_INT(tp.parent_id[0], 0x00);
	CHECK_EQ_INT(tp.parent_id[7], 0xb7);
	CHECK_EQ_INT(tp.flags, 1);
}

static void test_traceparent_invalid(void)
{
	const char *bad[] = {
	    "",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
	    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
	    "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
	    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
	    "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	    "00-4bf92f3577b34da6a3ce929d0e0e473x-00f067aa0ba902b7-01",
	};
	struct traceparent tp;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(!traceparent_parse(bad[i], strlen(bad[i]), &tp));
	/* a future version may append fields */
	const char *future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-abcd";
	CHECK(traceparent_parse(future, strlen(future), &tp));
}

int main(void)
{
	RUN(test_ids_nonzero_and_distinct);
	RUN(test_traceparent_valid);
	RUN(test_traceparent_invalid);
	return unit_summary("test_trace_id");
}
