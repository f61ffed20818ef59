#!/usr/bin/env python3
"""test_k8s_hostile.py — hostile input to the container metadata: a malformed and an oversized
config.json (a fake runtime state root via --host-root), a cgroup layout no rule knows, an API
that sends 100 MB, invalid JSON and pods with huge labels. Each gives a clear log line at most,
bounded memory, no crash, and the rest of the telemetry is unaffected. Also the figure: the agent's
RSS with 100 pods' metadata cached."""

import os
import shutil
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import Agent, check, check_eq, curl, free_port, require_agent, run_tests, skip, test  # noqa
import k8s  # noqa: E402
from fake_kube_api import FakeKubeAPI, make_pod  # noqa: E402

NODE = "node-e2e-1"
TASKS = "run/containerd/io.containerd.runtime.v2.task/k8s.io"
_made = []


def new_pod(*args, **kw):
    try:
        p = k8s.Pod(*args, **kw)
    except k8s.Unavailable as e:
        skip(str(e))
    _made.append(p)
    return p


def served(a, p, n=1):
    codes, _ = curl([p.url()] * n)
    check_eq(codes, [200] * n, "statuses")
    spans = a.wait_for_spans(k8s.server_spans_on(p.port), n, settle=0.3)
    check(len(spans) >= n, "no span for %s" % p.pod)
    return k8s.resource_of(spans[-1])


def status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def logs(a, msg):
    return [r for r in list(a.log_records) if r.get("msg", "").startswith(msg)]


@test
def test_bad_bundles_and_unknown_cgroup_layout():
    require_agent()
    fake = tempfile.mkdtemp(prefix="periscope-hostroot-")
    try:
        bad = new_pod("broken-json", container="b", start=False)
        big = new_pod("huge-json", container="h", start=False)
        bad_id, big_id = k8s.new_container_id(), k8s.new_container_id()
        for cid, body in ((bad_id, b'{"annotations":{"io.kubernetes.cri.sandbox-name":'),
                          (big_id, b'{"annotations":{"x":"' + b"a" * (5 << 20) + b'"}}')):
            d = os.path.join(fake, TASKS, cid)
            os.makedirs(d)
            with open(os.path.join(d, "config.json"), "wb") as f:
                f.write(body)
        with Agent(["--no-tls", "--kube-api", "off", "--host-root", fake,
                    "--node-name", NODE]) as a:
            a.wait_ready()
            bad.start(cid=bad_id)
            big.start(cid=big_id)
            weird = new_pod("weird-layout", driver="unknown")
            for p, cid in ((bad, bad_id), (big, big_id)):
                r = served(a, p)
                check_eq(r.get("container.id"), cid, "container.id despite a bad bundle")
                check("k8s.pod.name" not in r, "pod metadata from a bad bundle: %r" % r)
            r = served(a, weird, 2)
            bad_keys = sorted(k for k in r if k.startswith(("k8s.", "container.")))
            check_eq(bad_keys, [], "attributes from an unknown cgroup layout")
            time.sleep(2.5)  # retries of the incomplete resources happen meanwhile
            served(a, bad)
            lines = logs(a, "cannot read a container's OCI bundle")
            by_id = sorted((r.get("container_id"), r.get("error")) for r in lines)
            check_eq(by_id, sorted([(bad_id, "not a valid config.json"),
                                    (big_id, "config.json too big")]),
                     "one line per bad bundle")
            check(a.proc.poll() is None, "agent died")
            a.stop_and_check()
    finally:
        shutil.rmtree(fake, ignore_errors=True)


@test
def test_api_100mb_garbage_and_huge_labels():
    require_agent()
    api = FakeKubeAPI(free_port())
    api.huge_list_bytes = 100 << 20
    p = new_pod("orders-7d9f8b6c5d-w9r8t", container="o")
    try:
        with Agent(["--no-tls", "--kube-api", api.url, "--node-name", NODE]) as a:
            a.wait_ready()
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not logs(a, "kubernetes API response too big"):
                time.sleep(0.2)
            check(logs(a, "kubernetes API response too big"), "no line about the 100 MB list")
            r = served(a, p)  # runtime files meanwhile
            check_eq(r.get("k8s.pod.name"), p.pod, "k8s.pod.name while the API misbehaves")
            check_eq(r.get("service.name"), "orders", "service.name while the API misbehaves")
            time.sleep(3)  # a few more refused lists (backoff)
            hwm = status_kb(a.pid, "VmHWM")
            print("  agent peak RSS with the API sending 100 MB lists: %.1f MiB"
                  % (hwm / 1024.0), flush=True)
            check(hwm < 160 * 1024, "peak RSS %d KiB: memory not bounded" % hwm)
            check_eq(len(logs(a, "kubernetes API response too big")), 1,
                     "lines about the big lists")
            # then invalid JSON
            api.huge_list_bytes = 0
            api.garbage_next = True
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and \
                    not logs(a, "kubernetes API sent something that is not"):
                time.sleep(0.2)
            check(logs(a, "kubernetes API sent something that is not"),
                  "no line about the invalid JSON")
            # then huge labels and annotations on our pod
            pod = make_pod(p.pod, p.pod_uid, containers=[("o", p.cid, None)],
                           owner=("ReplicaSet", "orders-7d9f8b6c5d"),
                           labels={"app.kubernetes.io/name": "x" * 100000,
                                   "big": "y" * (1 << 20)},
                           annotations={"a%d" % i: "v" * 100 for i in range(5000)})
            api.put(pod)
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and \
                    not logs(a, "watching this node's pods"):
                time.sleep(0.2)
            check(logs(a, "watching this node's pods"), "the API never recovered")
            p.restart()
            api.put(make_pod(p.pod, p.pod_uid, containers=[("o", p.cid, None)],
                             owner=("ReplicaSet", "orders-7d9f8b6c5d"),
                             labels={"app.kubernetes.io/name": "x" * 100000},
                             annotations={"a%d" % i: "v" * 100 for i in range(5000)}))
            time.sleep(1)
            r = served(a, p)
            check_eq(r.get("container.id"), p.cid, "container.id")
            check_eq(r.get("service.name"), "orders",
                     "service.name: the over-long label is dropped, not truncated")
            check(a.proc.poll() is None, "agent died")
            a.stop_and_check()
    finally:
        api.stop()


@test
def test_rss_with_100_pods_cached():
    require_agent()
    api = FakeKubeAPI(free_port())
    for i in range(100):
        api.put(make_pod("svc%02d-7d9f8b6c5d-%05d" % (i % 20, i), str(uuid.uuid4()),
                         labels={"app.kubernetes.io/name": "svc%02d" % (i % 20),
                                 "pod-template-hash": "7d9f8b6c5d", "team": "payments"},
                         annotations={"resource.opentelemetry.io/service.name": "svc%02d" % i,
                                      "kubectl.kubernetes.io/last-applied-configuration":
                                      "{" + "x" * 2000 + "}"},
                         owner=("ReplicaSet", "svc%02d-7d9f8b6c5d" % (i % 20)),
                         containers=[("app", k8s.new_container_id(), "svc%02d" % i),
                                     ("sidecar", k8s.new_container_id(), None)]))
    try:
        with Agent(["--no-tls", "--kube-api", "off", "--node-name", NODE]) as base:
            base.wait_ready()
            time.sleep(3)
            rss0 = status_kb(base.pid, "VmRSS")
            base.stop()
        with Agent(["--no-tls", "--kube-api", api.url, "--node-name", NODE]) as a:
            a.wait_ready()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not logs(a, "watching this node's pods"):
                time.sleep(0.2)
            time.sleep(3)
            rss = status_kb(a.pid, "VmRSS")
            print("  agent RSS: %.1f MiB without the API, %.1f MiB with 100 pods (200 containers)"
                  " cached" % (rss0 / 1024.0, rss / 1024.0), flush=True)
            check(rss < rss0 + 20 * 1024, "100 pods cost %d KiB" % (rss - rss0))
            a.stop_and_check()
    finally:
        api.stop()


@test
def test_cleanup():
    for p in list(_made):
        p.remove()
    del _made[:]


if __name__ == "__main__":
    sys.exit(run_tests())
