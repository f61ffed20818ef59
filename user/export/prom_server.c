/* prom_server.c — the /metrics endpoint: a minimal non-blocking HTTP/1.1
 * server driven by the agent's epoll loop. Each client is read into a fixed
 * buffer until the end of its headers, answered from a rendered buffer
 * written as the socket allows, then closed gracefully (write side shut,
 * remaining input drained). A timerfd enforces per-client deadlines. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "util/event_loop.h"
#include "export/prom_server.h"

#define LISTEN_BACKLOG    64
#define SWEEP_INTERVAL_MS 500
#define DRAIN_MS          2000
#define DRAIN_MAX_BYTES   (64 * 1024)
#define ADDR_MAX          256

enum client_state {
	CLIENT_READING,
	CLIENT_WRITING,
	CLIENT_DRAINING, /* response sent, write side shut, reading to EOF */
};

struct prom_client {
	struct prom_server *server;
	int fd;
	enum client_state state;
	uint64_t deadline_ms;
	size_t req_len;
	size_t drained;
	char head[512];
	size_t head_len;
	struct prom_buf body;
	bool send_body; /* false for HEAD */
	size_t sent;    /* bytes of head + body sent */
	char req[PROM_SERVER_MAX_REQUEST + 1];
};

struct prom_server {
	struct event_loop *loop;
	int listen_fd;
	int timer_fd;
	int port;
	uint64_t timeout_ms;
	prom_render_fn render;
	void *render_ctx;
	struct prom_client *clients[PROM_SERVER_MAX_CLIENTS];
	unsigned n_clients;
	uint64_t scrapes;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- clients ---- */

static void client_close(struct prom_client *c)
{
	struct prom_server *s = c->server;

	event_loop_del_fd(s->loop, c->fd);
	close(c->fd);
	prom_buf_release(&c->body);
	for (unsigned i = 0; i < s->n_clients; i++) {
		if (s->clients[i] == c) {
			s->clients[i] = s->clients[--s->n_clients];
			s->clients[s->n_clients] = NULL;
			break;
		}
	}
	free(c);
}

static void sweep_expired(struct prom_server *s)
{
	uint64_t now = now_ms();

	for (unsigned i = 0; i < s->n_clients;) {
		struct prom_client *c = s->clients[i];

		if (now >= c->deadline_ms)
			client_close(c); /* moves the last client into slot i */
		else
			i++;
	}
}

/* Finished sending: shut the write side and read until the peer closes, so
 * unread request bytes do not turn the close into a reset that could cut
 * the response short. */
static void client_start_drain(struct prom_client *c)
{
	uint64_t drain_deadline = now_ms() + DRAIN_MS;

	shutdown(c->fd, SHUT_WR);
	c->state = CLIENT_DRAINING;
	if (drain_deadline < c->deadline_ms)
		c->deadline_ms = drain_deadline;
	if (event_loop_mod_fd(c->server->loop, c->fd, EPOLLIN | EPOLLRDHUP) < 0)
		client_close(c);
}

/* Sends what the socket takes. Returns false when c was closed. */
static bool client_write(struct prom_client *c)
{
	size_t body_len = c->send_body ? c->body.len : 0;
	size_t total = c->head_len + body_len;

	while (c->sent < total) {
		struct iovec iov[2];
		struct msghdr msg = {.msg_iov = iov};
		ssize_t n;

		if (c->sent < c->head_len) {
			iov[0].iov_base = c->head + c->sent;
			iov[0].iov_len = c->head_len - c->sent;
			iov[1].iov_base = c->body.data;
			iov[1].iov_len = body_len;
			msg.msg_iovlen = body_len ? 2 : 1;
		} else {
			iov[0].iov_base = c->body.data + (c->sent - c->head_len);
			iov[0].iov_len = total - c->sent;
			msg.msg_iovlen = 1;
		}
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				if (c->state != CLIENT_WRITING) {
					c->state = CLIENT_WRITING;
					/* No EPOLLRDHUP here: a peer that shut its
					 * side would wake the loop over and over. */
					if (event_loop_mod_fd(c->server->loop, c->fd, EPOLLOUT) <
					    0) {
						client_close(c);
						return false;
					}
				}
				return true;
			}
			client_close(c);
			return false;
		}
		c->sent += (size_t)n;
	}
	client_start_drain(c);
	return true;
}

static void client_respond(struct prom_client *c, int status, const char *reason,
                           const char *content_type, const char *extra_headers)
{
	c->head_len = 0;
	int n =
	    snprintf(c->head, sizeof(c->head),
	             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
	             "Connection: close\r\n\r\n",
	             status, reason, content_type, c->body.len, extra_headers ? extra_headers : "");

	if (n > 0 && (size_t)n < sizeof(c->head))
		c->head_len = (size_t)n;
	c->sent = 0;
	client_write(c);
}

static void client_respond_text(struct prom_client *c, int status, const char *reason,
                                const char *text, const char *extra_headers)
{
	prom_buf_reset(&c->body);
	prom_buf_puts(&c->body, text);
	client_respond(c, status, reason, "text/plain; charset=utf-8", extra_headers);
}

static const char index_page[] =
    "<!DOCTYPE html>\n<html><head><title>periscope</title></head><body>\n"
    "<h1>periscope</h1>\n<p><a href=\"/metrics\">Metrics</a></p>\n</body></html>\n";

/* The request line and headers are in c->req (NUL-terminated). */
static void client_handle_request(struct prom_client *c)
{
	struct prom_server *s = c->server;
	char *line_end = strpbrk(c->req, "\r\n");
	char *method = c->req, *target, *version, *query;
	int err;

	if (line_end)
		*line_end = '\0';
	target = strchr(method, ' ');
	version = target ? strchr(target + 1, ' ') : NULL;
	if (!target || !version || strncmp(version + 1, "HTTP/1.", 7) != 0) {
		client_respond_text(c, 400, "Bad Request", "bad request\n", NULL);
		return;
	}
	*target++ = '\0';
	*version = '\0';
	query = strchr(target, '?');
	if (query)
		*query = '\0';
	c->send_body = strcmp(method, "HEAD") != 0;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		client_respond_text(c, 405, "Method Not Allowed", "method not allowed\n",
		                    "Allow: GET, HEAD\r\n");
		return;
	}
	if (strcmp(target, "/") == 0) {
		prom_buf_reset(&c->body);
		prom_buf_puts(&c->body, index_page);
		client_respond(c, 200, "OK", "text/html; charset=utf-8", NULL);
		return;
	}
	if (strcmp(target, "/metrics") != 0) {
		client_respond_text(c, 404, "Not Found", "not found\n", NULL);
		return;
	}
	prom_buf_reset(&c->body);
	err = s->render ? s->render(s->render_ctx, &c->body) : -ENOSYS;
	if (err == 0)
		err = c->body.error;
	if (err) {
		client_respond_text(c, 500, "Internal Server Error", "metrics rendering failed\n",
		                    NULL);
		return;
	}
	s->scrapes++;
	client_respond(c, 200, "OK", PROM_CONTENT_TYPE, NULL);
}

/* The end of the header block in the first len bytes of req, or NULL. */
static const char *find_headers_end(const char *req, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (req[i] == '\n' && req[i + 1] == '\n')
			return req + i + 2;
		if (i + 3 < len && memcmp(req + i, "\r\n\r\n", 4) == 0)
			return req + i + 4;
	}
	return NULL;
}

static void client_read(struct prom_client *c)
{
	for (;;) {
		size_t room = PROM_SERVER_MAX_REQUEST - c->req_len;
		ssize_t n;

		if (room == 0) {
			client_respond_text(c, 431, "Request Header Fields Too Large",
			                    "request too large\n", NULL);
			return;
		}
		n = recv(c->fd, c->req + c->req_len, room, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			client_close(c); /* error, or EOF before a whole request */
			return;
		}
		c->req_len += (size_t)n;
		c->req[c->req_len] = '\0';
		if (find_headers_end(c->req, c->req_len)) {
			client_handle_request(c);
			return;
		}
	}
}

static void client_drain(struct prom_client *c)
{
	char sink[4096];

	for (;;) {
		ssize_t n = recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		c->drained += n > 0 ? (size_t)n : 0;
		if (n <= 0 || c->drained > DRAIN_MAX_BYTES) {
			client_close(c);
			return;
		}
	}
}

static void on_client(void *ctx, int fd, uint32_t events)
{
	struct prom_client *c = ctx;

	if (events & EPOLLERR) {
		client_close(c);
		return;
	}
	switch (c->state) {
	case CLIENT_READING:
		if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
			client_read(c);
		break;
	case CLIENT_WRITING:
		if (events & EPOLLHUP)
			client_close(c);
		else if (events & EPOLLOUT)
			client_write(c);
		break;
	case CLIENT_DRAINING:
		client_drain(c);
		break;
	}
}

static void on_accept(void *ctx, int fd, uint32_t events)
{
	struct prom_server *s = ctx;

	for (;;) {
		struct prom_client *c;
		int cfd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or out of fds: the next event retries */
		}
		if (s->n_clients == PROM_SERVER_MAX_CLIENTS)
			sweep_expired(s);
		if (s->n_clients == PROM_SERVER_MAX_CLIENTS) {
			close(cfd); /* over the cap: refuse rather than queue */
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(cfd);
			continue;
		}
		c->server = s;
		c->fd = cfd;
		c->state = CLIENT_READING;
		c->deadline_ms = now_ms() + s->timeout_ms;
		prom_buf_init(&c->body, 0);
		if (event_loop_add_fd(s->loop, cfd, EPOLLIN | EPOLLRDHUP, on_client, c) < 0) {
			close(cfd);
			free(c);
			continue;
		}
		s->clients[s->n_clients++] = c;
	}
}

static void on_timer(void *ctx, int fd, uint32_t events)
{
	struct prom_server *s = ctx;
	uint64_t expirations;

	if (read(fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	sweep_expired(s);
}

/* ---- setup ---- */

/* Splits "host:port", "[v6]:port" or ":port". host is "" for any address. */
static int parse_addr_port(const char *addr_port, char *host, size_t host_len, char *port,
                           size_t port_len)
{
	const char *colon, *host_start = addr_port, *host_end;
	size_t n;
	long value = 0;

	if (!addr_port)
		return -EINVAL;
	if (addr_port[0] == '[') {
		host_start = addr_port + 1;
		host_end = strchr(host_start, ']');
		if (!host_end || host_end[1] != ':')
			return -EINVAL;
		colon = host_end + 1;
	} else {
		colon = strrchr(addr_port, ':');
		if (!colon || memchr(addr_port, ':', (size_t)(colon - addr_port)))
			return -EINVAL; /* no port, or a bare IPv6 address */
		host_end = colon;
	}
	n = (size_t)(host_end - host_start);
	if (n >= host_len)
		return -EINVAL;
	memcpy(host, host_start, n);
	host[n] = '\0';
	n = strlen(colon + 1);
	if (n == 0 || n >= port_len || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		char d = colon[1 + i];

		if (d < '0' || d > '9')
			return -EINVAL;
		value = value * 10 + (d - '0');
	}
	if (value > 65535)
		return -EINVAL;
	memcpy(port, colon + 1, n + 1);
	return 0;
}

static int open_listener(const char *addr_port, int *port_out)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
	                         .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
	struct addrinfo *res = NULL, *ai;
	char host[ADDR_MAX], port[8];
	struct sockaddr_storage bound;
	socklen_t bound_len = sizeof(bound);
	int fd = -1, err, one = 1, zero = 0;

	err = parse_addr_port(addr_port, host, sizeof(host), port, sizeof(port));
	if (err)
		return err;
	err = getaddrinfo(host[0] ? host : NULL, port, &hints, &res);
	if (err)
		return err == EAI_SYSTEM ? -errno : err == EAI_MEMORY ? -ENOMEM : -EINVAL;
	err = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		            ai->ai_protocol);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ai->ai_family == AF_INET6 && !host[0])
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, LISTEN_BACKLOG) == 0)
			break;
		err = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return err;
	if (getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	*port_out = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
	                                        : ntohs(((struct sockaddr_in *)&bound)->sin_port);
	return fd;
}

static int open_timer(void)
{
	struct itimerspec its = {
	    .it_interval = {.tv_sec = 0, .tv_nsec = SWEEP_INTERVAL_MS * 1000000L},
	    .it_value = {.tv_sec = 0, .tv_nsec = SWEEP_INTERVAL_MS * 1000000L},
	};
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int err;

	if (fd < 0)
		return -errno;
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

struct prom_server *prom_server__new(struct event_loop *l, const char *addr_port, prom_render_fn fn,
                                     void *ctx)
{
	struct prom_server *s;
	int err;

	if (!l || !fn) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	s->loop = l;
	s->render = fn;
	s->render_ctx = ctx;
	s->timeout_ms = PROM_SERVER_DEFAULT_TIMEOUT_MS;
	s->timer_fd = -1;
	s->listen_fd = open_listener(addr_port, &s->port);
	if (s->listen_fd < 0) {
		err = s->listen_fd;
		goto cleanup;
	}
	s->timer_fd = open_timer();
	if (s->timer_fd < 0) {
		err = s->timer_fd;
		goto cleanup;
	}
	err = event_loop_add_fd(l, s->listen_fd, EPOLLIN, on_accept, s);
	if (err)
		goto cleanup;
	err = event_loop_add_fd(l, s->timer_fd, EPOLLIN, on_timer, s);
	if (err) {
		event_loop_del_fd(l, s->listen_fd);
		goto cleanup;
	}
	return s;
cleanup:
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->timer_fd >= 0)
		close(s->timer_fd);
	free(s);
	errno = -err;
	return NULL;
}

void prom_server__free(struct prom_server *s)
{
	if (!s)
		return;
	while (s->n_clients)
		client_close(s->clients[0]);
	event_loop_del_fd(s->loop, s->listen_fd);
	event_loop_del_fd(s->loop, s->timer_fd);
	close(s->listen_fd);
	close(s->timer_fd);
	free(s);
}

int prom_server_local_port(const struct prom_server *s)
{
	return s ? s->port : -EINVAL;
}

void prom_server_set_timeout_ms(struct prom_server *s, uint64_t timeout_ms)
{
	if (s)
		s->timeout_ms = timeout_ms;
}

unsigned prom_server_client_count(const struct prom_server *s)
{
	return s ? s->n_clients : 0;
}

uint64_t prom_server_scrape_count(const struct prom_server *s)
{
	return s ? s->scrapes : 0;
}

int prom_server_render_metrics(void *ctx, struct prom_buf *out)
{
	return prom_text_render(ctx, out);
}
