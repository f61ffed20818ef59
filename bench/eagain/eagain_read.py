#!/usr/bin/env python3
"""eagain_read.py N — N non-blocking read()s of a connected TCP socket with nothing to read (each
fails with EAGAIN, as Go's netpoll and libuv end every burst of reads), timed in the thread's CPU
time. Run with an agent up and kernel.bpf_stats_enabled=1, the run_cnt/run_time_ns deltas of
`sock_recv` and `loop_exit_read` over it are what such a read costs in BPF (bench/RESULTS.md,
section 1's A/B of 2026-12-04)."""
import socket, os, time, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname()); a, _ = srv.accept()
c.setblocking(False); fd = c.fileno()
n = int(sys.argv[1]); t0 = time.thread_time_ns()
for _ in range(n):
    try: os.read(fd, 100)
    except BlockingIOError: pass
print("eagain_read_ns %.0f" % ((time.thread_time_ns() - t0) / n))
