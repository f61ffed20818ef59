#!/usr/bin/python3
"""test_trace_truth.py — end-to-end: trace truth (issue 19) under concurrency, with big request
heads and with failed calls.

Each scenario is a real `curl → front → back (→ Redis)` chain (tests/e2e/chain.py; the agent
watches the front and back ports only). Request k asks the front for /api/item/k and the front
calls the back's /item/k, so every span's request is known from its path, independently of the
agent's ids; tracecheck.Truth judges each span: linked (the parent is the span one hop up of the
same request), root, or wrong (a parent or trace of another request). Per scenario one line:
requests, downstream CLIENT spans (front → back), linked, roots, wrong.

    go front → back      net/http, client.Get, 200 requests 10 at a time
    uvicorn              FastAPI, async handler, httpx.AsyncClient, 10 at a time
    gunicorn             Flask on gunicorn sync workers, urllib, 10 at a time
    express              Express 4, http.get (keep-alive agent), 10 at a time
    nginx proxy_pass     nginx (2 workers) → the Flask back, 10 at a time (a new upstream
                         connection per request, nginx's default)
    nginx keepalive      the same → the Express back over kept-alive upstream connections
                         (`keepalive 4`, HTTP/1.1), 100 requests 10 at a time
    big heads            a 5 KB and a 16 KB Cookie with a traceparent after it (Flask chain)
    failed calls         the back SIGKILLed while it handles the call; an upstream that never
                         answers (the front gives up after 1 s): ERROR spans with error.type,
                         counted in http_client_request_duration_seconds_count{error_type}

Zero wrong parents is asserted everywhere (the invariant); span counts are checked against the
services' own logs; the linked share is asserted only up to MIN_LINKED, what the agent meets
today (raise it as linking improves: issue 19 wants 200/200 for Go, ≥ 90 % for the others).
uvicorn's and Express's shares hold with the agent's event-loop probes (Python asyncio's tasks,
Node's phases), asserted when they attached.
"""

import os
import random
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chain  # noqa: E402
import lib  # noqa: E402
import tracecheck  # noqa: E402
from lib import attrs, check, check_eq, test  # noqa: E402
from tracecheck import ChainRun, drive, need  # noqa: E402

CONCURRENCY = 10
N = 40  # requests per scenario at CONCURRENCY (the Go one does N_GO)
N_GO = 200
# The linked share of downstream calls each scenario must keep (measured on the current agent;
# raise these as the linking improves).
MIN_LINKED = {"go": 0.99, "uvicorn": 0.9, "gunicorn": 1.0, "express": 0.9, "nginx": 0.9,
              "nginx keepalive": 0.9, "big heads": 1.0, "failed calls": 1.0}
N_NGINX_KEEPALIVE = 100
ERROR_TYPES_KILLED = ("connection_closed", "connection_reset", "process_exit")
TABLE = tracecheck.Table()


def item_paths(n):
    return ["/api/item/%d" % k for k in range(1, n + 1)]


def concurrency_test(name, stack, n=N, front_argv=None, agent_first=False):
    need(stack)
    run = ChainRun(stack, lambda run, ch: drive(run, ch, item_paths(n), CONCURRENCY),
                   front_argv=front_argv, agent_first=agent_first)
    keys = set(range(1, n + 1))
    run.record(TABLE, "%s c=%d%s" % (name, CONCURRENCY, " agent first" if agent_first else ""),
               keys, "%.0f s" % run.seconds)
    run.check_no_wrong(name)
    run.check_counts(keys)
    run.check_min_linked(name, keys, MIN_LINKED[name], needs_node_probes=name == "express",
                         needs_python_probes=name == "uvicorn")


@test
def go_front_back_c10_no_wrong_parent():
    concurrency_test("go", "go", n=N_GO)


@test
def uvicorn_c10_no_wrong_parent():
    concurrency_test("uvicorn", "fastapi")


def gunicorn_argv(front_port, back_port):
    return ["/usr/bin/gunicorn", "--workers", "4", "--worker-class", "sync", "--bind",
            "127.0.0.1:%d" % front_port, "--chdir", os.path.join(chain.APPS, "python"),
            "--log-level", "warning", "flask_app:app"]


@test
def gunicorn_c10_no_wrong_parent():
    if not os.access("/usr/bin/gunicorn", os.X_OK):
        lib.skip("no /usr/bin/gunicorn (apt-get install gunicorn)")
    concurrency_test("gunicorn", "flask", front_argv=gunicorn_argv)


@test
def express_c10_no_wrong_parent():
    concurrency_test("express", "node")


def _node_has_probe_symbols():
    """The node binary exports what the Node.js event-loop probes attach to."""
    try:
        with open(os.path.realpath("/usr/bin/node"), "rb") as f:
            data = f.read()
    except OSError:
        return False
    return all(name in data for name in (
        b"_ZN4node11Environment14CheckImmediateEP10uv_check_s\0",
        b"_ZN4node11Environment9RunTimersEP10uv_timer_s\0",
        b"_ZN4node15LibuvStreamWrap12AfterUvWriteEP10uv_write_si\0",
        b"_ZN4node15LibuvStreamWrap15AfterUvShutdownEP13uv_shutdown_si\0"))


@test
def express_c10_node_probes_with_and_without_tls_probes():
    """--no-tls keeps the Node.js event-loop probes (they are not TLS probes);
    --no-node-probes leaves them out: the turn rules alone, still 0 wrong."""
    need("node")
    has = _node_has_probe_symbols()
    for flag, want in (("--no-tls", has), ("--no-node-probes", False)):
        run = ChainRun("node", lambda run, ch: drive(run, ch, item_paths(N), CONCURRENCY),
                       agent_args=[flag])
        keys = set(range(1, N + 1))
        run.record(TABLE, "express c=%d %s" % (CONCURRENCY, flag), keys, "%.0f s" % run.seconds)
        run.check_no_wrong("express %s" % flag)
        run.check_counts(keys)
        check_eq(run.node_probes, want, "Node.js event-loop probes attached with %s" % flag)
        if want:
            run.check_min_linked("express %s" % flag, keys, MIN_LINKED["express"])


NGINX_PROXY_CONF = """# generated by tests/e2e/test_trace_truth.py
user root;
worker_processes 2;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format e2e '$request_method $uri $status';
    access_log /dev/stdout e2e;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    server {{
        listen 127.0.0.1:{port};
        location = /health {{ return 200 "ok"; }}
        location /api/item/ {{ proxy_pass http://127.0.0.1:{back}/item/; }}
    }}
}}
"""


NGINX_KEEPALIVE_CONF = NGINX_PROXY_CONF.replace(
    "    server {{\n",
    "    upstream back {{ server 127.0.0.1:{back}; keepalive 4; }}\n    server {{\n").replace(
    "proxy_pass http://127.0.0.1:{back}/item/; }}",
    "proxy_pass http://back/item/; proxy_http_version 1.1; "
    "proxy_set_header Connection \"\"; }}")


def nginx_argv(front_port, back_port, template=NGINX_PROXY_CONF):
    import tempfile
    d = tempfile.mkdtemp(prefix="periscope-truth-nginx-")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(template.format(dir=d, port=front_port, back=back_port))
    return ["/usr/sbin/nginx", "-p", d, "-c", conf, "-e", os.path.join(d, "error.log")]


@test
def nginx_proxy_pass_c10_no_wrong_parent():
    if not os.access("/usr/sbin/nginx", os.X_OK):
        lib.skip("no /usr/sbin/nginx")
    concurrency_test("nginx", "flask", front_argv=nginx_argv)


@test
def nginx_keepalive_upstream_c10_no_wrong_parent():
    if not os.access("/usr/sbin/nginx", os.X_OK):
        lib.skip("no /usr/sbin/nginx")
    concurrency_test("nginx keepalive", "node", n=N_NGINX_KEEPALIVE,
                     front_argv=lambda f, b: nginx_argv(f, b, NGINX_KEEPALIVE_CONF))


@test
def loops_started_under_the_agent_c10_no_wrong_parent():
    """Event-loop fronts started while the agent runs, as pods start on a node under the
    DaemonSet: no scan at the agent's start finds them; listen() marks a process whose waits
    count event-loop turns, a fork passes that on (nginx's workers, forked by its master).
    Linked and wrong counted as for the fronts started first."""
    cases = [("express", "node", None), ("uvicorn", "fastapi", None)]
    if os.access("/usr/sbin/nginx", os.X_OK):
        cases.insert(0, ("nginx", "flask", nginx_argv))
    for name, stack, argv in cases:
        concurrency_test(name, stack, front_argv=argv, agent_first=True)


# ---- big request heads: a cookie bigger than the default 4 KiB capture, the traceparent after it

BIG_HEADS = (5 * 1024, 16 * 1024)
PER_SIZE = 3


@test
def big_cookie_keeps_traceparent_and_links():
    need("flask")
    rng = random.Random(19)
    tps = {}  # request -> (trace id, parent span id)
    size_of = {}
    keys = range(1, len(BIG_HEADS) * PER_SIZE + 1)
    extra_parents = {}

    def load(run, ch):
        for k in keys:
            size = BIG_HEADS[(k - 1) // PER_SIZE]
            size_of[k] = size
            tps[k] = ("%032x" % rng.getrandbits(128), "%016x" % rng.getrandbits(64))
            extra_parents[k] = {tps[k][1]: {"trace_id": tps[k][0]}}
            cookie = "Cookie: session=" + "".join(rng.choice("abcdefghijklmnop0123456789")
                                                  for _ in range(size))
            codes, _ = lib.curl("%s/api/item/%d" % (ch.front_url, k), extra=["--noproxy", "*"],
                                headers=[cookie, "traceparent: 00-%s-%s-01" % tps[k]])
            check_eq(codes, [200], "answer to request %d (%d-byte cookie)" % (k, size))
        check(ch.wait_requests("back", len(keys)) >= len(keys), "the back's log")

    run = ChainRun("flask", load, extra_parents=extra_parents)
    for size in BIG_HEADS:
        ks = {k for k in keys if size_of[k] == size}
        run.record(TABLE, "big head %d KB + traceparent" % (size // 1024), ks,
                   "front SERVER in the header's trace: %d/%d" % (
                       sum(1 for s in run.truth.spans_of("front_srv", ks)
                           if (s["trace_id"], s.get("parent_span_id")) == tps[
                               tracecheck.key_from_path(attrs(s).get("url.path"))]), len(ks)))
    run.check_no_wrong("big heads")
    run.check_counts(set(keys))
    for k in keys:
        (fs,) = run.truth.by[("front_srv", k)]
        what = "request %d (%d-byte cookie) front SERVER" % (k, size_of[k])
        check_eq(fs["trace_id"], tps[k][0], what + " trace_id (the traceparent's)")
        check_eq(fs.get("parent_span_id"), tps[k][1], what + " parent (the traceparent's span)")
    run.check_min_linked("big heads", set(keys), MIN_LINKED["big heads"])


# ---- failed calls: an upstream killed mid-request, an upstream that never answers

HANG_SERVER = r"""
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(16)
def hold(c):  # read the request, never answer; close when the client does
    with c:
        while c.recv(65536):
            pass
while True:
    threading.Thread(target=hold, args=(srv.accept()[0],), daemon=True).start()
"""


def statuses(spans):
    """`STATUS/error.type, …` of spans, or none."""
    return ", ".join("%s/%s" % (s.get("status"), attrs(s).get("error.type"))
                     for s in spans) or "none"


class FailedCallsRun(ChainRun):
    """The Flask chain plus a hanging upstream on hang_port (its spans count as the back's) and
    the agent's Prometheus endpoint, scraped before the agent stops."""

    def __init__(self, hang, hang_port, prom_port, load):
        self.hang, self.hang_port, self.prom_port = hang, hang_port, prom_port
        self.samples = []
        super().__init__("flask", load, extra_ports=[hang_port],
                         agent_args=["--prometheus", "127.0.0.1:%d" % prom_port],
                         env={"TRUTH": "1", "SLOW_SECONDS": "5", "HANG_TIMEOUT": "1",
                              "HANG_URL": "http://127.0.0.1:%d" % hang_port})

    def role(self, span):
        port, pid = attrs(span).get("server.port"), lib.res(span).get("process.pid")
        if port == self.hang_port:
            if span.get("kind") == "CLIENT" and pid in self.front_pids:
                return "front_cli"
            if span.get("kind") == "SERVER" and pid == self.hang.pid:
                return "back_srv"
            return None
        return super().role(span)

    def client_errors(self, samples):
        """error_type -> count of the front's failed client calls on the Prometheus endpoint."""
        got = {}
        for name, labels, value in samples:
            if (name == "http_client_request_duration_seconds_count" and "error_type" in labels
                    and labels.get("server_port") in (str(self.back_port), str(self.hang_port))):
                got[labels["error_type"]] = got.get(labels["error_type"], 0) + int(value)
        return got

    def before_stop(self, agent):
        deadline = time.monotonic() + 10
        while True:
            self.samples = lib.parse_prom(lib.scrape(self.prom_port))
            if sum(self.client_errors(self.samples).values()) >= 2 or \
                    time.monotonic() > deadline:
                return
            time.sleep(0.3)


@test
def failed_calls_are_error_spans_and_metrics():
    need("flask")
    hang_port, prom_port = lib.free_port(), lib.free_port()
    hang = subprocess.Popen(["/usr/bin/python3", "-c", HANG_SERVER, str(hang_port)],
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        chain.wait_listening(hang_port, proc=hang)
        answers = {}

        def load(run, ch):
            slow = threading.Thread(target=lambda: answers.update(
                slow=lib.curl(ch.front_url + "/api/slow/1", extra=["--noproxy", "*"])[0]))
            slow.start()
            deadline = time.monotonic() + 10
            while "SLOW /slow/1" not in ch.log_lines("back") and time.monotonic() < deadline:
                time.sleep(0.05)
            check("SLOW /slow/1" in ch.log_lines("back"), "the back never started /slow/1")
            time.sleep(0.3)
            os.killpg(ch.services["back"].proc.pid, signal.SIGKILL)
            slow.join(30)
            answers["hang"] = lib.curl(ch.front_url + "/api/hang/2", extra=["--noproxy", "*"])[0]
            run.agent.wait_for_spans(lambda s: attrs(s).get("url.path") in ("/slow/1", "/hang/2")
                                     and s.get("kind") == "CLIENT", 2, timeout=10, settle=0)

        run = FailedCallsRun(hang, hang_port, prom_port, load)
    finally:
        os.killpg(hang.pid, signal.SIGKILL)
        hang.wait()
    check_eq((answers.get("slow"), answers.get("hang")), ([502], [504]),
             "the front's answers (back killed, upstream hanging)")
    clients = {k: run.truth.by.get(("front_cli", k), []) for k in (1, 2)}
    servers = {k: run.truth.by.get(("back_srv", k), []) for k in (1, 2)}
    errors = run.client_errors(run.samples)
    run.record(TABLE, "failed calls (killed, hung)", {1, 2},
               "client %s | %s; server %s | %s; prom %s" % (
                   statuses(clients[1]), statuses(clients[2]), statuses(servers[1]),
                   statuses(servers[2]),
                   errors or "none"))
    run.check_no_wrong("failed calls")
    for k, what, types in ((1, "killed back", ERROR_TYPES_KILLED), (2, "hung upstream",
                                                                    ("timeout",))):
        check_eq(len(clients[k]), 1, "front CLIENT spans for the %s" % what)
        c = clients[k][0]
        check_eq(c.get("status"), "ERROR", "the %s's CLIENT span status" % what)
        check(attrs(c).get("error.type") in types, "the %s's CLIENT span error.type %r, want "
              "one of %s" % (what, attrs(c).get("error.type"), types))
        for s in servers[k]:  # the upstream's side, when the agent saw it
            check_eq(s.get("status"), "ERROR", "the %s's SERVER span status" % what)
            check(attrs(s).get("error.type"), "the %s's SERVER span has no error.type" % what)
    check_eq(len(servers[1]), 1, "SERVER spans of the killed back's /slow/1")
    want = {}
    for c in clients[1] + clients[2]:
        want[attrs(c)["error.type"]] = want.get(attrs(c)["error.type"], 0) + 1
    check_eq(errors, want, "http_client_request_duration_seconds_count by error_type")
    run.check_min_linked("failed calls", {1, 2}, MIN_LINKED["failed calls"])


if __name__ == "__main__":
    status = lib.run_tests()
    TABLE.print("trace truth (wrong must be 0; linked = downstream CLIENT spans whose parent is "
                "their request's SERVER span):")
    sys.exit(status)
