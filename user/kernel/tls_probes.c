/* tls_probes.c — finds the TLS libraries processes use and keeps uprobes
 * attached once per library file (by device and inode) while it is used. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "kernel/go_attach.h"
#include "kernel/go_binary.h"
#include "kernel/loader.h"
#include "kernel/py_binary.h"
#include "kernel/x86_ret.h"
#include "util/caps.h"
#include "util/log.h"
#include "kernel/tls_probes.h"

#define MAX_LIBS       256
#define MAX_NEGATIVE   4096 /* files known to hold no OpenSSL */
#define MAX_PENDING    1024
#define LOOP_PID_SLOTS 1024          /* power of two: processes whose asyncio loop was looked at */
#define RESCAN_1_NS    100000000ull  /* 100 ms after exec */
#define RESCAN_2_NS    1000000000ull /* and 1 s after */
/* capstone (~4.6 MB resident, 30-45 ms to load on a busy host) stays loaded
 * this long after the last Go binary it planned: a burst of Go programs
 * loads it once, an agent with no new Go program does not keep it */
#define DECODER_IDLE_NS 30000000000ull
/* A CPython interpreter's asyncio probes stay this long after its last
 * process exits: scripts run one after another (a build, a cron job) find
 * them attached instead of paying the analysis and the attach each (~1 ms). */
#define LOOP_LINGER_NS 60000000000ull

struct file_id {
	uint64_t dev;
	uint64_t ino;
};

struct tls_lib {
	struct file_id id;
	char path[256]; /* as the first process mapped it, for logs */
	struct loader_tls *probes;
	bool permanent;   /* the system's libssl: never detached */
	bool go;          /* a Go executable: net/http client probes, not OpenSSL */
	bool loop_only;   /* event-loop probes only: node with --no-tls, a CPython interpreter */
	bool lingers;     /* kept LOOP_LINGER_NS after its last process (a CPython interpreter) */
	uint64_t idle_ns; /* lingers: when its last process exited (0: in use) */
	uint32_t *pids;   /* processes mapping it */
	size_t n_pids, cap_pids;
};

struct loop_pid {
	uint32_t pid;
	bool uvloop; /* its loop is uvloop's: marked in the kernel (loader_mark_unphased) */
};

struct pending_scan {
	uint32_t pid;
	uint8_t round;
	uint64_t due_ns;
};

struct tls_probes {
	struct loader *loader;
	struct logger *log;
	char proc_root[64];
	struct tls_lib *libs[MAX_LIBS];
	size_t n_libs;
	struct file_id negative[MAX_NEGATIVE];
	size_t n_negative;
	struct pending_scan pending[MAX_PENDING];
	size_t n_pending;
	struct loop_pid loop_pids[LOOP_PID_SLOTS]; /* direct-mapped by pid (pid 0: free) */
	bool said_uvloop;                          /* the one line about uvloop was logged */
	bool said_no_asyncio; /* the one line about a CPython without _asyncio was logged */
	bool openssl;         /* TLS probes: OpenSSL and Go crypto/tls (off with --no-tls);
	                         Go net/http linking probes always */
	bool node;            /* Node.js event-loop probes (off with --no-node-probes) */
	bool python;          /* Python asyncio probes (off with --no-python-probes) */
	bool no_decoder;      /* capstone (for Go RETs) could not be loaded: not tried again */
	bool said_denied;     /* the one line about uprobes refused was logged */
	struct x86_rets *xr;  /* loaded at a Go binary, unloaded DECODER_IDLE_NS after */
	uint64_t xr_used_ns;
	struct tls_probes_stats stats;
};

int elf_exports_symbol(const char *path, const char *symbol)
{
	Elf *elf = NULL;
	Elf_Scn *scn = NULL;
	int fd, rc = 0;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf) {
		rc = -EINVAL;
		goto cleanup;
	}
	while ((scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_DYNSYM || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *name;

			if (!gelf_getsym(data, (int)i, &sym) || sym.st_shndx == SHN_UNDEF ||
			    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
				continue;
			name = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (name && !strcmp(name, symbol)) {
				rc = 1;
				goto cleanup;
			}
		}
	}
cleanup:
	if (elf)
		elf_end(elf);
	close(fd);
	return rc;
}

struct tls_probes *tls_probes__new(struct loader *l, struct logger *lg, const char *proc_root,
                                   bool openssl, bool node, bool python)
{
	struct tls_probes *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->openssl = openssl;
	t->node = node;
	t->python = python;
	t->loader = l;
	t->log = lg;
	snprintf(t->proc_root, sizeof(t->proc_root), "%s", proc_root ? proc_root : "/proc");
	return t;
}

static void lib_free(struct tls_lib *lib)
{
	if (!lib)
		return;
	loader_detach_tls(lib->probes);
	free(lib->pids);
	free(lib);
}

void tls_probes__free(struct tls_probes *t)
{
	if (!t)
		return;
	struct loader_tls *probes[MAX_LIBS];

	for (size_t i = 0; i < t->n_libs; i++) {
		probes[i] = t->libs[i]->probes;
		t->libs[i]->probes = NULL;
	}
	loader_detach_tls_all(probes, t->n_libs);
	for (size_t i = 0; i < t->n_libs; i++)
		lib_free(t->libs[i]);
	x86_rets__free(t->xr);
	free(t);
}

static bool same_file(struct file_id a, struct file_id b)
{
	return a.dev == b.dev && a.ino == b.ino;
}

static struct tls_lib *lib_find(struct tls_probes *t, struct file_id id)
{
	for (size_t i = 0; i < t->n_libs; i++)
		if (same_file(t->libs[i]->id, id))
			return t->libs[i];
	return NULL;
}

static bool known_negative(const struct tls_probes *t, struct file_id id)
{
	for (size_t i = 0; i < t->n_negative; i++)
		if (same_file(t->negative[i], id))
			return true;
	return false;
}

static void add_negative(struct tls_probes *t, struct file_id id)
{
	if (t->n_negative == MAX_NEGATIVE)
		t->n_negative = 0; /* forget them all: rechecking is only slower */
	t->negative[t->n_negative++] = id;
}

static int lib_add_pid(struct tls_lib *lib, uint32_t pid)
{
	for (size_t i = 0; i < lib->n_pids; i++)
		if (lib->pids[i] == pid)
			return 0;
	if (lib->n_pids == lib->cap_pids) {
		size_t cap = lib->cap_pids ? lib->cap_pids * 2 : 8;
		uint32_t *p = realloc(lib->pids, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		lib->pids = p;
		lib->cap_pids = cap;
	}
	lib->pids[lib->n_pids++] = pid;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Attaches the probes planned for a Go executable (go_attach.h): net/http's
 * client, and crypto/tls unless OpenSSL probes are off (--no-tls turns both
 * TLS paths off). Found through the pclntab, stripped binaries too. A part
 * whose layout is not recognised is skipped with one log line (this runs
 * once per file). 0, -ENOENT when path is not a Go program with anything to
 * probe, or another negative errno. */
/* Uprobes refused (EACCES / EPERM): one line for the agent's life, naming
 * CAP_SYS_ADMIN when it is missing (this kernel wants it for uprobe perf
 * events); true when the failure was that. */
static bool uprobes_denied(struct tls_probes *t, int rc)
{
	if (rc != -EACCES && rc != -EPERM)
		return false;
	if (!t->said_denied)
		log_msg(
		    t->log, LOG_WARN,
		    caps_have(CAP_SYS_ADMIN)
		        ? "uprobes refused by the kernel: TLS and Go client tracing off"
		        : "uprobes need CAP_SYS_ADMIN on this kernel: TLS and Go client tracing "
		          "off, plaintext tracing goes on",
		    "error", LOG_STR(strerror(-rc)), NULL);
	t->said_denied = true;
	return true;
}

/* The x86 decoder (capstone), loaded on first use and kept while binaries
 * that need it keep appearing (DECODER_IDLE_NS); NULL when it cannot load. */
static struct x86_rets *decoder(struct tls_probes *t)
{
	if (!t->xr && !t->no_decoder) {
		t->xr = x86_rets__new();
		t->no_decoder = !t->xr;
		if (!t->xr)
			log_msg(t->log, LOG_WARN,
			        "libcapstone.so.4 not loaded: Go crypto/tls and Python asyncio not "
			        "probed (net/http and OpenSSL still are)",
			        NULL);
	}
	t->xr_used_ns = now_ns();
	return t->xr;
}

static int attach_go(struct tls_probes *t, const char *path, const char *shown_path,
                     struct loader_tls **out)
{
	struct go_binary *gb = NULL;
	struct go_attach_plan *p = NULL;
	double t0 = now_ms(), t1;
	char ms[32], rets[32];
	int rc;

	rc = go_binary__open(path, &gb);
	if (rc)
		goto cleanup;
	if (!go_binary_is_go(gb)) {
		rc = -ENOENT;
		goto cleanup;
	}
	p = malloc(sizeof(*p));
	if (!p) {
		rc = -ENOMEM;
		goto cleanup;
	}
	if (t->openssl)
		decoder(t);
	rc = go_attach_plan_make(gb, t->xr, t->openssl, p);
	if (rc)
		goto cleanup;
	if (p->tls_skipped[0])
		log_msg(t->log, LOG_WARN, "Go TLS not probed: layout not recognised", "path",
		        LOG_STR(shown_path), "go", LOG_STR(p->version), "reason",
		        LOG_STR(p->tls_skipped), NULL);
	rc = loader_attach_go(t->loader, path, p, out);
	if (rc == -ENOENT)
		goto cleanup; /* nothing to probe */
	if (rc) {
		if (!uprobes_denied(t, rc))
			log_msg(t->log, LOG_WARN, "cannot attach Go probes", "path",
			        LOG_STR(shown_path), "error", LOG_STR(strerror(-rc)), NULL);
		goto cleanup;
	}
	t1 = now_ms();
	snprintf(ms, sizeof(ms), "%.1f", t1 - t0);
	snprintf(rets, sizeof(rets), "%u+%u", p->tls_write.n_rets, p->tls_read.n_rets);
	log_msg(t->log, LOG_INFO,
	        p->tls ? "Go net/http and crypto/tls probes attached"
	               : "Go net/http probes attached",
	        "path", LOG_STR(shown_path), "go", LOG_STR(p->version), "tls_rets",
	        LOG_STR(p->tls ? rets : "none"), "parse_attach_ms", LOG_STR(ms), NULL);
cleanup:
	free(p);
	go_binary__free(gb);
	return rc;
}

/* path (often /proc/PID/exe or /proc/PID/root/...) still opens: a failure on
 * it says something about the file. A process that exited took the path with
 * it; the file itself is not known bad then, and the next process running it
 * must be tried again (a short-lived `node --version` before the server). */
static bool path_still_there(const char *path)
{
	return access(path, F_OK) == 0;
}

/* CPython's asyncio probes for the runtime at path (PROC/PID/exe, or a
 * libpython under root, shown as shown_path): Context.run in it, and its
 * _asyncio module, found beside it under root (PROC/PID/root: as the process
 * sees the file system). Both files are opened first and named by the agent's
 * own descriptors from then on: a short-lived process (a script) may be gone
 * before the probes are attached. 0, -ESRCH when its _asyncio module is not
 * where the process would load it from (not cached: the next process looks
 * again), -ENOENT when it is not one we can probe
 * (then logged once, as this runs once per file), or a negative errno. */
static int attach_python(struct tls_probes *t, const char *root, const char *path,
                         const char *shown_path, struct loader_tls **out)
{
	char asyncio[768], exe_fd_path[32], so_fd_path[32];
	const char *why = NULL;
	struct py_asyncio_sites sites;
	struct loader_python p = {.exe = exe_fd_path, .asyncio = so_fd_path, .sites = &sites};
	int exe_fd = -1, so_fd = -1, rc;

	exe_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (exe_fd < 0)
		return -errno; /* the process is gone: the next one tries again */
	snprintf(exe_fd_path, sizeof(exe_fd_path), "/proc/self/fd/%d", exe_fd);
	/* the module first: a glob, where the interpreter's scan reads megabytes */
	rc = py_binary_asyncio_path(root, shown_path, asyncio, sizeof(asyncio));
	if (!rc) {
		so_fd = open(asyncio, O_RDONLY | O_CLOEXEC);
		rc = so_fd < 0 ? -errno : 0;
	}
	if (rc) {
		/* not in this process's view of the file system (a container
		 * going away, a copied interpreter): the file itself is not known
		 * bad, the next process tries again; said once */
		if (!t->said_no_asyncio && path_still_there(root))
			why = "no _asyncio module beside it";
		t->said_no_asyncio |= why != NULL;
		rc = -ESRCH;
		goto cleanup;
	}
	snprintf(so_fd_path, sizeof(so_fd_path), "/proc/self/fd/%d", so_fd);
	rc = py_binary_context_run(exe_fd_path, &p.run_off);
	if (rc) {
		why = "Context.run not found";
		goto cleanup;
	}
	rc = py_binary_asyncio_sites(so_fd_path, decoder(t), &sites);
	if (rc) {
		why = !t->xr ? "no x86 decoder (libcapstone.so.4)"
		             : "no _asyncio module with the calls to probe";
		goto cleanup;
	}
	rc = loader_attach_python(t->loader, &p, out);
	if (rc && !uprobes_denied(t, rc))
		why = strerror(-rc);
cleanup:
	if (why)
		log_msg(t->log, LOG_INFO, "Python asyncio probes not attached", "path",
		        LOG_STR(shown_path), "reason", LOG_STR(why), NULL);
	else if (!rc)
		log_msg(t->log, LOG_INFO, "Python asyncio probes attached", "path",
		        LOG_STR(shown_path), "asyncio", LOG_STR(asyncio + strlen(root)), NULL);
	if (so_fd >= 0)
		close(so_fd);
	close(exe_fd);
	return rc;
}

/* A symbol every node executable exports: the event-loop probes' first. */
#define NODE_SYMBOL "_ZN4node11Environment14CheckImmediateEP10uv_check_s"

/* A new entry for file id holding probes (taken over: detached if the entry
 * cannot be made). The caller checked there is room. */
static struct tls_lib *lib_append(struct tls_probes *t, struct file_id id, const char *shown_path,
                                  struct loader_tls *probes)
{
	struct tls_lib *lib = calloc(1, sizeof(*lib));

	if (!lib) {
		loader_detach_tls(probes);
		return NULL;
	}
	lib->id = id;
	lib->probes = probes;
	snprintf(lib->path, sizeof(lib->path), "%s", shown_path);
	t->libs[t->n_libs++] = lib;
	t->stats.libraries = t->n_libs;
	return lib;
}

/* The entry of a CPython runtime (an interpreter, or a libpython: shared
 * builds, the official container images) with its asyncio probes; NULL when
 * they cannot be attached (a known negative unless its process went away). */
static struct tls_lib *python_lib(struct tls_probes *t, struct file_id id, const char *root,
                                  const char *path, const char *shown_path)
{
	struct loader_tls *probes = NULL;
	struct tls_lib *lib = lib_find(t, id);
	int rc;

	if (lib)
		return lib;
	if (known_negative(t, id) || t->n_libs == MAX_LIBS)
		return NULL;
	rc = attach_python(t, root, path, shown_path, &probes);
	if (rc) {
		if (rc != -ESRCH && (rc != -ENOENT || path_still_there(path)))
			add_negative(t, id);
		return NULL;
	}
	lib = lib_append(t, id, shown_path, probes);
	if (lib)
		lib->loop_only = lib->lingers = true;
	return lib;
}

static struct tls_lib *lib_get(struct tls_probes *t, struct file_id id, const char *path,
                               const char *shown_path, bool must_export)
{
	struct tls_lib *lib = lib_find(t, id);
	struct loader_tls *probes = NULL;
	int rc;

	if (lib)
		return lib;
	if (known_negative(t, id) || t->n_libs == MAX_LIBS)
		return NULL;
	if (!t->openssl && !must_export)
		return NULL; /* a libssl, with OpenSSL probes off */
	if (must_export && t->python && elf_exports_symbol(path, "PyContext_CopyCurrent") == 1) {
		/* a CPython interpreter: its asyncio loops (trace_links) */
		char root[512];
		size_t n = strlen(path); /* PROC/PID/exe → PROC/PID/root */

		if (n < 4 || n + 2 > sizeof(root) || strcmp(path + n - 4, "/exe"))
			return NULL;
		snprintf(root, sizeof(root), "%.*s/root", (int)(n - 4), path);
		return python_lib(t, id, root, path, shown_path);
	}
	if (must_export && !t->openssl && t->node && elf_exports_symbol(path, NODE_SYMBOL) == 1) {
		/* node with --no-tls: its event-loop probes still (trace_links) */
		if (loader_attach_node(t->loader, path, &probes) != 0) {
			if (path_still_there(path))
				add_negative(t, id);
			return NULL;
		}
		lib = lib_append(t, id, shown_path, probes);
		if (lib) {
			lib->loop_only = true;
			log_msg(t->log, LOG_INFO, "Node.js event-loop probes attached", "path",
			        LOG_STR(shown_path), NULL);
		}
		return lib;
	}
	if (must_export && (!t->openssl || elf_exports_symbol(path, "SSL_write") != 1)) {
		/* an executable without OpenSSL: maybe a Go program */
		rc = attach_go(t, path, shown_path, &probes);
		if (rc) {
			if (rc != -ENOENT)
				t->stats.attach_failures++;
			if (path_still_there(path))
				add_negative(t, id);
			return NULL;
		}
		lib = lib_append(t, id, shown_path, probes);
		if (lib)
			lib->go = true;
		return lib;
	}
	rc = loader_attach_tls(t->loader, path, &probes);
	if (rc) {
		t->stats.attach_failures++;
		if (path_still_there(path))
			add_negative(t, id);
		if (!uprobes_denied(t, rc))
			log_msg(t->log, LOG_WARN, "cannot attach TLS probes", "path",
			        LOG_STR(shown_path), "error", LOG_STR(strerror(-rc)), NULL);
		return NULL;
	}
	lib = lib_append(t, id, shown_path, probes);
	if (!lib)
		return NULL;
	log_msg(t->log, LOG_INFO, "TLS probes attached", "path", LOG_STR(shown_path), NULL);
	/* node: its event loop's phases too (which callbacks a read started) */
	if (must_export && t->node && loader_attach_node_loop(t->loader, path, lib->probes) == 0)
		log_msg(t->log, LOG_INFO, "Node.js event-loop probes attached", "path",
		        LOG_STR(shown_path), NULL);
	return lib;
}

static void use_lib(struct tls_probes *t, struct tls_lib *lib, uint32_t pid)
{
	if (!lib)
		return;
	lib_add_pid(lib, pid);
	lib->idle_ns = 0;
	/* its TLS calls may not make the socket syscalls themselves (memory BIOs) */
	if (!lib->go && !lib->loop_only)
		loader_mark_tls_process(t->loader, pid);
}

static bool is_libssl_name(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libssl.so", 9);
}

/* libpython3.X.so[.1.0]: a shared CPython build's runtime. */
static bool is_libpython_name(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "libpython3.", 11) && strstr(base, ".so");
}

/* The executable of pid: TLS library or Go program? When exe is given (the
 * exec event's) and the file is the same, a plain one goes into plain_exes. */
static void scan_exe(struct tls_probes *t, uint32_t pid, const struct tls_exe *exe)
{
	struct stat st;
	struct file_id id;
	struct tls_lib *lib;
	char path[512], shown[256];
	ssize_t n;

	/* the executable itself may carry OpenSSL (node) */
	snprintf(path, sizeof(path), "%s/%u/exe", t->proc_root, pid);
	if (stat(path, &st) != 0)
		return;
	id = (struct file_id){st.st_dev, st.st_ino};
	lib = lib_find(t, id);
	if (!lib && !known_negative(t, id)) {
		n = readlink(path, shown, sizeof(shown) - 1);
		shown[n > 0 ? n : 0] = '\0';
		lib = lib_get(t, id, path, shown[0] ? shown : path, true);
	}
	use_lib(t, lib, pid);
	/* the same file as the kernel saw at exec (not a later exec's) */
	if (!lib && exe && exe->ino == st.st_ino &&
	    exe->dev == ((major(st.st_dev) << 20) | minor(st.st_dev)) && known_negative(t, id))
		loader_mark_plain_exe(t->loader, exe->dev, exe->ino);
}

static void scan_pid(struct tls_probes *t, uint32_t pid, const struct tls_exe *exe)
{
	char path[512], line[1024];
	struct stat st;
	FILE *maps;

	t->stats.scans++;
	scan_exe(t, pid, exe);
	snprintf(path, sizeof(path), "%s/%u/maps", t->proc_root, pid);
	maps = fopen(path, "re");
	if (!maps)
		return;
	while (fgets(line, sizeof(line), maps)) {
		unsigned int major, minor;
		unsigned long long ino;
		int off = 0;
		char *file;

		if (sscanf(line, "%*s %*s %*s %x:%x %llu %n", &major, &minor, &ino, &off) < 3 ||
		    !off || !ino)
			continue;
		file = line + off;
		file[strcspn(file, "\n")] = '\0';
		bool python = t->python && is_libpython_name(file);

		if (file[0] != '/' || (!python && !is_libssl_name(file)))
			continue;
		/* the file as that process sees it, whatever its mount namespace */
		snprintf(path, sizeof(path), "%s/%u/root%s", t->proc_root, pid, file);
		if (stat(path, &st) != 0)
			continue;
		struct file_id id = {st.st_dev, st.st_ino};

		if (python) {
			char root[512];

			snprintf(root, sizeof(root), "%s/%u/root", t->proc_root, pid);
			use_lib(t, python_lib(t, id, root, path, file), pid);
		} else {
			use_lib(t, lib_get(t, id, path, file, false), pid);
		}
	}
	fclose(maps);
}

void tls_probes_scan_pid(struct tls_probes *t, uint32_t pid)
{
	scan_pid(t, pid, NULL);
}

static void attach_system_libs(struct tls_probes *t)
{
	static const char *const patterns[] = {
	    "/lib/*/libssl.so.3",       "/usr/lib/*/libssl.so.3", "/lib64/libssl.so.3",
	    "/usr/lib64/libssl.so.3",   "/lib/*/libssl.so.1.1",   "/usr/lib/*/libssl.so.1.1",
	    "/usr/lib64/libssl.so.1.1",
	};

	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		glob_t g;

		if (glob(patterns[i], 0, NULL, &g) != 0)
			continue;
		for (size_t j = 0; j < g.gl_pathc; j++) {
			struct stat st;
			struct tls_lib *lib;

			if (stat(g.gl_pathv[j], &st) != 0)
				continue;
			struct file_id id = {st.st_dev, st.st_ino};
			lib = lib_get(t, id, g.gl_pathv[j], g.gl_pathv[j], false);
			if (lib)
				lib->permanent = true;
		}
		globfree(&g);
	}
}

void tls_probes_scan_all(struct tls_probes *t)
{
	DIR *d;
	struct dirent *de;

	if (t->openssl)
		attach_system_libs(t);
	d = opendir(t->proc_root);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char *end;
		unsigned long pid = strtoul(de->d_name, &end, 10);

		if (*end || !pid || pid == (unsigned long)getpid())
			continue;
		tls_probes_scan_pid(t, (uint32_t)pid);
	}
	closedir(d);
}

void tls_probes_on_exec(struct tls_probes *t, uint32_t pid, uint64_t now_ns,
                        const struct tls_exe *exe)
{
	tls_probes_on_exit(t, pid); /* the old program's libraries are gone */
	/* a plain executable was looked at before; its libraries are mapped
	 * after exec returns, so only the rescans can find a libssl */
	if (exe && exe->plain)
		t->stats.plain_execs++;
	else
		scan_pid(t, pid, exe);
	if (t->n_pending < MAX_PENDING)
		t->pending[t->n_pending++] =
		    (struct pending_scan){.pid = pid, .round = 1, .due_ns = now_ns + RESCAN_1_NS};
}

/* Detaches libs[i] (the last entry takes its place). */
static void lib_drop(struct tls_probes *t, size_t i)
{
	struct tls_lib *lib = t->libs[i];

	log_msg(t->log, LOG_INFO,
	        lib->go          ? "Go probes detached"
	        : lib->loop_only ? "event-loop probes detached"
	                         : "TLS probes detached",
	        "path", LOG_STR(lib->path), NULL);
	lib_free(lib);
	t->libs[i] = t->libs[--t->n_libs];
	t->stats.libraries = t->n_libs;
}

void tls_probes_tick(struct tls_probes *t, uint64_t now_ns)
{
	size_t i = 0;

	if (t->xr && now_ns - t->xr_used_ns > DECODER_IDLE_NS) {
		x86_rets__free(t->xr);
		t->xr = NULL;
	}
	for (size_t j = 0; j < t->n_libs;) {
		const struct tls_lib *lib = t->libs[j];

		if (lib->lingers && !lib->n_pids && lib->idle_ns &&
		    now_ns - lib->idle_ns > LOOP_LINGER_NS)
			lib_drop(t, j);
		else
			j++;
	}

	while (i < t->n_pending) {
		struct pending_scan *p = &t->pending[i];

		if (p->due_ns > now_ns) {
			i++;
			continue;
		}
		tls_probes_scan_pid(t, p->pid);
		if (p->round == 1) {
			p->round = 2;
			p->due_ns = now_ns + RESCAN_2_NS;
			i++;
			continue;
		}
		t->pending[i] = t->pending[--t->n_pending];
	}
}

static struct loop_pid *loop_pid_slot(struct tls_probes *t, uint32_t pid)
{
	return &t->loop_pids[(pid * 2654435761u) & (LOOP_PID_SLOTS - 1)];
}

/* Forgets what a slot says of its process (gone, or its slot taken by another:
 * then its next task looks again), the kernel's mark too. */
static void loop_pid_clear(struct tls_probes *t, struct loop_pid *lp)
{
	if (lp->pid && lp->uvloop)
		loader_mark_unphased(t->loader, lp->pid, false);
	*lp = (struct loop_pid){0};
}

static void loop_pid_gone(struct tls_probes *t, uint32_t pid)
{
	struct loop_pid *lp = loop_pid_slot(t, pid);

	if (lp->pid == pid)
		loop_pid_clear(t, lp);
}

void tls_probes_on_exit(struct tls_probes *t, uint32_t pid)
{
	size_t i = 0;

	loop_pid_gone(t, pid);
	/* no rescan of a process gone (most execs: a failed stat and open each) */
	while (i < t->n_pending) {
		if (t->pending[i].pid == pid)
			t->pending[i] = t->pending[--t->n_pending];
		else
			i++;
	}
	i = 0;

	while (i < t->n_libs) {
		struct tls_lib *lib = t->libs[i];

		for (size_t j = 0; j < lib->n_pids; j++) {
			if (lib->pids[j] == pid) {
				lib->pids[j] = lib->pids[--lib->n_pids];
				break;
			}
		}
		if (!lib->n_pids && lib->lingers && !lib->idle_ns) {
			lib->idle_ns = now_ns(); /* detached by tls_probes_tick if nobody comes */
		} else if (!lib->n_pids && !lib->permanent && !lib->lingers) {
			lib_drop(t, i);
			continue;
		}
		i++;
	}
}

/* Does pid map uvloop's loop module (uvloop/loop.cpython-*.so)? */
static bool maps_uvloop(const struct tls_probes *t, uint32_t pid)
{
	char path[96], line[1024];
	bool found = false;
	FILE *maps;

	snprintf(path, sizeof(path), "%s/%u/maps", t->proc_root, pid);
	maps = fopen(path, "re");
	if (!maps)
		return false;
	while (!found && fgets(line, sizeof(line), maps))
		found = strstr(line, "/uvloop/loop.cpython-") != NULL;
	fclose(maps);
	return found;
}

void tls_probes_loop_seen(struct tls_probes *t, uint32_t pid)
{
	struct loop_pid *lp = loop_pid_slot(t, pid);

	if (lp->pid == pid)
		return; /* every TASK event after a process's first: one compare */
	loop_pid_clear(t, lp);
	*lp = (struct loop_pid){.pid = pid, .uvloop = maps_uvloop(t, pid)};
	if (!lp->uvloop || loader_mark_unphased(t->loader, pid, true) != 0)
		return;
	if (!t->said_uvloop)
		log_msg(t->log, LOG_INFO,
		        "uvloop: its asyncio loops are linked by event-loop turns (no task probes)",
		        "pid", LOG_INT(pid), NULL);
	t->said_uvloop = true;
}

void tls_probes_get_stats(const struct tls_probes *t, struct tls_probes_stats *out)
{
	*out = t->stats;
}
