#!/usr/bin/env python3
# make_http2_corpus.py — writes seed scripts for fuzz_http2 (tests/fuzz/corpus/http2): conversations
# in the harness's chunk format (control byte: bit 0 direction, bit 1 missing count follows, bits 2-7
# length). Usage: make_http2_corpus.py tests/fuzz/corpus
import os, sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REQ, RESP = 0, 1

def frame(t, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([t, flags]) + sid.to_bytes(4, "big") + payload

def lit(name, value, op=0x00):
    return bytes([op, len(name)]) + name + bytes([len(value)]) + value

def chunks(direction, data, missing=None):
    out = b""
    while data:
        part, data = data[:62], data[62:]
        ctl = (len(part) << 2) | direction
        if missing is not None and not data:
            out += bytes([ctl | 2, missing]) + part
        else:
            out += bytes([ctl]) + part
    return out

settings = frame(4, 0, 0, b"\x00\x03\x00\x00\x00\x64")
ack = frame(4, 1, 0)
get = b"\x82\x87" + b"\x04\x02/x" + b"\x01\x0bexample.com" + lit(b"user-agent", b"fuzz", 0x40)
seeds = {}
seeds["simple"] = (chunks(REQ, PREFACE + settings + frame(1, 5, 1, get)) +
                   chunks(RESP, settings + ack + frame(1, 4, 1, b"\x88") + frame(0, 1, 1, b"hello")) + b"\xff")
grpc_req = b"\x83\x86\x04\x06/a.B/C" + lit(b"content-type", b"application/grpc", 0x40) + lit(b"te", b"trailers")
seeds["grpc"] = (chunks(REQ, PREFACE + settings + frame(1, 0x04, 1, grpc_req) + frame(0, 1, 1, b"\0\0\0\0\0")) +
                 chunks(RESP, settings + frame(1, 4, 1, b"\x88") + frame(0, 0, 1, b"\0\0\0\0\0") +
                        frame(1, 5, 1, lit(b"grpc-status", b"0"))) +
                 chunks(REQ, frame(1, 0x05, 3, b"\x83\x86\x04\x06/a.B/D\xbe")) +
                 chunks(RESP, frame(1, 5, 3, b"\x88" + lit(b"grpc-status", b"5") + lit(b"grpc-message", b"nope"))))
padded = frame(1, 0x28, 1, b"\x02" + b"\0" * 5 + b"\x82\x84" + b"\0\0")
seeds["padding_continuation"] = (chunks(REQ, PREFACE + frame(1, 0x00, 1, b"\x82") + frame(9, 0, 1, b"\x84") +
                                        frame(9, 4, 1, b"\x87") + frame(0, 0x09, 1, b"\x03ab\0\0\0")) +
                                 chunks(RESP, frame(1, 0x0c, 1, b"\x01\x88\0") + frame(0, 1, 1, b"x")) + chunks(REQ, padded))
seeds["rst_goaway"] = (chunks(REQ, PREFACE + frame(1, 5, 1, b"\x82\x84") + frame(1, 5, 3, b"\x82\x84") +
                              frame(1, 5, 5, b"\x82\x84") + frame(3, 0, 1, b"\0\0\0\x08")) +
                       chunks(RESP, frame(7, 0, 0, b"\0\0\0\x03\0\0\0\0") + frame(1, 5, 3, b"\x88")))
seeds["missing"] = (chunks(REQ, PREFACE + frame(1, 5, 1, b"\x82\x84")) +
                    chunks(RESP, frame(1, 4, 1, b"\x88") + b"\x00\x01\x00\x00\x01\x00\x00\x00\x01" + b"z" * 20, missing=200) +
                    chunks(RESP, frame(0, 1, 1, b"end")))
seeds["late_join"] = (chunks(REQ, frame(1, 5, 7, b"\x82\xbe\x04\x02/l")) +
                      chunks(RESP, frame(1, 5, 7, b"\x88\xc0")) + chunks(RESP, b"junk junk junk" + frame(0, 1, 9, b"")))
os.makedirs(os.path.join(sys.argv[1], "http2"), exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(sys.argv[1], "http2", name), "wb") as f:
        f.write(data)
