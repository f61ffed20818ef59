#!/usr/bin/python3
"""test_tls_db.py — Redis and MariaDB over TLS: CLIENT spans from the OpenSSL plaintext (issue 5).

A throwaway redis-server with only a TLS port and a throwaway mariadbd with --ssl-cert/--ssl-key
(self-signed certificate made here with openssl) run on 127.0.0.1; real clients that really use TLS
(redis-cli/redis-benchmark --tls, mariadb --ssl, mariadb-slap --ssl) drive them. The agent runs
with `--port <db port>`; it reads the plaintext at the clients' libssl (SSL_read/SSL_write uprobes)
and must ignore the sockets' ciphertext, so the spans are counted exactly against the server's own
record (INFO commandstats / errorstats, performance_schema statement summaries): one span per
command, none missing, none doubled.
Python 3 standard library only; run with /usr/bin/python3.
"""

import atexit
import collections
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import attrs, check, check_eq, res, test  # noqa: E402
from servers import free_port, wait_listening  # noqa: E402

REDIS_N = 512  # per command of each redis-benchmark run (a multiple of 2 clients × -P 16)
_running = []  # servers and temp dirs to clean up at exit


# ---- a self-signed certificate

_cert = None


def cert_dir():
    """A temp dir with cert.pem/key.pem (CN=localhost), readable by the mysql user."""
    global _cert
    if _cert is None:
        if not shutil.which("openssl"):
            lib.skip("openssl not found")
        d = tempfile.mkdtemp(prefix="periscope-tlsdb-cert-")
        _running.append(_TempDir(d))
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                            "/CN=localhost", "-days", "2", "-keyout", os.path.join(d, "key.pem"),
                            "-out", os.path.join(d, "cert.pem")], capture_output=True, text=True,
                           timeout=60)
        check(p.returncode == 0, "openssl req failed: %s" % p.stderr[-500:])
        os.chmod(d, 0o755)
        for name in ("key.pem", "cert.pem"):
            os.chmod(os.path.join(d, name), 0o644)  # mariadbd runs as mysql
        _cert = d
    return _cert


class _TempDir:
    def __init__(self, path):
        self.path = path

    def stop(self):
        shutil.rmtree(self.path, ignore_errors=True)


# ---- one traced run

class Run:
    def __init__(self):
        self.spans = []
        self.server_pids = set()
        self.data = {}
        self.agent_rc = None
        self.warnings = []

    def diag(self):
        return "\n    agent warnings: %s" % ("; ".join(self.warnings[-5:]) or "-")


def traced_run(db_port, workload, server_pids, expect_spans, settle=1.5):
    """Starts the agent with --port db_port, runs workload() (→ dict) while polling server_pids(),
    waits for expect_spans(data) spans (and `settle` s for surplus ones), stops the agent and
    returns a Run with every span it printed."""
    lib.require_agent()
    run = Run()
    with lib.Agent(args=["--port", str(db_port)]) as agent:
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
        run.agent_rc = agent.stop()
        run.spans = agent.snapshot()
        run.warnings = [line for line in agent.stderr_lines
                        if '"level":"warn"' in line or '"level":"error"' in line]
    check_eq(run.agent_rc, 0, "agent exit status after SIGTERM")
    return run


_cache = {}


def cached(key, make):
    """One workload per key: the first test that needs it runs it, later ones reuse the result."""
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


def check_client_only(run, client_pids, what):
    """Every span is a CLIENT span of one of the client processes; none comes from the server."""
    for s in run.spans:
        pid = res(s).get("process.pid")
        check(pid not in run.server_pids, "%s: span %r from the database server's pid %r"
              % (what, s.get("name"), pid))
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
    check_eq(s.get("name"), "%s %s" % (op, coll) if coll else op, what + " span name")
    start, end = s.get("start_time_unix_nano"), s.get("end_time_unix_nano")
    check(isinstance(start, int) and isinstance(end, int) and 0 < start <= end,
          what + " times %r..%r" % (start, end))


# ---- Redis over TLS

class RedisTLSServer:
    """redis-server with only a TLS port (--port 0 --tls-port P), no client certificates, no
    persistence."""

    def __init__(self):
        for tool in ("redis-server", "redis-cli", "redis-benchmark"):
            if not shutil.which(tool):
                lib.skip("%s not found" % tool)
        certs = cert_dir()
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="periscope-redis-tls-")
        self.log = os.path.join(self.dir, "redis.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", "0", "--tls-port", str(self.port), "--bind",
                 "127.0.0.1", "--tls-cert-file", os.path.join(certs, "cert.pem"),
                 "--tls-key-file", os.path.join(certs, "key.pem"), "--tls-auth-clients", "no",
                 "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", self.dir],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        _running.append(self)
        try:
            wait_listening(self.port, proc=self.proc)
        except BaseException:
            self.stop()
            raise

    def cli(self, *args, stdin=None):
        """redis-cli --tls; returns the CompletedProcess."""
        return subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--tls",
                               "--insecure"] + list(args), input=stdin, capture_output=True,
                              text=True, timeout=60)

    def stats(self):
        """({command: calls}, {error prefix: count}) from INFO commandstats / errorstats; the INFO
        command itself is left out."""
        p = self.cli("INFO", "commandstats")
        check(p.returncode == 0, "redis-cli INFO failed: %s" % p.stderr)
        cmd = {m.group(1): int(m.group(2)) for m in re.finditer(
            r"cmdstat_([a-z|_-]+):calls=(\d+)", p.stdout)}
        p = self.cli("INFO", "errorstats")
        errs = {m.group(1): int(m.group(2)) for m in re.finditer(
            r"errorstat_(\w+):count=(\d+)", p.stdout)}
        return cmd, errs

    def reset(self):
        p = self.cli("CONFIG", "RESETSTAT")
        check(p.returncode == 0 and p.stdout.strip() == "OK",
              "CONFIG RESETSTAT: %r %r" % (p.stdout, p.stderr))

    def pids(self):
        return {self.proc.pid} if self.proc.poll() is None else set()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


_redis = None


def redis_server():
    global _redis
    if _redis is None:
        _redis = RedisTLSServer()
    return _redis


def redis_want(cmd, drop=("config|resetstat", "info")):
    """The server's count per top-level command name (CONFIG|GET → CONFIG), our bookkeeping out."""
    want = collections.Counter()
    for name, calls in cmd.items():
        if name not in drop:
            want[name.split("|")[0].upper()] += calls
    return want


def check_redis_spans_vs_server(run, want, what):
    got = collections.Counter(attrs(s).get("db.operation.name") for s in run.spans)
    print("  %s: spans %d, server %d (%s)" % (
        what, len(run.spans), sum(want.values()),
        ", ".join("%s %d/%d" % (k, got[k], want[k]) for k in sorted(set(want) | set(got)))))
    check_eq(dict(got), dict(want), what + ": spans per command vs INFO commandstats" + run.diag())
    check_eq(len(run.spans), sum(want.values()), what + ": total spans (none doubled)")


def redis_benchmark_run(pipeline):
    def make():
        rd = redis_server()
        rd.reset()  # before the agent starts: not traced

        def workload():
            p = subprocess.Popen(["redis-benchmark", "-h", "127.0.0.1", "-p", str(rd.port),
                                  "--tls", "--insecure", "-n", str(REDIS_N), "-c", "2", "-t",
                                  "get,set", "-P", str(pipeline), "-q", "-r", "100000"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = p.communicate(timeout=120)
            check(p.returncode == 0, "redis-benchmark --tls failed (%d): %s"
                  % (p.returncode, err))
            return {"pid": p.pid, "out": out}

        run = traced_run(rd.port, workload, rd.pids, lambda d: 2 * REDIS_N)
        # the stats after the agent stopped: the INFO connections are not traced
        run.data["cmd"], run.data["errs"] = rd.stats()
        run.data["port"] = rd.port
        return run
    return cached("redis-P%d" % pipeline, make)


def check_redis_benchmark(pipeline):
    run = redis_benchmark_run(pipeline)
    what = "redis-benchmark --tls -P %d" % pipeline
    check_client_only(run, {run.data["pid"]}, what)
    cmd = run.data["cmd"]
    check_eq(cmd.get("get"), REDIS_N, what + ": server's GET calls")
    check_eq(cmd.get("set"), REDIS_N, what + ": server's SET calls")
    check_eq(sum(run.data["errs"].values()), 0, what + ": server errors")
    check_redis_spans_vs_server(run, redis_want(cmd), what)
    for s in run.spans:
        w = "%s span %r" % (what, s.get("name"))
        check_common_attrs(s, "redis", run.data["port"], w)
        check(s.get("status") in ("UNSET", "OK"), w + " status %r" % s.get("status"))
        text = repr(s)
        check("key:" not in text and "xxx" not in text, w + " exports arguments: " + text)


@test
def redis_tls_benchmark_spans_match_commandstats():
    check_redis_benchmark(1)


@test
def redis_tls_benchmark_pipelined_spans_match_commandstats():
    check_redis_benchmark(16)


@test
def redis_tls_cli_commands_and_errors():
    rd = redis_server()
    rd.reset()
    secret = "periscope-tls-secret-%d" % os.getpid()
    commands = ["SET %s v4lue" % secret, "GET %s" % secret, "INCR %s" % secret,
                "LPUSH %s x" % secret, "SET %s 41" % secret, "INCR %s" % secret,
                "DEL %s" % secret]

    def workload():
        p = subprocess.Popen(["redis-cli", "-h", "127.0.0.1", "-p", str(rd.port), "--tls",
                              "--insecure"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        out, err = p.communicate("\n".join(commands) + "\n", timeout=30)
        return {"pid": p.pid, "out": out, "err": err}

    run = traced_run(rd.port, workload, rd.pids, lambda d: len(commands) + 1)
    out = run.data["out"]
    check("not an integer" in out and "WRONGTYPE" in out and "42" in out,
          "redis-cli --tls did not get the two errors and 42: %r %r" % (out, run.data["err"]))
    cmd, errs = rd.stats()
    check_client_only(run, {run.data["pid"]}, "redis-cli --tls")
    want = redis_want(cmd)
    # redis-cli asks COMMAND DOCS first: commandstats counts it, so the server's total is
    # the commands + 1
    check_eq(sum(want.values()), len(commands) + 1, "server's commandstats total (%s)" % cmd)
    check_eq(sum(errs.values()), 2, "server's errorstats total (%s)" % errs)
    check_redis_spans_vs_server(run, want, "redis-cli --tls")
    spans = sorted(run.spans, key=lambda s: s["start_time_unix_nano"])
    got = [(attrs(s).get("db.operation.name"), "ERROR" if s.get("status") == "ERROR" else "UNSET")
           for s in spans]
    check_eq(got, [("COMMAND", "UNSET"), ("SET", "UNSET"), ("GET", "UNSET"), ("INCR", "ERROR"),
                   ("LPUSH", "ERROR"), ("SET", "UNSET"), ("INCR", "UNSET"), ("DEL", "UNSET")],
             "redis-cli --tls spans (operation, status)")
    err_spans = [s for s in spans if s.get("status") == "ERROR"]
    check_eq(len(err_spans), sum(errs.values()), "ERROR spans vs INFO errorstats")
    codes = [attrs(s).get("db.response.status_code") or attrs(s).get("error.type")
             for s in err_spans]
    check_eq(codes, ["ERR", "WRONGTYPE"], "ERROR spans' error prefix")
    for s in spans:
        check_common_attrs(s, "redis", rd.port, "redis-cli --tls span %r" % s.get("name"))
        text = repr(s)
        check(secret not in text and "v4lue" not in text,
              "redis span %r exports a key or value: %s" % (s.get("name"), text))


# ---- MariaDB over TLS

MARIADB_USER, MARIADB_PASSWORD, MARIADB_DB = "periscope", "e2e-Pa55", "e2e"


class MariaDBTLSServer:
    """A throwaway mariadbd (as tests/e2e/test_db.py builds it) with --ssl-cert/--ssl-key:
    127.0.0.1:port plus a unix socket for root (bookkeeping over the socket is not traced),
    performance_schema on, and a user that must connect with TLS (REQUIRE SSL) and owns the
    databases e2e and slap."""

    def __init__(self):
        for tool in ("mariadb-install-db", "mariadbd", "mariadb", "mariadb-slap"):
            if not shutil.which(tool):
                lib.skip("%s not found" % tool)
        import pwd
        try:
            pw = pwd.getpwnam("mysql")
        except KeyError:
            lib.skip("no mysql user")
        certs = cert_dir()
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="periscope-mariadb-tls-")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.proc = None
        _running.append(self)
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
                 "--innodb-buffer-pool-size=32M", "--performance-schema=ON",
                 "--ssl-cert=" + os.path.join(certs, "cert.pem"),
                 "--ssl-key=" + os.path.join(certs, "key.pem")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            wait_listening(self.port, timeout=60, proc=self.proc)
            self.root_sql(
                "CREATE DATABASE %s; CREATE USER '%s'@'127.0.0.1' IDENTIFIED BY '%s' REQUIRE SSL; "
                "GRANT ALL ON %s.* TO '%s'@'127.0.0.1'; GRANT ALL ON slap.* TO '%s'@'127.0.0.1';"
                % (MARIADB_DB, MARIADB_USER, MARIADB_PASSWORD, MARIADB_DB, MARIADB_USER,
                   MARIADB_USER))
            have_ssl = self.root_sql("SELECT @@have_ssl").strip()
            check_eq(have_ssl, "YES", "mariadbd @@have_ssl")
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
        argv = [tool, "--no-defaults", "-h", "127.0.0.1", "-P", str(self.port),
                "-u" + MARIADB_USER, "-p" + MARIADB_PASSWORD, "--ssl"]
        if tool == "mariadb":
            argv.append("--ssl-verify-server-cert=0")
        return argv

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
        _mariadb = MariaDBTLSServer()
    return _mariadb


# performance_schema statement event → the operation the agent names
MYSQL_EVENT_OPS = {"statement/sql/select": "SELECT", "statement/sql/insert": "INSERT",
                   "statement/sql/create_table": "CREATE", "statement/sql/create_db": "CREATE",
                   "statement/sql/drop_db": "DROP", "statement/sql/update": "UPDATE",
                   "statement/sql/delete": "DELETE", "statement/sql/drop_table": "DROP",
                   "statement/sql/show_status": "SHOW"}
MYSQL_NO_SPAN = ("statement/com/Quit", "statement/com/Init DB")  # no reply / not a query

CLI_SCRIPT = ["SHOW STATUS LIKE 'Ssl_cipher'",
              "CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(40), total DECIMAL(10,2))",
              "INSERT INTO orders VALUES (7301, 'alice-7302', 19.95), (7303, 'bob-7304', 5.25)",
              "UPDATE orders SET total = total + 7305 WHERE id = 7301",
              "SELECT customer, total FROM orders WHERE id = 7303",
              "DELETE FROM orders WHERE customer = 'bob-7304'"]
CLI_WANT = [("SHOW", "SHOW STATUS LIKE ?"),
            ("CREATE orders", "CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(?), "
                              "total DECIMAL(?,?))"),
            ("INSERT orders", "INSERT INTO orders VALUES (?, ?, ?), (?, ?, ?)"),
            ("UPDATE orders", "UPDATE orders SET total = total + ? WHERE id = ?"),
            ("SELECT orders", "SELECT customer, total FROM orders WHERE id = ?"),
            ("DELETE orders", "DELETE FROM orders WHERE customer = ?")]


def mariadb_tls_run():
    def make():
        my = mariadb_server()
        my.reset_statements()

        def workload():
            # one mariadb session: the cipher it negotiated, then the statements
            p = subprocess.Popen(my.client_argv() + ["-N", "-B", MARIADB_DB, "-e",
                                                     "; ".join(CLI_SCRIPT) + ";"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            out, err = p.communicate(timeout=60)
            check(p.returncode == 0, "mariadb --ssl failed (%d): %s" % (p.returncode, err))
            cli_pid = p.pid
            p = subprocess.Popen(my.client_argv("mariadb-slap") + [
                "--create-schema=slap", "--auto-generate-sql", "--number-of-queries=200",
                "--concurrency=2", "--iterations=1"], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)
            _out2, err2 = p.communicate(timeout=120)
            check(p.returncode == 0, "mariadb-slap --ssl failed (%d): %s" % (p.returncode, err2))
            return {"pids": {cli_pid, p.pid}, "cli_pid": cli_pid, "slap_pid": p.pid, "out": out}

        def expect(_):
            stats = my.user_statements()
            return sum(c for ev, (c, _e) in stats.items() if ev not in MYSQL_NO_SPAN)

        run = traced_run(my.port, workload, my.pids, expect)
        run.data["stats"] = my.user_statements()
        # after the agent stopped and the statistics were read: not counted, not traced
        p = subprocess.run(my.client_argv()[:-2] + ["--skip-ssl", "-e", "SELECT 1"],
                           capture_output=True, text=True, timeout=60)
        run.data["plain_refused"] = p.returncode != 0 and "denied" in p.stderr
        run.data["port"] = my.port
        return run
    return cached("mariadb-tls", make)


@test
def mariadb_tls_client_really_uses_tls():
    run = mariadb_tls_run()
    out = run.data["out"]
    m = re.search(r"^Ssl_cipher\t(\S+)", out, re.M)
    check(m is not None, "mariadb --ssl session has no Ssl_cipher: %r" % out)
    print("  mariadb --ssl: Ssl_cipher %s" % m.group(1))
    # the user is REQUIRE SSL (a plain connection is refused), and mariadb-slap's statements
    # ran as that user: it used TLS as well
    my = mariadb_server()
    check_eq(my.root_sql("SELECT ssl_type FROM mysql.user WHERE user = '%s'"
                         % MARIADB_USER).strip(), "ANY", "the test user's ssl_type")
    check("plain_refused" in run.data, "the plain connection was not tried")
    check(run.data["plain_refused"], "a connection without TLS was accepted")
    check(run.data["stats"].get("statement/sql/insert", (0, 0))[0] >= 100,
          "mariadb-slap --ssl ran too little: %s" % run.data["stats"])


@test
def mariadb_tls_spans_match_performance_schema():
    run = mariadb_tls_run()
    check_client_only(run, run.data["pids"], "mariadb/mariadb-slap --ssl")
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
    print("  mariadb --ssl: spans %d, server %d (%s)" % (
        len(run.spans), sum(want.values()),
        ", ".join("%s %d/%d" % (k, got[k], want[k]) for k in sorted(set(want) | set(got)))))
    check_eq(dict(got), dict(want), "spans per operation vs performance_schema statement counts"
             + run.diag())
    check_eq(len(run.spans), sum(want.values()), "total spans (none from the ciphertext)")
    check(want["INSERT"] >= 100 and want["SELECT"] >= 50, "mariadb-slap ran too little: %s"
          % dict(want))


@test
def mariadb_tls_span_attributes():
    run = mariadb_tls_run()
    port = run.data["port"]
    cli = sorted((s for s in run.spans if res(s).get("process.pid") == run.data["cli_pid"]),
                 key=lambda s: s["start_time_unix_nano"])
    got = [(s.get("name"), attrs(s).get("db.query.text")) for s in cli]
    check_eq(got, CLI_WANT, "mariadb --ssl spans (name, db.query.text)")
    for s in run.spans:
        what = "mariadb --ssl span %r" % s.get("name")
        check_common_attrs(s, "mysql", port, what)
        a = attrs(s)
        check(s.get("status") in ("UNSET", "OK"), what + " status %r" % s.get("status"))
        text = a.get("db.query.text") or ""
        check(text, what + " has no db.query.text")
        check(not re.search(r"'|(?<![\w.])\d+(?!\w)", text),
              what + " db.query.text keeps a literal: %r" % text)
        # the attributes only: a hex trace or span id may contain "7301"
        check(not any(lit in repr(a) for lit in ("7301", "7305", "alice", "bob-")),
              what + " exports a literal: %r" % a)
        if res(s).get("process.pid") == run.data["cli_pid"]:
            check_eq(a.get("db.namespace"), MARIADB_DB, what + " db.namespace")
            check_eq(res(s).get("service.name"), "mariadb", what + " service.name")
        else:
            check_eq(res(s).get("service.name"), "mariadb-slap", what + " service.name")
            if a.get("db.collection.name") == "t1":
                check_eq(a.get("db.namespace"), "slap", what + " db.namespace")
    slap_inserts = [s for s in run.spans if s.get("name") == "INSERT t1"]
    check(slap_inserts, "no INSERT t1 spans from mariadb-slap --ssl")


@atexit.register
def _stop_all():
    for thing in reversed(_running):
        try:
            thing.stop()
        except Exception:  # noqa: BLE001 — best effort at exit
            pass
    del _running[:]


if __name__ == "__main__":
    try:
        rc = lib.run_tests()
    finally:
        _stop_all()
    sys.exit(rc)
