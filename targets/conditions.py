"""Controls for delivery under real conditions: a raw-socket countdown server with one fault each.

Each mode streams the seed's countdown correctly (``GET /N``, chunked, one write group per
interval, every piece logged to stderr as ``piece <monotonic> <len>`` like ``webpy_app``) and
serves a large file (``GET /large?size=BYTES``, a sparse file in a temporary directory, read
and sent in fixed blocks) except where its fault says otherwise:

- ``gzip-stream`` (the positive control for gzip): with ``Accept-Encoding: gzip`` the body is
  gzip-encoded and flushed (``Z_SYNC_FLUSH``) after every write group;
- ``gzip-buffered``: a gzip layer that does not flush: nothing comes out until the compressor's
  buffer fills or the body ends;
- ``http10-buffered``: streams to HTTP/1.1 clients, but holds the whole body for HTTP/1.0 ones
  (to send a Content-Length);
- ``serial``: handles one connection at a time (and closes each after its response, saying so);
- ``large-buffered``: reads the whole large file into memory before it sends a byte of it;
- ``disconnect-ignored``: a producer that ignores the client going away and writes on;
- ``reuse-closed``: closes the connection after every response without saying so.

Run as ``python -m targets.conditions MODE 127.0.0.1:PORT`` (interval = 1 s × time scale).
"""
from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import zlib
from urllib.parse import parse_qs, urlsplit

from .controls import chunk, countdown_schedule
from .timescale import factor

MODES = {
    "gzip-stream": "gzip-encodes the countdown and flushes after every write (streams)",
    "gzip-buffered": "a gzip layer that buffers: the encoded body comes out at the end",
    "http10-buffered": "streams to HTTP/1.1 clients, holds the whole body for HTTP/1.0 ones",
    "serial": "handles one connection at a time: streams wait for each other",
    "large-buffered": "reads the whole large file into memory before sending it",
    "disconnect-ignored": "keeps producing after the client went away",
    "reuse-closed": "closes the connection after every response without Connection: close",
}
BLOCK = 1024 * 1024
LARGE_MAX = 64 * 1024 ** 3

# The built-in targets that serve a large body, and where (``{size}`` in bytes).
LARGE_PATHS = {"webpy": "/large?size={size}", **{f"control-{m}": "/large?size={size}" for m in MODES}}


def large_path(builtin: str, size: int) -> str | None:
    """The path of a built-in target's large body of ``size`` bytes (None: it has none)."""
    template = LARGE_PATHS.get(builtin)
    return template.format(size=int(size)) if template else None


def builtins():
    from .registry import Builtin
    return [Builtin(f"control-{mode}", ("{python}", "-m", f"{__package__}.conditions", mode, "{address}"),
                    f"control: {what}") for mode, what in MODES.items()]


def log_piece(piece: bytes) -> bytes:
    print("piece", time.monotonic(), len(piece), file=sys.stderr, flush=True)
    return piece


class Files:
    """Sparse files of the asked sizes in a directory of the server's own, removed at exit."""

    def __init__(self):
        self.dir = None
        self.lock = threading.Lock()

    def path(self, size: int) -> str:
        with self.lock:
            if self.dir is None:
                self.dir = tempfile.mkdtemp(prefix="conditions-large-")
                atexit.register(shutil.rmtree, self.dir, True)
            path = os.path.join(self.dir, f"large-{size}.bin")
            if not os.path.exists(path):
                with open(path + ".tmp", "wb") as f:
                    f.truncate(size)
                os.replace(path + ".tmp", path)
            return path


FILES = Files()


class Request:
    def __init__(self, method: str, target: str, version: str, headers: dict[str, str]):
        self.method, self.target, self.version, self.headers = method, target, version, headers

    def accepts_gzip(self) -> bool:
        for member in self.headers.get("accept-encoding", "").split(","):
            name, _, params = member.strip().partition(";")
            if name.strip().lower() in ("gzip", "x-gzip") and not re.search(r"q\s*=\s*0(\.0*)?\s*$", params):
                return True
        return False


def read_request(sock: socket.socket, buf: bytearray) -> Request | None:
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None
        buf += data
        if len(buf) > 65536:
            return None
    end = buf.index(b"\r\n\r\n")
    head = bytes(buf[:end]).decode("latin-1")
    del buf[:end + 4]
    lines = head.split("\r\n")
    method, target, version = lines[0].split(" ")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = (headers.get(k.strip().lower(), "") + "," + v.strip()).strip(",")
    return Request(method, target, version.removeprefix("HTTP/"), headers)


def head(status: str, headers: list[tuple[str, str]]) -> bytes:
    return ("\r\n".join([f"HTTP/1.1 {status}"] + [f"{k}: {v}" for k, v in headers] + ["", ""])).encode("latin-1")


class Handler:
    def __init__(self, mode: str, sock: socket.socket, interval: float):
        self.mode, self.sock, self.interval = mode, sock, interval

    def send(self, data: bytes) -> bool:
        """Send; False when the client has gone (the disconnect-ignored mode carries on)."""
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            return False

    def answer(self, req: Request) -> bool:
        """Answer one request; return whether the connection may carry another."""
        path = urlsplit(req.target).path
        closing = self.mode in ("serial",) or req.version == "1.0"
        conn = [("Connection", "close")] if self.mode == "serial" else []
        if path == "/large":
            return self.large(req, conn) and not closing
        m = re.fullmatch(r"/(\d+)", path)
        if not m:
            self.send(head("404 Not Found", [("Content-Length", "9")] + conn) + b"not found")
            return not closing
        writes = countdown_schedule(int(m.group(1)), self.interval)
        ctype = [("Content-Type", "text/html; charset=utf-8")]
        if req.method == "HEAD":
            self.send(head("200 OK", ctype + [("Transfer-Encoding", "chunked")] + conn))
            return not closing
        if req.version == "1.0":
            if self.mode == "http10-buffered":
                body = b"".join(log_piece(p) for _, p in writes)
                time.sleep(writes[-1][0])
                self.send(head("200 OK", ctype + [("Content-Length", str(len(body))), ("Connection", "close")]) + body)
            else:
                self.send(head("200 OK", ctype + [("Connection", "close")]))
                self.timed(writes, lambda p: p)
            return False
        gzip = self.mode.startswith("gzip-") and req.accepts_gzip()
        extra = [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")] if gzip else []
        if not self.send(head("200 OK", ctype + extra + [("Transfer-Encoding", "chunked")] + conn)):
            return False
        if gzip:
            z = zlib.compressobj(6, zlib.DEFLATED, 31)
            flush = self.mode == "gzip-stream"

            def encode(p):
                out = z.compress(p) + (z.flush(zlib.Z_SYNC_FLUSH) if flush else b"")
                return chunk(out) if out else b""
            ok = self.timed(writes, encode)
            tail = z.flush(zlib.Z_FINISH)
            ok = ok and self.send((chunk(tail) if tail else b"") + b"0\r\n\r\n")
        else:
            ok = self.timed(writes, chunk) and self.send(b"0\r\n\r\n")
        return ok and not closing and self.mode != "reuse-closed"

    def timed(self, writes, encode) -> bool:
        """Send each piece at its scheduled time; stop when the client has gone, unless this
        producer ignores that."""
        start = time.monotonic()
        for at, piece in writes:
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            data = encode(log_piece(piece))
            if data and not self.send(data) and self.mode != "disconnect-ignored":
                return False
        return True

    def large(self, req: Request, conn) -> bool:
        size = parse_qs(urlsplit(req.target).query).get("size", ["1073741824"])[0]
        if not size.isdigit() or int(size) > LARGE_MAX:
            self.send(head("400 Bad Request", [("Content-Length", "0")] + conn))
            return True
        size = int(size)
        path = FILES.path(size)
        hdrs = [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))] + conn
        if req.method == "HEAD":
            return self.send(head("200 OK", hdrs))
        with open(path, "rb") as f:
            if self.mode == "large-buffered":
                body = f.read()
                return self.send(head("200 OK", hdrs)) and self.send(body)
            if not self.send(head("200 OK", hdrs)):
                return False
            done = 0
            while True:
                block = f.read(BLOCK)
                if not block:
                    return True
                done += len(block)
                os.posix_fadvise(f.fileno(), 0, done, os.POSIX_FADV_DONTNEED)   # as webpy_app does
                if not self.send(block):
                    return False


def serve_connection(mode: str, sock: socket.socket, interval: float) -> None:
    buf = bytearray()
    with sock:
        sock.settimeout(60)
        try:
            while True:
                req = read_request(sock, buf)
                if req is None:
                    return
                if not Handler(mode, sock, interval).answer(req):
                    if mode == "reuse-closed":
                        sock.shutdown(socket.SHUT_RDWR)
                    return
                if "close" in req.headers.get("connection", "").lower():
                    return
        except (OSError, ValueError):
            return


def main(argv: list[str]) -> None:
    mode, address = argv[0], argv[1]
    if mode not in MODES:
        sys.exit(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # atexit removes the large files
    host, port = address.rsplit(":", 1)
    interval = 1.0 * factor()
    listener = socket.create_server((host, int(port)), backlog=64)
    print(f"control {mode} on http://{host}:{port}/", flush=True)
    while True:
        conn, _ = listener.accept()
        if mode == "serial":
            serve_connection(mode, conn, interval)   # one at a time: the next waits in the backlog
        else:
            threading.Thread(target=serve_connection, args=(mode, conn, interval), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1:])
