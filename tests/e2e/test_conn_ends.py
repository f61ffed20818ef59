#!/usr/bin/python3
"""test_conn_ends.py — end-to-end: how a connection ended, told apart on both capture paths.

With the socket tracepoints (the default on Linux >= 6.3) a connection ends when its socket is
destroyed (tcp:tcp_destroy_sock: its last fd closed and TCP done with it), so close() runs no
program of the agent's; on the syscall-exit path (--syscall-data, older kernels) it ends at
close(). Both must give every unanswered request the same end. A raw Python server (one
connection at a time) and a raw client in this process, both traced:

- /drop: the server reads the request and closes without an answer. SERVER span: no_response
  (this side closed); CLIENT span: connection_closed (the peer's FIN).
- /abort: the server reads the request, the client sends a second one the server never reads,
  and the server closes: unread data makes its close a reset. SERVER span: no_response (its
  own reset is no peer's reset); CLIENT span of /abort: connection_reset.
- /wait-eof: the server reads the request, the client gives up and closes, the server closes
  after the end of stream. SERVER span: connection_closed; CLIENT span: timeout.
- /fork (a second server that forks per connection; the parent closes its copy of the socket
  at once, the child answers after it): exactly one SERVER and one CLIENT span, 200, no error
  span (the socket outlives the parent's close).
"""

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lib  # noqa: E402
from lib import Agent, attrs, check, check_eq, free_port, test  # noqa: E402
from servers import wait_listening  # noqa: E402

PY = "/usr/bin/python3"

SERVER = r"""
import os, socket, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(16)

def read_head(c):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    return data

while True:
    c, _ = ls.accept()
    if mode == "fork":
        if os.fork() == 0:
            ls.close()
            time.sleep(0.3)  # the parent has closed its copy by now
            read_head(c)
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
            c.close()
            os._exit(0)
        c.close()
        os.waitpid(-1, os.WNOHANG)
        continue
    head = read_head(c)
    if head.startswith(b"GET /abort"):
        time.sleep(0.5)  # the client's second request arrives, unread
    elif head.startswith(b"GET /wait-eof"):
        while c.recv(4096):
            pass
    c.close()
"""


def request(path):
    return b"GET %s HTTP/1.1\r\nHost: x\r\nUser-Agent: conn-ends\r\n\r\n" % path.encode()


def client(port, path):
    """What the raw client saw: the answer's bytes, or the name of the error it got."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request(path))
        if path == "/abort":
            time.sleep(0.2)
            s.sendall(request("/abort2"))
        if path == "/wait-eof":
            time.sleep(0.3)
            return b""  # gives up: closes with the request unanswered
        data = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            return "reset"
        return data


def start_server(port, mode):
    srv = subprocess.Popen([PY, "-c", SERVER, str(port), mode], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    wait_listening(port, proc=srv)
    return srv


def span_ends(agent, port):
    """(kind, url.path) -> [(status code, error.type)] of the spans on port."""
    out = {}
    for s in agent.snapshot(lambda s: attrs(s).get("server.port") == port):
        a = attrs(s)
        out.setdefault((s.get("kind"), a.get("url.path")), []).append(
            (a.get("http.response.status_code"), a.get("error.type")))
    return out


def ends_told_apart(extra):
    lib.require_agent()
    port, fport = free_port(), free_port()
    with Agent(args=["--port", str(port), "--port", str(fport)] + extra) as agent:
        agent.wait_ready()
        servers = [start_server(port, "plain"), start_server(fport, "fork")]
        try:
            check_eq(client(port, "/drop"), b"", "the client's answer to /drop")
            check_eq(client(port, "/abort"), "reset", "the client's answer to /abort")
            check_eq(client(port, "/wait-eof"), b"", "the client's answer to /wait-eof")
            answer = client(fport, "/fork")
            check(isinstance(answer, bytes) and answer.startswith(b"HTTP/1.1 200"),
                  "the forked server's answer: %r" % (answer,))
            want = {
                ("SERVER", "/drop"): [(None, "no_response")],
                ("CLIENT", "/drop"): [(None, "connection_closed")],
                ("SERVER", "/abort"): [(None, "no_response")],
                ("SERVER", "/wait-eof"): [(None, "connection_closed")],
                ("CLIENT", "/wait-eof"): [(None, "timeout")],
            }
            spans = agent.wait_for_spans(lambda s: attrs(s).get("server.port") == port, 6,
                                         settle=1.5)
            got = span_ends(agent, port)
            for key, ends in want.items():
                check_eq(got.get(key), ends, "ends of the %s spans of %s" % key)
            # the pipelined /abort2 was never read by the server: a CLIENT span at most
            check(("SERVER", "/abort2") not in got, "a SERVER span of the unread /abort2")
            aborted = got.get(("CLIENT", "/abort"), []) + got.get(("CLIENT", "/abort2"), [])
            check(aborted and all(e == (None, "connection_reset") for e in aborted),
                  "the CLIENT spans of the reset connection: %r" % aborted)
            check(len(spans) >= 6, "spans on the plain server's port: %d" % len(spans))
            agent.wait_for_spans(lambda s: attrs(s).get("server.port") == fport, 2, settle=1.0)
            check_eq(span_ends(agent, fport), {("SERVER", "/fork"): [(200, None)],
                                               ("CLIENT", "/fork"): [(200, None)]},
                     "spans of the forked server's one request")
        finally:
            for srv in servers:
                os.killpg(srv.pid, 9)
                srv.wait()
        agent.stop_and_check()


@test
def connection_ends_socket_tracepoints():
    """The default path: connections end at their socket's destruction."""
    ends_told_apart([])


@test
def connection_ends_syscall_exits():
    """--syscall-data: connections end at close()."""
    ends_told_apart(["--syscall-data"])


# ---- the same ends replayed from a made-up event stream (no kernel, exact event order)

# include/periscope_abi.h: event types, roles, directions, the 16-byte header, the 72-byte
# connection reference, the data (112 + payload), connection (104) and peer/socket end (64) events
EV_DATA, EV_CONN_OPEN, EV_PEER_END, EV_SOCK_CLOSED = 1, 2, 6, 9
ROLE_SERVER, DIR_INGRESS, DIR_EGRESS, PEER_FIN = 2, 0, 1, 1
LOCAL = bytes([127, 0, 0, 1]) + bytes(12)


def header(kind, size, ts_ms):
    return struct.pack("<HHIQ", kind, 0, size, ts_ms * 1000000)


def conn_ref(pid, fd, sock, rport):
    return struct.pack("<IIiBBHQQ16s16sHHI", pid, pid, fd, ROLE_SERVER, socket.AF_INET, 0, sock,
                       1, LOCAL, LOCAL, 8080, rport, 0)


def conn_open(pid, fd, sock, rport, ts_ms):
    return header(EV_CONN_OPEN, 104, ts_ms) + conn_ref(pid, fd, sock, rport) + b"srv".ljust(16, b"\0")


def data(pid, fd, sock, rport, ts_ms, direction, payload):
    return (header(EV_DATA, 112 + len(payload), ts_ms) + conn_ref(pid, fd, sock, rport) +
            struct.pack("<QIIBBHI", ts_ms * 1000000, len(payload), len(payload), direction, 0, 0,
                        0) + payload)


def sock_end(kind, sock, rport, ts_ms, how=0):
    return header(kind, 64, ts_ms) + struct.pack("<Q16s16sHHBBH", sock, LOCAL, LOCAL, 8080, rport,
                                                 socket.AF_INET, how, 0)


def replay_spans(events):
    with tempfile.NamedTemporaryFile(suffix=".events") as f:
        f.write(b"PSCOPE2\n" + b"".join(struct.pack("<I", len(e)) + e for e in events))
        f.flush()
        out = subprocess.run([lib.AGENT, "replay", f.name, "--print=json", "--no-prometheus"],
                             capture_output=True, text=True, timeout=60)
    check_eq(out.returncode, 0, "periscope replay's exit status (stderr %r)" % out.stderr[-500:])
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@test
def replayed_fd_reused_before_the_socket_is_gone():
    """With the socket tracepoints a socket is destroyed a round trip after close(), by when its
    fd may serve a new connection: the old connection's unanswered request still ends (at the
    new connection's first event, no_response); a peer's FIN before the end still names it; a
    socket shared by two processes ends in both."""
    lib.require_agent()
    pid, child = os.getpid(), os.getppid()
    get = lambda path: b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path  # noqa: E731
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    events = [
        # fd 5: /first unanswered, the fd reused by a new connection before the socket is gone
        conn_open(pid, 5, 0xa000, 40001, 1),
        data(pid, 5, 0xa000, 40001, 2, DIR_INGRESS, get(b"/first")),
        conn_open(pid, 5, 0xb000, 40002, 30),
        data(pid, 5, 0xb000, 40002, 31, DIR_INGRESS, get(b"/second")),
        data(pid, 5, 0xb000, 40002, 32, DIR_EGRESS, ok),
        sock_end(EV_SOCK_CLOSED, 0xa000, 40001, 40),
        sock_end(EV_SOCK_CLOSED, 0xb000, 40002, 41),
        # fd 6: the peer's FIN, then the socket gone
        conn_open(pid, 6, 0xc000, 40003, 50),
        data(pid, 6, 0xc000, 40003, 51, DIR_INGRESS, get(b"/third")),
        sock_end(EV_PEER_END, 0xc000, 40003, 60, PEER_FIN),
        sock_end(EV_SOCK_CLOSED, 0xc000, 40003, 70),
        # fd 7, shared with a second process: both requests unanswered, both end with the socket
        conn_open(pid, 7, 0xd000, 40004, 80),
        data(pid, 7, 0xd000, 40004, 81, DIR_INGRESS, get(b"/parent")),
        data(child, 7, 0xd000, 40004, 82, DIR_INGRESS, get(b"/child")),
        sock_end(EV_SOCK_CLOSED, 0xd000, 40004, 90),
    ]
    spans = replay_spans(events)
    got = {}
    for s in spans:
        a = attrs(s)
        got[a.get("url.path")] = (a.get("http.response.status_code"), a.get("error.type"))
    check_eq(got, {"/first": (None, "no_response"), "/second": (200, None),
                   "/third": (None, "connection_closed"), "/parent": (None, "no_response"),
                   "/child": (None, "no_response")},
             "replayed SERVER spans: (status, error.type) by path")
    first = [s for s in spans if attrs(s).get("url.path") == "/first"][0]
    dur_ms = (int(first["end_time_unix_nano"]) - int(first["start_time_unix_nano"])) / 1e6
    check(27 <= dur_ms <= 29, "/first ends when its fd served the new connection (28 ms after "
          "it began), not at the socket's end (38 ms): %.1f ms" % dur_ms)


if __name__ == "__main__":
    sys.exit(lib.run_tests())
