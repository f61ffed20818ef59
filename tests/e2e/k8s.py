"""k8s.py — pods without a cluster, for the container e2e tests: containerd (started if it is not
running), a rootfs whose only program is the host's python3 (its /usr bind-mounted read-only), and
containers run with `ctr -n k8s.io run --rootfs` under a kubelet-style cgroup path, with the
annotations containerd's CRI plugin writes into each container's config.json. Every container,
its cgroups and rootfs are removed again (atexit too). Python 3 standard library only."""

import atexit
import glob
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

from servers import free_port, wait_listening

CTR = shutil.which("ctr") or "/usr/bin/ctr"
CONTAINERD = shutil.which("containerd") or "/usr/bin/containerd"
NS = "k8s.io"
PYTHON = "/usr/bin/python3"
CGROUP_ROOT = "/sys/fs/cgroup"

_created = []  # Pod objects not yet removed


class Unavailable(Exception):
    """No containerd / runc here: the caller skips."""


def ctr(*args, check=True, timeout=30):
    p = subprocess.run([CTR, "-n", NS] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=timeout)
    out = p.stdout.decode("utf-8", "replace")
    if check and p.returncode != 0:
        raise RuntimeError("ctr %s: %s" % (" ".join(args[:2]), out.strip()))
    return out


def _ctr_answers():
    """containerd answers `ctr version`. Without its socket, ctr keeps retrying the connection
    (a machine where nothing started containerd): not answering, without waiting for that."""
    if not os.path.exists("/run/containerd/containerd.sock"):
        return False
    try:
        return subprocess.run([CTR, "version"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=10).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def ensure_containerd():
    """Starts containerd (its default config: /run/containerd) unless it answers already."""
    if not os.access(CTR, os.X_OK) or not os.access(CONTAINERD, os.X_OK) or \
            not shutil.which("runc"):
        raise Unavailable("containerd, ctr or runc not installed "
                          "(apt-get install containerd runc)")
    if _ctr_answers():
        return
    log = open("/tmp/periscope-containerd.log", "ab")
    subprocess.Popen([CONTAINERD], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                     start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if _ctr_answers():
            return
        time.sleep(0.2)
    raise Unavailable("containerd did not start (see /tmp/periscope-containerd.log)")


def make_rootfs():
    """A rootfs directory: mount points, merged-/usr symlinks, and /www with an index page."""
    d = tempfile.mkdtemp(prefix="periscope-rootfs-")
    for sub in ("usr", "proc", "sys", "dev", "tmp", "etc", "www", "run"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    for link in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink("/" + link):
            os.symlink(os.readlink("/" + link), os.path.join(d, link))
    with open(os.path.join(d, "www", "index.html"), "w") as f:
        f.write("hello from a pod\n")
    with open(os.path.join(d, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/:/bin/sh\n")
    return d


def new_container_id():
    return os.urandom(32).hex()


def cgroup_path(driver, qos, pod_uid, cid):
    """The cgroup kubelet + containerd give a container, per driver. The systemd driver's path is
    made with runc's cgroupfs manager (no systemd here): the same directories, so the same
    /proc/PID/cgroup lines."""
    if driver == "cgroupfs":
        return "/kubepods/%s/pod%s/%s" % (qos, pod_uid, cid)
    if driver == "unknown":  # a layout no rule knows
        return "/periscope-e2e-%s/workers/w-%s" % (pod_uid[:8], cid[:12])
    u = pod_uid.replace("-", "_")
    return ("/kubepods.slice/kubepods-%s.slice/kubepods-%s-pod%s.slice/cri-containerd-%s.scope"
            % (qos, qos, u, cid))


def cri_annotations(pod, namespace, pod_uid, container, sandbox_id=None, extra=None):
    """What containerd's CRI plugin writes into a container's config.json."""
    a = {
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.container-name": container,
        "io.kubernetes.cri.sandbox-name": pod,
        "io.kubernetes.cri.sandbox-namespace": namespace,
        "io.kubernetes.cri.sandbox-uid": pod_uid,
        "io.kubernetes.cri.sandbox-id": sandbox_id or "0" * 64,
        "io.kubernetes.cri.image-name": "registry.example/periscope-test:1",
    }
    a.update(extra or {})
    return a


class Pod:
    """One container of one pod, serving HTTP with python3's http.server on a free port."""

    def __init__(self, pod, namespace="shop", container="web", driver="cgroupfs",
                 qos="besteffort", pod_uid=None, env=None, annotations=None, cmd=None, port=None,
                 mounts=(), extra_args=(), start=True):
        ensure_containerd()
        self.pod, self.namespace, self.container = pod, namespace, container
        self.driver, self.qos = driver, qos
        self.pod_uid = pod_uid or str(uuid.uuid4())
        self.env = dict(env or {})
        self.extra_annotations = dict(annotations or {})
        self.port = port or free_port()
        self.cmd = cmd or [PYTHON, "-m", "http.server", str(self.port), "--bind", "127.0.0.1",
                           "--directory", "/www"]
        self.mounts = list(mounts)
        self.extra_args = list(extra_args)
        self.rootfs = make_rootfs()
        self.ids = []  # every container id this pod had (restarts make new ones)
        self.cid = None
        _created.append(self)
        if start:
            self.start()

    def start(self, wait=True, cid=None):
        self.cid = cid or new_container_id()
        self.ids.append(self.cid)
        args = ["run", "-d", "--net-host",
                "--cgroup", cgroup_path(self.driver, self.qos, self.pod_uid, self.cid),
                "--mount", "type=bind,src=/usr,dst=/usr,options=rbind:ro"]
        for m in self.mounts:
            args += ["--mount", m]
        for k, v in cri_annotations(self.pod, self.namespace, self.pod_uid, self.container,
                                    extra=self.extra_annotations).items():
            args += ["--annotation", "%s=%s" % (k, v)]
        for k, v in self.env.items():
            args += ["--env", "%s=%s" % (k, v)]
        args += self.extra_args
        args += ["--rootfs", self.rootfs, self.cid] + self.cmd
        ctr(*args)
        if wait:
            wait_listening(self.port, timeout=15)
        return self.cid

    def task_pid(self):
        for line in ctr("task", "ls", check=False).splitlines():
            f = line.split()
            if f and f[0] == self.cid:
                return int(f[1])
        return None

    def stop(self):
        """Kills and removes the current container (the pod's cgroup stays, as with a restart)."""
        if not self.cid:
            return
        cid, self.cid = self.cid, None
        ctr("task", "kill", "-s", "KILL", cid, check=False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = ctr("task", "ls", check=False)
            if not any(line.split()[:1] == [cid] and "RUNNING" in line
                       for line in out.splitlines()):
                break
            time.sleep(0.1)
        ctr("task", "rm", "-f", cid, check=False)
        ctr("container", "rm", cid, check=False)

    def restart(self):
        self.stop()
        return self.start()

    def url(self, path="/"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def remove(self):
        self.stop()
        remove_pod_cgroups(self.driver, self.qos, self.pod_uid, self.ids)
        shutil.rmtree(self.rootfs, ignore_errors=True)
        if self in _created:
            _created.remove(self)


def remove_pod_cgroups(driver, qos, pod_uid, ids):
    """rmdir, deepest first, of the cgroups a pod's containers left in every hierarchy."""
    rels = []
    for cid in ids:
        p = cgroup_path(driver, qos, pod_uid, cid)
        rels.append(p)
    parents = set()
    for p in rels:
        q = os.path.dirname(p)
        while q not in ("/", ""):
            parents.add(q)
            q = os.path.dirname(q)
    for rel in rels + sorted(parents, key=len, reverse=True):
        for top in glob.glob(CGROUP_ROOT + "/*/") + [CGROUP_ROOT + "/"]:
            d = os.path.join(top, rel.lstrip("/"))
            if os.path.isdir(d):
                try:
                    os.rmdir(d)
                except OSError:
                    pass  # not empty: another pod of ours or someone else's


@atexit.register
def _cleanup():
    for p in list(_created):
        try:
            p.remove()
        except Exception:  # noqa: BLE001 — best effort at exit
            pass


def resource_of(span):
    return span.get("resource") or {}


def server_spans_on(port):
    """A predicate: server spans of requests to port."""
    def pred(s):
        a = s.get("attributes") or {}
        return s.get("kind") == "SERVER" and str(a.get("server.port")) == str(port)
    return pred


def read_json(path):
    with open(path) as f:
        return json.load(f)


__all__ = ["Pod", "Unavailable", "ensure_containerd", "ctr", "cgroup_path", "cri_annotations",
           "new_container_id", "make_rootfs", "resource_of", "server_spans_on", "free_port",
           "wait_listening", "PYTHON"]
