/* route.h — turns a raw request path into a low-cardinality route template
 * for http.route: user patterns first ("/users/{id}/orders", "/static/" then "*"),
 * then a heuristic that replaces id-like path segments with "*". */
#ifndef PERISCOPE_ROUTE_H
#define PERISCOPE_ROUTE_H

#include <stddef.h>

/* Longest route template, NUL included, callers need to provide. */
#define ROUTE_MAX 256
/* Paths with more segments keep the first ROUTE_MAX_SEGMENTS - 1
 * segments and end in one "*" segment. */
#define ROUTE_MAX_SEGMENTS 32
#define ROUTE_MAX_PATTERNS 4096

/* The heuristic. path is a request-target: origin-form ("/a/b?q=1"),
 * absolute-form ("http://host/a/b") or "*". The query string, fragment and
 * ";params" are dropped; segments that are numbers, UUIDs, hex or base64-ish
 * ids, dates, versions, e-mail addresses, percent-encoded or non-ASCII text,
 * slugs, or very long are replaced by "*". Readable words ("api", "v1",
 * "users", "index.html") are kept.
 * Returns the length written to out (NUL-terminated), -EINVAL for NULL
 * arguments or out_len == 0, -ENOSPC when the template does not fit (out is
 * then ""). */
int route_from_path(const char *path, char *out, size_t out_len);

struct route_table;

struct route_table *route_table__new(void);    /* NULL on ENOMEM */
void route_table__free(struct route_table *t); /* accepts NULL */

/* Adds a pattern; the first added pattern that matches wins. Syntax: starts
 * with "/", segments separated by "/"; a segment is a literal, "{name}" or
 * ":name" (exactly one non-empty path segment), or "*" (one segment; as the
 * last segment, everything that follows). The matched route is the pattern
 * text itself. Returns 0, -EINVAL for a malformed pattern, -ENOSPC beyond
 * ROUTE_MAX_PATTERNS, -ENOMEM. */
int route_table_add(struct route_table *t, const char *pattern);

/* Adds each comma-separated pattern of list (spaces around them ignored).
 * Returns 0 or the first error (patterns before it stay added). */
int route_table_add_list(struct route_table *t, const char *list);

size_t route_table_count(const struct route_table *t);

/* The route of path: the first matching pattern, else route_from_path.
 * t may be NULL. Returns as route_from_path. Remembers the routes of recent
 * request-targets (up to 95 bytes) in t: one thread at a time. */
int route_table_match(struct route_table *t, const char *path, char *out, size_t out_len);

#endif
