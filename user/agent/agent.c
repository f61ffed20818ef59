/* agent.c — the running agent: wires the kernel probes, the ring buffer, the
 * connection table, the protocol parsers and the outputs into one event loop.
 *
 *   kernel probes → ring buffer → agent_on_event → conn_table → session
 *   (protocol parsers) → http_span → printer / OTLP exporter thread
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <ctype.h>

#include "agent/agent.h"
#include "conn/conn_table.h"
#include "telemetry/db_span.h"
#include "kernel/event_file.h"
#include "util/event_loop.h"
#include "telemetry/http_span.h"
#include "telemetry/http2_span.h"
#include "kernel/loader.h"
#include "kernel/cpu_rings.h"
#include "kernel/ring_reader.h"
#include "util/log.h"
#include "util/mem_pool.h"
#include "telemetry/metrics.h"
#include "export/otlp_exporter.h"
#include "export/otlp_metrics.h"
#include "export/printer.h"
#include "telemetry/container_meta.h"
#include "telemetry/k8s_client.h"
#include "telemetry/oci_bundle.h"
#include "telemetry/proc_info.h"
#include "export/prom_server.h"
#include "export/prom_text.h"
#include "telemetry/resource.h"
#include "telemetry/route.h"
#include "conn/session.h"
#include "telemetry/span.h"
#include "kernel/tls_probes.h"
#include "conn/trace_id.h"
#include "conn/trace_links.h"
#include "conn/sampler.h"
#include "parsers/log_lines.h"
#include "parsers/protocol.h"
#include "telemetry/log_record.h"
#include "export/otlp_logs.h"

#define POLL_INTERVAL_MS         50   /* ring buffer drained at least this often */
#define HOUSEKEEPING_INTERVAL_MS 1000 /* drop counters, idle connections, clock */
#define IDLE_CONN_NS             (30ULL * 60 * 1000000000ULL)
#define TRIM_AFTER_CONNS         4096 /* connections gone since the peak before malloc_trim */
#define SHUTDOWN_FLUSH_MS        2500
#define LOG_BATCH_MAX            512                    /* records per OTLP logs request */
#define LOG_BATCH_DELAY_NS       (1000ull * 1000000ull) /* OTel's BLRP schedule delay */
#define LOG_RATE_SLOTS           4096 /* per-process line budgets, direct-mapped by pid */
#define LOG_FILTER_RECHECK_NS    (1000ull * 1000000ull)

/* spans whose trace waits for a local client's request (trace_links_trace_open) */
#define HELD_SPANS_MAX 64
#define HOLD_NS        (200 * 1000000ULL)

/* One process's log-line budget for the current second, and whether its
 * lines pass the --exe/--port (and, later, container) selection. */
struct log_rate {
	uint32_t pid;
	uint32_t lines;
	uint64_t window_ns;
	uint64_t checked_ns;
	bool allowed;
};

struct log_stats {
	uint64_t events;
	uint64_t records;
	uint64_t filtered;     /* lines of processes outside the selection */
	uint64_t rate_limited; /* lines over the per-process budget */
	uint64_t encode_failed;
};

struct agent_stats {
	uint64_t events;
	uint64_t events_by_type[PSCOPE_EV_SOCK_CLOSED + 1];
	uint64_t malformed_events;
	uint64_t spans;
	uint64_t spans_unsampled;
	uint64_t metric_points;
	uint64_t drops[PSCOPE_DROP__COUNT];
	uint64_t h2_conns[2];   /* HTTP/2 connections by HPACK mode: synced, late_join */
	uint64_t h2_streams[2]; /* HTTP/2 streams by their connection's HPACK mode */
	uint64_t h2_unknown;    /* HTTP/2 streams with undecodable header fields */
};

/* A span held until its trace no longer waits (or HOLD_NS). */
struct held_span {
	struct span s;
	uint64_t until_ns; /* monotonic */
};

struct agent {
	const struct config *cfg;
	struct logger *log;
	struct loader *loader;
	struct ring_reader *rb;
	struct cpu_rings *cpu_rings;  /* NULL with --shared-ringbuf */
	uint64_t events_buffer_bytes; /* the ring buffer's, or all CPUs' rings' */
	uint64_t ringbuf_peak;        /* most bytes seen waiting at a drain since the last report */
	struct event_loop *loop;
	struct conn_table *conns;
	size_t conns_peak; /* most connections tracked since memory was last trimmed */
	struct proc_info_cache *procs;
	struct oci_bundle_paths *bundle_paths;
	struct k8s_client *k8s;
	struct container_meta *containers;
	char node_name[256];
	struct printer *printer;
	struct otlp_exporter *exporter;
	struct metrics *metrics;
	struct route_table *routes;
	struct tls_probes *tls;
	struct prom_server *prom;
	struct trace_links *links;
	struct sampler sampler;
	enum metric_temporality temporality;
	struct event_writer *recorder; /* `record` mode */
	struct session_sink sink;
	struct session_stats session_stats;
	struct agent_stats stats;
	struct id_gen ids;
	/* --logs */
	struct log_lines *log_lines;
	struct log_rate *log_rates; /* LOG_RATE_SLOTS */
	struct log_record *log_batch[LOG_BATCH_MAX];
	size_t n_log_batch;
	uint64_t log_batch_since_ns;
	struct log_stats log_stats;
	int64_t unix_offset_ns; /* CLOCK_REALTIME - CLOCK_MONOTONIC */
	uint64_t now_mono_ns;
	/* when the agent last saw the ring buffer's drop count grow (monotonic):
	 * connections quiet since then may have lost their closing events */
	uint64_t ring_loss_ns;
	uint64_t ring_drops_seen;
	int signal_fd;
	struct held_span *held; /* HELD_SPANS_MAX */
	size_t n_held;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void refresh_clock(struct agent *a)
{
	uint64_t mono = clock_ns(CLOCK_MONOTONIC);

	a->unix_offset_ns = (int64_t)(clock_ns(CLOCK_REALTIME) - mono);
	a->now_mono_ns = mono;
}

/* ---- spans ---- */

static void emit_span(struct agent *a, struct span *s)
{
	a->stats.spans++;
	if (!s->sampled) {
		a->stats.spans_unsampled++;
		return;
	}
	if (a->printer)
		printer_print_span(a->printer, s);
	if (a->exporter)
		otlp_exporter_submit_span(a->exporter, s);
}

/* Emits span s now, or holds a copy of it while its trace waits for a local
 * client's request (trace_links_trace_open). */
static void emit_or_hold(struct agent *a, struct span *s)
{
	if (trace_links_trace_open(a->links, s->trace_id) && a->held &&
	    a->n_held < HELD_SPANS_MAX) {
		struct held_span *h = &a->held[a->n_held++];

		span_init(&h->s);
		span_copy(&h->s, s);
		h->until_ns = clock_ns(CLOCK_MONOTONIC) + HOLD_NS;
		return;
	}
	trace_links_span_settle(a->links, s->trace_id, s->span_id, s->parent_span_id, &s->sampled);
	emit_span(a, s);
}

/* Emits the held spans whose trace no longer waits, or whose time is up (all:
 * every one). */
static void release_held(struct agent *a, bool all)
{
	uint64_t now = a->n_held ? clock_ns(CLOCK_MONOTONIC) : 0;
	size_t kept = 0;

	for (size_t i = 0; i < a->n_held; i++) {
		struct held_span *h = &a->held[i];

		if (!all && now < h->until_ns && trace_links_trace_open(a->links, h->s.trace_id)) {
			if (kept != i)
				a->held[kept] = *h;
			kept++;
			continue;
		}
		trace_links_span_settle(a->links, h->s.trace_id, h->s.span_id, h->s.parent_span_id,
		                        &h->s.sampled);
		emit_span(a, &h->s);
		span_release(&h->s);
	}
	a->n_held = kept;
}

static struct resource *conn_resource(struct agent *a, const struct conn *c)
{
	return proc_info_get(a->procs, c->ref.pid, c->ref.proc_start_ns, c->comm);
}

static void record_http_metrics(struct agent *a, const struct conn *c,
                                const struct http1_exchange *ex, const struct span *s,
                                struct resource *r, const char *route,
                                const struct http_span_server *srv)
{
	struct http_metric_sample m = {0};

	m.kind = c->ref.role == PSCOPE_ROLE_SERVER ? METRICS_HTTP_SERVER : METRICS_HTTP_CLIENT;
	m.method = ex->method;
	m.status_code = ex->status;
	m.route = route;
	m.scheme = (c->flags & CONN_FLAG_TLS) ? "https" : "http";
	m.protocol_version = ex->version_minor == 0 ? "1.0" : "1.1";
	m.server_address = srv->address;
	m.server_port = srv->port;
	m.duration_s = (double)(s->end_unix_ns - s->start_unix_ns) / 1e9;
	m.request_body_size = (int64_t)ex->request_body_size;
	if (ex->failed)
		m.error_type = http_failure_type(ex, c->ref.role == PSCOPE_ROLE_SERVER);
	m.response_body_size = (int64_t)ex->response_body_size;
	metrics_record_http(a->metrics, r, &m);
}

static void on_http_request(struct agent *a, struct conn *c, const struct http1_exchange *req,
                            uint64_t actor)
{
	trace_links_request(a->links, c, actor, req->req_start_ns, req->seq, req->traceparent);
}

static void on_http_exchange(struct agent *a, struct conn *c, const struct http1_exchange *ex,
                             uint64_t actor)
{
	struct resource *r = conn_resource(a, c);
	struct http_span_server srv;
	char route[ROUTE_MAX];
	struct link_ctx ids;
	struct span s;

	if (route_table_match(a->routes, ex->target, route, sizeof(route)) < 0)
		route[0] = '\0';
	trace_links_complete(a->links, c, actor, true, ex->seq, ex->traceparent, &ids);
	span_init(&s);
	http_span_build(&s, ex, c, route, r, &ids, a->unix_offset_ns, &srv);
	/* every request counts in the metrics, whatever happens to its span later */
	record_http_metrics(a, c, ex, &s, r, route, &srv);
	emit_or_hold(a, &s);
	span_release(&s);
}

static void on_stream_reset(void *ctx, struct conn *c)
{
	struct agent *a = ctx;

	trace_links_forget_conn(a->links, c);
}

static void on_db_exchange(struct agent *a, struct conn *c, const struct db_exchange *ex,
                           uint64_t actor)
{
	struct resource *r = conn_resource(a, c);
	struct db_metric_sample m = {0};
	char remote[64];
	struct link_ctx ids;
	struct span s;

	/* no request hook: the ids are decided now, from the thread's server request */
	trace_links_complete(a->links, c, actor, false, 0, NULL, &ids);
	span_init(&s);
	db_span_build(&s, ex, c, r, &ids, a->unix_offset_ns);
	conn_addr_format(c->ref.family, c->ref.remote_addr, remote, sizeof(remote));
	m.system_name = ex->system;
	m.operation_name = ex->operation[0] ? ex->operation : NULL;
	m.collection_name = ex->collection[0] ? ex->collection : NULL;
	m.server_address = remote;
	m.server_port = c->ref.remote_port;
	m.error_type = ex->error ? (ex->status_code[0] ? ex->status_code : "_OTHER") : NULL;
	m.duration_s = (double)(s.end_unix_ns - s.start_unix_ns) / 1e9;
	metrics_record_db(a->metrics, r, &m);
	emit_or_hold(a, &s);
	span_release(&s);
}

static void on_http2_request(struct agent *a, struct conn *c, const struct http2_exchange *req,
                             uint64_t actor)
{
	trace_links_request_stream(a->links, c, actor, req->req_start_ns, req->seq, req->stream_id,
	                           req->traceparent);
}

static void record_http2_metrics(struct agent *a, const struct conn *c,
                                 const struct http2_exchange *ex, const struct span *s,
                                 struct resource *r, const char *route, bool grpc)
{
	const struct span_attr *addr = span_find_attr(s, "server.address");
	const struct span_attr *port = span_find_attr(s, "server.port");
	bool server = c->ref.role == PSCOPE_ROLE_SERVER;
	double duration_s = (double)(s->end_unix_ns - s->start_unix_ns) / 1e9;

	if (grpc) {
		struct rpc_metric_sample m = {0};
		struct grpc_call call;

		grpc_call_of(ex, server, &call);
		m.kind = server ? METRICS_RPC_SERVER : METRICS_RPC_CLIENT;
		m.system = "grpc";
		m.service = call.service;
		m.method = call.method;
		m.grpc_status_code = call.status;
		m.server_address = addr ? span_attr_str(s, addr) : NULL;
		m.server_port = port ? (int)port->i : 0;
		m.duration_s = duration_s;
		metrics_record_rpc(a->metrics, r, &m);
	} else {
		struct http_metric_sample m = {0};

		m.kind = server ? METRICS_HTTP_SERVER : METRICS_HTTP_CLIENT;
		m.method = ex->method[0] ? ex->method : "_OTHER";
		m.status_code = ex->status;
		m.route = route;
		m.scheme = (c->flags & CONN_FLAG_TLS) ? "https" : "http";
		m.protocol_version = "2";
		m.server_address = addr ? span_attr_str(s, addr) : NULL;
		m.server_port = port ? (int)port->i : 0;
		m.duration_s = duration_s;
		m.request_body_size = (int64_t)ex->request_body_size;
		m.response_body_size = (int64_t)ex->response_body_size;
		m.error_type = http2_failure_type(ex, server);
		metrics_record_http(a->metrics, r, &m);
	}
}

static void on_http2_exchange(struct agent *a, struct conn *c, const struct http2_exchange *ex,
                              uint64_t actor)
{
	struct resource *r = conn_resource(a, c);
	bool grpc = http2_is_grpc(ex);
	char route[ROUTE_MAX];
	struct link_ctx ids;
	struct span s;

	if (ex->conn_first)
		a->stats.h2_conns[ex->hpack_late_join]++;
	a->stats.h2_streams[ex->hpack_late_join]++;
	if (ex->unknown_headers)
		a->stats.h2_unknown++;
	if (grpc || !ex->path[0] ||
	    route_table_match(a->routes, ex->path, route, sizeof(route)) < 0)
		route[0] = '\0';
	trace_links_complete(a->links, c, actor, true, ex->seq, ex->traceparent, &ids);
	span_init(&s);
	http2_span_build(&s, ex, c, route, r, &ids, a->unix_offset_ns);
	record_http2_metrics(a, c, ex, &s, r, route, grpc);
	emit_or_hold(a, &s);
	span_release(&s);
}

/* The session's sink: each exchange kind to its span and metrics builder. */
static void on_exchange(void *ctx, struct conn *c, enum l7_protocol kind, const void *ex,
                        uint64_t actor)
{
	struct agent *a = ctx;

	switch (kind) {
	case L7_HTTP1:
		on_http_exchange(a, c, ex, actor);
		break;
	case L7_HTTP2:
		on_http2_exchange(a, c, ex, actor);
		break;
	case L7_PGSQL:
	case L7_MYSQL:
	case L7_REDIS:
		on_db_exchange(a, c, ex, actor);
		break;
	default:
		break;
	}
}

static void on_io(void *ctx, struct conn *c, uint64_t actor, bool ingress, bool before_feed,
                  bool request_hook)
{
	struct agent *a = ctx;

	trace_links_io(a->links, c, actor, ingress, before_feed, request_hook);
}

static void on_request(void *ctx, struct conn *c, enum l7_protocol kind, const void *req,
                       uint64_t actor)
{
	if (kind == L7_HTTP1)
		on_http_request(ctx, c, req, actor);
	else if (kind == L7_HTTP2)
		on_http2_request(ctx, c, req, actor);
}

/* ---- kernel events ---- */

/* Connection c closed at ts_ns (flags: the event's, PSCOPE_EVF_LOST): a request
 * still waiting ends with how the connection ended, at the peer's FIN or reset
 * when one came first, else at this close; c leaves the table. */
static void end_closed_conn(struct agent *a, struct conn *c, uint16_t flags, uint64_t ts_ns,
                            uint32_t tid)
{
	if (flags & PSCOPE_EVF_LOST)
		session_on_close(c, ts_ns, tid, L7_END_LOST);
	else if (c->peer_end)
		session_on_close(c, c->peer_end_ns, tid, c->peer_end);
	else
		session_on_close(c, ts_ns, tid, L7_END_CLOSE);
	conn_table_remove(a->conns, c);
}

/* The connection of an event's ref, found or made. With the socket
 * tracepoints a connection ends when its socket is destroyed, which comes a
 * round trip after close() (the FIN's answer): its fd may have been reused by
 * then, and the connection still under (pid, fd) on another socket ends here,
 * at this event, as it would have at its close. */
static struct conn *conn_of_event(struct agent *a, const struct pscope_conn_ref *ref,
                                  uint64_t ts_ns)
{
	struct conn *c = conn_table_lookup(a->conns, ref->pid, ref->fd);

	if (c && c->ref.proc_start_ns == ref->proc_start_ns) {
		if (c->ref.sock_id == ref->sock_id) {
			conn_table_touch(a->conns, c, ref, ts_ns); /* the usual case: one lookup */
			return c;
		}
		end_closed_conn(a, c, 0, ts_ns, c->ref.tid);
	}
	return conn_table_upsert(a->conns, ref, ts_ns);
}

static bool exe_allowed(struct agent *a, struct conn *c)
{
	const struct config *cfg = a->cfg;

	if (!cfg->n_exes)
		return true;
	if (!(c->flags & CONN_FLAG_CHECKED)) {
		struct resource *r = conn_resource(a, c);
		const char *exe = r ? resource_get_str(r, "process.executable.name") : NULL;
		bool match = false;

		for (size_t i = 0; exe && i < cfg->n_exes; i++)
			match |= !strcmp(exe, cfg->exes[i]);
		c->flags |= CONN_FLAG_CHECKED | (match ? 0 : CONN_FLAG_IGNORED);
	}
	return !(c->flags & CONN_FLAG_IGNORED);
}

static void on_data(struct agent *a, const struct pscope_data_event *e, size_t size)
{
	struct conn *c;

	if (size < sizeof(*e) || size < sizeof(*e) + e->captured) {
		a->stats.malformed_events++;
		return;
	}
	c = conn_of_event(a, &e->conn, e->hdr.timestamp_ns);
	if (!c) {
		a->session_stats.alloc_failures++;
		return;
	}
	if (!exe_allowed(a, c))
		return;
	if (!(c->flags & CONN_FLAG_RUNTIME)) {
		struct resource *r = conn_resource(a, c);
		const char *lang = r ? resource_get_str(r, "telemetry.sdk.language") : NULL;

		c->flags |= CONN_FLAG_RUNTIME | (lang && !strcmp(lang, "go") ? CONN_FLAG_GO : 0);
	}
	session_on_data(c, e, &a->sink, &a->session_stats);
	if (c->protocol == L7_NONE && !(c->flags & CONN_FLAG_KERNEL_SKIP)) {
		/* nothing we parse: stop the kernel from copying its bytes */
		c->flags |= CONN_FLAG_KERNEL_SKIP;
		if (a->loader) /* none when replaying */
			loader_ignore_socket(a->loader, &c->ref, c->flags & CONN_FLAG_TLS);
	}
}

static void on_conn_event(struct agent *a, const struct pscope_conn_event *e, size_t size)
{
	struct conn *c;

	if (size < sizeof(*e)) {
		a->stats.malformed_events++;
		return;
	}
	if (e->hdr.type == PSCOPE_EV_CONN_OPEN) {
		c = conn_of_event(a, &e->conn, e->hdr.timestamp_ns);
		if (!c)
			return;
		memcpy(c->comm, e->comm, sizeof(c->comm));
		if (e->conn.role == PSCOPE_ROLE_CLIENT && e->conn.tick)
			trace_links_connect(a->links, c,
			                    link_loop_actor(e->conn.tid, e->conn.tick));
		/* read the process's metadata while it surely exists (curl may be
		 * gone by the time its span ends) */
		conn_resource(a, c);
		if (a->cfg->n_exes)
			exe_allowed(a, c);
		return;
	}
	c = conn_table_lookup(a->conns, e->conn.pid, e->conn.fd);
	if (c && c->ref.sock_id == e->conn.sock_id)
		end_closed_conn(a, c, e->hdr.flags, e->hdr.timestamp_ns, e->conn.tid);
}

/* A traced socket was destroyed (the socket tracepoints' close: no process
 * context): every process's connection on it ends. */
static void on_sock_closed(struct agent *a, const struct pscope_peer_end_event *e, size_t size)
{
	struct conn *c;

	if (size < sizeof(*e)) {
		a->stats.malformed_events++;
		return;
	}
	while ((c = conn_table_lookup_sock(a->conns, e->family, e->local_addr, e->local_port,
	                                   e->remote_addr, e->remote_port, e->sock_id)))
		end_closed_conn(a, c, e->hdr.flags, e->hdr.timestamp_ns, c->ref.tid);
}

/* The peer closed or reset a traced socket: remembered until the process
 * closes its end (the response may still be in the socket's receive queue). */
static void on_peer_end(struct agent *a, const struct pscope_peer_end_event *e, size_t size)
{
	struct conn *c;

	if (size < sizeof(*e)) {
		a->stats.malformed_events++;
		return;
	}
	/* by socket too: an earlier connection with the same tuple whose socket is
	 * not gone yet must not hide this one */
	c = conn_table_lookup_sock(a->conns, e->family, e->local_addr, e->local_port,
	                           e->remote_addr, e->remote_port, e->sock_id);
	if (!c)
		return;
	if (e->how == PSCOPE_PEER_RST) {
		c->peer_end = L7_END_RESET;
		c->peer_end_ns = e->hdr.timestamp_ns;
	} else if (!c->peer_end) {
		c->peer_end = L7_END_PEER_CLOSED;
		c->peer_end_ns = e->hdr.timestamp_ns;
	}
}

/* A Python asyncio task made, or one of its steps begun (trace_links_task). */
static void on_task_event(struct agent *a, const struct pscope_task_event *e, size_t size)
{
	if (size < sizeof(*e) || !e->tick ||
	    (e->hdr.flags != PSCOPE_TASK_CREATE && e->hdr.flags != PSCOPE_TASK_ENTER)) {
		a->stats.malformed_events++;
		return;
	}
	if (a->tls)
		tls_probes_loop_seen(a->tls, e->pid);
	trace_links_task(a->links, e->pid, link_loop_actor(e->tid, e->tick), e->task,
	                 e->hdr.flags == PSCOPE_TASK_ENTER);
}

/* Reads the kernel's ring-buffer drop count: remembers when it grew. */
static void note_ring_loss(struct agent *a, uint64_t now_ns)
{
	uint64_t n;

	if (!a->loader || loader_read_ringbuf_drops(a->loader, &n) != 0)
		return;
	if (n != a->ring_drops_seen) {
		a->ring_drops_seen = n;
		a->ring_loss_ns = now_ns;
	}
}

/* A process exited with connections open: requests still waiting on them end. */
struct exit_ctx {
	struct agent *a;
	const struct pscope_proc_event *e;
	bool loss_read; /* the drop count read for this exit */
};

/* A connection still open when its process exited: its waiting requests end
 * with it, unless the ring buffer lost events since the connection was last
 * seen (its answer, or its close, may be what was lost: drop them). The drop
 * count is read at the first such connection: most processes that exit have
 * none, and the read is a syscall. */
static void end_conn_at_exit(void *ctx, struct conn *c)
{
	struct exit_ctx *x = ctx;

	if (!x->loss_read) {
		note_ring_loss(x->a, x->e->hdr.timestamp_ns);
		x->loss_read = true;
	}
	if (x->a->ring_loss_ns && c->last_seen_ns <= x->a->ring_loss_ns)
		session_on_close(c, x->e->hdr.timestamp_ns, c->ref.tid, L7_END_LOST);
	else if (c->peer_end)
		session_on_close(c, c->peer_end_ns, c->ref.tid, c->peer_end);
	else
		session_on_close(c, x->e->hdr.timestamp_ns, c->ref.tid, L7_END_EXIT);
}

/* The session's question at a close with requests waiting (one map read). */
static bool lost_since(void *ctx, const struct conn *c)
{
	struct agent *a = ctx;

	note_ring_loss(a, clock_ns(CLOCK_MONOTONIC));
	return a->ring_loss_ns && c->last_seen_ns <= a->ring_loss_ns;
}

static void on_proc_exit(struct agent *a, const struct pscope_proc_event *e, size_t size)
{
	/* event files recorded before exe_ino/exe_dev have 64-byte events */
	if (size < offsetof(struct pscope_proc_event, exe_ino)) {
		a->stats.malformed_events++;
		return;
	}
	if (e->hdr.type == PSCOPE_EV_PROC_EXEC) {
		struct tls_exe exe = {0};

		if (size >= sizeof(*e))
			exe = (struct tls_exe){.ino = e->exe_ino,
			                       .dev = e->exe_dev,
			                       .plain = e->hdr.flags & PSCOPE_EVF_PLAIN_EXE};
		/* a new program in this pid: its resource is read again at its
		 * first connection (most programs never open one), with the
		 * exec's note for a process gone by then; a new executable is
		 * looked at for Go or OpenSSL now, once per file */
		proc_info_forget(a->procs, e->pid);
		if (size >= sizeof(*e)) {
			char name[sizeof(e->exe_name) + 1];

			memcpy(name, e->exe_name, sizeof(e->exe_name));
			name[sizeof(e->exe_name)] = '\0';
			proc_info_note_exec(a->procs, e->pid, e->proc_start_ns, name, e->exe_dev,
			                    e->exe_ino);
		}
		if (a->tls)
			tls_probes_on_exec(a->tls, e->pid, e->hdr.timestamp_ns, &exe);
		return;
	}
	{
		struct exit_ctx x = {a, e, false};

		conn_table_for_pid(a->conns, e->pid, end_conn_at_exit, &x);
	}
	if (a->log_lines)
		log_lines_flush_pid(a->log_lines, e->pid); /* while its resource is known */
	conn_table_remove_pid(a->conns, e->pid);
	proc_info_forget(a->procs, e->pid);
	if (a->tls)
		tls_probes_on_exit(a->tls, e->pid);
}

/* ---- logs (--logs) ---- */

/* The trace context a write's tag carries (struct log_tag, opaque to the
 * line assembler). */
struct log_tag_ctx {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t valid, sampled;
	uint8_t pad[2];
	uint32_t tid;
};
_Static_assert(sizeof(struct log_tag_ctx) <= sizeof(struct log_tag), "log tag size");

static void flush_log_batch(struct agent *a)
{
	uint8_t *body = NULL;
	size_t len = 0;

	if (!a->n_log_batch)
		return;
	if (a->exporter) {
		if (otlp_logs_encode((const struct log_record *const *)a->log_batch, a->n_log_batch,
		                     &body, &len) == 0)
			otlp_exporter_submit_logs(a->exporter, body, len, a->n_log_batch);
		else
			a->log_stats.encode_failed += a->n_log_batch;
	}
	for (size_t i = 0; i < a->n_log_batch; i++)
		log_record_free(a->log_batch[i]);
	a->n_log_batch = 0;
}

static struct log_rate *log_rate_of(struct agent *a, uint32_t pid)
{
	struct log_rate *r = &a->log_rates[(pid * 2654435761u) % LOG_RATE_SLOTS];

	if (r->pid != pid) {
		memset(r, 0, sizeof(*r));
		r->pid = pid;
	}
	return r;
}

struct port_search {
	const struct config *cfg;
	bool found;
};

static void find_traced_port(void *ctx, struct conn *c)
{
	struct port_search *ps = ctx;

	for (size_t i = 0; i < ps->cfg->n_ports; i++)
		if (c->ref.local_port == ps->cfg->ports[i] ||
		    c->ref.remote_port == ps->cfg->ports[i])
			ps->found = true;
}

/* Whether pid's lines are wanted: --exe by executable name, --port when the
 * process has a traced connection (--pid is the kernel's). Hook for the
 * container selection (branch k8s): check the resource's container here. */
static bool log_source_allowed(struct agent *a, uint32_t pid, struct resource *r)
{
	const struct config *cfg = a->cfg;

	if (cfg->n_exes) {
		const char *exe = r ? resource_get_str(r, "process.executable.name") : NULL;
		bool match = false;

		for (size_t i = 0; exe && i < cfg->n_exes; i++)
			match |= !strcmp(exe, cfg->exes[i]);
		if (!match)
			return false;
	}
	if (cfg->n_ports) {
		struct port_search ps = {cfg, false};

		conn_table_for_pid(a->conns, pid, find_traced_port, &ps);
		if (!ps.found)
			return false;
	}
	return true;
}

/* A line (or grouped stack trace) is complete: budget, record, outputs. */
static void on_log_text(void *ctx, const struct log_text *t)
{
	struct agent *a = ctx;
	const struct log_tag_ctx *tc = (const struct log_tag_ctx *)t->tag->b;
	struct log_rate *rate = log_rate_of(a, t->pid);
	struct log_line_input in = {0};
	struct log_record *rec;

	if (a->cfg->logs_rate) {
		if (t->ts_ns >= rate->window_ns + 1000000000ull) {
			rate->window_ns = t->ts_ns;
			rate->lines = 0;
		}
		if (rate->lines >= a->cfg->logs_rate) {
			a->log_stats.rate_limited++;
			return;
		}
		rate->lines++;
	}
	in.text = t->text;
	in.len = t->len;
	in.truncated = t->truncated;
	in.lines = t->lines;
	in.fd = t->fd;
	in.tid = tc->tid;
	in.time_unix_ns = t->ts_ns + (uint64_t)a->unix_offset_ns;
	in.observed_unix_ns = clock_ns(CLOCK_REALTIME);
	in.has_context = tc->valid;
	in.sampled = tc->sampled;
	memcpy(in.trace_id, tc->trace_id, 16);
	memcpy(in.span_id, tc->span_id, 8);
	in.resource = proc_info_get(a->procs, t->pid, 0, NULL);
	rec = log_record_build(&in);
	if (!rec)
		return;
	a->log_stats.records++;
	if (a->printer)
		printer_print_log(a->printer, rec);
	if (!a->exporter) {
		log_record_free(rec);
		return;
	}
	if (!a->n_log_batch)
		a->log_batch_since_ns = a->now_mono_ns;
	a->log_batch[a->n_log_batch++] = rec;
	if (a->n_log_batch == LOG_BATCH_MAX)
		flush_log_batch(a);
}

static void on_log_event(struct agent *a, const struct pscope_log_event *e, size_t size)
{
	struct log_tag tag = {0};
	struct log_tag_ctx *tc = (struct log_tag_ctx *)tag.b;
	struct resource *r;
	struct log_rate *rate;
	struct link_ctx ids;
	uint64_t actor;

	if (size < sizeof(*e) || size < sizeof(*e) + e->captured || e->captured > e->bytes) {
		a->stats.malformed_events++;
		return;
	}
	if (!a->log_lines)
		return;
	a->log_stats.events++;
	r = proc_info_get(a->procs, e->pid, e->proc_start_ns, NULL);
	rate = log_rate_of(a, e->pid);
	if (!rate->checked_ns || e->hdr.timestamp_ns > rate->checked_ns + LOG_FILTER_RECHECK_NS) {
		rate->allowed = log_source_allowed(a, e->pid, r);
		rate->checked_ns = e->hdr.timestamp_ns;
	}
	if (!rate->allowed) {
		a->log_stats.filtered++;
		return;
	}
	/* who wrote it, as the data events name their writers (session.c) */
	actor = e->tid;
	if (e->goroutine && r) {
		const char *lang = resource_get_str(r, "telemetry.sdk.language");

		if (lang && !strcmp(lang, "go"))
			actor |= (uint64_t)(e->goroutine | LINK_GOROUTINE_BIT) << 32;
	}
	if (!(actor >> 32) && e->tick)
		actor = link_loop_actor(e->tid, e->tick);
	if (trace_links_context(a->links, e->pid, actor, &ids)) {
		memcpy(tc->trace_id, ids.trace_id, 16);
		memcpy(tc->span_id, ids.span_id, 8);
		tc->valid = 1;
		tc->sampled = ids.sampled;
	}
	tc->tid = e->tid;
	log_lines_feed(a->log_lines, e->pid, e->fd, e->hdr.timestamp_ns, &tag, e->payload,
	               e->captured, e->bytes);
}

static int on_ringbuf_event(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	const struct pscope_event_header *h = data;

	a->stats.events++;
	if (a->recorder && event_writer_append(a->recorder, data, size) < 0) {
		log_msg(a->log, LOG_ERROR, "cannot write the event file; recording stopped", NULL);
		event_writer__free(a->recorder);
		a->recorder = NULL;
	}
	if (size < sizeof(*h) || h->size > size) {
		a->stats.malformed_events++;
		return 0;
	}
	if (h->type < sizeof(a->stats.events_by_type) / sizeof(a->stats.events_by_type[0]))
		a->stats.events_by_type[h->type]++;
	switch (h->type) {
	case PSCOPE_EV_DATA:
		on_data(a, data, size);
		break;
	case PSCOPE_EV_CONN_OPEN:
	case PSCOPE_EV_CONN_CLOSE:
		on_conn_event(a, data, size);
		break;
	case PSCOPE_EV_PROC_EXIT:
	case PSCOPE_EV_PROC_EXEC:
		on_proc_exit(a, data, size);
		break;
	case PSCOPE_EV_PEER_END:
		on_peer_end(a, data, size);
		break;
	case PSCOPE_EV_SOCK_CLOSED:
		on_sock_closed(a, data, size);
		break;
	case PSCOPE_EV_LOG:
		on_log_event(a, data, size);
		break;
	case PSCOPE_EV_TASK:
		on_task_event(a, data, size);
		break;
	default:
		a->stats.malformed_events++;
	}
	return 0;
}

static void release_conn(void *ctx, struct conn *c)
{
	struct agent *a = ctx;

	session_free(c);
	trace_links_forget_conn(a->links, c);
}

/* ---- loop callbacks ---- */

/* The per-CPU rings' records are taken once this much older than the drain
 * (clock skew between CPUs); a drain that left some goes again after it, so
 * an event that woke the agent is read at once (a process's first
 * connection: its /proc entry may be gone 50 ms later). */
#define CPU_RINGS_GRACE_NS (50 * 1000)

/* Hands every event waiting in the kernel's buffers to on_ringbuf_event; with
 * all, also the per-CPU rings' youngest (at shutdown). */
static void drain_events(struct agent *a, bool all)
{
	uint64_t waiting =
	    a->cpu_rings ? cpu_rings_waiting(a->cpu_rings) : loader_ringbuf_waiting(a->loader);

	if (waiting > a->ringbuf_peak)
		a->ringbuf_peak = waiting;
	ring_reader_consume(a->rb); /* with per-CPU rings: wake-ups only */
	if (a->cpu_rings && all)
		cpu_rings_flush(a->cpu_rings);
	else if (a->cpu_rings) {
		cpu_rings_consume(a->cpu_rings, clock_ns(CLOCK_MONOTONIC), CPU_RINGS_GRACE_NS);
		if (cpu_rings_left(a->cpu_rings)) {
			nanosleep(&(struct timespec){.tv_nsec = CPU_RINGS_GRACE_NS}, NULL);
			cpu_rings_consume(a->cpu_rings, clock_ns(CLOCK_MONOTONIC),
			                  CPU_RINGS_GRACE_NS);
		}
	}
	trace_links_flush(a->links);
	release_held(a, false);
	if (a->printer)
		printer_flush(a->printer);
}

static void on_ringbuf_ready(void *ctx, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	drain_events(ctx, false);
}

static void on_poll_timer(void *ctx)
{
	struct agent *a = ctx;

	drain_events(a, false);
	if (a->tls)
		tls_probes_tick(a->tls, clock_ns(CLOCK_MONOTONIC));
	if (a->log_lines) {
		a->now_mono_ns = clock_ns(CLOCK_MONOTONIC);
		log_lines_tick(a->log_lines, a->now_mono_ns);
		if (a->n_log_batch && a->now_mono_ns >= a->log_batch_since_ns + LOG_BATCH_DELAY_NS)
			flush_log_batch(a);
	}
}

static void on_housekeeping(void *ctx)
{
	struct agent *a = ctx;
	uint64_t drops[PSCOPE_DROP__COUNT];
	size_t n_conns;

	refresh_clock(a);
	container_meta_expire(a->containers, 600000); /* bundles of containers gone 10 min */
	conn_table_expire(a->conns,
	                  a->now_mono_ns > IDLE_CONN_NS ? a->now_mono_ns - IDLE_CONN_NS : 0);
	n_conns = conn_table_count(a->conns);
	if (n_conns > a->conns_peak)
		a->conns_peak = n_conns;
	if (a->conns_peak - n_conns >= TRIM_AFTER_CONNS) {
		/* a storm of connections is over: give its memory back to the system */
		malloc_trim(0);
		a->conns_peak = n_conns;
	}
	if (loader_read_drops(a->loader, drops) == 0) {
		for (int r = 0; r < PSCOPE_DROP__COUNT; r++) {
			if (r != PSCOPE_DROP_TRUNCATED && drops[r] > a->stats.drops[r])
				log_msg(a->log, LOG_WARN, "events dropped in the kernel", "reason",
				        LOG_STR(loader_drop_reason_name(r)), "count",
				        LOG_INT((int64_t)(drops[r] - a->stats.drops[r])), NULL);
			a->stats.drops[r] = drops[r];
		}
	}
}

static void on_signal(void *ctx, int fd, uint32_t events)
{
	struct agent *a = ctx;
	struct signalfd_siginfo si;

	(void)events;
	if (read(fd, &si, sizeof(si)) == sizeof(si))
		log_msg(a->log, LOG_INFO, "stopping", "signal",
		        LOG_STR(strsignal((int)si.ssi_signo)), NULL);
	event_loop_stop(a->loop);
}

static void exporter_log(void *ctx, int level, const char *msg)
{
	log_msg(ctx, (enum log_level)level, msg, NULL);
}

/* ---- metrics outputs ---- */

/* Publishes the agent's own counters into the registry (before each export). */
static void update_self_metrics(struct agent *a)
{
	struct metrics *m = a->metrics;
	uint64_t drops[PSCOPE_DROP__COUNT];
	static const char *const type_names[] = {
	    [PSCOPE_EV_DATA] = "data",
	    [PSCOPE_EV_CONN_OPEN] = "conn_open",
	    [PSCOPE_EV_CONN_CLOSE] = "conn_close",
	    [PSCOPE_EV_PROC_EXIT] = "proc_exit",
	    [PSCOPE_EV_PEER_END] = "peer_end",
	    [PSCOPE_EV_PROC_EXEC] = "proc_exec",
	    [PSCOPE_EV_LOG] = "log",
	    [PSCOPE_EV_TASK] = "task",
	    [PSCOPE_EV_SOCK_CLOSED] = "sock_closed",
	};

	for (size_t t = 1; t < sizeof(type_names) / sizeof(type_names[0]); t++)
		metrics_set_self_counter(m, "periscope.events.received", "type", type_names[t],
		                         a->stats.events_by_type[t]);
	metrics_set_self_counter(m, "periscope.events.malformed", NULL, NULL,
	                         a->stats.malformed_events);
	if (a->loader && loader_read_drops(a->loader, drops) == 0)
		for (int r = 0; r < PSCOPE_DROP__COUNT; r++)
			metrics_set_self_counter(m, "periscope.events.dropped", "reason",
			                         loader_drop_reason_name(r), drops[r]);
	if (a->cpu_rings) {
		/* per-CPU rings: records skipped as damaged or left claimed (never
		 * expected), and
		 * records handed over after younger ones (a producer stalled past
		 * the merge's grace period) */
		metrics_set_self_counter(m, "periscope.events.dropped", "reason", "ring_corrupt",
		                         cpu_rings_corrupt(a->cpu_rings));
		metrics_set_self_counter(m, "periscope.events.dropped", "reason", "ring_stuck",
		                         cpu_rings_stuck(a->cpu_rings));
		metrics_set_self_counter(m, "periscope.events.late", NULL, NULL,
		                         cpu_rings_late(a->cpu_rings));
	}
	metrics_set_self_counter(m, "periscope.spans.created", NULL, NULL, a->stats.spans);
	metrics_set_self_counter(m, "periscope.spans.unsampled", NULL, NULL,
	                         a->stats.spans_unsampled);
	metrics_set_self_counter(m, "periscope.parse.errors", NULL, NULL,
	                         a->session_stats.parse_errors);
	metrics_set_self_counter(m, "periscope.connections.unrecognised", NULL, NULL,
	                         a->session_stats.unrecognised_conns);
	metrics_set_self_counter(m, "periscope.streams.resynced", NULL, NULL,
	                         a->session_stats.resyncs);
	metrics_set_self_counter(m, "periscope.http2.connections", "hpack_mode", "synced",
	                         a->stats.h2_conns[0]);
	metrics_set_self_counter(m, "periscope.http2.connections", "hpack_mode", "late_join",
	                         a->stats.h2_conns[1]);
	metrics_set_self_counter(m, "periscope.http2.streams", "hpack_mode", "synced",
	                         a->stats.h2_streams[0]);
	metrics_set_self_counter(m, "periscope.http2.streams", "hpack_mode", "late_join",
	                         a->stats.h2_streams[1]);
	metrics_set_self_counter(m, "periscope.http2.unknown_headers", NULL, NULL,
	                         a->stats.h2_unknown);
	{
		struct trace_links_stats ls;

		/* client spans: given a local parent, left a root because the
		 * evidence was ambiguous, or a root with no server request around */
		trace_links_get_stats(a->links, &ls);
		metrics_set_self_counter(m, "periscope.links", "result", "linked",
		                         ls.in_process_links);
		metrics_set_self_counter(m, "periscope.links", "result", "ambiguous", ls.ambiguous);
		metrics_set_self_counter(m, "periscope.links", "result", "none", ls.no_parent);
		metrics_set_self_counter(m, "periscope.links.paired", NULL, NULL, ls.paired);
		/* of those, late: the server request's trace moved into its client's */
		metrics_set_self_counter(m, "periscope.links.paired_late_moves", NULL, NULL,
		                         ls.moved);
		metrics_set_self_counter(m, "periscope.links.event_loop", NULL, NULL,
		                         ls.loop_links);
		/* Python asyncio tasks seen made, and made for a server request */
		metrics_set_self_counter(m, "periscope.links.asyncio_tasks", "owner", "request",
		                         ls.tasks_owned);
		metrics_set_self_counter(m, "periscope.links.asyncio_tasks", "owner", "none",
		                         ls.tasks_made - ls.tasks_owned);
		metrics_set_self_counter(m, "periscope.links.asyncio_conn_task_steps", NULL, NULL,
		                         ls.conn_task_steps);
	}
	if (a->log_lines) {
		struct log_lines_stats ls;
		uint64_t kc[PSCOPE_LOG__COUNT] = {0};

		log_lines_get_stats(a->log_lines, &ls);
		if (a->loader)
			loader_read_log_counters(a->loader, kc);
		metrics_set_self_counter(m, "periscope.logs.writes", NULL, NULL,
		                         kc[PSCOPE_LOG_WRITES]);
		metrics_set_self_counter(m, "periscope.logs.records", NULL, NULL,
		                         a->log_stats.records);
		metrics_set_self_counter(m, "periscope.logs.truncated", NULL, NULL, ls.truncated);
		metrics_set_self_counter(m, "periscope.logs.grouped", NULL, NULL, ls.grouped);
		metrics_set_self_counter(m, "periscope.logs.dropped", "reason", "rate_limit",
		                         a->log_stats.rate_limited);
		metrics_set_self_counter(m, "periscope.logs.dropped", "reason", "rate_limit_kernel",
		                         kc[PSCOPE_LOG_RATE_LIMITED]);
		metrics_set_self_counter(m, "periscope.logs.dropped", "reason", "encode_failed",
		                         a->log_stats.encode_failed);
		if (a->exporter) {
			struct otlp_exporter_stats es;

			otlp_exporter_stats(a->exporter, &es);
			metrics_set_self_counter(m, "periscope.logs.exported", NULL, NULL,
			                         es.logs_exported);
			metrics_set_self_counter(m, "periscope.logs.dropped", "reason",
			                         "queue_full", es.logs_dropped_queue_full);
			metrics_set_self_counter(m, "periscope.logs.dropped", "reason",
			                         "export_failed", es.logs_dropped_export);
		}
	}
	if (a->loader) {
		metrics_set_self_gauge(m, "periscope.ringbuf.size", NULL, NULL,
		                       (double)a->events_buffer_bytes);
		metrics_set_self_gauge(m, "periscope.ringbuf.usage", NULL, NULL,
		                       (double)a->ringbuf_peak);
		a->ringbuf_peak = 0;
	}
	metrics_set_self_gauge(m, "periscope.connections.tracked", NULL, NULL,
	                       (double)conn_table_count(a->conns));
	metrics_set_self_gauge(m, "periscope.metrics.series", NULL, NULL,
	                       (double)metrics_series_count(m));
	if (a->exporter) {
		struct otlp_exporter_stats es;

		otlp_exporter_stats(a->exporter, &es);
		metrics_set_self_counter(m, "periscope.spans.exported", NULL, NULL,
		                         es.spans_exported);
		metrics_set_self_counter(m, "periscope.spans.dropped", "reason", "queue_full",
		                         es.spans_dropped_queue_full);
		metrics_set_self_counter(m, "periscope.spans.dropped", "reason", "export_failed",
		                         es.spans_dropped_export);
		metrics_set_self_counter(m, "periscope.export.failures", NULL, NULL,
		                         es.export_failures);
		metrics_set_self_counter(m, "periscope.export.retries", NULL, NULL, es.retries);
		metrics_set_self_counter(m, "periscope.metrics.posts", "result", "ok",
		                         es.metric_posts_ok);
		metrics_set_self_counter(m, "periscope.metrics.posts", "result", "failed",
		                         es.metric_posts_failed);
		metrics_set_self_gauge(m, "periscope.export.queue", NULL, NULL,
		                       (double)es.spans_queued);
	}
}

static int render_prometheus(void *ctx, struct prom_buf *out)
{
	struct agent *a = ctx;

	update_self_metrics(a);
	return prom_text_render(a->metrics, out);
}

static void export_metrics(struct agent *a)
{
	struct otlp_metrics_options o = {0};
	uint8_t *body = NULL;
	size_t len = 0, points = 0;
	int rc;

	if (!a->exporter)
		return;
	update_self_metrics(a);
	o.temporality = a->temporality;
	o.now_unix_ns = metrics_now_unix_ns();
	o.scope_version = PERISCOPE_VERSION;
	rc = otlp_metrics_encode(a->metrics, &o, &body, &len, &points);
	if (rc < 0) {
		log_msg(a->log, LOG_WARN, "cannot encode metrics", "error", LOG_STR(strerror(-rc)),
		        NULL);
		return;
	}
	a->stats.metric_points += points;
	/* the exporter owns body from here, also when its queue is full */
	otlp_exporter_submit_metrics(a->exporter, body, len);
	if (a->temporality == METRIC_TEMPORALITY_DELTA)
		metrics_delta_commit(a->metrics, o.now_unix_ns);
	/* series of processes gone for 10 minutes go away */
	metrics_expire(a->metrics, o.now_unix_ns, 600ull * 1000000000ull);
}

static void on_metrics_timer(void *ctx)
{
	export_metrics(ctx);
}

/* ---- setup ---- */

static int setup_signals(struct agent *a)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	a->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->signal_fd < 0)
		return -errno;
	return event_loop_add_fd(a->loop, a->signal_fd, EPOLLIN, on_signal, a);
}

/* Container and pod metadata: the runtime's bundle files, and the Kubernetes
 * API when one is configured or this runs in a cluster. */
static int setup_containers(struct agent *a)
{
	const struct config *cfg = a->cfg;
	struct container_meta_config mc = {0};
	struct k8s_client_config kc = {0};
	char url[512] = "", token[512], ca[512];

	if (cfg->no_containers || cfg->mode == CONFIG_MODE_REPLAY)
		return 0;
	a->bundle_paths = oci_bundle_paths__new(cfg->host_root, true);
	if (!a->bundle_paths) {
		log_msg(a->log, LOG_ERROR, "invalid --host-root", "path", LOG_STR(cfg->host_root),
		        NULL);
		return -EINVAL;
	}
	for (size_t i = 0; i < cfg->n_runtime_roots; i++) {
		const char *r = cfg->runtime_roots[i];
		const char *dir = strchr(r, ':') + 1;
		enum oci_layout layout = r[0] == 'c' && r[1] == 'o' ? OCI_LAYOUT_CONTAINERD
		                         : r[0] == 'c'              ? OCI_LAYOUT_CRIO
		                                                    : OCI_LAYOUT_DIRECT;

		if (oci_bundle_paths_add(a->bundle_paths, layout, dir) < 0) {
			log_msg(a->log, LOG_ERROR, "invalid --runtime-root", "root", LOG_STR(r),
			        NULL);
			return -EINVAL;
		}
	}
	if (cfg->node_name) {
		snprintf(a->node_name, sizeof(a->node_name), "%s", cfg->node_name);
	} else if (gethostname(a->node_name, sizeof(a->node_name) - 1) < 0) {
		a->node_name[0] = '\0';
	}
	for (char *p = a->node_name; *p; p++) /* kubelet's default node name */
		*p = (char)tolower((unsigned char)*p);
	if (cfg->kube_api) {
		snprintf(url, sizeof(url), "%s", cfg->kube_api);
		kc.token_file = cfg->kube_token;
		kc.ca_file = cfg->kube_ca;
	} else if (!cfg->kube_api_off && k8s_client_in_cluster_url(url, sizeof(url)) == 0) {
		snprintf(token, sizeof(token), "%s/token", K8S_SA_DIR);
		snprintf(ca, sizeof(ca), "%s/ca.crt", K8S_SA_DIR);
		kc.token_file = cfg->kube_token ? cfg->kube_token : token;
		kc.ca_file = cfg->kube_ca ? cfg->kube_ca : ca;
	}
	if (url[0]) {
		kc.api_url = url;
		kc.node_name = a->node_name;
		kc.log = a->log;
		a->k8s = k8s_client__new(&kc);
		if (!a->k8s) {
			log_msg(a->log, LOG_ERROR, "cannot watch the Kubernetes API", "api",
			        LOG_STR(url), "node", LOG_STR(a->node_name), "error",
			        LOG_STR(strerror(errno)), NULL);
			return -EINVAL;
		}
		log_msg(a->log, LOG_INFO, "pod metadata from the Kubernetes API", "api",
		        LOG_STR(url), "node", LOG_STR(a->node_name), NULL);
	}
	mc.paths = a->bundle_paths;
	mc.k8s = a->k8s;
	mc.log = a->log;
	mc.node_name = cfg->node_name || a->k8s ? a->node_name : NULL;
	a->containers = container_meta__new(&mc);
	if (!a->containers)
		return -ENOMEM;
	proc_info_set_hook(a->procs, container_meta_hook, a->containers);
	return 0;
}

static int setup_metrics(struct agent *a)
{
	const char *temporality = getenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
	struct metrics_options mo = {0};

	a->temporality = otlp_metrics_temporality_parse(temporality);
	mo.delta = a->temporality == METRIC_TEMPORALITY_DELTA;
	mo.self_resource = proc_info_get(a->procs, (uint32_t)getpid(), 0, "periscope");
	a->metrics = metrics__new(&mo);
	if (!a->metrics) {
		log_msg(a->log, LOG_ERROR, "out of memory", NULL);
		return -ENOMEM;
	}
	return 0;
}

static int setup_outputs(struct agent *a)
{
	const struct config *cfg = a->cfg;

	if (cfg->print != CONFIG_PRINT_OFF) {
		a->printer = printer__new(stdout, cfg->print == CONFIG_PRINT_JSON ? PRINTER_JSON
		                                                                  : PRINTER_TEXT);
		if (!a->printer)
			return -ENOMEM;
	}
	if (cfg->otlp_endpoint) {
		struct otlp_exporter_config ec;

		otlp_exporter_config_from_env(&ec);
		if (cfg->otlp_endpoint_flag &&
		    (otlp_signal_url(cfg->otlp_endpoint, "traces", ec.traces_url,
		                     sizeof(ec.traces_url)) < 0 ||
		     otlp_signal_url(cfg->otlp_endpoint, "metrics", ec.metrics_url,
		                     sizeof(ec.metrics_url)) < 0 ||
		     otlp_signal_url(cfg->otlp_endpoint, "logs", ec.logs_url, sizeof(ec.logs_url)) <
		         0)) {
			log_msg(a->log, LOG_ERROR, "invalid --otlp-endpoint", "endpoint",
			        LOG_STR(cfg->otlp_endpoint), NULL);
			return -EINVAL;
		}
		ec.log = exporter_log;
		ec.log_ctx = a->log;
		a->exporter = otlp_exporter__new(&ec);
		if (!a->exporter) {
			log_msg(a->log, LOG_ERROR, "cannot start the OTLP exporter", "endpoint",
			        LOG_STR(cfg->otlp_endpoint), NULL);
			return -EINVAL;
		}
		log_msg(a->log, LOG_INFO, "exporting OTLP", "endpoint", LOG_STR(cfg->otlp_endpoint),
		        NULL);
	}
	return 0;
}

/* The agent's own listener: scrapes of it must not be traced. */
static void register_listener(struct agent *a, const char *addr_port, int port)
{
	char host[64] = "";
	const char *colon = strrchr(addr_port, ':');
	size_t n = colon ? (size_t)(colon - addr_port) : 0;
	uint8_t addr[16] = {0};

	if (n >= sizeof(host))
		n = sizeof(host) - 1;
	memcpy(host, addr_port, n);
	host[n] = '\0';
	if (host[0] == '[') {
		memmove(host, host + 1, strlen(host));
		host[strcspn(host, "]")] = '\0';
	}
	if (host[0] && inet_pton(AF_INET, host, addr) == 1)
		loader_add_self_endpoint(a->loader, AF_INET, addr, (uint16_t)port);
	else if (host[0] && inet_pton(AF_INET6, host, addr) == 1)
		loader_add_self_endpoint(a->loader, AF_INET6, addr, (uint16_t)port);
	else
		loader_add_self_endpoint(a->loader, AF_INET6, addr, (uint16_t)port); /* any */
}

static int setup_metric_outputs(struct agent *a)
{
	const struct config *cfg = a->cfg;
	const char *env = getenv("OTEL_METRIC_EXPORT_INTERVAL");
	long interval_ms = 60000;
	int rc;

	if (cfg->prometheus_addr) {
		a->prom = prom_server__new(a->loop, cfg->prometheus_addr, render_prometheus, a);
		if (!a->prom) {
			rc = -errno;
			log_msg(a->log, LOG_ERROR, "cannot serve Prometheus metrics", "address",
			        LOG_STR(cfg->prometheus_addr), "error", LOG_STR(strerror(errno)),
			        NULL);
			return rc;
		}
		register_listener(a, cfg->prometheus_addr, prom_server_local_port(a->prom));
		log_msg(a->log, LOG_INFO, "serving Prometheus metrics", "address",
		        LOG_STR(cfg->prometheus_addr), "path", LOG_STR("/metrics"), NULL);
	}
	if (!a->exporter)
		return 0;
	if (env && env[0]) {
		char *end;
		long v = strtol(env, &end, 10);

		if (*end || v <= 0)
			log_msg(a->log, LOG_WARN,
			        "OTEL_METRIC_EXPORT_INTERVAL is not a positive "
			        "number of milliseconds; using 60000",
			        NULL);
		else
			interval_ms = v < 100 ? 100 : v;
	}
	rc = event_loop_add_timer(a->loop, (uint64_t)interval_ms, on_metrics_timer, a);
	return rc < 0 ? rc : 0;
}

/* Each CPU's ring: its share of the event buffer budget, a power of two of
 * at least 64 KiB (one record of the largest capture) when --ringbuf-size
 * set the budget, else of at least 256 KiB (a burst on one CPU of a big
 * machine must not overflow its ring before the agent wakes). */
static uint32_t cpu_ring_bytes(uint32_t total, int ncpus, bool total_set)
{
	uint64_t share = total / (uint64_t)(ncpus > 0 ? ncpus : 1);
	uint32_t size = total_set ? 1u << 16 : 1u << 18;

	while ((uint64_t)size * 2 <= share && size < (1u << 30))
		size *= 2;
	return size;
}

int agent__new(const struct config *cfg, struct logger *lg, struct agent **out)
{
	struct loader_config lc = {0};
	struct agent *a;
	char err[512] = "";
	int rc, ncpus;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->cfg = cfg;
	a->log = lg;
	a->signal_fd = -1;
	a->sink.exchange = on_exchange;
	a->sink.request = on_request;
	a->sink.io = on_io;
	a->sink.lost_since = lost_since;
	a->sink.reset = on_stream_reset;
	a->sink.ctx = a;
	a->sink.pool = l7_pool__new(); /* NULL: the parsers use malloc */
	id_gen_seed(&a->ids);
	refresh_clock(a);

	a->loop = event_loop__new();
	a->conns = conn_table__new(cfg->max_connections, release_conn, a);
	a->procs = proc_info_cache__new(getenv("OTEL_RESOURCE_ATTRIBUTES"));
	a->routes = route_table__new();
	if (sampler_init(&a->sampler, getenv("OTEL_TRACES_SAMPLER"),
	                 getenv("OTEL_TRACES_SAMPLER_ARG")) < 0)
		log_msg(lg, LOG_WARN,
		        "OTEL_TRACES_SAMPLER or its argument is not understood; using "
		        "parentbased_always_on",
		        NULL);
	a->links = trace_links__new(a->conns, &a->ids, &a->sampler);
	a->held = calloc(HELD_SPANS_MAX, sizeof(*a->held));
	if (cfg->logs) {
		a->log_lines = log_lines__new(NULL, on_log_text, a);
		a->log_rates = calloc(LOG_RATE_SLOTS, sizeof(*a->log_rates));
	}
	if (!a->loop || !a->conns || !a->procs || !a->routes || !a->links || !a->held ||
	    (cfg->logs && (!a->log_lines || !a->log_rates))) {
		rc = -ENOMEM;
		log_msg(lg, LOG_ERROR, "out of memory", NULL);
		goto cleanup;
	}
	for (size_t i = 0; i < cfg->n_routes; i++)
		route_table_add(a->routes, cfg->routes[i]);
	if (cfg->routes_env && route_table_add_list(a->routes, cfg->routes_env) < 0)
		log_msg(lg, LOG_WARN, "PERISCOPE_ROUTES has an invalid pattern", NULL);
	/* signals first: threads started later (the exporter) inherit the mask */
	rc = setup_signals(a);
	if (rc < 0) {
		log_msg(lg, LOG_ERROR, "cannot set up signal handling", NULL);
		goto cleanup;
	}
	rc = setup_containers(a); /* after signals: the API thread inherits the mask */
	if (rc)
		goto cleanup;
	rc = setup_metrics(a);
	if (rc)
		goto cleanup;
	rc = setup_outputs(a);
	if (rc)
		goto cleanup;

	if (cfg->mode == CONFIG_MODE_REPLAY) {
		*out = a; /* no kernel: events come from a file */
		return 0;
	}
	if (cfg->mode == CONFIG_MODE_RECORD) {
		a->recorder = event_writer__new(cfg->event_file);
		if (!a->recorder) {
			rc = -errno;
			log_msg(lg, LOG_ERROR, "cannot create the event file", "path",
			        LOG_STR(cfg->event_file), "error", LOG_STR(strerror(errno)), NULL);
			goto cleanup;
		}
	}
	lc.self_tgid = (uint32_t)getpid();
	lc.capture_size = cfg->capture_size;
	lc.request_capture_size = cfg->request_capture_size;
	lc.ringbuf_bytes = cfg->ringbuf_bytes;
	lc.max_sockets = cfg->max_connections;
	/* woken before an eighth of a CPU's ring (or of the shared buffer,
	 * whichever CPUs filled it) is used */
	ncpus = libbpf_num_possible_cpus();
	if (cfg->shared_ringbuf) {
		lc.wakeup_bytes = cfg->ringbuf_bytes / 8 / (uint64_t)(ncpus > 0 ? ncpus : 1);
	} else {
		lc.cpu_ring_bytes = cpu_ring_bytes(cfg->ringbuf_bytes, ncpus, cfg->ringbuf_set);
		lc.wakeup_bytes = lc.cpu_ring_bytes / 8;
	}
	lc.pids = cfg->pids;
	lc.n_pids = cfg->n_pids;
	lc.ports = cfg->ports;
	lc.n_ports = cfg->n_ports;
	lc.logs = cfg->logs;
	lc.syscall_data = cfg->syscall_data;
	/* the kernel's budget is in writes: a write holds at least one line */
	lc.log_writes_per_sec = cfg->logs_rate;
	rc = loader__new(&lc, &a->loader, err, sizeof(err));
	if (rc) {
		log_msg(lg, LOG_ERROR, err, "errno", LOG_INT(-rc), NULL);
		goto cleanup;
	}
	{
		a->tls = tls_probes__new(a->loader, lg, "/proc", !cfg->no_tls, !cfg->no_node_probes,
		                         !cfg->no_python_probes);
		if (!a->tls) {
			rc = -ENOMEM;
			goto cleanup;
		}
		tls_probes_scan_all(a->tls);
	}
	a->rb = ring_reader__new(loader_events_fd(a->loader), on_ringbuf_event, a);
	if (!a->rb) {
		rc = -errno;
		log_msg(lg, LOG_ERROR, "cannot open the ring buffer", NULL);
		goto cleanup;
	}
	{
		unsigned n;
		size_t stride, ring_size;
		int fd = loader_cpu_rings(a->loader, &n, &stride, &ring_size);

		a->events_buffer_bytes = cfg->ringbuf_bytes;
		if (fd >= 0) {
			a->events_buffer_bytes = (uint64_t)n * ring_size;
			a->cpu_rings =
			    cpu_rings__new(fd, NULL, n, stride, ring_size, on_ringbuf_event, a);
			if (!a->cpu_rings) {
				rc = -errno;
				log_msg(lg, LOG_ERROR, "cannot map the per-CPU event rings",
				        "error", LOG_STR(strerror(errno)), NULL);
				goto cleanup;
			}
		}
	}
	rc = event_loop_add_fd(a->loop, ring_reader_fd(a->rb), EPOLLIN, on_ringbuf_ready, a);
	if (rc < 0)
		goto cleanup;
	rc = event_loop_add_timer(a->loop, POLL_INTERVAL_MS, on_poll_timer, a);
	if (rc < 0)
		goto cleanup;
	rc = event_loop_add_timer(a->loop, HOUSEKEEPING_INTERVAL_MS, on_housekeeping, a);
	if (rc < 0)
		goto cleanup;
	rc = setup_metric_outputs(a);
	if (rc < 0)
		goto cleanup;
	*out = a;
	return 0;
cleanup:
	agent__free(a);
	return rc < 0 ? rc : -EINVAL;
}

void agent__free(struct agent *a)
{
	if (!a)
		return;
	prom_server__free(a->prom);
	ring_reader__free(a->rb);
	cpu_rings__free(a->cpu_rings);
	if (event_writer__free(a->recorder) < 0)
		log_msg(a->log, LOG_ERROR, "the event file is incomplete", NULL);
	tls_probes__free(a->tls);
	loader__free(a->loader);
	conn_table__free(a->conns);
	mem_pool__free(a->sink.pool); /* after every parser */
	for (size_t i = 0; i < a->n_held; i++)
		span_release(&a->held[i].s);
	free(a->held);
	trace_links__free(a->links);
	log_lines__free(a->log_lines);
	for (size_t i = 0; i < a->n_log_batch; i++)
		log_record_free(a->log_batch[i]);
	free(a->log_rates);
	otlp_exporter__free(a->exporter);
	printer__free(a->printer);
	metrics__free(a->metrics);
	route_table__free(a->routes);
	proc_info_cache__free(a->procs);
	container_meta__free(a->containers);
	k8s_client__free(a->k8s);
	oci_bundle_paths__free(a->bundle_paths);
	event_loop__free(a->loop);
	if (a->signal_fd >= 0)
		close(a->signal_fd);
	free(a);
}

static void *detach_probes(void *ctx)
{
	struct agent *a = ctx;

	tls_probes__free(a->tls);
	a->tls = NULL;
	loader_detach_all(a->loader);
	return NULL;
}

int agent_run(struct agent *a)
{
	struct trace_links_stats ls;
	pthread_t detacher;
	bool detaching;
	int rc;

	if (loader_fallback_reason(a->loader))
		log_msg(a->log, LOG_WARN,
		        "socket tracepoints refused: socket data taken at the syscall exits",
		        "error", LOG_STR(loader_fallback_reason(a->loader)), NULL);
	log_msg(
	    a->log, LOG_INFO, "ready", "probes", LOG_INT(loader_probe_count(a->loader)), "pid",
	    LOG_INT(getpid()), "capture_size", LOG_INT(a->cfg->capture_size), "logs",
	    LOG_INT(a->cfg->logs), "data_hooks",
	    LOG_STR(loader_socket_tracepoints(a->loader) ? "socket tracepoints" : "syscall exits"),
	    NULL);
	rc = event_loop_run(a->loop);
	drain_events(a, true);
	release_held(a, true);
	/* probes detach slowly (RCU grace periods): do it while the exports flush */
	detaching = pthread_create(&detacher, NULL, detach_probes, a) == 0;
	if (!detaching)
		detach_probes(a);
	if (a->log_lines) {
		log_lines_flush_all(a->log_lines);
		flush_log_batch(a);
	}
	export_metrics(a);
	if (a->exporter && otlp_exporter_flush(a->exporter, SHUTDOWN_FLUSH_MS) < 0)
		log_msg(a->log, LOG_WARN, "not every span could be exported before exit", NULL);
	if (detaching)
		pthread_join(detacher, NULL);
	trace_links_get_stats(a->links, &ls);
	log_msg(a->log, LOG_INFO, "stopped", "events", LOG_INT((int64_t)a->stats.events), "spans",
	        LOG_INT((int64_t)a->stats.spans), "paired", LOG_INT((int64_t)ls.paired),
	        "paired_late_moves", LOG_INT((int64_t)ls.moved), NULL);
	return rc;
}

/* Replay reads each event in place in the reader's memory (aligned there),
 * moving its timestamps forward by each round's shift so repeated rounds go on
 * in time. The memory is read ahead (REPLAY_PREFETCH bytes beyond the current
 * event) so its cache misses overlap the processing of earlier events. */
#define REPLAY_PREFETCH 2048

static void replay_shift(uint8_t *ev, size_t len, uint64_t shift)
{
	struct pscope_event_header *h = (struct pscope_event_header *)ev;

	if (len < sizeof(*h))
		return;
	h->timestamp_ns += shift;
	if (h->type == PSCOPE_EV_DATA && len >= sizeof(struct pscope_data_event))
		((struct pscope_data_event *)ev)->enter_ns += shift;
}

int agent_replay(struct agent *a)
{
	struct event_reader *r;
	uint64_t first_ts = 0, last_ts = 0, shift = 0, t0, t1;
	uintptr_t fetched = 0;
	void *ev;
	size_t len;
	int rc = 0;

	r = event_reader__new(a->cfg->event_file, &rc);
	if (!r) {
		log_msg(a->log, LOG_ERROR, "cannot read the event file", "path",
		        LOG_STR(a->cfg->event_file), "error", LOG_STR(strerror(-rc)), NULL);
		return rc;
	}
	t0 = clock_ns(CLOCK_MONOTONIC);
	for (uint32_t round = 0; round < a->cfg->replay_repeat; round++) {
		event_reader_rewind(r);
		while ((rc = event_reader_next(r, &ev, &len)) == 1) {
			const struct pscope_event_header *h = ev;
			uintptr_t at = (uintptr_t)ev;

			if (fetched < at || fetched > at + REPLAY_PREFETCH + 64)
				fetched = at & ~(uintptr_t)63; /* the first event, or a rewind */
			for (; fetched < at + len + REPLAY_PREFETCH; fetched += 64)
				__builtin_prefetch((const void *)fetched);
			if (len >= sizeof(*h)) {
				if (!first_ts)
					first_ts = h->timestamp_ns;
				if (!round && h->timestamp_ns > last_ts)
					last_ts = h->timestamp_ns;
			}
			replay_shift(ev, len, shift); /* in place: by one round's span */
			on_ringbuf_event(a, ev, len);
			if ((event_reader_count(r) & 255) == 0) {
				trace_links_flush(a->links); /* as after a ring buffer batch */
				release_held(a, false);
			}
		}
		if (rc < 0) {
			log_msg(a->log, LOG_ERROR, "the event file is damaged", "path",
			        LOG_STR(a->cfg->event_file), NULL);
			goto cleanup;
		}
		shift = last_ts - first_ts + 1000000;
	}
	conn_table__free(a->conns); /* closes every connection: parsers finish */
	a->conns = NULL;
	release_held(a, true);
	t1 = clock_ns(CLOCK_MONOTONIC);
	if (a->printer)
		printer_flush(a->printer);
	if (a->exporter)
		otlp_exporter_flush(a->exporter, SHUTDOWN_FLUSH_MS);
	{
		double secs = (double)(t1 - t0) / 1e9;

		log_msg(a->log, LOG_INFO, "replayed", "events", LOG_INT((int64_t)a->stats.events),
		        "spans", LOG_INT((int64_t)a->stats.spans), "seconds", LOG_DOUBLE(secs),
		        "events_per_second",
		        LOG_DOUBLE(secs > 0 ? (double)a->stats.events / secs : 0),
		        "spans_per_second",
		        LOG_DOUBLE(secs > 0 ? (double)a->stats.spans / secs : 0), NULL);
	}
	rc = 0;
cleanup:
	event_reader__free(r);
	return rc;
}
