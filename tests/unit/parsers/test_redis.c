/* test_redis.c — Redis parser tests: a real RESP2/RESP3 session and redis-benchmark -P pipelines
 * (recorded through a loopback proxy) fed whole, cut at every byte boundary
 * and byte by byte, plus hand-made push, error, capture-limit and detector
 * cases. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/redis.h"
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
	       a->resp_start_ns == b->resp_start_ns && a->resp_end_ns == b->resp_end_ns &&
	       a->tx_outcome == b->tx_outcome && a->tx_commands == b->tx_commands &&
	       a->tx_failed == b->tx_failed;
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
	struct redis_parser *p = redis_parser__new(collect, out);

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
				CHECK_EQ_INT(redis_parser_feed(p, r->dir, &one), 0);
			}
		} else if (i == split && at > 0 && at < r->len) {
			struct stream_chunk a = c, b = c;
			a.len = at;
			b.data = r->data + at;
			b.len = r->len - at;
			CHECK_EQ_INT(redis_parser_feed(p, r->dir, &a), 0);
			CHECK_EQ_INT(redis_parser_feed(p, r->dir, &b), 0);
		} else {
			CHECK_EQ_INT(redis_parser_feed(p, r->dir, &c), 0);
		}
	}
	redis_parser_close(p, 1000 * (cap->n + 1));
	if (stats)
		redis_parser_stats(p, stats);
	redis_parser__free(p);
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

static void test_session_capture(void)
{
	static const char *const ops[] = {
	    "PING",      "SET",   "GET",         "LPUSH", "DEL",    "RPUSH", "LRANGE",
	    "NOSUCHCMD", "INCR",  "INCR",        "GET",   "CONFIG", "MULTI", "SET",
	    "INCR",      "LPUSH", "EXEC",        "PING",  "HELLO",  "HSET",  "HGETALL",
	    "SMEMBERS",  "SADD",  "SMEMBERS",    "ZADD",  "ZSCORE", "GET",   "EXISTS",
	    "SUBSCRIBE", "PING",  "UNSUBSCRIBE", "GET"};
	struct capture *cap = capture_load("redis_session.cap");
	static struct sink s;
	struct db_parser_stats st;

	CHECK(cap != NULL);
	if (!cap)
		return;
	run_capture(cap, &s, SIZE_MAX - 1, 0, &st);
	CHECK_EQ_INT(s.n, 32);
	CHECK_EQ_INT(st.parse_errors, 0);
	CHECK_EQ_INT(st.unanswered, 0);
	CHECK_EQ_INT(st.orphan_responses, 0);
	for (size_t i = 0; i < s.n && i < 32; i++) {
		CHECK_EQ_STR(s.ex[i].system, "redis");
		CHECK_EQ_STR(s.ex[i].operation, ops[i]);
		CHECK_EQ_STR(s.ex[i].query_text, "");
		CHECK(s.ex[i].error == (i == 3 || i == 7 || i == 15 || i == 21));
		CHECK(s.ex[i].req_end_ns < s.ex[i].resp_start_ns);
		CHECK(!s.ex[i].truncated);
	}
	CHECK_EQ_STR(s.ex[3].status_code, "WRONGTYPE");
	CHECK_EQ_STR(s.ex[7].status_code, "ERR");
	CHECK(strncmp(s.ex[7].error_message, "ERR unknown command", 19) == 0);
	CHECK_EQ_STR(s.ex[7].error_message, "ERR unknown command"); /* quoted arguments cut */
	/* MULTI SET INCR LPUSH EXEC in one write; EXEC's reply *3 +OK :2
	 * -WRONGTYPE: the LPUSH failed inside the transaction, EXEC did not */
	CHECK_EQ_STR(s.ex[15].status_code, "WRONGTYPE");
	CHECK_EQ_INT(s.ex[16].tx_outcome, DB_TX_COMMITTED);
	CHECK_EQ_INT(s.ex[16].tx_commands, 3);
	CHECK_EQ_INT(s.ex[16].tx_failed, 1);
	for (int i = 13; i <= 15; i++) /* the queued commands end with EXEC's reply */
		CHECK_EQ_INT(s.ex[i].resp_start_ns, s.ex[16].resp_start_ns);
	for (size_t i = 0; i < s.n && i < 32; i++)
		CHECK(i == 16 || s.ex[i].tx_outcome == DB_TX_NONE);
	/* RESP3 error */
	CHECK_EQ_STR(s.ex[21].status_code, "WRONGTYPE");
	/* the pipeline: four commands sent in one write, answered in one */
	CHECK_EQ_INT(s.ex[8].req_start_ns, s.ex[11].req_start_ns);
	CHECK_EQ_INT(s.ex[8].resp_end_ns, s.ex[11].resp_end_ns);
	/* SUBSCRIBE ch1 ch2 ends with its second confirmation; the message pushed
	 * after it is skipped and the PING pairs with its own reply */
	CHECK_EQ_INT(s.ex[29].req_start_ns, s.ex[29].resp_start_ns - 1000);
	/* nothing of the arguments is kept anywhere */
	for (size_t i = 0; i < s.n && i < 32; i++)
		CHECK(strstr(s.ex[i].error_message, "secret") == NULL);
	capture_free(cap);
}

static void test_benchmark_captures(void)
{
	static const char *const files[] = {"redis_bench_set.cap", "redis_bench_get.cap"};
	static const char *const ops[] = {"SET", "GET"};

	for (int f = 0; f < 2; f++) {
		struct capture *cap = capture_load(files[f]);
		static struct sink s;
		CHECK(cap != NULL);
		if (!cap)
			return;
		run_capture(cap, &s, SIZE_MAX - 1, 0, NULL);
		CHECK_EQ_INT(s.n, 12);
		for (size_t i = 0; i < s.n && i < 12; i++) {
			CHECK_EQ_STR(s.ex[i].operation, ops[f]);
			/* -P 4: four commands per write */
			CHECK_EQ_INT(s.ex[i].req_start_ns, 1000 + 2000 * (i / 4));
		}
		capture_free(cap);
	}
}

static void test_every_split_session(void)
{
	check_every_split("redis_session.cap");
}

static void test_every_split_bench(void)
{
	check_every_split("redis_bench_set.cap");
}

/* --- hand-made streams ------------------------------------------------------- */

static int feed_str(struct redis_parser *p, enum stream_dir d, const char *s, uint64_t ts,
                    size_t missing)
{
	struct stream_chunk c = {.data = (const uint8_t *)s,
	                         .len = strlen(s),
	                         .missing = missing,
	                         .ts_first_ns = ts,
	                         .ts_last_ns = ts + 1};
	return redis_parser_feed(p, d, &c);
}

static void test_resp3_types_and_attributes(void)
{
	static struct sink s;
	struct redis_parser *p = redis_parser__new(collect, &s);

	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 12; i++)
		feed_str(p, STREAM_DIR_REQUEST, "*1\r\n$4\r\nPING\r\n", 1, 0);
	CHECK_EQ_INT(
	    feed_str(p, STREAM_DIR_RESPONSE,
	             "_\r\n,3.14\r\n#t\r\n(3492890328409238509324850943850943825024385\r\n"
	             "=15\r\ntxt:Some string\r\n%2\r\n+a\r\n:1\r\n$1\r\nb\r\n*2\r\n:1\r\n:2\r\n"
	             "~2\r\n+x\r\n+y\r\n|1\r\n+ttl\r\n:3\r\n+OK\r\n"
	             ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"
	             "!21\r\nSYNTAX invalid syntax\r\n*-1\r\n$-1\r\n*0\r\n*1\r\n*1\r\n*0\r\n",
	             2, 0),
	    0);
	struct db_parser_stats st;
	CHECK_EQ_INT(s.n, 12);
	CHECK(s.ex[8].error); /* the blob error; the push before it was skipped */
	CHECK_EQ_STR(s.ex[8].status_code, "SYNTAX");
	CHECK_EQ_STR(s.ex[8].error_message, "SYNTAX invalid syntax");
	for (int i = 0; i < 12; i++)
		CHECK(s.ex[i].error == (i == 8));
	/* the map took the array as its fourth element; the last (nested) array
	 * is one reply too many */
	redis_parser_stats(p, &st);
	CHECK_EQ_INT(st.orphan_responses, 1);
	CHECK_EQ_INT(st.parse_errors, 0);
	redis_parser__free(p);
}

static void test_inline_and_errors(void)
{
	static struct sink s;
	struct redis_parser *p = redis_parser__new(collect, &s);
	struct db_parser_stats st;

	memset(&s, 0, sizeof(s));
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_REQUEST, "\r\nping\r\nclient setname x\n", 1, 0), 0);
	CHECK_EQ_INT(
	    feed_str(p, STREAM_DIR_RESPONSE, "+PONG\r\n-NOAUTH Authentication required.\r\n", 2, 0),
	    0);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_STR(s.ex[0].operation, "PING");
	CHECK_EQ_STR(s.ex[1].operation, "CLIENT");
	CHECK_EQ_STR(s.ex[1].status_code, "NOAUTH");
	/* a reply that is not RESP */
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_REQUEST, "*1\r\n$3\r\nGET\r\n", 3, 0), 0);
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_RESPONSE, "HTTP/1.1 200 OK\r\n", 4, 0), -EBADMSG);
	/* bad bulk header in a request */
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_REQUEST, "*1\r\n$x\r\n", 5, 0), -EBADMSG);
	redis_parser_stats(p, &st);
	CHECK_EQ_INT(st.parse_errors, 2);
	/* the GET whose reply was garbage is reported cut short at close */
	redis_parser_close(p, 10);
	redis_parser_stats(p, &st);
	CHECK_EQ_INT(st.unanswered, 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_STR(s.ex[2].operation, "GET");
	CHECK(s.ex[2].truncated);
	CHECK_EQ_INT(s.ex[2].resp_end_ns, 5);
	/* an orphan reply */
	redis_parser__free(p);

	p = redis_parser__new(collect, &s);
	feed_str(p, STREAM_DIR_RESPONSE, "+OK\r\n", 1, 0);
	redis_parser_stats(p, &st);
	CHECK_EQ_INT(st.orphan_responses, 1);
	redis_parser__free(p);
	redis_parser__free(NULL);
	CHECK(redis_parser__new(NULL, NULL) == NULL);
	CHECK_EQ_INT(redis_parser_feed(NULL, 0, NULL), -EINVAL);
}

static void test_capture_limit(void)
{
	static struct sink s;
	struct redis_parser *p = redis_parser__new(collect, &s);
	char req[128];
	struct db_parser_stats st;

	memset(&s, 0, sizeof(s));
	/* a big SET: the value is cut by the capture inside its bulk data */
	snprintf(req, sizeof(req), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10000\r\nabcdef");
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_REQUEST, req, 1, 10000 - 6 + 2), 0);
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_RESPONSE, "+OK\r\n", 2, 0), 0);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_STR(s.ex[0].operation, "SET");
	/* a big array reply: the capture ends between elements */
	feed_str(p, STREAM_DIR_REQUEST, "*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$2\r\n-1\r\n",
	         3, 0);
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_RESPONSE, "*1000\r\n$1\r\na\r\n$1\r\n", 4, 9000),
	             -EBADMSG);
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_RESPONSE, "$1\r\nb\r\n$1\r\nc\r\n", 6, 0), 0);
	CHECK_EQ_INT(s.n, 1);
	feed_str(p, STREAM_DIR_REQUEST, "*1\r\n$4\r\nPING\r\n", 8, 0);
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_RESPONSE, "+PONG\r\n", 9, 0), 0);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_STR(s.ex[1].operation, "LRANGE");
	CHECK(s.ex[1].truncated);
	CHECK_EQ_INT(s.ex[1].resp_start_ns, 4);
	CHECK_EQ_INT(s.ex[1].resp_end_ns, 7);
	CHECK_EQ_STR(s.ex[2].operation, "PING");
	CHECK(!s.ex[2].truncated);
	redis_parser_stats(p, &st);
	CHECK_EQ_INT(st.parse_errors, 1);
	CHECK_EQ_INT(st.unanswered, 0);
	redis_parser__free(p);
}

static void test_depth_and_pending_bounds(void)
{
	static struct sink s;
	struct redis_parser *p = redis_parser__new(collect, &s);
	struct db_parser_stats st;
	char deep[4 * (REDIS_DEPTH_MAX + 2) + 1];

	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 300; i++)
		feed_str(p, STREAM_DIR_REQUEST, "*1\r\n$4\r\nPING\r\n", 1, 0);
	redis_parser_stats(p, &st);
	CHECK_EQ_INT(st.unanswered, 300 - REDIS_PENDING_MAX);
	for (int i = 0; i < REDIS_DEPTH_MAX + 2; i++)
		memcpy(deep + 4 * i, "*1\r\n", 4);
	deep[sizeof(deep) - 1] = '\0';
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_RESPONSE, deep, 2, 0), -EBADMSG);
	redis_parser__free(p);
}

/* --- transactions -------------------------------------------------------------- */

/* Feeds req then resp to a new parser, resp whole or (every_byte) one byte at
 * a time; then closes it. */
static void run_tx(const char *req, const char *resp, bool every_byte, struct sink *out,
                   struct db_parser_stats *st)
{
	struct redis_parser *p = redis_parser__new(collect, out);

	memset(out, 0, sizeof(*out));
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_REQUEST, req, 10, 0), 0);
	if (every_byte) {
		for (size_t i = 0; resp[i]; i++) {
			struct stream_chunk c = {.data = (const uint8_t *)resp + i,
			                         .len = 1,
			                         .ts_first_ns = 100 + i,
			                         .ts_last_ns = 100 + i};
			CHECK_EQ_INT(redis_parser_feed(p, STREAM_DIR_RESPONSE, &c), 0);
		}
	} else {
		CHECK_EQ_INT(feed_str(p, STREAM_DIR_RESPONSE, resp, 100, 0), 0);
	}
	redis_parser_close(p, 1000);
	redis_parser_stats(p, st);
	redis_parser__free(p);
}

/* Both feeds give the same exchanges; returns them in *s. */
static void check_tx(const char *req, const char *resp, struct sink *s, struct db_parser_stats *st)
{
	static struct sink bytes;
	struct db_parser_stats st2;

	run_tx(req, resp, true, &bytes, &st2);
	run_tx(req, resp, false, s, st);
	CHECK_EQ_INT(bytes.n, s->n);
	for (size_t i = 0; i < s->n && i < bytes.n && i < MAX_EX; i++) {
		CHECK_EQ_STR(bytes.ex[i].operation, s->ex[i].operation);
		CHECK(bytes.ex[i].error == s->ex[i].error);
		CHECK_EQ_STR(bytes.ex[i].status_code, s->ex[i].status_code);
		CHECK_EQ_STR(bytes.ex[i].error_message, s->ex[i].error_message);
		CHECK_EQ_INT(bytes.ex[i].tx_outcome, s->ex[i].tx_outcome);
		CHECK_EQ_INT(bytes.ex[i].tx_commands, s->ex[i].tx_commands);
		CHECK_EQ_INT(bytes.ex[i].tx_failed, s->ex[i].tx_failed);
	}
	CHECK_EQ_INT(st->parse_errors, 0);
	CHECK_EQ_INT(st->unanswered, 0);
	CHECK_EQ_INT(st->orphan_responses, 0);
}

static void check_ops(const struct sink *s, const char *const *ops, size_t n)
{
	CHECK_EQ_INT(s->n, n);
	for (size_t i = 0; i < n && i < s->n; i++)
		CHECK_EQ_STR(s->ex[i].operation, ops[i]);
}

#define TX_REQ                                                                                     \
	"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$4\r\nINCR\r\n$"      \
	"1\r\nk\r\n"                                                                               \
	"*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$2\r\n-1\r\n*1\r\n$4\r\nEXEC\r\n"

/* A command failing inside EXEC: its own exchange is the error, with the
 * element's prefix and message; EXEC ran, so it is not one (Redis counts the
 * error once, against the command: errorstat and failed_calls of INCR). */
static void test_tx_exec_with_error(void)
{
	static const char *const ops[] = {"MULTI", "SET", "INCR", "LRANGE", "EXEC"};
	static const char *const replies[] = {
	    /* RESP2 */
	    "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
	    "*3\r\n+OK\r\n-ERR value is not an integer or out of "
	    "range\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n",
	    /* RESP3, with a blob error and an attribute before an element */
	    "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
	    "*3\r\n+OK\r\n|1\r\n+ttl\r\n:3\r\n!43\r\nERR value is not an integer or out of "
	    "range\r\n"
	    "*2\r\n$1\r\na\r\n$1\r\nb\r\n",
	};
	static struct sink s;
	struct db_parser_stats st;

	for (int v = 0; v < 2; v++) {
		check_tx(TX_REQ, replies[v], &s, &st);
		check_ops(&s, ops, 5);
		if (s.n != 5)
			continue;
		for (int i = 0; i < 5; i++)
			CHECK(s.ex[i].error == (i == 2));
		CHECK_EQ_STR(s.ex[2].status_code, "ERR");
		CHECK_EQ_STR(s.ex[2].error_message, "ERR value is not an integer or out of range");
		CHECK_EQ_INT(s.ex[4].tx_outcome, DB_TX_COMMITTED);
		CHECK_EQ_INT(s.ex[4].tx_commands, 3);
		CHECK_EQ_INT(s.ex[4].tx_failed, 1);
		CHECK_EQ_STR(s.ex[4].status_code, "");
		/* queued commands: their response is EXEC's reply, not +QUEUED */
		for (int i = 1; i <= 3; i++) {
			CHECK_EQ_INT(s.ex[i].resp_start_ns, s.ex[4].resp_start_ns);
			CHECK_EQ_INT(s.ex[i].tx_outcome, DB_TX_NONE);
		}
	}
	/* RESP2 byte by byte: the element ends where its bytes end */
	run_tx(TX_REQ, replies[0], true, &s, &st);
	CHECK_EQ_INT(s.ex[1].resp_end_ns, 100 + strlen("+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n") +
	                                      strlen("*3\r\n+OK\r\n") - 1);
	CHECK_EQ_INT(s.ex[4].resp_end_ns, 100 + strlen(replies[0]) - 1);
}

/* DISCARD: nothing ran; the queued commands are not reported, DISCARD says
 * how many there were. RESET discards too. */
static void test_tx_discard(void)
{
	static const char *const ops[] = {"MULTI", "DISCARD", "GET", "MULTI", "RESET", "PING"};
	static const char *const replies[] = {
	    "+OK\r\n+QUEUED\r\n+QUEUED\r\n+OK\r\n$-1\r\n+OK\r\n+QUEUED\r\n+RESET\r\n+PONG\r\n",
	    "+OK\r\n+QUEUED\r\n+QUEUED\r\n+OK\r\n_\r\n+OK\r\n+QUEUED\r\n+RESET\r\n+PONG\r\n",
	};
	static struct sink s;
	struct db_parser_stats st;
	const char *req = "MULTI\r\nSET k v\r\nINCR k\r\nDISCARD\r\nGET k\r\n"
	                  "MULTI\r\nSET k w\r\nRESET\r\nPING\r\n";

	for (int v = 0; v < 2; v++) {
		check_tx(req, replies[v], &s, &st);
		check_ops(&s, ops, 6);
		if (s.n != 6)
			continue;
		for (int i = 0; i < 6; i++)
			CHECK(!s.ex[i].error);
		CHECK_EQ_INT(s.ex[1].tx_outcome, DB_TX_DISCARDED);
		CHECK_EQ_INT(s.ex[1].tx_commands, 2);
		CHECK_EQ_INT(s.ex[4].tx_outcome, DB_TX_NONE);
		CHECK_EQ_INT(st.exchanges, 6);
	}
	/* DISCARD without MULTI: an error, no transaction */
	check_tx("DISCARD\r\n", "-ERR DISCARD without MULTI\r\n", &s, &st);
	CHECK_EQ_INT(s.n, 1);
	CHECK(s.ex[0].error);
	CHECK_EQ_INT(s.ex[0].tx_outcome, DB_TX_NONE);
}

/* WATCH abort: EXEC answers nil (RESP2 *-1, RESP3 _); nothing ran and Redis
 * reports no error, so EXEC is not one: tx_outcome WATCH_ABORTED. */
static void test_tx_watch_abort(void)
{
	static const char *const ops[] = {"WATCH", "MULTI", "EXEC", "GET"};
	static const char *const replies[] = {
	    "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n*-1\r\n$1\r\n1\r\n",
	    "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n_\r\n$1\r\n1\r\n",
	};
	static struct sink s;
	struct db_parser_stats st;
	const char *req = "*2\r\n$5\r\nWATCH\r\n$1\r\nw\r\n*1\r\n$5\r\nMULTI\r\n"
	                  "*3\r\n$3\r\nSET\r\n$1\r\nw\r\n$1\r\n2\r\n*2\r\n$4\r\nINCR\r\n$1\r\nw\r\n"
	                  "*1\r\n$4\r\nEXEC\r\n*2\r\n$3\r\nGET\r\n$1\r\nw\r\n";

	for (int v = 0; v < 2; v++) {
		check_tx(req, replies[v], &s, &st);
		check_ops(&s, ops, 4);
		if (s.n != 4)
			continue;
		for (int i = 0; i < 4; i++)
			CHECK(!s.ex[i].error);
		CHECK_EQ_INT(s.ex[2].tx_outcome, DB_TX_WATCH_ABORTED);
		CHECK_EQ_INT(s.ex[2].tx_commands, 2);
		CHECK_EQ_INT(s.ex[2].tx_failed, 0);
	}
}

/* A command rejected when queued (unknown command, wrong arity) is an error
 * exchange at once; EXEC then answers -EXECABORT: an error, and nothing ran
 * (the command queued before it is not reported). Two errors, as Redis's
 * errorstats count them (ERR and EXECABORT). */
static void test_tx_execabort(void)
{
	static const char *const ops[] = {"MULTI", "FOO", "EXEC", "PING"};
	static const char *const replies[] = {
	    "+OK\r\n+QUEUED\r\n-ERR unknown command 'FOO', with args beginning with: 'secret' \r\n"
	    "-EXECABORT Transaction discarded because of previous errors.\r\n+PONG\r\n",
	    "+OK\r\n+QUEUED\r\n!53\r\nERR unknown command 'FOO', with args beginning with: \r\n"
	    "!59\r\nEXECABORT Transaction discarded because of previous errors.\r\n+PONG\r\n",
	};
	static struct sink s;
	struct db_parser_stats st;
	const char *req = "MULTI\r\nGET k\r\nFOO secret\r\nEXEC\r\nPING\r\n";

	for (int v = 0; v < 2; v++) {
		check_tx(req, replies[v], &s, &st);
		check_ops(&s, ops, 4);
		if (s.n != 4)
			continue;
		for (int i = 0; i < 4; i++)
			CHECK(s.ex[i].error == (i == 1 || i == 2));
		CHECK_EQ_STR(s.ex[1].status_code, "ERR");
		CHECK_EQ_STR(s.ex[1].error_message, "ERR unknown command");
		CHECK_EQ_STR(s.ex[2].status_code, "EXECABORT");
		CHECK_EQ_INT(s.ex[2].tx_outcome, DB_TX_ABORTED);
		CHECK_EQ_INT(s.ex[2].tx_commands, 1);
	}
	/* EXEC without MULTI: an error, no transaction */
	check_tx("EXEC\r\n", "-ERR EXEC without MULTI\r\n", &s, &st);
	CHECK_EQ_INT(s.n, 1);
	CHECK(s.ex[0].error);
	CHECK_EQ_INT(s.ex[0].tx_outcome, DB_TX_NONE);
}

/* Queued commands still waiting when the connection closes, or when the
 * parser started after MULTI (EXEC's array has more elements than it saw
 * queued), or when EXEC's reply is lost. */
static void test_tx_edges(void)
{
	static struct sink s;
	struct db_parser_stats st;

	run_tx("MULTI\r\nGET k\r\n", "+OK\r\n+QUEUED\r\n", false, &s, &st);
	CHECK_EQ_INT(s.n, 1);
	CHECK_EQ_INT(st.unanswered, 1);
	/* joined mid-transaction: the first element's command was never seen */
	run_tx("INCR k\r\nEXEC\r\n", "+QUEUED\r\n*2\r\n:1\r\n:2\r\n", false, &s, &st);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_STR(s.ex[0].operation, "INCR");
	CHECK_EQ_STR(s.ex[1].operation, "EXEC");
	CHECK_EQ_INT(s.ex[1].tx_commands, 1);
	CHECK_EQ_INT(st.orphan_responses, 0);
	/* EXEC's reply cut by a capture limit: the rest of the queue is dropped */
	struct redis_parser *p = redis_parser__new(collect, &s);
	memset(&s, 0, sizeof(s));
	feed_str(p, STREAM_DIR_REQUEST, "MULTI\r\nGET a\r\nGET b\r\nEXEC\r\nPING\r\n", 1, 0);
	feed_str(p, STREAM_DIR_RESPONSE, "+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n$5000\r\nxx", 2, 0);
	CHECK_EQ_INT(feed_str(p, STREAM_DIR_RESPONSE, "x", 3, 6000), -EBADMSG);
	redis_parser_stats(p, &st);
	CHECK_EQ_INT(st.unanswered, 2);
	CHECK_EQ_INT(s.n, 1); /* MULTI */
	redis_parser_close(p, 5);
	CHECK_EQ_INT(s.n, 2);
	CHECK_EQ_STR(s.ex[1].operation, "EXEC");
	CHECK(s.ex[1].truncated);
	redis_parser__free(p);
}

static void test_detect(void)
{
	const uint8_t *b;

	b = (const uint8_t *)"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
	CHECK_EQ_INT(redis_detect(b, strlen((const char *)b), STREAM_DIR_REQUEST), 1);
	b = (const uint8_t *)"PING\r\n";
	CHECK_EQ_INT(redis_detect(b, 6, STREAM_DIR_REQUEST), 1);
	b = (const uint8_t *)"GET / HTTP/1.1\r\n";
	CHECK_EQ_INT(redis_detect(b, 16, STREAM_DIR_REQUEST), 1); /* "GET " looks inline */
	b = (const uint8_t *)"POST / HTTP/1.1\r\n";
	CHECK_EQ_INT(redis_detect(b, 17, STREAM_DIR_REQUEST), 0);
	b = (const uint8_t *)"+PONG\r\n";
	CHECK_EQ_INT(redis_detect(b, 7, STREAM_DIR_RESPONSE), 1);
	b = (const uint8_t *)"HTTP/1.1 200 OK\r\n";
	CHECK_EQ_INT(redis_detect(b, 17, STREAM_DIR_RESPONSE), 0);
	b = (const uint8_t *)"\0\0\0\x08\x04\xd2\x16\x2f";
	CHECK_EQ_INT(redis_detect(b, 8, STREAM_DIR_REQUEST), 0);
	CHECK_EQ_INT(redis_detect(NULL, 0, STREAM_DIR_RESPONSE), 0);
}

int main(void)
{
	RUN(test_session_capture);
	RUN(test_benchmark_captures);
	RUN(test_every_split_session);
	RUN(test_every_split_bench);
	RUN(test_resp3_types_and_attributes);
	RUN(test_inline_and_errors);
	RUN(test_capture_limit);
	RUN(test_depth_and_pending_bounds);
	RUN(test_tx_exec_with_error);
	RUN(test_tx_discard);
	RUN(test_tx_watch_abort);
	RUN(test_tx_execabort);
	RUN(test_tx_edges);
	RUN(test_detect);
	return unit_summary("test_redis");
}
