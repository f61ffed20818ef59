/* test_k8s_names.c — owner workloads from owner references and the
 * service.name precedence. */
#include <errno.h>

#include "telemetry/k8s_names.h"
#include "unit.h"

static void test_deployment_from_replicaset(void)
{
	struct k8s_workload w;
	CHECK_EQ_INT(k8s_workload_from_owner("ReplicaSet", "orders-7d9f8b6c5d", "7d9f8b6c5d", &w),
	             0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_DEPLOYMENT);
	CHECK_EQ_STR(w.name, "orders");
	CHECK_EQ_STR(w.replicaset, "orders-7d9f8b6c5d");
	/* Without the label, the hash is recognised by its alphabet. */
	CHECK_EQ_INT(k8s_workload_from_owner("ReplicaSet", "coredns-5d78c9869d", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_DEPLOYMENT);
	CHECK_EQ_STR(w.name, "coredns");
	CHECK_EQ_INT(k8s_workload_from_owner("ReplicaSet", "my-api-server-6b474476c4", "", &w), 0);
	CHECK_EQ_STR(w.name, "my-api-server");
	/* A label that does not match the name: a bare ReplicaSet. */
	CHECK_EQ_INT(k8s_workload_from_owner("ReplicaSet", "orders-7d9f8b6c5d", "5f6d7c8b9", &w),
	             0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_REPLICASET);
	CHECK_EQ_STR(w.name, "orders-7d9f8b6c5d");
	CHECK_EQ_STR(w.replicaset, "");
	/* Suffixes that are not hashes: vowels, too short, no dash. */
	CHECK_EQ_INT(k8s_workload_from_owner("ReplicaSet", "frontend-backend", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_REPLICASET);
	CHECK_EQ_INT(k8s_workload_from_owner("ReplicaSet", "web-x7z", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_REPLICASET);
	CHECK_EQ_INT(k8s_workload_from_owner("ReplicaSet", "standalone", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_REPLICASET);
	CHECK_EQ_STR(w.name, "standalone");
	CHECK_EQ_INT(k8s_workload_from_owner("ReplicaSet", "-7d9f8b6c5d", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_REPLICASET);
}

static void test_cronjob_from_job(void)
{
	struct k8s_workload w;
	CHECK_EQ_INT(k8s_workload_from_owner("Job", "nightly-backup-28391520", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_CRONJOB);
	CHECK_EQ_STR(w.name, "nightly-backup");
	CHECK_EQ_STR(w.job, "nightly-backup-28391520");
	/* A Job of its own, even one ending in a small number. */
	CHECK_EQ_INT(k8s_workload_from_owner("Job", "db-migrate-2", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_JOB);
	CHECK_EQ_STR(w.name, "db-migrate-2");
	CHECK_EQ_STR(w.job, "");
	CHECK_EQ_INT(k8s_workload_from_owner("Job", "pi", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_JOB);
	CHECK_EQ_INT(k8s_workload_from_owner("Job", "report-2839152x", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_JOB);
}

static void test_other_owners(void)
{
	struct k8s_workload w;
	CHECK_EQ_INT(k8s_workload_from_owner("StatefulSet", "postgres", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_STATEFULSET);
	CHECK_EQ_STR(w.name, "postgres");
	CHECK_EQ_INT(k8s_workload_from_owner("DaemonSet", "periscope", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_DAEMONSET);
	CHECK_EQ_STR(w.name, "periscope");
	CHECK_EQ_INT(k8s_workload_from_owner("Rollout", "canary", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_OTHER);
	CHECK_EQ_STR(w.name, "canary");
	/* A static pod's mirror is owned by its Node: no workload. */
	CHECK_EQ_INT(k8s_workload_from_owner("Node", "worker-1", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_NONE);
	CHECK_EQ_STR(w.name, "");
	CHECK_EQ_INT(k8s_workload_from_owner(NULL, NULL, NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_NONE);
	CHECK_EQ_INT(k8s_workload_from_owner("Job", "", NULL, &w), 0);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_NONE);
	CHECK_EQ_INT(k8s_workload_from_owner("Job", "x", NULL, NULL), -EINVAL);
	char longname[K8S_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	CHECK_EQ_INT(k8s_workload_from_owner("StatefulSet", longname, NULL, &w), -ENAMETOOLONG);
	CHECK_EQ_INT(w.kind, K8S_WORKLOAD_NONE);
	longname[K8S_NAME_MAX] = '\0';
	CHECK_EQ_INT(k8s_workload_from_owner("StatefulSet", longname, NULL, &w), 0);
	CHECK_EQ_INT(strlen(w.name), K8S_NAME_MAX);
}

static void test_workload_attrs(void)
{
	CHECK_EQ_STR(k8s_workload_attr(K8S_WORKLOAD_DEPLOYMENT), "k8s.deployment.name");
	CHECK_EQ_STR(k8s_workload_attr(K8S_WORKLOAD_STATEFULSET), "k8s.statefulset.name");
	CHECK_EQ_STR(k8s_workload_attr(K8S_WORKLOAD_DAEMONSET), "k8s.daemonset.name");
	CHECK_EQ_STR(k8s_workload_attr(K8S_WORKLOAD_JOB), "k8s.job.name");
	CHECK_EQ_STR(k8s_workload_attr(K8S_WORKLOAD_CRONJOB), "k8s.cronjob.name");
	CHECK(k8s_workload_attr(K8S_WORKLOAD_NONE) == NULL);
	CHECK(k8s_workload_attr(K8S_WORKLOAD_OTHER) == NULL);
}

static void test_service_precedence(void)
{
	struct k8s_service_inputs in = {
	    .process_env_service_name = "env-name",
	    .pod_spec_env_service_name = "spec-name",
	    .resource_attrs_service_name = "attrs-name",
	    .annotation_service_name = "annotated",
	    .label_app_name = "labelled",
	    .workload_name = "orders",
	    .pod_namespace = "shop",
	    .pod_name = "orders-7d9f8b6c5d-x2x9k",
	    .container_name = "app",
	    .executable_name = "python3.11",
	};
	struct k8s_service_identity id;
	/* Each rule in turn, removing the winner every time. */
	const char **fields[] = {&in.process_env_service_name,
	                         &in.pod_spec_env_service_name,
	                         &in.resource_attrs_service_name,
	                         &in.annotation_service_name,
	                         &in.label_app_name,
	                         &in.workload_name,
	                         &in.pod_name,
	                         &in.container_name,
	                         &in.executable_name};
	const char *want[] = {"env-name",
	                      "spec-name",
	                      "attrs-name",
	                      "annotated",
	                      "labelled",
	                      "orders",
	                      "orders-7d9f8b6c5d-x2x9k",
	                      "app",
	                      "python3.11"};
	enum k8s_service_source src[] = {
	    K8S_SERVICE_PROCESS_ENV, K8S_SERVICE_POD_SPEC_ENV,   K8S_SERVICE_RESOURCE_ATTRS,
	    K8S_SERVICE_ANNOTATION,  K8S_SERVICE_LABEL_APP_NAME, K8S_SERVICE_WORKLOAD,
	    K8S_SERVICE_POD,         K8S_SERVICE_CONTAINER,      K8S_SERVICE_EXECUTABLE};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		CHECK_EQ_INT(k8s_service_resolve(&in, &id), 0);
		CHECK(id.name != NULL);
		if (id.name)
			CHECK_EQ_STR(id.name, want[i]);
		CHECK_EQ_INT(id.source, src[i]);
		/* An empty string counts as absent, as NULL does. */
		*fields[i] = (i % 2) ? "" : NULL;
	}
	CHECK_EQ_INT(k8s_service_resolve(&in, &id), 0);
	CHECK(id.name == NULL);
	CHECK_EQ_INT(id.source, K8S_SERVICE_NONE);
	CHECK_EQ_INT(k8s_service_resolve(NULL, &id), -EINVAL);
	CHECK_EQ_INT(k8s_service_resolve(&in, NULL), -EINVAL);
}

static void test_service_namespace_and_instance(void)
{
	struct k8s_service_inputs in = {
	    .pod_namespace = "shop",
	    .pod_name = "orders-7d9f8b6c5d-x2x9k",
	    .container_name = "app",
	    .executable_name = "node",
	};
	struct k8s_service_identity id;
	CHECK_EQ_INT(k8s_service_resolve(&in, &id), 0);
	CHECK_EQ_STR(id.service_namespace, "shop");
	CHECK_EQ_STR(id.instance_id, "shop.orders-7d9f8b6c5d-x2x9k.app");
	/* A host process: no namespace, no instance id, the executable. */
	struct k8s_service_inputs host = {.executable_name = "nginx"};
	CHECK_EQ_INT(k8s_service_resolve(&host, &id), 0);
	CHECK(id.service_namespace == NULL);
	CHECK_EQ_STR(id.instance_id, "");
	CHECK_EQ_STR(id.name, "nginx");
	/* Two pods of one deployment: same name, different instances. */
	struct k8s_service_inputs a = {.workload_name = "orders",
	                               .pod_namespace = "shop",
	                               .pod_name = "orders-1",
	                               .container_name = "app"};
	struct k8s_service_inputs b = a;
	b.pod_name = "orders-2";
	struct k8s_service_identity ia, ib;
	k8s_service_resolve(&a, &ia);
	k8s_service_resolve(&b, &ib);
	CHECK_EQ_STR(ia.name, ib.name);
	CHECK(strcmp(ia.instance_id, ib.instance_id) != 0);

	char buf[16];
	CHECK_EQ_INT(k8s_service_instance_id("a", "b", "c", buf, sizeof(buf)), 5);
	CHECK_EQ_STR(buf, "a.b.c");
	CHECK_EQ_INT(k8s_service_instance_id("namespace", "pod", "container", buf, sizeof(buf)),
	             -ENOSPC);
	CHECK_EQ_STR(buf, "");
	CHECK_EQ_INT(k8s_service_instance_id("a", "", "c", buf, sizeof(buf)), -EINVAL);
	/* Names at their longest still fit. */
	char n[K8S_NAME_MAX + 1], out[K8S_INSTANCE_ID_MAX + 1];
	memset(n, 'x', K8S_NAME_MAX);
	n[K8S_NAME_MAX] = '\0';
	CHECK_EQ_INT(k8s_service_instance_id(n, n, n, out, sizeof(out)), K8S_INSTANCE_ID_MAX);
}

int main(void)
{
	RUN(test_deployment_from_replicaset);
	RUN(test_cronjob_from_job);
	RUN(test_other_owners);
	RUN(test_workload_attrs);
	RUN(test_service_precedence);
	RUN(test_service_namespace_and_instance);
	return unit_summary("test_k8s_names");
}
