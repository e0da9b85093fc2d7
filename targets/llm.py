"""LLM-shaped streaming endpoints: the controls for requests with a method, body and credentials.

``python -m targets.llm SHAPE HOST:PORT [options]`` serves one endpoint on loopback, as the APIs
users stream from do (the wire shapes, not the models):

- ``openai``: ``POST /v1/chat/completions``, ``text/event-stream``: a first chunk with the role
  and no content, ``--units`` chunks of ``choices[0].delta.content``, a chunk with
  ``finish_reason`` and no content, then ``data: [DONE]``. Gaps between content chunks run
  20–200 ms (a fixed pseudo-random sequence, so every run is the same).
- ``anthropic``: ``POST /v1/messages``, typed events (``message_start``, ``content_block_start``,
  ``content_block_delta`` with ``delta.text`` every 400 ms, ``ping`` every 100 ms between them
  and a ``: keep-alive`` comment, then ``content_block_stop``, ``message_delta``, ``message_stop``).
- ``ollama``: ``POST /api/generate``, ``application/x-ndjson``: one object per token with
  ``"done": false`` every 100 ms, then one with ``"done": true``.

``--at-end`` computes the same schedule but writes every unit when the last is due (a held
stream). ``--token T`` requires ``Authorization: Bearer T`` (401 without). ``--count-file PATH``
appends ``METHOD PATH`` per request, flushed, so a test counts what reached the server. A GET
(or HEAD) of the endpoint is ``405`` with ``Allow: POST``; OPTIONS is ``204`` with ``Allow``; a
body that is not JSON is ``400`` with an OpenAI-style error object. HTTP/1.1 requests get a
chunked response, HTTP/1.0 ones a close-delimited one. A client that goes away ends its stream
(the write fails).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "ollama": "/api/generate"}
MEDIA = {"openai": "text/event-stream", "anthropic": "text/event-stream", "ollama": "application/x-ndjson"}
WORDS = ("The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".")


def openai_units(n: int, seed: int = 7) -> list[tuple[float, bytes]]:
    """(delay before it, the bytes) of each write of an OpenAI chat completions stream."""
    rng = random.Random(seed)
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000, "model": "control"}

    def chunk(delta, finish=None):
        return b"data: " + json.dumps({**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                                      ).encode() + b"\n\n"
    out = [(0.0, chunk({"role": "assistant", "content": ""}))]
    out += [(rng.uniform(0.02, 0.2), chunk({"content": WORDS[i % len(WORDS)]})) for i in range(n)]
    out += [(0.02, chunk({}, "stop")), (0.0, b"data: [DONE]\n\n")]
    return out


def anthropic_units(n: int) -> list[tuple[float, bytes]]:
    """Typed events: content every 400 ms, a ``ping`` every 100 ms between (three per gap)."""
    def ev(kind, data):
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
    out = [(0.0, ev("message_start", {"type": "message_start", "message": {"id": "msg_1", "role": "assistant",
                                                                          "content": [], "model": "control"}})),
           (0.0, ev("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}}))]
    for i in range(n):
        for k in range(3):
            out.append((0.1, ev("ping", {"type": "ping"}) if k != 1 else b": keep-alive\n\n"))
        out.append((0.1, ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                    "delta": {"type": "text_delta", "text": WORDS[i % len(WORDS)]}})))
    out += [(0.02, ev("content_block_stop", {"type": "content_block_stop", "index": 0})),
            (0.0, ev("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}})),
            (0.0, ev("message_stop", {"type": "message_stop"}))]
    return out


def ollama_units(n: int) -> list[tuple[float, bytes]]:
    out = [(0.1, json.dumps({"model": "control", "created_at": "2026-01-01T00:00:00Z",
                             "response": WORDS[i % len(WORDS)], "done": False}).encode() + b"\n") for i in range(n)]
    out.append((0.05, json.dumps({"model": "control", "response": "", "done": True, "done_reason": "stop"}).encode() + b"\n"))
    return out


def schedule(shape: str, n: int) -> list[tuple[float, bytes]]:
    return {"openai": openai_units, "anthropic": anthropic_units, "ollama": ollama_units}[shape](n)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "llm-control/1"
    opts: argparse.Namespace
    lock = threading.Lock()

    def log_message(self, *args):   # quiet: the count file is the log that matters
        pass

    def _count(self):
        if self.opts.count_file:
            with self.lock, open(self.opts.count_file, "a") as f:
                f.write(f"{self.command} {self.path}\n")
                f.flush()

    def _plain(self, status: int, body: bytes, headers=(), ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str, kind: str, headers=()):
        self._plain(status, json.dumps({"error": {"message": message, "type": kind}}).encode(), headers)

    def do_GET(self):
        self._count()
        if self.path.split("?")[0] == PATHS[self.opts.shape]:
            return self._error(405, "Method Not Allowed", "invalid_request_error", [("Allow", "POST")])
        self._error(404, "Not Found", "not_found")

    do_HEAD = do_GET

    def do_OPTIONS(self):
        self._count()
        self.send_response(204)
        self.send_header("Allow", "POST, OPTIONS")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        self._count()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.split("?")[0] != PATHS[self.opts.shape]:
            return self._error(404, "Not Found", "not_found")
        if self.opts.token and self.headers.get("Authorization") != f"Bearer {self.opts.token}":
            return self._error(401, "Incorrect API key provided", "invalid_request_error")
        try:
            json.loads(body)
        except ValueError:
            return self._error(400, "We could not parse the JSON body of your request.", "invalid_request_error")
        self._stream()

    def _stream(self):
        chunked = self.request_version == "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", MEDIA[self.opts.shape])
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()

        def write(data: bytes):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            self.wfile.flush()
        try:
            held = []
            for delay, data in schedule(self.opts.shape, self.opts.units):
                time.sleep(delay)   # the producer's schedule itself
                if self.opts.at_end:
                    held.append(data)
                else:
                    write(data)
            if held:
                write(b"".join(held))
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m targets.llm", description=__doc__.splitlines()[0])
    ap.add_argument("shape", choices=sorted(PATHS))
    ap.add_argument("address", help="HOST:PORT")
    ap.add_argument("--units", type=int, default=30)
    ap.add_argument("--at-end", action="store_true")
    ap.add_argument("--token")
    ap.add_argument("--count-file")
    opts = ap.parse_args(argv)
    host, _, port = opts.address.rpartition(":")
    Handler.opts = opts
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    print(f"{opts.shape} on http://{host}:{server.server_port}{PATHS[opts.shape]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
