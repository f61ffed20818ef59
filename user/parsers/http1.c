/* http1.c — incremental HTTP/1.x parser for one connection.
 *
 * Each direction (requests, responses) runs its own state machine over the
 * captured bytes. Lines are parsed in place when they lie inside one chunk and
 * are copied (bounded, LINE_KEEP bytes) only when they cross a chunk boundary.
 * A request is queued (bounded FIFO) as soon as its request line is seen; each
 * final response is paired with the oldest queued request, provided that
 * request was queued before the response's status line was seen (otherwise
 * the response is an orphan).
 *
 * Message starts. A direction expecting a message start checks that its
 * bytes begin one; if they cannot, it counts one parse error and scans for the
 * next plausible start: a request line "METHOD SP target SP HTTP/1.x CRLF"
 * (METHOD is [A-Z][A-Z_-]{0,19}; it is found even when glued to the garbage
 * before it) or a status line "HTTP/1.x SP 3DIGIT". The scanners run byte by
 * byte across chunk boundaries, so what they find does not depend on how the
 * stream was split. Empty lines between messages are skipped silently.
 *
 * Uncaptured bytes (stream_chunk.missing):
 *  - inside a Content-Length body or inside a chunk's data they count as body;
 *  - inside the start line or header block they truncate it: the message is
 *    reported with what was seen (headers_truncated) and ends with that chunk,
 *    even when a Content-Length was seen (where the header block ended is not
 *    known); the direction then skips to the next message start without
 *    counting errors;
 *  - where the chunked framing is needed (a chunk-size line, the trailers, or
 *    past the end of the current chunk's data) the framing is lost: the message
 *    stays open, every following byte counts as its body (not decoded), and it
 *    ends with the last byte before the next message start in its direction,
 *    when the other direction starts a message, or at close.
 * A chunked framing error or an unparsable Content-Length is handled the same
 * way (plus one parse error). A malformed header line ends the message there
 * (headers_truncated, one parse error); the scan for the next start begins
 * after that line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "parsers/http1.h"
#include "util/mem_pool.h"
#include "util/text.h"

#define PENDING_MAX        32   /* requests waiting for their response */
#define LINE_KEEP          1024 /* bytes kept of a header line split across chunks */
#define METHOD_LEN_MAX     20   /* longest method accepted */
#define TOKEN_KEEP         (HTTP1_TARGET_MAX - 1) /* request-target bytes kept */
#define CHUNK_HEX_MAX      15                     /* hex digits of a chunk size (< 2^60) */
#define CONTENT_LENGTH_MAX (1ULL << 60)

enum dir_state_id {
	ST_IDLE = 0,    /* between messages: the next byte should start one */
	ST_START,       /* scanning for (or inside) a start line */
	ST_STATUS_REST, /* after "HTTP/1.x NNN": the reason phrase up to LF */
	ST_HEADERS,     /* the header block, line by line */
	ST_BODY_LEN,    /* Content-Length body: `remaining` bytes left */
	ST_CHUNK_SIZE,  /* chunked: hex digits of a chunk-size line */
	ST_CHUNK_EXT,   /* chunked: rest of the chunk-size line */
	ST_CHUNK_DATA,  /* chunked: `remaining` bytes of chunk data */
	ST_CHUNK_END,   /* chunked: CRLF after chunk data */
	ST_TRAILERS,    /* chunked: trailer section up to an empty line */
	ST_BODY_CLOSE,  /* response body delimited by connection close */
	ST_TUNNEL,      /* after 101 / CONNECT 2xx: not HTTP any more */
};

/* What the request-line scanner made of one byte. */
enum scan_event {
	EV_CHAR,        /* a token byte */
	EV_SP,          /* a token ended */
	EV_CR,          /* CR after a request line's version */
	EV_RESET,       /* no request line can contain the bytes so far */
	EV_RESET_AGAIN, /* as EV_RESET; the byte must be scanned again */
	EV_MATCH,       /* LF ending a request line */
};

enum run_state {
	RUN_NONE = 0, /* the current token does not end in a method run */
	RUN_OK,       /* it ends in [A-Z][A-Z_-]* of at most METHOD_LEN_MAX */
	RUN_LONG,     /* it ends in a longer one */
};

enum line_result {
	LINE_OK,
	LINE_END, /* the empty line ending the header block */
	LINE_BAD,
};

/* A run of method characters and where it started. */
struct method_run {
	uint64_t start_ns;    /* ts_first of the chunk holding its first byte */
	uint64_t before_ns;   /* ts_last of the chunk holding the byte before it */
	uint64_t body_before; /* open message's body bytes before it */
	uint8_t state;        /* enum run_state */
	uint8_t len;
	char text[METHOD_LEN_MAX];
};

struct scan_token {
	uint16_t len;
	bool truncated;
	char text[TOKEN_KEEP];
};

/* Request-line scanner state kept across chunks (allocated while scanning).
 * Tokens are separated by single spaces; a request line is found at an LF
 * when the current token is "HTTP/1.x", the previous one is the target and
 * the one before ends in a method run. */
struct req_scan {
	struct method_run run;    /* run ending the current token */
	struct method_run meth_b; /* run that ended the previous token */
	struct method_run meth_a; /* run that ended the token before that */
	struct scan_token tok[2]; /* current and previous token */
	uint8_t cur;              /* index of the current token */
	bool cr;                  /* CR seen after a version token */
};

/* A header line that crosses a chunk boundary (allocated while needed). */
struct line_buf {
	uint32_t len;
	bool truncated; /* longer than LINE_KEEP: the rest was dropped */
	char text[LINE_KEEP];
};

struct dir_state {
	uint8_t state;      /* enum dir_state_id */
	uint8_t origin;     /* scanning from a message start: 0 = it can no longer start
	                     * there; requests 1..3 = in method/target/version,
	                     * responses 1 */
	bool open;          /* a message started and has not ended */
	bool quiet;         /* bytes skipped while scanning are expected, not errors */
	bool counted;       /* the current run of garbage was counted */
	bool in_line;       /* a header line continues from an earlier chunk */
	bool truncated;     /* header block cut (capture limit or malformed) */
	bool chunked;       /* Transfer-Encoding ends in chunked */
	bool te_other;      /* Transfer-Encoding present, not ending in chunked */
	bool has_length;    /* a valid Content-Length was seen */
	bool length_bad;    /* an invalid or conflicting Content-Length was seen */
	bool chunk_cr;      /* ST_CHUNK_END: CR seen */
	bool trailer_empty; /* ST_TRAILERS: the current line is empty so far */
	uint8_t hex_digits; /* ST_CHUNK_SIZE: digits seen */
	uint8_t r_idx;      /* status-line scanner: bytes matched */
	uint16_t r_status;  /* status-line scanner: code so far */
	uint16_t status;    /* response: status code of the open message */
	uint64_t remaining; /* body or chunk bytes left (chunk size while parsing it) */
	uint64_t content_length;
	uint64_t body_size;
	uint64_t start_ns;   /* first byte of the open message */
	uint64_t last_ns;    /* ts_last of the latest chunk of this direction */
	uint64_t r_start_ns; /* status-line scanner candidate: as struct method_run */
	uint64_t r_before_ns;
	uint64_t r_body_before;
	struct line_buf *line;
	struct req_scan *scan; /* request direction only */
};

struct pending {
	struct pending *next;
	uint64_t seq; /* order of arrival */
	struct http1_exchange ex;
};

struct http1_parser {
	http1_exchange_fn fn;
	http1_request_fn req_fn;
	void *ctx;
	struct pending *head; /* oldest request without a response */
	struct pending *tail;
	struct pending *req_cur; /* the request being parsed, while still queued */
	uint32_t n_pending;
	uint64_t next_seq; /* seq of the next queued request */
	/* the open response pairs only with requests queued before it began */
	uint64_t resp_seq_limit;
	struct http1_stats stats;
	struct dir_state dir[2];
	struct pending *upgraded; /* the request an h2c upgrade answered (owned) */
	struct mem_pool *pool;    /* where pending entries come from (not owned) */
	size_t upgrade_pos;       /* where in the chunk the 101 head ended */
	bool upgrading;           /* set by headers_done: the feed stops there */
};

static inline bool is_upper(uint8_t b)
{
	return b >= 'A' && b <= 'Z';
}

static inline bool is_digit(uint8_t b)
{
	return b >= '0' && b <= '9';
}

static inline bool is_method_byte(uint8_t b)
{
	return is_upper(b) || b == '-' || b == '_';
}

/* A byte of a request-line token: visible ASCII or obs-text. */
static inline bool is_token_byte(uint8_t b)
{
	return b > 0x20 && b != 0x7f;
}

/* RFC 9110 tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~ (a lookup table: header
 * names are scanned byte by byte). */
#define TC1(c) [c] = 1
static const uint8_t tchar_table[256] = {
    TC1('!'), TC1('#'), TC1('$'), TC1('%'), TC1('&'), TC1('\''), TC1('*'), TC1('+'), TC1('-'),
    TC1('.'), TC1('^'), TC1('_'), TC1('`'), TC1('|'), TC1('~'),  TC1('0'), TC1('1'), TC1('2'),
    TC1('3'), TC1('4'), TC1('5'), TC1('6'), TC1('7'), TC1('8'),  TC1('9'), TC1('A'), TC1('B'),
    TC1('C'), TC1('D'), TC1('E'), TC1('F'), TC1('G'), TC1('H'),  TC1('I'), TC1('J'), TC1('K'),
    TC1('L'), TC1('M'), TC1('N'), TC1('O'), TC1('P'), TC1('Q'),  TC1('R'), TC1('S'), TC1('T'),
    TC1('U'), TC1('V'), TC1('W'), TC1('X'), TC1('Y'), TC1('Z'),  TC1('a'), TC1('b'), TC1('c'),
    TC1('d'), TC1('e'), TC1('f'), TC1('g'), TC1('h'), TC1('i'),  TC1('j'), TC1('k'), TC1('l'),
    TC1('m'), TC1('n'), TC1('o'), TC1('p'), TC1('q'), TC1('r'),  TC1('s'), TC1('t'), TC1('u'),
    TC1('v'), TC1('w'), TC1('x'), TC1('y'), TC1('z'),
};
#undef TC1

static int hex_value(uint8_t b)
{
	if (is_digit(b))
		return b - '0';
	b |= 0x20;
	if (b >= 'a' && b <= 'f')
		return b - 'a' + 10;
	return -1;
}

static void trim_ows(const char **s, size_t *n)
{
	while (*n && ((*s)[0] == ' ' || (*s)[0] == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
}

/* How many bytes at the start of s[0..n) are letters, digits or '-' (what
 * header names are made of: all tchars), found sixteen at a time while
 * sixteen remain; the rest is left to the tchar table. */
static inline size_t name_run(const char *s, size_t n)
{
	size_t i = 0;
#ifdef __SSE2__
	const __m128i case_bit = _mm_set1_epi8(0x20), dash = _mm_set1_epi8('-');
	const __m128i a_1 = _mm_set1_epi8('a' - 1), z_1 = _mm_set1_epi8('z' + 1);
	const __m128i d_1 = _mm_set1_epi8('0' - 1), d_9 = _mm_set1_epi8('9' + 1);

	/* signed byte compares: bytes >= 0x80 are negative, never in a range */
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
		__m128i l = _mm_or_si128(v, case_bit);
		__m128i alpha = _mm_and_si128(_mm_cmpgt_epi8(l, a_1), _mm_cmpgt_epi8(z_1, l));
		__m128i digit = _mm_and_si128(_mm_cmpgt_epi8(v, d_1), _mm_cmpgt_epi8(d_9, v));
		__m128i ok = _mm_or_si128(_mm_or_si128(alpha, digit), _mm_cmpeq_epi8(v, dash));
		unsigned mask = (unsigned)_mm_movemask_epi8(ok);

		if (mask != 0xffff)
			return i + (size_t)__builtin_ctz(~mask);
	}
#endif
	return i;
}

/* memchr(s, '\n', n) for header lines: they are short, so sixteen bytes a
 * step inline (SSE2) beat the library call; the tail is left to memchr. */
static inline const uint8_t *find_lf(const uint8_t *s, size_t n)
{
	size_t i = 0;
#ifdef __SSE2__
	const __m128i lf = _mm_set1_epi8('\n');

	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(s + i));
		unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf));

		if (mask)
			return s + i + __builtin_ctz(mask);
	}
	if (i == n)
		return NULL;
#endif
	return memchr(s + i, '\n', n - i);
}

/* Appends a comma-separated list value to dst, keeping whole members only. */
static void append_list(char *dst, size_t cap, const char *v, size_t n)
{
	size_t used = strlen(dst), sep = used ? 1 : 0, room;

	if (!n || used + sep >= cap - 1)
		return;
	room = cap - 1 - used - sep;
	if (n > room) {
		size_t keep = room;
		while (keep && v[keep] != ',')
			keep--;
		n = keep;
		while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			n--;
		if (!n)
			return;
	}
	if (sep)
		dst[used++] = ',';
	memcpy(dst + used, v, n);
	dst[used + n] = '\0';
}

/* --- pending requests ---------------------------------------------------- */

static struct pending *pending_pop(struct http1_parser *p)
{
	struct pending *r = p->head;

	if (!r)
		return NULL;
	p->head = r->next;
	if (!p->head)
		p->tail = NULL;
	p->n_pending--;
	if (r == p->req_cur)
		p->req_cur = NULL;
	return r;
}

static struct pending *pending_new(struct http1_parser *p)
{
	return mem_pool_get(p->pool, sizeof(struct pending));
}

static void pending_free(struct http1_parser *p, struct pending *r)
{
	mem_pool_put(p->pool, r, sizeof(*r));
}

static void pending_push(struct http1_parser *p, struct pending *r)
{
	if (p->n_pending >= PENDING_MAX) {
		pending_free(p, pending_pop(p));
		p->stats.unanswered++;
	}
	r->next = NULL;
	r->seq = p->next_seq++;
	r->ex.seq = r->seq;
	if (p->tail)
		p->tail->next = r;
	else
		p->head = r;
	p->tail = r;
	p->n_pending++;
}

/* --- direction state ----------------------------------------------------- */

static void line_free(struct dir_state *d)
{
	if (d->line) {
		free(d->line);
		d->line = NULL;
	}
	d->in_line = false;
}

static void scan_free(struct dir_state *d)
{
	free(d->scan);
	d->scan = NULL;
}

static void dir_reset(struct dir_state *d)
{
	line_free(d);
	scan_free(d);
	memset(d, 0, sizeof(*d));
}

static void run_clear(struct method_run *r)
{
	r->state = RUN_NONE;
	r->len = 0;
}

static void scan_reset(struct req_scan *s)
{
	run_clear(&s->run);
	run_clear(&s->meth_a);
	run_clear(&s->meth_b);
	s->tok[s->cur].len = 0;
	s->tok[s->cur].truncated = false;
	s->cr = false;
}

/* Starts looking for a message start. origin: whether the next byte is where
 * one is expected; quiet: skipped bytes are not errors; counted: they already
 * were counted. An open message stays open (its framing was lost). */
static void enter_scan(struct dir_state *d, bool origin, bool quiet, bool counted)
{
	d->state = ST_START;
	d->origin = origin ? 1 : 0;
	d->quiet = quiet;
	d->counted = counted;
	d->r_idx = 0;
	if (d->scan)
		scan_reset(d->scan);
	line_free(d);
}

static void enter_idle(struct dir_state *d)
{
	d->state = ST_IDLE;
	d->open = false;
	line_free(d);
}

static void message_begin(struct dir_state *d, uint64_t start_ns)
{
	d->state = ST_HEADERS;
	d->origin = 0;
	d->open = true;
	d->quiet = false;
	d->counted = false;
	d->in_line = false;
	d->truncated = false;
	d->chunked = false;
	d->te_other = false;
	d->has_length = false;
	d->length_bad = false;
	d->status = 0;
	d->remaining = 0;
	d->content_length = 0;
	d->body_size = 0;
	d->start_ns = start_ns;
}

static void count_garbage(struct http1_parser *p, struct dir_state *d, bool *garbage)
{
	if (d->quiet)
		return;
	*garbage = true;
	if (!d->counted) {
		p->stats.parse_errors++;
		d->counted = true;
	}
}

/* The framing of the open message was lost: it absorbs every byte up to the
 * next message start. */
static void framing_lost(struct dir_state *d)
{
	enter_scan(d, false, true, true);
}

/* --- message ends ---------------------------------------------------------- */

static void report(struct http1_parser *p, const struct dir_state *d, uint64_t end_ns)
{
	const struct dir_state *rq = &p->dir[STREAM_DIR_REQUEST];
	struct pending *r;

	r = p->head;
	if (!r || r->seq >= p->resp_seq_limit) {
		p->stats.orphan_responses++;
		return;
	}
	if (r == p->req_cur) {
		/* answered before the request was complete */
		r->ex.req_end_ns =
		    rq->last_ns > r->ex.req_start_ns ? rq->last_ns : r->ex.req_start_ns;
		r->ex.request_body_size = rq->body_size;
		if (rq->truncated)
			r->ex.headers_truncated = true;
	}
	pending_pop(p);
	r->ex.status = d->status;
	r->ex.resp_start_ns = d->start_ns;
	r->ex.resp_end_ns = end_ns;
	r->ex.response_body_size = d->body_size;
	if (d->truncated)
		r->ex.headers_truncated = true;
	p->stats.exchanges++;
	if (p->fn)
		p->fn(p->ctx, &r->ex);
	pending_free(p, r);
}

/* Records the end of the open message of one direction: completes the
 * request, or reports the exchange of a final response. Leaves the state. */
static void finish_message(struct http1_parser *p, enum stream_dir dir, uint64_t end_ns)
{
	struct dir_state *d = &p->dir[dir];
	struct pending *r = p->req_cur;

	if (!d->open)
		return;
	d->open = false;
	if (dir == STREAM_DIR_REQUEST) {
		if (r) {
			r->ex.req_end_ns = end_ns;
			r->ex.request_body_size = d->body_size;
			if (d->truncated)
				r->ex.headers_truncated = true;
		}
		p->req_cur = NULL;
		return;
	}
	if (d->status >= 200 || d->status == 101)
		report(p, d, end_ns);
}

static bool lost_message(const struct dir_state *d)
{
	return d->open && d->state == ST_START;
}

static void enter_tunnel(struct http1_parser *p)
{
	for (int i = 0; i < 2; i++) {
		struct dir_state *d = &p->dir[i];
		uint64_t last_ns = d->last_ns;

		dir_reset(d);
		d->last_ns = last_ns;
		d->state = ST_TUNNEL;
	}
	p->req_cur = NULL;
}

/* --- message starts -------------------------------------------------------- */

static void request_begin(struct http1_parser *p, const char *method, size_t method_len,
                          const char *target, size_t target_len, bool target_cut, uint8_t minor,
                          uint64_t start_ns)
{
	struct dir_state *rs = &p->dir[STREAM_DIR_RESPONSE];
	struct pending *r;

	if (lost_message(rs)) /* a response whose end was lost ends with the new request */
		finish_message(p, STREAM_DIR_RESPONSE, rs->last_ns);
	message_begin(&p->dir[STREAM_DIR_REQUEST], start_ns);
	p->req_cur = NULL;
	r = pending_new(p);
	if (!r) {
		p->stats.unanswered++;
		return;
	}
	text_copy(r->ex.method, sizeof(r->ex.method), method, method_len);
	text_copy(r->ex.target, sizeof(r->ex.target), target, target_len);
	r->ex.target_truncated = target_cut || target_len > sizeof(r->ex.target) - 1;
	r->ex.host[0] = '\0';
	r->ex.user_agent[0] = '\0';
	r->ex.traceparent[0] = '\0';
	r->ex.tracestate[0] = '\0';
	r->ex.version_major = 1;
	r->ex.version_minor = minor;
	r->ex.status = 0;
	r->ex.headers_truncated = false;
	r->ex.request_body_size = 0;
	r->ex.response_body_size = 0;
	r->ex.req_start_ns = start_ns;
	r->ex.req_end_ns = start_ns;
	r->ex.resp_start_ns = 0;
	r->ex.resp_end_ns = 0;
	r->ex.failed = false;
	r->ex.end_how = 0;
	pending_push(p, r);
	p->req_cur = r;
}

static void response_begin(struct http1_parser *p, uint16_t status, uint64_t start_ns)
{
	struct dir_state *rq = &p->dir[STREAM_DIR_REQUEST];
	struct dir_state *rs = &p->dir[STREAM_DIR_RESPONSE];

	if (lost_message(rq)) { /* a request whose end was lost ends with the response */
		finish_message(p, STREAM_DIR_REQUEST, rq->last_ns);
		rq->quiet = true;
	}
	message_begin(rs, start_ns);
	rs->status = status;
	p->resp_seq_limit = p->next_seq;
}

/* Parses a whole request line [s, s+n) (LF excluded) in place. Accepts exactly
 * what the byte scanner accepts when the line starts at its origin. */
static bool request_line_fast(struct http1_parser *p, const uint8_t *s, size_t n, uint64_t start_ns)
{
	const uint8_t *v, *t;
	size_t m, tl;

	if (n && s[n - 1] == '\r')
		n--;
	if (n < 12) /* "A / HTTP/1.1" */
		return false;
	v = s + n - 8;
	if (memcmp(v, "HTTP/1.", 7) || !is_digit(v[7]) || v[-1] != ' ')
		return false;
	if (!is_upper(s[0]))
		return false;
	for (m = 1; m < n && is_method_byte(s[m]); m++)
		;
	if (m > METHOD_LEN_MAX || s[m] != ' ')
		return false;
	t = s + m + 1;
	if (t >= v - 1)
		return false;
	tl = (size_t)(v - 1 - t);
	for (size_t i = 0; i < tl; i++)
		if (!is_token_byte(t[i]))
			return false;
	request_begin(p, (const char *)s, m, (const char *)t, tl, false, (uint8_t)(v[7] - '0'),
	              start_ns);
	return true;
}

/* --- request-line scanner -------------------------------------------------- */

static bool token_is_version(const struct scan_token *t)
{
	return t->len == 8 && !t->truncated && !memcmp(t->text, "HTTP/1.", 7) &&
	       is_digit((uint8_t)t->text[7]);
}

static enum scan_event scan_byte(const struct dir_state *d, struct req_scan *s,
                                 const struct stream_chunk *c, size_t pos, size_t seg)
{
	uint8_t b = c->data[pos];
	struct scan_token *t = &s->tok[s->cur];

	if (s->cr && b != '\n') {
		scan_reset(s);
		return EV_RESET_AGAIN;
	}
	if (b == ' ') {
		if (!t->len && !t->truncated) {
			scan_reset(s);
			return EV_RESET;
		}
		s->meth_a = s->meth_b;
		s->meth_b = s->run;
		run_clear(&s->run);
		s->cur ^= 1;
		s->tok[s->cur].len = 0;
		s->tok[s->cur].truncated = false;
		return EV_SP;
	}
	if (b == '\r' || b == '\n') {
		if (!token_is_version(t) || s->meth_a.state != RUN_OK) {
			scan_reset(s);
			return EV_RESET;
		}
		if (b == '\n')
			return EV_MATCH;
		s->cr = true;
		return EV_CR;
	}
	if (!is_token_byte(b)) {
		scan_reset(s);
		return EV_RESET;
	}
	if (t->len < TOKEN_KEEP)
		t->text[t->len++] = (char)b;
	else
		t->truncated = true;
	if (!is_method_byte(b)) {
		run_clear(&s->run);
		return EV_CHAR;
	}
	if (s->run.state == RUN_NONE) {
		if (!is_upper(b))
			return EV_CHAR;
		s->run.state = RUN_OK;
		s->run.len = 0;
		s->run.start_ns = c->ts_first_ns;
		s->run.before_ns = pos ? c->ts_last_ns : d->last_ns;
		s->run.body_before = d->body_size + (pos - seg);
	}
	if (s->run.state == RUN_OK) {
		if (s->run.len < METHOD_LEN_MAX)
			s->run.text[s->run.len++] = (char)b;
		else
			s->run.state = RUN_LONG;
	}
	return EV_CHAR;
}

/* Tracks whether the bytes since the origin can still be a request line. */
static void origin_update(struct http1_parser *p, struct dir_state *d, const struct req_scan *s,
                          enum scan_event ev, bool *garbage)
{
	const struct scan_token *t = &s->tok[s->cur];
	bool alive = false;

	switch (d->origin) {
	case 0:
		return;
	case 1:
		if (ev == EV_CHAR)
			alive = s->run.state == RUN_OK && s->run.len == t->len;
		else if (ev == EV_SP)
			alive = true;
		break;
	case 2:
		alive = ev == EV_CHAR || ev == EV_SP;
		break;
	case 3:
		if (ev == EV_CHAR) {
			uint8_t b = (uint8_t)t->text[t->len - 1];
			alive = !t->truncated && t->len <= 8 &&
			        (t->len == 8 ? is_digit(b) : b == (uint8_t) "HTTP/1."[t->len - 1]);
		} else {
			alive = ev == EV_CR || ev == EV_MATCH;
		}
		break;
	}
	if (!alive) {
		d->origin = 0;
		count_garbage(p, d, garbage);
	} else if (ev == EV_SP) {
		d->origin++;
	}
}

static size_t request_found(struct http1_parser *p, struct dir_state *d, size_t pos)
{
	struct req_scan *s = d->scan;
	const struct scan_token *target = &s->tok[s->cur ^ 1];
	uint8_t minor = (uint8_t)(s->tok[s->cur].text[7] - '0');

	if (d->open) {
		d->body_size = s->meth_a.body_before;
		finish_message(p, STREAM_DIR_REQUEST, s->meth_a.before_ns);
	}
	request_begin(p, s->meth_a.text, s->meth_a.len, target->text, target->len,
	              target->truncated, minor, s->meth_a.start_ns);
	scan_free(d);
	return pos + 1;
}

static size_t scan_requests(struct http1_parser *p, const struct stream_chunk *c, size_t pos,
                            bool *garbage, bool *nomem)
{
	struct dir_state *d = &p->dir[STREAM_DIR_REQUEST];
	struct req_scan *s = d->scan;
	size_t seg = pos;

	if (!s) {
		s = malloc(sizeof(*s));
		if (!s) { /* skip the chunk */
			*nomem = true;
			if (d->origin) {
				d->origin = 0;
				d->quiet = true;
			}
			if (d->open)
				d->body_size += c->len - pos;
			return c->len;
		}
		s->cur = 0;
		scan_reset(s);
		d->scan = s;
	}
	if (!d->origin)
		count_garbage(p, d, garbage);
	for (; pos < c->len; pos++) {
		enum scan_event ev = scan_byte(d, s, c, pos, seg);

		if (ev == EV_RESET_AGAIN) {
			origin_update(p, d, s, EV_RESET, garbage);
			ev = scan_byte(d, s, c, pos, seg);
		}
		origin_update(p, d, s, ev, garbage);
		if (ev == EV_MATCH)
			return request_found(p, d, pos);
	}
	if (d->open)
		d->body_size += pos - seg;
	return pos;
}

/* A gap inside a request line: if the method and a target were seen from the
 * origin, report what was seen. */
static void request_line_cut(struct http1_parser *p, struct dir_state *d, uint64_t end_ns)
{
	struct req_scan *s = d->scan;
	const struct method_run *m;
	const struct scan_token *t;
	bool cut = true;
	uint8_t minor = 1;

	if (!s || d->origin < 2)
		return;
	if (d->origin == 2) {
		m = &s->meth_b;
		t = &s->tok[s->cur];
	} else {
		m = &s->meth_a;
		t = &s->tok[s->cur ^ 1];
		cut = t->truncated;
		if (s->tok[s->cur].len == 8)
			minor = (uint8_t)(s->tok[s->cur].text[7] - '0');
	}
	request_begin(p, m->text, m->len, t->text, t->len, cut, minor, m->start_ns);
	d->truncated = true;
	finish_message(p, STREAM_DIR_REQUEST, end_ns);
}

/* --- status-line scanner ------------------------------------------------- */

static bool status_byte_ok(uint8_t idx, uint8_t b)
{
	if (idx < 7)
		return b == (uint8_t) "HTTP/1."[idx];
	if (idx == 7)
		return is_digit(b);
	if (idx == 8)
		return b == ' ';
	if (idx == 9)
		return b >= '1' && b <= '9';
	if (idx < 12)
		return is_digit(b);
	return b == ' ' || b == '\r' || b == '\n';
}

static size_t scan_responses(struct http1_parser *p, const struct stream_chunk *c, size_t pos,
                             bool *garbage)
{
	struct dir_state *d = &p->dir[STREAM_DIR_RESPONSE];
	size_t seg = pos;

	if (!d->origin)
		count_garbage(p, d, garbage);
	while (pos < c->len) {
		uint8_t b;

		if (d->r_idx == 0 && !d->origin) {
			const uint8_t *h = memchr(c->data + pos, 'H', c->len - pos);
			if (!h) {
				pos = c->len;
				break;
			}
			pos = (size_t)(h - c->data);
		}
		b = c->data[pos];
		if (!status_byte_ok(d->r_idx, b)) {
			if (d->origin) {
				d->origin = 0;
				count_garbage(p, d, garbage);
			}
			d->r_idx = 0;
			if (b != 'H') {
				pos++;
				continue;
			}
		}
		if (d->r_idx == 0) {
			d->r_start_ns = c->ts_first_ns;
			d->r_before_ns = pos ? c->ts_last_ns : d->last_ns;
			d->r_body_before = d->body_size + (pos - seg);
			d->r_status = 0;
		} else if (d->r_idx >= 9 && d->r_idx <= 11) {
			d->r_status = (uint16_t)(d->r_status * 10 + (b - '0'));
		} else if (d->r_idx == 12) {
			if (d->open) {
				d->body_size = d->r_body_before;
				finish_message(p, STREAM_DIR_RESPONSE, d->r_before_ns);
			}
			d->r_idx = 0;
			response_begin(p, d->r_status, d->r_start_ns);
			if (b != '\n')
				d->state = ST_STATUS_REST;
			return pos + 1;
		}
		d->r_idx++;
		pos++;
	}
	if (d->open)
		d->body_size += pos - seg;
	return pos;
}

/* --- headers --------------------------------------------------------------- */

/* name (n bytes, tchars) equals the lowercase literal `lower`, ignoring case:
 * setting bit 5 maps A-Z to a-z and leaves the other tchars of `lower` alone. */
static inline bool name_is(const char *s, size_t n, const char *lower, size_t lower_len)
{
	if (n != lower_len)
		return false;
	for (size_t i = 0; i < n; i++)
		if (((uint8_t)s[i] | 0x20) != (uint8_t)lower[i])
			return false;
	return true;
}

static bool parse_length(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (!n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit((uint8_t)v[i]))
			return false;
		x = x * 10 + (uint64_t)(v[i] - '0');
		if (x > CONTENT_LENGTH_MAX)
			return false;
	}
	*out = x;
	return true;
}

static void on_content_length(struct dir_state *d, const char *v, size_t n, bool cut)
{
	uint64_t len;

	if (cut || !parse_length(v, n, &len) || (d->has_length && len != d->content_length)) {
		d->length_bad = true;
		return;
	}
	d->has_length = true;
	d->content_length = len;
}

static void on_transfer_encoding(struct dir_state *d, const char *v, size_t n, bool cut)
{
	const char *last = memrchr(v, ',', n);

	if (last) {
		n -= (size_t)(last + 1 - v);
		v = last + 1;
		trim_ows(&v, &n);
	}
	d->chunked = !cut && name_is(v, n, "chunked", 7);
	d->te_other = !d->chunked;
}

/* Does a comma-separated header value list tok (case-insensitively)? */
static bool has_token(const char *v, size_t n, const char *tok)
{
	size_t tn = strlen(tok), i = 0;

	while (i < n) {
		size_t j = i, e;

		while (j < n && v[j] != ',')
			j++;
		e = j;
		while (i < e && (v[i] == ' ' || v[i] == '\t'))
			i++;
		while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (e - i == tn && !strncasecmp(v + i, tok, tn))
			return true;
		i = j + 1;
	}
	return false;
}

/* One header line (LF excluded). cut: the line was longer than kept. */
static inline __attribute__((always_inline)) enum line_result
header_line(struct http1_parser *p, enum stream_dir dir, const char *s, size_t n, bool cut)
{
	struct dir_state *d = &p->dir[dir];
	struct http1_exchange *ex =
	    dir == STREAM_DIR_REQUEST && p->req_cur ? &p->req_cur->ex : NULL;
	const char *colon, *v;
	size_t name_len, vn;

	if (!cut && n && s[n - 1] == '\r')
		n--;
	if (!n)
		return LINE_END;
	if (s[0] == ' ' || s[0] == '\t')
		return LINE_OK; /* obsolete line folding: the continuation is ignored */
	/* sixteen bytes a step while they are letters, digits or '-'; unless
	 * that stopped at a byte that is no tchar (the colon, usually), four
	 * bytes a step while they are all tchars, then byte by byte */
	name_len = name_run(s, n);
	if (name_len == n || tchar_table[(uint8_t)s[name_len]]) {
		for (; name_len + 4 <= n; name_len += 4) {
			const uint8_t *b = (const uint8_t *)s + name_len;

			if (!(tchar_table[b[0]] & tchar_table[b[1]] & tchar_table[b[2]] &
			      tchar_table[b[3]]))
				break;
		}
		while (name_len < n && tchar_table[(uint8_t)s[name_len]])
			name_len++;
	}
	if (!name_len || name_len == n || s[name_len] != ':')
		return LINE_BAD;
	/* only the names we keep need their value */
	if (name_len != 4 && name_len != 7 && name_len != 10 && name_len != 11 && name_len != 14 &&
	    name_len != 17)
		return LINE_OK;
	colon = s + name_len;
	v = colon + 1;
	vn = n - name_len - 1;
	trim_ows(&v, &vn);

	switch (name_len) {
	case 4:
		if (ex && !ex->host[0] && name_is(s, name_len, "host", 4))
			text_copy(ex->host, sizeof(ex->host), v, vn);
		break;
	case 7:
		if (ex && name_is(s, name_len, "upgrade", 7))
			ex->upgrade_h2c = has_token(v, vn, "h2c");
		break;
	case 10:
		if (ex && !ex->user_agent[0] && name_is(s, name_len, "user-agent", 10))
			text_copy(ex->user_agent, sizeof(ex->user_agent), v, vn);
		else if (ex && name_is(s, name_len, "tracestate", 10))
			append_list(ex->tracestate, sizeof(ex->tracestate), v, vn);
		break;
	case 11:
		if (ex && !ex->traceparent[0] && name_is(s, name_len, "traceparent", 11))
			text_copy(ex->traceparent, sizeof(ex->traceparent), v, vn);
		break;
	case 14:
		if (ex && name_is(s, name_len, "http2-settings", 14))
			text_copy(ex->http2_settings, sizeof(ex->http2_settings), v, vn);
		else if (name_is(s, name_len, "content-length", 14))
			on_content_length(d, v, vn, cut);
		break;
	case 17:
		if (name_is(s, name_len, "transfer-encoding", 17))
			on_transfer_encoding(d, v, vn, cut);
		break;
	}
	return LINE_OK;
}

static void line_append(struct dir_state *d, const uint8_t *s, size_t n)
{
	size_t room;

	if (!d->line) {
		d->line = malloc(sizeof(*d->line));
		if (!d->line)
			return; /* the line is skipped */
		d->line->len = 0;
		d->line->truncated = false;
	}
	room = LINE_KEEP - d->line->len;
	if (n > room) {
		n = room;
		d->line->truncated = true;
	}
	memcpy(d->line->text + d->line->len, s, n);
	d->line->len += (uint32_t)n;
}

static void start_chunked(struct dir_state *d)
{
	d->state = ST_CHUNK_SIZE;
	d->remaining = 0;
	d->hex_digits = 0;
}

/* The header block ended (its last byte is in chunk c): how is the body framed? */
static void headers_done(struct http1_parser *p, enum stream_dir dir, const struct stream_chunk *c)
{
	struct dir_state *d = &p->dir[dir];
	const struct http1_exchange *req = p->head ? &p->head->ex : NULL;
	uint16_t st = d->status;

	line_free(d);
	if (dir == STREAM_DIR_REQUEST) {
		if (p->req_fn && p->req_cur)
			p->req_fn(p->ctx, &p->req_cur->ex);
		if (d->chunked) {
			start_chunked(d);
		} else if (d->te_other || d->length_bad) {
			p->stats.parse_errors++;
			framing_lost(d);
		} else if (d->content_length) {
			d->state = ST_BODY_LEN;
			d->remaining = d->content_length;
		} else {
			finish_message(p, dir, c->ts_last_ns);
			enter_idle(d);
		}
		return;
	}
	if (st == 101 && req && req->upgrade_h2c && p->head->seq < p->resp_seq_limit &&
	    !p->upgraded) {
		/* h2c: the request is answered on HTTP/2's stream 1, not here */
		d->open = false;
		p->upgraded = pending_pop(p);
		p->upgraded->ex.resp_start_ns = d->start_ns;
		if (p->req_cur == p->upgraded)
			p->req_cur = NULL;
		p->upgrading = true;
		enter_tunnel(p);
	} else if (st == 101 || (req && req->method[0] == 'C' && !strcmp(req->method, "CONNECT") &&
	                         st >= 200 && st < 300)) {
		finish_message(p, dir, c->ts_last_ns);
		enter_tunnel(p);
	} else if (st < 200 || st == 204 || st == 304 ||
	           (req && req->method[0] == 'H' && !strcmp(req->method, "HEAD"))) {
		finish_message(p, dir, c->ts_last_ns);
		enter_idle(d);
	} else if (d->chunked) {
		start_chunked(d);
	} else if (d->te_other) {
		d->state = ST_BODY_CLOSE;
	} else if (d->length_bad) {
		p->stats.parse_errors++;
		framing_lost(d);
	} else if (!d->has_length) {
		d->state = ST_BODY_CLOSE;
	} else if (d->content_length) {
		d->state = ST_BODY_LEN;
		d->remaining = d->content_length;
	} else {
		finish_message(p, dir, c->ts_last_ns);
		enter_idle(d);
	}
}

/* A malformed header line ended just before pos: the message ends there and
 * the bytes after the line are scanned for a message start. (The line itself
 * is not rescanned: its start may lie in an earlier chunk, and the result
 * must not depend on how the stream was split.) */
static size_t header_bad(struct http1_parser *p, enum stream_dir dir, const struct stream_chunk *c,
                         size_t pos, bool *garbage)
{
	struct dir_state *d = &p->dir[dir];

	count_garbage(p, d, garbage);
	d->truncated = true;
	finish_message(p, dir, c->ts_last_ns);
	enter_scan(d, false, false, true);
	return pos;
}

static size_t on_headers(struct http1_parser *p, enum stream_dir dir, const struct stream_chunk *c,
                         size_t pos, bool *garbage)
{
	struct dir_state *d = &p->dir[dir];

	while (pos < c->len) {
		const uint8_t *s = c->data + pos;
		const uint8_t *lf = find_lf(s, c->len - pos);
		size_t n = lf ? (size_t)(lf - s) : c->len - pos;
		enum line_result r = LINE_OK;

		if (!lf) {
			line_append(d, s, n);
			d->in_line = true;
			return c->len;
		}
		if (d->in_line) {
			line_append(d, s, n);
			if (d->line) {
				r = header_line(p, dir, d->line->text, d->line->len,
				                d->line->truncated);
				d->line->len = 0;
				d->line->truncated = false;
			}
			d->in_line = false;
		} else {
			/* as if copied: the verdict must not depend on the split */
			r = header_line(p, dir, (const char *)s, n > LINE_KEEP ? LINE_KEEP : n,
			                n > LINE_KEEP);
		}
		if (r == LINE_BAD)
			return header_bad(p, dir, c, pos + n + 1, garbage);
		pos += n + 1;
		if (r == LINE_END) {
			headers_done(p, dir, c);
			return pos;
		}
	}
	return pos;
}

/* --- bodies ------------------------------------------------------------------ */

static void chunk_size_done(struct dir_state *d)
{
	if (d->remaining) {
		d->state = ST_CHUNK_DATA;
	} else {
		d->state = ST_TRAILERS;
		d->trailer_empty = true;
	}
}

static size_t on_chunked(struct http1_parser *p, enum stream_dir dir, const struct stream_chunk *c,
                         size_t pos)
{
	struct dir_state *d = &p->dir[dir];
	const uint8_t *data = c->data;
	size_t len = c->len;

	while (pos < len) {
		uint8_t b = data[pos];
		const uint8_t *lf;
		uint64_t n;
		int h;

		switch (d->state) {
		case ST_CHUNK_SIZE:
			h = hex_value(b);
			if (h >= 0) {
				if (d->hex_digits >= CHUNK_HEX_MAX)
					goto bad;
				d->remaining = d->remaining * 16 + (uint64_t)h;
				d->hex_digits++;
				pos++;
			} else if (!d->hex_digits) {
				goto bad;
			} else if (b == '\n') {
				pos++;
				chunk_size_done(d);
			} else if (b == ';' || b == ' ' || b == '\t' || b == '\r') {
				d->state = ST_CHUNK_EXT;
				pos++;
			} else {
				goto bad;
			}
			break;
		case ST_CHUNK_EXT:
			lf = memchr(data + pos, '\n', len - pos);
			if (!lf)
				return len;
			pos = (size_t)(lf - data) + 1;
			chunk_size_done(d);
			break;
		case ST_CHUNK_DATA:
			n = len - pos < d->remaining ? len - pos : d->remaining;
			pos += n;
			d->remaining -= n;
			d->body_size += n;
			if (!d->remaining) {
				d->state = ST_CHUNK_END;
				d->chunk_cr = false;
			}
			break;
		case ST_CHUNK_END:
			if (b == '\r' && !d->chunk_cr) {
				d->chunk_cr = true;
			} else if (b == '\n') {
				start_chunked(d);
			} else {
				goto bad;
			}
			pos++;
			break;
		case ST_TRAILERS:
			if (b == '\n') {
				pos++;
				if (d->trailer_empty) {
					finish_message(p, dir, c->ts_last_ns);
					enter_idle(d);
					return pos;
				}
				d->trailer_empty = true;
			} else if (b == '\r') {
				pos++;
			} else {
				d->trailer_empty = false;
				lf = memchr(data + pos, '\n', len - pos);
				pos = lf ? (size_t)(lf - data) : len;
			}
			break;
		default:
			return pos;
		}
	}
	return pos;
bad:
	p->stats.parse_errors++;
	framing_lost(d);
	return pos; /* the byte is scanned again as part of the lost body */
}

/* --- uncaptured bytes ------------------------------------------------------- */

static void on_gap(struct http1_parser *p, enum stream_dir dir, const struct stream_chunk *c)
{
	struct dir_state *d = &p->dir[dir];
	uint64_t missing = c->missing, n;

	switch (d->state) {
	case ST_IDLE:
		enter_scan(d, false, true, false);
		break;
	case ST_START:
		if (dir == STREAM_DIR_REQUEST && d->origin)
			request_line_cut(p, d, c->ts_last_ns);
		if (d->open)
			d->body_size += missing;
		if (d->origin || d->state != ST_START)
			enter_scan(d, false, true, false);
		else if (d->scan)
			scan_reset(d->scan);
		d->r_idx = 0;
		break;
	case ST_STATUS_REST:
	case ST_HEADERS:
		d->truncated = true;
		/* a request head longer than the capture: report what was seen
		 * (method, target, the headers before the cut) as the request
		 * starts, so its span gets its ids and its calls their parent */
		if (dir == STREAM_DIR_REQUEST && d->state == ST_HEADERS && p->req_fn && p->req_cur)
			p->req_fn(p->ctx, &p->req_cur->ex);
		finish_message(p, dir, c->ts_last_ns);
		enter_scan(d, false, true, false);
		break;
	case ST_BODY_LEN:
		n = missing < d->remaining ? missing : d->remaining;
		d->remaining -= n;
		d->body_size += n;
		if (!d->remaining) {
			finish_message(p, dir, c->ts_last_ns);
			if (missing > n)
				enter_scan(d, false, true, false);
			else
				enter_idle(d);
		}
		break;
	case ST_CHUNK_DATA:
		n = missing < d->remaining ? missing : d->remaining;
		d->remaining -= n;
		d->body_size += missing;
		if (missing > n) {
			framing_lost(d);
		} else if (!d->remaining) {
			d->state = ST_CHUNK_END;
			d->chunk_cr = false;
		}
		break;
	case ST_CHUNK_SIZE:
	case ST_CHUNK_EXT:
	case ST_CHUNK_END:
	case ST_TRAILERS:
		d->body_size += missing;
		framing_lost(d);
		break;
	case ST_BODY_CLOSE:
		d->body_size += missing;
		break;
	default:
		break;
	}
}

/* --- public API ---------------------------------------------------------------- */

struct http1_parser *http1_parser__new(http1_exchange_fn fn, void *ctx)
{
	struct http1_parser *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->fn = fn;
	p->ctx = ctx;
	return p;
}

void http1_parser_set_request_fn(struct http1_parser *p, http1_request_fn fn)
{
	p->req_fn = fn;
}

void http1_parser_set_pool(struct http1_parser *p, struct mem_pool *pool)
{
	p->pool = pool;
}

size_t http1_request_block_size(void)
{
	return sizeof(struct pending);
}

static void pending_free_all(struct http1_parser *p)
{
	struct pending *r;

	while ((r = pending_pop(p)))
		pending_free(p, r);
}

void http1_parser__free(struct http1_parser *p)
{
	if (!p)
		return;
	pending_free_all(p);
	dir_reset(&p->dir[0]);
	dir_reset(&p->dir[1]);
	pending_free(p, p->upgraded);
	free(p);
}

const struct http1_exchange *http1_parser_upgrade(const struct http1_parser *p, size_t *consumed)
{
	if (!p || !p->upgraded)
		return NULL;
	if (consumed)
		*consumed = p->upgrade_pos;
	return &p->upgraded->ex;
}

static size_t on_idle(struct http1_parser *p, enum stream_dir dir, const struct stream_chunk *c,
                      size_t pos)
{
	struct dir_state *d = &p->dir[dir];
	const uint8_t *s, *lf;

	while (pos < c->len && (c->data[pos] == '\r' || c->data[pos] == '\n'))
		pos++;
	if (pos == c->len)
		return pos;
	if (dir == STREAM_DIR_REQUEST) {
		s = c->data + pos;
		lf = memchr(s, '\n', c->len - pos);
		if (lf && request_line_fast(p, s, (size_t)(lf - s), c->ts_first_ns))
			return (size_t)(lf - c->data) + 1;
	} else if (!d->open && c->len - pos >= 13) {
		/* a whole "HTTP/1.x NNN" plus its next byte at the origin: what the
		 * status-line scanner would find, without its byte loop */
		const uint8_t *h = c->data + pos;

		if (!memcmp(h, "HTTP/1.", 7) && is_digit(h[7]) && h[8] == ' ' && h[9] >= '1' &&
		    h[9] <= '9' && is_digit(h[10]) && is_digit(h[11]) &&
		    (h[12] == ' ' || h[12] == '\r' || h[12] == '\n')) {
			uint16_t status =
			    (uint16_t)((h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0'));

			response_begin(p, status, c->ts_first_ns);
			if (h[12] != '\n')
				d->state = ST_STATUS_REST;
			return pos + 13;
		}
	}
	enter_scan(d, true, false, false);
	return pos;
}

int http1_parser_feed(struct http1_parser *p, enum stream_dir dir, const struct stream_chunk *c)
{
	struct dir_state *d;
	bool garbage = false, nomem = false;
	size_t pos = 0;
	const uint8_t *lf;
	uint64_t n;

	if (!p || !c || (dir != STREAM_DIR_REQUEST && dir != STREAM_DIR_RESPONSE) ||
	    (c->len && !c->data))
		return -EINVAL;
	d = &p->dir[dir];
	while (pos < c->len) {
		switch (d->state) {
		case ST_IDLE:
			pos = on_idle(p, dir, c, pos);
			break;
		case ST_START:
			if (dir == STREAM_DIR_REQUEST)
				pos = scan_requests(p, c, pos, &garbage, &nomem);
			else
				pos = scan_responses(p, c, pos, &garbage);
			break;
		case ST_STATUS_REST:
			lf = memchr(c->data + pos, '\n', c->len - pos);
			if (!lf) {
				pos = c->len;
				break;
			}
			pos = (size_t)(lf - c->data) + 1;
			d->state = ST_HEADERS;
			break;
		case ST_HEADERS:
			pos = on_headers(p, dir, c, pos, &garbage);
			if (p->upgrading) {
				p->upgrading = false;
				p->upgrade_pos = pos;
				if (c->len || c->missing)
					d->last_ns = c->ts_last_ns;
				return HTTP1_FEED_UPGRADED;
			}
			break;
		case ST_BODY_LEN:
			n = c->len - pos < d->remaining ? c->len - pos : d->remaining;
			pos += n;
			d->remaining -= n;
			d->body_size += n;
			if (!d->remaining) {
				finish_message(p, dir, c->ts_last_ns);
				enter_idle(d);
			}
			break;
		case ST_CHUNK_SIZE:
		case ST_CHUNK_EXT:
		case ST_CHUNK_DATA:
		case ST_CHUNK_END:
		case ST_TRAILERS:
			pos = on_chunked(p, dir, c, pos);
			break;
		case ST_BODY_CLOSE:
			d->body_size += c->len - pos;
			pos = c->len;
			break;
		default: /* ST_TUNNEL */
			pos = c->len;
			break;
		}
	}
	if (c->missing)
		on_gap(p, dir, c);
	if (c->len || c->missing)
		d->last_ns = c->ts_last_ns;
	if (garbage)
		return -EBADMSG;
	return nomem ? -ENOMEM : 0;
}

void http1_parser_close(struct http1_parser *p, uint64_t ts_ns, enum l7_end how)
{
	struct dir_state *rq, *rs;
	struct pending *r;

	if (!p)
		return;
	rq = &p->dir[STREAM_DIR_REQUEST];
	rs = &p->dir[STREAM_DIR_RESPONSE];
	/* a response cut by the close (or delimited by it) still answers its request */
	if (rs->open)
		finish_message(p, STREAM_DIR_RESPONSE, rs->last_ns ? rs->last_ns : ts_ns);
	if (rq->open)
		finish_message(p, STREAM_DIR_REQUEST, rq->last_ns ? rq->last_ns : ts_ns);
	/* requests still waiting: the connection ended instead of an answer;
	 * unless data was lost, when their answers may be what is missing */
	while (how == L7_END_LOST && (r = pending_pop(p))) {
		p->stats.unanswered++;
		pending_free(p, r);
	}
	while ((r = pending_pop(p))) {
		r->ex.failed = true;
		r->ex.end_how = (uint8_t)how;
		r->ex.status = 0;
		if (!r->ex.req_end_ns)
			r->ex.req_end_ns = r->ex.req_start_ns;
		r->ex.resp_start_ns = 0;
		r->ex.resp_end_ns = ts_ns > r->ex.req_end_ns ? ts_ns : r->ex.req_end_ns;
		p->stats.failed++;
		p->stats.exchanges++;
		if (p->fn)
			p->fn(p->ctx, &r->ex);
		pending_free(p, r);
	}
	p->req_cur = NULL;
	dir_reset(rq);
	dir_reset(rs);
}

bool http1_parser_pending(const struct http1_parser *p)
{
	return p && p->head;
}

void http1_parser_stats(const struct http1_parser *p, struct http1_stats *out)
{
	*out = p->stats;
}

size_t http1_parser_memory(const struct http1_parser *p)
{
	size_t bytes = sizeof(*p) + p->n_pending * sizeof(struct pending);

	for (int i = 0; i < 2; i++) {
		if (p->dir[i].line)
			bytes += sizeof(*p->dir[i].line);
		if (p->dir[i].scan)
			bytes += sizeof(*p->dir[i].scan);
	}
	return bytes;
}

static bool known_method(const uint8_t *s, size_t n)
{
	static const char *const methods[] = {"GET",     "POST",  "PUT",   "DELETE", "HEAD",
	                                      "OPTIONS", "PATCH", "TRACE", "CONNECT"};

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strlen(methods[i]) == n && !memcmp(s, methods[i], n))
			return true;
	return false;
}

int http1_detect(const uint8_t *data, size_t len)
{
	const uint8_t *lf;
	size_t m, i, k;

	if (!data || len < 4)
		return -1;
	if (len >= 5 && !memcmp(data, "HTTP/1.", len < 7 ? len : 7)) {
		/* "HTTP/1.x SP 3DIGIT" as far as the data goes */
		for (i = 7; i < len && i < 13; i++)
			if (!status_byte_ok((uint8_t)i, data[i]))
				return -1;
		return STREAM_DIR_RESPONSE;
	}
	if (!is_upper(data[0]))
		return -1;
	for (m = 1; m < len && is_method_byte(data[m]); m++)
		;
	if (m > METHOD_LEN_MAX || m == len || data[m] != ' ')
		return -1;
	lf = memchr(data, '\n', len);
	if (lf) {
		size_t n = (size_t)(lf - data);
		const uint8_t *v;

		if (n && data[n - 1] == '\r')
			n--;
		if (n < 12)
			return -1;
		v = data + n - 8;
		if (memcmp(v, "HTTP/1.", 7) || !is_digit(v[7]) || v[-1] != ' ' || v - 1 <= data + m)
			return -1;
		for (const uint8_t *t = data + m + 1; t < v - 1; t++)
			if (!is_token_byte(*t))
				return -1;
		return STREAM_DIR_REQUEST;
	}
	/* the line goes on past the data: a known method, then a target and a
	 * version as far as they go */
	if (!known_method(data, m))
		return -1;
	for (i = m + 1; i < len && is_token_byte(data[i]); i++)
		;
	if (i == len)
		return STREAM_DIR_REQUEST;
	if (data[i] != ' ' || i == m + 1)
		return -1;
	for (k = 0, i++; i < len; i++, k++) {
		bool ok = k < 7    ? data[i] == (uint8_t) "HTTP/1."[k]
		          : k == 7 ? is_digit(data[i])
		                   : k == 8 && data[i] == '\r';
		if (!ok)
			return -1;
	}
	return STREAM_DIR_REQUEST;
}
