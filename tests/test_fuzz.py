"""Hypothesis: malformed and truncated responses, split into random reads, never break record().

The responses are built from the pieces that go wrong in the wild (doubled or foreign transfer
codings, bad lengths, bare LFs, bad chunk sizes, missing CRLFs, folded or giant headers,
garbage) and then truncated, extended and split at random. Most examples go through the
public ``record()`` with a fake socket (``socket.create_connection`` patched), so that
hundreds of them take a second or two; a few go through a real scripted TCP server.

Whatever the bytes, the recording must come back (never an exception, never the recorder's own
"recorder error"), say how it ended or why it could not be made, and hold together: pieces
tile the body, times never go backwards, caps are kept, and an error is one line.
"""
from __future__ import annotations

import os
import socket

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conformance.wire.recorder import Exchange, record
from conformance.wire.recording import BODY_KEEP, RAW_KEEP, Recording
from conformance.wire.tolerant import TolerantParser
from tests.scripted import CLOSE, HOLD, RESET, ScriptedServer

# Local runs explore new examples every time; CI (CI=true) replays a fixed set, so that a gate
# never turns red on a fresh draw. A failure found locally is kept in .hypothesis/ and replayed.
DERANDOMIZE = bool(os.environ.get("CI"))
ENDS = {"complete", "closed", "cut-short", "timeout", "deadline", "reset", "abandoned"}

# --- the responses --------------------------------------------------------------------------------

eol = st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"])
valid_status = st.sampled_from([b"HTTP/1.1 200 OK"] * 6 + [
    b"HTTP/1.0 200 OK", b"HTTP/1.1 204 No Content", b"HTTP/1.1 304 Not Modified", b"HTTP/1.1 404 Not Found",
    b"HTTP/1.1 200", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", b"\r\nHTTP/1.1 200 OK"])
bad_status = st.one_of(st.sampled_from([b"HTTP/1.1 2OO OK", b"HTTP/2 200", b"SSH-2.0-x", b"", b"ICY 200 OK",
                                        b"HTTP/1.1 200 OK\x00"]), st.binary(max_size=20))
status_line = st.integers(0, 9).flatmap(lambda k: valid_status if k < 8 else bad_status)
header = st.one_of(
    st.sampled_from([b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked, chunked",
                     b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked, gzip", b"Transfer-Encoding: identity",
                     b"Content-Length: 5", b"Content-Length: 0", b"Content-Length: 10, 11", b"Content-Length: -1",
                     b"Content-Length: \xb2", b"Content-Length: 99999999999999999999", b"Content-Type: text/html",
                     b"Connection: close", b"X-Folded: a\r\n b", b"NoColon", b" leading-space: x", b"X: \x00\xff",
                     b"Trailer: X-T"]),
    st.builds(lambda n: b"X-Big: " + b"v" * n, st.integers(0, 70_000)),
    st.binary(max_size=30))


@st.composite
def chunked_body(draw) -> bytes:
    out = b""
    for _ in range(draw(st.integers(0, 4))):
        data = draw(st.binary(max_size=40))
        size = draw(st.one_of(st.just(b"%x" % len(data)), st.just(b"%X" % len(data)),
                              st.sampled_from([b"zz", b"", b"-1", b"F" * 20, b"1" * 30, b"5 ", b" 5", b"0x5"]),
                              st.builds(lambda n: b"%x" % n, st.integers(0, 100))))
        ext = draw(st.sampled_from([b"", b"", b";a=b", b' ; q="x;y"', b";" + b"e" * 5000]))
        crlf = draw(eol)
        after = draw(st.sampled_from([crlf, crlf, b"", b"XY", b"\r"]))
        out += size + ext + crlf + data + after
    if draw(st.booleans()):
        out += b"0" + draw(eol)
        for _ in range(draw(st.integers(0, 2))):
            out += draw(st.sampled_from([b"X-T: 1", b"bad trailer", b"X-T: " + b"t" * 70_000])) + draw(eol)
        out += draw(eol)
    return out


@st.composite
def response(draw) -> bytes:
    if draw(st.integers(0, 19)) == 0:
        return draw(st.binary(max_size=300))
    end = draw(eol)
    head = draw(status_line) + end + b"".join(h + draw(eol) for h in draw(st.lists(header, max_size=5))) + draw(eol)
    body = draw(st.one_of(chunked_body(), st.binary(max_size=200)))
    wire = head + body + draw(st.sampled_from([b"", b"", b"HTTP/1.1 200 OK\r\n\r\n", b"trailing junk"]))
    if draw(st.booleans()):  # truncated somewhere
        wire = wire[:draw(st.integers(0, len(wire)))]
    return wire


@st.composite
def split(draw, wire: bytes) -> list[bytes]:
    if not wire:
        return []
    how = draw(st.sampled_from(["random", "random", "bytes", "whole"]))
    if how == "whole":
        return [wire]
    if how == "bytes" and len(wire) <= 400:
        return [wire[i:i + 1] for i in range(len(wire))]
    points = sorted(set(draw(st.lists(st.integers(1, max(1, len(wire) - 1)), max_size=12))))
    points = [0, *points, len(wire)]
    return [wire[a:b] for a, b in zip(points, points[1:]) if b > a]


@st.composite
def scenario(draw):
    wire = draw(response())
    return (wire, draw(split(wire)), draw(st.sampled_from(["GET", "GET", "HEAD"])),
            draw(st.sampled_from(["1.1", "1.1", "1.0"])), draw(st.sampled_from(["eof", "eof", "timeout", "reset"])))


# --- the fake socket ------------------------------------------------------------------------------

class FakeSocket:
    """Hands ``record()`` the pieces one per ``recv_into``, then ends as told."""

    def __init__(self, pieces: list[bytes], ending: str):
        self.pieces, self.ending, self.sent = list(pieces), ending, b""

    def setsockopt(self, *a):
        pass

    def settimeout(self, t):
        assert t > 0

    def sendall(self, data):
        self.sent += data

    def recv_into(self, buf):
        if self.pieces:   # as a real recv_into, never more than the buffer holds: the rest comes next
            piece = self.pieces.pop(0)
            if len(piece) > len(buf):
                piece, rest = piece[:len(buf)], piece[len(buf):]
                self.pieces.insert(0, rest)
            buf[:len(piece)] = piece
            return len(piece)
        if self.ending == "timeout":
            raise TimeoutError("timed out")
        if self.ending == "reset":
            raise ConnectionResetError(104, "Connection reset by peer")
        return 0

    def close(self):
        pass


def record_fake(pieces, method, version, ending) -> Recording:
    real = socket.create_connection
    socket.create_connection = lambda *a, **kw: FakeSocket(pieces, ending)
    try:
        return record("http://fuzz.test/x", Exchange("fuzz", method, version), timeout=5.0, deadline=30.0)
    finally:
        socket.create_connection = real


def check(rec: Recording, wire_read: int) -> None:
    assert isinstance(rec, Recording)
    assert not (rec.error or "").startswith("recorder error"), rec.error
    assert rec.end in ENDS or rec.error, (rec.end, rec.error)
    for text in (rec.error, rec.strict_error, *rec.framing_notes):
        assert text is None or "\n" not in text, text
    if rec.head_t is None:
        assert rec.error, "no head and no error"
    else:
        assert rec.status is not None and 100 <= rec.status <= 999
    assert rec.end is None or rec.end_t is not None or rec.end == "abandoned"
    # the wire
    assert rec.raw_bytes <= wire_read and rec.reads_dropped == 0
    assert rec.raw_bytes == sum(r.size for r in rec.reads)
    assert len(rec.raw_kept) <= RAW_KEEP and rec.raw[:len(rec.raw_kept)] == rec.raw
    times = [r.t for r in rec.reads]
    assert times == sorted(times)
    # the body
    off = 0
    for p in rec.pieces:
        assert p.offset == off and p.size > 0 and p.t in times
        off += p.size
    assert off == rec.body_bytes and rec.pieces_dropped == 0
    assert len(rec.body_kept) == min(rec.body_bytes, BODY_KEEP)
    assert rec.after_end_bytes >= 0
    if rec.method == "HEAD" and rec.head_t is not None:
        assert rec.framing == "none" and rec.body_bytes == 0
    # the JSON form holds it all
    assert Recording.from_dict(rec.to_dict()) == rec


def agrees_with_tolerant(rec: Recording, pieces: list[bytes]) -> None:
    """Where h11 read the whole message, the tolerant reader decodes the same body."""
    if rec.parser != "h11" or rec.end not in ("complete", "closed") or rec.head_t is None:
        return
    p = TolerantParser(rec.method)
    for i, piece in enumerate(pieces):
        p.feed(piece, float(i))
    p.close(float(len(pieces)))
    assert (bytes(p.body), p.ended_by, p.status) == (rec.body, rec.end, rec.status)
    assert [q[1:] for q in p.pieces] == [q[1:] for q in rec.pieces], "the same pieces, with the same chunk flags"


@settings(max_examples=200, deadline=None, derandomize=DERANDOMIZE, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario())
def test_record_never_breaks(case):
    wire, pieces, method, version, ending = case
    rec = record_fake(pieces, method, version, ending)
    event(f"{rec.parser} {rec.end}" + (" error" if rec.error else ""))
    check(rec, len(wire))
    assert rec.end is not None, "every exchange that got connected ends somehow"
    agrees_with_tolerant(rec, pieces)


@settings(max_examples=25, deadline=None, derandomize=DERANDOMIZE, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario())
def test_record_never_breaks_on_a_real_socket(case):
    wire, pieces, method, version, ending = case
    end_step = {"eof": CLOSE, "reset": RESET, "timeout": HOLD}[ending]
    with ScriptedServer([*pieces, end_step]) as srv:
        rec = record(srv.url("/x"), Exchange("fuzz", method, version), timeout=0.2, deadline=5.0)
    check(rec, len(wire))
    assert rec.end is not None or rec.error
