/* fuzz_container_id.c — libFuzzer harness for the cgroup path table: any
 * bytes as a /proc/PID/cgroup content and as a single path, with checks on
 * every field of the result. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/container_id.h"

static void check_identity(int ret, const struct container_identity *id)
{
	if (ret < 0) {
		if (ret != -E2BIG || id->id[0] || id->unit[0])
			abort();
		return;
	}
	if (ret > 1)
		abort();
	size_t n = strnlen(id->id, sizeof(id->id));
	if (n == sizeof(id->id) || (n != 0 && n != CONTAINER_ID_LEN) || (ret == 1) != (n != 0))
		abort();
	for (size_t i = 0; i < n; i++)
		if (!((id->id[i] >= '0' && id->id[i] <= '9') ||
		      (id->id[i] >= 'a' && id->id[i] <= 'f')))
			abort();
	n = strnlen(id->pod_uid, sizeof(id->pod_uid));
	if (n != 0 && n != 32 && n != 36)
		abort();
	if (strnlen(id->unit, sizeof(id->unit)) == sizeof(id->unit) ||
	    strnlen(id->ctr_namespace, sizeof(id->ctr_namespace)) == sizeof(id->ctr_namespace))
		abort();
	if (id->monitor && (id->id[0] || id->pod_uid[0]))
		abort();
	if (id->unit[0] && (id->id[0] || id->pod_uid[0]))
		abort();
	if (ret == 1 && id->runtime == CONTAINER_RUNTIME_NONE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct container_identity id;
	int ret = container_id_parse_proc((const char *)data, size, &id);
	check_identity(ret, &id);
	ret = container_id_parse_path((const char *)data, size, &id);
	check_identity(ret, &id);
	return 0;
}
