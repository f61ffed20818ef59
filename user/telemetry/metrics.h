/* metrics.h — the RED metrics registry. Instruments (explicit-bucket
 * histograms, monotonic counters, gauges) hold data points keyed by
 * (resource, attribute set), with a per-instrument cardinality limit whose
 * overflow folds into one series per resource marked otel.metric.overflow=true.
 * Owned and used by the event loop thread only: no locking. The Prometheus
 * renderer and the OTLP encoder read it through metrics_foreach_point.
 *
 * Temporality: every series keeps cumulative state, which is what Prometheus
 * always sees. A registry created with .delta also keeps, per series, the
 * state since the last OTLP delta export (metrics_delta_commit), so both
 * outputs can run at once. */
#ifndef PERISCOPE_METRICS_H
#define PERISCOPE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct resource;
struct histogram;

#define METRICS_MAX_ATTRS                 16
#define METRICS_MAX_INSTRUMENTS           64
#define METRICS_ATTR_KEY_MAX              64  /* longer keys are refused */
#define METRICS_ATTR_VALUE_MAX            256 /* longer string values are truncated */
#define METRICS_DEFAULT_CARDINALITY_LIMIT 2000
#define METRICS_OVERFLOW_ATTR             "otel.metric.overflow"

enum metric_kind {
	METRIC_KIND_HISTOGRAM = 1,
	METRIC_KIND_COUNTER = 2, /* monotonic sum */
	METRIC_KIND_GAUGE = 3,
};

enum metric_temporality {
	METRIC_TEMPORALITY_CUMULATIVE = 0,
	METRIC_TEMPORALITY_DELTA = 1,
};

enum metric_attr_type {
	METRIC_ATTR_STR = 0,
	METRIC_ATTR_INT = 1,
	METRIC_ATTR_BOOL = 2,
};

/* One attribute. When recording, an attribute whose key is NULL, or a string
 * attribute whose str is NULL, is left out: optional attributes can be passed
 * unconditionally. Strings are stored as valid UTF-8 (bad bytes become '?'). */
struct metric_attr {
	const char *key;
	uint8_t type;    /* enum metric_attr_type */
	const char *str; /* METRIC_ATTR_STR */
	int64_t num;     /* METRIC_ATTR_INT; METRIC_ATTR_BOOL: 0 or 1 */
};

struct metrics_options {
	size_t cardinality_limit; /* series per instrument, overflow series included; 0: 2000 */
	bool delta;               /* keep delta state for OTLP delta temporality */
	struct resource *self_resource; /* resource of the self metrics; may be NULL */
};

struct metrics;

/* opts may be NULL (defaults). Takes a reference on opts->self_resource.
 * Registers the HTTP and DB instruments. NULL on ENOMEM. */
struct metrics *metrics__new(const struct metrics_options *opts);
void metrics__free(struct metrics *m); /* accepts NULL; drops resource references */

/* ---- instruments ----
 * Each returns the instrument id (>= 0), -EEXIST for a name already
 * registered, -EINVAL for a bad name or bounds, -ENOSPC beyond
 * METRICS_MAX_INSTRUMENTS, -ENOMEM. name, unit and description are copied. */
int metrics_add_histogram(struct metrics *m, const char *name, const char *unit,
                          const char *description, const double *bounds, size_t n_bounds);
int metrics_add_counter(struct metrics *m, const char *name, const char *unit,
                        const char *description, bool is_int);
int metrics_add_gauge(struct metrics *m, const char *name, const char *unit,
                      const char *description, bool is_int);
/* The id of the instrument called name, or -ENOENT. */
int metrics_find(const struct metrics *m, const char *name);

/* ---- recording ----
 * r may be NULL (a series without resource). Histograms record value,
 * counters add it (must be >= 0), gauges take it. Returns 0, 1 when the
 * measurement went to the overflow series, -EINVAL (bad id, value or
 * attributes), -ENOMEM. */
int metrics_record(struct metrics *m, int instrument, struct resource *r,
                   const struct metric_attr *attrs, size_t n_attrs, double value);
/* Sets a counter's cumulative value (mirroring a counter kept elsewhere).
 * A value below the previous one is taken as a restart of that counter. */
int metrics_counter_set(struct metrics *m, int instrument, struct resource *r,
                        const struct metric_attr *attrs, size_t n_attrs, double value);

/* ---- what the agent records per completed exchange ---- */

enum metrics_http_kind {
	METRICS_HTTP_SERVER = 0,
	METRICS_HTTP_CLIENT = 1,
};

struct http_metric_sample {
	enum metrics_http_kind kind;
	const char *method;           /* as sent; anything but the nine standard
	                                 methods is recorded as "_OTHER" */
	int status_code;              /* 0: no response (attribute left out) */
	const char *route;            /* template: http.route on server metrics,
	                                 url.template on client metrics; NULL or "" omits */
	const char *scheme;           /* url.scheme: "http", "https"; NULL omits */
	const char *protocol_version; /* network.protocol.version: "1.1"; NULL omits */
	const char *server_address;   /* client metrics only; NULL omits */
	int server_port;              /* client metrics only; 0 omits */
	const char *error_type;       /* NULL: the status code when it is an error
	                                 (>= 500 server, >= 400 client), else none */
	double duration_s;
	int64_t request_body_size;  /* bytes; < 0: unknown, not recorded */
	int64_t response_body_size; /* bytes; < 0: unknown, not recorded */
};

/* Records http.{server,client}.request.duration and the request/response
 * body size histograms. Returns 0 or a negative errno (the first failure). */
int metrics_record_http(struct metrics *m, struct resource *r, const struct http_metric_sample *s);

struct db_metric_sample {
	const char *system_name;     /* db.system.name: "postgresql", "mysql", "redis" */
	const char *operation_name;  /* db.operation.name: "SELECT", "GET"; NULL omits */
	const char *collection_name; /* db.collection.name; NULL omits */
	const char *server_address;  /* NULL omits */
	int server_port;             /* 0 omits */
	const char *error_type;      /* NULL: the operation succeeded */
	double duration_s;
};

/* Records db.client.operation.duration. Returns 0 or a negative errno. */
int metrics_record_db(struct metrics *m, struct resource *r, const struct db_metric_sample *s);

enum metrics_rpc_kind {
	METRICS_RPC_SERVER = 0,
	METRICS_RPC_CLIENT = 1,
};

struct rpc_metric_sample {
	enum metrics_rpc_kind kind;
	const char *system;         /* rpc.system: "grpc" (NULL: "grpc") */
	const char *service;        /* rpc.service; NULL, "" or not a plain name: "_OTHER" */
	const char *method;         /* rpc.method; likewise ("_OTHER" too when the service is) */
	int grpc_status_code;       /* rpc.grpc.status_code; < 0 omits */
	const char *server_address; /* client metrics only; NULL omits */
	int server_port;            /* client metrics only; 0 omits */
	double duration_s;          /* recorded in ms, as the conventions' unit */
};

/* Records rpc.{server,client}.duration (unit ms, the semantic conventions up
 * to v1.37; later versions renamed them rpc.*.call.duration in s). Unknown
 * names fold into "_OTHER" so late-joined connections cannot grow series.
 * Returns 0 or a negative errno. */
int metrics_record_rpc(struct metrics *m, struct resource *r, const struct rpc_metric_sample *s);

/* ---- the agent's own metrics (on the self resource) ----
 * name like "periscope.events.dropped"; the instrument is created on first
 * use (unit and description from a built-in table of known names). label_key
 * NULL: no attribute. Returns 0 or a negative errno. */
int metrics_set_self_counter(struct metrics *m, const char *name, const char *label_key,
                             const char *label_value, uint64_t value);
int metrics_set_self_gauge(struct metrics *m, const char *name, const char *label_key,
                           const char *label_value, double value);

/* ---- reading (exporters) ---- */

struct metric_instrument_info {
	const char *name;
	const char *unit;
	const char *description;
	enum metric_kind kind;
	bool is_int;          /* counters and gauges: integer values */
	const double *bounds; /* histograms */
	size_t n_bounds;
	size_t n_series;
};

size_t metrics_instrument_count(const struct metrics *m);
/* Returns 0 or -EINVAL for a bad index. */
int metrics_instrument_info(const struct metrics *m, size_t instrument,
                            struct metric_instrument_info *out);

struct metric_point {
	struct resource *resource;       /* may be NULL */
	size_t resource_index;           /* into metrics_resource_at */
	const struct metric_attr *attrs; /* sorted by key */
	size_t n_attrs;
	bool overflow;          /* the otel.metric.overflow series */
	uint64_t start_unix_ns; /* cumulative: series creation; delta: last commit */
	uint64_t last_update_unix_ns;
	const struct histogram *hist; /* METRIC_KIND_HISTOGRAM */
	double value;                 /* counters (delta: the increase) and gauges */
};

/* Calls fn for each data point of the instrument, in creation order. With
 * METRIC_TEMPORALITY_DELTA (registry created with .delta, else -EINVAL)
 * histograms and counters without new measurements since the last commit
 * are skipped. fn returning non-zero stops the walk and is returned. */
typedef int (*metrics_point_fn)(void *ctx, const struct metric_point *p);
int metrics_foreach_point(const struct metrics *m, size_t instrument,
                          enum metric_temporality temporality, metrics_point_fn fn, void *ctx);

/* Resources that have series (NULL included when used), stable indices until
 * metrics_expire. */
size_t metrics_resource_count(const struct metrics *m);
struct resource *metrics_resource_at(const struct metrics *m, size_t i);

/* After a delta export: the next delta starts at now_unix_ns. */
void metrics_delta_commit(struct metrics *m, uint64_t now_unix_ns);

/* Drops series not updated since now_unix_ns - idle_ns (processes that went
 * away), releasing their resources. Returns how many were dropped. */
size_t metrics_expire(struct metrics *m, uint64_t now_unix_ns, uint64_t idle_ns);

size_t metrics_cardinality_limit(const struct metrics *m);
/* Series across all instruments. */
size_t metrics_series_count(const struct metrics *m);

uint64_t metrics_now_unix_ns(void);

/* Length of the valid UTF-8 character at s (n bytes available), 0 when the
 * bytes there are not valid UTF-8. */
size_t metrics_utf8_char_len(const unsigned char *s, size_t n);
/* Copies in as valid UTF-8 without control characters (bad bytes become
 * '?'), cut on a character boundary to fit cap (> 0) bytes with the NUL. */
void metrics_utf8_sanitize(const char *in, char *out, size_t cap);

#endif
