/* event_file.c — saves the raw kernel event stream to a file and reads it back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/event_file.h"

struct event_writer {
	FILE *f;
	int err;
};

struct event_reader {
	uint8_t *data;
	size_t len;
	size_t off;
	size_t count;
};

struct event_writer *event_writer__new(const char *path)
{
	struct event_writer *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->f = fopen(path, "wbe");
	if (!w->f || fwrite(EVENT_FILE_MAGIC, 1, 8, w->f) != 8) {
		int e = errno;

		if (w->f)
			fclose(w->f);
		free(w);
		errno = e;
		return NULL;
	}
	return w;
}

int event_writer_append(struct event_writer *w, const void *event, size_t len)
{
	uint8_t lenb[4];

	if (len > EVENT_FILE_MAX_EVENT)
		return -EMSGSIZE;
	lenb[0] = (uint8_t)len;
	lenb[1] = (uint8_t)(len >> 8);
	lenb[2] = (uint8_t)(len >> 16);
	lenb[3] = (uint8_t)(len >> 24);
	if (fwrite(lenb, 1, 4, w->f) != 4 || fwrite(event, 1, len, w->f) != len) {
		w->err = -(errno ? errno : EIO);
		return w->err;
	}
	return 0;
}

int event_writer__free(struct event_writer *w)
{
	int rc;

	if (!w)
		return 0;
	rc = w->err;
	if (fclose(w->f) != 0 && !rc)
		rc = -errno;
	free(w);
	return rc;
}

struct event_reader *event_reader__new(const char *path, int *err)
{
	struct event_reader *r = NULL;
	FILE *f = fopen(path, "rbe");
	size_t cap = 1 << 20;
	int rc = 0;

	if (!f) {
		rc = -errno;
		goto cleanup;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		rc = -ENOMEM;
		goto cleanup;
	}
	r->data = malloc(cap);
	if (!r->data) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		size_t n;

		if (r->len == cap) {
			uint8_t *d = realloc(r->data, cap * 2);

			if (!d) {
				rc = -ENOMEM;
				goto cleanup;
			}
			r->data = d;
			cap *= 2;
		}
		n = fread(r->data + r->len, 1, cap - r->len, f);
		r->len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		rc = -EIO;
		goto cleanup;
	}
	if (r->len < 8 || memcmp(r->data, EVENT_FILE_MAGIC, 8) != 0) {
		rc = -EINVAL;
		goto cleanup;
	}
	r->off = 8;
cleanup:
	if (f)
		fclose(f);
	if (rc) {
		event_reader__free(r);
		r = NULL;
	}
	if (err)
		*err = rc;
	return r;
}

void event_reader__free(struct event_reader *r)
{
	if (!r)
		return;
	free(r->data);
	free(r);
}

int event_reader_next(struct event_reader *r, const void **event, size_t *len)
{
	const uint8_t *p;
	size_t n;

	if (r->off == r->len)
		return 0;
	if (r->len - r->off < 4)
		return -EINVAL;
	p = r->data + r->off;
	n = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
	if (n > EVENT_FILE_MAX_EVENT || n > r->len - r->off - 4)
		return -EINVAL;
	*event = p + 4;
	*len = n;
	r->off += 4 + n;
	r->count++;
	return 1;
}

void event_reader_rewind(struct event_reader *r)
{
	r->off = 8;
	r->count = 0;
}

size_t event_reader_count(const struct event_reader *r)
{
	return r->count;
}
