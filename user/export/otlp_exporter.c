/* otlp_exporter.c — the OTLP/HTTP exporter thread. Spans are copied into a
 * fixed ring of struct span; the worker encodes up to one batch straight from
 * the ring (those slots stay occupied until the batch is done, so the queue
 * stays bounded while an endpoint is down), posts it with libcurl (one easy
 * handle, keep-alive; libcurl is dlopen'ed here, util/curl_lib.h) and retries 429/502/503/504 and
 * connection errors with exponential backoff and jitter, honouring Retry-After. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "export/otlp_encode.h"
#include "export/otlp_exporter.h"
#include "telemetry/span.h"
#include "util/curl_lib.h"

#define DEFAULT_ENDPOINT "http://localhost:4318"
#define ERROR_BODY_MAX   200

enum post_result {
	POST_OK = 0,
	POST_DROPPED, /* non-retryable answer, or retries exhausted */
	POST_ABORTED, /* the exporter is stopping */
};

enum signal_kind {
	SIGNAL_TRACES = 0,
	SIGNAL_METRICS = 1,
	SIGNAL_LOGS = 2,
	SIGNAL__COUNT,
};

struct metric_body {
	uint8_t *data;
	size_t len;
	size_t records; /* log batches: records in it */
};

/* Per-signal logging state, so a dead endpoint logs once, not per retry. */
struct signal_health {
	bool failing;
	uint64_t failed_attempts;
};

struct otlp_exporter {
	struct otlp_exporter_config cfg;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t wake;    /* the worker waits on this */
	pthread_cond_t flushed; /* flush callers wait on this */
	bool stop;              /* read with __atomic by the curl progress callback */

	/* Under lock: slots [head, head + count) of ring are queued spans. */
	struct span *ring;
	size_t ring_cap, head, count;
	struct metric_body *metric_ring;
	size_t metric_cap, metric_head, metric_count;
	struct metric_body *log_ring;
	size_t log_cap, log_head, log_count;
	uint64_t flush_requested, flush_done;
	struct otlp_exporter_stats stats; /* counters via __atomic */

	struct curl_lib *lib; /* libcurl, loaded by otlp_exporter__new */

	/* Worker thread only. */
	CURL *curl;
	struct curl_slist *signal_headers[SIGNAL__COUNT];
	const struct span **batch;
	struct signal_health health[SIGNAL__COUNT];
	uint64_t rng;
	long retry_after_s; /* from the last response, -1 when absent */
	char error_body[ERROR_BODY_MAX + 1];
	size_t error_body_len;
	char curl_error[CURL_ERROR_SIZE];
};

static void stat_add(uint64_t *counter, uint64_t v)
{
	__atomic_add_fetch(counter, v, __ATOMIC_RELAXED);
}

static uint64_t stat_get(const uint64_t *counter)
{
	return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

static void exporter_log(const struct otlp_exporter *e, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void exporter_log(const struct otlp_exporter *e, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!e->cfg.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	e->cfg.log(e->cfg.log_ctx, level, msg);
}

/* ---- configuration ---- */

int otlp_signal_url(const char *base, const char *signal, char *out, size_t out_size)
{
	size_t len = strlen(base);
	int n;

	while (len > 0 && base[len - 1] == '/')
		len--;
	n = snprintf(out, out_size, "%.*s/v1/%s", (int)len, base, signal);
	return n < 0 || (size_t)n >= out_size ? -ENAMETOOLONG : 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Copies s[0..len) trimmed of spaces into out, URL-decoding when asked.
 * Returns false when it does not fit or holds a control character. */
static bool copy_header_part(const char *s, size_t len, bool url_decode, char *out, size_t out_size)
{
	size_t o = 0;

	while (len > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		len--;
	}
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (url_decode && c == '%' && i + 2 < len && hex_value(s[i + 1]) >= 0 &&
		    hex_value(s[i + 2]) >= 0) {
			c = (unsigned char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			return false; /* no header injection through %0d%0a */
		if (o + 1 >= out_size)
			return false;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return true;
}

int otlp_parse_headers(const char *spec,
                       void (*emit)(void *ctx, const char *key, const char *value), void *ctx)
{
	char key[256], value[OTLP_HEADERS_MAX];
	const char *p = spec;
	int emitted = 0;

	while (p && *p) {
		const char *end = strchr(p, ',');
		const char *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p);

		eq = memchr(p, '=', len);
		if (eq && copy_header_part(p, (size_t)(eq - p), false, key, sizeof(key)) &&
		    key[0] != '\0' && strpbrk(key, ": ") == NULL &&
		    copy_header_part(eq + 1, len - (size_t)(eq + 1 - p), true, value,
		                     sizeof(value))) {
			emit(ctx, key, value);
			emitted++;
		}
		p = end ? end + 1 : NULL;
	}
	return emitted;
}

static int env_positive_int(const char *name, int *out)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	while (*end == ' ')
		end++;
	if (errno || *end || n <= 0 || n > INT_MAX)
		return -EINVAL;
	*out = (int)n;
	return 0;
}

static int env_copy(const char *name, char *out, size_t out_size)
{
	const char *v = getenv(name);

	if (!v)
		return 0;
	if (strlen(v) >= out_size)
		return -EINVAL;
	snprintf(out, out_size, "%s", v);
	return 1;
}

int otlp_exporter_config_from_env(struct otlp_exporter_config *c)
{
	const char *base = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
	const char *compression = getenv("OTEL_EXPORTER_OTLP_COMPRESSION");
	int err = 0, r;

	memset(c, 0, sizeof(*c));
	c->timeout_ms = 10000;
	c->schedule_delay_ms = 5000;
	c->max_queue_size = 2048;
	c->max_export_batch_size = 512;
	c->max_pending_metrics = 8;
	c->max_pending_logs = 16;
	c->retry_initial_ms = 1000;
	c->retry_max_backoff_ms = 8000;
	c->retry_max_elapsed_ms = 30000;

	if (base && *base)
		c->endpoint_from_env = true;
	else
		base = DEFAULT_ENDPOINT;
	if (otlp_signal_url(base, "traces", c->traces_url, sizeof(c->traces_url)) < 0 ||
	    otlp_signal_url(base, "metrics", c->metrics_url, sizeof(c->metrics_url)) < 0 ||
	    otlp_signal_url(base, "logs", c->logs_url, sizeof(c->logs_url)) < 0) {
		err = -EINVAL;
		otlp_signal_url(DEFAULT_ENDPOINT, "traces", c->traces_url, sizeof(c->traces_url));
		otlp_signal_url(DEFAULT_ENDPOINT, "metrics", c->metrics_url,
		                sizeof(c->metrics_url));
		otlp_signal_url(DEFAULT_ENDPOINT, "logs", c->logs_url, sizeof(c->logs_url));
	}
	r = env_copy("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", c->traces_url, sizeof(c->traces_url));
	if (r < 0)
		err = r;
	else if (r > 0 && c->traces_url[0])
		c->endpoint_from_env = true;
	r = env_copy("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", c->metrics_url, sizeof(c->metrics_url));
	if (r < 0)
		err = r;
	else if (r > 0 && c->metrics_url[0])
		c->endpoint_from_env = true;
	r = env_copy("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", c->logs_url, sizeof(c->logs_url));
	if (r < 0)
		err = r;
	else if (r > 0 && c->logs_url[0])
		c->endpoint_from_env = true;
	if (env_copy("OTEL_EXPORTER_OTLP_LOGS_HEADERS", c->logs_headers, sizeof(c->logs_headers)) <
	    0)
		err = -EINVAL;
	if (env_copy("OTEL_EXPORTER_OTLP_HEADERS", c->headers, sizeof(c->headers)) < 0 ||
	    env_copy("OTEL_EXPORTER_OTLP_TRACES_HEADERS", c->traces_headers,
	             sizeof(c->traces_headers)) < 0 ||
	    env_copy("OTEL_EXPORTER_OTLP_METRICS_HEADERS", c->metrics_headers,
	             sizeof(c->metrics_headers)) < 0)
		err = -EINVAL;
	if (compression && *compression) {
		if (strcasecmp(compression, "gzip") == 0)
			c->gzip = true;
		else if (strcasecmp(compression, "none") != 0)
			err = -EINVAL;
	}
	if (env_positive_int("OTEL_EXPORTER_OTLP_TIMEOUT", &c->timeout_ms) < 0 ||
	    env_positive_int("OTEL_BSP_SCHEDULE_DELAY", &c->schedule_delay_ms) < 0 ||
	    env_positive_int("OTEL_BSP_MAX_QUEUE_SIZE", &c->max_queue_size) < 0 ||
	    env_positive_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &c->max_export_batch_size) < 0)
		err = -EINVAL;
	/* the spec: a batch never exceeds the queue */
	if (c->max_export_batch_size > c->max_queue_size)
		c->max_export_batch_size = c->max_queue_size;
	return err;
}

/* ---- HTTP ---- */

struct header_list_builder {
	struct curl_lib *lib;
	struct curl_slist *list;
	const char *override_spec; /* keys set here are skipped */
	bool failed;
};

struct key_search {
	const char *key;
	bool found;
};

static void match_key(void *ctx, const char *key, const char *value)
{
	struct key_search *ks = ctx;

	if (strcasecmp(ks->key, key) == 0)
		ks->found = true;
}

static void append_header(void *ctx, const char *key, const char *value)
{
	struct header_list_builder *b = ctx;
	char line[OTLP_HEADERS_MAX + 300];
	struct curl_slist *next;

	if (b->override_spec) {
		struct key_search ks = {key, false};

		otlp_parse_headers(b->override_spec, match_key, &ks);
		if (ks.found)
			return;
	}
	snprintf(line, sizeof(line), "%s: %s", key, value);
	next = curl_lib_slist_append(b->lib, b->list, line);
	if (!next) {
		b->failed = true;
		return;
	}
	b->list = next;
}

static struct curl_slist *build_headers(struct curl_lib *lib, const char *generic,
                                        const char *specific, bool gzip)
{
	struct header_list_builder b = {lib, NULL, NULL, false};
	const char *fixed[] = {"Content-Type: application/x-protobuf",
	                       "Expect:", gzip ? "Content-Encoding: gzip" : NULL};

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		struct curl_slist *next;

		if (!fixed[i])
			continue;
		next = curl_lib_slist_append(lib, b.list, fixed[i]);
		if (!next)
			goto fail;
		b.list = next;
	}
	otlp_parse_headers(specific, append_header, &b);
	b.override_spec = specific;
	otlp_parse_headers(generic, append_header, &b);
	if (b.failed)
		goto fail;
	return b.list;
fail:
	curl_lib_slist_free_all(lib, b.list);
	return NULL;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct otlp_exporter *e = ctx;
	size_t len = size * nmemb, room = ERROR_BODY_MAX - e->error_body_len;
	size_t take = len < room ? len : room;

	memcpy(e->error_body + e->error_body_len, data, take);
	e->error_body_len += take;
	e->error_body[e->error_body_len] = '\0';
	return len;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct otlp_exporter *e = ctx;
	size_t len = size * nmemb;
	static const char name[] = "retry-after:";
	char value[32];
	size_t vlen = 0;

	if (len > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
		const char *v = data + sizeof(name) - 1;
		size_t left = len - (sizeof(name) - 1);

		while (left > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			left--;
		}
		while (vlen < left && vlen < sizeof(value) - 1 && v[vlen] >= '0' && v[vlen] <= '9')
			vlen++;
		if (vlen > 0 && vlen < 7 && (vlen == left || v[vlen] == '\r' || v[vlen] == '\n')) {
			memcpy(value, v, vlen);
			value[vlen] = '\0';
			e->retry_after_s = strtol(value, NULL, 10); /* delay-seconds */
		} else {
			/* an HTTP-date, e.g. "Wed, 21 Oct 2026 07:28:00 GMT" */
			time_t now = time(NULL), when;

			vlen = 0;
			while (vlen < left && vlen < sizeof(value) - 1 && v[vlen] != '\r' &&
			       v[vlen] != '\n')
				vlen++;
			memcpy(value, v, vlen);
			value[vlen] = '\0';
			when = curl_lib_getdate(e->lib, value, &now);
			if (when > now && when - now < 3600)
				e->retry_after_s = (long)(when - now);
		}
	}
	return len;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct otlp_exporter *e = ctx;

	return __atomic_load_n(&e->stop, __ATOMIC_ACQUIRE) ? 1 : 0;
}

static int curl_setup(struct otlp_exporter *e)
{
	char agent[64];

	e->curl = curl_lib_easy_init(e->lib);
	if (!e->curl)
		return -ENOMEM;
	snprintf(agent, sizeof(agent), "periscope/%s", otlp_scope_version());
	curl_lib_setopt_long(e->lib, e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_lib_setopt_ptr(e->lib, e->curl, CURLOPT_USERAGENT, agent);
	curl_lib_setopt_long(e->lib, e->curl, CURLOPT_TIMEOUT_MS, (long)e->cfg.timeout_ms);
	curl_lib_setopt_long(e->lib, e->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)e->cfg.timeout_ms);
	curl_lib_setopt_fn(e->lib, e->curl, CURLOPT_WRITEFUNCTION, (curl_lib_fn)on_body);
	curl_lib_setopt_ptr(e->lib, e->curl, CURLOPT_WRITEDATA, e);
	curl_lib_setopt_fn(e->lib, e->curl, CURLOPT_HEADERFUNCTION, (curl_lib_fn)on_header);
	curl_lib_setopt_ptr(e->lib, e->curl, CURLOPT_HEADERDATA, e);
	curl_lib_setopt_long(e->lib, e->curl, CURLOPT_NOPROGRESS, 0L);
	curl_lib_setopt_fn(e->lib, e->curl, CURLOPT_XFERINFOFUNCTION, (curl_lib_fn)on_progress);
	curl_lib_setopt_ptr(e->lib, e->curl, CURLOPT_XFERINFODATA, e);
	curl_lib_setopt_ptr(e->lib, e->curl, CURLOPT_ERRORBUFFER, e->curl_error);
	curl_lib_setopt_ptr(e->lib, e->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	return 0;
}

static bool retryable_status(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timespec deadline_ts(uint64_t at_ms)
{
	struct timespec ts = {(time_t)(at_ms / 1000), (long)(at_ms % 1000) * 1000000};

	return ts;
}

static uint64_t next_random(struct otlp_exporter *e)
{
	/* xorshift64 */
	e->rng ^= e->rng << 13;
	e->rng ^= e->rng >> 7;
	e->rng ^= e->rng << 17;
	return e->rng;
}

/* Sleeps until at_ms unless the exporter stops. Returns false on stop. */
static bool sleep_until(struct otlp_exporter *e, uint64_t at_ms)
{
	struct timespec ts = deadline_ts(at_ms);
	bool stopping;

	pthread_mutex_lock(&e->lock);
	while (!e->stop && now_ms() < at_ms)
		pthread_cond_timedwait(&e->wake, &e->lock, &ts);
	stopping = e->stop;
	pthread_mutex_unlock(&e->lock);
	return !stopping;
}

static const char *signal_name(enum signal_kind sig)
{
	return sig == SIGNAL_TRACES ? "traces" : sig == SIGNAL_METRICS ? "metrics" : "logs";
}

static const char *signal_url(const struct otlp_exporter *e, enum signal_kind sig)
{
	return sig == SIGNAL_TRACES    ? e->cfg.traces_url
	       : sig == SIGNAL_METRICS ? e->cfg.metrics_url
	                               : e->cfg.logs_url;
}

/* One POST. Returns 0 on 2xx, else fills *status (0: no HTTP answer). */
static int post_once(struct otlp_exporter *e, enum signal_kind sig, const uint8_t *body, size_t len,
                     long *status, CURLcode *cc)
{
	const char *url = signal_url(e, sig);

	e->retry_after_s = -1;
	e->error_body_len = 0;
	e->error_body[0] = '\0';
	e->curl_error[0] = '\0';
	*status = 0;
	curl_lib_setopt_ptr(e->lib, e->curl, CURLOPT_URL, url);
	curl_lib_setopt_ptr(e->lib, e->curl, CURLOPT_HTTPHEADER, e->signal_headers[sig]);
	curl_lib_setopt_ptr(e->lib, e->curl, CURLOPT_POSTFIELDS, (const char *)body);
	curl_lib_setopt_off(e->lib, e->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	*cc = curl_lib_easy_perform(e->lib, e->curl);
	if (*cc == CURLE_OK)
		curl_lib_getinfo_long(e->lib, e->curl, CURLINFO_RESPONSE_CODE, status);
	stat_add(&e->stats.bytes_sent, *cc == CURLE_OK ? len : 0);
	return *cc == CURLE_OK && *status >= 200 && *status < 300 ? 0 : -EIO;
}

static void note_failure(struct otlp_exporter *e, enum signal_kind sig, long status, CURLcode cc,
                         bool will_retry)
{
	struct signal_health *h = &e->health[sig];
	char why[300];

	stat_add(&e->stats.export_failures, 1);
	h->failed_attempts++;
	if (h->failing)
		return;
	h->failing = true;
	if (status)
		snprintf(why, sizeof(why), "HTTP %ld%s%s", status, e->error_body_len ? ": " : "",
		         e->error_body);
	else
		snprintf(why, sizeof(why), "%s",
		         e->curl_error[0] ? e->curl_error : curl_lib_easy_strerror(e->lib, cc));
	exporter_log(e, will_retry ? OTLP_LOG_WARNING : OTLP_LOG_ERR,
	             "OTLP %s export to %s failed (%s)%s; not logging again until it recovers",
	             signal_name(sig), signal_url(e, sig), why,
	             will_retry ? ", retrying" : ", dropping the batch");
}

static void note_success(struct otlp_exporter *e, enum signal_kind sig)
{
	struct signal_health *h = &e->health[sig];

	if (h->failing)
		exporter_log(e, OTLP_LOG_INFO,
		             "OTLP %s export recovered after %llu failed attempts",
		             signal_name(sig), (unsigned long long)h->failed_attempts);
	h->failing = false;
	h->failed_attempts = 0;
}

/* Posts body, retrying retryable failures with backoff for at most
 * retry_max_elapsed_ms. */
static enum post_result post_with_retry(struct otlp_exporter *e, enum signal_kind sig,
                                        const uint8_t *body, size_t len)
{
	uint64_t start = now_ms();
	uint64_t backoff = (uint64_t)e->cfg.retry_initial_ms;

	for (;;) {
		long status;
		CURLcode cc;
		uint64_t wait_ms, now;
		bool retry;

		if (post_once(e, sig, body, len, &status, &cc) == 0) {
			note_success(e, sig);
			return POST_OK;
		}
		if (cc == CURLE_ABORTED_BY_CALLBACK || __atomic_load_n(&e->stop, __ATOMIC_ACQUIRE))
			return POST_ABORTED;
		retry = cc != CURLE_OK || retryable_status(status);
		if (retry && e->retry_after_s >= 0) {
			wait_ms = (uint64_t)e->retry_after_s * 1000;
		} else {
			/* full backoff halved plus a random half: [b/2, b] */
			wait_ms = backoff / 2 + next_random(e) % (backoff / 2 + 1);
			backoff = backoff * 2 > (uint64_t)e->cfg.retry_max_backoff_ms
			              ? (uint64_t)e->cfg.retry_max_backoff_ms
			              : backoff * 2;
		}
		now = now_ms();
		if (retry && now + wait_ms > start + (uint64_t)e->cfg.retry_max_elapsed_ms)
			retry = false;
		note_failure(e, sig, status, cc, retry);
		if (!retry)
			return POST_DROPPED;
		stat_add(&e->stats.retries, 1);
		if (!sleep_until(e, now + wait_ms))
			return POST_ABORTED;
	}
}

/* ---- the worker ---- */

static void export_metric_body(struct otlp_exporter *e, struct metric_body *mb)
{
	uint8_t *gz = NULL;
	size_t gz_len = 0;
	enum post_result r;

	if (e->cfg.gzip && otlp_gzip(mb->data, mb->len, &gz, &gz_len) < 0) {
		stat_add(&e->stats.metric_posts_failed, 1);
		return;
	}
	r = post_with_retry(e, SIGNAL_METRICS, gz ? gz : mb->data, gz ? gz_len : mb->len);
	if (r == POST_OK)
		stat_add(&e->stats.metric_posts_ok, 1);
	else
		stat_add(&e->stats.metric_posts_failed, 1);
	free(gz);
}

static void export_log_body(struct otlp_exporter *e, struct metric_body *mb)
{
	uint8_t *gz = NULL;
	size_t gz_len = 0;
	enum post_result r = POST_DROPPED;

	if (!e->cfg.gzip || otlp_gzip(mb->data, mb->len, &gz, &gz_len) == 0)
		r = post_with_retry(e, SIGNAL_LOGS, gz ? gz : mb->data, gz ? gz_len : mb->len);
	if (r == POST_OK)
		stat_add(&e->stats.logs_exported, mb->records);
	else
		stat_add(&e->stats.logs_dropped_export, mb->records);
	free(gz);
}

/* Encodes and posts the k spans at the ring's head (the caller holds no lock;
 * those slots are not touched by producers). */
static enum post_result export_span_batch(struct otlp_exporter *e, size_t head, size_t k)
{
	uint8_t *body = NULL, *gz = NULL;
	size_t len = 0, gz_len = 0;
	enum post_result r = POST_DROPPED;

	for (size_t i = 0; i < k; i++)
		e->batch[i] = &e->ring[(head + i) % e->ring_cap];
	if (otlp_encode_traces(e->batch, k, &body, &len) < 0)
		goto cleanup;
	if (e->cfg.gzip && otlp_gzip(body, len, &gz, &gz_len) < 0)
		goto cleanup;
	r = post_with_retry(e, SIGNAL_TRACES, gz ? gz : body, gz ? gz_len : len);
cleanup:
	free(body);
	free(gz);
	return r;
}

static void *worker_main(void *arg)
{
	struct otlp_exporter *e = arg;
	uint64_t last_export = now_ms();

	pthread_mutex_lock(&e->lock);
	while (!e->stop) {
		bool flushing = e->flush_requested > e->flush_done;
		uint64_t now = now_ms();
		uint64_t due = last_export + (uint64_t)e->cfg.schedule_delay_ms;

		if (e->metric_count > 0) {
			struct metric_body mb = e->metric_ring[e->metric_head];

			e->metric_head = (e->metric_head + 1) % e->metric_cap;
			e->metric_count--;
			pthread_mutex_unlock(&e->lock);
			export_metric_body(e, &mb);
			free(mb.data);
			pthread_mutex_lock(&e->lock);
			continue;
		}
		if (e->log_count > 0) {
			struct metric_body mb = e->log_ring[e->log_head];

			e->log_head = (e->log_head + 1) % e->log_cap;
			e->log_count--;
			pthread_mutex_unlock(&e->lock);
			export_log_body(e, &mb);
			free(mb.data);
			pthread_mutex_lock(&e->lock);
			continue;
		}
		if (e->count > 0 &&
		    (flushing || now >= due || e->count >= (size_t)e->cfg.max_export_batch_size)) {
			size_t head = e->head;
			size_t k = e->count < (size_t)e->cfg.max_export_batch_size
			               ? e->count
			               : (size_t)e->cfg.max_export_batch_size;
			enum post_result r;

			pthread_mutex_unlock(&e->lock);
			r = export_span_batch(e, head, k);
			if (r == POST_OK)
				stat_add(&e->stats.spans_exported, k);
			else
				stat_add(&e->stats.spans_dropped_export, k);
			pthread_mutex_lock(&e->lock);
			if (r == POST_ABORTED)
				break; /* __free releases the ring */
			for (size_t i = 0; i < k; i++)
				span_release(&e->ring[(head + i) % e->ring_cap]);
			e->head = (head + k) % e->ring_cap;
			e->count -= k;
			last_export = now_ms();
			continue;
		}
		if (flushing) {
			e->flush_done = e->flush_requested;
			pthread_cond_broadcast(&e->flushed);
			continue;
		}
		if (e->count > 0) {
			struct timespec ts = deadline_ts(due);

			pthread_cond_timedwait(&e->wake, &e->lock, &ts);
		} else {
			pthread_cond_wait(&e->wake, &e->lock);
			last_export = now_ms(); /* the delay counts from the first span */
		}
	}
	pthread_cond_broadcast(&e->flushed);
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

/* ---- public API ---- */

static int init_sync(struct otlp_exporter *e)
{
	pthread_condattr_t attr;
	int err;

	if (pthread_condattr_init(&attr))
		return -ENOMEM;
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	err = pthread_cond_init(&e->wake, &attr) || pthread_cond_init(&e->flushed, &attr) ||
	      pthread_mutex_init(&e->lock, NULL);
	pthread_condattr_destroy(&attr);
	return err ? -ENOMEM : 0;
}

struct otlp_exporter *otlp_exporter__new(const struct otlp_exporter_config *c)
{
	struct otlp_exporter *e;
	char why[300];

	if (c->max_queue_size <= 0 || c->max_export_batch_size <= 0 || c->timeout_ms <= 0 ||
	    c->schedule_delay_ms <= 0)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cfg = *c;
	if (e->cfg.max_export_batch_size > e->cfg.max_queue_size)
		e->cfg.max_export_batch_size = e->cfg.max_queue_size;
	if (e->cfg.max_pending_metrics <= 0)
		e->cfg.max_pending_metrics = 8;
	if (e->cfg.retry_initial_ms <= 0)
		e->cfg.retry_initial_ms = 1000;
	if (e->cfg.retry_max_backoff_ms < e->cfg.retry_initial_ms)
		e->cfg.retry_max_backoff_ms = e->cfg.retry_initial_ms;
	if (e->cfg.retry_max_elapsed_ms < 0)
		e->cfg.retry_max_elapsed_ms = 0;
	e->rng = ((uint64_t)now_ms() << 20) ^ (uint64_t)getpid() ^ (uint64_t)(uintptr_t)e;
	if (!e->rng)
		e->rng = 0x9e3779b97f4a7c15ULL;
	if (init_sync(e) < 0) {
		free(e);
		return NULL;
	}
	e->ring_cap = (size_t)e->cfg.max_queue_size;
	e->metric_cap = (size_t)e->cfg.max_pending_metrics;
	e->log_cap = (size_t)(e->cfg.max_pending_logs > 0 ? e->cfg.max_pending_logs : 16);
	e->log_ring = calloc(e->log_cap, sizeof(*e->log_ring));
	/* zeroed slots are empty spans; a large ring's untouched pages cost no memory */
	e->ring = calloc(e->ring_cap, sizeof(*e->ring));
	e->metric_ring = calloc(e->metric_cap, sizeof(*e->metric_ring));
	e->batch = calloc((size_t)e->cfg.max_export_batch_size, sizeof(*e->batch));
	if (!e->ring || !e->metric_ring || !e->batch || !e->log_ring)
		goto fail;
	if (curl_lib__open(&e->lib, why, sizeof(why)) < 0) {
		exporter_log(e, OTLP_LOG_ERR, "OTLP exporter: %s", why);
		goto fail;
	}
	if (curl_setup(e) < 0)
		goto fail_curl;
	e->signal_headers[SIGNAL_TRACES] =
	    build_headers(e->lib, e->cfg.headers, e->cfg.traces_headers, e->cfg.gzip);
	e->signal_headers[SIGNAL_METRICS] =
	    build_headers(e->lib, e->cfg.headers, e->cfg.metrics_headers, e->cfg.gzip);
	e->signal_headers[SIGNAL_LOGS] =
	    build_headers(e->lib, e->cfg.headers, e->cfg.logs_headers, e->cfg.gzip);
	if (!e->signal_headers[SIGNAL_TRACES] || !e->signal_headers[SIGNAL_METRICS] ||
	    !e->signal_headers[SIGNAL_LOGS])
		goto fail_curl;
	if (pthread_create(&e->thread, NULL, worker_main, e) != 0)
		goto fail_curl;
	e->thread_started = true;
	return e;
fail_curl:
	otlp_exporter__free(e);
	return NULL;
fail:
	/* libcurl not loaded: free by hand */
	free(e->ring);
	free(e->metric_ring);
	free(e->log_ring);
	free(e->batch);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->wake);
	pthread_cond_destroy(&e->flushed);
	free(e);
	return NULL;
}

void otlp_exporter__free(struct otlp_exporter *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	__atomic_store_n(&e->stop, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&e->wake);
	pthread_cond_broadcast(&e->flushed);
	pthread_mutex_unlock(&e->lock);
	if (e->thread_started)
		pthread_join(e->thread, NULL);
	for (size_t i = 0; i < e->count; i++)
		span_release(&e->ring[(e->head + i) % e->ring_cap]);
	for (size_t i = 0; i < e->metric_count; i++)
		free(e->metric_ring[(e->metric_head + i) % e->metric_cap].data);
	for (size_t i = 0; i < e->log_count; i++)
		free(e->log_ring[(e->log_head + i) % e->log_cap].data);
	for (int sig = 0; sig < SIGNAL__COUNT; sig++)
		curl_lib_slist_free_all(e->lib, e->signal_headers[sig]);
	if (e->curl)
		curl_lib_easy_cleanup(e->lib, e->curl);
	curl_lib__close(e->lib);
	free(e->ring);
	free(e->metric_ring);
	free(e->log_ring);
	free(e->batch);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->wake);
	pthread_cond_destroy(&e->flushed);
	free(e);
}

int otlp_exporter_submit_span(struct otlp_exporter *e, const struct span *s)
{
	int err = 0;

	pthread_mutex_lock(&e->lock);
	if (e->count >= e->ring_cap) {
		stat_add(&e->stats.spans_dropped_queue_full, 1);
		err = -ENOSPC;
		goto cleanup;
	}
	span_copy(&e->ring[(e->head + e->count) % e->ring_cap], s);
	e->count++;
	stat_add(&e->stats.spans_submitted, 1);
	if (e->count == 1 || e->count == (size_t)e->cfg.max_export_batch_size)
		pthread_cond_signal(&e->wake);
cleanup:
	pthread_mutex_unlock(&e->lock);
	return err;
}

int otlp_exporter_submit_metrics(struct otlp_exporter *e, uint8_t *body, size_t len)
{
	int err = 0;

	pthread_mutex_lock(&e->lock);
	if (e->metric_count >= e->metric_cap) {
		stat_add(&e->stats.metric_bodies_dropped, 1);
		err = -ENOSPC;
		goto cleanup;
	}
	e->metric_ring[(e->metric_head + e->metric_count) % e->metric_cap] =
	    (struct metric_body){body, len};
	e->metric_count++;
	body = NULL;
	pthread_cond_signal(&e->wake);
cleanup:
	pthread_mutex_unlock(&e->lock);
	free(body);
	return err;
}

int otlp_exporter_submit_logs(struct otlp_exporter *e, uint8_t *body, size_t len, size_t records)
{
	int err = 0;

	pthread_mutex_lock(&e->lock);
	if (e->log_count >= e->log_cap) {
		stat_add(&e->stats.logs_dropped_queue_full, records);
		err = -ENOSPC;
		goto cleanup;
	}
	e->log_ring[(e->log_head + e->log_count) % e->log_cap] =
	    (struct metric_body){body, len, records};
	e->log_count++;
	body = NULL;
	pthread_cond_signal(&e->wake);
cleanup:
	pthread_mutex_unlock(&e->lock);
	free(body);
	return err;
}

int otlp_exporter_flush(struct otlp_exporter *e, int timeout_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
	struct timespec ts = deadline_ts(deadline);
	uint64_t target;
	int err = 0;

	pthread_mutex_lock(&e->lock);
	target = ++e->flush_requested;
	pthread_cond_signal(&e->wake);
	while (e->flush_done < target && !e->stop) {
		if (now_ms() >= deadline) {
			err = -ETIMEDOUT;
			break;
		}
		pthread_cond_timedwait(&e->flushed, &e->lock, &ts);
	}
	if (e->flush_done < target && !err)
		err = -ETIMEDOUT;
	pthread_mutex_unlock(&e->lock);
	return err;
}

void otlp_exporter_stats(struct otlp_exporter *e, struct otlp_exporter_stats *out)
{
	pthread_mutex_lock(&e->lock);
	out->spans_queued = e->count;
	pthread_mutex_unlock(&e->lock);
	out->spans_submitted = stat_get(&e->stats.spans_submitted);
	out->spans_exported = stat_get(&e->stats.spans_exported);
	out->spans_dropped_queue_full = stat_get(&e->stats.spans_dropped_queue_full);
	out->spans_dropped_export = stat_get(&e->stats.spans_dropped_export);
	out->metric_posts_ok = stat_get(&e->stats.metric_posts_ok);
	out->metric_posts_failed = stat_get(&e->stats.metric_posts_failed);
	out->metric_bodies_dropped = stat_get(&e->stats.metric_bodies_dropped);
	out->logs_exported = stat_get(&e->stats.logs_exported);
	out->logs_dropped_queue_full = stat_get(&e->stats.logs_dropped_queue_full);
	out->logs_dropped_export = stat_get(&e->stats.logs_dropped_export);
	out->export_failures = stat_get(&e->stats.export_failures);
	out->retries = stat_get(&e->stats.retries);
	out->bytes_sent = stat_get(&e->stats.bytes_sent);
}
