"""Content codings decoded read by read (RFC 9110 §8.4.1): what a browser's decoder hands on.

``decoded(rec)`` turns a recording whose body is content-coded into one whose pieces are the
*decoded* bytes each read released, at that read's time, so the delivery analysis judges the
content as a reader of it gets it. A decoder that holds input back (as brotli may until a
meta-block ends) shows up as late pieces: that is the finding, not an artefact.

Decoders are well-kept libraries: zlib (gzip, deflate), ``brotli`` (br) and ``zstandard`` (zstd).
"""
from __future__ import annotations

import zlib
from dataclasses import replace

from conformance.wire.recording import BODY_KEEP, Piece, Recording

# What the delivery scenario asks for: as a current browser does (Chromium sends these four).
BROWSER_ACCEPT_ENCODING = "gzip, deflate, br, zstd"
GZIP_CODINGS = {"gzip", "x-gzip"}
KNOWN = GZIP_CODINGS | {"deflate", "br", "zstd"}


def content_codings(rec: Recording) -> list[str]:
    """The response's content codings in the order applied (identity left out)."""
    return [c for c in rec.header_list("content-encoding") if c != "identity"]


class _Gzip:
    def __init__(self):
        self.d = zlib.decompressobj(31)

    def feed(self, data: bytes) -> bytes:
        out = b""
        while data:
            out += self.d.decompress(data)
            data = b""
            if self.d.eof and self.d.unused_data:    # a gzip stream may hold several members
                data, self.d = self.d.unused_data, zlib.decompressobj(31)
        return out

    @property
    def eof(self) -> bool:
        return self.d.eof


class _Deflate:
    """``deflate`` is the zlib format (RFC 1950); some servers send raw deflate: both are read."""
    def __init__(self):
        self.d, self.first = zlib.decompressobj(), True

    def feed(self, data: bytes) -> bytes:
        if self.first and data:
            self.first = False
            if (data[0] & 0x0F) != 8 or ((data[0] << 8) | (data[1] if len(data) > 1 else 0)) % 31:
                self.d = zlib.decompressobj(-15)
        return self.d.decompress(data)

    @property
    def eof(self) -> bool:
        return self.d.eof


class _Brotli:
    def __init__(self):
        import brotli
        self.d = brotli.Decompressor()

    def feed(self, data: bytes) -> bytes:
        return self.d.process(data)

    @property
    def eof(self) -> bool:
        return self.d.is_finished()


class _Zstd:
    def __init__(self):
        import zstandard
        self.d = zstandard.ZstdDecompressor().decompressobj()

    def feed(self, data: bytes) -> bytes:
        return self.d.decompress(data)

    @property
    def eof(self) -> bool:
        return bool(getattr(self.d, "eof", False))


DECODERS = {"gzip": _Gzip, "x-gzip": _Gzip, "deflate": _Deflate, "br": _Brotli, "zstd": _Zstd}


def decoded(rec: Recording) -> tuple[Recording, list[str]]:
    """The recording with its content codings undone read by read. Returns the new recording
    and notes (a coding not known here, a corrupt stream decoded up to its fault, a stream that
    ends without its trailer). Only the kept body (``BODY_KEEP``) can be decoded."""
    notes: list[str] = []
    codings = content_codings(rec)
    unknown = [c for c in codings if c not in DECODERS]
    if unknown:
        return replace(rec, pieces=[], body_kept="", body_bytes=0), [f"Content-Encoding {', '.join(unknown)} cannot be decoded here"]
    try:
        chain = [DECODERS[c]() for c in reversed(codings)]   # the last applied is undone first
    except ImportError as e:
        return replace(rec, pieces=[], body_kept="", body_bytes=0), [f"no decoder installed: {e}"]
    body = rec.body
    out = replace(rec, pieces=[], body_kept="", body_bytes=0)
    text = bytearray()
    offset = 0
    fault = None
    for p in rec.pieces:
        data = body[p.offset:p.offset + p.size]
        if not data:
            continue
        try:
            for dec in chain:
                data = dec.feed(data)
        except Exception as e:  # noqa: BLE001 - zlib.error, brotli.error, zstd.ZstdError: the server's bytes
            fault = f"the {'+'.join(codings)} data is corrupt near encoded byte {p.offset}: {e}"
            break
        if data:
            out.pieces.append(Piece(p.t, offset, len(data), p.chunk_start, p.chunk_end))
            offset += len(data)
            if len(text) < BODY_KEEP:
                text += data[:BODY_KEEP - len(text)]
    if fault:
        notes.append(fault)
    elif rec.body_bytes > len(body):
        notes.append(f"only the first {len(body)} of {rec.body_bytes} encoded bytes are kept and decoded")
    elif chain and not chain[-1].eof and rec.end in ("complete", "closed"):
        notes.append(f"the {codings[0]} stream ends without its trailer")
    out.body_bytes, out.body_kept = offset, bytes(text).decode("latin-1")
    return out, notes
