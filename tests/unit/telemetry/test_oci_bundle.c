/* test_oci_bundle.c — config.json samples shaped as containerd (CRI) and
 * CRI-O write them, for containers and pod sandboxes; malformed, oversized
 * and incomplete files; finding bundles under runtime state directories
 * below a host-root prefix in a temporary directory. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "telemetry/oci_bundle.h"
#include "unit.h"

#define CID  "f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830"
#define SBID "8d2a3b9c0e1f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f901a2b3c4"
#define UID  "dd1bf9d1-241d-47f5-8e25-12de83135812"

/* As containerd 1.7's CRI plugin writes it for an application container
 * (abridged: fewer mounts and capabilities). */
static const char containerd_container[] =
    "{\"ociVersion\":\"1.1.0\",\"process\":{\"user\":{\"uid\":0,\"gid\":0,"
    "\"additionalGids\":[0,10]},\"args\":[\"python3\",\"app.py\"],\"env\":["
    "\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\","
    "\"HOSTNAME=orders-7d9f8b6c5d-x2x9k\",\"OTEL_SERVICE_NAME=orders-api\","
    "\"OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod,team=shop\","
    "\"OTEL_SERVICE_NAME=second-definition\","
    "\"KUBERNETES_SERVICE_HOST=10.96.0.1\",\"KUBERNETES_PORT_443_TCP_PORT=443\"],"
    "\"cwd\":\"/app\",\"capabilities\":{\"bounding\":[\"CAP_CHOWN\",\"CAP_NET_BIND_SERVICE\"],"
    "\"effective\":[\"CAP_CHOWN\"],\"permitted\":[\"CAP_CHOWN\"]},\"apparmorProfile\":"
    "\"cri-containerd.apparmor.d\",\"oomScoreAdj\":1000},\"root\":{\"path\":\"rootfs\"},"
    "\"mounts\":[{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\"]},{\"destination\":\"/etc/hosts\","
    "\"type\":\"bind\",\"source\":\"/var/lib/kubelet/pods/" UID "/etc-hosts\","
    "\"options\":[\"rbind\",\"rprivate\",\"rw\"]}],"
    "\"annotations\":{\"io.kubernetes.cri.container-name\":\"app\","
    "\"io.kubernetes.cri.container-type\":\"container\","
    "\"io.kubernetes.cri.image-name\":\"registry.example/shop/orders:1.4.2\","
    "\"io.kubernetes.cri.sandbox-id\":\"" SBID "\","
    "\"io.kubernetes.cri.sandbox-name\":\"orders-7d9f8b6c5d-x2x9k\","
    "\"io.kubernetes.cri.sandbox-namespace\":\"shop\","
    "\"io.kubernetes.cri.sandbox-uid\":\"" UID "\"},"
    "\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}],"
    "\"memory\":{\"limit\":268435456},\"cpu\":{\"shares\":102,\"quota\":50000,"
    "\"period\":100000}},\"cgroupsPath\":\"kubepods-besteffort-pod"
    "dd1bf9d1_241d_47f5_8e25_12de83135812.slice:cri-containerd:" CID "\","
    "\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"ipc\",\"path\":\"/proc/4242/ns/ipc\"},"
    "{\"type\":\"mount\"}],\"maskedPaths\":[\"/proc/kcore\"],\"readonlyPaths\":[\"/proc/bus\"]}}\n";

/* The same pod's sandbox (pause) container. */
static const char containerd_sandbox[] =
    "{\"ociVersion\":\"1.1.0\",\"process\":{\"user\":{\"uid\":65535,\"gid\":65535},"
    "\"args\":[\"/pause\"],\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
    "/sbin:/bin\"],\"cwd\":\"/\",\"noNewPrivileges\":true,\"oomScoreAdj\":-998},"
    "\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":\"orders-7d9f8b6c5d-x2x9k\","
    "\"annotations\":{\"io.kubernetes.cri.container-type\":\"sandbox\","
    "\"io.kubernetes.cri.sandbox-cpu-period\":\"100000\","
    "\"io.kubernetes.cri.sandbox-id\":\"" SBID "\","
    "\"io.kubernetes.cri.sandbox-log-directory\":\"/var/log/pods/shop_orders-7d9f8b6c5d-x2x9k_" UID
    "\",\"io.kubernetes.cri.sandbox-name\":\"orders-7d9f8b6c5d-x2x9k\","
    "\"io.kubernetes.cri.sandbox-namespace\":\"shop\","
    "\"io.kubernetes.cri.sandbox-uid\":\"" UID "\"},"
    "\"linux\":{\"cgroupsPath\":\"kubepods-besteffort-poddd1bf9d1_241d_47f5_8e25_12de83135812"
    ".slice:cri-containerd:" SBID "\"}}";

/* As CRI-O writes it for an application container (abridged). */
static const char crio_container[] =
    "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"user\":{\"uid\":1000,\"gid\":1000},"
    "\"args\":[\"/usr/bin/node\",\"server.js\"],\"env\":[\"PATH=/usr/bin:/bin\","
    "\"TERM=xterm\",\"HOSTNAME=checkout-0\",\"NODE_ENV=production\"],\"cwd\":\"/srv\"},"
    "\"root\":{\"path\":\"/var/lib/containers/storage/overlay/3c1b/merged\"},"
    "\"hostname\":\"checkout-0\",\"annotations\":{"
    "\"io.container.manager\":\"cri-o\",\"io.kubernetes.container.hash\":\"8a4f6e1b\","
    "\"io.kubernetes.container.name\":\"checkout\","
    "\"io.kubernetes.container.restartCount\":\"0\","
    "\"io.kubernetes.cri-o.ContainerID\":\"" CID "\","
    "\"io.kubernetes.cri-o.ContainerType\":\"container\","
    "\"io.kubernetes.cri-o.Labels\":\"{\\\"io.kubernetes.container.name\\\":\\\"checkout\\\","
    "\\\"io.kubernetes.pod.name\\\":\\\"checkout-0\\\"}\","
    "\"io.kubernetes.cri-o.SandboxID\":\"" SBID "\","
    "\"io.kubernetes.pod.name\":\"checkout-0\",\"io.kubernetes.pod.namespace\":\"payments\","
    "\"io.kubernetes.pod.uid\":\"7b4e2f18-0c3d-4a59-9e6f-21d8c7a5b304\","
    "\"resource.opentelemetry.io/service.name\":\"checkout-svc\"},"
    "\"linux\":{\"cgroupsPath\":\"kubepods-burstable-pod7b4e2f18_0c3d_4a59_9e6f_21d8c7a5b304"
    ".slice:crio:" CID "\"}}";

/* CRI-O's infra container. */
static const char crio_sandbox[] =
    "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"args\":[\"/pause\"],\"env\":[]},"
    "\"annotations\":{\"io.kubernetes.container.name\":\"POD\","
    "\"io.kubernetes.cri-o.ContainerType\":\"sandbox\","
    "\"io.kubernetes.pod.name\":\"checkout-0\",\"io.kubernetes.pod.namespace\":\"payments\","
    "\"io.kubernetes.pod.uid\":\"7b4e2f18-0c3d-4a59-9e6f-21d8c7a5b304\"}}";

static int parse(const char *s, struct oci_bundle_info *info)
{
	return oci_bundle_parse(s, strlen(s), info);
}

static void test_containerd_container(void)
{
	struct oci_bundle_info b;
	CHECK_EQ_INT(parse(containerd_container, &b), 0);
	CHECK_EQ_INT(b.flavor, OCI_FLAVOR_CONTAINERD_CRI);
	CHECK_EQ_INT(b.type, OCI_TYPE_CONTAINER);
	CHECK_EQ_STR(b.pod_name, "orders-7d9f8b6c5d-x2x9k");
	CHECK_EQ_STR(b.pod_namespace, "shop");
	CHECK_EQ_STR(b.pod_uid, UID);
	CHECK_EQ_STR(b.container_name, "app");
	CHECK_EQ_STR(b.sandbox_id, SBID);
	CHECK_EQ_STR(b.otel_service_name, "orders-api"); /* the first definition */
	CHECK_EQ_STR(b.otel_resource_attributes, "deployment.environment=prod,team=shop");
	CHECK_EQ_STR(b.annotation_service_name, "");
	CHECK_EQ_INT(b.dropped, 0);
}

static void test_containerd_sandbox(void)
{
	struct oci_bundle_info b;
	CHECK_EQ_INT(parse(containerd_sandbox, &b), 0);
	CHECK_EQ_INT(b.flavor, OCI_FLAVOR_CONTAINERD_CRI);
	CHECK_EQ_INT(b.type, OCI_TYPE_SANDBOX);
	CHECK_EQ_STR(b.pod_name, "orders-7d9f8b6c5d-x2x9k");
	CHECK_EQ_STR(b.container_name, "");
	CHECK_EQ_STR(b.otel_service_name, "");
}

static void test_crio(void)
{
	struct oci_bundle_info b;
	CHECK_EQ_INT(parse(crio_container, &b), 0);
	CHECK_EQ_INT(b.flavor, OCI_FLAVOR_CRIO);
	CHECK_EQ_INT(b.type, OCI_TYPE_CONTAINER);
	CHECK_EQ_STR(b.pod_name, "checkout-0");
	CHECK_EQ_STR(b.pod_namespace, "payments");
	CHECK_EQ_STR(b.pod_uid, "7b4e2f18-0c3d-4a59-9e6f-21d8c7a5b304");
	CHECK_EQ_STR(b.container_name, "checkout");
	CHECK_EQ_STR(b.sandbox_id, SBID);
	CHECK_EQ_STR(b.annotation_service_name, "checkout-svc");
	CHECK_EQ_STR(b.otel_service_name, "");
	CHECK_EQ_INT(parse(crio_sandbox, &b), 0);
	CHECK_EQ_INT(b.flavor, OCI_FLAVOR_CRIO);
	CHECK_EQ_INT(b.type, OCI_TYPE_SANDBOX);
	CHECK_EQ_STR(b.container_name, "POD");
	/* "POD" alone (no ContainerType) also means the infra container. */
	CHECK_EQ_INT(parse("{\"annotations\":{\"io.kubernetes.container.name\":\"POD\","
	                   "\"io.kubernetes.pod.name\":\"p\"}}",
	                   &b),
	             0);
	CHECK_EQ_INT(b.type, OCI_TYPE_SANDBOX);
}

static void test_malformed(void)
{
	struct oci_bundle_info b;
	const char *bad[] = {
	    "",
	    "{",
	    "{\"annotations\":{\"io.kubernetes.cri.sandbox-name\":\"x\"",
	    "{\"a\":1} trailing",
	    "{\"a\":1}{\"b\":2}",
	    "[1,2,3]",
	    "\"just a string\"",
	    "null",
	    "{'single':'quotes'}",
	    "{\"a\":1,}",
	    "{\"a\":01}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int before = unit_failed_checks;
		CHECK_EQ_INT(parse(bad[i], &b), -EBADMSG);
		if (unit_failed_checks != before)
			fprintf(stderr, "  input %zu: %s\n", i, bad[i]);
		CHECK_EQ_STR(b.pod_name, "");
	}
	/* Nesting deeper than the limit. */
	char deep[2 * 200 + 1];
	for (int i = 0; i < 200; i++) {
		deep[i] = '[';
		deep[200 + i] = ']';
	}
	deep[400] = '\0';
	char wrapped[sizeof(deep) + 16];
	snprintf(wrapped, sizeof(wrapped), "{\"x\":%s}", deep);
	CHECK_EQ_INT(parse(wrapped, &b), -EBADMSG);
	/* A NUL inside the buffer ends the JSON text: the rest is garbage. */
	const char nul[] = "{\"a\":1}\0{\"b\":2}";
	CHECK_EQ_INT(oci_bundle_parse(nul, sizeof(nul) - 1, &b), -EBADMSG);
	CHECK_EQ_INT(oci_bundle_parse(NULL, 0, &b), -EINVAL);
	CHECK_EQ_INT(oci_bundle_parse("{}", 2, NULL), -EINVAL);
	/* Whitespace after the object is fine. */
	CHECK_EQ_INT(parse("{}\n\n  \t", &b), 0);
}

static void test_missing_and_wrong_types(void)
{
	struct oci_bundle_info b;
	CHECK_EQ_INT(parse("{}", &b), 0);
	CHECK_EQ_INT(b.flavor, OCI_FLAVOR_NONE);
	CHECK_EQ_INT(b.type, OCI_TYPE_UNKNOWN);
	CHECK_EQ_INT(parse("{\"annotations\":5,\"process\":{\"env\":\"PATH=/bin\"}}", &b), 0);
	CHECK_EQ_INT(b.flavor, OCI_FLAVOR_NONE);
	CHECK_EQ_INT(parse("{\"process\":[],\"annotations\":[]}", &b), 0);
	/* Non-string values are left out and counted. */
	CHECK_EQ_INT(parse("{\"annotations\":{\"io.kubernetes.cri.sandbox-name\":42,"
	                   "\"io.kubernetes.cri.sandbox-namespace\":\"ns\","
	                   "\"io.kubernetes.cri.container-type\":[\"sandbox\"]},"
	                   "\"process\":{\"env\":[7,null,\"OTEL_SERVICE_NAME=\"]}}",
	                   &b),
	             0);
	CHECK_EQ_STR(b.pod_name, "");
	CHECK_EQ_STR(b.pod_namespace, "ns");
	CHECK_EQ_INT(b.type, OCI_TYPE_UNKNOWN);
	CHECK_EQ_INT(b.dropped, 2);
	CHECK_EQ_STR(b.otel_service_name, "");
	/* A NUL inside a value. */
	CHECK_EQ_INT(
	    parse("{\"annotations\":{\"io.kubernetes.cri.sandbox-name\":\"a\\u0000b\"}}", &b), 0);
	CHECK_EQ_STR(b.pod_name, "");
	CHECK_EQ_INT(b.dropped, 1);
	/* An unknown container type is not taken for either. */
	CHECK_EQ_INT(parse("{\"annotations\":{\"io.kubernetes.cri.container-type\":\"vm\"}}", &b),
	             0);
	CHECK_EQ_INT(b.type, OCI_TYPE_UNKNOWN);
	CHECK_EQ_INT(b.flavor, OCI_FLAVOR_CONTAINERD_CRI);
}

static void test_huge_values(void)
{
	struct oci_bundle_info b;
	size_t big = 300000;
	char *s = malloc(big + 4096);
	CHECK(s != NULL);
	if (!s)
		return;
	/* A 254-byte pod name (over the cap), a 253-byte one (at it), a
	 * 2000-byte OTEL_RESOURCE_ATTRIBUTES and a 300 kB annotation. */
	size_t n = 0;
	n += (size_t)snprintf(s + n, big + 4096 - n,
	                      "{\"annotations\":{\"io.kubernetes.cri.sandbox-name\":\"");
	memset(s + n, 'p', 254), n += 254;
	n += (size_t)snprintf(s + n, big + 4096 - n, "\",\"io.kubernetes.cri.container-name\":\"");
	memset(s + n, 'c', 253), n += 253;
	n += (size_t)snprintf(s + n, big + 4096 - n, "\",\"some.huge/annotation\":\"");
	memset(s + n, 'h', big), n += big;
	n += (size_t)snprintf(s + n, big + 4096 - n,
	                      "\"},\"process\":{\"env\":[\"OTEL_RESOURCE_ATTRIBUTES=");
	memset(s + n, 'a', 2000), n += 2000;
	n += (size_t)snprintf(s + n, big + 4096 - n, "\",\"OTEL_SERVICE_NAME=ok\"]}}");
	CHECK_EQ_INT(oci_bundle_parse(s, n, &b), 0);
	CHECK_EQ_STR(b.pod_name, "");
	CHECK_EQ_INT(strlen(b.container_name), 253);
	CHECK_EQ_STR(b.otel_resource_attributes, "");
	CHECK_EQ_STR(b.otel_service_name, "ok");
	CHECK_EQ_INT(b.dropped, 2);
	free(s);
	/* Over 4 MiB in memory. */
	char *huge = malloc(OCI_BUNDLE_MAX_FILE + 1);
	CHECK(huge != NULL);
	if (huge) {
		memset(huge, ' ', OCI_BUNDLE_MAX_FILE + 1);
		CHECK_EQ_INT(oci_bundle_parse(huge, OCI_BUNDLE_MAX_FILE + 1, &b), -EFBIG);
		free(huge);
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs(content, f);
	fclose(f);
}

/* mkdir -p of dir, then write name in it. */
static void put(const char *root, const char *dir, const char *content)
{
	char path[4096], cmd[8192];
	snprintf(path, sizeof(path), "%s%s", root, dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", path);
	CHECK(system(cmd) == 0);
	strncat(path, "/config.json", sizeof(path) - strlen(path) - 1);
	write_file(path, content);
}

static void test_files_and_locate(void)
{
	char root[] = "/tmp/test_oci_bundle_XXXXXX";
	CHECK(mkdtemp(root) != NULL);
	struct oci_bundle_info b;
	char path[4096];

	put(root, "/run/containerd/io.containerd.runtime.v2.task/k8s.io/" CID,
	    containerd_container);
	put(root, "/run/containerd/io.containerd.runtime.v2.task/default/" SBID,
	    containerd_sandbox);
	put(root, "/run/containers/storage/overlay-containers/" CID "x/userdata", crio_container);
	put(root, "/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/abc123",
	    "{\"annotations\":{}}");

	/* A DaemonSet that mounts the host's / at root. */
	struct oci_bundle_paths *p = oci_bundle_paths__new(root, true);
	CHECK(p != NULL);
	if (!p)
		goto cleanup;
	CHECK_EQ_INT(oci_bundle_locate(p, CID, NULL, path, sizeof(path)), 0);
	CHECK(strstr(path, "/k8s.io/" CID "/config.json") != NULL);
	CHECK_EQ_INT(oci_bundle_load(p, CID, NULL, &b), 0);
	CHECK_EQ_STR(b.container_name, "app");
	/* Another containerd namespace: found by the scan, or by the hint. */
	CHECK_EQ_INT(oci_bundle_load(p, SBID, NULL, &b), 0);
	CHECK_EQ_INT(b.type, OCI_TYPE_SANDBOX);
	CHECK_EQ_INT(oci_bundle_load(p, SBID, "default", &b), 0);
	CHECK_EQ_INT(b.type, OCI_TYPE_SANDBOX);
	/* CRI-O and Docker layouts. */
	CHECK_EQ_INT(oci_bundle_load(p, CID "x", NULL, &b), 0);
	CHECK_EQ_STR(b.pod_name, "checkout-0");
	CHECK_EQ_INT(oci_bundle_locate(p, "abc123", NULL, path, sizeof(path)), 0);
	CHECK(strstr(path, "/moby/abc123/config.json") != NULL);
	/* Unknown and hostile ids. */
	CHECK_EQ_INT(oci_bundle_load(p, "0123456789abcdef", NULL, &b), -ENOENT);
	CHECK_EQ_INT(oci_bundle_locate(p, "../../etc", NULL, path, sizeof(path)), -EINVAL);
	CHECK_EQ_INT(oci_bundle_locate(p, "a/b", NULL, path, sizeof(path)), -EINVAL);
	CHECK_EQ_INT(oci_bundle_locate(p, "", NULL, path, sizeof(path)), -EINVAL);
	CHECK_EQ_INT(oci_bundle_locate(p, ".hidden", NULL, path, sizeof(path)), -EINVAL);
	/* A hostile namespace hint is ignored, not followed. */
	CHECK_EQ_INT(oci_bundle_locate(p, CID, "../..", path, sizeof(path)), 0);
	CHECK_EQ_INT(oci_bundle_locate(p, CID, NULL, path, 10), -ENAMETOOLONG);
	oci_bundle_paths__free(p);

	/* Without the host-root prefix nothing is found there. */
	p = oci_bundle_paths__new(NULL, false);
	CHECK(p != NULL);
	if (!p)
		goto cleanup;
	CHECK_EQ_INT(oci_bundle_locate(p, CID, NULL, path, sizeof(path)), -ENOENT);
	/* A configured root of its own. */
	snprintf(path, sizeof(path), "%s/run/containerd/io.containerd.runtime.v2.task", root);
	CHECK_EQ_INT(oci_bundle_paths_add(p, OCI_LAYOUT_CONTAINERD, path), 0);
	CHECK_EQ_INT(oci_bundle_paths_add(p, OCI_LAYOUT_CONTAINERD, "relative/dir"), -EINVAL);
	CHECK_EQ_INT(oci_bundle_locate(p, CID, NULL, path, sizeof(path)), 0);
	for (int i = 0; i < 40; i++)
		oci_bundle_paths_add(p, OCI_LAYOUT_CRIO, "/nonexistent");
	CHECK_EQ_INT(oci_bundle_paths_add(p, OCI_LAYOUT_CRIO, "/one-more"), -ENOSPC);
	oci_bundle_paths__free(p);
	oci_bundle_paths__free(NULL);

	/* Files: oversize (sparse), a directory, a FIFO, missing, malformed. */
	snprintf(path, sizeof(path), "%s/big.json", root);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		CHECK(ftruncate(fileno(f), OCI_BUNDLE_MAX_FILE + 1) == 0);
		fclose(f);
	}
	CHECK_EQ_INT(oci_bundle_read_file(path, &b), -EFBIG);
	CHECK_EQ_INT(oci_bundle_read_file(root, &b), -EBADMSG);
	snprintf(path, sizeof(path), "%s/fifo", root);
	CHECK(mkfifo(path, 0600) == 0);
	CHECK_EQ_INT(oci_bundle_read_file(path, &b), -EBADMSG);
	snprintf(path, sizeof(path), "%s/missing.json", root);
	CHECK_EQ_INT(oci_bundle_read_file(path, &b), -ENOENT);
	snprintf(path, sizeof(path), "%s/bad.json", root);
	write_file(path, "{\"annotations\": {\"io.kubernetes.cri.sandbox-name\": ");
	CHECK_EQ_INT(oci_bundle_read_file(path, &b), -EBADMSG);
cleanup:
	nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	RUN(test_containerd_container);
	RUN(test_containerd_sandbox);
	RUN(test_crio);
	RUN(test_malformed);
	RUN(test_missing_and_wrong_types);
	RUN(test_huge_values);
	RUN(test_files_and_locate);
	return unit_summary("test_oci_bundle");
}
