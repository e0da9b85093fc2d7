"""Delivery under real conditions: the scenarios behind ``delivery.concurrent``,
``delivery.large-body`` and ``delivery.disconnect``, and the readers they need
(``delivery.http10`` reads the existing ``get-http10`` recording; ``delivery.compressed`` has
its own module, ``conformance.scenarios.compressed``).

Each scenario returns plain data with an ``error`` (the exchange could not be recorded), the
``status`` the catalogue checks for 2xx, and a ``to_dict()`` that is a valid recording (its main
exchange), so reports and the recording schema need nothing new. Nothing here judges.

- ``Sequence``: several exchanges on one connection (``record_sequence``), as data.
- ``concurrent``: K GETs at once; for built-in targets also the holder page ``/`` read as a
  browser reads it, each iframe it names opened while it still streams.
- ``large``: a large body downloaded without keeping it: bytes are counted, time kept compact,
  client and server memory sampled.
- ``disconnect``: a GET abandoned after its first body bytes, the server's own log watched.
"""
from __future__ import annotations

import html
import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from urllib.parse import urljoin, urlsplit

import h11

from conformance.analysis.timing import MIB, Margins, write_groups
from conformance.scenarios.base import Context, Scenario, register
from conformance.wire.codings import GZIP_CODINGS, content_codings, decoded  # noqa: F401 - their former home
from conformance.wire.recorder import (
    ABORTED,
    INTERRUPTED,
    READ_SIZE,
    BadURL,
    Exchange,
    _connect,
    _request,
    follow,
    parse_url,
    request_headers,
    stopped_by_abort,
)
from conformance.wire.recording import HEAD_LIMIT, Piece, Read, Recording, redact
from conformance.wire.tolerant import TolerantParser

DEFAULT_STREAMS = 5            # delivery.concurrent: streams at once (Target.concurrent_streams)
MAX_FRAMES = 8                 # iframes of a holder page opened at most
DEFAULT_LARGE_SIZE = 1024 ** 3  # the built-in targets' large body when no size is given
LARGE_DEADLINE = 300.0         # a large download may take this long at least (remote targets)


def _headers(ctx: Context, exchange: Exchange) -> Exchange:
    """The exchange with the target's own headers (``--header``) first and the watch, as
    ``Context.record`` sends it."""
    return ctx.exchange(exchange)


class _Primary:
    """A compound result speaks for its main exchange: error, status, the saved recording, and
    any other attribute of a ``Recording`` (so code that reads a scenario as one recording, its
    headers say, reads the main exchange)."""
    primary: Recording

    def __getattr__(self, name):
        if name.startswith("_") or name in ("primary", "exchanges", "streams"):
            raise AttributeError(name)   # not yet set (during construction): no recursion
        return getattr(self.primary, name)

    @property
    def error(self):
        return self.primary.error

    @property
    def status(self):
        return self.primary.status

    @property
    def reason(self):
        return self.primary.reason

    @property
    def body(self) -> bytes:
        return self.primary.body

    @property
    def url(self) -> str:
        return self.primary.url

    def to_dict(self) -> dict:
        d = self.primary.to_dict()
        d["scenario"] = self.scenario
        return d


# --- several exchanges on one connection --------------------------------------------------------

@dataclass
class Sequence(_Primary):
    scenario: str
    exchanges: list[Recording]

    @property
    def primary(self) -> Recording:
        return self.exchanges[0]


# --- several streams at once --------------------------------------------------------------------

@dataclass
class Stream:
    label: str                  # "stream 1", "iframe /10"
    url: str
    kind: str                   # "stream" or "iframe"
    started: float              # monotonic time the request was started (before connecting)
    rec: Recording | None = None
    named_at: float | None = None   # iframe: when the holder named it (holder's clock)

    def at(self, t: float | None) -> float | None:
        """A time of this stream's recording on the common monotonic clock."""
        if t is None or self.rec is None:
            return None
        return self.started + (self.rec.connect_s or 0.0) + t


@dataclass
class Concurrent(_Primary):
    scenario: str
    streams: list[Stream]
    holder: Recording | None = None
    holder_started: float | None = None
    holder_note: str = ""

    @property
    def primary(self) -> Recording:
        return self.streams[0].rec

    @property
    def error(self):
        recs = [s.rec for s in self.streams if s.kind == "stream" and s.rec is not None]
        if recs and all(r.error for r in recs):   # not one stream could be recorded: nothing to judge
            return recs[0].error
        return None

    @property
    def status(self):
        return next((s.rec.status for s in self.streams if s.rec and s.rec.status is not None), None)


IFRAME_SRC = re.compile(rb"""<iframe\b[^>]*?\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)(?=[\s>]))""", re.I)


def same_origin_relative(base: str, src: str) -> str | None:
    """The URL a relative ``src`` names on ``base``'s origin; None for anything else (absolute or
    scheme-relative URLs, other schemes), which is never followed."""
    src = html.unescape(src).strip()
    if not src or src.startswith("#"):
        return None
    parts = urlsplit(src)
    if parts.scheme or parts.netloc or src.startswith("//") or src.startswith("\\"):
        return None
    url = urljoin(base, src)
    b, u = urlsplit(base), urlsplit(url)
    if (u.scheme, u.netloc) != (b.scheme, b.netloc):
        return None
    return url


def _concurrent(ctx: Context) -> Concurrent:
    k = max(1, getattr(ctx.target, "concurrent_streams", None) or DEFAULT_STREAMS)
    streams = [Stream(f"stream {i + 1}", ctx.url, "stream", 0.0) for i in range(k)]
    ex = Exchange("concurrent")
    threads: list[threading.Thread] = []
    lock = threading.Lock()

    def run(stream: Stream, barrier: threading.Barrier | None = None):
        if barrier is not None:
            try:
                barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                pass
        stream.started = time.monotonic()
        stream.rec = ctx.record(ex, url=stream.url)

    def start(stream: Stream, barrier=None):
        th = threading.Thread(target=run, args=(stream, barrier), daemon=True, name=f"conc-{stream.label}")
        with lock:
            threads.append(th)
        th.start()

    holder_url = None
    if ctx.target.builtin and ctx.server is not None:
        holder_url = ctx.server.base_url + "/"
    barrier = threading.Barrier(k + (1 if holder_url else 0))
    for s in streams:
        start(s, barrier)
    result = Concurrent("concurrent", streams)
    if holder_url:
        _replay_holder(ctx, holder_url, result, barrier, start)
    while True:   # iframes may be started until the holder is read; then every thread ends
        with lock:
            pending = [th for th in threads if th.is_alive()]
        if not pending:
            break
        for th in pending:
            th.join()
    return result


def _replay_holder(ctx: Context, url: str, result: Concurrent, barrier, start) -> None:
    """Read the holder page as a browser does: each same-origin relative iframe it names is opened
    the moment its tag arrives, while the page still streams."""
    scanned = 0
    frames: list[Stream] = []
    skipped: list[str] = []

    def on_read(p: TolerantParser, t: float):
        nonlocal scanned
        if p.status is None or not (200 <= p.status < 300):
            return None
        body = bytes(p.body)
        for m in IFRAME_SRC.finditer(body, scanned):
            scanned = m.end()
            src = (m.group(1) or m.group(2) or m.group(3)).decode("latin-1")
            target = same_origin_relative(url, src)
            if target is None:
                skipped.append(src)
                continue
            if len(frames) >= MAX_FRAMES:
                continue
            frame = Stream(f"iframe {urlsplit(target).path}", target, "iframe", 0.0, named_at=t)
            frames.append(frame)
            result.streams.append(frame)
            start(frame)
        return None

    try:
        barrier.wait(timeout=10)
    except threading.BrokenBarrierError:
        pass
    try:
        holder, t0 = follow(url, _headers(ctx, Exchange("concurrent-holder", watch=0.0, own_request=True)), on_read, timeout=ctx.timeout,
                            deadline=ctx.deadline, insecure=ctx.target.insecure, secret_headers=ctx.secret_headers)
    except BadURL as e:
        result.holder_note = f"the holder page cannot be read: {e}"
        return
    result.holder, result.holder_started = holder, t0
    if holder.error:
        result.holder_note = f"no holder page at /: {holder.error}"
    elif not (200 <= (holder.status or 0) < 300):
        result.holder_note = f"no holder page at / (HTTP {holder.status})"
    elif not frames:
        result.holder_note = "the page at / names no same-origin relative iframe"
    if skipped:
        result.holder_note += ("; " if result.holder_note else "") + \
            f"not followed (not same-origin relative): {', '.join(repr(s) for s in skipped[:5])}"


register(Scenario("concurrent", "several GETs at once, and the holder page's iframes as a browser opens them",
                  _concurrent, exclusive=True))


# --- a large body, counted, not kept ------------------------------------------------------------

def _status_kib(pid: int | str, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def process_group(pgid: int) -> list[int]:
    """The live processes in a process group (a server the suite started leads its own)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            out.append(int(name))
    return out


class MemorySampler:
    """Samples resident memory (VmRSS) of this process and of a server's process group every
    ``period`` seconds in a thread; peaks also take in VmHWM when it rose during the sampling."""

    def __init__(self, server_pid: int | None, period: float = 0.01):
        self.server_pid, self.period = server_pid, period
        self.client_base = _status_kib("self", b"VmRSS:") or 0
        self._client_hwm0 = _status_kib("self", b"VmHWM:") or 0
        self.client_peak = self.client_base
        self.server_pids = process_group(server_pid) if server_pid else []
        self.server_base = self._server_rss() if server_pid else None
        self._server_hwm0 = {p: _status_kib(p, b"VmHWM:") or 0 for p in self.server_pids}
        self.server_peak = self.server_base
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _server_rss(self) -> int:
        return sum(_status_kib(p, b"VmRSS:") or 0 for p in self.server_pids)

    def _sample(self) -> None:
        self.samples += 1
        self.client_peak = max(self.client_peak, _status_kib("self", b"VmRSS:") or 0)
        if self.server_pid:
            self.server_peak = max(self.server_peak, self._server_rss())

    def _run(self) -> None:
        last_scan = time.monotonic()
        while not self._stop.wait(self.period):
            if self.server_pid and time.monotonic() - last_scan > 0.5:
                last_scan = time.monotonic()
                self.server_pids = process_group(self.server_pid) or self.server_pids
            self._sample()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        hwm = _status_kib("self", b"VmHWM:") or 0
        if hwm > self._client_hwm0:   # a new high during the download that sampling may have missed
            self.client_peak = max(self.client_peak, hwm)
        if self.server_pid:
            rose = [p for p in self.server_pids if (_status_kib(p, b"VmHWM:") or 0) > self._server_hwm0.get(p, 0)]
            if rose:   # the sum of each process's own peak bounds the group's peak from above
                others = sum(_status_kib(p, b"VmRSS:") or 0 for p in self.server_pids if p not in rose)
                peak = others + sum(_status_kib(p, b"VmHWM:") or 0 for p in rose)
                self.server_peak = max(self.server_peak, peak)
        return False


class ChunkCounter:
    """Counts the data bytes of a chunked body without keeping them (RFC 9112 §7.1). Size lines,
    CRLFs and the trailer section are parsed; a fault stops it (``error``)."""

    def __init__(self):
        self.state = "size"
        self.remaining = 0
        self.line = bytearray()
        self.error: str | None = None
        self.done = False
        self.data = 0

    def feed(self, mv: memoryview) -> int:
        """Count the data bytes in ``mv``; returns how many bytes of ``mv`` were consumed."""
        i, n = 0, len(mv)
        while i < n and not self.done and not self.error:
            if self.state == "data":
                take = min(self.remaining, n - i)
                self.remaining -= take
                self.data += take
                i += take
                if not self.remaining:
                    self.state = "crlf"
                continue
            # size, crlf and trailer lines: up to the next LF
            end = bytes(mv[i:min(n, i + 4096)]).find(b"\n")
            if end < 0:
                self.line += mv[i:min(n, i + 4096)]
                i = min(n, i + 4096)
                if len(self.line) > 4096:
                    self.error = "a chunk-size or trailer line longer than 4096 bytes"
                continue
            self.line += mv[i:i + end + 1]
            i += end + 1
            line = bytes(self.line).rstrip(b"\r\n")
            self.line.clear()
            if self.state == "crlf":
                if line:
                    self.error = "chunk data not followed by CRLF"
                self.state = "size"
            elif self.state == "size":
                digits = line.split(b";", 1)[0].strip()
                if not digits or len(digits) > 16 or not re.fullmatch(rb"[0-9A-Fa-f]+", digits):
                    self.error = f"bad chunk-size line {line[:40]!r}"
                    continue
                self.remaining = int(digits, 16)
                self.state = "data" if self.remaining else "trailers"
            elif self.state == "trailers":
                if not line:
                    self.done = True
        return i


class Timeline:
    """Arrivals kept compact: one piece per ``bucket`` seconds, at most ``cap`` of them (the
    bucket doubles when the cap is reached), so a body of any size keeps a few thousand."""

    def __init__(self, bucket: float = 0.01, cap: int = 4000):
        self.bucket, self.cap = bucket, cap
        self.pieces: list[list] = []   # [t, offset, size]
        self.reads: list[list] = []    # [t, size]

    def add(self, t: float, offset: int, body: int, raw: int) -> None:
        if self.reads and t - self.reads[-1][0] < self.bucket:
            self.reads[-1][1] += raw
        else:
            self.reads.append([t, raw])
        if body:
            if self.pieces and t - self.pieces[-1][0] < self.bucket:
                self.pieces[-1][2] += body
            else:
                self.pieces.append([t, offset, body])
        if len(self.reads) > self.cap or len(self.pieces) > self.cap:
            self.bucket *= 2
            self.reads = _merge(self.reads, self.bucket, 1)
            self.pieces = _merge(self.pieces, self.bucket, 2)


def _merge(rows: list[list], bucket: float, size_at: int) -> list[list]:
    out: list[list] = []
    for r in rows:
        if out and r[0] - out[-1][0] < bucket:
            out[-1][size_at] += r[size_at]
        else:
            out.append(list(r))
    return out


@dataclass
class LargeDownload(_Primary):
    scenario: str
    primary: Recording
    skip: str | None = None
    requested: int | None = None        # the size asked of a built-in target
    expected: int | None = None         # Content-Length, or the size asked for
    first_byte_s: float | None = None
    duration_s: float | None = None     # request to the last byte
    client_base: int = 0
    client_peak: int = 0
    server_base: int | None = None
    server_peak: int | None = None
    problem: str | None = None          # the body could not be read on (framing fault)

    @property
    def error(self):
        return None if self.skip else self.primary.error

    @property
    def bytes(self) -> int:
        return self.primary.body_bytes


def large_size(ctx: Context) -> int:
    """The size of the built-in targets' large body: the target's, else the run's ``--large-size``
    (when the run hands it to the context), else 1 GiB."""
    size = getattr(ctx.target, "large_size", None) or ctx.extra.get("large_size")
    options = ctx.extra.get("options")
    size = size or getattr(options, "large_size", None)
    return int(size or DEFAULT_LARGE_SIZE)


def large_url(ctx: Context) -> tuple[str | None, int | None, str | None]:
    """What ``delivery.large-body`` downloads: (url, size asked for, why not)."""
    if ctx.target.large_url:
        return ctx.target.large_url, None, None
    if getattr(ctx.target, "app", None):   # --app (conformance/engine/apps.py): its endpoints are the user's to name
        return None, None, "your app's large endpoint is not known: give its path with --large-url /PATH (or large_url in a targets file)"
    if not ctx.target.builtin or ctx.server is None:
        return None, None, "a remote target: give the URL of a large body with --large-url (or large_url in a targets file)"
    size = large_size(ctx)
    path = ctx.server.large_path(size)
    if path is None:
        return None, None, f"the built-in target {ctx.target.builtin} serves no large body (give --large-url)"
    return ctx.server.base_url + path, size, None


def _large_skipped(ctx: Context) -> LargeDownload | None:
    """The skip record when there is no large body to download here (``large_url``)."""
    url, _size, why = large_url(ctx)
    return LargeDownload("large", Recording("large", ctx.url or ""), skip=why) if url is None else None


def _large(ctx: Context) -> LargeDownload:
    url, size, why = large_url(ctx)
    if url is None:
        return _large_skipped(ctx)
    pid = ctx.server.process.pid if ctx.server is not None else None
    return download(url, _headers(ctx, Exchange("large", own_request=True)), timeout=ctx.timeout,
                    deadline=max(ctx.deadline, LARGE_DEADLINE), insecure=ctx.target.insecure,
                    secret_headers=ctx.secret_headers, server_pid=pid, requested=size)


def download(url: str, exchange: Exchange, *, timeout: float, deadline: float, insecure: bool = False,
             secret_headers=(), server_pid: int | None = None, requested: int | None = None) -> LargeDownload:
    """Download a body of any size into nothing: the head is parsed (h11, or the tolerant reader
    when h11 refuses it), body bytes are counted by the framing the head chose, arrival times are
    kept compact (``Timeline``), and memory is sampled on both sides all along."""
    ep = parse_url(url)
    headers = request_headers(ep, exchange)
    rec = Recording(scenario=exchange.scenario, url=url, method=exchange.method,
                    request_version=exchange.http_version, request_headers=redact(headers, secret_headers))
    result = LargeDownload("large", rec, requested=requested)
    try:
        wire, conn = _request(ep, exchange, headers)
    except (h11.LocalProtocolError, UnicodeError) as e:
        rec.error = f"the request cannot be written: {e}"
        return result
    buf = bytearray(READ_SIZE)     # before the baseline: the one buffer the download needs
    mem = MemorySampler(server_pid)
    start = time.monotonic()
    sock = _connect(ep, rec, min(timeout, deadline), insecure)
    if sock is None:
        return result
    timeline = Timeline()
    with mem:
        try:
            sock.sendall(wire)
            t0 = time.monotonic()
            _count_body(sock, buf, conn, rec, result, timeline, t0, timeout, start + deadline)
        except OSError as e:
            rec.end = rec.end or stopped_by_abort("reset")
            rec.end_t = time.monotonic() - t0 if rec.end_t is None else rec.end_t
            rec.framing_notes.append(f"{type(e).__name__}: {e}")
        finally:
            sock.close()
    rec.pieces = [Piece(t, off, size, False, False) for t, off, size in timeline.pieces]
    rec.reads = [Read(t, size) for t, size in timeline.reads if size]
    result.client_base, result.client_peak = mem.client_base, mem.client_peak
    result.server_base, result.server_peak = mem.server_base, mem.server_peak
    if rec.head_t is None and rec.error is None:
        rec.error = f"no response head ({rec.end})"
    return result


def _count_body(sock, buf, conn, rec, result, timeline, t0, timeout, deadline_at) -> None:
    head = bytearray()
    framing = None
    counter = None
    remaining = None
    mv = memoryview(buf)
    while True:
        wait = min(timeout, deadline_at - time.monotonic())
        if wait <= 0:
            rec.end, rec.end_t = "deadline", time.monotonic() - t0
            return
        sock.settimeout(wait)
        try:
            n = sock.recv_into(buf)
        except (TimeoutError, socket.timeout):
            rec.end, rec.end_t = "timeout", time.monotonic() - t0
            return
        t = time.monotonic() - t0
        if n == 0:
            if ABORTED.is_set():   # abort_all() shut the socket: not the server's close
                rec.end = INTERRUPTED
            elif framing == "close":
                rec.end = "closed"
            else:
                rec.end = "cut-short" if rec.head_t is not None else "closed"
            rec.end_t = t
            return
        rec.raw_bytes += n
        body_start = 0
        if framing is None:
            head += mv[:n]
            body_start = _parse_head(head, conn, rec, t)
            if body_start is None:
                if len(head) > HEAD_LIMIT:
                    rec.error = f"response head larger than {HEAD_LIMIT} bytes"
                    rec.end, rec.end_t = "abandoned", t
                    return
                timeline.add(t, 0, 0, n)
                continue
            if rec.error:
                rec.end, rec.end_t = "abandoned", t
                return
            framing = rec.framing
            extra = bytes(head[body_start:])
            head.clear()
            if framing == "content-length":
                remaining = int(rec.header_values("content-length")[0].split(",")[0].strip())
                result.expected = remaining
            elif framing == "chunked":
                counter = ChunkCounter()
            elif framing == "none":
                rec.end, rec.end_t = "complete", t
                return
            data = memoryview(extra)
        else:
            data = mv[:n]
        before = rec.body_bytes
        if framing == "content-length":
            take = min(remaining, len(data))
            remaining -= take
            rec.body_bytes += take
            rec.after_end_bytes += len(data) - take
        elif framing == "chunked":
            used = counter.feed(data)
            rec.body_bytes = counter.data
            if counter.error:
                result.problem = counter.error
                rec.framing_notes.append(counter.error)
            if counter.done:
                rec.after_end_bytes += len(data) - used
        else:
            rec.body_bytes += len(data)
        got = rec.body_bytes - before
        if got and result.first_byte_s is None:
            result.first_byte_s = t
        timeline.add(t, before, got, n)
        if got:
            result.duration_s = t
        if (framing == "content-length" and remaining == 0) or (counter is not None and counter.done):
            rec.end, rec.end_t = "complete", t
            result.duration_s = t
            return
        if counter is not None and counter.error:
            rec.end, rec.end_t = "abandoned", t
            return


def _parse_head(head: bytearray, conn: h11.Connection, rec: Recording, t: float) -> int | None:
    """Where the body starts in ``head`` once a final response head is there (None: not yet);
    fills the recording's head (h11's reading, or the tolerant reader's when h11 refuses it)."""
    pos = 0
    while True:
        end = _head_end(head, pos)
        if end is None:
            return None
        status_line = bytes(head[pos:pos + 12])
        m = re.match(rb"HTTP/\d\.\d (\d{3})", status_line)
        if m and m.group(1).startswith(b"1") and m.group(1) != b"101":
            pos = end   # an interim response: the final one follows
            continue
        break
    whole = bytes(head[pos:end])
    try:
        conn.receive_data(whole)
        event = conn.next_event()
        while isinstance(event, h11.InformationalResponse):
            event = conn.next_event()
        if not isinstance(event, h11.Response):
            raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")
        rec.status, rec.reason = event.status_code, event.reason.decode("latin-1")
        rec.http_version = event.http_version.decode()
        rec.headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in event.headers.raw_items()]
    except h11.RemoteProtocolError as e:
        p = TolerantParser(rec.method)
        p.feed(whole, t)
        rec.strict_error, rec.parser = str(e), "tolerant"
        if p.status is None:
            rec.error = p.error or f"the response head cannot be read: {e}"
            return end
        rec.status, rec.reason, rec.http_version, rec.headers = p.status, p.reason or "", p.http_version, p.headers
        rec.framing_notes += p.notes
    rec.head_t = t
    rec.framing = _framing(rec)
    return end


def _head_end(data: bytearray, pos: int) -> int | None:
    crlf = data.find(b"\r\n\r\n", pos)
    lf = data.find(b"\n\n", pos)
    ends = [e + 4 for e in (crlf,) if e >= 0] + [e + 2 for e in (lf,) if e >= 0]
    return min(ends) if ends else None


def _framing(rec: Recording) -> str:
    if rec.method == "HEAD" or rec.status in (204, 304):
        return "none"
    codings = rec.header_list("transfer-encoding")
    if codings:
        return "chunked" if codings[-1] == "chunked" else "close"
    lengths = {v.strip() for v in ",".join(rec.header_values("content-length")).split(",") if v.strip()}
    if len(lengths) == 1 and next(iter(lengths)).isdigit():
        return "content-length"
    return "close"


register(Scenario("large", "a large body downloaded and counted, memory sampled on both sides", _large, exclusive=True,
                  skip=_large_skipped))


# --- the client goes away -----------------------------------------------------------------------

PIECE_LINE = re.compile(r"^piece (\d+(?:\.\d+)?) (\d+)\s*$", re.M)


def piece_times(stderr: str, since: float) -> list[float]:
    """The monotonic times of the pieces a server logged (``piece <monotonic> <len>``) since
    ``since``. The clock is the system's monotonic clock, the same in every process."""
    return [float(m.group(1)) for m in PIECE_LINE.finditer(stderr) if float(m.group(1)) >= since]


@dataclass
class DisconnectProbe(_Primary):
    scenario: str
    primary: Recording
    skip: str | None = None
    closed_at: float | None = None         # when the client closed, on the recording's clock
    logged: bool = False                   # the server logs its pieces
    before: int = 0                        # pieces logged before the close
    times: list[float] = field(default_factory=list)   # every piece logged, in seconds after the close

    @property
    def after(self) -> list[float]:
        return [t for t in self.times if t > 0]
    watched_s: float = 0.0                 # how long after the close the log was watched

    @property
    def error(self):
        return None if self.skip else self.primary.error


def _disconnect_skipped(ctx: Context) -> DisconnectProbe | None:
    """The skip record when what the server does after a disconnect cannot be judged here."""
    if ctx.server is None:
        return DisconnectProbe("disconnect", Recording("disconnect", ctx.url or ""),
                               skip="a remote target: what its server does after a disconnect cannot be seen from here")
    if ctx.target.interval is None:   # a server we started, serving a stream whose schedule is not known
        return DisconnectProbe("disconnect", Recording("disconnect", ctx.url or ""),
                               skip="the producer's schedule is not known (give --interval): how many writes after "
                                    "a disconnect are too many cannot be said")
    return None


def _disconnect(ctx: Context) -> DisconnectProbe:
    skipped = _disconnect_skipped(ctx)
    if skipped is not None:
        return skipped
    interval = ctx.target.interval
    _wait_for_quiet(ctx.server, interval, ctx.target.expected_span() + 2 * interval)
    since = time.monotonic()

    def on_read(p, t):
        return False if p.offset > 0 else None   # go away after the first body bytes

    rec, t0 = follow(ctx.url, _headers(ctx, Exchange("disconnect")), on_read, timeout=ctx.timeout,
                     deadline=ctx.deadline, insecure=ctx.target.insecure, secret_headers=ctx.secret_headers)
    probe = DisconnectProbe("disconnect", rec)
    if rec.error or rec.end != "client-closed":
        probe.logged = bool(piece_times(ctx.server.stderr(), since))
        return probe
    closed = t0 + rec.end_t
    probe.closed_at = rec.end_t
    margins = Margins(interval, rec.connect_s or 0.0)
    # A server that logs its pieces has logged the first ones before it sent them; one that has
    # logged none by now (after a moment's grace) does not log them, and there is nothing to watch.
    time.sleep(min(0.1, interval))
    if not piece_times(ctx.server.stderr(), since):
        probe.watched_s = time.monotonic() - closed
        return probe
    # Watched until the producer has been seen writing once more than it may, or long enough to
    # see that write on schedule.
    until = closed + margins.disconnect_watch()
    step = max(0.01, interval / 4)
    while True:
        now = time.monotonic()
        times = piece_times(ctx.server.stderr(), since)
        if now >= until or len(writes_after(times, closed, margins.burst_gap)) > margins.disconnect_writes:
            break
        if ABORTED.wait(min(step, until - now)):   # polling the server's log file; the run's interrupt ends it
            break
    probe.watched_s = time.monotonic() - closed
    probe.logged = bool(times)
    probe.before = sum(1 for m in times if m <= closed)
    probe.times = [m - closed for m in times]
    return probe


def writes_after(times: list[float], closed: float, gap: float) -> list[list[float]]:
    """The producer's writes (pieces grouped by ``gap``) that began after ``closed``: a write
    already under way when the client went away is not one of them."""
    return [g for g in write_groups(times, gap) if g[0] > closed]


def _wait_for_quiet(server, interval: float, at_most: float) -> None:
    """Wait until the server has logged no piece for 1.5 intervals (a producer of an earlier
    scenario may still be writing, e.g. a HEAD answered by running the GET generator), at most
    ``at_most`` seconds."""
    give_up = time.monotonic() + at_most
    quiet = max(0.05, 1.5 * interval)
    while time.monotonic() < give_up:
        recent = piece_times(server.stderr(), time.monotonic() - quiet)
        if not recent:
            return
        if ABORTED.wait(min(quiet, max(0.0, give_up - time.monotonic()))):
            return


register(Scenario("disconnect", "a GET abandoned after its first body bytes; the server's log watched",
                  _disconnect, exclusive=True, skip=_disconnect_skipped))


def stream_target(target, url: str):
    """The target as it applies to another URL of the same server (an iframe's /N)."""
    return replace(target, id=f"{target.id} {urlsplit(url).path}", url=url, count=None)   # its own delivery cache


__all__ = ["Concurrent", "DisconnectProbe", "LargeDownload", "Sequence", "Stream", "decoded", "content_codings",
           "download", "follow", "piece_times", "stream_target", "writes_after", "MIB"]
