"""A hostile control for the report writers: a countdown whose every server-controlled field
carries markup, so the self-tests can check that ``report.html`` shows it only as text.

It streams correctly (chunked, one item per interval, like the seed) but its status reason,
several header values, a trailer and the body items carry ``<script>``, ``onerror=`` and
attribute break-outs, plus control and bidi bytes.

Run as ``python -m targets.xss_control 127.0.0.1:PORT`` (interval = 1 s × time scale); serves
``GET /N`` (and HEAD, and HTTP/1.0 with a close-delimited body).
"""
from __future__ import annotations

import re
import socket
import sys
import threading
import time

from .controls import serve_requests
from .timescale import factor

REASON = b'OK <img src=x onerror="alert(3)">'
HEADERS = [
    (b"Content-Type", b"text/html; charset=utf-8"),
    (b"Server", b"<script>alert(5)</script>"),
    (b"X-Evil", b"<script>alert(2)</script>"),
    (b"X-Attr", b"\"'><svg onload=alert(4)>"),
    (b"X-Evil", b"</td></table><iframe srcdoc='<script>alert(6)</script>'>"),
    (b"X-Bidi", b"abc\xe2\x80\xaeevil\x1b[31m"),
    (b"X-Long", b"A" * 5000),
]
TRAILER = b"X-Trailer: <script>alert(7)</script>\r\n"


def countdown(count: int, interval: float) -> list[tuple[float, bytes]]:
    writes = [(0.0, b"<h2>Prepare for Launch!</h2><script>alert(1)</script>"), (0.0, b"<ul>")]
    for k, i in enumerate(range(count, 0, -1), start=1):
        writes.append((k * interval, b"<li>Liftoff in %d...<img src=x onerror=alert(%d)></li>" % (i, i)))
    writes.append((count * interval, b"</ul></pre></textarea>"))
    writes.append(((count + 1) * interval, b"<h1>Lift off</h1><script>alert(1)</script>"))
    return writes


def head(version: str, extra: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"HTTP/1.1 200 " + REASON] + [k + b": " + v for k, v in HEADERS + extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def answer(sock: socket.socket, method: str, path: str, version: str, interval: float) -> bool:
    m = re.fullmatch(r"/(\d+)", path)
    if not m:
        sock.sendall(b"HTTP/1.1 404 <script>alert(404)</script>\r\nContent-Length: 9\r\n\r\nnot found")
        return True
    writes = countdown(min(int(m.group(1)), 1000), interval)
    chunked = version != "1.0"
    te = [(b"Transfer-Encoding", b"chunked"), (b"Trailer", b"X-Trailer")] if chunked else [(b"Connection", b"close")]
    sock.sendall(head(version, te))
    if method == "HEAD":
        return chunked
    start = time.monotonic()
    for at, piece in writes:
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
    if chunked:
        sock.sendall(b"0\r\n" + TRAILER + b"\r\n")
    return chunked


def serve_connection(sock: socket.socket, interval: float) -> None:
    serve_requests(sock, lambda method, path, version, head: answer(sock, method, path, version, interval))


def main(argv: list[str]) -> None:
    host, port = argv[0].rsplit(":", 1)
    interval = 1.0 * factor()
    listener = socket.create_server((host, int(port)))
    print(f"xss control on http://{host}:{port}/", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_connection, args=(conn, interval), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1:])
