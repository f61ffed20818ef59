/* conn_table.h — the TCP connections the agent follows, keyed by (pid, fd) and
 * checked against the kernel socket id so fd reuse never mixes connections. */
#ifndef PERISCOPE_CONN_TABLE_H
#define PERISCOPE_CONN_TABLE_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "periscope_abi.h"

struct link_ring;
struct conn_addr_text;

struct conn {
	struct pscope_conn_ref ref; /* pid, fd, sock id, role, addresses, ports */
	char comm[16];
	uint8_t protocol; /* enum l7_protocol, set by the session layer */
	uint8_t flags;    /* CONN_FLAG_* */
	uint8_t peer_end; /* 0, or how the peer ended it first (enum l7_end: FIN or reset) */
	uint64_t peer_end_ns;
	/* event loops, protocols without a request hook: the parent the turn
	 * that wrote the pending request chose (trace_links_io) */
	uint8_t write_parent;      /* 0 none taken, 1 a root, 2 ambiguous, 3 parent */
	bool write_parent_connect; /* taken when the connection was opened */
	uint32_t serve_gkey;       /* Go HTTP/1 server: the goroutine that answers on it */
	int32_t write_parent_fd;
	uint64_t write_parent_sock, write_parent_seq;
	uint64_t last_seen_ns;
	void *session;           /* protocol state, owned through the table's release hook */
	struct link_ring *links; /* span ids of its requests in flight (trace_links.h) */
	struct conn_addr_text *addr_text; /* its addresses as text (conn_addr.h), owned */
	struct conn *hnext;
	struct conn *tnext;               /* chain in the 4-tuple index */
	struct conn *lru_prev, *lru_next; /* least recently seen first */
};

#define CONN_FLAG_IGNORED     0x1  /* filtered out (--exe) */
#define CONN_FLAG_CHECKED     0x2  /* --exe filter evaluated */
#define CONN_FLAG_KERNEL_SKIP 0x4  /* the kernel was told to stop capturing it */
#define CONN_FLAG_TLS         0x8  /* plaintext read at the TLS library */
#define CONN_FLAG_RUNTIME     0x10 /* the process's runtime was looked at */
#define CONN_FLAG_GO          0x20 /* a Go program: events name their goroutine */

typedef void (*conn_release_fn)(void *ctx, struct conn *c);

struct conn_table;

/* max: connections kept at most; the least recently seen is evicted beyond it.
 * release is called for every connection that leaves the table. */
struct conn_table *conn_table__new(size_t max, conn_release_fn release, void *ctx);
void conn_table__free(struct conn_table *t); /* releases every connection; accepts NULL */

struct conn *conn_table_lookup(struct conn_table *t, uint32_t pid, int32_t fd);
/* Finds or creates the connection for ref. An entry with the same (pid, fd) but
 * another socket or process start is released and replaced. A second fd of the
 * same process on the same socket (dup) finds the first fd's connection.
 * NULL on ENOMEM. */
struct conn *conn_table_upsert(struct conn_table *t, const struct pscope_conn_ref *ref,
                               uint64_t now_ns);
/* Connection c (the one of ref's pid, fd and socket) was seen at now_ns: what
 * conn_table_upsert does to a connection it finds. */
void conn_table_touch(struct conn_table *t, struct conn *c, const struct pscope_conn_ref *ref,
                      uint64_t now_ns);
void conn_table_remove(struct conn_table *t, struct conn *c);
/* Calls fn for every connection of process pid (fn must not remove any). */
void conn_table_for_pid(struct conn_table *t, uint32_t pid, void (*fn)(void *ctx, struct conn *c),
                        void *ctx);
/* The connection whose local end is local:lport and remote end remote:rport
 * (16-byte addresses as in pscope_conn_ref, family AF_INET or AF_INET6; IPv4
 * and IPv4-mapped IPv6 match each other).
 * Used to find the other end of a connection between two local processes. */
struct conn *conn_table_lookup_tuple(struct conn_table *t, uint8_t family, const uint8_t local[16],
                                     uint16_t lport, const uint8_t remote[16], uint16_t rport);
/* The same, among the connections on kernel socket sock_id only: a socket
 * shared by processes (fork) has one connection in each. */
struct conn *conn_table_lookup_sock(struct conn_table *t, uint8_t family, const uint8_t local[16],
                                    uint16_t lport, const uint8_t remote[16], uint16_t rport,
                                    uint64_t sock_id);
/* Releases every connection of pid. */
void conn_table_remove_pid(struct conn_table *t, uint32_t pid);
/* Releases connections not seen since before cutoff_ns. Returns how many. */
size_t conn_table_expire(struct conn_table *t, uint64_t cutoff_ns);
size_t conn_table_count(const struct conn_table *t);
/* Hash buckets now: they double while the count outgrows them (1024 at first). */
size_t conn_table_buckets(const struct conn_table *t);
uint64_t conn_table_evictions(const struct conn_table *t);

#endif
