#!/usr/bin/python3
"""test_asyncio_streams.py — end-to-end: trace truth (issue 19) for an asyncio server that serves
each connection in one task of its own, made when the connection is accepted (asyncio.start_server;
aiohttp's request loop is the same shape), apps/python/stream_app.py: curl → front
(GET /api/<k>) → back (GET /item/<k>, on a connection the front keeps per client connection).

With the agent's asyncio probes attached, the connection's task serves a request it was woken
for: once it has answered on its connection, its steps belong to the one request in flight there.
Every call the front makes must be a root or the child of the request with its own k (never
another request's); calls from a connection's second request on must be linked, the first request
of each connection may stay a root (its task had answered nothing yet). The same with a task per
request made by the connection's task (aiohttp's shape). Counted against the front's own log of
the requests it served.
"""

import collections
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import attrs, check, check_eq, test  # noqa: E402
from servers import PYTHON, free_port, wait_listening  # noqa: E402

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "python", "stream_app.py")
SEQUENTIAL = 20  # requests on one keep-alive connection
PARALLEL = 5     # connections at a time ...
PER_CONN = 6     # ... of this many requests each


def key_of(path, prefix):
    m = re.fullmatch(prefix + r"(\d+)", path or "")
    return int(m.group(1)) if m else None


def start(argv):
    proc = subprocess.Popen([PYTHON, APP] + argv, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_listening(int(argv[1]), proc=proc)
    return proc


PROM = free_port()


def streams_test(mode, what):
    prom = PROM
    agent = lib.shared_agent(args=["--prometheus", "127.0.0.1:%d" % prom])
    steps_before = sum(v for name, _, v in lib.parse_prom(lib.scrape(prom))
                       if name == "periscope_links_asyncio_conn_task_steps_total")
    tmp = tempfile.mkdtemp(prefix="periscope-e2e-streams-")
    log = os.path.join(tmp, "front.log")
    open(log, "w").close()
    back_port, front_port = free_port(), free_port()
    procs = [start(["back", str(back_port)])]
    try:
        procs.append(start([mode, str(front_port), str(back_port), log]))
        # the probes attach once per interpreter file, after its first process is seen
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                r.get("msg") == "Python asyncio probes attached" for r in agent.log_records):
            time.sleep(0.1)
        probes = any(r.get("msg") == "Python asyncio probes attached" for r in agent.log_records)
        time.sleep(0.5)
        base = "http://127.0.0.1:%d/api/" % front_port
        codes, _ = lib.curl([base + str(k) for k in range(1, SEQUENTIAL + 1)])
        check_eq(codes, [200] * SEQUENTIAL, "curl statuses (sequential)")
        results = []

        def one_conn(first):
            results.append(lib.curl([base + str(k) for k in range(first, first + PER_CONN)])[0])

        threads = [threading.Thread(target=one_conn, args=(1000 + 100 * i,))
                   for i in range(PARALLEL)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for c in results:
            check_eq(c, [200] * PER_CONN, "curl statuses (parallel)")
        n = SEQUENTIAL + PARALLEL * PER_CONN
        conns = 1 + PARALLEL
        # the front logs a request after its answer went out: the last line may follow
        # curl's exit by a moment
        deadline = time.monotonic() + 5
        while True:
            with open(log) as f:
                served = [int(x) for x in f.read().split()]
            if len(served) >= n or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        check_eq(len(served), n, "requests in the front's log")

        def front_server(s):
            return (s.get("kind") == "SERVER" and attrs(s).get("server.port") == front_port
                    and key_of(attrs(s).get("url.path"), "/api/") is not None)

        def front_client(s):
            return (s.get("kind") == "CLIENT" and attrs(s).get("server.port") == back_port
                    and key_of(attrs(s).get("url.path"), "/item/") is not None)

        servers = agent.wait_for_spans(front_server, n)
        clients = agent.wait_for_spans(front_client, n, settle=0.5)
        check_eq(collections.Counter(key_of(attrs(s).get("url.path"), "/api/") for s in servers),
                 collections.Counter(served), "front SERVER spans vs the front's log")
        check_eq(len(clients), n, "front CLIENT spans (calls of the back)")
        by_id = {s["span_id"]: s for s in servers}
        linked = roots = 0
        wrong = []
        for c in clients:
            k = key_of(attrs(c).get("url.path"), "/item/")
            p = by_id.get(c.get("parent_span_id"))
            if p is None:
                # a root, or the child of a span that is not a front request (wrong)
                if c.get("parent_span_id"):
                    wrong.append((k, c.get("parent_span_id")))
                roots += 1
            elif key_of(attrs(p).get("url.path"), "/api/") == k and p["trace_id"] == c["trace_id"]:
                linked += 1
            else:
                wrong.append((k, attrs(p).get("url.path")))
        print("  %s: %d requests on %d connections; calls linked %d, roots %d, "
              "wrong %d (asyncio probes %s)" % (what, n, conns, linked, roots, len(wrong),
                                                "attached" if probes else "not attached"))
        check(not wrong, "calls linked to another request: %s" % wrong[:5])
        if probes:
            check(linked >= n - conns, "calls linked: %d of %d, want at least %d (all but each "
                  "connection's first)" % (linked, n, n - conns))
            steps = sum(v for name, _, v in lib.parse_prom(lib.scrape(prom))
                        if name == "periscope_links_asyncio_conn_task_steps_total") - steps_before
            check(steps >= n - conns, "periscope_links_asyncio_conn_task_steps_total %s, want at "
                  "least one per request after each connection's first (%d)" % (steps, n - conns))
    finally:
        for p in procs:
            p.kill()
            p.wait()


@test
def start_server_connection_tasks():
    """The connection's task serves each request itself."""
    streams_test("front", "start_server front")


@test
def start_server_task_per_request():
    """The connection's task makes a task per request and awaits it (aiohttp's shape): known as
    the connection's task by its first request's task answering there."""
    streams_test("front-task", "start_server front, a task per request")


if __name__ == "__main__":
    sys.exit(lib.run_tests())
