/* syscall_loop.c — the bystander of `make bench`: a process the agent does not trace that does
 * nothing but cheap syscalls, to time what the agent's syscall tracepoints cost everyone else.
 *
 *   syscall_loop ITERATIONS
 *
 * Runs ITERATIONS of each kind in turn and prints one line per kind, "KIND NS_PER_CALL":
 *   getpid   syscall(SYS_getpid): no periscope program, only the tracepoint slow path
 *   devnull  write of 1 byte to /dev/null: a hooked exit (write) that is not a socket
 *   pipe     write + read of 1 byte through a pipe: two hooked exits (per call pair / 2)
 *   epoll    epoll_wait on an empty epoll set, timeout 0: the event-loop tick exit
 *   close    dup + close of a file's fd: the close entry, which looks for a socket (per call / 2)
 * Times are the thread's own CPU time (CLOCK_THREAD_CPUTIME_ID): on a shared machine, the time
 * other processes run on this CPU is not counted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	int devnull = open("/dev/null", O_WRONLY);
	int ep = epoll_create1(0);
	int p[2];
	struct epoll_event ev;
	char c = 'x';
	double t0;

	if (n <= 0 || devnull < 0 || ep < 0 || pipe(p) < 0) {
		fprintf(stderr, "syscall_loop: setup failed: %s\n", strerror(errno));
		return 1;
	}

	t0 = now_ns();
	for (long i = 0; i < n; i++)
		syscall(SYS_getpid);
	printf("getpid %.1f\n", (now_ns() - t0) / n);

	t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (write(devnull, &c, 1) != 1)
			return 1;
	printf("devnull %.1f\n", (now_ns() - t0) / n);

	t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1)
			return 1;
	printf("pipe %.1f\n", (now_ns() - t0) / n / 2);

	t0 = now_ns();
	for (long i = 0; i < n; i++)
		if (epoll_wait(ep, &ev, 1, 0) < 0)
			return 1;
	printf("epoll %.1f\n", (now_ns() - t0) / n);

	t0 = now_ns();
	for (long i = 0; i < n; i++) {
		int fd = dup(devnull);

		if (fd < 0 || close(fd) < 0)
			return 1;
	}
	printf("close %.1f\n", (now_ns() - t0) / n / 2);
	return 0;
}
