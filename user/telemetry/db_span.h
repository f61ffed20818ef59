/* db_span.h — builds an OpenTelemetry CLIENT span for one database operation
 * (PostgreSQL, MySQL/MariaDB, Redis), with the OTel database conventions. */
#ifndef PERISCOPE_DB_SPAN_H
#define PERISCOPE_DB_SPAN_H

#include <stdint.h>

#include "conn/conn_table.h"
#include "parsers/db_exchange.h"
#include "telemetry/span.h"

struct resource;
struct link_ctx;

/* Fills s (which the caller has span_init'ed); the span takes a reference on r. */
void db_span_build(struct span *s, const struct db_exchange *ex, const struct conn *c,
                   struct resource *r, const struct link_ctx *ids, int64_t unix_offset_ns);

#endif
