/* tls_probes.h — finds the files that processes run whose functions periscope
 * probes — TLS libraries (libssl.so.*, or an executable with OpenSSL linked in,
 * like node) and Go executables (net/http's client and crypto/tls, found by the
 * pclntab) — and
 * keeps the loader's uprobes attached once per file while some process uses it. The system's own
 * libssl stays attached for the agent's lifetime, so a short-lived process that
 * starts after the agent (curl) is traced from its first call. */
#ifndef PERISCOPE_TLS_PROBES_H
#define PERISCOPE_TLS_PROBES_H

#include <stddef.h>
#include <stdint.h>

struct loader;
struct logger;
struct tls_probes;

struct tls_probes_stats {
	size_t libraries; /* files with probes attached now */
	uint64_t attach_failures;
	uint64_t scans;
};

/* proc_root is "/proc" except in tests. */
/* openssl: attach the TLS plaintext probes, OpenSSL's and Go crypto/tls's (false
 * with --no-tls; Go net/http linking probes always). */
struct tls_probes *tls_probes__new(struct loader *l, struct logger *lg, const char *proc_root,
                                   bool openssl);
void tls_probes__free(struct tls_probes *t); /* detaches everything; accepts NULL */

/* Attaches the system libssl files and every library mapped by a running process. */
void tls_probes_scan_all(struct tls_probes *t);
/* A process started a new program: look now and again shortly (its shared
 * libraries are mapped after exec returns). */
void tls_probes_on_exec(struct tls_probes *t, uint32_t pid, uint64_t now_ns);
/* Looks at one process now (e.g. its first connection). */
void tls_probes_scan_pid(struct tls_probes *t, uint32_t pid);
void tls_probes_on_exit(struct tls_probes *t, uint32_t pid);
/* Runs the rescans that are due. */
void tls_probes_tick(struct tls_probes *t, uint64_t now_ns);
void tls_probes_get_stats(const struct tls_probes *t, struct tls_probes_stats *out);

/* Does the ELF file at path define symbol in its dynamic symbol table?
 * Returns 1, 0, or a negative errno. */
int elf_exports_symbol(const char *path, const char *symbol);

#endif
