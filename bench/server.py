"""A fast local HTTP/1.1 server for the benchmark: pre-built bytes sent with ``sendfile``.

The response is built once per (size, chunk size): a block of whole chunks (``<hex>\\r\\n`` +
data + ``\\r\\n``) of about ``BLOCK`` bytes is written to an in-memory file (``memfd``), and the
body goes out as that block sent again and again with ``os.sendfile`` (the kernel hands the
pages to the socket: no copy in this process), then the remainder and the last-chunk. The
server must never be the bottleneck; the benchmark checks that by measuring curl against it.

Paths:
  ``/chunked/<bytes>/<chunk>``   a chunked body of <bytes> data bytes in chunks of <chunk>
  ``/length/<bytes>``            a Content-Length body

Run as ``python -m bench.server [--port N]``: it binds 127.0.0.1, prints ``port <N>`` on stdout
and serves until stdin closes or it is terminated. Each connection gets its own thread, one
response, then the connection is closed.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import sys
import threading

BLOCK = 4 * 1024 * 1024
PATH = re.compile(rb"^GET /(chunked|length)/(\d+)(?:/(\d+))? HTTP/1\.[01]\r\n", re.I)
_cache: dict[tuple, tuple[int, int]] = {}   # (kind, chunk) -> (memfd, block length)
_lock = threading.Lock()


def _memfd(data: bytes) -> int:
    fd = os.memfd_create("bench-block")
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return fd


def chunk_bytes(size: int, fill: bytes = b"x") -> bytes:
    return b"%x\r\n" % size + fill * size + b"\r\n"


def block_for(kind: str, chunk: int) -> tuple[int, int, int]:
    """(memfd, block length, data bytes per block): a block of whole chunks (or plain bytes)."""
    key = (kind, chunk)
    with _lock:
        if key not in _cache:
            if kind == "chunked":
                per = max(1, BLOCK // chunk)
                data = chunk_bytes(chunk) * per
                _cache[key] = (_memfd(data), len(data), per * chunk)
            else:
                data = b"x" * BLOCK
                _cache[key] = (_memfd(data), len(data), len(data))
        return _cache[key]


def _sendfile_all(sock: socket.socket, fd: int, length: int) -> None:
    offset = 0
    out = sock.fileno()
    while offset < length:
        sent = os.sendfile(out, fd, offset, length - offset)
        if sent == 0:
            raise ConnectionError("sendfile sent nothing")
        offset += sent


def respond(sock: socket.socket, kind: str, total: int, chunk: int) -> None:
    if kind == "chunked":
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
    else:
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\n\r\n" % total)
    fd, block_len, per_block = block_for(kind, chunk)
    full, rest = divmod(total, per_block)
    for _ in range(full):
        _sendfile_all(sock, fd, block_len)
    if kind == "chunked":
        tail = b"".join(chunk_bytes(chunk) for _ in range(rest // chunk))
        if rest % chunk:
            tail += chunk_bytes(rest % chunk)
        sock.sendall(tail + b"0\r\n\r\n")
    elif rest:
        sock.sendall(b"x" * rest)


def handle(sock: socket.socket) -> None:
    try:
        sock.settimeout(30)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            got = sock.recv(65536)
            if not got:
                return
            head += got
        m = PATH.match(head)
        if not m:
            sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        kind = m.group(1).decode().lower()
        total = int(m.group(2))
        chunk = int(m.group(3) or 65536)
        if kind == "chunked" and chunk < 1:
            sock.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        sock.settimeout(None)
        respond(sock, kind, total, chunk)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass   # the client went away
    finally:
        sock.close()


def serve(port: int = 0) -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    print(f"port {srv.getsockname()[1]}", flush=True)
    # End with the parent: when stdin closes (the parent died or closed it), stop.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        conn, _ = srv.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    port = 0
    if "--port" in sys.argv:
        port = int(sys.argv[sys.argv.index("--port") + 1])
    serve(port)
