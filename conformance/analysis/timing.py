"""Delivery analysis: from a recording's arrival times to what the checks judge.

Two ideas carry it. A *burst* is a run of body arrivals with no gap of half a producer interval
or more between them: bytes the producer wrote at different times but that arrive in one burst
were held somewhere. A *group* is the set of writes the producer makes at one moment (for the
countdown: ``<h2>`` and ``<ul>`` at once, then one item per interval, ``</ul>`` with the last
item, the heading one interval later); for the countdown, every group's arrival is found by
its content, so re-chunking, gzip or a proxy do not blur it. The ``sse`` and ``ndjson`` profiles
do the same with the events (lines) of the stream: each is one write, found by its delimiter.

The margins (``Margins``) are chosen for a noisy 2-core machine and for real networks: the
round trip measured on the same connection (the TCP handshake) is subtracted from the first
byte, and writes closer together than the network can separate (Nagle's algorithm and delayed
ACKs coalesce writes within about a round trip) may share a burst without counting as held.
"""
from __future__ import annotations

import bisect
import math
import statistics
from dataclasses import dataclass, field

from conformance.analysis import inferred
from conformance.analysis.units import body_arrivals, countdown_group_offsets, ndjson_line_ends, sse_event_ends
from conformance.wire.recording import Recording


@dataclass(frozen=True)
class Margins:
    """The tolerances, in one place, with their reasons (see docs/guide.md, "Timing margins")."""
    interval: float
    rtt: float = 0.0
    # Writes at least this far apart must not share a burst: half an interval leaves room for
    # scheduling jitter on both ends while staying far above the microseconds one write takes.
    @property
    def burst_gap(self) -> float:
        return 0.5 * self.interval

    def first_byte_allowance(self, span: float) -> float:
        """How late (after one round trip) the first body byte may come: two intervals or
        0.2 s, whichever is more, but never more than half the producer's whole schedule, so
        a body held to the end is always late by at least the other half."""
        generous = max(2 * self.interval, 0.2)
        return min(generous, 0.5 * span) if span > 0 else generous

    # A busy machine can keep a reader from running for tens of milliseconds; writes closer
    # than this may legitimately be read together whatever the network.
    scheduling_noise: float = 0.1

    def groups_per_burst(self) -> int:
        """The most producer write groups one burst may carry before it counts as held: three
        (a delayed read merging two neighbours plus the one on time), or as many as fit in two
        round trips or the scheduling noise, whichever is longer (Nagle's algorithm and delayed
        ACKs coalesce writes within about a round trip)."""
        if self.interval <= 0:
            return 3
        return max(3, 1 + math.ceil(max(2 * self.rtt, self.scheduling_noise) / self.interval))

    def stall_limit(self) -> float:
        """A gap longer than this between arrivals is a stall (cadence)."""
        return 3 * self.interval + max(0.1, 2 * self.rtt)

    # delivery.disconnect: after the client went away the producer may write twice more (the
    # first write after the close is still accepted by the kernel; the peer answers it with a
    # reset, and the second write fails). Writes are counted, not timed, so jitter cannot move
    # a write across a limit: a write group is pieces less than ``burst_gap`` apart.
    disconnect_writes: int = 2

    def disconnect_watch(self) -> float:
        """How long after the disconnect the producer is watched: long enough to see one write
        more than it may make, on schedule, plus half an interval and the stall slack for noise."""
        return (self.disconnect_writes + 1.5) * self.interval + max(0.1, 2 * self.rtt)


MIB = 1024 * 1024


@dataclass(frozen=True)
class BodyMargins:
    """The tolerances of ``delivery.large-body``, which has no producer interval: a file is as
    fast as the disk, the server and the network allow.

    - First byte: a streamed file starts at once; one held until the whole body was read or
      written somewhere comes after at least half the transfer. The first byte may come one
      round trip plus max(0.5 s, half the whole transfer) after the request.
    - Memory: a process that holds the body grows with it. Growth (peak RSS during the download
      minus RSS before it) may reach max(32 MiB, a quarter of the body): buffers of a fixed size,
      page-cache readahead and allocator slack stay under that, a body held in memory does not.
      A body under twice the floor is too small to tell, and is said so.
    """
    rtt: float = 0.0
    first_byte_floor: float = 0.5
    memory_floor: int = 32 * MIB

    def first_byte_limit(self, total_s: float) -> float:
        return self.rtt + max(self.first_byte_floor, 0.5 * total_s)

    def memory_limit(self, body_bytes: int) -> int:
        return max(self.memory_floor, body_bytes // 4)

    def memory_telling(self, body_bytes: int) -> bool:
        """Whether a body this large would show up in memory beyond the allowance."""
        return body_bytes >= 2 * self.memory_floor


def write_groups(times: list[float], gap: float) -> list[list[float]]:
    """Times grouped as one write when less than ``gap`` apart (the burst rule, on the sender)."""
    groups: list[list[float]] = []
    for t in sorted(times):
        if groups and t - groups[-1][-1] < gap:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


@dataclass
class Burst:
    start: float
    end: float
    size: int = 0
    groups: list[int] = field(default_factory=list)


@dataclass
class Delivery:
    """What the delivery checks read: plain numbers and lists."""
    profile: str
    interval: float
    rtt: float
    head_t: float | None
    first_body_t: float | None
    end_t: float | None
    bursts: list[Burst]
    expected_groups: int                     # how many separate writes in time the producer makes
    span: float                              # producer's time from first to last write
    group_times: list[float | None] = field(default_factory=list)  # countdown: arrival of each group
    notes: list[str] = field(default_factory=list)
    free: object | None = None               # no interval given: the schedule-free rule's view (inferred.Free)

    @property
    def margins(self) -> Margins:
        return Margins(self.interval, self.rtt)

    @property
    def found_groups(self) -> list[tuple[int, float]]:
        return [(k, t) for k, t in enumerate(self.group_times) if t is not None]

    def gaps(self) -> list[float]:
        """Gaps between successive arrivals that matter: groups for the countdown, bursts otherwise."""
        if self.group_times:
            times = [t for _, t in self.found_groups]
        else:
            times = [b.start for b in self.bursts]
        return [b - a for a, b in zip(times, times[1:])]


def split_bursts(arrivals: list[tuple[float, int]], gap: float) -> list[Burst]:
    bursts: list[Burst] = []
    for t, size in arrivals:
        if bursts and t - bursts[-1].end < gap:
            bursts[-1].end = t
            bursts[-1].size += size
        else:
            bursts.append(Burst(t, t, size))
    return bursts


def _times_of(rec: Recording, offsets: list[int | None]) -> list[float | None]:
    """When the body byte at each offset arrived (None where the offset is None or not kept)."""
    starts = [p.offset for p in rec.pieces]
    times: list[float | None] = []
    for off in offsets:
        if off is None:
            times.append(None)
            continue
        i = bisect.bisect_right(starts, off) - 1
        times.append(rec.pieces[i].t if i >= 0 else None)
    return times


def _assign_groups(d: "Delivery") -> None:
    for k, t in enumerate(d.group_times):
        if t is None:
            continue
        for b in d.bursts:
            if b.start <= t <= b.end:
                b.groups.append(k)
                break


def analyse(rec: Recording, profile: str, interval: float | None, count: int | None = None,
            expect_bursts: int | None = None) -> Delivery:
    """The delivery view of a recording: against the producer's schedule when ``interval`` (s)
    is given, else by the schedule-free rule (``conformance.analysis.inferred``)."""
    if interval is None:
        return _analyse_free(rec, profile, count, expect_bursts)
    rtt = rec.connect_s or 0.0
    arrivals = body_arrivals(rec)
    margins = Margins(interval, rtt)
    bursts = split_bursts(arrivals, margins.burst_gap)
    # Without a known schedule (bytes profile, no --expect-bursts) the span is unknown: 0.
    unknown_span = max(0, (expect_bursts or 1) - 1) * interval
    d = Delivery(profile, interval, rtt, rec.head_t, arrivals[0][0] if arrivals else None,
                 arrivals[-1][0] if arrivals else None, bursts, expected_groups=expect_bursts or 2,
                 span=unknown_span)
    if profile == "countdown":
        if count is None:
            d.notes.append("the countdown length is unknown (no /N in the URL and no --count); judged as bytes")
            return d
        d.expected_groups, d.span = count + 2, (count + 1) * interval
        times = _times_of(rec, countdown_group_offsets(rec.body, count))
        found = sum(t is not None for t in times)
        if found < max(2, d.expected_groups // 2):
            d.notes.append(f"only {found} of the countdown's {d.expected_groups} groups were found in the body; judged as bytes")
            d.expected_groups, d.span = expect_bursts or 2, unknown_span
            return d
        if found < d.expected_groups:
            d.notes.append(f"{d.expected_groups - found} of the countdown's {d.expected_groups} groups were not found in the body")
        d.group_times = times
        _assign_groups(d)
    elif profile in ("sse", "ndjson"):
        _analyse_records(d, rec, profile, interval, count, expect_bursts, unknown_span)
    return d


def _analyse_free(rec: Recording, profile: str, count: int | None, expect_bursts: int | None) -> Delivery:
    note = None
    if profile == "countdown":   # items are found by their elements; no length needed
        note = inferred.unmarked(rec.body)
        if note:   # the writes are not elements: the page is judged by its releases on the wire
            profile = "bytes"
    f = inferred.analyse(rec, profile, count)
    arrivals = body_arrivals(rec)
    bursts = [Burst(r.start, r.end, r.size, list(r.units)) for r in f.releases]
    d = Delivery(profile, None, f.margins.rtt, rec.head_t, arrivals[0][0] if arrivals else None,
                 arrivals[-1][0] if arrivals else None, bursts, expected_groups=expect_bursts or len(f.units),
                 span=0.0, group_times=[u.end for u in f.units] if profile != "bytes" else [], free=f)
    if note:
        d.notes.append(note)
    if rec.body_bytes > len(rec.body) and profile != "bytes":
        d.notes.append(f"only the first {len(rec.body)} of {rec.body_bytes} body bytes are kept; {f.word} after them "
                       "are not judged")
    return d


def _analyse_records(d: Delivery, rec: Recording, profile: str, interval: float, count: int | None,
                     expect_bursts: int | None, unknown_span: float) -> None:
    """SSE and NDJSON: every event (line) is one of the producer's writes, found by its
    delimiter and judged by when its last byte arrived. With a countdown length (``/sse/N``,
    ``--count``) the producer writes count+2 of them, one interval apart, as the countdown's
    groups; otherwise ``--expect-bursts`` of them, or as many as arrived."""
    what = "events" if profile == "sse" else "lines"
    body = rec.body
    if rec.body_bytes > len(body):
        d.notes.append(f"only the first {len(body)} of {rec.body_bytes} body bytes are kept; {what} after them are not judged")
    ended = rec.end in ("complete", "closed") and rec.body_bytes == len(body)
    ends = sse_event_ends(body) if profile == "sse" else ndjson_line_ends(body, ended)
    times = _times_of(rec, ends)
    if count is not None:
        expected = count + 2
    elif expect_bursts:
        expected = expect_bursts
    else:
        expected = len(times)
    found = len(times)
    if found < max(2, expected // 2):
        d.notes.append(f"only {found} {what} were found in the body (expected {expected}); judged as bytes")
        return
    if found < expected:
        d.notes.append(f"{expected - found} of the producer's {expected} {what} were not found in the body")
        times = times + [None] * (expected - found)
    elif found > expected:
        d.notes.append(f"{found} {what} arrived where the schedule has {expected}")
    d.expected_groups = expected
    d.span = (expected - 1) * interval
    d.group_times = times
    _assign_groups(d)


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None
