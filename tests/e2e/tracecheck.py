"""tracecheck.py — whose child is each span: the verdicts of the trace tests, decided without the
agent's ids.

A test knows which request every span belongs to (from the path it asked for, a pid, a time
window) and which spans may be its parent (the span of the same request one hop up). Given that,
link_verdict() says of one span:

    linked   its parent is one of the spans allowed, and it shares that parent's trace
    root     no parent, and its trace is no other request's
    wrong    a parent or trace that belongs to another request (or to no span exported)

A wrong parent is worse than none: it sends people debugging the wrong request. test_traces.py
(sequential chains) and test_trace_truth*.py (concurrency, background work, big heads, failed
calls) both use it; Truth classifies the spans of a `load → front → back` scenario with it.
Python 3 standard library only.
"""

import contextlib
import collections
import re
import time

import chain
import lib
from lib import attrs, check, check_eq, res

LINKED, ROOT, WRONG = "linked", "root", "wrong"


def link_verdict(span, parents, trace_owner, me):
    """(verdict, evidence) for span, a span of request `me`. parents: span id → the span (or any
    dict with a trace_id) it may be the child of; trace_owner: trace id → the request that trace
    belongs to. evidence is None, or for WRONG one of ("trace", the parent's trace id): the right
    parent but another trace; ("parent", parent span id): a parent that is not allowed;
    ("trace_of", request): a root in another request's trace."""
    pid = span.get("parent_span_id") or ""
    if pid in parents:
        if parents[pid]["trace_id"] == span["trace_id"]:
            return LINKED, None
        return WRONG, ("trace", parents[pid]["trace_id"])
    if pid:
        return WRONG, ("parent", pid)
    foreign = trace_owner.get(span.get("trace_id"))
    if foreign is not None and foreign != me:
        return WRONG, ("trace_of", foreign)
    return ROOT, None


# ---- front → back scenarios

# Roles of a scenario's spans and the role of the parent each should have. "load" is the client
# driving the front (curl); "front_cli" the front's calls to the back ("downstream" spans).
PARENT_ROLE = {"front_srv": "load", "front_cli": "front_srv", "back_srv": "front_cli"}
POLL_FROM = 1000000  # the apps' poller numbers its calls from here on
_TRAILING_NUMBER = re.compile(r"/(\d+)$")


def key_from_path(path):
    """The request a path belongs to: the number at its end (`/api/item/17` → 17), or for a
    poller's call (a number from POLL_FROM up), ("poll", n): a call made for no request. None
    when the path ends in no number."""
    m = _TRAILING_NUMBER.search(path or "")
    if not m:
        return None
    k = int(m.group(1))
    return ("poll", k) if k >= POLL_FROM else k


def is_request(key):
    return isinstance(key, int)


def chain_role(span, front_port, back_port, front_pids, back_pids):
    """load / front_srv / front_cli / back_srv for a span of a front → back scenario, else None."""
    a, kind = attrs(span), span.get("kind")
    port, pid = a.get("server.port"), res(span).get("process.pid")
    if kind == "CLIENT" and port == front_port and pid not in front_pids:
        return "load"
    if kind == "SERVER" and port == front_port and pid in front_pids:
        return "front_srv"
    if kind == "CLIENT" and port == back_port and pid in front_pids:
        return "front_cli"
    if kind == "SERVER" and port == back_port and pid in back_pids:
        return "back_srv"
    return None


class Truth:
    """The spans of one scenario, each given a role (role_of(span)) and a request (key_of(span):
    a request number, a key that is no request's (is_request false: a poller's call), or None to
    leave the span out), and every span of the roles in PARENT_ROLE judged by link_verdict against
    the spans of the same key one role up. Traces belong to requests only.
    extra_parents: request → {span id: {"trace_id": …}} also allowed as front_srv parents (an
    incoming traceparent)."""

    def __init__(self, spans, role_of, key_of, extra_parents=None):
        self.spans = spans
        self.by = collections.defaultdict(list)  # (role, key) -> spans
        self.owner = {}  # span id -> (role, key)
        for s in spans:
            role = role_of(s)
            key = key_of(s) if role else None
            if role is None or key is None:
                continue
            self.by[(role, key)].append(s)
            self.owner[s["span_id"]] = (role, key)
        self.trace_owner = {}  # trace id -> request, from each request's first spans
        for role in ("load", "front_srv"):
            for (r, key), lst in self.by.items():
                if r == role and is_request(key):
                    for s in lst:
                        self.trace_owner.setdefault(s["trace_id"], key)
        self.verdicts = collections.defaultdict(collections.Counter)  # role -> verdict -> count
        self.by_key_verdict = {}  # (role, key) -> [verdicts]
        self.wrong = []  # descriptions
        for (role, key), lst in sorted(self.by.items(), key=lambda kv: str(kv[0])):
            if role not in PARENT_ROLE:
                continue
            parents = {p["span_id"]: p for p in self.by.get((PARENT_ROLE[role], key), [])}
            if role == "front_srv":
                parents.update((extra_parents or {}).get(key, {}))
            for s in lst:
                verdict, evidence = link_verdict(s, parents, self.trace_owner, key)
                self.verdicts[role][verdict] += 1
                self.by_key_verdict.setdefault((role, key), []).append(verdict)
                if verdict == WRONG:
                    self.wrong.append(self.describe(role, key, s, evidence))

    def describe(self, role, key, span, evidence):
        what, value = evidence
        me = "%s span %s (%s, request %s)" % (role, span["span_id"], attrs(span).get("url.path"),
                                             key)
        if what == "trace":
            return "%s has the right parent but trace %s, not its parent's %s" % (
                me, span["trace_id"], value)
        if what == "parent":
            where = self.owner.get(value)
            return "%s is a child of %s" % (me, "the %s span of request %s" % where if where
                                            else "span %s, which the agent never exported"
                                            % value)
        return "%s is a root in request %s's trace %s" % (me, value, span["trace_id"])

    def spans_of(self, role, keys=None):
        return [s for (r, k), lst in self.by.items() if r == role and (keys is None or k in keys)
                for s in lst]

    def tally(self, role, keys=None):
        """Counter of verdicts of role's spans (of the requests in keys, when given)."""
        c = collections.Counter()
        for (r, k), verdicts in self.by_key_verdict.items():
            if r == role and (keys is None or k in keys):
                c.update(verdicts)
        return c

    def n_wrong(self):
        return len(self.wrong)


class Table:
    """The one-line-per-scenario results of a file, printed as it goes and again at the end."""

    HEADER = "%-34s | %8s | %10s | %13s | %5s | %5s" % (
        "scenario", "requests", "downstream", "linked", "roots", "wrong")

    def __init__(self):
        self.rows = []

    def add(self, scenario, requests, downstream, linked, roots, wrong, note=""):
        share = "%d (%.0f%%)" % (linked, 100.0 * linked / downstream) if downstream else "0"
        line = "%-34s | %8d | %10d | %13s | %5d | %5d%s" % (
            scenario, requests, downstream, share, roots, wrong, "  " + note if note else "")
        self.rows.append(line)
        print("  truth: " + line, flush=True)
        return line

    def print(self, title):
        if self.rows:
            print(title)
            print("  " + self.HEADER)
            for line in self.rows:
                print("  " + line)


# ---- running a scenario: a chain (tests/e2e/chain.py) with the agent watching it

ITEMS = {i: "item-%d" % i for i in range(1, 301)}  # the scenarios' Redis: request k reads item k
_redis = []


def need(stack, db="redis"):
    """Skips the calling test unless the stack (with db) can run here; builds its apps."""
    ok, reason = chain.available(stack, db)
    if not ok:
        lib.skip(reason)
    try:
        chain.build(stack)
    except chain.ToolchainMissing as e:
        lib.skip(str(e))


def redis():
    """One Redis for the file, holding ITEMS (stopped at exit by chain.py)."""
    if not _redis:
        _redis.append(chain.RedisServer(items=ITEMS))
    return _redis[0]


class ChainRun:
    """One scenario: `stack`'s back (on Redis) and front (or front_argv(front_port, back_port)),
    the agent watching both ports (and extra_ports), load(run, chain) driving the front; then the
    agent is stopped and its spans classified (self.truth). The services' request logs are kept
    (self.front_log, self.back_log: (method, path, status) lists). extra_parents: as for Truth
    (read when the run ends, so load may fill it)."""

    def __init__(self, stack, load, env=None, front_argv=None, agent_args=(), extra_ports=(),
                 settle=1.0, extra_parents=None, agent_first=False):
        self.stack = stack
        self.settle = settle
        self.front_port, self.back_port = lib.free_port(), lib.free_port()
        lib.require_agent()
        argv = front_argv(self.front_port, self.back_port) if front_argv else None
        started = time.monotonic()
        ports = [self.front_port, self.back_port] + list(extra_ports)
        args = [a for p in ports for a in ("--port", str(p))] + list(agent_args)
        # agent_first: the services start while the agent runs (a DaemonSet's node: pods come
        # and go under it), else they run before it starts (found by its scan of /proc)
        first = lib.Agent(args) if agent_first else contextlib.nullcontext()
        with first as early:
            if early:
                early.wait_ready()
            with chain.start_chain(stack, "redis", self.front_port, self.back_port, redis(),
                                   env=env, front_argv=argv) as ch:
                self._run(ch, early, args, load)
        self.seconds = time.monotonic() - started
        self.truth = Truth(self.spans, self.role, lambda s: key_from_path(attrs(s).get("url.path")),
                           extra_parents)

    def _run(self, ch, early, args, load):
        self.front_pids, self.back_pids = ch.front_pids(), ch.back_pids()
        check(self.front_pids and self.back_pids, "the chain's services have no pids")
        with (contextlib.nullcontext(early) if early else lib.Agent(args)) as agent:
            if not early:
                agent.wait_ready()
            self.agent = agent
            load(self, ch)
            # Again after the load: a pre-forking front (gunicorn --workers 4) may still be
            # forking its last workers when the chain answers its first health check.
            self.front_pids |= ch.front_pids()
            self.back_pids |= ch.back_pids()
            time.sleep(self.settle)  # let the last spans out
            self.before_stop(agent)
            agent.stop_and_check()
            self.spans = agent.snapshot()
            # Node's phases seen (its binary has the event-loop probes' symbols)
            self.node_probes = any(r.get("msg") == "Node.js event-loop probes attached"
                                   for r in agent.log_records)
            # asyncio's tasks seen (a CPython whose Context.run and _asyncio were found)
            self.python_probes = any(r.get("msg") == "Python asyncio probes attached"
                                     for r in agent.log_records)
        self.front_log, self.back_log = ch.requests("front"), ch.requests("back")

    def before_stop(self, agent):
        """Hook: runs while the agent is still up (e.g. to scrape its metrics)."""

    def role(self, span):
        return chain_role(span, self.front_port, self.back_port, self.front_pids, self.back_pids)

    def logged(self, role, keys):
        """How many requests of keys the role's service logged."""
        log = self.front_log if role == "front" else self.back_log
        return sum(1 for _, path, _ in log if key_from_path(path) in keys)

    def downstream(self, keys):
        """(downstream CLIENT spans, linked, roots) of the requests in keys."""
        t = self.truth.tally("front_cli", keys)
        return sum(t.values()), t[LINKED], t[ROOT]

    def record(self, table, name, keys, note=""):
        """One table row for the requests in keys; wrong counts every role's wrong spans of keys
        (every wrong span of the run when keys is None)."""
        n, linked, roots = self.downstream(keys)
        wrong = sum(self.truth.tally(r, keys)[WRONG] for r in PARENT_ROLE)
        return table.add(name, len(keys), n, linked, roots, wrong, note)

    def summary(self):
        return "; ".join("%s %s" % (r, dict(self.truth.verdicts[r])) for r in PARENT_ROLE)

    def check_counts(self, keys):
        """One front SERVER span per request the front logged, one front CLIENT and one back
        SERVER span per request of keys the back logged."""
        check_eq(len(self.truth.spans_of("front_srv", keys)), self.logged("front", keys),
                 "front SERVER spans vs the front's log (%s)" % self.summary())
        back = self.logged("back", keys)
        check_eq(len(self.truth.spans_of("front_cli", keys)), back,
                 "front CLIENT spans vs the back's log (%s)" % self.summary())
        check_eq(len(self.truth.spans_of("back_srv", keys)), back,
                 "back SERVER spans vs the back's log (%s)" % self.summary())

    def check_no_wrong(self, name):
        check(not self.truth.wrong, "%s: %d wrong parents (%s): %s"
              % (name, self.truth.n_wrong(), self.summary(), "; ".join(self.truth.wrong[:5])))

    def check_min_linked(self, name, keys, share, needs_node_probes=False,
                         needs_python_probes=False):
        """At least share of keys' downstream calls linked; with needs_node_probes (or
        needs_python_probes), only when the agent attached its Node.js event-loop probes (its
        Python asyncio probes): a node binary without the symbols, e.g. a stripped one, or a
        CPython whose _asyncio is linked in links as event loops without them do: nothing is
        asserted."""
        if needs_node_probes and not self.node_probes:
            print("  %s: no Node.js event-loop probes attached (binary without the symbols): "
                  "linked share not asserted" % name, flush=True)
            return
        if needs_python_probes and not self.python_probes:
            print("  %s: no Python asyncio probes attached: linked share not asserted" % name,
                  flush=True)
            return
        n, linked, _ = self.downstream(keys)
        check(n and linked >= share * n, "%s: %d of %d downstream calls linked, want at least "
              "%.0f%%" % (name, linked, n, 100 * share))


def drive(run, ch, paths, parallel, back_calls=None, timeout=20.0, rate=None):
    """Sends GET front_url + path for each path (curl, `parallel` at a time; 0: one by one on
    one connection, at most `rate` a second when given), checks every answer is 200 and waits
    until the back logged back_calls requests of these paths' keys (default: one per path)."""
    urls = ["%s%s" % (ch.front_url, p) for p in paths]
    extra = ["--noproxy", "*"] + (["--rate", "%d/s" % rate] if rate else [])
    codes, _ = lib.curl_config(urls, parallel=parallel, extra=extra)
    check_eq(sorted(codes), [200] * len(urls), "the front's answers")
    keys = {key_from_path(p) for p in paths}
    want = len(paths) if back_calls is None else back_calls
    deadline = time.monotonic() + timeout
    while True:
        got = sum(1 for _, path, _ in ch.requests("back") if key_from_path(path) in keys)
        if got >= want or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check(got >= want, "the back logged %d of these requests, want %d" % (got, want))
