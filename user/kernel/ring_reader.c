/* ring_reader.c — a BPF ring buffer consumer that maps the data area once;
 * records that wrap around the end are copied (see ring_reader.h). The
 * layout is the kernel's (kernel/bpf/ringbuf.c): page 0 the consumer
 * position (the only writable page), page 1 the producer position, then the
 * data; each record starts with an 8-byte header whose first 32 bits are its
 * length with the BUSY and DISCARD bits, records are 8-byte aligned. */
#include <bpf/bpf.h>
#include <errno.h>
#include <stdbool.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kernel/ring_reader.h"

struct ring_reader {
	int fd;
	size_t page_size;
	size_t size; /* of the data area, a power of two */
	unsigned long *consumer;
	const unsigned long *producer; /* followed by the data area */
	const uint8_t *data;
	uint8_t *wrap; /* a wrapping record, copied */
	size_t wrap_cap;
	ring_reader_fn fn;
	void *ctx;
};

struct ring_reader *ring_reader__new(int map_fd, ring_reader_fn fn, void *ctx)
{
	struct bpf_map_info info;
	uint32_t len = sizeof(info);
	struct ring_reader *r;
	void *p;
	int err;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(map_fd, &info, &len))
		return NULL;
	if (info.type != BPF_MAP_TYPE_RINGBUF || !info.max_entries ||
	    (info.max_entries & (info.max_entries - 1))) {
		errno = EINVAL;
		return NULL;
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->fd = map_fd;
	r->fn = fn;
	r->ctx = ctx;
	r->size = info.max_entries;
	r->page_size = (size_t)sysconf(_SC_PAGESIZE);
	p = mmap(NULL, r->page_size, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (p == MAP_FAILED)
		goto fail;
	r->consumer = p;
	p = mmap(NULL, r->page_size + r->size, PROT_READ, MAP_SHARED, map_fd, (off_t)r->page_size);
	if (p == MAP_FAILED)
		goto fail;
	r->producer = p;
	r->data = (const uint8_t *)p + r->page_size;
	return r;
fail:
	err = errno;
	ring_reader__free(r);
	errno = err;
	return NULL;
}

void ring_reader__free(struct ring_reader *r)
{
	if (!r)
		return;
	if (r->consumer)
		munmap(r->consumer, r->page_size);
	if (r->producer)
		munmap((void *)r->producer, r->page_size + r->size);
	free(r->wrap);
	free(r);
}

int ring_reader_fd(const struct ring_reader *r)
{
	return r->fd;
}

/* The record of len bytes at ring offset off: in place, or copied when it
 * runs past the end of the data area. NULL on ENOMEM. */
static void *record_at(struct ring_reader *r, size_t off, size_t len)
{
	size_t first;

	if (off + len <= r->size)
		return (void *)(r->data + off);
	if (len > r->wrap_cap) {
		uint8_t *p = realloc(r->wrap, len);

		if (!p)
			return NULL;
		r->wrap = p;
		r->wrap_cap = len;
	}
	first = r->size - off;
	memcpy(r->wrap, r->data + off, first);
	memcpy(r->wrap + first, r->data, len - first);
	return r->wrap;
}

int ring_reader_consume(struct ring_reader *r)
{
	const size_t mask = r->size - 1;
	unsigned long cons, prod;
	bool again;
	int n = 0;

	cons = __atomic_load_n(r->consumer, __ATOMIC_ACQUIRE);
	do {
		again = false;
		prod = __atomic_load_n(r->producer, __ATOMIC_ACQUIRE);
		while (cons < prod) {
			const uint32_t *hdr = (const uint32_t *)(r->data + (cons & mask));
			uint32_t word = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
			size_t len = word & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
			void *rec = NULL;
			int rc = 0;

			if (word & BPF_RINGBUF_BUSY_BIT)
				return n; /* not committed yet: the next drain */
			again = true;
			if (!(word & BPF_RINGBUF_DISCARD_BIT) && len)
				rec = record_at(r, (cons + BPF_RINGBUF_HDR_SZ) & mask, len);
			if (rec && (rc = r->fn(r->ctx, rec, len)) >= 0)
				n++;
			cons += (len + BPF_RINGBUF_HDR_SZ + 7) & ~(size_t)7;
			__atomic_store_n(r->consumer, cons, __ATOMIC_RELEASE);
			if (rc < 0)
				return rc;
		}
	} while (again);
	return n;
}
