"""Clients — what the programs users run actually get.

A stream that is correct on the wire can still fail for real clients: httpx (under many Python
SDKs, LLM clients among them) rejects framing that browsers and curl let through; a client's
own default Accept-Encoding gets a compressed answer that a gzip layer holds; a client's default
read size waits for bytes that the server sent long ago. Each client check reads the target as
that client's users do (``conformance/scenarios/clients.py``) and judges when each event, line or piece
reached the *caller* with the suite's own delivery judges (``delivery.first-byte``,
``delivery.progressive``, their margins in ``conformance.analysis.timing``). When the caller's view is
held, the finding says where: in the client (its own socket got the bytes on time), under the
content coding the client asked for (the raw recorder's identity GET streams), or in the server.
"""
from conformance.checks._judging import judge_client, judge_first_byte, judge_progressive
from conformance.checks.catalogue import SHOULD, Finding, check, failed, skipped
from conformance.scenarios.clients import record_httpx  # noqa: F401  (registers the client scenarios)
from conformance.scenarios.h2rec import record_h2  # noqa: F401  (registers the "h2" scenario)
from conformance.scenarios.h3rec import record as record_h3  # noqa: F401  (registers the "h3" scenario)


@check("client.httpx", SHOULD, "suite rule (RFC 9112, RFC 9110 §8.4)",
       "httpx, the Python client under many SDKs, as its users run it (its default headers, decoded "
       "iteration, lines for NDJSON, httpx-sse events for SSE), reads the whole response, and each "
       "event reaches the caller progressively.", scenario="httpx", needs_success=False, timed=True, held_by_a_hold=True)
def test_httpx(run, target):
    """httpx as users run it reads the whole response, and each event reaches the caller on time."""
    return judge_client(run, target, "httpx")


@check("client.requests", SHOULD, "suite rule (RFC 9112, RFC 9110 §8.4)",
       "requests (urllib3) as its users run it (stream=True, iter_lines() for SSE and NDJSON, "
       "iter_content() otherwise, their default sizes) reads the whole response, and each event "
       "reaches the caller progressively.", scenario="requests", needs_success=False, timed=True, held_by_a_hold=True)
def test_requests(run, target):
    """requests as users run it reads the whole response, and each event reaches the caller on time."""
    return judge_client(run, target, "requests")


@check("client.node-fetch", SHOULD, "suite rule (RFC 9112, RFC 9110 §8.4)",
       "Node's built-in fetch (undici, with its strict llhttp parser) reading the body stream "
       "(response.body.getReader()) reads the whole response, and each chunk reaches the caller "
       "progressively.", scenario="node-fetch", needs_success=False, timed=True, held_by_a_hold=True)
def test_node_fetch(run, target):
    """Node's fetch reads the whole response, and each chunk reaches the caller on time."""
    return judge_client(run, target, "Node's fetch")


@check("delivery.h2", SHOULD, "RFC 9113 §8.1, suite rule",
       "The content also arrives progressively over HTTP/2: DATA frames follow the producer's "
       "writes (https targets that offer h2 in ALPN).", scenario="h2", needs_success=False, timed=True, held_by_a_hold=True)
def test_h2(rec, target):
    """Over HTTP/2 (when offered), the content still arrives progressively."""
    return judge_over(rec, target, "HTTP/2", "2", "HTTP/2 was not negotiated")


@check("delivery.h3", SHOULD, "RFC 9114 §4.1, RFC 7838 §3, suite rule",
       "The content also arrives progressively over HTTP/3 (QUIC): DATA frames follow the producer's "
       "writes (https targets whose responses offer h3 in Alt-Svc).", scenario="h3", needs_success=False,
       timed=True, held_by_a_hold=True)
def test_h3(rec, target):
    """Over HTTP/3 (when Alt-Svc offers it), the content still arrives progressively."""
    return judge_over(rec, target, "HTTP/3", "3", "HTTP/3 is not offered")


def judge_over(rec, target, protocol: str, version: str, not_offered: str):
    """The delivery judges (``delivery.first-byte``, ``delivery.progressive``) on a recording over
    another protocol, one DATA frame per piece; ``skip`` with the recording's reason when the
    protocol was not offered (``not_offered`` when it gives none)."""
    if rec.error:
        return Finding("error", rec.error)
    if rec.http_version != version and not rec.strict_error:
        return skipped("; ".join(rec.framing_notes) or not_offered)
    if rec.strict_error:
        return failed(f"the {protocol} exchange broke: {rec.strict_error}", f"a well-formed {protocol} stream")
    if not 200 <= (rec.status or 0) < 300:
        return Finding("error", f"HTTP {rec.status} over {protocol}", "a 2xx response")
    first = judge_first_byte(rec, target)
    progressive = judge_progressive(rec, target)
    observed = (f"{len(rec.pieces)} DATA frames, {rec.body_bytes} bytes, ended {rec.end}; "
                f"{first.observed}; {progressive.observed}")
    ok = first.verdict == "pass" and progressive.verdict == "pass" and rec.end in ("complete", "watched")
    metrics = {**first.metrics, **progressive.metrics, "data_frames": len(rec.pieces)}   # shared names: progressive's
    return Finding("pass" if ok else "fail", observed, f"{first.expected}; {progressive.expected}", metrics)
