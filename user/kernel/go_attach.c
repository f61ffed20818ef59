/* go_attach.c — plans the uprobes of a Go executable (go_attach.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "periscope_abi.h"
#include "kernel/go_attach.h"
#include "kernel/go_offsets.h"

#define EM_X86_64_ 62

static void skipped(struct go_attach_plan *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->tls_skipped, sizeof(p->tls_skipped), fmt, ap);
	va_end(ap);
}

/* Where to put a function's entry probe: the offset of the JBE of Go's
 * stack check when the prologue is one of the compiler's two usual forms
 *     CMPQ 0x10(R14), SP                            ; JBE morestack
 *     LEAQ -n(SP), R12 ; CMPQ 0x10(R14), R12        ; JBE morestack
 * else 0 (the first instruction). The kernel emulates a probed conditional
 * jump; any other instruction it single-steps out of line, a second trap
 * that costs about four times the first on a paravirtualised guest (PVM:
 * ~36 against ~9 us per hit, bench/RESULTS.md section 5). Up to the JBE the
 * argument registers, SP and R14 (g) are those of the entry; R12 is
 * scratch. A stack growth re-runs the prologue from the first instruction,
 * so the JBE is hit again exactly when the first instruction would be. */
static uint64_t entry_probe_at(const uint8_t *code, uint64_t size)
{
	static const uint8_t cmp_sp[] = {0x49, 0x3b, 0x66, 0x10};  /* CMPQ 0x10(R14), SP */
	static const uint8_t cmp_r12[] = {0x4d, 0x3b, 0x66, 0x10}; /* CMPQ 0x10(R14), R12 */
	uint64_t at = 0;

	if (!code || size < 16)
		return 0;
	if (code[0] == 0x4c && code[1] == 0x8d && code[3] == 0x24 &&
	    (code[2] == 0x64 || code[2] == 0xa4)) { /* LEAQ disp8/disp32(SP), R12 */
		at = code[2] == 0x64 ? 5 : 8;
		if (memcmp(code + at, cmp_r12, sizeof(cmp_r12)) != 0)
			return 0;
	} else if (memcmp(code, cmp_sp, sizeof(cmp_sp)) != 0) {
		return 0;
	}
	at += 4;
	if (code[at] == 0x76 || (code[at] == 0x0f && code[at + 1] == 0x86))
		return at; /* JBE rel8 / JBE rel32 */
	return 0;
}

/* File offset of the entry probe of the function at vaddr (entry_probe_at). */
static int entry_offset(const struct go_binary *gb, uint64_t vaddr, uint64_t size, uint64_t *off)
{
	uint64_t skip = entry_probe_at(go_binary_bytes(gb, vaddr, size), size);

	return go_binary_vaddr_to_offset(gb, vaddr + skip, off);
}

/* The entry and every RET of name: 0, or a negative errno with the reason
 * in p->tls_skipped. */
static int plan_func(const struct go_binary *gb, struct x86_rets *xr, const char *name,
                     struct go_func_plan *f, struct go_attach_plan *p)
{
	uint32_t rets[GO_TLS_MAX_RETS];
	const uint8_t *code;
	size_t bad = 0;
	int n;

	memset(f, 0, sizeof(*f));
	if (go_binary_find_func(gb, name, &f->vaddr, &f->size) != 0) {
		skipped(p, "%s not found", name);
		return -ENOENT;
	}
	code = go_binary_bytes(gb, f->vaddr, f->size);
	if (!code || entry_offset(gb, f->vaddr, f->size, &f->entry_off) != 0) {
		skipped(p, "%s: code not in the file", name);
		return -ERANGE;
	}
	n = x86_rets_find(xr, code, f->size, f->vaddr, rets, GO_TLS_MAX_RETS, &bad);
	if (n == -EILSEQ) {
		skipped(p, "%s: instruction at +0x%zx not decoded", name, bad);
		return n;
	}
	if (n < 0) {
		skipped(p, "%s: decoding failed (%s)", name, strerror(-n));
		return n;
	}
	if (n == 0 || n > GO_TLS_MAX_RETS) {
		skipped(p, "%s: %d RET instructions (1 to %d expected)", name, n, GO_TLS_MAX_RETS);
		return -ERANGE;
	}
	for (int i = 0; i < n; i++) {
		if (go_binary_vaddr_to_offset(gb, f->vaddr + rets[i], &f->ret_offs[i]) != 0) {
			skipped(p, "%s: RET outside the file", name);
			return -ERANGE;
		}
	}
	f->n_rets = (uint32_t)n;
	return 0;
}

static void plan_tls(const struct go_binary *gb, struct x86_rets *xr, struct go_attach_plan *p)
{
	const struct go_tls_offsets *o;
	struct go_version v;

	if (go_binary_find_func(gb, GO_SYM_TLS_WRITE, NULL, NULL) != 0 &&
	    go_binary_find_func(gb, GO_SYM_TLS_READ, NULL, NULL) != 0)
		return; /* no crypto/tls in this program */
	if (go_version_parse(p->version, &v) != 0 || !(o = go_offsets_tls(&v))) {
		skipped(p, "Go version \"%s\" not in the offsets table", p->version);
		return;
	}
	if (o->conn_iface > 255 || o->iface_data > 255 || o->tcpconn_fd > 255 ||
	    o->netfd_pfd > 255 || o->pfd_sysfd > 255 || o->sysfd_size != 8) {
		skipped(p, "offsets of %s do not fit the probe's cookie", p->version);
		return;
	}
	if (!xr) {
		skipped(p, "no x86-64 decoder");
		return;
	}
	if (plan_func(gb, xr, GO_SYM_TLS_WRITE, &p->tls_write, p) != 0 ||
	    plan_func(gb, xr, GO_SYM_TLS_READ, &p->tls_read, p) != 0) {
		memset(&p->tls_write, 0, sizeof(p->tls_write));
		memset(&p->tls_read, 0, sizeof(p->tls_read));
		return;
	}
	p->tls_cookie = PSCOPE_GO_TLS_COOKIE(o->conn_iface, o->iface_data, o->tcpconn_fd,
	                                     o->netfd_pfd, o->pfd_sysfd, 0);
	p->tls = true;
}

int go_attach_plan_make(const struct go_binary *gb, struct x86_rets *xr, bool want_tls,
                        struct go_attach_plan *p)
{
	uint64_t rt, rt_size, wr, wr_size;

	if (!gb || !p)
		return -EINVAL;
	memset(p, 0, sizeof(*p));
	if (!go_binary_is_go(gb))
		return -ENOENT;
	snprintf(p->version, sizeof(p->version), "%s", go_binary_version(gb));
	if (go_binary_machine(gb) != EM_X86_64_) {
		if (want_tls && go_binary_find_func(gb, GO_SYM_TLS_WRITE, NULL, NULL) == 0)
			skipped(p, "not x86-64 (ELF machine %u): Go probes are x86-64 only",
			        go_binary_machine(gb));
		return 0;
	}
	if (go_binary_find_func(gb, GO_SYM_HTTP_PC_ROUNDTRIP, &rt, &rt_size) == 0 &&
	    go_binary_find_func(gb, "net/http.persistConnWriter.Write", &wr, &wr_size) == 0 &&
	    entry_offset(gb, rt, rt_size, &p->http_round_trip_off) == 0 &&
	    entry_offset(gb, wr, wr_size, &p->http_conn_write_off) == 0)
		p->http = true;
	if (want_tls)
		plan_tls(gb, xr, p);
	return 0;
}
