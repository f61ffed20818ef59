#!/usr/bin/env python3
"""test_k8s_api.py — pod metadata from the Kubernetes API (a local fake of /api/v1/pods list +
watch, tests/e2e/fake_kube_api.py) on top of the runtime's files, with real containerd pods: a pod
known before its process, a process before its pod, a deleted pod forgotten, the pod spec's env;
410 Gone, garbage and dropped watches make relists; the API down at start and mid-run; a steady
state's request rate. Metadata from the runtime files keeps flowing throughout."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import (Agent, check, check_eq, curl, free_port, require_agent, run_tests,  # noqa
                 shared_agent, skip, test)
import k8s  # noqa: E402
from fake_kube_api import FakeKubeAPI, make_pod  # noqa: E402

NODE = "node-e2e-1"
API = FakeKubeAPI(free_port())
ARGS = ("--no-tls", "--kube-api", API.url, "--node-name", NODE)
_made = []


def agent():
    a = shared_agent(ARGS)
    wait_log(a, "watching this node's pods", 1, 10)
    return a


def new_pod(*args, **kw):
    try:
        p = k8s.Pod(*args, **kw)
    except k8s.Unavailable as e:
        skip(str(e))
    _made.append(p)
    return p


def log_count(a, msg):
    return sum(1 for r in list(a.log_records) if r.get("msg") == msg)


def wait_log(a, msg, n=1, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_count(a, msg) >= n:
            return True
        time.sleep(0.1)
    raise AssertionError("no %d log line(s) %r; log:\n%s" % (n, msg, a.stderr_tail(10)))


def served(a, p, path="/", n=1, timeout=15):
    codes, _ = curl([p.url(path)] * n)
    check_eq(codes, [200] * n, "statuses")
    pred = k8s.server_spans_on(p.port)
    spans = a.wait_for_spans(lambda s: pred(s) and
                             (s.get("attributes") or {}).get("url.path") == path, n,
                             timeout=timeout, settle=0.3)
    check(len(spans) >= n, "no span for %s%s" % (p.pod, path))
    return k8s.resource_of(spans[-1])


def poll_service_name(a, p, want, timeout=15):
    """Requests until the newest span says service.name want; returns what it said last."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        got = served(a, p).get("service.name")
        if got == want:
            return got
        time.sleep(0.3)
    return got


@test
def test_pod_known_before_its_process():
    require_agent()
    a = agent()
    p = new_pod("checkout-pqr", container="web", start=False)
    cid = k8s.new_container_id()
    API.put(make_pod(p.pod, p.pod_uid, labels={"app.kubernetes.io/name": "checkout-svc",
                                               "pod-template-hash": "5f6d7c8b9f"},
                     owner=("ReplicaSet", "checkout-5f6d7c8b9f"),
                     containers=[("web", cid, None)]))
    time.sleep(0.5)  # the watch event reaches the agent
    p.start(cid=cid)
    r = served(a, p)
    check_eq(r.get("service.name"), "checkout-svc", "service.name from the label")
    check_eq(r.get("k8s.deployment.name"), "checkout", "k8s.deployment.name from the owner")
    check_eq(r.get("k8s.replicaset.name"), "checkout-5f6d7c8b9f", "k8s.replicaset.name")
    check_eq(r.get("k8s.pod.name"), p.pod, "k8s.pod.name")
    check_eq(r.get("container.id"), cid, "container.id")


@test
def test_pod_spec_env_wins_over_label():
    require_agent()
    a = agent()
    p = new_pod("payments-lmn", container="pay", start=False)
    cid = k8s.new_container_id()
    API.put(make_pod(p.pod, p.pod_uid, labels={"app.kubernetes.io/name": "label-name"},
                     annotations={"resource.opentelemetry.io/service.name": "annotated"},
                     containers=[("pay", cid, "from-spec-env")]))
    time.sleep(0.5)
    p.start(cid=cid)
    check_eq(served(a, p).get("service.name"), "from-spec-env", "service.name")


@test
def test_process_before_its_pod_then_deleted():
    require_agent()
    a = agent()
    p = new_pod("inventory-xyz", container="inv")
    r = served(a, p)
    check_eq(r.get("k8s.pod.name"), p.pod, "k8s.pod.name from the runtime files at once")
    check_eq(r.get("service.name"), "inventory-xyz", "service.name before the API knows it")
    API.put(make_pod(p.pod, p.pod_uid, labels={"app.kubernetes.io/name": "inventory"},
                     containers=[("inv", p.cid, None)]))
    got = poll_service_name(a, p, "inventory")
    check_eq(got, "inventory", "service.name once the API has the pod")
    # deleted: forgotten — the pod's next container is named from the runtime files again
    API.delete(p.pod_uid)
    time.sleep(0.5)
    p.restart()
    r = served(a, p)
    check_eq(r.get("container.id"), p.cid, "the new container's id")
    check_eq(r.get("service.name"), "inventory-xyz", "service.name after the pod was deleted")


@test
def test_410_garbage_and_dropped_watches_relist():
    require_agent()
    a = agent()
    lists0 = API.count("list")
    API.gone_next = True
    API.drop_watches = True  # the open watch ends with a partial event
    time.sleep(0.4)
    API.drop_watches = False
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and API.count("list") <= lists0:
        time.sleep(0.1)
    check(API.count("list") > lists0, "no relist after a dropped watch and 410 Gone")
    lists1 = API.count("list")
    API.garbage_next = True  # into the open watch
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and API.count("list") <= lists1:
        time.sleep(0.1)
    check(API.count("list") > lists1, "no relist after garbage in the watch")
    # still current: a new pod's labels arrive
    p = new_pod("search-qwe", container="s", start=False)
    cid = k8s.new_container_id()
    API.put(make_pod(p.pod, p.pod_uid, labels={"app.kubernetes.io/name": "search"},
                     containers=[("s", cid, None)]))
    p.start(cid=cid)
    check_eq(poll_service_name(a, p, "search"), "search", "service.name after the relists")
    check(a.proc.poll() is None, "agent exited")


@test
def test_slow_api_does_not_hold_spans():
    require_agent()
    a = agent()
    lists0 = API.count("list")
    API.slow_s = 6  # every answer waits 6 s
    API.gone_next = True
    API.drop_watches = True
    try:
        time.sleep(0.4)
        API.drop_watches = False
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and API.count("list") <= lists0:
            time.sleep(0.1)  # the relist is now waiting on the slow server
        p = new_pod("orders-7d9f8b6c5d-sl5wq", container="o")
        t0 = time.monotonic()
        r = served(a, p)
        took = time.monotonic() - t0
        check(took < 4, "a span took %.1f s while the API was slow" % took)
        check_eq(r.get("k8s.pod.name"), p.pod, "k8s.pod.name from the runtime files meanwhile")
        check_eq(r.get("service.name"), "orders", "service.name meanwhile")
    finally:
        API.slow_s = 0
    wait_log(a, "watching this node's pods", 1, 30)


@test
def test_api_down_mid_run():
    require_agent()
    a = agent()
    warned = log_count(a, "kubernetes API unreachable")
    API.stop()
    try:
        p = new_pod("orders-7d9f8b6c5d-hh5kd", container="o")
        r = served(a, p)  # the runtime files still name it
        check_eq(r.get("k8s.pod.name"), p.pod, "k8s.pod.name while the API is down")
        check_eq(r.get("service.name"), "orders", "service.name while the API is down")
        wait_log(a, "kubernetes API unreachable", warned + 1, 15)
    finally:
        watching = log_count(a, "watching this node's pods")
        API.start()
    wait_log(a, "watching this node's pods", watching + 1, 40)
    check(log_count(a, "kubernetes API unreachable") <= warned + 1,
          "the outage was logged more than once")


@test
def test_steady_state_requests():
    require_agent()
    agent()
    time.sleep(1)
    t0 = time.time()
    time.sleep(12)
    n = API.count(since=t0)
    print("  API requests in 12 s of steady state: %d (a watch lasts 300 s: 0.2/min)" % n,
          flush=True)
    check(n <= 1, "%d API requests in 12 s of steady state" % n)


@test
def test_api_down_at_start():
    require_agent()
    port = free_port()
    p = new_pod("catalog-vbn", container="cat")
    with Agent(["--no-tls", "--kube-api", "http://127.0.0.1:%d" % port,
                "--node-name", NODE]) as a:
        a.wait_ready()
        r = served(a, p)
        check_eq(r.get("k8s.pod.name"), p.pod, "k8s.pod.name with the API down")
        check_eq(r.get("container.id"), p.cid, "container.id with the API down")
        wait_log(a, "kubernetes API unreachable", 1, 10)
        time.sleep(2)
        check_eq(log_count(a, "kubernetes API unreachable"), 1, "lines about the outage")
        api2 = FakeKubeAPI(port)
        try:
            api2.put(make_pod(p.pod, p.pod_uid, labels={"app.kubernetes.io/name": "catalog"},
                              containers=[("cat", p.cid, None)]))
            wait_log(a, "watching this node's pods", 1, 20)
            p.restart()
            api2.put(make_pod(p.pod, p.pod_uid, labels={"app.kubernetes.io/name": "catalog"},
                              containers=[("cat", p.cid, None)]))
            check_eq(poll_service_name(a, p, "catalog"), "catalog", "service.name once up")
        finally:
            api2.stop()
        a.stop_and_check()


@test
def test_cleanup():
    for p in list(_made):
        p.remove()
    del _made[:]
    API.stop()


if __name__ == "__main__":
    sys.exit(run_tests())
