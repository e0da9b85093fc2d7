"""``TolerantParser.skim`` (the recorder's fast path while h11 reads happily) leaves the reader
exactly where ``feed`` would, or refuses and changes nothing; and the recorder's mirroring gives
the same recordings as reading everything in full."""
from __future__ import annotations

import copy
import random

import pytest

from conformance.wire.tolerant import TolerantParser

HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def state(p: TolerantParser):
    return (p.state, p.remaining, p.chunk_fresh, p.offset, bytes(p.buf), p.error, list(p.notes), p.ended_by)


def chunked_body(rng: random.Random) -> bytes:
    out = []
    sizes = rng.choice([[rng.randint(1, 40)] * rng.randint(1, 30), [rng.randint(1, 300) for _ in range(rng.randint(1, 30))]])
    for size in sizes:
        line = b"%x" % size
        r = rng.random()
        if r < 0.05:
            line = b"0" + line                       # leading zero: still plain
        elif r < 0.08:
            line += b";name=value"                   # an extension: still plain
        elif r < 0.10:
            line += b" "                              # whitespace: feed() notes it
        elif r < 0.12:
            line = b"%X" % size                        # upper case hex
        end = b"\r\n" if rng.random() > 0.03 else b"\n"   # a bare LF now and then
        out.append(line + end + bytes(rng.randrange(256) for _ in range(size)) + (b"\r\n" if rng.random() > 0.03 else b"\n"))
    out.append(b"0\r\n\r\n")
    return b"".join(out)


def splits(rng: random.Random, data: bytes) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, rng.randint(0, 12))))
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


@pytest.mark.parametrize("seed", range(300))
def test_skim_is_feed_without_pieces(seed):
    rng = random.Random(seed)
    body = chunked_body(rng)
    full, fast = TolerantParser(), TolerantParser()
    full.feed(HEAD, 0.0)
    fast.feed(HEAD, 0.0)
    for i, part in enumerate(splits(rng, body)):
        before = state(fast)
        whole = rng.random() < 0.5
        data = bytearray(part + b"junk") if whole else memoryview(part)
        ok = fast.skim(data, len(part)) if whole else fast.skim(data)
        full.feed(part, float(i))
        if ok:
            assert state(fast) == state(full), (i, part)
        else:
            assert state(fast) == before, "a refusal changes nothing"
            fast = copy.deepcopy(full)          # carry on from the full reader's state


def record_in_memory(reads: list[bytes], direct: bool, mirror: bool = True, read_size: int = 256 * 1024):
    """What the recorder makes of these reads (no socket): its parse state fed read by read as
    ``_read`` feeds it, with or without h11's body reader called straight, with or without the
    shadow mirroring h11 (without: the shadow reads everything in full, as before the fast path)."""
    from conformance.wire import recorder
    from conformance.wire.recorder import Exchange, _ParseState, _request, parse_url, request_headers
    from conformance.wire.recording import Recording
    ep, ex = parse_url("http://x/"), Exchange()
    _, conn = _request(ep, ex, request_headers(ep, ex))
    rec = Recording("get", "http://x/")
    state = _ParseState(rec, conn, "GET")
    if not mirror:
        state.mirrored = True   # never starts mirroring
    saved = recorder.DIRECT_BODY_READER
    recorder.DIRECT_BODY_READER = direct
    try:
        buf = bytearray(read_size)
        for i, data in enumerate(reads):
            buf[:len(data)] = data
            view = memoryview(buf)[:len(data)]
            state.received(view, float(i))
            if rec.end is not None:
                rec.after_end_bytes += len(data)
                continue
            state.feed(view, float(i), buf)
            if rec.end is not None:
                break
        else:
            state.eof(float(len(reads)))
    finally:
        recorder.DIRECT_BODY_READER = saved
        state.finish()
    return rec.to_dict()


def corrupt(rng: random.Random, body: bytes) -> bytes:
    if rng.random() < 0.5:
        return body
    at = rng.randrange(len(body))
    return body[:at] + rng.choice([b"x", b"\r", b"\n", b"zz\r\n", b"", b"0\r\n\r\n"]) + body[at + rng.randint(0, 3):]


@pytest.mark.parametrize("seed", range(300))
def test_fast_paths_record_what_the_full_reading_records(seed):
    rng = random.Random(seed)
    wire = HEAD + corrupt(rng, chunked_body(rng))
    if rng.random() < 0.2:
        wire = wire[:rng.randrange(len(HEAD), len(wire))]   # cut short
    reads = splits(rng, wire)
    full = record_in_memory(reads, direct=False, mirror=False)
    assert record_in_memory(reads, direct=False) == full
    assert record_in_memory(reads, direct=True) == full


def test_fast_paths_on_large_reads():
    # reads larger than h11's 64 KiB slices, chunks of 1 KiB and of 100 KiB, content-length too
    rng = random.Random(1)
    for body in (b"".join(b"400\r\n" + bytes([65 + k % 26]) * 1024 + b"\r\n" for k in range(700)) + b"0\r\n\r\n",
                 b"".join(b"19000\r\n" + bytes([65 + k % 26]) * 0x19000 + b"\r\n" for k in range(12)) + b"0\r\n\r\n"):
        wire = HEAD + body
        reads = []
        at = 0
        while at < len(wire):
            n = rng.choice([1, 7, 1000, 65536, 100_000, 262_144])
            reads.append(wire[at:at + n])
            at += n
        full = record_in_memory(reads, direct=False, mirror=False)
        assert full["end"] == "complete" and full["parser"] == "h11"
        assert record_in_memory(reads, direct=True) == full
    cl = b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + b"y" * 300_000
    reads = [cl[:70_000], cl[70_000:262_144], cl[262_144:]]
    full = record_in_memory(reads, direct=False, mirror=False)
    assert full["end"] == "complete" and [p[1:3] for p in full["pieces"]] == [[0, 69_957], [69_957, 192_144], [262_101, 37_899]]
    assert record_in_memory(reads, direct=True) == full


@pytest.mark.parametrize("at", [3, 5, 8])
def test_h11_rejecting_a_skimmed_read_hands_over_the_full_reading(at, monkeypatch):
    # h11 accepts all plain framing, so make it refuse one read the shadow skimmed: the shadow
    # is put back to before that read and reads it in full, as if it had never skimmed.
    import h11

    body = b"".join(b"%x\r\n" % n + b"k" * n + b"\r\n" for n in (5, 300, 7, 40, 1000, 3)) + b"0\r\n\r\n"
    wire = HEAD + body
    reads = [wire[i:i + 97] for i in range(0, len(wire), 97)]
    real = h11.Connection.receive_data
    calls = {"n": 0}

    def refuse(self, data):
        calls["n"] += 1
        if calls["n"] == at:
            raise h11.RemoteProtocolError("injected")
        return real(self, data)

    monkeypatch.setattr(h11.Connection, "receive_data", refuse)
    got = record_in_memory(reads, direct=True)
    p = TolerantParser()
    for i, part in enumerate(reads):
        p.feed(part, float(i))
    assert (got["parser"], got["strict_error"], got["end"]) == ("tolerant", "injected", "complete")
    assert got["pieces"] == [list(q) for q in p.pieces] and got["body_kept"] == bytes(p.body).decode("latin-1")
