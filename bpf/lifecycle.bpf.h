// SPDX-License-Identifier: GPL-2.0
/* lifecycle.bpf.h — lifecycle events: accept/connect open a connection with its role,
 * close ends it (and forgets the socket: the socket's destruction with the socket
 * tracepoints, close() on the syscall-exit path), a peer's FIN or reset is
 * reported (sock:inet_sock_set_state), listen/connect/fork mark a process as one with
 * TCP sockets (net_procs), process exec/exit let userspace forget process
 * metadata and look at new executables (a known plain one wakes no one; a process's first
 * connection does); the agent's own connections register its endpoints instead. */
#ifndef PERISCOPE_LIFECYCLE_BPF_H
#define PERISCOPE_LIFECYCLE_BPF_H

/* ---- connection lifecycle ---- */

/* The first connection of a process since its exec wakes the agent (an
 * empty record discarded with BPF_RB_FORCE_WAKEUP): it reads the process's
 * metadata from /proc at that connection's event, while the process surely
 * exists (a curl lives a few milliseconds). Its exec did not wake it. */
static __always_inline void wake_at_first_conn(__u32 tgid)
{
	__u8 one = 1;
	void *rec;

	if (bpf_map_lookup_elem(&conn_procs, &tgid))
		return;
	bpf_map_update_elem(&conn_procs, &tgid, &one, BPF_ANY);
	rec = bpf_ringbuf_reserve(&events, 8, 0);
	if (rec)
		bpf_ringbuf_discard(rec, BPF_RB_FORCE_WAKEUP);
}

static __always_inline int accept_exit(long ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (ret < 0 || !pid_traced(pid_tgid >> 32))
		return 0;
	struct sock *sk = sock_from_fd(ret);
	if (!sk)
		return 0;
	net_proc_mark(pid_tgid >> 32);
	struct pscope_sock_info *si = sock_info_open(sk, PSCOPE_ROLE_SERVER);
	if (si && !si->ignored) {
		emit_conn_event(PSCOPE_EV_CONN_OPEN, pid_tgid, ret, (__u64)sk, si,
		                LOOP_SEEN_ACCEPT);
		wake_at_first_conn(pid_tgid >> 32);
	}
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
		/* The agent's own connection: its peer must not trace it. Its
		 * entry in socks (ignored) lets sock_destroy forget it. */
		struct pscope_sock_info si = {
		    .role = PSCOPE_ROLE_CLIENT, .ignored = 1, .self_owned = 1};
		struct self_conn_key k;
		__u64 key = (__u64)sk;
		__u8 one = 1;

		read_tuple(sk, &si);
		self_conn_key(&k, &si, 0);
		bpf_map_update_elem(&self_conns, &k, &one, BPF_ANY);
		bpf_map_update_elem(&socks, &key, &si, BPF_ANY);
		return 0;
	}
	net_proc_mark(pid_tgid >> 32);
	struct pscope_sock_info *si = sock_info_open(sk, PSCOPE_ROLE_CLIENT);
	if (si && !si->ignored) {
		emit_conn_event(PSCOPE_EV_CONN_OPEN, pid_tgid, fd, (__u64)sk, si, 0);
		wake_at_first_conn(pid_tgid >> 32);
	}
	return 0;
}

/* The syscall-exit path's close (older kernels, --syscall-data): with the
 * socket tracepoints, sock_destroy ends a connection instead and no program
 * runs at close() (a process closes files far more often than sockets). */
SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	int fd = ARG(0);

	if (tgid != self_tgid && (!pid_traced(tgid) || !net_proc(tgid)))
		return 0; /* a process that never held a TCP socket closes none */
	struct sock *sk = sock_from_fd(fd);
	if (!sk)
		return 0;
	__u64 key = (__u64)sk;
	if (tgid == self_tgid) {
		struct pscope_sock_info si = {};
		struct self_conn_key k;

		read_tuple(sk, &si);
		self_conn_key(&k, &si, 0);
		bpf_map_delete_elem(&self_conns, &k);
		bpf_map_delete_elem(&socks, &key);
		return 0;
	}
	struct pscope_sock_info *si = bpf_map_lookup_elem(&socks, &key);
	if (!si)
		return 0;
	if (!si->ignored)
		emit_conn_event(PSCOPE_EV_CONN_CLOSE, pid_tgid, fd, key, si, 0);
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
	if (events_output(&ev, sizeof(ev)))
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
	if (!bpf_map_delete_elem(&go_procs, &tgid))
		proc_flags_changed(); /* its sockets may live on in its children */
	bpf_map_delete_elem(&conn_procs, &tgid);
	if (!bpf_map_delete_elem(&net_procs, &tgid))
		net_procs_changed(); /* its tgid may come back */
	return 0;
}

/* A child process inherits its parent's sockets (prefork servers: nginx's
 * and gunicorn's workers accept on their master's listener), so its waits
 * count turns too (net_procs). Threads share their process's entry. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(process_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid;

	if (ptgid != ctgid && net_proc(ptgid))
		net_proc_mark(ctgid);
	return 0;
}

/* A new program: userspace forgets what it knew of the process, and looks at
 * a new executable for Go or OpenSSL (TLS probes must be in place before its
 * first TLS call: the agent is woken now). An executable it looked at before
 * and found plain (plain_exes) needs no wakeup: the event waits for the next
 * drain. */
SEC("tracepoint/sched/sched_process_exec")
int process_exec(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;

	if (!pid_traced(tgid))
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct pscope_proc_event ev = {};
	struct pscope_file_key key = {};
	int force_wake = 1;

	ev.hdr.type = PSCOPE_EV_PROC_EXEC;
	ev.hdr.size = sizeof(ev);
	ev.hdr.timestamp_ns = bpf_ktime_get_ns();
	ev.pid = tgid;
	ev.proc_start_ns = BPF_CORE_READ(task, group_leader, start_time);
	const unsigned char *name = BPF_CORE_READ(exe, f_path.dentry, d_name.name);
	if (name)
		bpf_probe_read_kernel_str(ev.exe_name, sizeof(ev.exe_name), name);
	key.ino = BPF_CORE_READ(exe, f_inode, i_ino);
	key.dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
	ev.exe_ino = key.ino;
	ev.exe_dev = key.dev;
	if (key.ino && bpf_map_lookup_elem(&plain_exes, &key)) {
		ev.hdr.flags = PSCOPE_EVF_PLAIN_EXE;
		force_wake = 0;
	}
	if (events_output_wake(&ev, sizeof(ev), force_wake))
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
	/* a new program gets a fresh guess about its TLS library, and its first
	 * connection wakes the agent again */
	if (!bpf_map_delete_elem(&ssl_procs, &tgid))
		proc_flags_changed(); /* the sockets it keeps across exec */
	bpf_map_delete_elem(&conn_procs, &tgid);
	return 0;
}

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT    2
#define TCP_CLOSE       7
#define TCP_CLOSE_WAIT  8
#define TCP_LISTEN      10
#define IPPROTO_TCP     6

#define SHUTDOWN_MASK 3

/* An end of traced socket key that needs no process context: the peer's
 * (PSCOPE_EV_PEER_END, how) or the socket's own (PSCOPE_EV_SOCK_CLOSED). */
static __always_inline void emit_sock_end(__u16 type, __u16 flags, __u64 key,
                                          const struct pscope_sock_info *si, __u8 how)
{
	struct pscope_peer_end_event ev = {};

	ev.hdr.type = type;
	ev.hdr.flags = flags;
	ev.hdr.size = sizeof(ev);
	ev.hdr.timestamp_ns = bpf_ktime_get_ns();
	ev.sock_id = key;
	__builtin_memcpy(ev.local_addr, si->local_addr, 16);
	__builtin_memcpy(ev.remote_addr, si->remote_addr, 16);
	ev.local_port = si->local_port;
	ev.remote_port = si->remote_port;
	ev.family = si->family;
	ev.how = how;
	if (events_output(&ev, sizeof(ev)))
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
}

/* Is the process closing socket sk itself? __tcp_close sets sk_shutdown to
 * SHUTDOWN_MASK before it moves the state (straight to CLOSE when data was
 * left unread), while a reset received moves it first (tcp_done). With the
 * socket tracepoints a socket's entry outlives close(), so this tells the
 * two apart; a process that had shut both directions down itself reads as
 * its own close, which it nearly is. */
static __always_inline int closing_here(const void *skaddr)
{
	const struct sock *sk = skaddr;

	return BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown) == SHUTDOWN_MASK;
}

/* The peer of a traced socket ended the connection: a FIN (ESTABLISHED →
 * CLOSE_WAIT) or a reset (ESTABLISHED or CLOSE_WAIT → CLOSE, before the
 * process closed its fd). Userspace ends the requests still waiting for an
 * answer with it. Runs wherever the packet was processed: no process filter,
 * only sockets already in `socks`. */
SEC("tracepoint/sock/inet_sock_set_state")
int sock_state(struct trace_event_raw_inet_sock_set_state *ctx)
{
	int old = ctx->oldstate, new = ctx->newstate;
	__u8 how;

	if (ctx->protocol != IPPROTO_TCP)
		return 0;
	if (new == TCP_LISTEN || new == TCP_SYN_SENT) {
		/* listen() and connect() run in the process's own context: from
		 * now on its waits count turns (net_procs) */
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;

		if (tgid != self_tgid && pid_traced(tgid))
			net_proc_mark(tgid);
		return 0;
	}
	if (old == TCP_ESTABLISHED && new == TCP_CLOSE_WAIT)
		how = PSCOPE_PEER_FIN;
	else if ((old == TCP_ESTABLISHED || old == TCP_CLOSE_WAIT) && new == TCP_CLOSE)
		how = PSCOPE_PEER_RST;
	else
		return 0;
	if (how == PSCOPE_PEER_RST && closing_here(ctx->skaddr))
		return 0; /* this end's close() with unread data (it sends the reset) */
	__u64 key = (__u64)ctx->skaddr;
	struct pscope_sock_info *si = bpf_map_lookup_elem(&socks, &key);
	if (!si || si->ignored)
		return 0;
	emit_sock_end(PSCOPE_EV_PEER_END, 0, key, si, how);
	return 0;
}

/* A traced socket is gone (its last fd closed and TCP done with it: after
 * the FIN's answer, or at close() when the connection had already ended):
 * with the socket tracepoints this ends the connection in userspace, found by
 * its 4-tuple and socket id, since this may run in softirq context with no
 * process of its own. A socket shared by fork is gone only when its last
 * holder closes it, and a close of a file runs nothing of ours. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(sock_destroy, struct sock *sk)
{
	__u64 key = (__u64)sk;
	struct pscope_sock_info *si = bpf_map_lookup_elem(&socks, &key);

	if (!si)
		return 0;
	if (si->self_owned) {
		struct self_conn_key k;

		self_conn_key(&k, si, 0);
		bpf_map_delete_elem(&self_conns, &k);
	} else if (!si->ignored) {
		/* a close after lost data: the requests still open may have had answers */
		emit_sock_end(PSCOPE_EV_SOCK_CLOSED, si->lost ? PSCOPE_EVF_LOST : 0, key, si, 0);
	}
	bpf_map_delete_elem(&socks, &key);
	return 0;
}

#endif
