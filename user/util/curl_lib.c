/* curl_lib.c — the dlopen'ed libcurl function table (see curl_lib.h). */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/curl_lib.h"

struct curl_lib {
	void *lib; /* the dlopen handle */
	CURLcode (*global_init)(long flags);
	void (*global_cleanup)(void);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *h);
	void (*easy_reset)(CURL *h);
	CURLcode (*easy_setopt)(CURL *h, CURLoption opt, ...);
	CURLcode (*easy_perform)(CURL *h);
	CURLcode (*easy_getinfo)(CURL *h, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
	time_t (*getdate)(const char *date, const time_t *now);
};

/* Looks up every libcurl function used; the name of the first missing one, or NULL. */
static const char *resolve(struct curl_lib *l)
{
	static const char *const names[] = {
	    "curl_global_init",   "curl_global_cleanup", "curl_easy_init",      "curl_easy_cleanup",
	    "curl_easy_reset",    "curl_easy_setopt",    "curl_easy_perform",   "curl_easy_getinfo",
	    "curl_easy_strerror", "curl_slist_append",   "curl_slist_free_all", "curl_getdate",
	};
	void **slots[] = {
	    (void **)&l->global_init,  (void **)&l->global_cleanup, (void **)&l->easy_init,
	    (void **)&l->easy_cleanup, (void **)&l->easy_reset,     (void **)&l->easy_setopt,
	    (void **)&l->easy_perform, (void **)&l->easy_getinfo,   (void **)&l->easy_strerror,
	    (void **)&l->slist_append, (void **)&l->slist_free_all, (void **)&l->getdate,
	};

	_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(slots) / sizeof(slots[0]),
	               "one slot per name");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		*slots[i] = dlsym(l->lib, names[i]);
		if (!*slots[i])
			return names[i];
	}
	return NULL;
}

int curl_lib__open(struct curl_lib **out, char *why, size_t why_cap)
{
	struct curl_lib *l;
	const char *missing;
	int err;

	*out = NULL;
	if (why && why_cap)
		why[0] = '\0';
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	/* RTLD_NODELETE: once loaded, libcurl stays mapped. Its TLS backends
	 * (OpenSSL's libcrypto pins itself the same way, gnutls, p11-kit) leave
	 * atexit handlers and thread-specific destructors behind that would point
	 * into unmapped code after the last dlclose; the users live until the
	 * agent exits anyway, so unloading would save nothing. */
	l->lib = dlopen(CURL_LIB_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (!l->lib) {
		if (why && why_cap)
			snprintf(why, why_cap, "cannot load %s (install libcurl4): %s",
			         CURL_LIB_SONAME, dlerror());
		err = -ENOENT;
		goto cleanup;
	}
	missing = resolve(l);
	if (missing) {
		if (why && why_cap)
			snprintf(why, why_cap, "%s has no %s (libcurl too old)", CURL_LIB_SONAME,
			         missing);
		err = -ENOSYS;
		goto cleanup;
	}
	if (l->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		if (why && why_cap)
			snprintf(why, why_cap, "curl_global_init failed");
		err = -EIO;
		goto cleanup;
	}
	*out = l;
	return 0;
cleanup:
	if (l->lib)
		dlclose(l->lib);
	free(l);
	return err;
}

void curl_lib__close(struct curl_lib *l)
{
	if (!l)
		return;
	l->global_cleanup();
	dlclose(l->lib);
	free(l);
}

CURL *curl_lib_easy_init(struct curl_lib *l)
{
	return l->easy_init();
}

void curl_lib_easy_cleanup(struct curl_lib *l, CURL *h)
{
	l->easy_cleanup(h);
}

void curl_lib_easy_reset(struct curl_lib *l, CURL *h)
{
	l->easy_reset(h);
}

CURLcode curl_lib_easy_perform(struct curl_lib *l, CURL *h)
{
	return l->easy_perform(h);
}

const char *curl_lib_easy_strerror(struct curl_lib *l, CURLcode code)
{
	return l->easy_strerror(code);
}

CURLcode curl_lib_setopt_long(struct curl_lib *l, CURL *h, CURLoption opt, long v)
{
	return l->easy_setopt(h, opt, v);
}

CURLcode curl_lib_setopt_ptr(struct curl_lib *l, CURL *h, CURLoption opt, const void *v)
{
	return l->easy_setopt(h, opt, v);
}

CURLcode curl_lib_setopt_off(struct curl_lib *l, CURL *h, CURLoption opt, curl_off_t v)
{
	return l->easy_setopt(h, opt, v);
}

CURLcode curl_lib_setopt_fn(struct curl_lib *l, CURL *h, CURLoption opt, curl_lib_fn fn)
{
	return l->easy_setopt(h, opt, fn);
}

CURLcode curl_lib_getinfo_long(struct curl_lib *l, CURL *h, CURLINFO info, long *v)
{
	return l->easy_getinfo(h, info, v);
}

struct curl_slist *curl_lib_slist_append(struct curl_lib *l, struct curl_slist *list, const char *s)
{
	return l->slist_append(list, s);
}

void curl_lib_slist_free_all(struct curl_lib *l, struct curl_slist *list)
{
	l->slist_free_all(list);
}

time_t curl_lib_getdate(struct curl_lib *l, const char *date, const time_t *now)
{
	return l->getdate(date, now);
}
