#!/usr/bin/python3
"""test_grpc_stacks.py — end-to-end: gRPC over cleartext HTTP/2 with Go's grpc (Debian
golang-google-grpc-dev, built offline in GOPATH mode) and Node's @grpc/grpc-js (npm,
apps/grpc-node), client and server each (apps/grpc-go, apps/grpc-node): Unary calls (some failing
NOT_FOUND) and server-streaming calls, SERVER and CLIENT spans counted against the server's own log
of every call it finished, per method and status; same-node pairing per stream. And the chain
client → A (grpc-js server that calls B over gRPC and Redis) → B: one connected trace per call.
Node is the stack whose links are provable: its event loop reads the request and makes the calls
in turns that request owns; grpcio and Go grpc servers run handlers on worker threads / goroutines
that never read the request, which the agent leaves unlinked by design (trace_links.h).
"""

import collections
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import attrs, check, check_eq, res, test  # noqa: E402
from grpc_apps import go_binary, node_app  # noqa: E402
from servers import free_port, read_lines, wait_listening  # noqa: E402

CODES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND"]
CALLS = 20  # per client run: 20 Unary (4 NOT_FOUND) + 4 ServerStream


def grpc_spans(kind, port, pid=None):
    def pred(s):
        a = attrs(s)
        return (s.get("kind") == kind and a.get("rpc.system") == "grpc"
                and a.get("server.port") == port
                and (pid is None or res(s).get("process.pid") == pid))
    return pred


def code_name(span):
    c = attrs(span).get("rpc.grpc.status_code")
    return CODES[c] if isinstance(c, int) and 0 <= c < len(CODES) else c


def run_stack(name, server_argv, client_argv):
    agent = lib.shared_agent()
    d = tempfile.mkdtemp(prefix="periscope-e2e-grpc-%s-" % name)
    log = os.path.join(d, "calls.log")
    port = free_port()
    srv = subprocess.Popen(server_argv(port, log), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_listening(port, proc=srv)
        out = subprocess.run(client_argv(port), capture_output=True, text=True, timeout=60)
        check_eq(out.returncode, 0, "%s client exit status (%s)" % (name, out.stderr[-300:]))
        results = [tuple(ln.split()) for ln in out.stdout.splitlines() if ln.strip()]
        check_eq(len(results), CALLS + CALLS // 5, "calls the %s client made" % name)
        want = collections.Counter(tuple(ln.split()) for ln in read_lines(log))
        check_eq(sum(want.values()), len(results), "calls in the %s server's log" % name)
        spans = agent.wait_for_spans(grpc_spans("SERVER", port, srv.pid), len(results),
                                     timeout=20)
        got = collections.Counter((attrs(s).get("rpc.method"), code_name(s)) for s in spans)
        if got != want:
            raise AssertionError("%s SERVER spans differ from its log: missing %s, extra %s"
                                 % (name, dict(want - got), dict(got - want)))
        cspans = agent.wait_for_spans(grpc_spans("CLIENT", port), len(results), timeout=10)
        cgot = collections.Counter((attrs(s).get("rpc.method"), code_name(s)) for s in cspans)
        cwant = collections.Counter(results)
        if cgot != cwant:
            raise AssertionError("%s CLIENT spans differ from the client's results: missing %s, "
                                 "extra %s" % (name, dict(cwant - cgot), dict(cgot - cwant)))
        for s in spans + cspans:
            a = attrs(s)
            check_eq(s.get("name"), "demo.Echo/" + str(a.get("rpc.method")), "span name")
            check_eq(a.get("rpc.service"), "demo.Echo", "rpc.service")
            check_eq(a.get("network.protocol.version"), "2", "network.protocol.version")
        for s in spans:  # NOT_FOUND is not a server error
            check_eq(s.get("status"), "UNSET", "status of a %s SERVER span" % code_name(s))
        for s in cspans:
            want_status = "ERROR" if code_name(s) != "OK" else "UNSET"
            check_eq(s.get("status"), want_status, "status of a %s CLIENT span" % code_name(s))
        by_id = {s["span_id"]: s for s in cspans}
        paired = sum(1 for s in spans if s.get("parent_span_id") in by_id
                     and by_id[s["parent_span_id"]]["trace_id"] == s["trace_id"])
        check_eq(paired, len(spans), "%s server spans paired with their client span" % name)
        print("  %s: %d calls, server log %d, SERVER spans %d, CLIENT spans %d, paired %d"
              % (name, len(results), sum(want.values()), len(spans), len(cspans), paired))
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


@test
def test_go_grpc():
    go = go_binary()
    if not go:
        lib.skip("go or golang-google-grpc-dev is not installed")
    run_stack("go", lambda port, log: [go, "server", str(port), log],
              lambda port: [go, "client", str(port), str(CALLS)])


@test
def test_node_grpc_js():
    app = node_app()
    if not app:
        lib.skip("node/npm not installed")
    run_stack("node", lambda port, log: ["node", app, "server", str(port), log],
              lambda port: ["node", app, "client", str(port), str(CALLS)])


@test
def test_node_grpc_chain():
    app = node_app()
    if not app:
        lib.skip("node/npm not installed")
    import chain
    try:
        redis = chain.RedisServer()
    except chain.ToolchainMissing as e:
        lib.skip(str(e))
    agent = lib.shared_agent()
    d = tempfile.mkdtemp(prefix="periscope-e2e-grpc-chain-")
    procs = []

    def serve(name, extra=()):
        port, log = free_port(), os.path.join(d, name + ".log")
        p = subprocess.Popen(["node", app, "server", str(port), log] + list(extra),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        procs.append(p)
        wait_listening(port, proc=p)
        return port, log, p

    n = 10
    try:
        b_port, b_log, b = serve("b")
        a_port, a_log, a = serve("a", [str(b_port), str(redis.port)])
        gets_before = redis.command_calls("get")
        out = subprocess.run(["node", app, "chain", str(a_port), str(n)], capture_output=True,
                             text=True, timeout=60)
        check_eq(out.stdout.split(), ["Unary", "OK"] * n, "chain calls' statuses")
        check_eq(len(read_lines(a_log)), n, "calls in A's log")
        check_eq(len(read_lines(b_log)), n, "calls in B's log")
        check_eq(redis.command_calls("get") - gets_before, n, "GETs in Redis's commandstats")
        a_srv = agent.wait_for_spans(grpc_spans("SERVER", a_port, a.pid), n, timeout=20)
        b_srv = agent.wait_for_spans(grpc_spans("SERVER", b_port, b.pid), n, timeout=10)
        a_cli = agent.wait_for_spans(grpc_spans("CLIENT", b_port, a.pid), n, timeout=10)
        rds = agent.wait_for_spans(
            lambda s: s.get("kind") == "CLIENT" and attrs(s).get("db.system.name") == "redis"
            and attrs(s).get("server.port") == redis.port
            and res(s).get("process.pid") == a.pid, n, timeout=10)
        client = [s for s in agent.wait_for_spans(grpc_spans("CLIENT", a_port), n, timeout=10)
                  if res(s).get("process.pid") not in (a.pid, b.pid)]
        for what, got in (("A SERVER", a_srv), ("B SERVER", b_srv), ("A→B CLIENT", a_cli),
                          ("A→Redis CLIENT", rds), ("client CLIENT", client)):
            check_eq(len(got), n, what + " spans")
        connected = 0
        for root in client:
            tid = root["trace_id"]
            a_s = [s for s in a_srv if s["trace_id"] == tid]
            if len(a_s) != 1 or a_s[0].get("parent_span_id") != root["span_id"]:
                continue
            kids = [s for s in a_cli + rds if s.get("parent_span_id") == a_s[0]["span_id"]]
            b_s = [s for s in b_srv if s["trace_id"] == tid]
            if (len(kids) == 2 and {attrs(k).get("server.port") for k in kids}
                    == {b_port, redis.port} and all(k["trace_id"] == tid for k in kids)
                    and len(b_s) == 1 and b_s[0].get("parent_span_id")
                    in {k["span_id"] for k in kids}):
                connected += 1
        check_eq(len({s["trace_id"] for s in client}), n, "distinct traces")
        check_eq(connected, n, "calls with one connected trace client → A → (B, Redis)")
        print("  node grpc chain: %d calls; A log %d, B log %d, Redis GETs %d; connected traces %d"
              % (n, n, n, n, connected))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        redis.stop()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(lib.run_tests())
