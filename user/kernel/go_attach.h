/* go_attach.h — the uprobe plan of one Go executable, made from its ELF file
 * alone (go_binary: no symbols or DWARF needed) before anything is attached:
 *   - net/http's client: (*persistConn).roundTrip and persistConnWriter.Write
 *     entries (go.bpf.h: writes named after the calling goroutine);
 *   - crypto/tls: (*Conn).Write and (*Conn).Read, an entry probe and one
 *     probe at EVERY RET instruction of each (x86_ret decodes the function;
 *     never uretprobes, which break Go's movable stacks), with the
 *     tls.Conn → fd offsets of the binary's Go version packed in the probes'
 *     cookie (PSCOPE_GO_TLS_COOKIE).
 * A part that cannot be planned exactly is left out, never guessed: an
 * unknown Go version (go_offsets), a function that is missing, a RET
 * decoding that fails, more RETs than GO_TLS_MAX_RETS, or a machine other
 * than x86-64 (arm64 Go binaries are recognised but not probed). The reason
 * is kept for one log line. */
#ifndef PERISCOPE_KERNEL_GO_ATTACH_H
#define PERISCOPE_KERNEL_GO_ATTACH_H

#include <stdbool.h>
#include <stdint.h>

#include "kernel/go_binary.h"
#include "kernel/x86_ret.h"

/* RET probes per function at most (Go 1.19's Write has 8, Read 7). */
#define GO_TLS_MAX_RETS 32

/* One probed function: file offsets of its entry and of each RET. */
struct go_func_plan {
	uint64_t vaddr, size;               /* as linked (for logs and tests) */
	uint64_t entry_off;                 /* file offset of the entry probe: the stack check's JBE
	                                       in Go's usual prologue, else the first instruction */
	uint32_t n_rets;                    /* RETs, all of them (1 .. GO_TLS_MAX_RETS) */
	uint64_t ret_offs[GO_TLS_MAX_RETS]; /* file offsets */
};

struct go_attach_plan {
	char version[GO_BINARY_VERSION_MAX];               /* "go1.19.8", "" when unknown */
	bool http;                                         /* net/http client probes planned */
	uint64_t http_round_trip_off, http_conn_write_off; /* entry probes, as entry_off */
	bool tls;                                          /* crypto/tls probes planned */
	struct go_func_plan tls_write, tls_read;
	uint64_t tls_cookie; /* PSCOPE_GO_TLS_COOKIE of the offsets (direction 0) */
	/* Why crypto/tls (or the whole binary) is not probed although it uses
	 * it; "" when everything present is planned, or the program has no
	 * crypto/tls at all. */
	char tls_skipped[160];
};

/* Plans the probes of the Go executable gb. want_tls: plan crypto/tls too
 * (false with --no-tls). 0 with *p filled (possibly with nothing planned:
 * see p->http, p->tls, p->tls_skipped); -ENOENT when gb is not Go; -EINVAL
 * on NULL arguments. xr may be NULL when want_tls is false. */
int go_attach_plan_make(const struct go_binary *gb, struct x86_rets *xr, bool want_tls,
                        struct go_attach_plan *p);

#endif
