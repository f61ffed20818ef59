/* loader.c — prepares the kernel side: tracefs, memlock, BTF check, loads the
 * BPF object with its settings, attaches every probe, and reads its counters. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <fcntl.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/capability.h>

#include "kernel/loader.h"
#include "kernel/py_binary.h"
#include "periscope.skel.h"
#include "util/caps.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

#define TRACEFS_MAGIC_NUMBER 0x74726163
#define TRACEFS_PATH         "/sys/kernel/tracing"
#define MAX_LINKS            64
#define IO_EXIT_SLOT_LOG     2 /* log_exit's slot in io_exit_prog (bpf/maps.bpf.h) */

struct loader {
	struct periscope_bpf *skel;
	struct bpf_link *links[MAX_LINKS];
	int n_links;
	int ncpus;
	uint32_t cpu_ring_bytes; /* 0: no per-CPU rings */
	/* the ring buffer's consumer and producer positions, mapped read-only */
	const volatile unsigned long *rb_consumer;
	const volatile unsigned long *rb_producer;
	size_t page_size;
	bool uprobe_multi;  /* Go TLS probes as uprobe_multi links (Linux >= 6.6) */
	bool sock_tp;       /* data from the socket tracepoints (data_hooks) */
	char fallback[256]; /* why the socket tracepoints were given up, or "" */
};

static int fail(char *err, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return rc;
}

/* For EPERM / EACCES: " (missing CAP_BPF, CAP_PERFMON; CAP_SYS_ADMIN would do
 * too)", naming what this process lacks; "" otherwise. */
static const char *missing_caps_hint(int rc, char *buf, size_t len)
{
	static const int needed[] = {CAP_BPF, CAP_PERFMON};
	char list[96];

	if (rc != -EPERM && rc != -EACCES)
		return "";
	if (caps_missing(needed, 2, list, sizeof(list)) && !caps_have(CAP_SYS_ADMIN))
		snprintf(buf, len, " (missing %s; CAP_SYS_ADMIN would do too)", list);
	else if (rc == -EACCES)
		snprintf(buf, len,
		         " (the capabilities are there: the verifier refused a program, its reason "
		         "is in the libbpf lines above; or a seccomp profile, an LSM or kernel "
		         "lockdown refuses bpf()/perf_event_open())");
	else
		snprintf(buf, len,
		         " (the capabilities are there: a seccomp profile, an LSM or "
		         "kernel lockdown refuses bpf()/perf_event_open())");
	return buf;
}

/* libbpf finds tracepoint ids under tracefs: mount it when nobody has. */
static int ensure_tracefs(char *err, size_t len)
{
	struct statfs st;
	struct stat sb;

	if (stat("/sys/kernel/debug/tracing/events", &sb) == 0)
		return 0;
	if (statfs(TRACEFS_PATH, &st) == 0 && st.f_type == TRACEFS_MAGIC_NUMBER)
		return 0;
	if (mount("nodev", TRACEFS_PATH, "tracefs", 0, NULL) < 0)
		return fail(err, len, -errno, "cannot mount tracefs at %s: %s", TRACEFS_PATH,
		            strerror(errno));
	return 0;
}

static void raise_memlock(void)
{
	struct rlimit r = {RLIM_INFINITY, RLIM_INFINITY};

	/* Kernels since 5.11 account BPF memory to the cgroup; older ones need this. */
	setrlimit(RLIMIT_MEMLOCK, &r);
}

static int fill_filters(struct loader *l, const struct loader_config *c)
{
	uint8_t one = 1;

	for (size_t i = 0; i < c->n_pids; i++) {
		if (bpf_map__update_elem(l->skel->maps.pid_filter, &c->pids[i], sizeof(uint32_t),
		                         &one, 1, BPF_ANY))
			return -errno;
	}
	for (size_t i = 0; i < c->n_ports; i++) {
		if (bpf_map__update_elem(l->skel->maps.port_filter, &c->ports[i], sizeof(uint16_t),
		                         &one, 1, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* Maps the ring buffer's first two pages (consumer, then producer position)
 * read-only, to tell how much is waiting. Without them the usage reads 0. */
static void map_ring_positions(struct loader *l)
{
	int fd = bpf_map__fd(l->skel->maps.events);
	void *p;

	l->page_size = (size_t)sysconf(_SC_PAGESIZE);
	p = mmap(NULL, l->page_size, PROT_READ, MAP_SHARED, fd, 0);
	l->rb_consumer = p == MAP_FAILED ? NULL : p;
	p = mmap(NULL, l->page_size, PROT_READ, MAP_SHARED, fd, (off_t)l->page_size);
	l->rb_producer = p == MAP_FAILED ? NULL : p;
}

/* BPF_TRACE_UPROBE_MULTI and its link_create attributes (Linux 6.6), which
 * the system's UAPI headers may predate. */
#define ATTACH_UPROBE_MULTI 48
struct link_create_uprobe_multi {
	uint32_t prog_fd, target_fd, attach_type, flags;
	uint64_t path, offsets, ref_ctr_offsets, cookies;
	uint32_t cnt, multi_flags, pid;
};

/* The margin event-loop turns keep before a timer may be due (bpf/maps.bpf.h,
 * loop_timer_margin_ns): 1 ms of rounding plus the coarse clock's tick, which
 * nginx reads (4 ms at HZ=250, 10 ms at HZ=100); 10 ms if it cannot be read. */
static uint64_t loop_timer_margin_ns(void)
{
	struct timespec res;
	uint64_t tick = 10 * 1000 * 1000;

	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0)
		tick = (uint64_t)res.tv_nsec;
	return 1000 * 1000 + tick;
}

static bool kernel_at_least(unsigned major, unsigned minor)
{
	struct utsname u;
	unsigned a = 0, b = 0;

	if (uname(&u) != 0 || sscanf(u.release, "%u.%u", &a, &b) != 2)
		return false;
	return a > major || (a == major && b >= minor);
}

/* Does the running kernel have sock:sock_send_length, sock:sock_recv_length and
 * tcp:tcp_destroy_sock as BTF-typed tracepoints (their btf_trace_ typedefs)? */
static bool kernel_has_socket_tracepoints(void)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	bool found;

	if (!vmlinux)
		return false;
	found =
	    btf__find_by_name_kind(vmlinux, "btf_trace_sock_send_length", BTF_KIND_TYPEDEF) > 0 &&
	    btf__find_by_name_kind(vmlinux, "btf_trace_sock_recv_length", BTF_KIND_TYPEDEF) > 0 &&
	    btf__find_by_name_kind(vmlinux, "btf_trace_tcp_destroy_sock", BTF_KIND_TYPEDEF) > 0;
	btf__free(vmlinux);
	return found;
}

/* Picks the programs that capture socket data: the socket tracepoints
 * (sock_send_length, sock_recv_length; Linux >= 6.3: loader__new decides),
 * so reads and writes of anything else run none of ours, and a connection
 * ends when its socket is destroyed (tcp_destroy_sock), so close() runs none
 * either; else the data syscalls' exits and close()'s entry. The programs of
 * the other path are not loaded. */
static void data_hooks(struct loader *l, const struct loader_config *c, bool sock_tp)
{
	struct periscope_bpf *s = l->skel;
	struct bpf_program *syscall_progs[] = {
	    s->progs.exit_read,    s->progs.exit_write,      s->progs.exit_readv,
	    s->progs.exit_writev,  s->progs.exit_recvfrom,   s->progs.exit_sendto,
	    s->progs.exit_recvmsg, s->progs.exit_sendmsg,    s->progs.exit_sendfile64,
	    s->progs.io_exit,      s->progs.io_exit_request, s->progs.io_exit_more,
	    s->progs.enter_close};
	struct bpf_program *tp_progs[] = {s->progs.sock_send,      s->progs.sock_recv,
	                                  s->progs.loop_exit_read, s->progs.loop_exit_readv,
	                                  s->progs.io_tp_exit,     s->progs.io_tp_request,
	                                  s->progs.io_tp_more,     s->progs.sock_destroy};
	size_t i;

	l->sock_tp = sock_tp;
	for (i = 0; i < sizeof(syscall_progs) / sizeof(syscall_progs[0]); i++)
		bpf_program__set_autoload(syscall_progs[i], !l->sock_tp);
	for (i = 0; i < sizeof(tp_progs) / sizeof(tp_progs[0]); i++)
		bpf_program__set_autoload(tp_progs[i], l->sock_tp);
	/* with the tracepoints, the write exits serve --logs only */
	bpf_program__set_autoload(s->progs.log_only_write, l->sock_tp && c->logs);
	bpf_program__set_autoload(s->progs.log_only_writev, l->sock_tp && c->logs);
	bpf_program__set_autoattach(s->progs.io_tp_exit, false);
	bpf_program__set_autoattach(s->progs.io_tp_request, false);
	bpf_program__set_autoattach(s->progs.io_tp_more, false);
}

bool loader_socket_tracepoints(const struct loader *l)
{
	return l->sock_tp;
}

const char *loader_fallback_reason(const struct loader *l)
{
	return l->fallback[0] ? l->fallback : NULL;
}

/* One uprobe_multi link of prog on path at n file offsets with their
 * cookies: the link's fd, or a negative errno. */
static int uprobe_multi_link(struct bpf_program *prog, const char *path, const uint64_t *offs,
                             const uint64_t *cookies, uint32_t n)
{
	union {
		struct link_create_uprobe_multi a;
		uint8_t raw[128]; /* the kernel checks that what it does not know is zero */
	} attr;
	long fd;

	memset(&attr, 0, sizeof(attr));
	attr.a.prog_fd = (uint32_t)bpf_program__fd(prog);
	attr.a.attach_type = ATTACH_UPROBE_MULTI;
	attr.a.path = (uint64_t)(uintptr_t)path;
	attr.a.offsets = (uint64_t)(uintptr_t)offs;
	attr.a.cookies = (uint64_t)(uintptr_t)cookies;
	attr.a.cnt = n;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	return fd < 0 ? -errno : (int)fd;
}

static int loader_open(const struct loader_config *c, bool sock_tp, struct loader **out, char *err,
                       size_t err_len);

/* Does process pid hold a socket (any: a TCP one is not told apart here)? */
static bool proc_has_socket(int proc_fd, const char *pid)
{
	char path[64], target[32];
	struct dirent *e;
	bool found = false;
	DIR *d;
	int fd;

	snprintf(path, sizeof(path), "%s/fd", pid);
	fd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	while (!found && (e = readdir(d))) {
		ssize_t n = readlinkat(fd, e->d_name, target, sizeof(target) - 1);

		found = n > 8 && !memcmp(target, "socket:[", 8);
	}
	closedir(d);
	return found;
}

/* Marks the processes that hold a socket now in net_procs (the programs mark
 * the ones that open one from now on): their event loops' waits count turns.
 * Returns how many. */
static int mark_socket_owners(struct loader *l)
{
	int map_fd = bpf_map__fd(l->skel->maps.net_procs), proc_fd, n = 0;
	struct dirent *e;
	uint8_t one = 1;
	DIR *d;

	proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (proc_fd < 0 || !(d = fdopendir(proc_fd))) {
		if (proc_fd >= 0)
			close(proc_fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		char *end;
		unsigned long pid = strtoul(e->d_name, &end, 10);
		uint32_t key = (uint32_t)pid;

		/* the agent's own waits are no turns (its sockets are not traced) */
		if (*end || !pid || pid == (unsigned long)getpid() ||
		    !proc_has_socket(proc_fd, e->d_name))
			continue;
		if (!bpf_map_update_elem(map_fd, &key, &one, BPF_ANY))
			n++;
	}
	closedir(d);
	return n;
}

/* The skeleton's embedded object (1.7 MB of the executable's read-only data)
 * is parsed once the programs are loaded: its pages need not stay resident
 * (anything that touched them again would read them back from the file). */
static void release_object_bytes(void)
{
	size_t size, page = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)periscope_bpf__elf_bytes(&size);
	uintptr_t first = (start + page - 1) & ~(uintptr_t)(page - 1);
	uintptr_t last = (start + size) & ~(uintptr_t)(page - 1);

	if (last > first)
		madvise((void *)first, last - first, MADV_DONTNEED);
}

int loader__new(const struct loader_config *c, struct loader **out, char *err, size_t err_len)
{
	char first[sizeof(((struct loader *)0)->fallback)];
	bool sock_tp;
	int rc;

	*out = NULL;
	if (geteuid() != 0)
		return fail(err, err_len, -EPERM,
		            "periscope must run as root (it loads eBPF programs)");
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0)
		return fail(err, err_len, -ENOENT,
		            "kernel BTF not found at /sys/kernel/btf/vmlinux: a kernel built with "
		            "CONFIG_DEBUG_INFO_BTF=y is required");
	rc = ensure_tracefs(err, err_len);
	if (rc)
		return rc;
	raise_memlock();

	sock_tp = !c->syscall_data && kernel_has_socket_tracepoints();
	rc = loader_open(c, sock_tp, out, err, err_len);
	if (rc && sock_tp) {
		/* a kernel that lists the tracepoints but refuses our programs on
		 * them: the syscall exits will do (the agent says why) */
		snprintf(first, sizeof(first), "%s", err);
		rc = loader_open(c, false, out, err, err_len);
		if (rc == 0)
			snprintf((*out)->fallback, sizeof((*out)->fallback), "%s", first);
	}
	return rc;
}

static int loader_open(const struct loader_config *c, bool sock_tp, struct loader **out, char *err,
                       size_t err_len)
{
	struct loader *l = NULL;
	struct bpf_program *prog;
	char hint[160];
	int rc;

	l = calloc(1, sizeof(*l));
	if (!l)
		return fail(err, err_len, -ENOMEM, "out of memory");
	l->ncpus = libbpf_num_possible_cpus();
	l->skel = periscope_bpf__open();
	if (!l->skel) {
		rc = fail(err, err_len, -errno ? -errno : -EINVAL, "cannot open the BPF object: %s",
		          strerror(errno));
		goto cleanup;
	}
	l->skel->rodata->self_tgid = c->self_tgid;
	l->skel->rodata->capture_size = c->capture_size;
	l->skel->rodata->request_capture_size = c->request_capture_size;
	l->skel->rodata->wakeup_bytes = c->wakeup_bytes;
	l->skel->rodata->logs_enabled = c->logs;
	l->skel->rodata->log_writes_per_sec = c->log_writes_per_sec;
	l->skel->rodata->loop_timer_margin_ns = loop_timer_margin_ns();
	l->skel->rodata->filter_flags =
	    (c->n_pids ? PSCOPE_FILTER_PIDS : 0) | (c->n_ports ? PSCOPE_FILTER_PORTS : 0);
	bpf_map__set_max_entries(l->skel->maps.events, c->ringbuf_bytes);
	if (c->cpu_ring_bytes) {
		/* the ring buffer only wakes the agent then: the smallest will do */
		l->cpu_ring_bytes = c->cpu_ring_bytes;
		l->skel->rodata->cpu_ring_mask = c->cpu_ring_bytes - 1;
		bpf_map__set_max_entries(l->skel->maps.events, 64 << 10);
		bpf_map__set_value_size(l->skel->maps.cpu_rings, PSCOPE_CPU_RING_CTL +
		                                                     c->cpu_ring_bytes +
		                                                     PSCOPE_CPU_RING_SLACK);
		bpf_map__set_max_entries(l->skel->maps.cpu_rings, l->ncpus);
	}
	bpf_map__set_max_entries(l->skel->maps.socks, c->max_sockets);
	bpf_map__set_max_entries(l->skel->maps.scratch, l->ncpus);

	/* io_exit is reached by tail call only, never attached itself; the TLS
	 * uprobes are attached per library file by loader_attach_tls */
	bpf_program__set_autoattach(l->skel->progs.io_exit, false);
	bpf_program__set_autoattach(l->skel->progs.io_exit_request, false);
	bpf_program__set_autoattach(l->skel->progs.io_exit_more, false);
	bpf_program__set_autoattach(l->skel->progs.log_exit, false);
	/* without --logs the write exits never reach it: not even loaded */
	bpf_program__set_autoload(l->skel->progs.log_exit, c->logs);
	bpf_program__set_autoattach(l->skel->progs.ssl_read_enter, false);
	bpf_program__set_autoattach(l->skel->progs.ssl_write_enter, false);
	bpf_program__set_autoattach(l->skel->progs.ssl_read_ex_enter, false);
	bpf_program__set_autoattach(l->skel->progs.ssl_write_ex_enter, false);
	bpf_program__set_autoattach(l->skel->progs.ssl_return, false);
	bpf_program__set_autoattach(l->skel->progs.ssl_set_fd_enter, false);
	bpf_program__set_autoattach(l->skel->progs.go_round_trip, false);
	bpf_program__set_autoattach(l->skel->progs.loop_boundary, false);
	bpf_program__set_autoattach(l->skel->progs.py_task_enter, false);
	bpf_program__set_autoattach(l->skel->progs.py_task_create, false);
	bpf_program__set_autoattach(l->skel->progs.go_conn_write, false);
	bpf_program__set_autoattach(l->skel->progs.go_tls_enter, false);
	bpf_program__set_autoattach(l->skel->progs.go_tls_ret, false);
	bpf_program__set_autoattach(l->skel->progs.go_tls_enter_multi, false);
	bpf_program__set_autoattach(l->skel->progs.go_tls_ret_multi, false);
	data_hooks(l, c, sock_tp);
	/* one variant of the Go TLS programs is loaded: the uprobe_multi one
	 * where the kernel has it, the perf-event one elsewhere */
	l->uprobe_multi = kernel_at_least(6, 6);
	if (l->uprobe_multi) {
		bpf_program__set_expected_attach_type(l->skel->progs.go_tls_enter_multi,
		                                      ATTACH_UPROBE_MULTI);
		bpf_program__set_expected_attach_type(l->skel->progs.go_tls_ret_multi,
		                                      ATTACH_UPROBE_MULTI);
		bpf_program__set_autoload(l->skel->progs.go_tls_enter, false);
		bpf_program__set_autoload(l->skel->progs.go_tls_ret, false);
	} else {
		bpf_program__set_autoload(l->skel->progs.go_tls_enter_multi, false);
		bpf_program__set_autoload(l->skel->progs.go_tls_ret_multi, false);
	}
	rc = periscope_bpf__load(l->skel);
	if (rc) {
		rc = rc < 0 ? rc : -EINVAL;
		fail(err, err_len, rc, "cannot load the BPF programs into the kernel: %s%s",
		     strerror(-rc), missing_caps_hint(rc, hint, sizeof(hint)));
		goto cleanup;
	}
	release_object_bytes();
	{
		/* slot 0: the default capture; slot 1: server reads (request heads);
		 * slot 2: writes to stdout/stderr (--logs); slot 3: the second pass
		 * over a long iovec array. The socket tracepoints' own array holds
		 * their tracing-program twins (no log slot). */
		struct bpf_program *sys_exits[4] = {
		    l->skel->progs.io_exit, l->skel->progs.io_exit_request, l->skel->progs.log_exit,
		    l->skel->progs.io_exit_more};
		struct bpf_program *tp_exits[4] = {
		    l->skel->progs.io_tp_exit, l->skel->progs.io_tp_request,
		    l->skel->progs.log_exit, l->skel->progs.io_tp_more};
		struct bpf_program **exits = l->sock_tp ? tp_exits : sys_exits;

		for (uint32_t slot = 0; slot < 4u; slot++) {
			/* log_exit is a syscall-exit program on either path */
			struct bpf_map *map = l->sock_tp && slot != IO_EXIT_SLOT_LOG
			                          ? l->skel->maps.io_tp_prog
			                          : l->skel->maps.io_exit_prog;

			if (slot == IO_EXIT_SLOT_LOG && !c->logs)
				continue;
			struct bpf_program *prog = exits[slot];
			int prog_fd = bpf_program__fd(prog);
			if (bpf_map__update_elem(map, &slot, sizeof(slot), &prog_fd,
			                         sizeof(prog_fd), BPF_ANY)) {
				rc = -errno;
				fail(err, err_len, rc, "cannot install the exit handler: %s",
				     strerror(-rc));
				goto cleanup;
			}
		}
	}
	rc = fill_filters(l, c);
	if (rc) {
		fail(err, err_len, rc, "cannot set filters: %s", strerror(-rc));
		goto cleanup;
	}
	bpf_object__for_each_program(prog, l->skel->obj)
	{
		struct bpf_link *link;

		if (l->n_links >= MAX_LINKS)
			break;
		if (!bpf_program__autoload(prog) || !bpf_program__autoattach(prog))
			continue;
		link = bpf_program__attach(prog);
		if (!link) {
			rc = -errno;
			fail(err, err_len, rc, "cannot attach %s: %s%s", bpf_program__name(prog),
			     strerror(-rc), missing_caps_hint(rc, hint, sizeof(hint)));
			goto cleanup;
		}
		l->links[l->n_links++] = link;
	}
	map_ring_positions(l);
	mark_socket_owners(l); /* after attaching: a socket opened meanwhile is marked too */
	/* CPUs that were asked meanwhile answered without these (net_proc) */
	__atomic_fetch_add(&l->skel->bss->net_procs_gen, 1, __ATOMIC_SEQ_CST);
	*out = l;
	return 0;
cleanup:
	loader__free(l);
	return rc;
}

static void *destroy_link(void *link)
{
	bpf_link__destroy(link);
	return NULL;
}

/* Detaching a tracepoint waits for an RCU grace period (~0.1 s here), one
 * after the other: 25 of them took 3 s. Detached from parallel threads, the
 * waits share grace periods and the whole takes about one. */
static void destroy_links(struct bpf_link **links, int n)
{
	pthread_t *threads = n > 0 ? calloc((size_t)n, sizeof(*threads)) : NULL;
	bool *started = n > 0 ? calloc((size_t)n, sizeof(*started)) : NULL;

	for (int i = 0; i < n; i++)
		if (threads && started)
			started[i] = pthread_create(&threads[i], NULL, destroy_link, links[i]) == 0;
	for (int i = 0; i < n; i++) {
		if (started && started[i])
			pthread_join(threads[i], NULL);
		else
			bpf_link__destroy(links[i]);
	}
	free(threads);
	free(started);
}

void loader_detach_all(struct loader *l)
{
	destroy_links(l->links, l->n_links);
	l->n_links = 0;
}

void loader__free(struct loader *l)
{
	if (!l)
		return;
	if (l->rb_consumer)
		munmap((void *)l->rb_consumer, l->page_size);
	if (l->rb_producer)
		munmap((void *)l->rb_producer, l->page_size);
	destroy_links(l->links, l->n_links);
	periscope_bpf__destroy(l->skel);
	free(l);
}

uint64_t loader_ringbuf_waiting(const struct loader *l)
{
	unsigned long cons, prod;

	if (!l || !l->rb_consumer || !l->rb_producer)
		return 0;
	cons = __atomic_load_n(l->rb_consumer, __ATOMIC_ACQUIRE);
	prod = __atomic_load_n(l->rb_producer, __ATOMIC_ACQUIRE);
	return prod > cons ? prod - cons : 0;
}

int loader_events_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.events);
}

int loader_cpu_rings(const struct loader *l, unsigned *ncpus, size_t *stride, size_t *ring_size)
{
	if (!l->cpu_ring_bytes)
		return -1;
	*ncpus = (unsigned)l->ncpus;
	*stride = bpf_map__value_size(l->skel->maps.cpu_rings);
	*ring_size = l->cpu_ring_bytes;
	return bpf_map__fd(l->skel->maps.cpu_rings);
}

int loader_probe_count(const struct loader *l)
{
	return l->n_links;
}

int loader_add_self_endpoint(struct loader *l, int family, const uint8_t *addr, uint16_t port)
{
	struct pscope_endpoint k;
	uint8_t one = 1;

	memset(&k, 0, sizeof(k));
	k.port = port;
	if (family == AF_INET) {
		static const uint8_t any4[4];
		if (memcmp(addr, any4, 4) != 0) {
			k.addr[10] = 0xff;
			k.addr[11] = 0xff;
			memcpy(&k.addr[12], addr, 4);
		}
	} else {
		memcpy(k.addr, addr, 16);
	}
	if (bpf_map__update_elem(l->skel->maps.self_endpoints, &k, sizeof(k), &one, 1, BPF_ANY))
		return -errno;
	return 0;
}

int loader_ignore_socket(struct loader *l, const struct pscope_conn_ref *ref, bool tls_plaintext)
{
	struct bpf_map *m = l->skel->maps.socks;
	uint64_t sock_id = ref->sock_id;
	struct pscope_sock_info si;

	if (bpf_map__lookup_elem(m, &sock_id, sizeof(sock_id), &si, sizeof(si), 0))
		return -errno;
	if (si.local_port != ref->local_port || si.remote_port != ref->remote_port ||
	    si.family != ref->family || memcmp(si.local_addr, ref->local_addr, 16) ||
	    memcmp(si.remote_addr, ref->remote_addr, 16))
		return -ESTALE; /* another connection's socket now */
	if (tls_plaintext)
		si.ignored = 1;
	else
		si.raw_skip = 1;
	if (bpf_map__update_elem(m, &sock_id, sizeof(sock_id), &si, sizeof(si), BPF_EXIST))
		return -errno;
	return 0;
}

int loader_read_ringbuf_drops(const struct loader *l, uint64_t *out)
{
	uint64_t *vals = calloc(l->ncpus, sizeof(uint64_t));
	uint32_t r = PSCOPE_DROP_RINGBUF_FULL;
	int rc = 0;

	if (!vals)
		return -ENOMEM;
	*out = 0;
	if (bpf_map__lookup_elem(l->skel->maps.drops, &r, sizeof(r), vals,
	                         sizeof(uint64_t) * l->ncpus, 0)) {
		rc = -errno;
		goto cleanup;
	}
	for (int cpu = 0; cpu < l->ncpus; cpu++)
		*out += vals[cpu];
cleanup:
	free(vals);
	return rc;
}

int loader_read_drops(const struct loader *l, uint64_t out[PSCOPE_DROP__COUNT])
{
	uint64_t *vals = calloc(l->ncpus, sizeof(uint64_t));
	int rc = 0;

	if (!vals)
		return -ENOMEM;
	for (uint32_t r = 0; r < PSCOPE_DROP__COUNT; r++) {
		out[r] = 0;
		if (bpf_map__lookup_elem(l->skel->maps.drops, &r, sizeof(r), vals,
		                         sizeof(uint64_t) * l->ncpus, 0)) {
			rc = -errno;
			goto cleanup;
		}
		for (int cpu = 0; cpu < l->ncpus; cpu++)
			out[r] += vals[cpu];
	}
cleanup:
	free(vals);
	return rc;
}

int loader_read_log_counters(const struct loader *l, uint64_t out[PSCOPE_LOG__COUNT])
{
	uint64_t *vals = calloc((size_t)l->ncpus, sizeof(uint64_t));

	if (!vals)
		return -ENOMEM;
	for (uint32_t k = 0; k < PSCOPE_LOG__COUNT; k++) {
		out[k] = 0;
		if (bpf_map__lookup_elem(l->skel->maps.log_counters, &k, sizeof(k), vals,
		                         sizeof(uint64_t) * (size_t)l->ncpus, 0))
			continue;
		for (int c = 0; c < l->ncpus; c++)
			out[k] += vals[c];
	}
	free(vals);
	return 0;
}

const char *loader_drop_reason_name(int reason)
{
	static const char *const names[PSCOPE_DROP__COUNT] = {
	    [PSCOPE_DROP_RINGBUF_FULL] = "ringbuf_full",
	    [PSCOPE_DROP_ACTIVE_FULL] = "active_full",
	    [PSCOPE_DROP_SOCK_FULL] = "socket_table_full",
	    [PSCOPE_DROP_READ_FAULT] = "read_fault",
	    [PSCOPE_DROP_IOV_LIMIT] = "iov_limit",
	    [PSCOPE_DROP_TRUNCATED] = "truncated",
	    [PSCOPE_DROP_SSL_NO_FD] = "tls_socket_unknown",
	};
	if (reason < 0 || reason >= PSCOPE_DROP__COUNT)
		return "unknown";
	return names[reason];
}

/* OpenSSL: 10; Go: net/http 2 + crypto/tls 2 entries and their RETs */
#define TLS_MAX_LINKS (4 + 2 * GO_TLS_MAX_RETS)

struct loader_tls {
	struct bpf_link *links[TLS_MAX_LINKS];
	int n_links;
	int multi_fds[2]; /* Go TLS uprobe_multi links (entries, RETs), -1 when none */
};

/* An attachment with no links yet (free with loader_detach_tls). */
static struct loader_tls *tls_new(void)
{
	struct loader_tls *t = calloc(1, sizeof(*t));

	if (t)
		t->multi_fds[0] = t->multi_fds[1] = -1;
	return t;
}

/* One uprobe (or uretprobe) on func in path; NULL when the symbol is absent. */
static struct bpf_link *attach_func(struct bpf_program *prog, const char *path, const char *func,
                                    bool ret)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = func, .retprobe = ret);

	return bpf_program__attach_uprobe_opts(prog, -1, path, 0, &opts);
}

int loader_attach_tls(struct loader *l, const char *path, struct loader_tls **out)
{
	static const struct {
		const char *func;
		bool required;
	} funcs[] = {
	    {"SSL_read", true},      {"SSL_write", true},   {"SSL_read_ex", false},
	    {"SSL_write_ex", false}, {"SSL_set_fd", false},
	};
	struct bpf_program *enter[] = {
	    l->skel->progs.ssl_read_enter,    l->skel->progs.ssl_write_enter,
	    l->skel->progs.ssl_read_ex_enter, l->skel->progs.ssl_write_ex_enter,
	    l->skel->progs.ssl_set_fd_enter,
	};
	struct loader_tls *t;
	int rc = 0;

	*out = NULL;
	t = tls_new();
	if (!t)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		struct bpf_link *in, *ret = NULL;

		in = attach_func(enter[i], path, funcs[i].func, false);
		if (!in) {
			if (funcs[i].required) {
				rc = errno ? -errno : -ENOENT;
				goto cleanup;
			}
			continue;
		}
		t->links[t->n_links++] = in;
		if (enter[i] == l->skel->progs.ssl_set_fd_enter)
			continue;
		ret = attach_func(l->skel->progs.ssl_return, path, funcs[i].func, true);
		if (!ret) {
			rc = errno ? -errno : -ENOENT;
			goto cleanup;
		}
		t->links[t->n_links++] = ret;
	}
	*out = t;
	return 0;
cleanup:
	loader_detach_tls(t);
	return rc;
}

int loader_attach_node_loop(struct loader *l, const char *path, struct loader_tls *t)
{
	/* the callbacks no socket read started (capture.bpf.h, loop_boundary):
	 * the first four or none (a missing one would leave its callbacks in a
	 * read's segment); TCP connect completions too where node exports them.
	 * All in node's dynamic symbol table: stripped builds have them too. */
	static const struct {
		const char *func;
		bool required;
	} funcs[] = {
	    {"_ZN4node11Environment14CheckImmediateEP10uv_check_s", true},
	    {"_ZN4node11Environment9RunTimersEP10uv_timer_s", true},
	    {"_ZN4node15LibuvStreamWrap12AfterUvWriteEP10uv_write_si", true},
	    {"_ZN4node15LibuvStreamWrap15AfterUvShutdownEP13uv_shutdown_si", true},
	    {"_ZN4node14ConnectionWrapINS_7TCPWrapE8uv_tcp_sE12AfterConnectEP12uv_connect_si",
	     false},
	};
	struct bpf_link *links[5];
	int n = 0, rc = 0;

	if (!t || t->n_links + 5 > TLS_MAX_LINKS)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++) {
		links[n] = attach_func(l->skel->progs.loop_boundary, path, funcs[i].func, false);
		if (!links[n]) {
			if (!funcs[i].required)
				continue;
			rc = errno ? -errno : -ENOENT;
			goto cleanup;
		}
		n++;
	}
	for (int i = 0; i < n; i++)
		t->links[t->n_links++] = links[i];
	return 0;
cleanup:
	while (n > 0)
		bpf_link__destroy(links[--n]);
	return rc;
}

int loader_attach_node(struct loader *l, const char *path, struct loader_tls **out)
{
	struct loader_tls *t = tls_new();
	int rc;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	rc = loader_attach_node_loop(l, path, t);
	if (rc) {
		loader_detach_tls(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* One uprobe at a file offset of path, with a cookie; 0 or a negative errno. */
static int attach_at(struct loader_tls *t, struct bpf_program *prog, const char *path, uint64_t off,
                     uint64_t cookie)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie);
	struct bpf_link *link;

	if (t->n_links == TLS_MAX_LINKS)
		return -E2BIG;
	link = bpf_program__attach_uprobe_opts(prog, -1, path, (size_t)off, &opts);
	if (!link)
		return errno ? -errno : -ENOENT;
	t->links[t->n_links++] = link;
	return 0;
}

int loader_attach_python(struct loader *l, const struct loader_python *p, struct loader_tls **out)
{
	struct loader_tls *t = tls_new();
	int rc;

	*out = NULL;
	if (!t)
		return -ENOMEM;
	/* the task probes first: a handle boundary without them would make the
	 * thread phased with no task ever owned */
	rc = 0;
	for (uint32_t i = 0; !rc && i < p->sites->n_enter; i++)
		rc = attach_at(t, l->skel->progs.py_task_enter, p->asyncio, p->sites->enter[i], 0);
	for (uint32_t i = 0; !rc && i < p->sites->n_create; i++)
		rc =
		    attach_at(t, l->skel->progs.py_task_create, p->asyncio, p->sites->create[i], 0);
	if (!rc)
		rc = attach_at(t, l->skel->progs.loop_boundary, p->exe, p->run_off,
		               PSCOPE_COOKIE_PY_CONTEXT_RUN);
	if (rc) {
		loader_detach_tls(t);
		return rc;
	}
	*out = t;
	return 0;
}

/* The entry and every RET of one crypto/tls function, one perf-event uprobe each. */
static int attach_go_tls_func(struct loader *l, struct loader_tls *t, const char *path,
                              const struct go_func_plan *f, uint64_t cookie)
{
	int rc = 0;

	/* the RETs first: an entry without its RETs would leave calls in flight */
	for (uint32_t i = 0; !rc && i < f->n_rets; i++)
		rc = attach_at(t, l->skel->progs.go_tls_ret, path, f->ret_offs[i], cookie);
	if (!rc)
		rc = attach_at(t, l->skel->progs.go_tls_enter, path, f->entry_off, cookie);
	return rc;
}

/* Both functions' RETs in one uprobe_multi link, then both entries in another. */
static int attach_go_tls_multi(struct loader *l, struct loader_tls *t, const char *path,
                               const struct go_attach_plan *p, uint64_t wcookie, uint64_t rcookie)
{
	uint64_t offs[2 * GO_TLS_MAX_RETS], cookies[2 * GO_TLS_MAX_RETS];
	uint32_t n = 0;
	int fd;

	for (uint32_t i = 0; i < p->tls_write.n_rets; i++, n++) {
		offs[n] = p->tls_write.ret_offs[i];
		cookies[n] = wcookie;
	}
	for (uint32_t i = 0; i < p->tls_read.n_rets; i++, n++) {
		offs[n] = p->tls_read.ret_offs[i];
		cookies[n] = rcookie;
	}
	fd = uprobe_multi_link(l->skel->progs.go_tls_ret_multi, path, offs, cookies, n);
	if (fd < 0)
		return fd;
	t->multi_fds[1] = fd;
	offs[0] = p->tls_write.entry_off;
	cookies[0] = wcookie;
	offs[1] = p->tls_read.entry_off;
	cookies[1] = rcookie;
	fd = uprobe_multi_link(l->skel->progs.go_tls_enter_multi, path, offs, cookies, 2);
	if (fd < 0)
		return fd;
	t->multi_fds[0] = fd;
	return 0;
}

int loader_attach_go(struct loader *l, const char *path, const struct go_attach_plan *p,
                     struct loader_tls **out)
{
	struct loader_tls *t;
	int rc = 0;

	*out = NULL;
	if (!p->http && !p->tls)
		return -ENOENT;
	t = tls_new();
	if (!t)
		return -ENOMEM;
	if (p->http) {
		rc = attach_at(t, l->skel->progs.go_round_trip, path, p->http_round_trip_off, 0);
		if (!rc)
			rc = attach_at(t, l->skel->progs.go_conn_write, path,
			               p->http_conn_write_off, 0);
		if (rc)
			goto cleanup;
	}
	if (p->tls) {
		uint64_t wcookie =
		    p->tls_cookie | PSCOPE_GO_TLS_COOKIE(0, 0, 0, 0, 0, PSCOPE_DIR_EGRESS);
		uint64_t rcookie =
		    p->tls_cookie | PSCOPE_GO_TLS_COOKIE(0, 0, 0, 0, 0, PSCOPE_DIR_INGRESS);

		if (l->uprobe_multi) {
			rc = attach_go_tls_multi(l, t, path, p, wcookie, rcookie);
		} else {
			rc = attach_go_tls_func(l, t, path, &p->tls_write, wcookie);
			if (!rc)
				rc = attach_go_tls_func(l, t, path, &p->tls_read, rcookie);
		}
		if (rc)
			goto cleanup;
	}
	*out = t;
	return 0;
cleanup:
	loader_detach_tls(t);
	return rc;
}

void loader_detach_tls(struct loader_tls *t)
{
	loader_detach_tls_all(&t, 1);
}

static void *close_fd(void *fd)
{
	close((int)(intptr_t)fd);
	return NULL;
}

void loader_detach_tls_all(struct loader_tls **ts, size_t n)
{
	struct bpf_link **links;
	pthread_t *closers;
	int *fds;
	size_t total = 0, n_fds = 0;

	for (size_t i = 0; i < n; i++)
		total += ts[i] ? (size_t)ts[i]->n_links : 0;
	links = total ? calloc(total, sizeof(*links)) : NULL;
	fds = n ? calloc(2 * n, sizeof(*fds)) : NULL;
	closers = n ? calloc(2 * n, sizeof(*closers)) : NULL;
	total = 0;
	for (size_t i = 0; i < n; i++) {
		if (!ts[i])
			continue;
		for (int j = 0; j < 2; j++) {
			if (ts[i]->multi_fds[j] < 0)
				continue;
			/* closing a uprobe_multi link waits for a grace period */
			if (fds && closers &&
			    pthread_create(&closers[n_fds], NULL, close_fd,
			                   (void *)(intptr_t)ts[i]->multi_fds[j]) == 0)
				fds[n_fds++] = ts[i]->multi_fds[j];
			else
				close(ts[i]->multi_fds[j]);
		}
		if (links) {
			memcpy(links + total, ts[i]->links,
			       sizeof(*links) * (size_t)ts[i]->n_links);
			total += (size_t)ts[i]->n_links;
		} else {
			destroy_links(ts[i]->links, ts[i]->n_links);
		}
		free(ts[i]);
		ts[i] = NULL;
	}
	/* in one parallel batch: every uprobe waits for a grace period */
	destroy_links(links, (int)total);
	for (size_t i = 0; i < n_fds; i++)
		pthread_join(closers[i], NULL);
	free(links);
	free(fds);
	free(closers);
}

int loader_mark_plain_exe(struct loader *l, uint32_t dev, uint64_t ino)
{
	struct pscope_file_key k = {.ino = ino, .dev = dev};
	uint8_t one = 1;

	if (bpf_map__update_elem(l->skel->maps.plain_exes, &k, sizeof(k), &one, 1, BPF_ANY))
		return -errno;
	return 0;
}

int loader_mark_unphased(struct loader *l, uint32_t pid, bool on)
{
	uint8_t one = 1;
	int rc = on ? bpf_map__update_elem(l->skel->maps.loop_unphased, &pid, sizeof(pid), &one, 1,
	                                   BPF_ANY)
	            : bpf_map__delete_elem(l->skel->maps.loop_unphased, &pid, sizeof(pid), 0);

	return rc && (on || errno != ENOENT) ? -errno : 0;
}

int loader_mark_tls_process(struct loader *l, uint32_t pid)
{
	uint8_t one = 1;

	if (bpf_map__update_elem(l->skel->maps.ssl_procs, &pid, sizeof(pid), &one, 1, BPF_ANY))
		return -errno;
	/* sockets' cached process flags (sock_proc_flags) are stale now */
	__atomic_fetch_add(&l->skel->bss->proc_flags_gen, 1, __ATOMIC_SEQ_CST);
	return 0;
}
