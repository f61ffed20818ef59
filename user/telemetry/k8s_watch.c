/* k8s_watch.c — the pod list+watch state machine (see k8s_watch.h): json-c
 * parses the bodies incrementally, one top-level object (one line) at a
 * time, and the pods are kept in an array (a node runs at most a few
 * hundred; lookups are made once per process, not per event). */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/k8s_watch.h"

#define JSON_DEPTH 64

/* The longest request path (node name and resourceVersion at their caps)
 * fits in a request's path buffer. */
_Static_assert(sizeof("/api/v1/pods?fieldSelector=spec.nodeName=&watch=1&resourceVersion="
                      "&allowWatchBookmarks=true") +
                       K8S_WATCH_NAME_MAX + K8S_WATCH_RV_MAX <=
                   K8S_WATCH_PATH_MAX,
               "request path buffer too small");

enum phase {
	PHASE_IDLE,     /* the next request is decided by relist */
	PHASE_LISTING,  /* a LIST request is open */
	PHASE_WATCHING, /* a WATCH request is open */
	PHASE_BACKOFF,  /* waiting until backoff_until */
};

struct k8s_watch {
	char node[K8S_WATCH_NAME_MAX + 1];
	size_t max_object_bytes;
	size_t max_pods;
	uint64_t backoff_min_ms, backoff_max_ms;
	uint32_t (*random)(void *ctx);
	void *random_ctx;

	enum phase phase;
	bool relist;       /* the next request is a LIST */
	bool body;         /* the open request's body is to be fed */
	bool list_done;    /* the open LIST's object was applied */
	bool failed;       /* the open request failed (status, garbage, ERROR) */
	bool gone;         /* … with 410 Gone: relist at once */
	unsigned failures; /* consecutive, for the backoff */
	uint64_t backoff_until;
	uint64_t request_start;
	uint64_t request_events; /* events seen on the open watch */
	char rv[K8S_WATCH_RV_MAX + 1];

	struct json_tokener *tok;
	size_t obj_bytes; /* bytes of the object being parsed */

	struct k8s_pod_info **pods;
	size_t n_pods;

	char last_error[160];
	struct k8s_watch_stats stats;
};

static bool set(const char *s)
{
	return s && s[0];
}

static void set_error(struct k8s_watch *w, const char *what, const char *detail)
{
	snprintf(w->last_error, sizeof(w->last_error), "%s%s%.100s", what, set(detail) ? ": " : "",
	         detail ? detail : "");
}

static bool valid_node_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > K8S_WATCH_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '.' ||
		      s[i] == '-'))
			return false;
	return true;
}

static bool valid_rv(const char *s, size_t n)
{
	if (n == 0 || n > K8S_WATCH_RV_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

static void pod_free(struct k8s_pod_info *p)
{
	if (!p)
		return;
	free(p->containers);
	free(p);
}

static void cache_clear(struct k8s_watch *w)
{
	for (size_t i = 0; i < w->n_pods; i++)
		pod_free(w->pods[i]);
	w->n_pods = 0;
}

struct k8s_watch *k8s_watch__new(const struct k8s_watch_config *cfg)
{
	struct k8s_watch *w = NULL;

	if (!cfg || !valid_node_name(cfg->node_name) || !cfg->random) {
		errno = EINVAL;
		return NULL;
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		goto fail;
	strcpy(w->node, cfg->node_name);
	w->max_object_bytes =
	    cfg->max_object_bytes ? cfg->max_object_bytes : K8S_WATCH_DEFAULT_OBJECT;
	if (w->max_object_bytes > INT32_MAX) /* json-c takes an int length */
		w->max_object_bytes = INT32_MAX;
	w->max_pods = cfg->max_pods ? cfg->max_pods : K8S_WATCH_DEFAULT_PODS;
	w->backoff_min_ms = cfg->backoff_min_ms ? cfg->backoff_min_ms : K8S_WATCH_DEFAULT_MIN_MS;
	w->backoff_max_ms = cfg->backoff_max_ms ? cfg->backoff_max_ms : K8S_WATCH_DEFAULT_MAX_MS;
	if (w->backoff_max_ms < w->backoff_min_ms)
		w->backoff_max_ms = w->backoff_min_ms;
	w->random = cfg->random;
	w->random_ctx = cfg->random_ctx;
	w->relist = true;
	w->pods = calloc(w->max_pods, sizeof(*w->pods));
	w->tok = json_tokener_new_ex(JSON_DEPTH);
	if (!w->pods || !w->tok)
		goto fail;
	json_tokener_set_flags(w->tok, JSON_TOKENER_STRICT);
	return w;
fail:
	k8s_watch__free(w);
	errno = ENOMEM;
	return NULL;
}

void k8s_watch__free(struct k8s_watch *w)
{
	if (!w)
		return;
	if (w->pods)
		cache_clear(w);
	free(w->pods);
	if (w->tok)
		json_tokener_free(w->tok);
	free(w);
}

/* ---- JSON helpers ---- */

static struct json_object *get(struct json_object *o, const char *key, enum json_type type)
{
	struct json_object *v;
	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

/* Copies o[key] (a string) into dst; counts it dropped when too long. */
static void copy_str(struct k8s_watch *w, struct json_object *o, const char *key, char *dst,
                     size_t cap)
{
	struct json_object *v = get(o, key, json_type_string);
	if (!v)
		return;
	size_t n = (size_t)json_object_get_string_len(v);
	const char *s = json_object_get_string(v);
	if (n >= cap || memchr(s, '\0', n)) {
		w->stats.values_dropped++;
		return;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
}

/* ---- pods ---- */

static struct k8s_container_info *container_named(struct k8s_pod_info *p, const char *name)
{
	for (size_t i = 0; i < p->n_containers; i++)
		if (strcmp(p->containers[i].name, name) == 0)
			return &p->containers[i];
	return NULL;
}

/* spec.containers / spec.initContainers: names and OTEL_SERVICE_NAME. */
static void read_spec_containers(struct k8s_watch *w, struct json_object *arr,
                                 struct k8s_pod_info *p)
{
	size_t n = arr ? json_object_array_length(arr) : 0;
	for (size_t i = 0; i < n && p->n_containers < K8S_WATCH_MAX_CONTAINERS; i++) {
		struct json_object *c = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(c, json_type_object))
			continue;
		struct k8s_container_info *ci = &p->containers[p->n_containers];
		memset(ci, 0, sizeof(*ci));
		copy_str(w, c, "name", ci->name, sizeof(ci->name));
		if (!ci->name[0] || container_named(p, ci->name))
			continue;
		struct json_object *env = get(c, "env", json_type_array);
		size_t m = env ? json_object_array_length(env) : 0;
		for (size_t k = 0; k < m; k++) {
			struct json_object *e = json_object_array_get_idx(env, k);
			struct json_object *name = get(e, "name", json_type_string);
			if (name &&
			    strcmp(json_object_get_string(name), "OTEL_SERVICE_NAME") == 0) {
				copy_str(w, e, "value", ci->otel_service_name,
				         sizeof(ci->otel_service_name));
				break;
			}
		}
		p->n_containers++;
	}
}

/* status.containerStatuses / initContainerStatuses: name → container id. */
static void read_statuses(struct k8s_watch *w, struct json_object *arr, struct k8s_pod_info *p)
{
	size_t n = arr ? json_object_array_length(arr) : 0;
	for (size_t i = 0; i < n; i++) {
		struct json_object *st = json_object_array_get_idx(arr, i);
		struct json_object *name = get(st, "name", json_type_string);
		struct json_object *id = get(st, "containerID", json_type_string);
		if (!name || !id)
			continue;
		struct k8s_container_info *ci = container_named(p, json_object_get_string(name));
		if (!ci)
			continue;
		/* "containerd://<id>", "cri-o://<id>", "docker://<id>". */
		const char *s = json_object_get_string(id);
		const char *sep = strstr(s, "://");
		s = sep ? sep + 3 : s;
		size_t len = strlen(s);
		if (len >= sizeof(ci->id)) {
			w->stats.values_dropped++;
			continue;
		}
		memcpy(ci->id, s, len + 1);
	}
}

/* A Pod object → a new k8s_pod_info; NULL (counted) without a uid. */
static struct k8s_pod_info *pod_from_json(struct k8s_watch *w, struct json_object *o)
{
	struct json_object *meta = get(o, "metadata", json_type_object);
	struct json_object *spec = get(o, "spec", json_type_object);
	struct json_object *status = get(o, "status", json_type_object);
	struct json_object *labels = get(meta, "labels", json_type_object);
	struct json_object *ann = get(meta, "annotations", json_type_object);
	struct json_object *owners = get(meta, "ownerReferences", json_type_array);
	struct k8s_pod_info *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	copy_str(w, meta, "uid", p->uid, sizeof(p->uid));
	if (!p->uid[0]) {
		w->stats.pods_skipped++;
		pod_free(p);
		return NULL;
	}
	copy_str(w, meta, "name", p->name, sizeof(p->name));
	copy_str(w, meta, "namespace", p->pod_namespace, sizeof(p->pod_namespace));
	copy_str(w, labels, "app.kubernetes.io/name", p->label_app_name, sizeof(p->label_app_name));
	copy_str(w, labels, "app", p->label_app, sizeof(p->label_app));
	copy_str(w, labels, "pod-template-hash", p->pod_template_hash,
	         sizeof(p->pod_template_hash));
	copy_str(w, ann, "resource.opentelemetry.io/service.name", p->annotation_service_name,
	         sizeof(p->annotation_service_name));
	/* The controller reference, else the first one. */
	size_t n = owners ? json_object_array_length(owners) : 0;
	struct json_object *owner = NULL;
	for (size_t i = 0; i < n; i++) {
		struct json_object *r = json_object_array_get_idx(owners, i);
		struct json_object *ctl = get(r, "controller", json_type_boolean);
		if (!owner || (ctl && json_object_get_boolean(ctl))) {
			owner = r;
			if (ctl && json_object_get_boolean(ctl))
				break;
		}
	}
	copy_str(w, owner, "kind", p->owner_kind, sizeof(p->owner_kind));
	copy_str(w, owner, "name", p->owner_name, sizeof(p->owner_name));

	p->containers = calloc(K8S_WATCH_MAX_CONTAINERS, sizeof(*p->containers));
	if (!p->containers) {
		pod_free(p);
		return NULL;
	}
	read_spec_containers(w, get(spec, "containers", json_type_array), p);
	read_spec_containers(w, get(spec, "initContainers", json_type_array), p);
	read_statuses(w, get(status, "containerStatuses", json_type_array), p);
	read_statuses(w, get(status, "initContainerStatuses", json_type_array), p);
	/* Keep only as many container slots as used. */
	if (p->n_containers == 0) {
		free(p->containers);
		p->containers = NULL;
	} else {
		struct k8s_container_info *c =
		    realloc(p->containers, p->n_containers * sizeof(*p->containers));
		if (c)
			p->containers = c;
	}
	return p;
}

static size_t pod_index(const struct k8s_watch *w, const char *uid)
{
	for (size_t i = 0; i < w->n_pods; i++)
		if (strcmp(w->pods[i]->uid, uid) == 0)
			return i;
	return SIZE_MAX;
}

/* Takes p into the cache (replacing the pod of the same uid). */
static void pod_put(struct k8s_watch *w, struct k8s_pod_info *p)
{
	size_t i = pod_index(w, p->uid);
	if (i != SIZE_MAX) {
		pod_free(w->pods[i]);
		w->pods[i] = p;
	} else if (w->n_pods < w->max_pods) {
		w->pods[w->n_pods++] = p;
	} else {
		w->stats.pods_refused++;
		set_error(w, "pod cache full, pod left out", p->uid);
		pod_free(p);
	}
}

static void pod_delete(struct k8s_watch *w, const char *uid)
{
	size_t i = pod_index(w, uid);
	if (i == SIZE_MAX)
		return;
	pod_free(w->pods[i]);
	w->pods[i] = w->pods[--w->n_pods];
}

/* Moves the resourceVersion to o's metadata.resourceVersion, if valid. */
static void take_rv(struct k8s_watch *w, struct json_object *o)
{
	struct json_object *v =
	    get(get(o, "metadata", json_type_object), "resourceVersion", json_type_string);
	if (!v)
		return;
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (!valid_rv(s, n)) {
		w->stats.values_dropped++;
		return;
	}
	memcpy(w->rv, s, n + 1);
}

/* ---- bodies ---- */

static int fail_garbage(struct k8s_watch *w, const char *what, const char *detail)
{
	w->failed = true;
	w->relist = true;
	w->stats.errors++;
	set_error(w, what, detail);
	return -EBADMSG;
}

static int apply_list(struct k8s_watch *w, struct json_object *o)
{
	struct json_object *items = get(o, "items", json_type_array);
	struct json_object *kind = get(o, "kind", json_type_string);

	if (w->list_done)
		return fail_garbage(w, "pod list: more than one object in the body", NULL);
	if (!items || (kind && strcmp(json_object_get_string(kind), "PodList") != 0))
		return fail_garbage(w, "pod list: not a PodList",
		                    kind ? json_object_get_string(kind) : NULL);
	char old_rv[sizeof(w->rv)];
	memcpy(old_rv, w->rv, sizeof(old_rv));
	w->rv[0] = '\0';
	take_rv(w, o);
	if (!w->rv[0]) {
		memcpy(w->rv, old_rv, sizeof(w->rv));
		return fail_garbage(w, "pod list: no resourceVersion", NULL);
	}
	/* The list replaces the cache: pods gone meanwhile are forgotten. */
	cache_clear(w);
	size_t n = json_object_array_length(items);
	for (size_t i = 0; i < n; i++) {
		struct json_object *it = json_object_array_get_idx(items, i);
		if (!json_object_is_type(it, json_type_object)) {
			w->stats.pods_skipped++;
			continue;
		}
		struct k8s_pod_info *p = pod_from_json(w, it);
		if (p)
			pod_put(w, p);
	}
	w->list_done = true;
	w->relist = false;
	w->stats.lists++;
	return 0;
}

static int apply_event(struct k8s_watch *w, struct json_object *o)
{
	struct json_object *type = get(o, "type", json_type_string);
	struct json_object *obj = get(o, "object", json_type_object);

	if (!type || !obj)
		return fail_garbage(w, "pod watch: an event without type or object", NULL);
	const char *t = json_object_get_string(type);
	if (strcmp(t, "ERROR") == 0) {
		struct json_object *code = get(obj, "code", json_type_int);
		struct json_object *msg = get(obj, "message", json_type_string);
		w->failed = true;
		w->relist = true;
		w->rv[0] = '\0';
		if (code && json_object_get_int(code) == 410) {
			w->gone = true;
			w->stats.gone++;
			set_error(w, "pod watch: 410 Gone, relisting",
			          msg ? json_object_get_string(msg) : NULL);
		} else {
			w->stats.errors++;
			set_error(w, "pod watch: ERROR event",
			          msg ? json_object_get_string(msg) : NULL);
		}
		return K8S_WATCH_CLOSE;
	}
	if (strcmp(t, "BOOKMARK") == 0) {
		take_rv(w, obj);
		w->stats.bookmarks++;
		w->request_events++;
		return 0;
	}
	bool deleted = strcmp(t, "DELETED") == 0;
	if (!deleted && strcmp(t, "ADDED") != 0 && strcmp(t, "MODIFIED") != 0)
		return fail_garbage(w, "pod watch: unknown event type", t);
	if (deleted) {
		char uid[K8S_WATCH_NAME_MAX + 1] = "";
		copy_str(w, get(obj, "metadata", json_type_object), "uid", uid, sizeof(uid));
		if (uid[0])
			pod_delete(w, uid);
		else
			w->stats.pods_skipped++;
	} else {
		struct k8s_pod_info *p = pod_from_json(w, obj);
		if (p)
			pod_put(w, p);
	}
	take_rv(w, obj);
	w->stats.events++;
	w->request_events++;
	return 0;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int k8s_watch_feed(struct k8s_watch *w, const char *data, size_t len)
{
	int ret = 0;

	if (!w || (!data && len))
		return -EINVAL;
	if (!w->body || w->failed)
		return -EPROTO;
	while (len > 0) {
		if (w->obj_bytes == 0) {
			while (len > 0 && is_space(*data))
				data++, len--;
			if (len == 0)
				break;
		}
		size_t room = w->max_object_bytes - w->obj_bytes;
		size_t n = len < room ? len : room;
		if (n == 0) {
			w->failed = true;
			w->relist = true;
			w->stats.too_big++;
			w->stats.errors++;
			set_error(w, "pod API: a JSON object over the size limit, refused", NULL);
			ret = -EMSGSIZE;
			goto cleanup;
		}
		/* Events end with a newline: parse up to it, for json-c's strict
		 * mode takes nothing but whitespace after an object. */
		const char *nl = memchr(data, '\n', n);
		if (nl)
			n = (size_t)(nl - data) + 1;
		struct json_object *o = json_tokener_parse_ex(w->tok, data, (int)n);
		enum json_tokener_error err = json_tokener_get_error(w->tok);
		if (err == json_tokener_continue) {
			w->obj_bytes += n;
			data += n;
			len -= n;
			continue;
		}
		if (err != json_tokener_success || !o) {
			json_object_put(o);
			ret =
			    fail_garbage(w, "pod API: invalid JSON", json_tokener_error_desc(err));
			goto cleanup;
		}
		size_t used = json_tokener_get_parse_end(w->tok);
		json_tokener_reset(w->tok);
		w->obj_bytes = 0;
		data += used;
		len -= used;
		if (!json_object_is_type(o, json_type_object))
			ret = fail_garbage(w, "pod API: a JSON value that is not an object", NULL);
		else if (w->phase == PHASE_LISTING)
			ret = apply_list(w, o);
		else
			ret = apply_event(w, o);
		json_object_put(o);
		if (ret != 0)
			goto cleanup;
	}
cleanup:
	return ret;
}

/* ---- requests ---- */

static void start_backoff(struct k8s_watch *w, uint64_t now_ms)
{
	uint64_t delay = w->backoff_min_ms;
	for (unsigned i = 1; i < w->failures && delay < w->backoff_max_ms; i++)
		delay *= 2;
	if (delay > w->backoff_max_ms)
		delay = w->backoff_max_ms;
	/* Equal jitter: half fixed, half random. */
	uint64_t half = delay / 2;
	delay = half + (uint64_t)w->random(w->random_ctx) % (delay - half + 1);
	w->backoff_until = now_ms + delay;
	w->phase = PHASE_BACKOFF;
}

int k8s_watch_next(struct k8s_watch *w, uint64_t now_ms, struct k8s_watch_request *req)
{
	int ret = 0;

	if (!w || !req)
		return -EINVAL;
	memset(req, 0, sizeof(*req));
	if (w->phase == PHASE_LISTING || w->phase == PHASE_WATCHING) {
		ret = -EBUSY;
		goto cleanup;
	}
	if (w->phase == PHASE_BACKOFF && now_ms < w->backoff_until) {
		req->action = K8S_WATCH_WAIT;
		req->not_before_ms = w->backoff_until;
		goto cleanup;
	}
	if (w->relist || !w->rv[0]) {
		snprintf(req->path, sizeof(req->path),
		         "/api/v1/pods?fieldSelector=spec.nodeName=%s", w->node);
		req->action = K8S_WATCH_LIST;
		w->phase = PHASE_LISTING;
	} else {
		snprintf(req->path, sizeof(req->path),
		         "/api/v1/pods?fieldSelector=spec.nodeName=%s&watch=1&resourceVersion=%s"
		         "&allowWatchBookmarks=true",
		         w->node, w->rv);
		req->action = K8S_WATCH_WATCH;
		w->phase = PHASE_WATCHING;
		w->stats.watches++;
	}
	w->body = false;
	w->failed = false;
	w->gone = false;
	w->list_done = false;
	w->request_start = now_ms;
	w->request_events = 0;
	w->obj_bytes = 0;
	json_tokener_reset(w->tok);
cleanup:
	return ret;
}

int k8s_watch_begin(struct k8s_watch *w, int http_status)
{
	char code[16];

	if (!w)
		return -EINVAL;
	if ((w->phase != PHASE_LISTING && w->phase != PHASE_WATCHING) || w->body || w->failed)
		return -EPROTO;
	if (http_status == 200) {
		w->body = true;
		return 0;
	}
	snprintf(code, sizeof(code), "%d", http_status);
	w->failed = true;
	if (http_status == 410) {
		w->gone = true;
		w->relist = true;
		w->rv[0] = '\0';
		w->stats.gone++;
		set_error(w, "pod API: HTTP 410 Gone, relisting", NULL);
	} else {
		w->stats.errors++;
		set_error(w, "pod API: HTTP status", code);
	}
	return K8S_WATCH_CLOSE;
}

void k8s_watch_end(struct k8s_watch *w, uint64_t now_ms, int error)
{
	bool ok;

	if (!w || (w->phase != PHASE_LISTING && w->phase != PHASE_WATCHING))
		return;
	if (w->phase == PHASE_LISTING) {
		ok = w->list_done && !w->failed;
		if (!ok && !w->failed) {
			w->stats.disconnects++;
			set_error(w, "pod list: the connection ended before the list did",
			          error ? strerror(-error) : NULL);
		}
		if (!ok)
			w->relist = true;
	} else {
		/* A 410 relists at once; any other failure, a partial event, a
		 * broken connection or a watch closed at once with nothing backs
		 * off first. */
		bool partial = w->obj_bytes > 0;
		bool quick =
		    now_ms - w->request_start < K8S_WATCH_QUICK_CLOSE_MS && w->request_events == 0;
		ok = (w->gone && !error) || (!w->failed && !partial && !error && !quick);
		if (!w->failed && (partial || error || quick)) {
			w->stats.disconnects++;
			set_error(w,
			          partial ? "pod watch: disconnected inside an event"
			                  : "pod watch: the connection ended early",
			          error ? strerror(-error) : NULL);
		}
	}
	w->body = false;
	w->obj_bytes = 0;
	json_tokener_reset(w->tok);
	if (ok) {
		w->failures = 0;
		w->phase = PHASE_IDLE;
	} else {
		w->failures++;
		start_backoff(w, now_ms);
	}
}

/* ---- lookups ---- */

const struct k8s_pod_info *k8s_watch_pod_by_container(const struct k8s_watch *w,
                                                      const char *container_id,
                                                      const struct k8s_container_info **container)
{
	if (container)
		*container = NULL;
	if (!w || !set(container_id))
		return NULL;
	for (size_t i = 0; i < w->n_pods; i++) {
		const struct k8s_pod_info *p = w->pods[i];
		for (size_t k = 0; k < p->n_containers; k++) {
			if (strcmp(p->containers[k].id, container_id) == 0) {
				if (container)
					*container = &p->containers[k];
				return p;
			}
		}
	}
	return NULL;
}

const struct k8s_pod_info *k8s_watch_pod_by_uid(const struct k8s_watch *w, const char *uid)
{
	if (!w || !set(uid))
		return NULL;
	size_t i = pod_index(w, uid);
	return i == SIZE_MAX ? NULL : w->pods[i];
}

size_t k8s_watch_pod_count(const struct k8s_watch *w)
{
	return w ? w->n_pods : 0;
}

const char *k8s_watch_resource_version(const struct k8s_watch *w)
{
	return w ? w->rv : "";
}

const char *k8s_watch_last_error(const struct k8s_watch *w)
{
	return w ? w->last_error : "";
}

void k8s_watch_get_stats(const struct k8s_watch *w, struct k8s_watch_stats *out)
{
	if (!w || !out)
		return;
	*out = w->stats;
}
