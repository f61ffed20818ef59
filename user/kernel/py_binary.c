/* py_binary.c — finds, in CPython's files, the places the asyncio probes go
 * (py_binary.h): Context.run through its method table, _asyncio's calls of
 * two of its PLT stubs through its relocations and a decode of its code.
 * x86-64 ELF only. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <glob.h>
#include <libelf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/py_binary.h"
#include "kernel/x86_ret.h"

#define METH_FASTCALL_KEYWORDS         0x82 /* METH_FASTCALL | METH_KEYWORDS */
#define PY_VECTORCALL_ARGUMENTS_OFFSET (1ULL << 63)
#define MAX_NAME_HITS                  64

struct elf_file {
	int fd;
	Elf *elf;
	GElf_Ehdr eh;
	uint64_t size; /* of the file: a header may claim more */
};

static int elf_file_open(const char *path, struct elf_file *f)
{
	struct stat st;

	f->elf = NULL;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return -errno;
	if (fstat(f->fd, &st) != 0 || st.st_size <= 0) {
		close(f->fd);
		return -ENOEXEC;
	}
	f->size = (uint64_t)st.st_size;
	f->elf = elf_begin(f->fd, ELF_C_READ_MMAP, NULL);
	if (!f->elf || !gelf_getehdr(f->elf, &f->eh) || f->eh.e_machine != EM_X86_64) {
		if (f->elf)
			elf_end(f->elf);
		close(f->fd);
		f->elf = NULL;
		return -ENOEXEC;
	}
	return 0;
}

static void elf_file_close(struct elf_file *f)
{
	if (!f->elf)
		return;
	elf_end(f->elf);
	close(f->fd);
	f->elf = NULL;
}

static const char *section_name(struct elf_file *f, const GElf_Shdr *sh)
{
	const char *n = elf_strptr(f->elf, f->eh.e_shstrndx, sh->sh_name);

	return n ? n : "";
}

/* The file offset of virtual address va (inside a PT_LOAD's file part). */
static int vaddr_to_off(struct elf_file *f, uint64_t va, uint64_t *off)
{
	for (size_t i = 0; i < f->eh.e_phnum; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(f->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (va >= ph.p_vaddr && va - ph.p_vaddr < ph.p_filesz) {
			*off = va - ph.p_vaddr + ph.p_offset;
			return *off < f->size ? 0 : -ENOENT;
		}
	}
	return -ENOENT;
}

static bool vaddr_executable(struct elf_file *f, uint64_t va)
{
	for (size_t i = 0; i < f->eh.e_phnum; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(f->elf, (int)i, &ph) && ph.p_type == PT_LOAD &&
		    (ph.p_flags & PF_X) && va >= ph.p_vaddr && va - ph.p_vaddr < ph.p_filesz)
			return true;
	}
	return false;
}

static int read_at(struct elf_file *f, uint64_t va, void *buf, size_t n)
{
	uint64_t off;

	if (vaddr_to_off(f, va, &off))
		return -ENOENT;
	return pread(f->fd, buf, n, (off_t)off) == (ssize_t)n ? 0 : -EIO;
}

/* Addresses of "run\0" in the read-only data (string tails count: "rerun"'s). */
static size_t find_run_strings(struct elf_file *f, uint64_t *hits, size_t max)
{
	Elf_Scn *scn = NULL;
	size_t n = 0;

	while ((scn = elf_nextscn(f->elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_ALLOC) || (sh.sh_flags & (SHF_WRITE | SHF_EXECINSTR)))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		const char *p = d->d_buf, *end = p + d->d_size;

		for (const char *q = p; q + 4 <= end && n < max; q++) {
			q = memchr(q, 'r', (size_t)(end - q));
			if (!q || q + 4 > end)
				break;
			if (q[1] == 'u' && q[2] == 'n' && q[3] == '\0')
				hits[n++] = sh.sh_addr + (uint64_t)(q - p);
		}
	}
	return n;
}

static bool in_hits(const uint64_t *hits, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++)
		if (hits[i] == v)
			return true;
	return false;
}

/* One relocation's addend at r_offset (R_X86_64_RELATIVE), for a PIE or a
 * shared libpython whose method tables are filled in at load. */
struct rel_pair {
	uint64_t off, addend;
};

static int cmp_rel(const void *a, const void *b)
{
	const struct rel_pair *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static const struct rel_pair *rel_find(const struct rel_pair *r, size_t n, uint64_t off)
{
	struct rel_pair key = {.off = off};

	return bsearch(&key, r, n, sizeof(*r), cmp_rel);
}

static int load_relative(struct elf_file *f, struct rel_pair **out, size_t *n_out)
{
	Elf_Scn *scn = NULL;
	struct rel_pair *r = NULL;
	size_t n = 0, cap = 0;

	while ((scn = elf_nextscn(f->elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		if (!d)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rela rela;

			if (!gelf_getrela(d, (int)i, &rela) ||
			    GELF_R_TYPE(rela.r_info) != R_X86_64_RELATIVE)
				continue;
			if (n == cap) {
				size_t c = cap ? cap * 2 : 4096;
				struct rel_pair *p = realloc(r, c * sizeof(*p));

				if (!p) {
					free(r);
					return -ENOMEM;
				}
				r = p;
				cap = c;
			}
			r[n++] = (struct rel_pair){rela.r_offset, (uint64_t)rela.r_addend};
		}
	}
	if (n)
		qsort(r, n, sizeof(*r), cmp_rel);
	*out = r;
	*n_out = n;
	return 0;
}

/* A PyMethodDef at va: {name, meth, flags, doc}; its name and meth as the
 * process sees them (raw words in an executable, relocations in a PIE). */
static bool method_at(struct elf_file *f, const struct rel_pair *rel, size_t n_rel, uint64_t va,
                      uint64_t *meth)
{
	uint64_t words[4];
	uint32_t flags;

	if (read_at(f, va, words, sizeof(words)))
		return false;
	memcpy(&flags, &words[2], sizeof(flags));
	if (flags != METH_FASTCALL_KEYWORDS)
		return false;
	if (n_rel) {
		const struct rel_pair *m = rel_find(rel, n_rel, va + 8);

		if (!m || rel_find(rel, n_rel, va + 24))
			return false; /* no function, or a doc string */
		*meth = m->addend;
	} else {
		if (words[3])
			return false;
		*meth = words[1];
	}
	return *meth && vaddr_executable(f, *meth);
}

int py_binary_context_run(const char *path, uint64_t *off)
{
	struct elf_file f;
	uint64_t hits[MAX_NAME_HITS], found = 0, meth;
	struct rel_pair *rel = NULL;
	size_t n_hits, n_rel = 0, n_found = 0;
	Elf_Scn *scn = NULL;
	int rc;

	rc = elf_file_open(path, &f);
	if (rc)
		return rc;
	n_hits = find_run_strings(&f, hits, MAX_NAME_HITS);
	if (!n_hits) {
		rc = -ENOENT;
		goto cleanup;
	}
	if (f.eh.e_type == ET_DYN) {
		rc = load_relative(&f, &rel, &n_rel);
		if (rc)
			goto cleanup;
		for (size_t i = 0; i < n_rel; i++)
			if (in_hits(hits, n_hits, rel[i].addend) &&
			    method_at(&f, rel, n_rel, rel[i].off, &meth) && meth != found) {
				found = meth;
				n_found++;
			}
	} else {
		/* an executable: the tables hold the addresses themselves */
		while ((scn = elf_nextscn(f.elf, scn)) != NULL) {
			GElf_Shdr sh;
			Elf_Data *d;

			if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
			    !(sh.sh_flags & SHF_WRITE))
				continue;
			d = elf_getdata(scn, NULL);
			if (!d || !d->d_buf)
				continue;
			for (size_t o = 0; o + 32 <= d->d_size; o += 8) {
				uint64_t v;

				memcpy(&v, (const char *)d->d_buf + o, 8);
				if (in_hits(hits, n_hits, v) &&
				    method_at(&f, NULL, 0, sh.sh_addr + o, &meth) &&
				    meth != found) {
					found = meth;
					n_found++;
				}
			}
		}
	}
	if (n_found != 1) {
		rc = -ENOENT;
		goto cleanup;
	}
	rc = vaddr_to_off(&f, found, off);
cleanup:
	free(rel);
	elf_file_close(&f);
	return rc;
}

/* The GOT slot a call to symbol name jumps through (JUMP_SLOT or GLOB_DAT). */
static int got_slot(struct elf_file *f, const char *name, uint64_t *slot)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(f->elf, scn)) != NULL) {
		GElf_Shdr sh, symsh;
		Elf_Data *d, *syms;
		Elf_Scn *symscn;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA || !sh.sh_entsize)
			continue;
		symscn = elf_getscn(f->elf, sh.sh_link);
		if (!symscn || !gelf_getshdr(symscn, &symsh) || symsh.sh_type != SHT_DYNSYM)
			continue;
		d = elf_getdata(scn, NULL);
		syms = elf_getdata(symscn, NULL);
		if (!d || !syms)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Rela rela;
			GElf_Sym sym;
			const char *n;
			uint32_t type;

			if (!gelf_getrela(d, (int)i, &rela))
				continue;
			type = (uint32_t)GELF_R_TYPE(rela.r_info);
			if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT)
				continue;
			if (!gelf_getsym(syms, (int)GELF_R_SYM(rela.r_info), &sym))
				continue;
			n = elf_strptr(f->elf, symsh.sh_link, sym.st_name);
			if (n && !strcmp(n, name)) {
				*slot = rela.r_offset;
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* The PLT stub that jumps through slot: `jmp *disp(%rip)` (ff 25, maybe
 * after a bnd prefix and an endbr64) in .plt, .plt.sec or .plt.got. */
static int plt_stub(struct elf_file *f, uint64_t slot, uint64_t *stub)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(f->elf, scn)) != NULL) {
		GElf_Shdr sh;
		Elf_Data *d;
		const char *name;

		if (!gelf_getshdr(scn, &sh) || !(sh.sh_flags & SHF_EXECINSTR))
			continue;
		name = section_name(f, &sh);
		if (strcmp(name, ".plt") && strcmp(name, ".plt.sec") && strcmp(name, ".plt.got"))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		const unsigned char *p = d->d_buf;

		for (size_t i = 0; i + 6 <= d->d_size; i++) {
			int32_t disp;
			size_t start = i;

			if (p[i] != 0xff || p[i + 1] != 0x25)
				continue;
			memcpy(&disp, p + i + 2, 4);
			if (sh.sh_addr + i + 6 + (int64_t)disp != slot)
				continue;
			if (start >= 1 && p[start - 1] == 0xf2)
				start--; /* bnd jmp */
			if (start >= 4 && !memcmp(p + start - 4, "\xf3\x0f\x1e\xfa", 4))
				start -= 4; /* endbr64: where callers land */
			*stub = sh.sh_addr + start;
			return 0;
		}
	}
	return -ENOENT;
}

/* The calls (E8/E9 rel32) to stub in the executable sections other than the
 * PLT's, as file offsets. */
static int calls_to(struct elf_file *f, struct x86_rets *xr, uint64_t stub, const uint64_t *rdx,
                    uint64_t *offs, uint32_t *n_out)
{
	Elf_Scn *scn = NULL;
	uint32_t n = 0;

	while ((scn = elf_nextscn(f->elf, scn)) != NULL) {
		uint32_t found[PY_ASYNCIO_MAX_SITES];
		GElf_Shdr sh;
		Elf_Data *d;
		int k;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_EXECINSTR) || !strncmp(section_name(f, &sh), ".plt", 4))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf || !d->d_size)
			continue;
		k = rdx ? x86_calls_find_rdx(xr, d->d_buf, d->d_size, sh.sh_addr, stub, *rdx,
		                             ~PY_VECTORCALL_ARGUMENTS_OFFSET, found,
		                             PY_ASYNCIO_MAX_SITES, NULL)
		        : x86_calls_find(xr, d->d_buf, d->d_size, sh.sh_addr, stub, found,
		                         PY_ASYNCIO_MAX_SITES, NULL);
		if (k < 0)
			return k;
		if (n + (uint32_t)k > PY_ASYNCIO_MAX_SITES)
			return -E2BIG;
		for (int i = 0; i < k; i++) {
			int rc = vaddr_to_off(f, sh.sh_addr + found[i], &offs[n + (uint32_t)i]);

			if (rc)
				return rc;
		}
		n += (uint32_t)k;
	}
	*n_out = n;
	return n ? 0 : -ENOENT;
}

static int sites_of(struct elf_file *f, struct x86_rets *xr, const char *name, const uint64_t *rdx,
                    uint64_t *offs, uint32_t *n)
{
	uint64_t slot, stub;
	int rc = got_slot(f, name, &slot);

	if (!rc)
		rc = plt_stub(f, slot, &stub);
	if (!rc)
		rc = calls_to(f, xr, stub, rdx, offs, n);
	return rc;
}

int py_binary_asyncio_sites(const char *path, struct x86_rets *xr, struct py_asyncio_sites *out)
{
	struct elf_file f;
	int rc;

	if (!xr)
		return -EINVAL;
	rc = elf_file_open(path, &f);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	/* register_task's call has two arguments (nargsf 2 | OFFSET): calls that
	 * load another count right before are get_debug's and the like */
	const uint64_t two = 2;

	rc = sites_of(&f, xr, "_PyDict_SetItem_KnownHash", NULL, out->enter, &out->n_enter);
	if (!rc)
		rc = sites_of(&f, xr, "PyObject_VectorcallMethod", &two, out->create,
		              &out->n_create);
	elf_file_close(&f);
	return rc;
}

/* The one _asyncio module under root + prefix whose name has want (when set). */
static int asyncio_under(const char *root, const char *prefix, const char *want, char *out,
                         size_t size)
{
	char pattern[700];
	glob_t g;
	int rc = -ENOENT;
	size_t n = 0;

	if ((size_t)snprintf(pattern, sizeof(pattern),
	                     "%s%s/lib/python3*/lib-dynload/_asyncio.cpython-*.so",
	                     root ? root : "", prefix) >= sizeof(pattern))
		return -ENAMETOOLONG;
	if (glob(pattern, 0, NULL, &g) != 0)
		return -ENOENT;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		if (want[0] && !strstr(g.gl_pathv[i], want))
			continue;
		if (n++)
			continue;
		rc = (size_t)snprintf(out, size, "%s", g.gl_pathv[i]) >= size ? -ENAMETOOLONG : 0;
	}
	if (n != 1 && !rc)
		rc = -ENOENT; /* several versions and no name to tell them apart */
	globfree(&g);
	return rc;
}

int py_binary_asyncio_path(const char *root, const char *shown, char *out, size_t size)
{
	char prefix[512], want[16] = "";
	const char *base = strrchr(shown, '/');
	unsigned major, minor;
	int rc = -ENOENT;

	if (!base || base == shown || (size_t)(base - shown) >= sizeof(prefix))
		return -ENOENT;
	if (sscanf(base + 1, "python%u.%u", &major, &minor) == 2 ||
	    sscanf(base + 1, "libpython%u.%u", &major, &minor) == 2)
		snprintf(want, sizeof(want), "cpython-%u%u", major, minor);
	/* <prefix>/bin/python3.X, <prefix>/lib/libpython3.X.so, or Debian's
	 * <prefix>/lib/<multiarch>/libpython3.X.so: one or two levels up */
	snprintf(prefix, sizeof(prefix), "%.*s", (int)(base - shown), shown);
	for (int up = 0; up < (strncmp(base + 1, "lib", 3) ? 1 : 2) && rc == -ENOENT; up++) {
		char *slash = strrchr(prefix, '/');

		if (!slash)
			break;
		*slash = '\0';
		rc = asyncio_under(root, prefix, want, out, size);
	}
	return rc;
}
