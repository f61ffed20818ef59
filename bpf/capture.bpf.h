// SPDX-License-Identifier: GPL-2.0
/* capture.bpf.h — data capture: the socket tracepoints (Linux >= 6.3; else the exit
 * tracepoints of the data syscalls, which check the fd's socket) read the syscall's arguments
 * from the user registers saved at entry and tail-call io_exit, which copies the bytes moved
 * (bounded) straight into a record of this CPU's event ring (or, with the shared ring buffer,
 * into a per-CPU scratch event it then sends); a failed send flags the socket's next event as
 * following a loss. */
#ifndef PERISCOPE_CAPTURE_BPF_H
#define PERISCOPE_CAPTURE_BPF_H

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

/* The user's r14 in the registers saved at this syscall's entry (see
 * pscope_data_event.goroutine). */
static __always_inline __u32 regs_r14(struct pt_regs *regs)
{
#ifdef __TARGET_ARCH_x86
	return (__u32)regs->r14;
#else
	return 0;
#endif
}

static __always_inline __u32 current_r14(void)
{
	return regs_r14((struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf()));
}

/* Jumps to exit handler slot of the caller's kind: tp, a socket tracepoint
 * (tracing programs, io_tp_prog), else a syscall exit (io_exit_prog). Returns
 * only if the tail call failed. */
static __always_inline void io_tail_call(void *ctx, __u32 slot, const int tp)
{
	if (tp)
		bpf_tail_call(ctx, &io_tp_prog, slot);
	else
		bpf_tail_call(ctx, &io_exit_prog, slot);
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

/* A data event of socket sk could not be sent (lost = 1), or one was sent
 * after such a loss (lost = 0): its next event tells userspace whether the
 * stream has a hole. */
static __always_inline void sock_set_lost(__u64 sk, __u8 lost)
{
	struct pscope_sock_info *si = bpf_map_lookup_elem(&socks, &sk);

	if (si)
		si->lost = lost;
}

/* Sends a data event of socket sk built in the scratch slot (the shared ring
 * buffer). A failure marks the socket; a success after one clears it. */
static __always_inline void emit_data(void *ev, __u32 size, __u64 sk, __u8 was_lost)
{
	asm volatile("%[s] &= %[mask]" : [s] "+r"(size) : [mask] "i"(2 * PSCOPE_CAPTURE_MAX - 1));
	if (events_output(ev, size)) {
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
		sock_set_lost(sk, 1);
	} else if (was_lost) {
		sock_set_lost(sk, 0);
	}
}

/* A writev/readv of at most IOV_INLINE entries (a server's head and body:
 * nginx, Node) is copied by the data program itself, without the hand-off and
 * tail call a longer array takes. Returns 0 when the array could not be read
 * (io_exit then tries); else 1, with *captured the bytes copied. */
#define IOV_INLINE 2
static __always_inline int copy_iov_short(__u8 *payload, __u64 iov_ptr, __u64 iovcnt, long ret,
                                          __u32 cap, __u32 *captured)
{
	struct iovec iov[IOV_INLINE];
	__u64 left = ret;
	__u32 off = 0;

	if (bpf_probe_read_user(iov, iovcnt == 1 ? sizeof(iov[0]) : sizeof(iov), (void *)iov_ptr))
		return 0;
	for (int i = 0; i < IOV_INLINE; i++) {
		if (i >= iovcnt || !left || off >= cap)
			break;
		__u64 len = iov[i].iov_len < left ? iov[i].iov_len : left;
		__u32 got = copy_user(payload, off, (__u64)iov[i].iov_base, len, cap);
		off += got;
		if (got != len)
			break; /* the capture is full, or the copy faulted (counted) */
		left -= len;
	}
	*captured = off;
	return 1;
}

/* Where a data event is written: in place in this CPU's ring (rec, claimed
 * for sizeof(*e) + want bytes at ring offset at), or with the shared ring
 * buffer in the scratch slot, then copied out (rec NULL). NULL when neither is
 * there: with the rings, the ring is full (counted, and the socket marked). */
static __always_inline struct pscope_data_event *
data_event_start(__u32 want, __u64 sk, struct pscope_ring_rec **rec, __u64 *at)
{
	*rec = NULL;
	if (cpu_ring_mask) {
		*rec = cpu_ring_claim_at(sizeof(struct pscope_data_event) + want, at);
		if (!*rec) {
			count_drop(PSCOPE_DROP_RINGBUF_FULL);
			sock_set_lost(sk, 1);
			return NULL;
		}
		return (struct pscope_data_event *)(*rec + 1);
	}
	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch_event *s = bpf_map_lookup_elem(&scratch, &cpu);

	return s ? (struct pscope_data_event *)s->raw : NULL;
}

/* The data event data_event_start began on this CPU, found again by a tail
 * call (claimed at ring offset at). */
static __always_inline struct pscope_data_event *data_event_at(__u64 at,
                                                               struct pscope_ring_rec **rec)
{
	*rec = NULL;
	if (cpu_ring_mask) {
		*rec = cpu_ring_rec_at(at);
		return *rec ? (struct pscope_data_event *)(*rec + 1) : NULL;
	}
	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch_event *s = bpf_map_lookup_elem(&scratch, &cpu);

	return s ? (struct pscope_data_event *)s->raw : NULL;
}

/* How much of a data event's bytes are copied: server reads (request heads)
 * get the larger capture. */
static __always_inline __u32 capture_cap(__u8 direction, __u8 role)
{
	__u32 cap = direction == PSCOPE_DIR_INGRESS && role == PSCOPE_ROLE_SERVER
	                ? request_capture_size
	                : capture_size;

	return cap > PSCOPE_CAPTURE_MAX ? PSCOPE_CAPTURE_MAX : cap;
}

/* Completes data event e (its header already filled) with captured payload
 * bytes of ret, and sends it: commits its record in place (rec), else copies
 * it out of the scratch slot. */
static __always_inline void finish_data(struct pscope_ring_rec *rec, struct pscope_data_event *e,
                                        long ret, __u32 captured, __u32 cap, __u64 sk, __u8 lost,
                                        __u32 claimed)
{
	if ((__u64)ret > captured && captured == cap)
		count_drop(PSCOPE_DROP_TRUNCATED);
	if (captured > PSCOPE_CAPTURE_MAX)
		captured = PSCOPE_CAPTURE_MAX;
	e->captured = captured;
	__u32 size = sizeof(*e) + captured;
	e->hdr.size = size;
	/* for the verifier: size < sizeof(struct scratch_event) */
	asm volatile("%[s] &= %[mask]" : [s] "+r"(size) : [mask] "i"(2 * PSCOPE_CAPTURE_MAX - 1));
	if (!rec) {
		emit_data(e, size, sk, lost);
		return;
	}
	if (captured == claimed)
		cpu_ring_commit(rec, size);
	else /* a copy faulted: shorter than the space claimed */
		cpu_ring_commit_space(rec, size, sizeof(*e) + claimed);
	cpu_ring_wake(size, 0);
	if (lost)
		sock_set_lost(sk, 0);
}

/* Sends a data event of a traced TCP socket: claims its record (in place,
 * sized to what the copy can take), stamps it with the claim's time, fills
 * its header, and copies a plain buffer or a short iovec array itself; a
 * longer array or a msghdr goes on in io_exit (a tail call: its copy loops are
 * verified once per capture size, not once per program). */
static __always_inline int data_event_send(void *ctx, long ret, int fd, struct sock *sk,
                                           const struct pscope_sock_info *si, __u64 buf,
                                           __u64 count, __u8 kind, __u8 source, __u8 direction,
                                           const int tp, struct loop_state *t, __u64 pid_tgid,
                                           __u32 r14)
{
	int request = direction == PSCOPE_DIR_INGRESS && si->role == PSCOPE_ROLE_SERVER;
	__u32 cap = capture_cap(direction, si->role);
	struct pscope_ring_rec *rec;
	__u64 at = 0, now;
	__u8 lost = si->lost;
	__u32 want = kind == IO_NONE ? 0 : (__u64)ret < cap ? (__u32)ret : cap;
	struct pscope_data_event *e = data_event_start(want, (__u64)sk, &rec, &at);
	if (!e)
		return 0;
	/* one clock read: the claim's (the exit: entry is not observed) */
	now = rec ? rec->order_ns : bpf_ktime_get_ns();
	e->hdr.type = PSCOPE_EV_DATA;
	e->hdr.flags = lost ? PSCOPE_EVF_LOST : 0;
	e->hdr.timestamp_ns = now;
	fill_conn_ref_tick(
	    &e->conn, pid_tgid, fd, (__u64)sk, si,
	    loop_tick_at(t, direction == PSCOPE_DIR_INGRESS ? LOOP_SEEN_READ : 0, now));
	e->enter_ns = now;
	e->bytes = ret;
	e->direction = direction;
	e->source = source;
	e->pad0 = 0;
	e->goroutine = r14;
	if (direction == PSCOPE_DIR_EGRESS)
		e->goroutine = go_effective_goroutine(pid_tgid >> 32, e->goroutine, si->proc_flags);

	__u32 captured = 0;
	if (kind == IO_BUF)
		captured = copy_user((__u8 *)(e + 1), 0, buf, ret, cap);
	if (kind == IO_IOV && count && count <= IOV_INLINE &&
	    copy_iov_short((__u8 *)(e + 1), buf, count, ret, cap, &captured))
		kind = IO_BUF; /* copied here: no tail call */
	if (kind == IO_IOV || kind == IO_MSG) {
		struct active_io *a = io_handoff_get(1);
		if (a) {
			a->ret = ret;
			a->sk = (__u64)sk;
			a->buf = buf;
			a->count = count;
			a->kind = kind;
			a->lost = lost;
			a->cap = cap;
			a->ring_at = at;
			a->claimed = want;
			io_tail_call(ctx, request ? IO_EXIT_REQUEST : IO_EXIT_DEFAULT, tp);
		}
		count_drop(PSCOPE_DROP_IOV_LIMIT); /* the tail call failed: no payload */
	}
	finish_data(rec, e, ret, captured, cap, (__u64)sk, lost, want);
	return 0;
}

/* ret > 0 bytes moved on TCP socket sk (fd in the current process): unless
 * filtered or someone else's to capture (TLS), data_event_send sends it. tp:
 * the caller is a socket tracepoint (tracing program), not a syscall exit.
 * regs: the user registers saved at the syscall's entry. */
static __always_inline int io_start_sk(void *ctx, long ret, int fd, struct sock *sk, __u64 buf,
                                       __u64 count, __u8 kind, __u8 source, __u8 direction,
                                       const int tp, struct loop_state *t, __u64 pid_tgid,
                                       struct pt_regs *regs)
{
	__u32 tgid = pid_tgid >> 32;

	struct pscope_sock_info *si = sock_info_get(sk);
	if (!si) {
		loop_mark_untraced(direction);
		return 0;
	}
	__u8 proc_flags = sock_proc_flags(si, tgid);
	if (proc_flags & TLS_PROC_GO) {
		/* a Go program whose crypto/tls probes fired: a syscall inside a
		 * (*tls.Conn).Write/Read names that call's socket */
		struct go_g_key gk = {.tgid = tgid, .g = regs_r14(regs)};
		struct active_ssl *ga = bpf_map_lookup_elem(&go_tls_active, &gk);
		if (ga) {
			ga->fd = fd;
			return 0;
		}
	}
	/* the thread's state: its loop tick, and for TLS library users its SSL
	 * call in flight and last socket */
	if (!t)
		t = thread_state(proc_flags & TLS_PROC_OPENSSL);
	if (direction == PSCOPE_DIR_INGRESS)
		loop_phase_start(t, !si->ignored);
	if (t && (proc_flags & TLS_PROC_OPENSSL)) {
		/* a process that maps a TLS library (or called one: ssl_enter) */
		if (t->in_ssl) {
			struct active_ssl *as = bpf_map_lookup_elem(&active_ssl, &pid_tgid);
			if (as) {
				/* ciphertext moved by a TLS call: it names the call's socket */
				as->fd = fd;
				return 0;
			}
		}
		t->last_fd_1 = fd + 1;
	}
	if (si->ignored) {
		loop_mark_untraced(direction);
		return 0;
	}
	if (si->tls || si->raw_skip)
		return 0; /* its plaintext comes from the TLS library's probes */

	if (!si->checked) {
		/* Data has flowed, so an agent connection has finished connect(): its
		 * endpoint is registered by now. Decide once per socket. */
		si->checked = 1;
		if (peer_is_self(si)) {
			si->ignored = 1;
			return 0;
		}
	}
	return data_event_send(ctx, ret, fd, sk, si, buf, count, kind, source, direction, tp, t,
	                       pid_tgid, regs_r14(regs));
}

/* A data syscall returned ret bytes (the syscall-exit path): if fd is a
 * traced TCP socket, io_start_sk takes it. */
static __always_inline int io_start(void *ctx, struct pt_regs *regs, long ret, int fd, __u64 buf,
                                    __u64 count, __u8 kind, __u8 source, __u8 direction)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (ret <= 0)
		return 0;
	if (!pid_traced(pid_tgid >> 32))
		return 0;
	struct sock *sk = sock_from_fd(fd);
	if (!sk) {
		loop_mark_untraced(direction);
		return 0;
	}
	return io_start_sk(ctx, ret, fd, sk, buf, count, kind, source, direction, 0, NULL, pid_tgid,
	                   regs);
}

/* Event-loop turns. A turn begins when the thread returns from epoll; its work
 * until the next wait belongs to what it reads then (trace_links.c). One
 * exception keeps a request's own work in its turn: asyncio runs the handler a
 * read woke in the *next* iteration, after a zero-timeout poll (libuv the
 * same for setImmediate and deferred callbacks). A zero-timeout poll that
 * returns nothing continues the turn when nothing else can run in it:
 *  - the turn began with a blocking poll (timeout != 0: nothing was left
 *    ready from before) that returned exactly one event (one wake-up: the
 *    request's socket, not also a pipe, a timer fd or another connection);
 *  - and no timer can be due (checked at each event of the continued part,
 *    current_tick in sock.bpf.h): a loop computes its poll timeout from its
 *    nearest timer after its previous poll returned, and reads its clock for
 *    due timers before it runs the callbacks that make our events, so no
 *    timer set before the blocking poll runs before (previous return +
 *    timeout). We keep loop_timer_margin_ns of that for ms rounding and
 *    coarse clocks (asyncio rounds up to 1 ms; nginx reads
 *    CLOCK_MONOTONIC_COARSE). An event later than that begins a new turn.
 * Every other poll return begins a new turn, also a check that found nothing
 * after a poll that woke for several things. The timeout is read at the exit
 * from the saved user registers, as data syscalls' arguments are: no entry
 * program. Every process with a TCP socket counts (net_procs: marked before
 * its first traced request can come, which must be in a counted turn); one
 * without pays a look at its CPU's last answer per wait (net_proc). */
static __always_inline __s64 poll_timeout_ms(long ms)
{
	return (int)ms < 0 ? -1 : (__s64)(int)ms * 1000000;
}

/* The wait's timeout, still in the user registers saved at entry (SYSCALL_ARG):
 * epoll_wait and epoll_pwait take milliseconds (negative: forever). */
static __always_inline __s64 poll_timeout_arg_ms(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	return poll_timeout_ms((long)SYSCALL_ARG(regs, 3));
}

/* epoll_pwait2 takes a struct timespec pointer: NULL waits forever; one we
 * cannot read counts as a blocking wait of no known length (no chain). */
static __always_inline __s64 poll_timeout_arg_ts(void)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	const void *uts = (const void *)SYSCALL_ARG(regs, 3);
	struct __kernel_timespec ts;

	if (!uts)
		return -1;
	if (bpf_probe_read_user(&ts, sizeof(ts), uts))
		return 1;
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

#define POLL_TIMEOUT_MS 0 /* poll_return's timeout argument: epoll_wait, epoll_pwait */
#define POLL_TIMEOUT_TS 1 /* epoll_pwait2 */

static __always_inline int poll_return(long ret, int timeout_kind)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct loop_state *t;
	__s64 timeout_ns;
	__u64 now;

	if (ret < 0)
		return 0; /* interrupted: the loop waits again */
	if (!net_proc(tgid))
		return 0; /* no TCP socket: its waits are no turns of ours */
	t = thread_state(1);
	if (!t)
		return 0;
	if (t->phased == LOOP_PHASED_PY && bpf_map_lookup_elem(&loop_unphased, &tgid))
		loop_unphase(t); /* uvloop: a library's Context.run phased it */
	if (t->phased) {
		/* Node, asyncio: the poll phase begins; nothing is read in it yet */
		loop_phase_boundary(t);
		return 0;
	}
	timeout_ns =
	    timeout_kind == POLL_TIMEOUT_TS ? poll_timeout_arg_ts() : poll_timeout_arg_ms();
	now = bpf_ktime_get_ns();
	if (timeout_ns == 0) {
		if (t->chain && ret == 1 &&
		    (t->seen & (LOOP_SEEN_ACCEPT | LOOP_SEEN_READ)) == LOOP_SEEN_ACCEPT) {
			/* the accepted connection's first data: once */
			t->seen = LOOP_SEEN_MERGED;
		} else if (ret == 0 && t->chain) {
			t->seen |= LOOP_SEEN_MERGED;
		} else {
			t->tick += 1;
			t->chain = 0;
			t->blocking = 0;
		}
	} else {
		t->tick += 1;
		t->blocking = 1;
		t->untraced = 0;
		/* a thread's first wait has no previous return: no chain */
		t->chain = ret == 1 && t->last_return_ns;
		t->seen = 0;
		t->horizon_ns = timeout_ns < 0 ? ~0ULL : t->last_return_ns + timeout_ns;
	}
	t->last_return_ns = now;
	return 0;
}

/* A callback no socket read started is about to run, on an event loop whose
 * phases the agent sees (attached by the loader, never automatically):
 *  - Node.js: entries of node::Environment::CheckImmediate (setImmediate,
 *    every loop iteration), node::Environment::RunTimers (timers),
 *    LibuvStreamWrap::AfterUvWrite and ::AfterUvShutdown (write and shutdown
 *    completions: 'finish' handlers), and TCPWrap's AfterConnect ('connect'
 *    handlers) where node exports it;
 *  - Python asyncio: the entry of contextvars' Context.run, which every
 *    callback an asyncio loop runs goes through (Handle._run), a task's
 *    steps included (not uvloop's: processes in loop_unphased).
 * From the first one on, the thread is phased: its tick moves at each socket
 * read (a segment that read owns) and at each of these (work that is nobody's
 * until the next read, or an asyncio task's step: py_task_enter). */
SEC("uprobe")
int loop_boundary(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct loop_state *t;

	if (!pid_traced(tgid))
		return 0;
	bool py = bpf_get_attach_cookie(ctx) == PSCOPE_COOKIE_PY_CONTEXT_RUN;

	if (py && bpf_map_lookup_elem(&loop_unphased, &tgid)) {
		/* uvloop: Context.run is some library's, not the loop's */
		loop_unphase(thread_state(0));
		return 0;
	}
	t = thread_state(1);
	if (!t)
		return 0;
	t->phased = py ? LOOP_PHASED_PY : LOOP_PHASED_NODE;
	loop_phase_boundary(t);
	return 0;
}

static __always_inline void py_task_event(struct loop_state *t, __u16 what, __u64 task)
{
	struct pscope_task_event ev = {};
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct *cur = bpf_get_current_task_btf();

	ev.hdr.type = PSCOPE_EV_TASK;
	ev.hdr.flags = what;
	ev.hdr.size = sizeof(ev);
	ev.hdr.timestamp_ns = bpf_ktime_get_ns();
	ev.pid = pid_tgid >> 32;
	ev.tid = (__u32)pid_tgid;
	ev.proc_start_ns = cur->group_leader->start_time;
	ev.task = task;
	ev.tick = loop_phased_tick(t);
	if (events_output(&ev, sizeof(ev)))
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
}

/* A task's step begins: _asyncio's enter_task() sets the loop's current task
 * with _PyDict_SetItem_KnownHash(current_tasks, loop, task, hash); the probes
 * are on the _asyncio module's call instructions to it (py_binary.c), so no
 * other caller of the function fires them. The step is one segment, the
 * task's, whatever it reads. */
SEC("uprobe")
int py_task_enter(struct pt_regs *ctx)
{
	struct loop_state *t;

	if (!pid_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	t = thread_state(0);
	if (!t || !t->phased)
		return 0;
	t->in_task = 0;
	loop_phase_start(t, 1);
	t->in_task = 1;
	py_task_event(t, PSCOPE_TASK_ENTER, PT_REGS_PARM3(ctx));
	return 0;
}

/* A task is made: Task.__init__ ends with register_task(), all_tasks.add(task)
 * through PyObject_VectorcallMethod(name, args, 2 | OFFSET, NULL) — the one
 * call of it in _asyncio with two arguments and a WeakSet first (get_debug,
 * call_soon, cancel, ... are not; most of them are not even probed, see
 * py_binary.c). args[1] is the task. */
#define PY_VECTORCALL_ARGUMENTS_OFFSET (1ULL << 63)
SEC("uprobe")
int py_task_create(struct pt_regs *ctx)
{
	__u64 nargsf = PT_REGS_PARM3(ctx), args[2], type, name_ptr;
	const void *argv = (const void *)PT_REGS_PARM2(ctx);
	char name[8];
	struct loop_state *t;

	if ((nargsf & ~PY_VECTORCALL_ARGUMENTS_OFFSET) != 2)
		return 0;
	if (!pid_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	t = thread_state(0);
	if (!t || !t->phased)
		return 0;
	/* type(args[0]).__name__: ob_type at 8, tp_name at 24 (every CPython) */
	if (bpf_probe_read_user(args, sizeof(args), argv) ||
	    bpf_probe_read_user(&type, sizeof(type), (const void *)(args[0] + 8)) ||
	    bpf_probe_read_user(&name_ptr, sizeof(name_ptr), (const void *)(type + 24)) ||
	    bpf_probe_read_user(name, sizeof(name), (const void *)name_ptr))
		return 0;
	if (name[0] != 'W' || name[1] != 'e' || name[2] != 'a' || name[3] != 'k' ||
	    name[4] != 'S' || name[5] != 'e' || name[6] != 't' || name[7] != 0)
		return 0;
	py_task_event(t, PSCOPE_TASK_CREATE, args[1]);
	return 0;
}

/* epoll only: event loops (libuv, asyncio, nginx, Java NIO) wait there, while
 * poll and select also serve blocking sockets with timeouts (Python's socket
 * timeouts poll before each recv), which would cut a thread-per-request
 * server's request into turns that read nothing. */
SEC("tracepoint/syscalls/sys_exit_epoll_wait")
int poll_exit_epoll_wait(struct trace_event_raw_sys_exit *ctx)
{
	return poll_return(ctx->ret, POLL_TIMEOUT_MS);
}

SEC("tracepoint/syscalls/sys_exit_epoll_pwait")
int poll_exit_epoll_pwait(struct trace_event_raw_sys_exit *ctx)
{
	return poll_return(ctx->ret, POLL_TIMEOUT_MS);
}

SEC("tracepoint/syscalls/sys_exit_epoll_pwait2")
int poll_exit_epoll_pwait2(struct trace_event_raw_sys_exit *ctx)
{
	return poll_return(ctx->ret, POLL_TIMEOUT_TS);
}

/* One pass over at most MAX_IOV iovec entries from st->next, appending to
 * payload at st->off within cap. Left in st: where the walk stopped. */
static __always_inline void copy_iov_pass(__u8 *payload, struct active_io *st, __u32 cap)
{
	for (int k = 0; k < MAX_IOV; k++) {
		struct iovec iov;
		__u32 i = st->next;

		if (i >= st->iovcnt || !st->left || st->off >= cap)
			break;
		if (bpf_probe_read_user(&iov, sizeof(iov),
		                        (const void *)(st->iov_ptr + (__u64)i * sizeof(iov)))) {
			st->fault = 1;
			break;
		}
		__u64 len = iov.iov_len < st->left ? iov.iov_len : st->left;
		__u32 got = copy_user(payload, st->off, (__u64)iov.iov_base, len, cap);
		if (got != len && got + st->off < cap) {
			st->fault = 1;
			break;
		}
		st->off += got;
		st->left -= len;
		st->next = i + 1;
	}
}

/* More of the syscall's bytes lie in iovec entries a further pass would copy. */
static __always_inline int iov_more(const struct active_io *st, __u32 cap)
{
	return !st->fault && st->left && st->off < cap && st->next < st->iovcnt;
}

/* The first MAX_IOV entries only (the log path). */
static __always_inline __u32 copy_iov(__u8 *payload, __u64 iov_ptr, __u64 iovcnt, __u64 total,
                                      __u32 cap)
{
	struct active_io st = {.iov_ptr = iov_ptr, .iovcnt = iovcnt, .left = total};

	copy_iov_pass(payload, &st, cap);
	if (st.left && st.off < cap)
		count_drop(PSCOPE_DROP_IOV_LIMIT);
	return st.off;
}

/* The body of the tail-call targets: copies up to cap bytes of the iovec
 * array or msghdr data_event_send handed over into the event it began, and
 * sends it. A write of more iovec entries than one pass walks (gRPC C core:
 * ~25 per call) goes on in io_exit_more, a third tail call, which sends the
 * event. */
static __always_inline int io_exit_capture(void *ctx, __u32 cap, const int tp)
{
	struct active_io *ap = io_handoff_get(0);
	struct pscope_ring_rec *rec;
	struct pscope_data_event *e;

	if (!ap || ap->ret <= 0)
		return 0;
	e = data_event_at(ap->ring_at, &rec);
	if (!e)
		return 0; /* cannot be: the caller found it on this CPU */
	if (cap > PSCOPE_CAPTURE_MAX)
		cap = PSCOPE_CAPTURE_MAX;
	__u64 iov_ptr = ap->buf, iovcnt = ap->count;
	if (ap->kind == IO_MSG) {
		struct user_msghdr msg;
		if (bpf_probe_read_user(&msg, sizeof(msg), (const void *)ap->buf)) {
			count_drop(PSCOPE_DROP_READ_FAULT);
			goto send;
		}
		iov_ptr = (__u64)msg.msg_iov;
		iovcnt = msg.msg_iovlen;
	}
	ap->iov_ptr = iov_ptr;
	ap->iovcnt = iovcnt;
	ap->left = ap->ret;
	ap->off = 0;
	ap->next = 0;
	ap->fault = 0;
	ap->cap = cap;
	copy_iov_pass((__u8 *)(e + 1), ap, cap);
	if (iov_more(ap, cap)) {
		io_tail_call(ctx, IO_EXIT_MORE, tp);
		count_drop(PSCOPE_DROP_IOV_LIMIT); /* the tail call failed */
	} else if (ap->left && ap->off < cap && !ap->fault) {
		count_drop(PSCOPE_DROP_IOV_LIMIT);
	}
send:
	finish_data(rec, e, ap->ret, ap->off, cap, ap->sk, ap->lost, ap->claimed);
	return 0;
}

/* The second pass over a long iovec array (iovecs MAX_IOV..2*MAX_IOV-1) into
 * the event io_exit_capture began (in this CPU's ring, or its scratch slot);
 * sends it. */
static __always_inline int io_exit_more_pass(void)
{
	struct active_io *ap = io_handoff_get(0);
	struct pscope_ring_rec *rec;
	struct pscope_data_event *e;

	if (!ap || ap->ret <= 0)
		return 0;
	e = data_event_at(ap->ring_at, &rec);
	if (!e)
		return 0;
	__u32 cap = ap->cap;
	if (cap > PSCOPE_CAPTURE_MAX)
		cap = PSCOPE_CAPTURE_MAX;
	copy_iov_pass((__u8 *)(e + 1), ap, cap);
	if (ap->left && ap->off < cap && !ap->fault)
		count_drop(PSCOPE_DROP_IOV_LIMIT);
	finish_data(rec, e, ap->ret, ap->off, cap, ap->sk, ap->lost, ap->claimed);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_writev")
int io_exit_more(struct trace_event_raw_sys_exit *ctx)
{
	return io_exit_more_pass();
}

/* Every iovec or msghdr copy jumps to one of these (tail calls), so the copy
 * loops are verified once per capture size rather than once per syscall. Two
 * programs, each with its cap a known constant: one program choosing between
 * two caps makes the verifier walk the loops twice over (past its limit). */
SEC("tracepoint/syscalls/sys_exit_read")
int io_exit(struct trace_event_raw_sys_exit *ctx)
{
	return io_exit_capture(ctx, capture_size, 0);
}

/* Reads of a server connection: request heads get the larger capture. */
SEC("tracepoint/syscalls/sys_exit_read")
int io_exit_request(struct trace_event_raw_sys_exit *ctx)
{
	return io_exit_capture(ctx, request_capture_size, 0);
}

/* The same three for the socket tracepoints (tracing programs, io_tp_prog;
 * never attached). sock_send_length and sock_recv_length share one
 * prototype, so both may tail-call these. */
SEC("tp_btf/sock_send_length")
int io_tp_exit(void *ctx)
{
	return io_exit_capture(ctx, capture_size, 1);
}

SEC("tp_btf/sock_send_length")
int io_tp_request(void *ctx)
{
	return io_exit_capture(ctx, request_capture_size, 1);
}

SEC("tp_btf/sock_send_length")
int io_tp_more(void *ctx)
{
	return io_exit_more_pass();
}

/* ---- stdout/stderr (--logs) ---- */

#define S_IFCHR    0020000
#define AF_UNIX    1
#define DEV_NULL   ((1u << 20) | 3) /* MKDEV(1, 3), the kernel's dev_t */
#define NSEC_PER_S 1000000000ull

/* A write to fd 1 or 2 (the caller checked the number) of a traced process.
 * Returns 0 when the fd is a network socket (the data path decides), 1 when
 * the write was taken or ignored here; a taken write tail-calls log_exit. */
static __always_inline int log_start(void *ctx, long ret, int fd, __u64 buf, __u64 count, __u8 kind,
                                     __u8 source)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 zero = 0;
	struct file *file = file_from_fd(fd);

	if (!file)
		return 1;
	struct inode *inode = BPF_CORE_READ(file, f_inode);
	if (!inode)
		return 1;
	umode_t mode = BPF_CORE_READ(inode, i_mode);
	if ((mode & S_IFMT) == S_IFSOCK) {
		struct socket *sock = BPF_CORE_READ(file, private_data);
		struct sock *sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
		if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != AF_UNIX)
			return 0; /* a TCP socket as stdout (inetd style): data, not logs */
	} else if ((mode & S_IFMT) == S_IFCHR && BPF_CORE_READ(inode, i_rdev) == DEV_NULL) {
		return 1;
	}
	if (!pid_traced(tgid))
		return 1;
	if (log_writes_per_sec) {
		__u64 now = bpf_ktime_get_ns();
		struct log_window *w = bpf_map_lookup_elem(&log_windows, &tgid);
		if (!w) {
			struct log_window nw = {.start_ns = now, .writes = 1};
			bpf_map_update_elem(&log_windows, &tgid, &nw, BPF_ANY);
		} else if (now - w->start_ns >= NSEC_PER_S) {
			w->start_ns = now;
			w->writes = 1;
		} else if (w->writes >= log_writes_per_sec) {
			__u32 k = PSCOPE_LOG_RATE_LIMITED;
			__u64 *v = bpf_map_lookup_elem(&log_counters, &k);
			if (v)
				*v += 1;
			return 1;
		} else {
			w->writes++;
		}
	}
	struct active_io *a = bpf_map_lookup_elem(&active_io, &zero);
	if (!a)
		return 1;
	a->enter_ns = bpf_ktime_get_ns();
	a->buf = buf;
	a->count = count;
	a->fd = fd;
	a->kind = kind;
	a->source = source;
	bpf_tail_call(ctx, &io_exit_prog, IO_EXIT_LOG);
	return 1;
}

/* The tail-call target of log_start: copies up to capture_size bytes of the
 * write and sends a PSCOPE_EV_LOG event. */
SEC("tracepoint/syscalls/sys_exit_write")
int log_exit(struct trace_event_raw_sys_exit *ctx)
{
	long ret = ctx->ret;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0, cap = capture_size;
	struct active_io *ap = bpf_map_lookup_elem(&active_io, &zero);
	struct active_io a;

	if (!ap || ret <= 0)
		return 0;
	a = *ap;
	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch_event *s = bpf_map_lookup_elem(&scratch, &cpu);
	if (!s)
		return 0;
	struct pscope_log_event *e = (struct pscope_log_event *)s->raw;
	__u8 *payload = s->raw + sizeof(*e);
	if (cap > PSCOPE_CAPTURE_MAX)
		cap = PSCOPE_CAPTURE_MAX;
	__u32 captured = 0;
	if (a.kind == IO_BUF)
		captured = copy_user(payload, 0, a.buf, ret, cap);
	else
		captured = copy_iov(payload, a.buf, a.count, ret, cap);
	if (captured > PSCOPE_CAPTURE_MAX)
		captured = PSCOPE_CAPTURE_MAX;

	struct task_struct *task = bpf_get_current_task_btf();
	e->hdr.type = PSCOPE_EV_LOG;
	e->hdr.flags = 0;
	e->hdr.timestamp_ns = a.enter_ns;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->proc_start_ns = task->group_leader->start_time;
	e->fd = a.fd;
	e->tick = current_tick(pid_tgid, 0);
	e->goroutine = current_r14();
	e->bytes = ret;
	e->captured = captured;
	e->source = a.source;
	e->pad[0] = e->pad[1] = e->pad[2] = 0;
	__u32 size = sizeof(*e) + captured;
	e->hdr.size = size;
	asm volatile("%[s] &= %[mask]" : [s] "+r"(size) : [mask] "i"(2 * PSCOPE_CAPTURE_MAX - 1));
	if (events_output(s, size)) {
		count_drop(PSCOPE_DROP_RINGBUF_FULL);
		return 0;
	}
	__u32 k = PSCOPE_LOG_WRITES;
	__u64 *v = bpf_map_lookup_elem(&log_counters, &k);
	if (v)
		*v += 1;
	return 0;
}

/* The write exits look at stdout/stderr first, with --logs only: other
 * writes pay one compare of the fd. */
#define LOG_FIRST(fd, buf, count, kind, source)                                                    \
	if (logs_enabled && ((fd) == 1 || (fd) == 2) &&                                            \
	    log_start(ctx, ret, (fd), (buf), (count), (kind), (source)))                           \
		return 0;

#define ARG(n) (ctx->args[n])

#define EXIT_ARGS(name) EXIT_ARGS_AS(name, exit_##name)
#define EXIT_ARGS_AS(name, prog)                                                                   \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                 \
	int prog(struct trace_event_raw_sys_exit *ctx)                                             \
	{                                                                                          \
		long ret = ctx->ret;                                                               \
		if (ret <= 0)                                                                      \
			return 0;                                                                  \
		struct pt_regs *regs =                                                             \
		    (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

/* The macro opens each function body: left as written. */
/* clang-format off */
EXIT_ARGS(read)
	return io_start(ctx, regs, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_BUF, PSCOPE_SRC_READ, PSCOPE_DIR_INGRESS);
}

EXIT_ARGS(write)
	LOG_FIRST((int)SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2), IO_BUF,
		  PSCOPE_SRC_WRITE)
	return io_start(ctx, regs, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_BUF, PSCOPE_SRC_WRITE, PSCOPE_DIR_EGRESS);
}

EXIT_ARGS(readv)
	return io_start(ctx, regs, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_IOV, PSCOPE_SRC_READV, PSCOPE_DIR_INGRESS);
}

EXIT_ARGS(writev)
	LOG_FIRST((int)SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2), IO_IOV,
		  PSCOPE_SRC_WRITEV)
	return io_start(ctx, regs, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_IOV, PSCOPE_SRC_WRITEV, PSCOPE_DIR_EGRESS);
}

EXIT_ARGS(recvfrom)
	if (SYSCALL_ARG(regs, 3) & MSG_PEEK)
		return 0;
	return io_start(ctx, regs, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_BUF, PSCOPE_SRC_RECVFROM, PSCOPE_DIR_INGRESS);
}

EXIT_ARGS(sendto)
	return io_start(ctx, regs, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2),
			IO_BUF, PSCOPE_SRC_SENDTO, PSCOPE_DIR_EGRESS);
}

EXIT_ARGS(recvmsg)
	if (SYSCALL_ARG(regs, 2) & MSG_PEEK)
		return 0;
	return io_start(ctx, regs, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), 0, IO_MSG,
			PSCOPE_SRC_RECVMSG, PSCOPE_DIR_INGRESS);
}

EXIT_ARGS(sendmsg)
	return io_start(ctx, regs, ret, SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), 0, IO_MSG,
			PSCOPE_SRC_SENDMSG, PSCOPE_DIR_EGRESS);
}

EXIT_ARGS(sendfile64)
	return io_start(ctx, regs, ret, SYSCALL_ARG(regs, 0), 0, SYSCALL_ARG(regs, 3), IO_NONE,
			PSCOPE_SRC_SENDFILE, PSCOPE_DIR_EGRESS);
}
/* With the socket tracepoints and --logs: the write exits look at
 * stdout/stderr only (sockets are sock_send's). */
EXIT_ARGS_AS(write, log_only_write)
	LOG_FIRST((int)SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2), IO_BUF,
		  PSCOPE_SRC_WRITE)
	return 0;
}

EXIT_ARGS_AS(writev, log_only_writev)
	LOG_FIRST((int)SYSCALL_ARG(regs, 0), SYSCALL_ARG(regs, 1), SYSCALL_ARG(regs, 2), IO_IOV,
		  PSCOPE_SRC_WRITEV)
	return 0;
}
/* clang-format on */

/* ---- socket tracepoints (Linux >= 6.3) ----
 * sock:sock_send_length and sock:sock_recv_length fire inside sock_sendmsg
 * and sock_recvmsg, for socket I/O only, and hand over the struct sock: no
 * fd-table walk, and no program at all on the reads and writes of files,
 * pipes and ttys (the loader then leaves the data syscalls' exits alone;
 * read/readv keep a small exit for event-loop turns, loop_read_exit). The
 * syscall's arguments are still in the user registers saved at entry. */

#ifdef __TARGET_ARCH_x86
#define SYSCALL_NR(regs) ((long)(regs)->orig_ax)
#define NR_READ          0
#define NR_WRITE         1
#define NR_READV         19
#define NR_WRITEV        20
#define NR_SENDFILE      40
#define NR_SENDTO        44
#define NR_RECVFROM      45
#define NR_SENDMSG       46
#define NR_RECVMSG       47
#else /* the generic table (arm64) */
#define SYSCALL_NR(regs) ((long)BPF_CORE_READ(regs, syscallno))
#define NR_READ          63
#define NR_WRITE         64
#define NR_READV         65
#define NR_WRITEV        66
#define NR_SENDFILE      71
#define NR_SENDTO        206
#define NR_RECVFROM      207
#define NR_SENDMSG       211
#define NR_RECVMSG       212
#endif
#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD   0x00200000

/* A TCP (or other stream) socket of IPv4/IPv6 that a process holds as a
 * file: kernel sockets (NFS, iSCSI, ...) have none. */
static __always_inline int stream_user_sock(struct sock *sk)
{
	struct socket *sock;
	__u16 family = sk->__sk_common.skc_family;

	if (family != AF_INET && family != AF_INET6)
		return 0;
	if (sk->sk_type != SOCK_STREAM)
		return 0;
	sock = sk->sk_socket;
	return sock && sock->file;
}

/* ret bytes moved by a send (egress) or receive on sk, inside the current
 * syscall: which syscall (its number) says where the user's bytes are. Not
 * a data syscall of the process itself (io_uring, sendmmsg, splice, a
 * kernel thread): left alone, as the syscall-exit path does. */
static __always_inline int sock_data(void *ctx, struct sock *sk, int ret, __u8 direction)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct loop_state *t = NULL;
	struct pt_regs *regs;
	__u64 buf, count, pid_tgid;
	__u8 kind, source;
	long nr;

	if (ret < 0)
		return 0; /* an error, "try again": nothing moved, nothing for the turn */
	if (task->flags & (PF_KTHREAD | PF_IO_WORKER))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	nr = SYSCALL_NR(regs);
	buf = SYSCALL_ARG(regs, 1);
	count = SYSCALL_ARG(regs, 2);
	if (direction == PSCOPE_DIR_INGRESS) {
		if (nr == NR_READ || nr == NR_READV) {
			/* its exit (loop_read_exit) must not take it for a pipe
			 * (an end of stream: the exit has nothing to mark) */
			if (ret > 0)
				t = thread_state(0);
			if (t)
				t->sock_read = 1;
			kind = nr == NR_READ ? IO_BUF : IO_IOV;
			source = nr == NR_READ ? PSCOPE_SRC_READ : PSCOPE_SRC_READV;
		} else if (nr == NR_RECVFROM) {
			kind = IO_BUF;
			source = PSCOPE_SRC_RECVFROM;
		} else if (nr == NR_RECVMSG) {
			kind = IO_MSG;
			source = PSCOPE_SRC_RECVMSG;
			count = 0;
		} else {
			return 0;
		}
	} else {
		if (nr == NR_WRITE) {
			kind = IO_BUF;
			source = PSCOPE_SRC_WRITE;
		} else if (nr == NR_WRITEV) {
			kind = IO_IOV;
			source = PSCOPE_SRC_WRITEV;
		} else if (nr == NR_SENDTO) {
			kind = IO_BUF;
			source = PSCOPE_SRC_SENDTO;
		} else if (nr == NR_SENDMSG) {
			kind = IO_MSG;
			source = PSCOPE_SRC_SENDMSG;
			count = 0;
		} else if (nr == NR_SENDFILE) {
			/* one event per chunk the splice sends: bytes, no buffer */
			kind = IO_NONE;
			source = PSCOPE_SRC_SENDFILE;
			buf = 0;
			count = SYSCALL_ARG(regs, 3);
		} else {
			return 0;
		}
	}
	if (ret == 0 && direction == PSCOPE_DIR_INGRESS) {
		/* an end of stream: in a phased loop (Node), what runs for it
		 * ('end' handlers) is not the previous read's work */
		loop_phase_start(thread_state(0), 0);
		return 0;
	}
	if (ret <= 0)
		return 0; /* as at the syscall exits: an end, an error, "try again" */
	pid_tgid = bpf_get_current_pid_tgid();
	if (!pid_traced(pid_tgid >> 32))
		return 0;
	if (!stream_user_sock(sk)) {
		loop_mark_untraced(direction);
		return 0;
	}
	return io_start_sk(ctx, ret, (int)SYSCALL_ARG(regs, 0), sk, buf, count, kind, source,
	                   direction, 1, t, pid_tgid, regs);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags)
{
	return sock_data(ctx, sk, ret, PSCOPE_DIR_EGRESS);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags)
{
	if (flags & MSG_PEEK)
		return 0;
	return sock_data(ctx, sk, ret, PSCOPE_DIR_INGRESS);
}

/* With the socket tracepoints, the exit of read()/readv(): a read of
 * something we do not follow (a pipe, an eventfd, a file) in an event
 * loop's turn may run work for what it read (loop_mark_untraced). A socket's
 * read was seen by sock_recv, which marked it. */
static __always_inline int loop_read_exit(long ret)
{
	struct loop_state *t;

	/* nothing read (an end, "try again") starts no work; a process that
	 * never held a TCP socket has no turns (poll_return) */
	if (ret <= 0 || !net_proc(bpf_get_current_pid_tgid() >> 32))
		return 0;
	t = thread_state(0);
	if (!t)
		return 0;
	if (t->sock_read) {
		t->sock_read = 0;
		return 0;
	}
	if (ret > 0 && t->phased)
		loop_phase_start(t, 0);
	else if (t->blocking && ret > 0)
		t->untraced = 1;
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int loop_exit_read(struct trace_event_raw_sys_exit *ctx)
{
	return loop_read_exit(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_readv")
int loop_exit_readv(struct trace_event_raw_sys_exit *ctx)
{
	return loop_read_exit(ctx->ret);
}

#endif
