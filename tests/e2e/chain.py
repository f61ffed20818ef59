"""chain.py — build and run the traced-service chains of the connected-traces tests (issue 6).

A chain is `client → front service → back service → Redis or PostgreSQL`, all on 127.0.0.1 by
default, for one stack: "fastapi", "flask", "go", "node" or "rust" (the apps are in
tests/e2e/apps/, with no tracing code). The tests import:

    available(stack, db=None) -> (bool, reason)      toolchain / Python modules present?
    build(stack)                                     compile go/rust, npm install for node (cached)
    start_chain(stack, db, front_port, back_port, db_target, bind=None, host="127.0.0.1",
                env=None, front_argv=None) -> Chain
    Chain.stop(), .front_pids(), .back_pids(), .request_count(role), .requests(role),
    Chain.wait_requests(role, count), .front_url
    listeners(port)                                  the addresses sockets listen on at port
    RedisServer(), PostgresServer()                  throwaway databases seeded with ITEMS
                                                     (hosts=("127.0.0.1", "::1") to listen on both)
    stack_dbs(stack)                                 the databases a stack's back service supports

`python3 tests/e2e/chain.py selftest [stack ...]` runs every available chain without the agent and
prints one summary line. Python 3 standard library only; run with /usr/bin/python3.
"""

import atexit
import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from servers import free_port, wait_listening  # noqa: E402

APPS = os.path.join(HERE, "apps")
BUILD_DIR = os.path.join(REPO, os.environ.get("BUILD", "build"), "e2e-apps")
PYTHON = "/usr/bin/python3"
CURL = "/usr/bin/curl"

STACKS = ("fastapi", "flask", "go", "node", "rust")
ITEMS = {i: "item-%d" % i for i in range(1, 11)}  # what both databases hold: id -> name

_STACK_DBS = {"fastapi": ("redis", "postgres"), "flask": ("redis", "postgres"),
              "node": ("redis", "postgres"), "go": ("redis", "postgres"),
              "rust": ("redis", "postgres")}
_PY_MODULES = {"fastapi": ["fastapi", "uvicorn", "httpx"], "flask": ["flask", "werkzeug"]}
_DB_MODULES = {"redis": ["redis"], "postgres": ["psycopg2"]}
_DEBIAN_PKG = {"fastapi": "python3-fastapi", "uvicorn": "python3-uvicorn",
               "httpx": "python3-httpx", "flask": "python3-flask", "werkzeug": "python3-werkzeug",
               "redis": "python3-redis", "psycopg2": "python3-psycopg2"}
_REQUEST_LINE = re.compile(r"^([A-Z]+) (/\S*) (\d{3})$")

_running = []  # chains and databases started by this process, stopped at exit


class ToolchainMissing(RuntimeError):
    """The stack cannot be built or run here; a test should SKIP with str(e)."""


def stack_dbs(stack):
    """The databases the stack's back service supports, e.g. ("redis", "postgres")."""
    return _STACK_DBS[stack]


def _no_proxy_env(extra=None):
    """The environment for the services: ours without proxy settings (all traffic is loopback)."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(extra or {})
    return env


def _find_tool(name, extra_dirs=()):
    path = shutil.which(name)
    if path:
        return path
    for d in extra_dirs:
        candidate = os.path.join(os.path.expanduser(d), name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _go():
    return _find_tool("go", ["/usr/lib/go/bin", "/usr/local/go/bin"])


def _cargo():
    return _find_tool("cargo", ["~/.cargo/bin", "/root/.cargo/bin"])


def _missing_python_modules(modules):
    code = ("import importlib.util, sys\n"
            "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))")
    try:
        out = subprocess.run([PYTHON, "-c", code, *modules], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return ["%s (%s)" % (PYTHON, e)]
    return out.stdout.split()


def available(stack, db=None):
    """(True, "") if the stack (with that database, or Redis when db is None) can run here, else
    (False, reason) naming what is missing."""
    if stack not in STACKS:
        return False, "unknown stack %r (known: %s)" % (stack, ", ".join(STACKS))
    db = db or "redis"
    if db not in _STACK_DBS[stack]:
        return False, "%s back service does not support DB=%s" % (stack, db)
    if not os.access(CURL, os.X_OK):
        return False, "%s not found" % CURL
    if stack in _PY_MODULES:
        missing = _missing_python_modules(_PY_MODULES[stack] + _DB_MODULES[db])
        if missing:
            return False, "%s lacks modules %s (apt-get install %s)" % (
                PYTHON, " ".join(missing), " ".join(_DEBIAN_PKG.get(m, m) for m in missing))
    elif stack == "go":
        if not _go():
            return False, "go not found (apt-get install golang-go)"
    elif stack == "node":
        for tool in ("node", "npm"):
            if not shutil.which(tool):
                return False, "%s not found on PATH" % tool
        major = subprocess.run(["node", "-p", "process.versions.node.split('.')[0]"],
                               capture_output=True, text=True).stdout.strip()
        if not major.isdigit() or int(major) < 16:
            return False, "node %s is too old (need 16 or newer)" % (major or "?")
    elif stack == "rust":
        if not _cargo():
            return False, "cargo not found on PATH or in ~/.cargo/bin"
    return True, ""


def _newest_mtime(paths):
    return max((os.path.getmtime(p) for p in paths if os.path.exists(p)), default=0.0)


def _run_build(argv, cwd, env, what):
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (exit %d): %s" % (what, proc.returncode,
                                                        (proc.stdout + proc.stderr)[-2000:]))


def _go_binary():
    return os.path.join(BUILD_DIR, "go", "chainapp")


def _rust_binary():
    return os.path.join(BUILD_DIR, "rust", "release", "chainapp")


def build(stack):
    """Builds the stack's apps if they are out of date (outputs in build/e2e-apps/, node_modules
    in tests/e2e/apps/node). Raises ToolchainMissing if the toolchain is not here (SKIP), or
    RuntimeError if the build itself fails."""
    ok, reason = available(stack)
    if not ok:
        raise ToolchainMissing("%s: %s" % (stack, reason))
    if stack == "go":
        src = os.path.join(APPS, "go")
        out = _go_binary()
        if _newest_mtime(glob.glob(os.path.join(src, "*"))) < _newest_mtime([out]):
            return
        os.makedirs(os.path.dirname(out), exist_ok=True)
        env = _no_proxy_env({"GOCACHE": os.path.join(BUILD_DIR, "go", "cache"),
                             "GOPATH": os.path.join(BUILD_DIR, "go", "gopath"),
                             "GOPROXY": "off", "GOFLAGS": "", "GO111MODULE": "on",
                             "CGO_ENABLED": "0"})
        _run_build([_go(), "build", "-o", out, "."], src, env, "go build")
    elif stack == "rust":
        src = os.path.join(APPS, "rust")
        sources = glob.glob(os.path.join(src, "src", "*.rs")) + [os.path.join(src, "Cargo.toml")]
        if _newest_mtime(sources) < _newest_mtime([_rust_binary()]):
            return
        cargo = _cargo()
        env = _no_proxy_env({"CARGO_TARGET_DIR": os.path.join(BUILD_DIR, "rust")})
        env["PATH"] = os.path.dirname(cargo) + os.pathsep + env.get("PATH", "")
        _run_build([cargo, "build", "--release", "--offline", "--quiet"], src, env, "cargo build")
    elif stack == "node":
        src = os.path.join(APPS, "node")
        stamp = os.path.join(src, "node_modules", ".package-lock.json")
        lock_files = [os.path.join(src, "package.json"), os.path.join(src, "package-lock.json")]
        if _newest_mtime(lock_files) < _newest_mtime([stamp]):
            return
        _run_build(["npm", "install", "--no-audit", "--no-fund", "--no-update-notifier"], src,
                   os.environ.copy(), "npm install")


def _app_argv(stack):
    if stack == "fastapi":
        return [PYTHON, os.path.join(APPS, "python", "fastapi_app.py")]
    if stack == "flask":
        return [PYTHON, os.path.join(APPS, "python", "flask_app.py")]
    if stack == "go":
        return [_go_binary()]
    if stack == "node":
        return [shutil.which("node") or "node", os.path.join(APPS, "node", "server.js")]
    if stack == "rust":
        return [_rust_binary()]
    raise ValueError("unknown stack %r" % stack)


def _parse_dsn(text):
    """'host=127.0.0.1 port=5433 user=postgres dbname=postgres' -> dict."""
    settings = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError("bad DSN part %r (want key=value)" % part)
        settings[key] = value
    return settings


def url_host(host):
    """host as it goes into a URL: an IPv6 literal in brackets."""
    return "[%s]" % host if ":" in host else host


def _db_env(db, db_target, host="127.0.0.1"):
    """The back service's DB settings from a port, a RedisServer/PostgresServer, a dict or a DSN;
    host is the database's address for a port or a server."""
    if db == "redis":
        port = db_target.port if hasattr(db_target, "port") else int(db_target)
        return {"DB": "redis", "REDIS_HOST": host, "REDIS_PORT": str(port)}
    if db == "postgres":
        if isinstance(db_target, PostgresServer):
            settings = {"host": host, "port": db_target.port, "user": db_target.user,
                        "dbname": db_target.dbname}
        elif isinstance(db_target, dict):
            settings = db_target
        elif isinstance(db_target, str) and "=" in db_target:
            settings = _parse_dsn(db_target)
        else:
            settings = {"port": int(db_target)}
        return {"DB": "postgres", "PG_HOST": str(settings.get("host", "127.0.0.1")),
                "PG_PORT": str(settings.get("port", 5432)),
                "PG_USER": str(settings.get("user", "postgres")),
                "PG_DBNAME": str(settings.get("dbname", "postgres"))}
    raise ValueError("unknown db %r (want redis or postgres)" % db)


def _descendants(pid):
    """pid and all its descendants' pids, from /proc (threads' children included)."""
    found = [pid]
    i = 0
    while i < len(found):
        p = found[i]
        i += 1
        for task in glob.glob("/proc/%d/task/*/children" % p):
            try:
                with open(task) as f:
                    found.extend(int(x) for x in f.read().split() if int(x) not in found)
            except OSError:
                pass
    return set(found)


def listeners(port):
    """The addresses TCP sockets listen on at port, from /proc/net/tcp{,6}: e.g. ["::"] for a
    dual-stack (or IPv6-only) wildcard socket, ["127.0.0.1"]."""
    found = []
    for name, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in _read_lines("/proc/net/%s" % name)[1:]:
            fields = line.split()
            if len(fields) < 4 or fields[3] != "0A":
                continue
            addr_hex, _, port_hex = fields[1].partition(":")
            if int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(addr_hex)  # 32-bit words in host (little-endian) order
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.append(socket.inet_ntop(family, raw))
    return found


def _read_lines(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in f]
    except FileNotFoundError:
        return []


def _http_ok(port, path="/health", timeout=1.0, host="127.0.0.1"):
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                "http://%s:%d%s" % (url_host(host), port, path), timeout=timeout) as resp:
            resp.read()
            return resp.status == 200
    except OSError:
        return False


class _Service:
    """One app process in its own process group; stdout to <dir>/<role>.log, stderr to .err."""

    def __init__(self, role, argv, env, directory):
        self.role = role
        self.log_path = os.path.join(directory, "%s.log" % role)
        self.err_path = os.path.join(directory, "%s.err" % role)
        with open(self.log_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         env=env, cwd=directory, start_new_session=True)
        self.port = int(env["PORT"])
        bind = env.get("BIND") or "127.0.0.1"
        self.health_host = "127.0.0.1" if bind == "default" else bind

    def wait_healthy(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _http_ok(self.port, host=self.health_host):
                return
            time.sleep(0.1)
        state = ("exited with status %d" % self.proc.returncode if self.proc.poll() is not None
                 else "no 200 from /health after %.0f s" % timeout)
        tail = "\n".join(_read_lines(self.err_path)[-15:])
        raise RuntimeError("%s service on port %d: %s\n%s" % (self.role, self.port, state, tail))

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:  # whatever is left in the group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


class Chain:
    """A running back service and the front service that calls it. Use as a context manager or
    call stop(). Logs stay in self.dir until stop(keep_logs=False). bind (env BIND of both
    services): None → 127.0.0.1, "default" → the stack's default listen (dual-stack [::]), or an
    address; host: the address the front calls the back and the back its database on, and
    front_url's."""

    def __init__(self, stack, db, front_port, back_port, db_target, timeout=30.0, bind=None,
                 host="127.0.0.1", env=None, front_argv=None):
        self.stack = stack
        self.db = db
        self.front_port = front_port
        self.back_port = back_port
        self.host = host
        bind_env = {"BIND": bind} if bind else {}
        self.dir = tempfile.mkdtemp(prefix="periscope-chain-%s-" % stack)
        self.services = {}
        _running.append(self)
        try:
            argv = _app_argv(stack)
            back_env = _no_proxy_env({"ROLE": "back", "PORT": str(back_port), **bind_env,
                                      "PYTHONUNBUFFERED": "1", **_db_env(db, db_target, host),
                                      **(env or {})})
            self.services["back"] = _Service("back", argv, back_env, self.dir)
            self.services["back"].wait_healthy(timeout)
            front_env = _no_proxy_env({"ROLE": "front", "PORT": str(front_port), **bind_env,
                                       "PYTHONUNBUFFERED": "1",
                                       "BACK_URL": "http://%s:%d" % (url_host(host), back_port),
                                       **(env or {})})
            self.services["front"] = _Service("front", front_argv or argv, front_env, self.dir)
            self.services["front"].wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise

    @property
    def front_url(self):
        return "http://%s:%d" % (url_host(self.host), self.front_port)

    def _pids(self, role):
        service = self.services.get(role)
        if service is None or service.proc.poll() is not None:
            return set()
        return _descendants(service.proc.pid)

    def front_pids(self):
        """The front service's pid and its descendants' (a set)."""
        return self._pids("front")

    def back_pids(self):
        """The back service's pid and its descendants' (a set)."""
        return self._pids("back")

    def log_lines(self, role):
        return _read_lines(self.services[role].log_path)

    def requests(self, role, include_health=False):
        """The (method, path, status) the role's service logged, /health left out by default."""
        found = []
        for line in self.log_lines(role):
            m = _REQUEST_LINE.match(line.strip())
            if m and (include_health or m.group(2) != "/health"):
                found.append((m.group(1), m.group(2), int(m.group(3))))
        return found

    def request_count(self, role, include_health=False):
        """How many requests the role's service handled (its stdout log), /health left out."""
        return len(self.requests(role, include_health))

    def wait_requests(self, role, count, timeout=10.0):
        """Waits until the role's service logged at least count requests; returns the count."""
        deadline = time.monotonic() + timeout
        n = self.request_count(role)
        while n < count and time.monotonic() < deadline:
            time.sleep(0.05)
            n = self.request_count(role)
        return n

    def stderr_tail(self, role, n=20):
        return "\n".join(_read_lines(self.services[role].err_path)[-n:])

    def stop(self, keep_logs=True):
        for role in ("front", "back"):
            if role in self.services:
                self.services[role].stop()
        if self in _running:
            _running.remove(self)
        if not keep_logs:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop(keep_logs=False)


def start_chain(stack, db, front_port, back_port, db_target, timeout=30.0, bind=None,
                host="127.0.0.1", env=None, front_argv=None):
    """Starts the back service (on back_port, talking to db at db_target: a port, a RedisServer or
    PostgresServer, a dict or a 'host=.. port=.. user=.. dbname=..' string), waits until its /health
    answers, then the front service on front_port with BACK_URL pointing at the back. The apps must
    have been built (build(stack)). bind and host: see Chain. env is added to both services'
    environments; front_argv, if given, runs instead of the stack's app as the front (it must
    answer /health on front_port)."""
    return Chain(stack, db, front_port, back_port, db_target, timeout, bind, host, env, front_argv)


def _resp_encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        data = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _resp_read(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise RuntimeError("redis: connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b":"):
        return rest.decode()
    if kind == b"-":
        raise RuntimeError("redis: " + rest.decode())
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:n].decode()
    if kind == b"*":
        return [_resp_read(f) for _ in range(max(int(rest), 0))]
    raise RuntimeError("redis: unexpected reply %r" % line)


class RedisServer:
    """A throwaway redis-server on 127.0.0.1:port (and the other hosts given), no persistence,
    seeded with item:<id> keys."""

    def __init__(self, port=None, items=None, hosts=("127.0.0.1",)):
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="periscope-redis-")
        binary = _find_tool("redis-server", ["/usr/bin", "/usr/sbin"])
        if not binary:
            raise ToolchainMissing("redis-server not found (apt-get install redis-server)")
        self.err_path = os.path.join(self.dir, "redis.log")
        with open(self.err_path, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", *hosts, "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--dir", self.dir],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        _running.append(self)
        try:
            wait_listening(self.port, proc=self.proc)
            for item_id, name in (items or ITEMS).items():
                self.command("SET", "item:%d" % item_id, name)
        except BaseException:
            self.stop()
            raise

    def command(self, *args):
        """Sends one command on a new connection and returns its decoded reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(_resp_encode(args))
            with s.makefile("rb") as f:
                return _resp_read(f)

    def command_calls(self, name):
        """How many times the server ran command name (from INFO commandstats)."""
        stats = self.command("INFO", "commandstats")
        m = re.search(r"cmdstat_%s:calls=(\d+)" % name.lower(), stats)
        return int(m.group(1)) if m else 0

    def pids(self):
        return {self.proc.pid}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        if self in _running:
            _running.remove(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _pg_bindir():
    for name in ("initdb", "pg_ctl", "psql"):
        if not shutil.which(name):
            break
    else:
        return os.path.dirname(os.path.realpath(shutil.which("pg_ctl")))
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                  key=lambda d: int(re.sub(r"\D", "", d.split("/")[-2]) or 0))
    return dirs[-1] if dirs else None


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1:port (and the other hosts given): initdb (as
    user postgres when we are root) into a temp dir, trust auth, the unix socket in that dir,
    pg_stat_statements loaded, and a table `items(id int primary key, name text)` holding ITEMS.
    self.dsn is a libpq key=value string."""

    def __init__(self, port=None, items=None, user="postgres", dbname="postgres",
                 hosts=("127.0.0.1",)):
        self.port = port or free_port()
        self.user = user
        self.dbname = dbname
        self.bindir = _pg_bindir()
        if not self.bindir:
            raise ToolchainMissing("PostgreSQL binaries not found (apt-get install postgresql)")
        self.dir = tempfile.mkdtemp(prefix="periscope-pg-")
        self.data = os.path.join(self.dir, "data")
        self.started = False
        self._run_as = None
        _running.append(self)
        try:
            if os.geteuid() == 0:  # initdb and postgres refuse to run as root
                import pwd
                pw = pwd.getpwnam("postgres")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
                self._run_as = pw
            self._tool("initdb", "-D", self.data, "-U", user, "-A", "trust", "-E", "UTF8",
                       "--no-locale", "--no-sync")
            options = ("-c listen_addresses=%s -p %d -c unix_socket_directories=%s "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                       "-c shared_preload_libraries=pg_stat_statements"
                       % (",".join(hosts), self.port, self.dir))
            self._tool("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "postgres.log"),
                       "-o", options, "-w", "-t", "60", "start")
            self.started = True
            rows = ", ".join("(%d, '%s')" % (i, n.replace("'", "''"))
                             for i, n in (items or ITEMS).items())
            self.sql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements; "
                     "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL); "
                     "INSERT INTO items VALUES %s; ANALYZE items;" % rows)
        except BaseException:
            self.stop()
            raise

    @property
    def dsn(self):
        return "host=127.0.0.1 port=%d user=%s dbname=%s" % (self.port, self.user, self.dbname)

    def _tool(self, name, *args):
        kwargs = {}
        if self._run_as is not None:
            kwargs = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid,
                      "extra_groups": []}
        proc = subprocess.run([os.path.join(self.bindir, name), *args], cwd=self.dir,
                              capture_output=True, text=True, timeout=120, **kwargs)
        if proc.returncode != 0:
            log = "\n".join(_read_lines(os.path.join(self.dir, "postgres.log"))[-10:])
            raise RuntimeError("%s failed (exit %d): %s\n%s" % (name, proc.returncode,
                                                                (proc.stdout + proc.stderr)[-1500:],
                                                                log))
        return proc.stdout

    def sql(self, statement):
        """Runs SQL through psql over TCP; returns its unaligned, tuples-only output."""
        proc = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-q", "-A", "-t",
                               "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(self.port),
                               "-U", self.user, "-d", self.dbname, "-c", statement],
                              capture_output=True, text=True, timeout=60,
                              env=_no_proxy_env({"PGCONNECT_TIMEOUT": "10"}))
        if proc.returncode != 0:
            raise RuntimeError("psql failed: %s" % proc.stderr.strip())
        return proc.stdout.strip()

    def statement_calls(self, like="%FROM items WHERE%"):
        """How many times statements matching `like` ran (pg_stat_statements)."""
        out = self.sql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements "
                       "WHERE query LIKE '%s'" % like.replace("'", "''"))
        return int(out or 0)

    def pids(self):
        """The postmaster's pid and its children's (the backends)."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return _descendants(int(f.readline()))
        except (OSError, ValueError):
            return set()

    def stop(self):
        if self.started:
            try:
                self._tool("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                for pid in sorted(self.pids()):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self.started = False
        if self in _running:
            _running.remove(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@atexit.register
def _stop_all():
    for thing in list(reversed(_running)):
        try:
            thing.stop()
        except Exception:  # best effort at exit
            pass


def _curl_get(url):
    """(status, body) of one GET with curl, a new connection each time."""
    proc = subprocess.run([CURL, "-sS", "--noproxy", "*", "--max-time", "10",
                           "-w", "\n%{http_code}", url], capture_output=True, text=True)
    body, _, code = proc.stdout.rpartition("\n")
    return (int(code) if code.isdigit() else 0), body


def _selftest_one(stack, db, database, n_requests=20):
    """Runs n_requests through one chain; returns None or a failure message."""
    before = (database.command_calls("get") if db == "redis" else database.statement_calls())
    front_port, back_port = free_port(), free_port()
    with start_chain(stack, db, front_port, back_port, database) as chain:
        bad = []
        for i in range(n_requests):
            item_id = i % len(ITEMS) + 1
            status, body = _curl_get("%s/api/item/%d" % (chain.front_url, item_id))
            if status != 200 or ITEMS[item_id] not in body:
                bad.append("GET /api/item/%d -> %d %r" % (item_id, status, body[:200]))
        if not chain.front_pids() or not chain.back_pids():
            bad.append("a service has no pid")
        front = chain.wait_requests("front", n_requests, timeout=5)
        back = chain.wait_requests("back", n_requests, timeout=5)
        after = (database.command_calls("get") if db == "redis" else database.statement_calls())
        if front != n_requests or back != n_requests:
            bad.append("logged requests: front %d, back %d, want %d each" % (front, back,
                                                                          n_requests))
        if after - before != n_requests:
            bad.append("%s ran %d lookups, want %d" % (db, after - before, n_requests))
        if bad:
            return "; ".join(bad[:3]) + "\nfront stderr:\n%s\nback stderr:\n%s" % (
                chain.stderr_tail("front", 5), chain.stderr_tail("back", 5))
    return None


def selftest(stacks):
    """Every available stack × database chain without the agent; prints one line per chain and a
    summary line; returns the process exit status."""
    passed = failed = skipped = 0
    databases = {}
    try:
        for stack in stacks:
            for db in stack_dbs(stack):
                name = "%s+%s" % (stack, db)
                ok, reason = available(stack, db)
                if not ok:
                    print("SKIP %s: %s" % (name, reason), flush=True)
                    skipped += 1
                    continue
                started = time.monotonic()
                try:
                    build(stack)
                    if db not in databases:
                        databases[db] = RedisServer() if db == "redis" else PostgresServer()
                    error = _selftest_one(stack, db, databases[db])
                except ToolchainMissing as e:
                    print("SKIP %s: %s" % (name, e), flush=True)
                    skipped += 1
                    continue
                except Exception as e:  # report and go on with the next chain
                    error = "%s: %s" % (type(e).__name__, e)
                if error:
                    print("FAIL %s: %s" % (name, error), flush=True)
                    failed += 1
                else:
                    print("PASS %s (%.1f s)" % (name, time.monotonic() - started), flush=True)
                    passed += 1
    finally:
        for database in databases.values():
            database.stop()
    print("chain selftest: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
    return 1 if failed else 0


def main(argv):
    if len(argv) >= 2 and argv[1] == "selftest":
        stacks = argv[2:] or list(STACKS)
        unknown = [s for s in stacks if s not in STACKS]
        if unknown:
            print("unknown stack(s): %s (known: %s)" % (" ".join(unknown), " ".join(STACKS)))
            return 2
        return selftest(stacks)
    if len(argv) >= 2 and argv[1] == "build":
        for stack in argv[2:] or STACKS:
            build(stack)
        return 0
    print("usage: chain.py selftest [stack ...] | build [stack ...]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
