/* test_pgsql.c — PostgreSQL parser tests: real captures (psql, pgbench -M
 * simple/extended/prepared, recorded through a loopback proxy) fed whole, cut
 * at every byte boundary and byte by byte, plus hand-made error, pipeline,
 * capture-limit, TLS and detector cases. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/pgsql.h"
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
	struct pgsql_parser *p = pgsql_parser__new(collect, out);

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
				CHECK_EQ_INT(pgsql_parser_feed(p, r->dir, &one), 0);
			}
		} else if (i == split && at > 0 && at < r->len) {
			struct stream_chunk a = c, b = c;
			a.len = at;
			b.data = r->data + at;
			b.len = r->len - at;
			CHECK_EQ_INT(pgsql_parser_feed(p, r->dir, &a), 0);
			CHECK_EQ_INT(pgsql_parser_feed(p, r->dir, &b), 0);
		} else {
			CHECK_EQ_INT(pgsql_parser_feed(p, r->dir, &c), 0);
		}
	}
	pgsql_parser_close(p, 1000 * (cap->n + 1));
	if (stats)
		pgsql_parser_stats(p, stats);
	pgsql_parser__free(p);
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

static void test_psql_capture(void)
{
	struct capture *cap = capture_load("pg_psql.cap");
	static struct sink s;
	struct db_parser_stats st;

	CHECK(cap != NULL);
	if (!cap)
		return;
	run_capture(cap, &s, SIZE_MAX - 1, 0, &st);
	CHECK_EQ_INT(s.n, 10);
	CHECK_EQ_INT(st.exchanges, 10);
	CHECK_EQ_INT(st.parse_errors, 0);
	CHECK_EQ_INT(st.unanswered, 0);
	CHECK_EQ_STR(s.ex[0].system, "postgresql");
	CHECK_EQ_STR(s.ex[0].namespace_, "postgres");
	CHECK_EQ_STR(s.ex[0].operation, "SELECT");
	CHECK_EQ_STR(s.ex[0].query_text, "SELECT ? AS one, ? AS greeting;");
	CHECK_EQ_INT(s.ex[0].rows, 1);
	CHECK_EQ_STR(s.ex[2].query_text,
	             "INSERT INTO items VALUES (?, ?), (?, ?) ON CONFLICT DO NOTHING;");
	CHECK_EQ_STR(s.ex[2].collection, "items");
	CHECK_EQ_STR(s.ex[3].query_text, "SELECT * FROM items WHERE id IN (?);");
	CHECK_EQ_INT(s.ex[3].rows, 2);
	CHECK_EQ_STR(s.ex[4].operation, "UPDATE");
	CHECK_EQ_INT(s.ex[4].rows, 1);
	/* the error */
	CHECK(s.ex[5].error);
	CHECK_EQ_STR(s.ex[5].status_code, "42P01");
	CHECK_EQ_STR(s.ex[5].error_message, "relation \"no_such_table\" does not exist");
	CHECK_EQ_STR(s.ex[5].collection, "no_such_table");
	for (size_t i = 0; i < s.n && i < MAX_EX; i++) {
		if (i != 5)
			CHECK(!s.ex[i].error);
		CHECK(s.ex[i].req_start_ns <= s.ex[i].req_end_ns);
		CHECK(s.ex[i].req_end_ns < s.ex[i].resp_start_ns);
		CHECK(s.ex[i].resp_start_ns <= s.ex[i].resp_end_ns);
	}
	/* COPY .. TO STDOUT: the data is skipped, the tag gives the rows */
	CHECK_EQ_STR(s.ex[8].operation, "COPY");
	CHECK_EQ_INT(s.ex[8].rows, 2);
	CHECK_EQ_STR(s.ex[9].operation, "DELETE");
	capture_free(cap);
}

static void check_pgbench(const char *name, bool literals)
{
	struct capture *cap = capture_load(name);
	static struct sink s;
	struct db_parser_stats st;
	static const char *const ops[] = {"BEGIN",  "UPDATE", "SELECT", "UPDATE",
	                                  "UPDATE", "INSERT", "END"};
	static const char *const colls[] = {"",
	                                    "pgbench_accounts",
	                                    "pgbench_accounts",
	                                    "pgbench_tellers",
	                                    "pgbench_branches",
	                                    "pgbench_history",
	                                    ""};

	CHECK(cap != NULL);
	if (!cap)
		return;
	run_capture(cap, &s, SIZE_MAX - 1, 0, &st);
	CHECK(s.n == 14 || s.n == 21);
	CHECK_EQ_INT(st.parse_errors, 0);
	CHECK_EQ_INT(st.unanswered, 0);
	CHECK_EQ_INT(st.orphan_responses, 0);
	for (size_t i = 0; i < s.n && i < MAX_EX; i++) {
		CHECK_EQ_STR(s.ex[i].operation, ops[i % 7]);
		CHECK_EQ_STR(s.ex[i].collection, colls[i % 7]);
		CHECK_EQ_INT(s.ex[i].rows, (i % 7 == 0 || i % 7 == 6) ? 0 : 1);
		CHECK(!s.ex[i].error);
	}
	if (literals)
		CHECK_EQ_STR(s.ex[1].query_text,
		             "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?;");
	else
		CHECK_EQ_STR(
		    s.ex[1].query_text,
		    "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;");
	capture_free(cap);
}

static void test_pgbench_captures(void)
{
	check_pgbench("pg_simple.cap", true);
	check_pgbench("pg_extended.cap", false);
	check_pgbench("pg_prepared.cap", false);
}

static void test_every_split_psql(void)
{
	check_every_split("pg_psql.cap");
}

static void test_every_split_extended(void)
{
	check_every_split("pg_extended.cap");
}

static void test_every_split_prepared(void)
{
	check_every_split("pg_prepared.cap");
}

/* --- hand-made messages ---------------------------------------------------- */

struct msgbuf {
	size_t len;
	uint8_t b[8192];
};

static void put_be32(struct msgbuf *m, uint32_t v)
{
	m->b[m->len++] = (uint8_t)(v >> 24);
	m->b[m->len++] = (uint8_t)(v >> 16);
	m->b[m->len++] = (uint8_t)(v >> 8);
	m->b[m->len++] = (uint8_t)v;
}

/* Appends a typed message whose body is `body` (n bytes; NULs allowed). */
static void msg(struct msgbuf *m, char type, const char *body, size_t n)
{
	m->b[m->len++] = (uint8_t)type;
	put_be32(m, (uint32_t)(n + 4));
	memcpy(m->b + m->len, body, n);
	m->len += n;
}

#define MSG(m, t, lit) msg((m), (t), (lit), sizeof(lit) - 1)

static int feed(struct pgsql_parser *p, enum stream_dir d, const struct msgbuf *m, uint64_t ts,
                size_t missing)
{
	struct stream_chunk c = {.data = m->b,
	                         .len = m->len,
	                         .missing = missing,
	                         .ts_first_ns = ts,
	                         .ts_last_ns = ts + 1};
	return pgsql_parser_feed(p, d, &c);
}

static void test_extended_pipeline_with_error(void)
{
	static struct sink s;
	struct pgsql_parser *p = pgsql_parser__new(collect, &s);
	struct msgbuf req = {0}, resp = {0};
	struct db_parser_stats st;

	memset(&s, 0, sizeof(s));
	/* named statement prepared once, then executed twice; a bad statement;
	 * one Sync for all */
	MSG(&req, 'P', "s1\0SELECT * FROM t WHERE a = 42 AND b = $1\0\0\0");
	MSG(&req, 'B', "\0s1\0\0\0\0\0\0\0");
	MSG(&req, 'E', "\0\0\0\0\0");
	MSG(&req, 'B', "\0s1\0\0\0\0\0\0\0");
	MSG(&req, 'E', "\0\0\0\0\0");
	MSG(&req, 'P', "\0INSERT INTO nope VALUES (1)\0\0\0");
	MSG(&req, 'B', "\0\0\0\0\0\0\0\0");
	MSG(&req, 'E', "\0\0\0\0\0");
	MSG(&req, 'B', "\0s1\0\0\0\0\0\0\0");
	MSG(&req, 'E', "\0\0\0\0\0");
	MSG(&req, 'S', "");
	CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 100, 0), 0);
	MSG(&resp, '1', "");
	MSG(&resp, '2', "");
	MSG(&resp, 'D', "\0\1\0\0\0\1x");
	MSG(&resp, 'D', "\0\1\0\0\0\1y");
	MSG(&resp, 'C', "SELECT 2\0");
	MSG(&resp, '2', "");
	MSG(&resp, 'C', "SELECT 0\0");
	MSG(&resp, 'E', "SERROR\0VERROR\0C42P01\0Mrelation \"nope\" does not exist\0\0");
	MSG(&resp, 'Z', "I");
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 200, 0), 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_STR(s.ex[0].query_text, "SELECT * FROM t WHERE a = ? AND b = $1");
	CHECK_EQ_STR(s.ex[0].collection, "t");
	CHECK_EQ_INT(s.ex[0].rows, 2);
	CHECK_EQ_INT(s.ex[0].req_start_ns, 100);
	CHECK_EQ_INT(s.ex[1].rows, 0);
	CHECK_EQ_STR(s.ex[2].operation, "INSERT");
	CHECK_EQ_STR(s.ex[2].query_text, "INSERT INTO nope VALUES (?)");
	CHECK(s.ex[2].error);
	CHECK_EQ_STR(s.ex[2].status_code, "42P01");
	pgsql_parser_stats(p, &st);
	CHECK_EQ_INT(st.unanswered, 1); /* the Execute skipped after the error */
	CHECK_EQ_INT(st.parse_errors, 0);

	/* the named statement survives, the unnamed one can be closed */
	req.len = 0;
	MSG(&req, 'C', "Ss1\0");
	MSG(&req, 'B', "\0s1\0\0\0\0\0\0\0");
	MSG(&req, 'E', "\0\0\0\0\0");
	MSG(&req, 'S', "");
	feed(p, STREAM_DIR_REQUEST, &req, 300, 0);
	resp.len = 0;
	MSG(&resp, '3', "");
	MSG(&resp, 'E', "SERROR\0C26000\0Mprepared statement \"s1\" does not exist\0\0");
	MSG(&resp, 'Z', "I");
	feed(p, STREAM_DIR_RESPONSE, &resp, 400, 0);
	CHECK_EQ_INT(s.n, 4);
	CHECK_EQ_STR(s.ex[3].query_text, "");
	CHECK_EQ_STR(s.ex[3].status_code, "26000");
	pgsql_parser__free(p);
}

static void test_startup_ssl_and_tls(void)
{
	static struct sink s;
	struct pgsql_parser *p = pgsql_parser__new(collect, &s);
	struct msgbuf req = {0}, resp = {0};

	memset(&s, 0, sizeof(s));
	put_be32(&req, 8);
	put_be32(&req, 80877103);
	CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 1, 0), 0);
	resp.b[0] = 'S';
	resp.len = 1;
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 2, 0), 0);
	/* TLS bytes follow: ignored, no error */
	req.len = 0;
	MSG(&req, 'Q', "SELECT 1\0");
	req.b[0] = 0x16;
	CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 3, 0), 0);
	pgsql_parser_close(p, 10);
	CHECK_EQ_INT(s.n, 0);
	pgsql_parser__free(p);

	/* 'N': the startup message follows in clear, database → namespace */
	p = pgsql_parser__new(collect, &s);
	req.len = 0;
	put_be32(&req, 8);
	put_be32(&req, 80877103);
	feed(p, STREAM_DIR_REQUEST, &req, 1, 0);
	resp.b[0] = 'N';
	resp.len = 1;
	feed(p, STREAM_DIR_RESPONSE, &resp, 2, 0);
	static const char params[] = "user\0alice\0database\0shop\0\0";
	req.len = 0;
	put_be32(&req, 8 + sizeof(params) - 1);
	put_be32(&req, 196608);
	memcpy(req.b + req.len, params, sizeof(params) - 1);
	req.len += sizeof(params) - 1;
	MSG(&req, 'Q', "DELETE FROM carts WHERE id = 'x'\0");
	CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 3, 0), 0);
	resp.len = 0;
	MSG(&resp, 'R', "\0\0\0\0");
	MSG(&resp, 'S', "TimeZone\0UTC\0");
	MSG(&resp, 'K', "\0\0\0\1\0\0\0\2");
	MSG(&resp, 'Z', "I");
	MSG(&resp, 'N', "SNOTICE\0Mhi\0\0");
	MSG(&resp, 'C', "DELETE 3\0");
	MSG(&resp, 'Z', "I");
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 4, 0), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_STR(s.ex[0].namespace_, "shop");
	CHECK_EQ_STR(s.ex[0].query_text, "DELETE FROM carts WHERE id = ?");
	CHECK_EQ_INT(s.ex[0].rows, 3);
	pgsql_parser__free(p);
}

static void test_capture_limit(void)
{
	static struct sink s;
	struct pgsql_parser *p = pgsql_parser__new(collect, &s);
	struct msgbuf req = {0}, resp = {0};
	struct db_parser_stats st;
	char big[6000];

	memset(&s, 0, sizeof(s));
	/* a Q longer than the capture: the rest is missing inside the body */
	memcpy(big, "INSERT INTO blobs VALUES ('", 27);
	memset(big + 27, 'a', sizeof(big) - 27 - 3);
	memcpy(big + sizeof(big) - 3, "')", 3); /* ends with NUL */
	msg(&req, 'Q', big, sizeof(big));
	size_t full = req.len;
	req.len = 4096;
	CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 10, full - 4096), 0);
	/* a big result: the capture loses the framing in the response */
	MSG(&resp, 'T', "\0\1a\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
	MSG(&resp, 'D', "\0\1\0\0\0\1x");
	resp.len += 3; /* then part of the next DataRow header */
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 20, 5000), -EBADMSG);
	/* chunks still in the cut response are skipped */
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 30, 0), 0);
	CHECK_EQ_INT(s.n, 0);
	/* the next request; its response resyncs */
	req.len = 0;
	MSG(&req, 'Q', "SELECT 2\0");
	feed(p, STREAM_DIR_REQUEST, &req, 40, 0);
	resp.len = 0;
	MSG(&resp, 'C', "SELECT 1\0");
	MSG(&resp, 'Z', "I");
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 50, 0), 0);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_STR(s.ex[0].operation, "INSERT");
	CHECK_EQ_STR(s.ex[0].collection, "blobs");
	CHECK_EQ_STR(s.ex[0].query_text, "INSERT INTO blobs VALUES (?");
	CHECK(s.ex[0].truncated);
	CHECK_EQ_INT(s.ex[0].req_end_ns, 11);
	CHECK_EQ_INT(s.ex[0].resp_start_ns, 20);
	CHECK_EQ_INT(s.ex[0].resp_end_ns, 31);
	CHECK(!s.ex[1].truncated);
	CHECK_EQ_STR(s.ex[1].query_text, "SELECT ?");
	CHECK_EQ_INT(s.ex[1].rows, 1);
	CHECK_EQ_INT(s.ex[1].resp_start_ns, 50);
	pgsql_parser_stats(p, &st);
	CHECK_EQ_INT(st.parse_errors, 1);
	pgsql_parser__free(p);
}

static void test_garbage_and_close(void)
{
	static struct sink s;
	struct pgsql_parser *p = pgsql_parser__new(collect, &s);
	struct msgbuf req = {0}, resp = {0};
	struct db_parser_stats st;

	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(pgsql_parser_feed(NULL, 0, NULL), -EINVAL);
	memcpy(req.b, "GET / HTTP/1.1\r\n", 16);
	req.len = 16;
	CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 1, 0), -EBADMSG);
	req.len = 0;
	MSG(&req, 'Q', "SELECT 1\0");
	MSG(&req, 'Q', "SELECT 2\0");
	CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 2, 0), 0);
	MSG(&resp, 'T', "\0\0");
	CHECK_EQ_INT(feed(p, STREAM_DIR_RESPONSE, &resp, 3, 0), 0);
	pgsql_parser_close(p, 99);
	CHECK_EQ_INT(s.n, 1); /* the first had started its response */
	CHECK(s.ex[0].truncated);
	CHECK_EQ_INT(s.ex[0].resp_end_ns, 99);
	pgsql_parser_stats(p, &st);
	CHECK_EQ_INT(st.unanswered, 1);
	CHECK_EQ_INT(st.parse_errors, 1);
	pgsql_parser__free(p);
	pgsql_parser__free(NULL);
}

static void test_bounded_statements_and_pending(void)
{
	static struct sink s;
	struct pgsql_parser *p = pgsql_parser__new(collect, &s);
	struct msgbuf req = {0};
	struct db_parser_stats st;
	char body[128];

	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 200; i++) {
		int n = snprintf(body, sizeof(body), "st%d%cSELECT %d FROM t%d", i, 0, i, i);
		req.len = 0;
		msg(&req, 'P', body, (size_t)n + 3);
		msg(&req, 'B', "\0st0\0\0\0\0\0\0", 10);
		msg(&req, 'E', "\0\0\0\0\0", 5);
		CHECK_EQ_INT(feed(p, STREAM_DIR_REQUEST, &req, 1, 0), 0);
	}
	pgsql_parser_stats(p, &st);
	CHECK_EQ_INT(st.unanswered, 200 - PGSQL_PENDING_MAX);
	pgsql_parser__free(p);
}

static void test_detect(void)
{
	static const uint8_t startup[] = {0, 0, 0, 9, 0, 3, 0, 0, 0};
	static const uint8_t ssl[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
	static const uint8_t query[] = {'Q', 0,   0,   0,   13,  'S', 'E',
	                                'L', 'E', 'C', 'T', ' ', '1', 0};
	static const uint8_t auth[] = {'R', 0, 0, 0, 8, 0, 0, 0, 0};
	static const uint8_t http[] = "GET / HTTP/1.1\r\n";
	static const uint8_t resp_n[] = {'N'};

	CHECK_EQ_INT(pgsql_detect(startup, sizeof(startup), STREAM_DIR_REQUEST), 1);
	CHECK_EQ_INT(pgsql_detect(ssl, sizeof(ssl), STREAM_DIR_REQUEST), 1);
	CHECK_EQ_INT(pgsql_detect(query, sizeof(query), STREAM_DIR_REQUEST), 1);
	CHECK_EQ_INT(pgsql_detect(query, sizeof(query), STREAM_DIR_RESPONSE), 0);
	CHECK_EQ_INT(pgsql_detect(auth, sizeof(auth), STREAM_DIR_RESPONSE), 1);
	CHECK_EQ_INT(pgsql_detect(resp_n, 1, STREAM_DIR_RESPONSE), 1);
	CHECK_EQ_INT(pgsql_detect(http, sizeof(http) - 1, STREAM_DIR_REQUEST), 0);
	CHECK_EQ_INT(pgsql_detect(http, sizeof(http) - 1, STREAM_DIR_RESPONSE), 0);
	CHECK_EQ_INT(pgsql_detect(NULL, 0, STREAM_DIR_REQUEST), 0);
	/* the real first bytes of the captures */
	struct capture *cap = capture_load("pg_psql.cap");
	if (cap) {
		CHECK_EQ_INT(pgsql_detect(cap->rec[0].data, cap->rec[0].len, cap->rec[0].dir), 1);
		CHECK_EQ_INT(pgsql_detect(cap->rec[1].data, cap->rec[1].len, cap->rec[1].dir), 1);
	}
	capture_free(cap);
}

int main(void)
{
	RUN(test_psql_capture);
	RUN(test_pgbench_captures);
	RUN(test_every_split_psql);
	RUN(test_every_split_extended);
	RUN(test_every_split_prepared);
	RUN(test_extended_pipeline_with_error);
	RUN(test_startup_ssl_and_tls);
	RUN(test_capture_limit);
	RUN(test_garbage_and_close);
	RUN(test_bounded_statements_and_pending);
	RUN(test_detect);
	return unit_summary("test_pgsql");
}
