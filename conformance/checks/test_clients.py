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
import bisect
import re
import statistics

from conformance.analysis import inferred
from conformance.analysis.figures import ms
from conformance.analysis.losses import compare
from conformance.checks.catalogue import CHECKS, SHOULD, Finding, check, failed, passed, skipped
from conformance.checks.test_delivery_conditions import streams_on_time
from conformance.scenarios.clients import record_httpx  # noqa: F401  (registers the client scenarios)
from conformance.scenarios.h2rec import record_h2  # noqa: F401  (registers the "h2" scenario)
from conformance.scenarios.h3rec import record as record_h3  # noqa: F401  (registers the "h3" scenario)
from conformance.wire.codings import content_codings, decode

# What a client's parser says, and which framing finding explains it.
EXPLANATIONS = [
    ("multiple Transfer-Encoding", "framing.chunked-once: the response sends Transfer-Encoding more than once"),
    ("Only Transfer-Encoding: chunked", "framing.chunked-once: a coding other than a single chunked"),
    ("chunk header", "framing.chunk-syntax: a chunk-size line is malformed"),
    ("chunk footer", "framing.chunk-syntax: chunk data is not followed by CRLF"),
    ("incomplete chunked read", "framing.complete: the connection closed before the last-chunk"),
    ("InvalidChunkLength", "framing.chunk-syntax: a chunk-size line is malformed"),
    ("HPE_INVALID_CHUNK_SIZE", "framing.chunk-syntax: a chunk-size line is malformed"),
    ("HPE_STRICT", "framing.chunk-syntax: chunk data is not followed by CRLF"),
    ("HPE_INVALID_TRANSFER_ENCODING", "framing.chunked-once: chunked is not the single, final coding"),
    ("HPE_UNEXPECTED_CONTENT_LENGTH", "framing.no-te-with-cl: Content-Length beside Transfer-Encoding"),
    ("peer closed connection", "framing.complete: the connection closed before the body's end"),
    ("other side closed", "framing.complete: the connection closed before the body's end"),
    ("Response ended prematurely", "framing.complete: the connection closed before the body's end"),
    ("Content-Length", "framing.no-te-with-cl or a bad Content-Length"),
    ("ReadTimeout", "framing.complete: the body did not end within the read timeout"),
    ("Read timed out", "framing.complete: the body did not end within the read timeout"),
    ("no data for", "framing.complete: the body did not end within the read timeout"),
    ("text/event-stream", "framing.content-type: the Content-Type is not text/event-stream"),
]


def header_fault(rec) -> str | None:
    """A framing fault the response's own head shows."""
    te = rec.header_list("transfer-encoding")
    lines = rec.header_values("transfer-encoding")
    if te.count("chunked") > 1:
        if len(lines) > 1:
            return (f"framing.chunked-once: Transfer-Encoding is sent on {len(lines)} header lines "
                    f"({' / '.join(lines)}), which together apply chunked {te.count('chunked')} times")
        return f"framing.chunked-once: Transfer-Encoding: {', '.join(te)} applies chunked twice"
    if te and te[-1] != "chunked":
        return (f"framing.chunked-once: Transfer-Encoding: {', '.join(te)} does not end in chunked, so the body "
                "can only end with the connection")
    if te and rec.header_values("content-length"):
        return "framing.no-te-with-cl: Content-Length beside Transfer-Encoding"
    return None


# What a client's decoder says when a content coding breaks (zlib, Node's zlib, brotli, zstandard).
CODING_ERRORS = ("decod", "z_data_error", "incorrect header check", "invalid block type", "invalid stored block",
                 "unexpected end of file", "decompress", "brotli", "zstd")


def explain(error: str, rec=None) -> str:
    """Which framing or coding fault is behind a client's error."""
    found = header_fault(rec) if rec is not None else None
    if rec is not None and any(w in error.lower() for w in CODING_ERRORS):
        codings = ", ".join(content_codings(rec)) or "none"
        return (f"the content coding (Content-Encoding: {codings}) could not be decoded"
                + (f"; {found}" if found else ": the encoded bytes are not a valid stream of that coding "
                                               "(delivery.compressed says where decoding stopped)"))
    if found:
        return found
    for needle, why in EXPLANATIONS:
        if needle.lower() in error.lower():
            return why
    return "see the framing checks of this target"


UNITS = {"sse": "events", "ndjson": "lines"}


def _lags(run, target) -> dict:
    """Per event: how long after the client's own transport (``hold``) and after the raw recorder
    (``raw``) it reached the caller, in seconds (lists over the events both saw)."""
    times = run.event_times()
    caller = times.get("caller", [])
    out = {}
    for key, other in (("hold", times.get("wire")), ("raw", times.get("raw"))):
        if other:
            out[key] = [c - o for c, o in zip(caller, other) if c is not None and o is not None]
    return out


def _lag_text(values: list[float], what: str) -> str:
    return (f"{what}: median {ms(statistics.median(values))}, max {ms(max(values))} over {len(values)} "
            "events") if values else ""


CHUNK_LINE = re.compile(rb"[0-9A-Fa-f]{1,16}(;[^\r\n]*)?\r\n")


def _read_anyway(rec) -> tuple[bool, str]:
    """A client that read a response whose head shows a framing fault: (the content it handed on
    is wrong, what to say). Chunked applied twice and decoded once leaves the inner chunk framing
    in what the caller gets."""
    fault = header_fault(rec)
    if fault is None:
        return False, ""
    if rec.header_list("transfer-encoding").count("chunked") > 1 and CHUNK_LINE.match(rec.body):
        return True, (f"it read the response without an error although {fault}, decoded chunked once and handed "
                      f"the inner chunk framing to the caller as content (it starts {rec.body[:24]!r})")
    return False, f"; it read the response although {fault}"


def _unit_keys(rec, profile: str) -> list[tuple[tuple, float]]:
    """((content, occurrence), completion time in s) of each unit of a recording, in order: an SSE
    event by its data (as every client writes it back), an NDJSON line or a countdown element by
    its text. Matching by content, not by position, keeps two exchanges of a stream that is not
    timed from its request (a live feed) from being compared event for event."""
    body = rec.body
    starts = [p.offset for p in rec.pieces]
    seen: dict = {}
    out = []
    for a, b in inferred.unit_spans(rec, profile):
        block = body[a:b + 1]
        if profile == "sse":
            text = b"\n".join(line.partition(b":")[2].removeprefix(b" ") for line in re.split(rb"\r\n|\n|\r", block)
                              if line.partition(b":")[0] == b"data")
        else:
            text = block.strip()
        i = bisect.bisect_right(starts, b) - 1
        if i < 0:
            continue
        t = rec.pieces[i].t
        seen[text] = seen.get(text, 0) + 1
        out.append(((text, seen[text]), t))
    return out


def behind_raw(run, target) -> dict | None:
    """How far behind the raw recorder's GET the caller got the units both got (matched by
    content): {"lags", "median", "limit", "units"}, or None when there is nothing to compare (no
    raw GET, plain bytes, fewer than two units in common). Times count from each exchange's
    response head (a client's clock may start before it connects). The limit is half the producer's
    interval (given, the probe's own, else the raw GET's own pace), at least the schedule-free
    rule's cut-open gap (max(250 ms, two noise windows): a unit that late was held, not read
    slowly); with no pace at all, a hold's silence (``inferred.FreeMargins``)."""
    ref, rec = run.reference, run.primary
    if ref is None or ref.error or not ref.pieces or not rec.pieces:
        return None
    d = target.delivery(ref)
    if d.profile not in ("sse", "ndjson", "countdown"):
        return None
    # from each exchange's own response head: a client's clock may start before it connects
    shift = (rec.head_t - ref.head_t) if rec.head_t is not None and ref.head_t is not None else 0.0
    raw = dict(_unit_keys(ref, d.profile))
    lags = [t - raw[key] - shift for key, t in _unit_keys(rec, d.profile) if key in raw]
    if len(lags) < 2:
        return None
    rtt = max(rec.connect_s or 0.0, ref.connect_s or 0.0)
    interval = d.interval if d.interval is not None else inferred.pace(d.free) if d.free is not None else None
    free = inferred.FreeMargins(rtt)
    limit = max(0.5 * interval, free.split_gap) if interval else free.hold_silence
    return dict(lags=lags, median=statistics.median(lags), limit=limit, units=len(lags),
                interval=interval, given=d.interval is not None)


def _lag_metrics(lags: dict) -> dict:
    m = {}
    for key, name in (("hold", "client_hold"), ("raw", "lag_vs_raw")):
        values = lags.get(key)
        if values:
            m[f"{name}_median_s"] = round(statistics.median(values), 4)
            m[f"{name}_max_s"] = round(max(values), 4)
    return m


def _where_held(run, target, name: str) -> str:
    """Why the caller's view is held: the client, the content coding it asked for, or the server."""
    rec = run.primary
    codings = content_codings(rec)
    wire, note = run.plain_wire()
    lags = _lags(run, target)
    if wire is not None and wire.pieces:
        wire_verdict, wire_seen, _ = streams_on_time(wire, target)
        if wire_verdict == "pass":
            held = _lag_text(lags.get("hold", []), "held in the client")
            return ("the client holds it, not the server: the bytes reached the socket of " + name + " on time"
                    + (f" ({held})" if held else "") + (f". {run.hint}" if run.hint else ""))
    ref = run.reference
    ref_ok = None
    if ref is not None and 200 <= (ref.status or 0) < 300:
        ref_verdict, ref_seen, _ = streams_on_time(ref, target)
        ref_ok = None if ref_verdict == "warn" else ref_verdict == "pass"
    asked = run.request_header("accept-encoding")
    if codings:
        coding = ", ".join(codings)
        under = (f"the hold is under {coding}: asked with {name}'s default Accept-Encoding: {asked or '(none)'}, "
                 f"the server answered Content-Encoding: {coding} and its encoded bytes came held")
        if ref_ok:
            return under + ("; the same URL read with Accept-Encoding: identity (the raw recorder's GET) streams, so "
                            "the compressing layer holds it (it must flush each write; delivery.compressed judges it)")
        if ref_ok is False:
            return under + "; the raw recorder's identity GET is held too, so the server holds it as well"
        return under + "; no identity GET was recorded to compare with" + (f" ({note})" if note else "")
    if ref_ok is False:
        return "the server (or a hop before the client) holds it: the raw recorder's GET is held as well (delivery.progressive)"
    if ref_ok and wire is None:
        return ("the client holds it, not the server: the raw recorder's GET of the same URL streams"
                + (f". {run.hint}" if run.hint else ""))
    if ref_ok:
        return "the raw recorder's GET of the same URL streams; this client's exchange was held on the way"
    return run.hint or "no raw recording was made to compare with"


def lost_where(run, target, name: str) -> str:
    """Where the units a client's caller lacks were lost: in the content coding its transport
    received (where decoding stopped), in its network layer's own decoding, or between its
    transport and its caller."""
    wire = run.wire
    if wire is None or wire.error or not wire.pieces:
        return ""
    if content_codings(wire):
        d = decode(wire)
        if d.fault:
            return (f"{name}'s transport received {wire.body_bytes} bytes with Content-Encoding: {d.coding}: "
                    + "; ".join(d.notes) + " (delivery.compressed judges the coding)")
        return f"{name}'s transport received the {d.coding} body whole; its decoder or reader dropped the rest"
    coding = ", ".join(content_codings(run.primary))
    early = compare(wire, run.reference, target.profile or target.profile_for(wire), target.countdown_length)[0]
    if early is not None and coding:
        return (f"{name}'s network layer had already decoded only {early.got} from the Content-Encoding: {coding} "
                "body: its decoder stopped where the coded stream ended or broke (delivery.compressed says where)")
    if early is not None:
        return f"{name}'s network layer already had only {early.got}"
    return f"{name}'s transport received {wire.body_bytes} bytes; the rest was dropped between it and the caller"


def loss_of(run, target):
    """Fewer units reached the caller than the raw recorder's GET of the same run delivered
    (``conformance.analysis.losses.Loss``), or None."""
    rec = run.primary
    return compare(rec, run.reference, target.profile or target.profile_for(rec), target.countdown_length)[0]


def judge_client(run, target, name: str) -> Finding:
    """A client read the whole response, and each event reached the caller on time."""
    if run.skip:
        return skipped(run.skip)
    rec = run.primary
    if rec.error:
        return Finding("error", rec.error)
    units = UNITS.get(target.profile, "pieces")
    how = f"{run.client}, {run.api}"
    asked = run.request_header("accept-encoding")
    codings = content_codings(rec)
    got = f"Content-Encoding: {', '.join(codings)}" if codings else "no Content-Encoding"
    heads = f"asked Accept-Encoding: {asked or '(not sent)'}, got {got}"
    count = len(target.delivery(rec).found_groups) if rec.pieces else 0
    read = f"{count} {units}" if units != "pieces" else f"{rec.body_bytes} bytes in {len(rec.pieces)} pieces"
    metrics = dict(client=run.client, content_encoding=", ".join(codings) or "identity",
                   caller_pieces=len(rec.pieces), body_bytes=rec.body_bytes)
    loss = loss_of(run, target)
    if loss is not None:
        metrics.update(units_caller=loss.got, units_wire=loss.wire, units_lost=loss.lost, units_what=loss.what)
    if rec.strict_error:
        got = (f" (the caller got {loss.got} of the {loss.wire} {loss.what} the raw recorder's GET delivered)"
               if loss is not None else "")
        return failed(f"{how} ({heads}) raised {rec.strict_error} after {rec.body_bytes} body bytes{got}; cause: "
                      f"{explain(rec.strict_error, rec)}", f"{name} reads the whole response", **metrics)
    if not 200 <= (rec.status or 0) < 300:
        return failed(f"{how} got HTTP {rec.status} {rec.reason}", "a 2xx response", **metrics)
    if loss is not None:
        where = lost_where(run, target, name)
        return Finding("fail", f"{how} ({heads}): the caller got {loss}: {loss.lost} lost (the raw recorder's GET of "
                       f"the same URL in the same run delivered {loss.wire})" + (f"; {where}" if where else ""),
                       f"{name}'s caller gets every one of the {loss.what} the server sends", metrics, content_lost=True)
    wrong, anyway = _read_anyway(rec)
    if wrong:
        return failed(f"{how} ({heads}): {anyway}", f"{name} hands the caller the response's content", **metrics)
    verdict, observed, more = streams_on_time(rec, target)
    ok = verdict == "pass"
    lags = _lags(run, target)
    metrics.update(more, **_lag_metrics(lags))
    lag = "; ".join(t for t in (_lag_text(lags.get("raw", []), "behind the raw recorder"),
                                _lag_text(lags.get("hold", []), "held in the client")) if t)
    expected = f"each of the {units} reaches the caller on the producer's schedule ({name} as users run it)"
    late = behind_raw(run, target)
    if late is not None:
        metrics.update(lag_vs_raw_limit_s=round(late["limit"], 4))
    if verdict != "fail" and late is not None and late["median"] > late["limit"]:
        pace = (f"half the producer's interval ({ms(late['interval'])})" if late["given"] else
                f"half the raw GET's own pace ({ms(late['interval'])} between releases)" if late["interval"] else
                "a hold's silence: no pace to go by")
        return failed(f"{how} ({heads}): the caller got {read} late: {late['units']} {units} matched by content "
                      f"reached it a median {ms(late['median'])} (at most {ms(max(late['lags']))}) after the raw "
                      f"recorder's GET of the same URL got them (each counted from its response head), more than "
                      f"{ms(late['limit'])} ({pace}, at least 250 ms and two noise windows); on their own they came evenly ({observed}). "
                      f"{_where_held(run, target, name)}", expected, **metrics)
    if ok:
        return passed(f"{how} ({heads}): {read} reached the caller on time" + (f"; {lag}" if lag else "") + anyway,
                      expected, **metrics)
    if verdict == "warn":   # the schedule-free rule cannot decide on what the caller got
        return Finding("warn", f"{how} ({heads}): {read} reached the caller; undecided: {observed}", expected, metrics)
    return failed(f"{how} ({heads}): the caller got {read} held: {observed}. {_where_held(run, target, name)}",
                  expected, **metrics)


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
    first = CHECKS["delivery.first-byte"].judge_fn(rec, target)
    progressive = CHECKS["delivery.progressive"].judge_fn(rec, target)
    observed = (f"{len(rec.pieces)} DATA frames, {rec.body_bytes} bytes, ended {rec.end}; "
                f"{first.observed}; {progressive.observed}")
    ok = first.verdict == "pass" and progressive.verdict == "pass" and rec.end in ("complete", "watched")
    metrics = {**first.metrics, **progressive.metrics, "data_frames": len(rec.pieces)}   # shared names: progressive's
    return Finding("pass" if ok else "fail", observed, f"{first.expected}; {progressive.expected}", metrics)
