/* cpu_rings.c — reads the per-CPU event rings (cpu_rings.h): a merge of the
 * CPUs' records by claim time, each record zeroed once read (a zero length
 * at a ring's tail means "claimed, not written yet", so stale bytes of an
 * earlier lap must never be seen there) before the tail moves past it. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kernel/cpu_rings.h"
#include "periscope_abi.h"

#define REC_MAX (2u * PSCOPE_CAPTURE_MAX)

struct cpu_ring {
	struct pscope_cpu_ring_ctl *ctl;
	uint8_t *data;
	uint64_t pos;  /* the next record's position (our tail) */
	uint64_t head; /* the producers' head as last read */
};

struct cpu_rings {
	void *map; /* mapped here, or NULL */
	size_t map_len;
	unsigned n;
	size_t ring_size;
	struct cpu_ring *rings;
	ring_reader_fn fn;
	void *ctx;
	uint64_t last_ts;
	uint64_t late, corrupt, stuck;
	int left; /* the last drain stopped before an empty ring */
};

struct cpu_rings *cpu_rings__new(int map_fd, void *mem, unsigned ncpus, size_t stride,
                                 size_t ring_size, ring_reader_fn fn, void *ctx)
{
	struct cpu_rings *r;
	int err = EINVAL;

	if (!ncpus || !ring_size || (ring_size & (ring_size - 1)) ||
	    stride < PSCOPE_CPU_RING_CTL + ring_size + PSCOPE_CPU_RING_SLACK)
		goto fail;
	err = ENOMEM;
	r = calloc(1, sizeof(*r));
	if (!r)
		goto fail;
	r->rings = calloc(ncpus, sizeof(*r->rings));
	if (!r->rings)
		goto fail_free;
	if (map_fd >= 0) {
		r->map_len = (size_t)ncpus * stride;
		mem = mmap(NULL, r->map_len, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
		if (mem == MAP_FAILED) {
			err = errno;
			goto fail_free;
		}
		r->map = mem;
	}
	r->n = ncpus;
	r->ring_size = ring_size;
	r->fn = fn;
	r->ctx = ctx;
	for (unsigned i = 0; i < ncpus; i++) {
		uint8_t *base = (uint8_t *)mem + (size_t)i * stride;
		struct cpu_ring *c = &r->rings[i];

		c->ctl = (struct pscope_cpu_ring_ctl *)base;
		c->data = base + PSCOPE_CPU_RING_CTL;
		c->pos = __atomic_load_n(&c->ctl->tail, __ATOMIC_ACQUIRE);
		c->head = c->pos;
	}
	return r;
fail_free:
	cpu_rings__free(r);
fail:
	errno = err;
	return NULL;
}

void cpu_rings__free(struct cpu_rings *r)
{
	if (!r)
		return;
	if (r->map)
		munmap(r->map, r->map_len);
	free(r->rings);
	free(r);
}

enum rec_state { REC_NONE, REC_READY, REC_BUSY, REC_UNWRITTEN };

/* The bytes a record of an event of len bytes takes, given its space word:
 * 0 when that is not 8-aligned, shorter than the event or past the largest
 * claim (a corrupt ring). */
static uint32_t rec_space(uint32_t len, uint32_t space)
{
	uint32_t need = (uint32_t)((sizeof(struct pscope_ring_rec) + len + 7) & ~(size_t)7);

	if (!space)
		return need;
	if ((space & 7) || space < need || space > sizeof(struct pscope_ring_rec) + REC_MAX)
		return 0;
	return space;
}

/* A record claimed this long before a drain's deadline and still being
 * written was abandoned by its producer (cannot happen by design: every
 * program that claims commits, and a preempted one resumes within far less),
 * and must not stop its ring for good: it is skipped by its claimed length. */
#define REC_STUCK_NS (1000ull * 1000 * 1000)

static void ring_skip_stuck(struct cpu_rings *r, struct cpu_ring *c, uint32_t claimed)
{
	struct pscope_ring_rec *rec =
	    (struct pscope_ring_rec *)(c->data + (c->pos & (r->ring_size - 1)));
	size_t need = rec_space(claimed, 0);

	r->stuck++;
	memset(rec, 0, need);
	c->pos += need;
	__atomic_store_n(&c->ctl->tail, c->pos, __ATOMIC_RELEASE);
}

/* A ring whose record at pos makes no sense (never written by our programs):
 * everything claimed so far is dropped and zeroed. */
static void ring_skip_all(struct cpu_rings *r, struct cpu_ring *c)
{
	uint64_t head = __atomic_load_n(&c->ctl->head, __ATOMIC_ACQUIRE);

	r->corrupt++;
	memset(c->data, 0, r->ring_size + PSCOPE_CPU_RING_SLACK);
	c->pos = c->head = head;
	__atomic_store_n(&c->ctl->tail, head, __ATOMIC_RELEASE);
}

/* The state of ring c's next record, its claim time, event length and the
 * bytes it takes in the ring (0 when its space is not valid). */
static enum rec_state ring_peek(struct cpu_rings *r, struct cpu_ring *c, uint64_t *ts,
                                uint32_t *len, uint32_t *space)
{
	struct pscope_ring_rec *rec;
	uint64_t word;

	if (c->pos == c->head) {
		c->head = __atomic_load_n(&c->ctl->head, __ATOMIC_ACQUIRE);
		if (c->pos == c->head)
			return REC_NONE;
	}
	rec = (struct pscope_ring_rec *)(c->data + (c->pos & (r->ring_size - 1)));
	word = __atomic_load_n((uint64_t *)rec, __ATOMIC_ACQUIRE);
	if (!word)
		return REC_UNWRITTEN;
	*ts = __atomic_load_n(&rec->order_ns, __ATOMIC_ACQUIRE);
	*len = (uint32_t)word & ~PSCOPE_RING_BUSY;
	*space = rec_space(*len, (uint32_t)(word >> 32));
	return ((uint32_t)word & PSCOPE_RING_BUSY) ? REC_BUSY : REC_READY;
}

static int consume(struct cpu_rings *r, uint64_t deadline)
{
	int n = 0;

	r->left = 0;
	for (;;) {
		struct cpu_ring *best = NULL;
		uint64_t best_ts = UINT64_MAX, limit = deadline;
		uint32_t best_len = 0, best_space = 0;

		for (unsigned i = 0; i < r->n; i++) {
			struct cpu_ring *c = &r->rings[i];
			enum rec_state st;
			uint64_t ts = 0;
			uint32_t len = 0, space = 0;

			st = ring_peek(r, c, &ts, &len, &space);
			if (st == REC_NONE)
				continue;
			if (st == REC_UNWRITTEN) {
				r->left = 1;
				return n; /* its time is not known yet: the next drain */
			}
			if (len > REC_MAX || !space || c->head - c->pos > r->ring_size) {
				ring_skip_all(r, c);
				continue;
			}
			if (st == REC_BUSY && deadline != UINT64_MAX && ts &&
			    ts + REC_STUCK_NS < deadline) {
				ring_skip_stuck(r, c, len);
				i--; /* this ring's next record, in this pass */
				continue;
			}
			if (st == REC_BUSY) {
				/* nothing claimed after it goes first */
				r->left = 1;
				if (ts <= limit)
					limit = ts ? ts - 1 : 0;
				continue;
			}
			if (ts < best_ts) {
				best = c;
				best_ts = ts;
				best_len = len;
				best_space = space;
			}
		}
		if (!best || best_ts > limit) {
			if (best)
				r->left = 1;
			return n;
		}

		struct pscope_ring_rec *rec =
		    (struct pscope_ring_rec *)(best->data + (best->pos & (r->ring_size - 1)));
		size_t need = best_space;
		int rc = 0;

		if (best_ts < r->last_ts)
			r->late++;
		else
			r->last_ts = best_ts;
		if (best_len)
			rc = r->fn(r->ctx, rec + 1, best_len);
		memset(rec, 0, need);
		best->pos += need;
		__atomic_store_n(&best->ctl->tail, best->pos, __ATOMIC_RELEASE);
		if (rc < 0)
			return rc;
		n++;
	}
}

int cpu_rings_consume(struct cpu_rings *r, uint64_t now_ns, uint64_t grace_ns)
{
	return consume(r, now_ns > grace_ns ? now_ns - grace_ns : 0);
}

int cpu_rings_flush(struct cpu_rings *r)
{
	return consume(r, UINT64_MAX);
}

int cpu_rings_left(const struct cpu_rings *r)
{
	return r->left;
}

uint64_t cpu_rings_waiting(const struct cpu_rings *r)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < r->n; i++) {
		const struct pscope_cpu_ring_ctl *ctl = r->rings[i].ctl;

		sum += __atomic_load_n(&ctl->head, __ATOMIC_ACQUIRE) -
		       __atomic_load_n(&ctl->tail, __ATOMIC_ACQUIRE);
	}
	return sum;
}

uint64_t cpu_rings_late(const struct cpu_rings *r)
{
	return r->late;
}

uint64_t cpu_rings_corrupt(const struct cpu_rings *r)
{
	return r->corrupt;
}

uint64_t cpu_rings_stuck(const struct cpu_rings *r)
{
	return r->stuck;
}
