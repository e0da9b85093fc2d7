"""Real-stream controls: SSE and NDJSON token streams with irregular or endless timing, and the
compression faults real stacks add (issue "Real streams"). Each is judged by the suite given only
its URL, so each mode's path and Content-Type are all the suite learns about it.

Run as ``python -m targets.streams MODE 127.0.0.1:PORT``; every sleep is multiplied by the time
scale (``targets.timescale``). Paths: ``/`` serves the mode's stream. The timing is seeded, so a
mode writes the same schedule on every request.

Modes:
- ``sse-tokens``: 40 SSE events of about 300 bytes, each written alone after a random 20-250 ms
  pause (the usual LLM token shape): streams.
- ``sse-held``: the same 40 events, written at once when the last one is due: held to the end.
- ``sse-buffer4k``: the same events through a 4096-byte buffer flushed when full and at the end.
- ``sse-endless``: one event every 0.5 s, never ending.
- ``ndjson-lines``: 30 NDJSON lines 100 ms apart.
- ``sse-gzip-tail``: 12 events 0.5 s apart; gzip when asked, and each flush's last bytes (the
  last 4 bytes of deflate data, which hold the event's end, and the sync marker) held until the next event; identity
  streams.
- ``sse-gzip-held``: 12 events 0.5 s apart; gzip when asked and the whole body held to the end;
  identity streams.
- ``sse-head-late-gzip``: 8 events 0.5 s apart after a first write 3 s late; identity sends its
  head at once, gzip holds the head until the first write.
- ``html-lines``: ``text/html``, a shell (doctype, title, heading) at once, then 10 countdown lines
  ("Liftoff in N...<br>") with no element of their own, 0.5 s apart: streams.
- ``html-lines-held``: the same page written at once when its last line is due: held to the end.
"""
from __future__ import annotations

import functools
import json
import random
import socket
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

from .controls import chunk, serve_requests
from .timescale import factor

MODES = {
    "sse-tokens": "SSE, 40 events each after a random 20-250 ms pause",
    "sse-held": "SSE, the same 40 events written at once at the end",
    "sse-buffer4k": "SSE, the same 40 events through a 4096-byte buffer flushed when full",
    "sse-endless": "SSE, one event every 0.5 s, never ending",
    "ndjson-lines": "NDJSON, 30 lines 100 ms apart",
    "sse-gzip-tail": "SSE, gzip when asked with each flush's tail held until the next event",
    "sse-gzip-held": "SSE, gzip when asked with the whole body held to the end",
    "sse-head-late-gzip": "SSE, first write 3 s late; under gzip the head waits for it",
    "html-lines": "text/html, a shell then 10 plain countdown lines 0.5 s apart, no markup of their own",
    "html-lines-held": "text/html, the same page written at once at the end",
}
# Answers to any other path (``--not-found``), as servers give them: the engines load one to have a
# page of the target's origin (``scenarios.engines.BLANK_PATH``).
NOT_FOUND = {
    "plain": ("text/plain", "", b"not found"),
    # an API's 404 (OpenAI-, Ollama-style servers answer JSON)
    "json": ("application/json", "", b'{"error": {"message": "not found", "type": "invalid_request_error"}}'),
    # Express's finalhandler: an HTML 404 that forbids everything (scripts, connections)
    "csp": ("text/html; charset=utf-8", "Content-Security-Policy: default-src 'none'\r\nX-Content-Type-Options: nosniff\r\n",
            b'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n'
            b"<pre>Cannot GET /__conformance_blank__</pre>\n</body>\n</html>\n"),
}
SEED = 13
TOKENS = 40
BUFFER = 4096
TAIL = 8    # bytes of each gzip flush held back: 4 of deflate data (an event's last bytes) and the sync marker


def token_schedule(scale: float) -> list[float]:
    """When each of the 40 token events is written (s after the request)."""
    rng = random.Random(SEED)
    at, out = 0.0, []
    for _ in range(TOKENS):
        at += rng.uniform(0.020, 0.250) * scale
        out.append(at)
    return out


def sse_event(k: int) -> bytes:
    """An event of about 300 bytes, as a token stream's JSON chunk."""
    data = json.dumps({"id": k, "choices": [{"delta": {"content": f"token {k} " + "lorem ipsum " * 18}}]})
    return f"id: {k}\nevent: token\ndata: {data}\n\n".encode()


def ndjson_line(k: int) -> bytes:
    return json.dumps({"seq": k, "msg": "x" * 40}).encode() + b"\n"


class Stream:
    """One response: a schedule of (time, piece) and how it is framed and coded."""

    def __init__(self, mode: str, sock: socket.socket, scale: float, not_found: str = "plain"):
        self.mode, self.sock, self.scale, self.not_found = mode, sock, scale, not_found

    def send_head(self, ctype: str, extra: list[tuple[str, str]] = ()) -> None:
        lines = ["HTTP/1.1 200 OK", f"Content-Type: {ctype}", "Cache-Control: no-cache",
                 "Transfer-Encoding: chunked"] + [f"{k}: {v}" for k, v in extra] + ["", ""]
        self.sock.sendall("\r\n".join(lines).encode())

    def at(self, start: float, t: float) -> None:
        delay = start + t - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def run(self, method: str, path: str, version: str, head: bytes) -> bool:
        if path.split("?")[0] != "/":
            ctype, extra, body = NOT_FOUND[self.not_found]
            self.sock.sendall(f"HTTP/1.1 404 Not Found\r\nContent-Type: {ctype}\r\n{extra}Content-Length: {len(body)}\r\n"
                              f"\r\n".encode() + body)
            return True
        gzip_asked = b"gzip" in _header(head, b"accept-encoding")
        start = time.monotonic()
        mode, s = self.mode, self.scale
        if mode == "ndjson-lines":
            schedule = [(k * 0.1 * s, ndjson_line(k)) for k in range(30)]
            ctype = "application/x-ndjson"
        elif mode == "sse-endless":
            schedule = None
            ctype = "text/event-stream"
        elif mode in ("sse-gzip-tail", "sse-gzip-held"):
            schedule = [(k * 0.5 * s, sse_event(k)) for k in range(12)]
            ctype = "text/event-stream"
        elif mode in ("html-lines", "html-lines-held"):
            schedule = [(0.0, b"<!doctype html><html><head><title>Countdown</title></head><body><h1>Countdown</h1>\n")]
            schedule += [((k + 1) * 0.5 * s, b"Liftoff in %d...<br>\n" % (10 - k)) for k in range(10)]
            schedule.append((5.5 * s, b"</body></html>\n"))
            ctype = "text/html; charset=utf-8"
        elif mode == "sse-head-late-gzip":
            schedule = [(3.0 * s + k * 0.5 * s, sse_event(k)) for k in range(8)]
            ctype = "text/event-stream"
        else:
            schedule = list(zip(token_schedule(s), (sse_event(k) for k in range(TOKENS))))
            ctype = "text/event-stream"
        if method == "HEAD":
            self.send_head(ctype)   # a HEAD response has no body
            return True
        if version == "1.0":
            self.sock.sendall(f"HTTP/1.0 200 OK\r\nContent-Type: {ctype}\r\n\r\n".encode())
            for t, piece in schedule or self._endless(start):
                self.at(start, t)
                self.sock.sendall(piece)
            return False
        compress = gzip_asked and mode in ("sse-gzip-tail", "sse-gzip-held", "sse-head-late-gzip")
        if mode == "sse-head-late-gzip" and compress:
            self.at(start, schedule[0][0])     # the head waits for the first write
        self.send_head(ctype, [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")] if compress else [])
        if schedule is None:
            for t, piece in self._endless(start):
                self.at(start, t)
                self.sock.sendall(chunk(piece))
        elif mode in ("sse-held", "html-lines-held"):
            self.at(start, schedule[-1][0])
            self.sock.sendall(chunk(b"".join(p for _, p in schedule)))
        elif mode == "sse-buffer4k":
            buf = b""
            for t, piece in schedule:
                self.at(start, t)
                buf += piece
                while len(buf) >= BUFFER:
                    self.sock.sendall(chunk(buf[:BUFFER]))
                    buf = buf[BUFFER:]
            if buf:
                self.sock.sendall(chunk(buf))
        elif compress:
            self._gzip(start, schedule, hold={"sse-gzip-held": "all", "sse-gzip-tail": "tail"}.get(mode))
        else:
            for t, piece in schedule:
                self.at(start, t)
                self.sock.sendall(chunk(piece))
        self.sock.sendall(b"0\r\n\r\n")
        return True

    def _gzip(self, start: float, schedule, hold: str | None) -> None:
        """Each event compressed and sync-flushed (as a streaming gzip layer does); ``hold``:
        "tail" holds the tail of each flush until the next event, "all" holds everything."""
        z = zlib.compressobj(6, zlib.DEFLATED, 31)
        held = b""
        for t, piece in schedule:
            self.at(start, t)
            data = held + z.compress(piece) + z.flush(zlib.Z_SYNC_FLUSH)
            if hold == "all":
                held = data
                continue
            keep = TAIL if hold == "tail" else 0
            out, held = (data[:-keep], data[-keep:]) if keep else (data, b"")
            if out:
                self.sock.sendall(chunk(out))
        self.sock.sendall(chunk(held + z.flush()))

    def _endless(self, start: float):
        k = 0
        while True:
            yield k * 0.5 * self.scale, sse_event(k)
            k += 1


def _header(head: bytes, name: bytes) -> bytes:
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == name:
            return v.strip().lower()
    return b""


def main(argv: list[str]) -> None:
    """``MODE HOST:PORT [--workers N] [--not-found plain|json|csp]``: with ``--workers N`` a pool
    of N threads serves the connections (as gunicorn's gthread or a model server's batch: a
    connection beyond N waits, accepted but unanswered, until a worker is free); without it every
    connection gets a thread. ``--not-found``: the answer to any other path (``NOT_FOUND``)."""
    mode, address = argv[0], argv[1]
    workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else None
    not_found = argv[argv.index("--not-found") + 1] if "--not-found" in argv else "plain"
    if not_found not in NOT_FOUND:
        sys.exit(f"unknown --not-found {not_found!r}; one of {', '.join(NOT_FOUND)}")
    if mode not in MODES:
        sys.exit(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    host, port = address.rsplit(":", 1)
    listener = socket.create_server((host, int(port)))
    print(f"stream {mode} on http://{host}:{port}/" + (f" ({workers} workers)" if workers else ""), flush=True)
    scale = factor()
    pool = ThreadPoolExecutor(max_workers=workers) if workers else None
    while True:
        conn, _ = listener.accept()
        serve = functools.partial(serve_requests, conn, lambda m, p, v, h, c=conn: Stream(mode, c, scale, not_found).run(m, p, v, h))
        if pool is not None:
            pool.submit(serve)
        else:
            threading.Thread(target=serve, daemon=True).start()


if __name__ == "__main__":
    main(sys.argv[1:])


def builtins():
    """The modes as built-in targets ``control-<mode>``: judged, as users' URLs are, with no
    profile or interval given (see ``targets.registry``)."""
    from .registry import Builtin
    return [Builtin(f"control-{mode}", ("{python}", "-m", f"{__package__}.streams", mode, "{address}"), f"control: {what}",
                    path="/", profile=None, interval=None) for mode, what in MODES.items()]
