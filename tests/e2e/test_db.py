"""test_db.py — database CLIENT spans and metrics against the servers' own statistics (issue 4).

Real servers on 127.0.0.1 (chain.PostgresServer with pg_stat_statements, chain.RedisServer, and a
throwaway MariaDB built here with performance_schema on) are driven by real clients (pgbench in
simple and prepared mode, redis-benchmark with and without pipelining, mariadb-slap, psql,
redis-cli, mariadb). The agent runs with `--port <db port>` and a Prometheus endpoint on a free
port; its spans are counted against the server's record (pg_stat_statements, INFO commandstats /
errorstats, performance_schema statement summaries) and its db_client_operation_duration_seconds
counts against the spans. Every workload runs once per file (cached) and several tests look at it.
Python 3 standard library only; run with /usr/bin/python3.
"""

import collections
import os
import re
import shutil
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
from lib import attrs, check, check_eq, res, test  # noqa: E402
import chain  # noqa: E402
from servers import free_port, wait_listening  # noqa: E402

PGBENCH_CLIENTS = 2
PGBENCH_TXNS = 200  # per client
REDIS_N = 2000

# pgbench's TPC-B statements: span name → the query text with literals replaced by `?`
TPCB = collections.OrderedDict([
    ("BEGIN", "BEGIN"),
    ("UPDATE pgbench_accounts",
     "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?"),
    ("SELECT pgbench_accounts", "SELECT abalance FROM pgbench_accounts WHERE aid = ?"),
    ("UPDATE pgbench_tellers", "UPDATE pgbench_tellers SET tbalance = tbalance + ? WHERE tid = ?"),
    ("UPDATE pgbench_branches",
     "UPDATE pgbench_branches SET bbalance = bbalance + ? WHERE bid = ?"),
    ("INSERT pgbench_history", "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
                               "VALUES (?, ?, ?, ?, CURRENT_TIMESTAMP)"),
    ("END", "END"),
])


def no_proxy_opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


# ---- Prometheus

_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')
DB_HIST_COUNT = "db_client_operation_duration_seconds_count"


def scrape_db_counts(port):
    """({(db_system_name, db_operation_name): count} from db_client_operation_duration_seconds_count
    on the agent's /metrics (summed over the other labels), [the agent's non-zero self-metric
    lines])."""
    with no_proxy_opener().open("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        check_eq(r.status, 200, "GET /metrics status")
        text = r.read().decode("utf-8")
    self_lines = [line for line in text.splitlines() if line.startswith("periscope_")
                  and not line.endswith(" 0") and "proc_e" not in line]
    counts = collections.Counter()
    for line in text.splitlines():
        if not line.startswith(DB_HIST_COUNT):
            continue
        m = _SAMPLE.match(line)
        check(m is not None, "malformed Prometheus line: %r" % line)
        labels = {lm.group(1): lm.group(2) for lm in _LABEL.finditer(m.group(2) or "")}
        counts[(labels.get("db_system_name"), labels.get("db_operation_name"))] += int(
            float(m.group(3)))
    return counts, self_lines


def span_db_counts(spans):
    return collections.Counter((attrs(s).get("db.system.name"), attrs(s).get("db.operation.name"))
                               for s in spans)


# ---- one traced run: agent with --port and Prometheus, a workload, the server's pids watched

class Run:
    """The result of one traced workload: spans (all the agent printed), metric counts scraped
    before the agent stopped, the server pids seen while it ran, and whatever the workload
    returned."""

    def __init__(self):
        self.spans = []
        self.metrics = collections.Counter()
        self.server_pids = set()
        self.data = {}
        self.agent_rc = None
        self.agent_tail = ""
        self.self_metrics = []  # the agent's non-zero periscope_* lines at the end
        self.warnings = []  # the agent's warn/error log lines

    def diag(self):
        """What the agent said about itself, for a failure message."""
        return "\n    agent self-metrics: %s\n    agent warnings: %s" % (
            "; ".join(self.self_metrics) or "-", "; ".join(self.warnings[-5:]) or "-")


def traced_run(db_port, workload, server_pids, expect_spans, settle=1.5):
    """Starts the agent on db_port, runs workload() (→ dict) while polling server_pids(), waits for
    expect_spans(data) spans, scrapes the metrics, stops the agent (flush) and returns a Run."""
    lib.require_agent()
    run = Run()
    prom = free_port()
    with lib.Agent(args=["--port", str(db_port), "--prometheus", "127.0.0.1:%d" % prom]) as agent:
        agent.wait_ready()
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                run.server_pids |= server_pids()
                stop.wait(0.05)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            run.data = workload()
        finally:
            stop.set()
            watcher.join(5)
        run.server_pids |= server_pids()
        agent.wait_for_spans(lambda s: True, expect_spans(run.data), timeout=10, settle=settle)
        run.metrics, run.self_metrics = scrape_db_counts(prom)
        rc = agent.stop()
        run.agent_rc = rc
        run.agent_tail = agent.stderr_tail(10)
        run.spans = agent.snapshot()
        run.warnings = [line for line in agent.stderr_lines
                        if '"level":"warn"' in line or '"level":"error"' in line]
    check_eq(run.agent_rc, 0, "agent exit status after SIGTERM")
    return run


_cache = {}


def cached(key, make):
    """One workload per file: the first test that needs it runs it, later ones reuse the result
    (a failure is re-raised for each)."""
    if key not in _cache:
        try:
            _cache[key] = ("ok", make())
        except lib.Skip as e:
            _cache[key] = ("skip", e)
        except Exception as e:  # noqa: BLE001
            _cache[key] = ("err", e)
    kind, value = _cache[key]
    if kind != "ok":
        raise value
    return value


def check_metrics_match_spans(run, what):
    want = span_db_counts(run.spans)
    got = +run.metrics
    if got != want:
        raise lib.CheckFailed("%s: db_client_operation_duration_seconds_count per (system, "
                              "operation) differs from the spans: metrics %s, spans %s"
                              % (what, dict(got), dict(want)))


def check_client_only(run, client_pids, what):
    """Every span is a CLIENT span of one of the client processes; none comes from the server."""
    for s in run.spans:
        pid = res(s).get("process.pid")
        check(pid not in run.server_pids, "%s: span %r from the database server's pid %r (%s)"
              % (what, s.get("name"), pid, res(s).get("process.executable.name")))
        check_eq(s.get("kind"), "CLIENT", "%s span %r kind" % (what, s.get("name")))
        check(pid in client_pids, "%s: span %r from pid %r (%s), not the client's %s"
              % (what, s.get("name"), pid, res(s).get("service.name"), sorted(client_pids)))


def check_common_attrs(s, system, port, what):
    a = attrs(s)
    check_eq(a.get("db.system.name"), system, what + " db.system.name")
    check_eq(a.get("server.address"), "127.0.0.1", what + " server.address")
    check_eq(a.get("server.port"), port, what + " server.port")
    op = a.get("db.operation.name")
    check(isinstance(op, str) and op, what + " has no db.operation.name")
    coll = a.get("db.collection.name")
    want_name = "%s %s" % (op, coll) if coll else op
    check_eq(s.get("name"), want_name, what + " span name")
    start, end = s.get("start_time_unix_nano"), s.get("end_time_unix_nano")
    check(isinstance(start, int) and isinstance(end, int) and 0 < start <= end,
          what + " times %r..%r" % (start, end))


# ---- PostgreSQL

_pg = None


def pg_server():
    global _pg
    if _pg is None:
        try:
            _pg = chain.PostgresServer()
        except chain.ToolchainMissing as e:
            lib.skip(str(e))
    return _pg


def pg_env(pg):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({"PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": pg.user,
                "PGDATABASE": pg.dbname, "PGCONNECT_TIMEOUT": "10"})
    return env


def pg_local_sql(pg, statement):
    """psql over the unix socket in pg.dir: not TCP, so not on the traced port."""
    proc = subprocess.run([os.path.join(pg.bindir, "psql"), "-X", "-q", "-A", "-t", "-F", "\t",
                           "-v", "ON_ERROR_STOP=1", "-h", pg.dir, "-p", str(pg.port), "-U",
                           pg.user, "-d", pg.dbname, "-c", statement], capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError("psql failed: %s" % proc.stderr.strip())
    return proc.stdout.strip()


def pgss(pg):
    """[(query, calls)] from pg_stat_statements, our own bookkeeping statements left out."""
    out = pg_local_sql(pg, "SELECT calls, query FROM pg_stat_statements")
    rows = []
    for line in out.splitlines():
        calls, _, query = line.partition("\t")
        if "pg_stat_statements" in query:
            continue
        rows.append((" ".join(query.split()), int(calls)))
    return rows


def normalize_sql(text):
    """$1-style placeholders → ?, a trailing ';' and extra blanks dropped."""
    text = re.sub(r"\$\d+", "?", text or "").strip()
    if text.endswith(";"):
        text = text[:-1].rstrip()
    return " ".join(text.split())


def pgbench_run(mode):
    def make():
        pg = pg_server()
        pgbench = os.path.join(pg.bindir, "pgbench")
        if not os.access(pgbench, os.X_OK):
            lib.skip("pgbench not found in %s" % pg.bindir)
        env = pg_env(pg)
        if "pgbench_init" not in _cache:
            p = subprocess.run([pgbench, "-i", "-s", "1", "-q"], env=env, capture_output=True,
                               text=True, timeout=120)
            check(p.returncode == 0, "pgbench -i failed: %s" % p.stderr[-800:])
            _cache["pgbench_init"] = ("ok", True)
        pg_local_sql(pg, "SELECT pg_stat_statements_reset()")

        def workload():
            p = subprocess.Popen([pgbench, "-c", str(PGBENCH_CLIENTS), "-t", str(PGBENCH_TXNS),
                                  "-M", mode], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
            out, err = p.communicate(timeout=120)
            check(p.returncode == 0, "pgbench -M %s failed (%d): %s" % (mode, p.returncode,
                                                                       err[-800:]))
            m = re.search(r"actually processed: (\d+)/(\d+)", out)
            lat = re.search(r"latency average = ([\d.]+) ms", out)
            check(m and lat, "pgbench output without counts/latency:\n" + out)
            return {"pid": p.pid, "txns": int(m.group(1)), "latency_ms": float(lat.group(1)),
                    "out": out}

        run = traced_run(pg.port, workload, pg.pids,
                         lambda d: d["txns"] * len(TPCB))
        run.data["pgss"] = pgss(pg)
        run.data["port"] = pg.port
        check_eq(run.data["txns"], PGBENCH_CLIENTS * PGBENCH_TXNS, "pgbench transactions")
        return run
    return cached("pgbench-" + mode, make)


def check_pgbench_counts(mode):
    run = pgbench_run(mode)
    txns = run.data["txns"]
    what = "pgbench -M %s" % mode
    check_client_only(run, {run.data["pid"]}, what)
    by_name = collections.Counter(s.get("name") for s in run.spans)
    stats = run.data["pgss"]
    tpcb_texts = set(TPCB.values())
    report = []
    for name, text in TPCB.items():
        calls = sum(c for q, c in stats if normalize_sql(q) == text)
        if name in ("BEGIN", "END") and mode != "simple":
            # pg_stat_statements does not count utility statements run through the extended
            # protocol's Execute; the known count is one per transaction
            calls = txns
        check_eq(calls, txns, "%s: server's count of %r (pg_stat_statements)" % (what, text))
        report.append("%s %d/%d" % (name, by_name[name], calls))
        check_eq(by_name[name], calls, "%s: %r spans vs pg_stat_statements calls (%s)%s"
                 % (what, name, ", ".join("%s %d" % (k, v) for k, v in by_name.items()),
                    run.diag()))
    # pgbench's own setup statements (count(*), vacuum, truncate, partition lookup)
    other_calls = sum(c for q, c in stats if normalize_sql(q) not in tpcb_texts)
    other_spans = sum(n for name, n in by_name.items() if name not in TPCB)
    want_total = txns * len(TPCB) + other_calls
    print("  %s: spans %d, server %d (%s; setup statements %d/%d)"
          % (what, len(run.spans), want_total, ", ".join(report), other_spans, other_calls))
    check_eq(other_spans, other_calls, "%s: spans of the setup statements vs pg_stat_statements"
             % what)
    check_eq(len(run.spans), want_total, "%s: total spans" % what)
    check_metrics_match_spans(run, what)
    # the share of pgbench's average transaction latency that the spans account for
    tx_spans = [s for s in run.spans if s.get("name") in TPCB]
    summed_ms = sum(s["end_time_unix_nano"] - s["start_time_unix_nano"] for s in tx_spans) / 1e6
    per_txn = summed_ms / txns
    share = per_txn / run.data["latency_ms"]
    print("  %s: pgbench latency average %.3f ms, spans sum %.3f ms per transaction "
          "(%.1f %% of it)" % (what, run.data["latency_ms"], per_txn, 100 * share))
    # one client's statements run one after another inside its transaction
    check(share <= 1.10, "%s: spans sum to %.1f %% of the transaction latency (over 100 %%)"
          % (what, 100 * share))
    check(share >= 0.30, "%s: spans sum to only %.1f %% of the transaction latency"
          % (what, 100 * share))


@test
def pgbench_simple_spans_match_pg_stat_statements():
    check_pgbench_counts("simple")


@test
def pgbench_prepared_spans_match_pg_stat_statements():
    check_pgbench_counts("prepared")


def check_pgbench_attributes(mode):
    run = pgbench_run(mode)
    port = run.data["port"]
    for s in run.spans:
        what = "pgbench -M %s span %r" % (mode, s.get("name"))
        check_common_attrs(s, "postgresql", port, what)
        a = attrs(s)
        check_eq(a.get("db.namespace"), "postgres", what + " db.namespace")
        check(s.get("status") in ("UNSET", "OK"), what + " status %r" % s.get("status"))
        check_eq(res(s).get("service.name"), "pgbench", what + " service.name")
        check_eq(res(s).get("process.executable.name"), "pgbench", what + " executable")
        name = s.get("name")
        if name in TPCB:
            op, _, coll = name.partition(" ")
            check_eq(a.get("db.operation.name"), op, what + " db.operation.name")
            check_eq(a.get("db.collection.name"), coll or None, what + " db.collection.name")


@test
def pgbench_span_attributes():
    check_pgbench_attributes("simple")
    check_pgbench_attributes("prepared")


def check_pgbench_query_text(mode):
    run = pgbench_run(mode)
    texts = collections.defaultdict(collections.Counter)
    for s in run.spans:
        if s.get("name") in TPCB:
            texts[s.get("name")][attrs(s).get("db.query.text")] += 1
    for name, want in TPCB.items():
        got = texts[name]
        for raw in got:
            norm = normalize_sql(raw)
            check(not re.search(r"\d", norm), "pgbench -M %s %r: literal digits in db.query.text "
                  "%r" % (mode, name, raw))
        distinct = {normalize_sql(t): n for t, n in got.items()}
        check_eq(distinct, {want: sum(got.values())},
                 "pgbench -M %s %r: db.query.text (normalised) → span count" % (mode, name))


@test
def pgbench_query_text_has_no_literals():
    errors = []
    for mode in ("simple", "prepared"):
        try:
            check_pgbench_query_text(mode)
        except AssertionError as e:
            errors.append(str(e))
    check(not errors, "; ".join(errors))


@test
def postgres_error_span_has_sqlstate():
    pg = pg_server()

    def workload():
        p = subprocess.Popen([os.path.join(pg.bindir, "psql"), "-X", "-q", "-A", "-t",
                              "-c", "SELECT count(*) FROM items WHERE id > 3",
                              "-c", "SELEC 1 FROM items", "-c", "SELECT 1/0 AS z",
                              "-c", "SELECT name FROM nosuch_table WHERE id = 7"],
                             env=pg_env(pg), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        out, err = p.communicate(timeout=60)
        return {"pid": p.pid, "out": out, "err": err}

    run = traced_run(pg.port, workload, pg.pids, lambda d: 4)
    err = run.data["err"]
    check("42601" in err or "syntax error" in err, "psql did not report the syntax error: " + err)
    check("division by zero" in err, "psql did not report the division by zero: " + err)
    check("does not exist" in err, "psql did not report the missing table: " + err)
    check_client_only(run, {run.data["pid"]}, "psql")
    spans = sorted(run.spans, key=lambda s: s["start_time_unix_nano"])
    check_eq(len(spans), 4, "psql spans (one per -c)")
    want = [("SELECT items", "UNSET", None), (None, "ERROR", "42601"),
            ("SELECT", "ERROR", "22012"), (None, "ERROR", "42P01")]
    for s, (name, status, code) in zip(spans, want):
        what = "psql span %r" % s.get("name")
        a = attrs(s)
        check_eq(a.get("db.system.name"), "postgresql", what + " db.system.name")
        check_eq(a.get("server.port"), pg.port, what + " server.port")
        check_eq(a.get("db.namespace"), pg.dbname, what + " db.namespace")
        if name is not None:
            check_eq(s.get("name"), name, what + " name")
        if status == "ERROR":
            check_eq(s.get("status"), "ERROR", what + " status")
            check_eq(a.get("db.response.status_code"), code, what + " db.response.status_code")
        else:
            check(s.get("status") in ("UNSET", "OK"), what + " status %r" % s.get("status"))
            check(a.get("db.response.status_code") in (None, "00000"),
                  what + " db.response.status_code %r" % a.get("db.response.status_code"))
        text = a.get("db.query.text") or ""
        check(not re.search(r"\d", text), what + " db.query.text keeps a literal: %r" % text)
    print("  psql: spans %d, statements 4, ERROR spans %d (codes %s)"
          % (len(spans), sum(s["status"] == "ERROR" for s in spans),
             [attrs(s).get("db.response.status_code") for s in spans]))
    check_metrics_match_spans(run, "psql")


# ---- Redis

_redis = None


def redis_server():
    global _redis
    if _redis is None:
        if not shutil.which("redis-benchmark"):
            lib.skip("redis-benchmark not found")
        try:
            _redis = chain.RedisServer()
        except chain.ToolchainMissing as e:
            lib.skip(str(e))
    return _redis


def redis_stats(rd):
    """({command: calls}, {error prefix: count}) from INFO commandstats / errorstats."""
    cmd = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"cmdstat_([a-z|_-]+):calls=(\d+)", rd.command("INFO", "commandstats"))}
    errs = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"errorstat_(\w+):count=(\d+)", rd.command("INFO", "errorstats"))}
    return cmd, errs


def redis_reset(rd):
    """CONFIG RESETSTAT over the unix-less path: before the agent starts, so it is not traced."""
    check_eq(rd.command("CONFIG", "RESETSTAT"), "OK", "CONFIG RESETSTAT")


def redis_benchmark_run(pipeline):
    def make():
        rd = redis_server()
        redis_reset(rd)

        def workload():
            p = subprocess.Popen(["redis-benchmark", "-h", "127.0.0.1", "-p", str(rd.port),
                                  "-n", str(REDIS_N), "-c", "4", "-t", "get,set", "-P",
                                  str(pipeline), "-q", "-r", "100000"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = p.communicate(timeout=120)
            check(p.returncode == 0, "redis-benchmark failed (%d): %s" % (p.returncode, err))
            return {"pid": p.pid, "out": out}

        run = traced_run(rd.port, workload, rd.pids, lambda d: 2 * REDIS_N)
        # read the stats after the agent stopped: the INFO connections are then not traced
        run.data["cmd"], run.data["errs"] = redis_stats(rd)
        run.data["port"] = rd.port
        return run
    return cached("redis-P%d" % pipeline, make)


def check_redis_benchmark(pipeline):
    run = redis_benchmark_run(pipeline)
    what = "redis-benchmark -P %d" % pipeline
    check_client_only(run, {run.data["pid"]}, what)
    cmd = dict(run.data["cmd"])
    cmd.pop("config|resetstat", None)  # ours, before the agent started
    check_eq(cmd.get("get"), REDIS_N, what + ": server's GET calls")
    check_eq(cmd.get("set"), REDIS_N, what + ": server's SET calls")
    # the server's count per top-level command (CONFIG|GET → CONFIG)
    want = collections.Counter()
    for name, calls in cmd.items():
        want[name.split("|")[0].upper()] += calls
    got = collections.Counter(attrs(s).get("db.operation.name") for s in run.spans)
    print("  %s: spans %d, server %d (%s)" % (
        what, len(run.spans), sum(want.values()),
        ", ".join("%s %d/%d" % (k, got[k], want[k]) for k in sorted(set(want) | set(got)))))
    check_eq(dict(got), dict(want), what + ": spans per command vs INFO commandstats"
             + run.diag())
    check_eq(sum(run.data["errs"].values()), 0, what + ": server errors")
    for s in run.spans:
        w = "%s span %r" % (what, s.get("name"))
        check_common_attrs(s, "redis", run.data["port"], w)
        check(s.get("status") in ("UNSET", "OK"), w + " status %r" % s.get("status"))
        check(attrs(s).get("db.collection.name") is None, w + " has a db.collection.name")
        check("db.query.text" not in attrs(s) or "key:" not in attrs(s)["db.query.text"],
              w + " exports the key in db.query.text: %r" % attrs(s).get("db.query.text"))
        text = repr(s)
        check("key:" not in text and "xxx" not in text and "__rand_int__" not in text,
              w + " exports the command's arguments: " + text)
    check_metrics_match_spans(run, what)


@test
def redis_benchmark_spans_match_commandstats():
    check_redis_benchmark(1)


@test
def redis_benchmark_pipelined_spans_match_commandstats():
    check_redis_benchmark(16)


@test
def redis_error_replies_are_errors():
    rd = redis_server()
    redis_reset(rd)
    secret = "periscope-secret-%d" % os.getpid()
    commands = ["SET %s v4lue" % secret, "LPUSH %s x" % secret, "FOOBAR %s" % secret,
                "GET %s" % secret, "INCR %s" % secret, "DEL %s" % secret]

    def workload():
        p = subprocess.Popen(["redis-cli", "-h", "127.0.0.1", "-p", str(rd.port)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        out, err = p.communicate("\n".join(commands) + "\n", timeout=30)
        return {"pid": p.pid, "out": out, "err": err}

    run = traced_run(rd.port, workload, rd.pids, lambda d: len(commands))
    out = run.data["out"]
    check("WRONGTYPE" in out and "unknown command" in out and "not an integer" in out,
          "redis-cli did not get the three errors: %r" % out)
    cmd, errs = redis_stats(rd)
    cmd.pop("config|resetstat", None)
    check_client_only(run, {run.data["pid"]}, "redis-cli")
    spans = sorted(run.spans, key=lambda s: s["start_time_unix_nano"])
    server_errors = sum(errs.values())
    err_spans = [s for s in spans if s.get("status") == "ERROR"]
    # redis-cli asks COMMAND DOCS first; FOOBAR is rejected before commandstats counts it
    served = sum(cmd.values()) + 1
    print("  redis-cli: spans %d, server %d (commandstats %s + 1 unknown command); ERROR spans %d, "
          "server errorstats %d (%s)" % (len(spans), served, cmd, len(err_spans), server_errors,
                                         errs))
    check_eq(server_errors, 3, "server's errorstats total")
    check_eq(sum(cmd.values()), len(commands), "server's commandstats total (COMMAND DOCS + 5)")
    check_eq(len(spans), served, "redis-cli spans vs the server's count" + run.diag())
    check_eq(len(err_spans), server_errors, "ERROR spans vs INFO errorstats")
    got = [(attrs(s).get("db.operation.name"), s.get("status")) for s in spans]
    want = [("COMMAND", "UNSET"), ("SET", "UNSET"), ("LPUSH", "ERROR"), ("FOOBAR", "ERROR"),
            ("GET", "UNSET"),
            ("INCR", "ERROR"), ("DEL", "UNSET")]
    check_eq([(op, "ERROR" if st == "ERROR" else "UNSET") for op, st in got], want,
             "redis-cli spans (operation, status)")
    codes = [attrs(s).get("db.response.status_code") or attrs(s).get("error.type")
             for s in err_spans]
    check_eq(codes, ["WRONGTYPE", "ERR", "ERR"], "ERROR spans' error prefix")
    for s in spans:
        check(attrs(s).get("db.query.text") is None,
              "redis span %r has db.query.text %r" % (s.get("name"), attrs(s).get("db.query.text")))
    check_metrics_match_spans(run, "redis-cli")
    for s in spans:  # last: the server echoes an unknown command's arguments in its error
        text = repr(s)
        check(secret not in text and "v4lue" not in text,
              "redis span %r exports a key or value: %s" % (s.get("name"), text))


# A client speaking RESP by hand (redis-cli cannot hold a WATCH open against a second connection):
# per protocol (HELLO 2, HELLO 3) a transaction with a failing command (INCR on a string), one
# DISCARDed, one aborted by a WATCHed key changed from a second connection (EXEC answers nil), and
# one aborted at EXEC (EXECABORT: an unknown command was rejected when queued). Each transaction is
# sent in one write, as client libraries pipeline them.
REDIS_TX_CLIENT = r"""
import socket, sys

def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out

class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")

    def value(self):
        line = self.f.readline()
        t, rest = line[:1], line[1:-2]
        if t in b"$!=":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t in b"*~>%|":
            n = int(rest) * (2 if t in b"%|" else 1)
            items = [self.value() for _ in range(max(n, 0))]
            return self.value() if t == b"|" else (None if n < 0 else items)
        return line[:-2]

    def send(self, *cmds):
        self.s.sendall(b"".join(enc(*c) for c in cmds))
        return [self.value() for _ in cmds]

port, out = int(sys.argv[1]), []
for proto in ("2", "3"):
    a, b = Conn(port), Conn(port)
    a.send(("HELLO", proto))
    b.send(("HELLO", proto))
    out.append(a.send(("SET", "tx:s", "str"), ("MULTI",), ("INCR", "tx:s"), ("SET", "tx:k", "v"),
                      ("EXEC",)))
    out.append(a.send(("MULTI",), ("INCR", "tx:n"), ("DISCARD",)))
    out.append(a.send(("WATCH", "tx:w")))
    out.append(b.send(("SET", "tx:w", "1")))
    out.append(a.send(("MULTI",), ("GET", "tx:w"), ("EXEC",)))
    out.append(a.send(("MULTI",), ("GET", "tx:s"), ("FOOBAR", "tx:s"), ("EXEC",)))
print(repr(out))
"""


@test
def redis_transactions():
    rd = redis_server()
    redis_reset(rd)
    per_proto = 16  # spans per protocol round; queued commands that never ran have none

    def workload():
        p = subprocess.Popen([sys.executable, "-c", REDIS_TX_CLIENT, str(rd.port)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=60)
        check(p.returncode == 0, "transaction client failed: %s" % err[-800:])
        return {"pid": p.pid, "out": out}

    run = traced_run(rd.port, workload, rd.pids, lambda d: 2 * per_proto)
    out = run.data["out"]
    check("value is not an integer" in out and "EXECABORT" in out and "None" in out,
          "the client did not get the error element, the EXECABORT and the nil EXEC: %r" % out)
    cmd, errs = redis_stats(rd)
    cmd.pop("config|resetstat", None)
    check_client_only(run, {run.data["pid"]}, "transaction client")
    spans = run.spans
    err_spans = [s for s in spans if s.get("status") == "ERROR"]
    server_errors = sum(errs.values())
    print("  MULTI/EXEC: spans %d; ERROR spans %d, server errorstats %d (%s); commandstats %s"
          % (len(spans), len(err_spans), server_errors, errs, cmd))
    check_eq(errs, {"ERR": 4, "EXECABORT": 2}, "server's errorstats")
    check_eq(len(err_spans), server_errors, "ERROR spans vs INFO errorstats" + run.diag())
    check_eq(collections.Counter(attrs(s).get("db.response.status_code") for s in err_spans),
             collections.Counter(dict(errs)), "ERROR spans' prefixes vs INFO errorstats")
    # spans per command vs the server's calls (FOOBAR, rejected when queued, is not in
    # commandstats; the GETs and the INCR queued in transactions that did not run are in neither)
    want = collections.Counter()
    for name, calls in cmd.items():
        want[name.split("|")[0].upper()] += calls
    want["FOOBAR"] += 2
    got = collections.Counter(attrs(s).get("db.operation.name") for s in spans)
    check_eq(dict(got), dict(want), "spans per command vs INFO commandstats" + run.diag())
    outcome = collections.Counter(
        (attrs(s).get("db.operation.name"), s.get("status") == "ERROR",
         attrs(s).get("db.response.status_code"),
         attrs(s).get("periscope.db.transaction.outcome"),
         attrs(s).get("periscope.db.transaction.commands"),
         attrs(s).get("periscope.db.transaction.failed_commands"))
        for s in spans if attrs(s).get("db.operation.name") in ("INCR", "EXEC", "DISCARD",
                                                                 "FOOBAR"))
    check_eq(dict(outcome), {
        ("INCR", True, "ERR", None, None, None): 2,
        ("EXEC", False, None, "committed", 2, 1): 2,
        ("DISCARD", False, None, "discarded", 1, None): 2,
        ("EXEC", False, None, "watch_aborted", 1, None): 2,
        ("FOOBAR", True, "ERR", None, None, None): 2,
        ("EXEC", True, "EXECABORT", "aborted", 1, None): 2,
    }, "transaction spans (operation, error, status code, outcome, commands, failed)")
    # a queued command's span ends with EXEC's reply, not with +QUEUED
    execs = [s for s in spans if attrs(s).get("periscope.db.transaction.outcome") == "committed"]
    for s in spans:
        if attrs(s).get("db.operation.name") == "INCR":
            check(any(abs(int(s["end_time_unix_nano"]) - int(e["end_time_unix_nano"])) < 1000000
                      for e in execs),
                  "the failed INCR's span does not end with EXEC's reply")
    check_metrics_match_spans(run, "MULTI/EXEC")


# ---- MariaDB

MARIADB_USER, MARIADB_PASSWORD, MARIADB_DB = "periscope", "e2e-Pa55", "e2e"


class MariaDBServer:
    """A throwaway mariadbd: mariadb-install-db into a temp dir, 127.0.0.1:port plus a unix socket
    for root (bookkeeping over the socket is not traced), performance_schema on, and a user with a
    password that owns the databases e2e and slap."""

    def __init__(self):
        for tool in ("mariadb-install-db", "mariadbd", "mariadb", "mariadb-slap"):
            if not shutil.which(tool):
                lib.skip("%s not found" % tool)
        import pwd
        try:
            pw = pwd.getpwnam("mysql")
        except KeyError:
            lib.skip("no mysql user")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="periscope-mariadb-")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.proc = None
        try:
            p = subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + self.data,
                                "--user=mysql", "--auth-root-authentication-method=normal",
                                "--skip-test-db"], capture_output=True, text=True, timeout=120)
            check(p.returncode == 0, "mariadb-install-db failed: %s" % (p.stdout + p.stderr)[-800:])
            self.err_log = os.path.join(self.dir, "error.log")
            self.proc = subprocess.Popen(
                [shutil.which("mariadbd"), "--no-defaults", "--datadir=" + self.data,
                 "--socket=" + self.socket, "--port=%d" % self.port, "--bind-address=127.0.0.1",
                 "--user=mysql", "--pid-file=" + os.path.join(self.dir, "mariadbd.pid"),
                 "--log-error=" + self.err_log, "--skip-name-resolve", "--skip-log-bin",
                 "--innodb-buffer-pool-size=32M", "--performance-schema=ON"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            wait_listening(self.port, timeout=60, proc=self.proc)
            self.root_sql(
                "CREATE DATABASE %s; CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s'; "
                "GRANT ALL ON %s.* TO '%s'@'127.0.0.1'; GRANT ALL ON slap.* TO '%s'@'127.0.0.1';"
                % (MARIADB_DB, MARIADB_USER, MARIADB_PASSWORD, MARIADB_DB, MARIADB_USER,
                   MARIADB_USER))
        except BaseException:
            self.stop()
            raise

    def root_sql(self, sql):
        p = subprocess.run(["mariadb", "--no-defaults", "-S", self.socket, "-uroot", "-N", "-B",
                            "-e", sql], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise RuntimeError("mariadb (root) failed: %s" % p.stderr.strip())
        return p.stdout

    def user_statements(self):
        """{event name: (count, errors)} for our user from performance_schema."""
        out = self.root_sql(
            "SELECT EVENT_NAME, COUNT_STAR, SUM_ERRORS FROM performance_schema."
            "events_statements_summary_by_user_by_event_name WHERE USER = '%s' AND COUNT_STAR > 0"
            % MARIADB_USER)
        stats = {}
        for line in out.splitlines():
            name, count, errors = line.split("\t")
            stats[name] = (int(count), int(errors))
        return stats

    def reset_statements(self):
        self.root_sql("TRUNCATE performance_schema.events_statements_summary_by_user_by_event_name")

    def pids(self):
        return {self.proc.pid} if self.proc and self.proc.poll() is None else set()

    def client_argv(self, tool="mariadb"):
        return [tool, "--no-defaults", "-h", "127.0.0.1", "-P", str(self.port),
                "-u" + MARIADB_USER, "-p" + MARIADB_PASSWORD]

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


_mariadb = None


def mariadb_server():
    global _mariadb
    if _mariadb is None:
        _mariadb = MariaDBServer()
        chain._running.append(_mariadb)  # stopped at exit with the other databases
    return _mariadb


# performance_schema statement event → the operation the agent names
MYSQL_EVENT_OPS = {"statement/sql/select": "SELECT", "statement/sql/insert": "INSERT",
                   "statement/sql/create_table": "CREATE", "statement/sql/create_db": "CREATE",
                   "statement/sql/drop_db": "DROP", "statement/sql/update": "UPDATE",
                   "statement/sql/delete": "DELETE", "statement/sql/drop_table": "DROP"}
MYSQL_NO_SPAN = ("statement/com/Quit", "statement/com/Init DB")  # no reply / not a query


def mariadb_slap_run():
    def make():
        my = mariadb_server()
        my.reset_statements()

        def workload():
            pids = set()
            p = subprocess.Popen(my.client_argv("mariadb-slap") + [
                "--create-schema=slap", "--auto-generate-sql", "--number-of-queries=200",
                "--concurrency=2", "--iterations=1"], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            out, err = p.communicate(timeout=120)
            check(p.returncode == 0, "mariadb-slap failed (%d): %s" % (p.returncode, err))
            pids.add(p.pid)
            slap_pid = p.pid
            script = ("CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(40), "
                      "total DECIMAL(10,2)); "
                      "INSERT INTO orders VALUES (7301, 'alice-7302', 19.95), "
                      "(7303, 'bob-7304', 5.25); "
                      "UPDATE orders SET total = total + 7305 WHERE id = 7301; "
                      "SELECT customer, total FROM orders WHERE id = 7303; "
                      "DELETE FROM orders WHERE customer = 'bob-7304';")
            p = subprocess.Popen(my.client_argv() + [MARIADB_DB, "-e", script],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out2, err2 = p.communicate(timeout=60)
            check(p.returncode == 0, "mariadb failed (%d): %s" % (p.returncode, err2))
            pids.add(p.pid)
            return {"pids": pids, "slap_pid": slap_pid, "cli_pid": p.pid, "out": out}

        def expect(_):
            stats = my.user_statements()
            return sum(c for ev, (c, _e) in stats.items() if ev not in MYSQL_NO_SPAN)

        run = traced_run(my.port, workload, my.pids, expect)
        run.data["stats"] = my.user_statements()
        run.data["port"] = my.port
        return run
    return cached("mariadb-slap", make)


@test
def mariadb_spans_match_performance_schema():
    run = mariadb_slap_run()
    check_client_only(run, run.data["pids"], "mariadb-slap/mariadb")
    stats = run.data["stats"]
    want = collections.Counter()
    unknown = []
    for ev, (count, errors) in stats.items():
        check_eq(errors, 0, "server errors for %s" % ev)
        if ev in MYSQL_NO_SPAN:
            continue
        if ev not in MYSQL_EVENT_OPS:
            unknown.append(ev)
            continue
        want[MYSQL_EVENT_OPS[ev]] += count
    check(not unknown, "statement events this test cannot map: %s" % unknown)
    got = collections.Counter(attrs(s).get("db.operation.name") for s in run.spans)
    print("  mariadb: spans %d, server %d (%s)" % (
        len(run.spans), sum(want.values()),
        ", ".join("%s %d/%d" % (k, got[k], want[k]) for k in sorted(set(want) | set(got)))))
    check_eq(dict(got), dict(want), "spans per operation vs performance_schema statement counts"
             + run.diag())
    check(want["INSERT"] >= 100 and want["SELECT"] >= 50, "mariadb-slap ran too little: %s"
          % dict(want))
    check_metrics_match_spans(run, "mariadb")


@test
def mariadb_span_attributes():
    run = mariadb_slap_run()
    port = run.data["port"]
    cli = sorted((s for s in run.spans if res(s).get("process.pid") == run.data["cli_pid"]),
                 key=lambda s: s["start_time_unix_nano"])
    got = [(s.get("name"), attrs(s).get("db.query.text")) for s in cli]
    want = [("CREATE orders", "CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(?), "
                               "total DECIMAL(?,?))"),
            ("INSERT orders", "INSERT INTO orders VALUES (?, ?, ?), (?, ?, ?)"),
            ("UPDATE orders", "UPDATE orders SET total = total + ? WHERE id = ?"),
            ("SELECT orders", "SELECT customer, total FROM orders WHERE id = ?"),
            ("DELETE orders", "DELETE FROM orders WHERE customer = ?")]
    check_eq(got, want, "mariadb client spans (name, db.query.text)")
    for s in run.spans:
        what = "mariadb span %r" % s.get("name")
        check_common_attrs(s, "mysql", port, what)
        a = attrs(s)
        check(s.get("status") in ("UNSET", "OK"), what + " status %r" % s.get("status"))
        text = a.get("db.query.text") or ""
        check(text, what + " has no db.query.text")
        check(not re.search(r"'|(?<![\w.])\d+(?!\w)", text),
              what + " db.query.text keeps a literal: %r" % text)
        # attributes and name only: a random trace or span id may well contain "7301"
        exported = repr((a, s.get("name"), s.get("status_message")))
        check("7301" not in exported and "alice" not in exported and "bob-" not in exported,
              what + " exports a literal: %r" % text)
        pid = res(s).get("process.pid")
        if pid == run.data["cli_pid"]:
            check_eq(a.get("db.namespace"), MARIADB_DB, what + " db.namespace")
            check_eq(res(s).get("service.name"), "mariadb", what + " service.name")
        else:
            check_eq(res(s).get("service.name"), "mariadb-slap", what + " service.name")
            if a.get("db.collection.name") == "t1":
                check_eq(a.get("db.namespace"), "slap", what + " db.namespace")
    slap_inserts = [s for s in run.spans if s.get("name") == "INSERT t1"]
    check(slap_inserts, "no INSERT t1 spans from mariadb-slap")
    for s in slap_inserts:
        check_eq(attrs(s).get("db.query.text"), "INSERT INTO t1 VALUES (?,?)",
                 "mariadb-slap INSERT db.query.text")


@test
def mariadb_error_span_has_error_number():
    my = mariadb_server()
    my.reset_statements()
    statements = ["SELECT DATABASE()", "SELEC 1 FROM dual",
                  "SELECT missing_col FROM nosuch_table WHERE id = 42", "SELECT 2"]

    def workload():
        # --force: go on after an error; one connection, one statement per COM_QUERY
        p = subprocess.Popen(my.client_argv() + ["--force", MARIADB_DB], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(";\n".join(statements) + ";\n", timeout=60)
        return {"pid": p.pid, "out": out, "err": err}

    run = traced_run(my.port, workload, my.pids, lambda d: len(statements))
    err = run.data["err"]
    check("1064" in err and "1146" in err, "mariadb did not report errors 1064 and 1146: " + err)
    check_client_only(run, {run.data["pid"]}, "mariadb")
    stats = my.user_statements()
    server_errors = sum(e for _c, e in stats.values())
    spans = sorted(run.spans, key=lambda s: s["start_time_unix_nano"])
    err_spans = [s for s in spans if s.get("status") == "ERROR"]
    print("  mariadb errors: spans %d, statements %d; ERROR spans %d, server errors %d (codes %s)"
          % (len(spans), len(statements), len(err_spans), server_errors,
             [attrs(s).get("db.response.status_code") for s in err_spans]))
    check_eq(len(spans), len(statements), "mariadb spans")
    check_eq(len(err_spans), server_errors, "ERROR spans vs performance_schema SUM_ERRORS")
    got = [(s.get("status") if s.get("status") == "ERROR" else "UNSET",
            attrs(s).get("db.response.status_code")) for s in spans]
    check_eq(got, [("UNSET", None), ("ERROR", "1064"), ("ERROR", "1146"), ("UNSET", None)],
             "mariadb spans (status, db.response.status_code)")
    for s in spans:
        check_eq(attrs(s).get("db.system.name"), "mysql", "db.system.name")
        check_eq(attrs(s).get("db.namespace"), MARIADB_DB, "db.namespace")
        check("42" not in (attrs(s).get("db.query.text") or ""),
              "db.query.text keeps a literal: %r" % attrs(s).get("db.query.text"))
    check_metrics_match_spans(run, "mariadb errors")


if __name__ == "__main__":
    try:
        rc = lib.run_tests()
    finally:
        chain._stop_all()
    sys.exit(rc)
