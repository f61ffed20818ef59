/* oci_bundle.h — pod metadata from a container's OCI bundle (config.json),
 * which the runtime writes before the container's first process starts, so
 * it is there without the API server:
 *   containerd CRI  io.kubernetes.cri.sandbox-name / -namespace / -uid / -id,
 *                   io.kubernetes.cri.container-name,
 *                   io.kubernetes.cri.container-type ("sandbox"|"container")
 *   CRI-O           io.kubernetes.pod.name / .namespace / .uid,
 *                   io.kubernetes.container.name,
 *                   io.kubernetes.cri-o.ContainerType, io.kubernetes.cri-o.SandboxID
 *   both            resource.opentelemetry.io/service.name (annotation),
 *                   OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (process.env)
 * Bundles are found under runtime state directories (configurable, under a
 * host-root prefix for a DaemonSet that mounts the host's /run elsewhere):
 *   containerd  <root>/<namespace>/<id>/config.json  (namespaces scanned)
 *               default roots /run/containerd/io.containerd.runtime.v2.task,
 *               /run/k3s/containerd/io.containerd.runtime.v2.task
 *   CRI-O       <root>/<id>/userdata/config.json
 *               default root /run/containers/storage/overlay-containers
 *   Docker      <root>/<id>/config.json  default root
 *               /run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby
 *   and the same under /var/run. */
#ifndef PERISCOPE_TELEMETRY_OCI_BUNDLE_H
#define PERISCOPE_TELEMETRY_OCI_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>

#define OCI_BUNDLE_MAX_FILE (4 * 1024 * 1024) /* bigger config.json files are refused */
#define OCI_NAME_MAX        253               /* longest name kept (pod, namespace, …) */
#define OCI_VALUE_MAX       1024              /* longest env or annotation value kept */
#define OCI_JSON_DEPTH      64                /* deepest JSON nesting accepted */
#define OCI_MAX_NAMESPACES  64                /* containerd namespaces scanned per root */

enum oci_flavor {
	OCI_FLAVOR_NONE = 0,       /* no Kubernetes annotations */
	OCI_FLAVOR_CONTAINERD_CRI, /* io.kubernetes.cri.* */
	OCI_FLAVOR_CRIO,           /* io.kubernetes.pod.* / io.kubernetes.cri-o.* */
};

enum oci_container_type {
	OCI_TYPE_UNKNOWN = 0,
	OCI_TYPE_CONTAINER,
	OCI_TYPE_SANDBOX, /* the pod's sandbox (pause) container */
};

struct oci_bundle_info {
	enum oci_flavor flavor;
	enum oci_container_type type;
	char pod_name[OCI_NAME_MAX + 1];
	char pod_namespace[OCI_NAME_MAX + 1];
	char pod_uid[OCI_NAME_MAX + 1];
	char container_name[OCI_NAME_MAX + 1];
	char sandbox_id[OCI_NAME_MAX + 1];
	char otel_service_name[OCI_VALUE_MAX + 1];        /* process.env OTEL_SERVICE_NAME */
	char otel_resource_attributes[OCI_VALUE_MAX + 1]; /* process.env */
	char annotation_service_name[OCI_VALUE_MAX + 1];  /* resource.opentelemetry.io/… */
	unsigned dropped; /* values left out: over their cap, not strings, or holding NUL */
};

/* Parses a config.json held in memory. Returns 0 (fields absent are ""),
 * -EINVAL for NULL arguments, -EFBIG over OCI_BUNDLE_MAX_FILE, -EBADMSG for
 * input that is not one JSON object (nested deeper than OCI_JSON_DEPTH,
 * truncated, trailing garbage, or not strict JSON), -ENOMEM. out is all
 * empty on error. */
int oci_bundle_parse(const char *json, size_t len, struct oci_bundle_info *out);

/* Reads and parses a config.json file (a regular file of at most
 * OCI_BUNDLE_MAX_FILE bytes: -EFBIG otherwise, -EBADMSG not regular). */
int oci_bundle_read_file(const char *path, struct oci_bundle_info *out);

enum oci_layout {
	OCI_LAYOUT_CONTAINERD, /* <root>/<namespace>/<id>/config.json */
	OCI_LAYOUT_CRIO,       /* <root>/<id>/userdata/config.json */
	OCI_LAYOUT_DIRECT,     /* <root>/<id>/config.json (Docker's moby namespace) */
};

struct oci_bundle_paths;

/* host_root prefixes every root ("" or NULL: the agent's own /); with
 * defaults, the roots listed above are added. NULL on ENOMEM or a host_root
 * that is too long. */
struct oci_bundle_paths *oci_bundle_paths__new(const char *host_root, bool defaults);
void oci_bundle_paths__free(struct oci_bundle_paths *p); /* accepts NULL */
/* Adds a root (an absolute path, under host_root). -EINVAL for a relative
 * path, -ENAMETOOLONG, -ENOSPC past 32 roots. */
int oci_bundle_paths_add(struct oci_bundle_paths *p, enum oci_layout layout, const char *dir);

/* Finds the config.json of container_id (1 to 128 of [A-Za-z0-9_.-], not
 * starting with '.': -EINVAL otherwise). ns_hint (may be NULL) is a
 * containerd namespace tried before the others ("k8s.io" is always tried
 * first after it). Writes the path into out; returns 0, -ENOENT when no
 * root has it, -ENAMETOOLONG when out is too small. */
int oci_bundle_locate(const struct oci_bundle_paths *p, const char *container_id,
                      const char *ns_hint, char *out, size_t cap);

/* oci_bundle_locate, then oci_bundle_read_file. */
int oci_bundle_load(const struct oci_bundle_paths *p, const char *container_id, const char *ns_hint,
                    struct oci_bundle_info *out);

#endif
