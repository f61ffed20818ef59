#!/usr/bin/env python3
"""bench_ab.py — an A/B of agent binaries (or flags) on section 1's workload, for one change.

    scripts/bench_ab.py ROUNDS LABEL=BINARY[,FLAG,...] [LABEL=BINARY[,FLAG,...] ...]

wrk -t1 -c32 -d5s against nginx (bench_run.py's Nginx) once per variant per round, the
variants' order reversed every other round (a,b,b,a,...) so that a slow stretch of this shared
VM does not land on one variant. BINARY "off" runs wrk with no agent. Each run starts the agent
afresh (`--port NGINX_PORT --no-print`, Prometheus on) and reports, per request: the agent
process's CPU (utime+stime), its BPF programs' run time (run_time_ns, kernel.bpf_stats_enabled)
and, per program, ns per run and runs per request. Medians over the rounds at the end.
Used for the before/after figures of bench/RESULTS.md's "A/B" sections: one change at a time,
both binaries in one run (the machine's speed drifts by tens of percent over an hour).
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_run as b  # noqa: E402


def run_variant(nginx, binary, extra, seconds):
    if binary == "off":
        return {"n": b.wrk(nginx.url, seconds)["requests"], "agent": 0.0, "bpf": 0.0, "per": {}}
    b.AGENT = binary
    agent = b.Agent(["--port", str(nginx.port)] + extra, name="agent (A/B)")
    try:
        time.sleep(1)
        cpu0, prog0 = b.cpu_seconds(agent.pid), agent.bpf_stats_by_prog()
        n = b.wrk(nginx.url, seconds)["requests"]
        time.sleep(0.5)  # the ring's backlog
        cpu1, prog1 = b.cpu_seconds(agent.pid), agent.bpf_stats_by_prog()
    finally:
        agent.stop()
        agent.close()
    per = {}
    bpf_ns = 0
    for name, (ns, cnt) in prog1.items():
        dns, dcnt = ns - prog0.get(name, (0, 0))[0], cnt - prog0.get(name, (0, 0))[1]
        bpf_ns += dns
        if dcnt > n / 100:
            per[name] = (dns / dcnt, dcnt / n)
    return {"n": n, "agent": (cpu1 - cpu0) * 1e6 / n, "bpf": bpf_ns / 1e3 / n, "per": per}


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    variants = []
    for arg in sys.argv[2:]:
        label, _, rest = arg.partition("=")
        parts = rest.split(",")
        variants.append((label, parts[0], parts[1:]))
    os.system("sysctl -qw kernel.bpf_stats_enabled=1")
    nginx = b.Nginx()
    rows = {label: [] for label, _, _ in variants}
    try:
        b.wrk(nginx.url, 1)  # warm-up
        for r in range(rounds):
            for label, binary, extra in (variants if r % 2 == 0 else variants[::-1]):
                row = run_variant(nginx, binary, extra, b.SECONDS)
                rows[label].append(row)
                print("%d %-8s %7d requests  agent %.2f  bpf %.2f us/request  %s" % (
                    r, label, row["n"], row["agent"], row["bpf"],
                    " ".join("%s %.0fns x%.2f" % (k, v[0], v[1])
                             for k, v in sorted(row["per"].items()))), flush=True)
    finally:
        nginx.close()
        b.cleanup()
    for label, _, _ in variants:
        rs = rows[label]
        med = statistics.median
        print("%-8s median: %d requests, agent %.2f + bpf %.2f = %.2f us/request" % (
            label, med(x["n"] for x in rs), med(x["agent"] for x in rs),
            med(x["bpf"] for x in rs), med(x["agent"] + x["bpf"] for x in rs)))
        for name in sorted(set().union(*[x["per"].keys() for x in rs])):
            vals = [x["per"][name] for x in rs if name in x["per"]]
            print("    %-24s %5.0f ns x %.2f per request" % (
                name, med(v[0] for v in vals), med(v[1] for v in vals)))


if __name__ == "__main__":
    main()
