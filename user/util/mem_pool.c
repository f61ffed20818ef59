/* mem_pool.c — a bounded freelist of equal-sized blocks (mem_pool.h). The
 * unused blocks are chained through their first bytes. */
#include <stdlib.h>

#include "util/mem_pool.h"

struct free_block {
	struct free_block *next;
};

struct mem_pool {
	size_t block_size;
	size_t max_free;
	size_t n_free;
	struct free_block *free; /* unused blocks, owned */
};

struct mem_pool *mem_pool__new(size_t block_size, size_t max_free)
{
	struct mem_pool *p;

	if (block_size < sizeof(struct free_block))
		block_size = sizeof(struct free_block);
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->block_size = block_size;
	p->max_free = max_free;
	return p;
}

void mem_pool__free(struct mem_pool *p)
{
	if (!p)
		return;
	while (p->free) {
		struct free_block *b = p->free;

		p->free = b->next;
		free(b);
	}
	free(p);
}

void *mem_pool_get(struct mem_pool *p, size_t size)
{
	struct free_block *b;

	if (!p || size != p->block_size || !p->free)
		return malloc(size);
	b = p->free;
	p->free = b->next;
	p->n_free--;
	return b;
}

void mem_pool_put(struct mem_pool *p, void *block, size_t size)
{
	struct free_block *b = block;

	if (!block)
		return;
	if (!p || size != p->block_size || p->n_free >= p->max_free) {
		free(block);
		return;
	}
	b->next = p->free;
	p->free = b;
	p->n_free++;
}

size_t mem_pool_memory(const struct mem_pool *p)
{
	return p ? sizeof(*p) + p->n_free * p->block_size : 0;
}
