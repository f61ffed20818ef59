/* resource.h — the OTel resource of one observed process (service.name,
 * process.pid, ...). Immutable once built, reference counted so spans on the
 * exporter thread can keep it after the process is gone. */
#ifndef PERISCOPE_RESOURCE_H
#define PERISCOPE_RESOURCE_H

#include <stddef.h>
#include <stdint.h>

struct resource_attr {
	char *key;
	char *str; /* NULL for an integer attribute */
	int64_t num;
};

struct resource {
	int refcount; /* atomic */
	uint32_t pid;
	uint64_t proc_start_ns;
	size_t n_attrs;
	struct resource_attr *attrs; /* service.name first */
};

/* Empty resource with one reference; NULL on ENOMEM. */
struct resource *resource__new(uint32_t pid, uint64_t proc_start_ns);
/* Copies key and value. Returns 0 or -ENOMEM. Only before the resource is shared. */
int resource_add_str(struct resource *r, const char *key, const char *value);
int resource_add_int(struct resource *r, const char *key, int64_t value);
const char *resource_get_str(const struct resource *r, const char *key);
struct resource *resource_ref(struct resource *r);
/* Drops one reference; frees on the last. Accepts NULL. */
void resource_unref(struct resource *r);

#endif
