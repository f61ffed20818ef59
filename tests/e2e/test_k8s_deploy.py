#!/usr/bin/env python3
"""test_k8s_deploy.py — the agent itself in a container, as the DaemonSet runs it: the image from
scripts/build-image.sh imported with `ctr image import` (nothing pulled), run by `ctr` with the
host's PID namespace (--with-ns pid:), a read-only root filesystem, exactly the DaemonSet's
capabilities (the runtime's default set dropped) and read-only mounts of what it reads. Spans of a
host process and of a pod are exported, the pod's with its metadata; then each capability removed in
turn either still works or fails with one log line naming what is missing."""

import json
import os
import subprocess
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import REPO, check, check_eq, curl, free_port, require_agent, run_tests, skip, test  # noqa
import k8s  # noqa: E402

BUILD = os.path.join(REPO, os.environ.get("BUILD", "build"))
TAG = "e2e-%s" % uuid.uuid4().hex[:8]
IMAGE = "docker.io/library/periscope:" + TAG
DAEMONSET_CAPS = ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH",
                  "CAP_SYS_ADMIN"]
# containerd's default set, dropped one by one (ctr 1.6 has no "drop ALL")
RUNTIME_DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                        "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                        "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
_state = {"imported": False}
_host = {}


class AgentContainer:
    """`ctr run` of the image in the foreground: stdout spans and stderr log lines collected."""

    def __init__(self, caps, args=()):
        self.name = "periscope-e2e-%s" % uuid.uuid4().hex[:12]
        argv = [k8s.CTR, "-n", k8s.NS, "run", "--rm", "--net-host", "--read-only",
                "--with-ns", "pid:/proc/%d/ns/pid" % os.getpid()]
        for c in RUNTIME_DEFAULT_CAPS:
            if c not in caps:
                argv += ["--cap-drop", c]
        for c in caps:
            argv += ["--cap-add", c]
        for src, dst in (("/sys/kernel/btf", "/sys/kernel/btf"),
                         ("/sys/kernel/tracing", "/sys/kernel/tracing"),
                         ("/run/containerd", "/host/run/containerd")):
            argv += ["--mount", "type=bind,src=%s,dst=%s,options=rbind:ro" % (src, dst)]
        argv += [IMAGE, self.name, "/usr/bin/periscope", "--print=json", "--no-prometheus",
                 "--host-root", "/host", "--kube-api", "off", "--node-name", "node-e2e-1"]
        argv += list(args)
        self.spans, self.logs, self.other = [], [], []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                obj = json.loads(line) if line.startswith("{") else None
            except ValueError:
                obj = None
            with self.lock:
                if isinstance(obj, dict) and obj.get("type") == "span":
                    self.spans.append(obj)
                elif isinstance(obj, dict):
                    self.logs.append(obj)
                else:
                    self.other.append(line)

    def ready(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if any(r.get("msg") == "ready" for r in self.logs):
                    return True
            if self.proc.poll() is not None:
                self.reader.join(timeout=3)
                return False
            time.sleep(0.1)
        return False

    def spans_on(self, port, n=1, timeout=15):
        pred = k8s.server_spans_on(port)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = [s for s in self.spans if pred(s)]
            if len(got) >= n:
                return got
            time.sleep(0.2)
        return got

    def problems(self):
        with self.lock:
            return [r for r in self.logs if r.get("level") in ("warn", "error")] + \
                [line for line in self.other if line.strip()]

    def stop(self):
        if self.proc.poll() is None:
            k8s.ctr("task", "kill", "-s", "SIGTERM", self.name, check=False)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                k8s.ctr("task", "kill", "-s", "SIGKILL", self.name, check=False)
                self.proc.wait(timeout=10)
        k8s.ctr("task", "rm", "-f", self.name, check=False)
        k8s.ctr("container", "rm", self.name, check=False)
        self.reader.join(timeout=5)
        return self.proc.returncode

    def tail(self):
        with self.lock:
            return "\n".join(json.dumps(r) for r in self.logs[-8:]) + "\n".join(self.other[-5:])


def image():
    require_agent()
    try:
        k8s.ensure_containerd()
    except k8s.Unavailable as e:
        skip(str(e))
    if not _state["imported"]:
        tar = os.path.join(BUILD, "periscope-image-%s.tar" % TAG)
        out = subprocess.run([os.path.join(REPO, "scripts", "build-image.sh"), tar, IMAGE],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                             env=dict(os.environ, BUILD=BUILD))
        check_eq(out.returncode, 0, "build-image.sh: %s" % out.stdout.decode()[-500:])
        try:
            k8s.ctr("image", "import", tar, timeout=120)
        finally:
            os.unlink(tar)
        _state["imported"] = True
    return IMAGE


def host_server():
    if "proc" not in _host:
        port = free_port()
        _host["proc"] = subprocess.Popen([k8s.PYTHON, "-m", "http.server", str(port), "--bind",
                                          "127.0.0.1"], cwd="/tmp", stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        _host["port"] = port
        k8s.wait_listening(port, proc=_host["proc"])
    return _host["port"]


def traffic_until(agent, port, timeout=15):
    """Requests to port until the agent exports one of their spans (or the time is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        curl(["http://127.0.0.1:%d/" % port])
        got = agent.spans_on(port, 1, timeout=1)
        if got or agent.proc.poll() is not None:
            return got
    return []


@test
def test_image_builds_without_pulling():
    image()
    out = k8s.ctr("image", "ls", "-q")
    check(IMAGE in out.split(), "the image is not in containerd after import")


@test
def test_agent_in_container_with_daemonset_caps():
    image()
    port = host_server()
    try:
        p = k8s.Pod("orders-7d9f8b6c5d-c8v2n", namespace="shop", container="web")
    except k8s.Unavailable as e:
        skip(str(e))
    a = AgentContainer(DAEMONSET_CAPS)
    try:
        check(a.ready(), "the agent in a container is not ready:\n" + a.tail())
        host = traffic_until(a, port)
        check(host, "no span of a host process from the containerized agent")
        r = k8s.resource_of(host[0])
        check("container.id" not in r and "k8s.pod.name" not in r,
              "a host process got container metadata: %r" % r)
        pod = traffic_until(a, p.port)
        check(pod, "no span of the pod's process from the containerized agent")
        r = k8s.resource_of(pod[-1])
        check_eq(r.get("container.id"), p.cid, "container.id (seen from the agent's container)")
        check_eq(r.get("k8s.pod.name"), p.pod, "k8s.pod.name (bundle under --host-root)")
        check_eq(r.get("service.name"), "orders", "service.name")
        errors = [x for x in a.problems() if isinstance(x, dict) and x.get("level") == "error"]
        check_eq(errors, [], "error lines")
    finally:
        rc = a.stop()
        p.remove()
    check_eq(rc, 0, "exit status after SIGTERM")


@test
def test_each_capability_removed():
    image()
    port = host_server()
    results = []
    # each of the DaemonSet's, then the minimal set without SYS_ADMIN minus BPF / PERFMON
    cases = [[c for c in DAEMONSET_CAPS if c != drop] for drop in DAEMONSET_CAPS]
    cases += [["CAP_PERFMON", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"],
              ["CAP_BPF", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH"]]
    for caps in cases:
        missing = sorted(set(DAEMONSET_CAPS) - set(caps))
        a = AgentContainer(caps)
        try:
            ready = a.ready(timeout=25)
            spans = traffic_until(a, port, timeout=8) if ready else []
        finally:
            rc = a.stop()
        problems = a.problems()
        errors = [x for x in problems if isinstance(x, dict) and x.get("level") == "error"]
        crashed = rc not in (0, 1) or any("panic" in str(x) or "Segmentation" in str(x)
                                          for x in problems)
        if ready and spans:
            outcome = "works"
        elif not ready and rc == 1 and len(errors) == 1 and "CAP_" in errors[0].get("msg", ""):
            outcome = "fails: " + errors[0]["msg"]
        else:
            outcome = "BAD (ready=%s spans=%d rc=%s errors=%r)" % (ready, len(spans), rc, errors)
        warns = sorted({x.get("msg") for x in problems
                        if isinstance(x, dict) and x.get("level") == "warn"})
        results.append((missing, outcome, warns))
        print("  without %s: %s%s" % ("+".join(m[4:] for m in missing), outcome,
                                       "; warns: %s" % warns if warns else ""), flush=True)
        check(not crashed, "crash without %s: rc=%s %r" % (missing, rc, problems[-3:]))
    bad = [r for r in results if r[1].startswith("BAD")]
    check_eq(bad, [], "capability sets that neither worked nor said what is missing")


@test
def test_cleanup():
    if "proc" in _host:
        _host["proc"].kill()
        _host["proc"].wait()
    if _state["imported"]:
        k8s.ctr("image", "rm", IMAGE, check=False)


if __name__ == "__main__":
    sys.exit(run_tests())
