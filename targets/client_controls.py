"""Controls for the client checks (``client.httpx``, ``client.requests``, ``client.node-fetch``):
streams that real clients read differently from the raw recorder.

- ``client-sse`` (positive): ``GET /sse`` sends 40 Server-Sent Events, chunked, one write each,
  at random gaps of 20–250 ms (a seeded RNG: every response has the same schedule);
- ``client-sse-held``: the same 40 events, the head at once but every event held until the last is
  written (a buffering layer under an SSE endpoint);
- ``client-ndjson-close``: ``GET /ndjson`` sends 30 small NDJSON lines, one per 100 ms, in a body that is
  delimited by closing the connection (no chunked framing, no Content-Length, as an HTTP/1.0
  upstream or a simple server sends it). It streams on the wire; a client that reads a fixed
  number of bytes at a time (requests' ``iter_lines()``, 512) waits for them.

The gzip case (gzip when asked, the whole body held; identity streams) is
``targets.conditions``' ``gzip-buffered``.

Every gap is multiplied by the time scale. Run as ``python -m targets.client_controls MODE
127.0.0.1:PORT``.
"""
from __future__ import annotations

import random
import socket
import sys
import threading
import time

from .controls import chunk, serve_requests
from .timescale import factor

MODES = {
    "client-sse": "SSE: 40 events at random 20-250 ms gaps (seeded), chunked",
    "client-sse-held": "SSE: the same 40 events, all held until the last is written",
    "client-ndjson-close": "NDJSON: 30 small lines 100 ms apart, the body delimited by the connection's close",
}
PATHS = {"client-sse": "/sse", "client-sse-held": "/sse", "client-ndjson-close": "/ndjson"}
PROFILES = {"client-sse": "sse", "client-sse-held": "sse", "client-ndjson-close": "ndjson"}
# The producer's interval the delivery judges are given (at time scale 1): for the random gaps the
# shortest one, so that no two of the producer's writes may share a burst by the burst rule;
# the scheduling-noise floor of ``Margins.groups_per_burst`` then allows for a busy reader.
INTERVALS = {"client-sse": 0.02, "client-sse-held": 0.02, "client-ndjson-close": 0.1}

SSE_EVENTS, SSE_SEED, SSE_GAPS = 40, 15, (0.020, 0.250)
NDJSON_LINES, NDJSON_INTERVAL = 30, 0.1


def sse_schedule(scale: float = 1.0) -> list[tuple[float, bytes]]:
    """The 40 events as (seconds after the request, bytes); the first at once."""
    rng = random.Random(SSE_SEED)
    at, writes = 0.0, []
    for n in range(1, SSE_EVENTS + 1):
        writes.append((at, b"id: %d\nevent: tick\ndata: {\"n\": %d, \"at\": %.3f}\n\n" % (n, n, at)))
        at += rng.uniform(*SSE_GAPS) * scale
    return writes


def ndjson_schedule(scale: float = 1.0) -> list[tuple[float, bytes]]:
    return [(k * NDJSON_INTERVAL * scale, b'{"n": %d}\n' % k) for k in range(1, NDJSON_LINES + 1)]


def builtins():
    from .registry import Builtin
    return [Builtin(f"control-{mode}", ("{python}", "-m", f"{__package__}.client_controls", mode, "{address}"),
                    f"control: {what}", path=PATHS[mode], profile=PROFILES[mode], interval=INTERVALS[mode])
            for mode, what in MODES.items()]


def head(headers: list[tuple[str, str]]) -> bytes:
    return ("\r\n".join(["HTTP/1.1 200 OK"] + [f"{k}: {v}" for k, v in headers] + ["", ""])).encode("latin-1")


def timed(sock: socket.socket, writes, encode) -> None:
    start = time.monotonic()
    for at, piece in writes:
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendall(encode(piece))


def answer(mode: str, sock: socket.socket, method: str, path: str, version: str, scale: float) -> bool:
    """Answer one request; return whether the connection may carry another."""
    path = path.split("?")[0]
    if path != PATHS[mode]:
        sock.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
        return True
    if mode == "client-ndjson-close":
        sock.sendall(head([("Content-Type", "application/x-ndjson"), ("Connection", "close")]))
        if method != "HEAD":
            timed(sock, ndjson_schedule(scale), lambda p: p)
        return False
    ctype = [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache")]
    writes = sse_schedule(scale)
    if version == "1.0":   # no chunked framing for HTTP/1.0: the body ends with the connection
        sock.sendall(head(ctype + [("Connection", "close")]))
        if method != "HEAD":
            timed(sock, writes, lambda p: p)
        return False
    sock.sendall(head(ctype + [("Transfer-Encoding", "chunked")]))
    if method == "HEAD":
        return True
    if mode == "client-sse-held":
        time.sleep(writes[-1][0])
        sock.sendall(b"".join(chunk(p) for _, p in writes) + b"0\r\n\r\n")
        return True
    timed(sock, writes, chunk)
    sock.sendall(b"0\r\n\r\n")
    return True


def main(argv: list[str]) -> None:
    mode, address = argv[0], argv[1]
    if mode not in MODES:
        sys.exit(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    host, port = address.rsplit(":", 1)
    scale = factor()
    listener = socket.create_server((host, int(port)), backlog=64)
    print(f"control {mode} on http://{host}:{port}{PATHS[mode]}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_requests, daemon=True,
                         args=(conn, lambda m, p, v, h, c=conn: answer(mode, c, m, p, v, scale))).start()


if __name__ == "__main__":
    main(sys.argv[1:])
