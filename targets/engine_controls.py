"""Controls for the browser engine matrix (``browser.progressive-render`` and its ``.webkit`` and
``.firefox`` checks): what each engine does with a stream the wire delivers on time.

- ``engines-html`` (``GET /N``, N = 8 by default): a countdown page in N + 2 pieces of exactly 40
  bytes (each padded with spaces), 0.5 s apart, ``text/html; charset=utf-8``, chunked. Chromium
  and Firefox show each piece as it comes; WebKit holds the whole page (400 bytes) until it ends:
  it parses a partial document only after about 512 bytes (bugs.webkit.org 252413, 265386).
- ``engines-html-padded``: the same, after 1 KiB of rendered but off-screen text (a ``div`` at
  ``left:-10000px``): WebKit then parses and paints each piece as it comes too.
- ``engines-html-comment``: the same, after a 1 KiB HTML comment: WebKit parses each piece as it
  comes (over 512 bytes) but paints nothing until the end (a comment is not rendered text).
- ``engines-sse`` (``GET /sse``): 10 Server-Sent Events 0.3 s apart; ``engines-sse-held``: the same
  10 events, the head at once but every event held until the last is written.
- ``engines-ndjson`` (``GET /ndjson``): 10 NDJSON lines 0.3 s apart.
- ``engines-sse-json-404``, ``engines-sse-csp-404``: ``engines-sse``, where any other path is
  answered as an API answers it (a JSON 404) or as Express does (an HTML 404 with
  ``Content-Security-Policy: default-src 'none'``): WebKit and Firefox read the stream from a page
  of the target's origin, the target's answer to such a path (``scenarios.engines.BLANK_PATH``).
  Firefox showed the JSON in its JSON viewer, where the page's script never ran; the CSP forbids
  the script (Firefox) or its request (WebKit): the engines' checks are then a skip that says so.

Every gap is multiplied by the time scale. Run as ``python -m targets.engine_controls MODE
127.0.0.1:PORT``.
"""
from __future__ import annotations

import re
import socket
import sys
import threading
import time

from .controls import chunk, serve_requests
from .streams import NOT_FOUND
from .timescale import factor

MODES = {
    "engines-html": "HTML countdown in pieces of 40 bytes, 0.5 s apart (no padding)",
    "engines-html-padded": "the same HTML countdown after 1 KiB of off-screen text",
    "engines-html-comment": "the same HTML countdown after a 1 KiB HTML comment",
    "engines-sse": "SSE: 10 events 0.3 s apart",
    "engines-sse-held": "SSE: the same 10 events, all held until the last is written",
    "engines-ndjson": "NDJSON: 10 lines 0.3 s apart",
    "engines-sse-json-404": "SSE: 10 events 0.3 s apart; other paths a JSON 404, as an API's",
    "engines-sse-csp-404": "SSE: 10 events 0.3 s apart; other paths Express's 404 (Content-Security-Policy: default-src 'none')",
}
NOT_FOUND_OF = {"engines-sse-json-404": "json", "engines-sse-csp-404": "csp"}
PIECE = 40
HTML_INTERVAL, STREAM_INTERVAL, EVENTS = 0.5, 0.3, 10
COMMENT = b"<!--" + b"-" * (1024 - 7) + b"-->"
OFFSCREEN = b'<div style="position:absolute;left:-10000px" aria-hidden="true">' + b"padding " * 120 + b"</div>"


def html_pieces(count: int, padding: bytes = b"") -> list[bytes]:
    """The countdown's N + 2 writes, each exactly PIECE bytes (the first after the padding)."""
    texts = ["<h2>Prepare for Launch</h2><ul>"] + [f"<li>Liftoff in {n}</li>" for n in range(count, 0, -1)] \
        + ["</ul><h1>Lift off</h1>"]
    pieces = [t.encode().ljust(PIECE) for t in texts]
    pieces[0] = padding + pieces[0]
    return pieces


def builtins():
    from .registry import Builtin
    out = []
    for mode, what in MODES.items():
        if mode.startswith("engines-html"):
            kw = dict(path="/8", profile="countdown", interval=HTML_INTERVAL)
        else:
            kind = "sse" if "sse" in mode else "ndjson"
            kw = dict(path=f"/{kind}", profile=kind, interval=STREAM_INTERVAL)
        out.append(Builtin(f"control-{mode}", ("{python}", "-m", f"{__package__}.engine_controls", mode, "{address}"),
                           f"control: {what}", parallel_scenarios=3, workers=10, **kw))
    return out


def head(ctype: str) -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nCache-Control: no-cache\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode("latin-1")


def answer(mode: str, sock: socket.socket, method: str, path: str, scale: float) -> bool:
    path = path.split("?")[0]
    m = re.fullmatch(r"/(\d+)", path)
    if mode.startswith("engines-html") and m and 0 < int(m.group(1)) <= 100:
        writes = html_pieces(int(m.group(1)), {"engines-html-padded": OFFSCREEN, "engines-html-comment": COMMENT}
                             .get(mode, b""))
        ctype, gap = "text/html; charset=utf-8", HTML_INTERVAL
    elif mode.startswith("engines-sse") and path == "/sse":
        writes = [b"id: %d\ndata: {\"n\": %d}\n\n" % (n, n) for n in range(1, EVENTS + 1)]
        ctype, gap = "text/event-stream; charset=utf-8", STREAM_INTERVAL
    elif mode == "engines-ndjson" and path == "/ndjson":
        writes = [b'{"n": %d}\n' % n for n in range(1, EVENTS + 1)]
        ctype, gap = "application/x-ndjson", STREAM_INTERVAL
    else:
        ctype, extra, body = NOT_FOUND[NOT_FOUND_OF.get(mode, "plain")]
        sock.sendall(f"HTTP/1.1 404 Not Found\r\nContent-Type: {ctype}\r\n{extra}Content-Length: {len(body)}\r\n\r\n"
                     .encode() + body)
        return True
    sock.sendall(head(ctype))
    if method == "HEAD":
        return True
    start = time.monotonic()
    if mode == "engines-sse-held":
        time.sleep(gap * scale * (len(writes) - 1))
        sock.sendall(b"".join(chunk(w) for w in writes) + b"0\r\n\r\n")
        return True
    for k, w in enumerate(writes):
        delay = start + k * gap * scale - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendall(chunk(w))
    sock.sendall(b"0\r\n\r\n")
    return True


def main(argv: list[str]) -> None:
    mode, address = argv[0], argv[1]
    if mode not in MODES:
        sys.exit(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
    host, port = address.rsplit(":", 1)
    scale = factor()
    listener = socket.create_server((host, int(port)), backlog=64)
    print(f"control {mode} on http://{host}:{port}", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve_requests, daemon=True,
                         args=(conn, lambda m, p, v, h, c=conn: answer(mode, c, m, p, scale))).start()


if __name__ == "__main__":
    main(sys.argv[1:])
