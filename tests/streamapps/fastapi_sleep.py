"""FastAPI: ``/events`` from an async generator that calls ``time.sleep`` between events, so each
stream blocks the event loop while it waits (a common mistake: ``await asyncio.sleep`` is meant),
and ``/good`` the same with ``asyncio.sleep``."""
import asyncio
import time

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from streamapps import COUNT, INTERVAL, sse

app = FastAPI()


@app.get("/events")
async def events():
    async def generate():
        for n in range(COUNT):
            if n:
                time.sleep(INTERVAL)   # blocks the event loop: one stream at a time
            yield sse(n)
    return StreamingResponse(generate(), media_type="text/event-stream")


@app.get("/good")
async def good():
    async def generate():
        for n in range(COUNT):
            if n:
                await asyncio.sleep(INTERVAL)
            yield sse(n)
    return StreamingResponse(generate(), media_type="text/event-stream")
