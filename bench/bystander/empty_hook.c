/* empty_hook.c — loads and attaches bench/bystander/empty_hook.bpf.o (an empty program on
 * sys_exit_write), prints "ready", and holds it until stdin closes or a signal arrives.
 *
 *   empty_hook PATH/empty_hook.bpf.o */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_link *link;
	char c;

	if (argc != 2) {
		fprintf(stderr, "usage: empty_hook EMPTY_HOOK.bpf.o\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "empty_hook: cannot load %s (%d)\n", argv[1], -errno);
		return 1;
	}
	prog = bpf_object__find_program_by_name(obj, "empty_exit_write");
	link = prog ? bpf_program__attach(prog) : NULL;
	if (!link) {
		fprintf(stderr, "empty_hook: cannot attach (%d)\n", -errno);
		bpf_object__close(obj);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (read(0, &c, 1) > 0)
		;
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}
