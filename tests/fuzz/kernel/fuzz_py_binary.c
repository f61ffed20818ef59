/* fuzz_py_binary.c — libFuzzer harness for py_binary: the input is an ELF
 * image (a stand-in for a CPython interpreter or its _asyncio module), given
 * to the readers as a file (a memfd, /proc/self/fd/N). Every offset they
 * report must lie inside the image. Seeds: tests/fuzz/corpus/py_binary/ (the
 * stripped fixtures test_py_binary builds from tests/unit/kernel/py_fixtures). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernel/py_binary.h"
#include "kernel/x86_ret.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct x86_rets *xr;
	static int fd = -1;
	struct py_asyncio_sites s;
	char path[32];
	uint64_t off;

	if (fd < 0)
		fd = memfd_create("fuzz_py_binary", MFD_CLOEXEC);
	if (!xr)
		xr = x86_rets__new();
	if (fd < 0 || !xr)
		abort();
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (py_binary_context_run(path, &off) == 0 && off >= size)
		abort();
	if (py_binary_asyncio_sites(path, xr, &s) == 0) {
		if (s.n_enter > PY_ASYNCIO_MAX_SITES || s.n_create > PY_ASYNCIO_MAX_SITES)
			abort();
		for (uint32_t i = 0; i < s.n_enter; i++)
			if (s.enter[i] >= size)
				abort();
		for (uint32_t i = 0; i < s.n_create; i++)
			if (s.create[i] >= size)
				abort();
	}
	return 0;
}
