/* stream.h — how captured socket bytes are handed to protocol parsers.
 * A parser sees one connection as two byte streams (requests one way,
 * responses the other) delivered as chunks, each the capture of one syscall. */
#ifndef PERISCOPE_STREAM_H
#define PERISCOPE_STREAM_H

#include <stddef.h>
#include <stdint.h>

enum stream_dir {
	STREAM_DIR_REQUEST = 0,  /* client → server bytes */
	STREAM_DIR_RESPONSE = 1, /* server → client bytes */
};

struct stream_chunk {
	const uint8_t *data;  /* captured bytes */
	size_t len;           /* how many were captured */
	size_t missing;       /* bytes moved after `data` that were not captured */
	uint64_t ts_first_ns; /* when the first byte of the chunk moved (monotonic) */
	uint64_t ts_last_ns;  /* when the last byte moved */
};

#endif
