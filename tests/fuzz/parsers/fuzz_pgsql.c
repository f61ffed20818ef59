/* fuzz_pgsql.c — libFuzzer harness for the PostgreSQL parser: the input is a
 * script of chunks (control byte: direction, whether bytes go missing; then a
 * length byte and the bytes), checking the bounds of everything reported. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/pgsql.h"

static void check_exchange(void *ctx, const struct db_exchange *ex)
{
	size_t *count = ctx;

	if (strcmp(ex->system, "postgresql") != 0)
		abort();
	if (strlen(ex->operation) >= sizeof(ex->operation) ||
	    strlen(ex->collection) >= sizeof(ex->collection) ||
	    strlen(ex->namespace_) >= sizeof(ex->namespace_) ||
	    strlen(ex->query_text) >= sizeof(ex->query_text) ||
	    strlen(ex->status_code) >= sizeof(ex->status_code) ||
	    strlen(ex->error_message) >= sizeof(ex->error_message))
		abort();
	if (ex->req_start_ns > ex->req_end_ns)
		abort();
	(*count)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t count = 0, pos = 0;
	uint64_t ts = 1;
	struct pgsql_parser *p = pgsql_parser__new(check_exchange, &count);
	struct db_parser_stats st;

	if (!p)
		return 0;
	pgsql_detect(data, size, STREAM_DIR_REQUEST);
	pgsql_detect(data, size, STREAM_DIR_RESPONSE);
	while (pos + 2 <= size) {
		uint8_t ctl = data[pos], n = data[pos + 1];
		pos += 2;
		if (n > size - pos)
			n = (uint8_t)(size - pos);
		struct stream_chunk c = {.data = data + pos,
		                         .len = n,
		                         .missing = (ctl & 0x80) ? (size_t)(ctl & 0x7e) * 37 : 0,
		                         .ts_first_ns = ts,
		                         .ts_last_ns = ts + 1};
		ts += 2;
		pgsql_parser_feed(p, (ctl & 1) ? STREAM_DIR_RESPONSE : STREAM_DIR_REQUEST, &c);
		pos += n;
	}
	pgsql_parser_close(p, ts);
	pgsql_parser_stats(p, &st);
	if (st.exchanges != count)
		abort();
	pgsql_parser__free(p);
	return 0;
}
