"""A tolerant HTTP/1.1 response reader, used when h11 rejects a message.

h11 is the judge of framing; this reader exists so that *delivery* can still be measured on a
response that h11 refuses (the seed's doubled ``Transfer-Encoding`` is one). It follows
RFC 9112 §6.3 to find the body's length, decodes chunked framing, and writes down every
deviation it steps over in ``notes``, which ``framing.chunk-syntax`` quotes. When chunked
framing cannot be followed at all, the rest of the bytes are taken as a close-delimited body
(noted), so the arrival times are still known.

Everything it holds is bounded: the head and the trailer section by ``HEAD_LIMIT``, a
chunk-size line by ``SIZE_LINE_LIMIT``, the decoded body kept by ``BODY_KEEP``, the pieces
kept by ``PIECES_KEEP`` (later ones are counted in ``pieces_dropped``), the notes by
``NOTES_KEEP``. Bytes that are not HTTP at all are refused at once (``error``), without
waiting for a head that will never come.
"""
from __future__ import annotations

import re

from conformance.wire.recording import BODY_KEEP, HEAD_LIMIT, PIECES_KEEP, PieceLog

STATUS_LINE = re.compile(rb"HTTP/(\d)\.(\d) (\d{3})(?: (.*))?")
HEX = re.compile(rb"[0-9A-Fa-f]+")
DIGITS = re.compile(r"[0-9]+")
SIZE_LINE_LIMIT = 4096
SIZE_DIGITS_LIMIT = 16   # 16 hex digits = 64 bits; a larger chunk size cannot be meant
NOTES_KEEP = 50
HTTP_PREFIX = b"HTTP/"
# What ``skim`` steps over: a chunk-size line as plain as they come (1 to 16 hex digits, an
# optional extension without whitespace or line breaks, CRLF), and the start of one.
PLAIN_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:;[^\r\n]{0,2000})?\r\n")
PLAIN_SIZE_START = re.compile(rb"[0-9A-Fa-f]{0,16}(?:;[^\r\n]{0,2000})?\r?")
BODY_STATES = ("chunk-size", "chunk-data", "chunk-crlf", "length", "close")


def not_http(data: bytes) -> bool:
    """Whether ``data``, the first bytes of a response (leading blank lines allowed), cannot be
    the start of an HTTP/1.x status line."""
    data = bytes(data).lstrip(b"\r\n")
    n = min(len(data), len(HTTP_PREFIX))
    return data[:n] != HTTP_PREFIX[:n]


class TolerantParser:
    """Feed it the wire bytes read by read; it yields the head, body pieces and notes."""

    def __init__(self, request_method: str = "GET"):
        self.request_method = request_method
        self.buf = bytearray()
        self.state = "head"   # head → body (chunk-size | chunk-data | chunk-crlf | trailers | length | close) → done
        self.notes: list[str] = []
        self.error: str | None = None   # the message cannot be read (any further): why
        self.http_version = self.reason = None
        self.status: int | None = None
        self.headers: list[list[str]] = []
        self.trailers: list[list[str]] = []
        self.head_t: float | None = None
        self.framing: str | None = None
        self.pieces = PieceLog()    # reads as a list of Piece
        self.pieces_dropped = 0     # pieces past PIECES_KEEP, counted but not kept
        self.body = bytearray()     # the first BODY_KEEP decoded bytes
        self.offset = 0
        self.remaining = 0          # bytes left in the current chunk or content-length body
        self.chunk_fresh = False    # the next data byte starts a chunk
        self.after_end = 0
        self.ended_by: str | None = None  # complete | closed | cut-short
        self.end_t: float | None = None   # when the message ended (the read that ended it)
        self._scan = 0              # where the search for the end of the head resumes
        self._trailer_bytes = 0

    def note(self, text: str) -> None:
        if len(self.notes) < NOTES_KEEP and text not in self.notes:
            self.notes.append(text)

    def _done(self, how: str, t: float) -> None:
        self.state, self.ended_by, self.end_t = "done", how, t

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

    def skim(self, data, n: int | None = None) -> bool:
        """Read ``data[:n]`` as ``feed`` would, but keep no pieces and no body bytes (only the
        offset moves on), when it is nothing but plain body framing that ``feed`` would read
        without a note and that does not end the message. Otherwise return False and change
        nothing.

        The recorder uses it while h11 reads the same bytes without complaint: h11's pieces and
        body are then this reader's too (the two agree on every valid message), so keeping them
        twice, and parsing every chunk twice in full, is waste. The moment the bytes are anything
        else, the recorder hands this reader h11's pieces and feeds it in full (``feed``).
        ``data`` may be the recorder's whole receive buffer with ``n`` the bytes of this read:
        a run of chunks of one size is then checked with ``startswith``, a few C calls a chunk."""
        state = self.state
        if self.error or state not in BODY_STATES:
            return False
        if n is None:
            n = len(data)
        if state == "close":
            self.offset += n
            return True
        if state == "length":
            if n >= self.remaining:
                return False   # the message ends here: feed() reads it
            self.remaining -= n
            self.offset += n
            return True
        remaining, fresh, offset, pos = self.remaining, self.chunk_fresh, self.offset, 0
        pending = b""
        if self.buf:   # a size line or CRLF begun in the previous read
            if state == "chunk-crlf":
                if self.buf != b"\r" or not n or data[0] != 10:
                    return False
                state, pos = "chunk-size", 1
            elif state == "chunk-size":
                nl = bytes(data[:min(n, SIZE_LINE_LIMIT)]).find(b"\n")
                if nl < 0:
                    start = bytes(self.buf) + bytes(data[:n])
                    if len(start) > 64 or not PLAIN_SIZE_START.fullmatch(start):
                        return False
                    self.buf[:] = start
                    return True
                m = PLAIN_SIZE_LINE.fullmatch(bytes(self.buf) + bytes(data[:nl + 1]))
                if not m:
                    return False
                remaining = int(m.group(1), 16)
                if not remaining:
                    return False   # the last-chunk: feed() reads the trailers
                state, fresh, pos = "chunk-data", True, nl + 1
            else:
                return False
        match = PLAIN_SIZE_LINE.match
        startswith = getattr(data, "startswith", None)
        while pos < n:
            if state == "chunk-data":
                take = n - pos
                if take >= remaining:
                    pos += remaining
                    offset += remaining
                    remaining, fresh, state = 0, False, "chunk-crlf"
                else:
                    pos = n
                    offset += take
                    remaining -= take
                    fresh = False
            elif state == "chunk-crlf":
                if data[pos] != 13:
                    return False
                if pos + 1 == n:
                    pending, pos = b"\r", n
                elif data[pos + 1] == 10:
                    pos += 2
                    state = "chunk-size"
                else:
                    return False
            else:   # chunk-size
                m = match(data, pos, n)
                if m is None:
                    rest = bytes(data[pos:min(n, pos + 65)])
                    if len(rest) > 64 or not PLAIN_SIZE_START.fullmatch(rest):
                        return False
                    pending, pos = rest, n
                    break
                remaining = int(m.group(1), 16)
                if not remaining:
                    return False
                line_end = m.end()
                if startswith is not None:
                    # Chunks of one size, one after another: each is its data, CRLF and the
                    # same size line again. Step over the run (the last one's data is read
                    # below, as any chunk's).
                    sep = b"\r\n" + bytes(data[pos:line_end])
                    step = remaining + len(sep)
                    p = line_end
                    while p + step <= n and startswith(sep, p + remaining, n):
                        p += step
                    offset += p - line_end - (p - line_end) // step * len(sep)
                    line_end = p
                pos = line_end
                state, fresh = "chunk-data", True
        self.state, self.remaining, self.chunk_fresh, self.offset = state, remaining, fresh, offset
        if self.buf or pending:
            self.buf[:] = pending
        return True

    def close(self, t: float) -> None:
        """The peer closed the connection."""
        if self.state == "done" or self.error:
            return
        if self.state == "head":
            self.error = ("connection closed before a complete response head" if self.buf
                          else "connection closed before a response head")
        elif self.state == "close":
            self._done("closed", t)
        else:
            what = {"length": "the Content-Length was reached"}.get(self.state, "the last-chunk")
            self.note(f"connection closed before {what}")
            self._done("cut-short", t)

    # --- states -----------------------------------------------------------------------------
    def _head(self, t: float) -> None:
        if self.buf[:1] in (b"\r", b"\n"):
            self.note("blank lines before the status line")
            self.buf = bytearray(self.buf.lstrip(b"\r\n"))
            self._scan = 0
        if not_http(self.buf[:16]):
            self.error = f"not an HTTP/1.x response: it starts {bytes(self.buf[:40])!r}"
            return
        # "\n\r\n" or "\n\n" ends the head; resume the search where the last one stopped, so
        # that a head trickling in byte by byte costs linear time.
        end = self.buf.find(b"\n\r\n", self._scan)
        alt = self.buf.find(b"\n\n", self._scan, end + 2 if end >= 0 else len(self.buf))
        if end < 0 and alt < 0:
            self._scan = max(0, len(self.buf) - 2)
            if len(self.buf) > HEAD_LIMIT:
                self.error = f"response head larger than {HEAD_LIMIT} bytes"
            return
        cut = alt + 2 if alt >= 0 else end + 3
        head, self.buf = bytes(self.buf[:cut]), self.buf[cut:]
        self._scan = 0
        if len(head) > HEAD_LIMIT:
            self.error = f"response head larger than {HEAD_LIMIT} bytes"
            return
        lines = head.split(b"\n")[:-2]
        if any(not line.endswith(b"\r") for line in lines) or head.endswith(b"\n\n"):
            self.note("head lines end with a bare LF instead of CRLF")
        lines = [line.removesuffix(b"\r") for line in lines]
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
        self._choose_framing(t)

    def _choose_framing(self, t: float) -> None:
        """RFC 9112 §6.3, in its order."""
        def values(name):
            return [m.strip().lower() for k, v in self.headers if k.lower() == name for m in v.split(",") if m.strip()]
        codings, lengths = values("transfer-encoding"), values("content-length")
        if self.request_method == "HEAD" or self.status in (204, 304):
            self.framing = "none"
            self._done("complete", t)
        elif codings:
            if codings[-1] == "chunked":
                self.framing, self.state = "chunked", "chunk-size"
            else:
                self.framing, self.state = "close", "close"
        elif lengths:
            # DIGITS, not str.isdigit(): the latter also takes "²" and other non-ASCII digits.
            if len(set(lengths)) > 1 or not DIGITS.fullmatch(lengths[0]):
                self.note(f"invalid Content-Length {', '.join(lengths)}; read until close")
                self.framing, self.state = "close", "close"
            else:
                self.framing, self.state, self.remaining = "content-length", "length", int(lengths[0])
                if self.remaining == 0:
                    self._done("complete", t)
        else:
            self.framing, self.state = "close", "close"

    def _emit(self, t: float, size: int, chunk_start: bool = False, chunk_end: bool = False) -> None:
        if len(self.body) < BODY_KEEP:
            self.body += self.buf[:min(size, BODY_KEEP - len(self.body))]
        del self.buf[:size]
        if len(self.pieces) < PIECES_KEEP:
            self.pieces.add(t, self.offset, size, chunk_start, chunk_end)
        else:
            self.pieces_dropped += 1
        self.offset += size

    def _close(self, t: float) -> None:
        if self.buf:
            self._emit(t, len(self.buf))

    def _length(self, t: float) -> None:
        if self.buf:
            size = min(self.remaining, len(self.buf))
            self._emit(t, size)
            self.remaining -= size
            if self.remaining == 0:
                self._done("complete", t)

    def _give_up_chunked(self, why: str) -> None:
        self.note(f"{why}; the rest is read as a close-delimited body")
        self.state = "close"

    def _chunk_size(self, t: float) -> None:
        nl = self.buf.find(b"\n", 0, SIZE_LINE_LIMIT + 1)
        if nl < 0:
            # Give up as soon as the bytes cannot start a chunk-size line, not at the close:
            # the arrival times of an unchunked body are what delivery checks need.
            size_part = bytes(self.buf[:SIZE_LINE_LIMIT]).split(b";", 1)[0].removesuffix(b"\r")
            if len(self.buf) > SIZE_LINE_LIMIT:
                self._give_up_chunked(f"chunk-size line longer than {SIZE_LINE_LIMIT} bytes {bytes(self.buf[:40])!r}")
            elif size_part.strip(b"0123456789abcdefABCDEF \t"):
                self._give_up_chunked(f"invalid chunk-size line {bytes(self.buf[:40])!r}")
            return
        line = bytes(self.buf[:nl])
        if not line.endswith(b"\r"):
            self.note("chunk-size line ends with a bare LF instead of CRLF")
        size_part, ext_sep, _ext = line.removesuffix(b"\r").partition(b";")
        digits = size_part.strip(b" \t")
        # Whitespace before ";" is BWS, allowed with an extension (RFC 9112 §7.1.1); anywhere
        # else around the size it is not in the grammar.
        if size_part[:1] in (b" ", b"\t") or (not ext_sep and size_part != size_part.rstrip(b" \t")):
            self.note(f"whitespace around the chunk size {line[:40]!r}")
        if not HEX.fullmatch(digits):
            self._give_up_chunked(f"invalid chunk-size line {line[:40]!r}")
            return
        if len(digits.lstrip(b"0")) > SIZE_DIGITS_LIMIT:
            # 1*HEXDIG allows it and h11 takes up to 20 digits; Python's ints do not overflow, so
            # read on (the chunk's data runs to the close), but note a size no sender can mean.
            self.note(f"chunk size over 64 bits {line[:40]!r}")
        del self.buf[:nl + 1]
        self.remaining = int(digits, 16)
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
            if self._trailer_bytes + len(self.buf) > HEAD_LIMIT:
                self.error = f"trailer section larger than {HEAD_LIMIT} bytes"
            return
        line = bytes(self.buf[:nl])
        del self.buf[:nl + 1]
        self._trailer_bytes += nl + 1
        if self._trailer_bytes > HEAD_LIMIT:
            self.error = f"trailer section larger than {HEAD_LIMIT} bytes"
            return
        if not line.endswith(b"\r"):
            self.note("trailer section line ends with a bare LF instead of CRLF")
        line = line.removesuffix(b"\r")
        if not line:
            self._done("complete", t)
            return
        name, sep, value = line.partition(b":")
        if not sep:
            self.note(f"malformed trailer line {line[:60]!r}")
        else:
            self.trailers.append([name.strip().decode("latin-1"), value.strip().decode("latin-1")])
