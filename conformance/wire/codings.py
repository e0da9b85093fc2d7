"""Content codings decoded read by read (RFC 9110 §8.4.1): what a browser's decoder hands on.

``decode(rec)`` turns a recording whose body is content-coded into one whose pieces are the
*decoded* bytes each read released, at that read's time, so the delivery analysis judges the
content as a reader of it gets it. A decoder that holds input back (as brotli may until a
meta-block ends) shows up as late pieces: that is the finding, not an artefact.

It also says where decoding stopped and why (``Decoding.fault``):

- ``trailing``: the coded stream ended (gzip's member trailer, deflate's final block, brotli's
  last meta-block, zstd's frame end) and further bytes follow that are not another gzip member or
  zstd frame (RFC 1952 §2.2, RFC 8878 §3.1 allow those): an output-compression layer closed by the
  app's first flush, the rest sent as it was. Decoders stop there (httpx, Chromium) or drop the
  rest (urllib3), or raise (Node's zlib): the content after it is lost to the reader.
- ``corrupt``: a byte no decoder of that coding accepts; ``stopped_at`` is that byte's offset in
  the encoded body (found by feeding the failing read again byte by byte), and what came before
  it is kept.
- ``truncated``: the body ended (the framing says complete) while the coded stream had not.

Decoders are well-kept libraries: zlib (gzip, deflate), ``brotli`` (br) and ``zstandard`` (zstd).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace

from conformance.wire.recording import BODY_KEEP, Piece, Recording

# What the delivery scenario asks for: as a current browser does (Chromium sends these four).
BROWSER_ACCEPT_ENCODING = "gzip, deflate, br, zstd"
GZIP_CODINGS = {"gzip", "x-gzip"}
KNOWN = GZIP_CODINGS | {"deflate", "br", "zstd"}
GZIP_MAGIC, ZSTD_MAGIC = b"\x1f\x8b", b"\x28\xb5\x2f\xfd"


def content_codings(rec: Recording) -> list[str]:
    """The response's content codings in the order applied (identity left out)."""
    return [c for c in rec.header_list("content-encoding") if c != "identity"]


class _Decoder:
    """One coding's decoder. ``feed(data) -> bytes``; after the coded stream's end, the bytes fed
    that are not part of it are ``rest`` (and nothing more is decoded); ``eof``: the end was read;
    ``ends``: how many members (gzip) or frames (zstd) ended."""
    rest: bytes = b""
    ends: int = 0

    @property
    def eof(self) -> bool:
        raise NotImplementedError


class _Multi(_Decoder):
    """A coding whose stream may be several members or frames one after another (gzip, zstd)."""
    magic = b""

    def __init__(self):
        self.d, self.rest, self.done, self.pending = self.new(), b"", 0, b""

    def feed(self, data: bytes) -> bytes:
        if self.rest:
            self.rest += data
            return b""
        out = b""
        data = self.pending + data
        self.pending = b""
        while data:
            if self.d.eof:
                if len(data) < len(self.magic) and self.magic.startswith(data):
                    self.pending = data          # perhaps the next member's start: wait for more
                    return out
                if not data.startswith(self.magic):
                    self.rest = data
                    return out
                self.d, self.done = self.new(), self.done + 1
            out += self.d.decompress(data)
            data = self.d.unused_data if self.d.eof else b""
        return out

    @property
    def eof(self) -> bool:
        return self.d.eof and not self.pending

    @property
    def ends(self) -> int:
        return self.done + bool(self.d.eof)

    @property
    def unfinished(self) -> bool:
        return not self.d.eof or bool(self.pending)


class _Gzip(_Multi):
    magic = GZIP_MAGIC

    def new(self):
        return zlib.decompressobj(31)


class _Zstd(_Multi):
    magic = ZSTD_MAGIC

    def new(self):
        import zstandard
        return zstandard.ZstdDecompressor().decompressobj()


class _Deflate(_Decoder):
    """``deflate`` is the zlib format (RFC 1950); some servers send raw deflate: both are read."""
    def __init__(self):
        self.d, self.first, self.rest = zlib.decompressobj(), True, b""

    def feed(self, data: bytes) -> bytes:
        if self.rest or (self.d.eof and data):
            self.rest += data
            return b""
        if self.first and data:
            self.first = False
            if (data[0] & 0x0F) != 8 or ((data[0] << 8) | (data[1] if len(data) > 1 else 0)) % 31:
                self.d = zlib.decompressobj(-15)
        out = self.d.decompress(data)
        if self.d.eof:
            self.ends, self.rest = 1, self.d.unused_data
        return out

    @property
    def eof(self) -> bool:
        return self.d.eof


class _Brotli(_Decoder):
    """Brotli has one stream: a byte after its last meta-block makes the decoder fail, so the end
    is found when the decoder says it is finished (``feed_bytewise`` stops there)."""
    def __init__(self):
        import brotli
        self.d, self.rest = brotli.Decompressor(), b""

    def feed(self, data: bytes) -> bytes:
        if self.rest or (data and self.d.is_finished()):
            self.rest += data
            return b""
        out = self.d.process(data)
        if self.d.is_finished():
            self.ends = 1
        return out

    @property
    def eof(self) -> bool:
        return self.d.is_finished()


DECODERS = {"gzip": _Gzip, "x-gzip": _Gzip, "deflate": _Deflate, "br": _Brotli, "zstd": _Zstd}


def _unfinished(dec) -> bool:
    return dec.unfinished if isinstance(dec, _Multi) else not dec.eof


@dataclass
class Decoding:
    """What decoding a recording's body read by read gave.

    ``rec``: the decoded recording (pieces at their reads' times); ``codings``: as applied;
    ``encoded_bytes``: the encoded body bytes read (kept ones); ``stopped_at``: the offset in the
    encoded body (bytes) where decoding stopped, when it stopped before the body's end (the coded
    stream's end with uncoded bytes after it; the first undecodable byte) or, for ``truncated``,
    the body's end; ``fault``: ``trailing``, ``corrupt``, ``truncated`` or None; ``error``: the
    decoder's message; ``after``: the first bytes after the coded stream's end (``trailing``);
    ``decoded_at_stop``: decoded bytes released before it; ``ends``: gzip members / zstd frames
    read; ``notes``: each said in words."""
    rec: Recording
    codings: list[str]
    encoded_bytes: int = 0
    stopped_at: int | None = None
    fault: str | None = None
    error: str = ""
    after: bytes = b""
    after_bytes: int = 0
    decoded_at_stop: int = 0
    ends: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def coding(self) -> str:
        return "+".join(self.codings)


def _empty(rec: Recording) -> Recording:
    return replace(rec, pieces=[], body_kept="", body_bytes=0)


def _chain(codings: list[str]) -> list:
    return [DECODERS[c]() for c in reversed(codings)]   # the last applied is undone first


def _through(chain: list, data: bytes) -> bytes:
    for dec in chain:
        data = dec.feed(data)
    return data


def decode(rec: Recording) -> Decoding:
    """The recording with its content codings undone read by read, and where decoding stopped
    (see ``Decoding``). Only the kept body (``BODY_KEEP``) can be decoded. Never raises for the
    server's bytes."""
    codings = content_codings(rec)
    result = Decoding(_empty(rec), codings)
    unknown = [c for c in codings if c not in DECODERS]
    if unknown:
        result.notes.append(f"Content-Encoding {', '.join(unknown)} cannot be decoded here")
        return result
    try:
        chain = _chain(codings)
    except ImportError as e:
        result.notes.append(f"no decoder installed: {e}")
        return result
    body = rec.body
    out = result.rec
    text = bytearray()
    size = 0

    def emit(t, data: bytes, p: Piece) -> None:
        nonlocal size
        if data:
            out.pieces.append(Piece(t, size, len(data), p.chunk_start, p.chunk_end))
            size += len(data)
            if len(text) < BODY_KEEP:
                text.extend(data[:BODY_KEEP - len(text)])

    outer = chain[0] if chain else None
    for p in rec.pieces:
        data = body[p.offset:p.offset + p.size]
        if not data:
            continue
        result.encoded_bytes = p.offset + len(data)
        try:
            emit(p.t, _through(chain, data), p)
        except Exception as e:  # noqa: BLE001 - zlib.error, brotli.error, zstd.ZstdError: the server's bytes
            # Feed the failing read again, byte by byte, to a fresh decoder that has had every
            # byte before it: the first byte it refuses is where the coding breaks.
            chain = _chain(codings)
            _through(chain, body[:p.offset])
            outer = chain[0]
            for i in range(len(data)):
                if outer.eof:
                    outer.rest = data[i:]
                    break
                try:
                    emit(p.t, _through(chain, data[i:i + 1]), p)
                except Exception as e2:  # noqa: BLE001 - as above
                    result.fault, result.stopped_at, result.error = "corrupt", p.offset + i, str(e2) or str(e)
                    break
            if result.fault:
                break
        if outer is not None and outer.rest:
            result.fault = "trailing"
            result.stopped_at = result.encoded_bytes - len(outer.rest)
            break
    if result.fault == "trailing":
        result.after_bytes = rec.body_bytes - result.stopped_at
        result.after = body[result.stopped_at:result.stopped_at + 48]
    result.decoded_at_stop = size
    result.ends = getattr(outer, "ends", 0) if outer is not None else 0
    if result.fault is None and rec.body_bytes > len(body):
        result.notes.append(f"only the first {len(body)} of {rec.body_bytes} encoded bytes are kept and decoded")
    elif result.fault is None and chain and _unfinished(outer) and rec.end in ("complete", "closed"):
        result.fault, result.stopped_at = "truncated", result.encoded_bytes
    result.notes.extend(_fault_notes(result))
    out.body_bytes, out.body_kept = size, bytes(text).decode("latin-1")
    return result


def _fault_notes(d: Decoding) -> list[str]:
    c = d.coding
    if d.fault == "trailing":
        return [f"the {c} stream ends at encoded byte {d.stopped_at} (after {d.decoded_at_stop} decoded bytes) and "
                f"{d.after_bytes} bytes follow that are not {c} data (they start {d.after[:32]!r})"]
    if d.fault == "corrupt":
        return [f"the {c} data cannot be decoded from encoded byte {d.stopped_at} on ({d.error}); the "
                f"{d.decoded_at_stop} decoded bytes before it are kept"]
    if d.fault == "truncated":
        return [f"the {c} stream is cut at encoded byte {d.stopped_at}, the body's end: the coded stream does not "
                f"end there (no final block{', no trailer' if c in GZIP_CODINGS else ''})"]
    return []


def decoded(rec: Recording) -> tuple[Recording, list[str]]:
    """The recording with its content codings undone read by read, and notes (a coding not known
    here, where decoding stopped and why). ``decode`` gives the same as data."""
    d = decode(rec)
    return d.rec, d.notes
