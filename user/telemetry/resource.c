/* resource.c — the OTel resource of one observed process: a small list of
 * key/value attributes (service.name first), built once, then shared by
 * reference count between the agent thread and the exporter thread. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/resource.h"

struct resource *resource__new(uint32_t pid, uint64_t proc_start_ns)
{
	struct resource *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->refcount = 1;
	r->pid = pid;
	r->proc_start_ns = proc_start_ns;
	return r;
}

static struct resource_attr *find_attr(struct resource *r, const char *key)
{
	for (size_t i = 0; i < r->n_attrs; i++)
		if (!strcmp(r->attrs[i].key, key))
			return &r->attrs[i];
	return NULL;
}

/* A new slot for key: at the front for service.name, else at the end. */
static struct resource_attr *insert_attr(struct resource *r, const char *key)
{
	struct resource_attr *grown;
	struct resource_attr *slot;
	char *key_copy;

	key_copy = strdup(key);
	if (!key_copy)
		return NULL;
	grown = realloc(r->attrs, (r->n_attrs + 1) * sizeof(*grown));
	if (!grown) {
		free(key_copy);
		return NULL;
	}
	r->attrs = grown;
	if (!strcmp(key, "service.name")) {
		memmove(&r->attrs[1], &r->attrs[0], r->n_attrs * sizeof(*grown));
		slot = &r->attrs[0];
	} else {
		slot = &r->attrs[r->n_attrs];
	}
	r->n_attrs++;
	memset(slot, 0, sizeof(*slot));
	slot->key = key_copy;
	return slot;
}

/* Adding a key that already exists replaces its value. */
int resource_add_str(struct resource *r, const char *key, const char *value)
{
	struct resource_attr *a;
	char *value_copy;

	if (!r || !key || !value)
		return -EINVAL;
	value_copy = strdup(value);
	if (!value_copy)
		return -ENOMEM;
	a = find_attr(r, key);
	if (!a)
		a = insert_attr(r, key);
	if (!a) {
		free(value_copy);
		return -ENOMEM;
	}
	free(a->str);
	a->str = value_copy;
	a->num = 0;
	return 0;
}

int resource_add_int(struct resource *r, const char *key, int64_t value)
{
	struct resource_attr *a;

	if (!r || !key)
		return -EINVAL;
	a = find_attr(r, key);
	if (!a)
		a = insert_attr(r, key);
	if (!a)
		return -ENOMEM;
	free(a->str);
	a->str = NULL;
	a->num = value;
	return 0;
}

const char *resource_get_str(const struct resource *r, const char *key)
{
	if (!r || !key)
		return NULL;
	for (size_t i = 0; i < r->n_attrs; i++)
		if (!strcmp(r->attrs[i].key, key))
			return r->attrs[i].str;
	return NULL;
}

struct resource *resource_ref(struct resource *r)
{
	if (r)
		__atomic_add_fetch(&r->refcount, 1, __ATOMIC_RELAXED);
	return r;
}

void resource_unref(struct resource *r)
{
	if (!r)
		return;
	if (__atomic_sub_fetch(&r->refcount, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (size_t i = 0; i < r->n_attrs; i++) {
		free(r->attrs[i].key);
		free(r->attrs[i].str);
	}
	free(r->attrs);
	free(r);
}
