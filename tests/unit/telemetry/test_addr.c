/* test_addr.c — connection addresses as exported: IPv4, IPv4-mapped IPv6 (a dual-stack socket's
 * IPv4 peer) as the dotted quad, IPv6 in RFC 5952 text; and the address attributes of HTTP and
 * database spans on IPv4, IPv6 and dual-stack connections. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn/trace_links.h"
#include "telemetry/db_span.h"
#include "telemetry/http_span.h"
#include "telemetry/resource.h"
#include "unit.h"

static const char *fmt6(const char *text)
{
	static char out[64];
	uint8_t a[16];

	if (inet_pton(AF_INET6, text, a) != 1)
		return "(bad test input)";
	conn_addr_format(AF_INET6, a, out, sizeof(out));
	return out;
}

static void test_ipv4(void)
{
	const uint8_t v4[16] = {192, 168, 100, 9}, zero[16] = {0}, edge[16] = {10, 0, 255, 1};
	const uint8_t top[16] = {255, 255, 255, 255};
	char out[64], small[6];

	conn_addr_format(AF_INET, v4, out, sizeof(out));
	CHECK_EQ_STR(out, "192.168.100.9");
	conn_addr_format(AF_INET, zero, out, sizeof(out));
	CHECK_EQ_STR(out, "0.0.0.0");
	conn_addr_format(AF_INET, edge, out, sizeof(out));
	CHECK_EQ_STR(out, "10.0.255.1");
	conn_addr_format(AF_INET, top, out, sizeof(out));
	CHECK_EQ_STR(out, "255.255.255.255");
	conn_addr_format(AF_INET, v4, small, sizeof(small));
	CHECK_EQ_STR(small, "192.1");
}

static void test_v4_mapped(void)
{
	const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
	char out[64];

	conn_addr_format(AF_INET6, mapped, out, sizeof(out));
	CHECK_EQ_STR(out, "127.0.0.1");
	CHECK_EQ_STR(fmt6("::ffff:10.1.2.3"), "10.1.2.3");
	CHECK_EQ_STR(fmt6("::ffff:0.0.0.0"), "0.0.0.0");
	/* not mapped: almost-mapped prefixes stay IPv6 (no mixed notation, unlike inet_ntop) */
	CHECK_EQ_STR(fmt6("::ffff:0:0:1"), "::ffff:0:0:1");
	CHECK_EQ_STR(fmt6("::fffe:7f00:1"), "::fffe:7f00:1");
	CHECK_EQ_STR(fmt6("::102:304"), "::102:304");
	CHECK_EQ_STR(fmt6("1::ffff:7f00:1"), "1::ffff:7f00:1");
}

static void test_ipv6_rfc5952(void)
{
	char small[5];
	uint8_t a[16];

	CHECK_EQ_STR(fmt6("::1"), "::1");
	CHECK_EQ_STR(fmt6("::"), "::");
	CHECK_EQ_STR(fmt6("1::"), "1::");
	CHECK_EQ_STR(fmt6("::1:2"), "::1:2"); /* inet_ntop: ::0.1.0.2 */
	CHECK_EQ_STR(fmt6("2001:0DB8:0000:0000:0000:0000:0000:0001"), "2001:db8::1");
	/* no leading zeros, lowercase */
	CHECK_EQ_STR(fmt6("FE80:0000:0000:0000:0A0B:00CD:0EF0:1234"), "fe80::a0b:cd:ef0:1234");
	/* full: nothing to compress */
	CHECK_EQ_STR(fmt6("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2:3:4:5:6");
	/* a single zero field is never compressed */
	CHECK_EQ_STR(fmt6("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
	CHECK_EQ_STR(fmt6("2001:db8:1:1:1:1:1:0"), "2001:db8:1:1:1:1:1:0");
	/* the longest run wins; of equal runs, the first */
	CHECK_EQ_STR(fmt6("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
	CHECK_EQ_STR(fmt6("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
	CHECK_EQ_STR(fmt6("0:0:1:0:0:1:0:0"), "::1:0:0:1:0:0");
	CHECK_EQ_STR(fmt6("1:0:0:0:0:0:0:0"), "1::");
	CHECK_EQ_STR(fmt6("0:0:0:0:0:0:0:ffff"), "::ffff");
	CHECK_EQ_STR(fmt6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
	             "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	/* truncated, terminated */
	inet_pton(AF_INET6, "2001:db8::1", a);
	conn_addr_format(AF_INET6, a, small, sizeof(small));
	CHECK_EQ_STR(small, "2001");
}

/* Random addresses (many zero fields): the text parses back to the same address, has no
 * upper case, no leading zero in a field, and "::" only for a run of two or more zero fields
 * that no longer run precedes. */
static void test_ipv6_random_round_trip(void)
{
	unsigned seed = 12345;

	for (int n = 0; n < 20000; n++) {
		uint8_t a[16], back[16];
		char out[64];
		int best = 0, run = 0;

		for (int i = 0; i < 8; i++) {
			seed = seed * 1103515245u + 12345u;
			unsigned v = (seed >> 16) % 4 ? 0 : seed >> 8 & 0xffff;
			a[2 * i] = (uint8_t)(v >> 8);
			a[2 * i + 1] = (uint8_t)v;
			run = v ? 0 : run + 1;
			if (run > best)
				best = run;
		}
		if (!memcmp(a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12))
			continue;
		conn_addr_format(AF_INET6, a, out, sizeof(out));
		CHECK(inet_pton(AF_INET6, out, back) == 1 && !memcmp(a, back, 16));
		CHECK(strspn(out, "0123456789abcdef:") == strlen(out));
		CHECK((strstr(out, "::") != NULL) == (best >= 2));
		CHECK(strstr(out, ":::") == NULL);
		for (const char *p = out; *p; p++)
			CHECK(!(*p == '0' && (p == out || p[-1] == ':') && p[1] && p[1] != ':'));
	}
}

static struct conn server_conn(uint8_t family, const char *local, const char *remote)
{
	struct conn c;

	memset(&c, 0, sizeof(c));
	c.ref.role = PSCOPE_ROLE_SERVER;
	c.ref.family = family;
	c.ref.local_port = 18703;
	c.ref.remote_port = 40001;
	inet_pton(family, local, c.ref.local_addr);
	inet_pton(family, remote, c.ref.remote_addr);
	return c;
}

static const char *attr(const struct span *s, const char *key)
{
	const struct span_attr *a = span_find_attr(s, key);

	return a ? span_attr_str(s, a) : "(absent)";
}

static long long attr_int(const struct span *s, const char *key)
{
	const struct span_attr *a = span_find_attr(s, key);

	return a ? (long long)a->i : -1;
}

/* SERVER spans: client.address / network.peer.address the peer, server.address the Host
 * header's, else (no Host) the socket's local address — for every family. */
static void test_http_span_addresses(void)
{
	static const struct {
		uint8_t family;
		const char *local, *remote, *want_local, *want_remote;
	} cases[] = {
	    {AF_INET, "127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"},
	    {AF_INET6, "::ffff:127.0.0.1", "::ffff:127.0.0.1", "127.0.0.1", "127.0.0.1"},
	    {AF_INET6, "::1", "::1", "::1", "::1"},
	    {AF_INET6, "2001:db8::a", "fe80::1:0:0:2", "2001:db8::a", "fe80::1:0:0:2"},
	};
	struct resource *r = resource__new(1, 1);
	struct link_ctx ids;
	struct http1_exchange ex;

	memset(&ids, 0, sizeof(ids));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conn c = server_conn(cases[i].family, cases[i].local, cases[i].remote);
		struct http_span_server srv;
		struct span s;

		memset(&ex, 0, sizeof(ex));
		snprintf(ex.method, sizeof(ex.method), "%s", "GET");
		snprintf(ex.target, sizeof(ex.target), "%s", "/x");
		ex.version_major = 1;
		ex.version_minor = 0; /* HTTP/1.0, no Host header */
		ex.status = 200;
		span_init(&s);
		http_span_build(&s, &ex, &c, NULL, r, &ids, 0, &srv);
		CHECK_EQ_STR(srv.address, cases[i].want_local);
		CHECK_EQ_INT(srv.port, 18703);
		CHECK_EQ_STR(attr(&s, "client.address"), cases[i].want_remote);
		CHECK_EQ_STR(attr(&s, "network.peer.address"), cases[i].want_remote);
		CHECK_EQ_STR(attr(&s, "server.address"), cases[i].want_local);
		CHECK_EQ_INT(attr_int(&s, "server.port"), 18703);
		span_release(&s);

		/* a Host header wins; an IPv6 literal's brackets are not part of the address */
		snprintf(ex.host, sizeof(ex.host), "%s", "[::1]:18703");
		span_init(&s);
		http_span_build(&s, &ex, &c, NULL, r, &ids, 0, &srv);
		CHECK_EQ_STR(attr(&s, "server.address"), "::1");
		CHECK_EQ_STR(srv.address, "::1");
		CHECK_EQ_INT(attr_int(&s, "server.port"), 18703);
		span_release(&s);

		/* the client end: server.address falls back to the peer */
		c.ref.role = PSCOPE_ROLE_CLIENT;
		ex.host[0] = '\0';
		span_init(&s);
		http_span_build(&s, &ex, &c, NULL, r, &ids, 0, NULL);
		CHECK_EQ_STR(attr(&s, "server.address"), cases[i].want_remote);
		CHECK_EQ_INT(attr_int(&s, "server.port"), 40001);
		span_release(&s);
		conn_addr_text_free(&c); /* the texts the spans' connection kept */
	}
	resource_unref(r);
}

static void test_db_span_addresses(void)
{
	struct resource *r = resource__new(1, 1);
	struct link_ctx ids;
	struct db_exchange ex;
	struct conn c = server_conn(AF_INET6, "::1", "::1");
	struct span s;

	memset(&ids, 0, sizeof(ids));
	memset(&ex, 0, sizeof(ex));
	ex.system = "redis";
	snprintf(ex.operation, sizeof(ex.operation), "%s", "GET");
	c.ref.role = PSCOPE_ROLE_CLIENT;
	c.ref.remote_port = 6379;
	span_init(&s);
	db_span_build(&s, &ex, &c, r, &ids, 0);
	CHECK_EQ_STR(attr(&s, "server.address"), "::1");
	CHECK_EQ_STR(attr(&s, "network.peer.address"), "::1");
	CHECK_EQ_INT(attr_int(&s, "server.port"), 6379);
	span_release(&s);

	c = server_conn(AF_INET6, "::ffff:127.0.0.1", "::ffff:127.0.0.1");
	c.ref.role = PSCOPE_ROLE_CLIENT;
	span_init(&s);
	db_span_build(&s, &ex, &c, r, &ids, 0);
	CHECK_EQ_STR(attr(&s, "server.address"), "127.0.0.1");
	span_release(&s);
	resource_unref(r);
}

int main(void)
{
	RUN(test_ipv4);
	RUN(test_v4_mapped);
	RUN(test_ipv6_rfc5952);
	RUN(test_ipv6_random_round_trip);
	RUN(test_http_span_addresses);
	RUN(test_db_span_addresses);
	return unit_summary("test_addr");
}
