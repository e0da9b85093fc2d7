"""Verdict helpers shared by check modules, which never import each other (the import contract in
pyproject.toml): the judges of ``delivery.first-byte`` and ``delivery.progressive`` (which the
condition, client, HTTP/2 and compression checks apply to what they recorded), a client's and a
page script's reading (``judge_client``), and the browser's page (``judge_render``, which the other
engines' checks start from). Each returns a ``Finding`` (``conformance.checks.catalogue``)."""
import bisect
import re
import statistics
from dataclasses import replace

from conformance.analysis import inferred
from conformance.analysis.figures import ms
from conformance.analysis.inferred import DECIDE
from conformance.analysis.losses import compare
from conformance.analysis.timing import Margins, median
from conformance.analysis.units import countdown_count
from conformance.checks.catalogue import Finding, failed, passed, skipped
from conformance.scenarios.browser import page_record, progress, timeline
from conformance.wire.codings import content_codings, decode

WRITES = {"countdown": "the countdown's {n} timed writes", "sse": "{n} events", "ndjson": "{n} lines",
          "bytes": "{n} writes"}


def notes(d) -> str:
    return ("; " + "; ".join(d.notes)) if d.notes else ""


def free_finding(d, first_only: bool, expected: str) -> Finding:
    """The schedule-free rule's verdict as a finding (no --interval given)."""
    j = inferred.judge(d.free, first_only=first_only)
    observed = f"{j.why} (no --interval: judged by the schedule-free rule){notes(d)}"
    return Finding(j.verdict, observed, expected, dict(j.metrics, first_byte_s=_r(d.first_body_t), rtt_s=_r(d.rtt)))


def _r(x):
    return None if x is None else round(x, 4)


def judge_first_byte(rec, target) -> Finding:
    """``delivery.first-byte``'s judge: the first body bytes are not held until the producer finishes."""
    d = target.delivery(rec)
    if d.first_body_t is None:
        return failed(f"no body bytes arrived ({rec.end})", "body bytes from the producer's first write")
    if d.free is not None:
        return free_finding(d, True, f"the first {inferred.WORDS[d.profile][0]} not in a release held back "
                            "(a release of 4 or more after a silence of a second or more)")
    allowance = d.margins.first_byte_allowance(d.span)
    late = d.first_body_t - d.rtt
    observed = (f"first body byte {ms(d.first_body_t)} after the request (head at {ms(d.head_t)}, round trip "
                f"{ms(d.rtt)}); the producer writes first at 0 s and last at {d.span:g} s "
                f"(interval {ms(d.interval)}){notes(d)}")
    expected = f"within {ms(allowance)} after one round trip"
    metrics = dict(first_byte_s=round(d.first_body_t, 4), rtt_s=round(d.rtt, 4), allowance_s=round(allowance, 4))
    return (passed if late <= allowance else failed)(observed, expected, **metrics)


def judge_progressive(rec, target) -> Finding:
    """``delivery.progressive``'s judge: the body arrives in separate bursts, not all at once or in a few big ones."""
    d = target.delivery(rec)
    if not d.bursts:
        return failed(f"no body bytes arrived ({rec.end})", "body bytes in separate bursts")
    if d.free is not None:
        finding = free_finding(d, False, "no release held back: units arrive as they complete "
                               "(docs/guide.md, \"Timing margins\", the schedule-free rule)")
        need = target.expect_bursts
        if need and finding.verdict == "pass" and len(d.free.releases) < need:   # --expect-bursts
            return failed(f"{finding.observed}; {len(d.free.releases)} releases where --expect-bursts asks for "
                          f"at least {need}", f"at least {need} separate releases", **finding.metrics)
        return finding
    gap = d.margins.burst_gap
    if d.group_times:
        carrying = [b for b in d.bursts if b.groups]
        largest = max(carrying, key=lambda b: len(b.groups))
        allowed = d.margins.groups_per_burst()
        what = WRITES.get(d.profile, WRITES["bytes"]).format(n=d.expected_groups)
        observed = (f"{what} arrived in {len(carrying)} bursts "
                    f"(a burst = arrivals less than {ms(gap)} apart); the largest burst, at {largest.start:.3f} s, "
                    f"carried {len(largest.groups)} of them{notes(d)}")
        expected = f"no burst carries more than {allowed} of the {what}"
        metrics = dict(bursts=len(carrying), expected_bursts=d.expected_groups,
                       largest_burst_writes=len(largest.groups), allowed_per_burst=allowed)
        ok = len(largest.groups) <= allowed and len(carrying) >= min(2, d.expected_groups)
        return (passed if ok else failed)(observed, expected, **metrics)
    need = d.expected_groups
    observed = f"the body arrived in {len(d.bursts)} bursts (arrivals less than {ms(gap)} apart){notes(d)}"
    metrics = dict(bursts=len(d.bursts), expected_bursts=need)
    return (passed if len(d.bursts) >= need else failed)(observed, f"at least {need} bursts", **metrics)


def streams_on_time(rec, target) -> tuple[str, str, dict]:
    """``delivery.first-byte`` and ``delivery.progressive`` on one recording: (the worse verdict
    of the two: pass, warn or fail; what was seen; their metrics)."""
    first = judge_first_byte(rec, target)
    progressive = judge_progressive(rec, target)
    verdicts = {first.verdict, progressive.verdict}
    verdict = "fail" if "fail" in verdicts else "warn" if "warn" in verdicts else "pass"
    bad = [f for f in (first, progressive) if f.verdict != "pass"] or [first, progressive]
    if len(bad) == 2 and bad[0].observed == bad[1].observed:
        bad = bad[:1]
    observed = "; ".join(f.observed + (f" (expected {f.expected})" if f.verdict != "pass" and f.expected else "")
                         for f in bad)
    return verdict, observed, {**first.metrics, **progressive.metrics}


def as_finding(verdict: str, observed: str, expected: str, **metrics) -> Finding:
    return Finding(verdict, observed, expected, metrics)


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


def at(times) -> str:
    return ", ".join(f"{t:.3f}" for t in times)


def bursts(p, what: str) -> str:
    n, largest = len(p.bursts), p.largest
    return (f"{what} in {n} burst{'s' * (n != 1)}, the largest (at {largest.start:.3f} s) carrying "
            f"{len(largest.groups)} of them (at {at(t for t, _ in p.times)} s)")


def hold_times(page) -> list[tuple[str, float]]:
    """(group, seconds from its bytes reaching Chromium's network stack to its entering the DOM)."""
    return [(k, round(g["inserted_s"] - g["arrived_s"], 4)) for k, g in page.groups.items()
            if g.get("arrived_s") is not None and g.get("inserted_s") is not None]


def judge_render(rec, target) -> Finding:
    """``browser.progressive-render``'s judge (and the engines'): headless Chromium gets the content item by item,
    event by event, not all at the end."""
    if rec.skip_reason:
        return Finding("skip", rec.skip_reason)
    if rec.stream is not None:
        return judge_stream(rec, target)
    page = rec.countdown
    if page is None:
        return Finding("error", "the browser recorded no page")
    if page.status is not None and not 200 <= page.status < 300:
        return Finding("error", f"HTTP {page.status} {page.reason} in {engine_of(rec)}", "a 2xx response")
    count, interval = rec.count, rec.interval_s or target.interval or target.pace_s
    if count is None:
        return Finding("skip", "not a countdown page the suite can count (no /N in its URL and no --count)")
    if interval is None:   # no schedule given, and the wire's own GET showed no pace to go by
        groups = len(timeline(page, count, "inserted"))
        return Finding("warn", f"{rec.browser or 'Chromium'} put {groups} of the countdown's {count + 2} timed writes in "
                       "the DOM, but the producer's interval is unknown (none given, and the raw recorder's GET "
                       f"showed no pace of its own): nothing to judge the page's timing against; {DECIDE}",
                       "the countdown's timed writes in separate bursts")
    nav = page.navigation
    rtt = max(0.0, (nav.get("connect_end") or 0) - (nav.get("connect_start") or 0))
    margins = Margins(interval, rtt)
    expected = count + 2
    dom = progress(page, count, margins, "inserted")
    paint = progress(page, count, margins, "painted")
    holds = hold_times(page)
    browser = rec.browser or "Chromium"

    notes = []
    if holds:
        worst = max(holds, key=lambda h: h[1])
        arrived = sorted(g["arrived_s"] for g in page.groups.values() if g.get("arrived_s") is not None)
        notes.append(f"Chromium's network service handed each group's bytes to the page (DevTools "
                     f"Network.dataReceived) at {at(arrived)} s; from there to the DOM took "
                     f"{ms(median([h for _, h in holds]))} (median), at most {ms(worst[1])} ({worst[0]})")
    if len(dom.times) < expected:
        notes.append(f"{expected - len(dom.times)} of the {expected} groups never appeared in the page"
                     + (f" (its text starts {page.text_start[:80]!r})" if page.text_start else ""))
    if page.load_error:
        notes.append(f"the navigation ended with: {page.load_error}")
    if nav.get("response_start") is not None:
        notes.append(f"navigation timing: response {ms(nav['response_start'])} to {ms(nav.get('response_end'))}, "
                     f"first paint {ms(page.first_paint_s)}")
    if page.content_type is not None:
        notes.append(f"Content-Type {page.content_type!r}")
    holder = holder_note(rec, margins)
    if holder:
        notes.append(holder)
    tail = ("; " + "; ".join(notes)) if notes else ""

    metrics = dict(expected_bursts=expected, groups_seen=len(dom.times), dom_bursts=len(dom.bursts),
                   paint_bursts=len(paint.bursts), allowed_per_burst=dom.allowed,
                   largest_dom_burst=len(dom.largest.groups) if dom.bursts else 0,
                   largest_paint_burst=len(paint.largest.groups) if paint.bursts else 0,
                   first_paint_s=page.first_paint_s,
                   last_group_inserted_s=dom.times[-1][0] if dom.times else None,
                   browser_hold_max_s=max((h for _, h in holds), default=None))
    expected_text = (f"the countdown's {expected} timed writes enter the DOM and are painted in separate bursts "
                     f"(a burst = times less than {ms(margins.burst_gap)} apart), none carrying more than "
                     f"{dom.allowed} of them")
    if len(dom.times) < 2:
        return failed(f"{browser} showed {len(dom.times)} of the countdown's {expected} timed writes{tail}",
                      expected_text, **metrics)
    how = "Element Timing" if page.element_timing else "requestAnimationFrame"
    observed = f"{browser}: the countdown's {len(dom.times)} timed writes {bursts(dom, 'entered the DOM')}"
    observed += f"; {bursts(paint, f'were painted ({how})')}" if paint.times else "; no paint was recorded"
    ok = dom.ok and (paint.ok or not paint.times)
    return (passed if ok else failed)(observed + tail, expected_text, **metrics)


def holder_note(rec, margins) -> str:
    """The holder page's iframes, for the report (noted, not judged)."""
    h = rec.holder
    if h is None:
        return f"holder page: {rec.holder_note}" if rec.holder_note else ""
    if h.status is not None and not 200 <= h.status < 300:
        return f"holder page {h.url}: HTTP {h.status}"
    if not h.iframes:
        return f"holder page {h.url}: no iframes" + (f" ({h.load_error})" if h.load_error else "")
    parts = []
    for f in h.iframes:
        n = countdown_count(f["src"])
        if n is None:
            parts.append(f"{f['src']} (not a countdown)")
            continue
        p = progress(page_record(f["page"]), n, margins, "inserted")
        where = f"{f['src']} (in the DOM at {f['inserted_s']:.2f} s)"
        if not p.times:
            parts.append(f"{where}: nothing shown")
            continue
        parts.append(f"{where}: {len(p.times)}/{n + 2} groups in {len(p.bursts)} bursts from {p.times[0][0]:.2f} "
                     f"to {p.times[-1][0]:.2f} s, {'progressive' if p.ok else 'held'}")
    return f"holder page {h.url}, {len(h.iframes)} iframes: " + "; ".join(parts)


# What judge_client says of "the caller" and "the client", said of the page's script and Chromium.
REWORDS = (("reached the caller", "reached the page's script"), ("the caller got", "the page's script got"),
           ("held in the client", "after Chromium's network service had it"),
           ("the bytes reached the socket of Chromium on time",
            "Chromium's network service (DevTools) had them on time: the page's script got them late"))


def engine_of(rec) -> str:
    """The engine's name as its record says it ("Chromium", "WebKitGTK", "Firefox")."""
    return (rec.browser or "Chromium").split(" ")[0]


def judge_stream(rec, target):
    """An SSE, NDJSON or bytes stream as a page's script read it, judged as a client's caller is."""
    s = rec.stream
    if s.status is not None and not 200 <= s.status < 300:
        return Finding("error", f"HTTP {s.status} {s.reason} in {engine_of(rec)}", "a 2xx response")
    if target.profile is None:   # no profile given, none read from a GET: as the page read it
        target = replace(target, profile=s.profile)
    finding = judge_client(rec.client_run(target), target, engine_of(rec))
    observed = finding.observed
    for old, new in REWORDS:
        observed = observed.replace(old, new)
    notes = []
    if s.unheard:
        notes.append(f"{s.unheard} events DevTools saw reached no listener of the page (it listened for "
                     f"{', '.join(s.listened)}; a type first seen mid-stream is listened for from then on)")
    if s.end not in (None, "complete"):
        notes.append(f"the reading ended: {s.end}" + (f" after {s.end_s:.2f} s" if s.end_s is not None else "")
                     + (" (the watch window)" if s.end == "watched" else ""))
    notes.append(f"times: {s.clock}")
    finding.observed = observed + "; " + "; ".join(notes)
    codings = [v for k, v in s.response_headers if k.lower() == "content-encoding"]
    asked = next((v for k, v in s.request_headers if k.lower() == "accept-encoding"), None)
    finding.metrics.update(accept_encoding=asked, content_encoding=", ".join(codings) or "identity",
                           api=s.api, events_seen=len(s.events), network_pieces=len(s.network))
    return finding
