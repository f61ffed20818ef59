#!/usr/bin/python3
"""test_tls.py — end-to-end: TLS tracing (issue 5) through OpenSSL uprobes.

The agent sees TLS traffic as plaintext at SSL_read/SSL_write(_ex) in the system libssl.so.3, in any
other libssl a process maps, and in executables that export those symbols (node links OpenSSL
statically). Spans of such connections carry url.scheme=https; the ciphertext the socket syscalls
see must never turn into spans.

Every test starts its own real servers on free 127.0.0.1 ports with a self-signed certificate made
here with `openssl req -x509`, drives them with real clients, and compares the agent's spans with
the servers' own records: the nginx access log, the request logs of the Python and Node servers,
pg_stat_statements and pg_stat_ssl, and the statuses the clients saw. One agent (--print=json, no
filter) serves most tests; spans are told apart by server.port and by the pids of the processes
involved. Tests that need an agent started at a given moment start their own.

`test_tls.py pytls PORT CERT KEY LOG` runs the TLS Python server the tests use.
"""

import atexit
import collections
import http.server
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import attrs, check, check_eq, res, test  # noqa: E402
import servers  # noqa: E402
from servers import free_port, wait_listening  # noqa: E402

PYTHON = "/usr/bin/python3"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
NODE = shutil.which("node")
HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}

_tmpdirs = []


def _tmpdir(prefix):
    d = tempfile.mkdtemp(prefix="periscope-e2e-tls-%s-" % prefix)
    _tmpdirs.append(d)
    return d


@atexit.register
def _cleanup_tmp():
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    del _tmpdirs[:]


_CERT = None


def cert_pair():
    """(cert.pem, key.pem): one self-signed certificate for 127.0.0.1/localhost, made once."""
    global _CERT
    if _CERT is None:
        d = _tmpdir("cert")
        os.chmod(d, 0o755)
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        p = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                            key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                            "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                           capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise lib.CheckFailed("openssl req -x509 failed: %s" % p.stderr[-500:])
        os.chmod(key, 0o644)  # read by nginx workers, node, python; all root here
        _CERT = (cert, key)
    return _CERT


def tls_curl(urls, extra=(), timeout=30, env=None):
    """One curl process (HTTP/1.1 over TLS, -k) fetching urls in order on one keep-alive
    connection. Returns (statuses, pid, number of connections curl opened)."""
    if isinstance(urls, str):
        urls = [urls]
    argv = [lib.CURL, "-k", "--http1.1", "-s", "-S", "--noproxy", "*", "--max-time", "20",
            "-w", "%{http_code} %{num_connects} %{scheme}\\n"]
    argv += list(extra)
    for u in urls:
        argv += ["-o", "/dev/null", u]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.communicate(timeout=timeout)
    rows = [line.split() for line in out.decode().splitlines() if line.strip()]
    if p.returncode != 0 or len(rows) != len(urls):
        raise lib.CheckFailed("curl failed (%d): %s %r" % (p.returncode,
                                                          err.decode(errors="replace"), out))
    for r in rows:
        check_eq(r[2].lower(), "https", "curl's scheme")
    return [int(r[0]) for r in rows], p.pid, sum(int(r[1]) for r in rows)


def span_key(s):
    a = attrs(s)
    return (a.get("http.request.method"), a.get("url.path"), a.get("http.response.status_code"))


def touches(port):
    """Every span of a connection to or from port (by server.port or network.peer.port)."""
    return lambda s: port in (attrs(s).get("server.port"), attrs(s).get("network.peer.port"))


def kind_spans(kind, port, pids):
    return lambda s: (s.get("kind") == kind and attrs(s).get("server.port") == port
                      and res(s).get("process.pid") in pids)


def diff(got, want, what):
    if got != want:
        raise lib.CheckFailed("%s differ: missing %s, extra %s" % (what, dict(want - got),
                                                                  dict(got - want)))


def check_http_spans(spans, port, kind):
    """The HTTP attributes every TLS span must have."""
    for s in spans:
        a = attrs(s)
        what = "%s span %s %s" % (kind, a.get("http.request.method"), a.get("url.path"))
        check_eq(a.get("url.scheme"), "https", what + " url.scheme")
        check_eq(a.get("server.port"), port, what + " server.port")
        check_eq(a.get("network.protocol.version"), "1.1", what + " network.protocol.version")
        check(a.get("http.request.method") in HTTP_METHODS, what + " has a strange method")
        lib.check_span_name(s, what)
        code = a.get("http.response.status_code")
        check(isinstance(code, int), what + " http.response.status_code %r" % code)
        want_err = code >= 500 or (kind == "CLIENT" and code >= 400)
        if want_err:
            check_eq(s.get("status"), "ERROR", what + " status")
        else:
            check(s.get("status") in ("UNSET", "OK"), what + " status is %r" % s.get("status"))
        if kind == "SERVER":
            check_eq(a.get("network.peer.address"), "127.0.0.1", what + " network.peer.address")
            check(a.get("network.peer.port") != port, what + " network.peer.port is the server's")
        else:
            check_eq(a.get("network.peer.port"), port, what + " network.peer.port")


def check_no_garbage(agent, port, want_total):
    """All spans touching port are well-formed HTTP spans and there are exactly want_total."""
    every = agent.snapshot(touches(port))
    bad = [s for s in every if attrs(s).get("http.request.method") not in HTTP_METHODS
           or attrs(s).get("url.scheme") != "https"]
    check(not bad, "%d spans on port %d are not https HTTP spans (ciphertext?), e.g. %r"
          % (len(bad), port, bad[:2]))
    check_eq(len(every), want_total, "spans of every kind and process on port %d" % port)


# ---- nginx with TLS

NGINX_TLS_CONF = """# generated by tests/e2e/test_tls.py
user root;
worker_processes 2;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 512; }}
http {{
    log_format e2e '$request_method $uri $status $https $connection $connection_requests';
    access_log {dir}/access.log e2e;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_timeout 30s;
    keepalive_requests 10000;
    sendfile off;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        root {dir}/html;
        default_type text/plain;
        location /static/ {{ }}
        location = /missing {{ return 404; }}
        location = /fail {{ return 500 "fail\\n"; }}
        location = /redirect {{ return 302 /static/a.txt; }}
        location = /echo {{ return 200 "echo\\n"; }}
    }}
}}
"""


class TlsNginx(servers._Server):
    """nginx (two workers) serving HTTPS on 127.0.0.1:<free port> with the test certificate.
    Access log line: `METHOD URI STATUS HTTPS CONNECTION CONNECTION_REQUESTS`."""

    def __init__(self, env_extra=None):
        super().__init__("nginx-tls")
        cert, key = cert_pair()
        os.makedirs(os.path.join(self.dir, "html", "static"))
        os.makedirs(os.path.join(self.dir, "tmp"))
        with open(os.path.join(self.dir, "html", "static", "a.txt"), "w") as f:
            f.write("hello from periscope e2e over tls\n")
        with open(os.path.join(self.dir, "html", "static", "big.bin"), "wb") as f:
            f.write(bytes(range(256)) * 800)  # 200 KiB: many TLS records, many SSL_read calls
        self.log_path = os.path.join(self.dir, "access.log")
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_TLS_CONF.format(dir=self.dir, port=self.port, cert=cert, key=key))
        env = dict(os.environ)
        env.update(env_extra or {})
        self._spawn([servers.NGINX, "-p", self.dir, "-c", conf, "-e",
                     os.path.join(self.dir, "error.log")], env=env)
        deadline = time.monotonic() + 5
        while len(servers._children(self.proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self, sig=signal.SIGQUIT):
        super().stop(sig)

    def requests(self):
        """(method, uri, status, https, connection, connection_requests) per access-log line."""
        out = []
        for line in self.log_lines():
            p = line.split(" ")
            if len(p) == 6:
                out.append((p[0], p[1], int(p[2]), p[3], int(p[4]), int(p[5])))
        return out


def drive_nginx(base):
    """Separate curl processes plus one keep-alive curl with several URLs; returns the
    (method, path, status) curl saw, the curl pids, and the keep-alive curl's pid."""
    seen, pids = [], set()
    for path in ["/static/a.txt", "/missing", "/fail?secret=abc", "/redirect"]:
        codes, pid, _ = tls_curl(base + path)
        pids.add(pid)
        seen.append(("GET", path.split("?")[0], codes[0]))
    keepalive = ["/static/a.txt", "/static/big.bin", "/echo?x=2", "/missing", "/fail", "/echo",
                 "/static/big.bin", "/static/a.txt"]
    codes, ka_pid, conns = tls_curl([base + p for p in keepalive])
    check_eq(conns, 1, "connections the keep-alive curl opened")
    pids.add(ka_pid)
    seen += [("GET", p.split("?")[0], c) for p, c in zip(keepalive, codes)]
    return seen, pids, ka_pid


@test
def nginx_tls_spans_match_access_log():
    """nginx SERVER spans and curl CLIENT spans over TLS against nginx's access log."""
    agent = lib.shared_agent()
    with TlsNginx() as nginx:
        seen, curl_pids, _ = drive_nginx("https://127.0.0.1:%d" % nginx.port)
        check_eq(sorted(set(c for _, _, c in seen)), [200, 302, 404, 500], "statuses curl saw")
        log = nginx.wait_log_lines(len(seen))
        check_eq(len(log), len(seen), "access-log lines")
        reqs = nginx.requests()
        check_eq({r[3] for r in reqs}, {"on"}, "nginx $https of every request")
        want = collections.Counter((m, u, st) for m, u, st, _, _, _ in reqs)
        srv = agent.wait_for_spans(kind_spans("SERVER", nginx.port, nginx.pids()), len(reqs),
                                   timeout=10)
        cli = agent.wait_for_spans(kind_spans("CLIENT", nginx.port, curl_pids), len(seen),
                                   settle=0, timeout=4)
        print("  nginx: %d SERVER spans, access log %d lines; curl: %d CLIENT spans, %d requests"
              % (len(srv), len(reqs), len(cli), len(seen)), flush=True)
        diff(collections.Counter(span_key(s) for s in srv), want, "nginx SERVER spans vs log")
        diff(collections.Counter(span_key(s) for s in cli), collections.Counter(seen),
             "curl CLIENT spans vs requests")
        check_http_spans(srv, nginx.port, "SERVER")
        check_http_spans(cli, nginx.port, "CLIENT")
        for s in srv:
            check_eq(res(s).get("service.name"), "nginx", "SERVER span service.name")
            check("secret" not in repr(s), "SERVER span exports the query string")
        for s in cli:
            check_eq(res(s).get("service.name"), "curl", "CLIENT span service.name")
        check_no_garbage(agent, nginx.port, len(reqs) + len(seen))


@test
def nginx_tls_keepalive_connection():
    """Several requests on one TLS connection: one span each, all on the same client port."""
    agent = lib.shared_agent()
    with TlsNginx() as nginx:
        base = "https://127.0.0.1:%d" % nginx.port
        paths = ["/echo", "/static/big.bin", "/missing", "/echo?n=4", "/static/a.txt", "/fail",
                 "/static/big.bin", "/echo", "/redirect", "/static/a.txt"]
        codes, pid, conns = tls_curl([base + p for p in paths])
        check_eq(conns, 1, "connections curl opened")
        check_eq(codes, [200, 200, 404, 200, 200, 500, 200, 200, 302, 200], "curl statuses")
        reqs = nginx.wait_log_lines(len(paths)) and nginx.requests()
        check_eq(len({r[4] for r in reqs}), 1, "nginx connections (access log $connection)")
        check_eq([r[5] for r in reqs], list(range(1, len(paths) + 1)),
                 "nginx $connection_requests")
        srv = agent.wait_for_spans(kind_spans("SERVER", nginx.port, nginx.pids()), len(paths),
                                   timeout=10)
        cli = agent.wait_for_spans(kind_spans("CLIENT", nginx.port, {pid}), len(paths), settle=0,
                                   timeout=4)
        print("  nginx keep-alive: %d SERVER spans, %d CLIENT spans, %d log lines, 1 connection"
              % (len(srv), len(cli), len(reqs)), flush=True)
        want = [("GET", p.split("?")[0], c) for p, c in zip(paths, codes)]
        for kind, spans in (("SERVER", srv), ("CLIENT", cli)):
            spans = sorted(spans, key=lambda s: s["start_time_unix_nano"])
            check_eq([span_key(s) for s in spans], want, "%s spans in order" % kind)
            check_http_spans(spans, nginx.port, kind)
        check_eq(len({attrs(s).get("network.peer.port") for s in srv}), 1,
                 "client ports of the SERVER spans (one connection)")
        check_no_garbage(agent, nginx.port, 2 * len(paths))


@test
def tls_ciphertext_is_ignored_without_uprobes():
    """With --no-tls the agent sees only ciphertext on a TLS port: it must make no span of it."""
    lib.require_agent()
    with TlsNginx() as nginx, lib.Agent(["--no-tls", "--port", str(nginx.port)]) as blind:
        blind.wait_ready()
        seen, _, _ = drive_nginx("https://127.0.0.1:%d" % nginx.port)
        nginx.wait_log_lines(len(seen))
        time.sleep(1.5)
        got = blind.snapshot()
        check(not got, "--no-tls agent made %d spans from TLS ciphertext, e.g. %r"
              % (len(got), got[:2]))
        blind.stop_and_check()


# ---- Python http.server wrapped in ssl

class _PyTlsHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self):
        path = self.path.split("?", 1)[0]
        if path.startswith("/ok"):
            status, body = 200, b"ok\n" * (20000 if path == "/ok/big" else 1)
        elif path == "/fail":
            status, body = 500, b"fail\n"
        else:
            status, body = 404, b"not found\n"
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(length)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()
        with self.server.log_lock:
            self.server.log.write("%s %s %d %d\n" % (self.command, path, status,
                                                     self.client_address[1]))
            self.server.log.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

    def log_message(self, fmt, *args):
        pass


def _pytls_main(port, cert, key, log_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _PyTlsHandler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.log = open(log_path, "a", buffering=1)
    server.log_lock = threading.Lock()
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.log.close()


class PyTlsServer(servers._Server):
    """This file run as `pytls PORT CERT KEY LOG`: http.server with ssl on 127.0.0.1.
    /ok* → 200 (/ok/big: 60 KB), /fail → 500, else 404. Log line: `METHOD PATH STATUS PEERPORT`."""

    def __init__(self, env_extra=None):
        super().__init__("pytls")
        cert, key = cert_pair()
        self.log_path = os.path.join(self.dir, "requests.log")
        env = dict(os.environ)
        env.update(env_extra or {})
        self._spawn([PYTHON, os.path.abspath(__file__), "pytls", str(self.port), cert, key,
                     self.log_path], env=env)

    def requests(self):
        out = []
        for line in self.log_lines():
            p = line.split(" ")
            if len(p) == 4:
                out.append((p[0], p[1], int(p[2]), int(p[3])))
        return out


PY_CLIENT = r"""
import http.client, ssl, sys
port = int(sys.argv[1])
ctx = ssl._create_unverified_context()
conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
for item in sys.argv[2:]:
    method, path = item.split(" ", 1)
    body = b"name=periscope&tls=1" if method in ("POST", "PUT") else None
    conn.request(method, path, body=body)
    r = conn.getresponse()
    r.read()
    print(method, path.split("?")[0], r.status, flush=True)
conn.close()
"""


def py_client(port, items, env=None):
    """A python3 process making the requests ("METHOD /path") on one HTTPS connection.
    Returns ((method, path, status) list, pid)."""
    p = subprocess.Popen([PYTHON, "-c", PY_CLIENT, str(port)] + list(items),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = p.communicate(timeout=60)
    if p.returncode != 0:
        raise lib.CheckFailed("python client failed: %s" % err.decode(errors="replace")[-800:])
    rows = [line.split(" ") for line in out.decode().splitlines()]
    return [(m, path, int(st)) for m, path, st in rows], p.pid


PY_ITEMS = ["GET /ok", "POST /ok/form", "GET /ok/big", "GET /missing?q=1", "PUT /ok/x",
            "GET /fail", "DELETE /ok/y", "HEAD /ok", "GET /ok?page=2", "GET /ok/big"]


@test
def python_ssl_server_and_clients():
    """Python http.server in ssl: SERVER spans against its log; CLIENT spans of a python3
    http.client keep-alive client and of curl against what they saw."""
    agent = lib.shared_agent()
    with PyTlsServer() as srv:
        base = "https://127.0.0.1:%d" % srv.port
        seen_py, py_pid = py_client(srv.port, PY_ITEMS)
        check_eq([st for _, _, st in seen_py], [200, 200, 200, 404, 200, 500, 200, 200, 200, 200],
                 "python client statuses")
        curl_paths = ["/ok/c1", "/fail", "/nope", "/ok/big"]
        codes, curl_pid, conns = tls_curl([base + p for p in curl_paths])
        check_eq(conns, 1, "curl connections")
        seen_curl = [("GET", p, c) for p, c in zip(curl_paths, codes)]
        n = len(seen_py) + len(seen_curl)
        srv.wait_log_lines(n)
        reqs = srv.requests()
        check_eq(len(reqs), n, "server log lines")
        check_eq(len({r[3] for r in reqs}), 2, "connections in the server log (peer ports)")
        want = collections.Counter((m, p, st) for m, p, st, _ in reqs)
        s_spans = agent.wait_for_spans(kind_spans("SERVER", srv.port, {srv.pid}), n, timeout=10)
        py_spans = agent.wait_for_spans(kind_spans("CLIENT", srv.port, {py_pid}), len(seen_py),
                                        settle=0, timeout=4)
        curl_spans = agent.wait_for_spans(kind_spans("CLIENT", srv.port, {curl_pid}),
                                          len(seen_curl), settle=0, timeout=4)
        print("  python server: %d SERVER spans, log %d lines; python3 client: %d CLIENT spans, "
              "%d requests; curl: %d CLIENT spans, %d requests"
              % (len(s_spans), len(reqs), len(py_spans), len(seen_py), len(curl_spans),
                 len(seen_curl)), flush=True)
        diff(collections.Counter(span_key(s) for s in s_spans), want, "python SERVER spans vs log")
        diff(collections.Counter(span_key(s) for s in py_spans), collections.Counter(seen_py),
             "python3 CLIENT spans vs requests")
        diff(collections.Counter(span_key(s) for s in curl_spans), collections.Counter(seen_curl),
             "curl CLIENT spans vs requests")
        check_http_spans(s_spans, srv.port, "SERVER")
        check_http_spans(py_spans + curl_spans, srv.port, "CLIENT")
        # the SERVER spans' client ports are the connections the server logged
        check_eq(collections.Counter(attrs(s).get("network.peer.port") for s in s_spans),
                 collections.Counter(r[3] for r in reqs), "SERVER spans per client port")
        check_no_garbage(agent, srv.port, 2 * n)


def _maps(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return f.read()
    except OSError:
        return ""


@test
def private_libssl_copy_in_process_started_after_agent():
    """nginx started after the agent with its own copy of libssl.so.3 (LD_LIBRARY_PATH, another
    inode than the system library the agent attached at start) is traced after the agent's exec
    rescan: SERVER spans against the access log."""
    agent = lib.shared_agent()
    system = os.path.realpath("/lib/x86_64-linux-gnu/libssl.so.3")
    if not os.path.isfile(system):
        lib.skip("no %s" % system)
    libdir = _tmpdir("libssl")
    os.chmod(libdir, 0o755)
    copy = os.path.join(libdir, "libssl.so.3")
    shutil.copy2(system, copy)
    with TlsNginx(env_extra={"LD_LIBRARY_PATH": libdir}) as nginx:
        for pid in nginx.pids():
            maps = _maps(pid)
            check(copy in maps, "nginx %d does not map the copy %s" % (pid, copy))
            check(system not in maps, "nginx %d maps the system libssl too" % pid)
        time.sleep(1.5)  # past the agent's rescans (100 ms and 1 s after exec)
        base = "https://127.0.0.1:%d" % nginx.port
        seen, pids = [], set()
        for path in ["/echo", "/missing", "/static/a.txt", "/fail", "/static/big.bin"]:
            codes, pid, _ = tls_curl(base + path)
            pids.add(pid)
            seen.append(("GET", path, codes[0]))
        codes, pid, _ = tls_curl([base + "/echo", base + "/static/a.txt", base + "/missing"])
        pids.add(pid)
        seen += list(zip(["GET"] * 3, ["/echo", "/static/a.txt", "/missing"], codes))
        nginx.wait_log_lines(len(seen))
        reqs = nginx.requests()
        check_eq(len(reqs), len(seen), "access-log lines")
        s_spans = agent.wait_for_spans(kind_spans("SERVER", nginx.port, nginx.pids()), len(reqs),
                                       timeout=10)
        print("  nginx with a private libssl copy: %d SERVER spans, access log %d lines"
              % (len(s_spans), len(reqs)), flush=True)
        diff(collections.Counter(span_key(s) for s in s_spans),
             collections.Counter(r[:3] for r in reqs), "SERVER spans (private libssl) vs log")
        check_http_spans(s_spans, nginx.port, "SERVER")
        check(any(r.get("msg") == "TLS probes attached" and r.get("path") == copy
                  for r in agent.log_records),
              "the agent did not log attaching to %s" % copy)


# ---- Node.js https (OpenSSL linked statically into the node executable)

NODE_SERVER = r"""
const https = require('https');
const fs = require('fs');
const [port, cert, key, log] = process.argv.slice(2);
const srv = https.createServer({cert: fs.readFileSync(cert), key: fs.readFileSync(key)},
  (req, res) => {
    const path = req.url.split('?')[0];
    const status = path.startsWith('/ok') ? 200 : (path === '/fail' ? 500 : 404);
    req.resume();
    req.on('end', () => {
      const body = path === '/ok/big' ? Buffer.alloc(100000, 'x')
                                      : Buffer.from('st ' + status + '\n');
      res.writeHead(status, {'Content-Type': 'text/plain', 'Content-Length': body.length});
      res.end(req.method === 'HEAD' ? undefined : body);
      fs.appendFileSync(log, `${req.method} ${path} ${status} ${req.socket.remotePort}\n`);
    });
  });
srv.keepAliveTimeout = 30000;
srv.listen(Number(port), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
"""

NODE_CLIENT = r"""
const https = require('https');
const [port, ...items] = process.argv.slice(2);
const agent = new https.Agent({keepAlive: true, maxSockets: 1});
function one(method, path) {
  return new Promise((resolve, reject) => {
    const req = https.request({host: '127.0.0.1', port: Number(port), path, method, agent,
                               rejectUnauthorized: false}, (res) => {
      const lport = res.socket.localPort;
      res.resume();
      res.on('end', () => resolve([res.statusCode, lport]));
    });
    req.on('error', reject);
    if (method === 'POST' || method === 'PUT') req.write('name=periscope&tls=1');
    req.end();
  });
}
(async () => {
  for (const item of items) {
    const [method, path] = item.split(' ');
    const [status, lport] = await one(method, path);
    console.log(`${method} ${path.split('?')[0]} ${status} ${lport}`);
  }
  agent.destroy();
})().catch((e) => { console.error(e); process.exit(1); });
"""


class NodeTlsServer(servers._Server):
    """node's https server on 127.0.0.1. /ok* → 200 (/ok/big: 100 KB), /fail → 500, else 404.
    Log line: `METHOD PATH STATUS PEERPORT`."""

    def __init__(self):
        super().__init__("node-tls")
        cert, key = cert_pair()
        self.log_path = os.path.join(self.dir, "requests.log")
        script = os.path.join(self.dir, "server.js")
        with open(script, "w") as f:
            f.write(NODE_SERVER)
        self._spawn([NODE, script, str(self.port), cert, key, self.log_path])

    def requests(self):
        out = []
        for line in self.log_lines():
            p = line.split(" ")
            if len(p) == 4:
                out.append((p[0], p[1], int(p[2]), int(p[3])))
        return out


def node_client(port, items):
    d = _tmpdir("nodecli")
    script = os.path.join(d, "client.js")
    with open(script, "w") as f:
        f.write(NODE_CLIENT)
    p = subprocess.Popen([NODE, script, str(port)] + list(items), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=60)
    if p.returncode != 0:
        raise lib.CheckFailed("node client failed: %s" % err.decode(errors="replace")[-800:])
    rows = [line.split(" ") for line in out.decode().splitlines()]
    return [(m, path, int(st)) for m, path, st, _ in rows], {int(r[3]) for r in rows}, p.pid


def require_node():
    if not NODE:
        lib.skip("node is not on PATH")
    if subprocess.run(["nm", "-D", NODE], capture_output=True, text=True).stdout.find(
            " T SSL_write") < 0:
        lib.skip("%s does not export SSL_write (not statically linked OpenSSL)" % NODE)


NODE_ITEMS = ["GET /ok", "POST /ok/form", "GET /ok/big", "GET /missing?q=1", "PUT /ok/x",
              "GET /fail", "DELETE /ok/y", "GET /ok?page=2", "GET /ok/big", "GET /ok/last"]


@test
def node_https_server_and_client():
    """node (static OpenSSL, started after the agent): SERVER spans against the node server's log,
    CLIENT spans of a node https client (keep-alive, one connection) against what it saw."""
    require_node()
    agent = lib.shared_agent()
    with NodeTlsServer() as srv:
        time.sleep(1.2)  # the agent's rescans of a new executable: 100 ms and 1 s after exec
        seen, lports, cli_pid = node_client(srv.port, NODE_ITEMS)
        check_eq([st for _, _, st in seen], [200, 200, 200, 404, 200, 500, 200, 200, 200, 200],
                 "node client statuses")
        check_eq(len(lports), 1, "node client connections")
        codes, curl_pid, _ = tls_curl(["https://127.0.0.1:%d%s" % (srv.port, p)
                                       for p in ("/ok/c", "/fail", "/x")])
        seen_curl = list(zip(["GET"] * 3, ["/ok/c", "/fail", "/x"], codes))
        n = len(seen) + len(seen_curl)
        srv.wait_log_lines(n)
        reqs = srv.requests()
        check_eq(len(reqs), n, "node server log lines")
        s_spans = agent.wait_for_spans(kind_spans("SERVER", srv.port, {srv.pid}), n, timeout=10)
        c_spans = agent.wait_for_spans(kind_spans("CLIENT", srv.port, {cli_pid}), len(seen),
                                       settle=0, timeout=4)
        curl_spans = agent.wait_for_spans(kind_spans("CLIENT", srv.port, {curl_pid}),
                                          len(seen_curl), settle=0, timeout=4)
        print("  node server: %d SERVER spans, log %d lines; node client: %d CLIENT spans, %d "
              "requests; curl %d CLIENT spans, %d requests"
              % (len(s_spans), len(reqs), len(c_spans), len(seen), len(curl_spans),
                 len(seen_curl)), flush=True)
        diff(collections.Counter(span_key(s) for s in s_spans),
             collections.Counter((m, p, st) for m, p, st, _ in reqs), "node SERVER spans vs log")
        diff(collections.Counter(span_key(s) for s in c_spans), collections.Counter(seen),
             "node CLIENT spans vs requests")
        diff(collections.Counter(span_key(s) for s in curl_spans),
             collections.Counter(seen_curl), "curl CLIENT spans vs requests")
        check_http_spans(s_spans, srv.port, "SERVER")
        check_http_spans(c_spans + curl_spans, srv.port, "CLIENT")
        for s in c_spans:
            check_eq(attrs(s).get("network.peer.port"), srv.port, "node CLIENT network.peer.port")
        check_eq(collections.Counter(attrs(s).get("network.peer.port") for s in s_spans),
                 collections.Counter(r[3] for r in reqs), "node SERVER spans per client port")
        check_no_garbage(agent, srv.port, 2 * n)


@test
def node_server_running_before_agent():
    """A node https server already running when the agent starts is found by the agent's scan of
    running processes (node exports SSL_read/SSL_write): its SERVER spans match its log."""
    require_node()
    lib.require_agent()
    with NodeTlsServer() as srv:
        # warm the server up before the agent exists: its first request must not be traced
        codes, _, _ = tls_curl("https://127.0.0.1:%d/ok/before-agent" % srv.port)
        check_eq(codes, [200], "status before the agent")
        with lib.Agent(["--port", str(srv.port)]) as agent:
            agent.wait_ready()
            paths = ["/ok/1", "/ok/big", "/missing", "/fail", "/ok/5"]
            codes, curl_pid, _ = tls_curl(["https://127.0.0.1:%d%s" % (srv.port, p)
                                           for p in paths])
            srv.wait_log_lines(1 + len(paths))
            reqs = srv.requests()[1:]
            check_eq(len(reqs), len(paths), "node server log lines after the agent started")
            s_spans = agent.wait_for_spans(kind_spans("SERVER", srv.port, {srv.pid}), len(reqs),
                                           timeout=10)
            c_spans = agent.wait_for_spans(kind_spans("CLIENT", srv.port, {curl_pid}), len(paths),
                                           settle=0, timeout=4)
            print("  node started before the agent: %d SERVER spans, log %d lines; curl %d CLIENT "
                  "spans" % (len(s_spans), len(reqs), len(c_spans)), flush=True)
            diff(collections.Counter(span_key(s) for s in s_spans),
                 collections.Counter((m, p, st) for m, p, st, _ in reqs),
                 "node SERVER spans vs log")
            diff(collections.Counter(span_key(s) for s in c_spans),
                 collections.Counter(("GET", p, c) for p, c in zip(paths, codes)),
                 "curl CLIENT spans vs requests")
            check_http_spans(s_spans, srv.port, "SERVER")
            check_no_garbage(agent, srv.port, 2 * len(paths))
            agent.stop_and_check()


# ---- PostgreSQL with ssl=on

PG_CLIENT = r"""
import sys, psycopg2
dsn, n = sys.argv[1], int(sys.argv[2])
conn = psycopg2.connect(dsn)
conn.autocommit = True
cur = conn.cursor()
cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
print("SSL", *cur.fetchone(), flush=True)
for i in range(n):
    cur.execute("SELECT name FROM items WHERE id = %s", (i % 10 + 1,))
    print("ROW", cur.fetchone()[0], flush=True)
try:
    cur.execute("SELECT name FROM no_such_table WHERE id = 1")
except psycopg2.Error as e:
    print("ERR", e.pgcode, flush=True)
conn.close()
"""


def start_tls_postgres():
    """chain.PostgresServer reconfigured with ssl=on and the test certificate."""
    try:
        import chain
    except ImportError as e:
        lib.skip("tests/e2e/chain.py: %s" % e)
    if subprocess.run([PYTHON, "-c", "import psycopg2"], capture_output=True).returncode:
        lib.skip("python3-psycopg2 is not installed")
    try:
        pg = chain.PostgresServer()
    except chain.ToolchainMissing as e:
        lib.skip(str(e))
    try:
        cert, key = cert_pair()
        for src, name in ((cert, "server.crt"), (key, "server.key")):
            dst = os.path.join(pg.data, name)
            shutil.copy(src, dst)
            os.chmod(dst, 0o600)
            if pg._run_as is not None:
                os.chown(dst, pg._run_as.pw_uid, pg._run_as.pw_gid)
        pg.sql("ALTER SYSTEM SET ssl = on")
        pg.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 10
        while pg.sql("SHOW ssl") != "on" and time.monotonic() < deadline:
            time.sleep(0.1)
        check_eq(pg.sql("SHOW ssl"), "on", "PostgreSQL ssl after reload")
        return pg
    except BaseException:
        pg.stop()
        raise


@test
def postgres_ssl_client_spans_match_pg_stat_statements():
    """psycopg2 (libpq → system libssl) with sslmode=require: DB CLIENT spans, marked tls, against
    pg_stat_statements; psql with sslmode=require too; no span from the TLS bytes otherwise."""
    agent = lib.shared_agent()
    pg = start_tls_postgres()
    with pg:
        t_ssl = time.time_ns()
        before = pg.statement_calls()
        n = 12
        dsn = pg.dsn + " sslmode=require"
        p = subprocess.Popen([PYTHON, "-c", PG_CLIENT, dsn, str(n)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        out, err = p.communicate(timeout=60)
        check_eq(p.returncode, 0, "psycopg2 client exit status (%s)" % err.decode()[-500:])
        lines = out.decode().splitlines()
        check(lines and lines[0].startswith("SSL True"), "connection is not TLS: %r" % lines[:1])
        check_eq(len([x for x in lines if x.startswith("ROW item-")]), n, "rows the client read")
        check_eq(lines[-1], "ERR 42P01", "the failing query's SQLSTATE")
        psql = subprocess.Popen([os.path.join(pg.bindir, "psql"), "-X", "-q", "-A", "-t", "-d",
                                 dsn, "-c", "SELECT name FROM items WHERE id = 3"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pout, perr = psql.communicate(timeout=60)
        check_eq((psql.returncode, pout.decode().strip()), (0, "item-3"),
                 "psql answer (%s)" % perr.decode()[-300:])
        calls = pg.statement_calls() - before
        check_eq(calls, n + 1, "pg_stat_statements calls of `FROM items WHERE`")
        py_pred = kind_spans("CLIENT", pg.port, {p.pid})
        spans = agent.wait_for_spans(py_pred, n + 2)
        psql_spans = agent.wait_for_spans(kind_spans("CLIENT", pg.port, {psql.pid}), 1, settle=0,
                                          timeout=4)
        items = [s for s in spans + psql_spans
                 if "FROM items WHERE" in (attrs(s).get("db.query.text") or "")]
        print("  postgres ssl: psycopg2 %d CLIENT spans (want %d), psql %d; spans of `FROM items "
              "WHERE` %d, pg_stat_statements calls %d"
              % (len(spans), n + 2, len(psql_spans), len(items), calls), flush=True)
        check_eq(len(items), calls, "spans of `FROM items WHERE` vs pg_stat_statements")
        check_eq(len(spans), n + 2, "psycopg2 CLIENT spans (pg_stat_ssl + %d items + 1 error)" % n)
        check_eq(len(psql_spans), 1, "psql CLIENT spans")
        for s in spans + psql_spans:
            a = attrs(s)
            what = "postgres span %r" % a.get("db.query.text")
            check_eq(a.get("db.system.name"), "postgresql", what + " db.system.name")
            check_eq(a.get("tls"), True, what + " tls")
            check_eq(a.get("server.port"), pg.port, what + " server.port")
            check(a.get("url.scheme") is None and a.get("http.request.method") is None,
                  what + " has HTTP attributes")
        for s in items:
            check_eq(attrs(s).get("db.operation.name"), "SELECT", "db.operation.name")
            check_eq(attrs(s).get("db.collection.name"), "items", "db.collection.name")
            check(s.get("status") in ("UNSET", "OK"), "items span status %r" % s.get("status"))
        errs = [s for s in spans if attrs(s).get("db.response.status_code") == "42P01"]
        check_eq(len(errs), 1, "spans with SQLSTATE 42P01")
        check_eq(errs[0].get("status"), "ERROR", "failing query span status")
        # every span on the port since ssl=on: a TLS client span of PostgreSQL (the psql runs of
        # PostgresServer.sql use sslmode=prefer, so TLS too); none from the server's processes,
        # none from the ciphertext
        every = agent.snapshot(lambda s: touches(pg.port)(s) and s["start_time_unix_nano"] >= t_ssl)
        server_pids = pg.pids()
        bad = [s for s in every if res(s).get("process.pid") in server_pids
               or attrs(s).get("db.system.name") != "postgresql" or attrs(s).get("tls") is not True
               or s.get("kind") != "CLIENT" or not attrs(s).get("db.query.text")]
        check(not bad, "%d spans on the PostgreSQL port are not TLS PostgreSQL CLIENT spans, e.g. "
              "%r" % (len(bad), bad[:2]))

if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "pytls":
        _pytls_main(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
        sys.exit(0)
    try:
        rc = lib.run_tests()
    finally:
        _cleanup_tmp()
    sys.exit(rc)
