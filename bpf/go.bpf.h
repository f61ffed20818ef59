// SPDX-License-Identifier: GPL-2.0
/* go.bpf.h — uprobes on Go programs' net/http client (attached by userspace per
 * executable, found through the pclntab, no symbols needed): a request is
 * written by the connection's writeLoop goroutine, not by the goroutine that
 * made the call. (*persistConn).roundTrip runs on the caller's goroutine and
 * persistConnWriter.Write on the writer's, both with the persistConn in RAX
 * (Go's register ABI), so the writer's socket writes are reported under the
 * caller's goroutine: userspace then links the call exactly as it links a
 * database call made on the handler's own goroutine. x86-64 only. */
#ifndef PERISCOPE_GO_BPF_H
#define PERISCOPE_GO_BPF_H

#ifdef __TARGET_ARCH_x86

/* go_round_trip: this persistConn's current request came from this goroutine */
static __always_inline int go_note_caller(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_pc_key k = {.pc = ctx->ax, .tgid = pid_tgid >> 32};
	__u32 g = (__u32)ctx->r14;
	__u8 one = 1;

	if (!pid_traced(k.tgid))
		return 0;
	bpf_map_update_elem(&go_pc_caller, &k, &g, BPF_ANY);
	if (!bpf_map_lookup_elem(&go_procs, &k.tgid)) {
		bpf_map_update_elem(&go_procs, &k.tgid, &one, BPF_ANY);
		proc_flags_changed();
	}
	return 0;
}

/* go_conn_write: the writer goroutine writes for the persistConn's caller */
static __always_inline int go_note_writer(struct pt_regs *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct go_pc_key k = {.pc = ctx->ax, .tgid = pid_tgid >> 32};
	struct go_g_key gk = {.tgid = k.tgid, .g = (__u32)ctx->r14};
	__u32 *caller = bpf_map_lookup_elem(&go_pc_caller, &k);

	if (!caller)
		return 0;
	bpf_map_update_elem(&go_g_override, &gk, caller, BPF_ANY);
	return 0;
}

SEC("uprobe")
int go_round_trip(struct pt_regs *ctx)
{
	return go_note_caller(ctx);
}

SEC("uprobe")
int go_conn_write(struct pt_regs *ctx)
{
	return go_note_writer(ctx);
}

/* The goroutine a write of this Go process is made for: its caller's when
 * the writer goroutine is a net/http connection writer, else its own. */
static __always_inline __u32 go_effective_goroutine(__u32 tgid, __u32 g, __u8 proc_flags)
{
	struct go_g_key gk = {.tgid = tgid, .g = g};
	__u32 *caller;

	if (!g || !(proc_flags & PROC_GO_HTTP))
		return g;
	caller = bpf_map_lookup_elem(&go_g_override, &gk);
	return caller ? *caller : g;
}

#else

static __always_inline __u32 go_effective_goroutine(__u32 tgid, __u32 g, __u8 proc_flags)
{
	return g;
}

#endif

#endif
