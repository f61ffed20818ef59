#!/usr/bin/python3
"""test_dualstack_chains.py — end-to-end: connected traces and addresses (issue 18) through the
service chains of test_traces.py with every service in its default listen configuration: Node
`listen(port)`, Go `":port"`, Rust `[::]:port`, uvicorn `--host ::` (its Config.bind_socket, as
with --workers), Flask host `::` — dual-stack [::] sockets, where an IPv4 peer is an IPv4-mapped
address (::ffff:127.0.0.1).

Each stack runs with Redis (flask and node also with PostgreSQL) twice: every hop over IPv4
(curl → 127.0.0.1, BACK_URL http://127.0.0.1:…, the database at 127.0.0.1: an IPv4 client, a
v4-mapped server end) and every hop over IPv6 (curl → [::1], BACK_URL http://[::1]:…, the database
at ::1). N sequential requests each. Checked per run: the link checks of test_traces (spans match
the servers, no wrong links, pairing exact, N/N complete traces), and every address attribute of
every span of the chain — client.address, network.peer.address, server.address — is the family's
loopback, 127.0.0.1 or ::1, never ::ffff:127.0.0.1 or ::. A table per stack × family is printed
at the end.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import attrs, check, test  # noqa: E402
import traces_lib  # noqa: E402
from traces_lib import ROLES, Run, need  # noqa: E402

N = 10
FAMILIES = (("IPv4", "127.0.0.1"), ("IPv6", "::1"))
ADDRESS_KEYS = ("client.address", "network.peer.address", "server.address")

traces_lib.DB_HOSTS = ("127.0.0.1", "::1")
_rows = []  # (stack+db, family, correct spans, spans, complete, n, wrong links)


def wrong_addresses(run, loopback):
    """(spans checked, descriptions of spans with an address that is not loopback)."""
    spans = [s for k in run.by_req for role in ROLES for s in k[role]]
    bad = []
    for s in spans:
        got = {key: attrs(s)[key] for key in ADDRESS_KEYS if key in attrs(s)}
        if not got or any(v != loopback for v in got.values()):
            bad.append("%s %s %s" % (s["kind"], s["name"], got))
    return len(spans), bad


def dualstack_chain(stack, db):
    need(stack, db)
    failures = []
    for family, loopback in FAMILIES:
        try:
            run = Run(stack, db, N, bind="default", host=loopback)
        except lib.CheckFailed as e:
            _rows.append(("%s+%s" % (stack, db), family, 0, 0, 0, N, -1))
            failures.append("%s: %s" % (family, e))
            continue
        total, bad = wrong_addresses(run, loopback)
        _rows.append(("%s+%s" % (stack, db), family, total - len(bad), total, run.complete, N,
                      run.n_wrong()))
        print("  %s %s (default listen): addresses %d/%d; %s"
              % (family, loopback, total - len(bad), total, run.summary()), flush=True)
        try:
            check(run.listeners == {"front": ["::"], "back": ["::"]},
                  "the services listen on %r, want one dual-stack [::] socket each"
                  % run.listeners)
            check(run.counts["front_srv"] == N and run.counts["back_srv"] == N,
                  "SERVER spans front %d back %d, want %d each" % (run.counts["front_srv"],
                                                                   run.counts["back_srv"], N))
            check(not bad, "%d of %d spans with an address other than %s: %s"
                  % (len(bad), total, loopback, "; ".join(bad[:4])))
            run.check_chain()
        except lib.CheckFailed as e:
            failures.append("%s: %s" % (family, e))
    check(not failures, " | ".join(failures))


@test
def fastapi_redis_dualstack():
    dualstack_chain("fastapi", "redis")


@test
def flask_redis_dualstack():
    dualstack_chain("flask", "redis")


@test
def go_redis_dualstack():
    dualstack_chain("go", "redis")


@test
def node_redis_dualstack():
    dualstack_chain("node", "redis")


@test
def rust_redis_dualstack():
    dualstack_chain("rust", "redis")


@test
def flask_postgres_dualstack():
    dualstack_chain("flask", "postgres")


@test
def node_postgres_dualstack():
    dualstack_chain("node", "postgres")


def print_table():
    if not _rows:
        return
    print("dual-stack chains (default listen, N=%d sequential requests per run):" % N)
    print("  %-16s | %-6s | %-24s | %-18s | %s" % ("stack", "family", "correct addresses",
                                                   "connected traces", "wrong links"))
    for name, family, ok, total, complete, n, wrong in _rows:
        print("  %-16s | %-6s | %-24s | %-18s | %s"
              % (name, family, "%d/%d (%.0f %%)" % (ok, total, 100.0 * ok / total if total else 0),
                 "%d/%d (%.0f %%)" % (complete, n, 100.0 * complete / n),
                 "run failed" if wrong < 0 else wrong))


if __name__ == "__main__":
    try:
        status = lib.run_tests()
    finally:
        traces_lib.stop_databases()
    print_table()
    sys.exit(status)
