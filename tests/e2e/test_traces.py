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

Every stack must produce zero wrong links and exact pairing. Stacks where the kernel shows which
request a call serves must also produce N complete traces: flask and rust (a thread per request),
node (a handler runs in the loop iteration that read its request), Go (the goroutine followed
across threads; net/http's client writes from its connection's writeLoop goroutine, which uprobes
name after the calling goroutine). fastapi's calls run in later loop iterations (asyncio), linked
while nothing else can run in them (at least half of them must be: traces_lib.NOT_EXACT), or in a
worker thread (asyncio.to_thread, the postgres back), whose calls are roots, never guesses. Pairing links do not depend on threads. Also: an incoming traceparent wins and the whole chain
joins its trace; and traceidratio sampling keeps or drops whole traces.
"""

import collections
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import chain  # noqa: E402
import lib  # noqa: E402
from lib import attrs, check, check_eq, test  # noqa: E402
from traces_lib import ROLES, Run, need  # noqa: E402
import traces_lib  # noqa: E402

N = 20


def chain_test(stack, db, exact=None, exact_db_link=True):
    need(stack, db)
    run = Run(stack, db, N)
    run.record()
    run.check_chain(exact, exact_db_link)


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
    # psycopg2 runs in asyncio.to_thread's worker, a thread serving nothing itself: a root (the
    # process's only request in flight is not proof that the worker works for it)
    chain_test("fastapi", "postgres", exact_db_link=False)


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
    _table = traces_lib._table
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
        traces_lib.stop_databases()
    print_table()
    sys.exit(status)
