/* test_span.c — span attributes (arena truncation, attribute limit, key
 * replacement), span_copy's resource reference, hex_encode, and resource. */
#include <errno.h>
#include <string.h>

#include "telemetry/http_span.h"
#include "telemetry/resource.h"
#include "telemetry/span.h"
#include "unit.h"

static struct span span_a, span_b; /* large: not on the stack */

static void test_set_and_find(void)
{
	struct span *s = &span_a;
	const struct span_attr *a;

	span_init(s);
	CHECK_EQ_INT(span_set_str(s, "url.path", "/index.html"), 0);
	CHECK_EQ_INT(span_set_strn(s, "http.request.method", "GETXX", 3), 0);
	CHECK_EQ_INT(span_set_int(s, "http.response.status_code", 200), 0);
	CHECK_EQ_INT(span_set_bool(s, "flag", true), 0);
	CHECK_EQ_INT(span_set_double(s, "ratio", 0.25), 0);
	CHECK_EQ_INT(s->n_attrs, 5);
	a = span_find_attr(s, "url.path");
	CHECK(a != NULL);
	CHECK_EQ_STR(span_attr_str(s, a), "/index.html");
	CHECK_EQ_INT(a->len, 11);
	a = span_find_attr(s, "http.request.method");
	CHECK_EQ_STR(span_attr_str(s, a), "GET");
	a = span_find_attr(s, "http.response.status_code");
	CHECK(a && a->type == SPAN_ATTR_INT && a->i == 200);
	a = span_find_attr(s, "flag");
	CHECK(a && a->type == SPAN_ATTR_BOOL && a->b);
	a = span_find_attr(s, "ratio");
	CHECK(a && a->type == SPAN_ATTR_DOUBLE && a->d == 0.25);
	CHECK(span_find_attr(s, "missing") == NULL);
	/* a non-string attribute reads as "" through span_attr_str */
	CHECK_EQ_STR(span_attr_str(s, span_find_attr(s, "flag")), "");
	/* an empty and a NULL string */
	CHECK_EQ_INT(span_set_str(s, "empty", ""), 0);
	CHECK_EQ_INT(span_set_str(s, "null", NULL), 0);
	CHECK_EQ_STR(span_attr_str(s, span_find_attr(s, "empty")), "");
	CHECK_EQ_STR(span_attr_str(s, span_find_attr(s, "null")), "");
	span_release(s);
}

static void test_replace_same_key(void)
{
	struct span *s = &span_a;

	span_init(s);
	span_set_int(s, "server.port", 80);
	span_set_int(s, "server.port", 8080);
	CHECK_EQ_INT(s->n_attrs, 1);
	CHECK_EQ_INT(span_find_attr(s, "server.port")->i, 8080);
	/* same name, different pointer (not the literal): still one attribute */
	char key[] = "server.port";
	span_set_str(s, key, "x");
	CHECK_EQ_INT(s->n_attrs, 1);
	CHECK_EQ_STR(span_attr_str(s, span_find_attr(s, "server.port")), "x");
	span_release(s);
}

/* span_add_* appends without looking (builders set each key once); the
 * setters after them still replace. */
static void test_add_appends(void)
{
	struct span *s = &span_a;

	span_init(s);
	CHECK_EQ_INT(span_add_str(s, "url.path", "/a"), 0);
	CHECK_EQ_INT(span_add_strn(s, "url.scheme", "https://", 5), 0);
	CHECK_EQ_INT(span_add_int(s, "server.port", 80), 0);
	CHECK_EQ_INT(s->n_attrs, 3);
	CHECK_EQ_STR(span_attr_str(s, span_find_attr(s, "url.scheme")), "https");
	span_set_int(s, "server.port", 8080);
	CHECK_EQ_INT(s->n_attrs, 3);
	CHECK_EQ_INT(span_find_attr(s, "server.port")->i, 8080);
	for (int i = 3; i < SPAN_MAX_ATTRS; i++)
		CHECK_EQ_INT(span_add_int(s, "k", i), 0);
	CHECK_EQ_INT(span_add_str(s, "one.too.many", "x"), -ENOSPC);
	CHECK_EQ_INT(span_add_int(s, NULL, 1), -EINVAL);
	span_release(s);
}

static void test_attr_limit(void)
{
	static const char *keys[SPAN_MAX_ATTRS + 1] = {
	    "k0",  "k1",  "k2",  "k3",  "k4",  "k5",  "k6",  "k7",  "k8",
	    "k9",  "k10", "k11", "k12", "k13", "k14", "k15", "k16", "k17",
	    "k18", "k19", "k20", "k21", "k22", "k23", "k24",
	};
	struct span *s = &span_a;

	span_init(s);
	for (int i = 0; i < SPAN_MAX_ATTRS; i++)
		CHECK_EQ_INT(span_set_int(s, keys[i], i), 0);
	CHECK_EQ_INT(span_set_int(s, keys[SPAN_MAX_ATTRS], 1), -ENOSPC);
	CHECK_EQ_INT(span_set_str(s, keys[SPAN_MAX_ATTRS], "v"), -ENOSPC);
	CHECK_EQ_INT(span_set_bool(s, keys[SPAN_MAX_ATTRS], true), -ENOSPC);
	CHECK_EQ_INT(span_set_double(s, keys[SPAN_MAX_ATTRS], 1.0), -ENOSPC);
	CHECK_EQ_INT(s->n_attrs, SPAN_MAX_ATTRS);
	CHECK(span_find_attr(s, keys[SPAN_MAX_ATTRS]) == NULL);
	/* an existing key can still be replaced when full */
	CHECK_EQ_INT(span_set_str(s, "k3", "three"), 0);
	CHECK_EQ_STR(span_attr_str(s, span_find_attr(s, "k3")), "three");
	span_release(s);
}

/* every string attribute: inside the arena and NUL-terminated at off+len */
static void check_arena_consistent(const struct span *s)
{
	for (int i = 0; i < s->n_attrs; i++) {
		const struct span_attr *a = &s->attrs[i];

		if (a->type != SPAN_ATTR_STR)
			continue;
		CHECK((size_t)a->off + a->len < SPAN_ARENA_SIZE);
		CHECK(s->arena[a->off + a->len] == '\0');
		CHECK_EQ_INT(strlen(span_attr_str(s, a)), a->len);
	}
	CHECK(s->arena_used <= SPAN_ARENA_SIZE);
}

static void test_arena_truncation(void)
{
	struct span *s = &span_a;
	char big[3000];
	const struct span_attr *a;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memset(s, 0x5a, sizeof(*s)); /* span_init must clear everything */
	span_init(s);
	CHECK_EQ_INT(span_set_strn(s, "a", big, 1000), 0);
	CHECK_EQ_INT(span_set_str(s, "b", big), 0); /* does not fit: truncated */
	a = span_find_attr(s, "b");
	CHECK(a != NULL);
	CHECK(a->len > 0 && a->len < 1048);
	CHECK_EQ_INT(1000 + 1 + a->len + 1, SPAN_ARENA_SIZE - 1);
	/* the arena is full: further values are empty, never out of bounds */
	CHECK_EQ_INT(span_set_str(s, "c", "more"), 0);
	CHECK_EQ_STR(span_attr_str(s, span_find_attr(s, "c")), "");
	CHECK_EQ_INT(span_set_str(s, "d", ""), 0);
	CHECK_EQ_INT(span_set_int(s, "e", 5), 0); /* numbers need no arena */
	CHECK_EQ_INT(span_find_attr(s, "e")->i, 5);
	check_arena_consistent(s);
	span_release(s);
}

static void test_truncation_keeps_utf8_whole(void)
{
	struct span *s = &span_a;
	char filler[SPAN_ARENA_SIZE];
	const char *euro = "\xE2\x82\xAC\xE2\x82\xAC"; /* "€€" */
	const struct span_attr *a;

	for (size_t room = 1; room <= 8; room++) {
		span_init(s);
		/* leave exactly `room` bytes (value + NUL) */
		size_t fill = SPAN_ARENA_SIZE - 1 - room - 1;
		memset(filler, 'f', fill);
		CHECK_EQ_INT(span_set_strn(s, "fill", filler, fill), 0);
		CHECK_EQ_INT(span_set_str(s, "euro", euro), 0);
		a = span_find_attr(s, "euro");
		/* room-1 bytes for the value, cut back to whole characters */
		CHECK_EQ_INT(a->len, (room - 1) / 3 * 3);
		CHECK(memcmp(span_attr_str(s, a), euro, a->len) == 0);
		check_arena_consistent(s);
		span_release(s);
	}
}

static void test_copy_keeps_resource_ref(void)
{
	struct resource *r = resource__new(42, 1000);
	const struct span_attr *a;

	CHECK(r != NULL);
	resource_add_str(r, "service.name", "svc");
	span_init(&span_a);
	span_a.resource = resource_ref(r);
	CHECK_EQ_INT(r->refcount, 2);
	snprintf(span_a.name, sizeof(span_a.name), "GET");
	span_a.kind = SPAN_KIND_SERVER;
	span_set_str(&span_a, "url.path", "/a");
	span_set_int(&span_a, "server.port", 80);

	memset(&span_b, 0x77, sizeof(span_b)); /* garbage in the destination */
	span_copy(&span_b, &span_a);
	CHECK_EQ_INT(r->refcount, 3);
	CHECK(span_b.resource == r);
	CHECK_EQ_STR(span_b.name, "GET");
	a = span_find_attr(&span_b, "url.path");
	CHECK(a != NULL);
	CHECK_EQ_STR(span_attr_str(&span_b, a), "/a");
	CHECK(span_attr_str(&span_b, a) >= span_b.arena &&
	      span_attr_str(&span_b, a) < span_b.arena + SPAN_ARENA_SIZE);
	CHECK(span_b.arena[SPAN_ARENA_SIZE - 1] == '\0');

	span_release(&span_a);
	CHECK_EQ_INT(r->refcount, 2);
	CHECK(span_a.resource == NULL);
	span_release(&span_a); /* twice is harmless */
	CHECK_EQ_INT(r->refcount, 2);
	/* the copy's resource outlives the original span */
	CHECK_EQ_STR(resource_get_str(span_b.resource, "service.name"), "svc");
	span_release(&span_b);
	CHECK_EQ_INT(r->refcount, 1);
	resource_unref(r);
	resource_unref(NULL);
}

static void test_hex_and_kind(void)
{
	const uint8_t id[8] = {0x00, 0x01, 0xab, 0xcd, 0xef, 0x10, 0x7f, 0xff};
	char out[17];

	hex_encode(id, sizeof(id), out);
	CHECK_EQ_STR(out, "0001abcdef107fff");
	hex_encode(id, 0, out);
	CHECK_EQ_STR(out, "");
	CHECK_EQ_STR(span_kind_name(SPAN_KIND_SERVER), "SERVER");
	CHECK_EQ_STR(span_kind_name(SPAN_KIND_CLIENT), "CLIENT");
	CHECK_EQ_STR(span_kind_name(SPAN_KIND_INTERNAL), "INTERNAL");
	CHECK_EQ_STR(span_kind_name((enum span_kind)0), "UNSPECIFIED");
}

static void test_resource(void)
{
	struct resource *r = resource__new(7, 99);

	CHECK(r != NULL);
	CHECK_EQ_INT(r->pid, 7);
	CHECK_EQ_INT(r->proc_start_ns, 99);
	CHECK_EQ_INT(resource_add_int(r, "process.pid", 7), 0);
	CHECK_EQ_INT(resource_add_str(r, "host.name", "h1"), 0);
	/* service.name always goes first */
	CHECK_EQ_INT(resource_add_str(r, "service.name", "svc"), 0);
	CHECK_EQ_INT(r->n_attrs, 3);
	CHECK_EQ_STR(r->attrs[0].key, "service.name");
	CHECK_EQ_STR(r->attrs[1].key, "process.pid");
	CHECK(r->attrs[1].str == NULL && r->attrs[1].num == 7);
	CHECK_EQ_STR(r->attrs[2].key, "host.name");
	/* adding an existing key replaces it */
	CHECK_EQ_INT(resource_add_str(r, "service.name", "svc2"), 0);
	CHECK_EQ_INT(r->n_attrs, 3);
	CHECK_EQ_STR(resource_get_str(r, "service.name"), "svc2");
	CHECK_EQ_INT(resource_add_int(r, "host.name", 5), 0);
	CHECK(resource_get_str(r, "host.name") == NULL); /* now an integer */
	CHECK(resource_get_str(r, "process.pid") == NULL);
	CHECK(resource_get_str(r, "nope") == NULL);
	CHECK(resource_get_str(NULL, "nope") == NULL);
	CHECK(resource_ref(r) == r);
	CHECK_EQ_INT(r->refcount, 2);
	resource_unref(r);
	resource_unref(r);
}

int main(void)
{
	RUN(test_set_and_find);
	RUN(test_replace_same_key);
	RUN(test_add_appends);
	RUN(test_attr_limit);
	RUN(test_arena_truncation);
	RUN(test_truncation_keeps_utf8_whole);
	RUN(test_copy_keeps_resource_ref);
	RUN(test_hex_and_kind);
	RUN(test_resource);
	return unit_summary("test_span");
}
