"""Hostile servers: raw sockets that misbehave in ways meant to hang or swamp a client.

The suite must survive every one of them: each recording ends by itself within its timeout or
deadline, keeps bounded memory, and says in one line what happened. ``tests/test_hostile.py``
holds the recorder to that. Every mode reads the request head first (except ``close``, which
does not wait for it), then does what ``MODES`` says until the client goes away.

Run as ``python -m targets.hostile MODE 127.0.0.1:PORT``. Intervals are multiplied by the
time scale (``CONFORMANCE_TIME_SCALE``), as for the other targets.
"""
from __future__ import annotations

import itertools
import socket
import struct
import sys
import threading
import time

from .timescale import factor

MODES = {
    "slow-head": "sends the response head one byte every 2 s",
    "endless-chunks": "a chunked body that never ends: a chunk every 50 ms, forever",
    "flood": "a chunked body that never ends, sent as fast as the socket takes it",
    "garbage": "garbage instead of a status line, a line every 50 ms, forever",
    "reset-mid-chunk": "a chunk's first half, then a reset (SO_LINGER 0 close)",
    "huge-chunk-size": "a chunk size of twenty hex digits, then 1 KiB of data every 50 ms, forever",
    "endless-head": "a header block of millions of lines, streamed, never ending",
    "silent": "accepts, reads the request, and never answers",
    "close": "closes the connection at once",
}

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


def read_request(sock: socket.socket) -> bool:
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return False
        buf += data
        if len(buf) > 1 << 20:
            return False
    return True


def serve(mode: str, sock: socket.socket, scale: float) -> None:
    """Misbehave on one connection until the client goes away (any OSError ends it)."""
    with sock:
        try:
            if mode == "close":
                return
            sock.settimeout(120)
            if not read_request(sock):
                return
            if mode == "slow-head":
                for byte in HEAD:
                    sock.sendall(bytes([byte]))
                    time.sleep(2.0 * scale)
                return
            if mode == "endless-chunks":
                sock.sendall(HEAD)
                for k in itertools.count():
                    piece = b"tick %d\n" % k
                    sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                    time.sleep(0.05 * scale)
            if mode == "flood":
                sock.sendall(HEAD)
                block = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
                while True:
                    sock.sendall(block * 16)
            if mode == "garbage":
                for k in itertools.count():
                    sock.sendall(b"\x00\xffGARBAGE %d \x1b[31m not a status line\r\n" % k)
                    time.sleep(0.05 * scale)
            if mode == "reset-mid-chunk":
                sock.sendall(HEAD + b"400\r\n" + b"y" * 0x200)
                time.sleep(0.1 * scale)  # let the half chunk arrive first, then the RST
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if mode == "huge-chunk-size":
                sock.sendall(HEAD + b"FFFFFFFFFFFFFFFFFFFF\r\n")
                while True:
                    sock.sendall(b"z" * 1024)
                    time.sleep(0.05 * scale)
            if mode == "endless-head":
                sock.sendall(b"HTTP/1.1 200 OK\r\n")
                for k in itertools.count(step=1000):
                    sock.sendall(b"".join(b"X-Line-%d: %s\r\n" % (k + i, b"v" * 20) for i in range(1000)))
            if mode == "silent":
                while sock.recv(65536):
                    pass
        except OSError:
            return


def main(argv: list[str]) -> None:
    mode, address = argv[0], argv[1]
    if mode not in MODES:
        sys.exit(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    host, port = address.rsplit(":", 1)
    scale = factor()
    listener = socket.create_server((host, int(port)))
    print(f"hostile {mode} on http://{host}:{port}/", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(mode, conn, scale), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1:])
