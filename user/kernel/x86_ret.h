/* x86_ret.h — the RET instructions of an x86-64 function, found by decoding
 * its bytes from the start with capstone (never by looking for 0xC3 bytes,
 * which also occur inside other instructions' operands). Uprobes placed at
 * these offsets stand in for uretprobes, which break Go programs (Go moves
 * goroutine stacks, and a uretprobe rewrites the return address on the
 * stack). Go functions also leave through tail paths without a RET (the
 * jump to runtime.morestack_noctxt, tail calls): only RETs are reported.
 * Decoding is linear from the function's first byte to its end; on x86-64
 * Go's compiler puts no data in .text (jump tables live in .rodata) and pads
 * between functions with INT3, so a linear decode is exact for Go code. An
 * instruction that does not decode, or that runs past the end, stops the
 * decode and is reported: the caller must then place no return probes. */
#ifndef PERISCOPE_KERNEL_X86_RET_H
#define PERISCOPE_KERNEL_X86_RET_H

#include <stddef.h>
#include <stdint.h>

struct x86_rets;

/* A 64-bit x86 decoder; NULL when libcapstone.so.4 cannot be loaded (dlopen)
 * or opened, or on ENOMEM. */
struct x86_rets *x86_rets__new(void);
void x86_rets__free(struct x86_rets *r); /* accepts NULL */

/* Decodes code[0 .. size) (the function's bytes, at virtual address addr)
 * and stores the offset from code[0] of every near RET (C3, C2 iw, with any
 * prefix such as "repz ret" or "bnd ret") into offs, up to max of them.
 * Returns the number of RETs found (possibly more than max: only the first
 * max are stored), or:
 *   -EILSEQ  an instruction at *bad_off (when bad_off is not NULL) could not
 *            be decoded, or did not end by size;
 *   -EINVAL  r or code NULL, or size 0;
 *   -ENOMEM. */
int x86_rets_find(struct x86_rets *r, const uint8_t *code, size_t size, uint64_t addr,
                  uint32_t *offs, size_t max, size_t *bad_off);

/* Decodes code[0 .. size) as x86_ret_find does and stores the offset of every
 * `call rel32` or `jmp rel32` (E8, E9) whose destination is target into offs,
 * up to max. Returns how many there are, or the errors of x86_rets_find.
 * (Uprobes emulate these two instructions, without the single step that
 * costs most of a probe hit on some VMs.) */
int x86_calls_find(struct x86_rets *r, const uint8_t *code, size_t size, uint64_t addr,
                   uint64_t target, uint32_t *offs, size_t max, size_t *bad_off);
/* The same, leaving out the calls before which an instruction of the same
 * straight line put an immediate in rdx (the third argument) that differs from
 * rdx under rdx_mask. A call whose rdx is not known that way is kept. */
int x86_calls_find_rdx(struct x86_rets *r, const uint8_t *code, size_t size, uint64_t addr,
                       uint64_t target, uint64_t rdx, uint64_t rdx_mask, uint32_t *offs, size_t max,
                       size_t *bad_off);

#endif
