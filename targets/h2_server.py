"""The countdown over HTTPS with HTTP/2 (hypercorn), and a control that buffers over HTTP/2.

``python -m targets.h2_server MODE 127.0.0.1:PORT`` with MODE ``stream`` (the ASGI countdown,
``targets.asgi_app``), ``buffered`` (the same pieces, all sent at the end), or ``h2-only``
(streams over HTTP/2, holds to the end over HTTP/1.1: the case where only ``delivery.h2`` tells
the user that HTTP/2 streams). The certificate is
made at start-up in the working directory (the launcher's temporary one).
"""
from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from hypercorn.asyncio import serve
from hypercorn.config import Config

from .asgi_app import app as streaming_app
from .asgi_app import countdown
from .timescale import factor
from .tlscert import write_self_signed


async def buffered_app(scope, receive, send):
    """Holds every piece of the countdown until the last one is written."""
    if scope["type"] != "http":
        return await streaming_app(scope, receive, send)
    m = re.fullmatch(r"/(\d+)", scope["path"])
    if not m:
        return await streaming_app(scope, receive, send)
    body = []
    for delay, piece in countdown(int(m.group(1))):
        await asyncio.sleep(delay * factor())
        body.append(piece)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")]})
    await send({"type": "http.response.body", "body": "".join(body).encode()})


async def h2_only_app(scope, receive, send):
    """Streams over HTTP/2; over HTTP/1.x holds every piece to the end (as a hop that buffers only
    its HTTP/1.1 side would)."""
    if scope["type"] == "http" and scope.get("http_version") == "2":
        return await streaming_app(scope, receive, send)
    return await buffered_app(scope, receive, send)


def main(argv: list[str]) -> None:
    mode, address = argv
    cert, key = write_self_signed(Path.cwd())
    config = Config()
    config.bind = [address]
    config.certfile, config.keyfile = str(cert), str(key)
    config.alpn_protocols = ["h2", "http/1.1"]
    config.graceful_timeout = 1
    print(f"h2 {mode} on https://{address}/", flush=True)
    asyncio.run(serve({"stream": streaming_app, "buffered": buffered_app, "h2-only": h2_only_app}[mode], config))


if __name__ == "__main__":
    main(sys.argv[1:])
