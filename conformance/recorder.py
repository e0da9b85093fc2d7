"""The wire recorder: one HTTP exchange over a socket of its own, every read timestamped.

It writes the request bytes itself (so it can speak HTTP/1.0, send HEAD, or any header), reads
with a monotonic clock stamped on every ``recv``, and parses strictly with h11. When h11 rejects
the message, the bytes read so far are replayed through ``TolerantParser`` with their original
timestamps, and reading goes on tolerantly: framing checks quote h11's error, delivery checks
still get arrival times. Nothing here judges; it only records.
"""
from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import h11

from conformance import SUITE_NAME, __version__
from conformance.recording import BODY_KEEP, HEAD_LIMIT, RAW_KEEP, Piece, Read, Recording, redact
from conformance.tolerant import TolerantParser

READ_SIZE = 256 * 1024


class BadURL(ValueError):
    """The URL cannot be recorded (not http/https, no host, bad port)."""


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent on the request line

    @property
    def authority(self) -> str:
        default = {"http": 80, "https": 443}[self.scheme]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


def parse_url(url: str) -> Endpoint:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise BadURL(f"{url!r}: {e}") from None
    if parts.scheme not in ("http", "https"):
        raise BadURL(f"{url!r}: the scheme must be http or https")
    if not parts.hostname:
        raise BadURL(f"{url!r}: no host")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if any(c in target for c in " \r\n"):
        raise BadURL(f"{url!r}: the path holds spaces or line breaks")
    return Endpoint(parts.scheme, parts.hostname, port or {"http": 80, "https": 443}[parts.scheme], target)


@dataclass
class Exchange:
    """What to ask: the scenario's request."""
    scenario: str = "get"
    method: str = "GET"
    http_version: str = "1.1"
    headers: list[tuple[str, str]] = field(default_factory=list)  # extra headers, after ours
    after_end_wait: float = 0.0   # keep reading this long after the message ended (HEAD)


def request_headers(ep: Endpoint, ex: Exchange) -> list[tuple[str, str]]:
    ours = [("Host", ep.authority), ("User-Agent", f"{SUITE_NAME}/{__version__}"), ("Accept", "*/*"),
            ("Accept-Encoding", "identity")]
    given = {k.lower() for k, _ in ex.headers}
    return [(k, v) for k, v in ours if k.lower() not in given] + list(ex.headers)


def record(url: str, exchange: Exchange | None = None, *, timeout: float = 10.0, deadline: float = 120.0,
           insecure: bool = False, secret_headers=(), progress=None) -> Recording:
    """Record one exchange. Never raises for anything the server does; ``BadURL`` for bad input.

    ``timeout`` bounds each wait for bytes, ``deadline`` the whole exchange. ``progress`` is
    called now and then with the recording so far (for a terminal progress line).
    """
    ex = exchange or Exchange()
    ep = parse_url(url)
    headers = request_headers(ep, ex)
    rec = Recording(scenario=ex.scenario, url=url, method=ex.method, request_version=ex.http_version,
                    request_headers=redact(headers, secret_headers))
    start = time.monotonic()
    sock = _connect(ep, rec, timeout, insecure)
    if sock is None:
        return rec
    try:
        _exchange(sock, ep, ex, headers, rec, timeout, start + deadline, progress)
    finally:
        sock.close()
    return rec


def _connect(ep: Endpoint, rec: Recording, timeout: float, insecure: bool):
    t0 = time.monotonic()
    try:
        sock = socket.create_connection((ep.host, ep.port), timeout=timeout)
    except socket.gaierror as e:
        rec.error = f"DNS lookup failed for {ep.host}: {e.strerror or e}"
        return None
    except ConnectionRefusedError:
        rec.error = f"connection refused by {ep.host}:{ep.port}"
        return None
    except (TimeoutError, socket.timeout):
        rec.error = f"connecting to {ep.host}:{ep.port} timed out after {timeout:g} s"
        return None
    except OSError as e:
        rec.error = f"cannot connect to {ep.host}:{ep.port}: {e.strerror or e}"
        return None
    rec.connect_s = time.monotonic() - t0
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ep.scheme != "https":
        return sock
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["http/1.1"])
    try:
        tls = ctx.wrap_socket(sock, server_hostname=ep.host)
    except ssl.SSLCertVerificationError as e:
        rec.error = f"TLS certificate verification failed for {ep.host}: {e.verify_message} (--insecure skips verification)"
    except (ssl.SSLError, OSError) as e:
        rec.error = f"TLS handshake with {ep.host}:{ep.port} failed: {getattr(e, 'reason', None) or e}"
    else:
        rec.tls = {"version": tls.version(), "cipher": tls.cipher()[0], "alpn": tls.selected_alpn_protocol()}
        return tls
    sock.close()
    return None


def _exchange(sock, ep, ex, headers, rec, timeout, deadline_at, progress) -> None:
    wire = [f"{ex.method} {ep.target} HTTP/{ex.http_version}\r\n"] + [f"{k}: {v}\r\n" for k, v in headers] + ["\r\n"]
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEAD_LIMIT)
    # h11 only tracks the exchange here; the bytes on the wire are ours. h11 writes nothing but
    # HTTP/1.1, so an HTTP/1.0 request is told to it as 1.1 with "Connection: close", which
    # gives the same expectations for the response (no reuse; the method decides the framing).
    h11_headers = headers + ([("Connection", "close")] if ex.http_version == "1.0" else [])
    conn.send(h11.Request(method=ex.method, target=ep.target, headers=h11_headers))
    conn.send(h11.EndOfMessage())
    try:
        sock.sendall("".join(wire).encode("latin-1"))
    except OSError as e:
        rec.error = f"sending the request failed: {e.strerror or e}"
        return
    t0 = time.monotonic()
    state = _ParseState(rec, conn, ex.method)
    buf = bytearray(READ_SIZE)
    ended_at = None
    last_progress = t0
    while True:
        now = time.monotonic()
        wait = min(timeout, deadline_at - now)
        if ended_at is not None:
            wait = min(wait, ended_at + ex.after_end_wait - now)
            if wait <= 0:
                break
        if wait <= 0:
            state.stop("deadline", now - t0)
            break
        sock.settimeout(wait)
        try:
            n = sock.recv_into(buf)
        except (TimeoutError, socket.timeout):
            if ended_at is None:
                state.stop("deadline" if time.monotonic() >= deadline_at else "timeout", time.monotonic() - t0)
            break
        except OSError as e:  # reset, or a TLS error mid-stream
            if ended_at is None:
                state.stop("reset", time.monotonic() - t0, f"{type(e).__name__}: {e}")
            break
        t = time.monotonic() - t0
        if n == 0:
            if ended_at is None:
                state.eof(t)
            break
        data = bytes(buf[:n])
        rec.reads.append(Read(t, n))
        if rec.raw_bytes < RAW_KEEP:
            rec.raw_kept += data[:RAW_KEEP - rec.raw_bytes].decode("latin-1")
        rec.raw_bytes += n
        if ended_at is not None:
            rec.after_end_bytes += n
            continue
        state.feed(data, t)
        if rec.end is not None:
            ended_at = time.monotonic()
            if rec.end != "complete" or not ex.after_end_wait:
                break
        if progress and time.monotonic() - last_progress > 1.0:
            last_progress = time.monotonic()
            progress(rec)
    state.finish()
    if rec.head_t is None and rec.error is None:
        rec.error = {"timeout": f"no response head within {timeout:g} s",
                     "deadline": "no response head before the recording's deadline",
                     "reset": "the connection was reset before a response head"}.get(rec.end, rec.strict_error or "no response head")


class _ParseState:
    """Feeds reads to h11, or to the tolerant parser once h11 has given up."""

    def __init__(self, rec: Recording, conn: h11.Connection, method: str):
        self.rec, self.conn, self.method = rec, conn, method
        self.tolerant: TolerantParser | None = None
        self.body = bytearray()

    def feed(self, data: bytes, t: float) -> None:
        if self.tolerant:
            self.tolerant.feed(data, t)
            self._sync_tolerant()
            return
        try:
            self.conn.receive_data(data)
            self._drain(t)
        except h11.RemoteProtocolError as e:
            self._fall_back(str(e))

    def eof(self, t: float) -> None:
        if self.tolerant:
            self.tolerant.close(t)
            self._sync_tolerant()
            if self.rec.end is None:
                self.rec.end, self.rec.end_t = "closed", t
            return
        try:
            self.conn.receive_data(b"")
            self._drain(t)
        except h11.RemoteProtocolError as e:
            self._fall_back(str(e))
            self.tolerant.close(t)
            self._sync_tolerant()
        if self.rec.end is None:
            self.rec.end, self.rec.end_t = ("cut-short" if self.rec.head_t is not None else "closed"), t

    def _drain(self, t: float) -> None:
        rec = self.rec
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                rec.head_t, rec.status = t, event.status_code
                rec.http_version = event.http_version.decode()
                rec.reason = event.reason.decode("latin-1")
                rec.headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in event.headers.raw_items()]
                rec.framing = _framing_of(rec, self.method)
            elif isinstance(event, h11.Data):
                size = len(event.data)
                rec.pieces.append(Piece(t, rec.body_bytes, size, event.chunk_start, event.chunk_end))
                if len(self.body) < BODY_KEEP:
                    self.body += event.data[:BODY_KEEP - len(self.body)]
                rec.body_bytes += size
            elif isinstance(event, h11.EndOfMessage):
                rec.trailers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in event.headers.raw_items()]
                rec.end, rec.end_t = "complete", t
                rec.after_end_bytes += len(self.conn.trailing_data[0])
                return
            elif isinstance(event, h11.ConnectionClosed):
                if rec.end is None:
                    rec.end, rec.end_t = "closed", t
                return

    def _fall_back(self, why: str) -> None:
        """h11 rejected the message: replay the wire bytes through the tolerant parser."""
        rec = self.rec
        rec.strict_error, rec.parser = why, "tolerant"
        rec.pieces, rec.body_bytes, rec.end, rec.end_t, rec.after_end_bytes = [], 0, None, None, 0
        self.tolerant = TolerantParser(self.method)
        raw, pos = rec.raw, 0
        if rec.raw_bytes > len(raw):
            rec.framing_notes.append("the message was longer than the replay buffer; tolerant reading is partial")
        for read in rec.reads:
            piece = raw[pos:pos + read.size]
            pos += read.size
            if piece:
                self.tolerant.feed(piece, read.t)
        self._sync_tolerant()

    def _sync_tolerant(self) -> None:
        p, rec = self.tolerant, self.rec
        if p.status is not None and rec.status is None or rec.parser == "tolerant":
            rec.status, rec.reason, rec.http_version = p.status, p.reason, p.http_version
            rec.headers, rec.head_t, rec.framing = p.headers, p.head_t, p.framing
        rec.pieces, rec.trailers = p.pieces, p.trailers
        rec.body_bytes = p.offset
        rec.framing_notes = [n for n in rec.framing_notes if "replay buffer" in n] + p.notes
        rec.after_end_bytes = p.after_end
        self.body = p.body
        if p.error and rec.head_t is None:
            rec.error = p.error
        if p.ended_by and rec.end is None:
            rec.end = p.ended_by
            rec.end_t = p.pieces[-1].t if p.pieces else p.head_t

    def stop(self, how: str, t: float, detail: str = "") -> None:
        if self.rec.end is None:
            self.rec.end, self.rec.end_t = how, t
        if detail:
            self.rec.framing_notes.append(detail)

    def finish(self) -> None:
        self.rec.body_kept = bytes(self.body).decode("latin-1")


def _framing_of(rec: Recording, method: str) -> str:
    if method == "HEAD" or rec.status in (204, 304):
        return "none"
    codings = rec.header_list("transfer-encoding")
    if codings:
        return "chunked" if codings[-1] == "chunked" else "close"
    return "content-length" if rec.header_values("content-length") else "close"
