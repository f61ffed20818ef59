"""fastapi_app.py — a traced-chain service on FastAPI + uvicorn with no tracing code of its own.

ROLE=front: GET /api/item/<id> makes one outbound GET <BACK_URL>/item/<id> through a shared
httpx.AsyncClient (keep-alive) and returns the back's body. ROLE=back: GET /item/<id> does one
database operation — DB=redis: `GET item:<id>` through redis.asyncio on the event loop;
DB=postgres: `SELECT name FROM items WHERE id = %s` through psycopg2 in a worker thread — and
returns JSON with the value. Both answer GET /health with "ok" and print `METHOD PATH STATUS` per
request on stdout. Environment: ROLE, PORT, BIND, BACK_URL, DB, REDIS_HOST, REDIS_PORT, PG_HOST,
PG_PORT, PG_USER, PG_DBNAME. Runs one uvicorn worker on 127.0.0.1:PORT; /usr/bin/python3 with
Debian packages only. BIND=default: uvicorn's `--host ::` as it binds with --workers or --reload
(Config.bind_socket: an AF_INET6 socket without IPV6_V6ONLY, dual-stack; a single process would
let asyncio set IPV6_V6ONLY); another BIND: that address (e.g. ::1).

With TRUTH=1 the front also has GET /api/bg/<id>: it answers at once and leaves a FastAPI
BackgroundTasks job that makes the GET <BACK_URL>/item/<id> after the response is sent.
"""

import asyncio
import json
import os
import sys

import uvicorn
from fastapi import FastAPI, Request, Response

ROLE = os.environ.get("ROLE", "front")
PORT = int(os.environ.get("PORT", "9001"))
DB = os.environ.get("DB", "redis")
TRUTH = os.environ.get("TRUTH") == "1"

app = FastAPI()
state = {}


@app.on_event("startup")
async def open_clients():
    if ROLE == "front":
        import httpx
        state["http"] = httpx.AsyncClient(base_url=os.environ["BACK_URL"], timeout=10.0)
    elif DB == "redis":
        import redis.asyncio
        state["redis"] = redis.asyncio.Redis(host=os.environ.get("REDIS_HOST", "127.0.0.1"),
                                             port=int(os.environ.get("REDIS_PORT", "6379")))
    else:
        import psycopg2.pool
        state["pg"] = psycopg2.pool.ThreadedConnectionPool(
            1, 8, host=os.environ.get("PG_HOST", "127.0.0.1"),
            port=int(os.environ.get("PG_PORT", "5432")), user=os.environ.get("PG_USER", "postgres"),
            dbname=os.environ.get("PG_DBNAME", "postgres"))


@app.on_event("shutdown")
async def close_clients():
    if "http" in state:
        await state["http"].aclose()
    if "redis" in state:
        await state["redis"].close()
    if "pg" in state:
        state["pg"].closeall()


@app.middleware("http")
async def log_request(request: Request, call_next):
    response = await call_next(request)
    print("%s %s %d" % (request.method, request.url.path, response.status_code), flush=True)
    return response


@app.get("/health")
async def health():
    return Response("ok", media_type="text/plain")


def pg_lookup(item_id):
    pool = state["pg"]
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM items WHERE id = %s", (item_id,))
            row = cur.fetchone()
        conn.commit()
        return row[0] if row else None
    finally:
        pool.putconn(conn)


if ROLE == "front":
    @app.get("/api/item/{item_id}")
    async def front_item(item_id: int):
        back = await state["http"].get("/item/%d" % item_id)
        return Response(back.content, status_code=back.status_code,
                        media_type=back.headers.get("content-type", "application/json"))
    if TRUTH:
        from fastapi import BackgroundTasks

        async def call_back_later(item_id: int):
            try:
                await state["http"].get("/item/%d" % item_id)
            except Exception as e:  # noqa: BLE001 — a background job reports and ends
                print("background call /item/%d failed: %s" % (item_id, e), file=sys.stderr)

        @app.get("/api/bg/{item_id}")
        async def front_bg(item_id: int, background_tasks: BackgroundTasks):
            background_tasks.add_task(call_back_later, item_id)
            return Response("scheduled", media_type="text/plain")
else:
    @app.get("/item/{item_id}")
    async def back_item(item_id: int):
        if DB == "redis":
            raw = await state["redis"].get("item:%d" % item_id)
            value = raw.decode() if raw is not None else None
        else:
            value = await asyncio.to_thread(pg_lookup, item_id)
        body = json.dumps({"id": item_id, "name": value, "db": DB, "stack": "fastapi"})
        return Response(body, status_code=200 if value is not None else 404,
                        media_type="application/json")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    bind = os.environ.get("BIND") or "127.0.0.1"
    if bind == "default":
        config = uvicorn.Config(app, host="::", port=PORT, workers=1, access_log=False,
                                log_level="warning")
        uvicorn.Server(config).run(sockets=[config.bind_socket()])
    else:
        uvicorn.run(app, host=bind, port=PORT, workers=1, access_log=False, log_level="warning")
