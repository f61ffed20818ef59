#!/usr/bin/python3
"""test_naming.py — end-to-end: service.name on hosts without OTEL_SERVICE_NAME (issue 19).

Real servers, each driven by curl, named as their owners named them: `python3 app.py` → app,
uvicorn's entry-point script (`/usr/bin/python3 <dir>/uvicorn main:app`, as pip installs it) →
main, `node server.js` → server, `node <dir>/front/index.js` → front, and Python servers placed
(before exec, as systemd does) in cgroups made here with systemd-style names,
`<slice>/orders.service` → orders and `<slice>/worker@2.service` → worker. The cgroups are made
in the cgroup v2 hierarchy that /proc/PID/cgroup's `0::` line shows (on a hybrid machine
/sys/fs/cgroup/unified) and removed at the end. The agent must keep the executable name for a
process it cannot name otherwise (curl), and never export the command line's arguments.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import attrs, check, check_eq, curl, res, test  # noqa: E402
from servers import PYTHON, free_port, wait_listening  # noqa: E402

SECRET = "periscope-naming-secret"

PY_SERVER = r"""
import http.server, sys

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""

ASGI_APP = r"""
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"ok\n"})
"""

# what pip writes as the uvicorn console script (Debian's python3-uvicorn ships none)
UVICORN_SCRIPT = """#!%s
import sys
from uvicorn.main import main
sys.exit(main())
""" % PYTHON

NODE_SERVER = r"""
const http = require("http");
http.createServer((req, res) => { res.setHeader("Content-Length", "3"); res.end("ok\n"); })
    .listen(parseInt(process.argv[2], 10), "127.0.0.1");
"""


def cgroup2_root():
    """Where the cgroup v2 hierarchy that /proc/PID/cgroup's 0:: line shows is mounted."""
    with open("/proc/self/cgroup") as f:
        v2 = [line.strip().split(":", 2)[2] for line in f if line.startswith("0::")]
    if not v2:
        return None
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f if line.split()[2] == "cgroup2"]
    for m in mounts:
        if os.path.isdir(os.path.join(m, v2[0].lstrip("/"))):
            return m
    return None


class Naming:
    """The servers of this file, started in a temp dir; stopped (and cgroups removed) by close."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="periscope-naming-")
        self.procs = []  # (expected service.name, port, Popen)
        self.cgroups = []

    def write(self, rel, text, mode=0o644):
        path = os.path.join(self.dir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def start(self, want, argv, port, cgroup=None, cwd=None):
        def enter_cgroup():
            if cgroup:
                with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        p = subprocess.Popen(argv, cwd=cwd or self.dir, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             preexec_fn=enter_cgroup, start_new_session=True)
        self.procs.append((want, port, p))
        return p

    def make_cgroup(self, root, rel):
        path = os.path.join(root, rel)
        d = path
        while not os.path.exists(d):  # every directory made here is removed at the end
            self.cgroups.append(d)
            d = os.path.dirname(d)
        os.makedirs(path)
        return path

    def close(self):
        for _, _, p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _, _, p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=5)
        for path in sorted(self.cgroups, key=len, reverse=True):  # leaves first
            for _ in range(50):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)  # the last process is still leaving
        shutil.rmtree(self.dir, ignore_errors=True)


@test
def services_named_as_their_owners_name_them():
    lib.require_agent()
    node = shutil.which("node")
    have_uvicorn = subprocess.run([PYTHON, "-c", "import uvicorn"],
                                  capture_output=True).returncode == 0
    root = cgroup2_root()
    n = Naming()
    try:
        n.write("app.py", PY_SERVER)
        n.write("srv.py", PY_SERVER)
        n.write("main.py", ASGI_APP)
        uvicorn = n.write("bin/uvicorn", UVICORN_SCRIPT, 0o755)
        n.write("server.js", NODE_SERVER)
        n.write("front/index.js", NODE_SERVER)
        slice_ = "periscope-e2e-%d.slice" % os.getpid()
        plan = [("app", [PYTHON, "app.py", None, "--token=" + SECRET], {})]
        if have_uvicorn:
            plan.append(("main", [uvicorn, "main:app", "--host", "127.0.0.1", "--port", None,
                                  "--log-level", "warning"], {}))
        if node:
            plan.append(("server", [node, "server.js", None], {}))
            plan.append(("front", [node, os.path.join(n.dir, "front", "index.js"), None], {}))
        if root:
            plan.append(("orders", [PYTHON, "-u", "srv.py", None],
                         {"cgroup": n.make_cgroup(root, slice_ + "/orders.service")}))
            plan.append(("worker", [PYTHON, "srv.py", None],
                         {"cgroup": n.make_cgroup(root, slice_ + "/worker@2.service")}))
        ports = []
        for _, argv, _ in plan:
            ports.append(free_port())
        args = []
        for p in ports:
            args += ["--port", str(p)]
        with lib.Agent(args=args) as agent:
            agent.wait_ready()
            for (want, argv, kw), port in zip(plan, ports):
                argv = [str(port) if a is None else a for a in argv]
                n.start(want, argv, port, **kw)
            for want, port, p in n.procs:
                try:
                    wait_listening(port, proc=p)
                except RuntimeError as e:
                    raise AssertionError("%s server: %s: %s" % (
                        want, e, p.stderr.read().decode(errors="replace")[-600:]))
            curl_pids = []
            for want, port, p in n.procs:
                codes, pid = curl(["http://127.0.0.1:%d/x" % port] * 2)
                check_eq(codes, [200, 200], want + " statuses")
                curl_pids.append(pid)
            got = {}
            for want, port, p in n.procs:
                spans = agent.wait_for_spans(
                    lambda s, port=port: s.get("kind") == "SERVER"
                    and attrs(s).get("server.port") == port, 2)
                check_eq(len(spans), 2, want + " SERVER spans")
                names = sorted({res(s).get("service.name") for s in spans})
                got[want] = names[0] if len(names) == 1 else names
                for s in spans:
                    check_eq(res(s).get("process.pid"), p.pid, want + " process.pid")
                    check(SECRET not in repr(s), "a command-line argument is exported: %r" % s)
            print("  service.name per server: %s%s" % (
                got, "" if root else " (no cgroup v2 hierarchy: the systemd cases skipped)"))
            check_eq(got, {w: w for w, _, _ in n.procs}, "service.name per server")
            clients = agent.wait_for_spans(
                lambda s: s.get("kind") == "CLIENT" and res(s).get("process.pid") in curl_pids,
                2 * len(curl_pids))
            check_eq(sorted({res(s).get("service.name") for s in clients}), ["curl"],
                     "curl keeps its executable name")
            if not have_uvicorn or not node:
                print("  skipped: %s" % ", ".join(
                    x for x, ok in (("uvicorn", have_uvicorn), ("node", node)) if not ok))
    finally:
        n.close()
    for path in n.cgroups:
        check(not os.path.exists(path), "cgroup %s left behind" % path)


if __name__ == "__main__":
    sys.exit(lib.run_tests())
