"""RFC 9110 — HTTP semantics that bear on streaming: HEAD answers and the media type."""
import re

from conformance.catalogue import MUST, SHOULD, check, failed, passed

META_CHARSET = re.compile(rb"<meta[^>]+charset", re.I)


@check("framing.head-no-body", MUST, "RFC 9110 §9.3.2, RFC 9112 §6.3",
       "The HEAD method is identical to GET except that the server MUST NOT send content in the "
       "response.", scenario="head")
def test_head_no_body(rec, target):
    """A HEAD response ends with its header section."""
    if rec.after_end_bytes:
        after = rec.raw[-min(rec.after_end_bytes, 60):] if rec.raw_bytes == len(rec.raw) else b""
        return failed(f"{rec.after_end_bytes} bytes followed the head of the HEAD response"
                      + (f" (ending {after!r})" if after else ""), "nothing after the header section")
    return passed("nothing followed the header section")


@check("framing.content-type", SHOULD, "RFC 9110 §8.3",
       "A sender that generates a message containing content SHOULD generate a Content-Type header "
       "field in that message unless the intended media type of the enclosed representation is "
       "unknown to the sender.")
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
