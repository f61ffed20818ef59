# redis_client.py — drives a scripted Redis session through capture_proxy.py (port 36379).
import socket, time, subprocess
def cmd(*a):
    out = b'*%d\r\n' % len(a)
    for x in a:
        x = x if isinstance(x, bytes) else str(x).encode()
        out += b'$%d\r\n%s\r\n' % (len(x), x)
    return out
s = socket.create_connection(('127.0.0.1', 36379))
def rt(data, wait=0.15):
    s.sendall(data); time.sleep(wait); s.recv(1 << 20)
rt(cmd('PING'))
rt(cmd('SET', 'user:1', 'secret-value'))
rt(cmd('GET', 'user:1'))
rt(cmd('LPUSH', 'user:1', 'x'))              # WRONGTYPE
rt(cmd('DEL', 'list1')); rt(cmd('RPUSH', 'list1', 'a', 'b', 'c'))
rt(cmd('LRANGE', 'list1', 0, -1))
rt(cmd('NOSUCHCMD', 'a'))                     # ERR unknown command
rt(cmd('INCR', 'ctr') + cmd('INCR', 'ctr') + cmd('GET', 'nokey') + cmd('CONFIG', 'GET', 'maxmemory'))  # pipeline
rt(cmd('MULTI') + cmd('SET', 'a', '1') + cmd('INCR', 'a') + cmd('LPUSH', 'a', 'x') + cmd('EXEC'))
rt(b'PING\r\n')                               # inline
rt(cmd('HELLO', '3'))
rt(cmd('HSET', 'h1', 'f1', 'v1', 'f2', 'v2')); rt(cmd('HGETALL', 'h1'))
rt(cmd('SMEMBERS', 'h1'))                     # WRONGTYPE in RESP3
rt(cmd('SADD', 's1', 'm')); rt(cmd('SMEMBERS', 's1'))
rt(cmd('ZADD', 'z1', '1.5', 'm')); rt(cmd('ZSCORE', 'z1', 'm')); rt(cmd('GET', 'nokey'))
rt(cmd('EXISTS', 'z1'))
rt(cmd('SUBSCRIBE', 'ch1', 'ch2'), 0.3)
subprocess.run(['redis-cli', '-p', '26379', 'publish', 'ch1', 'hello'], stdout=subprocess.DEVNULL)
time.sleep(0.2); s.recv(1 << 20)
rt(cmd('PING'))
rt(cmd('UNSUBSCRIBE', 'ch1', 'ch2'))
rt(cmd('GET', 'user:1'))
s.close()
