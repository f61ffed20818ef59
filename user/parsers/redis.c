/* redis.c — incremental RESP2/RESP3 parser for one connection (see redis.h).
 *
 * Each direction runs one RESP reader: a byte-driven state machine over type
 * bytes, header lines (kept up to LINE_KEEP bytes), bulk data (skipped, only
 * the first TEXT_KEEP bytes of the interesting string kept) and a bounded
 * stack of open aggregates. It reports each complete top-level value with its
 * type, element count and the text of the value itself (strings) or of its
 * first element (aggregates): the command name of a request, the first word
 * of an error, the kind of a push message. Requests may also be inline
 * commands (a line of words).
 *
 * Uncaptured bytes inside bulk data are skipped; anywhere else they lose the
 * framing, recovered as in pgsql.c: requests at the next chunk that starts a
 * command; replies once a command sent after the loss waits and a chunk
 * starts with a RESP type byte (the cut reply is reported truncated, other
 * commands before the loss are dropped).
 *
 * Transactions: a command answered +QUEUED has not run yet. It leaves the
 * queue of pending commands for the transaction's list and is reported when
 * EXEC's array reply gives its element (its response is that element: the
 * reader reports each element of a top-level array as it completes, keeping
 * the text of error elements). The EXEC exchange follows its commands, with
 * tx_outcome, tx_commands and tx_failed. When nothing runs — DISCARD, EXEC
 * answered nil (*-1 in RESP2, _ in RESP3: a WATCHed key changed) or an error
 * (EXECABORT: a command was rejected when queued, and that command already
 * has its own error exchange) — the queued commands are not reported: only
 * the EXEC or DISCARD exchange says so, with their number.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parsers/redis.h"

#define LINE_KEEP 64  /* bytes kept of a header line (type byte excluded) */
#define TEXT_KEEP 128 /* bytes kept of the interesting string */
#define BULK_MAX  (1ULL << 40)
#define COUNT_MAX (1LL << 32)

enum reader_state {
	R_TYPE = 0, /* expecting a type byte */
	R_LINE,     /* reading the rest of a line */
	R_BULK,     /* bulk data plus CRLF: `bulk_left` bytes */
};

struct frame {
	int64_t remaining;
	bool attribute; /* a RESP3 attribute: not an element of its parent */
};

/* One complete top-level value. */
struct resp_value {
	uint8_t type; /* its type byte; 0 for an inline command */
	int64_t count;
	const char *text;
	size_t text_len;
	uint64_t start_ns, end_ns;
};

struct reader {
	uint8_t state;
	uint8_t type;      /* of the item being read */
	bool capturing;    /* the item's content is the value's text */
	bool capture_next; /* the next item at depth 1 is the first element */
	bool in_value;
	bool line_over; /* the line is longer than LINE_KEEP */
	bool cr;        /* the last byte of the line so far is CR */
	bool lost;
	bool elem_capturing; /* the item is an error element of a top-level aggregate */
	uint8_t elem_type;   /* type byte of the current element of a top-level aggregate */
	uint16_t elem_len;
	uint8_t top_type;
	uint8_t depth;
	uint16_t line_len;
	uint16_t text_len;
	int64_t top_count;
	uint64_t bulk_left;
	uint64_t start_ns;
	char line[LINE_KEEP];
	char text[TEXT_KEEP];
	char elem[TEXT_KEEP]; /* text of an error element */
	struct frame stack[REDIS_DEPTH_MAX];
};

enum tx_cmd {
	TX_CMD_NONE = 0,
	TX_CMD_MULTI,
	TX_CMD_EXEC,
	TX_CMD_DISCARD,
	TX_CMD_RESET,
};

struct item {
	struct item *next;
	uint64_t seq;
	uint32_t replies_left; /* subscribe-type: confirmations still due */
	bool subscribe;
	uint8_t tx; /* enum tx_cmd */
	struct db_exchange ex;
};

/* A list of items (commands waiting for a reply; commands queued by MULTI). */
struct item_list {
	struct item *head, *tail;
	uint32_t n;
};

struct redis_parser {
	db_exchange_fn fn;
	void *ctx;
	struct reader dir[2];
	struct item_list pending; /* sent, waiting for their reply */
	struct item_list queued;  /* answered +QUEUED, waiting for EXEC */
	bool subscribed;          /* RESP2 arrays may be push messages */
	uint64_t req_seq;
	uint64_t lost_seq;
	struct db_parser_stats stats;
};

static bool is_resp_type(uint8_t b)
{
	return b && strchr("+-:$*_,#!=(%~>|", b) != NULL;
}

static bool is_line_type(uint8_t b)
{
	return b && strchr("+-:_,#(", b) != NULL;
}

static bool is_bulk_type(uint8_t b)
{
	return b == '$' || b == '!' || b == '=';
}

static bool text_is(const char *t, size_t n, const char *word)
{
	return n == strlen(word) && strncasecmp(t, word, n) == 0;
}

/* --- items ------------------------------------------------------------------ */

static struct item *list_pop(struct item_list *l)
{
	struct item *it = l->head;

	if (!it)
		return NULL;
	l->head = it->next;
	if (!l->head)
		l->tail = NULL;
	l->n--;
	it->next = NULL;
	return it;
}

static void list_push(struct item_list *l, struct item *it)
{
	it->next = NULL;
	if (l->tail)
		l->tail->next = it;
	else
		l->head = it;
	l->tail = it;
	l->n++;
}

/* Frees every item of l; returns how many there were. */
static uint32_t list_clear(struct item_list *l)
{
	uint32_t n = 0;
	struct item *it;

	while ((it = list_pop(l))) {
		free(it);
		n++;
	}
	return n;
}

static struct item *item_pop(struct redis_parser *p)
{
	return list_pop(&p->pending);
}

static void drop_all(struct redis_parser *p)
{
	p->stats.unanswered += list_clear(&p->pending) + list_clear(&p->queued);
}

static void emit_item(struct redis_parser *p, struct item *it)
{
	p->stats.exchanges++;
	p->fn(p->ctx, &it->ex);
	free(it);
}

static void emit_head(struct redis_parser *p)
{
	emit_item(p, item_pop(p));
}

/* An error reply's text t[0..n) into ex: status_code is its first word. */
static void set_error(struct db_exchange *ex, const char *t, size_t n)
{
	size_t w = 0, m = 0;

	while (n && (t[n - 1] == '\r' || t[n - 1] == '\n'))
		n--;
	while (w < n && t[w] != ' ')
		w++;
	ex->error = true;
	if (w >= sizeof(ex->status_code))
		w = sizeof(ex->status_code) - 1;
	memcpy(ex->status_code, t, w);
	ex->status_code[w] = '\0';
	/* Servers quote the client's arguments in some errors ("unknown
	 * command 'X', with args beginning with: 'secret'"); arguments are
	 * never exported, so the message stops at the first quote. */
	while (m < n && t[m] != '\'' && t[m] != '"' && t[m] != '`')
		m++;
	while (m && (t[m - 1] == ' ' || t[m - 1] == ',' || t[m - 1] == ':'))
		m--;
	if (m >= sizeof(ex->error_message))
		m = sizeof(ex->error_message) - 1;
	memcpy(ex->error_message, t, m);
	ex->error_message[m] = '\0';
}

/* A command: its name is the first word of text (upper-cased), argc words. */
static void on_command(struct redis_parser *p, const struct resp_value *v, int64_t argc)
{
	struct item *it;
	size_t n = 0;

	while (n < v->text_len && n < DB_OPERATION_MAX - 1 && v->text[n] != ' ' &&
	       v->text[n] != '\t')
		n++;
	if (!n)
		return; /* an empty inline line: ignored by the server too */
	if (p->pending.n >= REDIS_PENDING_MAX) {
		free(item_pop(p));
		p->stats.unanswered++;
	}
	it = calloc(1, sizeof(*it));
	if (!it)
		return;
	it->seq = p->req_seq++;
	it->ex.system = "redis";
	for (size_t i = 0; i < n; i++) {
		char c = v->text[i];
		it->ex.operation[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
	}
	it->ex.req_start_ns = v->start_ns;
	it->ex.req_end_ns = v->end_ns;
	const char *op = it->ex.operation;
	if (!strcmp(op, "SUBSCRIBE") || !strcmp(op, "PSUBSCRIBE") || !strcmp(op, "SSUBSCRIBE") ||
	    !strcmp(op, "UNSUBSCRIBE") || !strcmp(op, "PUNSUBSCRIBE") ||
	    !strcmp(op, "SUNSUBSCRIBE")) {
		it->subscribe = true;
		it->replies_left = argc > 1 ? (uint32_t)(argc - 1) : 1;
		if (op[0] != 'U' && op[1] != 'U')
			p->subscribed = true;
	} else if (!strcmp(op, "RESET")) {
		p->subscribed = false;
		it->tx = TX_CMD_RESET;
	} else if (!strcmp(op, "MULTI")) {
		it->tx = TX_CMD_MULTI;
	} else if (!strcmp(op, "EXEC")) {
		it->tx = TX_CMD_EXEC;
	} else if (!strcmp(op, "DISCARD")) {
		it->tx = TX_CMD_DISCARD;
	}
	list_push(&p->pending, it);
}

/* An element of a top-level aggregate reply is complete: for an EXEC's array,
 * the reply of the next queued command, which is reported now. */
static void on_element(struct redis_parser *p, const struct reader *r, uint64_t end_ns)
{
	struct item *exec = p->pending.head, *it;

	if (!exec || exec->tx != TX_CMD_EXEC || r->top_type != '*')
		return;
	it = list_pop(&p->queued);
	if (!it)
		return; /* queued before this parser saw the connection */
	it->ex.resp_start_ns = r->start_ns;
	it->ex.resp_end_ns = end_ns;
	if (r->elem_type == '-' || r->elem_type == '!') {
		set_error(&it->ex, r->elem, r->elem_len);
		exec->ex.tx_failed++;
	}
	exec->ex.tx_commands++;
	emit_item(p, it);
}

/* The reply v to a transaction command (MULTI, EXEC, DISCARD, RESET). */
static void on_tx_reply(struct redis_parser *p, struct item *it, const struct resp_value *v)
{
	bool error = v->type == '-' || v->type == '!';
	uint32_t left;

	switch (it->tx) {
	case TX_CMD_MULTI:
		if (!error) /* a new transaction: what an unseen EXEC left is stale */
			p->stats.unanswered += list_clear(&p->queued);
		return;
	case TX_CMD_EXEC:
		if (v->type == '*' && v->count >= 0) {
			it->ex.tx_outcome = DB_TX_COMMITTED;
			/* more queued than elements: not this transaction's */
			p->stats.unanswered += list_clear(&p->queued);
			return;
		}
		left = list_clear(&p->queued);
		if (v->type == '_' || v->type == '*') /* nil: a WATCHed key changed */
			it->ex.tx_outcome = DB_TX_WATCH_ABORTED;
		else if (error && (left || !strcmp(it->ex.status_code, "EXECABORT")))
			it->ex.tx_outcome = DB_TX_ABORTED; /* EXECABORT, or EXEC refused */
		else
			return; /* EXEC without MULTI */
		it->ex.tx_commands = left;
		return;
	case TX_CMD_DISCARD:
		left = list_clear(&p->queued);
		if (!error) {
			it->ex.tx_outcome = DB_TX_DISCARDED;
			it->ex.tx_commands = left;
		}
		return;
	case TX_CMD_RESET:
		list_clear(&p->queued);
		return;
	}
}

static void on_reply(struct redis_parser *p, const struct resp_value *v)
{
	struct item *it = p->pending.head;
	bool sub_word = false, msg_word = false;
	const char *t = v->text;
	size_t n = v->text_len;

	if (v->type == '>' || v->type == '*') {
		sub_word = text_is(t, n, "subscribe") || text_is(t, n, "unsubscribe") ||
		           text_is(t, n, "psubscribe") || text_is(t, n, "punsubscribe") ||
		           text_is(t, n, "ssubscribe") || text_is(t, n, "sunsubscribe");
		msg_word = text_is(t, n, "message") || text_is(t, n, "pmessage") ||
		           text_is(t, n, "smessage");
	}
	if (v->type == '>' || (v->type == '*' && p->subscribed)) {
		if (it && it->subscribe && sub_word) {
			if (!it->ex.resp_start_ns)
				it->ex.resp_start_ns = v->start_ns;
			it->ex.resp_end_ns = v->end_ns;
			if (--it->replies_left == 0)
				emit_head(p);
			return;
		}
		if (v->type == '>' || sub_word || msg_word)
			return; /* a push message, not a reply */
	}
	if (!it) {
		p->stats.orphan_responses++;
		return;
	}
	if (v->type == '+' && !it->tx && text_is(t, n, "QUEUED")) {
		/* queued by MULTI: its reply comes with EXEC */
		if (p->queued.n >= REDIS_PENDING_MAX) {
			free(list_pop(&p->queued));
			p->stats.unanswered++;
		}
		list_push(&p->queued, item_pop(p));
		return;
	}
	if (!it->ex.resp_start_ns)
		it->ex.resp_start_ns = v->start_ns;
	it->ex.resp_end_ns = v->end_ns;
	if (v->type == '-' || v->type == '!')
		set_error(&it->ex, t, n);
	if (it->tx)
		on_tx_reply(p, it, v);
	emit_head(p);
}

/* --- RESP reader -------------------------------------------------------------- */

static void value_done(struct redis_parser *p, enum stream_dir dir, uint64_t end_ns)
{
	struct reader *r = &p->dir[dir];
	struct resp_value v = {.type = r->top_type,
	                       .count = r->top_count,
	                       .text = r->text,
	                       .text_len = r->text_len,
	                       .start_ns = r->start_ns,
	                       .end_ns = end_ns};

	r->in_value = false;
	if (r->top_type == '|')
		return; /* an attribute: the value it describes follows */
	if (dir == STREAM_DIR_REQUEST) {
		if (v.type == '*')
			on_command(p, &v, v.count);
		else if (v.type == 0) {
			int64_t words = 0;
			for (size_t i = 0; i < v.text_len; i++)
				if (v.text[i] != ' ' && (i == 0 || v.text[i - 1] == ' '))
					words++;
			on_command(p, &v, words);
		} else {
			p->stats.parse_errors++;
		}
	} else {
		on_reply(p, &v);
	}
}

/* The item just read is complete: closes the aggregates it completes. */
static void item_done(struct redis_parser *p, enum stream_dir dir, uint64_t end_ns)
{
	struct reader *r = &p->dir[dir];

	r->state = R_TYPE;
	r->capturing = false;
	r->elem_capturing = false;
	while (r->depth > 0) {
		struct frame *f = &r->stack[r->depth - 1];
		if (r->depth == 1 && !f->attribute && dir == STREAM_DIR_RESPONSE)
			on_element(p, r, end_ns); /* an element of the top-level value */
		if (--f->remaining > 0)
			return;
		r->depth--;
		if (f->attribute) { /* does not count as an element of its parent */
			if (r->depth == 0)
				r->in_value = false; /* the value it describes follows */
			return;
		}
	}
	value_done(p, dir, end_ns);
}

static void capture(struct reader *r, const uint8_t *b, size_t n)
{
	if (r->capturing) {
		size_t k = n < (size_t)(TEXT_KEEP - r->text_len) ? n : TEXT_KEEP - r->text_len;
		memcpy(r->text + r->text_len, b, k);
		r->text_len += (uint16_t)k;
	}
	if (r->elem_capturing) {
		size_t k = n < (size_t)(TEXT_KEEP - r->elem_len) ? n : TEXT_KEEP - r->elem_len;
		memcpy(r->elem + r->elem_len, b, k);
		r->elem_len += (uint16_t)k;
	}
}

static bool parse_int(const char *s, size_t n, int64_t *out)
{
	bool neg = false;
	int64_t v = 0;
	size_t i = 0;

	if (n && s[0] == '-') {
		neg = true;
		i = 1;
	}
	if (i == n || n - i > 18)
		return false;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = neg ? -v : v;
	return true;
}

/* A complete line (without CRLF) for the current item. false: not RESP. */
static bool line_done(struct redis_parser *p, enum stream_dir dir, uint64_t end_ns)
{
	struct reader *r = &p->dir[dir];
	int64_t n;

	if (r->type == 0 || is_line_type(r->type)) {
		item_done(p, dir, end_ns);
		return true;
	}
	if (r->line_over || !parse_int(r->line, r->line_len, &n))
		return false;
	if (is_bulk_type(r->type)) {
		if (n < 0) { /* null bulk */
			item_done(p, dir, end_ns);
			return true;
		}
		if ((uint64_t)n > BULK_MAX)
			return false;
		r->bulk_left = (uint64_t)n + 2;
		r->state = R_BULK;
		return true;
	}
	/* aggregate */
	if (r->depth == 0 && r->top_type == r->type)
		r->top_count = n;
	if (n > COUNT_MAX)
		return false;
	if (r->type == '%' || r->type == '|')
		n *= 2;
	if (n <= 0) {
		item_done(p, dir, end_ns);
		return true;
	}
	if (r->depth >= REDIS_DEPTH_MAX)
		return false;
	r->stack[r->depth].remaining = n;
	r->stack[r->depth].attribute = r->type == '|';
	r->depth++;
	r->state = R_TYPE;
	r->capturing = false;
	return true;
}

static void reader_reset(struct reader *r)
{
	r->state = R_TYPE;
	r->depth = 0;
	r->in_value = false;
	r->capturing = false;
	r->elem_capturing = false;
}

/* Parses b[0..n). Returns false when the bytes are not RESP. */
static bool reader_feed(struct redis_parser *p, enum stream_dir dir, const struct stream_chunk *c)
{
	struct reader *r = &p->dir[dir];
	const uint8_t *b = c->data;
	size_t i = 0, n = c->len;

	while (i < n) {
		switch (r->state) {
		case R_TYPE: {
			uint8_t t = b[i];
			if (!r->in_value) {
				if (t == '\r' || t == '\n') { /* blank lines between commands */
					i++;
					continue;
				}
				r->in_value = true;
				r->start_ns = c->ts_first_ns;
				r->text_len = 0;
				r->top_count = 0;
				r->capture_next = true;
				r->top_type = is_resp_type(t) ? t : 0;
				if (dir == STREAM_DIR_RESPONSE && !r->top_type)
					return false;
				if (dir == STREAM_DIR_REQUEST && r->top_type && t != '*')
					r->top_type = 0; /* inline: redis only takes '*' */
			}
			if (r->depth == 0 && r->top_type == 0) {
				r->type = 0; /* inline command: the whole line */
				r->capturing = true;
			} else {
				if (!is_resp_type(t))
					return false;
				r->type = t;
				i++;
				bool aggregate = !is_line_type(t) && !is_bulk_type(t);
				r->capturing = (r->depth == 0 && !aggregate) ||
				               (r->depth == 1 && r->capture_next);
				if (r->depth == 1) {
					r->capture_next = false;
					r->elem_type = t;
					r->elem_len = 0;
					r->elem_capturing = t == '-' || t == '!';
				}
			}
			r->state = R_LINE;
			r->line_len = 0;
			r->line_over = false;
			r->cr = false;
			break;
		}
		case R_LINE: {
			const uint8_t *nl = memchr(b + i, '\n', n - i);
			size_t end = nl ? (size_t)(nl - b) : n;
			size_t take = end - i;
			bool content = r->type == 0 || is_line_type(r->type);
			if (content)
				capture(r, b + i, take);
			size_t room = LINE_KEEP - r->line_len;
			if (take > room) {
				r->line_over = true;
				take = room;
			}
			memcpy(r->line + r->line_len, b + i, take);
			r->line_len += (uint16_t)take;
			if (end > i)
				r->cr = b[end - 1] == '\r';
			i = end;
			if (!nl)
				break;
			i++;
			if (!r->cr && r->type != 0)
				return false; /* RESP lines end in CRLF */
			/* drop the CR (also from the captured text) */
			if (r->cr && !r->line_over && r->line_len)
				r->line_len--;
			if (r->cr && content && r->capturing && r->text_len &&
			    r->text[r->text_len - 1] == '\r')
				r->text_len--;
			if (!line_done(p, dir, c->ts_last_ns))
				return false;
			break;
		}
		case R_BULK: {
			uint64_t take = r->bulk_left;
			if (take > n - i)
				take = n - i;
			if (r->bulk_left > 2) {
				uint64_t data = r->bulk_left - 2 < take ? r->bulk_left - 2 : take;
				capture(r, b + i, (size_t)data);
			}
			r->bulk_left -= take;
			i += (size_t)take;
			if (r->bulk_left == 0)
				item_done(p, dir, c->ts_last_ns);
			break;
		}
		}
	}
	return true;
}

/* --- feeding ---------------------------------------------------------------- */

static bool plausible_start(enum stream_dir dir, const uint8_t *b, size_t n)
{
	if (!n)
		return false;
	if (dir == STREAM_DIR_RESPONSE)
		return is_resp_type(b[0]);
	return b[0] == '*' || ((b[0] | 0x20) >= 'a' && (b[0] | 0x20) <= 'z');
}

static void lose_framing(struct redis_parser *p, enum stream_dir dir)
{
	struct reader *r = &p->dir[dir];

	reader_reset(r);
	r->lost = true;
	p->stats.parse_errors++;
	if (dir == STREAM_DIR_RESPONSE) {
		p->lost_seq = p->req_seq;
		if (p->pending.head)
			p->pending.head->ex.truncated = true;
		/* an EXEC reply cut short: the rest of its elements are lost */
		if (p->pending.head && p->pending.head->tx == TX_CMD_EXEC)
			p->stats.unanswered += list_clear(&p->queued);
	}
}

static bool response_resync(struct redis_parser *p, const struct stream_chunk *c)
{
	if (p->req_seq <= p->lost_seq || !plausible_start(STREAM_DIR_RESPONSE, c->data, c->len)) {
		if (p->pending.head && p->pending.head->seq < p->lost_seq)
			p->pending.head->ex.resp_end_ns = c->ts_last_ns;
		return false;
	}
	if (p->pending.head && p->pending.head->seq < p->lost_seq && p->pending.head->ex.truncated)
		emit_head(p);
	while (p->pending.head && p->pending.head->seq < p->lost_seq) {
		free(item_pop(p));
		p->stats.unanswered++;
	}
	return true;
}

int redis_parser_feed(struct redis_parser *p, enum stream_dir dir, const struct stream_chunk *c)
{
	struct reader *r;

	if (!p || !c || (dir != STREAM_DIR_REQUEST && dir != STREAM_DIR_RESPONSE) ||
	    (c->len && !c->data))
		return -EINVAL;
	r = &p->dir[dir];
	if (r->lost) {
		bool ok = dir == STREAM_DIR_REQUEST ? plausible_start(dir, c->data, c->len)
		                                    : response_resync(p, c);
		if (!ok)
			return 0;
		r->lost = false;
	}
	if (reader_feed(p, dir, c)) {
		if (!c->missing)
			return 0;
		if (r->state == R_BULK && c->missing <= r->bulk_left) {
			r->bulk_left -= c->missing;
			if (r->bulk_left == 0)
				item_done(p, dir, c->ts_last_ns);
			return 0;
		}
	}
	/* not RESP, or uncaptured bytes where the framing needs them */
	if (dir == STREAM_DIR_RESPONSE && p->pending.head) {
		if (!p->pending.head->ex.resp_start_ns)
			p->pending.head->ex.resp_start_ns =
			    r->in_value ? r->start_ns : c->ts_first_ns;
		p->pending.head->ex.resp_end_ns = c->ts_last_ns;
	}
	lose_framing(p, dir);
	return -EBADMSG;
}

struct redis_parser *redis_parser__new(db_exchange_fn fn, void *ctx)
{
	struct redis_parser *p;

	if (!fn)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->fn = fn;
	p->ctx = ctx;
	return p;
}

void redis_parser__free(struct redis_parser *p)
{
	if (!p)
		return;
	drop_all(p);
	free(p);
}

void redis_parser_close(struct redis_parser *p, uint64_t ts_ns)
{
	if (!p)
		return;
	if (p->pending.head &&
	    (p->pending.head->ex.truncated || p->dir[STREAM_DIR_RESPONSE].in_value)) {
		if (!p->pending.head->ex.resp_start_ns)
			p->pending.head->ex.resp_start_ns = p->dir[STREAM_DIR_RESPONSE].start_ns;
		p->pending.head->ex.truncated = true;
		if (!p->pending.head->ex.resp_end_ns)
			p->pending.head->ex.resp_end_ns = ts_ns;
		emit_head(p);
	}
	drop_all(p);
}

void redis_parser_stats(const struct redis_parser *p, struct db_parser_stats *out)
{
	if (p && out)
		*out = p->stats;
}

int redis_detect(const uint8_t *data, size_t len, enum stream_dir dir)
{
	static const char *const inline_words[] = {"PING", "HELLO", "AUTH", "INFO",   "SELECT",
	                                           "QUIT", "GET",   "SET",  "CLIENT", NULL};
	size_t i = 1;

	if (!data || !len)
		return 0;
	if (dir == STREAM_DIR_REQUEST) {
		if (data[0] == '*') {
			while (i < len && data[i] >= '0' && data[i] <= '9' && i < 12)
				i++;
			if (i == 1)
				return 0;
			if (i < len && data[i] != '\r')
				return 0;
			return i + 2 >= len || (data[i + 1] == '\n' && data[i + 2] == '$');
		}
		for (const char *const *w = inline_words; *w; w++) {
			size_t n = strlen(*w);
			if (len > n && strncasecmp((const char *)data, *w, n) == 0 &&
			    (data[n] == ' ' || data[n] == '\r' || data[n] == '\n'))
				return 1;
		}
		return 0;
	}
	if (!is_resp_type(data[0]))
		return 0;
	/* the first line: printable up to CRLF */
	for (; i < len && i < 512; i++) {
		if (data[i] == '\r')
			return i + 1 >= len || data[i + 1] == '\n';
		if (data[i] < 0x20 && data[i] != '\t')
			return 0;
	}
	return i == len;
}
