/* fake_asyncio.c — a stand-in for CPython's _asyncio module (test_py_binary):
 * a shared object calling _PyDict_SetItem_KnownHash from two places (CPython's
 * enter_task, inlined twice) and PyObject_VectorcallMethod from three (one
 * with one argument, which py_binary leaves out, two with two), through its
 * PLT (the interpreter is not linked in: the symbols stay undefined). Built
 * -O0 by the test, so each call is one `call rel32`. */
int _PyDict_SetItem_KnownHash(void *mp, void *key, void *item, long hash);
void *PyObject_VectorcallMethod(void *name, void *const *args, unsigned long nargsf, void *kw);
int _PyDict_DelItem_KnownHash(void *mp, void *key, long hash);

int fixture_enter_a(void *d, void *loop, void *task)
{
	return _PyDict_SetItem_KnownHash(d, loop, task, 1);
}

int fixture_enter_b(void *d, void *loop, void *task)
{
	return _PyDict_SetItem_KnownHash(d, loop, task, 2) + _PyDict_DelItem_KnownHash(d, loop, 2);
}

void *fixture_calls(void *name, void *const *args)
{
	PyObject_VectorcallMethod(name, args, 1ul | (1ul << 63), 0);
	PyObject_VectorcallMethod(name, args, 2ul | (1ul << 63), 0);
	return PyObject_VectorcallMethod(name, args, 2ul, 0);
}
