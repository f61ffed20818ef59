/* k8s_names.h — naming rules for pods, pure functions:
 *   the workload that owns a pod, from its controller owner reference:
 *     ReplicaSet "<deployment>-<pod-template-hash>" → Deployment
 *     Job "<cronjob>-<scheduled minute>" (8+ digits) → CronJob
 *     StatefulSet, DaemonSet, Job, ReplicaSet as they are
 *   service.name, first found wins:
 *     1 the process's OTEL_SERVICE_NAME (its environment, else the pod
 *       spec's env for the container), then service.name in its
 *       OTEL_RESOURCE_ATTRIBUTES
 *     2 the pod annotation resource.opentelemetry.io/service.name
 *     3 the pod label app.kubernetes.io/name
 *     4 the owning workload's name (deployment, statefulset, …)
 *     5 the pod name   6 the container name   7 the executable name
 *   service.namespace = the pod's namespace
 *   service.instance.id = "<namespace>.<pod>.<container>" */
#ifndef PERISCOPE_TELEMETRY_K8S_NAMES_H
#define PERISCOPE_TELEMETRY_K8S_NAMES_H

#include <stddef.h>

#define K8S_NAME_MAX        253 /* longest object name (DNS subdomain) */
#define K8S_INSTANCE_ID_MAX (3 * K8S_NAME_MAX + 2)

enum k8s_workload_kind {
	K8S_WORKLOAD_NONE = 0, /* no controller, or a Node (static pod) */
	K8S_WORKLOAD_DEPLOYMENT,
	K8S_WORKLOAD_REPLICASET,
	K8S_WORKLOAD_STATEFULSET,
	K8S_WORKLOAD_DAEMONSET,
	K8S_WORKLOAD_JOB,
	K8S_WORKLOAD_CRONJOB,
	K8S_WORKLOAD_OTHER, /* another controller kind (its name is kept) */
};

struct k8s_workload {
	enum k8s_workload_kind kind; /* the top-level workload found */
	char name[K8S_NAME_MAX + 1]; /* its name */
	/* The pod's direct owner when it is an intermediate one: */
	char replicaset[K8S_NAME_MAX + 1]; /* k8s.replicaset.name, or "" */
	char job[K8S_NAME_MAX + 1];        /* k8s.job.name (under a CronJob), or "" */
};

/* The workload owning a pod whose controller owner reference is
 * (owner_kind, owner_name); pod_template_hash is the pod's
 * "pod-template-hash" label (NULL or "" when unknown: then the hash is
 * recognised by its alphabet). Returns 0, or -EINVAL for a NULL out, or
 * -ENAMETOOLONG for a name over K8S_NAME_MAX (out is then NONE). A missing
 * owner gives kind NONE. */
int k8s_workload_from_owner(const char *owner_kind, const char *owner_name,
                            const char *pod_template_hash, struct k8s_workload *out);

/* "k8s.deployment.name", "k8s.replicaset.name", "k8s.statefulset.name",
 * "k8s.daemonset.name", "k8s.job.name", "k8s.cronjob.name"; NULL for NONE
 * and OTHER. */
const char *k8s_workload_attr(enum k8s_workload_kind kind);

enum k8s_service_source {
	K8S_SERVICE_NONE = 0,
	K8S_SERVICE_PROCESS_ENV,    /* OTEL_SERVICE_NAME in the process's environment */
	K8S_SERVICE_POD_SPEC_ENV,   /* OTEL_SERVICE_NAME in the pod spec's env */
	K8S_SERVICE_RESOURCE_ATTRS, /* service.name in OTEL_RESOURCE_ATTRIBUTES */
	K8S_SERVICE_ANNOTATION,     /* resource.opentelemetry.io/service.name */
	K8S_SERVICE_LABEL_APP_NAME, /* app.kubernetes.io/name */
	K8S_SERVICE_WORKLOAD,
	K8S_SERVICE_POD,
	K8S_SERVICE_CONTAINER,
	K8S_SERVICE_EXECUTABLE,
};

/* What is known of a process; NULL or "" for what is not. */
struct k8s_service_inputs {
	const char *process_env_service_name;
	const char *pod_spec_env_service_name;
	const char *resource_attrs_service_name;
	const char *annotation_service_name;
	const char *label_app_name;
	const char *workload_name;
	const char *pod_namespace;
	const char *pod_name;
	const char *container_name;
	const char *executable_name;
};

struct k8s_service_identity {
	const char *name;                          /* borrowed from the inputs, or NULL */
	enum k8s_service_source source;            /* the rule that gave name */
	const char *service_namespace;             /* the pod's namespace, or NULL */
	char instance_id[K8S_INSTANCE_ID_MAX + 1]; /* "" unless namespace, pod and
	                                              container are all known */
};

/* Applies the precedence above. Returns 0, -EINVAL for NULL arguments. */
int k8s_service_resolve(const struct k8s_service_inputs *in, struct k8s_service_identity *out);

/* Writes "<namespace>.<pod>.<container>" into out. Returns its length,
 * -EINVAL when a part is NULL or empty, -ENOSPC when out is too small (out
 * is then ""). */
int k8s_service_instance_id(const char *ns, const char *pod, const char *container, char *out,
                            size_t cap);

#endif
