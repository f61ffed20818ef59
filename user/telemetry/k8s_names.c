/* k8s_names.c — workload names from owner references, and the service.name
 * precedence (see k8s_names.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "telemetry/k8s_names.h"

/* Characters of a pod-template-hash (Kubernetes' SafeEncodeString alphabet:
 * no vowels, no 0/1/3, so hashes never spell words). */
static const char hash_alphabet[] = "bcdfghjklmnpqrstvwxz2456789";

#define HASH_MIN_LEN    5  /* shortest hash seen (older releases) */
#define HASH_MAX_LEN    10 /* a 32-bit hash encodes to at most 10 */
#define CRON_DIGITS_MIN 8  /* a CronJob's Job suffix: minutes since 1970 */

static bool set(const char *s)
{
	return s && s[0];
}

static void copy_name(char *dst, const char *src, size_t n)
{
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Length of name without a "-<hash>" suffix, or 0 if it has none. */
static size_t strip_hash(const char *name, size_t n, const char *hash)
{
	if (set(hash)) {
		size_t h = strlen(hash);
		if (n > h + 1 && name[n - h - 1] == '-' && memcmp(name + n - h, hash, h) == 0)
			return n - h - 1;
		return 0;
	}
	const char *dash = memrchr(name, '-', n);
	if (!dash || dash == name)
		return 0;
	size_t h = n - (size_t)(dash + 1 - name);
	if (h < HASH_MIN_LEN || h > HASH_MAX_LEN)
		return 0;
	for (const char *p = dash + 1; p < name + n; p++)
		if (!strchr(hash_alphabet, *p))
			return 0;
	return (size_t)(dash - name);
}

/* Length of a Job name without a "-<8+ digits>" suffix, or 0. */
static size_t strip_cron_suffix(const char *name, size_t n)
{
	const char *dash = memrchr(name, '-', n);
	if (!dash || dash == name)
		return 0;
	size_t d = n - (size_t)(dash + 1 - name);
	if (d < CRON_DIGITS_MIN)
		return 0;
	for (const char *p = dash + 1; p < name + n; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return (size_t)(dash - name);
}

int k8s_workload_from_owner(const char *owner_kind, const char *owner_name,
                            const char *pod_template_hash, struct k8s_workload *out)
{
	int ret = 0;
	size_t n, base;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!set(owner_kind) || !set(owner_name) || strcmp(owner_kind, "Node") == 0)
		goto cleanup;
	n = strlen(owner_name);
	if (n > K8S_NAME_MAX) {
		ret = -ENAMETOOLONG;
		goto cleanup;
	}
	if (strcmp(owner_kind, "ReplicaSet") == 0) {
		base = strip_hash(owner_name, n, pod_template_hash);
		if (base) {
			out->kind = K8S_WORKLOAD_DEPLOYMENT;
			copy_name(out->name, owner_name, base);
			copy_name(out->replicaset, owner_name, n);
		} else {
			out->kind = K8S_WORKLOAD_REPLICASET;
			copy_name(out->name, owner_name, n);
		}
	} else if (strcmp(owner_kind, "Job") == 0) {
		base = strip_cron_suffix(owner_name, n);
		if (base) {
			out->kind = K8S_WORKLOAD_CRONJOB;
			copy_name(out->name, owner_name, base);
			copy_name(out->job, owner_name, n);
		} else {
			out->kind = K8S_WORKLOAD_JOB;
			copy_name(out->name, owner_name, n);
		}
	} else {
		if (strcmp(owner_kind, "StatefulSet") == 0)
			out->kind = K8S_WORKLOAD_STATEFULSET;
		else if (strcmp(owner_kind, "DaemonSet") == 0)
			out->kind = K8S_WORKLOAD_DAEMONSET;
		else if (strcmp(owner_kind, "Deployment") == 0)
			out->kind = K8S_WORKLOAD_DEPLOYMENT;
		else if (strcmp(owner_kind, "CronJob") == 0)
			out->kind = K8S_WORKLOAD_CRONJOB;
		else
			out->kind = K8S_WORKLOAD_OTHER;
		copy_name(out->name, owner_name, n);
	}
cleanup:
	return ret;
}

const char *k8s_workload_attr(enum k8s_workload_kind kind)
{
	switch (kind) {
	case K8S_WORKLOAD_DEPLOYMENT:
		return "k8s.deployment.name";
	case K8S_WORKLOAD_REPLICASET:
		return "k8s.replicaset.name";
	case K8S_WORKLOAD_STATEFULSET:
		return "k8s.statefulset.name";
	case K8S_WORKLOAD_DAEMONSET:
		return "k8s.daemonset.name";
	case K8S_WORKLOAD_JOB:
		return "k8s.job.name";
	case K8S_WORKLOAD_CRONJOB:
		return "k8s.cronjob.name";
	default:
		return NULL;
	}
}

int k8s_service_instance_id(const char *ns, const char *pod, const char *container, char *out,
                            size_t cap)
{
	int ret = 0;

	if (!out || cap == 0)
		return -EINVAL;
	out[0] = '\0';
	if (!set(ns) || !set(pod) || !set(container)) {
		ret = -EINVAL;
		goto cleanup;
	}
	ret = snprintf(out, cap, "%s.%s.%s", ns, pod, container);
	if (ret < 0 || (size_t)ret >= cap) {
		out[0] = '\0';
		ret = -ENOSPC;
	}
cleanup:
	return ret;
}

int k8s_service_resolve(const struct k8s_service_inputs *in, struct k8s_service_identity *out)
{
	/* The precedence, in order. */
	const struct {
		const char *value;
		enum k8s_service_source source;
	} order[] = {
	    {in ? in->process_env_service_name : NULL, K8S_SERVICE_PROCESS_ENV},
	    {in ? in->pod_spec_env_service_name : NULL, K8S_SERVICE_POD_SPEC_ENV},
	    {in ? in->resource_attrs_service_name : NULL, K8S_SERVICE_RESOURCE_ATTRS},
	    {in ? in->annotation_service_name : NULL, K8S_SERVICE_ANNOTATION},
	    {in ? in->label_app_name : NULL, K8S_SERVICE_LABEL_APP_NAME},
	    {in ? in->workload_name : NULL, K8S_SERVICE_WORKLOAD},
	    {in ? in->pod_name : NULL, K8S_SERVICE_POD},
	    {in ? in->container_name : NULL, K8S_SERVICE_CONTAINER},
	    {in ? in->executable_name : NULL, K8S_SERVICE_EXECUTABLE},
	};

	if (!in || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (set(order[i].value)) {
			out->name = order[i].value;
			out->source = order[i].source;
			break;
		}
	}
	if (set(in->pod_namespace))
		out->service_namespace = in->pod_namespace;
	/* Too long an id is left empty rather than cut. */
	k8s_service_instance_id(in->pod_namespace, in->pod_name, in->container_name,
	                        out->instance_id, sizeof(out->instance_id));
	return 0;
}
