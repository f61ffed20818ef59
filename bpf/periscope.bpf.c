// SPDX-License-Identifier: GPL-2.0
/* periscope.bpf.c — syscall tracepoints that capture what crosses TCP sockets.
 *
 * Entry probes decide early whether the fd is a TCP socket (CO-RE walk of the
 * current task's fd table, no kprobes) and remember the syscall's buffer; exit
 * probes copy the bytes actually moved into a per-CPU scratch event and send it
 * through the ring buffer. accept/connect/close and process exit produce
 * lifecycle events. All protocol logic lives in userspace. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "periscope_abi.h"

#define S_IFMT      00170000
#define S_IFSOCK    0140000
#define AF_INET     2
#define AF_INET6    10
#define SOCK_STREAM 1
#define MSG_PEEK    2
#define EINPROGRESS 115
#define MAX_IOV     16

char LICENSE[] SEC("license") = "GPL";

/* Set by the loader before load. */
const volatile __u32 self_tgid = 0;
const volatile __u32 filter_flags = 0;
const volatile __u32 capture_size = PSCOPE_CAPTURE_DEFAULT;
const volatile __u64 wakeup_bytes = 0; /* per CPU (ringbuf_flags); 0: on every event */

enum io_kind {
	IO_BUF = 0, /* read/write/recvfrom/sendto: one user buffer */
	IO_IOV = 1, /* readv/writev: an iovec array */
	IO_MSG = 2, /* recvmsg/sendmsg: a user_msghdr */
	IO_NONE = 3 /* sendfile: bytes but no user buffer */
};

/* A data syscall at its exit, handed from its exit program to io_exit (the
 * tail call runs on the same CPU, so one per-CPU slot carries it). */
struct active_io {
	__u64 enter_ns;
	__u64 sk;
	__u64 buf;   /* buffer, iovec array or msghdr */
	__u64 count; /* buffer length or iovec count */
	__s32 fd;
	__u8 kind;
	__u8 source;
	__u8 direction;
	__u8 pad;
	struct pscope_sock_info si;
};

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

/* Processes that use TLS libraries whose I/O may happen outside the TLS call
 * (memory BIOs: Node.js, Python asyncio): for them, remember the last socket
 * each thread read or wrote, the best guess for a TLS call without a syscall. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} ssl_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __s32);
} thread_sock SEC(".maps");

/* Holds io_exit, the shared exit handler; the loader fills slot 0. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} io_exit_prog SEC(".maps");

/* One slot per CPU, indexed by CPU id (a per-CPU array value is limited to 32 KiB).
 * The loader sets max_entries to the number of possible CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch_event);
} scratch SEC(".maps");

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

static __always_inline int pid_traced(__u32 tgid)
{
	if (tgid == self_tgid)
		return 0;
	if (!(filter_flags & PSCOPE_FILTER_PIDS))
		return 1;
	if (bpf_map_lookup_elem(&pid_filter, &tgid))
		return 1;
	/* children of a listed process (nginx workers of a listed master) */
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u32 ppid = BPF_CORE_READ(task, real_parent, tgid);
	return bpf_map_lookup_elem(&pid_filter, &ppid) != NULL;
}

/* The TCP socket behind fd in the current task, or NULL. */
static __always_inline struct sock *sock_from_fd(int fd)
{
	/* BTF pointers: the verifier turns these loads into plain (fault-safe)
	 * memory reads, far cheaper than a helper call each */
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	struct fdtable *fdt;
	struct file *file = NULL;

	if (fd < 0 || !files)
		return NULL;
	fdt = files->fdt;
	if (!fdt || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]) || !file)
		return NULL;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM)
		return NULL;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	return sk;
}

static __always_inline void read_tuple(struct sock *sk, struct pscope_sock_info *si)
{
	si->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	si->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	si->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (si->family == AF_INET) {
		BPF_CORE_READ_INTO((__u32 *)si->local_addr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)si->remote_addr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(si->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(si->remote_addr, sk, __sk_common.skc_v6_daddr);
	}
}

/* Endpoint keys hold IPv4 as IPv4-mapped IPv6 so a dual-stack peer matches. */
static __always_inline void endpoint_key(struct pscope_endpoint *k, __u8 family, const __u8 *addr,
                                         __u16 port)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->port = port;
	if (family == AF_INET) {
		k->addr[10] = 0xff;
		k->addr[11] = 0xff;
		__builtin_memcpy(&k->addr[12], addr, 4);
	} else {
		__builtin_memcpy(k->addr, addr, 16);
	}
}

/* Is the remote end of this socket one of the agent's own endpoints? */
static __always_inline int peer_is_self(const struct pscope_sock_info *si)
{
	struct pscope_endpoint k;

	endpoint_key(&k, si->family, si->remote_addr, si->remote_port);
	if (bpf_map_lookup_elem(&self_endpoints, &k))
		return 1;
	__builtin_memset(k.addr, 0, sizeof(k.addr)); /* a wildcard listener of the agent */
	return bpf_map_lookup_elem(&self_endpoints, &k) != NULL;
}

static __always_inline int ports_traced(const struct pscope_sock_info *si)
{
	if (!(filter_flags & PSCOPE_FILTER_PORTS))
		return 1;
	return bpf_map_lookup_elem(&port_filter, &si->local_port) ||
	       bpf_map_lookup_elem(&port_filter, &si->remote_port);
}

/* Records a socket seen opening with a known role (overwrites a stale entry of a reused address).
 */
static __always_inline struct pscope_sock_info *sock_info_open(struct sock *sk, __u8 role)
{
	struct pscope_sock_info si = {};
	__u64 key = (__u64)sk;

	si.role = role;
	read_tuple(sk, &si);
	si.ignored = !ports_traced(&si);
	if (bpf_map_update_elem(&socks, &key, &si, BPF_ANY)) {
		count_drop(PSCOPE_DROP_SOCK_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&socks, &key);
}

/* The socket's entry, created for a socket that was open before we saw it. */
static __always_inline struct pscope_sock_info *sock_info_get(struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct pscope_sock_info *si = bpf_map_lookup_elem(&socks, &key);

	if (si)
		return si;
	return sock_info_open(sk, PSCOPE_ROLE_UNKNOWN);
}

static __always_inline void fill_conn_ref(struct pscope_conn_ref *c, __u64 pid_tgid, int fd,
                                          __u64 sk, const struct pscope_sock_info *si)
{
	struct task_struct *task = bpf_get_current_task_btf();

	c->pid = pid_tgid >> 32;
	c->tid = (__u32)pid_tgid;
	c->fd = fd;
	c->role = si->role;
	c->family = si->family;
	c->pad0 = 0;
	c->sock_id = sk;
	c->proc_start_ns = task->group_leader->start_time; /* BTF loads, no helper calls */
	__builtin_memcpy(c->local_addr, si->local_addr, 16);
	__builtin_memcpy(c->remote_addr, si->remote_addr, 16);
	c->local_port = si->local_port;
	c->remote_port = si->remote_port;
	c->pad1 = 0;
}

static __always_inline void emit_conn_event(__u16 type, __u64 pid_tgid, int fd, __u64 sk,
                                            const struct pscope_sock_info *si)
{
	struct pscope_conn_event ev = {};

	ev.hdr.type = type;
	ev.hdr.size = sizeof(ev);
	ev.hdr.timestamp_ns = bpf_ktime_get_ns();
	fill_conn_ref(&ev.conn, pid_tgid, fd, sk, si);
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), ringbuf_flags(sizeof(ev))))
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
}

/* ---- data syscalls ---- */

/* The syscall's arguments, still in the user registers saved at entry: the
 * exit tracepoint reads them there, so no entry program (and no map entry
 * per syscall in flight) is needed. */
#ifdef __TARGET_ARCH_x86
#define SYSCALL_ARG(regs, n)                                                                       \
	((n) == 0 ? (regs)->di : (n) == 1 ? (regs)->si : (n) == 2 ? (regs)->dx : (regs)->r10)
#else
#define SYSCALL_ARG(regs, n)                                                                       \
	((n) == 0   ? PT_REGS_PARM1_CORE_SYSCALL(regs)                                             \
	 : (n) == 1 ? PT_REGS_PARM2_CORE_SYSCALL(regs)                                             \
	 : (n) == 2 ? PT_REGS_PARM3_CORE_SYSCALL(regs)                                             \
	            : PT_REGS_PARM4_CORE_SYSCALL(regs))
#endif

/* A data syscall returned ret > 0 bytes: if fd is a traced TCP socket, hand
 * it to io_exit (tail call), which copies the payload and emits the event. */
static __always_inline int io_start(void *ctx, long ret, int fd, __u64 buf, __u64 count, __u8 kind,
                                    __u8 source, __u8 direction)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 zero = 0;

	if (ret <= 0 || !pid_traced(tgid))
		return 0;
	struct sock *sk = sock_from_fd(fd);
	if (!sk)
		return 0;
	if (bpf_map_lookup_elem(&ssl_procs, &tgid)) {
		/* a process that called a TLS library (ssl_enter marks it first) */
		struct active_ssl *as = bpf_map_lookup_elem(&active_ssl, &pid_tgid);
		if (as) {
			/* ciphertext moved by a TLS call: it names the call's socket */
			as->fd = fd;
			return 0;
		}
		/* written in place: an LRU update per syscall would cost more than
		 * the rest of this program (every libssl user gets here) */
		__s32 *last = bpf_map_lookup_elem(&thread_sock, &pid_tgid);
		if (last)
			*last = fd;
		else
			bpf_map_update_elem(&thread_sock, &pid_tgid, &fd, BPF_ANY);
	}
	struct pscope_sock_info *si = sock_info_get(sk);
	if (!si || si->ignored || si->tls || si->raw_skip)
		return 0;

	struct active_io *a = bpf_map_lookup_elem(&active_io, &zero);
	if (!a)
		return 0;
	a->enter_ns = bpf_ktime_get_ns(); /* the exit: entry is not observed */
	a->sk = (__u64)sk;
	a->buf = buf;
	a->count = count;
	a->fd = fd;
	a->kind = kind;
	a->source = source;
	a->direction = direction;
	a->si = *si;
	bpf_tail_call(ctx, &io_exit_prog, 0);
	return 0;
}

/* The user's r14 at this syscall (see pscope_data_event.goroutine). */
static __always_inline __u32 current_r14(void)
{
#ifdef __TARGET_ARCH_x86
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	return (__u32)regs->r14;
#else
	return 0;
#endif
}

/* Copies up to len bytes from user memory to payload[off...], within cap. Returns bytes copied. */
static __always_inline __u32 copy_user(__u8 *payload, __u32 off, __u64 src, __u64 len, __u32 cap)
{
	__u32 n;

	if (off >= cap || !len)
		return 0;
	n = cap - off;
	if (len < n)
		n = len;
	off &= PSCOPE_CAPTURE_MAX - 1;
	if (n > PSCOPE_CAPTURE_MAX)
		n = PSCOPE_CAPTURE_MAX;
	asm volatile("%[n] &= %[mask]" : [n] "+r"(n) : [mask] "i"(2 * PSCOPE_CAPTURE_MAX - 1));
	if (bpf_probe_read_user(payload + off, n, (const void *)src)) {
		count_drop(PSCOPE_DROP_READ_FAULT);
		return 0;
	}
	return n;
}

static __always_inline __u32 copy_iov(__u8 *payload, __u64 iov_ptr, __u64 iovcnt, __u64 total,
                                      __u32 cap)
{
	__u32 off = 0;
	__u64 left = total;

	for (int i = 0; i < MAX_IOV; i++) {
		struct iovec iov;

		if (i >= iovcnt || !left || off >= cap)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov),
		                        (const void *)(iov_ptr + i * sizeof(iov))))
			break;
		__u64 len = iov.iov_len < left ? iov.iov_len : left;
		__u32 got = copy_user(payload, off, (__u64)iov.iov_base, len, cap);
		if (got != len && got + off < cap)
			break; /* fault */
		off += got;
		left -= len;
	}
	if (left && off < cap)
		count_drop(PSCOPE_DROP_IOV_LIMIT);
	return off;
}

/* Sends a data event of socket sk. A failure marks the socket so its next
 * event tells userspace that the stream has a hole; a success clears it. */
static __always_inline void emit_data(void *ev, __u32 size, __u64 sk, __u8 was_lost)
{
	struct pscope_sock_info *si;
	__u8 lost;

	asm volatile("%[s] &= %[mask]" : [s] "+r"(size) : [mask] "i"(2 * PSCOPE_CAPTURE_MAX - 1));
	if (bpf_ringbuf_output(&events, ev, size, ringbuf_flags(size))) {
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
		lost = 1;
	} else if (was_lost) {
		lost = 0;
	} else {
		return;
	}
	si = bpf_map_lookup_elem(&socks, &sk);
	if (si)
		si->lost = lost;
}

/* Every data syscall's exit jumps here (one tail-call target), so the payload
 * copying loops are verified once rather than once per syscall. */
SEC("tracepoint/syscalls/sys_exit_read")
int io_exit(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	struct active_io *ap = bpf_map_lookup_elem(&active_io, &zero);
	struct active_io a;

	if (!ap || ret <= 0)
		return 0;
	a = *ap;

	if (!a.si.checked) {
		/* Data has flowed, so an agent connection has finished connect(): its
		 * endpoint is registered by now. Decide once per socket. */
		struct pscope_sock_info *si = bpf_map_lookup_elem(&socks, &a.sk);
		if (si) {
			si->checked = 1;
			if (peer_is_self(si))
				si->ignored = 1;
			if (si->ignored)
				return 0;
		}
	}

	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch_event *s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s)
		return 0;
	struct pscope_data_event *e = (struct pscope_data_event *)s->raw;
	__u8 *payload = s->raw + sizeof(*e);
	__u32 cap = capture_size;
	if (cap > PSCOPE_CAPTURE_MAX)
		cap = PSCOPE_CAPTURE_MAX;

	__u32 captured = 0;
	if (a.kind == IO_BUF) {
		captured = copy_user(payload, 0, a.buf, ret, cap);
	} else if (a.kind == IO_IOV) {
		captured = copy_iov(payload, a.buf, a.count, ret, cap);
	} else if (a.kind == IO_MSG) {
		struct user_msghdr msg;
		if (!bpf_probe_read_user(&msg, sizeof(msg), (const void *)a.buf))
			captured = copy_iov(payload, (__u64)msg.msg_iov, msg.msg_iovlen, ret, cap);
	}
	if ((__u64)ret > captured && captured == cap)
		count_drop(PSCOPE_DROP_TRUNCATED);

	e->hdr.type = PSCOPE_EV_DATA;
	e->hdr.flags = a.si.lost ? PSCOPE_EVF_LOST : 0;
	e->hdr.timestamp_ns = a.enter_ns;
	fill_conn_ref(&e->conn, pid_tgid, a.fd, a.sk, &a.si);
	e->enter_ns = a.enter_ns;
	e->bytes = ret;
	e->direction = a.direction;
	e->source = a.source;
	e->pad0 = 0;
	e->goroutine = current_r14();
	if (captured > PSCOPE_CAPTURE_MAX)
		captured = PSCOPE_CAPTURE_MAX;
	e->captured = captured;
	__u32 size = sizeof(*e) + captured;
	e->hdr.size = size;
	/* for the verifier: size < sizeof(*s) */
	asm volatile("%[s] &= %[mask]" : [s] "+r"(size) : [mask] "i"(2 * PSCOPE_CAPTURE_MAX - 1));
	emit_data(s, size, a.sk, a.si.lost);
	return 0;
}

#define ARG(n) (ctx->args[n])

#define EXIT_ARGS(name)                                                                            \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                 \
	int exit_##name(struct trace_event_raw_sys_exit *ctx)                                      \
	{                                                                                          \
		long ret = ctx->ret;                                                               \
		if (ret <= 0)                                                                      \
			return 0;                                                                  \
		struct pt_regs *regs =                                                             \
		    (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

/* The macro opens each function body: left as written. */
/* clang-format off */
EXIT_ARGS(read)
	return io_start(ctx, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_BUF, PSCOPE_SRC_READ, PSCOPE_DIR_INGRESS);
}

EXIT_ARGS(write)
	return io_start(ctx, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_BUF, PSCOPE_SRC_WRITE, PSCOPE_DIR_EGRESS);
}

EXIT_ARGS(readv)
	return io_start(ctx, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_IOV, PSCOPE_SRC_READV, PSCOPE_DIR_INGRESS);
}

EXIT_ARGS(writev)
	return io_start(ctx, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_IOV, PSCOPE_SRC_WRITEV, PSCOPE_DIR_EGRESS);
}

EXIT_ARGS(recvfrom)
	if (SYSCALL_ARG(regs, 3) & MSG_PEEK)
		return 0;
	return io_start(ctx, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_BUF, PSCOPE_SRC_RECVFROM, PSCOPE_DIR_INGRESS);
}

EXIT_ARGS(sendto)
	return io_start(ctx, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_BUF, PSCOPE_SRC_SENDTO, PSCOPE_DIR_EGRESS);
}

EXIT_ARGS(recvmsg)
	if (SYSCALL_ARG(regs, 2) & MSG_PEEK)
		return 0;
	return io_start(ctx, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), 0, IO_MSG,
			PSCOPE_SRC_RECVMSG, PSCOPE_DIR_INGRESS);
}

EXIT_ARGS(sendmsg)
	return io_start(ctx, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), 0, IO_MSG,
			PSCOPE_SRC_SENDMSG, PSCOPE_DIR_EGRESS);
}

EXIT_ARGS(sendfile64)
	return io_start(ctx, ret, SYSCALL_ARG(regs, 0), 0, SYSCALL_ARG(regs, 3), IO_NONE,
			PSCOPE_SRC_SENDFILE, PSCOPE_DIR_EGRESS);
}
/* clang-format on */

/* ---- TLS libraries (uprobes, attached by userspace per library file) ---- */

static __always_inline int ssl_enter(struct pt_regs *ctx, __u8 direction, __u8 is_ex)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct active_ssl a = {};
	__u8 one = 1;

	if (!pid_traced(tgid))
		return 0;
	a.ssl = PT_REGS_PARM1(ctx);
	a.buf = PT_REGS_PARM2(ctx);
	a.out_len = is_ex ? PT_REGS_PARM4(ctx) : 0;
	a.enter_ns = bpf_ktime_get_ns();
	a.fd = -1;
	a.direction = direction;
	a.is_ex = is_ex;
	if (bpf_map_update_elem(&active_ssl, &pid_tgid, &a, BPF_ANY))
		count_drop(PSCOPE_DROP_ACTIVE_FULL);
	if (!bpf_map_lookup_elem(&ssl_procs, &tgid))
		bpf_map_update_elem(&ssl_procs, &tgid, &one, BPF_ANY);
	return 0;
}

/* The socket fd of a TLS call: the syscall made inside it, else the fd the
 * SSL object was last seen on, else the thread's last socket. */
static __always_inline int ssl_resolve_fd(const struct active_ssl *a, __u64 pid_tgid)
{
	struct ssl_key k = {.ssl = a->ssl, .tgid = pid_tgid >> 32};
	__s32 fd = a->fd;
	__s32 *p;

	if (fd < 0) {
		p = bpf_map_lookup_elem(&ssl_fd, &k);
		if (!p)
			p = bpf_map_lookup_elem(&thread_sock, &pid_tgid);
		if (!p)
			return -1;
		fd = *p;
	}
	bpf_map_update_elem(&ssl_fd, &k, &fd, BPF_ANY);
	return fd;
}

static __always_inline int ssl_exit(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct active_ssl *ap = bpf_map_lookup_elem(&active_ssl, &pid_tgid);
	struct active_ssl a;
	/* SSL_read/SSL_write(_ex) return int: -1 (want read/write) arrives as
	 * 0x00000000ffffffff in rax, so it must be narrowed before the sign test */
	int ret = (int)PT_REGS_RC(ctx);
	__u64 n;

	if (!ap)
		return 0;
	a = *ap;
	bpf_map_delete_elem(&active_ssl, &pid_tgid);
	if (a.is_ex) {
		__u64 got = 0;
		if (ret != 1 || bpf_probe_read_user(&got, sizeof(got), (const void *)a.out_len))
			return 0;
		n = got;
	} else {
		if (ret <= 0)
			return 0;
		n = ret;
	}
	if (!n)
		return 0;
	int fd = ssl_resolve_fd(&a, pid_tgid);
	struct sock *sk = fd >= 0 ? sock_from_fd(fd) : NULL;
	if (!sk) {
		count_drop(PSCOPE_DROP_SSL_NO_FD);
		return 0;
	}
	struct pscope_sock_info *si = sock_info_get(sk);
	if (!si)
		return 0;
	if (!si->tls) {
		/* from now on the socket's own bytes are ciphertext: skip them */
		si->tls = 1;
		si->checked = 1;
		si->ignored = !ports_traced(si) || peer_is_self(si);
	}
	if (si->ignored)
		return 0;

	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch_event *s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s)
		return 0;
	struct pscope_data_event *e = (struct pscope_data_event *)s->raw;
	__u8 *payload = s->raw + sizeof(*e);
	__u32 cap = capture_size;
	if (cap > PSCOPE_CAPTURE_MAX)
		cap = PSCOPE_CAPTURE_MAX;
	__u32 captured = copy_user(payload, 0, a.buf, n, cap);
	if (n > captured && captured == cap)
		count_drop(PSCOPE_DROP_TRUNCATED);

	__u8 was_lost = si->lost;
	e->hdr.type = PSCOPE_EV_DATA;
	e->hdr.flags = PSCOPE_EVF_TLS | (was_lost ? PSCOPE_EVF_LOST : 0);
	e->hdr.timestamp_ns = bpf_ktime_get_ns();
	fill_conn_ref(&e->conn, pid_tgid, fd, (__u64)sk, si);
	e->enter_ns = a.enter_ns;
	e->bytes = n;
	e->direction = a.direction;
	e->source = a.direction == PSCOPE_DIR_INGRESS ? PSCOPE_SRC_SSL_READ : PSCOPE_SRC_SSL_WRITE;
	e->pad0 = 0;
	e->goroutine = 0;
	if (captured > PSCOPE_CAPTURE_MAX)
		captured = PSCOPE_CAPTURE_MAX;
	e->captured = captured;
	__u32 size = sizeof(*e) + captured;
	e->hdr.size = size;
	asm volatile("%[s] &= %[mask]" : [s] "+r"(size) : [mask] "i"(2 * PSCOPE_CAPTURE_MAX - 1));
	emit_data(s, size, (__u64)sk, was_lost);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_enter)
{
	return ssl_enter(ctx, PSCOPE_DIR_INGRESS, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter)
{
	return ssl_enter(ctx, PSCOPE_DIR_EGRESS, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter)
{
	return ssl_enter(ctx, PSCOPE_DIR_INGRESS, 1);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter)
{
	return ssl_enter(ctx, PSCOPE_DIR_EGRESS, 1);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_return)
{
	return ssl_exit(ctx);
}

/* SSL_set_fd(ssl, fd): the socket of an SSL object, before any I/O. */
SEC("uprobe")
int BPF_KPROBE(ssl_set_fd_enter)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct ssl_key k = {.ssl = PT_REGS_PARM1(ctx), .tgid = pid_tgid >> 32};
	__s32 fd = PT_REGS_PARM2(ctx);

	if (!pid_traced(k.tgid))
		return 0;
	bpf_map_update_elem(&ssl_fd, &k, &fd, BPF_ANY);
	return 0;
}

/* ---- connection lifecycle ---- */

static __always_inline int accept_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (ret < 0 || !pid_traced(pid_tgid >> 32))
		return 0;
	struct sock *sk = sock_from_fd(ret);
	if (!sk)
		return 0;
	struct pscope_sock_info *si = sock_info_open(sk, PSCOPE_ROLE_SERVER);
	if (si && !si->ignored)
		emit_conn_event(PSCOPE_EV_CONN_OPEN, pid_tgid, ret, (__u64)sk, si);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accept_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct active_connect c = {.fd = ARG(0)};

	if (tgid != self_tgid && !pid_traced(tgid))
		return 0;
	bpf_map_update_elem(&active_connect, &pid_tgid, &c, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct active_connect *cp = bpf_map_lookup_elem(&active_connect, &pid_tgid);
	long ret = ctx->ret;
	int fd;

	if (!cp)
		return 0;
	fd = cp->fd;
	bpf_map_delete_elem(&active_connect, &pid_tgid);
	if (ret != 0 && ret != -EINPROGRESS)
		return 0;
	struct sock *sk = sock_from_fd(fd);
	if (!sk)
		return 0;
	if ((pid_tgid >> 32) == self_tgid) {
		/* The agent's own connection: its peer must not trace it. */
		struct pscope_sock_info si = {};
		struct pscope_endpoint k;
		__u8 one = 1;

		read_tuple(sk, &si);
		endpoint_key(&k, si.family, si.local_addr, si.local_port);
		bpf_map_update_elem(&self_endpoints, &k, &one, BPF_ANY);
		return 0;
	}
	struct pscope_sock_info *si = sock_info_open(sk, PSCOPE_ROLE_CLIENT);
	if (si && !si->ignored)
		emit_conn_event(PSCOPE_EV_CONN_OPEN, pid_tgid, fd, (__u64)sk, si);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	int fd = ARG(0);

	if (tgid != self_tgid && !pid_traced(tgid))
		return 0;
	struct sock *sk = sock_from_fd(fd);
	if (!sk)
		return 0;
	__u64 key = (__u64)sk;
	if (tgid == self_tgid) {
		struct pscope_sock_info si = {};
		struct pscope_endpoint k;

		read_tuple(sk, &si);
		endpoint_key(&k, si.family, si.local_addr, si.local_port);
		bpf_map_delete_elem(&self_endpoints, &k);
		return 0;
	}
	struct pscope_sock_info *si = bpf_map_lookup_elem(&socks, &key);
	if (!si)
		return 0;
	if (!si->ignored)
		emit_conn_event(PSCOPE_EV_CONN_CLOSE, pid_tgid, fd, key, si);
	bpf_map_delete_elem(&socks, &key);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;

	if ((__u32)pid_tgid != tgid || !pid_traced(tgid))
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct pscope_proc_event ev = {};
	ev.hdr.type = PSCOPE_EV_PROC_EXIT;
	ev.hdr.size = sizeof(ev);
	ev.hdr.timestamp_ns = bpf_ktime_get_ns();
	ev.pid = tgid;
	ev.proc_start_ns = BPF_CORE_READ(task, start_time);
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), ringbuf_flags(sizeof(ev))))
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
	return 0;
}

/* A new program: userspace looks at its executable and libraries for TLS. */
SEC("tracepoint/sched/sched_process_exec")
int process_exec(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;

	if (!pid_traced(tgid))
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct pscope_proc_event ev = {};
	ev.hdr.type = PSCOPE_EV_PROC_EXEC;
	ev.hdr.size = sizeof(ev);
	ev.hdr.timestamp_ns = bpf_ktime_get_ns();
	ev.pid = tgid;
	ev.proc_start_ns = BPF_CORE_READ(task, group_leader, start_time);
	const unsigned char *name = BPF_CORE_READ(task, mm, exe_file, f_path.dentry, d_name.name);
	if (name)
		bpf_probe_read_kernel_str(ev.exe_name, sizeof(ev.exe_name), name);
	/* wake the agent now: it reads the new program's metadata from /proc
	 * while the process surely exists (a curl lives a few milliseconds) */
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), BPF_RB_FORCE_WAKEUP))
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
	/* a new program gets a fresh guess about its TLS library */
	bpf_map_delete_elem(&ssl_procs, &tgid);
	return 0;
}
