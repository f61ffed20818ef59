/* py_binary.h — where a CPython build's asyncio loop can be watched from
 * outside: the function behind contextvars' Context.run (every callback an
 * asyncio loop runs goes through it) in the interpreter's executable, and the
 * calls the _asyncio extension module makes when a task begins a step
 * (_PyDict_SetItem_KnownHash, from enter_task) or is made
 * (PyObject_VectorcallMethod, from register_task). Found from the files alone,
 * stripped ones too: the method table entry {"run", fn, METH_FASTCALL |
 * METH_KEYWORDS}, the PLT relocations and a decode of the module's code.
 * Offsets are file offsets (what a uprobe takes). */
#ifndef PERISCOPE_PY_BINARY_H
#define PERISCOPE_PY_BINARY_H

#include <stddef.h>
#include <stdint.h>

/* The file offset of Context.run's C function in the CPython executable or
 * libpython at path: 0, -ENOENT when no single method table entry names it,
 * or another negative errno. */
int py_binary_context_run(const char *path, uint64_t *off);

#define PY_ASYNCIO_MAX_SITES 16

/* Where the _asyncio module calls _PyDict_SetItem_KnownHash (enter_task: a
 * task's step begins) and PyObject_VectorcallMethod (register_task among
 * others: a task is made), as file offsets of the call instructions (a
 * uprobe there is emulated, cheaper than one on the PLT stub's indirect
 * jump, which the kernel single-steps). */
struct py_asyncio_sites {
	uint64_t enter[PY_ASYNCIO_MAX_SITES];
	uint64_t create[PY_ASYNCIO_MAX_SITES];
	uint32_t n_enter, n_create;
};

struct x86_rets;

/* The call sites in the _asyncio module at path, decoded with xr: 0, -ENOENT
 * when a PLT stub or its calls are missing (a build with _asyncio linked
 * in), -E2BIG when there are more than PY_ASYNCIO_MAX_SITES, -EILSEQ when its
 * code does not decode, or another negative errno. */
int py_binary_asyncio_sites(const char *path, struct x86_rets *xr, struct py_asyncio_sites *out);

/* The _asyncio module of the CPython runtime whose file is shown (its path as
 * the process sees it: the interpreter, e.g. /usr/bin/python3.11, or its
 * libpython3.X.so) under root (/proc/PID/root, or ""):
 * <prefix>/lib/python3.X/lib-dynload/_asyncio.cpython-3X*.so, <prefix> one
 * or two directories above the file's (Debian's multiarch lib directory). 0
 * with out filled, -ENOENT (none, or several and no version in the name), or
 * -ENAMETOOLONG. */
int py_binary_asyncio_path(const char *root, const char *shown, char *out, size_t size);

#endif
