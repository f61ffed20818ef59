/* empty_hook.c — loads bench/bystander/empty_hook.bpf.o, attaches one of its sets of empty
 * programs, prints "ready", and holds them until stdin closes or a signal arrives.
 *
 *   empty_hook PATH/empty_hook.bpf.o [write|agent]
 *
 * write (the default): one empty program on sys_exit_write (the bystander floor).
 * agent: one on each hook the agent runs on per traced request (the wrk → nginx floor). */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINKS 8

/* libbpf finds tracepoint ids under tracefs; a fresh machine may not have it mounted (the
 * agent mounts it itself, and so must this floor, which may run first). */
static void ensure_tracefs(void)
{
	struct stat sb;

	if (stat("/sys/kernel/tracing/events", &sb) == 0 ||
	    stat("/sys/kernel/debug/tracing/events", &sb) == 0)
		return;
	if (mount("nodev", "/sys/kernel/tracing", "tracefs", 0, NULL) < 0)
		fprintf(stderr, "empty_hook: cannot mount tracefs: %s\n", strerror(errno));
}

int main(int argc, char **argv)
{
	struct bpf_link *links[MAX_LINKS];
	struct bpf_object *obj = NULL;
	struct bpf_program *prog;
	size_t n = 0;
	bool agent;
	int rc = 1;
	char c;

	if (argc < 2 || argc > 3 ||
	    (argc == 3 && strcmp(argv[2], "write") && strcmp(argv[2], "agent"))) {
		fprintf(stderr, "usage: empty_hook EMPTY_HOOK.bpf.o [write|agent]\n");
		return 2;
	}
	agent = argc == 3 && !strcmp(argv[2], "agent");
	ensure_tracefs();
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		fprintf(stderr, "empty_hook: cannot open %s (%d)\n", argv[1], -errno);
		return 1;
	}
	bpf_object__for_each_program(prog, obj)
	{
		bool write = !strcmp(bpf_program__name(prog), "empty_exit_write");

		bpf_program__set_autoload(prog, agent ? !write : write);
	}
	if (bpf_object__load(obj)) {
		fprintf(stderr, "empty_hook: cannot load %s (%d)\n", argv[1], -errno);
		goto cleanup;
	}
	bpf_object__for_each_program(prog, obj)
	{
		if (!bpf_program__autoload(prog))
			continue;
		if (n == MAX_LINKS || !(links[n] = bpf_program__attach(prog))) {
			fprintf(stderr, "empty_hook: cannot attach %s (%d)\n",
			        bpf_program__name(prog), -errno);
			goto cleanup;
		}
		n++;
	}
	printf("ready\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	rc = 0;
cleanup:
	while (n)
		bpf_link__destroy(links[--n]);
	bpf_object__close(obj);
	return rc;
}
