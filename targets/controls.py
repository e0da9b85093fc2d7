"""Negative (and one positive) controls: a raw-socket countdown server with one fault each.

The suite's own tests run every check against a control that must pass (``stream``) and
controls that must fail. Writing the bytes by hand lets a control break framing in ways no
framework would. All modes speak the seed's countdown protocol: ``GET /N`` writes
``<h2>…</h2>`` and ``<ul>`` at once, one ``<li>`` per interval, ``</ul>`` with the last item and
``<h1>Lift off</h1>`` one interval later.

Run as ``python -m targets.controls MODE 127.0.0.1:PORT`` (interval = 1 s × time scale).
"""
from __future__ import annotations

import re
import select
import socket
import sys
import threading
import time

from .timescale import factor

MODES = {
    "stream": "correct chunked streaming (the positive control)",
    "buffered": "holds the whole response, then sends head and body with Content-Length",
    "late-body": "sends the head at once but holds every body byte until the end",
    "two-bursts": "releases the body in two bursts: the first half mid-way, the rest at the end",
    "stall": "streams, but stalls for six intervals in the middle",
    "te-and-cl": "chunked body with a Content-Length header as well",
    "chunked-twice": "Transfer-Encoding: chunked, chunked with the body chunked twice",
    "chunked-not-last": "Transfer-Encoding: chunked, gzip with a chunked body, and the connection kept open",
    "bad-chunk-size": "a chunk-size line that is not hex",
    "bad-chunk-crlf": "chunk data followed by a bare LF instead of CRLF",
    "truncated": "closes the connection after three items, without the last-chunk",
    "head-body": "answers HEAD with a body",
    "head-late-chunk": "answers HEAD with its head at once and a stray last-chunk when the GET schedule ends",
    "head-405": "answers HEAD with 405 Method Not Allowed (GET streams)",
    "double-chunked": "Transfer-Encoding: chunked once, but each write chunked twice (an app writing chunk "
                      "framing under a server that chunks again)",
    "close-delimited": "an HTTP/1.1 response without Content-Length or chunked, ended by closing the connection",
    "http10-te": "answers an HTTP/1.0 request with Transfer-Encoding: chunked",
    "no-content-type": "sends no Content-Type",
    "serial-held": "handles one connection at a time (no threads), holds its countdown to the end, and keeps "
                   "writing for six intervals after a client leaves (a single-threaded server, a blocking "
                   "generator under an ASGI bridge)",
}
AFTER_LEAVE = 6   # serial-held: intervals its producer writes on after the client left
# Controls whose stream is not the countdown: what the registry describes them with.


def countdown_schedule(count: int, interval: float) -> list[tuple[float, bytes]]:
    """The seed's writes as (seconds after the request, piece)."""
    writes = [(0.0, b"<h2>Prepare for Launch!</h2>"), (0.0, b"<ul>")]
    for k, i in enumerate(range(count, 0, -1), start=1):
        writes.append((k * interval, b"<li>Liftoff in %d...</li>" % i))
    writes.append((count * interval, b"</ul>"))
    writes.append(((count + 1) * interval, b"<h1>Lift off</h1>"))
    return writes


def chunk(piece: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece)


class Exchange:
    """One request on a connection, answered according to the control's mode."""

    def __init__(self, mode: str, sock: socket.socket, interval: float):
        self.mode, self.sock, self.interval = mode, sock, interval

    def head(self, headers: list[tuple[str, str]]) -> bytes:
        lines = ["HTTP/1.1 200 OK"] + [f"{k}: {v}" for k, v in headers] + ["", ""]
        return "\r\n".join(lines).encode()

    def run(self, method: str, path: str, version: str) -> bool:
        """Answer one request; return whether the connection may carry another."""
        m = re.fullmatch(r"/(\d+)", path)
        if not m:
            self.sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
            return True
        writes = countdown_schedule(int(m.group(1)), self.interval)
        mode = self.mode
        if mode == "serial-held" and method == "GET":
            return self.held_serially(writes, version)
        ctype = [] if mode == "no-content-type" else [("Content-Type", "text/html; charset=utf-8")]
        if method == "HEAD":
            if mode == "head-body":
                self.sock.sendall(self.head(ctype + [("Transfer-Encoding", "chunked")]))
                self.sock.sendall(b"".join(chunk(p) for _, p in writes[:2]) + b"0\r\n\r\n")
            elif mode == "head-late-chunk":   # the GET handler runs on, and its server ends the body
                self.sock.sendall(self.head(ctype + [("Transfer-Encoding", "chunked")]))
                time.sleep(writes[-1][0])
                self.sock.sendall(b"0\r\n\r\n")
            elif mode == "head-405":
                self.sock.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n"
                                  b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 18\r\n\r\n")
            else:
                self.sock.sendall(self.head(ctype + [("Transfer-Encoding", "chunked")]))
            return True
        if version == "1.0" and mode != "http10-te":
            self.sock.sendall(self.head(ctype + [("Connection", "close")]))
            self.timed(writes, lambda p: p)
            return False
        if mode == "close-delimited":
            self.sock.sendall(self.head(ctype + [("Connection", "close")]))
            self.timed(writes, lambda p: p)
            return False
        if mode == "buffered":
            body = b"".join(p for _, p in writes)
            time.sleep(writes[-1][0])
            self.sock.sendall(self.head(ctype + [("Content-Length", str(len(body)))]) + body)
            return True
        te = {"chunked-twice": "chunked, chunked", "chunked-not-last": "chunked, gzip"}.get(mode, "chunked")
        extra = [("Content-Length", "999")] if mode == "te-and-cl" else []
        self.sock.sendall(self.head(ctype + [("Transfer-Encoding", te)] + extra))
        if mode == "late-body":
            time.sleep(writes[-1][0])
            self.sock.sendall(b"".join(chunk(p) for _, p in writes) + b"0\r\n\r\n")
            return True
        if mode == "two-bursts":
            half = len(writes) // 2
            time.sleep(writes[half][0])
            self.sock.sendall(b"".join(chunk(p) for _, p in writes[:half]))
            time.sleep(writes[-1][0] - writes[half][0])
            self.sock.sendall(b"".join(chunk(p) for _, p in writes[half:]) + b"0\r\n\r\n")
            return True
        if mode == "truncated":
            self.timed(writes[:5], chunk)
            return False
        encode = {
            "chunked-twice": lambda p: chunk(chunk(p)),
            "double-chunked": lambda p: chunk(chunk(p)),
            "bad-chunk-size": lambda p: b"%xg\r\n%s\r\n" % (len(p), p),
            "bad-chunk-crlf": lambda p: b"%x\r\n%s\n" % (len(p), p),
        }.get(mode, chunk)
        self.timed(writes, encode)
        if mode in ("chunked-twice", "double-chunked"):
            self.sock.sendall(chunk(b"0\r\n\r\n") + b"0\r\n\r\n")
        else:  # chunked-not-last too: its recipient waits for a close that never comes
            self.sock.sendall(b"0\r\n\r\n")
        return True

    def held_serially(self, writes, version: str) -> bool:
        """serial-held: the producer runs its whole schedule without looking at the client, then
        the whole body goes out with a Content-Length. A client that left meanwhile is noticed
        only then, and the producer writes on into the void for AFTER_LEAVE intervals (nothing
        else is served meanwhile: one connection at a time)."""
        body = b"".join(p for _, p in writes)
        time.sleep(writes[-1][0])
        if client_gone(self.sock):
            for _ in range(AFTER_LEAVE):
                time.sleep(self.interval)
                try:
                    self.sock.send(b"<li>still writing</li>")
                except OSError:
                    pass
            return False
        close = [("Connection", "close")] if version == "1.0" else []
        self.sock.sendall(self.head([("Content-Type", "text/html; charset=utf-8"),
                                     ("Content-Length", str(len(body)))] + close) + body)
        return version != "1.0"

    def timed(self, writes, encode) -> None:
        """Send each piece at its scheduled time after the request."""
        start = time.monotonic()
        for k, (at, piece) in enumerate(writes):
            if self.mode == "stall" and k >= len(writes) // 2:
                at += 6 * self.interval  # the second half comes six intervals late
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.sock.sendall(encode(piece))


def client_gone(sock: socket.socket) -> bool:
    """Whether the client has closed its side (an end of stream waits to be read) or reset it."""
    try:
        ready, _, _ = select.select([sock], [], [], 0)
        return bool(ready) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def serve_requests(sock: socket.socket, answer) -> None:
    """Read requests off one connection and hand each to ``answer(method, path, version, head)``,
    which writes the response and says whether the connection may carry another."""
    buf = b""
    with sock:
        sock.settimeout(60)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                method, path, version = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
                version = version.removeprefix("HTTP/")
                keep = answer(method, path, version, head)
                if not keep or version == "1.0" or b"connection: close" in head.lower():
                    return
        except (OSError, ValueError):
            return


def serve_connection(mode: str, sock: socket.socket, interval: float) -> None:
    serve_requests(sock, lambda method, path, version, head: Exchange(mode, sock, interval).run(method, path, version))


def main(argv: list[str]) -> None:
    mode, address = argv[0], argv[1]
    if mode not in MODES:
        sys.exit(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    host, port = address.rsplit(":", 1)
    interval = 1.0 * factor()
    listener = socket.create_server((host, int(port)), backlog=64)
    print(f"control {mode} on http://{host}:{port}/", flush=True)
    while True:
        conn, _ = listener.accept()
        if mode == "serial-held":   # one at a time: the next connection waits in the backlog
            serve_connection(mode, conn, interval)
        else:
            threading.Thread(target=serve_connection, args=(mode, conn, interval), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1:])
