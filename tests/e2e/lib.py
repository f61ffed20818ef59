"""lib.py — the end-to-end test framework: run the agent, collect its spans, a tiny test registry.

Each tests/e2e/test_*.py is a script that defines tests with @test and ends with
`sys.exit(run_tests())`. run_tests() prints `PASS name`, `FAIL name: reason` (with the agent's last
stderr lines) or `SKIP name: reason` per test and then exactly one summary line
`e2e: N passed, N failed[, N skipped]`.
Python 3 standard library only; run with /usr/bin/python3.
"""

import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from servers import free_port  # noqa: E402  (re-exported for the tests)

AGENT = os.environ.get("PERISCOPE_BIN") or os.path.join(REPO, os.environ.get("BUILD", "build"),
                                                        "periscope")
SHARED_PROTO = os.path.join(os.path.dirname(REPO), "shared", "otlp-proto")
CURL = "/usr/bin/curl"

__all__ = ["Agent", "Receiver", "Skip", "CheckFailed", "test", "skip", "run_tests", "free_port",
           "check", "check_eq", "check_span_name", "curl", "curl_config", "http_get",
           "parse_prom", "scrape", "attrs", "res",
           "require_agent", "shared_agent", "otlp_support", "AGENT", "REPO",
           "HERE", "SHARED_PROTO"]


class Skip(Exception):
    """Raised by a test that cannot run here; counted as skipped."""


class CheckFailed(AssertionError):
    pass


def skip(reason):
    raise Skip(reason)


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def check_eq(got, want, what):
    if got != want:
        raise CheckFailed("%s: got %r, want %r" % (what, got, want))


def check_span_name(span, what):
    """OTel HTTP span names: the method, or `METHOD ROUTE` when the span carries http.route."""
    method = attrs(span).get("http.request.method")
    route = attrs(span).get("http.route")
    want = [method] + (["%s %s" % (method, route)] if route else [])
    check(span.get("name") in want, "%s name %r, want one of %r" % (what, span.get("name"), want))


def attrs(span):
    return span.get("attributes") or {}


def res(span):
    return span.get("resource") or {}


_agents_in_test = []  # agents started by the running test, for their stderr on failure
_shared_agents = []  # agents shared by several tests of a file, stopped after the last one
_shared_used_in_test = []  # the shared agents the running test uses


class Agent:
    """build/periscope as a subprocess: its stdout spans and stderr log lines are collected in the
    background. Use as a context manager; the agent is killed on exit if the test did not stop it.
    By default it prints JSON spans and serves no Prometheus endpoint (other tests may hold
    9400)."""

    def __init__(self, args=(), env=None, print_json=True, prometheus=False, inherit_otel=False,
                 shared=False):
        argv = [AGENT]
        if print_json:
            argv.append("--print=json")
        if not prometheus and not any(a.startswith("--prometheus") for a in args):
            argv.append("--no-prometheus")
        argv.extend(args)
        full_env = {k: v for k, v in os.environ.items()
                    if inherit_otel or not k.startswith("OTEL_")}
        full_env.update(env or {})
        self.argv = argv
        self.spans = []
        self.stdout_other = []  # stdout lines that are not JSON spans
        self.stderr_lines = collections.deque(maxlen=2000)
        self.log_records = []  # stderr lines that parsed as JSON objects
        self.ready = threading.Event()
        self.returncode = None
        self.stop_seconds = None
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env, start_new_session=True)
        (_shared_agents if shared else _agents_in_test).append(self)
        self.shared = shared
        self._threads = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self._threads:
            t.start()

    @property
    def pid(self):
        return self.proc.pid

    def _read_stdout(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            obj = None
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except ValueError:
                    obj = None
            with self._cond:
                if isinstance(obj, dict) and obj.get("type") == "span":
                    obj["_seen_unix_nano"] = time.time_ns()
                    self.spans.append(obj)
                else:
                    self.stdout_other.append(line)
                self._cond.notify_all()

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            rec = None
            if line.startswith("{"):
                try:
                    rec = json.loads(line)
                except ValueError:
                    rec = None
            with self._cond:
                self.stderr_lines.append(line)
                if isinstance(rec, dict):
                    self.log_records.append(rec)
                    if rec.get("msg") == "ready":
                        self.ready.set()
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_ready(self, timeout=60.0):
        """Waits for the `"msg":"ready"` log line; raises with the agent's stderr if it does not
        come."""
        deadline = time.monotonic() + timeout
        while not self.ready.wait(0.1):
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the reader drain the last lines
                raise CheckFailed("agent exited with status %d before ready:\n%s"
                                  % (self.proc.returncode, self.stderr_tail(30)))
            if time.monotonic() > deadline:
                raise CheckFailed("agent not ready after %.0f s:\n%s" % (timeout,
                                                                          self.stderr_tail(30)))
        return self

    def stderr_tail(self, n=20):
        with self._cond:
            return "\n".join(list(self.stderr_lines)[-n:])

    def stopped_stat(self, name):
        """A count from the agent's last "stopped" log line (None when absent)."""
        with self._cond:
            lines = list(self.stderr_lines)
        for line in reversed(lines):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("msg") == "stopped":
                return rec.get(name)
        return None

    def snapshot(self, pred=None):
        with self._cond:
            return [s for s in self.spans if pred is None or pred(s)]

    def wait_for_spans(self, pred, count, timeout=15.0, settle=1.0):
        """Waits until at least count spans match pred, then `settle` seconds more so that surplus
        spans show up too, and returns every matching span (the caller checks the exact number)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [s for s in self.spans if pred(s)]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0 or self.proc.poll() is not None:
                    break
                self._cond.wait(min(left, 0.2))
        if settle > 0:
            time.sleep(settle)
        return self.snapshot(pred)

    def wait_for_stdout(self, pred, timeout=15.0):
        """Waits until a non-span stdout line (text mode) satisfies pred; returns it or None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.stdout_other:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self._cond.wait(min(left, 0.2))

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Sends sig, waits up to timeout; records returncode and how long the exit took."""
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
            self.stop_seconds = time.monotonic() - t0
        self.returncode = self.proc.returncode
        for t in self._threads:
            t.join(timeout=5)
        return self.returncode

    def stop_and_check(self, max_seconds=5.0):
        """Stops with SIGTERM and fails unless the agent exits 0 within max_seconds."""
        rc = self.stop()
        check(self.stop_seconds is not None and self.stop_seconds < max_seconds,
              "agent took %.1f s to exit after SIGTERM (limit %.0f s)"
              % (self.stop_seconds or -1, max_seconds))
        check_eq(rc, 0, "agent exit status after SIGTERM")

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.kill()
        for t in self._threads:
            t.join(timeout=5)


def curl(urls, headers=(), extra=(), timeout=30):
    """One curl process fetching urls in order (one keep-alive connection). Returns the list of
    HTTP status codes and the curl pid."""
    if isinstance(urls, str):
        urls = [urls]
    argv = [CURL, "-s", "-S", "--max-time", "20", "-w", "%{http_code}\\n"]
    for h in headers:
        argv += ["-H", h]
    argv += list(extra)
    for u in urls:
        argv += ["-o", "/dev/null", u]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=timeout)
    codes = [int(x) for x in out.decode().split()]
    if p.returncode != 0 and not codes:
        raise CheckFailed("curl failed (%d): %s" % (p.returncode, err.decode(errors="replace")))
    return codes, p.pid


def http_get(url, timeout=5.0):
    """GET url from this process; returns (status, body)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def curl_config(urls, parallel=0, extra=()):
    """One curl process fetching every url (keep-alive; --parallel N connections when parallel),
    from a -K config file. Returns (list of status codes, in completion order, and the curl pid)."""
    fd, path = tempfile.mkstemp(prefix="periscope-e2e-curl-", suffix=".cfg")
    try:
        with os.fdopen(fd, "w") as f:
            for u in urls:
                f.write('url = "%s"\noutput = "/dev/null"\n' % u)
        argv = [CURL, "-s", "-S", "--max-time", "60", "-w", "%{http_code}\\n", "-K", path]
        if parallel:
            argv += ["--parallel", "--parallel-max", str(parallel)]
        argv += list(extra)
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=120)
    finally:
        os.unlink(path)
    codes = [int(x) for x in out.decode().split()]
    check(p.returncode == 0, "curl exited %d: %s"
          % (p.returncode, err.decode(errors="replace")[:300]))
    check_eq(len(codes), len(urls), "curl answers")
    return codes, p.pid


# ---- the Prometheus endpoint

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def parse_prom(text):
    """Prometheus text → list of (name, labels dict, float value); fails on a malformed line."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        check(m is not None, "malformed Prometheus line: %r" % line)
        labels = {}
        body = m.group(2) or ""
        pos = 0
        while pos < len(body):
            lm = _LABEL.match(body, pos)
            check(lm is not None, "malformed labels in %r" % line)
            labels[lm.group(1)] = lm.group(2).replace('\\"', '"').replace("\\\\", "\\")
            pos = lm.end()
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def scrape(port):
    """The agent's /metrics text from 127.0.0.1:port."""
    status, body = http_get("http://127.0.0.1:%d/metrics" % port)
    check_eq(status, 200, "GET /metrics status")
    return body.decode("utf-8")


# ---- OTLP: the official protos (../shared), when present

OFFICIAL_TRACES = ("opentelemetry/proto/collector/trace/v1/trace_service.proto",
                   "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest")


def have_official_protos():
    return os.path.isfile(os.path.join(SHARED_PROTO, OFFICIAL_TRACES[0]))


RECEIVER_SCRIPT = os.environ.get("OTLP_RECEIVER") or os.path.join(HERE, "otlp_receiver.py")


class Receiver:
    """tests/e2e/otlp_receiver.py in its own process on 127.0.0.1:<free port> (or host); every
    POST body is stored (gunzipped) in a directory, one file per request."""

    def __init__(self, host="127.0.0.1"):
        import shutil
        import tempfile
        from servers import wait_listening
        self._rmtree = shutil.rmtree
        self.dir = tempfile.mkdtemp(prefix="periscope-e2e-otlp-")
        self.port = free_port()
        self.url = "http://%s:%d" % ("[%s]" % host if ":" in host else host, self.port)
        self._log = open(os.path.join(self.dir, "receiver.log"), "wb")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", RECEIVER_SCRIPT, "--port", str(self.port), "--host", host, "--dir",
             os.path.join(self.dir, "posts")], stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=self._log, start_new_session=True)
        try:
            wait_listening(self.port, proc=self.proc, host=host)
        except RuntimeError:
            self.close()
            raise

    @property
    def pid(self):
        return self.proc.pid

    @property
    def posts_dir(self):
        return os.path.join(self.dir, "posts")

    def posts(self, signal_name):
        """Bodies received for signal_name ("traces" or "metrics"), oldest first."""
        try:
            names = sorted(n for n in os.listdir(self.posts_dir)
                           if n.startswith(signal_name + "-") and n.endswith(".pb"))
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            with open(os.path.join(self.posts_dir, n), "rb") as f:
                out.append(f.read())
        return out

    def trace_posts(self):
        return self.posts("traces")

    def control(self, mode):
        """Switches the receiver's answers: ok, 503, 429, 400, 500 or slow."""
        req = urllib.request.Request("%s/control?mode=%s" % (self.url, mode), data=b"",
                                     method="POST")
        with urllib.request.urlopen(req, timeout=5) as r:
            check_eq(r.status, 200, "receiver control answer")

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        self._rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Otlp:
    """What the OTLP tests use: Receiver, and the spans it got, decoded."""

    Receiver = Receiver

    def all_spans(self, rcv):
        """Every span the receiver got, shaped like the agent's JSON span lines, decoded by
        otlp_receiver.decode_dir (official protos, else the repository's proto/otlp.proto)."""
        import otlp_receiver
        spans = otlp_receiver.decode_dir(rcv.posts_dir, "traces") if os.path.isdir(
            rcv.posts_dir) else []
        check(spans is not None, "otlp_receiver.decode_dir could not decode")
        for sp in spans:
            sp["kind"] = sp["kind"].replace("SPAN_KIND_", "")
            sp["status"] = sp.pop("status_code", "STATUS_CODE_UNSET").replace(
                "STATUS_CODE_", "")
        return spans

    def wait_spans(self, rcv, pred, count, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            got = [s for s in self.all_spans(rcv) if pred(s)]
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.25)


def otlp_support(official_only=False):
    """The OTLP receiver and decoder for a test; skips the test when the receiver script is missing,
    or (official_only) when the official protos in ../shared are. Without them, decoding uses the
    repository's own wire-compatible proto/otlp.proto: every count is still checked, only the
    decoding by an independent schema is skipped (said once per file)."""
    global _said_no_official
    if not os.path.isfile(RECEIVER_SCRIPT):
        raise Skip("no OTLP receiver (%s)" % RECEIVER_SCRIPT)
    official = have_official_protos()
    if official_only and not official:
        raise Skip("no official OTLP protos in %s" % SHARED_PROTO)
    if not official and not _said_no_official:
        print("  note: no official OTLP protos in %s: OTLP bodies are decoded with proto/otlp.proto"
              % SHARED_PROTO, flush=True)
        _said_no_official = True
    return _Otlp()


_said_no_official = False


_shared_by_key = {}


def shared_agent(args=(), env=None):
    """One agent per (args, env) for all the tests of a file that use it; started on first use and
    stopped after the last test. Fails if it died since."""
    key = (tuple(args), tuple(sorted((env or {}).items())))
    a = _shared_by_key.get(key)
    if a is not None and a.proc.poll() is not None:
        raise CheckFailed("the shared agent exited with status %d:\n%s"
                          % (a.proc.returncode, a.stderr_tail(20)))
    if a is None:
        require_agent()
        a = Agent(args, env, shared=True)
        _shared_by_key[key] = a
        _shared_used_in_test.append(a)
        a.wait_ready()
    elif a not in _shared_used_in_test:
        _shared_used_in_test.append(a)
    return a


_tests = []


def test(fn):
    """Registers fn as a test of this file, run in definition order."""
    _tests.append(fn)
    return fn


def run_tests(argv=None):
    """Runs the registered tests (or those named on the command line); returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    chosen = [t for t in _tests if not argv or t.__name__ in argv]
    passed = failed = skipped = 0
    for fn in chosen:
        name = fn.__name__
        del _agents_in_test[:]
        del _shared_used_in_test[:]
        try:
            fn()
        except Skip as e:
            skipped += 1
            print("SKIP %s: %s" % (name, e), flush=True)
        except Exception as e:  # noqa: BLE001 — every failure is reported, none stops the file
            failed += 1
            reason = str(e) if isinstance(e, AssertionError) and str(e) else \
                "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip()
            print("FAIL %s: %s" % (name, reason), flush=True)
            for a in _agents_in_test + _shared_used_in_test:
                tail = a.stderr_tail(15)
                if tail:
                    print("  agent %d stderr (last lines):" % a.pid)
                    print("\n".join("    " + line for line in tail.splitlines()), flush=True)
        else:
            passed += 1
            print("PASS %s" % name, flush=True)
        finally:
            for a in _agents_in_test:
                if a.proc.poll() is None:
                    a.kill()
            del _agents_in_test[:]
    for a in _shared_agents:
        if a.proc.poll() is None:
            a.kill()
    del _shared_agents[:]
    _shared_by_key.clear()
    line = "e2e: %d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line, flush=True)
    return 1 if failed else 0


def require_agent():
    """Fails the calling test when build/periscope is missing; skips it when we are not root."""
    if not os.access(AGENT, os.X_OK):
        raise CheckFailed("%s is not built (run make)" % AGENT)
    if os.geteuid() != 0:
        raise Skip("needs root")
