"""The probe: a streaming endpoint with a known schedule, to mount behind any stack.

Paths (matched at the *end* of the path, so any mount prefix works: ``/probe/sse/5``):

| path | Content-Type | writes |
| --- | --- | --- |
| ``/countdown/N`` | ``text/html; charset=utf-8`` | the countdown protocol: N+2 (``<h2>``/``<ul>``, N items, the heading) |
| ``/sse/N`` | ``text/event-stream; charset=utf-8`` | N events |
| ``/ndjson/N`` | ``application/x-ndjson`` | N lines |
| ``/bytes/N`` | ``application/octet-stream`` | N fixed-size text lines |

Write ``k`` (``seq``, from 0) is made at ``k × interval`` after the request (``?interval=SECONDS``,
default 1; the schedule is absolute, so sleeps do not drift). Every write carries, in-band, the
server's own wall-clock time when it was made (``t``, Unix seconds), its sequence number and the
schedule (profile, count, interval), so the suite recognises the probe and its schedule from the
body alone (``recognise``):

- countdown: ``<li>Liftoff in 3...</li><!--probe profile=countdown seq=2 count=5 interval=1.000000 t=1700000000.123456-->``
- sse: ``id: 2`` / ``event: probe`` / ``data: {"probe": "conformance", "profile": "sse", "seq": 2, "count": 5, "interval": 1.0, "t": 1700000000.123456}``
- ndjson: that JSON object on one line;
- bytes: ``probe profile=bytes seq=0000002 count=0000005 interval=00001.000000 t=1700000000.123456`` and a LF
  (every write the same length: 88 bytes).

The probe sends no header that changes what a proxy does (no ``X-Accel-Buffering``, no
``Cache-Control``), so it shows what a chain does to an ordinary app; ``?x-accel-buffering=no``
(or ``yes``) adds that header, to show nginx's per-response switch.

Run it as ``conformance.probe:wsgi_app`` (WSGI), ``conformance.probe:asgi_app`` (ASGI), or
``python -m conformance.probe --port P [--host 127.0.0.1]`` (cheroot, web.py's server, which the
suite already depends on; HTTP/1.1 with chunked framing). ``mount_wsgi`` / ``mount_asgi`` put it
under a prefix of an existing app.

The judge side is pure: ``recognise(body) -> ProbeSchedule | None``, ``arrival_times(schedule,
rec)``, ``clock_offset(schedule, arrivals)`` and ``write_delays(...)``.
"""
from __future__ import annotations

import asyncio
import bisect
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

PROFILES = ("countdown", "sse", "ndjson", "bytes")
CONTENT_TYPES = {"countdown": "text/html; charset=utf-8", "sse": "text/event-stream; charset=utf-8",
                 "ndjson": "application/x-ndjson", "bytes": "application/octet-stream"}
MAX_COUNT = 100_000
MAX_INTERVAL = 3600.0
DEFAULT_INTERVAL = 1.0
MARK = "conformance"       # the JSON writes' "probe" field
ROUTE = re.compile(r"/(countdown|sse|ndjson|bytes)/(\d{1,7})/?$")
HELP = ("The conformance probe serves /countdown/N, /sse/N, /ndjson/N and /bytes/N (N writes; the "
        "countdown writes N+2), one write per ?interval=SECONDS (default 1). ?x-accel-buffering=no "
        "adds that header.\n")


# --- what the probe writes --------------------------------------------------------------------

@dataclass(frozen=True)
class ProbeRequest:
    profile: str
    count: int
    interval: float = DEFAULT_INTERVAL
    x_accel_buffering: str | None = None

    @property
    def writes(self) -> int:
        return expected_writes(self.profile, self.count)

    def headers(self) -> list[tuple[str, str]]:
        out = [("Content-Type", CONTENT_TYPES[self.profile])]
        if self.x_accel_buffering:
            out.append(("X-Accel-Buffering", self.x_accel_buffering))
        return out


def expected_writes(profile: str, count: int) -> int:
    return count + 2 if profile == "countdown" else count


def parse_request(path: str, query: str) -> ProbeRequest | tuple[int, str]:
    """The probe request a path and query ask for, or (HTTP status, message) when they ask for
    nothing the probe serves."""
    m = ROUTE.search(path or "")
    if not m:
        return 404, HELP
    profile, count = m.group(1), int(m.group(2))
    if not 1 <= count <= MAX_COUNT:
        return 400, f"N must be 1 to {MAX_COUNT}\n"
    try:
        params = parse_qs(query or "", max_num_fields=20)
    except ValueError:
        return 400, "too many query parameters\n"
    interval = DEFAULT_INTERVAL
    if "interval" in params:
        try:
            interval = float(params["interval"][-1])
        except ValueError:
            interval = math.nan
        if not (math.isfinite(interval) and 0 <= interval <= MAX_INTERVAL):
            return 400, f"interval must be 0 to {MAX_INTERVAL:g} seconds\n"
    accel = None
    if "x-accel-buffering" in params:
        accel = params["x-accel-buffering"][-1].lower()
        if accel not in ("yes", "no"):
            return 400, "x-accel-buffering must be yes or no\n"
    return ProbeRequest(profile, count, interval, accel)


def write(req: ProbeRequest, seq: int, t: float) -> bytes:
    """The bytes of write ``seq`` (from 0), made at server time ``t``."""
    p, n = req.profile, req.count
    if p == "countdown":
        mark = f"<!--probe profile=countdown seq={seq} count={n} interval={req.interval:.6f} t={t:.6f}-->"
        if seq == 0:
            text = "<h2>Prepare for Launch!</h2><ul>"
        elif seq <= n:
            i = n - seq + 1
            text = f"<li>Liftoff in {i}...</li>" + ("</ul>" if i == 1 else "")
        else:
            text = "<h1>Lift off</h1>"
        return (text + mark).encode()
    if p == "bytes":
        return b"probe profile=bytes seq=%07d count=%07d interval=%012.6f t=%017.6f\n" % (seq, n, req.interval, t)
    data = json.dumps({"probe": MARK, "profile": p, "seq": seq, "count": n, "interval": req.interval,
                       "t": round(t, 6)})
    if p == "sse":
        return f"id: {seq}\nevent: probe\ndata: {data}\n\n".encode()
    return (data + "\n").encode()


# --- WSGI ---------------------------------------------------------------------------------------

def _plain(status: int, text: str) -> tuple[str, list[tuple[str, str]], bytes]:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}[status]
    body = text.encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    if status == 405:
        headers.append(("Allow", "GET, HEAD"))
    return f"{status} {reason}", headers, body


def _route(method: str, path: str, query: str):
    """(status line, headers, body or a ProbeRequest to stream)."""
    if path.rstrip("/") == "" and method in ("GET", "HEAD"):
        return _plain(200, HELP)
    req = parse_request(path, query)
    if not isinstance(req, ProbeRequest):
        return _plain(*req)
    if method not in ("GET", "HEAD"):
        return _plain(405, "the probe answers GET and HEAD\n")
    return "200 OK", req.headers(), req


def _wsgi_writes(req: ProbeRequest):
    start = time.monotonic()
    for seq in range(req.writes):
        wait = start + seq * req.interval - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        yield write(req, seq, time.time())


def wsgi_app(environ, start_response):
    """The probe as a WSGI application."""
    method = environ.get("REQUEST_METHOD", "GET")
    status, headers, body = _route(method, environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""))
    start_response(status, headers)
    if method == "HEAD":
        return [b""]
    if isinstance(body, ProbeRequest):
        return _wsgi_writes(body)
    return [body]


def mount_wsgi(app, prefix: str = "/probe"):
    """``app`` with the probe answering under ``prefix`` (e.g. Django's ``application``)."""
    prefix = "/" + prefix.strip("/")

    def mounted(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == prefix or path.startswith(prefix + "/"):
            environ = dict(environ, SCRIPT_NAME=environ.get("SCRIPT_NAME", "") + prefix,
                           PATH_INFO=path[len(prefix):])
            return wsgi_app(environ, start_response)
        return app(environ, start_response)
    return mounted


# --- ASGI ---------------------------------------------------------------------------------------

async def asgi_app(scope, receive, send):
    """The probe as an ASGI application (HTTP; lifespan acknowledged). It stops writing when the
    client goes away (``http.disconnect``)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    method = scope.get("method", "GET")
    query = scope.get("query_string", b"").decode("latin-1")
    status, headers, body = _route(method, scope.get("path", ""), query)
    await send({"type": "http.response.start", "status": int(status.split()[0]),
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
    if method == "HEAD" or not isinstance(body, ProbeRequest):
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
        return
    req = body
    gone = asyncio.Event()

    async def watch():
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
                return

    watcher = asyncio.ensure_future(watch())
    loop = asyncio.get_running_loop()
    try:
        start = loop.time()
        for seq in range(req.writes):
            wait = start + seq * req.interval - loop.time()
            if wait > 0:
                try:
                    await asyncio.wait_for(gone.wait(), wait)
                except asyncio.TimeoutError:
                    pass
            if gone.is_set():
                return
            await send({"type": "http.response.body", "body": write(req, seq, time.time()), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    finally:
        watcher.cancel()


def mount_asgi(app, prefix: str = "/probe"):
    """``app`` with the probe answering under ``prefix`` (any ASGI app; FastAPI and Starlette
    can also ``app.mount(prefix, asgi_app)``)."""
    prefix = "/" + prefix.strip("/")

    async def mounted(scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == prefix or path.startswith(prefix + "/"):
            return await asgi_app(scope, receive, send)
        return await app(scope, receive, send)
    return mounted


# --- recognising the probe from a body (the judge side; pure) ----------------------------------

@dataclass(frozen=True)
class ProbeWrite:
    seq: int
    t: float     # the server's wall clock when it made the write (Unix seconds)
    end: int     # the offset of the write's last byte in the (decoded) body


@dataclass(frozen=True)
class ProbeSchedule:
    """What a probe body says about itself: its schedule and each write it carries."""
    profile: str
    count: int          # the N of the path
    interval: float
    writes: tuple[ProbeWrite, ...]

    @property
    def expected(self) -> int:
        """How many writes the probe makes (the countdown: N+2)."""
        return expected_writes(self.profile, self.count)

    @property
    def complete(self) -> bool:
        return len(self.writes) == self.expected

    @property
    def span(self) -> float:
        return (self.expected - 1) * self.interval

    @property
    def timestamps(self) -> list[float]:
        return [w.t for w in self.writes]

    @property
    def ends(self) -> list[int]:
        return [w.end for w in self.writes]


_NUM = rb"(\d{1,7})"
_KV = re.compile(rb"probe profile=(countdown|bytes) seq=" + _NUM + rb" count=" + _NUM +
                 rb" interval=(\d{1,6}\.\d{1,9}) t=(\d{1,12}\.\d{1,9})(-->|\n)")
_LINE_END = re.compile(rb"\r\n|\n|\r")
MAX_LINE = 4096   # a probe's JSON write is under 200 bytes; longer lines are not parsed


def _from_json(text: bytes):
    if len(text) > MAX_LINE:
        return None
    try:
        d = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(d, dict) or d.get("probe") != MARK:
        return None
    seq, count, interval, t = d.get("seq"), d.get("count"), d.get("interval"), d.get("t")
    if not (type(seq) is int and type(count) is int and type(interval) in (int, float) and type(t) in (int, float)):
        return None
    return d.get("profile"), seq, count, float(interval), float(t)


def _sse_writes(body: bytes):
    """(fields, end) for each SSE event whose data line is a probe write."""
    pos, data, out = 0, None, []
    if body.startswith(b"\xef\xbb\xbf"):
        pos = 3
    for m in _LINE_END.finditer(body, pos):
        line = body[pos:m.start()]
        pos = m.end()
        if not line:
            if data is not None:
                out.append((data, m.end() - 1))
            data = None
        elif line.startswith(b"data:"):
            data = _from_json(line[5:].strip())
    return out


def _ndjson_writes(body: bytes):
    out, pos = [], 0
    while True:
        nl = body.find(b"\n", pos)
        if nl < 0:
            return out
        fields = _from_json(body[pos:nl].strip()) if nl - pos <= MAX_LINE else None
        if fields is not None:
            out.append((fields, nl))
        pos = nl + 1


def recognise(body: bytes) -> ProbeSchedule | None:
    """The probe's schedule and writes, read from a (decoded) body; None when it is not a probe's.

    Reads the body as data: a write counts only when its fields are well formed and agree with
    the first write's schedule; a repeated or out-of-order ``seq`` is left out."""
    found = [((p.decode(), int(s), int(n), float(i), float(t)), m.end() - 1)
             for m in _KV.finditer(body) for p, s, n, i, t in [m.groups()[:5]]]
    if not found:
        found = _sse_writes(body) if b"event: probe" in body else []
        found = [f for f in found if f[0][0] == "sse"]
    if not found:
        found = [f for f in _ndjson_writes(body) if f[0][0] == "ndjson"]
    if not found:
        return None
    profile, _, count, interval, _ = found[0][0]
    if profile not in PROFILES or not 1 <= count <= MAX_COUNT or not (math.isfinite(interval) and 0 <= interval <= MAX_INTERVAL):
        return None
    writes: list[ProbeWrite] = []
    for (p, seq, n, i, t), end in found:
        if (p, n, i) != (profile, count, interval) or not 0 <= seq < expected_writes(profile, count):
            continue
        if writes and seq <= writes[-1].seq or not math.isfinite(t):
            continue
        writes.append(ProbeWrite(seq, t, end))
    return ProbeSchedule(profile, count, interval, tuple(writes)) if writes else None


def arrival_times(schedule: ProbeSchedule, rec) -> list[float | None]:
    """When each write's last byte arrived, on the recording's clock (None: not kept)."""
    pieces = list(rec.pieces)
    starts = [p.offset for p in pieces]
    out: list[float | None] = []
    for w in schedule.writes:
        i = bisect.bisect_right(starts, w.end) - 1
        out.append(pieces[i].t if i >= 0 and w.end < pieces[i].offset + pieces[i].size else None)
    return out


def clock_offset(schedule: ProbeSchedule, arrivals: list[float | None], method: str = "first") -> float | None:
    """The offset that maps the server's clock onto the recording's (``arrival ≈ t + offset``).

    ``first``: from the first write that arrived (the issue's estimate: right when the first
    event is not held). ``min``: the smallest ``arrival - t`` over all writes, the write least
    held on the way, which stays right when the first ones were held (a buffered body: then the
    last write, released with the rest, gives it)."""
    pairs = [(a - w.t) for w, a in zip(schedule.writes, arrivals) if a is not None]
    if not pairs:
        return None
    return pairs[0] if method == "first" else min(pairs)


def write_delays(schedule: ProbeSchedule, arrivals: list[float | None], offset: float | None = None) -> list[float | None]:
    """How much later than the offset predicts each write arrived (seconds; 0 for the write
    that set the offset). ``offset`` defaults to ``clock_offset(..., "min")``."""
    if offset is None:
        offset = clock_offset(schedule, arrivals, "min")
    if offset is None:
        return [None] * len(arrivals)
    return [None if a is None else a - (w.t + offset) for w, a in zip(schedule.writes, arrivals)]


# --- standalone ---------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    import argparse
    import signal
    ap = argparse.ArgumentParser(prog="python -m conformance.probe", description=HELP.strip())
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)")
    ap.add_argument("--threads", type=int, default=32, help="streams served at once (default 32)")
    args = ap.parse_args(argv)
    from cheroot import wsgi
    server = wsgi.Server((args.host, args.port), wsgi_app, numthreads=args.threads, server_name="conformance-probe")

    def stop(signum, frame):
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    print(f"probe on http://{args.host}:{args.port}/  (/countdown/N, /sse/N, /ndjson/N, /bytes/N, ?interval=S)",
          file=sys.stderr, flush=True)
    try:
        server.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
