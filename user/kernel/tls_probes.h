/* tls_probes.h — finds the files that processes run whose functions periscope
 * probes — TLS libraries (libssl.so.*, or an executable with OpenSSL linked in,
 * like node) and Go executables (net/http's client and crypto/tls, found by the
 * pclntab) — and
 * keeps the loader's uprobes attached once per file while some process uses it. The system's own
 * libssl stays attached for the agent's lifetime, so a short-lived process that
 * starts after the agent (curl) is traced from its first call. */
#ifndef PERISCOPE_TLS_PROBES_H
#define PERISCOPE_TLS_PROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loader;
struct logger;
struct tls_probes;

struct tls_probes_stats {
	size_t libraries; /* files with probes attached now */
	uint64_t attach_failures;
	uint64_t scans;
	uint64_t plain_execs; /* execs of a known plain executable (not looked at again) */
};

/* proc_root is "/proc" except in tests. */
/* openssl: attach the TLS plaintext probes, OpenSSL's and Go crypto/tls's (false
 * with --no-tls; Go net/http linking probes always); node: Node.js's
 * event-loop probes on node executables (false with --no-node-probes); python:
 * asyncio's probes on CPython interpreters (false with --no-python-probes). */
struct tls_probes *tls_probes__new(struct loader *l, struct logger *lg, const char *proc_root,
                                   bool openssl, bool node, bool python);
void tls_probes__free(struct tls_probes *t); /* detaches everything; accepts NULL */

/* Attaches the system libssl files and every library mapped by a running process. */
void tls_probes_scan_all(struct tls_probes *t);
/* The kernel's name of an executable file (pscope_file_key: inode, kernel
 * dev_t) and whether the kernel found it in plain_exes. */
struct tls_exe {
	uint64_t ino;
	uint32_t dev;
	bool plain;
};

/* A process started a new program: a new executable is looked at now (Go,
 * OpenSSL linked in), the process again 100 ms and 1 s later (its shared
 * libraries are mapped after exec returns). One found plain goes into the
 * kernel's plain_exes: its next execs wake no one and are not looked at
 * again, only rescanned (a process gone by then costs a failed open). */
void tls_probes_on_exec(struct tls_probes *t, uint32_t pid, uint64_t now_ns,
                        const struct tls_exe *exe);
/* Looks at one process now (e.g. its first connection). */
void tls_probes_scan_pid(struct tls_probes *t, uint32_t pid);
void tls_probes_on_exit(struct tls_probes *t, uint32_t pid);
/* Runs the rescans that are due. */
void tls_probes_tick(struct tls_probes *t, uint64_t now_ns);
void tls_probes_get_stats(const struct tls_probes *t, struct tls_probes_stats *out);

/* Does the ELF file at path define symbol in its dynamic symbol table?
 * Returns 1, 0, or a negative errno. */
int elf_exports_symbol(const char *path, const char *symbol);

/* pid's asyncio loop made or stepped a task (a TASK event): on its first
 * one, a process whose loop is uvloop's is marked so that Context.run is no
 * callback boundary in it (uvloop enters contexts through the C API). */
void tls_probes_loop_seen(struct tls_probes *t, uint32_t pid);

#endif
