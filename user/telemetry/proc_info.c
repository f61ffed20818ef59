/* proc_info.c — builds and caches the OTel resource of each observed process
 * from /proc (executable, environment's OTEL_* variables), bounded in size
 * with least-recently-used eviction. See proc_info.h for the attributes. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "telemetry/container_id.h"
#include "telemetry/proc_info.h"
#include "telemetry/resource.h"
#include "telemetry/service_name.h"

#define ENVIRON_MAX       (1024 * 1024) /* bytes of /proc/PID/environ read at most */
#define INITIAL_BUCKETS   256
#define HOST_NAME_LEN     256
#define COMM_LEN          16
#define HOOK_RETRIES      40  /* rebuilds of a resource the hook left incomplete */
#define HOOK_RETRY_MS     100 /* first delay, doubled up to HOOK_RETRY_MAX_MS */
#define HOOK_RETRY_MAX_MS 2000
#define EXEC_NOTES        4096 /* the last execs, by pid */
#define EXE_FILES         256  /* executables noted, by inode */

struct proc_entry {
	uint32_t pid;
	uint64_t start_ns;
	struct resource *res; /* one reference, the cache's */
	uint64_t retry_ms;    /* the hook left it incomplete: rebuild from then on (0: no) */
	unsigned tries;
	struct proc_entry *hash_next;
	struct proc_entry *older; /* LRU list: least recently used first */
	struct proc_entry *newer;
};

/* An exec the kernel reported: what is left of a process gone too soon. */
struct exec_note {
	uint32_t pid;
	uint32_t dev;
	uint64_t start_ns;
	uint64_t ino;
	char name[40]; /* the kernel's copy: at most 31 bytes (pscope_proc_event) */
};

struct exe_file {
	uint64_t ino;
	uint32_t dev;
	bool go;
	char *path; /* NULL: slot unused */
};

struct attr_pair {
	char *key;
	char *value;
};

struct proc_info_cache {
	char *proc_root;
	char host_name[HOST_NAME_LEN];
	struct attr_pair *agent_attrs;
	size_t n_agent_attrs;
	struct proc_entry **buckets;
	size_t n_buckets; /* a power of two */
	size_t n_entries;
	size_t max_entries;
	struct proc_entry *oldest;
	struct proc_entry *newest;
	proc_info_hook_fn hook;
	void *hook_ctx;
	struct exec_note *notes; /* EXEC_NOTES, allocated at the first exec */
	struct exe_file *exes;   /* EXE_FILES */
};

/* ---- OTEL_RESOURCE_ATTRIBUTES ---- */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Trims s[0..n), percent-decodes it into out (n + 1 bytes), NUL-terminated.
 * Invalid %-sequences are kept as they are. Returns the decoded length. */
static size_t decode_part(const char *s, size_t n, char *out)
{
	size_t o = 0;

	while (n && is_space(*s)) {
		s++;
		n--;
	}
	while (n && is_space(s[n - 1]))
		n--;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;

		if (s[i] == '%' && i + 2 < n && (hi = hex_digit(s[i + 1])) >= 0 &&
		    (lo = hex_digit(s[i + 2])) >= 0) {
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return o;
}

int proc_info_parse_attrs(const char *list, size_t len,
                          int (*fn)(void *ctx, const char *key, const char *value), void *ctx)
{
	const char *end;
	const char *entry = list;
	char *scratch;
	int rc = 0;

	if (!list || !len)
		return 0;
	end = list + len;
	scratch = malloc(len + 2);
	if (!scratch)
		return -ENOMEM;
	while (entry < end && rc == 0) {
		const char *comma = memchr(entry, ',', (size_t)(end - entry));
		const char *entry_end = comma ? comma : end;
		const char *eq = memchr(entry, '=', (size_t)(entry_end - entry));

		if (eq) {
			size_t key_len = decode_part(entry, (size_t)(eq - entry), scratch);
			char *value = scratch + key_len + 1;

			decode_part(eq + 1, (size_t)(entry_end - eq - 1), value);
			if (key_len && strlen(scratch) == key_len)
				rc = fn(ctx, scratch, value);
		}
		entry = entry_end + 1;
	}
	free(scratch);
	return rc;
}

/* Agent-wide attributes must not rename or misdescribe the observed process. */
static bool agent_attr_allowed(const char *key)
{
	return strncmp(key, "service.", 8) && strncmp(key, "process.", 8) &&
	       strncmp(key, "telemetry.sdk.", 14);
}

static int collect_agent_attr(void *ctx, const char *key, const char *value)
{
	struct proc_info_cache *c = ctx;
	struct attr_pair *grown;
	char *key_copy, *value_copy;

	if (!agent_attr_allowed(key))
		return 0;
	for (size_t i = 0; i < c->n_agent_attrs; i++) {
		if (!strcmp(c->agent_attrs[i].key, key)) {
			/* a later duplicate wins */
			value_copy = strdup(value);
			if (!value_copy)
				return -ENOMEM;
			free(c->agent_attrs[i].value);
			c->agent_attrs[i].value = value_copy;
			return 0;
		}
	}
	grown = realloc(c->agent_attrs, (c->n_agent_attrs + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	c->agent_attrs = grown;
	key_copy = strdup(key);
	value_copy = strdup(value);
	if (!key_copy || !value_copy) {
		free(key_copy);
		free(value_copy);
		return -ENOMEM;
	}
	c->agent_attrs[c->n_agent_attrs].key = key_copy;
	c->agent_attrs[c->n_agent_attrs].value = value_copy;
	c->n_agent_attrs++;
	return 0;
}

/* ---- cache ---- */

struct proc_info_cache *
proc_info_cache__new_at(const char *proc_root, const char *agent_resource_attrs, size_t max_entries)
{
	struct proc_info_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->proc_root = strdup(proc_root ? proc_root : "/proc");
	c->n_buckets = INITIAL_BUCKETS;
	c->buckets = calloc(c->n_buckets, sizeof(*c->buckets));
	c->max_entries = max_entries ? max_entries : PROC_INFO_MAX_ENTRIES;
	if (!c->proc_root || !c->buckets)
		goto cleanup;
	if (gethostname(c->host_name, sizeof(c->host_name) - 1) < 0)
		c->host_name[0] = '\0';
	if (agent_resource_attrs &&
	    proc_info_parse_attrs(agent_resource_attrs, strlen(agent_resource_attrs),
	                          collect_agent_attr, c) < 0)
		goto cleanup;
	return c;
cleanup:
	proc_info_cache__free(c);
	return NULL;
}

struct proc_info_cache *proc_info_cache__new(const char *agent_resource_attrs)
{
	return proc_info_cache__new_at("/proc", agent_resource_attrs, 0);
}

void proc_info_cache__free(struct proc_info_cache *c)
{
	struct proc_entry *e, *next;

	if (!c)
		return;
	for (e = c->oldest; e; e = next) {
		next = e->newer;
		resource_unref(e->res);
		free(e);
	}
	for (size_t i = 0; i < c->n_agent_attrs; i++) {
		free(c->agent_attrs[i].key);
		free(c->agent_attrs[i].value);
	}
	free(c->agent_attrs);
	for (size_t i = 0; c->exes && i < EXE_FILES; i++)
		free(c->exes[i].path);
	free(c->exes);
	free(c->notes);
	free(c->buckets);
	free(c->proc_root);
	free(c);
}

size_t proc_info_count(const struct proc_info_cache *c)
{
	return c ? c->n_entries : 0;
}

static size_t bucket_of(const struct proc_info_cache *c, uint32_t pid)
{
	return (size_t)((pid * 2654435761u) >> 8) & (c->n_buckets - 1);
}

static struct proc_entry *lookup(struct proc_info_cache *c, uint32_t pid)
{
	struct proc_entry *e;

	for (e = c->buckets[bucket_of(c, pid)]; e; e = e->hash_next)
		if (e->pid == pid)
			return e;
	return NULL;
}

static void lru_unlink(struct proc_info_cache *c, struct proc_entry *e)
{
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	e->older = e->newer = NULL;
}

static void lru_push_newest(struct proc_info_cache *c, struct proc_entry *e)
{
	e->older = c->newest;
	e->newer = NULL;
	if (c->newest)
		c->newest->newer = e;
	else
		c->oldest = e;
	c->newest = e;
}

static void remove_entry(struct proc_info_cache *c, struct proc_entry *e)
{
	struct proc_entry **link = &c->buckets[bucket_of(c, e->pid)];

	while (*link && *link != e)
		link = &(*link)->hash_next;
	if (*link)
		*link = e->hash_next;
	lru_unlink(c, e);
	c->n_entries--;
	resource_unref(e->res);
	free(e);
}

/* Doubles the bucket array when the chains grow long; failure only costs speed. */
static void maybe_grow(struct proc_info_cache *c)
{
	size_t n = c->n_buckets * 2;
	struct proc_entry **buckets;
	struct proc_entry *e;

	if (c->n_entries < c->n_buckets || n > SIZE_MAX / sizeof(*buckets))
		return;
	buckets = calloc(n, sizeof(*buckets));
	if (!buckets)
		return;
	free(c->buckets);
	c->buckets = buckets;
	c->n_buckets = n;
	for (e = c->oldest; e; e = e->newer) {
		size_t b = bucket_of(c, e->pid);

		e->hash_next = c->buckets[b];
		c->buckets[b] = e;
	}
}

void proc_info_forget(struct proc_info_cache *c, uint32_t pid)
{
	struct proc_entry *e = c ? lookup(c, pid) : NULL;

	if (e)
		remove_entry(c, e);
}

/* ---- reading /proc ---- */

/* Reads at most max bytes of path into a new buffer; NULL if unreadable. */
static char *read_file(const char *path, size_t max, size_t *len)
{
	size_t cap = 4096, used = 0;
	char *buf = NULL;
	int fd;

	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(cap);
	if (!buf)
		goto cleanup;
	for (;;) {
		ssize_t n;

		if (used == cap) {
			char *grown;

			if (cap >= max)
				break;
			cap = cap * 2 > max ? max : cap * 2;
			grown = realloc(buf, cap);
			if (!grown)
				break;
			buf = grown;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t)n;
	}
	*len = used;
cleanup:
	close(fd);
	return buf;
}

/* The value of NAME in a NUL-separated environment block, or NULL. */
static const char *environ_get(const char *env, size_t len, const char *name, size_t *value_len)
{
	size_t name_len = strlen(name);
	size_t i = 0;

	while (i < len) {
		const char *entry = env + i;
		const char *nul = memchr(entry, '\0', len - i);
		size_t entry_len = nul ? (size_t)(nul - entry) : len - i;

		if (entry_len > name_len && !memcmp(entry, name, name_len) &&
		    entry[name_len] == '=') {
			*value_len = entry_len - name_len - 1;
			return entry + name_len + 1;
		}
		i += entry_len + 1;
	}
	return NULL;
}

static const char *sdk_language(const char *exe)
{
	if (!strncmp(exe, "python", 6))
		return "python";
	if (!strcmp(exe, "node") || !strcmp(exe, "nodejs"))
		return "nodejs";
	if (!strcmp(exe, "java"))
		return "java";
	if (!strncmp(exe, "ruby", 4))
		return "ruby";
	if (!strncmp(exe, "php", 3))
		return "php";
	return NULL;
}

/* Whether the ELF file at path was built by Go: it has a .go.buildinfo
 * section (every Go toolchain since 1.13). Reads only the section headers. */
static bool exe_is_go(const char *path)
{
	Elf64_Ehdr eh;
	Elf64_Shdr *sh = NULL, strs;
	char *names = NULL;
	bool go = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	if (pread(fd, &eh, sizeof(eh), 0) != (ssize_t)sizeof(eh) ||
	    memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh.e_shentsize != sizeof(Elf64_Shdr) || !eh.e_shnum || eh.e_shnum > 4096 ||
	    eh.e_shstrndx >= eh.e_shnum)
		goto cleanup;
	sh = calloc(eh.e_shnum, sizeof(*sh));
	if (!sh || pread(fd, sh, eh.e_shnum * sizeof(*sh), (off_t)eh.e_shoff) !=
	               (ssize_t)(eh.e_shnum * sizeof(*sh)))
		goto cleanup;
	strs = sh[eh.e_shstrndx];
	if (!strs.sh_size || strs.sh_size > (1u << 20))
		goto cleanup;
	names = calloc(1, strs.sh_size + 1);
	if (!names ||
	    pread(fd, names, strs.sh_size, (off_t)strs.sh_offset) != (ssize_t)strs.sh_size)
		goto cleanup;
	for (size_t i = 0; i < eh.e_shnum && !go; i++)
		go =
		    sh[i].sh_name < strs.sh_size && !strcmp(names + sh[i].sh_name, ".go.buildinfo");
cleanup:
	free(names);
	free(sh);
	close(fd);
	return go;
}

static bool has_attr(const struct resource *r, const char *key)
{
	for (size_t i = 0; i < r->n_attrs; i++)
		if (!strcmp(r->attrs[i].key, key))
			return true;
	return false;
}

static int add_if_absent(void *ctx, const char *key, const char *value)
{
	struct resource *r = ctx;

	return has_attr(r, key) ? 0 : resource_add_str(r, key, value);
}

static int find_service_name(void *ctx, const char *key, const char *value)
{
	char *out = ctx;

	if (strcmp(key, "service.name") || !value[0])
		return 0;
	snprintf(out, NAME_MAX + 1, "%s", value);
	return 0; /* keep going: a later duplicate wins */
}

/* What the process is, from /proc or the fallbacks. */
struct proc_facts {
	char exe_path[PATH_MAX];
	char exe_name[NAME_MAX + 1];
	char service_name[NAME_MAX + 1];
	char *environ;
	size_t environ_len;
	const char *resource_attrs; /* in environ */
	size_t resource_attrs_len;
	bool noted;    /* exe_path and exe_name from the exec's note (the process is gone) */
	bool noted_go; /* and Go built it */
};

static void read_exe(const struct proc_info_cache *c, uint32_t pid, struct proc_facts *f)
{
	static const char deleted[] = " (deleted)";
	char path[PATH_MAX];
	const char *base;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%u/exe", c->proc_root, pid);
	n = readlink(path, f->exe_path, sizeof(f->exe_path) - 1);
	if (n <= 0) {
		f->exe_path[0] = '\0';
		return;
	}
	f->exe_path[n] = '\0';
	/* the binary was replaced (an upgrade) after the process started */
	if ((size_t)n > sizeof(deleted) - 1 &&
	    !strcmp(f->exe_path + n - (sizeof(deleted) - 1), deleted))
		f->exe_path[n - (sizeof(deleted) - 1)] = '\0';
	base = strrchr(f->exe_path, '/');
	base = base ? base + 1 : f->exe_path;
	snprintf(f->exe_name, sizeof(f->exe_name), "%s", base);
}

/* The kernel task name: /proc/PID/comm, else the caller's copy. */
static void read_comm(const struct proc_info_cache *c, uint32_t pid, const char *comm_fallback,
                      struct proc_facts *f)
{
	char path[PATH_MAX];
	size_t len = 0;
	char *comm;

	snprintf(path, sizeof(path), "%s/%u/comm", c->proc_root, pid);
	comm = read_file(path, 64, &len);
	while (comm && len && (comm[len - 1] == '\n' || comm[len - 1] == '\0'))
		len--;
	if (comm && len && !memchr(comm, '\0', len))
		snprintf(f->exe_name, sizeof(f->exe_name), "%.*s", (int)len, comm);
	else if (comm_fallback && comm_fallback[0])
		snprintf(f->exe_name, sizeof(f->exe_name), "%.*s",
		         (int)strnlen(comm_fallback, COMM_LEN), comm_fallback);
	free(comm);
}

static void read_environ(const struct proc_info_cache *c, uint32_t pid, struct proc_facts *f)
{
	char path[PATH_MAX];
	const char *v;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/%u/environ", c->proc_root, pid);
	f->environ = read_file(path, ENVIRON_MAX, &f->environ_len);
	if (!f->environ)
		return;
	v = environ_get(f->environ, f->environ_len, "OTEL_SERVICE_NAME", &len);
	/* trimmed; an empty value means unset */
	while (v && len && is_space(*v)) {
		v++;
		len--;
	}
	while (v && len && is_space(v[len - 1]))
		len--;
	if (v && len)
		snprintf(f->service_name, sizeof(f->service_name), "%.*s", (int)len, v);
	f->resource_attrs = environ_get(f->environ, f->environ_len, "OTEL_RESOURCE_ATTRIBUTES",
	                                &f->resource_attrs_len);
	if (!f->service_name[0] && f->resource_attrs)
		proc_info_parse_attrs(f->resource_attrs, f->resource_attrs_len, find_service_name,
		                      f->service_name);
}

/* No OTEL_SERVICE_NAME: the name the process's owner gave it — its systemd
 * service, else the script or module its interpreter runs (service_name.h). */
static void read_owner_name(const struct proc_info_cache *c, uint32_t pid, struct proc_facts *f)
{
	struct container_identity id;
	char path[PATH_MAX], cwd[PATH_MAX];
	size_t len = 0;
	char *cmdline;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%u/cgroup", c->proc_root, pid);
	if (container_id_read(path, &id) >= 0 && id.unit[0] &&
	    service_name_from_unit(id.unit, f->service_name, sizeof(f->service_name)))
		return;
	if (!f->exe_name[0])
		return;
	snprintf(path, sizeof(path), "%s/%u/cmdline", c->proc_root, pid);
	cmdline = read_file(path, SERVICE_NAME_CMDLINE_MAX, &len);
	if (!cmdline)
		return;
	snprintf(path, sizeof(path), "%s/%u/cwd", c->proc_root, pid);
	n = readlink(path, cwd, sizeof(cwd) - 1);
	cwd[n > 0 ? n : 0] = '\0';
	service_name_from_cmdline(f->exe_name, cmdline, len, cwd, f->service_name,
	                          sizeof(f->service_name));
	free(cmdline);
}

static struct exe_file *exe_slot(const struct proc_info_cache *c, uint32_t dev, uint64_t ino)
{
	return &c->exes[(ino ^ dev) % EXE_FILES];
}

/* /proc no longer has pid: its executable as noted at its exec, if noted. */
static void noted_exe(const struct proc_info_cache *c, uint32_t pid, uint64_t start_ns,
                      struct proc_facts *f)
{
	const struct exec_note *n;
	const struct exe_file *x;

	if (!c->notes)
		return;
	n = &c->notes[pid % EXEC_NOTES];
	if (n->pid != pid || (start_ns && n->start_ns != start_ns))
		return;
	x = exe_slot(c, n->dev, n->ino);
	if (x->path && x->ino == n->ino && x->dev == n->dev) {
		snprintf(f->exe_path, sizeof(f->exe_path), "%s", x->path);
		f->noted_go = x->go;
	}
	snprintf(f->exe_name, sizeof(f->exe_name), "%s", n->name);
	f->noted = true;
}

void proc_info_note_exec(struct proc_info_cache *c, uint32_t pid, uint64_t proc_start_ns,
                         const char *exe_name, uint32_t exe_dev, uint64_t exe_ino)
{
	struct exec_note *n;
	struct exe_file *x;
	struct proc_facts *f;
	char exe[PATH_MAX];

	if (!c || !exe_ino)
		return;
	if (!c->notes && !(c->notes = calloc(EXEC_NOTES, sizeof(*c->notes))))
		return;
	if (!c->exes && !(c->exes = calloc(EXE_FILES, sizeof(*c->exes))))
		return;
	n = &c->notes[pid % EXEC_NOTES];
	n->pid = pid;
	n->start_ns = proc_start_ns;
	n->dev = exe_dev;
	n->ino = exe_ino;
	snprintf(n->name, sizeof(n->name), "%s", exe_name ? exe_name : "");
	x = exe_slot(c, exe_dev, exe_ino);
	if (x->path && x->ino == exe_ino && x->dev == exe_dev)
		return; /* known: nothing to read */
	f = calloc(1, sizeof(*f));
	if (!f)
		return;
	read_exe(c, pid, f);
	if (f->exe_path[0]) {
		char *path = strdup(f->exe_path);

		if (path) {
			free(x->path);
			x->path = path;
			x->ino = exe_ino;
			x->dev = exe_dev;
			snprintf(exe, sizeof(exe), "%s/%u/exe", c->proc_root, pid);
			x->go = !sdk_language(f->exe_name) && exe_is_go(exe);
		}
	}
	free(f);
}

static struct resource *build_resource(const struct proc_info_cache *c, uint32_t pid,
                                       uint64_t start_ns, const char *comm_fallback,
                                       bool *incomplete)
{
	struct proc_facts *f = calloc(1, sizeof(*f));
	struct resource *r = NULL;
	const char *language;
	bool from_env;
	int err = 0; /* any failure: a negative errno */

	if (!f)
		return NULL;
	read_exe(c, pid, f);
	if (!f->exe_path[0])
		noted_exe(c, pid, start_ns, f);
	if (!f->exe_name[0])
		read_comm(c, pid, comm_fallback, f);
	read_environ(c, pid, f);
	from_env = f->service_name[0] != '\0';
	if (!f->service_name[0])
		read_owner_name(c, pid, f);
	if (!f->service_name[0])
		snprintf(f->service_name, sizeof(f->service_name), "%s",
		         f->exe_name[0] ? f->exe_name : "unknown_service");

	r = resource__new(pid, start_ns);
	if (!r)
		goto cleanup;
	err |= resource_add_str(r, "service.name", f->service_name);
	err |= resource_add_int(r, "process.pid", pid);
	if (f->exe_name[0])
		err |= resource_add_str(r, "process.executable.name", f->exe_name);
	if (f->exe_path[0])
		err |= resource_add_str(r, "process.executable.path", f->exe_path);
	if (c->host_name[0])
		err |= resource_add_str(r, "host.name", c->host_name);
	err |= resource_add_str(r, "telemetry.sdk.name", "periscope");
	err |= resource_add_str(r, "telemetry.sdk.version", PERISCOPE_VERSION);
	language = sdk_language(f->exe_name);
	if (!language && f->noted_go)
		language = "go";
	else if (!language && f->exe_path[0] && !f->noted) {
		char exe[PATH_MAX];

		/* through /proc: the path may be another mount namespace's */
		snprintf(exe, sizeof(exe), "%s/%u/exe", c->proc_root, pid);
		if (exe_is_go(exe))
			language = "go";
	}
	if (language)
		err |= resource_add_str(r, "telemetry.sdk.language", language);
	if (f->resource_attrs)
		err |= proc_info_parse_attrs(f->resource_attrs, f->resource_attrs_len,
		                             add_if_absent, r);
	for (size_t i = 0; i < c->n_agent_attrs; i++)
		err |= add_if_absent(r, c->agent_attrs[i].key, c->agent_attrs[i].value);
	if (!err && c->hook)
		*incomplete = c->hook(c->hook_ctx, pid, r, from_env) == 1;
	if (err) {
		resource_unref(r);
		r = NULL;
	}
cleanup:
	free(f->environ);
	free(f);
	return r;
}

void proc_info_set_hook(struct proc_info_cache *c, proc_info_hook_fn fn, void *ctx)
{
	if (c) {
		c->hook = fn;
		c->hook_ctx = ctx;
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Schedules the next rebuild of a resource the hook left incomplete. */
static void schedule_retry(struct proc_entry *e, bool incomplete)
{
	uint64_t delay = HOOK_RETRY_MS << (e->tries < 5 ? e->tries : 5);

	if (!incomplete || ++e->tries > HOOK_RETRIES) {
		e->retry_ms = 0;
		return;
	}
	e->retry_ms = now_ms() + (delay < HOOK_RETRY_MAX_MS ? delay : HOOK_RETRY_MAX_MS);
}

/* Builds an incomplete resource again once its time has come. */
static void maybe_rebuild(struct proc_info_cache *c, struct proc_entry *e,
                          const char *comm_fallback)
{
	bool incomplete = false;
	struct resource *r;

	if (!e->retry_ms || now_ms() < e->retry_ms)
		return;
	r = build_resource(c, e->pid, e->start_ns, comm_fallback, &incomplete);
	if (r) {
		resource_unref(e->res);
		e->res = r;
	}
	schedule_retry(e, incomplete);
}

struct resource *proc_info_get(struct proc_info_cache *c, uint32_t pid, uint64_t proc_start_ns,
                               const char *comm_fallback)
{
	bool incomplete = false;
	struct proc_entry *e;
	size_t b;

	if (!c)
		return NULL;
	e = lookup(c, pid);
	if (e && (e->start_ns == proc_start_ns || !proc_start_ns || !e->start_ns)) {
		if (!e->start_ns)
			e->start_ns = proc_start_ns;
		lru_unlink(c, e);
		lru_push_newest(c, e);
		maybe_rebuild(c, e, comm_fallback);
		return e->res;
	}
	if (e)
		remove_entry(c, e); /* the pid now belongs to another process */

	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->res = build_resource(c, pid, proc_start_ns, comm_fallback, &incomplete);
	if (!e->res) {
		free(e);
		return NULL;
	}
	e->pid = pid;
	e->start_ns = proc_start_ns;
	schedule_retry(e, incomplete);
	while (c->n_entries >= c->max_entries && c->oldest)
		remove_entry(c, c->oldest);
	maybe_grow(c);
	b = bucket_of(c, pid);
	e->hash_next = c->buckets[b];
	c->buckets[b] = e;
	lru_push_newest(c, e);
	c->n_entries++;
	return e->res;
}
