#!/usr/bin/python3
"""test_go_grpc_tls.py — end-to-end: Go gRPC over TLS (issue 15), read in plaintext through the
crypto/tls uprobes.

tests/e2e/apps/grpc-go (Go's google.golang.org/grpc from Debian's golang-google-grpc-dev, built
offline in GOPATH mode) serves and calls demo.Echo over TLS (`credentials.NewTLS`, a self-signed
certificate made here with openssl), built as a default build, `-ldflags='-s -w'` and
`-buildmode=pie -ldflags='-s -w'`. Each run makes 20 Unary calls (every 5th fails NOT_FOUND) and 4
ServerStream calls on one connection; the agent's SERVER and CLIENT gRPC spans are compared with
the server's own log of every call it finished and with the client's own results, per method and
status; every SERVER span's parent is its CLIENT span; every span on the port is an https gRPC span
(nothing made of the ciphertext). Programs started after the agent, and once before it.
"""

import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from grpc_apps import GO_VARIANTS, go_binary  # noqa: E402
from lib import attrs, check, check_eq, res, test  # noqa: E402
from servers import free_port, read_lines, wait_listening  # noqa: E402

CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND"]
CALLS = 20  # per client run: 20 Unary (4 NOT_FOUND) + 4 ServerStream
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def binary(variant):
    b = go_binary(variant)
    if not b:
        lib.skip("go or golang-google-grpc-dev is not installed")
    return b


def cert_pair(d):
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    p = subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       capture_output=True, text=True, timeout=60)
    check_eq(p.returncode, 0, "openssl req (%s)" % p.stderr[-300:])
    return cert, key


def attached(agent, path):
    """Are path's crypto/tls probes attached now (the agent logs each attachment)?"""
    recs = [r for r in agent.log_records if r.get("path") == path]
    on = [r for r in recs if "crypto/tls" in str(r.get("msg"))]
    off = [r for r in recs if r.get("msg") == "Go probes detached"]
    return len(on) > len(off)


def wait_attached(agent, path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not attached(agent, path) and time.monotonic() < deadline:
        time.sleep(0.02)
    check(attached(agent, path), "no crypto/tls attach line for %s" % path)


def grpc_spans(kind, port, pid):
    return lambda s: (s.get("kind") == kind and attrs(s).get("rpc.system") == "grpc"
                      and attrs(s).get("server.port") == port
                      and res(s).get("process.pid") == pid)


def touches(port):
    return lambda s: port in (attrs(s).get("server.port"), attrs(s).get("network.peer.port"))


def code_name(span):
    c = attrs(span).get("rpc.grpc.status_code")
    return CODES[c] if isinstance(c, int) and 0 <= c < len(CODES) else c


class Pair:
    """A grpc-go TLS server and a client waiting for "go" on stdin."""

    def __init__(self, srv_bin, cli_bin):
        self.dir = tempfile.mkdtemp(prefix="periscope-e2e-gogrpctls-")
        os.chmod(self.dir, 0o755)
        cert, key = cert_pair(self.dir)
        self.log = os.path.join(self.dir, "calls.log")
        self.port = free_port()
        self.srv_err = open(os.path.join(self.dir, "server.err"), "w+")
        self.srv = subprocess.Popen([srv_bin, "server", str(self.port), self.log, "-tls", cert,
                                     key], stdout=subprocess.DEVNULL, stderr=self.srv_err,
                                    start_new_session=True)
        self.cli = None
        wait_listening(self.port, proc=self.srv)
        self.cli = subprocess.Popen([cli_bin, "client", str(self.port), str(CALLS), "-tls", cert,
                                     "-wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
        check_eq(self.cli.stdout.readline().strip(), "waiting", "client's first line")

    def run(self, agent, label):
        out, err = self.cli.communicate("go\n", timeout=60)
        check_eq(self.cli.returncode, 0, "%s client exit status (%s)" % (label, err[-300:]))
        results = [tuple(ln.split()) for ln in out.splitlines() if ln.strip()]
        check_eq(len(results), CALLS + CALLS // 5, "calls the %s client made" % label)
        check_eq(sum(1 for r in results if r[1] == "NOT_FOUND"), CALLS // 5,
                 "%s client's NOT_FOUND calls" % label)
        deadline = time.monotonic() + 10
        while len(read_lines(self.log)) < len(results) and time.monotonic() < deadline:
            time.sleep(0.05)
        want = collections.Counter(tuple(ln.split()) for ln in read_lines(self.log))
        check_eq(sum(want.values()), len(results), "calls in the %s server's log" % label)
        spans = agent.wait_for_spans(grpc_spans("SERVER", self.port, self.srv.pid),
                                     len(results), timeout=20, settle=0)
        cspans = agent.wait_for_spans(grpc_spans("CLIENT", self.port, self.cli.pid),
                                      len(results), timeout=20)
        print("  %s: client %d calls, CLIENT spans %d; server log %d, SERVER spans %d"
              % (label, len(results), len(cspans), sum(want.values()), len(spans)), flush=True)
        got = collections.Counter((attrs(s).get("rpc.method"), code_name(s)) for s in spans)
        if got != want:
            raise lib.CheckFailed("%s SERVER spans differ from its log: missing %s, extra %s"
                                  % (label, dict(want - got), dict(got - want)))
        cgot = collections.Counter((attrs(s).get("rpc.method"), code_name(s)) for s in cspans)
        cwant = collections.Counter(results)
        if cgot != cwant:
            raise lib.CheckFailed("%s CLIENT spans differ from the client's results: missing "
                                  "%s, extra %s" % (label, dict(cwant - cgot), dict(cgot - cwant)))
        for s in spans + cspans:
            a = attrs(s)
            w = "%s %s %s" % (label, s.get("kind"), s.get("name"))
            check_eq(s.get("name"), "demo.Echo/" + str(a.get("rpc.method")), w + " span name")
            check_eq(a.get("rpc.service"), "demo.Echo", w + " rpc.service")
            check_eq(a.get("url.scheme"), "https", w + " url.scheme")
            check_eq(a.get("network.protocol.version"), "2", w + " network.protocol.version")
        for s in spans:  # NOT_FOUND is not a server error
            check_eq(s.get("status"), "UNSET", "status of a %s SERVER span" % code_name(s))
        for s in cspans:
            want_status = "ERROR" if code_name(s) != "OK" else "UNSET"
            check_eq(s.get("status"), want_status, "status of a %s CLIENT span" % code_name(s))
        by_id = {s["span_id"]: s for s in cspans}
        paired = sum(1 for s in spans if s.get("parent_span_id") in by_id
                     and by_id[s["parent_span_id"]]["trace_id"] == s["trace_id"])
        check_eq(paired, len(spans), "%s SERVER spans whose parent is their CLIENT span" % label)
        every = agent.snapshot(touches(self.port))
        check_eq(len(every), len(spans) + len(cspans), "%s spans of any kind on the port" % label)
        check_eq(self.srv.poll(), None, "%s server still running" % label)
        self.srv_err.seek(0)
        check_eq(self.srv_err.read().strip(), "", "%s server's stderr" % label)

    def close(self):
        for p in (self.srv, self.cli):
            if p and p.poll() is None:
                p.kill()
                p.wait()
        self.srv_err.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@test
def go_grpc_tls_build_variants():
    """Default, -s -w and PIE -s -w builds, server and client started after the agent."""
    bins = {v: binary(v) for v in GO_VARIANTS}
    agent = lib.shared_agent()
    for v, b in bins.items():
        pair = Pair(b, b)
        try:
            # the client dials only after "go": by then the agent has attached to the file
            wait_attached(agent, b)
            pair.run(agent, v)
        finally:
            pair.close()


@test
def go_grpc_tls_started_before_agent():
    """A server and a client already running when the agent starts are probed at its start."""
    lib.require_agent()
    b = binary("stripped")
    pair = Pair(b, b)
    try:
        with lib.Agent() as agent:
            agent.wait_ready()
            wait_attached(agent, b)
            pair.run(agent, "started before the agent")
            agent.stop_and_check()
    finally:
        pair.close()


if __name__ == "__main__":
    sys.exit(lib.run_tests())
