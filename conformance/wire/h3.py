"""HTTP/3 recordings: one request over QUIC (RFC 9000, RFC 9114), every DATA frame timestamped.

An https server says it also speaks HTTP/3 in its responses' ``Alt-Svc`` header (RFC 7838 §3,
RFC 9114 §3.1.1: ``Alt-Svc: h3=":443"; ma=86400``); ``alt_svc_h3`` reads the first ``h3``
alternative from its values. ``record_h3`` then sends the request to that UDP address with
aioquic's sans-I/O ``QuicConnection`` and ``H3Connection`` driven over a socket of our own (as
``conformance.scenarios.h2rec`` drives ``h2`` over its own TLS socket), so each datagram is
timestamped when it comes off the socket, not when an event loop got round to it. Each
``DataReceived`` event on the request stream (one DATA frame, or the part of one a datagram
carried) becomes a ``Piece`` of a ``Recording``, so the suite's delivery judges read it as they
read HTTP/1.1 and HTTP/2.

Times (``head_t``, pieces, ``end_t``) are seconds from the moment the request's datagrams were
written, after the QUIC handshake; ``connect_s`` is the time from the client's first datagram to
the server's first (its Initial: one round trip, as a TCP handshake's SYN to SYN-ACK, plus the
time the server takes to answer), the latency estimate the delivery judges use. Nothing here raises for what a server does:
every failure is the recording's ``error`` (could not connect, no handshake) or its ``end`` and
``framing_notes`` / ``strict_error`` (the connection or the stream was closed with an error).
"""
from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import time

from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic import events as quic_events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection

from conformance.wire.recorder import ABORTED, INTERRUPTED, parse_url, register_socket, stopped_by_abort
from conformance.wire.recording import BODY_KEEP, PIECES_KEEP, Piece, Read, Recording, redact

DATAGRAM = 65536          # bytes: the largest UDP payload, so one recv is one datagram
POLL_S = 0.25             # s: the longest wait without looking at the run's interrupt
# RFC 9114 §4.2: connection-specific header fields are malformed in HTTP/3; the suite's own
# HTTP/1.1 headers that are such are left out (Host becomes :authority).
CONNECTION_SPECIFIC = {"host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}
# QUIC's NO_ERROR (RFC 9000 §20.1) and HTTP/3's H3_NO_ERROR (RFC 9114 §8.1): a clean close.
NO_ERROR = {0x0, 0x100}

# RFC 7838 §3: alt-value = protocol-id "=" alt-authority *( OWS ";" OWS parameter ), with
# alt-authority a quoted-string holding [ uri-host ] ":" port.
_ALT_VALUE = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*"((?:[^"\\]|\\.)*)"((?:\s*;\s*[^,;]*)*)\s*(?:,|$)')


def alt_svc_h3(values: list[str]) -> tuple[str | None, int] | None:
    """The first ``h3`` alternative of the ``Alt-Svc`` header values (RFC 7838 §3) as (host,
    port), host None for the origin's own host; None when no value offers ``h3`` (or the header
    says ``clear``). Drafts (``h3-29``) are not HTTP/3 as RFC 9114 defines it and are ignored."""
    for value in values:
        if value.strip().lower() == "clear":
            return None
        for m in _ALT_VALUE.finditer(value):
            if m.group(1).lower() != "h3":
                continue
            authority = re.sub(r"\\(.)", r"\1", m.group(2))
            host, sep, port = authority.rpartition(":")
            if not sep or not port.isdigit() or not 0 < int(port) < 65536:
                continue
            host = host.strip("[]") or None
            return host, int(port)
    return None


def record_h3(url: str, alternative: tuple[str | None, int], *, method: str = "GET", body: bytes | None = None,
              headers: list[tuple[str, str]] = (), timeout: float = 10.0, deadline: float = 120.0,
              watch: float | None = None, budget: int | None = None, insecure: bool = False,
              secret_headers=(), scenario: str = "h3") -> Recording:
    """Send ``method`` (with ``body``) for ``url`` over HTTP/3 to ``alternative`` (host or None
    for the URL's host, UDP port) and record the response.

    ``headers`` are the request's fields beyond the pseudo-headers (connection-specific ones are
    dropped, RFC 9114 §4.2); ``timeout`` (s) bounds each wait for a datagram and the handshake,
    ``deadline`` (s) the exchange; ``watch`` (s): a body still open this long after the request
    ends the recording with ``end`` "watched"; ``budget``: datagram bytes read at most (``end``
    "budget"). ``insecure`` skips certificate verification (``--insecure``)."""
    ep = parse_url(url)
    fields = [(k.lower(), v) for k, v in headers if k.lower() not in CONNECTION_SPECIFIC]
    rec = Recording(scenario, url, method=method, request_version="3",
                    request_headers=redact([(k, v) for k, v in fields], secret_headers), parser="h3")
    host, port = alternative[0] or ep.host, alternative[1]
    try:
        family, _type, _proto, _name, addr = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)[0]
    except OSError as e:
        rec.error = f"cannot resolve {host}: {e.strerror or e}"
        return rec
    addr = addr[:2]
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=ep.host,
                               verify_mode=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED)
    quic = QuicConnection(configuration=config)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    with sock:
        try:
            sock.connect(addr)   # connected: ICMP port unreachable comes back as ECONNREFUSED
        except OSError as e:
            rec.error = f"cannot reach {host}:{port} (UDP): {e.strerror or e}"
            return rec
        if not register_socket(sock):
            rec.error, rec.end = "the run was interrupted before the request was sent", INTERRUPTED
            return rec
        _Exchange(rec, quic, sock, addr, f"{host}:{port}").run(
            ep, fields, body, timeout=timeout, deadline=deadline, watch=watch, budget=budget)
    if (rec.error or "").startswith("the QUIC handshake") and _is_ip(ep.host):
        rec.error += (f"; no server name was sent ({ep.host} is an address, RFC 6066 §3): a server that picks "
                      "its certificate by name, or by a wildcard listener's address, may have none to offer")
    return rec


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class _Exchange:
    """The QUIC connection's loop: datagrams in (each timestamped), timers, datagrams out."""

    def __init__(self, rec: Recording, quic: QuicConnection, sock: socket.socket, addr, where: str):
        self.rec, self.quic, self.sock, self.addr, self.where = rec, quic, sock, addr, where
        self.h3: H3Connection | None = None
        self.stream: int | None = None
        self.t0: float | None = None        # when the request was written
        self.kept = bytearray()
        self.closed: quic_events.ConnectionTerminated | None = None

    def flush(self) -> None:
        for data, _addr in self.quic.datagrams_to_send(now=time.monotonic()):
            self.sock.send(data)

    def wait(self, until: float) -> bytes | None:
        """The next datagram, or None once ``until`` (monotonic s) or the QUIC timer is reached;
        raises OSError (ECONNREFUSED: nothing listens on that UDP port)."""
        while True:
            now = time.monotonic()
            timer = self.quic.get_timer()
            if timer is not None and timer <= now:
                self.quic.handle_timer(now=now)
                self.flush()
                return None
            if now >= until or ABORTED.is_set():
                return None
            self.sock.settimeout(max(0.001, min(until, timer if timer is not None else until, now + POLL_S) - now))
            try:
                return self.sock.recv(DATAGRAM)
            except (TimeoutError, socket.timeout):
                continue

    def run(self, ep, fields, body: bytes | None, *, timeout: float, deadline: float, watch: float | None,
            budget: int | None) -> None:
        rec = self.rec
        start = time.monotonic()
        self.quic.connect(self.addr, now=start)
        self.flush()
        handshake_by = start + min(timeout, deadline)
        try:
            while self.h3 is None and self.closed is None:   # the handshake
                if ABORTED.is_set():
                    rec.error, rec.end = "the run was interrupted before the request was sent", INTERRUPTED
                    return
                if time.monotonic() >= handshake_by:
                    rec.error = (f"no QUIC handshake with {self.where} (UDP) within {min(timeout, deadline):g} s: "
                                 "UDP may be filtered on the way, or nothing answers QUIC there")
                    return
                data = self.wait(handshake_by)
                if data is not None:
                    if rec.connect_s is None:   # the server's first flight: one round trip after ours
                        rec.connect_s = time.monotonic() - start
                    self.quic.receive_datagram(data, self.addr, now=time.monotonic())
                self.events(None)
                self.flush()
        except OSError as e:
            rec.error = f"nothing answers QUIC on {self.where} (UDP): {e.strerror or e}"
            return
        if self.h3 is None:
            c = self.closed
            rec.error = (f"the QUIC handshake with {self.where} failed: error 0x{c.error_code:x}"
                         + (f" ({c.reason_phrase})" if c.reason_phrase else "")
                         + (" (--insecure skips certificate verification)"
                            if "certificate" in (c.reason_phrase or "").lower() else ""))
            return
        self.send_request(ep, fields, body)
        self.t0 = time.monotonic()
        end_by = self.t0 + deadline
        idle_by = self.t0 + timeout
        try:
            while rec.end is None:
                now = time.monotonic()
                if ABORTED.is_set():
                    rec.end = stopped_by_abort("reset")
                    break
                if now >= end_by:
                    rec.end = "deadline"
                    break
                if now >= idle_by:
                    rec.end = "timeout"
                    break
                if watch is not None and rec.head_t is not None and now - self.t0 >= watch:
                    rec.end = "watched"
                    break
                until = min(end_by, idle_by, self.t0 + watch if watch is not None and rec.head_t is not None else end_by)
                data = self.wait(until)
                if data is not None:
                    t = time.monotonic() - self.t0
                    rec.reads.append(Read(t, len(data)))
                    rec.raw_bytes += len(data)
                    idle_by = time.monotonic() + timeout
                    self.quic.receive_datagram(data, self.addr, now=time.monotonic())
                    self.events(t)
                    if budget is not None and rec.raw_bytes >= budget and rec.end is None:
                        rec.end = "budget"
                else:
                    self.events(time.monotonic() - self.t0)
                self.flush()
        except OSError as e:
            rec.end = rec.end or stopped_by_abort("reset")
            rec.framing_notes.append(f"{type(e).__name__}: {e}")
        finally:
            rec.body_kept = bytes(self.kept).decode("latin-1")
            rec.framing = "h3"
            if rec.head_t is None and rec.error is None:
                rec.error = f"no HTTP/3 response head ({rec.end})"
            self.quic.close()
            try:
                self.flush()
            except OSError:
                pass

    def send_request(self, ep, fields, body: bytes | None) -> None:
        self.stream = self.quic.get_next_available_stream_id()
        head = [(b":method", self.rec.method.encode()), (b":scheme", b"https"),
                (b":authority", ep.authority.encode("latin-1")), (b":path", ep.target.encode("latin-1"))]
        head += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in fields]
        self.h3.send_headers(self.stream, head, end_stream=not body)
        if body:   # QUIC's flow control paces it: aioquic keeps what the window does not yet allow
            self.h3.send_data(self.stream, body, end_stream=True)
        self.flush()

    def events(self, t: float | None) -> None:
        """Hand QUIC's events to HTTP/3 and the request stream's to the recording (at ``t``, s
        after the request; None during the handshake)."""
        rec = self.rec
        while (event := self.quic.next_event()) is not None:
            if isinstance(event, quic_events.ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
                rec.tls = {"version": "TLSv1.3", "cipher": None, "alpn": event.alpn_protocol}
            elif isinstance(event, quic_events.HandshakeCompleted):
                rec.tls = {"version": "TLSv1.3", "cipher": None, "alpn": event.alpn_protocol}
                self.h3 = H3Connection(self.quic)
            elif isinstance(event, quic_events.ConnectionTerminated):
                self.closed = event
                if t is not None and rec.end is None:
                    rec.end, rec.end_t = stopped_by_abort("cut-short"), t
                    clean = event.error_code in NO_ERROR
                    note = (f"the QUIC connection was closed (error 0x{event.error_code:x}"
                            + (f": {event.reason_phrase}" if event.reason_phrase else "") + ") before the stream ended")
                    rec.framing_notes.append(note)
                    if not clean:
                        rec.strict_error = note
                continue
            elif isinstance(event, quic_events.StreamReset) and event.stream_id == self.stream and rec.end is None:
                rec.end, rec.end_t = "reset", t
                rec.framing_notes.append(f"the server reset the stream (error code 0x{event.error_code:x})")
            if self.h3 is None:
                continue
            for h3_event in self.h3.handle_event(event):
                if getattr(h3_event, "stream_id", None) != self.stream or rec.end is not None:
                    continue
                if isinstance(h3_event, HeadersReceived):
                    pairs = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in h3_event.headers]
                    if rec.head_t is None:
                        status = dict((k, v) for k, v in pairs).get(":status", "0")
                        if status.startswith("1"):   # an interim response (RFC 9114 §4.1): the final one follows
                            continue
                        rec.head_t, rec.http_version = t, "3"
                        rec.status = int(status) if status.isdigit() else 0
                        rec.headers = [p for p in pairs if not p[0].startswith(":")]
                    else:
                        rec.trailers = pairs
                elif isinstance(h3_event, DataReceived) and h3_event.data:
                    size = len(h3_event.data)
                    if len(rec.pieces) < PIECES_KEEP:
                        rec.pieces.append(Piece(t, rec.body_bytes, size, True, True))
                    else:
                        rec.pieces_dropped += 1
                    rec.body_bytes += size
                    if len(self.kept) < BODY_KEEP:
                        self.kept += h3_event.data[:BODY_KEEP - len(self.kept)]
                if getattr(h3_event, "stream_ended", False):
                    rec.end, rec.end_t = "complete", t
