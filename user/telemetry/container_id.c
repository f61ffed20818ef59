/* container_id.c — container identity from cgroup paths: the path is walked
 * from its deepest component up, and each component is tried against small
 * tables of prefix/suffix rules (see container_id.h for the layouts). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "telemetry/container_id.h"

#define PATH_MAX_LEN 4096

/* A component naming a container: <prefix><64 hex><suffix>. */
struct id_rule {
	const char *prefix;
	const char *suffix;
	enum container_runtime runtime;
	bool monitor; /* the runtime's per-container monitor, not the container */
};

static const struct id_rule id_rules[] = {
    {"cri-containerd-", ".scope", CONTAINER_RUNTIME_CONTAINERD, false},
    {"crio-conmon-", ".scope", CONTAINER_RUNTIME_CRIO, true},
    {"crio-", ".scope", CONTAINER_RUNTIME_CRIO, false},
    {"crio-", "", CONTAINER_RUNTIME_CRIO, false}, /* CRI-O, cgroupfs driver */
    {"docker-", ".scope", CONTAINER_RUNTIME_DOCKER, false},
    {"libpod-conmon-", ".scope", CONTAINER_RUNTIME_PODMAN, true},
    {"libpod-", ".scope", CONTAINER_RUNTIME_PODMAN, false},
    {"libpod-", "", CONTAINER_RUNTIME_PODMAN, false}, /* podman, cgroupfs manager */
    {"containerd-", ".scope", CONTAINER_RUNTIME_CONTAINERD, false},
    {"", "", CONTAINER_RUNTIME_UNKNOWN, false}, /* bare id: see parent_rules */
};

/* The parent component of a bare id that tells its runtime. */
struct parent_rule {
	const char *name;
	enum container_runtime runtime;
};

static const struct parent_rule parent_rules[] = {
    {"docker", CONTAINER_RUNTIME_DOCKER},
    {"moby", CONTAINER_RUNTIME_DOCKER},
};

/* A pod's QoS level component (cgroupfs driver) or the part of a systemd pod
 * slice's name before "-pod". */
struct qos_rule {
	const char *suffix;
	enum pod_qos qos;
};

static const struct qos_rule qos_rules[] = {
    {"besteffort", POD_QOS_BESTEFFORT},
    {"burstable", POD_QOS_BURSTABLE},
};

/* Suffixes that a containerd namespace name never has. */
static const char *const not_namespace[] = {".slice", ".scope", ".service", ".mount"};

struct comp {
	const char *s;
	size_t n;
};

static bool has_prefix(struct comp c, const char *p)
{
	size_t n = strlen(p);
	return c.n >= n && memcmp(c.s, p, n) == 0;
}

static bool has_suffix(struct comp c, const char *p)
{
	size_t n = strlen(p);
	return c.n >= n && memcmp(c.s + c.n - n, p, n) == 0;
}

static bool equals(struct comp c, const char *p)
{
	return c.n == strlen(p) && memcmp(c.s, p, c.n) == 0;
}

static bool is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static char lower(char ch)
{
	return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
}

/* The component before the one that starts at pos (skipping empty ones);
 * false at the start of the path. */
static bool prev_comp(const char *path, size_t pos, struct comp *out)
{
	size_t end = pos;
	while (end > 0 && path[end - 1] == '/')
		end--;
	if (end == 0)
		return false;
	size_t start = end;
	while (start > 0 && path[start - 1] != '/')
		start--;
	out->s = path + start;
	out->n = end - start;
	return true;
}

/* Copies a 64-hex id in lowercase; false if s is not one. */
static bool take_id(const char *s, size_t n, char *dst)
{
	if (n != CONTAINER_ID_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_hex(s[i]))
			return false;
	for (size_t i = 0; i < n; i++)
		dst[i] = lower(s[i]);
	dst[n] = '\0';
	return true;
}

/* A pod uid: a dashed UUID (underscores stand for dashes in systemd slice
 * names) or 32 hex digits (static pods, whose uid is a hash). */
static bool take_pod_uid(const char *s, size_t n, char *dst)
{
	if (n == 36) {
		for (size_t i = 0; i < n; i++) {
			bool dash = i == 8 || i == 13 || i == 18 || i == 23;
			if (dash ? (s[i] != '-' && s[i] != '_') : !is_hex(s[i]))
				return false;
		}
	} else if (n == 32) {
		for (size_t i = 0; i < n; i++)
			if (!is_hex(s[i]))
				return false;
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++)
		dst[i] = s[i] == '_' ? '-' : lower(s[i]);
	dst[n] = '\0';
	return true;
}

static bool is_namespace_name(struct comp c)
{
	if (c.n == 0 || c.n > CONTAINER_NS_LEN)
		return false;
	for (size_t i = 0; i < c.n; i++) {
		char ch = c.s[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		          (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
		if (!ok)
			return false;
	}
	for (size_t i = 0; i < sizeof(not_namespace) / sizeof(not_namespace[0]); i++)
		if (has_suffix(c, not_namespace[i]))
			return false;
	return true;
}

/* Tries the id rules on one component; on a match fills id, runtime and
 * monitor and returns the rule, else NULL. */
static const struct id_rule *match_id(struct comp c, struct container_identity *out)
{
	for (size_t i = 0; i < sizeof(id_rules) / sizeof(id_rules[0]); i++) {
		const struct id_rule *r = &id_rules[i];
		size_t pn = strlen(r->prefix), sn = strlen(r->suffix);
		if (c.n != pn + CONTAINER_ID_LEN + sn || !has_prefix(c, r->prefix) ||
		    !has_suffix(c, r->suffix))
			continue;
		if (!take_id(c.s + pn, CONTAINER_ID_LEN, out->id))
			continue;
		out->runtime = r->runtime;
		out->monitor = r->monitor;
		return r;
	}
	return NULL;
}

/* The unconverted systemd form "<pod slice>:<prefix>:<id>" (a cgroup parent
 * written for the systemd driver but used as a path): the middle field is an
 * id rule's prefix without its '-'. Returns the pod slice part in *slice. */
static bool match_colon_form(struct comp c, struct container_identity *out, struct comp *slice)
{
	const char *first = memchr(c.s, ':', c.n);
	if (!first)
		return false;
	const char *mid = first + 1;
	const char *second = memchr(mid, ':', c.n - (size_t)(mid - c.s));
	if (!second)
		return false;
	struct comp prefix = {mid, (size_t)(second - mid)};
	const char *id = second + 1;
	size_t id_n = c.n - (size_t)(id - c.s);
	for (size_t i = 0; i < sizeof(id_rules) / sizeof(id_rules[0]); i++) {
		const struct id_rule *r = &id_rules[i];
		size_t pn = strlen(r->prefix);
		if (pn < 2 || strcmp(r->suffix, ".scope") != 0 || prefix.n != pn - 1 ||
		    memcmp(prefix.s, r->prefix, pn - 1) != 0)
			continue;
		if (!take_id(id, id_n, out->id))
			return false;
		out->runtime = r->runtime;
		out->monitor = r->monitor;
		slice->s = c.s;
		slice->n = (size_t)(first - c.s);
		return true;
	}
	return false;
}

/* A pod component: "pod<uid>" (cgroupfs; the QoS is the parent's name) or
 * "<...>-pod<uid_with_underscores>.slice" (systemd; the QoS is in the name). */
static bool match_pod(struct comp c, struct comp parent, bool has_parent,
                      struct container_identity *out)
{
	struct comp qos_part;
	if (has_prefix(c, "pod") && !has_suffix(c, ".slice")) {
		if (!take_pod_uid(c.s + 3, c.n - 3, out->pod_uid))
			return false;
		if (has_parent)
			qos_part = parent;
		else
			qos_part = (struct comp){"", 0};
	} else if (has_suffix(c, ".slice")) {
		size_t body = c.n - strlen(".slice");
		size_t at = body;
		while (at >= 4 && memcmp(c.s + at - 4, "-pod", 4) != 0)
			at--;
		if (at < 4)
			return false;
		if (!take_pod_uid(c.s + at, body - at, out->pod_uid))
			return false;
		qos_part = (struct comp){c.s, at - 4};
	} else {
		return false;
	}
	out->qos = POD_QOS_GUARANTEED;
	for (size_t i = 0; i < sizeof(qos_rules) / sizeof(qos_rules[0]); i++)
		if (has_suffix(qos_part, qos_rules[i].suffix))
			out->qos = qos_rules[i].qos;
	return true;
}

static bool match_unit(struct comp c, struct container_identity *out)
{
	size_t sn = strlen(".service");
	if (!has_suffix(c, ".service") || c.n == sn || c.n - sn > CONTAINER_UNIT_LEN)
		return false;
	memcpy(out->unit, c.s, c.n - sn);
	out->unit[c.n - sn] = '\0';
	return true;
}

static bool is_dots(struct comp c)
{
	return equals(c, ".") || equals(c, "..");
}

/* The runtime of a bare id, from the components above it. */
static void bare_id_runtime(struct comp parent, bool has_parent, bool parent_is_top,
                            struct container_identity *out)
{
	if (!has_parent || is_dots(parent))
		return;
	for (size_t i = 0; i < sizeof(parent_rules) / sizeof(parent_rules[0]); i++) {
		if (equals(parent, parent_rules[i].name)) {
			out->runtime = parent_rules[i].runtime;
			return;
		}
	}
	if (parent_is_top && is_namespace_name(parent) && !has_prefix(parent, "pod")) {
		out->runtime = CONTAINER_RUNTIME_CONTAINERD;
		memcpy(out->ctr_namespace, parent.s, parent.n);
		out->ctr_namespace[parent.n] = '\0';
	}
}

int container_id_parse_path(const char *path, size_t len, struct container_identity *out)
{
	int ret = 0;
	struct comp c, parent, slice;
	bool found = false, pod = false, have;
	size_t pos = len;

	if (!path || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (len > PATH_MAX_LEN) {
		ret = -E2BIG;
		goto cleanup;
	}
	/* A NUL ends the path early (the caller's length may include it). */
	const char *nul = memchr(path, '\0', len);
	if (nul)
		pos = len = (size_t)(nul - path);

	have = prev_comp(path, pos, &c);
	while (have) {
		pos = (size_t)(c.s - path);
		bool has_parent = prev_comp(path, pos, &parent);
		while (has_parent && equals(parent, ".")) /* "/./" is no level */
			has_parent = prev_comp(path, (size_t)(parent.s - path), &parent);
		if (is_dots(c)) {
			if (equals(c, ".."))
				out->relative = true;
		} else if (!found && !pod && match_colon_form(c, out, &slice)) {
			found = true;
			struct comp none = {"", 0};
			pod = match_pod(slice, none, false, out);
		} else if (!found && !pod && match_id(c, out)) {
			found = true;
			if (out->runtime == CONTAINER_RUNTIME_UNKNOWN) {
				struct comp above;
				bool top = has_parent &&
				           !prev_comp(path, (size_t)(parent.s - path), &above);
				bare_id_runtime(parent, has_parent, top, out);
			}
		} else if (!pod && match_pod(c, parent, has_parent, out)) {
			pod = true;
		} else if (!found && !pod && !out->unit[0]) {
			match_unit(c, out);
		}
		c = parent;
		have = has_parent;
	}
	if (found || pod)
		out->unit[0] = '\0';
	if (out->monitor) {
		out->id[0] = '\0';
		out->pod_uid[0] = '\0';
		out->qos = POD_QOS_NONE;
		found = false;
	}
	ret = found ? 1 : 0;
cleanup:
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

/* How much a /proc/PID/cgroup line is trusted, among lines equally useful. */
static int line_rank(const char *hier, size_t hier_n, const char *ctl, size_t ctl_n)
{
	if (hier_n == 1 && hier[0] == '0' && ctl_n == 0)
		return 3; /* cgroup v2 */
	size_t i = 0;
	int rank = 0;
	while (i < ctl_n) {
		size_t j = i;
		while (j < ctl_n && ctl[j] != ',')
			j++;
		struct comp name = {ctl + i, j - i};
		if (equals(name, "name=systemd") && rank < 2)
			rank = 2;
		else if (equals(name, "memory") && rank < 1)
			rank = 1;
		i = j + 1;
	}
	return rank;
}

int container_id_parse_proc(const char *content, size_t len, struct container_identity *out)
{
	int ret = 0, best = -1;
	struct container_identity line_id;
	size_t pos = 0;

	if (!content || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (len > CONTAINER_CGROUP_MAX) {
		ret = -E2BIG;
		goto cleanup;
	}
	while (pos < len) {
		const char *line = content + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		pos += n + 1;
		/* hierarchy-ID ':' controller-list ':' path (the path may hold ':'). */
		const char *c1 = memchr(line, ':', n);
		if (!c1 || c1 == line)
			continue;
		const char *c2 = memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - line));
		if (!c2)
			continue;
		bool digits = true;
		for (const char *p = line; p < c1; p++)
			if (*p < '0' || *p > '9')
				digits = false;
		if (!digits)
			continue;
		const char *path = c2 + 1;
		size_t path_n = n - (size_t)(path - line);
		int found = container_id_parse_path(path, path_n, &line_id);
		if (found < 0)
			continue;
		bool useful = line_id.unit[0] || line_id.pod_uid[0] || line_id.monitor;
		int score = found * 8 + (useful ? 4 : 0) +
		            line_rank(line, (size_t)(c1 - line), c1 + 1, (size_t)(c2 - c1 - 1));
		if (score > best) {
			best = score;
			*out = line_id;
		}
	}
	ret = out->id[0] ? 1 : 0;
cleanup:
	return ret;
}

int container_id_read(const char *cgroup_file, struct container_identity *out)
{
	int ret = 0, fd = -1;
	char *buf = NULL;
	size_t got = 0;

	if (!cgroup_file || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	buf = malloc(CONTAINER_CGROUP_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto cleanup;
	}
	fd = open(cgroup_file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		goto cleanup;
	}
	while (got <= CONTAINER_CGROUP_MAX) {
		ssize_t n = read(fd, buf + got, CONTAINER_CGROUP_MAX + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > CONTAINER_CGROUP_MAX) {
		ret = -E2BIG;
		goto cleanup;
	}
	ret = container_id_parse_proc(buf, got, out);
cleanup:
	if (fd >= 0)
		close(fd);
	free(buf);
	return ret;
}

const char *container_runtime_name(enum container_runtime rt)
{
	switch (rt) {
	case CONTAINER_RUNTIME_CONTAINERD:
		return "containerd";
	case CONTAINER_RUNTIME_CRIO:
		return "cri-o";
	case CONTAINER_RUNTIME_DOCKER:
		return "docker";
	case CONTAINER_RUNTIME_PODMAN:
		return "podman";
	default:
		return "";
	}
}

const char *pod_qos_name(enum pod_qos qos)
{
	switch (qos) {
	case POD_QOS_GUARANTEED:
		return "Guaranteed";
	case POD_QOS_BURSTABLE:
		return "Burstable";
	case POD_QOS_BESTEFFORT:
		return "BestEffort";
	default:
		return "";
	}
}
