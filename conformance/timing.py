"""Delivery analysis: from a recording's arrival times to what the checks judge.

Two ideas carry it. A *burst* is a run of body arrivals with no gap of half a producer interval
or more between them: bytes the producer wrote at different times but that arrive in one burst
were held somewhere. A *group* is the set of writes the producer makes at one moment (for the
countdown: ``<h2>`` and ``<ul>`` at once, then one item per interval, ``</ul>`` with the last
item, the heading one interval later); for the countdown, every group's arrival is found by
its content, so re-chunking, gzip or a proxy do not blur it.

The margins (``Margins``) are chosen for a noisy 2-core machine and for real networks: the
round trip measured on the same connection (the TCP handshake) is subtracted from the first
byte, and writes closer together than the network can separate (Nagle's algorithm and delayed
ACKs coalesce writes within about a round trip) may share a burst without counting as held.
"""
from __future__ import annotations

import bisect
import math
import re
import statistics
from dataclasses import dataclass, field

from conformance.recording import Recording

ITEM = re.compile(rb"Liftoff in\s*(\d+)", re.I)
FINALE = re.compile(rb"<h1>\s*Lift\s*off|Lift\s*off\s*</h1>", re.I)
OPENING = re.compile(rb"Prepare for Launch|<ul>", re.I)


@dataclass(frozen=True)
class Margins:
    """The tolerances, in one place, with their reasons (see README, "Timing margins")."""
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
    scheduling_noise: float = 0.05

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


def body_arrivals(rec: Recording) -> list[tuple[float, int]]:
    """(time, bytes) per read that carried body bytes."""
    out: list[tuple[float, int]] = []
    for p in rec.pieces:
        if not p.size:
            continue
        if out and out[-1][0] == p.t:
            out[-1] = (p.t, out[-1][1] + p.size)
        else:
            out.append((p.t, p.size))
    return out


def split_bursts(arrivals: list[tuple[float, int]], gap: float) -> list[Burst]:
    bursts: list[Burst] = []
    for t, size in arrivals:
        if bursts and t - bursts[-1].end < gap:
            bursts[-1].end = t
            bursts[-1].size += size
        else:
            bursts.append(Burst(t, t, size))
    return bursts


def countdown_count(url_path: str) -> int | None:
    m = re.search(r"/(\d+)/?$", url_path.split("?")[0])
    return int(m.group(1)) if m else None


def countdown_group_offsets(body: bytes, count: int) -> list[int | None]:
    """Where each of the countdown's count+2 groups ends in the decoded body (None: not found)."""
    offsets: list[int | None] = [None] * (count + 2)
    m = OPENING.search(body)
    offsets[0] = m.end() - 1 if m else (0 if body else None)
    for m in ITEM.finditer(body):
        k = count - int(m.group(1)) + 1   # "Liftoff in N" is group 1, "in 1" is group N
        if 1 <= k <= count and offsets[k] is None:
            offsets[k] = m.end() - 1
    finale = list(FINALE.finditer(body))
    if finale:
        offsets[count + 1] = finale[-1].end() - 1
    return offsets


def analyse(rec: Recording, profile: str, interval: float, count: int | None = None,
            expect_bursts: int | None = None) -> Delivery:
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
        offsets = countdown_group_offsets(rec.body, count)
        starts = [p.offset for p in rec.pieces]
        times = []
        for off in offsets:
            if off is None:
                times.append(None)
                continue
            i = bisect.bisect_right(starts, off) - 1
            times.append(rec.pieces[i].t if i >= 0 else None)
        found = sum(t is not None for t in times)
        if found < max(2, d.expected_groups // 2):
            d.notes.append(f"only {found} of the countdown's {d.expected_groups} groups were found in the body; judged as bytes")
            d.expected_groups, d.span = expect_bursts or 2, unknown_span
            return d
        if found < d.expected_groups:
            d.notes.append(f"{d.expected_groups - found} of the countdown's {d.expected_groups} groups were not found in the body")
        d.group_times = times
        for k, t in enumerate(times):
            if t is None:
                continue
            for b in bursts:
                if b.start <= t <= b.end:
                    b.groups.append(k)
                    break
    return d


def median(xs: list[float]) -> float | None:
    return statistics.median(xs) if xs else None
