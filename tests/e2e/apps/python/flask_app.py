"""flask_app.py — a traced-chain service on Flask's threaded server with no tracing code of its own.

ROLE=front: GET /api/item/<id> makes one outbound GET <BACK_URL>/item/<id> with urllib.request
(a new connection per request, from the thread serving the request) and returns the back's body.
ROLE=back: GET /item/<id> does one database operation — DB=redis: `GET item:<id>` through
python3-redis; DB=postgres: `SELECT name FROM items WHERE id = %s` through psycopg2 — and returns
JSON with the value. Both answer GET /health with "ok" and print `METHOD PATH STATUS` per request
on stdout.
Environment: ROLE, PORT, BIND, BACK_URL, DB, REDIS_HOST, REDIS_PORT, PG_HOST, PG_PORT, PG_USER,
PG_DBNAME.
Werkzeug's threaded server on 127.0.0.1:PORT; /usr/bin/python3 with Debian packages only.
BIND=default: host `::` (an AF_INET6 socket, dual-stack); another BIND: that address (e.g. ::1). Also a
WSGI app for gunicorn (`gunicorn flask_app:app`, the clients opened at import).

With TRUTH=1, failed calls: the back's GET /slow/<id> prints `SLOW /slow/<id>` and sleeps
SLOW_SECONDS (default 5) before answering; the front's GET /api/slow/<id> calls it (502 when the
call fails) and GET /api/hang/<id> sends GET /hang/<id> to HANG_URL and gives up after
HANG_TIMEOUT seconds (default 1), closing the connection (504).
"""

import http.client
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request

from flask import Flask, Response, request

ROLE = os.environ.get("ROLE", "front")
PORT = int(os.environ.get("PORT", "9001"))
DB = os.environ.get("DB", "redis")
TRUTH = os.environ.get("TRUTH") == "1"

app = Flask(__name__)
clients = {}


def open_clients():
    if ROLE == "front":
        clients["back_url"] = os.environ["BACK_URL"].rstrip("/")
    elif DB == "redis":
        import redis
        clients["redis"] = redis.Redis(host=os.environ.get("REDIS_HOST", "127.0.0.1"),
                                       port=int(os.environ.get("REDIS_PORT", "6379")))
    else:
        import psycopg2.pool
        clients["pg"] = psycopg2.pool.ThreadedConnectionPool(
            1, 8, host=os.environ.get("PG_HOST", "127.0.0.1"),
            port=int(os.environ.get("PG_PORT", "5432")), user=os.environ.get("PG_USER", "postgres"),
            dbname=os.environ.get("PG_DBNAME", "postgres"))


@app.after_request
def log_request(response):
    # one write per line: threads (and gunicorn's workers) share stdout
    os.write(1, b"%s %s %d\n" % (request.method.encode(), request.path.encode(),
                                 response.status_code))
    return response


@app.get("/health")
def health():
    return Response("ok", mimetype="text/plain")


def pg_lookup(item_id):
    pool = clients["pg"]
    conn = pool.getconn()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM items WHERE id = %s", (item_id,))
            row = cur.fetchone()
        conn.commit()
        return row[0] if row else None
    finally:
        pool.putconn(conn)


@app.get("/api/item/<int:item_id>")
def front_item(item_id):
    if ROLE != "front":
        return Response("not found", status=404)
    url = "%s/item/%d" % (clients["back_url"], item_id)
    try:
        with urllib.request.urlopen(url, timeout=10) as back:
            return Response(back.read(), status=back.status,
                            content_type=back.headers.get("Content-Type", "application/json"))
    except urllib.error.HTTPError as e:
        return Response(e.read(), status=e.code,
                        content_type=e.headers.get("Content-Type", "application/json"))


@app.get("/item/<int:item_id>")
def back_item(item_id):
    if ROLE != "back":
        return Response("not found", status=404)
    if DB == "redis":
        raw = clients["redis"].get("item:%d" % item_id)
        value = raw.decode() if raw is not None else None
    else:
        value = pg_lookup(item_id)
    body = json.dumps({"id": item_id, "name": value, "db": DB, "stack": "flask"})
    return Response(body, status=200 if value is not None else 404, mimetype="application/json")


if TRUTH:
    @app.get("/slow/<int:item_id>")
    def back_slow(item_id):
        os.write(1, b"SLOW /slow/%d\n" % item_id)
        time.sleep(float(os.environ.get("SLOW_SECONDS", "5")))
        return Response("slow", mimetype="text/plain")

    @app.get("/api/slow/<int:item_id>")
    def front_slow(item_id):
        try:
            with urllib.request.urlopen("%s/slow/%d" % (clients["back_url"], item_id),
                                        timeout=10) as back:
                return Response(back.read(), status=back.status, mimetype="text/plain")
        except (OSError, http.client.HTTPException) as e:
            return Response("back failed: %s" % e, status=502, mimetype="text/plain")

    @app.get("/api/hang/<int:item_id>")
    def front_hang(item_id):
        host, _, port = os.environ["HANG_URL"].split("//", 1)[1].rstrip("/").partition(":")
        conn = http.client.HTTPConnection(host, int(port),
                                          timeout=float(os.environ.get("HANG_TIMEOUT", "1")))
        try:
            conn.request("GET", "/hang/%d" % item_id)
            return Response(conn.getresponse().read(), mimetype="text/plain")
        except (OSError, http.client.HTTPException) as e:
            return Response("upstream failed: %s" % e, status=504, mimetype="text/plain")
        finally:
            conn.close()


if __name__ != "__main__":  # imported by a WSGI server (gunicorn)
    open_clients()

if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    open_clients()
    bind = os.environ.get("BIND") or "127.0.0.1"
    app.run(host="::" if bind == "default" else bind, port=PORT, threaded=True, debug=False, use_reloader=False)
