/* otlp_logs.h — log records → an OTLP ExportLogsServiceRequest (protobuf,
 * proto/otlp.proto): one ResourceLogs per distinct resource (in order of
 * first appearance), each with one ScopeLogs named OTLP_SCOPE_NAME. */
#ifndef PERISCOPE_OTLP_LOGS_H
#define PERISCOPE_OTLP_LOGS_H

#include <stddef.h>
#include <stdint.h>

struct log_record;

/* *out is malloc()ed (the caller frees). Returns 0 or -ENOMEM. */
int otlp_logs_encode(const struct log_record *const *recs, size_t n, uint8_t **out,
                     size_t *out_len);

#endif
