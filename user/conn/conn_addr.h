/* conn_addr.h — a connection's addresses as text (RFC 5952 for IPv6, dotted
 * quads for IPv4 and IPv4-mapped peers), formatted once per connection: every
 * span of the connection carries them. */
#ifndef PERISCOPE_CONN_ADDR_H
#define PERISCOPE_CONN_ADDR_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn/conn_table.h"

/* addr (16 bytes as in pscope_conn_ref) of family AF_INET or AF_INET6 as text
 * into out (len bytes, cut to fit). */
void conn_addr_format(uint8_t family, const uint8_t addr[16], char *out, size_t len);

/* c's remote (else local) address as text, formatted on first use and kept
 * with c until it leaves the table; *len gets its length. Without memory to
 * keep it, it is formatted into fallback. */
const char *conn_addr_text(struct conn *c, bool remote, char fallback[INET6_ADDRSTRLEN],
                           size_t *len);

/* Frees what conn_addr_text kept for c (the table calls it). */
void conn_addr_text_free(struct conn *c);

#endif
