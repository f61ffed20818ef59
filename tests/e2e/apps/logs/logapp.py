"""logapp.py — one log line per request, no tracing code: FRAMEWORK=flask (threaded) or fastapi
(uvicorn, async handler); MODE=text prints "INFO|WARN req <i> handled" on stdout, MODE=json a
JSON object {"level", "msg": "req <i>", "n": i} on stderr. GET /r/<i> answers "ok"; odd i are WARN.
Environment: FRAMEWORK, MODE, PORT."""
import json
import os
import sys

MODE = os.environ.get("MODE", "text")
PORT = int(os.environ["PORT"])


def log_line(i):
    level = "WARN" if i % 2 else "INFO"
    if MODE == "json":
        sys.stderr.write(json.dumps({"level": level.lower(), "msg": "req %d" % i, "n": i}) + "\n")
        sys.stderr.flush()
    else:
        sys.stdout.write("%s req %d handled\n" % (level, i))
        sys.stdout.flush()


if os.environ.get("FRAMEWORK") == "fastapi":
    import uvicorn
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI()

    @app.get("/r/{i}", response_class=PlainTextResponse)
    async def r(i: int):
        log_line(i)
        return "ok"

    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
else:
    import logging
    from flask import Flask

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = Flask(__name__)

    @app.route("/r/<int:i>")
    def r(i):
        log_line(i)
        return "ok"

    app.run(host="127.0.0.1", port=PORT, threaded=True)
