/* caps.h — which Linux capabilities this process holds (its effective set),
 * to name what is missing when the kernel says EPERM / EACCES. */
#ifndef PERISCOPE_UTIL_CAPS_H
#define PERISCOPE_UTIL_CAPS_H

#include <stdbool.h>
#include <stddef.h>

/* Whether cap (CAP_BPF, ...) is in the effective set; true when unknown. */
bool caps_have(int cap);

/* "CAP_BPF, CAP_PERFMON": those of caps[0..n) missing from the effective
 * set, into out ("" when none). Returns how many are missing. */
size_t caps_missing(const int *caps, size_t n, char *out, size_t cap);

#endif
