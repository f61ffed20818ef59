# capture_proxy.py — loopback TCP proxy that records both directions of each
# connection for the parser tests (format in README.md). Usage: listen_port target_port out_prefix
# capture proxy: listen on port L, forward to 127.0.0.1:T, write each recv() as
# a record: dir byte ('>' client->server, '<' server->client), u32 LE length, bytes.
import socket, struct, sys, threading, select
L, T, OUT = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', L)); srv.listen(16)
n = 0
lock = threading.Lock()
def handle(c, idx):
    s = socket.create_connection(('127.0.0.1', T))
    f = open('%s.%d' % (OUT, idx), 'wb')
    socks = {c: (s, b'>'), s: (c, b'<')}
    done = False
    while not done:
        r, _, _ = select.select([c, s], [], [])
        for x in r:
            d = x.recv(65536)
            if not d:
                done = True; break
            dst, tag = socks[x]
            f.write(tag + struct.pack('<I', len(d)) + d); f.flush()
            dst.sendall(d)
    f.close(); c.close(); s.close()
while True:
    c, _ = srv.accept()
    n += 1
    threading.Thread(target=handle, args=(c, n), daemon=True).start()
