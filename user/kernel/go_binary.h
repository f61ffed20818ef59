/* go_binary.h — reads what uprobes on a Go executable need from its ELF file,
 * without symbols or DWARF:
 *   - whether it is Go, and its Go version, from the build info blob
 *     (".go.buildinfo", else the "\xff Go buildinf:" magic at the start of the
 *     first writable segment); both the pointer format (Go < 1.18) and the
 *     inline-string format (Go >= 1.18);
 *   - its functions (name, start address, size) from the pclntab: the
 *     ".gopclntab" section, ".data.rel.ro.gopclntab" in PIE builds, else a
 *     scan of the loadable segments for the table's magic (0xfffffff1 Go 1.20+,
 *     0xfffffff0 1.18-1.19, 0xfffffffa 1.16-1.17, 0xfffffffb 1.2-1.15), each
 *     candidate validated (header, bounds, sorted entries inside an executable
 *     segment) before it is used; ".symtab" when there is no usable pclntab;
 *   - file offsets of virtual addresses through the PT_LOAD program headers
 *     (uprobes are placed by file offset).
 * The file is mapped read-only once; names and code bytes point into that
 * mapping and live as long as the object. Every offset read from the file is
 * bounds-checked: a hostile or truncated file gives a negative errno, never a
 * read outside the image. A function's size runs to the next function's
 * entry (so it includes the alignment padding after it); a name longer than
 * 64 KiB, or running off the table, makes its entry malformed. Binaries with
 * several text sections (very large ppc64/arm builds) are not supported: the
 * entries' validation rejects them rather than guessing.
 * ELF32/ELF64, either byte order; the x86-64 uprobe path only uses ELF64 LE. */
#ifndef PERISCOPE_KERNEL_GO_BINARY_H
#define PERISCOPE_KERNEL_GO_BINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest file go_binary__open maps (bigger files give -EFBIG). */
#define GO_BINARY_MAX_FILE (4ULL << 30)
/* Longest Go version string kept ("go1.21.4", "devel go1.22-abcdef ..."). */
#define GO_BINARY_VERSION_MAX 64

struct go_binary;

/* Where the function table came from. */
enum go_funcs_source {
	GO_FUNCS_NONE = 0,        /* no usable table: see go_binary_funcs_error */
	GO_FUNCS_PCLNTAB_SECTION, /* .gopclntab or .data.rel.ro.gopclntab */
	GO_FUNCS_PCLNTAB_SCAN,    /* found by its magic in a loadable segment */
	GO_FUNCS_SYMTAB,          /* .symtab function symbols */
};

/* One function. name points into the file's mapping (NUL-terminated). */
struct go_func {
	const char *name;
	uint64_t start; /* virtual address (as linked; add the load bias for PIE) */
	uint64_t size;  /* bytes up to the next function */
};

/* The pclntab header, as read (for logs and tests). */
struct go_pclntab_info {
	uint32_t magic;      /* 0xfffffff1, 0xfffffff0, 0xfffffffa or 0xfffffffb */
	uint8_t min_lc;      /* instruction size quantum (1 on x86) */
	uint8_t ptr_size;    /* 4 or 8 */
	uint64_t nfunc;      /* functions in the table */
	uint64_t nfiles;     /* 0 before Go 1.16 (not in the header) */
	uint64_t text_start; /* base of entry offsets (Go >= 1.18), else 0 */
	uint64_t vaddr;      /* address of the header */
	uint64_t size;       /* bytes of the table region used for bounds */
	uint64_t funcname_off, cu_off, filetab_off, pctab_off, functab_off; /* from the header */
};

/* Opens and inspects path. 0 and *out on success, even when the ELF file is
 * not Go (go_binary_is_go says). Errors: -ENOEXEC (not ELF, or its headers
 * are unreadable), -EFBIG, -ENOMEM, -errno of open/fstat/mmap. */
int go_binary__open(const char *path, struct go_binary **out);
/* The same on an in-memory image (copied; data may be freed afterwards). */
int go_binary__open_mem(const void *data, size_t size, struct go_binary **out);
void go_binary__free(struct go_binary *gb); /* accepts NULL */

/* True when the file has Go build info or a valid pclntab. */
bool go_binary_is_go(const struct go_binary *gb);
/* The Go version ("go1.19.8"), "" when unknown. */
const char *go_binary_version(const struct go_binary *gb);
/* ELF e_machine (EM_X86_64 = 62, EM_AARCH64 = 183). */
uint16_t go_binary_machine(const struct go_binary *gb);
/* True for ET_DYN (PIE): addresses are then relative to the load bias. */
bool go_binary_is_pie(const struct go_binary *gb);

enum go_funcs_source go_binary_funcs_source(const struct go_binary *gb);
/* Why there is no function table (GO_FUNCS_NONE): -ENOENT none found,
 * -EBADMSG a table was found but is malformed; 0 when there is one. */
int go_binary_funcs_error(const struct go_binary *gb);
/* The pclntab header: 0, or -ENOENT when functions come from elsewhere. */
int go_binary_pclntab_info(const struct go_binary *gb, struct go_pclntab_info *out);

/* Number of functions; iterate with go_binary_func_at(gb, 0 .. count-1). */
size_t go_binary_func_count(const struct go_binary *gb);
/* The i-th function (pclntab order: by address). 0, -ERANGE past the end,
 * -EBADMSG when that entry is malformed. */
int go_binary_func_at(const struct go_binary *gb, size_t i, struct go_func *out);
/* Finds a function by its full Go name ("crypto/tls.(*Conn).Write"): 0 and
 * the start and size (either pointer may be NULL), -ENOENT when absent or when there is
 * no table, -EBADMSG when the table is malformed. */
int go_binary_find_func(const struct go_binary *gb, const char *name, uint64_t *start,
                        uint64_t *size);
/* The same from .symtab only (STT_FUNC), whatever the table in use; -ENOENT
 * without .symtab. For cross-checks. */
int go_binary_symtab_find(const struct go_binary *gb, const char *name, uint64_t *start,
                          uint64_t *size);

/* File offset of vaddr through the PT_LOAD headers: 0, or -ERANGE when no
 * segment maps it from the file. */
int go_binary_vaddr_to_offset(const struct go_binary *gb, uint64_t vaddr, uint64_t *offset);
/* The len bytes at vaddr, read from the file image (all in one segment's
 * file-backed part), or NULL. Valid until go_binary__free. */
const uint8_t *go_binary_bytes(const struct go_binary *gb, uint64_t vaddr, uint64_t len);

#endif
