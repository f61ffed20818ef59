/* test_route.c — the route heuristic over real-world paths, and user route
 * patterns that win over it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "telemetry/route.h"
#include "unit.h"

struct route_case {
	const char *path;
	const char *route;
};

static const struct route_case heuristic_cases[] = {
    {"/", "/"},
    {"", "/"},
    {"/index.html", "/index.html"},
    {"/favicon.ico", "/favicon.ico"},
    {"/api/v1/users", "/api/v1/users"},
    {"/api/v1/users/", "/api/v1/users/"},
    {"/users/123", "/users/*"},
    {"/users/123/orders/9f8e7d6c5b4a", "/users/*/orders/*"},
    {"/users/123?page=2&sort=asc", "/users/*"},
    {"/search?q=hello+world", "/search"},
    {"/docs/intro#install", "/docs/intro"},
    {"/orders/550e8400-e29b-41d4-a716-446655440000", "/orders/*"},
    {"/orders/550E8400E29B41D4A716446655440000/items", "/orders/*/items"},
    {"/commits/da39a3ee5e6b4b0d3255bfef95601890afd80709", "/commits/*"},
    {"/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "/blobs/*"},
    {"/objects/507f1f77bcf86cd799439011", "/objects/*"},
    {"/watch/dQw4w9WgXcQ", "/watch/*"},
    {"/archive/2024-01-15", "/archive/*"},
    {"/archive/2024/01/15/post", "/archive/*/*/*/post"},
    {"/reports/20240115.csv", "/reports/*"},
    {"/users/alice@example.com", "/users/*"},
    {"/wiki/Caf%C3%A9", "/wiki/*"},
    {"/wiki/Café", "/wiki/*"},
    {"/~alice/public", "/*/public"},
    {"/static/js/main.3f2a9c1b.js", "/static/js/*"},
    {"/static/css/app.css", "/static/css/app.css"},
    {"/assets/logo-v2.png", "/assets/logo-v2.png"},
    {"/api/v2beta/projects", "/api/v2beta/projects"},
    {"/apis/apps/v1beta1/namespaces/default/deployments",
     "/apis/apps/v1beta1/namespaces/default/deployments"},
    {"/oauth2/authorize", "/oauth2/authorize"},
    {"/.well-known/openid-configuration", "/.well-known/openid-configuration"},
    {"/healthz", "/healthz"},
    {"/metrics", "/metrics"},
    {"/packages/lodash/4.17.21", "/packages/lodash/*"},
    {"/ip/10.0.0.1", "/ip/*"},
    {"/invoices/INV-2024-00123", "/invoices/*"},
    {"/products/SKU12345/reviews", "/products/*/reviews"},
    {"/blog/how-to-train-your-dragon", "/blog/*"},
    {"/sessions/eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0", "/sessions/*"},
    {"/cart;jsessionid=A1B2C3D4E5F6/checkout", "/cart/checkout"},
    {"/items/-42", "/items/*"},
    {"/prices/3.14", "/prices/*"},
    {"/a//b", "/a//b"},
    {"http://example.com/users/42?x=1", "/users/*"},
    {"https://example.com:8443", "/"},
    {"*", "*"},
    {"users/7", "/users/*"},
    {"/tokens/a1b2c3d4e5", "/tokens/*"},
    {"/v1/accounts/acct_1MqDp2LkdIwHu7ix/charges", "/v1/accounts/*/charges"},
    {"/repos/torvalds/linux/pulls/1234/files", "/repos/torvalds/linux/pulls/*/files"},
    {"/graphql", "/graphql"},
    {"/ws/chat", "/ws/chat"},
    {"/photos/IMG_20240115_123456.jpg", "/photos/*"},
    {"/download/ubuntu-22.04-server.iso", "/download/*"},
    {"/user/profile/settings", "/user/profile/settings"},
    {"/api/users/me", "/api/users/me"},
};

static void test_heuristic_table(void)
{
	char out[ROUTE_MAX];
	size_t n = sizeof(heuristic_cases) / sizeof(heuristic_cases[0]);

	CHECK(n >= 40);
	for (size_t i = 0; i < n; i++) {
		int len = route_from_path(heuristic_cases[i].path, out, sizeof(out));

		CHECK_EQ_INT(len, (int)strlen(heuristic_cases[i].route));
		CHECK_EQ_STR(out, heuristic_cases[i].route);
	}
}

static void test_bounds(void)
{
	char small[6];
	char out[ROUTE_MAX];
	char deep[ROUTE_MAX_SEGMENTS * 4 + 8];
	char expect[ROUTE_MAX];
	size_t at = 0, e = 0;

	CHECK_EQ_INT(route_from_path(NULL, out, sizeof(out)), -EINVAL);
	CHECK_EQ_INT(route_from_path("/", NULL, 4), -EINVAL);
	CHECK_EQ_INT(route_from_path("/", out, 0), -EINVAL);
	/* The route of "/users/1" needs 9 bytes. */
	CHECK_EQ_INT(route_from_path("/users/1", small, sizeof(small)), -ENOSPC);
	CHECK_EQ_STR(small, "");
	CHECK_EQ_INT(route_from_path("/abcd", small, sizeof(small)), 5);
	CHECK_EQ_STR(small, "/abcd");
	CHECK_EQ_INT(route_from_path("/abcde", small, sizeof(small)), -ENOSPC);

	/* More than ROUTE_MAX_SEGMENTS segments end in one "*" segment. */
	for (int i = 0; i < ROUTE_MAX_SEGMENTS + 3; i++)
		at += (size_t)snprintf(deep + at, sizeof(deep) - at, "/ab");
	for (int i = 0; i < ROUTE_MAX_SEGMENTS - 1; i++)
		e += (size_t)snprintf(expect + e, sizeof(expect) - e, "/ab");
	snprintf(expect + e, sizeof(expect) - e, "/*");
	CHECK(route_from_path(deep, out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, expect);
}

static void test_patterns(void)
{
	struct route_table *t = route_table__new();
	char out[ROUTE_MAX];

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK_EQ_INT(route_table_add(t, "/users/{id}/orders"), 0);
	CHECK_EQ_INT(route_table_add(t, "/users/:id"), 0);
	CHECK_EQ_INT(route_table_add(t, "/static/*"), 0);
	CHECK_EQ_INT(route_table_add(t, "/teams/*/members/{member}"), 0);
	CHECK_EQ_INT(route_table_add(t, "/blog/{slug}"), 0);
	/* Shadowed by the earlier /blog/{slug}: never used. */
	CHECK_EQ_INT(route_table_add(t, "/blog/archive"), 0);
	CHECK_EQ_INT(route_table_count(t), 6);

	CHECK(route_table_match(t, "/users/42/orders", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/users/{id}/orders");
	CHECK(route_table_match(t, "/users/42/orders/?page=3", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/users/{id}/orders");
	CHECK(route_table_match(t, "/users/bob", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/users/:id");
	CHECK(route_table_match(t, "/static/css/site/app.css", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/static/*");
	CHECK(route_table_match(t, "/static/", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/static/*");
	CHECK(route_table_match(t, "/teams/red/members/7", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/teams/*/members/{member}");
	CHECK(route_table_match(t, "/blog/archive", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/blog/{slug}");
	CHECK(route_table_match(t, "http://h/users/9/orders", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/users/{id}/orders");

	/* No pattern matches: the heuristic decides. */
	CHECK(route_table_match(t, "/users/42/orders/77", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/users/*/orders/*");
	CHECK(route_table_match(t, "/users//orders", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/users//orders");
	CHECK(route_table_match(t, "/static", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/static");
	CHECK(route_table_match(NULL, "/x/123", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/x/*");

	/* Malformed patterns. */
	CHECK_EQ_INT(route_table_add(t, "users"), -EINVAL);
	CHECK_EQ_INT(route_table_add(t, ""), -EINVAL);
	CHECK_EQ_INT(route_table_add(t, "/users/{id"), -EINVAL);
	CHECK_EQ_INT(route_table_add(t, "/users/{}"), -EINVAL);
	CHECK_EQ_INT(route_table_add(t, "/users/:"), -EINVAL);
	CHECK_EQ_INT(route_table_add(t, "/a/b*c"), -EINVAL);
	CHECK_EQ_INT(route_table_add(t, "/a?b=1"), -EINVAL);
	CHECK_EQ_INT(route_table_add(t, "/a b"), -EINVAL);
	CHECK_EQ_INT(route_table_add(NULL, "/a"), -EINVAL);
	CHECK_EQ_INT(route_table_count(t), 6);
	route_table__free(t);
	route_table__free(NULL);
}

static void test_pattern_list(void)
{
	struct route_table *t = route_table__new();
	char out[ROUTE_MAX];

	CHECK(t != NULL);
	if (!t)
		return;
	CHECK_EQ_INT(route_table_add_list(t, " /a/{x} ,/b/*,, /c "), 0);
	CHECK_EQ_INT(route_table_count(t), 3);
	CHECK(route_table_match(t, "/c", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/c");
	CHECK(route_table_match(t, "/a/zz", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/a/{x}");
	CHECK_EQ_INT(route_table_add_list(t, "/d,bad,/e"), -EINVAL);
	CHECK_EQ_INT(route_table_count(t), 4);
	/* A matched pattern that does not fit the output. */
	char small[4];
	CHECK_EQ_INT(route_table_match(t, "/a/zz", small, sizeof(small)), -ENOSPC);
	route_table__free(t);
}

static void test_pattern_limit(void)
{
	struct route_table *t = route_table__new();
	char p[32];
	int err = 0;

	CHECK(t != NULL);
	if (!t)
		return;
	for (int i = 0; i < ROUTE_MAX_PATTERNS && !err; i++) {
		snprintf(p, sizeof(p), "/p%d/{x}", i);
		err = route_table_add(t, p);
	}
	CHECK_EQ_INT(err, 0);
	CHECK_EQ_INT(route_table_add(t, "/one/more"), -ENOSPC);
	route_table__free(t);
}

/* The table remembers the routes of recent targets: a target seen again, or
 * one that shares a cache slot with many others, gets the heuristic's answer
 * or the pattern's, and a pattern added later wins over what was remembered. */
static void test_match_cache(void)
{
	struct route_table *t = route_table__new();
	char out[ROUTE_MAX], want[ROUTE_MAX], target[64];

	CHECK(t != NULL);
	if (!t)
		return;
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < sizeof(heuristic_cases) / sizeof(heuristic_cases[0]); i++) {
			int len = route_table_match(t, heuristic_cases[i].path, out, sizeof(out));

			CHECK_EQ_INT(len, (int)strlen(heuristic_cases[i].route));
			CHECK_EQ_STR(out, heuristic_cases[i].route);
		}
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(target, sizeof(target), "/items/%d/view", i % 300);
		CHECK(route_table_match(t, target, out, sizeof(out)) > 0);
		CHECK(route_from_path(target, want, sizeof(want)) > 0);
		CHECK_EQ_STR(out, want);
	}
	CHECK(route_table_match(t, "/users/bob", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/users/bob");
	CHECK_EQ_INT(route_table_add(t, "/users/{name}"), 0);
	CHECK(route_table_match(t, "/users/bob", out, sizeof(out)) > 0);
	CHECK_EQ_STR(out, "/users/{name}");
	/* remembered, but not room for it in a smaller output */
	char small[8];
	CHECK_EQ_INT(route_table_match(t, "/users/bob", small, sizeof(small)), -ENOSPC);
	CHECK_EQ_STR(small, "");
	route_table__free(t);
}

int main(void)
{
	RUN(test_heuristic_table);
	RUN(test_bounds);
	RUN(test_patterns);
	RUN(test_pattern_list);
	RUN(test_pattern_limit);
	RUN(test_match_cache);
	return unit_summary("test_route");
}
