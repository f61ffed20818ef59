/* fuzz_go_binary.c — libFuzzer harness for go_binary and x86_ret: the input
 * is an ELF image, opened in memory. Everything the reader reports is
 * checked against the image (names NUL-terminated, code inside it, file
 * offsets below its size) and each function's bytes go through the RET
 * finder. Seeds: tests/fuzz/corpus/go_binary/ (small synthetic Go images of
 * every pclntab layout, written by test_go_binary with
 * GO_BINARY_WRITE_SEEDS=dir). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/go_binary.h"
#include "kernel/x86_ret.h"

#define MAX_FUNCS 512       /* functions looked at per input */
#define MAX_CODE  (1 << 16) /* bytes decoded per function */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct go_binary *gb = NULL;
	struct x86_rets *xr = NULL;
	struct go_pclntab_info info;
	uint32_t rets[16];
	size_t n;

	if (go_binary__open_mem(data, size, &gb) != 0)
		return 0;
	xr = x86_rets__new();
	if (!xr)
		abort();
	if (strlen(go_binary_version(gb)) > GO_BINARY_VERSION_MAX)
		abort();
	if (go_binary_pclntab_info(gb, &info) == 0 && info.nfunc != go_binary_func_count(gb))
		abort();
	if (go_binary_funcs_source(gb) == GO_FUNCS_NONE && go_binary_func_count(gb) != 0)
		abort();
	n = go_binary_func_count(gb);
	for (size_t i = 0; i < n && i < MAX_FUNCS; i++) {
		struct go_func f;
		uint64_t start, fsize, off;
		const uint8_t *code;
		size_t bad;
		int r;

		if (go_binary_func_at(gb, i, &f) != 0)
			continue;
		if (!f.name || strlen(f.name) == 0)
			abort();
		if (i < 32) { /* each look-up walks the table: only a few */
			r = go_binary_find_func(gb, f.name, &start, &fsize);
			if (r != 0 || start > f.start) /* a duplicate name may come first */
				abort();
		}
		if (go_binary_vaddr_to_offset(gb, f.start, &off) == 0 && off >= size)
			abort();
		if (!f.size || f.size > MAX_CODE)
			continue;
		code = go_binary_bytes(gb, f.start, f.size);
		if (!code)
			continue;
		r = x86_rets_find(xr, code, f.size, f.start, rets, 16, &bad);
		if (r == -EILSEQ && bad >= f.size)
			abort();
		for (int k = 0; k < r && k < 16; k++) {
			if (rets[k] >= f.size)
				abort();
		}
	}
	(void)go_binary_find_func(gb, "crypto/tls.(*Conn).Write", NULL, NULL);
	(void)go_binary_symtab_find(gb, "crypto/tls.(*Conn).Read", NULL, NULL);
	x86_rets__free(xr);
	go_binary__free(gb);
	return 0;
}
