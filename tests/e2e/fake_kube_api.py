"""fake_kube_api.py — a local stand-in for the Kubernetes API's /api/v1/pods, list + watch, for the
container e2e tests. Pods are kept as JSON objects; a watch streams events as chunked JSON lines
(ADDED/MODIFIED/DELETED, BOOKMARK every `bookmark_s`), honours timeoutSeconds, and can be made to
misbehave: answer 410 (`gone_next`), send garbage (`garbage_next`), a huge list (`huge_list_bytes`),
answer slowly (`slow_s`), drop watch connections (`drop_watches`), or be down (stop()/start() on
the same port). Every request is recorded (method, path, time). Standard library only."""

import http.server
import json
import socket
import threading
import time
import urllib.parse


def make_pod(name, uid, namespace="shop", node="node-e2e-1", labels=None, annotations=None,
             owner=None, containers=(("web", None, None),), rv="1"):
    """A Pod object. containers: (name, container id or None, OTEL_SERVICE_NAME or None)."""
    spec_containers, statuses = [], []
    for cname, cid, svc in containers:
        c = {"name": cname, "image": "registry.example/x:1"}
        if svc:
            c["env"] = [{"name": "OTEL_SERVICE_NAME", "value": svc}]
        spec_containers.append(c)
        if cid:
            statuses.append({"name": cname, "containerID": "containerd://" + cid, "ready": True})
    meta = {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": rv,
            "labels": dict(labels or {}), "annotations": dict(annotations or {})}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner[0], "name": owner[1],
                                    "uid": "owner-uid", "controller": True}]
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta,
            "spec": {"nodeName": node, "containers": spec_containers},
            "status": {"phase": "Running", "containerStatuses": statuses}}


class FakeKubeAPI:
    def __init__(self, port, bookmark_s=2.0):
        self.port = port
        self.bookmark_s = bookmark_s
        self.lock = threading.Condition()
        self.pods = {}  # uid -> pod
        self.rv = 100
        self.events = []  # (rv, type, pod)
        self.requests = []  # (time, kind "list"|"watch", path)
        self.gone_next = False
        self.garbage_next = False
        self.huge_list_bytes = 0
        self.slow_s = 0.0
        self.drop_watches = False
        self.server = None
        self.thread = None
        self.start()

    # ---- state
    def put(self, pod):
        with self.lock:
            self.rv += 1
            pod["metadata"]["resourceVersion"] = str(self.rv)
            uid = pod["metadata"]["uid"]
            kind = "MODIFIED" if uid in self.pods else "ADDED"
            self.pods[uid] = pod
            self.events.append((self.rv, kind, pod))
            self.lock.notify_all()

    def delete(self, uid):
        with self.lock:
            pod = self.pods.pop(uid, None)
            if pod is None:
                return
            self.rv += 1
            self.events.append((self.rv, "DELETED", pod))
            self.lock.notify_all()

    def count(self, kind=None, since=0.0):
        with self.lock:
            return sum(1 for t, k, _ in self.requests if (kind is None or k == kind) and t >= since)

    # ---- server
    def start(self):
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if api.server is None:  # down: connections kept alive die too
                    self.close_connection = True
                    return
                u = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(u.query)
                if u.path != "/api/v1/pods":
                    self.send_error(404)
                    return
                watch = q.get("watch", ["0"])[0] in ("1", "true")
                with api.lock:
                    api.requests.append((time.time(), "watch" if watch else "list", self.path))
                if api.slow_s:
                    time.sleep(api.slow_s)
                if watch:
                    self.watch(q)
                else:
                    self.list()

            def send_body(self, status, body):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def list(self):
                if api.garbage_next:
                    api.garbage_next = False
                    self.send_body(200, b'{"kind":"PodList","items":[{"metadata":{"uid"::}]')
                    return
                if api.huge_list_bytes:
                    self.huge(api.huge_list_bytes)
                    return
                with api.lock:
                    body = json.dumps({"kind": "PodList", "apiVersion": "v1",
                                       "metadata": {"resourceVersion": str(api.rv)},
                                       "items": list(api.pods.values())}).encode()
                self.send_body(200, body)

            def huge(self, n):
                """A list whose one pod has a label of n bytes, streamed."""
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(n + 200))
                self.end_headers()
                head = b'{"kind":"PodList","metadata":{"resourceVersion":"1"},"items":[{"metadata":' \
                       b'{"uid":"u","labels":{"x":"'
                try:
                    self.wfile.write(head)
                    chunk = b"a" * 65536
                    sent = 0
                    while sent < n:
                        self.wfile.write(chunk)
                        sent += len(chunk)
                    self.wfile.write(b'"}}}]}' + b" " * 200)
                except OSError:
                    pass

            def chunk(self, data):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()

            def watch(self, q):
                if api.gone_next:
                    api.gone_next = False
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    err = {"type": "ERROR", "object": {"kind": "Status", "code": 410,
                                                       "reason": "Expired",
                                                       "message": "too old resource version"}}
                    self.chunk(json.dumps(err).encode() + b"\n")
                    self.wfile.write(b"0\r\n\r\n")
                    return
                since = int(q.get("resourceVersion", ["0"])[0] or 0)
                timeout = float(q.get("timeoutSeconds", ["300"])[0])
                end = time.time() + timeout
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                last_bookmark = time.time()
                try:
                    while time.time() < end and api.server is not None:
                        with api.lock:
                            new = [(rv, t, p) for rv, t, p in api.events if rv > since]
                            if not new:
                                api.lock.wait(0.2)
                                new = [(rv, t, p) for rv, t, p in api.events if rv > since]
                            garbage = api.garbage_next
                            api.garbage_next = False
                            drop = api.drop_watches
                            cur_rv = api.rv
                        if drop:
                            self.wfile.write(b"5\r\n{\"typ")  # a partial chunk, then close
                            self.wfile.flush()
                            self.close_connection = True
                            return
                        if garbage:
                            self.chunk(b"this is not json\n")
                        for rv, t, p in new:
                            self.chunk(json.dumps({"type": t, "object": p}).encode() + b"\n")
                            since = rv
                        if time.time() - last_bookmark >= api.bookmark_s:
                            bm = {"type": "BOOKMARK",
                                  "object": {"kind": "Pod", "metadata":
                                             {"resourceVersion": str(cur_rv)}}}
                            self.chunk(json.dumps(bm).encode() + b"\n")
                            since = max(since, cur_rv)
                            last_bookmark = time.time()
                    self.wfile.write(b"0\r\n\r\n")
                    if api.server is None:
                        self.close_connection = True
                except OSError:
                    pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def server_bind(self):
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                super().server_bind()

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        """Down: the listening socket is closed and open watches end."""
        srv, self.server = self.server, None
        if srv:
            srv.shutdown()
            srv.server_close()
        with self.lock:
            self.lock.notify_all()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port
