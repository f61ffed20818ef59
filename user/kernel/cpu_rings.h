/* cpu_rings.h — the consumer side of the per-CPU event rings (the cpu_rings
 * map; layout and protocol in periscope_abi.h): each CPU's records are in
 * order, and the CPUs are merged by the time each record's space was
 * claimed (read by the producer right after its claim), so a thread that
 * moves between CPUs keeps its order. A drain hands over the records claimed
 * before it began, less a grace period for clock skew between CPUs; what it
 * left (younger, or still being written) is there for the next drain. One
 * reader; not thread-safe. */
#ifndef PERISCOPE_KERNEL_CPU_RINGS_H
#define PERISCOPE_KERNEL_CPU_RINGS_H

#include <stddef.h>
#include <stdint.h>

#include "kernel/ring_reader.h" /* ring_reader_fn */

struct cpu_rings;

/* The rings in mem: ncpus elements of stride bytes (control page, ring of
 * ring_size bytes, a power of two, then the slack). With map_fd >= 0, mem is
 * NULL and the map is mapped here (and unmapped by cpu_rings__free). NULL
 * with errno set on failure. */
struct cpu_rings *cpu_rings__new(int map_fd, void *mem, unsigned ncpus, size_t stride,
                                 size_t ring_size, ring_reader_fn fn, void *ctx);
void cpu_rings__free(struct cpu_rings *r); /* accepts NULL */

/* Hands fn every ready record claimed before now_ns - grace_ns, oldest
 * first, and releases it (a record still being written stops the CPUs'
 * records claimed after it). Returns the number handed, or fn's negative
 * return (the drain stops after that record). */
int cpu_rings_consume(struct cpu_rings *r, uint64_t now_ns, uint64_t grace_ns);

/* Every ready record, whatever its age (at shutdown). */
int cpu_rings_flush(struct cpu_rings *r);

/* The last drain left records behind (too young, or being written). */
int cpu_rings_left(const struct cpu_rings *r);

/* Bytes claimed and not yet released, over all CPUs. */
uint64_t cpu_rings_waiting(const struct cpu_rings *r);

/* Records handed over older than one handed before (a producer that stalled
 * longer than the grace period), and records skipped as malformed. */
uint64_t cpu_rings_late(const struct cpu_rings *r);
uint64_t cpu_rings_corrupt(const struct cpu_rings *r);

/* Records skipped because they stayed claimed and unwritten over a second
 * (a producer that never committed: never expected). */
uint64_t cpu_rings_stuck(const struct cpu_rings *r);

#endif
