#!/usr/bin/python3
"""stream_app.py — HTTP/1.1 over asyncio streams (asyncio.start_server), the way small asyncio
servers and aiohttp serve a connection: one task per connection, made when it is accepted, that
reads request after request (keep-alive) and writes each answer.

    stream_app.py back PORT               answers GET /item/<k> with "item <k>"
    stream_app.py front PORT BACK LOG     answers GET /api/<k> after calling the back's
                                          /item/<k> on a connection of its own (one per
                                          front connection, kept); appends k to LOG
    stream_app.py front-task PORT BACK LOG  the same, each request served by a task the
                                          connection's task makes for it and awaits (aiohttp's
                                          request loop does this)
"""

import asyncio
import sys


async def read_head(reader):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None, {}
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            fields[k.strip().lower()] = v.strip()
    return lines[0], fields


def answer(writer, body):
    data = body.encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(data), data))


async def back_conn(reader, writer):
    while True:
        line, _ = await read_head(reader)
        if not line:
            break
        k = line.split()[1].rsplit("/", 1)[-1]
        answer(writer, "item %s" % k)
        await writer.drain()
    writer.close()


class Front:
    def __init__(self, back_port, log, task_per_request):
        self.back_port = back_port
        self.log = log
        self.task_per_request = task_per_request

    async def call_back(self, conn, k):
        reader, writer = conn
        writer.write(b"GET /item/%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % k.encode())
        await writer.drain()
        _, fields = await read_head(reader)
        return await reader.readexactly(int(fields.get("content-length", "0")))

    async def serve(self, back, writer, k):
        body = await self.call_back(back, k)
        answer(writer, "front %s: %s" % (k, body.decode()))
        await writer.drain()
        with open(self.log, "a") as f:
            f.write(k + "\n")

    async def conn(self, reader, writer):
        back = None
        while True:
            line, _ = await read_head(reader)
            if not line:
                break
            k = line.split()[1].rsplit("/", 1)[-1]
            if back is None:
                back = await asyncio.open_connection("127.0.0.1", self.back_port)
            if self.task_per_request:
                await asyncio.get_running_loop().create_task(self.serve(back, writer, k))
            else:
                await self.serve(back, writer, k)
        if back is not None:
            back[1].close()
        writer.close()


async def main():
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "back":
        server = await asyncio.start_server(back_conn, "127.0.0.1", port)
    else:
        front = Front(int(sys.argv[3]), sys.argv[4], role == "front-task")
        server = await asyncio.start_server(front.conn, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
