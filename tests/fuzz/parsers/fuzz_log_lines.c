/* fuzz_log_lines.c — libFuzzer harness for line reassembly. The input is a
 * script of writes: a control byte (fd 1 or 2 in bit 0, pid in bits 1-2,
 * bit 3: a tick of time passes first, the length in the high 4 bits; 15: the
 * rest) then the bytes. The script runs twice, as written and with every write
 * split into single bytes (each keeping its write's time); both must give the
 * same records. Records respect the size limit and memory stays bounded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/log_lines.h"

#define MAX_RECORD 256

struct run {
	uint64_t hash;
	size_t n;
};

static void on_rec(void *ctx, const struct log_text *r)
{
	struct run *run = ctx;

	if (r->len > MAX_RECORD || (!r->len && r->lines <= 1) || !r->lines)
		abort();
	if (r->len && memchr(r->text, '\n', r->len) && r->lines < 2)
		abort();
	run->n++;
	run->hash = run->hash * 1099511628211ULL ^ r->len ^ (uint64_t)r->pid << 20 ^
	            (uint64_t)r->fd << 30 ^ (uint64_t)r->truncated << 40 ^ r->ts_ns << 44 ^
	            r->tag->b[0];
	for (size_t i = 0; i < r->len; i++)
		run->hash = run->hash * 31 + (uint8_t)r->text[i];
}

static void run_script(const uint8_t *data, size_t size, int bytewise, struct run *out)
{
	struct log_lines_config cfg = {
	    .max_record = MAX_RECORD, .max_streams = 16, .flush_after_ns = 10};
	struct log_lines *ll = log_lines__new(&cfg, on_rec, out);
	uint64_t ts = 1;
	size_t at = 0;

	if (!ll)
		abort();
	while (at < size) {
		uint8_t ctl = data[at++];
		size_t len = ctl >> 4;
		struct log_tag tag;
		uint32_t pid = 1 + ((ctl >> 1) & 3);
		int32_t fd = 1 + (ctl & 1);

		if (ctl & 8) {
			ts += 20;
			log_lines_tick(ll, ts);
		}
		if (len == 15 || len > size - at)
			len = size - at;
		memset(&tag, (int)(ts & 0xff), sizeof(tag));
		if (!len) {
			/* the kernel sends no empty writes */
		} else if (!bytewise) {
			log_lines_feed(ll, pid, fd, ts, &tag, data + at, len, len);
		} else {
			for (size_t i = 0; i < len; i++)
				log_lines_feed(ll, pid, fd, ts, &tag, data + at + i, 1, 1);
		}
		if (log_lines_memory(ll) > 16 * 2 * 2 * MAX_RECORD)
			abort();
		at += len;
		ts++;
	}
	log_lines_flush_all(ll);
	log_lines__free(ll);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run a = {0}, b = {0};

	run_script(data, size, 0, &a);
	run_script(data, size, 1, &b);
	if (a.n != b.n || a.hash != b.hash)
		abort();
	return 0;
}
