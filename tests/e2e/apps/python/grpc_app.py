#!/usr/bin/python3
"""grpc_app.py — a gRPC server and client with Python grpcio, no generated code: generic handlers
with raw-bytes (identity) serializers. Service demo.Echo with Unary, ServerStream, ClientStream,
Bidi. The request bytes steer the handler: b"ok", b"abort:<code>" (abort with that status code),
b"sleep:<seconds>" (sleep, then answer), b"n:<count>" (server streaming count messages).

  grpc_app.py server PORT LOG           serve; one line per finished call in LOG:
                                         "<method> <status name>"
  grpc_app.py client PORT SCRIPT        run the calls of SCRIPT (JSON list) over one channel;
                                         prints one JSON line per call: {"method", "code"}
  grpc_app.py loop PORT N               N unary calls on one channel (load), prints µs per call
  grpc_app.py longlived PORT FIFO       opens the channel, makes one call, then one unary call
                                         per line read from FIFO (late-join tests)
"""
import json
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "demo.Echo"
ident = None  # raw bytes in and out


def _log(path, lock, line):
    with lock:
        with open(path, "a") as f:
            f.write(line + "\n")


def _act(req, context):
    if req.startswith(b"abort:"):
        code = int(req[6:])
        context.abort(next(c for c in grpc.StatusCode if c.value[0] == code), "aborted on request")
    if req.startswith(b"sleep:"):
        time.sleep(float(req[6:]))
    return b"pong:" + req


def server(port, log):
    lock = threading.Lock()

    def wrap(name, fn):
        def handler(req_or_iter, context):
            st = {"code": None}

            def on_end():  # the call ended, however
                code = st["code"]
                if code is None:
                    rem = context.time_remaining()
                    code = "DEADLINE_EXCEEDED" if rem is not None and rem <= 0.05 else "CANCELLED"
                _log(log, lock, "%s %s" % (name, code))
            context.add_callback(on_end)
            try:
                out = fn(req_or_iter, context)
            except Exception:
                st["code"] = context.code().name if context.code() else "UNKNOWN"
                raise
            if context.is_active():
                st["code"] = "OK"
            return out
        return handler

    def unary(req, context):
        return _act(req, context)

    def server_stream(req, context):
        if req.startswith(b"abort:"):
            _act(req, context)
        n = int(req[2:]) if req.startswith(b"n:") else 3
        return iter([b"item%d" % i for i in range(n)])

    def client_stream(it, context):
        msgs = list(it)
        if msgs and msgs[-1].startswith(b"abort:"):
            _act(msgs[-1], context)
        return b"got:%d" % len(msgs)

    def bidi(it, context):
        out = []
        for m in it:
            if m.startswith(b"abort:") or m.startswith(b"sleep:"):
                _act(m, context)
            out.append(b"echo:" + m)
        return iter(out)

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(wrap("Unary", unary), ident, ident),
        "ServerStream": grpc.unary_stream_rpc_method_handler(wrap("ServerStream", server_stream),
                                                             ident, ident),
        "ClientStream": grpc.stream_unary_rpc_method_handler(wrap("ClientStream", client_stream),
                                                             ident, ident),
        "Bidi": grpc.stream_stream_rpc_method_handler(wrap("Bidi", bidi), ident, ident),
    }
    srv = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    srv.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    srv.add_insecure_port("127.0.0.1:%d" % port)
    srv.start()
    print("ready", flush=True)
    srv.wait_for_termination()


def call(ch, spec):
    """spec: {"m": method, "req": str or list, "timeout": s, "cancel_after": s}"""
    m = spec["m"]
    path = "/%s/%s" % (SERVICE, m)
    req = spec.get("req", "ok")
    timeout = spec.get("timeout")
    code = "OK"
    try:
        if m == "Unary":
            f = ch.unary_unary(path, ident, ident).future(req.encode(), timeout=timeout)
        elif m == "ServerStream":
            f = ch.unary_stream(path, ident, ident)(req.encode(), timeout=timeout)
        elif m == "ClientStream":
            f = ch.stream_unary(path, ident, ident).future(iter([r.encode() for r in req]),
                                                           timeout=timeout)
        else:
            f = ch.stream_stream(path, ident, ident)(iter([r.encode() for r in req]),
                                                     timeout=timeout)
        if spec.get("cancel_after"):
            time.sleep(spec["cancel_after"])
            f.cancel()
        if m in ("ServerStream", "Bidi"):
            for _ in f:
                pass
        else:
            f.result()
    except grpc.RpcError as e:
        code = e.code().name
    except grpc.FutureCancelledError:
        code = "CANCELLED"
    return code


def client(port, script):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        for spec in json.loads(script):
            print(json.dumps({"m": spec["m"], "code": call(ch, spec)}), flush=True)


def loop(port, n):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        stub = ch.unary_unary("/%s/Unary" % SERVICE, ident, ident)
        stub(b"ok")
        t0 = time.monotonic()
        for _ in range(n):
            stub(b"ok")
        print(json.dumps({"calls": n, "seconds": time.monotonic() - t0}), flush=True)


def longlived(port, fifo):
    with grpc.insecure_channel("127.0.0.1:%d" % port) as ch:
        print(json.dumps({"m": "Unary", "code": call(ch, {"m": "Unary"})}), flush=True)
        with open(fifo) as f:
            for line in f:
                spec = json.loads(line)
                print(json.dumps({"m": spec["m"], "code": call(ch, spec)}), flush=True)


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "server":
        server(port, sys.argv[3])
    elif mode == "client":
        client(port, sys.argv[3])
    elif mode == "loop":
        loop(port, int(sys.argv[3]))
    else:
        longlived(port, sys.argv[3])
