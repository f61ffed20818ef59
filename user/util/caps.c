/* caps.c — the effective capability set, read with capget(2). */
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util/caps.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

bool caps_have(int cap)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	if (cap < 0 || cap >= 64 || syscall(SYS_capget, &h, d) != 0)
		return true;
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

static const char *cap_name(int cap)
{
	switch (cap) {
	case CAP_SYS_ADMIN:
		return "CAP_SYS_ADMIN";
	case CAP_SYS_PTRACE:
		return "CAP_SYS_PTRACE";
	case CAP_DAC_READ_SEARCH:
		return "CAP_DAC_READ_SEARCH";
	case CAP_SYS_RESOURCE:
		return "CAP_SYS_RESOURCE";
	case CAP_PERFMON:
		return "CAP_PERFMON";
	case CAP_BPF:
		return "CAP_BPF";
	default:
		return "CAP_?";
	}
}

size_t caps_missing(const int *caps, size_t n, char *out, size_t cap)
{
	size_t missing = 0, used = 0;

	if (cap)
		out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int w;

		if (caps_have(caps[i]))
			continue;
		w = snprintf(out + used, cap > used ? cap - used : 0, "%s%s", missing ? ", " : "",
		             cap_name(caps[i]));
		if (w > 0 && used + (size_t)w < cap)
			used += (size_t)w;
		missing++;
	}
	return missing;
}
