"""Delivery — does the body arrive as the producer writes it?

Judged against the producer's schedule (the countdown's, or ``--interval`` and
``--expect-bursts`` for other bodies) with the margins in ``conformance.analysis.timing.Margins``; without
an interval, by the schedule-free rule of ``conformance.analysis.inferred`` (its units: SSE events, NDJSON
lines, countdown items, reads), which says ``warn`` where the stream alone cannot decide. These are
the suite's own requirements; RFC 9112 §7.1 is what makes them possible: chunked framing lets a
sender transfer content of unknown length "as a series of chunks", so nothing obliges a server
or proxy to hold it.
"""
from conformance.analysis.figures import ms
from conformance.analysis.timing import median
from conformance.checks._judging import judge_first_byte, judge_progressive, notes
from conformance.checks.catalogue import INFO, MUST, SHOULD, Finding, check, failed, noted, passed


@check("delivery.first-byte", MUST, "suite rule (RFC 9112 §7.1)",
       "The first body bytes arrive about when the producer first writes them, not when it "
       "finishes: within one round trip plus two producer intervals (at least 0.2 s, at most half "
       "the producer's schedule).", timed=True, held_by_a_hold=True)
def test_first_byte(rec, target):
    """The first body bytes are not held until the producer finishes."""
    return judge_first_byte(rec, target)


@check("delivery.progressive", MUST, "suite rule (RFC 9112 §7.1)",
       "The body arrives in as many separate bursts as the producer has separate writes in time: "
       "no burst may carry more of the producer's writes than scheduling jitter and the round trip "
       "can merge.", timed=True, held_by_a_hold=True)
def test_progressive(rec, target):
    """The body arrives in separate bursts, not all at once or in a few big ones."""
    return judge_progressive(rec, target)


@check("delivery.cadence", SHOULD, "suite rule",
       "Gaps between bursts follow the producer's interval, with no long stall.", timed=True, held_by_a_hold=True)
def test_cadence(rec, target):
    """Arrivals keep the producer's rhythm: median gap near the interval, no stall."""
    d = target.delivery(rec)
    if d.free is not None:
        return _free_cadence(d)
    gaps = d.gaps()
    if not gaps:
        return failed("fewer than two arrivals: nothing arrived in rhythm", f"gaps of about {ms(d.interval)}")
    limit = d.margins.stall_limit()
    mid, worst = median(gaps), max(gaps)
    observed = f"median gap {ms(mid)}, longest {ms(worst)} over {len(gaps)} gaps{notes(d)}"
    expected = f"median gap between {ms(0.5 * d.interval)} and {ms(2 * d.interval)}, none over {ms(limit)}"
    metrics = dict(median_gap_s=round(mid, 4), max_gap_s=round(worst, 4), stall_limit_s=round(limit, 4))
    ok = 0.5 * d.interval <= mid <= 2 * d.interval and worst <= limit
    return (passed if ok else failed)(observed, expected, **metrics)


def _free_cadence(d) -> Finding:
    """Without a schedule, cadence is the stream's own: no silence between releases longer than
    four times their median gap (and at least two seconds)."""
    f = d.free
    gaps = f.gaps()
    one = f.releases[0] if len(f.releases) == 1 else None
    if one is not None and not one.dump and len(one.units) >= f.margins.min_dump \
            and one.end - one.start >= 2 * f.margins.window:
        # A fast producer (LLM tokens 20-50 ms apart): its units are never a noise window apart,
        # so they form one release; one release that is not a dump is continuous, not stalled.
        return passed(f"{len(one.units)} {f.word} arrived continuously over {ms(one.end - one.start)}, never "
                      f"{ms(f.margins.window)} apart (no --interval: the stream's own pace){notes(d)}",
                      "a steady pace", max_gap_s=round(f.margins.window, 4))
    if not gaps:
        return failed(f"fewer than two releases of {f.word}: nothing arrived in rhythm (no --interval){notes(d)}",
                      "a steady pace")
    mid, worst = median(gaps), max(gaps)
    limit = max(2.0, 4 * mid)
    observed = (f"{len(f.releases)} releases of {f.word}, median gap {ms(mid)}, longest {ms(worst)} "
                f"(no --interval: the stream's own pace){notes(d)}")
    metrics = dict(median_gap_s=round(mid, 4), max_gap_s=round(worst, 4), stall_limit_s=round(limit, 4))
    return (passed if worst <= limit else failed)(observed, f"no gap over {ms(limit)} (4 × the median, at least 2 s)",
                                                  **metrics)


@check("delivery.chunk-per-write", INFO, "RFC 9112 §7.1",
       "The chunked transfer coding wraps content in order to transfer it as a series of chunks, "
       "each with its own size indicator.", timed=True)
def test_chunk_per_write(rec, target):
    """How the producer's writes map to chunks and reads."""
    chunks = sum(p.chunk_start for p in rec.pieces)
    reads = len(rec.reads)
    count = target.countdown_length if target.profile == "countdown" else None
    writes = f"the producer's {count + 4} writes" if count is not None else "the body"
    if rec.framing != "chunked":
        return noted(f"{writes} arrived in {reads} reads, not chunked ({rec.framing} framing)", reads=reads)
    return noted(f"{writes} arrived as {chunks} chunks in {reads} reads", chunks=chunks, reads=reads,
                 **({"writes": count + 4} if count is not None else {}))
