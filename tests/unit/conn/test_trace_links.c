/* test_trace_links.c — span ids per request: thread causality, ambiguity on
 * event loops, same-node pairing by mirrored tuple, traceparent precedence,
 * and the fallback for exchanges without a request hook. */
#include <string.h>

#include "conn/conn_table.h"
#include "conn/sampler.h"
#include "conn/trace_id.h"
#include "conn/trace_links.h"
#include "unit.h"

struct fixture {
	struct conn_table *conns;
	struct trace_links *tl;
	struct id_gen ids;
	struct sampler sampler;
};

static void on_release(void *ctx, struct conn *c)
{
	trace_links_forget_conn(((struct fixture *)ctx)->tl, c);
}

static void setup(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	id_gen_seed_fixed(&f->ids, 7);
	sampler_init(&f->sampler, NULL, NULL);
	f->conns = conn_table__new(64, on_release, f);
	f->tl = trace_links__new(f->conns, &f->ids, &f->sampler);
}

static void teardown(struct fixture *f)
{
	conn_table__free(f->conns);
	trace_links__free(f->tl);
}

/* A connection of pid/fd with the given role and ports on 127.0.0.1. */
static struct conn *conn_of(struct fixture *f, uint32_t pid, int fd, uint8_t role, uint16_t lport,
                            uint16_t rport)
{
	struct pscope_conn_ref r = {0};

	r.pid = pid;
	r.fd = fd;
	r.role = role;
	r.family = 2;
	r.sock_id = (uint64_t)pid << 16 | (uint64_t)fd;
	r.local_addr[0] = r.remote_addr[0] = 127;
	r.local_addr[3] = r.remote_addr[3] = 1;
	r.local_port = lport;
	r.remote_port = rport;
	return conn_table_upsert(f->conns, &r, 1);
}

static const uint8_t zero8[8];

/* curl(pid 10) → front(pid 20, thread 21) → back(pid 30) → redis (remote). */
static void test_chain_links(void)
{
	struct fixture f;
	struct link_ctx curl_cl, front_sv, front_cl, back_sv, back_db;

	setup(&f);
	struct conn *c_curl = conn_of(&f, 10, 3, PSCOPE_ROLE_CLIENT, 40000, 8001);
	struct conn *c_front_sv = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 8001, 40000);
	struct conn *c_front_cl = conn_of(&f, 20, 6, PSCOPE_ROLE_CLIENT, 40001, 8002);
	struct conn *c_back_sv = conn_of(&f, 30, 7, PSCOPE_ROLE_SERVER, 8002, 40001);
	struct conn *c_back_db = conn_of(&f, 30, 8, PSCOPE_ROLE_CLIENT, 40002, 6379);

	trace_links_request(f.tl, c_curl, 11, 100, 0, "");
	trace_links_request(f.tl, c_front_sv, 21, 101, 0, "");
	trace_links_request(f.tl, c_front_cl, 21, 102, 0, "");
	trace_links_request(f.tl, c_back_sv, 31, 103, 0, "");
	/* the database span has no request hook: decided at completion on thread 31 */
	trace_links_complete(f.tl, c_back_db, 31, false, 0, NULL, &back_db);
	trace_links_complete(f.tl, c_back_sv, 31, true, 0, "", &back_sv);
	trace_links_complete(f.tl, c_front_cl, 21, true, 0, "", &front_cl);
	trace_links_complete(f.tl, c_front_sv, 21, true, 0, "", &front_sv);
	trace_links_complete(f.tl, c_curl, 11, true, 0, "", &curl_cl);

	CHECK(!memcmp(curl_cl.parent_span_id, zero8, 8)); /* root */
	CHECK(!memcmp(front_sv.parent_span_id, curl_cl.span_id, 8));
	CHECK(!memcmp(front_cl.parent_span_id, front_sv.span_id, 8));
	CHECK(!memcmp(back_sv.parent_span_id, front_cl.span_id, 8));
	CHECK(!memcmp(back_db.parent_span_id, back_sv.span_id, 8));
	CHECK(!memcmp(back_db.trace_id, curl_cl.trace_id, 16));
	CHECK(!memcmp(back_sv.trace_id, curl_cl.trace_id, 16));

	/* the next request on the same keep-alive connections is a new trace */
	struct link_ctx c2, s2;
	trace_links_request(f.tl, c_curl, 11, 200, 1, "");
	trace_links_request(f.tl, c_front_sv, 21, 201, 1, "");
	trace_links_complete(f.tl, c_front_sv, 21, true, 1, "", &s2);
	trace_links_complete(f.tl, c_curl, 11, true, 1, "", &c2);
	CHECK(!memcmp(s2.parent_span_id, c2.span_id, 8));
	CHECK(memcmp(c2.trace_id, curl_cl.trace_id, 16) != 0);

	/* after the server answered, the thread's calls are roots again */
	struct link_ctx late;
	trace_links_complete(f.tl, c_front_cl, 21, false, 0, NULL, &late);
	CHECK(!memcmp(late.parent_span_id, zero8, 8));
	teardown(&f);
}

/* An event loop with two requests in flight on one thread links nothing. */
static void test_ambiguous_thread(void)
{
	struct fixture f;
	struct link_ctx out, a, b;
	struct trace_links_stats st;

	setup(&f);
	struct conn *s1 = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 8001, 50000);
	struct conn *s2 = conn_of(&f, 20, 6, PSCOPE_ROLE_SERVER, 8001, 50001);
	struct conn *cl = conn_of(&f, 20, 7, PSCOPE_ROLE_CLIENT, 50002, 9000);

	trace_links_request(f.tl, s1, 21, 1, 0, "");
	trace_links_request(f.tl, s2, 21, 2, 0, "");
	trace_links_request(f.tl, cl, 21, 3, 0, "");
	trace_links_complete(f.tl, cl, 21, true, 0, "", &out);
	CHECK(!memcmp(out.parent_span_id, zero8, 8));
	trace_links_get_stats(f.tl, &st);
	CHECK_EQ_INT(st.ambiguous, 1);
	/* once one is answered, the other is unambiguous */
	trace_links_complete(f.tl, s1, 21, true, 0, "", &a);
	trace_links_request(f.tl, cl, 21, 4, 1, "");
	trace_links_complete(f.tl, cl, 21, true, 1, "", &out);
	trace_links_complete(f.tl, s2, 21, true, 0, "", &b);
	CHECK(!memcmp(out.parent_span_id, b.span_id, 8));
	teardown(&f);
}

/* Go: the server request is remembered under its goroutine, so a database
 * call from that goroutine on another thread links; a call from a worker
 * thread serving nothing links to the process's only server request, and to
 * nothing once the process has two in flight. */
static void test_goroutine_and_process_fallback(void)
{
	struct fixture f;
	struct link_ctx out, sv;
	const uint64_t g1 = (uint64_t)(0x1234 | LINK_GOROUTINE_BIT) << 32;

	setup(&f);
	struct conn *s1 = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 8001, 50000);
	struct conn *s2 = conn_of(&f, 20, 6, PSCOPE_ROLE_SERVER, 8001, 50001);
	struct conn *db = conn_of(&f, 20, 7, PSCOPE_ROLE_CLIENT, 50002, 5432);

	trace_links_request(f.tl, s1, g1 | 21, 1, 0, "");
	trace_links_complete(f.tl, db, g1 | 22, false, 0, NULL, &out); /* moved to thread 22 */
	trace_links_complete(f.tl, s1, g1 | 23, true, 0, "", &sv);
	CHECK(!memcmp(out.parent_span_id, sv.span_id, 8));

	trace_links_request(f.tl, s1, 21, 4, 1, "");
	trace_links_complete(f.tl, db, 30, false, 0, NULL, &out); /* a pool thread */
	trace_links_request(f.tl, s2, 24, 5, 0, "");
	trace_links_complete(f.tl, db, 30, false, 0, NULL, &sv); /* two in flight now */
	CHECK(!memcmp(sv.parent_span_id, zero8, 8));
	trace_links_complete(f.tl, s1, 21, true, 1, "", &sv);
	CHECK(out.has_parent);
	CHECK(!memcmp(out.parent_span_id, sv.span_id, 8));
	teardown(&f);
}

/* traceparent wins over pairing; the server's read racing ahead of the
 * client's write is paired at the flush after the batch. */
static void test_traceparent_and_late_pairing(void)
{
	struct fixture f;
	struct link_ctx sv, cl;
	const char *tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

	setup(&f);
	struct conn *c = conn_of(&f, 10, 3, PSCOPE_ROLE_CLIENT, 40000, 8001);
	struct conn *s = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 8001, 40000);

	trace_links_request(f.tl, c, 11, 1, 0, tp);
	trace_links_request(f.tl, s, 21, 2, 0, tp);
	trace_links_complete(f.tl, s, 21, true, 0, tp, &sv);
	CHECK_EQ_INT(sv.parent_span_id[0], 0xb7);
	CHECK_EQ_INT(sv.trace_id[0], 0x0a);
	trace_links_complete(f.tl, c, 11, true, 0, tp, &cl);

	trace_links_request(f.tl, s, 21, 3, 1, ""); /* server first */
	trace_links_request(f.tl, c, 11, 2, 1, "");
	trace_links_flush(f.tl);
	trace_links_complete(f.tl, s, 21, true, 1, "", &sv);
	trace_links_complete(f.tl, c, 11, true, 1, "", &cl);
	CHECK(!memcmp(sv.parent_span_id, cl.span_id, 8));
	CHECK(!memcmp(sv.trace_id, cl.trace_id, 16));
	teardown(&f);
}

/* The server's read is seen first and its own call settles it as a root
 * before the client's write arrives: the client then pairs from its side,
 * taking the server's trace, so the whole chain is one trace. */
static void test_pairing_from_the_client_side(void)
{
	struct fixture f;
	struct link_ctx curl_cl, front_sv, front_cl;

	setup(&f);
	struct conn *c_curl = conn_of(&f, 10, 3, PSCOPE_ROLE_CLIENT, 40000, 8001);
	struct conn *c_front_sv = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 8001, 40000);
	struct conn *c_front_cl = conn_of(&f, 20, 6, PSCOPE_ROLE_CLIENT, 40001, 6379);

	trace_links_request(f.tl, c_front_sv, 21, 100, 0, "");
	trace_links_request(f.tl, c_front_cl, 21, 101, 0, ""); /* settles the server request */
	trace_links_request(f.tl, c_curl, 11, 102, 0, "");
	trace_links_flush(f.tl);
	trace_links_complete(f.tl, c_front_cl, 21, true, 0, "", &front_cl);
	trace_links_complete(f.tl, c_front_sv, 21, true, 0, "", &front_sv);
	trace_links_complete(f.tl, c_curl, 11, true, 0, "", &curl_cl);
	CHECK(!memcmp(curl_cl.parent_span_id, zero8, 8));
	CHECK(!memcmp(front_sv.parent_span_id, curl_cl.span_id, 8));
	CHECK(!memcmp(front_cl.parent_span_id, front_sv.span_id, 8));
	CHECK(!memcmp(front_sv.trace_id, curl_cl.trace_id, 16));
	CHECK(!memcmp(front_cl.trace_id, curl_cl.trace_id, 16));

	/* a client with a parent of its own keeps it: no pairing from its side */
	struct conn *c_mid_sv = conn_of(&f, 10, 4, PSCOPE_ROLE_SERVER, 9000, 41000);
	struct link_ctx mid_sv, cl2, sv2;
	trace_links_request(f.tl, c_front_sv, 21, 200, 1, "");
	trace_links_request(f.tl, c_front_cl, 21, 201, 1, "");
	trace_links_request(f.tl, c_mid_sv, 11, 202, 0, "");
	trace_links_request(f.tl, c_curl, 11, 203, 1, "");
	trace_links_complete(f.tl, c_curl, 11, true, 1, "", &cl2);
	trace_links_complete(f.tl, c_mid_sv, 11, true, 0, "", &mid_sv);
	trace_links_complete(f.tl, c_front_sv, 21, true, 1, "", &sv2);
	CHECK(!memcmp(cl2.parent_span_id, mid_sv.span_id, 8));
	CHECK(!memcmp(sv2.parent_span_id, zero8, 8));
	teardown(&f);
}

/* Closing a server connection with a request in flight frees its thread. */
static void test_unanswered_request_frees_thread(void)
{
	struct fixture f;
	struct link_ctx out;

	setup(&f);
	struct conn *s = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 8001, 50000);
	struct conn *s2 = conn_of(&f, 20, 6, PSCOPE_ROLE_SERVER, 8001, 50001);
	struct conn *cl = conn_of(&f, 20, 7, PSCOPE_ROLE_CLIENT, 50002, 9000);
	struct link_ctx sv2;

	trace_links_request(f.tl, s, 21, 1, 0, "");
	conn_table_remove(f.conns, s);
	trace_links_request(f.tl, s2, 21, 2, 0, "");
	trace_links_complete(f.tl, cl, 21, false, 0, NULL, &out);
	trace_links_complete(f.tl, s2, 21, true, 0, "", &sv2);
	CHECK(!memcmp(out.parent_span_id, sv2.span_id, 8));
	teardown(&f);
}

int main(void)
{
	RUN(test_chain_links);
	RUN(test_ambiguous_thread);
	RUN(test_traceparent_and_late_pairing);
	RUN(test_unanswered_request_frees_thread);
	RUN(test_pairing_from_the_client_side);
	RUN(test_goroutine_and_process_fallback);
	return unit_summary("test_trace_links");
}
