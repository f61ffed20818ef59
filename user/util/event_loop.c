/* event_loop.c — the agent's single-threaded epoll loop: callbacks for file
 * descriptors and periodic timers (timerfd). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "util/event_loop.h"

#define EVENT_LOOP_MAX_WATCHES 1024

struct watch {
	int fd;
	bool is_timer;
	event_loop_fd_fn fd_fn;
	event_loop_timer_fn timer_fn;
	void *ctx;
};

struct event_loop {
	int epfd;
	bool stopping;
	struct watch *watches[EVENT_LOOP_MAX_WATCHES];
	size_t n_watches;
};

struct event_loop *event_loop__new(void)
{
	struct event_loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	return l;
}

void event_loop__free(struct event_loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n_watches; i++) {
		if (l->watches[i]->is_timer)
			close(l->watches[i]->fd);
		free(l->watches[i]);
	}
	close(l->epfd);
	free(l);
}

static struct watch *watch_add(struct event_loop *l, int fd, uint32_t events)
{
	struct watch *w;
	struct epoll_event ev = {.events = events};

	if (l->n_watches >= EVENT_LOOP_MAX_WATCHES)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->fd = fd;
	ev.data.ptr = w;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		free(w);
		return NULL;
	}
	l->watches[l->n_watches++] = w;
	return w;
}

int event_loop_add_fd(struct event_loop *l, int fd, uint32_t events, event_loop_fd_fn fn, void *ctx)
{
	struct watch *w = watch_add(l, fd, events);

	if (!w)
		return errno ? -errno : -ENOSPC;
	w->fd_fn = fn;
	w->ctx = ctx;
	return 0;
}

static struct watch *watch_find(struct event_loop *l, int fd, size_t *idx)
{
	for (size_t i = 0; i < l->n_watches; i++) {
		if (l->watches[i]->fd == fd && !l->watches[i]->is_timer) {
			*idx = i;
			return l->watches[i];
		}
	}
	return NULL;
}

int event_loop_mod_fd(struct event_loop *l, int fd, uint32_t events)
{
	size_t idx;
	struct watch *w = watch_find(l, fd, &idx);
	struct epoll_event ev = {.events = events};

	if (!w)
		return -ENOENT;
	ev.data.ptr = w;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int event_loop_del_fd(struct event_loop *l, int fd)
{
	size_t idx;
	struct watch *w = watch_find(l, fd, &idx);

	if (!w)
		return -ENOENT;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* Events for w may still be pending in this round: park it as a dead
	 * watch (no callback) until the loop frees it. */
	w->fd_fn = NULL;
	w->fd = -1;
	return 0;
}

int event_loop_add_timer(struct event_loop *l, uint64_t interval_ms, event_loop_timer_fn fn,
                         void *ctx)
{
	struct itimerspec its = {0};
	struct watch *w;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	its.it_interval.tv_sec = interval_ms / 1000;
	its.it_interval.tv_nsec = (interval_ms % 1000) * 1000000;
	its.it_value = its.it_interval;
	if (timerfd_settime(fd, 0, &its, NULL) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	w = watch_add(l, fd, EPOLLIN);
	if (!w) {
		close(fd);
		return -ENOSPC;
	}
	w->is_timer = true;
	w->timer_fn = fn;
	w->ctx = ctx;
	return fd;
}

/* Frees watches removed by event_loop_del_fd, once no event can refer to them. */
static void reap_dead(struct event_loop *l)
{
	size_t j = 0;

	for (size_t i = 0; i < l->n_watches; i++) {
		struct watch *w = l->watches[i];
		if (!w->is_timer && w->fd < 0)
			free(w);
		else
			l->watches[j++] = w;
	}
	l->n_watches = j;
}

int event_loop_run(struct event_loop *l)
{
	struct epoll_event evs[64];

	l->stopping = false;
	while (!l->stopping) {
		int n = epoll_wait(l->epfd, evs, 64, 1000);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !l->stopping; i++) {
			struct watch *w = evs[i].data.ptr;
			if (w->is_timer) {
				uint64_t expirations;
				if (read(w->fd, &expirations, sizeof(expirations)) > 0)
					w->timer_fn(w->ctx);
			} else if (w->fd_fn) {
				w->fd_fn(w->ctx, w->fd, evs[i].events);
			}
		}
		reap_dead(l);
	}
	return 0;
}

void event_loop_stop(struct event_loop *l)
{
	l->stopping = true;
}
