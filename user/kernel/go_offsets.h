/* go_offsets.h — what a crypto/tls uprobe on a Go program needs to know
 * about Go's data layout and calling convention, per Go version (x86-64).
 *
 * From a *crypto/tls.Conn to the socket's file descriptor:
 *   c                     *tls.Conn (the method receiver)
 *   c + conn_iface        tls.Conn.conn, a net.Conn interface: two words,
 *                         itab pointer at +0, data pointer at +iface_data
 *   data word             *net.TCPConn when the conn is a plain TCP socket
 *                         (check the itab, or cross-check the fd against the
 *                         connection the agent tracks: any net.Conn can be
 *                         wrapped, e.g. by a proxy or a test pipe)
 *   *(tcp + tcpconn_fd)   TCPConn embeds conn{fd *netFD}: the *netFD
 *   fd + netfd_pfd        netFD.pfd, an internal/poll.FD held by value
 *   pfd + pfd_sysfd       poll.FD.Sysfd, a Go int (8 bytes on 64-bit)
 * Values come from Go's sources for 1.17 to 1.23 (crypto/tls/conn.go,
 * net/tcpsock.go, net/net.go, net/fd_posix.go, internal/poll/fd_unix.go,
 * internal/poll/fd_mutex.go), checked on the local 1.19 tree
 * (/usr/lib/go-1.19/src) and against the binaries in test_go_binary:
 *   tls.Conn    { conn net.Conn; isClient bool; ... }      conn +0, isClient +16
 *   net.TCPConn { conn }  net.conn { fd *netFD }            fd +0
 *   net.netFD   { pfd poll.FD; family int; ... }            pfd +0
 *   poll.FD     { fdmu fdMutex; Sysfd int; ... }            Sysfd +16
 *   fdMutex     { state uint64; rsema uint32; wsema uint32 } 16 bytes
 * None of these changed in that range; versions outside it are refused
 * (go_offsets_tls returns NULL) until checked.
 *
 * Register ABI (ABIInternal; amd64 since Go 1.17, arm64 since 1.18). On
 * x86-64 integer arguments go in RAX, RBX, RCX, RDI, RSI, R8, R9, R10, R11 in
 * order (a slice takes three: ptr, len, cap; an interface two: itab, data),
 * results likewise from RAX; R14 holds the current goroutine (g) at every
 * function entry and return; R15 is clobbered by dynamic linking. So for
 *   func (c *Conn) Write(b []byte) (int, error)
 *   func (c *Conn) Read(b []byte) (int, error)
 * at entry: RAX = c, RBX = b.ptr, RCX = b.len (RDI = b.cap); at each RET:
 * RAX = n, RBX = err itab (0: nil error), RCX = err data; R14 = g at both,
 * which ties a return to its entry (Go moves goroutines between threads,
 * and a goroutine runs one call at a time). Read's bytes are in b.ptr[0..n)
 * at the RET, so the entry must remember b.ptr per goroutine.
 * On arm64 (Go >= 1.18) the arguments are in R0..R15, g in R28, and RET is
 * a fixed 4-byte instruction; x86_ret.c decodes x86-64 only, so arm64 Go
 * binaries are not probed (go_binary still reads their pclntab).
 * The GO_X86_* values below are indices of 8-byte words in the kernel's
 * x86-64 struct pt_regs (and user_regs_struct, same order). */
#ifndef PERISCOPE_KERNEL_GO_OFFSETS_H
#define PERISCOPE_KERNEL_GO_OFFSETS_H

#include <stdint.h>

/* Function names (as in the pclntab) the Go TLS probes attach to. */
#define GO_SYM_TLS_WRITE         "crypto/tls.(*Conn).Write"
#define GO_SYM_TLS_READ          "crypto/tls.(*Conn).Read"
#define GO_SYM_HTTP_PC_ROUNDTRIP "net/http.(*persistConn).roundTrip"
#define GO_SYM_HTTP_T_ROUNDTRIP  "net/http.(*Transport).roundTrip"
/* Optional: only in programs that use gRPC. */
#define GO_SYM_GRPC_NEWSTREAM "google.golang.org/grpc/internal/transport.(*http2Client).NewStream"

/* First Go 1.x minor with the register ABI on amd64. */
#define GO_REGABI_AMD64_MIN_MINOR 17

/* x86-64 registers as 8-byte word indices into struct pt_regs. */
enum go_x86_reg {
	GO_X86_R15 = 0,
	GO_X86_R14 = 1,
	GO_X86_R13 = 2,
	GO_X86_R12 = 3,
	GO_X86_RBP = 4,
	GO_X86_RBX = 5,
	GO_X86_R11 = 6,
	GO_X86_R10 = 7,
	GO_X86_R9 = 8,
	GO_X86_R8 = 9,
	GO_X86_RAX = 10,
	GO_X86_RCX = 11,
	GO_X86_RDX = 12,
	GO_X86_RSI = 13,
	GO_X86_RDI = 14,
	GO_X86_ORIG_RAX = 15,
	GO_X86_RIP = 16,
	GO_X86_RSP = 19,
};

/* Where (*tls.Conn).Write/Read keep their arguments and results. */
struct go_tls_call_regs {
	enum go_x86_reg receiver;     /* entry: *tls.Conn */
	enum go_x86_reg buf_ptr;      /* entry: b's data pointer */
	enum go_x86_reg buf_len;      /* entry: len(b) */
	enum go_x86_reg ret_n;        /* RET: bytes written/read */
	enum go_x86_reg ret_err_itab; /* RET: error's itab, 0 when nil */
	enum go_x86_reg ret_err_data; /* RET: error's data pointer */
	enum go_x86_reg g;            /* entry and RET: current goroutine */
};

/* Struct offsets (bytes) from a *tls.Conn to its socket's fd; see above. */
struct go_tls_offsets {
	unsigned min_minor, max_minor; /* Go 1.min_minor .. 1.max_minor */
	uint16_t conn_iface;           /* tls.Conn.conn (net.Conn) */
	uint16_t conn_is_client;       /* tls.Conn.isClient (bool) */
	uint16_t iface_data;           /* data word of an interface value */
	uint16_t tcpconn_fd;           /* net.TCPConn.conn.fd (*netFD) */
	uint16_t netfd_pfd;            /* netFD.pfd (poll.FD) */
	uint16_t pfd_sysfd;            /* poll.FD.Sysfd (int) */
	uint8_t sysfd_size;            /* bytes of Sysfd */
};

struct go_version {
	unsigned major, minor, patch; /* go1.21rc2 → 1, 21, 0 */
};

/* Parses "go1.19.8", "go1.21rc2", "go1.22.0 X:boringcrypto" or
 * "devel go1.23-abcdef ...": 0, or -EINVAL. */
int go_version_parse(const char *s, struct go_version *out);

/* The offsets for v, or NULL when v is not in a checked range (or its
 * minor predates the register ABI). */
const struct go_tls_offsets *go_offsets_tls(const struct go_version *v);

/* The registers of (*tls.Conn).Write/Read on x86-64 (register ABI). */
const struct go_tls_call_regs *go_offsets_tls_call_regs(void);

#endif
