/* log_lines.c — stdout/stderr writes → lines → records (see log_lines.h). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parsers/log_lines.h"

#define PROBE_WINDOW 16   /* slots looked at per (pid, fd); the oldest is evicted */
#define SMALL_BUF    4096 /* buffers bigger than this are freed when a stream goes idle */

enum group_mode {
	GROUP_HELD = 0, /* a line that looked like an error, waiting for frames */
	GROUP_PYTHON,
	GROUP_JAVA, /* also Node.js: "    at …" frames */
	GROUP_GO,
};

struct buf {
	char *p;
	size_t len, cap;
};

struct stream {
	bool used;
	uint32_t pid;
	int32_t fd;
	uint64_t last_ns; /* last write */
	uint64_t lru;
	/* the line being written */
	struct buf cur;
	bool cur_started, cur_trunc, cur_skip;
	uint64_t cur_ts;
	struct log_tag cur_tag;
	/* a record held back for its continuation lines */
	bool held;
	uint8_t mode;
	bool py_indented, go_blank;
	struct buf rec;
	bool rec_trunc;
	uint32_t rec_lines;
	uint64_t rec_ts;
	struct log_tag rec_tag;
};

struct log_lines {
	struct log_lines_config cfg;
	log_lines_emit_fn emit;
	void *ctx;
	struct stream *streams;
	uint64_t lru_clock;
	struct log_lines_stats stats;
};

struct log_lines *log_lines__new(const struct log_lines_config *cfg, log_lines_emit_fn emit,
                                 void *ctx)
{
	struct log_lines *ll = calloc(1, sizeof(*ll));

	if (!ll)
		return NULL;
	if (cfg)
		ll->cfg = *cfg;
	if (!ll->cfg.max_record)
		ll->cfg.max_record = LOG_LINES_MAX_RECORD_DEFAULT;
	if (!ll->cfg.max_streams)
		ll->cfg.max_streams = LOG_LINES_MAX_STREAMS_DEFAULT;
	if (ll->cfg.max_streams < PROBE_WINDOW)
		ll->cfg.max_streams = PROBE_WINDOW;
	if (!ll->cfg.flush_after_ns)
		ll->cfg.flush_after_ns = LOG_LINES_FLUSH_NS_DEFAULT;
	ll->streams = calloc(ll->cfg.max_streams, sizeof(*ll->streams));
	if (!ll->streams) {
		free(ll);
		return NULL;
	}
	ll->emit = emit;
	ll->ctx = ctx;
	return ll;
}

static void stream_release(struct stream *st)
{
	free(st->cur.p);
	free(st->rec.p);
	memset(st, 0, sizeof(*st));
}

void log_lines__free(struct log_lines *ll)
{
	if (!ll)
		return;
	for (size_t i = 0; i < ll->cfg.max_streams; i++)
		stream_release(&ll->streams[i]);
	free(ll->streams);
	free(ll);
}

/* ---- buffers ---- */

/* Appends up to n bytes, never growing past max; returns the bytes taken. */
static size_t buf_append(struct buf *b, const char *s, size_t n, size_t max)
{
	if (b->len >= max)
		return 0;
	if (n > max - b->len)
		n = max - b->len;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		char *p;

		while (cap < b->len + n)
			cap *= 2;
		if (cap > max)
			cap = max;
		p = realloc(b->p, cap);
		if (!p)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	return n;
}

static void buf_shrink(struct buf *b)
{
	b->len = 0;
	if (b->cap > SMALL_BUF) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

/* ---- line classes ---- */

static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && !memcmp(s, prefix, n);
}

static bool is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\f' && s[i] != '\v')
			return false;
	return true;
}

static size_t indent_of(const char *s, size_t len)
{
	size_t i = 0;

	while (i < len && (s[i] == ' ' || s[i] == '\t'))
		i++;
	return i;
}

static bool contains_ci(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word);

	for (size_t i = 0; i + n <= len; i++)
		if (!strncasecmp(s + i, word, n))
			return true;
	return false;
}

bool log_line_looks_error(const char *s, size_t len)
{
	static const char *const words[] = {"error", "exception", "traceback",
	                                    "panic", "fatal",     "throwable"};

	if (len > 512)
		len = 512; /* the head says it */
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (contains_ci(s, len, words[i]))
			return true;
	return false;
}

static bool is_python_start(const char *s, size_t len)
{
	return starts_with(s, len, "Traceback (most recent call last):");
}

/* "goroutine 12 [running]:" */
static bool is_goroutine_header(const char *s, size_t len)
{
	size_t i = 10;

	if (!starts_with(s, len, "goroutine "))
		return false;
	if (i >= len || s[i] < '0' || s[i] > '9')
		return false;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return i + 1 < len && s[i] == ' ' && s[i + 1] == '[';
}

static bool is_go_start(const char *s, size_t len)
{
	return starts_with(s, len, "panic: ") || starts_with(s, len, "fatal error: ") ||
	       is_goroutine_header(s, len);
}

/* A Java / Node.js stack frame or one of the lines between frames. */
static bool is_frame(const char *s, size_t len)
{
	size_t i = indent_of(s, len);
	const char *t = s + i;
	size_t n = len - i;

	if (i > 0 && starts_with(t, n, "at ") && n > 3)
		return true;
	if (i > 0 && starts_with(t, n, "... ") && n > 4 && t[4] >= '0' && t[4] <= '9')
		return true; /* "\t... 5 more", "... 3 common frames omitted" */
	return starts_with(t, n, "Caused by: ") || (i > 0 && starts_with(t, n, "Suppressed: "));
}

/* ---- records ---- */

static void emit_text(struct log_lines *ll, const struct stream *st, const char *text, size_t len,
                      uint32_t lines, bool trunc, uint64_t ts, const struct log_tag *tag)
{
	struct log_text r = {
	    .pid = st->pid,
	    .fd = st->fd,
	    .text = text,
	    .len = len,
	    .lines = lines,
	    .truncated = trunc,
	    .ts_ns = ts,
	    .tag = tag,
	};

	ll->stats.records++;
	if (trunc)
		ll->stats.truncated++;
	if (lines > 1)
		ll->stats.grouped++;
	if (ll->emit)
		ll->emit(ll->ctx, &r);
}

static void emit_held(struct log_lines *ll, struct stream *st)
{
	if (!st->held)
		return;
	emit_text(ll, st, st->rec.p, st->rec.len, st->rec_lines, st->rec_trunc, st->rec_ts,
	          &st->rec_tag);
	st->held = false;
	st->go_blank = false;
	st->py_indented = false;
	st->rec.len = 0;
}

static void hold(struct log_lines *ll, struct stream *st, uint8_t mode, const char *s, size_t len,
                 bool trunc, uint64_t ts, const struct log_tag *tag)
{
	st->held = true;
	st->mode = mode;
	st->rec.len = 0;
	st->rec_trunc = buf_append(&st->rec, s, len, ll->cfg.max_record) < len;
	st->rec_trunc |= trunc;
	st->rec_lines = 1;
	st->rec_ts = ts;
	st->rec_tag = *tag;
	st->py_indented = false;
	st->go_blank = false;
}

static void join(struct log_lines *ll, struct stream *st, const char *s, size_t len, bool trunc)
{
	size_t max = ll->cfg.max_record;

	if (buf_append(&st->rec, "\n", 1, max) < 1 || buf_append(&st->rec, s, len, max) < len)
		st->rec_trunc = true;
	st->rec_trunc |= trunc;
	st->rec_lines++;
}

/* Whether the held record takes this line; may end the record (emit). */
static bool continues(struct log_lines *ll, struct stream *st, const char *s, size_t len,
                      bool trunc, bool blank)
{
	switch (st->mode) {
	case GROUP_HELD:
		if (is_frame(s, len)) {
			st->mode = GROUP_JAVA;
			join(ll, st, s, len, trunc);
			return true;
		}
		if (is_python_start(s, len)) {
			st->mode = GROUP_PYTHON;
			join(ll, st, s, len, trunc);
			return true;
		}
		return false;
	case GROUP_JAVA:
		if (!blank && is_frame(s, len)) {
			join(ll, st, s, len, trunc);
			return true;
		}
		return false;
	case GROUP_PYTHON:
		if (blank)
			return false;
		if (indent_of(s, len) > 0) {
			st->py_indented = true;
			join(ll, st, s, len, trunc);
			return true;
		}
		if (st->py_indented) {
			/* "ValueError: boom": the exception ends the traceback */
			join(ll, st, s, len, trunc);
			emit_held(ll, st);
			return true;
		}
		return false;
	case GROUP_GO:
		if (blank) {
			st->go_blank = true; /* between goroutine blocks, or the end */
			return true;
		}
		if (st->go_blank) {
			st->go_blank = false;
			if (!is_goroutine_header(s, len))
				return false;
			join(ll, st, "", 0, false);
		}
		join(ll, st, s, len, trunc);
		return true;
	}
	return false;
}

/* A complete line (its end removed) of st. */
static void on_line(struct log_lines *ll, struct stream *st, const char *s, size_t len, bool trunc,
                    uint64_t ts, const struct log_tag *tag)
{
	bool blank;

	if (len && s[len - 1] == '\r')
		len--;
	blank = is_blank(s, len);
	if (st->held) {
		if (continues(ll, st, s, len, trunc, blank))
			return;
		emit_held(ll, st);
	}
	if (blank)
		return;
	if (!ll->cfg.no_grouping) {
		if (is_python_start(s, len)) {
			hold(ll, st, GROUP_PYTHON, s, len, trunc, ts, tag);
			return;
		}
		if (is_go_start(s, len)) {
			hold(ll, st, GROUP_GO, s, len, trunc, ts, tag);
			return;
		}
		if (log_line_looks_error(s, len)) {
			hold(ll, st, GROUP_HELD, s, len, trunc, ts, tag);
			return;
		}
	}
	emit_text(ll, st, s, len, 1, trunc, ts, tag);
}

/* The line being written is complete (its newline came, or it never will). */
static void finish_cur(struct log_lines *ll, struct stream *st)
{
	if (!st->cur_started)
		return;
	on_line(ll, st, st->cur.p, st->cur.len, st->cur_trunc, st->cur_ts, &st->cur_tag);
	st->cur_started = st->cur_trunc = st->cur_skip = false;
	st->cur.len = 0;
}

static void cur_append(struct log_lines *ll, struct stream *st, const char *s, size_t n,
                       uint64_t ts, const struct log_tag *tag)
{
	if (!st->cur_started) {
		st->cur_started = true;
		st->cur_ts = ts;
		st->cur_tag = *tag;
	}
	if (st->cur_skip)
		return;
	if (buf_append(&st->cur, s, n, ll->cfg.max_record) < n) {
		st->cur_trunc = true; /* the rest of this line is skipped */
		st->cur_skip = true;
	}
}

/* ---- streams ---- */

static size_t stream_home(const struct log_lines *ll, uint32_t pid, int32_t fd)
{
	uint64_t h = ((uint64_t)pid << 8 ^ (uint32_t)fd) * 0x9e3779b97f4a7c15ULL;

	return (size_t)(h >> 32) % ll->cfg.max_streams;
}

static void stream_flush(struct log_lines *ll, struct stream *st)
{
	finish_cur(ll, st);
	emit_held(ll, st);
}

static struct stream *stream_get(struct log_lines *ll, uint32_t pid, int32_t fd)
{
	size_t home = stream_home(ll, pid, fd), n = ll->cfg.max_streams;
	struct stream *free_slot = NULL, *oldest = NULL;

	for (size_t k = 0; k < PROBE_WINDOW; k++) {
		struct stream *st = &ll->streams[(home + k) % n];

		if (!st->used) {
			if (!free_slot)
				free_slot = st;
			continue;
		}
		if (st->pid == pid && st->fd == fd)
			return st;
		if (!oldest || st->lru < oldest->lru)
			oldest = st;
	}
	if (!free_slot) {
		ll->stats.evicted++;
		stream_flush(ll, oldest);
		stream_release(oldest);
		free_slot = oldest;
	}
	free_slot->used = true;
	free_slot->pid = pid;
	free_slot->fd = fd;
	return free_slot;
}

void log_lines_feed(struct log_lines *ll, uint32_t pid, int32_t fd, uint64_t ts_ns,
                    const struct log_tag *tag, const uint8_t *data, size_t captured, size_t bytes)
{
	struct stream *st = stream_get(ll, pid, fd);
	const char *p = (const char *)data, *end = p + captured;

	st->last_ns = ts_ns;
	st->lru = ++ll->lru_clock;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (!nl) {
			cur_append(ll, st, p, (size_t)(end - p), ts_ns, tag);
			break;
		}
		if (!st->cur_started) {
			/* the whole line is in this write: no copy */
			size_t len = (size_t)(nl - p);
			bool trunc = len > ll->cfg.max_record;

			on_line(ll, st, p, trunc ? ll->cfg.max_record : len, trunc, ts_ns, tag);
		} else {
			cur_append(ll, st, p, (size_t)(nl - p), ts_ns, tag);
			finish_cur(ll, st);
		}
		p = nl + 1;
	}
	if (bytes > captured) {
		/* the write's tail is unknown: its line ends here, cut */
		ll->stats.lost_bytes += bytes - captured;
		if (st->cur_started) {
			st->cur_trunc = true;
			finish_cur(ll, st);
		}
	}
}

static void stream_idle(struct log_lines *ll, struct stream *st)
{
	stream_flush(ll, st);
	stream_release(st);
}

void log_lines_tick(struct log_lines *ll, uint64_t now_ns)
{
	for (size_t i = 0; i < ll->cfg.max_streams; i++) {
		struct stream *st = &ll->streams[i];

		if (st->used && now_ns > st->last_ns + ll->cfg.flush_after_ns) {
			if (st->held || st->cur_started || st->cur.cap > SMALL_BUF ||
			    st->rec.cap > SMALL_BUF)
				stream_flush(ll, st);
			buf_shrink(&st->cur);
			buf_shrink(&st->rec);
			if (now_ns > st->last_ns + 60 * ll->cfg.flush_after_ns)
				stream_idle(ll, st); /* quiet for long: give the slot back */
		}
	}
}

void log_lines_flush_pid(struct log_lines *ll, uint32_t pid)
{
	for (size_t i = 0; i < ll->cfg.max_streams; i++)
		if (ll->streams[i].used && ll->streams[i].pid == pid)
			stream_idle(ll, &ll->streams[i]);
}

void log_lines_flush_all(struct log_lines *ll)
{
	for (size_t i = 0; i < ll->cfg.max_streams; i++)
		if (ll->streams[i].used)
			stream_flush(ll, &ll->streams[i]);
}

size_t log_lines_memory(const struct log_lines *ll)
{
	size_t n = 0;

	for (size_t i = 0; i < ll->cfg.max_streams; i++)
		n += ll->streams[i].cur.cap + ll->streams[i].rec.cap;
	return n;
}

void log_lines_get_stats(const struct log_lines *ll, struct log_lines_stats *out)
{
	*out = ll->stats;
}
