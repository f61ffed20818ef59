/* sql_obfuscate.h — turns SQL statement text into something safe to export:
 * literals become '?', and names the statement's operation and main table.
 *
 * What sql_obfuscate does:
 *  - string literals ('..' with '' and backslash escapes, E'..', N'..', B'..',
 *    X'..', $$..$$ and $tag$..$tag$) become ?; backslashes are taken as escapes
 *    in every string, so a standard-conforming string ending in a backslash
 *    hides more than it should, never less;
 *  - numbers (123, 1.5, .5, 1e-3, 0x1F, 0b101) become ?; a sign before a number
 *    stays as an operator ("-?");
 *  - TRUE, FALSE and NULL are kept (they are not data worth hiding);
 *  - identifiers are kept, including "double-quoted" (SQL_DIALECT_STANDARD)
 *    and `backticked` ones; in SQL_DIALECT_MYSQL "double-quoted" text is a
 *    string literal and becomes ?;
 *  - placeholders ($1, ?, :name, %s) are kept;
 *  - comments ("-- ..", block comments, and in SQL_DIALECT_MYSQL "# ..") are
 *    removed;
 *  - runs of white space become one space; leading and trailing space is cut;
 *  - "IN (?, ?, ?)" collapses to "IN (?)" (also lists of placeholders are kept
 *    as they are: only lists of obfuscated literals collapse).
 */
#ifndef PERISCOPE_SQL_OBFUSCATE_H
#define PERISCOPE_SQL_OBFUSCATE_H

#include <stddef.h>

enum sql_dialect {
	SQL_DIALECT_STANDARD = 0, /* PostgreSQL and ANSI: "x" is an identifier */
	SQL_DIALECT_MYSQL = 1,    /* "x" is a string, # starts a comment */
};

/* Writes the obfuscated form of in[0..len) (NUL bytes end it) to out, NUL-
 * terminated and truncated to out_len - 1 bytes. Returns the length written
 * (0 when out_len is 0). */
size_t sql_obfuscate(const char *in, size_t len, char *out, size_t out_len);
size_t sql_obfuscate_dialect(const char *in, size_t len, char *out, size_t out_len,
                             enum sql_dialect dialect);

/* Names the operation (the first keyword, upper-case: SELECT, INSERT, UPDATE,
 * DELETE, CREATE, BEGIN, ...; for WITH .. the statement after the CTEs) and the
 * main table where it is plain: SELECT .. FROM t (joins do not matter; a
 * comma list or a subquery gives ""), INSERT/REPLACE [INTO] t, UPDATE t,
 * DELETE FROM t, TRUNCATE [TABLE] t, COPY t, CREATE/DROP/ALTER TABLE [IF [NOT]
 * EXISTS] t, LOCK TABLE t. Quotes around the name are removed; a schema stays
 * (s.t). sql is NUL-terminated. Outputs are always NUL-terminated (empty when
 * unknown). Returns 0, or -EINVAL when no operation word was found. */
int sql_operation_and_collection(const char *sql, char *op, size_t op_len, char *coll,
                                 size_t coll_len);

#endif
