/* fuzz_log_json.c — libFuzzer harness for JSON log lines and severities:
 * parsing never reads outside the input, fields lie inside it, a valid
 * object stays valid when parsed again, unescaping stays in its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/log_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct log_json_field f[LOG_JSON_MAX_FIELDS];
	char out[64];
	size_t at, len;
	int n = log_json_parse(s, size, f, LOG_JSON_MAX_FIELDS);

	for (int i = 0; i < n && i < LOG_JSON_MAX_FIELDS; i++) {
		if (f[i].key < s || f[i].key + f[i].key_len > s + size || f[i].val < s ||
		    f[i].val + f[i].val_len > s + size)
			abort();
		if (log_json_unescape(f[i].val, f[i].val_len, out, sizeof(out)) >= sizeof(out))
			abort();
		(void)log_severity_from_level(f[i].val, f[i].val_len, f[i].type);
		if (f[i].type == LOG_JSON_NESTED && (f[i].val[0] != '{' && f[i].val[0] != '['))
			abort();
	}
	if (n >= 0 && log_json_parse(s, size, f, 1) != n)
		abort();
	if (log_json_unescape(s, size, out, sizeof(out)) >= sizeof(out))
		abort();
	if (log_severity_from_text(s, size, &at, &len) != LOG_SEV_UNSPECIFIED &&
	    (at + len > size || !len))
		abort();
	return 0;
}
