// SPDX-License-Identifier: GPL-2.0
/* sock.bpf.h — socket identification and filters: is this process traced (--pid),
 * which TCP socket is behind an fd (CO-RE walk of the task's fd table, no kprobes), its 4-tuple,
 * the agent's own endpoints and --port filters, the per-socket state in `socks`, and the
 * connection reference every event carries. */
#ifndef PERISCOPE_SOCK_BPF_H
#define PERISCOPE_SOCK_BPF_H

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

/* The open file behind fd in the current task, or NULL. */
static __always_inline struct file *file_from_fd(int fd)
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
	if (bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]))
		return NULL;
	return file;
}

/* The TCP socket behind fd in the current task, or NULL. */
static __always_inline struct sock *sock_from_fd(int fd)
{
	struct file *file = file_from_fd(fd);

	if (!file)
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
		/* the whole in6_addr: BPF_CORE_READ_INTO reads sizeof(*dst), which for
		 * the __u8 array itself would be its first byte only (every IPv6 and
		 * dual-stack peer then read as "::") */
		BPF_CORE_READ_INTO((struct in6_addr *)si->local_addr, sk,
		                   __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO((struct in6_addr *)si->remote_addr, sk,
		                   __sk_common.skc_v6_daddr);
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

/* The self_conns key of a socket of the agent's, seen from its end (si is
 * the agent's socket) or from its peer's (peer: si is the other end). */
static __always_inline void self_conn_key(struct self_conn_key *k,
                                          const struct pscope_sock_info *si, int peer)
{
	endpoint_key(&k->local, si->family, peer ? si->remote_addr : si->local_addr,
	             peer ? si->remote_port : si->local_port);
	endpoint_key(&k->remote, si->family, peer ? si->local_addr : si->remote_addr,
	             peer ? si->local_port : si->remote_port);
}

/* Is the other end of this socket the agent: one of its connections, or a
 * listener of its (its endpoint in self_endpoints)? */
static __always_inline int peer_is_self(const struct pscope_sock_info *si)
{
	struct self_conn_key c;
	struct pscope_endpoint k;

	self_conn_key(&c, si, 1);
	if (bpf_map_lookup_elem(&self_conns, &c))
		return 1;
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

/* tgid's process flags (TLS_PROC_*, PROC_GO_HTTP, with PROC_FLAGS_VALID),
 * from the maps. */
static __always_inline __u8 proc_flags_lookup(__u32 tgid)
{
	__u8 f = PROC_FLAGS_VALID;
	__u8 *tls = bpf_map_lookup_elem(&ssl_procs, &tgid);

	if (tls)
		f |= *tls & (TLS_PROC_OPENSSL | TLS_PROC_GO);
	return f | go_http_flag(tgid);
}

/* The flags of the process tgid using socket si, cached in si until a flag
 * of any process changes (proc_flags_gen) or another process uses it. The
 * generation is read before the maps: a change that lands in between leaves
 * an old generation behind, and the next event looks again. */
static __always_inline __u8 sock_proc_flags(struct pscope_sock_info *si, __u32 tgid)
{
	__u32 gen = proc_flags_gen;

	if ((si->proc_flags & PROC_FLAGS_VALID) && si->proc_gen == gen && si->proc_tgid == tgid)
		return si->proc_flags;
	__u8 f = proc_flags_lookup(tgid);
	si->proc_flags = f;
	si->proc_gen = gen;
	si->proc_tgid = tgid;
	return f;
}

/* A phased loop (Node, asyncio) begins a new segment: a socket read (owned by
 * what was read, unless the socket is one we ignore), or what ends the work a
 * read started (owned = 0: an accept, an untraced read, an end of stream).
 * Inside an asyncio task's step nothing does: the step is the task's until the
 * loop runs its next callback (loop_phase_boundary). */
static __always_inline void loop_phase_start(struct loop_state *t, __u8 owned)
{
	if (!t || !t->phased || t->in_task)
		return;
	t->tick += 1;
	t->seg_open = owned;
}

/* loop_state.phased: which probes phase the thread's loop */
#define LOOP_PHASED_NODE 1
#define LOOP_PHASED_PY   2

/* A thread phased by a Context.run that was not its loop's (uvloop): back to
 * the event-loop turns. */
static __always_inline void loop_unphase(struct loop_state *t)
{
	if (!t)
		return;
	t->phased = 0;
	t->in_task = 0;
}

/* A phased loop runs the next callback no read started: a Node phase (timers,
 * immediates, write completions), an asyncio handle, a new poll. */
static __always_inline void loop_phase_boundary(struct loop_state *t)
{
	t->in_task = 0;
	loop_phase_start(t, 0);
}

/* A phased thread's tick as events carry it: its segment, and whether the
 * event is inside one (TIMER_SAFE). */
static __always_inline __u32 loop_phased_tick(const struct loop_state *t)
{
	return (t->tick & PSCOPE_TICK_COUNT) | PSCOPE_TICK_PHASED |
	       (t->seg_open ? PSCOPE_TICK_TIMER_SAFE : 0);
}

/* The thread's event-loop tick (pscope_conn_ref.tick, with
 * PSCOPE_TICK_TIMER_SAFE while no timer can be due) for an event that does
 * what seen says (LOOP_SEEN_*, or 0). A turn that continued over zero-timeout
 * polls ends at the first event made when a timer may be due (see "Event-loop
 * turns" in capture.bpf.h). */
static __always_inline __u32 loop_tick_at(struct loop_state *t, __u8 seen, __u64 now)
{
	if (!t)
		return 0;
	if (t->phased) {
		/* Node: an accepted connection's callbacks are nobody's */
		if (seen & LOOP_SEEN_ACCEPT)
			loop_phase_start(t, 0);
		return loop_phased_tick(t);
	}
	if (!t->last_return_ns)
		return 0; /* no wait seen yet: a thread, not a loop */
	if (t->chain)
		t->seen |= seen;
	if (!t->blocking || t->untraced)
		return t->tick & PSCOPE_TICK_COUNT;
	if (now + loop_timer_margin_ns < t->horizon_ns)
		return (t->tick & PSCOPE_TICK_COUNT) | PSCOPE_TICK_TIMER_SAFE;
	if (t->chain && (t->seen & LOOP_SEEN_MERGED)) {
		/* a turn continued over zero-timeout polls ends here (the
		 * turn as the poll began it is one iteration, as it always
		 * was: it goes on, without the timer-safe mark) */
		t->tick += 1;
		t->chain = 0;
		t->blocking = 0;
	}
	return t->tick & PSCOPE_TICK_COUNT;
}

static __always_inline __u32 current_tick(__u64 pid_tgid, __u8 seen)
{
	return loop_tick_at(thread_state(0), seen, bpf_ktime_get_ns());
}

/* An event-loop thread read something that makes no event (not a TCP socket,
 * or one not followed): its turn may now run work for what it read, so its
 * events lose PSCOPE_TICK_TIMER_SAFE ("the request read last" would not hold:
 * nginx continues a request from a DNS answer over UDP, say). */
static __always_inline void loop_mark_untraced(__u8 direction)
{
	struct loop_state *t;

	if (direction != PSCOPE_DIR_INGRESS)
		return;
	t = thread_state(0);
	if (t && t->phased)
		loop_phase_start(t, 0); /* what that read starts is nobody's we know */
	else if (t && t->blocking)
		t->untraced = 1;
}

/* tick: the thread's event-loop tick at the event (current_tick). */
static __always_inline void fill_conn_ref_tick(struct pscope_conn_ref *c, __u64 pid_tgid, int fd,
                                               __u64 sk, const struct pscope_sock_info *si,
                                               __u32 tick)
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
	c->tick = tick;
}

/* seen: LOOP_SEEN_* for what the event is (current_tick). */
static __always_inline void fill_conn_ref(struct pscope_conn_ref *c, __u64 pid_tgid, int fd,
                                          __u64 sk, const struct pscope_sock_info *si, __u8 seen)
{
	fill_conn_ref_tick(c, pid_tgid, fd, sk, si, current_tick(pid_tgid, seen));
}

static __always_inline void emit_conn_event(__u16 type, __u64 pid_tgid, int fd, __u64 sk,
                                            const struct pscope_sock_info *si, __u8 seen)
{
	struct pscope_conn_event ev = {};

	ev.hdr.type = type;
	/* a close after lost data: the requests still open may have had answers */
	ev.hdr.flags = si->lost ? PSCOPE_EVF_LOST : 0;
	ev.hdr.size = sizeof(ev);
	ev.hdr.timestamp_ns = bpf_ktime_get_ns();
	fill_conn_ref(&ev.conn, pid_tgid, fd, sk, si, seen);
	bpf_get_current_comm(ev.comm, sizeof(ev.comm));
	if (events_output(&ev, sizeof(ev)))
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
}

#endif
