#!/usr/bin/python3
"""test_h2_servers.py — end-to-end: plain HTTP/2 against real servers, SERVER spans counted against
the servers' own records. nginx `http2` cleartext (h2c, prior knowledge) and over TLS (ALPN h2)
driven by `curl --http2-prior-knowledge` / `curl --http2` and `h2load`, against nginx's access
log; `nghttpd` as a server (h2c prior knowledge, curl and h2load), against the requests it logs
with -v; h2c via `Upgrade: h2c` (curl --http2 on http://) against a Go net/http h2c server
(apps/grpc-go) and its log.
"""

import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import attrs, check, check_eq, res, test  # noqa: E402
from grpc_apps import go_binary  # noqa: E402
from servers import Nginx, free_port, read_lines, wait_listening  # noqa: E402

CURL = shutil.which("curl") or "/usr/bin/curl"
H2LOAD = shutil.which("h2load")
NGHTTPD = shutil.which("nghttpd") or ("/usr/sbin/nghttpd" if os.path.exists("/usr/sbin/nghttpd")
                                      else None)
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
PATHS = ["/static/a.txt", "/echo", "/missing", "/fail", "/static/big.bin"]


def cert_pair(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    p = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    check_eq(p.returncode, 0, "openssl req -x509 (%s)" % p.stderr[-300:])
    os.chmod(key, 0o644)
    return cert, key


def h2_server_spans(port, pids):
    return lambda s: (s.get("kind") == "SERVER" and attrs(s).get("server.port") == port
                      and res(s).get("process.pid") in pids)


def span_key(s):
    a = attrs(s)
    return (a.get("http.request.method"), a.get("url.path"), a.get("http.response.status_code"))


def curl_h2(base, flag, paths=PATHS):
    """Every path once, over one connection; returns the statuses curl saw. With prior knowledge,
    one curl process per path: curl 7.88 fails reusing an h2c prior-knowledge connection
    ("Error in the HTTP2 framing layer", without the agent too)."""
    if flag == "--http2-prior-knowledge" and len(paths) > 1:
        return [ln for p in paths for ln in curl_h2(base, flag, [p])]
    argv = [CURL, "-s", "-k", flag, "-w", "%{http_version} %{http_code}\\n"]
    for p in paths:
        argv += ["-o", "/dev/null", base + p]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    check_eq(out.returncode, 0, "curl %s exit status (%s)" % (flag, out.stderr[-200:]))
    lines = [ln.split() for ln in out.stdout.splitlines() if ln.strip()]
    check_eq(len(lines), len(paths), "curl responses")
    for ver, _ in lines:
        check_eq(ver, "2", "curl's HTTP version")
    return [int(st) for _, st in lines]


def h2load(url, n, extra=()):
    out = subprocess.run([H2LOAD, "-n", str(n), "-c", "2", "-m", "4"] + list(extra) + [url],
                         capture_output=True, text=True, timeout=60)
    check_eq(out.returncode, 0, "h2load exit status (%s)" % out.stderr[-200:])
    m = re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", out.stdout)
    check(m is not None and int(m.group(2)) == n, "h2load: %s" % out.stdout[-400:])


def against_nginx_log(agent, nginx, what):
    want = collections.Counter((m, u, st) for m, u, st, _ in nginx.requests())
    n = sum(want.values())
    spans = agent.wait_for_spans(h2_server_spans(nginx.port, nginx.pids()), n, timeout=20)
    got = collections.Counter(span_key(s) for s in spans)
    if got != want:
        raise AssertionError("%s: nginx SERVER spans differ from its access log: missing %s, "
                             "extra %s" % (what, dict(want - got), dict(got - want)))
    for s in spans:
        check_eq(attrs(s).get("network.protocol.version"), "2", "network.protocol.version")
    print("  %s: access log %d, SERVER spans %d" % (what, n, len(spans)))


def run_nginx(listen, scheme, curl_flag, h2load_extra=()):
    if not H2LOAD:
        lib.skip("h2load (nghttp2-client) is not installed")
    agent = lib.shared_agent()
    with Nginx(listen=listen) as nginx:
        base = "%s://127.0.0.1:%d" % (scheme, nginx.port)
        curl_h2(base, curl_flag)
        curl_h2(base, curl_flag)
        h2load(base + "/echo", 200, h2load_extra)
        nginx.wait_log_lines(2 * len(PATHS) + 200)
        against_nginx_log(agent, nginx, "nginx %s" % scheme)


@test
def test_nginx_h2c():
    run_nginx("127.0.0.1:{port} http2", "http", "--http2-prior-knowledge")


@test
def test_nginx_h2_tls():
    d = tempfile.mkdtemp(prefix="periscope-e2e-h2cert-")
    cert, key = cert_pair(d)
    # the listen parameter ends in the server block: the certificate directives ride along
    run_nginx("127.0.0.1:{port} ssl http2; ssl_certificate %s; ssl_certificate_key %s"
              % (cert, key), "https", "--http2")
    shutil.rmtree(d, ignore_errors=True)


@test
def test_nghttpd_h2c():
    if not NGHTTPD or not H2LOAD:
        lib.skip("nghttpd (nghttp2-server) or h2load (nghttp2-client) is not installed")
    agent = lib.shared_agent()
    d = tempfile.mkdtemp(prefix="periscope-e2e-nghttpd-")
    os.makedirs(os.path.join(d, "static"))
    with open(os.path.join(d, "static", "a.txt"), "w") as f:
        f.write("hello from periscope e2e\n")
    with open(os.path.join(d, "echo"), "w") as f:
        f.write("echo\n")
    port = free_port()
    log = os.path.join(d, "nghttpd.log")
    with open(log, "w") as out:
        srv = subprocess.Popen([NGHTTPD, "-v", "--no-tls", "-d", d, str(port)], stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_listening(port, proc=srv)
        base = "http://127.0.0.1:%d" % port
        statuses = curl_h2(base, "--http2-prior-knowledge")
        h2load(base + "/echo", 100)
        want = collections.Counter(("GET", p, st) for p, st in zip(PATHS, statuses))
        want[("GET", "/echo", 200)] += 100

        # nghttpd's own record (-v): every request HEADERS it received
        def logged():
            return sum(1 for ln in read_lines(log) if re.search(r"recv \(stream_id=\d+\) :path", ln))
        deadline = time.monotonic() + 5
        while logged() < sum(want.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        n_log = logged()
        check_eq(n_log, sum(want.values()), "requests in nghttpd's log")
        spans = agent.wait_for_spans(h2_server_spans(port, {srv.pid}), n_log, timeout=20)
        got = collections.Counter(span_key(s) for s in spans)
        if got != want:
            raise AssertionError("nghttpd SERVER spans differ from its requests: missing %s, "
                                 "extra %s" % (dict(want - got), dict(got - want)))
        for s in spans:
            check_eq(attrs(s).get("network.protocol.version"), "2", "network.protocol.version")
        print("  nghttpd: log %d requests, SERVER spans %d" % (n_log, len(spans)))
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
        shutil.rmtree(d, ignore_errors=True)


@test
def test_h2c_upgrade():
    """curl --http2 on http:// sends `Upgrade: h2c`; the server (Go net/http with x/net/http2/h2c:
    nginx and nghttpd --no-tls do not upgrade) answers 101 and the request is stream 1; the
    other requests go on as HTTP/2 on that connection."""
    go = go_binary()
    if not go:
        lib.skip("go or golang-google-grpc-dev is not installed")
    agent = lib.shared_agent()
    d = tempfile.mkdtemp(prefix="periscope-e2e-h2c-")
    log = os.path.join(d, "requests.log")
    port = free_port()
    srv = subprocess.Popen([go, "h2c", str(port), log], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_listening(port, proc=srv)
        paths = ["/a", "/missing", "/b", "/c"]
        curl_h2("http://127.0.0.1:%d" % port, "--http2", paths)
        curl_h2("http://127.0.0.1:%d" % port, "--http2", paths)
        deadline = time.monotonic() + 5
        while len(read_lines(log)) < 2 * len(paths) and time.monotonic() < deadline:
            time.sleep(0.1)
        lines = [ln.split() for ln in read_lines(log)]
        check_eq(len(lines), 2 * len(paths), "requests in the server's log")
        check_eq(sum(1 for ln in lines if ln[3] == "HTTP/1.1"), 2, "upgraded requests logged")
        want = collections.Counter((m, p, int(st)) for m, p, st, _ in lines)
        spans = agent.wait_for_spans(h2_server_spans(port, {srv.pid}), len(lines), timeout=20)
        got = collections.Counter(span_key(s) for s in spans)
        if got != want:
            raise AssertionError("h2c upgrade SERVER spans differ from the server's log: missing "
                                 "%s, extra %s" % (dict(want - got), dict(got - want)))
        print("  h2c upgrade: log %d requests (2 upgraded), SERVER spans %d"
              % (len(lines), len(spans)))
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(lib.run_tests())
