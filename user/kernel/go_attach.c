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
	if (!code || go_binary_vaddr_to_offset(gb, f->vaddr, &f->entry_off) != 0) {
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
	uint64_t rt, wr;

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
	if (go_binary_find_func(gb, GO_SYM_HTTP_PC_ROUNDTRIP, &rt, NULL) == 0 &&
	    go_binary_find_func(gb, "net/http.persistConnWriter.Write", &wr, NULL) == 0 &&
	    go_binary_vaddr_to_offset(gb, rt, &p->http_round_trip_off) == 0 &&
	    go_binary_vaddr_to_offset(gb, wr, &p->http_conn_write_off) == 0)
		p->http = true;
	if (want_tls)
		plan_tls(gb, xr, p);
	return 0;
}
