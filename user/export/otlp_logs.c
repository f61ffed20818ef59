/* otlp_logs.c — ExportLogsServiceRequest encoding (see otlp_logs.h). The
 * records' strings are valid UTF-8 already (log_record.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.pb-c.h"

#include "export/otlp_encode.h"
#include "export/otlp_logs.h"
#include "telemetry/log_record.h"
#include "telemetry/resource.h"

typedef Periscope__Otlp__KeyValue KeyValue;
typedef Periscope__Otlp__AnyValue AnyValue;

/* Everything one request points to, freed at once. */
struct batch_mem {
	void **blocks;
	size_t n, cap;
	int failed;
};

static void *take(struct batch_mem *m, size_t size)
{
	void *p;

	if (m->failed)
		return NULL;
	if (m->n == m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		void **b = realloc(m->blocks, cap * sizeof(*b));

		if (!b) {
			m->failed = 1;
			return NULL;
		}
		m->blocks = b;
		m->cap = cap;
	}
	p = calloc(1, size ? size : 1);
	if (!p) {
		m->failed = 1;
		return NULL;
	}
	m->blocks[m->n++] = p;
	return p;
}

static void release(struct batch_mem *m)
{
	for (size_t i = 0; i < m->n; i++)
		free(m->blocks[i]);
	free(m->blocks);
}

static Periscope__Otlp__Resource *build_resource(struct batch_mem *m, const struct resource *r)
{
	Periscope__Otlp__Resource *res = take(m, sizeof(*res));
	size_t n = r ? r->n_attrs : 0, used = 0;
	KeyValue *kvs = take(m, n * sizeof(*kvs));
	AnyValue *vals = take(m, n * sizeof(*vals));
	KeyValue **kvp = take(m, n * sizeof(*kvp));

	if (!res || !kvs || !vals || !kvp)
		return NULL;
	periscope__otlp__resource__init(res);
	for (size_t i = 0; i < n; i++) {
		const struct resource_attr *ra = &r->attrs[i];

		if (!ra->key)
			continue;
		periscope__otlp__key_value__init(&kvs[used]);
		periscope__otlp__any_value__init(&vals[used]);
		kvs[used].key = ra->key;
		kvs[used].value = &vals[used];
		if (ra->str) {
			vals[used].value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
			vals[used].string_value = ra->str;
		} else {
			vals[used].value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_INT_VALUE;
			vals[used].int_value = ra->num;
		}
		kvp[used] = &kvs[used];
		used++;
	}
	res->n_attributes = used;
	res->attributes = kvp;
	return res;
}

static Periscope__Otlp__LogRecord *build_record(struct batch_mem *m, const struct log_record *r)
{
	Periscope__Otlp__LogRecord *lr = take(m, sizeof(*lr));
	AnyValue *body = take(m, sizeof(*body));
	KeyValue *kvs = take(m, r->n_attrs * sizeof(*kvs));
	AnyValue *vals = take(m, r->n_attrs * sizeof(*vals));
	KeyValue **kvp = take(m, r->n_attrs * sizeof(*kvp));

	if (!lr || !body || !kvs || !vals || !kvp)
		return NULL;
	periscope__otlp__log_record__init(lr);
	periscope__otlp__any_value__init(body);
	lr->time_unix_nano = r->time_unix_ns;
	lr->observed_time_unix_nano = r->observed_unix_ns;
	lr->severity_number = (Periscope__Otlp__SeverityNumber)r->severity;
	lr->severity_text = (char *)r->severity_text;
	body->value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
	body->string_value = (char *)(r->body ? r->body : "");
	lr->body = body;
	if (r->has_trace) {
		lr->trace_id.data = (uint8_t *)r->trace_id;
		lr->trace_id.len = 16;
		lr->span_id.data = (uint8_t *)r->span_id;
		lr->span_id.len = 8;
		lr->flags = r->sampled ? 1 : 0;
	}
	for (size_t i = 0; i < r->n_attrs; i++) {
		const struct log_attr *a = &r->attrs[i];

		periscope__otlp__key_value__init(&kvs[i]);
		periscope__otlp__any_value__init(&vals[i]);
		kvs[i].key = (char *)a->key;
		kvs[i].value = &vals[i];
		switch (a->type) {
		case LOG_ATTR_STR:
			vals[i].value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_STRING_VALUE;
			vals[i].string_value = (char *)(a->str ? a->str : "");
			break;
		case LOG_ATTR_INT:
			vals[i].value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_INT_VALUE;
			vals[i].int_value = a->i;
			break;
		case LOG_ATTR_BOOL:
			vals[i].value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_BOOL_VALUE;
			vals[i].bool_value = a->i != 0;
			break;
		default:
			vals[i].value_case = PERISCOPE__OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE;
			vals[i].double_value = a->d;
			break;
		}
		kvp[i] = &kvs[i];
	}
	lr->n_attributes = r->n_attrs;
	lr->attributes = kvp;
	return lr;
}

int otlp_logs_encode(const struct log_record *const *recs, size_t n, uint8_t **out, size_t *out_len)
{
	Periscope__Otlp__ExportLogsServiceRequest req =
	    PERISCOPE__OTLP__EXPORT_LOGS_SERVICE_REQUEST__INIT;
	Periscope__Otlp__InstrumentationScope scope = PERISCOPE__OTLP__INSTRUMENTATION_SCOPE__INIT;
	struct batch_mem m = {0};
	Periscope__Otlp__ResourceLogs **rls = take(&m, n * sizeof(*rls));
	const struct resource **owners = take(&m, n * sizeof(*owners));
	size_t *counts = take(&m, n * sizeof(*counts));
	size_t *group_of = take(&m, n * sizeof(*group_of));
	size_t groups = 0;
	int rc = -ENOMEM;

	*out = NULL;
	*out_len = 0;
	if (m.failed)
		goto cleanup;
	scope.name = (char *)OTLP_SCOPE_NAME;
	scope.version = (char *)otlp_scope_version();
	/* group by resource, in order of first appearance */
	for (size_t i = 0; i < n; i++) {
		size_t g = 0;

		while (g < groups && owners[g] != recs[i]->resource)
			g++;
		if (g == groups)
			owners[groups++] = recs[i]->resource;
		group_of[i] = g;
		counts[g]++;
	}
	for (size_t g = 0; g < groups; g++) {
		Periscope__Otlp__ResourceLogs *rl = take(&m, sizeof(*rl));
		Periscope__Otlp__ScopeLogs *sl = take(&m, sizeof(*sl));
		Periscope__Otlp__ScopeLogs **slp = take(&m, sizeof(*slp));
		Periscope__Otlp__LogRecord **lrs = take(&m, counts[g] * sizeof(*lrs));
		size_t k = 0;

		if (m.failed)
			goto cleanup;
		periscope__otlp__resource_logs__init(rl);
		periscope__otlp__scope_logs__init(sl);
		rl->resource = build_resource(&m, owners[g]);
		if (!rl->resource)
			goto cleanup;
		for (size_t i = 0; i < n; i++) {
			if (group_of[i] != g)
				continue;
			lrs[k] = build_record(&m, recs[i]);
			if (!lrs[k])
				goto cleanup;
			k++;
		}
		sl->scope = &scope;
		sl->n_log_records = k;
		sl->log_records = lrs;
		slp[0] = sl;
		rl->n_scope_logs = 1;
		rl->scope_logs = slp;
		rls[g] = rl;
	}
	req.n_resource_logs = groups;
	req.resource_logs = rls;
	*out_len = periscope__otlp__export_logs_service_request__get_packed_size(&req);
	*out = malloc(*out_len ? *out_len : 1);
	if (!*out)
		goto cleanup;
	periscope__otlp__export_logs_service_request__pack(&req, *out);
	rc = 0;
cleanup:
	release(&m);
	if (rc)
		*out_len = 0;
	return rc;
}
