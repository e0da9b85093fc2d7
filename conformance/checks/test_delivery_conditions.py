"""Delivery under real conditions — HTTP/1.0, several streams, a large body, a client that goes
away, and a second exchange on the same connection (compression: ``test_delivery_compressed``).

Each judge reads one scenario of ``conformance.scenarios.conditions`` and applies the same burst analysis
and margins as the plain delivery checks (``conformance.analysis.timing``, or the schedule-free rule of
``conformance.analysis.inferred``) to what that condition delivers: the HTTP/1.0 body, every one of
several streams on its own.
"""
import conformance.scenarios.compressed  # noqa: F401 - registers the get-compressed scenario persistent-reuse reads
from conformance.analysis.figures import ms
from conformance.analysis.inferred import FreeMargins
from conformance.analysis.timing import BodyMargins, Margins
from conformance.checks._judging import as_finding, streams_on_time
from conformance.checks.catalogue import MUST, SHOULD, Finding, check, failed, passed, skipped
from conformance.scenarios.conditions import MIB, stream_target, writes_after


def mib(n) -> str:
    return "-" if n is None else f"{n / MIB:.1f} MiB"


def size(n: int) -> str:
    return f"{n / 1024 ** 3:.2f} GiB" if n >= 1024 ** 3 else f"{n / MIB:.1f} MiB"


@check("delivery.http10", SHOULD, "suite rule (RFC 9112 §6.1, §6.3)",
       "An HTTP/1.0 client, which cannot receive chunked framing, still gets the content as it is "
       "produced: a close-delimited body can stream as well as a chunked one.", scenario="get-http10", timed=True, held_by_a_hold=True)
def test_http10(rec, target):
    """An HTTP/1.0 client still gets the content progressively."""
    verdict, observed, metrics = streams_on_time(rec, target)
    observed = f"HTTP/1.0 request, {rec.framing} framing: {observed}"
    return as_finding(verdict, observed, "the content progressively, as over HTTP/1.1", **metrics)


@check("framing.persistent-reuse", SHOULD, "RFC 9112 §9.3",
       "HTTP/1.1 defaults to the use of \"persistent connections\", allowing multiple requests and "
       "responses to be carried over a single connection. [...] HTTP implementations SHOULD support "
       "persistent connections.", scenario="get-compressed")
def test_persistent_reuse(seq, target):
    """A persistent connection carries a second exchange after a streamed response."""
    first = seq.exchanges[0]
    if "close" in first.header_list("connection"):
        return skipped("the server said Connection: close on the streamed response, so the connection is not reused")
    if first.http_version == "1.0":
        return skipped("the server answered HTTP/1.0, whose connections close after the response")
    if first.end != "complete":
        return skipped(f"the streamed response did not complete ({first.end}), so the connection cannot be "
                       "reused (framing.complete judges that)")
    if len(seq.exchanges) < 2 and getattr(target, "method", "GET") != "GET":
        return skipped(f"the second exchange (a HEAD) is made only after a GET; this target is asked with "
                       f"{target.method}, and a second {target.method} is not sent for it")
    if len(seq.exchanges) < 2:
        return failed("the second exchange was not made", "a second exchange on the same connection")
    second = seq.exchanges[1]
    expected = f"a complete response to a {second.method} on the same connection"
    extra = f"; {first.after_end_bytes} bytes followed the first response" if first.after_end_bytes else ""
    read = "" if first.parser == "h11" else " (read by the tolerant reader: h11 rejected it)"
    if second.error or second.status is None:
        return failed(f"after the streamed response{read} completed, the {second.method} on the same connection "
                      f"got no response: {second.error or second.end}{extra}", expected)
    if second.end != "complete":
        return failed(f"the {second.method} on the same connection got HTTP {second.status} but the response "
                      f"did not complete ({second.end}){extra}", expected)
    return passed(f"after the streamed response{read} completed, the {second.method} on the same connection got "
                  f"HTTP {second.status} {second.reason} at {ms(second.head_t)}{extra}", expected,
                  second_status=second.status, second_head_s=round(second.head_t, 4))


@check("delivery.concurrent", MUST, "suite rule (RFC 9112 §9)",
       "Several streams at once each progress on their own, as a page that opens several (the "
       "seed's holder page opens five) needs: every stream's first bytes arrive on its own "
       "producer's schedule, never after another stream's end.", scenario="concurrent", timed=True, held_by_a_hold=True)
def test_concurrent(result, target):
    """Several streams at once each arrive progressively; none waits for another."""
    problems, seen, metrics = [], [], {}
    streams = [s for s in result.streams if s.rec is not None]
    ends = [(s, s.at(s.rec.end_t)) for s in streams if s.rec.end_t is not None and s.rec.end in ("complete", "closed")]
    for n, s in enumerate(streams, 1):
        rec = s.rec
        key = "stream%d" % n if s.kind == "stream" else "iframe%d" % (n - sum(x.kind == "stream" for x in streams))
        if rec.error or not (200 <= (rec.status or 0) < 300):
            problems.append(f"{s.label}: {rec.error or f'HTTP {rec.status} {rec.reason}'}")
            continue
        t = target if s.kind == "stream" else stream_target(target, s.url)
        verdict, observed, m = streams_on_time(rec, t)
        first = rec.first_body_t()
        metrics[f"{key}_first_byte_s"] = round(first, 4) if first is not None else None
        first_at = s.at(first)
        waited = []
        if first_at is not None:
            waited = [o for o, end in ends if o is not s and s.started < end <= first_at]
        if verdict != "fail":
            # On its own the stream may look fine (without a schedule, a late start is not a hold),
            # but a stream that got nothing for a hold's silence (1 s) after its request, until
            # another had ended, a hold's silence after that one's first bytes, was served after
            # it, not beside it.
            # (the thread that finished another stream may send this one's first bytes before
            # that stream's end has reached us: an end up to the noise window later counts)
            # The stream itself must have waited: its own first byte a hold's silence after its
            # own request (an iframe opened late, as the holder page names it, has not waited).
            margins = FreeMargins(rtt=rec.connect_s or 0.0)
            waited_itself = first is not None and first - margins.rtt >= margins.hold_silence
            served_after = [o for o, end in ends if waited_itself and o is not s and first_at is not None
                            and s.started < end <= first_at + margins.window
                            and o.at(o.rec.first_body_t()) is not None
                            and first_at - o.at(o.rec.first_body_t()) >= margins.hold_silence]
            if not served_after:   # a stream the rule cannot decide on is not counted against the server
                seen.append(f"{s.label} {ms(first)}" + (" (undecided)" if verdict == "warn" else ""))
                continue
            others = ", ".join(f"{o.label} (first bytes at {ms(o.rec.first_body_t())})" for o in served_after)
            observed = (f"its first body byte came {ms(first)} after its request, only when {others} "
                        "ended: served one after another, not side by side")
            waited = []
        why = observed
        if waited:
            why += f"; its first byte came after {', '.join(o.label for o in waited)} had ended"
        problems.append(f"{s.label}: {why}")
    firsts = [v for k, v in metrics.items() if v is not None]
    metrics.update(streams=sum(s.kind == "stream" for s in streams), iframes=sum(s.kind == "iframe" for s in streams))
    if firsts:
        metrics["max_first_byte_s"] = max(firsts)
    holder = ""
    if result.holder is not None or result.holder_note:
        frames = [s for s in streams if s.kind == "iframe"]
        if frames:
            named = ", ".join(f"{s.label} named at {ms(s.named_at)}" for s in frames)
            end = result.holder.end_t if result.holder else None
            holder = f"; the holder page / streamed for {ms(end)} and named {len(frames)} iframes ({named}), each opened at once"
        if result.holder_note:
            holder += f"; {result.holder_note}"
    expected = ("every stream passes delivery.first-byte and delivery.progressive on its own; no first byte "
                "waits for another stream's end")
    if problems:
        return failed(f"{len(problems)} of {len(streams)} streams did not progress on their own: "
                      + " | ".join(problems) + holder, expected, **metrics)
    return passed(f"{len(streams)} streams at once, each on time (first bytes: {', '.join(seen)}){holder}",
                  expected, **metrics)


@check("delivery.large-body", MUST, "suite rule (RFC 9112 §6.3)",
       "A large body streams: its first byte does not wait for the whole body, neither side's memory "
       "grows with it, and all of it arrives.", scenario="large", needs_success=False, timed=True)
def test_large_body(dl, target):
    """A large body streams with an early first byte and bounded memory on both sides."""
    if dl.skip:
        return skipped(dl.skip)
    rec = dl.primary
    if not 200 <= (rec.status or 0) < 300:
        return Finding("error", f"{rec.url} answered HTTP {rec.status} {rec.reason}", "a 2xx response")
    n = rec.body_bytes
    margins = BodyMargins(rec.connect_s or 0.0)
    duration = dl.duration_s if dl.duration_s is not None else (rec.end_t or 0.0)
    throughput = n / MIB / duration if duration > 0 else None
    client_growth = dl.client_peak - dl.client_base
    server_growth = None if dl.server_peak is None or dl.server_base is None else dl.server_peak - dl.server_base
    metrics = {"bytes": n, "first_byte_s": None if dl.first_byte_s is None else round(dl.first_byte_s, 4),
               "duration_s": round(duration, 3),
               "throughput_mib_s": None if throughput is None else round(throughput, 1),
               "client_peak_rss_mib": round(dl.client_peak / MIB, 1),
               "client_rss_growth_mib": round(client_growth / MIB, 1)}
    if server_growth is not None:
        metrics.update(server_peak_rss_mib=round(dl.server_peak / MIB, 1),
                       server_rss_growth_mib=round(server_growth / MIB, 1))
    want = dl.expected if dl.expected is not None else dl.requested
    problems = []
    if dl.problem:
        problems.append(f"the body could not be read on: {dl.problem}")
    if rec.end not in ("complete", "closed") or (want is not None and n < want):
        problems.append(f"the body is short: {n} of {want if want is not None else 'an unknown number of'} "
                        f"bytes arrived ({rec.end} after {duration:.2f} s)")
    elif dl.requested is not None and n != dl.requested:
        problems.append(f"{n} bytes arrived where {dl.requested} were asked for")
    limit_first = margins.first_byte_limit(duration)
    if dl.first_byte_s is None:
        problems.append("no body byte arrived")
    elif dl.first_byte_s > limit_first:
        problems.append(f"the first byte waited {ms(dl.first_byte_s)}, more than half the {duration:.2f} s "
                        f"transfer: the body was held before it was sent")
    limit = margins.memory_limit(n)
    if client_growth > limit:
        problems.append(f"the client's memory grew by {mib(client_growth)} (allowed {mib(limit)})")
    if server_growth is not None and server_growth > limit:
        problems.append(f"the server's memory grew by {mib(server_growth)} during the download (allowed "
                        f"{mib(limit)}): it holds the body")
    speed = f" ({throughput:.0f} MiB/s)" if throughput else ""
    server = "" if server_growth is None else f", server {mib(dl.server_peak)} (+{mib(server_growth)})"
    observed = (f"{size(n)} in {duration:.2f} s{speed}, first byte after {ms(dl.first_byte_s)}; peak resident "
                f"memory: client {mib(dl.client_peak)} (+{mib(client_growth)}){server}")
    if not margins.memory_telling(n):
        observed += f"; a body under {mib(2 * margins.memory_floor)} is too small to show memory growth"
    expected = (f"all of the body, the first byte within {ms(limit_first)}, memory growth under {mib(limit)} on "
                "each side")
    if problems:
        return failed("; ".join(problems) + f" — {observed}", expected, **metrics)
    return passed(observed, expected, **metrics)


@check("delivery.disconnect", SHOULD, "suite rule",
       "When the client goes away, the server stops producing: the producer writes at most twice "
       "more (its next write is still accepted, the one after fails), about two of its intervals.",
       scenario="disconnect", needs_success=False, watches=True, timed=True)
def test_disconnect(probe, target):
    """When the client goes away, the server stops producing."""
    if probe.skip:
        return skipped(probe.skip)
    rec = probe.primary
    if not probe.logged:
        return skipped("the server does not log its pieces (\"piece <monotonic> <len>\" on stderr), so when it "
                       "stops producing cannot be seen")
    if probe.closed_at is None:
        return skipped(f"the response ended ({rec.end}) before the client could go away after its first bytes")
    if target.interval is None:   # the scenario skips this itself; a probe handed over anyway is not judged
        return skipped("the producer's schedule is not known (give --interval): how many writes after a "
                       "disconnect are too many cannot be said")
    margins = Margins(target.interval, rec.connect_s or 0.0)
    allowed = margins.disconnect_writes
    span = target.expected_span()
    if span and round((span - probe.closed_at) / target.interval) <= allowed:
        return skipped(f"the producer's schedule has at most {allowed} writes left after the disconnect: too few "
                       "to tell stopping from finishing")
    groups = writes_after(probe.times, 0.0, margins.burst_gap)
    pieces = [t for g in groups for t in g]
    metrics = dict(closed_at_s=round(probe.closed_at, 4), pieces_after=len(pieces), writes_after=len(groups),
                   last_piece_after_s=round(max(pieces), 4) if pieces else None,
                   allowed_writes=allowed, watched_s=round(probe.watched_s, 3))
    expected = (f"at most {allowed} writes after the client went away (pieces less than {ms(margins.burst_gap)} "
                "apart are one write)")
    when = ", ".join(ms(g[0]) for g in groups)
    seen = (f"the client closed the connection {ms(probe.closed_at)} after the request, after the first body bytes; "
            f"in the {probe.watched_s:.2f} s watched the server wrote {len(groups)} more times"
            + (f" ({len(pieces)} pieces, at {when} after the close)" if groups else ""))
    if len(groups) > allowed:
        return failed(f"{seen}: it kept producing for nobody", expected, **metrics)
    return passed(f"{seen}, then stopped", expected, **metrics)
