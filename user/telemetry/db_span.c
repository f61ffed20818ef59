/* db_span.c — CLIENT spans for database operations: name "OPERATION collection"
 * (or "OPERATION", or the system name), db.* attributes, ERROR on error replies;
 * the command ending a transaction (Redis EXEC, DISCARD) also gets
 * periscope.db.transaction.{outcome,commands,failed_commands}. */
#include <stdio.h>
#include <string.h>

#include "telemetry/db_span.h"
#include "telemetry/http_span.h"
#include "telemetry/resource.h"
#include "conn/trace_links.h"

void db_span_build(struct span *s, const struct db_exchange *ex, const struct conn *c,
                   struct resource *r, const struct link_ctx *ids, int64_t unix_offset_ns)
{
	char remote[64];
	uint64_t end = ex->resp_end_ns > ex->req_start_ns ? ex->resp_end_ns : ex->req_start_ns;

	s->kind = SPAN_KIND_CLIENT;
	s->resource = resource_ref(r);
	memcpy(s->trace_id, ids->trace_id, 16);
	memcpy(s->span_id, ids->span_id, 8);
	memcpy(s->parent_span_id, ids->parent_span_id, 8);
	s->sampled = ids->sampled;
	s->start_unix_ns = ex->req_start_ns + unix_offset_ns;
	s->end_unix_ns = end + unix_offset_ns;
	if (ex->operation[0] && ex->collection[0])
		snprintf(s->name, sizeof(s->name), "%s %s", ex->operation, ex->collection);
	else if (ex->operation[0])
		snprintf(s->name, sizeof(s->name), "%s", ex->operation);
	else
		snprintf(s->name, sizeof(s->name), "%s", ex->system);

	conn_addr_format(c->ref.family, c->ref.remote_addr, remote, sizeof(remote));
	span_set_str(s, "db.system.name", ex->system);
	if (ex->operation[0])
		span_set_str(s, "db.operation.name", ex->operation);
	if (ex->collection[0])
		span_set_str(s, "db.collection.name", ex->collection);
	if (ex->namespace_[0])
		span_set_str(s, "db.namespace", ex->namespace_);
	if (ex->query_text[0])
		span_set_str(s, "db.query.text", ex->query_text);
	span_set_str(s, "server.address", remote);
	span_set_int(s, "server.port", c->ref.remote_port);
	span_set_str(s, "network.peer.address", remote);
	span_set_int(s, "network.peer.port", c->ref.remote_port);
	if ((c->flags & CONN_FLAG_TLS))
		span_set_bool(s, "tls", true);
	if (ex->rows)
		span_set_int(s, "db.response.returned_rows", (int64_t)ex->rows);
	if (ex->tx_outcome != DB_TX_NONE) {
		/* no semantic convention for a transaction's end: our own names */
		static const char *const outcome[] = {
		    [DB_TX_COMMITTED] = "committed",
		    [DB_TX_WATCH_ABORTED] = "watch_aborted",
		    [DB_TX_ABORTED] = "aborted",
		    [DB_TX_DISCARDED] = "discarded",
		};
		if (ex->tx_outcome < sizeof(outcome) / sizeof(outcome[0]))
			span_set_str(s, "periscope.db.transaction.outcome",
			             outcome[ex->tx_outcome]);
		span_set_int(s, "periscope.db.transaction.commands", ex->tx_commands);
		if (ex->tx_outcome == DB_TX_COMMITTED)
			span_set_int(s, "periscope.db.transaction.failed_commands", ex->tx_failed);
	}
	if (ex->error) {
		s->status = SPAN_STATUS_ERROR;
		if (ex->status_code[0]) {
			span_set_str(s, "db.response.status_code", ex->status_code);
			span_set_str(s, "error.type", ex->status_code);
		} else {
			span_set_str(s, "error.type", "_OTHER");
		}
		snprintf(s->status_message, sizeof(s->status_message), "%s", ex->error_message);
	}
}
