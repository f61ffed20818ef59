/* go_binary.c — Go executables read without symbols: build info (version),
 * pclntab (functions), symtab fallback and vaddr → file offset mapping.
 * Layouts follow Go's runtime/symtab.go, debug/gosym and debug/buildinfo;
 * see go_binary.h for what is supported. All reads go through the bounded
 * helpers below (span, bytes_at): nothing read from the file is trusted. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/go_binary.h"

#define PCLN_MAGIC_12  0xfffffffbu /* Go 1.2 - 1.15 */
#define PCLN_MAGIC_116 0xfffffffau /* Go 1.16 - 1.17 */
#define PCLN_MAGIC_118 0xfffffff0u /* Go 1.18 - 1.19 */
#define PCLN_MAGIC_120 0xfffffff1u /* Go 1.20 and later */

#define BUILDINFO_MAGIC     "\xff Go buildinf:"
#define BUILDINFO_MAGIC_LEN 14
#define BUILDINFO_HDR_LEN   32
#define BUILDINFO_ALIGN     16
#define BUILDINFO_SCAN_MAX  (64 * 1024) /* as debug/buildinfo: the first 64 KiB of data */
#define BUILDINFO_FLAG_BE   0x1
#define BUILDINFO_FLAG_INL  0x2 /* Go >= 1.18: strings inline, varint-prefixed */

#define GO_FUNC_NAME_MAX    65536 /* longer names are taken as malformed */
#define SCAN_MAX_CANDIDATES 16    /* plausible pclntab headers validated at most */

#define R_RELATIVE_X86     8    /* R_X86_64_RELATIVE and R_386_RELATIVE */
#define R_RELATIVE_AARCH64 1027 /* R_AARCH64_RELATIVE */

enum pcln_ver {
	PCLN_NONE = 0,
	PCLN_12,
	PCLN_116,
	PCLN_118, /* and 1.20+: same layout for what is read here */
};

struct load_seg {
	uint64_t vaddr;
	uint64_t offset;
	uint64_t filesz;
	uint64_t memsz;
	uint32_t flags;
};

struct pclntab {
	enum pcln_ver ver;
	const uint8_t *base; /* the header; base[0 .. size) is in the image */
	uint64_t size;
	unsigned ptr_size;
	unsigned field_size; /* of functab fields: 4 (1.18+) or ptr_size */
	uint64_t nfunc;
	uint64_t text_start;
	uint64_t functab_off; /* from base */
	uint64_t funcdata_off;
	uint64_t names_off;
};

struct sym_func {
	uint64_t start;
	uint64_t size;
	const char *name;
};

struct go_binary {
	uint8_t *image;
	size_t size;
	bool mapped; /* image is an mmap (else malloc) */
	Elf *elf;
	bool big_endian;
	bool is64;
	bool pie;
	uint16_t machine;
	struct load_seg *segs;
	size_t nsegs;
	bool has_buildinfo;
	char version[GO_BINARY_VERSION_MAX + 1];
	enum go_funcs_source source;
	int funcs_err;
	struct pclntab tab;
	struct go_pclntab_info info;
	struct sym_func *syms; /* GO_FUNCS_SYMTAB only, sorted by start */
	size_t nsyms;
};

/* ---- bounded reads ---- */

/* base + off when [off, off + len) lies within [0, size), else NULL. */
static const uint8_t *span(const uint8_t *base, uint64_t size, uint64_t off, uint64_t len)
{
	if (off > size || len > size - off)
		return NULL;
	return base + off;
}

static uint64_t rd_u32(const struct go_binary *gb, const uint8_t *p)
{
	if (gb->big_endian)
		return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 | (uint64_t)p[2] << 8 | p[3];
	return (uint64_t)p[3] << 24 | (uint64_t)p[2] << 16 | (uint64_t)p[1] << 8 | p[0];
}

static uint64_t rd_u64(const struct go_binary *gb, const uint8_t *p)
{
	uint64_t hi, lo;

	if (gb->big_endian) {
		hi = rd_u32(gb, p);
		lo = rd_u32(gb, p + 4);
	} else {
		lo = rd_u32(gb, p);
		hi = rd_u32(gb, p + 4);
	}
	return hi << 32 | lo;
}

/* A 4- or 8-byte word. */
static uint64_t rd_word(const struct go_binary *gb, const uint8_t *p, unsigned size)
{
	return size == 8 ? rd_u64(gb, p) : rd_u32(gb, p);
}

static const struct load_seg *seg_of(const struct go_binary *gb, uint64_t vaddr)
{
	for (size_t i = 0; i < gb->nsegs; i++) {
		const struct load_seg *s = &gb->segs[i];

		if (vaddr >= s->vaddr && vaddr - s->vaddr < s->filesz)
			return s;
	}
	return NULL;
}

const uint8_t *go_binary_bytes(const struct go_binary *gb, uint64_t vaddr, uint64_t len)
{
	const struct load_seg *s;
	uint64_t rel;

	if (!gb)
		return NULL;
	s = seg_of(gb, vaddr);
	if (!s)
		return NULL;
	rel = vaddr - s->vaddr;
	if (len > s->filesz - rel || s->offset > UINT64_MAX - rel)
		return NULL;
	return span(gb->image, gb->size, s->offset + rel, len);
}

int go_binary_vaddr_to_offset(const struct go_binary *gb, uint64_t vaddr, uint64_t *offset)
{
	const uint8_t *p = go_binary_bytes(gb, vaddr, 1);

	if (!p)
		return -ERANGE;
	if (offset)
		*offset = (uint64_t)(p - gb->image);
	return 0;
}

/* Is [start, end) inside one executable segment's memory? */
static bool in_exec_seg(const struct go_binary *gb, uint64_t start, uint64_t end)
{
	for (size_t i = 0; i < gb->nsegs; i++) {
		const struct load_seg *s = &gb->segs[i];

		if (!(s->flags & PF_X) || start < s->vaddr || end < start)
			continue;
		if (end - s->vaddr <= s->memsz)
			return true;
	}
	return false;
}

/* The addend of a RELATIVE dynamic relocation (RELA) at vaddr, for words the
 * linker left unrelocated in the file (externally linked PIE). 0 when none. */
static uint64_t reloc_addend(const struct go_binary *gb, uint64_t vaddr)
{
	unsigned w = gb->is64 ? 8 : 4;
	uint64_t rela = 0, relasz = 0, relaent = 0;
	const uint8_t *d = NULL, *r;
	GElf_Phdr ph;
	size_t phnum;

	if (elf_getphdrnum(gb->elf, &phnum) != 0)
		return 0;
	for (size_t i = 0; i < phnum && !d; i++) {
		if (gelf_getphdr(gb->elf, (int)i, &ph) && ph.p_type == PT_DYNAMIC)
			d = span(gb->image, gb->size, ph.p_offset, ph.p_filesz);
	}
	if (!d)
		return 0;
	for (uint64_t o = 0; o + 2 * w <= ph.p_filesz; o += 2 * w) {
		int64_t tag = gb->is64 ? (int64_t)rd_u64(gb, d + o) : (int32_t)rd_u32(gb, d + o);
		uint64_t val = rd_word(gb, d + o + w, w);

		if (tag == DT_NULL)
			break;
		if (tag == DT_RELA)
			rela = val;
		else if (tag == DT_RELASZ)
			relasz = val;
		else if (tag == DT_RELAENT)
			relaent = val;
	}
	if (relaent != 3 * (uint64_t)w || !relasz)
		return 0;
	r = go_binary_bytes(gb, rela, relasz);
	if (!r)
		return 0;
	for (uint64_t o = 0; o + relaent <= relasz; o += relaent) {
		uint64_t info = rd_word(gb, r + o + w, w);
		uint64_t type = gb->is64 ? (info & 0xffffffffu) : (info & 0xffu);

		if (rd_word(gb, r + o, w) != vaddr)
			continue;
		if (type == R_RELATIVE_X86 || (gb->is64 && type == R_RELATIVE_AARCH64))
			return rd_word(gb, r + o + 2 * w, w);
	}
	return 0;
}

/* A pointer-sized word at vaddr, relocated when the file holds 0 there. */
static int rd_ptr_at(const struct go_binary *gb, uint64_t vaddr, unsigned ptr_size, uint64_t *out)
{
	const uint8_t *p = go_binary_bytes(gb, vaddr, ptr_size);

	if (!p)
		return -EBADMSG;
	*out = rd_word(gb, p, ptr_size);
	if (!*out)
		*out = reloc_addend(gb, vaddr);
	return 0;
}

/* ---- sections ---- */

struct section {
	const uint8_t *data; /* in the image; NULL when absent */
	uint64_t size;
	uint64_t addr;
};

/* The section called name (allocated, with file contents), or data NULL. */
static struct section find_section(const struct go_binary *gb, const char *name)
{
	struct section out = {0};
	Elf_Scn *scn = NULL;
	size_t shstrndx;

	if (elf_getshdrstrndx(gb->elf, &shstrndx) != 0)
		return out;
	while ((scn = elf_nextscn(gb->elf, scn)) != NULL) {
		GElf_Shdr sh;
		const char *n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type == SHT_NOBITS)
			continue;
		n = elf_strptr(gb->elf, shstrndx, sh.sh_name);
		if (!n || strcmp(n, name) != 0)
			continue;
		out.data = span(gb->image, gb->size, sh.sh_offset, sh.sh_size);
		out.size = out.data ? sh.sh_size : 0;
		out.addr = sh.sh_addr;
		break;
	}
	return out;
}

/* ---- build info ---- */

static void set_version(struct go_binary *gb, const uint8_t *s, uint64_t len)
{
	if (len > GO_BINARY_VERSION_MAX)
		len = GO_BINARY_VERSION_MAX;
	for (uint64_t i = 0; i < len; i++) {
		if (s[i] < 0x20 || s[i] > 0x7e)
			return; /* not a version string: leave it unknown */
	}
	memcpy(gb->version, s, len);
	gb->version[len] = '\0';
}

/* Reads the version from the build info header at vaddr (hdr: its bytes,
 * avail of them in the file). */
static void parse_buildinfo(struct go_binary *gb, const uint8_t *hdr, uint64_t avail,
                            uint64_t vaddr)
{
	unsigned ptr_size = hdr[14];
	unsigned flags = hdr[15];
	uint64_t str, data, len;
	const uint8_t *p;

	gb->has_buildinfo = true;
	if (flags & BUILDINFO_FLAG_INL) {
		/* uvarint length, then the bytes */
		uint64_t off = BUILDINFO_HDR_LEN;
		unsigned shift = 0;

		len = 0;
		for (;;) {
			if (off >= avail || shift > 63)
				return;
			len |= (uint64_t)(hdr[off] & 0x7f) << shift;
			if (!(hdr[off++] & 0x80))
				break;
			shift += 7;
		}
		p = span(hdr, avail, off, len);
		if (p)
			set_version(gb, p, len);
		return;
	}
	/* Pointer format: a pointer to a Go string header {data, len}. */
	if (ptr_size != 4 && ptr_size != 8)
		return;
	if (rd_ptr_at(gb, vaddr + 16, ptr_size, &str) != 0)
		return;
	if (rd_ptr_at(gb, str, ptr_size, &data) != 0)
		return;
	p = go_binary_bytes(gb, str + ptr_size, ptr_size);
	if (!p)
		return;
	len = rd_word(gb, p, ptr_size);
	p = go_binary_bytes(gb, data, len);
	if (p)
		set_version(gb, p, len);
}

static void find_buildinfo(struct go_binary *gb)
{
	struct section sec = find_section(gb, ".go.buildinfo");
	const uint8_t *base;
	uint64_t n;

	if (sec.data && sec.size >= BUILDINFO_HDR_LEN &&
	    memcmp(sec.data, BUILDINFO_MAGIC, BUILDINFO_MAGIC_LEN) == 0) {
		parse_buildinfo(gb, sec.data, sec.size, sec.addr);
		return;
	}
	/* No section: the start of a writable, non-executable segment (the
	 * first one, or in PIE builds the one after the RELRO data). */
	for (size_t i = 0; i < gb->nsegs; i++) {
		const struct load_seg *s = &gb->segs[i];

		if ((s->flags & (PF_W | PF_X)) != PF_W || !s->filesz)
			continue;
		n = s->filesz < BUILDINFO_SCAN_MAX ? s->filesz : BUILDINFO_SCAN_MAX;
		base = go_binary_bytes(gb, s->vaddr, n);
		if (!base)
			continue;
		for (uint64_t off =
		         (BUILDINFO_ALIGN - s->vaddr % BUILDINFO_ALIGN) % BUILDINFO_ALIGN;
		     off + BUILDINFO_HDR_LEN <= n; off += BUILDINFO_ALIGN) {
			if (memcmp(base + off, BUILDINFO_MAGIC, BUILDINFO_MAGIC_LEN) == 0) {
				parse_buildinfo(gb, base + off, n - off, s->vaddr + off);
				return;
			}
		}
	}
}

/* ---- pclntab ---- */

/* Entry address of function i (i == nfunc: the end of the last one). */
static uint64_t tab_entry(const struct go_binary *gb, const struct pclntab *t, uint64_t i)
{
	const uint8_t *p = t->base + t->functab_off + 2 * i * t->field_size;
	uint64_t v = rd_word(gb, p, t->field_size);

	return t->ver >= PCLN_118 ? t->text_start + v : v;
}

/* Function i without its name's end checked: entry, size, and where the
 * name starts with avail bytes of the table after it. */
static int tab_func_raw(const struct go_binary *gb, const struct pclntab *t, uint64_t i,
                        struct go_func *out, uint64_t *avail)
{
	const uint8_t *fp, *name;
	uint64_t funcoff, entry, next, nameoff;
	unsigned entry_size = t->ver >= PCLN_118 ? 4 : t->ptr_size;
	const uint8_t *ft = t->base + t->functab_off;

	entry = tab_entry(gb, t, i);
	next = tab_entry(gb, t, i + 1);
	funcoff = rd_word(gb, ft + (2 * i + 1) * t->field_size, t->field_size);
	if (funcoff > UINT64_MAX - t->funcdata_off)
		return -EBADMSG;
	fp = span(t->base, t->size, t->funcdata_off + funcoff, entry_size + 4);
	if (!fp)
		return -EBADMSG;
	/* The _func's own entry must agree with the table's. */
	if (rd_word(gb, fp, entry_size) != rd_word(gb, ft + 2 * i * t->field_size, t->field_size))
		return -EBADMSG;
	nameoff = rd_u32(gb, fp + entry_size);
	if (nameoff & 0x80000000u) /* int32 in the file: negative is malformed */
		return -EBADMSG;
	name = span(t->base, t->size, t->names_off + nameoff, 1);
	if (!name)
		return -EBADMSG;
	out->name = (const char *)name;
	out->start = entry;
	out->size = next - entry;
	*avail = t->size - (uint64_t)(name - t->base);
	return 0;
}

static int tab_func(const struct go_binary *gb, const struct pclntab *t, uint64_t i,
                    struct go_func *out)
{
	uint64_t avail;
	int r = tab_func_raw(gb, t, i, out, &avail);

	if (r)
		return r;
	if (avail > GO_FUNC_NAME_MAX + 1)
		avail = GO_FUNC_NAME_MAX + 1;
	if (!out->name[0] || !memchr(out->name, '\0', avail))
		return -EBADMSG;
	return 0;
}

/* Parses and validates a pclntab at base[0 .. size) (vaddr: where it is
 * mapped). 0, -ENOENT (no known magic), -EBADMSG (malformed). */
static int tab_parse(struct go_binary *gb, const uint8_t *base, uint64_t size, uint64_t vaddr,
                     struct pclntab *t)
{
	uint64_t magic, w[8] = {0}, nwords, prev, first, last;
	unsigned ptr;
	struct go_func f;
	int err = -EBADMSG;

	memset(t, 0, sizeof(*t));
	if (size < 16)
		return -ENOENT;
	magic = rd_u32(gb, base);
	if (magic == PCLN_MAGIC_120 || magic == PCLN_MAGIC_118)
		t->ver = PCLN_118, nwords = 8;
	else if (magic == PCLN_MAGIC_116)
		t->ver = PCLN_116, nwords = 7;
	else if (magic == PCLN_MAGIC_12)
		t->ver = PCLN_12, nwords = 1;
	else
		return -ENOENT;
	ptr = base[7];
	if (base[4] || base[5] || (base[6] != 1 && base[6] != 2 && base[6] != 4) ||
	    (ptr != 4 && ptr != 8))
		goto cleanup;
	if (8 + nwords * ptr > size)
		goto cleanup;
	for (uint64_t i = 0; i < nwords; i++)
		w[i] = rd_word(gb, base + 8 + i * ptr, ptr);
	t->base = base;
	t->size = size;
	t->ptr_size = ptr;
	t->nfunc = w[0];
	if (t->ver == PCLN_118) {
		t->field_size = 4;
		t->text_start = w[2];
		t->names_off = w[3];
		t->functab_off = w[7];
		if (!t->text_start)
			t->text_start = reloc_addend(gb, vaddr + 8 + 2 * ptr);
		if (!t->text_start)
			t->text_start = find_section(gb, ".text").addr;
	} else if (t->ver == PCLN_116) {
		t->field_size = ptr;
		t->names_off = w[2];
		t->functab_off = w[6];
	} else {
		t->field_size = ptr;
		t->names_off = 0;
		t->functab_off = 8 + ptr;
	}
	t->funcdata_off = t->ver == PCLN_12 ? 0 : t->functab_off;
	if (t->names_off >= size || t->functab_off >= size || t->nfunc == 0)
		goto cleanup;
	/* (2 * nfunc + 1) fields must fit: bound nfunc before multiplying. */
	if (t->nfunc > (size - t->functab_off) / (2 * t->field_size) ||
	    (2 * t->nfunc + 1) * t->field_size > size - t->functab_off)
		goto cleanup;
	if (t->ver == PCLN_118 && !t->text_start)
		goto cleanup;
	/* Entries sorted, all inside one executable segment. */
	prev = 0;
	for (uint64_t i = 0; i <= t->nfunc; i++) {
		uint64_t e = tab_entry(gb, t, i);

		if (e < prev)
			goto cleanup;
		prev = e;
	}
	first = tab_entry(gb, t, 0);
	last = tab_entry(gb, t, t->nfunc);
	if (t->ver == PCLN_118 && first < t->text_start) /* text_start + off wrapped */
		goto cleanup;
	if (!in_exec_seg(gb, first, last))
		goto cleanup;
	/* The first and last functions must read cleanly. */
	if (tab_func(gb, t, 0, &f) != 0 || tab_func(gb, t, t->nfunc - 1, &f) != 0)
		goto cleanup;
	gb->info = (struct go_pclntab_info){
	    .magic = (uint32_t)magic,
	    .min_lc = base[6],
	    .ptr_size = (uint8_t)ptr,
	    .nfunc = t->nfunc,
	    .nfiles = t->ver == PCLN_12 ? 0 : w[1],
	    .text_start = t->ver == PCLN_118 ? t->text_start : 0,
	    .vaddr = vaddr,
	    .size = size,
	    .funcname_off = t->names_off,
	    .cu_off = t->ver == PCLN_118   ? w[4]
	              : t->ver == PCLN_116 ? w[3]
	                                   : 0,
	    .filetab_off = t->ver == PCLN_118   ? w[5]
	                   : t->ver == PCLN_116 ? w[4]
	                                        : 0,
	    .pctab_off = t->ver == PCLN_118   ? w[6]
	                 : t->ver == PCLN_116 ? w[5]
	                                      : 0,
	    .functab_off = t->functab_off,
	};
	err = 0;
cleanup:
	if (err)
		memset(t, 0, sizeof(*t));
	return err;
}

/* The cheap checks of a pclntab header (16 bytes readable at p). */
static bool plausible_header(const struct go_binary *gb, const uint8_t *p)
{
	uint64_t magic = rd_u32(gb, p);

	if (magic != PCLN_MAGIC_120 && magic != PCLN_MAGIC_118 && magic != PCLN_MAGIC_116 &&
	    magic != PCLN_MAGIC_12)
		return false;
	return !p[4] && !p[5] && (p[6] == 1 || p[6] == 2 || p[6] == 4) && (p[7] == 4 || p[7] == 8);
}

/* Looks for a pclntab by its magic in the loadable segments: non-executable
 * ones first (where Go puts it), then the rest. */
static int tab_scan(struct go_binary *gb)
{
	static const uint8_t le[] = {0xff, 0xff, 0xff, 0x00, 0x00}; /* bytes 1..5 of LE magic */
	int candidates = 0, err = -ENOENT;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < gb->nsegs; i++) {
			const struct load_seg *s = &gb->segs[i];
			const uint8_t *seg = go_binary_bytes(gb, s->vaddr, s->filesz);
			const uint8_t *p;
			uint64_t off = 0;

			if (!seg || !s->filesz || !!(s->flags & PF_X) != (pass == 1))
				continue;
			while (off + 16 <= s->filesz) {
				uint64_t cand;
				int r;

				if (gb->big_endian) {
					p = memmem(seg + off, s->filesz - off, le, 3);
					cand = p ? (uint64_t)(p - seg) : 0;
				} else {
					p = memmem(seg + off + 1, s->filesz - off - 1, le,
					           sizeof(le));
					cand = p ? (uint64_t)(p - seg) - 1 : 0;
				}
				if (!p)
					break;
				off = cand + 1;
				if ((s->vaddr + cand) % 4 != 0 || s->filesz - cand < 16 ||
				    !plausible_header(gb, seg + cand))
					continue;
				if (++candidates > SCAN_MAX_CANDIDATES)
					return err;
				r = tab_parse(gb, seg + cand, s->filesz - cand, s->vaddr + cand,
				              &gb->tab);
				if (r == 0)
					return 0;
				if (r == -EBADMSG)
					err = -EBADMSG;
			}
		}
	}
	return err;
}

/* ---- symtab ---- */

/* Calls fn for each defined STT_FUNC symbol of .symtab until it returns
 * non-zero (returned). -ENOENT without .symtab. */
static int symtab_each(const struct go_binary *gb,
                       int (*fn)(void *ctx, const char *name, uint64_t value, uint64_t size),
                       void *ctx)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(gb->elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize)
			continue;
		data = elf_getdata(scn, NULL);
		if (!data)
			return -EBADMSG;
		n = data->d_size / sh.sh_entsize;
		for (size_t i = 0; i < n; i++) {
			GElf_Sym sym;
			const char *name;
			int r;

			if (!gelf_getsym(data, (int)i, &sym) ||
			    GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF)
				continue;
			name = elf_strptr(gb->elf, sh.sh_link, sym.st_name);
			if (!name || !*name)
				continue;
			r = fn(ctx, name, sym.st_value, sym.st_size);
			if (r)
				return r;
		}
		return 0;
	}
	return -ENOENT;
}

struct sym_find {
	const char *name;
	uint64_t start;
	uint64_t size;
};

static int sym_find_cb(void *ctx, const char *name, uint64_t value, uint64_t size)
{
	struct sym_find *q = ctx;

	if (strcmp(name, q->name) != 0)
		return 0;
	q->start = value;
	q->size = size;
	return 1;
}

int go_binary_symtab_find(const struct go_binary *gb, const char *name, uint64_t *start,
                          uint64_t *size)
{
	struct sym_find q = {.name = name};
	int r;

	if (!gb || !name)
		return -EINVAL;
	r = symtab_each(gb, sym_find_cb, &q);
	if (r < 0)
		return r;
	if (r == 0)
		return -ENOENT;
	if (start)
		*start = q.start;
	if (size)
		*size = q.size;
	return 0;
}

struct sym_collect {
	struct sym_func *v;
	size_t n, cap;
};

static int sym_collect_cb(void *ctx, const char *name, uint64_t value, uint64_t size)
{
	struct sym_collect *c = ctx;

	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 256;
		struct sym_func *v = realloc(c->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = (struct sym_func){.start = value, .size = size, .name = name};
	return 0;
}

static int sym_cmp(const void *a, const void *b)
{
	const struct sym_func *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

/* Loads .symtab's functions as the function table (sizes from the symbols,
 * else up to the next symbol). */
static int syms_load(struct go_binary *gb)
{
	struct sym_collect c = {0};
	int err;

	err = symtab_each(gb, sym_collect_cb, &c);
	if (err < 0)
		goto cleanup;
	if (!c.n) {
		err = -ENOENT;
		goto cleanup;
	}
	qsort(c.v, c.n, sizeof(*c.v), sym_cmp);
	for (size_t i = 0; i < c.n; i++) {
		if (!c.v[i].size && i + 1 < c.n)
			c.v[i].size = c.v[i + 1].start - c.v[i].start;
	}
	gb->syms = c.v;
	gb->nsyms = c.n;
	c.v = NULL;
	err = 0;
cleanup:
	free(c.v);
	return err;
}

/* ---- open ---- */

static int load_segments(struct go_binary *gb)
{
	size_t phnum;
	int err = 0;

	if (elf_getphdrnum(gb->elf, &phnum) != 0)
		return 0; /* no program headers: nothing is mapped */
	if (phnum > 65536)
		return -ENOEXEC;
	gb->segs = calloc(phnum ? phnum : 1, sizeof(*gb->segs));
	if (!gb->segs) {
		err = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(gb->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (ph.p_filesz > ph.p_memsz || ph.p_vaddr > UINT64_MAX - ph.p_memsz)
			continue; /* malformed: never map through it */
		gb->segs[gb->nsegs++] = (struct load_seg){
		    .vaddr = ph.p_vaddr,
		    .offset = ph.p_offset,
		    .filesz = ph.p_filesz,
		    .memsz = ph.p_memsz,
		    .flags = ph.p_flags,
		};
	}
cleanup:
	return err;
}

static void find_funcs(struct go_binary *gb)
{
	static const char *const names[] = {".gopclntab", ".data.rel.ro.gopclntab"};
	int err = -ENOENT;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct section s = find_section(gb, names[i]);
		int r;

		if (!s.data)
			continue;
		r = tab_parse(gb, s.data, s.size, s.addr, &gb->tab);
		if (r == 0) {
			gb->source = GO_FUNCS_PCLNTAB_SECTION;
			gb->funcs_err = 0;
			return;
		}
		err = r == -ENOENT ? -EBADMSG : r; /* a section of that name must parse */
	}
	if (err == -ENOENT || err == -EBADMSG) {
		int r = tab_scan(gb);

		if (r == 0) {
			gb->source = GO_FUNCS_PCLNTAB_SCAN;
			gb->funcs_err = 0;
			return;
		}
		if (r == -EBADMSG)
			err = r;
	}
	if (syms_load(gb) == 0) {
		gb->source = GO_FUNCS_SYMTAB;
		gb->funcs_err = 0;
		return;
	}
	gb->source = GO_FUNCS_NONE;
	gb->funcs_err = err;
}

/* Takes ownership of image (mapped: munmap'd, else free'd) in all cases. */
static int open_image(uint8_t *image, size_t size, bool mapped, struct go_binary **out)
{
	struct go_binary *gb = NULL;
	GElf_Ehdr eh;
	int err;

	gb = calloc(1, sizeof(*gb));
	if (!gb) {
		if (mapped)
			munmap(image, size);
		else
			free(image);
		err = -ENOMEM;
		goto cleanup;
	}
	gb->image = image;
	gb->size = size;
	gb->mapped = mapped;
	if (elf_version(EV_CURRENT) == EV_NONE) {
		err = -ENOEXEC;
		goto cleanup;
	}
	gb->elf = elf_memory((char *)image, size);
	if (!gb->elf || elf_kind(gb->elf) != ELF_K_ELF || !gelf_getehdr(gb->elf, &eh)) {
		err = -ENOEXEC;
		goto cleanup;
	}
	gb->is64 = eh.e_ident[EI_CLASS] == ELFCLASS64;
	gb->big_endian = eh.e_ident[EI_DATA] == ELFDATA2MSB;
	gb->machine = eh.e_machine;
	gb->pie = eh.e_type == ET_DYN;
	err = load_segments(gb);
	if (err)
		goto cleanup;
	find_buildinfo(gb);
	find_funcs(gb);
	*out = gb;
	gb = NULL;
	err = 0;
cleanup:
	go_binary__free(gb);
	return err;
}

int go_binary__open(const char *path, struct go_binary **out)
{
	struct stat st;
	void *map;
	int fd = -1, err;

	if (!path || !out)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto cleanup;
	}
	if (fstat(fd, &st) != 0) {
		err = -errno;
		goto cleanup;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)EI_NIDENT) {
		err = -ENOEXEC;
		goto cleanup;
	}
	if ((uint64_t)st.st_size > GO_BINARY_MAX_FILE) {
		err = -EFBIG;
		goto cleanup;
	}
	/* Private and writable so libelf may convert in place without touching
	 * the file; pages are only copied if written. */
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		err = -errno;
		goto cleanup;
	}
	err = open_image(map, (size_t)st.st_size, true, out);
cleanup:
	if (fd >= 0)
		close(fd);
	return err;
}

int go_binary__open_mem(const void *data, size_t size, struct go_binary **out)
{
	uint8_t *copy;

	if ((!data && size) || !out)
		return -EINVAL;
	if (size < EI_NIDENT)
		return -ENOEXEC;
	if ((uint64_t)size > GO_BINARY_MAX_FILE)
		return -EFBIG;
	copy = malloc(size);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, size);
	return open_image(copy, size, false, out);
}

void go_binary__free(struct go_binary *gb)
{
	if (!gb)
		return;
	if (gb->elf)
		elf_end(gb->elf);
	if (gb->mapped)
		munmap(gb->image, gb->size);
	else
		free(gb->image);
	free(gb->segs);
	free(gb->syms);
	free(gb);
}

/* ---- queries ---- */

bool go_binary_is_go(const struct go_binary *gb)
{
	if (!gb)
		return false;
	return gb->has_buildinfo || gb->source == GO_FUNCS_PCLNTAB_SECTION ||
	       gb->source == GO_FUNCS_PCLNTAB_SCAN;
}

const char *go_binary_version(const struct go_binary *gb)
{
	return gb ? gb->version : "";
}

uint16_t go_binary_machine(const struct go_binary *gb)
{
	return gb ? gb->machine : 0;
}

bool go_binary_is_pie(const struct go_binary *gb)
{
	return gb && gb->pie;
}

enum go_funcs_source go_binary_funcs_source(const struct go_binary *gb)
{
	return gb ? gb->source : GO_FUNCS_NONE;
}

int go_binary_funcs_error(const struct go_binary *gb)
{
	return gb ? gb->funcs_err : -EINVAL;
}

int go_binary_pclntab_info(const struct go_binary *gb, struct go_pclntab_info *out)
{
	if (!gb || !out)
		return -EINVAL;
	if (gb->source != GO_FUNCS_PCLNTAB_SECTION && gb->source != GO_FUNCS_PCLNTAB_SCAN)
		return -ENOENT;
	*out = gb->info;
	return 0;
}

size_t go_binary_func_count(const struct go_binary *gb)
{
	if (!gb)
		return 0;
	if (gb->source == GO_FUNCS_SYMTAB)
		return gb->nsyms;
	if (gb->source == GO_FUNCS_NONE)
		return 0;
	return (size_t)gb->tab.nfunc;
}

int go_binary_func_at(const struct go_binary *gb, size_t i, struct go_func *out)
{
	if (!gb || !out)
		return -EINVAL;
	if (i >= go_binary_func_count(gb))
		return -ERANGE;
	if (gb->source == GO_FUNCS_SYMTAB) {
		out->name = gb->syms[i].name;
		out->start = gb->syms[i].start;
		out->size = gb->syms[i].size;
		return 0;
	}
	return tab_func(gb, &gb->tab, i, out);
}

int go_binary_find_func(const struct go_binary *gb, const char *name, uint64_t *start,
                        uint64_t *size)
{
	size_t n = go_binary_func_count(gb), len;
	int err = -ENOENT;

	if (!gb || !name)
		return -EINVAL;
	len = strlen(name);
	for (size_t i = 0; i < n; i++) {
		struct go_func f;
		uint64_t avail = UINT64_MAX;
		int r;

		/* pclntab: compare len + 1 bytes in place, no NUL search. */
		if (gb->source == GO_FUNCS_SYMTAB)
			r = go_binary_func_at(gb, i, &f);
		else
			r = tab_func_raw(gb, &gb->tab, i, &f, &avail);
		if (r) {
			err = r; /* keep looking: one bad entry does not hide the rest */
			continue;
		}
		if (avail <= len || f.name[0] != name[0] || memcmp(f.name, name, len + 1) != 0)
			continue;
		if (start)
			*start = f.start;
		if (size)
			*size = f.size;
		return 0;
	}
	return err;
}
