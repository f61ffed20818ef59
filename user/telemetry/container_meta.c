/* container_meta.c — container and pod attributes for a process's resource
 * (see container_meta.h). Runs on the agent thread, once per process (and a
 * few more times while its metadata is incomplete). */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "telemetry/container_id.h"
#include "telemetry/container_meta.h"
#include "telemetry/k8s_client.h"
#include "telemetry/k8s_names.h"
#include "telemetry/oci_bundle.h"
#include "telemetry/resource.h"
#include "util/log.h"

#define NEGATIVE_TTL_MS 1000 /* a bundle not found is looked for again after this */
#define POD_SUFFIX_LEN  5    /* the random suffix of a ReplicaSet's pod names */

struct bundle_entry {
	char id[CONTAINER_ID_LEN + 1];
	int rc; /* oci_bundle_load's */
	uint64_t read_ms;
	uint64_t used_ms;
	struct oci_bundle_info info;
};

struct container_meta {
	char proc_root[PATH_MAX];
	const struct oci_bundle_paths *paths;
	struct k8s_client *k8s;
	struct logger *log;
	char node_name[K8S_NAME_MAX + 1];
	struct bundle_entry *cache; /* CONTAINER_META_MAX_CACHED slots; id "" is free */
	size_t n_slots;             /* slots [0, n_slots) were ever used; none past is read */
	struct container_meta_stats stats;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool set(const char *s)
{
	return s && s[0];
}

struct container_meta *container_meta__new(const struct container_meta_config *cfg)
{
	struct container_meta *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	snprintf(m->proc_root, sizeof(m->proc_root), "%s",
	         cfg && cfg->proc_root ? cfg->proc_root : "/proc");
	if (cfg) {
		m->paths = cfg->paths;
		m->k8s = cfg->k8s;
		m->log = cfg->log;
		if (cfg->node_name)
			snprintf(m->node_name, sizeof(m->node_name), "%s", cfg->node_name);
	}
	m->cache = calloc(CONTAINER_META_MAX_CACHED, sizeof(*m->cache));
	if (!m->cache) {
		free(m);
		return NULL;
	}
	return m;
}

void container_meta__free(struct container_meta *m)
{
	if (!m)
		return;
	free(m->cache);
	free(m);
}

void container_meta_get_stats(const struct container_meta *m, struct container_meta_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!m)
		return;
	*out = m->stats;
	out->cached = 0;
	for (size_t i = 0; i < m->n_slots; i++)
		out->cached += m->cache[i].id[0] != '\0';
}

void container_meta_expire(struct container_meta *m, uint64_t max_age_ms)
{
	uint64_t now = now_ms();

	for (size_t i = 0; m && i < m->n_slots; i++)
		if (m->cache[i].id[0] && now - m->cache[i].used_ms >= max_age_ms)
			m->cache[i].id[0] = '\0';
}

/* The bundle info of container id (read on first use), or NULL. */
static const struct oci_bundle_info *bundle_of(struct container_meta *m,
                                               const struct container_identity *ident)
{
	struct bundle_entry *e = NULL, *victim = &m->cache[0];
	uint64_t now = now_ms(), victim_used = UINT64_MAX;
	bool have_free = false;

	if (!m->paths)
		return NULL;
	/* the table is CONTAINER_META_MAX_CACHED × 4.4 kB, nearly all of it unused:
	 * slots past n_slots are never read nor written, so their pages stay
	 * unbacked (even reading an untouched page made it resident here: a
	 * victim search over all 1024 slots cost 4 MB of RSS) */
	for (size_t i = 0; i < m->n_slots; i++) {
		struct bundle_entry *c = &m->cache[i];

		if (c->id[0] && !strcmp(c->id, ident->id)) {
			e = c;
			break;
		}
		if (!c->id[0]) {
			if (!have_free) /* the first free slot */
				victim = c, have_free = true;
		} else if (!have_free && c->used_ms < victim_used) {
			victim = c, victim_used = c->used_ms;
		}
	}
	if (e && e->rc == -ENOENT && now - e->read_ms >= NEGATIVE_TTL_MS)
		e->id[0] = '\0', victim = e, e = NULL, have_free = true; /* not found: look again */
	if (!e) {
		if (!have_free && m->n_slots < CONTAINER_META_MAX_CACHED)
			victim = &m->cache[m->n_slots++]; /* a slot never used yet */
		e = victim;
		memset(e, 0, sizeof(*e));
		snprintf(e->id, sizeof(e->id), "%s", ident->id);
		e->rc = oci_bundle_load(m->paths, ident->id,
		                        set(ident->ctr_namespace) ? ident->ctr_namespace : NULL,
		                        &e->info);
		e->read_ms = now;
		m->stats.bundle_reads++;
		if (e->rc < 0)
			m->stats.bundle_failures++;
		/* not found: not a pod's, or not yet; anything else is broken and stays so */
		if (e->rc < 0 && e->rc != -ENOENT)
			log_msg(m->log, LOG_WARN,
			        "cannot read a container's OCI bundle: no pod metadata from it",
			        "container_id", LOG_STR(ident->id), "error",
			        LOG_STR(e->rc == -EBADMSG ? "not a valid config.json"
			                : e->rc == -EFBIG ? "config.json too big"
			                                  : strerror(-e->rc)),
			        NULL);
	}
	e->used_ms = now;
	return e->rc == 0 ? &e->info : NULL;
}

int container_meta_deployment_from_pod_name(const char *pod, char *out, size_t cap)
{
	static const char alphabet[] = "bcdfghjklmnpqrstvwxz2456789";
	char rs[K8S_NAME_MAX + 1];
	struct k8s_workload wl;
	size_t n = pod ? strlen(pod) : 0;

	if (n <= POD_SUFFIX_LEN + 1 || n > K8S_NAME_MAX || pod[n - POD_SUFFIX_LEN - 1] != '-')
		return 0;
	for (size_t i = n - POD_SUFFIX_LEN; i < n; i++)
		if (!strchr(alphabet, pod[i]))
			return 0;
	memcpy(rs, pod, n - POD_SUFFIX_LEN - 1);
	rs[n - POD_SUFFIX_LEN - 1] = '\0';
	if (k8s_workload_from_owner("ReplicaSet", rs, NULL, &wl) < 0 ||
	    wl.kind != K8S_WORKLOAD_DEPLOYMENT)
		return 0;
	snprintf(out, cap, "%s", wl.name);
	return 1;
}

/* What is known of the pod, from the bundle and the API (the API wins). */
struct pod_facts {
	const char *ns, *pod, *uid, *container;
	const char *spec_env_service, *annotation_service, *label_app_name;
	struct k8s_workload workload;
	bool workload_inferred;
};

static int add(struct resource *r, const char *key, const char *value)
{
	return set(value) ? resource_add_str(r, key, value) : 0;
}

static int add_attrs(struct container_meta *m, struct resource *r,
                     const struct container_identity *ident, const struct pod_facts *p,
                     const char *runtime, bool service_name_from_env)
{
	struct k8s_service_inputs in = {0};
	struct k8s_service_identity out;
	const char *wl_attr;
	int err = 0;

	err |= add(r, "container.id", ident->id);
	err |= add(r, "container.runtime", runtime);
	if (!set(p->pod) && !set(p->ns))
		return err; /* a container, not a pod's: it keeps its process naming */
	err |= add(r, "k8s.namespace.name", p->ns);
	err |= add(r, "k8s.pod.name", p->pod);
	err |= add(r, "k8s.pod.uid", set(p->uid) ? p->uid : ident->pod_uid);
	err |= add(r, "k8s.container.name", p->container);
	err |= add(r, "k8s.node.name", m->node_name);
	wl_attr = k8s_workload_attr(p->workload.kind);
	if (wl_attr)
		err |= add(r, wl_attr, p->workload.name);
	if (p->workload.kind == K8S_WORKLOAD_DEPLOYMENT)
		err |= add(r, "k8s.replicaset.name", p->workload.replicaset);
	if (p->workload.kind == K8S_WORKLOAD_CRONJOB)
		err |= add(r, "k8s.job.name", p->workload.job);

	in.process_env_service_name =
	    service_name_from_env ? resource_get_str(r, "service.name") : NULL;
	in.pod_spec_env_service_name = p->spec_env_service;
	in.annotation_service_name = p->annotation_service;
	in.label_app_name = p->label_app_name;
	in.workload_name = p->workload.name;
	in.pod_namespace = p->ns;
	in.pod_name = p->pod;
	in.container_name = p->container;
	in.executable_name = resource_get_str(r, "service.name");
	if (k8s_service_resolve(&in, &out) < 0)
		return err;
	if (out.name && out.source != K8S_SERVICE_PROCESS_ENV &&
	    out.source != K8S_SERVICE_EXECUTABLE) {
		char *name = strdup(out.name); /* may point into r */

		err |= name ? resource_add_str(r, "service.name", name) : -ENOMEM;
		free(name);
	}
	err |= add(r, "service.namespace", out.service_namespace);
	err |= add(r, "service.instance.id", out.instance_id);
	return err;
}

int container_meta_hook(void *ctx, uint32_t pid, struct resource *r, int service_name_from_env)
{
	struct container_meta *m = ctx;
	struct container_identity ident;
	const struct oci_bundle_info *b = NULL;
	struct k8s_pod_meta *api = NULL;
	struct pod_facts p = {0};
	char path[PATH_MAX + 32];
	bool incomplete = false, from_api = false;
	const char *runtime;
	int rc, err;

	if (!m || !r)
		return -EINVAL;
	m->stats.lookups++;
	snprintf(path, sizeof(path), "%s/%u/cgroup", m->proc_root, pid);
	rc = container_id_read(path, &ident);
	if (rc <= 0 || !ident.id[0])
		return 0; /* not a container (or gone): today's naming */
	m->stats.containers++;

	b = bundle_of(m, &ident);
	if (b) {
		p.ns = b->pod_namespace;
		p.pod = b->pod_name;
		p.uid = b->pod_uid;
		p.container = b->container_name;
		p.spec_env_service = b->otel_service_name;
		p.annotation_service = b->annotation_service_name;
	}
	if (m->k8s) {
		api = malloc(sizeof(*api));
		if (!api)
			return -ENOMEM;
		rc = k8s_client_lookup(m->k8s, ident.id,
		                       b && set(b->pod_uid) ? b->pod_uid : ident.pod_uid, api);
		if (rc == 1) {
			from_api = true;
			m->stats.api_hits++;
			p.ns = api->pod_namespace;
			p.pod = api->name;
			p.uid = api->uid;
			if (set(api->container_name))
				p.container = api->container_name;
			if (set(api->container_otel_service_name))
				p.spec_env_service = api->container_otel_service_name;
			if (set(api->annotation_service_name))
				p.annotation_service = api->annotation_service_name;
			p.label_app_name = api->label_app_name;
			p.workload = api->workload;
		} else if (ident.pod_uid[0] || (b && b->flavor != OCI_FLAVOR_NONE)) {
			/* a pod's container the API does not know (yet), or is busy */
			incomplete = true;
		}
	}
	if (!from_api && set(p.pod)) {
		struct k8s_workload wl = {.kind = K8S_WORKLOAD_DEPLOYMENT};

		if (container_meta_deployment_from_pod_name(p.pod, wl.name, sizeof(wl.name))) {
			p.workload = wl;
			p.workload_inferred = true;
		}
	}
	if (!b && !from_api)
		incomplete = true; /* nothing known yet */
	runtime = container_runtime_name(ident.runtime);
	if (!set(runtime) && b) /* the cgroupfs driver's path does not say: the bundle's flavor */
		runtime = b->flavor == OCI_FLAVOR_CONTAINERD_CRI ? "containerd"
		          : b->flavor == OCI_FLAVOR_CRIO         ? "cri-o"
		                                                 : "";
	err = add_attrs(m, r, &ident, &p, runtime, service_name_from_env != 0);
	free(api);
	if (err)
		return -ENOMEM;
	if (incomplete)
		m->stats.incomplete++;
	return incomplete ? 1 : 0;
}
