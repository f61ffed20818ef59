// SPDX-License-Identifier: GPL-2.0
/* tls.bpf.h — TLS library probes: uprobes on OpenSSL's SSL_read/SSL_write(_ex)
 * (attached by userspace per library file) and on Go's crypto/tls (*Conn).Write/Read
 * (per executable) send the plaintext as data events of the socket the call used, and
 * mark that socket so its ciphertext is skipped. */
#ifndef PERISCOPE_TLS_BPF_H
#define PERISCOPE_TLS_BPF_H

/* ---- TLS libraries (uprobes, attached by userspace per library file) ---- */

/* Sends n bytes of TLS plaintext at a->buf, moved by a TLS call on socket sk
 * (fd), as a data event flagged PSCOPE_EVF_TLS; from then on the socket's own
 * bytes (ciphertext) are skipped. Shared by OpenSSL and Go crypto/tls. */
static __always_inline int emit_plaintext(__u64 pid_tgid, int fd, struct sock *sk,
                                          const struct active_ssl *a, __u64 n, __u8 source,
                                          __u32 goroutine)
{
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
	__u32 cap = capture_cap(a->direction, si->role);
	__u32 captured = copy_user(payload, 0, a->buf, n, cap);

	__u8 was_lost = si->lost;
	e->hdr.type = PSCOPE_EV_DATA;
	e->hdr.flags = PSCOPE_EVF_TLS | (was_lost ? PSCOPE_EVF_LOST : 0);
	e->hdr.timestamp_ns = bpf_ktime_get_ns();
	fill_conn_ref(&e->conn, pid_tgid, fd, (__u64)sk, si,
	              a->direction == PSCOPE_DIR_INGRESS ? LOOP_SEEN_READ : 0);
	e->enter_ns = a->enter_ns;
	e->bytes = n;
	e->direction = a->direction;
	e->source = source;
	e->pad0 = 0;
	e->goroutine = goroutine;
	finish_data(NULL, e, n, captured, cap, (__u64)sk, was_lost, captured); /* from scratch */
	return 0;
}

/* Marks tgid as a process of this kind of TLS library (TLS_PROC_*). */
static __always_inline void mark_tls_proc(__u32 tgid, __u8 kind)
{
	__u8 *p = bpf_map_lookup_elem(&ssl_procs, &tgid);

	if (!p) {
		bpf_map_update_elem(&ssl_procs, &tgid, &kind, BPF_NOEXIST);
		proc_flags_changed();
	} else if (!(*p & kind)) {
		*p |= kind; /* racing writers only add bits */
		proc_flags_changed();
	}
}

static __always_inline int ssl_enter(struct pt_regs *ctx, __u8 direction, __u8 is_ex)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct active_ssl a = {};

	if (!pid_traced(tgid))
		return 0;
	a.ssl = PT_REGS_PARM1(ctx);
	a.buf = PT_REGS_PARM2(ctx);
	a.out_len = is_ex ? PT_REGS_PARM4(ctx) : 0;
	a.enter_ns = bpf_ktime_get_ns();
	a.fd = -1;
	a.direction = direction;
	a.is_ex = is_ex;
	if (bpf_map_update_elem(&active_ssl, &pid_tgid, &a, BPF_ANY)) {
		count_drop(PSCOPE_DROP_ACTIVE_FULL);
	} else {
		/* the data syscalls look active_ssl up only while this is set */
		struct loop_state *t = thread_state(1);
		if (t)
			t->in_ssl = 1;
	}
	mark_tls_proc(tgid, TLS_PROC_OPENSSL);
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
		if (p) {
			fd = *p;
		} else {
			struct loop_state *t = thread_state(0);
			if (!t || !t->last_fd_1)
				return -1;
			fd = t->last_fd_1 - 1;
		}
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
	{
		struct loop_state *t = thread_state(0);
		if (t)
			t->in_ssl = 0;
	}
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
	return emit_plaintext(
	    pid_tgid, fd, sk, &a, n,
	    a.direction == PSCOPE_DIR_INGRESS ? PSCOPE_SRC_SSL_READ : PSCOPE_SRC_SSL_WRITE, 0);
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

/* ---- Go crypto/tls (uprobes at the entry and at every RET of
 * (*tls.Conn).Write and .Read, attached per executable; never uretprobes,
 * which break Go's movable stacks). Go's register ABI: at entry RAX = the
 * *tls.Conn, RBX/RCX = b's pointer and length; at a RET RAX = n; R14 = the
 * goroutine at both, which ties a RET to its entry. The attach cookie
 * carries the offsets from the *tls.Conn to its fd for the binary's Go
 * version (PSCOPE_GO_TLS_COOKIE) and the direction. ---- */
#ifdef __TARGET_ARCH_x86

/* The fd the *tls.Conn c wraps, through tls.Conn.conn (a net.Conn whose data
 * word is a *net.TCPConn for a plain socket) → *netFD → pfd.Sysfd; -1 when
 * a read fails or the value is no plausible fd (a wrapped net.Conn: the
 * caller then checks it against the socket the agent knows). */
static __always_inline int go_conn_fd(__u64 c, __u64 cookie)
{
	__u64 data = 0, netfd = 0;
	__s64 sysfd = -1;

	if (bpf_probe_read_user(&data, sizeof(data),
	                        (const void *)(c + PSCOPE_GO_TLS_COOKIE_FIELD(cookie, 0) +
	                                       PSCOPE_GO_TLS_COOKIE_FIELD(cookie, 1))) ||
	    !data)
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd),
	                        (const void *)(data + PSCOPE_GO_TLS_COOKIE_FIELD(cookie, 2))) ||
	    !netfd)
		return -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd),
	                        (const void *)(netfd + PSCOPE_GO_TLS_COOKIE_FIELD(cookie, 3) +
	                                       PSCOPE_GO_TLS_COOKIE_FIELD(cookie, 4))))
		return -1;
	return sysfd >= 0 && sysfd < (1 << 30) ? (int)sysfd : -1;
}

static __always_inline int go_tls_on_entry(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 cookie = bpf_get_attach_cookie(ctx);
	struct go_g_key k = {.tgid = pid_tgid >> 32, .g = (__u32)ctx->r14};
	struct active_ssl a = {}, *prev;
	struct sock *sk = NULL;
	int fd;

	if (!pid_traced(k.tgid))
		return 0;
	a.ssl = ctx->ax;
	a.buf = ctx->bx;
	a.out_len = ctx->cx; /* len(b): bounds the RET's n */
	a.enter_ns = bpf_ktime_get_ns();
	a.fd = -1;
	a.direction = PSCOPE_GO_TLS_COOKIE_FIELD(cookie, 5);
	mark_tls_proc(k.tgid, TLS_PROC_GO);
	prev = bpf_map_lookup_elem(&go_tls_active, &k);
	/* a call that grows its stack runs its entry twice: same call, once */
	if (prev && prev->is_ex && prev->ssl == a.ssl && prev->buf == a.buf &&
	    prev->out_len == a.out_len)
		return 0;
	if (a.direction == PSCOPE_DIR_EGRESS && a.out_len > 0) {
		/* A write is sent from its entry when its socket is known (the
		 * tls.Conn's fd chain, else the socket of its earlier calls): b is
		 * all the plaintext Write sends (unless it fails), and at the RET
		 * the peer may already have answered (the answer's event would
		 * come before the request's). */
		struct ssl_key sk_key = {.ssl = a.ssl, .tgid = k.tgid};
		__s32 *last;

		fd = go_conn_fd(a.ssl, cookie);
		if (fd >= 0)
			sk = sock_from_fd(fd);
		if (!sk && (last = bpf_map_lookup_elem(&ssl_fd, &sk_key))) {
			/* not a plain *net.TCPConn (a wrapper): the socket this
			 * tls.Conn's earlier calls used */
			fd = *last;
			sk = sock_from_fd(fd);
		}
		if (sk) {
			bpf_map_update_elem(&ssl_fd, &sk_key, &fd, BPF_ANY);
			a.is_ex = 1; /* sent: the RET has nothing to do */
			if (bpf_map_update_elem(&go_tls_active, &k, &a, BPF_ANY))
				count_drop(PSCOPE_DROP_ACTIVE_FULL);
			return emit_plaintext(
			    pid_tgid, fd, sk, &a, a.out_len, PSCOPE_SRC_GO_TLS_WRITE,
			    go_effective_goroutine(k.tgid, k.g, go_http_flag(k.tgid)));
		}
	}
	if (bpf_map_update_elem(&go_tls_active, &k, &a, BPF_ANY))
		count_drop(PSCOPE_DROP_ACTIVE_FULL);
	return 0;
}

/* The socket of a Go TLS call: the fd of its tls.Conn chain when that is a
 * socket the syscalls agree with; the socket a syscall inside the call used
 * when they disagree (the net.Conn is not a plain *net.TCPConn) or the chain
 * gives none; else the fd this tls.Conn was last seen on. */
static __always_inline int go_tls_resolve_fd(const struct active_ssl *a, __u32 tgid, __u64 cookie,
                                             struct sock **sk)
{
	struct ssl_key k = {.ssl = a->ssl, .tgid = tgid};
	int fd = go_conn_fd(a->ssl, cookie);
	__s32 *last;

	*sk = NULL;
	if (a->fd >= 0 && a->fd != fd)
		fd = a->fd;
	if (fd >= 0)
		*sk = sock_from_fd(fd);
	if (!*sk) {
		last = bpf_map_lookup_elem(&ssl_fd, &k);
		if (!last)
			return -1;
		fd = *last;
		*sk = sock_from_fd(fd);
		if (!*sk)
			return -1;
		return fd;
	}
	bpf_map_update_elem(&ssl_fd, &k, &fd, BPF_ANY);
	return fd;
}

static __always_inline int go_tls_on_ret(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_g_key k = {.tgid = pid_tgid >> 32, .g = (__u32)ctx->r14};
	struct active_ssl *ap = bpf_map_lookup_elem(&go_tls_active, &k);
	__s64 n = (__s64)ctx->ax;
	struct active_ssl a;
	struct sock *sk;
	int fd;

	if (!ap)
		return 0;
	a = *ap;
	bpf_map_delete_elem(&go_tls_active, &k);
	if (a.is_ex)
		return 0; /* a write sent from its entry */
	/* nothing moved (an error alone), or not this call's result */
	if (n <= 0 || (__u64)n > a.out_len)
		return 0;
	fd = go_tls_resolve_fd(&a, k.tgid, bpf_get_attach_cookie(ctx), &sk);
	if (fd < 0 || !sk) {
		count_drop(PSCOPE_DROP_SSL_NO_FD);
		return 0;
	}
	return emit_plaintext(pid_tgid, fd, sk, &a, n,
	                      a.direction == PSCOPE_DIR_INGRESS ? PSCOPE_SRC_GO_TLS_READ
	                                                        : PSCOPE_SRC_GO_TLS_WRITE,
	                      a.direction == PSCOPE_DIR_EGRESS
	                          ? go_effective_goroutine(k.tgid, k.g, go_http_flag(k.tgid))
	                          : k.g);
}

/* Attached as uprobe_multi links (Linux >= 6.6: one link, and one wait for a
 * grace period at detach, for all of a binary's RETs) ... */
SEC("uprobe")
int go_tls_enter_multi(struct pt_regs *ctx)
{
	return go_tls_on_entry(ctx);
}

SEC("uprobe")
int go_tls_ret_multi(struct pt_regs *ctx)
{
	return go_tls_on_ret(ctx);
}

/* ... or one perf-event uprobe per address on older kernels. */
SEC("uprobe")
int go_tls_enter(struct pt_regs *ctx)
{
	return go_tls_on_entry(ctx);
}

SEC("uprobe")
int go_tls_ret(struct pt_regs *ctx)
{
	return go_tls_on_ret(ctx);
}

#endif

#endif
