/* test_go_binary.c — go_binary (pclntab, build info, offsets), x86_ret and
 * go_offsets against real Go binaries: a tiny HTTPS program built by
 * build_go_fixtures.sh with the local toolchain as default, -s -w, and
 * -buildmode=pie -s -w (plus an unstripped PIE for `go tool nm`), Debian's
 * own stripped go command, and a ~100 MB Go binary for timing. References
 * are independent of the code under test: `go tool nm`, Go's debug/gosym
 * (gosymlookup) and binutils objdump (function bytes, RET instructions).
 * Hostile inputs: truncated, random and corrupted images, non-Go ELF.
 * Without a Go toolchain the Go tests print why and are skipped (not
 * counted); everything else still runs.
 * Fixtures go to $GO_FIXTURES_DIR, default build/go-fixtures. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"
#include "periscope_abi.h"
#include "kernel/go_attach.h"
#include "kernel/go_binary.h"
#include "kernel/go_offsets.h"
#include "kernel/x86_ret.h"

#define MAX_RETS 256

struct ctx {
	char root[PATH_MAX];     /* repository root */
	char script[PATH_MAX];   /* build_go_fixtures.sh */
	char fixtures[PATH_MAX]; /* built binaries */
	char tmp[PATH_MAX];      /* scratch directory */
	char go_version[64];     /* from the toolchain, "" without Go */
	char debian_go[PATH_MAX];
	int have_go;
	int big; /* GO_FIXTURES_BIG: also the ~100 MB fixture */
};

static struct ctx C;
static int skipped;

static const char *const tls_funcs[] = {GO_SYM_TLS_WRITE, GO_SYM_TLS_READ};
static const char *const timed_funcs[] = {GO_SYM_TLS_WRITE, GO_SYM_TLS_READ,
                                          GO_SYM_HTTP_PC_ROUNDTRIP, GO_SYM_HTTP_T_ROUNDTRIP};

static void skip(const char *what, const char *why)
{
	printf("SKIP %s: %s\n", what, why);
	skipped++;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Runs a shell command, returns its stdout (malloc'd, NUL-terminated) or NULL. */
static char *run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *run(const char *fmt, ...)
{
	char cmd[4 * PATH_MAX];
	size_t len = 0, cap = 4096;
	char *out = malloc(cap);
	va_list ap;
	FILE *f;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (!out)
		return NULL;
	f = popen(cmd, "r");
	if (!f) {
		free(out);
		return NULL;
	}
	while ((n = fread(out + len, 1, cap - len - 1, f)) > 0) {
		len += n;
		if (cap - len < 2) {
			char *bigger = realloc(out, cap * 2);

			if (!bigger)
				break;
			out = bigger;
			cap *= 2;
		}
	}
	out[len] = '\0';
	if (pclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

static void *read_all(const char *path, size_t *size)
{
	struct stat st;
	void *buf = NULL;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1)) != NULL) {
		if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
			free(buf);
			buf = NULL;
		}
		*size = (size_t)st.st_size;
	}
	close(fd);
	return buf;
}

static int write_all(const char *path, const void *buf, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, buf, size);
	close(fd);
	return n == (ssize_t)size ? 0 : -EIO;
}

static void fixture(char *out, const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", C.fixtures, name);
}

/* ---- objdump and Go references ---- */

struct objdump_ref {
	char bytes[64]; /* hex of the first 16 bytes */
	uint32_t rets[MAX_RETS];
	int nrets;
};

static int objdump_ref(const char *bin, uint64_t start, uint64_t size, struct objdump_ref *ref)
{
	char *out = run("'%s' --rets '%s' %llx %llx", C.script, bin, (unsigned long long)start,
	                (unsigned long long)(start + size));
	char *line, *save = NULL;

	memset(ref, 0, sizeof(*ref));
	if (!out)
		return -1;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned off;

		if (sscanf(line, "ret %x", &off) == 1 && ref->nrets < MAX_RETS)
			ref->rets[ref->nrets++] = off;
		else if (strncmp(line, "bytes ", 6) == 0)
			snprintf(ref->bytes, sizeof(ref->bytes), "%s", line + 6);
	}
	free(out);
	return 0;
}

/* `go tool nm` address of name: 0 when absent. */
static uint64_t nm_addr(const char *bin, const char *name)
{
	char *out = run("'%s' --nm '%s' '%s'", C.script, bin, name);
	unsigned long long a = 0;

	if (out && sscanf(out, "%llx", &a) != 1)
		a = 0;
	free(out);
	return a;
}

/* debug/gosym's [start, end) of name: -1 when absent or on failure. */
static int gosym_range(const char *bin, const char *name, uint64_t *start, uint64_t *end)
{
	char *out = run("'%s' --gosym '%s' '%s' '%s'", C.script, C.fixtures, bin, name);
	unsigned long long s, e;
	int r = -1;

	if (out && sscanf(out, "%llx %llx", &s, &e) == 2) {
		*start = s;
		*end = e;
		r = 0;
	}
	free(out);
	return r;
}

/* out holds 2 * n + 1 bytes. */
static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* The function's bytes read at its file offset equal objdump's, and its
 * RETs equal objdump's. */
static void check_code(struct go_binary *gb, struct x86_rets *xr, const char *bin, const char *name,
                       uint64_t start, uint64_t size)
{
	struct objdump_ref ref;
	uint8_t buf[16];
	char got[64];
	uint64_t off = 0;
	uint32_t rets[MAX_RETS];
	size_t bad = 0;
	const uint8_t *code;
	int fd, n;

	CHECK(size >= 16);
	CHECK_EQ_INT(go_binary_vaddr_to_offset(gb, start, &off), 0);
	fd = open(bin, O_RDONLY);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_EQ_INT(pread(fd, buf, sizeof(buf), (off_t)off), (long long)sizeof(buf));
		close(fd);
	}
	hex(buf, sizeof(buf), got);
	CHECK_EQ_INT(objdump_ref(bin, start, size, &ref), 0);
	CHECK_EQ_STR(got, ref.bytes);
	code = go_binary_bytes(gb, start, size);
	CHECK(code != NULL);
	if (!code)
		return;
	CHECK(memcmp(code, buf, sizeof(buf)) == 0);
	n = x86_rets_find(xr, code, size, start, rets, MAX_RETS, &bad);
	if (n != ref.nrets)
		fprintf(stderr, "%s %s: %d rets, objdump %d\n", bin, name, n, ref.nrets);
	CHECK_EQ_INT(n, ref.nrets);
	CHECK(n > 0);
	for (int i = 0; i < n && i < ref.nrets; i++)
		CHECK_EQ_INT(rets[i], ref.rets[i]);
}

/* ---- tests without Go ---- */

static void test_version_parse(void)
{
	struct go_version v;

	CHECK_EQ_INT(go_version_parse("go1.19.8", &v), 0);
	CHECK(v.major == 1 && v.minor == 19 && v.patch == 8);
	CHECK_EQ_INT(go_version_parse("go1.21rc2", &v), 0);
	CHECK(v.major == 1 && v.minor == 21 && v.patch == 0);
	CHECK_EQ_INT(go_version_parse("go1.22.0 X:boringcrypto", &v), 0);
	CHECK(v.minor == 22 && v.patch == 0);
	CHECK_EQ_INT(go_version_parse("devel go1.23-abcdef Tue Jan 1", &v), 0);
	CHECK(v.minor == 23);
	CHECK_EQ_INT(go_version_parse("", &v), -EINVAL);
	CHECK_EQ_INT(go_version_parse("go", &v), -EINVAL);
	CHECK_EQ_INT(go_version_parse("go1", &v), -EINVAL);
	CHECK_EQ_INT(go_version_parse("ergo1.2", &v), -EINVAL);
	CHECK_EQ_INT(go_version_parse("go1.9999999", &v), -EINVAL);
	CHECK_EQ_INT(go_version_parse(NULL, &v), -EINVAL);
}

static void test_offsets_table(void)
{
	struct go_version v = {1, 16, 0};
	const struct go_tls_offsets *o;
	const struct go_tls_call_regs *r = go_offsets_tls_call_regs();

	CHECK(go_offsets_tls(&v) == NULL); /* stack ABI */
	for (unsigned m = 17; m <= 23; m++) {
		v.minor = m;
		o = go_offsets_tls(&v);
		CHECK(o != NULL);
		if (!o)
			continue;
		CHECK_EQ_INT(o->conn_iface, 0);
		CHECK_EQ_INT(o->iface_data, 8);
		CHECK_EQ_INT(o->tcpconn_fd, 0);
		CHECK_EQ_INT(o->netfd_pfd, 0);
		CHECK_EQ_INT(o->pfd_sysfd, 16);
		CHECK_EQ_INT(o->sysfd_size, 8);
		CHECK_EQ_INT(o->conn_is_client, 16);
	}
	v.minor = 24;
	CHECK(go_offsets_tls(&v) == NULL); /* not checked yet */
	v.major = 2;
	v.minor = 19;
	CHECK(go_offsets_tls(&v) == NULL);
	CHECK(go_offsets_tls(NULL) == NULL);
	/* The register indices are struct pt_regs / user_regs_struct words. */
	CHECK_EQ_INT(GO_X86_RAX, offsetof(struct user_regs_struct, rax) / 8);
	CHECK_EQ_INT(GO_X86_RBX, offsetof(struct user_regs_struct, rbx) / 8);
	CHECK_EQ_INT(GO_X86_RCX, offsetof(struct user_regs_struct, rcx) / 8);
	CHECK_EQ_INT(GO_X86_RDI, offsetof(struct user_regs_struct, rdi) / 8);
	CHECK_EQ_INT(GO_X86_RSI, offsetof(struct user_regs_struct, rsi) / 8);
	CHECK_EQ_INT(GO_X86_R14, offsetof(struct user_regs_struct, r14) / 8);
	CHECK_EQ_INT(GO_X86_RIP, offsetof(struct user_regs_struct, rip) / 8);
	CHECK_EQ_INT(GO_X86_RSP, offsetof(struct user_regs_struct, rsp) / 8);
	CHECK_EQ_INT(r->receiver, GO_X86_RAX);
	CHECK_EQ_INT(r->buf_ptr, GO_X86_RBX);
	CHECK_EQ_INT(r->buf_len, GO_X86_RCX);
	CHECK_EQ_INT(r->ret_n, GO_X86_RAX);
	CHECK_EQ_INT(r->ret_err_itab, GO_X86_RBX);
	CHECK_EQ_INT(r->ret_err_data, GO_X86_RCX);
	CHECK_EQ_INT(r->g, GO_X86_R14);
}

static void test_x86_rets_synthetic(void)
{
	/* mov $0xc3,%rax (a C3 byte inside an immediate); ret; repz ret;
	 * ret $8; int3; jmp back to the start (a tail path, no RET) */
	static const uint8_t code[] = {0x48, 0xc7, 0xc0, 0xc3, 0x00, 0x00, 0x00, 0xc3,
	                               0xf3, 0xc3, 0xc2, 0x08, 0x00, 0xcc, 0xeb, 0xf1};
	static const uint8_t cut[] = {0xc3, 0x48, 0xc7, 0xc0, 0xc3}; /* mov runs past the end */
	static const uint8_t invalid[] = {0x90, 0x06, 0xc3};         /* push %es: not in 64-bit */
	struct x86_rets *xr = x86_rets__new();
	uint32_t offs[8];
	size_t bad = 99;

	CHECK(xr != NULL);
	if (!xr)
		return;
	CHECK_EQ_INT(x86_rets_find(xr, code, sizeof(code), 0x1000, offs, 8, &bad), 3);
	CHECK_EQ_INT(offs[0], 7);
	CHECK_EQ_INT(offs[1], 8);
	CHECK_EQ_INT(offs[2], 10);
	/* More RETs than room: counted, first max stored. */
	memset(offs, 0, sizeof(offs));
	CHECK_EQ_INT(x86_rets_find(xr, code, sizeof(code), 0x1000, offs, 1, NULL), 3);
	CHECK_EQ_INT(offs[0], 7);
	CHECK_EQ_INT(offs[1], 0);
	CHECK_EQ_INT(x86_rets_find(xr, code, sizeof(code), 0, NULL, 0, NULL), 3);
	CHECK_EQ_INT(x86_rets_find(xr, cut, sizeof(cut), 0, offs, 8, &bad), -EILSEQ);
	CHECK_EQ_INT(bad, 1);
	CHECK_EQ_INT(x86_rets_find(xr, invalid, sizeof(invalid), 0, offs, 8, &bad), -EILSEQ);
	CHECK_EQ_INT(bad, 1);
	CHECK_EQ_INT(x86_rets_find(xr, code, 0, 0, offs, 8, &bad), -EINVAL);
	CHECK_EQ_INT(x86_rets_find(NULL, code, sizeof(code), 0, offs, 8, &bad), -EINVAL);
	CHECK_EQ_INT(x86_rets_find(xr, code, sizeof(code), 0, NULL, 8, &bad), -EINVAL);
	x86_rets__free(xr);
	x86_rets__free(NULL);
}

static void test_not_elf(void)
{
	struct go_binary *gb = NULL;
	uint8_t buf[65536];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	CHECK_EQ_INT(go_binary__open_mem(buf, sizeof(buf), &gb), -ENOEXEC);
	CHECK_EQ_INT(go_binary__open_mem(buf, 0, &gb), -ENOEXEC);
	CHECK_EQ_INT(go_binary__open_mem(NULL, 10, &gb), -EINVAL);
	CHECK_EQ_INT(go_binary__open_mem(buf, sizeof(buf), NULL), -EINVAL);
	CHECK_EQ_INT(go_binary__open("/nonexistent/periscope", &gb), -ENOENT);
	CHECK_EQ_INT(go_binary__open("/", &gb), -ENOEXEC);
	snprintf(path, sizeof(path), "%s/random", C.tmp);
	CHECK_EQ_INT(write_all(path, buf, sizeof(buf)), 0);
	CHECK_EQ_INT(go_binary__open(path, &gb), -ENOEXEC);
	snprintf(path, sizeof(path), "%s/empty", C.tmp);
	CHECK_EQ_INT(write_all(path, buf, 0), 0);
	CHECK_EQ_INT(go_binary__open(path, &gb), -ENOEXEC);
	/* An ELF header followed by random bytes: opens or not, never crashes. */
	memcpy(buf,
	       "\x7f"
	       "ELF\x02\x01\x01",
	       7);
	if (go_binary__open_mem(buf, sizeof(buf), &gb) == 0) {
		CHECK_EQ_INT(go_binary_find_func(gb, GO_SYM_TLS_WRITE, NULL, NULL), -ENOENT);
		go_binary__free(gb);
	}
	go_binary__free(NULL);
}

static void test_non_go_elf(void)
{
	struct go_binary *gb = NULL;
	struct go_func f;
	uint64_t start = 1, off;
	size_t size;
	uint8_t *img;

	CHECK_EQ_INT(go_binary__open("/bin/true", &gb), 0);
	if (!gb)
		return;
	CHECK(!go_binary_is_go(gb));
	CHECK_EQ_STR(go_binary_version(gb), "");
	CHECK_EQ_INT(go_binary_machine(gb), 62);
	CHECK_EQ_INT(go_binary_funcs_source(gb), GO_FUNCS_NONE);
	CHECK_EQ_INT(go_binary_funcs_error(gb), -ENOENT);
	CHECK_EQ_INT(go_binary_func_count(gb), 0);
	CHECK_EQ_INT(go_binary_func_at(gb, 0, &f), -ERANGE);
	CHECK_EQ_INT(go_binary_find_func(gb, GO_SYM_TLS_WRITE, &start, NULL), -ENOENT);
	CHECK_EQ_INT(start, 1);
	CHECK_EQ_INT(go_binary_vaddr_to_offset(gb, 0xffffffff00000000ull, &off), -ERANGE);
	CHECK_EQ_INT(go_binary_vaddr_to_offset(gb, 0, &off), 0); /* PIE: the ELF header */
	CHECK_EQ_INT(off, 0);
	go_binary__free(gb);
	/* Every truncation of a non-Go ELF. */
	img = read_all("/bin/true", &size);
	CHECK(img != NULL);
	for (size_t n = 0; img && n < size; n += n < 4096 ? 7 : 997) {
		gb = NULL;
		if (go_binary__open_mem(img, n, &gb) == 0) {
			CHECK(!go_binary_is_go(gb));
			go_binary__free(gb);
		}
	}
	free(img);
}

/* ---- synthetic images: every pclntab layout, both build info formats ----
 * A minimal ELF64 LE executable without section headers (so the scans are
 * used): text segment at 0x400000 (three functions from 0x400800), read-only
 * segment at 0x401000 (the pclntab), data segment at 0x402000 (build info,
 * and for PIE a dynamic section with RELATIVE relocations for the words left
 * 0 in the file, as an external linker leaves them). */

enum synth_fmt { SYNTH_12, SYNTH_116, SYNTH_118, SYNTH_120 };

#define SYN_TEXT    0x400000ull
#define SYN_RO      0x401000ull
#define SYN_DATA    0x402000ull
#define SYN_FUNC0   0x400800ull
#define SYN_SIZE    0x2400
#define SYN_NFUNC   3
#define SYN_VERSION "go1.20.5"

static const uint64_t syn_start[SYN_NFUNC + 1] = {0x400800, 0x400820, 0x400840, 0x400880};
static const char *const syn_names[SYN_NFUNC] = {"main.a", GO_SYM_TLS_WRITE, "main.c"};

static void put(uint8_t *img, uint64_t off, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		img[off + i] = (uint8_t)(v >> (8 * i));
}

static void put_phdr(uint8_t *img, int i, uint32_t type, uint32_t flags, uint64_t off,
                     uint64_t vaddr, uint64_t size)
{
	uint64_t p = 64 + 56 * (uint64_t)i;

	put(img, p, type, 4);
	put(img, p + 4, flags, 4);
	put(img, p + 8, off, 8);
	put(img, p + 16, vaddr, 8);
	put(img, p + 24, vaddr, 8);
	put(img, p + 32, size, 8);
	put(img, p + 40, size, 8);
	put(img, p + 48, 0x1000, 8);
}

/* Builds the image into img (SYN_SIZE bytes). */
static void synth_image(uint8_t *img, enum synth_fmt fmt, int pie, int ptr_buildinfo)
{
	static const uint8_t code0[] = {0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, 0xc3};
	static const uint8_t code1[] = {0x31, 0xc0, 0xc3};
	static const uint8_t code2[] = {0x48, 0xc7, 0xc0, 0xc3, 0x00, 0x00, 0x00, 0xc3};
	const uint64_t ro = 0x1000, data = 0x2000, dyn = 0x2100, rela = 0x2200;
	uint64_t hdr_words = fmt == SYNTH_12 ? 1 : fmt == SYNTH_116 ? 7 : 8;
	uint64_t names = 8 + 8 * hdr_words, functab, funcs, name_off[SYN_NFUNC];
	uint64_t relocs[3][2], nrel = 0, o;
	unsigned field = fmt >= SYNTH_118 ? 4 : 8;
	uint32_t magic = fmt == SYNTH_12    ? 0xfffffffbu
	                 : fmt == SYNTH_116 ? 0xfffffffau
	                 : fmt == SYNTH_118 ? 0xfffffff0u
	                                    : 0xfffffff1u;

	memset(img, 0, SYN_SIZE);
	/* ELF header */
	memcpy(img,
	       "\x7f"
	       "ELF\x02\x01\x01",
	       7);
	put(img, 16, pie ? 3 : 2, 2); /* ET_DYN / ET_EXEC */
	put(img, 18, 62, 2);          /* EM_X86_64 */
	put(img, 20, 1, 4);
	put(img, 24, SYN_FUNC0, 8);
	put(img, 32, 64, 8); /* e_phoff */
	put(img, 52, 64, 2);
	put(img, 54, 56, 2);
	put(img, 56, pie ? 4 : 3, 2);
	put_phdr(img, 0, 1, 5, 0, SYN_TEXT, 0x1000);   /* PT_LOAD R X */
	put_phdr(img, 1, 1, 4, ro, SYN_RO, 0x1000);    /* PT_LOAD R */
	put_phdr(img, 2, 1, 6, data, SYN_DATA, 0x400); /* PT_LOAD RW */
	if (pie)
		put_phdr(img, 3, 2, 6, dyn, SYN_DATA + 0x100, 0x40); /* PT_DYNAMIC */
	/* text: padded with int3 */
	memset(img + 0x800, 0xcc, 0x80);
	memcpy(img + 0x800, code0, sizeof(code0));
	memcpy(img + 0x820, code1, sizeof(code1));
	memcpy(img + 0x840, code2, sizeof(code2));
	/* pclntab: header, names, functab, _func records */
	put(img, ro, magic, 4);
	img[ro + 6] = 1;
	img[ro + 7] = 8;
	o = names;
	for (int i = 0; i < SYN_NFUNC; i++) {
		name_off[i] = fmt == SYNTH_12 ? o : o - names;
		memcpy(img + ro + o, syn_names[i], strlen(syn_names[i]) + 1);
		o += strlen(syn_names[i]) + 1;
	}
	functab = fmt == SYNTH_12 ? 16 : (o + 7) & ~7ull;
	if (fmt == SYNTH_12) { /* names go after the table there */
		uint64_t after = 16 + (2 * SYN_NFUNC + 1) * 8ull;

		memmove(img + ro + after, img + ro + names, o - names);
		memset(img + ro + names, 0, after - names);
		for (int i = 0; i < SYN_NFUNC; i++)
			name_off[i] += after - names;
		o = after + (o - names);
	}
	funcs = fmt == SYNTH_12 ? (o + 7) & ~7ull
	                        : functab + ((2 * SYN_NFUNC + 1) * (uint64_t)field + 7) / 8 * 8;
	put(img, ro + 8, SYN_NFUNC, 8);
	if (fmt >= SYNTH_118) {
		put(img, ro + 8 + 16, pie ? 0 : SYN_FUNC0, 8); /* textStart */
		put(img, ro + 8 + 24, names, 8);
		for (int w = 4; w < 7; w++)
			put(img, ro + 8 + 8 * w, o, 8); /* cu, file, pc tables: empty */
		put(img, ro + 8 + 56, functab, 8);
		if (pie) {
			relocs[nrel][0] = SYN_RO + 8 + 16;
			relocs[nrel++][1] = SYN_FUNC0;
		}
	} else if (fmt == SYNTH_116) {
		put(img, ro + 8 + 16, names, 8);
		for (int w = 3; w < 6; w++)
			put(img, ro + 8 + 8 * w, o, 8);
		put(img, ro + 8 + 48, functab, 8);
	}
	for (int i = 0; i <= SYN_NFUNC; i++) {
		uint64_t e = fmt >= SYNTH_118 ? syn_start[i] - SYN_FUNC0 : syn_start[i];
		uint64_t rec = funcs + 48 * (uint64_t)i; /* from the table's base */
		uint64_t funcoff = fmt == SYNTH_12 ? rec : rec - functab;

		put(img, ro + functab + 2 * i * field, e, (int)field);
		if (i == SYN_NFUNC)
			break;
		put(img, ro + functab + (2 * i + 1) * field, funcoff, (int)field);
		put(img, ro + rec, e, (int)field);
		put(img, ro + rec + field, name_off[i], 4);
	}
	/* build info */
	memcpy(img + data, "\xff Go buildinf:", 14);
	img[data + 14] = 8;
	if (!ptr_buildinfo) {
		img[data + 15] = 2;
		img[data + 32] = (uint8_t)strlen(SYN_VERSION);
		memcpy(img + data + 33, SYN_VERSION, strlen(SYN_VERSION));
	} else {
		put(img, data + 16, pie ? 0 : SYN_DATA + 0x40, 8);
		put(img, data + 0x40, pie ? 0 : SYN_DATA + 0x60, 8);
		put(img, data + 0x48, strlen(SYN_VERSION), 8);
		memcpy(img + data + 0x60, SYN_VERSION, strlen(SYN_VERSION));
		if (pie) {
			relocs[nrel][0] = SYN_DATA + 16;
			relocs[nrel++][1] = SYN_DATA + 0x40;
			relocs[nrel][0] = SYN_DATA + 0x40;
			relocs[nrel++][1] = SYN_DATA + 0x60;
		}
	}
	if (pie) {
		put(img, dyn, 7, 8); /* DT_RELA */
		put(img, dyn + 8, SYN_DATA + 0x200, 8);
		put(img, dyn + 16, 8, 8); /* DT_RELASZ */
		put(img, dyn + 24, 24 * nrel, 8);
		put(img, dyn + 32, 9, 8); /* DT_RELAENT */
		put(img, dyn + 40, 24, 8);
		for (uint64_t i = 0; i < nrel; i++) {
			put(img, rela + 24 * i, relocs[i][0], 8);
			put(img, rela + 24 * i + 8, 8, 8); /* R_X86_64_RELATIVE */
			put(img, rela + 24 * i + 16, relocs[i][1], 8);
		}
	}
}

static void test_synthetic_layouts(void)
{
	static const uint32_t magics[] = {0xfffffffbu, 0xfffffffau, 0xfffffff0u, 0xfffffff1u};
	uint8_t *img = malloc(SYN_SIZE);
	struct x86_rets *xr = x86_rets__new();
	const char *seeds = getenv("GO_BINARY_WRITE_SEEDS");

	if (!img || !xr)
		goto cleanup;
	for (int fmt = SYNTH_12; fmt <= SYNTH_120; fmt++) {
		for (int variant = 0; variant < 4; variant++) {
			int pie = variant & 1, ptr_bi = variant >> 1;
			struct go_binary *gb = NULL;
			struct go_pclntab_info info;
			struct go_func f;
			uint64_t start = 0, size = 0, off = 0;
			uint32_t rets[4];
			const uint8_t *code;

			if (pie && fmt < SYNTH_118)
				continue; /* those store absolute entries: nothing to relocate */
			synth_image(img, fmt, pie, ptr_bi);
			/* GO_BINARY_WRITE_SEEDS=dir: write seeds for fuzz_go_binary. */
			if (seeds &&
			    (variant == 0 || variant == (pie || fmt >= SYNTH_118 ? 3 : 2))) {
				char path[PATH_MAX];

				snprintf(path, sizeof(path), "%s/synth_fmt%d_%s%s", seeds, fmt,
				         pie ? "pie_reloc" : "exec", ptr_bi ? "_ptrinfo" : "");
				CHECK_EQ_INT(write_all(path, img, SYN_SIZE), 0);
			}
			CHECK_EQ_INT(go_binary__open_mem(img, SYN_SIZE, &gb), 0);
			if (!gb)
				continue;
			CHECK(go_binary_is_go(gb));
			CHECK_EQ_INT(go_binary_is_pie(gb), pie);
			CHECK_EQ_STR(go_binary_version(gb), SYN_VERSION);
			CHECK_EQ_INT(go_binary_funcs_source(gb), GO_FUNCS_PCLNTAB_SCAN);
			CHECK_EQ_INT(go_binary_pclntab_info(gb, &info), 0);
			CHECK_EQ_INT(info.magic, magics[fmt]);
			CHECK_EQ_INT(info.vaddr, SYN_RO);
			CHECK_EQ_INT(info.text_start, fmt >= SYNTH_118 ? SYN_FUNC0 : 0);
			CHECK_EQ_INT(go_binary_func_count(gb), SYN_NFUNC);
			for (int i = 0; i < SYN_NFUNC; i++) {
				CHECK_EQ_INT(go_binary_func_at(gb, (size_t)i, &f), 0);
				CHECK_EQ_STR(f.name, syn_names[i]);
				CHECK_EQ_INT(f.start, syn_start[i]);
				CHECK_EQ_INT(f.size, syn_start[i + 1] - syn_start[i]);
			}
			CHECK_EQ_INT(go_binary_find_func(gb, GO_SYM_TLS_WRITE, &start, &size), 0);
			CHECK_EQ_INT(start, 0x400820);
			CHECK_EQ_INT(size, 0x20);
			CHECK_EQ_INT(go_binary_find_func(gb, "main.b", NULL, NULL), -ENOENT);
			CHECK_EQ_INT(go_binary_vaddr_to_offset(gb, start, &off), 0);
			CHECK_EQ_INT(off, 0x820);
			code = go_binary_bytes(gb, 0x400840, 0x40);
			CHECK(code != NULL);
			if (code) {
				CHECK_EQ_INT(x86_rets_find(xr, code, 0x40, 0x400840, rets, 4, NULL),
				             1);
				CHECK_EQ_INT(rets[0], 7);
			}
			CHECK(go_binary_bytes(gb, 0x400f00, 0x200) == NULL); /* past the segment */
			go_binary__free(gb);
		}
	}
cleanup:
	x86_rets__free(xr);
	free(img);
}

/* ---- tests on Go binaries ---- */

static void check_variant(const char *name, const char *nm_of, int pie)
{
	char bin[PATH_MAX];
	struct go_binary *gb = NULL;
	struct x86_rets *xr = x86_rets__new();
	struct go_pclntab_info info;

	fixture(bin, name);
	CHECK_EQ_INT(go_binary__open(bin, &gb), 0);
	if (!gb || !xr)
		goto cleanup;
	CHECK(go_binary_is_go(gb));
	CHECK_EQ_STR(go_binary_version(gb), C.go_version);
	CHECK_EQ_INT(go_binary_is_pie(gb), pie);
	CHECK_EQ_INT(go_binary_funcs_source(gb), GO_FUNCS_PCLNTAB_SECTION);
	CHECK_EQ_INT(go_binary_pclntab_info(gb, &info), 0);
	CHECK(info.magic == 0xfffffff0u || info.magic == 0xfffffff1u);
	CHECK_EQ_INT(info.ptr_size, 8);
	CHECK_EQ_INT(info.min_lc, 1);
	CHECK_EQ_INT(info.nfunc, go_binary_func_count(gb));
	for (size_t i = 0; i < 2; i++) {
		uint64_t start = 0, size = 0, gs = 0, ge = 0, nm;

		CHECK_EQ_INT(go_binary_find_func(gb, tls_funcs[i], &start, &size), 0);
		CHECK_EQ_INT(gosym_range(bin, tls_funcs[i], &gs, &ge), 0);
		CHECK_EQ_INT(start, gs);
		CHECK_EQ_INT(start + size, ge);
		if (nm_of) {
			char ref[PATH_MAX];
			uint64_t s2 = 0, z2 = 0;

			fixture(ref, nm_of);
			nm = nm_addr(ref, tls_funcs[i]);
			CHECK(nm != 0);
			CHECK_EQ_INT(start, nm);
			if (strcmp(ref, bin) == 0) {
				CHECK_EQ_INT(go_binary_symtab_find(gb, tls_funcs[i], &s2, &z2), 0);
				CHECK_EQ_INT(s2, start);
				CHECK(z2 > 0 && z2 <= size);
			}
		}
		check_code(gb, xr, bin, tls_funcs[i], start, size);
	}
	if (!nm_of || strcmp(nm_of, name) != 0) /* stripped: no .symtab */
		CHECK_EQ_INT(go_binary_symtab_find(gb, GO_SYM_TLS_WRITE, NULL, NULL), -ENOENT);
cleanup:
	x86_rets__free(xr);
	go_binary__free(gb);
}

static void test_default(void)
{
	check_variant("hello_default", "hello_default", 0);
}

static void test_stripped(void)
{
	/* -s -w leaves .text as it is: nm of the unstripped build applies. */
	check_variant("hello_stripped", "hello_default", 0);
}

static void test_pie_stripped(void)
{
	check_variant("hello_pie", "hello_pie_full", 1);
}

static void test_pie_full(void)
{
	check_variant("hello_pie_full", "hello_pie_full", 1);
}

/* All functions: sorted, contiguous, named; a sample agrees with .symtab. */
static void test_iterate_vs_symtab(void)
{
	char bin[PATH_MAX];
	struct go_binary *gb = NULL;
	size_t n, checked = 0;
	uint64_t prev_end = 0;

	fixture(bin, "hello_default");
	CHECK_EQ_INT(go_binary__open(bin, &gb), 0);
	if (!gb)
		return;
	n = go_binary_func_count(gb);
	CHECK(n > 1000);
	for (size_t i = 0; i < n; i++) {
		struct go_func f;
		uint64_t s = 0;

		if (go_binary_func_at(gb, i, &f) != 0) {
			CHECK(0);
			break;
		}
		CHECK(f.name[0] != '\0');
		if (i)
			CHECK_EQ_INT(f.start, prev_end);
		prev_end = f.start + f.size;
		if (i % 97 == 0 && go_binary_symtab_find(gb, f.name, &s, NULL) == 0) {
			CHECK_EQ_INT(s, f.start);
			checked++;
		}
	}
	CHECK(checked > 10);
	{
		struct go_func f;

		CHECK_EQ_INT(go_binary_func_at(gb, n, &f), -ERANGE);
	}
	go_binary__free(gb);
}

/* Copies a fixture with its section headers dropped (e_shoff, e_shnum,
 * e_shstrndx zeroed): the pclntab and build info must be found by scanning. */
static int copy_without_sections(const char *bin, const char *copy)
{
	uint8_t *img;
	size_t size;
	int r;

	img = read_all(bin, &size);
	if (!img || size < 64) {
		free(img);
		return -EIO;
	}
	memset(img + 0x28, 0, 8); /* e_shoff */
	memset(img + 0x3c, 0, 4); /* e_shnum, e_shstrndx */
	r = write_all(copy, img, size);
	free(img);
	return r;
}

static void check_no_sections(const char *name)
{
	char bin[PATH_MAX], copy[PATH_MAX];
	struct go_binary *gb = NULL, *ref = NULL;

	fixture(bin, name);
	snprintf(copy, sizeof(copy), "%s/%s.nosections", C.tmp, name);
	CHECK_EQ_INT(copy_without_sections(bin, copy), 0);
	CHECK_EQ_INT(go_binary__open(copy, &gb), 0);
	CHECK_EQ_INT(go_binary__open(bin, &ref), 0);
	if (gb && ref) {
		CHECK(go_binary_is_go(gb));
		CHECK_EQ_STR(go_binary_version(gb), C.go_version);
		CHECK_EQ_INT(go_binary_funcs_source(gb), GO_FUNCS_PCLNTAB_SCAN);
		CHECK_EQ_INT(go_binary_func_count(gb), go_binary_func_count(ref));
		for (size_t i = 0; i < 2; i++) {
			uint64_t a = 0, b = 1, za = 0, zb = 1, oa = 0, ob = 1;

			CHECK_EQ_INT(go_binary_find_func(gb, tls_funcs[i], &a, &za), 0);
			CHECK_EQ_INT(go_binary_find_func(ref, tls_funcs[i], &b, &zb), 0);
			CHECK_EQ_INT(a, b);
			CHECK_EQ_INT(za, zb);
			CHECK_EQ_INT(go_binary_vaddr_to_offset(gb, a, &oa), 0);
			CHECK_EQ_INT(go_binary_vaddr_to_offset(ref, b, &ob), 0);
			CHECK_EQ_INT(oa, ob);
		}
	}
	go_binary__free(gb);
	go_binary__free(ref);
}

static void test_scan_without_sections(void)
{
	check_no_sections("hello_stripped");
	check_no_sections("hello_pie");
}

/* The pclntab magic broken: .symtab takes over with nm's addresses. */
static void test_symtab_fallback(void)
{
	char bin[PATH_MAX];
	struct go_binary *gb = NULL, *ref = NULL;
	struct go_pclntab_info info;
	uint8_t *img;
	size_t size;
	uint64_t off = 0, a = 0;

	fixture(bin, "hello_default");
	CHECK_EQ_INT(go_binary__open(bin, &ref), 0);
	img = read_all(bin, &size);
	if (!ref || !img)
		goto cleanup;
	CHECK_EQ_INT(go_binary_pclntab_info(ref, &info), 0);
	CHECK_EQ_INT(go_binary_vaddr_to_offset(ref, info.vaddr, &off), 0);
	img[off] ^= 0x0f;
	CHECK_EQ_INT(go_binary__open_mem(img, size, &gb), 0);
	if (!gb)
		goto cleanup;
	CHECK(go_binary_is_go(gb)); /* build info still says so */
	CHECK_EQ_INT(go_binary_funcs_source(gb), GO_FUNCS_SYMTAB);
	CHECK_EQ_INT(go_binary_pclntab_info(gb, &info), -ENOENT);
	CHECK_EQ_INT(go_binary_find_func(gb, GO_SYM_TLS_WRITE, &a, NULL), 0);
	CHECK_EQ_INT(a, nm_addr(bin, GO_SYM_TLS_WRITE));
	CHECK(go_binary_func_count(gb) > 1000);
cleanup:
	free(img);
	go_binary__free(gb);
	go_binary__free(ref);
}

/* Truncations and corruptions of a Go image: errors, never a crash (ASan). */
static void test_hostile_go(void)
{
	char bin[PATH_MAX];
	struct go_binary *gb = NULL, *ref = NULL;
	struct go_pclntab_info info;
	uint8_t *img = NULL, *work = NULL;
	size_t size;
	uint64_t x = 12345, off = 0;
	const size_t cuts[] = {16, 64, 100, 1000, 4096, 65536, 1 << 20};

	fixture(bin, "hello_stripped");
	img = read_all(bin, &size);
	CHECK_EQ_INT(go_binary__open(bin, &ref), 0);
	if (!img || !ref || go_binary_pclntab_info(ref, &info) != 0)
		goto cleanup;
	CHECK_EQ_INT(go_binary_vaddr_to_offset(ref, info.vaddr, &off), 0);
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]) + 3; i++) {
		size_t n = i < sizeof(cuts) / sizeof(cuts[0])    ? cuts[i]
		           : i == sizeof(cuts) / sizeof(cuts[0]) ? (size_t)off + 200
		                                                 : size - (i % 2 ? 1 : size / 3);
		int r = go_binary__open_mem(img, n, &gb);

		if (r == 0) {
			uint64_t a;

			r = go_binary_find_func(gb, GO_SYM_TLS_WRITE, &a, NULL);
			CHECK(r == 0 || r == -ENOENT || r == -EBADMSG);
			go_binary__free(gb);
			gb = NULL;
		} else {
			CHECK_EQ_INT(r, -ENOEXEC);
		}
	}
	/* A huge nfunc: rejected by the bounds check, not read. */
	work = malloc(size);
	if (!work)
		goto cleanup;
	memcpy(work, img, size);
	memset(work + off + 8, 0xff, 8);
	CHECK_EQ_INT(go_binary__open_mem(work, size, &gb), 0);
	if (gb) {
		CHECK_EQ_INT(go_binary_funcs_source(gb), GO_FUNCS_NONE);
		CHECK_EQ_INT(go_binary_funcs_error(gb), -EBADMSG);
		CHECK_EQ_INT(go_binary_find_func(gb, GO_SYM_TLS_WRITE, NULL, NULL), -ENOENT);
		go_binary__free(gb);
		gb = NULL;
	}
	/* Random bytes written over the table's header and first entries. */
	for (int round = 0; round < 200; round++) {
		memcpy(work + off, img + off, 4096);
		for (int k = 0; k < 8; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			work[off + 8 + x % 200] = (uint8_t)(x >> 32);
		}
		if (go_binary__open_mem(work, size, &gb) == 0) {
			size_t n = go_binary_func_count(gb);
			struct go_func f;

			for (size_t i = 0; i < n; i += 1 + n / 64)
				(void)go_binary_func_at(gb, i, &f);
			(void)go_binary_find_func(gb, GO_SYM_TLS_READ, NULL, NULL);
			go_binary__free(gb);
			gb = NULL;
		}
	}
cleanup:
	free(img);
	free(work);
	go_binary__free(ref);
}

/* Debian's go command: stripped (no .symtab), compared with debug/gosym. */
static void test_debian_go(void)
{
	struct go_binary *gb = NULL;
	struct x86_rets *xr = NULL;

	if (!C.debian_go[0]) {
		skip("test_debian_go", "no /usr/bin/go");
		return;
	}
	CHECK_EQ_INT(go_binary__open(C.debian_go, &gb), 0);
	xr = x86_rets__new();
	if (!gb || !xr)
		goto cleanup;
	CHECK(go_binary_is_go(gb));
	CHECK(strncmp(go_binary_version(gb), "go1.", 4) == 0);
	CHECK_EQ_INT(go_binary_funcs_source(gb), GO_FUNCS_PCLNTAB_SECTION);
	if (go_binary_symtab_find(gb, GO_SYM_TLS_WRITE, NULL, NULL) == -ENOENT)
		printf("  %s is stripped: compared with debug/gosym and objdump\n", C.debian_go);
	for (size_t i = 0; i < sizeof(timed_funcs) / sizeof(timed_funcs[0]); i++) {
		uint64_t start = 0, size = 0, gs = 0, ge = 0, nm;

		CHECK_EQ_INT(go_binary_find_func(gb, timed_funcs[i], &start, &size), 0);
		if (C.have_go) {
			CHECK_EQ_INT(gosym_range(C.debian_go, timed_funcs[i], &gs, &ge), 0);
			CHECK_EQ_INT(start, gs);
			CHECK_EQ_INT(start + size, ge);
			nm = nm_addr(C.debian_go, timed_funcs[i]);
			if (nm)
				CHECK_EQ_INT(start, nm);
		}
		check_code(gb, xr, C.debian_go, timed_funcs[i], start, size);
	}
cleanup:
	x86_rets__free(xr);
	go_binary__free(gb);
}

/* Time to open and find four functions, best of 5 and first run (the file
 * is in the page cache either way: it was just read by the other tests). */
static void time_one(const char *path)
{
	double best = 1e9, parse_best = 1e9, first = 0;
	struct stat st;

	if (stat(path, &st) != 0) {
		skip("timing", path);
		return;
	}
	for (int round = 0; round < 5; round++) {
		struct go_binary *gb = NULL;
		double t0 = now_ms(), t1;
		int found = 0;

		if (go_binary__open(path, &gb) != 0) {
			CHECK(0);
			return;
		}
		t1 = now_ms();
		for (size_t i = 0; i < sizeof(timed_funcs) / sizeof(timed_funcs[0]); i++)
			found += go_binary_find_func(gb, timed_funcs[i], NULL, NULL) == 0;
		CHECK_EQ_INT(found, 4);
		if (!round)
			first = now_ms() - t0;
		if (now_ms() - t0 < best)
			best = now_ms() - t0;
		if (t1 - t0 < parse_best)
			parse_best = t1 - t0;
		go_binary__free(gb);
	}
	printf("  timing %s (%.1f MB): open %.2f ms, open + find 4 functions %.2f ms (best of "
	       "5; first %.2f ms)\n",
	       path, (double)st.st_size / 1e6, parse_best, best, first);
	CHECK(best < 2000);
}

static void test_timing_debian_go(void)
{
	if (C.debian_go[0])
		time_one(C.debian_go);
	else
		skip("test_timing_debian_go", "no /usr/bin/go");
}

static void test_timing_big(void)
{
	char big[PATH_MAX], copy[PATH_MAX];

	fixture(big, "big");
	time_one(big);
	/* The same without section headers: the pclntab is found by its magic. */
	snprintf(copy, sizeof(copy), "%s/big.nosections", C.tmp);
	CHECK_EQ_INT(copy_without_sections(big, copy), 0);
	time_one(copy);
	unlink(copy);
}

/* ---- the attach plan (go_attach) ---- */

/* An entry probe at file offset probe_off of the function name: on the JBE
 * of its stack check, within its first three instructions (Go 1.19's
 * prologues of every probed function have one). */
static void check_entry_probe(struct go_binary *gb, const char *name, uint64_t probe_off)
{
	uint64_t start = 0, size = 0, off = 0, skip;
	const uint8_t *code;

	CHECK_EQ_INT(go_binary_find_func(gb, name, &start, &size), 0);
	CHECK_EQ_INT(go_binary_vaddr_to_offset(gb, start, &off), 0);
	code = go_binary_bytes(gb, start, size);
	CHECK(code != NULL);
	skip = probe_off - off;
	CHECK(probe_off > off && skip <= 12);
	if (!code || probe_off <= off || skip > 12)
		return;
	CHECK(code[skip] == 0x76 || (code[skip] == 0x0f && code[skip + 1] == 0x86));
	/* what precedes it is the stack check: CMPQ 0x10(R14), SP or R12 */
	CHECK(code[skip - 4] == 0x49 || code[skip - 4] == 0x4d);
	CHECK_EQ_INT(code[skip - 3], 0x3b);
}

/* One planned function agrees with the pclntab, objdump's RETs and the
 * file offsets. */
static void check_func_plan(struct go_binary *gb, const char *bin, const char *name,
                            const struct go_func_plan *f)
{
	struct objdump_ref ref;
	uint64_t start = 0, size = 0, off = 0;

	CHECK_EQ_INT(go_binary_find_func(gb, name, &start, &size), 0);
	CHECK_EQ_INT(f->vaddr, start);
	CHECK_EQ_INT(f->size, size);
	check_entry_probe(gb, name, f->entry_off);
	CHECK_EQ_INT(objdump_ref(bin, start, size, &ref), 0);
	CHECK_EQ_INT(f->n_rets, ref.nrets);
	CHECK(f->n_rets > 0);
	for (uint32_t i = 0; i < f->n_rets && (int)i < ref.nrets; i++) {
		CHECK_EQ_INT(go_binary_vaddr_to_offset(gb, start + ref.rets[i], &off), 0);
		CHECK_EQ_INT(f->ret_offs[i], off);
	}
}

static void check_plan(const char *name)
{
	char bin[PATH_MAX];
	struct go_binary *gb = NULL;
	struct x86_rets *xr = x86_rets__new();
	struct go_attach_plan p;
	struct go_version v;
	const struct go_tls_offsets *o;

	fixture(bin, name);
	CHECK_EQ_INT(go_binary__open(bin, &gb), 0);
	if (!gb || !xr)
		goto cleanup;
	CHECK_EQ_INT(go_attach_plan_make(gb, xr, true, &p), 0);
	CHECK_EQ_STR(p.version, C.go_version);
	CHECK_EQ_STR(p.tls_skipped, "");
	CHECK(p.http);
	CHECK(p.tls);
	check_func_plan(gb, bin, GO_SYM_TLS_WRITE, &p.tls_write);
	check_func_plan(gb, bin, GO_SYM_TLS_READ, &p.tls_read);
	check_entry_probe(gb, GO_SYM_HTTP_PC_ROUNDTRIP, p.http_round_trip_off);
	check_entry_probe(gb, "net/http.persistConnWriter.Write", p.http_conn_write_off);
	printf("  %s: Write %u RETs, Read %u RETs\n", name, p.tls_write.n_rets, p.tls_read.n_rets);
	CHECK_EQ_INT(go_version_parse(C.go_version, &v), 0);
	o = go_offsets_tls(&v);
	CHECK(o != NULL);
	if (o) {
		CHECK_EQ_INT(p.tls_cookie,
		             PSCOPE_GO_TLS_COOKIE(o->conn_iface, o->iface_data, o->tcpconn_fd,
		                                  o->netfd_pfd, o->pfd_sysfd, 0));
		CHECK_EQ_INT(PSCOPE_GO_TLS_COOKIE_FIELD(p.tls_cookie, 4), o->pfd_sysfd);
	}
	/* --no-tls: net/http's linking probes only, nothing to report */
	CHECK_EQ_INT(go_attach_plan_make(gb, NULL, false, &p), 0);
	CHECK(p.http);
	CHECK(!p.tls);
	CHECK_EQ_STR(p.tls_skipped, "");
cleanup:
	x86_rets__free(xr);
	go_binary__free(gb);
}

static void test_plan_variants(void)
{
	check_plan("hello_default");
	check_plan("hello_stripped");
	check_plan("hello_pie");
	check_plan("hello_pie_full");
}

/* Replaces every occurrence of from by to (same length) in img. */
static int patch_all(uint8_t *img, size_t size, const char *from, const char *to)
{
	size_t n = strlen(from);
	int count = 0;

	for (size_t i = 0; i + n <= size; i++) {
		if (memcmp(img + i, from, n) == 0) {
			memcpy(img + i, to, n);
			count++;
		}
	}
	return count;
}

/* What is not recognised is not planned, with its reason: never a guess. */
static void test_plan_refusals(void)
{
	char bin[PATH_MAX], unknown[64];
	size_t size = 0;
	uint8_t *img, *work = NULL;
	struct go_binary *gb = NULL;
	struct x86_rets *xr = x86_rets__new();
	struct go_attach_plan p;
	uint64_t start = 0, off = 0;

	fixture(bin, "hello_stripped");
	img = read_all(bin, &size);
	CHECK(img != NULL && xr != NULL);
	if (!img || !xr)
		goto cleanup;
	work = malloc(size);
	if (!work)
		goto cleanup;

	/* a Go version outside the offsets table */
	memcpy(work, img, size);
	snprintf(unknown, sizeof(unknown), "%s", C.go_version);
	unknown[4] = '9'; /* go1.19.8 → go1.99.8 */
	CHECK(patch_all(work, size, C.go_version, unknown) > 0);
	CHECK_EQ_INT(go_binary__open_mem(work, size, &gb), 0);
	CHECK_EQ_INT(go_attach_plan_make(gb, xr, true, &p), 0);
	CHECK(!p.tls);
	CHECK(p.http); /* net/http's probes read no struct offsets */
	CHECK(strstr(p.tls_skipped, "offsets table") != NULL);
	go_binary__free(gb);
	gb = NULL;

	/* Read's code cannot be decoded: no TLS probes at all */
	memcpy(work, img, size);
	CHECK_EQ_INT(go_binary__open_mem(work, size, &gb), 0);
	CHECK_EQ_INT(go_binary_find_func(gb, GO_SYM_TLS_READ, &start, NULL), 0);
	CHECK_EQ_INT(go_binary_vaddr_to_offset(gb, start, &off), 0);
	go_binary__free(gb);
	gb = NULL;
	work[off] = 0x06; /* push es at its first instruction: invalid in 64-bit mode */
	CHECK_EQ_INT(go_binary__open_mem(work, size, &gb), 0);
	CHECK_EQ_INT(go_attach_plan_make(gb, xr, true, &p), 0);
	CHECK(!p.tls);
	CHECK_EQ_INT(p.tls_read.n_rets, 0);
	CHECK_EQ_INT(p.tls_write.n_rets, 0);
	CHECK(strstr(p.tls_skipped, "not decoded") != NULL);
	go_binary__free(gb);
	gb = NULL;

	/* not x86-64 (arm64's e_machine): recognised, not probed */
	memcpy(work, img, size);
	work[18] = 183;
	work[19] = 0;
	CHECK_EQ_INT(go_binary__open_mem(work, size, &gb), 0);
	CHECK_EQ_INT(go_attach_plan_make(gb, xr, true, &p), 0);
	CHECK(!p.tls && !p.http);
	CHECK(strstr(p.tls_skipped, "x86-64") != NULL);
	go_binary__free(gb);
	gb = NULL;

	/* not Go */
	CHECK_EQ_INT(go_attach_plan_make(NULL, xr, true, &p), -EINVAL);
cleanup:
	go_binary__free(gb);
	x86_rets__free(xr);
	free(work);
	free(img);
}

/* ---- setup ---- */

static void setup(void)
{
	const char *fx = getenv("GO_FIXTURES_DIR");
	const char *tmpdir = getenv("TMPDIR");
	char *p, *out;

	/* __FILE__ is tests/unit/kernel/test_go_binary.c under the root. */
	snprintf(C.root, sizeof(C.root), "%s", __FILE__);
	p = strstr(C.root, "tests/unit/kernel/");
	if (p)
		*p = '\0';
	if (!C.root[0])
		snprintf(C.root, sizeof(C.root), ".");
	snprintf(C.script, sizeof(C.script), "%s%stests/unit/kernel/build_go_fixtures.sh", C.root,
	         C.root[strlen(C.root) - 1] == '/' ? "" : "/");
	if (fx && *fx)
		snprintf(C.fixtures, sizeof(C.fixtures), "%s", fx);
	else
		snprintf(C.fixtures, sizeof(C.fixtures), "%s%sbuild/go-fixtures", C.root,
		         C.root[strlen(C.root) - 1] == '/' ? "" : "/");
	snprintf(C.tmp, sizeof(C.tmp), "%s/periscope-gobin.XXXXXX",
	         tmpdir && *tmpdir ? tmpdir : "/tmp");
	if (!mkdtemp(C.tmp)) {
		perror("mkdtemp");
		exit(1);
	}
	if (realpath("/usr/bin/go", C.debian_go) == NULL)
		C.debian_go[0] = '\0';
	out = run("command -v go >/dev/null && '%s' --goversion 2>/dev/null", C.script);
	if (!out) {
		printf("SKIP Go tests: no `go` in PATH (install golang-go)\n");
		return;
	}
	snprintf(C.go_version, sizeof(C.go_version), "%s", out);
	C.go_version[strcspn(C.go_version, "\n")] = '\0';
	free(out);
	printf("  building Go fixtures in %s (cached)\n", C.fixtures);
	fflush(stdout);
	/* the ~100 MB fixture takes minutes to build: only when asked (make bench) */
	C.big = getenv("GO_FIXTURES_BIG") && *getenv("GO_FIXTURES_BIG");
	out = run("'%s' '%s' %s >&2", C.script, C.fixtures, C.big ? "--big" : "");
	if (!out) {
		printf("SKIP Go tests: build_go_fixtures.sh failed\n");
		return;
	}
	free(out);
	C.have_go = 1;
}

/* Go-fixture tests: skipped, and not counted, without a Go toolchain. */
#define RUN_GO(fn)                                                                                 \
	do {                                                                                       \
		if (C.have_go)                                                                     \
			RUN(fn);                                                                   \
		else                                                                               \
			skip(#fn, "no Go toolchain or fixtures");                                  \
	} while (0)

int main(void)
{
	char *out;

	setup();
	RUN(test_version_parse);
	RUN(test_offsets_table);
	RUN(test_x86_rets_synthetic);
	RUN(test_not_elf);
	RUN(test_non_go_elf);
	RUN(test_synthetic_layouts);
	RUN_GO(test_default);
	RUN_GO(test_stripped);
	RUN_GO(test_pie_stripped);
	RUN_GO(test_pie_full);
	RUN_GO(test_iterate_vs_symtab);
	RUN_GO(test_scan_without_sections);
	RUN_GO(test_symtab_fallback);
	RUN_GO(test_hostile_go);
	RUN_GO(test_plan_variants);
	RUN_GO(test_plan_refusals);
	if (C.debian_go[0])
		RUN(test_debian_go);
	else
		skip("test_debian_go", "no /usr/bin/go");
	RUN(test_timing_debian_go);
	if (C.big)
		RUN_GO(test_timing_big);
	else
		skip("test_timing_big",
		     "GO_FIXTURES_BIG unset (the 100 MB fixture is for make bench)");
	if (skipped)
		printf("  %d test(s) skipped, not counted\n", skipped);
	out = run("rm -rf '%s'", C.tmp);
	free(out);
	return unit_summary("test_go_binary");
}
