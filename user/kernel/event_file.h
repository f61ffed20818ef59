/* event_file.h — the raw kernel event stream saved to a file (`periscope record`)
 * and read back (`periscope replay`), so the userspace pipeline can be tested,
 * benchmarked and debugged without the kernel.
 *
 * Format: the 8-byte magic EVENT_FILE_MAGIC, then each event as a little-endian u32
 * length followed by that many bytes (the event, starting with its header). */
#ifndef PERISCOPE_EVENT_FILE_H
#define PERISCOPE_EVENT_FILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define EVENT_FILE_MAGIC     "PSCOPE2\n" /* 2: conn refs carry the event-loop tick */
#define EVENT_FILE_MAX_EVENT (1u << 20)

struct event_writer;
struct event_reader;

/* Creates (truncates) path. NULL with errno set on failure. */
struct event_writer *event_writer__new(const char *path);
int event_writer_append(struct event_writer *w, const void *event, size_t len);
/* Flushes and closes; returns 0 or a negative errno from the last write. */
int event_writer__free(struct event_writer *w);

/* Reads the whole file into memory (replay measures the pipeline, not the disk);
 * a damaged record ends what is read, and event_reader_next reports it there. */
struct event_reader *event_reader__new(const char *path, int *err);
void event_reader__free(struct event_reader *r);
/* The next event: 1 with event and len set, 0 at the end, -EINVAL where the file
 * is damaged. The event is 8-byte aligned and the reader's: the caller may change
 * it in place (replay moves timestamps), and it stays until the reader is freed. */
int event_reader_next(struct event_reader *r, void **event, size_t *len);
void event_reader_rewind(struct event_reader *r);
size_t event_reader_count(const struct event_reader *r); /* events read so far */

#endif
