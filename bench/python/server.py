"""server.py — the Python section of `make bench`: FastAPI on uvicorn answering every request at
once (keep-alive), the cheapest handler there is, so what the agent adds stands out. PORT from the
environment; /usr/bin/python3 with Debian packages only."""

import os

import uvicorn
from fastapi import FastAPI, Response

app = FastAPI()


@app.get("/")
async def hello():
    return Response("hello from fastapi\n", media_type="text/plain")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning",
                access_log=False)
