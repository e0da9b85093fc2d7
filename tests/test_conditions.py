"""Delivery under real conditions: the parts behind the condition checks, on their own.

Synthetic timelines (as in ``test_timing.py``) for the SSE and NDJSON profiles and for gzip
decoded read by read; the large-body reader's chunk counter at every split point; the holder
page's URL rule; two exchanges on one connection against a small scripted server; and, live,
the corrected app's SSE, NDJSON and large-file endpoints. Every check's verdicts on the
built-in targets and controls are in ``verdicts.py``.
"""
from __future__ import annotations

import gzip
import json
import random
import socket
import threading
import zlib

import h11
import pytest

from conformance.checks.catalogue import CHECKS, load_all
from conformance.scenarios.compressed import Compressed
from conformance.scenarios.conditions import (ChunkCounter, Sequence, Timeline, decoded, download, piece_times,
                                    same_origin_relative, stream_target)
from conformance.wire.codings import decode
from conformance.wire.recorder import Exchange, record_sequence
from conformance.wire.recording import Piece, Recording
from conformance.analysis.target import Target
from conformance.analysis.timing import MIB, BodyMargins, Margins, analyse
from conformance.analysis.units import ndjson_line_ends, sse_event_ends
from conformance.targets import launcher

load_all()
DELIVERY = ("delivery.first-byte", "delivery.progressive", "delivery.cadence")


def recording(arrivals: list[tuple[float, bytes]], rtt: float = 0.0005, **kw) -> Recording:
    rec = Recording("get", "http://test/N", connect_s=rtt, head_t=arrivals[0][0] if arrivals else 0.0,
                    status=200, http_version="1.1", framing="chunked", end="complete", **kw)
    offset, body = 0, b""
    for t, data in arrivals:
        rec.pieces.append(Piece(t, offset, len(data), True, True))
        offset += len(data)
        body += data
    rec.body_bytes, rec.body_kept = offset, body.decode("latin-1")
    rec.end_t = arrivals[-1][0] if arrivals else 0.0
    return rec


def sse_events(count: int) -> list[bytes]:
    events = [b"event: prepare\ndata: Prepare for Launch!\n\n"]
    events += [b"data: Liftoff in %d...\r\n\r\n" % i for i in range(count, 0, -1)]
    return events + [b": a comment, not an event\n\n", b"event: liftoff\rdata: Lift off\r\r"]


def ndjson_lines(count: int) -> list[bytes]:
    return [json.dumps({"seq": k}).encode() + b"\n" for k in range(count + 2)]


def timeline(pieces: list[bytes], interval: float, *, hold=None, jitter=0.0, seed=0) -> list[tuple[float, bytes]]:
    """One piece per interval (the comment rides with the event before it), as received."""
    rng = random.Random(seed)
    out = []
    k = 0
    for piece in pieces:
        at = k * interval
        if not piece.startswith(b":"):
            k += 1
        t = (hold(at) if hold else at) + 0.0005 + rng.uniform(0, jitter * interval)
        out.append((t, piece))
    return sorted(out, key=lambda a: a[0])


def gzip_verdict(rec, target, strict=False, identity=None):
    """delivery.compressed on a recording of the browser-style GET alone (the scenario also holds
    the HEAD after it, and the identity GET it is compared with)."""
    return CHECKS["delivery.compressed"].judge(Compressed([rec], identity), target, strict)


def judge(rec, target) -> dict[str, str]:
    return {cid: CHECKS[cid].judge(rec, target).verdict for cid in DELIVERY}


STREAMING = dict.fromkeys(DELIVERY, "pass")


# --- SSE and NDJSON ------------------------------------------------------------------------------

def test_sse_events_end_at_blank_lines_whatever_the_line_ends():
    body = b"\xef\xbb\xbfdata: a\n\n: comment\n\nretry: 10\n\nid: 1\r\ndata: b\r\ndata: c\r\n\r\nevent: x\rdata: d\r\r"
    ends = sse_event_ends(body)
    assert [body[e:e + 1] for e in ends] == [b"\n", b"\n", b"\r"]
    assert ends[0] == body.index(b"a\n\n") + 2
    assert ends[-1] == len(body) - 1
    assert sse_event_ends(b"data: unfinished\n") == []   # no blank line yet: not dispatched


def test_ndjson_records_are_non_blank_lines():
    assert ndjson_line_ends(b'{"a":1}\n\n{"b":2}\r\n{"c":3}') == [7, 17]
    assert ndjson_line_ends(b'{"a":1}\n\n{"b":2}\r\n{"c":3}', ended=True) == [7, 17, 24]


@pytest.mark.parametrize("profile,pieces", [("sse", sse_events(6)), ("ndjson", ndjson_lines(6))])
@pytest.mark.parametrize("interval", [0.02, 0.1, 1.0])
@pytest.mark.parametrize("seed", range(5))
def test_record_profiles_pass_streams_with_jitter(profile, pieces, interval, seed):
    rec = recording(timeline(pieces, interval, jitter=0.4, seed=seed))
    target = Target("t", f"http://test/{profile}/6", profile, interval)
    d = analyse(rec, profile, interval, 6)
    assert d.expected_groups == 8 and all(t is not None for t in d.group_times), d.notes
    assert judge(rec, target) == STREAMING


@pytest.mark.parametrize("profile,pieces", [("sse", sse_events(6)), ("ndjson", ndjson_lines(6))])
@pytest.mark.parametrize("hold,want", [
    (lambda at: 0.7, {"delivery.first-byte": "fail", "delivery.progressive": "fail"}),          # held to the end
    (lambda at: 0.35 if at < 0.35 else 0.7, {"delivery.first-byte": "fail", "delivery.progressive": "fail"}),
    (lambda at: at if at < 0.35 else 0.7, {"delivery.progressive": "fail"}),                    # streamed, then held
])
def test_record_profiles_fail_held_bodies(profile, pieces, hold, want):
    interval = 0.1
    rec = recording(timeline(pieces, interval, hold=hold))
    got = judge(rec, Target("t", f"http://test/{profile}/6", profile, interval))
    assert {k: v for k, v in got.items() if k in want} == want, got


def test_record_profiles_without_a_count_take_expect_bursts_or_what_arrived():
    pieces = ndjson_lines(3)   # 5 lines
    rec = recording(timeline(pieces, 0.1))
    assert analyse(rec, "ndjson", 0.1).expected_groups == 5
    d = analyse(rec, "ndjson", 0.1, expect_bursts=8)
    assert d.expected_groups == 8 and d.group_times.count(None) == 3
    assert judge(rec, Target("t", "http://test/stream", "ndjson", 0.1)) == STREAMING
    held = recording([(0.5, b"".join(pieces))])
    assert judge(held, Target("t", "http://test/stream", "ndjson", 0.1, expect_bursts=5))["delivery.progressive"] == "fail"


def test_countdown_and_bytes_profiles_are_unchanged_by_the_record_profiles():
    rec = recording([(0.001, b"<h2>Prepare for Launch!</h2><ul>"), (0.1, b"<li>Liftoff in 1...</li></ul>"),
                     (0.2, b"<h1>Lift off</h1>")])
    d = analyse(rec, "countdown", 0.1, 1)
    assert d.expected_groups == 3 and len(d.group_times) == 3
    assert analyse(rec, "bytes", 0.1).group_times == []


# --- gzip, decoded read by read ------------------------------------------------------------------

def gzip_timeline(pieces: list[bytes], interval: float, flush: bool) -> Recording:
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    out = []
    for k, piece in enumerate(pieces):
        data = z.compress(piece) + (z.flush(zlib.Z_SYNC_FLUSH) if flush else b"")
        if data:
            out.append((k * interval + 0.0005, data))
    out.append((len(pieces) * interval, z.flush()))
    return recording(out, headers=[["Content-Encoding", "gzip"]])


COUNTDOWN = [b"<h2>Prepare for Launch!</h2><ul>"] + [b"<li>Liftoff in %d...</li>" % i for i in range(6, 0, -1)] + \
    [b"</ul><h1>Lift off</h1>"]


def test_gzip_that_flushes_is_judged_on_its_decoded_content():
    rec = gzip_timeline(COUNTDOWN, 0.1, flush=True)
    plain, notes = decoded(rec)
    assert plain.body == b"".join(COUNTDOWN) and not notes
    assert [p.t for p in plain.pieces] == [p.t for p in rec.pieces if p.t < 0.75]
    target = Target("t", "http://test/6", "countdown", 0.1)
    assert gzip_verdict(rec, target).verdict == "pass"


def test_gzip_that_buffers_fails_though_its_encoded_bytes_trickle():
    rec = gzip_timeline(COUNTDOWN * 200, 0.1 / 200, flush=False)   # zlib lets out a block now and then
    target = Target("t", "http://test/6", "countdown", 0.1)
    finding = gzip_verdict(gzip_timeline(COUNTDOWN, 0.1, flush=False), target, strict=True)
    assert finding.verdict == "fail" and "gzip" in finding.observed
    assert decoded(rec)[0].body_bytes == len(b"".join(COUNTDOWN * 200))


def test_gzip_members_and_corruption():
    two = gzip.compress(b"<h2>Prepare for Launch!</h2>") + gzip.compress(b"<ul><li>Liftoff in 1...</li>")
    rec = recording([(0.0, two[:30]), (0.1, two[30:])], headers=[["Content-Encoding", "gzip"]])
    plain, notes = decoded(rec)
    assert plain.body == b"<h2>Prepare for Launch!</h2><ul><li>Liftoff in 1...</li>" and not notes
    bad = recording([(0.0, two[:20]), (0.1, b"\x00" * 40)], headers=[["Content-Encoding", "gzip"]])
    d = decode(bad)
    assert d.fault == "corrupt" and 20 <= d.stopped_at < 60, d.notes   # the first byte refused, not byte 0
    assert f"cannot be decoded from encoded byte {d.stopped_at}" in d.notes[0]


def test_gzip_judges_an_uncompressed_answer_on_its_plain_body_and_skips_other_codings():
    target = Target("t", "http://test/6", "countdown", 0.1)
    plain = recording([(k * 0.1, p) for k, p in enumerate(COUNTDOWN)])
    f = gzip_verdict(plain, target)
    assert f.verdict == "pass" and "did not compress" in f.observed
    other = recording([(0.0, b"\x1f\x9d\x90")], headers=[["Content-Encoding", "compress"]])
    assert gzip_verdict(other, target).verdict == "skip"


@pytest.mark.parametrize("coding", ["br", "zstd", "deflate", "raw-deflate"])
def test_every_browser_coding_is_decoded_read_by_read(coding):
    """Each coding a browser asks for is undone read by read: flushed output streams, and the
    same content compressed whole arrives at the end."""
    import brotli
    import zstandard
    target = Target("t", "http://test/6", "countdown", 0.1)

    def flushed():
        """(per write: compress and flush it; at the end: finish the coded stream)"""
        if coding == "br":
            c = brotli.Compressor()
            return (lambda p: c.process(p) + c.flush()), c.finish
        if coding == "zstd":
            c = zstandard.ZstdCompressor().compressobj()
            return (lambda p: c.compress(p) + c.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)), c.flush
        c = zlib.compressobj(6, zlib.DEFLATED, -15 if coding == "raw-deflate" else 15)
        return (lambda p: c.compress(p) + c.flush(zlib.Z_SYNC_FLUSH)), c.flush
    enc, end = flushed()
    header = [["Content-Encoding", "deflate" if coding == "raw-deflate" else coding]]
    writes = [(k * 0.1, enc(p)) for k, p in enumerate(COUNTDOWN)]
    rec = recording(writes + [(writes[-1][0], end())], headers=header)
    plain, notes = decoded(rec)
    assert plain.body == b"".join(COUNTDOWN) and not notes
    assert [p.t for p in plain.pieces] == [t for t, data in writes if data]
    assert gzip_verdict(rec, target).verdict == "pass"
    # cut before the coded stream's end (the finishing bytes never sent): content lost, a failure
    assert "cut at encoded byte" in gzip_verdict(recording(writes, headers=header), target).observed
    enc, end = flushed()
    whole = enc(b"".join(COUNTDOWN)) + end()
    held = recording([(0.75, whole)], headers=header)
    f = gzip_verdict(held, target, identity=recording([(k * 0.1, p) for k, p in enumerate(COUNTDOWN)]))
    assert f.verdict == "fail" and "held only under" in f.observed.lower()


# --- the large-body reader -----------------------------------------------------------------------

def chunked(blocks: list[bytes], trailer: bytes = b"") -> bytes:
    return b"".join(b"%x;ext=1\r\n%s\r\n" % (len(b), b) for b in blocks) + b"0\r\n" + trailer + b"\r\n"


def test_chunk_counter_counts_data_at_every_split_point():
    blocks = [b"a" * 5, b"b" * 17, b"c" * 300]
    wire = chunked(blocks, b"X-Sum: 1\r\n") + b"EXTRA"
    for split in range(len(wire)):
        c = ChunkCounter()
        used = c.feed(memoryview(wire[:split]))
        used += c.feed(memoryview(wire[split:]))
        assert c.done and not c.error and c.data == 322, split
        assert wire[used:] == b"EXTRA"


@pytest.mark.parametrize("wire,fault", [(b"5\r\nhello\r\nzz\r\n", "chunk-size"), (b"5\r\nhelloX\r\n0\r\n\r\n", "CRLF"),
                                        (b"f" * 5000, "longer than")])
def test_chunk_counter_stops_at_a_fault(wire, fault):
    c = ChunkCounter()
    c.feed(memoryview(wire))
    assert c.error and fault in c.error


def test_timeline_stays_compact():
    tl = Timeline(bucket=0.001, cap=100)
    for i in range(100_000):
        tl.add(i * 0.0001, i * 10, 10, 12)
    assert len(tl.pieces) <= 100 and len(tl.reads) <= 100
    assert sum(p[2] for p in tl.pieces) == 1_000_000 and sum(r[1] for r in tl.reads) == 1_200_000
    assert [p[1] for p in tl.pieces] == sorted(p[1] for p in tl.pieces)


class LocalServer:
    """Answers each request on a connection with the next of ``responses`` (bytes, or a callable
    given the socket); None closes the connection without a word."""

    def __init__(self, responses):
        self.responses = list(responses)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.listener.close()
        self.thread.join(10)

    def run(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(10)
            buf = b""
            for response in self.responses:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                self.requests.append(head)
                if response is None:
                    return
                if callable(response):
                    response(conn)
                else:
                    conn.sendall(response)


def test_download_counts_a_chunked_body_without_keeping_it():
    block = b"x" * 65536

    def answer(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(256):   # 16 MiB
            conn.sendall(b"10000\r\n" + block + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    with LocalServer([answer]) as server:
        dl = download(f"http://127.0.0.1:{server.port}/big", Exchange("large"), timeout=5, deadline=30)
    assert dl.error is None and dl.primary.end == "complete" and dl.bytes == 16 * MIB
    assert dl.primary.framing == "chunked" and dl.first_byte_s is not None
    assert len(dl.primary.pieces) <= 4000 and dl.primary.body_kept == ""
    assert dl.client_peak - dl.client_base < 8 * MIB


def test_download_says_short_when_the_server_closes_early():
    def answer(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        conn.shutdown(socket.SHUT_WR)

    with LocalServer([answer]) as server:
        dl = download(f"http://127.0.0.1:{server.port}/big", Exchange("large"), timeout=5, deadline=30)
    assert dl.primary.end == "cut-short" and dl.bytes == 10 and dl.expected == 1000
    f = CHECKS["delivery.large-body"].judge(dl, Target("t", "http://x/", "bytes"))
    assert f.verdict == "fail" and "short" in f.observed


def test_body_margins():
    m = BodyMargins(rtt=0.01)
    assert m.first_byte_limit(0.2) == pytest.approx(0.51)
    assert m.first_byte_limit(10) == pytest.approx(5.01)
    assert m.memory_limit(64 * MIB) == 32 * MIB and m.memory_limit(1024 * MIB) == 256 * MIB
    assert not m.memory_telling(32 * MIB) and m.memory_telling(64 * MIB)
    assert Margins(1.0).disconnect_watch() == pytest.approx(3.6) and Margins(1.0).disconnect_writes == 2


# --- two exchanges on one connection -------------------------------------------------------------

STREAMED = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"


def test_record_sequence_sends_the_second_request_on_the_same_connection():
    with LocalServer([STREAMED, b"HTTP/1.1 204 No Content\r\n\r\n"]) as server:
        recs = record_sequence(f"http://127.0.0.1:{server.port}/5", [Exchange("a"), Exchange("b", method="HEAD")],
                               timeout=5, deadline=10)
    assert [r.end for r in recs] == ["complete", "complete"] and [r.status for r in recs] == [200, 204]
    assert len(server.requests) == 2 and server.requests[1].startswith(b"HEAD /5 HTTP/1.1")
    assert recs[1].connect_s == recs[0].connect_s


def test_record_sequence_stops_when_the_server_says_close():
    closing = STREAMED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
    with LocalServer([closing]) as server:
        recs = record_sequence(f"http://127.0.0.1:{server.port}/5", [Exchange("a"), Exchange("b")], timeout=5, deadline=10)
    assert recs[1].error == "not sent: the server said Connection: close"
    f = CHECKS["framing.persistent-reuse"].judge(Sequence("get-gzip", recs), Target("t", "http://x/5"))
    assert f.verdict == "skip" and "Connection: close" in f.observed


def test_record_sequence_sees_a_silent_close():
    with LocalServer([STREAMED, None]) as server:
        recs = record_sequence(f"http://127.0.0.1:{server.port}/5", [Exchange("a"), Exchange("b")], timeout=5, deadline=10)
    f = CHECKS["framing.persistent-reuse"].judge(Sequence("get-gzip", recs), Target("t", "http://x/5"), strict=True)
    assert recs[1].error and f.verdict == "fail"


# --- the holder page and the server's log ----------------------------------------------------------

@pytest.mark.parametrize("src,want", [
    ("/10", "http://h:1/10"), ("9", "http://h:1/dir/9"), ("/a?b=1&amp;c=2", "http://h:1/a?b=1&c=2"),
    ("http://h:1/10", None), ("//h:1/10", None), ("https://evil/", None), ("javascript:alert(1)", None),
    ("data:text/html,x", None), ("#top", None), ("", None), ("\\\\evil\\x", None),
])
def test_only_same_origin_relative_iframes_are_followed(src, want):
    assert same_origin_relative("http://h:1/dir/page", src) == want


def test_piece_log_lines():
    log = "127.0.0.1 - GET /5\npiece 10.5 12\npiece 11.25 4\nnoise piece 12 1\npiece 9 3\n"
    assert piece_times(log, 10.0) == [10.5, 11.25]


def test_iframe_streams_are_judged_on_their_own_countdown():
    t = Target("webpy", "http://h:1/5", "countdown", 0.1, count=6)
    frame = stream_target(t, "http://h:1/10")
    assert frame.countdown_length == 10 and t.countdown_length == 6


# --- live: the corrected app's endpoints ---------------------------------------------------------

# 100 ms per item: at 50 ms, with one core burnt, a ~150 ms stall merged four of the holder's
# iframe writes into one burst (1 flip in the 20-run stress loop); see docs/guide.md, "Stability".
INTERVAL = 0.1


@pytest.fixture(scope="module")
def webpy():
    server = launcher.start("webpy", ["{python}", "{targets}/webpy_app.py", "{address}"], INTERVAL)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("profile,path,ctype", [("sse", "/sse/6", "text/event-stream"),
                                               ("ndjson", "/ndjson/6", "application/x-ndjson")])
def test_webpy_record_endpoints_stream_on_the_countdown_schedule(webpy, profile, path, ctype):
    from conformance.wire.recorder import record
    target = Target(profile, webpy.base_url + path, profile, INTERVAL)
    rec = record(target.url, timeout=5, deadline=20)
    assert rec.header_values("content-type")[0].startswith(ctype)
    d = target.delivery(rec)
    assert d.expected_groups == 8 and None not in d.group_times, d.notes
    assert {cid: CHECKS[cid].judge(rec, target).verdict for cid in DELIVERY} == STREAMING


def test_webpy_large_file_streams_in_blocks(webpy):
    size = 48 * MIB + 123
    dl = download(f"{webpy.base_url}/large?size={size}", Exchange("large"), timeout=5, deadline=60,
                  server_pid=webpy.process.pid, requested=size)
    assert dl.primary.end == "complete" and dl.bytes == size == dl.expected
    assert dl.server_peak is not None and dl.server_peak - dl.server_base < 16 * MIB
    assert CHECKS["delivery.large-body"].judge(dl, Target("webpy", webpy.base_url + "/5")).verdict == "pass"
    head = h11.Connection(h11.CLIENT)  # the app also answers HEAD for the file without a body
    with socket.create_connection((webpy.host, webpy.port), timeout=5) as s:
        s.sendall(b"HEAD /large?size=10 HTTP/1.1\r\nHost: x\r\n\r\n")
        head.send(h11.Request(method="HEAD", target="/", headers=[("Host", "x")]))
        head.receive_data(s.recv(65536))
        event = head.next_event()
    assert event.status_code == 200 and dict(event.headers)[b"content-length"] == b"10"


def test_the_holder_page_is_replayed_as_a_browser_does(webpy):
    """The corrected app's holder names /10, /9, /8, /7 three intervals apart: each is opened the
    moment it is named, while the holder still streams, and each is a whole countdown."""
    from conformance.scenarios.base import SCENARIOS, Context
    target = Target("webpy", webpy.base_url + "/3", "countdown", INTERVAL, builtin="webpy", concurrent_streams=2)
    result = SCENARIOS["concurrent"].run(Context(target, target.url, timeout=5, deadline=30, server=webpy))
    frames = [s for s in result.streams if s.kind == "iframe"]
    assert [s.url for s in frames] == [webpy.base_url + f"/{n}" for n in (10, 9, 8, 7)]
    assert sum(s.kind == "stream" for s in result.streams) == 2
    named = [s.named_at for s in frames]
    assert all(b - a > 2 * INTERVAL for a, b in zip(named, named[1:])), named   # 3 intervals apart
    holder_end = result.holder_started + result.holder.end_t
    assert all(s.started < holder_end for s in frames)                    # opened while it streamed
    assert all(s.rec.end == "complete" and b"Lift off" in s.rec.body for s in frames)
    f = CHECKS["delivery.concurrent"].judge(result, target)
    assert f.verdict == "pass" and f.metrics["iframes"] == 4, f.observed


# --- delivery.concurrent: served one after another, or opened late -------------------------------

def _stream(label: str, started: float, first: float, end: float, kind: str = "stream"):
    """A stream of 8 SSE events 0.3 s apart from ``first`` (s after its request), ended at ``end``."""
    from conformance.scenarios.conditions import Stream
    events = [(first + 0.3 * k, b"data: %d\n\n" % k) for k in range(8)]
    rec = recording(events, headers=[["Content-Type", "text/event-stream"]])
    rec.end_t = end
    return Stream(label, "http://test/", kind, started, rec=rec)


def test_a_stream_that_waited_for_another_to_end_fails_without_a_schedule():
    """Schedule-free: the second stream gets nothing for 2.4 s after its request, until the first
    ends: served one after another (a uvicorn app that blocks its event loop)."""
    from conformance.scenarios.conditions import Concurrent
    target = Target("t", "http://test/", "sse", None)
    first = _stream("stream 1", 100.0, 0.0, 2.4)
    second = _stream("stream 2", 100.0, 2.4, 4.8)
    f = CHECKS["delivery.concurrent"].judge(Concurrent("concurrent", [first, second]), target)
    assert f.verdict == "fail" and "one after another" in f.observed, f.observed


def test_a_stream_opened_late_is_not_one_that_waited():
    """An iframe the holder page names at 6 s, answered at once, is not "served after" the streams
    that happened to end then (the main job's seed: iframe /8 opened as the five /5 streams end)."""
    from conformance.scenarios.conditions import Concurrent
    target = Target("t", "http://test/", "sse", None)
    first = _stream("stream 1", 100.0, 0.0, 2.4)
    late = _stream("iframe /8", 102.4, 0.002, 2.4, kind="stream")
    f = CHECKS["delivery.concurrent"].judge(Concurrent("concurrent", [first, late]), target)
    assert f.verdict == "pass", f.observed
