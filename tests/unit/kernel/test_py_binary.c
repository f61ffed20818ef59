/* test_py_binary.c — py_binary against fixtures built here with the system's
 * C compiler (tests/unit/kernel/py_fixtures: a fake interpreter, non-PIE and
 * PIE, and a fake _asyncio module; each also stripped), against this
 * machine's Debian python3.11 when present, and the _asyncio path rules on a
 * made-up root. The expected answers come from the fixtures' own symbol
 * tables (read before stripping), never from the code under test. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernel/py_binary.h"
#include "kernel/x86_ret.h"
#include "unit.h"

static char dir[PATH_MAX];     /* where the fixtures are built */
static char sources[PATH_MAX]; /* tests/unit/kernel/py_fixtures */
static int have_cc;

static int sh(const char *cmd)
{
	int rc = system(cmd);

	return rc == 0 ? 0 : -1;
}

/* The file offset of symbol name in path (from .symtab: an unstripped file). */
static int symbol_offset(const char *path, const char *name, uint64_t *off)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = -ENOENT;
	Elf *elf;
	Elf_Scn *scn = NULL;
	uint64_t va = 0;

	if (fd < 0)
		return -errno;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	while (elf && (scn = elf_nextscn(elf, scn)) != NULL) {
		GElf_Shdr sh_;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh_) || sh_.sh_type != SHT_SYMTAB || !sh_.sh_entsize)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh_.sh_size / sh_.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(d, (int)i, &sym))
				continue;
			n = elf_strptr(elf, sh_.sh_link, sym.st_name);
			if (n && !strcmp(n, name))
				va = sym.st_value;
		}
	}
	for (size_t i = 0; elf && va && i < 16; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph))
			break;
		if (ph.p_type == PT_LOAD && va >= ph.p_vaddr && va < ph.p_vaddr + ph.p_filesz) {
			*off = va - ph.p_vaddr + ph.p_offset;
			rc = 0;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return rc;
}

static int byte_at(const char *path, uint64_t off)
{
	unsigned char b;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, &b, 1, (off_t)off);

	if (fd >= 0)
		close(fd);
	return n == 1 ? b : -1;
}

static void build_fixtures(void)
{
	char cmd[4 * PATH_MAX], cmd2[256];
	const char *cc = getenv("FIXTURE_CC") ? getenv("FIXTURE_CC") : "cc";

	snprintf(dir, sizeof(dir), "%s/periscope-py-fixtures-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir)) {
		dir[0] = '\0';
		return;
	}
	snprintf(
	    cmd, sizeof(cmd),
	    "cd %s && %s -O0 -g -no-pie -o %s/py_exec fake_python.c && "
	    "%s -O0 -g -fPIE -pie -o %s/py_pie fake_python.c && "
	    "%s -O0 -g -fPIC -shared -o %s/asyncio.so fake_asyncio.c && "
	    "strip -o %s/py_exec.stripped %s/py_exec && strip -o %s/py_pie.stripped %s/py_pie && "
	    "strip -o %s/asyncio.so.stripped %s/asyncio.so",
	    sources, cc, dir, cc, dir, cc, dir, dir, dir, dir, dir, dir, dir);
	snprintf(cmd2, sizeof(cmd2), "command -v %s >/dev/null && command -v strip >/dev/null", cc);
	if (sh(cmd2) != 0) {
		printf("  (no C compiler or strip: fixture checks skipped)\n");
		return;
	}
	have_cc = sh(cmd) == 0;
	CHECK(have_cc); /* a compiler that cannot build them is a failure */
}

static void test_context_run_fixtures(void)
{
	static const char *const names[] = {"py_exec", "py_pie"};
	char path[PATH_MAX + 32];
	uint64_t want, got;

	if (!have_cc)
		return;
	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		CHECK_EQ_INT(symbol_offset(path, "fixture_context_run", &want), 0);
		CHECK_EQ_INT(py_binary_context_run(path, &got), 0);
		CHECK_EQ_INT(got, want);
		snprintf(path, sizeof(path), "%s/%s.stripped", dir, names[i]);
		got = 0;
		CHECK_EQ_INT(py_binary_context_run(path, &got), 0);
		CHECK_EQ_INT(got, want);
	}
	/* the module has no such table; a missing file and a non-ELF one fail */
	snprintf(path, sizeof(path), "%s/asyncio.so", dir);
	CHECK_EQ_INT(py_binary_context_run(path, &got), -ENOENT);
	snprintf(path, sizeof(path), "%s/none", dir);
	CHECK_EQ_INT(py_binary_context_run(path, &got), -ENOENT);
	snprintf(path, sizeof(path), "%s/fake_python.c", sources);
	CHECK(py_binary_context_run(path, &got) < 0);
}

static void test_asyncio_site_fixtures(void)
{
	struct x86_rets *xr = x86_rets__new();
	struct py_asyncio_sites s;
	char path[PATH_MAX + 32];

	if (!have_cc || !xr) {
		x86_rets__free(xr);
		return;
	}
	for (int stripped = 0; stripped < 2; stripped++) {
		snprintf(path, sizeof(path), "%s/asyncio.so%s", dir, stripped ? ".stripped" : "");
		CHECK_EQ_INT(py_binary_asyncio_sites(path, xr, &s), 0);
		CHECK_EQ_INT(s.n_enter, 2);
		/* of the three calls, the one loading nargsf 1 | OFFSET is left out */
		CHECK_EQ_INT(s.n_create, 2);
		for (uint32_t i = 0; i < s.n_enter; i++)
			CHECK_EQ_INT(byte_at(path, s.enter[i]), 0xe8);
		for (uint32_t i = 0; i < s.n_create; i++)
			CHECK_EQ_INT(byte_at(path, s.create[i]), 0xe8);
	}
	/* the interpreter stand-in calls neither */
	snprintf(path, sizeof(path), "%s/py_pie", dir);
	CHECK_EQ_INT(py_binary_asyncio_sites(path, xr, &s), -ENOENT);
	CHECK_EQ_INT(py_binary_asyncio_sites(path, NULL, &s), -EINVAL);
	x86_rets__free(xr);
}

/* Debian's own interpreter, stripped, when this machine has it. */
static void test_debian_python(void)
{
	const char *exe = "/usr/bin/python3.11";
	struct x86_rets *xr;
	struct py_asyncio_sites s;
	char so[PATH_MAX];
	uint64_t off;

	if (access(exe, R_OK) != 0) {
		printf("  (no %s: skipped)\n", exe);
		return;
	}
	CHECK_EQ_INT(py_binary_context_run(exe, &off), 0);
	CHECK_EQ_INT(py_binary_asyncio_path("", exe, so, sizeof(so)), 0);
	CHECK(strstr(so, "/lib-dynload/_asyncio.cpython-311") != NULL);
	xr = x86_rets__new();
	if (!xr)
		return;
	CHECK_EQ_INT(py_binary_asyncio_sites(so, xr, &s), 0);
	CHECK(s.n_enter >= 1 && s.n_create >= 1);
	for (uint32_t i = 0; i < s.n_enter; i++)
		CHECK(byte_at(so, s.enter[i]) == 0xe8 || byte_at(so, s.enter[i]) == 0xe9);
	x86_rets__free(xr);
}

/* <prefix>/lib/python3.X/lib-dynload/_asyncio.cpython-3X*.so under a root. */
static void test_asyncio_path(void)
{
	char root[PATH_MAX + 16], cmd[3 * PATH_MAX], out[PATH_MAX];

	if (!dir[0])
		return;
	snprintf(root, sizeof(root), "%s/root", dir);
	snprintf(
	    cmd, sizeof(cmd),
	    "mkdir -p %s/usr/local/lib/python3.11/lib-dynload "
	    "%s/usr/local/lib/python3.12/lib-dynload"
	    " && touch "
	    "%s/usr/local/lib/python3.11/lib-dynload/_asyncio.cpython-311-x86_64-linux-gnu.so"
	    " %s/usr/local/lib/python3.12/lib-dynload/_asyncio.cpython-312-x86_64-linux-gnu.so",
	    root, root, root, root);
	CHECK_EQ_INT(sh(cmd), 0);
	CHECK_EQ_INT(py_binary_asyncio_path(root, "/usr/local/bin/python3.12", out, sizeof(out)),
	             0);
	CHECK(strstr(out, "/usr/local/lib/python3.12/lib-dynload/_asyncio.cpython-312-") != NULL);
	CHECK(!strncmp(out, root, strlen(root)));
	/* no version in the name and two candidates: not guessed */
	CHECK_EQ_INT(py_binary_asyncio_path(root, "/usr/local/bin/python3", out, sizeof(out)),
	             -ENOENT);
	CHECK_EQ_INT(py_binary_asyncio_path(root, "/usr/local/bin/python3.9", out, sizeof(out)),
	             -ENOENT);
	CHECK_EQ_INT(py_binary_asyncio_path(root, "python3.11", out, sizeof(out)), -ENOENT);
	CHECK_EQ_INT(py_binary_asyncio_path(root, "/usr/local/bin/python3.11", out, 8),
	             -ENAMETOOLONG);
	/* a shared build's libpython: <prefix>/lib/libpython3.X.so, or Debian's
	 * multiarch <prefix>/lib/<triplet>/libpython3.X.so (two levels up) */
	CHECK_EQ_INT(
	    py_binary_asyncio_path(root, "/usr/local/lib/libpython3.11.so.1.0", out, sizeof(out)),
	    0);
	CHECK(strstr(out, "/usr/local/lib/python3.11/lib-dynload/_asyncio.cpython-311-") != NULL);
	CHECK_EQ_INT(py_binary_asyncio_path(root,
	                                    "/usr/local/lib/x86_64-linux-gnu/libpython3.12.so", out,
	                                    sizeof(out)),
	             0);
	CHECK(strstr(out, "/usr/local/lib/python3.12/lib-dynload/_asyncio.cpython-312-") != NULL);
	/* an interpreter is looked for one level up only */
	CHECK_EQ_INT(py_binary_asyncio_path(root, "/usr/local/bin/x/python3.11", out, sizeof(out)),
	             -ENOENT);
}

int main(int argc, char **argv)
{
	char cmd[PATH_MAX + 16];
	const char *slash = strrchr(__FILE__, '/');

	(void)argc;
	(void)argv;
	snprintf(sources, sizeof(sources), "%.*s/py_fixtures", slash ? (int)(slash - __FILE__) : 1,
	         slash ? __FILE__ : ".");
	if (sources[0] != '/') {
		char cwd[PATH_MAX / 2];

		if (getcwd(cwd, sizeof(cwd))) {
			char rel[PATH_MAX / 2];

			snprintf(rel, sizeof(rel), "%s", sources);
			snprintf(sources, sizeof(sources), "%s/%s", cwd, rel);
		}
	}
	RUN(build_fixtures);
	RUN(test_context_run_fixtures);
	RUN(test_asyncio_site_fixtures);
	RUN(test_debian_python);
	RUN(test_asyncio_path);
	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		sh(cmd);
	}
	return unit_summary("test_py_binary");
}
