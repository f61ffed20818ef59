/* oci_bundle.c — reads Kubernetes annotations and OTEL_* environment from a
 * container's OCI bundle config.json with json-c, bounded in size, depth and
 * value length; finds the bundle under the runtimes' state directories. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "telemetry/oci_bundle.h"

#define MAX_ROOTS  32
#define ID_MAX_LEN 128

/* An annotation copied into a field of struct oci_bundle_info. */
struct annotation_rule {
	const char *key;
	enum oci_flavor flavor; /* NONE: says nothing of the runtime */
	size_t offset;
	size_t cap; /* the field's size */
};

#define FIELD(f) offsetof(struct oci_bundle_info, f), sizeof(((struct oci_bundle_info *)0)->f)

static const struct annotation_rule annotation_rules[] = {
    {"io.kubernetes.cri.sandbox-name", OCI_FLAVOR_CONTAINERD_CRI, FIELD(pod_name)},
    {"io.kubernetes.cri.sandbox-namespace", OCI_FLAVOR_CONTAINERD_CRI, FIELD(pod_namespace)},
    {"io.kubernetes.cri.sandbox-uid", OCI_FLAVOR_CONTAINERD_CRI, FIELD(pod_uid)},
    {"io.kubernetes.cri.container-name", OCI_FLAVOR_CONTAINERD_CRI, FIELD(container_name)},
    {"io.kubernetes.cri.sandbox-id", OCI_FLAVOR_CONTAINERD_CRI, FIELD(sandbox_id)},
    {"io.kubernetes.pod.name", OCI_FLAVOR_CRIO, FIELD(pod_name)},
    {"io.kubernetes.pod.namespace", OCI_FLAVOR_CRIO, FIELD(pod_namespace)},
    {"io.kubernetes.pod.uid", OCI_FLAVOR_CRIO, FIELD(pod_uid)},
    {"io.kubernetes.container.name", OCI_FLAVOR_CRIO, FIELD(container_name)},
    {"io.kubernetes.cri-o.SandboxID", OCI_FLAVOR_CRIO, FIELD(sandbox_id)},
    {"resource.opentelemetry.io/service.name", OCI_FLAVOR_NONE, FIELD(annotation_service_name)},
};

/* Annotations that say sandbox or container. */
static const struct {
	const char *key;
	enum oci_flavor flavor;
} type_keys[] = {
    {"io.kubernetes.cri.container-type", OCI_FLAVOR_CONTAINERD_CRI},
    {"io.kubernetes.cri-o.ContainerType", OCI_FLAVOR_CRIO},
};

/* process.env entries copied. */
static const struct {
	const char *prefix;
	size_t offset;
	size_t cap;
} env_rules[] = {
    {"OTEL_SERVICE_NAME=", FIELD(otel_service_name)},
    {"OTEL_RESOURCE_ATTRIBUTES=", FIELD(otel_resource_attributes)},
};

struct oci_root {
	enum oci_layout layout;
	char dir[PATH_MAX];
};

struct oci_bundle_paths {
	char host_root[PATH_MAX];
	struct oci_root roots[MAX_ROOTS];
	size_t n_roots;
};

static const struct {
	enum oci_layout layout;
	const char *dir;
} default_roots[] = {
    {OCI_LAYOUT_CONTAINERD, "/run/containerd/io.containerd.runtime.v2.task"},
    {OCI_LAYOUT_CONTAINERD, "/var/run/containerd/io.containerd.runtime.v2.task"},
    {OCI_LAYOUT_CONTAINERD, "/run/k3s/containerd/io.containerd.runtime.v2.task"},
    {OCI_LAYOUT_CRIO, "/run/containers/storage/overlay-containers"},
    {OCI_LAYOUT_CRIO, "/var/run/containers/storage/overlay-containers"},
    {OCI_LAYOUT_DIRECT, "/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby"},
    {OCI_LAYOUT_DIRECT, "/var/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby"},
};

/* Copies a JSON string into a field of cap bytes; false (and nothing
 * copied) when it is not a string, is too long or holds a NUL. */
static bool copy_string(const char *s, size_t n, char *dst, size_t cap)
{
	if (n >= cap || memchr(s, '\0', n))
		return false;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return true;
}

static bool copy_json_string(struct json_object *v, char *dst, size_t cap)
{
	if (!json_object_is_type(v, json_type_string))
		return false;
	return copy_string(json_object_get_string(v), (size_t)json_object_get_string_len(v), dst,
	                   cap);
}

static void mark_flavor(struct oci_bundle_info *out, enum oci_flavor f)
{
	/* containerd's keys win if a file somehow carries both. */
	if (f == OCI_FLAVOR_CONTAINERD_CRI ||
	    (f == OCI_FLAVOR_CRIO && out->flavor == OCI_FLAVOR_NONE))
		out->flavor = f;
}

static void read_annotations(struct json_object *ann, struct oci_bundle_info *out)
{
	struct json_object *v;

	for (size_t i = 0; i < sizeof(annotation_rules) / sizeof(annotation_rules[0]); i++) {
		const struct annotation_rule *r = &annotation_rules[i];
		if (!json_object_object_get_ex(ann, r->key, &v))
			continue;
		char *field = (char *)out + r->offset;
		/* The first family found fills a field; the other does not overwrite. */
		if (field[0])
			continue;
		if (!copy_json_string(v, field, r->cap)) {
			out->dropped++;
			continue;
		}
		if (r->flavor != OCI_FLAVOR_NONE)
			mark_flavor(out, r->flavor);
	}
	for (size_t i = 0; i < sizeof(type_keys) / sizeof(type_keys[0]); i++) {
		if (!json_object_object_get_ex(ann, type_keys[i].key, &v))
			continue;
		if (!json_object_is_type(v, json_type_string)) {
			out->dropped++;
			continue;
		}
		const char *s = json_object_get_string(v);
		mark_flavor(out, type_keys[i].flavor);
		if (strcmp(s, "sandbox") == 0)
			out->type = OCI_TYPE_SANDBOX;
		else if (strcmp(s, "container") == 0 && out->type == OCI_TYPE_UNKNOWN)
			out->type = OCI_TYPE_CONTAINER;
	}
	/* CRI-O and dockershim name the infra container "POD". */
	if (out->type == OCI_TYPE_UNKNOWN && out->flavor == OCI_FLAVOR_CRIO &&
	    strcmp(out->container_name, "POD") == 0)
		out->type = OCI_TYPE_SANDBOX;
}

static void read_env(struct json_object *env, struct oci_bundle_info *out)
{
	size_t n = json_object_array_length(env);

	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(env, i);
		if (!json_object_is_type(e, json_type_string))
			continue;
		const char *s = json_object_get_string(e);
		size_t len = (size_t)json_object_get_string_len(e);
		for (size_t k = 0; k < sizeof(env_rules) / sizeof(env_rules[0]); k++) {
			size_t pl = strlen(env_rules[k].prefix);
			char *field = (char *)out + env_rules[k].offset;
			/* The first definition wins, as getenv(3) finds it. */
			if (len < pl || memcmp(s, env_rules[k].prefix, pl) != 0 || field[0])
				continue;
			if (!copy_string(s + pl, len - pl, field, env_rules[k].cap))
				out->dropped++;
		}
	}
}

int oci_bundle_parse(const char *json, size_t len, struct oci_bundle_info *out)
{
	int ret = 0;
	struct json_tokener *tok = NULL;
	struct json_object *root = NULL, *v, *process, *env;

	if (!json || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (len > OCI_BUNDLE_MAX_FILE) {
		ret = -EFBIG;
		goto cleanup;
	}
	tok = json_tokener_new_ex(OCI_JSON_DEPTH);
	if (!tok) {
		ret = -ENOMEM;
		goto cleanup;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	root = json_tokener_parse_ex(tok, json, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(root, json_type_object)) {
		ret = -EBADMSG;
		goto cleanup;
	}
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
		if (json[i] != ' ' && json[i] != '\n' && json[i] != '\r' && json[i] != '\t') {
			ret = -EBADMSG;
			goto cleanup;
		}
	}
	if (json_object_object_get_ex(root, "annotations", &v) &&
	    json_object_is_type(v, json_type_object))
		read_annotations(v, out);
	if (json_object_object_get_ex(root, "process", &process) &&
	    json_object_is_type(process, json_type_object) &&
	    json_object_object_get_ex(process, "env", &env) &&
	    json_object_is_type(env, json_type_array))
		read_env(env, out);
cleanup:
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	json_object_put(root);
	if (tok)
		json_tokener_free(tok);
	return ret;
}

int oci_bundle_read_file(const char *path, struct oci_bundle_info *out)
{
	int ret = 0, fd = -1;
	char *buf = NULL;
	size_t got = 0;
	struct stat st;

	if (!path || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	/* O_NONBLOCK: a FIFO planted in place of the file must not hang us. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		goto cleanup;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EBADMSG;
		goto cleanup;
	}
	if (st.st_size > OCI_BUNDLE_MAX_FILE) {
		ret = -EFBIG;
		goto cleanup;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto cleanup;
	}
	/* Read one byte past the size seen, in case the file grew. */
	while (got <= (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > (size_t)st.st_size) {
		ret = -EFBIG;
		goto cleanup;
	}
	ret = oci_bundle_parse(buf, got, out);
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

struct oci_bundle_paths *oci_bundle_paths__new(const char *host_root, bool defaults)
{
	struct oci_bundle_paths *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (host_root) {
		size_t n = strlen(host_root);
		while (n > 0 && host_root[n - 1] == '/') /* "/" and "/host/" add no slash */
			n--;
		if (n >= sizeof(p->host_root)) {
			free(p);
			return NULL;
		}
		memcpy(p->host_root, host_root, n);
		p->host_root[n] = '\0';
	}
	for (size_t i = 0; defaults && i < sizeof(default_roots) / sizeof(default_roots[0]); i++)
		oci_bundle_paths_add(p, default_roots[i].layout, default_roots[i].dir);
	return p;
}

void oci_bundle_paths__free(struct oci_bundle_paths *p)
{
	free(p);
}

int oci_bundle_paths_add(struct oci_bundle_paths *p, enum oci_layout layout, const char *dir)
{
	int ret = 0;

	if (!p || !dir || dir[0] != '/') {
		ret = -EINVAL;
		goto cleanup;
	}
	if (p->n_roots == MAX_ROOTS) {
		ret = -ENOSPC;
		goto cleanup;
	}
	/* Built apart first: dir may be one of p's own strings. */
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s%s", p->host_root, dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		ret = -ENAMETOOLONG;
		goto cleanup;
	}
	struct oci_root *r = &p->roots[p->n_roots];
	memcpy(r->dir, path, (size_t)n + 1);
	r->layout = layout;
	p->n_roots++;
cleanup:
	return ret;
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > ID_MAX_LEN || id[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = id[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

/* Makes "<dir>/<mid><tail>"; 1 if it is a regular file, 0 if not, or
 * -ENAMETOOLONG. */
static int try_path(char *out, size_t cap, const char *dir, const char *mid, const char *tail)
{
	struct stat st;
	int n = snprintf(out, cap, "%s/%s%s", dir, mid, tail);
	if (n < 0 || (size_t)n >= cap)
		return -ENAMETOOLONG;
	return stat(out, &st) == 0 && S_ISREG(st.st_mode) ? 1 : 0;
}

/* containerd: <root>/<ns>/<id>/config.json, the hinted namespace and k8s.io
 * first, then every other namespace directory. */
static int locate_containerd(const struct oci_root *r, const char *id, const char *ns_hint,
                             char *out, size_t cap)
{
	int ret = 0;
	DIR *d = NULL;
	char tail[ID_MAX_LEN + 16];
	const char *first[] = {ns_hint, "k8s.io"};

	snprintf(tail, sizeof(tail), "/%s/config.json", id);
	for (size_t i = 0; i < 2; i++) {
		if (!first[i] || !valid_id(first[i]) ||
		    (i == 1 && ns_hint && !strcmp(ns_hint, "k8s.io")))
			continue;
		ret = try_path(out, cap, r->dir, first[i], tail);
		if (ret != 0)
			goto cleanup;
	}
	d = opendir(r->dir);
	if (!d)
		goto cleanup;
	struct dirent *e;
	size_t scanned = 0;
	while ((e = readdir(d)) && scanned < OCI_MAX_NAMESPACES) {
		if (!valid_id(e->d_name) || !strcmp(e->d_name, "k8s.io") ||
		    (ns_hint && !strcmp(e->d_name, ns_hint)))
			continue;
		scanned++;
		ret = try_path(out, cap, r->dir, e->d_name, tail);
		if (ret != 0)
			goto cleanup;
	}
cleanup:
	if (d)
		closedir(d);
	return ret;
}

int oci_bundle_locate(const struct oci_bundle_paths *p, const char *container_id,
                      const char *ns_hint, char *out, size_t cap)
{
	int ret = -ENOENT;

	if (!p || !container_id || !out || cap == 0 || !valid_id(container_id))
		return -EINVAL;
	out[0] = '\0';
	for (size_t i = 0; i < p->n_roots; i++) {
		const struct oci_root *r = &p->roots[i];
		int found;
		switch (r->layout) {
		case OCI_LAYOUT_CONTAINERD:
			found = locate_containerd(r, container_id, ns_hint, out, cap);
			break;
		case OCI_LAYOUT_CRIO:
			found = try_path(out, cap, r->dir, container_id, "/userdata/config.json");
			break;
		default:
			found = try_path(out, cap, r->dir, container_id, "/config.json");
			break;
		}
		if (found == 1) {
			ret = 0;
			goto cleanup;
		}
		if (found < 0) {
			ret = found;
			goto cleanup;
		}
	}
cleanup:
	if (ret < 0)
		out[0] = '\0';
	return ret;
}

int oci_bundle_load(const struct oci_bundle_paths *p, const char *container_id, const char *ns_hint,
                    struct oci_bundle_info *out)
{
	int ret = 0;
	char path[PATH_MAX];

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	ret = oci_bundle_locate(p, container_id, ns_hint, path, sizeof(path));
	if (ret < 0)
		goto cleanup;
	ret = oci_bundle_read_file(path, out);
cleanup:
	return ret;
}
