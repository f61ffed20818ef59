/* main.c — periscope's entry point: parse the configuration, start the agent,
 * run it until SIGINT/SIGTERM. Exit codes: 0 done, 1 runtime error, 2 usage. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <linux/capability.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "util/caps.h"
#include "util/log.h"
#include "telemetry/proc_info.h"

static struct logger *libbpf_logger; /* libbpf's print hook has no context argument */

/* A verifier log runs to thousands of lines, its reason for refusing a
 * program at the end: a long message keeps its first line and its tail. */
#define LIBBPF_MSG_HEAD 200
#define LIBBPF_MSG_TAIL 3000

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *buf = NULL;
	int len;
	size_t n;

	if (level == LIBBPF_DEBUG || !libbpf_logger)
		return 0;
	len = vasprintf(&buf, fmt, ap);
	if (len < 0)
		return 0;
	/* uprobes refused for lack of CAP_SYS_ADMIN: tls_probes says it once */
	if (strstr(buf, "uprobe") && strstr(buf, "Permission denied") && !caps_have(CAP_SYS_ADMIN))
		level = LIBBPF_DEBUG;
	if (level == LIBBPF_DEBUG)
		goto cleanup;
	n = (size_t)len;
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n > LIBBPF_MSG_HEAD + LIBBPF_MSG_TAIL + 16) {
		size_t head = strcspn(buf, "\n");

		if (head > LIBBPF_MSG_HEAD)
			head = LIBBPF_MSG_HEAD;
		memcpy(buf + head, "\n[...]\n", 7);
		memmove(buf + head + 7, buf + n - LIBBPF_MSG_TAIL, LIBBPF_MSG_TAIL + 1);
	}
	log_msg(libbpf_logger, level == LIBBPF_WARN ? LOG_WARN : LOG_INFO, "libbpf", "detail",
	        LOG_STR(buf), NULL);
cleanup:
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct logger *lg = NULL;
	struct agent *agent = NULL;
	char err[256];
	int rc;

	/* A fixed threshold: glibc's adaptive one rises to the size of the
	 * largest mmapped block freed (libbpf's BTF, a Go binary's sections),
	 * after which the large, mostly untouched tables (connection buckets,
	 * the bundle cache) come from the heap, where calloc must zero them:
	 * all resident. Above 256 kB they stay fresh mmapped pages. */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	if (config_parse(&cfg, argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "periscope: %s\n", err);
		return 2;
	}
	if (cfg.mode == CONFIG_MODE_HELP) {
		config_usage(stdout);
		return 0;
	}
	if (cfg.mode == CONFIG_MODE_VERSION) {
		printf("periscope %s\n", PERISCOPE_VERSION);
		return 0;
	}
	lg = logger__new(stderr, log_level_parse(cfg.log_level));
	if (!lg) {
		fprintf(stderr, "periscope: out of memory\n");
		return 1;
	}
	libbpf_logger = lg;
	libbpf_set_print(libbpf_print);
	rc = agent__new(&cfg, lg, &agent);
	if (rc == 0)
		rc = cfg.mode == CONFIG_MODE_REPLAY ? agent_replay(agent) : agent_run(agent);
	agent__free(agent);
	libbpf_set_print(NULL);
	logger__free(lg);
	return rc == 0 ? 0 : 1;
}
