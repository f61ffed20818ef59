// SPDX-License-Identifier: GPL-2.0
/* maps.bpf.h — the settings the loader writes before load, the maps every part
 * shares (ring buffer, socket table, filters, drop counters, TLS state, per-CPU scratch), and the
 * two helpers every event path uses: counting a drop and choosing the ring buffer's wakeup flag. */
#ifndef PERISCOPE_MAPS_BPF_H
#define PERISCOPE_MAPS_BPF_H

#define S_IFMT      00170000
#define S_IFSOCK    0140000
#define AF_INET     2
#define AF_INET6    10
#define SOCK_STREAM 1
#define MSG_PEEK    2
#define EINPROGRESS 115
#define MAX_IOV     16 /* iovec entries per copy pass; io_exit_more makes a second pass */

/* Set by the loader before load. */
const volatile __u32 self_tgid = 0;
const volatile __u32 filter_flags = 0;
const volatile __u32 capture_size = PSCOPE_CAPTURE_DEFAULT;
const volatile __u32 request_capture_size = PSCOPE_REQUEST_CAPTURE_DEFAULT; /* server reads */
const volatile __u64 wakeup_bytes = 0; /* per CPU (ringbuf_flags); 0: on every event */
/* --logs: writes to fd 1/2 become PSCOPE_EV_LOG events. Off, the verifier
 * removes the log path from the write exits: it costs nothing. */
const volatile __u32 logs_enabled = 0;
const volatile __u32 log_writes_per_sec = 0; /* per process; 0: no limit */
/* How far before its earliest possible due time a timer is taken as maybe due
 * (event-loop turns, capture.bpf.h): the loop's clock lag (1 ms rounding plus
 * a coarse clock's tick: nginx reads CLOCK_MONOTONIC_COARSE). */
const volatile __u64 loop_timer_margin_ns = 5 * 1000 * 1000;

enum io_kind {
	IO_BUF = 0, /* read/write/recvfrom/sendto: one user buffer */
	IO_IOV = 1, /* readv/writev: an iovec array */
	IO_MSG = 2, /* recvmsg/sendmsg: a user_msghdr */
	IO_NONE = 3 /* sendfile: bytes but no user buffer */
};

/* A data syscall at its exit, handed from its exit program to a tail call:
 * an iovec or msghdr copy into the event data_event_send began (io_exit, by
 * the thread's io_handoff), or a write to stdout/stderr (log_exit, by the
 * CPU's active_io slot: its event is sent whole by log_exit). */
struct active_io {
	__u64 enter_ns; /* log_exit */
	__s64 ret;      /* bytes moved (> 0) */
	__u64 sk;
	__u64 buf;   /* buffer, iovec array or msghdr */
	__u64 count; /* buffer length or iovec count */
	__s32 fd;
	__u8 kind;
	__u8 source;
	__u8 lost; /* the socket's event before was lost (pscope_sock_info.lost) */
	__u8 pad;
	/* an iovec copy that io_exit_more continues (see copy_iov_pass) */
	__u64 iov_ptr;
	__u64 iovcnt;
	__u64 left; /* bytes of the syscall not yet walked */
	__u32 off;  /* payload bytes copied so far */
	__u32 next; /* next iovec index */
	__u32 cap;
	__u32 fault; /* a read failed: stop */
	/* per-CPU rings: the event is written in place, in the record claimed
	 * at ring_at for claimed bytes of payload (cpu_ring_claim_at) */
	__u64 ring_at;
	__u32 claimed;
	__u32 pad2;
};

/* The data path's hand-off to its tail calls (io_exit, io_exit_more), per
 * thread: the record it began is claimed in the CPU's ring and must be
 * committed by them. A tail call runs in the same task; a task that preempts
 * this one in between (a preemptible kernel) has its own, where a per-CPU slot
 * would be overwritten, leaving this task's record claimed (the ring stuck). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct active_io);
} io_handoff SEC(".maps");

static __always_inline struct active_io *io_handoff_get(__u64 create)
{
	return bpf_task_storage_get(&io_handoff, bpf_get_current_task_btf(), 0,
	                            create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

struct active_connect {
	__s32 fd;
	__u32 pad;
};

/* A TLS library call (SSL_read/SSL_write) between its entry and return, keyed
 * by pid_tgid. A syscall the call makes underneath tells us its socket. */
struct active_ssl {
	__u64 ssl;
	__u64 buf;
	__u64 out_len; /* _ex variants: where the byte count is stored */
	__u64 enter_ns;
	__s32 fd; /* -1 until a socket syscall is seen inside the call */
	__u8 direction;
	__u8 is_ex;
	__u8 pad[2];
};

/* An SSL object of one process, for the fd it was last seen on. */
struct ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 pad;
};

/* A data event under construction: the header part, then the payload area.
 * The verifier only knows offset < MAX and length < 2*MAX (masks), so the area
 * is three times the largest capture. */
struct scratch_event {
	__u8 raw[sizeof(struct pscope_data_event) + 3 * PSCOPE_CAPTURE_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct active_io);
} active_io SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct active_connect);
} active_connect SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 131072);
	__type(key, __u64);
	__type(value, struct pscope_sock_info);
} socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct pscope_endpoint);
	__type(value, __u8);
} self_endpoints SEC(".maps");

/* One of the agent's own connections, by both its ends. Its local port alone
 * would not do: Linux gives a client the same ephemeral port for another
 * destination, so a traced client may share it with one of the agent's. */
struct self_conn_key {
	struct pscope_endpoint local; /* the agent's end */
	struct pscope_endpoint remote;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct self_conn_key);
	__type(value, __u8);
} self_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u16);
	__type(value, __u8);
} port_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PSCOPE_DROP__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct active_ssl);
} active_ssl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, __s32);
} ssl_fd SEC(".maps");

/* Processes that use TLS libraries, by kind (bits of the value):
 * TLS_PROC_OPENSSL — I/O may happen outside the TLS call (memory BIOs:
 * Node.js, Python asyncio): remember the last socket each thread read or
 * wrote, the best guess for a TLS call without a syscall; TLS_PROC_GO — Go
 * crypto/tls calls in flight are keyed by goroutine (go_tls_active). */
#define TLS_PROC_OPENSSL 1
#define TLS_PROC_GO      2
/* pscope_sock_info.proc_flags: the bits above, and these */
#define PROC_GO_HTTP     4    /* in go_procs */
#define PROC_FLAGS_VALID 0x80 /* filled in (a process may have no flag) */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} ssl_procs SEC(".maps");

/* Bumped after every change of ssl_procs or go_procs (by these programs and
 * by the loader): the process flags a socket's entry caches are good while
 * it has not moved (sock_proc_flags). */
volatile __u32 proc_flags_gen = 0;

static __always_inline void proc_flags_changed(void)
{
	__sync_fetch_and_add(&proc_flags_gen, 1);
}

/* Holds the shared exit handlers, filled by the loader: io_exit in slot 0,
 * io_exit_request (server reads, the request capture size) in slot 1. */
#define IO_EXIT_DEFAULT 0
#define IO_EXIT_REQUEST 1
#define IO_EXIT_LOG     2 /* log_exit: writes to stdout/stderr (--logs) */
#define IO_EXIT_MORE    3 /* io_exit_more: iovecs MAX_IOV..2*MAX_IOV-1 of the same event */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} io_exit_prog SEC(".maps");

/* The same handlers as tracing programs, for the socket tracepoints (a tail
 * call stays within one program type): slots IO_EXIT_DEFAULT,
 * IO_EXIT_REQUEST and IO_EXIT_MORE. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} io_tp_prog SEC(".maps");

/* One slot per CPU, indexed by CPU id (a per-CPU array value is limited to 32 KiB).
 * The loader sets max_entries to the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_event);
} scratch SEC(".maps");

/* Go net/http client probes (go.bpf.h). */
struct go_pc_key {
	__u64 pc; /* *persistConn */
	__u32 tgid;
	__u32 pad;
};

struct go_g_key {
	__u32 tgid;
	__u32 g; /* low 32 bits of a goroutine's g pointer */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_pc_key);
	__type(value, __u32);
} go_pc_caller SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_g_key);
	__type(value, __u32);
} go_g_override SEC(".maps");

/* Go crypto/tls calls in flight, by goroutine: (*Conn).Write/Read between
 * their entry and one of their RETs (ssl = the *tls.Conn, out_len = len(b),
 * is_ex = 1 for a write already sent from its entry). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH); /* a process may exit with reads in flight */
	__uint(max_entries, 16384);
	__type(key, struct go_g_key);
	__type(value, struct active_ssl);
} go_tls_active SEC(".maps");

/* Go processes whose net/http client probes fired: only their writes look
 * for a caller goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} go_procs SEC(".maps");

/* Python processes whose event loop is uvloop (userspace found its module
 * mapped): uvloop runs callbacks without Context.run, so Context.run marks no
 * callback boundaries there and their threads keep the event-loop turns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u8);
} loop_unphased SEC(".maps");

/* PROC_GO_HTTP when tgid's net/http client probes fired. */
static __always_inline __u8 go_http_flag(__u32 tgid)
{
	return bpf_map_lookup_elem(&go_procs, &tgid) ? PROC_GO_HTTP : 0;
}

/* Executables the agent looked at and found nothing to probe in (no Go, no
 * OpenSSL of their own), by file: their exec is not worth waking it for. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct pscope_file_key);
	__type(value, __u8);
} plain_exes SEC(".maps");

/* Processes (tgid) that opened a connection since their exec: the first one
 * wakes the agent (lifecycle.bpf.h), later ones wait for the next drain. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} conn_procs SEC(".maps");

/* Processes (tgid) that hold or held a TCP socket: only their epoll returns
 * count event-loop turns (poll_return), so a process with no network pays
 * one lookup per wait. Marked before a process's first traced request can
 * come: at listen() and connect() (sock_state), accept and connect exits, a
 * fork of a marked process, and by the loader for every process that owned a
 * socket when it started. Kept across exec (sockets are); gone at exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, __u8);
} net_procs SEC(".maps");

/* Bumped after every change of net_procs (here, at a process's exit, and by
 * the loader's scan): a CPU's remembered answer (net_proc_seen) is good
 * while it has not moved. */
volatile __u32 net_procs_gen = 0;

static __always_inline void net_procs_changed(void)
{
	__sync_fetch_and_add(&net_procs_gen, 1);
}

static __always_inline void net_proc_mark(__u32 tgid)
{
	__u8 one = 1;

	if (!bpf_map_lookup_elem(&net_procs, &tgid) &&
	    !bpf_map_update_elem(&net_procs, &tgid, &one, BPF_ANY))
		net_procs_changed();
}

/* Per CPU, the last answer of net_proc(): tgid << 32 | generation (31 bits)
 * << 1 | in net_procs, one word, so that a program preempted while writing it
 * cannot leave one process's answer under another's tgid. A process waiting
 * in a loop on one CPU asks the hash map once per generation. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} net_proc_seen SEC(".maps");

/* Does process tgid hold or has it held a TCP socket (net_procs)? */
static __always_inline int net_proc(__u32 tgid)
{
	/* the generation is read before the lookup: a change after it moves it */
	__u64 gen = (__u64)(net_procs_gen & 0x7fffffff) << 1;
	__u32 zero = 0;
	__u64 *seen = bpf_map_lookup_elem(&net_proc_seen, &zero);
	__u64 key = (__u64)tgid << 32 | gen, v;
	int net;

	if (seen) {
		v = *(volatile __u64 *)seen;
		if ((v & ~1ULL) == key)
			return v & 1;
	}
	net = bpf_map_lookup_elem(&net_procs, &tgid) != NULL;
	if (seen)
		*(volatile __u64 *)seen = key | net;
	return net;
}

/* Per thread: its event loop's turns (capture.bpf.h, poll_return). tick is
 * pscope_conn_ref.tick; the rest decides whether a zero-timeout poll continues
 * the turn. */
#define LOOP_SEEN_ACCEPT 1 /* accepted a connection */
#define LOOP_SEEN_READ   2 /* read a socket */
#define LOOP_SEEN_MERGED 4 /* continued over a zero-timeout poll */

struct loop_state {
	__u32 tick;
	__u8 chain;           /* the turn began with a blocking poll that woke for one event */
	__u8 seen;            /* LOOP_SEEN_*: what the turn did so far */
	__u8 blocking;        /* the turn began with a blocking wait (horizon_ns holds) */
	__u8 untraced;        /* the turn read something we do not follow (a pipe, UDP, ...) */
	__u64 last_return_ns; /* the previous wait's return */
	__u64 horizon_ns;     /* no timer set before the turn's poll is due before this */
	/* Not the loop's, the thread's, kept here to save a map lookup per event
	 * (the thread's storage is fetched for its tick anyway): in a process
	 * that maps a TLS library, the last socket the thread read or wrote
	 * (fd + 1; 0: none), the best guess for a TLS call that makes no
	 * syscall (memory BIOs), and whether an SSL call is in flight (only
	 * then is active_ssl looked up). */
	__s32 last_fd_1;
	__u8 in_ssl;
	/* the socket tracepoints saw this read()/readv() move a socket's
	 * bytes: its exit has nothing to mark (loop_read_exit) */
	__u8 sock_read;
	/* a Node.js or Python asyncio loop thread whose phase probes fired
	 * (loop_boundary): its tick moves at every socket read and phase
	 * boundary instead; LOOP_PHASED_NODE or _PY (sock.bpf.h), 0: turns */
	__u8 phased;
	__u8 seg_open; /* phased: the events now belong to the read that began the tick */
	__u8 in_task;  /* phased: inside a Python asyncio task's step (py_task_enter) */
};

/* Task storage: a pointer held by the task itself, no hashing and no LRU bookkeeping on every
 * epoll return of every process, and freed with the task. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct loop_state);
} loop_ticks SEC(".maps");

/* The current thread's state; with create, made on first use. */
static __always_inline struct loop_state *thread_state(__u64 create)
{
	return bpf_task_storage_get(&loop_ticks, bpf_get_current_task_btf(), 0,
	                            create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* Per process: its log writes in the current one-second window (rate limit). */
struct log_window {
	__u64 start_ns;
	__u32 writes;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct log_window);
} log_windows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PSCOPE_LOG__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} log_counters SEC(".maps");

static __always_inline void count_drop(__u32 reason)
{
	__u64 *v = bpf_map_lookup_elem(&drops, &reason);
	if (v)
		*v += 1;
}

/* Bytes this CPU sent since it last woke the consumer. A per-CPU count, not
 * bpf_ringbuf_query(): reading the ring's positions, which the other CPUs
 * and the consumer keep writing, cost more than the rest of the event. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} unwoken_bytes SEC(".maps");

/* Wake the consumer once this CPU has sent wakeup_bytes (the consumer also
 * drains on a timer, so a quiet CPU's events never wait long). */
static __always_inline __u64 ringbuf_flags(__u32 size)
{
	__u32 zero = 0;
	__u64 *acc;

	if (!wakeup_bytes)
		return 0;
	acc = bpf_map_lookup_elem(&unwoken_bytes, &zero);
	if (!acc)
		return 0;
	*acc += size;
	if (*acc < wakeup_bytes)
		return BPF_RB_NO_WAKEUP;
	*acc = 0;
	return BPF_RB_FORCE_WAKEUP;
}

/* ---- per-CPU event rings (layout: periscope_abi.h) ----
 * The ring buffer takes a spinlock with interrupts off for every record; on a
 * paravirtualised VM turning interrupts back on is a hypercall, and measured
 * here that was ~550 ns per event: more than everything else an event does.
 * These rings take no lock: a CPU's producers claim space by
 * compare-and-swap. The loader sets cpu_ring_mask (ring size - 1) and sizes
 * the map; 0 keeps every event on `events` (--shared-ringbuf); with the
 * rings, `events` only wakes the consumer. */
const volatile __u64 cpu_ring_mask = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(key_size, sizeof(__u32));
	/* resized by the loader: ctl + ring + slack, for each possible CPU */
	__uint(value_size, PSCOPE_CPU_RING_CTL + 4096 + PSCOPE_CPU_RING_SLACK);
	__uint(max_entries, 1);
} cpu_rings SEC(".maps");

/* Claims room for an event of size bytes on this CPU's ring: the record's
 * header is written (busy), the event goes right after it. NULL when the
 * ring is full (or producers keep racing for it). The claim time is read
 * after the claim: a consumer that did not see the claim read its own clock
 * before it, so it cannot have passed this record by (cpu_rings.c). */
static __always_inline struct pscope_ring_rec *cpu_ring_claim_at(__u32 size, __u64 *at)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u8 *base = bpf_map_lookup_elem(&cpu_rings, &cpu);
	__u64 need = (sizeof(struct pscope_ring_rec) + (__u64)size + 7) & ~7ULL;
	struct pscope_cpu_ring_ctl *ctl;

	if (!base)
		return NULL;
	ctl = (struct pscope_cpu_ring_ctl *)base;
	for (int i = 0; i < 4; i++) {
		__u64 head = *(volatile __u64 *)&ctl->head;
		__u64 tail = *(volatile __u64 *)&ctl->tail;
		struct pscope_ring_rec *rec;

		if (head - tail + need > cpu_ring_mask + 1)
			return NULL;
		if (__sync_val_compare_and_swap(&ctl->head, head, head + need) != head)
			continue;
		/* head is a multiple of 8: the mask tells the verifier so (the commit's
		 * atomic exchange needs an aligned address) */
		*at = head & cpu_ring_mask & ~7ULL;
		rec = (struct pscope_ring_rec *)(base + PSCOPE_CPU_RING_CTL + *at);
		rec->order_ns = bpf_ktime_get_ns();
		asm volatile(
		    "" ::
		        : "memory"); /* order_ns before the length (x86 keeps stores in order) */
		*(volatile __u64 *)rec = (__u64)size | PSCOPE_RING_BUSY;
		return rec;
	}
	return NULL;
}

static __always_inline struct pscope_ring_rec *cpu_ring_claim(__u32 size)
{
	__u64 at;

	return cpu_ring_claim_at(size, &at);
}

/* This CPU's record claimed at offset at (cpu_ring_claim_at), found again by a
 * tail call that goes on writing it. */
static __always_inline struct pscope_ring_rec *cpu_ring_rec_at(__u64 at)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u8 *base = bpf_map_lookup_elem(&cpu_rings, &cpu);

	if (!base)
		return NULL;
	return (struct pscope_ring_rec *)(base + PSCOPE_CPU_RING_CTL +
	                                  (at & cpu_ring_mask & ~7ULL));
}

/* The event after rec is written: the consumer may take it. */
static __always_inline void cpu_ring_commit(struct pscope_ring_rec *rec, __u32 size)
{
	__sync_lock_test_and_set((__u64 *)rec, (__u64)size);
}

/* The same for an event shorter than the space claimed for it (a data event
 * whose copy faulted): the record says how far the next one is. */
static __always_inline void cpu_ring_commit_space(struct pscope_ring_rec *rec, __u32 size,
                                                  __u32 claimed)
{
	__u64 space = (sizeof(struct pscope_ring_rec) + (__u64)claimed + 7) & ~7ULL;

	__sync_lock_test_and_set((__u64 *)rec, (space << 32) | size);
}

/* After a record of size bytes went on this CPU's ring: wake the consumer
 * now with force_wake, else after wakeup_bytes. */
static __always_inline void cpu_ring_wake(__u32 size, int force_wake)
{
	__u64 flags = ringbuf_flags(size);

	if (force_wake || flags == BPF_RB_FORCE_WAKEUP || !wakeup_bytes) {
		/* the ring buffer only wakes the consumer now: an empty record */
		void *kick = bpf_ringbuf_reserve(&events, 8, 0);
		if (kick)
			bpf_ringbuf_discard(kick, BPF_RB_FORCE_WAKEUP);
	}
}

/* Sends the event at data (size bytes, at most 2 * PSCOPE_CAPTURE_MAX - 1),
 * waking the consumer now with force_wake, else after wakeup_bytes: 0, or
 * nonzero when there was no room (the caller counts the drop). */
static __always_inline long events_output_wake(void *data, __u32 size, int force_wake)
{
	struct pscope_ring_rec *rec;

	if (!cpu_ring_mask)
		return bpf_ringbuf_output(&events, data, size,
		                          force_wake ? BPF_RB_FORCE_WAKEUP : ringbuf_flags(size));
	asm volatile("%[s] &= %[mask]" : [s] "+r"(size) : [mask] "i"(2 * PSCOPE_CAPTURE_MAX - 1));
	rec = cpu_ring_claim(size);
	if (!rec)
		return -1;
	if (bpf_probe_read_kernel(rec + 1, size, data)) {
		/* cannot happen (our own memory): leave a harmless empty record */
		__builtin_memset(rec + 1, 0, sizeof(struct pscope_event_header));
	}
	cpu_ring_commit(rec, size);
	cpu_ring_wake(size, force_wake);
	return 0;
}

static __always_inline long events_output(void *data, __u32 size)
{
	return events_output_wake(data, size, 0);
}

#endif
