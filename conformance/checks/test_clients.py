"""Clients — what the programs users run actually get.

A stream that is correct on the wire can still fail for real clients: httpx (under many Python
SDKs, LLM clients among them) rejects framing that browsers and curl let through.
"""
from conformance.catalogue import CHECKS, SHOULD, Finding, check, failed, passed, skipped
from conformance.clients import record_httpx  # noqa: F401  (registers the "httpx" scenario)
from conformance.h2rec import record_h2  # noqa: F401  (registers the "h2" scenario)

# What h11 (inside httpx) says, and which framing finding explains it.
EXPLANATIONS = [
    ("multiple Transfer-Encoding", "framing.chunked-once: the response sends Transfer-Encoding more than once"),
    ("Only Transfer-Encoding: chunked", "framing.chunked-once: a coding other than a single chunked"),
    ("chunk header", "framing.chunk-syntax: a chunk-size line is malformed"),
    ("chunk footer", "framing.chunk-syntax: chunk data is not followed by CRLF"),
    ("incomplete chunked read", "framing.complete: the connection closed before the last-chunk"),
    ("peer closed connection", "framing.complete: the connection closed before the body's end"),
    ("Content-Length", "framing.no-te-with-cl or a bad Content-Length"),
    ("ReadTimeout", "framing.complete: the body did not end within the read timeout"),
]


def explain(error: str) -> str:
    for needle, why in EXPLANATIONS:
        if needle.lower() in error.lower():
            return why
    return "see the framing checks of this target"


@check("client.httpx", SHOULD, "suite rule (RFC 9112)",
       "httpx, the Python client under many SDKs, reads the whole response, and its raw pieces "
       "arrive progressively (iter_raw).", scenario="httpx", needs_success=False)
def test_httpx(rec, target):
    """httpx reads the whole response and sees it arrive progressively."""
    if rec.strict_error:
        return failed(f"httpx raised {rec.strict_error} after {rec.body_bytes} body bytes; cause: "
                      f"{explain(rec.strict_error)}", "httpx reads the whole response")
    if not 200 <= (rec.status or 0) < 300:
        return failed(f"httpx got HTTP {rec.status} {rec.reason}", "a 2xx response")
    first = CHECKS["delivery.first-byte"].judge_fn(rec, target)
    progressive = CHECKS["delivery.progressive"].judge_fn(rec, target)
    observed = f"httpx read {rec.body_bytes} bytes in {len(rec.pieces)} pieces; {first.observed}; {progressive.observed}"
    metrics = {**first.metrics, **progressive.metrics, "pieces": len(rec.pieces)}
    ok = first.verdict == "pass" and progressive.verdict == "pass"
    return (passed if ok else failed)(observed, f"{first.expected}; {progressive.expected}", **metrics)


@check("delivery.h2", SHOULD, "RFC 9113 §8.1, suite rule",
       "The content also arrives progressively over HTTP/2: DATA frames follow the producer's "
       "writes (https targets that offer h2 in ALPN).", scenario="h2", needs_success=False)
def test_h2(rec, target):
    """Over HTTP/2 (when offered), the content still arrives progressively."""
    if rec.error:
        return Finding("error", rec.error)
    if rec.http_version != "2" and not rec.strict_error:
        return skipped("; ".join(rec.framing_notes) or "HTTP/2 was not negotiated")
    if rec.strict_error:
        return failed(f"the HTTP/2 exchange broke: {rec.strict_error}", "a well-formed HTTP/2 stream")
    if not 200 <= (rec.status or 0) < 300:
        return Finding("error", f"HTTP {rec.status} over HTTP/2", "a 2xx response")
    first = CHECKS["delivery.first-byte"].judge_fn(rec, target)
    progressive = CHECKS["delivery.progressive"].judge_fn(rec, target)
    observed = (f"{len(rec.pieces)} DATA frames, {rec.body_bytes} bytes, ended {rec.end}; "
                f"{first.observed}; {progressive.observed}")
    ok = first.verdict == "pass" and progressive.verdict == "pass" and rec.end == "complete"
    return (passed if ok else failed)(observed, f"{first.expected}; {progressive.expected}",
                                      **first.metrics, **progressive.metrics, data_frames=len(rec.pieces))
