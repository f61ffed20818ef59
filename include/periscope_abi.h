/* periscope_abi.h — the events the kernel programs send to the agent, and the
 * maps' key/value layouts. This is the ABI between bpf/ and user/: every struct
 * has a fixed size, checked below, and is defined here only. */
#ifndef PERISCOPE_ABI_H
#define PERISCOPE_ABI_H

#ifdef __BPF__
/* vmlinux.h provides the kernel integer types */
typedef __u8 pscope_u8;
typedef __u16 pscope_u16;
typedef __u32 pscope_u32;
typedef __s32 pscope_s32;
typedef __u64 pscope_u64;
#else
#include <stdint.h>
typedef uint8_t pscope_u8;
typedef uint16_t pscope_u16;
typedef uint32_t pscope_u32;
typedef int32_t pscope_s32;
typedef uint64_t pscope_u64;
#endif

/* Largest payload one data event can carry; the configured capture sizes are
 * at most this. A power of two: the BPF side masks offsets with it. */
#define PSCOPE_CAPTURE_MAX     32768
#define PSCOPE_CAPTURE_DEFAULT 4096
/* Reads of a server connection (request heads: big cookies and JWTs must not
 * cost a request its traceparent) are captured up to this by default. */
#define PSCOPE_REQUEST_CAPTURE_DEFAULT 32768

/* Per-CPU event rings (the cpu_rings map, bpf/maps.bpf.h; read by
 * user/kernel/cpu_rings.c). Each CPU's element of the mmap-able array is a
 * control page, ring_size bytes of ring (a power of two) and
 * PSCOPE_CPU_RING_SLACK bytes past it, so that a record that starts near the
 * end lies in one piece (and the verifier's bound on a data event's copy,
 * offset < CAPTURE_MAX plus length < 2 * CAPTURE_MAX, stays in the map). A
 * record is a pscope_ring_rec header followed by one event, 8-byte aligned.
 * Producers (BPF programs, usually one per CPU at a time but preemptible ones
 * may interleave) claim space by compare-and-swap on head, write the header
 * with PSCOPE_RING_BUSY, the event (data events in place, straight from user
 * memory), then the length alone, with the space when the event came out
 * shorter than claimed; the consumer takes ready records in order, zeroes
 * them and moves tail. A zero length at tail: claimed, not yet written. */
#define PSCOPE_CPU_RING_CTL   4096
#define PSCOPE_CPU_RING_SLACK (3 * PSCOPE_CAPTURE_MAX + 4096)
#define PSCOPE_RING_BUSY      0x80000000u
struct pscope_cpu_ring_ctl {
	pscope_u64 head; /* bytes claimed by producers, ever */
	pscope_u64 pad0[7];
	pscope_u64 tail; /* bytes released by the consumer, ever */
	pscope_u64 pad1[7];
};
struct pscope_ring_rec {
	pscope_u32 len; /* of the event after this header; PSCOPE_RING_BUSY while written */
	/* bytes from this header to the next, when more than the event needs
	 * (a data event written in place whose copy faulted); 0: the event's */
	pscope_u32 space;
	pscope_u64 order_ns; /* when the space was claimed: the consumer merges CPUs by it */
};

enum pscope_event_type {
	PSCOPE_EV_DATA = 1,       /* bytes read or written on a TCP socket */
	PSCOPE_EV_CONN_OPEN = 2,  /* accept/connect returned a TCP socket */
	PSCOPE_EV_CONN_CLOSE = 3, /* close() of a TCP socket fd */
	PSCOPE_EV_PROC_EXIT = 4,  /* a process (thread group) exited */
	PSCOPE_EV_PROC_EXEC = 5,  /* a process called execve (a new program to look at) */
	PSCOPE_EV_PEER_END = 6,   /* the peer of a traced socket closed (FIN) or reset (RST) it */
	PSCOPE_EV_LOG = 7,        /* bytes written to stdout/stderr (--logs only) */
	PSCOPE_EV_TASK = 8,       /* a Python asyncio task was made or began a step */
	/* a traced socket is gone: its last fd closed and TCP done with it
	 * (tcp:tcp_destroy_sock; the socket-tracepoint path's close, which needs
	 * no syscall hook). Carried in a struct pscope_peer_end_event, how 0. */
	PSCOPE_EV_SOCK_CLOSED = 9,
};

/* pscope_peer_end_event.how */
enum pscope_peer_end {
	PSCOPE_PEER_FIN = 1, /* the peer closed its end: ESTABLISHED → CLOSE_WAIT */
	PSCOPE_PEER_RST = 2, /* reset: an open connection went straight to CLOSE */
};

/* pscope_event_header.flags */
#define PSCOPE_EVF_TLS 0x1 /* plaintext read at a TLS library call, not at the socket */
/* Data events of this socket were lost before this one (ring buffer full):
 * what the parser holds for the connection no longer lines up. */
#define PSCOPE_EVF_LOST 0x2
/* PROC_EXEC: the executable is in the agent's plain_exes map (looked at
 * before: no Go, no OpenSSL of its own), so nothing to inspect again. */
#define PSCOPE_EVF_PLAIN_EXE 0x4

/* Which end of the connection this process is. */
enum pscope_role {
	PSCOPE_ROLE_UNKNOWN = 0, /* socket existed before the agent saw it open */
	PSCOPE_ROLE_CLIENT = 1,  /* connect() */
	PSCOPE_ROLE_SERVER = 2,  /* accept() */
};

enum pscope_direction {
	PSCOPE_DIR_INGRESS = 0, /* the process read these bytes */
	PSCOPE_DIR_EGRESS = 1,  /* the process wrote these bytes */
};

/* The syscall family that moved the bytes (for debugging and record files). */
enum pscope_source {
	PSCOPE_SRC_READ = 0,
	PSCOPE_SRC_WRITE,
	PSCOPE_SRC_READV,
	PSCOPE_SRC_WRITEV,
	PSCOPE_SRC_RECVFROM,
	PSCOPE_SRC_SENDTO,
	PSCOPE_SRC_RECVMSG,
	PSCOPE_SRC_SENDMSG,
	PSCOPE_SRC_SENDFILE,
	PSCOPE_SRC_SSL_READ,     /* SSL_read / SSL_read_ex (uprobe) */
	PSCOPE_SRC_SSL_WRITE,    /* SSL_write / SSL_write_ex (uprobe) */
	PSCOPE_SRC_GO_TLS_READ,  /* Go crypto/tls.(*Conn).Read (uprobes) */
	PSCOPE_SRC_GO_TLS_WRITE, /* Go crypto/tls.(*Conn).Write (uprobes) */
};

/* Go crypto/tls uprobes (tls.bpf.h): the attach cookie of each probe packs
 * the byte offsets from a *tls.Conn to its socket's fd for the binary's Go
 * version (user/kernel/go_offsets.h), each below 256, and the direction:
 * field 0 tls.Conn.conn, 1 an interface's data word, 2 TCPConn's *netFD,
 * 3 netFD.pfd, 4 poll.FD.Sysfd, 5 enum pscope_direction. */
#define PSCOPE_GO_TLS_COOKIE(conn, data, netfd, pfd, sysfd, dir)                                   \
	((pscope_u64)(conn) | (pscope_u64)(data) << 8 | (pscope_u64)(netfd) << 16 |                \
	 (pscope_u64)(pfd) << 24 | (pscope_u64)(sysfd) << 32 | (pscope_u64)(dir) << 40)
#define PSCOPE_GO_TLS_COOKIE_FIELD(c, i) (((c) >> (8 * (i))) & 0xff)

/* Why an event or a piece of one was lost; per-CPU counters indexed by this. */
enum pscope_drop_reason {
	PSCOPE_DROP_RINGBUF_FULL = 0, /* bpf_ringbuf_output failed */
	PSCOPE_DROP_ACTIVE_FULL,      /* no room to remember a syscall in flight */
	PSCOPE_DROP_SOCK_FULL,        /* no room in the socket table */
	PSCOPE_DROP_READ_FAULT,       /* payload could not be read from user memory */
	PSCOPE_DROP_IOV_LIMIT,        /* payload beyond the iovec entries we walk */
	PSCOPE_DROP_TRUNCATED,        /* payload beyond the capture size (not an error) */
	PSCOPE_DROP_SSL_NO_FD,        /* TLS plaintext whose socket could not be found */
	PSCOPE_DROP__COUNT,
};

/* Every event starts with this. size covers the header and everything after
 * it, payload included. timestamp_ns is CLOCK_MONOTONIC (bpf_ktime_get_ns). */
struct pscope_event_header {
	pscope_u16 type;
	pscope_u16 flags;
	pscope_u32 size;
	pscope_u64 timestamp_ns;
};

/* Who and which socket: the common part of connection-scoped events.
 * sock_id is the kernel's struct sock address, unique while the socket lives;
 * proc_start_ns (the task's start_time) tells a reused pid from the old one. */
struct pscope_conn_ref {
	pscope_u32 pid; /* thread group id */
	pscope_u32 tid;
	pscope_s32 fd;
	pscope_u8 role;   /* enum pscope_role */
	pscope_u8 family; /* AF_INET or AF_INET6 */
	pscope_u16 pad0;
	pscope_u64 sock_id;
	pscope_u64 proc_start_ns;
	pscope_u8 local_addr[16]; /* IPv4 in the first 4 bytes, network order */
	pscope_u8 remote_addr[16];
	pscope_u16 local_port; /* host order */
	pscope_u16 remote_port;
	/* The thread's event-loop tick when the event was made: how many times
	 * it has returned from epoll_wait (or epoll_pwait/_pwait2). Events of one
	 * thread with the same tick belong to one turn (iteration) of its event
	 * loop. 0 for threads that never wait in epoll (thread-per-request
	 * servers). The top two bits are PSCOPE_TICK_TIMER_SAFE and
	 * PSCOPE_TICK_PHASED, not part of the count (PSCOPE_TICK_COUNT). */
	pscope_u32 tick;
};

/* pscope_conn_ref.tick: the turn began with a blocking wait and no timer the
 * loop had set before it can be due yet (bpf/capture.bpf.h): no timer
 * callback has run in the turn so far. With PSCOPE_TICK_PHASED: the event is
 * part of the work one socket read started (a segment, see below). */
#define PSCOPE_TICK_TIMER_SAFE 0x80000000u
/* pscope_conn_ref.tick: the thread is a loop whose phases the agent sees
 * (Node.js, with its event-loop probes; Python asyncio, with its handle and
 * task probes): the count then moves at every socket read and at every phase
 * boundary (timers, immediates, write callbacks, accepts; asyncio: every
 * callback the loop runs, every task step), so one tick is the work one read
 * (or one task step) started, and TIMER_SAFE says the event is inside such a
 * segment (not in a timer's or another callback's). Reads inside a task step
 * start nothing: the step is the task's. */
#define PSCOPE_TICK_PHASED 0x40000000u
#define PSCOPE_TICK_COUNT  0x3fffffffu

/* The BPF cookie of loop_boundary's attachment to CPython's Context.run (Node's
 * phase entries carry 0): in processes listed in loop_unphased (uvloop's
 * loops, which enter callback contexts through the C API) it is no boundary. */
#define PSCOPE_COOKIE_PY_CONTEXT_RUN 1

struct pscope_data_event {
	struct pscope_event_header hdr; /* hdr.timestamp_ns = syscall exit */
	struct pscope_conn_ref conn;
	pscope_u64 enter_ns; /* syscall entry */
	pscope_u32 bytes;    /* bytes the syscall moved */
	pscope_u32 captured; /* payload bytes following this struct */
	pscope_u8 direction; /* enum pscope_direction */
	pscope_u8 source;    /* enum pscope_source */
	pscope_u16 pad0;
	/* Low 32 bits of r14 at the syscall (x86-64; 0 elsewhere and at TLS
	 * calls). Go's runtime keeps its current goroutine (g) there, so for Go
	 * executables it tells goroutines apart where threads cannot; for any
	 * other program it is meaningless and unused. */
	pscope_u32 goroutine;
	pscope_u8 payload[]; /* captured bytes: the first `captured` of `bytes` */
};

struct pscope_conn_event {
	struct pscope_event_header hdr; /* PSCOPE_EV_CONN_OPEN or _CLOSE */
	struct pscope_conn_ref conn;
	char comm[16];
};

/* A file as the kernel names it: the key of the plain_exes map. */
struct pscope_file_key {
	pscope_u64 ino;
	pscope_u32 dev; /* the kernel's dev_t (major << 20 | minor) */
	pscope_u32 pad;
};

struct pscope_proc_event {
	struct pscope_event_header hdr; /* PSCOPE_EV_PROC_EXIT or _EXEC */
	pscope_u32 pid;
	pscope_u32 pad0;
	pscope_u64 proc_start_ns;
	/* PROC_EXEC: the new executable's file name, read in the kernel so a
	 * process that is gone before the agent looks at /proc still has a name */
	char exe_name[32];
	/* PROC_EXEC: the executable's file as the kernel names it (inode number,
	 * the kernel's dev_t of its superblock); the key of plain_exes. Absent
	 * (a 64-byte event) in event files recorded before. */
	pscope_u64 exe_ino;
	pscope_u32 exe_dev;
	pscope_u32 pad1;
};

/* A traced socket's peer ended the connection (from sock:inet_sock_set_state,
 * which runs in whatever context the packet arrived in: no process here). */
struct pscope_peer_end_event {
	struct pscope_event_header hdr; /* PSCOPE_EV_PEER_END or PSCOPE_EV_SOCK_CLOSED */
	pscope_u64 sock_id;
	pscope_u8 local_addr[16]; /* as in pscope_conn_ref */
	pscope_u8 remote_addr[16];
	pscope_u16 local_port; /* host order */
	pscope_u16 remote_port;
	pscope_u8 family;
	pscope_u8 how; /* enum pscope_peer_end; 0 for PSCOPE_EV_SOCK_CLOSED */
	pscope_u16 pad0;
};

/* A write(v) of a traced process to its fd 1 or 2 (stdout/stderr: a pipe, a
 * file, a tty, a Unix socket; never /dev/null, and TCP sockets are data
 * events), sent only with --logs. The pid/tid/goroutine/tick context is what
 * userspace needs to tell which server request the writer was serving. */
struct pscope_log_event {
	struct pscope_event_header hdr; /* PSCOPE_EV_LOG; timestamp_ns = syscall exit */
	pscope_u32 pid;
	pscope_u32 tid;
	pscope_u64 proc_start_ns;
	pscope_s32 fd;        /* 1 or 2 */
	pscope_u32 tick;      /* as pscope_conn_ref.tick */
	pscope_u32 goroutine; /* as pscope_data_event.goroutine */
	pscope_u32 bytes;     /* bytes the syscall wrote */
	pscope_u32 captured;  /* payload bytes following this struct */
	pscope_u8 source;     /* PSCOPE_SRC_WRITE or PSCOPE_SRC_WRITEV */
	pscope_u8 pad[3];
	pscope_u8 payload[];
};

/* pscope_task_event.hdr.flags */
enum pscope_task_what {
	PSCOPE_TASK_CREATE = 1, /* a task object was made (registered with its loop) */
	PSCOPE_TASK_ENTER = 2,  /* the thread began one step of a task */
};

/* A Python asyncio loop thread (bpf/capture.bpf.h, py_*): the task it made or
 * whose step it began. tick is the thread's tick after it (as
 * pscope_conn_ref.tick, PSCOPE_TICK_PHASED set): a CREATE names the segment
 * that made the task, an ENTER the segment that is that step. */
struct pscope_task_event {
	struct pscope_event_header hdr; /* PSCOPE_EV_TASK; flags: enum pscope_task_what */
	pscope_u32 pid;
	pscope_u32 tid;
	pscope_u64 proc_start_ns;
	pscope_u64 task; /* the task object's address in the process */
	pscope_u32 tick;
	pscope_u32 pad;
};

/* Per-CPU counters of the log path (map `log_counters`), indexed by this. */
enum pscope_log_counter {
	PSCOPE_LOG_WRITES = 0,       /* writes sent as PSCOPE_EV_LOG */
	PSCOPE_LOG_RATE_LIMITED = 1, /* writes over the per-process budget, not copied */
	PSCOPE_LOG__COUNT,
};

/* Map keys/values shared with userspace. */

/* An endpoint of the agent's (a listening socket: self_endpoints; an end of
 * one of its connections: self_conns): traffic with it is never traced. addr
 * all-zero matches any address. */
struct pscope_endpoint {
	pscope_u8 addr[16];
	pscope_u16 port; /* host order */
	pscope_u16 family;
	pscope_u32 pad0;
};

/* What the kernel side knows about a TCP socket (map `socks`, keyed by the
 * struct sock address). Userspace sets `ignored` to stop capturing a socket. */
struct pscope_sock_info {
	pscope_u8 role;    /* enum pscope_role */
	pscope_u8 ignored; /* the agent's own traffic, filtered out, or not parseable */
	pscope_u8 checked; /* compared against the agent's endpoints after data flowed */
	pscope_u8 family;
	pscope_u16 local_port;
	pscope_u16 remote_port;
	pscope_u8 local_addr[16];
	pscope_u8 remote_addr[16];
	pscope_u8 tls; /* a TLS library works on it: capture plaintext there, not here */
	/* Userspace found the socket's own bytes unparseable (often a TLS
	 * handshake seen before the first SSL_read): the syscall path stops
	 * copying them, while TLS plaintext still flows. `ignored` stops both. */
	pscope_u8 raw_skip;
	pscope_u8 lost; /* a data event of it could not be sent: flag the next one */
	/* The flags of the process last seen using it (kernel side only: its TLS
	 * library kinds, Go net/http probes), valid while proc_gen equals the
	 * kernel's proc_flags_gen and proc_tgid is still the user: one map
	 * lookup per event instead of three. */
	pscope_u8 proc_flags;
	pscope_u32 proc_gen;
	pscope_u32 proc_tgid;
	/* the agent's own connection (ignored): its endpoint leaves
	 * self_endpoints when the socket is destroyed */
	pscope_u8 self_owned;
	pscope_u8 pad[3];
};

#define PSCOPE_FILTER_PIDS  0x1 /* only pids in the pid_filter map */
#define PSCOPE_FILTER_PORTS 0x2 /* only connections with a port in port_filter */

_Static_assert(sizeof(struct pscope_event_header) == 16, "header ABI");
_Static_assert(sizeof(struct pscope_cpu_ring_ctl) == 128, "cpu ring control ABI");
_Static_assert(sizeof(struct pscope_ring_rec) == 16, "ring record ABI");
_Static_assert(sizeof(struct pscope_conn_ref) == 72, "conn_ref ABI");
_Static_assert(sizeof(struct pscope_data_event) == 112, "data event ABI");
_Static_assert(sizeof(struct pscope_conn_event) == 104, "conn event ABI");
_Static_assert(sizeof(struct pscope_proc_event) == 80, "proc event ABI");
_Static_assert(sizeof(struct pscope_peer_end_event) == 64, "peer end event ABI");
_Static_assert(sizeof(struct pscope_log_event) == 56, "log event ABI");
_Static_assert(sizeof(struct pscope_task_event) == 48, "task event ABI");
_Static_assert(sizeof(struct pscope_endpoint) == 24, "endpoint ABI");
_Static_assert(sizeof(struct pscope_sock_info) == 56, "sock_info ABI");
_Static_assert(sizeof(struct pscope_file_key) == 16, "file key ABI");

#endif
