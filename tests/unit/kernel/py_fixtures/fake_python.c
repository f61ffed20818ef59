/* fake_python.c — a stand-in for a CPython interpreter (test_py_binary):
 * exports PyContext_CopyCurrent and holds, like CPython's Objects/context.c, a
 * method table whose "run" entry is METH_FASTCALL | METH_KEYWORDS with no doc,
 * among decoys (another "run" with a doc string, a "rerun" whose name's tail
 * is "run", a "run" with other flags). Built -no-pie and -pie by the test. */
#include <stddef.h>

struct method_def {
	const char *name;
	void *meth;
	int flags;
	const char *doc;
};

void *PyContext_CopyCurrent(void)
{
	return NULL;
}

__attribute__((noinline)) void *fixture_context_run(void *self, void **args, long n)
{
	return n ? args[0] : self;
}

__attribute__((noinline)) void *fixture_decoy(void *self, void **args, long n)
{
	return n > 1 ? args[1] : self;
}

struct method_def fixture_methods[] = {
    {"get", (void *)fixture_decoy, 0x80, NULL},
    {"run", (void *)fixture_context_run, 0x82, NULL},
    {"copy", (void *)fixture_decoy, 0x4, NULL},
    {NULL, NULL, 0, NULL},
};

struct method_def fixture_decoys[] = {
    {"run", (void *)fixture_decoy, 0x82, "a doc string: not Context.run's entry"},
    {"rerun", (void *)fixture_decoy, 0x82, NULL},
    {"run", (void *)fixture_decoy, 0x1, NULL},
    {NULL, NULL, 0, NULL},
};

int main(int argc, char **argv)
{
	(void)argv;
	return fixture_methods[argc & 1].flags + fixture_decoys[argc & 3].flags;
}
