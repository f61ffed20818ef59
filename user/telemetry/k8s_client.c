/* k8s_client.c — one thread with libcurl (dlopen'ed, util/curl_lib.h) driving the pod list+watch
 * state machine (see k8s_client.h). The state machine is guarded by one mutex; the transport holds
 * it only while feeding a piece of body, lookups only try it. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "telemetry/k8s_client.h"
#include "util/curl_lib.h"
#include "util/log.h"

#define URL_MAX           1024
#define TOKEN_MAX         16384
#define CONNECT_TIMEOUT_S 5
#define LIST_TIMEOUT_S    60
#define LIST_STALL_S      20 /* a list sending nothing this long is dropped */

struct k8s_client {
	char base[URL_MAX];
	char *token_file;
	char *ca_file;
	unsigned watch_timeout_s;
	struct logger *log;

	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* guards w, synced, stats_copy */
	pthread_cond_t wake;  /* stop */
	int stop;             /* atomic */
	struct k8s_watch *w;
	bool synced;
	struct k8s_client_stats stats_copy;
	uint64_t requests; /* atomic */
	uint32_t rng;

	struct curl_lib *lib; /* libcurl, loaded by k8s_client__new */

	/* the open request (transport thread only) */
	CURL *curl;
	bool begun;
	bool watching; /* the open request is a WATCH */
	bool closed_as_told;
	int feed_error;
	bool healthy;         /* the last request went well (for logging changes only) */
	char logged[200];     /* the last problem logged */
	char seen_error[200]; /* k8s_watch_last_error when last looked at */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t xorshift(void *ctx)
{
	uint32_t *s = ctx;
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x ? x : 0x9e3779b9u;
	return *s;
}

int k8s_client_in_cluster_url(char *url, size_t cap)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	int n;

	if (!host || !host[0] || !port || !port[0])
		return -ENOENT;
	n = snprintf(url, cap, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Logs a problem once until another kind of problem comes or things go well
 * again (one line per outage, whatever curl says on each retry). */
static void log_problem(struct k8s_client *c, const char *what, const char *detail)
{
	c->healthy = false;
	if (!strcmp(what, c->logged))
		return;
	snprintf(c->logged, sizeof(c->logged), "%s", what);
	log_msg(c->log, LOG_WARN, what, "detail", LOG_STR(detail), "api", LOG_STR(c->base), "note",
	        LOG_STR("container metadata from the runtime's files goes on"), NULL);
}

/* Things go well (again): one line, and the next problem is logged. */
static void say_healthy(struct k8s_client *c)
{
	if (c->healthy)
		return;
	c->healthy = true;
	c->logged[0] = '\0';
	log_msg(c->log, LOG_INFO, "watching this node's pods", "api", LOG_STR(c->base),
	        "pods_cached", LOG_UINT(k8s_watch_pod_count(c->w)), NULL);
}

/* The response's status, once its headers are in: the state machine begins. */
static bool begin_response(struct k8s_client *c)
{
	long status = 0;
	int rc;

	curl_lib_getinfo_long(c->lib, c->curl, CURLINFO_RESPONSE_CODE, &status);
	c->begun = true;
	rc = k8s_watch_begin(c->w, (int)status);
	if (rc != 0) {
		c->closed_as_told = true;
		return false;
	}
	if (c->watching && status == 200)
		say_healthy(c); /* a watch is made only after a list went well */
	return true;
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
	struct k8s_client *c = ctx;
	size_t len = size * n;
	long status = 0;
	bool go_on = true;

	curl_lib_getinfo_long(c->lib, c->curl, CURLINFO_RESPONSE_CODE, &status);
	if ((len == 2 && data[0] == '\r') || (len == 1 && data[0] == '\n')) {
		if (status >= 200 && !c->begun) { /* not a 100 Continue's end */
			pthread_mutex_lock(&c->lock);
			go_on = begin_response(c);
			pthread_mutex_unlock(&c->lock);
		}
	}
	return go_on ? len : 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
	struct k8s_client *c = ctx;
	size_t len = size * n;
	int rc;

	pthread_mutex_lock(&c->lock);
	if (!c->begun && !begin_response(c)) {
		pthread_mutex_unlock(&c->lock);
		return 0; /* aborts the transfer */
	}
	rc = k8s_watch_feed(c->w, data, len);
	pthread_mutex_unlock(&c->lock);
	if (rc != 0) {
		c->closed_as_told = true;
		c->feed_error = rc;
		return 0;
	}
	return len;
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct k8s_client *c = ctx;

	return __atomic_load_n(&c->stop, __ATOMIC_RELAXED) ? 1 : 0;
}

/* The token file's content, trimmed, into a "Authorization: Bearer" header. */
static struct curl_slist *auth_header(struct k8s_client *c)
{
	char *buf, *tok;
	size_t n;
	FILE *f;
	struct curl_slist *h = NULL;

	if (!c->token_file)
		return NULL;
	f = fopen(c->token_file, "re");
	if (!f) {
		log_problem(c, "cannot read the service account token", c->token_file);
		return NULL;
	}
	buf = malloc(TOKEN_MAX + 32);
	if (buf) {
		memcpy(buf, "Authorization: Bearer ", 22);
		n = fread(buf + 22, 1, TOKEN_MAX, f);
		buf[22 + n] = '\0';
		tok = buf + 22;
		tok[strcspn(tok, "\r\n")] = '\0';
		h = curl_lib_slist_append(c->lib, NULL, buf);
		free(buf);
	}
	fclose(f);
	return h;
}

static void do_request(struct k8s_client *c, const struct k8s_watch_request *req)
{
	char url[URL_MAX + K8S_WATCH_PATH_MAX + 64];
	struct curl_slist *headers;
	bool watch = req->action == K8S_WATCH_WATCH;
	long status = 0;
	bool new_error;
	CURLcode res;
	int error = 0;

	snprintf(url, sizeof(url), "%s%s", c->base, req->path);
	if (watch)
		snprintf(url + strlen(url), sizeof(url) - strlen(url), "&timeoutSeconds=%u",
		         c->watch_timeout_s);
	headers = auth_header(c);
	headers = curl_lib_slist_append(c->lib, headers, "Accept: application/json");
	curl_lib_easy_reset(c->lib, c->curl);
	curl_lib_setopt_ptr(c->lib, c->curl, CURLOPT_URL, url);
	curl_lib_setopt_ptr(c->lib, c->curl, CURLOPT_HTTPHEADER, headers);
	curl_lib_setopt_long(c->lib, c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_lib_setopt_ptr(c->lib, c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_lib_setopt_long(c->lib, c->curl, CURLOPT_CONNECTTIMEOUT, (long)CONNECT_TIMEOUT_S);
	curl_lib_setopt_long(c->lib, c->curl, CURLOPT_TIMEOUT,
	                     (long)(watch ? c->watch_timeout_s + 30 : LIST_TIMEOUT_S));
	if (!watch) {
		curl_lib_setopt_long(c->lib, c->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_lib_setopt_long(c->lib, c->curl, CURLOPT_LOW_SPEED_TIME, (long)LIST_STALL_S);
	}
	if (c->ca_file)
		curl_lib_setopt_ptr(c->lib, c->curl, CURLOPT_CAINFO, c->ca_file);
	curl_lib_setopt_fn(c->lib, c->curl, CURLOPT_WRITEFUNCTION, (curl_lib_fn)on_body);
	curl_lib_setopt_ptr(c->lib, c->curl, CURLOPT_WRITEDATA, c);
	curl_lib_setopt_fn(c->lib, c->curl, CURLOPT_HEADERFUNCTION, (curl_lib_fn)on_header);
	curl_lib_setopt_ptr(c->lib, c->curl, CURLOPT_HEADERDATA, c);
	curl_lib_setopt_long(c->lib, c->curl, CURLOPT_NOPROGRESS, 0L);
	curl_lib_setopt_fn(c->lib, c->curl, CURLOPT_XFERINFOFUNCTION, (curl_lib_fn)on_progress);
	curl_lib_setopt_ptr(c->lib, c->curl, CURLOPT_XFERINFODATA, c);
	c->begun = false;
	c->watching = watch;
	c->closed_as_told = false;
	c->feed_error = 0;
	__atomic_add_fetch(&c->requests, 1, __ATOMIC_RELAXED);

	res = curl_lib_easy_perform(c->lib, c->curl);
	curl_lib_getinfo_long(c->lib, c->curl, CURLINFO_RESPONSE_CODE, &status);
	curl_lib_slist_free_all(c->lib, headers);

	pthread_mutex_lock(&c->lock);
	if (!c->begun && status > 0)
		begin_response(c);
	if (c->closed_as_told)
		error = 0;
	else if (res == CURLE_OK)
		error = 0;
	else if (res == CURLE_OPERATION_TIMEDOUT)
		error = -ETIMEDOUT;
	else if (res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST)
		error = -ECONNREFUSED;
	else
		error = -EIO;
	k8s_watch_end(c->w, mono_ms(), error);
	k8s_watch_get_stats(c->w, &c->stats_copy.watch);
	c->stats_copy.pods = k8s_watch_pod_count(c->w);
	if (c->stats_copy.watch.lists > 0)
		c->synced = true;
	pthread_mutex_unlock(&c->lock);

	if (__atomic_load_n(&c->stop, __ATOMIC_RELAXED))
		return;
	new_error = strcmp(k8s_watch_last_error(c->w), c->seen_error) != 0;
	snprintf(c->seen_error, sizeof(c->seen_error), "%s", k8s_watch_last_error(c->w));
	if (c->feed_error == K8S_WATCH_CLOSE) {
		/* an ERROR event (410 Gone: the usual end of a long watch) */
		log_msg(c->log, LOG_DEBUG, "kubernetes API: relisting", "detail",
		        LOG_STR(k8s_watch_last_error(c->w)), NULL);
	} else if (c->feed_error == -EMSGSIZE) {
		log_problem(c, "kubernetes API response too big: refused, will retry",
		            k8s_watch_last_error(c->w));
	} else if (c->feed_error) {
		log_problem(c,
		            "kubernetes API sent something that is not a pod list or watch event",
		            k8s_watch_last_error(c->w));
	} else if (res != CURLE_OK && !c->closed_as_told &&
	           !(watch && res == CURLE_OPERATION_TIMEDOUT)) {
		log_problem(c, "kubernetes API unreachable", curl_lib_easy_strerror(c->lib, res));
	} else if (status >= 300 && status != 410) {
		char detail[64];

		snprintf(detail, sizeof(detail), "HTTP status %ld", status);
		log_problem(c, "kubernetes API refused the pod list", detail);
	} else if (watch && new_error && c->seen_error[0]) {
		/* a watch that ended badly without a transport error (closed at once) */
		log_problem(c, "kubernetes API watch failed", k8s_watch_last_error(c->w));
	} else if (!watch && res == CURLE_OK && status == 200) {
		pthread_mutex_lock(&c->lock);
		say_healthy(c);
		pthread_mutex_unlock(&c->lock);
	}
}

static void *run(void *ctx)
{
	struct k8s_client *c = ctx;
	struct k8s_watch_request req;

	while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
		int rc;

		pthread_mutex_lock(&c->lock);
		rc = k8s_watch_next(c->w, mono_ms(), &req);
		pthread_mutex_unlock(&c->lock);
		if (rc < 0)
			break;
		if (req.action == K8S_WATCH_WAIT) {
			struct timespec until;
			uint64_t now = mono_ms();
			uint64_t wait = req.not_before_ms > now ? req.not_before_ms - now : 0;

			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_sec += (time_t)(wait / 1000);
			until.tv_nsec += (long)(wait % 1000) * 1000000;
			if (until.tv_nsec >= 1000000000) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_mutex_lock(&c->lock);
			while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED) &&
			       pthread_cond_timedwait(&c->wake, &c->lock, &until) == 0)
				;
			pthread_mutex_unlock(&c->lock);
			continue;
		}
		do_request(c, &req);
	}
	return NULL;
}

struct k8s_client *k8s_client__new(const struct k8s_client_config *cfg)
{
	struct k8s_watch_config wc = {0};
	pthread_condattr_t ca;
	struct k8s_client *c;
	char why[300];
	int rc;

	if (!cfg || !cfg->api_url || !cfg->node_name ||
	    (strncmp(cfg->api_url, "http://", 7) && strncmp(cfg->api_url, "https://", 8)) ||
	    strlen(cfg->api_url) >= URL_MAX) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		errno = ENOMEM;
		return NULL;
	}
	snprintf(c->base, sizeof(c->base), "%s", cfg->api_url);
	while (strlen(c->base) > 8 && c->base[strlen(c->base) - 1] == '/')
		c->base[strlen(c->base) - 1] = '\0';
	c->token_file = cfg->token_file ? strdup(cfg->token_file) : NULL;
	c->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
	c->watch_timeout_s = cfg->watch_timeout_s ? cfg->watch_timeout_s : 300;
	c->log = cfg->log;
	c->rng = (uint32_t)(mono_ms() ^ ((uint32_t)getpid() << 16)) | 1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->wake, &ca);
	pthread_condattr_destroy(&ca);
	wc.node_name = cfg->node_name;
	wc.max_object_bytes = cfg->max_object_bytes;
	wc.random = xorshift;
	wc.random_ctx = &c->rng;
	c->w = k8s_watch__new(&wc);
	if (!c->w)
		goto cleanup; /* errno from k8s_watch__new */
	rc = curl_lib__open(&c->lib, why, sizeof(why));
	if (rc < 0) {
		log_msg(c->log, LOG_ERROR, "cannot load libcurl for the Kubernetes API", "detail",
		        LOG_STR(why), NULL);
		errno = -rc;
		goto cleanup;
	}
	c->curl = curl_lib_easy_init(c->lib);
	if ((cfg->token_file && !c->token_file) || (cfg->ca_file && !c->ca_file) || !c->curl) {
		errno = ENOMEM;
		goto cleanup;
	}
	if (pthread_create(&c->thread, NULL, run, c) != 0) {
		errno = ENOMEM;
		goto cleanup;
	}
	c->started = true;
	return c;
cleanup : {
	int saved = errno;

	k8s_client__free(c);
	errno = saved;
}
	return NULL;
}

void k8s_client__free(struct k8s_client *c)
{
	if (!c)
		return;
	if (c->started) {
		pthread_mutex_lock(&c->lock);
		__atomic_store_n(&c->stop, 1, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&c->wake);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
	}
	if (c->curl)
		curl_lib_easy_cleanup(c->lib, c->curl);
	curl_lib__close(c->lib);
	k8s_watch__free(c->w);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c->token_file);
	free(c->ca_file);
	free(c);
}

static void copy_meta(const struct k8s_pod_info *p, const struct k8s_container_info *ci,
                      struct k8s_pod_meta *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->uid, sizeof(out->uid), "%s", p->uid);
	snprintf(out->name, sizeof(out->name), "%s", p->name);
	snprintf(out->pod_namespace, sizeof(out->pod_namespace), "%s", p->pod_namespace);
	snprintf(out->label_app_name, sizeof(out->label_app_name), "%s", p->label_app_name);
	snprintf(out->annotation_service_name, sizeof(out->annotation_service_name), "%s",
	         p->annotation_service_name);
	if (!ci && p->n_containers == 1)
		ci = &p->containers[0];
	if (ci) {
		snprintf(out->container_name, sizeof(out->container_name), "%s", ci->name);
		snprintf(out->container_otel_service_name, sizeof(out->container_otel_service_name),
		         "%s", ci->otel_service_name);
	}
	if (k8s_workload_from_owner(p->owner_kind, p->owner_name, p->pod_template_hash,
	                            &out->workload) < 0)
		memset(&out->workload, 0, sizeof(out->workload));
}

int k8s_client_lookup(struct k8s_client *c, const char *container_id, const char *pod_uid,
                      struct k8s_pod_meta *out)
{
	const struct k8s_container_info *ci = NULL;
	const struct k8s_pod_info *p = NULL;

	if (!c || !out)
		return -EINVAL;
	if (pthread_mutex_trylock(&c->lock) != 0)
		return -EBUSY;
	if (container_id && container_id[0])
		p = k8s_watch_pod_by_container(c->w, container_id, &ci);
	if (!p && pod_uid && pod_uid[0])
		p = k8s_watch_pod_by_uid(c->w, pod_uid);
	if (p)
		copy_meta(p, ci, out);
	pthread_mutex_unlock(&c->lock);
	return p ? 1 : 0;
}

int k8s_client_synced(struct k8s_client *c)
{
	int synced = 0;

	if (c && pthread_mutex_trylock(&c->lock) == 0) {
		synced = c->synced;
		pthread_mutex_unlock(&c->lock);
	}
	return synced;
}

void k8s_client_get_stats(struct k8s_client *c, struct k8s_client_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!c)
		return;
	if (pthread_mutex_trylock(&c->lock) == 0) { /* never wait behind a feed */
		*out = c->stats_copy;
		pthread_mutex_unlock(&c->lock);
	}
	out->requests = __atomic_load_n(&c->requests, __ATOMIC_RELAXED);
}
