"""A tolerant HTTP/1.1 response reader, used when h11 rejects a message.

h11 is the judge of framing; this reader exists so that *delivery* can still be measured on a
response that h11 refuses (the seed's doubled ``Transfer-Encoding`` is one). It follows
RFC 9112 §6.3 to find the body's length, decodes chunked framing, and writes down every
deviation it steps over in ``notes``, which ``framing.chunk-syntax`` quotes. When chunked
framing cannot be followed at all, the rest of the bytes are taken as a close-delimited body
(noted), so the arrival times are still known.
"""
from __future__ import annotations

import re

from conformance.recording import BODY_KEEP, HEAD_LIMIT, Piece

STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?")
HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
SIZE_LINE_LIMIT = 4096


class TolerantParser:
    """Feed it the wire bytes read by read; it yields the head, body pieces and notes."""

    def __init__(self, request_method: str = "GET"):
        self.request_method = request_method
        self.buf = bytearray()
        self.state = "head"   # head → body (chunk-size | chunk-data | chunk-crlf | trailers | length | close) → done
        self.notes: list[str] = []
        self.error: str | None = None   # the message could not be read at all
        self.http_version = self.reason = None
        self.status: int | None = None
        self.headers: list[list[str]] = []
        self.trailers: list[list[str]] = []
        self.head_t: float | None = None
        self.framing: str | None = None
        self.pieces: list[Piece] = []
        self.body = bytearray()     # the first BODY_KEEP decoded bytes
        self.offset = 0
        self.remaining = 0          # bytes left in the current chunk or content-length body
        self.chunk_fresh = False    # the next data byte starts a chunk
        self.after_end = 0
        self.ended_by: str | None = None  # complete | closed | cut-short

    def note(self, text: str) -> None:
        if len(self.notes) < 50 and text not in self.notes:
            self.notes.append(text)

    # --- input ------------------------------------------------------------------------------
    def feed(self, data: bytes, t: float) -> None:
        if self.state == "done" or self.error:
            self.after_end += len(data)
            return
        self.buf += data
        while self.state != "done" and not self.error:
            before = (self.state, len(self.buf))
            getattr(self, "_" + self.state.replace("-", "_"))(t)
            if (self.state, len(self.buf)) == before:
                break  # needs more data
        if self.state == "done":
            self.after_end += len(self.buf)
            self.buf.clear()

    def close(self, t: float) -> None:
        """The peer closed the connection."""
        if self.state == "done" or self.error:
            return
        if self.state == "head":
            self.error = "connection closed before a complete response head"
        elif self.state == "close":
            self.ended_by, self.state = "closed", "done"
        else:
            what = {"length": "the Content-Length was reached"}.get(self.state, "the last-chunk")
            self.note(f"connection closed before {what}")
            self.ended_by, self.state = "cut-short", "done"

    # --- states -----------------------------------------------------------------------------
    def _head(self, t: float) -> None:
        end = self.buf.find(b"\n\r\n")
        alt = self.buf.find(b"\n\n")
        if end < 0 and alt < 0:
            if len(self.buf) > HEAD_LIMIT:
                self.error = f"response head larger than {HEAD_LIMIT} bytes"
            return
        cut = min(x for x in (end + 3 if end >= 0 else None, alt + 2 if alt >= 0 else None) if x is not None)
        head, self.buf = bytes(self.buf[:cut]), self.buf[cut:]
        if len(head) > HEAD_LIMIT:
            self.error = f"response head larger than {HEAD_LIMIT} bytes"
            return
        lines = head.split(b"\n")[:-2] if head.endswith(b"\n\n") or head.endswith(b"\n\r\n") else head.split(b"\n")
        if any(not line.endswith(b"\r") for line in lines):
            self.note("head lines end with a bare LF instead of CRLF")
        lines = [line.rstrip(b"\r") for line in lines]
        m = STATUS_LINE.fullmatch(lines[0])
        if not m:
            self.error = f"not an HTTP/1.x status line: {lines[0][:80]!r}"
            return
        self.http_version = f"{int(m.group(1))}.{int(m.group(2))}"
        self.status = int(m.group(3))
        self.reason = (m.group(4) or b"").decode("latin-1")
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t") and self.headers:
                self.note("obsolete line folding in a header field")
                self.headers[-1][1] += " " + line.strip().decode("latin-1")
                continue
            name, sep, value = line.partition(b":")
            if not sep or not name or name != name.strip():
                self.note(f"malformed header line {line[:60]!r}")
                if not sep:
                    continue
            self.headers.append([name.strip().decode("latin-1"), value.strip().decode("latin-1")])
        self.head_t = t
        if 100 <= self.status < 200:
            self.note(f"interim {self.status} response skipped")
            self.headers, self.status = [], None
            return
        self._choose_framing()

    def _choose_framing(self) -> None:
        """RFC 9112 §6.3, in its order."""
        def values(name):
            return [m.strip().lower() for k, v in self.headers if k.lower() == name for m in v.split(",") if m.strip()]
        codings, lengths = values("transfer-encoding"), values("content-length")
        if self.request_method == "HEAD" or self.status in (204, 304):
            self.framing, self.state, self.ended_by = "none", "done", "complete"
        elif codings:
            if codings[-1] == "chunked":
                self.framing, self.state = "chunked", "chunk-size"
            else:
                self.framing, self.state = "close", "close"
        elif lengths:
            if len(set(lengths)) > 1 or not lengths[0].isdigit():
                self.note(f"invalid Content-Length {', '.join(lengths)}; read until close")
                self.framing, self.state = "close", "close"
            else:
                self.framing, self.state, self.remaining = "content-length", "length", int(lengths[0])
                if self.remaining == 0:
                    self.state, self.ended_by = "done", "complete"
        else:
            self.framing, self.state = "close", "close"

    def _emit(self, t: float, size: int, chunk_start: bool = False, chunk_end: bool = False) -> None:
        if len(self.body) < BODY_KEEP:
            self.body += self.buf[:min(size, BODY_KEEP - len(self.body))]
        del self.buf[:size]
        self.pieces.append(Piece(t, self.offset, size, chunk_start, chunk_end))
        self.offset += size

    def _close(self, t: float) -> None:
        if self.buf:
            self._emit(t, len(self.buf))

    def _length(self, t: float) -> None:
        if self.buf:
            self._emit(t, min(self.remaining, len(self.buf)))
            self.remaining -= self.pieces[-1].size
            if self.remaining == 0:
                self.state, self.ended_by = "done", "complete"

    def _give_up_chunked(self, why: str) -> None:
        self.note(f"{why}; the rest is read as a close-delimited body")
        self.state = "close"

    def _chunk_size(self, t: float) -> None:
        nl = self.buf.find(b"\n")
        if nl < 0:
            # Give up as soon as the bytes cannot start a chunk-size line, not at the close:
            # the arrival times of an unchunked body are what delivery checks need.
            size_part = bytes(self.buf[:SIZE_LINE_LIMIT]).split(b";", 1)[0].rstrip(b"\r")
            if len(self.buf) > SIZE_LINE_LIMIT or size_part.strip(b"0123456789abcdefABCDEF \t"):
                self._give_up_chunked(f"invalid chunk-size line {bytes(self.buf[:40])!r}")
            return
        line = bytes(self.buf[:nl])
        if not line.endswith(b"\r"):
            self.note("chunk-size line ends with a bare LF instead of CRLF")
        size_part, _, _ext = line.rstrip(b"\r").partition(b";")
        if size_part != size_part.strip(b" \t"):
            self.note(f"whitespace around the chunk size {line[:40]!r}")
        if not HEX.fullmatch(size_part.strip(b" \t")):
            self._give_up_chunked(f"invalid chunk-size line {line[:40]!r}")
            return
        del self.buf[:nl + 1]
        self.remaining = int(size_part.strip(b" \t"), 16)
        if self.remaining == 0:
            self.state = "trailers"
        else:
            self.state, self.chunk_fresh = "chunk-data", True

    def _chunk_data(self, t: float) -> None:
        if self.buf:
            size = min(self.remaining, len(self.buf))
            self.remaining -= size
            self._emit(t, size, chunk_start=self.chunk_fresh, chunk_end=self.remaining == 0)
            self.chunk_fresh = False
            if self.remaining == 0:
                self.state = "chunk-crlf"

    def _chunk_crlf(self, t: float) -> None:
        if self.buf[:2] == b"\r\n":
            del self.buf[:2]
            self.state = "chunk-size"
        elif self.buf[:1] == b"\n":
            self.note("chunk data followed by a bare LF instead of CRLF")
            del self.buf[:1]
            self.state = "chunk-size"
        elif len(self.buf) >= 2 or (self.buf and self.buf[:1] != b"\r"):
            self._give_up_chunked(f"chunk data not followed by CRLF (got {bytes(self.buf[:8])!r})")

    def _trailers(self, t: float) -> None:
        nl = self.buf.find(b"\n")
        if nl < 0:
            if len(self.buf) > HEAD_LIMIT:
                self.error = f"trailer section larger than {HEAD_LIMIT} bytes"
            return
        line = bytes(self.buf[:nl])
        del self.buf[:nl + 1]
        if not line.endswith(b"\r"):
            self.note("trailer section line ends with a bare LF instead of CRLF")
        line = line.rstrip(b"\r")
        if not line:
            self.state, self.ended_by = "done", "complete"
            return
        name, sep, value = line.partition(b":")
        if not sep:
            self.note(f"malformed trailer line {line[:60]!r}")
        else:
            self.trailers.append([name.strip().decode("latin-1"), value.strip().decode("latin-1")])
