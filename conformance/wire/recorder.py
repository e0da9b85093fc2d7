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

import functools
import os
import socket
import ssl
import threading
import time
import weakref
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import h11

from conformance import SUITE_NAME, __version__
from conformance.wire.recording import (
    BODY_KEEP,
    HEAD_LIMIT,
    PIECES_KEEP,
    RAW_KEEP,
    READS_KEEP,
    Piece,
    PieceLog,
    Read,
    Recording,
    redact,
)
from conformance.wire.tolerant import BODY_STATES, TolerantParser

READ_SIZE = 256 * 1024   # one recv_into a reused buffer: no allocation per read
# h11 is handed a read in slices of at most this size. It appends what it is given to a
# bytearray and cuts each event's bytes off its front; with a whole 256 KiB read that buffer
# is reallocated (and page-faulted) for every event, which costs more than parsing. Slices of
# 64 KiB keep its buffer small and reused: about 4x the throughput with large chunks.
FEED_SIZE = 64 * 1024
DIRECT_BODY_READER = True   # see _ParseState._body_reader
try:
    from h11._readers import ChunkedReader, ContentLengthReader, Http10Reader
    _H11_BODY_READERS = (ChunkedReader, ContentLengthReader, Http10Reader)
except ImportError:   # another h11: next_event() only
    _H11_BODY_READERS = ()


# --- stopping every recording at once (an interrupted run, issue 18) ---------------------------
# Every socket a recording opens is registered here. ``abort_all()`` (from the main thread, on
# Ctrl-C or SIGTERM) shuts them all down: a ``recv`` blocked in another thread returns at once
# (0 bytes, or an error), and the read loop, seeing ``ABORTED``, ends the recording as
# ``interrupted`` with what it has. Nothing is checked per read: the hot loop is unchanged.
ABORTED = threading.Event()
_open_sockets: "weakref.WeakSet[socket.socket]" = weakref.WeakSet()
_open_lock = threading.RLock()   # abort_all() may run in a signal handler on a thread holding it
INTERRUPTED = "interrupted"   # Recording.end of a recording stopped by abort_all()


def register_socket(sock) -> bool:
    """Let ``abort_all()`` shut ``sock`` down; False (and nothing registered) when it already ran."""
    with _open_lock:
        if ABORTED.is_set():
            return False
        _open_sockets.add(sock)
        return True


def abort_all() -> int:
    """Stop every recording in progress: shut its socket down. Returns how many were open."""
    with _open_lock:
        ABORTED.set()
        socks = list(_open_sockets)
        _open_sockets.clear()
    for s in socks:
        # socket.socket's own shutdown, also for an SSLSocket: its TLS state is left to the
        # thread reading it, which then gets EOF or an error
        try:
            if isinstance(s, socket.socket):
                socket.socket.shutdown(s, socket.SHUT_RDWR)
            else:
                s.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError, AttributeError):   # closed already (or a stand-in without it)
            pass
    return len(socks)


def reset_abort() -> None:
    """Recordings may run again (the suite's own tests, after one that aborted)."""
    ABORTED.clear()


def stopped_by_abort(end: str | None) -> str | None:
    """The end a read loop gives a stream that stopped without a message end: ``interrupted``
    when ``abort_all()`` ran, else ``end`` unchanged."""
    return INTERRUPTED if ABORTED.is_set() else end


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
        if "@" in parts.netloc:   # messages below show the URL: never with its credentials
            url = parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()
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
    # --watch: once the head has arrived, a body still open this long (s) after the request is
    # closed by the client and judged on what arrived (``end`` is "watched"): endless feeds are normal
    watch: float | None = None
    # A response head not complete this long (s) after the request ends the recording (end
    # "head-deadline"), however steadily its bytes trickle in: a head has a deadline of its own.
    head_deadline: float | None = None
    # Wire bytes read at most: a body longer than this is far more than a stream's profile
    # explains; the client stops reading (end "budget") and what was kept is judged.
    budget: int | None = None
    # The request's content (sent with Content-Length), and whether this exchange carries the
    # target's own request (method and body: ``scenarios.Context.exchange``); the suite's own
    # requests (a built-in's holder page, the large body's URL) do not.
    body: bytes | None = None
    own_request: bool = False


def request_headers(ep: Endpoint, ex: Exchange) -> list[tuple[str, str]]:
    ours = [("Host", ep.authority), ("User-Agent", f"{SUITE_NAME}/{__version__}"), ("Accept", "*/*"),
            ("Accept-Encoding", "identity")]
    given = {k.lower() for k, _ in ex.headers}
    length = [] if ex.body is None or "content-length" in given else [("Content-Length", str(len(ex.body)))]
    return [(k, v) for k, v in ours if k.lower() not in given] + list(ex.headers) + length


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
    if ex.body:
        conn.send(h11.Data(data=ex.body))
    conn.send(h11.EndOfMessage())
    return "".join(wire).encode("latin-1") + (ex.body or b""), conn



def per_ca_bundle(make):
    """``make(*args) -> ssl.SSLContext``, made once per process, arguments and CA bundle
    (``SSL_CERT_FILE``, ``SSL_CERT_DIR``) and shared by every connection (an ``SSLContext`` is
    safe to share). Making one loads the CA bundle with Python's interpreter lock held: 35 ms of
    CPU on an idle machine here, and with ten made at once on a busy one, seconds in which no
    other thread of the suite (recorders, clients) could run (measured with
    ``conformance.engine.own_load``)."""
    cached = functools.lru_cache(maxsize=16)(lambda _bundle, *args: make(*args))
    return lambda *args: cached((os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")), *args)


def _make_tls_context(insecure: bool, alpn: tuple[str, ...]) -> ssl.SSLContext:
    """The client TLS context for a policy and ALPN list."""
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(list(alpn))
    return ctx


tls_context = per_ca_bundle(_make_tls_context)   # (insecure, alpn) -> the shared context

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
    if not register_socket(sock):
        sock.close()
        rec.error, rec.end = "the run was interrupted before the request was sent", INTERRUPTED
        return None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if ep.scheme != "https":
        return sock
    ctx = tls_context(insecure, ("http/1.1",))
    try:
        tls = ctx.wrap_socket(sock, server_hostname=ep.host)
    except ssl.SSLCertVerificationError as e:
        rec.error = f"TLS certificate verification failed for {ep.host}: {e.verify_message} (--insecure skips verification)"
    except (ssl.SSLError, OSError) as e:
        rec.error = f"TLS handshake with {ep.host}:{ep.port} failed: {getattr(e, 'reason', None) or e}"
    else:
        rec.tls = {"version": tls.version(), "cipher": tls.cipher()[0], "alpn": tls.selected_alpn_protocol()}
        if register_socket(tls):
            return tls
        tls.close()
        rec.error, rec.end = "the run was interrupted before the request was sent", INTERRUPTED
        return None
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
                     "head-deadline": f"no complete response head within {ex.head_deadline or 0:g} s "
                                      f"({rec.raw_bytes} bytes of it arrived)",
                     "deadline": "no response head before the recording's deadline",
                     "reset": "the connection was reset before a response head",
                     "closed": "the connection closed before a response head"}.get(
                         rec.end, rec.strict_error or "no response head")


def _read(sock, ex, rec, state, timeout, deadline_at, progress) -> None:
    t0 = time.monotonic()
    buf = bytearray(READ_SIZE)
    view = memoryview(buf)   # each read is handed on as a view: whoever keeps bytes copies them
    ended_at = None
    last_progress = t0
    monotonic = time.monotonic
    watch_at = t0 + ex.watch if ex.watch else None
    head_at = t0 + ex.head_deadline if ex.head_deadline else None
    while True:
        now = monotonic()
        wait = min(timeout, deadline_at - now)
        if head_at is not None and rec.head_t is None:
            if now >= head_at:
                state.stop("head-deadline", now - t0)
                break
            wait = min(wait, head_at - now)
        if watch_at is not None and ended_at is None and rec.head_t is not None:
            if now >= watch_at:
                state.stop("watched", now - t0)
                break
            wait = min(wait, watch_at - now)
        if ended_at is not None:   # listening after the message: its own window, not the idle timeout
            wait = min(deadline_at - now, ended_at + ex.after_end_wait - now)
            if wait <= 0:
                break
        if wait <= 0:
            state.stop("deadline", now - t0)
            break
        sock.settimeout(wait)
        try:
            n = sock.recv_into(buf)
        except (TimeoutError, socket.timeout):
            if watch_at is not None and ended_at is None and rec.head_t is not None and monotonic() >= watch_at:
                state.stop("watched", monotonic() - t0)
            elif head_at is not None and rec.head_t is None and monotonic() >= head_at:
                state.stop("head-deadline", monotonic() - t0)
            elif ended_at is None:
                state.stop("deadline" if monotonic() >= deadline_at else "timeout", monotonic() - t0)
            break
        except OSError as e:  # reset, or a TLS error mid-stream (or abort_all())
            if ended_at is None:
                if ABORTED.is_set():
                    state.stop(INTERRUPTED, monotonic() - t0)
                else:
                    state.stop("reset", monotonic() - t0, f"{type(e).__name__}: {e}")
            break
        now = monotonic()
        t = now - t0
        if n == 0:
            if ended_at is None:
                if ABORTED.is_set():   # abort_all() shut the socket down: not the server's close
                    state.stop(INTERRUPTED, t)
                else:
                    state.eof(t)
            break
        data = view[:n]
        state.received(data, t)
        if ended_at is not None:
            rec.after_end_bytes += n
            if ex.budget and rec.after_end_bytes >= ex.budget:
                rec.framing_notes.append(f"the suite stopped listening after {rec.after_end_bytes:,} bytes "
                                         "after the message (its read budget)")
                break
            continue
        state.feed(data, t, buf)
        if rec.end is not None:
            ended_at = monotonic()
            if rec.end != "complete" or not ex.after_end_wait:
                break
        elif ex.budget and rec.raw_bytes >= ex.budget:
            state.stop("budget", t, f"the suite stopped reading after {rec.raw_bytes:,} bytes (its read budget, "
                       f"{ex.budget:,} bytes, is far more than a stream's profile explains)")
            break
        if progress and now - last_progress > 1.0:
            last_progress = now
            progress(rec)


class _ParseState:
    """Feeds every read to h11 and, alongside, to the tolerant reader (the "shadow").

    While h11 reads on, the recording is h11's. The moment h11 rejects the message, or stalls
    where the tolerant reader reads on (h11 waits for a CRLF that a bare-LF sender never sends,
    or for a chunk-size line that is not there), the recording becomes the tolerant reader's:
    it has read the same bytes at the same times, so nothing needs replaying and nothing is lost
    however long the stream (the old design replayed the kept raw bytes, partial past RAW_KEEP).
    In a valid message both emit body bytes as they arrive, so they never drift apart.

    Once the head is read and h11 is happy, the shadow *mirrors* h11 (``TolerantParser.skim``):
    it follows the framing of every read but keeps no pieces and no body of its own, since they
    would be h11's. A read that is anything but plain framing, or the one that ends the message,
    ends the mirroring: the shadow takes h11's pieces and body as of the read's start and reads
    on in full. When h11 rejects (or stalls in) a read the shadow skimmed, the shadow is put back
    to where it was before that read and reads it in full. Either way the shadow's reading is
    exactly what it would have been had it read everything in full.
    """

    def __init__(self, rec: Recording, conn: h11.Connection, method: str):
        self.rec, self.conn, self.method = rec, conn, method
        self.shadow = TolerantParser(method)
        self.strict = True          # h11's reading is the recording's
        self.mirror = False         # the shadow skims (see above)
        self.mirrored = False       # it did once: it is not asked to again
        self.chunk_ended = True     # the next body byte h11 gives starts a chunk (when chunked)
        self.body = bytearray()     # the first BODY_KEEP decoded bytes (h11's)
        self.raw = bytearray()      # the first RAW_KEEP wire bytes (kept here: str += is quadratic)
        self.notes: list[str] = []  # the recorder's own notes (reset details)
        self.read_no = 0            # reads so far
        self.piece_read = -1        # the read that made the last piece (h11 may give it in parts)
        self.piece_kept = False     # the last piece is in rec.pieces (not dropped)

    def received(self, data, t: float) -> None:
        """Account for one read: its time and size, and its bytes while RAW_KEEP allows."""
        rec = self.rec
        n = len(data)
        self.read_no += 1
        if len(rec.reads) < READS_KEEP:
            rec.reads.append(Read(t, n))
        else:
            rec.reads_dropped += 1
        if len(self.raw) < RAW_KEEP:
            self.raw += data[:RAW_KEEP - len(self.raw)]
        rec.raw_bytes += n

    def feed(self, data, t: float, whole=None) -> None:
        """Parse one read. ``whole``: the buffer it was read into, when ``data`` is its start
        (the shadow's skim checks runs of chunks faster on it)."""
        sh = self.shadow
        before = None
        if self.mirror:
            rec = self.rec
            before = (sh.state, sh.remaining, sh.chunk_fresh, sh.offset, bytes(sh.buf),
                      len(rec.pieces), rec.pieces_dropped, len(self.body))
            if not (sh.skim(whole, len(data)) if whole is not None else sh.skim(data)):
                self._unmirror()
                before = None
                sh.feed(data, t)
        else:
            sh.feed(data, t)
        if not self.strict:
            self._sync_tolerant(t)
            return
        try:
            n = len(data)
            body_reader = self._body_reader() if before is not None else None
            if body_reader is not None:
                # The shadow skimmed this read: plain body framing that does not end the
                # message. h11's body reader parses it; what h11's Connection adds around a
                # body event (its state machine) does nothing for these (see _body_reader).
                try:
                    for at in range(0, n, FEED_SIZE):
                        self.conn.receive_data(data[at:at + FEED_SIZE] if n > FEED_SIZE else data)
                        self._drain(t, next_event=body_reader)
                except h11.LocalProtocolError as e:   # what next_event() would raise it as
                    raise h11.RemoteProtocolError(str(e)) from None
            elif n <= FEED_SIZE:
                self.conn.receive_data(data)
                self._drain(t)
            else:
                for at in range(0, n, FEED_SIZE):
                    self.conn.receive_data(data[at:at + FEED_SIZE])
                    self._drain(t)
                    if self.rec.end is not None:   # what follows the message is counted, not parsed
                        self.rec.after_end_bytes += max(0, n - at - FEED_SIZE)
                        break
        except h11.RemoteProtocolError as e:
            self._fall_back(str(e), t, redo=(before, data))
            return
        stalled = self._h11_stalled()
        if stalled:
            self._fall_back(stalled, t, redo=(before, data))
        elif (not self.mirrored and self.rec.end is None and sh.state in BODY_STATES and not sh.error
              and sh.offset == self.rec.body_bytes and not sh.notes):
            # h11 and the shadow agree on the head and the body so far: the shadow mirrors.
            self.mirror = self.mirrored = True
            sh.pieces.clear()
            sh.pieces_dropped = 0
            sh.body = bytearray()

    def _body_reader(self):
        """h11's reader of the body, called straight (None: use ``next_event``).

        ``Connection.next_event`` wraps each event in bookkeeping: the reader is called on the
        receive buffer, then the event goes through the state machine and the buffer limits are
        checked. For a ``Data`` event in the middle of a body none of that changes anything (the
        server stays in SEND_BODY; a body reader's buffer holds at most a partial size line), yet
        it costs as much as the parsing: with 1 KiB chunks, 40% of the time. So while the shadow
        skims (each read is then known to be plain framing that does not end the message), the
        reader itself is called: h11 still parses every byte, with its own code, and anything
        that is not a ``Data`` event is never produced there. Used only when h11 is the version
        this was written for and in the state it expects; otherwise ``next_event`` as always.
        ``DIRECT_BODY_READER = False`` turns it off."""
        conn = self.conn
        if not DIRECT_BODY_READER or conn.their_state is not h11.SEND_BODY:
            return None
        reader, buffer = getattr(conn, "_reader", None), getattr(conn, "_receive_buffer", None)
        if type(reader) not in _H11_BODY_READERS or buffer is None:
            return None
        return functools.partial(reader, buffer)

    def _unmirror(self, before=None) -> None:
        """The shadow stops skimming: it takes h11's pieces and body (as they were before the
        current read when ``before`` is given, putting its own state back there too)."""
        sh, rec = self.shadow, self.rec
        self.mirror = False
        sh.pieces = rec.pieces.copy() if hasattr(rec.pieces, "copy") else list(rec.pieces)
        sh.pieces_dropped = rec.pieces_dropped
        sh.body = bytearray(self.body)
        if before is not None:
            sh.state, sh.remaining, sh.chunk_fresh, sh.offset, buf, pieces, dropped, body = before
            sh.buf = bytearray(buf)
            del sh.pieces[pieces:]
            sh.pieces_dropped = dropped
            del sh.body[body:]

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
        if self.mirror:
            self._unmirror()
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

    def _drain(self, t: float, at_eof: bool = False, next_event=None) -> None:
        # The hot loop of the recorder (one pass per h11 event, a million per GiB of 1 KiB
        # chunks): state in locals, written back once. ``next_event``: h11's body reader, called
        # straight (see _body_reader); it gives Data, or None for "needs data".
        rec = self.rec
        direct = next_event is not None
        next_event = next_event or self.conn.next_event
        Data = h11.Data
        pieces = rec.pieces
        columns = isinstance(pieces, PieceLog)   # its columns' appends, bound: no Python call per piece
        if columns:
            t_col, off_col, size_col, flag_col = (c.append for c in (pieces.t, pieces.offset, pieces.size, pieces.flags))
        else:
            add = lambda *p: pieces.append(Piece(*p))   # noqa: E731 - a plain list
        grow = getattr(pieces, "grow_last", None) or (lambda size, end: _grow_last(pieces, size, end))
        npieces = len(pieces)
        chunked = rec.framing == "chunked"
        body = self.body
        keep = BODY_KEEP - len(body)
        offset = rec.body_bytes
        dropped = 0
        chunk_ended, piece_kept = self.chunk_ended, self.piece_kept
        same_read = self.piece_read == self.read_no
        try:
            while True:
                event = next_event()
                if type(event) is Data:
                    data = event.data
                    size = len(data)
                    end = event.chunk_end
                    # h11 drops chunk_start when a chunk-size line arrives in a read before its
                    # data (its first Data then comes from the next read, flagged as a
                    # continuation); a chunk starts wherever the previous one ended, so say so.
                    start = event.chunk_start or (chunked and chunk_ended)
                    if same_read and not start and not chunk_ended:
                        # The same read, the same chunk: h11 was handed the read in slices,
                        # and this is the rest of the last piece.
                        if piece_kept:
                            grow(size, end)
                    elif npieces < PIECES_KEEP:
                        if columns:
                            t_col(t)
                            off_col(offset)
                            size_col(size)
                            flag_col(start | (end << 1))
                        else:
                            add(t, offset, size, start, end)
                        npieces += 1
                        piece_kept = same_read = True
                    else:
                        dropped += 1
                        piece_kept, same_read = False, True
                    chunk_ended = end
                    if keep > 0:
                        body += data[:keep]
                        keep -= size
                    offset += size
                    continue
                if event is h11.NEED_DATA or event is h11.PAUSED or event is None:
                    return
                if direct:   # cannot be: the shadow saw nothing but body framing in this read
                    raise RuntimeError(f"h11's body reader gave {type(event).__name__} within plain framing")
                kind = type(event)
                if kind is h11.InformationalResponse:
                    continue
                if kind is h11.Response:
                    rec.head_t, rec.status = t, event.status_code
                    rec.http_version = event.http_version.decode()
                    rec.reason = event.reason.decode("latin-1")
                    rec.headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in event.headers.raw_items()]
                    rec.framing = _framing_of(rec, self.method)
                    chunked = rec.framing == "chunked"
                elif kind is h11.EndOfMessage:
                    rec.trailers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in event.headers.raw_items()]
                    # A close-delimited body ends when the server closes: "closed", as the
                    # tolerant reader says; any other framing ends in-band: "complete".
                    rec.end, rec.end_t = ("closed" if at_eof else "complete"), t
                    rec.after_end_bytes += len(self.conn.trailing_data[0])
                    return
                elif kind is h11.ConnectionClosed:
                    if rec.end is None:
                        rec.end, rec.end_t = "closed", t
                    return
        finally:
            rec.body_bytes = offset
            rec.pieces_dropped += dropped
            self.chunk_ended, self.piece_kept = chunk_ended, piece_kept
            if same_read:
                self.piece_read = self.read_no

    def _fall_back(self, why: str, t: float, at_eof: bool = False, redo=(None, None)) -> None:
        """h11 rejected (or cannot read on in) the message: the tolerant reading takes over.
        ``redo``: (the shadow's state before the current read, the read) when the shadow only
        skimmed that read; it is then put back and reads it in full."""
        rec = self.rec
        before, data = redo
        if self.mirror:
            self._unmirror(before)
            if before is not None:
                self.shadow.feed(data, t)
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


def _grow_last(pieces: list, size: int, chunk_end: bool) -> None:
    last = pieces[-1]
    pieces[-1] = last._replace(size=last.size + size, chunk_end=chunk_end)


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


# --- incremental reading (redirects, the holder page, the disconnect) -----------------------------

def follow(url: str, exchange: Exchange, on_read, *, timeout: float, deadline: float, insecure: bool = False,
           secret_headers=()) -> tuple[Recording, float | None]:
    """Record one exchange read by read with the tolerant reader, calling ``on_read(parser, t)``
    after every read; when it returns False the client closes the connection at once (``end`` is
    ``client-closed``). Returns the recording and the monotonic time of t = 0 (None if no request
    was sent)."""
    ep = parse_url(url)
    headers = request_headers(ep, exchange)
    rec = Recording(scenario=exchange.scenario, url=url, method=exchange.method,
                    request_version=exchange.http_version, request_headers=redact(headers, secret_headers),
                    parser="tolerant")
    try:
        wire, _ = _request(ep, exchange, headers)
    except (h11.LocalProtocolError, UnicodeError) as e:
        rec.error = f"the request cannot be written: {e}"
        return rec, None
    start = time.monotonic()
    sock = _connect(ep, rec, min(timeout, deadline), insecure)
    if sock is None:
        return rec, None
    p = TolerantParser(exchange.method)
    t0 = None
    try:
        sock.sendall(wire)
        t0 = time.monotonic()
        buf = bytearray(READ_SIZE)
        while True:
            wait = min(timeout, start + deadline - time.monotonic())
            if exchange.head_deadline and p.status is None:   # a head has a deadline of its own
                left = t0 + exchange.head_deadline - time.monotonic()
                if left <= 0:
                    rec.end, rec.end_t = "head-deadline", time.monotonic() - t0
                    break
                wait = min(wait, left)
            if exchange.watch and p.status is not None:
                left = t0 + exchange.watch - time.monotonic()
                if left <= 0:
                    rec.end, rec.end_t = "watched", time.monotonic() - t0
                    break
                wait = min(wait, left)
            if wait <= 0:
                rec.end, rec.end_t = "deadline", time.monotonic() - t0
                break
            sock.settimeout(wait)
            try:
                n = sock.recv_into(buf)
            except (TimeoutError, socket.timeout):
                watched = exchange.watch and p.status is not None and time.monotonic() >= t0 + exchange.watch
                late = exchange.head_deadline and p.status is None and time.monotonic() >= t0 + exchange.head_deadline
                rec.end = "watched" if watched else "head-deadline" if late else "timeout"
                rec.end_t = time.monotonic() - t0
                break
            t = time.monotonic() - t0
            if n == 0:
                if ABORTED.is_set():   # abort_all() shut the socket: not the server's close
                    rec.end, rec.end_t = INTERRUPTED, t
                else:
                    p.close(t)
                break
            if len(rec.reads) < READS_KEEP:
                rec.reads.append(Read(t, n))
            rec.raw_bytes += n
            p.feed(bytes(buf[:n]), t)
            if on_read(p, t) is False and not p.ended_by:
                rec.end, rec.end_t = "client-closed", t
                break
            if p.ended_by or p.error:
                break
            if exchange.budget and rec.raw_bytes >= exchange.budget:   # far more than a stream explains
                rec.end, rec.end_t = "budget", t
                rec.framing_notes.append(f"the suite stopped reading after {rec.raw_bytes:,} bytes (its read budget)")
                break
    except OSError as e:
        rec.end, rec.end_t = stopped_by_abort("reset"), (time.monotonic() - t0) if t0 else None
        if rec.end != INTERRUPTED:
            rec.framing_notes.append(f"{type(e).__name__}: {e}")
    finally:
        sock.close()
    rec.status, rec.reason, rec.http_version = p.status, p.reason or "", p.http_version
    rec.headers, rec.framing, rec.head_t = p.headers, p.framing, p.head_t if p.status is not None else None
    rec.pieces, rec.trailers, rec.pieces_dropped = p.pieces, p.trailers, p.pieces_dropped
    rec.body_bytes, rec.body_kept = p.offset, bytes(p.body).decode("latin-1")
    rec.framing_notes += p.notes
    rec.after_end_bytes = p.after_end
    if rec.end is None:
        rec.end, rec.end_t = p.ended_by or ("closed" if p.status is None else "cut-short"), p.end_t
    if p.error and rec.status is None:
        rec.error = p.error
    elif rec.head_t is None and rec.error is None:
        rec.error = (f"no complete response head within {exchange.head_deadline:g} s ({rec.raw_bytes} bytes of it "
                     "arrived)" if rec.end == "head-deadline" else f"no response head ({rec.end})")
    return rec, t0
