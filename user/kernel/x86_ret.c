/* x86_ret.c — RET offsets of an x86-64 function by decoding it with
 * capstone 4 (cs_disasm_iter, one reused instruction buffer, no detail
 * mode: the instruction id is enough). See x86_ret.h. libcapstone is
 * dlopen'ed by x86_rets__new (Debian's libcapstone4: libcapstone.so.4), so
 * its ~3 MB of relocated pages are paid only once a Go binary is probed. */
#include <capstone/capstone.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/x86_ret.h"

#define CAPSTONE_SONAME "libcapstone.so.4"

struct x86_rets {
	void *lib; /* the dlopen handle */
	cs_err (*open)(cs_arch arch, cs_mode mode, csh *handle);
	cs_err (*close)(csh *handle);
	cs_insn *(*malloc)(csh handle);
	void (*free)(cs_insn *insn, size_t count);
	bool (*disasm_iter)(csh handle, const uint8_t **code, size_t *size, uint64_t *address,
	                    cs_insn *insn);
	cs_err (*errno_of)(csh handle);
	csh cs;
	cs_insn *insn;
};

/* Looks up every capstone function used; false when one is missing. */
static bool resolve(struct x86_rets *r)
{
	*(void **)&r->open = dlsym(r->lib, "cs_open");
	*(void **)&r->close = dlsym(r->lib, "cs_close");
	*(void **)&r->malloc = dlsym(r->lib, "cs_malloc");
	*(void **)&r->free = dlsym(r->lib, "cs_free");
	*(void **)&r->disasm_iter = dlsym(r->lib, "cs_disasm_iter");
	*(void **)&r->errno_of = dlsym(r->lib, "cs_errno");
	return r->open && r->close && r->malloc && r->free && r->disasm_iter && r->errno_of;
}

struct x86_rets *x86_rets__new(void)
{
	struct x86_rets *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->lib = dlopen(CAPSTONE_SONAME, RTLD_NOW | RTLD_LOCAL);
	if (!r->lib)
		goto fail;
	if (!resolve(r) || r->open(CS_ARCH_X86, CS_MODE_64, &r->cs) != CS_ERR_OK)
		goto fail;
	r->insn = r->malloc(r->cs);
	if (!r->insn) {
		r->close(&r->cs);
		goto fail;
	}
	return r;
fail:
	if (r->lib)
		dlclose(r->lib);
	free(r);
	return NULL;
}

void x86_rets__free(struct x86_rets *r)
{
	if (!r)
		return;
	r->free(r->insn, 1);
	r->close(&r->cs);
	dlclose(r->lib);
	free(r);
}

/* What a decode looks for: near RETs, or rel32 calls and jumps to target. */
struct x86_want {
	bool rets;
	uint64_t target;
	bool rdx_filter; /* calls: skip one whose rdx is known to hold another value */
	uint64_t rdx;    /* the value wanted, compared under rdx_mask */
	uint64_t rdx_mask;
};

/* What the instructions decoded so far left in rdx, if an immediate. */
struct rdx_track {
	bool known;
	uint64_t val;
};

static void rdx_update(struct rdx_track *t, const cs_insn *insn)
{
	const char *ops = insn->op_str;

	if ((!strcmp(insn->mnemonic, "mov") || !strcmp(insn->mnemonic, "movabs")) &&
	    (!strncmp(ops, "rdx, ", 5) || !strncmp(ops, "edx, ", 5))) {
		const char *imm = ops + 5;
		char *end = NULL;
		uint64_t v = 0;

		if (*imm == '-')
			v = (uint64_t)strtoll(imm, &end, 0);
		else if (*imm >= '0' && *imm <= '9')
			v = strtoull(imm, &end, 0);
		t->known = end && end != imm && *end == '\0';
		/* mov edx, imm32 zero-extends into rdx */
		t->val = ops[0] == 'e' ? (uint64_t)(uint32_t)v : v;
		return;
	}
	/* a branch, or anything naming (r|e)dx, dx, dl or dh: no longer known */
	if (strstr(ops, "dx") || strstr(ops, "dl") || strstr(ops, "dh") ||
	    insn->id == X86_INS_CALL || insn->id == X86_INS_JMP || insn->id == X86_INS_RET ||
	    (insn->size >= 2 && (insn->bytes[0] & 0xf0) == 0x70) ||
	    (insn->size >= 2 && insn->bytes[0] == 0x0f && (insn->bytes[1] & 0xf0) == 0x80))
		t->known = false;
}

static bool x86_wanted(const cs_insn *insn, const struct x86_want *w)
{
	int32_t rel;

	if (w->rets)
		return insn->id == X86_INS_RET;
	if (insn->size != 5 || (insn->bytes[0] != 0xe8 && insn->bytes[0] != 0xe9))
		return false;
	rel = (int32_t)((uint32_t)insn->bytes[1] | (uint32_t)insn->bytes[2] << 8 |
	                (uint32_t)insn->bytes[3] << 16 | (uint32_t)insn->bytes[4] << 24);
	return insn->address + 5 + (int64_t)rel == w->target;
}

static int x86_find(struct x86_rets *r, const uint8_t *code, size_t size, uint64_t addr,
                    const struct x86_want *w, uint32_t *offs, size_t max, size_t *bad_off)
{
	const uint8_t *p = code;
	size_t left = size;
	uint64_t pc = addr;
	struct rdx_track rdx = {0};
	int n = 0, err;

	if (!r || !code || !size || (max && !offs) || size > UINT32_MAX) {
		err = -EINVAL;
		goto cleanup;
	}
	while (left) {
		size_t at = size - left;

		/* On success p, left and pc move past the instruction. */
		if (!r->disasm_iter(r->cs, &p, &left, &pc, r->insn)) {
			if (bad_off)
				*bad_off = at;
			err = r->errno_of(r->cs) == CS_ERR_MEM ? -ENOMEM : -EILSEQ;
			goto cleanup;
		}
		bool want = x86_wanted(r->insn, w) &&
		            !(w->rdx_filter && rdx.known && (rdx.val & w->rdx_mask) != w->rdx);

		rdx_update(&rdx, r->insn);
		if (!want)
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

int x86_rets_find(struct x86_rets *r, const uint8_t *code, size_t size, uint64_t addr,
                  uint32_t *offs, size_t max, size_t *bad_off)
{
	const struct x86_want w = {.rets = true};

	return x86_find(r, code, size, addr, &w, offs, max, bad_off);
}

int x86_calls_find(struct x86_rets *r, const uint8_t *code, size_t size, uint64_t addr,
                   uint64_t target, uint32_t *offs, size_t max, size_t *bad_off)
{
	const struct x86_want w = {.target = target};

	return x86_find(r, code, size, addr, &w, offs, max, bad_off);
}

int x86_calls_find_rdx(struct x86_rets *r, const uint8_t *code, size_t size, uint64_t addr,
                       uint64_t target, uint64_t rdx, uint64_t rdx_mask, uint32_t *offs, size_t max,
                       size_t *bad_off)
{
	const struct x86_want w = {
	    .target = target, .rdx_filter = true, .rdx = rdx & rdx_mask, .rdx_mask = rdx_mask};

	return x86_find(r, code, size, addr, &w, offs, max, bad_off);
}
