/* test_proc_info.c — process resources from a fake /proc tree (exe link,
 * environ, comm, gone processes, pid reuse, eviction, exec notes, agent
 * attributes) and
 * from the real /proc with a child started with OTEL_SERVICE_NAME=foo. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "telemetry/proc_info.h"
#include "telemetry/resource.h"
#include "unit.h"

static char root[] = "/tmp/periscope-proc-XXXXXX";

static void write_file(const char *rel, const char *data, size_t len)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fwrite(data, 1, len, f);
	fclose(f);
}

/* A fake /proc/PID with an exe link (may be NULL), environ (may be NULL) and comm. */
static void fake_proc(unsigned pid, const char *exe, const char *environ, size_t environ_len,
                      const char *comm)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%u", root, pid);
	mkdir(path, 0755);
	if (exe) {
		snprintf(path, sizeof(path), "%s/%u/exe", root, pid);
		unlink(path);
		CHECK(symlink(exe, path) == 0);
	}
	if (environ) {
		snprintf(path, sizeof(path), "%u/environ", pid);
		write_file(path, environ, environ_len);
	}
	if (comm) {
		snprintf(path, sizeof(path), "%u/comm", pid);
		write_file(path, comm, strlen(comm));
	}
}

static void remove_tree(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK(system(cmd) == 0);
}

/* The integer attribute key of r, or -1. */
static int64_t get_int(const struct resource *r, const char *key)
{
	for (size_t i = 0; i < r->n_attrs; i++)
		if (!strcmp(r->attrs[i].key, key) && !r->attrs[i].str)
			return r->attrs[i].num;
	return -1;
}

static const char *get_str(const struct resource *r, const char *key)
{
	const char *v = resource_get_str(r, key);

	return v ? v : "(none)";
}

static void test_fake_tree(void)
{
	static const char env100[] = "PATH=/usr/bin\0OTEL_SERVICE_NAME=checkout\0"
	                             "OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod, "
	                             "service.name=ignored,team=a%20b%2Cc,bad,=novalue,"
	                             "host.name=container-host,telemetry.sdk.name=other\0";
	static const char env400[] = "X=1\0OTEL_RESOURCE_ATTRIBUTES=service.name=from%20attrs\0"
	                             "OTEL_SERVICE_NAME=\0";
	struct proc_info_cache *c;
	struct resource *r;
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	fake_proc(100, "/usr/bin/python3.11", env100, sizeof(env100) - 1, "python3");
	fake_proc(200, "/usr/sbin/nginx (deleted)", NULL, 0, "nginx");
	fake_proc(400, "/opt/app/bin/ruby3.1", env400, sizeof(env400) - 1, NULL);
	fake_proc(500, NULL, NULL, 0, "kworker/0:1\n"); /* no exe: a kernel thread */
	c = proc_info_cache__new_at(root,
	                            "k8s.node.name=node-1,service.name=agent,process.pid=1,"
	                            "deployment.environment=staging",
	                            0);
	CHECK(c != NULL);
	if (!c)
		return;

	r = proc_info_get(c, 100, 1000, "python3");
	CHECK(r != NULL);
	CHECK_EQ_INT(r->pid, 100);
	CHECK_EQ_INT(r->proc_start_ns, 1000);
	CHECK_EQ_STR(r->attrs[0].key, "service.name");
	CHECK_EQ_STR(get_str(r, "service.name"), "checkout");
	CHECK_EQ_INT(get_int(r, "process.pid"), 100);
	CHECK_EQ_STR(get_str(r, "process.executable.name"), "python3.11");
	CHECK_EQ_STR(get_str(r, "process.executable.path"), "/usr/bin/python3.11");
	CHECK_EQ_STR(get_str(r, "telemetry.sdk.name"), "periscope");
	CHECK_EQ_STR(get_str(r, "telemetry.sdk.version"), PERISCOPE_VERSION);
	CHECK_EQ_STR(get_str(r, "telemetry.sdk.language"), "python");
	/* the process's own attributes, percent-decoded and trimmed; they beat the agent's */
	CHECK_EQ_STR(get_str(r, "deployment.environment"), "prod");
	CHECK_EQ_STR(get_str(r, "team"), "a b,c");
	CHECK_EQ_STR(get_str(r, "host.name"), host);
	CHECK_EQ_STR(get_str(r, "k8s.node.name"), "node-1");
	CHECK(resource_get_str(r, "bad") == NULL);
	/* the agent's service.name / process.pid never apply to other processes */
	CHECK_EQ_INT(get_int(r, "process.pid"), 100);
	/* cached: the same pointer, nothing re-read */
	CHECK(proc_info_get(c, 100, 1000, NULL) == r);
	CHECK(proc_info_get(c, 100, 0, NULL) == r); /* 0: any start time */
	CHECK_EQ_INT(proc_info_count(c), 1);

	r = proc_info_get(c, 200, 2000, NULL);
	CHECK_EQ_STR(get_str(r, "service.name"), "nginx");
	CHECK_EQ_STR(get_str(r, "process.executable.path"), "/usr/sbin/nginx");
	CHECK(resource_get_str(r, "telemetry.sdk.language") == NULL);
	CHECK_EQ_STR(get_str(r, "deployment.environment"), "staging");

	/* gone from /proc: the kernel's comm (16 bytes, no NUL) names it */
	r = proc_info_get(c, 300, 3000, "curl\0\0\0\0\0\0\0\0\0\0\0\0");
	CHECK_EQ_STR(get_str(r, "service.name"), "curl");
	CHECK_EQ_STR(get_str(r, "process.executable.name"), "curl");
	CHECK(resource_get_str(r, "process.executable.path") == NULL);
	r = proc_info_get(c, 301, 3000, "0123456789abcdefXYZ");
	CHECK_EQ_STR(get_str(r, "service.name"), "0123456789abcdef");
	r = proc_info_get(c, 302, 3000, NULL);
	CHECK_EQ_STR(get_str(r, "service.name"), "unknown_service");

	/* service.name from OTEL_RESOURCE_ATTRIBUTES when OTEL_SERVICE_NAME is empty */
	r = proc_info_get(c, 400, 4000, NULL);
	CHECK_EQ_STR(get_str(r, "service.name"), "from attrs");
	CHECK_EQ_STR(get_str(r, "telemetry.sdk.language"), "ruby");

	/* no exe link: /proc/PID/comm */
	r = proc_info_get(c, 500, 5000, "ignored");
	CHECK_EQ_STR(get_str(r, "service.name"), "kworker/0:1");

	CHECK_EQ_INT(proc_info_count(c), 7);
	proc_info_forget(c, 300);
	proc_info_forget(c, 300);
	proc_info_forget(c, 999);
	CHECK_EQ_INT(proc_info_count(c), 6);
	proc_info_cache__free(c);
	proc_info_cache__free(NULL);
}

/* No OTEL_SERVICE_NAME: the systemd service, else the interpreter's script,
 * else the executable; OTEL_SERVICE_NAME still wins over both. */
static void test_owner_names(void)
{
	static const char py[] = "/usr/bin/python3\0-u\0app.py\0--token=s3cret\0";
	static const char node[] = "node\0index.js\0";
	static const char env[] = "OTEL_SERVICE_NAME=explicit\0";
	static const struct {
		unsigned pid;
		const char *exe, *cmdline;
		size_t cmdline_len;
		const char *cgroup, *env, *want;
	} cases[] = {
	    {700, "/usr/bin/python3.11", py, sizeof(py) - 1, "0::/user.slice/session-3.scope\n",
	     NULL, "app"},
	    {701, "/usr/bin/python3.11", py, sizeof(py) - 1,
	     "1:name=systemd:/system.slice/orders.service\n0::/system.slice/orders.service\n", NULL,
	     "orders"},
	    {702, "/usr/bin/python3.11", py, sizeof(py) - 1, "0::/system.slice/app@2.service\n",
	     env, "explicit"},
	    {703, "/usr/sbin/nginx", "nginx: worker process", 21, "0::/system.slice/cron.service\n",
	     NULL, "nginx"},
	    {704, "/usr/bin/node", node, sizeof(node) - 1, "0::/\n", NULL, "front"},
	    {705, "/usr/bin/node", node, sizeof(node) - 1, "0::/system.slice/app@2.service\n", NULL,
	     "app"},
	};
	char path[512];
	struct proc_info_cache *c = proc_info_cache__new_at(root, NULL, 0);

	CHECK(c != NULL);
	if (!c)
		return;
	snprintf(path, sizeof(path), "%s/srv-front", root);
	mkdir(path, 0755);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		unsigned pid = cases[i].pid;
		fake_proc(pid, cases[i].exe, cases[i].env,
		          cases[i].env ? strlen(cases[i].env) + 1 : 0, NULL);
		snprintf(path, sizeof(path), "%u/cmdline", pid);
		write_file(path, cases[i].cmdline, cases[i].cmdline_len);
		snprintf(path, sizeof(path), "%u/cgroup", pid);
		write_file(path, cases[i].cgroup, strlen(cases[i].cgroup));
		char link[512], target[512];
		snprintf(link, sizeof(link), "%s/%u/cwd", root, pid);
		snprintf(target, sizeof(target), "%s/srv-front", root);
		unlink(link);
		CHECK(symlink(target, link) == 0);
		struct resource *r = proc_info_get(c, pid, 1, NULL);
		CHECK(r != NULL);
		if (!r)
			continue;
		if (!strcmp(cases[i].want, "front")) /* the cwd's basename */
			CHECK_EQ_STR(get_str(r, "service.name"), "srv-front");
		else
			CHECK_EQ_STR(get_str(r, "service.name"), cases[i].want);
		/* the command line's arguments are never kept */
		for (size_t k = 0; k < r->n_attrs; k++)
			CHECK(!r->attrs[k].str || !strstr(r->attrs[k].str, "s3cret"));
	}
	proc_info_cache__free(c);
}

static void test_pid_reuse(void)
{
	struct proc_info_cache *c = proc_info_cache__new_at(root, NULL, 0);
	struct resource *r, *kept;

	fake_proc(600, "/usr/bin/old", NULL, 0, NULL);
	r = proc_info_get(c, 600, 111, NULL);
	CHECK_EQ_STR(get_str(r, "service.name"), "old");
	kept = resource_ref(r); /* as a span would */
	/* the pid is reused by another program */
	fake_proc(600, "/usr/bin/new", NULL, 0, NULL);
	CHECK(proc_info_get(c, 600, 111, NULL) == r); /* same process: cached */
	r = proc_info_get(c, 600, 222, NULL);
	CHECK_EQ_STR(get_str(r, "service.name"), "new");
	CHECK_EQ_INT(r->proc_start_ns, 222);
	CHECK_EQ_INT(proc_info_count(c), 1);
	/* the old resource stays valid for whoever holds a reference */
	CHECK_EQ_STR(get_str(kept, "service.name"), "old");
	CHECK_EQ_INT(kept->refcount, 1);
	resource_unref(kept);
	proc_info_cache__free(c);
}

static void test_eviction(void)
{
	struct proc_info_cache *c = proc_info_cache__new_at(root, NULL, 3);
	struct resource *r1;

	r1 = proc_info_get(c, 1, 1, "one");
	proc_info_get(c, 2, 1, "two");
	proc_info_get(c, 3, 1, "three");
	CHECK(proc_info_get(c, 1, 1, NULL) == r1); /* 1 is now the most recent */
	proc_info_get(c, 4, 1, "four");            /* evicts 2, the least recent */
	CHECK_EQ_INT(proc_info_count(c), 3);
	CHECK(proc_info_get(c, 1, 1, NULL) == r1);
	CHECK_EQ_STR(get_str(proc_info_get(c, 3, 1, NULL), "service.name"), "three");
	/* 2 was rebuilt (from its new fallback), evicting 4 */
	CHECK_EQ_STR(get_str(proc_info_get(c, 2, 1, "again"), "service.name"), "again");
	CHECK_EQ_INT(proc_info_count(c), 3);
	proc_info_cache__free(c);

	/* many entries: the table grows and stays bounded */
	c = proc_info_cache__new_at(root, NULL, 5000);
	for (uint32_t pid = 10000; pid < 30000; pid++)
		CHECK(proc_info_get(c, pid, pid, "x") != NULL);
	CHECK_EQ_INT(proc_info_count(c), 5000);
	CHECK_EQ_STR(get_str(proc_info_get(c, 29999, 29999, NULL), "service.name"), "x");
	for (uint32_t pid = 25000; pid < 30000; pid++)
		proc_info_forget(c, pid);
	CHECK_EQ_INT(proc_info_count(c), 0);
	proc_info_cache__free(c);
}

static int count_pair(void *ctx, const char *key, const char *value)
{
	char *out = ctx;
	size_t n = strlen(out);

	snprintf(out + n, 256 - n, "[%s=%s]", key, value);
	return 0;
}

static int stop_at_b(void *ctx, const char *key, const char *value)
{
	count_pair(ctx, key, value);
	return strcmp(key, "b") ? 0 : 7;
}

/* A process gone before its resource is built: executable name, path and
 * language from its exec's note; the executable read once, for its first
 * process; a reused pid does not get the old note. */
static void test_exec_notes(void)
{
	struct proc_info_cache *c = proc_info_cache__new_at(root, NULL, 0);
	char path[512];
	struct resource *r;

	fake_proc(5101, "/opt/tools/fetch", NULL, 0, "fetch");
	proc_info_note_exec(c, 5101, 900, "fetch", 7, 4321);
	snprintf(path, sizeof(path), "rm -rf '%s/5101'", root);
	CHECK(system(path) == 0); /* gone */
	r = proc_info_get(c, 5101, 900, "fe");
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ_STR(get_str(r, "process.executable.path"), "/opt/tools/fetch");
		CHECK_EQ_STR(get_str(r, "process.executable.name"), "fetch");
		CHECK_EQ_STR(get_str(r, "service.name"), "fetch");
	}
	/* the same file again, never in /proc: nothing to read, the path is known */
	proc_info_note_exec(c, 5102, 901, "fetch", 7, 4321);
	r = proc_info_get(c, 5102, 901, "fe");
	CHECK(r != NULL);
	if (r)
		CHECK_EQ_STR(get_str(r, "process.executable.path"), "/opt/tools/fetch");
	/* another file with the same inode on another device is not that one */
	proc_info_note_exec(c, 5103, 902, "other", 8, 4321);
	r = proc_info_get(c, 5103, 902, "ot");
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ_STR(get_str(r, "process.executable.path"), "(none)");
		CHECK_EQ_STR(get_str(r, "process.executable.name"), "other");
	}
	/* pid 5102 reused by another process: not the note's */
	proc_info_forget(c, 5102);
	r = proc_info_get(c, 5102, 5555, "newcomm");
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ_STR(get_str(r, "process.executable.path"), "(none)");
		CHECK_EQ_STR(get_str(r, "service.name"), "newcomm");
	}
	proc_info_cache__free(c);
}

static void test_parse_attrs(void)
{
	char out[256] = "";
	const char *in = " a = 1 ,b=%41%4a%zz%4,,c=x=y,=v,%41=%2c,  ";

	CHECK_EQ_INT(proc_info_parse_attrs(in, strlen(in), count_pair, out), 0);
	CHECK_EQ_STR(out, "[a=1][b=AJ%zz%4][c=x=y][A=,]");
	out[0] = '\0';
	CHECK_EQ_INT(proc_info_parse_attrs(in, strlen(in), stop_at_b, out), 7);
	CHECK_EQ_STR(out, "[a=1][b=AJ%zz%4]");
	out[0] = '\0';
	CHECK_EQ_INT(proc_info_parse_attrs("k=v", 1, count_pair, out), 0); /* bounded by len */
	CHECK_EQ_STR(out, "");
	CHECK_EQ_INT(proc_info_parse_attrs("k%00x=v", 7, count_pair, out), 0);
	CHECK_EQ_STR(out, ""); /* a key with a NUL in it is skipped */
	CHECK_EQ_INT(proc_info_parse_attrs(NULL, 0, count_pair, out), 0);
}

/* ---- the real /proc ---- */

static void test_real_proc_child(void)
{
	struct proc_info_cache *c = proc_info_cache__new("k8s.node.name=n1");
	int sync_pipe[2];
	pid_t child;
	char b;

	CHECK(pipe2(sync_pipe, O_CLOEXEC) == 0);
	child = fork();
	if (child == 0) {
		char *argv[] = {"sleep", "30", NULL};
		char *envp[] = {"PATH=/usr/bin:/bin", "OTEL_SERVICE_NAME=foo",
		                "OTEL_RESOURCE_ATTRIBUTES=team=core", NULL};

		close(sync_pipe[0]);
		execve("/bin/sleep", argv, envp);
		_exit(127);
	}
	CHECK(child > 0);
	close(sync_pipe[1]);
	/* EOF once exec closed the child's end (O_CLOEXEC): the new image is in place */
	while (read(sync_pipe[0], &b, 1) < 0 && errno == EINTR)
		;
	close(sync_pipe[0]);

	struct resource *r = proc_info_get(c, (uint32_t)child, 77, "sleep");
	CHECK(r != NULL);
	if (r) {
		char expect_path[4096];
		ssize_t n;
		char link[64];

		CHECK_EQ_STR(get_str(r, "service.name"), "foo");
		CHECK_EQ_STR(get_str(r, "process.executable.name"), "sleep");
		snprintf(link, sizeof(link), "/proc/%d/exe", (int)child);
		n = readlink(link, expect_path, sizeof(expect_path) - 1);
		expect_path[n > 0 ? n : 0] = '\0';
		CHECK_EQ_STR(get_str(r, "process.executable.path"), expect_path);
		CHECK_EQ_INT(get_int(r, "process.pid"), child);
		CHECK_EQ_STR(get_str(r, "team"), "core");
		CHECK_EQ_STR(get_str(r, "k8s.node.name"), "n1");
		/* kept past the process's exit by a reference, like a queued span */
		resource_ref(r);
	}
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	proc_info_forget(c, (uint32_t)child);
	CHECK_EQ_INT(proc_info_count(c), 0);
	if (r) {
		CHECK_EQ_STR(get_str(r, "service.name"), "foo");
		resource_unref(r);
	}
	/* now gone: the fallback name */
	r = proc_info_get(c, (uint32_t)child, 78, "sleep\0\0\0\0\0\0\0\0\0\0\0");
	CHECK_EQ_STR(get_str(r, "service.name"), "sleep");
	CHECK(resource_get_str(r, "process.executable.path") == NULL);

	/* ourselves, as the agent asks for its own resource */
	r = proc_info_get(c, (uint32_t)getpid(), 0, "periscope");
	CHECK_EQ_STR(get_str(r, "process.executable.name"), "test_proc_info");
	proc_info_cache__free(c);
}

int main(void)
{
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_fake_tree);
	RUN(test_owner_names);
	RUN(test_pid_reuse);
	RUN(test_eviction);
	RUN(test_exec_notes);
	RUN(test_parse_attrs);
	RUN(test_real_proc_child);
	remove_tree();
	return unit_summary("test_proc_info");
}
