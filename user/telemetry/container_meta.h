/* container_meta.h — container and pod attributes of a process's resource,
 * installed as the proc_info hook (telemetry/proc_info.h), so it runs once
 * per process (pid + start time), not per event:
 *   1 /proc/PID/cgroup → container identity (telemetry/container_id.h);
 *     not a container: nothing is added, the process keeps its naming
 *   2 the container's OCI bundle annotations (telemetry/oci_bundle.h), read
 *     once per container id and cached (bounded, least recently used out)
 *   3 the Kubernetes API's pod cache when a client runs
 *     (telemetry/k8s_client.h): labels, owner, the pod spec's env
 *   4 the resource gets container.id, container.runtime, k8s.pod.uid,
 *     k8s.namespace.name, k8s.pod.name, k8s.container.name, k8s.node.name,
 *     k8s.<workload>.name, k8s.replicaset.name, service.namespace,
 *     service.instance.id, and service.name by telemetry/k8s_names.h's order
 *     (a process's own OTEL_SERVICE_NAME stays first).
 * Without the API, a Deployment is recognised from a pod name of the form
 * <deployment>-<pod-template-hash>-<5 characters> (the ReplicaSet's pattern).
 * A container whose metadata is not known yet (no bundle found, the API not
 * synced or busy, the pod not listed yet) is reported incomplete, so
 * proc_info builds the resource again a little later. */
#ifndef PERISCOPE_TELEMETRY_CONTAINER_META_H
#define PERISCOPE_TELEMETRY_CONTAINER_META_H

#include <stddef.h>
#include <stdint.h>

#define CONTAINER_META_MAX_CACHED 1024 /* containers whose bundle info is kept */

struct resource;
struct logger;
struct oci_bundle_paths;
struct k8s_client;

struct container_meta_config {
	const char *proc_root;                /* NULL: "/proc" */
	const struct oci_bundle_paths *paths; /* borrowed; NULL: bundles not read */
	struct k8s_client *k8s;               /* borrowed; may be NULL */
	const char *node_name;                /* k8s.node.name; NULL or "": not set */
	struct logger *log; /* may be NULL: an unreadable bundle is logged once per container */
};

struct container_meta_stats {
	uint64_t lookups;         /* processes looked at */
	uint64_t containers;      /* of them in a container */
	uint64_t bundle_reads;    /* config.json files read */
	uint64_t bundle_failures; /* bundles not found or not parsed */
	uint64_t api_hits;        /* pods found in the API cache */
	uint64_t incomplete;      /* resources left incomplete (tried again) */
	size_t cached;            /* containers cached now */
};

struct container_meta;

struct container_meta *container_meta__new(const struct container_meta_config *cfg);
void container_meta__free(struct container_meta *m); /* accepts NULL */

/* The proc_info hook (ctx is the container_meta). */
int container_meta_hook(void *ctx, uint32_t pid, struct resource *r, int service_name_from_env);

/* Forgets cached bundles of containers not looked at for max_age_ms. */
void container_meta_expire(struct container_meta *m, uint64_t max_age_ms);

void container_meta_get_stats(const struct container_meta *m, struct container_meta_stats *out);

/* The Deployment of a pod named <deployment>-<hash>-<suffix>, into out;
 * 1 when the name has that form, 0 when not. */
int container_meta_deployment_from_pod_name(const char *pod, char *out, size_t cap);

#endif
