/* fuzz_sql_obfuscate.c — libFuzzer harness for SQL obfuscation and
 * operation/table naming: any bytes as a statement, both dialects, and small
 * output buffers, with checks on every result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/sql_obfuscate.h"

static void check_out(const char *out, size_t n, size_t cap)
{
	if (n >= cap || strlen(out) != n)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[256], tiny[5], op[32], coll[128];
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (int d = 0; d <= 1; d++) {
		size_t n = sql_obfuscate_dialect((const char *)data, size, out, sizeof(out), d);
		check_out(out, n, sizeof(out));
		n = sql_obfuscate_dialect((const char *)data, size, tiny, sizeof(tiny), d);
		check_out(tiny, n, sizeof(tiny));
	}
	if (sql_obfuscate((const char *)data, size, out, 0) != 0)
		abort();
	sql_operation_and_collection(text, op, sizeof(op), coll, sizeof(coll));
	if (strlen(op) >= sizeof(op) || strlen(coll) >= sizeof(coll))
		abort();
	for (const char *p = op; *p; p++)
		if (*p >= 'a' && *p <= 'z')
			abort();
	free(text);
	return 0;
}
