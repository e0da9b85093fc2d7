"""The wire recorder: one HTTP exchange over a socket of its own, every read timestamped.

It writes the request bytes itself (so it can speak HTTP/1.0, send HEAD, or any header), reads
with a monotonic clock stamped on every ``recv``, and parses strictly with h11. Every read also
goes to ``TolerantParser``; when h11 rejects the message (or stalls where the tolerant reader
reads on), the tolerant reading, made from the same reads at the same times, becomes the
recording's: framing checks quote h11's error, delivery checks still get arrival times. Nothing
here judges; it only records. Every wait is bounded by ``timeout`` and ``deadline``, and
everything kept by the caps in ``recording.py``.
"""
from __future__ import annotations

import socket
import ssl
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import h11

from conformance import SUITE_NAME, __version__
from conformance.recording import (BODY_KEEP, HEAD_LIMIT, PIECES_KEEP, RAW_KEEP, READS_KEEP, Piece, Read, Recording,
                                   redact)
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
    host = parts.hostname
    if not host:
        raise BadURL(f"{url!r}: no host")
    if not host.isascii():  # an internationalised name: its ASCII form goes on the wire
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as e:
            raise BadURL(f"{url!r}: the host name cannot be encoded: {e}") from None
    if port == 0:
        raise BadURL(f"{url!r}: port 0")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if any(c in target for c in " \r\n") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        raise BadURL(f"{url!r}: the path holds spaces, line breaks or control characters")
    # Non-ASCII characters are sent percent-encoded (as UTF-8), as browsers do.
    target = quote(target, safe=_PRINTABLE)
    return Endpoint(parts.scheme, host, port if port is not None else {"http": 80, "https": 443}[parts.scheme], target)


_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


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
    called now and then with the recording so far (for a terminal progress line). A request
    that cannot be written (a header h11 refuses, say) gives a recording with ``error`` set.
    """
    ex = exchange or Exchange()
    ep = parse_url(url)
    headers = request_headers(ep, ex)
    rec = Recording(scenario=ex.scenario, url=url, method=ex.method, request_version=ex.http_version,
                    request_headers=redact(headers, secret_headers))
    try:
        wire, conn = _request(ep, ex, headers)
    except (h11.LocalProtocolError, UnicodeError) as e:
        rec.error = f"the request cannot be written: {e}"
        return rec
    start = time.monotonic()
    sock = _connect(ep, rec, min(timeout, deadline), insecure)
    if sock is None:
        return rec
    try:
        _exchange(sock, ex, wire, conn, rec, timeout, start + deadline, progress)
    finally:
        sock.close()
    return rec


def _request(ep: Endpoint, ex: Exchange, headers: list[tuple[str, str]]) -> tuple[bytes, h11.Connection]:
    """The request's bytes, and an h11 connection that expects its response."""
    wire = [f"{ex.method} {ep.target} HTTP/{ex.http_version}\r\n"] + [f"{k}: {v}\r\n" for k, v in headers] + ["\r\n"]
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=HEAD_LIMIT)
    # h11 only tracks the exchange here; the bytes on the wire are ours. h11 writes nothing but
    # HTTP/1.1, so an HTTP/1.0 request is told to it as 1.1 with "Connection: close", which
    # gives the same expectations for the response (no reuse; the method decides the framing).
    # h11 also validates the request: a header it refuses is refused before connecting.
    h11_headers = headers + ([("Connection", "close")] if ex.http_version == "1.0" else [])
    conn.send(h11.Request(method=ex.method, target=ep.target, headers=h11_headers))
    conn.send(h11.EndOfMessage())
    return "".join(wire).encode("latin-1"), conn


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


def _exchange(sock, ex, wire, conn, rec, timeout, deadline_at, progress) -> None:
    try:
        sock.sendall(wire)
    except OSError as e:
        rec.error = f"sending the request failed: {e.strerror or e}"
        return
    state = _ParseState(rec, conn, ex.method)
    try:
        _read(sock, ex, rec, state, timeout, deadline_at, progress)
    except Exception as e:  # noqa: BLE001 - a bug of ours must not end the run; say what it was
        rec.error = rec.error or f"recorder error: {type(e).__name__}: {e}"
        if rec.end is None:
            rec.end = "abandoned"
    finally:
        state.finish()
    if rec.head_t is None and rec.error is None:
        rec.error = {"timeout": f"no response head within {timeout:g} s",
                     "deadline": "no response head before the recording's deadline",
                     "reset": "the connection was reset before a response head",
                     "closed": "the connection closed before a response head"}.get(
                         rec.end, rec.strict_error or "no response head")


def _read(sock, ex, rec, state, timeout, deadline_at, progress) -> None:
    t0 = time.monotonic()
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
        state.received(data, t)
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


class _ParseState:
    """Feeds every read to h11 and, alongside, to the tolerant reader (the "shadow").

    While h11 reads on, the recording is h11's. The moment h11 rejects the message, or stalls
    where the tolerant reader reads on (h11 waits for a CRLF that a bare-LF sender never sends,
    or for a chunk-size line that is not there), the recording becomes the tolerant reader's:
    it has read the same bytes at the same times, so nothing needs replaying and nothing is lost
    however long the stream (the old design replayed the kept raw bytes, partial past RAW_KEEP).
    In a valid message both emit body bytes as they arrive, so they never drift apart.
    """

    def __init__(self, rec: Recording, conn: h11.Connection, method: str):
        self.rec, self.conn, self.method = rec, conn, method
        self.shadow = TolerantParser(method)
        self.strict = True          # h11's reading is the recording's
        self.chunk_ended = True     # the next body byte h11 gives starts a chunk (when chunked)
        self.body = bytearray()     # the first BODY_KEEP decoded bytes (h11's)
        self.raw = bytearray()      # the first RAW_KEEP wire bytes (kept here: str += is quadratic)
        self.notes: list[str] = []  # the recorder's own notes (reset details)

    def received(self, data: bytes, t: float) -> None:
        """Account for one read: its time and size, and its bytes while RAW_KEEP allows."""
        rec = self.rec
        if len(rec.reads) < READS_KEEP:
            rec.reads.append(Read(t, len(data)))
        else:
            rec.reads_dropped += 1
        if len(self.raw) < RAW_KEEP:
            self.raw += data[:RAW_KEEP - len(self.raw)]
        rec.raw_bytes += len(data)

    def feed(self, data: bytes, t: float) -> None:
        self.shadow.feed(data, t)
        if not self.strict:
            self._sync_tolerant(t)
            return
        try:
            self.conn.receive_data(data)
            self._drain(t)
        except h11.RemoteProtocolError as e:
            self._fall_back(str(e), t)
            return
        stalled = self._h11_stalled()
        if stalled:
            self._fall_back(stalled, t)

    def _h11_stalled(self) -> str | None:
        """Why h11 is stuck where the tolerant reader is not (None: it is not)."""
        p, rec = self.shadow, self.rec
        if p.error:
            # Not HTTP at all (h11 would wait for a blank line to say so), or over a limit that
            # h11 only enforces on what arrives in pieces (a 70 kB head in one read passes it):
            # the tolerant reader's limits hold whatever the reads.
            return p.error
        if rec.end is not None:
            return None
        gave_up = p.framing == "chunked" and p.state == "close"
        if p.offset > rec.body_bytes or gave_up or (p.ended_by and rec.head_t is not None):
            why = p.notes[0] if p.notes else "it waits for bytes a valid message would have sent"
            return f"h11 cannot read past body byte {rec.body_bytes}: {why}"
        return None

    def eof(self, t: float) -> None:
        rec = self.rec
        self.shadow.close(t)
        if self.strict:
            try:
                self.conn.receive_data(b"")
                self._drain(t, at_eof=True)
            except h11.RemoteProtocolError as e:
                # h11 says the message is incomplete. When the tolerant reader has a head, its
                # reading (of a body h11 may have stalled on) is the better record; with no
                # head at all there is nothing to read.
                if self.shadow.status is not None:
                    self._fall_back(str(e), t, at_eof=True)
        else:
            self._sync_tolerant(t, at_eof=True)
        if rec.end is None:
            rec.end, rec.end_t = ("cut-short" if rec.head_t is not None else "closed"), t

    def _drain(self, t: float, at_eof: bool = False) -> None:
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
                # h11 drops chunk_start when a chunk-size line arrives in a read before its data
                # (its first Data then comes from the next read, flagged as a continuation); a
                # chunk starts wherever the previous one ended, so say so ourselves.
                start = event.chunk_start or (rec.framing == "chunked" and self.chunk_ended)
                self.chunk_ended = event.chunk_end
                if len(rec.pieces) < PIECES_KEEP:
                    rec.pieces.append(Piece(t, rec.body_bytes, size, start, event.chunk_end))
                else:
                    rec.pieces_dropped += 1
                if len(self.body) < BODY_KEEP:
                    self.body += event.data[:BODY_KEEP - len(self.body)]
                rec.body_bytes += size
            elif isinstance(event, h11.EndOfMessage):
                rec.trailers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in event.headers.raw_items()]
                # A close-delimited body ends when the server closes: "closed", as the
                # tolerant reader says; any other framing ends in-band: "complete".
                rec.end, rec.end_t = ("closed" if at_eof else "complete"), t
                rec.after_end_bytes += len(self.conn.trailing_data[0])
                return
            elif isinstance(event, h11.ConnectionClosed):
                if rec.end is None:
                    rec.end, rec.end_t = "closed", t
                return

    def _fall_back(self, why: str, t: float, at_eof: bool = False) -> None:
        """h11 rejected (or cannot read on in) the message: the tolerant reading takes over."""
        rec = self.rec
        rec.strict_error, rec.parser = why, "tolerant"
        rec.end = rec.end_t = None
        self.strict = False
        self._sync_tolerant(t, at_eof)

    def _sync_tolerant(self, t: float, at_eof: bool = False) -> None:
        p, rec = self.shadow, self.rec
        rec.status, rec.reason, rec.http_version = p.status, p.reason or "", p.http_version
        rec.headers, rec.framing = p.headers, p.framing
        rec.head_t = p.head_t if p.status is not None else None  # not after an interim response only
        rec.pieces, rec.trailers, rec.pieces_dropped = p.pieces, p.trailers, p.pieces_dropped
        rec.body_bytes = p.offset
        rec.framing_notes = self.notes + p.notes
        rec.after_end_bytes = p.after_end
        self.body = p.body
        if p.ended_by and rec.end is None:
            rec.end, rec.end_t = p.ended_by, p.end_t
        if p.error:
            if rec.head_t is None:
                rec.error = rec.error or p.error
            elif p.error not in rec.framing_notes:
                rec.framing_notes.append(p.error)
            if rec.end is None:  # the reader gave up: stop reading, unless the server did
                rec.end, rec.end_t = ("closed" if at_eof else "abandoned"), t

    def stop(self, how: str, t: float, detail: str = "") -> None:
        if self.rec.end is None:
            self.rec.end, self.rec.end_t = how, t
        if detail:
            self.notes.append(detail)
            self.rec.framing_notes.append(detail)

    def finish(self) -> None:
        self.rec.body_kept = self.body.decode("latin-1")  # straight from the bytearrays: no extra copy
        self.rec.raw_kept = self.raw.decode("latin-1")
        if self.rec.head_t is None and self.rec.error is None and self.rec.end == "closed":
            self.rec.error = ("the connection closed before a complete response head" if self.rec.raw_bytes
                              else "the connection closed before a response head")


def _framing_of(rec: Recording, method: str) -> str:
    if method == "HEAD" or rec.status in (204, 304):
        return "none"
    codings = rec.header_list("transfer-encoding")
    if codings:
        return "chunked" if codings[-1] == "chunked" else "close"
    return "content-length" if rec.header_values("content-length") else "close"


# --- several exchanges on one connection (persistence, RFC 9112 §9.3) -------------------------

def record_sequence(url: str, exchanges: list[Exchange], *, timeout: float = 10.0, deadline: float = 120.0,
                    insecure: bool = False, secret_headers=()) -> list[Recording]:
    """Record exchanges one after another on one connection, each as ``record()`` records it.

    The next request is written only once the previous response has completed on a connection
    that both sides may keep (see ``not_persistent``); otherwise the next recording gets an
    ``error`` that says why, and nothing more is sent. Each exchange has its own ``deadline`` and
    its times relative to its own request; later exchanges repeat the first one's ``connect_s``
    (the round-trip estimate), since they make no handshake. Bytes that arrive after one response
    ended are counted in its ``after_end_bytes`` (in the read that ended it) or, arriving later,
    taken as the start of the next response.
    """
    ep = parse_url(url)
    recs: list[Recording] = []
    sock = None
    try:
        for ex in exchanges:
            headers = request_headers(ep, ex)
            rec = Recording(scenario=ex.scenario, url=url, method=ex.method, request_version=ex.http_version,
                            request_headers=redact(headers, secret_headers))
            if recs:
                why = not_persistent(recs[-1])
                if why:
                    rec.error = f"not sent: {why}"
                    recs.append(rec)
                    break
                rec.connect_s, rec.tls = recs[0].connect_s, recs[0].tls
            recs.append(rec)
            try:
                wire, conn = _request(ep, ex, headers)
            except (h11.LocalProtocolError, UnicodeError) as e:
                rec.error = f"the request cannot be written: {e}"
                break
            if sock is None:
                sock = _connect(ep, rec, min(timeout, deadline), insecure)
                if sock is None:
                    break
            _exchange(sock, ex, wire, conn, rec, timeout, time.monotonic() + deadline, None)
            if rec.error:
                break
    finally:
        if sock is not None:
            sock.close()
    return recs


def not_persistent(rec: Recording) -> str | None:
    """Why the connection that carried ``rec`` cannot carry another exchange (None: it can).
    RFC 9112 §9.3: a connection persists unless the request or the response said
    ``Connection: close``, or the response was HTTP/1.0; and only a response that completed
    leaves the connection at a message boundary."""
    if rec.error:
        return f"the previous exchange failed: {rec.error}"
    if rec.request_version == "1.0":
        return "the previous request was HTTP/1.0"
    if any(k.lower() == "connection" and "close" in v.lower() for k, v in rec.request_headers):
        return "the previous request said Connection: close"
    if "close" in rec.header_list("connection"):
        return "the server said Connection: close"
    if rec.http_version == "1.0":
        return "the server answered HTTP/1.0, which closes the connection"
    if rec.end != "complete":
        return f"the previous response did not complete ({rec.end})"
    return None
