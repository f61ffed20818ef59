/* test_hpack.c — unit tests for the HPACK decoder: the RFC 7541 Appendix C
 * examples (table state after each block), Huffman codes from Appendix B,
 * size updates, eviction, malformed input in both modes, resource limits. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "parsers/hpack.h"
#include "unit.h"

#define LIST_MAX 32

struct hlist {
	int n;
	char text[LIST_MAX][512]; /* "name: value" */
	unsigned flags[LIST_MAX];
};

static void collect(void *ctx, const struct hpack_header *h)
{
	struct hlist *l = ctx;

	if (l->n >= LIST_MAX)
		return;
	snprintf(l->text[l->n], sizeof(l->text[0]), "%.*s: %.*s", (int)h->name_len, h->name,
	         (int)h->value_len, h->value);
	l->flags[l->n] = h->flags;
	l->n++;
}

static size_t unhex(const char *hex, uint8_t *out)
{
	size_t n = 0;

	while (*hex) {
		unsigned v;

		if (*hex == ' ' || *hex == '\n') {
			hex++;
			continue;
		}
		sscanf(hex, "%2x", &v);
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

static int decode_hex(struct hpack_decoder *d, const char *hex, struct hlist *l)
{
	uint8_t buf[1024];
	size_t n = unhex(hex, buf);

	memset(l, 0, sizeof(*l));
	return hpack_decode_block(d, buf, n, collect, l);
}

static void check_list(const struct hlist *l, const char *const *expect)
{
	int n = 0;

	while (expect[n])
		n++;
	CHECK_EQ_INT(l->n, n);
	for (int i = 0; i < n && i < l->n; i++)
		CHECK_EQ_STR(l->text[i], expect[i]);
}

/* entries newest first */
static void check_table(const struct hpack_decoder *d, uint32_t size, const char *const *entries)
{
	size_t n = 0;

	while (entries[n])
		n++;
	CHECK_EQ_INT(hpack_decoder_table_size(d), size);
	CHECK_EQ_INT(hpack_decoder_table_count(d), n);
	for (size_t i = 0; i < n; i++) {
		struct hpack_header h;
		char text[512];

		CHECK_EQ_INT(hpack_decoder_table_entry(d, i + 1, &h), 0);
		snprintf(text, sizeof(text), "%.*s: %.*s", (int)h.name_len, h.name,
		         (int)h.value_len, h.value);
		CHECK_EQ_STR(text, entries[i]);
	}
	CHECK(hpack_decoder_table_entry(d, n + 1, &(struct hpack_header){0}) == -ENOENT);
}

static const char *const EMPTY[] = {NULL};

static void test_c2_field_representations(void)
{
	struct hpack_decoder *d = hpack_decoder__new(4096, false);
	struct hlist l;

	/* C.2.1 literal with indexing */
	CHECK_EQ_INT(
	    decode_hex(d, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572", &l),
	    0);
	check_list(&l, (const char *const[]){"custom-key: custom-header", NULL});
	check_table(d, 55, (const char *const[]){"custom-key: custom-header", NULL});
	hpack_decoder__free(d);

	/* C.2.2 literal without indexing */
	d = hpack_decoder__new(4096, false);
	CHECK_EQ_INT(decode_hex(d, "040c 2f73 616d 706c 652f 7061 7468", &l), 0);
	check_list(&l, (const char *const[]){":path: /sample/path", NULL});
	CHECK(l.flags[0] & HPACK_F_STATIC);
	check_table(d, 0, EMPTY);
	hpack_decoder__free(d);

	/* C.2.3 literal never indexed */
	d = hpack_decoder__new(4096, false);
	CHECK_EQ_INT(decode_hex(d, "1008 7061 7373 776f 7264 0673 6563 7265 74", &l), 0);
	check_list(&l, (const char *const[]){"password: secret", NULL});
	CHECK(l.flags[0] & HPACK_F_NEVER_INDEXED);
	check_table(d, 0, EMPTY);
	hpack_decoder__free(d);

	/* C.2.4 indexed */
	d = hpack_decoder__new(4096, false);
	CHECK_EQ_INT(decode_hex(d, "82", &l), 0);
	check_list(&l, (const char *const[]){":method: GET", NULL});
	CHECK(l.flags[0] & HPACK_F_STATIC);
	CHECK(l.flags[0] & HPACK_F_INDEXED);
	check_table(d, 0, EMPTY);
	hpack_decoder__free(d);
}

static const char *const REQ1[] = {":method: GET", ":scheme: http", ":path: /",
                                   ":authority: www.example.com", NULL};
static const char *const REQ2[] = {":method: GET",
                                   ":scheme: http",
                                   ":path: /",
                                   ":authority: www.example.com",
                                   "cache-control: no-cache",
                                   NULL};
static const char *const REQ3[] = {":method: GET",
                                   ":scheme: https",
                                   ":path: /index.html",
                                   ":authority: www.example.com",
                                   "custom-key: custom-value",
                                   NULL};
static const char *const REQ_T1[] = {":authority: www.example.com", NULL};
static const char *const REQ_T2[] = {"cache-control: no-cache", ":authority: www.example.com",
                                     NULL};
static const char *const REQ_T3[] = {"custom-key: custom-value", "cache-control: no-cache",
                                     ":authority: www.example.com", NULL};

static void run_requests(const char *h1, const char *h2, const char *h3)
{
	struct hpack_decoder *d = hpack_decoder__new(4096, false);
	struct hlist l;

	CHECK_EQ_INT(decode_hex(d, h1, &l), 0);
	check_list(&l, REQ1);
	check_table(d, 57, REQ_T1);
	CHECK_EQ_INT(decode_hex(d, h2, &l), 0);
	check_list(&l, REQ2);
	CHECK(l.flags[3] & HPACK_F_DYNAMIC);
	check_table(d, 110, REQ_T2);
	CHECK_EQ_INT(decode_hex(d, h3, &l), 0);
	check_list(&l, REQ3);
	check_table(d, 164, REQ_T3);
	CHECK(!hpack_decoder_late_join(d));
	hpack_decoder__free(d);
}

static void test_c3_requests(void)
{
	run_requests("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
	             "8286 84be 5808 6e6f 2d63 6163 6865",
	             "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65");
}

static void test_c4_requests_huffman(void)
{
	run_requests("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff", "8286 84be 5886 a8eb 1064 9cbf",
	             "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf");
}

static const char *const RESP1[] = {":status: 302", "cache-control: private",
                                    "date: Mon, 21 Oct 2013 20:13:21 GMT",
                                    "location: https://www.example.com", NULL};
static const char *const RESP2[] = {":status: 307", "cache-control: private",
                                    "date: Mon, 21 Oct 2013 20:13:21 GMT",
                                    "location: https://www.example.com", NULL};
static const char *const RESP3[] = {
    ":status: 200",
    "cache-control: private",
    "date: Mon, 21 Oct 2013 20:13:22 GMT",
    "location: https://www.example.com",
    "content-encoding: gzip",
    "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    NULL};
static const char *const RESP_T1[] = {"location: https://www.example.com",
                                      "date: Mon, 21 Oct 2013 20:13:21 GMT",
                                      "cache-control: private", ":status: 302", NULL};
static const char *const RESP_T2[] = {":status: 307", "location: https://www.example.com",
                                      "date: Mon, 21 Oct 2013 20:13:21 GMT",
                                      "cache-control: private", NULL};
static const char *const RESP_T3[] = {
    "set-cookie: foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    "content-encoding: gzip", "date: Mon, 21 Oct 2013 20:13:22 GMT", NULL};

static void run_responses(const char *h1, const char *h2, const char *h3)
{
	struct hpack_decoder *d = hpack_decoder__new(256, false);
	struct hpack_stats st;
	struct hlist l;

	CHECK_EQ_INT(hpack_decoder_table_capacity(d), 256);
	CHECK_EQ_INT(decode_hex(d, h1, &l), 0);
	check_list(&l, RESP1);
	check_table(d, 222, RESP_T1);
	CHECK_EQ_INT(decode_hex(d, h2, &l), 0);
	check_list(&l, RESP2);
	check_table(d, 222, RESP_T2);
	CHECK_EQ_INT(decode_hex(d, h3, &l), 0);
	check_list(&l, RESP3);
	check_table(d, 215, RESP_T3);
	hpack_decoder_stats(d, &st);
	CHECK_EQ_INT(st.blocks, 3);
	CHECK_EQ_INT(st.headers, 14);
	CHECK_EQ_INT(st.evictions, 5);
	CHECK_EQ_INT(st.unknown_refs, 0);
	hpack_decoder__free(d);
}

static void test_c5_responses(void)
{
	run_responses("4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 "
	              "3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 "
	              "7861 6d70 6c65 2e63 6f6d",
	              "4803 3330 37c1 c0bf",
	              "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 "
	              "474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 "
	              "454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 "
	              "6572 7369 6f6e 3d31");
}

static void test_c6_responses_huffman(void)
{
	run_responses("4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 "
	              "82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
	              "4883 640e ffc1 c0bf",
	              "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b "
	              "d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 "
	              "0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07");
}

/* Huffman strings built from codes copied from RFC 7541 Appendix B. */
struct bitw {
	uint8_t buf[256];
	size_t bits;
};

static void put_bits(struct bitw *w, uint32_t code, unsigned len)
{
	for (unsigned i = 0; i < len; i++) {
		unsigned bit = (code >> (len - 1 - i)) & 1;

		if (bit)
			w->buf[w->bits / 8] |= (uint8_t)(0x80 >> (w->bits % 8));
		w->bits++;
	}
}

struct raw_value {
	char value[256];
	size_t len;
};

static void collect_raw(void *ctx, const struct hpack_header *h)
{
	struct raw_value *r = ctx;

	r->len = h->value_len < sizeof(r->value) ? h->value_len : sizeof(r->value);
	memcpy(r->value, h->value, r->len);
}

static void test_huffman_codes(void)
{
	static const struct {
		uint8_t sym;
		uint32_t code;
		unsigned len;
	} codes[] = {
	    {0, 0x1ff8, 13},      {1, 0x7fffd8, 23},    {9, 0xffffea, 24},    {10, 0x3ffffffc, 30},
	    {13, 0x3ffffffd, 30}, {22, 0x3ffffffe, 30}, {32, 0x14, 6},        {'&', 0xf8, 8},
	    {'<', 0x7ffc, 15},    {'\\', 0x7fff0, 19},  {'a', 0x3, 5},        {'z', 0x7b, 7},
	    {127, 0xffffffc, 28}, {128, 0xfffe6, 20},   {153, 0x1fffdc, 21},  {192, 0x3ffffe0, 26},
	    {199, 0x1ffffec, 25}, {203, 0x7ffffde, 27}, {220, 0xffffffd, 28}, {249, 0xffffffe, 28},
	    {254, 0x7fffff0, 27}, {255, 0x3ffffee, 26}, {'~', 0x1ffd, 13},    {'}', 0x3ffd, 14},
	    {'0', 0x0, 5},        {'t', 0x9, 5},
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);
	struct hpack_decoder *d = hpack_decoder__new(4096, false);
	struct bitw w = {{0}, 0};
	uint8_t block[300];
	size_t len, blen = 0;
	struct raw_value raw;

	for (size_t i = 0; i < n; i++)
		put_bits(&w, codes[i].code, codes[i].len);
	/* pad with ones */
	while (w.bits % 8)
		put_bits(&w, 1, 1);
	len = w.bits / 8;
	block[blen++] = 0x00; /* literal without indexing, literal name */
	block[blen++] = 0x01;
	block[blen++] = 'x';
	CHECK(len < 127);
	block[blen++] = (uint8_t)(0x80 | len); /* Huffman */
	memcpy(block + blen, w.buf, len);
	blen += len;
	memset(&raw, 0, sizeof(raw));
	CHECK_EQ_INT(hpack_decode_block(d, block, blen, collect_raw, &raw), 0);
	CHECK_EQ_INT(raw.len, n);
	for (size_t i = 0; i < n && i < raw.len; i++)
		CHECK_EQ_INT((uint8_t)raw.value[i], codes[i].sym);
	hpack_decoder__free(d);
}

static void test_huffman_errors(void)
{
	struct hpack_decoder *d = hpack_decoder__new(4096, false);
	struct hpack_decoder *lj = hpack_decoder__new(4096, true);
	struct hlist l;

	/* '0' then 3 zero bits of padding */
	CHECK_EQ_INT(decode_hex(d, "0001 7881 00", &l), -EBADMSG);
	/* 16 one bits: padding longer than 7 bits */
	CHECK_EQ_INT(decode_hex(d, "0001 7882 ffff", &l), -EBADMSG);
	/* EOS (30 ones) inside the string */
	CHECK_EQ_INT(decode_hex(d, "0001 7884 ffff ffff", &l), -EBADMSG);
	/* empty Huffman string and 7 bits of padding are fine: 'a' = 00011 + 111 */
	CHECK_EQ_INT(decode_hex(d, "0001 7880 0001 7981 1f", &l), 0);
	check_list(&l, (const char *const[]){"x: ", "y: a", NULL});
	/* late-join: the bad value is unknown, decoding goes on */
	CHECK_EQ_INT(decode_hex(lj, "0001 7881 00 82", &l), 0);
	CHECK_EQ_INT(l.n, 2);
	CHECK(l.flags[0] & HPACK_F_UNKNOWN_VALUE);
	CHECK(!(l.flags[0] & HPACK_F_UNKNOWN_NAME));
	CHECK_EQ_STR(l.text[1], ":method: GET");
	hpack_decoder__free(d);
	hpack_decoder__free(lj);
}

static void test_integers(void)
{
	struct hpack_decoder *d = hpack_decoder__new(4096, false);
	struct hlist l;

	/* C.1.2: 1337 on a 5-bit prefix, as a size update */
	CHECK_EQ_INT(decode_hex(d, "3f9a 0a", &l), 0);
	CHECK_EQ_INT(hpack_decoder_table_capacity(d), 1337);
	/* 4096 exactly: 31 + 4065 = 31 + 0x61 + 0x1f * 128 */
	CHECK_EQ_INT(decode_hex(d, "3fe1 1f", &l), 0);
	CHECK_EQ_INT(hpack_decoder_table_capacity(d), 4096);
	/* overflow of 32 bits */
	CHECK_EQ_INT(decode_hex(d, "ffff ffff ff0f", &l), -EBADMSG);
	/* UINT32_MAX is a valid integer but no index */
	CHECK_EQ_INT(decode_hex(d, "ff80 ffff ff0f", &l), -EBADMSG);
	/* too many continuation bytes, even if zero */
	CHECK_EQ_INT(decode_hex(d, "ff80 8080 8080 00", &l), -EBADMSG);
	/* 0x82 written with a redundant zero continuation: 127 + 0 would be
	 * index 127; the 7-bit prefix itself is not full here */
	CHECK_EQ_INT(decode_hex(d, "ff80 00", &l), -EBADMSG); /* index 127: no such entry */
	/* truncated integer */
	CHECK_EQ_INT(decode_hex(d, "ff", &l), -EBADMSG);
	CHECK_EQ_INT(decode_hex(d, "0f", &l), -EBADMSG);
	/* string length past the end */
	CHECK_EQ_INT(decode_hex(d, "0005 6162", &l), -EBADMSG);
	/* literal name but no value */
	CHECK_EQ_INT(decode_hex(d, "0001 61", &l), -EBADMSG);
	hpack_decoder__free(d);
}

static void test_size_updates(void)
{
	struct hpack_decoder *d = hpack_decoder__new(4096, false);
	struct hpack_decoder *lj = hpack_decoder__new(4096, true);
	struct hlist l;

	CHECK_EQ_INT(
	    decode_hex(d, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572", &l),
	    0);
	CHECK_EQ_INT(hpack_decoder_table_count(d), 1);
	/* two updates at the start: 0 empties the table, then back to 100 */
	CHECK_EQ_INT(decode_hex(d, "203f 4582", &l), 0);
	CHECK_EQ_INT(hpack_decoder_table_count(d), 0);
	CHECK_EQ_INT(hpack_decoder_table_capacity(d), 100);
	check_list(&l, (const char *const[]){":method: GET", NULL});
	/* an update after a field */
	CHECK_EQ_INT(decode_hex(d, "8220", &l), -EBADMSG);
	/* above the announced setting */
	CHECK_EQ_INT(decode_hex(d, "3fe2 1f", &l), -EBADMSG); /* 4097 */
	hpack_decoder_set_max_table_size(d, 8192);
	CHECK_EQ_INT(decode_hex(d, "3fe2 1f", &l), 0);
	CHECK_EQ_INT(hpack_decoder_table_capacity(d), 4097);
	/* late-join accepts both */
	CHECK_EQ_INT(decode_hex(lj, "8220 3fe2 3f", &l), 0);
	CHECK_EQ_INT(hpack_decoder_table_capacity(lj), 8193);
	hpack_decoder__free(d);
	hpack_decoder__free(lj);
}

static void test_eviction(void)
{
	struct hpack_decoder *d = hpack_decoder__new(4096, false);
	struct hlist l;

	/* capacity 64: "aaaa: b" (37) then a literal with indexing that reuses
	 * that entry's name and evicts it while being added (RFC 7541 4.4) */
	CHECK_EQ_INT(decode_hex(d, "3f21 4004 6161 6161 0162", &l), 0);
	check_table(d, 37, (const char *const[]){"aaaa: b", NULL});
	CHECK_EQ_INT(decode_hex(d, "7e05 6363 6363 63", &l), 0);
	check_list(&l, (const char *const[]){"aaaa: ccccc", NULL});
	check_table(d, 41, (const char *const[]){"aaaa: ccccc", NULL});
	/* an entry of exactly the capacity (32 + 32 bytes) */
	CHECK_EQ_INT(decode_hex(d,
	                        "4010 6161 6161 6161 6161 6161 6161 6161 6161 1062 6262 6262 6262 "
	                        "6262 6262 6262 6262 62",
	                        &l),
	             0);
	CHECK_EQ_INT(hpack_decoder_table_count(d), 1);
	CHECK_EQ_INT(hpack_decoder_table_size(d), 64);
	/* one byte more: the table is emptied, the field still reported */
	CHECK_EQ_INT(decode_hex(d,
	                        "4010 6161 6161 6161 6161 6161 6161 6161 6161 1162 6262 6262 6262 "
	                        "6262 6262 6262 6262 6262",
	                        &l),
	             0);
	CHECK_EQ_INT(l.n, 1);
	CHECK_EQ_INT(hpack_decoder_table_count(d), 0);
	CHECK_EQ_INT(hpack_decoder_table_size(d), 0);
	/* many small entries churn through the buffer (compaction) */
	for (int i = 0; i < 500; i++) {
		uint8_t blk[8] = {0x40, 0x01, (uint8_t)('a' + i % 26),
		                  0x02, '0',  (uint8_t)('0' + i % 10)};

		CHECK_EQ_INT(hpack_decode_block(d, blk, 6, NULL, NULL), 0);
	}
	check_table(d, 35, (const char *const[]){"f: 09", NULL}); /* 64 holds one entry of 35 */
	CHECK_EQ_INT(decode_hex(d, "3f80 01", &l), 0);            /* 159 */
	for (int i = 0; i < 500; i++) {
		uint8_t blk[8] = {0x40, 0x01, (uint8_t)('a' + i % 26),
		                  0x02, '0',  (uint8_t)('0' + i % 10)};

		CHECK_EQ_INT(hpack_decode_block(d, blk, 6, NULL, NULL), 0);
	}
	/* 159 holds four entries of 35: i = 496..499 */
	check_table(d, 140, (const char *const[]){"f: 09", "e: 08", "d: 07", "c: 06", NULL});
	CHECK_EQ_INT(decode_hex(d, "c1 bf", &l), 0);
	check_list(&l, (const char *const[]){"c: 06", "e: 08", NULL});
	hpack_decoder__free(d);
}

static void test_bogus_index(void)
{
	struct hpack_decoder *d = hpack_decoder__new(4096, false);
	struct hpack_decoder *lj = hpack_decoder__new(4096, true);
	struct hpack_stats st;
	struct hlist l;

	CHECK_EQ_INT(decode_hex(d, "80", &l), -EBADMSG); /* index 0 */
	CHECK_EQ_INT(decode_hex(d, "82be", &l), -EBADMSG);
	CHECK_EQ_INT(l.n, 1); /* reported before the error */
	CHECK_EQ_INT(decode_hex(d, "7e01 78", &l), -EBADMSG);
	hpack_decoder_stats(d, &st);
	CHECK_EQ_INT(st.errors, 3);

	/* late-join: unknown name and value; a literal with indexing naming an
	 * unknown entry is inserted (unknown name) */
	CHECK_EQ_INT(decode_hex(lj, "be 7e01 78 82", &l), 0);
	CHECK_EQ_INT(l.n, 3);
	CHECK((l.flags[0] & (HPACK_F_UNKNOWN_NAME | HPACK_F_UNKNOWN_VALUE)) ==
	      (HPACK_F_UNKNOWN_NAME | HPACK_F_UNKNOWN_VALUE));
	CHECK_EQ_STR(l.text[0], ": ");
	CHECK(l.flags[1] & HPACK_F_UNKNOWN_NAME);
	CHECK(!(l.flags[1] & HPACK_F_UNKNOWN_VALUE));
	CHECK_EQ_STR(l.text[1], ": x");
	CHECK_EQ_STR(l.text[2], ":method: GET");
	CHECK_EQ_INT(hpack_decoder_table_count(lj), 1);
	CHECK_EQ_INT(decode_hex(lj, "be bf 80", &l), 0);
	CHECK_EQ_INT(l.n, 2); /* index 0 ends the block */
	CHECK(l.flags[0] & HPACK_F_UNKNOWN_NAME);
	CHECK(!(l.flags[0] & HPACK_F_UNKNOWN_VALUE));
	CHECK_EQ_STR(l.text[0], ": x");
	CHECK(l.flags[1] & HPACK_F_UNKNOWN_VALUE);
	hpack_decoder_stats(lj, &st);
	CHECK_EQ_INT(st.unknown_refs, 4);
	CHECK_EQ_INT(st.errors, 1);
	CHECK(hpack_decoder_late_join(lj));
	hpack_decoder__free(d);
	hpack_decoder__free(lj);
}

/* A late-join decoder started at C.3.2 converges. */
static void test_late_join_converges(void)
{
	struct hpack_decoder *lj = hpack_decoder__new(4096, true);
	struct hlist l;

	CHECK_EQ_INT(decode_hex(lj, "8286 84be 5808 6e6f 2d63 6163 6865", &l), 0);
	CHECK_EQ_INT(l.n, 5);
	CHECK(l.flags[3] & HPACK_F_UNKNOWN_VALUE);
	CHECK_EQ_STR(l.text[4], "cache-control: no-cache");
	CHECK_EQ_INT(
	    decode_hex(
	        lj, "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65", &l),
	    0);
	CHECK(l.flags[3] & HPACK_F_UNKNOWN_NAME); /* :authority: index 63, not known */
	CHECK_EQ_STR(l.text[4], "custom-key: custom-value");
	CHECK_EQ_INT(decode_hex(lj, "bebf", &l), 0);
	check_list(
	    &l, (const char *const[]){"custom-key: custom-value", "cache-control: no-cache", NULL});
	/* switching a synced decoder to late-join keeps its table */
	{
		struct hpack_decoder *d = hpack_decoder__new(4096, false);

		CHECK_EQ_INT(decode_hex(d, "4001 6101 62", &l), 0);
		hpack_decoder_set_late_join(d);
		CHECK(hpack_decoder_late_join(d));
		CHECK_EQ_INT(decode_hex(d, "bebf", &l), 0);
		CHECK_EQ_STR(l.text[0], "a: b");
		CHECK(l.flags[1] & HPACK_F_UNKNOWN_NAME);
		hpack_decoder_reset(d, true);
		CHECK_EQ_INT(hpack_decoder_table_count(d), 0);
		hpack_decoder_reset(d, false);
		CHECK(!hpack_decoder_late_join(d));
		hpack_decoder__free(d);
	}
	hpack_decoder__free(lj);
}

static void test_table_size_bomb(void)
{
	struct hpack_decoder *d = hpack_decoder__new(4096, false);
	struct hpack_decoder *lj = hpack_decoder__new(UINT32_MAX, true);
	size_t n = 0;
	uint8_t *blk = malloc(70000);
	struct hlist l;

	/* size update to UINT32_MAX, above the setting */
	CHECK_EQ_INT(decode_hex(d, "3fe0 ffff ff0f", &l), -EBADMSG);
	/* the setting allows it but the decoder's limit does not */
	hpack_decoder_set_max_table_size(d, UINT32_MAX);
	CHECK_EQ_INT(decode_hex(d, "3fe0 ffff ff0f", &l), -E2BIG);
	CHECK(hpack_decoder_table_capacity(d) <= HPACK_TABLE_SIZE_LIMIT);
	/* late-join caps the table at the limit */
	CHECK_EQ_INT(hpack_decoder_table_capacity(lj), HPACK_TABLE_SIZE_LIMIT);
	CHECK_EQ_INT(decode_hex(lj, "3fe0 ffff ff0f", &l), 0);
	CHECK_EQ_INT(hpack_decoder_table_capacity(lj), HPACK_TABLE_SIZE_LIMIT);
	/* fill with 1000-byte values: memory stays bounded */
	for (int i = 0; i < 200; i++) {
		n = 0;
		blk[n++] = 0x40;
		blk[n++] = 0x01;
		blk[n++] = 'k';
		blk[n++] = 0x7f;
		blk[n++] = 0xe9; /* 127 + 0x69 + 0x07 * 128 = 1000 */
		blk[n++] = 0x06;
		memset(blk + n, 'v', 1000);
		n += 1000;
		CHECK_EQ_INT(hpack_decode_block(lj, blk, n, NULL, NULL), 0);
	}
	CHECK(hpack_decoder_table_size(lj) <= HPACK_TABLE_SIZE_LIMIT);
	CHECK(hpack_decoder_memory(lj) < 4 * HPACK_TABLE_SIZE_LIMIT);
	CHECK_EQ_INT(hpack_decoder_table_count(lj), HPACK_TABLE_SIZE_LIMIT / 1033);
	hpack_decoder__free(d);
	hpack_decoder__free(lj);

	/* a string longer than HPACK_STRING_MAX */
	d = hpack_decoder__new(4096, false);
	lj = hpack_decoder__new(4096, true);
	n = 0;
	blk[n++] = 0x00;
	blk[n++] = 0x01;
	blk[n++] = 'k';
	blk[n++] = 0x7f; /* 127 + 65410 = 65537 */
	blk[n++] = 0x82;
	blk[n++] = 0xff;
	blk[n++] = 0x03;
	memset(blk + n, 'v', 65537);
	n += 65537;
	blk[n++] = 0x82;
	CHECK_EQ_INT(hpack_decode_block(d, blk, n, NULL, NULL), -E2BIG);
	memset(&l, 0, sizeof(l));
	CHECK_EQ_INT(hpack_decode_block(lj, blk, n, collect, &l), 0);
	CHECK_EQ_INT(l.n, 2);
	CHECK(l.flags[0] & HPACK_F_UNKNOWN_VALUE);
	CHECK_EQ_STR(l.text[1], ":method: GET");
	hpack_decoder__free(d);
	hpack_decoder__free(lj);
	free(blk);
}

static void test_too_many_fields(void)
{
	struct hpack_decoder *d = hpack_decoder__new(4096, false);
	struct hpack_decoder *lj = hpack_decoder__new(4096, true);
	uint8_t blk[2000];
	struct hpack_stats st;

	memset(blk, 0x82, sizeof(blk));
	blk[1500] = 0x40; /* then a literal with indexing: "a: b" */
	blk[1501] = 0x01;
	blk[1502] = 'a';
	blk[1503] = 0x01;
	blk[1504] = 'b';
	CHECK_EQ_INT(hpack_decode_block(d, blk, sizeof(blk), NULL, NULL), -E2BIG);
	CHECK_EQ_INT(hpack_decode_block(lj, blk, sizeof(blk), NULL, NULL), 0);
	hpack_decoder_stats(lj, &st);
	CHECK_EQ_INT(st.headers, HPACK_BLOCK_FIELDS_MAX);
	CHECK_EQ_INT(st.dropped, 1996 - HPACK_BLOCK_FIELDS_MAX);
	CHECK_EQ_INT(hpack_decoder_table_count(lj), 1); /* still inserted */
	hpack_decoder__free(d);
	hpack_decoder__free(lj);
}

static void test_initial_capacity(void)
{
	struct hpack_decoder *d = hpack_decoder__new(65536, false);
	struct hpack_decoder *lj = hpack_decoder__new(65536, true);
	struct hlist l;

	/* a larger setting is used once the encoder says so */
	CHECK_EQ_INT(hpack_decoder_table_capacity(d), 4096);
	CHECK_EQ_INT(hpack_decoder_table_capacity(lj), 65536);
	CHECK_EQ_INT(decode_hex(d, "3fe1 ff03", &l), 0); /* 31 + 0x61 + 0x7f * 128 + 3 * 16384 */
	CHECK_EQ_INT(hpack_decoder_table_capacity(d), 31 + 0x61 + 0x7f * 128 + 3 * 16384);
	hpack_decoder_reset(d, false);
	CHECK_EQ_INT(hpack_decoder_table_capacity(d), 4096);
	hpack_decoder__free(d);
	hpack_decoder__free(lj);
}

static void test_api_edges(void)
{
	struct hpack_decoder *d = hpack_decoder__new(0, false);
	struct hlist l;

	hpack_decoder__free(NULL);
	CHECK_EQ_INT(hpack_decode_block(NULL, NULL, 0, NULL, NULL), -EINVAL);
	CHECK_EQ_INT(hpack_decode_block(d, NULL, 1, NULL, NULL), -EINVAL);
	CHECK_EQ_INT(hpack_decode_block(d, NULL, 0, NULL, NULL), 0);
	/* table size 0: literals with indexing are not stored */
	CHECK_EQ_INT(decode_hex(d, "4001 6101 62be", &l), -EBADMSG);
	CHECK_EQ_INT(hpack_decoder_table_count(d), 0);
	/* every static entry resolves */
	for (int i = 1; i <= 61; i++) {
		uint8_t b = (uint8_t)(0x80 | i);

		memset(&l, 0, sizeof(l));
		CHECK_EQ_INT(hpack_decode_block(d, &b, 1, collect, &l), 0);
		CHECK_EQ_INT(l.n, 1);
	}
	CHECK_EQ_INT(decode_hex(d, "bd", &l), 0);
	CHECK_EQ_STR(l.text[0], "www-authenticate: ");
	CHECK_EQ_INT(decode_hex(d, "90", &l), 0);
	CHECK_EQ_STR(l.text[0], "accept-encoding: gzip, deflate");
	hpack_decoder__free(d);
}

int main(void)
{
	RUN(test_c2_field_representations);
	RUN(test_c3_requests);
	RUN(test_c4_requests_huffman);
	RUN(test_c5_responses);
	RUN(test_c6_responses_huffman);
	RUN(test_huffman_codes);
	RUN(test_huffman_errors);
	RUN(test_integers);
	RUN(test_size_updates);
	RUN(test_eviction);
	RUN(test_bogus_index);
	RUN(test_late_join_converges);
	RUN(test_table_size_bomb);
	RUN(test_too_many_fields);
	RUN(test_initial_capacity);
	RUN(test_api_edges);
	return unit_summary("test_hpack");
}
