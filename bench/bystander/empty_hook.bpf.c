// SPDX-License-Identifier: GPL-2.0
/* empty_hook.bpf.c — the floor of the bystander bench: one BPF program that does nothing, on one
 * syscall tracepoint. Attaching any syscall tracepoint puts every syscall of every task on the
 * tracing slow path; this measures that cost alone. Built by `make bench` only. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_exit_write")
int empty_exit_write(void *ctx)
{
	return 0;
}
