/* loader.c — prepares the kernel side: tracefs, memlock, BTF check, loads the
 * BPF object with its settings, attaches every probe, and reads its counters. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kernel/loader.h"
#include "periscope.skel.h"

#define TRACEFS_MAGIC_NUMBER 0x74726163
#define TRACEFS_PATH         "/sys/kernel/tracing"
#define MAX_LINKS            64
#define IO_EXIT_SLOT_LOG     2 /* log_exit's slot in io_exit_prog (bpf/maps.bpf.h) */

struct loader {
	struct periscope_bpf *skel;
	struct bpf_link *links[MAX_LINKS];
	int n_links;
	int ncpus;
	/* the ring buffer's consumer and producer positions, mapped read-only */
	const volatile unsigned long *rb_consumer;
	const volatile unsigned long *rb_producer;
	size_t page_size;
};

static int fail(char *err, size_t len, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return rc;
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

int loader__new(const struct loader_config *c, struct loader **out, char *err, size_t err_len)
{
	struct loader *l = NULL;
	struct bpf_program *prog;
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
	l->skel->rodata->filter_flags =
	    (c->n_pids ? PSCOPE_FILTER_PIDS : 0) | (c->n_ports ? PSCOPE_FILTER_PORTS : 0);
	bpf_map__set_max_entries(l->skel->maps.events, c->ringbuf_bytes);
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
	bpf_program__set_autoattach(l->skel->progs.go_conn_write, false);
	rc = periscope_bpf__load(l->skel);
	if (rc) {
		rc = fail(err, err_len, rc < 0 ? rc : -EINVAL,
		          "cannot load the BPF programs into the kernel: %s", strerror(-rc));
		goto cleanup;
	}
	{
		/* slot 0: the default capture; slot 1: server reads (request heads);
		 * slot 2: writes to stdout/stderr (--logs); slot 3: the second pass
		 * over a long iovec array */
		struct bpf_program *exits[4] = {l->skel->progs.io_exit,
		                                l->skel->progs.io_exit_request,
		                                l->skel->progs.log_exit,
		                                l->skel->progs.io_exit_more};
		for (uint32_t slot = 0; slot < 4u; slot++) {
			if (slot == IO_EXIT_SLOT_LOG && !c->logs)
				continue;
			int prog_fd = bpf_program__fd(exits[slot]);
			if (bpf_map__update_elem(l->skel->maps.io_exit_prog, &slot, sizeof(slot),
			                         &prog_fd, sizeof(prog_fd), BPF_ANY)) {
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
		if (!bpf_program__autoattach(prog))
			continue;
		link = bpf_program__attach(prog);
		if (!link) {
			rc = -errno;
			fail(err, err_len, rc, "cannot attach %s: %s", bpf_program__name(prog),
			     strerror(-rc));
			goto cleanup;
		}
		l->links[l->n_links++] = link;
	}
	map_ring_positions(l);
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
	pthread_t threads[MAX_LINKS];
	bool started[MAX_LINKS] = {false};

	for (int i = 0; i < n; i++)
		started[i] = pthread_create(&threads[i], NULL, destroy_link, links[i]) == 0;
	for (int i = 0; i < n; i++) {
		if (started[i])
			pthread_join(threads[i], NULL);
		else
			bpf_link__destroy(links[i]);
	}
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

#define TLS_MAX_LINKS 10

struct loader_tls {
	struct bpf_link *links[TLS_MAX_LINKS];
	int n_links;
};

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
	t = calloc(1, sizeof(*t));
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

int loader_attach_go_http(struct loader *l, const char *path, uint64_t round_trip_off,
                          uint64_t conn_write_off, struct loader_tls **out)
{
	struct loader_tls *t;
	int rc = 0;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->links[0] = bpf_program__attach_uprobe(l->skel->progs.go_round_trip, false, -1, path,
	                                         round_trip_off);
	if (!t->links[0]) {
		rc = errno ? -errno : -ENOENT;
		goto cleanup;
	}
	t->n_links = 1;
	t->links[1] = bpf_program__attach_uprobe(l->skel->progs.go_conn_write, false, -1, path,
	                                         conn_write_off);
	if (!t->links[1]) {
		rc = errno ? -errno : -ENOENT;
		goto cleanup;
	}
	t->n_links = 2;
	*out = t;
	return 0;
cleanup:
	loader_detach_tls(t);
	return rc;
}

void loader_detach_tls(struct loader_tls *t)
{
	if (!t)
		return;
	destroy_links(t->links, t->n_links);
	free(t);
}

int loader_mark_tls_process(struct loader *l, uint32_t pid)
{
	uint8_t one = 1;

	if (bpf_map__update_elem(l->skel->maps.ssl_procs, &pid, sizeof(pid), &one, 1, BPF_ANY))
		return -errno;
	return 0;
}
