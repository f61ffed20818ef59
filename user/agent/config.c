/* config.c — the agent's settings from its command line and environment. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent/config.h"
#include "periscope_abi.h"

#define DEFAULT_PROMETHEUS "127.0.0.1:9400"

enum {
	OPT_PRINT = 1000,
	OPT_NO_PRINT,
	OPT_PID,
	OPT_PORT,
	OPT_EXE,
	OPT_CAPTURE,
	OPT_REQUEST_CAPTURE,
	OPT_RINGBUF,
	OPT_SHARED_RINGBUF,
	OPT_SYSCALL_DATA,
	OPT_MAX_CONNS,
	OPT_PROMETHEUS,
	OPT_NO_PROMETHEUS,
	OPT_OTLP,
	OPT_LOG_LEVEL,
	OPT_VERSION,
	OPT_ROUTE,
	OPT_NO_TLS,
	OPT_NO_NODE_PROBES,
	OPT_NO_PYTHON_PROBES,
	OPT_REPEAT,
	OPT_NO_CONTAINERS,
	OPT_HOST_ROOT,
	OPT_RUNTIME_ROOT,
	OPT_KUBE_API,
	OPT_KUBE_TOKEN,
	OPT_KUBE_CA,
	OPT_NODE_NAME,
	OPT_LOGS,
	OPT_LOGS_RATE,
};

static const struct option long_options[] = {
    {"print", optional_argument, NULL, OPT_PRINT},
    {"no-print", no_argument, NULL, OPT_NO_PRINT},
    {"pid", required_argument, NULL, OPT_PID},
    {"port", required_argument, NULL, OPT_PORT},
    {"exe", required_argument, NULL, OPT_EXE},
    {"capture-size", required_argument, NULL, OPT_CAPTURE},
    {"request-capture-size", required_argument, NULL, OPT_REQUEST_CAPTURE},
    {"ringbuf-size", required_argument, NULL, OPT_RINGBUF},
    {"shared-ringbuf", no_argument, NULL, OPT_SHARED_RINGBUF},
    {"syscall-data", no_argument, NULL, OPT_SYSCALL_DATA},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
    {"prometheus", required_argument, NULL, OPT_PROMETHEUS},
    {"no-prometheus", no_argument, NULL, OPT_NO_PROMETHEUS},
    {"otlp-endpoint", required_argument, NULL, OPT_OTLP},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"version", no_argument, NULL, OPT_VERSION},
    {"route", required_argument, NULL, OPT_ROUTE},
    {"no-tls", no_argument, NULL, OPT_NO_TLS},
    {"no-node-probes", no_argument, NULL, OPT_NO_NODE_PROBES},
    {"no-python-probes", no_argument, NULL, OPT_NO_PYTHON_PROBES},
    {"repeat", required_argument, NULL, OPT_REPEAT},
    {"no-container-metadata", no_argument, NULL, OPT_NO_CONTAINERS},
    {"host-root", required_argument, NULL, OPT_HOST_ROOT},
    {"runtime-root", required_argument, NULL, OPT_RUNTIME_ROOT},
    {"kube-api", required_argument, NULL, OPT_KUBE_API},
    {"kube-token", required_argument, NULL, OPT_KUBE_TOKEN},
    {"kube-ca", required_argument, NULL, OPT_KUBE_CA},
    {"node-name", required_argument, NULL, OPT_NODE_NAME},
    {"logs", no_argument, NULL, OPT_LOGS},
    {"logs-rate", required_argument, NULL, OPT_LOGS_RATE},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

void config_usage(FILE *out)
{
	fprintf(
	    out,
	    "Usage: periscope [OPTIONS]\n"
	    "       periscope record FILE [OPTIONS]   trace, and save the raw events to FILE\n"
	    "       periscope replay FILE [--repeat N] [OPTIONS]\n"
	    "                                         push saved events through the pipeline\n"
	    "                                         as fast as possible and report the rate\n"
	    "Traces the HTTP traffic of every process on this host with eBPF and exports\n"
	    "OpenTelemetry spans (OTLP/HTTP) and RED metrics (Prometheus). Runs as root.\n"
	    "\n"
	    "Output:\n"
	    "  --print[=text|json]      print spans to stdout (default when no OTLP endpoint)\n"
	    "  --no-print               do not print spans\n"
	    "  --otlp-endpoint URL      OTLP/HTTP base URL (default: "
	    "$OTEL_EXPORTER_OTLP_ENDPOINT)\n"
	    "  --prometheus ADDR:PORT   serve /metrics (default " DEFAULT_PROMETHEUS
	    " when no OTLP endpoint)\n"
	    "  --no-prometheus          do not serve /metrics\n"
	    "What to trace (each repeatable; default: every process):\n"
	    "  --pid PID                this process and its children\n"
	    "  --port PORT              connections with this local or remote port\n"
	    "  --exe NAME               processes whose executable is named NAME\n"
	    "Logs (off by default; lines may hold whatever a service prints):\n"
	    "  --logs                   export what traced processes write to stdout/stderr as\n"
	    "                           OTLP logs with the trace id of the request being served\n"
	    "                           (also $PERISCOPE_LOGS=1)\n"
	    "  --logs-rate N            lines per second per process, the rest counted and\n"
	    "                           dropped (default %d; 0: no limit)\n"
	    "Metrics:\n"
	    "  --route PATTERN          a route template, e.g. /users/{id}/orders or /static/*;\n"
	    "                           wins over the built-in id heuristic (repeatable; also\n"
	    "                           $PERISCOPE_ROUTES, comma-separated)\n"
	    "Containers and Kubernetes:\n"
	    "  --host-root DIR          where the host's / is mounted (a DaemonSet: /host); the\n"
	    "                           runtime state roots below are read under it\n"
	    "  --runtime-root KIND:DIR  a runtime state root besides the defaults (repeatable);\n"
	    "                           KIND containerd (DIR/<ns>/<id>/config.json), crio\n"
	    "                           (DIR/<id>/userdata/config.json) or direct (DIR/<id>/...)\n"
	    "  --kube-api URL|off       the Kubernetes API for pod labels and owners (default:\n"
	    "                           in a cluster, $KUBERNETES_SERVICE_HOST:PORT with the\n"
	    "                           service account's token and CA; else off)\n"
	    "  --kube-token FILE, --kube-ca FILE   bearer token and CA for --kube-api\n"
	    "  --node-name NAME         this node (default $NODE_NAME, else the host name)\n"
	    "  --no-container-metadata  no container.id / k8s.* attributes\n"
	    "Tuning:\n"
	    "  --capture-size BYTES     payload captured per syscall (default %d, max %d)\n"
	    "  --request-capture-size BYTES\n"
	    "                           payload captured per read of a server connection, so\n"
	    "                           big request heads keep their traceparent (default %d)\n"
	    "  --ringbuf-size BYTES     kernel→agent event buffers, all CPUs together (default\n"
	    "                           8388608; per CPU at least 256 KiB, or 64 KiB when set)\n"
	    "  --shared-ringbuf         one BPF ring buffer for all CPUs instead of a lock-free\n"
	    "                           ring per CPU (slower: a lock per event)\n"
	    "  --syscall-data           capture socket data at the data syscalls' exits even\n"
	    "                           where the kernel has socket tracepoints (Linux >= 6.3)\n"
	    "  --max-connections N      connections tracked at once (default 262144)\n"
	    "  --no-tls                 do not attach uprobes to TLS libraries (libssl, node, Go "
	    "crypto/tls)\n"
	    "  --no-node-probes         do not attach the Node.js event-loop uprobes (Node's "
	    "calls\n"
	    "                           are then linked by event-loop turns only)\n"
	    "  --no-python-probes       do not attach the Python asyncio uprobes (asyncio's "
	    "calls\n"
	    "                           are then linked by event-loop turns only)\n"
	    "  --log-level LEVEL        debug, info, warn or error (default info)\n"
	    "  -h, --help, --version\n"
	    "\n"
	    "Environment: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,\n"
	    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS,\n"
	    "OTEL_EXPORTER_OTLP_COMPRESSION, OTEL_BSP_SCHEDULE_DELAY, OTEL_RESOURCE_ATTRIBUTES,\n"
	    "OTEL_METRIC_EXPORT_INTERVAL, OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE, "
	    "NODE_NAME,\n"
	    "KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT.\n",
	    CONFIG_LOGS_RATE_DEFAULT, PSCOPE_CAPTURE_DEFAULT, PSCOPE_CAPTURE_MAX,
	    PSCOPE_REQUEST_CAPTURE_DEFAULT);
}

static int bad(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int config_parse(struct config *c, int argc, char **argv, char *err, size_t err_len)
{
	const char *env;
	uint64_t v;
	int opt;

	memset(c, 0, sizeof(*c));
	c->capture_size = PSCOPE_CAPTURE_DEFAULT;
	c->request_capture_size = PSCOPE_REQUEST_CAPTURE_DEFAULT;
	c->ringbuf_bytes = 8 << 20;
	c->max_connections = 262144;
	c->log_level = "info";
	c->replay_repeat = 1;
	c->logs_rate = CONFIG_LOGS_RATE_DEFAULT;
	env = getenv("PERISCOPE_LOGS");
	c->logs = env && (!strcmp(env, "1") || !strcasecmp(env, "true"));
	optind = 1;
	if (argc >= 2 && (!strcmp(argv[1], "record") || !strcmp(argv[1], "replay"))) {
		c->mode = argv[1][2] == 'c' ? CONFIG_MODE_RECORD : CONFIG_MODE_REPLAY;
		if (argc < 3 || argv[2][0] == '-')
			return bad(err, err_len, "'%s' needs a FILE", argv[1]);
		c->event_file = argv[2];
		optind = 3;
	}
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1) {
		switch (opt) {
		case OPT_PRINT:
			c->print_set = true;
			if (!optarg || !strcmp(optarg, "text"))
				c->print = CONFIG_PRINT_TEXT;
			else if (!strcmp(optarg, "json"))
				c->print = CONFIG_PRINT_JSON;
			else
				return bad(err, err_len, "--print takes text or json, not '%s'",
				           optarg);
			break;
		case OPT_NO_PRINT:
			c->print_set = true;
			c->print = CONFIG_PRINT_OFF;
			break;
		case OPT_PID:
			if (c->n_pids >= CONFIG_MAX_FILTERS || parse_u64(optarg, 1, 4194304, &v))
				return bad(err, err_len, "--pid takes a process id, not '%s'",
				           optarg);
			c->pids[c->n_pids++] = (uint32_t)v;
			break;
		case OPT_PORT:
			if (c->n_ports >= CONFIG_MAX_FILTERS || parse_u64(optarg, 1, 65535, &v))
				return bad(err, err_len, "--port takes a port 1-65535, not '%s'",
				           optarg);
			c->ports[c->n_ports++] = (uint16_t)v;
			break;
		case OPT_EXE:
			if (c->n_exes >= CONFIG_MAX_FILTERS || !optarg[0])
				return bad(err, err_len, "--exe takes an executable name");
			c->exes[c->n_exes++] = optarg;
			break;
		case OPT_CAPTURE:
			if (parse_u64(optarg, 64, PSCOPE_CAPTURE_MAX, &v))
				return bad(err, err_len,
				           "--capture-size takes 64 to %d bytes, not '%s'",
				           PSCOPE_CAPTURE_MAX, optarg);
			c->capture_size = (uint32_t)v;
			break;
		case OPT_REQUEST_CAPTURE:
			if (parse_u64(optarg, 64, PSCOPE_CAPTURE_MAX, &v))
				return bad(err, err_len,
				           "--request-capture-size takes 64 to %d bytes, not '%s'",
				           PSCOPE_CAPTURE_MAX, optarg);
			c->request_capture_size = (uint32_t)v;
			break;
		case OPT_RINGBUF:
			if (parse_u64(optarg, 1 << 16, 1u << 30, &v) || !is_pow2(v))
				return bad(
				    err, err_len,
				    "--ringbuf-size takes a power of two from 65536 to 1073741824, "
				    "not '%s'",
				    optarg);
			c->ringbuf_bytes = (uint32_t)v;
			c->ringbuf_set = true;
			break;
		case OPT_SHARED_RINGBUF:
			c->shared_ringbuf = true;
			break;
		case OPT_SYSCALL_DATA:
			c->syscall_data = true;
			break;
		case OPT_MAX_CONNS:
			if (parse_u64(optarg, 16, 1u << 24, &v))
				return bad(err, err_len, "--max-connections takes 16 to 16777216");
			c->max_connections = (uint32_t)v;
			break;
		case OPT_PROMETHEUS:
			if (!strchr(optarg, ':'))
				return bad(err, err_len, "--prometheus takes ADDR:PORT, not '%s'",
				           optarg);
			c->prometheus_set = true;
			c->prometheus_addr = optarg;
			break;
		case OPT_NO_PROMETHEUS:
			c->prometheus_set = true;
			c->prometheus_addr = NULL;
			break;
		case OPT_OTLP:
			c->otlp_endpoint = optarg;
			c->otlp_endpoint_flag = true;
			break;
		case OPT_LOG_LEVEL:
			if (strcmp(optarg, "debug") && strcmp(optarg, "info") &&
			    strcmp(optarg, "warn") && strcmp(optarg, "error"))
				return bad(err, err_len,
				           "--log-level takes debug, info, warn or error, not '%s'",
				           optarg);
			c->log_level = optarg;
			break;
		case OPT_ROUTE:
			if (c->n_routes >= CONFIG_MAX_FILTERS || optarg[0] != '/')
				return bad(err, err_len,
				           "--route takes a pattern starting with '/'");
			c->routes[c->n_routes++] = optarg;
			break;
		case OPT_NO_TLS:
			c->no_tls = true;
			break;
		case OPT_NO_NODE_PROBES:
			c->no_node_probes = true;
			break;
		case OPT_NO_PYTHON_PROBES:
			c->no_python_probes = true;
			break;
		case OPT_REPEAT:
			if (c->mode != CONFIG_MODE_REPLAY || parse_u64(optarg, 1, 1000000, &v))
				return bad(err, err_len,
				           "--repeat takes a count and needs 'replay'");
			c->replay_repeat = (uint32_t)v;
			break;
		case OPT_NO_CONTAINERS:
			c->no_containers = true;
			break;
		case OPT_HOST_ROOT:
			if (optarg[0] != '/')
				return bad(err, err_len, "--host-root takes an absolute path");
			c->host_root = optarg;
			break;
		case OPT_RUNTIME_ROOT: {
			const char *colon = strchr(optarg, ':');

			if (c->n_runtime_roots >= CONFIG_MAX_FILTERS || !colon || colon[1] != '/' ||
			    (strncmp(optarg, "containerd:", 11) && strncmp(optarg, "crio:", 5) &&
			     strncmp(optarg, "direct:", 7)))
				return bad(err, err_len,
				           "--runtime-root takes containerd:DIR, crio:DIR or "
				           "direct:DIR, not '%s'",
				           optarg);
			c->runtime_roots[c->n_runtime_roots++] = optarg;
			break;
		}
		case OPT_KUBE_API:
			if (!strcmp(optarg, "off")) {
				c->kube_api_off = true;
				c->kube_api = NULL;
			} else if (strncmp(optarg, "http://", 7) &&
			           strncmp(optarg, "https://", 8)) {
				return bad(err, err_len,
				           "--kube-api takes an http:// or https:// URL or off");
			} else {
				c->kube_api_off = false;
				c->kube_api = optarg;
			}
			break;
		case OPT_KUBE_TOKEN:
			c->kube_token = optarg;
			break;
		case OPT_KUBE_CA:
			c->kube_ca = optarg;
			break;
		case OPT_NODE_NAME:
			if (!optarg[0])
				return bad(err, err_len, "--node-name takes a name");
			c->node_name = optarg;
			break;
		case OPT_LOGS:
			c->logs = true;
			break;
		case OPT_LOGS_RATE:
			if (parse_u64(optarg, 0, 10000000, &v))
				return bad(err, err_len, "--logs-rate takes a count per second");
			c->logs_rate = (uint32_t)v;
			break;
		case OPT_VERSION:
			c->mode = CONFIG_MODE_VERSION;
			return 0;
		case 'h':
			c->mode = CONFIG_MODE_HELP;
			return 0;
		case ':':
			return bad(err, err_len, "option '%s' needs a value", argv[optind - 1]);
		default:
			return bad(err, err_len, "unknown option '%s' (see --help)",
			           argv[optind - 1]);
		}
	}
	if (optind < argc)
		return bad(err, err_len, "unexpected argument '%s' (see --help)", argv[optind]);

	c->routes_env = getenv("PERISCOPE_ROUTES");
	if (!c->node_name && (env = getenv("NODE_NAME")) && env[0])
		c->node_name = env;
	if (!c->otlp_endpoint) {
		env = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
		if (!env || !env[0])
			env = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
		if (env && env[0])
			c->otlp_endpoint = env;
	}
	if (c->mode == CONFIG_MODE_REPLAY) {
		/* replay measures the pipeline: nothing printed or served unless asked */
		if (!c->print_set)
			c->print = CONFIG_PRINT_OFF;
		if (!c->prometheus_set)
			c->prometheus_addr = NULL;
		return 0;
	}
	/* The embedded default: no OTLP endpoint → print spans and serve /metrics. */
	if (!c->print_set && !c->otlp_endpoint)
		c->print = CONFIG_PRINT_TEXT;
	if (!c->prometheus_set && !c->otlp_endpoint)
		c->prometheus_addr = DEFAULT_PROMETHEUS;
	return 0;
}
