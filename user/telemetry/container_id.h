/* container_id.h — a process's container identity from its cgroup path
 * (/proc/PID/cgroup), by a table of prefix/suffix rules on path components:
 *   kubelet cgroupfs driver  /kubepods[/besteffort|/burstable]/pod<uid>/<id>
 *   kubelet systemd driver   /kubepods.slice/kubepods-<qos>.slice/
 *                            kubepods-<qos>-pod<uid_with_underscores>.slice/
 *                            cri-containerd-<id>.scope | crio-<id>.scope |
 *                            docker-<id>.scope
 *   the same unconverted     kubepods-<qos>-pod<uid>.slice:cri-containerd:<id>
 *   Docker                   /docker/<id>, /system.slice/docker-<id>.scope
 *   podman                   libpod-<id>.scope (libpod-conmon-…: the monitor)
 *   CRI-O                    crio-<id>.scope (crio-conmon-…: the monitor)
 *   plain containerd         /<namespace>/<id> (/k8s.io/<id>, /default/<id>)
 *   systemd services         /system.slice/orders.service → unit "orders"
 * <id> is always 64 hex digits. The deepest component that names a container
 * wins (docker in docker; sub-cgroups a container makes below its own, as in
 * libpod-<id>.scope/container). ".." components (a path seen from inside a
 * cgroup namespace) are skipped. Pure functions: no allocation, no state. */
#ifndef PERISCOPE_TELEMETRY_CONTAINER_ID_H
#define PERISCOPE_TELEMETRY_CONTAINER_ID_H

#include <stdbool.h>
#include <stddef.h>

#define CONTAINER_ID_LEN     64
#define CONTAINER_POD_UID    36    /* longest pod uid kept (dashed UUID) */
#define CONTAINER_UNIT_LEN   255   /* longest systemd unit name kept */
#define CONTAINER_NS_LEN     63    /* longest containerd namespace kept */
#define CONTAINER_CGROUP_MAX 65536 /* bytes of a /proc/PID/cgroup file read */

enum container_runtime {
	CONTAINER_RUNTIME_NONE = 0, /* not in a container */
	CONTAINER_RUNTIME_UNKNOWN,  /* a container; the path does not say whose */
	CONTAINER_RUNTIME_CONTAINERD,
	CONTAINER_RUNTIME_CRIO,
	CONTAINER_RUNTIME_DOCKER,
	CONTAINER_RUNTIME_PODMAN,
};

enum pod_qos {
	POD_QOS_NONE = 0, /* not a kubelet pod cgroup */
	POD_QOS_GUARANTEED,
	POD_QOS_BURSTABLE,
	POD_QOS_BESTEFFORT,
};

struct container_identity {
	char id[CONTAINER_ID_LEN + 1];            /* container.id, lowercase hex, or "" */
	char pod_uid[CONTAINER_POD_UID + 1];      /* k8s.pod.uid (dashes restored), or "" */
	char unit[CONTAINER_UNIT_LEN + 1];        /* systemd service, no ".service"; only
	                                             outside containers */
	char ctr_namespace[CONTAINER_NS_LEN + 1]; /* plain containerd's namespace, or "" */
	enum container_runtime runtime;
	enum pod_qos qos;
	bool monitor;  /* a runtime's monitor (conmon): id and pod_uid left empty */
	bool relative; /* the path had ".." components (seen from a cgroup namespace) */
};

/* Fills *out from one cgroup path (the third field of a /proc/PID/cgroup
 * line; need not be NUL-terminated). Returns 1 when it names a container, 0
 * when not (out may still carry a unit, a pod uid or monitor), -EINVAL for
 * NULL arguments, -E2BIG for a path over 4096 bytes (out is then empty). */
int container_id_parse_path(const char *path, size_t len, struct container_identity *out);

/* Fills *out from a whole /proc/PID/cgroup content: "0::/path" (v2) and
 * "N:controllers:/path" (v1) lines. A line naming a container wins over one
 * that does not; among equals the v2 line, then name=systemd, then memory,
 * then the first. Malformed lines are skipped. Returns as
 * container_id_parse_path; -E2BIG when len exceeds CONTAINER_CGROUP_MAX. */
int container_id_parse_proc(const char *content, size_t len, struct container_identity *out);

/* Reads and parses a cgroup file such as "/proc/1234/cgroup" (at most
 * CONTAINER_CGROUP_MAX bytes). Returns as container_id_parse_proc, or the
 * negative errno of open/read. */
int container_id_read(const char *cgroup_file, struct container_identity *out);

/* "containerd", "cri-o", "docker", "podman"; "" for NONE and UNKNOWN. */
const char *container_runtime_name(enum container_runtime rt);
/* "Guaranteed", "Burstable", "BestEffort" (the pod's status.qosClass); "". */
const char *pod_qos_name(enum pod_qos qos);

#endif
