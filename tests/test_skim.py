"""``TolerantParser.skim`` (the recorder's fast path while h11 reads happily) leaves the reader
exactly where ``feed`` would, or refuses and changes nothing; and the recorder's mirroring gives
the same recordings as reading everything in full."""
from __future__ import annotations

import copy
import random

import pytest

from conformance.tolerant import TolerantParser

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
