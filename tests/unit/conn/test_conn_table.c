/* test_conn_table.c — connection tracking: lookup, fd reuse, pid reuse, eviction, expiry, the
 * 4-tuple index across IPv4, IPv6 and dual-stack (IPv4-mapped) sockets. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

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

/* The tuple lookup across families: an AF_INET6 (dual-stack) server end found from the
 * AF_INET client's tuple and back, pure IPv6 ends, and ::1 never matching 127.0.0.1. */
static struct pscope_conn_ref tuple_ref(uint32_t pid, int fd, uint8_t family, const uint8_t *local,
                                        uint16_t lport, const uint8_t *remote, uint16_t rport)
{
	struct pscope_conn_ref r = ref(pid, fd, (uint64_t)pid << 16 | (uint64_t)fd, 1);

	r.family = family;
	memcpy(r.local_addr, local, 16);
	memcpy(r.remote_addr, remote, 16);
	r.local_port = lport;
	r.remote_port = rport;
	return r;
}

static void test_tuple_lookup_families(void)
{
	static const uint8_t v4[16] = {127, 0, 0, 1}, v4b[16] = {10, 1, 2, 3};
	static const uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1};
	static const uint8_t mappedb[16] = {[10] = 0xff, [11] = 0xff, 10, 1, 2, 3};
	static const uint8_t lo6[16] = {[15] = 1};
	static const uint8_t v6a[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0xa};
	static const uint8_t v6b[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 0xb};
	static const uint8_t compat[16] = {[12] = 127, [15] = 1}; /* ::127.0.0.1, not mapped */
	struct conn_table *t = conn_table__new(100, on_release, NULL);
	struct pscope_conn_ref r;
	struct conn *v4cl, *dssv, *dscl, *v4sv, *c6, *s6, *cb;

	/* v4 client → dual-stack server (the server's socket sees ::ffff:127.0.0.1) */
	r = tuple_ref(1, 3, AF_INET, v4, 41000, v4, 8080);
	v4cl = conn_table_upsert(t, &r, 1);
	r = tuple_ref(2, 4, AF_INET6, mapped, 8080, mapped, 41000);
	dssv = conn_table_upsert(t, &r, 1);
	/* dual-stack client (a v6 socket connecting to 127.0.0.1) → v4 server */
	r = tuple_ref(3, 5, AF_INET6, mapped, 42000, mapped, 9090);
	dscl = conn_table_upsert(t, &r, 1);
	r = tuple_ref(4, 6, AF_INET, v4, 9090, v4, 42000);
	v4sv = conn_table_upsert(t, &r, 1);
	/* pure IPv6 on ::1 with the same ports as the v4 pair: another connection */
	r = tuple_ref(5, 7, AF_INET6, lo6, 41000, lo6, 8080);
	c6 = conn_table_upsert(t, &r, 1);
	r = tuple_ref(6, 8, AF_INET6, lo6, 8080, lo6, 41000);
	s6 = conn_table_upsert(t, &r, 1);
	/* global IPv6 and IPv4 addresses, not loopback */
	r = tuple_ref(7, 9, AF_INET6, v6a, 43000, v6b, 443);
	struct conn *g6 = conn_table_upsert(t, &r, 1);
	r = tuple_ref(8, 10, AF_INET6, mappedb, 44000, mapped, 80);
	cb = conn_table_upsert(t, &r, 1);
	CHECK_EQ_INT(conn_table_count(t), 8);

	/* each end's mirrored tuple, in its own family, finds the other end */
	CHECK(conn_table_lookup_tuple(t, AF_INET, v4, 8080, v4, 41000) == dssv);
	CHECK(conn_table_lookup_tuple(t, AF_INET6, mapped, 41000, mapped, 8080) == v4cl);
	CHECK(conn_table_lookup_tuple(t, AF_INET, v4, 9090, v4, 42000) == v4sv);
	CHECK(conn_table_lookup_tuple(t, AF_INET6, mapped, 42000, mapped, 9090) == dscl);
	CHECK(conn_table_lookup_tuple(t, AF_INET6, mapped, 9090, mapped, 42000) == v4sv);
	CHECK(conn_table_lookup_tuple(t, AF_INET, v4, 42000, v4, 9090) == dscl);
	CHECK(conn_table_lookup_tuple(t, AF_INET6, lo6, 8080, lo6, 41000) == s6);
	CHECK(conn_table_lookup_tuple(t, AF_INET6, lo6, 41000, lo6, 8080) == c6);
	CHECK(conn_table_lookup_tuple(t, AF_INET6, v6b, 443, v6a, 43000) == NULL);
	CHECK(conn_table_lookup_tuple(t, AF_INET6, v6a, 43000, v6b, 443) == g6);
	CHECK(conn_table_lookup_tuple(t, AF_INET, v4b, 44000, v4, 80) == cb);
	/* ::1 is not 127.0.0.1, ::127.0.0.1 is not ::ffff:127.0.0.1, addresses are not swapped */
	CHECK(conn_table_lookup_tuple(t, AF_INET6, lo6, 9090, lo6, 42000) == NULL);
	CHECK(conn_table_lookup_tuple(t, AF_INET6, compat, 8080, compat, 41000) == NULL);
	CHECK(conn_table_lookup_tuple(t, AF_INET, v4, 80, v4b, 44000) == NULL);
	conn_table_remove(t, dssv);
	CHECK(conn_table_lookup_tuple(t, AF_INET, v4, 8080, v4, 41000) == NULL);
	CHECK(conn_table_lookup_tuple(t, AF_INET6, lo6, 8080, lo6, 41000) == s6);
	conn_table__free(t);
}

/* The socket lookup (a destroyed socket's end): each process sharing the
 * socket (fork) has its connection on it, found one after another; a
 * connection with the same tuple on another socket (an earlier one, not yet
 * gone) is not. */
static void test_sock_lookup(void)
{
	static const uint8_t lo[16] = {127, 0, 0, 1};
	struct conn_table *t = conn_table__new(100, on_release, NULL);
	struct pscope_conn_ref r;
	struct conn *parent, *child, *old, *c;
	int found = 0;

	r = tuple_ref(10, 5, AF_INET, lo, 8080, lo, 41000);
	r.sock_id = 0xbeef;
	parent = conn_table_upsert(t, &r, 1);
	r.pid = 11;
	child = conn_table_upsert(t, &r, 2);
	r.pid = 12;
	r.sock_id = 0xdead;
	old = conn_table_upsert(t, &r, 3);
	CHECK(parent && child && old && parent != child);
	CHECK(conn_table_lookup_sock(t, AF_INET, lo, 8080, lo, 41000, 0xfeed) == NULL);
	CHECK(conn_table_lookup_sock(t, AF_INET, lo, 41000, lo, 8080, 0xbeef) == NULL);
	while ((c = conn_table_lookup_sock(t, AF_INET, lo, 8080, lo, 41000, 0xbeef))) {
		CHECK(c == parent || c == child);
		conn_table_remove(t, c);
		found++;
	}
	CHECK_EQ_INT(found, 2);
	CHECK(conn_table_lookup_sock(t, AF_INET, lo, 8080, lo, 41000, 0xdead) == old);
	CHECK(conn_table_lookup_tuple(t, AF_INET, lo, 8080, lo, 41000) == old);
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

/* The bucket arrays start at 1024 and double as connections come, up to the size for max;
 * every connection stays findable by (pid, fd) and by 4-tuple across each growth, a shared
 * socket's newest connection is still found first by tuple, and removal works after. */
static void test_growth(void)
{
	enum { N = 20000 };
	struct conn_table *t = conn_table__new(N, on_release, NULL);
	const uint8_t v4[16] = {10, 0, 0, 1};
	struct conn **all = calloc(N, sizeof(*all));
	struct pscope_conn_ref shared_old, shared_new;
	struct conn *old_c, *new_c;
	size_t grown_at = 0;
	int lost = 0, lost_tuple = 0;

	CHECK(t && all);
	if (!t || !all)
		goto cleanup;
	CHECK_EQ_INT(conn_table_buckets(t), 1024);
	/* one socket shared by two processes (fork): the same tuple twice, the second newer */
	shared_old = tuple_ref(900000, 3, 2, v4, 5000, v4, 80);
	shared_new = tuple_ref(900001, 3, 2, v4, 5000, v4, 80);
	shared_new.sock_id = shared_old.sock_id;
	old_c = conn_table_upsert(t, &shared_old, 1);
	new_c = conn_table_upsert(t, &shared_new, 1);
	CHECK(conn_table_lookup_tuple(t, 2, v4, 5000, v4, 80) == new_c);
	for (int i = 0; i < N - 2; i++) {
		struct pscope_conn_ref r =
		    tuple_ref(1000 + i / 100, i % 100 + 3, 2, v4, (uint16_t)(10000 + i % 50000), v4,
		              (uint16_t)(1 + i / 50000));

		all[i] = conn_table_upsert(t, &r, 2);
		CHECK(all[i] != NULL);
		if (!grown_at && conn_table_buckets(t) > 1024)
			grown_at = conn_table_count(t);
	}
	CHECK_EQ_INT(grown_at, 1025);
	CHECK_EQ_INT(conn_table_count(t), N);
	CHECK_EQ_INT(conn_table_buckets(t), 32768); /* max 20000, rounded up */
	CHECK_EQ_INT(conn_table_evictions(t), 0);
	for (int i = 0; i < N - 2; i++) {
		if (conn_table_lookup(t, 1000 + i / 100, i % 100 + 3) != all[i])
			lost++;
		if (conn_table_lookup_tuple(t, 2, v4, (uint16_t)(10000 + i % 50000), v4,
		                            (uint16_t)(1 + i / 50000)) != all[i])
			lost_tuple++;
	}
	CHECK_EQ_INT(lost, 0);
	CHECK_EQ_INT(lost_tuple, 0);
	CHECK(conn_table_lookup(t, 900000, 3) == old_c);
	CHECK(conn_table_lookup_tuple(t, 2, v4, 5000, v4, 80) == new_c);
	conn_table_remove(t, new_c);
	CHECK(conn_table_lookup_tuple(t, 2, v4, 5000, v4, 80) == old_c);
	for (int i = 0; i < N - 2; i += 2)
		conn_table_remove(t, all[i]);
	for (int i = 1; i < N - 2; i += 2)
		if (conn_table_lookup(t, 1000 + i / 100, i % 100 + 3) != all[i])
			lost++;
	CHECK_EQ_INT(lost, 0);
	CHECK_EQ_INT(conn_table_count(t), N / 2);
cleanup:
	conn_table__free(t);
	free(all);
}

int main(void)
{
	RUN(test_insert_lookup);
	RUN(test_fd_and_pid_reuse);
	RUN(test_role_learned);
	RUN(test_eviction_and_expiry);
	RUN(test_tuple_lookup);
	RUN(test_tuple_lookup_families);
	RUN(test_sock_lookup);
	RUN(test_dup_fd_shares_connection);
	RUN(test_growth);
	return unit_summary("test_conn_table");
}
