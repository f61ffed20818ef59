/* test_ring_reader.c — ring_reader against a real BPF ring buffer: a socket
 * filter program run with BPF_PROG_TEST_RUN writes 40-byte records (skb->len
 * five times) into a one-page ring; 48-byte slots do not
 * divide the page, so records keep wrapping around its end. Needs root
 * (CAP_BPF); without it the test says why and is skipped. */
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kernel/ring_reader.h"
#include "unit.h"

#define WORDS 5 /* u64 per record */

struct seen {
	uint64_t lens[4096];
	size_t n;
	int bad;
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct seen *s = ctx;
	uint64_t w[WORDS];

	if (size != sizeof(w)) {
		s->bad++;
		return 0;
	}
	memcpy(w, data, sizeof(w));
	for (int i = 1; i < WORDS; i++)
		if (w[i] != w[0])
			s->bad++;
	if (s->n < sizeof(s->lens) / sizeof(s->lens[0]))
		s->lens[s->n++] = w[0];
	return 0;
}

static struct bpf_insn insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	struct bpf_insn i = {.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};

	return i;
}

/* r2 = skb->len; five stores of it on the stack; ringbuf_output(map, fp-40, 40, 0) */
static int load_prog(int map_fd)
{
	struct bpf_insn p[16];
	int n = 0;

	p[n++] = insn(BPF_LDX | BPF_MEM | BPF_W, 2, 1, offsetof(struct __sk_buff, len), 0);
	for (int i = 1; i <= WORDS; i++)
		p[n++] = insn(BPF_STX | BPF_MEM | BPF_DW, 10, 2, (int16_t)(-8 * i), 0);
	p[n++] = insn(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, map_fd);
	p[n++] = insn(0, 0, 0, 0, 0);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0);
	p[n++] = insn(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -8 * WORDS);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 3, 0, 0, 8 * WORDS);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 4, 0, 0, 0);
	p[n++] = insn(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_ringbuf_output);
	p[n++] = insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
	p[n++] = insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "ring_test", "GPL", p, (size_t)n, NULL);
}

static int run(int prog_fd, size_t len)
{
	static uint8_t pkt[256];
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt, .data_size_in = (uint32_t)len);

	return bpf_prog_test_run_opts(prog_fd, &o);
}

static int map_fd = -1, prog_fd = -1;

static void test_records_in_order_across_wraps(void)
{
	static struct seen s;
	struct ring_reader *r = ring_reader__new(map_fd, on_record, &s);
	size_t want = 0, consumed = 0;

	CHECK(r != NULL);
	if (!r)
		return;
	CHECK_EQ_INT(ring_reader_fd(r), map_fd);
	CHECK_EQ_INT(ring_reader_consume(r), 0); /* empty */
	for (int round = 0; round < 40; round++) {
		/* 50 records of 48 bytes: 2400 of the 4096 */
		for (int i = 0; i < 50; i++) {
			CHECK_EQ_INT(run(prog_fd, 14 + (size_t)(want % 200)), 0);
			want++;
		}
		int got = ring_reader_consume(r);
		CHECK_EQ_INT(got, 50);
		consumed += got > 0 ? (size_t)got : 0;
	}
	CHECK_EQ_INT(consumed, want);
	CHECK_EQ_INT(s.n, want);
	CHECK_EQ_INT(s.bad, 0);
	for (size_t i = 0; i < s.n; i++)
		if (s.lens[i] != i % 200) { /* skb->len: without the Ethernet header */
			CHECK_EQ_INT(s.lens[i], i % 200);
			break;
		}
	ring_reader__free(r);
}

static int stop_at_third(void *ctx, void *data, size_t size)
{
	int *calls = ctx;

	(void)data;
	(void)size;
	return ++*calls == 3 ? -ECANCELED : 0;
}

static void test_callback_error_stops_after_that_record(void)
{
	int calls = 0;
	struct ring_reader *r = ring_reader__new(map_fd, stop_at_third, &calls);

	CHECK(r != NULL);
	if (!r)
		return;
	for (int i = 0; i < 5; i++)
		CHECK_EQ_INT(run(prog_fd, 20), 0);
	CHECK_EQ_INT(ring_reader_consume(r), -ECANCELED);
	CHECK_EQ_INT(calls, 3);
	CHECK_EQ_INT(ring_reader_consume(r), 2); /* the other two, once each */
	CHECK_EQ_INT(calls, 5);
	ring_reader__free(r);
}

static void test_not_a_ring(void)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "not_ring", 4, 4, 1, NULL);

	CHECK(fd >= 0);
	CHECK(ring_reader__new(fd, on_record, NULL) == NULL);
	CHECK_EQ_INT(errno, EINVAL);
	close(fd);
}

int main(void)
{
	map_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "ring_test", 0, 0,
	                        (uint32_t)sysconf(_SC_PAGESIZE), NULL);
	if (map_fd >= 0)
		prog_fd = load_prog(map_fd);
	if (map_fd < 0 || prog_fd < 0) {
		printf("SKIP test_ring_reader: no BPF ring buffer here (%s; needs root)\n",
		       strerror(errno));
		return unit_summary("test_ring_reader");
	}
	RUN(test_records_in_order_across_wraps);
	RUN(test_callback_error_stops_after_that_record);
	RUN(test_not_a_ring);
	close(prog_fd);
	close(map_fd);
	return unit_summary("test_ring_reader");
}
