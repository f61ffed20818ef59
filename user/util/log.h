/* log.h — structured logging: one JSON object per line, e.g.
 *   {"ts":"2026-11-25T04:30:00.123Z","level":"info","msg":"ready","probes":12}
 * A logger is an object (no global state), safe to share between threads:
 * each line is built in a local buffer and written with one fwrite. */
#ifndef PERISCOPE_LOG_H
#define PERISCOPE_LOG_H

#include <stdint.h>
#include <stdio.h>

/* syslog's severity numbers (lower is more severe), so levels from other
 * modules' callbacks (e.g. OTLP_LOG_WARNING == 4) convert as they are. */
enum log_level {
	LOG_ERROR = 3,
	LOG_WARN = 4,
	LOG_INFO = 6,
	LOG_DEBUG = 7,
};

/* Type tags of log_msg's values; use the LOG_* macros below, not these. */
enum log_value_type {
	LOG_T_STR = 0x10f1,
	LOG_T_INT,
	LOG_T_UINT,
	LOG_T_BOOL,
	LOG_T_DOUBLE,
};

/* A typed value for log_msg: each expands to a tag and the value. */
#define LOG_STR(v)    LOG_T_STR, (const char *)(v)
#define LOG_INT(v)    LOG_T_INT, (int64_t)(v)
#define LOG_UINT(v)   LOG_T_UINT, (uint64_t)(v)
#define LOG_BOOL(v)   LOG_T_BOOL, (int)!!(v)
#define LOG_DOUBLE(v) LOG_T_DOUBLE, (double)(v)

struct logger;

/* Logs lines at level min or above to out (not closed by logger__free). */
struct logger *logger__new(FILE *out, enum log_level min);
void logger__free(struct logger *lg); /* accepts NULL */

/* Logs msg with key/value fields, ending with NULL:
 *   log_msg(lg, LOG_INFO, "ready", "probes", LOG_INT(12), "pid", LOG_INT(123), NULL);
 * lg may be NULL (nothing is logged). A NULL LOG_STR value logs null. */
void log_msg(struct logger *lg, enum log_level lvl, const char *msg, ...) __attribute__((sentinel));
/* Whether a line at lvl would be written (to skip building costly fields). */
int log_enabled(const struct logger *lg, enum log_level lvl);

/* "debug", "info", "warn"/"warning", "error" (any case); anything else: LOG_INFO. */
enum log_level log_level_parse(const char *name);
const char *log_level_name(enum log_level lvl);

#endif
