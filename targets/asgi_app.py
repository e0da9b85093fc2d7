"""The corrected countdown app (``webpy_app``) ported to ASGI, for uvicorn and hypercorn.

Same routes, pieces and schedule: ``GET /N`` sends ``<h2>Prepare for Launch!</h2>`` and ``<ul>``
at once, one ``<li>Liftoff in i...</li>`` per second, ``</ul>`` right after the last item and
``<h1>Lift off</h1>`` one second later; ``GET /`` is the holder page (four iframes, three seconds
apart). Every sleep is multiplied by ``CONFORMANCE_TIME_SCALE`` (``targets/timescale.py``).
Like the corrected app it sends ``text/html; charset=utf-8``, sets no ``Transfer-Encoding`` (the
server owns it) and answers HEAD with headers only. Each piece is one ``http.response.body``
message with ``more_body``, logged to stderr as it is handed to the server.

Run it as ``python -m uvicorn targets.asgi_app:app`` or ``python -m hypercorn targets.asgi_app:app``.
"""
from __future__ import annotations

import asyncio
import re
import sys
import time

from .timescale import factor

HTML = b"text/html; charset=utf-8"
HOLDER_BOXES, HOLDER_DELAY, HOLDER_COUNTDOWN = 4, 3, 10


def countdown(count: int):
    """The countdown as (seconds to sleep before the piece, piece), as the seed writes it."""
    yield 0, "<h2>Prepare for Launch!</h2>"
    yield 0, "<ul>"
    for i in range(count, 0, -1):
        yield 1, "<li>Liftoff in %s...</li>" % i
    yield 0, "</ul>"
    yield 1, "<h1>Lift off</h1>"


def holder():
    for i in range(HOLDER_BOXES):
        yield (0 if i == 0 else HOLDER_DELAY), '<iframe src="/%d" width="200" height="500"></iframe>' % (
            HOLDER_COUNTDOWN - i)
    yield HOLDER_DELAY, ""   # the seed sleeps after its last iframe too


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    m = re.fullmatch(r"/(\d+)", path)
    if path == "/":
        pieces = holder()
    elif m:
        pieces = countdown(int(m.group(1)))
    else:
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"9")]})
        await send({"type": "http.response.body", "body": b"not found"})
        return
    if method not in ("GET", "HEAD"):
        await send({"type": "http.response.start", "status": 405,
                    "headers": [(b"allow", b"GET, HEAD"), (b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", HTML)]})
    if method == "HEAD":
        await send({"type": "http.response.body", "body": b""})
        return
    scale = factor()
    for delay, piece in pieces:
        if delay:
            await asyncio.sleep(delay * scale)
        if piece:
            print("piece", time.monotonic(), len(piece), file=sys.stderr, flush=True)
            await send({"type": "http.response.body", "body": piece.encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b""})
