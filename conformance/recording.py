"""A recording of one HTTP exchange: plain data that many checks read and reports show.

Record once, judge many: the recorder fills a ``Recording``; checks only read it. Times are
seconds on a monotonic clock relative to the moment the request's last byte was handed to the
kernel (t = 0), so the connect time is negative. Bytes are kept as latin-1 text so that JSON
round-trips them exactly; how much is kept is capped (see the ``*_KEEP`` constants).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
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
    pieces: list[Piece] = field(default_factory=list)
    trailers: list[list[str]] = field(default_factory=list)
    body_bytes: int = 0
    body_kept: str = ""               # the first BODY_KEEP bytes, latin-1
    # the wire
    reads: list[Read] = field(default_factory=list)
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
        d = asdict(self)
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
