/* pgsql.c — incremental PostgreSQL protocol v3 parser for one connection.
 *
 * Each direction is cut into messages (type byte + 32-bit length, or the
 * untyped startup packets: length + code) by a small framer that keeps a
 * bounded prefix of the messages it needs (query text, names, error fields,
 * command tags) and skips the rest, so memory does not depend on message size.
 *
 * Pairing. Every 'Q' and every Execute queues an item. Items carry the number
 * of the batch they belong to (a batch ends with Sync, Q or FunctionCall, each
 * answered by one ReadyForQuery). Execute items complete at their
 * CommandComplete / EmptyQueryResponse / PortalSuspended / ErrorResponse; Q
 * items collect everything up to ReadyForQuery. A ReadyForQuery ends its
 * batch: Execute items still queued in it were skipped by the server after an
 * error and are dropped (counted as unanswered).
 *
 * Uncaptured bytes inside a message body are skipped; anywhere else they lose
 * the framing. A request stream that lost it resynchronises at the first chunk
 * that starts with a plausible frontend message. A response stream that lost
 * it skips chunks until a request queued after the loss is waiting and a chunk
 * starts with a plausible backend message; the item whose response was cut is
 * then reported (truncated, ending at the last byte seen), the others queued
 * before the loss are dropped.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/pgsql.h"
#include "parsers/sql_obfuscate.h"
#include "util/text.h"

#define REQ_KEEP        4096 /* bytes kept of a request message (query text) */
#define RESP_KEEP       1024 /* bytes kept of a response message (error fields) */
#define NAME_MAX_LEN    64   /* statement and portal names (NAMEDATALEN) */
#define PORTALS_MAX     8
#define STARTUP_LEN_MAX 10000
#define MSG_LEN_MAX     (1u << 30)

#define CODE_SSL      80877103u
#define CODE_GSSENC   80877104u
#define CODE_CANCEL   80877102u
#define PROTO_MAJOR_3 3u

enum item_kind {
	ITEM_QUERY = 0, /* simple query: completes at ReadyForQuery */
	ITEM_EXECUTE,   /* extended query: completes at its CommandComplete */
};

struct item {
	struct item *next;
	uint64_t seq;   /* number of the request, in order */
	uint64_t batch; /* Sync/Q batch it belongs to */
	uint8_t kind;   /* enum item_kind */
	uint64_t data_rows;
	struct db_exchange ex;
};

struct stmt {
	char name[NAME_MAX_LEN];
	uint64_t age; /* use counter: the oldest goes first */
	char op[DB_OPERATION_MAX];
	char coll[DB_COLLECTION_MAX];
	char text[DB_QUERY_MAX];
};

struct portal {
	bool used;
	char name[NAME_MAX_LEN];
	char stmt[NAME_MAX_LEN];
};

/* Message framer state for one direction. */
struct framer {
	bool in_msg;
	bool lost;    /* framing lost: waiting for a chunk to resync at */
	bool untyped; /* the current message is a startup packet */
	uint8_t hdr[8];
	uint8_t hdr_len;
	uint8_t hdr_need;
	uint8_t type; /* message type byte; 0 for a startup packet */
	uint32_t body_len;
	uint32_t body_got;
	uint32_t keep_len; /* bytes of the body kept */
	uint32_t keep_cap;
	uint64_t start_ns;
	uint8_t *keep; /* REQ_KEEP or RESP_KEEP bytes, in the parser */
};

struct pgsql_parser {
	db_exchange_fn fn;
	void *ctx;
	struct framer dir[2];
	bool tls;             /* encrypted from here on: ignore everything */
	bool expect_startup;  /* the next request may be an untyped startup packet */
	bool startup_ready;   /* the ReadyForQuery ending the startup is still due */
	uint32_t ssl_answers; /* one-byte answers to SSL/GSS requests expected */
	uint64_t req_seq;     /* requests queued so far */
	uint64_t req_batch;   /* batches ended by the client so far */
	uint64_t resp_batch;  /* batches ended by the server so far */
	uint64_t lost_seq;    /* response lost: req_seq at the loss */
	uint64_t stmt_clock;
	uint64_t batch_start_ns; /* first message of the Parse/Bind/.. before an Execute */
	struct item *head, *tail;
	uint32_t n_items;
	struct db_parser_stats stats;
	char namespace_[DB_NAMESPACE_MAX];
	struct stmt *unnamed;
	struct stmt *stmts[PGSQL_STATEMENTS_MAX];
	struct portal portals[PORTALS_MAX];
	uint8_t req_keep[REQ_KEEP];
	uint8_t resp_keep[RESP_KEEP];
};

static uint32_t be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The NUL-terminated string at body[*off] (bounded by len); advances *off
 * past it. Returns its length, or -1 when it is not terminated in the data. */
static long cstring_at(const uint8_t *body, size_t len, size_t *off, const char **s)
{
	const uint8_t *z;

	if (*off >= len)
		return -1;
	z = memchr(body + *off, 0, len - *off);
	if (!z)
		return -1;
	*s = (const char *)body + *off;
	long n = z - (body + *off);
	*off += (size_t)n + 1;
	return n;
}

static bool is_frontend_type(uint8_t t)
{
	return t && strchr("QPBEDCSHXdcfpF", t) != NULL;
}

static bool is_backend_type(uint8_t t)
{
	return t && strchr("RKSZTDCEINn123stGHWdcAVv", t) != NULL;
}

/* --- items ---------------------------------------------------------------- */

static void emit(struct pgsql_parser *p, struct item *it)
{
	if (!it->ex.rows && it->data_rows)
		it->ex.rows = it->data_rows;
	p->stats.exchanges++;
	p->fn(p->ctx, &it->ex);
}

static struct item *item_pop(struct pgsql_parser *p)
{
	struct item *it = p->head;

	if (!it)
		return NULL;
	p->head = it->next;
	if (!p->head)
		p->tail = NULL;
	p->n_items--;
	return it;
}

static struct item *item_push(struct pgsql_parser *p, uint8_t kind)
{
	struct item *it;

	if (p->n_items >= PGSQL_PENDING_MAX) {
		free(item_pop(p));
		p->stats.unanswered++;
	}
	it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->kind = kind;
	it->seq = p->req_seq++;
	it->batch = p->req_batch;
	it->ex.system = "postgresql";
	text_copy(it->ex.namespace_, sizeof(it->ex.namespace_), p->namespace_,
	          strlen(p->namespace_));
	if (p->tail)
		p->tail->next = it;
	else
		p->head = it;
	p->tail = it;
	p->n_items++;
	return it;
}

static void drop_all(struct pgsql_parser *p)
{
	struct item *it;

	while ((it = item_pop(p))) {
		p->stats.unanswered++;
		free(it);
	}
}

/* --- statements and portals ---------------------------------------------- */

static struct stmt *stmt_find(struct pgsql_parser *p, const char *name)
{
	if (!name[0])
		return p->unnamed;
	for (int i = 0; i < PGSQL_STATEMENTS_MAX; i++)
		if (p->stmts[i] && !strcmp(p->stmts[i]->name, name))
			return p->stmts[i];
	return NULL;
}

/* A slot for statement `name`: its own, a free one, or the least recently
 * used. NULL on ENOMEM. */
static struct stmt *stmt_slot(struct pgsql_parser *p, const char *name)
{
	struct stmt **slot = NULL;

	if (!name[0]) {
		slot = &p->unnamed;
	} else {
		for (int i = 0; i < PGSQL_STATEMENTS_MAX && !slot; i++)
			if (p->stmts[i] && !strcmp(p->stmts[i]->name, name))
				slot = &p->stmts[i];
		for (int i = 0; i < PGSQL_STATEMENTS_MAX && !slot; i++)
			if (!p->stmts[i])
				slot = &p->stmts[i];
		if (!slot) {
			slot = &p->stmts[0];
			for (int i = 1; i < PGSQL_STATEMENTS_MAX; i++)
				if (p->stmts[i]->age < (*slot)->age)
					slot = &p->stmts[i];
		}
	}
	if (!*slot)
		*slot = calloc(1, sizeof(**slot));
	if (!*slot)
		return NULL;
	text_copy((*slot)->name, sizeof((*slot)->name), name, strlen(name));
	(*slot)->age = ++p->stmt_clock;
	return *slot;
}

static void stmt_close(struct pgsql_parser *p, const char *name)
{
	struct stmt **slot = NULL;

	if (!name[0])
		slot = &p->unnamed;
	for (int i = 0; i < PGSQL_STATEMENTS_MAX && !slot; i++)
		if (p->stmts[i] && !strcmp(p->stmts[i]->name, name))
			slot = &p->stmts[i];
	if (slot) {
		free(*slot);
		*slot = NULL;
	}
}

static void set_statement(struct db_exchange *ex, const char *sql, size_t len)
{
	char buf[REQ_KEEP + 1];

	text_copy(buf, sizeof(buf), sql, len);
	sql_obfuscate(buf, strlen(buf), ex->query_text, sizeof(ex->query_text));
	sql_operation_and_collection(buf, ex->operation, sizeof(ex->operation), ex->collection,
	                             sizeof(ex->collection));
}

static void portal_bind(struct pgsql_parser *p, const char *portal, const char *stmt)
{
	struct portal *slot = NULL;

	for (int i = 0; i < PORTALS_MAX && !slot; i++)
		if (p->portals[i].used && !strcmp(p->portals[i].name, portal))
			slot = &p->portals[i];
	for (int i = 0; i < PORTALS_MAX && !slot; i++)
		if (!p->portals[i].used)
			slot = &p->portals[i];
	if (!slot)
		slot = &p->portals[0]; /* full: reuse the first */
	slot->used = true;
	text_copy(slot->name, sizeof(slot->name), portal, strlen(portal));
	text_copy(slot->stmt, sizeof(slot->stmt), stmt, strlen(stmt));
}

static const char *portal_stmt(struct pgsql_parser *p, const char *portal)
{
	for (int i = 0; i < PORTALS_MAX; i++)
		if (p->portals[i].used && !strcmp(p->portals[i].name, portal))
			return p->portals[i].stmt;
	return NULL;
}

/* --- request messages ------------------------------------------------------ */

static void on_startup(struct pgsql_parser *p, const struct framer *f)
{
	uint32_t code = be32(f->hdr + 4);
	const uint8_t *b = f->keep;
	size_t off = 0, len = f->keep_len;
	char user[DB_NAMESPACE_MAX] = "", db[DB_NAMESPACE_MAX] = "";

	if (code == CODE_SSL || code == CODE_GSSENC) {
		p->ssl_answers++;
		return; /* a startup packet follows if the server says 'N' */
	}
	p->expect_startup = false;
	if (code >> 16 != PROTO_MAJOR_3)
		return;
	p->startup_ready = true;
	for (;;) {
		const char *key, *val;
		long kn = cstring_at(b, len, &off, &key);
		if (kn <= 0)
			break;
		long vn = cstring_at(b, len, &off, &val);
		if (vn < 0)
			break;
		if (!strcmp(key, "user"))
			text_copy(user, sizeof(user), val, (size_t)vn);
		else if (!strcmp(key, "database"))
			text_copy(db, sizeof(db), val, (size_t)vn);
	}
	/* the database defaults to the user name */
	const char *ns = db[0] ? db : user;
	text_copy(p->namespace_, sizeof(p->namespace_), ns, strlen(ns));
}

static void on_request(struct pgsql_parser *p, const struct framer *f, uint64_t end_ns)
{
	const uint8_t *b = f->keep;
	size_t off = 0, len = f->keep_len;
	const char *s1 = "", *s2 = "";
	long n1, n2;
	struct item *it;

	if (!p->batch_start_ns)
		p->batch_start_ns = f->start_ns;
	switch (f->type) {
	case 'Q':
		it = item_push(p, ITEM_QUERY);
		p->req_batch++;
		if (it) {
			n1 = cstring_at(b, len, &off, &s1);
			set_statement(&it->ex, (const char *)b, n1 >= 0 ? (size_t)n1 : len);
			it->ex.req_start_ns = f->start_ns;
			it->ex.req_end_ns = end_ns;
		}
		p->batch_start_ns = 0;
		break;
	case 'P': /* Parse: name, query */
		n1 = cstring_at(b, len, &off, &s1);
		if (n1 < 0 || n1 >= NAME_MAX_LEN)
			break;
		n2 = cstring_at(b, len, &off, &s2);
		struct stmt *st = stmt_slot(p, s1);
		if (!st)
			break;
		struct db_exchange tmp;
		set_statement(&tmp, (const char *)b + n1 + 1,
		              n2 >= 0 ? (size_t)n2 : len - (size_t)n1 - 1);
		memcpy(st->text, tmp.query_text, sizeof(st->text));
		memcpy(st->op, tmp.operation, sizeof(st->op));
		memcpy(st->coll, tmp.collection, sizeof(st->coll));
		break;
	case 'B': /* Bind: portal, statement, ... */
		n1 = cstring_at(b, len, &off, &s1);
		n2 = cstring_at(b, len, &off, &s2);
		if (n1 >= 0 && n2 >= 0 && n1 < NAME_MAX_LEN && n2 < NAME_MAX_LEN)
			portal_bind(p, s1, s2);
		break;
	case 'E': { /* Execute: portal, max rows */
		const char *sname;
		struct stmt *st = NULL;
		n1 = cstring_at(b, len, &off, &s1);
		if (n1 >= 0 && n1 < NAME_MAX_LEN && (sname = portal_stmt(p, s1)))
			st = stmt_find(p, sname);
		it = item_push(p, ITEM_EXECUTE);
		if (it) {
			if (st) {
				memcpy(it->ex.query_text, st->text, sizeof(st->text));
				memcpy(it->ex.operation, st->op, sizeof(st->op));
				memcpy(it->ex.collection, st->coll, sizeof(st->coll));
			}
			it->ex.req_start_ns = p->batch_start_ns;
			it->ex.req_end_ns = end_ns;
		}
		p->batch_start_ns = 0;
		break;
	}
	case 'S': /* Sync */
	case 'F': /* FunctionCall: answered up to ReadyForQuery */
		p->req_batch++;
		p->batch_start_ns = 0;
		break;
	case 'C': /* Close: 'S' statement or 'P' portal, name */
		if (len >= 2 && b[0] == 'S') {
			off = 1;
			n1 = cstring_at(b, len, &off, &s1);
			if (n1 >= 0)
				stmt_close(p, s1);
		}
		break;
	case 'H': /* Flush */
	case 'X': /* Terminate */
		p->batch_start_ns = 0;
		break;
	default: /* Describe, CopyData/Done/Fail, password messages */
		break;
	}
}

/* --- response messages ----------------------------------------------------- */

static uint64_t tag_rows(const uint8_t *b, size_t len)
{
	uint64_t rows = 0;
	size_t i = len, end;

	while (i && b[i - 1] == 0)
		i--;
	end = i;
	while (i && b[i - 1] >= '0' && b[i - 1] <= '9')
		i--;
	if (i == end || (i && b[i - 1] != ' '))
		return 0;
	for (; i < end && rows < UINT64_MAX / 10 - 10; i++)
		rows = rows * 10 + (b[i] - '0');
	return rows;
}

static void error_fields(struct db_exchange *ex, const uint8_t *b, size_t len)
{
	size_t off = 0;

	if (ex->error)
		return; /* the first error is the one reported */
	ex->error = true;
	while (off < len && b[off]) {
		uint8_t field = b[off++];
		const char *s;
		long n = cstring_at(b, len, &off, &s);
		if (n < 0) {
			/* cut by the capture: take what is there */
			n = (long)(len - off);
			s = (const char *)b + off;
			off = len;
		}
		if (field == 'C')
			text_copy(ex->status_code, sizeof(ex->status_code), s, (size_t)n);
		else if (field == 'M')
			text_copy(ex->error_message, sizeof(ex->error_message), s, (size_t)n);
	}
}

static void complete_head(struct pgsql_parser *p, uint64_t end_ns)
{
	struct item *it = item_pop(p);

	it->ex.resp_end_ns = end_ns;
	emit(p, it);
	free(it);
}

static void on_ready(struct pgsql_parser *p, uint64_t end_ns)
{
	if (p->startup_ready) {
		p->startup_ready = false;
		return;
	}
	if (p->resp_batch >= p->req_batch)
		return; /* after startup, or for a batch sent before we saw it */
	while (p->head && p->head->batch <= p->resp_batch) {
		if (p->head->kind == ITEM_QUERY) {
			complete_head(p, end_ns);
		} else {
			/* skipped by the server after an error in its batch */
			free(item_pop(p));
			p->stats.unanswered++;
		}
	}
	p->resp_batch++;
}

static void on_response(struct pgsql_parser *p, const struct framer *f, uint64_t end_ns)
{
	struct item *it = p->head;
	const uint8_t *b = f->keep;
	size_t len = f->keep_len;

	if (it && f->type != 'Z' && !it->ex.resp_start_ns && strchr("CIsEDTn12t", f->type))
		it->ex.resp_start_ns = f->start_ns;
	switch (f->type) {
	case 'C': /* CommandComplete */
		if (!it) {
			p->stats.orphan_responses++;
			break;
		}
		it->ex.rows += tag_rows(b, len);
		it->data_rows = 0;
		if (it->kind == ITEM_EXECUTE)
			complete_head(p, end_ns);
		break;
	case 'I': /* EmptyQueryResponse */
	case 's': /* PortalSuspended */
		if (!it) {
			p->stats.orphan_responses++;
			break;
		}
		if (it->kind == ITEM_EXECUTE)
			complete_head(p, end_ns);
		break;
	case 'D':
		if (it)
			it->data_rows++;
		break;
	case 'E':
		if (!it || p->startup_ready) { /* no statement, or a failed login */
			p->stats.orphan_responses++;
			break;
		}
		error_fields(&it->ex, b, len);
		if (it->kind == ITEM_EXECUTE)
			complete_head(p, end_ns);
		break;
	case 'Z':
		on_ready(p, end_ns);
		break;
	default: /* auth, parameters, row descriptions, notices, COPY data */
		break;
	}
}

/* --- framing --------------------------------------------------------------- */

static uint32_t keep_cap_for(enum stream_dir dir, uint8_t type)
{
	if (dir == STREAM_DIR_REQUEST)
		return strchr("QPBECF", type) || type == 0 ? REQ_KEEP : 0;
	return (type == 'C' || type == 'E') ? RESP_KEEP : 0;
}

/* Whether a chunk starting with b[0..len) can start a message there. */
static bool plausible_start(enum stream_dir dir, const uint8_t *b, size_t len)
{
	if (!len)
		return false;
	if (!(dir == STREAM_DIR_REQUEST ? is_frontend_type(b[0]) : is_backend_type(b[0])))
		return false;
	if (len >= 5) {
		uint32_t n = be32(b + 1);
		return n >= 4 && n < MSG_LEN_MAX;
	}
	return true;
}

static void lose_framing(struct pgsql_parser *p, enum stream_dir dir)
{
	struct framer *f = &p->dir[dir];

	f->lost = true;
	f->in_msg = false;
	p->stats.parse_errors++;
	if (dir == STREAM_DIR_RESPONSE) {
		p->lost_seq = p->req_seq;
		if (p->head)
			p->head->ex.truncated = true;
	}
}

/* A response chunk while the framing is lost: true when parsing resumes at it. */
static bool response_resync(struct pgsql_parser *p, const struct stream_chunk *c)
{
	struct item *it;

	if (p->req_seq <= p->lost_seq || !plausible_start(STREAM_DIR_RESPONSE, c->data, c->len)) {
		if (p->head && p->head->seq < p->lost_seq)
			p->head->ex.resp_end_ns = c->ts_last_ns;
		return false;
	}
	it = p->head;
	if (it && it->seq < p->lost_seq && it->ex.truncated) {
		item_pop(p);
		emit(p, it);
		free(it);
	}
	while (p->head && p->head->seq < p->lost_seq) {
		free(item_pop(p));
		p->stats.unanswered++;
	}
	p->resp_batch = p->head ? p->head->batch : p->req_batch;
	return true;
}

static void start_message(struct pgsql_parser *p, enum stream_dir dir, uint8_t first, uint64_t ts)
{
	struct framer *f = &p->dir[dir];

	f->in_msg = true;
	f->hdr_len = 0;
	f->body_got = 0;
	f->keep_len = 0;
	f->start_ns = ts;
	f->untyped = dir == STREAM_DIR_REQUEST && p->expect_startup && first == 0;
	if (dir == STREAM_DIR_REQUEST && first != 0)
		p->expect_startup = false;
	f->hdr_need = f->untyped ? 8 : 5;
	if (dir == STREAM_DIR_RESPONSE && p->ssl_answers &&
	    (first == 'S' || first == 'N' || first == 'G'))
		f->hdr_need = 1;
}

/* The header is complete: checks it. */
static bool parse_header(struct pgsql_parser *p, enum stream_dir dir)
{
	struct framer *f = &p->dir[dir];
	uint32_t n;

	if (f->hdr_need == 1) { /* the answer to SSLRequest / GSSENCRequest */
		f->type = 0;
		f->body_len = 0;
		return true;
	}
	if (f->untyped) {
		n = be32(f->hdr);
		if (n < 8 || n > STARTUP_LEN_MAX)
			return false;
		f->type = 0;
		f->body_len = n - 8;
	} else {
		f->type = f->hdr[0];
		n = be32(f->hdr + 1);
		if (n < 4 || n >= MSG_LEN_MAX)
			return false;
		if (!(dir == STREAM_DIR_REQUEST ? is_frontend_type(f->type)
		                                : is_backend_type(f->type)))
			return false;
		f->body_len = n - 4;
	}
	f->keep_cap = keep_cap_for(dir, f->type);
	return true;
}

static void finish_message(struct pgsql_parser *p, enum stream_dir dir, uint64_t end_ns)
{
	struct framer *f = &p->dir[dir];

	f->in_msg = false;
	if (dir == STREAM_DIR_REQUEST) {
		if (f->untyped)
			on_startup(p, f);
		else
			on_request(p, f, end_ns);
	} else if (f->hdr_need == 1) {
		p->ssl_answers--;
		if (f->hdr[0] != 'N')
			p->tls = true;
	} else {
		on_response(p, f, end_ns);
	}
}

int pgsql_parser_feed(struct pgsql_parser *p, enum stream_dir dir, const struct stream_chunk *c)
{
	struct framer *f;
	size_t pos = 0;

	if (!p || !c || (dir != STREAM_DIR_REQUEST && dir != STREAM_DIR_RESPONSE) ||
	    (c->len && !c->data))
		return -EINVAL;
	if (p->tls)
		return 0;
	f = &p->dir[dir];
	if (f->lost) {
		bool ok = dir == STREAM_DIR_REQUEST ? plausible_start(dir, c->data, c->len)
		                                    : response_resync(p, c);
		if (!ok)
			return 0;
		f->lost = false;
	}
	while (pos < c->len && !p->tls) {
		if (!f->in_msg)
			start_message(p, dir, c->data[pos], c->ts_first_ns);
		if (f->hdr_len < f->hdr_need) {
			size_t take = f->hdr_need - f->hdr_len;
			if (take > c->len - pos)
				take = c->len - pos;
			memcpy(f->hdr + f->hdr_len, c->data + pos, take);
			f->hdr_len += (uint8_t)take;
			pos += take;
			if (f->hdr_len < f->hdr_need)
				break;
			if (!parse_header(p, dir)) {
				lose_framing(p, dir);
				return -EBADMSG;
			}
		}
		size_t take = f->body_len - f->body_got;
		if (take > c->len - pos)
			take = c->len - pos;
		if (f->keep_len < f->keep_cap) {
			size_t k = f->keep_cap - f->keep_len;
			if (k > take)
				k = take;
			memcpy(f->keep + f->keep_len, c->data + pos, k);
			f->keep_len += (uint32_t)k;
		}
		f->body_got += (uint32_t)take;
		pos += take;
		if (f->body_got == f->body_len)
			finish_message(p, dir, c->ts_last_ns);
	}
	if (c->missing && !p->tls) {
		if (f->in_msg && f->hdr_len == f->hdr_need &&
		    c->missing <= (size_t)(f->body_len - f->body_got)) {
			f->body_got += (uint32_t)c->missing;
			if (f->body_got == f->body_len)
				finish_message(p, dir, c->ts_last_ns);
		} else {
			lose_framing(p, dir);
			return -EBADMSG;
		}
	}
	return 0;
}

/* --- lifecycle ------------------------------------------------------------- */

struct pgsql_parser *pgsql_parser__new(db_exchange_fn fn, void *ctx)
{
	struct pgsql_parser *p;

	if (!fn)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->fn = fn;
	p->ctx = ctx;
	p->expect_startup = true;
	p->dir[STREAM_DIR_REQUEST].keep = p->req_keep;
	p->dir[STREAM_DIR_RESPONSE].keep = p->resp_keep;
	return p;
}

void pgsql_parser__free(struct pgsql_parser *p)
{
	if (!p)
		return;
	drop_all(p);
	free(p->unnamed);
	for (int i = 0; i < PGSQL_STATEMENTS_MAX; i++)
		free(p->stmts[i]);
	free(p);
}

void pgsql_parser_close(struct pgsql_parser *p, uint64_t ts_ns)
{
	struct item *it;

	if (!p)
		return;
	it = p->head;
	if (it && (it->ex.resp_start_ns || it->ex.truncated)) {
		/* its response had started: report it cut short */
		item_pop(p);
		it->ex.truncated = true;
		if (!it->ex.resp_end_ns)
			it->ex.resp_end_ns = ts_ns;
		emit(p, it);
		free(it);
	}
	drop_all(p);
}

void pgsql_parser_stats(const struct pgsql_parser *p, struct db_parser_stats *out)
{
	if (p && out)
		*out = p->stats;
}

int pgsql_detect(const uint8_t *data, size_t len, enum stream_dir dir)
{
	if (!data || len < 1)
		return 0;
	if (dir == STREAM_DIR_REQUEST) {
		if (len >= 8 && data[0] == 0) {
			uint32_t n = be32(data), code = be32(data + 4);
			if (n < 8 || n > STARTUP_LEN_MAX)
				return 0;
			if (code == CODE_SSL || code == CODE_GSSENC)
				return n == 8;
			if (code == CODE_CANCEL)
				return n == 16;
			return code >> 16 == PROTO_MAJOR_3 && (code & 0xffff) <= 2;
		}
		if (len >= 5 && (data[0] == 'Q' || data[0] == 'P')) {
			uint32_t n = be32(data + 1);
			if (n < 5 || n >= MSG_LEN_MAX)
				return 0;
			/* the text must start printable */
			return len == 5 || data[5] >= 0x20 || data[5] == '\t' || data[5] == '\n' ||
			       (data[0] == 'P' && data[5] == 0);
		}
		return 0;
	}
	if (len == 1)
		return data[0] == 'N' || data[0] == 'S';
	if (len >= 5 && (data[0] == 'R' || data[0] == 'E')) {
		uint32_t n = be32(data + 1);
		if (data[0] == 'R')
			return n >= 8 && n < 4096 && (len < 9 || be32(data + 5) <= 12);
		return n >= 5 && n < 65536 && (len < 6 || data[5] == 'S' || data[5] == 'V');
	}
	return 0;
}
