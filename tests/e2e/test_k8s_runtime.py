#!/usr/bin/env python3
"""test_k8s_runtime.py — pod metadata from the container runtime's files, against real containerd +
runc: containers run with `ctr -n k8s.io run --rootfs` under kubelet-style cgroups (both drivers'
paths) with the annotations containerd's CRI plugin writes, serving HTTP with python3. Spans of
requests served in a container carry container.id, k8s.* and the workload's service.name; a host
process gets none; replicas of one Deployment share service.name; a container started after the
agent is labelled from its first request; a restarted container gets its new id; Prometheus has
service_namespace and target_info with the pod's attributes. No Kubernetes API (--kube-api off)."""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lib import (check, check_eq, curl, free_port, http_get, require_agent, run_tests,  # noqa
                 shared_agent, skip, test)
import k8s  # noqa: E402

PROM_PORT = free_port()
NODE = "node-e2e-1"
ARGS = ("--no-tls", "--kube-api", "off", "--node-name", NODE,
        "--prometheus", "127.0.0.1:%d" % PROM_PORT)
_pods = {}


def agent():
    return shared_agent(ARGS)


def pod(key, *args, **kw):
    """A pod made once per file (k8s.Pod's arguments)."""
    if key not in _pods:
        try:
            _pods[key] = k8s.Pod(*args, **kw)
        except k8s.Unavailable as e:
            skip(str(e))
    return _pods[key]


def spans_of(a, p, n, timeout=15):
    return a.wait_for_spans(k8s.server_spans_on(p.port), n, timeout=timeout, settle=0.5)


def check_pod_resource(r, p, service, workload=("k8s.deployment.name", "orders")):
    check_eq(r.get("container.id"), p.cid, "container.id")
    check_eq(r.get("k8s.pod.name"), p.pod, "k8s.pod.name")
    check_eq(r.get("k8s.namespace.name"), p.namespace, "k8s.namespace.name")
    check_eq(r.get("k8s.pod.uid"), p.pod_uid, "k8s.pod.uid")
    check_eq(r.get("k8s.container.name"), p.container, "k8s.container.name")
    check_eq(r.get("k8s.node.name"), NODE, "k8s.node.name")
    check_eq(r.get("container.runtime"), "containerd", "container.runtime")
    check_eq(r.get("service.name"), service, "service.name")
    check_eq(r.get("service.namespace"), p.namespace, "service.namespace")
    check_eq(r.get("service.instance.id"), "%s.%s.%s" % (p.namespace, p.pod, p.container),
             "service.instance.id")
    if workload:
        check_eq(r.get(workload[0]), workload[1], workload[0])


@test
def test_pod_started_before_agent():
    require_agent()
    p = pod("early", "orders-7d9f8b6c5d-x2x9k")  # before the agent starts
    a = agent()
    codes, _ = curl([p.url()] * 3)
    check_eq(codes, [200] * 3, "statuses")
    spans = spans_of(a, p, 3)
    check_eq(len(spans), 3, "server spans in the pod")
    for s in spans:
        check_pod_resource(k8s.resource_of(s), p, "orders")


@test
def test_host_process_gets_none():
    require_agent()
    a = agent()
    port = free_port()
    srv = subprocess.Popen([k8s.PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           cwd="/tmp")
    try:
        k8s.wait_listening(port, proc=srv)
        codes, _ = curl(["http://127.0.0.1:%d/" % port] * 2)
        check_eq(codes, [200, 200], "statuses")
        spans = a.wait_for_spans(k8s.server_spans_on(port), 2, settle=0.5)
        check_eq(len(spans), 2, "host server spans")
        for s in spans:
            r = k8s.resource_of(s)
            bad = sorted(k for k in r if k.startswith("k8s.") or k.startswith("container."))
            check_eq(bad, [], "container/k8s attributes on a host process")
            # the host naming (proc_info): the module python runs, or the executable
            check(r.get("service.name") == "http.server" or
                  r.get("service.name", "").startswith("python"),
                  "host service.name %r is not the host naming" % r.get("service.name"))
            check("service.namespace" not in r, "service.namespace on a host process")
    finally:
        srv.kill()
        srv.wait()


@test
def test_replicas_share_service_name_both_drivers():
    require_agent()
    a = agent()
    p1 = pod("r1", "orders-7d9f8b6c5d-q8w7z", driver="cgroupfs", qos="burstable")
    p2 = pod("r2", "orders-7d9f8b6c5d-tt5kd", driver="systemd", qos="besteffort")
    for p in (p1, p2):
        codes, _ = curl([p.url()] * 2)
        check_eq(codes, [200, 200], "statuses")
    for p in (p1, p2):
        spans = spans_of(a, p, 2)
        check_eq(len(spans), 2, "server spans of %s" % p.pod)
        for s in spans:
            check_pod_resource(k8s.resource_of(s), p, "orders")
    check(p1.cid != p2.cid, "two replicas, two container ids")


@test
def test_started_after_agent_first_request_labelled():
    require_agent()
    a = agent()
    t0 = time.time()
    p = pod("late", "cart-6b7c8d9f5b-m2n4p", container="cart")
    codes, _ = curl([p.url()])
    check_eq(codes, [200], "status")
    spans = spans_of(a, p, 1)
    check_eq(len(spans), 1, "the first request's span")
    check_pod_resource(k8s.resource_of(spans[0]), p, "cart",
                       workload=("k8s.deployment.name", "cart"))
    print("  container start → first labelled span: %.2f s (of which python3 start-up and the "
          "request)" % ((spans[0]["_seen_unix_nano"] / 1e9) - t0), flush=True)


@test
def test_restarted_container_gets_new_id():
    require_agent()
    a = agent()
    p = pod("restart", "billing-5d6f7c8b9d-zx7wq", container="billing")
    curl([p.url("/")])
    before = spans_of(a, p, 1)
    check_eq(len(before), 1, "span before the restart")
    old = p.cid
    p.restart()
    check(p.cid != old, "the restart made a new container id")
    curl([p.url("/index.html")])
    after = a.wait_for_spans(lambda s: k8s.server_spans_on(p.port)(s) and
                             (s.get("attributes") or {}).get("url.path") == "/index.html",
                             1, settle=0.5)
    check_eq(len(after), 1, "span after the restart")
    check_eq(k8s.resource_of(before[0]).get("container.id"), old, "old container.id")
    check_eq(k8s.resource_of(after[0]).get("container.id"), p.cid, "new container.id")
    check_eq(k8s.resource_of(after[0]).get("k8s.pod.name"), p.pod, "same pod")


@test
def test_service_name_precedence():
    require_agent()
    a = agent()
    env_pod = pod("env", "api-7f8b9c6d5f-aaxbb", container="api",
                  env={"OTEL_SERVICE_NAME": "from-env"})
    ann_pod = pod("ann", "api-7f8b9c6d5f-ccxdd", container="api",
                  annotations={"resource.opentelemetry.io/service.name": "from-annotation"})
    sts_pod = pod("sts", "ledger-0", container="ledger")
    want = {env_pod: "from-env", ann_pod: "from-annotation", sts_pod: "ledger-0"}
    for p in want:
        curl([p.url()])
    for p, name in want.items():
        spans = spans_of(a, p, 1)
        check_eq(len(spans), 1, "span of %s" % p.pod)
        check_eq(k8s.resource_of(spans[0]).get("service.name"), name, "service.name of " + p.pod)


@test
def test_prometheus_labels():
    require_agent()
    a = agent()
    p = pod("early", "orders-7d9f8b6c5d-x2x9k")
    curl([p.url()])
    spans_of(a, p, 1)
    deadline = time.time() + 10
    body = ""
    while time.time() < deadline:
        body = http_get("http://127.0.0.1:%d/metrics" % PROM_PORT)[1].decode("utf-8", "replace")
        if 'k8s_pod_name="%s"' % p.pod in body:
            break
        time.sleep(0.5)
    info = [ln for ln in body.splitlines()
            if ln.startswith("target_info{") and 'k8s_pod_name="%s"' % p.pod in ln]
    check(info, "no target_info for the pod")
    for want in ('service_name="orders"', 'service_namespace="shop"',
                 'k8s_deployment_name="orders"', 'container_id="%s"' % p.cid,
                 'k8s_namespace_name="shop"'):
        check(want in info[0], "target_info lacks %s: %s" % (want, info[0][:400]))
    series = [ln for ln in body.splitlines()
              if ln.startswith("http_server_request_duration_seconds_count{") and
              'service_name="orders"' in ln]
    check(series, "no http server series for service orders")
    check(all('service_namespace="shop"' in ln for ln in series),
          "service_namespace missing on %s" % series[0])


@test
def test_otlp_metrics_and_spans_carry_the_pod():
    require_agent()
    import lib
    otlp = lib.otlp_support()
    p = pod("early", "orders-7d9f8b6c5d-x2x9k")
    with otlp.Receiver() as rcv:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_METRIC_EXPORT_INTERVAL": "1000",
               "OTEL_BSP_SCHEDULE_DELAY": "200"}
        with lib.Agent(["--no-tls", "--kube-api", "off", "--node-name", NODE,
                        "--port", str(p.port), "--no-print"], env=env, print_json=False) as a:
            a.wait_ready()
            curl([p.url()] * 2)
            import otlp_receiver
            deadline = time.time() + 15
            found = spans = None
            while time.time() < deadline and not (found and spans):
                time.sleep(1)
                ms = otlp_receiver.decode_dir(rcv.posts_dir, "metrics") or []
                found = [m for m in ms if m["name"] == "http.server.request.duration" and
                         m["resource"].get("k8s.pod.name") == p.pod]
                spans = [s for s in otlp.all_spans(rcv)
                         if k8s.resource_of(s).get("k8s.pod.name") == p.pod]
            check(found, "no OTLP http.server.request.duration with the pod's resource")
            check(spans, "no OTLP span with the pod's resource")
            for r in (found[0]["resource"], k8s.resource_of(spans[0])):
                check_pod_resource(r, p, "orders")
            a.stop_and_check()


@test
def test_cleanup():
    for p in list(_pods.values()):
        p.remove()
    _pods.clear()


if __name__ == "__main__":
    sys.exit(run_tests())
