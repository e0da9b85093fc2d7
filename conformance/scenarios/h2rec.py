"""HTTP/2 recordings: the same GET over h2 when an https server offers it in ALPN.

The recorder drives an ``h2`` connection over its own TLS socket, so every DATA frame is
timestamped when its bytes come off the socket (a client library's trace hooks would give the
time it got round to handing them over). Frames become ``Piece``s of a ``Recording``, so the
same delivery analysis judges them.
"""
from __future__ import annotations

import socket
import ssl
import time
from dataclasses import replace

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from conformance.scenarios.base import Context, Scenario, register
from conformance.wire.recorder import (
    INTERRUPTED,
    Exchange,
    parse_url,
    register_socket,
    request_headers,
    stopped_by_abort,
    tls_context,
)
from conformance.wire.recording import BODY_KEEP, Piece, Read, Recording, redact

READ_SIZE = 256 * 1024


def _request(ctx: Context):
    ep = parse_url(ctx.url)
    ex = ctx.exchange(Exchange("h2"))   # the target's request: method and body
    headers = [(k, v) for k, v in request_headers(ep, replace(ex, headers=list(ctx.target.headers)))
               if k.lower() not in ("host", "connection")]
    rec = Recording("h2", ctx.url, method=ex.method, request_version="2", request_headers=redact(headers, ctx.secret_headers),
                    parser="h2")
    return ep, headers, rec


def _not_https(ctx: Context) -> Recording | None:
    """The record of an http:// target, where HTTP/2 is not offered (delivery.h2 skips it)."""
    ep, _headers, rec = _request(ctx)
    if ep.scheme == "https":
        return None
    rec.framing_notes.append("not https: HTTP/2 is only offered through TLS (ALPN)")
    return rec


def record_h2(ctx: Context) -> Recording:
    plain = _not_https(ctx)
    if plain is not None:
        return plain
    ep, headers, rec = _request(ctx)
    t_connect = time.monotonic()
    try:
        raw = socket.create_connection((ep.host, ep.port), timeout=ctx.timeout)
    except OSError as e:
        rec.error = f"cannot connect to {ep.host}:{ep.port}: {e.strerror or e}"
        return rec
    rec.connect_s = time.monotonic() - t_connect
    tls_ctx = tls_context(ctx.target.insecure, ("h2", "http/1.1"))
    try:
        sock = tls_ctx.wrap_socket(raw, server_hostname=ep.host)
    except ssl.SSLCertVerificationError as e:
        raw.close()
        rec.error = f"TLS certificate verification failed for {ep.host}: {e.verify_message} (--insecure skips verification)"
        return rec
    except (ssl.SSLError, OSError) as e:
        raw.close()
        rec.error = f"TLS handshake with {ep.host}:{ep.port} failed: {getattr(e, 'reason', None) or e}"
        return rec
    with sock:
        if not register_socket(sock):
            rec.end = INTERRUPTED
            return rec
        alpn = sock.selected_alpn_protocol()
        rec.tls = {"version": sock.version(), "cipher": sock.cipher()[0], "alpn": alpn}
        if alpn != "h2":
            rec.framing_notes.append(f"the server chose {alpn or 'no protocol'} in ALPN, not h2")
            return rec
        _exchange(sock, ep, headers, rec, ctx)
    return rec


def _exchange(sock, ep, headers, rec: Recording, ctx: Context) -> None:
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="latin-1"))
    conn.initiate_connection()
    stream = conn.get_next_available_stream_id()
    body = getattr(ctx.target, "body", None)
    conn.send_headers(stream, [(":method", rec.method), (":scheme", "https"), (":authority", ep.authority),
                               (":path", ep.target)] + [(k.lower(), v) for k, v in headers], end_stream=not body)
    if body:   # within the initial windows (64 KiB): a request body larger than that is cut to them
        conn.send_data(stream, body[:conn.local_flow_control_window(stream)], end_stream=True)
    sock.sendall(conn.data_to_send())
    t0 = time.monotonic()
    deadline = t0 + ctx.deadline
    body = bytearray()
    while rec.end is None:
        sock.settimeout(max(0.001, min(ctx.timeout, deadline - time.monotonic())))
        try:
            data = sock.recv(READ_SIZE)
        except (TimeoutError, socket.timeout):
            rec.end = "deadline" if time.monotonic() >= deadline else "timeout"
            break
        except OSError as e:
            rec.end = stopped_by_abort("reset")
            rec.framing_notes.append(f"{type(e).__name__}: {e}")
            break
        t = time.monotonic() - t0
        if not data:
            rec.end = stopped_by_abort("cut-short")
            break
        rec.reads.append(Read(t, len(data)))
        rec.raw_bytes += len(data)
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            rec.strict_error = f"{type(e).__name__}: {e}"
            rec.end = "error"
            break
        for event in events:
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream:
                rec.head_t, rec.http_version = t, "2"
                rec.headers = [[k, v] for k, v in event.headers if k != ":status"]
                rec.status = int(dict(event.headers).get(":status", 0))
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream:
                size = len(event.data)
                rec.pieces.append(Piece(t, rec.body_bytes, size, True, True))  # one DATA frame each
                rec.body_bytes += size
                if len(body) < BODY_KEEP:
                    body += event.data[:BODY_KEEP - len(body)]
                conn.acknowledge_received_data(event.flow_controlled_length, stream)
            elif isinstance(event, h2.events.TrailersReceived):
                rec.trailers = [[k, v] for k, v in event.headers]
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream:
                rec.end, rec.end_t = "complete", t
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                rec.end, rec.end_t = "reset", t
                rec.framing_notes.append(f"the server reset the stream (error code {event.error_code})")
            elif isinstance(event, h2.events.ConnectionTerminated):
                rec.end = rec.end or "cut-short"
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    rec.body_kept = bytes(body).decode("latin-1")
    rec.framing = "h2"
    if rec.head_t is None and rec.error is None:
        rec.error = f"no HTTP/2 response head ({rec.end})"


register(Scenario("h2", "GET over HTTP/2 (https with ALPN h2), DATA frames timestamped", record_h2, skip=_not_https))
