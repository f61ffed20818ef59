/* test_mysql.c — MySQL/MariaDB parser tests: real mariadb client sessions and a
 * prepared-statement session (recorded through a loopback proxy) fed whole,
 * cut at every byte boundary and byte by byte, plus hand-made result-set,
 * error, capture-limit and detector cases. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/mysql.h"
#include "unit.h"

#define DATA_DIR "tests/data/db/"
#define MAX_EX   64
#define MAX_REC  512

/* --- capture files: records of dir ('>' request, '<' response), u32 LE
 * length, bytes — one per recv() at the proxy ------------------------------ */

struct record {
	enum stream_dir dir;
	size_t len;
	uint8_t *data;
};

struct capture {
	size_t n;
	struct record rec[MAX_REC];
};

static struct capture *capture_load(const char *name)
{
	char path[256];
	uint8_t hdr[5];
	struct capture *cap = calloc(1, sizeof(*cap));
	FILE *f;

	snprintf(path, sizeof(path), DATA_DIR "%s", name);
	f = fopen(path, "rb");
	if (!f || !cap) {
		fprintf(stderr, "cannot read %s (run from the repository root)\n", path);
		free(cap);
		if (f)
			fclose(f);
		return NULL;
	}
	while (cap->n < MAX_REC && fread(hdr, 1, 5, f) == 5) {
		struct record *r = &cap->rec[cap->n];
		r->dir = hdr[0] == '>' ? STREAM_DIR_REQUEST : STREAM_DIR_RESPONSE;
		r->len = hdr[1] | hdr[2] << 8 | hdr[3] << 16 | (size_t)hdr[4] << 24;
		r->data = malloc(r->len ? r->len : 1);
		if (!r->data || fread(r->data, 1, r->len, f) != r->len)
			break;
		cap->n++;
	}
	fclose(f);
	return cap;
}

static void capture_free(struct capture *cap)
{
	if (!cap)
		return;
	for (size_t i = 0; i < cap->n; i++)
		free(cap->rec[i].data);
	free(cap);
}

/* --- collected exchanges ------------------------------------------------- */

struct sink {
	size_t n;
	struct db_exchange ex[MAX_EX];
};

static void collect(void *ctx, const struct db_exchange *ex)
{
	struct sink *s = ctx;

	if (s->n < MAX_EX)
		s->ex[s->n] = *ex;
	s->n++;
}

static bool same_exchange(const struct db_exchange *a, const struct db_exchange *b)
{
	return !strcmp(a->system, b->system) && !strcmp(a->operation, b->operation) &&
	       !strcmp(a->collection, b->collection) && !strcmp(a->namespace_, b->namespace_) &&
	       !strcmp(a->query_text, b->query_text) && a->error == b->error &&
	       a->truncated == b->truncated && !strcmp(a->status_code, b->status_code) &&
	       !strcmp(a->error_message, b->error_message) && a->rows == b->rows &&
	       a->req_start_ns == b->req_start_ns && a->req_end_ns == b->req_end_ns &&
	       a->resp_start_ns == b->resp_start_ns && a->resp_end_ns == b->resp_end_ns;
}

static void check_same_sinks(const struct sink *a, const struct sink *b)
{
	CHECK_EQ_INT(a->n, b->n);
	for (size_t i = 0; i < a->n && i < b->n && i < MAX_EX; i++)
		CHECK(same_exchange(&a->ex[i], &b->ex[i]));
}

/* Feeds the capture; record `split` is cut at byte `at` (0: no cut), or fed
 * byte by byte when at == SIZE_MAX. Chunk i has timestamps 1000*(i+1), +1. */
static void run_capture(const struct capture *cap, struct sink *out, size_t split, size_t at,
                        struct db_parser_stats *stats)
{
	struct mysql_parser *p = mysql_parser__new(collect, out);

	memset(out, 0, sizeof(*out));
	CHECK(p != NULL);
	if (!p)
		return;
	for (size_t i = 0; i < cap->n; i++) {
		const struct record *r = &cap->rec[i];
		struct stream_chunk c = {.data = r->data,
		                         .len = r->len,
		                         .ts_first_ns = 1000 * (i + 1),
		                         .ts_last_ns = 1000 * (i + 1) + 1};
		if (i == split && at == SIZE_MAX) {
			for (size_t k = 0; k < r->len; k++) {
				struct stream_chunk one = c;
				one.data = r->data + k;
				one.len = 1;
				CHECK_EQ_INT(mysql_parser_feed(p, r->dir, &one), 0);
			}
		} else if (i == split && at > 0 && at < r->len) {
			struct stream_chunk a = c, b = c;
			a.len = at;
			b.data = r->data + at;
			b.len = r->len - at;
			CHECK_EQ_INT(mysql_parser_feed(p, r->dir, &a), 0);
			CHECK_EQ_INT(mysql_parser_feed(p, r->dir, &b), 0);
		} else {
			CHECK_EQ_INT(mysql_parser_feed(p, r->dir, &c), 0);
		}
	}
	mysql_parser_close(p, 1000 * (cap->n + 1));
	if (stats)
		mysql_parser_stats(p, stats);
	mysql_parser__free(p);
}

static void check_every_split(const char *name)
{
	struct capture *cap = capture_load(name);
	static struct sink whole, cut;

	CHECK(cap != NULL);
	if (!cap)
		return;
	run_capture(cap, &whole, SIZE_MAX - 1, 0, NULL);
	CHECK(whole.n > 0);
	for (size_t i = 0; i < cap->n; i++) {
		int before = unit_failed_checks;
		for (size_t at = 1; at < cap->rec[i].len; at++) {
			run_capture(cap, &cut, i, at, NULL);
			check_same_sinks(&whole, &cut);
			if (unit_failed_checks != before) {
				fprintf(stderr, "%s: record %zu cut at %zu differs\n", name, i, at);
				break;
			}
		}
		run_capture(cap, &cut, i, SIZE_MAX, NULL);
		check_same_sinks(&whole, &cut);
	}
	capture_free(cap);
}

/* --- captures -------------------------------------------------------------- */

static void test_client_capture(void)
{
	struct capture *cap = capture_load("mysql_client.cap");
	static struct sink s;
	struct db_parser_stats st;

	CHECK(cap != NULL);
	if (!cap)
		return;
	run_capture(cap, &s, SIZE_MAX - 1, 0, &st);
	CHECK_EQ_INT(s.n, 6);
	CHECK_EQ_INT(st.parse_errors, 0);
	CHECK_EQ_INT(st.unanswered, 0);
	CHECK_EQ_INT(st.orphan_responses, 0);
	CHECK_EQ_STR(s.ex[0].system, "mysql");
	CHECK_EQ_STR(s.ex[0].namespace_, "shop"); /* from the handshake response */
	CHECK_EQ_STR(s.ex[0].query_text, "SELECT id, name FROM items WHERE id IN (?)");
	CHECK_EQ_STR(s.ex[0].collection, "items");
	CHECK_EQ_INT(s.ex[0].rows, 2);
	CHECK_EQ_STR(s.ex[1].operation, "UPDATE");
	CHECK(s.ex[2].error);
	CHECK_EQ_STR(s.ex[2].status_code, "1146");
	CHECK_EQ_STR(s.ex[2].error_message, "Table 'shop.missing_table' doesn't exist");
	/* "use mysql" became COM_INIT_DB */
	CHECK_EQ_STR(s.ex[4].namespace_, "mysql");
	for (size_t i = 0; i < s.n && i < MAX_EX; i++)
		CHECK(s.ex[i].req_end_ns < s.ex[i].resp_start_ns);
	capture_free(cap);
}

static void check_prepared(const char *name, uint64_t update_rows)
{
	struct capture *cap = capture_load(name);
	static struct sink s;
	struct db_parser_stats st;

	CHECK(cap != NULL);
	if (!cap)
		return;
	run_capture(cap, &s, SIZE_MAX - 1, 0, &st);
	CHECK_EQ_INT(s.n, 7);
	CHECK_EQ_INT(st.parse_errors, 0);
	CHECK_EQ_INT(st.unanswered, 0);
	CHECK_EQ_INT(st.orphan_responses, 0);
	CHECK_EQ_STR(s.ex[0].query_text, "SELECT ?");
	/* COM_STMT_EXECUTE carries the text of its COM_STMT_PREPARE */
	CHECK_EQ_STR(s.ex[1].query_text, "SELECT id, name FROM items WHERE id = ?");
	CHECK_EQ_STR(s.ex[1].operation, "SELECT");
	CHECK_EQ_INT(s.ex[1].rows, 1);
	CHECK_EQ_STR(s.ex[2].query_text, "UPDATE items SET name = ? WHERE id = ?");
	CHECK_EQ_INT(s.ex[2].rows, update_rows);
	CHECK(s.ex[3].error);
	CHECK_EQ_STR(s.ex[3].status_code, "1243");
	CHECK_EQ_STR(s.ex[4].operation, "PING");
	CHECK_EQ_STR(s.ex[5].namespace_, "mysql"); /* COM_INIT_DB */
	CHECK_EQ_STR(s.ex[5].query_text, "SELECT COUNT(*) FROM user WHERE user = ?");
	CHECK(s.ex[6].error);
	CHECK_EQ_STR(s.ex[6].status_code, "1062");
	CHECK_EQ_STR(s.ex[6].collection, "shop.items");
	capture_free(cap);
}

static void test_prepared_captures(void)
{
	check_prepared("mysql_prepared.cap", 1);
	check_prepared("mysql_prepared_deprecate_eof.cap", 0);
}

static void test_every_split_client(void)
{
	check_every_split("mysql_client.cap");
}

static void test_every_split_prepared(void)
{
	check_every_split("mysql_prepared.cap");
	check_every_split("mysql_prepared_deprecate_eof.cap");
}

/* --- hand-made packets ------------------------------------------------------- */

struct pktbuf {
	size_t len;
	uint8_t b[8192];
};

static void pkt(struct pktbuf *m, uint8_t seq, const void *payload, size_t n)
{
	m->b[m->len++] = (uint8_t)n;
	m->b[m->len++] = (uint8_t)(n >> 8);
	m->b[m->len++] = (uint8_t)(n >> 16);
	m->b[m->len++] = seq;
	memcpy(m->b + m->len, payload, n);
	m->len += n;
}

#define PKT(m, seq, lit) pkt((m), (seq), (lit), sizeof(lit) - 1)

static int feed(struct mysql_parser *p, enum stream_dir d, const struct pktbuf *m, uint64_t ts,
                size_t missing)
{
	struct stream_chunk c = {.data = m->b,
	                         .len = m->len,
	                         .missing = missing,
	                         .ts_first_ns = ts,
	                         .ts_last_ns = ts + 1};
	return mysql_parser_feed(p, d, &c);
}

static void test_multi_results_and_use(void)
{
	static struct sink s;
	struct mysql_parser *p = mysql_parser__new(collect, &s);
	struct pktbuf req = {0}, resp = {0};

	memset(&s, 0, sizeof(s));
	/* seen from the middle: no handshake */
	PKT(&req, 0,
	    "\x03"
	    "CALL p(1); SELECT 2");
	CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 10, 0), 0);
	PKT(&resp, 1, "\x01");
	PKT(&resp, 2,
	    "\x03"
	    "def\0\0\0\x01"
	    "a\0\x0c\x3f\0\x01\0\0\0\x08\x81\0\0\0\0");
	PKT(&resp, 3, "\xfe\0\0\x0a\0"); /* EOF, more results */
	PKT(&resp, 4,
	    "\x01"
	    "1");
	PKT(&resp, 5,
	    "\x01"
	    "2");
	PKT(&resp, 6, "\xfe\0\0\x0a\0");     /* EOF, more results */
	PKT(&resp, 7, "\0\x05\0\x02\0\0\0"); /* OK: 5 affected, last */
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 20, 0), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_STR(s.ex[0].operation, "CALL");
	CHECK_EQ_INT(s.ex[0].rows, 7);
	CHECK_EQ_STR(s.ex[0].namespace_, "");
	/* USE through COM_QUERY: the namespace once it succeeded */
	req.len = 0;
	PKT(&req, 0,
	    "\x03"
	    "USE `inventory`");
	feed(p, STREAM_DIR_REQUEST, &req, 30, 0);
	resp.len = 0;
	PKT(&resp, 1, "\0\0\0\x02\0\0\0");
	feed(p, STREAM_DIR_RESPONSE, &resp, 35, 0);
	req.len = 0;
	PKT(&req, 0,
	    "\x03"
	    "SELECT 1");
	feed(p, STREAM_DIR_REQUEST, &req, 38, 0);
	resp.len = 0;
	PKT(&resp, 1, "\xff\x7a\x04#42000Syntax");
	feed(p, STREAM_DIR_RESPONSE, &resp, 40, 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_STR(s.ex[1].operation, "USE");
	CHECK_EQ_STR(s.ex[2].namespace_, "inventory");
	CHECK_EQ_STR(s.ex[2].status_code, "1146");
	CHECK_EQ_STR(s.ex[2].error_message, "Syntax");
	mysql_parser__free(p);
}

static void test_capture_limit(void)
{
	static struct sink s;
	struct mysql_parser *p = mysql_parser__new(collect, &s);
	struct pktbuf req = {0}, resp = {0};
	struct db_parser_stats st;
	char big[5000];

	memset(&s, 0, sizeof(s));
	/* a long INSERT cut by the capture inside its packet */
	big[0] = 0x03;
	memcpy(big + 1, "INSERT INTO t VALUES ('", 23);
	memset(big + 24, 'z', sizeof(big) - 24);
	pkt(&req, 0, big, sizeof(big));
	size_t full = req.len;
	req.len = 4096;
	CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 10, full - 4096), 0);
	PKT(&resp, 1, "\0\x01\0\x02\0\0\0");
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 20, 0), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_STR(s.ex[0].operation, "INSERT");
	CHECK_EQ_STR(s.ex[0].query_text, "INSERT INTO t VALUES (?");
	CHECK_EQ_INT(s.ex[0].rows, 1);
	/* a big result set whose framing the capture loses */
	req.len = 0;
	PKT(&req, 0, "\x03SELECT * FROM big");
	feed(p, STREAM_DIR_REQUEST, &req, 30, 0);
	resp.len = 0;
	PKT(&resp, 1, "\x01");
	PKT(&resp, 2,
	    "\x03"
	    "def\0\0\0\x01"
	    "a\0\x0c\x3f\0\x01\0\0\0\x08\x81\0\0\0\0");
	PKT(&resp, 3,
	    "\x01"
	    "1");
	resp.len += 2;
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 40, 100000), -EBADMSG);
	resp.len = 0;
	PKT(&resp, 200,
	    "\x01"
	    "9");
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 50, 0), 0);
	req.len = 0;
	PKT(&req, 0, "\x0e");
	feed(p, STREAM_DIR_REQUEST, &req, 60, 0);
	resp.len = 0;
	PKT(&resp, 1, "\0\0\0\x02\0\0\0");
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 70, 0), 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_STR(s.ex[1].collection, "big");
	CHECK(s.ex[1].truncated);
	CHECK_EQ_INT(s.ex[1].resp_start_ns, 40);
	CHECK_EQ_INT(s.ex[1].resp_end_ns, 51);
	CHECK_EQ_STR(s.ex[2].operation, "PING");
	CHECK(!s.ex[2].truncated);
	mysql_parser_stats(p, &st);
	CHECK_EQ_INT(st.parse_errors, 1);
	mysql_parser__free(p);
}

static void test_tls_and_bounds(void)
{
	static struct sink s;
	struct mysql_parser *p;
	struct pktbuf req = {0}, resp = {0};
	struct db_parser_stats st;
	uint8_t ssl[32] = {0x00, 0x8a, 0x00, 0x00}; /* PROTOCOL_41 | SSL | SECURE */
	struct capture *cap = capture_load("mysql_client.cap");

	memset(&s, 0, sizeof(s));
	CHECK(cap != NULL);
	p = mysql_parser__new(collect, &s);
	if (cap) {
		/* the real handshake, then an SSLRequest: nothing more is parsed */
		struct stream_chunk c = {.data = cap->rec[0].data, .len = cap->rec[0].len};
		CHECK_EQ_INT(mysql_parser_feed(p, STREAM_DIR_RESPONSE, &c), 0);
		pkt(&req, 1, ssl, sizeof(ssl));
		CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 1, 0), 0);
		req.len = 0;
		PKT(&req, 0, "\x03SELECT 1");
		feed(p, STREAM_DIR_REQUEST, &req, 2, 0);
		mysql_parser_close(p, 3);
		mysql_parser_stats(p, &st);
		CHECK_EQ_INT(st.unanswered, 0);
		CHECK_EQ_INT(s.n, 0);
		CHECK_EQ_INT(mysql_detect(cap->rec[0].data, cap->rec[0].len, STREAM_DIR_RESPONSE),
		             1);
		CHECK_EQ_INT(mysql_detect(cap->rec[1].data, cap->rec[1].len, STREAM_DIR_REQUEST),
		             0);
	}
	mysql_parser__free(p);
	capture_free(cap);

	p = mysql_parser__new(collect, &s);
	req.len = 0;
	for (int i = 0; i < 100; i++)
		PKT(&req, 0, "\x03SELECT 1");
	feed(p, STREAM_DIR_REQUEST, &req, 1, 0);
	mysql_parser_stats(p, &st);
	CHECK_EQ_INT(st.unanswered, 100 - MYSQL_PENDING_MAX);
	PKT(&resp, 1, "\0\0\0\x02\0\0\0");
	resp.len = 2; /* cut inside the header with uncaptured bytes */
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 2, 5), -EBADMSG);
	mysql_parser__free(p);
	mysql_parser__free(NULL);
	CHECK_EQ_INT(mysql_parser_feed(NULL, 0, NULL), -EINVAL);
}

/* A handshake response as a client sends it inside TLS: seq 2, SSL among the
 * capabilities, user, a 20-byte auth response, the database. */
static void tls_hello(struct pktbuf *m, uint8_t seq, uint8_t cap_hi)
{
	uint8_t b[80] = {0x08, cap_hi, 0x00, 0x00,        /* CONNECT_WITH_DB | PROTOCOL_41 | SSL */
	                 0,    0,      0,    1,    0x2d}; /* max packet, charset; filler zero */
	size_t n = 32;

	memcpy(b + n, "app", 4);
	n += 4;
	b[n++] = 20;
	memset(b + n, 0x5a, 20);
	n += 20;
	memcpy(b + n, "shop", 5);
	n += 5;
	pkt(m, seq, b, n);
}

static void test_tls_plaintext(void)
{
	static struct sink s;
	struct mysql_parser *p = mysql_parser__new(collect, &s);
	struct pktbuf req = {0}, resp = {0};
	struct capture *cap = capture_load("mysql_client.cap");

	memset(&s, 0, sizeof(s));
	/* the first plaintext at the client's TLS library is its handshake
	 * response: recognised, and its database kept */
	tls_hello(&req, 2, 0x8a); /* PROTOCOL_41 | SSL | SECURE_CONN */
	CHECK_EQ_INT(mysql_detect(req.b, req.len, STREAM_DIR_REQUEST), 1);
	CHECK_EQ_INT(mysql_detect(req.b, req.len, STREAM_DIR_RESPONSE), 0);
	CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 10, 0), 0);
	resp.len = 0;
	PKT(&resp, 3,
	    "\xfe"
	    "mysql_native_password\0"
	    "0123456789abcdefghij\0"); /* switch */
	feed(p, STREAM_DIR_RESPONSE, &resp, 11, 0);
	req.len = 0;
	PKT(&req, 4, "0123456789abcdefghij");
	feed(p, STREAM_DIR_REQUEST, &req, 12, 0);
	resp.len = 0;
	PKT(&resp, 5, "\0\0\0\x02\0\0\0");
	feed(p, STREAM_DIR_RESPONSE, &resp, 13, 0);
	CHECK_EQ_INT(s.n, 0);
	req.len = 0;
	PKT(&req, 0, "\x03SELECT id FROM orders WHERE id = 5");
	feed(p, STREAM_DIR_REQUEST, &req, 20, 0);
	resp.len = 0;
	PKT(&resp, 1, "\0\0\0\x02\0\0\0");
	feed(p, STREAM_DIR_RESPONSE, &resp, 30, 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_STR(s.ex[0].operation, "SELECT");
	CHECK_EQ_STR(s.ex[0].namespace_, "shop");
	mysql_parser__free(p);

	/* not that: a plain handshake response (seq 1), one without SSL, and
	 * one whose filler is not zero */
	req.len = 0;
	tls_hello(&req, 1, 0x8a);
	CHECK_EQ_INT(mysql_detect(req.b, req.len, STREAM_DIR_REQUEST), 0);
	req.len = 0;
	tls_hello(&req, 2, 0x82);
	CHECK_EQ_INT(mysql_detect(req.b, req.len, STREAM_DIR_REQUEST), 0);
	req.b[4 + 12] = 7;
	req.b[4 + 1] = 0x8a;
	CHECK_EQ_INT(mysql_detect(req.b, req.len, STREAM_DIR_REQUEST), 0);
	req.b[4 + 12] = 0;
	CHECK_EQ_INT(mysql_detect(req.b, req.len, STREAM_DIR_REQUEST), 1);

	/* the real mariadb client's handshake response (MariaDB capabilities in
	 * the filler's last bytes), as it would be sent after an SSLRequest */
	CHECK(cap != NULL);
	if (cap && cap->rec[1].len >= 36) {
		uint8_t *b = cap->rec[1].data;
		uint8_t seq = b[3], cap1 = b[5];

		b[3] = 2;
		b[5] |= 0x08; /* CAP_SSL */
		CHECK_EQ_INT(mysql_detect(b, cap->rec[1].len, STREAM_DIR_REQUEST), 1);
		b[3] = seq;
		b[5] = cap1;
	}
	capture_free(cap);
}

static void test_detect(void)
{
	static const uint8_t query[] = {9, 0, 0, 0, 3, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1'};
	static const uint8_t pg_ssl[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
	static const uint8_t http[] = "HTTP/1.1 200 OK\r\n";

	CHECK_EQ_INT(mysql_detect(query, sizeof(query), STREAM_DIR_REQUEST), 1);
	CHECK_EQ_INT(mysql_detect(query, sizeof(query), STREAM_DIR_RESPONSE), 0);
	CHECK_EQ_INT(mysql_detect(pg_ssl, sizeof(pg_ssl), STREAM_DIR_REQUEST), 0);
	CHECK_EQ_INT(mysql_detect(http, sizeof(http) - 1, STREAM_DIR_RESPONSE), 0);
	CHECK_EQ_INT(mysql_detect(NULL, 0, STREAM_DIR_RESPONSE), 0);
}

int main(void)
{
	RUN(test_client_capture);
	RUN(test_prepared_captures);
	RUN(test_every_split_client);
	RUN(test_every_split_prepared);
	RUN(test_multi_results_and_use);
	RUN(test_capture_limit);
	RUN(test_tls_and_bounds);
	RUN(test_tls_plaintext);
	RUN(test_detect);
	return unit_summary("test_mysql");
}
