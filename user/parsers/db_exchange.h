/* db_exchange.h — what the database wire-protocol parsers (PostgreSQL, MySQL,
 * Redis) report: one struct per completed operation (a statement or command
 * and its response), shared by all three so the span and metrics code need
 * only one path. */
#ifndef PERISCOPE_DB_EXCHANGE_H
#define PERISCOPE_DB_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DB_OPERATION_MAX  32
#define DB_COLLECTION_MAX 128
#define DB_NAMESPACE_MAX  128
#define DB_QUERY_MAX      1024
#define DB_STATUS_MAX     16
#define DB_ERROR_MSG_MAX  128

/* How a transaction ended, on the span of the command that ended it (Redis
 * EXEC or DISCARD). */
enum db_tx_outcome {
	DB_TX_NONE = 0,      /* not the end of a transaction */
	DB_TX_COMMITTED,     /* EXEC ran the queued commands (some may have failed) */
	DB_TX_WATCH_ABORTED, /* EXEC answered nil: a WATCHed key changed, nothing ran */
	DB_TX_ABORTED,       /* EXEC answered an error (EXECABORT): nothing ran */
	DB_TX_DISCARDED,     /* DISCARD: nothing ran */
};

/* One operation and its response. Strings are NUL-terminated, truncated to
 * fit; unknown ones are "". */
struct db_exchange {
	const char *system;               /* "postgresql", "mysql", "redis" (static) */
	char operation[DB_OPERATION_MAX]; /* SELECT, INSERT, ... or the Redis command, upper-case */
	char collection[DB_COLLECTION_MAX]; /* table where the statement makes it plain */
	char namespace_[DB_NAMESPACE_MAX];  /* database from the startup/handshake/USE */
	char query_text[DB_QUERY_MAX]; /* obfuscated statement (literals → ?); "" for Redis */
	bool error;                    /* ErrorResponse / ERR packet / Redis error reply */
	/* the response was not seen whole (uncaptured bytes lost its framing):
	 * resp_end_ns is the last response byte seen, rows and error may be
	 * incomplete */
	bool truncated;
	char status_code[DB_STATUS_MAX]; /* SQLSTATE, MySQL error number, Redis error prefix */
	char error_message[DB_ERROR_MSG_MAX];
	uint64_t rows;                     /* rows returned or affected when known, else 0 */
	uint64_t req_start_ns, req_end_ns; /* first and last byte of the request */
	uint64_t resp_start_ns, resp_end_ns;
	uint8_t tx_outcome;   /* enum db_tx_outcome */
	uint32_t tx_commands; /* with tx_outcome: the commands queued in the transaction */
	uint32_t tx_failed;   /* with DB_TX_COMMITTED: those whose reply was an error */
};

struct db_parser_stats {
	uint64_t exchanges;        /* reported through the callback */
	uint64_t parse_errors;     /* times the framing was lost or bytes were not the protocol */
	uint64_t unanswered;       /* requests dropped without a response (close, overflow, loss) */
	uint64_t orphan_responses; /* responses with no request to pair with */
};

/* Called once per completed exchange, from inside a parser's feed or close.
 * The struct is only valid during the call. */
typedef void (*db_exchange_fn)(void *ctx, const struct db_exchange *ex);

#endif
