#!/usr/bin/python3
"""test_core_agent.py — end-to-end: the agent itself. Its own OTLP posts are not traced, SIGTERM
flushes pending spans, the --pid/--port/--exe filters narrow what is traced, bad flags exit 2, an
unreachable OTLP endpoint does not stop it, text output and JSON logs.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import Agent, attrs, check, check_eq, curl, free_port, res, test  # noqa: E402
from servers import Nginx  # noqa: E402


def on_port(port, kind=None):
    return lambda s: attrs(s).get("server.port") == port and (kind is None or s.get("kind") == kind)


@test
def bad_flags_exit_2():
    lib.require_agent()
    for argv in (["--no-such-flag"], ["--print=xml"], ["--pid", "abc"], ["--port", "0"],
                 ["--port", "70000"], ["--log-level", "loud"], ["--capture-size", "-1"]):
        p = subprocess.run([lib.AGENT] + argv, capture_output=True, timeout=10)
        check_eq(p.returncode, 2, "exit status for %s" % " ".join(argv))
        check(p.stderr.strip(), "no message on stderr for %s" % " ".join(argv))
        check_eq(p.stdout, b"", "stdout for %s" % " ".join(argv))
    p = subprocess.run([lib.AGENT, "--help"], capture_output=True, timeout=10)
    check_eq(p.returncode, 0, "--help exit status")
    for flag in ("--print", "--pid", "--port", "--exe", "--prometheus", "--log-level"):
        check(flag.encode() in p.stdout, "--help does not mention " + flag)


@test
def json_logs_and_text_output():
    lib.require_agent()
    with Nginx() as nginx, Agent(args=["--print", "--port", str(nginx.port)],
                                 print_json=False) as agent:
        agent.wait_ready()
        codes, _ = curl("http://127.0.0.1:%d/echo?q=secret" % nginx.port)
        check_eq(codes, [200], "curl status")
        line = agent.wait_for_stdout(lambda ln: "/echo" in ln and "GET" in ln)
        check(line is not None, "no text span line for GET /echo; stdout: %r"
              % agent.stdout_other[-5:])
        check("secret" not in line, "text output shows the query string: " + line)
        agent.stop_and_check()
        check(agent.log_records, "no JSON log lines on stderr")
        for ln in agent.stderr_lines:
            rec = json.loads(ln)  # every stderr line is one JSON object
            for key in ("ts", "level", "msg"):
                check(key in rec, "log line without %r: %s" % (key, ln))
            check(rec["level"] in ("debug", "info", "warn", "error"), "log level in " + ln)


@test
def port_filter():
    lib.require_agent()
    with Nginx() as traced, Nginx() as other, \
            Agent(args=["--port", str(traced.port)]) as agent:
        agent.wait_ready()
        for n in (traced, other):
            codes, _ = curl(["http://127.0.0.1:%d/echo" % n.port] * 3)
            check_eq(codes, [200] * 3, "curl statuses")
        spans = agent.wait_for_spans(on_port(traced.port), 6)
        check_eq(len([s for s in spans if s["kind"] == "SERVER"]), 3, "SERVER spans, traced port")
        check_eq(len([s for s in spans if s["kind"] == "CLIENT"]), 3, "CLIENT spans, traced port")
        check_eq(len(agent.snapshot(on_port(other.port))), 0, "spans for the other port")
        stray = agent.snapshot(lambda s: attrs(s).get("server.port") != traced.port)
        check_eq([(res(s).get("service.name"), attrs(s).get("server.port")) for s in stray], [],
                 "spans on ports not asked for")
        agent.stop_and_check()


@test
def pid_filter_includes_children():
    lib.require_agent()
    with Nginx() as traced, Nginx() as other, \
            Agent(args=["--pid", str(traced.pid)]) as agent:
        agent.wait_ready()
        for n in (traced, other):
            codes, _ = curl(["http://127.0.0.1:%d/echo" % n.port, "http://127.0.0.1:%d/fail"
                             % n.port])
            check_eq(codes, [200, 500], "curl statuses")
        spans = agent.wait_for_spans(on_port(traced.port, "SERVER"), 2)
        check_eq(len(spans), 2, "SERVER spans of the traced nginx (its workers are children)")
        pids = traced.pids()
        for s in agent.snapshot():
            check(res(s).get("process.pid") in pids, "span from pid %r (%s) outside --pid %d"
                  % (res(s).get("process.pid"), res(s).get("service.name"), traced.pid))
        agent.stop_and_check()


@test
def exe_filter():
    lib.require_agent()
    with Nginx() as nginx, Agent(args=["--exe", "curl"]) as agent:
        agent.wait_ready()
        codes, pid = curl(["http://127.0.0.1:%d/echo" % nginx.port] * 2)
        check_eq(codes, [200, 200], "curl statuses")
        spans = agent.wait_for_spans(on_port(nginx.port), 2)
        check_eq(sorted((s["kind"], res(s).get("process.pid")) for s in spans),
                 [("CLIENT", pid)] * 2, "spans with --exe curl")
        others = agent.snapshot(lambda s: res(s).get("process.executable.name") != "curl")
        check_eq(len(others), 0, "spans of processes that are not curl")
        agent.stop_and_check()


@test
def unreachable_otlp_endpoint_keeps_running():
    lib.require_agent()
    dead = "http://127.0.0.1:%d" % free_port()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": dead, "OTEL_BSP_SCHEDULE_DELAY": "200",
           "OTEL_EXPORTER_OTLP_TIMEOUT": "1000"}
    with Nginx() as nginx, Agent(args=["--port", str(nginx.port)], env=env) as agent:
        agent.wait_ready()
        base = "http://127.0.0.1:%d" % nginx.port
        for round_no in (1, 2):
            codes, _ = curl([base + "/echo"] * 3)
            check_eq(codes, [200] * 3, "curl statuses")
            spans = agent.wait_for_spans(on_port(nginx.port, "SERVER"), 3 * round_no, settle=0)
            check_eq(len(spans), 3 * round_no, "SERVER spans printed, round %d" % round_no)
            time.sleep(2)  # several failed exports
            check(agent.proc.poll() is None, "agent exited (%r) with its OTLP endpoint down"
                  % agent.proc.returncode)
        agent.stop_and_check()


@test
def own_otlp_traffic_is_not_traced():
    otlp = lib.otlp_support()
    with otlp.Receiver() as rcv, Nginx() as nginx:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_BSP_SCHEDULE_DELAY": "200"}
        lib.require_agent()
        with Agent(env=env) as agent:  # traces everything, itself included if it were wrong
            agent.wait_ready()
            for _ in range(4):
                codes, _ = curl(["http://127.0.0.1:%d/echo" % nginx.port] * 2)
                check_eq(codes, [200, 200], "curl statuses")
                time.sleep(0.5)
            agent.wait_for_spans(on_port(nginx.port, "SERVER"), 8, settle=0)
            deadline = time.monotonic() + 10
            while len(rcv.trace_posts()) < 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            check(len(rcv.trace_posts()) >= 2, "receiver got %d trace posts, want >= 2"
                  % len(rcv.trace_posts()))
            time.sleep(1.5)  # spans of those posts, were they traced, would be out by now
            to_receiver = agent.snapshot(on_port(rcv.port))
            check_eq([(s["kind"], res(s).get("service.name"), attrs(s).get("url.path"))
                      for s in to_receiver], [], "spans of the agent's OTLP posts (JSON)")
            own = agent.snapshot(lambda s: res(s).get("process.pid") == agent.pid)
            check_eq(len(own), 0, "spans of the agent's own process")
            exported = otlp.all_spans(rcv)
            check(any(on_port(nginx.port)(s) for s in exported),
                  "no nginx spans decoded from the receiver")
            leaked = [s for s in exported if s["attributes"].get("server.port") == rcv.port
                      or s["resource"].get("process.pid") == agent.pid]
            check_eq(len(leaked), 0, "exported spans of the agent's own OTLP traffic")
            agent.stop_and_check()


@test
def sigterm_flushes_pending_spans():
    otlp = lib.otlp_support()
    with otlp.Receiver() as rcv, Nginx() as nginx:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.url, "OTEL_BSP_SCHEDULE_DELAY": "60000"}
        lib.require_agent()
        with Agent(args=["--port", str(nginx.port)], env=env) as agent:
            agent.wait_ready()
            codes, _ = curl(["http://127.0.0.1:%d/echo" % nginx.port] * 4
                            + ["http://127.0.0.1:%d/fail" % nginx.port])
            check_eq(codes, [200] * 4 + [500], "curl statuses")
            printed = agent.wait_for_spans(on_port(nginx.port), 10)
            check_eq(len(printed), 10, "spans printed (5 SERVER + 5 CLIENT)")
            check_eq(len(rcv.trace_posts()), 0, "trace posts before SIGTERM with a 60 s delay")
            agent.stop_and_check()
        exported = otlp.all_spans(rcv)
        check_eq(sorted(s["span_id"] for s in exported), sorted(s["span_id"] for s in printed),
                 "span ids at the receiver after SIGTERM")


if __name__ == "__main__":
    sys.exit(lib.run_tests())
