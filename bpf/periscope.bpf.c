// SPDX-License-Identifier: GPL-2.0
/* periscope.bpf.c — the kernel half of periscope: what crosses TCP sockets, seen without kprobes.
 *
 * Socket data comes from the socket tracepoints sock_send_length/sock_recv_length where the kernel
 * has them (Linux >= 6.3: they hand over the struct sock, and other files' reads and writes run
 * none of our programs), else from the data syscalls' exit tracepoints, which resolve the fd to a
 * TCP socket by a CO-RE walk of the current task's fd table. Either way the syscall's arguments
 * come from the user registers saved at entry, and the bytes moved are copied (bounded) into
 * ring-buffer events. OpenSSL's
 * and Go crypto/tls's plaintext comes from uprobes. accept/connect/close and process exec/exit
 * produce lifecycle events. All protocol logic lives in userspace. One object, one skeleton; the
 * parts:
 *   maps.bpf.h       settings, shared maps, drop counting, ring-buffer wakeups
 *   sock.bpf.h       socket identification, per-socket state, pid/port/self filters
 *   go.bpf.h         Go net/http client uprobes: writes named after the caller
 *   capture.bpf.h    socket tracepoints or data syscalls → io_exit (tail call) → data events
 *   tls.bpf.h        SSL_read/SSL_write(_ex)/SSL_set_fd uprobes, Go crypto/tls (*Conn).Write/Read
 *                    uprobes (entry + every RET) → plaintext data events
 *   lifecycle.bpf.h  accept/connect/close, sched_process_exec/exit
 * Every event and map layout shared with userspace is in include/periscope_abi.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "periscope_abi.h"

char LICENSE[] SEC("license") = "GPL";

/* clang-format off: the order matters, each part uses the ones before it */
#include "maps.bpf.h"
#include "sock.bpf.h"
#include "go.bpf.h"
#include "capture.bpf.h"
#include "tls.bpf.h"
#include "lifecycle.bpf.h"
/* clang-format on */
