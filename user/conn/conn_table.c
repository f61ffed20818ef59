/* conn_table.c — the TCP connections the agent follows, keyed by (pid, fd) and
 * checked against the kernel socket id so fd reuse never mixes connections.
 * Chained hash table plus an LRU list for eviction and idle expiry. The
 * bucket arrays start small and double (order-preserving split of each chain)
 * while the count outgrows them, up to a size for max: an idle agent sized for
 * 262,144 connections holds 16 kB of buckets, not two 2 MiB arrays whose pages
 * a few hundred connections hashed all over would each dirty. */
#include <stdlib.h>
#include <string.h>

#include "conn/conn_addr.h"
#include "conn/conn_table.h"

#define MIN_BUCKETS 1024 /* power of two */
#define MAX_BUCKETS (1u << 22)

struct conn_table {
	struct conn **buckets;
	struct conn **tbuckets; /* by 4-tuple, same size */
	size_t n_buckets;       /* power of two; grows up to max_buckets */
	size_t max_buckets;     /* power of two: max connections, rounded up */
	size_t count;
	size_t max;
	uint64_t evictions;
	struct conn *lru_head, *lru_tail;
	conn_release_fn release;
	void *ctx;
};

static size_t bucket_of(const struct conn_table *t, uint32_t pid, int32_t fd)
{
	uint64_t k = ((uint64_t)pid << 32) | (uint32_t)fd;

	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k & (t->n_buckets - 1);
}

/* An address as IPv6, IPv4 mapped, so both families of one peer compare equal. */
static void addr_normalize(uint8_t family, const uint8_t in[16], uint8_t out[16])
{
	if (family == 2 /* AF_INET */) {
		memset(out, 0, 10);
		out[10] = 0xff;
		out[11] = 0xff;
		memcpy(out + 12, in, 4);
	} else {
		memcpy(out, in, 16);
	}
}

static size_t tuple_bucket(const struct conn_table *t, uint8_t family, const uint8_t local[16],
                           uint16_t lport, const uint8_t remote[16], uint16_t rport)
{
	uint8_t a[32];
	uint64_t w[4], h = 1469598103934665603ULL;

	/* eight bytes a step: the tuple is hashed for every request (peer lookups) */
	addr_normalize(family, local, a);
	addr_normalize(family, remote, a + 16);
	memcpy(w, a, sizeof(w));
	for (int i = 0; i < 4; i++) {
		h = (h ^ w[i]) * 0x9e3779b97f4a7c15ULL;
		h ^= h >> 32;
	}
	h = (h ^ ((uint64_t)lport << 16 | rport)) * 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	return h & (t->n_buckets - 1);
}

static size_t tuple_bucket_of(const struct conn_table *t, const struct conn *c)
{
	return tuple_bucket(t, c->ref.family, c->ref.local_addr, c->ref.local_port,
	                    c->ref.remote_addr, c->ref.remote_port);
}

/* The connection with this 4-tuple, and on socket *sock_id unless NULL. */
static struct conn *tuple_find(struct conn_table *t, uint8_t family, const uint8_t local[16],
                               uint16_t lport, const uint8_t remote[16], uint16_t rport,
                               const uint64_t *sock_id)
{
	uint8_t la[16], ra[16], ca[16], cb[16];
	struct conn *c = t->tbuckets[tuple_bucket(t, family, local, lport, remote, rport)];

	addr_normalize(family, local, la);
	addr_normalize(family, remote, ra);
	for (; c; c = c->tnext) {
		if (c->ref.local_port != lport || c->ref.remote_port != rport ||
		    (sock_id && c->ref.sock_id != *sock_id))
			continue;
		addr_normalize(c->ref.family, c->ref.local_addr, ca);
		addr_normalize(c->ref.family, c->ref.remote_addr, cb);
		if (!memcmp(ca, la, 16) && !memcmp(cb, ra, 16))
			return c;
	}
	return NULL;
}

struct conn *conn_table_lookup_tuple(struct conn_table *t, uint8_t family, const uint8_t local[16],
                                     uint16_t lport, const uint8_t remote[16], uint16_t rport)
{
	return tuple_find(t, family, local, lport, remote, rport, NULL);
}

struct conn *conn_table_lookup_sock(struct conn_table *t, uint8_t family, const uint8_t local[16],
                                    uint16_t lport, const uint8_t remote[16], uint16_t rport,
                                    uint64_t sock_id)
{
	return tuple_find(t, family, local, lport, remote, rport, &sock_id);
}

struct conn_table *conn_table__new(size_t max, conn_release_fn release, void *ctx)
{
	struct conn_table *t = calloc(1, sizeof(*t));
	size_t n = MIN_BUCKETS;

	if (!t)
		return NULL;
	t->max_buckets = MIN_BUCKETS;
	while (t->max_buckets < max && t->max_buckets < MAX_BUCKETS)
		t->max_buckets <<= 1;
	t->buckets = calloc(n, sizeof(*t->buckets));
	t->tbuckets = calloc(n, sizeof(*t->tbuckets));
	if (!t->buckets || !t->tbuckets) {
		free(t->buckets);
		free(t->tbuckets);
		free(t);
		return NULL;
	}
	t->n_buckets = n;
	t->max = max ? max : 1;
	t->release = release;
	t->ctx = ctx;
	return t;
}

/* Splits each chain of old (n_old buckets) into new[i] and new[i + n_old], in
 * order: the bucket index keeps its low bits, and a chain's order (newest
 * first) stays, so the 4-tuple lookup still finds the newest of a shared
 * socket first. next_of gives a conn's link of the chain kind. */
static void split_chains(struct conn **old, struct conn **new, size_t n_old,
                         struct conn **(*next_of)(struct conn *c),
                         size_t (*bucket)(const struct conn_table *t, const struct conn *c),
                         const struct conn_table *t)
{
	for (size_t i = 0; i < n_old; i++) {
		struct conn **lo = &new[i], **hi = &new[i + n_old];

		for (struct conn *c = old[i], *next; c; c = next) {
			struct conn ***tail = bucket(t, c) == i ? &lo : &hi;

			next = *next_of(c);
			**tail = c;
			*tail = next_of(c);
		}
		*lo = NULL;
		*hi = NULL;
	}
}

static struct conn **hnext_of(struct conn *c)
{
	return &c->hnext;
}

static struct conn **tnext_of(struct conn *c)
{
	return &c->tnext;
}

static size_t pid_fd_bucket_of(const struct conn_table *t, const struct conn *c)
{
	return bucket_of(t, c->ref.pid, c->ref.fd);
}

/* Doubles both bucket arrays. Out of memory, the table stays as it is (longer
 * chains); no entry is ever lost. */
static void grow(struct conn_table *t)
{
	size_t n_old = t->n_buckets, n = n_old * 2;
	struct conn **b = calloc(n, sizeof(*b)), **tb = calloc(n, sizeof(*tb));

	if (!b || !tb) {
		free(b);
		free(tb);
		return;
	}
	t->n_buckets = n; /* the hashes below mask with the new size */
	split_chains(t->buckets, b, n_old, hnext_of, pid_fd_bucket_of, t);
	split_chains(t->tbuckets, tb, n_old, tnext_of, tuple_bucket_of, t);
	free(t->buckets);
	free(t->tbuckets);
	t->buckets = b;
	t->tbuckets = tb;
}

static void lru_unlink(struct conn_table *t, struct conn *c)
{
	if (c->lru_prev)
		c->lru_prev->lru_next = c->lru_next;
	else
		t->lru_head = c->lru_next;
	if (c->lru_next)
		c->lru_next->lru_prev = c->lru_prev;
	else
		t->lru_tail = c->lru_prev;
	c->lru_prev = c->lru_next = NULL;
}

static void lru_push_tail(struct conn_table *t, struct conn *c)
{
	c->lru_prev = t->lru_tail;
	c->lru_next = NULL;
	if (t->lru_tail)
		t->lru_tail->lru_next = c;
	else
		t->lru_head = c;
	t->lru_tail = c;
}

void conn_table_remove(struct conn_table *t, struct conn *c)
{
	struct conn **pp = &t->buckets[bucket_of(t, c->ref.pid, c->ref.fd)];

	while (*pp && *pp != c)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = c->hnext;
	pp = &t->tbuckets[tuple_bucket_of(t, c)];
	while (*pp && *pp != c)
		pp = &(*pp)->tnext;
	if (*pp)
		*pp = c->tnext;
	lru_unlink(t, c);
	t->count--;
	if (t->release)
		t->release(t->ctx, c);
	conn_addr_text_free(c);
	free(c);
}

void conn_table__free(struct conn_table *t)
{
	if (!t)
		return;
	while (t->lru_head)
		conn_table_remove(t, t->lru_head);
	free(t->buckets);
	free(t->tbuckets);
	free(t);
}

struct conn *conn_table_lookup(struct conn_table *t, uint32_t pid, int32_t fd)
{
	struct conn *c = t->buckets[bucket_of(t, pid, fd)];

	while (c && !(c->ref.pid == pid && c->ref.fd == fd))
		c = c->hnext;
	return c;
}

/* The connection of the same process on the same socket under another fd:
 * dup(), F_DUPFD or Rust's try_clone() give one socket two fds (one to read,
 * one to write), and both must feed one parser. */
static struct conn *lookup_same_socket(struct conn_table *t, const struct pscope_conn_ref *ref)
{
	struct conn *c = t->tbuckets[tuple_bucket(t, ref->family, ref->local_addr, ref->local_port,
	                                          ref->remote_addr, ref->remote_port)];

	for (; c; c = c->tnext)
		if (c->ref.sock_id == ref->sock_id && c->ref.pid == ref->pid &&
		    c->ref.proc_start_ns == ref->proc_start_ns)
			return c;
	return NULL;
}

void conn_table_touch(struct conn_table *t, struct conn *c, const struct pscope_conn_ref *ref,
                      uint64_t now_ns)
{
	/* a socket first seen with an unknown role learns it from accept/connect */
	if (c->ref.role == PSCOPE_ROLE_UNKNOWN && ref->role != PSCOPE_ROLE_UNKNOWN)
		c->ref.role = ref->role;
	c->last_seen_ns = now_ns;
	lru_unlink(t, c);
	lru_push_tail(t, c);
}

struct conn *conn_table_upsert(struct conn_table *t, const struct pscope_conn_ref *ref,
                               uint64_t now_ns)
{
	struct conn *c = conn_table_lookup(t, ref->pid, ref->fd);
	size_t b;

	if (c && (c->ref.sock_id != ref->sock_id || c->ref.proc_start_ns != ref->proc_start_ns)) {
		conn_table_remove(t, c); /* the fd (or pid) was reused */
		c = NULL;
	}
	if (!c)
		c = lookup_same_socket(t, ref);
	if (c) {
		conn_table_touch(t, c, ref, now_ns);
		return c;
	}
	if (t->count >= t->max && t->lru_head) {
		conn_table_remove(t, t->lru_head);
		t->evictions++;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ref = *ref;
	c->last_seen_ns = now_ns;
	b = bucket_of(t, ref->pid, ref->fd);
	c->hnext = t->buckets[b];
	t->buckets[b] = c;
	b = tuple_bucket_of(t, c);
	c->tnext = t->tbuckets[b];
	t->tbuckets[b] = c;
	lru_push_tail(t, c);
	t->count++;
	if (t->count > t->n_buckets && t->n_buckets < t->max_buckets)
		grow(t);
	return c;
}

void conn_table_for_pid(struct conn_table *t, uint32_t pid, void (*fn)(void *ctx, struct conn *c),
                        void *ctx)
{
	for (struct conn *c = t->lru_head; c; c = c->lru_next)
		if (c->ref.pid == pid)
			fn(ctx, c);
}

void conn_table_remove_pid(struct conn_table *t, uint32_t pid)
{
	struct conn *c = t->lru_head;

	while (c) {
		struct conn *next = c->lru_next;
		if (c->ref.pid == pid)
			conn_table_remove(t, c);
		c = next;
	}
}

size_t conn_table_expire(struct conn_table *t, uint64_t cutoff_ns)
{
	size_t n = 0;

	while (t->lru_head && t->lru_head->last_seen_ns < cutoff_ns) {
		conn_table_remove(t, t->lru_head);
		n++;
	}
	return n;
}

size_t conn_table_count(const struct conn_table *t)
{
	return t->count;
}

size_t conn_table_buckets(const struct conn_table *t)
{
	return t->n_buckets;
}

uint64_t conn_table_evictions(const struct conn_table *t)
{
	return t->evictions;
}
