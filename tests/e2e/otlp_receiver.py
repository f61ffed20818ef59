#!/usr/bin/python3
"""otlp_receiver.py — an OTLP/HTTP receiver for the end-to-end tests (stdlib only).

Run:  /usr/bin/python3 tests/e2e/otlp_receiver.py --port N --dir DIR [--fail-mode MODE]

Accepts POST /v1/traces, /v1/metrics and /v1/logs, gunzips Content-Encoding: gzip bodies,
stores each body as DIR/traces-000001.pb / DIR/metrics-000001.pb, appends one
line per request to DIR/requests.log and answers 200 with an empty protobuf
body. POST /control?mode=ok|503|429|400|500|slow switches the answer (503 and 429
carry Retry-After: 1; slow sleeps 5 s, then answers 200). GET /health answers 200.

Importable: decode_dir(DIR, "traces") decodes every stored body with
`protoc --decode` against the official protos in <repo>/../shared/otlp-proto
(an independent decoder) and returns a list of span dicts; decode_dir(DIR,
"metrics") returns metric dicts. Without the official protos they decode with the
repository's own proto/otlp.proto (same field names and numbers), so the counts
are still checked and only the independent-schema check is skipped; None when
protoc is missing.
"""

import argparse
import gzip
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

MODES = ("ok", "503", "429", "400", "500", "slow")
MAX_BODY = 64 << 20
HEADERS_OF_INTEREST = ("Content-Type", "Content-Encoding", "User-Agent", "X-Test",
                       "Authorization", "Api-Key")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIGNALS = {
    "traces": ("opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest",
               "opentelemetry/proto/collector/trace/v1/trace_service.proto"),
    "metrics": ("opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest",
                "opentelemetry/proto/collector/metrics/v1/metrics_service.proto"),
    "logs": ("opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest",
             "opentelemetry/proto/collector/logs/v1/logs_service.proto"),
}
# the repository's own wire-compatible subset (proto/otlp.proto): the fallback decoder
OWN_SIGNALS = {
    "traces": ("periscope.otlp.ExportTraceServiceRequest", "otlp.proto"),
    "metrics": ("periscope.otlp.ExportMetricsServiceRequest", "otlp.proto"),
    "logs": ("periscope.otlp.ExportLogsServiceRequest", "otlp.proto"),
}


class ReceiverState:
    def __init__(self, directory, mode):
        self.dir = directory
        self.mode = mode
        self.lock = threading.Lock()
        self.counters = {"traces": 0, "metrics": 0, "logs": 0}

    def next_path(self, signal):
        with self.lock:
            self.counters[signal] += 1
            return os.path.join(self.dir, "%s-%06d.pb" % (signal, self.counters[signal]))

    def log(self, line):
        with self.lock:
            with open(os.path.join(self.dir, "requests.log"), "a") as f:
                f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporter expects
    server_version = "otlp-receiver/1"

    def log_message(self, fmt, *args):  # quiet: requests.log is the record
        pass

    def _answer(self, status, body=b"", extra=None):
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length)

    def do_GET(self):
        if urlparse(self.path).path == "/health":
            self._answer(200, b"ok\n")
        else:
            self._answer(404)

    def do_POST(self):
        state = self.server.state
        url = urlparse(self.path)
        try:
            raw = self._read_body()
        except (ValueError, OSError):
            self._answer(400)
            return
        if url.path == "/control":
            mode = parse_qs(url.query).get("mode", [""])[0]
            if mode not in MODES:
                self._answer(400, b"unknown mode\n")
                return
            with state.lock:
                state.mode = mode
            state.log("control mode=%s" % mode)
            self._answer(200, b"ok\n")
            return
        signal = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}.get(url.path)
        if signal is None:
            self._answer(404)
            return
        headers = " ".join("%s=%r" % (h, self.headers[h]) for h in HEADERS_OF_INTEREST
                           if self.headers.get(h) is not None)
        with state.lock:
            mode = state.mode
        if mode == "slow":
            time.sleep(5)
        status = {"503": 503, "429": 429, "400": 400, "500": 500}.get(mode, 200)
        if status != 200:
            state.log("%s status=%d bytes=%d %s" % (url.path, status, len(raw), headers))
            extra = {"Retry-After": "1"} if status in (503, 429) else None
            self._answer(status, b"", extra)
            return
        body = raw
        if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
            try:
                body = gzip.decompress(raw)
            except (OSError, EOFError):
                state.log("%s status=400 bytes=%d bad-gzip %s" % (url.path, len(raw), headers))
                self._answer(400)
                return
        path = state.next_path(signal)
        with open(path + ".tmp", "wb") as f:
            f.write(body)
        os.rename(path + ".tmp", path)
        state.log("%s status=200 bytes=%d decoded=%d file=%s %s"
                  % (url.path, len(raw), len(body), os.path.basename(path), headers))
        self._answer(200)  # an empty Export*ServiceResponse


def shared_proto_dir():
    """<repo>/../shared/otlp-proto, or None."""
    d = os.path.join(os.path.dirname(REPO_ROOT), "shared", "otlp-proto")
    probe = os.path.join(d, SIGNALS["traces"][1])
    return d if os.path.isfile(probe) else None


def protoc_decode(body, signal, proto_dir, signals=SIGNALS):
    msg, proto = signals[signal]
    out = subprocess.run(["protoc", "--decode=" + msg, "-I", proto_dir, proto],
                         input=body, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         check=True, timeout=30)
    return out.stdout.decode("utf-8", "replace")


# ---- a small parser for protoc's text format ----

_TOKEN = re.compile(r'\s*(?:(\})|([A-Za-z_][A-Za-z0-9_]*)\s*(\{|:\s*("(?:[^"\\]|\\.)*"|[^\s{}]+)))')


def _unescape(s):
    """protoc's C-escaped string literal (without quotes) to bytes."""
    out = bytearray()
    i = 0
    simple = {"n": 10, "r": 13, "t": 9, '"': 34, "'": 39, "\\": 92, "a": 7, "b": 8,
              "f": 12, "v": 11, "?": 63}
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        n = s[i + 1]
        if n in simple:
            out.append(simple[n])
            i += 2
        elif n in "01234567":
            j = i + 1
            while j < len(s) and j < i + 4 and s[j] in "01234567":
                j += 1
            out.append(int(s[i + 1:j], 8) & 0xff)
            i = j
        elif n == "x":
            j = i + 2
            while j < len(s) and j < i + 4 and s[j] in "0123456789abcdefABCDEF":
                j += 1
            out.append(int(s[i + 2:j], 16))
            i = j
        else:
            out += n.encode("utf-8")
            i += 2
    return bytes(out)


def parse_text(text):
    """protoc text format -> nested dict; every field maps to a list of values."""
    root = {}
    stack = [root]
    pos = 0
    while True:
        m = _TOKEN.match(text, pos)
        if not m:
            break
        pos = m.end()
        if m.group(1):
            stack.pop()
            continue
        name = m.group(2)
        if m.group(3) == "{":
            child = {}
            stack[-1].setdefault(name, []).append(child)
            stack.append(child)
            continue
        raw = m.group(4)
        if raw.startswith('"'):
            value = _unescape(raw[1:-1])
        else:
            try:
                value = int(raw)
            except ValueError:
                try:
                    value = float(raw)
                except ValueError:
                    value = {"true": True, "false": False}.get(raw, raw)
        stack[-1].setdefault(name, []).append(value)
    return root


def _first(msg, name, default=None):
    v = msg.get(name)
    return v[0] if v else default


def _any_value(v):
    if not v:
        return None
    for key in ("string_value", "bytes_value"):
        if key in v:
            b = v[key][0]
            return b.decode("utf-8", "replace") if key == "string_value" else b
    for key in ("int_value", "double_value", "bool_value"):
        if key in v:
            return v[key][0]
    if "array_value" in v:
        return [_any_value(x) for x in v["array_value"][0].get("values", [])]
    if "kvlist_value" in v:
        return _attributes(v["kvlist_value"][0].get("values", []))
    return None


def _attributes(kvs):
    return {_first(kv, "key", b"").decode("utf-8", "replace"): _any_value(_first(kv, "value", {}))
            for kv in kvs}


def _hex(b):
    return b.hex() if isinstance(b, bytes) else ""


def _spans(request):
    spans = []
    for rs in request.get("resource_spans", []):
        res_attrs = _attributes(_first(rs, "resource", {}).get("attributes", []))
        for ss in rs.get("scope_spans", []):
            scope = _first(ss, "scope", {})
            for sp in ss.get("spans", []):
                status = _first(sp, "status", {})
                spans.append({
                    "trace_id": _hex(_first(sp, "trace_id", b"")),
                    "span_id": _hex(_first(sp, "span_id", b"")),
                    "parent_span_id": _hex(_first(sp, "parent_span_id", b"")),
                    "name": _first(sp, "name", b"").decode("utf-8", "replace"),
                    "kind": _first(sp, "kind", "SPAN_KIND_UNSPECIFIED"),
                    "start_time_unix_nano": _first(sp, "start_time_unix_nano", 0),
                    "end_time_unix_nano": _first(sp, "end_time_unix_nano", 0),
                    "flags": _first(sp, "flags", 0),
                    "trace_state": _first(sp, "trace_state", b"").decode("utf-8", "replace"),
                    "status_code": _first(status, "code", "STATUS_CODE_UNSET"),
                    "status_message": _first(status, "message", b"").decode("utf-8", "replace"),
                    "attributes": _attributes(sp.get("attributes", [])),
                    "resource": res_attrs,
                    "scope": _first(scope, "name", b"").decode("utf-8", "replace"),
                })
    return spans


def _logs(request):
    logs = []
    for rl in request.get("resource_logs", []):
        res_attrs = _attributes(_first(rl, "resource", {}).get("attributes", []))
        for sl in rl.get("scope_logs", []):
            for lr in sl.get("log_records", []):
                logs.append({
                    "trace_id": _hex(_first(lr, "trace_id", b"")),
                    "span_id": _hex(_first(lr, "span_id", b"")),
                    "time_unix_nano": _first(lr, "time_unix_nano", 0),
                    "severity_number": _first(lr, "severity_number", "SEVERITY_NUMBER_UNSPECIFIED"),
                    "severity_text": _first(lr, "severity_text", b"").decode("utf-8", "replace"),
                    "body": _any_value(_first(lr, "body", {})),
                    "flags": _first(lr, "flags", 0),
                    "attributes": _attributes(lr.get("attributes", [])),
                    "resource": res_attrs,
                })
    return logs


def _points(points):
    out = []
    for p in points:
        d = {"attributes": _attributes(p.get("attributes", [])),
             "time_unix_nano": _first(p, "time_unix_nano", 0),
             "start_time_unix_nano": _first(p, "start_time_unix_nano", 0)}
        for key in ("as_int", "as_double", "count", "sum", "min", "max"):
            if key in p:
                d[key] = p[key][0]
        if "bucket_counts" in p:
            d["bucket_counts"] = list(p["bucket_counts"])
        if "explicit_bounds" in p:
            d["explicit_bounds"] = list(p["explicit_bounds"])
        out.append(d)
    return out


def _metrics(request):
    metrics = []
    for rm in request.get("resource_metrics", []):
        res_attrs = _attributes(_first(rm, "resource", {}).get("attributes", []))
        for sm in rm.get("scope_metrics", []):
            for m in sm.get("metrics", []):
                d = {"name": _first(m, "name", b"").decode("utf-8", "replace"),
                     "unit": _first(m, "unit", b"").decode("utf-8", "replace"),
                     "description": _first(m, "description", b"").decode("utf-8", "replace"),
                     "resource": res_attrs}
                for kind in ("gauge", "sum", "histogram"):
                    if kind in m:
                        body = m[kind][0]
                        d["type"] = kind
                        d["temporality"] = _first(body, "aggregation_temporality", None)
                        d["is_monotonic"] = _first(body, "is_monotonic", False)
                        d["points"] = _points(body.get("data_points", []))
                metrics.append(d)
    return metrics


def decode_dir(directory, signal="traces", official_only=False):
    """All spans (signal "traces") or metrics ("metrics") stored in directory,
    in file order, decoded by protoc with the official protos; without them (and
    unless official_only) with the repository's own proto/otlp.proto. None when
    protoc or the protos are absent."""
    proto_dir, signals = shared_proto_dir(), SIGNALS
    if proto_dir is None and not official_only:
        proto_dir, signals = os.path.join(REPO_ROOT, "proto"), OWN_SIGNALS
    if proto_dir is None or shutil.which("protoc") is None:
        return None
    result = []
    names = sorted(n for n in os.listdir(directory)
                   if n.startswith(signal + "-") and n.endswith(".pb"))
    for name in names:
        with open(os.path.join(directory, name), "rb") as f:
            text = protoc_decode(f.read(), signal, proto_dir, signals)
        request = parse_text(text)
        result.extend(_spans(request) if signal == "traces" else
                      _logs(request) if signal == "logs" else _metrics(request))
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--dir", required=True)
    ap.add_argument("--fail-mode", default="ok", choices=MODES)
    args = ap.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    server_class = ThreadingHTTPServer
    if ":" in args.host:  # an IPv6 address
        server_class = type("ThreadingHTTPServer6", (ThreadingHTTPServer,),
                            {"address_family": socket.AF_INET6})
    server = server_class((args.host, args.port), Handler)
    server.daemon_threads = True
    server.state = ReceiverState(args.dir, args.fail_mode)
    print("otlp_receiver listening on %s:%d" % (args.host, server.server_address[1]), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
