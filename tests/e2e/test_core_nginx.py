#!/usr/bin/python3
"""test_core_nginx.py — end-to-end: nginx driven by curl, compared with nginx's own access log.

One agent (--print=json) serves every test of this file; each test starts its own nginx on its own
port, so the spans of one test are told apart from every other process on the host by server.port
and by the nginx/curl pids.
"""

import collections
import os
import random
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import attrs, check, check_eq, curl, res, test  # noqa: E402
import servers  # noqa: E402
from servers import Nginx  # noqa: E402

HEX = set("0123456789abcdef")


def is_hex(s, n):
    return isinstance(s, str) and len(s) == n and set(s) <= HEX and s != "0" * n


def server_spans(nginx):
    pids = nginx.pids()
    return lambda s: (s.get("kind") == "SERVER" and attrs(s).get("server.port") == nginx.port
                      and res(s).get("process.pid") in pids)


def client_spans(port, pids=None):
    return lambda s: (s.get("kind") == "CLIENT" and attrs(s).get("server.port") == port
                      and res(s).get("service.name") == "curl"
                      and (pids is None or res(s).get("process.pid") in pids))


def span_key(s):
    a = attrs(s)
    return (a.get("http.request.method"), a.get("url.path"), a.get("http.response.status_code"))


def drive_mixed(base):
    """Separate curl processes, one keep-alive curl with several URLs, and a parallel burst.
    Returns the list of (method, path, status) curl saw and the curl pids."""
    seen, pids = [], set()
    single = ["/static/a.txt", "/missing", "/fail?secret=abc", "/redirect", "/echo"]
    for path in single:
        codes, pid = curl(base + path)
        pids.add(pid)
        seen.append(("GET", path.split("?")[0], codes[0]))
    keepalive = ["/static/a.txt", "/static/big.bin", "/echo?x=2", "/missing", "/fail", "/echo"]
    codes, pid = curl([base + p for p in keepalive])
    pids.add(pid)
    check_eq(len(codes), len(keepalive), "keep-alive curl answers")
    seen += [("GET", p.split("?")[0], c) for p, c in zip(keepalive, codes)]
    burst = ["/echo?i=%d" % i if i % 3 else "/static/a.txt" for i in range(24)]
    codes, pid = curl([base + p for p in burst], extra=["--parallel", "--parallel-max", "6"])
    pids.add(pid)
    check_eq(len(codes), len(burst), "parallel curl answers")
    # --parallel reports in completion order; count by the multiset of paths
    check_eq(sorted(codes), [200] * len(burst), "parallel curl statuses")
    seen += [("GET", p.split("?")[0], 200) for p in burst]
    return seen, pids


@test
def nginx_server_spans_match_access_log():
    agent = lib.shared_agent()
    with Nginx() as nginx:
        seen, _ = drive_mixed("http://127.0.0.1:%d" % nginx.port)
        log = nginx.wait_log_lines(len(seen))
        check_eq(len(log), len(seen), "access-log lines")
        want = collections.Counter((m, u, st) for m, u, st, _ in nginx.requests())
        spans = agent.wait_for_spans(server_spans(nginx), len(seen))
        got = collections.Counter(span_key(s) for s in spans)
        if got != want:
            raise AssertionError("nginx SERVER spans differ from the access log: missing %s, "
                                 "extra %s" % (dict(want - got), dict(got - want)))
        check_eq(len(spans), len(log), "nginx SERVER span count")
        for s in spans:
            check_eq(res(s).get("service.name"), "nginx", "service.name")


@test
def curl_client_spans_match_requests():
    agent = lib.shared_agent()
    with Nginx() as nginx:
        seen, pids = drive_mixed("http://127.0.0.1:%d" % nginx.port)
        spans = agent.wait_for_spans(client_spans(nginx.port), len(seen))
        got = collections.Counter(span_key(s) for s in spans)
        want = collections.Counter(seen)
        if got != want:
            raise AssertionError("curl CLIENT spans differ from the requests curl made: missing %s,"
                                 " extra %s" % (dict(want - got), dict(got - want)))
        for s in spans:
            check(res(s).get("process.pid") in pids,
                  "CLIENT span from pid %r, not one of curl's %s" % (res(s).get("process.pid"),
                                                                     sorted(pids)))


@test
def nginx_span_attributes_and_status():
    agent = lib.shared_agent()
    with Nginx() as nginx:
        base = "http://127.0.0.1:%d" % nginx.port
        ua = "curl-e2e/%d" % random.randrange(1 << 30)
        paths = ["/static/a.txt?token=secret1", "/missing?token=secret2", "/fail?token=secret3"]
        codes, curl_pid = curl([base + p for p in paths], headers=["User-Agent: " + ua])
        check_eq(codes, [200, 404, 500], "curl statuses")
        srv = agent.wait_for_spans(server_spans(nginx), 3)
        cli = agent.wait_for_spans(client_spans(nginx.port, {curl_pid}), 3, settle=0)
        check_eq(len(srv), 3, "SERVER spans")
        check_eq(len(cli), 3, "CLIENT spans")
        want_status = {200: ("UNSET", "UNSET"), 404: ("UNSET", "ERROR"), 500: ("ERROR", "ERROR")}
        for kind, spans in (("SERVER", srv), ("CLIENT", cli)):
            by_code = {attrs(s).get("http.response.status_code"): s for s in spans}
            check_eq(sorted(by_code), [200, 404, 500], "%s status codes (ints)" % kind)
            for code, s in by_code.items():
                a = attrs(s)
                what = "%s %d span" % (kind, code)
                lib.check_span_name(s, what)
                check_eq(a.get("http.request.method"), "GET", what + " http.request.method")
                path = {200: "/static/a.txt", 404: "/missing", 500: "/fail"}[code]
                check_eq(a.get("url.path"), path, what + " url.path")
                check_eq(a.get("url.scheme"), "http", what + " url.scheme")
                check_eq(a.get("server.port"), nginx.port, what + " server.port")
                check(a.get("server.address") in ("127.0.0.1", "localhost"),
                      what + " server.address is %r" % a.get("server.address"))
                check_eq(a.get("network.protocol.version"), "1.1",
                         what + " network.protocol.version")
                check_eq(a.get("user_agent.original"), ua, what + " user_agent.original")
                peer = a.get("network.peer.port")
                check(isinstance(peer, int) and 0 < peer < 65536,
                      what + " network.peer.port is %r" % peer)
                check_eq(a.get("network.peer.address"), "127.0.0.1", what + " network.peer.address")
                want = want_status[code][0 if kind == "SERVER" else 1]
                if want == "ERROR":
                    check_eq(s.get("status"), "ERROR", what + " status")
                else:
                    check(s.get("status") in ("UNSET", "OK"), what + " status is %r"
                          % s.get("status"))
                text = repr(s)
                check("secret" not in text and "token=" not in text,
                      what + " exports the query string: " + text)
            if kind == "SERVER":
                for s in spans:
                    check_eq(attrs(s).get("client.address"), "127.0.0.1", "SERVER client.address")
                    check(attrs(s).get("network.peer.port") != nginx.port,
                          "SERVER network.peer.port should be curl's port")
            else:
                for s in spans:
                    check_eq(attrs(s).get("network.peer.port"), nginx.port,
                             "CLIENT network.peer.port")
        # resources
        host = socket.gethostname()
        for s in srv:
            r = res(s)
            check_eq(r.get("service.name"), "nginx", "nginx service.name")
            check(r.get("process.pid") in nginx.pids(),
                  "nginx process.pid %r" % r.get("process.pid"))
            check_eq(r.get("process.executable.name"), "nginx", "nginx process.executable.name")
            check_eq(r.get("process.executable.path"), os.path.realpath(servers.NGINX),
                     "nginx process.executable.path")
            check_eq(r.get("host.name"), host, "host.name")
            check_eq(r.get("telemetry.sdk.name"), "periscope", "telemetry.sdk.name")
        for s in cli:
            r = res(s)
            check_eq(r.get("service.name"), "curl", "curl service.name")
            check_eq(r.get("process.pid"), curl_pid, "curl process.pid")
            check_eq(r.get("process.executable.name"), "curl", "curl process.executable.name")
            check_eq(r.get("process.executable.path"), os.path.realpath(lib.CURL),
                     "curl process.executable.path")


@test
def traceparent_is_honoured():
    agent = lib.shared_agent()
    with Nginx() as nginx:
        base = "http://127.0.0.1:%d" % nginx.port
        trace = "%032x" % random.getrandbits(128)
        parent = "%016x" % random.getrandbits(64)
        codes, _ = curl(base + "/echo?with=traceparent",
                        headers=["traceparent: 00-%s-%s-01" % (trace, parent)])
        check_eq(codes, [200], "curl status")
        codes, _ = curl([base + "/static/a.txt", base + "/static/a.txt"])  # no traceparent
        check_eq(codes, [200, 200], "curl statuses")
        logged = [tp for _, _, _, tp in nginx.requests()]
        check_eq(logged[:1], ["00-%s-%s-01" % (trace, parent)], "traceparent nginx logged")
        spans = agent.wait_for_spans(server_spans(nginx), 3)
        check_eq(len(spans), 3, "SERVER spans")
        with_tp = [s for s in spans if attrs(s).get("url.path") == "/echo"]
        check_eq(len(with_tp), 1, "SERVER spans for /echo")
        s = with_tp[0]
        check_eq(s.get("trace_id"), trace, "trace_id from traceparent")
        check_eq(s.get("parent_span_id"), parent, "parent_span_id from traceparent")
        check(is_hex(s.get("span_id"), 16) and s.get("span_id") != parent,
              "span_id %r must be a new 16-hex id" % s.get("span_id"))
        plain = [s for s in spans if attrs(s).get("url.path") == "/static/a.txt"]
        for p in plain:
            check(is_hex(p.get("trace_id"), 32), "trace_id %r is not 32 hex" % p.get("trace_id"))
            check(is_hex(p.get("span_id"), 16), "span_id %r is not 16 hex" % p.get("span_id"))
            check(p.get("trace_id") != trace, "a request without traceparent reused its trace")
            # same-node pairing: the server span is the child of curl's client span
            parents = agent.snapshot(lambda x, p=p: x.get("kind") == "CLIENT"
                                     and x.get("span_id") == p.get("parent_span_id"))
            check_eq(len(parents), 1, "curl CLIENT span that is the parent of nginx's span")
            check_eq(parents[0].get("trace_id"), p.get("trace_id"), "paired spans share the trace")
            check_eq(res(parents[0]).get("service.name"), "curl", "parent span's service")
            check_eq(attrs(parents[0]).get("url.path"), "/static/a.txt", "parent span's path")
        check(plain[0].get("trace_id") != plain[1].get("trace_id"),
              "two requests without traceparent share trace id %s" % plain[0].get("trace_id"))


@test
def span_timing_is_sane():
    agent = lib.shared_agent()
    with Nginx() as nginx:
        base = "http://127.0.0.1:%d" % nginx.port
        t0 = time.time_ns()
        codes, curl_pid = curl([base + "/static/big.bin", base + "/echo", base + "/fail"])
        t1 = time.time_ns()
        check_eq(codes, [200, 200, 500], "curl statuses")
        srv = agent.wait_for_spans(server_spans(nginx), 3)
        cli = agent.wait_for_spans(client_spans(nginx.port, {curl_pid}), 3, settle=0)
        check_eq(len(srv), 3, "SERVER spans")
        check_eq(len(cli), 3, "CLIENT spans")
        for s in srv + cli:
            what = "%s %s span" % (s.get("kind"), attrs(s).get("url.path"))
            start, end = s.get("start_time_unix_nano"), s.get("end_time_unix_nano")
            check(isinstance(start, int) and isinstance(end, int), what + " times are not ints")
            check(start <= end, what + " starts after it ends")
            check(t0 - 1_000_000_000 <= start, what + " starts %.3f s before curl ran"
                  % ((t0 - start) / 1e9))
            check(end <= t1 + 1_000_000_000, what + " ends %.3f s after curl exited"
                  % ((end - t1) / 1e9))
            check(end <= s["_seen_unix_nano"], what + " ends after it was printed")
            dur = s.get("duration_ms")
            check(isinstance(dur, (int, float)) and 0 <= dur < 5000, what + " duration_ms %r" % dur)
            check(abs(dur - (end - start) / 1e6) < 0.01,
                  what + " duration_ms %r disagrees with end-start %r" % (dur, (end - start) / 1e6))
        # the client's view of an exchange encloses the server's (same host clock)
        by_path = {attrs(s).get("url.path"): s for s in srv}
        for c in cli:
            s = by_path[attrs(c).get("url.path")]
            check(c["start_time_unix_nano"] <= s["start_time_unix_nano"] + 1_000_000
                  and s["end_time_unix_nano"] <= c["end_time_unix_nano"] + 1_000_000,
                  "CLIENT span %s [%d, %d] does not enclose the SERVER span [%d, %d]"
                  % (attrs(c).get("url.path"), c["start_time_unix_nano"], c["end_time_unix_nano"],
                     s["start_time_unix_nano"], s["end_time_unix_nano"]))


@test
def otlp_export_matches_json():
    """The spans printed as JSON arrive at an OTLP receiver; decoded with the official protos
    (with proto/otlp.proto when ../shared is absent)."""
    otlp = lib.otlp_support()
    with otlp.Receiver() as rcv, Nginx() as nginx:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_BSP_SCHEDULE_DELAY": "300"}
        lib.require_agent()
        with lib.Agent(args=["--port", str(nginx.port)], env=env) as agent:
            agent.wait_ready()
            base = "http://127.0.0.1:%d" % nginx.port
            trace = "%032x" % random.getrandbits(128)
            codes, curl_pid = curl([base + "/echo", base + "/fail", base + "/missing?q=secret"],
                                   headers=["traceparent: 00-%s-%016x-01"
                                            % (trace, random.getrandbits(64))])
            check_eq(codes, [200, 500, 404], "curl statuses")
            srv = agent.wait_for_spans(server_spans(nginx), 3)
            cli = agent.wait_for_spans(client_spans(nginx.port, {curl_pid}), 3, settle=0)
            check_eq(len(srv), 3, "SERVER spans printed")
            check_eq(len(cli), 3, "CLIENT spans printed")
            printed = {s["span_id"]: s for s in srv + cli}
            exported = otlp.wait_spans(rcv, lambda s: s["span_id"] in printed, len(printed),
                                       timeout=15)
            got = {s["span_id"]: s for s in exported if s["span_id"] in printed}
            check_eq(sorted(got), sorted(printed), "span ids exported over OTLP")
            for sid, p in printed.items():
                e = got[sid]
                what = "OTLP span %s (%s %s)" % (sid, p["kind"], attrs(p).get("url.path"))
                for field in ("trace_id", "parent_span_id", "name", "kind", "status",
                              "start_time_unix_nano", "end_time_unix_nano"):
                    check_eq(e.get(field), p.get(field), what + " " + field)
                for k, v in attrs(p).items():
                    check_eq(e["attributes"].get(k), v, what + " attribute " + k)
                for k in ("service.name", "process.pid", "process.executable.name", "host.name",
                          "telemetry.sdk.name"):
                    check_eq(e["resource"].get(k), res(p).get(k), what + " resource " + k)
                check("secret" not in repr(e), what + " exports the query string")
            check(any(s["trace_id"] == trace for s in got.values()),
                  "the traceparent's trace id is not among the exported spans")
            agent.stop_and_check()


def kernel_has_socket_tracepoints():
    """sock:sock_send_length / sock_recv_length as BTF tracepoints (Linux >= 6.3)."""
    try:
        with open("/sys/kernel/btf/vmlinux", "rb") as f:
            btf = f.read()
    except OSError:
        return False
    return b"btf_trace_sock_send_length" in btf and b"btf_trace_sock_recv_length" in btf


def data_hooks_of(agent):
    ready = [r for r in agent.log_records if r.get("msg") == "ready"]
    check(ready, "no ready log line")
    return ready[-1].get("data_hooks")


def serve_and_compare(agent_args, want_hooks):
    """nginx with sendfile on, driven over keep-alive connections (static files go out with
    sendfile(2), the rest with writev): SERVER and CLIENT spans against the access log, and the
    response body bytes the metrics counted against the bytes nginx logged."""
    prom = servers.free_port()
    with Nginx(sendfile=True) as nginx, \
            lib.Agent(args=["--port", str(nginx.port), "--prometheus", "127.0.0.1:%d" % prom]
                      + agent_args) as agent:
        agent.wait_ready()
        check_eq(data_hooks_of(agent), want_hooks, "data hooks in the ready line")
        base = "http://127.0.0.1:%d" % nginx.port
        paths = ["/static/big.bin", "/static/a.txt", "/echo", "/missing", "/fail"] * 8
        codes, pid = curl([base + p for p in paths])
        check_eq(len(codes), len(paths), "curl answers")
        seen, _ = drive_mixed(base)
        seen += [("GET", p, c) for p, c in zip(paths, codes)]
        nginx.wait_log_lines(len(seen))
        want = collections.Counter((m, u, st) for m, u, st, _ in nginx.requests())
        srv = agent.wait_for_spans(server_spans(nginx), len(seen))
        got = collections.Counter(span_key(s) for s in srv)
        if got != want:
            raise AssertionError("SERVER spans differ from the access log: missing %s, extra %s"
                                 % (dict(want - got), dict(got - want)))
        cli = agent.wait_for_spans(client_spans(nginx.port), len(seen), settle=0)
        check_eq(collections.Counter(span_key(s) for s in cli), collections.Counter(seen),
                 "curl CLIENT spans (method, path, status)")
        sizes = nginx.body_sizes()
        metrics = lib.parse_prom(lib.scrape(prom))
        counted = sum(v for name, _, v in metrics
                      if name == "http_server_response_body_size_bytes_sum")
        logged = sum(n for _, _, n in sizes)
        big = sum(1 for u, st, n in sizes if u == "/static/big.bin" and n == 204800)
        print("  %s: %d requests, %d SERVER / %d CLIENT spans; response bodies %d bytes counted, "
              "%d logged (%d of 204800 bytes by sendfile)"
              % (want_hooks, len(seen), len(srv), len(cli), counted, logged, big))
        check(big >= 9, "nginx sent big.bin whole %d times" % big)
        check_eq(int(counted), logged, "response body bytes (metrics vs access log)")
        agent.stop_and_check()


@test
def socket_tracepoints_match_access_log():
    """The default data path where the kernel has the socket tracepoints."""
    if not kernel_has_socket_tracepoints():
        lib.skip("the kernel has no sock_send_length/sock_recv_length tracepoints")
    serve_and_compare([], "socket tracepoints")


@test
def syscall_exits_match_access_log():
    """--syscall-data: the syscall-exit path (older kernels' only one) stays right."""
    serve_and_compare(["--syscall-data"], "syscall exits")


if __name__ == "__main__":
    sys.exit(lib.run_tests())
