/* test_conn_table.c — connection tracking: lookup, fd reuse, pid reuse, eviction, expiry. */
#include <stdlib.h>
#include <string.h>

#include "conn/conn_table.h"
#include "unit.h"

static int released;

static void on_release(void *ctx, struct conn *c)
{
	(void)ctx;
	(void)c;
	released++;
}

static struct pscope_conn_ref ref(uint32_t pid, int32_t fd, uint64_t sock, uint64_t start)
{
	struct pscope_conn_ref r = {0};

	r.pid = pid;
	r.fd = fd;
	r.sock_id = sock;
	r.proc_start_ns = start;
	r.role = PSCOPE_ROLE_SERVER;
	return r;
}

static void test_insert_lookup(void)
{
	struct conn_table *t = conn_table__new(100, on_release, NULL);
	struct pscope_conn_ref r1 = ref(10, 3, 0xaaa, 1), r2 = ref(10, 4, 0xbbb, 1);
	struct conn *a = conn_table_upsert(t, &r1, 1);
	struct conn *b = conn_table_upsert(t, &r2, 2);

	CHECK(a && b && a != b);
	CHECK(conn_table_lookup(t, 10, 3) == a);
	CHECK(conn_table_lookup(t, 10, 4) == b);
	CHECK(conn_table_lookup(t, 11, 3) == NULL);
	CHECK(conn_table_upsert(t, &r1, 3) == a);
	CHECK_EQ_INT(conn_table_count(t), 2);
	released = 0;
	conn_table__free(t);
	CHECK_EQ_INT(released, 2);
}

static void test_fd_and_pid_reuse(void)
{
	struct conn_table *t = conn_table__new(100, on_release, NULL);
	struct pscope_conn_ref r1 = ref(10, 3, 0xaaa, 1);
	struct pscope_conn_ref r_fd = ref(10, 3, 0xccc, 1);  /* same fd, new socket */
	struct pscope_conn_ref r_pid = ref(10, 3, 0xccc, 9); /* same pid, new process */
	struct conn *a;

	released = 0;
	a = conn_table_upsert(t, &r1, 1);
	a->protocol = 7;
	a = conn_table_upsert(t, &r_fd, 2);
	CHECK_EQ_INT(released, 1);
	CHECK_EQ_INT(a->protocol, 0);
	CHECK_EQ_INT(a->ref.sock_id, 0xccc);
	a = conn_table_upsert(t, &r_pid, 3);
	CHECK_EQ_INT(released, 2);
	CHECK_EQ_INT(a->ref.proc_start_ns, 9);
	CHECK_EQ_INT(conn_table_count(t), 1);
	conn_table__free(t);
}

static void test_role_learned(void)
{
	struct conn_table *t = conn_table__new(100, NULL, NULL);
	struct pscope_conn_ref r = ref(1, 5, 0x1, 1);
	struct conn *c;

	r.role = PSCOPE_ROLE_UNKNOWN;
	c = conn_table_upsert(t, &r, 1);
	CHECK_EQ_INT(c->ref.role, PSCOPE_ROLE_UNKNOWN);
	r.role = PSCOPE_ROLE_CLIENT;
	c = conn_table_upsert(t, &r, 2);
	CHECK_EQ_INT(c->ref.role, PSCOPE_ROLE_CLIENT);
	conn_table__free(t);
}

static void test_eviction_and_expiry(void)
{
	struct conn_table *t = conn_table__new(16, on_release, NULL);

	released = 0;
	for (int i = 0; i < 20; i++) {
		struct pscope_conn_ref r = ref(1, i, 100 + i, 1);
		conn_table_upsert(t, &r, (uint64_t)i);
	}
	CHECK_EQ_INT(conn_table_count(t), 16);
	CHECK_EQ_INT(conn_table_evictions(t), 4);
	CHECK(conn_table_lookup(t, 1, 0) == NULL); /* oldest went first */
	CHECK(conn_table_lookup(t, 1, 19) != NULL);
	CHECK_EQ_INT(conn_table_expire(t, 10), 6); /* seen at 4..9 */
	CHECK_EQ_INT(conn_table_count(t), 10);
	conn_table_remove_pid(t, 1);
	CHECK_EQ_INT(conn_table_count(t), 0);
	CHECK_EQ_INT(released, 20);
	conn_table__free(t);
}

/* The two ends of one loopback connection find each other by the mirrored
 * tuple, across IPv4 and IPv4-mapped IPv6; removal unlinks the index. */
static void test_tuple_lookup(void)
{
	struct conn_table *t = conn_table__new(100, on_release, NULL);
	struct pscope_conn_ref cl = ref(20, 5, 0x111, 1), sv = ref(30, 7, 0x222, 1);
	const uint8_t v4[16] = {127, 0, 0, 1};
	uint8_t mapped[16] = {0};
	struct conn *c, *s;

	mapped[10] = mapped[11] = 0xff;
	mapped[12] = 127;
	mapped[15] = 1;
	cl.role = PSCOPE_ROLE_CLIENT;
	cl.family = 2;
	memcpy(cl.local_addr, v4, 16);
	memcpy(cl.remote_addr, v4, 16);
	cl.local_port = 40000;
	cl.remote_port = 8080;
	sv.family = 10;
	memcpy(sv.local_addr, mapped, 16);
	memcpy(sv.remote_addr, mapped, 16);
	sv.local_port = 8080;
	sv.remote_port = 40000;
	c = conn_table_upsert(t, &cl, 1);
	s = conn_table_upsert(t, &sv, 1);
	CHECK(conn_table_lookup_tuple(t, sv.family, sv.remote_addr, sv.remote_port, sv.local_addr,
	                              sv.local_port) == c);
	CHECK(conn_table_lookup_tuple(t, cl.family, cl.remote_addr, cl.remote_port, cl.local_addr,
	                              cl.local_port) == s);
	CHECK(conn_table_lookup_tuple(t, cl.family, cl.remote_addr, 1234, cl.local_addr,
	                              cl.local_port) == NULL);
	conn_table_remove(t, c);
	CHECK(conn_table_lookup_tuple(t, sv.family, sv.remote_addr, sv.remote_port, sv.local_addr,
	                              sv.local_port) == NULL);
	conn_table__free(t);
}

static void test_dup_fd_shares_connection(void)
{
	struct conn_table *t = conn_table__new(100, on_release, NULL);
	struct pscope_conn_ref orig = ref(10, 4, 0xaaa, 1);
	struct pscope_conn_ref dup = ref(10, 6, 0xaaa, 1);   /* F_DUPFD of fd 4 */
	struct pscope_conn_ref other = ref(11, 6, 0xaaa, 1); /* another process */
	struct conn *a = conn_table_upsert(t, &orig, 1);

	CHECK(conn_table_upsert(t, &dup, 2) == a);
	CHECK_EQ_INT(conn_table_count(t), 1);
	CHECK(conn_table_lookup(t, 10, 6) == NULL); /* close(6) leaves it alone */
	CHECK(conn_table_upsert(t, &other, 3) != a);
	CHECK_EQ_INT(conn_table_count(t), 2);
	conn_table__free(t);
}

int main(void)
{
	RUN(test_insert_lookup);
	RUN(test_fd_and_pid_reuse);
	RUN(test_role_learned);
	RUN(test_eviction_and_expiry);
	RUN(test_tuple_lookup);
	RUN(test_dup_fd_shares_connection);
	return unit_summary("test_conn_table");
}
