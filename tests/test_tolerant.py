"""The tolerant reader, fed byte streams in pieces: every split point, and one byte at a time.

Each message is built from wire bytes and body data, so the test knows where every body byte
sits on the wire. Whatever the split, the reader must decode the same body and head, end the
same way with the same notes, and time each piece by the read that completed it (a valid body
byte is emitted by the very read that brought it). The reads' times here are their indexes.
"""
from __future__ import annotations

import random

import pytest

from conformance.wire.recording import HEAD_LIMIT, Piece
from conformance.wire.tolerant import SIZE_LINE_LIMIT, TolerantParser, not_http

HEAD_CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"


class Msg:
    """A response on the wire, knowing where its body bytes are."""

    def __init__(self, head: bytes = b""):
        self.wire = bytearray(head)
        self.body = bytearray()
        self.wire_pos: list[int] = []      # wire position of each body byte
        self.chunks: list[tuple[int, int]] = []  # (start, end) body offsets of each chunk

    def raw(self, b: bytes) -> "Msg":
        self.wire += b
        return self

    def data(self, b: bytes) -> "Msg":
        self.wire_pos += range(len(self.wire), len(self.wire) + len(b))
        self.body += b
        self.wire += b
        return self

    def chunk(self, b: bytes, ext: bytes = b"", size: bytes | None = None, crlf: bytes = b"\r\n") -> "Msg":
        self.chunks.append((len(self.body), len(self.body) + len(b)))
        return self.raw((size or b"%x" % len(b)) + ext + crlf).data(b).raw(crlf)


def cut(wire: bytes, points) -> list[bytes]:
    points = [0, *sorted(points), len(wire)]
    return [wire[a:b] for a, b in zip(points, points[1:]) if b > a]


def splits(wire: bytes, extra_random: int = 20):
    """Every split in two, one byte at a time, and some random splits in three to six."""
    yield [wire]
    for k in range(1, len(wire)):
        yield cut(wire, [k])
    yield [wire[i:i + 1] for i in range(len(wire))]
    rnd = random.Random(len(wire))
    for _ in range(extra_random):
        yield cut(wire, rnd.sample(range(1, len(wire)), min(len(wire) - 1, rnd.randint(2, 5))))


def parse(feeds: list[bytes], method: str = "GET", close: bool = False) -> TolerantParser:
    p = TolerantParser(method)
    for i, data in enumerate(feeds):
        p.feed(data, float(i))
    if close:
        p.close(float(len(feeds)))
    return p


def arrivals(feeds: list[bytes]) -> list[int]:
    """For each wire position, the index of the feed that brought it."""
    return [i for i, data in enumerate(feeds) for _ in data]


def check_pieces(p: TolerantParser, msg: Msg, feeds: list[bytes], eager: bool = True,
                 chunked: bool | None = False) -> None:
    """Pieces tile the body; each is timed by the read that completed it; chunk flags match
    (``chunked=None``: the caller checks the flags)."""
    assert bytes(p.body) == bytes(msg.body) and p.offset == len(msg.body)
    when = arrivals(feeds)
    off = 0
    for piece in p.pieces:
        assert piece.offset == off and piece.size > 0
        off += piece.size
        times = [when[msg.wire_pos[k]] for k in range(piece.offset, piece.offset + piece.size)]
        assert piece.t == times[-1] and max(times) == times[-1]
        if eager:
            assert set(times) == {piece.t}, "a body byte was held back past the read that brought it"
    assert off == len(msg.body)
    if chunked:
        starts = {s for s, _ in msg.chunks}
        ends = {e for _, e in msg.chunks}
        for piece in p.pieces:
            assert piece.chunk_start == (piece.offset in starts)
            assert piece.chunk_end == (piece.offset + piece.size in ends)
            assert any(s <= piece.offset and piece.offset + piece.size <= e for s, e in msg.chunks)
    elif chunked is False:
        assert not any(piece.chunk_start or piece.chunk_end for piece in p.pieces)


# --- valid messages -----------------------------------------------------------------------------

def chunked_with_ext_and_trailers() -> Msg:
    return (Msg(HEAD_CHUNKED).chunk(b"hello", b";name=val").chunk(b" world", b' ; q="a;b"')
            .chunk(b"!" * 17).raw(b"0;last\r\nExpires: never\r\nX-T: 1\r\n\r\n"))


def test_chunked_with_extensions_and_trailers_every_split():
    msg = chunked_with_ext_and_trailers()
    wire = bytes(msg.wire) + b"NEXT"  # bytes after the message
    for feeds in splits(wire):
        p = parse(feeds)
        assert (p.status, p.reason, p.http_version, p.framing) == (200, "OK", "1.1", "chunked")
        assert p.headers == [["Content-Type", "text/plain"], ["Transfer-Encoding", "chunked"]]
        assert p.trailers == [["Expires", "never"], ["X-T", "1"]]
        assert (p.ended_by, p.error, p.notes, p.after_end) == ("complete", None, [], 4)
        assert p.end_t == arrivals(feeds)[len(msg.wire) - 1]
        assert p.head_t == arrivals(feeds)[len(HEAD_CHUNKED) - 1]
        check_pieces(p, msg, feeds, chunked=True)
    p = parse([wire])
    assert p.pieces == [Piece(0.0, 0, 5, True, True), Piece(0.0, 5, 6, True, True), Piece(0.0, 11, 17, True, True)]


def test_content_length_every_split():
    msg = Msg(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n").data(b"0123456789")
    for feeds in splits(bytes(msg.wire) + b"extra"):
        p = parse(feeds)
        assert (p.framing, p.ended_by, p.after_end, p.notes) == ("content-length", "complete", 5, [])
        check_pieces(p, msg, feeds)


def test_close_delimited_every_split():
    msg = Msg(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n").data(b"<h1>close me</h1>")
    for feeds in splits(bytes(msg.wire)):
        p = parse(feeds)
        assert (p.framing, p.ended_by) == ("close", None)
        p.close(99.0)
        assert (p.http_version, p.ended_by, p.end_t, p.notes) == ("1.0", "closed", 99.0, [])
        check_pieces(p, msg, feeds)


@pytest.mark.parametrize("method,status", [("HEAD", 200), ("GET", 204), ("GET", 304)])
def test_no_body_responses_every_split(method, status):
    head = b"HTTP/1.1 %d X\r\nContent-Length: 11\r\nTransfer-Encoding: chunked\r\n\r\n" % status
    extra = b"5\r\nhello\r\n0\r\n\r\n"
    for feeds in splits(head + extra):
        p = parse(feeds, method=method)
        assert (p.framing, p.ended_by, p.pieces, p.after_end) == ("none", "complete", [], len(extra))
        assert p.end_t == p.head_t == arrivals(feeds)[len(head) - 1]


def test_interim_responses_are_skipped():
    wire = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    for feeds in splits(wire):
        p = parse(feeds)
        assert (p.status, p.headers, bytes(p.body), p.ended_by) == (200, [["Content-Length", "2"]], b"ok", "complete")
        assert p.notes == ["interim 100 response skipped", "interim 103 response skipped"]


def test_transfer_coding_not_chunked_last_is_close_delimited():
    msg = Msg(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\nContent-Length: 3\r\n\r\n").data(b"\x1f\x8b rest")
    for feeds in splits(bytes(msg.wire)):
        p = parse(feeds, close=True)
        assert (p.framing, p.ended_by) == ("close", "closed")
        check_pieces(p, msg, feeds)


# --- deviations that are read over, with a note ---------------------------------------------------

def test_bare_lf_everywhere():
    msg = (Msg(b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n").chunk(b"abc", crlf=b"\n")
           .chunk(b"defg", crlf=b"\n").raw(b"0\nX: y\n\n"))
    for feeds in splits(bytes(msg.wire)):
        p = parse(feeds)
        assert p.ended_by == "complete" and p.trailers == [["X", "y"]]
        assert p.notes == ["head lines end with a bare LF instead of CRLF",
                           "chunk-size line ends with a bare LF instead of CRLF",
                           "chunk data followed by a bare LF instead of CRLF",
                           "trailer section line ends with a bare LF instead of CRLF"]
        check_pieces(p, msg, feeds, chunked=True)


def test_bare_lf_only_on_the_blank_line():
    p = parse([b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"])
    assert p.ended_by == "complete" and p.notes == ["head lines end with a bare LF instead of CRLF"]


def test_obs_fold_and_malformed_header_lines():
    wire = (b"HTTP/1.1 200 OK\r\nX-Long: one\r\n  two\r\n\tthree\r\nNoColon\r\nSpaced : v\r\n"
            b"Content-Length: 2\r\n\r\nok")
    for feeds in splits(wire):
        p = parse(feeds)
        assert p.headers == [["X-Long", "one two three"], ["Spaced", "v"], ["Content-Length", "2"]]
        assert p.notes == ["obsolete line folding in a header field", "malformed header line b'NoColon'",
                           "malformed header line b'Spaced : v'"]
        assert bytes(p.body) == b"ok" and p.ended_by == "complete"


def test_leading_blank_lines():
    for feeds in splits(b"\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"):
        p = parse(feeds)
        assert (p.status, bytes(p.body), p.ended_by) == (200, b"x", "complete")
        assert p.notes == ["blank lines before the status line"]


def test_chunk_size_whitespace():
    msg = Msg(HEAD_CHUNKED).chunk(b"abc", size=b"3 ").chunk(b"de", size=b" 2").chunk(b"f", size=b"1\t", ext=b";x")
    msg.raw(b"0\r\n\r\n")
    for feeds in splits(bytes(msg.wire)):
        p = parse(feeds)
        assert p.ended_by == "complete"
        # "1\t;x": whitespace before ";" is BWS, allowed with an extension
        assert p.notes == ["whitespace around the chunk size b'3 \\r'", "whitespace around the chunk size b' 2\\r'"]
        check_pieces(p, msg, feeds, chunked=True)


def test_chunk_size_over_64_bits_is_read_on():
    data = b"data that runs to the close"
    wire = HEAD_CHUNKED + b"000" + b"F" * 20 + b"\r\n" + data
    for feeds in splits(wire):
        p = parse(feeds, close=True)
        assert p.notes == ["chunk size over 64 bits b'000FFFFFFFFFFFFFFFFFFFF\\r'",
                           "connection closed before the last-chunk"]
        assert (p.ended_by, bytes(p.body)) == ("cut-short", data)
        assert p.remaining == int("F" * 20, 16) - len(data)
        assert p.pieces[0].chunk_start and not any(q.chunk_end for q in p.pieces)


def test_invalid_content_length_is_close_delimited():
    for value in ("\u00b2", "10, 11", "-1", "0x10", ""):
        head = b"HTTP/1.1 200 OK\r\nContent-Length: " + value.encode("latin-1") + b"\r\n\r\n"
        msg = Msg(head).data(b"body")
        for feeds in splits(bytes(msg.wire), extra_random=0):
            p = parse(feeds, close=True)
            assert (p.framing, p.ended_by) == ("close", "closed"), value
            if value:
                assert p.notes and p.notes[0].startswith("invalid Content-Length"), value
            check_pieces(p, msg, feeds)


def test_repeated_equal_content_length_is_fine():
    p = parse([b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nokNEXT"])
    assert (p.framing, p.ended_by, bytes(p.body), p.after_end, p.notes) == ("content-length", "complete", b"ok", 4, [])


# --- chunked framing that cannot be followed: the rest is close-delimited --------------------------

@pytest.mark.parametrize("bad", [b"zz\r\n", b"1cg\r\n", b"\r\n", b"-5\r\n", b"5 5\r\n"])
def test_invalid_chunk_size_line_gives_up(bad):
    rest = bad + b"then some more bytes"
    wire = HEAD_CHUNKED + b"4\r\ngood\r\n" + rest
    expect = Msg()
    expect.body = bytearray(b"good" + rest)
    good_at, rest_at = len(HEAD_CHUNKED) + 3, len(HEAD_CHUNKED) + 9
    expect.wire_pos = list(range(good_at, good_at + 4)) + list(range(rest_at, len(wire)))
    expect.chunks = [(0, 4)]
    for feeds in splits(wire):
        p = parse(feeds, close=True)
        assert (p.framing, p.ended_by, p.error) == ("chunked", "closed", None)
        assert len(p.notes) == 1
        assert p.notes[0].startswith("invalid chunk-size line b'")
        assert p.notes[0].endswith("; the rest is read as a close-delimited body")
        assert bytes(p.body) == b"good" + rest
        check_pieces(p, expect, feeds, eager=False, chunked=None)
        # the good chunk keeps its flags; what follows carries none
        for q in p.pieces:
            if q.offset < 4:
                assert q.offset + q.size <= 4
                assert (q.chunk_start, q.chunk_end) == (q.offset == 0, q.offset + q.size == 4)
            else:
                assert not q.chunk_start and not q.chunk_end


def test_chunk_size_line_too_long_gives_up():
    wire = HEAD_CHUNKED + b"5;" + b"e" * (SIZE_LINE_LIMIT + 10)
    p = parse([wire])
    assert p.state == "close" and p.notes[0].startswith(f"chunk-size line longer than {SIZE_LINE_LIMIT} bytes")
    assert p.offset == len(wire) - len(HEAD_CHUNKED)


def test_chunk_data_not_followed_by_crlf():
    wire = HEAD_CHUNKED + b"5\r\nhelloXY5\r\nworld\r\n0\r\n\r\n"
    for feeds in splits(wire):
        p = parse(feeds, close=True)
        assert p.notes[0].startswith("chunk data not followed by CRLF (got b'X")
        assert bytes(p.body) == b"helloXY5\r\nworld\r\n0\r\n\r\n" and p.ended_by == "closed"
        assert p.pieces[0].chunk_start and not p.pieces[-1].chunk_end


def test_lone_cr_after_chunk_data_waits():
    p = parse([HEAD_CHUNKED + b"2\r\nab\r"])
    assert p.state == "chunk-crlf" and p.notes == []
    p.feed(b"\n0\r\n\r\n", 1.0)
    assert p.ended_by == "complete" and p.notes == []


# --- how it ends --------------------------------------------------------------------------------

def test_missing_last_chunk_on_close():
    msg = Msg(HEAD_CHUNKED).chunk(b"abc").chunk(b"def")
    for k in range(len(HEAD_CHUNKED), len(msg.wire) + 1):  # closed anywhere in the body
        p = parse([bytes(msg.wire[:k])], close=True)
        assert (p.ended_by, p.end_t, p.notes) == ("cut-short", 1.0, ["connection closed before the last-chunk"])


def test_content_length_cut_short():
    p = parse([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], close=True)
    assert (p.ended_by, p.offset, p.notes) == ("cut-short", 3, ["connection closed before the Content-Length was reached"])


def test_close_before_head():
    assert parse([], close=True).error == "connection closed before a response head"
    assert parse([b"HTTP/1.1 200 OK\r\n"], close=True).error == "connection closed before a complete response head"


def test_feed_after_the_end_counts_after_end():
    p = parse([b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"])
    p.feed(b"more", 1.0)
    p.close(2.0)
    assert (p.ended_by, p.after_end, p.end_t) == ("complete", 4, 0.0)


# --- what is not HTTP, and what is too big ------------------------------------------------------

@pytest.mark.parametrize("garbage", [b"SSH-2.0-OpenSSH_9.6\r\n", b"\x16\x03\x01\x02\x00\x01", b"<html>hello</html>\r\n\r\n",
                                     b"http/1.1 200 OK\r\n\r\n", b"HTTQ/1.1 200 OK\r\n\r\n"])
def test_garbage_instead_of_a_status_line(garbage):
    for feeds in splits(garbage):
        p = parse(feeds)
        assert p.error.startswith("not an HTTP/1.x response: it starts b") and p.status is None
    # refused at the first byte that cannot start "HTTP/": no waiting for a head
    first_bad = next(i for i in range(len(garbage)) if not_http(garbage[:i + 1]))
    assert parse([garbage[:first_bad + 1]]).error


@pytest.mark.parametrize("line", [b"HTTP/1.1 2OO OK", b"HTTP/11 200 OK", b"HTTP/1.1 200OK", b"HTTP/1.1  200 OK"])
def test_bad_status_line(line):
    for feeds in splits(line + b"\r\nContent-Length: 0\r\n\r\n", extra_random=0):
        assert parse(feeds).error == f"not an HTTP/1.x status line: {line!r}"


def test_oversized_head():
    head = b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"v" * HEAD_LIMIT
    p = parse([head[i:i + 1000] for i in range(0, len(head), 1000)])
    assert p.error == f"response head larger than {HEAD_LIMIT} bytes"
    p.feed(b"\r\n\r\n", 99.0)  # nothing more is read
    assert p.status is None and len(p.buf) <= HEAD_LIMIT + 1000
    # a complete head that is too large, in one read
    assert parse([head + b"\r\n\r\n"]).error == f"response head larger than {HEAD_LIMIT} bytes"


def test_head_trickled_byte_by_byte_is_linear():
    # tens of thousands of one-byte reads of a head just under the limit: must stay fast
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%05d: v\r\n" % i for i in range(5000)) + b"Content-Length: 0\r\n\r\n"
    assert len(head) < HEAD_LIMIT
    p = TolerantParser()
    for i in range(len(head)):
        p.feed(head[i:i + 1], float(i))
    assert p.ended_by == "complete" and len(p.headers) == 5001


def test_oversized_trailer_section():
    wire = HEAD_CHUNKED + b"1\r\na\r\n0\r\n" + b"X-T: v\r\n" * (HEAD_LIMIT // 8 + 10)
    p = parse([wire[i:i + 4096] for i in range(0, len(wire), 4096)])
    assert p.error == f"trailer section larger than {HEAD_LIMIT} bytes" and p.ended_by is None
    assert len(p.trailers) <= HEAD_LIMIT // 8
