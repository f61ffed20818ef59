/* http2.c — passive HTTP/2 parser for one connection.
 *
 * Each direction runs a frame reader over its bytes: a 9-byte frame header
 * (kept across chunks), then the payload, consumed as it arrives: a fixed
 * prefix (pad length, priority, promised stream, error codes) kept in a small
 * buffer, the body (DATA counted, header block fragments appended to a
 * bounded buffer, SETTINGS entries read 6 bytes at a time) and the padding.
 * Uncaptured bytes (stream_chunk.missing) inside a payload are consumed by
 * the frame's declared length: DATA still counts them as body; a header block
 * fragment that was not captured is lost, and the direction's HPACK decoder is
 * emptied and put in late-join mode (the lost block may have inserted
 * entries). Uncaptured bytes anywhere else lose the frame boundaries.
 *
 * Start and resynchronisation. The client direction starts synced when its
 * first bytes are the connection preface; the server direction when its
 * first frame is a SETTINGS frame (the server preface) or the client's
 * preface was seen. Otherwise (joined mid-way) the first 9 bytes are accepted
 * as a frame header when they look like one, and the HPACK decoders run in
 * late-join mode. A direction that has lost its frame boundaries, or read a
 * frame header no peer would send, hunts: in each chunk it looks for an offset
 * where a plausible chain of frame headers starts (at the chunk's first byte
 * one plausible header is enough; inside a chunk two, or one ending exactly at
 * the chunk's end).
 *
 * Streams (at most HTTP2_STREAMS_MAX) are created by the client's HEADERS
 * and kept in an open-addressing hash table. A stream is reported when the
 * response ends (END_STREAM), on RST_STREAM from either side, when the server's
 * GOAWAY leaves it unprocessed, or at close. A synced HPACK decoder that fails
 * a block is switched to late-join (the stream is marked unknown_headers). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parsers/hpack.h"
#include "parsers/http2.h"

#define FRAME_HEADER_LEN 9
#define PREFACE          "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN      24
#define HUNT_CHAIN       8 /* frame headers checked per candidate offset */
#define SLOTS_MIN        16

enum frame_type {
	FT_DATA = 0,
	FT_HEADERS = 1,
	FT_PRIORITY = 2,
	FT_RST_STREAM = 3,
	FT_SETTINGS = 4,
	FT_PUSH_PROMISE = 5,
	FT_PING = 6,
	FT_GOAWAY = 7,
	FT_WINDOW_UPDATE = 8,
	FT_CONTINUATION = 9,
};

#define FL_END_STREAM  0x01
#define FL_ACK         0x01
#define FL_END_HEADERS 0x04
#define FL_PADDED      0x08
#define FL_PRIORITY    0x20

#define SETTINGS_HEADER_TABLE_SIZE 1

enum dir_state {
	DS_START = 0, /* first bytes of the direction: preface or first frame header */
	DS_HEADER,    /* reading a frame header */
	DS_PAYLOAD,   /* inside a frame payload */
	DS_HUNT,      /* frame boundaries lost: looking for them */
};

enum block_kind {
	BK_IGNORE = 0, /* decoded for the table only */
	BK_REQUEST,    /* a request's header block */
	BK_RESPONSE,   /* a response's first (or informational) header block */
	BK_TRAILERS,   /* a later response block: trailers */
};

struct h2_stream {
	struct http2_exchange ex;
	bool head_seen; /* the final response head was seen */
};

struct h2_dir {
	uint8_t state;       /* enum dir_state */
	uint8_t preface_len; /* DS_START, client: preface bytes matched */
	bool synced;         /* seen from its start (HPACK synced) */
	uint8_t hdr[FRAME_HEADER_LEN];
	uint8_t hdr_len;
	uint8_t type;
	uint8_t flags;
	uint32_t len;
	uint32_t sid;
	uint32_t pos; /* payload bytes consumed */
	uint8_t pre[8];
	uint8_t pre_need; /* fixed prefix bytes of this frame */
	uint8_t pre_len;
	bool pre_missing; /* some prefix bytes were not captured */
	bool bad;         /* malformed frame: its payload is skipped */
	uint8_t pad;
	uint8_t set[6]; /* SETTINGS entry being read */
	uint8_t set_len;
	bool set_lost;
	uint64_t frame_ts; /* ts_first of the chunk holding the frame's first byte */
	/* header block being assembled (HEADERS or PUSH_PROMISE + CONTINUATION) */
	bool in_block;
	bool block_push;
	bool block_end_stream;
	bool block_lost;
	uint32_t block_sid;
	uint32_t block_conts;
	uint64_t block_ts;
	uint8_t *block;
	size_t block_len;
	size_t block_cap;
	struct hpack_decoder *hpack;
};

struct http2_conn {
	http2_exchange_fn fn;
	http2_request_fn req_fn;
	void *ctx;
	struct h2_dir dir[2];
	struct h2_stream **slots; /* open addressing, linear probing */
	uint32_t slot_cap;        /* power of two, 0 before the first stream */
	uint32_t nstreams;
	uint64_t next_seq;
	bool started;                     /* bytes were fed or an upgrade started it */
	const struct stream_chunk *chunk; /* the chunk being fed */
	struct http2_stats stats;
};

/* Fields of one header block being decoded. */
struct block_ctx {
	struct http2_conn *c;
	struct h2_stream *s; /* NULL for BK_IGNORE */
	uint8_t kind;
	int status;
	int grpc_status;
	bool unknown;
};

static size_t copy_text(char *dst, size_t cap, const char *src, size_t n)
{
	if (n > cap - 1)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return n;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---- streams ---- */

static uint32_t slot_hash(uint32_t sid, uint32_t cap)
{
	return (sid * 2654435761u) & (cap - 1);
}

static struct h2_stream *stream_find(const struct http2_conn *c, uint32_t sid)
{
	if (!c->slot_cap)
		return NULL;
	for (uint32_t i = slot_hash(sid, c->slot_cap);; i = (i + 1) & (c->slot_cap - 1)) {
		struct h2_stream *s = c->slots[i];

		if (!s)
			return NULL;
		if (s->ex.stream_id == sid)
			return s;
	}
}

static void slot_put(struct h2_stream **slots, uint32_t cap, struct h2_stream *s)
{
	uint32_t i = slot_hash(s->ex.stream_id, cap);

	while (slots[i])
		i = (i + 1) & (cap - 1);
	slots[i] = s;
}

static int slots_grow(struct http2_conn *c)
{
	uint32_t cap = c->slot_cap ? c->slot_cap * 2 : SLOTS_MIN;
	struct h2_stream **n = calloc(cap, sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (uint32_t i = 0; i < c->slot_cap; i++)
		if (c->slots[i])
			slot_put(n, cap, c->slots[i]);
	free(c->slots);
	c->slots = n;
	c->slot_cap = cap;
	return 0;
}

static struct h2_stream *stream_new(struct http2_conn *c, uint32_t sid)
{
	struct h2_stream *s;

	if (c->nstreams >= HTTP2_STREAMS_MAX) {
		c->stats.streams_overflow++;
		return NULL;
	}
	if ((c->nstreams + 1) * 2 > c->slot_cap && slots_grow(c))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ex.stream_id = sid;
	s->ex.grpc_status = -1;
	s->ex.seq = c->next_seq++;
	slot_put(c->slots, c->slot_cap, s);
	c->nstreams++;
	return s;
}

/* Removes s from the table (backward-shift deletion) and frees it. */
static void stream_remove(struct http2_conn *c, struct h2_stream *s)
{
	uint32_t mask = c->slot_cap - 1;
	uint32_t i = slot_hash(s->ex.stream_id, c->slot_cap);

	while (c->slots[i] != s)
		i = (i + 1) & mask;
	for (uint32_t j = (i + 1) & mask; c->slots[j]; j = (j + 1) & mask) {
		uint32_t home = slot_hash(c->slots[j]->ex.stream_id, c->slot_cap);

		/* move j into the hole at i unless its home lies in (i, j] */
		if (((j - home) & mask) >= ((j - i) & mask)) {
			c->slots[i] = c->slots[j];
			i = j;
		}
	}
	c->slots[i] = NULL;
	c->nstreams--;
	free(s);
}

static void stream_report(struct http2_conn *c, struct h2_stream *s, enum http2_end end,
                          uint32_t code, uint64_t ts)
{
	s->ex.end = (uint8_t)end;
	s->ex.error_code = code;
	s->ex.hpack_late_join =
	    hpack_decoder_late_join(c->dir[0].hpack) || hpack_decoder_late_join(c->dir[1].hpack);
	s->ex.conn_first = c->stats.exchanges == 0;
	s->ex.resp_end_ns = ts;
	if (!s->ex.resp_start_ns)
		s->ex.resp_start_ns = ts;
	c->stats.exchanges++;
	if (c->fn)
		c->fn(c->ctx, &s->ex);
	stream_remove(c, s);
}

/* ---- header blocks ---- */

static bool name_is(const struct hpack_header *h, const char *name)
{
	size_t n = strlen(name);

	return h->name_len == n && !memcmp(h->name, name, n);
}

static int parse_status(const char *v, size_t n)
{
	if (n != 3)
		return 0;
	for (size_t i = 0; i < 3; i++)
		if (v[i] < '0' || v[i] > '9')
			return 0;
	return (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
}

static int parse_grpc_status(const char *v, size_t n)
{
	int x = 0;

	if (!n || n > 3)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (v[i] - '0');
	}
	return x;
}

/* grpc-timeout: up to 8 digits and a unit (H M S m u n), in ns; 0 if bad. */
static uint64_t parse_grpc_timeout(const char *v, size_t n)
{
	uint64_t x = 0, mult;

	if (n < 2 || n > 9)
		return 0;
	for (size_t i = 0; i + 1 < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return 0;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	switch (v[n - 1]) {
	case 'H':
		mult = 3600000000000ull;
		break;
	case 'M':
		mult = 60000000000ull;
		break;
	case 'S':
		mult = 1000000000ull;
		break;
	case 'm':
		mult = 1000000ull;
		break;
	case 'u':
		mult = 1000ull;
		break;
	case 'n':
		mult = 1;
		break;
	default:
		return 0;
	}
	return x > UINT64_MAX / mult ? UINT64_MAX : x * mult;
}

static void request_field(struct http2_exchange *ex, const struct hpack_header *h)
{
	if (name_is(h, ":method")) {
		copy_text(ex->method, sizeof(ex->method), h->value, h->value_len);
	} else if (name_is(h, ":path")) {
		copy_text(ex->path, sizeof(ex->path), h->value, h->value_len);
		ex->path_truncated = h->value_len >= sizeof(ex->path);
	} else if (name_is(h, ":authority")) {
		copy_text(ex->authority, sizeof(ex->authority), h->value, h->value_len);
	} else if (name_is(h, "host")) {
		if (!ex->authority[0])
			copy_text(ex->authority, sizeof(ex->authority), h->value, h->value_len);
	} else if (name_is(h, ":scheme")) {
		copy_text(ex->scheme, sizeof(ex->scheme), h->value, h->value_len);
	} else if (name_is(h, "content-type")) {
		copy_text(ex->content_type, sizeof(ex->content_type), h->value, h->value_len);
	} else if (name_is(h, "user-agent")) {
		copy_text(ex->user_agent, sizeof(ex->user_agent), h->value, h->value_len);
	} else if (name_is(h, "traceparent")) {
		copy_text(ex->traceparent, sizeof(ex->traceparent), h->value, h->value_len);
	} else if (name_is(h, "tracestate")) {
		copy_text(ex->tracestate, sizeof(ex->tracestate), h->value, h->value_len);
	} else if (name_is(h, "te")) {
		copy_text(ex->te, sizeof(ex->te), h->value, h->value_len);
	} else if (name_is(h, "grpc-timeout")) {
		ex->grpc_timeout_ns = parse_grpc_timeout(h->value, h->value_len);
	}
}

static void on_field(void *ctx, const struct hpack_header *h)
{
	struct block_ctx *b = ctx;

	if (h->flags & (HPACK_F_UNKNOWN_NAME | HPACK_F_UNKNOWN_VALUE)) {
		b->unknown = true;
		b->c->stats.unknown_headers++;
	}
	if (!b->s)
		return;
	switch (b->kind) {
	case BK_REQUEST:
		request_field(&b->s->ex, h);
		break;
	case BK_RESPONSE:
		/* a Trailers-Only response carries grpc-* here too */
		if (name_is(h, ":status"))
			b->status = parse_status(h->value, h->value_len);
		/* fall through */
	case BK_TRAILERS:
		if (name_is(h, "grpc-status")) {
			b->grpc_status = parse_grpc_status(h->value, h->value_len);
		} else if (name_is(h, "grpc-message")) {
			copy_text(b->s->ex.grpc_message, sizeof(b->s->ex.grpc_message), h->value,
			          h->value_len);
		}
		break;
	default:
		break;
	}
}

static void hpack_lost(struct http2_conn *c, struct h2_dir *d)
{
	hpack_decoder_reset(d->hpack, true);
	c->stats.late_join = true;
}

static void block_reset(struct h2_dir *d)
{
	d->in_block = false;
	d->block_len = 0;
	if (d->block_cap > 16384) {
		free(d->block);
		d->block = NULL;
		d->block_cap = 0;
	}
}

/* The stream and role a complete header block belongs to. */
static struct h2_stream *block_target(struct http2_conn *c, enum stream_dir dir, struct h2_dir *d,
                                      uint8_t *kind)
{
	struct h2_stream *s;

	*kind = BK_IGNORE;
	if (d->block_push)
		return NULL;
	s = stream_find(c, d->block_sid);
	if (dir == STREAM_DIR_REQUEST) {
		if (!s) {
			s = stream_new(c, d->block_sid);
			if (s)
				*kind = BK_REQUEST;
			return s;
		}
		return NULL; /* request trailers: nothing kept */
	}
	if (!s) {
		if (d->block_sid & 1)
			c->stats.orphan_frames++;
		return NULL;
	}
	*kind = s->head_seen ? BK_TRAILERS : BK_RESPONSE;
	return s;
}

static void end_of_direction(struct http2_conn *c, enum stream_dir dir, uint32_t sid, uint64_t ts)
{
	struct h2_stream *s = stream_find(c, sid);

	if (!s)
		return;
	if (dir == STREAM_DIR_REQUEST) {
		s->ex.request_complete = true;
		s->ex.req_end_ns = ts;
		return;
	}
	stream_report(c, s, HTTP2_END_STREAM, 0, ts);
}

/* A header block ended (END_HEADERS, or lost): decode it and apply it. */
static void block_done(struct http2_conn *c, enum stream_dir dir, struct h2_dir *d)
{
	struct block_ctx b = {.c = c, .grpc_status = -1};
	uint64_t ts = c->chunk->ts_last_ns;
	struct h2_stream *s;

	s = block_target(c, dir, d, &b.kind);
	b.s = s;
	if (d->block_lost) {
		c->stats.lost_blocks++;
		hpack_lost(c, d);
		b.unknown = true;
	} else {
		int err = hpack_decode_block(d->hpack, d->block, d->block_len, on_field, &b);

		if (err) {
			c->stats.hpack_errors++;
			hpack_decoder_set_late_join(d->hpack);
			c->stats.late_join = true;
			b.unknown = true;
		}
	}
	if (s) {
		if (b.unknown)
			s->ex.unknown_headers = true;
		if (b.kind == BK_REQUEST) {
			s->ex.req_start_ns = d->block_ts;
			if (c->req_fn)
				c->req_fn(c->ctx, &s->ex);
		} else if (b.kind == BK_RESPONSE) {
			if (b.status >= 200 || (!b.status && (b.unknown || d->block_end_stream))) {
				/* final (or unreadable) response head */
				s->head_seen = true;
				s->ex.status = b.status;
				s->ex.resp_start_ns = d->block_ts;
				if (b.grpc_status >= 0) {
					s->ex.grpc_status = b.grpc_status;
					s->ex.trailers_only = true;
				}
			}
		} else if (b.kind == BK_TRAILERS && b.grpc_status >= 0) {
			s->ex.grpc_status = b.grpc_status;
		}
	}
	if (d->block_end_stream && !d->block_push)
		end_of_direction(c, dir, d->block_sid, ts);
	block_reset(d);
}

static void block_append(struct h2_dir *d, const uint8_t *p, size_t n)
{
	if (d->block_lost)
		return;
	if (!p || d->block_len + n > HTTP2_HEADER_BLOCK_MAX) {
		d->block_lost = true;
		return;
	}
	if (d->block_len + n > d->block_cap) {
		size_t cap = d->block_cap ? d->block_cap : 1024;
		uint8_t *nb;

		while (cap < d->block_len + n)
			cap *= 2;
		if (cap > HTTP2_HEADER_BLOCK_MAX)
			cap = HTTP2_HEADER_BLOCK_MAX;
		nb = realloc(d->block, cap);
		if (!nb) {
			d->block_lost = true;
			return;
		}
		d->block = nb;
		d->block_cap = cap;
	}
	memcpy(d->block + d->block_len, p, n);
	d->block_len += n;
}

/* ---- frames ---- */

/* Could a peer send this frame header? strict: as evidence that these bytes
 * are frames (hunting), also known type, defined flags only, reserved bit
 * clear, odd streams for HEADERS and DATA. */
static bool header_plausible(const uint8_t *h, bool strict)
{
	uint32_t len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
	uint8_t type = h[3], flags = h[4];
	uint32_t sid = be32(h + 5) & 0x7fffffffu;

	if (strict && (h[5] & 0x80))
		return false;
	switch (type) {
	case FT_DATA:
		return sid && (!strict || ((sid & 1) && !(flags & ~(FL_END_STREAM | FL_PADDED))));
	case FT_HEADERS:
		return sid && (!strict || ((sid & 1) && !(flags & ~(FL_END_STREAM | FL_END_HEADERS |
		                                                    FL_PADDED | FL_PRIORITY))));
	case FT_PRIORITY: /* a wrong length is only a stream error */
		return sid && (!strict || (len == 5 && !flags));
	case FT_RST_STREAM:
		return sid && len == 4 && (!strict || !flags);
	case FT_SETTINGS:
		return !sid && len % 6 == 0 && (!(flags & FL_ACK) || !len) &&
		       (!strict || !(flags & ~FL_ACK));
	case FT_PUSH_PROMISE:
		return sid && (!strict || !(flags & ~(FL_END_HEADERS | FL_PADDED)));
	case FT_PING:
		return !sid && len == 8 && (!strict || !(flags & ~FL_ACK));
	case FT_GOAWAY:
		return !sid && len >= 8 && (!strict || !flags);
	case FT_WINDOW_UPDATE:
		return len == 4 && (!strict || !flags);
	case FT_CONTINUATION:
		return sid && (!strict || !(flags & ~FL_END_HEADERS));
	default:
		return !strict; /* extension frames are skipped once synced */
	}
}

/* Does a chain of plausible frame headers start at p? */
static bool chain_plausible(const uint8_t *p, size_t n, bool chunk_start)
{
	size_t off = 0;
	unsigned frames = 0;

	while (off + FRAME_HEADER_LEN <= n && frames < HUNT_CHAIN) {
		if (!header_plausible(p + off, true))
			return false;
		off += FRAME_HEADER_LEN +
		       ((size_t)p[off] << 16 | (size_t)p[off + 1] << 8 | p[off + 2]);
		frames++;
	}
	if (!frames)
		return false;
	if (off == n || frames == HUNT_CHAIN)
		return true;
	return chunk_start || frames >= 2;
}

/* Offset in p where frames seem to start, or n. */
static size_t hunt(const uint8_t *p, size_t n, bool chunk_start)
{
	for (size_t o = 0; o + FRAME_HEADER_LEN <= n; o++)
		if (chain_plausible(p + o, n - o, chunk_start && o == 0))
			return o;
	return n;
}

static void lose_sync(struct http2_conn *c, struct h2_dir *d)
{
	if (d->in_block) {
		c->stats.lost_blocks++;
		block_reset(d);
	}
	d->state = DS_HUNT;
	d->hdr_len = 0;
	hpack_lost(c, d);
	c->stats.resyncs++;
}

static void frame_end(struct http2_conn *c, enum stream_dir dir, struct h2_dir *d)
{
	uint64_t ts = c->chunk->ts_last_ns;
	struct h2_stream *s;

	d->state = DS_HEADER;
	d->hdr_len = 0;
	switch (d->type) {
	case FT_DATA:
		if ((d->flags & FL_END_STREAM) && !d->bad)
			end_of_direction(c, dir, d->sid, ts);
		break;
	case FT_HEADERS:
	case FT_PUSH_PROMISE:
	case FT_CONTINUATION:
		if (!d->in_block || d->sid != d->block_sid)
			break;
		if (d->bad)
			d->block_lost = true;
		if (d->flags & FL_END_HEADERS || d->bad)
			block_done(c, dir, d);
		break;
	case FT_RST_STREAM:
		if (d->bad || d->pre_missing)
			break;
		s = stream_find(c, d->sid);
		if (s)
			stream_report(c, s, HTTP2_END_RST, be32(d->pre), ts);
		break;
	case FT_GOAWAY:
		if (d->bad || d->pre_missing || dir != STREAM_DIR_RESPONSE)
			break;
		for (uint32_t i = 0; i < c->slot_cap;) {
			s = c->slots[i];
			if (s && s->ex.stream_id > (be32(d->pre) & 0x7fffffffu))
				stream_report(c, s, HTTP2_END_GOAWAY, be32(d->pre + 4), ts);
			else
				i++; /* a removal may shift another stream into slot i */
		}
		break;
	default:
		break;
	}
}

/* A frame header is complete. */
static void frame_begin(struct http2_conn *c, enum stream_dir dir, struct h2_dir *d)
{
	const uint8_t *h = d->hdr;

	d->len = (uint32_t)h[0] << 16 | (uint32_t)h[1] << 8 | h[2];
	d->type = h[3];
	d->flags = h[4];
	d->sid = be32(h + 5) & 0x7fffffffu;
	d->pos = 0;
	d->pre_need = 0;
	d->pre_len = 0;
	d->pre_missing = false;
	d->bad = false;
	d->pad = 0;
	d->set_len = 0;
	d->set_lost = false;
	c->stats.frames++;
	if (!header_plausible(h, false)) {
		c->stats.parse_errors++;
		lose_sync(c, d);
		return;
	}
	if (d->in_block && (d->type != FT_CONTINUATION || d->sid != d->block_sid)) {
		/* the block's CONTINUATION never came */
		c->stats.parse_errors++;
		d->block_lost = true;
		block_done(c, dir, d);
	}
	switch (d->type) {
	case FT_DATA:
		d->pre_need = (d->flags & FL_PADDED) ? 1 : 0;
		break;
	case FT_HEADERS:
	case FT_PUSH_PROMISE:
		if (d->type == FT_HEADERS)
			d->pre_need = (uint8_t)(((d->flags & FL_PADDED) ? 1 : 0) +
			                        ((d->flags & FL_PRIORITY) ? 5 : 0));
		else
			d->pre_need = (uint8_t)(((d->flags & FL_PADDED) ? 1 : 0) + 4);
		d->in_block = true;
		d->block_push = d->type == FT_PUSH_PROMISE;
		d->block_sid = d->sid;
		d->block_end_stream = d->type == FT_HEADERS && (d->flags & FL_END_STREAM);
		d->block_lost = false;
		d->block_conts = 0;
		d->block_ts = d->frame_ts;
		d->block_len = 0;
		break;
	case FT_CONTINUATION:
		if (!d->in_block) {
			c->stats.parse_errors++;
			d->bad = true;
		} else if (++d->block_conts > HTTP2_CONTINUATION_MAX) {
			d->block_lost = true;
		}
		break;
	case FT_RST_STREAM:
		d->pre_need = 4;
		break;
	case FT_GOAWAY:
		d->pre_need = 8;
		break;
	default:
		break;
	}
	if (d->pre_need > d->len) {
		c->stats.parse_errors++;
		d->bad = true;
	}
	d->state = DS_PAYLOAD;
	if (!d->len)
		frame_end(c, dir, d);
}

static void settings_bytes(struct http2_conn *c, enum stream_dir dir, struct h2_dir *d,
                           const uint8_t *p, size_t n)
{
	if (!p)
		d->set_lost = true;
	if (d->set_lost)
		return;
	for (size_t i = 0; i < n; i++) {
		d->set[d->set_len++] = p[i];
		if (d->set_len < 6)
			continue;
		d->set_len = 0;
		if (((uint32_t)d->set[0] << 8 | d->set[1]) == SETTINGS_HEADER_TABLE_SIZE)
			/* the sender's decoder size bounds the other direction's encoder */
			hpack_decoder_set_max_table_size(c->dir[!dir].hpack, be32(d->set + 2));
	}
}

/* Does a DATA frame's payload (len bytes, the first n of them at p) start
 * with gRPC messages: a compressed flag of 0 or 1 and a 4-byte length, the
 * messages ending at the frame's end, or the last running past it (a message
 * split across frames, up to gRPC's default 4 MiB)? */
static bool grpc_framing(const uint8_t *p, size_t n, size_t len)
{
	size_t off = 0;

	for (int i = 0; i < 8 && off + 5 <= n; i++) {
		if (p[off] > 1)
			return false;
		size_t next = off + 5 + be32(p + off + 1);
		if (next == len)
			return true;
		if (next > len)
			return next - off - 5 <= (4u << 20);
		off = next;
	}
	return false;
}

static void body_bytes(struct http2_conn *c, enum stream_dir dir, struct h2_dir *d,
                       const uint8_t *p, size_t n)
{
	struct h2_stream *s;

	switch (d->type) {
	case FT_DATA:
		s = stream_find(c, d->sid);
		if (!s)
			break;
		if (p && d->pos == d->pre_need &&
		    (dir == STREAM_DIR_REQUEST ? s->ex.request_body_size
		                               : s->ex.response_body_size) == 0 &&
		    grpc_framing(p, n, d->len - d->pad - d->pre_need))
			s->ex.grpc_framed |= dir == STREAM_DIR_REQUEST ? 1 : 2;
		if (dir == STREAM_DIR_REQUEST)
			s->ex.request_body_size += n;
		else
			s->ex.response_body_size += n;
		break;
	case FT_HEADERS:
	case FT_PUSH_PROMISE:
	case FT_CONTINUATION:
		if (d->in_block && d->sid == d->block_sid)
			block_append(d, p, n);
		break;
	case FT_SETTINGS:
		settings_bytes(c, dir, d, p, n);
		break;
	default:
		break;
	}
}

/* Consumes up to n payload bytes (p NULL: not captured); returns how many. */
static size_t payload(struct http2_conn *c, enum stream_dir dir, struct h2_dir *d, const uint8_t *p,
                      size_t n)
{
	size_t done = 0;

	while (done < n && d->pos < d->len) {
		size_t left = n - done, take;

		if (d->bad) {
			take = d->len - d->pos < left ? d->len - d->pos : left;
		} else if (d->pre_len < d->pre_need) {
			take = (size_t)(d->pre_need - d->pre_len) < left
			           ? (size_t)(d->pre_need - d->pre_len)
			           : left;
			if (p)
				memcpy(d->pre + d->pre_len, p + done, take);
			else
				d->pre_missing = true;
			d->pre_len = (uint8_t)(d->pre_len + take);
			if (d->pre_len == d->pre_need && (d->flags & FL_PADDED) &&
			    (d->type == FT_DATA || d->type == FT_HEADERS ||
			     d->type == FT_PUSH_PROMISE)) {
				/* the pad length is the prefix's first byte */
				d->pad = d->pre_missing ? 0 : d->pre[0];
				if (d->pad > d->len - d->pre_need) {
					c->stats.parse_errors++;
					d->bad = true;
				}
				if (d->pre_missing && d->type != FT_DATA)
					d->block_lost = true;
			}
		} else if (d->pos < d->len - d->pad) {
			take = d->len - d->pad - d->pos < left ? d->len - d->pad - d->pos : left;
			body_bytes(c, dir, d, p ? p + done : NULL, take);
		} else {
			take = d->len - d->pos < left ? d->len - d->pos : left;
		}
		d->pos += (uint32_t)take;
		done += take;
	}
	if (d->pos == d->len)
		frame_end(c, dir, d);
	return done;
}

/* DS_START: the direction's first bytes. Returns bytes consumed. */
static size_t start_bytes(struct http2_conn *c, enum stream_dir dir, struct h2_dir *d,
                          const uint8_t *p, size_t n)
{
	size_t i = 0;

	if (dir == STREAM_DIR_REQUEST && d->hdr_len == 0) {
		while (i < n && d->preface_len < PREFACE_LEN && p[i] == PREFACE[d->preface_len]) {
			d->preface_len++;
			i++;
		}
		if (d->preface_len == PREFACE_LEN) {
			c->stats.preface_seen = true;
			d->synced = true;
			hpack_decoder_reset(d->hpack, false);
			d->state = DS_HEADER;
			if (c->dir[STREAM_DIR_RESPONSE].state == DS_START &&
			    !c->dir[STREAM_DIR_RESPONSE].hdr_len) {
				c->dir[STREAM_DIR_RESPONSE].synced = true;
				hpack_decoder_reset(c->dir[STREAM_DIR_RESPONSE].hpack, false);
				c->dir[STREAM_DIR_RESPONSE].state = DS_HEADER;
			}
			return i;
		}
		if (i == n)
			return i;
		if (d->preface_len) {
			/* a preface that went wrong */
			c->stats.parse_errors++;
			c->stats.late_join = true;
			d->state = DS_HUNT;
			return i;
		}
	}
	/* the first frame header */
	while (i < n && d->hdr_len < FRAME_HEADER_LEN)
		d->hdr[d->hdr_len++] = p[i++];
	if (d->hdr_len < FRAME_HEADER_LEN)
		return i;
	if (dir == STREAM_DIR_RESPONSE && d->hdr[3] == FT_SETTINGS && !(d->hdr[4] & FL_ACK) &&
	    header_plausible(d->hdr, false)) {
		d->synced = true; /* the server preface */
		hpack_decoder_reset(d->hpack, false);
	} else if (header_plausible(d->hdr, true)) {
		c->stats.late_join = true;
	} else {
		c->stats.parse_errors++;
		c->stats.late_join = true;
		d->state = DS_HUNT;
		d->hdr_len = 0;
		return i;
	}
	frame_begin(c, dir, d);
	return i;
}

static void feed_bytes(struct http2_conn *c, enum stream_dir dir, const uint8_t *p, size_t n)
{
	struct h2_dir *d = &c->dir[dir];
	bool chunk_start = true;

	while (n) {
		size_t k = 0;

		switch (d->state) {
		case DS_START:
			k = start_bytes(c, dir, d, p, n);
			break;
		case DS_HUNT:
			k = hunt(p, n, chunk_start);
			if (k < n) {
				d->state = DS_HEADER;
				d->hdr_len = 0;
				c->stats.late_join = true;
			}
			if (k)
				c->stats.parse_errors++;
			break;
		case DS_HEADER:
			while (k < n && d->hdr_len < FRAME_HEADER_LEN) {
				if (!d->hdr_len)
					d->frame_ts = c->chunk->ts_first_ns;
				d->hdr[d->hdr_len++] = p[k++];
			}
			if (d->hdr_len == FRAME_HEADER_LEN)
				frame_begin(c, dir, d);
			break;
		case DS_PAYLOAD:
			k = payload(c, dir, d, p, n);
			break;
		}
		p += k;
		n -= k;
		chunk_start = false;
	}
}

static void feed_missing(struct http2_conn *c, enum stream_dir dir, size_t m)
{
	struct h2_dir *d = &c->dir[dir];

	while (m) {
		switch (d->state) {
		case DS_PAYLOAD:
			m -= payload(c, dir, d, NULL, m);
			break;
		case DS_HUNT:
			m = 0;
			break;
		default: /* frame boundaries lost */
			if (d->state == DS_START)
				c->stats.late_join = true;
			lose_sync(c, d);
			m = 0;
			break;
		}
	}
}

int http2_conn_feed(struct http2_conn *c, enum stream_dir dir, const struct stream_chunk *chunk)
{
	uint64_t errors;

	if (!c || !chunk || (dir != STREAM_DIR_REQUEST && dir != STREAM_DIR_RESPONSE) ||
	    (!chunk->data && chunk->len))
		return -EINVAL;
	errors = c->stats.parse_errors;
	c->started = true;
	c->chunk = chunk;
	if (c->dir[dir].state == DS_START && !c->dir[dir].hdr_len && !c->dir[dir].preface_len)
		c->dir[dir].frame_ts = chunk->ts_first_ns;
	feed_bytes(c, dir, chunk->data, chunk->len);
	if (chunk->missing)
		feed_missing(c, dir, chunk->missing);
	c->chunk = NULL;
	return c->stats.parse_errors != errors ? -EBADMSG : 0;
}

static int by_seq(const void *a, const void *b)
{
	const struct h2_stream *x = *(struct h2_stream *const *)a;
	const struct h2_stream *y = *(struct h2_stream *const *)b;

	return x->ex.seq < y->ex.seq ? -1 : x->ex.seq > y->ex.seq;
}

void http2_conn_close(struct http2_conn *c, uint64_t ts_ns)
{
	http2_conn_close_how(c, ts_ns, L7_END_CLOSE);
}

bool http2_conn_pending(const struct http2_conn *c)
{
	return c && c->nstreams;
}

void http2_conn_close_how(struct http2_conn *c, uint64_t ts_ns, enum l7_end how)
{
	struct h2_stream **list;
	uint32_t n = 0;

	if (!c || !c->nstreams)
		return;
	if (how == L7_END_LOST) {
		/* data was lost: the open streams' answers may be what is missing */
		for (uint32_t i = 0; i < c->slot_cap;) {
			if (c->slots[i])
				stream_remove(c, c->slots[i]);
			else
				i++;
		}
		return;
	}
	for (uint32_t i = 0; i < c->slot_cap; i++)
		if (c->slots[i])
			c->slots[i]->ex.end_how = (uint8_t)how;
	list = malloc(c->nstreams * sizeof(*list));
	if (!list) {
		/* still report them, in table order */
		for (uint32_t i = 0; i < c->slot_cap;) {
			if (c->slots[i])
				stream_report(c, c->slots[i], HTTP2_END_CLOSE, 0, ts_ns);
			else
				i++;
		}
		return;
	}
	for (uint32_t i = 0; i < c->slot_cap; i++)
		if (c->slots[i])
			list[n++] = c->slots[i];
	qsort(list, n, sizeof(*list), by_seq);
	for (uint32_t i = 0; i < n; i++)
		stream_report(c, list[i], HTTP2_END_CLOSE, 0, ts_ns);
	free(list);
}

struct http2_conn *http2_conn__new(http2_exchange_fn fn, void *ctx)
{
	struct http2_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fn = fn;
	c->ctx = ctx;
	/* until told otherwise the encoders may use any size we allow: a passive
	 * observer may see a size update before the SETTINGS allowing it */
	for (int i = 0; i < 2; i++) {
		c->dir[i].hpack = hpack_decoder__new(HPACK_TABLE_SIZE_LIMIT, true);
		if (!c->dir[i].hpack)
			goto cleanup;
	}
	return c;
cleanup:
	http2_conn__free(c);
	return NULL;
}

void http2_conn__free(struct http2_conn *c)
{
	if (!c)
		return;
	for (uint32_t i = 0; i < c->slot_cap; i++)
		free(c->slots[i]);
	free(c->slots);
	for (int i = 0; i < 2; i++) {
		free(c->dir[i].block);
		hpack_decoder__free(c->dir[i].hpack);
	}
	free(c);
}

void http2_conn_set_request_fn(struct http2_conn *c, http2_request_fn fn)
{
	c->req_fn = fn;
}

static int b64url_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '-' || ch == '+')
		return 62;
	if (ch == '_' || ch == '/')
		return 63;
	return -1;
}

/* HTTP2-Settings: a base64url SETTINGS payload from the client. */
static void upgrade_settings(struct http2_conn *c, const char *s, size_t n)
{
	uint8_t entry[6];
	uint32_t acc = 0;
	unsigned bits = 0, got = 0;

	for (size_t i = 0; i < n; i++) {
		int v = b64url_value(s[i]);

		if (v < 0)
			break; /* '=' padding or garbage ends it */
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits < 8)
			continue;
		bits -= 8;
		entry[got++] = (uint8_t)(acc >> bits);
		if (got < 6)
			continue;
		got = 0;
		if (((uint32_t)entry[0] << 8 | entry[1]) == SETTINGS_HEADER_TABLE_SIZE)
			hpack_decoder_set_max_table_size(c->dir[STREAM_DIR_RESPONSE].hpack,
			                                 be32(entry + 2));
	}
}

int http2_conn__start_upgraded(struct http2_conn *c, const struct http2_exchange *req,
                               const char *settings, size_t settings_len)
{
	struct h2_dir *resp;
	struct h2_stream *s;

	if (!c || !req || c->started)
		return -EINVAL;
	s = stream_new(c, 1);
	if (!s)
		return -ENOMEM;
	s->ex = *req;
	s->ex.stream_id = 1;
	s->ex.seq = 0;
	s->ex.status = 0;
	s->ex.grpc_status = -1;
	s->ex.grpc_message[0] = '\0';
	s->ex.trailers_only = false;
	s->ex.request_complete = true;
	s->ex.response_body_size = 0;
	s->ex.resp_start_ns = 0;
	s->ex.resp_end_ns = 0;
	resp = &c->dir[STREAM_DIR_RESPONSE];
	resp->state = DS_HEADER;
	resp->synced = true;
	hpack_decoder_reset(resp->hpack, false);
	if (settings)
		upgrade_settings(c, settings, settings_len);
	c->stats.preface_seen = true;
	c->started = true;
	return 0;
}

void http2_conn_stats(const struct http2_conn *c, struct http2_stats *out)
{
	*out = c->stats;
}

size_t http2_conn_memory(const struct http2_conn *c)
{
	size_t m = sizeof(*c) + (size_t)c->slot_cap * sizeof(*c->slots) +
	           (size_t)c->nstreams * sizeof(struct h2_stream);

	for (int i = 0; i < 2; i++)
		m += c->dir[i].block_cap + hpack_decoder_memory(c->dir[i].hpack);
	return m;
}

enum http2_detect_result http2_detect(const uint8_t *data, size_t len)
{
	size_t n = len < PREFACE_LEN ? len : PREFACE_LEN;

	if (!data || !len)
		return HTTP2_DETECT_MORE;
	if (!memcmp(data, PREFACE, n))
		return len < PREFACE_LEN ? HTTP2_DETECT_MORE : HTTP2_DETECT_PREFACE;
	if (len < FRAME_HEADER_LEN)
		return len > 3 && data[3] > FT_CONTINUATION ? HTTP2_DETECT_NO : HTTP2_DETECT_MORE;
	return chain_plausible(data, len, true) ? HTTP2_DETECT_FRAMES : HTTP2_DETECT_NO;
}
