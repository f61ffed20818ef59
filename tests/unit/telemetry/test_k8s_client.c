/* test_k8s_client.c — the API transport against a tiny in-process HTTP server
 * (one thread, loopback): the list is fed to the state machine and lookups
 * find the pod by container id and by uid, a watch is held open and the
 * client stops promptly; in-cluster URL from the environment; bad
 * configurations refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "telemetry/k8s_client.h"
#include "unit.h"

#define CID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define UID "11111111-2222-3333-4444-555555555555"

static const char list_body[] =
    "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"42\"},\"items\":[{\"metadata\":"
    "{\"name\":\"orders-7d9f8b6c5d-x2x9k\",\"namespace\":\"shop\",\"uid\":\"" UID "\","
    "\"labels\":{\"app.kubernetes.io/name\":\"orders-api\",\"pod-template-hash\":\"7d9f8b6c5d\"},"
    "\"ownerReferences\":[{\"kind\":\"ReplicaSet\",\"name\":\"orders-7d9f8b6c5d\","
    "\"controller\":true}]},\"spec\":{\"nodeName\":\"node-1\",\"containers\":[{\"name\":\"app\","
    "\"env\":[{\"name\":\"OTEL_SERVICE_NAME\",\"value\":\"from-spec\"}]},{\"name\":\"side\"}]},"
    "\"status\":{\"containerStatuses\":[{\"name\":\"app\",\"containerID\":\"containerd://" CID
    "\"}]}}]}";

struct server {
	int fd;
	int port;
	int requests;
	char first_path[512];
	volatile int stop;
};

static void *serve(void *ctx)
{
	struct server *s = ctx;

	while (!s->stop) {
		char req[2048];
		ssize_t n;
		int c = accept(s->fd, NULL, NULL);

		if (c < 0)
			break;
		n = read(c, req, sizeof(req) - 1);
		if (n > 0) {
			req[n] = '\0';
			if (!s->requests++)
				sscanf(req, "GET %511s", s->first_path);
			if (strstr(req, "watch=1")) {
				/* a watch: headers, then nothing until the client goes */
				static const char h[] =
				    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				    "Transfer-Encoding: chunked\r\n\r\n";
				if (write(c, h, sizeof(h) - 1) < 0)
					break;
				while (!s->stop && read(c, req, sizeof(req)) > 0)
					;
			} else {
				char head[256];

				snprintf(head, sizeof(head),
				         "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
				         sizeof(list_body) - 1);
				if (write(c, head, strlen(head)) < 0 ||
				    write(c, list_body, sizeof(list_body) - 1) < 0)
					break;
			}
		}
		close(c);
	}
	return NULL;
}

static int listen_loopback(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 8) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_list_watch_lookup(void)
{
	struct server s = {0};
	struct k8s_client_config cfg = {0};
	struct k8s_client *c = NULL;
	struct k8s_pod_meta meta;
	struct k8s_client_stats st;
	pthread_t th;
	char url[64];
	double t0;
	int rc = 0;

	s.fd = listen_loopback(&s.port);
	CHECK(s.fd >= 0);
	if (s.fd < 0)
		return;
	CHECK(pthread_create(&th, NULL, serve, &s) == 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s.port);
	cfg.api_url = url;
	cfg.node_name = "node-1";
	c = k8s_client__new(&cfg);
	CHECK(c != NULL);
	if (!c)
		goto cleanup;
	for (t0 = now_s(); now_s() - t0 < 5; usleep(20000)) {
		rc = k8s_client_lookup(c, CID, NULL, &meta);
		if (rc == 1)
			break;
	}
	CHECK_EQ_INT(rc, 1);
	CHECK_EQ_STR(meta.name, "orders-7d9f8b6c5d-x2x9k");
	CHECK_EQ_STR(meta.pod_namespace, "shop");
	CHECK_EQ_STR(meta.container_name, "app");
	CHECK_EQ_STR(meta.container_otel_service_name, "from-spec");
	CHECK_EQ_STR(meta.label_app_name, "orders-api");
	CHECK_EQ_INT(meta.workload.kind, K8S_WORKLOAD_DEPLOYMENT);
	CHECK_EQ_STR(meta.workload.name, "orders");
	CHECK_EQ_STR(s.first_path, "/api/v1/pods?fieldSelector=spec.nodeName=node-1");
	/* by uid: a pod of two containers does not say which */
	CHECK_EQ_INT(k8s_client_lookup(c, "ffff", UID, &meta), 1);
	CHECK_EQ_STR(meta.container_name, "");
	CHECK_EQ_INT(k8s_client_lookup(c, "ffff", "nope", &meta), 0);
	/* synced answers 0 while the client's thread holds its lock (trylock): ask
	 * again rather than once, as a loaded machine may catch it busy */
	for (t0 = now_s(); !k8s_client_synced(c) && now_s() - t0 < 5; usleep(20000))
		;
	CHECK(k8s_client_synced(c));
	/* the watch (the second request) opens after the list: wait for it; the
	 * pod count, like synced, is read only when the lock is free */
	for (t0 = now_s(); now_s() - t0 < 5; usleep(20000)) {
		k8s_client_get_stats(c, &st);
		if (st.requests >= 2 && st.pods == 1)
			break;
	}
	CHECK_EQ_INT(st.pods, 1);
	usleep(100000); /* no third request follows an open watch */
	k8s_client_get_stats(c, &st);
	CHECK_EQ_INT(st.requests, 2);
	t0 = now_s();
	k8s_client__free(c); /* with a watch open: returns, not waits for the watch to end */
	c = NULL;
	CHECK(now_s() - t0 < 10); /* the watch's own timeout is far longer */
cleanup:
	k8s_client__free(c);
	s.stop = 1;
	shutdown(s.fd, SHUT_RDWR);
	close(s.fd);
	pthread_join(th, NULL);
}

static void test_config(void)
{
	struct k8s_client_config cfg = {.api_url = "ftp://x", .node_name = "n"};
	char url[128];

	errno = 0;
	CHECK(k8s_client__new(&cfg) == NULL && errno == EINVAL);
	cfg.api_url = "http://127.0.0.1:1";
	cfg.node_name = "Not_A_Node";
	errno = 0;
	CHECK(k8s_client__new(&cfg) == NULL && errno == EINVAL);
	CHECK(k8s_client__new(NULL) == NULL);
	k8s_client__free(NULL);

	unsetenv("KUBERNETES_SERVICE_HOST");
	CHECK_EQ_INT(k8s_client_in_cluster_url(url, sizeof(url)), -ENOENT);
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	CHECK_EQ_INT(k8s_client_in_cluster_url(url, sizeof(url)), 0);
	CHECK_EQ_STR(url, "https://10.96.0.1:443");
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	CHECK_EQ_INT(k8s_client_in_cluster_url(url, sizeof(url)), 0);
	CHECK_EQ_STR(url, "https://[fd00::1]:443");
	CHECK_EQ_INT(k8s_client_in_cluster_url(url, 8), -ENAMETOOLONG);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_api_down(void)
{
	struct k8s_client_config cfg = {.api_url = "http://127.0.0.1:1", .node_name = "node-1"};
	struct k8s_client *c = k8s_client__new(&cfg);
	struct k8s_pod_meta meta;
	double t0;

	CHECK(c != NULL);
	if (!c)
		return;
	usleep(300000);
	CHECK_EQ_INT(k8s_client_lookup(c, CID, UID, &meta) == 1, 0);
	CHECK(!k8s_client_synced(c));
	t0 = now_s();
	k8s_client__free(c); /* while backing off */
	CHECK(now_s() - t0 < 1.5);
}

int main(void)
{
	RUN(test_config);
	RUN(test_list_watch_lookup);
	RUN(test_api_down);
	return unit_summary("test_k8s_client");
}
