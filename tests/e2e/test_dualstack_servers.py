#!/usr/bin/python3
"""test_dualstack_servers.py — end-to-end: addresses over IPv4, IPv6 and dual-stack sockets
(issue 18), outside the service chains (those are test_dualstack_chains.py).

- nginx with `listen [::]:PORT ipv6only=off` (one dual-stack socket) driven by curl over 127.0.0.1
  and over [::1], and by an HTTP/1.0 request without Host: one SERVER span per access-log line,
  and each span's client.address / network.peer.address / network.peer.port are the peer nginx
  logged ($remote_addr, its IPv4-mapped form written as IPv4), server.address the Host header's
  or, without one, the socket's own address (127.0.0.1 / ::1, never ::ffff:127.0.0.1).
- A Python http.server on ::1 only: the same, and curl's CLIENT spans; the http.client metric
  series carry server_address="::1".
- Redis and PostgreSQL reached over ::1 give the same spans (count, names, db.* attributes) as
  over 127.0.0.1, with server.address / network.peer.address ::1; the db.client metric series
  too. The agent's own Prometheus endpoint on [::1] is scraped without being traced.
- The agent's own traffic stays untraced over IPv6: --otlp-endpoint http://[::1]:PORT and
  --prometheus [::]:PORT (scraped over both families), with no --port filter.
"""

import collections
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chain  # noqa: E402
import lib  # noqa: E402
from lib import Agent, attrs, check, check_eq, curl, res, test  # noqa: E402
from servers import Nginx, PyServer  # noqa: E402

FAMILIES = (("IPv4", "127.0.0.1"), ("IPv6", "::1"))
_rows = []  # (what, family, spans with correct addresses, spans)


def url_host(host):
    return "[%s]" % host if ":" in host else host


def unmapped(addr):
    """An address as the agent exports it: IPv4-mapped IPv6 as IPv4."""
    return addr[7:] if addr.startswith("::ffff:") and "." in addr else addr


def raw_http10(host, port, path):
    """One HTTP/1.0 request without a Host header; returns the status line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect((host, port))
        s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def scrape(port, host="::1"):
    """The agent's /metrics text, fetched by curl (a traced process) over host."""
    p = subprocess.run([lib.CURL, "-sS", "-g", "--noproxy", "*", "--max-time", "10",
                        "http://%s:%d/metrics" % (url_host(host), port)],
                       capture_output=True, text=True)
    check_eq(p.returncode, 0, "curl /metrics exit status (%s)" % p.stderr.strip())
    return p.stdout


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def series(text, name):
    """[(labels, value)] of the samples of metric name."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and m.group(1) == name:
            out.append(({k: v for k, v in _LABEL.findall(m.group(2) or "")}, float(m.group(3))))
    return out


def record(what, family, spans, ok):
    _rows.append((what, family, ok, spans))


@test
def nginx_dualstack_spans_match_access_log():
    with Nginx(listen="[::]:{port} ipv6only=off") as nginx:
        check_eq(chain.listeners(nginx.port), ["::"], "nginx's listening sockets")
        lib.require_agent()
        with Agent(["--port", str(nginx.port)]) as agent:
            agent.wait_ready()
            sent = {}  # family -> number of requests
            for family, host in FAMILIES:
                base = "http://%s:%d" % (url_host(host), nginx.port)
                codes, _ = curl([base + "/echo", base + "/static/a.txt", base + "/missing"],
                                extra=["-g", "--noproxy", "*"])
                check_eq(codes, [200, 200, 404], "%s keep-alive curl statuses" % family)
                for _ in range(3):
                    codes, _ = curl(base + "/echo?x=1", extra=["-g", "--noproxy", "*"])
                    check_eq(codes, [200], "%s curl status" % family)
                check(raw_http10(host, nginx.port, "/nohost").startswith("HTTP/1.1 404"),
                      "%s HTTP/1.0 request without Host" % family)
                sent[family] = 7
            total = sum(sent.values())
            peers = nginx.wait_log_lines(total) and nginx.peers()
            check_eq(len(peers), total, "nginx peer-log lines")
            pids = nginx.pids()
            spans = agent.wait_for_spans(
                lambda s: s.get("kind") == "SERVER" and res(s).get("process.pid") in pids, total)
            agent.stop_and_check()
        check_eq(len(spans), len(nginx.requests()), "SERVER spans vs access-log lines")
        want = collections.Counter((unmapped(a), p, uri.split("?")[0]) for a, p, uri in peers)
        got = collections.Counter((attrs(s).get("client.address"), attrs(s).get("network.peer.port"),
                                   attrs(s).get("url.path")) for s in spans)
        check_eq(+got, +want, "(client.address, network.peer.port, url.path) of SERVER spans vs "
                              "nginx's ($remote_addr, $remote_port, $uri)")
        for family, host in FAMILIES:
            mine = [s for s in spans if attrs(s).get("client.address") == host]
            bad = [(attrs(s).get("url.path"), {k: attrs(s).get(k) for k in (
                "network.peer.address", "server.address", "server.port")}) for s in mine
                if attrs(s).get("network.peer.address") != host
                or attrs(s).get("server.address") != host
                or attrs(s).get("server.port") != nginx.port]
            record("nginx [::] ipv6only=off", family, len(mine), len(mine) - len(bad))
            check_eq(len(mine), sent[family], "%s SERVER spans" % family)
            check(not bad, "%s spans with other addresses: %s" % (family, bad[:4]))


@test
def python_server_on_ipv6_loopback_only():
    prom_port = lib.free_port()
    with PyServer(bind="::1") as srv:
        check_eq(chain.listeners(srv.port), ["::1"], "the Python server's listening sockets")
        lib.require_agent()
        with Agent(["--port", str(srv.port), "--prometheus", "[::1]:%d" % prom_port]) as agent:
            agent.wait_ready()
            base = "http://[::1]:%d" % srv.port
            codes, curl_pid = curl([base + "/ok", base + "/ok/2", base + "/fail", base + "/nope"],
                                   extra=["-g", "--noproxy", "*"])
            check_eq(codes, [200, 200, 500, 404], "curl statuses")
            check(raw_http10("::1", srv.port, "/ok/nohost").endswith(" 200 OK"),
                  "HTTP/1.0 request without Host")
            check_eq(len(srv.wait_log_lines(5)), 5, "server log lines")
            pids = srv.pids()
            spans = agent.wait_for_spans(
                lambda s: attrs(s).get("server.port") == srv.port, 9)
            text = scrape(prom_port)
            agent.stop_and_check()
        server = [s for s in spans if s["kind"] == "SERVER" and res(s).get("process.pid") in pids]
        client = [s for s in spans if s["kind"] == "CLIENT"
                  and res(s).get("process.pid") == curl_pid]
        check_eq(sorted(attrs(s).get("url.path") for s in server),
                 sorted(p for _, p, _ in srv.requests()), "SERVER spans vs the server's log")
        check_eq(len(client), 4, "curl CLIENT spans")
        keys = {"SERVER": ("client.address", "network.peer.address", "server.address"),
                "CLIENT": ("network.peer.address", "server.address")}
        bad = [(s["kind"], attrs(s).get("url.path"), {k: attrs(s).get(k) for k in keys[s["kind"]]})
               for s in server + client if any(attrs(s).get(k) != "::1" for k in keys[s["kind"]])]
        record("python http.server on ::1", "IPv6", len(server + client),
               len(server + client) - len(bad))
        check(not bad, "spans with an address other than ::1: %s" % bad[:4])
        check(all(attrs(s).get("server.port") == srv.port for s in server),
              "SERVER spans' server.port")
        check_eq(len([s for s in spans if attrs(s).get("server.port") == prom_port]), 0,
                 "spans of the agent's Prometheus endpoint scraped over [::1]")
        curl_series = [lab for lab, _ in series(text, "http_client_request_duration_seconds_count")
                       if lab.get("service_name") == "curl"
                       and lab.get("server_port") == str(srv.port)]
        check(curl_series, "no http_client series of curl for port %d" % srv.port)
        check_eq({lab.get("server_address") for lab in curl_series}, {"::1"},
                 "server_address of curl's http_client series")
        check("::ffff:" not in text, "an IPv4-mapped address in /metrics")


def db_signature(s):
    a = attrs(s)
    return (s["kind"], s["name"], s.get("status"), a.get("db.system.name"),
            a.get("db.operation.name"), a.get("db.collection.name"), a.get("db.namespace"),
            a.get("db.query.text"), a.get("db.response.status_code"), a.get("server.port"))


REDIS_COMMANDS = "SET dual:k v1\nGET dual:k\nGET item:3\nINCR dual:n\nHSET dual:h f 1\n" \
                 "HGET dual:h f\nDEL dual:k dual:n dual:h\nINCR item:1\n"
PG_STATEMENTS = ("SELECT name FROM items WHERE id = 3", "SELECT count(*) FROM items",
                 "UPDATE items SET name = name WHERE id = 1", "SELECT nope FROM items")


def run_redis_cli(rd, host):
    p = subprocess.Popen(["redis-cli", "-h", host, "-p", str(rd.port)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(REDIS_COMMANDS.encode(), timeout=30)
    check_eq(p.returncode, 0, "redis-cli -h %s exit status (%s)" % (host, err.decode().strip()))
    return p.pid, 8


def run_psql(pg, host):
    argv = [os.path.join(pg.bindir, "psql"), "-X", "-q", "-h", host, "-p", str(pg.port),
            "-U", pg.user, "-d", pg.dbname]
    for st in PG_STATEMENTS:
        argv += ["-c", st]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.communicate(timeout=30)  # the last statement fails on purpose
    return p.pid, len(PG_STATEMENTS)


@test
def redis_and_postgres_over_ipv6_match_ipv4():
    prom_port = lib.free_port()
    with chain.RedisServer(hosts=("127.0.0.1", "::1")) as rd, \
            chain.PostgresServer(hosts=("127.0.0.1", "::1")) as pg:
        check_eq(sorted(chain.listeners(rd.port)), ["127.0.0.1", "::1"], "Redis's sockets")
        check_eq(sorted(chain.listeners(pg.port)), ["127.0.0.1", "::1"], "PostgreSQL's sockets")
        lib.require_agent()
        with Agent(["--port", str(rd.port), "--port", str(pg.port),
                    "--prometheus", "[::1]:%d" % prom_port]) as agent:
            agent.wait_ready()
            runs = {}  # (db, family) -> spans
            for family, host in FAMILIES:
                for db, run in (("redis", run_redis_cli), ("postgresql", run_psql)):
                    pid, n = run(rd if db == "redis" else pg, host)
                    got = agent.wait_for_spans(
                        lambda s, pid=pid: res(s).get("process.pid") == pid, n, settle=0.5)
                    runs[(db, family)] = got
            time.sleep(1.0)
            text = scrape(prom_port)
            agent.stop_and_check()
        for db in ("redis", "postgresql"):
            v4, v6 = runs[(db, "IPv4")], runs[(db, "IPv6")]
            check(v4, "no %s spans over IPv4" % db)
            check_eq(sorted(map(db_signature, v6)), sorted(map(db_signature, v4)),
                     "%s spans over ::1 vs over 127.0.0.1" % db)
            for family, host in FAMILIES:
                spans = runs[(db, family)]
                bad = [(s["name"], attrs(s).get("server.address"),
                        attrs(s).get("network.peer.address")) for s in spans
                       if attrs(s).get("server.address") != host
                       or attrs(s).get("network.peer.address") != host]
                record("%s client, direct" % db, family, len(spans), len(spans) - len(bad))
                check(not bad, "%s %s spans with an address other than %s: %s"
                      % (db, family, host, bad[:4]))
        counts = collections.Counter()
        for lab, v in series(text, "db_client_operation_duration_seconds_count"):
            counts[(lab.get("db_system_name"), lab.get("server_address"))] += int(v)
        for db in ("redis", "postgresql"):
            for family, host in FAMILIES:
                check_eq(counts[(db, host)], len(runs[(db, family)]),
                         "db_client_operation_duration_seconds_count{db_system_name=%s,"
                         "server_address=%s}" % (db, host))
        check("::ffff:" not in text, "an IPv4-mapped address in /metrics")
        check_eq([s["name"] for s in agent.snapshot(
            lambda s: attrs(s).get("server.port") == prom_port)], [],
            "spans of the agent's Prometheus endpoint scraped over [::1]")


@test
def own_traffic_over_ipv6_is_not_traced():
    otlp = lib.otlp_support()
    prom_port = lib.free_port()
    with otlp.Receiver(host="::1") as rcv, PyServer(bind="::1") as srv:
        lib.require_agent()
        env = {"OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_METRIC_EXPORT_INTERVAL": "500"}
        with Agent(["--otlp-endpoint", rcv.url, "--prometheus", "[::]:%d" % prom_port],
                   env=env) as agent:  # traces everything, itself included if it were wrong
            agent.wait_ready()
            for _ in range(4):
                codes, _ = curl(["http://[::1]:%d/ok" % srv.port] * 2,
                                extra=["-g", "--noproxy", "*"])
                check_eq(codes, [200, 200], "curl statuses")
                for host in ("127.0.0.1", "::1"):
                    scrape(prom_port, host)
                time.sleep(0.5)
            agent.wait_for_spans(lambda s: attrs(s).get("server.port") == srv.port, 16, settle=0)
            deadline = time.monotonic() + 10
            while len(rcv.trace_posts()) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            check(len(rcv.trace_posts()) >= 2, "receiver got %d trace posts, want >= 2"
                  % len(rcv.trace_posts()))
            time.sleep(1.5)  # spans of those posts, were they traced, would be out by now
            own = agent.snapshot(lambda s: attrs(s).get("server.port") in (rcv.port, prom_port)
                                 or res(s).get("process.pid") == agent.pid)
            check_eq([(s["kind"], res(s).get("service.name"), attrs(s).get("server.port"),
                       attrs(s).get("url.path")) for s in own], [],
                     "spans of the agent's OTLP posts to [::1] and of its [::] Prometheus "
                     "endpoint")
            agent.stop_and_check()
        exported = otlp.all_spans(rcv)
        check(any(s["attributes"].get("server.port") == srv.port for s in exported),
              "no spans of the Python server decoded from the receiver")
        leaked = [s for s in exported if s["attributes"].get("server.port") in (rcv.port,
                                                                                prom_port)]
        check_eq(len(leaked), 0, "exported spans of the agent's own traffic")


def print_table():
    if not _rows:
        return
    print("dual-stack servers and databases (spans with every address right):")
    for what, family, spans, ok in _rows:
        print("  %-28s | %-4s | %d/%d (%.0f %%)" % (what, family, ok, spans,
                                                  100.0 * ok / spans if spans else 0))


if __name__ == "__main__":
    status = lib.run_tests()
    print_table()
    sys.exit(status)
