/* test_curl_lib.c — the dlopen'ed libcurl table: it loads, every wrapper
 * reaches libcurl (an easy handle set up, a header list, a date, an error
 * string), two users share one mapping, and nothing in the agent's own
 * binary links libcurl before it is opened. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>

#include "unit.h"
#include "util/curl_lib.h"

static size_t sink(char *data, size_t size, size_t n, void *ctx)
{
	return size * n;
}

static void test_open_and_use(void)
{
	struct curl_lib *l = NULL, *l2 = NULL;
	struct curl_slist *list, *next;
	char why[200];
	time_t now = 0;
	long code = -1;
	CURL *h;

	CHECK_EQ_INT(curl_lib__open(&l, why, sizeof(why)), 0);
	CHECK(l != NULL);
	CHECK_EQ_STR(why, "");
	if (!l)
		return;
	h = curl_lib_easy_init(l);
	CHECK(h != NULL);
	CHECK_EQ_INT(curl_lib_setopt_long(l, h, CURLOPT_NOSIGNAL, 1L), CURLE_OK);
	CHECK_EQ_INT(curl_lib_setopt_ptr(l, h, CURLOPT_URL, "http://127.0.0.1:1/"), CURLE_OK);
	CHECK_EQ_INT(curl_lib_setopt_off(l, h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0),
	             CURLE_OK);
	CHECK_EQ_INT(curl_lib_setopt_fn(l, h, CURLOPT_WRITEFUNCTION, (curl_lib_fn)sink), CURLE_OK);
	CHECK_EQ_INT(curl_lib_setopt_ptr(l, h, CURLOPT_PROTOCOLS_STR, "http,https"), CURLE_OK);
	/* an option of the wrong protocol list is refused by libcurl itself */
	CHECK(curl_lib_setopt_ptr(l, h, CURLOPT_PROTOCOLS_STR, "nosuchproto") != CURLE_OK);
	CHECK_EQ_INT(curl_lib_getinfo_long(l, h, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
	CHECK_EQ_INT(code, 0);
	curl_lib_easy_reset(l, h);
	curl_lib_easy_cleanup(l, h);

	list = curl_lib_slist_append(l, NULL, "Accept: application/json");
	CHECK(list != NULL);
	next = curl_lib_slist_append(l, list, "Expect:");
	CHECK(next == list);
	CHECK_EQ_STR(list->data, "Accept: application/json");
	CHECK(list->next && !strcmp(list->next->data, "Expect:"));
	curl_lib_slist_free_all(l, list);
	curl_lib_slist_free_all(l, NULL);

	CHECK_EQ_INT(curl_lib_getdate(l, "Wed, 21 Oct 2015 07:28:00 GMT", &now), 1445412480);
	CHECK_EQ_INT(curl_lib_getdate(l, "not a date", &now), -1);
	CHECK(strstr(curl_lib_easy_strerror(l, CURLE_COULDNT_CONNECT), "connect") != NULL);

	/* a second user: the loader maps the library once */
	CHECK_EQ_INT(curl_lib__open(&l2, NULL, 0), 0);
	CHECK(l2 != NULL);
	curl_lib__close(l2);
	curl_lib__close(l);
	curl_lib__close(NULL);
	/* kept mapped (RTLD_NODELETE) */
	CHECK(dlopen(CURL_LIB_SONAME, RTLD_NOW | RTLD_NOLOAD) != NULL);
}

/* The test binary links what the agent links: libcurl only comes by dlopen. */
static void test_not_linked(void)
{
	void *self = dlopen(NULL, RTLD_NOW);

	CHECK(self != NULL);
	CHECK(dlsym(RTLD_DEFAULT, "curl_easy_init") == NULL);
	if (self)
		dlclose(self);
}

int main(void)
{
	RUN(test_not_linked);
	RUN(test_open_and_use);
	return unit_summary("test_curl_lib");
}
