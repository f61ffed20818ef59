/* event_file.c — saves the raw kernel event stream to a file and reads it back. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernel/event_file.h"

struct event_writer {
	FILE *f;
	int err;
};

/* In memory the events are laid out again, each at an 8-byte boundary after an
 * 8-byte record header (its u32 length, then padding), so the pipeline reads
 * them in place, as it does the kernel's rings. */
#define READER_REC_HDR  8u
#define READER_ALIGN(n) (((n) + 7) & ~(size_t)7)

struct event_reader {
	uint8_t *data; /* packed records */
	size_t len;
	size_t off;
	size_t count;
	int tail_err; /* what follows the last good record: 0 or -EINVAL (damaged) */
};

static size_t file_record_len(const uint8_t *p)
{
	return (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
}

/* Packs the file's records (raw[8..raw_len)) into r->data; a damaged record
 * ends the packing and becomes r->tail_err. */
static int reader_pack(struct event_reader *r, const uint8_t *raw, size_t raw_len)
{
	size_t off = 8, need = 0, n;

	while (off < raw_len) {
		if (raw_len - off < 4 || (n = file_record_len(raw + off)) > EVENT_FILE_MAX_EVENT ||
		    n > raw_len - off - 4) {
			r->tail_err = -EINVAL;
			break;
		}
		need += READER_REC_HDR + READER_ALIGN(n);
		off += 4 + n;
	}
	r->data = malloc(need ? need : 1);
	if (!r->data)
		return -ENOMEM;
	for (off = 8; r->len < need; off += 4 + n) {
		uint32_t len32;

		n = file_record_len(raw + off);
		len32 = (uint32_t)n;
		memset(r->data + r->len, 0, READER_REC_HDR + READER_ALIGN(n));
		memcpy(r->data + r->len, &len32, sizeof(len32));
		memcpy(r->data + r->len + READER_REC_HDR, raw + off + 4, n);
		r->len += READER_REC_HDR + READER_ALIGN(n);
	}
	return 0;
}

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
	size_t cap = 1 << 20, raw_len = 0;
	uint8_t *raw = NULL;
	int rc = 0;

	if (!f) {
		rc = -errno;
		goto cleanup;
	}
	r = calloc(1, sizeof(*r));
	raw = malloc(cap);
	if (!r || !raw) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		size_t n;

		if (raw_len == cap) {
			uint8_t *d = realloc(raw, cap * 2);

			if (!d) {
				rc = -ENOMEM;
				goto cleanup;
			}
			raw = d;
			cap *= 2;
		}
		n = fread(raw + raw_len, 1, cap - raw_len, f);
		raw_len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		rc = -EIO;
		goto cleanup;
	}
	if (raw_len < 8 || memcmp(raw, EVENT_FILE_MAGIC, 8) != 0) {
		rc = -EINVAL;
		goto cleanup;
	}
	rc = reader_pack(r, raw, raw_len);
cleanup:
	if (f)
		fclose(f);
	free(raw);
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

int event_reader_next(struct event_reader *r, void **event, size_t *len)
{
	uint32_t n;

	if (r->off == r->len)
		return r->tail_err;
	memcpy(&n, r->data + r->off, sizeof(n));
	*event = r->data + r->off + READER_REC_HDR;
	*len = n;
	r->off += READER_REC_HDR + READER_ALIGN(n);
	r->count++;
	return 1;
}

void event_reader_rewind(struct event_reader *r)
{
	r->off = 0;
	r->count = 0;
}

size_t event_reader_count(const struct event_reader *r)
{
	return r->count;
}
