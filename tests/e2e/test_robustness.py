#!/usr/bin/python3
"""test_robustness.py — end-to-end: the agent under failure and hostile conditions.

OTLP side: the endpoint is down at start and comes up later (queued spans are delivered), answers
503 + Retry-After then 200 (everything delivered once, the retries counted on /metrics), answers
400 (the batch is dropped and counted, the agent keeps exporting). Traced side: a server killed
with SIGKILL while a client waits, hostile bytes on a traced server port (random bytes, a 1 MB
header line, a slowloris request, binary junk), a burst of 2000 short connections; after all of
it the agent is alive, valid requests give exact spans, and its RSS stays below a bound.

Each test filters spans by the port of the server it started (and by pid), so other traffic on
the machine does not disturb the counts.
"""

import collections
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import Agent, attrs, check, check_eq, curl, free_port, res, test  # noqa: E402
import servers  # noqa: E402
from servers import Nginx, wait_listening  # noqa: E402

RSS_LIMIT_KB = 200 * 1024
PY = "/usr/bin/python3"


# ---- helpers

def on_port(port, kind=None):
    return lambda s: (attrs(s).get("server.port") == port
                      and (kind is None or s.get("kind") == kind))


def prom_values(prom_port, name):
    """{labels-text: value} of every sample of metric `name` on the agent's /metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % prom_port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, _, value = line.rpartition(" ")
            out[key[len(name):]] = float(value)
    return out


def prom_sum(prom_port, name, label_filter=""):
    return sum(v for k, v in prom_values(prom_port, name).items() if label_filter in k)


def events_dropped(prom_port):
    """Events lost (every reason but "truncated", which is a capped payload, not a loss)."""
    return sum(v for k, v in prom_values(prom_port, "periscope_events_dropped_total").items()
               if 'reason="truncated"' not in k)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class PortReceiver(lib.Receiver):
    """tests/e2e/otlp_receiver.py on a port chosen by the test (so it can start after the agent),
    optionally starting in a failure mode."""

    def __init__(self, port, mode="ok"):
        import shutil
        self._rmtree = shutil.rmtree
        self.dir = tempfile.mkdtemp(prefix="periscope-e2e-otlp-")
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self._log = open(os.path.join(self.dir, "receiver.log"), "wb")
        self.proc = subprocess.Popen(
            [PY, lib.RECEIVER_SCRIPT, "--port", str(port), "--dir", self.posts_dir,
             "--fail-mode", mode], stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=self._log, start_new_session=True)
        try:
            wait_listening(port, proc=self.proc)
        except RuntimeError:
            self.close()
            raise

    def request_log(self):
        try:
            with open(os.path.join(self.posts_dir, "requests.log")) as f:
                return [line.rstrip("\n") for line in f]
        except FileNotFoundError:
            return []


def wait_until(pred, timeout, step=0.2):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def otlp_env(url, delay_ms=200):
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_BSP_SCHEDULE_DELAY": str(delay_ms),
            "OTEL_METRIC_EXPORT_INTERVAL": "600000"}  # no metric posts during the test


def check_alive(agent, what):
    check(agent.proc.poll() is None, "agent exited (status %r) %s:\n%s"
          % (agent.proc.returncode, what, agent.stderr_tail(20)))


# ---- OTLP endpoint failures

@test
def otlp_endpoint_down_at_start_then_up():
    otlp = lib.otlp_support()
    lib.require_agent()
    port = free_port()
    with Nginx() as nginx, Agent(args=["--port", str(nginx.port)],
                                 env=otlp_env("http://127.0.0.1:%d" % port)) as agent:
        agent.wait_ready()
        codes, _ = curl(["http://127.0.0.1:%d/echo" % nginx.port] * 4)
        check_eq(codes, [200] * 4, "curl statuses")
        printed = agent.wait_for_spans(on_port(nginx.port), 8)
        check_eq(len(printed), 8, "spans printed while the endpoint is down (4 SERVER + 4 CLIENT)")
        time.sleep(1.5)  # at least one failed post and a backoff
        check_alive(agent, "with its OTLP endpoint down")
        with PortReceiver(port) as rcv:
            got = otlp.wait_spans(rcv, on_port(nginx.port), 8, timeout=20)
            time.sleep(0.5)
            got = [s for s in otlp.all_spans(rcv) if on_port(nginx.port)(s)]
            check_eq(sorted(s["span_id"] for s in got), sorted(s["span_id"] for s in printed),
                     "span ids delivered after the endpoint came up (printed before)")
            agent.stop_and_check()


@test
def otlp_503_retry_after_then_ok_delivers_all():
    otlp = lib.otlp_support()
    lib.require_agent()
    prom = free_port()
    with PortReceiver(free_port(), mode="503") as rcv, Nginx() as nginx, \
            Agent(args=["--port", str(nginx.port), "--prometheus", "127.0.0.1:%d" % prom],
                  env=otlp_env(rcv.url)) as agent:
        agent.wait_ready()
        codes, _ = curl(["http://127.0.0.1:%d/echo" % nginx.port,
                         "http://127.0.0.1:%d/fail" % nginx.port])
        check_eq(codes, [200, 500], "curl statuses")
        printed = agent.wait_for_spans(on_port(nginx.port), 4)
        check_eq(len(printed), 4, "spans printed (2 SERVER + 2 CLIENT)")
        n503 = wait_until(lambda: len([l for l in rcv.request_log() if "status=503" in l]) >= 2
                          and len([l for l in rcv.request_log() if "status=503" in l]), 15)
        check(n503, "the receiver saw fewer than 2 posts answered 503: %r" % rcv.request_log())
        rcv.control("ok")
        got = otlp.wait_spans(rcv, on_port(nginx.port), 4, timeout=15)
        time.sleep(1.0)
        got = [s for s in otlp.all_spans(rcv) if on_port(nginx.port)(s)]
        check_eq(sorted(s["span_id"] for s in got), sorted(s["span_id"] for s in printed),
                 "span ids delivered after 503s (each exactly once)")
        log = rcv.request_log()
        answered_503 = len([l for l in log if "status=503" in l])
        retries = prom_sum(prom, "periscope_export_retries_total")
        check_eq(int(retries), answered_503,
                 "periscope_export_retries_total vs posts the receiver answered 503")
        check_eq(prom_sum(prom, "periscope_spans_dropped_total"), 0.0,
                 "periscope_spans_dropped_total after a recovered outage")
        check_alive(agent, "after 503s")
        agent.stop_and_check()


@test
def otlp_400_drops_batch_and_keeps_running():
    otlp = lib.otlp_support()
    lib.require_agent()
    prom = free_port()
    with PortReceiver(free_port(), mode="400") as rcv, Nginx() as nginx, \
            Agent(args=["--port", str(nginx.port), "--prometheus", "127.0.0.1:%d" % prom],
                  env=otlp_env(rcv.url)) as agent:
        agent.wait_ready()
        base = "http://127.0.0.1:%d" % nginx.port
        codes, _ = curl([base + "/echo"] * 3)
        check_eq(codes, [200] * 3, "curl statuses (400 phase)")
        first = agent.wait_for_spans(on_port(nginx.port), 6)
        check_eq(len(first), 6, "spans printed in the 400 phase")
        dropped = wait_until(lambda: prom_sum(prom, "periscope_spans_dropped_total",
                                              'reason="export_failed"') >= 6, 10)
        check(dropped, "periscope_spans_dropped_total{reason=export_failed} is %r, want 6"
              % prom_values(prom, "periscope_spans_dropped_total"))
        time.sleep(0.5)
        check_eq(prom_sum(prom, "periscope_spans_dropped_total", 'reason="export_failed"'), 6.0,
                 "spans dropped after 400 answers")
        n400 = len([l for l in rcv.request_log() if "/v1/traces status=400" in l])
        check(n400 >= 1, "no trace post answered 400")
        check_eq(int(prom_sum(prom, "periscope_export_failures_total")), n400,
                 "periscope_export_failures_total vs posts answered 400")
        check_eq(int(prom_sum(prom, "periscope_export_retries_total")), 0,
                 "retries of a 400 (not retryable)")
        check_alive(agent, "after 400 answers")
        rcv.control("ok")
        codes, _ = curl([base + "/missing"] * 2)
        check_eq(codes, [404] * 2, "curl statuses (ok phase)")
        later = agent.wait_for_spans(on_port(nginx.port), 10)
        check_eq(len(later), 10, "spans printed in both phases")
        second = [s for s in later if s["span_id"] not in {x["span_id"] for x in first}]
        otlp.wait_spans(rcv, on_port(nginx.port), 4, timeout=10)
        time.sleep(0.5)
        got = [s for s in otlp.all_spans(rcv) if on_port(nginx.port)(s)]
        check_eq(sorted(s["span_id"] for s in got), sorted(s["span_id"] for s in second),
                 "span ids at the receiver: only those exported after the 400s")
        agent.stop_and_check()


# ---- a traced process killed mid-request

SLOW_SERVER = r"""
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(60)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
s.daemon_threads = True
s.serve_forever()
"""


@test
def server_killed_mid_request():
    lib.require_agent()
    port = free_port()
    with Nginx() as nginx, Agent(args=["--port", str(port), "--port", str(nginx.port)]) as agent:
        agent.wait_ready()
        srv = subprocess.Popen([PY, "-c", SLOW_SERVER, str(port)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        try:
            wait_listening(port, proc=srv)
            codes, _ = curl(["http://127.0.0.1:%d/ok" % port] * 2)
            check_eq(codes, [200, 200], "curl statuses before the kill")
            ok = agent.wait_for_spans(on_port(port), 4, settle=0.3)
            check_eq(len(ok), 4, "spans of the 2 requests before the kill")
            waiter = subprocess.Popen([lib.CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                       "--max-time", "20", "http://127.0.0.1:%d/slow" % port],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            check(waiter.poll() is None, "curl /slow returned before the kill")
            os.killpg(srv.pid, signal.SIGKILL)
            srv.wait(timeout=5)
            out, _ = waiter.communicate(timeout=20)
            check(waiter.returncode != 0 and out.strip() in (b"000", b""),
                  "curl of the killed server: exit %d, status %r" % (waiter.returncode, out))
        finally:
            if srv.poll() is None:
                os.killpg(srv.pid, signal.SIGKILL)
                srv.wait()
        time.sleep(2.0)
        check_alive(agent, "after a traced server was killed mid-request")
        slow = agent.snapshot(lambda s: on_port(port)(s) and attrs(s).get("url.path") == "/slow")
        for s in slow:  # a span for the unanswered request is optional; a success is wrong
            check(s.get("status") == "ERROR" and
                  attrs(s).get("http.response.status_code") in (None, 0),
                  "span of the request whose server was killed: status %r, code %r: %r"
                  % (s.get("status"), attrs(s).get("http.response.status_code"), s))
        others = agent.snapshot(lambda s: on_port(port)(s) and attrs(s).get("url.path") != "/slow")
        check_eq(len(others), 4, "spans on the killed server's port other than /slow")
        for s in others:
            check_eq((attrs(s).get("url.path"), attrs(s).get("http.response.status_code")),
                     ("/ok", 200), "span before the kill")
        # the agent still traces correctly afterwards
        codes, _ = curl(["http://127.0.0.1:%d/echo" % nginx.port] * 3)
        check_eq(codes, [200] * 3, "curl statuses after the kill")
        after = agent.wait_for_spans(on_port(nginx.port, "SERVER"), 3)
        check_eq(len(after), 3, "nginx SERVER spans after the kill")
        agent.stop_and_check()


# ---- hostile input, burst, memory: one nginx and one agent

_shared = {}


def shared_setup():
    """One nginx and one agent (--port nginx, --prometheus) for the last three tests."""
    if "nginx" not in _shared:
        _shared["nginx"] = Nginx()
        _shared["prom"] = free_port()
    nginx = _shared["nginx"]
    agent = lib.shared_agent(["--port", str(nginx.port), "--prometheus",
                              "127.0.0.1:%d" % _shared["prom"]])
    return nginx, agent, _shared["prom"]


def raw_exchange(port, payload, read=True, timeout=5.0):
    """Sends payload on a new connection, half-closes, reads until EOF; returns the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            return b""  # nginx may close early on a huge header: that is fine
        data = b""
        while read:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
        return data


def server_key(s):
    a = attrs(s)
    return (a.get("http.request.method"), a.get("url.path"), a.get("http.response.status_code"))


@test
def hostile_input_then_exact_spans():
    nginx, agent, prom = shared_setup()
    port = nginx.port
    rnd = random.Random(7)
    # a slowloris request: headers trickled in and held open during everything else
    slow = socket.create_connection(("127.0.0.1", port), timeout=10)
    slow.sendall(b"GET /static/a.txt?slowloris=1 HTTP/1.1\r\nHost: x\r\n")
    junk = [
        bytes(rnd.getrandbits(8) for _ in range(8192)),                      # random bytes
        b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n",  # 1 MB line
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) * 8,  # TLS-like
        b"\x00" * 4096 + b"\xff\xfe" * 2048,                                 # binary junk
        b"GET /echo HTTP/1.1\r\n" + bytes(range(256)) * 4 + b"\r\n\r\n",     # header of junk
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n" + b"z" * 1000,
        b"\r\n" * 5000,
        b"Q\x00\x00\x00\x0bSELECT 1\x00" * 50,                               # pg-like
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$-7\r\n" * 50,                       # broken RESP
    ]
    for i, payload in enumerate(junk):
        raw_exchange(port, payload)
        slow.sendall(b"X-Trickle-%d: %d\r\n" % (i, i))
        time.sleep(0.05)
    check_alive(agent, "after hostile input")
    base = "http://127.0.0.1:%d" % port
    valid = ["/static/a.txt?v=%d" % i for i in range(5)] + ["/missing", "/fail", "/echo"]
    codes, _ = curl([base + p for p in valid])
    check_eq(codes, [200] * 5 + [404, 500, 200], "curl statuses after hostile input")
    slow.sendall(b"\r\n")  # the slowloris request completes now
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = slow.recv(65536)
        if not chunk:
            break
        answer += chunk
    slow.close()
    check(answer.startswith(b"HTTP/1.1 200"), "slowloris answer %r" % answer[:60])
    nlog = len(junk) + len(valid) + 1
    log = nginx.wait_log_lines(nlog, timeout=5)
    pids = nginx.pids()
    srv = lambda s: (on_port(port, "SERVER")(s) and res(s).get("process.pid") in pids)  # noqa
    want_valid = collections.Counter([("GET", "/static/a.txt", 200)] * 6 + [
        ("GET", "/missing", 404), ("GET", "/fail", 500), ("GET", "/echo", 200)])
    spans = agent.wait_for_spans(srv, sum(want_valid.values()), timeout=10, settle=1.5)
    got = collections.Counter(server_key(s) for s in spans)
    valid_got = collections.Counter({k: got[k] for k in want_valid})
    check_eq(dict(valid_got), dict(want_valid),
             "SERVER spans of the valid requests (5 a.txt + slowloris a.txt, 404, 500, echo)")
    # every other span must match a request nginx logged, with nginx's status
    logged = collections.Counter((m, u, st) for m, u, st, _ in nginx.requests())
    extra = got - want_valid
    check(not (extra - logged), "SERVER spans for hostile input that nginx did not log so: "
          "%s (nginx logged %s; %d log lines)" % (dict(extra - logged), dict(logged), len(log)))
    check_alive(agent, "after hostile input and valid requests")


def burst(port, n, threads=8):
    """n short connections (one request each, Connection: close); returns the status counts."""
    statuses = collections.Counter()
    lock = threading.Lock()
    idx = iter(range(n))

    def worker():
        while True:
            with lock:
                i = next(idx, None)
            if i is None:
                return
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                    s.sendall(b"GET /echo?burst=%d HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n" % i)
                    data = b""
                    while True:
                        c = s.recv(4096)
                        if not c:
                            break
                        data += c
                code = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
            except OSError:
                code = -1
            with lock:
                statuses[code] += 1

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return statuses


@test
def burst_of_short_connections():
    nginx, agent, prom = shared_setup()
    port = nginx.port
    n = 2000
    before_log = len(nginx.log_lines())
    dropped_before = events_dropped(prom)
    # spans of earlier tests (hostile input also sent GET /echo) are not part of the burst
    seen = {s["span_id"] for s in agent.snapshot()}
    t0 = time.monotonic()
    statuses = burst(port, n)
    took = time.monotonic() - t0
    check_eq(dict(statuses), {200: n}, "burst answers")
    log = nginx.wait_log_lines(before_log + n, timeout=10)
    check_eq(len(log) - before_log, n, "nginx access-log lines of the burst")
    pids = nginx.pids()
    me = os.getpid()
    is_burst = lambda s: (s["span_id"] not in seen  # noqa
                          and on_port(port)(s) and attrs(s).get("url.path") == "/echo"
                          and s["kind"] in ("SERVER", "CLIENT")
                          and res(s).get("process.pid") in pids | {me}
                          and attrs(s).get("http.request.method") == "GET")
    spans = agent.wait_for_spans(is_burst, 2 * n, timeout=20, settle=1.5)
    check_alive(agent, "after a burst of %d connections" % n)
    by_kind = collections.Counter(s["kind"] for s in spans)
    dropped = events_dropped(prom) - dropped_before
    drops = {k: v for k, v in prom_values(prom, "periscope_events_dropped_total").items() if v}
    print("  burst: %d connections in %.1f s; spans %s; events dropped %d %s"
          % (n, took, dict(by_kind), dropped, drops), flush=True)
    if dropped == 0:
        check_eq(dict(by_kind), {"SERVER": n, "CLIENT": n},
                 "spans of the burst with no events dropped")
        for s in spans:
            check_eq(attrs(s).get("http.response.status_code"), 200, "burst span status code")
    else:
        check(by_kind["SERVER"] <= n and by_kind["CLIENT"] <= n,
              "more burst spans than requests: %s" % dict(by_kind))
        check(by_kind["SERVER"] < n or by_kind["CLIENT"] < n,
              "events dropped (%d) but every burst span is there" % dropped)


@test
def agent_rss_bounded_after_abuse():
    nginx, agent, prom = shared_setup()
    check_alive(agent, "at the end")
    rss = rss_kb(agent.pid)
    print("  agent RSS after the robustness tests: %.1f MB" % (rss / 1024.0), flush=True)
    check(0 < rss < RSS_LIMIT_KB, "agent RSS %d kB, limit %d kB" % (rss, RSS_LIMIT_KB))
    # and it still traces exactly
    codes, pid = curl(["http://127.0.0.1:%d/echo?final=1" % nginx.port] * 3)
    check_eq(codes, [200] * 3, "curl statuses")
    spans = agent.wait_for_spans(lambda s: on_port(nginx.port, "CLIENT")(s)
                                 and res(s).get("process.pid") == pid, 3)
    check_eq(len(spans), 3, "CLIENT spans of the final curl")
    agent.stop_and_check()
    nginx.stop()
    _shared.clear()


if __name__ == "__main__":
    try:
        rc = lib.run_tests()
    finally:
        if "nginx" in _shared:
            _shared["nginx"].stop()
    sys.exit(rc)
