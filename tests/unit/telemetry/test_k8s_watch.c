/* test_k8s_watch.c — the pod list+watch state machine driven by API server
 * responses shaped as kube-apiserver sends them: a PodList, chunked watch
 * events (ADDED, MODIFIED, DELETED, BOOKMARK, ERROR 410 and others), fed in
 * pieces of every size; disconnects inside an event, garbage, oversized
 * objects, a full cache, and the jittered backoff. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "telemetry/k8s_watch.h"
#include "unit.h"

#define CID1 "3e74d3fd9db4c9dd921ae05c2502fb984d0cde1b36e581b13f79c639da4518a1"
#define CID2 "f45298cd514d1930c4fe3afc4412e59547f7e3148fddd22ca33cefce046eb830"
#define CID3 "d6d725b909f37c3e232aadfbafa950a58bfe7baa579ba8c47a12be88bb921607"
#define CID4 "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
#define UID1 "dd1bf9d1-241d-47f5-8e25-12de83135812"
#define UID2 "7b4e2f18-0c3d-4a59-9e6f-21d8c7a5b304"
#define UID3 "2105e389-7471-476e-a50f-6074cef29bbd"

static uint32_t rand_value;
static uint32_t fake_random(void *ctx)
{
	(void)ctx;
	return rand_value;
}

/* A Pod as the API returns it (abridged: no managedFields, fewer status
 * fields). */
static char *pod_json(const char *uid, const char *name, const char *rv, const char *cid,
                      const char *extra_meta)
{
	static char buf[8][8192];
	static int slot;
	char *b = buf[slot++ % 8];
	snprintf(
	    b, sizeof(buf[0]),
	    "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"%s\","
	    "\"generateName\":\"orders-7d9f8b6c5d-\",\"namespace\":\"shop\",\"uid\":\"%s\","
	    "\"resourceVersion\":\"%s\",\"creationTimestamp\":\"2026-11-30T10:00:00Z\","
	    "\"labels\":{\"app\":\"orders-legacy\",\"app.kubernetes.io/name\":\"orders\","
	    "\"pod-template-hash\":\"7d9f8b6c5d\"},\"annotations\":{"
	    "\"resource.opentelemetry.io/service.name\":\"orders-svc\","
	    "\"kubectl.kubernetes.io/restartedAt\":\"2026-11-30T09:59:00Z\"},"
	    "\"ownerReferences\":[{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"name\":\"x\","
	    "\"uid\":\"u0\"},{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\","
	    "\"name\":\"orders-7d9f8b6c5d\",\"uid\":\"u1\",\"controller\":true,"
	    "\"blockOwnerDeletion\":true}]%s},"
	    "\"spec\":{\"initContainers\":[{\"name\":\"migrate\",\"image\":\"m:1\"}],"
	    "\"containers\":[{\"name\":\"app\",\"image\":\"registry.example/orders:1.4.2\","
	    "\"env\":[{\"name\":\"LOG_LEVEL\",\"value\":\"info\"},{\"name\":"
	    "\"OTEL_SERVICE_NAME\",\"value\":\"orders-from-spec\"},{\"name\":\"SECRET\","
	    "\"valueFrom\":{\"secretKeyRef\":{\"name\":\"s\",\"key\":\"k\"}}}]},"
	    "{\"name\":\"sidecar\",\"image\":\"envoy:1\"}],\"nodeName\":\"worker-1\"},"
	    "\"status\":{\"phase\":\"Running\",\"podIP\":\"10.244.1.7\","
	    "\"initContainerStatuses\":[{\"name\":\"migrate\",\"containerID\":\"containerd://" CID4
	    "\",\"ready\":true}],"
	    "\"containerStatuses\":[{\"name\":\"app\",\"containerID\":\"containerd://%s\","
	    "\"ready\":true,\"restartCount\":0},{\"name\":\"sidecar\",\"ready\":false,"
	    "\"state\":{\"waiting\":{\"reason\":\"ContainerCreating\"}}}]}}",
	    name, uid, rv, extra_meta ? extra_meta : "", cid);
	return b;
}

static char *event(const char *type, const char *obj)
{
	static char buf[4][9000];
	static int slot;
	char *b = buf[slot++ % 4];
	snprintf(b, sizeof(buf[0]), "{\"type\":\"%s\",\"object\":%s}\n", type, obj);
	return b;
}

static struct k8s_watch *make(size_t max_pods, size_t max_object)
{
	struct k8s_watch_config cfg = {
	    .node_name = "worker-1",
	    .max_pods = max_pods,
	    .max_object_bytes = max_object,
	    .random = fake_random,
	};
	rand_value = 0;
	return k8s_watch__new(&cfg);
}

/* Feeds s in pieces of step bytes; returns the first non-zero result. */
static int feed(struct k8s_watch *w, const char *s, size_t step)
{
	size_t len = strlen(s);
	for (size_t off = 0; off < len; off += step) {
		size_t n = len - off < step ? len - off : step;
		int r = k8s_watch_feed(w, s + off, n);
		if (r != 0)
			return r;
	}
	return 0;
}

static char list_body[40000];

static const char *make_list(const char *rv, int n_pods)
{
	const char *uids[] = {UID1, UID2, UID3};
	const char *names[] = {"orders-7d9f8b6c5d-x2x9k", "orders-7d9f8b6c5d-9zq4m", "cart-0"};
	const char *cids[] = {CID1, CID2, CID3};
	size_t n = (size_t)snprintf(list_body, sizeof(list_body),
	                            "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"metadata\":"
	                            "{\"resourceVersion\":\"%s\"},\"items\":[",
	                            rv);
	for (int i = 0; i < n_pods; i++)
		n += (size_t)snprintf(list_body + n, sizeof(list_body) - n, "%s%s", i ? "," : "",
		                      pod_json(uids[i], names[i], "100", cids[i], NULL));
	snprintf(list_body + n, sizeof(list_body) - n, "]}\n");
	return list_body;
}

/* next() must ask for a LIST now; the list is then served whole. */
static void do_list(struct k8s_watch *w, uint64_t now, const char *rv, int n_pods, size_t step)
{
	struct k8s_watch_request req;
	CHECK_EQ_INT(k8s_watch_next(w, now, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_LIST);
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	CHECK_EQ_INT(feed(w, make_list(rv, n_pods), step), 0);
	k8s_watch_end(w, now + 5, 0);
}

static void expect_watch(struct k8s_watch *w, uint64_t now, const char *rv)
{
	struct k8s_watch_request req;
	char want[256];
	CHECK_EQ_INT(k8s_watch_next(w, now, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_WATCH);
	snprintf(want, sizeof(want),
	         "/api/v1/pods?fieldSelector=spec.nodeName=worker-1&watch=1&resourceVersion=%s"
	         "&allowWatchBookmarks=true",
	         rv);
	CHECK_EQ_STR(req.path, want);
}

static void test_list_then_watch_paths(void)
{
	struct k8s_watch *w = make(0, 0);
	struct k8s_watch_request req;
	CHECK(w != NULL);
	if (!w)
		return;
	CHECK_EQ_INT(k8s_watch_next(w, 1000, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_LIST);
	CHECK_EQ_STR(req.path, "/api/v1/pods?fieldSelector=spec.nodeName=worker-1");
	CHECK_EQ_INT(k8s_watch_next(w, 1000, &req), -EBUSY);
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	CHECK_EQ_INT(feed(w, make_list("4711", 2), 1), 0); /* one byte at a time */
	k8s_watch_end(w, 1010, 0);
	CHECK_EQ_STR(k8s_watch_resource_version(w), "4711");
	CHECK_EQ_INT(k8s_watch_pod_count(w), 2);
	expect_watch(w, 1020, "4711");
	k8s_watch__free(w);
}

static void test_pod_metadata(void)
{
	struct k8s_watch *w = make(0, 0);
	CHECK(w != NULL);
	if (!w)
		return;
	do_list(w, 0, "10", 2, 4096);
	const struct k8s_container_info *c;
	const struct k8s_pod_info *p = k8s_watch_pod_by_container(w, CID1, &c);
	CHECK(p != NULL && c != NULL);
	if (!p || !c)
		goto cleanup;
	CHECK_EQ_STR(p->uid, UID1);
	CHECK_EQ_STR(p->name, "orders-7d9f8b6c5d-x2x9k");
	CHECK_EQ_STR(p->pod_namespace, "shop");
	CHECK_EQ_STR(p->label_app_name, "orders");
	CHECK_EQ_STR(p->label_app, "orders-legacy");
	CHECK_EQ_STR(p->pod_template_hash, "7d9f8b6c5d");
	CHECK_EQ_STR(p->annotation_service_name, "orders-svc");
	CHECK_EQ_STR(p->owner_kind, "ReplicaSet"); /* the controller, not the first */
	CHECK_EQ_STR(p->owner_name, "orders-7d9f8b6c5d");
	CHECK_EQ_STR(c->name, "app");
	CHECK_EQ_STR(c->id, CID1);
	CHECK_EQ_STR(c->otel_service_name, "orders-from-spec");
	CHECK_EQ_INT(p->n_containers, 3);
	/* The init container is found too; the sidecar has no id yet. */
	p = k8s_watch_pod_by_container(w, CID4, &c);
	CHECK(p != NULL && c != NULL && strcmp(c->name, "migrate") == 0);
	CHECK(k8s_watch_pod_by_container(w, "", &c) == NULL);
	CHECK(c == NULL);
	CHECK(k8s_watch_pod_by_container(w, CID3, NULL) == NULL);
	CHECK(k8s_watch_pod_by_uid(w, UID2) != NULL);
	CHECK(k8s_watch_pod_by_uid(w, UID3) == NULL);
cleanup:
	k8s_watch__free(w);
}

static void watch_events(size_t step)
{
	struct k8s_watch *w = make(0, 0);
	struct k8s_watch_stats st;
	CHECK(w != NULL);
	if (!w)
		return;
	do_list(w, 0, "100", 2, 333);
	expect_watch(w, 10, "100");
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	/* A new pod, a restart (new container id), a deletion, a bookmark. */
	char stream[40000];
	snprintf(
	    stream, sizeof(stream), "%s%s%s%s",
	    event("ADDED", pod_json(UID3, "cart-0", "101", CID3, NULL)),
	    event("MODIFIED", pod_json(UID1, "orders-7d9f8b6c5d-x2x9k", "102",
	                               "0000000000000000000000000000000000000000000000000000000"
	                               "000000001",
	                               NULL)),
	    event("DELETED", pod_json(UID2, "orders-7d9f8b6c5d-9zq4m", "103", CID2, NULL)),
	    event("BOOKMARK", "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":"
	                      "{\"resourceVersion\":\"150\",\"annotations\":"
	                      "{\"k8s.io/initial-events-end\":\"true\"}}}"));
	CHECK_EQ_INT(feed(w, stream, step), 0);
	CHECK(k8s_watch_pod_by_container(w, CID3, NULL) != NULL);
	CHECK(k8s_watch_pod_by_container(w, CID1, NULL) == NULL); /* the old id is gone */
	CHECK(k8s_watch_pod_by_container(
	          w, "0000000000000000000000000000000000000000000000000000000000000001", NULL) !=
	      NULL);
	CHECK(k8s_watch_pod_by_uid(w, UID2) == NULL);
	CHECK_EQ_INT(k8s_watch_pod_count(w), 2);
	CHECK_EQ_STR(k8s_watch_resource_version(w), "150");
	k8s_watch_get_stats(w, &st);
	CHECK_EQ_INT(st.events, 3);
	CHECK_EQ_INT(st.bookmarks, 1);
	/* The server ends the watch after its timeout: watch again at once. */
	k8s_watch_end(w, 300000, 0);
	expect_watch(w, 300000, "150");
	k8s_watch__free(w);
}

static void test_watch_events(void)
{
	/* Cut in 7-byte chunks (events straddle every boundary), byte by byte,
	 * and all four events in one piece. */
	watch_events(7);
	watch_events(1);
	watch_events(1 << 20);
}

static void test_gone_relists_at_once(void)
{
	struct k8s_watch *w = make(0, 0);
	struct k8s_watch_request req;
	CHECK(w != NULL);
	if (!w)
		return;
	do_list(w, 0, "100", 3, 100000);
	expect_watch(w, 10, "100");
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	const char *gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":"
	                   "\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"too old "
	                   "resource version: 100 (2345)\",\"reason\":\"Expired\",\"code\":410}}\n";
	CHECK_EQ_INT(feed(w, gone, 5), K8S_WATCH_CLOSE);
	CHECK_EQ_INT(k8s_watch_feed(w, "{}", 2), -EPROTO); /* nothing more is taken */
	k8s_watch_end(w, 20, 0);
	CHECK(strstr(k8s_watch_last_error(w), "410") != NULL);
	CHECK_EQ_STR(k8s_watch_resource_version(w), "");
	CHECK_EQ_INT(k8s_watch_next(w, 20, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_LIST);
	/* The cache stays until the new list replaces it: a pod deleted while
	 * the watch was gone is then forgotten. */
	CHECK_EQ_INT(k8s_watch_pod_count(w), 3);
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	CHECK_EQ_INT(feed(w, make_list("2400", 1), 4096), 0);
	k8s_watch_end(w, 30, 0);
	CHECK_EQ_INT(k8s_watch_pod_count(w), 1);
	CHECK(k8s_watch_pod_by_uid(w, UID3) == NULL);
	expect_watch(w, 40, "2400");
	/* The same as an HTTP status on the watch request. */
	CHECK_EQ_INT(k8s_watch_begin(w, 410), K8S_WATCH_CLOSE);
	k8s_watch_end(w, 50, 0);
	CHECK_EQ_INT(k8s_watch_next(w, 50, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_LIST);
	struct k8s_watch_stats st;
	k8s_watch_get_stats(w, &st);
	CHECK_EQ_INT(st.gone, 2);
	k8s_watch__free(w);
}

static void test_other_error_backs_off_then_relists(void)
{
	struct k8s_watch *w = make(0, 0);
	struct k8s_watch_request req;
	CHECK(w != NULL);
	if (!w)
		return;
	do_list(w, 0, "100", 1, 100000);
	expect_watch(w, 10, "100");
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	CHECK_EQ_INT(feed(w,
	                  "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,"
	                  "\"message\":\"etcd leader changed\"}}\n",
	                  64),
	             K8S_WATCH_CLOSE);
	k8s_watch_end(w, 1000, 0);
	CHECK_EQ_INT(k8s_watch_next(w, 1000, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_WAIT);
	CHECK_EQ_INT(req.not_before_ms, 1000 + K8S_WATCH_DEFAULT_MIN_MS / 2);
	CHECK_EQ_INT(k8s_watch_next(w, req.not_before_ms - 1, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_WAIT);
	CHECK_EQ_INT(k8s_watch_next(w, req.not_before_ms, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_LIST);
	k8s_watch__free(w);
}

static void test_disconnect_mid_event(void)
{
	struct k8s_watch *w = make(0, 0);
	struct k8s_watch_request req;
	CHECK(w != NULL);
	if (!w)
		return;
	do_list(w, 0, "100", 2, 100000);
	expect_watch(w, 10, "100");
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	const char *e1 = event("ADDED", pod_json(UID3, "cart-0", "101", CID3, NULL));
	const char *e2 =
	    event("DELETED", pod_json(UID1, "orders-7d9f8b6c5d-x2x9k", "102", CID1, NULL));
	CHECK_EQ_INT(feed(w, e1, 1000), 0);
	CHECK_EQ_INT(k8s_watch_feed(w, e2, strlen(e2) / 2), 0); /* half an event */
	k8s_watch_end(w, 5000, -ECONNRESET);
	CHECK(strstr(k8s_watch_last_error(w), "inside an event") != NULL);
	/* The half event was not applied; the watch resumes from the last whole
	 * one after a backoff. */
	CHECK(k8s_watch_pod_by_uid(w, UID1) != NULL);
	CHECK_EQ_STR(k8s_watch_resource_version(w), "101");
	CHECK_EQ_INT(k8s_watch_next(w, 5000, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_WAIT);
	expect_watch(w, req.not_before_ms, "101");
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	CHECK_EQ_INT(feed(w, e2, 3), 0);
	CHECK(k8s_watch_pod_by_uid(w, UID1) == NULL);
	k8s_watch_end(w, 900000, 0);
	struct k8s_watch_stats st;
	k8s_watch_get_stats(w, &st);
	CHECK_EQ_INT(st.disconnects, 1);
	k8s_watch__free(w);
}

static void test_garbage(void)
{
	const char *bad[] = {
	    "this is not json\n",
	    "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"uid\":\"x\"}}}}\n", /* extra } */
	    "[1,2,3]\n",
	    "{\"type\":\"ADDED\"}\n",
	    "{\"type\":\"EXPLODED\",\"object\":{}}\n",
	    "{\"type\":\"ADDED\",\"object\":{\"a\":tru}}\n",
	    "\x01\x02\x03\xff",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct k8s_watch *w = make(0, 0);
		struct k8s_watch_request req;
		CHECK(w != NULL);
		if (!w)
			return;
		do_list(w, 0, "100", 2, 100000);
		expect_watch(w, 10, "100");
		CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
		int r = feed(w, bad[i], 1000);
		CHECK_EQ_INT(r, -EBADMSG);
		if (r != -EBADMSG)
			fprintf(stderr, "  garbage %zu\n", i);
		k8s_watch_end(w, 20, 0);
		CHECK(k8s_watch_last_error(w)[0] != '\0');
		CHECK_EQ_INT(k8s_watch_next(w, 20, &req), 0);
		CHECK_EQ_INT(req.action, K8S_WATCH_WAIT);
		CHECK_EQ_INT(k8s_watch_next(w, req.not_before_ms, &req), 0);
		CHECK_EQ_INT(req.action, K8S_WATCH_LIST);
		/* The cache survives until the relist. */
		CHECK_EQ_INT(k8s_watch_pod_count(w), 2);
		k8s_watch__free(w);
	}
	/* Bad list bodies: a Status, no resourceVersion, two objects. */
	const char *bad_lists[] = {
	    "{\"kind\":\"Status\",\"code\":403}",
	    "{\"kind\":\"PodList\",\"metadata\":{},\"items\":[]}",
	    "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"1\"},\"items\":[]}{}",
	    "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"1 OR 1=1\"},\"items\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad_lists) / sizeof(bad_lists[0]); i++) {
		struct k8s_watch *w = make(0, 0);
		struct k8s_watch_request req;
		CHECK(w != NULL);
		if (!w)
			return;
		CHECK_EQ_INT(k8s_watch_next(w, 0, &req), 0);
		CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
		CHECK_EQ_INT(feed(w, bad_lists[i], 1000), -EBADMSG);
		k8s_watch_end(w, 10, 0);
		CHECK_EQ_INT(k8s_watch_next(w, 10, &req), 0);
		CHECK_EQ_INT(req.action, K8S_WATCH_WAIT);
		k8s_watch__free(w);
	}
}

static void test_oversized_object(void)
{
	struct k8s_watch *w = make(0, 4096);
	struct k8s_watch_stats st;
	CHECK(w != NULL);
	if (!w)
		return;
	do_list(w, 0, "100", 1, 100000);
	expect_watch(w, 10, "100");
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	/* An annotation of 100 kB in one event. */
	char *big = malloc(120000);
	CHECK(big != NULL);
	if (!big)
		goto cleanup;
	int n = snprintf(big, 120000,
	                 "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"uid\":\"" UID1
	                 "\",\"annotations\":{\"huge\":\"");
	memset(big + n, 'x', 100000);
	snprintf(big + n + 100000, 120000 - (size_t)n - 100000, "\"}}}}\n");
	CHECK_EQ_INT(feed(w, big, 4096), -EMSGSIZE);
	k8s_watch_end(w, 20, 0);
	k8s_watch_get_stats(w, &st);
	CHECK_EQ_INT(st.too_big, 1);
	/* A list over the limit is refused the same way. */
	struct k8s_watch_request req;
	CHECK_EQ_INT(k8s_watch_next(w, 100000, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_LIST);
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	CHECK_EQ_INT(feed(w, make_list("200", 3), 1 << 20), -EMSGSIZE);
	k8s_watch_end(w, 100010, 0);
	free(big);
cleanup:
	k8s_watch__free(w);
}

static void test_cache_limit_and_values(void)
{
	struct k8s_watch *w = make(2, 0);
	struct k8s_watch_stats st;
	CHECK(w != NULL);
	if (!w)
		return;
	do_list(w, 0, "100", 3, 100000);
	CHECK_EQ_INT(k8s_watch_pod_count(w), 2);
	k8s_watch_get_stats(w, &st);
	CHECK_EQ_INT(st.pods_refused, 1);
	CHECK(strstr(k8s_watch_last_error(w), "cache full") != NULL);
	/* A label value over 63 bytes is left out; a pod without uid skipped. */
	expect_watch(w, 10, "100");
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	CHECK_EQ_INT(feed(w,
	                  "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"uid\":\"" UID1 "\","
	                  "\"name\":\"n\",\"labels\":{\"app\":\"0123456789012345678901234567890"
	                  "123456789012345678901234567890123456789\"}}}}\n"
	                  "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"nouid\"}}}\n",
	                  100000),
	             0);
	const struct k8s_pod_info *p = k8s_watch_pod_by_uid(w, UID1);
	CHECK(p != NULL && p->label_app[0] == '\0' && strcmp(p->name, "n") == 0);
	k8s_watch_get_stats(w, &st);
	CHECK_EQ_INT(st.pods_skipped, 1);
	CHECK_EQ_INT(st.values_dropped, 1);
	CHECK_EQ_INT(k8s_watch_pod_count(w), 2);
	k8s_watch_end(w, 5000, 0);
	k8s_watch__free(w);
}

static void test_backoff(void)
{
	struct k8s_watch *w = make(0, 0);
	struct k8s_watch_request req;
	uint64_t now = 0;
	/* random() = 0 gives the lower half of each jittered delay. */
	const uint64_t want[] = {250, 500, 1000, 2000, 4000, 8000, 15000, 15000};
	CHECK(w != NULL);
	if (!w)
		return;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		CHECK_EQ_INT(k8s_watch_next(w, now, &req), 0);
		CHECK_EQ_INT(req.action, K8S_WATCH_LIST);
		k8s_watch_end(w, now, -ECONNREFUSED); /* the API server is down */
		CHECK_EQ_INT(k8s_watch_next(w, now, &req), 0);
		CHECK_EQ_INT(req.action, K8S_WATCH_WAIT);
		CHECK_EQ_INT(req.not_before_ms - now, want[i]);
		now = req.not_before_ms;
	}
	/* The random half: at most the full delay. */
	rand_value = UINT32_MAX;
	CHECK_EQ_INT(k8s_watch_next(w, now, &req), 0);
	CHECK_EQ_INT(k8s_watch_begin(w, 403), K8S_WATCH_CLOSE);
	k8s_watch_end(w, now, 0);
	CHECK(strstr(k8s_watch_last_error(w), "403") != NULL);
	CHECK_EQ_INT(k8s_watch_next(w, now, &req), 0);
	CHECK(req.not_before_ms - now >= 15000 && req.not_before_ms - now <= 30000);
	/* Success resets it. */
	now = req.not_before_ms;
	rand_value = 0;
	do_list(w, now, "7", 1, 100000);
	expect_watch(w, now + 10, "7");
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	k8s_watch_end(w, now + 20, 0); /* closed at once, nothing sent */
	CHECK_EQ_INT(k8s_watch_next(w, now + 20, &req), 0);
	CHECK_EQ_INT(req.action, K8S_WATCH_WAIT);
	CHECK_EQ_INT(req.not_before_ms - (now + 20), 250);
	k8s_watch__free(w);
}

static void test_misuse(void)
{
	struct k8s_watch_config cfg = {.node_name = "Worker_1", .random = fake_random};
	CHECK(k8s_watch__new(&cfg) == NULL);
	cfg.node_name = "worker-1&watch=1";
	CHECK(k8s_watch__new(&cfg) == NULL);
	cfg.node_name = "worker-1";
	cfg.random = NULL;
	CHECK(k8s_watch__new(&cfg) == NULL);
	CHECK(k8s_watch__new(NULL) == NULL);
	k8s_watch__free(NULL);

	struct k8s_watch *w = make(0, 0);
	struct k8s_watch_request req;
	CHECK(w != NULL);
	if (!w)
		return;
	CHECK_EQ_INT(k8s_watch_feed(w, "{}", 2), -EPROTO);
	CHECK_EQ_INT(k8s_watch_begin(w, 200), -EPROTO);
	k8s_watch_end(w, 0, 0); /* nothing open: ignored */
	CHECK_EQ_INT(k8s_watch_next(w, 0, &req), 0);
	CHECK_EQ_INT(k8s_watch_feed(w, "{}", 2), -EPROTO); /* before begin */
	CHECK_EQ_INT(k8s_watch_begin(w, 200), 0);
	CHECK_EQ_INT(k8s_watch_begin(w, 200), -EPROTO);
	CHECK_EQ_INT(k8s_watch_feed(w, "   \n\r\n", 6), 0);
	k8s_watch_end(w, 10, 0); /* an empty body: no list */
	CHECK(strstr(k8s_watch_last_error(w), "list") != NULL);
	CHECK(k8s_watch_pod_by_container(NULL, CID1, NULL) == NULL);
	CHECK_EQ_INT(k8s_watch_pod_count(NULL), 0);
	k8s_watch__free(w);
}

int main(void)
{
	RUN(test_list_then_watch_paths);
	RUN(test_pod_metadata);
	RUN(test_watch_events);
	RUN(test_gone_relists_at_once);
	RUN(test_other_error_backs_off_then_relists);
	RUN(test_disconnect_mid_event);
	RUN(test_garbage);
	RUN(test_oversized_object);
	RUN(test_cache_limit_and_values);
	RUN(test_backoff);
	RUN(test_misuse);
	return unit_summary("test_k8s_watch");
}
