// SPDX-License-Identifier: GPL-2.0
/* tls.bpf.h — TLS library probes: uprobes on OpenSSL's SSL_read/SSL_write(_ex)
 * (attached by userspace per library file) send the plaintext as data events of the socket
 * the call used, and mark that socket so its ciphertext is skipped. */
#ifndef PERISCOPE_TLS_BPF_H
#define PERISCOPE_TLS_BPF_H

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
	__u32 cap = a.direction == PSCOPE_DIR_INGRESS && si->role == PSCOPE_ROLE_SERVER
	                ? request_capture_size
	                : capture_size;
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

#endif
