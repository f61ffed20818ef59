/* test_cpu_rings.c — the per-CPU rings' consumer on plain memory, with a
 * producer here that follows the kernel programs' protocol (claim, header
 * busy, event, length): merge order across CPUs, records left for the next
 * drain (too young, being written, claimed and not written), records that
 * run into the slack over many laps, a damaged length, a record shorter than
 * its claimed space, one left claimed for good, a callback error. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/cpu_rings.h"
#include "periscope_abi.h"
#include "unit.h"

#define RING   4096u
#define STRIDE (PSCOPE_CPU_RING_CTL + RING + PSCOPE_CPU_RING_SLACK)
#define NCPU   2

struct seen {
	uint64_t ids[4096];
	size_t n;
	int bad;
	int stop_at; /* return -1 at this record (1-based); 0: never */
};

static uint8_t *mem;

static struct pscope_cpu_ring_ctl *ctl(unsigned cpu)
{
	return (struct pscope_cpu_ring_ctl *)(mem + (size_t)cpu * STRIDE);
}

static struct pscope_ring_rec *rec_at(unsigned cpu, uint64_t pos)
{
	return (struct pscope_ring_rec *)(mem + (size_t)cpu * STRIDE + PSCOPE_CPU_RING_CTL +
	                                  (pos & (RING - 1)));
}

/* An event: its id, then len - 8 bytes of (id & 0xff). */
static void fill(uint8_t *p, uint64_t id, uint32_t len)
{
	memcpy(p, &id, sizeof(id));
	memset(p + 8, (int)(id & 0xff), len - 8);
}

/* Claims len bytes on cpu at time ts; returns the record (busy), NULL if full. */
static struct pscope_ring_rec *claim(unsigned cpu, uint64_t ts, uint32_t len)
{
	uint64_t need = (sizeof(struct pscope_ring_rec) + len + 7) & ~7ull;
	struct pscope_ring_rec *r;

	if (ctl(cpu)->head - ctl(cpu)->tail + need > RING)
		return NULL;
	r = rec_at(cpu, ctl(cpu)->head);
	ctl(cpu)->head += need;
	r->order_ns = ts;
	r->len = len | PSCOPE_RING_BUSY;
	return r;
}

static int put(unsigned cpu, uint64_t ts, uint64_t id, uint32_t len)
{
	struct pscope_ring_rec *r = claim(cpu, ts, len);

	if (!r)
		return -1;
	fill((uint8_t *)(r + 1), id, len);
	r->len = len;
	return 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct seen *s = ctx;
	uint64_t id;

	memcpy(&id, data, sizeof(id));
	for (size_t i = 8; i < size; i++)
		if (((uint8_t *)data)[i] != (uint8_t)(id & 0xff))
			s->bad++;
	if (s->n < sizeof(s->ids) / sizeof(s->ids[0]))
		s->ids[s->n++] = id;
	if (s->stop_at && (int)s->n == s->stop_at)
		return -1;
	return 0;
}

static struct cpu_rings *fresh(struct seen *s)
{
	memset(mem, 0, (size_t)NCPU * STRIDE);
	memset(s, 0, sizeof(*s));
	return cpu_rings__new(-1, mem, NCPU, STRIDE, RING, on_record, s);
}

static int all_zero(unsigned cpu)
{
	const uint8_t *p = mem + (size_t)cpu * STRIDE + PSCOPE_CPU_RING_CTL;

	for (size_t i = 0; i < RING + PSCOPE_CPU_RING_SLACK; i++)
		if (p[i])
			return 0;
	return 1;
}

static void test_merged_by_claim_time(void)
{
	struct seen s;
	struct cpu_rings *r = fresh(&s);

	CHECK(r != NULL);
	put(0, 10, 1, 40);
	put(1, 11, 2, 24);
	put(1, 12, 3, 24);
	put(0, 13, 4, 100);
	put(0, 20, 5, 16);
	put(1, 30, 6, 16);
	CHECK_EQ_INT(cpu_rings_waiting(r), 6 * 16 + 40 + 24 + 24 + 104 + 16 + 16);
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 6);
	CHECK_EQ_INT(s.n, 6);
	for (size_t i = 0; i < s.n; i++)
		CHECK_EQ_INT(s.ids[i], i + 1);
	CHECK_EQ_INT(s.bad, 0);
	CHECK_EQ_INT(cpu_rings_left(r), 0);
	CHECK_EQ_INT(cpu_rings_waiting(r), 0);
	CHECK_EQ_INT(ctl(0)->tail, ctl(0)->head);
	CHECK(all_zero(0) && all_zero(1));
	CHECK_EQ_INT(cpu_rings_late(r), 0);
	cpu_rings__free(r);
}

static void test_young_records_wait(void)
{
	struct seen s;
	struct cpu_rings *r = fresh(&s);

	put(0, 100, 1, 16);
	put(1, 150, 2, 16);
	put(0, 190, 3, 16);
	/* now 200, grace 40: records claimed before 160 go */
	CHECK_EQ_INT(cpu_rings_consume(r, 200, 40), 2);
	CHECK_EQ_INT(cpu_rings_left(r), 1);
	CHECK_EQ_INT(s.ids[0], 1);
	CHECK_EQ_INT(s.ids[1], 2);
	CHECK_EQ_INT(cpu_rings_consume(r, 300, 40), 1);
	CHECK_EQ_INT(cpu_rings_left(r), 0);
	CHECK_EQ_INT(s.ids[2], 3);
	cpu_rings__free(r);
}

static void test_busy_record_holds_later_ones(void)
{
	struct seen s;
	struct cpu_rings *r = fresh(&s);
	struct pscope_ring_rec *busy;

	put(1, 40, 1, 16);
	busy = claim(0, 50, 16); /* being written */
	put(1, 60, 3, 16);
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 1); /* 40 only: 60 waits behind 50 */
	CHECK_EQ_INT(cpu_rings_left(r), 1);
	fill((uint8_t *)(busy + 1), 2, 16);
	busy->len = 16;
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 2);
	CHECK_EQ_INT(s.n, 3);
	for (size_t i = 0; i < s.n; i++)
		CHECK_EQ_INT(s.ids[i], i + 1);
	cpu_rings__free(r);
}

/* A record left claimed (its producer never committed) holds its ring back
 * for a second of claim time, then is skipped by its claimed length. */
static void test_stuck_claim_skipped_after_a_second(void)
{
	const uint64_t sec = 1000ull * 1000 * 1000;
	struct seen s;
	struct cpu_rings *r = fresh(&s);

	put(0, 10, 1, 16);
	CHECK(claim(0, 20, 100) != NULL); /* never committed */
	put(0, 30, 3, 16);
	put(1, 40, 4, 16);
	CHECK_EQ_INT(cpu_rings_consume(r, 20 + sec, 0), 1); /* not yet a second */
	CHECK_EQ_INT(cpu_rings_stuck(r), 0);
	CHECK_EQ_INT(cpu_rings_flush(r), 0); /* a flush never skips it */
	CHECK_EQ_INT(cpu_rings_consume(r, 21 + sec, 0), 2);
	CHECK_EQ_INT(cpu_rings_stuck(r), 1);
	CHECK_EQ_INT(cpu_rings_late(r), 0); /* 30 before 40: the ring is looked at again */
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_INT(s.ids[1], 3);
	CHECK_EQ_INT(s.ids[2], 4);
	CHECK_EQ_INT(s.bad, 0);
	CHECK_EQ_INT(cpu_rings_corrupt(r), 0);
	CHECK_EQ_INT(cpu_rings_waiting(r), 0);
	CHECK(all_zero(0));
	cpu_rings__free(r);
}

static void test_claimed_not_written_stops(void)
{
	struct seen s;
	struct cpu_rings *r = fresh(&s);

	put(1, 10, 1, 16);
	ctl(0)->head += 32; /* claimed, the header not written yet */
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 0);
	CHECK_EQ_INT(cpu_rings_left(r), 1);
	rec_at(0, 0)->order_ns = 5;
	fill((uint8_t *)(rec_at(0, 0) + 1), 2, 16);
	rec_at(0, 0)->len = 16;
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 2);
	CHECK_EQ_INT(s.ids[0], 2); /* claimed at 5, before the other CPU's 10 */
	CHECK_EQ_INT(s.ids[1], 1);
	cpu_rings__free(r);
}

/* Many laps of records of sizes that do not divide the ring: some start near
 * the end and run into the slack; every byte must come back as written. */
static void test_laps_through_the_slack(void)
{
	struct seen s;
	struct cpu_rings *r = fresh(&s);
	uint64_t id = 0, ts = 0, want = 0;
	int spilled = 0;

	for (int round = 0; round < 200; round++) {
		for (unsigned cpu = 0; cpu < NCPU; cpu++) {
			for (;;) {
				uint32_t len = 8 + (uint32_t)((id * 37) % 700);
				uint64_t pos = ctl(cpu)->head;

				if (put(cpu, ++ts, id + 1, len))
					break;
				if ((pos & (RING - 1)) + 16 + len > RING)
					spilled++;
				id++;
			}
		}
		s.n = 0;
		CHECK(cpu_rings_consume(r, ts + 1, 0) > 0);
		for (size_t i = 0; i < s.n; i++)
			CHECK_EQ_INT(s.ids[i], ++want);
	}
	CHECK_EQ_INT(want, id);
	CHECK_EQ_INT(s.bad, 0);
	CHECK(spilled > 50);
	CHECK(all_zero(0) && all_zero(1));
	cpu_rings__free(r);
}

static void test_damaged_length_skips_the_ring(void)
{
	struct seen s;
	struct cpu_rings *r = fresh(&s);

	put(0, 10, 1, 16);
	put(1, 11, 2, 16);
	put(1, 12, 3, 16);
	rec_at(1, 0)->len = 0x7fffffff; /* no event is this long */
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 1);
	CHECK_EQ_INT(s.ids[0], 1);
	CHECK_EQ_INT(cpu_rings_corrupt(r), 1);
	CHECK_EQ_INT(cpu_rings_waiting(r), 0);
	CHECK(all_zero(1));
	put(1, 20, 4, 16); /* the ring goes on */
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 1);
	CHECK_EQ_INT(s.ids[1], 4);
	cpu_rings__free(r);
}

/* A data event written in place whose copy faulted: claimed for claimed
 * bytes, committed with len and the record's space (cpu_ring_commit_space). */
static int put_short(unsigned cpu, uint64_t ts, uint64_t id, uint32_t claimed, uint32_t len)
{
	struct pscope_ring_rec *r = claim(cpu, ts, claimed);

	if (!r)
		return -1;
	fill((uint8_t *)(r + 1), id, claimed); /* the part never written holds old bytes */
	r->space = (uint32_t)((sizeof(*r) + claimed + 7) & ~7ull);
	r->len = len;
	return 0;
}

static void test_shorter_than_claimed_skips_its_space(void)
{
	struct seen s;
	struct cpu_rings *r = fresh(&s);

	put(0, 10, 1, 16);
	CHECK_EQ_INT(put_short(0, 11, 2, 200, 24), 0);
	put(0, 12, 3, 16);
	CHECK_EQ_INT(cpu_rings_waiting(r), 32 + 216 + 32);
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 3);
	CHECK_EQ_INT(s.n, 3);
	CHECK_EQ_INT(s.ids[1], 2);
	CHECK_EQ_INT(s.ids[2], 3);
	CHECK_EQ_INT(s.bad, 0);
	CHECK_EQ_INT(cpu_rings_corrupt(r), 0);
	CHECK_EQ_INT(cpu_rings_waiting(r), 0);
	CHECK(all_zero(0)); /* the whole space zeroed, not just the event */

	/* a space that cannot be (shorter than the event, unaligned) is damage */
	put(1, 20, 4, 16);
	put_short(1, 21, 5, 64, 40);
	rec_at(1, 32)->space = 20;
	put(1, 22, 6, 16);
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 1);
	CHECK_EQ_INT(s.ids[3], 4);
	CHECK_EQ_INT(cpu_rings_corrupt(r), 1);
	CHECK(all_zero(1));
	cpu_rings__free(r);
}

static void test_callback_error_stops_after_that_record(void)
{
	struct seen s;
	struct cpu_rings *r = fresh(&s);

	for (int i = 0; i < 5; i++)
		put((unsigned)i % NCPU, (uint64_t)i + 1, (uint64_t)i + 1, 16);
	s.stop_at = 2;
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), -1);
	CHECK_EQ_INT(s.n, 2);
	s.stop_at = 0;
	CHECK_EQ_INT(cpu_rings_flush(r), 3);
	CHECK_EQ_INT(s.n, 5);
	CHECK_EQ_INT(s.ids[4], 5);
	cpu_rings__free(r);
}

static void test_late_record_counted(void)
{
	struct seen s;
	struct cpu_rings *r = fresh(&s);

	put(0, 100, 1, 16);
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 1);
	put(1, 90, 2, 16); /* a producer that stalled past the grace period */
	CHECK_EQ_INT(cpu_rings_consume(r, 1000, 0), 1);
	CHECK_EQ_INT(cpu_rings_late(r), 1);
	cpu_rings__free(r);
}

static void test_bad_geometry(void)
{
	CHECK(cpu_rings__new(-1, mem, NCPU, STRIDE, 3000, on_record, NULL) == NULL);
	CHECK_EQ_INT(errno, EINVAL);
	CHECK(cpu_rings__new(-1, mem, NCPU, RING, RING, on_record, NULL) == NULL);
	CHECK(cpu_rings__new(-1, mem, 0, STRIDE, RING, on_record, NULL) == NULL);
}

int main(void)
{
	mem = calloc(NCPU, STRIDE);
	if (!mem)
		return 1;
	RUN(test_merged_by_claim_time);
	RUN(test_young_records_wait);
	RUN(test_busy_record_holds_later_ones);
	RUN(test_stuck_claim_skipped_after_a_second);
	RUN(test_claimed_not_written_stops);
	RUN(test_laps_through_the_slack);
	RUN(test_damaged_length_skips_the_ring);
	RUN(test_shorter_than_claimed_skips_its_space);
	RUN(test_callback_error_stops_after_that_record);
	RUN(test_late_record_counted);
	RUN(test_bad_geometry);
	free(mem);
	return unit_summary("test_cpu_rings");
}
