/* service_name.h — a process's service.name as its owner called it, when the
 * process does not say (no OTEL_SERVICE_NAME): pure functions over what
 * /proc shows (proc_info.c reads it). The order proc_info applies:
 *   1. the systemd service the process runs in (its cgroup, parsed by
 *      container_id.c): "orders.service" → "orders", a template instance
 *      "app@2.service" → "app"; not the units that only start other
 *      programs (user@UID, cron, atd, ssh, getty, transient run-u*) — their
 *      processes fall through to the rules below;
 *   2. the script or module an interpreter runs (python*, pypy*, node, java):
 *        python3 app.py                → app
 *        python3 -m mypkg.server       → mypkg.server (the module as typed)
 *        [python3 /usr/bin/]uvicorn main:app, gunicorn shop.wsgi:application,
 *        hypercorn, daphne, granian, waitress-serve → the application's
 *          top-level package: main, shop (the rest names the framework's
 *          entry point); flask/celery: --app/-A; none given: the launcher
 *        node server.js                → server; .../app/index.js → app (an
 *          index file is named by its directory; src, dist, build, lib, out
 *          and bin directories are skipped; a relative path is completed
 *          with the process's working directory)
 *        node .../node_modules/npm/bin/npm-cli.js → npm (a package's tool)
 *        python3 pkg/__main__.py       → pkg (as index.js)
 *        java -jar orders-1.0.2.jar    → orders (the version is dropped)
 *        java -cp app.jar com.shop.OrdersApp → OrdersApp (the class)
 *      Code given inline (python -c, node -e/-p) names nothing;
 *   3. else the executable's name (proc_info's fallback).
 * The command line is read only for this: nothing but the derived name is
 * kept. A launcher such as npm start is named by its own command line; the
 * node process it starts has its own (node server.js → server). */
#ifndef PERISCOPE_TELEMETRY_SERVICE_NAME_H
#define PERISCOPE_TELEMETRY_SERVICE_NAME_H

#include <stdbool.h>
#include <stddef.h>

#define SERVICE_NAME_CMDLINE_MAX 8192 /* bytes of /proc/PID/cmdline looked at */
#define SERVICE_NAME_ARGS_MAX    128  /* arguments looked at */

/* The service a systemd unit name (without ".service", as container_id
 * gives it) names, into out (cap bytes). false (out = "") when the unit does
 * not name its processes. */
bool service_name_from_unit(const char *unit, char *out, size_t cap);

/* The script or module an interpreter runs, from its command line (cmdline:
 * len bytes of NUL-separated arguments, as /proc/PID/cmdline; at most
 * SERVICE_NAME_CMDLINE_MAX are looked at), the executable's basename exe
 * ("python3.11", "node", "java") and its working directory cwd (may be NULL).
 * false (out = "") when exe is not an interpreter or the command line names
 * nothing. */
bool service_name_from_cmdline(const char *exe, const char *cmdline, size_t len, const char *cwd,
                               char *out, size_t cap);

#endif
