"""The schedule-free rule: judging "held or streamed" from the stream alone.

Most endpoints users point the suite at have no schedule anyone can state: a token stream writes
when its model produces, a feed when something happens. Without ``--interval`` the delivery
checks therefore judge the *units* of the body (SSE events, NDJSON lines, countdown items, or
reads for plain bytes), each timed when it completes (an SSE event at its dispatching blank
line, WHATWG HTML §9.2.6; a line at its LF), by what a hold leaves behind and a producer does
not:

- A **release** is a run of unit completions less than the noise window ``w`` apart (``w`` =
  max(100 ms, two round trips): a busy machine or Nagle's algorithm may merge writes that close).
- A **dump** is a release that opens with at least ``K`` = 4 units inside one window, after a
  silence of at least ``S`` = max(1 s, 10 w), and is not followed by more of the same density
  (a fast producer that starts after a pause keeps its pace; a hop that releases what it held
  does not). Three units together are allowed, as with a known schedule.
- A unit is **split** when its first bytes arrived, then nothing for at least max(2 w, 250 ms),
  and its end came only later. Producers write events whole; a hop that holds bytes, not
  events (a buffer flushed when full, a compressor that keeps the tail of each flush) cuts them.

Verdicts (``judge``): a dump is a certain hold when it carries at least half of the units and
either it is the only release (held to the end), or a unit is split at its edge (a byte buffer
cut through an event), or the releases have the same size in bytes (a buffer flushed when full).
Half or more of the units split (at least 3) is a certain hold too: each unit's end waits for
the next. A dump without that evidence may be a producer that writes in batches: ``warn``,
with what would decide it (``--interval``, ``--reference``, the probe). A body that arrived
whole within one window and less than ``S`` after the request is too short to tell: ``warn``.
"""
from __future__ import annotations

import bisect
import re
import statistics
from dataclasses import dataclass, field

from conformance.analysis.figures import ms
from conformance.analysis.units import ITEM, body_arrivals, ndjson_lines, sse_events
from conformance.wire.recording import Recording

COUNTDOWN_UNIT = re.compile(rb"<h2\b.*?</h2>|<li\b.*?</li>|<h1\b.*?</h1>", re.I | re.S)
WORDS = {"sse": ("event", "events"), "ndjson": ("line", "lines"), "countdown": ("item", "items"),
         "bytes": ("read", "reads")}


@dataclass(frozen=True)
class FreeMargins:
    """The schedule-free rule's tolerances (docs/guide.md, "Timing margins"), from the round trip (s)."""
    rtt: float = 0.0
    noise_floor: float = 0.1     # s: a delayed reader may merge writes this close
    hold_floor: float = 1.0      # s: a silence this long before a dump makes it a hold
    min_dump: int = 4            # units in one window: three may be one write group
    split_floor: float = 0.25    # s: a unit cut open this long was held, not written slowly

    @property
    def window(self) -> float:
        return max(self.noise_floor, 2 * self.rtt)

    @property
    def hold_silence(self) -> float:
        return max(self.hold_floor, 10 * self.window)

    @property
    def split_gap(self) -> float:
        return max(self.split_floor, 2 * self.window)


@dataclass
class Unit:
    start: float      # s: when its first byte arrived
    end: float        # s: when it completed
    size: int = 0     # bytes


@dataclass
class Release:
    start: float
    end: float
    units: list[int] = field(default_factory=list)
    silence: float = 0.0    # s without a completion before it (the first: since the request)
    size: int = 0           # bytes of the units it completed
    dump: bool = False
    split_edge: bool = False  # a unit begun before it completed in it (a buffer cut a unit)


@dataclass
class Free:
    """What the schedule-free rule saw: plain numbers the checks and the report read."""
    profile: str
    margins: FreeMargins
    units: list[Unit]
    releases: list[Release]
    split: list[int]           # indices of split units
    ended: bool                # the body ended (not cut by --watch or a timeout)

    @property
    def word(self) -> str:
        return WORDS.get(self.profile, WORDS["bytes"])[1]

    @property
    def dumps(self) -> list[Release]:
        return [r for r in self.releases if r.dump]

    def gaps(self) -> list[float]:
        return [b.start - a.end for a, b in zip(self.releases, self.releases[1:])]


def unit_spans(rec: Recording, profile: str, count: int | None = None) -> list[tuple[int, int]]:
    """(first byte, last byte) offsets of each unit in the decoded body: SSE events (blocks with
    a data field; comments and keep-alives are not events), NDJSON records, countdown items."""
    body = rec.body
    if profile == "sse":
        return sse_events(body)
    if profile == "ndjson":
        return ndjson_lines(body, rec.end in ("complete", "closed") and rec.body_bytes == len(body))
    if profile == "countdown":   # the heading, each item, the finale: each a whole element
        return [(m.start(), m.end() - 1) for m in COUNTDOWN_UNIT.finditer(body)]
    return []


def unmarked(body: bytes) -> str | None:
    """Why an HTML countdown's units cannot be its elements, or None when they can: its writes
    carry no markup (``Liftoff in N`` as plain lines after a shell), or fewer than two elements
    were found. Such a page is judged by its releases on the wire, as bytes are: counted as one
    item, a page held to the end would only be "undecided"."""
    elements = [(m.start(), m.end()) for m in COUNTDOWN_UNIT.finditer(body)]
    starts = [a for a, _ in elements]
    outside = 0
    for m in ITEM.finditer(body):
        i = bisect.bisect_right(starts, m.start()) - 1
        if i < 0 or m.end() > elements[i][1]:
            outside += 1
    if outside:
        return (f"the page's writes carry no markup ({outside} 'Liftoff in' lines outside any <li>, <h2> or <h1>): "
                "judged by its releases on the wire, as bytes are")
    if len(elements) < 2:
        return (f"{len(elements)} countdown element(s) (<li>, <h2>, <h1>) in the page: judged by its releases on the "
                "wire, as bytes are")
    return None


def _time_at(rec: Recording, starts: list[int], offset: int) -> float | None:
    i = bisect.bisect_right(starts, offset) - 1
    return rec.pieces[i].t if i >= 0 else None


def units_of(rec: Recording, profile: str, count: int | None = None) -> list[Unit]:
    """The body's units with their first-byte and completion times (s after the request)."""
    if profile not in ("sse", "ndjson", "countdown"):
        return [Unit(t, t, size) for t, size in body_arrivals(rec)]
    starts = [p.offset for p in rec.pieces]
    out = []
    for a, b in unit_spans(rec, profile, count):
        ta, tb = _time_at(rec, starts, a), _time_at(rec, starts, b)
        if ta is not None and tb is not None:
            out.append(Unit(ta, tb, b - a + 1))
    return out


def analyse(rec: Recording, profile: str, count: int | None = None) -> Free:
    """Apply the rule to one recording (see the module docstring)."""
    m = FreeMargins(rec.connect_s or 0.0)
    units = units_of(rec, profile, count)
    w = m.window
    releases: list[Release] = []
    previous_end = m.rtt
    for k, u in enumerate(units):
        if releases and u.end - releases[-1].end < w:
            r = releases[-1]
            r.end = u.end
        else:
            r = Release(u.end, u.end, silence=u.end - (releases[-1].end if releases else previous_end))
            releases.append(r)
        r.units.append(k)
        r.size += u.size
    split = [k for k, u in enumerate(units) if u.end - u.start >= m.split_gap
             and profile in ("sse", "ndjson", "countdown")]
    arrivals = body_arrivals(rec)
    for r in releases:
        if profile != "bytes":   # the body bytes that arrived with it: a buffer's flush size
            r.size = sum(size for t, size in arrivals if r.start - 1e-9 <= t <= r.end + 1e-9)
        times = [units[k].end for k in r.units]
        first_window = sum(t < r.start + w for t in times)
        next_window = sum(r.start + w <= t < r.start + 2 * w for t in times)
        r.dump = (first_window >= m.min_dump and r.silence >= m.hold_silence and next_window < first_window / 2)
        r.split_edge = any(k in split and units[k].start < r.start - w for k in r.units)
    ended = rec.end in ("complete", "closed")
    return Free(profile, m, units, releases, split, ended)


@dataclass
class Judgement:
    verdict: str          # pass | fail | warn
    why: str              # one sentence: what was seen and what it means
    metrics: dict = field(default_factory=dict)


DECIDE = "--interval, --reference or the probe (conformance.probe) would decide"


def _equal_sizes(releases: list[Release]) -> bool:
    """All releases but the last have the same size: a buffer flushed each time it filled."""
    full = [r.size for r in releases[:-1]]
    return len(full) >= 2 and len(set(full)) == 1


def judge(f: Free, first_only: bool = False) -> Judgement:
    """The verdict of the rule on the whole stream, or on its first release (``first_only``:
    ``delivery.first-byte``)."""
    one, many = WORDS.get(f.profile, WORDS["bytes"])
    n = len(f.units)
    m = f.margins
    metrics = dict(units=n, releases=len(f.releases), dumps=len(f.dumps), split_units=len(f.split),
                   window_s=round(m.window, 3), hold_silence_s=round(m.hold_silence, 3))
    if not f.releases:
        return Judgement("fail", f"no {one} arrived", metrics)
    metrics["largest_release"] = max(len(r.units) for r in f.releases)
    first = f.releases[0]
    if f.profile == "bytes":
        return _judge_bytes(f, first_only, metrics)
    if n < 2:
        return Judgement("warn", f"only one {one} arrived (at {ms(first.start)}): nothing to compare; {DECIDE}",
                         metrics)
    dumps = f.dumps
    in_dumps = sum(len(r.units) for r in dumps)
    held_evidence = []
    if len(f.releases) == 1 and first.dump and f.ended:
        held_evidence.append("it is the only release: held to the end")
    if any(r.split_edge for r in dumps):
        held_evidence.append(f"{one}s were cut open at a release's edge: a hop buffers bytes, not {many}")
    if dumps and _equal_sizes(f.releases) and f.releases[0].size >= 1024:
        held_evidence.append(f"the releases are {f.releases[0].size} bytes each: a buffer flushed when full")
    target = [first] if first_only else dumps
    if first_only:
        if not first.dump:
            also = f" with {len(first.units) - 1} more" if len(first.units) > 1 else " alone"
            return Judgement("pass", f"the first {one} completed {ms(first.start)} after the request{also}, "
                             "not in a release held back", metrics)
    if target and (in_dumps * 2 >= n or first_only) and held_evidence:
        r = max(target, key=lambda r: len(r.units))
        return Judgement("fail", f"{len(r.units)} of {n} {many} completed at once at {ms(r.start)} after "
                         f"{ms(r.silence)} of silence; {'; '.join(held_evidence)}", metrics)
    if not first_only and len(f.split) >= 3 and 2 * len(f.split) >= n:
        lags = sorted(f.units[k].end - f.units[k].start for k in f.split)
        return Judgement("fail", f"{len(f.split)} of {n} {many} were cut open: their first bytes arrived, then "
                         f"their end only {ms(statistics.median(lags))} later (median) with the next release: "
                         f"each {one} is held until the next one", dict(metrics, split_lag_median_s=round(statistics.median(lags), 4)))
    if target and (first_only or in_dumps * 2 >= n):
        r = max(target, key=lambda r: len(r.units))
        return Judgement("warn", f"{len(r.units)} of {n} {many} completed at once at {ms(r.start)} after "
                         f"{ms(r.silence)} of silence: held by a hop, or written in batches by the producer; "
                         f"{DECIDE}", metrics)
    if first_only:
        return Judgement("pass", f"the first {one} completed {ms(first.start)} after the request", metrics)
    last = f.releases[-1]
    if len(f.releases) == 1 and last.end - (f.units[0].start) < m.window and last.silence < m.hold_silence:
        return Judgement("warn", f"all {n} {many} arrived within {ms(m.window)}, {ms(first.start)} after the "
                         f"request: too short a stream to tell streaming from holding; {DECIDE}", metrics)
    extra = f"; {len(dumps)} release(s) of {in_dumps} {many} after a silence" if dumps else ""
    return Judgement("pass", f"{n} {many} completed in {len(f.releases)} releases over {ms(last.end - first.start)}; "
                     f"the largest carried {metrics['largest_release']}{extra}", metrics)


def _judge_bytes(f: Free, first_only: bool, metrics: dict) -> Judgement:
    """Plain bytes have no units: releases are runs of reads. One release after a long silence
    is a held body; equal-sized releases after long silences are a buffer flushed when full."""
    m, rels = f.margins, f.releases
    first = rels[0]
    size = sum(r.size for r in rels)
    if len(rels) == 1:
        if first.silence >= m.hold_silence and f.ended:
            return Judgement("fail", f"the whole body ({size} bytes) arrived in one release at {ms(first.start)}, "
                             f"after {ms(first.silence)} of silence: held to the end", metrics)
        if first.silence >= m.hold_silence:
            return Judgement("warn", f"the body arrived in one release at {ms(first.start)} after "
                             f"{ms(first.silence)} of silence and was still open: {DECIDE}", metrics)
        what = "the whole body" if f.ended else "the body, still open when the recording stopped,"
        return Judgement("warn", f"{what} ({size} bytes) arrived in one release {ms(first.start)} after "
                         f"the request: too short a stream to tell streaming from holding; {DECIDE}", metrics)
    held = [r for r in rels if r.silence >= m.hold_silence]
    if len(held) >= 2 and _equal_sizes(rels) and first.size >= 1024:
        return Judgement("fail", f"the body arrived in {len(rels)} releases of {first.size} bytes each after "
                         "silences of a second or more: a buffer flushed when full", metrics)
    if first_only:
        return Judgement("pass", f"the first bytes arrived {ms(first.start)} after the request, "
                         f"{first.size} of {size} bytes", metrics)
    return Judgement("pass", f"the body arrived in {len(rels)} releases (reads less than {ms(m.window)} apart "
                     "are one)", metrics)


def pace(f: Free) -> float | None:
    """The median gap between releases (s): the stream's own pace, where it has one."""
    gaps = [g for g in f.gaps() if g > 0]
    return statistics.median(gaps) if gaps else None
