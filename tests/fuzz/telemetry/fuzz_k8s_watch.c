/* fuzz_k8s_watch.c — libFuzzer harness for the pod list+watch state
 * machine. Input: a chunk size byte, a max-pods byte, then response bodies
 * separated by NUL bytes; a body starting with '!' is served as HTTP 410,
 * '?' as 500, and one ending in '~' ends in a broken connection. Each body
 * answers whatever k8s_watch_next asked for, fed in chunks; the cache and
 * the requests are checked after every step. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/k8s_watch.h"

static uint32_t fuzz_random(void *ctx)
{
	uint32_t *state = ctx;
	*state = *state * 1103515245u + 12345u;
	return *state;
}

static void check(const struct k8s_watch *w, size_t max_pods)
{
	size_t n = k8s_watch_pod_count(w);
	if (n > max_pods)
		abort();
	if (strlen(k8s_watch_resource_version(w)) > K8S_WATCH_RV_MAX)
		abort();
	if (strlen(k8s_watch_last_error(w)) >= 160)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seed = 1;
	uint64_t now = 1000;

	if (size < 2)
		return 0;
	size_t step = (size_t)data[0] + 1;
	size_t max_pods = (size_t)(data[1] % 8) + 1;
	struct k8s_watch_config cfg = {
	    .node_name = "worker-1",
	    .max_pods = max_pods,
	    .max_object_bytes = 65536,
	    .random = fuzz_random,
	    .random_ctx = &seed,
	};
	struct k8s_watch *w = k8s_watch__new(&cfg);
	if (!w)
		abort();
	size_t pos = 2;
	while (pos <= size) {
		const uint8_t *end = memchr(data + pos, '\0', size - pos);
		size_t len = end ? (size_t)(end - (data + pos)) : size - pos;
		const char *body = (const char *)data + pos;
		pos += len + 1;

		struct k8s_watch_request req;
		if (k8s_watch_next(w, now, &req) != 0)
			abort();
		if (req.action == K8S_WATCH_WAIT) {
			if (req.not_before_ms <= now || req.not_before_ms - now > 30000)
				abort();
			now = req.not_before_ms;
			if (k8s_watch_next(w, now, &req) != 0 || req.action == K8S_WATCH_WAIT)
				abort();
		}
		if (strnlen(req.path, sizeof(req.path)) == sizeof(req.path) ||
		    strncmp(req.path, "/api/v1/pods?fieldSelector=spec.nodeName=worker-1", 49) != 0)
			abort();
		int status = len && body[0] == '!' ? 410 : len && body[0] == '?' ? 500 : 200;
		bool broken = len && body[len - 1] == '~';
		if (k8s_watch_begin(w, status) == 0) {
			for (size_t off = 0; off < len; off += step) {
				size_t n = len - off < step ? len - off : step;
				int r = k8s_watch_feed(w, body + off, n);
				if (r < 0 && r != -EBADMSG && r != -EMSGSIZE)
					abort();
				check(w, max_pods);
				if (r != 0)
					break;
			}
		}
		now += 1500;
		k8s_watch_end(w, now, broken ? -ECONNRESET : 0);
		check(w, max_pods);
		/* A lookup finds the pod and the container of that id. */
		const char *id = "3e74d3fd9db4c9dd921ae05c2502fb984d0cde1b36e581b13f79c639da4518a1";
		const struct k8s_container_info *c;
		const struct k8s_pod_info *p = k8s_watch_pod_by_container(w, id, &c);
		if (p && (!c || strcmp(c->id, id) != 0 || !p->uid[0]))
			abort();
	}
	k8s_watch__free(w);
	return 0;
}
