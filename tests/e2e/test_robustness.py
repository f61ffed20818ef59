#!/usr/bin/python3
"""test_robustness.py — end-to-end: the agent under failure and hostile conditions.

OTLP side: the endpoint is down at start and comes up later (queued spans are delivered), answers
503 + Retry-After then 200 (everything delivered once, the retries counted on /metrics), answers
400 (the batch is dropped and counted, the agent keeps exporting), takes 5 s per request (tracing
goes on meanwhile, everything arrives), answers 429/502/504 + Retry-After (retried, delivered once)
and 500 (not retryable per the OTLP/HTTP spec: dropped and counted), goes down mid-run and comes
back on the same port (every printed span delivered exactly once). Traced side: a server killed
with SIGKILL while a client waits, a ring-buffer overflow (the smallest --ringbuf-size, 16 KB
captures, wrk -c64 with 8 KB headers and bodies), an endless chunked request body, hostile bytes on
a traced server port (random bytes, a 1 MB header line, a slowloris request, binary junk), a burst
of 2000 short connections, ~10,000 new connections per second for 3 s; after all of it the agent
is alive, valid requests give exact spans, and its RSS stays below a bound.

Each test filters spans by the port of the server it started (and by pid), so other traffic on
the machine does not disturb the counts.
"""

import collections
import gzip
import http.server
import os
import random
import re
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


class ScriptedReceiver:
    """An OTLP/HTTP receiver in this process whose answers to POST /v1/traces follow a script:
    each post takes the next (status, headers) of `answers` (then `default`). Every trace body is
    kept (gunzipped): those answered 2xx in posts_dir (decoded like lib.Receiver's), the others in
    rejected_dir(status); `log` is [(monotonic time, path, status, file)]. /v1/metrics is
    answered 200."""

    def __init__(self, answers=(), default=(200, {})):
        self.dir = tempfile.mkdtemp(prefix="periscope-e2e-otlp-script-")
        self.posts_dir = os.path.join(self.dir, "posts")
        os.makedirs(self.posts_dir)
        self.lock = threading.Lock()
        self.answers = list(answers)
        self.default = default
        self.log = []
        self._n = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    body = gzip.decompress(body)
                status, extra = 200, {}
                name = None
                with outer.lock:
                    if self.path == "/v1/traces":
                        status, extra = outer.answers.pop(0) if outer.answers else outer.default
                        outer._n += 1
                        name = "traces-%06d.pb" % outer._n
                        d = outer.posts_dir if 200 <= status < 300 else \
                            outer.rejected_dir(status)
                        os.makedirs(d, exist_ok=True)
                        with open(os.path.join(d, name + ".tmp"), "wb") as f:
                            f.write(body)
                        os.rename(os.path.join(d, name + ".tmp"), os.path.join(d, name))
                    outer.log.append((time.monotonic(), self.path, status, name))
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def rejected_dir(self, status):
        return os.path.join(self.dir, "rejected-%d" % status)

    def script(self, answers=(), default=None):
        with self.lock:
            self.answers = list(answers)
            if default is not None:
                self.default = default

    def trace_log(self):
        with self.lock:
            return [x for x in self.log if x[1] == "/v1/traces"]

    def trace_posts(self):  # for lib's own-proto decoding path
        return DirPosts(self.posts_dir).trace_posts()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DirPosts:
    """A directory of traces-NNNNNN.pb bodies, shaped for lib's _Otlp.all_spans."""

    def __init__(self, d):
        self.posts_dir = d

    def trace_posts(self):
        out = []
        for n in sorted(os.listdir(self.posts_dir)):
            if n.startswith("traces-") and n.endswith(".pb"):
                with open(os.path.join(self.posts_dir, n), "rb") as f:
                    out.append(f.read())
        return out


def ids_once(spans, what):
    """The span ids of spans; fails if one occurs more than once."""
    c = collections.Counter(s["span_id"] for s in spans)
    dup = {k: v for k, v in c.items() if v > 1}
    check(not dup, "%s: span ids delivered more than once: %r" % (what, dup))
    return set(c)


@test
def otlp_slow_endpoint_tracing_goes_on():
    otlp = lib.otlp_support()
    lib.require_agent()
    prom = free_port()
    with PortReceiver(free_port(), mode="slow") as rcv, Nginx() as nginx, \
            Agent(args=["--port", str(nginx.port), "--prometheus", "127.0.0.1:%d" % prom],
                  env=otlp_env(rcv.url)) as agent:
        agent.wait_ready()
        base = "http://127.0.0.1:%d" % nginx.port
        codes, _ = curl([base + "/echo"] * 2)
        check_eq(codes, [200] * 2, "curl statuses (first)")
        first = agent.wait_for_spans(on_port(nginx.port), 4, settle=0.5)
        check_eq(len(first), 4, "spans printed before the slow post")
        time.sleep(0.5)  # the first post (200 ms schedule delay) is now stuck in the 5 s answer
        t_slow = time.monotonic()
        during = []
        for i in range(3):  # requests while the receiver is slow: printed at once
            t0 = time.time_ns()
            codes, _ = curl([base + "/static/a.txt?during=%d" % i, base + "/missing"])
            check_eq(codes, [200, 404], "curl statuses while the endpoint is slow")
            want = 4 + 4 * (i + 1)
            got = agent.wait_for_spans(on_port(nginx.port), want, timeout=3, settle=0)
            check_eq(len(got), want, "spans printed while the endpoint is slow (round %d)" % i)
            new = [s for s in got if s["span_id"] not in {x["span_id"] for x in first + during}]
            for s in new:
                lag = (s["_seen_unix_nano"] - s["end_time_unix_nano"]) / 1e9
                check(lag < 1.5, "span printed %.1f s after its end while the OTLP endpoint is "
                      "slow: %r" % (lag, s))
                check(s["_seen_unix_nano"] >= t0, "span seen before its request: %r" % s)
            during += new
            time.sleep(0.5)
        took = time.monotonic() - t_slow
        check(took < 4.5, "the requests during the slow post took %.1f s" % took)
        answered = [l for l in rcv.request_log() if l.startswith("/v1/traces")]
        check_eq(answered, [], "trace posts answered while the tracing went on (each takes 5 s)")
        printed = first + during
        check_eq(len(printed), 16, "spans printed in all")
        otlp.wait_spans(rcv, on_port(nginx.port), 16, timeout=25)
        time.sleep(0.5)
        got = [s for s in otlp.all_spans(rcv) if on_port(nginx.port)(s)]
        check_eq(ids_once(got, "slow endpoint"), {s["span_id"] for s in printed},
                 "span ids delivered by the slow endpoint (printed ones)")
        check_eq(prom_sum(prom, "periscope_spans_dropped_total"), 0.0,
                 "periscope_spans_dropped_total with a slow endpoint")
        check_eq(prom_sum(prom, "periscope_export_failures_total"), 0.0,
                 "periscope_export_failures_total with a 5 s endpoint (timeout is 10 s)")
        check_alive(agent, "with a slow endpoint")
        rcv.control("ok")  # so the final metric flush at exit is quick
        agent.stop_and_check()


@test
def otlp_429_502_504_retried_500_dropped():
    otlp = lib.otlp_support()
    lib.require_agent()
    prom = free_port()
    ra = {"Retry-After": "1"}
    with ScriptedReceiver([(429, ra), (502, ra), (504, ra)]) as rcv, Nginx() as nginx, \
            Agent(args=["--port", str(nginx.port), "--prometheus", "127.0.0.1:%d" % prom],
                  env=otlp_env(rcv.url)) as agent:
        agent.wait_ready()
        base = "http://127.0.0.1:%d" % nginx.port
        # phase 1: 429, 502, 504 (each with Retry-After: 1), then 200
        codes, _ = curl([base + "/echo"] * 3)
        check_eq(codes, [200] * 3, "curl statuses (phase 1)")
        p1 = agent.wait_for_spans(on_port(nginx.port), 6)
        check_eq(len(p1), 6, "spans printed in phase 1")
        otlp.wait_spans(rcv, on_port(nginx.port), 6, timeout=15)
        time.sleep(0.5)
        log = rcv.trace_log()
        check_eq([x[2] for x in log][:4], [429, 502, 504, 200], "answers to the trace posts")
        gaps = [b[0] - a[0] for a, b in zip(log[:4], log[1:4])]
        check(all(0.9 <= g <= 3.0 for g in gaps), "gaps between retries %r (Retry-After: 1)"
              % gaps)
        got = [s for s in otlp.all_spans(rcv) if on_port(nginx.port)(s)]
        check_eq(ids_once(got, "after 429/502/504"), {s["span_id"] for s in p1},
                 "span ids delivered after 429, 502, 504")
        check_eq(int(prom_sum(prom, "periscope_export_retries_total")), 3,
                 "periscope_export_retries_total after 429, 502, 504")
        check_eq(prom_sum(prom, "periscope_spans_dropped_total"), 0.0,
                 "periscope_spans_dropped_total after retried answers")
        # phase 2: 500 → not retryable (OTLP/HTTP spec): dropped once, counted
        rcv.script([], default=(500, {}))
        n_before = len(rcv.trace_log())
        codes, _ = curl([base + "/missing"] * 2)
        check_eq(codes, [404] * 2, "curl statuses (phase 2)")
        p2 = [s for s in agent.wait_for_spans(on_port(nginx.port), 10)
              if s["span_id"] not in {x["span_id"] for x in p1}]
        check_eq(len(p2), 4, "spans printed in phase 2")
        dropped = wait_until(lambda: prom_sum(prom, "periscope_spans_dropped_total",
                                              'reason="export_failed"') >= 4, 10)
        time.sleep(2.5)  # a retry (1 s initial backoff) would show up by now
        log = rcv.trace_log()[n_before:]
        check(dropped, "periscope_spans_dropped_total{reason=export_failed} is %r, want 4; "
              "answers %r" % (prom_values(prom, "periscope_spans_dropped_total"),
                              [x[2] for x in log]))
        check_eq(prom_sum(prom, "periscope_spans_dropped_total", 'reason="export_failed"'), 4.0,
                 "spans dropped after 500 answers")
        check(log and all(x[2] == 500 for x in log), "answers in phase 2: %r" % log)
        rejected = [s for s in otlp.all_spans(DirPosts(rcv.rejected_dir(500)))
                    if on_port(nginx.port)(s)]
        check_eq(ids_once(rejected, "posts answered 500 (a 500 must not be retried)"),
                 {s["span_id"] for s in p2}, "span ids in the posts answered 500")
        check_eq(int(prom_sum(prom, "periscope_export_retries_total")), 3,
                 "periscope_export_retries_total after a 500 (not retryable)")
        check_eq(int(prom_sum(prom, "periscope_export_failures_total")), 3 + len(log),
                 "periscope_export_failures_total (3 retried answers + the 500s)")
        # phase 3: 200 again; only the new spans arrive
        rcv.script([], default=(200, {}))
        codes, _ = curl([base + "/fail"])
        check_eq(codes, [500], "curl statuses (phase 3)")
        p3 = [s for s in agent.wait_for_spans(on_port(nginx.port), 12)
              if s["span_id"] not in {x["span_id"] for x in p1 + p2}]
        check_eq(len(p3), 2, "spans printed in phase 3")
        otlp.wait_spans(rcv, on_port(nginx.port), 8, timeout=10)
        time.sleep(0.5)
        got = [s for s in otlp.all_spans(rcv) if on_port(nginx.port)(s)]
        check_eq(ids_once(got, "all phases"), {s["span_id"] for s in p1 + p3},
                 "span ids accepted (phases 1 and 3; the 500 batch is gone)")
        check_alive(agent, "after 429/502/504/500")
        agent.stop_and_check()


@test
def otlp_endpoint_down_mid_run_then_back():
    otlp = lib.otlp_support()
    lib.require_agent()
    port = free_port()
    prom = free_port()
    rcv1 = PortReceiver(port)
    rcv2 = None
    saved = DirPosts(tempfile.mkdtemp(prefix="periscope-e2e-otlp-saved-"))
    try:
        with Nginx() as nginx, \
                Agent(args=["--port", str(nginx.port), "--prometheus", "127.0.0.1:%d" % prom],
                      env=otlp_env("http://127.0.0.1:%d" % port)) as agent:
            agent.wait_ready()
            base = "http://127.0.0.1:%d" % nginx.port
            codes, _ = curl([base + "/echo"] * 2)
            check_eq(codes, [200] * 2, "curl statuses (receiver up)")
            otlp.wait_spans(rcv1, on_port(nginx.port), 4, timeout=10)
            time.sleep(0.7)  # nothing in flight when it goes down
            before = [s for s in otlp.all_spans(rcv1) if on_port(nginx.port)(s)]
            check_eq(len(before), 4, "spans delivered before the receiver stopped")
            rcv1.proc.send_signal(signal.SIGKILL)
            rcv1.proc.wait()
            for n in os.listdir(rcv1.posts_dir):  # keep what it got; close() removes its dir
                os.rename(os.path.join(rcv1.posts_dir, n), os.path.join(saved.posts_dir, n))
            rcv1.close()
            codes, _ = curl([base + "/missing"] * 3)
            check_eq(codes, [404] * 3, "curl statuses (receiver down)")
            agent.wait_for_spans(on_port(nginx.port), 10, settle=0)
            time.sleep(2.0)  # failed posts (connection refused) and backoff
            check_alive(agent, "with its endpoint gone")
            rcv2 = PortReceiver(port)
            otlp.wait_spans(rcv2, on_port(nginx.port), 6, timeout=20)
            codes, _ = curl([base + "/fail"])
            check_eq(codes, [500], "curl statuses (receiver back)")
            printed = agent.wait_for_spans(on_port(nginx.port), 12)
            check_eq(len(printed), 12, "spans printed in all")
            otlp.wait_spans(rcv2, on_port(nginx.port), 8, timeout=10)
            time.sleep(0.7)
            after = [s for s in otlp.all_spans(rcv2) if on_port(nginx.port)(s)]
            saved_spans = [s for s in otlp.all_spans(saved) if on_port(nginx.port)(s)]
            check_eq(ids_once(saved_spans + after, "receiver down and back"),
                     {s["span_id"] for s in printed},
                     "span ids delivered (first receiver + restarted one) vs printed")
            check_eq(prom_sum(prom, "periscope_spans_dropped_total"), 0.0,
                     "periscope_spans_dropped_total after a short outage")
            check(prom_sum(prom, "periscope_export_retries_total") >= 1,
                  "no retry counted while the endpoint was down")
            agent.stop_and_check()
    finally:
        if rcv1.proc.poll() is None:
            rcv1.close()
        if rcv2 is not None:
            rcv2.close()
        import shutil
        shutil.rmtree(saved.posts_dir, ignore_errors=True)


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


# ---- ring buffer overflow, endless chunked body: an agent each

WRK = "/usr/bin/wrk"

STORM_LUA = r"""
local pad = string.rep("p", 8000)
local body = string.rep("b", 8192)
local reqs = {}
local n = 0
init = function(args)
  reqs[1] = wrk.format("GET", "/echo", {["X-Pad"] = pad})
  reqs[2] = wrk.format("GET", "/missing", {["X-Pad"] = pad})
  reqs[3] = wrk.format("POST", "/echo", {["Content-Type"] = "application/octet-stream"}, body)
  reqs[4] = wrk.format("GET", "/fail", {["X-Pad"] = pad})
  reqs[5] = wrk.format("GET", "/static/big.bin")
end
request = function()
  n = n + 1
  return reqs[(n % 5) + 1]
end
"""


def run_wrk(argv, timeout=60):
    """Runs wrk; returns (requests completed, its output)."""
    p = subprocess.run([WRK] + argv, capture_output=True, text=True, timeout=timeout)
    check(p.returncode == 0, "wrk failed (%d): %s" % (p.returncode, p.stderr[-500:]))
    m = re.search(r"(\d+) requests in", p.stdout)
    check(m, "no request count in wrk's output: %r" % p.stdout)
    return int(m.group(1)), p.stdout


@test
def ringbuf_overflow_counted_no_wrong_spans():
    # the per-CPU rings (the default): 64 KiB each, the smallest
    ring_overflow(["--ringbuf-size", "65536"], per_cpu=True)


@test
def shared_ringbuf_overflow_counted_no_wrong_spans():
    ring_overflow(["--shared-ringbuf", "--ringbuf-size", "65536"], per_cpu=False)


@test
def syscall_data_overflow_counted_no_wrong_spans():
    """The same storm with the data taken at the syscall exits (--syscall-data)."""
    ring_overflow(["--syscall-data", "--ringbuf-size", "65536"], per_cpu=True)


def ring_overflow(ring_args, per_cpu):
    lib.require_agent()
    check(os.access(WRK, os.X_OK), "wrk is not installed")
    prom = free_port()
    with Nginx() as nginx, \
            Agent(args=["--port", str(nginx.port), "--prometheus", "127.0.0.1:%d" % prom,
                        "--capture-size", "16384"] + ring_args) as agent:
        agent.wait_ready()
        port = nginx.port
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
            lua.write(STORM_LUA)
            lua.flush()
            nreq, out = run_wrk(["-t2", "-c64", "-d2s", "-s", lua.name,
                                 "http://127.0.0.1:%d/" % port])
        time.sleep(2.0)  # the agent drains what reached its ring buffer
        check_alive(agent, "after a ring-buffer overflow")
        log = nginx.requests()
        logged = collections.Counter((m, u, st) for m, u, st, _ in log)
        storm = agent.snapshot(on_port(port))
        by_kind = collections.Counter(s["kind"] for s in storm)
        # the first scrape after the storm reports the ring buffer's fill peak (then resets it)
        usage = prom_sum(prom, "periscope_ringbuf_usage_bytes")
        size = prom_sum(prom, "periscope_ringbuf_size_bytes")
        drops = {k: v for k, v in prom_values(prom, "periscope_events_dropped_total").items()
                 if v}
        full = prom_sum(prom, "periscope_events_dropped_total", 'reason="ringbuf_full"')
        print("  storm: wrk %d requests, nginx logged %d %s; spans %s; drops %s; "
              "ring buffer peak %d of %d bytes"
              % (nreq, len(log), dict(logged), dict(by_kind), drops, usage, size), flush=True)
        check(nreq >= 1000, "wrk made only %d requests: %s" % (nreq, out))
        check(full > 0, "periscope_events_dropped_total{reason=\"ringbuf_full\"} is 0 after %d "
              "large requests into a 64 KiB ring buffer (drops %r)" % (nreq, drops))
        if per_cpu:
            # one ring per CPU, each of 64 KiB: one CPU's ring overflowed
            ncpus = os.cpu_count()
            check_eq(size, 65536 * ncpus, "periscope_ringbuf_size_bytes (%d CPUs)" % ncpus)
            check(65536 / 2 < usage <= size, "periscope_ringbuf_usage_bytes %r after an "
                  "overflow of 64 KiB rings" % usage)
        else:
            check_eq(size, 65536, "periscope_ringbuf_size_bytes")
            check(size / 2 < usage <= size, "periscope_ringbuf_usage_bytes %r after an overflow "
                  "of a %r-byte ring buffer" % (usage, size))
        # checked last, so that a failure here still lets the rest be measured
        bad = collections.Counter((s["kind"],) + server_key(s) for s in storm
                                  if server_key(s) not in logged)
        for kind in ("SERVER", "CLIENT"):
            got = collections.Counter(server_key(s) for s in storm if s["kind"] == kind)
            over = {k: (v, logged[k]) for k, v in got.items() if k in logged and v > logged[k]}
            check(not over, "more %s spans than nginx log lines for (key: (spans, log lines)) %s"
                  % (kind, over))
        check_eq(set(by_kind) - {"SERVER", "CLIENT"}, set(), "span kinds of the storm")
        # valid requests after the storm are traced exactly (paths the storm did not use)
        seen = {s["span_id"] for s in storm}
        base = "http://127.0.0.1:%d" % port
        codes, pid = curl([base + "/redirect"] * 3 + [base + "/static/a.txt?after=%d" % i
                                                      for i in range(2)])
        check_eq(codes, [302] * 3 + [200] * 2, "curl statuses after the storm")
        after = lambda s: s["span_id"] not in seen and on_port(port)(s)  # noqa: E731
        spans = agent.wait_for_spans(after, 10)
        want = collections.Counter([("GET", "/redirect", 302)] * 3 +
                                   [("GET", "/static/a.txt", 200)] * 2)
        for kind in ("SERVER", "CLIENT"):
            check_eq(collections.Counter(server_key(s) for s in spans if s["kind"] == kind),
                     want, "%s spans after the storm" % kind)
        check_eq({res(s).get("process.pid") for s in spans if s["kind"] == "CLIENT"}, {pid},
                 "pid of the CLIENT spans after the storm")
        check(not bad, "%d of %d storm spans pair a request with another request's status (their"
              " (kind, method, path, status) was never logged by nginx): %s (nginx logged %s)"
              % (sum(bad.values()), len(storm), dict(bad), dict(logged)))
        agent.stop_and_check()


class Sink:
    """A TCP server in this process that reads and discards whatever it is sent, never
    answering (a request whose body never ends is never complete)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = 0
        self._stop = False
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._drain, args=(c,), daemon=True)
            self._threads.append(t)
            t.start()

    def _drain(self, c):
        with c:
            while True:
                try:
                    d = c.recv(1 << 16)
                except OSError:
                    return
                if not d:
                    return
                self.received += len(d)

    def close(self):
        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def endless_chunked(port, path, seconds, chunk=16384, out=None):
    """POST path with Transfer-Encoding: chunked, sends chunks for `seconds`, never the last
    one; then closes. Stores the bytes sent in out[path]."""
    data = b"%x\r\n" % chunk + b"c" * chunk + b"\r\n"
    sent = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n" % path.encode())
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                s.sendall(data)
                sent += len(data)
                time.sleep(0.0005)
    except OSError:
        pass
    if out is not None:
        out[path] = sent


@test
def endless_chunked_body_bounded():
    lib.require_agent()
    sink = Sink()
    try:
        with Nginx() as nginx, \
                Agent(args=["--port", str(nginx.port), "--port", str(sink.port),
                            "--capture-size", "16384"]) as agent:
            agent.wait_ready()
            rss0 = rss_kb(agent.pid)
            sent = {}
            ts = [threading.Thread(target=endless_chunked, args=(p, path, 5.0),
                                   kwargs={"out": sent})
                  for p, path in ((nginx.port, "/echo"), (sink.port, "/sink"))]
            for t in ts:
                t.start()
            peak = rss0
            while any(t.is_alive() for t in ts):
                peak = max(peak, rss_kb(agent.pid))
                time.sleep(0.2)
            for t in ts:
                t.join()
            time.sleep(1.0)
            check_alive(agent, "after endless chunked bodies")
            peak = max(peak, rss_kb(agent.pid))
            print("  endless chunked: sent %s bytes (sink read %d); agent RSS %.1f MB before, "
                  "peak %.1f MB" % (sent, sink.received, rss0 / 1024.0, peak / 1024.0),
                  flush=True)
            check(sent.get("/echo", 0) > (8 << 20) and sent.get("/sink", 0) > (8 << 20),
                  "the chunked senders sent too little to matter: %r" % sent)
            check(peak < 100 * 1024, "agent RSS peaked at %.1f MB during endless chunked bodies "
                  "(limit 100 MB)" % (peak / 1024.0))
            seen = {s["span_id"] for s in agent.snapshot()}
            base = "http://127.0.0.1:%d" % nginx.port
            codes, pid = curl([base + "/static/a.txt", base + "/missing", base + "/fail"])
            check_eq(codes, [200, 404, 500], "curl statuses after the endless bodies")
            spans = agent.wait_for_spans(lambda s: s["span_id"] not in seen
                                         and on_port(nginx.port)(s), 6)
            want = collections.Counter([("GET", "/static/a.txt", 200), ("GET", "/missing", 404),
                                        ("GET", "/fail", 500)])
            for kind in ("SERVER", "CLIENT"):
                check_eq(collections.Counter(server_key(s) for s in spans
                                             if s["kind"] == kind),
                         want, "%s spans after the endless bodies" % kind)
            # the unfinished request to the sink never got an answer: no span may claim one
            for s in agent.snapshot(on_port(sink.port)):
                check(attrs(s).get("http.response.status_code") in (None, 0),
                      "span with a response status for a request never answered: %r" % s)
            agent.stop_and_check()
    finally:
        sink.close()


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
def ten_thousand_connections_per_second():
    nginx, agent, prom = shared_setup()
    check(os.access(WRK, os.X_OK), "wrk is not installed")
    port = nginx.port
    before = len(nginx.log_lines())
    dropped_before = events_dropped(prom)
    seen = {s["span_id"] for s in agent.snapshot()}
    t0 = time.monotonic()
    # Connection: close makes wrk open a new connection for every request
    nreq, out = run_wrk(["-t2", "-c32", "-d3s", "-H", "Connection: close",
                         "http://127.0.0.1:%d/redirect" % port])
    took = time.monotonic() - t0
    time.sleep(0.3)  # nginx writes a log line as each request ends; wrk has ended
    log = [r for r in nginx.requests()[before:] if r[1] == "/redirect"]
    check_eq(collections.Counter((m, u, st) for m, u, st, _ in log),
             collections.Counter({("GET", "/redirect", 302): len(log)}), "nginx log of the run")
    check(nreq <= len(log) <= nreq + 64, "wrk counted %d requests, nginx logged %d"
          % (nreq, len(log)))
    pids = nginx.pids()
    new = lambda s: (s["span_id"] not in seen and on_port(port)(s)  # noqa: E731
                     and attrs(s).get("url.path") == "/redirect")
    spans = agent.wait_for_spans(new, 2 * len(log), timeout=30, settle=2.0)
    check_alive(agent, "after %d connections in %.1f s" % (len(log), took))
    by_kind = collections.Counter(s["kind"] for s in spans)
    dropped = events_dropped(prom) - dropped_before
    drops = {k: v for k, v in prom_values(prom, "periscope_events_dropped_total").items() if v}
    print("  %d new connections in %.1f s (%.0f/s; wrk %s); spans %s; events dropped %d %s"
          % (len(log), took, len(log) / took, nreq, dict(by_kind), dropped, drops), flush=True)
    check(len(log) / took >= 3000, "only %.0f connections per second were made (%s)"
          % (len(log) / took, out))
    # wrk stops after 3 s: requests still in flight on its 32 connections then are CLIENT
    # spans that failed (no status; error.type timeout: wrk closed it, connection_closed:
    # nginx had answered and closed and wrk never read the answer, or process_exit: wrk
    # exited, leaving its sockets to the kernel, before the agent saw nginx's answer)
    abandoned = [s for s in spans if s["kind"] == "CLIENT" and server_key(s)[2] is None]
    for s in abandoned:
        check(attrs(s).get("error.type") in ("timeout", "connection_closed", "process_exit"),
              "error.type of an abandoned request: %r" % attrs(s).get("error.type"))
    check(len(abandoned) <= 32, "%d abandoned CLIENT requests, wrk had 32 connections"
          % len(abandoned))
    for s in spans:
        if s not in abandoned:
            check_eq(server_key(s), ("GET", "/redirect", 302), "(method, path, status) of a span")
    check(all(res(s).get("process.pid") in pids for s in spans if s["kind"] == "SERVER"),
          "SERVER spans of /redirect from a process other than nginx")
    if dropped == 0:
        # SERVER: one per nginx log line; CLIENT: one per answer wrk read (it counted nreq; the
        # few still in flight when its 3 s ended were answered by nginx but maybe never read)
        answered = by_kind["CLIENT"] - len(abandoned)
        check_eq(by_kind["SERVER"], len(log), "SERVER spans vs nginx log lines (no drops)")
        check(nreq <= answered <= len(log),
              "CLIENT spans answered %d, want from wrk's count %d to nginx's %d (no drops)"
              % (answered, nreq, len(log)))
        check_eq(set(by_kind), {"SERVER", "CLIENT"}, "span kinds")
    else:
        check(by_kind["SERVER"] <= len(log) and by_kind["CLIENT"] <= len(log),
              "more spans than nginx log lines (%d): %s" % (len(log), dict(by_kind)))


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
