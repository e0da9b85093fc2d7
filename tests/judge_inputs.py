"""Hypothesis strategies for what a judge can be handed: every scenario's record type, of every
profile, as the recorders make them and as they might be when something went wrong.

``record_for(scenario)`` draws a record of the type that scenario's run function returns
(``Recording`` for get, get-http10, head and h2; ``Compressed`` for get-compressed; ``Concurrent``,
``LargeDownload``, ``DisconnectProbe``, ``ClientRun``, ``BrowserRecording``, ``Chain``), built as
plain data, never by recording anything. ``target()`` draws the ``Target`` it is judged for: a
profile given or not, an interval given or not, a countdown length or not.

A body is a list of the producer's writes (countdown items, SSE events, NDJSON lines, plain HTML
lines after a shell, bytes, or the probe's own writes), each at a drawn time; the writes may be
content-coded (gzip, deflate, br, zstd, or a coding the suite does not know) with a flush per
write, then truncated or corrupted; the coded bytes are cut into reads at drawn offsets. Fields
a recorder may leave unset (head time, status, connect time, end) are sometimes unset.
"""
from __future__ import annotations

import json
import zlib

import brotli
import zstandard
from hypothesis import strategies as st

from conformance import probe
from conformance.scenarios.browser import BrowserRecording, PageRecord, StreamRecord
from conformance.scenarios.chain import Chain, Leg
from conformance.scenarios.clients import ClientRun
from conformance.scenarios.compressed import Compressed
from conformance.scenarios.conditions import Concurrent, DisconnectProbe, LargeDownload, Stream
from conformance.wire.recorder import INTERRUPTED
from conformance.wire.recording import Recording
from conformance.analysis.target import Target

BODY_KINDS = ("countdown", "sse", "ndjson", "bytes", "html-lines", "probe", "garbage", "empty")
ENDS = ("complete", "complete", "complete", "closed", "cut-short", "timeout", "deadline", "reset", "abandoned",
        "watched", "budget", "error", INTERRUPTED, None)
CODINGS = (None, None, None, "gzip", "deflate", "br", "zstd", "compress", "gzip, br")
CONTENT_TYPES = {"countdown": "text/html; charset=utf-8", "html-lines": "text/html", "sse": "text/event-stream",
                 "ndjson": "application/x-ndjson", "bytes": "application/octet-stream", "probe": None,
                 "garbage": "text/plain", "empty": "text/html"}


# --- bodies ----------------------------------------------------------------------------------------

@st.composite
def writes(draw, kind: str) -> list[bytes]:
    """The producer's writes of one body kind, in order."""
    n = draw(st.integers(0, 12))
    if kind == "countdown":
        out = [b"<h2>Prepare for Launch!</h2>", b"<ul>"] + [b"<li>Liftoff in %d...</li>" % i for i in range(n, 0, -1)]
        out += [b"</ul>", b"<h1>Lift off</h1>"]
        if draw(st.integers(0, 5)) == 0:   # numbers the schedule does not have, an item split across writes
            out.insert(2, draw(st.sampled_from([b"<li>Liftoff in 0...</li>", b"<li>Liftoff in 99999999999999999999</li>",
                                                b"<li>Liftoff", b" in 2</li>", b"<h1>Lift off</h1>", b"<ul>"])))
    elif kind == "html-lines":
        out = [b"<!doctype html><html><head><title>t</title></head><body><h1>Countdown</h1>\n"]
        out += [b"Liftoff in %d...<br>\n" % i for i in range(n, 0, -1)] + [b"</body></html>\n"]
    elif kind == "sse":
        eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
        out = [draw(st.sampled_from([b"data: %d" % k + eol + eol, b": keep-alive" + eol + eol,
                                     b"event: tick" + eol + b"data: x" + eol + b"id: %d" % k + eol + eol,
                                     b"retry: 10" + eol + eol, b"data" + eol + eol, b"data: half" + eol]))
               for k in range(n)]
        if out and draw(st.booleans()):
            out[0] = b"\xef\xbb\xbf" + out[0]
    elif kind == "ndjson":
        out = [draw(st.sampled_from([json.dumps({"seq": k}).encode() + b"\n", b"\n", b"  \n", b"{not json}\n",
                                     b'{"seq": %d}' % k])) for k in range(n)]
    elif kind == "probe":
        profile = draw(st.sampled_from(probe.PROFILES))
        req = probe.ProbeRequest(profile, max(1, n), draw(st.sampled_from([0.0, 0.05, 1.0])))
        out = [probe.write(req, seq, 100.0 + seq * req.interval) for seq in range(req.writes)]
    elif kind == "garbage":
        out = draw(st.lists(st.binary(max_size=40), max_size=n))
    elif kind == "empty":
        out = []
    else:   # bytes
        out = draw(st.lists(st.binary(min_size=1, max_size=draw(st.sampled_from([8, 300, 5000]))), max_size=n))
    if out and draw(st.integers(0, 5)) == 0:   # a write lost, or one repeated
        k = draw(st.integers(0, len(out) - 1))
        out = out[:k] + out[k + 1:] if draw(st.booleans()) else out[:k + 1] + out[k:]
    return out


def _encoder(coding: str):
    if coding in ("gzip", "deflate"):
        z = zlib.compressobj(6, zlib.DEFLATED, 31 if coding == "gzip" else 15)
        return lambda data: z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH), lambda: z.flush()
    if coding == "br":
        b = brotli.Compressor()
        return lambda data: b.process(data) + b.flush(), b.finish
    if coding == "zstd":
        z = zstandard.ZstdCompressor().compressobj()
        return (lambda data: z.compress(data) + z.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)), z.flush
    return (lambda data: data), (lambda: b"")   # a coding the suite does not know: bytes as written


@st.composite
def timed_writes(draw, kind: str, coding: str | None) -> list[tuple[float, bytes]]:
    """(time in s after the request, wire bytes) per write, content-coded per write when asked."""
    plain = draw(writes(kind))
    t = draw(st.sampled_from([0.0, 0.001, 0.05, 1.5, 5.0, -0.01]))   # -0.01: a clock that stepped
    pace = draw(st.sampled_from([0.0, 0.0005, 0.02, 0.3, 1.0, 2.5]))
    out = []
    for k, data in enumerate(plain):
        if k:
            t += draw(st.sampled_from([pace, pace, pace, 0.0, 3.0, pace / 2]))
        out.append([t, data])
    if coding:
        for name in [c.strip() for c in coding.split(",")]:
            enc, finish = _encoder(name)
            out = [[t, enc(data)] for t, data in out]
            if draw(st.booleans()):
                tail = finish()
                if out:
                    out[-1][1] += tail
                else:
                    out.append([t, tail])
    if out and draw(st.integers(0, 6)) == 0:   # a corrupt byte
        k = draw(st.integers(0, len(out) - 1))
        if out[k][1]:
            i = draw(st.integers(0, len(out[k][1]) - 1))
            out[k][1] = out[k][1][:i] + bytes([out[k][1][i] ^ 0x5A]) + out[k][1][i + 1:]
    if out and draw(st.integers(0, 6)) == 0:   # cut short
        out = out[:draw(st.integers(0, len(out)))]
    return [(t, bytes(d)) for t, d in out]


@st.composite
def pieces_of(draw, timed: list[tuple[float, bytes]]) -> list[tuple[float, bytes]]:
    """The writes as the reader got them: merged, split at drawn offsets, some read late."""
    out: list[list] = []
    for t, data in timed:
        if not data:
            continue
        how = draw(st.sampled_from(["own", "own", "merge", "split", "late"]))
        if how == "merge" and out:
            out[-1][1] += data
            out[-1][0] = max(out[-1][0], t)
        elif how == "split" and len(data) > 1:
            cut = draw(st.integers(1, len(data) - 1))
            out.append([t, data[:cut]])
            out.append([t + draw(st.sampled_from([0.0, 0.01, 0.4, 2.0])), data[cut:]])
        else:
            out.append([t + (draw(st.sampled_from([0.0, 0.3, 1.2])) if how == "late" else 0.0), data])
    for k in range(1, len(out)):   # times never go backwards
        out[k][0] = max(out[k][0], out[k - 1][0])
    return [(t, bytes(d)) for t, d in out]


@st.composite
def recording(draw, scenario: str = "get", kind: str | None = None, url: str | None = None) -> Recording:
    """One exchange's ``Recording``, of any body kind, coding, framing and end."""
    kind = kind or draw(st.sampled_from(BODY_KINDS))
    coding = draw(st.sampled_from(CODINGS))
    n = draw(st.sampled_from([None, 0, 3, 10]))
    url = url or draw(st.sampled_from(["http://127.0.0.1:1/", f"http://127.0.0.1:1/{n or 10}", "http://127.0.0.1:1/0",
                                       f"https://127.0.0.1:1/sse/{n or 3}", "http://127.0.0.1:1/countdown/5?interval=1"]))
    rec = Recording(scenario, url)
    if draw(st.integers(0, 12)) == 0:   # could not be recorded at all
        rec.error = draw(st.sampled_from(["cannot connect to 127.0.0.1:1: refused", "TLS handshake failed",
                                          "the run was interrupted before the request was sent"]))
        rec.end = draw(st.sampled_from([None, INTERRUPTED]))
        return rec
    rec.connect_s = draw(st.sampled_from([None, 0.0, 0.0004, 0.05, 0.3]))
    rec.head_t = draw(st.sampled_from([None, 0.0, 0.001, 0.2, 1.5]))
    rec.http_version = draw(st.sampled_from(["1.1", "1.1", "1.0", "2", None]))
    rec.status = draw(st.sampled_from([200, 200, 200, 200, 206, 204, 304, 302, 404, 500, None]))
    rec.reason = "OK"
    ctype = CONTENT_TYPES.get(kind)
    headers = []
    if ctype and draw(st.integers(0, 4)):
        headers.append(["Content-Type", ctype])
    if coding:
        headers.append(["Content-Encoding", coding])
    if rec.status in (301, 302):
        headers.append(["Location", draw(st.sampled_from(["/other", "http://elsewhere/", ""]))])
    rec.framing = draw(st.sampled_from(["chunked", "chunked", "content-length", "close", "none", None]))
    if rec.framing == "chunked":
        headers.append(["Transfer-Encoding", draw(st.sampled_from(["chunked", "chunked", "chunked, chunked", "gzip"]))])
    for extra in draw(st.lists(st.sampled_from([["Connection", "close"], ["Content-Length", "5"],
                                                ["X-Accel-Buffering", "no"], ["Cache-Control", "no-transform"],
                                                ["Trailer", "X-T"]]), max_size=2)):
        headers.append(extra)
    rec.headers = headers
    timed = draw(timed_writes(kind, coding))
    offset = 0
    body = b""
    t_last = rec.head_t or 0.0
    for t, data in draw(pieces_of(timed)):
        t = max(t, rec.head_t or 0.0)
        flags = draw(st.sampled_from([(True, True), (True, True), (True, False), (False, True), (False, False)]))
        rec.pieces.add(t, offset, len(data), *flags)
        rec.reads.add(t, len(data) + draw(st.sampled_from([0, 5, 7])))
        offset += len(data)
        body += data
        t_last = t
    if draw(st.integers(0, 8)) == 0:   # a zero-size piece (a chunk header alone, a last-chunk)
        rec.pieces.add(t_last, offset, 0, True, True)
    rec.body_bytes = offset
    rec.body_kept = body.decode("latin-1")
    if body and draw(st.integers(0, 8)) == 0:   # more arrived than was kept
        rec.body_bytes = offset + draw(st.integers(1, 10_000))
    if draw(st.integers(0, 8)) == 0:
        rec.reads.clear()
    rec.raw_bytes = sum(r.size for r in rec.reads)
    rec.end = draw(st.sampled_from(ENDS))
    rec.end_t = None if rec.end is None or draw(st.integers(0, 6)) == 0 else t_last + draw(st.sampled_from([0.0, 0.01, 2.0]))
    if rec.head_t is None and draw(st.booleans()):   # no head: nothing after it either
        rec.status, rec.headers, rec.framing = None, [], None
        rec.pieces.clear()
        rec.reads.clear()
        rec.body_bytes, rec.body_kept = 0, ""
    if draw(st.integers(0, 10)) == 0:
        rec.parser, rec.strict_error = "tolerant", "malformed chunk size"
        rec.framing_notes.append("chunk size line 'zz' is not hex")
    rec.after_end_bytes = draw(st.sampled_from([0, 0, 0, 12]))
    return rec


# --- targets ---------------------------------------------------------------------------------------

@st.composite
def target(draw, url: str | None = None) -> Target:
    url = url or draw(st.sampled_from(["http://127.0.0.1:1/10", "http://127.0.0.1:1/events", "https://127.0.0.1:1/3"]))
    profile = draw(st.sampled_from([None, None, "countdown", "sse", "ndjson", "bytes"]))
    interval = draw(st.sampled_from([None, None, 1.0, 0.05, 0.001]))
    count = draw(st.sampled_from([None, None, 3, 10]))
    return Target(url, url, profile, interval, count, draw(st.sampled_from([None, None, 1, 5])),
                  watch=draw(st.sampled_from([None, 2.0])), pace_s=draw(st.sampled_from([None, 0.5])))


# --- the other scenarios' records ------------------------------------------------------------------

@st.composite
def compressed(draw) -> Compressed:
    rec = draw(recording("get-compressed"))
    exchanges = [rec]
    if draw(st.booleans()):
        second = draw(recording("get-compressed-second", kind="empty"))
        second.method = "HEAD"
        exchanges.append(second)
    identity = draw(st.one_of(st.none(), recording("get")))
    return Compressed(exchanges, identity)


@st.composite
def concurrent(draw) -> Concurrent:
    streams = []
    for k in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["stream", "stream", "iframe"]))
        url = "http://127.0.0.1:1/%d" % draw(st.integers(1, 10))
        rec = draw(st.one_of(recording("concurrent", url=url), st.none() if k else recording("concurrent", url=url)))
        streams.append(Stream(f"{kind} {k + 1}", url, kind, draw(st.sampled_from([100.0, 100.5, 103.0])), rec,
                              named_at=draw(st.sampled_from([None, 0.5])) if kind == "iframe" else None))
    holder = draw(st.one_of(st.none(), recording("holder")))
    return Concurrent("concurrent", streams, holder=holder, holder_started=None if holder is None else 100.0,
                      holder_note=draw(st.sampled_from(["", "the holder page named no iframes"])))


@st.composite
def large(draw) -> LargeDownload:
    rec = draw(recording("large", kind="bytes"))
    skip = draw(st.sampled_from([None, None, None, "no large body on a remote target"]))
    mib = 1024 * 1024
    return LargeDownload("large", rec, skip=skip, requested=draw(st.sampled_from([None, rec.body_bytes, 64 * mib])),
                         expected=draw(st.sampled_from([None, rec.body_bytes, 10])),
                         first_byte_s=draw(st.sampled_from([None, 0.0, 0.01, 30.0])),
                         duration_s=draw(st.sampled_from([None, 0.0, 0.5, 60.0])),
                         client_base=draw(st.sampled_from([0, 50 * mib])), client_peak=draw(st.sampled_from([0, 60 * mib, 2000 * mib])),
                         server_base=draw(st.sampled_from([None, 10 * mib])),
                         server_peak=draw(st.sampled_from([None, 12 * mib, 900 * mib])),
                         problem=draw(st.sampled_from([None, "chunk size line is not hex"])))


@st.composite
def disconnect(draw) -> DisconnectProbe:
    rec = draw(recording("disconnect"))
    times = sorted(draw(st.lists(st.sampled_from([-1.0, 0.0, 0.001, 0.5, 1.0, 3.0]), max_size=8)))
    return DisconnectProbe("disconnect", rec, skip=draw(st.sampled_from([None, None, "a remote target"])),
                           closed_at=draw(st.sampled_from([None, 0.0, 0.3, 5.0])), logged=draw(st.booleans()),
                           before=draw(st.integers(0, 5)), times=times, watched_s=draw(st.sampled_from([0.0, 3.5])))


@st.composite
def client_run(draw, scenario: str) -> ClientRun:
    primary = draw(recording(scenario))
    wire = draw(st.one_of(st.none(), recording(scenario + "-wire")))
    reference = draw(st.one_of(st.none(), recording("get")))
    skip = draw(st.sampled_from([None, None, None, None, "httpx-sse is not installed"]))
    if draw(st.booleans()):
        primary.request_headers = [["Accept-Encoding", draw(st.sampled_from(["gzip, deflate", "identity", ""]))]]
    if draw(st.integers(0, 6)) == 0:
        primary.strict_error = draw(st.sampled_from(["RemoteProtocolError: multiple Transfer-Encoding headers",
                                                     "DecodingError: incorrect header check", "ReadTimeout: no data"]))
    return ClientRun(scenario, "httpx 0.28.1", "iter_lines()", primary, wire=wire, reference=reference, skip=skip,
                     hint=draw(st.sampled_from(["", "pass chunk_size=None"])))


@st.composite
def h2(draw) -> Recording:
    rec = draw(recording("h2"))
    rec.parser, rec.request_version = "h2", "2"
    rec.http_version = draw(st.sampled_from(["2", "2", "2", None, "1.1"]))
    if rec.http_version != "2" and draw(st.booleans()):
        rec.framing_notes.append("the server chose http/1.1 in ALPN, not h2")
    return rec


@st.composite
def h3(draw) -> Recording:
    rec = draw(recording("h3"))
    rec.parser, rec.request_version = "h3", "3"
    rec.http_version = draw(st.sampled_from(["3", "3", "3", None]))
    if rec.http_version != "3":
        rec.framing_notes.append(draw(st.sampled_from(
            ["not https: HTTP/3 is only offered for https origins (RFC 9114 §3.1)",
             "the GET's response offers no HTTP/3: no Alt-Svc header (RFC 9114 §3.1.1)"])))
    elif draw(st.integers(0, 5)) == 0:
        rec.strict_error = "the QUIC connection was closed (error 0x101: H3_GENERAL_PROTOCOL_ERROR) before the stream ended"
    return rec


def _times(draw, n: int) -> list[float | None]:
    base = draw(st.sampled_from([0.1, 0.5, 4.0]))
    step = draw(st.sampled_from([0.0, 0.01, 0.5, 1.0]))
    return [draw(st.sampled_from([base + k * step, base + k * step, None, base])) for k in range(n)]


@st.composite
def page(draw, count: int | None, depth: int = 0) -> PageRecord:
    n = count if count is not None else draw(st.integers(0, 5))
    keys = ["open"] + [f"i{i}" for i in range(n, 0, -1)] + ["end"]
    if draw(st.integers(0, 5)) == 0:
        keys += ["i999", "bogus"]
    keys = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(keys))) if draw(st.booleans()) else keys
    inserted, arrived, frames, rendered = (_times(draw, len(keys)) for _ in range(4))
    groups = {}
    for k, key in enumerate(keys):
        g = {}
        for name, values in (("inserted_s", inserted), ("arrived_s", arrived), ("frame_s", frames), ("rendered_s", rendered)):
            if values[k] is not None or draw(st.booleans()):
                g[name] = values[k]
        groups[key] = g
    nav = draw(st.sampled_from([{}, {"connect_start": 0.01, "connect_end": 0.02, "response_start": 0.1, "response_end": 3.0},
                                {"connect_start": None, "connect_end": None, "response_start": 0.1}]))
    iframes = []
    if depth == 0 and draw(st.integers(0, 3)) == 0:
        for src in draw(st.lists(st.sampled_from(["/3", "/10", "/x"]), max_size=3)):
            sub = draw(page(None, depth=1))
            iframes.append({"src": src, "inserted_s": 0.2, "page": draw(st.sampled_from([sub, vars(sub)]))})
    return PageRecord("http://127.0.0.1:1/%s" % (n,), status=draw(st.sampled_from([200, 200, 200, None, 404])),
                      content_type=draw(st.sampled_from([None, "text/html"])),
                      load_error=draw(st.sampled_from([None, None, "net::ERR_ABORTED"])), loaded=draw(st.booleans()),
                      navigation=nav, first_paint_s=draw(st.sampled_from([None, 0.2])),
                      element_timing=draw(st.booleans()), groups=groups, iframes=iframes,
                      text_start=draw(st.sampled_from(["", "Prepare for Launch"])))


@st.composite
def stream_record(draw) -> StreamRecord:
    profile = draw(st.sampled_from(["sse", "ndjson", "bytes"]))
    times = sorted(t for t in _times(draw, draw(st.integers(0, 8))) if t is not None)
    if profile == "sse":
        types = ["message", "tick", "probe"]
        events = [[t, draw(st.sampled_from(types)), draw(st.sampled_from(["x", "", "a\nb"])), ""] for t in times]
        network = [[t, kind, data] for t, kind, data, _ in events]
        if network and draw(st.booleans()):
            network.insert(0, [0.0, "unheard", "y"])
    else:
        events = [[t, draw(st.integers(0, 50)), draw(st.sampled_from(["", '{"seq": 1}\n', "abc"]))] for t in times]
        network = [[t, n, n] for t, n, _ in events] if draw(st.booleans()) else []
    codings = draw(st.sampled_from([[], [["content-encoding", "gzip"]]]))
    return StreamRecord("http://127.0.0.1:1/sse/3", profile, draw(st.sampled_from(["EventSource", "fetch().body.getReader()"])),
                        status=draw(st.sampled_from([200, 200, None, 500])),
                        request_headers=draw(st.sampled_from([[], [["Accept-Encoding", "gzip, br"]]])),
                        response_headers=[["content-type", "text/event-stream"]] + codings,
                        connect_s=draw(st.sampled_from([None, 0.001])), head_s=draw(st.sampled_from([None, 0.01])),
                        clock="performance.now() on DevTools' clock", events=events,
                        body_bytes=sum(len(str(e[2])) for e in events), end=draw(st.sampled_from(ENDS)),
                        end_s=draw(st.sampled_from([None, 3.0])), error=draw(st.sampled_from([None, None, "TypeError: network error"])),
                        network=network, listened=["message"], unheard=draw(st.sampled_from([0, 0, 1, 5])))


@st.composite
def browser(draw, scenario: str = "browser") -> BrowserRecording:
    count = draw(st.sampled_from([None, 0, 3, 10]))
    rec = BrowserRecording(scenario, "http://127.0.0.1:1/", count=count, interval_s=draw(st.sampled_from([None, 1.0, 0.05])),
                           browser=draw(st.sampled_from(["", "Chromium 1", "WebKitGTK 2.50", "Firefox 153"])))
    shape = draw(st.sampled_from(["countdown", "countdown", "stream", "stream", "skip", "nothing"]))
    if shape == "skip":
        rec.skip_reason = "Chromium is not installed"
    elif shape == "countdown":
        rec.countdown = draw(page(count))
        if draw(st.booleans()):
            rec.holder = draw(page(None))
        rec.holder_note = draw(st.sampled_from(["", "not a built-in target"]))
    elif shape == "stream":
        rec.stream = draw(stream_record())
        rec.reference = draw(st.one_of(st.none(), recording("get")))
    return rec


@st.composite
def chain(draw) -> Chain:
    if draw(st.integers(0, 5)) == 0:
        return Chain("chain", [], skip="no --reference given")
    kind = draw(st.sampled_from(["countdown", "sse", "ndjson", "bytes", "probe", "empty"]))
    legs = []
    for coding in ("identity", "compressed"):
        for role in ("origin", "target"):
            rec = draw(recording("chain", kind=kind, url="http://127.0.0.1:1/countdown/3"))
            # no request sent (t0 None) only where the leg could not be recorded
            t0 = None if rec.error and draw(st.booleans()) else draw(st.sampled_from([100.0, 100.2]))
            legs.append(Leg(role, coding, rec, t0=t0))
    return Chain("chain", legs, reference="http://127.0.0.1:2/")


def record_for(scenario: str):
    """The strategy of a scenario's record type."""
    if scenario in ("get", "get-http10", "head"):
        return recording(scenario)
    return {"get-compressed": compressed(), "concurrent": concurrent(), "large": large(),
            "disconnect": disconnect(), "h2": h2(), "h3": h3(), "browser": browser(), "chain": chain(),
            "browser-webkit": browser("browser-webkit"), "browser-firefox": browser("browser-firefox"),
            "httpx": client_run("httpx"), "requests": client_run("requests"),
            "node-fetch": client_run("node-fetch")}[scenario]
