/* redis.h — incremental Redis (RESP2 and RESP3) parser for one connection.
 * Fed both byte streams chunk by chunk in any split, it reports each command
 * with its reply as a db_exchange.
 *
 * Every command of a pipeline is one exchange, paired in order with the
 * replies. Only the command name is kept (upper-case, the first word: for
 * "CONFIG GET x" the operation is "CONFIG"); arguments are never stored, and
 * query_text, collection and namespace_ stay "". An error reply ('-' or '!')
 * sets error, status_code to its first word (ERR, WRONGTYPE, NOAUTH, ...) and
 * error_message to its text. A command queued by MULTI (answered +QUEUED)
 * is reported when EXEC runs it, with its element of EXEC's array reply as
 * its response (error and status_code from an error element), then the EXEC
 * exchange with tx_outcome DB_TX_COMMITTED, tx_commands and tx_failed; EXEC
 * itself is an error only when Redis answers it with one (EXECABORT), as
 * Redis counts it. Queued commands that never run (DISCARD, EXEC answered nil
 * after a WATCHed key changed, EXECABORT) are not reported: the EXEC or
 * DISCARD exchange carries tx_outcome (DISCARDED, WATCH_ABORTED, ABORTED) and
 * their number in tx_commands. Push messages
 * (RESP3 '>' and, after a SUBSCRIBE, RESP2 "message"/"pmessage"/"smessage"
 * arrays) are not replies and do not disturb the pairing; a (P|S)SUBSCRIBE or
 * (P|S)UNSUBSCRIBE with n channels completes at its n-th confirmation. */
#ifndef PERISCOPE_REDIS_H
#define PERISCOPE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "parsers/db_exchange.h"
#include "parsers/stream.h"

#define REDIS_PENDING_MAX 256 /* commands waiting for their reply */
#define REDIS_DEPTH_MAX   32  /* nesting of aggregate replies */

struct redis_parser;

/* fn is called once per completed exchange. NULL on ENOMEM. */
struct redis_parser *redis_parser__new(db_exchange_fn fn, void *ctx);
void redis_parser__free(struct redis_parser *p); /* accepts NULL */

/* Feeds one chunk of one direction. Returns 0; -EBADMSG when the bytes were
 * not RESP or uncaptured bytes lost the framing (the parser resynchronises at
 * a later chunk); -EINVAL on bad arguments. */
int redis_parser_feed(struct redis_parser *p, enum stream_dir dir, const struct stream_chunk *c);

/* The connection closed at ts_ns: a reply cut short is reported (truncated),
 * commands without any reply are dropped and counted. */
void redis_parser_close(struct redis_parser *p, uint64_t ts_ns);

void redis_parser_stats(const struct redis_parser *p, struct db_parser_stats *out);

/* Whether the first bytes of a stream in direction dir look like Redis:
 * requests — "*<n>\r\n$" (a command array) or a known inline command word
 * (PING, HELLO, AUTH, ...) followed by a space or CRLF; responses — a RESP
 * type byte followed by a well-formed first line. Returns 1 or 0. */
int redis_detect(const uint8_t *data, size_t len, enum stream_dir dir);

#endif
