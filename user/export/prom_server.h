/* prom_server.h — a tiny non-blocking HTTP/1.1 server on the agent's event
 * loop that serves GET /metrics (Prometheus text format) and / (a link to
 * it). Never blocks the loop: non-blocking sockets, bounded request size,
 * responses written as the socket allows, a deadline per client and a cap on
 * concurrent clients. One response per connection (Connection: close). */
#ifndef PERISCOPE_PROM_SERVER_H
#define PERISCOPE_PROM_SERVER_H

#include <stdint.h>

#include "export/prom_text.h"

struct event_loop;

#define PROM_SERVER_MAX_CLIENTS        32
#define PROM_SERVER_MAX_REQUEST        8192
#define PROM_SERVER_DEFAULT_TIMEOUT_MS 10000

/* Renders the metrics into out (already initialised and empty). Returns 0 or
 * a negative errno (the scrape then gets a 500). */
typedef int (*prom_render_fn)(void *ctx, struct prom_buf *out);

struct prom_server;

/* Listens on addr_port: "HOST:PORT", "[IPv6]:PORT" or ":PORT" (every
 * address); port 0 picks a free port. Registers with l. Returns NULL with
 * errno set: EINVAL for a malformed address, EADDRINUSE when it is taken,
 * EADDRNOTAVAIL / EACCES / ENOMEM / ... as the system says. */
struct prom_server *prom_server__new(struct event_loop *l, const char *addr_port, prom_render_fn fn,
                                     void *ctx);
/* Closes the listener and every client, unregistering them from the loop,
 * so call it before event_loop__free. Accepts NULL. */
void prom_server__free(struct prom_server *s);

/* The port actually listened on, or -EINVAL. */
int prom_server_local_port(const struct prom_server *s);

/* Deadline for a client to send its request and read the response
 * (default PROM_SERVER_DEFAULT_TIMEOUT_MS). */
void prom_server_set_timeout_ms(struct prom_server *s, uint64_t timeout_ms);

/* Connections being served now. */
unsigned prom_server_client_count(const struct prom_server *s);
/* Scrapes of /metrics answered since start. */
uint64_t prom_server_scrape_count(const struct prom_server *s);

/* A prom_render_fn that renders a struct metrics * (ctx). */
int prom_server_render_metrics(void *ctx, struct prom_buf *out);

#endif
