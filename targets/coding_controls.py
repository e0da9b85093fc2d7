"""Controls for content a coding loses and for naming one hold once (issue 26): each an SSE stream of
10 events 0.3 s apart (× the time scale), judged as users' URLs are, with no profile or interval
given. ``GET /`` serves the mode's stream.

- ``sse-gzip-then-plain``: asked for gzip, the first event goes out as a complete gzip member and
  the other nine follow uncoded (an output-compression layer finished by the app's first flush).
  Identity streams all ten.
- ``sse-gzip-truncated``: asked for gzip, every event is compressed and sync-flushed, but the
  stream is cut in the middle of the last event's deflate data: no final block, no trailer, and
  the chunked body ends there. Identity streams all ten.
- ``sse-held-etag``: the whole stream held to the end and sent with ``Content-Length`` and an
  ``ETag`` (a layer that reads the whole body to hash it); the same with or without gzip.
- ``sse-fastcgi-held``: the whole body held to the end behind ``Server: nginx`` with
  ``X-Powered-By: PHP/8.2.28`` (PHP-FPM behind nginx's FastCGI buffering), chunked.
- ``sse-comment-held``: the app writes its head and an SSE comment at 0 s, but a hop holds head
  and body and releases them together at the end.
- ``sse-head-late``: the app's first write comes 3 s late and the head with it (a server that
  sends the head with the first body write); the events then stream.

Run as ``python -m targets.coding_controls MODE 127.0.0.1:PORT``.
"""
from __future__ import annotations

import hashlib
import socket
import sys
import threading
import time
import zlib

from .controls import chunk, serve_requests
from .timescale import factor

MODES = {
    "sse-gzip-then-plain": "SSE, 10 events; under gzip the first is a complete gzip member and nine follow uncoded",
    "sse-gzip-truncated": "SSE, 10 events; under gzip the coded stream is cut mid-member at the end",
    "sse-held-etag": "SSE, 10 events held to the end, sent with Content-Length and an ETag",
    "sse-fastcgi-held": "SSE, 10 events held to the end behind Server: nginx with X-Powered-By: PHP",
    "sse-comment-held": "SSE, head and a comment written at 0 s, head and body held by a hop to the end",
    "sse-head-late": "SSE, the head sent with the first write 3 s late, the events then streaming",
}
EVENTS, GAP, LATE = 10, 0.3, 3.0
PHP = [("Server", "nginx/1.22.1"), ("X-Powered-By", "PHP/8.2.28")]


def event(k: int) -> bytes:
    return b"id: %d\nevent: tick\ndata: {\"n\": %d, \"of\": %d}\n\n" % (k, k, EVENTS)


def schedule(scale: float, start: float = 0.0) -> list[tuple[float, bytes]]:
    return [(start + k * GAP * scale, event(k)) for k in range(1, EVENTS + 1)]


def head(extra=(), length: int | None = None) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: text/event-stream; charset=utf-8", "Cache-Control: no-cache"]
    lines += [f"{k}: {v}" for k, v in extra]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines + ["", ""])).encode()


def _wait(start: float, at: float) -> None:
    delay = start + at - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def answer(mode: str, sock: socket.socket, method: str, path: str, version: str, req: bytes, scale: float) -> bool:
    """Answer one request; return whether the connection may carry another."""
    if path.split("?")[0] != "/":
        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
        return True
    start = time.monotonic()
    gzip_asked = any(line.lower().startswith(b"accept-encoding:") and b"gzip" in line.lower()
                     for line in req.split(b"\r\n")[1:])
    writes = schedule(scale, LATE * scale if mode == "sse-head-late" else 0.0)
    body = b"".join(p for _, p in writes)
    coded = gzip_asked and mode in ("sse-gzip-then-plain", "sse-gzip-truncated")
    extra = [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")] if coded else []
    if version == "1.0":   # no chunked framing for HTTP/1.0: the body ends with the connection
        sock.sendall(head([("Connection", "close")])[:-len("Transfer-Encoding: chunked\r\n\r\n")] + b"\r\n")
        for at, piece in ([] if method == "HEAD" else writes):
            _wait(start, at)
            sock.sendall(piece)
        return False
    if mode in ("sse-held-etag", "sse-comment-held", "sse-fastcgi-held"):
        comment = b": connected\n\n" if mode == "sse-comment-held" else b""
        _wait(start, writes[-1][0])
        if mode == "sse-held-etag":
            etag = hashlib.sha1(body).hexdigest()[:16]
            sock.sendall(head([("ETag", f'W/"{etag}"')], len(body)) + (b"" if method == "HEAD" else body))
            return True
        sock.sendall(head(PHP if mode == "sse-fastcgi-held" else []) +
                     (b"" if method == "HEAD" else chunk(comment + body) + b"0\r\n\r\n"))
        return True
    if mode == "sse-head-late":
        _wait(start, writes[0][0])
    sock.sendall(head(extra))
    if method == "HEAD":
        return True
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    for k, (at, piece) in enumerate(writes):
        _wait(start, at)
        if not coded:
            out = piece
        elif mode == "sse-gzip-then-plain":
            out = z.compress(piece) + z.flush() if k == 0 else piece   # the member ends with the first flush
        else:
            out = z.compress(piece) + z.flush(zlib.Z_SYNC_FLUSH)
            if k == len(writes) - 1:
                out = out[:len(out) // 2]        # cut mid-member: no final block, no trailer
        sock.sendall(chunk(out))
    sock.sendall(b"0\r\n\r\n")
    return True


def builtins():
    """The modes as built-in targets ``control-<mode>`` (``targets.registry``)."""
    from .registry import Builtin
    return [Builtin(f"control-{mode}", ("{python}", "-m", f"{__package__}.coding_controls", mode, "{address}"),
                    f"control: {what}", path="/", profile=None, interval=None) for mode, what in MODES.items()]


def main(argv: list[str]) -> None:
    mode, address = argv[0], argv[1]
    if mode not in MODES:
        sys.exit(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    host, port = address.rsplit(":", 1)
    listener = socket.create_server((host, int(port)), backlog=64)
    print(f"control {mode} on http://{host}:{port}/", flush=True)
    scale = factor()
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_requests, daemon=True,
                         args=(conn, lambda m, p, v, h, c=conn: answer(mode, c, m, p, v, h, scale))).start()


if __name__ == "__main__":
    main(sys.argv[1:])
