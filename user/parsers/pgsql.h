/* pgsql.h — incremental PostgreSQL (frontend/backend protocol v3) parser for
 * one connection. Fed both byte streams chunk by chunk in any split, it
 * reports each completed statement with its response as a db_exchange.
 *
 * One exchange per simple Query ('Q') message — a multi-statement query
 * string is one exchange: operation and table come from its first
 * statement, rows add up over its CommandCompletes, and any ErrorResponse
 * marks it failed — and one per Execute of the extended protocol, with the
 * text of the statement its portal was bound to (named and unnamed prepared
 * statements are remembered, up to PGSQL_STATEMENTS_MAX). */
#ifndef PERISCOPE_PGSQL_H
#define PERISCOPE_PGSQL_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/db_exchange.h"
#include "parsers/stream.h"

#define PGSQL_STATEMENTS_MAX 32 /* named prepared statements remembered */
#define PGSQL_PENDING_MAX    64 /* statements waiting for their response */

struct pgsql_parser;

/* fn is called once per completed exchange. NULL on ENOMEM. */
struct pgsql_parser *pgsql_parser__new(db_exchange_fn fn, void *ctx);
void pgsql_parser__free(struct pgsql_parser *p); /* accepts NULL */

/* Feeds one chunk of one direction. Returns 0; -EBADMSG when the bytes were
 * not PostgreSQL messages or uncaptured bytes lost the framing (the parser
 * resynchronises at a later chunk that starts a message); -EINVAL on bad
 * arguments. After an accepted SSLRequest/GSSENCRequest the connection is
 * encrypted and every later chunk is ignored (returns 0). */
int pgsql_parser_feed(struct pgsql_parser *p, enum stream_dir dir, const struct stream_chunk *c);

/* The connection closed at ts_ns: a response cut short is reported
 * (truncated), statements without any response are dropped and counted. */
void pgsql_parser_close(struct pgsql_parser *p, uint64_t ts_ns);

void pgsql_parser_stats(const struct pgsql_parser *p, struct db_parser_stats *out);

/* Whether the first bytes of a stream in direction dir look like PostgreSQL:
 * requests — a StartupMessage (protocol 3.x), SSLRequest, GSSENCRequest or
 * CancelRequest, or a Query/Parse message with a sane length; responses — an
 * Authentication/ErrorResponse message start, or the one-byte SSL answer.
 * Returns 1 or 0. */
int pgsql_detect(const uint8_t *data, size_t len, enum stream_dir dir);

#endif
