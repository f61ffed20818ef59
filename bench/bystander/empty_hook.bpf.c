// SPDX-License-Identifier: GPL-2.0
/* empty_hook.bpf.c — floors for the benches: BPF programs that do nothing.
 *  - empty_exit_write alone (bystanders, section 6): attaching any syscall tracepoint puts every
 *    syscall of every task on the tracing slow path; this measures that cost alone.
 *  - the agent set (wrk → nginx, section 1): one empty program on each hook the agent's programs
 *    run on for every traced HTTP request (the socket tracepoints, the epoll_wait and read exits),
 *    so what the hooks themselves cost is told apart from what the agent does in them.
 * Built by `make bench` only; empty_hook.c picks the set. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tracepoint/syscalls/sys_exit_write")
int empty_exit_write(void *ctx)
{
	return 0;
}

SEC("tp_btf/sock_send_length")
int empty_sock_send(void *ctx)
{
	return 0;
}

SEC("tp_btf/sock_recv_length")
int empty_sock_recv(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_epoll_wait")
int empty_exit_epoll_wait(void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int empty_exit_read(void *ctx)
{
	return 0;
}
