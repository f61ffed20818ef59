/* mem_pool.h — a bounded freelist of equal-sized blocks, for objects made and
 * dropped once per request on a hot path (glibc's malloc and free of a block
 * larger than its per-thread cache cost a few hundred instructions).
 * Single-threaded. */
#ifndef PERISCOPE_MEM_POOL_H
#define PERISCOPE_MEM_POOL_H

#include <stddef.h>

struct mem_pool;

/* Keeps at most max_free unused blocks of block_size bytes (at least a
 * pointer's size). NULL on ENOMEM. */
struct mem_pool *mem_pool__new(size_t block_size, size_t max_free);
/* Frees the unused blocks and the pool; blocks still in use must not be put
 * back after. Accepts NULL. */
void mem_pool__free(struct mem_pool *p);

/* A block of size bytes: a kept one when size is the pool's block size, else
 * (or when p is NULL, or none is kept) from malloc. NULL on ENOMEM. */
void *mem_pool_get(struct mem_pool *p, size_t size);
/* Gives back a block of mem_pool_get(p, size) (same p and size): kept for
 * reuse, or freed when the pool is full. Accepts NULL. */
void mem_pool_put(struct mem_pool *p, void *block, size_t size);

/* The pool's own bytes and those of the unused blocks it keeps. */
size_t mem_pool_memory(const struct mem_pool *p);

#endif
