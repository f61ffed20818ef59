#!/usr/bin/python3
"""bench_run.py — periscope's benchmarks (run by scripts/bench.sh, i.e. `make bench`).

Measures, on this machine, with real servers and load generators:
  1. wrk against nginx (small static file, keep-alive, fixed connections), the agent off, the
     empty-hook floor (empty programs on the agent's per-request hooks) and the agent on,
     interleaved: throughput ratio, p50/p99 latency, the agent's CPU per request (user+system time
     of the process, plus the run time of its BPF programs from `bpftool prog show`, which needs
     kernel.bpf_stats_enabled=1), its RSS and the events it dropped; and redis-server's own CPU
     under a fixed-rate pipelined client, the agent off and on.
  2. the pipeline without the kernel: `periscope record` while wrk runs, then `periscope replay
     --repeat N` on one core; heap allocations per span (valgrind memcheck) and the top costs
     (valgrind callgrind).
  3. the agent's RSS idle, under load and with many idle open connections.
  4. soak: wrk -t1 -c4 against nginx for BENCH_SOAK_SECONDS with the agent on, the agent's RSS
     sampled every 10 s (the series and its growth after the first 20 s).
  6. bystanders: what the agent costs a process it does not trace (cheap syscalls in a loop, the
     agent off, an empty BPF program on one syscall tracepoint, the agent on), interleaved.
Writes a Markdown report (default bench/RESULTS.md). Python 3 standard library only.

Knobs (environment): BENCH_PAIRS (5), BENCH_SECONDS (5), BENCH_CONNS (32), BENCH_REDIS_PAIRS (3),
BENCH_REDIS_SECONDS (8), BENCH_REDIS_RATE (10000), BENCH_REPLAY_REPEAT (4), BENCH_IDLE_CONNS
("20000,100000"), BENCH_SOAK_SECONDS (600: ten minutes; 120 for a quicker run), BENCH_BYSTANDER_ROUNDS
(7), BENCH_BYSTANDER_ITERS (200000), BENCH_BIN_DIR (build/bench: the bystander helpers `make bench`
builds), BENCH_CHURN_N (2000 runs of each exec-churn loop), BENCH_CHURN_PAIRS (3), BENCH_SKIP (comma list
of: wrk, redis, grpc, replay, valgrind, memory, soak, logs, gotls, node, python, bystander, churn,
rss).
BENCH_NODE_PAIRS (3): rounds of the Node.js and Python sections (off / on without the runtime's
probes / on).
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
AGENT = os.environ.get("PERISCOPE_BIN") or os.path.join(REPO, "build", "periscope")
PY = "/usr/bin/python3"
LOAD = os.path.join(HERE, "bench_load.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    return int(os.environ.get(name, default))


PAIRS = env_int("BENCH_PAIRS", 5)
SECONDS = env_int("BENCH_SECONDS", 5)
CONNS = env_int("BENCH_CONNS", 32)
REDIS_PAIRS = env_int("BENCH_REDIS_PAIRS", 3)
REDIS_SECONDS = env_int("BENCH_REDIS_SECONDS", 8)
REDIS_RATE = env_int("BENCH_REDIS_RATE", 10000)
REPLAY_REPEAT = env_int("BENCH_REPLAY_REPEAT", 4)
SOAK_SECONDS = env_int("BENCH_SOAK_SECONDS", 600)
SOAK_SAMPLE = 10  # seconds between two RSS samples
IDLE_CONNS = [int(x) for x in os.environ.get("BENCH_IDLE_CONNS", "20000,100000").split(",") if x]
SKIP = set(x for x in os.environ.get("BENCH_SKIP", "").split(",") if x)
BYSTANDER_ROUNDS = env_int("BENCH_BYSTANDER_ROUNDS", 7)
BYSTANDER_ITERS = env_int("BENCH_BYSTANDER_ITERS", 200000)
BIN_DIR = os.environ.get("BENCH_BIN_DIR") or os.path.join(REPO, "build", "bench")

_procs = []  # everything we started, killed at exit


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc=None, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited (%d) before listening on %d"
                               % (proc.returncode, port))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listens on 127.0.0.1:%d" % port)


def spawn(argv, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    p = subprocess.Popen(argv, start_new_session=True, **kw)
    _procs.append(p)
    return p


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    if p in _procs:
        _procs.remove(p)
    return p.returncode


def cleanup():
    for p in list(_procs):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    del _procs[:]


def cpu_seconds(pid):
    """utime+stime of every thread of pid, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(CLK_TCK)


def cpu_seconds_exact(pid):
    """On-CPU time of pid's live threads in seconds, from /proc/PID/task/TID/schedstat (ns;
    utime+stime come in 10 ms ticks, too coarse for a few ms of work); /proc/PID/stat's when the
    kernel keeps no schedstat."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return cpu_seconds(pid)
    return total / 1e9


def mem_kb(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---- the agent

def prog_ids_of(pid):
    """The ids of the BPF programs process pid holds (its /proc/PID/fdinfo)."""
    ids = set()
    fdinfo = "/proc/%d/fdinfo" % pid
    for fd in os.listdir(fdinfo):
        try:
            with open(os.path.join(fdinfo, fd)) as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        ids.add(int(line.split()[1]))
        except OSError:
            pass
    return ids


def bpf_stats_of(ids):
    """{program name: (run_time_ns, run_cnt)} of the BPF programs with these ids, summed by
    name."""
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, check=True)
    by = {}
    for p in json.loads(out.stdout):
        if p.get("id") in ids:
            ns, cnt = by.get(p.get("name", "?"), (0, 0))
            by[p.get("name", "?")] = (ns + p.get("run_time_ns", 0), cnt + p.get("run_cnt", 0))
    return by


class Agent:
    def __init__(self, args, name="agent", mode=()):
        self.dir = tempfile.mkdtemp(prefix="periscope-bench-")
        self.prom = None
        argv = [AGENT] + list(mode) + ["--no-print"]
        if "--no-prometheus" not in args:
            self.prom = free_port()
            argv += ["--prometheus", "127.0.0.1:%d" % self.prom]
        argv += list(args)
        self.err_path = os.path.join(self.dir, "stderr.log")
        self._err = open(self.err_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        self.proc = spawn(argv, stdout=subprocess.DEVNULL, stderr=self._err, env=env)
        self.name = name
        self.wait_ready()
        self.prog_ids = self._prog_ids()

    @property
    def pid(self):
        return self.proc.pid

    def records(self):
        out = []
        with open(self.err_path, "rb") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(r.get("msg") == "ready" for r in self.records()):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("agent not ready: %s" % open(self.err_path, errors="replace").read())

    def _prog_ids(self):
        return prog_ids_of(self.pid)

    def bpf_stats(self):
        """(run_time_ns, run_cnt) summed over the agent's BPF programs."""
        ns = cnt = 0
        for pns, pcnt in self.bpf_stats_by_prog().values():
            ns += pns
            cnt += pcnt
        return ns, cnt

    def bpf_stats_by_prog(self):
        """{program name: (run_time_ns, run_cnt)} of the agent's BPF programs (summed by name:
        one program attached to several library files is one name)."""
        return bpf_stats_of(self.prog_ids)

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.prom, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    def metric_sum(self, name, exclude=()):
        return sum(v for k, v in self.metrics().items()
                   if (k == name or k.startswith(name + "{"))
                   and not any(e in k for e in exclude))

    def dropped(self):
        """Events lost (every reason but "truncated", a capped payload, not a loss)."""
        return self.metric_sum("periscope_events_dropped_total", exclude=('reason="truncated"',))

    def drops_by_reason(self):
        out = {}
        for k, v in self.metrics().items():
            m = re.match(r'periscope_events_dropped_total\{.*reason="(\w+)"', k)
            if m and v:
                out[m.group(1)] = int(v)
        return out

    def stop(self):
        rc = stop(self.proc)
        self._err.close()
        if rc != 0:
            log("WARNING: %s exited with status %s" % (self.name, rc))
        return rc

    def close(self):
        if self.proc.poll() is None:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- servers

NGINX_CONF = """user root;
worker_processes {workers};
worker_rlimit_nofile {nofile};
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections {wconns}; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    default_type text/html;
    server {{
        listen 127.0.0.1:{port} backlog=4096{reuseport};
        root {dir}/html;
    }}
}}
"""

INDEX = b"<html><body>periscope benchmark: a small static file.</body></html>\n"


def nofile_limit():
    import resource
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


class Nginx:
    """nginx as root on a free port serving /index.html. One worker by default; many idle
    connections need several workers (each is bound by the fd limit), spread with reuseport."""

    def __init__(self, workers=1, wconns=4096):
        self.dir = tempfile.mkdtemp(prefix="periscope-bench-nginx-")
        os.makedirs(os.path.join(self.dir, "html"))
        os.makedirs(os.path.join(self.dir, "tmp"))
        with open(os.path.join(self.dir, "html", "index.html"), "wb") as f:
            f.write(INDEX)
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, port=self.port, workers=workers,
                                      wconns=wconns, nofile=nofile_limit(),
                                      reuseport=" reuseport" if workers > 1 else ""))
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = spawn([nginx, "-p", self.dir, "-c", conf, "-e",
                           os.path.join(self.dir, "error.log")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.proc)
        self.url = "http://127.0.0.1:%d/index.html" % self.port

    def close(self):
        stop(self.proc, signal.SIGQUIT)
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="periscope-bench-redis-")
        self.port = free_port()
        self.proc = spawn(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                           "--save", "", "--appendonly", "no", "--dir", self.dir,
                           "--daemonize", "no", "--logfile", ""],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.proc)

    def commandstats(self):
        out = subprocess.run(["redis-cli", "-p", str(self.port), "INFO", "commandstats"],
                             capture_output=True, text=True, check=True).stdout
        calls = {}
        for m in re.finditer(r"cmdstat_(\w+):calls=(\d+)", out):
            calls[m.group(1)] = int(m.group(2))
        return calls

    def close(self):
        stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- wrk

def _to_us(text):
    m = re.match(r"([\d.]+)(us|ms|s)$", text)
    v = float(m.group(1))
    return v * {"us": 1, "ms": 1e3, "s": 1e6}[m.group(2)]


def wrk(url, seconds, conns=CONNS, threads=1):
    out = subprocess.run(["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % seconds,
                          "--latency", url], capture_output=True, text=True, check=True).stdout
    r = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
         "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    for pct in ("50", "99"):
        r["p" + pct] = _to_us(re.search(r"\s%s%%\s+(\S+)" % pct, out).group(1))
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(errs.group(1)) if errs else 0
    sock = re.search(r"Socket errors: (.*)", out)
    r["socket_errors"] = sock.group(1) if sock else ""
    if r["non2xx"]:
        raise RuntimeError("wrk got %d non-2xx answers from %s:\n%s" % (r["non2xx"], url, out))
    return r


# Section 1's order of modes, rotated per round so no mode keeps one place in it.
WRK_ORDERS = (("off", "floor", "on"), ("on", "off", "floor"), ("floor", "on", "off"))


def wrk_floor(nginx):
    """wrk with only the floor's empty programs attached (EmptyHook "agent"), their BPF run time."""
    hook = EmptyHook("agent")
    try:
        time.sleep(0.5)
        prog0 = bpf_stats_of(hook.prog_ids)
        r = wrk(nginx.url, SECONDS)
        prog1 = bpf_stats_of(hook.prog_ids)
    finally:
        hook.close()
    progs = {k: (v[0] - prog0.get(k, (0, 0))[0], v[1] - prog0.get(k, (0, 0))[1])
             for k, v in prog1.items()}
    r.update(mode="floor", bpf_ns=sum(v[0] for v in progs.values()),
             bpf_runs=sum(v[1] for v in progs.values()), bpf_progs=progs)
    return r


def bench_wrk(nginx, results):
    floor = os.access(os.path.join(BIN_DIR, "empty_hook"), os.X_OK)
    log("1. wrk against nginx: %d interleaved rounds (off, %son) of %d s, %d connections"
        % (PAIRS, "the empty-hook floor, " if floor else "", SECONDS, CONNS))
    wrk(nginx.url, 1)  # warm-up
    runs = []
    for i in range(PAIRS):
        order = WRK_ORDERS[i % 3] if floor else (("off", "on") if i % 2 == 0 else ("on", "off"))
        for mode in (m for m in order if floor or m != "floor"):
            if mode == "off":
                r = wrk(nginx.url, SECONDS)
                r["mode"] = "off"
            elif mode == "floor":
                r = wrk_floor(nginx)
            else:
                agent = Agent(["--port", str(nginx.port)], name="agent (wrk)")
                try:
                    time.sleep(0.5)
                    cpu0, prog0, drop0 = cpu_seconds(agent.pid), agent.bpf_stats_by_prog(), \
                        agent.dropped()
                    spans0 = agent.metric_sum("periscope_spans_created_total")
                    r = wrk(nginx.url, SECONDS)
                    mem = mem_kb(agent.pid)
                    cpu1, prog1 = cpu_seconds(agent.pid), agent.bpf_stats_by_prog()
                    progs = {k: (v[0] - prog0.get(k, (0, 0))[0], v[1] - prog0.get(k, (0, 0))[1])
                             for k, v in prog1.items()}
                    bns, bcnt = sum(v[0] for v in progs.values()), \
                        sum(v[1] for v in progs.values())
                    time.sleep(0.5)  # let the agent drain its ring buffer
                    cpu2 = cpu_seconds(agent.pid)
                    r.update(mode="on", agent_cpu_s=cpu2 - cpu0, agent_cpu_during_s=cpu1 - cpu0,
                             bpf_ns=bns, bpf_runs=bcnt, bpf_progs=progs,
                             dropped=agent.dropped() - drop0,
                             spans=int(agent.metric_sum("periscope_spans_created_total") - spans0),
                             rss_kb=mem["VmRSS"], hwm_kb=mem["VmHWM"], nprogs=len(agent.prog_ids))
                finally:
                    agent.stop()
                    agent.close()
            runs.append(r)
            log("   %-5s %8.0f req/s  p50 %7.0f us  p99 %7.0f us%s" % (
                r["mode"], r["rps"], r["p50"], r["p99"],
                "" if r["mode"] == "off" else
                "  empty programs %.3f s, %d runs" % (r["bpf_ns"] / 1e9, r["bpf_runs"])
                if r["mode"] == "floor" else
                "  agent %.2f s CPU, BPF %.2f s, %d spans, dropped %d, RSS %d kB" % (
                    r["agent_cpu_s"], r["bpf_ns"] / 1e9, r["spans"], r["dropped"], r["rss_kb"])))
    results["wrk"] = runs


def bench_redis(results):
    log("1b. redis-server CPU under a %d ops/s pipelined client: %d off/on pairs of %d s"
        % (REDIS_RATE, REDIS_PAIRS, REDIS_SECONDS))
    redis = Redis()
    runs = []
    try:
        for i in range(REDIS_PAIRS):
            for mode in (("off", "on") if i % 2 == 0 else ("on", "off")):
                agent = Agent(["--port", str(redis.port)], name="agent (redis)") \
                    if mode == "on" else None
                try:
                    stats0 = redis.commandstats()  # (redis-cli INFO is traced too: settle)
                    time.sleep(0.5)
                    spans0 = agent.metric_sum("periscope_spans_created_total") if agent else 0
                    cpu0 = cpu_seconds(redis.proc.pid)
                    acpu0 = cpu_seconds(agent.pid) if agent else 0
                    out = subprocess.run([PY, LOAD, "redis", str(redis.port), str(REDIS_SECONDS),
                                          str(REDIS_RATE)], capture_output=True, text=True,
                                         check=True).stdout
                    cpu1 = cpu_seconds(redis.proc.pid)
                    time.sleep(0.5)
                    client = json.loads(out.strip().splitlines()[-1])
                    spans1 = agent.metric_sum("periscope_spans_created_total") if agent else 0
                    stats1 = redis.commandstats()
                    calls = sum(stats1.get(c, 0) - stats0.get(c, 0) for c in ("set", "get"))
                    r = {"mode": mode, "ops": client["ops"], "seconds": client["seconds"],
                         "errors": client["errors"], "server_calls": calls,
                         "redis_cpu_s": cpu1 - cpu0}
                    if agent:
                        r["agent_cpu_s"] = cpu_seconds(agent.pid) - acpu0
                        r["spans"] = int(spans1 - spans0)
                        r["dropped"] = agent.dropped()
                finally:
                    if agent:
                        agent.stop()
                        agent.close()
                runs.append(r)
                log("   %-3s %d ops in %.1f s (redis counted %d), redis CPU %.2f s%s" % (
                    mode, r["ops"], r["seconds"], r["server_calls"], r["redis_cpu_s"],
                    "" if mode == "off" else ", agent CPU %.2f s, %d spans"
                    % (r["agent_cpu_s"], r["spans"])))
    finally:
        redis.close()
    results["redis"] = runs


# ---- gRPC

GRPC_APP = os.path.join(REPO, "tests", "e2e", "apps", "python", "grpc_app.py")
GRPC_CALLS = env_int("BENCH_GRPC_CALLS", 5000)


def bench_grpc(results):
    """Unary calls on one grpcio channel (generic handler, raw bytes), agent off and on: client
    time per call, agent CPU per call (the agent sees both ends: two spans per call)."""
    log("1c. gRPC: %d unary calls on one grpcio channel, agent off / on" % GRPC_CALLS)
    port = free_port()
    logf = tempfile.mktemp(prefix="periscope-bench-grpc-")
    srv = spawn([PY, GRPC_APP, "server", str(port), logf], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
    runs = []
    try:
        wait_listening(port, proc=srv)
        for mode in ("off", "on", "off", "on"):
            agent = Agent(["--port", str(port)], name="agent (grpc)") if mode == "on" else None
            try:
                acpu0 = cpu_seconds(agent.pid) if agent else 0
                scpu0 = cpu_seconds(srv.pid)
                out = subprocess.run([PY, GRPC_APP, "loop", str(port), str(GRPC_CALLS)],
                                     capture_output=True, text=True, check=True).stdout
                time.sleep(1.0)
                r = json.loads(out.strip().splitlines()[-1])
                r.update(mode=mode, server_cpu_s=cpu_seconds(srv.pid) - scpu0)
                if agent:
                    r["agent_cpu_s"] = cpu_seconds(agent.pid) - acpu0
                    r["spans"] = int(agent.metric_sum("periscope_spans_created_total"))
            finally:
                if agent:
                    agent.stop()
                    agent.close()
            runs.append(r)
            log("   %-3s %d calls in %.2f s (%.0f µs/call), server CPU %.2f s%s" % (
                mode, r["calls"], r["seconds"], r["seconds"] / r["calls"] * 1e6, r["server_cpu_s"],
                "" if mode == "off" else ", agent CPU %.3f s (%.1f µs/call), %d spans"
                % (r["agent_cpu_s"], r["agent_cpu_s"] / r["calls"] * 1e6, r["spans"])))
    finally:
        stop(srv)
    results["grpc"] = runs


def grpc_report(runs):
    out = ["", "## gRPC (grpcio, one channel, unary calls)", "",
           "| agent | calls | µs per call (client) | server CPU s | agent CPU s | agent CPU µs "
           "per call | spans |", "|---|---|---|---|---|---|---|"]
    for r in runs:
        on = r["mode"] == "on"
        out.append("| %s | %d | %.0f | %.2f | %s | %s | %s |" % (
            r["mode"], r["calls"], r["seconds"] / r["calls"] * 1e6, r["server_cpu_s"],
            "%.3f" % r["agent_cpu_s"] if on else "-",
            "%.1f" % (r["agent_cpu_s"] / r["calls"] * 1e6) if on else "-",
            r["spans"] if on else "-"))
    return out


# ---- Go HTTPS (crypto/tls uprobes)

GOTLS_PAIRS = env_int("BENCH_GOTLS_PAIRS", 3)
GOTLS_REQUESTS = env_int("BENCH_GOTLS_REQUESTS", 5000)


def other_agents_hits(own=()):
    """{prog id: run_cnt} of other periscope agents' programs loaded now (another agent on
    this host probes these Go programs too: its uprobe hits would be counted as ours)."""
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, check=True)
    return {p["id"]: p.get("run_cnt", 0) for p in json.loads(out.stdout)
            if p.get("id") not in own and p.get("name") in ("exit_read", "go_tls_ret_multi",
                                                            "go_tls_ret", "go_round_trip")}


def wait_no_other_agent(timeout=180):
    deadline = time.monotonic() + timeout
    while other_agents_hits() and time.monotonic() < deadline:
        time.sleep(0.5)


def build_gotls(workdir):
    """The e2e Go HTTPS app (tests/e2e/apps/gotls), -s -w, built with the local toolchain."""
    out = os.path.join(workdir, "gotls")
    env = dict(os.environ, GOCACHE=os.path.join(workdir, "gocache"), HOME=workdir,
               GOPROXY="off", GOFLAGS="", CGO_ENABLED="0", GOTOOLCHAIN="local")
    subprocess.run(["go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "."], check=True,
                   cwd=os.path.join(REPO, "tests", "e2e", "apps", "gotls"), env=env)
    cert, key = os.path.join(workdir, "cert.pem"), os.path.join(workdir, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=localhost"], check=True,
                   capture_output=True)
    return out, cert, key


def bench_gotls(results, workdir):
    log("5. Go HTTPS: %d requests per run (gotls client, 4 goroutines, keep-alive) against a Go"
        " HTTPS server, %d rounds of off / on / on --no-tls" % (GOTLS_REQUESTS, GOTLS_PAIRS))
    binary, cert, key = build_gotls(workdir)
    runs = []
    for i in range(GOTLS_PAIRS):
        for mode in (("off", "on", "no-tls") if i % 2 == 0 else ("no-tls", "on", "off")):
            port = free_port()
            wait_no_other_agent()
            agent = None
            if mode != "off":
                agent = Agent(["--port", str(port)] + (["--no-tls"] if mode == "no-tls" else []),
                              name="agent (gotls)")
            srv = spawn([binary, "server", "-addr", "127.0.0.1:%d" % port, "-cert", cert,
                         "-key", key], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_listening(port, srv)
                cli = subprocess.Popen([binary, "client", "-url", "https://127.0.0.1:%d" % port,
                                        "-n", str(GOTLS_REQUESTS), "-c", "4", "-wait"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                cli.stdout.readline()  # "waiting": attached by now when the agent is on
                attach_ms = None
                if agent:
                    deadline = time.monotonic() + 10
                    while attach_ms is None and time.monotonic() < deadline:
                        for r in agent.records():
                            if "probes attached" in str(r.get("msg")) and \
                                    r.get("path") == binary:
                                attach_ms = float(r.get("parse_attach_ms", "nan"))
                        time.sleep(0.02)
                    spans0 = agent.metric_sum("periscope_spans_created_total")
                    acpu0 = cpu_seconds(agent.pid)
                    bpf0 = agent.bpf_stats()
                scpu0 = cpu_seconds(srv.pid)
                own = agent.prog_ids if agent else set()
                others0 = other_agents_hits(own)
                t0 = time.monotonic()
                cli.stdin.write("go\n")
                cli.stdin.close()
                out = cli.stdout.read()
                _, status, ru = os.wait4(cli.pid, 0)  # the client's own user and system time
                cli.returncode = os.waitstatus_to_exitcode(status)
                took = time.monotonic() - t0
                r = {"mode": mode, "requests": GOTLS_REQUESTS, "seconds": took,
                     "client": out.strip().splitlines()[-1],
                     "client_user_s": ru.ru_utime, "client_sys_s": ru.ru_stime,
                     "server_cpu_s": cpu_seconds(srv.pid) - scpu0}
                others1 = other_agents_hits(own)
                # another agent's programs ran during the run (or came or went): not clean
                r["others"] = set(others0) != set(others1) or any(
                    others1[i] != others0[i] for i in others1)
                if agent:
                    time.sleep(1.0)
                    r["agent_cpu_s"] = cpu_seconds(agent.pid) - acpu0
                    bpf1 = agent.bpf_stats()
                    r["bpf_ns"] = bpf1[0] - bpf0[0]
                    r["spans"] = int(agent.metric_sum("periscope_spans_created_total") - spans0)
                    r["attach_ms"] = attach_ms
                    r["dropped"] = agent.dropped()
            finally:
                stop(srv)
                if agent:
                    agent.stop()
                    agent.close()
            runs.append(r)
            log("   %-6s %s in %.2f s; client user %.2f sys %.2f s; server CPU %.2f s%s%s" % (
                mode, r["client"], r["seconds"], r["client_user_s"], r["client_sys_s"],
                r["server_cpu_s"], " (another agent ran)" if r["others"] else "",
                "" if mode == "off" else "; agent CPU %.2f s (%.1f us/call), BPF %.1f us/call,"
                " %d spans, attach %.1f ms" % (
                    r["agent_cpu_s"], r["agent_cpu_s"] * 1e6 / r["requests"],
                    r["bpf_ns"] / 1e3 / r["requests"], r["spans"], r["attach_ms"] or -1)))
    results["gotls"] = runs


def report_gotls(runs, add):
    clean = [r for r in runs if not r["others"]]
    # medians over the runs no other agent disturbed, when each mode has one
    src = clean if all(any(r["mode"] == m for r in clean) for m in ("off", "on", "no-tls")) \
        else runs
    by = {m: [r for r in src if r["mode"] == m] for m in ("off", "on", "no-tls")}
    n = runs[0]["requests"]
    add("## 5. Go HTTPS (crypto/tls uprobes), agent off vs on vs on --no-tls")
    add("")
    add("tests/e2e/apps/gotls built `-ldflags='-s -w'`: a Go net/http HTTPS server (HTTP/1.1) and"
        " its client making %d GETs from 4 goroutines on keep-alive connections, every response"
        " checked. Agent on: `--port PORT --no-print --prometheus …` (and `--no-tls`), started"
        " before both (they are attached at exec; the client waits for the attach). Client user"
        " and system time from wait4(). Each run waits until no other periscope agent is loaded"
        " (its probes would hit these programs too); a run during which one was (another"
        " engineer's test) is marked and left out of the medians." % n)
    add("")
    add("| run | mode | client result | seconds | client user s | client sys s | server CPU s |"
        " agent CPU s | agent CPU per call | BPF per call | spans | parse+attach |")
    add("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs):
        row = "| %d | %s%s | %s | %.2f | %.2f | %.2f | %.2f |" % (
            i + 1, r["mode"], " (another agent ran)" if r["others"] else "",
            r["client"], r["seconds"], r["client_user_s"], r["client_sys_s"],
            r["server_cpu_s"])
        if r["mode"] == "off":
            add(row + " | | | | |")
        else:
            add(row + " %.2f | %.1f µs | %.1f µs | %d | %.1f ms |" % (
                r["agent_cpu_s"], r["agent_cpu_s"] * 1e6 / r["requests"],
                r["bpf_ns"] / 1e3 / r["requests"], r["spans"], r["attach_ms"] or -1))
    add("")
    med = lambda m, f: median([f(r) for r in by[m]])  # noqa: E731
    add("Medians over %d runs." % len(src))
    add("")
    add("**Medians: agent CPU %.1f µs per Go HTTPS call** (client and server span each), BPF"
        " %.1f µs per call (both processes' probes). Off / on / on --no-tls: run time %.2f / %.2f"
        " / %.2f s; client system time %.2f / %.2f / %.2f s (%.0f / %.0f µs per call more than"
        " off); server CPU %.2f / %.2f / %.2f s." % (
            med("on", lambda r: r["agent_cpu_s"] * 1e6 / r["requests"]),
            med("on", lambda r: r["bpf_ns"] / 1e3 / r["requests"]),
            med("off", lambda r: r["seconds"]), med("on", lambda r: r["seconds"]),
            med("no-tls", lambda r: r["seconds"]),
            med("off", lambda r: r["client_sys_s"]), med("on", lambda r: r["client_sys_s"]),
            med("no-tls", lambda r: r["client_sys_s"]),
            (med("on", lambda r: r["client_sys_s"]) - med("off", lambda r: r["client_sys_s"]))
            * 1e6 / n,
            (med("no-tls", lambda r: r["client_sys_s"]) - med("off", lambda r: r["client_sys_s"]))
            * 1e6 / n,
            med("off", lambda r: r["server_cpu_s"]), med("on", lambda r: r["server_cpu_s"]),
            med("no-tls", lambda r: r["server_cpu_s"])))
    add("")


# ---- record / replay

def record(nginx, path, load):
    agent = Agent(["--port", str(nginx.port), "--no-prometheus"], name="agent (record)",
                  mode=("record", path))
    try:
        time.sleep(0.3)
        info = load()
        time.sleep(0.5)
    finally:
        agent.stop()
    stopped = [r for r in agent.records() if r.get("msg") == "stopped"]
    agent.close()
    return info, (stopped[-1] if stopped else {})


def replay(path, repeat, prefix=(), timeout=600, binary=None):
    argv = list(prefix) + [binary or AGENT, "replay", path, "--repeat", str(repeat), "--no-print",
                           "--no-prometheus"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    line = None
    for raw in p.stderr.splitlines():
        if raw.startswith("{"):
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            if rec.get("msg") == "replayed":
                line = rec
    if p.returncode != 0 or line is None:
        raise RuntimeError("replay failed (%d): %s" % (p.returncode, p.stderr[-2000:]))
    return line, p.stderr


def curl_requests(url, n):
    """n GETs on one keep-alive connection; returns the number answered 200."""
    argv = ["curl", "-s", "-w", "%{http_code}\\n"]
    for _ in range(n):
        argv += ["-o", "/dev/null", url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return sum(1 for c in out.split() if c == "200")


def bench_replay(nginx, results, workdir):
    log("2. record while wrk runs (3 s), then replay --repeat %d on one core" % REPLAY_REPEAT)
    big = os.path.join(workdir, "wrk.events")
    info, stopped = record(nginx, big, lambda: wrk(nginx.url, 3))
    cpu = str(max(0, os.cpu_count() - 1))
    reps = []
    for _ in range(3):
        line, _ = replay(big, REPLAY_REPEAT, prefix=("taskset", "-c", cpu))
        reps.append(line)
        log("   replayed %d events, %d spans in %.2f s: %.0f events/s, %.0f spans/s" % (
            line["events"], line["spans"], line["seconds"], line["events_per_second"],
            line["spans_per_second"]))
    one, _ = replay(big, 1)
    results["replay"] = {"wrk_requests": info["requests"], "recorded": stopped,
                         "file_bytes": os.path.getsize(big), "repeat": REPLAY_REPEAT, "runs": reps,
                         "spans_per_repeat": one["spans"], "events_per_repeat": one["events"],
                         "cpu": cpu}
    os.unlink(big)


def parse_heap_usage(text):
    m = re.search(r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated",
                  text)
    return tuple(int(x.replace(",", "")) for x in m.groups())


def bench_valgrind(nginx, results, workdir):
    if not shutil.which("valgrind"):
        log("2b. valgrind not installed: skipped")
        results["valgrind"] = None
        return
    n = 2000
    log("2b. valgrind: record %d curl requests, memcheck replay x1 and x5, callgrind x10" % n)
    small = os.path.join(workdir, "small.events")
    ok, _ = record(nginx, small, lambda: curl_requests(nginx.url, n))
    # valgrind 3.19 cannot read the DWARF 5 debug info clang writes: a copy without it (the
    # symbol table stays, so functions keep their names)
    binary = os.path.join(workdir, "periscope-nodebug")
    subprocess.run(["objcopy", "--strip-debug", AGENT, binary], check=True)
    heap = {}
    for rep in (1, 5):
        line, err = replay(small, rep, prefix=("valgrind", "--tool=memcheck", "--leak-check=no"),
                           binary=binary)
        heap[rep] = {"spans": line["spans"], "events": line["events"],
                     "allocs": parse_heap_usage(err)[0], "frees": parse_heap_usage(err)[1],
                     "bytes": parse_heap_usage(err)[2]}
        log("   memcheck x%d: %d spans, %d allocs, %d bytes" % (
            rep, line["spans"], heap[rep]["allocs"], heap[rep]["bytes"]))
    cg_out = os.path.join(workdir, "callgrind.out")
    line, _ = replay(small, 10, prefix=("valgrind", "--tool=callgrind",
                                       "--callgrind-out-file=" + cg_out), binary=binary)
    ann = subprocess.run(["callgrind_annotate", "--threshold=100", cg_out], capture_output=True,
                         text=True, check=True).stdout
    total = re.search(r"([\d,]+)\s+\(100\.0%\)\s+PROGRAM TOTALS", ann)
    top = []
    in_table = False
    for raw in ann.splitlines():
        if "file:function" in raw:
            in_table = True
            continue
        if in_table:
            m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+(.*)$", raw)
            if m:
                top.append((int(m.group(1).replace(",", "")), float(m.group(2)),
                            m.group(3).strip()))
            elif top and not raw.strip():
                break
    # who calls each of the top three (a libc function's cost is its callers')
    tree = subprocess.run(["callgrind_annotate", "--tree=caller", "--threshold=100", cg_out],
                          capture_output=True, text=True, check=True).stdout
    callers = {}
    block = []
    for raw in tree.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*([\d.]+)%\)\s+([<*])\s+(.*?)(?: \((\S+)x\))?"
                     r"(?: \[.*\])?$", raw)
        if not m:
            block = []
            continue
        if m.group(3) == "<":
            block.append((float(m.group(2)), m.group(4).split(":")[-1], m.group(5)))
        else:
            callers[m.group(4).split(" [")[0]] = sorted(block, reverse=True)[:4]
            block = []
    results["valgrind"] = {"requests": ok, "heap": heap, "callgrind_spans": line["spans"],
                           "callers": {fn: callers.get(fn.split(" [")[0], [])
                                       for _, _, fn in top[:3]},
                           "callgrind_total_ir": int(total.group(1).replace(",", ""))
                           if total else None, "top": top[:10]}
    for ir, pct, fn in top[:3]:
        log("   callgrind: %5.1f%% %s" % (pct, fn))
    os.unlink(small)


# ---- memory

def bench_memory(nginx, results):
    log("3. memory: agent RSS idle and with %s idle keep-alive connections" % IDLE_CONNS)
    mem = {}
    agent = Agent(["--port", str(nginx.port)], name="agent (idle)")
    try:
        time.sleep(3)
        mem["idle"] = mem_kb(agent.pid)
    finally:
        agent.stop()
        agent.close()
    mem["conns"] = []
    limit = nofile_limit()
    per_proc = min(20000, limit - 200)  # connections per holder process and per nginx worker
    mem["nofile"] = limit
    if not IDLE_CONNS:
        results["memory"] = mem
        return
    # each side of a connection needs a descriptor: several holders and several nginx workers
    workers = -(-max(IDLE_CONNS) * 3 // (2 * per_proc))  # 1.5x headroom: reuseport hashes
    many = Nginx(workers=workers, wconns=per_proc)
    try:
        for n in IDLE_CONNS:
            mem["conns"].append(hold_conns(many, n, per_proc, workers))
    finally:
        many.close()
    results["memory"] = mem


def hold_conns(nginx, n, per_proc, workers):
    agent = Agent(["--port", str(nginx.port)], name="agent (%d conns)" % n)
    holders = []
    try:
        before = mem_kb(agent.pid)["VmRSS"]
        nh = -(-n // per_proc)
        counts = [n // nh + (1 if i < n % nh else 0) for i in range(nh)]
        for i, c in enumerate(counts):
            holders.append(spawn([PY, LOAD, "hold", str(nginx.port), str(c), str(2 + i)],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE))
        infos = []
        for h in holders:
            first = h.stdout.readline()
            if not first:
                raise RuntimeError("a holder of %d connections failed: %s"
                                   % (n, h.stderr.read().decode()[-500:]))
            infos.append(json.loads(first))
        ok = sum(i["ok"] for i in infos)
        if ok != n:
            raise RuntimeError("only %d of %d held connections were answered 200" % (ok, n))
        time.sleep(2)
        tracked = agent.metric_sum("periscope_connections_tracked")
        during = mem_kb(agent.pid)
        for h in holders:
            h.stdin.close()
        for h in holders:
            h.wait(timeout=120)
            _procs.remove(h)
        time.sleep(2)
        after = mem_kb(agent.pid)["VmRSS"]
        r = {"n": n, "open": sum(i["open"] for i in infos), "ok": ok,
             "open_seconds": max(i["seconds"] for i in infos), "holders": nh,
             "workers": workers, "tracked": tracked, "rss_before_kb": before,
             "rss_kb": during["VmRSS"], "hwm_kb": during["VmHWM"], "rss_after_close_kb": after,
             "tracked_after_close": agent.metric_sum("periscope_connections_tracked"),
             "dropped": agent.dropped(), "drops": agent.drops_by_reason()}
        log("   %d connections (%d answered 200, opened in %.1f s by %d processes): tracked %d, "
            "RSS %d -> %d kB, %d kB after closing; drops %s" % (
                n, ok, r["open_seconds"], nh, tracked, before, r["rss_kb"], after, r["drops"]))
        return r
    finally:
        for h in holders:
            if h.poll() is None:
                stop(h, signal.SIGKILL)
        agent.stop()
        agent.close()


# ---- soak

def bench_soak(nginx, results):
    log("4. soak: wrk -t1 -c4 against nginx for %d s with the agent on, RSS every %d s"
        % (SOAK_SECONDS, SOAK_SAMPLE))
    agent = Agent(["--port", str(nginx.port)], name="agent (soak)")
    load = None
    try:
        time.sleep(0.5)
        spans0 = agent.metric_sum("periscope_spans_created_total")
        drop0 = agent.dropped()
        cpu0 = cpu_seconds(agent.pid)
        load = spawn(["wrk", "-t1", "-c4", "-d%ds" % SOAK_SECONDS, "--latency", nginx.url],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        t0 = time.monotonic()
        samples = [(0, mem_kb(agent.pid)["VmRSS"])]
        while True:
            t = samples[-1][0] + SOAK_SAMPLE
            if t > SOAK_SECONDS:
                break
            time.sleep(max(0.0, t0 + t - time.monotonic()))
            if agent.proc.poll() is not None:
                raise RuntimeError("the agent exited (%s) during the soak" % agent.proc.returncode)
            samples.append((t, mem_kb(agent.pid)["VmRSS"]))
            log("   t=%4d s  agent RSS %d kB" % (t, samples[-1][1]))
        out, err = load.communicate(timeout=SOAK_SECONDS + 60)
        _procs.remove(load)
        if load.returncode != 0:
            raise RuntimeError("wrk failed (%d): %s" % (load.returncode, err.decode()[-500:]))
        out = out.decode()
        time.sleep(0.5)
        mem = mem_kb(agent.pid)
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        base = [kb for t, kb in samples if t >= 20]
        r = {"seconds": SOAK_SECONDS, "samples": samples, "requests": requests,
             "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
             "spans": int(agent.metric_sum("periscope_spans_created_total") - spans0),
             "dropped": int(agent.dropped() - drop0), "drops": agent.drops_by_reason(),
             "agent_cpu_s": cpu_seconds(agent.pid) - cpu0, "hwm_kb": mem["VmHWM"],
             "base_kb": base[0] if base else None,
             "growth_kb": samples[-1][1] - base[0] if base else None}
        log("   %d requests (%.0f req/s), %d spans, dropped %d; RSS %d kB at 20 s, %d kB at the end"
            " (growth %s kB)" % (requests, r["rps"], r["spans"], r["dropped"],
                                 r["base_kb"] or -1, samples[-1][1], r["growth_kb"]))
    finally:
        if load is not None and load.poll() is None:
            stop(load, signal.SIGKILL)
        agent.stop()
        agent.close()
    results["soak"] = r


# ---- the report

# ---- 6. bystanders

BYSTANDER_KINDS = ("getpid", "devnull", "pipe", "epoll", "close")


class EmptyHook:
    """build/bench/empty_hook: empty BPF programs, held while it lives. set "write": one on
    sys_exit_write (section 6's floor); "agent": one on each hook the agent runs on per traced
    request (section 1's floor)."""

    def __init__(self, which="write"):
        self.proc = spawn([os.path.join(BIN_DIR, "empty_hook"),
                           os.path.join(BIN_DIR, "empty_hook.bpf.o"), which],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError("empty_hook did not attach")
        self.prog_ids = prog_ids_of(self.proc.pid)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def syscall_loop():
    out = subprocess.run([os.path.join(BIN_DIR, "syscall_loop"), str(BYSTANDER_ITERS)],
                         capture_output=True, text=True, check=True).stdout
    return {k: float(v) for k, v in (line.split() for line in out.splitlines())}


def bench_bystander(results):
    if not os.access(os.path.join(BIN_DIR, "syscall_loop"), os.X_OK):
        log("6. bystanders: %s/syscall_loop not built (make bench builds it): skipped" % BIN_DIR)
        return
    log("6. bystanders: %d rounds of off / empty hook / agent, %d calls of each kind"
        % (BYSTANDER_ROUNDS, BYSTANDER_ITERS))
    modes = ("off", "floor", "agent")
    runs = []
    for i in range(BYSTANDER_ROUNDS):
        for mode in modes[i % 3:] + modes[:i % 3]:
            holder = None
            try:
                if mode == "floor":
                    holder = EmptyHook()
                elif mode == "agent":
                    holder = Agent([], name="agent (bystander)")
                    time.sleep(0.5)
                    prog0 = holder.bpf_stats_by_prog()
                r = syscall_loop()
                if mode == "agent":
                    prog1 = holder.bpf_stats_by_prog()
                    r["bpf_progs"] = {k: (v[0] - prog0.get(k, (0, 0))[0],
                                          v[1] - prog0.get(k, (0, 0))[1])
                                      for k, v in prog1.items()}
            finally:
                if holder:
                    holder.close()
            r["mode"] = mode
            runs.append(r)
            log("   %-5s %s" % (mode, "  ".join("%s %.0f ns" % (k, r[k]) for k in BYSTANDER_KINDS)))
    results["bystander"] = runs


def bystander_section(runs):
    L = []
    add = L.append
    by = {m: [r for r in runs if r["mode"] == m] for m in ("off", "floor", "agent")}
    add("## 6. Bystanders: what the agent costs processes it does not trace")
    add("")
    add("bench/bystander/syscall_loop.c makes %d calls of each kind below, timed in its own thread"
        " CPU time (CLOCK_THREAD_CPUTIME_ID); %d rounds, each running it with the agent off, with"
        " the floor (bench/bystander/empty_hook.bpf.c: one empty BPF program on"
        " sys_exit_write, nothing else) and with the agent on (`periscope --no-print`, no"
        " filter: it traces every process), the order rotated each round. ns per call, medians"
        " of the rounds. Attaching any syscall tracepoint puts every syscall of every task on the"
        " tracing slow path (SYSCALL_WORK_SYSCALL_TRACEPOINT): `getpid` has no program of ours"
        " and shows that alone." % (BYSTANDER_ITERS, BYSTANDER_ROUNDS))
    add("")
    add("| call | off | floor (empty hook) | agent on | floor − off | agent − off | agent − floor |")
    add("|---|---|---|---|---|---|---|")
    what = {"getpid": "getpid (no program)", "devnull": "write 1 B to /dev/null",
            "pipe": "write/read 1 B on a pipe (per call)", "epoll": "epoll_wait, empty set, 0 ms",
            "close": "dup/close of a file's fd (per call)"}
    for k in BYSTANDER_KINDS:
        off, fl, ag = (median([r[k] for r in by[m]]) for m in ("off", "floor", "agent"))
        add("| %s | %.0f | %.0f | %.0f | %+.0f | %+.0f | %+.0f |" % (
            what[k], off, fl, ag, fl - off, ag - off, ag - fl))
    add("")
    names = sorted(set(n for r in by["agent"] for n in r.get("bpf_progs", {})))
    rows = []
    for n in names:
        cnt = median([r["bpf_progs"].get(n, (0, 0))[1] for r in by["agent"]])
        ns = [r["bpf_progs"][n][0] / float(r["bpf_progs"][n][1]) for r in by["agent"]
              if r["bpf_progs"].get(n, (0, 0))[1]]
        if cnt >= BYSTANDER_ITERS / 2:
            rows.append((n, cnt, median(ns)))
    if rows:
        add("The agent's programs that ran for the bystander's calls (run_cnt/run_time_ns deltas"
            " over the loop, medians; the machine's other processes add their own runs):")
        add("")
        add("| program | runs | mean ns per run |")
        add("|---|---|---|")
        for n, cnt, ns in rows:
            add("| %s | %d | %.0f |" % (n, cnt, ns))
        add("")
    add("Per round (ns per call: %s):" % " / ".join(BYSTANDER_KINDS))
    add("")
    for i, r in enumerate(runs):
        add("- %d %s: %s" % (i + 1, r["mode"], " / ".join("%.0f" % r[k] for k in BYSTANDER_KINDS)))
    return "\n".join(L)


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        memtotal = int(f.readline().split()[1])
    version = subprocess.run([AGENT, "--version"], capture_output=True, text=True).stdout.strip()
    def ver(argv):
        p = subprocess.run(argv, capture_output=True, text=True)
        return (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr) else "?"
    return {"host": platform.node(), "kernel": platform.release(), "cpu": model,
            "cpus": os.cpu_count(), "mem_gb": memtotal / 1048576.0,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "agent": version, "nginx": ver(["nginx", "-v"]), "wrk": ver(["wrk", "--version"]),
            "redis": ver(["redis-server", "--version"]), "loadavg": open("/proc/loadavg").read()
            .split()[:3], "bpf_stats": open("/proc/sys/kernel/bpf_stats_enabled").read().strip()}


def fn_name(fn):
    """callgrind_annotate's `file:function [object]` → `function (object basename)`."""
    m = re.match(r"(.*?)(?: \[(.*)\])?$", fn)
    name = m.group(1).rsplit(":", 1)[-1]
    obj = os.path.basename(m.group(2) or "")
    if obj.startswith("periscope"):
        obj = "periscope"
    return "%s (%s)" % (name, obj) if obj else name


def fmt_kb(kb):
    return "%.1f MB" % (kb / 1024.0)


def prog_table(on):
    """Where the BPF time of the wrk runs goes, per program (medians over the on runs)."""
    out = []
    names = sorted(set(k for r in on for k in r.get("bpf_progs", {})))
    rows = []
    for name in names:
        per_req = [r["bpf_progs"].get(name, (0, 0))[1] / float(r["requests"]) for r in on]
        mean_ns = [r["bpf_progs"][name][0] / float(r["bpf_progs"][name][1]) for r in on
                   if r["bpf_progs"].get(name, (0, 0))[1]]
        us_req = [r["bpf_progs"].get(name, (0, 0))[0] / 1e3 / r["requests"] for r in on]
        if median(per_req) >= 0.01:
            rows.append((median(us_req), name, median(per_req), median(mean_ns)))
    if not rows:
        return out
    out.append("Per BPF program (`run_cnt`/`run_time_ns` deltas of each program over a run, medians"
               " of the on runs; programs with fewer than 0.01 runs per request left out; a"
               " tail-call target's runs are counted in its caller's run time, not as runs of"
               " its own):")
    out.append("")
    out.append("| program | runs per request | mean ns per run | µs per request |")
    out.append("|---|---|---|---|")
    for us, name, per_req, ns in sorted(rows, reverse=True):
        out.append("| %s | %.2f | %.0f | %.2f |" % (name, per_req, ns, us))
    out.append("")
    return out


def summarize(results):
    out = []
    runs = results.get("wrk")
    if runs:
        off = [r for r in runs if r["mode"] == "off"]
        on = [r for r in runs if r["mode"] == "on"]
        ratio = median([r["rps"] for r in on]) / median([r["rps"] for r in off])
        tot = median([(r["agent_cpu_s"] * 1e6 + r["bpf_ns"] / 1e3) / r["requests"] for r in on])
        usr = median([r["agent_cpu_s"] * 1e6 / r["requests"] for r in on])
        floor = [r for r in runs if r["mode"] == "floor"]
        out.append("- wrk → nginx: throughput ratio on/off **%.2f** (target ≥ 0.95: %s%s); agent CPU"
                   " **%.1f µs per request** (%.1f µs in the agent process + %.1f µs in BPF"
                   " programs%s; target ≤ 2 µs: %s); %d events dropped." % (
                       ratio, "met" if ratio >= 0.95 else "not met",
                       "; the empty-hook floor's %.2f" % (median([r["rps"] for r in floor]) /
                                                          median([r["rps"] for r in off]))
                       if floor else "", tot, usr, tot - usr,
                       ", against %.2f µs for empty programs on the same hooks" % median(
                           [r["bpf_ns"] / 1e3 / r["requests"] for r in floor]) if floor else "",
                       "met" if tot <= 2 else "not met", sum(r["dropped"] for r in on)))
    runs = results.get("redis")
    if runs:
        off = [r for r in runs if r["mode"] == "off"]
        on = [r for r in runs if r["mode"] == "on"]
        out.append("- Redis at %d ops/s: redis-server CPU %.2f µs/op off, %.2f µs/op on; the agent"
                   " itself %.2f µs/op." % (
                       REDIS_RATE, median([r["redis_cpu_s"] * 1e6 / r["ops"] for r in off]),
                       median([r["redis_cpu_s"] * 1e6 / r["ops"] for r in on]),
                       median([r["agent_cpu_s"] * 1e6 / r["ops"] for r in on])))
    rp = results.get("replay")
    if rp:
        spr = rp["spans_per_repeat"] / float(rp["wrk_requests"]) if rp["wrk_requests"] else 2
        sp = median([r["spans_per_second"] for r in rp["runs"]])
        out.append("- Replay (user-space pipeline only, one core): **%.0f requests/s** (%.0f"
                   " spans/s)." % (sp / spr, sp))
    vg = results.get("valgrind")
    if vg:
        h1, h5 = vg["heap"][1], vg["heap"][5]
        out.append("- Heap: **%.2f allocations per span**; top self costs: %s." % (
            (h5["allocs"] - h1["allocs"]) / float(h5["spans"] - h1["spans"]),
            ", ".join("`%s` %.1f %%" % (fn_name(fn), pct) for _, pct, fn in vg["top"][:3])))
    mem = results.get("memory")
    if mem:
        parts = ["idle %s" % fmt_kb(mem["idle"]["VmRSS"])]
        if results.get("wrk"):
            parts.append("under load %s" % fmt_kb(max(r["rss_kb"] for r in results["wrk"]
                                                      if r["mode"] == "on")))
        for r in mem["conns"]:
            parts.append("%d idle connections %s (%s after they closed)" % (
                r["n"], fmt_kb(r["rss_kb"]), fmt_kb(r["rss_after_close_kb"])))
        out.append("- Agent RSS: %s." % "; ".join(parts))
    sk = results.get("soak")
    if sk and sk["growth_kb"] is not None:
        out.append("- Soak (%d s of wrk -c4): agent RSS %s after 20 s, %s at the end: growth"
                   " %+.1f MB." % (sk["seconds"], fmt_kb(sk["base_kb"]),
                                   fmt_kb(sk["samples"][-1][1]), sk["growth_kb"] / 1024.0))
    return out


def report(results, m, took):
    L = []
    add = L.append
    add("# periscope benchmarks")
    add("")
    add("Generated by `make bench` (scripts/bench.sh → scripts/bench_run.py); every number below was")
    add("measured by that run. Re-run to refresh; knobs are described in scripts/bench_run.py.")
    add("")
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    add("| date | %s |" % m["date"])
    add("| host | %s, kernel %s |" % (m["host"], m["kernel"]))
    add("| CPU | %s, %d CPUs; %.1f GB RAM |" % (m["cpu"], m["cpus"], m["mem_gb"]))
    add("| load average at start | %s |" % " ".join(m["loadavg"]))
    add("| agent | %s |" % m["agent"])
    add("| tools | %s; %s; %s |" % (m["nginx"], m["wrk"], m["redis"]))
    add("| bench duration | %.0f s |" % took)
    add("")
    add("The machine is a small shared VM: other jobs ran on the same two CPUs during the bench, so")
    add("absolute numbers are noisy. Off/on runs are interleaved and medians are reported to limit")
    add("the effect; per-run numbers are listed so the spread is visible.")
    add("")

    summary = summarize(results)
    if summary:
        add("## Summary")
        add("")
        L.extend(summary)
        add("")
    runs = results.get("wrk")
    if runs:
        off = [r for r in runs if r["mode"] == "off"]
        on = [r for r in runs if r["mode"] == "on"]
        rps_off, rps_on = median([r["rps"] for r in off]), median([r["rps"] for r in on])
        ratio = rps_on / rps_off
        pair_ratios = [b["rps"] / a["rps"] for a, b in zip(off, on)]
        reqs = [r["requests"] for r in on]
        cpu_us = median([r["agent_cpu_s"] * 1e6 / r["requests"] for r in on])
        bpf_us = median([r["bpf_ns"] / 1e3 / r["requests"] for r in on])
        tot_us = median([(r["agent_cpu_s"] * 1e6 + r["bpf_ns"] / 1e3) / r["requests"] for r in on])
        bpf_per_run = median([r["bpf_ns"] / max(1, r["bpf_runs"]) for r in on])
        progs_per_req = median([r["bpf_runs"] / float(r["requests"]) for r in on])
        spans_per_req = median([r["spans"] / float(r["requests"]) for r in on])
        floor = [r for r in runs if r["mode"] == "floor"]
        f = lambda fmt, v: fmt % v if floor else ""  # noqa: E731 (the floor column, when run)
        rps_floor = median([r["rps"] for r in floor]) if floor else 0
        floor_bpf_us = median([r["bpf_ns"] / 1e3 / r["requests"] for r in floor]) if floor else 0
        floor_runs = median([r["bpf_runs"] / float(r["requests"]) for r in floor]) if floor else 0
        floor_ns = median([r["bpf_ns"] / max(1, r["bpf_runs"]) for r in floor]) if floor else 0
        add("## 1. wrk → nginx, agent off vs on")
        add("")
        add("nginx 1.22 (1 worker, access log off) serves a %d-byte static file; `wrk -t1 -c%d -d%ds"
            " --latency` (keep-alive), %d off and %d on runs, interleaved (%s). The agent"
            " runs as `periscope --port NGINX_PORT --no-print --prometheus …`, freshly started for"
            " each on run: it traces both sides (wrk's CLIENT and nginx's SERVER spans), builds"
            " spans and RED metrics, and does not export them." % (
                len(INDEX), CONNS, SECONDS, len(off), len(on),
                "off,floor,on, then on,off,floor, then floor,on,off, …" if floor
                else "off,on,on,off,…"))
        if floor:
            add("")
            add("The floor (%d runs, in the rotation off, floor, on): bench/bystander/empty_hook.bpf.c"
                " with one empty program on each hook the agent's programs run on for every request"
                " here (`tp_btf/sock_send_length`, `tp_btf/sock_recv_length`, the `epoll_wait` and"
                " `read` exits) and nothing else: what merely hooking there costs, the hooks' own"
                " dispatch and the syscall slow path included, and (its BPF row) what bpf_stats"
                " counts for a program that does nothing." % len(floor))
        add("")
        add("| metric | agent off | empty-hook floor | agent on | on/off or delta | target |")
        add("|---|---|---|---|---|---|")
        add("| throughput (median req/s) | %.0f | %s | %.0f | **%.3f**%s (per-round on/off: %s) |"
            " ≥ 0.95 |" % (rps_off, f("%.0f", rps_floor), rps_on, ratio,
                          f("; floor/off %.3f", rps_floor / rps_off),
                          ", ".join("%.2f" % x for x in pair_ratios)))
        p50d = median([r["p50"] for r in on]) - median([r["p50"] for r in off])
        p99d = median([r["p99"] for r in on]) - median([r["p99"] for r in off])
        add("| latency p50 (median) | %.0f µs | %s | %.0f µs | %+.0f µs | |" % (
            median([r["p50"] for r in off]), f("%.0f µs", median([r["p50"] for r in floor])
                                                if floor else 0),
            median([r["p50"] for r in on]), p50d))
        add("| latency p99 (median) | %.0f µs | %s | %.0f µs | %+.0f µs | |" % (
            median([r["p99"] for r in off]), f("%.0f µs", median([r["p99"] for r in floor])
                                                if floor else 0),
            median([r["p99"] for r in on]), p99d))
        add("| agent CPU per request: process utime+stime | | | %.2f µs | | |" % cpu_us)
        add("| agent CPU per request: BPF programs (run_time_ns) | | %s | %.2f µs | | |"
            % (f("%.2f µs (empty programs)", floor_bpf_us), bpf_us))
        add("| **agent CPU per request, total** | | | **%.2f µs** | | ≤ 2 µs |" % tot_us)
        add("| BPF program runs per request; mean run time | | %s | %.1f; %.0f ns | | |"
            % (f("%.1f; %.0f ns", (floor_runs, floor_ns)), progs_per_req, bpf_per_run))
        add("| spans per request | | | %.2f | | 2 (SERVER + CLIENT) |" % spans_per_req)
        add("| agent RSS at the end of a run (max over runs) | | | %s (VmHWM %s) | | |" % (
            fmt_kb(max(r["rss_kb"] for r in on)), fmt_kb(max(r["hwm_kb"] for r in on))))
        add("| events dropped (`periscope_events_dropped_total`, all runs) | | | %d | | 0 |"
            % sum(r["dropped"] for r in on))
        add("")
        add("Target check: throughput ratio %.3f (%s the ≥ 0.95 target); %.2f µs agent CPU per request"
            " (%s the ≤ 2 µs target)." % (ratio, "meets" if ratio >= 0.95 else "misses", tot_us,
                                          "meets" if tot_us <= 2 else "misses"))
        add("")
        add("How the CPU is counted: the agent process's utime+stime (from /proc/PID/stat, from 0.5 s"
            " before wrk starts until 0.5 s after it ends, so the ring-buffer backlog is included)"
            " plus the `run_time_ns` delta of the agent's own BPF programs (ids from the agent's"
            " /proc/PID/fdinfo, read with `bpftool prog show -j`, kernel.bpf_stats_enabled=%s),"
            " divided by wrk's request count. The BPF programs also run (and filter out) every"
            " other process's socket syscalls on the machine, which this includes. On a 2-CPU"
            " machine the agent competes with wrk and nginx for the same CPUs, so every µs of"
            " agent CPU comes straight out of the throughput." % m["bpf_stats"])
        add("")
        add("Per run:")
        add("")
        add("| # | mode | req/s | requests | p50 µs | p99 µs | agent CPU s | BPF s | BPF runs |"
            " spans | dropped | RSS |")
        add("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for i, r in enumerate(runs):
            if r["mode"] == "off":
                add("| %d | off | %.0f | %d | %.0f | %.0f | | | | | | |" % (
                    i + 1, r["rps"], r["requests"], r["p50"], r["p99"]))
            elif r["mode"] == "floor":
                add("| %d | floor | %.0f | %d | %.0f | %.0f | | %.3f | %d | | | |" % (
                    i + 1, r["rps"], r["requests"], r["p50"], r["p99"], r["bpf_ns"] / 1e9,
                    r["bpf_runs"]))
            else:
                add("| %d | on | %.0f | %d | %.0f | %.0f | %.2f | %.3f | %d | %d | %d | %s |" % (
                    i + 1, r["rps"], r["requests"], r["p50"], r["p99"], r["agent_cpu_s"],
                    r["bpf_ns"] / 1e9, r["bpf_runs"], r["spans"], r["dropped"],
                    fmt_kb(r["rss_kb"])))
        add("")
        L.extend(prog_table(on))

    runs = results.get("redis")
    if runs:
        off = [r for r in runs if r["mode"] == "off"]
        on = [r for r in runs if r["mode"] == "on"]
        c_off = median([r["redis_cpu_s"] / r["seconds"] * 100 for r in off])
        c_on = median([r["redis_cpu_s"] / r["seconds"] * 100 for r in on])
        a_on = median([r["agent_cpu_s"] / r["seconds"] * 100 for r in on])
        add("## 1b. Redis at a fixed rate, agent off vs on")
        add("")
        add("redis-server 7.0 (no persistence); scripts/bench_load.py sends %d ops/s (pipelines of"
            " 100 SET/GET, one connection) for %d s; %d off and %d on runs, interleaved. Redis CPU is"
            " the redis-server process's utime+stime over the run. Agent: `--port REDIS_PORT`."
            % (REDIS_RATE, REDIS_SECONDS, len(off), len(on)))
        add("")
        add("| metric | agent off | agent on |")
        add("|---|---|---|")
        add("| redis-server CPU (median, %% of one CPU) | %.1f %% | %.1f %% (%+.1f points) |"
            % (c_off, c_on, c_on - c_off))
        add("| redis-server CPU per op (median) | %.2f µs | %.2f µs |" % (
            median([r["redis_cpu_s"] * 1e6 / r["ops"] for r in off]),
            median([r["redis_cpu_s"] * 1e6 / r["ops"] for r in on])))
        add("| agent CPU (median, %% of one CPU; per op) | | %.1f %%; %.2f µs |" % (
            a_on, median([r["agent_cpu_s"] * 1e6 / r["ops"] for r in on])))
        add("| spans per op (agent on) | | %s |" % ", ".join(
            "%.3f" % (r["spans"] / float(r["ops"])) for r in on))
        add("")
        add("| # | mode | ops (client) | SET+GET calls (INFO commandstats) | errors | seconds |"
            " redis CPU s | agent CPU s | spans |")
        add("|---|---|---|---|---|---|---|---|---|")
        for i, r in enumerate(runs):
            add("| %d | %s | %d | %d | %d | %.2f | %.2f | %s | %s |" % (
                i + 1, r["mode"], r["ops"], r["server_calls"], r["errors"], r["seconds"],
                r["redis_cpu_s"], "%.2f" % r["agent_cpu_s"] if "agent_cpu_s" in r else "",
                r.get("spans", "")))
        add("")
        add("The agent makes one CLIENT span per Redis command (in the client process; Redis"
            " commands get no SERVER span), so spans should equal the client's ops and redis's"
            " own count. CPU times come from /proc/PID/stat in clock ticks (10 ms), so per-run"
            " values carry ±0.01 s of quantisation.")
        add("")

    rp = results.get("replay")
    if rp:
        sp = median([r["spans_per_second"] for r in rp["runs"]])
        ep = median([r["events_per_second"] for r in rp["runs"]])
        spr = rp["spans_per_repeat"] / float(rp["wrk_requests"]) if rp["wrk_requests"] else 2
        add("## 2. The pipeline without the kernel (record / replay)")
        add("")
        add("`periscope record FILE --port NGINX_PORT` ran while `wrk -t1 -c%d -d3s` hit nginx"
            " (%d requests; %d events, %.1f MB file; %d spans per pass = %.2f per request). Then"
            " `taskset -c %s periscope replay FILE --repeat %d --no-print --no-prometheus`, three"
            " times:" % (CONNS, rp["wrk_requests"], rp["events_per_repeat"],
                         rp["file_bytes"] / 1048576.0, rp["spans_per_repeat"], spr, rp["cpu"],
                         rp["repeat"]))
        add("")
        add("| run | events | spans | seconds | events/s | spans/s | requests/s (spans/s ÷ %.2f) |"
            % spr)
        add("|---|---|---|---|---|---|---|")
        for i, r in enumerate(rp["runs"]):
            add("| %d | %d | %d | %.2f | %.0f | %.0f | %.0f |" % (
                i + 1, r["events"], r["spans"], r["seconds"], r["events_per_second"],
                r["spans_per_second"], r["spans_per_second"] / spr))
        add("")
        add("**Median: %.0f events/s, %.0f spans/s = %.0f requests/s on one core (%.2f µs per"
            " request).**" % (ep, sp, sp / spr, spr / sp * 1e6))
        add("")
    vg = results.get("valgrind")
    if vg:
        h1, h5 = vg["heap"][1], vg["heap"][5]
        d_allocs = h5["allocs"] - h1["allocs"]
        d_spans = h5["spans"] - h1["spans"]
        add("### Heap allocations (valgrind memcheck)")
        add("")
        add("A small recording: %d curl requests on one keep-alive connection to nginx (%d events, "
            "%d spans per pass), replayed under `valgrind --tool=memcheck` with --repeat 1 and 5;"
            " \"total heap usage\" lines:" % (vg["requests"], h1["events"], h1["spans"]))
        add("")
        add("| replay | spans | allocs | frees | bytes allocated | allocs per span |")
        add("|---|---|---|---|---|---|")
        for k in (1, 5):
            h = vg["heap"][k]
            add("| --repeat %d | %d | %d | %d | %d | %.2f |" % (
                k, h["spans"], h["allocs"], h["frees"], h["bytes"],
                h["allocs"] / float(h["spans"])))
        add("")
        add("**Marginal: %.2f allocations per span** ((allocs×5 − allocs×1) ÷ (spans×5 − spans×1) ="
            " %d ÷ %d, which removes start-up allocations), i.e. %.2f per request (2 spans);"
            " %.0f bytes allocated per span." % (
                d_allocs / float(d_spans), d_allocs, d_spans, 2 * d_allocs / float(d_spans),
                (h5["bytes"] - h1["bytes"]) / float(d_spans)))
        add("")
        add("### Top costs (valgrind callgrind)")
        add("")
        add("`valgrind --tool=callgrind periscope replay small --repeat 10` (%d spans, %s instructions"
            " in total), `callgrind_annotate`, self cost:" % (
                vg["callgrind_spans"], "{:,}".format(vg["callgrind_total_ir"])
                if vg["callgrind_total_ir"] else "?"))
        add("")
        add("| rank | instructions (Ir) | share | function |")
        add("|---|---|---|---|")
        for i, (ir, pct, fn) in enumerate(vg["top"]):
            b = "**" if i < 3 else ""
            add("| %s%d%s | %s | %.2f %% | `%s` |" % (b, i + 1, b, "{:,}".format(ir), pct,
                                                   fn_name(fn)))
        add("")
        add("**The top three:**")
        add("")
        for i, (_, pct, fn) in enumerate(vg["top"][:3]):
            cs = vg["callers"].get(fn) or []
            add("%d. `%s` — %.1f %% of all instructions (self)%s" % (
                i + 1, fn_name(fn), pct,
                "; its callers (inclusive cost of those calls, number of calls): " + ", ".join(
                    "`%s` (%.1f %%, %s calls)" % (c, cp, n or "?")
                                             for cp, c, n in cs) if cs else ""))
        add("")
        add("The binary was run without its DWARF debug info (valgrind 3.19 cannot read clang's DWARF"
            " 5), so functions have names but no file; the totals include start-up (dynamic"
            " linking, configuration), which --repeat 10 makes small.")
        add("")
    mem = results.get("memory")
    if mem:
        add("## 3. Memory (agent RSS)")
        add("")
        add("| situation | agent RSS |")
        add("|---|---|")
        add("| idle (ready, no traffic, 3 s after start) | %s |" % fmt_kb(mem["idle"]["VmRSS"]))
        if results.get("wrk"):
            on = [r for r in results["wrk"] if r["mode"] == "on"]
            add("| under load (end of each wrk run, %d connections; max) | %s (peak VmHWM %s) |" % (
                CONNS, fmt_kb(max(r["rss_kb"] for r in on)), fmt_kb(max(r["hwm_kb"] for r in on))))
        for r in mem["conns"]:
            add("| %d idle keep-alive connections to nginx (each served one request; %d tracked)"
                " | %s (before: %s; after closing them: %s) |" % (
                    r["n"], r["tracked"], fmt_kb(r["rss_kb"]), fmt_kb(r["rss_before_kb"]),
                    fmt_kb(r["rss_after_close_kb"])))
        add("")
        for r in mem["conns"]:
            add("- %d connections: %d opened, %d answered 200 in %.1f s; "
                "`periscope_connections_tracked` %d while open, %d after closing; RSS growth %.2f kB"
                " per connection; events dropped %d%s." % (
                    r["n"], r["open"], r["ok"], r["open_seconds"], r["tracked"],
                    r["tracked_after_close"], (r["rss_kb"] - r["rss_before_kb"]) / float(r["n"]),
                    r["dropped"], " (by reason: %s)" % ", ".join(
                        "%s %d" % kv for kv in sorted(r["drops"].items())) if r["drops"] else ""))
        add("")
        if mem["conns"]:
            r = mem["conns"][-1]
            add("The connections are opened by several client processes (scripts/bench_load.py"
                " hold; %d for the largest count), each from its own source address 127.0.0.2,"
                " 127.0.0.3, … so the ports of 127.0.0.1 stay free, to an nginx with %d workers"
                " (listen reuseport): this machine's file-descriptor limit is %d per process and"
                " cannot be raised here (no CAP_SYS_RESOURCE). Each connection served one request"
                " and then stayed open, idle. \"tracked\" is the agent's"
                " `periscope_connections_tracked` gauge: both ends of every connection are traced"
                " (client and server sockets)." % (r["holders"], r["workers"], mem["nofile"]))
        add("")
    if results.get("gotls"):
        report_gotls(results["gotls"], add)
    sk = results.get("soak")
    if sk:
        add("## 4. Soak (agent RSS over time)")
        add("")
        add("`wrk -t1 -c4 -d%ds --latency` (keep-alive; wrk has no rate limit: one thread and four"
            " connections, fewer than section 1's) against the same nginx, the agent on (`--port NGINX_PORT"
            " --no-print --prometheus …`, freshly started); its VmRSS read from /proc every %d s."
            % (sk["seconds"], SOAK_SAMPLE))
        add("")
        add("| seconds into the run | agent RSS |")
        add("|---|---|")
        for t, kb in sk["samples"]:
            add("| %d | %s (%d kB) |" % (t, fmt_kb(kb), kb))
        add("")
        if sk["growth_kb"] is not None:
            add("**Growth: %+d kB (%+.2f MB)** = the last sample (%d kB at %d s) minus the sample"
                " at 20 s (%d kB), which leaves out start-up and the first allocations under load;"
                " VmHWM at the end %s." % (sk["growth_kb"], sk["growth_kb"] / 1024.0,
                                           sk["samples"][-1][1], sk["samples"][-1][0],
                                           sk["base_kb"], fmt_kb(sk["hwm_kb"])))
        else:
            add("The run was shorter than 20 s: no growth figure.")
        add("")
        add("- wrk: %d requests in %d s (%.0f req/s); the agent made %d spans (%.2f per request),"
            " used %.1f s of CPU, dropped %d events%s." % (
                sk["requests"], sk["seconds"], sk["rps"], sk["spans"],
                sk["spans"] / float(sk["requests"]) if sk["requests"] else 0, sk["agent_cpu_s"],
                sk["dropped"], " (by reason: %s)" % ", ".join(
                    "%s %d" % kv for kv in sorted(sk["drops"].items())) if sk["drops"] else ""))
        add("")
    if results.get("grpc"):
        L.extend(grpc_report(results["grpc"]))
    return "\n".join(L)


LOG_FLOOD = r"""
import os, sys, time
rate, seconds = int(sys.argv[1]), float(sys.argv[2])
line = b"2026-12-02 12:00:00 INFO bench line with some text like a real log message, n=%d\n"
end = time.monotonic() + seconds
i = 0
while time.monotonic() < end:
    t0 = time.monotonic()
    for _ in range(rate // 100):
        os.write(1, line % i)
        i += 1
    dt = time.monotonic() - t0
    if dt < 0.01:
        time.sleep(0.01 - dt)
print(i, file=sys.stderr)
"""


def bench_logs(results):
    """--logs: agent CPU per log line (no budget, 20k lines/s) and what the per-process budget
    (the default 1000 lines/s) held against a 100k lines/s flood."""
    runs = []
    for label, rate, extra in (("unlimited", 20000, ["--logs-rate", "0"]),
                               ("budget 1000/s", 100000, [])):
        log("logs: %s, %d lines/s for 5 s" % (label, rate))
        agent = Agent(["--logs"] + extra, name="agent (logs)")
        try:
            time.sleep(1.0)
            rss0 = mem_kb(agent.pid).get("VmRSS", 0)
            cpu0 = cpu_seconds(agent.pid)
            flood = subprocess.Popen([PY, "-c", LOG_FLOOD, str(rate), "5"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
            sink = subprocess.Popen(["cat"], stdin=flood.stdout, stdout=subprocess.DEVNULL)
            flood.stdout.close()
            written = int(flood.stderr.read().decode().strip() or 0)
            flood.wait()
            sink.wait()
            time.sleep(1.5)
            cpu = cpu_seconds(agent.pid) - cpu0
            r = {"label": label, "rate": rate, "written": written, "agent_cpu_s": cpu,
                 "records": int(agent.metric_sum("periscope_logs_records_total")),
                 "writes": int(agent.metric_sum("periscope_logs_writes_total")),
                 "kernel_dropped": int(agent.metric_sum(
                     "periscope_logs_dropped_total",
                     exclude=('"rate_limit"', "queue_full", "export_failed", "encode_failed"))),
                 "rss_kb": mem_kb(agent.pid).get("VmRSS", 0), "rss0_kb": rss0}
        finally:
            agent.stop()
            agent.close()
        log("   %(written)d lines written, %(writes)d sent by the kernel, %(kernel_dropped)d"
            " dropped there, %(records)d records; agent CPU %(agent_cpu_s).2f s" % r)
        runs.append(r)
    results["logs"] = runs


def logs_section(runs):
    out = ["## Logs (--logs)", "",
           "A process writing log lines to a pipe (one `write` per line) for 5 s, the agent"
           " watching the whole host (`--logs --no-print`, Prometheus on). Agent CPU is the"
           " agent process's user+system time over the run (its BPF time is not included).", "",
           "| run | lines written | sent by the kernel | dropped in the kernel (budget) |"
           " records made | agent CPU | per line made | agent RSS |",
           "|---|---|---|---|---|---|---|---|"]
    for r in runs:
        out.append("| %s, %d lines/s | %d | %d | %d | %d | %.2f s | %.1f µs | %.1f MB (from %.1f) |"
                   % (r["label"], r["rate"], r["written"], r["writes"], r["kernel_dropped"],
                      r["records"], r["agent_cpu_s"],
                      r["agent_cpu_s"] / max(r["records"], 1) * 1e6, r["rss_kb"] / 1024.0,
                      r["rss0_kb"] / 1024.0))
    out.append("")
    return "\n".join(out)


# ---- Node.js: what the event-loop probes cost (issue 19)

NODE_SERVER = os.path.join(REPO, "bench", "node", "server.js")
NODE_LOOP = os.path.join(REPO, "bench", "node", "immediate_loop.js")
PY_SERVER = os.path.join(REPO, "bench", "python", "server.py")
PY_LOOP = os.path.join(REPO, "bench", "python", "task_loop.py")
NODE_PAIRS = env_int("BENCH_NODE_PAIRS", 3)
# The runtimes whose event loops the agent probes (issue 19): (results key, title, program,
# server script, loop script, what one loop iteration is, the flag that turns the probes off,
# the probes' BPF programs, the log line saying they attached, what they are)
LOOP_RUNTIMES = {
    "node": ("Node.js event-loop probes", "node", NODE_SERVER, NODE_LOOP,
             "loop iteration of one setImmediate", "--no-node-probes", ("loop_boundary",),
             "Node.js event-loop probes attached",
             "uprobes on `CheckImmediate`, `RunTimers`, `AfterUvWrite`, `AfterUvShutdown`,"
             " `AfterConnect`"),
    "python": ("Python asyncio probes", "/usr/bin/python3", PY_SERVER, PY_LOOP,
               "task step (`await asyncio.sleep(0)`)", "--no-python-probes",
               ("loop_boundary", "py_task_enter", "py_task_create"),
               "Python asyncio probes attached",
               "uprobes on `Context.run` and on `_asyncio`'s calls of `enter_task` and"
               " `register_task`"),
}


def bench_loop_probes(results, key):
    """wrk -c10 against a server of one runtime: agent off, on with its probes' flag and on (the
    event-loop probes), rotated; the server's own CPU per request shows the uprobe traps, the
    program runs per request how often they fire; then a loop that iterates for nothing."""
    title, prog, server, loop_script, _, flag, prog_names, attached, _ = LOOP_RUNTIMES[key]
    exe = shutil.which(prog)
    if not exe:
        log("%s: no %s: skipped" % (key, prog))
        return
    port = free_port()
    srv = spawn([exe, server], env=dict(os.environ, PORT=str(port)),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d/" % port
    runs = []
    try:
        wait_listening(port, proc=srv)
        wrk(url, 1, conns=10)
        log("%s: %d rounds of off / on %s / on, %d s of wrk -c10 each"
            % (key, NODE_PAIRS, flag, SECONDS))
        modes = ["off", "no-probes", "on"]
        for i in range(NODE_PAIRS):
            for mode in modes[i % 3:] + modes[:i % 3]:
                agent = None
                if mode != "off":
                    extra = [flag] if mode == "no-probes" else []
                    agent = Agent(["--port", str(port)] + extra, name="agent (%s)" % key)
                try:
                    if agent:
                        time.sleep(1.0)  # the scan attaches the probes
                        acpu0, prog0 = cpu_seconds(agent.pid), agent.bpf_stats_by_prog()
                    ncpu0 = cpu_seconds(srv.pid)
                    r = wrk(url, SECONDS, conns=10)
                    r["mode"] = mode
                    r["node_cpu_s"] = cpu_seconds(srv.pid) - ncpu0
                    if agent:
                        prog1 = agent.bpf_stats_by_prog()
                        progs = {k: (v[0] - prog0.get(k, (0, 0))[0],
                                     v[1] - prog0.get(k, (0, 0))[1]) for k, v in prog1.items()}
                        time.sleep(0.5)
                        r["agent_cpu_s"] = cpu_seconds(agent.pid) - acpu0
                        r["bpf_ns"] = sum(v[0] for v in progs.values())
                        r["boundary_runs"] = sum(progs.get(p, (0, 0))[1] for p in prog_names)
                        r["boundary_ns"] = sum(progs.get(p, (0, 0))[0] for p in prog_names)
                        r["probes"] = any(x.get("msg") == attached for x in agent.records())
                finally:
                    if agent:
                        agent.stop()
                        agent.close()
                runs.append(r)
                log("   %-9s %8.0f req/s  server CPU %.2f s%s" % (
                    mode, r["rps"], r["node_cpu_s"], "" if mode == "off" else
                    "  agent %.2f s, BPF %.2f s, probe runs %d" % (
                        r["agent_cpu_s"], r["bpf_ns"] / 1e9, r["boundary_runs"])))
        # the probes' cost where it is highest: a loop iterating for nothing (one hit each)
        loops = []
        for i in range(NODE_PAIRS):
            for mode in modes[i % 3:] + modes[:i % 3]:
                agent = None
                if mode != "off":
                    extra = [flag] if mode == "no-probes" else []
                    agent = Agent(extra, name="agent (%s loop)" % key)
                try:
                    if agent:
                        time.sleep(0.5)
                    out = subprocess.run([exe, loop_script, "300000"], capture_output=True,
                                         text=True, check=True).stdout
                    loops.append({"mode": mode, "ns": float(out.strip())})
                finally:
                    if agent:
                        agent.stop()
                        agent.close()
                log("   loop, %-9s %.0f ns per iteration" % (mode, loops[-1]["ns"]))
    finally:
        stop(srv)
    results[key] = runs
    results[key + "_loop"] = loops


def loop_probes_section(key, runs, loops=()):
    title, prog, server, loop_script, iteration, flag, prog_names, _, what = LOOP_RUNTIMES[key]

    def med(mode, f):
        xs = [f(r) for r in runs if r["mode"] == mode]
        return median(xs) if xs else 0.0

    per_req = lambda k: lambda r: r[k] * 1e6 / max(r["requests"], 1)  # noqa: E731
    rel = lambda p: os.path.relpath(p, REPO)  # noqa: E731
    out = ["## %s (issue 19)" % title, "",
           "%s (answers at once, keep-alive) under `wrk -t1 -c10 -d%ds`, %d rounds of: agent off,"
           " agent on with `%s`, agent on (the probes: %s), order rotated; medians. Server CPU is"
           " the server process's user+system time (the uprobe traps are charged to it)."
           % (rel(server), SECONDS, NODE_PAIRS, flag, what), "",
           "| | off | on, no probes | on, probes |", "|---|---|---|---|"]
    out.append("| requests/s | %.0f | %.0f | %.0f |" % tuple(
        med(m, lambda r: r["rps"]) for m in ("off", "no-probes", "on")))
    out.append("| server CPU per request | %.2f µs | %.2f µs | %.2f µs |" % tuple(
        med(m, per_req("node_cpu_s")) for m in ("off", "no-probes", "on")))
    out.append("| agent CPU per request (process) | | %.2f µs | %.2f µs |" % tuple(
        med(m, per_req("agent_cpu_s")) for m in ("no-probes", "on")))
    out.append("| BPF per request | | %.2f µs | %.2f µs |" % tuple(
        med(m, lambda r: r["bpf_ns"] / 1e3 / max(r["requests"], 1)) for m in ("no-probes", "on")))
    out.append("| probe hits per request (%s); ns per run | | | %.2f; %.0f |" % (
        ", ".join("`%s`" % p for p in prog_names),
        med("on", lambda r: r["boundary_runs"] / max(r["requests"], 1)),
        med("on", lambda r: r["boundary_ns"] / max(r["boundary_runs"], 1))))
    out.append("")
    out.append("Probes attached in every `on` run: %s." % (
        "yes" if all(r.get("probes") for r in runs if r["mode"] == "on") else "NO"))
    out.append("")
    if loops:
        lm = lambda mode: median([x["ns"] for x in loops if x["mode"] == mode])  # noqa: E731
        out.append("%s, 300,000 iterations, each one %s (the probes' cost where it is highest),"
                   " the agent watching the whole host, medians of %d: off %.0f ns, on without the"
                   " probes %.0f ns, on with them %.0f ns per iteration (the probes: %+.0f ns)."
                   % (rel(loop_script), iteration, NODE_PAIRS, lm("off"), lm("no-probes"),
                      lm("on"), lm("on") - lm("no-probes")))
        out.append("")
    return "\n".join(out)


# ---- exec churn and idle RSS (issue 16 steps 5 and 6)

CHURN_N = env_int("BENCH_CHURN_N", 2000)
CHURN_PAIRS = env_int("BENCH_CHURN_PAIRS", 3)
# "host": the default selection, every process (other work on a shared host is traced too and
# only subtracted); "pid": --pid of the loop's shell, nothing else traced
CHURN_SELECTIONS = [x for x in os.environ.get("BENCH_CHURN_SELECT", "host,pid").split(",") if x]
CHURN_LOOPS = (  # (label, shell loop, runs as a fraction of BENCH_CHURN_N, execs per run)
    ("/bin/true", "for i in $(seq %d); do /bin/true; done", 1, 1),
    ("sh pipeline", "for i in $(seq %d); do /bin/sh -c 'echo x | tr x y | wc -c' >/dev/null; done",
     4, 3),
)


def prog_stats(ids, names):
    """{name: (run_time_ns, run_cnt)} of the agent's BPF programs called names."""
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, check=True)
    res = {n: (0, 0) for n in names}
    for p in json.loads(out.stdout):
        if p.get("id") in ids and p.get("name") in names:
            ns, cnt = res[p["name"]]
            res[p["name"]] = (ns + p.get("run_time_ns", 0), cnt + p.get("run_cnt", 0))
    return res


def run_loop(cmd, n):
    t0 = time.monotonic()
    subprocess.run(["/bin/sh", "-c", cmd % n], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


class HeldLoop:
    """The loop's shell started first, waiting on stdin, so that the agent can be started with
    --pid of it; start() releases it, wait() returns the loop's wall time."""

    def __init__(self, cmd, n):
        self.p = subprocess.Popen(["/bin/sh", "-c", "read go; " + cmd % n], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, start_new_session=True)
        _procs.append(self.p)

    def run(self):
        t0 = time.monotonic()
        self.p.stdin.write(b"go\n")
        self.p.stdin.close()
        self.p.wait()
        return time.monotonic() - t0


def bench_churn(results):
    """The agent idle, watching the whole host (the default selection) or only the loop (--pid):
    N runs of /bin/true and N/4 of a short shell pipeline, agent off and on interleaved. Agent CPU
    (on-CPU time of every thread, schedstat)
    per exec, execs counted by the process_exec program's run count; BPF run time of the
    exec/exit programs; the wall time of the loop off and on."""
    runs = []
    cases = [(sel, loop) for sel in CHURN_SELECTIONS for loop in CHURN_LOOPS]
    for pair in range(CHURN_PAIRS):
        for sel, (label, cmd, div, per) in cases:
            n = CHURN_N // div
            wall_off = run_loop(cmd, n)
            held = HeldLoop(cmd, n) if sel == "pid" else None
            agent = Agent(["--pid", str(held.p.pid)] if held else [], name="agent (churn)")
            try:
                time.sleep(2.0)  # past the start-up scan of /proc
                idle0 = cpu_seconds_exact(agent.pid)
                time.sleep(3.0)
                idle = cpu_seconds_exact(agent.pid) - idle0
                names = ("process_exec", "process_exit")
                s0 = prog_stats(agent.prog_ids, names)
                cpu0 = cpu_seconds_exact(agent.pid)
                wall_on = held.run() if held else run_loop(cmd, n)
                time.sleep(1.5)  # the 100 ms and 1 s rescans of the last processes
                cpu = cpu_seconds_exact(agent.pid) - cpu0
                s1 = prog_stats(agent.prog_ids, names)
                idle0 = cpu_seconds_exact(agent.pid)
                time.sleep(3.0)
                # the host is shared: what the agent spends on other work, before and after
                idle = (idle + cpu_seconds_exact(agent.pid) - idle0) / 6.0
                cpu -= idle * (wall_on + 1.5)
            finally:
                agent.stop()
                agent.close()
            # the programs run at every exec of the host; with --pid the agent sees the loop's
            bpf_cnt = s1["process_exec"][1] - s0["process_exec"][1]
            execs = bpf_cnt if sel == "host" else n * per + 1  # + the seq
            bpf_ns = sum(s1[nm][0] - s0[nm][0] for nm in names)
            r = {"label": label, "sel": sel, "runs": n, "idle_cpu": idle, "execs": execs,
                 "bpf_cnt": bpf_cnt, "agent_cpu_s": max(cpu, 0.0), "bpf_ns": bpf_ns,
                 "wall_off": wall_off, "wall_on": wall_on}
            log("churn %s %s: %d execs, agent CPU %.3f s (%.1f µs/exec), BPF %.2f µs/exec, wall"
                " off %.2f s on %.2f s" % (sel, label, execs, r["agent_cpu_s"],
                                           r["agent_cpu_s"] * 1e6 / max(execs, 1),
                                           bpf_ns / 1e3 / max(bpf_cnt, 1), wall_off, wall_on))
            runs.append(r)
    results["churn"] = runs


def churn_section(runs):
    out = ["## 7. Exec churn (agent idle)", "",
           "`sh -c 'for i in $(seq N); do CMD; done'` (N = %d for /bin/true, a quarter for the"
           " pipeline `/bin/sh -c 'echo x | tr x y | wc -c'`), the agent off then on (`--no-print`,"
           " Prometheus on), %d pairs, with two selections: the whole host (the default: on this"
           " shared machine other engineers' builds and benchmarks are traced too, and only"
           " subtracted as below) and `--pid` of the loop's shell (its children only: the same"
           " per-exec work, nothing else traced). Agent CPU is the"
           " agent process's on-CPU time (/proc/PID/task/*/schedstat, in ns) over the loop and 1.5 s after"
           " it, less its CPU without the loop over as long (3 s before and 3 s after the loop); execs"
           " are, for the whole host, the run count of the BPF program `process_exec` (every exec"
           " of the host in that time), with `--pid` the loop's own; BPF is the run time of"
           " `process_exec` + `process_exit` per `process_exec` run (kernel.bpf_stats_enabled)."
           " Medians." % (
               CHURN_N, CHURN_PAIRS), "",
           "| loop | execs | agent CPU per exec | BPF per exec | loop wall time off → on |"
           " agent idle CPU |",
           "|---|---|---|---|---|---|"]
    for sel, (label, _, _, _) in [(sel, loop) for sel in CHURN_SELECTIONS for loop in CHURN_LOOPS]:
        rs = [r for r in runs if r["label"] == label and r["sel"] == sel]
        if not rs:
            continue
        out.append("| %s, %s | %d | **%.1f µs** | %.2f µs | %.2f s → %.2f s (×%.2f) | %.1f ms/s |" % (
            label, "whole host" if sel == "host" else "`--pid` of the loop",
            median([r["execs"] for r in rs]),
            median([r["agent_cpu_s"] * 1e6 / max(r["execs"], 1) for r in rs]),
            median([r["bpf_ns"] / 1e3 / max(r["bpf_cnt"], 1) for r in rs]),
            median([r["wall_off"] for r in rs]), median([r["wall_on"] for r in rs]),
            median([r["wall_on"] / r["wall_off"] for r in rs]),
            median([r["idle_cpu"] * 1e3 for r in rs])))
    out.append("")
    return "\n".join(out)


def smaps_breakdown(pid):
    """RSS of pid in kB by mapping: {category: kB}, from /proc/PID/smaps."""
    cats = {}
    exe = os.path.realpath("/proc/%d/exe" % pid)
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if head and re.match(r"^[0-9a-f]+-[0-9a-f]+$", head[0]):
                path = " ".join(head[5:]) if len(head) > 5 else ""
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                if path.startswith("anon_inode:bpf") and hi - lo >= (1 << 20):
                    cur = "BPF ring buffer (%s, %d MiB mapped)" % (path, (hi - lo) >> 20)
                elif path.startswith("anon_inode:bpf"):
                    cur = "other BPF map mappings (%s)" % path
                elif path == exe:
                    cur = "periscope executable"
                elif ".so" in path:
                    cur = "library " + os.path.basename(path)
                elif path == "[heap]":
                    cur = "heap (brk)"
                elif path == "[stack]":
                    cur = "main thread stack"
                elif path:
                    cur = path
                else:
                    cur = "anonymous (malloc arenas, thread stacks, mmap)"
            elif line.startswith("Rss:") and cur:
                cats[cur] = cats.get(cur, 0) + int(line.split()[1])
    return cats


RSS_SETTLE = env_int("BENCH_RSS_SETTLE", 40)


def bench_rss(results):
    """The agent idle (whole host, default flags): its RSS 3 s after ready, and by mapping
    BENCH_RSS_SETTLE (40) s after."""
    log("idle RSS breakdown")
    agent = Agent([], name="agent (idle rss)")
    try:
        time.sleep(3)
        early = mem_kb(agent.pid).get("VmRSS", 0)
        time.sleep(RSS_SETTLE - 3)  # capstone is unloaded 30 s after the last Go binary planned
        cats = smaps_breakdown(agent.pid)
        with open("/proc/%d/smaps_rollup" % agent.pid) as f:
            roll = {l.split(":")[0]: int(l.split()[1]) for l in f if l.split()[-1:] == ["kB"]}
        threads = len(os.listdir("/proc/%d/task" % agent.pid))
    finally:
        agent.stop()
        agent.close()
    results["rss"] = {"cats": cats, "rollup": roll, "threads": threads, "early_kb": early}
    log("idle RSS %d kB" % roll.get("Rss", 0))


def rss_section(r):
    roll = r["rollup"]
    out = ["## 8. Idle RSS breakdown", "",
           "The agent idle (whole host, `--no-print`, Prometheus on): VmRSS %.1f MB 3 s after it"
           " is ready; %d s after (the start-up scan's Go binaries planned 30 s before, capstone"
           " unloaded unless a new Go program started since) /proc/PID/smaps_rollup, and the Rss"
           " of each mapping of /proc/PID/smaps grouped (libraries by file; groups under 64 kB"
           " summed as \"the rest\"). Threads: %d." % (
               r.get("early_kb", 0) / 1024.0, RSS_SETTLE, r["threads"]), "",
           "| | RSS |", "|---|---|",
           "| **total** (Pss %.1f MB, anonymous %.1f MB, file-backed %.1f MB) | **%.1f MB** |" % (
               roll.get("Pss", 0) / 1024.0, roll.get("Anonymous", 0) / 1024.0,
               (roll.get("Rss", 0) - roll.get("Anonymous", 0)) / 1024.0,
               roll.get("Rss", 0) / 1024.0)]
    rest = 0
    for k, v in sorted(r["cats"].items(), key=lambda kv: -kv[1]):
        if v < 64:
            rest += v
            continue
        out.append("| %s | %.2f MB |" % (k, v / 1024.0))
    out.append("| the rest | %.2f MB |" % (rest / 1024.0))
    out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(REPO, "bench", "RESULTS.md"))
    ap.add_argument("--only-logs", action="store_true",
                    help="run only the --logs section and replace it in --out")
    args = ap.parse_args()
    if args.only_logs:
        results = {}
        try:
            bench_logs(results)
        finally:
            cleanup()
        text = open(args.out).read() if os.path.exists(args.out) else ""
        text = re.sub(r"\n## Logs \(--logs\).*?(?=\n## |\Z)", "", text, flags=re.S)
        with open(args.out, "w") as f:
            f.write(text.rstrip("\n") + "\n\n" + logs_section(results["logs"]))
        return 0
    if os.geteuid() != 0:
        sys.exit("bench: needs root (eBPF)")
    if not os.access(AGENT, os.X_OK):
        sys.exit("bench: %s is not built" % AGENT)
    t0 = time.monotonic()
    m = machine()
    results = {}
    workdir = tempfile.mkdtemp(prefix="periscope-bench-work-")
    nginx = None
    try:
        nginx = Nginx()
        if "wrk" not in SKIP:
            bench_wrk(nginx, results)
        if "redis" not in SKIP:
            bench_redis(results)
        if "grpc" not in SKIP:
            bench_grpc(results)
        if "replay" not in SKIP:
            bench_replay(nginx, results, workdir)
        if "valgrind" not in SKIP:
            bench_valgrind(nginx, results, workdir)
        if "memory" not in SKIP:
            bench_memory(nginx, results)
        if "soak" not in SKIP:
            bench_soak(nginx, results)
        if "logs" not in SKIP:
            bench_logs(results)
        if "gotls" not in SKIP:
            bench_gotls(results, workdir)
        for key in LOOP_RUNTIMES:
            if key not in SKIP:
                bench_loop_probes(results, key)
        if "bystander" not in SKIP:
            bench_bystander(results)
        if "churn" not in SKIP:
            bench_churn(results)
        if "rss" not in SKIP:
            bench_rss(results)
    finally:
        if nginx:
            nginx.close()
        cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    took = time.monotonic() - t0
    text = report(results, m, took)
    if results.get("logs"):
        text += "\n\n" + logs_section(results["logs"])
    for key in LOOP_RUNTIMES:
        if results.get(key):
            text += "\n\n" + loop_probes_section(key, results[key], results.get(key + "_loop", ()))
    if results.get("bystander"):
        text += "\n\n" + bystander_section(results["bystander"])
    if results.get("churn"):
        text += "\n\n" + churn_section(results["churn"])
    if results.get("rss"):
        text += "\n\n" + rss_section(results["rss"])
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text + "\n")
    log("done in %.0f s; report written to %s" % (took, args.out))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        cleanup()
        sys.exit(130)
