"""RFC 9112 — HTTP/1.1 message framing.

Each check reads one recording of the target and says whether its framing holds: what a strict
recipient (h11) makes of it, how the transfer codings are stacked, whether the body ends where
its framing says.
"""
import re

from conformance.checks.catalogue import MUST, SHOULD, check, failed, passed, skipped

CHUNK_SIZE_LINE = re.compile(rb"([0-9A-Fa-f]{1,16})(?:[ \t]*;[^\r\n]*)?\r\n")
TRAILER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+:[^\r\n]*")
EVIDENCE_BYTES = 60


def te_lines(rec) -> str:
    return "; ".join(f"{k}: {v}" for k, v in rec.headers if k.lower() == "transfer-encoding")


def chunked_again(body: bytes, whole: bool) -> int | None:
    """The number of chunks in a decoded body that is itself a chunked body, else None.

    The rule: from its first byte the body parses as chunks (a chunk-size line of hex digits with
    an optional extension and CRLF, exactly that many bytes, CRLF, the next size line, ...). A
    whole body must then end as a chunked body ends, exactly: a last-chunk, trailer lines and an
    empty line, after at least one data chunk. A body only partly seen (cut short, or longer than
    is kept) must parse so to its last byte with at least three data chunks. So a text body that
    merely starts like a chunk ("5\r\nhello\r\n", or a few such lines) passes; only one that is,
    to its end, a whole chunked message (or three chunks and more, with nothing else) fails.
    """
    pos = chunks = 0
    partial_ok = lambda: chunks if not whole and chunks >= 3 else None  # noqa: E731
    while True:
        m = CHUNK_SIZE_LINE.match(body, pos)
        if m is None:   # a size line cut at the end of what was seen may still be one
            rest = body[pos:]
            return partial_ok() if len(rest) < 24 and b"\n" not in rest else None
        size, pos = int(m.group(1), 16), m.end()
        if size == 0:
            while True:   # the trailer section, then the empty line that ends the body
                eol = body.find(b"\r\n", pos)
                if eol < 0:
                    return partial_ok()
                if eol == pos:
                    return chunks if chunks and eol + 2 == len(body) else None
                if not TRAILER_LINE.fullmatch(body, pos, eol):
                    return None
                pos = eol + 2
        if pos + size + 2 > len(body):
            return partial_ok() if b"\r\n".startswith(body[pos + size:]) else None   # cut in the data or its CRLF
        if body[pos + size:pos + size + 2] != b"\r\n":
            return None
        pos, chunks = pos + size + 2, chunks + 1
        if pos == len(body):
            return partial_ok()


@check("framing.strict-parse", MUST, "RFC 9110 §2.2, RFC 9112",
       "A sender MUST NOT generate protocol elements that do not match the grammar defined by the "
       "corresponding ABNF rules.")
def test_strict_parse(rec, target):
    """A strict HTTP/1.1 parser (h11) reads the whole response."""
    if rec.strict_error:
        return failed(f"h11 rejected the response: {rec.strict_error}", "h11 reads the response to its end")
    if rec.end == "watched":
        return passed(f"h11 read the {rec.body_bytes} body bytes that arrived before the watch window ended "
                      f"({rec.framing} framing; the stream was still open)")
    if rec.end not in ("complete", "closed"):
        return failed(f"h11 was still inside the message when the recording stopped ({rec.end}) "
                      f"after {rec.body_bytes} body bytes", "h11 reads the response to its end")
    return passed(f"h11 read the whole response: {rec.framing} framing, {rec.body_bytes} body bytes")


@check("framing.chunked-once", MUST, "RFC 9112 §6.1",
       "A sender MUST NOT apply the chunked transfer coding more than once to a message body (i.e., "
       "chunking an already chunked message is not allowed). [...] If any transfer coding other than "
       "chunked is applied to a response's content, the sender MUST either apply chunked as the final "
       "transfer coding or terminate the message by closing the connection.")
def test_chunked_once(rec, target):
    """Chunked is applied at most once and, when used, as the final transfer coding."""
    codings = rec.header_list("transfer-encoding")
    if not codings:
        return skipped("the response has no Transfer-Encoding")
    expected = "chunked at most once, and last unless the server closes the connection"
    if codings.count("chunked") > 1:
        return failed(f"chunked is listed {codings.count('chunked')} times ({te_lines(rec)})", expected)
    if codings[-1] != "chunked" and rec.end != "closed":
        return failed(f"the final coding is {codings[-1]!r}, not chunked ({te_lines(rec)}), and the message "
                      f"was not ended by closing the connection ({rec.end})", expected)
    body = rec.body
    inner = chunked_again(body, rec.end == "complete" and len(body) == rec.body_bytes) \
        if codings[-1] == "chunked" else None
    if inner:
        return failed(f"{te_lines(rec)}, but the de-chunked body is itself a chunked body ({inner} chunks"
                      + (" and its last-chunk" if rec.end == "complete" and len(body) == rec.body_bytes else "")
                      + f"): it starts {body[:EVIDENCE_BYTES]!r}; something wrote chunk framing under a "
                      f"server that chunks again", expected, inner_chunks=inner)
    return passed(f"{te_lines(rec)}" + ("" if codings[-1] == "chunked" else "; ended by the server's close"))


@check("framing.no-te-with-cl", MUST, "RFC 9112 §6.2",
       "A sender MUST NOT send a Content-Length header field in any message that contains a "
       "Transfer-Encoding header field.", head_only=True)
def test_no_te_with_cl(rec, target):
    """No Content-Length beside Transfer-Encoding."""
    if not rec.header_values("transfer-encoding"):
        return skipped("the response has no Transfer-Encoding")
    lengths = rec.header_values("content-length")
    if lengths:
        return failed(f"{te_lines(rec)} together with Content-Length: {', '.join(lengths)}",
                      "no Content-Length with Transfer-Encoding")
    return passed(f"{te_lines(rec)} and no Content-Length")


@check("framing.http10-no-te", MUST, "RFC 9112 §6.1",
       "A server MUST NOT send a response containing Transfer-Encoding unless the corresponding "
       "request indicates HTTP/1.1 (or later minor revisions).", scenario="get-http10", head_only=True)
def test_http10_no_te(rec, target):
    """An HTTP/1.0 request gets no Transfer-Encoding back."""
    if rec.header_values("transfer-encoding"):
        return failed(f"the response to an HTTP/1.0 request carries {te_lines(rec)}",
                      "no Transfer-Encoding (Content-Length, or the body ended by closing the connection)")
    return passed(f"no Transfer-Encoding; the body is framed by {rec.framing}")


@check("framing.chunk-syntax", MUST, "RFC 9112 §7.1",
       "chunked-body = *chunk last-chunk trailer-section CRLF; chunk = chunk-size [ chunk-ext ] CRLF "
       "chunk-data CRLF; chunk-size = 1*HEXDIG; last-chunk = 1*(\"0\") [ chunk-ext ] CRLF")
def test_chunk_syntax(rec, target):
    """Chunk-size lines, CRLFs, the last-chunk and the trailer section follow the grammar."""
    if rec.framing != "chunked":
        return skipped(f"the body is not chunked ({rec.framing} framing)")
    chunks = sum(p.chunk_start for p in rec.pieces)
    notes = [n for n in rec.framing_notes if "chunk" in n or "trailer" in n or "CRLF" in n]
    expected = "every chunk framed as §7.1 says, ending with the last-chunk and an empty line"
    if notes:
        return failed("; ".join(notes), expected)
    if rec.end == "watched":
        return passed(f"{chunks} chunks framed as §7.1 says before the watch window ended (the stream was "
                      "still open: no last-chunk yet)")
    if rec.end != "complete":
        return failed(f"the last-chunk never arrived ({rec.end} after {chunks} chunks)", expected)
    how = "h11 decoded" if rec.parser == "h11" else "the tolerant reader decoded (h11 had stopped earlier)"
    return passed(f"{how} {chunks} chunks and the last-chunk" + (f", trailers {rec.trailers}" if rec.trailers else ""))


@check("framing.complete", MUST, "RFC 9112 §8",
       "A message body that uses the chunked transfer coding is incomplete if the zero-sized chunk "
       "that terminates the encoding has not been received. A message that uses a valid "
       "Content-Length is incomplete if the size of the message body received (in octets) is less "
       "than the value given by Content-Length.")
def test_complete(rec, target):
    """The body ends where its framing says, not cut short by a close or left hanging."""
    expected = {"chunked": "the last-chunk", "content-length": "Content-Length bytes",
                "close": "the server's close", "none": "the end of the head"}.get(rec.framing, "its end")
    if rec.end == "complete":
        return passed(f"complete: {rec.body_bytes} body bytes, ended by {expected}")
    if rec.end == "watched":
        return skipped(f"the stream was still open after {rec.body_bytes} body bytes when the watch window "
                       f"ended (--watch, {rec.end_t or 0:.0f} s): an endless stream has no end to judge")
    if rec.end == "closed":
        if rec.framing == "close":
            return passed(f"{rec.body_bytes} body bytes, delimited by the server closing the connection")
        return failed(f"the connection closed after {rec.body_bytes} body bytes, before {expected}", expected)
    what = {"cut-short": "the connection closed", "reset": "the connection was reset",
            "timeout": "nothing more arrived within the read timeout",
            "deadline": "the recording's deadline passed",
            "budget": "the suite stopped reading at its read budget (far more than a stream's profile explains)"
            }.get(rec.end, rec.end)
    return failed(f"{what} after {rec.body_bytes} body bytes, before {expected}", f"the body ends with {expected}")


@check("framing.self-delimited", SHOULD, "RFC 9112 §6.3, §9.3",
       "Since there is no way to distinguish a successfully completed, close-delimited response "
       "message from a partially received message interrupted by network failure, a server SHOULD "
       "generate encoding or length-delimited messages whenever possible.")
def test_self_delimited(rec, target):
    """An HTTP/1.1 response body is delimited by Content-Length or chunked, not by the close."""
    if rec.request_version != "1.1" or rec.http_version != "1.1":
        return skipped(f"an HTTP/{rec.http_version} response to an HTTP/{rec.request_version} request: "
                       f"a body ended by the close is how HTTP/1.0 delimits it")
    if rec.framing == "close":
        how = {"closed": "when the server closed the connection"}.get(rec.end, f"by {rec.end}, the server never closing")
        return failed(f"neither Content-Length nor a final chunked coding ({te_lines(rec) or 'no Transfer-Encoding'}): "
                      f"the {rec.body_bytes}-byte body ended {how}; a client cannot tell a cut stream from a "
                      f"finished one, and the connection cannot be kept alive for the next request",
                      "Content-Length, or Transfer-Encoding: chunked")
    return passed({"chunked": "delimited by chunked framing", "content-length": "delimited by Content-Length",
                   "none": "no body (HEAD, 204 or 304)"}.get(rec.framing, f"{rec.framing} framing"))
