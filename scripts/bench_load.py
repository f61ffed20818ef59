#!/usr/bin/python3
"""bench_load.py — load generators for scripts/bench_run.py (Python 3 standard library only).

  bench_load.py redis PORT SECONDS RATE [PIPELINE]
      A pipelined Redis client at a fixed rate: every PIPELINE/RATE seconds it writes PIPELINE
      commands (SET and GET alternately) in one send and reads every reply. Prints one JSON line
      {"ops": N, "seconds": S, "errors": E} at the end.

  bench_load.py hold PORT COUNT SRC
      Opens COUNT TCP connections to 127.0.0.1:PORT from source address 127.0.0.SRC (not
      127.0.0.1, so its ports stay free for everyone else; at most ~25,000 per address), sends one
      HTTP/1.1 keep-alive GET on each and reads its answer, then prints one JSON line
      {"open": N, "ok": N, "seconds": S} and holds every connection open until stdin closes.
      COUNT must fit under this process's file-descriptor limit (RLIMIT_NOFILE); the soft limit
      is raised to the hard one.
"""

import json
import resource
import socket
import sys
import time


def redis_load(port, seconds, rate, pipeline=100):
    batch = b""
    for i in range(pipeline):
        key = b"bench:%d" % (i // 2 % 10)  # each GET reads the key SET just before
        if i % 2 == 0:
            batch += b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$5\r\nvalue\r\n" % (len(key), key)
        else:
            batch += b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
    # every reply ends with exactly one CRLF after its last line: +OK\r\n or $5\r\nvalue\r\n
    want_crlf = (pipeline + 1) // 2 * 1 + pipeline // 2 * 2
    period = pipeline / float(rate)
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ops = errors = 0
    t0 = time.monotonic()
    nxt = t0
    while True:
        now = time.monotonic()
        if now - t0 >= seconds:
            break
        if nxt > now:
            time.sleep(nxt - now)
        nxt += period
        s.sendall(batch)
        got = b""
        while got.count(b"\r\n") < want_crlf:
            chunk = s.recv(65536)
            if not chunk:
                raise SystemExit("redis closed the connection")
            got += chunk
        errors += got.count(b"\r\n-")
        ops += pipeline
    took = time.monotonic() - t0
    s.close()
    print(json.dumps({"ops": ops, "seconds": took, "errors": errors}), flush=True)


def hold(port, count, src):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if count + 16 > hard:
        raise SystemExit("hold: %d connections do not fit under the fd limit %d" % (count, hard))
    req = b"GET /index.html HTTP/1.1\r\nHost: bench\r\n\r\n"
    socks = []
    ok = 0
    t0 = time.monotonic()
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IP, 24, 1)  # IP_BIND_ADDRESS_NO_PORT: port picked at connect
        s.bind(("127.0.0.%d" % src, 0))
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(req)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        if data.startswith(b"HTTP/1.1 200"):
            ok += 1
        socks.append(s)
    print(json.dumps({"open": len(socks), "ok": ok, "seconds": time.monotonic() - t0}),
          flush=True)
    sys.stdin.read()  # hold until the bench closes our stdin
    for s in socks:
        s.close()


def main(argv):
    if len(argv) >= 4 and argv[0] == "redis":
        redis_load(int(argv[1]), float(argv[2]), float(argv[3]),
                   int(argv[4]) if len(argv) > 4 else 100)
    elif len(argv) == 4 and argv[0] == "hold":
        hold(int(argv[1]), int(argv[2]), int(argv[3]))
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
