/* x86_ret.c — RET offsets of an x86-64 function by decoding it with
 * capstone 4 (cs_disasm_iter, one reused instruction buffer, no detail
 * mode: the instruction id is enough). See x86_ret.h. */
#include <capstone/capstone.h>
#include <errno.h>
#include <stdlib.h>

#include "kernel/x86_ret.h"

struct x86_rets {
	csh cs;
	cs_insn *insn;
};

struct x86_rets *x86_rets__new(void)
{
	struct x86_rets *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &r->cs) != CS_ERR_OK) {
		free(r);
		return NULL;
	}
	r->insn = cs_malloc(r->cs);
	if (!r->insn) {
		cs_close(&r->cs);
		free(r);
		return NULL;
	}
	return r;
}

void x86_rets__free(struct x86_rets *r)
{
	if (!r)
		return;
	cs_free(r->insn, 1);
	cs_close(&r->cs);
	free(r);
}

int x86_rets_find(struct x86_rets *r, const uint8_t *code, size_t size, uint64_t addr,
                  uint32_t *offs, size_t max, size_t *bad_off)
{
	const uint8_t *p = code;
	size_t left = size;
	uint64_t pc = addr;
	int n = 0, err;

	if (!r || !code || !size || (max && !offs) || size > UINT32_MAX) {
		err = -EINVAL;
		goto cleanup;
	}
	while (left) {
		size_t at = size - left;

		/* On success p, left and pc move past the instruction. */
		if (!cs_disasm_iter(r->cs, &p, &left, &pc, r->insn)) {
			if (bad_off)
				*bad_off = at;
			err = cs_errno(r->cs) == CS_ERR_MEM ? -ENOMEM : -EILSEQ;
			goto cleanup;
		}
		if (r->insn->id != X86_INS_RET)
			continue;
		if ((size_t)n < max)
			offs[n] = (uint32_t)at;
		if (n == INT32_MAX) {
			err = -EINVAL;
			goto cleanup;
		}
		n++;
	}
	err = n;
cleanup:
	return err;
}
