#!/usr/bin/python3
"""test_core_python.py — end-to-end: Python's http.server (HTTP/1.1 keep-alive) compared with its
own request log, with the default service name (the script the interpreter runs) and with
OTEL_SERVICE_NAME set in the server's environment.
"""

import collections
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import attrs, check, check_eq, curl, res, test  # noqa: E402
from servers import PYTHON, PyServer  # noqa: E402

PATHS = ["/ok", "/ok/a?x=1", "/fail", "/nope", "/ok", "/fail?y=2", "/ok/b"]


def server_spans(server):
    return lambda s: (s.get("kind") == "SERVER" and attrs(s).get("server.port") == server.port
                      and res(s).get("process.pid") == server.pid)


def drive(server):
    """Two curl runs on keep-alive connections plus a few one-request curls; returns how many."""
    base = "http://127.0.0.1:%d" % server.port
    codes, _ = curl([base + p for p in PATHS])
    check_eq(codes, [200, 200, 500, 404, 200, 500, 200], "curl statuses (keep-alive)")
    total = len(codes)
    for p in ("/ok", "/fail"):
        codes, _ = curl(base + p)
        total += len(codes)
    codes, _ = curl(base + "/ok/post", extra=["--data", "a=1&b=2"])
    check_eq(codes, [200], "POST status")
    return total + 1


def check_against_log(agent, server, service_name):
    total = drive(server)
    log = server.wait_log_lines(total)
    check_eq(len(log), total, "request-log lines")
    want = collections.Counter(server.requests())
    spans = agent.wait_for_spans(server_spans(server), total)
    got = collections.Counter((attrs(s).get("http.request.method"), attrs(s).get("url.path"),
                               attrs(s).get("http.response.status_code")) for s in spans)
    if got != want:
        raise AssertionError("python SERVER spans differ from its request log: missing %s, extra %s"
                             % (dict(want - got), dict(got - want)))
    for s in spans:
        a = attrs(s)
        check_eq(res(s).get("service.name"), service_name, "service.name")
        check_eq(res(s).get("process.pid"), server.pid, "process.pid")
        check_eq(a.get("network.protocol.version"), "1.1", "network.protocol.version")
        check_eq(a.get("url.scheme"), "http", "url.scheme")
        code = a.get("http.response.status_code")
        if code >= 500:
            check_eq(s.get("status"), "ERROR", "status of a %d SERVER span" % code)
        else:
            check(s.get("status") in ("UNSET", "OK"), "status of a %d SERVER span is %r"
                  % (code, s.get("status")))
        check("x=1" not in repr(s) and "y=2" not in repr(s), "query string exported: %r" % s)
        lib.check_span_name(s, "python SERVER span")


@test
def python_server_default_service_name():
    agent = lib.shared_agent()
    with PyServer() as server:
        exe = os.path.basename(os.path.realpath(PYTHON))  # python3.11
        # no OTEL_SERVICE_NAME: named after the script the interpreter runs (servers.py)
        check_against_log(agent, server, "servers")
        span = agent.snapshot(server_spans(server))[0]
        check_eq(res(span).get("process.executable.name"), exe, "process.executable.name")
        check_eq(res(span).get("process.executable.path"), os.path.realpath(PYTHON),
                 "process.executable.path")


@test
def python_server_otel_service_name():
    agent = lib.shared_agent()
    with PyServer(service_name="pyserver") as server:
        check_against_log(agent, server, "pyserver")


if __name__ == "__main__":
    sys.exit(lib.run_tests())
