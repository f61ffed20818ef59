/* proc_info.h — the OTel resource of each observed process, read once from
 * /proc and cached by (pid, process start time):
 *   service.name            the process's OTEL_SERVICE_NAME, else service.name
 *                           from its OTEL_RESOURCE_ATTRIBUTES, else its
 *                           systemd service (/proc/PID/cgroup), else the
 *                           script or module its interpreter runs
 *                           (/proc/PID/cmdline and cwd; see service_name.h),
 *                           else the executable's basename as is ("nginx",
 *                           "python3.11")
 *   process.pid, process.executable.name, process.executable.path
 *   host.name, telemetry.sdk.name="periscope", telemetry.sdk.version,
 *   telemetry.sdk.language  (python/nodejs/java/ruby/php, when the executable
 *                           name makes it obvious)
 *   then the process's own OTEL_RESOURCE_ATTRIBUTES (percent-decoded), then
 *   the agent-wide attributes (not service.*, process.* or telemetry.sdk.*).
 * Command lines are read only to find an interpreter's script or module
 * name; they hold secrets, so nothing else of them is kept (no
 * process.command_args). When the process is gone,
 * the kernel task name (comm) stands in for the executable name. */
#ifndef PERISCOPE_PROC_INFO_H
#define PERISCOPE_PROC_INFO_H

#include <stddef.h>
#include <stdint.h>

#ifndef PERISCOPE_VERSION
#define PERISCOPE_VERSION "0.1.0"
#endif

#define PROC_INFO_MAX_ENTRIES 65536

struct resource;
struct proc_info_cache;

/* agent_resource_attrs: "k=v,k2=v2" (OTEL_RESOURCE_ATTRIBUTES syntax) added
 * to every resource; may be NULL. NULL on ENOMEM. */
struct proc_info_cache *proc_info_cache__new(const char *agent_resource_attrs);
/* The same, reading proc_root instead of "/proc" and keeping at most
 * max_entries processes (0: PROC_INFO_MAX_ENTRIES); for tests. */
struct proc_info_cache *proc_info_cache__new_at(const char *proc_root,
                                                const char *agent_resource_attrs,
                                                size_t max_entries);
void proc_info_cache__free(struct proc_info_cache *c); /* accepts NULL */

/* The resource of pid (built on first use). proc_start_ns tells a reused pid
 * from the old process (0: any). comm_fallback (up to 16 bytes, need not be
 * NUL-terminated; may be NULL) names the process when /proc no longer has
 * it. The pointer is borrowed: valid until the next proc_info_get or
 * proc_info_forget for pid (a resource the hook left incomplete is rebuilt), or
 * until the entry is evicted as the oldest of more than max_entries; take
 * resource_ref to keep it longer. NULL only when out of memory. */
struct resource *proc_info_get(struct proc_info_cache *c, uint32_t pid, uint64_t proc_start_ns,
                               const char *comm_fallback);
/* Drops pid's entry (the process exited). */
void proc_info_forget(struct proc_info_cache *c, uint32_t pid);
/* pid started a program (the kernel's exec event: the executable's file name
 * and its file as the kernel names it, inode and kernel dev_t). Nothing is
 * read for an executable noted before; a new one's path (and whether Go
 * built it) is read once, now. When the resource is built later, after the
 * process is gone, its executable's name, path and language come from here.
 * Kept for the last 4096 pids (by pid) and 256 executables (by inode). */
void proc_info_note_exec(struct proc_info_cache *c, uint32_t pid, uint64_t proc_start_ns,
                         const char *exe_name, uint32_t exe_dev, uint64_t exe_ino);
/* Number of cached processes. */
size_t proc_info_count(const struct proc_info_cache *c);

/* A hook that adds to each resource as it is built (container and pod
 * metadata: telemetry/container_meta.h). service_name_from_env tells whether
 * service.name came from the process's own OTEL_* environment. Returns 0 when
 * done, 1 when something may still become known (the resource is then built
 * again on a later proc_info_get, with backoff, for about a minute at most),
 * or a negative errno (the resource is kept as it is). */
typedef int (*proc_info_hook_fn)(void *ctx, uint32_t pid, struct resource *r,
                                 int service_name_from_env);
void proc_info_set_hook(struct proc_info_cache *c, proc_info_hook_fn fn, void *ctx);

/* Parses OTEL_RESOURCE_ATTRIBUTES syntax ("k=v,k2=v%20x"): calls fn with
 * each percent-decoded, whitespace-trimmed pair (entries without '=' or with
 * an empty key are skipped). Stops and returns fn's value when it is
 * non-zero; returns 0 otherwise, -ENOMEM when out of memory. */
int proc_info_parse_attrs(const char *list, size_t len,
                          int (*fn)(void *ctx, const char *key, const char *value), void *ctx);

#endif
