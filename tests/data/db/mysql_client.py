# mysql_client.py — minimal MySQL client for prepared statements through capture_proxy.py
# (port 33306); an argument asks for CLIENT_DEPRECATE_EOF.
import socket, struct, time, sys
deprecate = len(sys.argv) > 1
s = socket.create_connection(('127.0.0.1', 33306))
def recv_all(wait=0.15):
    time.sleep(wait); return s.recv(1 << 20)
def pkt(seq, payload):
    return struct.pack('<I', len(payload))[:3] + bytes([seq]) + payload
hs = recv_all()
caps = 1 | 0x200 | 0x8000 | 0x80000 | 8 | 0x2000 | 0x20000
if deprecate: caps |= 1 << 24
resp = struct.pack('<IIB', caps, 1 << 24, 33) + b'\0' * 23 + b'root\0' + b'\0' + b'shop\0' + b'mysql_native_password\0'
s.sendall(pkt(1, resp)); r = recv_all()
if r[4] == 0xfe:  # auth switch: answer empty
    s.sendall(pkt(r[3] + 1, b'')); recv_all()
def cmd(payload, wait=0.15):
    s.sendall(pkt(0, payload)); return recv_all(wait)
cmd(b'\x03SELECT 1')
r = cmd(b'\x16SELECT id, name FROM items WHERE id = ?')
sid = struct.unpack('<I', r[5:9])[0]
cmd(b'\x17' + struct.pack('<IBI', sid, 0, 1) + b'\x00' + b'\x01' + b'\x08\x00' + struct.pack('<q', 2))
r = cmd(b'\x16UPDATE items SET name = ? WHERE id = ?')
sid2 = struct.unpack('<I', r[5:9])[0]
cmd(b'\x17' + struct.pack('<IBI', sid2, 0, 1) + b'\x00' + b'\x01' + b'\xfd\x00\x08\x00' + b'\x04plum' + struct.pack('<q', 3))
cmd(b'\x17' + struct.pack('<IBI', 999, 0, 1))   # unknown statement: ERR
s.sendall(pkt(0, b'\x19' + struct.pack('<I', sid2)))  # STMT_CLOSE, no response
cmd(b'\x0e')                                    # PING
cmd(b'\x02mysql')                               # INIT_DB
cmd(b'\x03SELECT COUNT(*) FROM user WHERE user = \'root\'')
cmd(b'\x03INSERT INTO shop.items VALUES (1, \'dup\')')  # duplicate key ERR
s.sendall(pkt(0, b'\x01')); time.sleep(0.1); s.close()
