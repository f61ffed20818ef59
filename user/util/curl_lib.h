/* curl_lib.h — libcurl, dlopen'ed (libcurl.so.4) when a user of it starts
 * (the OTLP exporter, the Kubernetes client) instead of linked: libcurl and
 * its dependency tree (libcrypto, gnutls, p11-kit, krb5, ldap, nettle, ...)
 * are ~4.5 MB of resident pages an agent that exports nothing never pays.
 * Each user opens its own struct curl_lib (the dynamic loader counts the
 * references and maps the library once) and calls libcurl through it; the
 * wrappers are typed per option kind, since curl_easy_setopt's varargs cannot
 * be forwarded. Only <curl/curl.h>'s types and constants are used at build
 * time; nothing links against -lcurl. */
#ifndef PERISCOPE_UTIL_CURL_LIB_H
#define PERISCOPE_UTIL_CURL_LIB_H

#include <stddef.h>
#include <time.h>

#include <curl/curl.h>

#define CURL_LIB_SONAME "libcurl.so.4"

struct curl_lib;

/* A callback of any signature, for the *FUNCTION options (cast to this type). */
typedef void (*curl_lib_fn)(void);

/* Loads libcurl, resolves every function used and runs curl_global_init.
 * Returns 0 and *out, or -ENOENT (the library cannot be loaded), -ENOSYS (a
 * function is missing: too old a libcurl), -EIO (curl_global_init failed),
 * -ENOMEM; on error, why (when not NULL) gets a sentence for the log. */
int curl_lib__open(struct curl_lib **out, char *why, size_t why_cap);
/* curl_global_cleanup and releases the library. Accepts NULL. */
void curl_lib__close(struct curl_lib *l);

CURL *curl_lib_easy_init(struct curl_lib *l);
void curl_lib_easy_cleanup(struct curl_lib *l, CURL *h);
void curl_lib_easy_reset(struct curl_lib *l, CURL *h);
CURLcode curl_lib_easy_perform(struct curl_lib *l, CURL *h);
const char *curl_lib_easy_strerror(struct curl_lib *l, CURLcode code);

/* curl_easy_setopt by the kind of the option's argument. */
CURLcode curl_lib_setopt_long(struct curl_lib *l, CURL *h, CURLoption opt, long v);
CURLcode curl_lib_setopt_ptr(struct curl_lib *l, CURL *h, CURLoption opt, const void *v);
CURLcode curl_lib_setopt_off(struct curl_lib *l, CURL *h, CURLoption opt, curl_off_t v);
CURLcode curl_lib_setopt_fn(struct curl_lib *l, CURL *h, CURLoption opt, curl_lib_fn fn);

/* curl_easy_getinfo of a long (CURLINFO_RESPONSE_CODE, ...). */
CURLcode curl_lib_getinfo_long(struct curl_lib *l, CURL *h, CURLINFO info, long *v);

/* curl_slist_append (NULL on failure; list is then unchanged) and
 * curl_slist_free_all (accepts NULL). */
struct curl_slist *curl_lib_slist_append(struct curl_lib *l, struct curl_slist *list,
                                         const char *s);
void curl_lib_slist_free_all(struct curl_lib *l, struct curl_slist *list);

/* curl_getdate: an HTTP date as seconds since the epoch, -1 when unparsable. */
time_t curl_lib_getdate(struct curl_lib *l, const char *date, const time_t *now);

#endif
