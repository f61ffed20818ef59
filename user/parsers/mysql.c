/* mysql.c — incremental MySQL/MariaDB protocol parser for one connection.
 *
 * Each direction is cut into packets (3-byte length, sequence id); packets of
 * 0xffffff bytes continue in the next one and form one message. A bounded
 * prefix of each message is kept (query text, handshake fields, error
 * fields); the rest is skipped.
 *
 * Phases: the server's handshake (protocol 10) starts authentication; the
 * client's handshake response gives its capabilities and database; the
 * first OK from the server ends authentication (auth switch and more-data
 * packets in between are skipped). A stream seen from the middle (no
 * handshake) starts in the command phase at the first request.
 *
 * Responses are matched to the queued commands in order. A result set is a
 * column count, column definitions, an optional EOF, rows, and a terminating
 * EOF (5 bytes) or OK with the 0xfe header (CLIENT_DEPRECATE_EOF); whether the
 * EOF after the definitions is there is decided by the packet itself (a 0xfe
 * packet shorter than 9 bytes cannot be a row), so the capabilities need not
 * be known. SERVER_MORE_RESULTS_EXISTS in an OK/EOF keeps the command open.
 *
 * Uncaptured bytes inside a packet body are skipped; anywhere else they lose
 * the framing, recovered as in pgsql.c (a response chunk must start with a
 * packet of sequence id 1, the first of any response).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parsers/mysql.h"
#include "parsers/sql_obfuscate.h"
#include "util/text.h"

#define REQ_KEEP  4096
#define RESP_KEEP 512
#define PKT_MAX   0xffffffu

#define CAP_CONNECT_WITH_DB    0x00000008u
#define CAP_PROTOCOL_41        0x00000200u
#define CAP_SSL                0x00000800u
#define CAP_SECURE_CONN        0x00008000u
#define CAP_PLUGIN_AUTH_LENENC 0x00200000u

#define STATUS_MORE_RESULTS 0x0008u

enum phase {
	PH_START = 0, /* nothing seen yet */
	PH_AUTH,      /* handshake seen, authentication going on */
	PH_CMD,       /* commands */
};

enum cmd_kind {
	K_QUERY = 0, /* COM_QUERY, COM_STMT_EXECUTE: reported */
	K_PREPARE,   /* reported only when it fails */
	K_PING,      /* reported */
	K_INIT_DB,   /* sets the namespace on OK */
	K_ONE,       /* any one packet answers it */
	K_FIELD_LIST /* column definitions up to EOF */
};

enum resp_state {
	RS_FIRST = 0,
	RS_COLS,     /* column definitions of a result set */
	RS_COLS_EOF, /* an EOF may follow them */
	RS_ROWS,
	RS_PARAMS,     /* prepare: parameter definitions */
	RS_PARAMS_EOF, /* prepare: an EOF may follow them */
	RS_PCOLS,      /* prepare: column definitions */
	RS_PCOLS_EOF,  /* prepare: an EOF may follow them */
};

struct item {
	struct item *next;
	uint64_t seq;
	uint8_t kind;  /* enum cmd_kind */
	uint8_t state; /* enum resp_state */
	uint64_t left; /* definitions left */
	uint64_t pcols;
	char new_ns[DB_NAMESPACE_MAX]; /* INIT_DB / USE: the namespace on success */
	struct db_exchange ex;
};

struct stmt {
	uint32_t id;
	uint64_t age;
	char op[DB_OPERATION_MAX];
	char coll[DB_COLLECTION_MAX];
	char text[DB_QUERY_MAX];
};

struct framer {
	bool in_msg;
	bool lost;
	bool cont; /* the message continues in the next packet */
	uint8_t hdr[4];
	uint8_t hdr_len;
	uint8_t seq;      /* of the first packet of the message */
	uint32_t pkt_len; /* of the current packet */
	uint32_t pkt_got;
	uint32_t msg_len; /* total payload so far, capped */
	uint32_t keep_len;
	uint32_t keep_cap;
	uint64_t start_ns;
	uint8_t *keep;
};

struct mysql_parser {
	db_exchange_fn fn;
	void *ctx;
	struct framer dir[2];
	uint8_t phase;
	bool tls;
	bool client_hello_seen;
	uint64_t req_seq;
	uint64_t lost_seq;
	uint64_t stmt_clock;
	struct item *head, *tail;
	uint32_t n_items;
	struct db_parser_stats stats;
	char namespace_[DB_NAMESPACE_MAX];
	struct stmt *stmts[MYSQL_STATEMENTS_MAX];
	uint8_t req_keep[REQ_KEEP];
	uint8_t resp_keep[RESP_KEEP];
};

static uint32_t le16(const uint8_t *b)
{
	return b[0] | (uint32_t)b[1] << 8;
}

static uint32_t le24(const uint8_t *b)
{
	return b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16;
}

static uint32_t le32(const uint8_t *b)
{
	return le24(b) | (uint32_t)b[3] << 24;
}

/* A length-encoded integer at b[*off]; false when it does not fit in len. */
static bool lenenc(const uint8_t *b, size_t len, size_t *off, uint64_t *out)
{
	size_t need;
	uint8_t first;

	if (*off >= len)
		return false;
	first = b[*off];
	if (first < 0xfb) {
		*out = first;
		*off += 1;
		return true;
	}
	need = first == 0xfc ? 2 : first == 0xfd ? 3 : first == 0xfe ? 8 : 0;
	if (!need || *off + 1 + need > len)
		return false;
	*out = 0;
	for (size_t i = 0; i < need; i++)
		*out |= (uint64_t)b[*off + 1 + i] << (8 * i);
	*off += 1 + need;
	return true;
}

/* --- items and statements --------------------------------------------------- */

static struct item *item_pop(struct mysql_parser *p)
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

static void drop_all(struct mysql_parser *p)
{
	struct item *it;

	while ((it = item_pop(p))) {
		p->stats.unanswered++;
		free(it);
	}
}

static struct item *item_push(struct mysql_parser *p, uint8_t kind)
{
	struct item *it;

	if (p->n_items >= MYSQL_PENDING_MAX) {
		free(item_pop(p));
		p->stats.unanswered++;
	}
	it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->kind = kind;
	it->seq = p->req_seq++;
	it->ex.system = "mysql";
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

/* Completes the head command: reports it when its kind is reported. */
static void complete_head(struct mysql_parser *p, uint64_t end_ns)
{
	struct item *it = item_pop(p);
	bool report =
	    it->kind == K_QUERY || it->kind == K_PING || (it->kind == K_PREPARE && it->ex.error);

	it->ex.resp_end_ns = end_ns;
	if (it->new_ns[0] && !it->ex.error)
		text_copy(p->namespace_, sizeof(p->namespace_), it->new_ns, strlen(it->new_ns));
	if (report) {
		p->stats.exchanges++;
		p->fn(p->ctx, &it->ex);
	}
	free(it);
}

static struct stmt *stmt_find(struct mysql_parser *p, uint32_t id)
{
	for (int i = 0; i < MYSQL_STATEMENTS_MAX; i++)
		if (p->stmts[i] && p->stmts[i]->id == id)
			return p->stmts[i];
	return NULL;
}

static void stmt_store(struct mysql_parser *p, uint32_t id, const struct db_exchange *ex)
{
	struct stmt **slot = NULL;

	for (int i = 0; i < MYSQL_STATEMENTS_MAX && !slot; i++)
		if (p->stmts[i] && p->stmts[i]->id == id)
			slot = &p->stmts[i];
	for (int i = 0; i < MYSQL_STATEMENTS_MAX && !slot; i++)
		if (!p->stmts[i])
			slot = &p->stmts[i];
	if (!slot) {
		slot = &p->stmts[0];
		for (int i = 1; i < MYSQL_STATEMENTS_MAX; i++)
			if (p->stmts[i]->age < (*slot)->age)
				slot = &p->stmts[i];
	}
	if (!*slot)
		*slot = calloc(1, sizeof(**slot));
	if (!*slot)
		return;
	(*slot)->id = id;
	(*slot)->age = ++p->stmt_clock;
	memcpy((*slot)->op, ex->operation, sizeof((*slot)->op));
	memcpy((*slot)->coll, ex->collection, sizeof((*slot)->coll));
	memcpy((*slot)->text, ex->query_text, sizeof((*slot)->text));
}

static void stmt_close(struct mysql_parser *p, uint32_t id)
{
	for (int i = 0; i < MYSQL_STATEMENTS_MAX; i++) {
		if (p->stmts[i] && p->stmts[i]->id == id) {
			free(p->stmts[i]);
			p->stmts[i] = NULL;
		}
	}
}

/* "USE db": the database name, quotes removed. */
static void use_target(const char *sql, char *out, size_t cap)
{
	size_t i = 0, n = 0;

	while (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r')
		i++;
	if (strncasecmp(sql + i, "use", 3) != 0)
		return;
	i += 3;
	while (sql[i] == ' ' || sql[i] == '\t')
		i++;
	if (sql[i] == '`')
		i++;
	while (sql[i + n] && sql[i + n] != '`' && sql[i + n] != ';' && sql[i + n] != ' ' &&
	       sql[i + n] != '\r' && sql[i + n] != '\n')
		n++;
	text_copy(out, cap, sql + i, n);
}

/* --- requests ---------------------------------------------------------------- */

/* A HandshakeResponse41 sent inside TLS: sequence id 2 (after the server's
 * greeting and the SSLRequest), PROTOCOL_41 and SSL among the capabilities,
 * and the reserved filler after max packet size and charset all zero (MariaDB
 * keeps its own capabilities in the filler's last 4 bytes). Read at the
 * client's TLS library it is the first plaintext of the connection, so
 * detection and the parser have to recognise it without the greeting. */
static bool is_tls_handshake_response(const uint8_t *b, size_t len, uint8_t seq)
{
	const uint32_t want = CAP_PROTOCOL_41 | CAP_SSL;

	if (seq != 2 || len < 33 || (le32(b) & want) != want)
		return false;
	for (size_t i = 9; i < 28; i++)
		if (b[i])
			return false;
	return true;
}

static void on_client_hello(struct mysql_parser *p, const uint8_t *b, size_t len)
{
	size_t off = 32;
	uint32_t caps;
	const uint8_t *z;

	p->client_hello_seen = true;
	if (len < 4)
		return;
	caps = le32(b);
	if (!(caps & CAP_PROTOCOL_41))
		return; /* pre-4.1 clients: not parsed further */
	if ((caps & CAP_SSL) && len <= 32) {
		p->tls = true; /* SSLRequest: TLS from here on */
		return;
	}
	/* user */
	z = off < len ? memchr(b + off, 0, len - off) : NULL;
	if (!z)
		return;
	off = (size_t)(z - b) + 1;
	/* auth response */
	if (caps & CAP_PLUGIN_AUTH_LENENC) {
		uint64_t n;
		if (!lenenc(b, len, &off, &n) || n > len - off)
			return;
		off += (size_t)n;
	} else if (caps & CAP_SECURE_CONN) {
		if (off >= len || b[off] > len - off - 1)
			return;
		off += 1 + b[off];
	} else {
		z = off < len ? memchr(b + off, 0, len - off) : NULL;
		if (!z)
			return;
		off = (size_t)(z - b) + 1;
	}
	if ((caps & CAP_CONNECT_WITH_DB) && off < len) {
		z = memchr(b + off, 0, len - off);
		if (z)
			text_copy(p->namespace_, sizeof(p->namespace_), (const char *)b + off,
			          (size_t)(z - (b + off)));
	}
}

static void set_statement(struct db_exchange *ex, const uint8_t *b, size_t len)
{
	char buf[REQ_KEEP + 1];

	text_copy(buf, sizeof(buf), (const char *)b, len);
	sql_obfuscate_dialect(buf, strlen(buf), ex->query_text, sizeof(ex->query_text),
	                      SQL_DIALECT_MYSQL);
	sql_operation_and_collection(buf, ex->operation, sizeof(ex->operation), ex->collection,
	                             sizeof(ex->collection));
}

static void on_command(struct mysql_parser *p, const struct framer *f, uint64_t end_ns)
{
	const uint8_t *b = f->keep + 1;
	size_t len = f->keep_len ? f->keep_len - 1 : 0;
	struct item *it = NULL;
	uint8_t cmd;

	if (!f->keep_len)
		return;
	cmd = f->keep[0];
	switch (cmd) {
	case 0x03: /* COM_QUERY */
		it = item_push(p, K_QUERY);
		if (it) {
			set_statement(&it->ex, b, len);
			if (!strcmp(it->ex.operation, "USE")) {
				char sql[DB_NAMESPACE_MAX + 8];
				text_copy(sql, sizeof(sql), (const char *)b, len);
				use_target(sql, it->new_ns, sizeof(it->new_ns));
			}
		}
		break;
	case 0x16: /* COM_STMT_PREPARE */
		it = item_push(p, K_PREPARE);
		if (it)
			set_statement(&it->ex, b, len);
		break;
	case 0x17: /* COM_STMT_EXECUTE */
		it = item_push(p, K_QUERY);
		if (it && len >= 4) {
			struct stmt *st = stmt_find(p, le32(b));
			if (st) {
				memcpy(it->ex.operation, st->op, sizeof(st->op));
				memcpy(it->ex.collection, st->coll, sizeof(st->coll));
				memcpy(it->ex.query_text, st->text, sizeof(st->text));
			}
		}
		break;
	case 0x0e: /* COM_PING */
		it = item_push(p, K_PING);
		if (it)
			text_copy(it->ex.operation, sizeof(it->ex.operation), "PING", 4);
		break;
	case 0x02: /* COM_INIT_DB */
		it = item_push(p, K_INIT_DB);
		if (it)
			text_copy(it->new_ns, sizeof(it->new_ns), (const char *)b, len);
		break;
	case 0x04: /* COM_FIELD_LIST */
		it = item_push(p, K_FIELD_LIST);
		break;
	case 0x19: /* COM_STMT_CLOSE: no response */
		if (len >= 4)
			stmt_close(p, le32(b));
		break;
	case 0x01: /* COM_QUIT */
	case 0x18: /* COM_STMT_SEND_LONG_DATA: no response */
		break;
	default: /* STATISTICS, STMT_RESET, RESET_CONNECTION, SET_OPTION, ... */
		it = item_push(p, K_ONE);
		break;
	}
	if (it) {
		it->ex.req_start_ns = f->start_ns;
		it->ex.req_end_ns = end_ns;
	}
}

static void on_request(struct mysql_parser *p, const struct framer *f, uint64_t end_ns)
{
	if (p->phase == PH_START) {
		/* TLS plaintext starts with the handshake response; anything
		 * else: the stream is seen from the middle */
		p->phase =
		    is_tls_handshake_response(f->keep, f->keep_len, f->seq) ? PH_AUTH : PH_CMD;
	}
	if (p->phase == PH_AUTH) {
		if (!p->client_hello_seen)
			on_client_hello(p, f->keep, f->keep_len);
		return; /* otherwise auth data */
	}
	if (f->seq != 0)
		return; /* LOCAL INFILE data and such */
	on_command(p, f, end_ns);
}

/* --- responses --------------------------------------------------------------- */

static void on_err(struct db_exchange *ex, const uint8_t *b, size_t len)
{
	size_t off = 3;

	ex->error = true;
	if (len < 3)
		return;
	snprintf(ex->status_code, sizeof(ex->status_code), "%u", le16(b + 1));
	if (len >= 9 && b[3] == '#')
		off = 9;
	text_copy(ex->error_message, sizeof(ex->error_message), (const char *)b + off, len - off);
}

/* OK packet: affected rows into rows; returns its status flags. */
static uint32_t on_ok(struct db_exchange *ex, const uint8_t *b, size_t len)
{
	size_t off = 1;
	uint64_t affected = 0, insert_id;

	if (!lenenc(b, len, &off, &affected) || !lenenc(b, len, &off, &insert_id) || off + 2 > len)
		return 0;
	ex->rows += affected;
	return le16(b + off);
}

static bool is_eof(const uint8_t *b, size_t msg_len)
{
	return msg_len >= 1 && msg_len < 9 && b[0] == 0xfe;
}

/* One response packet for the head command. Returns true when the packet was
 * consumed, false when the head completed without it (it belongs to the
 * next command). */
static bool on_response_packet(struct mysql_parser *p, const struct framer *f, uint64_t end_ns)
{
	struct item *it = p->head;
	const uint8_t *b = f->keep;
	size_t len = f->keep_len, msg_len = f->msg_len;
	uint64_t n;
	size_t off;

	if (!len)
		return true;
	if (!it->ex.resp_start_ns)
		it->ex.resp_start_ns = f->start_ns;
	switch (it->state) {
	case RS_FIRST:
		if (b[0] == 0xff) {
			on_err(&it->ex, b, len);
			complete_head(p, end_ns);
			return true;
		}
		if (it->kind == K_ONE || it->kind == K_PING || it->kind == K_INIT_DB) {
			complete_head(p, end_ns);
			return true;
		}
		if (it->kind == K_FIELD_LIST) {
			if (is_eof(b, msg_len))
				complete_head(p, end_ns);
			return true;
		}
		if (it->kind == K_PREPARE) {
			if (b[0] != 0x00 || len < 12) {
				complete_head(p, end_ns);
				return true;
			}
			stmt_store(p, le32(b + 1), &it->ex);
			it->pcols = le16(b + 5);
			it->left = le16(b + 7);
			if (it->left)
				it->state = RS_PARAMS;
			else if (it->pcols) {
				it->left = it->pcols;
				it->state = RS_PCOLS;
			} else
				complete_head(p, end_ns);
			return true;
		}
		if (b[0] == 0x00 && msg_len >= 7) { /* OK */
			if (!(on_ok(&it->ex, b, len) & STATUS_MORE_RESULTS))
				complete_head(p, end_ns);
			return true;
		}
		if (b[0] == 0xfb) /* LOCAL INFILE: the file, then an OK */
			return true;
		off = 0;
		if (!lenenc(b, len, &off, &n) || n == 0) {
			complete_head(p, end_ns); /* not a response we know */
			return true;
		}
		it->left = n;
		it->state = RS_COLS;
		return true;
	case RS_COLS:
		if (--it->left == 0)
			it->state = RS_COLS_EOF;
		return true;
	case RS_COLS_EOF:
		it->state = RS_ROWS;
		if (is_eof(b, msg_len))
			return true;
		/* fall through: CLIENT_DEPRECATE_EOF, this is a row */
	case RS_ROWS:
		if (b[0] == 0xff) {
			on_err(&it->ex, b, len);
			complete_head(p, end_ns);
		} else if (b[0] == 0xfe && msg_len < PKT_MAX) {
			uint32_t status = msg_len == 5 && len >= 5 ? le16(b + 3) : 0;
			if (msg_len != 5) {
				uint64_t rows = it->ex.rows;
				status = on_ok(&it->ex, b, len);
				it->ex.rows = rows; /* affected rows of a SELECT: 0 */
			}
			if (status & STATUS_MORE_RESULTS)
				it->state = RS_FIRST;
			else
				complete_head(p, end_ns);
		} else {
			it->ex.rows++;
		}
		return true;
	case RS_PARAMS:
		if (--it->left == 0)
			it->state = RS_PARAMS_EOF;
		return true;
	case RS_PARAMS_EOF:
		if (it->pcols) {
			it->left = it->pcols;
			it->state = RS_PCOLS;
			if (is_eof(b, msg_len))
				return true;
			return on_response_packet(p, f, end_ns);
		}
		if (is_eof(b, msg_len)) {
			complete_head(p, end_ns);
			return true;
		}
		complete_head(p, it->ex.resp_end_ns ? it->ex.resp_end_ns : end_ns);
		return false;
	case RS_PCOLS:
		if (--it->left == 0)
			it->state = RS_PCOLS_EOF;
		return true;
	case RS_PCOLS_EOF:
		if (is_eof(b, msg_len)) {
			complete_head(p, end_ns);
			return true;
		}
		complete_head(p, end_ns);
		return false;
	}
	return true;
}

static void on_server_hello(struct mysql_parser *p, const struct framer *f)
{
	if (f->keep_len >= 1 && f->keep[0] == 10 && f->seq == 0)
		p->phase = PH_AUTH;
	else
		p->phase = PH_CMD;
}

static void on_response(struct mysql_parser *p, const struct framer *f, uint64_t end_ns)
{
	if (p->phase == PH_START) {
		on_server_hello(p, f);
		return;
	}
	if (p->phase == PH_AUTH) {
		if (f->keep_len && f->keep[0] == 0x00 && p->client_hello_seen)
			p->phase = PH_CMD;
		return; /* auth switch, more data, ERR */
	}
	for (int tries = 0; tries < 4; tries++) {
		if (!p->head) {
			p->stats.orphan_responses++;
			return;
		}
		if (on_response_packet(p, f, end_ns))
			return;
	}
}

/* --- framing ----------------------------------------------------------------- */

static bool plausible_start(enum stream_dir dir, const uint8_t *b, size_t n)
{
	if (n < 4)
		return false;
	if (dir == STREAM_DIR_REQUEST)
		return b[3] == 0 && le24(b) >= 1 && (n < 5 || b[4] < 0x20);
	return b[3] == 1 && le24(b) >= 1;
}

static void lose_framing(struct mysql_parser *p, enum stream_dir dir, const struct stream_chunk *c)
{
	struct framer *f = &p->dir[dir];

	f->lost = true;
	f->in_msg = false;
	p->stats.parse_errors++;
	if (dir == STREAM_DIR_RESPONSE) {
		p->lost_seq = p->req_seq;
		if (p->head) {
			p->head->ex.truncated = true;
			if (!p->head->ex.resp_start_ns)
				p->head->ex.resp_start_ns = c->ts_first_ns;
			p->head->ex.resp_end_ns = c->ts_last_ns;
		}
	}
}

static bool response_resync(struct mysql_parser *p, const struct stream_chunk *c)
{
	if (p->req_seq <= p->lost_seq || !plausible_start(STREAM_DIR_RESPONSE, c->data, c->len)) {
		if (p->head && p->head->seq < p->lost_seq)
			p->head->ex.resp_end_ns = c->ts_last_ns;
		return false;
	}
	if (p->head && p->head->seq < p->lost_seq && p->head->ex.truncated) {
		p->head->kind = p->head->kind == K_PREPARE ? K_ONE : p->head->kind;
		complete_head(p, p->head->ex.resp_end_ns);
	}
	while (p->head && p->head->seq < p->lost_seq) {
		free(item_pop(p));
		p->stats.unanswered++;
	}
	return true;
}

static void finish_message(struct mysql_parser *p, enum stream_dir dir, uint64_t end_ns)
{
	struct framer *f = &p->dir[dir];

	f->in_msg = false;
	if (dir == STREAM_DIR_REQUEST)
		on_request(p, f, end_ns);
	else
		on_response(p, f, end_ns);
}

int mysql_parser_feed(struct mysql_parser *p, enum stream_dir dir, const struct stream_chunk *c)
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
		if (!f->in_msg) {
			f->in_msg = true;
			f->cont = false;
			f->hdr_len = 0;
			f->msg_len = 0;
			f->keep_len = 0;
			f->keep_cap = dir == STREAM_DIR_REQUEST ? REQ_KEEP : RESP_KEEP;
			f->start_ns = c->ts_first_ns;
		}
		if (f->hdr_len < 4) {
			size_t take = 4 - f->hdr_len;
			if (take > c->len - pos)
				take = c->len - pos;
			memcpy(f->hdr + f->hdr_len, c->data + pos, take);
			f->hdr_len += (uint8_t)take;
			pos += take;
			if (f->hdr_len < 4)
				break;
			f->pkt_len = le24(f->hdr);
			f->pkt_got = 0;
			if (!f->cont)
				f->seq = f->hdr[3];
		}
		size_t take = f->pkt_len - f->pkt_got;
		if (take > c->len - pos)
			take = c->len - pos;
		if (f->keep_len < f->keep_cap) {
			size_t k = f->keep_cap - f->keep_len;
			if (k > take)
				k = take;
			memcpy(f->keep + f->keep_len, c->data + pos, k);
			f->keep_len += (uint32_t)k;
		}
		f->pkt_got += (uint32_t)take;
		if (f->msg_len < PKT_MAX)
			f->msg_len += (uint32_t)take;
		pos += take;
		if (f->pkt_got == f->pkt_len) {
			if (f->pkt_len == PKT_MAX) { /* continued in the next packet */
				f->cont = true;
				f->hdr_len = 0;
				continue;
			}
			finish_message(p, dir, c->ts_last_ns);
		}
	}
	if (c->missing && !p->tls) {
		if (f->in_msg && f->hdr_len == 4 &&
		    c->missing <= (size_t)(f->pkt_len - f->pkt_got)) {
			f->pkt_got += (uint32_t)c->missing;
			if (f->msg_len < PKT_MAX)
				f->msg_len += (uint32_t)c->missing;
			if (f->pkt_got == f->pkt_len) {
				if (f->pkt_len == PKT_MAX) {
					f->cont = true;
					f->hdr_len = 0;
				} else {
					finish_message(p, dir, c->ts_last_ns);
				}
			}
		} else {
			lose_framing(p, dir, c);
			return -EBADMSG;
		}
	}
	return 0;
}

/* --- lifecycle --------------------------------------------------------------- */

struct mysql_parser *mysql_parser__new(db_exchange_fn fn, void *ctx)
{
	struct mysql_parser *p;

	if (!fn)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->fn = fn;
	p->ctx = ctx;
	p->dir[STREAM_DIR_REQUEST].keep = p->req_keep;
	p->dir[STREAM_DIR_RESPONSE].keep = p->resp_keep;
	return p;
}

void mysql_parser__free(struct mysql_parser *p)
{
	if (!p)
		return;
	drop_all(p);
	for (int i = 0; i < MYSQL_STATEMENTS_MAX; i++)
		free(p->stmts[i]);
	free(p);
}

void mysql_parser_close(struct mysql_parser *p, uint64_t ts_ns)
{
	if (!p)
		return;
	if (p->head && (p->head->ex.resp_start_ns || p->head->ex.truncated)) {
		p->head->ex.truncated = true;
		complete_head(p, p->head->ex.resp_end_ns ? p->head->ex.resp_end_ns : ts_ns);
	}
	drop_all(p);
}

void mysql_parser_stats(const struct mysql_parser *p, struct db_parser_stats *out)
{
	if (p && out)
		*out = p->stats;
}

int mysql_detect(const uint8_t *data, size_t len, enum stream_dir dir)
{
	uint32_t n;

	if (!data || len < 5)
		return 0;
	n = le24(data);
	if (dir == STREAM_DIR_RESPONSE) {
		/* handshake v10: seq 0, version 10, a printable version string */
		if (data[3] != 0 || data[4] != 10 || n < 20 || n > 1024)
			return 0;
		return len < 6 || (data[5] >= '0' && data[5] <= '9');
	}
	if (n >= 33 && is_tls_handshake_response(data + 4, len - 4, data[3]))
		return 1;
	if (data[3] != 0 || (data[4] != 0x03 && data[4] != 0x16) || n < 2)
		return 0;
	for (size_t i = 5; i < len && i < 5 + 16 && i < 4 + n; i++)
		if (data[i] < 0x20 && data[i] != '\t' && data[i] != '\n' && data[i] != '\r')
			return 0;
	return 1;
}
