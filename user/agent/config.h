/* config.h — the agent's settings from its command line and environment. */
#ifndef PERISCOPE_CONFIG_H
#define PERISCOPE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_MAX_FILTERS       64
#define CONFIG_LOGS_RATE_DEFAULT 1000 /* log lines per second per process */

enum config_print {
	CONFIG_PRINT_OFF = 0,
	CONFIG_PRINT_TEXT = 1,
	CONFIG_PRINT_JSON = 2,
};

enum config_mode {
	CONFIG_MODE_RUN = 0, /* trace live processes */
	CONFIG_MODE_HELP,
	CONFIG_MODE_VERSION,
	CONFIG_MODE_RECORD, /* trace live processes and save the raw events to a file */
	CONFIG_MODE_REPLAY, /* push a saved event file through the pipeline */
};

struct config {
	enum config_mode mode;
	enum config_print print;
	bool print_set; /* --print/--no-print given */
	uint32_t pids[CONFIG_MAX_FILTERS];
	size_t n_pids;
	uint16_t ports[CONFIG_MAX_FILTERS];
	size_t n_ports;
	const char *exes[CONFIG_MAX_FILTERS]; /* point into argv */
	size_t n_exes;
	uint32_t capture_size;
	uint32_t request_capture_size; /* reads of server connections */
	uint32_t ringbuf_bytes;
	bool ringbuf_set;    /* --ringbuf-size given */
	bool shared_ringbuf; /* --shared-ringbuf: no per-CPU rings */
	bool syscall_data;   /* --syscall-data: not the socket tracepoints */
	uint32_t max_connections;
	const char *prometheus_addr; /* NULL: off */
	bool prometheus_set;
	const char *otlp_endpoint; /* --otlp-endpoint, else the environment's */
	bool otlp_endpoint_flag;   /* it came from --otlp-endpoint (a base URL) */
	const char *log_level;
	const char *routes[CONFIG_MAX_FILTERS]; /* --route patterns, point into argv */
	size_t n_routes;
	const char *routes_env; /* PERISCOPE_ROUTES: comma-separated patterns */
	bool no_tls;            /* --no-tls: no TLS library probes */
	bool no_node_probes;    /* --no-node-probes: no Node.js event-loop probes */
	bool no_python_probes;  /* --no-python-probes: no Python asyncio probes */
	bool logs;              /* --logs or PERISCOPE_LOGS=1: stdout/stderr lines as OTLP logs */
	uint32_t logs_rate;     /* --logs-rate: lines per second per process (0: no limit) */
	const char *event_file; /* record/replay FILE */
	/* containers and Kubernetes */
	bool no_containers;    /* --no-container-metadata */
	const char *host_root; /* --host-root: the host's / as mounted here ("" : /) */
	const char *runtime_roots[CONFIG_MAX_FILTERS]; /* --runtime-root KIND:DIR, in argv */
	size_t n_runtime_roots;
	const char *kube_api;   /* --kube-api URL; NULL: in-cluster if detected */
	bool kube_api_off;      /* --kube-api off */
	const char *kube_token; /* --kube-token FILE (default: the service account's) */
	const char *kube_ca;    /* --kube-ca FILE */
	const char *node_name;  /* --node-name, else $NODE_NAME; may be NULL */
	uint32_t replay_repeat; /* replay --repeat N (default 1) */
};

/* Parses argv and the environment. Returns 0, or -EINVAL with a message in err. */
int config_parse(struct config *c, int argc, char **argv, char *err, size_t err_len);
void config_usage(FILE *out);

#endif
