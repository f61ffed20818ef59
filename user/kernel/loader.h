/* loader.h — prepares the kernel side: tracefs, memlock, BTF check, loads the
 * BPF object with its settings, attaches every probe, and reads its counters. */
#ifndef PERISCOPE_LOADER_H
#define PERISCOPE_LOADER_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "periscope_abi.h"
#include "kernel/go_attach.h"

struct loader_config {
	uint32_t self_tgid;
	uint32_t capture_size;         /* bytes of payload per syscall, <= PSCOPE_CAPTURE_MAX */
	uint32_t request_capture_size; /* per read of a server connection, <= PSCOPE_CAPTURE_MAX */
	uint32_t ringbuf_bytes;        /* power of two */
	/* Per CPU, a power of two: events go through the per-CPU rings
	 * (cpu_rings.h); 0: through the one ring buffer of ringbuf_bytes. */
	uint32_t cpu_ring_bytes;
	uint32_t max_sockets; /* socket table entries */
	uint64_t
	    wakeup_bytes; /* wake the consumer each time a CPU has sent this much; 0: every event */
	const uint32_t *pids; /* --pid filter (with their children) */
	size_t n_pids;
	const uint16_t *ports; /* --port filter (local or remote port) */
	size_t n_ports;
	bool logs;                   /* --logs: writes to stdout/stderr become PSCOPE_EV_LOG */
	uint32_t log_writes_per_sec; /* per process, in the kernel; 0: no limit */
	/* data at the data syscalls' exits even where the kernel has the socket
	 * tracepoints sock_send_length/sock_recv_length (--syscall-data) */
	bool syscall_data;
};

struct loader;

/* Returns 0 and the loader, or a negative errno with a human message in err. */
int loader__new(const struct loader_config *c, struct loader **out, char *err, size_t err_len);
void loader__free(struct loader *l); /* accepts NULL; detaches everything */

/* Detaches every probe now (slow: about 0.1 s each, so the agent does it while
 * it flushes its exports); the maps stay readable. */
void loader_detach_all(struct loader *l);

int loader_events_fd(const struct loader *l); /* the ring buffer map */
/* The per-CPU rings' map and geometry (cpu_rings__new), or -1 without them. */
int loader_cpu_rings(const struct loader *l, unsigned *ncpus, size_t *stride, size_t *ring_size);
int loader_probe_count(const struct loader *l); /* probes attached */
/* Socket data comes from the socket tracepoints (else the syscall exits). */
bool loader_socket_tracepoints(const struct loader *l);
/* Why the socket tracepoints were given up for the syscall exits (the kernel
 * refused a program on them), or NULL. */
const char *loader_fallback_reason(const struct loader *l);

/* Traffic whose peer is addr:port (16-byte IPv6 or IPv4 in the first 4 bytes,
 * family AF_INET/AF_INET6; all-zero addr = any) is the agent's own. */
int loader_add_self_endpoint(struct loader *l, int family, const uint8_t *addr, uint16_t port);

/* Stops capturing a socket that speaks no protocol we parse. tls_plaintext:
 * the unparseable bytes were TLS plaintext, so stop that too; otherwise only
 * the socket's own bytes stop (they may be a TLS handshake, and the plaintext
 * read at the TLS library can still be parsed). The kernel's entry is changed
 * only if it still describes ref's connection: the agent reads events late,
 * and by then the socket may be closed and its memory (its id) reused by a
 * new connection that must not be silenced. */
int loader_ignore_socket(struct loader *l, const struct pscope_conn_ref *ref, bool tls_plaintext);

/* Sums the per-CPU drop counters. */
/* The ring-buffer-full drop count alone (one map read). */
int loader_read_ringbuf_drops(const struct loader *l, uint64_t *out);
int loader_read_drops(const struct loader *l, uint64_t out[PSCOPE_DROP__COUNT]);

/* Sums the per-CPU log-path counters (enum pscope_log_counter). */
int loader_read_log_counters(const struct loader *l, uint64_t out[PSCOPE_LOG__COUNT]);

/* Bytes in the ring buffer not yet consumed. */
uint64_t loader_ringbuf_waiting(const struct loader *l);

const char *loader_drop_reason_name(int reason);

/* The TLS probes attached to one ELF file (a libssl, or an executable with
 * OpenSSL linked in): uprobes on SSL_read/SSL_write(_ex) and SSL_set_fd, for
 * every process that maps the file. */
struct loader_tls;

/* path may point into another mount namespace (/proc/PID/root/...).
 * Returns 0 and the attachment, -ENOENT when the file has no SSL_read/SSL_write. */
int loader_attach_tls(struct loader *l, const char *path, struct loader_tls **out);
void loader_detach_tls(struct loader_tls *t); /* accepts NULL */
/* Detaches n attachments at once (their waits for grace periods overlap:
 * one after the other, 7 Go binaries took 5 s); sets each ts[i] to NULL. */
void loader_detach_tls_all(struct loader_tls **ts, size_t n);
/* Uprobes on a Go executable as planned (go_attach.h): net/http's client
 * entries, crypto/tls (*Conn).Write/Read entries and RETs with the offsets in
 * their cookie. All or nothing: -ENOENT when nothing is planned. Detached
 * with loader_detach_tls. */
int loader_attach_go(struct loader *l, const char *path, const struct go_attach_plan *p,
                     struct loader_tls **out);
/* Node.js's event-loop phase probes on the executable of t (an OpenSSL
 * attachment of node): the entries of node::Environment::CheckImmediate,
 * node::Environment::RunTimers, LibuvStreamWrap::AfterUvWrite and
 * ::AfterUvShutdown (all four, exported by node), and TCPWrap's AfterConnect
 * when exported, added to t. 0, or -ENOENT when one of the four is missing
 * (nothing added). */
int loader_attach_node_loop(struct loader *l, const char *path, struct loader_tls *t);
/* The same probes alone (node with OpenSSL probes off), detached with loader_detach_tls. */
int loader_attach_node(struct loader *l, const char *path, struct loader_tls **out);
/* Python asyncio's probes (py_binary.h): Context.run's entry in the
 * interpreter exe (loop_boundary), and in its _asyncio module the calls of
 * enter_task and register_task (py_task_enter, py_task_create). All or none;
 * detached with loader_detach_tls. */
struct py_asyncio_sites;
struct loader_python {
	const char *exe;
	uint64_t run_off;
	const char *asyncio;
	const struct py_asyncio_sites *sites;
};
int loader_attach_python(struct loader *l, const struct loader_python *p, struct loader_tls **out);
/* pid runs its asyncio loop on uvloop (on) or is gone (off): Context.run is
 * no callback boundary in it (bpf loop_unphased). */
int loader_mark_unphased(struct loader *l, uint32_t pid, bool on);
/* pid's TLS calls may happen away from their socket's syscalls (memory BIOs):
 * let the kernel remember each thread's last socket for it. */
int loader_mark_tls_process(struct loader *l, uint32_t pid);
/* The executable (kernel dev_t, inode) has nothing to probe: its next execs
 * need not wake the agent (PSCOPE_EVF_PLAIN_EXE). */
int loader_mark_plain_exe(struct loader *l, uint32_t dev, uint64_t ino);

#endif
