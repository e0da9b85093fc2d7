"""Delivery — does the body arrive as the producer writes it?

Judged against the producer's schedule (the countdown's, or ``--interval`` and
``--expect-bursts`` for other bodies) with the margins in ``conformance.analysis.timing.Margins``; without
an interval, by the schedule-free rule of ``conformance.analysis.inferred`` (its units: SSE events, NDJSON
lines, countdown items, reads), which says ``warn`` where the stream alone cannot decide. These are
the suite's own requirements; RFC 9112 §7.1 is what makes them possible: chunked framing lets a
sender transfer content of unknown length "as a series of chunks", so nothing obliges a server
or proxy to hold it.
"""
from conformance.analysis import inferred
from conformance.analysis.figures import ms
from conformance.analysis.timing import median
from conformance.checks.catalogue import INFO, MUST, SHOULD, Finding, check, failed, noted, passed

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


@check("delivery.first-byte", MUST, "suite rule (RFC 9112 §7.1)",
       "The first body bytes arrive about when the producer first writes them, not when it "
       "finishes: within one round trip plus two producer intervals (at least 0.2 s, at most half "
       "the producer's schedule).", timed=True, held_by_a_hold=True)
def test_first_byte(rec, target):
    """The first body bytes are not held until the producer finishes."""
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


@check("delivery.progressive", MUST, "suite rule (RFC 9112 §7.1)",
       "The body arrives in as many separate bursts as the producer has separate writes in time: "
       "no burst may carry more of the producer's writes than scheduling jitter and the round trip "
       "can merge.", timed=True, held_by_a_hold=True)
def test_progressive(rec, target):
    """The body arrives in separate bursts, not all at once or in a few big ones."""
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
