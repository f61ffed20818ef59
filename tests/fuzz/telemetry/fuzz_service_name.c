/* fuzz_service_name.c — libFuzzer harness for service names: any bytes as a
 * command line of each interpreter (first byte: which, and a cwd or none)
 * and as a systemd unit; the result is always a NUL-terminated string within
 * its buffer, empty exactly when false is returned. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/service_name.h"

static void check_name(bool ok, const char *out, size_t cap)
{
	size_t n = strnlen(out, cap);
	if (n == cap || ok != (n != 0))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const exes[] = {"python3.11", "node", "java", "pypy3", "nginx"};
	char out[64], unit[512];

	if (!size)
		return 0;
	const char *exe = exes[data[0] % 5];
	const char *cwd = (data[0] & 0x80) ? "/srv/app/src" : NULL;
	bool ok =
	    service_name_from_cmdline(exe, (const char *)data + 1, size - 1, cwd, out, sizeof(out));
	check_name(ok, out, sizeof(out));
	size_t n = size - 1 < sizeof(unit) - 1 ? size - 1 : sizeof(unit) - 1;
	memcpy(unit, data + 1, n);
	unit[n] = '\0';
	ok = service_name_from_unit(unit, out, sizeof(out));
	check_name(ok, out, sizeof(out));
	return 0;
}
