#!/usr/bin/python3
"""test_logs.py — end-to-end: stdout/stderr lines as OTLP logs with the trace id of the request
being served (issue 17), without touching the applications.

Per stack — Flask (threaded), FastAPI/uvicorn (async handler), Node node:http, Go net/http — two
instances of tests/e2e/apps/logs/logapp.* run side by side, one printing a text line per request
on stdout ("INFO|WARN req <i> handled"), one a JSON object on stderr ({"level", "msg", "n"}); an
agent with --logs and --pid for both exports to the test receiver; curl sends requests with known
traceparents. Every line must arrive exactly once (decoded with the official protos when
../shared exists, else proto/otlp.proto), with its request's trace id (100 %), WARN/INFO
severities, and for JSON the message as body and the other fields as attributes.
The flood test: a process writing 100k lines/s for 5 s while a Flask app serves requests: the
agent's RSS stays bounded, the excess is counted (periscope_logs_dropped_total), every request
still has its span, and the agent's CPU per log line is printed.
"""

import os
import re
import subprocess
import sys
import threading
import time

from lib import (HERE, Agent, check, check_eq, curl, free_port, otlp_support, parse_prom, run_tests,
                 scrape, skip, test)
from servers import wait_listening

PYTHON = "/usr/bin/python3"
APPS = os.path.join(HERE, "apps", "logs")
BUILD = os.environ.get("BUILD", os.path.join(os.path.dirname(os.path.dirname(HERE)), "build"))
N = 40  # requests per instance
# asyncio (uvicorn) runs a handler in a task of its own; the agent follows that task with its
# Python asyncio probes (every line 80/80). Without them (a CPython whose _asyncio module is linked
# in, say) only the loop iterations after the read where nothing else can run are provable, which
# uvicorn's own 100 ms ticker ends now and then: such a line gets no trace id rather than a guessed
# one (README, connected traces; 72-77/80 measured): at least PARTIAL_MIN_SHARE then.
PARTIAL_CONTEXT = ("fastapi",)
PARTIAL_MIN_SHARE = 0.5


def _go_app():
    out = os.path.abspath(os.path.join(BUILD, "e2e-apps", "logs", "logapp"))
    src = os.path.join(APPS, "logapp.go")
    if os.path.exists(out) and os.path.getmtime(out) > os.path.getmtime(src):
        return out
    go = "/usr/bin/go" if os.path.exists("/usr/bin/go") else None
    if not go:
        skip("no Go toolchain")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    env = dict(os.environ, GOCACHE=os.path.abspath(os.path.join(BUILD, "e2e-apps", "logs", "gocache")),
               GO111MODULE="off", CGO_ENABLED="0", GOPROXY="off")
    subprocess.run([go, "build", "-o", out, src], env=env, check=True, capture_output=True,
                   timeout=300)
    return out


def _argv(stack):
    if stack in ("flask", "fastapi"):
        return [PYTHON, os.path.join(APPS, "logapp.py")], {"FRAMEWORK": stack}
    if stack == "node":
        return ["/usr/bin/node", os.path.join(APPS, "logapp.js")], {}
    return [_go_app()], {}


def _start(stack, mode, extra_env=None):
    argv, env = _argv(stack)
    port = free_port()
    full = dict(os.environ, PORT=str(port), MODE=mode, PYTHONUNBUFFERED="1", **env,
                **(extra_env or {}))
    # stdout/stderr to a pipe that a reader drains (not /dev/null: that is never captured)
    proc = subprocess.Popen(argv, env=full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    drain = subprocess.Popen(["/bin/cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
    proc.stdout.close()
    wait_listening(port, proc=proc)
    return proc, drain, port


def _stop(*procs):
    for p in procs:
        try:
            os.killpg(p.pid, 15) if p.pid == os.getpgid(p.pid) else p.terminate()
        except (ProcessLookupError, PermissionError):
            pass
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()


def _tp(i, salt):
    trace = "%08x%024x" % (salt, i + 1)
    return trace, "00-%s-%016x-01" % (trace, i + 1)


def _sev(rec):
    s = rec["severity_number"]
    return s if isinstance(s, str) else {9: "SEVERITY_NUMBER_INFO",
                                         13: "SEVERITY_NUMBER_WARN"}.get(s, str(s))


def run_stack(stack, agent_args=()):
    otlp = otlp_support()
    apps = {}
    try:
        for mode in ("text", "json"):
            apps[mode] = _start(stack, mode)
        with otlp.Receiver() as rcv:
            args = ["--logs", "--otlp-endpoint", rcv.url] + list(agent_args)
            for proc, _, _ in apps.values():
                args += ["--pid", str(proc.pid)]
            agent = Agent(args, print_json=False, env={"OTEL_BSP_SCHEDULE_DELAY": "200"})
            with agent:
                agent.wait_ready()
                time.sleep(0.5)
                want = {}
                for mode, (_, _, port) in apps.items():
                    salt = 0xa0000000 | (hash(stack + mode) & 0xfffffff)
                    for i in range(N):
                        trace, tp = _tp(i, salt)
                        want[(mode, i)] = trace
                        curl(["http://127.0.0.1:%d/r/%d" % (port, i)],
                             headers=["traceparent: " + tp])
                time.sleep(1.0)
                agent.stop_and_check()
                python_probes = any(r.get("msg") == "Python asyncio probes attached"
                                    for r in agent.log_records)
            import otlp_receiver
            recs = otlp_receiver.decode_dir(rcv.posts_dir, "logs") if os.path.isdir(
                rcv.posts_dir) else []
            spans = (otlp_receiver.decode_dir(rcv.posts_dir, "traces") or []) if os.path.isdir(
                rcv.posts_dir) else []
    finally:
        for proc, drain, _ in apps.values():
            _stop(proc, drain)
    got = {}
    for r in recs:
        body = r["body"] if isinstance(r["body"], str) else ""
        m = re.match(r"^(INFO|WARN) req (\d+) handled$", body)
        mj = re.match(r"^req (\d+)$", body)
        if m:
            key = ("text", int(m.group(2)))
        elif mj:
            key = ("json", int(mj.group(1)))
        else:
            continue
        got.setdefault(key, []).append(r)
    right = 0
    without = []
    for key, trace in sorted(want.items()):
        rs = got.get(key, [])
        check_eq(len(rs), 1, "%s %s line %d exported" % (stack, key[0], key[1]))
        r = rs[0]
        check_eq(_sev(r), "SEVERITY_NUMBER_WARN" if key[1] % 2 else "SEVERITY_NUMBER_INFO",
                 "%s %s line %d severity" % (stack, key[0], key[1]))
        check_eq(r["attributes"].get("log.iostream"), "stderr" if key[0] == "json" else "stdout",
                 "%s iostream" % stack)
        if key[0] == "json":
            check_eq(r["attributes"].get("n"), key[1], "%s JSON field n as attribute" % stack)
        check(r["resource"].get("service.name"), "%s: service.name on the resource" % stack)
        right += r["trace_id"] == trace
        if r["trace_id"] != trace:
            # was its request seen at all (a SERVER span in its trace)?
            seen = any(sp.get("trace_id") == trace and sp.get("kind") in ("SPAN_KIND_SERVER", 2)
                       for sp in spans)
            without.append("%s %d%s" % (key + ("" if seen else " (no span)",)))
        check(r["trace_id"] in ("", None, trace),
              "%s %s line %d carries another request's trace id %s" % (stack, key[0], key[1],
                                                                   r["trace_id"]))
    print("  %s: %d/%d lines with their request's trace id%s" % (
        stack, right, len(want), " (none: %s)" % ", ".join(without) if without else ""), flush=True)
    if stack in PARTIAL_CONTEXT and not python_probes:
        # never a wrong trace id (checked above); most are provable
        check(right >= PARTIAL_MIN_SHARE * len(want),
              "%s lines with the right trace id: %d of %d" % (stack, right, len(want)))
        return
    check_eq(right, len(want), "%s lines with the right trace id" % stack)


@test
def logs_flask():
    run_stack("flask")


@test
def logs_fastapi():
    run_stack("fastapi")


@test
def logs_node():
    run_stack("node")


@test
def logs_go():
    run_stack("go")


@test
def logs_go_syscall_exits():
    """The same with the data and log writes taken at the syscall exits (--syscall-data)."""
    run_stack("go", ["--syscall-data"])


@test
def logs_node_timer_lines_carry_no_trace():
    """A Node server whose 3 ms interval timer prints lines while requests are open (each is
    answered 20 ms after it is read, 4 at a time): a timer's line is nobody's, a handler's line
    is its request's. With the Node.js event-loop probes the agent sees where a read's work ends
    (timers run apart), so no timer line may carry a trace id; without them (a node binary with
    no symbols) only handler lines' right ids and no wrong id are checked."""
    otlp = otlp_support()
    proc, drain, port = _start("node", "text", {"TIMER_MS": "3", "DELAY_MS": "20"})
    n = 60
    try:
        with otlp.Receiver() as rcv:
            agent = Agent(["--logs", "--otlp-endpoint", rcv.url, "--pid", str(proc.pid)],
                          print_json=False, env={"OTEL_BSP_SCHEDULE_DELAY": "200"})
            with agent:
                agent.wait_ready()
                time.sleep(0.5)
                want = {}
                urls, headers = [], []
                for i in range(n):
                    trace, tp = _tp(i, 0xb0000000)
                    want[i] = trace
                    urls.append("http://127.0.0.1:%d/r/%d" % (port, i))
                    headers.append(tp)
                for k in range(0, n, 4):  # 4 open at a time, while the timer runs
                    ts = [threading.Thread(target=curl, args=([u],), kwargs={"headers": ["traceparent: " + h]})
                          for u, h in zip(urls[k:k + 4], headers[k:k + 4])]
                    for t in ts:
                        t.start()
                    for t in ts:
                        t.join()
                time.sleep(1.0)
                agent.stop_and_check()
                probes = any(r.get("msg") == "Node.js event-loop probes attached"
                             for r in agent.log_records)
            import otlp_receiver
            recs = otlp_receiver.decode_dir(rcv.posts_dir, "logs") if os.path.isdir(
                rcv.posts_dir) else []
            spans = (otlp_receiver.decode_dir(rcv.posts_dir, "traces") or []) if os.path.isdir(
                rcv.posts_dir) else []
    finally:
        _stop(proc, drain)
    timer_lines = timer_traced = right = 0
    seen = set()
    for r in recs:
        body = r["body"] if isinstance(r["body"], str) else ""
        m = re.match(r"^(INFO|WARN) req (\d+) handled$", body)
        if body.startswith("timer tick "):
            timer_lines += 1
            timer_traced += bool(r["trace_id"])
        elif m:
            i = int(m.group(2))
            check(i not in seen, "handler line %d exported twice" % i)
            seen.add(i)
            check(r["trace_id"] in ("", None, want[i]),
                  "handler line %d carries another request's trace id %s" % (i, r["trace_id"]))
            right += r["trace_id"] == want[i]
    print("  node with a 3 ms timer: %d/%d handler lines with their trace id; %d timer lines, %d "
          "with a trace id (event-loop probes %s)" % (right, n, timer_lines, timer_traced,
                                                     "attached" if probes else "absent"), flush=True)
    check_eq(len(seen), n, "handler lines exported")
    check(timer_lines >= 100, "only %d timer lines exported" % timer_lines)
    if probes:
        check_eq(timer_traced, 0, "timer lines with a trace id")
        check_eq(right, n, "handler lines with their request's trace id")


FLOOD = r"""
import os, time
line = b"flood line with some text to make it look like a real log message, number %d\n"
end = time.monotonic() + float(os.environ["SECONDS"])
i = 0
while time.monotonic() < end:
    t0 = time.monotonic()
    for _ in range(1000):
        os.write(1, line % i)
        i += 1
    dt = time.monotonic() - t0
    if dt < 0.01:
        time.sleep(0.01 - dt)  # about 100k lines/s
print(i, file=open(os.environ["COUNT_FILE"], "w"))
"""


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@test
def logs_flood_rate_limited():
    flask, drain, port = _start("flask", "text")
    prom = free_port()
    count_file = "/tmp/periscope-e2e-flood-%d" % os.getpid()
    flood = None
    try:
        agent = Agent(["--logs", "--prometheus", "127.0.0.1:%d" % prom], print_json=True)
        with agent:
            agent.wait_ready()
            rss0 = _rss_kb(agent.pid)
            cpu0 = _cpu_s(agent.pid)
            flood = subprocess.Popen([PYTHON, "-c", FLOOD],
                                     env=dict(os.environ, SECONDS="5", COUNT_FILE=count_file),
                                     stdout=subprocess.PIPE, start_new_session=True)
            sink = subprocess.Popen(["/bin/cat"], stdin=flood.stdout, stdout=subprocess.DEVNULL)
            flood.stdout.close()
            rss_peak = rss0
            for i in range(20):
                curl(["http://127.0.0.1:%d/r/%d" % (port, i)])
                rss_peak = max(rss_peak, _rss_kb(agent.pid))
                time.sleep(0.2)
            flood.wait(timeout=30)
            sink.wait(timeout=10)
            time.sleep(1.0)
            rss_peak = max(rss_peak, _rss_kb(agent.pid))
            cpu = _cpu_s(agent.pid) - cpu0
            m = parse_prom(scrape(prom))
            spans = agent.wait_for_spans(
                lambda s: s.get("kind") == "SERVER" and
                (s.get("attributes") or {}).get("server.port") == port and
                (s.get("attributes") or {}).get("url.path", "").startswith("/r/"), 20)
            agent.stop_and_check()
            # the flood's own records: --logs takes every process's lines (other services on
            # the machine log too, and their lines are not the flood's budget)
            with agent._cond:
                flood_records = sum(1 for line in agent.stdout_other
                                    if line.startswith("{") and '"body":"flood line' in line)
        with open(count_file) as f:
            written = int(f.read())
    finally:
        _stop(flask, drain)
        if flood and flood.poll() is None:
            flood.kill()
        if os.path.exists(count_file):
            os.unlink(count_file)

    def val(name, **labels):
        return sum(v for n, lab, v in m
                   if n == name and all(lab.get(k) == w for k, w in labels.items()))
    kernel_drop = val("periscope_logs_dropped_total", reason="rate_limit_kernel")
    agent_drop = val("periscope_logs_dropped_total", reason="rate_limit")
    records = val("periscope_logs_records_total")
    writes = val("periscope_logs_writes_total")
    print("  flood: %d lines written in 5 s; kernel sent %d writes, dropped %d over the budget; "
          "agent dropped %d lines; %d records (%d of the flood); agent RSS %d -> peak %d kB; agent CPU %.3f s = "
          "%.2f us per line written, %.2f us per line sent" % (
              written, writes, kernel_drop, agent_drop, records, flood_records, rss0, rss_peak, cpu,
              cpu / max(written, 1) * 1e6, cpu / max(writes, 1) * 1e6), flush=True)
    check(written > 200000, "the flood wrote %d lines" % written)
    check(kernel_drop + agent_drop > written / 2, "the excess was counted as dropped")
    # the kernel counts writes per CPU in one-second windows: up to twice the budget per second
    check(flood_records <= 1000 * 10,
          "the flood's records held to about the budget (1000/s over 5 s): %d (all records %d)"
          % (flood_records, records))
    check(flood_records > 0, "the flood's lines under the budget were exported")
    check(rss_peak - rss0 < 64 * 1024, "agent RSS grew %d kB" % (rss_peak - rss0))
    check_eq(len(spans), 20, "server spans of the requests served during the flood")


if __name__ == "__main__":
    sys.exit(run_tests())
