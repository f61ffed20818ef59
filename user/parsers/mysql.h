/* mysql.h — incremental MySQL/MariaDB client/server protocol parser for one
 * connection. Fed both byte streams chunk by chunk in any split, it reports
 * each completed command with its response as a db_exchange.
 *
 * Exchanges: COM_QUERY and COM_STMT_EXECUTE (with the text remembered from
 * its COM_STMT_PREPARE, by statement id, up to MYSQL_STATEMENTS_MAX), COM_PING
 * (operation "PING"), and a COM_STMT_PREPARE that fails. A successful prepare,
 * COM_INIT_DB (its database becomes namespace_, as does "USE db" once it
 * succeeds), COM_STMT_CLOSE/RESET/SEND_LONG_DATA and COM_QUIT are tracked but
 * not reported. status_code is the MySQL error number ("1146"); rows is the
 * number of rows of a result set or the affected rows of an OK, summed over
 * the results of a multi-result response. A client asking for TLS
 * (SSLRequest) ends the parsing of the connection's socket bytes; a parser
 * fed the TLS plaintext instead starts at the handshake response (seq 2),
 * which gives the namespace as in a plain connection. */
#ifndef PERISCOPE_MYSQL_H
#define PERISCOPE_MYSQL_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/db_exchange.h"
#include "parsers/stream.h"

#define MYSQL_STATEMENTS_MAX 32 /* prepared statements remembered */
#define MYSQL_PENDING_MAX    64 /* commands waiting for their response */

struct mysql_parser;

/* fn is called once per completed exchange. NULL on ENOMEM. */
struct mysql_parser *mysql_parser__new(db_exchange_fn fn, void *ctx);
void mysql_parser__free(struct mysql_parser *p); /* accepts NULL */

/* Feeds one chunk of one direction. Returns 0; -EBADMSG when the bytes were
 * not MySQL packets or uncaptured bytes lost the framing (the parser
 * resynchronises at a later chunk that starts a packet); -EINVAL on bad
 * arguments. */
int mysql_parser_feed(struct mysql_parser *p, enum stream_dir dir, const struct stream_chunk *c);

/* The connection closed at ts_ns: a response cut short is reported
 * (truncated), commands without any response are dropped and counted. */
void mysql_parser_close(struct mysql_parser *p, uint64_t ts_ns);

void mysql_parser_stats(const struct mysql_parser *p, struct db_parser_stats *out);

/* Whether the first bytes of a stream in direction dir look like MySQL:
 * responses — the server's initial handshake (protocol version 10, seq 0);
 * requests — a COM_QUERY (or COM_STMT_PREPARE) packet with seq 0 and text,
 * or the handshake response a client sends inside TLS (seq 2, SSL capability:
 * the first plaintext of a TLS connection). Returns 1 or 0. */
int mysql_detect(const uint8_t *data, size_t len, enum stream_dir dir);

#endif
