#!/usr/bin/python3
"""test_go_tls.py — end-to-end: Go's crypto/tls read in plaintext (issue 15).

Go does not use OpenSSL: the agent finds (*crypto/tls.Conn).Write and .Read in a Go executable's
pclntab (stripped and PIE builds too), puts uprobes at their entry and at every RET instruction,
and ties the plaintext to its socket through the tls.Conn → netFD → Sysfd chain. These tests run a
Go net/http HTTPS server and client (tests/e2e/apps/gotls, built here with the Debian toolchain,
standard library only) as a default build, `-ldflags='-s -w'` and `-buildmode=pie -ldflags='-s
-w'`, and compare the agent's spans with the server's own request log and the client's own count
(every response checked by the client). Also: programs started before the agent; curl → Go
HTTPS front → Go HTTPS back → Redis as one trace; Debian's stripped prometheus scraping an HTTPS
target; a binary whose Go version the offsets table does not know (left alone, one log line);
--no-tls. HTTP/1.1 is forced on both sides (the HTTP/2 parser is another issue's): the h2
variants run only once the agent recognises HTTP/2 (user/parsers/protocol.c has an http2 entry).
"""

import atexit
import collections
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chain  # noqa: E402
import lib  # noqa: E402
from lib import attrs, check, check_eq, res, test  # noqa: E402
from servers import free_port, wait_listening  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
APP_SRC = os.path.join(HERE, "apps", "gotls")
APP_DIR = os.path.join(chain.BUILD_DIR, "gotls")
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
VARIANTS = {  # name: go build flags
    "default": [],
    "stripped": ["-ldflags=-s -w"],
    "pie": ["-buildmode=pie", "-ldflags=-s -w"],
}

_tmpdirs = []


@atexit.register
def _cleanup():
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


def _tmpdir(prefix):
    d = tempfile.mkdtemp(prefix="periscope-e2e-gotls-%s-" % prefix)
    os.chmod(d, 0o755)
    _tmpdirs.append(d)
    return d


def have_http2():
    """Does the agent parse HTTP/2 yet (an http2 entry in the protocol table)?"""
    try:
        with open(os.path.join(REPO, "user", "parsers", "protocol.c")) as f:
            return "http2" in f.read().lower()
    except OSError:
        return False


def go_tool():
    return shutil.which("go") or next((p for p in ("/usr/lib/go/bin/go", "/usr/bin/go")
                                       if os.access(p, os.X_OK)), None)


def build(variant):
    """The gotls app built as variant with the local toolchain (cached)."""
    go = go_tool()
    if not go:
        raise lib.Skip("go not found (apt-get install golang-go)")
    out = os.path.join(APP_DIR, variant)
    srcs = glob.glob(os.path.join(APP_SRC, "*"))
    if os.path.exists(out) and max(os.path.getmtime(p) for p in srcs) < os.path.getmtime(out):
        return out
    os.makedirs(APP_DIR, exist_ok=True)
    env = dict(os.environ, GOCACHE=os.path.join(APP_DIR, "cache"), HOME=APP_DIR,
               GOPATH=os.path.join(APP_DIR, "gopath"), GOPROXY="off", GOFLAGS="",
               GO111MODULE="on", CGO_ENABLED="0", GOTOOLCHAIN="local")
    p = subprocess.run([go, "build", "-trimpath"] + VARIANTS[variant] + ["-o", out + ".tmp", "."],
                       cwd=APP_SRC, env=env, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise lib.CheckFailed("go build %s failed: %s" % (variant, (p.stdout + p.stderr)[-1500:]))
    os.replace(out + ".tmp", out)
    return out


_CERT = None


def cert_pair():
    global _CERT
    if _CERT is None:
        d = _tmpdir("cert")
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        p = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                            key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise lib.CheckFailed("openssl req failed: %s" % p.stderr[-500:])
        os.chmod(key, 0o644)
        _CERT = (cert, key)
    return _CERT


class GoServer:
    """gotls server on a free port; its stdout is its request log."""

    def __init__(self, binary, h2=False):
        cert, key = cert_pair()
        self.port = free_port()
        self.binary = binary
        self.lines = []
        argv = [binary, "server", "-addr", "127.0.0.1:%d" % self.port, "-cert", cert, "-key", key]
        if h2:
            argv.append("-h2")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.listening = threading.Event()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        # its "listening" line, not a probe connection (which it would log as a handshake error)
        deadline = time.monotonic() + 15
        while not self.listening.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                raise lib.CheckFailed("Go server did not start: %s"
                                      % self.proc.stderr.read(2000))

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            if line == "listening":
                self.listening.set()
            elif line:
                self.lines.append(line)

    def requests(self, path_prefix="/hello/"):
        return [ln for ln in self.lines if ln.split()[1].startswith(path_prefix)]

    def stop(self):
        """Stops it; fails if it had died (a crash) or wrote to stderr."""
        alive = self.proc.poll() is None
        if alive:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        err = self.proc.stderr.read().decode(errors="replace")
        # Go's client abandons spare connections it dialed when it exits, before or during their
        # handshake or before its HTTP/2 preface (the server logs "TLS handshake error ...: EOF",
        # "... connection reset by peer", or "http2: ... error reading preface"): it does so without the agent too, so those lines are not the agent's doing
        err = "\n".join(ln for ln in err.splitlines()
                        if not re.search(r"(http: TLS handshake error from [\d.:]+|http2: server: "
                                         r"error reading preface from client [\d.:]+): "
                                         r"(EOF|.*connection reset by peer)$", ln))
        self._t.join(timeout=5)
        check(alive, "Go server exited by itself (%s): %s" % (self.proc.returncode, err[-800:]))
        check(not err.strip(), "Go server wrote to stderr: %s" % err[-800:])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _client_result(rc, out, err, n):
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("done ")]
    check(rc == 0 and rows, "Go client failed (exit %d): %s %s" % (rc, out[-500:], err[-800:]))
    row = rows[-1]
    check_eq(int(row[1]), n, "client requests")
    check_eq(int(row[5]), 0, "client bad responses")
    check(not err.strip(), "Go client wrote to stderr: %s" % err[-800:])
    return int(row[3]), (row[7] if len(row) > 7 else "")


class Client:
    """gotls client started now; its requests run later (go())."""

    def __init__(self, binary, port, n, c=1, h2=False, wait=False):
        self.n = n
        argv = [binary, "client", "-url", "https://127.0.0.1:%d" % port, "-n", str(n), "-c",
                str(c)]
        if h2:
            argv.append("-h2")
        if wait:
            argv.append("-wait")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.pid = self.proc.pid
        if wait:
            check_eq(self.proc.stdout.readline().strip(), "waiting", "client's first line")

    def finish(self, timeout=120):
        out, err = self.proc.communicate(input="go\n" if self.proc.stdin else None,
                                         timeout=timeout)
        return _client_result(self.proc.returncode, out, err, self.n)


def spans_of(kind, port, pids):
    return lambda s: (s.get("kind") == kind and attrs(s).get("server.port") == port
                      and res(s).get("process.pid") in pids)


def touches(port):
    return lambda s: port in (attrs(s).get("server.port"), attrs(s).get("network.peer.port"))


def check_https_spans(spans, port, what, version="1.1"):
    for s in spans:
        a = attrs(s)
        w = "%s %s %s" % (what, a.get("http.request.method"), a.get("url.path"))
        check_eq(a.get("url.scheme"), "https", w + " url.scheme")
        check_eq(a.get("http.request.method"), "GET", w + " method")
        check_eq(a.get("http.response.status_code"), 200, w + " status code")
        check_eq(a.get("server.port"), port, w + " server.port")
        if version:
            check_eq(a.get("network.protocol.version"), version, w + " protocol version")


def server_client_pair(agent, srv_bin, cli_bin, n, c=4, h2=False, label=""):
    """A Go server and client over TLS under agent: span counts == the server's log and the
    client's own count; every span on the port is an https span."""
    with GoServer(srv_bin, h2=h2) as srv:
        # A program is probed once the agent has seen its exec and attached (a few ms to tens of
        # ms): a client that starts calling at once would race that. Its first line comes
        # before any request; the requests start once the attach is logged.
        cli = Client(cli_bin, srv.port, n, c=c, h2=h2, wait=True)
        wait_attached(agent, cli_bin)
        ok, proto = cli.finish()
        check_eq(ok, n, "client's successful requests")
        want_proto = "HTTP/2.0" if h2 else "HTTP/1.1"
        check_eq(proto, want_proto, "protocol the client spoke")
        deadline = time.monotonic() + 10
        while len(srv.requests()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        logged = len(srv.requests())
        check_eq(logged, n, "server log lines")
        version = "2" if h2 else "1.1"
        s_spans = agent.wait_for_spans(spans_of("SERVER", srv.port, {srv.proc.pid}), logged,
                                       timeout=20, settle=0)
        c_spans = agent.wait_for_spans(spans_of("CLIENT", srv.port, {cli.pid}), ok, timeout=20)
        print("  %s: server log %d, SERVER spans %d; client count %d, CLIENT spans %d"
              % (label, logged, len(s_spans), ok, len(c_spans)), flush=True)
        check_eq(len(s_spans), logged, "%s SERVER spans vs the server's log" % label)
        check_eq(len(c_spans), ok, "%s CLIENT spans vs the client's count" % label)
        check_https_spans(s_spans, srv.port, label + " SERVER", version if not h2 else None)
        check_https_spans(c_spans, srv.port, label + " CLIENT", version if not h2 else None)
        paths = collections.Counter(attrs(s).get("url.path") for s in s_spans)
        check_eq(paths, collections.Counter("/hello/%d" % i for i in range(n)),
                 "%s SERVER span paths" % label)
        every = agent.snapshot(touches(srv.port))
        check_eq(len(every), logged + ok, "%s spans of any kind on the port" % label)
        srv.stop()
        return logged, len(s_spans), ok, len(c_spans)


def attached(agent, path, what="crypto/tls"):
    return [r for r in agent.log_records if what in str(r.get("msg")) and r.get("path") == path]


def attached_now(agent, path):
    """Are path's Go probes attached now (more attach lines than detach lines)?"""
    detached = [r for r in agent.log_records
                if r.get("msg") == "Go probes detached" and r.get("path") == path]
    return len(attached(agent, path)) > len(detached)


def wait_attached(agent, path, timeout=10.0):
    """Waits until path's probes are attached (the agent logs each attachment)."""
    deadline = time.monotonic() + timeout
    while not attached_now(agent, path) and time.monotonic() < deadline:
        time.sleep(0.02)
    check(attached_now(agent, path), "no crypto/tls attach line for %s" % path)


@test
def go_https_build_variants():
    """Default, -s -w and PIE -s -w builds, server and client started after the agent."""
    bins = {v: build(v) for v in VARIANTS}
    agent = lib.shared_agent()
    for v, b in bins.items():
        server_client_pair(agent, b, b, 300, c=4, label=v)
        check(attached(agent, b), "no crypto/tls attach log line for %s" % b)
    # a server of one build, a client of another: the probes are per file
    server_client_pair(agent, bins["pie"], bins["default"], 50, c=2, label="pie server/default "
                       "client")


@test
def go_https_started_before_agent():
    """A server and a client already running when the agent starts are probed at its start."""
    lib.require_agent()
    srv_bin, cli_bin = build("stripped"), build("pie")
    n = 100
    with GoServer(srv_bin) as srv:
        cli = Client(cli_bin, srv.port, n, c=2, wait=True)
        with lib.Agent() as agent:
            agent.wait_ready()
            ok, _ = cli.finish()
            check_eq(ok, n, "client's successful requests")
            s_spans = agent.wait_for_spans(spans_of("SERVER", srv.port, {srv.proc.pid}), n,
                                           timeout=20, settle=0)
            c_spans = agent.wait_for_spans(spans_of("CLIENT", srv.port, {cli.pid}), n,
                                           timeout=20)
            logged = len(srv.requests())
            print("  before the agent: server log %d, SERVER spans %d; client %d, CLIENT "
                  "spans %d" % (logged, len(s_spans), ok, len(c_spans)), flush=True)
            check_eq(logged, n, "server log lines")
            check_eq(len(s_spans), logged, "SERVER spans vs the server's log")
            check_eq(len(c_spans), ok, "CLIENT spans vs the client's count")
            check_https_spans(s_spans + c_spans, srv.port, "pre-started")
            check(attached(agent, srv_bin) and attached(agent, cli_bin),
                  "attach log lines missing")
            agent.stop_and_check()
        srv.stop()


@test
def go_https_10000_requests_unchanged():
    """10,000 requests checked one by one by the client, under the agent: no crash, no error,
    every request a span on each side."""
    b = build("pie")
    agent = lib.shared_agent()
    logged, s, ok, c = server_client_pair(agent, b, b, 10000, c=8, label="10,000 requests")
    check_eq((logged, s, ok, c), (10000, 10000, 10000, 10000), "10,000 requests")


@test
def curl_go_front_go_back_redis_one_trace():
    """curl → Go HTTPS front → Go HTTPS back → Redis: one connected trace per request."""
    try:
        chain.build("go")
        rd = chain.RedisServer()
    except chain.ToolchainMissing as e:
        raise lib.Skip(str(e))
    lib.require_agent()
    agent = lib.Agent()  # its own: the shared one may still be busy with the 10,000 requests
    agent.wait_ready()
    cert, key = cert_pair()
    app = chain._go_binary()
    procs = []
    try:
        back_port, front_port = free_port(), free_port()
        common = {"TLS_CERT": cert, "TLS_KEY": key}
        back = subprocess.Popen([app], env=dict(os.environ, ROLE="back", PORT=str(back_port),
                                                DB="redis", REDIS_PORT=str(rd.port), **common),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        procs.append(back)
        front = subprocess.Popen([app], env=dict(os.environ, ROLE="front", PORT=str(front_port),
                                                 BACK_URL="https://127.0.0.1:%d" % back_port,
                                                 **common),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 start_new_session=True)
        procs.append(front)
        wait_listening(back_port, proc=back)
        wait_listening(front_port, proc=front)
        wait_attached(agent, app)  # the agent may still be busy with the last test's spans
        ids = [1, 2, 3, 1, 2, 3, 1, 2]
        urls = ["https://127.0.0.1:%d/api/item/%d" % (front_port, i) for i in ids]
        p = subprocess.run([lib.CURL, "-k", "--http1.1", "-s", "-S", "--noproxy", "*", "-w",
                            "%{http_code}\\n"] + sum((["-o", "/dev/null", u] for u in urls), []),
                           capture_output=True, text=True, timeout=60)
        codes = p.stdout.split()
        check_eq(codes, ["200"] * len(ids), "curl's statuses")
        n = len(ids)
        pids = {"front": front.pid, "back": back.pid}
        front_srv = agent.wait_for_spans(spans_of("SERVER", front_port, {front.pid}), n,
                                         timeout=20, settle=0)
        back_srv = agent.wait_for_spans(spans_of("SERVER", back_port, {back.pid}), n,
                                        timeout=20, settle=0)
        front_cli = agent.wait_for_spans(spans_of("CLIENT", back_port, {front.pid}), n,
                                         timeout=20, settle=0)
        redis_cli = agent.wait_for_spans(
            lambda s: (s.get("kind") == "CLIENT" and res(s).get("process.pid") == back.pid
                       and attrs(s).get("server.port") == rd.port), n, timeout=20, settle=0)
        time.sleep(1.0)
        curl_cli = agent.snapshot(lambda s: (s.get("kind") == "CLIENT"
                                             and attrs(s).get("server.port") == front_port
                                             and res(s).get("process.pid") not in pids.values()))
        for name, got in (("front SERVER", front_srv), ("back SERVER", back_srv),
                          ("front → back CLIENT", front_cli), ("back → redis CLIENT", redis_cli),
                          ("curl CLIENT", curl_cli)):
            check_eq(len(got), n, name + " spans")
        for s in front_srv + back_srv + front_cli + curl_cli:
            check_eq(attrs(s).get("url.scheme"), "https", "chain span url.scheme")
        by_id = {s["span_id"]: s for s in front_srv + back_srv + front_cli + redis_cli + curl_cli}
        connected = 0
        broken = collections.Counter()
        for r in redis_cli:
            hops = [r]
            while hops[-1].get("parent_span_id") in by_id:
                hops.append(by_id[hops[-1]["parent_span_id"]])
            if len(hops) == 5 and len({h["trace_id"] for h in hops}) == 1 and \
                    not hops[-1].get("parent_span_id"):
                connected += 1
            else:
                broken["chain stops at %s %s (parent %s)" % (
                    res(hops[-1]).get("process.pid"), hops[-1].get("kind"),
                    "none" if not hops[-1].get("parent_span_id") else "unknown")] += 1
        if broken:
            print("  broken: %s (front %d, back %d)" % (dict(broken), front.pid, back.pid))
        print("  curl → front → back → redis: %d of %d requests one connected trace of 5 spans"
              % (connected, n), flush=True)
        check_eq(connected, n, "connected traces curl → front → back → redis")
        for pr in procs:
            if pr.poll() is not None:
                raise lib.CheckFailed("chain app exited: %s" % pr.stderr.read()[-500:])
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.terminate()
                pr.wait(timeout=5)
        rd.stop()
        agent.stop()


@test
def prometheus_scrapes_go_https_target():
    """Debian's prometheus (stripped Go, crypto/tls) scraping an HTTPS target: one CLIENT span
    per scrape the target logged."""
    prom = shutil.which("prometheus")
    if not prom:
        raise lib.Skip("prometheus not installed")
    b = build("stripped")
    lib.require_agent()
    # its own agent: the shared one may still be busy with the 10,000 requests, and a probe
    # attached late misses the read already waiting on prometheus's new connection
    agent = lib.Agent()
    agent.wait_ready()
    with GoServer(b) as srv:
        d = _tmpdir("prom")
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
                    "  - job_name: gotls\n    scheme: https\n    tls_config:\n"
                    "      insecure_skip_verify: true\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % srv.port)
        web = free_port()
        prom_log = open(os.path.join(d, "prometheus.log"), "w+b")
        p = subprocess.Popen([prom, "--config.file=" + cfg, "--storage.tsdb.path=" + d + "/data",
                              "--web.listen-address=127.0.0.1:%d" % web],
                             stdout=subprocess.DEVNULL, stderr=prom_log, start_new_session=True)
        try:
            deadline = time.monotonic() + 25
            while len(srv.requests("/metrics")) < 5 and time.monotonic() < deadline:
                if p.poll() is not None:
                    prom_log.seek(0)
                    raise lib.CheckFailed("prometheus exited: %s"
                                          % prom_log.read().decode(errors="replace")[-800:])
                time.sleep(0.2)
            # the target logs a scrape before its answer is sent: let the last answer arrive
            # (scrapes are 1 s apart) before prometheus stops
            time.sleep(0.3)
        finally:
            p.terminate()
            p.wait(timeout=10)
            prom_log.close()
        time.sleep(0.5)
        scrapes = len(srv.requests("/metrics"))
        check(scrapes >= 5, "prometheus scraped %d times" % scrapes)
        spans = agent.wait_for_spans(spans_of("CLIENT", srv.port, {p.pid}), scrapes, timeout=10)
        print("  prometheus: %d scrapes in the target's log, %d CLIENT spans" % (scrapes,
                                                                                len(spans)),
              flush=True)
        check_eq(len(spans), scrapes, "prometheus CLIENT spans vs the target's log")
        spans.sort(key=lambda s: s.get("start_time_unix_nano", 0))
        for i, s in enumerate(spans):
            a = attrs(s)
            check_eq(a.get("url.scheme"), "https", "scrape url.scheme")
            check_eq(a.get("url.path"), "/metrics", "scrape url.path")
            if (i == len(spans) - 1 and a.get("http.response.status_code") is None and
                    a.get("error.type") in ("process_exit", "connection_closed",
                                            "connection_reset", "timeout")):
                # prometheus was stopped while this last answer was on its way (timeout: the
                # request's events came after its process's exit was seen)
                continue
            check_eq(a.get("http.response.status_code"), 200,
                     "scrape status (span %d of %d: %s)" % (i + 1, len(spans), a))
        check(attached(agent, prom), "no crypto/tls attach line for %s" % prom)
        srv.stop()
    agent.stop()


@test
def unknown_go_version_left_alone():
    """A Go binary whose version the offsets table does not know: one log line, no probes, and
    the program works as ever."""
    src = build("stripped")
    d = _tmpdir("unknown")
    b = os.path.join(d, "gotls-unknown")
    with open(src, "rb") as f:
        img = f.read()
    version = subprocess.run([go_tool(), "env", "GOVERSION"], capture_output=True, text=True,
                             env=dict(os.environ, GOTOOLCHAIN="local")).stdout.strip()
    check(version.startswith("go1.") and img.count(version.encode()) > 0, "version %r" % version)
    patched = "go1.9" + version[5:]  # go1.19.8 → go1.99.8: same length, unknown
    with open(b, "wb") as f:
        f.write(img.replace(version.encode(), patched.encode()))
    os.chmod(b, 0o755)
    agent = lib.shared_agent()
    with GoServer(b) as srv:
        ok, _ = Client(b, srv.port, 20, c=1).finish()
        check_eq(ok, 20, "client's successful requests")
        time.sleep(1.0)
        lines = [r for r in agent.log_records if r.get("path") == b]
        skipped = [r for r in lines if "not probed" in str(r.get("msg"))]
        check_eq(len(skipped), 1, "'not probed' log lines for %s (%r)" % (b, lines))
        check(patched in str(skipped[0]), "the log line names the version: %r" % skipped[0])
        check(not attached(agent, b), "crypto/tls probes attached to an unknown layout")
        spans = agent.snapshot(touches(srv.port))
        check(all(attrs(s).get("url.scheme") == "https" for s in spans),
              "ciphertext turned into spans: %r" % spans[:2])
        srv.stop()


@test
def no_tls_turns_go_tls_off():
    """--no-tls: no crypto/tls probes, no plaintext spans, the ciphertext ignored."""
    b = build("default")
    lib.require_agent()
    with lib.Agent(["--no-tls"]) as agent:
        agent.wait_ready()
        with GoServer(b) as srv:
            ok, _ = Client(b, srv.port, 20).finish()
            check_eq(ok, 20, "client's successful requests")
            time.sleep(1.5)
            check(not attached(agent, b), "crypto/tls probes attached despite --no-tls")
            check_eq(agent.snapshot(touches(srv.port)), [], "spans on the port with --no-tls")
            srv.stop()
        agent.stop_and_check()


@test
def go_h2_variants():
    """HTTP/2 (Go's default over TLS): only once the agent parses HTTP/2."""
    if not have_http2():
        raise lib.Skip("the agent does not recognise HTTP/2 yet (no http2 entry in "
                       "user/parsers/protocol.c)")
    agent = lib.shared_agent()
    for v in VARIANTS:
        b = build(v)
        server_client_pair(agent, b, b, 200, c=4, h2=True, label="h2 " + v)


if __name__ == "__main__":
    sys.exit(lib.run_tests())
