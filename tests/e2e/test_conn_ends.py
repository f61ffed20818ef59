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

import os
import socket
import subprocess
import sys
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


if __name__ == "__main__":
    sys.exit(lib.run_tests())
