/* test_event_file.c — event files written by event_writer and read back by
 * event_reader: every event comes back whole, in order and 8-byte aligned
 * (the file stores them unaligned), may be changed in place and read again
 * after a rewind, and a damaged record ends the stream with -EINVAL after the
 * good ones before it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel/event_file.h"
#include "unit.h"

#define N_EVENTS 200

static size_t event_len(int i)
{
	return 1 + (size_t)(i * 37) % 301; /* odd and even lengths, 1..301 bytes */
}

static void fill_event(uint8_t *ev, int i)
{
	for (size_t k = 0; k < event_len(i); k++)
		ev[k] = (uint8_t)(i * 7 + k);
}

static int write_file(const char *path)
{
	struct event_writer *w = event_writer__new(path);
	uint8_t ev[512];

	if (!w)
		return -errno;
	for (int i = 0; i < N_EVENTS; i++) {
		fill_event(ev, i);
		if (event_writer_append(w, ev, event_len(i)) < 0) {
			event_writer__free(w);
			return -EIO;
		}
	}
	return event_writer__free(w);
}

static void make_path(char *path, size_t len)
{
	snprintf(path, len, "/tmp/periscope-test-event-file-%d", (int)getpid());
}

static void events_come_back_whole_aligned_and_in_order(void)
{
	char path[64];
	struct event_reader *r;
	uint8_t want[512];
	void *ev;
	size_t len;
	int rc, i = 0, err = 0;

	make_path(path, sizeof(path));
	CHECK_EQ_INT(write_file(path), 0);
	r = event_reader__new(path, &err);
	CHECK(r != NULL);
	CHECK_EQ_INT(err, 0);
	if (!r)
		goto cleanup;
	while ((rc = event_reader_next(r, &ev, &len)) == 1) {
		CHECK_EQ_INT((uintptr_t)ev % 8, 0);
		CHECK_EQ_INT(len, event_len(i));
		fill_event(want, i);
		CHECK(len == event_len(i) && memcmp(ev, want, len) == 0);
		i++;
	}
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(i, N_EVENTS);
	CHECK_EQ_INT(event_reader_count(r), N_EVENTS);
cleanup:
	event_reader__free(r);
	unlink(path);
}

static void changes_in_place_stay_after_a_rewind(void)
{
	char path[64];
	struct event_reader *r;
	void *ev;
	size_t len;
	int i = 0;

	make_path(path, sizeof(path));
	CHECK_EQ_INT(write_file(path), 0);
	r = event_reader__new(path, NULL);
	CHECK(r != NULL);
	if (!r)
		goto cleanup;
	while (event_reader_next(r, &ev, &len) == 1)
		((uint8_t *)ev)[0] = 0xAB; /* as replay moves timestamps */
	event_reader_rewind(r);
	CHECK_EQ_INT(event_reader_count(r), 0);
	while (event_reader_next(r, &ev, &len) == 1) {
		uint8_t want[512];

		fill_event(want, i);
		CHECK_EQ_INT(((uint8_t *)ev)[0], 0xAB);
		CHECK(len == event_len(i) && memcmp((uint8_t *)ev + 1, want + 1, len - 1) == 0);
		i++;
	}
	CHECK_EQ_INT(i, N_EVENTS);
cleanup:
	event_reader__free(r);
	unlink(path);
}

/* The file cut inside its 11th record: ten events, then -EINVAL, also after a rewind. */
static void a_damaged_record_ends_the_stream(void)
{
	char path[64];
	struct event_reader *r = NULL;
	size_t cut = 8;
	void *ev;
	size_t len;
	int rc, n = 0;

	make_path(path, sizeof(path));
	CHECK_EQ_INT(write_file(path), 0);
	for (int i = 0; i < 10; i++)
		cut += 4 + event_len(i);
	CHECK_EQ_INT(truncate(path, (off_t)(cut + 4 + event_len(10) / 2)), 0);
	r = event_reader__new(path, NULL);
	CHECK(r != NULL);
	if (!r)
		goto cleanup;
	for (int pass = 0; pass < 2; pass++) {
		n = 0;
		event_reader_rewind(r);
		while ((rc = event_reader_next(r, &ev, &len)) == 1)
			n++;
		CHECK_EQ_INT(n, 10);
		CHECK_EQ_INT(rc, -EINVAL);
	}
cleanup:
	event_reader__free(r);
	unlink(path);
}

static void not_an_event_file_is_refused(void)
{
	char path[64];
	struct event_reader *r;
	FILE *f;
	int err = 0;

	make_path(path, sizeof(path));
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (!f)
		return;
	fputs("GET / HTTP/1.1\r\n\r\n", f);
	fclose(f);
	r = event_reader__new(path, &err);
	CHECK(r == NULL);
	CHECK_EQ_INT(err, -EINVAL);
	event_reader__free(r);
	unlink(path);
	CHECK(event_reader__new("/nonexistent/periscope.events", &err) == NULL);
	CHECK_EQ_INT(err, -ENOENT);
}

int main(void)
{
	RUN(events_come_back_whole_aligned_and_in_order);
	RUN(changes_in_place_stay_after_a_rewind);
	RUN(a_damaged_record_ends_the_stream);
	RUN(not_an_event_file_is_refused);
	return unit_summary("test_event_file");
}
