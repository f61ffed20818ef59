/* k8s_client.h — the transport of the node-scoped pod list+watch
 * (telemetry/k8s_watch.h): one thread with libcurl makes the requests the
 * state machine asks for (LIST, then WATCH with a write callback feeding it,
 * WAIT for its jittered backoff) against the API server:
 *   in a cluster  https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT,
 *                 the service account's token (re-read per request: tokens
 *                 rotate) and CA, from /var/run/secrets/kubernetes.io/serviceaccount
 *   for tests     an explicit URL (http:// or https://), token and CA optional
 * Lookups from other threads never wait for the transport: they try the lock
 * and report "busy" (so a resource is tried again later) rather than block
 * span processing behind a big list being parsed. A body over the state
 * machine's object cap, garbage, or a slow / dead server costs a reconnect
 * after backoff, logged once per change of state; what the runtime files say
 * is used meanwhile. */
#ifndef PERISCOPE_TELEMETRY_K8S_CLIENT_H
#define PERISCOPE_TELEMETRY_K8S_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "telemetry/k8s_names.h"
#include "telemetry/k8s_watch.h"

#define K8S_SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

struct logger;

struct k8s_client_config {
	const char *api_url;      /* "https://10.96.0.1:443"; required */
	const char *token_file;   /* may be NULL: no Authorization header */
	const char *ca_file;      /* may be NULL: the system's CAs */
	const char *node_name;    /* required */
	size_t max_object_bytes;  /* 0: K8S_WATCH_DEFAULT_OBJECT */
	unsigned watch_timeout_s; /* 0: 300 (the server closes the watch then) */
	struct logger *log;       /* may be NULL */
};

/* What naming needs of the pod running a container, copied out. */
struct k8s_pod_meta {
	char uid[K8S_WATCH_NAME_MAX + 1];
	char name[K8S_WATCH_NAME_MAX + 1];
	char pod_namespace[K8S_WATCH_NAME_MAX + 1];
	char container_name[K8S_WATCH_NAME_MAX + 1];
	char container_otel_service_name[K8S_WATCH_VALUE_MAX + 1];
	char label_app_name[K8S_WATCH_LABEL_MAX + 1];
	char annotation_service_name[K8S_WATCH_VALUE_MAX + 1];
	struct k8s_workload workload;
};

struct k8s_client_stats {
	uint64_t requests; /* HTTP requests made (lists + watches) */
	size_t pods;       /* pods cached */
	struct k8s_watch_stats watch;
};

/* The in-cluster configuration from the environment and the service account
 * files: fills url (https://host:port) and returns 0, or -ENOENT when
 * KUBERNETES_SERVICE_HOST/PORT are not set. */
int k8s_client_in_cluster_url(char *url, size_t cap);

/* Starts the thread. NULL with errno EINVAL (a bad node name or URL) or ENOMEM. */
struct k8s_client *k8s_client__new(const struct k8s_client_config *cfg);
/* Stops the thread (within about a second) and frees. Accepts NULL. */
void k8s_client__free(struct k8s_client *c);

/* The pod running container_id, or else the pod with uid pod_uid (either may
 * be NULL or ""; by uid, the container is named only when the pod has one).
 * Returns 1 and fills *out when found, 0 when not known, -EBUSY when the
 * cache is being updated right now (try again later), -EINVAL. */
int k8s_client_lookup(struct k8s_client *c, const char *container_id, const char *pod_uid,
                      struct k8s_pod_meta *out);

/* Whether a list has completed since the last start (the cache is usable). */
int k8s_client_synced(struct k8s_client *c);
/* All zero but requests when the cache is being updated right now. */
void k8s_client_get_stats(struct k8s_client *c, struct k8s_client_stats *out);

#endif
