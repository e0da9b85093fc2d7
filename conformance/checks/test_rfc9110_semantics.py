"""RFC 9110 — HTTP semantics that bear on streaming: HEAD answers and the media type."""
import re
from itertools import accumulate

from conformance.checks.catalogue import MUST, SHOULD, check, failed, passed, skipped
from conformance.scenarios.base import head_listen_s

META_CHARSET = re.compile(rb"<meta[^>]+charset", re.I)


@check("framing.head-supported", SHOULD, "RFC 9110 §9.1, §9.3.2",
       "All general-purpose servers MUST support the methods GET and HEAD.", scenario="head",
       needs_success=False)
def test_head_supported(rec, target):
    """HEAD is answered as GET is (the same status, without the content)."""
    status = f"HTTP {rec.status} {rec.reason}".rstrip()
    if 200 <= (rec.status or 0) < 300:
        return passed(f"HEAD answered {status}")
    allow = rec.header_values("allow")
    why = {404: "as if the resource did not exist", 405: "the method is refused",
           501: "the method is not implemented"}.get(rec.status, "not as GET is")
    return failed(f"HEAD answered {status}: {why}" + (f" (Allow: {', '.join(allow)})" if allow else ""),
                  "HEAD answered as GET is, without the content")


@check("framing.head-no-body", MUST, "RFC 9110 §9.3.2, RFC 9112 §6.3",
       "The HEAD method is identical to GET except that the server MUST NOT send content in the "
       "response.", scenario="head", needs_success=False, unanswered="skip")
def test_head_no_body(rec, target):
    """A HEAD response ends with its header section, however long its handler runs."""
    if not 200 <= (rec.status or 0) < 300:
        return skipped(f"HEAD answered HTTP {rec.status} {rec.reason}".rstrip()
                       + ": no HEAD response to judge (framing.head-supported)")
    listened = f"{head_listen_s(target):.3g} s"
    n = rec.after_end_bytes
    if not n:
        return passed(f"nothing followed the header section (listened {listened}, the producer's schedule "
                      f"and two intervals, or until the server closed)")
    start = rec.raw_bytes - n           # the wire offset of the first byte after the head
    times = [r.t for r, end in zip(rec.reads, accumulate(r.size for r in rec.reads)) if end > start]
    head_t = rec.head_t or 0.0
    when = (f", {times[0] - head_t:.2f} s after the head" + (f" to {times[-1] - head_t:.2f} s" if len(times) > 1 else "")
            if times else "")
    first = rec.raw[start:start + 60]
    return failed(f"{n} bytes followed the head of the HEAD response{when}"
                  + (f" (starting {first!r})" if first else ""), "nothing after the header section",
                  after_head_bytes=n, first_after_head_s=round(times[0] - head_t, 3) if times else None)


@check("framing.content-type", SHOULD, "RFC 9110 §8.3",
       "A sender that generates a message containing content SHOULD generate a Content-Type header "
       "field in that message unless the intended media type of the enclosed representation is "
       "unknown to the sender.", head_only=True)
def test_content_type(rec, target):
    """Content-Type is sent; text without a charset is noted (browsers hold bytes to sniff one)."""
    values = rec.header_values("content-type")
    if not values:
        return failed("no Content-Type", "a Content-Type, with a charset for text")
    ctype = values[0]
    # text/event-stream is always UTF-8 (HTML's server-sent events), so it needs no charset
    if ctype.lower().startswith("text/") and "charset=" not in ctype.lower() \
            and not ctype.lower().startswith("text/event-stream") \
            and not META_CHARSET.search(rec.body[:1024]):
        return failed(f"Content-Type: {ctype} has no charset, and the first 1024 bytes declare none: a "
                      f"browser may hold those bytes while it looks for one (HTML encoding prescan)",
                      "Content-Type: text/html; charset=utf-8")
    return passed(f"Content-Type: {ctype}")
