#!/usr/bin/python3
"""test_traces.py — end-to-end: connected traces (issue 6) through real service chains.

Every stack of tests/e2e/apps (fastapi, flask, go, node, rust) runs as `curl → front → back →
Redis or PostgreSQL` (tests/e2e/chain.py). The agent watches only the chain's ports. After N
sequential curl requests the spans are grouped per request and per trace, and every link of the
expected shape is classified:

    curl CLIENT → front SERVER        same-node pairing (mirrored 4-tuple)
    front SERVER → front CLIENT       in-process (the handling thread's outbound request)
    front CLIENT → back SERVER        same-node pairing
    back SERVER → DB CLIENT           in-process

A link is `ok` (the parent is the right span of the same request, in its trace), `missing` (no
parent, a trace of its own) or `wrong` (a parent or trace that belongs to another request or to a
span of the wrong role). Wrong links are worse than missing ones and fail every stack. Which spans
belong to which request is decided independently of the agent's ids: curl spans by the curl
process's pid, the others by time (requests are sequential, so each lies in its curl span's
window) and, for HTTP spans, by the item id in the path. Ground truth for the counts: curl's
statuses, both services' request logs, Redis INFO commandstats / pg_stat_statements.

Every stack must produce N complete traces, because requests are sequential and so every link is
unambiguous: flask and rust (a thread per request), fastapi/node (one request in flight on the
event loop), fastapi+postgres (the query runs in asyncio.to_thread's worker: the process fallback,
one server request in flight), Go (the goroutine followed across threads; net/http's client writes
from its connection's writeLoop goroutine: the process fallback). Pairing links do not depend on
threads. Also: an incoming traceparent wins and the whole chain
joins its trace; and traceidratio sampling keeps or drops whole traces.
"""

import collections
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chain  # noqa: E402
import lib  # noqa: E402
import tracecheck  # noqa: E402
from lib import attrs, check, check_eq, res, test  # noqa: E402
from tracecheck import need  # noqa: E402

N = 20
ROLES = ("curl", "front_srv", "front_cli", "back_srv", "db")
PARENT_ROLE = {"front_srv": "curl", "front_cli": "front_srv", "back_srv": "front_cli",
               "db": "back_srv"}
LINK_NAME = {"front_srv": "curl→front SERVER", "front_cli": "front SERVER→front CLIENT",
             "back_srv": "front CLIENT→back SERVER", "db": "back SERVER→DB CLIENT"}
PAIRING = ("front_srv", "back_srv")  # links made by same-node pairing, not by threads
LOOKUP_OP = {"redis": "GET", "postgres": "SELECT"}

_databases = {}  # one Redis and one PostgreSQL for the whole file
_table = []  # rows printed at the end: (name, complete, n, missing, wrong)


def database(db):
    if db not in _databases:
        _databases[db] = chain.RedisServer() if db == "redis" else chain.PostgresServer()
    return _databases[db]


def db_lookups(db, server):
    return server.command_calls("get") if db == "redis" else server.statement_calls()


def item_of(k):
    return k % len(chain.ITEMS) + 1


def curl_one(url, headers=()):
    """One curl process, one request: (status, pid, t_start_ns, t_end_ns)."""
    t0 = time.time_ns()
    codes, pid = lib.curl(url, headers=headers, extra=["--noproxy", "*"])
    t1 = time.time_ns()
    check_eq(len(codes), 1, "curl answers for %s" % url)
    return codes[0], pid, t0, t1


class Run:
    """One chain with the agent watching its ports, driven by sequential curl requests."""

    def __init__(self, stack, db, n, agent_env=None, headers_for=None):
        self.stack, self.db, self.n = stack, db, n
        self.dbserver = database(db)
        self.front_port, self.back_port = lib.free_port(), lib.free_port()
        before = db_lookups(db, self.dbserver)
        lib.require_agent()
        with chain.start_chain(stack, db, self.front_port, self.back_port,
                               self.dbserver) as ch:
            self.front_pids, self.back_pids = ch.front_pids(), ch.back_pids()
            check(self.front_pids and self.back_pids, "the chain's services have no pids")
            with lib.Agent(["--port", str(self.front_port), "--port", str(self.back_port),
                            "--port", str(self.dbserver.port)], env=agent_env) as agent:
                agent.wait_ready()
                self.requests = []  # (item id, status, curl pid, t0, t1)
                for k in range(n):
                    headers = headers_for(k) if headers_for else ()
                    status, pid, t0, t1 = curl_one(
                        "%s/api/item/%d" % (ch.front_url, item_of(k)), headers)
                    self.requests.append((item_of(k), status, pid, t0, t1))
                check_eq([r[1] for r in self.requests], [200] * n, "curl statuses")
                check_eq(ch.wait_requests("front", n), n, "requests in the front's log")
                check_eq(ch.wait_requests("back", n), n, "requests in the back's log")
                check_eq(ch.requests("back"),
                         [("GET", "/item/%d" % item_of(k), 200) for k in range(n)],
                         "the back's log")
                time.sleep(1.0)  # let the last spans out
                agent.stop_and_check()
                self.spans = agent.snapshot()
        self.db_lookups = db_lookups(db, self.dbserver) - before
        check_eq(self.db_lookups, n, "%s lookups the database ran" % db)
        self.classify()

    def role(self, s):
        a, r = attrs(s), res(s)
        port, pid, kind = a.get("server.port"), r.get("process.pid"), s.get("kind")
        if kind == "CLIENT" and port == self.front_port and r.get("service.name") == "curl":
            return "curl"
        if kind == "SERVER" and port == self.front_port and pid in self.front_pids:
            return "front_srv"
        if kind == "CLIENT" and port == self.back_port and pid in self.front_pids:
            return "front_cli"
        if kind == "SERVER" and port == self.back_port and pid in self.back_pids:
            return "back_srv"
        if kind == "CLIENT" and port == self.dbserver.port and pid in self.back_pids:
            return "db"
        return None

    def classify(self):
        n = self.n
        curl_pid = {r[2]: k for k, r in enumerate(self.requests)}
        self.by_req = [{r: [] for r in ROLES} for _ in range(n)]
        self.strays = []  # spans of the chain's ports that belong to no request
        self.other = []  # spans with no role (e.g. the agent saw a pid we do not know)
        windows = [(r[3], r[4]) for r in self.requests]
        role_spans = []
        for s in self.spans:
            role = self.role(s)
            if role is None:
                self.other.append(s)
                continue
            if role == "curl":
                k = curl_pid.get(res(s).get("process.pid"))
                if k is None:
                    self.strays.append(s)
                    continue
                self.by_req[k]["curl"].append(s)
                windows[k] = (s["start_time_unix_nano"], s["end_time_unix_nano"])
            else:
                role_spans.append((role, s))
        for role, s in role_spans:
            mid = (s["start_time_unix_nano"] + s["end_time_unix_nano"]) // 2
            dist = [0 if a <= mid <= b else min(abs(mid - a), abs(mid - b)) for a, b in windows]
            k = min(range(n), key=dist.__getitem__)
            if dist[k] > 50_000_000:
                self.strays.append(s)
                continue
            self.by_req[k][role].append(s)
        # where every span id and every request's trace belong
        self.owner = {}  # span_id -> (request, role)
        for k, spans in enumerate(self.by_req):
            for role, lst in spans.items():
                for s in lst:
                    self.owner[s["span_id"]] = (k, role)
        self.curl_trace = {}  # trace_id -> request (from curl's spans)
        for k, spans in enumerate(self.by_req):
            for s in spans["curl"]:
                self.curl_trace[s["trace_id"]] = k

        self.counts = {role: sum(len(spans[role]) for spans in self.by_req) for role in ROLES}
        self.links = collections.Counter()  # (link, verdict)
        self.wrong = []  # descriptions
        self.missing = collections.Counter()  # link -> count
        self.problems = collections.Counter()  # span-level problems other than links
        self.complete = 0
        for k, spans in enumerate(self.by_req):
            if self.request_complete(k, spans):
                self.complete += 1

    def link(self, k, role, s, spans):
        """'ok', 'missing' or 'wrong' for span s of request k (tracecheck.link_verdict); records
        wrong ones."""
        parents = {p["span_id"]: p for p in spans[PARENT_ROLE[role]]}
        verdict, evidence = tracecheck.link_verdict(s, parents, self.curl_trace, k)
        if verdict == tracecheck.LINKED:
            return "ok"
        if verdict == tracecheck.ROOT:
            return "missing"
        what, value = evidence
        pid = s.get("parent_span_id")
        if what == "trace":
            self.wrong.append("request %d %s span %s has parent %s but trace %s, not its "
                              "parent's %s" % (k, role, s["span_id"], pid, s["trace_id"], value))
        elif what == "parent":
            where = self.owner.get(pid)
            self.wrong.append("request %d (item %d) %s span %s is a child of %s"
                              % (k, item_of(k), role, s["span_id"],
                                 "the %s span of request %d (item %d)" % (where[1], where[0],
                                                                          item_of(where[0]))
                                 if where else "span %s, which the agent never exported" % pid))
        else:
            self.wrong.append("request %d %s span %s is a root in request %d's trace %s"
                              % (k, role, s["span_id"], value, s["trace_id"]))
        return "wrong"

    def request_complete(self, k, spans):
        ok = True
        for role in ROLES:
            lst = spans[role]
            if role == "db":
                lookups = [s for s in lst if attrs(s).get("db.operation.name") == LOOKUP_OP[self.db]]
                if len(lookups) != 1:
                    self.problems["%d DB %s spans" % (len(lookups), LOOKUP_OP[self.db])] += 1
                    ok = False
            elif len(lst) != 1:
                self.problems["%d %s spans" % (len(lst), role)] += 1
                ok = False
            for s in lst:
                path = attrs(s).get("url.path")
                want_path = {"curl": "/api/item/%d", "front_srv": "/api/item/%d",
                             "front_cli": "/item/%d", "back_srv": "/item/%d"}.get(role)
                if want_path and path != want_path % item_of(k):
                    self.wrong.append("request %d (item %d) got %s span with url.path %r"
                                      % (k, item_of(k), role, path))
                    self.links[(role, "wrong")] += 1
                    ok = False
                if role == "curl":
                    if s.get("parent_span_id"):
                        self.wrong.append("curl span %s has parent %s" % (s["span_id"],
                                                                         s["parent_span_id"]))
                        ok = False
                    continue
                verdict = self.link(k, role, s, spans)
                self.links[(role, verdict)] += 1
                if verdict == "missing":
                    self.missing[LINK_NAME[role]] += 1
                ok = ok and verdict == "ok"
        if ok:  # the trace holds exactly this request's spans
            trace = spans["curl"][0]["trace_id"]
            mine = {s["span_id"] for lst in spans.values() for s in lst}
            in_trace = {s["span_id"] for s in self.spans if s.get("trace_id") == trace}
            if in_trace != mine:
                self.wrong.append("request %d's trace %s has %d spans, want its own %d"
                                  % (k, trace, len(in_trace), len(mine)))
                ok = False
        return ok

    def n_wrong(self):
        return len(self.wrong)

    def summary(self):
        miss = ", ".join("%s %d" % kv for kv in sorted(self.missing.items())) or "-"
        probs = ", ".join("%s ×%d" % kv for kv in sorted(self.problems.items()))
        return ("%s+%s: complete %d/%d; spans curl %d front SERVER %d front CLIENT %d back SERVER "
                "%d DB %d (server logs %d/%d, %s lookups %d); missing links: %s; wrong links: %d%s%s"
                % (self.stack, self.db, self.complete, self.n, self.counts["curl"],
                   self.counts["front_srv"], self.counts["front_cli"], self.counts["back_srv"],
                   self.counts["db"], self.n, self.n, self.db, self.db_lookups, miss,
                   self.n_wrong(), "; " + probs if probs else "",
                   "; strays %d" % len(self.strays) if self.strays else ""))

    def record(self):
        _table.append(("%s+%s" % (self.stack, self.db), self.complete, self.n,
                       ", ".join("%s %d" % kv for kv in sorted(self.missing.items())) or "-",
                       self.n_wrong()))
        print("  " + self.summary(), flush=True)

    def check_spans_match_servers(self):
        """One span per request and role, the DB lookups as many as the database ran."""
        for role in ("curl", "front_srv", "front_cli", "back_srv"):
            check_eq(self.counts[role], self.n, "%s spans (%s)" % (role, self.summary()))
        lookups = sum(1 for spans in self.by_req for s in spans["db"]
                      if attrs(s).get("db.operation.name") == LOOKUP_OP[self.db])
        check_eq(lookups, self.db_lookups, "DB %s spans vs the database's count (%s)"
                 % (LOOKUP_OP[self.db], self.summary()))
        check(not self.strays, "%d spans on the chain's ports outside every request: %s"
              % (len(self.strays), [(s["kind"], s["name"], attrs(s).get("url.path"))
                                    for s in self.strays[:5]]))

    def check_no_wrong_links(self):
        check(not self.wrong, "%d wrong links (%s): %s" % (len(self.wrong), self.summary(),
                                                          "; ".join(self.wrong[:6])))

    def check_pairing_exact(self):
        for role in PAIRING:
            check_eq(self.links[(role, "ok")], self.n,
                     "%s links (pairing) (%s)" % (LINK_NAME[role], self.summary()))

    def check_link_exact(self, role):
        check_eq(self.links[(role, "ok")], self.counts[role],
                 "%s links (%s)" % (LINK_NAME[role], self.summary()))


def chain_test(stack, db, exact=True, exact_db_link=True):
    need(stack, db)
    run = Run(stack, db, N)
    run.record()
    run.check_spans_match_servers()
    run.check_no_wrong_links()
    run.check_pairing_exact()
    if exact:
        run.check_link_exact("front_cli")
        if exact_db_link:
            run.check_link_exact("db")
            check_eq(run.complete, N, "complete traces (%s)" % run.summary())


@test
def flask_redis_traces_complete():
    chain_test("flask", "redis")


@test
def flask_postgres_traces_complete():
    chain_test("flask", "postgres")


@test
def rust_redis_traces_complete():
    chain_test("rust", "redis")


@test
def rust_postgres_traces_complete():
    chain_test("rust", "postgres")


@test
def fastapi_redis_traces_complete():
    chain_test("fastapi", "redis")


@test
def fastapi_postgres_traces_complete():
    # psycopg2 runs in asyncio.to_thread's worker, a thread serving nothing itself: linked through
    # the process's only server request in flight
    chain_test("fastapi", "postgres")


@test
def node_redis_traces_complete():
    chain_test("node", "redis")


@test
def node_postgres_traces_complete():
    chain_test("node", "postgres")


# Database calls run on the handler's goroutine, which the agent follows across OS threads (r14 = g
# at each syscall); net/http's client writes from the connection's writeLoop goroutine, linked
# through the process's only server request in flight.
@test
def go_redis_traces_complete():
    chain_test("go", "redis")


@test
def go_postgres_traces_complete():
    chain_test("go", "postgres")


def exact_stack():
    for stack in ("flask", "rust"):
        if chain.available(stack, "redis")[0]:
            return stack
    lib.skip("neither flask nor rust is available here")


@test
def traceparent_joins_whole_chain():
    stack = exact_stack()
    need(stack, "redis")
    tps = {}

    def headers_for(k):
        if k % 2:
            return ()
        tps[k] = ("%032x" % random.getrandbits(128), "%016x" % random.getrandbits(64))
        return ["traceparent: 00-%s-%s-01" % tps[k]]

    run = Run(stack, "redis", 6, headers_for=headers_for)
    check_eq(len(tps), 3, "requests with a traceparent")
    for k, spans in enumerate(run.by_req):
        for role in ("front_srv", "front_cli", "back_srv", "db"):
            check_eq(len(spans[role]), 1, "request %d %s spans" % (k, role))
        fs = spans["front_srv"][0]
        if k in tps:
            trace, parent = tps[k]
            check_eq(fs["trace_id"], trace, "request %d front SERVER trace_id (traceparent)" % k)
            check_eq(fs["parent_span_id"], parent,
                     "request %d front SERVER parent_span_id (traceparent wins over pairing)" % k)
            check(fs["span_id"] != parent, "front SERVER reused the traceparent's span id")
        else:
            check_eq(len(spans["curl"]), 1, "request %d curl spans" % k)
            check_eq(fs["parent_span_id"], spans["curl"][0]["span_id"],
                     "request %d (no traceparent) front SERVER parent" % k)
            check(fs["trace_id"] not in [t for t, _ in tps.values()],
                  "a request without traceparent joined a traceparent's trace")
        trace = fs["trace_id"]
        chain_spans = [spans[r][0] for r in ("front_srv", "front_cli", "back_srv", "db")]
        for parent, child in zip(chain_spans, chain_spans[1:]):
            what = "request %d %s %s" % (k, child["kind"], attrs(child).get("url.path")
                                         or attrs(child).get("db.operation.name"))
            check_eq(child["trace_id"], trace, what + " trace_id")
            check_eq(child["parent_span_id"], parent["span_id"], what + " parent_span_id")
    # the traces of the traceparent requests hold exactly their chain (curl's span aside)
    for k, (trace, _) in tps.items():
        mine = {run.by_req[k][r][0]["span_id"] for r in ("front_srv", "front_cli", "back_srv",
                                                         "db")}
        in_trace = {s["span_id"] for s in run.spans if s["trace_id"] == trace}
        check(mine <= in_trace and not (in_trace - mine - {s["span_id"]
                                                           for s in run.by_req[k]["curl"]}),
              "trace %s holds %d spans, want request %d's chain" % (trace, len(in_trace), k))
    check_eq(len({run.by_req[k]["front_srv"][0]["trace_id"] for k in range(run.n)}), run.n,
             "distinct traces for %d requests" % run.n)


@test
def sampling_keeps_or_drops_whole_traces():
    stack = exact_stack()
    need(stack, "redis")
    n = 40
    run = Run(stack, "redis", n, agent_env={"OTEL_TRACES_SAMPLER": "traceidratio",
                                            "OTEL_TRACES_SAMPLER_ARG": "0.5"})
    kept, dropped, partial = [], [], []
    for k, spans in enumerate(run.by_req):
        have = [r for r in ROLES if spans[r]]
        if len(have) == len(ROLES):
            kept.append(k)
        elif not have:
            dropped.append(k)
        else:
            partial.append("request %d has only %s" % (k, have))
    print("  sampling %s+redis ratio 0.5: %d requests, %d traces kept whole, %d dropped whole, "
          "%d partial; complete %d; wrong links %d"
          % (stack, n, len(kept), len(dropped), len(partial), run.complete, run.n_wrong()),
          flush=True)
    check(not run.strays, "%d spans outside every request" % len(run.strays))
    check(not partial, "%d partial traces: %s" % (len(partial), "; ".join(partial[:5])))
    check(kept and dropped, "ratio 0.5 over %d traces kept %d, dropped %d"
          % (n, len(kept), len(dropped)))
    run.check_no_wrong_links()
    check_eq(run.complete, len(kept), "kept traces with the complete shape (%s)" % run.summary())
    # every kept trace is whole: no other span of the run shares its trace id
    by_trace = collections.Counter(s["trace_id"] for s in run.spans)
    for k in kept:
        trace = run.by_req[k]["curl"][0]["trace_id"]
        want = sum(len(v) for v in run.by_req[k].values())
        check_eq(by_trace[trace], want, "spans in kept trace %s" % trace)


def print_table():
    if not _table:
        return
    print("connected traces (N=%d sequential requests per chain):" % N)
    print("  %-18s | %-11s | %-40s | %s" % ("stack", "complete/N", "missing links", "wrong links"))
    for name, complete, n, missing, wrong in _table:
        print("  %-18s | %-11s | %-40s | %d" % (name, "%d/%d" % (complete, n), missing, wrong))


if __name__ == "__main__":
    try:
        status = lib.run_tests()
    finally:
        for d in _databases.values():
            d.stop()
    print_table()
    sys.exit(status)
