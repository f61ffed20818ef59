/* log_lines.h — what processes write to stdout/stderr, cut into log records
 * (no I/O, no clock: timestamps come with the writes).
 *
 * Writes are reassembled into lines per (pid, fd): a line may span several
 * writes, and a write may hold several lines. One record per line, with the
 * line's end ("\n" or "\r\n") removed; blank lines make no record. A line
 * longer than max_record is cut there and marked truncated (the rest, up to
 * its newline, is skipped); a write whose tail was not captured ends its line,
 * marked truncated. A line that stays incomplete is flushed by log_lines_tick
 * after flush_after_ns without a write.
 *
 * Multi-line stack traces become one record where the pattern is clear:
 *  - Python: "Traceback (most recent call last):", its indented lines and the
 *    exception line that ends it (joined to the line before it when that line
 *    looked like an error: logging.exception's message);
 *  - Java / Node.js: a line that looks like an error followed by frames
 *    ("\tat …", "    at …"), "Caused by: …", "Suppressed: …", "... N more";
 *  - Go: "panic: …" or "fatal error: …" and the goroutine blocks after it
 *    ("goroutine N [running]:", frames, blank lines between blocks).
 * Only a line that looks like an error ("error", "exception", "traceback",
 * "panic", "fatal", "throwable" anywhere in it) is held back waiting for its
 * continuation, so ordinary lines are reported at once.
 *
 * Each write carries a tag (the caller's: here, the trace context of the
 * writer at that moment); a record gets the tag and timestamp of the write
 * that brought its first byte. */
#ifndef PERISCOPE_LOG_LINES_H
#define PERISCOPE_LOG_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_LINES_MAX_RECORD_DEFAULT  16384
#define LOG_LINES_MAX_STREAMS_DEFAULT 4096
#define LOG_LINES_FLUSH_NS_DEFAULT    (200ull * 1000000ull)

/* Opaque to this module: copied with the write that starts a record. */
struct log_tag {
	uint8_t b[40];
};

struct log_text {
	uint32_t pid;
	int32_t fd;
	const char *text; /* not NUL-terminated; valid during the callback only */
	size_t len;
	uint32_t lines; /* lines in the record (more than 1: a grouped stack trace) */
	bool truncated; /* cut at max_record, or a write's tail was not captured */
	uint64_t ts_ns; /* the write that brought its first byte */
	const struct log_tag *tag;
};

typedef void (*log_lines_emit_fn)(void *ctx, const struct log_text *rec);

struct log_lines_config {
	size_t max_record;  /* bytes of one record (0: the default) */
	size_t max_streams; /* (pid, fd) streams tracked; the oldest go first (0: default) */
	uint64_t
	    flush_after_ns; /* an incomplete line or held record waits this long (0: default) */
	bool no_grouping;   /* one record per line, always */
};

struct log_lines_stats {
	uint64_t records;
	uint64_t truncated;
	uint64_t grouped;    /* records of more than one line */
	uint64_t lost_bytes; /* bytes written but not captured */
	uint64_t evicted;    /* streams flushed early to make room */
};

struct log_lines;

/* NULL on ENOMEM. */
struct log_lines *log_lines__new(const struct log_lines_config *cfg, log_lines_emit_fn emit,
                                 void *ctx);
void log_lines__free(struct log_lines *ll); /* accepts NULL; emits nothing */

/* One write of pid to fd at ts_ns: data[0..captured) of the written bytes
 * (bytes >= captured; the rest was not captured). */
void log_lines_feed(struct log_lines *ll, uint32_t pid, int32_t fd, uint64_t ts_ns,
                    const struct log_tag *tag, const uint8_t *data, size_t captured, size_t bytes);
/* Emits what waited longer than flush_after_ns before now_ns. */
void log_lines_tick(struct log_lines *ll, uint64_t now_ns);
/* Emits everything pid holds and forgets its streams (the process exited). */
void log_lines_flush_pid(struct log_lines *ll, uint32_t pid);
/* Emits everything held. */
void log_lines_flush_all(struct log_lines *ll);
/* Bytes held in buffers now. */
size_t log_lines_memory(const struct log_lines *ll);
void log_lines_get_stats(const struct log_lines *ll, struct log_lines_stats *out);

/* Whether a line looks like the start of an error report (see above). */
bool log_line_looks_error(const char *s, size_t len);

#endif
