/* k8s_watch.h — the Kubernetes API pod list+watch state machine for this
 * node's pods, without a transport: the caller makes the HTTP requests it is
 * told to, and feeds the response bodies (de-chunked) in pieces of any size.
 *
 *   k8s_watch_next()  → LIST /api/v1/pods?fieldSelector=spec.nodeName=<node>
 *                       WATCH …&watch=1&resourceVersion=<rv>&allowWatchBookmarks=true
 *                       or WAIT until a time (jittered exponential backoff)
 *   k8s_watch_begin() the response's HTTP status
 *   k8s_watch_feed()  body bytes, while it returns 0
 *   k8s_watch_end()   the connection is over (always called, even after a
 *                     failed connect)
 *
 * The list replaces the cache (pods deleted meanwhile are forgotten); watch
 * events ADDED/MODIFIED/DELETED update it, BOOKMARK moves the
 * resourceVersion, ERROR (410 Gone: at once; others: after a backoff) and
 * any garbage make the next request a relist. A disconnect (a partial event
 * at the end, a connect failure, a watch closed at once) backs off, then
 * watches again from the last resourceVersion seen. Bounded: one JSON object
 * (the list, or one event) over max_object_bytes is refused, as are pods
 * beyond max_pods. Only what naming uses is kept per pod. */
#ifndef PERISCOPE_TELEMETRY_K8S_WATCH_H
#define PERISCOPE_TELEMETRY_K8S_WATCH_H

#include <stddef.h>
#include <stdint.h>

#define K8S_WATCH_NAME_MAX       253
#define K8S_WATCH_LABEL_MAX      63   /* a label value's longest */
#define K8S_WATCH_VALUE_MAX      1024 /* annotation and env values kept */
#define K8S_WATCH_CTR_ID_MAX     128
#define K8S_WATCH_RV_MAX         64
#define K8S_WATCH_MAX_CONTAINERS 32 /* per pod, init containers included */
#define K8S_WATCH_PATH_MAX       512
#define K8S_WATCH_DEFAULT_OBJECT (8 * 1024 * 1024)
#define K8S_WATCH_DEFAULT_PODS   1024
#define K8S_WATCH_DEFAULT_MIN_MS 500
#define K8S_WATCH_DEFAULT_MAX_MS 30000
#define K8S_WATCH_QUICK_CLOSE_MS 1000 /* a watch closed sooner, with no event, is a failure */

struct k8s_watch_config {
	const char *node_name;   /* required: [a-z0-9.-], at most 253 */
	size_t max_object_bytes; /* 0: K8S_WATCH_DEFAULT_OBJECT */
	size_t max_pods;         /* 0: K8S_WATCH_DEFAULT_PODS */
	uint64_t backoff_min_ms; /* 0: K8S_WATCH_DEFAULT_MIN_MS */
	uint64_t backoff_max_ms; /* 0: K8S_WATCH_DEFAULT_MAX_MS */
	/* The random source for jitter (required): any 32-bit value. */
	uint32_t (*random)(void *ctx);
	void *random_ctx;
};

struct k8s_container_info {
	char name[K8S_WATCH_NAME_MAX + 1];
	char id[K8S_WATCH_CTR_ID_MAX + 1]; /* without "containerd://" etc.; "" until started */
	char otel_service_name[K8S_WATCH_VALUE_MAX + 1]; /* the spec's literal env value */
};

struct k8s_pod_info {
	char uid[K8S_WATCH_NAME_MAX + 1];
	char name[K8S_WATCH_NAME_MAX + 1];
	char pod_namespace[K8S_WATCH_NAME_MAX + 1];
	char label_app_name[K8S_WATCH_LABEL_MAX + 1]; /* app.kubernetes.io/name */
	char label_app[K8S_WATCH_LABEL_MAX + 1];      /* app */
	char pod_template_hash[K8S_WATCH_LABEL_MAX + 1];
	char annotation_service_name[K8S_WATCH_VALUE_MAX + 1];
	char owner_kind[K8S_WATCH_LABEL_MAX + 1]; /* the controller owner reference */
	char owner_name[K8S_WATCH_NAME_MAX + 1];
	size_t n_containers;
	struct k8s_container_info *containers; /* n_containers of them */
};

enum k8s_watch_action {
	K8S_WATCH_LIST = 1,
	K8S_WATCH_WATCH,
	K8S_WATCH_WAIT, /* call k8s_watch_next again at not_before_ms */
};

struct k8s_watch_request {
	enum k8s_watch_action action;
	char path[K8S_WATCH_PATH_MAX]; /* LIST and WATCH: the request's path and query */
	uint64_t not_before_ms;        /* WAIT: the earliest time for the next request */
};

struct k8s_watch_stats {
	uint64_t lists;   /* lists completed */
	uint64_t watches; /* watch requests made */
	uint64_t events;  /* ADDED, MODIFIED, DELETED applied */
	uint64_t bookmarks;
	uint64_t gone;           /* 410 Gone (ERROR event or HTTP status) */
	uint64_t errors;         /* ERROR events other than 410, bad statuses, garbage */
	uint64_t disconnects;    /* connections that ended early */
	uint64_t too_big;        /* JSON objects refused for their size */
	uint64_t pods_refused;   /* pods over max_pods */
	uint64_t pods_skipped;   /* pod objects without a uid */
	uint64_t values_dropped; /* names and values over their caps */
};

/* What k8s_watch_feed returns besides 0 (go on) and negative errnos. */
#define K8S_WATCH_CLOSE 1 /* close this connection (a relist is due) */

struct k8s_watch;

/* NULL with errno EINVAL (bad node name, no random source) or ENOMEM. */
struct k8s_watch *k8s_watch__new(const struct k8s_watch_config *cfg);
void k8s_watch__free(struct k8s_watch *w); /* accepts NULL */

/* The next thing to do. -EBUSY while a request is open (call
 * k8s_watch_end first), -EINVAL for NULL arguments. */
int k8s_watch_next(struct k8s_watch *w, uint64_t now_ms, struct k8s_watch_request *req);

/* The HTTP status of the open request. Returns 0 when the body is to be
 * fed, K8S_WATCH_CLOSE when not (a failure or 410: see k8s_watch_end),
 * -EPROTO when no request is open. */
int k8s_watch_begin(struct k8s_watch *w, int http_status);

/* Body bytes of the open request. Returns 0 to go on, K8S_WATCH_CLOSE when
 * the connection should be closed (an ERROR event: a relist is due),
 * -EMSGSIZE for an object over max_object_bytes, -EBADMSG for garbage
 * (both make the next request a relist, after a backoff), -EPROTO when no
 * body is expected. */
int k8s_watch_feed(struct k8s_watch *w, const char *data, size_t len);

/* The open request's connection is over: error 0 for a clean end of the
 * body or a connection closed as told (K8S_WATCH_CLOSE, a negative feed),
 * a negative errno for a failed connect or a broken connection. */
void k8s_watch_end(struct k8s_watch *w, uint64_t now_ms, int error);

/* The pod running container_id (as in the container.id attribute), and in
 * *container (may be NULL) its container; NULL when unknown. The pointers
 * are borrowed until the next feed or end. */
const struct k8s_pod_info *k8s_watch_pod_by_container(const struct k8s_watch *w,
                                                      const char *container_id,
                                                      const struct k8s_container_info **container);
const struct k8s_pod_info *k8s_watch_pod_by_uid(const struct k8s_watch *w, const char *uid);
size_t k8s_watch_pod_count(const struct k8s_watch *w);
/* The last resourceVersion seen ("" before a list). */
const char *k8s_watch_resource_version(const struct k8s_watch *w);
/* One line saying what last went wrong ("" if nothing), for the log. */
const char *k8s_watch_last_error(const struct k8s_watch *w);
void k8s_watch_get_stats(const struct k8s_watch *w, struct k8s_watch_stats *out);

#endif
