/* otlp_encode.h — turns finished spans into an OTLP ExportTraceServiceRequest
 * (protobuf, proto/otlp.proto) and gzips request bodies. */
#ifndef PERISCOPE_OTLP_ENCODE_H
#define PERISCOPE_OTLP_ENCODE_H

#include <stddef.h>
#include <stdint.h>

struct span;

/* Instrumentation scope name put on every ScopeSpans / ScopeMetrics. */
#define OTLP_SCOPE_NAME "periscope"

/* Encodes n spans as one ExportTraceServiceRequest: one ResourceSpans per
 * distinct span->resource pointer (in order of first appearance), each with a
 * single ScopeSpans named OTLP_SCOPE_NAME. Strings that are not valid UTF-8
 * have their bad bytes replaced by '?'. On success *out is a malloc()ed
 * buffer the caller frees (non-NULL even when *out_len is 0) and 0 is
 * returned; otherwise -EINVAL (a span with an unterminated name / status
 * message / trace state) or -ENOMEM, and *out is NULL. */
int otlp_encode_traces(const struct span *const *spans, size_t n, uint8_t **out, size_t *out_len);

/* gzip (RFC 1952 framing) of in[0..n). *out is malloc()ed, caller frees.
 * Returns 0, -ENOMEM or -EIO. */
int otlp_gzip(const uint8_t *in, size_t n, uint8_t **out, size_t *out_len);

/* Inverse of otlp_gzip, for tests and receivers: refuses (-EFBIG) to produce
 * more than max_out bytes; -EINVAL on a corrupt or truncated stream. */
int otlp_gunzip(const uint8_t *in, size_t n, size_t max_out, uint8_t **out, size_t *out_len);

/* The scope version string (the agent's version). */
const char *otlp_scope_version(void);

#endif
