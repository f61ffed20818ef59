/* conn_addr.c — connection addresses as text, kept per connection
 * (conn_addr.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conn/conn_addr.h"

/* The texts of one connection's two addresses (struct conn.addr_text). */
struct conn_addr_text {
	uint8_t len[2]; /* 0: not formatted yet (no address formats as "") */
	char text[2][INET6_ADDRSTRLEN];
};

/* Dotted quad, without inet_ntop's sprintf: every span formats two. */
static void ipv4_format(const uint8_t a[4], char *out, size_t len)
{
	char buf[16];
	size_t n = 0;

	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];

		if (i)
			buf[n++] = '.';
		if (v >= 100)
			buf[n++] = (char)('0' + v / 100);
		if (v >= 10)
			buf[n++] = (char)('0' + v / 10 % 10);
		buf[n++] = (char)('0' + v % 10);
	}
	if (!len)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(out, buf, n);
	out[n] = '\0';
}

/* RFC 5952 text: lowercase hex without leading zeros, the longest run of two or more zero
 * fields (the first of equal runs) as "::", never a single zero field. glibc's inet_ntop
 * instead writes ::1:2 as ::0.1.0.2 (the deprecated IPv4-compatible form). */
static void ipv6_format(const uint8_t a[16], char *out, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char buf[INET6_ADDRSTRLEN];
	int best = -1, best_len = 1, run = 0;
	size_t n = 0;

	for (int i = 0; i < 8; i++) {
		run = a[2 * i] | a[2 * i + 1] ? 0 : run + 1;
		if (run > best_len) {
			best_len = run;
			best = i - run + 1;
		}
	}
	for (int i = 0; i < 8; i++) {
		unsigned v = (unsigned)a[2 * i] << 8 | a[2 * i + 1];
		bool lead = true;

		if (i == best) {
			buf[n++] = ':';
			buf[n++] = ':';
			i += best_len - 1;
			continue;
		}
		if (i && i != best + best_len)
			buf[n++] = ':';
		for (int shift = 12; shift >= 0; shift -= 4) {
			unsigned d = v >> shift & 0xf;

			if (lead && d == 0 && shift)
				continue;
			lead = false;
			buf[n++] = hex[d];
		}
	}
	if (!len)
		return;
	if (n >= len)
		n = len - 1;
	memcpy(out, buf, n);
	out[n] = '\0';
}

void conn_addr_format(uint8_t family, const uint8_t addr[16], char *out, size_t len)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (family == AF_INET)
		ipv4_format(addr, out, len);
	else if (!memcmp(addr, v4mapped, 12))
		ipv4_format(addr + 12, out, len); /* a dual-stack socket's IPv4 peer */
	else
		ipv6_format(addr, out, len);
}

const char *conn_addr_text(struct conn *c, bool remote, char fallback[INET6_ADDRSTRLEN],
                           size_t *len)
{
	struct conn_addr_text *t = c->addr_text;
	int i = remote ? 1 : 0;

	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t) {
			conn_addr_format(c->ref.family,
			                 remote ? c->ref.remote_addr : c->ref.local_addr, fallback,
			                 INET6_ADDRSTRLEN);
			*len = strlen(fallback);
			return fallback;
		}
		c->addr_text = t;
	}
	if (!t->len[i]) {
		conn_addr_format(c->ref.family, remote ? c->ref.remote_addr : c->ref.local_addr,
		                 t->text[i], sizeof(t->text[i]));
		t->len[i] = (uint8_t)strlen(t->text[i]);
	}
	*len = t->len[i];
	return t->text[i];
}

void conn_addr_text_free(struct conn *c)
{
	free(c->addr_text);
	c->addr_text = NULL;
}
