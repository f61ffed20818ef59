/* test_db_span.c — database CLIENT spans: error replies and the end of a Redis
 * transaction (EXEC committed with a failed command, WATCH abort). */
#include <string.h>

#include "conn/trace_links.h"
#include "telemetry/db_span.h"
#include "telemetry/resource.h"
#include "unit.h"

static struct span span;

static const char *str_attr(const char *key)
{
	const struct span_attr *a = span_find_attr(&span, key);
	return a && a->type == SPAN_ATTR_STR ? span_attr_str(&span, a) : NULL;
}

static int64_t int_attr(const char *key)
{
	const struct span_attr *a = span_find_attr(&span, key);
	return a && a->type == SPAN_ATTR_INT ? a->i : -1;
}

static void build(const struct db_exchange *ex)
{
	static struct conn c;
	struct link_ctx ids = {0};
	struct resource *r = resource__new(1, 1);

	c.ref.family = 2; /* AF_INET */
	c.ref.remote_port = 6379;
	span_init(&span);
	db_span_build(&span, ex, &c, r, &ids, 0);
	resource_unref(r);
}

static void test_redis_transaction_spans(void)
{
	struct db_exchange ex = {.system = "redis", .req_start_ns = 1, .resp_end_ns = 2};

	/* the command that failed inside EXEC */
	strcpy(ex.operation, "INCR");
	ex.error = true;
	strcpy(ex.status_code, "ERR");
	strcpy(ex.error_message, "ERR value is not an integer or out of range");
	build(&ex);
	CHECK_EQ_INT(span.status, SPAN_STATUS_ERROR);
	CHECK_EQ_STR(str_attr("db.response.status_code"), "ERR");
	CHECK_EQ_STR(str_attr("error.type"), "ERR");
	CHECK(span_find_attr(&span, "periscope.db.transaction.outcome") == NULL);
	span_release(&span);

	/* EXEC: ran, one of its three commands failed; not an error itself */
	memset(&ex, 0, sizeof(ex));
	ex.system = "redis";
	strcpy(ex.operation, "EXEC");
	ex.tx_outcome = DB_TX_COMMITTED;
	ex.tx_commands = 3;
	ex.tx_failed = 1;
	build(&ex);
	CHECK(span.status != SPAN_STATUS_ERROR);
	CHECK(span_find_attr(&span, "error.type") == NULL);
	CHECK_EQ_STR(str_attr("periscope.db.transaction.outcome"), "committed");
	CHECK_EQ_INT(int_attr("periscope.db.transaction.commands"), 3);
	CHECK_EQ_INT(int_attr("periscope.db.transaction.failed_commands"), 1);
	span_release(&span);

	/* a WATCH abort: nothing ran, and Redis reports no error */
	ex.tx_outcome = DB_TX_WATCH_ABORTED;
	ex.tx_commands = 2;
	ex.tx_failed = 0;
	build(&ex);
	CHECK(span.status != SPAN_STATUS_ERROR);
	CHECK_EQ_STR(str_attr("periscope.db.transaction.outcome"), "watch_aborted");
	CHECK_EQ_INT(int_attr("periscope.db.transaction.commands"), 2);
	CHECK(span_find_attr(&span, "periscope.db.transaction.failed_commands") == NULL);
	span_release(&span);

	/* EXECABORT: an error reply */
	ex.tx_outcome = DB_TX_ABORTED;
	ex.error = true;
	strcpy(ex.status_code, "EXECABORT");
	build(&ex);
	CHECK_EQ_INT(span.status, SPAN_STATUS_ERROR);
	CHECK_EQ_STR(str_attr("error.type"), "EXECABORT");
	CHECK_EQ_STR(str_attr("periscope.db.transaction.outcome"), "aborted");
	span_release(&span);

	ex.tx_outcome = DB_TX_DISCARDED;
	ex.error = false;
	ex.status_code[0] = '\0';
	strcpy(ex.operation, "DISCARD");
	build(&ex);
	CHECK_EQ_STR(str_attr("periscope.db.transaction.outcome"), "discarded");
	CHECK_EQ_STR(span.name, "DISCARD");
	span_release(&span);
}

int main(void)
{
	RUN(test_redis_transaction_spans);
	return unit_summary("test_db_span");
}
