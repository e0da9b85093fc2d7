"""A recording of one HTTP exchange: plain data that many checks read and reports show.

Record once, judge many: the recorder fills a ``Recording``; checks only read it. Times are
seconds on a monotonic clock relative to the moment the request's last byte was handed to the
kernel (t = 0), so the connect time is negative. Bytes are kept as latin-1 text so that JSON
round-trips them exactly; how much is kept is capped (see the ``*_KEEP`` constants).
"""
from __future__ import annotations

import json
from array import array
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

RAW_KEEP = 8 * 1024 * 1024    # wire bytes kept for replay and the wire log
BODY_KEEP = 1024 * 1024       # decoded body bytes kept for content checks (countdown markers)
HEAD_LIMIT = 64 * 1024        # a response head (or trailer section) larger than this is rejected
# A body that never ends (or a very fast one) must not grow a recording without bound: only the
# first READS_KEEP reads and PIECES_KEEP pieces are kept (about 10 MB each at most); later ones
# are counted in ``reads_dropped`` / ``pieces_dropped`` while raw_bytes and body_bytes go on
# counting. The recording's deadline bounds the time.
READS_KEEP = 100_000
PIECES_KEEP = 100_000
REDACTED = "<redacted>"
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie"}


class Read(NamedTuple):
    """One ``recv`` that returned data: when, and how many bytes."""
    t: float
    size: int


class Piece(NamedTuple):
    """A run of decoded body bytes that arrived in one read (h11's ``Data`` event)."""
    t: float
    offset: int          # position of the first byte in the decoded body
    size: int
    chunk_start: bool    # the piece starts a chunk (chunked framing only)
    chunk_end: bool      # the piece ends a chunk


class _Log:
    """A list of tuples kept as columns (``array``): a few bytes per entry instead of a Python
    object per field. It reads like the list it stands for: ``len``, iteration, indexing and
    slicing give the tuples, ``append`` takes one, and it compares equal to a list of the same
    tuples. ``to_dict()`` writes it as that list."""
    __slots__ = ()

    def __len__(self) -> int:
        return len(self._cols[0])

    def __bool__(self) -> bool:
        return len(self._cols[0]) > 0

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return self._row(*(c[i] for c in self._cols))

    def __iter__(self):
        return map(self._row, *self._cols)

    def __eq__(self, other):
        if isinstance(other, (_Log, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self)!r})"

    def __delitem__(self, i) -> None:
        for c in self._cols:
            del c[i]

    def append(self, row) -> None:
        self.add(*row)

    def extend(self, rows) -> None:
        for row in rows:
            self.add(*row)

    def clear(self) -> None:
        for c in self._cols:
            del c[:]

    def truncate(self, n: int) -> None:
        """Keep the first ``n`` entries."""
        for c in self._cols:
            del c[n:]

    def copy(self):
        new = type(self)()
        for mine, theirs in zip(new._cols, self._cols):
            mine.extend(theirs)
        return new

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()


class ReadLog(_Log):
    """``Read`` tuples, kept as two arrays (times, sizes)."""
    __slots__ = ("t", "size", "_cols")
    _row = Read

    def __init__(self, rows=()):
        self.t, self.size = array("d"), array("q")
        self._cols = (self.t, self.size)
        self.extend(rows)

    def add(self, t: float, size: int) -> None:
        self.t.append(t)
        self.size.append(size)


def _piece(t, offset, size, flags) -> Piece:
    return Piece(t, offset, size, bool(flags & 1), bool(flags & 2))


class PieceLog(_Log):
    """``Piece`` tuples, kept as arrays (times, offsets, sizes, and the chunk flags as bits)."""
    __slots__ = ("t", "offset", "size", "flags", "_cols")
    _row = staticmethod(_piece)

    def __init__(self, rows=()):
        self.t, self.offset, self.size, self.flags = array("d"), array("q"), array("q"), array("B")
        self._cols = (self.t, self.offset, self.size, self.flags)
        self.extend(rows)

    def add(self, t: float, offset: int, size: int, chunk_start: bool = False, chunk_end: bool = False) -> None:
        self.t.append(t)
        self.offset.append(offset)
        self.size.append(size)
        self.flags.append((1 if chunk_start else 0) | (2 if chunk_end else 0))

    def grow_last(self, size: int, chunk_end: bool) -> None:
        """The last piece goes on for ``size`` bytes more (the same read, the same chunk)."""
        self.size[-1] += size
        if chunk_end:
            self.flags[-1] |= 2


@dataclass
class Recording:
    scenario: str                     # what was asked: "get", "get-http10", "head", …
    url: str
    method: str = "GET"
    request_version: str = "1.1"
    request_headers: list[list[str]] = field(default_factory=list)  # in order, secrets redacted
    connect_s: float | None = None    # TCP handshake time: one round trip, the latency estimate
    tls: dict | None = None           # version, cipher, alpn when https
    error: str | None = None          # the exchange could not be recorded (refused, DNS, TLS, …)
    # the response head
    head_t: float | None = None
    http_version: str | None = None
    status: int | None = None
    reason: str = ""
    headers: list[list[str]] = field(default_factory=list)  # in order, duplicates kept
    # the body
    framing: str | None = None        # "chunked", "content-length", "close" or "none"
    pieces: list[Piece] = field(default_factory=PieceLog)   # a list, or a PieceLog that reads as one
    trailers: list[list[str]] = field(default_factory=list)
    body_bytes: int = 0
    body_kept: str = ""               # the first BODY_KEEP bytes, latin-1
    # the wire
    reads: list[Read] = field(default_factory=ReadLog)      # a list, or a ReadLog that reads as one
    raw_bytes: int = 0
    raw_kept: str = ""                # the first RAW_KEEP bytes, latin-1
    # how parsing went
    parser: str = "h11"               # "h11", or "tolerant" after h11 rejected the message
    strict_error: str | None = None   # h11's complaint, verbatim
    framing_notes: list[str] = field(default_factory=list)  # violations the tolerant parser saw
    # complete | closed | cut-short | timeout | deadline | reset, or abandoned: the recorder
    # stopped reading because the bytes cannot be read as HTTP any further (see error or
    # framing_notes for why: not HTTP, a head or trailer section over HEAD_LIMIT)
    end: str | None = None
    end_t: float | None = None
    after_end_bytes: int = 0          # bytes received after the message ended
    reads_dropped: int = 0            # reads past READS_KEEP, counted but not kept
    pieces_dropped: int = 0           # pieces past PIECES_KEEP, counted but not kept

    # --- derived views ------------------------------------------------------------------------
    def header_values(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def header_list(self, name: str) -> list[str]:
        """All comma-separated members of a list-valued header, lower-cased, in order."""
        return [m.strip().lower() for v in self.header_values(name) for m in v.split(",") if m.strip()]

    @property
    def body(self) -> bytes:
        return self.body_kept.encode("latin-1")

    @property
    def raw(self) -> bytes:
        return self.raw_kept.encode("latin-1")

    def first_body_t(self) -> float | None:
        return next((p.t for p in self.pieces if p.size), None)

    def time_of_offset(self, offset: int) -> float | None:
        """When the body byte at ``offset`` arrived."""
        for p in self.pieces:
            if p.offset <= offset < p.offset + p.size:
                return p.t
        return None

    # --- plain data ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(replace(self, pieces=[], reads=[]))   # the logs are written below, not copied first
        d["pieces"] = [list(p) for p in self.pieces]
        d["reads"] = [list(r) for r in self.reads]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Recording":
        d = dict(d)
        d["pieces"] = [Piece(*p) for p in d.get("pieces", [])]
        d["reads"] = [Read(*r) for r in d.get("reads", [])]
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def redact(headers: list[tuple[str, str]] | list[list[str]], extra_secret_names=()) -> list[list[str]]:
    """Header lines with the values of credentials (and of user-given headers) replaced."""
    secret = SECRET_HEADERS | {n.lower() for n in extra_secret_names}
    return [[k, REDACTED if k.lower() in secret else v] for k, v in headers]
