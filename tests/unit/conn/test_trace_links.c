/* test_trace_links.c — span ids per request: thread causality, ambiguity on
 * event loops, same-node pairing by mirrored tuple, traceparent precedence,
 * pairing across IPv4, IPv6 and dual-stack connections, the fallback for exchanges
 * without a request hook, and HTTP/2 streams ending out of order. */
#include <string.h>

#include "conn/conn_table.h"
#include "conn/sampler.h"
#include "conn/trace_id.h"
#include "conn/trace_links.h"
#include "parsers/protocol.h"
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

/* What the agent does as a span goes out: the wait of its trace ends, and
 * what pairing decided meanwhile is applied. */
static void span_out(struct fixture *f, struct link_ctx *x)
{
	uint8_t sampled = x->sampled;

	trace_links_span_settle(f->tl, x->trace_id, x->span_id, x->parent_span_id, &sampled);
	x->sampled = sampled;
}

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

/* A connection like conn_of's on a given family and loopback address (16 bytes). */
static struct conn *conn_at(struct fixture *f, uint32_t pid, int fd, uint8_t role, uint8_t family,
                            const uint8_t addr[16], uint16_t lport, uint16_t rport)
{
	struct pscope_conn_ref r = {0};

	r.pid = pid;
	r.fd = fd;
	r.role = role;
	r.family = family;
	r.sock_id = (uint64_t)pid << 16 | (uint64_t)fd;
	memcpy(r.local_addr, addr, 16);
	memcpy(r.remote_addr, addr, 16);
	r.local_port = lport;
	r.remote_port = rport;
	return conn_table_upsert(f->conns, &r, 1);
}

/* Mixed families: curl over IPv4 → a dual-stack front (its socket: AF_INET6, ::ffff:127.0.0.1)
 * → over ::1 → the back; and a second curl over ::1 to the same front. Every server span pairs
 * with its own client span, and the ::1 and 127.0.0.1 connections with equal ports stay apart. */
static void test_pairing_mixed_families(void)
{
	static const uint8_t v4[16] = {127, 0, 0, 1};
	static const uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1};
	static const uint8_t lo6[16] = {[15] = 1};
	struct fixture f;
	struct link_ctx curl_cl, front_sv, front_cl, back_sv, curl6, front6;

	setup(&f);
	struct conn *c_curl = conn_at(&f, 10, 3, PSCOPE_ROLE_CLIENT, 2, v4, 40000, 8001);
	struct conn *c_front_sv = conn_at(&f, 20, 5, PSCOPE_ROLE_SERVER, 10, mapped, 8001, 40000);
	struct conn *c_front_cl = conn_at(&f, 20, 6, PSCOPE_ROLE_CLIENT, 10, lo6, 40001, 8002);
	struct conn *c_back_sv = conn_at(&f, 30, 7, PSCOPE_ROLE_SERVER, 10, lo6, 8002, 40001);
	/* the same client port over ::1: another connection to the same front */
	struct conn *c_curl6 = conn_at(&f, 11, 3, PSCOPE_ROLE_CLIENT, 10, lo6, 40000, 8001);
	struct conn *c_front6 = conn_at(&f, 20, 9, PSCOPE_ROLE_SERVER, 10, lo6, 8001, 40000);

	trace_links_request(f.tl, c_curl, 11, 100, 0, "");
	trace_links_request(f.tl, c_curl6, 12, 100, 0, "");
	/* the ::1 server's read comes first: it must take curl6's request, not curl's */
	trace_links_request(f.tl, c_front6, 22, 101, 0, "");
	trace_links_request(f.tl, c_front_sv, 21, 101, 0, "");
	trace_links_request(f.tl, c_front_cl, 21, 102, 0, "");
	trace_links_request(f.tl, c_back_sv, 31, 103, 0, "");
	trace_links_complete(f.tl, c_back_sv, 31, true, 0, "", &back_sv);
	trace_links_complete(f.tl, c_front_cl, 21, true, 0, "", &front_cl);
	trace_links_complete(f.tl, c_front_sv, 21, true, 0, "", &front_sv);
	trace_links_complete(f.tl, c_curl, 11, true, 0, "", &curl_cl);
	trace_links_complete(f.tl, c_front6, 22, true, 0, "", &front6);
	trace_links_complete(f.tl, c_curl6, 12, true, 0, "", &curl6);

	CHECK(!memcmp(front_sv.parent_span_id, curl_cl.span_id, 8));
	CHECK(!memcmp(front_sv.trace_id, curl_cl.trace_id, 16));
	CHECK(!memcmp(front_cl.parent_span_id, front_sv.span_id, 8));
	CHECK(!memcmp(back_sv.parent_span_id, front_cl.span_id, 8));
	CHECK(!memcmp(back_sv.trace_id, curl_cl.trace_id, 16));
	CHECK(!memcmp(front6.parent_span_id, curl6.span_id, 8));
	CHECK(!memcmp(front6.trace_id, curl6.trace_id, 16));
	CHECK(memcmp(curl6.trace_id, curl_cl.trace_id, 16) != 0);
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
 * thread serving nothing links to nothing, even while the process has only
 * one server request in flight (it may be a job of an answered request). */
static void test_goroutine_and_no_process_fallback(void)
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
	CHECK(!out.has_parent);
	CHECK(memcmp(out.trace_id, sv.trace_id, 16) != 0);
	teardown(&f);
}

/* Two processes of one Go binary run goroutines at the same addresses: a
 * request of one ending on a goroutine key must not end the other's. */
static void test_goroutine_keys_per_process(void)
{
	struct fixture f;
	struct link_ctx front, back, call;
	const uint64_t g = (uint64_t)(0x7ba0 | LINK_GOROUTINE_BIT) << 32;

	setup(&f);
	struct conn *fs = conn_of(&f, 40, 5, PSCOPE_ROLE_SERVER, 8001, 50000);
	struct conn *bs = conn_of(&f, 41, 5, PSCOPE_ROLE_SERVER, 8002, 50001);
	struct conn *fc = conn_of(&f, 40, 6, PSCOPE_ROLE_CLIENT, 50002, 9000);

	trace_links_request(f.tl, fs, g | 42, 1, 0, "");
	trace_links_request(f.tl, bs, g | 43, 2, 0, "");
	trace_links_complete(f.tl, bs, g | 43, true, 0, "", &back);
	trace_links_request(f.tl, fc, g | 44, 3, 0, "");
	trace_links_complete(f.tl, fc, g | 44, true, 0, "", &call);
	trace_links_complete(f.tl, fs, g | 42, true, 0, "", &front);
	CHECK(!memcmp(call.parent_span_id, front.span_id, 8));
	CHECK(!memcmp(call.trace_id, front.trace_id, 16));
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

	/* a client with a parent of its own keeps it, and the server request
	 * moves into its trace; the call that request made, still in flight,
	 * follows it when it ends */
	struct conn *c_mid_sv = conn_of(&f, 10, 4, PSCOPE_ROLE_SERVER, 9000, 41000);
	struct link_ctx mid_sv, cl2, sv2, front_cl2;
	trace_links_request(f.tl, c_front_sv, 21, 200, 1, "");
	trace_links_request(f.tl, c_front_cl, 21, 201, 1, "");
	trace_links_request(f.tl, c_mid_sv, 11, 202, 0, "");
	trace_links_request(f.tl, c_curl, 11, 203, 1, "");
	trace_links_complete(f.tl, c_curl, 11, true, 1, "", &cl2);
	trace_links_complete(f.tl, c_mid_sv, 11, true, 0, "", &mid_sv);
	trace_links_complete(f.tl, c_front_cl, 21, true, 1, "", &front_cl2);
	trace_links_complete(f.tl, c_front_sv, 21, true, 1, "", &sv2);
	CHECK(!memcmp(cl2.parent_span_id, mid_sv.span_id, 8));
	CHECK(!memcmp(cl2.trace_id, mid_sv.trace_id, 16));
	CHECK(!memcmp(sv2.parent_span_id, cl2.span_id, 8));
	CHECK(!memcmp(sv2.trace_id, mid_sv.trace_id, 16));
	CHECK(!memcmp(front_cl2.parent_span_id, sv2.span_id, 8));
	CHECK(!memcmp(front_cl2.trace_id, mid_sv.trace_id, 16));

	/* its call ended before the client's write showed up: that call's span
	 * waited with the server request's trace, which moves into the client's */
	struct link_ctx mid3, cl3, sv3, front_cl3;
	trace_links_request(f.tl, c_front_sv, 21, 300, 2, "");
	trace_links_request(f.tl, c_front_cl, 21, 301, 2, "");
	trace_links_complete(f.tl, c_front_cl, 21, true, 2, "", &front_cl3);
	CHECK(trace_links_trace_open(f.tl, front_cl3.trace_id));
	trace_links_request(f.tl, c_mid_sv, 11, 302, 1, "");
	trace_links_request(f.tl, c_curl, 11, 303, 2, "");
	trace_links_complete(f.tl, c_curl, 11, true, 2, "", &cl3);
	trace_links_complete(f.tl, c_mid_sv, 11, true, 1, "", &mid3);
	trace_links_complete(f.tl, c_front_sv, 21, true, 2, "", &sv3);
	CHECK(!trace_links_trace_open(f.tl, front_cl3.trace_id));
	span_out(&f, &front_cl3);
	span_out(&f, &sv3);
	CHECK(!memcmp(cl3.parent_span_id, mid3.span_id, 8));
	CHECK(!memcmp(sv3.parent_span_id, cl3.span_id, 8));
	CHECK(!memcmp(sv3.trace_id, cl3.trace_id, 16));
	CHECK(!memcmp(front_cl3.trace_id, cl3.trace_id, 16));
	CHECK(!memcmp(front_cl3.parent_span_id, sv3.span_id, 8));

	/* the same with the call's span out before (the agent had no room to
	 * hold it): the server request's trace stays, a root */
	struct link_ctx mid4, cl4, sv4, front_cl4;
	trace_links_request(f.tl, c_front_sv, 21, 400, 3, "");
	trace_links_request(f.tl, c_front_cl, 21, 401, 3, "");
	trace_links_complete(f.tl, c_front_cl, 21, true, 3, "", &front_cl4);
	span_out(&f, &front_cl4);
	trace_links_request(f.tl, c_mid_sv, 11, 402, 2, "");
	trace_links_request(f.tl, c_curl, 11, 403, 3, "");
	trace_links_complete(f.tl, c_curl, 11, true, 3, "", &cl4);
	trace_links_complete(f.tl, c_mid_sv, 11, true, 2, "", &mid4);
	trace_links_complete(f.tl, c_front_sv, 21, true, 3, "", &sv4);
	span_out(&f, &sv4);
	CHECK(!memcmp(cl4.parent_span_id, mid4.span_id, 8));
	CHECK(!memcmp(sv4.parent_span_id, zero8, 8));
	CHECK(!memcmp(front_cl4.trace_id, sv4.trace_id, 16));
	CHECK(!memcmp(front_cl4.parent_span_id, sv4.span_id, 8));
	CHECK(memcmp(sv4.trace_id, cl4.trace_id, 16) != 0);
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

/* The actor of thread tid in event-loop turn tick. */
static uint64_t loop_actor(uint32_t tid, uint32_t tick)
{
	return (uint64_t)((tick & LINK_TICK_MASK) | LINK_TICK_BIT) << 32 | tid;
}

/* An event loop (pid 50, thread 51) serving requests A and B: a call written in
 * the turn that read A, while A is the thread's only request, is A's child; a
 * database call written in the turn that read A's back response, but with B in
 * flight too, is ambiguous (a turn also runs work its reads did not start); a
 * call in a turn that read nothing (a timer) is a root; a call in a turn that
 * read both is ambiguous; a call after both were answered is a root. */
static void test_event_loop_turns(void)
{
	struct fixture f;
	struct link_ctx a, b, call_a, timer_call, amb_call, db_a, after;
	struct trace_links_stats st;

	setup(&f);
	struct conn *sa = conn_of(&f, 50, 5, PSCOPE_ROLE_SERVER, 8001, 41000);
	struct conn *sb = conn_of(&f, 50, 6, PSCOPE_ROLE_SERVER, 8001, 41001);
	struct conn *back = conn_of(&f, 50, 7, PSCOPE_ROLE_CLIENT, 41002, 9000);
	struct conn *db = conn_of(&f, 50, 8, PSCOPE_ROLE_CLIENT, 41003, 6379);

	/* turn 1 reads A, turn 2 reads B; A's call is written in turn 1 */
	trace_links_request(f.tl, sa, loop_actor(51, 1), 100, 0, "");
	trace_links_io(f.tl, sa, loop_actor(51, 1), true, false, true);
	trace_links_request(f.tl, back, loop_actor(51, 1), 101, 0, "");
	trace_links_request(f.tl, sb, loop_actor(51, 2), 102, 0, "");
	/* turn 3 reads A's back response (A owns it); the DB write follows */
	trace_links_io(f.tl, back, loop_actor(51, 3), true, true, true);
	trace_links_complete(f.tl, back, loop_actor(51, 3), true, 0, "", &call_a);
	trace_links_io(f.tl, db, loop_actor(51, 3), false, true, false);
	/* turn 4 read nothing (a timer fired): its call is nobody's */
	trace_links_request(f.tl, back, loop_actor(51, 4), 103, 1, "");
	trace_links_complete(f.tl, back, loop_actor(51, 4), true, 1, "", &timer_call);
	/* the DB reply arrives in turn 5; its span was decided by turn 3 */
	trace_links_io(f.tl, db, loop_actor(51, 5), true, true, false);
	trace_links_complete(f.tl, db, loop_actor(51, 5), false, 0, NULL, &db_a);
	trace_links_complete(f.tl, sa, loop_actor(51, 5), true, 0, "", &a);
	/* turn 6 reads B's body and a new request on A's connection: ambiguous */
	trace_links_io(f.tl, sb, loop_actor(51, 6), true, false, true);
	trace_links_request(f.tl, sa, loop_actor(51, 6), 104, 1, "");
	trace_links_request(f.tl, back, loop_actor(51, 6), 105, 2, "");
	trace_links_complete(f.tl, back, loop_actor(51, 6), true, 2, "", &amb_call);
	trace_links_complete(f.tl, sb, loop_actor(51, 7), true, 0, "", &b);
	/* turn 8 read nothing: a background job after the responses is a root */
	trace_links_request(f.tl, back, loop_actor(51, 8), 106, 3, "");
	trace_links_complete(f.tl, back, loop_actor(51, 8), true, 3, "", &after);

	CHECK(!memcmp(call_a.parent_span_id, a.span_id, 8));
	CHECK(!memcmp(call_a.trace_id, a.trace_id, 16));
	CHECK(!memcmp(db_a.parent_span_id, zero8, 8));
	CHECK(!memcmp(timer_call.parent_span_id, zero8, 8));
	CHECK(!memcmp(amb_call.parent_span_id, zero8, 8));
	CHECK(!memcmp(after.parent_span_id, zero8, 8));
	CHECK(memcmp(after.trace_id, b.trace_id, 16) != 0);
	trace_links_get_stats(f.tl, &st);
	CHECK_EQ_INT(st.loop_links, 1);
	CHECK_EQ_INT(st.ambiguous, 2);
	CHECK_EQ_INT(st.no_parent, 2);
	teardown(&f);
}

/* A Node timer opens a connection in a turn that read nothing (no owner);
 * the connection turns writable in a later turn that reads request R, R
 * still the thread's only request: the timer's request written then is not
 * R's (the opener decides a connection's first request). A connection that
 * R's own turn opens stays R's. */
static void test_timer_opened_connection(void)
{
	struct fixture f;
	struct link_ctx r, timer_call, r_call;

	setup(&f);
	struct conn *sr = conn_of(&f, 80, 5, PSCOPE_ROLE_SERVER, 8002, 43000);
	struct conn *tc = conn_of(&f, 80, 6, PSCOPE_ROLE_CLIENT, 43001, 9000);
	struct conn *rc = conn_of(&f, 80, 7, PSCOPE_ROLE_CLIENT, 43002, 9000);

	memcpy(tc->comm, "node", 5);
	memcpy(rc->comm, "node", 5);
	/* turn 1: a timer's fetch opens tc; no request read */
	trace_links_connect(f.tl, tc, loop_actor(81, 1));
	/* turn 2: R is read, then tc is writable and the timer's request goes out */
	trace_links_request(f.tl, sr, loop_actor(81, 2), 100, 0, "");
	trace_links_io(f.tl, sr, loop_actor(81, 2), true, false, true);
	trace_links_request(f.tl, tc, loop_actor(81, 2), 101, 0, "");
	/* turn 2 also opens rc for R; R's request goes out in turn 3 */
	trace_links_connect(f.tl, rc, loop_actor(81, 2));
	trace_links_request(f.tl, rc, loop_actor(81, 3), 102, 0, "");
	trace_links_complete(f.tl, tc, loop_actor(81, 4), true, 0, "", &timer_call);
	trace_links_complete(f.tl, rc, loop_actor(81, 4), true, 0, "", &r_call);
	trace_links_complete(f.tl, sr, loop_actor(81, 4), true, 0, "", &r);

	CHECK(!memcmp(timer_call.parent_span_id, zero8, 8));
	CHECK(memcmp(timer_call.trace_id, r.trace_id, 16) != 0);
	CHECK(!memcmp(r_call.parent_span_id, r.span_id, 8));
	CHECK(!memcmp(r_call.trace_id, r.trace_id, 16));
	teardown(&f);
}

/* Seen once in 5 runs of node setTimeout fetch c=10: one turn read A while B
 * was in flight, so A's own call (written in that turn) was left a root; B
 * then answered, and a timer's request later in the same turn found A the
 * turn's owner and the thread's only request: it took A as its parent. The
 * turn's first client request is A's call, linked or not: nothing after it in
 * the turn is the reader's. */
static void test_turn_first_call_even_unlinked(void)
{
	struct fixture f;
	struct link_ctx a, b, a_call, timer_call, first;

	setup(&f);
	struct conn *sa = conn_of(&f, 90, 5, PSCOPE_ROLE_SERVER, 8003, 44000);
	struct conn *sb = conn_of(&f, 90, 6, PSCOPE_ROLE_SERVER, 8003, 44001);
	struct conn *ca = conn_of(&f, 90, 7, PSCOPE_ROLE_CLIENT, 44002, 9000);
	struct conn *tc = conn_of(&f, 90, 8, PSCOPE_ROLE_CLIENT, 44003, 9000);

	memcpy(ca->comm, "node", 5);
	memcpy(tc->comm, "node", 5);
	/* turn 1: a timer's fetch opens tc and sends its first request */
	trace_links_connect(f.tl, tc, loop_actor(91, 1));
	trace_links_request(f.tl, tc, loop_actor(91, 1), 100, 0, "");
	trace_links_complete(f.tl, tc, loop_actor(91, 2), true, 0, "", &first);
	/* turn 3: B is read */
	trace_links_request(f.tl, sb, loop_actor(91, 3), 101, 0, "");
	trace_links_io(f.tl, sb, loop_actor(91, 3), true, false, true);
	/* turn 5: A is read; A's call goes out while B is in flight (a root);
	 * B's answer goes out; then a timer's request on tc, same turn */
	trace_links_request(f.tl, sa, loop_actor(91, 5), 102, 0, "");
	trace_links_io(f.tl, sa, loop_actor(91, 5), true, false, true);
	trace_links_request(f.tl, ca, loop_actor(91, 5), 103, 0, "");
	trace_links_complete(f.tl, sb, loop_actor(91, 5), true, 0, "", &b);
	trace_links_request(f.tl, tc, loop_actor(91, 5), 104, 1, "");
	trace_links_complete(f.tl, tc, loop_actor(91, 6), true, 1, "", &timer_call);
	trace_links_complete(f.tl, ca, loop_actor(91, 6), true, 0, "", &a_call);
	trace_links_complete(f.tl, sa, loop_actor(91, 6), true, 0, "", &a);

	CHECK(!memcmp(a_call.parent_span_id, zero8, 8));
	CHECK(!memcmp(timer_call.parent_span_id, zero8, 8));
	CHECK(memcmp(timer_call.trace_id, a.trace_id, 16) != 0);
	teardown(&f);
}

/* A phased loop's actor (Node with its probes): tick seg, in a read's segment or not. */
static uint64_t phased_actor(uint32_t tid, uint32_t seg, bool in_segment)
{
	return link_loop_actor(tid, seg | PSCOPE_TICK_PHASED |
	                                (in_segment ? PSCOPE_TICK_TIMER_SAFE : 0));
}

/* Node with its event-loop probes, three requests in flight on one thread:
 * each segment's first call is its read's request's child (no "one request in
 * flight" needed); a second call in the segment (B's), a call outside any read's
 * segment (a timer's, a write callback's), and a call in a segment that a
 * response read owns while other requests are in flight are roots; so is a
 * log line outside a segment, while one inside has its reader's context. */
static void test_phased_loop_segments(void)
{
	struct fixture f;
	struct link_ctx a, b, c, a_call, b_call, b_second, timer_call, resp_call, ctx;

	setup(&f);
	struct conn *sa = conn_of(&f, 95, 5, PSCOPE_ROLE_SERVER, 8004, 45000);
	struct conn *sb = conn_of(&f, 95, 6, PSCOPE_ROLE_SERVER, 8004, 45001);
	struct conn *sc = conn_of(&f, 95, 7, PSCOPE_ROLE_SERVER, 8004, 45002);
	struct conn *ca = conn_of(&f, 95, 8, PSCOPE_ROLE_CLIENT, 45003, 9000);
	struct conn *cb = conn_of(&f, 95, 9, PSCOPE_ROLE_CLIENT, 45004, 9000);
	struct conn *ct = conn_of(&f, 95, 10, PSCOPE_ROLE_CLIENT, 45005, 9000);

	memcpy(ca->comm, "node", 5);
	memcpy(cb->comm, "node", 5);
	memcpy(ct->comm, "node", 5);
	/* segment 10 reads C, 11 reads A and calls, 12 reads B and calls twice */
	trace_links_request(f.tl, sc, phased_actor(96, 10, true), 100, 0, "");
	trace_links_io(f.tl, sc, phased_actor(96, 10, true), true, false, true);
	trace_links_request(f.tl, sa, phased_actor(96, 11, true), 101, 0, "");
	trace_links_io(f.tl, sa, phased_actor(96, 11, true), true, false, true);
	CHECK(trace_links_context(f.tl, 95, phased_actor(96, 11, true), &ctx));
	trace_links_request(f.tl, ca, phased_actor(96, 11, true), 102, 0, "");
	trace_links_request(f.tl, sb, phased_actor(96, 12, true), 103, 0, "");
	trace_links_io(f.tl, sb, phased_actor(96, 12, true), true, false, true);
	trace_links_request(f.tl, cb, phased_actor(96, 12, true), 104, 0, "");
	trace_links_complete(f.tl, cb, phased_actor(96, 12, true), true, 0, "", &b_call);
	trace_links_request(f.tl, cb, phased_actor(96, 12, true), 107, 1, "");
	/* a timer (segment 13, no read): its call and its log line are nobody's */
	CHECK(!trace_links_context(f.tl, 95, phased_actor(96, 13, false), &ctx));
	trace_links_request(f.tl, ct, phased_actor(96, 13, false), 105, 0, "");
	trace_links_complete(f.tl, ct, phased_actor(96, 14, true), true, 0, "", &timer_call);
	/* segment 14 reads A's call's answer (A, B, C in flight): its call is a root */
	trace_links_io(f.tl, ca, phased_actor(96, 14, true), true, true, false);
	trace_links_complete(f.tl, ca, phased_actor(96, 14, true), true, 0, "", &a_call);
	trace_links_request(f.tl, ct, phased_actor(96, 14, true), 106, 1, "");
	trace_links_complete(f.tl, ct, phased_actor(96, 15, true), true, 1, "", &resp_call);
	trace_links_complete(f.tl, cb, phased_actor(96, 15, true), true, 1, "", &b_second);
	trace_links_complete(f.tl, sa, phased_actor(96, 16, false), true, 0, "", &a);
	trace_links_complete(f.tl, sb, phased_actor(96, 16, false), true, 0, "", &b);
	trace_links_complete(f.tl, sc, phased_actor(96, 16, false), true, 0, "", &c);

	CHECK(!memcmp(a_call.parent_span_id, a.span_id, 8));
	CHECK(!memcmp(a_call.trace_id, a.trace_id, 16));
	CHECK(!memcmp(b_call.parent_span_id, b.span_id, 8));
	CHECK(!memcmp(b_second.parent_span_id, zero8, 8));
	CHECK(!memcmp(timer_call.parent_span_id, zero8, 8));
	CHECK(!memcmp(resp_call.parent_span_id, zero8, 8));
	CHECK(memcmp(resp_call.trace_id, a.trace_id, 16) != 0);
	teardown(&f);
}

/* Python asyncio with its task probes: a task made in a read's segment works
 * for that read's request, its children too while that request is in flight;
 * a timer's task and a task running after its request was answered are
 * nobody's; uvicorn's queued next request gets the task the answering task
 * makes after its answer, and no other task does (the background job's). */
static void test_asyncio_tasks(void)
{
	struct fixture f;
	struct link_ctx ra, rb1, rb2, ctx, call1, call2, call3, call4, call5, call6;
	const uint64_t T1 = 0x7f0000001000, T2 = 0x7f0000001100, T3 = 0x7f0000001200,
	               T4 = 0x7f0000001300, T5 = 0x7f0000001400, T6 = 0x7f0000001500,
	               T7 = 0x7f0000001600, T8 = 0x7f0000001700;

	setup(&f);
	struct conn *sa = conn_of(&f, 97, 5, PSCOPE_ROLE_SERVER, 8005, 46000);
	struct conn *sb = conn_of(&f, 97, 6, PSCOPE_ROLE_SERVER, 8005, 46001);
	struct conn *c1 = conn_of(&f, 97, 8, PSCOPE_ROLE_CLIENT, 46003, 9000);
	struct conn *c2 = conn_of(&f, 97, 9, PSCOPE_ROLE_CLIENT, 46004, 9000);
	struct conn *c3 = conn_of(&f, 97, 10, PSCOPE_ROLE_CLIENT, 46005, 9000);

	/* segment 20 reads A and makes T1; T1's step (21) calls and makes T2 */
	trace_links_request(f.tl, sa, phased_actor(98, 20, true), 100, 0, "");
	trace_links_io(f.tl, sa, phased_actor(98, 20, true), true, false, true);
	trace_links_task(f.tl, 97, phased_actor(98, 20, true), T1, false);
	trace_links_task(f.tl, 97, phased_actor(98, 21, true), T1, true);
	CHECK(trace_links_context(f.tl, 97, phased_actor(98, 21, true), &ctx));
	trace_links_request(f.tl, c1, phased_actor(98, 21, true), 101, 0, "");
	trace_links_complete(f.tl, c1, phased_actor(98, 21, true), true, 0, "", &call1);
	trace_links_task(f.tl, 97, phased_actor(98, 21, true), T2, false);
	/* a timer's segment (22, no read) makes T3 */
	trace_links_task(f.tl, 97, phased_actor(98, 22, false), T3, false);
	trace_links_task(f.tl, 97, phased_actor(98, 23, true), T2, true);
	trace_links_request(f.tl, c2, phased_actor(98, 23, true), 102, 0, "");
	trace_links_complete(f.tl, c2, phased_actor(98, 23, true), true, 0, "", &call2);
	trace_links_task(f.tl, 97, phased_actor(98, 24, true), T3, true);
	CHECK(!trace_links_context(f.tl, 97, phased_actor(98, 24, true), &ctx));
	trace_links_request(f.tl, c3, phased_actor(98, 24, true), 103, 0, "");
	trace_links_complete(f.tl, c3, phased_actor(98, 24, true), true, 0, "", &call3);
	trace_links_io(f.tl, sa, phased_actor(98, 25, true), false, true, true);
	trace_links_complete(f.tl, sa, phased_actor(98, 25, true), true, 0, "", &ra);
	/* T1 after A's answer (a background job): nobody's */
	trace_links_task(f.tl, 97, phased_actor(98, 26, true), T1, true);
	CHECK(!trace_links_context(f.tl, 97, phased_actor(98, 26, true), &ctx));
	trace_links_request(f.tl, c1, phased_actor(98, 26, true), 104, 1, "");
	trace_links_complete(f.tl, c1, phased_actor(98, 26, true), true, 1, "", &call4);

	/* B1 read in 30 makes T4; T4 makes T5 (its background job) and answers */
	trace_links_request(f.tl, sb, phased_actor(98, 30, true), 110, 0, "");
	trace_links_io(f.tl, sb, phased_actor(98, 30, true), true, false, true);
	trace_links_task(f.tl, 97, phased_actor(98, 30, true), T4, false);
	trace_links_task(f.tl, 97, phased_actor(98, 31, true), T4, true);
	trace_links_task(f.tl, 97, phased_actor(98, 31, true), T5, false);
	trace_links_io(f.tl, sb, phased_actor(98, 31, true), false, true, true);
	trace_links_complete(f.tl, sb, phased_actor(98, 31, true), true, 0, "", &rb1);
	/* B2 read in 32, queued: its callback makes no task */
	trace_links_request(f.tl, sb, phased_actor(98, 32, true), 111, 1, "");
	trace_links_io(f.tl, sb, phased_actor(98, 32, true), true, false, true);
	/* T5 (did not answer) makes T6: not B2's; then T4 makes T7: B2's, once */
	trace_links_task(f.tl, 97, phased_actor(98, 33, true), T5, true);
	trace_links_task(f.tl, 97, phased_actor(98, 33, true), T6, false);
	trace_links_task(f.tl, 97, phased_actor(98, 34, true), T4, true);
	trace_links_task(f.tl, 97, phased_actor(98, 34, true), T7, false);
	trace_links_task(f.tl, 97, phased_actor(98, 34, true), T8, false);
	trace_links_task(f.tl, 97, phased_actor(98, 35, true), T6, true);
	trace_links_request(f.tl, c2, phased_actor(98, 35, true), 112, 1, "");
	trace_links_complete(f.tl, c2, phased_actor(98, 35, true), true, 1, "", &call5);
	trace_links_task(f.tl, 97, phased_actor(98, 36, true), T8, true);
	CHECK(!trace_links_context(f.tl, 97, phased_actor(98, 36, true), &ctx));
	trace_links_task(f.tl, 97, phased_actor(98, 37, true), T7, true);
	CHECK(trace_links_context(f.tl, 97, phased_actor(98, 37, true), &ctx));
	trace_links_request(f.tl, c3, phased_actor(98, 37, true), 113, 1, "");
	trace_links_complete(f.tl, c3, phased_actor(98, 37, true), true, 1, "", &call6);
	trace_links_io(f.tl, sb, phased_actor(98, 37, true), false, true, true);
	trace_links_complete(f.tl, sb, phased_actor(98, 37, true), true, 1, "", &rb2);

	CHECK(!memcmp(call1.parent_span_id, ra.span_id, 8));
	CHECK(!memcmp(call2.parent_span_id, ra.span_id, 8));
	CHECK(!memcmp(call3.parent_span_id, zero8, 8));
	CHECK(!memcmp(call4.parent_span_id, zero8, 8));
	CHECK(!memcmp(call5.parent_span_id, zero8, 8));
	CHECK(!memcmp(call6.parent_span_id, rb2.span_id, 8));
	CHECK(!memcmp(call6.trace_id, rb2.trace_id, 16));
	teardown(&f);
}

/* A live asyncio task keeps its request while another process's tasks come
 * and go by the thousand (tasks end unseen: their slots are only ever taken
 * over). T1 works for A and steps now and then, as a live task does; 12,000
 * tasks of pid 99 are made and stepped once each in between. Its call at the
 * end is still A's child (a direct-mapped table lost it to the first task of
 * pid 99 that took its slot). */
static void test_asyncio_task_outlives_other_tasks(void)
{
	struct fixture f;
	struct link_ctx ra, call, ctx;
	const uint64_t T1 = 0x7f0000002000;
	uint32_t seg = 21, other_seg = 1;

	setup(&f);
	struct conn *sa = conn_of(&f, 97, 5, PSCOPE_ROLE_SERVER, 8006, 47000);
	struct conn *c1 = conn_of(&f, 97, 8, PSCOPE_ROLE_CLIENT, 47003, 9000);

	trace_links_request(f.tl, sa, phased_actor(98, 20, true), 100, 0, "");
	trace_links_io(f.tl, sa, phased_actor(98, 20, true), true, false, true);
	trace_links_task(f.tl, 97, phased_actor(98, 20, true), T1, false);
	for (int i = 0; i < 12000; i++) {
		uint64_t other = 0x7f4800000000ull + (uint64_t)i * 0xc0;

		trace_links_task(f.tl, 99, phased_actor(100, other_seg++, false), other, false);
		trace_links_task(f.tl, 99, phased_actor(100, other_seg++, true), other, true);
		if (i % 200 == 0)
			trace_links_task(f.tl, 97, phased_actor(98, seg++, true), T1, true);
	}
	trace_links_task(f.tl, 97, phased_actor(98, seg, true), T1, true);
	CHECK(trace_links_context(f.tl, 97, phased_actor(98, seg, true), &ctx));
	trace_links_request(f.tl, c1, phased_actor(98, seg, true), 101, 0, "");
	trace_links_complete(f.tl, c1, phased_actor(98, seg, true), true, 0, "", &call);
	trace_links_io(f.tl, sa, phased_actor(98, seg + 1, true), false, true, true);
	trace_links_complete(f.tl, sa, phased_actor(98, seg + 1, true), true, 0, "", &ra);
	CHECK(!memcmp(call.parent_span_id, ra.span_id, 8));
	CHECK(!memcmp(call.trace_id, ra.trace_id, 16));
	teardown(&f);
}

/* A connection's own task (asyncio.start_server's handler, aiohttp's request
 * loop): made when the connection is accepted, for no request, and woken by
 * the reads of its connection. Once it has answered there, its steps work
 * for the one request in flight whose read made no task; its first request
 * stays a root, and so does a step with two requests in flight or none, and
 * one for a request read together with another. */
static void test_connection_task(void)
{
	struct fixture f;
	struct link_ctx r0, r1, r2, r3, call0, call1, call2, call3, ctx;
	const uint64_t TC = 0x7f0000002000;

	setup(&f);
	struct conn *sc = conn_of(&f, 96, 5, PSCOPE_ROLE_SERVER, 8006, 47000);
	struct conn *cb = conn_of(&f, 96, 8, PSCOPE_ROLE_CLIENT, 47003, 9000);

	trace_links_task(f.tl, 96, phased_actor(99, 40, true), TC, false); /* accepted */
	/* R0: read in 42 (no task made), served by TC in 43 */
	trace_links_request(f.tl, sc, phased_actor(99, 42, true), 100, 0, "");
	trace_links_io(f.tl, sc, phased_actor(99, 42, true), true, false, true);
	trace_links_task(f.tl, 96, phased_actor(99, 43, true), TC, true);
	CHECK(!trace_links_context(f.tl, 96, phased_actor(99, 43, true), &ctx));
	trace_links_request(f.tl, cb, phased_actor(99, 43, true), 101, 0, "");
	trace_links_complete(f.tl, cb, phased_actor(99, 43, true), true, 0, "", &call0);
	trace_links_io(f.tl, sc, phased_actor(99, 43, true), false, true, true);
	trace_links_complete(f.tl, sc, phased_actor(99, 43, true), true, 0, "", &r0);
	/* R1: read in 44, TC's steps 45 and 46 serve it */
	trace_links_request(f.tl, sc, phased_actor(99, 44, true), 110, 1, "");
	trace_links_io(f.tl, sc, phased_actor(99, 44, true), true, false, true);
	trace_links_task(f.tl, 96, phased_actor(99, 45, true), TC, true);
	CHECK(trace_links_context(f.tl, 96, phased_actor(99, 45, true), &ctx));
	trace_links_request(f.tl, cb, phased_actor(99, 45, true), 111, 1, "");
	trace_links_task(f.tl, 96, phased_actor(99, 46, true), TC, true);
	trace_links_complete(f.tl, cb, phased_actor(99, 46, true), true, 1, "", &call1);
	trace_links_io(f.tl, sc, phased_actor(99, 46, true), false, true, true);
	trace_links_complete(f.tl, sc, phased_actor(99, 46, true), true, 1, "", &r1);
	/* nothing in flight: TC's step is nobody's */
	trace_links_task(f.tl, 96, phased_actor(99, 47, true), TC, true);
	CHECK(!trace_links_context(f.tl, 96, phased_actor(99, 47, true), &ctx));
	/* R2 and R3 read together (pipelined): TC's step may be for either */
	trace_links_request(f.tl, sc, phased_actor(99, 48, true), 120, 2, "");
	trace_links_request(f.tl, sc, phased_actor(99, 48, true), 121, 3, "");
	trace_links_io(f.tl, sc, phased_actor(99, 48, true), true, false, true);
	trace_links_task(f.tl, 96, phased_actor(99, 49, true), TC, true);
	trace_links_request(f.tl, cb, phased_actor(99, 49, true), 122, 2, "");
	trace_links_complete(f.tl, cb, phased_actor(99, 49, true), true, 2, "", &call2);
	trace_links_io(f.tl, sc, phased_actor(99, 49, true), false, true, true);
	trace_links_complete(f.tl, sc, phased_actor(99, 49, true), true, 2, "", &r2);
	/* R3 alone in flight now, but read with R2 in one callback: still not sure */
	trace_links_task(f.tl, 96, phased_actor(99, 50, true), TC, true);
	trace_links_request(f.tl, cb, phased_actor(99, 50, true), 123, 3, "");
	trace_links_complete(f.tl, cb, phased_actor(99, 50, true), true, 3, "", &call3);
	trace_links_io(f.tl, sc, phased_actor(99, 50, true), false, true, true);
	trace_links_complete(f.tl, sc, phased_actor(99, 50, true), true, 3, "", &r3);

	CHECK(!memcmp(call0.parent_span_id, zero8, 8));
	CHECK(!memcmp(call1.parent_span_id, r1.span_id, 8));
	CHECK(!memcmp(call1.trace_id, r1.trace_id, 16));
	CHECK(!memcmp(call2.parent_span_id, zero8, 8));
	CHECK(!memcmp(call3.parent_span_id, zero8, 8));

	/* aiohttp's shape: the connection's task makes a task per request, which
	 * calls and answers; the connection task is known from its first one */
	struct conn *sc2 = conn_of(&f, 96, 6, PSCOPE_ROLE_SERVER, 8006, 47001);
	struct link_ctx q0, q1, qcall0, qcall1;
	const uint64_t TC2 = 0x7f0000003000, TQ0 = 0x7f0000003100, TQ1 = 0x7f0000003200;
	trace_links_task(f.tl, 96, phased_actor(99, 60, true), TC2, false); /* accepted */
	trace_links_request(f.tl, sc2, phased_actor(99, 61, true), 200, 0, "");
	trace_links_io(f.tl, sc2, phased_actor(99, 61, true), true, false, true);
	trace_links_task(f.tl, 96, phased_actor(99, 62, true), TC2, true);
	trace_links_task(f.tl, 96, phased_actor(99, 62, true), TQ0, false);
	trace_links_task(f.tl, 96, phased_actor(99, 63, true), TQ0, true);
	trace_links_request(f.tl, cb, phased_actor(99, 63, true), 201, 4, "");
	trace_links_complete(f.tl, cb, phased_actor(99, 63, true), true, 4, "", &qcall0);
	trace_links_io(f.tl, sc2, phased_actor(99, 63, true), false, true, true);
	trace_links_complete(f.tl, sc2, phased_actor(99, 63, true), true, 0, "", &q0);
	trace_links_request(f.tl, sc2, phased_actor(99, 64, true), 210, 1, "");
	trace_links_io(f.tl, sc2, phased_actor(99, 64, true), true, false, true);
	trace_links_task(f.tl, 96, phased_actor(99, 65, true), TC2, true);
	trace_links_task(f.tl, 96, phased_actor(99, 65, true), TQ1, false);
	trace_links_task(f.tl, 96, phased_actor(99, 66, true), TQ1, true);
	trace_links_request(f.tl, cb, phased_actor(99, 66, true), 211, 5, "");
	trace_links_complete(f.tl, cb, phased_actor(99, 66, true), true, 5, "", &qcall1);
	trace_links_io(f.tl, sc2, phased_actor(99, 66, true), false, true, true);
	trace_links_complete(f.tl, sc2, phased_actor(99, 66, true), true, 1, "", &q1);
	CHECK(!memcmp(qcall0.parent_span_id, zero8, 8));
	CHECK(!memcmp(qcall1.parent_span_id, q1.span_id, 8));
	CHECK(!memcmp(qcall1.trace_id, q1.trace_id, 16));
	teardown(&f);
}

/* Log lines: the actor's server request now, by the client-span rules. */
static void test_context_for_logs(void)
{
	struct fixture f;
	struct link_ctx ctx, sv;
	const uint64_t g1 = (uint64_t)(0x1234 | LINK_GOROUTINE_BIT) << 32;
	const uint64_t turn = (uint64_t)(5 | LINK_TICK_BIT) << 32;
	const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

	setup(&f);
	struct conn *s1 = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 8001, 50000);
	struct conn *s2 = conn_of(&f, 20, 6, PSCOPE_ROLE_SERVER, 8001, 50001);

	CHECK(!trace_links_context(f.tl, 20, 21, &ctx)); /* nothing in flight */
	trace_links_request(f.tl, s1, 21, 1, 0, tp);
	CHECK(trace_links_context(f.tl, 20, 21, &ctx));
	CHECK_EQ_INT(ctx.trace_id[0], 0x4b);
	CHECK(!trace_links_context(f.tl, 20, 99, &ctx)); /* a thread serving nothing: nobody's */
	trace_links_request(f.tl, s2, 22, 2, 0, "");
	CHECK(!trace_links_context(f.tl, 20, 99, &ctx));
	CHECK(trace_links_context(f.tl, 20, 22, &ctx));
	trace_links_complete(f.tl, s2, 22, true, 0, "", &sv);
	CHECK(!memcmp(ctx.span_id, sv.span_id, 8));
	CHECK(!trace_links_context(f.tl, 20, 22, &ctx));
	trace_links_complete(f.tl, s1, 21, true, 0, "", &sv);
	CHECK(!trace_links_context(f.tl, 20, 21, &ctx));

	/* Go: the goroutine only */
	trace_links_request(f.tl, s1, g1 | 21, 3, 1, "");
	CHECK(trace_links_context(f.tl, 20, g1 | 40, &ctx));
	CHECK(!trace_links_context(f.tl, 20, ((uint64_t)(0x999 | LINK_GOROUTINE_BIT) << 32) | 21,
	                           &ctx));
	trace_links_complete(f.tl, s1, g1 | 21, true, 1, "", &sv);

	/* event loop: the owner of the turn; two owners: nobody's */
	trace_links_request(f.tl, s1, turn | 21, 4, 2, "");
	CHECK(trace_links_context(f.tl, 20, turn | 21, &ctx));
	CHECK(!trace_links_context(f.tl, 20, ((uint64_t)(6 | LINK_TICK_BIT) << 32) | 21, &ctx));
	trace_links_request(f.tl, s2, turn | 21, 5, 1, "");
	CHECK(!trace_links_context(f.tl, 20, turn | 21, &ctx));
	teardown(&f);
}

/* HTTP/2: three concurrent streams on one connection (request numbers 0, 1,
 * 2 in the order their HEADERS were seen), each served by its own thread,
 * ending in another order on each side. Every server span keeps the client
 * span of its own stream as parent, a call made while serving stream 1 is
 * that stream's child, and a fourth stream after the others ended pairs too. */
static void test_http2_streams_out_of_order(void)
{
	struct fixture f;
	struct link_ctx cl[4], sv[4], db;

	setup(&f);
	struct conn *c = conn_of(&f, 10, 3, PSCOPE_ROLE_CLIENT, 40000, 50051);
	struct conn *s = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 50051, 40000);
	struct conn *d = conn_of(&f, 20, 6, PSCOPE_ROLE_CLIENT, 40001, 6379);

	c->protocol = s->protocol = L7_HTTP2; /* multiplexed: requests end in any order */
	for (uint64_t i = 0; i < 3; i++)
		trace_links_request(f.tl, c, 11, 100 + i, i, "");
	for (uint64_t i = 0; i < 3; i++)
		trace_links_request(f.tl, s, 21 + i, 110 + i, i, "");
	trace_links_complete(f.tl, d, 22, false, 0, NULL, &db); /* stream 1's handler */
	trace_links_complete(f.tl, s, 23, true, 2, "", &sv[2]);
	trace_links_complete(f.tl, s, 21, true, 0, "", &sv[0]);
	trace_links_complete(f.tl, c, 11, true, 1, "", &cl[1]);
	trace_links_complete(f.tl, c, 11, true, 2, "", &cl[2]);
	trace_links_complete(f.tl, s, 22, true, 1, "", &sv[1]);
	trace_links_complete(f.tl, c, 11, true, 0, "", &cl[0]);

	trace_links_request(f.tl, c, 11, 200, 3, "");
	trace_links_request(f.tl, s, 24, 201, 3, "");
	trace_links_complete(f.tl, s, 24, true, 3, "", &sv[3]);
	trace_links_complete(f.tl, c, 11, true, 3, "", &cl[3]);

	for (int i = 0; i < 4; i++) {
		CHECK(!memcmp(sv[i].parent_span_id, cl[i].span_id, 8));
		CHECK(!memcmp(sv[i].trace_id, cl[i].trace_id, 16));
		CHECK(!memcmp(cl[i].parent_span_id, zero8, 8));
		CHECK_EQ_INT((int)sv[i].seq, i);
		CHECK_EQ_INT((int)cl[i].seq, i);
		for (int j = 0; j < i; j++)
			CHECK(memcmp(cl[i].trace_id, cl[j].trace_id, 16) != 0);
	}
	CHECK(!memcmp(db.parent_span_id, sv[1].span_id, 8));
	CHECK(!memcmp(db.trace_id, cl[1].trace_id, 16));
	teardown(&f);
}

/* HTTP/2 (grpcio): the server's read of a stream is merged before the
 * client's write when the client's CPU is held up between the two; the
 * client's event may come many batches later. Local requests wait up to
 * 250 ms of event time for it; a stream answered before it shows up is held
 * (and found by its stream id: the client's event time, taken after its
 * write, may be the later one); a call the client ends first (a deadline's
 * RST_STREAM) still pairs. Another stream, in flight and used, is not its. */
static void test_http2_client_event_late(void)
{
	struct fixture f;
	struct link_ctx cl[3], sv[3], db, cl3;
	const uint64_t ms = 1000000;

	setup(&f);
	struct conn *c = conn_of(&f, 10, 3, PSCOPE_ROLE_CLIENT, 40000, 50051);
	struct conn *s = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 50051, 40000);
	struct conn *d = conn_of(&f, 20, 6, PSCOPE_ROLE_CLIENT, 40001, 6379);

	c->protocol = s->protocol = L7_HTTP2;
	/* a deadline: the server's read first, ten batches before the client's write */
	trace_links_request_stream(f.tl, s, 21, 100 * ms + 5, 0, 1, "");
	for (int i = 0; i < 10; i++)
		trace_links_flush(f.tl);
	trace_links_request_stream(f.tl, c, 11, 100 * ms, 0, 1, "");
	trace_links_flush(f.tl);
	trace_links_complete(f.tl, c, 11, true, 0, "", &cl[0]); /* RST_STREAM at 0.3 s */
	trace_links_complete(f.tl, s, 21, true, 0, "", &sv[0]); /* the handler's end */
	CHECK(!trace_links_trace_open(f.tl, sv[0].trace_id));
	CHECK(!memcmp(sv[0].parent_span_id, cl[0].span_id, 8));
	CHECK(!memcmp(sv[0].trace_id, cl[0].trace_id, 16));

	/* answered before the client's write shows up: held, then paired */
	trace_links_request_stream(f.tl, s, 21, 200 * ms + 5, 1, 3, "");
	trace_links_flush(f.tl);
	trace_links_flush(f.tl);
	trace_links_complete(f.tl, s, 21, true, 1, "", &sv[1]);
	CHECK(trace_links_trace_open(f.tl, sv[1].trace_id));
	trace_links_request_stream(f.tl, c, 11, 200 * ms + 9, 1, 3, ""); /* its time: after */
	trace_links_complete(f.tl, c, 11, true, 1, "", &cl[1]);
	CHECK(!trace_links_trace_open(f.tl, sv[1].trace_id));
	span_out(&f, &sv[1]);
	CHECK(!memcmp(sv[1].parent_span_id, cl[1].span_id, 8));
	CHECK(!memcmp(cl[1].trace_id, sv[1].trace_id, 16));

	/* a stream whose client was never seen, in flight and used (a call of
	 * its handler settled it as a root): a later stream's client write is
	 * not its parent; that stream pairs as usual */
	trace_links_request_stream(f.tl, s, 22, 300 * ms, 2, 5, "");
	trace_links_request(f.tl, d, 22, 301 * ms, 0, "");
	trace_links_complete(f.tl, d, 22, true, 0, "", &db);
	trace_links_request_stream(f.tl, c, 11, 302 * ms, 3, 7, "");
	trace_links_request_stream(f.tl, s, 21, 303 * ms, 3, 7, "");
	trace_links_complete(f.tl, c, 11, true, 3, "", &cl3);
	trace_links_complete(f.tl, s, 21, true, 3, "", &sv[2]);
	CHECK(!memcmp(sv[2].parent_span_id, cl3.span_id, 8));
	CHECK(!memcmp(cl3.parent_span_id, zero8, 8));
	CHECK(memcmp(cl3.trace_id, db.trace_id, 16) != 0);
	CHECK(memcmp(db.parent_span_id, zero8, 8) != 0); /* the root stream's child */
	teardown(&f);
}

/* The CI failure of stop 18 (rust front → rust back → redis, a connection
 * per call): the front's request event, stamped when its write returns,
 * came after the back's read and the back's redis call (a held-up vCPU).
 * The back's request, settled as a root by its call, waits with every span
 * of its trace; the front's request, with a trace of its own, takes that
 * trace into its own — while the back's request is in flight, after its
 * answer, and after its connection is gone. A trace one of whose spans could
 * not wait stays as it is, and so does one whose wait is over. */
static void test_late_client_moves_trace(void)
{
	struct fixture f;
	struct link_ctx curl_cl, front_sv, front_cl, back_sv, db;
	const uint64_t ms = 1000000;

	setup(&f);
	struct conn *c_curl = conn_of(&f, 10, 3, PSCOPE_ROLE_CLIENT, 40000, 8001);
	struct conn *c_front_sv = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 8001, 40000);
	struct conn *c_db = conn_of(&f, 30, 4, PSCOPE_ROLE_CLIENT, 41000, 6379);

	for (int k = 0; k < 5; k++) {
		uint64_t t0 = (uint64_t)(k + 1) * 1000 * ms;
		int fd = 10 + k;
		uint16_t port = (uint16_t)(40100 + k);
		struct conn *c_front_cl = conn_of(&f, 20, fd, PSCOPE_ROLE_CLIENT, port, 8002);
		struct conn *c_back_sv = conn_of(&f, 30, fd, PSCOPE_ROLE_SERVER, 8002, port);
		bool answered = k >= 1, gone = k == 2, pinned = k == 3, late = k == 4;

		trace_links_request(f.tl, c_curl, 11, t0, (uint64_t)k, "");
		trace_links_request(f.tl, c_front_sv, 21, t0 + 1, (uint64_t)k, "");
		trace_links_request(f.tl, c_back_sv, 31, t0 + 5, 0, ""); /* read first */
		trace_links_flush(f.tl);
		trace_links_flush(f.tl);
		trace_links_complete(f.tl, c_db, 31, false, 0, NULL, &db); /* settles it */
		CHECK(trace_links_trace_open(f.tl, db.trace_id));
		if (pinned)
			span_out(&f, &db); /* the agent had no room: out as it is */
		if (answered) {
			trace_links_complete(f.tl, c_back_sv, 31, true, 0, "", &back_sv);
			CHECK(!memcmp(back_sv.parent_span_id, zero8, 8));
		}
		if (gone)
			conn_table_remove(f.conns, c_back_sv);
		if (late) /* another request, 300 ms later: the wait is over */
			trace_links_request(f.tl, c_curl, 12, t0 + 300 * ms, 100, "");
		trace_links_request(f.tl, c_front_cl, 21, t0 + 3, 0, ""); /* seen now */
		trace_links_flush(f.tl);
		if (!answered)
			trace_links_complete(f.tl, c_back_sv, 31, true, 0, "", &back_sv);
		trace_links_complete(f.tl, c_front_cl, 21, true, 0, "", &front_cl);
		trace_links_complete(f.tl, c_front_sv, 21, true, (uint64_t)k, "", &front_sv);
		trace_links_complete(f.tl, c_curl, 11, true, (uint64_t)k, "", &curl_cl);
		CHECK(!trace_links_trace_open(f.tl, back_sv.trace_id));
		CHECK(!trace_links_trace_open(f.tl, db.trace_id));
		span_out(&f, &back_sv);
		span_out(&f, &db);
		CHECK(!memcmp(front_sv.parent_span_id, curl_cl.span_id, 8));
		CHECK(!memcmp(front_cl.parent_span_id, front_sv.span_id, 8));
		CHECK(!memcmp(front_cl.trace_id, curl_cl.trace_id, 16));
		CHECK(!memcmp(db.parent_span_id, back_sv.span_id, 8));
		CHECK(!memcmp(db.trace_id, back_sv.trace_id, 16));
		if (pinned || late) {
			CHECK(!memcmp(back_sv.parent_span_id, zero8, 8));
			CHECK(memcmp(back_sv.trace_id, curl_cl.trace_id, 16) != 0);
		} else {
			CHECK(!memcmp(back_sv.parent_span_id, front_cl.span_id, 8));
			CHECK(!memcmp(back_sv.trace_id, curl_cl.trace_id, 16));
		}
	}
	teardown(&f);
}

/* A log line of a provisional request went out in its trace: the trace no
 * longer moves (a client with a trace of its own leaves it a root), but a
 * root client still takes it; its answer opens no second entry (which would
 * make the client's lookup ambiguous). */
static void test_logged_request_keeps_its_trace(void)
{
	struct fixture f;
	struct link_ctx db, logged, sv, cl, sv2, cl2, parent_sv;
	const uint64_t ms = 1000000;

	setup(&f);
	struct conn *c_db = conn_of(&f, 30, 4, PSCOPE_ROLE_CLIENT, 41000, 6379);
	struct conn *c_cl = conn_of(&f, 20, 10, PSCOPE_ROLE_CLIENT, 40100, 8002);
	struct conn *c_sv = conn_of(&f, 30, 10, PSCOPE_ROLE_SERVER, 8002, 40100);
	struct conn *c_psv = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 8001, 50000);

	/* a root client: takes the logged request's trace */
	trace_links_request(f.tl, c_sv, 31, 1000 * ms, 0, "");
	trace_links_complete(f.tl, c_db, 31, false, 0, NULL, &db);
	CHECK(trace_links_context(f.tl, 30, 31, &logged));
	trace_links_complete(f.tl, c_sv, 31, true, 0, "", &sv);
	trace_links_request(f.tl, c_cl, 11, 1000 * ms - 1, 0, "");
	trace_links_complete(f.tl, c_cl, 11, true, 0, "", &cl);
	span_out(&f, &sv);
	span_out(&f, &db);
	CHECK(!memcmp(logged.trace_id, sv.trace_id, 16));
	CHECK(!memcmp(cl.trace_id, sv.trace_id, 16));
	CHECK(!memcmp(sv.parent_span_id, cl.span_id, 8));
	CHECK(!memcmp(db.trace_id, sv.trace_id, 16));

	/* a client with a trace of its own: the logged request stays a root */
	trace_links_request(f.tl, c_psv, 21, 2000 * ms, 0, "");
	trace_links_request(f.tl, c_sv, 31, 2000 * ms + 5, 1, "");
	trace_links_complete(f.tl, c_db, 31, false, 0, NULL, &db);
	CHECK(trace_links_context(f.tl, 30, 31, &logged));
	trace_links_complete(f.tl, c_sv, 31, true, 1, "", &sv2);
	trace_links_request(f.tl, c_cl, 21, 2000 * ms + 3, 1, "");
	trace_links_complete(f.tl, c_cl, 21, true, 1, "", &cl2);
	trace_links_complete(f.tl, c_psv, 21, true, 0, "", &parent_sv);
	span_out(&f, &sv2);
	span_out(&f, &db);
	CHECK(!memcmp(cl2.parent_span_id, parent_sv.span_id, 8));
	CHECK(!memcmp(sv2.parent_span_id, zero8, 8));
	CHECK(!memcmp(sv2.trace_id, logged.trace_id, 16));
	CHECK(!memcmp(db.trace_id, logged.trace_id, 16));
	CHECK(memcmp(sv2.trace_id, cl2.trace_id, 16) != 0);
	teardown(&f);
}

/* The client's request event after the server's answer (curl's SSL_write
 * return probe runs late; Go's probes are quick): the server span is held and
 * pairs when the client's request shows up. A held request of another number
 * (an earlier request whose client was not seen) is not its. */
static void test_pairing_after_the_answer(void)
{
	struct fixture f;
	struct link_ctx curl_cl, front_sv, front_cl, c1, s1, s2, c3, s3;

	setup(&f);
	struct conn *c_curl = conn_of(&f, 10, 3, PSCOPE_ROLE_CLIENT, 40000, 8001);
	struct conn *c_front_sv = conn_of(&f, 20, 5, PSCOPE_ROLE_SERVER, 8001, 40000);
	struct conn *c_front_cl = conn_of(&f, 20, 6, PSCOPE_ROLE_CLIENT, 40001, 8002);

	trace_links_request(f.tl, c_front_sv, 21, 101, 0, "");
	trace_links_request(f.tl, c_front_cl, 21, 102, 0, ""); /* settles it as a root */
	trace_links_flush(f.tl);
	trace_links_flush(f.tl);
	trace_links_complete(f.tl, c_front_cl, 21, true, 0, "", &front_cl);
	trace_links_complete(f.tl, c_front_sv, 21, true, 0, "", &front_sv);
	CHECK(trace_links_trace_open(f.tl, front_sv.trace_id));
	CHECK(trace_links_trace_open(f.tl, front_cl.trace_id));
	CHECK(!memcmp(front_sv.parent_span_id, zero8, 8));
	trace_links_request(f.tl, c_curl, 11, 100, 0, ""); /* written at 100, seen now */
	trace_links_flush(f.tl);
	trace_links_complete(f.tl, c_curl, 11, true, 0, "", &curl_cl);
	CHECK(!trace_links_trace_open(f.tl, front_sv.trace_id));
	span_out(&f, &front_sv);
	span_out(&f, &front_cl);
	CHECK(!memcmp(front_sv.parent_span_id, curl_cl.span_id, 8));
	CHECK(!memcmp(curl_cl.parent_span_id, zero8, 8));
	CHECK(!memcmp(curl_cl.trace_id, front_sv.trace_id, 16));
	CHECK(!memcmp(front_cl.trace_id, curl_cl.trace_id, 16));

	/* the next request, same order: its own held span, not the first one */
	trace_links_request(f.tl, c_front_sv, 21, 201, 1, "");
	trace_links_request(f.tl, c_front_cl, 21, 202, 1, "");
	trace_links_complete(f.tl, c_front_sv, 21, true, 1, "", &s1);
	trace_links_request(f.tl, c_curl, 11, 200, 1, "");
	trace_links_complete(f.tl, c_curl, 11, true, 1, "", &c1);
	span_out(&f, &s1);
	CHECK(!memcmp(s1.parent_span_id, c1.span_id, 8));
	CHECK(!memcmp(c1.trace_id, s1.trace_id, 16));

	/* request 2's client is never seen: request 3's client, written after
	 * request 2 was read, is not its parent; request 3 pairs as usual */
	trace_links_request(f.tl, c_front_sv, 21, 301, 2, "");
	trace_links_complete(f.tl, c_front_sv, 21, true, 2, "", &s2);
	CHECK(trace_links_trace_open(f.tl, s2.trace_id));
	trace_links_request(f.tl, c_curl, 11, 400, 3, "");
	trace_links_request(f.tl, c_front_sv, 21, 401, 3, "");
	trace_links_complete(f.tl, c_front_sv, 21, true, 3, "", &s3);
	trace_links_complete(f.tl, c_curl, 11, true, 3, "", &c3);
	CHECK(trace_links_trace_open(f.tl, s2.trace_id));
	span_out(&f, &s2); /* its wait ends: a root */
	CHECK(!trace_links_trace_open(f.tl, s2.trace_id));
	CHECK(!memcmp(s2.parent_span_id, zero8, 8));
	CHECK(!trace_links_trace_open(f.tl, s3.trace_id));
	CHECK(!memcmp(s3.parent_span_id, c3.span_id, 8));
	CHECK(memcmp(c3.trace_id, s2.trace_id, 16) != 0);
	teardown(&f);
}

/* The thread table starts at 1024 slots and doubles while half full: 3000 server requests in
 * flight on 3000 threads each give their thread's client call its parent, across every
 * growth; once answered, the threads' calls are roots again. */
static void test_thread_table_growth(void)
{
	enum { N = 3000 };
	struct fixture f;
	static struct link_ctx sv[N];
	struct trace_links_stats st;
	int wrong = 0, not_root = 0;

	memset(&f, 0, sizeof(f));
	id_gen_seed_fixed(&f.ids, 9);
	sampler_init(&f.sampler, NULL, NULL);
	f.conns = conn_table__new(4 * N, on_release, &f);
	f.tl = trace_links__new(f.conns, &f.ids, &f.sampler);
	CHECK(f.conns && f.tl);
	if (!f.conns || !f.tl)
		goto cleanup;
	for (int i = 0; i < N; i++) {
		struct conn *c =
		    conn_of(&f, 1000, 3 + i, PSCOPE_ROLE_SERVER, 8080, (uint16_t)(10000 + i));

		trace_links_request(f.tl, c, 5000 + (uint64_t)i, 100, 0, "");
	}
	for (int i = 0; i < N; i++) {
		struct conn *c =
		    conn_of(&f, 1000, 3 + N + i, PSCOPE_ROLE_CLIENT, (uint16_t)(30000 + i), 6379);
		struct link_ctx cl;

		trace_links_complete(f.tl, c, 5000 + (uint64_t)i, false, 0, NULL, &cl);
		if (i % 2 == 0) {
			/* the server's span id is known once it completes: compare then */
			trace_links_complete(f.tl, conn_table_lookup(f.conns, 1000, 3 + i),
			                     5000 + (uint64_t)i, true, 0, "", &sv[i]);
			if (memcmp(cl.parent_span_id, sv[i].span_id, 8) ||
			    memcmp(cl.trace_id, sv[i].trace_id, 16))
				wrong++;
		} else if (!memcmp(cl.parent_span_id, zero8, 8)) {
			wrong++;
		}
	}
	CHECK_EQ_INT(wrong, 0);
	trace_links_get_stats(f.tl, &st);
	CHECK_EQ_INT(st.in_process_links, N);
	for (int i = 1; i < N; i += 2)
		trace_links_complete(f.tl, conn_table_lookup(f.conns, 1000, 3 + i),
		                     5000 + (uint64_t)i, true, 0, "", &sv[i]);
	for (int i = 0; i < N; i++) {
		struct link_ctx late;

		trace_links_complete(f.tl, conn_table_lookup(f.conns, 1000, 3 + N + i),
		                     5000 + (uint64_t)i, false, 0, NULL, &late);
		if (memcmp(late.parent_span_id, zero8, 8))
			not_root++;
	}
	CHECK_EQ_INT(not_root, 0);
cleanup:
	teardown(&f);
}

/* nginx (pid 60, thread 61) reads A then B in one timer-safe turn and opens an
 * upstream connection after each read: each is its reader's child although
 * two requests are in flight. The same sequence without the timer-safe mark
 * (a timer may have run) is ambiguous, as it is for a process not named
 * nginx; after a read of an answer to a parentless call (even after a
 * request's read), or of two pipelined requests at once, nothing is the last
 * reader's. */
static void test_synchronous_loop(void)
{
	struct fixture f;
	struct link_ctx a, b, up_a, up_b, up_late, up_other, up_foreign, up_pipe;
	const uint64_t safe = (uint64_t)LINK_TICK_SAFE_BIT << 32;

	setup(&f);
	struct conn *sa = conn_of(&f, 60, 5, PSCOPE_ROLE_SERVER, 8080, 42000);
	struct conn *sb = conn_of(&f, 60, 6, PSCOPE_ROLE_SERVER, 8080, 42001);
	struct conn *ua = conn_of(&f, 60, 7, PSCOPE_ROLE_CLIENT, 42002, 9000);
	struct conn *ub = conn_of(&f, 60, 8, PSCOPE_ROLE_CLIENT, 42003, 9000);
	struct conn *late = conn_of(&f, 60, 9, PSCOPE_ROLE_CLIENT, 42004, 9000);
	struct conn *idle = conn_of(&f, 60, 10, PSCOPE_ROLE_CLIENT, 42005, 9000);
	struct conn *fg = conn_of(&f, 60, 11, PSCOPE_ROLE_CLIENT, 42006, 9000);
	struct conn *sp = conn_of(&f, 60, 12, PSCOPE_ROLE_SERVER, 8080, 42007);
	struct conn *pp = conn_of(&f, 60, 13, PSCOPE_ROLE_CLIENT, 42008, 9000);
	struct conn *sc = conn_of(&f, 60, 14, PSCOPE_ROLE_SERVER, 8080, 42012);
	struct conn *other = conn_of(&f, 70, 5, PSCOPE_ROLE_CLIENT, 42009, 9000);
	struct conn *osv = conn_of(&f, 70, 6, PSCOPE_ROLE_SERVER, 8081, 42010);
	struct conn *osv2 = conn_of(&f, 70, 7, PSCOPE_ROLE_SERVER, 8081, 42011);

	for (int i = 5; i <= 14; i++) {
		struct conn *c = conn_table_lookup(f.conns, 60, i);

		if (c)
			memcpy(c->comm, "nginx", 6);
	}
	/* turn 1 (timer-safe): read A, connect for A, read B, connect for B */
	trace_links_request(f.tl, sa, loop_actor(61, 1) | safe, 100, 0, "");
	trace_links_io(f.tl, sa, loop_actor(61, 1) | safe, true, false, true);
	trace_links_connect(f.tl, ua, loop_actor(61, 1) | safe);
	trace_links_request(f.tl, sb, loop_actor(61, 1) | safe, 101, 0, "");
	trace_links_io(f.tl, sb, loop_actor(61, 1) | safe, true, false, true);
	trace_links_connect(f.tl, ub, loop_actor(61, 1) | safe);
	/* the writes come in later turns: the connections' openers decide */
	trace_links_request(f.tl, ub, loop_actor(61, 2), 102, 0, "");
	trace_links_request(f.tl, ua, loop_actor(61, 2), 103, 0, "");
	/* later in turn 1 but no longer timer-safe: not the last reader's */
	trace_links_connect(f.tl, late, loop_actor(61, 1));
	trace_links_request(f.tl, late, loop_actor(61, 3), 104, 0, "");
	/* turn 4: the answer to a parentless call, then a write: nobody's */
	trace_links_request(f.tl, idle, loop_actor(61, 3), 105, 0,
	                    ""); /* a root (turn 3: no reads) */
	trace_links_request(f.tl, sc, loop_actor(61, 4) | safe, 105, 0, "");
	trace_links_io(f.tl, sc, loop_actor(61, 4) | safe, true, false, true);
	trace_links_io(f.tl, idle, loop_actor(61, 4) | safe, true, true, true);
	trace_links_request(f.tl, fg, loop_actor(61, 4) | safe, 106, 0, "");
	/* turn 5: one read brings two pipelined requests */
	trace_links_request(f.tl, sp, loop_actor(61, 5) | safe, 107, 0, "");
	trace_links_request(f.tl, sp, loop_actor(61, 5) | safe, 108, 1, "");
	trace_links_io(f.tl, sp, loop_actor(61, 5) | safe, true, false, true);
	trace_links_request(f.tl, pp, loop_actor(61, 5) | safe, 109, 0, "");
	/* not nginx: two requests read in the turn, the call ambiguous */
	trace_links_request(f.tl, osv, loop_actor(71, 1) | safe, 110, 0, "");
	trace_links_io(f.tl, osv, loop_actor(71, 1) | safe, true, false, true);
	trace_links_request(f.tl, osv2, loop_actor(71, 1) | safe, 111, 0, "");
	trace_links_io(f.tl, osv2, loop_actor(71, 1) | safe, true, false, true);
	trace_links_request(f.tl, other, loop_actor(71, 1) | safe, 112, 0, "");

	trace_links_complete(f.tl, ua, loop_actor(61, 6), true, 0, "", &up_a);
	trace_links_complete(f.tl, ub, loop_actor(61, 6), true, 0, "", &up_b);
	trace_links_complete(f.tl, late, loop_actor(61, 6), true, 0, "", &up_late);
	trace_links_complete(f.tl, fg, loop_actor(61, 6), true, 0, "", &up_foreign);
	trace_links_complete(f.tl, pp, loop_actor(61, 6), true, 0, "", &up_pipe);
	trace_links_complete(f.tl, other, loop_actor(71, 2), true, 0, "", &up_other);
	trace_links_complete(f.tl, sa, loop_actor(61, 6), true, 0, "", &a);
	trace_links_complete(f.tl, sb, loop_actor(61, 6), true, 0, "", &b);

	CHECK(!memcmp(up_a.parent_span_id, a.span_id, 8));
	CHECK(!memcmp(up_a.trace_id, a.trace_id, 16));
	CHECK(!memcmp(up_b.parent_span_id, b.span_id, 8));
	CHECK(!memcmp(up_b.trace_id, b.trace_id, 16));
	CHECK(!memcmp(up_late.parent_span_id, zero8, 8));
	CHECK(!memcmp(up_foreign.parent_span_id, zero8, 8));
	CHECK(!memcmp(up_pipe.parent_span_id, zero8, 8));
	CHECK(!memcmp(up_other.parent_span_id, zero8, 8));
	teardown(&f);
}

int main(void)
{
	RUN(test_context_for_logs);
	RUN(test_chain_links);
	RUN(test_pairing_mixed_families);
	RUN(test_ambiguous_thread);
	RUN(test_traceparent_and_late_pairing);
	RUN(test_unanswered_request_frees_thread);
	RUN(test_pairing_from_the_client_side);
	RUN(test_pairing_after_the_answer);
	RUN(test_late_client_moves_trace);
	RUN(test_logged_request_keeps_its_trace);
	RUN(test_goroutine_and_no_process_fallback);
	RUN(test_event_loop_turns);
	RUN(test_synchronous_loop);
	RUN(test_timer_opened_connection);
	RUN(test_turn_first_call_even_unlinked);
	RUN(test_phased_loop_segments);
	RUN(test_asyncio_tasks);
	RUN(test_asyncio_task_outlives_other_tasks);
	RUN(test_connection_task);
	RUN(test_goroutine_keys_per_process);
	RUN(test_http2_streams_out_of_order);
	RUN(test_http2_client_event_late);
	RUN(test_thread_table_growth);
	return unit_summary("test_trace_links");
}
