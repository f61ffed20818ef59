import socket, os, time, sys
# a process with a TCP connection that reads it non-blocking with nothing there: read() -> EAGAIN
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname()); a, _ = srv.accept()
c.setblocking(False); fd = c.fileno()
n = int(sys.argv[1]); t0 = time.thread_time_ns()
for _ in range(n):
    try: os.read(fd, 100)
    except BlockingIOError: pass
print("eagain_read_ns %.0f" % ((time.thread_time_ns() - t0) / n))
