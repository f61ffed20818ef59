/* event_loop.h — the agent's single-threaded epoll loop: file descriptors and
 * periodic timers, each with a callback. */
#ifndef PERISCOPE_EVENT_LOOP_H
#define PERISCOPE_EVENT_LOOP_H

#include <stdint.h>

struct event_loop;

typedef void (*event_loop_fd_fn)(void *ctx, int fd, uint32_t events);
typedef void (*event_loop_timer_fn)(void *ctx);

struct event_loop *event_loop__new(void);
void event_loop__free(struct event_loop *l); /* accepts NULL; does not close fds */

/* events: EPOLLIN/EPOLLOUT/... Returns 0 or -errno. */
int event_loop_add_fd(struct event_loop *l, int fd, uint32_t events, event_loop_fd_fn fn,
                      void *ctx);
int event_loop_mod_fd(struct event_loop *l, int fd, uint32_t events);
int event_loop_del_fd(struct event_loop *l, int fd);

/* Calls fn every interval_ms. Returns a timer id >= 0 or -errno. */
int event_loop_add_timer(struct event_loop *l, uint64_t interval_ms, event_loop_timer_fn fn,
                         void *ctx);

/* Runs until event_loop_stop. Returns 0 or -errno. */
int event_loop_run(struct event_loop *l);
void event_loop_stop(struct event_loop *l);

#endif
