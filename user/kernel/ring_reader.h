/* ring_reader.h — the consumer side of a BPF ring buffer map, mapping its
 * data area once (libbpf's ring_buffer maps it twice, so that a record which
 * wraps around the end reads as one piece: twice the ring's size in RSS).
 * A record that wraps is copied into a buffer of the reader's before the
 * callback sees it. One reader per ring; not thread-safe. */
#ifndef PERISCOPE_KERNEL_RING_READER_H
#define PERISCOPE_KERNEL_RING_READER_H

#include <stddef.h>

struct ring_reader;

/* Called once per record, in order; a negative return stops the drain (the
 * record counts as consumed) and is returned by ring_reader_consume. */
typedef int (*ring_reader_fn)(void *ctx, void *data, size_t size);

/* Maps the ring buffer map map_fd. NULL with errno set on failure. */
struct ring_reader *ring_reader__new(int map_fd, ring_reader_fn fn, void *ctx);
void ring_reader__free(struct ring_reader *r); /* accepts NULL */

/* Hands every committed record to fn and releases it. Returns the number of
 * records handed, or the callback's negative return (the drain stops after
 * that record). A wrapping record that cannot be copied (ENOMEM) is skipped. */
int ring_reader_consume(struct ring_reader *r);

/* The descriptor to poll for EPOLLIN (the map's: readable while records wait). */
int ring_reader_fd(const struct ring_reader *r);

#endif
