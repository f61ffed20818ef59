/* test_container_meta.c — the proc_info hook end to end on a fake /proc and a
 * fake containerd state root: a pod's container gets container.id, k8s.* and
 * its workload's service.name; the process's own OTEL_SERVICE_NAME stays
 * first; a host process and a plain (non-pod) container keep their naming;
 * a container whose bundle appears later is resolved on a later get; the
 * Deployment is recognised from ReplicaSet-style pod names. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "telemetry/container_meta.h"
#include "telemetry/oci_bundle.h"
#include "telemetry/proc_info.h"
#include "telemetry/resource.h"
#include "unit.h"

#define ID1 "1111111111111111111111111111111111111111111111111111111111111111"
#define ID2 "2222222222222222222222222222222222222222222222222222222222222222"
#define ID3 "3333333333333333333333333333333333333333333333333333333333333333"
#define UID "8d5c6a2e-1b2f-4c3d-9e8f-0a1b2c3d4e5f"

static char root[] = "/tmp/periscope-cmeta-XXXXXX";

/* mkdir -p of path's directory (no shell: a test makes thousands of files). */
static int make_parents(const char *path)
{
	char dir[1024];

	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static void put(const char *rel, const char *data, size_t len)
{
	char path[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	CHECK_EQ_INT(make_parents(path), 0);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fwrite(data, 1, len, f);
	fclose(f);
}

static void fake_proc(unsigned pid, const char *cgroup, const char *environ, size_t env_len)
{
	char rel[256], path[1024];

	snprintf(rel, sizeof(rel), "proc/%u/cgroup", pid);
	put(rel, cgroup, strlen(cgroup));
	snprintf(rel, sizeof(rel), "proc/%u/comm", pid);
	put(rel, "server\n", 7);
	snprintf(path, sizeof(path), "%s/proc/%u/exe", root, pid);
	CHECK(symlink("/usr/bin/busybox", path) == 0);
	if (environ) {
		snprintf(rel, sizeof(rel), "proc/%u/environ", pid);
		put(rel, environ, env_len);
	}
}

static void bundle(const char *id, const char *pod, const char *container)
{
	char rel[256], json[2048];

	snprintf(rel, sizeof(rel),
	         "run/containerd/io.containerd.runtime.v2.task/k8s.io/%s/config.json", id);
	snprintf(json, sizeof(json),
	         "{\"ociVersion\":\"1.0.2\",\"process\":{\"env\":[\"PATH=/bin\"]},"
	         "\"annotations\":{\"io.kubernetes.cri.container-type\":\"container\","
	         "\"io.kubernetes.cri.container-name\":\"%s\","
	         "\"io.kubernetes.cri.sandbox-name\":\"%s\","
	         "\"io.kubernetes.cri.sandbox-namespace\":\"shop\","
	         "\"io.kubernetes.cri.sandbox-uid\":\"" UID "\"}}",
	         container, pod);
	put(rel, json, strlen(json));
}

static const char *attr(struct resource *r, const char *key)
{
	const char *v = resource_get_str(r, key);

	return v ? v : "(none)";
}

static void test_hook(void)
{
	char proc[512];
	struct oci_bundle_paths *paths = oci_bundle_paths__new(root, true);
	struct container_meta_config mc = {.paths = paths, .node_name = "node-a"};
	struct container_meta *m;
	struct proc_info_cache *c;
	struct container_meta_stats st;
	struct resource *r;
	static const char env[] = "OTEL_SERVICE_NAME=mine\0HOME=/";

	snprintf(proc, sizeof(proc), "%s/proc", root);
	mc.proc_root = proc;
	m = container_meta__new(&mc);
	c = proc_info_cache__new_at(proc, NULL, 0);
	CHECK(paths && m && c);
	if (!paths || !m || !c)
		goto cleanup;
	proc_info_set_hook(c, container_meta_hook, m);

	bundle(ID1, "orders-7d9f8b6c5d-x2x9k", "app");
	bundle(ID2, "orders-7d9f8b6c5d-q8w7z", "app");
	fake_proc(100, "0::/kubepods/besteffort/pod" UID "/" ID1 "\n", NULL, 0);
	fake_proc(101,
	          "12:memory:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
	          "8d5c6a2e_1b2f_4c3d_9e8f_0a1b2c3d4e5f.slice/cri-containerd-" ID2 ".scope\n"
	          "0::/\n",
	          NULL, 0);
	fake_proc(102, "0::/kubepods/besteffort/pod" UID "/" ID1 "\n", env, sizeof(env));
	fake_proc(103, "0::/user.slice/user-0.slice/session-1.scope\n", NULL, 0);
	fake_proc(104, "0::/default/" ID3 "\n", NULL, 0); /* plain containerd, no bundle yet */

	r = proc_info_get(c, 100, 1, NULL);
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ_STR(attr(r, "service.name"), "orders");
		CHECK_EQ_STR(attr(r, "container.id"), ID1);
		CHECK_EQ_STR(attr(r, "container.runtime"), "containerd");
		CHECK_EQ_STR(attr(r, "k8s.pod.name"), "orders-7d9f8b6c5d-x2x9k");
		CHECK_EQ_STR(attr(r, "k8s.namespace.name"), "shop");
		CHECK_EQ_STR(attr(r, "k8s.pod.uid"), UID);
		CHECK_EQ_STR(attr(r, "k8s.container.name"), "app");
		CHECK_EQ_STR(attr(r, "k8s.node.name"), "node-a");
		CHECK_EQ_STR(attr(r, "k8s.deployment.name"), "orders");
		CHECK_EQ_STR(attr(r, "service.namespace"), "shop");
		CHECK_EQ_STR(attr(r, "service.instance.id"), "shop.orders-7d9f8b6c5d-x2x9k.app");
		CHECK_EQ_STR(r->attrs[0].key, "service.name");
	}
	r = proc_info_get(c, 101, 1, NULL); /* systemd driver, v1 line */
	CHECK(r != NULL);
	if (r) {
		CHECK_EQ_STR(attr(r, "service.name"), "orders");
		CHECK_EQ_STR(attr(r, "k8s.pod.name"), "orders-7d9f8b6c5d-q8w7z");
		CHECK_EQ_STR(attr(r, "container.id"), ID2);
	}
	r = proc_info_get(c, 102, 1, NULL); /* its own OTEL_SERVICE_NAME wins */
	if (r) {
		CHECK_EQ_STR(attr(r, "service.name"), "mine");
		CHECK_EQ_STR(attr(r, "k8s.pod.name"), "orders-7d9f8b6c5d-x2x9k");
	}
	r = proc_info_get(c, 103, 1, NULL); /* a host process: nothing added */
	if (r) {
		CHECK_EQ_STR(attr(r, "service.name"), "busybox");
		CHECK_EQ_STR(attr(r, "container.id"), "(none)");
		CHECK_EQ_STR(attr(r, "k8s.node.name"), "(none)");
	}
	r = proc_info_get(c, 104, 1, NULL); /* a container, bundle not there yet */
	if (r) {
		CHECK_EQ_STR(attr(r, "container.id"), ID3);
		CHECK_EQ_STR(attr(r, "k8s.pod.name"), "(none)");
	}
	/* its bundle appears (a pod's): the next get after the retry delay has it */
	{
		char rel[256], json[512];

		snprintf(rel, sizeof(rel),
		         "run/containerd/io.containerd.runtime.v2.task/default/%s/config.json",
		         ID3);
		snprintf(json, sizeof(json),
		         "{\"annotations\":{\"io.kubernetes.cri.container-name\":\"web\","
		         "\"io.kubernetes.cri.sandbox-name\":\"web-0\","
		         "\"io.kubernetes.cri.sandbox-namespace\":\"default\"}}");
		put(rel, json, strlen(json));
	}
	usleep(1200 * 1000); /* past the negative cache and the first retry delay */
	r = proc_info_get(c, 104, 1, NULL);
	if (r) {
		CHECK_EQ_STR(attr(r, "k8s.pod.name"), "web-0");
		CHECK_EQ_STR(attr(r, "service.name"), "web-0"); /* no workload from "web-0" */
	}
	container_meta_get_stats(m, &st);
	CHECK_EQ_INT(st.lookups, 6);
	CHECK_EQ_INT(st.containers, 5);
	CHECK(st.bundle_reads >= 3 && st.bundle_reads <= 4); /* ID1 read once for 100 and 102 */
	CHECK_EQ_INT(st.cached, 3);
	container_meta_expire(m, 0);
	container_meta_get_stats(m, &st);
	CHECK_EQ_INT(st.cached, 0);
cleanup:
	proc_info_cache__free(c);
	container_meta__free(m);
	oci_bundle_paths__free(paths);
}

/* More containers than the bundle cache holds: slots are taken in order, the cache holds
 * CONTAINER_META_MAX_CACHED, the least recently used is replaced once it is full, and every
 * process is named from its own bundle across that boundary. */
static void test_cache_fills_then_replaces(void)
{
	enum { N = CONTAINER_META_MAX_CACHED + 6 };
	char proc[512];
	struct oci_bundle_paths *paths = oci_bundle_paths__new(root, true);
	struct container_meta_config mc = {.paths = paths, .node_name = "node-a"};
	struct container_meta *m;
	struct proc_info_cache *c;
	struct container_meta_stats st;
	int wrong = 0;

	snprintf(proc, sizeof(proc), "%s/proc", root);
	mc.proc_root = proc;
	m = container_meta__new(&mc);
	c = proc_info_cache__new_at(proc, NULL, 0);
	CHECK(paths && m && c);
	if (!paths || !m || !c)
		goto cleanup;
	proc_info_set_hook(c, container_meta_hook, m);
	for (int i = 0; i < N; i++) {
		char id[65], pod[64], cgroup[200];
		struct resource *r;

		snprintf(id, sizeof(id), "%064x", 0xc0000 + i);
		snprintf(pod, sizeof(pod), "fill-%d", i);
		snprintf(cgroup, sizeof(cgroup), "0::/kubepods/besteffort/pod" UID "/%s\n", id);
		bundle(id, pod, "app");
		fake_proc(20000 + (unsigned)i, cgroup, NULL, 0);
		r = proc_info_get(c, 20000 + (uint32_t)i, 1, NULL);
		if (!r || strcmp(attr(r, "k8s.pod.name"), pod))
			wrong++;
		if (i == CONTAINER_META_MAX_CACHED - 1) {
			container_meta_get_stats(m, &st);
			CHECK_EQ_INT(st.cached, CONTAINER_META_MAX_CACHED);
		}
	}
	CHECK_EQ_INT(wrong, 0);
	container_meta_get_stats(m, &st);
	CHECK_EQ_INT(st.cached, CONTAINER_META_MAX_CACHED);
	CHECK_EQ_INT(st.bundle_reads, N);
	container_meta_expire(m, 0);
	container_meta_get_stats(m, &st);
	CHECK_EQ_INT(st.cached, 0);
cleanup:
	proc_info_cache__free(c);
	container_meta__free(m);
	oci_bundle_paths__free(paths);
}

static void test_deployment_from_pod_name(void)
{
	char out[256];

	CHECK_EQ_INT(
	    container_meta_deployment_from_pod_name("orders-7d9f8b6c5d-x2x9k", out, sizeof(out)),
	    1);
	CHECK_EQ_STR(out, "orders");
	CHECK_EQ_INT(
	    container_meta_deployment_from_pod_name("my-app-5f8b9c7d6-abcde", out, sizeof(out)),
	    0); /* 'a' and 'e' are not in the hash alphabet */
	CHECK_EQ_INT(container_meta_deployment_from_pod_name("web-0", out, sizeof(out)), 0);
	CHECK_EQ_INT(container_meta_deployment_from_pod_name("fluentd-x7k2p", out, sizeof(out)), 0);
	CHECK_EQ_INT(container_meta_deployment_from_pod_name("", out, sizeof(out)), 0);
	CHECK_EQ_INT(container_meta_deployment_from_pod_name(NULL, out, sizeof(out)), 0);
}

int main(void)
{
	char cmd[600];

	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_hook);
	RUN(test_cache_fills_then_replaces);
	RUN(test_deployment_from_pod_name);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", root);
	return unit_summary("test_container_meta");
}
